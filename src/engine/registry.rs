//! The concepts a running service has, by name. The engine knows them only as
//! `concept_core::DynConcept`s; which concepts a build has is the application's choice
//! (`crate::app`).

use concept_core::{ConceptSpec, DynConcept};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Clone, Default)]
pub struct Registry {
    concepts: BTreeMap<String, Arc<dyn DynConcept>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, concept: Arc<dyn DynConcept>) {
        self.concepts.insert(concept.name().to_string(), concept);
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn DynConcept>> {
        self.concepts.get(name).cloned()
    }

    pub fn specs(&self) -> Vec<ConceptSpec> {
        self.concepts.values().map(|c| c.spec().clone()).collect()
    }

    /// The source concepts (Spotify, Plex, Last.fm…): those answering `_getFetch` and
    /// `_getConnection`, the queries every source keeps (concepts/source_kit). Their reads are
    /// what `stats` and the web page report per user.
    pub fn sources(&self) -> Vec<String> {
        self.concepts
            .iter()
            .filter(|(_, c)| {
                let spec = c.spec();
                ["_getFetch", "_getConnection"]
                    .iter()
                    .all(|q| spec.actions.iter().any(|a| a.name == *q))
            })
            .map(|(name, _)| name.clone())
            .collect()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.concepts.keys().map(String::as_str)
    }
}
