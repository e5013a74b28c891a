//! A source's events: one stream per user. Secrets live only in `Connected` (the source's
//! credentials), `ConnectionUpdated` (e.g. a renewed token) and `Resealed`, sealed
//! ([`crate::secrets`]); no query returns them and the engine's records redact them.

use crate::model::{Checkpoint, Counts, Mode};
use serde::{Deserialize, Serialize};

/// `C` the source's credentials, `U` its credential updates, `K` its cursor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum SourceEvent<C, U, K> {
    /// The fields of the credentials, beside the `type` tag.
    Connected(C),
    Disconnected {},
    /// A read changed the stored credentials. `tokenRefreshed` is the name SpotifySource's
    /// logs from before the kit hold.
    #[serde(alias = "tokenRefreshed")]
    ConnectionUpdated(U),
    #[serde(rename_all = "camelCase")]
    FetchStarted {
        fetch_id: String,
        mode: Mode,
        /// The flow that asked for the read: its system actions are raised there.
        flow: String,
    },
    #[serde(rename_all = "camelCase")]
    FetchProgressed {
        fetch_id: String,
        phase: String,
        current: u64,
        total: u64,
        /// The end of a rate-limit wait (phase `waiting`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    FetchFinished {
        fetch_id: String,
        complete: bool,
        /// What the read did; absent in events from before it was recorded.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mode: Option<Mode>,
        counts: Counts,
        cursor: K,
    },
    #[serde(rename_all = "camelCase")]
    FetchFailed {
        fetch_id: String,
        code: String,
        error: String,
        retry_at: Option<String>,
        needs_reauth: bool,
        /// The pages read before a rate limit stopped the read (with `retryAt` only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        checkpoint: Option<Checkpoint>,
    },
    /// The read a rate limit stopped runs again from its checkpoint (at `retryAt`).
    #[serde(rename_all = "camelCase")]
    FetchResumed {
        fetch_id: String,
    },
    #[serde(rename_all = "camelCase")]
    CursorConfirmed {
        fetch_id: String,
    },
    /// The stored credentials, their secrets sealed again with the current key (`rekey`):
    /// they replace the connection's credentials, nothing else changes.
    Resealed(C),
}

impl<C, U, K> SourceEvent<C, U, K> {
    pub fn kind(&self) -> &'static str {
        match self {
            SourceEvent::Connected(_) => "Connected",
            SourceEvent::Disconnected {} => "Disconnected",
            SourceEvent::ConnectionUpdated(_) => "ConnectionUpdated",
            SourceEvent::FetchStarted { .. } => "FetchStarted",
            SourceEvent::FetchProgressed { .. } => "FetchProgressed",
            SourceEvent::FetchFinished { .. } => "FetchFinished",
            SourceEvent::FetchFailed { .. } => "FetchFailed",
            SourceEvent::FetchResumed { .. } => "FetchResumed",
            SourceEvent::CursorConfirmed { .. } => "CursorConfirmed",
            SourceEvent::Resealed(_) => "Resealed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    type Event = SourceEvent<Value, Value, Value>;

    #[test]
    fn credentials_sit_beside_the_tag_and_old_token_refreshes_still_decode() {
        let connected: Event = SourceEvent::Connected(json!({"accessToken": "a"}));
        assert_eq!(
            serde_json::to_value(&connected).unwrap(),
            json!({"type": "connected", "accessToken": "a"})
        );
        let old: Event = serde_json::from_value(json!({"type": "tokenRefreshed", "accessToken": "b"})).unwrap();
        assert_eq!(old, SourceEvent::ConnectionUpdated(json!({"accessToken": "b"})));
    }
}
