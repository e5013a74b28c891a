//! PlexSource end to end: the real `librarycache serve` reads from a local server that speaks
//! the Plex Media Server API (tests/it/common/plex.rs), and every outcome is checked through
//! LibraryCache's and PlexSource's queries over HTTP — paging with totals and progress, a large
//! library, ratings that change without `updatedAt` moving, ratingKeys that change, a server
//! swap, playlists with repeats and smart ones, the play history, and a refused token.

use crate::common;
use crate::common::fake_http::Scripted;

use common::plex::{track, FakePlaylist, FakePlex, Viewed};
use common::server::{Reply, Server};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const USER: &str = "user:alice:plex";
const TOKEN: &str = "plex-token-1";

fn start(data: &std::path::Path, extra: &[&str]) -> Server {
    Server::start(data, extra)
}

fn ok(server: &Server, path: &str, body: Value) -> Value {
    let r = server.post(path, &body);
    assert_eq!(r.status, 200, "{path} {body} answered {} {}", r.status, r.body);
    r.body
}

fn connect_with(server: &Server, plex: &FakePlex, token: &str, more: Value) -> Reply {
    let mut body = json!({"userId": USER, "baseUrl": plex.base, "token": token});
    if let (Some(b), Value::Object(more)) = (body.as_object_mut(), more) {
        b.extend(more);
    }
    server.post("/api/PlexSource/connect", &body)
}

fn connect(server: &Server, plex: &FakePlex) -> Reply {
    connect_with(server, plex, TOKEN, json!({}))
}

fn get_fetch(server: &Server) -> Value {
    ok(server, "/api/PlexSource/_getFetch", json!({"userId": USER}))
}

/// Waits until a read other than `after` has ended (and, when it is done, until its flow
/// confirmed it); returns `_getFetch`.
fn wait_read(server: &Server, after: Option<&Value>) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let f = get_fetch(server);
        let new = f["fetchId"].is_string() && after.map_or(true, |a| f["fetchId"] != a["fetchId"]);
        if new && (f["phase"] == "done" || f["phase"] == "failed") {
            if f["phase"] == "done" {
                wait_confirmed(server, &f);
            }
            return f;
        }
        assert!(Instant::now() < deadline, "the read did not end: {f}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn flow(server: &Server, f: &Value) -> Value {
    let id = f["flow"].as_str().expect("flow");
    let r = server
        .client
        .get(format!("{}/api/flows/{id}", server.base))
        .send()
        .expect("flow");
    r.json().unwrap_or(Value::Null)
}

fn actions<'a>(report: &'a Value, concept: &str, action: &str) -> Vec<&'a Value> {
    report["actions"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|x| x["concept"] == concept && x["action"] == action)
                .collect()
        })
        .unwrap_or_default()
}

fn wait_confirmed(server: &Server, f: &Value) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if !actions(&flow(server, f), "PlexSource", "confirm").is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the read's flow never confirmed it: {f}");
}

/// Asks for a read and waits for it to end.
fn read_again(server: &Server, last: &Value) -> Value {
    let started = ok(server, "/api/PlexSource/fetch", json!({"userId": USER}));
    assert_eq!(started["running"], false, "{started}");
    wait_read(server, Some(last))
}

fn liked(server: &Server) -> Vec<String> {
    let v = ok(server, "/api/LibraryCache/_getLiked", json!({"userId": USER}));
    serde_json::from_value(v["trackIds"].clone()).expect("trackIds")
}

fn status(server: &Server) -> Value {
    ok(server, "/api/LibraryCache/_getStatus", json!({"userId": USER}))
}

fn the_track(server: &Server, id: &str) -> Value {
    ok(server, "/api/LibraryCache/_getTrack", json!({"trackId": id}))
}

/// `n` tracks numbered from `from` in `section`.
fn tracks(plex: &FakePlex, section: &str, from: u64, n: u64) {
    plex.library(|l| l.tracks.extend((from..from + n).map(|i| track(i, section))));
}

/// Track `n` rated `rating` (0–10) at `at`, without its `updatedAt` moving.
fn rate(plex: &FakePlex, n: u64, rating: Option<f64>, at: i64) {
    plex.library(|l| {
        let t = l
            .tracks
            .iter_mut()
            .find(|t| t.guid == format!("plex://track/t{n}"))
            .expect("track");
        t.user_rating = rating;
        t.last_rated_at = rating.map(|_| at);
    });
}

