//! The `librarycache` command line: its arguments, and every command run against the concepts
//! of an [`App`] (serve the HTTP API, rebuild projections, run trace files…). `src/main.rs`
//! runs it for the standard concepts; an application adds its own (see `crate::app`).

use crate::app::{App, Sources};
use crate::cli::{config, library_file, rotate_key, secrets_key, spotify_export, upgrade};
use crate::engine::{trace_log, Engine, Registry, SyncSet};
use crate::server::{self, ServerConfig};
use crate::store::{Retention, SledOptions, SledStore, Store, StoreError, StoreSpec};
use crate::trace;
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "librarycache",
    version,
    about = "A local, queryable snapshot of users' music libraries"
)]
struct Cli {
    /// Configuration file (default: ./librarycache.toml when it exists). Flags and environment
    /// variables take precedence over it.
    #[arg(long, global = true, env = "LIBRARYCACHE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// The store directory, for the commands that open the store themselves (stop `serve` first:
/// a store is open in one process at a time).
#[derive(clap::Args, Clone)]
struct DataArg {
    /// Directory of the embedded store.
    #[arg(long, env = "LIBRARYCACHE_DATA", default_value = "./data")]
    data: PathBuf,
    /// The store: a `postgres://…` URL for PostgreSQL, or a directory of the embedded store
    /// (takes precedence over --data).
    #[arg(long, env = "LIBRARYCACHE_STORE", hide_env_values = true)]
    store: Option<String>,
}

/// The key the sources' credentials are sealed with.
#[derive(clap::Args, Clone)]
struct SecretsArgs {
    /// File holding the key the sources' credentials are sealed with (64 hex digits). Without
    /// it: LIBRARYCACHE_SECRETS_KEY (the digits), else secrets.key in the embedded store's
    /// directory (--data, or --store DIR; --data for PostgreSQL), generated on first start.
    #[arg(long, env = "LIBRARYCACHE_SECRETS_KEY_FILE")]
    secrets_key_file: Option<PathBuf>,
}

impl SecretsArgs {
    /// The key and where it came from (a key file, the environment, or generated in `data`).
    fn load(&self, data: &std::path::Path) -> Result<(source_kit::SecretKey, secrets_key::KeySource), String> {
        let env = std::env::var(secrets_key::KEY_ENV).ok();
        secrets_key::load(self.secrets_key_file.as_deref(), env.as_deref(), data).map_err(|e| e.to_string())
    }

    /// The key as the concepts take it, logged by its id (never its value).
    fn secrets(&self, data: &std::path::Path) -> Result<source_kit::Secrets, String> {
        let (key, source) = self.load(data)?;
        tracing::info!(key = key.id(), from = %source, "secrets key");
        Ok(source_kit::Secrets::new(key))
    }
}

/// Where Spotify is, and how often a read is full.
#[derive(clap::Args, Clone)]
struct SpotifyArgs {
    /// Base URL of the Spotify Web API (point it at a proxy or a test server).
    #[arg(long, env = "LIBRARYCACHE_SPOTIFY_API_BASE", default_value = spotify_source::DEFAULT_API_BASE)]
    spotify_api_base: String,
    /// Base URL of the Spotify accounts service (its token endpoint is {base}/api/token).
    #[arg(long, env = "LIBRARYCACHE_SPOTIFY_ACCOUNTS_BASE", default_value = spotify_source::DEFAULT_ACCOUNTS_BASE)]
    spotify_accounts_base: String,
    /// How old the last full read may be before the next read is full again (e.g. 24h, 7d):
    /// increments cannot see removals.
    #[arg(long, env = "LIBRARYCACHE_FULL_EVERY", default_value = "24h")]
    full_every: String,
    /// The longest rate-limit wait (429 Retry-After, Last.fm error 29) a read of any source
    /// waits out itself (e.g. 60s, 2m; 0s: none); a longer one ends the read with retryAt and
    /// a checkpoint it resumes from at retryAt.
    #[arg(long, env = "LIBRARYCACHE_RATE_LIMIT_WAIT", default_value = "60s")]
    rate_limit_wait: String,
}

/// A service's base URL given with `flag` must be http(s).
fn http_url(flag: &str, url: &str) -> Result<(), String> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(format!("{flag}: {url:?} is not an http:// or https:// URL"))
    }
}

impl SpotifyArgs {
    fn settings(&self) -> Result<spotify_source::Settings, String> {
        let full_every = Retention::parse_age(&self.full_every).map_err(|e| format!("--full-every: {e}"))?;
        http_url("--spotify-api-base", &self.spotify_api_base)?;
        http_url("--spotify-accounts-base", &self.spotify_accounts_base)?;
        Ok(spotify_source::Settings {
            api_base: self.spotify_api_base.clone(),
            accounts_base: self.spotify_accounts_base.clone(),
            full_every,
            max_wait: self.rate_limit_wait()?,
            ..spotify_source::Settings::default()
        })
    }

