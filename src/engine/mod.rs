//! The engine: runs actions and queries of the registered concepts, one flow per external call,
//! commits each action (events, projections, action record, fire-once guard) atomically, fires
//! the syncs that match completed actions (depth first, in the same flow, see [`flow`]) and
//! acknowledges only once the flow's commits are durable.
//!
//! Concepts are known only through `concept_core::DynConcept`; the engine never names one.

mod action;
mod background;
mod explain;
mod flow;
pub mod idempotency;
pub mod matching;
mod registry;
mod summary;
mod syncs;
pub mod trace_log;

pub use background::{Role, Roles};
use flow::Flow;
pub use flow::{Firing, FlowReport};
pub use matching::Completed;
pub use registry::Registry;
pub use syncs::SyncSet;

use crate::store::{EngineKey, Store, StoreError};
use chrono::Utc;
use concept_core::{
    ActionCtx, ActionError, ActionKind, DynConcept, ErrorKind, Input, Output, SharedClock, SystemClock,
};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use uuid::Uuid;

/// The most actions one flow may run before the engine stops it as a runaway cascade.
pub const DEFAULT_CASCADE_LIMIT: usize = 1_000;

/// The answer to one external invocation.
#[derive(Debug, Clone)]
pub struct Answer {
    pub flow: Uuid,
    /// The invoked action's output or refusal (a query's answer).
    pub result: Result<Value, ActionError>,
    /// The flow's actions in the order they completed: the invoked action first (unless it
    /// never ran: a query, an unknown action, a store failure), then those syncs fired.
    pub actions: Vec<Completed>,
    /// Why the flow stopped early (a runaway cascade, a store failure), if it did.
    pub flow_error: Option<ActionError>,
    /// True when this is the remembered answer of an earlier call with the same idempotency
    /// key: nothing ran now, and `flow` is that call's flow.
    pub replayed: bool,
}

/// What an idempotency key remembers: the call it was first used for and its answer.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Remembered {
    flow: Uuid,
    concept: String,
    action: String,
    output: Value,
    refusal: Option<(ErrorKind, String)>,
    /// The fingerprint of the request the key was first used for ([`idempotency`]); keys
    /// stored before it existed have none and replay as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    request: Option<String>,
}

pub struct Engine {
    store: Arc<dyn Store>,
    /// The one source of time: every action's `now`, background work's clock.
    clock: SharedClock,
    registry: Registry,
    syncs: SyncSet,
    cascade_limit: usize,
    /// Flows running in this process (how many calls run each), so a replayed answer can wait
    /// for its flow to end instead of reading half of it (see [`Engine::settled_flow`]).
    running: Mutex<HashMap<Uuid, usize>>,
    flow_ended: Condvar,
}

/// Marks a flow as running in this process while alive.
pub(crate) struct Running<'a> {
    engine: &'a Engine,
    flow: Uuid,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let mut running = self.engine.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = running.get_mut(&self.flow) {
            *n -= 1;
            if *n == 0 {
                running.remove(&self.flow);
            }
        }
        self.engine.flow_ended.notify_all();
    }
}

impl Answer {
    /// An answer that is only an error: nothing ran, or nothing of the flow can be reported.
    pub(crate) fn refused(flow: Uuid, e: ActionError) -> Self {
        Answer {
            flow,
            result: Err(e),
            actions: Vec::new(),
            flow_error: None,
            replayed: false,
        }
    }

    /// The actions syncs fired in the flow, in the order they completed.
    pub fn cascade(&self) -> &[Completed] {
        self.actions.get(1..).unwrap_or_default()
    }
}

impl Engine {
    pub fn new(store: Arc<dyn Store>, registry: Registry) -> Self {
        Engine {
            store,
            // The system's clock, set ahead when a test asks (`LIBRARYCACHE_TEST_CLOCK_AHEAD`;
            // the binary refuses a malformed value at start, before any engine exists).
            clock: Arc::new(SystemClock::from_env().unwrap_or_default()),
            registry,
            syncs: SyncSet::default(),
            cascade_limit: DEFAULT_CASCADE_LIMIT,
            running: Mutex::new(HashMap::new()),
            flow_ended: Condvar::new(),
        }
    }

    /// The engine running on `clock` (the system's by default; traces and tests run on a
    /// [`concept_core::ManualClock`]).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The engine's clock.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The time of an action now, by the engine's clock.
    pub fn now(&self) -> chrono::DateTime<Utc> {
        self.clock.now()
    }

    /// The engine firing these syncs (already checked against the registry's concepts).
    pub fn with_syncs(mut self, syncs: SyncSet) -> Self {
        self.syncs = syncs;
        self
    }

