//! HTTP for sources: a GET, in a read's [`Session`], that retries 5xx answers and network errors
//! with exponential backoff, waits out a rate limit (a 429 with its `Retry-After`, or an answer
//! the source tells is one) of up to the session's bound on the engine's clock and asks again,
//! and reports a longer one with its wait (which becomes `failed`'s `retryAt`); every other
//! answer that is not 2xx is reported as it is. Each answer used is kept in the session (a
//! resumed read gets it from there instead of from the service).

use crate::read::Failure;
use crate::session::{call_key, Session, MAX_THROTTLED};
use serde_json::Value;
use std::time::Duration;

/// How 5xx answers and network errors are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// The first wait; doubled for each retry.
    pub base: Duration,
    /// How many retries before the call fails.
    pub retries: u32,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            base: Duration::from_millis(500),
            retries: 3,
        }
    }
}

/// Why a call gave no answer to use.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct HttpError {
    /// The service, as messages name it.
    pub service: &'static str,
    /// The path called (no query secrets; what messages show).
    pub path: String,
    pub problem: Problem,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    /// 429: wait this long.
    RateLimited { retry_after: Duration },
    /// Any other answer that is not 2xx (a 5xx once its retries are spent).
    Status { status: u16, body: String },
    /// No answer (connection refused, timeout), once its retries are spent.
    Network(String),
    /// An answer that is not what the service documents.
    Unexpected(String),
}

impl HttpError {
    /// The error, with any URL password and secret query value (`api_key=…`) in its path and
    /// texts hidden: these messages are logged, stored in `failed` events and answered.
    pub fn new(service: &'static str, path: &str, problem: Problem) -> Self {
        use concept_core::redact::redact_text;
        let problem = match problem {
            Problem::Status { status, body } => Problem::Status {
                status,
                body: redact_text(&body),
            },
            Problem::Network(text) => Problem::Network(redact_text(&text)),
            Problem::Unexpected(text) => Problem::Unexpected(redact_text(&text)),
            limited @ Problem::RateLimited { .. } => limited,
        };
        HttpError {
            service,
            path: redact_text(path),
            problem,
        }
    }

    /// A transport error (no answer, or an answer that could not be read) of the HTTP client:
    /// its text without the URL it called (which may carry a secret query parameter).
    pub fn network(service: &'static str, path: &str, error: reqwest::Error) -> Self {
        HttpError::new(service, path, Problem::Network(error.without_url().to_string()))
    }

    /// The answer does not have the shape the service documents.
    pub fn unexpected(service: &'static str, path: &str, error: impl ToString) -> Self {
        HttpError::new(service, path, Problem::Unexpected(error.to_string()))
    }

    /// The status of an answer that was not 2xx.
    pub fn status(&self) -> Option<u16> {
        match self.problem {
            Problem::Status { status, .. } => Some(status),
            Problem::RateLimited { .. } => Some(429),
            _ => None,
        }
    }

    fn describe(&self) -> String {
        let (service, path) = (self.service, &self.path);
        match &self.problem {
            Problem::RateLimited { retry_after } => format!(
                "{service} asked us to wait {} s (429 Too Many Requests)",
                retry_after.as_secs()
            ),
            Problem::Status { status, body } => format!("{service} answered {status} for {path}: {body}"),
            Problem::Network(error) => format!("{service} could not be reached for {path}: {error}"),
            Problem::Unexpected(error) => {
                format!("{service}'s answer for {path} is not what its API documents: {error}")
            }
        }
    }
}

/// The codes every source reports an HTTP problem with: `RATE_LIMITED` (with its wait),
/// `UPSTREAM_ERROR`, `UPSTREAM_UNREACHABLE`, `UPSTREAM_UNEXPECTED`.
impl From<HttpError> for Failure {
    fn from(e: HttpError) -> Self {
        let (code, retry_after) = match &e.problem {
            Problem::RateLimited { retry_after } => ("RATE_LIMITED", Some(*retry_after)),
            Problem::Status { .. } => ("UPSTREAM_ERROR", None),
            Problem::Network(_) => ("UPSTREAM_UNREACHABLE", None),
            Problem::Unexpected(_) => ("UPSTREAM_UNEXPECTED", None),
        };
        Failure {
            retry_after,
            ..Failure::new(code, e)
        }
    }
}

/// The longest a 429 may ask us to wait that we take literally (a day); longer is clamped.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);
/// The wait assumed when a 429 carries no readable Retry-After.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);

/// An answer body that says "rate limited" though its status may not (Last.fm's error 29):
/// the wait it asks for.
pub type RateLimitedBody = fn(&Value) -> Option<Duration>;

/// Drops what a source never reads from an answer (e.g. Spotify's `available_markets`), before
/// the read sees it and before it is kept for a checkpoint, so a checkpoint stays small and a
/// replayed answer is the one the read saw.
pub type Trim = fn(&mut Value);

/// An HTTP client for one service.
#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    service: &'static str,
    retry: Retry,
    /// Headers that tell calls apart (besides path and query), e.g. paging headers.
    key_headers: &'static [&'static str],
    rate_limited_body: Option<RateLimitedBody>,
    trim: Option<Trim>,
}

