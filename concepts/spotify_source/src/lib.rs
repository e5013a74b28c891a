//! The SpotifySource concept: reads a user's library (liked songs, playlists, recent plays) from
//! the Spotify Web API in the background and reports each read as a system action, `fetched`
//! or `failed`, for syncs to hand to whatever keeps libraries. It names no other concept.
//!
//! Its spec is `SpotifySource.concept` beside this crate's Cargo.toml. Actions are decided in
//! [`decide`], rows written by [`apply`] and read by [`queries`]; the background work in
//! [`worker`] runs reads ([`read`]) over the Web API client in [`web_api`].

pub mod apply;
pub mod decide;
pub mod events;
pub mod model;
pub mod queries;
pub mod read;
pub mod rows;
pub mod web_api;
pub mod worker;

use concept_core::input::{decode, encode};
use concept_core::{
    ActionCtx, ActionError, ActionKind, ActionSpec, BackgroundWork, Concept, ConceptSpec, Decision, EventMeta,
    ExpectedVersion, Host, ProjectionRead, ProjectionTxn, StoreFault,
};
use events::SourceEvent;
use model::*;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

pub const NAME: &str = "SpotifySource";

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
        }
    }
}

pub struct SpotifySource {
    settings: Settings,
    /// Wakes the background work when a read is asked for.
    wake: Arc<tokio::sync::Notify>,
}

impl SpotifySource {
    pub fn new(settings: Settings) -> Self {
        SpotifySource {
            settings,
            wake: Arc::new(tokio::sync::Notify::new()),
        }
    }
}

impl Default for SpotifySource {
    fn default() -> Self {
        SpotifySource::new(Settings::default())
    }
}

fn unknown(kind: &str, name: &str) -> ActionError {
    ActionError::not_found("UNKNOWN_ACTION", format!("SpotifySource has no {kind} named {name:?}"))
}

impl Concept for SpotifySource {
    type Event = SourceEvent;

    fn spec(&self) -> ConceptSpec {
        use ActionKind::{Action, Query, System};
        ConceptSpec {
            name: NAME.to_string(),
            actions: vec![
                ActionSpec::of::<ConnectInput, UserOutput>("connect", Action),
                ActionSpec::of::<UserInput, UserOutput>("disconnect", Action),
                ActionSpec::of::<FetchInput, FetchOutput>("fetch", Action),
                ActionSpec::of::<ConfirmInput, ConfirmOutput>("confirm", Action),
                ActionSpec::of::<ProgressInput, UserOutput>("progressed", System),
                ActionSpec::of::<FetchedInput, FetchedOutput>("fetched", System),
                ActionSpec::of::<FailedInput, FailedOutput>("failed", System),
                ActionSpec::of::<TokenRefreshedInput, UserOutput>("tokenRefreshed", System),
                ActionSpec::of::<UserInput, FetchStatus>("_getFetch", Query),
                ActionSpec::of::<UserInput, ConnectionOutput>("_getConnection", Query),
                ActionSpec::of::<NoInput, UsersOutput>("_getConnections", Query),
            ],
        }
    }

    fn event_kind(event: &SourceEvent) -> &'static str {
        event.kind()
    }

    fn perform(
        &self,
        ctx: &ActionCtx,
        view: &dyn ProjectionRead,
        action: &str,
        input: Value,
    ) -> Result<Decision<SourceEvent>, ActionError> {
        let name = format!("SpotifySource.{action}");
        let (user, events, output) = match action {
            "connect" => decide::connect(decode(&name, input)?)?,
            "disconnect" => decide::disconnect(view, decode(&name, input)?)?,
            "fetch" => decide::fetch(ctx, view, &self.settings, decode(&name, input)?)?,
            "confirm" => decide::confirm(view, decode(&name, input)?)?,
            "progressed" => decide::progressed(view, decode(&name, input)?)?,
            "fetched" => decide::fetched(view, decode(&name, input)?)?,
            "failed" => decide::failed(view, decode(&name, input)?)?,
            "tokenRefreshed" => decide::token_refreshed(view, decode(&name, input)?)?,
            other => return Err(unknown("action", other)),
        };
        let appends = if events.is_empty() {
            Vec::new()
        } else {
            let version = view.stream_version(&user)?;
            vec![(user, ExpectedVersion::Exact(version), events)]
        };
        Ok(Decision { output, appends })
    }

    fn query(
        &self,
        _ctx: &ActionCtx,
        view: &dyn ProjectionRead,
        query: &str,
        input: Value,
    ) -> Result<Value, ActionError> {
        let name = format!("SpotifySource.{query}");
        match query {
            "_getFetch" => encode(&queries::get_fetch(view, decode(&name, input)?)?),
            "_getConnection" => encode(&queries::get_connection(view, decode(&name, input)?)?),
            "_getConnections" => {
                let _: NoInput = decode(&name, input)?;
                encode(&queries::get_connections(view)?)
            }
            other => Err(unknown("query", other)),
        }
    }

    fn apply(&self, meta: &EventMeta, event: &SourceEvent, txn: &mut dyn ProjectionTxn) -> Result<(), StoreFault> {
        apply::apply(meta, event, txn)
    }

    fn committed(&self, action: &str, _output: &Value) {
        if matches!(action, "fetch" | "connect" | "disconnect") {
            self.wake.notify_one();
        }
    }

    fn background(self: Arc<Self>, host: Arc<dyn Host>) -> Option<BackgroundWork> {
        Some(Box::pin(worker::run(
            self.settings.clone(),
            Arc::clone(&self.wake),
            host,
        )))
    }
}
