//! Several service instances on one PostgreSQL database: two real `librarycache serve` processes
//! on the same store, driven at once by clients that alternate between them. Afterwards the
//! store is opened directly and checked: no acknowledged like is lost, on a user everyone writes
//! (no lost update across instances); each client's own user holds exactly its own likes (I6);
//! a request sent to both instances with the same `Idempotency-Key` is applied once; the global
//! sequence and the action ids have no gap (I5); and a rebuild reproduces the live projections
//! (I2). Needs `LIBRARYCACHE_TEST_PG` (runs nothing, and says so, without it).

use crate::common;

use common::server::{self, send, Server};
use common::TestStore;
use librarycache::engine::{Engine, Registry};
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;

const CLIENTS: usize = 6;
const CALLS: usize = 20;
const SHARED_KEYS: usize = 8;

#[test]
fn two_servers_on_one_postgres_keep_the_invariants() {
    let Some(store) = TestStore::postgres() else {
        return;
    };
    server::within(Duration::from_secs(300), move || {
        // Both start at once on a schema without tables: creating them must not race.
        let (a, b) = {
            let (arg_a, arg_b) = (store.arg(), store.arg());
            let a = std::thread::spawn(move || Server::start(arg_a, &[]));
            let b = Server::start(arg_b, &[]);
            (a.join().expect("server a starts"), b)
        };
        let bases = [a.base.clone(), b.base.clone()];
        for (i, user) in ["hot"]
            .into_iter()
            .map(String::from)
            .chain((0..CLIENTS).map(|c| format!("p{c}")))
            .enumerate()
        {
            let r = (if i % 2 == 0 { &a } else { &b }).post("/api/LibraryCache/ingest", &json!({ "userId": user }));
            assert_eq!(r.status, 200, "{}", r.body);
        }

        // Each client alternates between the instances: merges on the shared user and on its own,
        // and likes through the request syncs (`/api/like`), on the shared user.
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let bases = bases.clone();
                std::thread::spawn(move || {
                    let http = server::client();
                    let mut hot_acked = Vec::new();
                    let mut own_acked = Vec::new();
                    for i in 0..CALLS {
                        let base = &bases[(c + i) % 2];
                        let track = format!("c{c}-{i}");
                        let (path, body) = match i % 3 {
                            0 => (
                                "/api/like",
                                json!({"userId": "hot", "trackId": track}),
                            ),
                            1 => (
                                "/api/LibraryCache/merge",
                                json!({"userId": "hot", "likes": [{"trackId": track, "likedAt": "2025-01-01T00:00:00Z"}]}),
                            ),
                            _ => (
                                "/api/LibraryCache/merge",
                                json!({"userId": format!("p{c}"), "likes": [{"trackId": track, "likedAt": "2025-01-01T00:00:00Z"}]}),
                            ),
                        };
                        let reply = send(&http, base, path, body.to_string().into_bytes(), None).expect("answer");
                        match reply.status {
                            200 if i % 3 == 2 => own_acked.push(track),
                            200 => hot_acked.push(track),
                            409 => {} // refused as concurrent: it must not be there, nor be required
                            other => panic!("client {c} call {i}: {other} {}", reply.body),
                        }
                    }
                    (hot_acked, own_acked)
                })
            })
            .collect();

        // Meanwhile, the same request with the same key is sent to both instances at once.
        let racers: Vec<_> = (0..SHARED_KEYS)
            .flat_map(|k| {
                bases.clone().into_iter().map(move |base| {
                    std::thread::spawn(move || {
                        let body = json!({"userId": "hot", "likes": [{"trackId": format!("key{k}"), "likedAt": "2025-01-01T00:00:00Z"}]});
                        let http = server::client();
                        send(
                            &http,
                            &base,
                            "/api/LibraryCache/merge",
                            body.to_string().into_bytes(),
                            Some(&format!("shared-key-{k}")),
                        )
                        .expect("answer")
                    })
                })
            })
            .collect();

        let mut hot_acked = Vec::new();
        let mut own: Vec<Vec<String>> = Vec::new();
        for client in clients {
            let (hot, mine) = client.join().expect("client");
            hot_acked.extend(hot);
            own.push(mine);
        }
        // Per key: whether any instance answered 200 (a refusal as concurrent is allowed, as on
        // one instance; a 200 means the merge is applied, exactly once).
        let mut key_answers = 0;
        let mut answered = [false; SHARED_KEYS];
        for (i, racer) in racers.into_iter().enumerate() {
            let reply = racer.join().expect("racer");
            match reply.status {
                200 => {
                    key_answers += 1;
                    answered[i / 2] = true;
                }
                409 => assert!(
                    reply.body["code"] == "IDEMPOTENCY_KEY_RACE" || reply.body["code"] == "CONCURRENT_UPDATE",
                    "{}",
                    reply.body
                ),
                other => panic!("a shared-key request answered {other} {}", reply.body),
            }
        }
        drop((a, b));

        // Both servers are gone: check the store directly.
        let store_handle = store.open();
        let engine = Engine::new(store_handle.clone(), Registry::standard());
        let liked = |user: &str| -> BTreeSet<String> {
            common::ok(&engine, "LibraryCache._getLiked", json!({ "userId": user }))["trackIds"]
                .as_array()
                .expect("ids")
                .iter()
                .map(|v| v.as_str().expect("id").to_string())
                .collect()
        };
        let hot = liked("hot");
        for track in &hot_acked {
            assert!(
                hot.contains(track),
                "acknowledged like {track} of the shared user is lost"
            );
        }
        for (k, was_answered) in answered.iter().enumerate() {
            if *was_answered {
                assert!(hot.contains(&format!("key{k}")), "key{k} was answered but is not there");
            }
        }
        for (c, mine) in own.iter().enumerate() {
            let expected: BTreeSet<String> = mine.iter().cloned().collect();
            assert_eq!(
                liked(&format!("p{c}")),
                expected,
                "user p{c} holds exactly its own likes"
            );
        }

        // Each shared key answered 200 applied once (one successful merge record), one refused
        // on both instances not at all.
        let mut records = Vec::new();
        let mut after = 0;
        loop {
            let batch = store_handle.read_records(after, 1_000).expect("records");
            let Some(last) = batch.last() else { break };
            after = last.id;
            records.extend(batch);
        }
        for (k, was_answered) in answered.iter().enumerate() {
            let track = format!("key{k}");
            let applied = records
                .iter()
                .filter(|r| r.action == "merge" && !r.failed && r.input["likes"][0]["trackId"] == track.as_str())
                .count();
            assert_eq!(
                applied,
                usize::from(*was_answered),
                "the request under shared-key-{k} was applied {applied} times"
            );
        }

        // No gap in action ids or in the global sequence, and every event is its record's.
        let stats = store_handle.stats().expect("stats");
        assert_eq!(records.len() as u64, stats.actions, "action ids have a gap");
        assert!(records.iter().enumerate().all(|(i, r)| r.id == i as u64 + 1));
        let log = store_handle.read_log(0, usize::MAX).expect("log");
        assert_eq!(log.len() as u64, stats.last_seq);
        assert!(
            log.iter().enumerate().all(|(i, e)| e.meta.seq == i as u64 + 1),
            "the global sequence has a gap"
        );
        for r in &records {
            if let Some((first, last)) = r.events {
                for seq in first..=last {
                    assert_eq!(
                        log[seq as usize - 1].meta.action,
                        r.id,
                        "event {seq} is not action {}'s",
                        r.id
                    );
                }
            }
        }

        let live = store_handle.projection_dump().expect("dump");
        engine.rebuild().expect("rebuild");
        assert!(
            live == store_handle.projection_dump().expect("dump"),
            "rebuild differs from live"
        );
        println!(
            "two instances: {} acknowledged likes on the shared user, {} own, {} keyed answers; {} actions, {} events",
            hot_acked.len(),
            own.iter().map(Vec::len).sum::<usize>(),
            key_answers,
            stats.actions,
            stats.last_seq
        );
    });
}

