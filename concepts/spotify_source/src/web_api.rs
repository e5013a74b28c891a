//! A small client for the parts of the Spotify Web API a read uses: authorised GETs (5xx answers
//! retried with backoff, 429s and 401s reported for the read to decide on) and the accounts
//! service's refresh-token grant.

use crate::Settings;
use serde_json::Value;
use std::time::Duration;

/// Why a call to Spotify did not give an answer to use.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    #[error("Spotify asked us to wait {} s (429 Too Many Requests)", retry_after.as_secs())]
    RateLimited { retry_after: Duration },
    #[error("Spotify refused the access token (401)")]
    Unauthorized,
    #[error("Spotify refused access to {path} (403)")]
    Forbidden { path: String },
    #[error("the accounts service refused the refresh token ({0})")]
    InvalidGrant(String),
    #[error("there is no refresh token to renew the access token with")]
    NoRefreshToken,
    #[error("Spotify answered {status} for {path}: {body}")]
    Upstream { status: u16, path: String, body: String },
    #[error("Spotify could not be reached for {path}: {error}")]
    Network { path: String, error: String },
    #[error("Spotify's answer for {path} is not what the Web API documents: {error}")]
    Unexpected { path: String, error: String },
}

/// What the accounts service gave for a refresh token.
#[derive(Debug, Clone, PartialEq)]
pub struct Refreshed {
    pub access_token: String,
    /// Set when the service rotated the refresh token.
    pub refresh_token: Option<String>,
    pub expires_in: Option<u64>,
}

/// The longest a 429 may ask us to wait that we take literally (a day); longer is clamped.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);
/// The wait assumed when a 429 carries no readable Retry-After.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct WebApi {
    http: reqwest::Client,
    settings: Settings,
}

impl WebApi {
    pub fn new(settings: Settings) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("librarycache/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        WebApi { http, settings }
    }

    /// `GET {api_base}{path}` with the access token; 5xx and network failures are retried with
    /// exponential backoff (never a 429: its wait is the read's to honour).
    pub async fn get(&self, token: &str, path: &str) -> Result<Value, ApiError> {
        let url = format!("{}{}", self.settings.api_base.trim_end_matches('/'), path);
        let mut attempt = 0;
        loop {
            let outcome = self.http.get(&url).bearer_auth(token).send().await;
            let retryable = match outcome {
                Ok(response) => {
                    let status = response.status().as_u16();
                    match status {
                        200..=299 => {
                            return response.json::<Value>().await.map_err(|e| ApiError::Unexpected {
                                path: path.to_string(),
                                error: e.to_string(),
                            })
                        }
                        429 => {
                            return Err(ApiError::RateLimited {
                                retry_after: retry_after(response.headers()),
                            })
                        }
                        401 => return Err(ApiError::Unauthorized),
                        403 => return Err(ApiError::Forbidden { path: path.to_string() }),
                        500..=599 => ApiError::Upstream {
                            status,
                            path: path.to_string(),
                            body: body_text(response).await,
                        },
                        _ => {
                            return Err(ApiError::Upstream {
                                status,
                                path: path.to_string(),
                                body: body_text(response).await,
                            })
                        }
                    }
                }
                Err(e) => ApiError::Network {
                    path: path.to_string(),
                    error: e.to_string(),
                },
            };
            if attempt >= self.settings.retries {
                return Err(retryable);
            }
            let wait = self.settings.retry_base * 2u32.saturating_pow(attempt);
            tracing::info!(path, attempt, wait_ms = wait.as_millis() as u64, error = %retryable, "retrying a Spotify call");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// Exchanges a refresh token for a new access token (`POST {accounts_base}/api/token`).
    pub async fn refresh(
        &self,
        refresh_token: &str,
        client_id: Option<&str>,
        client_secret: Option<&str>,
    ) -> Result<Refreshed, ApiError> {
        let path = "/api/token";
        let url = format!("{}{}", self.settings.accounts_base.trim_end_matches('/'), path);
        let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", refresh_token)];
        let mut request = self.http.post(&url);
        match (client_id, client_secret) {
            (Some(id), Some(secret)) => request = request.basic_auth(id, Some(secret)),
            (Some(id), None) => form.push(("client_id", id)),
            _ => {}
        }
        let response = request.form(&form).send().await.map_err(|e| ApiError::Network {
            path: path.into(),
            error: e.to_string(),
        })?;
        let status = response.status().as_u16();
        if status == 429 {
            return Err(ApiError::RateLimited {
                retry_after: retry_after(response.headers()),
            });
        }
        let text = body_text(response).await;
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status == 400 || status == 401 {
            let error = json["error"].as_str().unwrap_or("invalid_client");
            let description = json["error_description"].as_str().unwrap_or("");
            return Err(ApiError::InvalidGrant(
                format!("{error}: {description}").trim_end_matches(": ").to_string(),
            ));
        }
        if !(200..300).contains(&status) {
            return Err(ApiError::Upstream {
                status,
                path: path.into(),
                body: text,
            });
        }
        let access_token =
            json["access_token"]
                .as_str()
                .filter(|t| !t.is_empty())
                .ok_or_else(|| ApiError::Unexpected {
                    path: path.into(),
                    error: "no access_token in the answer".into(),
                })?;
        Ok(Refreshed {
            access_token: access_token.to_string(),
            refresh_token: json["refresh_token"].as_str().map(str::to_string),
            expires_in: json["expires_in"].as_u64(),
        })
    }
}

/// The wait a 429 asks for: `Retry-After` in seconds (clamped to a day).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Duration {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_RETRY_AFTER)
        .min(MAX_RETRY_AFTER)
}

/// The start of an error body, for a message.
async fn body_text(response: reqwest::Response) -> String {
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
}
