//! Reading the embedded store: a concept's view of committed projections (what decisions and
//! queries read), and the committed state a commit runs against (`commit::Base`).
//!
//! Rows are handed out as `Bytes` over sled's own buffers: reading a chunk copies nothing.

use super::{keys, log};
use crate::store::commit::Base;
use crate::store::{EngineKey, StoreError};
use concept_core::{Bytes, Entries, ProjectionRead, StoreFault, StoredEventData};
use std::ops::Bound;

fn shared(v: sled::IVec) -> Bytes {
    Bytes::from_owner(v)
}

/// Committed rows of one generation, by physical key prefix.
struct Rows<'t> {
    tree: &'t sled::Tree,
    generation: u8,
}

impl Rows<'_> {
    /// Rows under `prefix` (canonical) from `from` (canonical), at most `limit`, with their
    /// keys cut by `strip` bytes of the canonical key.
    fn scan(&self, prefix: &[u8], from: &[u8], limit: usize, strip: usize) -> Result<Entries, StoreFault> {
        let p = keys::physical(self.generation, prefix);
        let f = keys::physical(self.generation, from);
        let mut out = Vec::new();
        for item in self.tree.range(f..) {
            if out.len() >= limit {
                break;
            }
            let (k, v) = item.map_err(StoreFault::new)?;
            if !k.starts_with(&p) {
                break;
            }
            // Physical keys are one byte longer than canonical ones.
            let cut = strip + 1;
            out.push((shared(k).slice(cut..), shared(v)));
        }
        Ok(out)
    }

    fn back(
        &self,
        prefix: &[u8],
        key: &[u8],
        inclusive: bool,
        strip: usize,
    ) -> Result<Option<(Bytes, Bytes)>, StoreFault> {
        let p = keys::physical(self.generation, prefix);
        let k = keys::physical(self.generation, key);
        let upper = if inclusive {
            Bound::Included(k)
        } else {
            Bound::Excluded(k)
        };
        match self
            .tree
            .range::<Vec<u8>, _>((Bound::Included(p.clone()), upper))
            .next_back()
        {
            Some(item) => {
                let (k, v) = item.map_err(StoreFault::new)?;
                Ok(Some((shared(k).slice(strip + 1..), shared(v))))
            }
            None => Ok(None),
        }
    }
}

fn head(tree: &sled::Tree, concept: &str, stream: &str) -> Result<u64, StoreFault> {
    Ok(tree
        .get(keys::head(concept, stream))
        .map_err(StoreFault::new)?
        .map(|v| keys::u64_value(&v))
        .unwrap_or(0))
}

fn stream_events(
    tree: &sled::Tree,
    concept: &str,
    stream: &str,
    after_version: u64,
    limit: usize,
) -> Result<Vec<StoredEventData>, StoreFault> {
    log::read_stream(tree, concept, stream, after_version, limit)
        .map(|events| events.into_iter().map(|e| (e.meta, e.data)).collect())
        .map_err(StoreFault::new)
}

/// A read-only namespaced view of committed projections.
///
/// It holds the store's snapshot lock shared for as long as it lives, so every row it reads
/// comes from one committed state: a decision or a query reading a chunk and then its neighbour
/// never sees a commit land between the two.
pub struct ConceptView<'t> {
    rows: Rows<'t>,
    /// The concept's canonical prefix (`P concept 0`).
    prefix: Vec<u8>,
    concept: String,
    _snapshot: std::sync::RwLockReadGuard<'t, ()>,
}

impl<'t> ConceptView<'t> {
    pub fn new(
        tree: &'t sled::Tree,
        generation: u8,
        concept: &str,
        snapshot: std::sync::RwLockReadGuard<'t, ()>,
    ) -> Self {
        ConceptView {
            rows: Rows { tree, generation },
            prefix: crate::store::keys::projection_prefix(concept),
            concept: concept.to_string(),
            _snapshot: snapshot,
        }
    }

    fn abs(&self, key: &[u8]) -> Vec<u8> {
        let mut k = self.prefix.clone();
        k.extend_from_slice(key);
        k
    }
}

