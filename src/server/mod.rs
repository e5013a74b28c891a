//! The HTTP server: a thin JSON layer over the engine (the contract: README, "A session with
//! curl").
//!
//! `POST /api/{Concept}/{action}` runs an action or query (when exposed); any other
//! `POST /api/{path}` is a request answered by syncs; `GET /api/flows/{flow}`, `/api/schema`,
//! `/api/openapi.json` describe; `GET /healthz` answers when the store answers a read, `GET
//! /livez` when the process does, `GET /metrics` in Prometheus text format. `guard` refuses
//! requests for other hosts, from other origins and `/api` POSTs that are not JSON. Handlers only
//! translate: bytes to JSON, engine answers to status codes. All store work runs on the
//! blocking pool, never on the async runtime's threads. `access` holds the token and exposure
//! rules, `api_docs` the schema and OpenAPI documents.

mod access;
mod api_docs;
mod error;
pub mod guard;
mod health;
pub mod heap;
pub mod metrics;
mod routes;
mod web;

pub use access::{Exposure, ExposureError, Token, DEFAULT_EXPOSE};
pub use error::ApiError;
pub use guard::{AllowedHosts, AllowedOrigins, Guard};
pub use metrics::MetricsConfig;

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
    /// The Host, Origin and content-type checks and the whole-request deadline.
    pub guard: Arc<Guard>,
    /// What `GET /metrics` reports besides the engine's own figures.
    pub metrics: MetricsConfig,
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
            // Served by someone else (no bound address known): loopback hosts on any port.
            guard: Arc::new(Guard {
                bound: None,
                allowed_hosts: AllowedHosts::default(),
                allowed_origins: AllowedOrigins::default(),
                request_timeout: DEFAULT_REQUEST_TIMEOUT,
            }),
            metrics: MetricsConfig::default(),
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
    /// Host names served besides the bound address and localhost (`--allowed-hosts`).
    pub allowed_hosts: AllowedHosts,
    /// Origins whose pages may call the service, with CORS (`--allow-origin`).
    pub allowed_origins: AllowedOrigins,
    /// The embedded store's directory, for the store size in `GET /metrics`.
    pub store_dir: Option<std::path::PathBuf>,
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

/// The service's router: the routes, then (outermost last) CORS for the listed origins, the
/// Host/Origin/content-type checks with the request deadline, and the request metrics.
pub fn router(state: AppState) -> axum::Router {
    let cors = state.guard.allowed_origins.cors();
    let guard = Arc::clone(&state.guard);
    let extra = axum::Router::new()
        .route("/healthz", axum::routing::get(health::healthz))
        .route("/livez", axum::routing::get(health::livez))
        .route("/metrics", axum::routing::get(metrics::metrics))
        .with_state(state.clone());
    routes::router(state.clone())
        .merge(extra)
        .layer(cors)
        .layer(axum::middleware::from_fn_with_state(guard, guard::check))
        .layer(axum::middleware::from_fn_with_state(state, metrics::record))
        // The guard's refusals carry a flow id too, like every other answer.
        .layer(axum::middleware::map_response(routes::ensure_flow_header))
}

/// Serves until SIGINT or SIGTERM, then stops accepting, lets in-flight requests finish, and
/// flushes the store.
pub async fn serve(engine: Arc<Engine>, config: ServerConfig) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.addr).await?;
    let bound = listener.local_addr()?;
    tracing::info!(addr = %bound, "librarycache listening");
    if !config.addr.ip().is_loopback() && !config.token.is_set() {
        tracing::warn!(addr = %config.addr, "listening beyond loopback without a token (--insecure-no-token): anyone who can reach it can change libraries");
    }
    let roles = Roles::default();
    metrics::handle();
    let upkeep = tokio::spawn(metrics::upkeep());
    let app = router(AppState {
        engine: Arc::clone(&engine),
        body_limit: config.body_limit,
        token: config.token,
        exposure: Arc::new(config.exposure),
        request_timeout: config.request_timeout,
        roles: roles.clone(),
        guard: Arc::new(Guard {
            bound: Some(bound),
            allowed_hosts: config.allowed_hosts,
            allowed_origins: config.allowed_origins,
            request_timeout: config.request_timeout,
        }),
        metrics: MetricsConfig {
            store_dir: config.store_dir,
        },
    });
    let compaction = tokio::spawn(compact_periodically(Arc::clone(&engine), config.retention));
    let trimming = tokio::spawn(heap::trim_periodically());
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
    trimming.abort();
    upkeep.abort();
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
