//! `GET /healthz` (ready: the store answers a read, on PostgreSQL a round trip to the database)
//! and `GET /livez` (the process answers; nothing is probed). A load balancer takes an instance
//! out on a 503 from `/healthz`; an orchestrator restarts one only when `/livez` stops answering.

use super::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the store may take to answer the probe before the instance counts as unready.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Ready: the store answered a read of its last sequence number within [`PROBE_TIMEOUT`]; and
/// which concepts' background work this instance runs (`leading`) or leaves to another instance
/// sharing the store (`standby`). 503 with `code: STORE_UNAVAILABLE` when the store fails or
/// does not answer in time.
pub async fn healthz(State(state): State<AppState>) -> Response {
    let store = Arc::clone(state.engine.store());
    let started = Instant::now();
    let probe = tokio::time::timeout(PROBE_TIMEOUT, tokio::task::spawn_blocking(move || store.last_seq())).await;
    let took_ms = started.elapsed().as_secs_f64() * 1000.0;
    let background = state.roles.snapshot();
    let problem = match probe {
        Ok(Ok(Ok(seq))) => {
            return Json(json!({
                "status": "ok",
                "store": { "status": "ok", "lastSeq": seq, "probeMs": took_ms },
                "background": background,
            }))
            .into_response()
        }
        Ok(Ok(Err(e))) => format!("the store failed a read: {e}"),
        Ok(Err(e)) => format!("the store probe stopped: {e}"),
        Err(_) => format!("the store did not answer a read within {PROBE_TIMEOUT:?}"),
    };
    tracing::warn!(error = %problem, "health check: the store is unavailable");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({
            "status": "unavailable",
            "error": problem,
            "code": "STORE_UNAVAILABLE",
            "store": { "status": "unavailable", "probeMs": took_ms },
            "background": background,
        })),
    )
        .into_response()
}

/// Live: the process answers HTTP. Probes nothing.
pub async fn livez() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}
