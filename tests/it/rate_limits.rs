//! Rate limits do not throw reads away: the service runs in this process on a manual clock
//! (tests/it/common/in_process.rs) and reads from local servers that speak the outside services'
//! protocols and answer 429 when told to. A short wait is waited out inside the read — on the
//! engine's clock, which the test moves when `_getFetch` shows the read `waiting` — and every
//! page is asked for once plus its throttled tries. A long wait ends the read `failed` with
//! `retryAt` and a checkpoint; once the clock passes `retryAt` the read resumes by itself and
//! asks only for what it had not read.

use crate::common;
use crate::common::fake_http::Scripted;

use common::in_process::InProcess;
use common::manual_clock;
use common::spotify::{track, FakePlaylist, FakeSpotify, Liked};
use concept_core::time::{format_rfc3339, parse_rfc3339};
use librarycache::app::Sources;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const USER: &str = "user:alice";

fn spotify_sources(spotify: &FakeSpotify) -> Sources {
    Sources {
        spotify: spotify_source::Settings {
            api_base: spotify.api_base(),
            accounts_base: spotify.accounts_base(),
            // 5xx retries are not what this tests: keep them fast.
            retry_base: Duration::from_millis(10),
            ..spotify_source::Settings::default()
        },
        ..Sources::default()
    }
}

/// 3,000 liked songs (60 pages) and 60 playlists of 5 songs each.
fn big_library(spotify: &FakeSpotify) {
    spotify.library(|l| {
        for i in (0..3000).rev() {
            l.liked.push(Liked {
                track: Some(track(&format!("t{i:04}"))),
                added_at: format_rfc3339(
                    &(parse_rfc3339("2025-01-01T00:00:00Z").expect("time") + chrono::Duration::minutes(i)),
                ),
            });
        }
        for p in 0..60 {
            l.playlists.push(FakePlaylist {
                id: format!("p{p:02}"),
                name: format!("List {p}"),
                owner: "alice".into(),
                items: (0..5)
                    .map(|e| Some(track(&format!("t{:04}", (p * 37 + e) % 3000))))
                    .collect(),
                snapshot: 1,
                forbidden: false,
                legacy_field: false,
            });
        }
        l.played.push((track("t0001"), "2025-03-01T10:00:00Z".into()));
    });
}

fn get_fetch(service: &InProcess) -> Value {
    service.ok("/api/SpotifySource/_getFetch", json!({"userId": USER}))
}

