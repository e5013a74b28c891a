//! LastfmSource end to end: the real `librarycache serve` reads from a local server that speaks
//! the Last.fm API 2.0 (tests/it/common/lastfm.rs), and every outcome is checked through
//! LibraryCache's and LastfmSource's queries over HTTP — paging, the now-playing item dropped, a
//! second read asking only from the last play, scrobbles arriving during a read (shifting
//! pages), loved tracks merged as likes beside another source's, and Last.fm's errors.

use crate::common;

use common::lastfm::{scrobble, FakeLastfm, Scrobble};
use common::server::Server;
use common::source_reads::Reads;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};

const USER: &str = "user:alice";
const KEY: &str = "lastfm-key-1";
/// The first scrobble's time; scrobble n is n × 5 minutes later.
const T0: i64 = 1_700_000_000;

fn start(data: &std::path::Path, lastfm: &FakeLastfm) -> Server {
    Server::start(data, &["--lastfm-api-base", &lastfm.api_base()])
}

fn reads<'a>(server: &'a Server, user: &'a str) -> Reads<'a> {
    Reads {
        server,
        concept: "LastfmSource",
        user,
    }
}

fn connect(server: &Server, user: &str, username: &str, key: &str, loved: bool) -> Value {
    reads(server, user).ok(
        "connect",
        json!({"userId": user, "username": username, "apiKey": key, "lovedTracks": loved}),
    )
}

fn history(n: u32) -> Vec<Scrobble> {
    (0..n).map(|i| scrobble(i, T0 + i as i64 * 300)).collect()
}

fn query(server: &Server, name: &str, body: Value) -> Value {
    let r = server.post(&format!("/api/LibraryCache/{name}"), &body);
    assert_eq!(r.status, 200, "{name} {body} answered {} {}", r.status, r.body);
    r.body
}

