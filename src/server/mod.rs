//! The HTTP server: a thin JSON layer over the engine (DESIGN §6).
//!
//! `POST /api/{Concept}/{action}` runs an action or query (when exposed); any other
//! `POST /api/{path}` is a request answered by syncs; `GET /api/flows/{flow}`, `/api/schema`,
//! `/api/openapi.json` describe; `GET /healthz` answers when the store is open. Handlers only
//! translate: bytes to JSON, engine answers to status codes. All store work runs on the
//! blocking pool, never on the async runtime's threads. `access` holds the token and exposure
//! rules, `api_docs` the schema and OpenAPI documents.

mod access;
mod api_docs;
mod error;
mod routes;
mod web;

pub use access::{Exposure, ExposureError, Token, DEFAULT_EXPOSE};
pub use error::ApiError;

use crate::engine::{Engine, Roles};
use crate::store::Retention;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The largest request body accepted by default (32 MiB).
pub const DEFAULT_BODY_LIMIT: usize = 32 * 1024 * 1024;

/// How long a request may take by default before it is answered 503 TIMEOUT.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub body_limit: usize,
    /// The bearer token `/api` calls must carry, if any.
    pub token: Token,
    /// Which concept actions and queries `POST /api/{Concept}/{action}` reaches.
    pub exposure: Arc<Exposure>,
    /// How long a request may take before it is answered (its work still completes).
    pub request_timeout: Duration,
    /// Whether this instance runs each concept's background work (`GET /healthz` shows it).
    pub roles: Roles,
}

impl AppState {
    /// The defaults: no token, LibraryCache exposed, the default body limit and timeout.
    pub fn new(engine: Arc<Engine>) -> Self {
        AppState {
            engine,
            body_limit: DEFAULT_BODY_LIMIT,
            token: Token::default(),
            exposure: Arc::new(Exposure::default()),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            roles: Roles::default(),
        }
    }
}

/// Server settings.
#[derive(Clone)]
pub struct ServerConfig {
    pub addr: SocketAddr,
    pub body_limit: usize,
    pub token: Token,
    pub exposure: Exposure,
    pub request_timeout: Duration,
    /// How much of the action log to keep; compacted at start and then hourly.
    pub retention: Retention,
}

/// How often the action log is compacted while serving.
const COMPACT_EVERY: Duration = Duration::from_secs(3600);

/// Compacts the action log now and then every [`COMPACT_EVERY`] (never the concepts' events).
async fn compact_periodically(engine: Arc<Engine>, retention: Retention) {
    if retention.keeps_everything() {
        return;
    }
    let mut every = tokio::time::interval(COMPACT_EVERY);
    loop {
        every.tick().await;
        let (engine, retention) = (Arc::clone(&engine), retention.clone());
        let outcome = tokio::task::spawn_blocking(move || engine.store().compact(&retention, engine.now())).await;
        match outcome {
            Ok(Ok(report)) => tracing::info!(
                records = report.records,
                flows = report.flows,
                guards = report.guards,
                "action log compacted"
            ),
            Ok(Err(e)) => tracing::warn!(error = %e, "action log compaction failed"),
            Err(e) => tracing::warn!(error = %e, "action log compaction panicked"),
        }
    }
}

/// The service's router.
pub fn router(state: AppState) -> axum::Router {
    routes::router(state)
}

/// Serves until SIGINT or SIGTERM, then stops accepting, lets in-flight requests finish, and
/// flushes the store.
pub async fn serve(engine: Arc<Engine>, config: ServerConfig) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "librarycache listening");
    if !config.addr.ip().is_loopback() && !config.token.is_set() {
        tracing::warn!(addr = %config.addr, "listening beyond loopback without a token: anyone who can reach it can change libraries");
    }
    let roles = Roles::default();
    let app = router(AppState {
        engine: Arc::clone(&engine),
        body_limit: config.body_limit,
        token: config.token,
        exposure: Arc::new(config.exposure),
        request_timeout: config.request_timeout,
        roles: roles.clone(),
    });
    let compaction = tokio::spawn(compact_periodically(Arc::clone(&engine), config.retention));
    // The concepts' background work (timers, source reads), each run by whichever instance
    // sharing the store holds its lease. Stopping it mid-way is safe: what it was doing is in
    // the store, and it carries on from there at the next start.
    let background: Vec<_> = engine
        .background()
        .into_iter()
        .map(|(concept, _)| tokio::spawn(Arc::clone(&engine).lead(concept, roles.clone())))
        .collect();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    compaction.abort();
    for work in background {
        work.abort();
    }
    let store = Arc::clone(engine.store());
    tokio::task::spawn_blocking(move || store.wait_durable(u64::MAX).ok())
        .await
        .ok();
    tracing::info!("librarycache stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        tokio::signal::ctrl_c().await.ok();
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
