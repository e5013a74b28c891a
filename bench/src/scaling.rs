//! The scaling run (`--scaling`): ingest, rebuild, cold start and disk of LibraryCache and of
//! SQLite (FULL) at several multiples of the large library, and the cost of a sync against the
//! number k of likes it changes; each measurement in worker processes of their own, as in the
//! main run. Writes `target/bench-scaling.json` and the figure (an SVG) for BENCHMARKS.md.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cache::CacheKind;
use crate::error::BenchError;
use crate::machine::Machine;
use crate::plan::{likes_only, USER};
use crate::report::{fmt_ms, RunInfo};
use crate::sqlite_baseline::Durability;
use crate::stats::median;
use crate::svg::{figure, Chart, Series};
use crate::worker::{self, ColdResult, IngestResult, RebuildResult, SyncsResult, Task};
use crate::workload::{Sizes, Workload};

/// What a scaling run measures.
#[derive(Debug, Clone)]
pub struct ScalingOptions {
    /// Multiples of the large library.
    pub factors: Vec<f64>,
    /// Numbers of changed likes for the sync sweep (on the large library).
    pub ks: Vec<usize>,
    pub seed: u64,
    pub cold_reps: usize,
    pub syncs: Option<PathBuf>,
    pub work_dir: PathBuf,
    pub keep: bool,
}

/// One cache at one size.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AtSize {
    pub ingest_ms: f64,
    /// LibraryCache's rebuild.
    pub rebuild_ms: Option<f64>,
    pub rebuild_events: Option<u64>,
    /// The first open after the ingest (and the rebuild), then the median of the cold starts.
    pub cold_first_ms: f64,
    pub cold_ms: f64,
    pub bytes_on_disk: u64,
    /// Peak resident memory of the ingest's process.
    pub ingest_peak_bytes: Option<u64>,
}

/// One size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SizeRow {
    pub factor: f64,
    pub tracks: usize,
    pub likes: usize,
    pub plays: usize,
    pub playlists: usize,
    pub body_bytes: u64,
    pub caches: BTreeMap<String, AtSize>,
}

/// One k of the sync sweep: the median of the sync to the changed snapshot and the one back, by
/// cache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncRow {
    pub k: usize,
    pub likes_only_ms: BTreeMap<String, f64>,
    pub full_ms: BTreeMap<String, f64>,
}

/// The scaling report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalingReport {
    pub machine: Machine,
    pub run: RunInfo,
    /// The workload generator's seed.
    pub seed: u64,
    pub sizes: Vec<SizeRow>,
    pub syncs: Vec<SyncRow>,
}

fn remove_dir(dir: &Path) -> Result<(), BenchError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(BenchError::io("remove", dir)(e)),
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), BenchError> {
    std::fs::write(path, bytes).map_err(BenchError::io("write", path))
}

fn caches(opts: &ScalingOptions) -> [CacheKind; 2] {
    [
        CacheKind::Sqlite {
            durability: Durability::Full,
        },
        CacheKind::Ours {
            syncs: opts.syncs.clone(),
            postgres: None,
        },
    ]
}

