//! The projection interface a concept sees: an ordered key-value space of its own.
//!
//! Keys are relative to the concept (the store adds the concept's namespace), so a concept can
//! neither read nor write another concept's rows. Reads outside a commit see committed state;
//! reads inside a commit ([`ProjectionTxn`]) also see the commit's own pending writes.

/// A failure of the underlying store (I/O, corruption). Never a refusal of an action.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StoreFault(pub String);

impl StoreFault {
    pub fn new(e: impl std::fmt::Display) -> Self {
        StoreFault(e.to_string())
    }
}

/// Rows as (key, value) pairs, in key order.
pub type Rows = Vec<(Vec<u8>, Vec<u8>)>;

/// Read access to a concept's projection rows and stream heads.
pub trait ProjectionRead {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreFault>;
    /// Every row whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Rows, StoreFault>;
    /// The current version of an event stream of this concept (0 when it has no events).
    fn stream_version(&self, stream: &str) -> Result<u64, StoreFault>;
    /// Events of one of this concept's streams with a version above `after_version`, in order,
    /// at most `limit`: each event's meta and its data (JSON).
    fn stream_events(&self, stream: &str, after_version: u64, limit: usize)
        -> Result<Vec<StoredEventData>, StoreFault>;
}

/// An event read back from a concept's own stream.
pub type StoredEventData = (crate::EventMeta, Vec<u8>);

/// Read-write access to a concept's projection rows inside one atomic commit.
pub trait ProjectionTxn: ProjectionRead {
    fn put(&mut self, key: &[u8], value: Vec<u8>);
    fn delete(&mut self, key: &[u8]);
}
