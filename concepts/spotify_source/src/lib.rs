//! The SpotifySource concept: reads a user's library (liked songs, playlists, recent plays) from
//! the Spotify Web API in the background and reports each read as a system action, `fetched`
//! or `failed`, for syncs to hand to whatever keeps libraries. It names no other concept.
//!
//! Its spec is `SpotifySource.concept` beside this crate's Cargo.toml. The lifecycle (actions,
//! rows, queries, the background worker) is the source kit's ([`source_kit`]); this crate keeps
//! what is Spotify's: its credentials and cursor ([`model`]), the Web API client with the
//! token refresh ([`web_api`]) and the read itself ([`read`]).

pub mod model;
pub mod read;
pub mod web_api;

use concept_core::ActionError;
use model::*;
use source_kit::{Connection, Failure, Outcome, ReadJob, Reporter, Source, SourceConcept};
use std::time::Duration;

pub const NAME: &str = "SpotifySource";

/// The concept, as the registry holds it.
pub type SpotifySource = SourceConcept<Spotify>;

/// Where Spotify is and how the concept reads it.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The Web API base, e.g. `https://api.spotify.com/v1`.
    pub api_base: String,
    /// The accounts service base (its token endpoint is `{base}/api/token`).
    pub accounts_base: String,
    /// How old the last full read may be before the next read is full again.
    pub full_every: chrono::Duration,
    /// The first wait before retrying a 5xx answer; doubled for each retry.
    pub retry_base: Duration,
    /// How many times a 5xx answer is retried before the read fails.
    pub retries: u32,
    /// The longest rate-limit wait a read waits out itself; a longer one ends it with
    /// `retryAt` and a checkpoint.
    pub max_wait: Duration,
}

pub const DEFAULT_API_BASE: &str = "https://api.spotify.com/v1";
pub const DEFAULT_ACCOUNTS_BASE: &str = "https://accounts.spotify.com";

impl Default for Settings {
    fn default() -> Self {
        Settings {
            api_base: DEFAULT_API_BASE.into(),
            accounts_base: DEFAULT_ACCOUNTS_BASE.into(),
            full_every: chrono::Duration::hours(24),
            retry_base: Duration::from_millis(500),
            retries: 3,
            max_wait: source_kit::DEFAULT_MAX_WAIT,
        }
    }
}

/// Spotify as a source: its settings and its Web API client.
pub struct Spotify {
    settings: Settings,
    api: web_api::WebApi,
}

impl Spotify {
    pub fn new(settings: Settings) -> Self {
        Spotify {
            api: web_api::WebApi::new(settings.clone()),
            settings,
        }
    }
}

/// The concept reading Spotify as `settings` say.
pub fn concept(settings: Settings) -> SpotifySource {
    SourceConcept::new(Spotify::new(settings))
}

impl Source for Spotify {
    const NAME: &'static str = NAME;
    const SERVICE: &'static str = "Spotify";
    const UPDATE_ACTION: Option<&'static str> = Some("tokenRefreshed");
    const SECRETS: &'static [&'static str] = &["accessToken", "refreshToken", "clientSecret"];

    type Connect = ConnectInput;
    type Credentials = Credentials;
    type Update = TokenRefresh;
    type Cursor = Cursor;
    type ConnectionOutput = ConnectionOutput;

    fn connect(&self, input: ConnectInput) -> Result<(String, Credentials), ActionError> {
        source_kit::check_id("userId", &input.user_id)?;
        if input.access_token.trim().is_empty() {
            return Err(ActionError::invalid("EMPTY_TOKEN", "`accessToken` must not be empty"));
        }
        source_kit::check_time("expiresAt", &input.expires_at)?;
        if input.refresh_token.is_some() && input.client_id.is_none() {
            return Err(ActionError::invalid(
                "MISSING_CLIENT_ID",
                "`refreshToken` needs `clientId` (and `clientSecret` unless the app uses PKCE) to be used",
            ));
        }
        let credentials = Credentials {
            access_token: input.access_token,
            refresh_token: input.refresh_token,
            client_id: input.client_id,
            client_secret: input.client_secret,
            expires_at: input.expires_at,
        };
        Ok((input.user_id, credentials))
    }

    fn describe(&self, user: &str, conn: &Connection<Credentials>) -> ConnectionOutput {
        ConnectionOutput {
            user_id: user.to_string(),
            connected_at: conn.connected_at.clone(),
            expires_at: conn.credentials.expires_at.clone(),
            can_refresh: conn.credentials.refresh_token.is_some(),
            needs_reauth: conn.needs_reauth,
        }
    }

    fn check_update(&self, update: &TokenRefresh) -> Result<(), ActionError> {
        source_kit::check_time("expiresAt", &update.expires_at)
    }

    fn apply_update(&self, credentials: &mut Credentials, update: &TokenRefresh) {
        credentials.access_token = update.access_token.clone();
        if update.refresh_token.is_some() {
            credentials.refresh_token = update.refresh_token.clone();
        }
        credentials.expires_at = update.expires_at.clone();
    }

    fn full_at(cursor: &Cursor) -> Option<&str> {
        cursor.full_at.as_deref()
    }

    fn full_every(&self) -> chrono::Duration {
        self.settings.full_every
    }

    fn max_wait(&self) -> Duration {
        self.settings.max_wait
    }

    async fn read(
        &self,
        job: ReadJob<Credentials, Cursor>,
        report: Reporter<TokenRefresh>,
    ) -> Result<Outcome<Cursor>, Failure> {
        read::run(&self.api, job, report).await.map_err(Failure::from)
    }
}
