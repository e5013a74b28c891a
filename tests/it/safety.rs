//! Issue 18 over HTTP against the real `librarycache serve`: other web pages cannot drive the
//! service (Host, Origin, content type; CORS for listed origins; no token beyond loopback
//! refused), a trickled body is cut off by the whole-request timeout, `/healthz` probes the
//! store while `/livez` does not, an idempotency key reused for another request is refused,
//! and `GET /metrics` reports what the service does. Raw requests go over a plain TCP socket,
//! so every header is exactly what a browser (or an attacker) would send.

use crate::common;

use common::lastfm::{scrobble, FakeLastfm};
use common::server::{metric, Server};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

/// An answer read off the socket: status, lower-cased headers, body.
#[derive(Debug)]
struct Raw {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
}

impl Raw {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_string()
    }
}

fn port(server: &Server) -> u16 {
    server
        .base
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port")
}

/// Sends `method path` with exactly `headers` (and `body`) on a fresh connection.
fn raw(server: &Server, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Raw {
    let mut stream = TcpStream::connect(("127.0.0.1", port(server))).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let mut request = format!("{method} {path} HTTP/1.1\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("Connection: close\r\n\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).expect("send");
    read_answer(&mut stream)
}

fn read_answer(stream: &mut TcpStream) -> Raw {
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let body = if headers.get("transfer-encoding").is_some_and(|t| t == "chunked") {
        dechunk(body)
    } else {
        body.to_string()
    };
    Raw { status, headers, body }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Request headers, as sent.
type Headers<'a> = Vec<(&'a str, &'a str)>;

fn liked(server: &Server, user: &str) -> Value {
    server
        .post("/api/LibraryCache/_getLiked", &json!({ "userId": user }))
        .body
}

#[test]
fn the_measured_attack_and_each_of_its_parts_are_refused_and_run_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    let p = port(&server);
    let own = format!("127.0.0.1:{p}");
    let local = format!("localhost:{p}");
    let evil_host = format!("evil.example:{p}");
    let ingest = json!({"userId": "u", "tracks": [{"id": "t:1"}], "likes": [{"trackId": "t:1"}]});
    assert_eq!(server.post("/api/LibraryCache/ingest", &ingest).status, 200);
    let status = json!({"userId": "u"}).to_string();

    // The measured attack: a cross-site "simple" POST through a rebound name.
    let attack = raw(
        &server,
        "POST",
        "/api/LibraryCache/_getStatus",
        &[
            ("Host", &evil_host),
            ("Origin", "https://evil.example"),
            ("Content-Type", "text/plain"),
        ],
        &status,
    );
    assert_eq!(
        (attack.status, attack.code().as_str()),
        (421, "HOST_NOT_ALLOWED"),
        "{attack:?}"
    );
    assert!(
        attack.json()["error"]
            .as_str()
            .is_some_and(|e| e.contains("evil.example")),
        "{attack:?}"
    );
    assert!(
        attack.json().get("tracks").is_none(),
        "nothing was answered: {attack:?}"
    );

    // Each part alone, on an action that would change state.
    let clear = json!({"userId": "u"}).to_string();
    let cases: Vec<(Headers, u16, &str)> = vec![
        (
            vec![("Host", &evil_host), ("Content-Type", "application/json")],
            421,
            "HOST_NOT_ALLOWED",
        ),
        (
            vec![
                ("Host", &own),
                ("Origin", "https://evil.example"),
                ("Content-Type", "application/json"),
            ],
            403,
            "ORIGIN_NOT_ALLOWED",
        ),
        (
            vec![("Host", &own), ("Origin", "null"), ("Content-Type", "application/json")],
            403,
            "ORIGIN_NOT_ALLOWED",
        ),
        (
            vec![("Host", &own), ("Content-Type", "text/plain")],
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            vec![("Host", &own), ("Content-Type", "application/x-www-form-urlencoded")],
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (vec![("Host", &own)], 415, "UNSUPPORTED_MEDIA_TYPE"),
        // The same name on another port is another origin.
        (
            vec![
                ("Host", &own),
                ("Origin", "http://127.0.0.1:1"),
                ("Content-Type", "application/json"),
            ],
            403,
            "ORIGIN_NOT_ALLOWED",
        ),
    ];
    for (headers, want_status, want_code) in cases {
        let r = raw(&server, "POST", "/api/LibraryCache/clear", &headers, &clear);
        assert_eq!(
            (r.status, r.code().as_str()),
            (want_status, want_code),
            "{headers:?}: {r:?}"
        );
        assert!(r.json()["error"].is_string(), "the service's error body: {r:?}");
        assert!(r.headers.contains_key("x-flow-id"), "a flow id to quote: {r:?}");
    }
    assert_eq!(liked(&server, "u"), json!({"trackIds": ["t:1"]}), "clear never ran");

    // Reads through a rebound name are refused as well: the page, the flows, the health.
    for path in ["/", "/healthz", "/api/schema", "/metrics"] {
        let r = raw(&server, "GET", path, &[("Host", &evil_host)], "");
        assert_eq!(r.status, 421, "{path}: {r:?}");
    }

    // What the service's own page sends is served.
    for (host, origin) in [(&own, format!("http://{own}")), (&local, format!("http://{local}"))] {
        let r = raw(
            &server,
            "POST",
            "/api/LibraryCache/_getLiked",
            &[
                ("Host", host),
                ("Origin", &origin),
                ("Content-Type", "application/json; charset=utf-8"),
            ],
            &status,
        );
        assert_eq!(
            (r.status, r.json()),
            (200, json!({"trackIds": ["t:1"]})),
            "{host}: {r:?}"
        );
        let page = raw(&server, "GET", "/", &[("Host", host)], "");
        assert_eq!(page.status, 200, "{host}");
    }
    // A request without Origin (curl, another program) and with the bound address is served.
    let r = raw(
        &server,
        "POST",
        "/api/LibraryCache/_getLiked",
        &[("Host", &own), ("Content-Type", "application/json")],
        &status,
    );
    assert_eq!(r.status, 200, "{r:?}");
}

#[test]
fn listed_hosts_and_origins_are_served_and_origins_get_cors_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(
        dir.path(),
        &[
            "--allowed-hosts",
            "music.example",
            "--allow-origin",
            "https://app.example",
        ],
    );
    let own = format!("127.0.0.1:{}", port(&server));
    let body = json!({"userId": "nobody"}).to_string();
    // A listed host (behind a proxy, on any port).
    for host in ["music.example", "music.example:443"] {
        let r = raw(
            &server,
            "POST",
            "/api/LibraryCache/_getUsers",
            &[("Host", host), ("Content-Type", "application/json")],
            "{}",
        );
        assert_eq!(r.status, 200, "{host}: {r:?}");
    }
    // The preflight of a listed origin, answered by the CORS layer.
    let preflight = raw(
        &server,
        "OPTIONS",
        "/api/LibraryCache/ingest",
        &[
            ("Host", &own),
            ("Origin", "https://app.example"),
            ("Access-Control-Request-Method", "POST"),
            (
                "Access-Control-Request-Headers",
                "content-type,idempotency-key,authorization",
            ),
        ],
        "",
    );
    assert_eq!(preflight.status, 200, "{preflight:?}");
    assert_eq!(
        preflight.headers.get("access-control-allow-origin").map(String::as_str),
        Some("https://app.example")
    );
    let allowed = preflight
        .headers
        .get("access-control-allow-headers")
        .cloned()
        .unwrap_or_default();
    for h in ["content-type", "idempotency-key", "authorization"] {
        assert!(allowed.contains(h), "{h} in {allowed}");
    }
    assert!(preflight
        .headers
        .get("access-control-allow-methods")
        .is_some_and(|m| m.contains("POST")));
    // Its requests get the CORS headers, with the flow id readable.
    let r = raw(
        &server,
        "POST",
        "/api/LibraryCache/ingest",
        &[
            ("Host", &own),
            ("Origin", "https://app.example"),
            ("Content-Type", "application/json"),
        ],
        &body,
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.headers.get("access-control-allow-origin").map(String::as_str),
        Some("https://app.example")
    );
    assert!(r
        .headers
        .get("access-control-expose-headers")
        .is_some_and(|h| h.contains("x-flow-id")));
    // Another origin's preflight and request are refused.
    let other = raw(
        &server,
        "OPTIONS",
        "/api/LibraryCache/clear",
        &[
            ("Host", &own),
            ("Origin", "https://evil.example"),
            ("Access-Control-Request-Method", "POST"),
        ],
        "",
    );
    assert_eq!((other.status, other.code().as_str()), (403, "ORIGIN_NOT_ALLOWED"));
    assert!(!other.headers.contains_key("access-control-allow-origin"));
    let r = raw(
        &server,
        "POST",
        "/api/LibraryCache/clear",
        &[
            ("Host", &own),
            ("Origin", "https://evil.example"),
            ("Content-Type", "application/json"),
        ],
        &body,
    );
    assert_eq!(r.status, 403);
    assert_eq!(liked(&server, "nobody"), json!({"trackIds": []}), "clear never ran");

    // Lists that cannot be read stop the server with the entry named.
    for (flag, value, named) in [
        ("--allow-origin", "app.example", "\"app.example\""),
        ("--allowed-hosts", "http://x.example", "\"http://x.example\""),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_librarycache"))
            .args(["serve", "--addr", "127.0.0.1:0", flag, value, "--data"])
            .arg(dir.path().join("other"))
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flag}");
        assert!(stderr.contains(flag) && stderr.contains(named), "{stderr}");
    }
}