#[test]
fn a_read_pages_every_music_section_with_totals_and_progress() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plex = FakePlex::start(TOKEN);
    plex.library(|l| l.sections.push(("5".into(), "artist".into(), "More music".into())));
    tracks(&plex, "1", 0, 250);
    tracks(&plex, "5", 250, 60);
    rate(&plex, 3, Some(8.0), 1_700_000_300);
    rate(&plex, 4, Some(10.0), 1_700_000_400);
    rate(&plex, 5, Some(6.0), 1_700_000_500);
    rate(&plex, 300, Some(9.0), 1_700_000_100);
    // A compilation's track: the album is "Various Artists", the track has its own artist.
    plex.library(|l| {
        let t = l.tracks.iter_mut().find(|t| t.rating_key == 1007).expect("track 7");
        t.artist = "Various Artists".into();
        t.original_title = Some("The Band".into());
    });
    let server = start(dir.path(), &["--plex-page-size", "100"]);
    let connected = connect(&server, &plex);
    assert_eq!(connected.status, 200, "{}", connected.body);
    let f = wait_read(&server, None);
    assert_eq!(f["phase"], "done", "{f}");
    assert_eq!((f["complete"].clone(), f["mode"].clone()), (json!(true), json!("full")));
    let compiled = the_track(&server, "plex://track/t7");
    assert_eq!(
        (compiled["artist"].clone(), compiled["albumArtist"].clone()),
        (json!("The Band"), json!("Various Artists")),
        "{compiled}"
    );
    assert_eq!(f["counts"]["tracks"], 310);
    assert_eq!(f["counts"]["likes"], 3, "rated 8 and more: four stars and up");

    // Pages of 100 asked for with the paging headers, and only the music sections.
    let reqs = plex.requests();
    let pages: Vec<&String> = reqs
        .iter()
        .filter(|r| r.starts_with("/library/sections/1/all"))
        .collect();
    assert_eq!(pages.len(), 3, "{reqs:?}");
    assert!(
        pages[0].ends_with(" 0/100") && pages[2].ends_with(" 200/100"),
        "{pages:?}"
    );
    assert_eq!(plex.count("/library/sections/5/all"), 1);
    assert_eq!(
        plex.count("/library/sections/2/all"),
        0,
        "the movie section is not read"
    );

    // Progress: totals from totalSize, the second section's added when it is met.
    let report = flow(&server, &f);
    let progress: Vec<(u64, u64)> = actions(&report, "PlexSource", "progressed")
        .iter()
        .filter(|a| a["input"]["phase"] == "tracks")
        .map(|a| {
            (
                a["input"]["current"].as_u64().unwrap_or(0),
                a["input"]["total"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert!(!progress.is_empty(), "the read reported its progress");
    for (current, total) in &progress {
        assert!([250, 310].contains(total) && current <= total, "{progress:?}");
    }
    assert_eq!(actions(&report, "PlexSource", "serverIdentified").len(), 1);

    // The metadata as Plex has it, under the track's guid.
    let t = the_track(&server, "plex://track/t4");
    assert_eq!(
        (t["title"].clone(), t["artist"].clone(), t["album"].clone()),
        (json!("Song 4"), json!("Artist 4"), json!("Album 4"))
    );
    assert_eq!(
        (t["durationMs"].clone(), t["year"].clone()),
        (json!(200000), json!(1994))
    );
    assert_eq!(t["genres"], json!(["Rock"]));
    assert_eq!(
        (t["ratingKey"].clone(), t["userRating"].clone()),
        (json!("1004"), json!(10.0))
    );
    assert_eq!(t["updatedAt"], "2020-09-13T12:26:44Z");
    assert_eq!(
        liked(&server),
        ["plex://track/t4", "plex://track/t3", "plex://track/t300"],
        "the most recently rated first"
    );
    let likes = ok(&server, "/api/LibraryCache/_getLikes", json!({"userId": USER}));
    assert_eq!(
        likes["likes"][0]["likedAt"], "2023-11-14T22:20:00Z",
        "likedAt is lastRatedAt"
    );

    // The server is recorded; the token is never answered.
    let conn = ok(&server, "/api/PlexSource/_getConnection", json!({"userId": USER}));
    assert_eq!(conn["machineIdentifier"], "machine-a");
    assert_eq!(conn["baseUrl"], plex.base.as_str());
    assert!(!conn.to_string().contains(TOKEN), "{conn}");
    assert!(
        !report.to_string().contains(TOKEN),
        "the flow's records redact the token"
    );
}

#[test]
fn a_library_of_18432_tracks_is_read_in_pages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plex = FakePlex::start(TOKEN);
    tracks(&plex, "1", 0, 18_432);
    for n in (0..18_432).step_by(100) {
        rate(&plex, n, Some(8.0), 1_700_000_000 + n as i64);
    }
    let server = start(dir.path(), &[]);
    assert_eq!(
        connect_with(&server, &plex, TOKEN, json!({"sectionIds": ["1"]})).status,
        200
    );
    let f = wait_read(&server, None);
    assert_eq!(f["phase"], "done", "{f}");
    assert_eq!(f["counts"]["tracks"], 18_432);
    assert_eq!(f["counts"]["likes"], 185);
    assert_eq!(
        plex.count("/library/sections/1/all"),
        19,
        "pages of 1000 (the default), the last one short"
    );
    assert_eq!(
        plex.count("/library/sections?"),
        0,
        "sectionIds given: the sections are not listed"
    );
    let s = status(&server);
    assert_eq!((s["tracks"].clone(), s["likes"].clone()), (json!(18_432), json!(185)));
}

#[test]
fn a_rating_changed_without_updated_at_moving_is_seen_by_the_next_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plex = FakePlex::start(TOKEN);
    tracks(&plex, "1", 0, 30);
    rate(&plex, 1, Some(8.0), 1_700_000_000);
    let server = start(dir.path(), &[]);
    connect(&server, &plex);
    let first = wait_read(&server, None);
    assert_eq!(liked(&server), ["plex://track/t1"]);

    // Five stars for t7, and t1 unrated: neither moves updatedAt.
    rate(&plex, 7, Some(10.0), 1_700_000_500);
    rate(&plex, 1, None, 0);
    let second = read_again(&server, &first);
    assert_eq!(second["phase"], "done", "{second}");
    assert_eq!(second["complete"], true, "every Plex read is complete");
    assert_eq!(
        liked(&server),
        ["plex://track/t7"],
        "the like added and the like removed"
    );
    // Three stars is below the default threshold of four.
    rate(&plex, 9, Some(6.0), 1_700_000_600);
    let third = read_again(&server, &second);
    assert_eq!(third["counts"]["likes"], 1);
    assert_eq!(liked(&server), ["plex://track/t7"]);
}

#[test]
fn the_like_threshold_is_configurable_in_stars() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plex = FakePlex::start(TOKEN);
    tracks(&plex, "1", 0, 10);
    rate(&plex, 1, Some(6.0), 1_700_000_100);
    rate(&plex, 2, Some(4.0), 1_700_000_200);
    // From librarycache.toml (flags and the environment would win over it).
    let config = dir.path().join("librarycache.toml");
    std::fs::write(&config, "plex-like-stars = 3\nplex-page-size = 4\n").expect("config");
    let data = dir.path().join("data");
    let server = start(&data, &["--config", config.to_str().expect("path")]);
    connect(&server, &plex);
    wait_read(&server, None);
    assert_eq!(liked(&server), ["plex://track/t1"], "three stars and up");
    assert_eq!(plex.count("/library/sections/1/all"), 3, "pages of 4");
}

