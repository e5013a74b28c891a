//! An ordered map stored as a handful of chunk rows instead of one row per entry.
//!
//! Large per-user collections (a liked list of 25,000 songs, 50,000 plays) are read whole far
//! more often than they change, and a change touches a few entries. Storing them as sorted
//! chunks of at most [`MAX_CHUNK`] entries, with a small index row, makes a full read a few
//! sequential gets, and a change of k entries rewrites at most k chunks plus the index — the
//! bounded write the I3 invariant asks for — however large the collection.
//!
//! Layout under a base key `b`: `b ++ "i"` holds the index (the chunks in key order with the
//! first key of each), `b ++ "c" ++ id` holds a chunk (its entries in key order).

use crate::{ProjectionRead, ProjectionTxn, StoreFault};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A chunk is split in two when it grows past this many entries.
pub const MAX_CHUNK: usize = 1024;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    next_id: u32,
    chunks: Vec<ChunkRef>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ChunkRef {
    id: u32,
    first: Vec<u8>,
    len: u32,
}

type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// A key and its new value (None: deleted).
type Change = (Vec<u8>, Option<Vec<u8>>);

/// A chunked ordered map under one base key.
#[derive(Debug, Clone)]
pub struct ChunkedMap {
    base: Vec<u8>,
}

impl ChunkedMap {
    pub fn new(base: impl Into<Vec<u8>>) -> Self {
        ChunkedMap { base: base.into() }
    }

    fn index_key(&self) -> Vec<u8> {
        let mut k = self.base.clone();
        k.push(b'i');
        k
    }

    fn chunk_key(&self, id: u32) -> Vec<u8> {
        let mut k = self.base.clone();
        k.push(b'c');
        k.extend_from_slice(&id.to_be_bytes());
        k
    }

    fn load_index(&self, view: &dyn ProjectionRead) -> Result<Index, StoreFault> {
        match view.get(&self.index_key())? {
            Some(bytes) => {
                postcard::from_bytes(&bytes).map_err(|e| StoreFault::new(format!("corrupt chunk index: {e}")))
            }
            None => Ok(Index::default()),
        }
    }

    fn load_chunk(&self, view: &dyn ProjectionRead, id: u32) -> Result<Entries, StoreFault> {
        match view.get(&self.chunk_key(id))? {
            Some(bytes) => postcard::from_bytes(&bytes).map_err(|e| StoreFault::new(format!("corrupt chunk: {e}"))),
            None => Err(StoreFault::new(format!("chunk {id} named by its index is missing"))),
        }
    }

    /// The number of entries.
    pub fn len(&self, view: &dyn ProjectionRead) -> Result<usize, StoreFault> {
        Ok(self.load_index(view)?.chunks.iter().map(|c| c.len as usize).sum())
    }

    pub fn is_empty(&self, view: &dyn ProjectionRead) -> Result<bool, StoreFault> {
        Ok(self.len(view)? == 0)
    }

    /// Every entry, in key order.
    pub fn entries(&self, view: &dyn ProjectionRead) -> Result<Entries, StoreFault> {
        let index = self.load_index(view)?;
        let mut out = Vec::with_capacity(index.chunks.iter().map(|c| c.len as usize).sum());
        for chunk in &index.chunks {
            out.extend(self.load_chunk(view, chunk.id)?);
        }
        Ok(out)
    }

    /// Entries `offset..offset+limit` in key order, reading only the chunks that hold them.
    pub fn page(&self, view: &dyn ProjectionRead, offset: usize, limit: usize) -> Result<Entries, StoreFault> {
        let index = self.load_index(view)?;
        let mut out = Vec::new();
        let mut skipped = 0usize;
        for chunk in &index.chunks {
            if out.len() >= limit {
                break;
            }
            let len = chunk.len as usize;
            if skipped + len <= offset {
                skipped += len;
                continue;
            }
            let entries = self.load_chunk(view, chunk.id)?;
            let start = offset.saturating_sub(skipped);
            skipped += len;
            out.extend(entries.into_iter().skip(start).take(limit - out.len()));
        }
        Ok(out)
    }

    /// Entries whose key is at least `from`, in key order, at most `limit` of them.
    pub fn range_from(&self, view: &dyn ProjectionRead, from: &[u8], limit: usize) -> Result<Entries, StoreFault> {
        let index = self.load_index(view)?;
        let start = chunk_for(&index, from);
        let mut out = Vec::new();
        for chunk in index.chunks.iter().skip(start) {
            if out.len() >= limit {
                break;
            }
            for (k, v) in self.load_chunk(view, chunk.id)? {
                if k.as_slice() >= from && out.len() < limit {
                    out.push((k, v));
                }
            }
        }
        Ok(out)
    }

    /// The value of one key, reading one chunk.
    pub fn get(&self, view: &dyn ProjectionRead, key: &[u8]) -> Result<Option<Vec<u8>>, StoreFault> {
        let index = self.load_index(view)?;
        if index.chunks.is_empty() {
            return Ok(None);
        }
        let entries = self.load_chunk(view, index.chunks[chunk_for(&index, key)].id)?;
        Ok(entries
            .binary_search_by(|(k, _)| k.as_slice().cmp(key))
            .ok()
            .map(|i| entries[i].1.clone()))
    }

