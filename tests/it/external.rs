//! External concepts (issue 21 part 2) against the real `librarycache serve` binary: the
//! Recommender of examples/external, declared by its `.external.json` file (the URL pointed at a
//! stand-in served by this test on loopback) and composed with LibraryCache by the example's
//! sync. A like fires `Recommender.recommend` (a POST to the stand-in, with an Idempotency-Key
//! and the flow's id); the stand-in's callback `Recommender.recommended` enters a flow whose
//! sync asks `Recommender._playlist` in its `where` and merges a playlist into LibraryCache. The
//! service failing (`{error, code}`, a bare 500), slow (a declared timeout of 200 ms against an
//! answer after 5 s) and refusing connections is recorded in the flow, and the like it followed
//! is kept. The stand-in also calls back by itself after answering, as the example service
//! does. `check` validates syncs against the declared schemas and names a bad declaration, and
//! the example's trace runs with its `answer` lines standing in for the service.

use crate::common;

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post as route_post;
use axum::{Json, Router};
use common::fake_http::{serve, Served};
use serde_json::{json, Value};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const TOKEN: &str = "test-token-for-callbacks";

/// How the stand-in answers `recommend`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Answer,
    /// 503 with `{error, code}`: the service's own refusal.
    Refuse,
    /// 500 with no body.
    Bare500,
    /// Answers after 5 s.
    Slow,
}

/// One call the stand-in received.
#[derive(Debug, Clone)]
struct Call {
    action: String,
    key: String,
    flow: String,
    body: Value,
}

struct Fake {
    mode: Mode,
    calls: Vec<Call>,
    /// When set, the stand-in calls back by itself after answering `recommend`, as the example
    /// service does: `POST {base}/api/Recommender/recommended` with the token.
    call_back_to: Option<String>,
}

type Shared = Arc<Mutex<Fake>>;

async fn action(
    State(fake): State<Shared>,
    UrlPath(action): UrlPath<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (mode, call_back_to) = {
        let mut fake = fake.lock().expect("lock");
        fake.calls.push(Call {
            action: action.clone(),
            key: header("idempotency-key"),
            flow: header("x-flow-id"),
            body: body.clone(),
        });
        (fake.mode, fake.call_back_to.clone())
    };
    if let (Some(base), "recommend", Mode::Answer) = (call_back_to, action.as_str(), mode) {
        let user = body["userId"].clone();
        // After the answer, on the service's own time.
        tokio::spawn(async move {
            let answer = reqwest::Client::new()
                .post(format!("{base}/api/Recommender/recommended"))
                .bearer_auth(TOKEN)
                .json(&json!({"userId": user, "ticket": "rec-1", "trackIds": ["t7"]}))
                .send()
                .await;
            if let Err(e) = answer {
                eprintln!("the stand-in's callback failed: {e}");
            }
        });
    }
    match (action.as_str(), mode) {
        ("_playlist", _) => {
            Json(json!({"name": format!("Picked for {}", body["ticket"].as_str().unwrap_or("?"))})).into_response()
        }
        ("recommend", Mode::Answer) => Json(json!({"ticket": "rec-1"})).into_response(),
        ("recommend", Mode::Refuse) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": "the recommender is rebuilding its model", "code": "RECOMMENDER_BUSY"})),
        )
            .into_response(),
        ("recommend", Mode::Bare500) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        ("recommend", Mode::Slow) => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Json(json!({"ticket": "late"})).into_response()
        }
        _ => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "no such action", "code": "UNKNOWN_ACTION"})),
        )
            .into_response(),
    }
}

/// The stand-in Recommender on a loopback port.
fn stand_in(mode: Mode) -> (Served, Shared) {
    let fake: Shared = Arc::new(Mutex::new(Fake {
        mode,
        calls: Vec::new(),
        call_back_to: None,
    }));
    let app = Router::new()
        .route("/recommender/{action}", route_post(action))
        .with_state(fake.clone());
    (serve(app), fake)
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/external")
}