#[test]
fn a_track_whose_rating_key_changed_keeps_its_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plex = FakePlex::start(TOKEN);
    tracks(&plex, "1", 0, 5);
    plex.library(|l| {
        l.playlists.push(FakePlaylist {
            rating_key: 900,
            guid: "com.plexapp.agents.none://pl-1".into(),
            title: "Mine".into(),
            smart: false,
            kind: "audio".into(),
            items: vec![(1, 1002), (2, 1003)],
        });
        l.history.push(Viewed {
            rating_key: 1002,
            kind: "track".into(),
            viewed_at: 1_700_000_000,
            account_id: 1,
        });
    });
    let server = start(dir.path(), &[]);
    connect(&server, &plex);
    let first = wait_read(&server, None);
    assert_eq!(the_track(&server, "plex://track/t2")["ratingKey"], "1002");

    // A rescan gives t2 a new ratingKey; the playlist and a new play name it by that key.
    plex.library(|l| {
        l.tracks[2].rating_key = 5002;
        l.playlists[0].items = vec![(1, 5002), (2, 1003)];
        l.history.insert(
            0,
            Viewed {
                rating_key: 5002,
                kind: "track".into(),
                viewed_at: 1_700_000_900,
                account_id: 1,
            },
        );
    });
    let second = read_again(&server, &first);
    assert_eq!(second["counts"]["skipped"], 0, "{second}");
    let s = status(&server);
    assert_eq!(s["tracks"], 5, "no second track for t2");
    assert_eq!(the_track(&server, "plex://track/t2")["ratingKey"], "5002");
    let pl = ok(
        &server,
        "/api/LibraryCache/_getPlaylist",
        json!({"playlistId": "com.plexapp.agents.none://pl-1"}),
    );
    assert_eq!(pl["entries"], json!(["plex://track/t2", "plex://track/t3"]));
    let plays = ok(&server, "/api/LibraryCache/_getPlays", json!({"userId": USER}));
    assert_eq!(
        plays["plays"],
        json!([
            {"trackId": "plex://track/t2", "playedAt": "2023-11-14T22:28:20Z"},
            {"trackId": "plex://track/t2", "playedAt": "2023-11-14T22:13:20Z"}
        ])
    );
}

