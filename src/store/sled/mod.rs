//! The embedded store on sled 0.34.7: one tree, one writer at a time, each commit one atomic
//! `apply_batch` of a few rows, and acknowledgements that wait for the disk.
//!
//! Writers are serialised by a mutex: under it a commit runs the shared commit algorithm
//! (`store::commit::prepare`) against the tree and applies its result as one batch. sled allows
//! one process per store, so the mutex is the whole of the write-side concurrency control.
//! Reads see one committed state through a snapshot lock: a view holds it shared while it
//! lives, a batch is applied holding it exclusively — a short section, since a commit writes a
//! few rows (a large ingest a few thousand), never one per entry (sled 0.34 has no read
//! snapshots of its own). Durability: after sled's flush the store `fdatasync`s its file, once
//! per group of waiting commits (`durable.rs`).
//!
//! `keys.rs` is the layout, `log.rs` the event log's blocks, `view.rs` the reads (views and the
//! commit's base), `durable.rs` the grouped flush, `rebuild.rs` the rebuild into the other
//! projection generation, `compact.rs` the action-log compaction, `legacy.rs` the first
//! layout, read for the upgrade (`cli/upgrade.rs`).

mod compact;
mod durable;
pub mod keys;
pub mod legacy;
pub mod log;
mod rebuild;
mod view;

use super::commit::{self, Counters};
use super::{
    ActionRecord, Commit, CompactReport, EngineKey, Import, RebuildFn, Receipt, Retention, Store, StoreError,
    StoreStats, StoredEvent,
};
use chrono::{DateTime, Utc};
use concept_core::{ProjectionRead, StoreFault};
use durable::Durable;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};
use uuid::Uuid;
use view::{ConceptView, TreeBase};

/// How long `open` waits for a store lock still held by a handle being dropped.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// The page cache sled keeps by default (`--cache-size`): enough for the hot chunks of large
/// libraries, far below sled's own default of 1 GiB.
pub const DEFAULT_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// How to open the embedded store.
#[derive(Debug, Clone)]
pub struct SledOptions {
    /// The most bytes of pages sled keeps in memory.
    pub cache_bytes: u64,
}

impl Default for SledOptions {
    fn default() -> Self {
        SledOptions {
            cache_bytes: DEFAULT_CACHE_BYTES,
        }
    }
}

pub struct SledStore {
    pub(super) db: sled::Db,
    pub(super) tree: sled::Tree,
    /// Held by every write: commits, rebuilds and each compaction batch.
    pub(super) writer: Mutex<Counters>,
    durable: Durable,
    /// One compaction at a time.
    pub(super) compacting: Mutex<()>,
    /// Held shared by every [`ConceptView`] while it lives and exclusively while a commit's
    /// batch is applied (and while a rebuild switches generations), so a view reads one
    /// committed state.
    snapshot: RwLock<()>,
    /// The projection generation queries read (`keys::GENERATION`).
    generation: AtomicU8,
}

impl SledStore {
    /// Opens (creating if needed) the store in `dir`. A store of the first layout is refused
    /// with [`StoreError::OldLayout`] (`librarycache upgrade`, which the commands run by
    /// themselves, moves it to this one).
    ///
    /// sled releases its file lock from background threads a moment after the last handle is
    /// dropped, so a lock held at open is retried for up to [`LOCK_WAIT`] before it is reported
    /// as [`StoreError::InUse`] (another process is serving this store).
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(dir, &SledOptions::default())
    }

    pub fn open_with(dir: &Path, options: &SledOptions) -> Result<Self, StoreError> {
        let db = open_db(dir, options)?;
        if legacy::is_legacy(&db)? {
            return Err(StoreError::OldLayout(dir.display().to_string()));
        }
        Self::from_db(db, Some(dir.join("db")))
    }

    /// A store in a temporary directory, removed when dropped (for tests and `trace`).
    pub fn temporary() -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .temporary(true)
            .cache_capacity(DEFAULT_CACHE_BYTES)
            .open()?;
        Self::from_db(db, None)
    }

    fn from_db(db: sled::Db, file: Option<PathBuf>) -> Result<Self, StoreError> {
        let tree: sled::Tree = (*db).clone();
        match tree.get(keys::VERSION)? {
            Some(v) if v.as_ref() == keys::LAYOUT.to_be_bytes() => {}
            Some(v) => {
                return Err(StoreError::Fault(StoreFault::new(format!(
                    "the store has layout {:?}, which this build does not know (it writes layout {})",
                    v.as_ref(),
                    keys::LAYOUT
                ))))
            }
            None if tree.is_empty() => {
                let mut init = sled::Batch::default();
                init.insert(keys::VERSION, &keys::LAYOUT.to_be_bytes());
                init.insert(keys::GENERATION, &[0u8]);
                tree.apply_batch(init)?;
                db.flush()?;
            }
            None => return Err(StoreError::OldLayout("a temporary store".to_string())),
        }
        let generation = tree
            .get(keys::GENERATION)?
            .and_then(|v| v.first().copied())
            .unwrap_or(0);
        let store = SledStore {
            durable: Durable::new(file)?,
            db,
            tree,
            writer: Mutex::new(Counters::default()),
            compacting: Mutex::new(()),
            snapshot: RwLock::new(()),
            generation: AtomicU8::new(generation),
        };
        // A rebuild that stopped half way wrote only the other generation: drop it.
        if store.tree.get(keys::REBUILDING)?.is_some() {
            tracing::warn!("a projection rebuild was interrupted; the projections in use are intact, the partial rebuild is dropped");
            rebuild::clear_generation(&store, 1 - generation)?;
            store.tree.remove(keys::REBUILDING)?;
            store.db.flush()?;
        }
        let counters = match store.tree.get(keys::GLOBAL)? {
            Some(v) => Counters {
                last_seq: keys::u64_value(&v),
                last_action: keys::u64_value(&v[8..]),
            },
            None => Counters::default(),
        };
        *store.writer.lock().unwrap_or_else(|p| p.into_inner()) = counters;
        Ok(store)
    }

    fn global_value(c: &Counters) -> Vec<u8> {
        let mut v = c.last_seq.to_be_bytes().to_vec();
        v.extend_from_slice(&c.last_action.to_be_bytes());
        v
    }

    fn generation(&self) -> u8 {
        self.generation.load(Ordering::Acquire)
    }

    fn base(&self) -> TreeBase<'_> {
        TreeBase {
            tree: &self.tree,
            generation: self.generation(),
        }
    }

    /// Applies a batch holding the snapshot lock exclusively (so no view reads half of it).
    fn apply_exclusive(&self, batch: sled::Batch) -> Result<(), StoreError> {
        let _exclusive = self.snapshot.write().unwrap_or_else(|p| p.into_inner());
        self.tree.apply_batch(batch)?;
        Ok(())
    }

    /// How many flushes (sled's flush, then `fdatasync`) reached the disk since the store was
    /// opened.
    pub fn flushes(&self) -> u64 {
        self.durable.flushes()
    }

    /// The bytes the store's files take on disk.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?)
    }
}

