//! Staleness on a clock the test moves: a library refreshed longer ago than `maxAge` is stale,
//! and `_staleUsers` lists exactly those users (for a scheduler). The engine runs on a manual
//! clock, so nothing here depends on the day it runs or on how long a step takes.

use crate::common;

use common::{engine_on, manual_clock, ok};
use serde_json::json;

#[test]
fn a_library_not_refreshed_within_max_age_is_stale_and_listed() {
    let clock = manual_clock("2026-11-21T12:00:00Z");
    let (_dir, engine) = engine_on(&clock);
    ok(
        &engine,
        "LibraryCache.ingest",
        json!({"userId": "user:old", "likes": []}),
    );
    ok(
        &engine,
        "LibraryCache.ingest",
        json!({"userId": "user:new", "likes": []}),
    );
    clock.advance(chrono::Duration::minutes(90));
    // A merge that changes nothing records nothing: user:new is no fresher for it.
    let unchanged = ok(
        &engine,
        "LibraryCache.merge",
        json!({"userId": "user:new", "plays": []}),
    );
    let status = ok(
        &engine,
        "LibraryCache._getStatus",
        json!({"userId": "user:new", "maxAge": "1h"}),
    );
    assert_eq!(
        (status["stale"].clone(), status["version"].clone()),
        (json!(true), unchanged["version"].clone()),
        "{status}"
    );
    // user:new is refreshed now (touch: checked and found current); user:old's last refresh is
    // 90 minutes old.
    ok(&engine, "LibraryCache.touch", json!({"userId": "user:new"}));

    let old = ok(
        &engine,
        "LibraryCache._getStatus",
        json!({"userId": "user:old", "maxAge": "1h"}),
    );
    let new = ok(
        &engine,
        "LibraryCache._getStatus",
        json!({"userId": "user:new", "maxAge": "1h"}),
    );
    assert_eq!(old["stale"], json!(true), "{old}");
    assert_eq!(new["stale"], json!(false), "{new}");
    // The times are the clock's, not the system's.
    assert_eq!(old["ingestedAt"], json!("2026-11-21T12:00:00Z"), "{old}");
    assert_eq!(old["syncedAt"], old["ingestedAt"], "{old}");
    assert_eq!(new["ingestedAt"], json!("2026-11-21T12:00:00Z"), "{new}");
    assert_eq!(new["syncedAt"], json!("2026-11-21T13:30:00Z"), "{new}");

    assert_eq!(
        ok(&engine, "LibraryCache._staleUsers", json!({"maxAge": "1h"})),
        json!({"userIds": ["user:old"]})
    );
    assert_eq!(
        ok(&engine, "LibraryCache._staleUsers", json!({"maxAge": "2h"})),
        json!({"userIds": []})
    );
    // Exactly maxAge old is not yet stale; a microsecond more is.
    assert_eq!(
        ok(&engine, "LibraryCache._staleUsers", json!({"maxAge": "90m"})),
        json!({"userIds": []})
    );
    clock.advance(chrono::Duration::microseconds(1));
    assert_eq!(
        ok(&engine, "LibraryCache._staleUsers", json!({"maxAge": "90m"})),
        json!({"userIds": ["user:old"]})
    );

    // The default maxAge is 24 hours.
    let default = ok(&engine, "LibraryCache._getStatus", json!({"userId": "user:old"}));
    assert_eq!(default["stale"], json!(false), "{default}");
    clock.advance(chrono::Duration::hours(23));
    let default = ok(&engine, "LibraryCache._getStatus", json!({"userId": "user:old"}));
    assert_eq!(default["stale"], json!(true), "{default}");

    // A cleared user is nobody's to refresh.
    ok(&engine, "LibraryCache.clear", json!({"userId": "user:old"}));
    assert_eq!(
        ok(&engine, "LibraryCache._staleUsers", json!({"maxAge": "1h"})),
        json!({"userIds": ["user:new"]})
    );
}

#[test]
fn staleness_follows_the_clock_years_from_now() {
    // The same rules in 2031: nothing depends on the year the test runs in.
    let clock = manual_clock("2031-06-30T23:59:59.999999Z");
    let (_dir, engine) = engine_on(&clock);
    ok(&engine, "LibraryCache.ingest", json!({"userId": "u", "likes": []}));
    let status = ok(
        &engine,
        "LibraryCache._getStatus",
        json!({"userId": "u", "maxAge": "1d"}),
    );
    assert_eq!(status["ingestedAt"], json!("2031-06-30T23:59:59.999999Z"), "{status}");
    assert_eq!(status["stale"], json!(false), "{status}");
    clock.advance(chrono::Duration::days(2));
    let status = ok(
        &engine,
        "LibraryCache._getStatus",
        json!({"userId": "u", "maxAge": "1d"}),
    );
    assert_eq!(status["stale"], json!(true), "{status}");
}

#[test]
fn a_server_process_runs_on_the_clock_the_tests_compare_with() {
    // The real binary runs on the system clock, set ahead when LIBRARYCACHE_TEST_CLOCK_AHEAD is
    // (CI's run of the time-dependent tests years ahead); `common::now()` is that same clock, so
    // a test that must compare with a server's time does not depend on the day it runs.
    let dir = tempfile::tempdir().expect("tempdir");
    let server = common::server::Server::start(dir.path(), &[]);
    let before = common::now();
    let r = server.post(
        "/api/LibraryCache/ingest",
        &json!({"userId": "user:clock", "likes": []}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let after = common::now();
    let status = server.post("/api/LibraryCache/_getStatus", &json!({"userId": "user:clock"}));
    let at = status.body["ingestedAt"].as_str().expect("ingestedAt");
    let at = concept_core::time::parse_rfc3339(at).expect("a time");
    assert!(before <= at && at <= after, "{before} <= {at} <= {after}");
}
