//! System actions and the concepts' background work (DESIGN §3.7): the engine is the [`Host`]
//! through which a concept's background work raises its system actions and reads its own
//! projections. A raised action runs like any other — recorded, synced, flushed — in the flow
//! that started the work or in a new one.

use super::{Answer, Engine};
use concept_core::{ActionError, ActionKind, BackgroundWork, Host, ProjectionRead};
use serde_json::Value;
use std::sync::Arc;
use uuid::Uuid;

impl Engine {
    /// Raises a concept's system action (a timer came due, a background read ended) in `flow`,
    /// or in a new flow, and runs what it sets off. Refused unless the action is a system action.
    pub fn raise(&self, concept: &str, action: &str, input: Value, flow: Option<Uuid>) -> Answer {
        let flow = flow.unwrap_or_else(Uuid::now_v7);
        match self.lookup(concept, action) {
            Ok((c, ActionKind::System)) => self.run_flow(flow, c.as_ref(), action, input, None),
            Ok(_) => Answer::refused(
                flow,
                ActionError::invalid(
                    "NOT_A_SYSTEM_ACTION",
                    format!("{concept}.{action} is not a system action; only a concept raises its system actions"),
                ),
            ),
            Err(e) => Answer::refused(flow, e),
        }
    }

    /// Every registered concept's background work, each bound to a host for its concept. The
    /// caller runs them (the server spawns them on its runtime and stops them at shutdown).
    pub fn background(self: &Arc<Self>) -> Vec<(String, BackgroundWork)> {
        self.registry
            .names()
            .filter_map(|name| {
                let concept = self.registry.get(name)?;
                let host = Arc::new(ConceptHost {
                    engine: Arc::clone(self),
                    concept: name.to_string(),
                });
                concept.background(host).map(|work| (name.to_string(), work))
            })
            .collect()
    }
}

/// The engine as one concept's background work sees it.
struct ConceptHost {
    engine: Arc<Engine>,
    concept: String,
}

impl Host for ConceptHost {
    fn raise(&self, action: &str, input: Value, flow: Option<Uuid>) -> Result<Value, ActionError> {
        let answer = self.engine.raise(&self.concept, action, input, flow);
        if let Some(e) = answer.flow_error {
            tracing::warn!(concept = %self.concept, action, error = %e, "a system action's cascade stopped early");
        }
        answer.result
    }

    fn view(&self) -> Box<dyn ProjectionRead + '_> {
        self.engine.store.view(&self.concept)
    }

    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        super::now()
    }
}
