//! One action: decide it (the concept's `perform` over a read view), commit its events,
//! record and guards in one atomic commit, and decide again when it lost a race for its
//! stream. A refusal is recorded too. Durability is not waited for here: the flow waits once,
//! at its end (see `flow`).

use super::matching::Completed;
use super::{store_error, summary, Engine, Remembered};
use crate::store::{Commit, EngineKey, StoreError};
use concept_core::{ActionCtx, ActionError, ActionKind, DynConcept, ErrorKind, Input};
use serde_json::Value;
use uuid::Uuid;

/// How often an action is re-decided after losing a race for its stream.
const CONFLICT_RETRIES: usize = 8;

/// Why an action runs: the sync that fired it, what its `when` matched, and its place in the
/// firing (its fire-once guard).
#[derive(Debug, Clone)]
pub(super) struct Cause {
    pub sync: String,
    pub matched: Vec<u64>,
    pub step: u32,
    pub depth: u32,
}

/// What running one action came to.
pub(super) enum Ran {
    /// Completed (successfully or refused) and recorded.
    Done {
        completed: Box<Completed>,
        /// The commit's durability generation.
        generation: u64,
        /// Whether it changed state (appended events) or remembers an idempotency key: what a
        /// flow must have on disk before it is answered.
        changed: bool,
        refusal: Option<ActionError>,
    },
    /// Its fire-once guard was already there: this firing happened before.
    AlreadyFired,
}

/// Decides and commits one action (a refusal is recorded too), with its fire-once guard if a
/// sync fired it. Does not wait for durability: the flow does, once, at its end.
pub(super) fn run(
    engine: &Engine,
    concept: &dyn DynConcept,
    action: &str,
    input: Input,
    flow: Uuid,
    cause: Option<&Cause>,
    idempotency: Option<(&str, &str)>,
) -> Result<Ran, ActionError> {
    let guard = cause.map(|c| EngineKey::FireGuard {
        sync: c.sync.clone(),
        matched: c.matched.clone(),
        step: c.step,
    });
    // The rows that must not exist yet, with the answer an idempotency key remembers.
    let guarded = |output: &Value, refusal: Option<&ActionError>| -> Vec<(EngineKey, Vec<u8>)> {
        let mut rows: Vec<(EngineKey, Vec<u8>)> = guard.iter().map(|g| (g.clone(), Vec::new())).collect();
        if let Some((key, fingerprint)) = idempotency {
            let remembered = Remembered {
                flow,
                concept: concept.name().to_string(),
                action: action.to_string(),
                output: output.clone(),
                refusal: refusal.map(|r| (r.kind, r.code.clone())),
                request: Some(fingerprint.to_string()),
            };
            rows.push((
                EngineKey::Idempotency(key.to_string()),
                serde_json::to_vec(&remembered).unwrap_or_default(),
            ));
        }
        rows
    };
    // The input as records and syncs see it (secrets redacted; large arrays summarised,
    // except in a system action, whose input exists nowhere else): built once, so a 20 MB
    // ingest is not copied again for the record and for sync matching.
    let spec = concept.spec().action(action);
    let system = spec.map(|a| a.kind) == Some(ActionKind::System);
    let kept = summary::summary(&input, system);
    // An open input (`Requesting.request`'s fields, `Requesting.respond`'s answer) goes
    // whole into the live flow: what a sync passes to `respond` is the HTTP answer, and a
    // 25,000-id `trackIds` must reach the client whole. Only the record is summarised.
    let open = spec.is_some_and(|a| a.open_input);
    // Decoded once: a retry after a lost race runs on the same decoded input.
    let decoded = concept.decode(action, &input);
    // (Moved, not copied: the input is not needed past this point.)
    let mut live = open.then(|| input.into_value().unwrap_or_else(|_| kept.clone()));
    let mut attempt = 0;
    loop {
        let ctx = ActionCtx::new(flow, engine.now());
        // The action as the flow sees it; its record is made from it (with the kept input). Its
        // own input is put in once it committed (moved, not copied: a large open input is the
        // HTTP answer).
        let completed = |output: Value, failed: bool| Completed {
            id: 0,
            concept: concept.name().to_string(),
            action: action.to_string(),
            input: Value::Null,
            output,
            failed,
            sync: cause.map(|c| c.sync.clone()),
            cause: cause.map(|c| c.matched.clone()).unwrap_or_default(),
            depth: cause.map_or(0, |c| c.depth),
        };
        let performed = match &decoded {
            Ok(input) => {
                let view = engine.store.view(concept.name());
                concept.perform(&ctx, view.as_ref(), action, input)
            }
            Err(e) => Err(e.clone()),
        };
        let (mut done, appends, refusal) = match performed {
            Ok(p) => (completed(p.output, false), p.appends, None),
            Err(refusal) => (completed(refusal.to_output(), true), Vec::new(), Some(refusal)),
        };
        let commit = Commit {
            concept: concept.name().to_string(),
            at: ctx.now,
            appends,
            record: Some(done.record(flow, ctx.now, kept.clone())),
            guarded_rows: guarded(&done.output, refusal.as_ref()),
        };
        // What an answer promises to keep: the events and the answer an idempotency key
        // remembers. An action that appended nothing and remembers no key (a read through
        // `Requesting`) changed nothing, and its flow need not flush (see `Flow::durable`).
        let changed = commit.changes_state();
        let started = std::time::Instant::now();
        let committed = engine.store.commit(commit);
        crate::observe::commit(started.elapsed());
        match committed {
            Ok(receipt) => {
                crate::observe::action(
                    concept.name(),
                    action,
                    refusal.is_some(),
                    cause.map(|c| c.sync.as_str()),
                );
                if refusal.is_none() {
                    concept.committed(action, &done.output);
                }
                done.id = receipt.action;
                done.input = live.take().unwrap_or(kept);
                return Ok(Ran::Done {
                    completed: Box::new(done),
                    generation: receipt.generation,
                    changed,
                    refusal,
                });
            }
            Err(StoreError::VersionConflict { .. }) if attempt < CONFLICT_RETRIES => {
                attempt += 1;
                continue;
            }
            Err(StoreError::GuardExists(EngineKey::Idempotency(_))) => {
                return Err(ActionError::new(
                    ErrorKind::Conflict,
                    "IDEMPOTENCY_KEY_RACE",
                    "another call with this Idempotency-Key committed first",
                ))
            }
            Err(StoreError::GuardExists(_)) if guard.is_some() => return Ok(Ran::AlreadyFired),
            Err(e) => return Err(store_error(e)),
        }
    }
}
