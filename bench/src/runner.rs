//! Runs the benchmark's sequence of operations against one cache backend on one workload, checks every
//! answer against the workload, and returns how long each operation took.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::cache::{Backend, Cache};
use crate::error::BenchError;
use crate::model::Body;
use crate::workload::Workload;

/// The user every benchmark library belongs to.
pub const USER: &str = "user:bench";

/// How long one operation took (the median of its runs), in milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    pub name: String,
    pub ms: f64,
}

/// How many times to run each kind of operation, and where caches may write.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Prefix of every measurement name, e.g. `large` gives `large/ingest`.
    pub label: String,
    /// Runs of each cheap operation (queries, merges, cold starts); the median is reported.
    pub reps: usize,
    /// Runs of each full-snapshot sync (these rewrite or re-check the whole library).
    pub sync_reps: usize,
    /// Ingests, each into a fresh directory.
    pub ingest_runs: usize,
    /// Rebuilds (for a cache that has one).
    pub rebuild_runs: usize,
    /// How many likes change in the "changed likes" syncs and how many a merge adds.
    pub k: usize,
    /// Scratch directory; the backend's caches are created under `<work_dir>/<label>/<backend>`.
    pub work_dir: PathBuf,
    /// Keep the caches on disk after the run (for inspection).
    pub keep: bool,
}

/// The measurements of one run, plus the size of the cache files after the ingest and at the end.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    pub measurements: Vec<Measurement>,
    /// Bytes on disk right after the (last) ingest.
    pub bytes_after_ingest: u64,
    /// Bytes on disk at the end of the run (after the syncs, merges and cold starts).
    pub bytes_at_end: u64,
    /// The projection rebuild, for a cache that has one.
    pub rebuild: Option<Rebuild>,
}

/// A rebuild: how many events were replayed, and how long it took (the median of its runs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rebuild {
    pub events: u64,
    pub ms: f64,
}

impl Rebuild {
    /// Events replayed per second.
    pub fn events_per_second(&self) -> f64 {
        if self.ms > 0.0 {
            self.events as f64 / (self.ms / 1_000.0)
        } else {
            0.0
        }
    }
}

/// The cost floors of every update (the median of `reps` parses each, nothing stored):
/// `<label>/parse_ingest_json`, the ingest JSON parsed into the concept's typed input (what an
/// ingest cannot avoid), and `<label>/parse_ingest_json_value`, parsed into a `serde_json::Value`
/// (the first step of the service's HTTP handler, which then decodes the value into the typed input).
pub fn parse_floors(label: &str, body: &[u8], reps: usize) -> Result<Vec<Measurement>, BenchError> {
    let mut typed = Vec::with_capacity(reps.max(1));
    let mut value = Vec::with_capacity(reps.max(1));
    for _ in 0..reps.max(1) {
        let start = Instant::now();
        let parsed: Body = serde_json::from_slice(body)?;
        typed.push(elapsed_ms(start));
        drop(parsed);
        let start = Instant::now();
        let parsed: serde_json::Value = serde_json::from_slice(body)?;
        value.push(elapsed_ms(start));
        drop(parsed);
    }
    Ok(vec![
        Measurement {
            name: format!("{label}/parse_ingest_json"),
            ms: median(&mut typed),
        },
        Measurement {
            name: format!("{label}/parse_ingest_json_value"),
            ms: median(&mut value),
        },
    ])
}

/// Measures `backend` on `workload`: ingest (fresh directories), `_getLiked`, `_getPlaylist`, an unchanged
/// full sync, full syncs with `k` changed likes, likes-only syncs with `k` changed likes, merges of `k`
/// new likes, a rebuild (if the cache has one), and a cold start (open + first `_getLiked`). Every answer
/// is checked; a wrong one is an error.
pub fn run(backend: &dyn Backend, workload: &Workload, cfg: &RunConfig) -> Result<RunOutcome, BenchError> {
    run_with(backend, workload, cfg, &mut |_| Ok(()))
}

