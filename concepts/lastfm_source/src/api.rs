//! A small client for the Last.fm API 2.0 methods a read uses: `GET {base}/?method=…&user=…&
//! api_key=…&format=json&…`. Retries of 5xx answers and the 429 wait are the source kit's HTTP;
//! Last.fm's own errors come as a JSON body `{error, message}` (with a 4xx/5xx status, or a
//! 200) and are told apart here: 29 rate limit, 10/26 a bad or suspended API key, 6 an unknown
//! user, 17 a user whose listening is private.

use crate::model::Credentials;
use serde_json::{Map, Value};
use source_kit::http::{Http, HttpError, Problem, Retry, DEFAULT_RETRY_AFTER};
use source_kit::{Failure, Session};
use std::time::Duration;

pub const SERVICE: &str = "Last.fm";

/// Why a call to Last.fm did not give an answer to use.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Http(#[from] HttpError),
    /// Last.fm answered with one of its error codes.
    #[error("Last.fm refused {method} for {username:?} with error {code}: {message}")]
    Lastfm {
        method: String,
        username: String,
        code: u64,
        message: String,
    },
}

impl ApiError {
    /// An answer without the shape Last.fm documents.
    pub fn unexpected(method: &str, error: impl ToString) -> Self {
        ApiError::Http(HttpError::unexpected(SERVICE, method, error))
    }
}

/// Last.fm's error codes as failure codes: `RATE_LIMITED` (29, with a wait), `INVALID_API_KEY`
/// (10) and `API_KEY_SUSPENDED` (26) and `UNKNOWN_USER` (6), which need a new `connect`,
/// `PRIVATE_HISTORY` (17), `UPSTREAM_ERROR` (8, 11, 16: Last.fm's own trouble), `LASTFM_ERROR`
/// for the rest; the kit's codes for HTTP problems.
impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        let code = match &e {
            ApiError::Http(e) => return Failure::from(e.clone()),
            ApiError::Lastfm { code, .. } => *code,
        };
        match code {
            29 => Failure {
                retry_after: Some(DEFAULT_RETRY_AFTER),
                ..Failure::new("RATE_LIMITED", e)
            },
            10 | 26 | 6 => Failure {
                needs_reauth: true,
                ..Failure::new(
                    match code {
                        10 => "INVALID_API_KEY",
                        26 => "API_KEY_SUSPENDED",
                        _ => "UNKNOWN_USER",
                    },
                    format!("{e}; connect again with a valid API key and user name"),
                )
            },
            17 => Failure::new("PRIVATE_HISTORY", e),
            8 | 11 | 16 => Failure::new("UPSTREAM_ERROR", e),
            _ => Failure::new("LASTFM_ERROR", e),
        }
    }
}

#[derive(Clone)]
pub struct LastfmApi {
    http: Http,
    base: String,
}

impl LastfmApi {
    /// A client for the API at `base` (e.g. `https://ws.audioscrobbler.com/2.0`).
    pub fn new(base: &str, retry: Retry) -> Self {
        LastfmApi {
            http: Http::new(SERVICE, retry).rate_limited_body(rate_limited).trimmed(trim),
            base: base.trim_end_matches('/').to_string(),
        }
    }

    /// Calls `method` for the connected user with `params`, in the read's session (error 29 is
    /// a rate limit: waited out, or the read stops with `retryAt`); the answer's object, or
    /// Last.fm's error. Messages name the method and page, never the API key.
    pub async fn call(
        &self,
        session: &Session,
        creds: &Credentials,
        method: &str,
        params: &[(&str, String)],
    ) -> Result<Map<String, Value>, ApiError> {
        let url = format!("{}/", self.base);
        let mut query: Vec<(&str, String)> = vec![
            ("method", method.to_string()),
            ("user", creds.username.clone()),
            ("api_key", creds.api_key.clone()),
            ("format", "json".to_string()),
        ];
        query.extend(params.iter().cloned());
        let shown: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let shown = format!("{method}?{}", shown.join("&"));
        let lastfm_error = |body: &Value| {
            let code = body.get("error").and_then(number)?;
            Some(ApiError::Lastfm {
                method: method.to_string(),
                username: creds.username.clone(),
                code,
                message: body["message"].as_str().unwrap_or_default().to_string(),
            })
        };
        let answer = self
            .http
            .json(session, &shown, |c| c.get(&url).query(&query))
            .await
            .map_err(|e| match &e.problem {
                Problem::Status { body, .. } => serde_json::from_str::<Value>(body)
                    .ok()
                    .and_then(|b| lastfm_error(&b))
                    .unwrap_or(ApiError::Http(e)),
                _ => ApiError::Http(e),
            })?;
        if let Some(e) = lastfm_error(&answer) {
            return Err(e);
        }
        match answer {
            Value::Object(o) => Ok(o),
            _ => Err(ApiError::unexpected(&shown, "the answer is not a JSON object")),
        }
    }
}

/// Error 29 ("rate limit exceeded") in an answer's body, whatever its status: Last.fm gives no
/// wait with it, so the default one.
fn rate_limited(body: &Value) -> Option<Duration> {
    (body.get("error").and_then(number) == Some(29)).then_some(DEFAULT_RETRY_AFTER)
}

/// What a read never uses of an answer: the image links of every track.
fn trim(answer: &mut Value) {
    match answer {
        Value::Object(o) => {
            o.remove("image");
            o.values_mut().for_each(trim);
        }
        Value::Array(items) => items.iter_mut().for_each(trim),
        _ => {}
    }
}

/// A number Last.fm may write as a JSON number or a string of digits.
pub fn number(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lastfm(code: u64) -> Failure {
        Failure::from(ApiError::Lastfm {
            method: "user.getrecenttracks".into(),
            username: "rj".into(),
            code,
            message: "m".into(),
        })
    }

    #[test]
    fn lastfm_errors_become_failures_with_clear_codes() {
        let limited = lastfm(29);
        assert_eq!(
            (limited.code.as_str(), limited.retry_after, limited.needs_reauth),
            ("RATE_LIMITED", Some(DEFAULT_RETRY_AFTER), false)
        );
        for (code, name) in [(10, "INVALID_API_KEY"), (26, "API_KEY_SUSPENDED"), (6, "UNKNOWN_USER")] {
            let f = lastfm(code);
            assert_eq!((f.code.as_str(), f.needs_reauth), (name, true), "{code}");
        }
        assert_eq!(lastfm(17).code, "PRIVATE_HISTORY");
        assert_eq!(lastfm(8).code, "UPSTREAM_ERROR");
        assert_eq!(lastfm(99).code, "LASTFM_ERROR");
        assert_eq!(
            lastfm(6).error,
            "Last.fm refused user.getrecenttracks for \"rj\" with error 6: m; connect again with a valid API key and user name"
        );
    }
}
