//! System actions and the concepts' background work (ARCHITECTURE.md, "Background work and
//! system actions"): the engine is the [`Host`]
//! through which a concept's background work raises its system actions and reads its own
//! projections. A raised action runs like any other — recorded, synced, flushed — in the flow
//! that started the work or in a new one.

use super::{Answer, Engine};
use crate::store::Lease;
use concept_core::{ActionError, ActionKind, BackgroundWork, Host, ProjectionRead};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

impl Engine {
    /// Raises a concept's system action (a timer came due, a background read ended) in `flow`,
    /// or in a new flow, and runs what it sets off. Refused unless the action is a system action.
    pub fn raise(&self, concept: &str, action: &str, input: Value, flow: Option<Uuid>) -> Answer {
        let flow = flow.unwrap_or_else(Uuid::now_v7);
        match self.lookup(concept, action) {
            Ok((c, ActionKind::System)) => super::Flow::run(self, flow, c.as_ref(), action, input.into(), None),
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
    /// caller runs them; [`Engine::lead`] runs one only while this process holds its lease.
    pub fn background(self: &Arc<Self>) -> Vec<(String, BackgroundWork)> {
        self.registry
            .names()
            .filter_map(|name| self.background_of(name).map(|work| (name.to_string(), work)))
            .collect()
    }

    /// One concept's background work, bound to a host for it (None: it has none).
    fn background_of(self: &Arc<Self>, concept: &str) -> Option<BackgroundWork> {
        let host = Arc::new(ConceptHost {
            engine: Arc::clone(self),
            concept: concept.to_string(),
        });
        self.registry.get(concept)?.background(host)
    }

    /// Runs `concept`'s background work whenever this process holds the store's lease on it,
    /// so that of several instances sharing a store exactly one runs each concept's work (two
    /// would read the same source twice and tick the same timer twice). Stands by while
    /// another holds the lease, takes over when that one goes (its lease is released when its
    /// connection to the store ends), and stops the work if the lease is lost. On the embedded
    /// store the lease is always granted. `roles` shows which this process is doing.
    pub async fn lead(self: Arc<Self>, concept: String, roles: Roles) {
        let name = format!("background {concept}");
        loop {
            let store = Arc::clone(&self.store);
            let asked = name.clone();
            match tokio::task::spawn_blocking(move || store.lease(&asked)).await {
                Ok(Ok(Some(lease))) => {
                    let Some(work) = self.background_of(&concept) else {
                        return;
                    };
                    roles.set(&concept, Role::Leading);
                    tracing::info!(%concept, "background work started (this instance holds its lease)");
                    tokio::select! {
                        () = work => return,
                        () = lost(&lease) => {
                            tracing::warn!(%concept, "lost the lease on the background work: stopped it, standing by");
                        }
                    }
                }
                Ok(Ok(None)) => {}
                Ok(Err(e)) => tracing::warn!(%concept, error = %e, "cannot ask for the background work's lease"),
                Err(e) => tracing::warn!(%concept, error = %e, "the lease request stopped"),
            }
            roles.set(&concept, Role::Standby);
            tokio::time::sleep(LEASE_RETRY).await;
        }
    }
}

/// How long an instance standing by waits before asking for a lease again (so the longest a
/// concept's background work stays without a runner after its instance died).
const LEASE_RETRY: Duration = Duration::from_secs(3);

/// Resolves when `lease` is lost (never, for a lease that cannot be).
async fn lost(lease: &Lease) {
    if !lease.can_be_lost() {
        return std::future::pending().await;
    }
    while lease.is_held() {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Whether this process runs a concept's background work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    /// Another instance holds the lease (or none was granted yet).
    Standby,
    /// This process holds the lease and runs the work.
    Leading,
}

/// The role of this process for each concept with background work (shown by `GET /healthz`).
#[derive(Debug, Clone, Default)]
pub struct Roles(Arc<Mutex<BTreeMap<String, Role>>>);

impl Roles {
    fn set(&self, concept: &str, role: Role) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(concept.to_string(), role);
    }

    /// Each concept's role, by name.
    pub fn snapshot(&self) -> BTreeMap<String, Role> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
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

    fn clock(&self) -> concept_core::SharedClock {
        Arc::clone(&self.engine.clock)
    }
}
