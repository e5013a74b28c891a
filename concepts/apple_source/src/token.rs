//! The developer token: an ES256 JWT (`jsonwebtoken`) signed with the MusicKit private key,
//! `kid` the key id, `iss` the team id, issued at the read's time and valid for
//! [`LIFETIME`]. Each read signs a fresh one (time from the engine's clock), so a token never
//! expires under a running service; a token given at connect is sent as it is.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

/// How long a signed token is valid (Apple accepts up to six months).
pub const LIFETIME: chrono::Duration = chrono::Duration::hours(12);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("`privateKey` is not a MusicKit private key (a PEM PKCS#8 EC P-256 key, the .p8 file's text): {0}")]
    Key(String),
    #[error("the developer token cannot be signed: {0}")]
    Sign(String),
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    iat: i64,
    exp: i64,
}

/// Checks that `pem` is a key a token can be signed with.
pub fn check_key(pem: &str) -> Result<(), TokenError> {
    EncodingKey::from_ec_pem(pem.as_bytes())
        .map(|_| ())
        .map_err(|e| TokenError::Key(e.to_string()))
}

/// A developer token signed at `now`.
pub fn sign(pem: &str, key_id: &str, team_id: &str, now: chrono::DateTime<chrono::Utc>) -> Result<String, TokenError> {
    let key = EncodingKey::from_ec_pem(pem.as_bytes()).map_err(|e| TokenError::Key(e.to_string()))?;
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(key_id.to_string());
    let claims = Claims {
        iss: team_id,
        iat: now.timestamp(),
        exp: (now + LIFETIME).timestamp(),
    };
    jsonwebtoken::encode(&header, &claims, &key).map_err(|e| TokenError::Sign(e.to_string()))
}
