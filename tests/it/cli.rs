//! The command line: `check` prints every problem of a sync directory as file:line:col and exits
//! non-zero; `serve` refuses to start on a broken sync file; `trace` runs trace files with the
//! syncs and prints each step's cascade.

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_librarycache"))
}

const BROKEN: &str = "sync Broken
when
    Requesting.request (path: \"/x\", userId) : (request)
where
    LibraryCache._getLikd (userId) : (trackIds)
then
    Requesting.respond (request, trackIds, nowhere)
";

#[test]
fn check_reports_every_problem_and_serve_refuses_to_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("broken.sync"), BROKEN).expect("write");
    let out = bin()
        .arg("check")
        .arg("--syncs")
        .arg(dir.path())
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let file = dir.path().join("broken.sync").display().to_string();
    assert!(
        stderr.contains(&format!("{file}:5:18: unknown query `_getLikd` of LibraryCache")),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("{file}:7:44: ")), "{stderr}");
    assert!(stderr.contains("`nowhere`"), "{stderr}");

    let data = tempfile::tempdir().expect("tempdir");
    let out = bin()
        .args(["serve", "--addr", "127.0.0.1:0", "--data"])
        .arg(data.path())
        .arg("--syncs")
        .arg(dir.path())
        .output()
        .expect("runs");
    assert!(!out.status.success(), "serve started on a broken sync file");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("{file}:5:18")), "{stderr}");
}

#[test]
fn the_shipped_syncs_check_and_trace_prints_cascades() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = bin()
        .arg("check")
        .arg("--syncs")
        .arg(root.join("syncs"))
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = bin()
        .arg("trace")
        .arg(root.join("specs/requests.trace"))
        .arg("--syncs")
        .arg(root.join("syncs"))
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains(
            "         LibraryCache.merge {\"userId\":\"user:alice\",\"likes\":[{\"trackId\":\"track:c\"}]} => {"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("   # LikeTrackDone"), "{stdout}");
}

