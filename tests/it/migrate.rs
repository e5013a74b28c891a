//! `librarycache migrate`: a store filled through the engine (events, action records, fire-once
//! guards, idempotency keys) is copied by the real binary into PostgreSQL (or, without a
//! configured server, another sled store) and back into a fresh sled store; each copy has the same
//! log, records, engine rows, counters and, after its rebuild, byte for byte the same projections.
//! Copying into a store that is not empty is refused.

use crate::common;

use common::{alice_library, big_library, ok, TestStore};
use librarycache::engine::{Engine, Registry};
use librarycache::store::Store;
use serde_json::json;
use std::process::Command;
use uuid::Uuid;

fn migrate(from: &TestStore, to: &TestStore) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_librarycache"))
        .args(["migrate", "--from", &from.arg(), "--to", &to.arg()])
        .env_remove("LIBRARYCACHE_STORE")
        .output()
        .expect("the binary runs")
}

/// Everything a copy must reproduce: counters, the log (as text), how many action records, the
/// engine rows and the projections.
type Contents = (
    librarycache::store::StoreStats,
    Vec<String>,
    usize,
    concept_core::Rows,
    concept_core::Rows,
);

fn contents(store: &dyn Store) -> Contents {
    let stats = store.stats().expect("stats");
    let log: Vec<String> = store
        .read_log(0, usize::MAX)
        .expect("log")
        .iter()
        .map(|e| format!("{} {:?} {}", e.concept, e.meta, String::from_utf8_lossy(&e.data)))
        .collect();
    let records = store.read_records(0, usize::MAX).expect("records").len();
    let engine_rows = store.read_engine_rows(&[], usize::MAX).expect("engine rows");
    let dump = store.projection_dump().expect("dump");
    (stats, log, records, engine_rows, dump)
}

#[test]
fn migrate_copies_everything_there_and_back() {
    let source = TestStore::sled();
    {
        let engine = Engine::new(source.open(), Registry::standard()).with_syncs(common::shipped_syncs());
        ok(&engine, "LibraryCache.ingest", alice_library());
        ok(&engine, "LibraryCache.ingest", big_library("user:bob", 2_000, 10));
        ok(
            &engine,
            "LibraryCache.merge",
            json!({"userId": "user:bob", "unlikes": ["t000001"]}),
        );
        // A request through the syncs (fire-once guards) under an idempotency key.
        let answer = engine.invoke_once(
            Uuid::now_v7(),
            "key-1",
            "Requesting",
            "request",
            json!({"path": "/like", "userId": "user:alice", "trackId": "track:c"}),
        );
        assert!(answer.result.is_ok(), "{:?}", answer.result);
    }
    let original = contents(source.open().as_ref());
    assert!(!original.3.is_empty(), "the source has guards and keys to copy");

    let middle = TestStore::postgres().unwrap_or_else(TestStore::sled);
    let out = migrate(&source, &middle);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("verified"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(contents(middle.open().as_ref()) == original, "the copy differs");

    let back = TestStore::sled();
    let out = migrate(&middle, &back);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let engine = back.engine();
    assert!(contents(engine.store().as_ref()) == original, "the copy back differs");
    assert_eq!(
        ok(&engine, "LibraryCache._getLiked", json!({"userId": "user:alice"}))["trackIds"][0],
        "track:c"
    );
    drop(engine);

    // Into a store that is not empty: refused, and nothing changes.
    let out = migrate(&source, &middle);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not empty"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(contents(middle.open().as_ref()) == original);
}
