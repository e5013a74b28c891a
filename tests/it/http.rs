//! The real `librarycache serve` binary on a loopback port: the Alice scenario over HTTP, the
//! status codes and error bodies the README's curl session lists, and durability across SIGKILL.

use crate::common::server;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(data: &Path, extra: &[&str]) -> Server {
        // Port 0: the server binds a free port and logs it (`common::server::spawn_listening`).
        let (mut child, listening) = server::spawn_listening(
            Command::new(env!("CARGO_BIN_EXE_librarycache"))
                .arg("serve")
                .arg("--data")
                .arg(data)
                .arg("--addr")
                .arg("127.0.0.1:0")
                .arg("--syncs")
                .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("syncs"))
                .args(extra)
                .stdout(Stdio::null()),
        );
        let addr = server::await_listening(&mut child, &listening, Duration::from_secs(20));
        let server = Server {
            child,
            base: format!("http://{addr}"),
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

    fn post_raw(&self, path: &str, body: Vec<u8>) -> (u16, Value) {
        let resp = reqwest::blocking::Client::new()
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().unwrap_or(Value::Null))
    }

    fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.post_raw(path, body.to_string().into_bytes())
    }

    /// A POST's status, JSON body and flow id header.
    fn post_flow(&self, path: &str, body: Value) -> (u16, Value, String) {
        let resp = reqwest::blocking::Client::new()
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .expect("request");
        let flow = server::flow_of(&resp);
        (resp.status().as_u16(), resp.json().unwrap_or(Value::Null), flow)
    }

    fn get(&self, path: &str) -> (u16, Value) {
        let resp = reqwest::blocking::get(format!("{}{path}", self.base)).expect("request");
        (resp.status().as_u16(), resp.json().unwrap_or(Value::Null))
    }

    fn kill(mut self) {
        // SIGKILL: no shutdown code runs.
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn alice() -> Value {
    json!({
        "userId": "user:alice",
        "tracks": [{"id": "track:a", "title": "Alpha"}, {"id": "track:b", "title": "Bravo"}, {"id": "track:c", "title": "Charlie"}],
        "likes": [{"trackId": "track:b", "likedAt": "2025-10-02T09:00:00Z"}, {"trackId": "track:a", "likedAt": "2025-10-01T09:00:00Z"}],
        "plays": [{"trackId": "track:a", "playedAt": "2025-10-03T20:15:00Z"}],
        "playlists": [{"id": "playlist:1", "name": "Oct25", "entries": ["track:b", "track:a"]}]
    })
}

#[test]
fn the_alice_scenario_over_http_survives_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    let (status, out) = server.post("/api/LibraryCache/ingest", alice());
    assert_eq!(status, 200, "{out}");
    assert_eq!(
        server
            .post("/api/LibraryCache/_getLiked", json!({"userId": "user:alice"}))
            .1,
        json!({"trackIds": ["track:b", "track:a"]})
    );
    let (_, playlist) = server.post("/api/LibraryCache/_getPlaylist", json!({"playlistId": "playlist:1"}));
    assert_eq!(playlist["entries"], json!(["track:b", "track:a"]));
    let sync = json!({"userId": "user:alice", "likes": [
        {"trackId": "track:c", "likedAt": "2025-10-20T18:30:00Z"},
        {"trackId": "track:b", "likedAt": "2025-10-02T09:00:00Z"},
        {"trackId": "track:a", "likedAt": "2025-10-01T09:00:00Z"}]});
    let (status, out) = server.post("/api/LibraryCache/sync", sync);
    assert_eq!(status, 200, "{out}");
    server.kill();

    let server = Server::start(dir.path(), &[]);
    assert_eq!(
        server
            .post("/api/LibraryCache/_getLiked", json!({"userId": "user:alice"}))
            .1,
        json!({"trackIds": ["track:c", "track:b", "track:a"]})
    );
    assert_eq!(
        server
            .post("/api/LibraryCache/_getPlaylist", json!({"playlistId": "playlist:1"}))
            .1["entries"],
        json!(["track:b", "track:a"])
    );
    let (status, out) = server.post("/api/LibraryCache/ingest", alice());
    assert_eq!((status, out["code"].as_str()), (409, Some("ALREADY_INGESTED")), "{out}");
}