    /// `--rate-limit-wait` (every source's).
    fn rate_limit_wait(&self) -> Result<std::time::Duration, String> {
        let wait = Retention::parse_age(&self.rate_limit_wait).map_err(|e| format!("--rate-limit-wait: {e}"))?;
        wait.to_std()
            .map_err(|_| format!("--rate-limit-wait: {:?} is not a wait", self.rate_limit_wait))
    }
}

/// How PlexSource reads Plex servers (each user's server and token are given to
/// `PlexSource.connect`; `--full-every` also sets how often its play history is read in full).
#[derive(clap::Args, Clone)]
struct PlexArgs {
    /// A Plex track rated at least this many stars (0.5 to 5, in halves) is a like.
    #[arg(long, env = "LIBRARYCACHE_PLEX_LIKE_STARS", default_value_t = 4.0)]
    plex_like_stars: f64,
    /// Items asked for per page from a Plex server (X-Plex-Container-Size).
    #[arg(long, env = "LIBRARYCACHE_PLEX_PAGE_SIZE", default_value_t = plex_source::DEFAULT_PAGE_SIZE)]
    plex_page_size: u64,
}

impl PlexArgs {
    fn settings(&self, spotify: &SpotifyArgs) -> Result<plex_source::Settings, String> {
        let full_every = Retention::parse_age(&spotify.full_every).map_err(|e| format!("--full-every: {e}"))?;
        let like_rating =
            plex_source::Settings::like_stars(self.plex_like_stars).map_err(|e| format!("--plex-like-stars: {e}"))?;
        if !(1..=plex_source::MAX_PAGE_SIZE).contains(&self.plex_page_size) {
            return Err(format!(
                "--plex-page-size: {} is not from 1 to {}",
                self.plex_page_size,
                plex_source::MAX_PAGE_SIZE
            ));
        }
        Ok(plex_source::Settings {
            like_rating,
            page_size: self.plex_page_size,
            full_every,
            max_wait: spotify.rate_limit_wait()?,
            ..plex_source::Settings::default()
        })
    }
}

/// Where Last.fm is (each user's name and API key are given to `LastfmSource.connect`).
#[derive(clap::Args, Clone)]
struct LastfmArgs {
    /// Base URL of the Last.fm API (calls go to {base}/?method=…; a proxy, or a test server).
    #[arg(long, env = "LIBRARYCACHE_LASTFM_API_BASE", default_value = lastfm_source::DEFAULT_API_BASE)]
    lastfm_api_base: String,
}

impl LastfmArgs {
    fn settings(&self, spotify: &SpotifyArgs) -> Result<lastfm_source::Settings, String> {
        http_url("--lastfm-api-base", &self.lastfm_api_base)?;
        Ok(lastfm_source::Settings {
            api_base: self.lastfm_api_base.clone(),
            max_wait: spotify.rate_limit_wait()?,
            ..lastfm_source::Settings::default()
        })
    }
}

/// Where the Apple Music API is, and how often a connected Library.xml is looked at.
#[derive(clap::Args, Clone)]
struct AppleArgs {
    /// Base URL of the Apple Music API (a proxy, or a test server).
    #[arg(long, env = "LIBRARYCACHE_APPLE_MUSIC_API_BASE", default_value = apple_source::DEFAULT_API_BASE)]
    apple_music_api_base: String,
    /// How often each connected Library.xml (AppleLibraryFile) is looked at: the job
    /// `apple-library-watch` (the file is read only when its modification time moved), e.g. 1m;
    /// `off` cancels the job.
    #[arg(long, env = "LIBRARYCACHE_APPLE_LIBRARY_WATCH_EVERY", default_value = "1m")]
    apple_library_watch_every: String,
}

impl AppleArgs {
    fn settings(&self, spotify: &SpotifyArgs) -> Result<(apple_library::Settings, apple_source::Settings), String> {
        let full_every = Retention::parse_age(&spotify.full_every).map_err(|e| format!("--full-every: {e}"))?;
        http_url("--apple-music-api-base", &self.apple_music_api_base)?;
        Ok((
            apple_library::Settings { full_every },
            apple_source::Settings {
                api_base: self.apple_music_api_base.clone(),
                full_every,
                ..apple_source::Settings::default()
            },
        ))
    }
}

