//! Flows: an external action and everything syncs fire because of it. After each completed
//! action the engine joins the syncs that mention it over the flow's completed actions,
//! evaluates their `where`, and runs their `then` invocations depth first (an explicit stack,
//! so a deep cascade cannot overflow the thread's stack). Each fired action carries a fire-once
//! guard in its own commit; the flow waits for durability once, at its end.

use super::matching::{evaluate_where, invocation_input, joins, Completed};
use super::trace_log;
use super::{Answer, Cause, Engine, Ran};
use crate::store::{ActionRecord, EngineKey, StoreError};
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

/// The state of one flow while it runs.
struct FlowRun {
    flow: Uuid,
    completed: Vec<Completed>,
    /// (sync, matched) combinations already fired in this run.
    fired: HashSet<(String, Vec<u64>)>,
    /// The highest durability generation to wait for.
    wait: Option<u64>,
    error: Option<ActionError>,
}

impl Engine {
    /// Runs an external action and its cascade as one flow.
    pub(super) fn run_flow(
        &self,
        flow: Uuid,
        concept: &dyn DynConcept,
        action: &str,
        input: concept_core::Input,
        idempotency: Option<(&str, &str)>,
    ) -> Answer {
        let _running = self.enter_flow(flow);
        crate::observe::flow();
        let mut run = FlowRun {
            flow,
            completed: Vec::new(),
            fired: HashSet::new(),
            wait: None,
            error: None,
        };
        let (first, refusal) = match self.run_action(concept, action, input, flow, None, idempotency) {
            Ok(Ran::Done {
                completed,
                wait,
                refusal,
            }) => {
                run.wait = wait;
                (*completed, refusal)
            }
            Ok(Ran::AlreadyFired) => unreachable!("an external action carries no guard"),
            Err(e) => return Answer::refused(flow, e),
        };
        trace_log::emit(&first);
        let result = match refusal {
            Some(refusal) => Err(refusal),
            None => Ok(first.output.clone()),
        };
        run.completed.push(first.clone());
        self.cascade(&mut run, &first, Arc::new(Vec::new()));
        if let Some(generation) = run.wait {
            let started = std::time::Instant::now();
            let durable = self.store.wait_durable(generation);
            crate::observe::flush(started.elapsed());
            if let Err(e) = durable {
                return Answer::refused(flow, super::store_error(e));
            }
        }
        Answer {
            flow,
            result,
            actions: run.completed,
            flow_error: run.error,
            replayed: false,
        }
    }

    /// The recorded actions of `flow`, in order, as syncs see them.
    pub(super) fn recorded_flow(&self, flow: Uuid) -> Result<Vec<Completed>, ActionError> {
        Ok(self
            .store
            .flow(flow)
            .map_err(super::store_error)?
            .into_iter()
            .map(completed_of)
            .collect())
    }

    /// Delivers a recorded action to the syncs again, in its own flow (as after a restart or a
    /// duplicate delivery): combinations that already fired do not fire again.
    pub fn redeliver(&self, action_id: u64) -> Result<Answer, ActionError> {
        let record = self
            .store
            .action(action_id)
            .map_err(super::store_error)?
            .ok_or_else(|| ActionError::not_found("ACTION_NOT_FOUND", format!("no action record {action_id}")))?;
        let flow = record.flow;
        let mut run = FlowRun {
            flow,
            completed: self.recorded_flow(flow)?,
            fired: HashSet::new(),
            wait: None,
            error: None,
        };
        let before = run.completed.len();
        let trigger = completed_of(record);
        self.cascade(&mut run, &trigger, Arc::new(Vec::new()));
        let mut actions = vec![trigger.clone()];
        actions.extend(run.completed.split_off(before));
        if let Some(generation) = run.wait {
            let started = std::time::Instant::now();
            let durable = self.store.wait_durable(generation);
            crate::observe::flush(started.elapsed());
            durable.map_err(super::store_error)?;
        }
        Ok(Answer {
            flow,
            result: Ok(trigger.output),
            actions,
            flow_error: run.error,
            replayed: false,
        })
    }