#[test]
fn errors_have_the_designed_status_code_and_body() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &["--body-limit", "4096"]);
    assert_eq!(server.post("/api/LibraryCache/ingest", alice()).0, 200);
    let big = json!({"userId": "u", "tracks": [{"id": "x".repeat(8000)}]});
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "/api/LibraryCache/ingest",
            b"{\"userId\": ".to_vec(),
            400,
            "MALFORMED_JSON",
        ),
        (
            "/api/LibraryCache/ingest",
            vec![0xff, 0xfe, b'{', b'}'],
            400,
            "MALFORMED_JSON",
        ),
        ("/api/LibraryCache/ingest", b"".to_vec(), 400, "MALFORMED_JSON"),
        ("/api/LibraryCache/ingest", b"[1, 2]".to_vec(), 422, "INVALID_INPUT"),
        (
            "/api/LibraryCache/ingest",
            b"{\"userId\": 5}".to_vec(),
            422,
            "INVALID_INPUT",
        ),
        (
            "/api/LibraryCache/ingest",
            br#"{"userId": "u", "likes": [{"trackId": "a", "likedAt": "soon"}]}"#.to_vec(),
            422,
            "INVALID_TIME",
        ),
        (
            "/api/LibraryCache/ingest",
            alice().to_string().into_bytes(),
            409,
            "ALREADY_INGESTED",
        ),
        (
            "/api/LibraryCache/sync",
            br#"{"userId": "user:nobody"}"#.to_vec(),
            404,
            "USER_NOT_FOUND",
        ),
        (
            "/api/LibraryCache/_getLiked",
            br#"{"userId": "user:nobody"}"#.to_vec(),
            404,
            "USER_NOT_FOUND",
        ),
        (
            "/api/LibraryCache/_getPlaylist",
            br#"{"playlistId": "nope"}"#.to_vec(),
            404,
            "PLAYLIST_NOT_FOUND",
        ),
        ("/api/LibraryCache/explode", b"{}".to_vec(), 404, "UNKNOWN_ACTION"),
        // Not a concept: a request path no sync answers.
        ("/api/Nothing/ingest", b"{}".to_vec(), 404, "NO_SYNC_FOR_PATH"),
        ("/api/LibraryCache/ingest/more", b"{}".to_vec(), 404, "NOT_FOUND"),
        (
            "/api/Requesting/respond",
            br#"{"request": "r"}"#.to_vec(),
            403,
            "NOT_EXPOSED",
        ),
        (
            "/api/LibraryCache/ingest",
            big.to_string().into_bytes(),
            413,
            "BODY_TOO_LARGE",
        ),
    ];
    for (path, body, status, code) in cases {
        let shown = String::from_utf8_lossy(&body).chars().take(60).collect::<String>();
        let (got, out) = server.post_raw(path, body);
        assert_eq!(got, status, "{path} {shown}: {out}");
        assert_eq!(out["code"], json!(code), "{path} {shown}: {out}");
        assert!(
            out["error"].as_str().is_some_and(|m| !m.is_empty()),
            "{path}: no message in {out}"
        );
    }
    // Nothing above changed Alice's library.
    assert_eq!(
        server
            .post("/api/LibraryCache/_getLiked", json!({"userId": "user:alice"}))
            .1,
        json!({"trackIds": ["track:b", "track:a"]})
    );
}

#[test]
fn requests_are_answered_by_syncs_and_their_flows_survive_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    assert_eq!(server.post("/api/LibraryCache/ingest", alice()).0, 200);

    // A read through Requesting and the default syncs.
    let (status, out, flow) = server.post_flow("/api/liked", json!({"userId": "user:alice"}));
    assert_eq!(status, 200, "{out}");
    assert_eq!(out, json!({"userId": "user:alice", "trackIds": ["track:b", "track:a"]}));
    assert!(uuid::Uuid::parse_str(&flow).is_ok(), "flow header {flow:?}");

    // An unknown user: the error-answering sync's status and body.
    let (status, out, _) = server.post_flow("/api/liked", json!({"userId": "user:nobody"}));
    assert_eq!((status, &out["code"]), (404, &json!("USER_NOT_FOUND")), "{out}");

    // A request the syncs mention but cannot answer: the explanation names the sync and what
    // did not match.
    let (status, out, _) = server.post_flow("/api/liked", json!({"user": "user:alice"}));
    assert_eq!((status, &out["code"]), (500, &json!("UNANSWERED")), "{out}");
    let message = out["error"].as_str().unwrap_or_default();
    assert!(message.contains("sync LikedSongs ("), "{message}");
    assert!(message.contains("liked.sync:"), "{message}");
    assert!(
        message.contains(r#"Requesting.request (path: "/liked", userId)"#),
        "{message}"
    );
    assert!(message.contains("matched no action of the flow"), "{message}");

    // A path no sync mentions; even it carries a flow id.
    let (status, out, flow) = server.post_flow("/api/unheard/of", json!({}));
    assert_eq!((status, &out["code"]), (404, &json!("NO_SYNC_FOR_PATH")), "{out}");
    assert!(uuid::Uuid::parse_str(&flow).is_ok(), "flow header {flow:?}");

    // A write through a request, with a cascade two deep.
    let (status, out, like_flow) = server.post_flow("/api/like", json!({"userId": "user:alice", "trackId": "track:c"}));
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["added"], json!(1), "{out}");
    let (status, report) = server.get(&format!("/api/flows/{like_flow}"));
    assert_eq!(status, 200, "{report}");
    let before_crash = report.clone();
    let names = server::action_names(&report);
    assert_eq!(
        names,
        ["Requesting.request", "LibraryCache.merge", "Requesting.respond"]
    );
    let ids: Vec<u64> = report["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .map(|a| a["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(
        report["firings"],
        json!([
            {"sync": "LikeTrack", "matched": [ids[0]], "produced": [ids[1]]},
            {"sync": "LikeTrackDone", "matched": [ids[0], ids[1]], "produced": [ids[2]]}
        ])
    );
    server.kill();

    // The records written before the crash are there after it.
    let server = Server::start(dir.path(), &[]);
    let (status, report) = server.get(&format!("/api/flows/{like_flow}"));
    assert_eq!(status, 200, "{report}");
    assert_eq!(report, before_crash);
    assert_eq!(
        server
            .post(
                "/api/LibraryCache/_getLiked",
                json!({"userId": "user:alice", "limit": 1})
            )
            .1["trackIds"],
        json!(["track:c"])
    );
    let (status, out) = server.get("/api/flows/not-a-flow");
    assert_eq!((status, &out["code"]), (422, &json!("INVALID_FLOW_ID")), "{out}");
    let (status, out) = server.get(&format!("/api/flows/{}", uuid::Uuid::now_v7()));
    assert_eq!((status, &out["code"]), (404, &json!("FLOW_NOT_FOUND")), "{out}");
}