// Parsed once per run: the size of the `serve` variant costs nothing worth boxing for.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API on the embedded store (or on PostgreSQL with --store postgres://…).
    Serve {
        /// Directory of the embedded store (created if missing).
        #[arg(long, env = "LIBRARYCACHE_DATA", default_value = "./data")]
        data: PathBuf,
        /// The store: a `postgres://…` URL for PostgreSQL (several instances may share one
        /// database), or a directory of the embedded store (takes precedence over --data).
        #[arg(long, env = "LIBRARYCACHE_STORE", hide_env_values = true)]
        store: Option<String>,
        /// Address to listen on.
        #[arg(long, env = "LIBRARYCACHE_ADDR", default_value = "127.0.0.1:5765")]
        addr: SocketAddr,
        /// Directory of sync files (default: ./syncs when it exists).
        #[arg(long, env = "LIBRARYCACHE_SYNCS")]
        syncs: Option<PathBuf>,
        /// Largest accepted request body, in bytes.
        #[arg(long, env = "LIBRARYCACHE_BODY_LIMIT", default_value_t = server::DEFAULT_BODY_LIMIT)]
        body_limit: usize,
        /// Bearer token every /api call must carry (none: no authentication; fine on loopback).
        #[arg(long, env = "LIBRARYCACHE_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Listen beyond loopback without --token (refused otherwise): anyone who can reach the
        /// address can then read and change every library.
        #[arg(long, env = "LIBRARYCACHE_INSECURE_NO_TOKEN")]
        insecure_no_token: bool,
        /// Host names (or host:port) served besides the bound address and localhost, e.g. the
        /// name of a reverse proxy: a comma-separated list (`*`: any; disables the DNS-rebinding
        /// guard).
        #[arg(long, env = "LIBRARYCACHE_ALLOWED_HOSTS")]
        allowed_hosts: Option<String>,
        /// Origins whose web pages may call the API (CORS), e.g. https://app.example: a
        /// comma-separated list. Requests from any other origin are refused.
        #[arg(long, env = "LIBRARYCACHE_ALLOW_ORIGIN")]
        allow_origin: Option<String>,
        #[command(flatten)]
        secrets: SecretsArgs,
        /// Concept actions and queries reachable as POST /api/{Concept}/{action}: a comma-separated
        /// list of `Concept` or `Concept.action` (Requesting.respond never is).
        #[arg(
            long,
            env = "LIBRARYCACHE_EXPOSE",
            default_value = server::DEFAULT_EXPOSE
        )]
        expose: String,
        /// Seconds a request may take before it is answered 503 TIMEOUT (its work still completes).
        #[arg(long, env = "LIBRARYCACHE_REQUEST_TIMEOUT", default_value_t = 60)]
        request_timeout: u64,
        /// Keep action records (the flows behind GET /api/flows) this long: e.g. 30d, 12h; `0`
        /// disables age-based compaction. Concept events are never compacted.
        #[arg(long, env = "LIBRARYCACHE_LOG_RETENTION", default_value = "30d")]
        log_retention: String,
        /// Keep at most this many of the newest action records (whole flows).
        #[arg(long, env = "LIBRARYCACHE_LOG_MAX_ACTIONS")]
        log_max_actions: Option<u64>,
        /// Log every completed action as a trace line (`Concept.action {input} => {output}`),
        /// indented by cascade depth, with the firing sync; secrets redacted.
        #[arg(long, env = "LIBRARYCACHE_TRACE")]
        trace: bool,
        /// The most bytes of store pages the embedded store keeps in memory.
        #[arg(long, env = "LIBRARYCACHE_CACHE_SIZE", default_value_t = crate::store::sled::DEFAULT_CACHE_BYTES)]
        cache_size: u64,
        #[command(flatten)]
        spotify: SpotifyArgs,
        #[command(flatten)]
        plex: PlexArgs,
        #[command(flatten)]
        lastfm: LastfmArgs,
        #[command(flatten)]
        apple: AppleArgs,
        /// How often the scheduled job `refresh` ticks (syncs/schedule.sync reads stale libraries
        /// from Spotify on each tick), e.g. 30m; `off` cancels the job.
        #[arg(long, env = "LIBRARYCACHE_REFRESH_EVERY", default_value = "30m")]
        refresh_every: String,
    },
    /// Read a user's library from Spotify now, with a progress bar, and cache it (the user must
    /// have connected: POST /api/SpotifySource/connect). Stop `serve` first.
    Fetch {
        #[command(flatten)]
        data: DataArg,
        #[arg(long)]
        user: String,
        /// `full` or `incremental` (default: SpotifySource chooses).
        #[arg(long, value_parser = ["full", "incremental"])]
        mode: Option<String>,
        /// Directory of sync files (default: ./syncs when it exists).
        #[arg(long, env = "LIBRARYCACHE_SYNCS")]
        syncs: Option<PathBuf>,
        #[command(flatten)]
        spotify: SpotifyArgs,
        #[command(flatten)]
        secrets: SecretsArgs,
    },
    /// Seal every source's stored credentials again with a new key (appending events), then put
    /// the new key in place of the old key file. Stop `serve` first (every instance, on
    /// PostgreSQL). A run cut short is run again and finishes.
    RotateKey {
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        secrets: SecretsArgs,
        /// Write the new key here (or use the key already there) and leave the old key file
        /// alone; default: KEYFILE.next, which then replaces the key file.
        #[arg(long)]
        new_key_file: Option<PathBuf>,
    },
    /// Check sync files against the concepts' schemas; print every problem as file:line:col.
    Check {
        /// Directory of sync files.
        #[arg(long, env = "LIBRARYCACHE_SYNCS", default_value = "./syncs")]
        syncs: PathBuf,
    },
    /// Move an embedded store of the first storage layout to the current one, in place (every
    /// command does this by itself when it opens an old store); the old files are kept beside it.
    Upgrade {
        #[command(flatten)]
        data: DataArg,
    },
    /// Drop every projection and rebuild it by replaying the event log.
    Rebuild {
        #[command(flatten)]
        data: DataArg,
    },
    /// Print a user's cached library counts, last sync and version.
    Stats {
        #[command(flatten)]
        data: DataArg,
        /// The user.
        #[arg(long)]
        user: String,
        /// Print the status as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Forget a user's cached library (its history stays in the log).
    Clear {
        #[command(flatten)]
        data: DataArg,
        #[arg(long)]
        user: String,
    },
    /// Load a user's library from a JSON file ({tracks, likes, plays, playlists}, as ingest
    /// takes it): ingest for a new user, sync for a cached one. With `--format spotify-export`,
    /// merge a Spotify account-data export directory (liked songs, playlists, streaming history).
    Import {
        #[command(flatten)]
        data: DataArg,
        #[arg(long)]
        user: String,
        /// What FILE is (default: a library JSON file).
        #[arg(long, value_enum)]
        format: Option<ImportFormat>,
        /// Directory of sync files (default: ./syncs when it exists).
        #[arg(long, env = "LIBRARYCACHE_SYNCS")]
        syncs: Option<PathBuf>,
        /// The JSON file (with `--format spotify-export`: the export's directory; with
        /// `--format apple-library`: `Library.xml`).
        file: PathBuf,
    },
    /// Write a user's cached library as JSON (the shape import reads) to stdout or --out.
    Export {
        #[command(flatten)]
        data: DataArg,
        #[arg(long)]
        user: String,
        /// Write here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run trace files against a temporary store; print each step, its actual output and the
    /// actions syncs fired.
    Trace {
        /// Trace files (`*.trace`).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Directory of sync files (default: ./syncs when it exists).
        #[arg(long, env = "LIBRARYCACHE_SYNCS")]
        syncs: Option<PathBuf>,
    },
    /// Copy every event, action record and engine row of one store into another, empty one, then
    /// rebuild the projections there and verify the counts (stop `serve` on both first).
    Migrate {
        /// The store to copy: a directory of the embedded store or a `postgres://…` URL.
        #[arg(long)]
        from: String,
        /// The empty store to copy into.
        #[arg(long)]
        to: String,
    },
}

/// The formats `import --format` reads besides a library file.
#[derive(Clone, Copy, clap::ValueEnum)]
enum ImportFormat {
    /// A Spotify account-data or extended streaming history export (a directory).
    SpotifyExport,
    /// A Music.app / iTunes library file (`Library.xml`, File › Library › Export Library…):
    /// a complete read (ingest, or sync: likes and playlists the file no longer has go).
    AppleLibrary,
}

/// Runs the command line `args` (the program name first) against `app`'s concepts.
pub fn main(app: &App, args: Vec<std::ffi::OsString>) -> ExitCode {
    let matches = match Cli::command().try_get_matches_from(args) {
        Ok(matches) => matches,
        Err(e) => e.exit(),
    };
    let mut cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    if let Err(message) = apply_config_file(&mut cli, &matches) {
        eprintln!("error: {message}");
        return ExitCode::FAILURE;
    }
    let trace = matches!(cli.command, Command::Serve { trace: true, .. });
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "librarycache=info,tower_http=info".into());
    if !trace {
        // The trace log is opt-in: `--trace`, or RUST_LOG naming its target.
        if std::env::var("RUST_LOG").is_err() {
            filter = filter.add_directive("librarycache::trace=off".parse().expect("a valid directive"));
        }
    } else {
        filter = filter.add_directive("librarycache::trace=info".parse().expect("a valid directive"));
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match concept_core::SystemClock::from_env() {
        Ok(clock) if clock.offset() != chrono::Duration::zero() => {
            tracing::warn!(ahead = %clock.offset(), "the clock runs ahead of the system's (a test setting)")
        }
        Ok(_) => {}
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    }
    match run(app, cli) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Fills the settings no flag or environment variable gave from the configuration file.
fn apply_config_file(cli: &mut Cli, matches: &ArgMatches) -> Result<(), String> {
    let file = config::load(cli.config.as_deref()).map_err(|e| e.to_string())?;
    let Some((_, sub)) = matches.subcommand() else {
        return Ok(());
    };
    let unset = |id: &str| {
        matches!(
            sub.try_contains_id(id).ok().and_then(|_| sub.value_source(id)),
            None | Some(ValueSource::DefaultValue)
        )
    };
    macro_rules! layer {
        ($field:expr, $id:literal, $value:expr) => {
            if unset($id) {
                if let Some(v) = $value.clone() {
                    $field = v;
                }
            }
        };
    }
    match &mut cli.command {
        Command::Serve {
            data,
            store,
            addr,
            syncs,
            body_limit,
            token,
            insecure_no_token,
            allowed_hosts,
            allow_origin,
            secrets,
            expose,
            request_timeout,
            log_retention,
            log_max_actions,
            trace,
            cache_size,
            spotify,
            plex,
            lastfm,
            apple,
            refresh_every,
        } => {
            layer!(
                apple.apple_music_api_base,
                "apple_music_api_base",
                file.apple_music_api_base
            );
            layer!(
                apple.apple_library_watch_every,
                "apple_library_watch_every",
                file.apple_library_watch_every
            );
            layer!(*cache_size, "cache_size", file.cache_size);
            layer!(*insecure_no_token, "insecure_no_token", file.insecure_no_token);
            layer!(*allowed_hosts, "allowed_hosts", file.allowed_hosts.clone().map(Some));
            layer!(*allow_origin, "allow_origin", file.allow_origin.clone().map(Some));
            layer!(
                secrets.secrets_key_file,
                "secrets_key_file",
                file.secrets_key_file.clone().map(Some)
            );
            layer_spotify(spotify, &unset, &file);
            layer!(lastfm.lastfm_api_base, "lastfm_api_base", file.lastfm_api_base);
            layer!(plex.plex_like_stars, "plex_like_stars", file.plex_like_stars);
            layer!(plex.plex_page_size, "plex_page_size", file.plex_page_size);
            layer!(*refresh_every, "refresh_every", file.refresh_every);
            layer!(*data, "data", file.data);
            layer!(*store, "store", file.store.clone().map(Some));
            layer!(*addr, "addr", file.addr);
            layer!(*syncs, "syncs", file.syncs.clone().map(Some));
            layer!(*body_limit, "body_limit", file.body_limit);
            layer!(*token, "token", file.token.clone().map(Some));
            layer!(*expose, "expose", file.expose);
            layer!(*request_timeout, "request_timeout", file.request_timeout);
            layer!(*log_retention, "log_retention", file.log_retention);
            layer!(*log_max_actions, "log_max_actions", file.log_max_actions.map(Some));
            layer!(*trace, "trace", file.trace);
        }
        Command::Check { syncs } => layer!(*syncs, "syncs", file.syncs),
        Command::Fetch {
            data,
            syncs,
            spotify,
            secrets,
            ..
        } => {
            layer!(
                secrets.secrets_key_file,
                "secrets_key_file",
                file.secrets_key_file.clone().map(Some)
            );
            layer_spotify(spotify, &unset, &file);
            layer!(data.data, "data", file.data);
            layer!(data.store, "store", file.store.map(Some));
            layer!(*syncs, "syncs", file.syncs.clone().map(Some));
        }
        Command::Migrate { .. } => {}
        Command::RotateKey { data, secrets, .. } => {
            layer!(
                secrets.secrets_key_file,
                "secrets_key_file",
                file.secrets_key_file.clone().map(Some)
            );
            layer!(data.data, "data", file.data);
            layer!(data.store, "store", file.store.map(Some));
        }
        Command::Trace { syncs, .. } => layer!(*syncs, "syncs", file.syncs.clone().map(Some)),
        Command::Import { data, syncs, .. } => {
            layer!(data.data, "data", file.data);
            layer!(data.store, "store", file.store.map(Some));
            layer!(*syncs, "syncs", file.syncs.clone().map(Some));
        }
        Command::Rebuild { data }
        | Command::Upgrade { data }
        | Command::Stats { data, .. }
        | Command::Clear { data, .. }
        | Command::Export { data, .. } => {
            layer!(data.data, "data", file.data);
            layer!(data.store, "store", file.store.map(Some));
        }
    }
    Ok(())
}

/// Fills the Spotify settings no flag or environment variable gave from the configuration file.
fn layer_spotify(spotify: &mut SpotifyArgs, unset: &dyn Fn(&str) -> bool, file: &config::FileConfig) {
    for (id, field, value) in [
        (
            "spotify_api_base",
            &mut spotify.spotify_api_base,
            &file.spotify_api_base,
        ),
        (
            "spotify_accounts_base",
            &mut spotify.spotify_accounts_base,
            &file.spotify_accounts_base,
        ),
        ("full_every", &mut spotify.full_every, &file.full_every),
        ("rate_limit_wait", &mut spotify.rate_limit_wait, &file.rate_limit_wait),
    ] {
        if let (true, Some(v)) = (unset(id), value) {
            *field = v.clone();
        }
    }
}

/// Where the secrets key is kept when none is given: the embedded store's own directory, or
/// `--data` for a PostgreSQL store.
fn key_dir(spec: &StoreSpec, data: &std::path::Path) -> PathBuf {
    match spec {
        StoreSpec::Sled(dir) => dir.clone(),
        _ => data.to_path_buf(),
    }
}

/// The store `--store` names, or else the sled store in `--data`.
fn spec(data: &std::path::Path, store: Option<&str>) -> StoreSpec {
    match store {
        Some(text) if !text.trim().is_empty() => StoreSpec::parse(text),
        _ => StoreSpec::Sled(data.to_path_buf()),
    }
}

fn open_spec(spec: &StoreSpec) -> Result<Arc<dyn Store>, String> {
    open_spec_with(spec, &SledOptions::default())
}

/// Opens a store; an embedded store of the first layout is upgraded first (with a message on
/// stderr), so every command works on an old data directory.
fn open_spec_with(spec: &StoreSpec, options: &SledOptions) -> Result<Arc<dyn Store>, String> {
    match spec.open_with(options) {
        Err(StoreError::OldLayout(_)) => {
            let StoreSpec::Sled(dir) = spec else {
                return Err(format!("cannot open the store at {spec}: it has an old layout"));
            };
            eprintln!(
                "upgrading the store at {} to the current storage layout…",
                dir.display()
            );
            let report =
                upgrade::upgrade(dir, options).map_err(|e| format!("cannot upgrade the store at {spec}: {e}"))?;
            if let Some(report) = report {
                eprintln!("{report}");
            }
            spec.open_with(options)
                .map_err(|e| format!("cannot open the store at {spec}: {e}"))
        }
        other => other.map_err(|e| format!("cannot open the store at {spec}: {e}")),
    }
}

/// Rebuilds projections older than this build's projection layout (with a message on stderr),
/// so `serve` answers every query from current rows.
fn upgrade_projections(engine: &Engine) -> Result<(), String> {
    let old = upgrade::libraries_without_name_index(engine).map_err(|e| e.to_string())?;
    if old.is_empty() {
        return Ok(());
    }
    eprintln!(
        "rebuilding the projections: {} librar{} predate the playlist name index…",
        old.len(),
        if old.len() == 1 { "y" } else { "ies" }
    );
    if let Some(report) =
        upgrade::rebuild_old_projections(engine).map_err(|e| format!("cannot upgrade the projections: {e}"))?
    {
        eprintln!("{report}");
    }
    Ok(())
}

fn open(data: &DataArg) -> Result<Arc<dyn Store>, String> {
    open_spec(&spec(&data.data, data.store.as_deref()))
}

/// The action-log retention from `--log-retention` and `--log-max-actions`.
fn retention(age: &str, max_actions: Option<u64>) -> Result<Retention, String> {
    let max_age = match age.trim() {
        "0" | "" => None,
        text => Some(Retention::parse_age(text).map_err(|e| format!("--log-retention: {e}"))?),
    };
    Ok(Retention { max_age, max_actions })
}

/// The sync directory to load: the one given, or `./syncs` when it exists (none otherwise).
fn sync_dir(given: Option<PathBuf>) -> Option<PathBuf> {
    given.or_else(|| Some(PathBuf::from("./syncs")).filter(|d| d.is_dir()))
}

/// An engine over `store` firing the syncs of `dir` (checked first; none without a directory).
fn engine(store: Arc<dyn Store>, dir: Option<PathBuf>, registry: Registry) -> Result<Engine, String> {
    let specs = registry.specs();
    let engine = Engine::new(store, registry);
    Ok(match sync_dir(dir) {
        Some(dir) => {
            let files = load_syncs(&dir, &specs)?;
            let syncs = SyncSet::new(files);
            tracing::info!(syncs = syncs.len(), dir = %dir.display(), "syncs loaded");
            engine.with_syncs(syncs)
        }
        None => engine,
    })
}

/// Loads and checks every sync file in a directory; the error lists every problem.
fn load_syncs(
    dir: &std::path::Path,
    specs: &[concept_core::ConceptSpec],
) -> Result<Vec<crate::sync::SyncFile>, String> {
    crate::sync::load_checked(dir, specs).map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        format!("{} problem(s) in the sync files:\n{}", lines.len(), lines.join("\n"))
    })
}