/// The user's cached plays as (trackId, playedAt).
fn plays(server: &Server, user: &str) -> Vec<(String, String)> {
    query(server, "_getPlays", json!({"userId": user, "limit": 10_000}))["plays"]
        .as_array()
        .expect("plays")
        .iter()
        .map(|p| {
            (
                p["trackId"].as_str().unwrap_or_default().to_string(),
                p["playedAt"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The recent-tracks requests served.
fn recent_requests(lastfm: &FakeLastfm) -> Vec<HashMap<String, String>> {
    lastfm
        .requests()
        .into_iter()
        .filter(|r| r.get("method").map(String::as_str) == Some("user.getrecenttracks"))
        .collect()
}

fn the_id(s: &Scrobble) -> String {
    if s.mbid.is_empty() {
        format!("lastfm:track:{}:{}", s.artist.to_lowercase(), s.title.to_lowercase())
    } else {
        format!("mbid:{}", s.mbid)
    }
}

#[test]
fn a_first_read_pages_the_whole_history_and_drops_the_now_playing_item() {
    let lastfm = FakeLastfm::start(KEY);
    lastfm.scrobble("rj", history(450));
    lastfm.now_playing("rj", Some(scrobble(999, 0)));
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path(), &lastfm);
    connect(&server, USER, "rj", KEY, false);
    let f = reads(&server, USER).wait(None);
    assert_eq!(f["phase"], "done", "{f}");
    assert_eq!(
        (f["complete"].clone(), f["counts"]["plays"].clone()),
        (json!(false), json!(450))
    );

    let cached = plays(&server, USER);
    assert_eq!(cached.len(), 450);
    assert!(
        !cached.iter().any(|(id, _)| id == &the_id(&scrobble(999, 0))),
        "the now-playing item is not a play"
    );
    assert!(cached.contains(&(the_id(&scrobble(7, 0)), "2023-11-14T22:48:20Z".into())));
    let requests = recent_requests(&lastfm);
    let pages: Vec<&str> = requests.iter().map(|r| r["page"].as_str()).collect();
    assert_eq!(pages, ["1", "2", "3"]);
    let to = &requests[0]["to"];
    assert!(
        requests
            .iter()
            .all(|r| r["limit"] == "200" && &r["to"] == to && !r.contains_key("from")),
        "{requests:?}"
    );
    assert!(
        lastfm.requests().iter().all(|r| r["method"] != "user.getlovedtracks"),
        "loved tracks are read only when asked for"
    );
    let with_mbid = query(&server, "_getTrack", json!({"trackId": the_id(&scrobble(4, 0))}));
    assert_eq!(
        with_mbid,
        json!({"id": "mbid:00000000-0000-4000-8000-000000000004", "title": "Song 4", "artist": "Artist 1",
               "album": "Album 4", "url": "https://www.last.fm/music/Artist+1/_/Song+4",
               "mbid": "00000000-0000-4000-8000-000000000004"})
    );
    let derived = query(&server, "_getTrack", json!({"trackId": "lastfm:track:artist 2:song 5"}));
    assert_eq!(derived["title"], "Song 5");
    // The API key is kept from answers and records.
    let conn = reads(&server, USER).ok("_getConnection", json!({"userId": USER}));
    assert_eq!(conn["username"], "rj");
    assert!(conn.get("apiKey").is_none(), "{conn}");
    let flow = reads(&server, USER).flow(&f).to_string();
    assert!(!flow.contains(KEY) && flow.contains("[redacted]"), "{flow}");
}

#[test]
fn a_second_read_asks_from_the_last_play_and_adds_only_new_plays() {
    let lastfm = FakeLastfm::start(KEY);
    lastfm.scrobble("rj", history(10));
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path(), &lastfm);
    connect(&server, USER, "rj", KEY, false);
    let r = reads(&server, USER);
    let first = r.wait(None);
    assert_eq!(first["counts"]["plays"], 10, "{first}");
    let last = T0 + 9 * 300;
    // Three later plays, and one scrobbled late at the very second of the last known play.
    lastfm.scrobble(
        "rj",
        [
            scrobble(10, last + 200),
            scrobble(11, last + 400),
            scrobble(12, last + 600),
            scrobble(20, last),
        ],
    );
    lastfm.clear_log();
    let second = r.again(&first);
    assert_eq!(second["phase"], "done", "{second}");
    assert_eq!(second["mode"], "incremental");
    assert_eq!(second["counts"]["plays"], 4, "{second}");
    let requests = recent_requests(&lastfm);
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0]["from"], last.to_string());
    assert_eq!(plays(&server, USER).len(), 14);

    lastfm.clear_log();
    let third = r.again(&second);
    assert_eq!(third["counts"]["plays"], 0, "{third}");
    assert_eq!(recent_requests(&lastfm)[0]["from"], (last + 600).to_string());
    assert_eq!(plays(&server, USER).len(), 14);
}

#[test]
fn scrobbles_arriving_during_a_read_neither_shift_nor_duplicate_anything() {
    let lastfm = FakeLastfm::start(KEY);
    lastfm.scrobble("rj", history(450));
    lastfm.now_playing("rj", Some(scrobble(998, 0)));
    lastfm.arriving("rj", vec![scrobble(500, 0), scrobble(501, 0), scrobble(502, 0)]);
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path(), &lastfm);
    connect(&server, USER, "rj", KEY, false);
    let r = reads(&server, USER);
    let first = r.wait(None);
    assert_eq!(
        lastfm.scrobbles("rj").len(),
        453,
        "three scrobbles arrived while it paged"
    );
    assert_eq!(first["counts"]["plays"], 450, "{first}");
    let cached: HashSet<(String, String)> = plays(&server, USER).into_iter().collect();
    let expected: HashSet<String> = history(450).iter().map(the_id).collect();
    assert_eq!(cached.len(), 450);
    assert_eq!(
        cached.iter().map(|(id, _)| id.clone()).collect::<HashSet<_>>(),
        expected
    );
    let requests = recent_requests(&lastfm);
    assert_eq!(requests.len(), 3, "{requests:?}");
    let to = &requests[0]["to"];
    assert!(requests.iter().all(|q| &q["to"] == to), "`to` is pinned: {requests:?}");

    let second = r.again(&first);
    assert_eq!(second["counts"]["plays"], 3, "{second}");
    let cached = plays(&server, USER);
    assert_eq!(cached.len(), 453);
    for n in [500, 501, 502] {
        assert!(cached.iter().any(|(id, _)| id == &the_id(&scrobble(n, 0))), "{n}");
    }
}

