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

/// `progressed` (system): how far a running read is.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProgressInput {
    pub user_id: String,
    pub fetch_id: String,
    pub phase: String,
    pub current: u64,
    pub total: u64,
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
    /// `idle` (no read yet), `starting`, the source's own phases (e.g. `likes`, `playlists`,
    /// `plays`), `done` or `failed`.
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
