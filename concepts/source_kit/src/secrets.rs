//! Credentials at rest: every field a [`crate::Source`] names in [`crate::Source::SECRETS`] is
//! sealed with XChaCha20-Poly1305 (an authenticated cipher) before it enters an event, so the
//! events, the rows rebuilt from them and any copy of the store (`migrate`, a backup) hold
//! ciphertext only. The background read opens them just before it calls the service.
//!
//! A sealed value is a string `$sealed:v1:{key id}:{base64(nonce ‖ ciphertext ‖ tag)}`: the key
//! id (16 hex digits of a SHA-256 of the key) names the key it needs, so a missing or wrong key
//! is told apart from a damaged value. The associated data binds each value to its concept,
//! user and field: a ciphertext copied into another user's connection does not open. Values
//! written before sealing existed (plain strings) are read as they are.
//!
//! The key never comes from here: `main` reads it (`--secrets-key-file`,
//! `LIBRARYCACHE_SECRETS_KEY`, or the file it generates in the data directory) and hands it to
//! the concepts through [`Secrets`]. A concept built without one gets an ephemeral key (one
//! process: traces and tests).

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The prefix of a sealed value (and its format version).
pub const SEALED_PREFIX: &str = "$sealed:v1:";

const NONCE_LEN: usize = 24;

/// A 256-bit key.
#[derive(Clone)]
pub struct SecretKey {
    bytes: [u8; 32],
    id: String,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({})", self.id)
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        // Best effort: overwrite the key before its memory is freed (`black_box` keeps the
        // optimiser from dropping writes nothing reads). Copies the cipher made are not reached.
        for b in self.bytes.iter_mut() {
            *b = std::hint::black_box(0);
        }
    }
}

/// Why a key cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a secrets key: {0} (expected 64 hexadecimal digits: 32 random bytes)")]
pub struct KeyError(pub String);

impl SecretKey {
    /// A new random key (from the operating system's generator).
    pub fn generate() -> Self {
        let key = XChaCha20Poly1305::generate_key(&mut OsRng);
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(key.as_slice());
        Self::from_bytes(bytes)
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let digest = Sha256::new()
            .chain_update(b"librarycache secrets key id\0")
            .chain_update(bytes)
            .finalize();
        let id = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        SecretKey { bytes, id }
    }

    /// Reads a key written as 64 hexadecimal digits (surrounding white space ignored).
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        if text.len() != 64 {
            return Err(KeyError(format!("{} characters", text.len())));
        }
        let mut bytes = [0u8; 32];
        for (i, pair) in text.as_bytes().chunks(2).enumerate() {
            let digits = std::str::from_utf8(pair).map_err(|_| KeyError("not ASCII".into()))?;
            bytes[i] =
                u8::from_str_radix(digits, 16).map_err(|_| KeyError(format!("{digits:?} is not hexadecimal")))?;
        }
        Ok(Self::from_bytes(bytes))
    }

    /// The key as 64 hexadecimal digits (what a key file holds).
    pub fn to_hex(&self) -> String {
        self.bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The key's id: 16 hexadecimal digits naming it (not revealing it) in sealed values and
    /// messages.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// Why a secret cannot be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsError {
    #[error("no secrets key is configured (--secrets-key-file or LIBRARYCACHE_SECRETS_KEY)")]
    NoKey,
    #[error(
        "`{field}` was sealed with the secrets key {sealed_with}, which this service does not have (its key is {have}): \
         start it with that key (--secrets-key-file or LIBRARYCACHE_SECRETS_KEY), or connect again"
    )]
    WrongKey {
        field: String,
        sealed_with: String,
        have: String,
    },
    #[error("`{field}` is sealed but does not open with the key {key}: it was damaged or belongs to another user")]
    Damaged { field: String, key: String },
    #[error("the credentials do not have the shape their source expects: {0}")]
    Shape(String),
}

impl SecretsError {
    /// The code a read or an action fails with.
    pub fn code(&self) -> &'static str {
        match self {
            SecretsError::NoKey => "SECRETS_KEY_MISSING",
            SecretsError::WrongKey { .. } => "SECRETS_KEY_MISMATCH",
            SecretsError::Damaged { .. } | SecretsError::Shape(_) => "SECRETS_UNREADABLE",
        }
    }
}

/// Where a sealed value belongs: its associated data.
fn aad(concept: &str, user: &str, field: &str) -> Vec<u8> {
    format!("librarycache sealed v1\0{concept}\0{user}\0{field}").into_bytes()
}

/// The keys a process seals and opens credentials with: one current key (sealing) and older
/// ones it may still open (during `rotate-key`).
#[derive(Clone)]
pub struct Secrets {
    current: Option<Arc<SecretKey>>,
    previous: Vec<Arc<SecretKey>>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("current", &self.current.as_ref().map(|k| k.id()))
            .field("previous", &self.previous.iter().map(|k| k.id()).collect::<Vec<_>>())
            .finish()
    }
}

impl Default for Secrets {
    /// An ephemeral key: sealed values open in this process only (traces, tests, one-shot
    /// commands that never read a source). `serve` and `fetch` are given the real key.
    fn default() -> Self {
        Secrets::new(SecretKey::generate())
    }
}