/// A sync directory (the standard syncs and the example's) and a concepts directory holding the
/// example's declaration with `url`, `timeout` and `retries` replaced.
fn dirs(url: &str, timeout: &str, retries: u32) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let syncs = dir.path().join("syncs");
    let concepts = dir.path().join("concepts");
    std::fs::create_dir_all(&syncs).expect("syncs");
    std::fs::create_dir_all(&concepts).expect("concepts");
    for from in [
        Path::new(env!("CARGO_MANIFEST_DIR")).join("syncs"),
        example().join("syncs"),
    ] {
        for entry in std::fs::read_dir(&from).expect("read syncs") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "sync") {
                std::fs::copy(&path, syncs.join(path.file_name().expect("name"))).expect("copy");
            }
        }
    }
    let text = std::fs::read_to_string(example().join("concepts/Recommender.external.json")).expect("declaration");
    let mut decl: Value = serde_json::from_str(&text).expect("the example's declaration is JSON");
    decl["url"] = json!(url);
    decl["timeout"] = json!(timeout);
    decl["retries"] = json!(retries);
    std::fs::write(
        concepts.join("Recommender.external.json"),
        serde_json::to_vec_pretty(&decl).expect("json"),
    )
    .expect("write");
    dir
}

struct Lc {
    server: common::server::Server,
    _dirs: tempfile::TempDir,
}

/// The real binary serving with the example's sync and declaration (the Recommender at `url`).
fn start(url: &str, timeout: &str, retries: u32) -> Lc {
    let dirs = dirs(url, timeout, retries);
    let mut command = Command::new(env!("CARGO_BIN_EXE_librarycache"));
    command
        .args(["serve", "--addr", "127.0.0.1:0", "--data"])
        .arg(dirs.path().join("data"))
        .arg("--syncs")
        .arg(dirs.path().join("syncs"))
        .arg("--concepts")
        .arg(dirs.path().join("concepts"))
        .args(["--token", TOKEN, "--refresh-every", "off"])
        .env_remove("LIBRARYCACHE_TOKEN")
        .env_remove("LIBRARYCACHE_STORE")
        .env_remove("LIBRARYCACHE_CONCEPTS")
        .stdout(Stdio::null());
    let (child, listening) = common::server::spawn_listening(&mut command);
    let server = common::server::Server::spawned(child, listening).ready();
    Lc { server, _dirs: dirs }
}

/// One answer: status, body, the `x-flow-id` header.
fn call(lc: &Lc, path: &str, body: &Value, token: Option<&str>) -> (u16, Value, String) {
    call_keyed(lc, path, body, token, None)
}

/// [`call`] with an `Idempotency-Key`.
fn call_keyed(lc: &Lc, path: &str, body: &Value, token: Option<&str>, key: Option<&str>) -> (u16, Value, String) {
    let mut request = lc
        .server
        .client
        .post(format!("{}{path}", lc.server.base))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let answer = request.send().expect("request");
    let status = answer.status().as_u16();
    let flow = common::server::flow_of(&answer);
    (status, answer.json().unwrap_or(Value::Null), flow)
}

fn post(lc: &Lc, path: &str, body: Value) -> (u16, Value, String) {
    call(lc, path, &body, Some(TOKEN))
}

fn get(lc: &Lc, path: &str) -> Value {
    lc.server
        .client
        .get(format!("{}{path}", lc.server.base))
        .bearer_auth(TOKEN)
        .send()
        .expect("get")
        .json()
        .expect("json")
}

/// The recorded actions of `flow` named `Concept.action`.
fn recorded(lc: &Lc, flow: &str, name: &str) -> Vec<Value> {
    let report = get(lc, &format!("/api/flows/{flow}"));
    let names = common::server::action_names(&report);
    let actions = report["actions"].as_array().cloned().unwrap_or_default();
    names
        .into_iter()
        .zip(actions)
        .filter(|(n, _)| n == name)
        .map(|(_, a)| a)
        .collect()
}

/// Alice's library exists; she likes `t1` through the request path `/like`, which answers once
/// the flow (and the Recommender's call in it) is done.
fn like(lc: &Lc) -> String {
    let (status, body, _) = post(lc, "/api/LibraryCache/ingest", json!({"userId": "alice"}));
    assert_eq!(status, 200, "{body}");
    let (status, body, flow) = post(lc, "/api/like", json!({"userId": "alice", "trackId": "t1"}));
    assert_eq!(status, 200, "the like is answered whatever the Recommender did: {body}");
    assert_eq!(body["added"], 1, "{body}");
    flow
}

