//! The sync engine with the real store and the real concepts: fire-once (in a flow, on
//! redelivery, across a restart), flow isolation, error versus success patterns, `where` fan-out,
//! `not` and comparisons, composite `then` values, the cascade bound, and the guard committed
//! with the fired action's record.

use crate::common;

use common::{ok, TestStore};
use librarycache::engine::{Answer, Engine, Registry, SyncSet};
use librarycache::store::EngineKey;
use librarycache::sync::{check, parse_sync_file};
use serde_json::{json, Value};

/// Parses and checks `text` as one sync file; panics with every problem.
fn syncs(text: &str) -> SyncSet {
    let file = parse_sync_file("test.sync", text).unwrap_or_else(|e| panic!("{e:?}"));
    let files = vec![file];
    let problems = check(&files, &Registry::standard().specs());
    assert!(problems.is_empty(), "{problems:?}");
    SyncSet::new(files)
}

fn engine_on(store: &TestStore, text: &str) -> Engine {
    store.engine().with_syncs(syncs(text))
}

fn names(answer: &Answer) -> Vec<String> {
    answer
        .cascade()
        .iter()
        .map(|c| format!("{}.{} by {}", c.concept, c.action, c.sync.as_deref().unwrap_or("-")))
        .collect()
}

fn request(engine: &Engine, input: Value) -> Answer {
    let answer = engine.invoke("Requesting", "request", input);
    assert!(answer.result.is_ok(), "{:?}", answer.result);
    assert!(answer.flow_error.is_none(), "{:?}", answer.flow_error);
    answer
}

/// The `respond` inputs of a flow (without the request id).
fn responses(answer: &Answer) -> Vec<Value> {
    answer
        .cascade()
        .iter()
        .filter(|c| c.concept == "Requesting" && c.action == "respond")
        .map(|c| {
            let mut v = c.input.clone();
            v.as_object_mut().map(|m| m.remove("request"));
            v
        })
        .collect()
}

const TOUCH: &str = r#"
sync Touch
when
    Requesting.request (path: "/touch", userId) : (request)
then
    LibraryCache.merge (userId, plays: [{trackId: "t:touch", playedAt: "2025-01-01T00:00:00Z"}])
    Requesting.respond (request, done: true)
"#;

fn a_sync_fires_once_per_match_even_when_redelivered_or_after_a_restart(store: TestStore) {
    let (request_id, merge_id, flow) = {
        let engine = engine_on(&store, TOUCH);
        ok(&engine, "LibraryCache.ingest", json!({"userId": "u"}));
        let answer = request(&engine, json!({"path": "/touch", "userId": "u"}));
        assert_eq!(
            names(&answer),
            ["LibraryCache.merge by Touch", "Requesting.respond by Touch"]
        );
        let request_id = answer.actions[0].id;
        let merge_id = answer.cascade()[0].id;

        // The guard of the first fired action is in the store, pointing at that action.
        let guard = EngineKey::FireGuard {
            sync: "Touch".into(),
            matched: vec![request_id],
            step: 0,
        };
        let row = engine.store().engine_row(&guard).expect("read").expect("guard written");
        assert_eq!(row, merge_id.to_be_bytes().to_vec());

        // Delivering the request to the syncs again fires nothing.
        let again = engine.redeliver(request_id).expect("redeliver");
        assert!(again.cascade().is_empty(), "{:?}", names(&again));
        assert!(again.flow_error.is_none(), "{:?}", again.flow_error);
        (request_id, merge_id, answer.flow)
    };
    // After a restart, too.
    let engine = engine_on(&store, TOUCH);
    let again = engine.redeliver(request_id).expect("redeliver");
    assert!(again.cascade().is_empty(), "{:?}", names(&again));
    assert!(again.flow_error.is_none(), "{:?}", again.flow_error);
    let records = engine.store().flow(flow).expect("flow");
    assert_eq!(
        records.len(),
        3,
        "the flow holds the request, the merge and the respond only"
    );
    assert_eq!(records[1].id, merge_id);
    assert_eq!(records[1].sync.as_deref(), Some("Touch"));
    assert_eq!(records[1].cause, vec![request_id]);
    assert_eq!(
        ok(&engine, "LibraryCache._getStatus", json!({"userId": "u"}))["plays"],
        json!(1)
    );

    // Without the guard, the same delivery fires: the guard is what stops it.
    let fresh = store.sibling();
    let other = engine_on(&fresh, TOUCH);
    ok(&other, "LibraryCache.ingest", json!({"userId": "u"}));
    let answer = request(&other, json!({"path": "/touch", "userId": "u"}));
    assert_eq!(answer.cascade().len(), 2);
}

const WAIT: &str = r#"
sync AnswerWithTheMerge
when
    Requesting.request (path: "/wait", userId) : (request)
    LibraryCache.merge (userId) : (version)
