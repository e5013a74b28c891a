//! The example application end to end, through its own binary (`librarycache::App` with
//! Notifying added): its sync checks against every concept, its trace passes (and a wrong
//! expectation fails it), and over HTTP a like through the standard `/api/like` reaches a
//! follower's notifications.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn here() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn notifying(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_notifying"))
        .args(args)
        .current_dir(here())
        .env_remove("LIBRARYCACHE_SYNCS")
        .env_remove("LIBRARYCACHE_STORE")
        .output()
        .expect("the example binary runs")
}

fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_sync_checks_against_the_applications_concepts_and_the_trace_passes() {
    let out = notifying(&["check", "--syncs", "syncs"]);
    assert!(out.status.success(), "{}", said(&out));
    assert!(said(&out).contains("1 sync(s): no problems"), "{}", said(&out));

    let out = notifying(&["trace", "specs/notifying.trace", "--syncs", "syncs"]);
    assert!(out.status.success(), "{}", said(&out));
    assert!(!said(&out).contains("FAIL"), "{}", said(&out));
}

#[test]
fn a_wrong_expectation_fails_the_trace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(here().join("specs/notifying.trace")).expect("the trace");
    // carol unfollowed before bob's last like: claiming she heard of it must fail.
    let wrong = text.replace(
        r#"Notifying._getNotifications {"userId": "carol"} => {"notifications": [{"about": "bob"}]}"#,
        r#"Notifying._getNotifications {"userId": "carol"} => {"notifications": [{"about": "bob"}, {"about": "bob"}]}"#,
    );
    assert_ne!(wrong, text, "the step to change is in the trace");
    let file = dir.path().join("wrong.trace");
    std::fs::write(&file, wrong).expect("write");
    let out = notifying(&["trace", file.to_str().expect("utf-8"), "--syncs", "syncs"]);
    assert!(!out.status.success(), "a wrong trace passed:\n{}", said(&out));
}

#[test]
fn a_sync_naming_an_unknown_concept_is_refused_with_its_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(here().join("syncs/notify.sync")).expect("the sync");
    std::fs::write(
        dir.path().join("notify.sync"),
        text.replace("Notifying.notify", "Notifyng.notify"),
    )
    .expect("write");
    let out = notifying(&["check", "--syncs", dir.path().to_str().expect("utf-8")]);
    assert!(!out.status.success(), "{}", said(&out));
    assert!(said(&out).contains("notify.sync:11:"), "{}", said(&out));
}

struct Served {
    child: Child,
    base: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(store: &Path, syncs: &Path) -> Served {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_notifying"))
        .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--store"])
        .arg(store)
        .arg("--syncs")
        .arg(syncs)
        .args(["--expose", "LibraryCache,Notifying", "--refresh-every", "off"])
        .env_remove("LIBRARYCACHE_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve starts");
    let served = Served {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if reqwest::blocking::get(format!("{}/healthz", served.base)).is_ok_and(|r| r.status() == 200) {
            return served;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the example server did not answer /healthz");
}

fn post(base: &str, path: &str, body: Value) -> Value {
    let r = reqwest::blocking::Client::new()
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .expect("request");
    let status = r.status();
    let answer: Value = r.json().unwrap_or(Value::Null);
    assert_eq!(status, 200, "{path} {body}: {answer}");
    answer
}

#[test]
fn a_like_over_http_reaches_the_followers_notifications() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The standard syncs (for /api/like) and the application's own, in one directory.
    let syncs = dir.path().join("syncs");
    std::fs::create_dir(&syncs).expect("dir");
    for from in [here().join("../../syncs"), here().join("syncs")] {
        for entry in std::fs::read_dir(&from).expect("a sync directory").flatten() {
            if entry.path().extension().is_some_and(|e| e == "sync") {
                std::fs::copy(entry.path(), syncs.join(entry.file_name())).expect("copy");
            }
        }
    }
    let server = serve(&dir.path().join("store"), &syncs);
    post(
        &server.base,
        "/api/LibraryCache/ingest",
        json!({"userId": "bob", "tracks": [{"id": "t:1", "title": "One"}]}),
    );
    post(
        &server.base,
        "/api/Notifying/follow",
        json!({"userId": "bob", "followerId": "alice"}),
    );
    let liked = post(&server.base, "/api/like", json!({"userId": "bob", "trackId": "t:1"}));
    assert_eq!(liked["added"], 1, "{liked}");
    let told = post(
        &server.base,
        "/api/Notifying/_getNotifications",
        json!({"userId": "alice"}),
    );
    let notes = told["notifications"].as_array().expect("notifications");
    assert_eq!(notes.len(), 1, "{told}");
    assert_eq!(notes[0]["about"], "bob");
    assert_eq!(notes[0]["trackIds"], json!(["t:1"]));
    // Not exposed: the engine's own concepts the application did not list.
    let r = reqwest::blocking::Client::new()
        .post(format!("{}/api/Scheduling/_getJobs", server.base))
        .json(&json!({}))
        .send()
        .expect("request");
    assert_eq!(r.status(), 403);
}

/// `Notifying.concept` declares exactly the actions and queries the concept serves.
#[test]
fn the_concept_file_declares_exactly_what_the_concept_serves() {
    use concept_core::{DynConcept, Typed};
    let text = std::fs::read_to_string(here().join("Notifying.concept")).expect("the spec");
    let (name, declared) = concept_core::spec::declared(&text);
    let concept = Typed::new(notifying_example::Notifying::new());
    let spec = concept.spec();
    assert_eq!(name.as_deref(), Some(spec.name.as_str()));
    let mut declared: Vec<String> = declared.iter().map(|(k, n)| format!("{k:?} {n}")).collect();
    let mut served: Vec<String> = spec
        .actions
        .iter()
        .map(|a| format!("{:?} {}", a.kind, a.name))
        .collect();
    declared.sort();
    served.sort();
    assert!(!served.is_empty());
    assert_eq!(declared, served);
}
