//! The event log of the embedded store: a commit's events in a few blocks, not a row each.
//!
//! A block holds consecutive events of one commit, up to about [`BLOCK_TARGET`] bytes (an event
//! larger than that is a block of its own). Its events' sequence numbers follow from the first
//! one, which names the block. A block is encoded once — `[count: u32 LE]` then per event its
//! concept, stream and kind (LEB128 length and bytes), version, action id and time (8 bytes LE
//! each) and data (length and bytes) — compressed with LZ4 when that saves at least an eighth,
//! behind a one-byte codec tag, and stored as pieces of at most [`PIECE`] bytes (`L first-seq
//! piece`), small enough that sled never writes a leaf of them as a blob.
//!
//! The stream index holds one row per stream and block (`S concept 0 stream 0 first-version` →
//! the block), so reading a stream from a version decodes only the blocks that hold it.

use super::keys;
use crate::store::{StoreError, StoredEvent};
use concept_core::chunked::CHUNK_BYTES;
use concept_core::{EventMeta, StoreFault};
use std::collections::BTreeMap;

/// The uncompressed size a block is cut at (at an event boundary).
pub const BLOCK_TARGET: usize = 256 * 1024;

/// The largest piece of a block stored under one key.
pub const PIECE: usize = CHUNK_BYTES;

const RAW: u8 = 0;
const LZ4: u8 = 1;

fn corrupt(block: u64, what: &str) -> StoreError {
    StoreError::Fault(StoreFault::new(format!("log block {block}: {what}")))
}

