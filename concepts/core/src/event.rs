//! Events: what an action appends to a stream, and the envelope the store gives them back with.

use chrono::{DateTime, Utc};

/// The version a stream must be at for an append to succeed (optimistic concurrency).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Exactly this version (0: the stream must not exist yet).
    Exact(u64),
    /// Whatever version it is at.
    Any,
}

/// Where a stored event sits: filled in by the store at commit time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMeta {
    /// Global, gapless, commit-ordered sequence number (starts at 1).
    pub seq: u64,
    /// The stream, without the concept's namespace.
    pub stream: String,
    /// The stream's version after this event (starts at 1).
    pub version: u64,
    /// The event's type name.
    pub kind: String,
    /// The id of the action record that produced it.
    pub action: u64,
    /// The time of the action that produced it.
    pub at: DateTime<Utc>,
}

/// Applies one event to the projections inside its commit.
pub type ApplyFn = Box<dyn FnOnce(&EventMeta, &mut dyn crate::ProjectionTxn) -> Result<(), crate::StoreFault> + Send>;

/// An event waiting to be committed: its encoded form for the log and the function that applies
/// it to the projections inside the commit (the same function a rebuild replays).
pub struct PendingEvent {
    pub kind: String,
    /// The event's data as JSON bytes (the log's format).
    pub data: Vec<u8>,
    pub apply: ApplyFn,
}

impl std::fmt::Debug for PendingEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingEvent")
            .field("kind", &self.kind)
            .field("bytes", &self.data.len())
            .finish()
    }
}

/// Events to append to one stream of a concept.
#[derive(Debug)]
pub struct Append {
    pub stream: String,
    pub expected: ExpectedVersion,
    pub events: Vec<PendingEvent>,
}
