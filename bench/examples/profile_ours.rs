//! Runs one LibraryCache operation in a loop on the large (or small) workload, for a profiler:
//!
//! ```sh
//! cargo build --release -p librarycache-bench --example profile_ours
//! perf record -g -o perf.data target/release/examples/profile_ours ingest large 1
//! target/release/examples/profile_ours get_liked,get_liked_thread large 10 sqlite
//! ```
//!
//! Operations (several may be given, comma-separated, each run N times in turn): `ingest` (into a
//! fresh store each time), `get_liked`, `get_liked_thread`, `get_playlist`, `merge`, `sync_unchanged`,
//! `sync_likes_only`, `cold_start`, `rebuild`. The store is set up (ingested) before the measured
//! loops; each iteration's time is printed. Filter a profile by the bench function on the stack
//! (e.g. `Cache>::merge`) to see one operation.

use std::path::PathBuf;
use std::time::Instant;

use librarycache_bench::runner::USER;
use librarycache_bench::{Backend, BenchError, Cache, OursBackend, SqliteBackend, Workload};

fn main() -> Result<(), BenchError> {
    let args: Vec<String> = std::env::args().collect();
    let ops = args.get(1).map(String::as_str).unwrap_or("get_liked");
    let size = args.get(2).map(String::as_str).unwrap_or("large");
    let n: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(10);
    let w = if size == "small" {
        Workload::small(42)
    } else {
        Workload::large(42)
    };
    let body = w.ingest_bytes(USER)?;
    // A fourth argument `sqlite` runs the same loops on the SQLite baseline.
    let backend: Box<dyn Backend> = match args.get(4).map(String::as_str) {
        Some("sqlite") => Box::new(SqliteBackend),
        _ => Box::new(OursBackend::new()),
    };
    let root = PathBuf::from("target/profile-work");
    let _ = std::fs::remove_dir_all(&root);
    let dir = root.join("store");
    let mut cache: Box<dyn Cache> = backend.open(&dir)?;
    if !ops.split(',').any(|op| op == "ingest") {
        cache.ingest(&body)?;
    }
    let mut likes_only = w.ingest_body(USER);
    likes_only.tracks = None;
    likes_only.plays = None;
    likes_only.playlists = None;
    let likes_only = serde_json::to_vec(&likes_only)?;
    for (i, op) in ops.split(',').flat_map(|op| (0..n).map(move |i| (i, op))) {
        let start = Instant::now();
        match op {
            "ingest" => {
                drop(cache);
                let fresh = root.join(format!("ingest-{i}"));
                cache = backend.open(&fresh)?;
                let start = Instant::now();
                cache.ingest(&body)?;
                eprintln!("ingest {i}: {:.3} ms", start.elapsed().as_secs_f64() * 1e3);
                continue;
            }
            "get_liked" => drop(cache.get_liked(USER)?),
            // The same query on another thread (another malloc arena, as a server's worker thread has).
            "get_liked_thread" => {
                let (back, took) = std::thread::spawn(move || {
                    let start = Instant::now();
                    let answer = cache.get_liked(USER).map(drop);
                    (cache, answer.map(|()| start.elapsed()))
                })
                .join()
                .map_err(|_| BenchError::WrongAnswer {
                    cache: "any".into(),
                    operation: "get_liked".into(),
                    detail: "the thread panicked".into(),
                })?;
                cache = back;
                eprintln!("  (on its thread: {:.3} ms)", took?.as_secs_f64() * 1e3);
            }
            "get_playlist" => drop(cache.get_playlist(&w.playlists[i % w.playlists.len()].id)?),
            "merge" => cache.merge(&w.new_likes_batch(10, i).merge_bytes(USER)?)?,
            "sync_unchanged" => cache.sync(&body)?,
            "sync_likes_only" => cache.sync(&likes_only)?,
            "rebuild" => drop(cache.rebuild()?),
            "cold_start" => {
                drop(cache);
                backend.wait_closed(&dir)?;
                let start = Instant::now();
                let (opened, _) = backend.open_and_first_get_liked(&dir, USER)?;
                eprintln!("cold_start {i}: {:.3} ms", start.elapsed().as_secs_f64() * 1e3);
                cache = opened;
                continue;
            }
            other => panic!("unknown operation {other}"),
        }
        eprintln!("{op} {i}: {:.3} ms", start.elapsed().as_secs_f64() * 1e3);
    }
    drop(cache);
    Ok(())
}
