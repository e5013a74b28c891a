//! The HTTP server: a thin JSON layer over the engine (DESIGN §6).
//!
//! `POST /api/{Concept}/{action}` runs an action or query; `GET /healthz` answers when the
//! store is open. Handlers only translate: bytes to JSON, engine answers to status codes. All
//! store work runs on the blocking pool, never on the async runtime's threads.

mod error;
mod routes;
mod web;

pub use error::ApiError;

use crate::engine::Engine;
use std::net::SocketAddr;
use std::sync::Arc;

/// The largest request body accepted by default (32 MiB).
pub const DEFAULT_BODY_LIMIT: usize = 32 * 1024 * 1024;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub body_limit: usize,
}

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub addr: SocketAddr,
    pub body_limit: usize,
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
    let app = router(AppState {
        engine: Arc::clone(&engine),
        body_limit: config.body_limit,
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
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
