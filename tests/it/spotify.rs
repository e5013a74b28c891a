//! SpotifySource end to end: the real `librarycache serve` reads from a local server that speaks
//! the Spotify Web API (tests/it/common/spotify.rs), and every outcome is checked through
//! LibraryCache's and SpotifySource's queries over HTTP — full and incremental reads, a read
//! interrupted by a restart, rate limits, token refresh and a revoked refresh token.

use crate::common;
use crate::common::fake_http::Scripted;

use common::server::{Reply, Server};
use common::spotify::{episode, local_file, track, FakePlaylist, FakeSpotify, Liked};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const USER: &str = "user:alice";

fn start(data: &std::path::Path, spotify: &FakeSpotify) -> Server {
    start_with(data, spotify, &[])
}

fn start_with(data: &std::path::Path, spotify: &FakeSpotify, extra: &[&str]) -> Server {
    let (api, accounts) = (spotify.api_base(), spotify.accounts_base());
    let mut args = vec!["--spotify-api-base", &api, "--spotify-accounts-base", &accounts];
    args.extend_from_slice(extra);
    Server::start(data, &args)
}

fn ok(server: &Server, path: &str, body: Value) -> Value {
    let r = server.post(path, &body);
    assert_eq!(r.status, 200, "{path} {body} answered {} {}", r.status, r.body);
    r.body
}

fn connect(server: &Server) -> Reply {
    server.post(
        "/api/SpotifySource/connect",
        &json!({"userId": USER, "accessToken": "access-0", "refreshToken": "refresh-0",
                "clientId": "client", "clientSecret": "secret"}),
    )
}