then
    Requesting.respond (request, version)
"#;

fn flows_never_match_across_each_other(store: TestStore) {
    let engine = engine_on(&store, WAIT);
    ok(&engine, "LibraryCache.ingest", json!({"userId": "u"}));
    // The request's flow has no merge: nothing fires.
    let waiting = request(&engine, json!({"path": "/wait", "userId": "u"}));
    assert!(waiting.cascade().is_empty());
    // A merge of the same user in another flow must not answer that request.
    let merge = engine.invoke("LibraryCache", "merge", json!({"userId": "u", "plays": []}));
    assert!(merge.result.is_ok());
    assert!(merge.cascade().is_empty(), "{:?}", names(&merge));
    assert_eq!(engine.store().flow(waiting.flow).expect("flow").len(), 1);
}

const OUTCOMES: &str = r#"
sync OnRefusedClear
when
    Requesting.request (path: "/clear", userId) : (request)
    LibraryCache.clear (userId) : (error, code)
then
    Requesting.respond (request, outcome: "refused", code)

sync OnClear
when
    Requesting.request (path: "/clear", userId) : (request)
    LibraryCache.clear (userId) : (userId)
then
    Requesting.respond (request, outcome: "cleared")

sync Clear
when
    Requesting.request (path: "/clear", userId) : (request)
then
    LibraryCache.clear (userId)
"#;

fn error_patterns_match_only_refusals_and_others_only_successes(store: TestStore) {
    let engine = engine_on(&store, OUTCOMES);
    ok(&engine, "LibraryCache.ingest", json!({"userId": "u"}));
    let cleared = request(&engine, json!({"path": "/clear", "userId": "u"}));
    assert_eq!(
        names(&cleared),
        ["LibraryCache.clear by Clear", "Requesting.respond by OnClear"]
    );
    assert_eq!(responses(&cleared), [json!({"outcome": "cleared"})]);
    let refused = request(&engine, json!({"path": "/clear", "userId": "u"}));
    assert_eq!(
        names(&refused),
        ["LibraryCache.clear by Clear", "Requesting.respond by OnRefusedClear"]
    );
    assert!(refused.cascade()[0].failed);
    assert_eq!(
        responses(&refused),
        [json!({"outcome": "refused", "code": "USER_NOT_FOUND"})]
    );
}

const FAN_OUT: &str = r#"
sync RefreshStale
when
    Requesting.request (path: "/refresh-stale") : (request)
where
    LibraryCache._staleUsers (maxAge: "1ms") : (userIds)
    userId in userIds
then
    LibraryCache.merge (userId, plays: [])
"#;

