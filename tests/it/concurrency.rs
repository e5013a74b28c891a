//! Concurrency: many threads syncing and merging the same user and different users at once,
//! through the engine and over HTTP.
//!
//! - No lost update: an answered 200 is in the final state. On one user, a merge of a distinct
//!   like either appears or was answered 409 `CONCURRENT_UPDATE`; with syncs in the mix, the
//!   acknowledged actions replayed in the order of their answered versions give exactly the
//!   final likes (each action saw the state its version says it did: no silent overwrite).
//! - No leakage between users (I6): each user's library is exactly what its own actions made it,
//!   and a user nobody touches is unchanged.
//! - No deadlock: every test runs under a deadline and fails instead of hanging.
//! - A reader tailing the global log from a checkpoint while writers run sees every event, in
//!   order, ending at the last sequence number (I5).

use crate::common;

use common::server::{self, Rng, Server};
use common::{ok, TestStore};
use librarycache::engine::Engine;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(120);

fn liked(engine: &Engine, user: &str) -> Vec<String> {
    ok(engine, "LibraryCache._getLiked", json!({"userId": user}))["trackIds"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|v| v.as_str().expect("id").to_string())
        .collect()
}

/// Everything a query can say about a user's library.
fn snapshot(engine: &Engine, user: &str) -> Vec<Value> {
    let mut out = vec![
        ok(engine, "LibraryCache._getLiked", json!({"userId": user})),
        ok(
            engine,
            "LibraryCache._getPlays",
            json!({"userId": user, "limit": 100_000}),
        ),
        ok(
            engine,
            "LibraryCache._getTracks",
            json!({"userId": user, "limit": 100_000}),
        ),
        ok(engine, "LibraryCache._getPlaylists", json!({"userId": user})),
        ok(
            engine,
            "LibraryCache._getChanges",
            json!({"userId": user, "limit": 100_000}),
        ),
    ];
    let mut status = ok(engine, "LibraryCache._getStatus", json!({"userId": user}));
    status["stale"] = Value::Null;
    out.push(status);
    out
}

/// An answer is either a success with a version or the conflict refusal; anything else fails.
fn version_or_conflict(what: &str, answer: Result<Value, concept_core::ActionError>) -> Option<u64> {
    answered(what, answer).map(|(version, _)| version)
}

/// The version an action answered and whether it changed anything (an action that changes
/// nothing appends nothing and answers the version it found), or None for a lost race.
fn answered(what: &str, answer: Result<Value, concept_core::ActionError>) -> Option<(u64, bool)> {
    match answer {
        Ok(out) => {
            let changed = ["added", "removed", "updated"].iter().any(|k| {
                out[*k]
                    .as_object()
                    .is_some_and(|counts| counts.values().any(|n| n.as_u64().unwrap_or(0) > 0))
            });
            Some((out["version"].as_u64().expect("version"), changed))
        }
        Err(e) if e.code == "CONCURRENT_UPDATE" && e.kind.status() == 409 => None,
        Err(e) => panic!("{what}: unexpected refusal {e}"),
    }
}

