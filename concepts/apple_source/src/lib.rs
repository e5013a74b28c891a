//! The AppleMusicSource concept: reads a user's Apple Music cloud library through the Apple
//! Music API in the background, in pages with progress — library songs, their ratings (a love is
//! a like), library playlists and their tracks — and reports each read as a system action,
//! `fetched` (always complete) or `failed`, for syncs to hand to whatever keeps libraries. It
//! names no other concept.
//!
//! Its spec is `AppleMusicSource.concept` beside this crate's Cargo.toml. The lifecycle
//! (actions, rows, queries, the background worker, 429s and sealed secrets) is the source kit's
//! ([`source_kit`]); this crate keeps what is Apple's: the credentials and cursor ([`model`]),
//! the developer token ([`token`]), the API client ([`api`]) and the read itself ([`read`]).

pub mod api;
pub mod model;
pub mod read;
pub mod token;

use concept_core::ActionError;
use model::*;
use source_kit::http::Retry;
use source_kit::{Connection, Failure, NoUpdate, Outcome, ReadJob, Reporter, Source, SourceConcept};

pub const NAME: &str = "AppleMusicSource";

/// The concept, as the registry holds it.
pub type AppleMusicSource = SourceConcept<AppleMusic>;

pub const DEFAULT_API_BASE: &str = "https://api.music.apple.com/v1";

/// Where the Apple Music API is and how the concept reads it.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The API base, e.g. `https://api.music.apple.com/v1`.
    pub api_base: String,
    /// How 5xx answers and network errors are retried.
    pub retry: Retry,
    /// Reads are all whole; this only says when `_getFetch`'s `lastFullAt` is old enough for a
    /// read without `mode` to be called `full` (the read is the same).
    pub full_every: chrono::Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            api_base: DEFAULT_API_BASE.into(),
            retry: Retry::default(),
            full_every: chrono::Duration::hours(24),
        }
    }
}

/// Apple Music as a source.
pub struct AppleMusic {
    api: api::AppleMusicApi,
    full_every: chrono::Duration,
}

/// The concept reading Apple Music as `settings` say.
pub fn concept(settings: Settings) -> AppleMusicSource {
    SourceConcept::new(AppleMusic {
        api: api::AppleMusicApi::new(&settings.api_base, settings.retry),
        full_every: settings.full_every,
    })
}

/// A token, key or id from `connect`: not empty (when required), no control characters.
fn check_text(field: &str, value: &str, max: usize) -> Result<(), ActionError> {
    if value.trim().is_empty() {
        return Err(ActionError::invalid(
            "EMPTY_FIELD",
            format!("`{field}` must not be empty"),
        ));
    }
    if value.len() > max || value.chars().any(|c| c.is_control() && c != '\n' && c != '\r') {
        return Err(ActionError::invalid(
            "INVALID_FIELD",
            format!("`{field}` must be at most {max} bytes without control characters"),
        ));
    }
    Ok(())
}

impl Source for AppleMusic {
    const NAME: &'static str = NAME;
    const SERVICE: &'static str = "Apple Music";
    const SECRETS: &'static [&'static str] = &["musicUserToken", "developerToken", "privateKey"];

    type Connect = ConnectInput;
    type Credentials = Credentials;
    type Update = NoUpdate;
    type Cursor = Cursor;
    type ConnectionOutput = ConnectionOutput;

    fn connect(&self, i: ConnectInput) -> Result<(String, Credentials), ActionError> {
        source_kit::check_id("userId", &i.user_id)?;
        check_text("musicUserToken", &i.music_user_token, 4096)?;
        let signing = (&i.private_key, &i.key_id, &i.team_id);
        match (signing, &i.developer_token) {
            ((Some(key), Some(kid), Some(team)), None) => {
                check_text("privateKey", key, 4096)?;
                check_text("keyId", kid, 64)?;
                check_text("teamId", team, 64)?;
                token::check_key(key).map_err(|e| ActionError::invalid("INVALID_PRIVATE_KEY", e.to_string()))?;
            }
            ((None, None, None), Some(dev)) => check_text("developerToken", dev, 4096)?,
            _ => return Err(ActionError::invalid(
                "DEVELOPER_TOKEN_REQUIRED",
                "give `developerToken`, or `privateKey`, `keyId` and `teamId` for the service to sign one (not both)",
            )),
        }
        let trim = |s: Option<String>| s.map(|s| s.trim().to_string());
        Ok((
            i.user_id,
            Credentials {
                music_user_token: i.music_user_token.trim().to_string(),
                developer_token: trim(i.developer_token),
                private_key: i.private_key,
                key_id: trim(i.key_id),
                team_id: trim(i.team_id),
            },
        ))
    }

    fn describe(&self, user: &str, conn: &Connection<Credentials>) -> ConnectionOutput {
        let c = &conn.credentials;
        ConnectionOutput {
            user_id: user.to_string(),
            connected_at: conn.connected_at.clone(),
            signs_developer_tokens: c.private_key.is_some(),
            key_id: c.key_id.clone(),
            team_id: c.team_id.clone(),
            needs_reauth: conn.needs_reauth,
        }
    }

    fn full_at(cursor: &Cursor) -> Option<&str> {
        cursor.full_at.as_deref()
    }

    fn full_every(&self) -> chrono::Duration {
        self.full_every
    }

    async fn read(
        &self,
        job: ReadJob<Credentials, Cursor>,
        report: Reporter<NoUpdate>,
    ) -> Result<Outcome<Cursor>, Failure> {
        read::run(&self.api, job, report).await.map_err(Failure::from)
    }
}