    /// The most actions one flow may run (default [`DEFAULT_CASCADE_LIMIT`]).
    pub fn with_cascade_limit(mut self, limit: usize) -> Self {
        self.cascade_limit = limit.max(1);
        self
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn syncs(&self) -> &SyncSet {
        &self.syncs
    }

    /// Runs an action or query called from outside: an action starts a new flow.
    pub fn invoke(&self, concept: &str, action: &str, input: impl Into<Input>) -> Answer {
        self.invoke_in(Uuid::now_v7(), concept, action, input)
    }

    /// [`Engine::invoke`] with the new flow's id chosen by the caller (so it can name the flow
    /// before the flow ends, e.g. in an answer sent when a request times out).
    pub fn invoke_in(&self, flow: Uuid, concept: &str, action: &str, input: impl Into<Input>) -> Answer {
        let input = input.into();
        match self.lookup(concept, action) {
            Ok((c, ActionKind::Query)) => Answer {
                flow,
                result: self.run_query(c.as_ref(), action, &input).and_then(Output::into_value),
                actions: Vec::new(),
                flow_error: None,
                replayed: false,
            },
            Ok((c, _)) => Flow::run(self, flow, c.as_ref(), action, input, None),
            Err(e) => Answer::refused(flow, e),
        }
    }

    /// [`Engine::invoke_in`] at most once per idempotency `key`: the first call runs and its
    /// answer is committed with the action (in the same commit); a later call with the key gets
    /// that answer back (`replayed`), whatever happened since. A key used for a different
    /// action, or with a different input (another body; for `Requesting.request`, another
    /// path), is refused (422 `IDEMPOTENCY_KEY_REUSED`). Queries ignore the key.
    pub fn invoke_once(&self, flow: Uuid, key: &str, concept: &str, action: &str, input: impl Into<Input>) -> Answer {
        let input = input.into();
        let fail = |e: ActionError| Answer::refused(flow, e);
        let c = match self.lookup(concept, action) {
            Ok((_, ActionKind::Query)) => return self.invoke_in(flow, concept, action, input),
            Ok((c, _)) => c,
            Err(e) => return fail(e),
        };
        if key.is_empty() || key.len() > 256 || key.chars().any(char::is_control) {
            return fail(ActionError::invalid(
                "INVALID_IDEMPOTENCY_KEY",
                "an Idempotency-Key must be 1 to 256 characters without control characters",
            ));
        }
        let fingerprint = idempotency::fingerprint_input(concept, action, &input);
        match self.remembered(key, concept, action, &fingerprint) {
            Ok(Some(answer)) => return answer,
            Ok(None) => {}
            Err(e) => return fail(e),
        }
        let answer = Flow::run(self, flow, c.as_ref(), action, input, Some((key, &fingerprint)));
        match &answer.result {
            // Another call with the key committed first: answer as it did.
            Err(e) if e.code == "IDEMPOTENCY_KEY_RACE" => match self.remembered(key, concept, action, &fingerprint) {
                Ok(Some(answer)) => answer,
                Ok(None) => fail(ActionError::internal("an idempotency key vanished")),
                Err(e) => fail(e),
            },
            _ => answer,
        }
    }

    /// The remembered answer for `key`, if the key was used (for this request: `fingerprint`).
    fn remembered(
        &self,
        key: &str,
        concept: &str,
        action: &str,
        fingerprint: &str,
    ) -> Result<Option<Answer>, ActionError> {
        let Some(bytes) = self
            .store
            .engine_row(&EngineKey::Idempotency(key.to_string()))
            .map_err(store_error)?
        else {
            return Ok(None);
        };
        let r: Remembered = serde_json::from_slice(&bytes)
            .map_err(|e| ActionError::internal(format!("a remembered answer is unreadable: {e}")))?;
        if r.concept != concept || r.action != action {
            return Err(ActionError::invalid(
                "IDEMPOTENCY_KEY_REUSED",
                format!(
                    "this Idempotency-Key was used for {}.{}, not {concept}.{action}; use a new key per call",
                    r.concept, r.action
                ),
            ));
        }
        if r.request.as_deref().is_some_and(|first| first != fingerprint) {
            return Err(ActionError::invalid(
                "IDEMPOTENCY_KEY_REUSED",
                format!(
                    "this Idempotency-Key was used for another {concept}.{action} request (a different body{}); use a new key per call",
                    if concept == "Requesting" { " or path" } else { "" }
                ),
            ));
        }
        // The flow as recorded, so a replayed request finds its respond again.
        let actions = self.recorded_flow(r.flow)?;
        Ok(Some(Answer {
            flow: r.flow,
            result: match r.refusal {
                Some((kind, code)) => Err(ActionError::new(
                    kind,
                    code,
                    r.output["error"].as_str().unwrap_or_default().to_string(),
                )),
                None => Ok(r.output),
            },
            actions,
            flow_error: None,
            replayed: true,
        }))
    }

    /// Marks `flow` as running in this process until the returned guard drops.
    pub(crate) fn enter_flow(&self, flow: Uuid) -> Running<'_> {
        *self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(flow)
            .or_insert(0) += 1;
        Running { engine: self, flow }
    }