fn concurrent_merges_of_distinct_likes_on_one_user_lose_nothing(store: TestStore) {
    server::within(DEADLINE, move || {
        let engine = Arc::new(store.engine());
        ok(&engine, "LibraryCache.ingest", json!({"userId": "hot"}));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let engine = Arc::clone(&engine);
                std::thread::spawn(move || {
                    let mut acked = Vec::new();
                    let mut conflicts = 0;
                    for i in 0..60 {
                        let track = format!("t{t}-{i}");
                        let input = json!({"userId": "hot", "tracks": [{"id": track, "title": "T"}],
                            "likes": [{"trackId": track}]});
                        match version_or_conflict(&track, engine.invoke("LibraryCache", "merge", input).result) {
                            Some(_) => acked.push(track),
                            None => conflicts += 1,
                        }
                        if i % 10 == 0 {
                            // Readers in between the writers.
                            ok(&engine, "LibraryCache._getLiked", json!({"userId": "hot"}));
                        }
                    }
                    (acked, conflicts)
                })
            })
            .collect();
        // Readers while the writers run: every read succeeds, and since merges only add, no
        // read sees fewer likes than the one before it (a torn read could).
        let writing = Arc::new(AtomicBool::new(true));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let engine = Arc::clone(&engine);
                let writing = Arc::clone(&writing);
                std::thread::spawn(move || {
                    let (mut last, mut reads) = (0, 0);
                    while writing.load(Ordering::SeqCst) {
                        let out = engine
                            .query("LibraryCache", "_getLiked", json!({"userId": "hot"}))
                            .unwrap_or_else(|e| panic!("a read during writes was refused: {e}"));
                        let n = out["trackIds"].as_array().map_or(0, Vec::len);
                        assert!(n >= last, "a read saw {n} likes after one saw {last}");
                        last = n;
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        let mut acked: BTreeSet<String> = BTreeSet::new();
        let mut conflicts = 0;
        for t in threads {
            let (a, c) = t.join().expect("writer");
            acked.extend(a);
            conflicts += c;
        }
        writing.store(false, Ordering::SeqCst);
        let reads: u64 = readers.into_iter().map(|r| r.join().expect("reader")).sum();
        let now: BTreeSet<String> = liked(&engine, "hot").into_iter().collect();
        // Every acknowledged like is there, and nothing that was refused.
        assert_eq!(now, acked, "acknowledged merges and the final likes differ");
        println!(
            "one user, 8 threads: {} merges acknowledged, {conflicts} answered 409, {reads} reads meanwhile",
            acked.len()
        );
        let before = common::dump(&engine);
        engine.rebuild().expect("rebuild");
        assert!(before == common::dump(&engine), "rebuild differs from live");
    });
}

/// An acknowledged action: (answered version, changed nothing), likes, unlikes, replaces.
type Acked = ((u64, bool), Vec<String>, Vec<String>, bool);

fn concurrent_syncs_and_merges_on_one_user_apply_in_version_order(store: TestStore) {
    server::within(DEADLINE, move || {
        let engine = Arc::new(store.engine());
        let start = ok(&engine, "LibraryCache.ingest", json!({"userId": "mixed"}));
        let start_version = start["version"].as_u64().expect("version");
        let seed = server::seed("syncs_and_merges");
        let threads: Vec<_> = (0..6u64)
            .map(|t| {
                let engine = Arc::clone(&engine);
                std::thread::spawn(move || {
                    let mut rng = Rng::new(seed.wrapping_add(t));
                    // (answered version, whether it changed anything, what the action does to
                    // the set of likes)
                    let mut acked: Vec<Acked> = Vec::new();
                    for _ in 0..40 {
                        let pool = |rng: &mut Rng| format!("p{}", rng.below(30));
                        let (input, action, likes, unlikes, replace) = match rng.below(3) {
                            0 => {
                                let likes: Vec<String> = (0..rng.below(6)).map(|_| pool(&mut rng)).collect();
                                let input = json!({"userId": "mixed",
                                    "likes": likes.iter().map(|t| json!({"trackId": t})).collect::<Vec<_>>()});
                                (input, "sync", likes, Vec::new(), true)
                            }
                            1 => {
                                let likes = vec![pool(&mut rng), pool(&mut rng)];
                                let input = json!({"userId": "mixed",
                                    "likes": likes.iter().map(|t| json!({"trackId": t})).collect::<Vec<_>>()});
                                (input, "merge", likes, Vec::new(), false)
                            }
                            _ => {
                                let unlikes = vec![pool(&mut rng)];
                                let input = json!({"userId": "mixed", "unlikes": unlikes});
                                (input, "merge", Vec::new(), unlikes, false)
                            }
                        };
                        let answer = engine.invoke("LibraryCache", action, input).result;
                        if let Some((v, changed)) = answered(action, answer) {
                            acked.push(((v, !changed), likes, unlikes, replace));
                        }
                    }
                    acked
                })
            })
            .collect();
        // Queries while the writers replace and change the likes: each reads one state.
        let writing = Arc::new(AtomicBool::new(true));
        let reader = {
            let engine = Arc::clone(&engine);
            let writing = Arc::clone(&writing);
            std::thread::spawn(move || {
                while writing.load(Ordering::SeqCst) {
                    for query in ["_getLiked", "_getLikes", "_getStatus", "_getChanges"] {
                        if let Err(e) = engine.query("LibraryCache", query, json!({"userId": "mixed"})) {
                            panic!("{query} during writes was refused: {e}");
                        }
                    }
                }
            })
        };
        let mut acked: Vec<Acked> = threads.into_iter().flat_map(|t| t.join().expect("writer")).collect();
        writing.store(false, Ordering::SeqCst);
        reader.join().expect("reader");
        // In version order; an action that changed nothing answered the version it found, and
        // goes after the action that made it.
        acked.sort_by_key(|a| a.0);
        let versions: Vec<u64> = acked.iter().filter(|a| !a.0 .1).map(|a| a.0 .0).collect();
        let distinct: HashSet<u64> = versions.iter().copied().collect();
        assert_eq!(
            distinct.len(),
            versions.len(),
            "two actions that changed something answered the same version"
        );
        assert!(versions.iter().all(|v| *v > start_version));
        assert!(acked.iter().all(|a| a.0 .0 >= start_version));
        // Replay the acknowledged actions in version order on a plain set; one that changed
        // nothing must change nothing there too.
        let mut model: BTreeSet<String> = BTreeSet::new();
        for ((version, unchanged), likes, unlikes, replace) in &acked {
            let before = model.clone();
            if *replace {
                model = likes.iter().cloned().collect();
            } else {
                model.extend(likes.iter().cloned());
                for u in unlikes {
                    model.remove(u);
                }
            }
            if *unchanged {
                assert_eq!(
                    model, before,
                    "an action answered {version} unchanged but changes the likes there"
                );
            }
        }
        let now: BTreeSet<String> = liked(&engine, "mixed").into_iter().collect();
        assert_eq!(
            now, model,
            "the final likes are not the acknowledged actions in version order"
        );
        let head = engine
            .store()
            .view("LibraryCache")
            .stream_version("mixed")
            .expect("head");
        assert_eq!(
            versions.last().copied(),
            Some(head),
            "the last answered version is the head"
        );
        println!("one user, syncs and merges: {} actions acknowledged", acked.len());
    });
}

fn concurrent_users_never_leak_into_each_other(store: TestStore) {
    server::within(DEADLINE, move || {
        let engine = Arc::new(store.engine());
        // A bystander nobody touches, sharing tracks and a playlist id with the writers.
        ok(
            &engine,
            "LibraryCache.ingest",
            json!({"userId": "bystander",
            "tracks": [{"id": "shared-1", "title": "Shared"}],
            "likes": [{"trackId": "shared-1", "likedAt": "2025-01-01T00:00:00Z"}],
            "plays": [{"trackId": "shared-1", "playedAt": "2025-01-02T00:00:00Z"}],
            "playlists": [{"id": "pl-shared", "name": "Both", "entries": ["shared-1"]}]}),
        );
        let before = snapshot(&engine, "bystander");
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let engine = Arc::clone(&engine);
                std::thread::spawn(move || {
                    let user = format!("w{t}");
                    ok(&engine, "LibraryCache.ingest", json!({"userId": user}));
                    let mut mine: BTreeSet<String> = BTreeSet::new();
                    for i in 0..40 {
                        let track = format!("{user}-{i}");
                        if i % 8 == 7 {
                            // A complete read that keeps the likes so far, touching the shared
                            // track and playlist too.
                            let likes: Vec<Value> = mine.iter().map(|t| json!({"trackId": t})).collect();
                            ok(
                                &engine,
                                "LibraryCache.sync",
                                json!({"userId": user, "likes": likes,
                                "tracks": [{"id": "shared-1", "title": "Shared"}],
                                "plays": [{"trackId": "shared-1", "playedAt": "2025-02-01T00:00:00Z"}],
                                "playlists": [{"id": "pl-shared", "name": "Both", "entries": ["shared-1"]}]}),
                            );
                        } else {
                            ok(
                                &engine,
                                "LibraryCache.merge",
                                json!({"userId": user,
                                "likes": [{"trackId": track}, {"trackId": "shared-1"}]}),
                            );
                            mine.insert(track);
                            mine.insert("shared-1".to_string());
                        }
                    }
                    if t % 2 == 0 {
                        ok(&engine, "LibraryCache.clear", json!({"userId": user}));
                        mine.clear();
                    }
                    (user, mine)
                })
            })
            .collect();
        for t in threads {
            let (user, mine) = t.join().expect("writer");
            if mine.is_empty() {
                let code = common::refused(&engine, "LibraryCache._getLiked", json!({"userId": user}));
                assert_eq!(code, "USER_NOT_FOUND", "{user} was cleared");
                continue;
            }
            let now: BTreeSet<String> = liked(&engine, &user).into_iter().collect();
            assert_eq!(now, mine, "{user}: likes are not exactly its own");
        }
        assert_eq!(
            snapshot(&engine, "bystander"),
            before,
            "the bystander's library changed"
        );
    });
}

