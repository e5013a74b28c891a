//! The service's HTTP surface beyond the concept calls, against the real binary on a loopback
//! port: the bearer token, exposure, the body limit, compression, the schema and OpenAPI
//! documents (the OpenAPI document parses as OpenAPI 3.1 and every reference resolves), and a
//! graceful shutdown (SIGTERM) that loses no acknowledged write.

use crate::common::server;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    base: String,
    client: reqwest::blocking::Client,
}

impl Server {
    fn start(data: &Path, extra: &[&str]) -> Server {
        // Port 0: the server binds a free port and logs it (`common::server::spawn_listening`).
        let (mut child, listening) = server::spawn_listening(
            Command::new(env!("CARGO_BIN_EXE_librarycache"))
                .args(["serve", "--addr", "127.0.0.1:0", "--data"])
                .arg(data)
                .arg("--syncs")
                .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("syncs"))
                .args(extra)
                .env_remove("LIBRARYCACHE_TOKEN")
                .stdout(Stdio::null()),
        );
        let addr = server::await_listening(&mut child, &listening, Duration::from_secs(20));
        let server = Server {
            child,
            base: format!("http://{addr}"),
            client: reqwest::blocking::Client::builder()
                .gzip(false)
                .build()
                .expect("client"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if reqwest::blocking::get(format!("{}/healthz", server.base)).is_ok_and(|r| r.status() == 200) {
                return server;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server did not answer /healthz in time");
    }

    fn post(&self, path: &str, body: Value, token: Option<&str>) -> (u16, Value) {
        let mut req = self.client.post(format!("{}{path}", self.base)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().expect("request");
        (resp.status().as_u16(), resp.json().unwrap_or(Value::Null))
    }

    fn get(&self, path: &str) -> (u16, Value) {
        let resp = self.client.get(format!("{}{path}", self.base)).send().expect("request");
        (resp.status().as_u16(), resp.json().unwrap_or(Value::Null))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn library(user: &str, likes: usize) -> Value {
    let tracks: Vec<Value> = (0..likes)
        .map(|i| json!({"id": format!("t{i}"), "title": format!("Song {i}")}))
        .collect();
    let like_list: Vec<Value> = (0..likes)
        .map(|i| json!({"trackId": format!("t{i}"), "likedAt": format!("2025-01-01T00:{:02}:{:02}Z", i / 60 % 60, i % 60)}))
        .collect();
    json!({"userId": user, "tracks": tracks, "likes": like_list})
}

#[test]
fn a_token_is_required_on_every_api_call_when_set() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &["--token", "s3cret-token"]);
    for (token, status) in [
        (None, 401),
        (Some("wrong"), 401),
        (Some("s3cret-tokenX"), 401),
        (Some("s3cret-token"), 200),
    ] {
        let (got, out) = server.post("/api/LibraryCache/ingest", json!({"userId": "u"}), token);
        assert_eq!(got, status, "{token:?}: {out}");
        if status == 401 {
            assert_eq!(out["code"], json!("UNAUTHORIZED"), "{out}");
        }
    }
    // Request paths, flows and the documents need it too; /healthz does not.
    assert_eq!(server.post("/api/liked", json!({"userId": "u"}), None).0, 401);
    assert_eq!(server.get("/api/schema").0, 401);
    assert_eq!(server.get("/api/openapi.json").0, 401);
    assert_eq!(server.get("/healthz").0, 200);
    // Nothing was written by the refused calls: the one authorised ingest is the only one.
    let (status, out) = server.post("/api/liked", json!({"userId": "u"}), Some("s3cret-token"));
    assert_eq!((status, out), (200, json!({"userId": "u", "trackIds": []})));
}

#[test]
fn exposure_limits_direct_calls_and_respond_is_never_reachable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &["--expose", "LibraryCache._getLiked,LibraryCache.ingest"]);
    assert_eq!(
        server.post("/api/LibraryCache/ingest", json!({"userId": "u"}), None).0,
        200
    );
    assert_eq!(
        server
            .post("/api/LibraryCache/_getLiked", json!({"userId": "u"}), None)
            .0,
        200
    );
    let (status, out) = server.post("/api/LibraryCache/clear", json!({"userId": "u"}), None);
    assert_eq!((status, &out["code"]), (403, &json!("NOT_EXPOSED")), "{out}");
    let (status, out) = server.post("/api/Requesting/respond", json!({"request": "r"}), None);
    assert_eq!((status, &out["code"]), (403, &json!("NOT_EXPOSED")), "{out}");
    // Requests still reach the syncs, which may call what is not exposed directly.
    assert_eq!(server.post("/api/status", json!({"userId": "u"}), None).0, 200);
    // An invalid exposure list stops the server at start with the entry named.
    let out = Command::new(env!("CARGO_BIN_EXE_librarycache"))
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--expose",
            "LibraryCache,not valid",
            "--data",
        ])
        .arg(dir.path().join("other"))
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"not valid\""));
}

