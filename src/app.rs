//! This build's concepts, and the service as an application others can extend.
//!
//! [`App::standard`] is what the `librarycache` binary runs: LibraryCache, Requesting,
//! Scheduling and the sources. An application adds its own concepts and runs the same command
//! line (`serve`, `check`, `trace`, `rebuild`, … with the same flags):
//!
//! ```text
//! fn main() -> std::process::ExitCode {
//!     librarycache::App::standard().concept(Notifying::new()).main()
//! }
//! ```
//!
//! Its sync files (`--syncs DIR`) may then name its concepts beside the standard ones; they are
//! checked against every concept's schemas at start. `examples/notifying` is a whole example.

use crate::engine::Registry;
use concept_core::{Concept, DynConcept, Typed};
use std::ffi::OsString;
use std::process::ExitCode;
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
    /// The key the sources seal their credentials with (the command line reads it; an
    /// ephemeral one by default, for traces and commands that never read a source).
    pub secrets: source_kit::Secrets,
}

impl Registry {
    /// The concepts this build ships with, with default settings (the services' own addresses).
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
}

/// An application: the standard concepts plus its own, run with the `librarycache` command line.
#[derive(Clone, Default)]
pub struct App {
    own: Vec<Arc<dyn DynConcept>>,
}

/// A concept of the application's, as the engine holds it.
pub type Custom = Arc<dyn DynConcept>;

impl App {
    /// The concepts the `librarycache` binary ships with.
    pub fn standard() -> App {
        App::default()
    }

    /// Adds a concept (a [`Concept`] implementation). A concept with the name of a standard one
    /// replaces it.
    pub fn concept<C: Concept>(self, concept: C) -> App {
        self.dyn_concept(Arc::new(Typed::new(concept)))
    }

    /// Adds a concept already in its erased form.
    pub fn dyn_concept(mut self, concept: Arc<dyn DynConcept>) -> App {
        self.own.push(concept);
        self
    }

    /// Every concept of the application, the sources reading as `sources` says.
    pub fn registry(&self, sources: Sources) -> Registry {
        let mut registry = Registry::configured(sources);
        for concept in &self.own {
            registry.add(Arc::clone(concept));
        }
        registry
    }

    /// Runs the command line of this process (`serve`, `check`, `trace`, …) and returns its
    /// exit code.
    pub fn main(self) -> ExitCode {
        self.run(std::env::args_os().collect())
    }

    /// Runs the command line `args`, the program's name first.
    pub fn run(self, args: Vec<OsString>) -> ExitCode {
        crate::cli::main(&self, args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use concept_core::spec::declared;
    use std::collections::BTreeSet;

    /// Every `concepts/*/*.concept` file declares exactly the actions, system actions and
    /// queries its concept serves, and every concept of this build has a file.
    #[test]
    fn each_concept_file_declares_exactly_what_its_concept_serves() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("concepts");
        let registry = Registry::standard();
        let mut seen = BTreeSet::new();
        for dir in std::fs::read_dir(&root).expect("concepts/") {
            let dir = dir.expect("an entry").path();
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for file in entries.map(|e| e.expect("an entry").path()) {
                if file.extension().and_then(|e| e.to_str()) != Some("concept") {
                    continue;
                }
                let text = std::fs::read_to_string(&file).expect("readable");
                let (name, declared) = declared(&text);
                let name = name.unwrap_or_else(|| panic!("{}: no `concept Name` line", file.display()));
                let concept = registry
                    .get(&name)
                    .unwrap_or_else(|| panic!("{}: no concept {name} in this build", file.display()));
                let served: BTreeSet<_> = concept
                    .spec()
                    .actions
                    .iter()
                    .map(|a| (a.kind, a.name.clone()))
                    .collect();
                let declared: BTreeSet<_> = declared.into_iter().collect();
                assert_eq!(
                    declared.iter().map(|(k, n)| format!("{k:?} {n}")).collect::<Vec<_>>(),
                    served.iter().map(|(k, n)| format!("{k:?} {n}")).collect::<Vec<_>>(),
                    "{}: what the file declares (left) against what {name} serves (right)",
                    file.display()
                );
                seen.insert(name);
            }
        }
        let all: BTreeSet<String> = registry.specs().into_iter().map(|s| s.name).collect();
        assert_eq!(seen, all, "every concept of this build has its .concept file");
    }
}