/// Waits until the user's read `fetch_id` (or any, when None) has ended; returns `_getFetch`.
fn wait_read(server: &Server, fetch_id: Option<&str>) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let f = ok(server, "/api/SpotifySource/_getFetch", json!({"userId": USER}));
        let ours = fetch_id.map_or(f["fetchId"].is_string(), |id| f["fetchId"] == id);
        if ours && (f["phase"] == "done" || f["phase"] == "failed") {
            // The end of the read is committed before the syncs it sets off run: wait for the
            // flow to show LibraryCache's action (or its refusal) too.
            wait_cascade(server, &f);
            return f;
        }
        assert!(Instant::now() < deadline, "the read did not end: {f}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_cascade(server: &Server, f: &Value) {
    if f["phase"] != "done" {
        return;
    }
    let flow = f["flow"].as_str().expect("flow");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let r = server
            .client
            .get(format!("{}/api/flows/{flow}", server.base))
            .send()
            .expect("flow");
        let report: Value = r.json().unwrap_or(Value::Null);
        let confirmed = report["actions"].as_array().is_some_and(|a| {
            a.iter()
                .any(|x| x["concept"] == "SpotifySource" && x["action"] == "confirm")
        });
        if confirmed {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the read's flow never confirmed it: {f}");
}

fn fetch(server: &Server, body: Value) -> Value {
    ok(server, "/api/SpotifySource/fetch", body)
}

fn liked(server: &Server) -> Vec<String> {
    let v = ok(server, "/api/LibraryCache/_getLiked", json!({"userId": USER}));
    serde_json::from_value(v["trackIds"].clone()).expect("trackIds")
}

/// A library: 120 liked songs (newest first) and one item whose track is gone, three
/// playlists (one with repeats, a local file and an episode; one Spotify forbids; one answered
/// with the older `track` field), two plays heard twice.
fn seed(spotify: &FakeSpotify) {
    spotify.library(|l| {
        for i in (0..120).rev() {
            l.liked.push(Liked {
                track: Some(track(&format!("t{i:03}"))),
                added_at: format!("2025-01-01T{:02}:{:02}:00Z", i / 60, i % 60),
            });
        }
        l.liked.insert(
            60,
            Liked {
                track: None,
                added_at: "2025-01-01T00:59:30Z".into(),
            },
        );
        l.playlists.push(FakePlaylist {
            id: "mix".into(),
            name: "Mix".into(),
            owner: "alice".into(),
            items: vec![
                Some(track("t001")),
                Some(local_file("Demo")),
                Some(track("t001")),
                Some(episode("e1")),
                None,
            ],
            snapshot: 1,
            forbidden: false,
            legacy_field: false,
        });
        l.playlists.push(FakePlaylist {
            id: "theirs".into(),
            name: "Mix".into(),
            owner: "someone".into(),
            items: vec![Some(track("t002"))],
            snapshot: 1,
            forbidden: true,
            legacy_field: false,
        });
        l.playlists.push(FakePlaylist {
            id: "old".into(),
            name: "Old field".into(),
            owner: "alice".into(),
            items: (0..150).map(|i| Some(track(&format!("p{i:03}")))).collect(),
            snapshot: 7,
            forbidden: false,
            legacy_field: true,
        });
        l.played.push((track("t005"), "2025-02-01T10:00:00Z".into()));
        l.played.push((track("t005"), "2025-02-01T10:00:00Z".into()));
        l.played.push((track("t006"), "2025-02-01T09:00:00Z".into()));
    });
}

#[test]
fn a_full_read_caches_the_whole_library_as_spotify_lists_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spotify = FakeSpotify::start("access-0", "refresh-0");
    seed(&spotify);
    let server = start(dir.path(), &spotify);
    // Connecting starts the first read (syncs/sources.sync: SpotifySourceReadOnConnect).
    let connected = connect(&server);
    assert_eq!(connected.status, 200, "{}", connected.body);
    let f = wait_read(&server, None);
    assert_eq!(f["phase"], "done", "{f}");
    assert_eq!(f["complete"], true);
    assert_eq!(f["mode"], "full");
    assert_eq!(f["counts"]["likes"], 120);
    assert_eq!(
        f["counts"]["skipped"], 2,
        "the liked item and the playlist item without a track"
    );
    assert_eq!(f["counts"]["unreadable"], 1);
    assert_eq!(
        (f["current"].clone(), f["total"].clone()),
        (json!(2), json!(2)),
        "the last phase (plays) counted its items"
    );

    let ids = liked(&server);
    assert_eq!(ids.len(), 120);
    assert_eq!(ids[0], "spotify:track:t119", "newest like first");
    assert_eq!(ids[119], "spotify:track:t000");

    let mix = ok(
        &server,
        "/api/LibraryCache/_getPlaylist",
        json!({"playlistId": "spotify:playlist:mix"}),
    );
    assert_eq!(
        mix["entries"],
        json!([
            "spotify:track:t001",
            "spotify:local:Someone:Somewhere:Demo:180",
            "spotify:track:t001",
            "spotify:episode:e1"
        ]),
        "order, repeats, local files and episodes kept"
    );
    let old = ok(
        &server,
        "/api/LibraryCache/_getPlaylist",
        json!({"playlistId": "spotify:playlist:old"}),
    );
    assert_eq!(
        old["entries"].as_array().map(Vec::len),
        Some(150),
        "two pages of the older `track` field"
    );
    let theirs = ok(
        &server,
        "/api/LibraryCache/_getPlaylist",
        json!({"playlistId": "spotify:playlist:theirs"}),
    );
    assert_eq!(theirs["name"], "Mix", "a 403 playlist is kept with its metadata");
    assert_eq!(theirs["unreadable"], true);
    assert_eq!(theirs["entries"], json!([]));
    let by_name = ok(
        &server,
        "/api/LibraryCache/_resolvePlaylist",
        json!({"userId": USER, "nameOrUri": "Mix"}),
    );
    assert_eq!(
        by_name["playlists"].as_array().map(Vec::len),
        Some(2),
        "names are not unique"
    );

    let episode = ok(
        &server,
        "/api/LibraryCache/_getTrack",
        json!({"trackId": "spotify:episode:e1"}),
    );
    assert_eq!(episode["kind"], "episode");
    assert_eq!(episode["artist"], "A Show");
    let song = ok(
        &server,
        "/api/LibraryCache/_getTrack",
        json!({"trackId": "spotify:track:t003"}),
    );
    assert_eq!(song["title"], "Song t003");
    assert_eq!(song["year"], 2001);

    let plays = ok(&server, "/api/LibraryCache/_getPlays", json!({"userId": USER}));
    assert_eq!(
        plays["plays"].as_array().map(Vec::len),
        Some(2),
        "a repeated play counted once: {plays}"
    );

    // Secrets are never answered: not by a query, not in the flow's records.
    let conn = ok(&server, "/api/SpotifySource/_getConnection", json!({"userId": USER}));
    assert!(
        !conn.to_string().contains("access-0") && !conn.to_string().contains("secret"),
        "{conn}"
    );
    let report = server
        .client
        .get(format!("{}/api/flows/{}", server.base, connected.flow))
        .send()
        .expect("flow")
        .text()
        .expect("text");
    assert!(
        report.contains("[redacted]") && !report.contains("access-0"),
        "{report}"
    );
    // The first read pages liked songs 50 at a time: 121 items, 3 pages.
    assert_eq!(spotify.count("/v1/me/tracks"), 3);

    // `stats` (the store is one process's: stop the server first) shows the source's last read.
    let mut server = server;
    server.kill();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_librarycache"))
        .args(["stats", "--data"])
        .arg(dir.path())
        .args(["--user", USER])
        .env_remove("LIBRARYCACHE_STORE")
        .output()
        .expect("stats runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text} {}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("likes       120"), "{text}");
    let line = text.lines().find(|l| l.starts_with("spotify ")).unwrap_or_default();
    assert!(
        line.contains("last read") && line.contains("(complete), 120 likes, 2 plays"),
        "{text}"
    );
}

#[test]
fn an_incremental_read_pages_only_to_known_likes_and_a_removal_makes_it_full() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spotify = FakeSpotify::start("access-0", "refresh-0");
    seed(&spotify);
    let server = start(dir.path(), &spotify);
    connect(&server);
    wait_read(&server, None);

    // Two new likes and a changed playlist: the next read is incremental.
    spotify.library(|l| {
        for (i, id) in ["n1", "n2"].iter().enumerate() {
            l.liked.insert(
                0,
                Liked {
                    track: Some(track(id)),
                    added_at: format!("2025-03-01T00:00:0{i}Z"),
                },
            );
        }
        let mix = l.playlists.iter_mut().find(|p| p.id == "mix").expect("mix");
        mix.items.push(Some(track("n1")));
        mix.snapshot += 1;
    });
    spotify.clear_log();
    let started = fetch(&server, json!({"userId": USER}));
    assert_eq!(started["mode"], "incremental");
    let f = wait_read(&server, started["fetchId"].as_str());
    assert_eq!(f["phase"], "done", "{f}");
    assert_eq!(
        (f["complete"].clone(), f["mode"].clone()),
        (json!(false), json!("incremental"))
    );
    assert_eq!(f["counts"]["likes"], 2);
    assert_eq!(f["counts"]["playlists"], 1, "only the playlist whose snapshot changed");
    assert_eq!(
        spotify.count("/v1/me/tracks"),
        1,
        "one page, up to the first known like"
    );
    assert_eq!(
        spotify.count("/v1/playlists/old/items"),
        0,
        "an unchanged snapshot is not re-read"
    );
    let ids = liked(&server);
    assert_eq!(ids.len(), 122);
    assert_eq!(
        &ids[..3],
        ["spotify:track:n2", "spotify:track:n1", "spotify:track:t119"]
    );
    let mix = ok(
        &server,
        "/api/LibraryCache/_getPlaylist",
        json!({"playlistId": "spotify:playlist:mix"}),
    );
    assert_eq!(
        mix["entries"].as_array().and_then(|e| e.last()),
        Some(&json!("spotify:track:n1"))
    );

    // One like removed, one added: the total does not account for the new like, so the read
    // turns full and the removal reaches the cache.
    spotify.library(|l| {
        l.liked
            .retain(|x| x.track.as_ref().map(|t| t["id"].clone()) != Some(json!("t050")));
        l.liked.insert(
            0,
            Liked {
                track: Some(track("n3")),
                added_at: "2025-03-02T00:00:00Z".into(),
            },
        );
    });
    let started = fetch(&server, json!({"userId": USER}));
    assert_eq!(started["mode"], "incremental");
    let f = wait_read(&server, started["fetchId"].as_str());
    assert_eq!(f["complete"], true, "{f}");
    assert_eq!(
        f["mode"], "full",
        "asked incremental, read in full: _getFetch tells what the read did"
    );
    let ids = liked(&server);
    assert_eq!(ids.len(), 122);
    assert_eq!(ids[0], "spotify:track:n3");
    assert!(
        !ids.contains(&"spotify:track:t050".to_string()),
        "the removed like is gone"
    );

    // Nothing changed: an incremental read asks for one page and changes nothing.
    let before = ok(&server, "/api/LibraryCache/_getStatus", json!({"userId": USER}));
    let started = fetch(&server, json!({"userId": USER}));
    let f = wait_read(&server, started["fetchId"].as_str());
    assert_eq!(f["complete"], false);
    assert_eq!(f["counts"]["likes"], 0);
    let after = ok(&server, "/api/LibraryCache/_getStatus", json!({"userId": USER}));
    assert_eq!(before["likes"], after["likes"]);
}

