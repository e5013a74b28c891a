//! The projection interface a concept sees: an ordered key-value space of its own.
//!
//! Keys are relative to the concept (the store adds the concept's namespace), so a concept can
//! neither read nor write another concept's rows. Reads outside a commit see committed state;
//! reads inside a commit ([`ProjectionTxn`]) also see the commit's own pending writes.
//!
//! Rows come back as [`Bytes`]: shared buffers the store hands out without copying, so a query
//! that reads a large chunk reads it in place.

pub use bytes::Bytes;

use crate::chunked::MapCache;

/// A failure of the underlying store (I/O, corruption). Never a refusal of an action.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StoreFault(pub String);

impl StoreFault {
    pub fn new(e: impl std::fmt::Display) -> Self {
        StoreFault(e.to_string())
    }
}

/// Rows as owned (key, value) pairs, in key order (what a store dumps and copies).
pub type Rows = Vec<(Vec<u8>, Vec<u8>)>;

/// Projection rows as read: shared (key, value) buffers, in key order.
pub type Entries = Vec<(Bytes, Bytes)>;

/// Read access to a concept's projection rows and stream heads.
pub trait ProjectionRead {
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>, StoreFault>;

    /// Rows whose key starts with `prefix` and is at least `from` (`from` itself starts with
    /// `prefix`, or is `prefix`), in key order, at most `limit` of them.
    fn scan(&self, prefix: &[u8], from: &[u8], limit: usize) -> Result<Entries, StoreFault>;

    /// The row with the greatest key that starts with `prefix` and is at most `key` (below
    /// `key` when `inclusive` is false), if there is one.
    fn seek_back(&self, prefix: &[u8], key: &[u8], inclusive: bool) -> Result<Option<(Bytes, Bytes)>, StoreFault>;

    /// Every row whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Entries, StoreFault> {
        self.scan(prefix, prefix, usize::MAX)
    }

    /// The current version of an event stream of this concept (0 when it has no events).
    fn stream_version(&self, stream: &str) -> Result<u64, StoreFault>;

    /// Events of one of this concept's streams with a version above `after_version`, in order,
    /// at most `limit`: each event's meta and its data (JSON).
    fn stream_events(&self, stream: &str, after_version: u64, limit: usize)
        -> Result<Vec<StoredEventData>, StoreFault>;
}

/// An event read back from a concept's own stream.
pub type StoredEventData = (crate::EventMeta, Vec<u8>);

/// Read-write access to a concept's projection rows inside one atomic commit (or one batch of a
/// rebuild, which applies many commits' events at once).
pub trait ProjectionTxn: ProjectionRead {
    fn put(&mut self, key: &[u8], value: Vec<u8>);
    fn delete(&mut self, key: &[u8]);

    /// The chunked maps this commit has decoded, kept decoded across its events (see
    /// [`crate::chunked`]), and a reader of the rows beneath them. The store writes the maps'
    /// changed chunks once, when the commit is written.
    fn maps(&mut self) -> (&mut MapCache, &dyn ProjectionRead);
}
