//! The first layout of the embedded store, read for the upgrade to the current one (see
//! `cli/upgrade.rs`, which rebuilds and verifies the projections through the engine).
//!
//! Layout 1 has no `V` row. Its log holds one row per event (`L seq` → a postcard header
//! `{concept, stream, version, kind, action, at_micros}` behind its u32 length, then the event's
//! JSON); its projection rows are `P concept 0 key…` (the canonical keys) in one generation.
//! Records (`R`), guards (`X`), idempotency keys (`I`) and the counters (`G`) are as today.

use super::{keys, open_db, SledOptions};
use crate::store::commit::Counters;
use crate::store::{ActionRecord, StoreError, StoredEvent};
use concept_core::{EventMeta, StoreFault};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The header before an event's data in a layout-1 log row.
#[derive(Deserialize)]
struct Envelope {
    concept: String,
    stream: String,
    version: u64,
    kind: String,
    action: u64,
    at_micros: i64,
}

/// A store of the first layout, open for reading.
pub struct LegacyStore {
    dir: PathBuf,
    tree: sled::Tree,
    _db: sled::Db,
}

/// Whether the sled store in `dir` is of the first layout (it has data but no layout row).
pub fn is_legacy(tree: &sled::Tree) -> Result<bool, StoreError> {
    Ok(tree.get(keys::VERSION)?.is_none() && !tree.is_empty())
}

impl LegacyStore {
    /// Opens `dir` if it holds a store of the first layout (`None` otherwise: no store, or one
    /// of the current layout).
    pub fn open(dir: &Path) -> Result<Option<LegacyStore>, StoreError> {
        if !dir.join("db").exists() {
            return Ok(None);
        }
        let db = open_db(dir, &SledOptions::default())?;
        let tree: sled::Tree = (*db).clone();
        if !is_legacy(&tree)? {
            return Ok(None);
        }
        Ok(Some(LegacyStore {
            dir: dir.to_path_buf(),
            tree,
            _db: db,
        }))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The last sequence number and action id.
    pub fn counters(&self) -> Result<Counters, StoreError> {
        Ok(match self.tree.get(keys::GLOBAL)? {
            Some(v) => Counters {
                last_seq: keys::u64_value(&v),
                last_action: keys::u64_value(&v[8..]),
            },
            None => Counters::default(),
        })
    }

    /// Events with a seq above `after`, in order, at most `limit`.
    pub fn read_log(&self, after: u64, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        let start = log_key(after.saturating_add(1));
        let mut out = Vec::new();
        for item in self.tree.range(start..=log_key(u64::MAX)).take(limit) {
            let (k, v) = item?;
            out.push(decode_event(keys::u64_value(&k[1..]), &v)?);
        }
        Ok(out)
    }

    /// Action records with an id above `after`, at most `limit`.
    pub fn read_records(&self, after: u64, limit: usize) -> Result<Vec<ActionRecord>, StoreError> {
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

    /// Engine rows (guards, idempotency keys) with a key above `after`, at most `limit`.
    pub fn read_engine_rows(&self, after: &[u8], limit: usize) -> Result<concept_core::Rows, StoreError> {
        super::view::engine_rows(&self.tree, after, limit)
    }

    /// The projection rows of one concept (canonical keys).
    pub fn projection_rows(&self, concept: &str) -> Result<concept_core::Rows, StoreError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(crate::store::keys::projection_prefix(concept)) {
            let (k, v) = item?;
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }
}

/// The entries of a layout-1 chunked map (an index row `base i` naming the chunks `base c id`,
/// each a postcard list of (key, value)), in key order, from a concept's rows (canonical keys).
pub fn map_entries(rows: &concept_core::Rows, base: &[u8]) -> Result<concept_core::Rows, StoreError> {
    #[derive(Deserialize)]
    struct Index {
        #[allow(dead_code)]
        next_id: u32,
        chunks: Vec<ChunkRef>,
    }
    #[derive(Deserialize)]
    struct ChunkRef {
        id: u32,
        #[allow(dead_code)]
        first: Vec<u8>,
        #[allow(dead_code)]
        len: u32,
    }
    let find = |key: &[u8]| {
        rows.iter()
            .find(|(k, _)| k.as_slice() == key)
            .map(|(_, v)| v.as_slice())
    };
    let corrupt = |what: &str| StoreError::Fault(StoreFault::new(format!("layout-1 map {base:?}: {what}")));
    let mut index_key = base.to_vec();
    index_key.push(b'i');
    let Some(index) = find(&index_key) else {
        return Ok(Vec::new());
    };
    let index: Index = postcard::from_bytes(index).map_err(|_| corrupt("index does not decode"))?;
    let mut out = Vec::new();
    for chunk in index.chunks {
        let mut key = base.to_vec();
        key.push(b'c');
        key.extend_from_slice(&chunk.id.to_be_bytes());
        let bytes = find(&key).ok_or_else(|| corrupt("a chunk is missing"))?;
        let entries: Vec<(Vec<u8>, Vec<u8>)> =
            postcard::from_bytes(bytes).map_err(|_| corrupt("a chunk does not decode"))?;
        out.extend(entries);
    }
    Ok(out)
}

fn log_key(seq: u64) -> Vec<u8> {
    let mut k = vec![keys::LOG];
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn decode_event(seq: u64, bytes: &[u8]) -> Result<StoredEvent, StoreError> {
    let corrupt = |what: &str| StoreError::Fault(StoreFault::new(format!("log row {seq}: {what}")));
    let head: [u8; 4] = bytes
        .get(..4)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| corrupt("too short"))?;
    let n = u32::from_be_bytes(head) as usize;
    let header = bytes.get(4..4 + n).ok_or_else(|| corrupt("header truncated"))?;
    let env: Envelope = postcard::from_bytes(header).map_err(|_| corrupt("header does not decode"))?;
    Ok(StoredEvent {
        concept: env.concept,
        meta: EventMeta {
            seq,
            stream: env.stream,
            version: env.version,
            kind: env.kind,
            action: env.action,
            at: concept_core::time::from_micros(env.at_micros),
        },
        data: bytes[4 + n..].to_vec(),
    })
}

/// Puts the upgraded store `upgraded` in place of the old one at `dir`, keeping the old files
/// beside it as `<dir>.layout1-backup`; answers where the old files went. Each step is a
/// rename, so a crash leaves either the old store in place (and a partial upgrade to redo) or
/// the new one.
pub fn swap(dir: &Path, upgraded: &Path) -> Result<PathBuf, StoreError> {
    let io = |what: &str, e: std::io::Error| StoreError::Fault(StoreFault::new(format!("{what}: {e}")));
    let backup = sibling(dir, "layout1-backup");
    if backup.exists() {
        return Err(StoreError::Fault(StoreFault::new(format!(
            "{} exists (an earlier upgrade's copy of the old store); move it away and upgrade again",
            backup.display()
        ))));
    }
    std::fs::rename(dir, &backup).map_err(|e| io("moving the old store aside", e))?;
    std::fs::rename(upgraded, dir).map_err(|e| io("moving the upgraded store in place", e))?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(|e| io("syncing the store's parent directory", e))?;
    }
    Ok(backup)
}

/// `<dir>.<suffix>`, beside `dir`.
pub fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".{suffix}"));
    dir.with_file_name(name)
}
