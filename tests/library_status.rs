//! Staleness needs the clock to move, which a trace cannot do: a library refreshed longer ago
//! than `maxAge` is stale, and `_staleUsers` lists exactly those users (for a scheduler).

mod common;

use common::{fresh_engine, ok};
use serde_json::json;
use std::time::Duration;

#[test]
fn a_library_not_refreshed_within_max_age_is_stale_and_listed() {
    let (_dir, engine) = fresh_engine();
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
    std::thread::sleep(Duration::from_millis(400));
    // user:new is refreshed now; user:old's last refresh is 400 ms old.
    ok(
        &engine,
        "LibraryCache.merge",
        json!({"userId": "user:new", "plays": []}),
    );

    let old = ok(
        &engine,
        "LibraryCache._getStatus",
        json!({"userId": "user:old", "maxAge": "300ms"}),
    );
    let new = ok(
        &engine,
        "LibraryCache._getStatus",
        json!({"userId": "user:new", "maxAge": "300ms"}),
    );
    assert_eq!(old["stale"], json!(true), "{old}");
    assert_eq!(new["stale"], json!(false), "{new}");
    assert!(new["syncedAt"].as_str() > new["ingestedAt"].as_str(), "{new}");
    assert_eq!(old["syncedAt"], old["ingestedAt"], "{old}");

    assert_eq!(
        ok(&engine, "LibraryCache._staleUsers", json!({"maxAge": "300ms"})),
        json!({"userIds": ["user:old"]})
    );
    assert_eq!(
        ok(&engine, "LibraryCache._staleUsers", json!({"maxAge": "1h"})),
        json!({"userIds": []})
    );
    // The default maxAge is 24 hours.
    let default = ok(&engine, "LibraryCache._getStatus", json!({"userId": "user:old"}));
    assert_eq!(default["stale"], json!(false), "{default}");

    // A cleared user is nobody's to refresh.
    ok(&engine, "LibraryCache.clear", json!({"userId": "user:old"}));
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(
        ok(&engine, "LibraryCache._staleUsers", json!({"maxAge": "1ms"})),
        json!({"userIds": ["user:new"]})
    );
}
