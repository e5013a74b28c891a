//! A small client for the parts of the Plex Media Server API a read uses: GETs of JSON
//! `MediaContainer`s (`Accept: application/json`, the token in `X-Plex-Token`), paged with the
//! `X-Plex-Container-Start` / `X-Plex-Container-Size` headers. Retries and rate limits are the
//! source kit's HTTP; a 401 means the token is no good.

use crate::model::Credentials;
use serde_json::{Map, Value};
use source_kit::http::{Http, HttpError, Retry};
use source_kit::{Failure, Session};

pub const SERVICE: &str = "Plex";

/// Why a call to the server did not give an answer to use.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("the Plex server at {base_url} refused the token (401 Unauthorized) for {path}: connect again with a valid X-Plex-Token")]
    Unauthorized { base_url: String, path: String },
    #[error("the Plex server at {base_url} is now {now:?}, not {was:?} as when connected: nothing was read from it; connect again to accept the new server")]
    ServerChanged { base_url: String, was: String, now: String },
}

impl ApiError {
    /// An answer without the shape Plex gives.
    pub fn unexpected(path: &str, error: impl ToString) -> Self {
        ApiError::Http(HttpError::unexpected(SERVICE, path, error))
    }
}

/// `NEEDS_REAUTH` for a refused token, `SERVER_CHANGED` for another server at the address —
/// both need the user to connect again (`needsReauth`: `fetch` is refused and the scheduled
/// refresh leaves the user alone until then) — the kit's codes for the rest.
impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Http(e) => Failure::from(e),
            ApiError::Unauthorized { .. } => Failure::needs_reauth(e),
            ApiError::ServerChanged { .. } => Failure {
                needs_reauth: true,
                ..Failure::new("SERVER_CHANGED", e)
            },
        }
    }
}

/// One page of a paged listing.
#[derive(Debug, Clone)]
pub struct Page {
    pub items: Vec<Value>,
    /// `totalSize` when the server gave it.
    pub total: Option<u64>,
}

#[derive(Clone)]
pub struct PlexApi {
    http: Http,
}

impl PlexApi {
    pub fn new(retry: Retry) -> Self {
        PlexApi {
            http: Http::new(SERVICE, retry)
                .keyed_by_headers(&["X-Plex-Container-Start", "X-Plex-Container-Size"])
                .trimmed(trim),
        }
    }

    /// `GET {baseUrl}{path}` (path with its query), `page` as `(start, size)`, in the read's
    /// session: the answer's `MediaContainer`.
    pub async fn container(
        &self,
        session: &Session,
        creds: &Credentials,
        path: &str,
        page: Option<(u64, u64)>,
    ) -> Result<Map<String, Value>, ApiError> {
        let url = format!("{}{}", creds.base_url, path);
        let answer = self
            .http
            .json(session, path, |c| {
                let mut request = c
                    .get(&url)
                    .header(reqwest::header::ACCEPT, "application/json")
                    .header("X-Plex-Token", &creds.token)
                    .header("X-Plex-Product", "LibraryCache");
                if let Some((start, size)) = page {
                    request = request
                        .header("X-Plex-Container-Start", start.to_string())
                        .header("X-Plex-Container-Size", size.to_string());
                }
                request
            })
            .await
            .map_err(|e| match e.status() {
                Some(401) => ApiError::Unauthorized {
                    base_url: creds.base_url.clone(),
                    path: path.to_string(),
                },
                _ => ApiError::Http(e),
            })?;
        match answer {
            Value::Object(mut o) => match o.remove("MediaContainer") {
                Some(Value::Object(container)) => Ok(container),
                _ => Err(ApiError::unexpected(path, "the answer has no `MediaContainer` object")),
            },
            _ => Err(ApiError::unexpected(path, "the answer is not a JSON object")),
        }
    }

    /// One page of the listing at `path`: its `Metadata` (or `Directory`) items and `totalSize`.
    pub async fn page(
        &self,
        session: &Session,
        creds: &Credentials,
        path: &str,
        start: u64,
        size: u64,
    ) -> Result<Page, ApiError> {
        let mut container = self.container(session, creds, path, Some((start, size))).await?;
        let items = list(&mut container, "Metadata", path)?;
        Ok(Page {
            items,
            total: container.get("totalSize").and_then(number),
        })
    }

    /// The server's `machineIdentifier` (`GET /identity`).
    pub async fn identity(&self, session: &Session, creds: &Credentials) -> Result<String, ApiError> {
        let path = "/identity";
        let container = self.container(session, creds, path, None).await?;
        container
            .get("machineIdentifier")
            .and_then(Value::as_str)
            .filter(|m| !m.trim().is_empty())
            .map(str::to_string)
            .ok_or_else(|| ApiError::unexpected(path, "no `machineIdentifier` in the answer"))
    }

    /// The keys of the server's music sections (`GET /library/sections`, type `artist`).
    pub async fn music_sections(&self, session: &Session, creds: &Credentials) -> Result<Vec<String>, ApiError> {
        let path = "/library/sections";
        let mut container = self.container(session, creds, path, None).await?;
        let sections = list(&mut container, "Directory", path)?;
        Ok(sections
            .iter()
            .filter(|d| d["type"] == "artist")
            .filter_map(|d| key_of(&d["key"]))
            .collect())
    }
}

/// What a read never uses of a Plex answer: media parts, images and their links (most of a
/// track item's bytes).
fn trim(answer: &mut Value) {
    match answer {
        Value::Object(o) => {
            for key in [
                "Media",
                "Image",
                "UltraBlurColors",
                "thumb",
                "art",
                "parentThumb",
                "grandparentThumb",
                "grandparentArt",
                "composite",
            ] {
                o.remove(key);
            }
            o.values_mut().for_each(trim);
        }
        Value::Array(items) => items.iter_mut().for_each(trim),
        _ => {}
    }
}

/// The array `field` of a container (absent: empty, as Plex leaves it out of an empty answer).
fn list(container: &mut Map<String, Value>, field: &str, path: &str) -> Result<Vec<Value>, ApiError> {
    match container.remove(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(ApiError::unexpected(path, format!("`{field}` is not a list"))),
    }
}

/// A number Plex may give as a JSON number or a string of digits.
pub fn number(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A key (ratingKey, section key, playlistItemID) Plex may give as a string or a number.
pub fn key_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
