//! What every *source* concept shares — a concept that reads a user's library from an outside
//! service in the background and hands each read on as a system action. This is a library, like
//! `concept-core`, not a concept: it has no spec and names no concept.
//!
//! # The lifecycle a source gets
//!
//! [`SourceConcept<S>`] implements [`concept_core::Concept`] for any [`Source`] `S`:
//!
//! - `connect (userId, ...)` stores the credentials `S::connect` makes of its input (again:
//!   replaces them and clears `needsReauth`); `disconnect (userId)` forgets them and the cursors,
//!   and fails a running read with `DISCONNECTED`.
//! - `fetch (userId, mode?)` starts a read (`NOT_CONNECTED` 404, `NEEDS_REAUTH` 409, and
//!   `RATE_LIMITED` 429 until the last read's `retryAt`); a read already running answers for it
//!   (`running: true`). Without `mode` a read is `full` when there is no confirmed cursor or the
//!   confirmed cursor's full read ([`Source::full_at`]) is older than [`Source::full_every`],
//!   else `incremental`.
//! - `confirm (userId, fetchId)`: the consumer took the read; its pending cursor becomes the
//!   confirmed one, which the next read gets.
//! - The credential fields a source names in [`Source::SECRETS`] are sealed ([`secrets`])
//!   before they enter an event; the system action `rekey (userId)` seals them again with the
//!   current key (`librarycache rotate-key`).
//! - system actions `progressed`, `fetched`, `failed`, `resume`, and [`Source::UPDATE_ACTION`]
//!   when the source has one (a renewed token); queries `_getFetch`, `_getConnection` (what
//!   [`Source::describe`] tells, never a secret), `_getConnections`.
//!
//! The background work ([`worker`]) scans the reads the store shows running, runs one task per
//! user (a read a restart interrupted is started over under the same fetchId), wakes when
//! `connect`/`fetch`/`disconnect` commit, raises progress coalesced (only the newest of several
//! waiting) and ends each read with `fetched` or `failed`.
//!
//! Rate limits ([`session`]): a read waits out a wait of up to [`Source::max_wait`] itself, on
//! the engine's clock, with progress `waiting` until its end; a longer one ends it `failed` with
//! `retryAt` and the pages it had read as a checkpoint in the store, and at `retryAt` the
//! background work raises `resume` and the read goes on from the checkpoint (its pages are
//! answered from it, not asked for again). `fetch` after `retryAt` resumes it too.
//!
//! # Writing a source
//!
//! A source crate keeps only what is its service's: its credentials, its cursor, its settings,
//! its client and the read itself.
//!
//! 1. Types: `Connect` (the `connect` input, with `userId`, `deny_unknown_fields`),
//!    `Credentials` (stored from `connect`; never answered), `Cursor` (what the next read
//!    compares against: it travels in `fetched`), `ConnectionOutput` (`_getConnection`'s answer)
//!    and `Update` (a change the read makes to the stored credentials, or [`NoUpdate`]).
//! 2. `impl Source for MySource`, with `async fn read(&self, job, report)`: read the service
//!    (use [`http::Http`] for GETs with retries, passing it the job's [`ReadJob::session`] on
//!    every call, so rate limits are waited out and pages checkpointed; map its
//!    [`http::HttpError`] to a [`Failure`] with `From`, or a code of your own), call
//!    `report.progress(phase, current, total)` as pages come, and return an [`Outcome`] in
//!    LibraryCache's shapes (`complete: true` when the read holds the whole library, `mode` what
//!    it did). A read must be a function of its job and of the answers it gets (no time but
//!    `job.now`, no randomness): a resumed read is the same read replayed from its checkpoint.
//! 3. `pub type MySourceConcept = SourceConcept<MySource>;`, registered with `Typed::new`.
//! 4. A spec `MySource.concept` beside the crate's Cargo.toml, and a sync file that turns
//!    `fetched` into the cache's actions and then `confirm` (see `syncs/spotify.sync`).
//!
//! ```ignore
//! impl Source for MySource {
//!     const NAME: &'static str = "MySource";
//!     const SERVICE: &'static str = "My service";
//!     type Connect = ConnectInput;
//!     type Credentials = Credentials;
//!     type Update = NoUpdate;
//!     type Cursor = Cursor;
//!     type ConnectionOutput = ConnectionOutput;
//!     fn connect(&self, i: ConnectInput) -> Result<(String, Credentials), ActionError> { ... }
//!     fn describe(&self, user: &str, c: &Connection<Credentials>) -> ConnectionOutput { ... }
//!     fn full_at(c: &Cursor) -> Option<&str> { c.full_at.as_deref() }
//!     fn full_every(&self) -> chrono::Duration { self.settings.full_every }
//!     async fn read(&self, job: ReadJob<Credentials, Cursor>, report: Reporter<NoUpdate>)
//!         -> Result<Outcome<Cursor>, Failure> { ... }
//! }
//! ```

