//! An ordered map stored as a few chunk rows instead of one row per entry.
//!
//! Large collections (a liked list of 25,000 songs, 100,000 tracks' metadata) are read whole far
//! more often than they change, and a change touches a few entries. Storing them as sorted chunks
//! of at most [`CHUNK_BYTES`] makes a full read a short scan of rows read in place, and a change
//! of k entries rewrites at most k chunks — the bounded write the I3 invariant asks for —
//! however large the map.
//!
//! # Layout
//!
//! Under a base key `b`, a chunk is the row `b ++ bound`: it holds the entries whose keys are at
//! least `bound` and below the next chunk's bound. The first chunk's bound is empty (its row is
//! `b` itself), so the chunk a key belongs to is the row with the greatest key at most `b ++ key`
//! — the store's ordered keys are the index, and there is no index row to rewrite. A chunk's
//! bytes are `[count: u32 LE]` followed by `count` entries `[key length][key][value length]
//! [value]` (lengths as LEB128), in key order, read in place by [`Chunk`]. Chunks are split
//! when they grow past [`CHUNK_BYTES`], which keeps every sled leaf (at most 17 rows) under
//! sled's blob threshold (a quarter of its 512 KiB segment).
//!
//! # Writing
//!
//! Inside a commit, a map is changed through [`ChunkedMap::edit`]: the chunks it touches are
//! decoded once into the commit's [`MapCache`] and stay decoded for every event the commit
//! applies (and, in a rebuild, for a whole batch of commits). The store calls
//! [`MapCache::flush`] when it writes the commit: each changed chunk is encoded once, split if
//! it grew past the limit, and written; an emptied chunk is deleted.

use crate::{Bytes, ProjectionRead, ProjectionTxn, Rows, StoreFault};
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

/// The most bytes a chunk row holds (one entry larger than this is a chunk of its own).
///
/// sled 0.34.7 writes a tree node to a separate blob file once it is larger than a quarter of a
/// segment (512 KiB / 4 = 128 KiB), and splits a leaf once it holds more than 16 rows: 17 rows of
/// 6 KiB and their keys stay below that.
pub const CHUNK_BYTES: usize = 6 * 1024;

/// A chunked ordered map under one base key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkedMap {
    base: Vec<u8>,
    /// The bytes a region holds on average (see [`is_anchor`]).
    region: usize,
}

impl ChunkedMap {
    /// A map read whole more often than changed: regions of [`REGION_BYTES`].
    pub fn new(base: impl Into<Vec<u8>>) -> Self {
        ChunkedMap {
            base: base.into(),
            region: REGION_BYTES,
        }
    }

    /// A map changed by point updates more than read whole (an index): regions of about
    /// `bytes`, so a change of k entries rewrites k small rows.
    pub fn with_region(base: impl Into<Vec<u8>>, bytes: usize) -> Self {
        ChunkedMap {
            base: base.into(),
            region: bytes.clamp(64, CHUNK_BYTES),
        }
    }

    /// The key prefix every chunk row of this map starts with.
    pub fn base(&self) -> &[u8] {
        &self.base
    }

