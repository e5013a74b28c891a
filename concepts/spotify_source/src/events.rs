//! SpotifySource's events: one stream per user. Secrets live only in `Connected` and
//! `TokenRefreshed`, which no query returns and the engine's records redact.

use crate::model::{Counts, Cursor, Mode};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum SourceEvent {
    #[serde(rename_all = "camelCase")]
    Connected {
        access_token: String,
        refresh_token: Option<String>,
        client_id: Option<String>,
        client_secret: Option<String>,
        expires_at: Option<String>,
    },
    Disconnected {},
    #[serde(rename_all = "camelCase")]
    TokenRefreshed {
        access_token: String,
        refresh_token: Option<String>,
        expires_at: Option<String>,
    },
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
    },
    #[serde(rename_all = "camelCase")]
    FetchFinished {
        fetch_id: String,
        complete: bool,
        counts: Counts,
        cursor: Cursor,
    },
    #[serde(rename_all = "camelCase")]
    FetchFailed {
        fetch_id: String,
        code: String,
        error: String,
        retry_at: Option<String>,
        needs_reauth: bool,
    },
    #[serde(rename_all = "camelCase")]
    CursorConfirmed {
        fetch_id: String,
    },
}

impl SourceEvent {
    pub fn kind(&self) -> &'static str {
        match self {
            SourceEvent::Connected { .. } => "Connected",
            SourceEvent::Disconnected {} => "Disconnected",
            SourceEvent::TokenRefreshed { .. } => "TokenRefreshed",
            SourceEvent::FetchStarted { .. } => "FetchStarted",
            SourceEvent::FetchProgressed { .. } => "FetchProgressed",
            SourceEvent::FetchFinished { .. } => "FetchFinished",
            SourceEvent::FetchFailed { .. } => "FetchFailed",
            SourceEvent::CursorConfirmed { .. } => "CursorConfirmed",
        }
    }
}
