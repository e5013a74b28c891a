//! A source's projection rows (JSON values under one-letter key spaces, per user) and the
//! functions that read them. Only [`crate::apply`] writes them.
//!
//! | key | row |
//! |---|---|
//! | `c\0user` | [`Connection`]: the credentials (secrets; never returned by a query) |
//! | `f\0user` | [`FetchRow`]: the latest read and its progress |
//! | `r\0user` | present while the user's read runs (what the background work scans) |
//! | `k\0user` | [`CursorRow`]: the cursor of the last read the consumer confirmed |
//! | `p\0user` | [`CursorRow`]: the cursor of the last finished read, until confirmed |
//! | `x\0user` | [`CheckpointRow`]: the pages of a read a rate limit stopped, until it resumes |

use crate::model::{Checkpoint, Counts, Mode};
use concept_core::{ProjectionRead, StoreFault};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

pub const CONNECTION: u8 = b'c';
pub const FETCH: u8 = b'f';
pub const RUNNING: u8 = b'r';
pub const CONFIRMED: u8 = b'k';
pub const PENDING: u8 = b'p';
pub const CHECKPOINT: u8 = b'x';

pub fn key(space: u8, user: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(user.len() + 2);
    k.push(space);
    k.push(0);
    k.extend_from_slice(user.as_bytes());
    k
}

/// The user a key of `space` belongs to.
pub fn user_of(key: &[u8]) -> Option<String> {
    key.get(2..).map(|u| String::from_utf8_lossy(u).into_owned())
}

/// A user's connection: the source's credentials and what the kit keeps beside them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Connection<C> {
    #[serde(flatten)]
    pub credentials: C,
    pub connected_at: String,
    /// The service refused the credentials: `fetch` is refused until the user connects again.
    pub needs_reauth: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FetchRow {
    pub fetch_id: String,
    pub mode: Mode,
    pub flow: String,
    pub phase: String,
    pub current: u64,
    pub total: u64,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub complete: Option<bool>,
    pub counts: Option<Counts>,
    pub code: Option<String>,
    pub error: Option<String>,
    pub retry_at: Option<String>,
    /// The end of the rate-limit wait the read is in (phase `waiting`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

/// A read a rate limit stopped: what it had read, and when it may go on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointRow {
    pub fetch_id: String,
    pub retry_at: String,
    pub checkpoint: Checkpoint,
}

impl FetchRow {
    pub fn running(&self) -> bool {
        !matches!(self.phase.as_str(), "done" | "failed")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CursorRow<K> {
    pub fetch_id: String,
    pub cursor: K,
}

pub fn encode<T: Serialize>(row: &T) -> Vec<u8> {
    serde_json::to_vec(row).unwrap_or_default()
}

pub fn read<T: DeserializeOwned, R: ProjectionRead + ?Sized>(
    view: &R,
    space: u8,
    user: &str,
) -> Result<Option<T>, StoreFault> {
    match view.get(&key(space, user))? {
        Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            StoreFault::new(format!(
                "a source row ({}) of {user:?} does not decode: {e}",
                char::from(space)
            ))
        }),
        None => Ok(None),
    }
}

/// The users with a row in `space`, in order.
pub fn users(view: &dyn ProjectionRead, space: u8) -> Result<Vec<String>, StoreFault> {
    Ok(view
        .scan_prefix(&[space, 0])?
        .into_iter()
        .filter_map(|(k, _)| user_of(&k))
        .collect())
}