/// Runs the scaling measurements.
pub fn run(opts: &ScalingOptions, machine: &Machine) -> Result<ScalingReport, BenchError> {
    let work = opts.work_dir.join("scaling");
    remove_dir(&work)?;
    std::fs::create_dir_all(&work).map_err(BenchError::io("create directory", &work))?;
    let mut report = ScalingReport {
        machine: machine.clone(),
        run: RunInfo::default(),
        seed: opts.seed,
        sizes: Vec::new(),
        syncs: Vec::new(),
    };
    for &factor in &opts.factors {
        let sizes = Sizes::LARGE.scaled(factor);
        eprintln!("scaling {factor}x: generating {} tracks", sizes.tracks);
        let w = Workload::generate(sizes, opts.seed);
        let body = work.join(format!("ingest-{factor}.json"));
        let bytes = w.ingest_bytes(USER)?;
        write(&body, &bytes)?;
        let mut row = SizeRow {
            factor,
            tracks: sizes.tracks,
            likes: sizes.likes,
            plays: sizes.plays,
            playlists: sizes.playlists,
            body_bytes: bytes.len() as u64,
            caches: BTreeMap::new(),
        };
        drop((w, bytes));
        let mut answers = Vec::new();
        for cache in caches(opts) {
            let dir = work.join(format!("{}-{factor}", cache.name()));
            eprintln!("scaling {factor}x: {}", cache.name());
            let ingest: IngestResult = worker::spawn(&Task::Ingest {
                cache: cache.clone(),
                dir: dir.clone(),
                body: body.clone(),
            })?;
            answers.push(ingest.answer.clone());
            let mut at = AtSize {
                ingest_ms: ingest.ms,
                bytes_on_disk: ingest.bytes_on_disk,
                ingest_peak_bytes: ingest.after.peak_bytes,
                ..AtSize::default()
            };
            if cache.is_ours() {
                let rebuilt: RebuildResult = worker::spawn(&Task::Rebuild {
                    cache: cache.clone(),
                    dir: dir.clone(),
                })?;
                at.rebuild_ms = Some(rebuilt.ms);
                at.rebuild_events = rebuilt.events;
                at.bytes_on_disk = rebuilt.bytes_on_disk;
            }
            let cold = Task::Cold {
                cache: cache.clone(),
                dir: dir.clone(),
                user: USER.to_owned(),
            };
            let first: ColdResult = worker::spawn(&cold)?;
            at.cold_first_ms = first.ms;
            let mut times = Vec::new();
            for _ in 0..opts.cold_reps.max(1) {
                let c: ColdResult = worker::spawn(&cold)?;
                if c.answer != first.answer {
                    return Err(BenchError::WrongAnswer {
                        cache: cache.name().to_owned(),
                        operation: "cold start".to_owned(),
                        detail: "the first _getLiked changed between cold starts".to_owned(),
                    });
                }
                times.push(c.ms);
            }
            at.cold_ms = median(&mut times);
            row.caches.insert(cache.name().to_owned(), at);
            if !opts.keep {
                remove_dir(&dir)?;
            }
        }
        if answers.windows(2).any(|p| p[0] != p[1]) {
            return Err(BenchError::WrongAnswer {
                cache: "ours".to_owned(),
                operation: format!("ingest at {factor}x"),
                detail: "the caches' answers differ".to_owned(),
            });
        }
        if !opts.keep {
            std::fs::remove_file(&body).map_err(BenchError::io("remove", &body))?;
        }
        report.sizes.push(row);
    }
    if !opts.ks.is_empty() {
        report.syncs = sync_sweep(opts, &work)?;
    }
    if !opts.keep {
        remove_dir(&work)?;
    }
    Ok(report)
}

