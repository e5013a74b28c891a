//! The AppleLibraryFile concept: a user's Music.app / iTunes library read from the
//! `Library.xml` property list the application exports (or keeps up to date), and read again
//! whenever the file's modification time moves past the watermark of the last read. Each read
//! that reads the file is complete (`fetched` with `complete: true`: it replaces the cached
//! tracks, likes and playlists; plays merge), for syncs to hand to whatever keeps libraries. It
//! names no other concept.
//!
//! Its spec is `AppleLibraryFile.concept` beside this crate's Cargo.toml. The lifecycle (actions,
//! rows, queries, the background worker) is the source kit's ([`source_kit`]); this crate keeps
//! what is the file's: the connection and the watermark ([`model`]), the streaming reader of the
//! property list ([`library_xml`]), the file on disk ([`file`]) and the read with its watermark
//! rule ([`read`]). `librarycache import --format apple-library` uses the same reader.

pub mod file;
pub mod library_xml;
pub mod model;
pub mod read;

use concept_core::ActionError;
use model::*;
use source_kit::{Connection, Failure, NoUpdate, Outcome, ReadJob, Reporter, Source, SourceConcept};

pub const NAME: &str = "AppleLibraryFile";

/// The concept, as the registry holds it.
pub type AppleLibraryFile = SourceConcept<AppleFile>;

/// How the concept reads files.
#[derive(Debug, Clone)]
pub struct Settings {
    /// A read without a `mode` reads the file even when its modification time did not move
    /// once the last read is older than this.
    pub full_every: chrono::Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            full_every: chrono::Duration::hours(24),
        }
    }
}

/// A library file as a source.
pub struct AppleFile {
    settings: Settings,
}

/// The concept reading files as `settings` say.
pub fn concept(settings: Settings) -> AppleLibraryFile {
    SourceConcept::new(AppleFile { settings })
}

/// The longest path accepted.
const MAX_PATH: usize = 4096;

impl Source for AppleFile {
    const NAME: &'static str = NAME;
    const SERVICE: &'static str = "the Apple library file";

    type Connect = ConnectInput;
    type Credentials = Credentials;
    type Update = NoUpdate;
    type Cursor = Cursor;
    type ConnectionOutput = ConnectionOutput;

    fn connect(&self, input: ConnectInput) -> Result<(String, Credentials), ActionError> {
        source_kit::check_id("userId", &input.user_id)?;
        let path = input.path.trim();
        if path.is_empty() {
            return Err(ActionError::invalid("EMPTY_PATH", "`path` must not be empty"));
        }
        if !path.starts_with('/') || path.len() > MAX_PATH || path.chars().any(char::is_control) {
            return Err(ActionError::invalid(
                "INVALID_PATH",
                format!("`path` must be an absolute path of at most {MAX_PATH} bytes without control characters, e.g. \"/Users/alice/Music/Library.xml\""),
            ));
        }
        Ok((input.user_id, Credentials { path: path.to_string() }))
    }

    fn describe(&self, user: &str, conn: &Connection<Credentials>) -> ConnectionOutput {
        ConnectionOutput {
            user_id: user.to_string(),
            path: conn.credentials.path.clone(),
            connected_at: conn.connected_at.clone(),
            needs_reauth: conn.needs_reauth,
        }
    }

    fn full_at(cursor: &Cursor) -> Option<&str> {
        cursor.full_at.as_deref()
    }

    fn full_every(&self) -> chrono::Duration {
        self.settings.full_every
    }

    async fn read(
        &self,
        job: ReadJob<Credentials, Cursor>,
        report: Reporter<NoUpdate>,
    ) -> Result<Outcome<Cursor>, Failure> {
        read::run(job, report).await
    }
}
