//! What every command starts from: the store it names, opened (an embedded store of the first
//! layout is upgraded first, with a message), and an engine over it that fires the checked
//! sync files of a directory, with the external concepts declared beside them.

use crate::cli::args::SyncsArgs;
use crate::cli::upgrade;
use crate::engine::{Engine, Registry, SyncSet};
use crate::external::StandIn;
use crate::store::{SledOptions, Store, StoreError, StoreSpec};
use std::path::Path;
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

/// Rebuilds projections older than this build's projection layout (with a message on stderr),
/// so `serve` answers every query from current rows.
pub fn upgrade_projections(engine: &Engine) -> Result<(), String> {
    let announce = |old: usize| {
        eprintln!(
            "rebuilding the projections: {old} librar{} predate the playlist name index…",
            if old == 1 { "y" } else { "ies" }
        )
    };
    let report = upgrade::rebuild_old_projections(engine, announce)
        .map_err(|e| format!("cannot upgrade the projections: {e}"))?;
    if let Some(report) = report {
        eprintln!("{report}");
    }
    Ok(())
}

/// `registry` with the external concepts declared in the sync directory and in `--concepts`
/// (answered by `stand_in` instead of their services when given: `trace`).
pub fn with_externals(
    mut registry: Registry,
    syncs: &SyncsArgs,
    stand_in: Option<Arc<StandIn>>,
) -> Result<Registry, String> {
    let (dir, concepts) = (syncs.dir(), syncs.concepts.clone());
    let dirs: Vec<&Path> = dir.as_deref().into_iter().chain(concepts.as_deref()).collect();
    match crate::external::extend_with(&mut registry, &dirs, stand_in) {
        Ok(added) => {
            if !added.is_empty() {
                tracing::info!(concepts = ?added, "external concepts declared");
            }
            Ok(registry)
        }
        Err(problems) => {
            let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
            Err(format!(
                "{} problem(s) in the external concept declarations:\n{}",
                lines.len(),
                lines.join("\n")
            ))
        }
    }
}

/// An engine over `store` with `registry`'s concepts and the external ones `syncs` declares,
/// firing the sync files of `syncs` (checked first; none without a directory).
pub fn engine(
    store: Arc<dyn Store>,
    syncs: &SyncsArgs,
    registry: Registry,
    stand_in: Option<Arc<StandIn>>,
) -> Result<Engine, String> {
    let registry = with_externals(registry, syncs, stand_in)?;
    let specs = registry.specs();
    let engine = Engine::new(store, registry);
    Ok(match syncs.dir() {
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
