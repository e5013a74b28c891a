//! Flows: an external action and everything syncs fire because of it. A [`Flow`] owns one
//! while it runs: after each completed action it joins the syncs that mention it over the
//! flow's completed actions, evaluates their `where`, and runs their `then` invocations depth
//! first (an explicit stack, so a deep cascade cannot overflow the thread's stack) through
//! `action::run`. Each fired action carries a fire-once guard in its own commit; the flow
//! waits for durability once, at its end.

use super::action::{self, Cause, Ran};
use super::matching::{evaluate_where, invocation_inputs, joins, Completed};
use super::trace_log;
use super::{Answer, Engine};
use crate::store::{ActionRecord, EngineKey};
use concept_core::{ActionError, DynConcept, ErrorKind};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;
use uuid::Uuid;

/// A `then` invocation waiting to run.
struct Pending {
    concept: String,
    action: String,
    input: Value,
    cause: Cause,
    /// The syncs that led here, outermost first (to name a runaway loop).
    chain: Arc<Vec<String>>,
}

/// One flow while it runs.
pub(super) struct Flow<'e> {
    engine: &'e Engine,
    id: Uuid,
    completed: Vec<Completed>,
    /// (sync, matched) combinations already fired in this run.
    fired: HashSet<(String, Vec<u64>)>,
    /// The durability generation of the flow's last commit.
    last: Option<u64>,
    /// Whether an action of the flow changed state (or remembers an idempotency key).
    changed: bool,
    error: Option<ActionError>,
}

impl<'e> Flow<'e> {
    fn new(engine: &'e Engine, id: Uuid, completed: Vec<Completed>) -> Self {
        Flow {
            engine,
            id,
            completed,
            fired: HashSet::new(),
            last: None,
            changed: false,
            error: None,
        }
    }

    /// Runs an external (or system) action and its cascade as the new flow `id`.
    pub(super) fn run(
        engine: &'e Engine,
        id: Uuid,
        concept: &dyn DynConcept,
        action: &str,
        input: concept_core::Input,
        idempotency: Option<(&str, &str)>,
    ) -> Answer {
        let _running = engine.enter_flow(id);
        crate::observe::flow();
        let mut flow = Flow::new(engine, id, Vec::new());
        let (first, refusal) = match action::run(engine, concept, action, input, id, None, idempotency) {
            Ok(Ran::Done {
                completed,
                generation,
                changed,
                refusal,
            }) => {
                flow.committed(generation, changed);
                (*completed, refusal)
            }
            Ok(Ran::AlreadyFired) => unreachable!("an external action carries no guard"),
            Err(e) => return Answer::refused(id, e),
        };
        trace_log::emit(&first);
        let result = match refusal {
            Some(refusal) => Err(refusal),
            None => Ok(first.output.clone()),
        };
        flow.completed.push(first);
        flow.cascade(0, Arc::new(Vec::new()));
        if let Err(e) = flow.durable() {
            return Answer::refused(id, e);
        }
        Answer {
            flow: id,
            result,
            actions: flow.completed,
            flow_error: flow.error,
            replayed: false,
        }
    }

    /// Delivers the recorded action `record` to the syncs again, in its own flow (as after a
    /// restart or a duplicate delivery): combinations that already fired do not fire again.
    pub(super) fn redeliver(engine: &'e Engine, record: ActionRecord) -> Result<Answer, ActionError> {
        let id = record.flow;
        let mut flow = Flow::new(engine, id, engine.recorded_flow(id)?);
        let trigger = Completed::from(record);
        // The recorded flow holds the trigger (it was read back from the same records).
        let at = match flow.completed.iter().position(|c| c.id == trigger.id) {
            Some(at) => at,
            None => {
                flow.completed.push(trigger.clone());
                flow.completed.len() - 1
            }
        };
        let before = flow.completed.len();
        flow.cascade(at, Arc::new(Vec::new()));
        let mut actions = vec![trigger.clone()];
        actions.extend(flow.completed.split_off(before));
        flow.durable()?;
        Ok(Answer {
            flow: id,
            result: Ok(trigger.output),
            actions,
            flow_error: flow.error,
            replayed: false,
        })
    }

    fn committed(&mut self, generation: u64, changed: bool) {
        self.last = self.last.max(Some(generation));
        self.changed |= changed;
    }

    /// Waits, once, before the flow is answered. A flow that changed state waits until every
    /// commit of it is on disk (one flush, shared with concurrent flows). A flow that changed
    /// nothing (a read through `Requesting`) waits only until every change it may have read is
    /// on disk, which is already so unless another flow's flush is under way: its own action
    /// records reach the disk with the next flush. (Its last commit came after its reads, so
    /// every change it read was counted by then.)
    fn durable(&self) -> Result<(), ActionError> {
        let Some(last) = self.last else {
            return Ok(());
        };
        let store = &self.engine.store;
        if !self.changed {
            return store.wait_changes_durable().map_err(super::store_error);
        }
        let started = std::time::Instant::now();
        let durable = store.wait_durable(last);
        crate::observe::flush(started.elapsed());
        durable.map_err(super::store_error)
    }

