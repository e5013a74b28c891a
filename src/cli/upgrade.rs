//! `librarycache upgrade`: moves an embedded store of the first storage layout to the current
//! one, in place. Every command that opens a store runs it by itself when it meets an old store.
//!
//! The old store is read as it is (`store::sled::legacy`); its event log, action records,
//! guards, idempotency keys and counters are copied into a new store beside it
//! (`<dir>.upgrading`), whose projections are then rebuilt from the copied log through the
//! concepts' apply functions and verified against the old ones: the same event and record
//! counts, the same rows for every concept whose layout did not change, and for every
//! LibraryCache library the same counts, times and liked order. Only then does the new store
//! take the old one's place; the old files stay beside it as `<dir>.layout1-backup`. An upgrade
//! that stops half way leaves the old store untouched, and the next run starts over.

use crate::app::App;
use crate::cli::args::StoreArgs;
use crate::engine::{Engine, Registry};
use crate::store::sled::legacy::{self, LegacyStore};
use crate::store::StoreSpec;
use crate::store::{Import, SledOptions, SledStore, Store, StoreError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Rows copied per batch.
const BATCH: usize = 10_000;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Upgrades the embedded store the arguments name (its layout, then projections older than
/// this build's), or says it needs nothing.
pub fn exec(app: &App, args: Args) -> Result<std::process::ExitCode, String> {
    let StoreSpec::Sled(dir) = args.store.spec() else {
        return Err("upgrade moves an embedded (sled) store; a PostgreSQL store needs none".to_string());
    };
    if let Some(report) = upgrade(&dir, &SledOptions::default()).map_err(|e| e.to_string())? {
        println!("{report}");
    }
    let engine = args.store.engine(app)?;
    match rebuild_old_projections(&engine, |_| {}).map_err(|e| e.to_string())? {
        Some(report) => println!("{report}"),
        None => println!(
            "the store at {} has the current layout and projections: nothing to upgrade",
            dir.display()
        ),
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// Why an upgrade stopped (the old store is left as it was).
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("could not {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("verification failed, the old store is left in place: {0}")]
    Mismatch(String),
}

/// What an upgrade did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeReport {
    pub events: u64,
    pub records: u64,
    pub engine_rows: u64,
    pub projection_rows: u64,
    /// Where the old store's files are now.
    pub backup: PathBuf,
}

impl std::fmt::Display for UpgradeReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "upgraded to storage layout 2: {} events, {} action records, {} guards and idempotency keys copied; \
             {} projection rows rebuilt and verified; the old files are in {}",
            self.events,
            self.records,
            self.engine_rows,
            self.projection_rows,
            self.backup.display()
        )
    }
}

/// Upgrades the store in `dir` if it has the first layout; `Ok(None)` when there is nothing to
/// upgrade.
pub fn upgrade(dir: &Path, options: &SledOptions) -> Result<Option<UpgradeReport>, UpgradeError> {
    let Some(old) = LegacyStore::open(dir)? else {
        return Ok(None);
    };
    let target = legacy::sibling(dir, "upgrading");
    if target.exists() {
        std::fs::remove_dir_all(&target).map_err(|source| UpgradeError::Io {
            what: "remove the unfinished upgrade at",
            path: target.display().to_string(),
            source,
        })?;
    }
    let report = copy_and_verify(&old, &target, options)?;
    drop(old);
    let backup = legacy::swap(dir, &target)?;
    Ok(Some(UpgradeReport { backup, ..report }))
}