/// Follows the user's read `fetch_id` until it ends, moving the service's clock to the end of
/// every rate-limit wait the read shows (`phase: "waiting"`, `until`); returns `_getFetch` and
/// the waits seen. A wait is checked to be on the service's clock: `until` is its time plus
/// `wait`.
fn follow(service: &InProcess, fetch_id: &str, wait: chrono::Duration) -> (Value, Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut waits = Vec::new();
    loop {
        let f = get_fetch(service);
        if f["fetchId"] == fetch_id {
            match f["phase"].as_str() {
                Some("done") | Some("failed") => return (f, waits),
                Some("waiting") => {
                    let until = f["until"].as_str().expect("a waiting read says until when").to_string();
                    let at = parse_rfc3339(&until).expect("until is a time");
                    if waits.last() != Some(&until) {
                        assert_eq!(at, service.now() + wait, "the wait is on the service's clock: {f}");
                        waits.push(until);
                    }
                    // Nothing but the clock ends the wait: move it there.
                    service.clock.set(at);
                }
                _ => {}
            }
        }
        assert!(Instant::now() < deadline, "the read did not end: {f}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Each request the fake answered, with how often it was asked and how often it was answered
/// with an injected fault.
fn asked(spotify: &FakeSpotify) -> BTreeMap<String, (usize, usize)> {
    let mut asked: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for r in spotify.requests() {
        asked.entry(r).or_default().0 += 1;
    }
    for r in spotify.faulted() {
        asked.entry(r).or_default().1 += 1;
    }
    asked
}

/// Every request asked exactly once more than it was throttled: each page once.
fn each_page_once(asked: &BTreeMap<String, (usize, usize)>) {
    for (request, (times, throttled)) in asked {
        assert_eq!(
            *times,
            throttled + 1,
            "{request} was asked {times} times and throttled {throttled} times"
        );
    }
}

fn wait_confirmed(service: &InProcess, f: &Value) {
    wait_confirmed_by(service, "SpotifySource", f)
}

/// Waits until the read's flow shows `concept.confirm` of it: the cache took the read.
fn wait_confirmed_by(service: &InProcess, concept: &str, f: &Value) {
    let flow = f["flow"].as_str().expect("flow");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let report: Value = service
            .client
            .get(format!("{}/api/flows/{flow}", service.base))
            .send()
            .expect("flow")
            .json()
            .expect("json");
        let confirmed = report["actions"].as_array().is_some_and(|a| {
            a.iter()
                .any(|x| x["concept"] == concept && x["action"] == "confirm" && x["output"]["fetchId"] == f["fetchId"])
        });
        if confirmed {
            return;
        }
        assert!(Instant::now() < deadline, "the read was never confirmed: {report}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_429_is_waited_out_inside_the_read_and_a_long_one_resumes_from_a_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spotify = FakeSpotify::start("access-0", "refresh-0");
    big_library(&spotify);
    spotify.throttle_every(40, 1);
    let clock = manual_clock("2026-03-01T12:00:00Z");
    let service = InProcess::start(dir.path(), spotify_sources(&spotify), &clock);

    // The first read: 60 pages of likes, 2 of playlists, 60 playlists' items and snapshots,
    // the recent plays — and a 429 with Retry-After: 1 on every 40th request.
    service.ok(
        "/api/SpotifySource/connect",
        json!({"userId": USER, "accessToken": "access-0", "refreshToken": "refresh-0", "clientId": "c", "clientSecret": "s"}),
    );
    let started = service
        .engine
        .query("SpotifySource", "_getFetch", json!({"userId": USER}))
        .expect("the connect started a read");
    let fetch_id = started["fetchId"].as_str().expect("fetchId").to_string();
    let (f, waits) = follow(&service, &fetch_id, chrono::Duration::seconds(1));
    assert_eq!(f["phase"], "done", "{f}");
    assert_eq!(f["counts"]["likes"], 3000);
    assert_eq!(f["counts"]["playlists"], 60);
    wait_confirmed(&service, &f);
    let requests = spotify.requests().len();
    let throttled = spotify.faulted().len();
    assert_eq!(
        throttled,
        requests / 40,
        "every 40th of {requests} requests was throttled"
    );
    assert!(throttled >= 4, "{requests} requests");
    assert_eq!(waits.len(), throttled, "each 429 was one wait: {waits:?}");
    each_page_once(&asked(&spotify));
    assert_eq!(
        spotify.count("/v1/me/tracks"),
        60 + spotify
            .faulted()
            .iter()
            .filter(|r| r.starts_with("/v1/me/tracks"))
            .count()
    );
    let status = service.ok("/api/LibraryCache/_getStatus", json!({"userId": USER}));
    assert_eq!(
        (status["likes"].clone(), status["playlists"].clone()),
        (json!(3000), json!(60))
    );

    // A full read meets a 429 with Retry-After: 7200 at its 100th request (among the
    // playlists): the read stops with retryAt and a checkpoint of what it had read.
    spotify.clear_log();
    spotify.stop_throttling();
    spotify.throttle_request(100, 7200);
    spotify.library(|l| {
        l.liked.insert(
            0,
            Liked {
                track: Some(track("new")),
                added_at: "2025-12-01T00:00:00Z".into(),
            },
        );
    });
    let stopped_at = service.now();
    let second = service.ok("/api/SpotifySource/fetch", json!({"userId": USER, "mode": "full"}));
    let second_id = second["fetchId"].as_str().expect("fetchId").to_string();
    let (f, _) = follow(&service, &second_id, chrono::Duration::seconds(1));
    assert_eq!(f["phase"], "failed", "{f}");
    assert_eq!(f["code"], "RATE_LIMITED");
    let retry_at = f["retryAt"].as_str().expect("retryAt").to_string();
    assert_eq!(
        parse_rfc3339(&retry_at),
        Some(stopped_at + chrono::Duration::seconds(7200)),
        "retryAt is the service's time plus the wait"
    );
    assert_eq!(f["checkpointPages"], 99, "the 99 answers before the 429 are kept: {f}");
    assert_eq!(spotify.requests().len(), 100);
    // Before retryAt, fetch is refused and nothing is asked.
    let early = service.post("/api/SpotifySource/fetch", &json!({"userId": USER}));
    assert_eq!(early.status, 429, "{}", early.body);
    assert_eq!(spotify.requests().len(), 100);
    assert_eq!(
        service.ok("/api/LibraryCache/_getStatus", json!({"userId": USER}))["likes"],
        3000,
        "nothing of the stopped read reached the cache"
    );

    // The clock passes retryAt: nobody asks, the read resumes from its checkpoint by itself
    // (same fetchId), asks only for what it had not read, and completes.
    service
        .clock
        .set(parse_rfc3339(&retry_at).expect("time") + chrono::Duration::seconds(1));
    let deadline = Instant::now() + Duration::from_secs(30);
    while get_fetch(&service)["phase"] == "failed" {
        assert!(Instant::now() < deadline, "the read did not resume at retryAt");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (f, _) = follow(&service, &second_id, chrono::Duration::seconds(1));
    assert_eq!(f["phase"], "done", "{f}");
    assert_eq!(f["mode"], "full");
    assert_eq!(f["counts"]["likes"], 3001);
    assert!(
        f["checkpointPages"].is_null(),
        "the checkpoint is gone once the read is done: {f}"
    );
    wait_confirmed(&service, &f);
    let second_read = asked(&spotify);
    each_page_once(&second_read);
    assert_eq!(spotify.faulted().len(), 1, "the one 429, asked again after retryAt");
    let status = service.ok("/api/LibraryCache/_getStatus", json!({"userId": USER}));
    assert_eq!(status["likes"], 3001);
    assert_eq!(
        service.ok("/api/LibraryCache/_getLiked", json!({"userId": USER, "limit": 1}))["trackIds"],
        json!(["spotify:track:new"])
    );
    // The read's flow tells the story: failed, then resume at retryAt, then fetched, and what
    // the syncs made of it (the last, spotify.sync's re-key of names an export left, may still
    // be on its way when the read is confirmed).
    let flow_actions = || -> Vec<String> {
        let report: Value = service
            .client
            .get(format!(
                "{}/api/flows/{}",
                service.base,
                f["flow"].as_str().expect("flow")
            ))
            .send()
            .expect("flow")
            .json()
            .expect("json");
        common::server::action_names(&report)
            .into_iter()
            .filter(|a| a != "SpotifySource.progressed")
            .collect::<Vec<_>>()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut actions = flow_actions();
    while !actions.iter().any(|a| a == "LibraryCache.rekeyNamed") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        actions = flow_actions();
    }
    assert_eq!(
        actions,
        [
            "SpotifySource.fetch",
            "SpotifySource.failed",
            "SpotifySource.resume",
            "SpotifySource.fetched",
            "LibraryCache.sync",
            "SpotifySource.confirm",
            "LibraryCache.rekeyNamed"
        ]
    );
}

/// Follows any source's read (`concept`'s `_getFetch` for `user`) as [`follow`] does.
fn follow_source(
    service: &InProcess,
    concept: &str,
    user: &str,
    fetch_id: &str,
    wait: chrono::Duration,
) -> (Value, usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut waits = 0;
    let mut last_until = String::new();
    loop {
        let f = service.ok(&format!("/api/{concept}/_getFetch"), json!({"userId": user}));
        if f["fetchId"] == fetch_id {
            match f["phase"].as_str() {
                Some("done") | Some("failed") => return (f, waits),
                Some("waiting") => {
                    let until = f["until"].as_str().expect("until").to_string();
                    let at = parse_rfc3339(&until).expect("time");
                    if until != last_until {
                        assert_eq!(at, service.now() + wait, "{f}");
                        waits += 1;
                        last_until = until;
                    }
                    service.clock.set(at);
                }
                _ => {}
            }
        }
        assert!(Instant::now() < deadline, "the read did not end: {f}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `concept`'s read of `user` is no longer `failed` (it resumed).
fn resumed(service: &InProcess, concept: &str, user: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while service.ok(&format!("/api/{concept}/_getFetch"), json!({"userId": user}))["phase"] == "failed" {
        assert!(Instant::now() < deadline, "the read did not resume at retryAt");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_plex_read_waits_out_a_short_429_and_resumes_a_long_one_from_its_checkpoint() {
    use common::plex::{track as plex_track, FakePlex};
    const PLEX_USER: &str = "user:alice:plex";
    let dir = tempfile::tempdir().expect("tempdir");
    let plex = FakePlex::start("plex-token");
    plex.library(|l| l.tracks.extend((0..250).map(|i| plex_track(i, "1"))));
    let clock = manual_clock("2026-03-01T12:00:00Z");
    let mut plex_settings = plex_source::Settings {
        page_size: 50,
        ..plex_source::Settings::default()
    };
    plex_settings.retry.base = Duration::from_millis(10);
    let sources = Sources {
        plex: plex_settings,
        ..Sources::default()
    };
    let service = InProcess::start(dir.path(), sources, &clock);

    // The read asks for /identity, /library/sections, then the tracks 50 at a time: its fifth
    // request (the third page) answers 429 with Retry-After: 5, waited out on the clock.
    plex.throttle_request(5, 5);
    service.ok(
        "/api/PlexSource/connect",
        json!({"userId": PLEX_USER, "baseUrl": plex.base, "token": "plex-token"}),
    );
    let first = service.ok("/api/PlexSource/_getFetch", json!({"userId": PLEX_USER}));
    let first_id = first["fetchId"].as_str().expect("fetchId").to_string();
    let (f, waits) = follow_source(
        &service,
        "PlexSource",
        PLEX_USER,
        &first_id,
        chrono::Duration::seconds(5),
    );
    assert_eq!(f["phase"], "done", "{f}");
    assert_eq!(waits, 1);
    assert_eq!(f["counts"]["tracks"], 250);
    assert_eq!(plex.count("/library/sections/1/all"), 6, "five pages, one asked twice");
    assert_eq!(plex.faulted().len(), 1);

    // The next read meets an hour's 429 at its fourth request (the second page of tracks): it
    // stops with retryAt and a checkpoint, and resumes by itself once the clock passes retryAt.
    plex.library(|l| l.tracks.push(plex_track(250, "1")));
    plex.clear_log();
    plex.throttle_request(4, 3600);
    let stopped_at = service.now();
    let second = service.ok("/api/PlexSource/fetch", json!({"userId": PLEX_USER}));
    let second_id = second["fetchId"].as_str().expect("fetchId").to_string();
    let (f, _) = follow_source(
        &service,
        "PlexSource",
        PLEX_USER,
        &second_id,
        chrono::Duration::seconds(5),
    );
    assert_eq!(
        (f["phase"].as_str(), f["code"].as_str()),
        (Some("failed"), Some("RATE_LIMITED")),
        "{f}"
    );
    let retry_at = parse_rfc3339(f["retryAt"].as_str().expect("retryAt")).expect("time");
    assert_eq!(retry_at, stopped_at + chrono::Duration::hours(1));
    assert_eq!(f["checkpointPages"], 3, "identity, sections and the first page: {f}");
    let asked_before = plex.requests().len();
    service.clock.set(retry_at);
    resumed(&service, "PlexSource", PLEX_USER);
    let (f, _) = follow_source(
        &service,
        "PlexSource",
        PLEX_USER,
        &second_id,
        chrono::Duration::seconds(5),
    );
    assert_eq!(f["phase"], "done", "{f}");
    assert_eq!(f["counts"]["tracks"], 251);
    let requests = plex.requests();
    let mut seen = std::collections::HashMap::new();
    for r in &requests {
        *seen.entry(r.clone()).or_insert(0) += 1;
    }
    let faulted = plex.faulted();
    for (r, n) in &seen {
        let throttled = faulted.iter().filter(|f| *f == r).count();
        assert_eq!(
            *n,
            throttled + 1,
            "{r} asked {n} times, throttled {throttled}: {requests:?}"
        );
    }
    assert!(requests.len() > asked_before, "the resumed read asked for the rest");
    wait_confirmed_by(&service, "PlexSource", &f);
    assert_eq!(
        service.ok("/api/LibraryCache/_getStatus", json!({"userId": PLEX_USER}))["tracks"],
        251
    );
}

#[test]
fn last_fm_error_29_is_waited_out_or_stops_the_read_until_it_resumes_from_its_checkpoint() {
    use common::lastfm::{scrobble, FakeLastfm};
    const KEY: &str = "lastfm-key";
    let history: Vec<_> = (0..450).map(|i| scrobble(i, 1_700_000_000 + i as i64 * 300)).collect();
    let recent = |lastfm: &FakeLastfm| {
        lastfm
            .requests()
            .into_iter()
            .filter(|r| r.get("method").map(String::as_str) == Some("user.getrecenttracks"))
            .map(|r| r.get("page").cloned().unwrap_or_default())
            .collect::<Vec<_>>()
    };
    let sources = |lastfm: &FakeLastfm, max_wait: Duration| Sources {
        lastfm: lastfm_source::Settings {
            api_base: lastfm.api_base(),
            max_wait,
            ..lastfm_source::Settings::default()
        },
        ..Sources::default()
    };

    // Error 29 carries no wait: the default minute, which a read waits out by default.
    let lastfm = FakeLastfm::start(KEY);
    lastfm.scrobble("rj", history.clone());
    lastfm.error_after("user.getrecenttracks", 1, 29, 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = manual_clock("2026-03-01T12:00:00Z");
    let service = InProcess::start(dir.path(), sources(&lastfm, Duration::from_secs(60)), &clock);
    service.ok(
        "/api/LastfmSource/connect",
        json!({"userId": USER, "username": "rj", "apiKey": KEY}),
    );
    let id = service.ok("/api/LastfmSource/_getFetch", json!({"userId": USER}))["fetchId"]
        .as_str()
        .expect("fetchId")
        .to_string();
    let (f, waits) = follow_source(&service, "LastfmSource", USER, &id, chrono::Duration::seconds(60));
    assert_eq!((f["phase"].as_str(), waits), (Some("done"), 1), "{f}");
    assert_eq!(f["counts"]["plays"], 450);
    assert_eq!(
        recent(&lastfm),
        ["1", "2", "2", "3"],
        "page 2 asked again after the wait"
    );
    wait_confirmed_by(&service, "LastfmSource", &f);
    drop(service);

    // A service set to wait at most 30 s: the minute is too long. The read stops at page 2 with
    // retryAt and page 1 as its checkpoint, and resumes from it at retryAt.
    let lastfm = FakeLastfm::start(KEY);
    lastfm.scrobble("rj", history);
    lastfm.error_after("user.getrecenttracks", 1, 29, 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = manual_clock("2026-03-01T12:00:00Z");
    let service = InProcess::start(dir.path(), sources(&lastfm, Duration::from_secs(30)), &clock);
    service.ok(
        "/api/LastfmSource/connect",
        json!({"userId": USER, "username": "rj", "apiKey": KEY}),
    );
    let id = service.ok("/api/LastfmSource/_getFetch", json!({"userId": USER}))["fetchId"]
        .as_str()
        .expect("fetchId")
        .to_string();
    let (f, waits) = follow_source(&service, "LastfmSource", USER, &id, chrono::Duration::seconds(60));
    assert_eq!(
        (f["phase"].as_str(), f["code"].as_str(), waits),
        (Some("failed"), Some("RATE_LIMITED"), 0),
        "{f}"
    );
    assert_eq!(f["checkpointPages"], 1, "{f}");
    let retry_at = parse_rfc3339(f["retryAt"].as_str().expect("retryAt")).expect("time");
    assert_eq!(retry_at, service.now() + chrono::Duration::seconds(60));
    // The read's `to` is pinned to its start: the resumed read asks with the same one.
    let to_before: Vec<String> = lastfm.requests().iter().filter_map(|r| r.get("to").cloned()).collect();
    service.clock.set(retry_at);
    resumed(&service, "LastfmSource", USER);
    let (f, _) = follow_source(&service, "LastfmSource", USER, &id, chrono::Duration::seconds(60));
    assert_eq!(f["phase"], "done", "{f}");
    assert_eq!(f["counts"]["plays"], 450);
    assert_eq!(recent(&lastfm), ["1", "2", "2", "3"], "page 1 came from the checkpoint");
    let to_after: Vec<String> = lastfm.requests().iter().filter_map(|r| r.get("to").cloned()).collect();
    assert!(to_after.iter().all(|t| *t == to_before[0]), "{to_after:?}");
    wait_confirmed_by(&service, "LastfmSource", &f);
    assert_eq!(
        service.ok("/api/LibraryCache/_getStatus", json!({"userId": USER}))["plays"],
        450
    );
}