#[test]
fn listening_beyond_loopback_needs_a_token_or_the_explicit_opt_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_librarycache"))
        .args(["serve", "--addr", "0.0.0.0:0", "--data"])
        .arg(dir.path())
        .env_remove("LIBRARYCACHE_TOKEN")
        .env_remove("LIBRARYCACHE_INSECURE_NO_TOKEN")
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0 without a token") && stderr.contains("--insecure-no-token"),
        "{stderr}"
    );
    // With a token, or with the opt-out, it serves (reached here through loopback).
    for extra in [&["--token", "T"][..], &["--insecure-no-token"][..]] {
        // Port 0: the server binds a free port and logs it (`common::server::spawn_listening`).
        let (mut child, listening) = common::server::spawn_listening(
            Command::new(env!("CARGO_BIN_EXE_librarycache"))
                .args(["serve", "--addr", "0.0.0.0:0", "--data"])
                .arg(dir.path())
                .args(extra)
                .env_remove("LIBRARYCACHE_TOKEN")
                .stdout(std::process::Stdio::null()),
        );
        let addr = common::server::await_listening(&mut child, &listening, Duration::from_secs(30));
        let port = addr.rsplit(':').next().expect("a port").to_string();
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = common::server::client();
        loop {
            let up = client
                .get(format!("http://127.0.0.1:{port}/livez"))
                .send()
                .is_ok_and(|r| r.status() == 200);
            if up {
                break;
            }
            assert!(Instant::now() < deadline, "{extra:?}: not serving");
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

#[test]
fn a_trickled_body_is_cut_off_at_the_request_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &["--request-timeout", "2"]);
    let mut stream = TcpStream::connect(("127.0.0.1", port(&server))).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    let head = format!(
        "POST /api/LibraryCache/ingest HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{{\"userId\": \"slow\", \"tracks\": [",
        port(&server),
        32 * 1024 * 1024
    );
    stream.write_all(head.as_bytes()).expect("head");
    let started = Instant::now();
    // A client that sends a few bytes every 100 ms: 32 MiB would take months.
    let mut writer = stream.try_clone().expect("clone");
    let trickle = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut sent = 0;
        while Instant::now() < deadline {
            if writer.write_all(b"{\"id\":\"t\"},").is_err() {
                break;
            }
            sent += 1;
            std::thread::sleep(Duration::from_millis(100));
        }
        sent
    });
    let answer = read_answer(&mut stream);
    let took = started.elapsed();
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (408, "REQUEST_TIMEOUT"),
        "{answer:?}"
    );
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(8),
        "answered after {took:?}"
    );
    drop(stream);
    let sent = trickle.join().expect("trickle");
    assert!(sent > 5, "the client was still sending ({sent} pieces)");
    // Nothing ran, and the service goes on.
    let r = server.post("/api/LibraryCache/_getStatus", &json!({"userId": "slow"}));
    assert_eq!(r.status, 404, "{r:?}");
    assert!(server.healthy());
    // A prompt request within the same timeout is answered as usual.
    assert_eq!(
        server
            .post("/api/LibraryCache/ingest", &json!({"userId": "fast"}))
            .status,
        200
    );
}

