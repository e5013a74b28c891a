//! The one commit algorithm every store runs, and the overlay it runs on.
//!
//! Under its write lock a store hands [`prepare`] the committed state ([`Base`]) and the
//! counters; `prepare` checks the guards and expected versions, assigns the action id and the
//! gapless sequence numbers, runs each event's apply function against the projections (through
//! an [`Overlay`]: the commit's own writes over the committed rows, and the decoded chunked maps
//! of `concept_core::chunked`, encoded once at the end), and answers everything the store must
//! write as a [`Prepared`]. The store keeps only the locking and the writing. A rebuild replays
//! the log through the same overlay ([`replay`]), many commits' events per batch.
//!
//! Projection keys here are canonical: `P concept 0 key…` (see `keys::projection_prefix`).

use super::keys;
use super::{ActionRecord, Commit, EngineKey, RebuildFn, Receipt, StoreError, StoredEvent};
use concept_core::chunked::MapCache;
use concept_core::{
    Bytes, Entries, EventMeta, ExpectedVersion, ProjectionRead, ProjectionTxn, StoreFault, StoredEventData,
};
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

/// The committed state a commit reads under the store's write lock.
pub(super) trait Base {
    /// A projection row (canonical key).
    fn row(&self, key: &[u8]) -> Result<Option<Bytes>, StoreFault>;
    /// Projection rows starting with `prefix`, from `from` on, in key order (canonical keys).
    fn rows(&self, prefix: &[u8], from: &[u8], limit: usize) -> Result<Entries, StoreFault>;
    /// The last projection row starting with `prefix` at or below (or below) `key`.
    fn row_back(&self, prefix: &[u8], key: &[u8], inclusive: bool) -> Result<Option<(Bytes, Bytes)>, StoreFault>;
    /// A stream's committed version.
    fn head(&self, concept: &str, stream: &str) -> Result<u64, StoreFault>;
    /// Committed events of a stream (see `ProjectionRead::stream_events`).
    fn stream_events(
        &self,
        concept: &str,
        stream: &str,
        after_version: u64,
        limit: usize,
    ) -> Result<Vec<StoredEventData>, StoreFault>;
    /// Which of these engine rows exist already.
    fn guards_exist(&self, keys: &[EngineKey]) -> Result<Option<EngineKey>, StoreError>;
}

/// The global counters: the last sequence number and the last action id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub last_seq: u64,
    pub last_action: u64,
}

/// A commit's (or a rebuild batch's) writes to the projections over the committed rows.
pub(super) struct Overlay<'b> {
    base: &'b dyn Base,
    /// Projection rows written (canonical keys; `None`: deleted).
    pub pending: BTreeMap<Vec<u8>, Option<Bytes>>,
    /// Decoded chunked maps, by concept.
    caches: HashMap<String, MapCache>,
    /// Stream versions moved, by (concept, stream).
    pub heads: BTreeMap<(String, String), u64>,
    pub rows_written: usize,
    pub bytes_written: usize,
}

impl<'b> Overlay<'b> {
    pub fn new(base: &'b dyn Base) -> Self {
        Overlay {
            base,
            pending: BTreeMap::new(),
            caches: HashMap::new(),
            heads: BTreeMap::new(),
            rows_written: 0,
            bytes_written: 0,
        }
    }

    fn head(&self, concept: &str, stream: &str) -> Result<u64, StoreFault> {
        match self.heads.get(&(concept.to_string(), stream.to_string())) {
            Some(v) => Ok(*v),
            None => self.base.head(concept, stream),
        }
    }

    /// The window of one concept on the overlay, as its apply functions see it.
    pub fn txn(&mut self, concept: &str) -> ConceptTxn<'_, 'b> {
        let cache = self.caches.entry(concept.to_string()).or_default();
        ConceptTxn {
            rows: Rows {
                base: self.base,
                pending: &mut self.pending,
                prefix: keys::projection_prefix(concept),
                concept: concept.to_string(),
                heads: &self.heads,
                rows_written: &mut self.rows_written,
                bytes_written: &mut self.bytes_written,
            },
            cache,
        }
    }

    /// Encodes the decoded maps' changed chunks into the pending rows (once per commit or batch).
    pub fn flush_maps(&mut self) -> Result<(), StoreFault> {
        let caches: Vec<(String, MapCache)> = self.caches.drain().collect();
        for (concept, mut cache) in caches {
            let prefix = keys::projection_prefix(&concept);
            let mut writes: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
            {
                let (mut rows, mut bytes) = (0, 0);
                let reader = Rows {
                    base: self.base,
                    pending: &mut self.pending,
                    prefix: prefix.clone(),
                    concept: concept.clone(),
                    heads: &self.heads,
                    rows_written: &mut rows,
                    bytes_written: &mut bytes,
                };
                cache.flush(&reader, &mut |key, value| writes.push((key, value)))?;
            }
            for (key, value) in writes {
                let mut k = prefix.clone();
                k.extend_from_slice(&key);
                self.rows_written += 1;
                self.bytes_written += k.len() + value.as_ref().map_or(0, Vec::len);
                self.pending.insert(k, value.map(Bytes::from));
            }
        }
        Ok(())
    }
}

