//! `librarycache import --user U --format apple-library FILE`: a Music.app / iTunes
//! `Library.xml` read with AppleLibraryFile's streaming reader (`apple_library::file`) under a
//! progress bar, and handed to LibraryCache as one complete read — `ingest` for a user with no
//! library, else `sync` (which replaces the cached tracks, likes and playlists and merges the
//! plays) — through the engine, so it is recorded, synced and durable like any action, and all
//! or nothing: a file that does not parse stops the import before anything is written.

use crate::engine::Engine;
use apple_library::file::{self, FileError};
use apple_library::library_xml::{Library, Like, Play, Playlist, Skipped, Track};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use serde_json::{json, Value};
use std::fmt;
use std::path::Path;

/// Why an import did not happen (in every case nothing was written).
#[derive(Debug, thiserror::Error)]
pub enum AppleImportError {
    #[error("{0} (nothing was imported)")]
    File(#[from] FileError),
    #[error("cannot write the library as JSON: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("LibraryCache.{action} refused the library: {code}: {message} (nothing was imported)")]
    Refused {
        action: &'static str,
        code: String,
        message: String,
    },
}

/// What an import read and did.
#[derive(Debug)]
pub struct Summary {
    pub file: String,
    /// `ingest` or `sync`.
    pub action: &'static str,
    pub tracks: u64,
    pub likes: u64,
    pub plays: u64,
    pub playlists: u64,
    pub skipped: Skipped,
    /// The action's output (`{userId, version, added, removed, updated}`).
    pub output: Value,
}

/// The action's input, written straight from the read (no JSON tree in between).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Input<'a> {
    user_id: &'a str,
    tracks: &'a [Track],
    likes: &'a [Like],
    plays: &'a [Play],
    playlists: &'a [Playlist],
}

/// Reads `path` and hands it to `user`'s library, with a progress bar on stderr.
pub fn run(engine: &Engine, user: &str, path: &Path) -> Result<Summary, AppleImportError> {
    let size = file::size(path)?;
    let bar = ProgressBar::new(size);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg:<24!} [{bar:30}] {bytes}/{total_bytes} ({elapsed}, {eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message("reading tracks");
    let library: Library = file::read(path, &mut |bytes, tracks| {
        bar.set_position(bytes);
        bar.set_message(format!("{tracks} tracks"));
    })
    .inspect_err(|_| bar.abandon())?;
    bar.set_position(size);
    bar.set_message("handing on");
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    let exists = engine
        .query("LibraryCache", "_getStatus", json!({ "userId": user }))
        .is_ok();
    let action = if exists { "sync" } else { "ingest" };
    let input = serde_json::to_vec(&Input {
        user_id: user,
        tracks: &library.tracks,
        likes: &library.likes,
        plays: &library.plays,
        playlists: &library.playlists,
    })?;
    let counts = (
        library.tracks.len() as u64,
        library.likes.len() as u64,
        library.plays.len() as u64,
        library.playlists.len() as u64,
    );
    let skipped = library.skipped;
    drop(library);
    let answer = engine.invoke("LibraryCache", action, bytes::Bytes::from(input));
    bar.finish_and_clear();
    let output = answer.result.map_err(|e| AppleImportError::Refused {
        action,
        code: e.code,
        message: e.message,
    })?;
    Ok(Summary {
        file: path.display().to_string(),
        action,
        tracks: counts.0,
        likes: counts.1,
        plays: counts.2,
        playlists: counts.3,
        skipped,
        output,
    })
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = |group: &str, k: &str| self.output[group][k].as_u64().unwrap_or(0);
        writeln!(
            f,
            "read {}: {} tracks ({} without a Persistent ID skipped), {} likes, {} last plays, {} playlists ({} left out: the library, its kinds and folders; {} items naming no track)",
            self.file,
            self.tracks,
            self.skipped.tracks_without_id,
            self.likes,
            self.plays,
            self.playlists,
            self.skipped.playlists,
            self.skipped.entries
        )?;
        write!(
            f,
            "LibraryCache.{}: added {} tracks, {} likes, {} plays, {} playlists; removed {} likes, {} playlists; updated {} tracks, {} playlists; version {}",
            self.action,
            n("added", "tracks"),
            n("added", "likes"),
            n("added", "plays"),
            n("added", "playlists"),
            n("removed", "likes"),
            n("removed", "playlists"),
            n("updated", "tracks"),
            n("updated", "playlists"),
            self.output["version"]
        )
    }
}
