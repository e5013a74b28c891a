//! The concepts a running service has, by name. The engine knows them only as
//! `concept_core::DynConcept`s; which concepts a build has is the application's choice
//! (`crate::app`).

use concept_core::{ConceptSpec, DynConcept};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

#[derive(Clone, Default)]
pub struct Registry {
    concepts: BTreeMap<String, Arc<dyn DynConcept>>,
    /// The concepts implemented by another service (`crate::external`), whose system actions
    /// that service raises over HTTP.
    remote: BTreeSet<String>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, concept: Arc<dyn DynConcept>) {
        self.concepts.insert(concept.name().to_string(), concept);
    }

    /// Adds a concept implemented by another service: its system actions (callbacks) are
    /// raised by that service through `POST /api/{Concept}/{action}`.
    pub fn add_remote(&mut self, concept: Arc<dyn DynConcept>) {
        self.remote.insert(concept.name().to_string());
        self.add(concept);
    }

    /// Whether `name`'s system actions are raised over HTTP (see [`Registry::add_remote`]).
    pub fn is_remote(&self, name: &str) -> bool {
        self.remote.contains(name)
    }

    /// The concepts implemented by other services.
    pub fn remote_names(&self) -> impl Iterator<Item = &str> {
        self.remote.iter().map(String::as_str)
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
