//! The event store: an append-only log of concept events, stream heads, projection rows and the
//! engine's records, all behind one small trait so back-ends can be swapped without touching a
//! concept. `sled` is the embedded default; `postgres` keeps the same semantics on a PostgreSQL
//! database that several service instances share; `spec` chooses between them; `commit` is the
//! commit algorithm both run (each keeps only its locking and writing); `keys` the key encodings
//! both share.
//!
//! One [`Commit`] is one action: its events (appended with an expected stream version), the
//! projection rows their apply functions derive, the gapless global sequence, the action record
//! and any engine rows (fire-once guards, idempotency keys) — written atomically, or not at all.
//!
//! The engine's records can be thinned with [`Store::compact`] under a [`Retention`]; the
//! concepts' events are never compacted.

mod commit;
pub mod keys;
pub mod lease;
pub mod postgres;
pub mod record;
pub mod sled;
mod spec;

pub use commit::Counters;
pub use lease::Lease;
pub use postgres::PgStore;
pub use record::{ActionRecord, StoredEvent};
pub use sled::{SledOptions, SledStore};
pub use spec::StoreSpec;

use chrono::{DateTime, Utc};
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
    /// The embedded store at this directory has the first layout, which this build reads only to
    /// upgrade it.
    #[error("the store at {0} has the first storage layout; run `librarycache upgrade --data {0}` to move it to the current one (the old files are kept beside it)")]
    OldLayout(String),
    /// The store itself failed (I/O, corruption, a projection apply fault).
    #[error("store failure: {0}")]
    Fault(#[from] StoreFault),
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
    /// The time of the action (its events' `at`).
    pub at: DateTime<Utc>,
    pub appends: Vec<Append>,
    /// The engine's record of the action (its id and event range are filled in by the store).
    pub record: Option<ActionRecord>,
    /// Engine rows to write; each must not exist yet (a conflict otherwise). A fire guard's
    /// value is set to the id of the commit's action record.
    pub guarded_rows: Vec<(EngineKey, Vec<u8>)>,
}

impl Commit {
    /// Whether an answer promises this commit to survive a crash: it appends events (a state
    /// change) or remembers an idempotency key. A commit of records only (a read through
    /// `Requesting`) does not; see [`Store::wait_changes_durable`].
    pub fn changes_state(&self) -> bool {
        !self.appends.is_empty()
            || self
                .guarded_rows
                .iter()
                .any(|(key, _)| matches!(key, EngineKey::Idempotency(_)))
    }
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
    /// Returns once every commit so far that [changed state](Commit::changes_state) is on disk:
    /// all that a read may have seen. Commits of records only do not make it flush.
    fn wait_changes_durable(&self) -> Result<(), StoreError>;
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
    /// Removes the action records of whole old flows under `retention`, judged at `now`.
    ///
    /// Only the engine's history is compacted: action records (`R`), their flow-index rows
    /// (`F`) and fire-once guards (`X`). The concepts' events, stream indexes, heads,
    /// projections and checkpoints (`L`, `S`, `H`, `P`, `C`) and idempotency keys (`I`) are
    /// never touched, so the log, every projection and a rebuild are the same afterwards.
    ///
    /// **Boundary.** The smallest action id that must be kept is the least of
    /// - the id of the first record (in id order) whose `at` is at or after `now - max_age`
    ///   (one past the last action id when every record is older), when `max_age` is set;
    /// - `last_action_id - max_actions + 1`, when `max_actions` is set (so the newest
    ///   `max_actions` ids are kept);
    /// - the first record id of every flow with records on both sides of the boundary, applied
    ///   until no flow straddles it: flows are kept or removed whole, which can keep more than
    ///   `max_actions` records.
    ///
    /// A record is thus kept when either rule keeps it (and a record after the first young one
    /// is kept even if its own `at` is older). A negative `max_age` counts as zero. Every record
    /// with an id below the boundary is deleted with its flow-index row, and so is every fire
    /// guard whose largest matched action id is below the boundary (a guard with no matched ids
    /// is kept). Events keep the id of the action that appended them, which may then have no
    /// record; [`Store::stats`]`.actions` still counts every action ever committed.
    ///
    /// The last action id (`G`) is unchanged, so ids are never reused: the next action gets a
    /// larger id than any compacted one. The deletes are applied in batches of a few thousand
    /// keys, each under the writer lock; a record and its flow-index row always go in the same
    /// batch. The whole is not one atomic write, but an interrupted compaction leaves only
    /// records that the same retention would delete, and running it again finishes the job.
    /// A flow that is still cascading while compaction runs is kept whole only if its newer
    /// records are committed before the flow is examined; keep `max_age` and `max_actions` well
    /// beyond the length of a flow.
    ///
    /// [`Retention::default`] keeps everything: nothing is read or written and the report is
    /// all zeros.
    fn compact(&self, retention: &Retention, now: DateTime<Utc>) -> Result<CompactReport, StoreError>;