/// The projection rows of one concept in a commit: pending writes over the committed rows.
pub(super) struct Rows<'o, 'b> {
    base: &'b dyn Base,
    pending: &'o mut BTreeMap<Vec<u8>, Option<Bytes>>,
    prefix: Vec<u8>,
    concept: String,
    heads: &'o BTreeMap<(String, String), u64>,
    rows_written: &'o mut usize,
    bytes_written: &'o mut usize,
}

/// One concept's window on an [`Overlay`]: its rows and its decoded maps.
pub(super) struct ConceptTxn<'o, 'b> {
    rows: Rows<'o, 'b>,
    cache: &'o mut MapCache,
}

impl Rows<'_, '_> {
    fn abs(&self, key: &[u8]) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.prefix.len() + key.len());
        k.extend_from_slice(&self.prefix);
        k.extend_from_slice(key);
        k
    }

    fn rel(&self, key: &Bytes) -> Bytes {
        key.slice(self.prefix.len().min(key.len())..)
    }
}

impl ProjectionRead for Rows<'_, '_> {
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>, StoreFault> {
        let k = self.abs(key);
        match self.pending.get(&k) {
            Some(v) => Ok(v.clone()),
            None => self.base.row(&k),
        }
    }

    fn scan(&self, prefix: &[u8], from: &[u8], limit: usize) -> Result<Entries, StoreFault> {
        let p = self.abs(prefix);
        let mut cursor = self.abs(from);
        let mut out: Entries = Vec::new();
        // Committed rows a page at a time, with the pending writes of the page's key range
        // laid over them, until `limit` rows are found or the prefix ends.
        while out.len() < limit {
            let want = (limit - out.len()).clamp(16, 4096);
            let page = self.base.rows(&p, &cursor, want)?;
            let end: Option<Vec<u8>> = (page.len() >= want).then(|| page[page.len() - 1].0.to_vec());
            let upper = match &end {
                Some(e) => Bound::Included(e.as_slice()),
                None => Bound::Unbounded,
            };
            let mut merged: BTreeMap<Bytes, Bytes> = page.into_iter().collect();
            for (k, v) in self
                .pending
                .range::<[u8], _>((Bound::Included(cursor.as_slice()), upper))
                .take_while(|(k, _)| k.starts_with(&p))
            {
                let key = Bytes::copy_from_slice(k);
                match v {
                    Some(v) => merged.insert(key, v.clone()),
                    None => merged.remove(&key),
                };
            }
            for (k, v) in merged {
                if out.len() >= limit {
                    break;
                }
                out.push((self.rel(&k), v));
            }
            match end {
                Some(mut e) => {
                    e.push(0);
                    cursor = e;
                }
                None => break,
            }
        }
        Ok(out)
    }

    fn seek_back(&self, prefix: &[u8], key: &[u8], inclusive: bool) -> Result<Option<(Bytes, Bytes)>, StoreFault> {
        let (p, k) = (self.abs(prefix), self.abs(key));
        let upper = if inclusive {
            Bound::Included(k.as_slice())
        } else {
            Bound::Excluded(k.as_slice())
        };
        // The greatest live pending row in range, and the greatest committed row in range that
        // no pending write deleted: the answer is the greater of the two.
        let pending = self
            .pending
            .range::<[u8], _>((Bound::Included(p.as_slice()), upper))
            .rev()
            .find_map(|(k, v)| v.as_ref().map(|v| (Bytes::copy_from_slice(k), v.clone())));
        let (mut below, mut incl) = (k.clone(), inclusive);
        let committed = loop {
            match self.base.row_back(&p, &below, incl)? {
                Some((bk, _)) if matches!(self.pending.get(bk.as_ref()), Some(None)) => {
                    below = bk.to_vec();
                    incl = false;
                }
                found => break found,
            }
        };
        let pick = match (pending, committed) {
            (Some(a), Some(b)) => Some(if a.0 >= b.0 { a } else { b }),
            (a, b) => a.or(b),
        };
        Ok(pick.map(|(k, v)| (self.rel(&k), v)))
    }

    fn stream_version(&self, stream: &str) -> Result<u64, StoreFault> {
        match self.heads.get(&(self.concept.clone(), stream.to_string())) {
            Some(v) => Ok(*v),
            None => self.base.head(&self.concept, stream),
        }
    }

    /// Committed events only: events this commit appends are not in the log yet.
    fn stream_events(
        &self,
        stream: &str,
        after_version: u64,
        limit: usize,
    ) -> Result<Vec<StoredEventData>, StoreFault> {
        self.base.stream_events(&self.concept, stream, after_version, limit)
    }
}