#[test]
fn the_body_limit_is_configurable_and_large_answers_are_compressed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &["--body-limit", "200000"]);
    let (status, out) = server.post("/api/LibraryCache/ingest", library("big", 5_000), None);
    assert_eq!((status, &out["code"]), (413, &json!("BODY_TOO_LARGE")), "{out}");
    assert_eq!(
        server.post("/api/LibraryCache/ingest", library("ok", 1_000), None).0,
        200
    );

    let resp = server
        .client
        .post(format!("{}/api/LibraryCache/_getLiked", server.base))
        .header("accept-encoding", "gzip")
        .json(&json!({"userId": "ok"}))
        .send()
        .expect("request");
    assert_eq!(
        resp.headers().get("content-encoding").and_then(|v| v.to_str().ok()),
        Some("gzip")
    );
    let compressed = resp.bytes().expect("body").len();
    let plain = server
        .client
        .post(format!("{}/api/LibraryCache/_getLiked", server.base))
        .json(&json!({"userId": "ok"}))
        .send()
        .expect("request");
    assert!(plain.headers().get("content-encoding").is_none());
    let plain = plain.bytes().expect("body").len();
    assert!(compressed * 3 < plain, "gzip {compressed} bytes vs plain {plain}");
    // A small answer is not compressed.
    let small = server
        .client
        .post(format!("{}/api/LibraryCache/_getStatus", server.base))
        .header("accept-encoding", "gzip")
        .json(&json!({"userId": "ok"}))
        .send()
        .expect("request");
    assert!(small.headers().get("content-encoding").is_none());
}

/// Every `$ref` in `doc` points at something in `doc`.
fn unresolved_refs(doc: &Value, v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                if k == "$ref" {
                    let target = child.as_str().unwrap_or_default();
                    let pointer = target.strip_prefix('#').unwrap_or(target);
                    if doc.pointer(pointer).is_none() {
                        out.push(target.to_string());
                    }
                } else {
                    unresolved_refs(doc, child, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| unresolved_refs(doc, i, out)),
        _ => {}
    }
}

#[test]
fn schema_and_openapi_documents_describe_what_is_reachable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    let (status, schema) = server.get("/api/schema");
    assert_eq!(status, 200);
    let concepts = schema["concepts"].as_array().expect("concepts");
    let library = concepts
        .iter()
        .find(|c| c["name"] == "LibraryCache")
        .expect("LibraryCache");
    let ingest = library["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .find(|a| a["name"] == "ingest")
        .expect("ingest");
    assert_eq!(ingest["kind"], json!("action"));
    assert_eq!(ingest["exposed"], json!(true));
    assert!(
        ingest["input"]["properties"]["likes"].is_object(),
        "{}",
        ingest["input"]
    );
    assert!(
        ingest["output"]["properties"]["version"].is_object(),
        "{}",
        ingest["output"]
    );
    let requesting = concepts.iter().find(|c| c["name"] == "Requesting").expect("Requesting");
    assert!(requesting["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .all(|a| a["exposed"] == json!(false)));

    let (status, doc) = server.get("/api/openapi.json");
    assert_eq!(status, 200);
    let parsed = oas3::from_json(doc.to_string()).unwrap_or_else(|e| panic!("not OpenAPI 3.1: {e}"));
    assert!(parsed.openapi.starts_with("3.1"), "{}", parsed.openapi);
    let mut missing = Vec::new();
    unresolved_refs(&doc, &doc, &mut missing);
    assert!(missing.is_empty(), "unresolved $refs: {missing:?}");
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.contains_key("/api/LibraryCache/ingest"));
    assert!(paths.contains_key("/api/LibraryCache/_getLiked"));
    assert!(
        paths.contains_key("/api/liked"),
        "request paths of the default syncs are listed"
    );
    assert!(!paths.contains_key("/api/Requesting/respond"));
    assert_eq!(
        doc["paths"]["/api/liked"]["post"]["requestBody"]["content"]["application/json"]["schema"]["required"],
        json!(["userId"])
    );
}

#[test]
fn sigterm_finishes_in_flight_writes_and_loses_none() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    for w in 0..4 {
        assert_eq!(
            server
                .post("/api/LibraryCache/ingest", json!({"userId": format!("w{w}")}), None)
                .0,
            200
        );
    }
    let base = server.base.clone();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let base = base.clone();
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::new();
                let mut acknowledged = Vec::new();
                for i in 0..3_000 {
                    let body = json!({"userId": format!("w{w}"), "likes": [{"trackId": format!("t{i}"), "likedAt": "2025-01-01T00:00:00Z"}]});
                    match client.post(format!("{base}/api/LibraryCache/merge")).json(&body).send() {
                        Ok(r) if r.status() == 200 => acknowledged.push(format!("t{i}")),
                        _ => break,
                    }
                }
                acknowledged
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(800));
    // SIGTERM: stop accepting, finish in-flight actions, flush, exit.
    let pid = server.child.id() as libc::pid_t;
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let acknowledged: Vec<Vec<String>> = writers.into_iter().map(|w| w.join().expect("writer")).collect();
    let mut server = server;
    let status = server.child.wait().expect("exits");
    assert!(status.success(), "graceful exit, not {status:?}");
    assert!(
        acknowledged.iter().all(|a| !a.is_empty()),
        "every writer got answers before the stop"
    );

    let server = Server::start(dir.path(), &[]);
    for (w, acked) in acknowledged.iter().enumerate() {
        let (_, liked) = server.post("/api/LibraryCache/_getLiked", json!({"userId": format!("w{w}")}), None);
        let liked: Vec<&str> = liked["trackIds"]
            .as_array()
            .expect("ids")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for t in acked {
            assert!(liked.contains(&t.as_str()), "w{w}: acknowledged like {t} lost");
        }
    }
}

