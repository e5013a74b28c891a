//! The LastfmSource concept: reads a user's play history (scrobbles) and, when asked, their
//! loved tracks from Last.fm in the background, in pages with progress, and reports each read
//! as a system action, `fetched` or `failed`, for syncs to hand to whatever keeps libraries.
//! It names no other concept.
//!
//! Its spec is `LastfmSource.concept` beside this crate's Cargo.toml. The lifecycle (actions,
//! rows, queries, the background worker) is the source kit's ([`source_kit`]); this crate keeps
//! what is Last.fm's: its credentials and cursor ([`model`]), the API client ([`api`]), Last.fm
//! tracks in the cache's shapes ([`track`]) and the read itself ([`read`]).

pub mod api;
pub mod model;
pub mod read;
pub mod track;

use concept_core::ActionError;
use model::*;
use source_kit::http::Retry;
use source_kit::{Connection, Failure, NoUpdate, Outcome, ReadJob, Reporter, Source, SourceConcept};

pub const NAME: &str = "LastfmSource";

/// The concept, as the registry holds it.
pub type LastfmSource = SourceConcept<Lastfm>;

pub const DEFAULT_API_BASE: &str = "https://ws.audioscrobbler.com/2.0";

/// Where Last.fm is and how the concept reads it.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The API base, e.g. `https://ws.audioscrobbler.com/2.0` (calls go to `{base}/?method=…`).
    pub api_base: String,
    /// How 5xx answers and network errors are retried.
    pub retry: Retry,
    /// The longest rate-limit wait a read waits out itself (error 29 asks for
    /// [`source_kit::http::DEFAULT_RETRY_AFTER`]); a longer one ends it with `retryAt` and a
    /// checkpoint.
    pub max_wait: std::time::Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            api_base: DEFAULT_API_BASE.into(),
            retry: Retry::default(),
            max_wait: source_kit::DEFAULT_MAX_WAIT,
        }
    }
}

/// Last.fm as a source: its API client.
pub struct Lastfm {
    api: api::LastfmApi,
    max_wait: std::time::Duration,
}

impl Lastfm {
    pub fn new(settings: Settings) -> Self {
        Lastfm {
            api: api::LastfmApi::new(&settings.api_base, settings.retry),
            max_wait: settings.max_wait,
        }
    }
}

/// The concept reading Last.fm as `settings` say.
pub fn concept(settings: Settings) -> LastfmSource {
    SourceConcept::new(Lastfm::new(settings))
}

/// A read is full (the whole history) only without a cursor or when `fetch` asks for one: the
/// history only grows, so reading from the last play never misses anything a full read would
/// find (but scrobbles submitted late with an older time).
const FULL_EVERY: chrono::Duration = chrono::Duration::days(100 * 365);

/// A field that goes into the API's query string: not empty, no control characters.
fn check_text(field: &str, value: &str) -> Result<(), ActionError> {
    if value.trim().is_empty() {
        return Err(ActionError::invalid(
            "EMPTY_FIELD",
            format!("`{field}` must not be empty"),
        ));
    }
    if value.chars().any(char::is_control) || value.len() > 256 {
        return Err(ActionError::invalid(
            "INVALID_FIELD",
            format!("`{field}` must be at most 256 bytes without control characters"),
        ));
    }
    Ok(())
}

impl Source for Lastfm {
    const NAME: &'static str = NAME;
    const SERVICE: &'static str = "Last.fm";
    const SECRETS: &'static [&'static str] = &["apiKey"];

    type Connect = ConnectInput;
    type Credentials = Credentials;
    type Update = NoUpdate;
    type Cursor = Cursor;
    type ConnectionOutput = ConnectionOutput;

    fn connect(&self, input: ConnectInput) -> Result<(String, Credentials), ActionError> {
        source_kit::check_id("userId", &input.user_id)?;
        check_text("username", &input.username)?;
        check_text("apiKey", &input.api_key)?;
        let credentials = Credentials {
            username: input.username.trim().to_string(),
            api_key: input.api_key.trim().to_string(),
            loved_tracks: input.loved_tracks,
        };
        Ok((input.user_id, credentials))
    }

    fn describe(&self, user: &str, conn: &Connection<Credentials>) -> ConnectionOutput {
        ConnectionOutput {
            user_id: user.to_string(),
            username: conn.credentials.username.clone(),
            connected_at: conn.connected_at.clone(),
            loved_tracks: conn.credentials.loved_tracks,
            needs_reauth: conn.needs_reauth,
        }
    }

    fn full_at(cursor: &Cursor) -> Option<&str> {
        cursor.full_at.as_deref()
    }

    fn full_every(&self) -> chrono::Duration {
        FULL_EVERY
    }

    fn max_wait(&self) -> std::time::Duration {
        self.max_wait
    }

    async fn read(
        &self,
        job: ReadJob<Credentials, Cursor>,
        report: Reporter<NoUpdate>,
    ) -> Result<Outcome<Cursor>, Failure> {
        read::run(&self.api, job, report).await.map_err(Failure::from)
    }
}
