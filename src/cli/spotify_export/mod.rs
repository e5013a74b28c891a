//! `librarycache import --user U --format spotify-export DIR`: a Spotify account-data (or
//! extended streaming history) export merged into the user's cached library, in one LibraryCache
//! action run through the engine — `merge`, or `ingest` for a user with no library yet — so it is
//! recorded, synced and durable like any other, and all or nothing: a file that does not parse
//! stops the import before anything is written. Then `LibraryCache.rekeyNamed` gives the tracks
//! the library knew only by name (from an earlier import) the Spotify ids this one brought, so
//! two exports imported one after the other, in either order, leave the library one import of
//! both would. An import that finds nothing new records nothing.
//!
//! `files` finds the export's files, `formats` reads them, `cached` reads what the cache holds,
//! `names` and `plays` decide which track each play is of and which plays are already known,
//! `plan` builds the action's input.

pub mod cached;
pub mod files;
pub mod formats;
pub mod names;
pub mod plan;
pub mod plays;

use crate::cli::json_file;
use crate::engine::Engine;
use files::{FindError, Kind};
use formats::{Export, FormatError};
use indicatif::{ProgressBar, ProgressStyle};
use plan::PlanCounts;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

/// Why an import did not happen (in every case nothing was written).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Find(#[from] FindError),
    #[error("{0} (nothing was imported)")]
    Format(#[from] FormatError),
    #[error("cannot read the cached library: {code}: {message}")]
    Cache { code: String, message: String },
    #[error("LibraryCache.{action} refused the export: {code}: {message} (nothing was imported)")]
    Refused {
        action: &'static str,
        code: String,
        message: String,
    },
    /// The export was imported, but the tracks known only by name were not re-keyed.
    #[error("the export was imported (version {version}), but LibraryCache.rekeyNamed refused: {code}: {message} (importing it again re-keys them)")]
    Rekey {
        version: u64,
        code: String,
        message: String,
    },
}

/// What an import read and did.
#[derive(Debug)]
pub struct Summary {
    pub dir: String,
    /// `merge` or `ingest`.
    pub action: &'static str,
    pub files: BTreeMap<Kind, u64>,
    pub rows: u64,
    pub under_30s: u64,
    pub podcasts: u64,
    pub audiobooks: u64,
    pub without_track: u64,
    pub empty_items: u64,
    pub plan: PlanCounts,
    /// The action's output (`{userId, version, added, removed, updated}`).
    pub output: Value,
    /// `rekeyNamed`'s output (`{userId, version, rekeyed, plays, likes}`).
    pub rekeyed: Value,
}

/// Reads the export in `dir` and merges it into `user`'s library, with a progress bar on stderr.
pub fn run(engine: &Engine, user: &str, dir: &Path) -> Result<Summary, ImportError> {
    let found = files::find(dir)?;
    let bar = ProgressBar::new(found.iter().map(|f| f.size).sum());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg:<32!} [{bar:30}] {bytes}/{total_bytes} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let mut export = Export::default();
    for file in &found {
        let name = file.path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        bar.set_message(name);
        let bytes = json_file::read_bytes(&file.path, Some(&bar)).map_err(FormatError::from)?;
        export.read(file, &bytes)?;
    }
    bar.set_message("merging");
    bar.enable_steady_tick(Duration::from_millis(120));
    let cached = cached::load(engine, user, export.play_window()).map_err(|e| ImportError::Cache {
        code: e.code,
        message: e.message,
    })?;
    let plan = plan::plan(user, &export, &cached, &|id| cached::metadata(engine, id));
    let action = if cached.exists { "merge" } else { "ingest" };
    let answer = engine.invoke("LibraryCache", action, plan.input);
    bar.finish_and_clear();
    let output = answer.result.map_err(|e| ImportError::Refused {
        action,
        code: e.code,
        message: e.message,
    })?;
    let rekey = json!({"userId": user, "prefix": names::DERIVED_PREFIX});
    let rekeyed = engine
        .invoke("LibraryCache", "rekeyNamed", rekey)
        .result
        .map_err(|e| ImportError::Rekey {
            version: output["version"].as_u64().unwrap_or(0),
            code: e.code,
            message: e.message,
        })?;
    Ok(Summary {
        dir: dir.display().to_string(),
        action,
        files: export.files,
        rows: export.rows,
        under_30s: export.under_30s,
        podcasts: export.podcasts,
        audiobooks: export.audiobooks,
        without_track: export.without_track,
        empty_items: export.empty_items,
        plan: plan.counts,
        output,
        rekeyed,
    })
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total: u64 = self.files.values().sum();
        let kinds: Vec<String> = self.files.iter().map(|(k, n)| format!("{n} {}", k.label())).collect();
        writeln!(f, "read {total} file(s) from {}: {}", self.dir, kinds.join(", "))?;
        let p = &self.plan;
        let added = |k: &str| self.output["added"][k].as_u64().unwrap_or(0);
        writeln!(
            f,
            "plays: {} history rows; {} counted and new, {} under 30 s, {} duplicates ({} already cached, {} twice in the export), {} podcasts skipped, {} audiobook rows skipped, {} rows without a track skipped",
            self.rows,
            p.plays,
            self.under_30s,
            p.already_cached + p.repeated,
            p.already_cached,
            p.repeated,
            self.podcasts,
            self.audiobooks,
            self.without_track
        )?;
        if p.precise > 0 {
            writeln!(
                f,
                "plays cached to the minute given their time to the second: {}",
                p.precise
            )?;
        }
        if p.by_name + p.derived > 0 {
            writeln!(
                f,
                "StreamingHistory plays: {} matched to a track by artist and title, {} given a derived id (a track known only by name)",
                p.by_name, p.derived
            )?;
        }
        writeln!(f, "likes: {} in the export, {} new", p.likes, added("likes"))?;
        writeln!(
            f,
            "playlists: {} merged ({} new, {} changed), {} kept as read from Spotify, {} items without a track skipped",
            p.playlists,
            added("playlists"),
            self.output["updated"]["playlists"].as_u64().unwrap_or(0),
            p.playlists_kept,
            self.empty_items
        )?;
        let rekeyed = |k: &str| self.rekeyed[k].as_u64().unwrap_or(0);
        if rekeyed("rekeyed") > 0 {
            writeln!(
                f,
                "tracks known only by name given their Spotify id: {} ({} plays and {} likes moved)",
                rekeyed("rekeyed"),
                rekeyed("plays"),
                rekeyed("likes")
            )?;
        }
        write!(
            f,
            "LibraryCache.{}: {} plays, {} likes, {} tracks added; version {}",
            self.action,
            added("plays"),
            added("likes"),
            added("tracks"),
            self.rekeyed["version"]
        )
    }
}
