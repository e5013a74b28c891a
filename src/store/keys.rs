//! The key layout of the embedded store: one sled tree, one leading byte per key space,
//! big-endian integers so byte order is numeric order.
//!
//! | prefix | key                              | value                              |
//! |--------|----------------------------------|------------------------------------|
//! | `L`    | seq                              | event envelope                     |
//! | `S`    | concept 0 stream 0 version       | seq (index of a stream's events)   |
//! | `H`    | concept 0 stream                 | stream version                     |
//! | `G`    | (none)                           | last global seq, last action id    |
//! | `P`    | concept 0 key…                   | projection row                     |
//! | `C`    | concept                          | projection checkpoint (last seq)   |
//! | `R`    | action id                        | action record (JSON)               |
//! | `F`    | flow (16 bytes) action id        | (empty)                            |
//! | `X`    | sync 0 matched ids… step (u32)   | fired action id                    |
//! | `I`    | idempotency key                  | remembered answer                  |
//! | `B`    | (none)                           | present while a rebuild runs       |

use super::EngineKey;
use uuid::Uuid;

pub const LOG: u8 = b'L';
pub const STREAM_INDEX: u8 = b'S';
pub const HEAD: u8 = b'H';
pub const GLOBAL: &[u8] = b"G";
pub const PROJECTION: u8 = b'P';
pub const CHECKPOINT: u8 = b'C';
pub const RECORD: u8 = b'R';
pub const FLOW: u8 = b'F';
pub const FIRE_GUARD: u8 = b'X';
pub const REBUILDING: &[u8] = b"B";

pub fn log(seq: u64) -> Vec<u8> {
    let mut k = vec![LOG];
    k.extend_from_slice(&seq.to_be_bytes());
    k
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

pub fn projection_prefix(concept: &str) -> Vec<u8> {
    let mut k = vec![PROJECTION];
    k.extend_from_slice(concept.as_bytes());
    k.push(0);
    k
}

pub fn checkpoint(concept: &str) -> Vec<u8> {
    let mut k = vec![CHECKPOINT];
    k.extend_from_slice(concept.as_bytes());
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

pub fn engine(key: &EngineKey) -> Vec<u8> {
    match key {
        EngineKey::FireGuard { sync, matched, step } => {
            let mut k = vec![FIRE_GUARD];
            k.extend_from_slice(sync.as_bytes());
            k.push(0);
            for id in matched {
                k.extend_from_slice(&id.to_be_bytes());
            }
            k.extend_from_slice(&step.to_be_bytes());
            k
        }
        EngineKey::Idempotency(key) => {
            let mut k = vec![b'I'];
            k.extend_from_slice(key.as_bytes());
            k
        }
    }
}

/// The largest matched action id of a fire guard's key (`None` when it matched none or the key
/// is not a fire guard's).
pub fn fire_guard_largest_matched(key: &[u8]) -> Option<u64> {
    let rest = key.strip_prefix(&[FIRE_GUARD])?;
    let ids = &rest[rest.iter().position(|&b| b == 0)? + 1..];
    if ids.len() < 12 || (ids.len() - 4) % 8 != 0 {
        return None;
    }
    ids[..ids.len() - 4].chunks_exact(8).map(u64_value).max()
}

pub fn u64_value(bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    let n = bytes.len().min(8);
    buf[..n].copy_from_slice(&bytes[..n]);
    u64::from_be_bytes(buf)
}