    /// The recorded actions of `flow`, in order, once no call in this process is running it (a
    /// retry that replays an idempotency key's answer while the first call is still cascading
    /// waits for that cascade rather than reading half of it).
    pub fn settled_flow(&self, flow: Uuid) -> Result<Vec<Completed>, ActionError> {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        while running.contains_key(&flow) {
            running = self.flow_ended.wait(running).unwrap_or_else(|p| p.into_inner());
        }
        drop(running);
        self.recorded_flow(flow)
    }

    /// Finishes a flow a crash cut short (its first actions committed, the rest of its cascade
    /// never ran): delivers each recorded action of the flow to the syncs again, in order, so
    /// what had not fired fires now; what had fired does not fire again (fire-once guards).
    /// Returns the flow's actions afterwards.
    pub fn resume_flow(&self, flow: Uuid) -> Result<Vec<Completed>, ActionError> {
        let _running = self.enter_flow(flow);
        for record in self.store.flow(flow).map_err(store_error)? {
            self.redeliver(record.id)?;
        }
        self.recorded_flow(flow)
    }

    /// The recorded actions of `flow`, in order, as syncs see them.
    fn recorded_flow(&self, flow: Uuid) -> Result<Vec<Completed>, ActionError> {
        let records = self.store.flow(flow).map_err(store_error)?;
        Ok(records.into_iter().map(Completed::from).collect())
    }

    /// Delivers a recorded action to the syncs again, in its own flow (as after a restart or a
    /// duplicate delivery): combinations that already fired do not fire again.
    pub fn redeliver(&self, action_id: u64) -> Result<Answer, ActionError> {
        let record = self
            .store
            .action(action_id)
            .map_err(store_error)?
            .ok_or_else(|| ActionError::not_found("ACTION_NOT_FOUND", format!("no action record {action_id}")))?;
        Flow::redeliver(self, record)
    }

    /// A recorded flow: its actions in order and the firings that linked them.
    pub fn flow_report(&self, flow: Uuid) -> Result<Option<FlowReport>, StoreError> {
        Ok(FlowReport::of(flow, self.store.flow(flow)?))
    }

    /// Runs a query against committed state.
    pub fn query(&self, concept: &str, query: &str, input: impl Into<Input>) -> Result<Value, ActionError> {
        self.query_output(concept, query, input)?.into_value()
    }

    /// Runs a query against committed state; a large answer comes back as the JSON text the
    /// query wrote (for the HTTP layer to send as it is).
    pub fn query_output(&self, concept: &str, query: &str, input: impl Into<Input>) -> Result<Output, ActionError> {
        let (c, kind) = self.lookup(concept, query)?;
        if kind != ActionKind::Query {
            return Err(ActionError::not_found(
                "UNKNOWN_QUERY",
                format!("{concept}.{query} is not a query"),
            ));
        }
        self.run_query(c.as_ref(), query, &input.into())
    }

    fn lookup(&self, concept: &str, action: &str) -> Result<(Arc<dyn DynConcept>, ActionKind), ActionError> {
        let c = self.registry.get(concept).ok_or_else(|| {
            ActionError::not_found("UNKNOWN_CONCEPT", format!("there is no concept named {concept:?}"))
        })?;
        let kind = c.spec().action(action).map(|a| a.kind).ok_or_else(|| {
            ActionError::not_found(
                "UNKNOWN_ACTION",
                format!("{concept} has no action or query named {action:?}"),
            )
        })?;
        Ok((c, kind))
    }

    fn run_query(&self, concept: &dyn DynConcept, query: &str, input: &Input) -> Result<Output, ActionError> {
        let decoded = concept.decode(query, input)?;
        let view = self.store.view(concept.name());
        concept.query(&ActionCtx::new(Uuid::nil(), self.now()), view.as_ref(), query, decoded)
    }

    /// Drops every projection and replays the log through the concepts' apply functions.
    pub fn rebuild(&self) -> Result<u64, StoreError> {
        let registry = &self.registry;
        self.store
            .rebuild(&|concept, meta, data, txn| match registry.get(concept) {
                Some(c) => c.apply_stored(meta, data, txn),
                None => Err(concept_core::StoreFault::new(format!(
                    "event {} belongs to concept {concept:?}, which this build does not have",
                    meta.seq
                ))),
            })
    }
}

/// A store failure as the caller sees it.
fn store_error(e: StoreError) -> ActionError {
    match e {
        StoreError::VersionConflict { .. } => ActionError::new(
            ErrorKind::Conflict,
            "CONCURRENT_UPDATE",
            format!("the action kept losing races with concurrent actions on the same library ({e}); retry it"),
        ),
        StoreError::GuardExists(key) => ActionError::new(
            ErrorKind::Conflict,
            "ALREADY_DONE",
            format!("{key} was already recorded"),
        ),
        StoreError::Fault(f) => ActionError::internal(format!("the store failed: {f}")),
        StoreError::InUse(_) => ActionError::new(ErrorKind::Unavailable, "STORE_IN_USE", e.to_string()),
        StoreError::OldLayout(_) => ActionError::new(ErrorKind::Unavailable, "STORE_NEEDS_UPGRADE", e.to_string()),
    }
}