impl ProjectionRead for ConceptTxn<'_, '_> {
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>, StoreFault> {
        self.rows.get(key)
    }
    fn scan(&self, prefix: &[u8], from: &[u8], limit: usize) -> Result<Entries, StoreFault> {
        self.rows.scan(prefix, from, limit)
    }
    fn seek_back(&self, prefix: &[u8], key: &[u8], inclusive: bool) -> Result<Option<(Bytes, Bytes)>, StoreFault> {
        self.rows.seek_back(prefix, key, inclusive)
    }
    fn stream_version(&self, stream: &str) -> Result<u64, StoreFault> {
        self.rows.stream_version(stream)
    }
    fn stream_events(
        &self,
        stream: &str,
        after_version: u64,
        limit: usize,
    ) -> Result<Vec<StoredEventData>, StoreFault> {
        self.rows.stream_events(stream, after_version, limit)
    }
}

impl ProjectionTxn for ConceptTxn<'_, '_> {
    fn put(&mut self, key: &[u8], value: Vec<u8>) {
        let k = self.rows.abs(key);
        *self.rows.rows_written += 1;
        *self.rows.bytes_written += k.len() + value.len();
        self.rows.pending.insert(k, Some(Bytes::from(value)));
    }

    fn delete(&mut self, key: &[u8]) {
        let k = self.rows.abs(key);
        *self.rows.rows_written += 1;
        self.rows.pending.insert(k, None);
    }

    fn maps(&mut self) -> (&mut MapCache, &dyn ProjectionRead) {
        (&mut *self.cache, &self.rows)
    }
}

/// Everything one commit writes, for the store to write atomically.
#[derive(Debug, Default)]
pub(super) struct Prepared {
    pub receipt: Receipt,
    /// The counters after the commit.
    pub next: Counters,
    pub concept: String,
    /// The appended events, in sequence order, with their meta filled in.
    pub events: Vec<StoredEvent>,
    /// New stream heads: (concept, stream) → version.
    pub heads: BTreeMap<(String, String), u64>,
    /// Projection rows (canonical keys; `None`: deleted).
    pub rows: BTreeMap<Vec<u8>, Option<Bytes>>,
    /// The action record, with its id and event range.
    pub record: Option<ActionRecord>,
    /// Engine rows (store keys) and their values.
    pub guards: Vec<(EngineKey, Vec<u8>, Vec<u8>)>,
}

/// Runs one commit against `base` under the store's write lock (see the module documentation).
pub(super) fn prepare(commit: Commit, base: &dyn Base, counters: Counters) -> Result<Prepared, StoreError> {
    let wanted: Vec<EngineKey> = commit.guarded_rows.iter().map(|(k, _)| k.clone()).collect();
    if let Some(existing) = base.guards_exist(&wanted)? {
        return Err(StoreError::GuardExists(existing));
    }
    let mut next = counters;
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
    let at = commit.at;
    let mut overlay = Overlay::new(base);
    let mut events = Vec::new();
    let mut event_bytes = 0;
    for append in commit.appends {
        let mut version = overlay.head(&commit.concept, &append.stream)?;
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
            (event.apply)(&meta, &mut overlay.txn(&commit.concept))?;
            event_bytes += event.data.len();
            if receipt.first_seq == 0 {
                receipt.first_seq = meta.seq;
            }
            receipt.last_seq = meta.seq;
            receipt.events += 1;
            events.push(StoredEvent {
                concept: commit.concept.clone(),
                meta,
                data: event.data,
            });
        }
        overlay
            .heads
            .insert((commit.concept.clone(), append.stream.clone()), version);
    }
    overlay.flush_maps()?;
    receipt.projection_rows = overlay.rows_written;
    receipt.bytes = overlay.bytes_written + event_bytes;
    let record = commit.record.map(|mut record| {
        record.id = action_id;
        if receipt.events > 0 {
            record.events = Some((receipt.first_seq, receipt.last_seq));
        }
        record
    });
    let guards = commit
        .guarded_rows
        .into_iter()
        .map(|(key, value)| {
            // A fire guard remembers the action it let through.
            let value = match key {
                EngineKey::FireGuard { .. } => action_id.to_be_bytes().to_vec(),
                EngineKey::Idempotency(_) => value,
            };
            let row = keys::engine(&key);
            (key, row, value)
        })
        .collect();
    let Overlay { pending, heads, .. } = overlay;
    Ok(Prepared {
        receipt,
        next,
        concept: commit.concept,
        events,
        heads,
        rows: pending,
        record,
        guards,
    })
}

/// What one batch of a rebuild writes: projection rows and each concept's checkpoint.
pub(super) struct Replayed {
    pub rows: BTreeMap<Vec<u8>, Option<Bytes>>,
    pub checkpoints: BTreeMap<String, u64>,
}

/// Applies stored events, in order, to the projections over `base` (a rebuild's batch): one
/// overlay and one decoded cache for the whole batch, encoded once at its end.
pub(super) fn replay(base: &dyn Base, events: &[StoredEvent], apply: &RebuildFn<'_>) -> Result<Replayed, StoreError> {
    let mut overlay = Overlay::new(base);
    let mut checkpoints = BTreeMap::new();
    for event in events {
        apply(
            &event.concept,
            &event.meta,
            &event.data,
            &mut overlay.txn(&event.concept),
        )?;
        checkpoints.insert(event.concept.clone(), event.meta.seq);
    }
    overlay.flush_maps()?;
    Ok(Replayed {
        rows: overlay.pending,
        checkpoints,
    })
}
