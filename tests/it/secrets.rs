//! Issue 18, secrets, against the real `librarycache serve`: the sources' credentials are
//! sealed at rest (no store file holds them), reads still work and keep working across
//! restarts; a wrong key fails the sources' reads with a clear code and nothing else; `rotate-key`
//! seals every connection again so the old key is no longer needed (also after a rebuild); an
//! older store's plaintext credentials still work; the Last.fm API key, which travels in the URL,
//! appears in no message, record, log line or store file when the service is unreachable or
//! misbehaves; `--help` does not show `LIBRARYCACHE_STORE`'s value.

use crate::common;

use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use common::lastfm::{scrobble, FakeLastfm};
use common::server::Server;
use common::source_reads::Reads;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LASTFM_KEY: &str = "LFMKEY-5f3a9c1d7e20b4";
const SPOTIFY_ACCESS: &str = "SPOTIFY-ACCESS-9d8c7b6a";
const SPOTIFY_REFRESH: &str = "SPOTIFY-REFRESH-1a2b3c4d";
const SPOTIFY_CLIENT_SECRET: &str = "SPOTIFY-CSECRET-55aa66bb";
const PLEX_TOKEN: &str = "PLEXTOKEN-0f1e2d3c4b";

/// A loopback address nothing listens on.
fn closed_base() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let port = l.local_addr().expect("addr").port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

/// `serve` on `store` with `extra`, its log (RUST_LOG=info: every crate's lines) in `log`.
fn serve(store: &Path, extra: &[&str], env: &[(&str, &str)], log: &Path) -> Server {
    let spotify = closed_base();
    let mut command = Command::new(env!("CARGO_BIN_EXE_librarycache"));
    command
        .args(["serve", "--addr", "127.0.0.1:0", "--store"])
        .arg(store)
        .arg("--syncs")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("syncs"))
        .args(["--spotify-api-base", &spotify, "--spotify-accounts-base", &spotify])
        .args(extra)
        .env_remove("LIBRARYCACHE_TOKEN")
        .env_remove("LIBRARYCACHE_STORE")
        .env_remove("LIBRARYCACHE_SECRETS_KEY")
        .env_remove("LIBRARYCACHE_SECRETS_KEY_FILE")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(
            std::fs::File::options()
                .create(true)
                .append(true)
                .open(log)
                .expect("log"),
        );
    for (k, v) in env {
        command.env(k, v);
    }
    // The server binds port 0 and logs the address it got; earlier servers' lines are before
    // `from` in the log it appends to.
    let from = read(log).len();
    let mut child = command.spawn().expect("server starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = loop {
        let text = read(log);
        if let Some(addr) = text
            .get(from..)
            .unwrap_or_default()
            .lines()
            .find_map(common::server::listening_addr)
        {
            break addr;
        }
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("server exited ({status}) before it listened: {text}");
        }
        assert!(Instant::now() < deadline, "server did not start: {text}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let server = Server::at(child, format!("http://{addr}"));
    while !server.healthy() {
        assert!(Instant::now() < deadline, "server did not start: {}", read(log));
        std::thread::sleep(Duration::from_millis(20));
    }
    server
}

/// SIGTERM and wait: the store is flushed and closed.
fn stop(mut server: Server) {
    unsafe {
        libc::kill(server.child.id() as i32, libc::SIGTERM);
    }
    let _ = server.child.wait();
}

fn read(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_containing(&path, needle));
        } else if std::fs::read(&path)
            .unwrap_or_default()
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
        {
            found.push(path);
        }
    }
    found
}

fn lastfm<'a>(server: &'a Server, user: &'a str) -> Reads<'a> {
    Reads {
        server,
        concept: "LastfmSource",
        user,
    }
}

fn connect_lastfm(server: &Server, user: &str, username: &str) {
    lastfm(server, user).ok(
        "connect",
        json!({"userId": user, "username": username, "apiKey": LASTFM_KEY}),
    );
}

/// Connects all three sources (Spotify and Plex at addresses where nothing listens) and waits
/// for the Last.fm read.
fn connect_all(server: &Server) -> Value {
    connect_lastfm(server, "user:alice", "rj");
    let first = lastfm(server, "user:alice").wait(None);
    let spotify = server.post(
        "/api/SpotifySource/connect",
        &json!({"userId": "user:alice:spotify", "accessToken": SPOTIFY_ACCESS, "refreshToken": SPOTIFY_REFRESH,
                "clientId": "cid", "clientSecret": SPOTIFY_CLIENT_SECRET}),
    );
    assert_eq!(spotify.status, 200, "{spotify:?}");
    let plex = server.post(
        "/api/PlexSource/connect",
        &json!({"userId": "user:alice:plex", "baseUrl": closed_base(), "token": PLEX_TOKEN}),
    );
    assert_eq!(plex.status, 200, "{plex:?}");
    for concept in ["SpotifySource", "PlexSource"] {
        let user = if concept == "SpotifySource" {
            "user:alice:spotify"
        } else {
            "user:alice:plex"
        };
        Reads { server, concept, user }.wait(None);
    }
    first
}

