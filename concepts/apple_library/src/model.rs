//! AppleLibraryFile's own vocabulary: `connect`'s input (whose library, which file), the stored
//! connection, the cursor (the watermark) and `_getConnection`'s answer (camelCase JSON, RFC 3339
//! times). The rest of the wire contract is the source kit's (`source_kit::model`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `connect`: whose library the file is, and where the file is (on the service's machine).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectInput {
    /// The LibraryCache user each read of the file fills (a read replaces its collections).
    pub user_id: String,
    /// The absolute path of `Library.xml` (Music.app's File › Library › Export Library…, or an
    /// `iTunes Library.xml` kept up to date by iTunes) on the machine the service runs on.
    pub path: String,
}

/// What `connect` stores: the file's path (no secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    pub path: String,
}

/// What the next read compares against.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Cursor {
    /// The watermark: the file's modification time (RFC 3339, nanoseconds) captured *before*
    /// the read that made this cursor. A later read whose file shows another modification time
    /// reads it again; so a change written while a read was under way (after the capture) is
    /// caught by the next read, never hidden behind a watermark taken after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark: Option<String>,
    /// When the file was last read (not just looked at) (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_at: Option<String>,
}

/// `_getConnection`: which file is watched for the user.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionOutput {
    pub user_id: String,
    pub path: String,
    pub connected_at: String,
    pub needs_reauth: bool,
}