#[test]
fn healthz_probes_the_store_and_livez_only_the_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    assert_eq!(
        server.post("/api/LibraryCache/ingest", &json!({"userId": "u"})).status,
        200
    );
    let health: Value = server
        .client
        .get(format!("{}/healthz", server.base))
        .send()
        .expect("healthz")
        .json()
        .expect("json");
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["store"]["status"], "ok", "{health}");
    assert!(health["store"]["lastSeq"].as_u64().is_some_and(|s| s >= 1), "{health}");
    assert!(health["background"].is_object(), "{health}");
    let live = server
        .client
        .get(format!("{}/livez", server.base))
        .send()
        .expect("livez");
    assert_eq!(live.status(), 200);
    assert_eq!(live.json::<Value>().expect("json"), json!({"status": "ok"}));
}

/// On PostgreSQL the probe is a round trip: with the database unreachable (the connection
/// through a proxy the test then closes) `/healthz` is 503 `STORE_UNAVAILABLE` while `/livez`
/// still answers, and `/healthz` is 200 again once the database is back.
#[test]
fn healthz_is_503_while_postgresql_is_unreachable() {
    let Some(store) = common::TestStore::postgres() else {
        return;
    };
    let url = store.arg();
    let Some((proxy, proxied)) = PgProxy::start(&url) else {
        eprintln!("healthz_is_503_while_postgresql_is_unreachable: the PostgreSQL URL has no TCP host:port; skipped");
        return;
    };
    let server = Server::start(&proxied, &[]);
    let get = |path: &str| {
        let r = server
            .client
            .get(format!("{}{path}", server.base))
            .send()
            .expect("answer");
        (r.status().as_u16(), r.json::<Value>().unwrap_or(Value::Null))
    };
    assert_eq!(get("/healthz").0, 200);
    proxy.set_open(false);
    let deadline = Instant::now() + Duration::from_secs(30);
    let unavailable = loop {
        let (status, body) = get("/healthz");
        if status == 503 {
            break body;
        }
        assert!(Instant::now() < deadline, "healthz stayed {status}: {body}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(unavailable["code"], "STORE_UNAVAILABLE", "{unavailable}");
    eprintln!("healthz with the database cut off: 503 {unavailable}");
    assert_eq!(get("/livez").0, 200);
    proxy.set_open(true);
    let deadline = Instant::now() + Duration::from_secs(30);
    while get("/healthz").0 != 200 {
        assert!(Instant::now() < deadline, "healthz did not recover");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A TCP proxy in front of PostgreSQL that the test can cut: closed, it drops every connection
/// and refuses new ones.
struct PgProxy {
    open: std::sync::Arc<std::sync::atomic::AtomicBool>,
    generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl PgProxy {
    /// The proxy and the URL that goes through it (None when `url` names no TCP host:port).
    fn start(url: &str) -> Option<(PgProxy, String)> {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        use std::sync::Arc;
        let (scheme, rest) = url.split_once("://")?;
        let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (format!("{u}@"), h),
            None => (String::new(), authority),
        };
        if hostport.is_empty() || tail.contains("host=") {
            return None;
        }
        let target = if hostport.contains(':') {
            hostport.to_string()
        } else {
            format!("{hostport}:5432")
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").ok()?;
        let local = listener.local_addr().ok()?;
        let open = Arc::new(AtomicBool::new(true));
        let generation = Arc::new(AtomicU64::new(0));
        let (o, g) = (Arc::clone(&open), Arc::clone(&generation));
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if !o.load(Ordering::SeqCst) {
                    continue;
                }
                let Ok(upstream) = TcpStream::connect(&target) else {
                    continue;
                };
                let born = g.load(Ordering::SeqCst);
                for (mut from, mut to) in [
                    (client.try_clone().expect("clone"), upstream.try_clone().expect("clone")),
                    (upstream, client),
                ] {
                    let (o, g) = (Arc::clone(&o), Arc::clone(&g));
                    from.set_read_timeout(Some(Duration::from_millis(100))).ok();
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16 * 1024];
                        loop {
                            if !o.load(Ordering::SeqCst) || g.load(Ordering::SeqCst) != born {
                                let _ = from.shutdown(std::net::Shutdown::Both);
                                let _ = to.shutdown(std::net::Shutdown::Both);
                                return;
                            }
                            match from.read(&mut buf) {
                                Ok(0) => {
                                    let _ = to.shutdown(std::net::Shutdown::Both);
                                    return;
                                }
                                Ok(n) => {
                                    if to.write_all(&buf[..n]).is_err() {
                                        return;
                                    }
                                }
                                Err(e)
                                    if matches!(
                                        e.kind(),
                                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                                    ) => {}
                                Err(_) => return,
                            }
                        }
                    });
                }
            }
        });
        Some((
            PgProxy { open, generation },
            format!("{scheme}://{userinfo}{local}{tail}"),
        ))
    }

    fn set_open(&self, open: bool) {
        use std::sync::atomic::Ordering;
        if !open {
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
        self.open.store(open, Ordering::SeqCst);
    }
}