// The kit's inside: a source crate sees only what is re-exported below and the HTTP client.
mod apply;
mod concept;
mod decide;
mod events;
pub mod http;
mod model;
mod queries;
mod read;
mod rows;
mod secrets;
mod session;
mod worker;

pub use concept::SourceConcept;
pub use decide::{check_id, check_time};
pub use model::{Counts, Mode};
pub use read::{Failure, NoUpdate, Outcome, ReadJob, Reporter};
pub use rows::Connection;
pub use secrets::{KeyError, SecretKey, Secrets, SecretsError};
pub use session::{Session, DEFAULT_MAX_WAIT, MAX_THROTTLED};

use concept_core::ActionError;
use schemars::JsonSchema;
use serde::{de::DeserializeOwned, Serialize};
use std::fmt::Debug;
use std::future::Future;

/// A source: what a [`SourceConcept`] needs to know about the service it reads.
pub trait Source: Send + Sync + Sized + 'static {
    /// The concept's name, e.g. `SpotifySource`.
    const NAME: &'static str;
    /// The service as messages name it, e.g. `Spotify`.
    const SERVICE: &'static str;
    /// The system action through which a read updates the stored credentials (its input is
    /// `userId` plus the fields of [`Source::Update`]), if the source has one.
    const UPDATE_ACTION: Option<&'static str> = None;
    /// The fields of [`Source::Credentials`] and [`Source::Update`] (camelCase, as serialized)
    /// that hold secrets: sealed before they enter an event ([`secrets`]), opened for the read.
    const SECRETS: &'static [&'static str] = &[];

    /// `connect`'s input, `userId` included.
    type Connect: DeserializeOwned + JsonSchema + Clone + Send + Sync + 'static;
    /// What `connect` stores and each read gets. A JSON object (its fields are kept beside
    /// `connectedAt` and `needsReauth` in the connection row).
    type Credentials: Serialize + DeserializeOwned + Clone + Debug + PartialEq + Send + Sync + 'static;
    /// A change a read makes to the credentials (a JSON object), or [`NoUpdate`].
    type Update: Serialize + DeserializeOwned + JsonSchema + Clone + Debug + PartialEq + Send + Sync + 'static;
    /// What a read leaves for the next one to compare against.
    type Cursor: Serialize + DeserializeOwned + JsonSchema + Clone + Debug + PartialEq + Send + Sync + 'static;
    /// `_getConnection`'s answer: never a secret.
    type ConnectionOutput: Serialize + JsonSchema + Send + Sync + 'static;

    /// Checks `connect`'s input: the user and the credentials to store (the user id is checked
    /// by the kit).
    fn connect(&self, input: Self::Connect) -> Result<(String, Self::Credentials), ActionError>;

    /// `_getConnection`'s answer for a stored connection.
    fn describe(&self, user: &str, connection: &Connection<Self::Credentials>) -> Self::ConnectionOutput;

    /// Checks an update before it is recorded.
    fn check_update(&self, _update: &Self::Update) -> Result<(), ActionError> {
        Ok(())
    }

    /// Applies a recorded update to the stored credentials.
    fn apply_update(&self, _credentials: &mut Self::Credentials, _update: &Self::Update) {}

    /// When the read that made this cursor last read everything (RFC 3339).
    fn full_at(cursor: &Self::Cursor) -> Option<&str>;

    /// How old the last full read may be before a read without a `mode` is full again.
    fn full_every(&self) -> chrono::Duration;

    /// The longest rate-limit wait a read waits out itself ([`session::DEFAULT_MAX_WAIT`]
    /// unless the source's settings say otherwise); a longer one ends the read with `retryAt`
    /// and a checkpoint.
    fn max_wait(&self) -> std::time::Duration {
        session::DEFAULT_MAX_WAIT
    }

    /// One read of the user's library. Runs in the background; may take long; reports progress
    /// and credential updates through `report` and ends with the read or why it failed.
    fn read(
        &self,
        job: ReadJob<Self::Credentials, Self::Cursor>,
        report: Reporter<Self::Update>,
    ) -> impl Future<Output = Result<Outcome<Self::Cursor>, Failure>> + Send;
}
