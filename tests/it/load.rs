//! A bounded loopback load test against the real server binary: 16 clients for 5 s (20 s with
//! `LIBRARYCACHE_LONG=1`, or `LIBRARYCACHE_LOAD_SECS`), mixing reads (`_getLiked`, `/api/liked`)
//! and writes (`merge` of a new like, mostly on the client's own user, sometimes on a user
//! every client writes). Asserted: no 5xx, no other unexpected status, and every acknowledged
//! merge's like is present at the end. Throughput and latency are printed, never asserted.

use crate::common;

use common::server::{self, percentile, Rng, Server};
use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

const CLIENTS: usize = 16;

#[derive(Default)]
struct Tally {
    latencies: BTreeMap<&'static str, Vec<Duration>>,
    statuses: BTreeMap<(&'static str, u16), u64>,
    /// (user, track) of every merge answered 200.
    acked: Vec<(String, String)>,
    unexpected: Vec<String>,
}

fn duration() -> Duration {
    let secs = std::env::var("LIBRARYCACHE_LOAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if server::long() { 20 } else { 5 });
    Duration::from_secs(secs)
}

#[test]
fn sixteen_clients_of_mixed_reads_and_writes_get_no_5xx_and_lose_no_write() {
    let seed = server::seed("load");
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    // Each client's user starts with 500 likes; one more user is written by everyone.
    for c in 0..=CLIENTS {
        let user = if c == CLIENTS {
            "common".to_string()
        } else {
            format!("load{c}")
        };
        let lib = common::big_library(&user, 500, 5);
        let r = server.post("/api/LibraryCache/ingest", &lib);
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let run_for = duration();
    let base = server.base.clone();
    let started = Instant::now();
    let threads: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let base = base.clone();
            std::thread::spawn(move || {
                let http = server::client();
                let mut rng = Rng::new(seed.wrapping_add(c as u64));
                let mut tally = Tally::default();
                let mut n = 0;
                while started.elapsed() < run_for {
                    let own = format!("load{c}");
                    let (kind, path, body, like) = match rng.below(10) {
                        0..=3 => (
                            "_getLiked",
                            "/api/LibraryCache/_getLiked",
                            json!({"userId": own, "limit": 100}),
                            None,
                        ),
                        4..=6 => ("/api/liked", "/api/liked", json!({"userId": own}), None),
                        _ => {
                            n += 1;
                            let user = if rng.chance(25) { "common".to_string() } else { own };
                            let track = format!("c{c}-n{n}");
                            let body = json!({"userId": user, "tracks": [{"id": track, "title": "Load"}],
                                "likes": [{"trackId": track}]});
                            ("merge", "/api/LibraryCache/merge", body, Some((user, track)))
                        }
                    };
                    let t0 = Instant::now();
                    let reply = server::send(&http, &base, path, body.to_string().into_bytes(), None);
                    let took = t0.elapsed();
                    let status = match reply {
                        Ok(r) => {
                            let expected = r.status == 200
                                || (kind == "merge" && r.status == 409 && r.body["code"] == "CONCURRENT_UPDATE");
                            if !expected {
                                tally.unexpected.push(format!("{kind}: {} {}", r.status, r.body));
                            }
                            if r.status == 200 {
                                if let Some(like) = like {
                                    tally.acked.push(like);
                                }
                            }
                            r.status
                        }
                        Err(e) => {
                            tally.unexpected.push(format!("{kind}: transport error {e}"));
                            0
                        }
                    };
                    tally.latencies.entry(kind).or_default().push(took);
                    *tally.statuses.entry((kind, status)).or_default() += 1;
                }
                tally
            })
        })
        .collect();
    let mut all = Tally::default();
    for t in threads {
        let t = t.join().expect("client");
        for (k, mut v) in t.latencies {
            all.latencies.entry(k).or_default().append(&mut v);
        }
        for (k, v) in t.statuses {
            *all.statuses.entry(k).or_default() += v;
        }
        all.acked.extend(t.acked);
        all.unexpected.extend(t.unexpected);
    }
    let elapsed = started.elapsed();

    let total: usize = all.latencies.values().map(Vec::len).sum();
    println!(
        "load: {CLIENTS} clients for {elapsed:.1?}: {total} requests, {:.0} requests/s",
        total as f64 / elapsed.as_secs_f64()
    );
    for (kind, lat) in all.latencies.iter_mut() {
        lat.sort();
        println!(
            "load:   {kind:<10} {:>6} requests {:>7.0}/s  p50 {:>8.2?}  p99 {:>8.2?}  max {:>8.2?}",
            lat.len(),
            lat.len() as f64 / elapsed.as_secs_f64(),
            percentile(lat, 50.0),
            percentile(lat, 99.0),
            lat.last().copied().unwrap_or_default()
        );
    }
    println!("load:   statuses {:?}", all.statuses);

    let server_errors: Vec<_> = all.statuses.iter().filter(|((_, s), _)| *s >= 500).collect();
    assert!(server_errors.is_empty(), "5xx answers: {server_errors:?}");
    assert!(
        all.unexpected.is_empty(),
        "{} unexpected answers, e.g. {:?}",
        all.unexpected.len(),
        &all.unexpected[..all.unexpected.len().min(5)]
    );
    assert!(!all.acked.is_empty(), "no write was acknowledged");

    // Every acknowledged merge's like is there.
    let mut users: Vec<String> = (0..CLIENTS).map(|c| format!("load{c}")).collect();
    users.push("common".into());
    let mut lost = Vec::new();
    for user in &users {
        let r = server.post("/api/LibraryCache/_getLiked", &json!({"userId": user}));
        assert_eq!(r.status, 200);
        let now: HashSet<&str> = r.body["trackIds"]
            .as_array()
            .expect("ids")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        lost.extend(
            all.acked
                .iter()
                .filter(|(u, t)| u == user && !now.contains(t.as_str()))
                .cloned(),
        );
    }
    assert!(lost.is_empty(), "acknowledged merges lost: {lost:?}");
    println!("load:   {} acknowledged merges, all present", all.acked.len());
}