fn put_len(out: &mut Vec<u8>, mut n: usize) {
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

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_len(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// Reads a block's bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    block: u64,
}

impl<'a> Reader<'a> {
    fn len(&mut self) -> Result<usize, StoreError> {
        let mut value = 0usize;
        for i in 0..5 {
            let b = *self
                .bytes
                .get(self.at)
                .ok_or_else(|| corrupt(self.block, "truncated"))?;
            self.at += 1;
            value |= ((b & 0x7f) as usize) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(corrupt(self.block, "a length is too long"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or_else(|| corrupt(self.block, "truncated"))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn bytes(&mut self) -> Result<&'a [u8], StoreError> {
        let n = self.len()?;
        self.take(n)
    }

    fn text(&mut self) -> Result<String, StoreError> {
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| corrupt(self.block, "a name is not UTF-8"))
    }

    fn u64(&mut self) -> Result<u64, StoreError> {
        let b = self.take(8)?;
        let mut buf = [0u8; 8];
        buf.copy_from_slice(b);
        Ok(u64::from_le_bytes(buf))
    }
}

fn encode_events(events: &[StoredEvent]) -> Vec<u8> {
    let size: usize = events
        .iter()
        .map(|e| e.data.len() + e.concept.len() + e.meta.stream.len() + e.meta.kind.len() + 40)
        .sum();
    let mut raw = Vec::with_capacity(size + 4);
    raw.extend_from_slice(&(events.len() as u32).to_le_bytes());
    for e in events {
        put_bytes(&mut raw, e.concept.as_bytes());
        put_bytes(&mut raw, e.meta.stream.as_bytes());
        put_bytes(&mut raw, e.meta.kind.as_bytes());
        raw.extend_from_slice(&e.meta.version.to_le_bytes());
        raw.extend_from_slice(&e.meta.action.to_le_bytes());
        raw.extend_from_slice(&concept_core::time::micros(&e.meta.at).to_le_bytes());
        put_bytes(&mut raw, &e.data);
    }
    let compressed = lz4_flex::compress_prepend_size(&raw);
    let mut out;
    if compressed.len() + compressed.len() / 8 < raw.len() {
        out = Vec::with_capacity(compressed.len() + 1);
        out.push(LZ4);
        out.extend_from_slice(&compressed);
    } else {
        out = Vec::with_capacity(raw.len() + 1);
        out.push(RAW);
        out.extend_from_slice(&raw);
    }
    out
}

/// Decodes a block whose first event is `first_seq`.
pub fn decode_block(first_seq: u64, stored: &[u8]) -> Result<Vec<StoredEvent>, StoreError> {
    let (&codec, body) = stored.split_first().ok_or_else(|| corrupt(first_seq, "empty"))?;
    let raw;
    let bytes: &[u8] = match codec {
        RAW => body,
        LZ4 => {
            raw = lz4_flex::decompress_size_prepended(body).map_err(|e| corrupt(first_seq, &e.to_string()))?;
            &raw
        }
        _ => return Err(corrupt(first_seq, "unknown codec")),
    };
    let mut r = Reader {
        bytes,
        at: 0,
        block: first_seq,
    };
    let count = u32::from_le_bytes(r.take(4)?.try_into().map_err(|_| corrupt(first_seq, "truncated"))?) as usize;
    let mut events = Vec::with_capacity(count.min(1 << 20));
    for i in 0..count {
        let concept = r.text()?;
        let stream = r.text()?;
        let kind = r.text()?;
        let version = r.u64()?;
        let action = r.u64()?;
        let at = concept_core::time::from_micros(r.u64()? as i64);
        let data = r.bytes()?.to_vec();
        events.push(StoredEvent {
            concept,
            meta: EventMeta {
                seq: first_seq + i as u64,
                stream,
                version,
                kind,
                action,
                at,
            },
            data,
        });
    }
    if r.at != bytes.len() {
        return Err(corrupt(first_seq, "trailing bytes"));
    }
    Ok(events)
}

/// The rows that store one commit's events (consecutive seqs): the blocks' pieces and the
/// stream-index rows, handed to `write` block by block (each block's events are dropped once
/// encoded, so a large commit is not held twice).
pub fn write_rows(events: Vec<StoredEvent>, write: &mut dyn FnMut(Vec<u8>, Vec<u8>)) {
    let mut events = events.into_iter().peekable();
    let mut block: Vec<StoredEvent> = Vec::new();
    let mut size = 0;
    while let Some(event) = events.next() {
        if !block.is_empty() && size + event.data.len() > BLOCK_TARGET {
            write_block(std::mem::take(&mut block), write);
            size = 0;
        }
        size += event.data.len();
        block.push(event);
        if events.peek().is_none() {
            write_block(std::mem::take(&mut block), write);
        }
    }
}

fn write_block(block: Vec<StoredEvent>, write: &mut dyn FnMut(Vec<u8>, Vec<u8>)) {
    let Some(first) = block.first() else { return };
    let first_seq = first.meta.seq;
    // The first version of each stream in the block.
    let mut firsts: BTreeMap<(String, String), u64> = BTreeMap::new();
    for e in &block {
        firsts
            .entry((e.concept.clone(), e.meta.stream.clone()))
            .or_insert(e.meta.version);
    }
    let stored = encode_events(&block);
    drop(block);
    for (i, piece) in stored.chunks(PIECE).enumerate() {
        write(keys::log_piece(first_seq, i as u16), piece.to_vec());
    }
    for ((concept, stream), version) in firsts {
        write(
            keys::stream_index(&concept, &stream, version),
            first_seq.to_be_bytes().to_vec(),
        );
    }
}

/// [`write_rows`] collected (for tests and tools).
pub fn rows_of(events: &[StoredEvent]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut rows = Vec::new();
    write_rows(events.to_vec(), &mut |k, v| rows.push((k, v)));
    rows
}

/// The block whose first event is `first_seq`, read from its pieces.
pub fn read_block(tree: &sled::Tree, first_seq: u64) -> Result<Vec<StoredEvent>, StoreError> {
    let mut stored = Vec::new();
    let prefix = &keys::log_piece(first_seq, 0)[..9];
    for item in tree.scan_prefix(prefix) {
        let (_, piece) = item?;
        stored.extend_from_slice(&piece);
    }
    if stored.is_empty() {
        return Err(corrupt(first_seq, "missing"));
    }
    decode_block(first_seq, &stored)
}

/// The first seq of the block holding `seq` (or of the first block after it).
fn block_at_or_after(tree: &sled::Tree, seq: u64) -> Result<Option<u64>, StoreError> {
    let upper = keys::log_piece(seq, u16::MAX);
    if let Some(item) = tree.range(vec![keys::LOG]..=upper).next_back() {
        let (k, _) = item?;
        if let Some(first) = keys::log_block_of(&k) {
            return Ok(Some(first));
        }
    }
    match tree.range(keys::log_piece(seq, 0)..).next() {
        Some(item) => Ok(keys::log_block_of(&item?.0)),
        None => Ok(None),
    }
}

/// The first seq of the block after the one starting at `first_seq`.
fn next_block(tree: &sled::Tree, first_seq: u64) -> Result<Option<u64>, StoreError> {
    use std::ops::Bound::{Excluded, Unbounded};
    match tree
        .range::<Vec<u8>, _>((Excluded(keys::log_piece(first_seq, u16::MAX)), Unbounded))
        .next()
    {
        Some(item) => Ok(keys::log_block_of(&item?.0)),
        None => Ok(None),
    }
}

/// Events with a seq above `after`, in order, at most `limit`.
pub fn read_log(tree: &sled::Tree, after: u64, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
    let mut out = Vec::new();
    let mut block = block_at_or_after(tree, after.saturating_add(1))?;
    while let Some(first) = block {
        if out.len() >= limit {
            break;
        }
        for e in read_block(tree, first)? {
            if e.meta.seq > after && out.len() < limit {
                out.push(e);
            }
        }
        block = next_block(tree, first)?;
    }
    Ok(out)
}

/// Events of one stream with a version above `after_version`, in order, at most `limit`,
/// decoding only the blocks the stream index names.
pub fn read_stream(
    tree: &sled::Tree,
    concept: &str,
    stream: &str,
    after_version: u64,
    limit: usize,
) -> Result<Vec<StoredEvent>, StoreError> {
    let prefix = keys::stream_prefix(concept, stream);
    let want = keys::stream_index(concept, stream, after_version.saturating_add(1));
    // The index row of the block holding the first wanted version, then the rows after it.
    let start = match tree.range(prefix.clone()..=want.clone()).next_back() {
        Some(item) => item?.0.to_vec(),
        None => prefix.clone(),
    };
    let mut out = Vec::new();
    for item in tree.range(start..) {
        let (k, v) = item?;
        if !k.starts_with(&prefix) || out.len() >= limit {
            break;
        }
        for e in read_block(tree, keys::u64_value(&v))? {
            if e.concept == concept && e.meta.stream == stream && e.meta.version > after_version && out.len() < limit {
                out.push(e);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64, stream: &str, version: u64, data: Vec<u8>) -> StoredEvent {
        StoredEvent {
            concept: "C".into(),
            meta: EventMeta {
                seq,
                stream: stream.into(),
                version,
                kind: "K".into(),
                action: 7,
                at: concept_core::time::from_micros(1_700_000_000_123_456),
            },
            data,
        }
    }

    #[test]
    fn blocks_round_trip_in_pieces_and_the_index_finds_each_stream() {
        let tree = sled::Config::new().temporary(true).open().expect("db");
        // A commit of two streams with one event far larger than a block, and small ones.
        let mut events = Vec::new();
        for i in 0..300u64 {
            let seq = 10 + i;
            let size = if i == 150 { 3 * BLOCK_TARGET } else { 1_500 };
            let data: Vec<u8> = (0..size).map(|b| (b % 251) as u8 ^ i as u8).collect();
            let stream = if i % 3 == 0 { "a" } else { "b" };
            let version = events.iter().filter(|e: &&StoredEvent| e.meta.stream == stream).count() as u64 + 1;
            events.push(event(seq, stream, version, data));
        }
        let rows = rows_of(&events);
        assert!(rows.iter().all(|(_, v)| v.len() <= PIECE));
        for (k, v) in rows {
            tree.insert(k, v).expect("insert");
        }
        assert_eq!(read_log(&tree, 0, usize::MAX).expect("log"), events);
        assert_eq!(read_log(&tree, 160, 5).expect("log"), events[151..156].to_vec());
        let b: Vec<StoredEvent> = events.iter().filter(|e| e.meta.stream == "b").cloned().collect();
        assert_eq!(read_stream(&tree, "C", "b", 0, usize::MAX).expect("stream"), b);
        assert_eq!(
            read_stream(&tree, "C", "b", 120, 3).expect("stream"),
            b[120..123].to_vec()
        );
        assert!(read_stream(&tree, "C", "c", 0, 10).expect("stream").is_empty());
    }
}
