//! Compaction of the engine's action history on the sled store: the boundary, then the deletes in
//! batches (see [`Store::compact`](crate::store::Store::compact) for the rules).

use super::{keys, SledStore};
use crate::store::keys::{fire_guard_largest_matched, FIRE_GUARD};
use crate::store::{CompactReport, Retention, StoreError};
use chrono::{DateTime, Utc};
use concept_core::StoreFault;
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// How many action records one delete batch removes (each with its flow-index row, so twice as
/// many keys); a guard batch removes twice as many guards.
pub(super) const RECORD_BATCH: usize = 2_000;

/// The part of an action record compaction reads.
#[derive(Deserialize)]
struct RecordHead {
    flow: Uuid,
    at: DateTime<Utc>,
}

fn record_head(id: u64, bytes: &[u8]) -> Result<RecordHead, StoreError> {
    serde_json::from_slice(bytes)
        .map_err(|e| StoreError::Fault(StoreFault::new(format!("action record {id} does not decode: {e}"))))
}

/// Compacts under `retention` at `now`, deleting `batch` records (or `2 * batch` guards) per
/// write. `stop_after` ends the run after that many writes, as an interruption would (tests).
pub(super) fn run(
    store: &SledStore,
    retention: &Retention,
    now: DateTime<Utc>,
    batch: usize,
    stop_after: Option<usize>,
) -> Result<CompactReport, StoreError> {
    if retention.keeps_everything() {
        return Ok(CompactReport::default());
    }
    let _one_at_a_time = store.compacting.lock().unwrap_or_else(|p| p.into_inner());
    let last_action = store.writer.lock().unwrap_or_else(|p| p.into_inner()).last_action;
    let boundary = boundary(store, retention, now, last_action)?;
    let mut report = CompactReport {
        boundary,
        ..CompactReport::default()
    };
    let mut writes_left = stop_after.unwrap_or(usize::MAX);
    delete_records(store, boundary, batch.max(1), &mut writes_left, &mut report)?;
    delete_guards(store, boundary, batch.max(1) * 2, &mut writes_left, &mut report)?;
    if report.records + report.guards > 0 {
        store.db.flush()?;
    }
    Ok(report)
}

/// The smallest action id to keep.
fn boundary(store: &SledStore, retention: &Retention, now: DateTime<Utc>, last_action: u64) -> Result<u64, StoreError> {
    let end = last_action.saturating_add(1);
    let by_count = match retention.max_actions {
        Some(n) => last_action.saturating_sub(n).saturating_add(1),
        None => end,
    };
    // A negative age counts as zero; one reaching before the calendar keeps everything.
    let cutoff = retention.max_age.map(|age| {
        now.checked_sub_signed(age.max(chrono::Duration::zero()))
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    });
    // The first record id of each flow with a record below the boundary.
    let mut firsts: HashMap<Uuid, u64> = HashMap::new();
    let mut boundary = by_count;
    for item in store.tree.range(keys::record(0)..keys::record(by_count)) {
        let (k, v) = item?;
        let id = keys::u64_value(&k[1..]);
        let head = record_head(id, &v)?;
        if cutoff.is_some_and(|cutoff| head.at >= cutoff) {
            boundary = id;
            break;
        }
        firsts.entry(head.flow).or_insert(id);
    }
    // Lower the boundary to the start of every flow straddling it, until none does (keeping one
    // flow whole can make an earlier, interleaved flow straddle the new boundary).
    loop {
        let mut lowest = boundary;
        for (&flow, &first) in &firsts {
            if first < lowest && has_record_from(store, flow, boundary)? {
                lowest = first;
            }
        }
        if lowest == boundary {
            return Ok(boundary);
        }
        boundary = lowest;
    }
}

/// Whether `flow` has a record with an id of `from` or more.
fn has_record_from(store: &SledStore, flow: Uuid, from: u64) -> Result<bool, StoreError> {
    match store
        .tree
        .range(keys::flow(flow, from)..=keys::flow(flow, u64::MAX))
        .next()
    {
        Some(item) => item.map(|_| true).map_err(StoreError::from),
        None => Ok(false),
    }
}

/// Deletes every record below `boundary` and its flow-index row, `batch` records per write.
fn delete_records(
    store: &SledStore,
    boundary: u64,
    batch: usize,
    writes_left: &mut usize,
    report: &mut CompactReport,
) -> Result<(), StoreError> {
    let mut flows: HashSet<Uuid> = HashSet::new();
    let mut from = 0u64;
    while *writes_left > 0 {
        let mut write = sled::Batch::default();
        let mut n = 0u64;
        for item in store.tree.range(keys::record(from)..keys::record(boundary)).take(batch) {
            let (k, v) = item?;
            let id = keys::u64_value(&k[1..]);
            let head = record_head(id, &v)?;
            write.remove(k);
            write.remove(keys::flow(head.flow, id));
            flows.insert(head.flow);
            from = id + 1;
            n += 1;
        }
        if n == 0 {
            break;
        }
        apply(store, write)?;
        *writes_left -= 1;
        report.records += n;
    }
    report.flows = flows.len() as u64;
    Ok(())
}

