//! The key encodings every store shares: projection rows, checkpoints and the engine's guard and
//! idempotency rows, byte for byte alike on sled and PostgreSQL (so dumps of two stores compare
//! equal). Big-endian integers, so byte order is numeric order. The rest of each store's layout
//! is its own (`sled/keys.rs`, `postgres/schema.sql`).
//!
//! | prefix | key                              | value                              |
//! |--------|----------------------------------|------------------------------------|
//! | `P`    | concept 0 key…                   | projection row                     |
//! | `C`    | concept                          | projection checkpoint (last seq)   |
//! | `X`    | sync 0 matched ids… step (u32)   | fired action id                    |
//! | `I`    | idempotency key                  | remembered answer                  |

use super::EngineKey;

pub const PROJECTION: u8 = b'P';
pub const CHECKPOINT: u8 = b'C';
pub const FIRE_GUARD: u8 = b'X';
pub const IDEMPOTENCY: u8 = b'I';

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
            let mut k = vec![IDEMPOTENCY];
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
