//! The concepts a running service has, by name.

use concept_core::{ConceptSpec, DynConcept, Typed};
use std::collections::BTreeMap;
use std::sync::Arc;

/// How the source concepts read their services: one field per source, each with its defaults
/// (the services' own addresses).
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub spotify: spotify_source::Settings,
    pub plex: plex_source::Settings,
    pub lastfm: lastfm_source::Settings,
    pub apple_file: apple_library::Settings,
    pub apple_music: apple_source::Settings,
    /// The key the sources seal their credentials with (`main` reads it; an ephemeral one by
    /// default, for traces and commands that never read a source).
    pub secrets: source_kit::Secrets,
}

#[derive(Clone, Default)]
pub struct Registry {
    concepts: BTreeMap<String, Arc<dyn DynConcept>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// The concepts this build ships with, with default settings (Spotify's own addresses).
    pub fn standard() -> Self {
        Registry::configured(Sources::default())
    }

    /// The concepts this build ships with, each source reading its service as `sources` says.
    pub fn configured(sources: Sources) -> Self {
        let mut r = Registry::new();
        r.add(Arc::new(Typed::new(library_cache::LibraryCache::new())));
        r.add(Arc::new(Typed::new(requesting::Requesting::new())));
        let secrets = sources.secrets;
        r.add(Arc::new(Typed::new(
            spotify_source::concept(sources.spotify).with_secrets(secrets.clone()),
        )));
        r.add(Arc::new(Typed::new(
            plex_source::concept(sources.plex).with_secrets(secrets.clone()),
        )));
        r.add(Arc::new(Typed::new(
            lastfm_source::concept(sources.lastfm).with_secrets(secrets.clone()),
        )));
        r.add(Arc::new(Typed::new(
            apple_library::concept(sources.apple_file).with_secrets(secrets.clone()),
        )));
        r.add(Arc::new(Typed::new(
            apple_source::concept(sources.apple_music).with_secrets(secrets),
        )));
        r.add(Arc::new(Typed::new(scheduling::Scheduling::new())));
        r
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
