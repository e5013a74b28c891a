//! The embedded store on sled 0.34.7: one tree, one writer at a time, each commit one atomic
//! `apply_batch`, and durable acknowledgements through a shared (grouped) flush.
//!
//! Writers are serialised by a mutex: under it a commit checks guards and expected versions,
//! assigns sequence numbers, runs the events' apply functions against the live projections (so
//! rows shared between streams never lose an update) and applies the batch. sled allows one
//! process per store, so the mutex is the whole of the write-side concurrency control. Reads
//! see one committed state through a snapshot lock: a view holds it shared while it lives, a
//! batch is applied holding it exclusively (sled 0.34 has no read snapshots of its own).

use super::group_flush::GroupFlush;
use super::keys;
use super::overlay::{ConceptTxn, ConceptView, Overlay};
use super::{
    ActionRecord, Commit, CompactReport, EngineKey, Import, RebuildFn, Receipt, Retention, Store, StoreError,
    StoreStats, StoredEvent,
};
use chrono::{DateTime, Utc};
use concept_core::{EventMeta, ExpectedVersion, ProjectionRead, StoreFault};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long `open` waits for a store lock still held by a handle being dropped.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// How many events a rebuild applies per batch.
const REBUILD_BATCH: usize = 5_000;

#[derive(Default)]
pub(super) struct Counters {
    last_seq: u64,
    pub(super) last_action: u64,
}

pub struct SledStore {
    pub(super) db: sled::Db,
    pub(super) tree: sled::Tree,
    /// Held by every write: commits, rebuilds and each compaction batch.
    pub(super) writer: Mutex<Counters>,
    flush: GroupFlush,
    /// One compaction at a time.
    pub(super) compacting: Mutex<()>,
    /// Held shared by every [`ConceptView`] while it lives and exclusively while a commit's (or a
    /// rebuild's) batch is applied, so a view reads one committed state. sled 0.34 has no
    /// snapshots, and a decision or query reads several rows (a chunk index, then its chunks;
    /// rows, then the stream version it expects).
    snapshot: RwLock<()>,
}

/// The header stored before an event's data in a log row.
#[derive(Serialize, Deserialize)]
struct Envelope {
    concept: String,
    stream: String,
    version: u64,
    kind: String,
    action: u64,
    at_micros: i64,
}