#[test]
fn credentials_are_sealed_at_rest_and_only_the_right_key_reads_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, log) = (dir.path().join("store"), dir.path().join("serve.log"));
    let fm = FakeLastfm::start(LASTFM_KEY);
    fm.scrobble("rj", [scrobble(1, 1_700_000_000), scrobble(2, 1_700_000_300)]);
    let base = fm.api_base();
    let server = serve(&store, &["--lastfm-api-base", &base], &[], &log);
    let first = connect_all(&server);
    assert_eq!(first["phase"], "done", "the read used the key: {first}");
    stop(server);

    // The key was generated beside the store, readable by its owner only.
    let key_file = store.join("secrets.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).expect("key file").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    // No store file holds a credential: the events and the rows hold ciphertext.
    for secret in [
        LASTFM_KEY,
        SPOTIFY_ACCESS,
        SPOTIFY_REFRESH,
        SPOTIFY_CLIENT_SECRET,
        PLEX_TOKEN,
    ] {
        let found: Vec<_> = files_containing(&store, secret)
            .into_iter()
            .filter(|p| p != &key_file)
            .collect();
        assert!(found.is_empty(), "{secret} in {found:?}");
    }
    assert!(!read(&log).contains(LASTFM_KEY), "the log holds the API key");

    // A restart with the same key reads again.
    let server = serve(&store, &["--lastfm-api-base", &base], &[], &log);
    let again = lastfm(&server, "user:alice").again(&first);
    assert_eq!(again["phase"], "done", "{again}");
    stop(server);

    // Another key: the sources' reads fail with a clear code; everything else works.
    let other = dir.path().join("other.key");
    std::fs::write(&other, format!("{}\n", "ab".repeat(32))).expect("key");
    let server = serve(
        &store,
        &[
            "--lastfm-api-base",
            &base,
            "--secrets-key-file",
            other.to_str().expect("path"),
        ],
        &[],
        &log,
    );
    let failed = lastfm(&server, "user:alice").again(&again);
    assert_eq!(failed["phase"], "failed", "{failed}");
    assert_eq!(failed["code"], "SECRETS_KEY_MISMATCH", "{failed}");
    let error = failed["error"].as_str().expect("error");
    assert!(
        error.contains("--secrets-key-file") && error.contains("connect again"),
        "{error}"
    );
    assert_eq!(failed["needsReauth"], false, "the right key makes it work again");
    assert_eq!(
        server.post("/api/LibraryCache/ingest", &json!({"userId": "u"})).status,
        200
    );
    assert!(server.healthy());
    // Connecting again under this key works.
    fm.clear_log();
    connect_lastfm(&server, "user:alice", "rj");
    let reconnected = lastfm(&server, "user:alice").wait(Some(&failed));
    assert_eq!(reconnected["phase"], "done", "{reconnected}");
    stop(server);

    // The key given in the environment is used the same way.
    let server = serve(
        &store,
        &["--lastfm-api-base", &base],
        &[("LIBRARYCACHE_SECRETS_KEY", &"ab".repeat(32))],
        &log,
    );
    let env_read = lastfm(&server, "user:alice").again(&reconnected);
    assert_eq!(env_read["phase"], "done", "{env_read}");
    stop(server);

    // A key file that cannot be read stops the start, naming the file.
    std::fs::write(dir.path().join("bad.key"), "hunter2").expect("write");
    for (file, said) in [("bad.key", "64 hexadecimal digits"), ("missing.key", "cannot read")] {
        let out = Command::new(env!("CARGO_BIN_EXE_librarycache"))
            .args(["serve", "--addr", "127.0.0.1:0", "--store"])
            .arg(&store)
            .arg("--secrets-key-file")
            .arg(dir.path().join(file))
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(stderr.contains(file) && stderr.contains(said), "{stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }
}

#[test]
fn rotate_key_seals_every_connection_again_and_the_old_key_is_no_longer_needed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, log) = (dir.path().join("store"), dir.path().join("serve.log"));
    let fm = FakeLastfm::start(LASTFM_KEY);
    fm.scrobble("rj", [scrobble(1, 1_700_000_000)]);
    let base = fm.api_base();
    let server = serve(&store, &["--lastfm-api-base", &base], &[], &log);
    let first = connect_all(&server);
    stop(server);
    let key_file = store.join("secrets.key");
    let old = dir.path().join("old.key");
    std::fs::copy(&key_file, &old).expect("keep the old key");

    let rotate = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_librarycache"))
            .arg("rotate-key")
            .arg("--store")
            .arg(&store)
            .args(args)
            .env_remove("LIBRARYCACHE_SECRETS_KEY")
            .env_remove("LIBRARYCACHE_SECRETS_KEY_FILE")
            .output()
            .expect("runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, said) = rotate(&[]);
    assert!(ok, "{said}");
    assert!(said.contains("3 connection(s) sealed again, 0 already were"), "{said}");
    assert_ne!(read(&key_file), read(&old), "a new key is in the key file");
    assert!(!store.join("secrets.key.next").exists());

    // The new key reads every source; the old one no longer does.
    let server = serve(&store, &["--lastfm-api-base", &base], &[], &log);
    let after = lastfm(&server, "user:alice").again(&first);
    assert_eq!(after["phase"], "done", "{after}");
    stop(server);
    let server = serve(
        &store,
        &[
            "--lastfm-api-base",
            &base,
            "--secrets-key-file",
            old.to_str().expect("path"),
        ],
        &[],
        &log,
    );
    let refused = lastfm(&server, "user:alice").again(&after);
    assert_eq!(refused["code"], "SECRETS_KEY_MISMATCH", "{refused}");
    stop(server);

    // A rebuild replays the old ciphertext and then the resealed one: still the new key's.
    let out = Command::new(env!("CARGO_BIN_EXE_librarycache"))
        .arg("rebuild")
        .arg("--store")
        .arg(&store)
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let server = serve(&store, &["--lastfm-api-base", &base], &[], &log);
    let rebuilt = lastfm(&server, "user:alice").again(&refused);
    assert_eq!(rebuilt["phase"], "done", "{rebuilt}");
    stop(server);

    // A run cut short after the new key was written finishes with that key; a new key file
    // given explicitly leaves the old file alone.
    let next = dir.path().join("next.key");
    let (ok, said) = rotate(&["--new-key-file", next.to_str().expect("path")]);
    assert!(ok, "{said}");
    assert!(said.contains("--secrets-key-file"), "{said}");
    let (ok, said) = rotate(&[
        "--secrets-key-file",
        next.to_str().expect("path"),
        "--new-key-file",
        next.to_str().expect("path"),
    ]);
    assert!(!ok && said.contains("is the current key"), "{said}");
    let (ok, said) = rotate(&[
        "--secrets-key-file",
        key_file.to_str().expect("path"),
        "--new-key-file",
        next.to_str().expect("path"),
    ]);
    assert!(ok, "{said}");
    assert!(said.contains("0 connection(s) sealed again, 3 already were"), "{said}");
    assert!(!read(&log).contains(LASTFM_KEY));
}

#[test]
fn an_older_stores_plaintext_credentials_still_work_and_rotate_key_seals_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, log) = (dir.path().join("store"), dir.path().join("serve.log"));
    std::fs::create_dir_all(&store).expect("dir");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-v1");
    for name in ["conf", "db"] {
        std::fs::copy(fixture.join(name), store.join(name)).expect("copy the fixture");
    }
    // The fixture's Last.fm connection holds the key `lfm-secret` in plain text.
    let fm = FakeLastfm::start("lfm-secret");
    fm.scrobble("rj", [scrobble(1, 1_700_000_000)]);
    let base = fm.api_base();
    let server = serve(&store, &["--lastfm-api-base", &base], &[], &log);
    let reads = lastfm(&server, "user:alice");
    let before = reads.get_fetch();
    // The overdue scheduled refresh may have started a read already, before `before` or after it:
    // then `fetch` starts none, and the read to wait for is that one.
    reads.ok("fetch", json!({"userId": "user:alice"}));
    let ended = before["phase"] == "done" || before["phase"] == "failed" || before["fetchId"].is_null();
    let read = reads.wait(ended.then_some(&before));
    assert_eq!(read["phase"], "done", "the plain key was used as it is: {read}");
    stop(server);
    let out = Command::new(env!("CARGO_BIN_EXE_librarycache"))
        .arg("rotate-key")
        .arg("--store")
        .arg(&store)
        .output()
        .expect("runs");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("3 connection(s) sealed again"), "{said}");
    let server = serve(&store, &["--lastfm-api-base", &base], &[], &log);
    let reads = lastfm(&server, "user:alice");
    reads.ok("fetch", json!({"userId": "user:alice"}));
    let after = reads.wait(Some(&read));
    assert_eq!(after["phase"], "done", "{after}");
}