fn run(args: &[&str], cwd: &std::path::Path) -> (bool, String, String) {
    let out = bin()
        .args(args)
        .current_dir(cwd)
        .env_remove("LIBRARYCACHE_DATA")
        .output()
        .expect("runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const ALICE: &str = r#"{
  "tracks": [{"id": "track:a", "title": "Alpha", "popularity": 7}, {"id": "track:b", "title": "Bravo"}],
  "likes": [
    {"trackId": "track:b", "likedAt": "2025-10-02T09:00:00Z"},
    {"trackId": "track:x", "likedAt": "2025-10-01T09:00:00Z"},
    {"trackId": "track:a", "likedAt": "2025-10-01T09:00:00Z"}
  ],
  "plays": [{"trackId": "track:a", "playedAt": "2025-10-03T20:15:00Z"}],
  "playlists": [{"id": "pl:1", "name": "Oct25", "snapshotId": "s1", "entries": ["track:b", "track:a", "track:b"]}]
}"#;

#[test]
fn import_stats_export_clear_round_trip_through_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::write(d.join("alice.json"), ALICE).expect("write");
    let (ok, out, err) = run(&["import", "--data", "store", "--user", "user:alice", "alice.json"], d);
    assert!(ok, "{err}");
    assert!(out.starts_with("ingest: "), "{out}");
    let (ok, out, err) = run(&["stats", "--data", "store", "--user", "user:alice"], d);
    assert!(ok, "{err}");
    for line in ["tracks      2", "likes       3", "plays       1", "playlists   1"] {
        assert!(out.contains(line), "{line:?} in {out}");
    }
    // Export, clear, import the export: the same library (liked order with its tie included).
    let (ok, _, err) = run(
        &[
            "export",
            "--data",
            "store",
            "--user",
            "user:alice",
            "--out",
            "export.json",
        ],
        d,
    );
    assert!(ok, "{err}");
    let exported = std::fs::read_to_string(d.join("export.json")).expect("exported");
    assert!(run(&["clear", "--data", "store", "--user", "user:alice"], d).0);
    let (ok, _, err) = run(&["stats", "--data", "store", "--user", "user:alice"], d);
    assert!(!ok && err.contains("USER_NOT_FOUND"), "{err}");
    let (ok, out, err) = run(&["import", "--data", "store", "--user", "user:alice", "export.json"], d);
    assert!(ok && out.starts_with("ingest: "), "{out}{err}");
    let (_, again, _) = run(&["export", "--data", "store", "--user", "user:alice"], d);
    let a: serde_json::Value = serde_json::from_str(&exported).expect("json");
    let b: serde_json::Value = serde_json::from_str(&again).expect("json");
    assert_eq!(a, b, "export → clear → import → export changed the library");
    assert_eq!(
        a["likes"]
            .as_array()
            .expect("likes")
            .iter()
            .map(|l| l["trackId"].as_str().unwrap_or(""))
            .collect::<Vec<_>>(),
        ["track:b", "track:x", "track:a"]
    );
    assert_eq!(
        a["tracks"][0]["popularity"],
        serde_json::json!(7),
        "unknown fields survive"
    );
    assert_eq!(
        a["playlists"][0]["entries"],
        serde_json::json!(["track:b", "track:a", "track:b"])
    );
    // Importing into a cached library syncs it.
    let (ok, out, err) = run(&["import", "--data", "store", "--user", "user:alice", "alice.json"], d);
    assert!(ok && out.starts_with("sync: "), "{out}{err}");
}

#[test]
fn bad_library_files_are_refused_with_their_place_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::write(
        d.join("broken.json"),
        "{\n  \"likes\": [\n    {\"trackId\": \"a\",}\n  ]\n}",
    )
    .expect("write");
    let (ok, _, err) = run(&["import", "--data", "store", "--user", "u", "broken.json"], d);
    assert!(!ok);
    assert!(err.contains("broken.json:3:"), "{err}");
    std::fs::write(d.join("list.json"), "[1, 2]").expect("write");
    let (ok, _, err) = run(&["import", "--data", "store", "--user", "u", "list.json"], d);
    assert!(!ok && err.contains("not an array"), "{err}");
    std::fs::write(d.join("bob.json"), r#"{"userId": "bob", "likes": []}"#).expect("write");
    let (ok, _, err) = run(&["import", "--data", "store", "--user", "alice", "bob.json"], d);
    assert!(!ok && err.contains("\"bob\""), "{err}");
    std::fs::write(
        d.join("badtime.json"),
        r#"{"likes": [{"trackId": "a", "likedAt": "soon"}]}"#,
    )
    .expect("write");
    let (ok, _, err) = run(&["import", "--data", "store", "--user", "u", "badtime.json"], d);
    assert!(
        !ok && err.contains("INVALID_TIME") && err.contains("likes[0].likedAt"),
        "{err}"
    );
    let (ok, _, err) = run(&["import", "--data", "store", "--user", "u", "missing.json"], d);
    assert!(!ok && err.contains("cannot read missing.json"), "{err}");
    let (ok, _, err) = run(&["stats", "--data", "store", "--user", "u"], d);
    assert!(!ok && err.contains("USER_NOT_FOUND"), "nothing was ingested: {err}");
}

#[test]
fn a_config_file_fills_what_flags_and_environment_do_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::write(d.join("alice.json"), ALICE).expect("write");
    std::fs::write(d.join("librarycache.toml"), "data = \"from-file\"\n").expect("write");
    assert!(run(&["import", "--user", "user:alice", "alice.json"], d).0);
    assert!(d.join("from-file").is_dir(), "the file's data directory was used");
    // A flag beats the file; the environment beats the file too.
    assert!(
        run(
            &["import", "--data", "from-flag", "--user", "user:alice", "alice.json"],
            d
        )
        .0
    );
    assert!(d.join("from-flag").is_dir());
    let out = bin()
        .args(["stats", "--user", "user:alice"])
        .current_dir(d)
        .env("LIBRARYCACHE_DATA", "from-flag")
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // An unknown key is an error naming it.
    std::fs::write(d.join("librarycache.toml"), "dta = \"x\"\n").expect("write");
    let (ok, _, err) = run(&["stats", "--user", "u"], d);
    assert!(!ok && err.contains("librarycache.toml") && err.contains("dta"), "{err}");
    // --config names another file, which must exist.
    let (ok, _, err) = run(&["stats", "--user", "u", "--config", "nope.toml"], d);
    assert!(!ok && err.contains("cannot read nope.toml"), "{err}");
}
