//! A small client for the part of the Apple Music API a read uses: GETs of JSON resource
//! collections under `/me/…` (`{data, next, meta.total}`), paged by following `next`, with the
//! developer token as a bearer token and the user's token in `Music-User-Token`. Retries and
//! rate limits (429) are the source kit's HTTP; a 401 or 403 means a token is no good (the
//! user's has expired or was revoked, or the developer token is refused): `NEEDS_REAUTH`.

use serde_json::Value;
use source_kit::http::{Http, HttpError, Retry};
use source_kit::{Failure, Session};

pub const SERVICE: &str = "Apple Music";

/// Why a call gave no answer to use.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("Apple Music refused the tokens ({status}) for {path}: the Music-User-Token has expired or was revoked, or the developer token is not valid; connect again")]
    Unauthorized { status: u16, path: String },
    #[error(transparent)]
    Token(#[from] crate::token::TokenError),
}

impl ApiError {
    pub fn unexpected(path: &str, error: impl ToString) -> Self {
        ApiError::Http(HttpError::unexpected(SERVICE, path, error))
    }
}

/// `NEEDS_REAUTH` for refused tokens or a key that cannot sign, the kit's codes for the rest.
impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Http(e) => Failure::from(e),
            ApiError::Unauthorized { .. } | ApiError::Token(_) => Failure::needs_reauth(e),
        }
    }
}

/// One page of a collection.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub data: Vec<Value>,
    /// The path of the next page (`/v1/me/library/songs?offset=100`), if any.
    pub next: Option<String>,
    pub total: Option<u64>,
}

#[derive(Clone)]
pub struct AppleMusicApi {
    http: Http,
    /// The API base, e.g. `https://api.music.apple.com/v1`.
    base: String,
}

/// The tokens of one read.
pub struct Tokens {
    pub developer: String,
    pub user: String,
}

impl AppleMusicApi {
    pub fn new(base: &str, retry: Retry) -> Self {
        AppleMusicApi {
            http: Http::new(SERVICE, retry),
            base: base.trim_end_matches('/').to_string(),
        }
    }

    /// The URL of `path`: a path under the base (`/me/library/songs?limit=100`), or a `next`
    /// the API gave (`/v1/me/…`: the base's scheme and host, then the path as given).
    pub fn url(&self, path: &str) -> String {
        let version = self.version_prefix();
        if !version.is_empty() && path.starts_with(&format!("{version}/")) {
            format!("{}{path}", self.origin())
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// `https://host[:port]` of the base.
    fn origin(&self) -> &str {
        let after_scheme = self.base.find("://").map(|i| i + 3).unwrap_or(0);
        match self.base[after_scheme..].find('/') {
            Some(i) => &self.base[..after_scheme + i],
            None => &self.base,
        }
    }

    /// The base's path (`/v1`).
    fn version_prefix(&self) -> &str {
        &self.base[self.origin().len()..]
    }

    /// One page at `path` (a path under the base, or a `next`). `None` for a 404: Apple
    /// answers it for a collection with nothing in it (an empty playlist's tracks, no ratings).
    pub async fn page(&self, session: &Session, tokens: &Tokens, path: &str) -> Result<Option<Page>, ApiError> {
        let url = self.url(path);
        let shown = path.split('?').next().unwrap_or(path).to_string();
        let answer = self
            .http
            .json(session, &shown, |c| {
                c.get(&url)
                    .bearer_auth(&tokens.developer)
                    .header("Music-User-Token", &tokens.user)
            })
            .await;
        let answer = match answer {
            Ok(v) => v,
            Err(e) => {
                return match e.status() {
                    Some(404) => Ok(None),
                    Some(status @ (401 | 403)) => Err(ApiError::Unauthorized { status, path: shown }),
                    _ => Err(ApiError::Http(e)),
                }
            }
        };
        let data = match answer.get("data") {
            Some(Value::Array(items)) => items.clone(),
            None | Some(Value::Null) => Vec::new(),
            Some(_) => return Err(ApiError::unexpected(&shown, "`data` is not a list")),
        };
        Ok(Some(Page {
            data,
            next: answer.get("next").and_then(Value::as_str).map(str::to_string),
            total: answer.pointer("/meta/total").and_then(Value::as_u64),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_pages_keep_the_bases_host_and_paths_go_under_the_base() {
        let api = AppleMusicApi::new("https://api.music.apple.com/v1/", Retry::default());
        assert_eq!(
            api.url("/v1/me/library/songs?offset=100"),
            "https://api.music.apple.com/v1/me/library/songs?offset=100"
        );
        assert_eq!(
            api.url("/me/library/songs?limit=100"),
            "https://api.music.apple.com/v1/me/library/songs?limit=100"
        );
        let local = AppleMusicApi::new("http://127.0.0.1:4000/v1", Retry::default());
        assert_eq!(local.url("/v1/me/x?offset=2"), "http://127.0.0.1:4000/v1/me/x?offset=2");
    }
}