    fn row_key(&self, bound: &[u8]) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.base.len() + bound.len());
        k.extend_from_slice(&self.base);
        k.extend_from_slice(bound);
        k
    }

    /// Every chunk of the map, in key order, as stored (read them with [`Chunk::parse`]).
    pub fn chunks(&self, view: &dyn ProjectionRead) -> Result<Vec<Bytes>, StoreFault> {
        Ok(view.scan_prefix(&self.base)?.into_iter().map(|(_, v)| v).collect())
    }

    /// Calls `f` with every entry, in key order, reading the chunks in place.
    pub fn for_each(
        &self,
        view: &dyn ProjectionRead,
        mut f: impl FnMut(&[u8], &[u8]) -> Result<(), StoreFault>,
    ) -> Result<(), StoreFault> {
        for bytes in self.chunks(view)? {
            for (k, v) in Chunk::parse(&bytes)?.iter() {
                f(k, v)?;
            }
        }
        Ok(())
    }

    /// Every entry, in key order, as owned pairs.
    pub fn entries(&self, view: &dyn ProjectionRead) -> Result<Rows, StoreFault> {
        let mut out = Vec::new();
        self.for_each(view, |k, v| {
            out.push((k.to_vec(), v.to_vec()));
            Ok(())
        })?;
        Ok(out)
    }

    /// The number of entries (from the chunks' headers; no entry is decoded).
    pub fn len(&self, view: &dyn ProjectionRead) -> Result<usize, StoreFault> {
        let mut n = 0;
        for bytes in self.chunks(view)? {
            n += Chunk::parse(&bytes)?.len();
        }
        Ok(n)
    }

    pub fn is_empty(&self, view: &dyn ProjectionRead) -> Result<bool, StoreFault> {
        Ok(self.len(view)? == 0)
    }

    /// Calls `f` with entries `offset..offset+limit` in key order, decoding only the chunks that
    /// hold them.
    pub fn page(
        &self,
        view: &dyn ProjectionRead,
        offset: usize,
        limit: usize,
        mut f: impl FnMut(&[u8], &[u8]) -> Result<(), StoreFault>,
    ) -> Result<(), StoreFault> {
        // The rows are read a few at a time, so a first page reads the map's first rows only:
        // two rows first (a page of 200 small entries fits in one), then twice as many each
        // time, up to 16.
        const ROWS: usize = 16;
        let mut batch = 2;
        let mut skipped = 0usize;
        let mut taken = 0usize;
        let mut cursor = self.base.clone();
        'rows: loop {
            let rows = view.scan(&self.base, &cursor, batch)?;
            let Some((last, _)) = rows.last() else { break };
            let next = successor(last);
            for (_, bytes) in &rows {
                if taken >= limit {
                    break 'rows;
                }
                let chunk = Chunk::parse(bytes)?;
                if skipped + chunk.len() <= offset {
                    skipped += chunk.len();
                    continue;
                }
                let start = offset.saturating_sub(skipped);
                skipped += chunk.len();
                for (k, v) in chunk.iter().skip(start) {
                    if taken >= limit {
                        break;
                    }
                    f(k, v)?;
                    taken += 1;
                }
            }
            if rows.len() < batch || taken >= limit {
                break;
            }
            cursor = next;
            batch = (batch * 2).min(ROWS);
        }
        Ok(())
    }

    /// Entries whose key is at least `from`, in key order, at most `limit` of them.
    pub fn range_from(&self, view: &dyn ProjectionRead, from: &[u8], limit: usize) -> Result<Rows, StoreFault> {
        let mut out = Vec::new();
        let start = match view.seek_back(&self.base, &self.row_key(from), true)? {
            Some((k, _)) => k.to_vec(),
            None => self.base.clone(),
        };
        let mut cursor = start;
        'rows: loop {
            let rows = view.scan(&self.base, &cursor, 16)?;
            let Some((last, _)) = rows.last() else { break };
            let next = successor(last);
            for (_, bytes) in &rows {
                for (k, v) in Chunk::parse(bytes)?.iter() {
                    if out.len() >= limit {
                        break 'rows;
                    }
                    if k >= from {
                        out.push((k.to_vec(), v.to_vec()));
                    }
                }
            }
            if rows.len() < 16 {
                break;
            }
            cursor = next;
        }
        Ok(out)
    }

    /// The value of one key, reading one chunk.
    pub fn get(&self, view: &dyn ProjectionRead, key: &[u8]) -> Result<Option<Bytes>, StoreFault> {
        let Some((_, bytes)) = view.seek_back(&self.base, &self.row_key(key), true)? else {
            return Ok(None);
        };
        Ok(Chunk::parse(&bytes)?.find(key).map(|v| bytes.slice_ref(v)))
    }

    /// The values of many keys, in the order of `keys`, reading each chunk they fall in once.
    pub fn get_many(&self, view: &dyn ProjectionRead, keys: &[&[u8]]) -> Result<Vec<Option<Bytes>>, StoreFault> {
        let mut order: Vec<usize> = (0..keys.len()).collect();
        order.sort_by(|a, b| keys[*a].cmp(keys[*b]));
        let mut out = vec![None; keys.len()];
        // The chunk read last, and the bound of the chunk after it (None: it is the last).
        let mut current: Option<(Bytes, Option<Vec<u8>>)> = None;
        for i in order {
            let key = keys[i];
            let covered = current
                .as_ref()
                .is_some_and(|(_, next)| next.as_deref().is_none_or(|n| key < n));
            if !covered {
                current = match view.seek_back(&self.base, &self.row_key(key), true)? {
                    Some((row, bytes)) => {
                        let next = view
                            .scan(&self.base, &successor(&row), 1)?
                            .first()
                            .map(|(k, _)| k[self.base.len()..].to_vec());
                        Some((bytes, next))
                    }
                    None => None,
                };
            }
            if let Some((bytes, _)) = &current {
                out[i] = Chunk::parse(bytes)?.find(key).map(|v| bytes.slice_ref(v));
            }
        }
        Ok(out)
    }

    /// The map as changed inside a commit: reads and writes go through the commit's decoded
    /// chunks (see the module documentation).
    pub fn edit<'t>(&'t self, txn: &'t mut dyn ProjectionTxn) -> MapEdit<'t> {
        let (cache, reader) = txn.maps();
        let state = cache.maps.entry(self.base.clone()).or_insert_with(|| MapState {
            region: self.region,
            chunks: BTreeMap::new(),
        });
        MapEdit {
            base: &self.base,
            state,
            reader,
        }
    }

    /// Deletes every row of the map (and forgets what this commit had decoded of it).
    pub fn clear(&self, txn: &mut dyn ProjectionTxn) -> Result<(), StoreFault> {
        let rows = txn.scan_prefix(&self.base)?;
        for (key, _) in &rows {
            txn.delete(key);
        }
        let (cache, _) = txn.maps();
        cache.maps.remove(&self.base);
        Ok(())
    }
}