/// Deletes every fire guard whose largest matched action id is below `boundary`, `batch` per
/// write.
fn delete_guards(
    store: &SledStore,
    boundary: u64,
    batch: usize,
    writes_left: &mut usize,
    report: &mut CompactReport,
) -> Result<(), StoreError> {
    let mut guards = store.tree.scan_prefix([FIRE_GUARD]);
    while *writes_left > 0 {
        let mut write = sled::Batch::default();
        let mut n = 0u64;
        for item in guards.by_ref() {
            let (k, _) = item?;
            if fire_guard_largest_matched(&k).is_some_and(|largest| largest < boundary) {
                write.remove(k);
                n += 1;
                if n as usize == batch {
                    break;
                }
            }
        }
        if n == 0 {
            break;
        }
        apply(store, write)?;
        *writes_left -= 1;
        report.guards += n;
    }
    Ok(())
}

/// Applies one delete batch under the writer lock, so it never lands inside a commit.
fn apply(store: &SledStore, write: sled::Batch) -> Result<(), StoreError> {
    let _writer = store.writer.lock().unwrap_or_else(|p| p.into_inner());
    store.tree.apply_batch(write)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ActionRecord, Commit, EngineKey, Store};
    use chrono::TimeZone;

    fn at(day: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::days(day)
    }

    /// Flows A (days 0, 0), B (1, 1), C (2, 2) and D (30): ids 1–7, each action after the
    /// first of its flow guarded by a firing over the previous one.
    fn filled() -> SledStore {
        let store = SledStore::temporary().expect("store");
        let plan = [(1u128, 0i64), (1, 0), (2, 1), (2, 1), (3, 2), (3, 2), (4, 30)];
        let mut previous: Option<(Uuid, u64)> = None;
        for (flow, day) in plan {
            let flow = Uuid::from_u128(flow);
            let guarded_rows = match previous {
                Some((f, id)) if f == flow => vec![(
                    EngineKey::FireGuard {
                        sync: "Next".into(),
                        matched: vec![id],
                        step: 0,
                    },
                    Vec::new(),
                )],
                _ => Vec::new(),
            };
            let record = ActionRecord {
                id: 0,
                flow,
                concept: "Test".into(),
                action: "step".into(),
                input: serde_json::json!({}),
                output: serde_json::json!({}),
                failed: false,
                at: at(day),
                sync: None,
                cause: Vec::new(),
                depth: 0,
                events: None,
            };
            let receipt = store
                .commit(Commit {
                    concept: "Test".into(),
                    at: at(day),
                    appends: Vec::new(),
                    record: Some(record),
                    guarded_rows,
                })
                .expect("commit");
            previous = Some((flow, receipt.action));
        }
        store
    }

    fn everything(store: &SledStore) -> Vec<(Vec<u8>, Vec<u8>)> {
        store
            .tree
            .iter()
            .map(|item| item.map(|(k, v)| (k.to_vec(), v.to_vec())).expect("row"))
            .collect()
    }

    #[test]
    fn an_interrupted_compaction_is_finished_by_running_it_again() {
        let retention = Retention {
            max_age: Some(chrono::Duration::days(7)),
            max_actions: None,
        };
        let now = at(31);

        let direct = filled();
        let report = direct.compact(&retention, now).expect("compact");
        assert_eq!(
            report,
            CompactReport {
                records: 6,
                flows: 3,
                guards: 3,
                boundary: 7
            }
        );

        let interrupted = filled();
        // One write of three records: flow A and half of flow B, no guard.
        let partial = run(&interrupted, &retention, now, 3, Some(1)).expect("partial");
        assert_eq!((partial.records, partial.flows, partial.guards), (3, 2, 0));
        assert!(interrupted.action(3).expect("read").is_none());
        assert!(
            interrupted.action(4).expect("read").is_some(),
            "the run went past its one write"
        );
        let rest = interrupted.compact(&retention, now).expect("finish");
        assert_eq!(
            rest,
            CompactReport {
                records: 3,
                flows: 2,
                guards: 3,
                boundary: 7
            }
        );
        assert!(
            everything(&interrupted) == everything(&direct),
            "an interrupted and re-run compaction left a different store"
        );
    }

    #[test]
    fn guard_keys_name_their_largest_matched_action() {
        let key = |matched: Vec<u64>| {
            crate::store::keys::engine(&EngineKey::FireGuard {
                sync: "S".into(),
                matched,
                step: 7,
            })
        };
        assert_eq!(
            crate::store::keys::fire_guard_largest_matched(&key(vec![3, 9, 4])),
            Some(9)
        );
        assert_eq!(
            crate::store::keys::fire_guard_largest_matched(&key(vec![256])),
            Some(256)
        );
        assert_eq!(crate::store::keys::fire_guard_largest_matched(&key(vec![])), None);
        assert_eq!(
            crate::store::keys::fire_guard_largest_matched(&crate::store::keys::engine(&EngineKey::Idempotency(
                "k".into()
            ))),
            None
        );
    }
}