fn where_fans_out_over_many_rows(store: TestStore) {
    let clock = common::manual_clock("2026-11-21T12:00:00Z");
    let engine = engine_on(&store, FAN_OUT).with_clock(clock.clone());
    let users: Vec<String> = (0..60).map(|i| format!("user:{i:02}")).collect();
    for u in &users {
        ok(&engine, "LibraryCache.ingest", json!({"userId": u}));
    }
    // Every library is now older than the sync's maxAge (1 ms).
    clock.advance(chrono::Duration::milliseconds(5));
    let answer = request(&engine, json!({"path": "/refresh-stale"}));
    let merged: Vec<String> = answer
        .cascade()
        .iter()
        .map(|c| c.input["userId"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(merged, users, "one merge per stale user, in the query's order");
    assert!(answer.cascade().iter().all(|c| !c.failed && c.depth == 1));
    // Each fired merge has its own guard step.
    let request_id = answer.actions[0].id;
    for step in [0u32, 59] {
        let guard = EngineKey::FireGuard {
            sync: "RefreshStale".into(),
            matched: vec![request_id],
            step,
        };
        assert!(
            engine.store().engine_row(&guard).expect("read").is_some(),
            "step {step}"
        );
    }
}

const CONDITIONS: &str = r#"
sync Big
when
    Requesting.request (path: "/size", userId) : (request)
where
    LibraryCache._getStatus (userId) : (likes)
    likes >= 2
then
    Requesting.respond (request, size: "big", likes)

sync Small
when
    Requesting.request (path: "/size", userId) : (request)
where
    LibraryCache._getStatus (userId) : (likes)
    likes < 2
then
    Requesting.respond (request, size: "small", summary: {user: userId, counts: [likes, 0], nested: {ok: true}})

sync Unknown
when
    Requesting.request (path: "/size", userId) : (request)
where
    not LibraryCache._getStatus (userId)
then
    Requesting.respond (request, size: null, known: false)
"#;

fn not_comparisons_and_composite_values(store: TestStore) {
    let engine = engine_on(&store, CONDITIONS);
    ok(
        &engine,
        "LibraryCache.ingest",
        json!({"userId": "big", "likes": [{"trackId": "a"}, {"trackId": "b"}]}),
    );
    ok(&engine, "LibraryCache.ingest", json!({"userId": "small", "likes": []}));
    let big = request(&engine, json!({"path": "/size", "userId": "big"}));
    assert_eq!(responses(&big), [json!({"size": "big", "likes": 2})]);
    let small = request(&engine, json!({"path": "/size", "userId": "small"}));
    assert_eq!(
        responses(&small),
        [json!({"size": "small", "summary": {"user": "small", "counts": [0, 0], "nested": {"ok": true}}})]
    );
    let unknown = request(&engine, json!({"path": "/size", "userId": "nobody"}));
    assert_eq!(names(&unknown), ["Requesting.respond by Unknown"]);
    assert_eq!(responses(&unknown), [json!({"size": null, "known": false})]);
}

const LOOP: &str = r#"
sync Ping
when
    LibraryCache.merge (userId) : (version)
then
    LibraryCache.sync (userId, plays: [])

sync Pong
when
    LibraryCache.sync (userId) : (version)
then
    LibraryCache.merge (userId, plays: [])
"#;

fn a_runaway_cascade_stops_at_the_bound_and_names_the_loop(store: TestStore) {
    let engine = engine_on(&store, LOOP).with_cascade_limit(40);
    ok(&engine, "LibraryCache.ingest", json!({"userId": "u"}));
    let answer = engine.invoke("LibraryCache", "merge", json!({"userId": "u", "plays": []}));
    assert!(answer.result.is_ok(), "the invoked action itself completed");
    let error = answer.flow_error.expect("the flow was stopped");
    assert_eq!(error.code, "CASCADE_LIMIT");
    assert!(error.message.contains("after 40 actions"), "{}", error.message);
    assert!(error.message.contains("Ping → Pong"), "{}", error.message);
    assert_eq!(answer.actions.len(), 40);
    assert_eq!(engine.store().flow(answer.flow).expect("flow").len(), 40);
    // The default bound is 1,000 actions.
    assert_eq!(librarycache::engine::DEFAULT_CASCADE_LIMIT, 1_000);
}

fn a_then_action_that_is_refused_is_recorded_with_its_guard(store: TestStore) {
    let engine = engine_on(&store, TOUCH);
    // No library for "ghost": the merge is refused, the respond still runs.
    let answer = request(&engine, json!({"path": "/touch", "userId": "ghost"}));
    assert_eq!(
        names(&answer),
        ["LibraryCache.merge by Touch", "Requesting.respond by Touch"]
    );
    assert!(answer.cascade()[0].failed);
    assert_eq!(answer.cascade()[0].output["code"], json!("USER_NOT_FOUND"));
    let again = engine.redeliver(answer.actions[0].id).expect("redeliver");
    assert!(again.cascade().is_empty(), "{:?}", names(&again));
    assert!(again.flow_error.is_none(), "{:?}", again.flow_error);
}

const LIKED: &str = r#"
sync Liked
when
    Requesting.request (path: "/liked", userId) : (request)
where
    LibraryCache._getLiked (userId) : (trackIds)
then
    Requesting.respond (request, userId, trackIds)
"#;

/// A respond's answer reaches the caller whole however large it is (only the action record
/// summarises its arrays).
fn a_large_answer_reaches_the_caller_whole_and_only_its_record_is_summarised(store: TestStore) {
    let engine = engine_on(&store, LIKED);
    let likes: Vec<Value> = (0..250)
        .map(|i| json!({"trackId": format!("t:{i:03}"), "likedAt": format!("2025-01-01T00:{:02}:{:02}Z", i / 60, i % 60)}))
        .collect();
    ok(&engine, "LibraryCache.ingest", json!({"userId": "u", "likes": likes}));
    let answer = request(&engine, json!({"path": "/liked", "userId": "u"}));
    let expected: Vec<String> = (0..250).rev().map(|i| format!("t:{i:03}")).collect();
    assert_eq!(responses(&answer), [json!({"userId": "u", "trackIds": expected})]);
    let recorded = engine.store().flow(answer.flow).expect("flow");
    let respond = recorded
        .iter()
        .find(|r| r.action == "respond")
        .expect("a respond record");
    assert_eq!(respond.input["trackIds"]["$items"], json!(250), "{}", respond.input);
}

on_each_store!(
    a_sync_fires_once_per_match_even_when_redelivered_or_after_a_restart,
    flows_never_match_across_each_other,
    error_patterns_match_only_refusals_and_others_only_successes,
    where_fans_out_over_many_rows,
    not_comparisons_and_composite_values,
    a_runaway_cascade_stops_at_the_bound_and_names_the_loop,
    a_then_action_that_is_refused_is_recorded_with_its_guard,
    a_large_answer_reaches_the_caller_whole_and_only_its_record_is_summarised,
);
