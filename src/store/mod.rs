//! The event store: an append-only log of concept events, stream heads, projection rows and the
//! engine's records, all behind one small trait so back-ends can be swapped without touching a
//! concept. `sled_store` is the embedded default.
//!
//! One [`Commit`] is one action: its events (appended with an expected stream version), the
//! projection rows their apply functions derive, the gapless global sequence, the action record
//! and any engine rows (fire-once guards, idempotency keys) — written atomically, or not at all.

mod group_flush;
mod keys;
mod overlay;
pub mod record;
mod sled_store;

pub use record::{ActionRecord, StoredEvent};
pub use sled_store::SledStore;

use concept_core::{Append, EventMeta, ProjectionRead, ProjectionTxn, StoreFault};

/// Why a commit or read failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The stream is not at the version the action expected: someone else wrote first.
    #[error("stream {concept}/{stream} is at version {actual}, not the expected {expected}")]
    VersionConflict {
        concept: String,
        stream: String,
        expected: u64,
        actual: u64,
    },
    /// A row that must not exist yet does (a sync already fired for these actions, an
    /// idempotency key already used).
    #[error("{0} already exists")]
    GuardExists(EngineKey),
    /// The store's directory is locked by another process (another `serve` on the same data).
    #[error("the store at {0} is in use by another process (is another librarycache serving it?)")]
    InUse(String),
    /// The store itself failed (I/O, corruption, a projection apply fault).
    #[error("store failure: {0}")]
    Fault(#[from] StoreFault),
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Fault(StoreFault::new(e))
    }
}

/// Rows the engine keeps beside the concepts' data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineKey {
    /// The fire-once guard of a sync over one combination of matched actions.
    ///
    /// `matched` are the ids of the actions the sync's `when` patterns matched, in pattern order;
    /// `step` numbers the invocations of one firing (binding × `then` action), so each fired
    /// action carries its own guard and the first one (`step` 0) marks the combination as fired.
    FireGuard { sync: String, matched: Vec<u64>, step: u32 },
    /// The remembered answer to a request sent with an `Idempotency-Key` header.
    Idempotency(String),
}

impl std::fmt::Display for EngineKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EngineKey::FireGuard { sync, matched, step } => {
                write!(f, "the firing of sync {sync} for actions {matched:?} (step {step})")
            }
            EngineKey::Idempotency(key) => write!(f, "idempotency key {key:?}"),
        }
    }
}

/// Everything one action writes.
#[derive(Debug, Default)]
pub struct Commit {
    /// The concept whose streams and projections the appends belong to.
    pub concept: String,
    pub appends: Vec<Append>,
    /// The engine's record of the action (its id and event range are filled in by the store).
    pub record: Option<ActionRecord>,
    /// Engine rows to write; each must not exist yet (a conflict otherwise). A fire guard's
    /// value is set to the id of the commit's action record.
    pub guarded_rows: Vec<(EngineKey, Vec<u8>)>,
}

/// What a commit did: the ids it was given and how much it wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Receipt {
    /// The id of the action record (0 when the commit had none).
    pub action: u64,
    /// The global sequence numbers of its first and last event (0, 0 when it had none).
    pub first_seq: u64,
    pub last_seq: u64,
    /// Events appended.
    pub events: usize,
    /// Projection rows written or deleted.
    pub projection_rows: usize,
    /// Bytes of event data and projection rows written.
    pub bytes: usize,
    /// The commit generation, for [`Store::wait_durable`].
    pub generation: u64,
}

/// Counts over the whole store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub last_seq: u64,
    pub actions: u64,
    pub projection_rows: u64,
}

/// A store back-end.
pub trait Store: Send + Sync + 'static {
    /// Read access to one concept's projections.
    fn view<'a>(&'a self, concept: &str) -> Box<dyn ProjectionRead + 'a>;
    /// Commits one action atomically. Does not wait for durability: see [`Store::wait_durable`].
    fn commit(&self, commit: Commit) -> Result<Receipt, StoreError>;
    /// Returns once every commit up to `generation` is on disk. Concurrent callers share flushes.
    fn wait_durable(&self, generation: u64) -> Result<(), StoreError>;
    /// Events with a global sequence above `after`, in order, at most `limit`.
    fn read_log(&self, after: u64, limit: usize) -> Result<Vec<StoredEvent>, StoreError>;
    /// Events of one stream of a concept with a version above `after_version`, in order.
    fn read_stream(&self, concept: &str, stream: &str, after_version: u64) -> Result<Vec<StoredEvent>, StoreError>;
    /// The last global sequence number (0 when the log is empty).
    fn last_seq(&self) -> Result<u64, StoreError>;
    /// One action record.
    fn action(&self, id: u64) -> Result<Option<ActionRecord>, StoreError>;
    /// The records of one flow, in order.
    fn flow(&self, flow: uuid::Uuid) -> Result<Vec<ActionRecord>, StoreError>;
    /// An engine row, if it exists.
    fn engine_row(&self, key: &EngineKey) -> Result<Option<Vec<u8>>, StoreError>;
    /// Drops every projection row and checkpoint, then replays the whole log through `apply`.
    /// Returns the number of events replayed.
    fn rebuild(&self, apply: &RebuildFn<'_>) -> Result<u64, StoreError>;
    /// Every projection row and checkpoint, in key order (for comparing live and rebuilt state).
    fn projection_dump(&self) -> Result<concept_core::Rows, StoreError>;
    /// Counts over the whole store.
    fn stats(&self) -> Result<StoreStats, StoreError>;
}

/// Applies one stored event of a concept to that concept's projections (the rebuild callback).
pub type RebuildFn<'a> = dyn Fn(&str, &EventMeta, &[u8], &mut dyn ProjectionTxn) -> Result<(), StoreFault> + Sync + 'a;