#[test]
fn loved_tracks_are_merged_as_likes_beside_another_sources_likes() {
    let lastfm = FakeLastfm::start(KEY);
    lastfm.scrobble("rj", history(2));
    lastfm.love("rj", scrobble(2, T0 + 100));
    lastfm.love("rj", scrobble(3, T0 + 200));
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path(), &lastfm);
    // The library another source filled.
    query(
        &server,
        "ingest",
        json!({"userId": USER, "tracks": [{"id": "spotify:track:x", "title": "X"}],
               "likes": [{"trackId": "spotify:track:x", "likedAt": "2020-01-01T00:00:00Z"}],
               "plays": [{"trackId": "spotify:track:x", "playedAt": "2020-01-02T00:00:00Z"}]}),
    );
    connect(&server, USER, "rj", KEY, true);
    let f = reads(&server, USER).wait(None);
    assert_eq!(f["phase"], "done", "{f}");
    assert_eq!(
        (f["counts"]["likes"].clone(), f["counts"]["plays"].clone()),
        (json!(2), json!(2))
    );
    let liked = query(&server, "_getLiked", json!({"userId": USER}))["trackIds"].clone();
    assert_eq!(
        liked,
        json!([the_id(&scrobble(3, 0)), the_id(&scrobble(2, 0)), "spotify:track:x"]),
        "loved tracks are added by the time they were loved; the other source's like stays"
    );
    let likes = query(&server, "_getLikes", json!({"userId": USER}))["likes"].clone();
    assert_eq!(likes[0]["likedAt"], "2023-11-14T22:16:40Z");
    assert_eq!(plays(&server, USER).len(), 3, "plays only grow");
    let flow = reads(&server, USER).flow(&f);
    let merged = flow["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .any(|a| a["concept"] == "LibraryCache" && a["action"] == "merge");
    assert!(merged, "a read into a cached library is a merge: {flow}");
}

#[test]
fn last_fm_errors_fail_the_read_with_clear_codes_and_fetch_honours_them() {
    let lastfm = FakeLastfm::start(KEY);
    lastfm.scrobble("rj", history(3));
    lastfm.error("user.getrecenttracks", 29, 1);
    let dir = tempfile::tempdir().expect("tempdir");
    // No rate-limit wait is waited out inside a read here, so error 29 ends it (the wait inside
    // the read, and the resumption at retryAt, are tests/it/rate_limits.rs's, on a manual clock).
    let server = Server::start(
        dir.path(),
        &["--lastfm-api-base", &lastfm.api_base(), "--rate-limit-wait", "0s"],
    );

    connect(&server, USER, "rj", KEY, false);
    let f = reads(&server, USER).wait(None);
    assert_eq!(
        (f["phase"].as_str(), f["code"].as_str()),
        (Some("failed"), Some("RATE_LIMITED")),
        "{f}"
    );
    let retry_at = f["retryAt"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
    assert!(retry_at.is_some_and(|t| t > common::now()), "{f}");
    let refused = server.post("/api/LastfmSource/fetch", &json!({"userId": USER}));
    assert_eq!(
        (refused.status, refused.body["code"].clone()),
        (429, json!("RATE_LIMITED"))
    );

    let bob = "user:bob";
    connect(&server, bob, "rj", "a-wrong-key", false);
    let f = reads(&server, bob).wait(None);
    assert_eq!(
        (f["code"].as_str(), f["needsReauth"].as_bool()),
        (Some("INVALID_API_KEY"), Some(true)),
        "{f}"
    );
    let refused = server.post("/api/LastfmSource/fetch", &json!({"userId": bob}));
    assert_eq!(
        (refused.status, refused.body["code"].clone()),
        (409, json!("NEEDS_REAUTH"))
    );

    let carol = "user:carol";
    connect(&server, carol, "nobody-by-that-name", KEY, false);
    let f = reads(&server, carol).wait(None);
    assert_eq!(f["code"], "UNKNOWN_USER", "{f}");
    assert!(f["error"].as_str().is_some_and(|e| e.contains("User not found")), "{f}");
    for user in [USER, bob, carol] {
        let status = server.post("/api/LibraryCache/_getStatus", &json!({"userId": user}));
        assert_eq!(status.status, 404, "a failed read caches nothing for {user}");
    }
}