#[test]
fn a_server_swap_fails_the_read_and_leaves_the_cache_until_connected_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plex = FakePlex::start(TOKEN);
    tracks(&plex, "1", 0, 20);
    rate(&plex, 1, Some(8.0), 1_700_000_000);
    let server = start(dir.path(), &[]);
    connect(&server, &plex);
    let first = wait_read(&server, None);
    let before = status(&server);

    // Another server answers at the same address, with another library.
    plex.library(|l| {
        l.machine = "machine-b".into();
        l.tracks = (100..110).map(|n| track(n, "1")).collect();
    });
    plex.clear_log();
    let swapped = read_again(&server, &first);
    assert_eq!(swapped["phase"], "failed", "{swapped}");
    assert_eq!(swapped["code"], "SERVER_CHANGED");
    let error = swapped["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("machine-a") && error.contains("machine-b") && error.contains("connect again"),
        "{error}"
    );
    assert_eq!(plex.requests(), ["/identity?"], "nothing read from the other server");
    let after = status(&server);
    assert_eq!(after["version"], before["version"], "the cache is untouched");
    assert_eq!(liked(&server), ["plex://track/t1"]);
    let conn = ok(&server, "/api/PlexSource/_getConnection", json!({"userId": USER}));
    assert_eq!(conn["machineIdentifier"], "machine-a");
    // Only connecting again accepts the swap: until then the user needs to reconnect, so
    // neither a fetch nor the scheduled refresh (which skips needsReauth) asks the server again.
    assert_eq!(swapped["needsReauth"], true, "{swapped}");
    assert_eq!(conn["needsReauth"], true, "{conn}");
    let refused = server.post("/api/PlexSource/fetch", &json!({"userId": USER}));
    assert_eq!(
        (refused.status, refused.body["code"].clone()),
        (409, json!("NEEDS_REAUTH"))
    );
    assert_eq!(plex.requests(), ["/identity?"], "the server was not asked again");

    // Connecting again accepts the new server (PlexSourceReadOnConnect reads it).
    assert_eq!(connect(&server, &plex).status, 200);
    let accepted = wait_read(&server, Some(&swapped));
    assert_eq!(accepted["phase"], "done", "{accepted}");
    assert_eq!(status(&server)["tracks"], 10);
    assert!(
        liked(&server).is_empty(),
        "the new server's library replaced the old one's"
    );
    let conn = ok(&server, "/api/PlexSource/_getConnection", json!({"userId": USER}));
    assert_eq!(conn["machineIdentifier"], "machine-b");
}