impl Secrets {
    pub fn new(key: SecretKey) -> Self {
        Secrets {
            current: Some(Arc::new(key)),
            previous: Vec::new(),
        }
    }

    /// No key at all: sealing is refused and sealed values do not open.
    pub fn none() -> Self {
        Secrets {
            current: None,
            previous: Vec::new(),
        }
    }

    /// Also opens values sealed with `key` (the key being rotated away from).
    pub fn with_previous(mut self, key: SecretKey) -> Self {
        self.previous.push(Arc::new(key));
        self
    }

    /// The current key's id.
    pub fn key_id(&self) -> Option<&str> {
        self.current.as_deref().map(SecretKey::id)
    }

    /// The key id a stored value was sealed with (None: a plain value).
    pub fn sealed_with(stored: &str) -> Option<&str> {
        stored.strip_prefix(SEALED_PREFIX)?.split_once(':').map(|(id, _)| id)
    }

    /// Seals `plain` for `field` of `user`'s connection to `concept`.
    pub fn seal(&self, concept: &str, user: &str, field: &str, plain: &str) -> Result<String, SecretsError> {
        let key = self.current.as_deref().ok_or(SecretsError::NoKey)?;
        let cipher = XChaCha20Poly1305::new(Key::from_slice(&key.bytes));
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = aad(concept, user, field);
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plain.as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| SecretsError::Damaged {
                field: field.to_string(),
                key: key.id().to_string(),
            })?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Ok(format!(
            "{SEALED_PREFIX}{}:{}",
            key.id(),
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
        ))
    }

    /// Opens a stored value: a sealed one with the key it names, a plain one (stored before
    /// sealing existed) as it is.
    pub fn open(&self, concept: &str, user: &str, field: &str, stored: &str) -> Result<String, SecretsError> {
        let Some(rest) = stored.strip_prefix(SEALED_PREFIX) else {
            return Ok(stored.to_string());
        };
        let damaged = |key: &str| SecretsError::Damaged {
            field: field.to_string(),
            key: key.to_string(),
        };
        let (id, data) = rest.split_once(':').ok_or_else(|| damaged("(none named)"))?;
        let key = self
            .current
            .iter()
            .chain(self.previous.iter())
            .find(|k| k.id() == id)
            .ok_or_else(|| match self.key_id() {
                None => SecretsError::NoKey,
                Some(have) => SecretsError::WrongKey {
                    field: field.to_string(),
                    sealed_with: id.to_string(),
                    have: have.to_string(),
                },
            })?;
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(data)
            .map_err(|_| damaged(id))?;
        if bytes.len() < NONCE_LEN {
            return Err(damaged(id));
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let cipher = XChaCha20Poly1305::new(Key::from_slice(&key.bytes));
        let aad = aad(concept, user, field);
        let plain = cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad: &aad })
            .map_err(|_| damaged(id))?;
        String::from_utf8(plain).map_err(|_| damaged(id))
    }

    /// `value` (a JSON object: credentials or an update) with each of `fields` that holds a
    /// plain string sealed.
    pub fn seal_fields<T: Serialize + DeserializeOwned>(
        &self,
        concept: &str,
        user: &str,
        fields: &[&str],
        value: &T,
    ) -> Result<T, SecretsError> {
        self.map_fields(value, fields, |field, text| {
            if text.starts_with(SEALED_PREFIX) {
                Ok(text.to_string())
            } else {
                self.seal(concept, user, field, text)
            }
        })
    }

    /// `value` with each of `fields` opened (plain values as they are).
    pub fn open_fields<T: Serialize + DeserializeOwned>(
        &self,
        concept: &str,
        user: &str,
        fields: &[&str],
        value: &T,
    ) -> Result<T, SecretsError> {
        self.map_fields(value, fields, |field, text| self.open(concept, user, field, text))
    }

    /// Whether every one of `fields` in `value` is sealed with the current key (a plain value,
    /// or one sealed with another key, needs sealing again).
    pub fn is_current<T: Serialize>(&self, fields: &[&str], value: &T) -> bool {
        let Ok(Value::Object(map)) = serde_json::to_value(value) else {
            return false;
        };
        fields.iter().all(|field| match map.get(*field) {
            Some(Value::String(text)) => Self::sealed_with(text).is_some() && Self::sealed_with(text) == self.key_id(),
            _ => true,
        })
    }

    fn map_fields<T: Serialize + DeserializeOwned>(
        &self,
        value: &T,
        fields: &[&str],
        mut change: impl FnMut(&str, &str) -> Result<String, SecretsError>,
    ) -> Result<T, SecretsError> {
        let mut json = serde_json::to_value(value).map_err(|e| SecretsError::Shape(e.to_string()))?;
        if let Value::Object(map) = &mut json {
            for field in fields {
                if let Some(Value::String(text)) = map.get_mut(*field) {
                    *text = change(field, text)?;
                }
            }
        }
        serde_json::from_value(json).map_err(|e| SecretsError::Shape(e.to_string()))
    }

    /// Every secret value of `value` opened, for hiding them in messages.
    pub fn plain_values<T: Serialize>(fields: &[&str], value: &T) -> Vec<String> {
        let Ok(Value::Object(map)) = serde_json::to_value(value) else {
            return Vec::new();
        };
        fields
            .iter()
            .filter_map(|f| map.get(*f).and_then(Value::as_str))
            .filter(|v| !v.starts_with(SEALED_PREFIX))
            .map(str::to_string)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sealed_values_open_with_their_key_only_and_for_their_place_only() {
        let secrets = Secrets::new(SecretKey::generate());
        let sealed = secrets
            .seal("LastfmSource", "u", "apiKey", "0123456789abcdef")
            .expect("seals");
        assert!(sealed.starts_with(SEALED_PREFIX));
        assert!(!sealed.contains("0123456789abcdef"));
        assert_eq!(Secrets::sealed_with(&sealed), secrets.key_id());
        assert_eq!(
            secrets.open("LastfmSource", "u", "apiKey", &sealed).expect("opens"),
            "0123456789abcdef"
        );
        // Two seals of one value differ (a fresh nonce each).
        assert_ne!(
            sealed,
            secrets
                .seal("LastfmSource", "u", "apiKey", "0123456789abcdef")
                .expect("seals")
        );
        // Another user's, field's or concept's place does not open it.
        for (c, u, f) in [
            ("LastfmSource", "v", "apiKey"),
            ("LastfmSource", "u", "username"),
            ("PlexSource", "u", "apiKey"),
        ] {
            let e = secrets.open(c, u, f, &sealed).expect_err("bound to its place");
            assert_eq!(e.code(), "SECRETS_UNREADABLE", "{e}");
        }
        // Another key: named clearly.
        let other = Secrets::new(SecretKey::generate());
        let e = other
            .open("LastfmSource", "u", "apiKey", &sealed)
            .expect_err("wrong key");
        assert_eq!(e.code(), "SECRETS_KEY_MISMATCH");
        assert!(e.to_string().contains(secrets.key_id().expect("id")), "{e}");
        assert_eq!(
            Secrets::none()
                .open("LastfmSource", "u", "apiKey", &sealed)
                .expect_err("no key")
                .code(),
            "SECRETS_KEY_MISSING"
        );
        // A damaged value.
        let mut damaged = sealed.clone();
        damaged.pop();
        damaged.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(
            secrets
                .open("LastfmSource", "u", "apiKey", &damaged)
                .expect_err("damaged")
                .code(),
            "SECRETS_UNREADABLE"
        );
        // A plain value from before sealing reads as it is.
        assert_eq!(
            secrets.open("LastfmSource", "u", "apiKey", "plain").expect("plain"),
            "plain"
        );
        // A previous key still opens, the current one seals.
        let rotated = Secrets::new(SecretKey::generate()).with_previous(SecretKey::parse(&"00".repeat(32)).expect("k"));
        let old = Secrets::new(SecretKey::parse(&"00".repeat(32)).expect("k"));
        let sealed_old = old.seal("S", "u", "token", "t0ken").expect("seals");
        assert_eq!(rotated.open("S", "u", "token", &sealed_old).expect("opens"), "t0ken");
    }

    #[test]
    fn fields_are_sealed_and_opened_by_name() {
        let secrets = Secrets::default();
        let creds = json!({"username": "rj", "apiKey": "0123456789abcdef", "lovedTracks": true});
        let sealed = secrets
            .seal_fields("LastfmSource", "u", &["apiKey"], &creds)
            .expect("seals");
        assert_eq!(sealed["username"], "rj");
        assert!(sealed["apiKey"].as_str().expect("string").starts_with(SEALED_PREFIX));
        assert!(secrets.is_current(&["apiKey"], &sealed));
        assert!(!secrets.is_current(&["apiKey"], &creds));
        // Sealing again changes nothing; opening gives the original back.
        assert_eq!(
            secrets
                .seal_fields("LastfmSource", "u", &["apiKey"], &sealed)
                .expect("seals"),
            sealed
        );
        assert_eq!(
            secrets
                .open_fields("LastfmSource", "u", &["apiKey"], &sealed)
                .expect("opens"),
            creds
        );
        assert_eq!(Secrets::plain_values(&["apiKey"], &creds), vec!["0123456789abcdef"]);
        assert!(Secrets::plain_values(&["apiKey"], &sealed).is_empty());
    }

    #[test]
    fn keys_read_as_hex_and_name_their_problem() {
        let k = SecretKey::generate();
        let again = SecretKey::parse(&format!("  {}\n", k.to_hex())).expect("parses");
        assert_eq!(again.id(), k.id());
        assert_eq!(k.id().len(), 16);
        assert!(SecretKey::parse("abc")
            .expect_err("short")
            .to_string()
            .contains("3 characters"));
        assert!(SecretKey::parse(&"zz".repeat(32)).is_err());
        assert!(!format!("{k:?}").contains(&k.to_hex()), "Debug does not show the key");
    }
}