/// The smallest key greater than `key`.
fn successor(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.extend_from_slice(key);
    k.push(0);
    k
}

/// One stored chunk, read in place.
#[derive(Debug, Clone, Copy)]
pub struct Chunk<'a> {
    count: usize,
    body: &'a [u8],
}

impl<'a> Chunk<'a> {
    /// Checks a chunk's bytes (every length within bounds) so that reading it cannot fail.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, StoreFault> {
        let corrupt = || StoreFault::new("a chunk row is corrupt");
        let head: [u8; 4] = bytes.get(..4).and_then(|h| h.try_into().ok()).ok_or_else(corrupt)?;
        let count = u32::from_le_bytes(head) as usize;
        let body = &bytes[4..];
        let mut at = 0;
        for _ in 0..count {
            for _ in 0..2 {
                let (len, used) = read_len(&body[at..]).ok_or_else(corrupt)?;
                at += used;
                at = at
                    .checked_add(len)
                    .filter(|end| *end <= body.len())
                    .ok_or_else(corrupt)?;
            }
        }
        if at != body.len() {
            return Err(corrupt());
        }
        Ok(Chunk { count, body })
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The entries in key order.
    pub fn iter(&self) -> ChunkIter<'a> {
        ChunkIter {
            rest: self.body,
            left: self.count,
        }
    }

    /// The value of `key`, if the chunk holds it.
    pub fn find(&self, key: &[u8]) -> Option<&'a [u8]> {
        for (k, v) in self.iter() {
            match k.cmp(key) {
                std::cmp::Ordering::Less => continue,
                std::cmp::Ordering::Equal => return Some(v),
                std::cmp::Ordering::Greater => return None,
            }
        }
        None
    }
}

/// The entries of a [`Chunk`].
pub struct ChunkIter<'a> {
    rest: &'a [u8],
    left: usize,
}