    /// The values of many keys, loading each chunk they fall in once. The answer is in the
    /// order of `keys`.
    pub fn get_many(&self, view: &dyn ProjectionRead, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, StoreFault> {
        let index = self.load_index(view)?;
        let mut out = vec![None; keys.len()];
        if index.chunks.is_empty() {
            return Ok(out);
        }
        let mut by_chunk: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, key) in keys.iter().enumerate() {
            by_chunk.entry(chunk_for(&index, key)).or_default().push(i);
        }
        for (pos, wanted) in by_chunk {
            let entries = self.load_chunk(view, index.chunks[pos].id)?;
            for i in wanted {
                if let Ok(found) = entries.binary_search_by(|(k, _)| k.as_slice().cmp(keys[i])) {
                    out[i] = Some(entries[found].1.clone());
                }
            }
        }
        Ok(out)
    }

    /// Applies upserts and deletions, rewriting only the chunks they touch (and the index).
    /// Returns the number of rows written.
    pub fn update(
        &self,
        txn: &mut dyn ProjectionTxn,
        upserts: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
        deletes: impl IntoIterator<Item = Vec<u8>>,
    ) -> Result<usize, StoreFault> {
        // Group the changes by the chunk they fall in (None: the value is deleted).
        let mut changes: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
        for key in deletes {
            changes.insert(key, None);
        }
        for (key, value) in upserts {
            changes.insert(key, Some(value));
        }
        if changes.is_empty() {
            return Ok(0);
        }
        let mut index = self.load_index(txn)?;
        if index.chunks.is_empty() {
            let inserts: Entries = changes.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect();
            if inserts.is_empty() {
                return Ok(0);
            }
            let written = self.write_chunks(txn, &mut index, 0, inserts, None)?;
            txn.put(&self.index_key(), encode(&index));
            return Ok(written + 1);
        }
        let mut by_chunk: BTreeMap<usize, Vec<Change>> = BTreeMap::new();
        for (key, value) in changes {
            by_chunk.entry(chunk_for(&index, &key)).or_default().push((key, value));
        }
        // Rewrite from the last affected chunk to the first so earlier positions stay valid
        // while splits insert new chunk refs.
        let mut written = 0;
        for (pos, chunk_changes) in by_chunk.into_iter().rev() {
            let id = index.chunks[pos].id;
            let mut entries: BTreeMap<Vec<u8>, Vec<u8>> = self.load_chunk(txn, id)?.into_iter().collect();
            for (key, value) in chunk_changes {
                match value {
                    Some(v) => {
                        entries.insert(key, v);
                    }
                    None => {
                        entries.remove(&key);
                    }
                }
            }
            let entries: Entries = entries.into_iter().collect();
            index.chunks.remove(pos);
            written += self.write_chunks(txn, &mut index, pos, entries, Some(id))?;
        }
        txn.put(&self.index_key(), encode(&index));
        Ok(written + 1)
    }

    /// Writes `entries` as one or more chunks at index position `pos`, reusing chunk `reuse`
    /// for the first of them (or deleting it when there are no entries).
    fn write_chunks(
        &self,
        txn: &mut dyn ProjectionTxn,
        index: &mut Index,
        pos: usize,
        entries: Entries,
        reuse: Option<u32>,
    ) -> Result<usize, StoreFault> {
        if entries.is_empty() {
            if let Some(id) = reuse {
                txn.delete(&self.chunk_key(id));
                return Ok(1);
            }
            return Ok(0);
        }
        let pieces = entries.len().div_ceil(MAX_CHUNK / 2).max(1);
        let pieces = if entries.len() <= MAX_CHUNK { 1 } else { pieces };
        let per_piece = entries.len().div_ceil(pieces);
        let mut reuse = reuse;
        let mut written = 0;
        for (i, piece) in entries.chunks(per_piece).enumerate() {
            let id = reuse.take().unwrap_or_else(|| {
                let id = index.next_id;
                index.next_id += 1;
                id
            });
            txn.put(&self.chunk_key(id), encode(&piece));
            index.chunks.insert(
                pos + i,
                ChunkRef {
                    id,
                    first: piece[0].0.clone(),
                    len: piece.len() as u32,
                },
            );
            written += 1;
        }
        Ok(written)
    }

    /// Deletes every row of the map. Returns the number of rows deleted.
    pub fn clear(&self, txn: &mut dyn ProjectionTxn) -> Result<usize, StoreFault> {
        let index = self.load_index(txn)?;
        for chunk in &index.chunks {
            txn.delete(&self.chunk_key(chunk.id));
        }
        txn.delete(&self.index_key());
        Ok(index.chunks.len() + 1)
    }
}

/// The position of the chunk a key belongs in: the last chunk whose first key is at most `key`
/// (the first chunk for keys smaller than every first key).
fn chunk_for(index: &Index, key: &[u8]) -> usize {
    index
        .chunks
        .partition_point(|c| c.first.as_slice() <= key)
        .saturating_sub(1)
}

fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    // Encoding plain byte vectors and integers into a Vec cannot fail.
    postcard::to_allocvec(value).unwrap_or_default()
}
