//! PlexSource's own vocabulary: `connect`'s input, the stored credentials, the server identity a
//! read records, the cursor and `_getConnection`'s answer (camelCase JSON, RFC 3339 times). The
//! rest of the wire contract is the source kit's (`source_kit::model`). The token appears only
//! in `connect`'s input, never in an output.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `connect`: where the user's Plex Media Server is and the token to read it with.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectInput {
    pub user_id: String,
    /// The server's address, e.g. `http://192.168.1.10:32400` (http or https).
    pub base_url: String,
    /// An `X-Plex-Token` the server accepts.
    pub token: String,
    /// The music sections (libraries) to read, by key (e.g. `["3"]`); all music sections when
    /// left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_ids: Option<Vec<String>>,
    /// Only this Plex account's plays are read from the server's history (the server owner's
    /// token sees every account's); all the token sees when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<u64>,
}

/// What `connect` stores (the `Connected` event and the connection row hold these fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    /// Without a trailing `/`.
    pub base_url: String,
    pub token: String,
    #[serde(default)]
    pub section_ids: Option<Vec<String>>,
    #[serde(default)]
    pub account_id: Option<u64>,
    /// The server the first read under this connection found (`serverIdentified`); a read that
    /// finds another one fails with `SERVER_CHANGED`. Connecting again clears it.
    #[serde(default)]
    pub machine_identifier: Option<String>,
}

/// `serverIdentified` (system, with `userId`): the first read under a connection met this
/// server; later reads must meet the same one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServerIdentified {
    pub machine_identifier: String,
}

/// What the next read compares against.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Cursor {
    /// The server the read was made from.
    pub machine_identifier: String,
    /// The newest play the read saw (RFC 3339): an incremental read pages the history only
    /// back to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plays_until: Option<String>,
    /// When the play history was last read in full (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_at: Option<String>,
}

/// `_getConnection`: where the user's server is and which one it was (never the token).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionOutput {
    pub user_id: String,
    pub connected_at: String,
    pub base_url: String,
    pub section_ids: Option<Vec<String>>,
    pub account_id: Option<u64>,
    /// Null until the first read under this connection identified the server.
    pub machine_identifier: Option<String>,
    pub needs_reauth: bool,
}
