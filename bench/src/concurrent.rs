//! Reads during a big write: in one cache's process, a reader thread asks `_getLiked` and
//! `_getPlaylist` of one user (a small library) without pause, while the main thread commits
//! another user's large ingest, then a full sync of it with k changed likes, then (LibraryCache)
//! a rebuild of every projection. Each read's latency is attributed to the write it overlapped;
//! a first stretch without writes gives the undisturbed latency.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::cache::{CacheKind, Query};
use crate::error::BenchError;
use crate::model::Body;
use crate::plan::{read_body, Plan, READER};
use crate::suite::elapsed_ms;

/// How long the reader reads before any write starts.
const IDLE: Duration = Duration::from_millis(500);

/// One stretch of the measurement: the write that ran (none for `idle`), how long it took, and the
/// latencies of the reads that started during it, by query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    pub name: String,
    pub write_ms: f64,
    pub reads_ms: BTreeMap<String, Vec<f64>>,
}

/// A read: which query, when it started (ms since the reader started) and how long it took.
struct Read {
    query: &'static str,
    at_ms: f64,
    took_ms: f64,
}

/// Runs the measurement on a fresh cache of `kind` in `dir`.
pub fn run(kind: &CacheKind, dir: &std::path::Path, plan: &Plan) -> Result<Vec<Phase>, BenchError> {
    let mut cache = kind.open(dir)?;
    let reader_body = read_body(&plan.reader_ingest())?;
    let library: Body = serde_json::from_slice(&reader_body)?;
    cache.ingest(&reader_body)?;
    let liked = Bytes::from(json!({ "userId": READER }).to_string());
    let playlists: Vec<Bytes> = library
        .playlists
        .iter()
        .flatten()
        .map(|p| Bytes::from(json!({ "playlistId": p.id }).to_string()))
        .collect();
    drop((library, reader_body));
    let mut reader = cache.reader()?;
    let expected_len = (
        reader.query(Query::GetLiked, &liked)?.len(),
        playlists
            .iter()
            .map(|p| reader.query(Query::GetPlaylist, p).map(|a| a.len()))
            .collect::<Result<Vec<_>, _>>()?,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let thread = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || -> Result<Vec<Read>, BenchError> {
            let mut reads = Vec::with_capacity(100_000);
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let (query, name, body, want) = if i % 2 == 0 {
                    (Query::GetLiked, "get_liked", &liked, expected_len.0)
                } else {
                    let p = (i / 2) % playlists.len().max(1);
                    match playlists.get(p) {
                        Some(body) => (Query::GetPlaylist, "get_playlist", body, expected_len.1[p]),
                        None => (Query::GetLiked, "get_liked", &liked, expected_len.0),
                    }
                };
                i += 1;
                let at = Instant::now();
                let answer = reader.query(query, body)?;
                let took_ms = elapsed_ms(at);
                if answer.len() != want {
                    return Err(BenchError::WrongAnswer {
                        cache: "reader".to_owned(),
                        operation: name.to_owned(),
                        detail: format!("{} bytes instead of {want} during a write", answer.len()),
                    });
                }
                reads.push(Read {
                    query: name,
                    at_ms: (at - started).as_secs_f64() * 1_000.0,
                    took_ms,
                });
            }
            Ok(reads)
        })
    };
    let mut windows: Vec<(String, f64, f64)> = Vec::new();
    let mut write = |name: &str, f: &mut dyn FnMut() -> Result<(), BenchError>| -> Result<(), BenchError> {
        let from = (Instant::now() - started).as_secs_f64() * 1_000.0;
        let outcome = f();
        let to = (Instant::now() - started).as_secs_f64() * 1_000.0;
        windows.push((name.to_owned(), from, to));
        outcome
    };
    let outcome = (|| -> Result<(), BenchError> {
        write("idle", &mut || {
            std::thread::sleep(IDLE);
            Ok(())
        })?;
        let ingest = read_body(&plan.ingest())?;
        write("ingest", &mut || cache.ingest(&ingest).map(drop))?;
        drop(ingest);
        let changed = read_body(&plan.sync_changed())?;
        write("sync", &mut || cache.sync(&changed).map(drop))?;
        drop(changed);
        if kind.is_ours() {
            write("rebuild", &mut || cache.rebuild().map(drop))?;
        }
        Ok(())
    })();
    stop.store(true, Ordering::Relaxed);
    let reads = thread.join().map_err(|_| BenchError::Backend {
        cache: kind.name().to_owned(),
        source: "the reader thread panicked".into(),
    })?;
    outcome?;
    let reads = reads?;
    drop(cache);
    kind.wait_closed(dir)?;
    Ok(windows
        .into_iter()
        .map(|(name, from, to)| {
            let mut reads_ms: BTreeMap<String, Vec<f64>> = BTreeMap::new();
            for r in reads.iter().filter(|r| r.at_ms >= from && r.at_ms < to) {
                reads_ms.entry(r.query.to_owned()).or_default().push(r.took_ms);
            }
            Phase {
                write_ms: if name == "idle" { 0.0 } else { to - from },
                name,
                reads_ms,
            }
        })
        .collect())
}