#[test]
fn old_flows_are_compacted_at_start_and_the_library_stays() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    assert_eq!(
        server.post("/api/LibraryCache/ingest", json!({"userId": "u"}), None).0,
        200
    );
    let resp = server
        .client
        .post(format!("{}/api/like", server.base))
        .json(&json!({"userId": "u", "trackId": "t:1"}))
        .send()
        .expect("request");
    let flow = resp.headers()["x-flow-id"].to_str().expect("flow").to_string();
    assert_eq!(server.get(&format!("/api/flows/{flow}")).0, 200);
    drop(server);

    // Kept with the default retention (30 days) ...
    let server = Server::start(dir.path(), &[]);
    assert_eq!(server.get(&format!("/api/flows/{flow}")).0, 200);
    drop(server);
    // ... and compacted when it is older than the retention.
    std::thread::sleep(Duration::from_millis(1_100));
    let server = Server::start(dir.path(), &["--log-retention", "1s"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.get(&format!("/api/flows/{flow}")).0 != 404 {
        assert!(Instant::now() < deadline, "the flow was not compacted");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, liked) = server.post("/api/LibraryCache/_getLiked", json!({"userId": "u"}), None);
    assert_eq!(
        (status, liked),
        (200, json!({"trackIds": ["t:1"]})),
        "events are never compacted"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_librarycache"))
        .args(["serve", "--addr", "127.0.0.1:0", "--log-retention", "30w", "--data"])
        .arg(dir.path().join("other"))
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--log-retention: \"30w\""));
}

#[test]
fn an_idempotency_key_makes_a_retry_safe_over_http() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    assert_eq!(
        server.post("/api/LibraryCache/ingest", json!({"userId": "u"}), None).0,
        200
    );
    let send = |path: &str, body: Value, key: &str| {
        let resp = server
            .client
            .post(format!("{}{path}", server.base))
            .header("idempotency-key", key)
            .json(&body)
            .send()
            .expect("request");
        let replayed = resp.headers().get("idempotent-replayed").is_some();
        let flow = resp.headers()["x-flow-id"].to_str().expect("flow").to_string();
        (
            resp.status().as_u16(),
            resp.json::<Value>().expect("json"),
            replayed,
            flow,
        )
    };
    let like = json!({"userId": "u", "likes": [{"trackId": "t1"}]});
    let first = send("/api/LibraryCache/merge", like.clone(), "k-merge");
    let retry = send("/api/LibraryCache/merge", like, "k-merge");
    assert_eq!((first.0, first.2), (200, false));
    assert_eq!((retry.0, retry.2), (200, true));
    assert_eq!((&retry.1, &retry.3), (&first.1, &first.3), "same answer, same flow");
    // Through a request path: the retry answers with the first flow's respond.
    let first = send("/api/like", json!({"userId": "u", "trackId": "t2"}), "k-like");
    let retry = send("/api/like", json!({"userId": "u", "trackId": "t2"}), "k-like");
    assert_eq!((first.0, retry.0, retry.2), (200, 200, true));
    assert_eq!(retry.1, first.1);
    let (_, liked) = server.post("/api/LibraryCache/_getLiked", json!({"userId": "u"}), None);
    assert_eq!(
        liked["trackIds"].as_array().map(Vec::len),
        Some(2),
        "each like applied once: {liked}"
    );
    let (_, report) = server.get(&format!("/api/flows/{}", first.3));
    assert_eq!(report["actions"].as_array().map(Vec::len), Some(3));
}
