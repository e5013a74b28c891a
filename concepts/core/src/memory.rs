//! A concept's projection space in memory, for its unit tests: what a store gives a concept (its
//! rows in key order, its streams' versions, a commit's decoded chunked maps), without a store.
//! A test decides an action over it, applies the events with the concept's `apply` (it is a
//! [`ProjectionTxn`]), then calls [`Memory::commit`] to write the maps' changed chunks, as a
//! store does at the end of a commit.
//!
//! ```
//! use concept_core::memory::Memory;
//! use concept_core::{ProjectionRead, ProjectionTxn};
//!
//! let mut space = Memory::default();
//! space.put(b"user:a", b"1".to_vec());
//! space.commit().expect("written");
//! assert_eq!(space.get(b"user:a").expect("read").as_deref(), Some(&b"1"[..]));
//! assert_eq!(space.next_version("user:a"), 1);
//! ```

use crate::chunked::MapCache;
use crate::{Bytes, Entries, ProjectionRead, ProjectionTxn, StoreFault, StoredEventData};
use std::collections::{BTreeMap, HashMap};

/// Rows in key order (the read side a commit's maps decode from).
#[derive(Default, Debug, Clone, PartialEq)]
pub struct Rows(pub BTreeMap<Vec<u8>, Bytes>);

impl ProjectionRead for Rows {
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>, StoreFault> {
        Ok(self.0.get(key).cloned())
    }

    fn scan(&self, prefix: &[u8], from: &[u8], limit: usize) -> Result<Entries, StoreFault> {
        Ok(self
            .0
            .range(from.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, v)| (Bytes::copy_from_slice(k), v.clone()))
            .collect())
    }

    fn seek_back(&self, prefix: &[u8], key: &[u8], inclusive: bool) -> Result<Option<(Bytes, Bytes)>, StoreFault> {
        let found = if inclusive {
            self.0.range(..=key.to_vec()).next_back()
        } else {
            self.0.range(..key.to_vec()).next_back()
        };
        Ok(found
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (Bytes::copy_from_slice(k), v.clone())))
    }

    fn stream_version(&self, _: &str) -> Result<u64, StoreFault> {
        Ok(0)
    }

    fn stream_events(&self, _: &str, _: u64, _: usize) -> Result<Vec<StoredEventData>, StoreFault> {
        Ok(Vec::new())
    }
}

/// A concept's rows, its streams' versions, a global sequence, and the open commit's maps.
#[derive(Default)]
pub struct Memory {
    /// The rows as written (a test may compare them, or copy some into another space).
    pub rows: Rows,
    cache: MapCache,
    versions: HashMap<String, u64>,
    seq: u64,
}

impl Memory {
    /// Writes the changed chunks of the maps this commit decoded, as a store does at its end.
    pub fn commit(&mut self) -> Result<(), StoreFault> {
        let mut writes = Vec::new();
        self.cache.flush(&self.rows, &mut |k, v| writes.push((k, v)))?;
        for (k, v) in writes {
            match v {
                Some(v) => self.put(&k, v),
                None => self.delete(&k),
            }
        }
        Ok(())
    }

    /// Counts one more event of `stream` and returns its version (1 for the first).
    pub fn next_version(&mut self, stream: &str) -> u64 {
        let version = self.versions.entry(stream.to_string()).or_insert(0);
        *version += 1;
        *version
    }

    /// The next global sequence number (1 for the first), for an event's meta.
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }
}

impl ProjectionRead for Memory {
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>, StoreFault> {
        self.rows.get(key)
    }

    fn scan(&self, prefix: &[u8], from: &[u8], limit: usize) -> Result<Entries, StoreFault> {
        self.rows.scan(prefix, from, limit)
    }

    fn seek_back(&self, prefix: &[u8], key: &[u8], inclusive: bool) -> Result<Option<(Bytes, Bytes)>, StoreFault> {
        self.rows.seek_back(prefix, key, inclusive)
    }

    fn stream_version(&self, stream: &str) -> Result<u64, StoreFault> {
        Ok(self.versions.get(stream).copied().unwrap_or(0))
    }

    fn stream_events(&self, _: &str, _: u64, _: usize) -> Result<Vec<StoredEventData>, StoreFault> {
        Ok(Vec::new())
    }
}

impl ProjectionTxn for Memory {
    fn put(&mut self, key: &[u8], value: Vec<u8>) {
        self.rows.0.insert(key.to_vec(), Bytes::from(value));
    }

    fn delete(&mut self, key: &[u8]) {
        self.rows.0.remove(key);
    }

    fn maps(&mut self) -> (&mut MapCache, &dyn ProjectionRead) {
        (&mut self.cache, &self.rows)
    }
}