/// Syncs of the large library changing k likes (likes only, and the full snapshot), there and
/// back, for each k.
fn sync_sweep(opts: &ScalingOptions, work: &Path) -> Result<Vec<SyncRow>, BenchError> {
    eprintln!("scaling: sync sweep over k = {:?} on the large library", opts.ks);
    let w = Workload::large(opts.seed);
    let ingest = work.join("sweep-ingest.json");
    write(&ingest, &w.ingest_bytes(USER)?)?;
    let back_likes = work.join("sweep-likes-only.json");
    write(&back_likes, &likes_only(&w, USER)?)?;
    let mut bodies = Vec::new();
    for &k in &opts.ks {
        let changed = w.with_changed_likes(k, 1);
        let likes = work.join(format!("sweep-likes-only-{k}.json"));
        write(&likes, &likes_only(&changed, USER)?)?;
        let full = work.join(format!("sweep-full-{k}.json"));
        write(&full, &changed.ingest_bytes(USER)?)?;
        bodies.push((format!("likes_only/{k}/to"), likes));
        bodies.push((format!("likes_only/{k}/back"), back_likes.clone()));
        bodies.push((format!("full/{k}/to"), full));
        bodies.push((format!("full/{k}/back"), ingest.clone()));
    }
    drop(w);
    let mut results: Vec<(String, SyncsResult)> = Vec::new();
    for cache in caches(opts) {
        let dir = work.join(format!("sweep-{}", cache.name()));
        eprintln!("scaling: sync sweep on {}", cache.name());
        let _: IngestResult = worker::spawn(&Task::Ingest {
            cache: cache.clone(),
            dir: dir.clone(),
            body: ingest.clone(),
        })?;
        let syncs: SyncsResult = worker::spawn(&Task::Syncs {
            cache: cache.clone(),
            dir: dir.clone(),
            bodies: bodies.clone(),
        })?;
        results.push((cache.name().to_owned(), syncs));
        if !opts.keep {
            remove_dir(&dir)?;
        }
    }
    if let [(_, a), (_, b)] = results.as_slice() {
        let differ = a.syncs.iter().zip(&b.syncs).find(|(x, y)| x.2 != y.2);
        if let Some((x, _)) = differ {
            return Err(BenchError::WrongAnswer {
                cache: "ours".to_owned(),
                operation: format!("sync {}", x.0),
                detail: "the caches' answers differ".to_owned(),
            });
        }
    }
    let mut rows = Vec::new();
    for &k in &opts.ks {
        let mut row = SyncRow {
            k,
            likes_only_ms: BTreeMap::new(),
            full_ms: BTreeMap::new(),
        };
        for (cache, r) in &results {
            for (kind, target) in [("likes_only", &mut row.likes_only_ms), ("full", &mut row.full_ms)] {
                let mut times: Vec<f64> = r
                    .syncs
                    .iter()
                    .filter(|(name, _, _)| name.starts_with(&format!("{kind}/{k}/")))
                    .map(|(_, ms, _)| *ms)
                    .collect();
                target.insert(cache.clone(), median(&mut times));
            }
        }
        rows.push(row);
    }
    Ok(rows)
}

