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

/// Takes the playlist name index (`uU\0N`) out of a store of the current layout, as the code
/// before it wrote libraries: their meta without `playlistIndex`, no index rows. Returns the
/// libraries changed.
fn strip_name_index(dir: &Path) -> usize {
    let db = sled::Config::new().path(dir).open().expect("open the store's sled");
    let generation = db.get(b"Q").expect("read").map_or(0, |v| v[0]);
    let mut prefix = vec![b'P', generation];
    prefix.extend_from_slice(b"LibraryCache\0");
    let mut libraries = 0;
    for item in db.scan_prefix(&prefix) {
        let (key, value) = item.expect("scan");
        let rest = &key[prefix.len()..];
        if rest.starts_with(b"m\0") {
            let mut meta: Value = serde_json::from_slice(&value).expect("meta");
            let fields = meta.as_object_mut().expect("an object");
            assert_eq!(fields.shift_remove("playlistIndex"), Some(Value::Bool(true)));
            db.insert(&key, serde_json::to_vec(&meta).expect("json"))
                .expect("write");
            libraries += 1;
        } else if rest.first() == Some(&b'u') {
            let tag = rest.iter().position(|&b| b == 0).and_then(|i| rest.get(i + 1));
            if tag == Some(&b'N') {
                db.remove(&key).expect("remove");
            }
        }
    }
    db.flush().expect("flush");
    libraries
}

fn upgrade_command(dir: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_librarycache"))
        .args(["upgrade", "--data"])
        .arg(dir)
        .env_remove("LIBRARYCACHE_STORE")
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// Every user's `_resolvePlaylist` answers for each of their playlists' names, ids and a name
/// in other case.
fn resolve_answers(server: &Server) -> Vec<Value> {
    let mut answers = Vec::new();
    for user in ["user:alice", "user:bob"] {
        let listed = server.post("/api/LibraryCache/_getPlaylists", &serde_json::json!({"userId": user}));
        for p in listed.body["playlists"].as_array().cloned().unwrap_or_default() {
            for wanted in [
                p["name"].clone(),
                p["id"].clone(),
                Value::from(p["name"].as_str().unwrap_or("").to_uppercase()),
            ] {
                let r = server.post(
                    "/api/LibraryCache/_resolvePlaylist",
                    &serde_json::json!({"userId": user, "nameOrUri": wanted}),
                );
                assert_eq!(r.status, 200, "{}", r.body);
                answers.push(r.body);
            }
        }
    }
    assert!(answers.len() >= 3, "the fixture's libraries hold playlists");
    answers
}

#[test]
fn libraries_without_the_playlist_name_index_are_rebuilt_by_upgrade_and_answer_as_before() {
    let (_tmp, dir) = fixture_copy();
    assert!(upgrade_command(&dir).contains("upgraded to storage layout 2"));
    let indexed = {
        let server = Server::start(&dir, NO_NEW_JOBS);
        resolve_answers(&server)
    };
    // The server's sled lock is released a moment after it stops: the command waits for it.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(strip_name_index(&dir), 2);
    let stdout = upgrade_command(&dir);
    assert!(stdout.contains("rebuilt the projections"), "{stdout}");
    assert!(stdout.contains("2 libraries had no playlist name index"), "{stdout}");
    assert!(stdout.contains("verified"), "{stdout}");
    assert!(upgrade_command(&dir).contains("nothing to upgrade"));

    let server = Server::start(&dir, NO_NEW_JOBS);
    assert_answers_as_before(&server);
    assert_eq!(resolve_answers(&server), indexed);
}

#[test]
fn serve_rebuilds_libraries_without_the_playlist_name_index_by_itself() {
    let (_tmp, dir) = fixture_copy();
    assert!(upgrade_command(&dir).contains("upgraded to storage layout 2"));
    assert_eq!(strip_name_index(&dir), 2);
    let server = Server::start(&dir, NO_NEW_JOBS);
    assert_answers_as_before(&server);
    resolve_answers(&server);
    drop(server);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(upgrade_command(&dir).contains("nothing to upgrade"));
}
