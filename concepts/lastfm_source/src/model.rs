//! LastfmSource's own vocabulary: `connect`'s input, the stored credentials, the cursor and
//! `_getConnection`'s answer (camelCase JSON, RFC 3339 times). The rest of the wire contract is
//! the source kit's (`source_kit::model`). The API key appears only in `connect`'s input, never
//! in an output (and `[redacted]` in action records).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `connect`: whose scrobbles to read, and the API key to read them with.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectInput {
    /// The LibraryCache user the reads merge into (it may be one another source fills).
    pub user_id: String,
    /// The Last.fm user name.
    pub username: String,
    /// A Last.fm API key (<https://www.last.fm/api/account/create>).
    pub api_key: String,
    /// Also read the user's loved tracks, merged as likes (off when left out).
    #[serde(default)]
    pub loved_tracks: bool,
}

/// What `connect` stores (the `Connected` event and the connection row hold these fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    pub username: String,
    pub api_key: String,
    #[serde(default)]
    pub loved_tracks: bool,
}

/// What the next read compares against.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Cursor {
    /// When the newest play read was scrobbled (RFC 3339, whole seconds): the next read asks
    /// `from` it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_played_at: Option<String>,
    /// The tracks played at exactly `lastPlayedAt`, already read (`from` may give them again).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub last_played: Vec<String>,
    /// When the last read of the whole history was made (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_at: Option<String>,
}

/// `_getConnection`: whose Last.fm is read, and how (never the API key).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionOutput {
    pub user_id: String,
    pub username: String,
    pub connected_at: String,
    pub loved_tracks: bool,
    pub needs_reauth: bool,
}
