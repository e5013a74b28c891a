//! The command line's shape: the `librarycache` command, its subcommands, and the settings
//! several commands share. Each setting is declared once, as a clap field: its flag, its
//! environment variable and its default; its key in `librarycache.toml` is its flag's name
//! (`config` reads the file by asking clap for the flags, so no list of keys is kept anywhere).
//! Each command's own settings live beside its body, in `src/cli/<command>.rs`.

use crate::app::{App, Sources};
use crate::cli::setup;
use crate::cli::{
    check, clear, export, fetch, import, migrate, rebuild, rotate_key, secrets_key, serve, stats, trace, upgrade,
};
use crate::engine::Engine;
use crate::store::StoreSpec;
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[command(
    name = "librarycache",
    version,
    about = "A local, queryable snapshot of users' music libraries"
)]
pub struct Cli {
    /// Configuration file (default: ./librarycache.toml when it exists): any flag, by its name
    /// without the dashes. Flags and environment variables take precedence over it.
    #[arg(long, global = true, env = "LIBRARYCACHE_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per run: the size of the `serve` variant costs nothing worth boxing for.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum Command {
    /// Serve the HTTP API on the embedded store (or on PostgreSQL with --store postgres://…).
    Serve(serve::Args),
    /// Read a user's library from Spotify now, with a progress bar, and cache it (the user must
    /// have connected: POST /api/SpotifySource/connect). Stop `serve` first.
    Fetch(fetch::Args),
    /// Seal every source's stored credentials again with a new key (appending events), then put
    /// the new key in place of the old key file. Stop `serve` first (every instance, on
    /// PostgreSQL). A run cut short is run again and finishes.
    RotateKey(rotate_key::Args),
    /// Check sync files against the concepts' schemas; print every problem as file:line:col.
    Check(check::Args),
    /// Move an embedded store of the first storage layout to the current one, in place (every
    /// command does this by itself when it opens an old store); the old files are kept beside it.
    Upgrade(upgrade::Args),
    /// Drop every projection and rebuild it by replaying the event log.
    Rebuild(rebuild::Args),
    /// Print a user's cached library counts, last sync and version.
    Stats(stats::Args),
    /// Forget a user's cached library (its history stays in the log).
    Clear(clear::Args),
    /// Load a user's library from a JSON file ({tracks, likes, plays, playlists}, as ingest
    /// takes it): ingest for a new user, sync for a cached one. With `--format spotify-export`,
    /// merge a Spotify account-data export directory (liked songs, playlists, streaming history).
    Import(import::Args),
    /// Write a user's cached library as JSON (the shape import reads) to stdout or --out.
    Export(export::Args),
    /// Run trace files against a temporary store; print each step, its actual output and the
    /// actions syncs fired.
    Trace(trace::Args),
    /// Copy every event, action record and engine row of one store into another, empty one, then
    /// rebuild the projections there and verify the counts (stop `serve` on both first).
    Migrate(migrate::Args),
}

/// Where the store is. `serve` creates it when missing; the other commands open it themselves
/// (stop `serve` first: an embedded store is open in one process at a time).
#[derive(clap::Args, Clone)]
pub struct StoreArgs {
    /// Directory of the embedded store (created if missing).
    #[arg(long, env = "LIBRARYCACHE_DATA", default_value = "./data")]
    pub data: PathBuf,
    /// The store: a `postgres://…` URL for PostgreSQL (several instances may share one
    /// database), or a directory of the embedded store (takes precedence over --data).
    #[arg(long, env = "LIBRARYCACHE_STORE", hide_env_values = true)]
    pub store: Option<String>,
}

impl StoreArgs {
    /// An engine over the store with the app's concepts (default settings) and no syncs.
    pub fn engine(&self, app: &App) -> Result<Engine, String> {
        Ok(Engine::new(
            setup::open(&self.spec())?,
            app.registry(Sources::default()),
        ))
    }

    /// The store `--store` names, or else the embedded store in `--data`.
    pub fn spec(&self) -> StoreSpec {
        match self.store.as_deref() {
            Some(text) if !text.trim().is_empty() => StoreSpec::parse(text),
            _ => StoreSpec::Sled(self.data.clone()),
        }
    }

    /// Where the secrets key is kept when none is given: the embedded store's own directory, or
    /// `--data` for a PostgreSQL store.
    pub fn key_dir(&self) -> PathBuf {
        match self.spec() {
            StoreSpec::Sled(dir) => dir,
            _ => self.data.clone(),
        }
    }
}

/// The sync files a command fires, and the external concepts they may name.
#[derive(clap::Args, Clone)]
pub struct SyncsArgs {
    /// Directory of sync files (default: ./syncs when it exists).
    #[arg(long, env = "LIBRARYCACHE_SYNCS")]
    pub syncs: Option<PathBuf>,
    /// Directory of external concept declarations (`{Name}.external.json`), read besides
    /// those in the sync directory.
    #[arg(long, env = "LIBRARYCACHE_CONCEPTS")]
    pub concepts: Option<PathBuf>,
}

impl SyncsArgs {
    /// The directory to load: the one given, or `./syncs` when it exists (none otherwise).
    pub fn dir(&self) -> Option<PathBuf> {
        self.syncs
            .clone()
            .or_else(|| Some(PathBuf::from("./syncs")).filter(|d| d.is_dir()))
    }
}

/// The key the sources' credentials are sealed with.
#[derive(clap::Args, Clone)]
pub struct SecretsArgs {
    /// File holding the key the sources' credentials are sealed with (64 hex digits). Without
    /// it: LIBRARYCACHE_SECRETS_KEY (the digits), else secrets.key in the embedded store's
    /// directory (--data, or --store DIR; --data for PostgreSQL), generated on first start.
    #[arg(long, env = "LIBRARYCACHE_SECRETS_KEY_FILE")]
    pub secrets_key_file: Option<PathBuf>,
}

impl SecretsArgs {
    /// The key and where it came from (a key file, the environment, or generated in `dir`).
    pub fn load(&self, dir: &Path) -> Result<(source_kit::SecretKey, secrets_key::KeySource), String> {
        let env = std::env::var(secrets_key::KEY_ENV).ok();
        secrets_key::load(self.secrets_key_file.as_deref(), env.as_deref(), dir).map_err(|e| e.to_string())
    }

    /// The key as the concepts take it, logged by its id (never its value).
    pub fn secrets(&self, dir: &Path) -> Result<source_kit::Secrets, String> {
        let (key, source) = self.load(dir)?;
        tracing::info!(key = key.id(), from = %source, "secrets key");
        Ok(source_kit::Secrets::new(key))
    }
}

/// The user whose cached library a command works on, and the store it is in.
#[derive(clap::Args, Clone)]
pub struct LibraryArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The user.
    #[arg(long)]
    pub user: String,
}
