//! A small client for the parts of the Spotify Web API a read uses: authorised GETs (the source
//! kit's HTTP: 5xx answers retried with backoff, 429s reported with their wait; 401s and 403s
//! told apart for the read to decide on) and the accounts service's refresh-token grant.

use crate::Settings;
use serde_json::Value;
use source_kit::http::{self, Http, HttpError, Problem, Retry};
use source_kit::{Failure, Session};

const SERVICE: &str = "Spotify";

/// Why a call to Spotify did not give an answer to use.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("Spotify refused the access token (401)")]
    Unauthorized,
    #[error("Spotify refused access to {path} (403)")]
    Forbidden { path: String },
    #[error("the accounts service refused the refresh token ({0})")]
    InvalidGrant(String),
    #[error("there is no refresh token to renew the access token with")]
    NoRefreshToken,
}

impl ApiError {
    /// An answer without the shape the Web API documents.
    pub fn unexpected(path: &str, error: impl ToString) -> Self {
        ApiError::Http(HttpError::unexpected(SERVICE, path, error))
    }
}

/// A code per cause: the kit's for HTTP problems, `NEEDS_REAUTH` when the credentials are no
/// good any more, `FORBIDDEN` for a 403 the read could not work around.
impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Http(e) => Failure::from(e),
            ApiError::InvalidGrant(_) | ApiError::Unauthorized | ApiError::NoRefreshToken => Failure::needs_reauth(e),
            ApiError::Forbidden { .. } => Failure::new("FORBIDDEN", e),
        }
    }
}

/// What the accounts service gave for a refresh token.
#[derive(Debug, Clone, PartialEq)]
pub struct Refreshed {
    pub access_token: String,
    /// Set when the service rotated the refresh token.
    pub refresh_token: Option<String>,
    pub expires_in: Option<u64>,
}

/// What the read never uses of Spotify's answers, dropped before it sees them (and before they
/// are kept for a checkpoint): market lists and images are most of a track's bytes.
fn trim(answer: &mut Value) {
    match answer {
        Value::Object(o) => {
            for key in [
                "available_markets",
                "images",
                "external_urls",
                "preview_url",
                "linked_from",
            ] {
                o.remove(key);
            }
            o.values_mut().for_each(trim);
        }
        Value::Array(items) => items.iter_mut().for_each(trim),
        _ => {}
    }
}

#[derive(Clone)]
pub struct WebApi {
    http: Http,
    settings: Settings,
}

impl WebApi {
    pub fn new(settings: Settings) -> Self {
        let retry = Retry {
            base: settings.retry_base,
            retries: settings.retries,
        };
        WebApi {
            http: Http::new(SERVICE, retry).trimmed(trim),
            settings,
        }
    }

    /// `GET {api_base}{path}` with the access token, in the read's session (retried and rate
    /// limits waited out as the kit's HTTP does).
    pub async fn get(&self, session: &Session, token: &str, path: &str) -> Result<Value, ApiError> {
        let url = format!("{}{}", self.settings.api_base.trim_end_matches('/'), path);
        self.http
            .json(session, path, |c| c.get(&url).bearer_auth(token))
            .await
            .map_err(|e| match e.status() {
                Some(401) => ApiError::Unauthorized,
                Some(403) => ApiError::Forbidden { path: path.to_string() },
                _ => ApiError::Http(e),
            })
    }

    /// Exchanges a refresh token for a new access token (`POST {accounts_base}/api/token`),
    /// waiting out a short rate limit in the read's session. (Never kept for a checkpoint: a
    /// token is asked for again, not replayed.)
    pub async fn refresh(
        &self,
        session: &Session,
        refresh_token: &str,
        client_id: Option<&str>,
        client_secret: Option<&str>,
    ) -> Result<Refreshed, ApiError> {
        let path = "/api/token";
        let fail = |problem| ApiError::Http(HttpError::new(SERVICE, path, problem));
        let url = format!("{}{}", self.settings.accounts_base.trim_end_matches('/'), path);
        let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", refresh_token)];
        if let (Some(id), None) = (client_id, client_secret) {
            form.push(("client_id", id));
        }
        let mut throttled = 0;
        let response = loop {
            let mut request = self.http.client().post(&url);
            if let (Some(id), Some(secret)) = (client_id, client_secret) {
                request = request.basic_auth(id, Some(secret));
            }
            let response = request
                .form(&form)
                .send()
                .await
                .map_err(|e| fail(Problem::Network(e.without_url().to_string())))?;
            if response.status().as_u16() != 429 {
                break response;
            }
            let retry_after = http::retry_after(response.headers());
            if throttled >= source_kit::MAX_THROTTLED || !session.may_wait(retry_after) {
                return Err(fail(Problem::RateLimited { retry_after }));
            }
            session.wait(retry_after).await;
            throttled += 1;
        };
        let status = response.status().as_u16();
        let text = http::body_text(response).await;
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status == 400 || status == 401 {
            let error = json["error"].as_str().unwrap_or("invalid_client");
            let description = json["error_description"].as_str().unwrap_or("");
            return Err(ApiError::InvalidGrant(
                format!("{error}: {description}").trim_end_matches(": ").to_string(),
            ));
        }
        if !(200..300).contains(&status) {
            return Err(fail(Problem::Status { status, body: text }));
        }
        let access_token = json["access_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::unexpected(path, "no access_token in the answer"))?;
        Ok(Refreshed {
            access_token: access_token.to_string(),
            refresh_token: json["refresh_token"].as_str().map(str::to_string),
            expires_in: json["expires_in"].as_u64(),
        })
    }
}
