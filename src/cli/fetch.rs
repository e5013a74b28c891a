//! `librarycache fetch --user U`: runs one Spotify read in this process, with a progress bar,
//! and waits until the syncs have handed it to LibraryCache.

use crate::app::{App, Sources};
use crate::cli::args::{LibraryArgs, SecretsArgs, SyncsArgs};
use crate::cli::sources::{ReadArgs, SpotifyArgs};
use crate::cli::{setup, stats};
use crate::engine::{Engine, Roles};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub library: LibraryArgs,
    /// `full` or `incremental` (default: SpotifySource chooses).
    #[arg(long, value_parser = ["full", "incremental"])]
    pub mode: Option<String>,
    #[command(flatten)]
    pub syncs: SyncsArgs,
    #[command(flatten)]
    pub read: ReadArgs,
    #[command(flatten)]
    pub spotify: SpotifyArgs,
    #[command(flatten)]
    pub secrets: SecretsArgs,
}

/// Runs the read, then prints what it read and the user's library.
pub fn exec(app: &App, args: Args) -> Result<std::process::ExitCode, String> {
    let registry = app.registry(Sources {
        spotify: args.spotify.settings(&args.read)?,
        secrets: args.secrets.secrets(&args.library.store.key_dir())?,
        ..Sources::default()
    });
    let engine = Arc::new(setup::engine(
        setup::open(&args.library.store.spec())?,
        &args.syncs,
        registry,
        None,
    )?);
    let user = &args.library.user;
    let status = run(Arc::clone(&engine), user, args.mode.as_deref()).map_err(|e| e.to_string())?;
    let counts = &status["counts"];
    println!(
        "{} read of {user}: {} tracks, {} likes, {} plays, {} playlists ({} items without a track skipped, {} playlists unreadable)",
        if status["complete"] == true { "complete" } else { "incremental" },
        counts["tracks"], counts["likes"], counts["plays"], counts["playlists"], counts["skipped"], counts["unreadable"]
    );
    println!("{}", stats::read(&engine, user)?.lines(user).join("\n"));
    Ok(std::process::ExitCode::SUCCESS)
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{code}: {message}")]
    Refused { code: String, message: String },
    #[error("the read failed: {code}: {error}")]
    Failed { code: String, error: String },
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}

fn refused(e: concept_core::ActionError) -> FetchError {
    FetchError::Refused {
        code: e.code,
        message: e.message,
    }
}

/// Asks SpotifySource for a read of `user` (in `mode`, or as it chooses), runs the read with
/// SpotifySource's background work until it ends, and returns `_getFetch`'s final answer.
pub fn run(engine: Arc<Engine>, user: &str, mode: Option<&str>) -> Result<Value, FetchError> {
    let runtime = tokio::runtime::Runtime::new().map_err(FetchError::Runtime)?;
    // The read runs here unless a server sharing the store (PostgreSQL) holds the lease on
    // SpotifySource's work, in which case that server runs it and this waits for the end.
    let work = runtime.spawn(Arc::clone(&engine).lead("SpotifySource".into(), Roles::default()));
    let mut input = json!({ "userId": user });
    if let Some(mode) = mode {
        input["mode"] = json!(mode);
    }
    let started = engine.invoke("SpotifySource", "fetch", input).result.map_err(refused)?;
    let fetch_id = started["fetchId"].as_str().unwrap_or_default().to_string();
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg:<10} [{bar:30}] {pos}/{len} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let status = loop {
        let status = engine
            .query("SpotifySource", "_getFetch", json!({ "userId": user }))
            .map_err(refused)?;
        let phase = status["phase"].as_str().unwrap_or_default().to_string();
        bar.set_message(phase.clone());
        bar.set_length(status["total"].as_u64().unwrap_or(0));
        bar.set_position(status["current"].as_u64().unwrap_or(0));
        let ours = status["fetchId"].as_str() == Some(fetch_id.as_str());
        if ours && (phase == "done" || phase == "failed") {
            break status;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // The end of the read is committed; wait for the syncs it set off (ingest, sync or merge).
    if let Some(flow) = status["flow"].as_str().and_then(|f| Uuid::parse_str(f).ok()) {
        engine.settled_flow(flow).map_err(refused)?;
    }
    bar.finish_and_clear();
    work.abort();
    if status["phase"] == "failed" {
        return Err(FetchError::Failed {
            code: status["code"].as_str().unwrap_or_default().to_string(),
            error: status["error"].as_str().unwrap_or_default().to_string(),
        });
    }
    Ok(status)
}
