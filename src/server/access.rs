//! Who may call what: the optional bearer token every `/api` call must carry, and which concept
//! actions and queries are reachable directly over HTTP (request paths are always reachable;
//! `Requesting.respond` never is — only syncs answer requests — and neither is a system action,
//! which only its own concept raises).

use super::ApiError;
use axum::http::{header, HeaderMap, StatusCode};

/// The concept actions and queries callable as `POST /api/{Concept}/{action}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposure {
    /// `(concept, None)` exposes every action and query of a concept; `(concept, Some(a))` one.
    rules: Vec<(String, Option<String>)>,
    /// External concepts (`crate::external`): their system actions are callbacks that the
    /// service implementing them raises over HTTP, whatever the rules say.
    callbacks: Vec<String>,
}

/// What `--expose` is when not given.
pub const DEFAULT_EXPOSE: &str =
    "LibraryCache,SpotifySource,Scheduling,PlexSource,LastfmSource,AppleLibraryFile,AppleMusicSource";

/// What nobody may call over HTTP, whatever the configuration says.
const NEVER: &[(&str, &str)] = &[("Requesting", "respond")];

impl Default for Exposure {
    /// LibraryCache's, the sources' and Scheduling's actions and queries (never a system action).
    fn default() -> Self {
        Exposure::parse(DEFAULT_EXPOSE).expect("the default exposure parses")
    }
}

/// An exposure list that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid --expose entry {entry:?}: {why}")]
pub struct ExposureError {
    pub entry: String,
    pub why: &'static str,
}

impl Exposure {
    /// Reads a comma-separated list of `Concept` or `Concept.action` (e.g.
    /// `LibraryCache,SpotifySource.connect`); an empty list exposes nothing.
    pub fn parse(list: &str) -> Result<Self, ExposureError> {
        let mut rules = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let bad = |why| ExposureError {
                entry: entry.to_string(),
                why,
            };
            let (concept, action) = match entry.split_once('.') {
                Some((c, a)) => (c, Some(a)),
                None => (entry, None),
            };
            let valid = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid(concept) || action.is_some_and(|a| !valid(a)) {
                return Err(bad("expected Concept or Concept.action (letters, digits, _)"));
            }
            rules.push((concept.to_string(), action.map(str::to_string)));
        }
        Ok(Exposure {
            rules,
            callbacks: Vec::new(),
        })
    }

    /// The exposure with the callbacks (system actions) of these external concepts reachable:
    /// the services implementing them raise them over HTTP.
    pub fn with_callbacks(mut self, concepts: impl IntoIterator<Item = String>) -> Self {
        self.callbacks.extend(concepts);
        self
    }

    /// Whether `POST /api/{concept}/{action}` may run this action: exposed, and not a system
    /// action (those only their concept raises) unless it is an external concept's callback.
    pub fn allows_spec(&self, concept: &str, action: &concept_core::ActionSpec) -> bool {
        if action.kind == concept_core::ActionKind::System {
            return self.callbacks.iter().any(|c| c == concept);
        }
        self.allows(concept, &action.name)
    }

    pub fn allows(&self, concept: &str, action: &str) -> bool {
        if NEVER.contains(&(concept, action)) {
            return false;
        }
        self.rules
            .iter()
            .any(|(c, a)| c == concept && a.as_deref().map_or(true, |a| a == action))
    }
}

/// The token `/api` calls must present, if one is configured.
#[derive(Clone, Default)]
pub struct Token(Option<String>);

impl Token {
    pub fn new(token: Option<String>) -> Self {
        Token(token.filter(|t| !t.is_empty()))
    }

    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }

    /// Checks `Authorization: Bearer <token>`; comparing in constant time.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(expected) = &self.0 else {
            return Ok(());
        };
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if constant_time_eq(presented.as_bytes(), expected.as_bytes()) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "this service needs `Authorization: Bearer <token>` with its configured token",
            ))
        }
    }
}

/// Compares `presented` with `expected` in time that depends only on `expected`'s length, not
/// on where (or whether) the bytes differ.
fn constant_time_eq(presented: &[u8], expected: &[u8]) -> bool {
    let mut diff = presented.len() ^ expected.len();
    for (i, e) in expected.iter().enumerate() {
        let p = presented.get(i).copied().unwrap_or(0);
        diff |= usize::from(p ^ e);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposure_rules() {
        let e = Exposure::default();
        assert!(e.allows("LibraryCache", "ingest"));
        assert!(e.allows("LibraryCache", "_getLiked"));
        assert!(!e.allows("Requesting", "request"));
        let e = Exposure::parse("LibraryCache._getLiked, Requesting").expect("parses");
        assert!(e.allows("LibraryCache", "_getLiked"));
        assert!(!e.allows("LibraryCache", "ingest"));
        assert!(e.allows("Requesting", "request"));
        assert!(!e.allows("Requesting", "respond"), "respond is never exposed");
        assert!(Exposure::parse("").expect("parses").rules.is_empty());
        let err = Exposure::parse("LibraryCache,bad name").expect_err("invalid");
        assert_eq!(err.entry, "bad name");
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secreT", b"secret"));
        assert!(!constant_time_eq(b"secret-and-more", b"secret"));
        assert!(!constant_time_eq(b"", b"secret"));
        assert!(!constant_time_eq(b"sec", b"secret"));
    }
}