#[test]
fn an_idempotency_key_reused_for_another_request_is_refused_over_http() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    assert_eq!(
        server.post("/api/LibraryCache/ingest", &json!({"userId": "u"})).status,
        200
    );
    let send = |path: &str, body: &Value, key: &str| {
        common::server::send(
            &server.client,
            &server.base,
            path,
            body.to_string().into_bytes(),
            Some(key),
        )
        .expect("answer")
    };
    let a = json!({"userId": "u", "likes": [{"trackId": "t:a"}]});
    let b = json!({"userId": "u", "likes": [{"trackId": "t:b"}]});
    let first = send("/api/LibraryCache/merge", &a, "k-1");
    assert_eq!((first.status, first.replayed), (200, false), "{first:?}");
    let again = send("/api/LibraryCache/merge", &a, "k-1");
    assert_eq!((again.status, again.replayed, &again.body), (200, true, &first.body));
    let other = send("/api/LibraryCache/merge", &b, "k-1");
    assert_eq!(
        (other.status, other.body["code"].as_str()),
        (422, Some("IDEMPOTENCY_KEY_REUSED")),
        "{other:?}"
    );
    assert!(!other.replayed);
    assert_eq!(
        liked(&server, "u"),
        json!({"trackIds": ["t:a"]}),
        "the second body never ran"
    );
    // Requests answered by syncs: another path under the key is another request.
    let like = json!({"userId": "u", "trackId": "t:c"});
    assert_eq!(send("/api/like", &like, "k-2").status, 200);
    assert!(send("/api/like", &like, "k-2").replayed);
    let elsewhere = send("/api/status", &like, "k-2");
    assert_eq!(
        (elsewhere.status, elsewhere.body["code"].as_str()),
        (422, Some("IDEMPOTENCY_KEY_REUSED")),
        "{elsewhere:?}"
    );
    let unlike = send("/api/like", &json!({"userId": "u", "trackId": "t:d"}), "k-2");
    assert_eq!(unlike.status, 422, "{unlike:?}");
}

