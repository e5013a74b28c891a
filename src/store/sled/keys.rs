//! The key layout of the embedded store (layout 2): one sled tree, one leading byte per key
//! space, big-endian integers so byte order is numeric order.
//!
//! | prefix | key                                   | value                                   |
//! |--------|---------------------------------------|-----------------------------------------|
//! | `V`    | (none)                                | the layout version (u32), 2             |
//! | `L`    | first seq, piece (u16)                | a piece of a log block (see `log.rs`)   |
//! | `S`    | concept 0 stream 0 first version      | first seq of the block holding it       |
//! | `H`    | concept 0 stream                      | stream version                          |
//! | `G`    | (none)                                | last global seq, last action id         |
//! | `Q`    | (none)                                | the projection generation in use (0/1)  |
//! | `P`    | generation, concept 0 key…            | projection row                          |
//! | `C`    | concept                               | projection checkpoint (last seq)        |
//! | `R`    | action id                             | action record (JSON)                    |
//! | `F`    | flow (16 bytes) action id             | (empty)                                 |
//! | `X`    | sync 0 matched ids… step (u32)        | fired action id                         |
//! | `I`    | idempotency key                       | remembered answer                       |
//! | `B`    | (none)                                | present while a rebuild writes the other generation |
//!
//! Projection rows live under one of two generations: queries read the one `Q` names, a
//! rebuild writes the other and then switches `Q`, so a rebuild never shows half-built rows.
//! Outside this module projection keys are canonical (`P concept 0 key…`, see
//! `store::keys`); [`physical`] and [`canonical`] convert.

use super::super::keys::PROJECTION;
use uuid::Uuid;

pub const VERSION: &[u8] = b"V";
/// The layout this code writes.
pub const LAYOUT: u32 = 2;
pub const LOG: u8 = b'L';
pub const STREAM_INDEX: u8 = b'S';
pub const HEAD: u8 = b'H';
pub const GLOBAL: &[u8] = b"G";
pub const GENERATION: &[u8] = b"Q";
pub const RECORD: u8 = b'R';
pub const FLOW: u8 = b'F';
pub const REBUILDING: &[u8] = b"B";

/// The key of one piece of the log block whose first event is `seq`.
pub fn log_piece(seq: u64, piece: u16) -> Vec<u8> {
    let mut k = Vec::with_capacity(11);
    k.push(LOG);
    k.extend_from_slice(&seq.to_be_bytes());
    k.extend_from_slice(&piece.to_be_bytes());
    k
}

/// The first seq of the block a log piece key belongs to.
pub fn log_block_of(key: &[u8]) -> Option<u64> {
    (key.len() == 11 && key[0] == LOG).then(|| u64_value(&key[1..9]))
}

pub fn stream_prefix(concept: &str, stream: &str) -> Vec<u8> {
    let mut k = vec![STREAM_INDEX];
    k.extend_from_slice(concept.as_bytes());
    k.push(0);
    k.extend_from_slice(stream.as_bytes());
    k.push(0);
    k
}

pub fn stream_index(concept: &str, stream: &str, version: u64) -> Vec<u8> {
    let mut k = stream_prefix(concept, stream);
    k.extend_from_slice(&version.to_be_bytes());
    k
}

pub fn head(concept: &str, stream: &str) -> Vec<u8> {
    let mut k = vec![HEAD];
    k.extend_from_slice(concept.as_bytes());
    k.push(0);
    k.extend_from_slice(stream.as_bytes());
    k
}

pub fn record(id: u64) -> Vec<u8> {
    let mut k = vec![RECORD];
    k.extend_from_slice(&id.to_be_bytes());
    k
}

pub fn flow_prefix(flow: Uuid) -> Vec<u8> {
    let mut k = vec![FLOW];
    k.extend_from_slice(flow.as_bytes());
    k
}

pub fn flow(flow: Uuid, id: u64) -> Vec<u8> {
    let mut k = flow_prefix(flow);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// The prefix of every projection row of one generation.
pub fn generation_prefix(generation: u8) -> [u8; 2] {
    [PROJECTION, generation]
}

/// A canonical projection key (`P concept 0 key…`) as stored under `generation`.
pub fn physical(generation: u8, canonical: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(canonical.len() + 1);
    k.push(PROJECTION);
    k.push(generation);
    k.extend_from_slice(canonical.get(1..).unwrap_or_default());
    k
}

/// A stored projection key as the canonical one.
pub fn canonical(physical: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(physical.len().saturating_sub(1));
    k.push(PROJECTION);
    k.extend_from_slice(physical.get(2..).unwrap_or_default());
    k
}

pub use super::super::keys::u64_value;