    /// Fires everything the flow's action at `trigger` sets off, depth first.
    fn cascade(&mut self, trigger: usize, chain: Arc<Vec<String>>) {
        let mut stack: Vec<Pending> = Vec::new();
        self.firings(trigger, &chain, &mut stack);
        while let Some(next) = stack.pop() {
            if self.completed.len() >= self.engine.cascade_limit {
                self.error = Some(runaway(self.engine.cascade_limit, &next.chain));
                return;
            }
            let Some(concept) = self.engine.registry.get(&next.concept) else {
                self.error = Some(ActionError::internal(format!(
                    "sync {} invokes {}.{}, but there is no concept {:?}",
                    next.cause.sync, next.concept, next.action, next.concept
                )));
                return;
            };
            match action::run(
                self.engine,
                concept.as_ref(),
                &next.action,
                next.input.into(),
                self.id,
                Some(&next.cause),
                None,
            ) {
                Ok(Ran::Done {
                    completed: done,
                    generation,
                    changed,
                    ..
                }) => {
                    let done = *done;
                    trace_log::emit(&done);
                    self.committed(generation, changed);
                    // The flow keeps the action; syncs read it there (a large answer is not copied).
                    self.completed.push(done);
                    self.firings(self.completed.len() - 1, &next.chain, &mut stack);
                }
                Ok(Ran::AlreadyFired) => {}
                Err(e) => {
                    self.error = Some(e);
                    return;
                }
            }
        }
    }

    /// Pushes onto `stack` (so that they pop in order) the invocations of every sync that the
    /// flow's action at `trigger` completes a match for.
    fn firings(&mut self, trigger: usize, chain: &Arc<Vec<String>>, stack: &mut Vec<Pending>) {
        let engine = self.engine;
        let trigger = &self.completed[trigger];
        let query = |c: &str, q: &str, input: Value| engine.query(c, q, input);
        let mut found: Vec<Pending> = Vec::new();
        for sync in engine.syncs.triggered_by(&trigger.concept, &trigger.action) {
            for (matched, bindings) in joins(&sync, trigger, &self.completed) {
                if !self.fired.insert((sync.name.clone(), matched.clone())) {
                    continue;
                }
                let first_guard = EngineKey::FireGuard {
                    sync: sync.name.clone(),
                    matched: matched.clone(),
                    step: 0,
                };
                match engine.store.engine_row(&first_guard) {
                    Ok(None) => {}
                    Ok(Some(_)) => continue,
                    Err(e) => {
                        self.error = Some(super::store_error(e));
                        return;
                    }
                }
                let mut sync_chain = (**chain).clone();
                sync_chain.push(sync.name.clone());
                let sync_chain = Arc::new(sync_chain);
                let rows = evaluate_where(&sync, bindings, &query);
                let per_row = sync.then.len() as u32;
                for (row, b) in rows.into_iter().enumerate() {
                    let inputs = invocation_inputs(&sync.then, b);
                    for (i, (inv, input)) in sync.then.iter().zip(inputs).enumerate() {
                        found.push(Pending {
                            concept: inv.concept.clone(),
                            action: inv.action.clone(),
                            input,
                            cause: Cause {
                                sync: sync.name.clone(),
                                matched: matched.clone(),
                                step: row as u32 * per_row + i as u32,
                                depth: trigger.depth + 1,
                            },
                            chain: sync_chain.clone(),
                        });
                    }
                }
            }
        }
        stack.extend(found.into_iter().rev());
    }
}

/// What `GET /api/flows/{flow}` answers.
#[derive(Debug, Clone, Serialize)]
pub struct FlowReport {
    pub flow: Uuid,
    pub actions: Vec<ActionRecord>,
    pub firings: Vec<Firing>,
}

impl FlowReport {
    /// A recorded flow, from its records in order: the actions and the firings that linked them.
    pub(super) fn of(flow: Uuid, records: Vec<ActionRecord>) -> Option<FlowReport> {
        if records.is_empty() {
            return None;
        }
        let mut firings: Vec<Firing> = Vec::new();
        for r in &records {
            let Some(sync) = &r.sync else { continue };
            match firings.iter_mut().find(|f| &f.sync == sync && f.matched == r.cause) {
                Some(f) => f.produced.push(r.id),
                None => firings.push(Firing {
                    sync: sync.clone(),
                    matched: r.cause.clone(),
                    produced: vec![r.id],
                }),
            }
        }
        Some(FlowReport {
            flow,
            actions: records,
            firings,
        })
    }
}

/// One firing of a sync: the actions its `when` matched and the actions it produced.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Firing {
    pub sync: String,
    pub matched: Vec<u64>,
    pub produced: Vec<u64>,
}

fn runaway(limit: usize, chain: &[String]) -> ActionError {
    let mut loop_syncs: Vec<&str> = Vec::new();
    for s in chain.iter().rev() {
        if !loop_syncs.contains(&s.as_str()) {
            loop_syncs.push(s);
        }
    }
    loop_syncs.reverse();
    ActionError::new(
        ErrorKind::Internal,
        "CASCADE_LIMIT",
        format!(
            "the flow was stopped after {limit} actions: syncs {} keep firing each other",
            loop_syncs.join(" → ")
        ),
    )
}
