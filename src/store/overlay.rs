//! A commit's view of the projections: the rows it has written so far over the committed tree,
//! namespaced to one concept. Concepts' apply functions read and write through it.

use super::keys;
use concept_core::{ProjectionRead, ProjectionTxn, StoreFault, StoredEventData};
use std::collections::BTreeMap;

/// Pending writes over a sled tree (keys are absolute).
pub struct Overlay<'t> {
    pub tree: &'t sled::Tree,
    pub pending: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    pub rows_written: usize,
    pub bytes_written: usize,
}

impl<'t> Overlay<'t> {
    pub fn new(tree: &'t sled::Tree) -> Self {
        Overlay {
            tree,
            pending: BTreeMap::new(),
            rows_written: 0,
            bytes_written: 0,
        }
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreFault> {
        match self.pending.get(key) {
            Some(v) => Ok(v.clone()),
            None => Ok(self.tree.get(key).map_err(StoreFault::new)?.map(|v| v.to_vec())),
        }
    }

    pub fn scan_prefix(&self, prefix: &[u8]) -> Result<concept_core::Rows, StoreFault> {
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for item in self.tree.scan_prefix(prefix) {
            let (k, v) = item.map_err(StoreFault::new)?;
            merged.insert(k.to_vec(), v.to_vec());
        }
        for (k, v) in self
            .pending
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
        {
            match v {
                Some(v) => merged.insert(k.clone(), v.clone()),
                None => merged.remove(k),
            };
        }
        Ok(merged.into_iter().collect())
    }

    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.rows_written += 1;
        self.bytes_written += key.len() + value.len();
        self.pending.insert(key, Some(value));
    }

    pub fn delete(&mut self, key: Vec<u8>) {
        self.rows_written += 1;
        self.pending.insert(key, None);
    }
}

/// One concept's namespaced window on an [`Overlay`].
pub struct ConceptTxn<'o, 't> {
    pub overlay: &'o mut Overlay<'t>,
    pub prefix: Vec<u8>,
    pub concept: String,
}

impl ConceptTxn<'_, '_> {
    fn abs(&self, key: &[u8]) -> Vec<u8> {
        let mut k = self.prefix.clone();
        k.extend_from_slice(key);
        k
    }
}

impl ProjectionRead for ConceptTxn<'_, '_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreFault> {
        self.overlay.get(&self.abs(key))
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<concept_core::Rows, StoreFault> {
        let n = self.prefix.len();
        Ok(self
            .overlay
            .scan_prefix(&self.abs(prefix))?
            .into_iter()
            .map(|(k, v)| (k[n..].to_vec(), v))
            .collect())
    }

    fn stream_version(&self, stream: &str) -> Result<u64, StoreFault> {
        Ok(self
            .overlay
            .get(&keys::head(&self.concept, stream))?
            .map(|v| keys::u64_value(&v))
            .unwrap_or(0))
    }
    fn stream_events(
        &self,
        stream: &str,
        after_version: u64,
        limit: usize,
    ) -> Result<Vec<StoredEventData>, StoreFault> {
        stream_events(self.overlay.tree, &self.concept, stream, after_version, limit)
    }
}

impl ProjectionTxn for ConceptTxn<'_, '_> {
    fn put(&mut self, key: &[u8], value: Vec<u8>) {
        let k = self.abs(key);
        self.overlay.put(k, value);
    }

    fn delete(&mut self, key: &[u8]) {
        let k = self.abs(key);
        self.overlay.delete(k);
    }
}

/// A read-only namespaced view of committed projections.
///
/// It holds the store's snapshot lock shared for as long as it lives, so every row it reads
/// comes from one committed state: a decision or a query reading an index and then its chunks
/// never sees a commit land between the two.
pub struct ConceptView<'t> {
    pub tree: &'t sled::Tree,
    pub prefix: Vec<u8>,
    pub concept: String,
    pub _snapshot: std::sync::RwLockReadGuard<'t, ()>,
}

impl ProjectionRead for ConceptView<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreFault> {
        let mut k = self.prefix.clone();
        k.extend_from_slice(key);
        Ok(self.tree.get(k).map_err(StoreFault::new)?.map(|v| v.to_vec()))
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<concept_core::Rows, StoreFault> {
        let mut k = self.prefix.clone();
        k.extend_from_slice(prefix);
        let n = self.prefix.len();
        self.tree
            .scan_prefix(k)
            .map(|item| {
                item.map(|(k, v)| (k[n..].to_vec(), v.to_vec()))
                    .map_err(StoreFault::new)
            })
            .collect()
    }

    fn stream_version(&self, stream: &str) -> Result<u64, StoreFault> {
        Ok(self
            .tree
            .get(keys::head(&self.concept, stream))
            .map_err(StoreFault::new)?
            .map(|v| keys::u64_value(&v))
            .unwrap_or(0))
    }

    fn stream_events(
        &self,
        stream: &str,
        after_version: u64,
        limit: usize,
    ) -> Result<Vec<StoredEventData>, StoreFault> {
        stream_events(self.tree, &self.concept, stream, after_version, limit)
    }
}

fn stream_events(
    tree: &sled::Tree,
    concept: &str,
    stream: &str,
    after_version: u64,
    limit: usize,
) -> Result<Vec<StoredEventData>, StoreFault> {
    super::sled_store::read_stream(tree, concept, stream, after_version, limit)
        .map(|events| events.into_iter().map(|e| (e.meta, e.data)).collect())
        .map_err(StoreFault::new)
}