#[test]
fn playlists_keep_their_order_and_repeats_and_smart_ones_are_marked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plex = FakePlex::start(TOKEN);
    tracks(&plex, "1", 0, 10);
    // t9 lives in a section the user did not connect: a playlist brings it along.
    plex.library(|l| {
        l.sections.push(("7".into(), "artist".into(), "Other".into()));
        l.tracks[9].section = "7".into();
        l.playlists.push(FakePlaylist {
            rating_key: 900,
            guid: "com.plexapp.agents.none://mix".into(),
            title: "Mix".into(),
            smart: false,
            kind: "audio".into(),
            items: (0..130).map(|i| (i + 1, 1000 + [1, 2, 1, 9][i as usize % 4])).collect(),
        });
        l.playlists.push(FakePlaylist {
            rating_key: 901,
            guid: "com.plexapp.agents.none://top".into(),
            title: "Top rated".into(),
            smart: true,
            kind: "audio".into(),
            items: vec![(500, 1004), (501, 1005)],
        });
        l.playlists.push(FakePlaylist {
            rating_key: 902,
            guid: "com.plexapp.agents.none://films".into(),
            title: "Films".into(),
            smart: false,
            kind: "video".into(),
            items: vec![],
        });
    });
    let server = start(dir.path(), &["--plex-page-size", "50"]);
    assert_eq!(
        connect_with(&server, &plex, TOKEN, json!({"sectionIds": ["1"]})).status,
        200
    );
    let f = wait_read(&server, None);
    assert_eq!(f["counts"]["playlists"], 2, "audio playlists only: {f}");
    assert_eq!(plex.count("/playlists/900/items"), 3, "130 entries in pages of 50");

    let mix = ok(
        &server,
        "/api/LibraryCache/_getPlaylist",
        json!({"playlistId": "com.plexapp.agents.none://mix"}),
    );
    let entries: Vec<String> = serde_json::from_value(mix["entries"].clone()).expect("entries");
    assert_eq!(entries.len(), 130, "one entry per playlistItemID");
    assert_eq!(
        entries[..5],
        [
            "plex://track/t1",
            "plex://track/t2",
            "plex://track/t1",
            "plex://track/t9",
            "plex://track/t1"
        ]
    );
    assert_eq!(mix["smart"], false);
    assert_eq!(the_track(&server, "plex://track/t9")["title"], "Song 9");
    let top = ok(
        &server,
        "/api/LibraryCache/_getPlaylist",
        json!({"playlistId": "com.plexapp.agents.none://top"}),
    );
    assert_eq!(top["smart"], true);
    assert_eq!(top["name"], "Top rated");
    assert_eq!(top["entries"], json!(["plex://track/t4", "plex://track/t5"]));
}

#[test]
fn plays_come_from_the_history_and_later_reads_page_it_only_to_the_last_known_play() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plex = FakePlex::start(TOKEN);
    tracks(&plex, "1", 0, 10);
    plex.library(|l| {
        // 250 plays of alice's account (1), newest first, and some that are not hers or not
        // music or of a track the library no longer has.
        for i in 0..250 {
            l.history.push(Viewed {
                rating_key: 1000 + (i % 10),
                kind: "track".into(),
                viewed_at: 1_700_100_000 - i as i64 * 60,
                account_id: 1,
            });
        }
        l.history.push(Viewed {
            rating_key: 1003,
            kind: "track".into(),
            viewed_at: 1_700_000_000,
            account_id: 2,
        });
        l.history.push(Viewed {
            rating_key: 77,
            kind: "movie".into(),
            viewed_at: 1_700_000_001,
            account_id: 1,
        });
        l.history.push(Viewed {
            rating_key: 4242,
            kind: "track".into(),
            viewed_at: 1_600_000_000,
            account_id: 1,
        });
    });
    let server = start(dir.path(), &["--plex-page-size", "100"]);
    assert_eq!(connect_with(&server, &plex, TOKEN, json!({"accountId": 1})).status, 200);
    let first = wait_read(&server, None);
    assert_eq!(first["counts"]["plays"], 250, "{first}");
    assert_eq!(first["counts"]["skipped"], 1, "the play of a track that is gone");
    assert_eq!(plex.count("/status/sessions/history/all"), 3);
    assert!(
        plex.requests()
            .iter()
            .any(|r| r.starts_with("/status/sessions/history/all?accountID=1&sort=viewedAt:desc")),
        "{:?}",
        plex.requests()
    );
    assert_eq!(status(&server)["plays"], 250);

    // Two new plays: the next read pages the history only back to the last known play.
    plex.library(|l| {
        for (n, at) in [(5, 1_700_200_000), (6, 1_700_200_060)] {
            l.history.insert(
                0,
                Viewed {
                    rating_key: 1000 + n,
                    kind: "track".into(),
                    viewed_at: at,
                    account_id: 1,
                },
            );
        }
    });
    plex.clear_log();
    let second = read_again(&server, &first);
    assert_eq!(
        (second["complete"].clone(), second["mode"].clone()),
        (json!(true), json!("incremental")),
        "complete, as every Plex read, and the history read from the cursor: _getFetch says so"
    );
    assert_eq!(plex.count("/status/sessions/history/all"), 1, "{:?}", plex.requests());
    assert_eq!(second["counts"]["plays"], 3, "the two new plays and the last known one");
    assert_eq!(status(&server)["plays"], 252, "plays are merged");
    // A server that keeps its history from this token (not the owner's) still gives the
    // library: the read goes on without plays.
    plex.fail("/status/sessions/history/all", 403, 1);
    let third = read_again(&server, &second);
    assert_eq!(third["phase"], "done", "{third}");
    assert_eq!(
        (third["counts"]["plays"].clone(), third["counts"]["tracks"].clone()),
        (json!(0), json!(10))
    );
    assert_eq!(status(&server)["plays"], 252, "the plays cached stay");
    let plays = ok(
        &server,
        "/api/LibraryCache/_getPlays",
        json!({"userId": USER, "limit": 2}),
    );
    assert_eq!(
        plays["plays"][0],
        json!({"trackId": "plex://track/t6", "playedAt": "2023-11-17T05:47:40Z"})
    );
}