#[test]
fn a_read_interrupted_by_a_restart_is_resumed_never_left_running() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spotify = FakeSpotify::start("access-0", "refresh-0");
    seed(&spotify);
    // The first liked page answers 503 three times: the read retries (0.5 s, 1 s, 2 s).
    spotify.fail("/v1/me/tracks", 503, 3);
    let mut server = start(dir.path(), &spotify);
    connect(&server);
    let deadline = Instant::now() + Duration::from_secs(30);
    while spotify.count("/v1/me/tracks") < 1 {
        assert!(Instant::now() < deadline, "the read never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    let running = ok(&server, "/api/SpotifySource/_getFetch", json!({"userId": USER}));
    assert_ne!(running["phase"], "done");
    server.kill();

    let server = start(dir.path(), &spotify);
    let f = wait_read(&server, running["fetchId"].as_str());
    assert_eq!(f["phase"], "done", "the same read, started over after the restart: {f}");
    assert_eq!(liked(&server).len(), 120);
}

#[test]
fn a_short_rate_limit_is_waited_out_and_a_long_one_stops_the_read_until_retry_at() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spotify = FakeSpotify::start("access-0", "refresh-0");
    seed(&spotify);
    // A 429 asking for a second: the read waits it out and goes on (tests/it/rate_limits.rs shows
    // the wait on a manual clock; here the real binary waits a real second).
    spotify.rate_limit("/v1/me/playlists", 1, 1);
    let server = start(dir.path(), &spotify);
    connect(&server);
    let f = wait_read(&server, None);
    assert_eq!(f["phase"], "done", "{f}");
    assert_eq!(spotify.count("/v1/me/playlists"), 2, "the throttled call, asked again");
    assert_eq!(liked(&server).len(), 120);

    // A 429 asking for an hour: longer than a read waits. The read stops with retryAt and
    // keeps what it read as a checkpoint; the cache is left as it was.
    spotify.rate_limit("/v1/me/playlists", 3600, 1);
    let started = fetch(&server, json!({"userId": USER, "mode": "full"}));
    let f = wait_read(&server, started["fetchId"].as_str());
    assert_eq!(f["phase"], "failed", "{f}");
    assert_eq!(f["code"], "RATE_LIMITED");
    let retry_at = f["retryAt"].as_str().expect("retryAt");
    let until = chrono::DateTime::parse_from_rfc3339(retry_at).expect("time");
    assert!(until > common::now() + chrono::Duration::minutes(59), "{f}");
    assert_eq!(
        f["checkpointPages"], 3,
        "the three pages of liked songs read before: {f}"
    );
    // Before retryAt, fetch is refused (429) and Spotify is not asked.
    let calls = spotify.requests().len();
    let early = server.post("/api/SpotifySource/fetch", &json!({"userId": USER}));
    assert_eq!(early.status, 429, "{}", early.body);
    assert_eq!(early.body["code"], "RATE_LIMITED");
    assert!(
        early.body["error"].as_str().is_some_and(|e| e.contains(retry_at)),
        "{}",
        early.body
    );
    assert_eq!(spotify.requests().len(), calls);
    assert_eq!(liked(&server).len(), 120);
}