    /// Fires everything `trigger` sets off, depth first.
    fn cascade(&self, run: &mut FlowRun, trigger: &Completed, chain: Arc<Vec<String>>) {
        let mut stack: Vec<Pending> = Vec::new();
        self.firings(run, trigger, &chain, &mut stack);
        while let Some(next) = stack.pop() {
            if run.completed.len() >= self.cascade_limit {
                run.error = Some(runaway(self.cascade_limit, &next.chain));
                return;
            }
            let Some(concept) = self.registry.get(&next.concept) else {
                run.error = Some(ActionError::internal(format!(
                    "sync {} invokes {}.{}, but there is no concept {:?}",
                    next.cause.sync, next.concept, next.action, next.concept
                )));
                return;
            };
            match self.run_action(
                concept.as_ref(),
                &next.action,
                next.input.into(),
                run.flow,
                Some(&next.cause),
                None,
            ) {
                Ok(Ran::Done {
                    completed: done, wait, ..
                }) => {
                    let done = *done;
                    trace_log::emit(&done);
                    run.wait = run.wait.max(wait);
                    run.completed.push(done.clone());
                    self.firings(run, &done, &next.chain, &mut stack);
                }
                Ok(Ran::AlreadyFired) => {}
                Err(e) => {
                    run.error = Some(e);
                    return;
                }
            }
        }
    }

    /// Pushes onto `stack` (so that they pop in order) the invocations of every sync that
    /// `trigger` completes a match for.
    fn firings(&self, run: &mut FlowRun, trigger: &Completed, chain: &Arc<Vec<String>>, stack: &mut Vec<Pending>) {
        let query = |c: &str, q: &str, input: Value| self.query(c, q, input);
        let mut found: Vec<Pending> = Vec::new();
        for sync in self.syncs.triggered_by(&trigger.concept, &trigger.action) {
            for (matched, bindings) in joins(&sync, trigger, &run.completed) {
                if !run.fired.insert((sync.name.clone(), matched.clone())) {
                    continue;
                }
                let first_guard = EngineKey::FireGuard {
                    sync: sync.name.clone(),
                    matched: matched.clone(),
                    step: 0,
                };
                match self.store.engine_row(&first_guard) {
                    Ok(None) => {}
                    Ok(Some(_)) => continue,
                    Err(e) => {
                        run.error = Some(super::store_error(e));
                        return;
                    }
                }
                let mut sync_chain = (**chain).clone();
                sync_chain.push(sync.name.clone());
                let sync_chain = Arc::new(sync_chain);
                let rows = evaluate_where(&sync, bindings, &query);
                let per_row = sync.then.len() as u32;
                for (row, b) in rows.iter().enumerate() {
                    for (i, inv) in sync.then.iter().enumerate() {
                        found.push(Pending {
                            concept: inv.concept.clone(),
                            action: inv.action.clone(),
                            input: invocation_input(inv, b),
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

    /// A recorded flow: its actions in order and the firings that linked them.
    pub fn flow_report(&self, flow: Uuid) -> Result<Option<FlowReport>, StoreError> {
        let records = self.store.flow(flow)?;
        if records.is_empty() {
            return Ok(None);
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
        Ok(Some(FlowReport {
            flow,
            actions: records,
            firings,
        }))
    }
}

/// What `GET /api/flows/{flow}` answers.
#[derive(Debug, Clone, Serialize)]
pub struct FlowReport {
    pub flow: Uuid,
    pub actions: Vec<ActionRecord>,
    pub firings: Vec<Firing>,
}

/// One firing of a sync: the actions its `when` matched and the actions it produced.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Firing {
    pub sync: String,
    pub matched: Vec<u64>,
    pub produced: Vec<u64>,
}

fn completed_of(r: ActionRecord) -> Completed {
    Completed {
        id: r.id,
        concept: r.concept,
        action: r.action,
        input: r.input,
        output: r.output,
        failed: r.failed,
        sync: r.sync,
        cause: r.cause,
        depth: r.depth,
    }
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