/// A store written before keys carried a fingerprint (tests/fixtures/store-v1, which has the
/// key `key-1` of a merge for user:bob): the key still replays its answer, whatever the body.
#[test]
fn keys_stored_before_fingerprints_still_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-v1");
    for name in ["conf", "db"] {
        std::fs::copy(fixture.join(name), dir.path().join(name)).expect("copy the fixture");
    }
    let server = Server::start(dir.path(), &[]);
    let r = common::server::send(
        &server.client,
        &server.base,
        "/api/LibraryCache/merge",
        json!({"userId": "user:bob", "likes": [{"trackId": "track:z"}]})
            .to_string()
            .into_bytes(),
        Some("key-1"),
    )
    .expect("answer");
    assert_eq!((r.status, r.replayed), (200, true), "{r:?}");
    assert_eq!(r.body["version"], 12, "{r:?}");
    assert_eq!(liked(&server, "user:bob"), json!({"trackIds": ["track:e", "track:d"]}));
}

#[test]
fn metrics_report_requests_commits_flows_syncs_sources_and_the_store_behind_the_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lastfm = FakeLastfm::start("k-metrics");
    lastfm.scrobble("rj", [scrobble(1, 1_700_000_000)]);
    // No rate-limit wait inside a read: the Last.fm read below stops at its first error 29.
    let server = Server::start(
        dir.path(),
        &[
            "--token",
            "T",
            "--lastfm-api-base",
            &lastfm.api_base(),
            "--rate-limit-wait",
            "0s",
        ],
    );
    let scrape = |token: Option<&str>| {
        let mut r = server.client.get(format!("{}/metrics", server.base));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let r = r.send().expect("metrics");
        let content_type = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        (r.status().as_u16(), content_type, r.text().unwrap_or_default())
    };
    assert_eq!(scrape(None).0, 401, "behind the token");
    assert_eq!(scrape(Some("wrong")).0, 401);
    let post = |path: &str, body: Value| {
        server
            .client
            .post(format!("{}{path}", server.base))
            .bearer_auth("T")
            .json(&body)
            .send()
            .expect("answer")
            .status()
            .as_u16()
    };
    assert_eq!(post("/api/LibraryCache/ingest", json!({"userId": "u"})), 200);
    let (status, content_type, before) = scrape(Some("T"));
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    for family in [
        "librarycache_http_requests_total",
        "librarycache_http_request_duration_seconds_bucket",
        "librarycache_store_commit_seconds_count",
        "librarycache_store_flush_seconds_count",
        "librarycache_flows_total",
        "librarycache_actions_total",
        "librarycache_source_reads",
        "librarycache_source_retry_at_seconds",
        "librarycache_store_size_bytes",
    ] {
        assert!(
            before.lines().any(|l| l.starts_with(family)),
            "{family} missing:\n{before}"
        );
    }
    assert!(metric(&before, "librarycache_store_size_bytes", &[]) > 0.0);

    // A request answered by syncs moves the request, action, firing, flow and commit figures.
    // Three likes of three tracks: each changes state, so each flow waits for a flush.
    for i in 0..3 {
        assert_eq!(
            post("/api/like", json!({"userId": "u", "trackId": format!("t:{i}")})),
            200
        );
    }
    assert_eq!(post("/api/LibraryCache/sync", json!({"userId": "nobody"})), 404);
    let (_, _, after) = scrape(Some("T"));
    let moved = |name: &str, labels: &[(&str, &str)], by: f64| {
        let (b, a) = (metric(&before, name, labels), metric(&after, name, labels));
        assert!(a - b >= by, "{name}{labels:?}: {b} -> {a}\n{after}");
    };
    moved(
        "librarycache_http_requests_total",
        &[("route", "/api/like"), ("status", "200"), ("method", "POST")],
        3.0,
    );
    moved(
        "librarycache_http_request_duration_seconds_count",
        &[("route", "/api/like")],
        3.0,
    );
    moved(
        "librarycache_http_requests_total",
        &[("route", "/api/LibraryCache/sync"), ("status", "404")],
        1.0,
    );
    moved(
        "librarycache_actions_total",
        &[("concept", "LibraryCache"), ("action", "merge"), ("outcome", "ok")],
        3.0,
    );
    moved(
        "librarycache_actions_total",
        &[("concept", "LibraryCache"), ("action", "sync"), ("outcome", "refused")],
        1.0,
    );
    moved("librarycache_sync_firings_total", &[("sync", "LikeTrack")], 3.0);
    moved("librarycache_flows_total", &[], 4.0);
    moved("librarycache_store_commit_seconds_count", &[], 9.0);
    moved("librarycache_store_flush_seconds_count", &[], 3.0);

    // A source's reads: one rate-limited read shows with its retryAt.
    lastfm.error("user.getrecenttracks", 29, 1);
    let connect = server
        .client
        .post(format!("{}/api/LastfmSource/connect", server.base))
        .bearer_auth("T")
        .json(&json!({"userId": "u", "username": "rj", "apiKey": "k-metrics"}))
        .send()
        .expect("connect");
    assert_eq!(connect.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(60);
    let failed = loop {
        let f: Value = server
            .client
            .post(format!("{}/api/LastfmSource/_getFetch", server.base))
            .bearer_auth("T")
            .json(&json!({"userId": "u"}))
            .send()
            .expect("fetch")
            .json()
            .expect("json");
        if f["phase"] == "failed" {
            break f;
        }
        assert!(Instant::now() < deadline, "{f}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(failed["code"], "RATE_LIMITED", "{failed}");
    let retry_at = chrono::DateTime::parse_from_rfc3339(failed["retryAt"].as_str().expect("retryAt")).expect("time");
    let (_, _, text) = scrape(Some("T"));
    let source = [("source", "LastfmSource")];
    assert_eq!(
        metric(&text, "librarycache_source_reads", &[source[0], ("state", "connected")]),
        1.0,
        "{text}"
    );
    assert_eq!(
        metric(&text, "librarycache_source_reads", &[source[0], ("state", "failed")]),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            "librarycache_source_reads",
            &[source[0], ("state", "rate_limited")]
        ),
        1.0
    );
    assert_eq!(
        metric(&text, "librarycache_source_reads", &[source[0], ("state", "running")]),
        0.0
    );
    assert_eq!(
        metric(&text, "librarycache_source_retry_at_seconds", &source) as i64,
        retry_at.timestamp()
    );
    assert_eq!(
        metric(
            &text,
            "librarycache_source_reads",
            &[("source", "SpotifySource"), ("state", "connected")]
        ),
        0.0
    );
    moved(
        "librarycache_actions_total",
        &[("concept", "LastfmSource"), ("action", "connect")],
        0.0,
    );
    assert!(
        metric(
            &text,
            "librarycache_actions_total",
            &[("concept", "LastfmSource"), ("action", "failed")]
        ) >= 1.0
    );
}