impl<'a> Iterator for ChunkIter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // Chunk::parse checked every length, so these reads stay within the bytes.
        let (klen, used) = read_len(self.rest)?;
        let key = self.rest.get(used..used + klen)?;
        self.rest = &self.rest[used + klen..];
        let (vlen, used) = read_len(self.rest)?;
        let value = self.rest.get(used..used + vlen)?;
        self.rest = &self.rest[used + vlen..];
        Some((key, value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

/// A LEB128 length and the bytes it took.
fn read_len(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut value = 0usize;
    for (i, b) in bytes.iter().enumerate().take(5) {
        value |= ((b & 0x7f) as usize) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

fn write_len(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn len_size(n: usize) -> usize {
    let mut size = 1;
    let mut n = n >> 7;
    while n > 0 {
        size += 1;
        n >>= 7;
    }
    size
}

/// The bytes one entry takes in a chunk.
fn entry_size(key: &[u8], value: &[u8]) -> usize {
    len_size(key.len()) + key.len() + len_size(value.len()) + value.len()
}

/// Encodes entries (in key order) as one chunk.
pub fn encode_chunk<'e>(entries: impl IntoIterator<Item = (&'e [u8], &'e [u8])>) -> Vec<u8> {
    let mut out = vec![0u8; 4];
    let mut count = 0u32;
    for (k, v) in entries {
        write_len(&mut out, k.len());
        out.extend_from_slice(k);
        write_len(&mut out, v.len());
        out.extend_from_slice(v);
        count += 1;
    }
    out[..4].copy_from_slice(&count.to_le_bytes());
    out
}

/// The chunked maps one commit (or one rebuild batch) has decoded, by base key.
#[derive(Debug, Default)]
pub struct MapCache {
    maps: HashMap<Vec<u8>, MapState>,
}

/// The decoded chunks of one map.
#[derive(Debug)]
struct MapState {
    /// The map's region size (see [`is_anchor`]).
    region: usize,
    /// Chunks by bound (the stored ones this commit read, and a new first chunk for an empty
    /// map).
    chunks: BTreeMap<Vec<u8>, Loaded>,
}

/// One decoded chunk.
#[derive(Debug)]
struct Loaded {
    entries: BTreeMap<Vec<u8>, Vec<u8>>,
    /// The bound of the stored chunk after it (None: it is the last).
    next: Option<Vec<u8>>,
    /// Whether a row holds it now.
    stored: bool,
    dirty: bool,
}

impl Loaded {
    fn covers(&self, key: &[u8]) -> bool {
        self.next.as_deref().is_none_or(|n| key < n)
    }

    fn decode(bytes: &[u8], next: Option<Vec<u8>>) -> Result<Loaded, StoreFault> {
        Ok(Loaded {
            entries: Chunk::parse(bytes)?
                .iter()
                .map(|(k, v)| (k.to_vec(), v.to_vec()))
                .collect(),
            next,
            stored: true,
            dirty: false,
        })
    }

    /// Whether the chunk starts a region: its first entry is an anchor.
    fn starts_region(&self, region: usize) -> bool {
        self.entries.iter().next().is_some_and(|(k, v)| is_anchor(k, v, region))
    }
}

/// The bytes a region of a map holds on average, unless the map says otherwise
/// ([`ChunkedMap::with_region`]): an entry is an *anchor* — it starts a new region — with
/// probability its size over the region size (see [`is_anchor`]).
pub const REGION_BYTES: usize = 4 * 1024;

/// Whether an entry starts a region of a map whose regions hold `region` bytes on average. It
/// depends on the entry alone (a hash of its key against its size), so the chunking of a map is
/// a function of its entries, whatever order of inserts and removals made them: a rebuild
/// writes the very rows the live commits wrote.
pub fn is_anchor(key: &[u8], value: &[u8], region: usize) -> bool {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // Mix the low bits, which FNV leaves weak for short keys.
    h ^= h >> 29;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 32;
    (h % region.max(1) as u64) < entry_size(key, value) as u64
}

/// The canonical chunks of a region's entries (in key order, the first one starting the region
/// or the map): a new chunk at every anchor, and wherever the next entry would take a chunk past
/// [`CHUNK_BYTES`].
fn canonical_chunks<'e>(
    entries: impl IntoIterator<Item = (&'e [u8], &'e [u8])>,
    region: usize,
) -> Vec<Vec<(&'e [u8], &'e [u8])>> {
    let mut chunks: Vec<Vec<(&[u8], &[u8])>> = Vec::new();
    let mut size = 4;
    for (k, v) in entries {
        let n = entry_size(k, v);
        let start = match chunks.last() {
            None => true,
            Some(current) => !current.is_empty() && (is_anchor(k, v, region) || size + n > CHUNK_BYTES),
        };
        if start {
            chunks.push(Vec::new());
            size = 4;
        }
        if let Some(current) = chunks.last_mut() {
            current.push((k, v));
        }
        size += n;
    }
    chunks
}

impl MapCache {
    /// Whether nothing is decoded.
    pub fn is_empty(&self) -> bool {
        self.maps.is_empty()
    }

    /// Writes every changed region of every map through `write` (keys relative to the
    /// concept; `None` deletes), reading neighbouring chunks through `reader` (the rows as they
    /// stand before these writes), and empties the cache.
    ///
    /// A changed chunk is rewritten with the rest of its region — from the chunk that starts it
    /// (an anchor, or the map's start) to the next chunk that starts one — in the canonical
    /// chunking of [`canonical_chunks`], so the rows do not depend on the history of changes.
    pub fn flush(
        &mut self,
        reader: &dyn ProjectionRead,
        write: &mut dyn FnMut(Vec<u8>, Option<Vec<u8>>),
    ) -> Result<(), StoreFault> {
        for (base, mut state) in self.maps.drain() {
            flush_map(&base, &mut state, reader, write)?;
        }
        Ok(())
    }
}

fn row_key(base: &[u8], bound: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(base.len() + bound.len());
    k.extend_from_slice(base);
    k.extend_from_slice(bound);
    k
}

/// Loads the stored chunk `bound` into the state, if it is not there yet.
fn load(base: &[u8], state: &mut MapState, reader: &dyn ProjectionRead, bound: &[u8]) -> Result<(), StoreFault> {
    if state.chunks.contains_key(bound) {
        return Ok(());
    }
    let row = row_key(base, bound);
    let bytes = reader
        .get(&row)?
        .ok_or_else(|| StoreFault::new("a chunk row vanished during its commit"))?;
    let next = next_stored(base, reader, &row)?;
    state.chunks.insert(bound.to_vec(), Loaded::decode(&bytes, next)?);
    Ok(())
}

/// The bound of the stored chunk after the row `row`.
fn next_stored(base: &[u8], reader: &dyn ProjectionRead, row: &[u8]) -> Result<Option<Vec<u8>>, StoreFault> {
    Ok(reader
        .scan(base, &successor(row), 1)?
        .first()
        .map(|(k, _)| k[base.len()..].to_vec()))
}

/// The bound of the stored chunk before the chunk `bound`.
fn previous_stored(base: &[u8], reader: &dyn ProjectionRead, bound: &[u8]) -> Result<Option<Vec<u8>>, StoreFault> {
    if bound.is_empty() {
        return Ok(None);
    }
    Ok(reader
        .seek_back(base, &row_key(base, bound), false)?
        .map(|(k, _)| k[base.len()..].to_vec()))
}

fn flush_map(
    base: &[u8],
    state: &mut MapState,
    reader: &dyn ProjectionRead,
    write: &mut dyn FnMut(Vec<u8>, Option<Vec<u8>>),
) -> Result<(), StoreFault> {
    let dirty: Vec<Vec<u8>> = state
        .chunks
        .iter()
        .filter(|(_, c)| c.dirty)
        .map(|(b, _)| b.clone())
        .collect();
    // The spans to rewrite, as runs of chunk bounds: each from the chunk that starts its
    // region (as the entries now stand) to before the next one that does.
    let mut spans: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut spanned: std::collections::HashSet<Vec<u8>> = std::collections::HashSet::new();
    for bound in dirty {
        if spanned.contains(&bound) {
            continue;
        }
        let mut span = vec![bound.clone()];
        // Backwards to the start of the region.
        let mut first = bound;
        loop {
            let starts = first.is_empty() || state.chunks.get(&first).is_some_and(|c| c.starts_region(state.region));
            if starts {
                break;
            }
            match previous_stored(base, reader, &first)? {
                Some(prev) => {
                    load(base, state, reader, &prev)?;
                    span.insert(0, prev.clone());
                    first = prev;
                }
                None => break,
            }
        }
        // Forwards to the next chunk that starts a region (past it while the span is the map's
        // start and holds nothing yet: the map's first chunk is always the one at its base).
        let mut last = span[span.len() - 1].clone();
        while let Some(next) = state.chunks.get(&last).and_then(|c| c.next.clone()) {
            load(base, state, reader, &next)?;
            let empty_start = span[0].is_empty()
                && span
                    .iter()
                    .all(|b| state.chunks.get(b).is_none_or(|c| c.entries.is_empty()));
            if !empty_start && state.chunks.get(&next).is_some_and(|c| c.starts_region(state.region)) {
                break;
            }
            span.push(next.clone());
            last = next;
        }
        // Spans that meet are one span.
        let meets = span.iter().any(|b| spanned.contains(b));
        spanned.extend(span.iter().cloned());
        match spans.iter_mut().find(|s| meets && s.iter().any(|b| span.contains(b))) {
            Some(existing) => {
                for b in span {
                    if !existing.contains(&b) {
                        existing.push(b);
                    }
                }
                existing.sort();
            }
            None => spans.push(span),
        }
    }
    for span in spans {
        let entries: Vec<(&[u8], &[u8])> = span
            .iter()
            .filter_map(|b| state.chunks.get(b))
            .flat_map(|c| c.entries.iter().map(|(k, v)| (k.as_slice(), v.as_slice())))
            .collect();
        let starts_map = span[0].is_empty();
        let mut written: std::collections::HashSet<Vec<u8>> = std::collections::HashSet::new();
        for (i, chunk) in canonical_chunks(entries, state.region).into_iter().enumerate() {
            let bound = if i == 0 && starts_map {
                Vec::new()
            } else {
                chunk[0].0.to_vec()
            };
            write(row_key(base, &bound), Some(encode_chunk(chunk)));
            written.insert(bound);
        }
        for b in &span {
            if state.chunks.get(b).is_some_and(|c| c.stored) && !written.contains(b) {
                write(row_key(base, b), None);
            }
        }
    }
    Ok(())
}

/// A map as one commit changes it (from [`ChunkedMap::edit`]).
pub struct MapEdit<'t> {
    base: &'t [u8],
    state: &'t mut MapState,
    reader: &'t dyn ProjectionRead,
}

impl MapEdit<'_> {
    /// Decodes the chunk `key` belongs in, unless it is decoded already.
    fn locate(&mut self, key: &[u8]) -> Result<(), StoreFault> {
        let known = self
            .state
            .chunks
            .range::<[u8], _>((Bound::Unbounded, Bound::Included(key)))
            .next_back()
            .is_some_and(|(_, c)| c.covers(key));
        if known {
            return Ok(());
        }
        let mut row = self.base.to_vec();
        row.extend_from_slice(key);
        match self.reader.seek_back(self.base, &row, true)? {
            Some((stored, bytes)) => {
                let bound = stored[self.base.len()..].to_vec();
                let next = self.first_bound_from(&successor(&stored))?;
                let entries = Chunk::parse(&bytes)?
                    .iter()
                    .map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .collect();
                self.state.chunks.insert(
                    bound,
                    Loaded {
                        entries,
                        next,
                        stored: true,
                        dirty: false,
                    },
                );
            }
            None => {
                // No chunk at or below the key: a new first chunk, up to the first stored one.
                let next = self.first_bound_from(self.base)?;
                self.state.chunks.insert(
                    Vec::new(),
                    Loaded {
                        entries: BTreeMap::new(),
                        next,
                        stored: false,
                        dirty: false,
                    },
                );
            }
        }
        Ok(())
    }

    /// The bound of the first stored chunk whose row is at least `from`.
    fn first_bound_from(&self, from: &[u8]) -> Result<Option<Vec<u8>>, StoreFault> {
        Ok(self
            .reader
            .scan(self.base, from, 1)?
            .first()
            .map(|(k, _)| k[self.base.len()..].to_vec()))
    }

    fn chunk(&mut self, key: &[u8]) -> Result<&mut Loaded, StoreFault> {
        self.locate(key)?;
        self.state
            .chunks
            .range_mut::<[u8], _>((Bound::Unbounded, Bound::Included(key)))
            .next_back()
            .map(|(_, c)| c)
            .ok_or_else(|| StoreFault::new("a chunk vanished from the commit's cache"))
    }

    /// The value of `key`.
    pub fn get(&mut self, key: &[u8]) -> Result<Option<&[u8]>, StoreFault> {
        Ok(self.chunk(key)?.entries.get(key).map(Vec::as_slice))
    }

    /// Whether the map holds `key`.
    pub fn contains(&mut self, key: &[u8]) -> Result<bool, StoreFault> {
        Ok(self.get(key)?.is_some())
    }

    /// Sets `key` to `value`; answers the value it replaced.
    pub fn insert(&mut self, key: Vec<u8>, value: Vec<u8>) -> Result<Option<Vec<u8>>, StoreFault> {
        let chunk = self.chunk(&key)?;
        let old = chunk.entries.insert(key, value);
        chunk.dirty = true;
        Ok(old)
    }

    /// Removes `key`; answers its value.
    pub fn remove(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreFault> {
        let chunk = self.chunk(key)?;
        let old = chunk.entries.remove(key);
        if old.is_some() {
            chunk.dirty = true;
        }
        Ok(old)
    }

    /// Every entry, in key order (decodes the whole map into the commit's cache).
    pub fn entries(&mut self) -> Result<Rows, StoreFault> {
        let mut key: Vec<u8> = Vec::new();
        loop {
            self.locate(&key)?;
            let Some((_, chunk)) = self
                .state
                .chunks
                .range::<[u8], _>((Bound::Unbounded, Bound::Included(key.as_slice())))
                .next_back()
            else {
                break;
            };
            match chunk.next.clone() {
                Some(next) => key = next,
                None => break,
            }
        }
        Ok(self
            .state
            .chunks
            .values()
            .flat_map(|c| c.entries.iter().map(|(k, v)| (k.clone(), v.clone())))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::Memory;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u16, u8),
        Remove(u16),
        Commit,
    }

    fn key(n: u16) -> Vec<u8> {
        format!("k{n:05}").into_bytes()
    }

    fn ops() -> impl Strategy<Value = Vec<Op>> {
        prop::collection::vec(
            prop_oneof![
                6 => (0u16..3000, any::<u8>()).prop_map(|(k, v)| Op::Insert(k, v)),
                3 => (0u16..3000).prop_map(Op::Remove),
                1 => Just(Op::Commit),
            ],
            0..2500,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Any sequence of inserts, removals and commits leaves the map equal to a plain ordered
        /// map, readable whole, by key, by page and from a key; every chunk stays within its
        /// size limit, the first chunk always exists while the map has entries, and the rows
        /// are the same whatever history made them — for read-mostly maps and for indexes of
        /// small regions alike.
        #[test]
        fn a_chunked_map_behaves_as_an_ordered_map(ops in ops()) {
            check_map(ChunkedMap::new(b"m:".to_vec()), ops)?;
        }

        #[test]
        fn a_chunked_index_of_small_regions_behaves_as_an_ordered_map(ops in ops()) {
            check_map(ChunkedMap::with_region(b"m:".to_vec(), 256), ops)?;
        }
    }

    fn check_map(map: ChunkedMap, ops: Vec<Op>) -> Result<(), TestCaseError> {
        let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let mut mem = Memory::default();
        // Other rows around the map's prefix must never be mistaken for its chunks.
        mem.put(b"m", b"x".to_vec());
        mem.put(b"m;", b"x".to_vec());
        for op in ops {
            match op {
                Op::Insert(k, v) => {
                    // A value of 0..600 bytes, so chunks split at different counts.
                    let value = vec![v; (v as usize) * 2 + (k as usize % 100)];
                    let old = map.edit(&mut mem).insert(key(k), value.clone()).expect("insert");
                    prop_assert_eq!(old, model.insert(key(k), value));
                }
                Op::Remove(k) => {
                    let old = map.edit(&mut mem).remove(&key(k)).expect("remove");
                    prop_assert_eq!(old, model.remove(&key(k)));
                }
                Op::Commit => {
                    mem.commit().expect("commit");
                    let stored = map.entries(&mem).expect("entries");
                    prop_assert_eq!(stored, model.clone().into_iter().collect::<Vec<_>>());
                }
            }
        }
        // Inside the commit, before it is written, the edit sees everything.
        let seen = map.edit(&mut mem).entries().expect("entries");
        let want: Vec<(Vec<u8>, Vec<u8>)> = model.clone().into_iter().collect();
        prop_assert_eq!(&seen, &want);
        mem.commit().expect("commit");
        prop_assert_eq!(&map.entries(&mem).expect("entries"), &want);
        prop_assert_eq!(map.len(&mem).expect("len"), model.len());
        for (k, v) in model.iter().step_by(37) {
            let got = map.get(&mem, k).expect("get");
            prop_assert_eq!(got.as_deref(), Some(v.as_slice()));
        }
        prop_assert_eq!(map.get(&mem, b"k99999").expect("get"), None);
        let keys: Vec<Vec<u8>> = (0..3000u16).step_by(97).map(key).collect();
        let refs: Vec<&[u8]> = keys.iter().rev().map(|k| k.as_slice()).collect();
        let many = map.get_many(&mem, &refs).expect("get_many");
        for (k, got) in refs.iter().zip(many) {
            prop_assert_eq!(got.as_deref(), model.get(*k).map(Vec::as_slice));
        }
        let mut page = Vec::new();
        map.page(&mem, 10, 50, |k, v| {
            page.push((k.to_vec(), v.to_vec()));
            Ok(())
        })
        .expect("page");
        prop_assert_eq!(&page, &want.iter().skip(10).take(50).cloned().collect::<Vec<_>>());
        // Pages that cross many chunks (read 2, 4, 8, then 16 rows at a time).
        for (offset, limit) in [(0, usize::MAX), (100, 2500), (want.len().saturating_sub(7), 50)] {
            let mut page = Vec::new();
            map.page(&mem, offset, limit, |k, v| {
                page.push((k.to_vec(), v.to_vec()));
                Ok(())
            })
            .expect("page");
            let expected: Vec<_> = want.iter().skip(offset).take(limit).cloned().collect();
            prop_assert_eq!(&page, &expected);
        }
        let from = key(1500);
        let tail: Vec<_> = want.iter().filter(|(k, _)| *k >= from).take(20).cloned().collect();
        prop_assert_eq!(map.range_from(&mem, &from, 20).expect("range"), tail);
        let chunks = mem.scan_prefix(b"m:").expect("scan");
        for (k, v) in &chunks {
            prop_assert!(v.len() <= CHUNK_BYTES, "chunk {:?} is {} bytes", k, v.len());
        }
        if !model.is_empty() {
            prop_assert_eq!(chunks.first().map(|(k, _)| k.as_ref()), Some(&b"m:"[..]));
        } else {
            prop_assert!(chunks.is_empty(), "an empty map keeps {} rows", chunks.len());
        }
        // The rows are the canonical chunking of the entries, whatever history made them:
        // the same entries written at once give the same rows.
        let mut fresh = Memory::default();
        {
            let mut edit = map.edit(&mut fresh);
            for (k, v) in &model {
                edit.insert(k.clone(), v.clone()).expect("insert");
            }
        }
        fresh.commit().expect("commit");
        prop_assert!(
            fresh.scan_prefix(b"m:").expect("scan") == chunks,
            "the rows depend on their history"
        );
        Ok(())
    }

    type Entry = (Vec<u8>, Vec<u8>);

    /// Entries in key order, and the same entries in an arbitrary order, each with whether a
    /// commit follows it.
    fn arrivals() -> impl Strategy<Value = (Vec<Entry>, Vec<(Entry, bool)>)> {
        prop::collection::btree_map(0u16..3000, (any::<u8>(), 0usize..400), 0..700).prop_flat_map(|m| {
            let sorted: Vec<Entry> = m.into_iter().map(|(k, (b, n))| (key(k), vec![b; n])).collect();
            let n = sorted.len();
            (
                Just(sorted.clone()),
                Just(sorted).prop_shuffle(),
                prop::collection::vec(prop::bool::weighted(0.05), n),
            )
                .prop_map(|(sorted, shuffled, commits)| (sorted, shuffled.into_iter().zip(commits).collect()))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// The rows depend on the entries only: the same entries arriving in any order, over
        /// any number of commits, give byte for byte the rows of the entries written in key
        /// order in one commit (what a rebuild relies on), and read back as those entries.
        #[test]
        fn the_rows_do_not_depend_on_the_order_the_entries_arrived_in((sorted, arrivals) in arrivals()) {
            for map in [ChunkedMap::new(b"m:".to_vec()), ChunkedMap::with_region(b"m:".to_vec(), 256)] {
                let mut at_once = Memory::default();
                {
                    let mut edit = map.edit(&mut at_once);
                    for (k, v) in &sorted {
                        edit.insert(k.clone(), v.clone()).expect("insert");
                    }
                }
                at_once.commit().expect("commit");
                let mut one_by_one = Memory::default();
                for ((k, v), commit) in &arrivals {
                    map.edit(&mut one_by_one).insert(k.clone(), v.clone()).expect("insert");
                    if *commit {
                        one_by_one.commit().expect("commit");
                    }
                }
                one_by_one.commit().expect("commit");
                let rows = at_once.scan_prefix(b"m:").expect("scan");
                prop_assert!(one_by_one.scan_prefix(b"m:").expect("scan") == rows, "the rows depend on the order");
                prop_assert_eq!(map.entries(&one_by_one).expect("entries"), sorted.clone());
            }
        }

        /// A chunk decodes to the entries it was encoded from, in order, and finds each of
        /// them and nothing else.
        #[test]
        fn a_chunk_round_trips_its_entries(
            entries in prop::collection::btree_map(
                prop::collection::vec(any::<u8>(), 0..40),
                prop::collection::vec(any::<u8>(), 0..300),
                0..60,
            ),
            absent in prop::collection::vec(any::<u8>(), 0..40),
        ) {
            let bytes = encode_chunk(entries.iter().map(|(k, v)| (k.as_slice(), v.as_slice())));
            let chunk = Chunk::parse(&bytes).expect("a chunk just encoded parses");
            prop_assert_eq!(chunk.len(), entries.len());
            let decoded: Vec<(Vec<u8>, Vec<u8>)> = chunk.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
            prop_assert_eq!(decoded, entries.clone().into_iter().collect::<Vec<_>>());
            for (k, v) in &entries {
                prop_assert_eq!(chunk.find(k), Some(v.as_slice()));
            }
            prop_assert_eq!(chunk.find(&absent), entries.get(&absent).map(Vec::as_slice));
        }
    }

    #[test]
    fn a_corrupt_chunk_is_refused_not_read_past_its_end() {
        let good = encode_chunk([(&b"a"[..], &b"1"[..]), (&b"b"[..], &b"22"[..])]);
        assert_eq!(Chunk::parse(&good).expect("good").iter().count(), 2);
        for bad in [&good[..3], &good[..good.len() - 1], &[9, 0, 0, 0, 1, b'a'][..]] {
            assert!(Chunk::parse(bad).is_err(), "{bad:?}");
        }
        let mut longer = good.clone();
        longer.push(0);
        assert!(Chunk::parse(&longer).is_err());
    }
}