fn copy_and_verify(old: &LegacyStore, target: &Path, options: &SledOptions) -> Result<UpgradeReport, UpgradeError> {
    let new: Arc<dyn Store> = Arc::new(SledStore::open_with(target, options)?);
    let counters = old.counters()?;
    let mut report = UpgradeReport {
        events: 0,
        records: 0,
        engine_rows: 0,
        projection_rows: 0,
        backup: PathBuf::new(),
    };
    let mut after = 0u64;
    loop {
        let events = old.read_log(after, BATCH)?;
        let Some(last) = events.last() else { break };
        after = last.meta.seq;
        report.events += events.len() as u64;
        new.import(Import {
            events,
            ..Import::default()
        })?;
    }
    let mut after = 0u64;
    loop {
        let records = old.read_records(after, BATCH)?;
        let Some(last) = records.last() else { break };
        after = last.id;
        report.records += records.len() as u64;
        new.import(Import {
            records,
            ..Import::default()
        })?;
    }
    let mut after: Vec<u8> = Vec::new();
    loop {
        let rows = old.read_engine_rows(&after, BATCH)?;
        let Some((last, _)) = rows.last() else { break };
        after = last.clone();
        report.engine_rows += rows.len() as u64;
        new.import(Import {
            engine_rows: rows,
            ..Import::default()
        })?;
    }
    new.import(Import {
        last_seq: counters.last_seq,
        last_action: counters.last_action,
        ..Import::default()
    })?;
    let engine = Engine::new(Arc::clone(&new), Registry::standard());
    let replayed = engine.rebuild()?;
    let stats = new.stats()?;
    report.projection_rows = stats.projection_rows;
    let mut problems = Vec::new();
    if replayed != counters.last_seq || stats.last_seq != counters.last_seq || report.events != counters.last_seq {
        problems.push(format!(
            "events: {} in the old store, {} copied, {} replayed",
            counters.last_seq, report.events, replayed
        ));
    }
    if stats.actions != counters.last_action {
        problems.push(format!(
            "last action id: {} in the old store, {} in the new",
            counters.last_action, stats.actions
        ));
    }
    problems.extend(verify_projections(old, &engine)?);
    if !problems.is_empty() {
        return Err(UpgradeError::Mismatch(problems.join("; ")));
    }
    Ok(report)
}

/// The concepts whose projection rows kept their layout: their rows must come back identical.
const SAME_LAYOUT: &[&str] = &["Scheduling", "Requesting"];

/// The sources: their rows keep their keys (the same users' connections, reads and cursors),
/// while their values may differ in what the upgraded build writes differently (a failed
/// read's message has its secrets redacted now).
const SAME_KEYS: &[&str] = &["SpotifySource", "PlexSource", "LastfmSource"];

/// Compares the rebuilt projections with the old store's.
fn verify_projections(old: &LegacyStore, engine: &Engine) -> Result<Vec<String>, UpgradeError> {
    let mut problems = Vec::new();
    let dump = engine.store().projection_dump()?;
    for concept in SAME_LAYOUT {
        let prefix = crate::store::keys::projection_prefix(concept);
        let then = old.projection_rows(concept)?;
        let now: Vec<(Vec<u8>, Vec<u8>)> = dump.iter().filter(|(k, _)| k.starts_with(&prefix)).cloned().collect();
        if then != now {
            problems.push(format!(
                "{concept}: {} rows before, {} rebuilt, not the same",
                then.len(),
                now.len()
            ));
        }
    }
    for concept in SAME_KEYS {
        let prefix = crate::store::keys::projection_prefix(concept);
        let then: Vec<Vec<u8>> = old.projection_rows(concept)?.into_iter().map(|(k, _)| k).collect();
        let now: Vec<Vec<u8>> = dump
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        if then != now {
            problems.push(format!(
                "{concept}: rows {} before, {} rebuilt, not for the same users",
                then.len(),
                now.len()
            ));
        }
    }
    // LibraryCache: every library's counts and times, and its liked order.
    let prefix = crate::store::keys::projection_prefix("LibraryCache");
    for (key, value) in old.projection_rows("LibraryCache")? {
        let Some(user) = key.strip_prefix(prefix.as_slice()).and_then(|k| k.strip_prefix(b"m\0")) else {
            continue;
        };
        let user = String::from_utf8_lossy(user).into_owned();
        let then: serde_json::Value =
            serde_json::from_slice(&value).map_err(|e| UpgradeError::Mismatch(format!("{user}: {e}")))?;
        let now = engine
            .query("LibraryCache", "_getStatus", serde_json::json!({ "userId": user }))
            .map_err(|e| UpgradeError::Mismatch(format!("{user}: {e}")))?;
        for field in ["tracks", "likes", "plays", "playlists", "ingestedAt", "syncedAt"] {
            if then.get(field) != now.get(field) {
                problems.push(format!(
                    "{user}: {field} was {}, is {}",
                    then.get(field).cloned().unwrap_or_default(),
                    now.get(field).cloned().unwrap_or_default()
                ));
            }
        }
        let liked = engine
            .query("LibraryCache", "_getLiked", serde_json::json!({ "userId": user }))
            .map_err(|e| UpgradeError::Mismatch(format!("{user}: {e}")))?;
        let now_ids: Vec<String> = liked["trackIds"]
            .as_array()
            .map(|ids| ids.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        let mut base = prefix.clone();
        base.push(b'u');
        base.extend_from_slice(user.as_bytes());
        base.extend_from_slice(b"\0L");
        let then_ids: Vec<String> = legacy::map_entries(&old.projection_rows("LibraryCache")?, &base)?
            .into_iter()
            .map(|(_, id)| String::from_utf8_lossy(&id).into_owned())
            .collect();
        if then_ids != now_ids {
            problems.push(format!(
                "{user}: the liked list was {} songs, is {}, or their order differs",
                then_ids.len(),
                now_ids.len()
            ));
        }
    }
    Ok(problems)
}

/// What [`rebuild_old_projections`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionUpgrade {
    /// Libraries whose projections predated the current projection layout.
    pub libraries: usize,
    /// Events replayed by the rebuild.
    pub events: u64,
}