impl Http {
    pub fn new(service: &'static str, retry: Retry) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("librarycache/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Http {
            client,
            service,
            retry,
            key_headers: &[],
            rate_limited_body: None,
            trim: None,
        }
    }

    /// Calls differ by these headers too (a service that pages with headers).
    pub fn keyed_by_headers(mut self, headers: &'static [&'static str]) -> Self {
        self.key_headers = headers;
        self
    }

    /// Answers whose body says "rate limited" (with the wait) are rate limits whatever their
    /// status.
    pub fn rate_limited_body(mut self, check: RateLimitedBody) -> Self {
        self.rate_limited_body = Some(check);
        self
    }

    /// Every answer is trimmed of what the source never reads.
    pub fn trimmed(mut self, trim: Trim) -> Self {
        self.trim = Some(trim);
        self
    }

    /// The underlying client, for calls that are not retried GETs (e.g. a token grant).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    pub fn service(&self) -> &'static str {
        self.service
    }

    /// Sends the request `build` makes (once per attempt) in the read's `session` and decodes a
    /// 2xx answer's JSON body; 5xx answers and network errors are retried with backoff; a rate
    /// limit the session may wait out is waited out (up to [`MAX_THROTTLED`] times in a row)
    /// and the call made again; a longer one is [`Problem::RateLimited`]. An answer the session
    /// holds from a checkpoint is answered from there. `path` names the call in messages.
    pub async fn json(
        &self,
        session: &Session,
        path: &str,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<Value, HttpError> {
        let request = build(&self.client).build().map_err(|e| {
            self.error(
                path,
                Problem::Unexpected(format!("the request cannot be made: {}", e.without_url())),
            )
        })?;
        let call = call_key(&request, self.key_headers);
        if let Some(answer) = session.replayed(&call) {
            return Ok(answer);
        }
        let (mut attempt, mut throttled) = (0, 0);
        loop {
            let problem = match self
                .client
                .execute(build(&self.client).build().map_err(|e| {
                    self.error(
                        path,
                        Problem::Unexpected(format!("the request cannot be made: {}", e.without_url())),
                    )
                })?)
                .await
            {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let header_wait = (status == 429).then(|| retry_after(response.headers()));
                    match status {
                        200..=299 => {
                            let mut answer = response
                                .json::<Value>()
                                .await
                                .map_err(|e| HttpError::unexpected(self.service, path, e.without_url()))?;
                            match self.rate_limited_body.and_then(|check| check(&answer)) {
                                Some(retry_after) => Problem::RateLimited { retry_after },
                                None => {
                                    if let Some(trim) = self.trim {
                                        trim(&mut answer);
                                    }
                                    session.record(&call, &answer);
                                    return Ok(answer);
                                }
                            }
                        }
                        _ => {
                            let body = body_text(response).await;
                            let body_wait = self
                                .rate_limited_body
                                .and_then(|check| check(&serde_json::from_str(&body).unwrap_or(Value::Null)));
                            match (header_wait, body_wait) {
                                (Some(retry_after), _) | (None, Some(retry_after)) => {
                                    Problem::RateLimited { retry_after }
                                }
                                _ => Problem::Status { status, body },
                            }
                        }
                    }
                }
                Err(e) => Problem::Network(e.without_url().to_string()),
            };
            let error = self.error(path, problem);
            match &error.problem {
                Problem::RateLimited { retry_after } => {
                    if throttled >= MAX_THROTTLED || !session.may_wait(*retry_after) {
                        return Err(error);
                    }
                    tracing::info!(service = self.service, path = %error.path, wait_s = retry_after.as_secs(), "rate limited: waiting it out");
                    session.wait(*retry_after).await;
                    throttled += 1;
                    continue;
                }
                Problem::Status { status, .. } if !(500..=599).contains(status) => return Err(error),
                _ => {}
            }
            if attempt >= self.retry.retries {
                return Err(error);
            }
            let wait = self.retry.base * 2u32.saturating_pow(attempt);
            // The status only: an answer's body may quote what was sent.
            let problem = match &error.problem {
                Problem::Status { status, .. } => format!("answered {status}"),
                _ => "no answer".to_string(),
            };
            tracing::info!(service = self.service, path = %error.path, attempt, wait_ms = wait.as_millis() as u64, problem, "retrying a call");
            // Backoff between retries paces the calls; it is no time the read decides on.
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    fn error(&self, path: &str, problem: Problem) -> HttpError {
        HttpError::new(self.service, path, problem)
    }
}

/// The wait a 429 asks for: `Retry-After` in seconds (clamped to a day).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Duration {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_RETRY_AFTER)
        .min(MAX_RETRY_AFTER)
}

/// The start of an answer's body, for a message.
pub async fn body_text(response: reqwest::Response) -> String {
    let text = response.text().await.unwrap_or_default();
    let mut end = text.len().min(300);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_clamps() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Duration::from_secs(7));
        h.insert(reqwest::header::RETRY_AFTER, "999999".parse().unwrap());
        assert_eq!(retry_after(&h), MAX_RETRY_AFTER);
        h.insert(reqwest::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), DEFAULT_RETRY_AFTER);
    }

    #[test]
    fn http_problems_become_failures_with_their_codes() {
        let limited = HttpError::new(
            "S",
            "/x",
            Problem::RateLimited {
                retry_after: Duration::from_secs(5),
            },
        );
        let f = Failure::from(limited);
        assert_eq!(
            (f.code.as_str(), f.retry_after),
            ("RATE_LIMITED", Some(Duration::from_secs(5)))
        );
        assert_eq!(f.error, "S asked us to wait 5 s (429 Too Many Requests)");
        let down = Failure::from(HttpError::new(
            "S",
            "/x",
            Problem::Status {
                status: 503,
                body: "busy".into(),
            },
        ));
        assert_eq!(down.code, "UPSTREAM_ERROR");
        assert_eq!(down.error, "S answered 503 for /x: busy");
    }
}