/// Schedules the job `refresh` every `every` (or cancels it for `off`); scheduling it again
/// with the same period changes nothing.
fn schedule_refresh(engine: &Engine, every: &str) -> Result<(), String> {
    schedule_job(engine, "refresh", "--refresh-every", every)
}

/// Schedules `job` every `every` (or cancels it for `off`), as the flag `flag` says.
fn schedule_job(engine: &Engine, job: &str, flag: &str, every: &str) -> Result<(), String> {
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

fn run(app: &App, cli: Cli) -> Result<ExitCode, String> {
    match cli.command {
        Command::Serve {
            data,
            store,
            addr,
            syncs,
            body_limit,
            token,
            insecure_no_token,
            allowed_hosts,
            allow_origin,
            secrets,
            expose,
            request_timeout,
            log_retention,
            log_max_actions,
            trace: _,
            cache_size,
            spotify,
            plex,
            lastfm,
            apple,
            refresh_every,
        } => {
            let token = server::Token::new(token);
            server::guard::check_listen(addr, token.is_set(), insecure_no_token).map_err(|e| e.to_string())?;
            let allowed_hosts =
                server::AllowedHosts::parse(allowed_hosts.as_deref().unwrap_or_default()).map_err(|e| e.to_string())?;
            let allowed_origins = server::AllowedOrigins::parse(allow_origin.as_deref().unwrap_or_default())
                .map_err(|e| e.to_string())?;
            let retention = retention(&log_retention, log_max_actions)?;
            let exposure = server::Exposure::parse(&expose).map_err(|e| e.to_string())?;
            let spec = spec(&data, store.as_deref());
            let registry = app.registry(Sources {
                plex: plex.settings(&spotify)?,
                spotify: spotify.settings()?,
                lastfm: lastfm.settings(&spotify)?,
                apple_file: apple.settings(&spotify)?.0,
                apple_music: apple.settings(&spotify)?.1,
                secrets: secrets.secrets(&key_dir(&spec, &data))?,
            });
            tracing::info!(store = %spec, "opening the store");
            let store_dir = match &spec {
                StoreSpec::Sled(dir) => Some(dir.clone()),
                _ => None,
            };
            let options = SledOptions {
                cache_bytes: cache_size,
            };
            let engine = Arc::new(engine(open_spec_with(&spec, &options)?, syncs, registry)?);
            upgrade_projections(&engine)?;
            schedule_refresh(&engine, &refresh_every)?;
            schedule_job(
                &engine,
                "apple-library-watch",
                "--apple-library-watch-every",
                &apple.apple_library_watch_every,
            )?;
            let config = ServerConfig {
                addr,
                body_limit,
                token,
                exposure,
                request_timeout: std::time::Duration::from_secs(request_timeout.max(1)),
                retention,
                allowed_hosts,
                allowed_origins,
                store_dir,
            };
            let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("cannot start the runtime: {e}"))?;
            runtime
                .block_on(server::serve(engine, config))
                .map_err(|e| format!("cannot serve on {addr}: {e}"))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { syncs } => {
            let files = load_syncs(&syncs, &app.registry(Sources::default()).specs())?;
            let count: usize = files.iter().map(|f| f.syncs.len()).sum();
            println!("{} sync file(s), {count} sync(s): no problems", files.len());
            Ok(ExitCode::SUCCESS)
        }
        Command::Stats { data, user, json } => {
            let engine = Engine::new(open(&data)?, app.registry(Sources::default()));
            let stats = crate::cli::stats::read(&engine, &user)?;
            if json {
                println!("{}", stats.to_json());
            } else {
                println!("{}", stats.lines(&user).join("\n"));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Fetch {
            data,
            user,
            mode,
            syncs,
            spotify,
            secrets,
        } => {
            let registry = app.registry(Sources {
                spotify: spotify.settings()?,
                secrets: secrets.secrets(&key_dir(&spec(&data.data, data.store.as_deref()), &data.data))?,
                ..Sources::default()
            });
            let engine = Arc::new(engine(open(&data)?, syncs, registry)?);
            let status =
                crate::cli::fetch::run(Arc::clone(&engine), &user, mode.as_deref()).map_err(|e| e.to_string())?;
            let counts = &status["counts"];
            println!(
                "{} read of {user}: {} tracks, {} likes, {} plays, {} playlists ({} items without a track skipped, {} playlists unreadable)",
                if status["complete"] == true { "complete" } else { "incremental" },
                counts["tracks"], counts["likes"], counts["plays"], counts["playlists"], counts["skipped"], counts["unreadable"]
            );
            println!("{}", crate::cli::stats::read(&engine, &user)?.lines(&user).join("\n"));
            Ok(ExitCode::SUCCESS)
        }
        Command::Clear { data, user } => {
            let engine = Engine::new(open(&data)?, app.registry(Sources::default()));
            let answer = engine.invoke("LibraryCache", "clear", serde_json::json!({ "userId": user }));
            answer.result.map_err(|e| format!("{}: {}", e.code, e.message))?;
            println!("cleared the cached library of {user} (its history stays in the log)");
            Ok(ExitCode::SUCCESS)
        }
        Command::Import {
            data,
            user,
            format: None,
            syncs,
            file,
        } => {
            let library = library_file::read(&file, &user).map_err(|e| e.to_string())?;
            let engine = engine(open(&data)?, syncs, app.registry(Sources::default()))?;
            let (action, out) = library_file::import(&engine, library).map_err(|e| e.to_string())?;
            println!("{action}: {out}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Import {
            data,
            user,
            format: Some(ImportFormat::SpotifyExport),
            syncs,
            file,
        } => {
            let engine = engine(open(&data)?, syncs, app.registry(Sources::default()))?;
            let summary = spotify_export::run(&engine, &user, &file).map_err(|e| e.to_string())?;
            println!("{summary}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Import {
            data,
            user,
            format: Some(ImportFormat::AppleLibrary),
            syncs,
            file,
        } => {
            let engine = engine(open(&data)?, syncs, Registry::standard())?;
            let summary = crate::cli::apple_library::run(&engine, &user, &file).map_err(|e| e.to_string())?;
            println!("{summary}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Export { data, user, out } => {
            let engine = Engine::new(open(&data)?, app.registry(Sources::default()));
            let library = library_file::export(&engine, &user).map_err(|e| e.to_string())?;
            let text = serde_json::to_string_pretty(&library).map_err(|e| e.to_string())?;
            match out {
                Some(path) => {
                    std::fs::write(&path, text + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()))?
                }
                None => println!("{text}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Upgrade { data } => {
            let StoreSpec::Sled(dir) = spec(&data.data, data.store.as_deref()) else {
                return Err("upgrade moves an embedded (sled) store; a PostgreSQL store needs none".to_string());
            };
            if let Some(report) = upgrade::upgrade(&dir, &SledOptions::default()).map_err(|e| e.to_string())? {
                println!("{report}");
            }
            let engine = Engine::new(
                open_spec(&StoreSpec::Sled(dir.clone()))?,
                app.registry(Sources::default()),
            );
            match upgrade::rebuild_old_projections(&engine).map_err(|e| e.to_string())? {
                Some(report) => println!("{report}"),
                None => println!(
                    "the store at {} has the current layout and projections: nothing to upgrade",
                    dir.display()
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Rebuild { data } => {
            let engine = Engine::new(open(&data)?, app.registry(Sources::default()));
            let started = std::time::Instant::now();
            let events = engine.rebuild().map_err(|e| format!("rebuild failed: {e}"))?;
            println!("rebuilt projections from {events} events in {:.2?}", started.elapsed());
            Ok(ExitCode::SUCCESS)
        }
        Command::RotateKey {
            data,
            secrets,
            new_key_file,
        } => {
            let (current, source) = secrets.load(&key_dir(&spec(&data.data, data.store.as_deref()), &data.data))?;
            let store = open(&data)?;
            eprintln!("rotating the secrets key {} (from {source})", current.id());
            let report =
                rotate_key::run(store, current, &source, new_key_file.as_deref()).map_err(|e| e.to_string())?;
            println!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate { from, to } => {
            let (from, to) = (StoreSpec::parse(&from), StoreSpec::parse(&to));
            if from == to {
                return Err("--from and --to name the same store".to_string());
            }
            let source = open_spec(&from)?;
            let target = open_spec(&to)?;
            eprintln!("copying {from} into {to}");
            let report = crate::cli::migrate::run(source, target, &mut crate::cli::migrate::Progress::bar())
                .map_err(|e| format!("migrate failed: {e}"))?;
            println!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Trace { files, syncs } => {
            let syncs = sync_dir(syncs);
            let mut ok = true;
            for file in files {
                let name = file.display().to_string();
                let bytes = std::fs::read(&file).map_err(|e| format!("cannot read {name}: {e}"))?;
                let steps = trace::parse_trace_bytes(&name, &bytes).map_err(|e| e.to_string())?;
                let store = SledStore::temporary().map_err(|e| format!("cannot open a temporary store: {e}"))?;
                let clock = trace::trace_clock();
                let engine = engine(Arc::new(store), syncs.clone(), app.registry(Sources::default()))?
                    .with_clock(Arc::new(clock.clone()));
                let report = trace::run_trace(&engine, &clock, &name, &steps);
                for s in &report.steps {
                    let mark = if s.mismatch.is_some() { "FAIL" } else { "ok  " };
                    println!(
                        "{mark} {}:{} {}.{} => {}",
                        name, s.step.line, s.step.concept, s.step.action, s.actual
                    );
                    for fired in &s.cascade {
                        println!("     {}", trace_log::line(fired));
                    }
                }
                for f in report.failures() {
                    eprintln!("{f}");
                }
                ok &= report.passed();
            }
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
    }
}