fn a_reader_tailing_the_log_never_skips_an_event(store: TestStore) {
    server::within(DEADLINE, move || {
        let engine = Arc::new(store.engine());
        for w in 0..4 {
            ok(&engine, "LibraryCache.ingest", json!({"userId": format!("w{w}")}));
        }
        ok(&engine, "LibraryCache.ingest", json!({"userId": "hot"}));
        let checkpoint = engine.store().last_seq().expect("seq");
        let done = Arc::new(AtomicBool::new(false));
        let reader = {
            let engine = Arc::clone(&engine);
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                let mut after = checkpoint;
                let mut seen = Vec::new();
                let mut reads = 0u64;
                loop {
                    // Read the flag before the page: once writers are done and a page comes back
                    // empty, nothing more can come.
                    let finished = done.load(Ordering::SeqCst);
                    let page = engine.store().read_log(after, 7).expect("read log");
                    reads += 1;
                    for e in &page {
                        assert_eq!(e.meta.seq, after + 1, "the tail skipped from {after} to {}", e.meta.seq);
                        after = e.meta.seq;
                        seen.push(e.clone());
                    }
                    if page.is_empty() {
                        if finished {
                            break;
                        }
                        std::thread::yield_now();
                    }
                }
                (seen, reads)
            })
        };
        let writers: Vec<_> = (0..6)
            .map(|t| {
                let engine = Arc::clone(&engine);
                std::thread::spawn(move || {
                    for i in 0..50 {
                        let user = if i % 2 == 0 {
                            "hot".to_string()
                        } else {
                            format!("w{}", t % 4)
                        };
                        let input = json!({"userId": user, "likes": [{"trackId": format!("t{t}-{i}")}],
                            "tracks": [{"id": format!("t{t}-{i}")}]});
                        version_or_conflict("merge", engine.invoke("LibraryCache", "merge", input).result);
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().expect("writer");
        }
        done.store(true, Ordering::SeqCst);
        let (seen, reads) = reader.join().expect("reader");
        let last = engine.store().last_seq().expect("seq");
        assert_eq!(
            seen.last().map(|e| e.meta.seq),
            Some(last),
            "the tail did not reach the last event"
        );
        assert_eq!(seen.len() as u64, last - checkpoint);
        // What the tail saw is what the log holds.
        let log = engine.store().read_log(checkpoint, usize::MAX).expect("read log");
        assert!(seen == log, "the tail saw different events from the log");
        println!("tail: {} events in {reads} reads, none skipped", seen.len());
    });
}

fn concurrent_merges_over_http_lose_nothing_and_users_stay_apart(store: TestStore) {
    server::within(DEADLINE, move || {
        let server = Server::start(store.arg(), &[]);
        for user in ["hot", "h0", "h1", "h2", "h3"] {
            assert_eq!(
                server.post("/api/LibraryCache/ingest", &json!({"userId": user})).status,
                200
            );
        }
        let base = server.base.clone();
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let base = base.clone();
                std::thread::spawn(move || {
                    let http = server::client();
                    let mut acked: Vec<(String, String)> = Vec::new();
                    for i in 0..40 {
                        let user = if i % 2 == 0 {
                            "hot".to_string()
                        } else {
                            format!("h{}", t % 4)
                        };
                        let track = format!("t{t}-{i}");
                        let (path, body) = if i % 3 == 0 {
                            ("/api/like", json!({"userId": user, "trackId": track}))
                        } else {
                            (
                                "/api/LibraryCache/merge",
                                json!({"userId": user, "likes": [{"trackId": track}]}),
                            )
                        };
                        let r = server::send(&http, &base, path, body.to_string().into_bytes(), None).expect("request");
                        match r.status {
                            200 => acked.push((user, track)),
                            409 if r.body["code"] == "CONCURRENT_UPDATE" => {}
                            _ => panic!("{path} {body}: {} {}", r.status, r.body),
                        }
                    }
                    acked
                })
            })
            .collect();
        let acked: Vec<(String, String)> = threads.into_iter().flat_map(|t| t.join().expect("writer")).collect();
        for user in ["hot", "h0", "h1", "h2", "h3"] {
            let r = server.post("/api/LibraryCache/_getLiked", &json!({"userId": user}));
            let now: BTreeSet<String> = r.body["trackIds"]
                .as_array()
                .expect("ids")
                .iter()
                .map(|v| v.as_str().expect("id").to_string())
                .collect();
            let mine: BTreeSet<String> = acked
                .iter()
                .filter(|(u, _)| u == user)
                .map(|(_, t)| t.clone())
                .collect();
            assert_eq!(now, mine, "{user}: the likes are not exactly the acknowledged ones");
        }
        println!("http: {} of 320 writes acknowledged", acked.len());
    });
}

on_each_store!(
    concurrent_merges_of_distinct_likes_on_one_user_lose_nothing,
    concurrent_syncs_and_merges_on_one_user_apply_in_version_order,
    concurrent_users_never_leak_into_each_other,
    a_reader_tailing_the_log_never_skips_an_event,
    concurrent_merges_over_http_lose_nothing_and_users_stay_apart,
);
