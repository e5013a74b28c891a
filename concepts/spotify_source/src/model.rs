//! SpotifySource's own vocabulary: `connect`'s input, the stored credentials, the token refresh
//! a read records, the cursor and `_getConnection`'s answer (camelCase JSON, RFC 3339 times).
//! The rest of the wire contract is the source kit's (`source_kit::model`). Secrets appear only
//! in inputs, never in an output.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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

/// What `connect` stores (the `Connected` event and the connection row hold these fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    pub access_token: String,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// `tokenRefreshed` (system, with `userId`): the access token was refreshed during a read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenRefresh {
    pub access_token: String,
    /// A rotated refresh token, when the accounts service issued one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
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
