//! Retention and compaction of the engine's action history on the real stores (sled, and
//! PostgreSQL when configured): whole old flows go with their flow-index rows and fire guards,
//! straddling flows stay whole, the concepts' events and projections are never touched, and ids
//! are never reused.

use crate::common;

use chrono::{DateTime, Duration, TimeZone, Utc};
use common::*;
use librarycache::store::{ActionRecord, Commit, CompactReport, EngineKey, Retention, RetentionError, Store};
use serde_json::json;
use uuid::Uuid;

/// Midnight of `day` days after 2025-01-01.
fn day(day: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap() + Duration::days(day)
}

fn flow(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn guard(sync: &str, matched: &[u64], step: u32) -> EngineKey {
    EngineKey::FireGuard {
        sync: sync.to_string(),
        matched: matched.to_vec(),
        step,
    }
}

/// Commits one action of `flow` at `at` with the given fire guards; returns its id.
fn act(store: &dyn Store, flow: Uuid, at: DateTime<Utc>, guards: &[EngineKey]) -> u64 {
    let record = ActionRecord {
        id: 0,
        flow,
        concept: "Test".into(),
        action: "step".into(),
        input: json!({"flow": flow.to_string()}),
        output: json!({}),
        failed: false,
        at,
        sync: None,
        cause: Vec::new(),
        depth: 0,
        events: None,
    };
    let commit = Commit {
        concept: "Test".into(),
        at,
        appends: vec![],
        record: Some(record),
        guarded_rows: guards.iter().map(|g| (g.clone(), Vec::new())).collect(),
    };
    store.commit(commit).expect("commit").action
}

/// The ids of a flow's records.
fn ids(store: &dyn Store, f: Uuid) -> Vec<u64> {
    store.flow(f).expect("flow").iter().map(|r| r.id).collect()
}

/// The ids in `1..=last` that still have a record.
fn kept(store: &dyn Store, last: u64) -> Vec<u64> {
    (1..=last)
        .filter(|&id| store.action(id).expect("action").is_some())
        .collect()
}

fn by_age(age: Duration) -> Retention {
    Retention {
        max_age: Some(age),
        max_actions: None,
    }
}

fn newest(n: u64) -> Retention {
    Retention {
        max_age: None,
        max_actions: Some(n),
    }
}

fn max_age_removes_whole_old_flows_keeps_a_straddling_flow_whole_and_never_reuses_ids(t: TestStore) {
    let store = t.open();
    let (a, b, c, d) = (flow(0xA), flow(0xB), flow(0xC), flow(0xD));
    // ids:             1  2  3  4  5   6   7
    // flows:           A  A  B  C  D   C   D
    // days:            0  0  1  2  20  20  21
    assert_eq!(act(store.as_ref(), a, day(0), &[]), 1);
    assert_eq!(act(store.as_ref(), a, day(0), &[guard("Next", &[1], 0)]), 2);
    assert_eq!(act(store.as_ref(), b, day(1), &[]), 3);
    assert_eq!(act(store.as_ref(), c, day(2), &[guard("Pair", &[2, 3], 0)]), 4);
    assert_eq!(act(store.as_ref(), d, day(20), &[guard("Pair", &[3, 4], 0)]), 5);
    assert_eq!(
        act(
            store.as_ref(),
            c,
            day(20),
            &[guard("Next", &[4], 0), guard("Next", &[4], 1)]
        ),
        6
    );
    assert_eq!(act(store.as_ref(), d, day(21), &[guard("Late", &[1, 5], 0)]), 7);
    let c_before = store.flow(c).expect("flow");
    let d_before = store.flow(d).expect("flow");

    // Seven days before day 22 is day 15: record 5 is the first young one, but flow C (4 and 6)
    // straddles it, so the boundary drops to 4 and C is kept whole.
    let week = by_age(Duration::days(7));
    let report = store.compact(&week, day(22)).expect("compact");
    assert_eq!(
        report,
        CompactReport {
            records: 3,
            flows: 2,
            guards: 2,
            boundary: 4
        }
    );
    assert!(ids(store.as_ref(), a).is_empty(), "old flow A is still listed");
    assert!(ids(store.as_ref(), b).is_empty(), "old flow B is still listed");
    for id in 1..=3 {
        assert!(store.action(id).expect("action").is_none(), "record {id} survived");
    }
    assert_eq!(
        store.flow(c).expect("flow"),
        c_before,
        "the straddling flow was not kept whole"
    );
    assert_eq!(store.flow(d).expect("flow"), d_before, "a young flow changed");
    // Guards whose largest matched id is below 4 are gone; the others stay with their action.
    assert_eq!(store.engine_row(&guard("Next", &[1], 0)).expect("row"), None);
    assert_eq!(store.engine_row(&guard("Pair", &[2, 3], 0)).expect("row"), None);
    let fired = |g: EngineKey| {
        store
            .engine_row(&g)
            .expect("row")
            .map(|v| u64::from_be_bytes(v[..8].try_into().unwrap()))
    };
    assert_eq!(fired(guard("Pair", &[3, 4], 0)), Some(5));
    assert_eq!(fired(guard("Next", &[4], 0)), Some(6));
    assert_eq!(fired(guard("Next", &[4], 1)), Some(6));
    assert_eq!(fired(guard("Late", &[1, 5], 0)), Some(7));

    // Compacting again removes nothing more; the last action id is kept.
    let again = store.compact(&week, day(22)).expect("compact again");
    assert_eq!(
        again,
        CompactReport {
            boundary: 4,
            ..CompactReport::default()
        }
    );
    assert_eq!(store.stats().expect("stats").actions, 7);

    // The store reopens with the compacted state, and the next action gets a fresh, larger id.
    drop(store);
    let store = t.open();
    assert_eq!(kept(store.as_ref(), 7), vec![4, 5, 6, 7]);
    assert_eq!(store.flow(c).expect("flow"), c_before);
    assert_eq!(store.flow(d).expect("flow"), d_before);
    let fired = |g: EngineKey| {
        store
            .engine_row(&g)
            .expect("row")
            .map(|v| u64::from_be_bytes(v[..8].try_into().unwrap()))
    };
    assert_eq!(fired(guard("Pair", &[3, 4], 0)), Some(5));
    assert_eq!(fired(guard("Next", &[1], 0)), None);
    let next = act(store.as_ref(), a, day(23), &[guard("Next", &[1], 0)]);
    assert_eq!(next, 8, "an id was reused after compaction");
    assert_eq!(ids(store.as_ref(), a), vec![8]);
    assert_eq!(fired(guard("Next", &[1], 0)), Some(8));
    drop(store);
}

fn interleaved_flows_are_kept_whole_through_a_chain_of_straddles(t: TestStore) {
    let store = t.open();
    // ids:   1  2  3  4  5  6  7  8  9
    // flows: E  A  C  B  F  A  G  B  D
    for f in [0xE, 0xA, 0xC, 0xB, 0xF, 0xA, 0x6, 0xB, 0xD] {
        act(store.as_ref(), flow(f), day(0), &[]);
    }
    // The newest 3 start at 7; B (4, 8) straddles 7, then A (2, 6) straddles 4: only E goes.
    let report = store.compact(&newest(3), day(1)).expect("compact");
    assert_eq!(
        report,
        CompactReport {
            records: 1,
            flows: 1,
            guards: 0,
            boundary: 2
        }
    );
    assert_eq!(kept(store.as_ref(), 9), (2..=9).collect::<Vec<_>>());
    assert_eq!(ids(store.as_ref(), flow(0xA)), vec![2, 6]);
    assert_eq!(ids(store.as_ref(), flow(0xB)), vec![4, 8]);
    assert!(ids(store.as_ref(), flow(0xE)).is_empty());
    drop(store);
}

fn max_actions_keeps_the_newest_n_rounded_up_to_whole_flows(t: TestStore) {
    let store = t.open();
    // Ten flows of three actions: flow k holds ids 3k-2, 3k-1, 3k.
    for k in 1..=10u128 {
        for _ in 0..3 {
            act(store.as_ref(), flow(k), day(0), &[]);
        }
    }
    let now = day(1000);
    // More than there are: nothing goes.
    assert_eq!(
        store.compact(&newest(30), now).expect("compact"),
        CompactReport {
            boundary: 1,
            ..CompactReport::default()
        }
    );
    assert_eq!(kept(store.as_ref(), 30).len(), 30);

    // 12 falls on a flow's start: exactly the newest 12 are kept.
    let report = store.compact(&newest(12), now).expect("compact");
    assert_eq!(
        report,
        CompactReport {
            records: 18,
            flows: 6,
            guards: 0,
            boundary: 19
        }
    );
    assert_eq!(kept(store.as_ref(), 30), (19..=30).collect::<Vec<_>>());
    for k in 1..=6 {
        assert!(ids(store.as_ref(), flow(k)).is_empty(), "flow {k} is still listed");
    }

    // 7 would split flow 8 (22, 23, 24): it is kept whole, so 9 records stay.
    let report = store.compact(&newest(7), now).expect("compact");
    assert_eq!(
        report,
        CompactReport {
            records: 3,
            flows: 1,
            guards: 0,
            boundary: 22
        }
    );
    assert_eq!(kept(store.as_ref(), 30), (22..=30).collect::<Vec<_>>());
    assert_eq!(ids(store.as_ref(), flow(8)), vec![22, 23, 24]);

    // Twice is once.
    assert_eq!(
        store.compact(&newest(7), now).expect("compact"),
        CompactReport {
            boundary: 22,
            ..CompactReport::default()
        }
    );
    drop(store);
}

fn the_default_retention_keeps_everything(t: TestStore) {
    let store = t.open();
    act(store.as_ref(), flow(1), day(0), &[]);
    act(store.as_ref(), flow(1), day(0), &[guard("Next", &[1], 0)]);
    act(store.as_ref(), flow(2), day(1), &[]);
    assert!(Retention::default().keeps_everything());
    let report = store.compact(&Retention::default(), day(10_000)).expect("compact");
    assert_eq!(report, CompactReport::default());
    assert_eq!(kept(store.as_ref(), 3), vec![1, 2, 3]);
    assert_eq!(ids(store.as_ref(), flow(1)), vec![1, 2]);
    assert!(store.engine_row(&guard("Next", &[1], 0)).expect("row").is_some());
    // While an age of zero at the same moment removes every flow.
    let report = store.compact(&by_age(Duration::zero()), day(10_000)).expect("compact");
    assert_eq!(
        (report.records, report.flows, report.guards, report.boundary),
        (3, 2, 1, 4)
    );
    drop(store);
}

fn real_events_and_projections_are_never_compacted(t: TestStore) {
    let engine = t.engine();
    let invoke = |action: &str, input: serde_json::Value| {
        let answer = engine.invoke("LibraryCache", action, input);
        (answer.flow, answer.result.is_ok())
    };
    let mut flows = vec![
        invoke("ingest", alice_library()),
        invoke("ingest", alice_library()), // refused: ALREADY_INGESTED, but recorded
        invoke("ingest", big_library("user:bob", 300, 5)),
        invoke(
            "sync",
            json!({"userId": "user:alice", "likes": [{"trackId": "track:c"}, {"trackId": "track:a"}],
                   "playlists": [{"id": "playlist:2", "name": "New", "entries": ["track:c"]}]}),
        ),
        invoke(
            "merge",
            json!({"userId": "user:bob", "unlikes": ["t000001"], "removedPlaylists": ["user:bob/pl3"]}),
        ),
    ];
    assert_eq!(
        flows.iter().map(|(_, ok)| *ok).collect::<Vec<_>>(),
        vec![true, false, true, true, true]
    );
    let store = engine.store().clone();
    let last = store.stats().expect("stats").actions;
    assert_eq!(last, 5);
    let log = store.read_log(0, usize::MAX).expect("log");
    let rows = store.projection_dump().expect("dump");
    assert!(
        log.len() > 10 && rows.len() > 10,
        "expected real events and rows, got {} and {}",
        log.len(),
        rows.len()
    );
    let liked = ok(&engine, "LibraryCache._getLiked", json!({"userId": "user:alice"}));
    let newest_two: Vec<_> = flows[3..].iter().map(|(f, _)| store.flow(*f).expect("flow")).collect();

    // Keep the newest two flows: the three older ones go, the events stay.
    let report = store.compact(&newest(2), engine.now()).expect("compact");
    assert_eq!(
        report,
        CompactReport {
            records: 3,
            flows: 3,
            guards: 0,
            boundary: 4
        }
    );
    for (f, _) in &flows[..3] {
        assert!(store.flow(*f).expect("flow").is_empty(), "an old flow is still listed");
    }
    assert!(store.action(1).expect("action").is_none());
    let kept_two: Vec<_> = flows[3..].iter().map(|(f, _)| store.flow(*f).expect("flow")).collect();
    assert_eq!(kept_two, newest_two, "a newer flow changed");
    assert!(
        store.read_log(0, usize::MAX).expect("log") == log,
        "compaction changed the event log"
    );
    assert!(
        store.projection_dump().expect("dump") == rows,
        "compaction changed the projections"
    );

    // Everything old by tomorrow: every record goes, the events and projections still stay,
    // and a rebuild from the untouched log gives the same projections.
    let report = store
        .compact(&by_age(Duration::zero()), engine.now() + Duration::days(1))
        .expect("compact");
    assert_eq!((report.records, report.flows, report.boundary), (2, 2, 6));
    assert_eq!(kept(store.as_ref(), last), Vec::<u64>::new());
    assert!(
        store.read_log(0, usize::MAX).expect("log") == log,
        "compaction changed the event log"
    );
    assert!(
        store.projection_dump().expect("dump") == rows,
        "compaction changed the projections"
    );
    engine.rebuild().expect("rebuild");
    assert!(dump(&engine) == rows, "a rebuild after compaction differs");
    assert_eq!(
        ok(&engine, "LibraryCache._getLiked", json!({"userId": "user:alice"})),
        liked
    );

    // A new action gets a fresh id above every compacted one, also after a restart.
    flows.push(invoke("ingest", alice_library_for("user:carol")));
    let carol = store.flow(flows[5].0).expect("flow");
    assert_eq!(carol.iter().map(|r| r.id).collect::<Vec<_>>(), vec![6]);
    drop(store);
    drop(engine);
    let engine = t.engine();
    let after = engine.store().read_log(0, usize::MAX).expect("log");
    assert!(
        after.len() > log.len() && after[..log.len()] == log[..],
        "the log changed across a restart"
    );
    assert_eq!(engine.store().flow(flows[5].0).expect("flow"), carol);
    let (next, ok_next) = {
        let answer = engine.invoke("LibraryCache", "ingest", alice_library_for("user:dave"));
        (answer.flow, answer.result.is_ok())
    };
    assert!(ok_next);
    assert_eq!(ids(engine.store().as_ref(), next), vec![7]);
    drop(engine);
}

/// Alice's library under another user id.
fn alice_library_for(user: &str) -> serde_json::Value {
    let mut library = alice_library();
    library["userId"] = json!(user);
    library
}

#[test]
fn ages_parse_in_days_hours_minutes_and_seconds() {
    assert_eq!(Retention::parse_age("30d"), Ok(Duration::days(30)));
    assert_eq!(Retention::parse_age("12h"), Ok(Duration::hours(12)));
    assert_eq!(Retention::parse_age("90m"), Ok(Duration::minutes(90)));
    assert_eq!(Retention::parse_age("45s"), Ok(Duration::seconds(45)));
    assert_eq!(Retention::parse_age(" 7d "), Ok(Duration::days(7)));
    // The one duration grammar: bare seconds too, as `every:` and `maxAge` accept them.
    assert_eq!(Retention::parse_age("90"), Ok(Duration::seconds(90)));
    for bad in [
        "",
        "d",
        "30w",
        "30D",
        "-5d",
        "1.5h",
        "3 d",
        "d30",
        "99999999999999999999d",
        "999999999999d",
    ] {
        match Retention::parse_age(bad) {
            Ok(age) => panic!("{bad:?} parsed as {age:?}"),
            Err(e) => {
                assert!(
                    matches!(&e, RetentionError::BadAge { text, .. } if text == bad),
                    "{e:?}"
                );
                assert!(
                    e.to_string().contains(&format!("{bad:?}")),
                    "the error does not name {bad:?}: {e}"
                );
            }
        }
    }
}

on_each_store!(
    max_age_removes_whole_old_flows_keeps_a_straddling_flow_whole_and_never_reuses_ids,
    interleaved_flows_are_kept_whole_through_a_chain_of_straddles,
    max_actions_keeps_the_newest_n_rounded_up_to_whole_flows,
    the_default_retention_keeps_everything,
    real_events_and_projections_are_never_compacted,
);