/// `GET /healthz`'s role of this instance for `concept`'s background work.
fn role(server: &Server, concept: &str) -> String {
    let health: serde_json::Value = server::client()
        .get(format!("{}/healthz", server.base))
        .send()
        .and_then(|r| r.json())
        .unwrap_or_default();
    health["background"][concept].as_str().unwrap_or("none").to_string()
}

/// Polls until `server` reports `want` for every concept with background work, or panics.
fn wait_role(server: &Server, want: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let roles = ["SpotifySource", "Scheduling"].map(|c| role(server, c));
        if roles.iter().all(|r| r == want) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "roles stayed {roles:?}, not {want}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Two instances on one database run each concept's background work once between them: the
/// first to start holds the leases, the second stands by (two would read Spotify twice and tick
/// every timer twice). When the first is killed, its connections end, PostgreSQL releases its
/// locks, and the second takes the work over: a user connected afterwards is read through it.
#[test]
fn one_instance_runs_the_background_work_and_another_takes_over() {
    let Some(store) = TestStore::postgres() else {
        return;
    };
    server::within(Duration::from_secs(180), move || {
        let spotify = common::spotify::FakeSpotify::start("access-0", "refresh-0");
        spotify.library(|l| {
            l.liked.push(common::spotify::Liked {
                track: Some(common::spotify::track("t1")),
                added_at: "2025-01-01T00:00:00Z".into(),
            })
        });
        let (api, accounts) = (spotify.api_base(), spotify.accounts_base());
        let args = ["--spotify-api-base", &api, "--spotify-accounts-base", &accounts];
        let mut a = Server::start(store.arg(), &args);
        wait_role(&a, "leading");
        let b = Server::start(store.arg(), &args);
        // Longer than an instance standing by waits before asking again: still standing by.
        std::thread::sleep(Duration::from_secs(4));
        wait_role(&b, "standby");
        assert_eq!(role(&a, "SpotifySource"), "leading");

        a.kill();
        wait_role(&b, "leading");
        let connected = b.post(
            "/api/SpotifySource/connect",
            &json!({"userId": "user:late", "accessToken": "access-0", "refreshToken": "refresh-0",
                    "clientId": "client", "clientSecret": "secret"}),
        );
        assert_eq!(connected.status, 200, "{}", connected.body);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let liked = b.post("/api/LibraryCache/_getLiked", &json!({"userId": "user:late"}));
            if liked.status == 200 && liked.body["trackIds"] == json!(["spotify:track:t1"]) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the read did not reach the cache through the instance that took over: {} {}",
                liked.status,
                liked.body
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    });
}

/// Leases are advisory locks, which are database-wide; two stores in two schemas of one
/// database are two deployments, and neither holds the other's leases.
#[test]
fn stores_in_two_schemas_of_one_database_hold_their_leases_apart() {
    let Some(first) = TestStore::postgres() else {
        return;
    };
    let second = first.sibling();
    let (a, b) = (first.open(), second.open());
    let held = a.lease("background SpotifySource").expect("lease").expect("granted");
    let other = b
        .lease("background SpotifySource")
        .expect("lease")
        .expect("the other schema's lease is its own");
    // Within one schema the lease is still exclusive.
    let again = first.open();
    assert!(again.lease("background SpotifySource").expect("lease").is_none());
    drop((held, other));
}