impl ScalingReport {
    /// Plain-text tables.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:>6} {:>8} {:>9}  {:<12} {:>10} {:>10} {:>10} {:>10} {:>10} {:>9}",
            "size",
            "tracks",
            "body MB",
            "cache",
            "ingest ms",
            "rebuild ms",
            "cold 1st",
            "cold ms",
            "disk MB",
            "peak MB"
        );
        for row in &self.sizes {
            for (cache, at) in &row.caches {
                let _ = writeln!(
                    out,
                    "{:>5}x {:>8} {:>9.1}  {:<12} {:>10} {:>10} {:>10} {:>10} {:>10.1} {:>9}",
                    row.factor,
                    row.tracks,
                    row.body_bytes as f64 / 1e6,
                    cache,
                    fmt_ms(at.ingest_ms),
                    at.rebuild_ms.map_or_else(|| "-".to_owned(), fmt_ms),
                    fmt_ms(at.cold_first_ms),
                    fmt_ms(at.cold_ms),
                    at.bytes_on_disk as f64 / 1e6,
                    at.ingest_peak_bytes
                        .map_or_else(|| "-".to_owned(), |b| format!("{:.0}", b as f64 / 1e6)),
                );
            }
        }
        if !self.syncs.is_empty() {
            let _ = writeln!(
                out,
                "\nsync of the large library with k changed likes (ms, median of there and back)"
            );
            let _ = writeln!(
                out,
                "{:>7}  {:>14} {:>14}  {:>14} {:>14}",
                "k", "ours likes", "FULL likes", "ours full", "FULL full"
            );
            for r in &self.syncs {
                let g = |m: &BTreeMap<String, f64>, c: &str| m.get(c).map_or_else(|| "-".to_owned(), |v| fmt_ms(*v));
                let _ = writeln!(
                    out,
                    "{:>7}  {:>14} {:>14}  {:>14} {:>14}",
                    r.k,
                    g(&r.likes_only_ms, "ours"),
                    g(&r.likes_only_ms, "sqlite-full"),
                    g(&r.full_ms, "ours"),
                    g(&r.full_ms, "sqlite-full")
                );
            }
        }
        out
    }

    /// The figure: ingest and rebuild, cold start and disk against the library's size, and sync
    /// time against k.
    pub fn svg(&self) -> String {
        const OURS: &str = "#1f77b4";
        const SQLITE: &str = "#d62728";
        let by = |cache: &str, f: &dyn Fn(&AtSize) -> Option<f64>| -> Vec<(f64, f64)> {
            self.sizes
                .iter()
                .filter_map(|r| r.caches.get(cache).and_then(f).map(|v| (r.tracks as f64, v)))
                .collect()
        };
        let series = |name: &str, color: &str, dashed: bool, points: Vec<(f64, f64)>| Series {
            name: name.to_owned(),
            color: color.to_owned(),
            dashed,
            points,
        };
        let size_chart = |title: &str, y: &str, series: Vec<Series>| Chart {
            title: title.to_owned(),
            x_label: "tracks in the library (log)".to_owned(),
            y_label: y.to_owned(),
            log_x: true,
            log_y: true,
            series,
        };
        let sweep = |cache: &str, full: bool| -> Vec<(f64, f64)> {
            self.syncs
                .iter()
                .filter_map(|r| {
                    let m = if full { &r.full_ms } else { &r.likes_only_ms };
                    m.get(cache).map(|v| (r.k as f64, *v))
                })
                .collect()
        };
        let charts = vec![
            size_chart(
                "Ingest and rebuild",
                "ms (log)",
                vec![
                    series("ours ingest", OURS, false, by("ours", &|a| Some(a.ingest_ms))),
                    series(
                        "SQLite FULL ingest",
                        SQLITE,
                        false,
                        by("sqlite-full", &|a| Some(a.ingest_ms)),
                    ),
                    series("ours rebuild", OURS, true, by("ours", &|a| a.rebuild_ms)),
                ],
            ),
            size_chart(
                "Cold start (open + first _getLiked)",
                "ms (log)",
                vec![
                    series("ours", OURS, false, by("ours", &|a| Some(a.cold_ms))),
                    series("SQLite FULL", SQLITE, false, by("sqlite-full", &|a| Some(a.cold_ms))),
                    series("ours, first open", OURS, true, by("ours", &|a| Some(a.cold_first_ms))),
                ],
            ),
            size_chart(
                "Bytes on disk after the ingest and rebuild",
                "MB (log)",
                vec![
                    series("ours", OURS, false, by("ours", &|a| Some(a.bytes_on_disk as f64 / 1e6))),
                    series(
                        "SQLite FULL",
                        SQLITE,
                        false,
                        by("sqlite-full", &|a| Some(a.bytes_on_disk as f64 / 1e6)),
                    ),
                ],
            ),
            Chart {
                title: "Sync of the large library".to_owned(),
                x_label: "likes changed, k (log)".to_owned(),
                y_label: "ms (log)".to_owned(),
                log_x: true,
                log_y: true,
                series: vec![
                    series("ours, likes only", OURS, false, sweep("ours", false)),
                    series("SQLite, likes only", SQLITE, false, sweep("sqlite-full", false)),
                    series("ours, full snapshot", OURS, true, sweep("ours", true)),
                    series("SQLite, full snapshot", SQLITE, true, sweep("sqlite-full", true)),
                ],
            },
        ];
        let caption = format!(
            "librarycache-bench --scaling, {}, seed {}; {}, {} cores, load average {:.1} at the start (a shared machine).\nOne run: ingest and rebuild once each, cold starts the median of several, syncs the median of there and back. SQLite's bytes include its WAL.",
            self.run.started,
            self.seed,
            self.machine.cpu.as_deref().unwrap_or("unknown CPU"),
            self.machine.cores.unwrap_or(0),
            self.machine.load_average_1m.unwrap_or(0.0),
        );
        figure(&charts, 2, &caption)
    }
}
