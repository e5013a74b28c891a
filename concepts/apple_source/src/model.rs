//! AppleMusicSource's own vocabulary: `connect`'s input (the developer token, or the MusicKit key
//! to sign one with, and the user's Music-User-Token), the stored credentials, the cursor and
//! `_getConnection`'s answer (camelCase JSON, RFC 3339 times). The tokens and the key appear only
//! in `connect`'s input, never in an output (sealed at rest, `[redacted]` in action records).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `connect`: whose library to read, with what. Give `developerToken` (a JWT made elsewhere),
/// or `privateKey` + `keyId` + `teamId` for the service to sign (and renew) one itself.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectInput {
    /// The LibraryCache user each read fills (a read replaces its collections).
    pub user_id: String,
    /// The user's Music-User-Token (MusicKit's authorization of this user).
    pub music_user_token: String,
    /// A developer token (an ES256 JWT) to send as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub developer_token: Option<String>,
    /// The MusicKit private key (the `.p8` file's PEM text) the service signs developer tokens with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    /// The key's id (10 characters, from the developer account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// The developer account's team id (10 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
}

/// What `connect` stores; the tokens and the key are sealed at rest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    pub music_user_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub developer_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
}

/// What the next read compares against: only when the last one was made (every read is whole).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Cursor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_at: Option<String>,
}

/// `_getConnection`: how the user's library is read (never a token or the key).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionOutput {
    pub user_id: String,
    pub connected_at: String,
    /// The service signs its own developer tokens (a key was given), rather than sending one given.
    pub signs_developer_tokens: bool,
    pub key_id: Option<String>,
    pub team_id: Option<String>,
    pub needs_reauth: bool,
}
