//! The PlexSource concept: reads a user's music library (tracks, ratings as likes, play
//! history, playlists) from their Plex Media Server in the background, in pages with progress,
//! and reports each read as a system action, `fetched` or `failed`, for syncs to hand to
//! whatever keeps libraries. It names no other concept.
//!
//! Its spec is `PlexSource.concept` beside this crate's Cargo.toml. The lifecycle (actions,
//! rows, queries, the background worker) is the source kit's ([`source_kit`]); this crate keeps
//! what is Plex's: its credentials and cursor ([`model`]), the server API client ([`api`]),
//! Plex metadata in the cache's shapes ([`shapes`]) and the read itself ([`read`]).

pub mod api;
pub mod model;
pub mod read;
pub mod shapes;

use concept_core::ActionError;
use model::*;
use source_kit::http::Retry;
use source_kit::{Connection, Failure, Outcome, ReadJob, Reporter, Source, SourceConcept};

pub const NAME: &str = "PlexSource";

/// The concept, as the registry holds it.
pub type PlexSource = SourceConcept<Plex>;

/// How the concept reads Plex servers.
#[derive(Debug, Clone)]
pub struct Settings {
    /// A track rated at least this on Plex's 0–10 scale is a like (8 = four stars).
    pub like_rating: f64,
    /// Items asked for per page (`X-Plex-Container-Size`).
    pub page_size: u64,
    /// How old the last full read of the play history may be before it is read in full again.
    pub full_every: chrono::Duration,
    /// How 5xx answers and network errors are retried.
    pub retry: Retry,
    /// The longest rate-limit wait a read waits out itself; a longer one ends it with
    /// `retryAt` and a checkpoint.
    pub max_wait: std::time::Duration,
}

/// Four stars.
pub const DEFAULT_LIKE_RATING: f64 = 8.0;
pub const DEFAULT_PAGE_SIZE: u64 = 1000;
/// The most items asked for per page.
pub const MAX_PAGE_SIZE: u64 = 10_000;

impl Default for Settings {
    fn default() -> Self {
        Settings {
            like_rating: DEFAULT_LIKE_RATING,
            page_size: DEFAULT_PAGE_SIZE,
            full_every: chrono::Duration::hours(24),
            retry: Retry::default(),
            max_wait: source_kit::DEFAULT_MAX_WAIT,
        }
    }
}

impl Settings {
    /// The like threshold from stars (0.5 to 5, in halves): `stars * 2` on Plex's scale.
    pub fn like_stars(stars: f64) -> Result<f64, String> {
        if !(0.5..=5.0).contains(&stars) || (stars * 2.0).fract() != 0.0 {
            return Err(format!("{stars} is not a number of stars from 0.5 to 5 in halves"));
        }
        Ok(stars * 2.0)
    }
}

/// Plex as a source: its settings and its server API client.
pub struct Plex {
    settings: Settings,
    api: api::PlexApi,
}

impl Plex {
    pub fn new(settings: Settings) -> Self {
        Plex {
            api: api::PlexApi::new(settings.retry),
            settings,
        }
    }
}

/// The concept reading Plex servers as `settings` say.
pub fn concept(settings: Settings) -> PlexSource {
    SourceConcept::new(Plex::new(settings))
}

