//! Idempotent retries: an action sent again with the same idempotency key (as after a lost
//! answer) is applied once, and the retry gets the first answer; the key is committed with the
//! action, so concurrent retries race safely and the key survives a restart.

use crate::common;

use common::{ok, TestStore};
use librarycache::store::EngineKey;
use serde_json::{json, Value};
use std::sync::Arc;
use uuid::Uuid;

fn merge(i: usize) -> serde_json::Value {
    json!({"userId": "u", "likes": [{"trackId": format!("t{i}"), "likedAt": "2025-01-01T00:00:00Z"}]})
}

fn a_retry_with_the_same_key_is_applied_once_and_gets_the_first_answer(store: TestStore) {
    let (first_flow, first_output) = {
        let engine = store.engine();
        ok(&engine, "LibraryCache.ingest", json!({"userId": "u"}));
        let first = engine.invoke_once(Uuid::now_v7(), "key-1", "LibraryCache", "merge", merge(1));
        assert!(!first.replayed);
        let output = first.result.clone().expect("merged");
        assert!(engine
            .store()
            .engine_row(&EngineKey::Idempotency("key-1".into()))
            .expect("read")
            .is_some());
        let version = engine
            .store()
            .view("LibraryCache")
            .stream_version("u")
            .expect("version");
        // The retry: same key, same body. Nothing runs; the first answer comes back.
        let retry = engine.invoke_once(Uuid::now_v7(), "key-1", "LibraryCache", "merge", merge(1));
        assert!(retry.replayed);
        assert_eq!(retry.flow, first.flow);
        assert_eq!(retry.result.expect("answer"), output);
        assert_eq!(
            engine
                .store()
                .view("LibraryCache")
                .stream_version("u")
                .expect("version"),
            version
        );
        (first.flow, output)
    };
    // After a restart too (the same body, its keys in another order, is the same request).
    let engine = store.engine();
    let mut reordered = serde_json::Map::new();
    for (k, v) in merge(1).as_object().expect("object").iter().rev() {
        reordered.insert(k.clone(), v.clone());
    }
    let retry = engine.invoke_once(
        Uuid::now_v7(),
        "key-1",
        "LibraryCache",
        "merge",
        Value::Object(reordered),
    );
    assert!(retry.replayed);
    assert_eq!((retry.flow, retry.result.expect("answer")), (first_flow, first_output));
    // A different body under the same key is refused, and nothing runs.
    let other = engine.invoke_once(Uuid::now_v7(), "key-1", "LibraryCache", "merge", merge(2));
    assert!(!other.replayed);
    let e = other.result.expect_err("refused");
    assert_eq!(
        (e.code.as_str(), e.kind.status()),
        ("IDEMPOTENCY_KEY_REUSED", 422),
        "{e}"
    );
    assert_eq!(
        ok(&engine, "LibraryCache._getLiked", json!({"userId": "u"})),
        json!({"trackIds": ["t1"]})
    );
    // A key is for one action: reusing it for another is refused.
    let other = engine.invoke_once(Uuid::now_v7(), "key-1", "LibraryCache", "clear", json!({"userId": "u"}));
    assert_eq!(other.result.expect_err("refused").code, "IDEMPOTENCY_KEY_REUSED");
    // A refusal is remembered like an answer.
    let refused = engine.invoke_once(
        Uuid::now_v7(),
        "key-2",
        "LibraryCache",
        "sync",
        json!({"userId": "nobody"}),
    );
    assert_eq!(refused.result.expect_err("refused").code, "USER_NOT_FOUND");
    let again = engine.invoke_once(
        Uuid::now_v7(),
        "key-2",
        "LibraryCache",
        "sync",
        json!({"userId": "nobody"}),
    );
    assert!(again.replayed);
    let e = again.result.expect_err("remembered refusal");
    assert_eq!((e.code.as_str(), e.kind.status()), ("USER_NOT_FOUND", 404));
}

fn concurrent_retries_apply_once(store: TestStore) {
    let engine = Arc::new(store.engine());
    ok(&engine, "LibraryCache.ingest", json!({"userId": "u"}));
    let before = engine.store().stats().expect("stats");
    let answers: Vec<_> = (0..8)
        .map(|_| {
            let engine = Arc::clone(&engine);
            std::thread::spawn(move || engine.invoke_once(Uuid::now_v7(), "same", "LibraryCache", "merge", merge(7)))
        })
        .map(|t| t.join().expect("thread"))
        .collect();
    let ran: Vec<_> = answers.iter().filter(|a| !a.replayed).collect();
    assert_eq!(ran.len(), 1, "exactly one call ran");
    let output = ran[0].result.clone().expect("merged");
    for a in &answers {
        assert_eq!(a.result.clone().expect("answer"), output);
        assert_eq!(a.flow, ran[0].flow);
    }
    let after = engine.store().stats().expect("stats");
    assert_eq!(
        after.actions,
        before.actions + 1,
        "one action recorded: {before:?} → {after:?}"
    );
    assert_eq!(
        after.last_seq - before.last_seq,
        2,
        "one merge's events (Liked, Refreshed)"
    );
    assert_eq!(
        engine.store().flow(ran[0].flow).expect("flow").len(),
        1,
        "one action record"
    );
    assert_eq!(
        ok(&engine, "LibraryCache._getStatus", json!({"userId": "u"}))["likes"],
        json!(1)
    );
}

on_each_store!(
    a_retry_with_the_same_key_is_applied_once_and_gets_the_first_answer,
    concurrent_retries_apply_once,
);