#[test]
fn a_401_refreshes_the_token_once_and_a_revoked_refresh_token_asks_to_reconnect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spotify = FakeSpotify::start("access-0", "refresh-0");
    seed(&spotify);
    spotify.rotate_refresh_tokens();
    let server = start(dir.path(), &spotify);
    connect(&server);
    wait_read(&server, None);

    // The access token expires: the read refreshes it (and keeps the rotated refresh token).
    spotify.expire_access_token();
    let started = fetch(&server, json!({"userId": USER}));
    let f = wait_read(&server, started["fetchId"].as_str());
    assert_eq!(f["phase"], "done", "{f}");
    assert_eq!(spotify.tokens_issued(), 1);
    // Again: only the rotated refresh token works now, so this proves it was stored.
    spotify.expire_access_token();
    let started = fetch(&server, json!({"userId": USER}));
    let f = wait_read(&server, started["fetchId"].as_str());
    assert_eq!(f["phase"], "done", "{f}");
    assert_eq!(spotify.tokens_issued(), 2);

    // The refresh token is revoked: the read fails and the user must reconnect.
    spotify.expire_access_token();
    spotify.revoke_refresh_token();
    let started = fetch(&server, json!({"userId": USER}));
    let f = wait_read(&server, started["fetchId"].as_str());
    assert_eq!(f["phase"], "failed");
    assert_eq!(f["code"], "NEEDS_REAUTH");
    assert_eq!(f["needsReauth"], true);
    assert_eq!(
        liked(&server).len(),
        120,
        "a failed read leaves the cached library as it was"
    );
    let refused = server.post("/api/SpotifySource/fetch", &json!({"userId": USER}));
    assert_eq!(refused.status, 409);
    assert_eq!(refused.body["code"], "NEEDS_REAUTH");
    // Connecting again (with a token Spotify takes) clears it, and the read that starts works.
    let again = server.post(
        "/api/SpotifySource/connect",
        &json!({"userId": USER, "accessToken": spotify.access_token()}),
    );
    assert_eq!(again.status, 200);
    let f = wait_read(&server, None);
    assert_eq!(f["phase"], "done", "{f}");
    assert_eq!(f["needsReauth"], false);
}