/// A Last.fm that misbehaves, by user name: `echo` answers 500 with the request's URL in its
/// body, `garbage` 200 with a body that is not JSON (and quotes the URL), `quote` a Last.fm
/// error whose message quotes the key.
fn misbehaving() -> common::fake_http::Served {
    async fn answer(State(()): State<()>, uri: Uri, Query(q): Query<HashMap<String, String>>) -> Response {
        let key = q.get("api_key").cloned().unwrap_or_default();
        match q.get("user").map(String::as_str) {
            Some("echo") => (StatusCode::INTERNAL_SERVER_ERROR, format!("upstream broke on {uri}")).into_response(),
            Some("garbage") => (StatusCode::OK, format!("<html>{uri}</html>")).into_response(),
            _ => (
                StatusCode::FORBIDDEN,
                axum::Json(
                    json!({"error": 10, "message": format!("Invalid API key {key} - You must be granted a valid key")}),
                ),
            )
                .into_response(),
        }
    }
    common::fake_http::serve(
        Router::new()
            .route("/2.0/", get(answer))
            .route("/2.0", get(answer))
            .with_state(()),
    )
}

/// The Last.fm API key appears in no answer, record, log line or store file, whatever the
/// service does.
#[test]
fn a_query_secret_never_reaches_a_message_a_record_a_log_line_or_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, log) = (dir.path().join("store"), dir.path().join("serve.log"));
    let check = |server: &Server, user: &str, f: &Value, code: &str| {
        assert_eq!(
            (f["phase"].as_str(), f["code"].as_str()),
            (Some("failed"), Some(code)),
            "{user}: {f}"
        );
        let shown = f.to_string();
        assert!(!shown.contains(LASTFM_KEY), "{user}: _getFetch shows the key: {shown}");
        let flow = lastfm(server, user).flow(f).to_string();
        assert!(flow.contains("\"failed\""), "{flow}");
        assert!(!flow.contains(LASTFM_KEY), "{user}: the flow shows the key: {flow}");
    };

    // Nothing listens at the address.
    let unreachable = format!("{}/2.0", closed_base());
    let server = serve(&store, &["--lastfm-api-base", &unreachable], &[], &log);
    connect_lastfm(&server, "user:a", "rj");
    let f = lastfm(&server, "user:a").wait(None);
    check(&server, "user:a", &f, "UPSTREAM_UNREACHABLE");
    assert!(
        f["error"].as_str().is_some_and(|e| e.contains("could not be reached")),
        "{f}"
    );
    stop(server);

    // A server that misbehaves in three ways.
    let bad = misbehaving();
    let base = format!("{}/2.0", bad.base);
    let server = serve(&store, &["--lastfm-api-base", &base], &[], &log);
    for (user, name, code) in [
        ("user:echo", "echo", "UPSTREAM_ERROR"),
        ("user:garbage", "garbage", "UPSTREAM_UNEXPECTED"),
        ("user:quote", "quote", "INVALID_API_KEY"),
    ] {
        connect_lastfm(&server, user, name);
        let f = lastfm(&server, user).wait(None);
        check(&server, user, &f, code);
        if name == "echo" {
            let error = f["error"].as_str().unwrap_or_default();
            assert!(
                error.contains("api_key=***"),
                "the rest of the echo stays readable: {error}"
            );
        }
    }
    stop(server);
    let logged = read(&log);
    assert!(logged.contains("a read failed"), "the failures were logged: {logged}");
    assert!(!logged.contains(LASTFM_KEY), "the log holds the key:\n{logged}");
    assert!(
        files_containing(&store, LASTFM_KEY).is_empty(),
        "a store file holds the key"
    );
}

#[test]
fn help_does_not_show_the_stores_url() {
    for command in ["serve", "stats", "rotate-key"] {
        let out = Command::new(env!("CARGO_BIN_EXE_librarycache"))
            .args([command, "--help"])
            .env("LIBRARYCACHE_STORE", "postgres://lc:hunter2@db/lc?password=hunter3")
            .env("LIBRARYCACHE_SECRETS_KEY", "cd".repeat(32))
            .output()
            .expect("runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("LIBRARYCACHE_STORE"), "{command}: {text}");
        assert!(!text.contains("hunter"), "{command} --help shows the URL: {text}");
        assert!(!text.contains(&"cd".repeat(32)), "{command}: {text}");
    }
}
