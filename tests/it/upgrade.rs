//! A store written by the first storage layout (tests/fixtures/store-v1, made by `serve` before
//! the layout changed) is upgraded in place: by `librarycache upgrade`, and by any command that
//! opens it. Its events, records, guards and idempotency keys are kept, its projections rebuilt
//! and verified, and the service answers every query as it did before the upgrade.

use crate::common;

use common::server::Server;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A copy of the fixture store in a new temporary directory: (the guard, the store's dir).
fn fixture_copy() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    std::fs::create_dir_all(dir.join("blobs")).expect("mkdir");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-v1");
    for file in ["conf", "db"] {
        std::fs::copy(fixture.join(file), dir.join(file)).expect("copy the fixture");
    }
    (tmp, dir)
}

/// The fixture's recorded answers: (concept/query, input, answer).
fn recorded() -> Vec<(String, Value, Value)> {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-v1/answers.txt"))
            .expect("answers");
    let lines: Vec<&str> = text.lines().collect();
    lines
        .chunks(2)
        .map(|pair| {
            let (path, input) = pair[0].split_once(' ').expect("a query line");
            let input: Value = serde_json::from_str(input).expect("input");
            let answer: Value = serde_json::from_str(pair[1]).expect("answer");
            (path.to_string(), input, answer)
        })
        .collect()
}

/// An answer without what depends on the day it is read (`stale`) or on the running service
/// (its timer ticks the overdue `refresh` job as soon as it starts).
fn timeless(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("stale");
    }
    if let Some(jobs) = v.get_mut("jobs").and_then(Value::as_array_mut) {
        for job in jobs {
            if let Some(o) = job.as_object_mut() {
                o.remove("lastTickAt");
                o.remove("nextAt");
            }
        }
    }
    v
}

/// The fixture's store was recorded before `serve` scheduled the Apple library watch; without
/// it the store's jobs are compared as they were.
const NO_NEW_JOBS: &[&str] = &["--apple-library-watch-every", "off"];

fn assert_answers_as_before(server: &Server) {
    let answers = recorded();
    assert!(answers.len() >= 20, "the fixture records {} answers", answers.len());
    for (path, input, before) in answers {
        let now = server.post(&format!("/api/{path}"), &input);
        assert_eq!(
            timeless(now.body.clone()),
            timeless(before.clone()),
            "{path} {input}: answered {} {}, before the upgrade {}",
            now.status,
            now.body,
            before
        );
    }
}

#[test]
fn the_upgrade_command_moves_an_old_store_and_it_answers_as_before() {
    let (_tmp, dir) = fixture_copy();
    let out = Command::new(env!("CARGO_BIN_EXE_librarycache"))
        .args(["upgrade", "--data"])
        .arg(&dir)
        .env_remove("LIBRARYCACHE_STORE")
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("upgraded to storage layout 2"), "{stdout}");
    assert!(stdout.contains("verified"), "{stdout}");
    // The old files are kept beside the store.
    let backup = dir.with_file_name("data.layout1-backup");
    assert!(backup.join("db").exists(), "no backup at {}", backup.display());
    // A second run has nothing to do.
    let again = Command::new(env!("CARGO_BIN_EXE_librarycache"))
        .args(["upgrade", "--data"])
        .arg(&dir)
        .output()
        .expect("runs");
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to upgrade"));

    let server = Server::start(&dir, NO_NEW_JOBS);
    assert_answers_as_before(&server);
    // The idempotency key the old store remembered still replays its answer.
    let replay = common::server::send(
        &server.client,
        &server.base,
        "/api/LibraryCache/merge",
        br#"{"userId":"user:bob","likes":[{"trackId":"track:e","likedAt":"2025-11-01T00:00:00Z"}],"tracks":[{"id":"track:e","title":"Echo"}],"plays":[{"trackId":"track:e","playedAt":"2025-11-01T00:04:00Z"}]}"#.to_vec(),
        Some("key-1"),
    )
    .expect("request");
    assert!(replay.replayed, "{}", replay.body);
    assert_eq!(replay.body["version"], 12, "{}", replay.body);
    // And the library carries on: a new like lands after the upgraded ones.
    let r = server.post(
        "/api/LibraryCache/merge",
        &serde_json::json!({"userId": "user:alice", "likes": [{"trackId": "track:z", "likedAt": "2027-01-01T00:00:00Z"}]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let liked = server.post(
        "/api/LibraryCache/_getLiked",
        &serde_json::json!({"userId": "user:alice"}),
    );
    assert_eq!(
        liked.body["trackIds"],
        serde_json::json!(["track:z", "track:d", "track:c", "track:b"])
    );
}

#[test]
fn serve_upgrades_an_old_store_by_itself_and_a_half_done_upgrade_is_redone() {
    let (_tmp, dir) = fixture_copy();
    // An earlier upgrade stopped half way: its directory is there, the old store untouched.
    let half = dir.with_file_name("data.upgrading");
    std::fs::create_dir_all(&half).expect("mkdir");
    std::fs::write(half.join("db"), b"not a store").expect("write");
    let server = Server::start(&dir, NO_NEW_JOBS);
    assert_answers_as_before(&server);
    assert!(!half.exists(), "the half-done upgrade was left behind");
}