/// [`run`], calling `after_ingest` with the cache right after the ingest has been checked, while the cache
/// holds exactly the workload (the HTTP measurements serve it then). What it does is not timed here and
/// must not change the cache.
pub fn run_with(
    backend: &dyn Backend,
    workload: &Workload,
    cfg: &RunConfig,
    after_ingest: &mut dyn FnMut(&mut dyn Cache) -> Result<(), BenchError>,
) -> Result<RunOutcome, BenchError> {
    let base = cfg.work_dir.join(&cfg.label).join(backend.name());
    remove_dir(&base)?;
    let check = Checker { cache: backend.name() };
    let mut out = Vec::new();
    let mut record = |name: &str, times: &mut Vec<f64>| {
        out.push(Measurement {
            name: format!("{}/{name}", cfg.label),
            ms: median(times),
        });
    };

    // Ingest, each time into a fresh directory; the last one is kept for the rest of the run.
    let body = workload.ingest_bytes(USER)?;
    let mut times = Vec::new();
    let mut kept: Option<(Box<dyn Cache>, PathBuf)> = None;
    for i in 0..cfg.ingest_runs.max(1) {
        if let Some((cache, dir)) = kept.take() {
            drop(cache);
            backend.wait_closed(&dir)?;
            remove_dir(&dir)?;
        }
        let dir = base.join(format!("ingest-{i}"));
        let mut cache = backend.open(&dir)?;
        let start = Instant::now();
        cache.ingest(&body)?;
        times.push(elapsed_ms(start));
        kept = Some((cache, dir));
    }
    record("ingest", &mut times);
    let Some((mut cache, dir)) = kept else {
        return Err(check.wrong("ingest", "no ingest ran".to_owned()));
    };
    let bytes_after_ingest = cache.bytes_on_disk()?;
    let expected = workload.expected_liked();
    check.liked(cache.as_mut(), "ingest", &expected)?;
    after_ingest(cache.as_mut())?;
    check.liked(cache.as_mut(), "ingest", &expected)?;

    record("get_liked", &mut repeat(cfg.reps, |_| cache.get_liked(USER).map(drop))?);
    let playlists = &workload.playlists;
    if !playlists.is_empty() {
        let mut times = repeat(cfg.reps, |i| {
            cache.get_playlist(&playlists[i % playlists.len()].id).map(drop)
        })?;
        record("get_playlist", &mut times);
        for p in playlists {
            let got = cache.get_playlist(&p.id)?;
            if got != p.entries {
                return Err(check.wrong(
                    "get_playlist",
                    format!("{}: {} entries instead of {}", p.id, got.len(), p.entries.len()),
                ));
            }
        }
    }

    record("sync_unchanged", &mut repeat(cfg.sync_reps, |_| cache.sync(&body))?);
    check.liked(cache.as_mut(), "sync_unchanged", &expected)?;

    // Syncs that change k likes: alternate between the changed snapshot and the original, ending on the
    // original, so that every run changes exactly k likes.
    let changed = workload.with_changed_likes(cfg.k, 1);
    let changed_expected = changed.expected_liked();
    let k = cfg.k;
    for (name, changed_body, original_body) in [
        (
            format!("sync_full_{k}_likes_changed"),
            changed.ingest_bytes(USER)?,
            body.clone(),
        ),
        (
            format!("sync_likes_only_{k}_changed"),
            likes_only(&changed)?,
            likes_only(workload)?,
        ),
    ] {
        let mut times = Vec::new();
        for _ in 0..cfg.sync_reps.max(1) {
            times.push(time(|| cache.sync(&changed_body))?);
            check.liked(cache.as_mut(), &name, &changed_expected)?;
            times.push(time(|| cache.sync(&original_body))?);
        }
        record(&name, &mut times);
        check.liked(cache.as_mut(), &name, &expected)?;
    }

    let deltas = (0..cfg.reps.max(1))
        .map(|i| workload.new_likes_batch(k, i).merge_bytes(USER))
        .collect::<Result<Vec<_>, _>>()?;
    record(
        &format!("merge_{k}_likes"),
        &mut repeat(cfg.reps, |i| cache.merge(&deltas[i]))?,
    );
    let liked = cache.get_liked(USER)?;
    let newest = workload.new_likes_batch(k, cfg.reps.max(1) - 1);
    let newest_ids: Vec<&str> = newest.likes.iter().map(|l| l.track_id.as_str()).collect();
    let total = expected.len() + k * cfg.reps.max(1);
    if liked.len() != total || !liked.iter().zip(&newest_ids).all(|(a, b)| a == b) {
        return Err(check.wrong(
            "merge",
            format!("{} liked, expected {total} led by the last delta", liked.len()),
        ));
    }

    // The rebuild (a cache that has none answers `None` at once): replay everything, same answers.
    let mut rebuilt = None;
    let mut times = Vec::new();
    for _ in 0..cfg.rebuild_runs.max(1) {
        let start = Instant::now();
        let Some(events) = cache.rebuild()? else {
            break;
        };
        times.push(elapsed_ms(start));
        rebuilt = Some(events);
        if cache.get_liked(USER)? != liked {
            return Err(check.wrong("rebuild", "the liked list is not the same after it".to_owned()));
        }
    }
    let rebuild = rebuilt.map(|events| Rebuild {
        events,
        ms: median(&mut times),
    });
    if rebuild.is_some() {
        record("rebuild", &mut times);
    }

    drop(cache);
    let mut times = Vec::new();
    let mut cache: Option<Box<dyn Cache>> = None;
    for _ in 0..cfg.reps.max(1) {
        drop(cache.take());
        backend.wait_closed(&dir)?;
        let start = Instant::now();
        let (opened, liked) = backend.open_and_first_get_liked(&dir, USER)?;
        times.push(elapsed_ms(start));
        if liked.len() != total {
            return Err(check.wrong("cold start", format!("{} liked, expected {total}", liked.len())));
        }
        cache = Some(opened);
    }
    record("cold_open_get_liked", &mut times);
    let bytes_at_end = match &cache {
        Some(c) => c.bytes_on_disk()?,
        None => 0,
    };
    drop(cache);
    backend.wait_closed(&dir)?;
    if !cfg.keep {
        remove_dir(&base)?;
    }
    Ok(RunOutcome {
        measurements: out,
        bytes_after_ingest,
        bytes_at_end,
        rebuild,
    })
}