fn liked(lc: &Lc) -> Vec<String> {
    let (status, body, _) = post(lc, "/api/LibraryCache/_getLikedTracks", json!({"userId": "alice"}));
    assert_eq!(status, 200, "{body}");
    body["tracks"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|t| t["id"].as_str().map(str::to_string))
        .collect()
}

fn calls(fake: &Shared, action: &str) -> Vec<Call> {
    fake.lock()
        .expect("lock")
        .calls
        .iter()
        .filter(|c| c.action == action)
        .cloned()
        .collect()
}

#[test]
fn a_sync_calls_the_service_and_its_callback_enters_a_flow() {
    let (served, fake) = stand_in(Mode::Answer);
    let lc = start(&format!("{}/recommender", served.base), "10s", 2);
    let flow = like(&lc);

    // The sync called the service: the input, an idempotency key, the flow's id.
    let recommend = calls(&fake, "recommend");
    assert_eq!(recommend.len(), 1, "{recommend:?}");
    assert_eq!(
        recommend[0].body,
        json!({"userId": "alice", "likes": [{"trackId": "t1"}]})
    );
    assert_eq!(recommend[0].flow, flow);
    assert!(
        recommend[0].key.starts_with(&flow) && recommend[0].key.contains("Recommender.recommend"),
        "{:?}",
        recommend[0].key
    );
    // Its answer is recorded in the flow like any action's.
    let records = recorded(&lc, &flow, "Recommender.recommend");
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["output"], json!({"ticket": "rec-1"}));
    assert_eq!(records[0]["failed"], false);

    // The callback needs the token, and its declared input.
    let callback = json!({"userId": "alice", "ticket": "rec-1", "trackIds": ["t8", "t9"]});
    let (status, body, _) = call(&lc, "/api/Recommender/recommended", &callback, None);
    assert_eq!(status, 401, "{body}");
    let (status, body, _) = post(&lc, "/api/Recommender/recommended", json!({"userId": "alice"}));
    assert_eq!((status, body["code"].as_str()), (422, Some("INVALID_INPUT")), "{body}");
    assert!(body["error"].as_str().unwrap_or("").contains("ticket"), "{body}");

    // The callback enters a flow: the sync's `where` asks the service, then LibraryCache merges.
    let (status, body, callback_flow) = call_keyed(
        &lc,
        "/api/Recommender/recommended",
        &callback,
        Some(TOKEN),
        Some("callback-1"),
    );
    assert_eq!((status, &body), (200, &json!({})));
    // A callback the service sends again with its Idempotency-Key runs once.
    let (status, _, again) = call_keyed(
        &lc,
        "/api/Recommender/recommended",
        &callback,
        Some(TOKEN),
        Some("callback-1"),
    );
    assert_eq!(
        (status, &again),
        (200, &callback_flow),
        "the first call's flow, replayed"
    );
    let playlist = calls(&fake, "_playlist");
    assert_eq!(playlist.len(), 1, "{playlist:?}");
    assert_eq!(playlist[0].body, json!({"ticket": "rec-1"}));
    assert_eq!(playlist[0].flow, "", "a query runs outside any flow");
    assert!(
        playlist[0].key.starts_with("Recommender._playlist."),
        "{:?}",
        playlist[0].key
    );
    let merges = recorded(&lc, &callback_flow, "LibraryCache.merge");
    assert_eq!(merges.len(), 1, "{merges:?}");
    assert_eq!(merges[0]["failed"], false, "{merges:?}");
    let (status, body, _) = post(&lc, "/api/LibraryCache/_getPlaylists", json!({"userId": "alice"}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["playlists"][0]["id"], "rec-1", "{body}");
    assert_eq!(body["playlists"][0]["name"], "Picked for rec-1", "{body}");
    assert_eq!(body["playlists"][0]["trackCount"], 2, "{body}");

    // The engine calls the service; callers do not, unless --expose lists it.
    let (status, body, _) = post(
        &lc,
        "/api/Recommender/recommend",
        json!({"userId": "alice", "likes": []}),
    );
    assert_eq!((status, body["code"].as_str()), (403, Some("NOT_EXPOSED")), "{body}");

    // The schema and OpenAPI documents list the concept.
    let schema = get(&lc, "/api/schema");
    let recommender = schema["concepts"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "Recommender"))
        .cloned()
        .expect("Recommender in /api/schema");
    let names: Vec<&str> = recommender["actions"]
        .as_array()
        .map(|a| a.iter().filter_map(|a| a["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["recommend", "_playlist", "recommended"]);
    let openapi = get(&lc, "/api/openapi.json");
    assert!(
        openapi["paths"].get("/api/Recommender/recommended").is_some(),
        "the callback is in the OpenAPI document"
    );
}

#[test]
fn the_service_calls_back_by_itself_and_the_playlist_arrives() {
    let (served, fake) = stand_in(Mode::Answer);
    let lc = start(&format!("{}/recommender", served.base), "10s", 2);
    fake.lock().expect("lock").call_back_to = Some(lc.server.base.clone());
    like(&lc);
    // The callback comes when the service sends it: wait for its playlist (generously).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body, _) = post(&lc, "/api/LibraryCache/_getPlaylists", json!({"userId": "alice"}));
        assert_eq!(status, 200, "{body}");
        if body["playlists"][0]["id"] == "rec-1" {
            assert_eq!(body["playlists"][0]["trackCount"], 1, "{body}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no playlist from the callback: {body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(calls(&fake, "_playlist").len(), 1);
}

#[test]
fn a_refusal_of_the_service_is_recorded_with_its_code() {
    let (served, fake) = stand_in(Mode::Refuse);
    let lc = start(&format!("{}/recommender", served.base), "10s", 2);
    let flow = like(&lc);
    let records = recorded(&lc, &flow, "Recommender.recommend");
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["failed"], true);
    assert_eq!(records[0]["output"]["code"], "RECOMMENDER_BUSY", "{records:?}");
    assert!(records[0]["output"]["error"]
        .as_str()
        .unwrap_or("")
        .contains("rebuilding its model"));
    // A refusal in the house format is an answer: not tried again.
    assert_eq!(calls(&fake, "recommend").len(), 1);
    assert_eq!(liked(&lc), ["t1"], "the like stays");
}

#[test]
fn a_failing_service_is_tried_again_with_the_same_key_then_recorded() {
    let (served, fake) = stand_in(Mode::Bare500);
    let lc = start(&format!("{}/recommender", served.base), "10s", 2);
    let flow = like(&lc);
    let records = recorded(&lc, &flow, "Recommender.recommend");
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["output"]["code"], "UPSTREAM_FAILED", "{records:?}");
    assert!(
        records[0]["output"]["error"].as_str().unwrap_or("").contains("500"),
        "{records:?}"
    );
    let tries = calls(&fake, "recommend");
    assert_eq!(tries.len(), 3, "one call and two retries (the action is idempotent)");
    assert!(
        tries.iter().all(|t| t.key == tries[0].key && !t.key.is_empty()),
        "{tries:?}"
    );
    assert_eq!(liked(&lc), ["t1"], "the like stays");
}

#[test]
fn a_slow_service_times_out() {
    let (served, fake) = stand_in(Mode::Slow);
    // 200 ms allowed, the answer comes after 5 s; no retry.
    let lc = start(&format!("{}/recommender", served.base), "200ms", 0);
    let flow = like(&lc);
    let records = recorded(&lc, &flow, "Recommender.recommend");
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["failed"], true);
    assert_eq!(records[0]["output"]["code"], "UPSTREAM_TIMEOUT", "{records:?}");
    assert_eq!(calls(&fake, "recommend").len(), 1);
    assert_eq!(liked(&lc), ["t1"], "the like stays");
}

#[test]
fn a_service_that_is_down_is_upstream_unavailable_and_nothing_is_lost() {
    // A port nothing listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let lc = start(&format!("http://127.0.0.1:{port}/recommender"), "10s", 1);
    let flow = like(&lc);
    let records = recorded(&lc, &flow, "Recommender.recommend");
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["failed"], true);
    assert_eq!(records[0]["output"]["code"], "UPSTREAM_UNAVAILABLE", "{records:?}");
    // The call is recorded whole: it can be made again from the flow.
    assert_eq!(
        records[0]["input"],
        json!({"userId": "alice", "likes": [{"trackId": "t1"}]})
    );
    assert_eq!(liked(&lc), ["t1"], "the like stays");
    // The service is still running: its other actions answer.
    let (status, body, _) = post(&lc, "/api/LibraryCache/_getPlaylists", json!({"userId": "alice"}));
    assert_eq!((status, &body["playlists"]), (200, &json!([])), "{body}");
}

