//! The syncs a running engine fires, indexed by the actions their `when` patterns mention.

use crate::sync::{Sync, SyncFile, Term};
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Default, Clone)]
pub struct SyncSet {
    syncs: Vec<Arc<Sync>>,
    /// (concept, action) → indexes into `syncs`, in load order.
    by_action: HashMap<(String, String), Vec<usize>>,
}

impl SyncSet {
    /// The syncs of checked files, in file then source order.
    pub fn new(files: Vec<SyncFile>) -> Self {
        let mut set = SyncSet::default();
        for sync in files.into_iter().flat_map(|f| f.syncs) {
            let index = set.syncs.len();
            for p in &sync.when {
                let slot = set.by_action.entry((p.concept.clone(), p.action.clone())).or_default();
                if slot.last() != Some(&index) {
                    slot.push(index);
                }
            }
            set.syncs.push(Arc::new(sync));
        }
        set
    }

    /// Every sync, in load order.
    pub fn all(&self) -> &[Arc<Sync>] {
        &self.syncs
    }

    pub fn len(&self) -> usize {
        self.syncs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.syncs.is_empty()
    }

    /// The syncs whose `when` mentions `concept.action`.
    pub fn triggered_by(&self, concept: &str, action: &str) -> Vec<Arc<Sync>> {
        self.by_action
            .get(&(concept.to_string(), action.to_string()))
            .map(|ix| ix.iter().map(|&i| self.syncs[i].clone()).collect())
            .unwrap_or_default()
    }

    /// The syncs whose `when` has a `concept.action` pattern with `field: "<value>"` (e.g. the
    /// syncs that serve one request path), or with `field` bound to a variable (any value).
    pub fn mentioning(&self, concept: &str, action: &str, field: &str, value: &str) -> Vec<Arc<Sync>> {
        self.triggered_by(concept, action)
            .into_iter()
            .filter(|s| {
                s.when.iter().any(|p| {
                    p.concept == concept
                        && p.action == action
                        && p.inputs.iter().any(|a| {
                            a.name == field
                                && match &a.value {
                                    Term::Lit(v, _) => v.as_str() == Some(value),
                                    Term::Var(..) => true,
                                }
                        })
                })
            })
            .collect()
    }
}