#[test]
fn system_actions_cannot_be_called_over_http() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spotify = FakeSpotify::start("access-0", "refresh-0");
    let server = start(dir.path(), &spotify);
    let r = server.post(
        "/api/SpotifySource/fetched",
        &json!({"userId": USER, "fetchId": "x", "complete": true, "tracks": [], "likes": [], "plays": [], "playlists": [], "cursor": {"likesTotal": 0, "head": [], "playlists": {}}}),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.body["code"], "NOT_EXPOSED");
}

#[test]
fn the_scheduled_refresh_reads_stale_libraries_through_the_default_syncs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spotify = FakeSpotify::start("access-0", "refresh-0");
    seed(&spotify);
    // The job `refresh` ticks every second; a library older than that is stale.
    let server = start_with(dir.path(), &spotify, &["--refresh-every", "1s"]);
    connect(&server);
    wait_read(&server, None);
    let job = ok(&server, "/api/Scheduling/_getJob", json!({"job": "refresh"}));
    assert_eq!(job["every"], "1s");

    // Alice likes a song on Spotify; nobody asks for a read: the schedule does
    // (tick -> SpotifySourceRefreshStaleLibraries -> fetch -> fetched -> IncrementalRead -> merge -> confirm).
    spotify.library(|l| {
        l.liked.insert(
            0,
            Liked {
                track: Some(track("fresh")),
                added_at: "2025-06-01T00:00:00Z".into(),
            },
        )
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while liked(&server).first().map(String::as_str) != Some("spotify:track:fresh") {
        assert!(
            Instant::now() < deadline,
            "the scheduled refresh never brought the new like"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let f = ok(&server, "/api/SpotifySource/_getFetch", json!({"userId": USER}));
    assert_eq!(f["mode"], "incremental", "{f}");
    let job = ok(&server, "/api/Scheduling/_getJob", json!({"job": "refresh"}));
    assert!(job["lastTickAt"].is_string(), "{job}");
    // The read's flow starts with the tick that asked for it.
    let report: Value = server
        .client
        .get(format!(
            "{}/api/flows/{}",
            server.base,
            f["flow"].as_str().expect("flow")
        ))
        .send()
        .expect("flow")
        .json()
        .expect("json");
    let first = &report["actions"][0];
    assert_eq!(
        (first["concept"].clone(), first["action"].clone()),
        (json!("Scheduling"), json!("tick")),
        "{report}"
    );
}
