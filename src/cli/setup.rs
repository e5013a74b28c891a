//! What every command starts from: the store it names, opened (an embedded store of the first
//! layout is upgraded first, with a message), and an engine over it that fires the checked
//! sync files of a directory.

use crate::cli::upgrade;
use crate::engine::{Engine, Registry, SyncSet};
use crate::store::{SledOptions, Store, StoreError, StoreSpec};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Opens the store `spec` with the default options.
pub fn open(spec: &StoreSpec) -> Result<Arc<dyn Store>, String> {
    open_with(spec, &SledOptions::default())
}

/// Opens a store; an embedded store of the first layout is upgraded first (with a message on
/// stderr), so every command works on an old data directory.
pub fn open_with(spec: &StoreSpec, options: &SledOptions) -> Result<Arc<dyn Store>, String> {
    match spec.open_with(options) {
        Err(StoreError::OldLayout(_)) => {
            let StoreSpec::Sled(dir) = spec else {
                return Err(format!("cannot open the store at {spec}: it has an old layout"));
            };
            eprintln!(
                "upgrading the store at {} to the current storage layout…",
                dir.display()
            );
            let report =
                upgrade::upgrade(dir, options).map_err(|e| format!("cannot upgrade the store at {spec}: {e}"))?;
            if let Some(report) = report {
                eprintln!("{report}");
            }
            spec.open_with(options)
                .map_err(|e| format!("cannot open the store at {spec}: {e}"))
        }
        other => other.map_err(|e| format!("cannot open the store at {spec}: {e}")),
    }
}

/// An engine over `store` firing the syncs of `dir` (checked first; none without a directory).
pub fn engine(store: Arc<dyn Store>, dir: Option<PathBuf>, registry: Registry) -> Result<Engine, String> {
    let specs = registry.specs();
    let engine = Engine::new(store, registry);
    Ok(match dir {
        Some(dir) => {
            let files = load_syncs(&dir, &specs)?;
            let syncs = SyncSet::new(files);
            tracing::info!(syncs = syncs.len(), dir = %dir.display(), "syncs loaded");
            engine.with_syncs(syncs)
        }
        None => engine,
    })
}

/// Loads and checks every sync file in a directory; the error lists every problem.
pub fn load_syncs(dir: &Path, specs: &[concept_core::ConceptSpec]) -> Result<Vec<crate::sync::SyncFile>, String> {
    crate::sync::load_checked(dir, specs).map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        format!("{} problem(s) in the sync files:\n{}", lines.len(), lines.join("\n"))
    })
}