    /// Action records with an id above `after`, in id order, at most `limit` (for `migrate`).
    fn read_records(&self, after: u64, limit: usize) -> Result<Vec<ActionRecord>, StoreError>;
    /// Engine rows (fire-once guards and idempotency keys) with a key above `after`, in key
    /// order, at most `limit`: each row's key as the sled store lays it out and its value.
    fn read_engine_rows(&self, after: &[u8], limit: usize) -> Result<concept_core::Rows, StoreError>;
    /// Writes a copy of another store's log, records and engine rows, atomically (for
    /// `migrate`). The events must continue this store's log (the first one's seq is one past its
    /// last); stream heads follow the events; projections are not touched (rebuild afterwards).
    fn import(&self, copy: Import) -> Result<(), StoreError>;

    /// Tries to take the lease `name` (see [`lease`]): `Ok(None)` while another process holds
    /// it. A store only one process can open grants every lease.
    fn lease(&self, _name: &str) -> Result<Option<Lease>, StoreError> {
        Ok(Some(Lease::local()))
    }
}

/// One batch of a copy between stores (see [`Store::import`]).
#[derive(Debug, Default)]
pub struct Import {
    pub events: Vec<StoredEvent>,
    pub records: Vec<ActionRecord>,
    /// Raw engine rows as [`Store::read_engine_rows`] returns them.
    pub engine_rows: concept_core::Rows,
    /// The counters to carry over (each store keeps the larger of its own and these), so the
    /// next action id never reuses a compacted one.
    pub last_seq: u64,
    pub last_action: u64,
}

/// Applies one stored event of a concept to that concept's projections (the rebuild callback).
pub type RebuildFn<'a> = dyn Fn(&str, &EventMeta, &[u8], &mut dyn ProjectionTxn) -> Result<(), StoreFault> + Sync + 'a;

/// How much of the engine's action history [`Store::compact`] keeps. A record is kept when any
/// set rule keeps it; with no rule set (the default) everything is kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep flows with an action at most this old (see [`Store::compact`] for the exact rule).
    pub max_age: Option<chrono::Duration>,
    /// Keep the newest this many actions, rounded up to whole flows.
    pub max_actions: Option<u64>,
}

impl Retention {
    /// True when no rule is set, so compaction keeps everything.
    pub fn keeps_everything(&self) -> bool {
        self.max_age.is_none() && self.max_actions.is_none()
    }

    /// Parses an age with the one duration grammar of the service
    /// (`concept_core::time::parse_duration`: `30d`, `12h`, `90m`, `45s`, `500ms`, or bare
    /// seconds), as `every:` in a sync or `maxAge` in a query does.
    pub fn parse_age(text: &str) -> Result<chrono::Duration, RetentionError> {
        concept_core::time::parse_duration(text).map_err(|source| RetentionError::BadAge {
            text: text.to_string(),
            source,
        })
    }
}

/// Why a retention setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetentionError {
    /// Not a duration of the service's one grammar.
    #[error("{text:?} is not an age like 30d, 12h, 90m, 45s or 90 (seconds): {source}")]
    BadAge {
        text: String,
        source: concept_core::time::DurationError,
    },
}

/// What one [`Store::compact`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CompactReport {
    /// Action records deleted (each with its flow-index row).
    pub records: u64,
    /// Distinct flows those records belonged to.
    pub flows: u64,
    /// Fire-once guards deleted.
    pub guards: u64,
    /// The smallest action id kept (0 when compaction kept everything without looking).
    pub boundary: u64,
}
