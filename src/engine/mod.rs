//! The engine: runs actions and queries of the registered concepts, one flow per external call,
//! commits each action (events, projections, action record) atomically, and acknowledges only
//! once the commit is durable.
//!
//! Concepts are known only through `concept_core::DynConcept`; the engine never names one.

mod registry;

pub use registry::Registry;

use crate::store::{ActionRecord, Commit, Store, StoreError};
use chrono::Utc;
use concept_core::{ActionCtx, ActionError, ActionKind, DynConcept, ErrorKind};
use serde_json::Value;
use std::sync::Arc;
use uuid::Uuid;

/// How often an action is re-decided after losing a race for its stream.
const CONFLICT_RETRIES: usize = 8;

/// The answer to one external invocation.
#[derive(Debug, Clone)]
pub struct Answer {
    pub flow: Uuid,
    pub result: Result<Value, ActionError>,
}

pub struct Engine {
    store: Arc<dyn Store>,
    registry: Registry,
}

impl Engine {
    pub fn new(store: Arc<dyn Store>, registry: Registry) -> Self {
        Engine { store, registry }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Runs an action or query called from outside: a new flow for an action.
    pub fn invoke(&self, concept: &str, action: &str, input: Value) -> Answer {
        let flow = Uuid::now_v7();
        let result = self.lookup(concept, action).and_then(|(c, kind)| match kind {
            ActionKind::Query => self.run_query(c.as_ref(), action, input),
            ActionKind::Action | ActionKind::System => self.run_action(c.as_ref(), action, input, flow, None),
        });
        Answer { flow, result }
    }

    /// Runs a query against committed state.
    pub fn query(&self, concept: &str, query: &str, input: Value) -> Result<Value, ActionError> {
        let (c, kind) = self.lookup(concept, query)?;
        if kind != ActionKind::Query {
            return Err(ActionError::not_found(
                "UNKNOWN_QUERY",
                format!("{concept}.{query} is not a query"),
            ));
        }
        self.run_query(c.as_ref(), query, input)
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

    fn run_query(&self, concept: &dyn DynConcept, query: &str, input: Value) -> Result<Value, ActionError> {
        let view = self.store.view(concept.name());
        concept.query(&ActionCtx::new(Uuid::nil(), now()), view.as_ref(), query, input)
    }

    /// Decides, commits and makes durable one action; records refusals too.
    fn run_action(
        &self,
        concept: &dyn DynConcept,
        action: &str,
        input: Value,
        flow: Uuid,
        cause: Option<(String, Vec<u64>, u32)>,
    ) -> Result<Value, ActionError> {
        let (sync, matched, depth) = cause.unwrap_or_default();
        let mut attempt = 0;
        loop {
            let ctx = ActionCtx::new(flow, now());
            let record = |output: Value, failed: bool| ActionRecord {
                id: 0,
                flow,
                concept: concept.name().to_string(),
                action: action.to_string(),
                input: record_input(&input),
                output,
                failed,
                at: ctx.now,
                sync: (!sync.is_empty()).then(|| sync.clone()),
                cause: matched.clone(),
                depth,
                events: None,
            };
            let performed = {
                let view = self.store.view(concept.name());
                concept.perform(&ctx, view.as_ref(), action, input.clone())
            };
            let performed = match performed {
                Ok(p) => p,
                Err(refusal) => {
                    // A refusal changes nothing; its record need not wait for a flush.
                    let commit = Commit {
                        concept: concept.name().to_string(),
                        record: Some(record(refusal.to_output(), true)),
                        ..Commit::default()
                    };
                    self.store.commit(commit).map_err(store_error)?;
                    return Err(refusal);
                }
            };
            let output = performed.output.clone();
            let commit = Commit {
                concept: concept.name().to_string(),
                appends: performed.appends,
                record: Some(record(output.clone(), false)),
                guarded_rows: Vec::new(),
            };
            match self.store.commit(commit) {
                Ok(receipt) => {
                    self.store.wait_durable(receipt.generation).map_err(store_error)?;
                    return Ok(output);
                }
                Err(StoreError::VersionConflict { .. }) if attempt < CONFLICT_RETRIES => {
                    attempt += 1;
                    continue;
                }
                Err(e) => return Err(store_error(e)),
            }
        }
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

/// The time of an action: microsecond precision, the precision the log keeps, so the time a
/// live apply sees is the time a rebuild sees.
fn now() -> chrono::DateTime<Utc> {
    concept_core::time::from_micros(Utc::now().timestamp_micros())
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
    }
}

/// The input as kept in the action record: large collections are summarised (their items are in
/// the events), so the record of a 20 MB ingest stays small.
fn record_input(input: &Value) -> Value {
    const KEEP: usize = 100;
    match input {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::Array(items) if items.len() > KEEP => {
                            serde_json::json!({ "$items": items.len(), "$first": items[..KEEP.min(3)].to_vec() })
                        }
                        other => other.clone(),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}