/// Opens the sled database in `dir` with the store's settings, waiting out a lock a dropped
/// handle still holds.
fn open_db(dir: &Path, options: &SledOptions) -> Result<sled::Db, StoreError> {
    let config = sled::Config::new()
        .path(dir)
        .mode(sled::Mode::HighThroughput)
        .cache_capacity(options.cache_bytes);
    let started = Instant::now();
    loop {
        match config.open() {
            Ok(db) => return Ok(db),
            Err(e) if lock_held(&e) => {
                if started.elapsed() >= LOCK_WAIT {
                    return Err(StoreError::InUse(dir.display().to_string()));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

impl Store for SledStore {
    fn view<'a>(&'a self, concept: &str) -> Box<dyn ProjectionRead + 'a> {
        let snapshot = self.snapshot.read().unwrap_or_else(|p| p.into_inner());
        Box::new(ConceptView::new(&self.tree, self.generation(), concept, snapshot))
    }

    fn commit(&self, commit: Commit) -> Result<Receipt, StoreError> {
        let changes_state = commit.changes_state();
        let mut counters = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let prepared = commit::prepare(commit, &self.base(), *counters)?;
        let generation = self.generation();
        // Each part of the commit is moved into the batch and dropped there, so a large commit
        // is not held twice (sled copies what it is given).
        let commit::Prepared {
            receipt,
            next,
            concept,
            events,
            heads,
            rows,
            record,
            guards,
        } = prepared;
        let mut batch = sled::Batch::default();
        log::write_rows(events, &mut |key, value| batch.insert(key, value));
        for ((concept, stream), version) in &heads {
            batch.insert(keys::head(concept, stream), &version.to_be_bytes());
        }
        for (key, value) in rows {
            let key = keys::physical(generation, &key);
            match value {
                Some(v) => batch.insert(key, v.as_ref()),
                None => batch.remove(key),
            }
        }
        if receipt.events > 0 {
            batch.insert(super::keys::checkpoint(&concept), &receipt.last_seq.to_be_bytes());
        }
        if let Some(record) = &record {
            let bytes = serde_json::to_vec(record).map_err(StoreFault::new)?;
            batch.insert(keys::record(record.id), bytes);
            batch.insert(keys::flow(record.flow, record.id), &[]);
        }
        for (_, key, value) in guards {
            batch.insert(key, value);
        }
        batch.insert(keys::GLOBAL, Self::global_value(&next));
        self.apply_exclusive(batch)?;
        *counters = next;
        let mut receipt = receipt;
        // Still under the writer lock: a later commit (a reader's own record) is numbered after
        // this one is counted, so waiting at its end covers what it read.
        receipt.generation = self.durable.committed(changes_state);
        Ok(receipt)
    }

    fn wait_durable(&self, generation: u64) -> Result<(), StoreError> {
        self.durable.wait(generation, &self.db)
    }

    fn wait_changes_durable(&self) -> Result<(), StoreError> {
        self.durable.wait(self.durable.last_change(), &self.db)
    }

    fn read_log(&self, after: u64, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        log::read_log(&self.tree, after, limit)
    }

    fn read_stream(&self, concept: &str, stream: &str, after_version: u64) -> Result<Vec<StoredEvent>, StoreError> {
        log::read_stream(&self.tree, concept, stream, after_version, usize::MAX)
    }

    fn last_seq(&self) -> Result<u64, StoreError> {
        Ok(self.writer.lock().unwrap_or_else(|p| p.into_inner()).last_seq)
    }

    fn action(&self, id: u64) -> Result<Option<ActionRecord>, StoreError> {
        match self.tree.get(keys::record(id))? {
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes).map_err(StoreFault::new)?)),
            None => Ok(None),
        }
    }

    fn flow(&self, flow: Uuid) -> Result<Vec<ActionRecord>, StoreError> {
        let prefix = keys::flow_prefix(flow);
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(&prefix) {
            let (k, _) = item?;
            if let Some(record) = self.action(keys::u64_value(&k[prefix.len()..]))? {
                out.push(record);
            }
        }
        Ok(out)
    }

    fn engine_row(&self, key: &EngineKey) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.tree.get(super::keys::engine(key))?.map(|v| v.to_vec()))
    }

    fn rebuild(&self, apply: &RebuildFn<'_>) -> Result<u64, StoreError> {
        rebuild::run(self, apply)
    }

    fn projection_dump(&self) -> Result<concept_core::Rows, StoreError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(keys::generation_prefix(self.generation())) {
            let (k, v) = item?;
            out.push((keys::canonical(&k), v.to_vec()));
        }
        for item in self.tree.scan_prefix([super::keys::CHECKPOINT]) {
            let (k, v) = item?;
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    fn stats(&self) -> Result<StoreStats, StoreError> {
        let counters = *self.writer.lock().unwrap_or_else(|p| p.into_inner());
        Ok(StoreStats {
            last_seq: counters.last_seq,
            actions: counters.last_action,
            projection_rows: self
                .tree
                .scan_prefix(keys::generation_prefix(self.generation()))
                .count() as u64,
        })
    }

    fn compact(&self, retention: &Retention, now: DateTime<Utc>) -> Result<CompactReport, StoreError> {
        compact::run(self, retention, now, compact::RECORD_BATCH, None)
    }

    fn read_records(&self, after: u64, limit: usize) -> Result<Vec<ActionRecord>, StoreError> {
        let mut out = Vec::new();
        for item in self
            .tree
            .range(keys::record(after.saturating_add(1))..=keys::record(u64::MAX))
            .take(limit)
        {
            let (_, v) = item?;
            out.push(serde_json::from_slice(&v).map_err(StoreFault::new)?);
        }
        Ok(out)
    }

    fn read_engine_rows(&self, after: &[u8], limit: usize) -> Result<concept_core::Rows, StoreError> {
        view::engine_rows(&self.tree, after, limit)
    }

    fn import(&self, copy: Import) -> Result<(), StoreError> {
        let mut counters = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = *counters;
        let mut batch = sled::Batch::default();
        for event in &copy.events {
            if event.meta.seq != next.last_seq + 1 {
                return Err(StoreError::Fault(StoreFault::new(format!(
                    "imported event {} does not follow the log's last event {}",
                    event.meta.seq, next.last_seq
                ))));
            }
            next.last_seq = event.meta.seq;
            batch.insert(
                keys::head(&event.concept, &event.meta.stream),
                &event.meta.version.to_be_bytes(),
            );
        }
        // Each action's events as one commit's blocks.
        let mut events = copy.events;
        while !events.is_empty() {
            let action = events[0].meta.action;
            let n = events.iter().take_while(|e| e.meta.action == action).count();
            let rest = events.split_off(n);
            log::write_rows(events, &mut |key, value| batch.insert(key, value));
            events = rest;
        }
        for record in copy.records {
            let bytes = serde_json::to_vec(&record).map_err(StoreFault::new)?;
            batch.insert(keys::record(record.id), bytes);
            batch.insert(keys::flow(record.flow, record.id), &[]);
        }
        for (k, v) in copy.engine_rows {
            batch.insert(k, v);
        }
        next.last_seq = next.last_seq.max(copy.last_seq);
        next.last_action = next.last_action.max(copy.last_action);
        batch.insert(keys::GLOBAL, Self::global_value(&next));
        self.apply_exclusive(batch)?;
        *counters = next;
        drop(counters);
        self.durable.sync_now(&self.db)
    }
}

impl From<::sled::Error> for StoreError {
    fn from(e: ::sled::Error) -> Self {
        StoreError::Fault(StoreFault::new(e))
    }
}

/// Whether opening failed because another handle holds the store's file lock. sled 0.34.7
/// reports it as an `Io` error of kind `Other` whose text says "could not acquire lock" (the
/// `WouldBlock` of the underlying `flock` only survives in that text).
fn lock_held(e: &sled::Error) -> bool {
    match e {
        sled::Error::Io(io) => {
            io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("could not acquire lock")
        }
        _ => false,
    }
}