fn check(args: &[&std::ffi::OsStr]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_librarycache"))
        .arg("check")
        .args(args)
        .env_remove("LIBRARYCACHE_SYNCS")
        .env_remove("LIBRARYCACHE_CONCEPTS")
        .output()
        .expect("check runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn check_validates_syncs_against_the_declared_schemas() {
    let syncs = example().join("syncs");
    let concepts = example().join("concepts");
    let (ok, out) = check(&[
        "--syncs".as_ref(),
        syncs.as_os_str(),
        "--concepts".as_ref(),
        concepts.as_os_str(),
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("2 sync(s): no problems"), "{out}");

    // Without the declaration the concept is unknown.
    let (ok, out) = check(&["--syncs".as_ref(), syncs.as_os_str()]);
    assert!(!ok && out.contains("unknown concept `Recommender`"), "{out}");

    // A declaration beside the syncs is read too; a sync that does not fit it is refused.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        concepts.join("Recommender.external.json"),
        dir.path().join("Recommender.external.json"),
    )
    .expect("copy");
    std::fs::write(
        dir.path().join("bad.sync"),
        "sync Bad\nwhen\n    LibraryCache.merge (userId) : (added)\nthen\n    Recommender.recommend (userId, tracks: added)\n",
    )
    .expect("write");
    let (ok, out) = check(&["--syncs".as_ref(), dir.path().as_os_str()]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("bad.sync:5:"),
        "the problem names the file and line: {out}"
    );
    assert!(out.contains("tracks"), "{out}");

    // A bad declaration names the file and the problem.
    std::fs::remove_file(dir.path().join("bad.sync")).expect("rm");
    std::fs::write(
        dir.path().join("Recommender.external.json"),
        r#"{"concept": "Recommender", "url": "ftp://example.com", "actions": {}}"#,
    )
    .expect("write");
    let (ok, out) = check(&["--syncs".as_ref(), dir.path().as_os_str()]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("Recommender.external.json: `url`") && out.contains("http"),
        "{out}"
    );
    // A declaration may not take a built-in concept's name.
    std::fs::write(
        dir.path().join("LibraryCache.external.json"),
        r#"{"concept": "LibraryCache", "url": "http://127.0.0.1:1", "queries": {"_x": {"input": {"type": "object"}, "output": {"type": "object"}}}}"#,
    )
    .expect("write");
    std::fs::remove_file(dir.path().join("Recommender.external.json")).expect("rm");
    let (ok, out) = check(&["--syncs".as_ref(), dir.path().as_os_str()]);
    assert!(!ok && out.contains("a concept this service already has"), "{out}");
}

#[test]
fn a_trace_stands_in_for_the_service() {
    let out = Command::new(env!("CARGO_BIN_EXE_librarycache"))
        .arg("trace")
        .arg(example().join("specs/recommender.trace"))
        .arg("--syncs")
        .arg(example().join("syncs"))
        .arg("--concepts")
        .arg(example().join("concepts"))
        .env_remove("LIBRARYCACHE_SYNCS")
        .env_remove("LIBRARYCACHE_CONCEPTS")
        .output()
        .expect("trace runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("FAIL"), "{text}");
    assert!(
        text.contains(
            "Recommender.recommend {\"userId\":\"alice\",\"likes\":[{\"trackId\":\"t1\"}]} => {\"ticket\":\"rec-1\"}"
        ),
        "{text}"
    );
}
