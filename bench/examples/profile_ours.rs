//! Runs one operation of a cache in a loop on the large (or small) workload, for a profiler:
//!
//! ```sh
//! cargo build --release -p librarycache-bench --example profile_ours
//! perf record -g -o perf.data target/release/examples/profile_ours ingest large 1
//! target/release/examples/profile_ours get_liked,get_liked_thread large 10 sqlite
//! ```
//!
//! Operations (several may be given, comma-separated, each run N times in turn): `ingest` (into a
//! fresh store each time), `get_liked`, `get_liked_thread`, `get_playlist`, `get_plays_all`,
//! `get_plays_200` (or `get_plays_page`), `get_status`, `resolve_playlist` (by name),
//! `get_tracks`, `get_changes`, `liked_request`, `merge`, `merge_1`, `sync_unchanged`,
//! `sync_likes_only`, `cold_start`, `rebuild`. The store is set up (ingested) before the measured
//! loops; each iteration's time is printed. A fourth argument `sqlite` (or `sqlite-normal`) runs
//! the same loops on the SQLite baseline. Filter a profile by the bench function on the stack
//! (e.g. `OursCache as Cache>::merge`) to see one operation.

use std::path::PathBuf;
use std::time::Instant;

use bytes::Bytes;
use librarycache_bench::cache::user_body;
use librarycache_bench::plan::{likes_only, USER};
use librarycache_bench::{BenchError, Cache, CacheKind, Durability, FreshLikes, Query, Workload};
use serde_json::json;

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
    let body = Bytes::from(w.ingest_bytes(USER)?);
    let kind = match args.get(4).map(String::as_str) {
        Some("sqlite") => CacheKind::Sqlite {
            durability: Durability::Full,
        },
        Some("sqlite-normal") => CacheKind::Sqlite {
            durability: Durability::Normal,
        },
        _ => CacheKind::ours(),
    };
    let root = PathBuf::from("target/profile-work");
    let _ = std::fs::remove_dir_all(&root);
    let dir = root.join("store");
    let mut cache: Box<dyn Cache> = kind.open(&dir)?;
    if !ops.split(',').any(|op| op == "ingest") {
        cache.ingest(&body)?;
    }
    let likes_only = Bytes::from(likes_only(&w, USER)?);
    let fresh = FreshLikes::of(&w);
    let user = user_body(USER);
    let all_plays = Bytes::from(json!({"userId": USER, "limit": w.plays.len()}).to_string());
    let plays_200 = Bytes::from(json!({"userId": USER, "limit": 200}).to_string());
    let since = Bytes::from(json!({"userId": USER, "sinceVersion": 1}).to_string());
    let mut next_like = 0;
    for (i, op) in ops.split(',').flat_map(|op| (0..n).map(move |i| (i, op))) {
        let start = Instant::now();
        match op {
            "ingest" => {
                drop(cache);
                kind.wait_closed(&dir)?;
                let fresh_dir = root.join(format!("ingest-{i}"));
                cache = kind.open(&fresh_dir)?;
                let start = Instant::now();
                cache.ingest(&body)?;
                eprintln!("ingest {i}: {:.3} ms", start.elapsed().as_secs_f64() * 1e3);
                continue;
            }
            "get_liked" => drop(cache.query(Query::GetLiked, &user)?),
            // The same query on another thread (another malloc arena, as a server's worker thread has).
            "get_liked_thread" => {
                let mut reader = cache.reader()?;
                let user = user.clone();
                let took = std::thread::spawn(move || {
                    let start = Instant::now();
                    reader.query(Query::GetLiked, &user).map(|_| start.elapsed())
                })
                .join()
                .map_err(|_| BenchError::WrongAnswer {
                    cache: kind.name().into(),
                    operation: "get_liked".into(),
                    detail: "the thread panicked".into(),
                })??;
                eprintln!("  (on its thread: {:.3} ms)", took.as_secs_f64() * 1e3);
            }
            "get_playlist" => {
                let p = &w.playlists[i % w.playlists.len()];
                let body = Bytes::from(json!({"playlistId": p.id}).to_string());
                drop(cache.query(Query::GetPlaylist, &body)?)
            }
            "get_plays_all" => drop(cache.query(Query::GetPlays, &all_plays)?),
            "get_plays_200" | "get_plays_page" => drop(cache.query(Query::GetPlays, &plays_200)?),
            "get_status" => drop(cache.query(Query::GetStatus, &user)?),
            "resolve_playlist" => {
                let p = &w.playlists[(3 + 7 * i) % w.playlists.len()];
                let body = Bytes::from(json!({"userId": USER, "nameOrUri": p.name}).to_string());
                drop(cache.query(Query::ResolvePlaylist, &body)?)
            }
            "get_tracks" => drop(cache.query(Query::GetTracks, &user)?),
            "get_changes" => drop(cache.query(Query::GetChanges, &since)?),
            "liked_request" => drop(cache.query(Query::LikedRequest, &user)?),
            "merge" | "merge_1" => {
                let k = if op == "merge" { 10 } else { 1 };
                let delta = fresh.delta(next_like, k);
                next_like += k;
                drop(cache.merge(&Bytes::from(delta.merge_bytes(USER)?))?)
            }
            "sync_unchanged" => drop(cache.sync(&body)?),
            "sync_likes_only" => drop(cache.sync(&likes_only)?),
            "rebuild" => drop(cache.rebuild()?),
            "cold_start" => {
                drop(cache);
                kind.wait_closed(&dir)?;
                let start = Instant::now();
                cache = kind.open(&dir)?;
                drop(cache.query(Query::GetLiked, &user)?);
                eprintln!("cold_start {i}: {:.3} ms", start.elapsed().as_secs_f64() * 1e3);
                continue;
            }
            other => {
                return Err(BenchError::WrongAnswer {
                    cache: kind.name().into(),
                    operation: other.into(),
                    detail: "not an operation this example knows".into(),
                })
            }
        }
        eprintln!("{op} {i}: {:.3} ms", start.elapsed().as_secs_f64() * 1e3);
    }
    drop(cache);
    Ok(())
}
