//! External concepts: concepts implemented by another service, in any language, declared by a
//! `{Name}.external.json` file ([`declaration`]) and run by the engine through an adapter
//! ([`adapter::External`], a `DynConcept` whose actions and queries are HTTP calls). The
//! service raises the concept's callbacks through `POST /api/{Name}/{callback}`.

pub mod adapter;
pub mod declaration;
pub mod stand_in;

pub use adapter::External;
pub use declaration::{Declaration, DeclarationError, SUFFIX};
pub use stand_in::StandIn;

use crate::engine::Registry;
use std::path::Path;
use std::sync::Arc;

/// Adds to `registry` the external concepts declared in each of `dirs` (a sync directory, a
/// `--concepts` directory); every problem, each naming its file, when a declaration is bad or
/// names a concept the registry already has.
pub fn extend(registry: &mut Registry, dirs: &[&Path]) -> Result<Vec<String>, Vec<DeclarationError>> {
    extend_with(registry, dirs, None)
}

/// [`extend`], the concepts answering from `stand_in` (a trace's `answer` lines) instead of
/// calling their services, when given.
pub fn extend_with(
    registry: &mut Registry,
    dirs: &[&Path],
    stand_in: Option<Arc<StandIn>>,
) -> Result<Vec<String>, Vec<DeclarationError>> {
    let mut errors = Vec::new();
    let mut added = Vec::new();
    for dir in dirs {
        let declarations = match declaration::load_dir(dir) {
            Ok(d) => d,
            Err(mut e) => {
                errors.append(&mut e);
                continue;
            }
        };
        for d in declarations {
            if registry.get(d.name()).is_some() {
                errors.push(DeclarationError {
                    file: d.file.clone(),
                    problem: format!(
                        "declares {}, a concept this service already has{}",
                        d.name(),
                        if added.iter().any(|a| a == d.name()) {
                            " (declared in another file)"
                        } else {
                            ""
                        }
                    ),
                });
                continue;
            }
            added.push(d.name().to_string());
            let external = match &stand_in {
                Some(s) => External::new(d).with_stand_in(Arc::clone(s)),
                None => External::new(d),
            };
            registry.add_remote(Arc::new(external));
        }
    }
    if errors.is_empty() {
        Ok(added)
    } else {
        Err(errors)
    }
}