impl SledStore {
    /// Opens (creating if needed) the store in `dir`.
    ///
    /// sled releases its file lock from background threads a moment after the last handle is
    /// dropped, so a lock held at open is retried for up to [`LOCK_WAIT`] before it is reported
    /// as [`StoreError::InUse`] (another process is serving this store).
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let config = sled::Config::new().path(dir).mode(sled::Mode::HighThroughput);
        let started = Instant::now();
        loop {
            match config.open() {
                Ok(db) => return Self::from_db(db),
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

    /// A store in a temporary directory, removed when dropped (for tests and `trace`).
    pub fn temporary() -> Result<Self, StoreError> {
        let db = sled::Config::new().temporary(true).open()?;
        Self::from_db(db)
    }

    fn from_db(db: sled::Db) -> Result<Self, StoreError> {
        let tree: sled::Tree = (*db).clone();
        if tree.get(keys::REBUILDING)?.is_some() {
            return Err(StoreError::Fault(StoreFault::new(
                "a projection rebuild was interrupted; run `librarycache rebuild` before serving",
            )));
        }
        let counters = match tree.get(keys::GLOBAL)? {
            Some(v) => Counters {
                last_seq: keys::u64_value(&v),
                last_action: keys::u64_value(&v[8..]),
            },
            None => Counters::default(),
        };
        Ok(SledStore {
            db,
            tree,
            writer: Mutex::new(counters),
            flush: GroupFlush::new(),
            compacting: Mutex::new(()),
            snapshot: RwLock::new(()),
        })
    }

    fn global_value(c: &Counters) -> Vec<u8> {
        let mut v = c.last_seq.to_be_bytes().to_vec();
        v.extend_from_slice(&c.last_action.to_be_bytes());
        v
    }

    pub(super) fn decode_event(seq: u64, bytes: &[u8]) -> Result<StoredEvent, StoreError> {
        let corrupt = |what: &str| StoreError::Fault(StoreFault::new(format!("log row {seq}: {what}")));
        if bytes.len() < 4 {
            return Err(corrupt("too short"));
        }
        let n = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        let header = bytes.get(4..4 + n).ok_or_else(|| corrupt("header truncated"))?;
        let env: Envelope = postcard::from_bytes(header).map_err(|_| corrupt("header does not decode"))?;
        let at: DateTime<Utc> = concept_core::time::from_micros(env.at_micros);
        Ok(StoredEvent {
            concept: env.concept,
            meta: EventMeta {
                seq,
                stream: env.stream,
                version: env.version,
                kind: env.kind,
                action: env.action,
                at,
            },
            data: bytes[4 + n..].to_vec(),
        })
    }

    fn encode_event(concept: &str, meta: &EventMeta, data: &[u8]) -> Vec<u8> {
        let env = Envelope {
            concept: concept.to_string(),
            stream: meta.stream.clone(),
            version: meta.version,
            kind: meta.kind.clone(),
            action: meta.action,
            at_micros: concept_core::time::micros(&meta.at),
        };
        let header = postcard::to_allocvec(&env).unwrap_or_default();
        let mut out = Vec::with_capacity(4 + header.len() + data.len());
        out.extend_from_slice(&(header.len() as u32).to_be_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(data);
        out
    }

    fn head_version(overlay: &Overlay, concept: &str, stream: &str) -> Result<u64, StoreFault> {
        Ok(overlay
            .get(&keys::head(concept, stream))?
            .map(|v| keys::u64_value(&v))
            .unwrap_or(0))
    }
}

impl Store for SledStore {
    fn view<'a>(&'a self, concept: &str) -> Box<dyn ProjectionRead + 'a> {
        Box::new(ConceptView {
            tree: &self.tree,
            prefix: keys::projection_prefix(concept),
            concept: concept.to_string(),
            _snapshot: self.snapshot.read().unwrap_or_else(|p| p.into_inner()),
        })
    }

    fn commit(&self, commit: Commit) -> Result<Receipt, StoreError> {
        let mut counters = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        for (key, _) in &commit.guarded_rows {
            if self.tree.contains_key(keys::engine(key))? {
                return Err(StoreError::GuardExists(key.clone()));
            }
        }
        let mut overlay = Overlay::new(&self.tree);
        let mut extra: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut next = Counters {
            last_seq: counters.last_seq,
            last_action: counters.last_action,
        };
        let action_id = if commit.record.is_some() {
            next.last_action + 1
        } else {
            0
        };
        next.last_action = next.last_action.max(action_id);
        let mut receipt = Receipt {
            action: action_id,
            ..Receipt::default()
        };
        let at = commit.record.as_ref().map(|r| r.at).unwrap_or_else(Utc::now);
        let prefix = keys::projection_prefix(&commit.concept);
        let mut event_bytes = 0usize;
        for append in commit.appends {
            let mut version = Self::head_version(&overlay, &commit.concept, &append.stream)?;
            if let ExpectedVersion::Exact(expected) = append.expected {
                if expected != version {
                    return Err(StoreError::VersionConflict {
                        concept: commit.concept.clone(),
                        stream: append.stream.clone(),
                        expected,
                        actual: version,
                    });
                }
            }
            for event in append.events {
                next.last_seq += 1;
                version += 1;
                let meta = EventMeta {
                    seq: next.last_seq,
                    stream: append.stream.clone(),
                    version,
                    kind: event.kind,
                    action: action_id,
                    at,
                };
                {
                    let mut txn = ConceptTxn {
                        overlay: &mut overlay,
                        prefix: prefix.clone(),
                        concept: commit.concept.clone(),
                    };
                    (event.apply)(&meta, &mut txn)?;
                }
                let row = Self::encode_event(&commit.concept, &meta, &event.data);
                event_bytes += row.len();
                extra.push((keys::log(meta.seq), row));
                extra.push((
                    keys::stream_index(&commit.concept, &append.stream, version),
                    meta.seq.to_be_bytes().to_vec(),
                ));
                if receipt.first_seq == 0 {
                    receipt.first_seq = meta.seq;
                }
                receipt.last_seq = meta.seq;
                receipt.events += 1;
            }
            // Written through the overlay so a later append to the same stream sees it.
            overlay.pending.insert(
                keys::head(&commit.concept, &append.stream),
                Some(version.to_be_bytes().to_vec()),
            );
        }
        if receipt.events > 0 {
            extra.push((
                keys::checkpoint(&commit.concept),
                receipt.last_seq.to_be_bytes().to_vec(),
            ));
        }
        if let Some(mut record) = commit.record {
            record.id = action_id;
            if receipt.events > 0 {
                record.events = Some((receipt.first_seq, receipt.last_seq));
            }
            let bytes = serde_json::to_vec(&record).map_err(StoreFault::new)?;
            extra.push((keys::record(action_id), bytes));
            extra.push((keys::flow(record.flow, action_id), Vec::new()));
        }
        for (key, value) in commit.guarded_rows {
            // A fire guard remembers the action it let through.
            let value = match key {
                EngineKey::FireGuard { .. } => action_id.to_be_bytes().to_vec(),
                EngineKey::Idempotency(_) => value,
            };
            extra.push((keys::engine(&key), value));
        }
        extra.push((keys::GLOBAL.to_vec(), Self::global_value(&next)));

        receipt.projection_rows = overlay.rows_written;
        receipt.bytes = overlay.bytes_written + event_bytes;
        let mut batch = sled::Batch::default();
        for (k, v) in overlay.pending {
            match v {
                Some(v) => batch.insert(k, v),
                None => batch.remove(k),
            }
        }
        for (k, v) in extra {
            batch.insert(k, v);
        }
        {
            let _exclusive = self.snapshot.write().unwrap_or_else(|p| p.into_inner());
            self.tree.apply_batch(batch)?;
        }
        *counters = next;
        receipt.generation = self.flush.committed();
        Ok(receipt)
    }

    fn wait_durable(&self, generation: u64) -> Result<(), StoreError> {
        self.flush
            .wait(generation, || self.db.flush().map(|_| ()).map_err(StoreError::from))
    }

    fn read_log(&self, after: u64, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        let start = keys::log(after.saturating_add(1));
        let end = keys::log(u64::MAX);
        let mut out = Vec::new();
        for item in self.tree.range(start..=end).take(limit) {
            let (k, v) = item?;
            out.push(Self::decode_event(keys::u64_value(&k[1..]), &v)?);
        }
        Ok(out)
    }

    fn read_stream(&self, concept: &str, stream: &str, after_version: u64) -> Result<Vec<StoredEvent>, StoreError> {
        read_stream(&self.tree, concept, stream, after_version, usize::MAX)
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
        Ok(self.tree.get(keys::engine(key))?.map(|v| v.to_vec()))
    }

    fn rebuild(&self, apply: &RebuildFn<'_>) -> Result<u64, StoreError> {
        // Hold the writer lock throughout: no action may commit while projections are rebuilt;
        // and the snapshot lock: no view reads projections half rebuilt.
        let counters = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let _exclusive = self.snapshot.write().unwrap_or_else(|p| p.into_inner());
        self.tree.insert(keys::REBUILDING, &[1u8])?;
        self.db.flush()?;
        let mut clear = sled::Batch::default();
        for prefix in [[keys::PROJECTION], [keys::CHECKPOINT]] {
            for item in self.tree.scan_prefix(prefix) {
                clear.remove(item?.0);
            }
        }
        self.tree.apply_batch(clear)?;
        let mut after = 0u64;
        let mut replayed = 0u64;
        while after < counters.last_seq {
            let events = self.read_log(after, REBUILD_BATCH)?;
            if events.is_empty() {
                break;
            }
            let mut overlay = Overlay::new(&self.tree);
            let mut checkpoints: Vec<(String, u64)> = Vec::new();
            for event in &events {
                let mut txn = ConceptTxn {
                    overlay: &mut overlay,
                    prefix: keys::projection_prefix(&event.concept),
                    concept: event.concept.clone(),
                };
                apply(&event.concept, &event.meta, &event.data, &mut txn)?;
                match checkpoints.iter_mut().find(|(c, _)| *c == event.concept) {
                    Some(cp) => cp.1 = event.meta.seq,
                    None => checkpoints.push((event.concept.clone(), event.meta.seq)),
                }
                after = event.meta.seq;
                replayed += 1;
            }
            let mut batch = sled::Batch::default();
            for (k, v) in overlay.pending {
                match v {
                    Some(v) => batch.insert(k, v),
                    None => batch.remove(k),
                }
            }
            for (concept, seq) in checkpoints {
                batch.insert(keys::checkpoint(&concept), seq.to_be_bytes().to_vec());
            }
            self.tree.apply_batch(batch)?;
        }
        self.tree.remove(keys::REBUILDING)?;
        self.db.flush()?;
        Ok(replayed)
    }

    fn projection_dump(&self) -> Result<concept_core::Rows, StoreError> {
        let mut out = Vec::new();
        for prefix in [[keys::PROJECTION], [keys::CHECKPOINT]] {
            for item in self.tree.scan_prefix(prefix) {
                let (k, v) = item?;
                out.push((k.to_vec(), v.to_vec()));
            }
        }
        Ok(out)
    }

    fn stats(&self) -> Result<StoreStats, StoreError> {
        let counters = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        Ok(StoreStats {
            last_seq: counters.last_seq,
            actions: counters.last_action,
            projection_rows: self.tree.scan_prefix([keys::PROJECTION]).count() as u64,
        })
    }

    fn compact(&self, retention: &Retention, now: DateTime<Utc>) -> Result<CompactReport, StoreError> {
        super::compact::run(self, retention, now, super::compact::RECORD_BATCH, None)
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
        use std::ops::Bound;
        let mut out = Vec::new();
        for prefix in [b'I', keys::FIRE_GUARD] {
            let start = if after >= &[prefix][..] {
                Bound::Excluded(after.to_vec())
            } else {
                Bound::Included(vec![prefix])
            };
            for item in self.tree.range::<Vec<u8>, _>((start, Bound::Unbounded)) {
                if out.len() >= limit {
                    return Ok(out);
                }
                let (k, v) = item?;
                if k.first() != Some(&prefix) {
                    break;
                }
                out.push((k.to_vec(), v.to_vec()));
            }
        }
        Ok(out)
    }

    fn import(&self, copy: Import) -> Result<(), StoreError> {
        let mut counters = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = Counters {
            last_seq: counters.last_seq,
            last_action: counters.last_action,
        };
        let mut batch = sled::Batch::default();
        for event in copy.events {
            if event.meta.seq != next.last_seq + 1 {
                return Err(StoreError::Fault(StoreFault::new(format!(
                    "imported event {} does not follow the log's last event {}",
                    event.meta.seq, next.last_seq
                ))));
            }
            next.last_seq = event.meta.seq;
            let m = &event.meta;
            batch.insert(keys::log(m.seq), Self::encode_event(&event.concept, m, &event.data));
            batch.insert(
                keys::stream_index(&event.concept, &m.stream, m.version),
                m.seq.to_be_bytes().to_vec(),
            );
            batch.insert(keys::head(&event.concept, &m.stream), m.version.to_be_bytes().to_vec());
        }
        for record in copy.records {
            let bytes = serde_json::to_vec(&record).map_err(StoreFault::new)?;
            batch.insert(keys::record(record.id), bytes);
            batch.insert(keys::flow(record.flow, record.id), Vec::new());
        }
        for (k, v) in copy.engine_rows {
            batch.insert(k, v);
        }
        next.last_seq = next.last_seq.max(copy.last_seq);
        next.last_action = next.last_action.max(copy.last_action);
        batch.insert(keys::GLOBAL.to_vec(), Self::global_value(&next));
        {
            let _exclusive = self.snapshot.write().unwrap_or_else(|p| p.into_inner());
            self.tree.apply_batch(batch)?;
        }
        *counters = next;
        self.db.flush()?;
        Ok(())
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

/// Events of one stream with a version above `after_version`, at most `limit` (through the
/// stream index, so the cost is proportional to what is read, not to the log).
pub(super) fn read_stream(
    tree: &sled::Tree,
    concept: &str,
    stream: &str,
    after_version: u64,
    limit: usize,
) -> Result<Vec<StoredEvent>, StoreError> {
    let start = keys::stream_index(concept, stream, after_version.saturating_add(1));
    let end = keys::stream_index(concept, stream, u64::MAX);
    let mut out = Vec::new();
    for item in tree.range(start..=end).take(limit) {
        let (_, seq) = item?;
        let seq = keys::u64_value(&seq);
        let row = tree
            .get(keys::log(seq))?
            .ok_or_else(|| StoreError::Fault(StoreFault::new(format!("stream index names missing event {seq}"))))?;
        out.push(SledStore::decode_event(seq, &row)?);
    }
    Ok(out)
}
