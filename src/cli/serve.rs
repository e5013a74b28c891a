//! `librarycache serve`: its settings, and the start-up that checks them, opens the store,
//! schedules the standing jobs and runs the HTTP server until it is stopped.

use crate::app::App;
use crate::cli::args::{SecretsArgs, StoreArgs, SyncsArgs};
use crate::cli::setup;
use crate::cli::sources::SourceArgs;
use crate::engine::Engine;
use crate::server::{self, ServerConfig};
use crate::store::{Retention, SledOptions, StoreSpec};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Address to listen on.
    #[arg(long, env = "LIBRARYCACHE_ADDR", default_value = "127.0.0.1:5765")]
    pub addr: SocketAddr,
    #[command(flatten)]
    pub syncs: SyncsArgs,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "LIBRARYCACHE_BODY_LIMIT", default_value_t = server::DEFAULT_BODY_LIMIT)]
    pub body_limit: usize,
    /// Bearer token every /api call must carry (none: no authentication; fine on loopback).
    #[arg(long, env = "LIBRARYCACHE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Listen beyond loopback without --token (refused otherwise): anyone who can reach the
    /// address can then read and change every library.
    #[arg(long, env = "LIBRARYCACHE_INSECURE_NO_TOKEN")]
    pub insecure_no_token: bool,
    /// Host names (or host:port) served besides the bound address and localhost, e.g. the
    /// name of a reverse proxy: a comma-separated list (`*`: any; disables the DNS-rebinding
    /// guard).
    #[arg(long, env = "LIBRARYCACHE_ALLOWED_HOSTS")]
    pub allowed_hosts: Option<String>,
    /// Origins whose web pages may call the API (CORS), e.g. https://app.example: a
    /// comma-separated list. Requests from any other origin are refused.
    #[arg(long, env = "LIBRARYCACHE_ALLOW_ORIGIN")]
    pub allow_origin: Option<String>,
    #[command(flatten)]
    pub secrets: SecretsArgs,
    /// Concept actions and queries reachable as POST /api/{Concept}/{action}: a comma-separated
    /// list of `Concept` or `Concept.action` (Requesting.respond never is).
    #[arg(long, env = "LIBRARYCACHE_EXPOSE", default_value = server::DEFAULT_EXPOSE)]
    pub expose: String,
    /// Seconds a request may take before it is answered 503 TIMEOUT (its work still completes).
    #[arg(long, env = "LIBRARYCACHE_REQUEST_TIMEOUT", default_value_t = 60)]
    pub request_timeout: u64,
    /// Keep action records (the flows behind GET /api/flows) this long: e.g. 30d, 12h; `0`
    /// disables age-based compaction. Concept events are never compacted.
    #[arg(long, env = "LIBRARYCACHE_LOG_RETENTION", default_value = "30d")]
    pub log_retention: String,
    /// Keep at most this many of the newest action records (whole flows).
    #[arg(long, env = "LIBRARYCACHE_LOG_MAX_ACTIONS")]
    pub log_max_actions: Option<u64>,
    /// Log every completed action as a trace line (`Concept.action {input} => {output}`),
    /// indented by cascade depth, with the firing sync; secrets redacted.
    #[arg(long, env = "LIBRARYCACHE_TRACE")]
    pub trace: bool,
    /// The most bytes of store pages the embedded store keeps in memory.
    #[arg(long, env = "LIBRARYCACHE_CACHE_SIZE", default_value_t = crate::store::sled::DEFAULT_CACHE_BYTES)]
    pub cache_size: u64,
    #[command(flatten)]
    pub sources: SourceArgs,
    /// How often the scheduled job `refresh` ticks (syncs/sources.sync reads stale libraries
    /// from Spotify on each tick), e.g. 30m; `off` cancels the job.
    #[arg(long, env = "LIBRARYCACHE_REFRESH_EVERY", default_value = "30m")]
    pub refresh_every: String,
}

impl Args {
    /// The action-log retention from `--log-retention` and `--log-max-actions`.
    fn retention(&self) -> Result<Retention, String> {
        let max_age = match self.log_retention.trim() {
            "0" | "" => None,
            text => Some(Retention::parse_age(text).map_err(|e| format!("--log-retention: {e}"))?),
        };
        Ok(Retention {
            max_age,
            max_actions: self.log_max_actions,
        })
    }

    /// The server's settings, every one checked before the store is opened.
    fn server_config(&self) -> Result<ServerConfig, String> {
        let token = server::Token::new(self.token.clone());
        server::guard::check_listen(self.addr, token.is_set(), self.insecure_no_token).map_err(|e| e.to_string())?;
        Ok(ServerConfig {
            addr: self.addr,
            body_limit: self.body_limit,
            token,
            exposure: server::Exposure::parse(&self.expose).map_err(|e| e.to_string())?,
            request_timeout: std::time::Duration::from_secs(self.request_timeout.max(1)),
            retention: self.retention()?,
            allowed_hosts: server::AllowedHosts::parse(self.allowed_hosts.as_deref().unwrap_or_default())
                .map_err(|e| e.to_string())?,
            allowed_origins: server::AllowedOrigins::parse(self.allow_origin.as_deref().unwrap_or_default())
                .map_err(|e| e.to_string())?,
            store_dir: match self.store.spec() {
                StoreSpec::Sled(dir) => Some(dir),
                _ => None,
            },
        })
    }
}

pub fn exec(app: &App, args: Args) -> Result<ExitCode, String> {
    let mut config = args.server_config()?;
    let sources = args.sources.sources(|| args.secrets.secrets(&args.store.key_dir()))?;
    let spec = args.store.spec();
    tracing::info!(store = %spec, "opening the store");
    let options = SledOptions {
        cache_bytes: args.cache_size,
    };
    let store = setup::open_with(&spec, &options)?;
    let engine = Arc::new(setup::engine(store, &args.syncs, app.registry(sources), None)?);
    setup::upgrade_projections(&engine)?;
    // The external concepts' services raise their callbacks over HTTP.
    config.exposure = config
        .exposure
        .with_callbacks(engine.registry().remote_names().map(str::to_string));
    schedule(&engine, "refresh", "--refresh-every", &args.refresh_every)?;
    let watch = &args.sources.apple.apple_library_watch_every;
    schedule(&engine, "apple-library-watch", "--apple-library-watch-every", watch)?;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime
        .block_on(server::serve(engine, config))
        .map_err(|e| format!("cannot serve on {}: {e}", args.addr))?;
    Ok(ExitCode::SUCCESS)
}

/// Schedules `job` every `every` (or cancels it for `off`), as the flag `flag` says; scheduling
/// it again with the same period changes nothing.
fn schedule(engine: &Engine, job: &str, flag: &str, every: &str) -> Result<(), String> {
    let (action, input) = match every.trim() {
        "off" | "0" => ("cancel", serde_json::json!({ "job": job })),
        every => ("schedule", serde_json::json!({ "job": job, "every": every })),
    };
    match engine.invoke("Scheduling", action, input).result {
        Ok(_) => Ok(()),
        Err(e) if action == "cancel" && e.code == "JOB_NOT_FOUND" => Ok(()),
        Err(e) => Err(format!("{flag}: {}", e.message)),
    }
}