/// `baseUrl` as stored: an http(s) URL with a host, without a trailing `/`, query or fragment.
fn base_url(url: &str) -> Result<String, ActionError> {
    let invalid = |why: &str| ActionError::invalid("INVALID_BASE_URL", format!("`baseUrl` {why}: {url:?}"));
    let parsed = reqwest::Url::parse(url.trim()).map_err(|e| invalid(&format!("is not a URL ({e})")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid("must be an http:// or https:// URL"));
    }
    if !parsed.host_str().is_some_and(|h| !h.is_empty()) {
        return Err(invalid("has no host"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(invalid("must not have a query or fragment"));
    }
    Ok(parsed.as_str().trim_end_matches('/').to_string())
}

impl Source for Plex {
    const NAME: &'static str = NAME;
    const SERVICE: &'static str = "Plex";
    const UPDATE_ACTION: Option<&'static str> = Some("serverIdentified");
    const SECRETS: &'static [&'static str] = &["token"];

    type Connect = ConnectInput;
    type Credentials = Credentials;
    type Update = ServerIdentified;
    type Cursor = Cursor;
    type ConnectionOutput = ConnectionOutput;

    fn connect(&self, input: ConnectInput) -> Result<(String, Credentials), ActionError> {
        source_kit::check_id("userId", &input.user_id)?;
        let base_url = base_url(&input.base_url)?;
        if input.token.trim().is_empty() {
            return Err(ActionError::invalid("EMPTY_TOKEN", "`token` must not be empty"));
        }
        if input.token.chars().any(|c| c.is_control()) {
            return Err(ActionError::invalid(
                "INVALID_TOKEN",
                "`token` must not contain control characters",
            ));
        }
        if let Some(ids) = &input.section_ids {
            if ids.is_empty() {
                return Err(ActionError::invalid(
                    "EMPTY_SECTIONS",
                    "`sectionIds` must name at least one section (leave it out to read every music section)",
                ));
            }
            for (i, id) in ids.iter().enumerate() {
                if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) || id.len() > 20 {
                    return Err(ActionError::invalid(
                        "INVALID_SECTION_ID",
                        format!("`sectionIds[{i}]` is not a Plex section key (digits, e.g. \"3\"): {id:?}"),
                    ));
                }
            }
        }
        let credentials = Credentials {
            base_url,
            token: input.token,
            section_ids: input.section_ids,
            account_id: input.account_id,
            machine_identifier: None,
        };
        Ok((input.user_id, credentials))
    }

    fn describe(&self, user: &str, conn: &Connection<Credentials>) -> ConnectionOutput {
        let c = &conn.credentials;
        ConnectionOutput {
            user_id: user.to_string(),
            connected_at: conn.connected_at.clone(),
            base_url: c.base_url.clone(),
            section_ids: c.section_ids.clone(),
            account_id: c.account_id,
            machine_identifier: c.machine_identifier.clone(),
            needs_reauth: conn.needs_reauth,
        }
    }

    fn check_update(&self, update: &ServerIdentified) -> Result<(), ActionError> {
        source_kit::check_id("machineIdentifier", &update.machine_identifier)
    }

    fn apply_update(&self, credentials: &mut Credentials, update: &ServerIdentified) {
        credentials.machine_identifier = Some(update.machine_identifier.clone());
    }

    fn full_at(cursor: &Cursor) -> Option<&str> {
        cursor.full_at.as_deref()
    }

    fn full_every(&self) -> chrono::Duration {
        self.settings.full_every
    }

    fn max_wait(&self) -> std::time::Duration {
        self.settings.max_wait
    }

    async fn read(
        &self,
        job: ReadJob<Credentials, Cursor>,
        report: Reporter<ServerIdentified>,
    ) -> Result<Outcome<Cursor>, Failure> {
        read::run(&self.api, &self.settings, job, report)
            .await
            .map_err(Failure::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_http_urls_kept_without_a_trailing_slash() {
        assert_eq!(base_url("http://10.0.0.2:32400/").unwrap(), "http://10.0.0.2:32400");
        assert_eq!(
            base_url("https://plex.example/pms").unwrap(),
            "https://plex.example/pms"
        );
        for bad in ["10.0.0.2:32400", "ftp://x", "http://x/?a=1", "not a url"] {
            assert_eq!(base_url(bad).unwrap_err().code, "INVALID_BASE_URL", "{bad}");
        }
    }

    #[test]
    fn stars_become_plex_ratings() {
        assert_eq!(Settings::like_stars(4.0), Ok(8.0));
        assert_eq!(Settings::like_stars(3.5), Ok(7.0));
        assert!(Settings::like_stars(0.0).is_err() && Settings::like_stars(4.2).is_err());
    }
}
