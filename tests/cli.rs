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
