//! SpotifySource's vocabulary on the wire: the inputs and outputs of its actions and queries
//! (camelCase JSON, RFC 3339 times). The JSON Schemas the engine validates against and the
//! server publishes are derived from these types. Secrets appear only in inputs, never in an
//! output.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `connect`: the user's Spotify credentials (an OAuth access token, and what refreshes it).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectInput {
    pub user_id: String,
    pub access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// When the access token expires (RFC 3339); it is refreshed shortly before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

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
pub struct FetchedInput {
    pub user_id: String,
    pub fetch_id: String,
    pub complete: bool,
    pub tracks: Vec<Map<String, Value>>,
    pub likes: Vec<Map<String, Value>>,
    pub plays: Vec<Map<String, Value>>,
    pub playlists: Vec<Map<String, Value>>,
    /// Items the source listed without a track (removed from Spotify's catalogue), skipped.
    #[serde(default)]
    pub skipped: u64,
    /// Playlists whose entries could not be read (403): kept with their metadata.
    #[serde(default)]
    pub unreadable: u64,
    /// What the next incremental read compares against.
    pub cursor: Cursor,
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

/// The state of the source after a read, which the next incremental read compares against: the
/// liked-songs total and head, and each playlist's snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Cursor {
    /// `total` of the liked songs as Spotify answered it (null items included).
    pub likes_total: u64,
    /// The newest liked songs, newest first (at most [`crate::read::HEAD`]).
    pub head: Vec<HeadLike>,
    /// Playlist id → snapshot id, for every playlist listed.
    pub playlists: std::collections::BTreeMap<String, String>,
    /// When the last complete read was made (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeadLike {
    pub track_id: String,
    pub added_at: String,
}

/// `failed` (system): a read ended without a result.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FailedInput {
    pub user_id: String,
    pub fetch_id: String,
    pub code: String,
    pub error: String,
    /// Not before this time may Spotify be asked again (RFC 3339), e.g. after a 429.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<String>,
    /// The user must connect again (the refresh token was refused).
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

/// `tokenRefreshed` (system): the access token was refreshed during a read.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenRefreshedInput {
    pub user_id: String,
    pub access_token: String,
    /// A rotated refresh token, when the accounts service issued one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// `confirm`: the consumer took the read (a sync calls it once LibraryCache accepted the read);
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
    /// `idle` (no read yet), `starting`, `likes`, `playlists`, `plays`, `done` or `failed`.
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

/// `_getConnection`: whether and since when the user is connected (never a secret).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionOutput {
    pub user_id: String,
    pub connected_at: String,
    pub expires_at: Option<String>,
    pub can_refresh: bool,
    pub needs_reauth: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsersOutput {
    pub user_ids: Vec<String>,
}