#[test]
fn a_refused_token_fails_the_read_clearly_until_connected_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plex = FakePlex::start(TOKEN);
    tracks(&plex, "1", 0, 3);
    let server = start(dir.path(), &[]);
    assert_eq!(connect_with(&server, &plex, "stale-token", json!({})).status, 200);
    let f = wait_read(&server, None);
    assert_eq!(f["phase"], "failed", "{f}");
    assert_eq!(f["code"], "NEEDS_REAUTH");
    assert_eq!(f["needsReauth"], true);
    let error = f["error"].as_str().unwrap_or_default();
    assert!(error.contains("401") && error.contains("X-Plex-Token"), "{error}");
    assert!(!error.contains("stale-token"), "{error}");
    let refused = server.post("/api/PlexSource/fetch", &json!({"userId": USER}));
    assert_eq!(
        (refused.status, refused.body["code"].clone()),
        (409, json!("NEEDS_REAUTH"))
    );
    let missing = server.post("/api/LibraryCache/_getStatus", &json!({"userId": USER}));
    assert_eq!(missing.status, 404, "nothing was cached");

    assert_eq!(connect(&server, &plex).status, 200);
    let f = wait_read(&server, Some(&f));
    assert_eq!(f["phase"], "done", "{f}");
    assert_eq!(status(&server)["tracks"], 3);
}

#[test]
fn server_errors_are_retried_and_a_rate_limit_is_honoured() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plex = FakePlex::start(TOKEN);
    tracks(&plex, "1", 0, 3);
    plex.fail("/library/sections/1/all", 503, 1);
    let server = start(dir.path(), &[]);
    connect(&server, &plex);
    let first = wait_read(&server, None);
    assert_eq!(first["phase"], "done", "a 503 is retried: {first}");
    assert_eq!(plex.count("/library/sections/1/all"), 2);

    plex.rate_limit("/playlists", 3600, 1);
    let limited = read_again(&server, &first);
    assert_eq!(limited["code"], "RATE_LIMITED", "{limited}");
    assert!(limited["retryAt"].is_string());
    // An hour is longer than a read waits: it stopped, and keeps what it read for retryAt.
    assert!(limited["checkpointPages"].as_u64().is_some_and(|n| n > 0), "{limited}");
    let early = server.post("/api/PlexSource/fetch", &json!({"userId": USER}));
    assert_eq!((early.status, early.body["code"].clone()), (429, json!("RATE_LIMITED")));
}

#[test]
fn connect_refuses_what_cannot_be_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path(), &[]);
    for (body, code) in [
        (
            json!({"userId": USER, "baseUrl": "plex.local:32400", "token": "t"}),
            "INVALID_BASE_URL",
        ),
        (
            json!({"userId": USER, "baseUrl": "http://plex.local:32400", "token": " "}),
            "EMPTY_TOKEN",
        ),
        (
            json!({"userId": USER, "baseUrl": "http://plex.local:32400", "token": "t", "sectionIds": []}),
            "EMPTY_SECTIONS",
        ),
        (
            json!({"userId": USER, "baseUrl": "http://plex.local:32400", "token": "t", "sectionIds": ["1", "../x"]}),
            "INVALID_SECTION_ID",
        ),
    ] {
        let r = server.post("/api/PlexSource/connect", &body);
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (422, Some(code)),
            "{body} {}",
            r.body
        );
    }
    let r = server.post("/api/PlexSource/fetch", &json!({"userId": USER}));
    assert_eq!((r.status, r.body["code"].clone()), (404, json!("NOT_CONNECTED")));
}
