//! Which store to open: a `postgres://` (or `postgresql://`) URL chooses PostgreSQL, anything
//! else is the directory of the embedded sled store (optionally written `sled:<dir>`). The one
//! place the CLI, the server and the tests turn a `--store`/`--data` setting into a store.

use super::{PgStore, SledOptions, SledStore, Store, StoreError};
use std::path::PathBuf;
use std::sync::Arc;

/// A store location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// The embedded store in this directory.
    Sled(PathBuf),
    /// A PostgreSQL database URL.
    Postgres(String),
}

impl StoreSpec {
    /// Reads a `--store` value.
    pub fn parse(text: &str) -> StoreSpec {
        let t = text.trim();
        if t.starts_with("postgres://") || t.starts_with("postgresql://") {
            StoreSpec::Postgres(t.to_string())
        } else {
            StoreSpec::Sled(PathBuf::from(t.strip_prefix("sled:").unwrap_or(t)))
        }
    }

    /// Opens (creating if needed) the store.
    pub fn open(&self) -> Result<Arc<dyn Store>, StoreError> {
        self.open_with(&SledOptions::default())
    }

    /// Opens the store, the embedded one with `options`.
    pub fn open_with(&self, options: &SledOptions) -> Result<Arc<dyn Store>, StoreError> {
        Ok(match self {
            StoreSpec::Sled(dir) => Arc::new(SledStore::open_with(dir, options)?),
            StoreSpec::Postgres(url) => Arc::new(PgStore::open(url)?),
        })
    }

    /// Whether this is a PostgreSQL store.
    pub fn is_postgres(&self) -> bool {
        matches!(self, StoreSpec::Postgres(_))
    }
}

impl std::fmt::Display for StoreSpec {
    /// The location for messages (a URL's password is not shown).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreSpec::Sled(dir) => write!(f, "{}", dir.display()),
            StoreSpec::Postgres(url) => f.write_str(&super::postgres::redact(url)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_postgres_url_is_shown_without_its_password() {
        for (url, shown) in [
            ("postgres://u:secret@db:5432/lc", "postgres://u:***@db:5432/lc"),
            ("postgres://u@db/lc?password=secret&sslmode=disable", "secret"),
        ] {
            let text = StoreSpec::parse(url).to_string();
            assert!(!text.contains("secret"), "{url} is shown as {text}");
            if shown != "secret" {
                assert_eq!(text, shown);
            }
        }
    }
}