impl ProjectionRead for ConceptView<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>, StoreFault> {
        let k = keys::physical(self.rows.generation, &self.abs(key));
        Ok(self.rows.tree.get(k).map_err(StoreFault::new)?.map(shared))
    }

    fn scan(&self, prefix: &[u8], from: &[u8], limit: usize) -> Result<Entries, StoreFault> {
        self.rows
            .scan(&self.abs(prefix), &self.abs(from), limit, self.prefix.len())
    }

    fn seek_back(&self, prefix: &[u8], key: &[u8], inclusive: bool) -> Result<Option<(Bytes, Bytes)>, StoreFault> {
        self.rows
            .back(&self.abs(prefix), &self.abs(key), inclusive, self.prefix.len())
    }

    fn stream_version(&self, stream: &str) -> Result<u64, StoreFault> {
        head(self.rows.tree, &self.concept, stream)
    }

    fn stream_events(
        &self,
        stream: &str,
        after_version: u64,
        limit: usize,
    ) -> Result<Vec<StoredEventData>, StoreFault> {
        stream_events(self.rows.tree, &self.concept, stream, after_version, limit)
    }
}

/// The committed state of the tree in one projection generation, as the commit algorithm reads
/// it (canonical keys in, canonical keys out).
pub struct TreeBase<'t> {
    pub tree: &'t sled::Tree,
    pub generation: u8,
}

impl TreeBase<'_> {
    fn rows(&self) -> Rows<'_> {
        Rows {
            tree: self.tree,
            generation: self.generation,
        }
    }
}

impl Base for TreeBase<'_> {
    fn row(&self, key: &[u8]) -> Result<Option<Bytes>, StoreFault> {
        Ok(self
            .tree
            .get(keys::physical(self.generation, key))
            .map_err(StoreFault::new)?
            .map(shared))
    }

    fn rows(&self, prefix: &[u8], from: &[u8], limit: usize) -> Result<Entries, StoreFault> {
        // Canonical keys back: the physical key after `P` and the generation, with `P` in front.
        let rows = self.rows().scan(prefix, from, limit, 1)?;
        Ok(rows
            .into_iter()
            .map(|(k, v)| {
                let mut canon = Vec::with_capacity(k.len() + 1);
                canon.push(crate::store::keys::PROJECTION);
                canon.extend_from_slice(&k);
                (Bytes::from(canon), v)
            })
            .collect())
    }

    fn row_back(&self, prefix: &[u8], key: &[u8], inclusive: bool) -> Result<Option<(Bytes, Bytes)>, StoreFault> {
        Ok(self.rows().back(prefix, key, inclusive, 1)?.map(|(k, v)| {
            let mut canon = Vec::with_capacity(k.len() + 1);
            canon.push(crate::store::keys::PROJECTION);
            canon.extend_from_slice(&k);
            (Bytes::from(canon), v)
        }))
    }

    fn head(&self, concept: &str, stream: &str) -> Result<u64, StoreFault> {
        head(self.tree, concept, stream)
    }

    fn stream_events(
        &self,
        concept: &str,
        stream: &str,
        after_version: u64,
        limit: usize,
    ) -> Result<Vec<StoredEventData>, StoreFault> {
        stream_events(self.tree, concept, stream, after_version, limit)
    }

    fn guards_exist(&self, wanted: &[EngineKey]) -> Result<Option<EngineKey>, StoreError> {
        for key in wanted {
            if self.tree.contains_key(crate::store::keys::engine(key))? {
                return Ok(Some(key.clone()));
            }
        }
        Ok(None)
    }
}

/// Engine rows (fire-once guards and idempotency keys) with a key above `after`, in key order,
/// at most `limit`.
pub fn engine_rows(tree: &sled::Tree, after: &[u8], limit: usize) -> Result<concept_core::Rows, StoreError> {
    let mut out = Vec::new();
    for prefix in [crate::store::keys::IDEMPOTENCY, crate::store::keys::FIRE_GUARD] {
        let start = if after >= &[prefix][..] {
            Bound::Excluded(after.to_vec())
        } else {
            Bound::Included(vec![prefix])
        };
        for item in tree.range::<Vec<u8>, _>((start, Bound::Unbounded)) {
            if out.len() >= limit {
                return Ok(out);
            }
            let (k, v) = item?;
            if k.first() != Some(&prefix) {
                break;
            }
            out.push((k.to_vec(), v.to_vec()));
        }
    }
    Ok(out)
}
