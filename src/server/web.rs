//! The web page at `/`: one HTML file (plain JavaScript and CSS, no framework, no build step,
//! nothing fetched from another origin) embedded in the binary. It is a client of the same JSON
//! API as any other: queries for what it lists, requests answered by syncs for the status and
//! the Refresh, and `GET /api/flows/{flow}` for the flow inspector.

use super::AppState;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

/// The page, embedded at compile time.
const INDEX_HTML: &str = include_str!("web/index.html");

/// Only this origin is reachable from the page; its script and style are inline.
const CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                   connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The page's routes, merged into the service's router.
pub fn routes() -> Router<AppState> {
    Router::new().route("/", get(index))
}

async fn index() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        INDEX_HTML,
    )
}