impl std::fmt::Display for ProjectionUpgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "rebuilt the projections ({} events replayed): {} librar{} had no playlist name index; \
             every library's counts, times, liked list and playlists verified",
            self.events,
            self.libraries,
            if self.libraries == 1 { "y" } else { "ies" }
        )
    }
}

/// The LibraryCache libraries whose rows predate the playlist name index (`uU\0N`, see
/// `library_cache::rows`): they answer `_resolvePlaylist` by reading every playlist until the
/// projections are rebuilt.
fn libraries_without_name_index(engine: &Engine) -> Result<Vec<String>, UpgradeError> {
    let view = engine.store().view("LibraryCache");
    let mut users = Vec::new();
    for (key, value) in view
        .scan_prefix(library_cache::rows::META_PREFIX)
        .map_err(StoreError::Fault)?
    {
        let meta: library_cache::rows::UserMeta = serde_json::from_slice(&value)
            .map_err(|e| UpgradeError::Mismatch(format!("a library's meta does not decode: {e}")))?;
        if !meta.playlist_index {
            users.push(String::from_utf8_lossy(&key[library_cache::rows::META_PREFIX.len()..]).into_owned());
        }
    }
    Ok(users)
}

/// What a library answers, to compare before and after a rebuild (without `stale`, which
/// depends on the moment).
fn library_answers(engine: &Engine, user: &str) -> Result<Vec<serde_json::Value>, UpgradeError> {
    let input = serde_json::json!({ "userId": user });
    let mut answers = Vec::new();
    for query in ["_getStatus", "_getLiked", "_getPlaylists"] {
        let mut answer = engine
            .query("LibraryCache", query, input.clone())
            .map_err(|e| UpgradeError::Mismatch(format!("{user}: {query}: {e}")))?;
        if let Some(fields) = answer.as_object_mut() {
            fields.shift_remove("stale");
        }
        answers.push(answer);
    }
    Ok(answers)
}

/// Rebuilds the projections of a store of the current storage layout whose LibraryCache
/// libraries predate the playlist name index, and verifies that every library answers as
/// before; `Ok(None)` when every library has the index. `announce` is told how many libraries
/// lack it before the rebuild starts. The rebuild writes the other projection generation and
/// switches to it at the end, so a rebuild that stops leaves the projections in use as they were.
pub fn rebuild_old_projections(
    engine: &Engine,
    announce: impl FnOnce(usize),
) -> Result<Option<ProjectionUpgrade>, UpgradeError> {
    let old = libraries_without_name_index(engine)?;
    if old.is_empty() {
        return Ok(None);
    }
    announce(old.len());
    let users: Vec<String> = engine
        .query("LibraryCache", "_getUsers", serde_json::json!({}))
        .map_err(|e| UpgradeError::Mismatch(format!("_getUsers: {e}")))?["userIds"]
        .as_array()
        .map(|ids| ids.iter().filter_map(|u| u.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let mut before = Vec::with_capacity(users.len());
    for user in &users {
        before.push(library_answers(engine, user)?);
    }
    let events = engine.rebuild()?;
    let mut problems = Vec::new();
    for (user, then) in users.iter().zip(before) {
        if library_answers(engine, user)? != then {
            problems.push(format!("{user} answers differently after the rebuild"));
        }
    }
    let still = libraries_without_name_index(engine)?;
    if !still.is_empty() {
        problems.push(format!("{} libraries still have no playlist name index", still.len()));
    }
    if !problems.is_empty() {
        return Err(UpgradeError::Mismatch(problems.join("; ")));
    }
    Ok(Some(ProjectionUpgrade {
        libraries: old.len(),
        events,
    }))
}