/// A sync body carrying only the likes of `w` (tracks, plays and playlists are left as they are).
fn likes_only(w: &Workload) -> Result<Vec<u8>, BenchError> {
    let mut body = w.ingest_body(USER);
    body.tracks = None;
    body.plays = None;
    body.playlists = None;
    Ok(serde_json::to_vec(&body)?)
}

struct Checker<'a> {
    cache: &'a str,
}

impl Checker<'_> {
    fn wrong(&self, operation: &str, detail: String) -> BenchError {
        BenchError::WrongAnswer {
            cache: self.cache.to_owned(),
            operation: operation.to_owned(),
            detail,
        }
    }

    fn liked(&self, cache: &mut dyn Cache, after: &str, expected: &[String]) -> Result<(), BenchError> {
        let got = cache.get_liked(USER)?;
        if got == expected {
            return Ok(());
        }
        let first_diff = got
            .iter()
            .zip(expected)
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(expected.len()));
        Err(self.wrong(
            &format!("get_liked after {after}"),
            format!(
                "{} ids instead of {}, first difference at {first_diff}",
                got.len(),
                expected.len()
            ),
        ))
    }
}

fn time(f: impl FnOnce() -> Result<(), BenchError>) -> Result<f64, BenchError> {
    let start = Instant::now();
    f()?;
    Ok(elapsed_ms(start))
}

fn repeat(n: usize, mut f: impl FnMut(usize) -> Result<(), BenchError>) -> Result<Vec<f64>, BenchError> {
    (0..n.max(1)).map(|i| time(|| f(i))).collect()
}

fn elapsed_ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1_000.0
}

/// The median (the mean of the middle two for an even count); 0 for none.
pub fn median(times: &mut [f64]) -> f64 {
    times.sort_by(f64::total_cmp);
    match times.len() {
        0 => 0.0,
        n if n % 2 == 1 => times[n / 2],
        n => (times[n / 2 - 1] + times[n / 2]) / 2.0,
    }
}

fn remove_dir(dir: &Path) -> Result<(), BenchError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(BenchError::io("remove", dir)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&mut []), 0.0);
    }
}
