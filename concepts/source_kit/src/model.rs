//! A source's vocabulary on the wire, shared by every source: the inputs and outputs of the
//! lifecycle's actions and queries (camelCase JSON, RFC 3339 times). `connect`'s input,
//! `_getConnection`'s answer and the cursor are the source's own types.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserInput {
    pub user_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserOutput {
    pub user_id: String,
}

/// No input.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoInput {}

/// `fetch`: start a read. Without `mode` the concept chooses: `full` when it has no read to go
/// on or the last full read is older than the configured period, else `incremental`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FetchInput {
    pub user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Mode {
    Full,
    Incremental,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Full => "full",
            Mode::Incremental => "incremental",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FetchOutput {
    pub user_id: String,
    pub fetch_id: String,
    pub mode: Mode,
    /// True when this is a read already running (a second `fetch` joins it).
    pub running: bool,
}

/// `progressed` (system): how far a running read is. While the read waits out a rate limit,
/// `phase` is `waiting` and `until` the time it waits for.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProgressInput {
    pub user_id: String,
    pub fetch_id: String,
    pub phase: String,
    pub current: u64,
    pub total: u64,
    /// RFC 3339: the end of the wait (phase `waiting` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

/// `fetched` (system): a read ended. `complete` reads replace the cached collections; others
/// only add and update. Tracks, likes, plays and playlists are in LibraryCache's shapes.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(rename = "FetchedInput")]
pub struct FetchedInput<K> {
    pub user_id: String,
    pub fetch_id: String,
    pub complete: bool,
    /// What the read did (`full` or `incremental`), which may differ from what was asked: an
    /// increment that found a removal reads in full. Absent in reads recorded before it was
    /// given: `full` when complete, else the mode asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    pub tracks: Vec<Map<String, Value>>,
    pub likes: Vec<Map<String, Value>>,
    pub plays: Vec<Map<String, Value>>,
    pub playlists: Vec<Map<String, Value>>,
    /// Items the source listed without a track it could use, skipped.
    #[serde(default)]
    pub skipped: u64,
    /// Playlists whose entries could not be read: kept with their metadata.
    #[serde(default)]
    pub unreadable: u64,
    /// What the next incremental read compares against.
    pub cursor: K,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FetchedOutput {
    pub user_id: String,
    pub fetch_id: String,
    pub complete: bool,
    pub counts: Counts,
}

/// How much a read brought.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub tracks: u64,
    pub likes: u64,
    pub plays: u64,
    pub playlists: u64,
    pub skipped: u64,
    pub unreadable: u64,
}

/// `failed` (system): a read ended without a result.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FailedInput {
    pub user_id: String,
    pub fetch_id: String,
    pub code: String,
    pub error: String,
    /// Not before this time may the service be asked again (RFC 3339), e.g. after a 429.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<String>,
    /// The user must connect again (the service refused the credentials).
    #[serde(default)]
    pub needs_reauth: bool,
    /// What the read had read when it stopped (with `retryAt` only): the read resumes from it
    /// at `retryAt` without asking the service for those pages again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<Checkpoint>,
}

/// The pages a read had read when a rate limit stopped it, in the order it read them: a
/// resumed read gets these answers back instead of asking the service (see
/// `source_kit::session`). No credential is in it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Checkpoint {
    pub pages: Vec<CheckpointPage>,
}

/// One answer of a checkpoint: the call (`GET /path?query`, credentials left out) and the
/// service's answer (as the source reads it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckpointPage {
    pub call: String,
    pub answer: Value,
}

/// `resume` (system): the read a rate limit stopped goes on from its checkpoint (the
/// background work raises it at the read's `retryAt`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResumeInput {
    pub user_id: String,
    pub fetch_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailedOutput {
    pub user_id: String,
    pub fetch_id: String,
    pub code: String,
}

/// `confirm`: the consumer took the read (a sync calls it once the cache accepted the read);
/// its cursor becomes the base of the next incremental read.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfirmInput {
    pub user_id: String,
    pub fetch_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfirmOutput {
    pub user_id: String,
    pub fetch_id: String,
    /// False when the read was not the latest unconfirmed one (nothing changed).
    pub confirmed: bool,
}

/// `_getFetch`: the user's latest read, as the store has it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FetchStatus {
    pub user_id: String,
    /// Null before the first read.
    pub fetch_id: Option<String>,
    /// The flow the read reports in (`GET /api/flows/{flow}` tells its story).
    pub flow: Option<String>,
    pub mode: Option<Mode>,
    /// `idle` (no read yet), `starting`, `resuming` (from a checkpoint), the source's own
    /// phases (e.g. `likes`, `playlists`, `plays`), `waiting` (a rate limit waited out inside
    /// the read, until `until`), `done` or `failed`.
    pub phase: String,
    pub current: u64,
    pub total: u64,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub complete: Option<bool>,
    pub counts: Option<Counts>,
    pub code: Option<String>,
    pub error: Option<String>,
    pub retry_at: Option<String>,
    /// While `phase` is `waiting`: the end of the rate-limit wait the read waits out.
    pub until: Option<String>,
    /// A read stopped by a rate limit: how many pages it had read, kept in the store until it
    /// resumes at `retryAt` (by itself, or on `fetch`).
    pub checkpoint_pages: Option<u64>,
    pub needs_reauth: bool,
    /// Whether the user is connected now.
    pub connected: bool,
    /// When the last complete read the consumer took was made.
    pub last_full_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsersOutput {
    pub user_ids: Vec<String>,
}

/// `rekey` (system): the user's credentials sealed again with the current key.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RekeyOutput {
    pub user_id: String,
    /// False when every secret was already sealed with the current key (nothing changed).
    pub resealed: bool,
}
