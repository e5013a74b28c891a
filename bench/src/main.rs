//! `librarycache-bench`: measures LibraryCache (sled store + engine, durable) and the SQLite baseline on
//! the generated workloads, the same operations on the same bytes, plus LibraryCache's queries over HTTP;
//! prints the table and writes `target/bench-report.json`. With `--pg URL` (or `LIBRARYCACHE_BENCH_PG`)
//! LibraryCache is measured on PostgreSQL too, against the same SQLite figures: a second table, and
//! `target/bench-report-postgres.json`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use librarycache::store::PgStore;
use librarycache_bench::http::{self, HttpPlan};
use librarycache_bench::machine::Machine;
use librarycache_bench::ours::PG_SCHEMA_PREFIX;
use librarycache_bench::report::{DiskSize, Report};
use librarycache_bench::runner::{self, RunConfig, RunOutcome, USER};
use librarycache_bench::{BenchError, OursBackend, SqliteBackend, Workload};

/// A workload size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Size {
    Small,
    Large,
}

impl Size {
    fn label(self) -> &'static str {
        match self {
            Size::Small => "small",
            Size::Large => "large",
        }
    }
}

/// Measure LibraryCache's operations against a hand-written SQLite cache.
#[derive(Debug, Parser)]
#[command(name = "librarycache-bench", version)]
struct Args {
    /// A short run: the small workload only, 5 runs of each cheap operation, 1 of the others, HTTP for
    /// 1 s per measurement (overrides the options below).
    #[arg(long)]
    quick: bool,
    /// Workloads to run, in order.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "small,large")]
    sizes: Vec<Size>,
    /// Seed of the workload generator.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Runs of each cheap operation (queries, merges, cold starts); the median is reported.
    #[arg(long, default_value_t = 21)]
    reps: usize,
    /// Runs of each full-snapshot sync (each run is two syncs: to the changed snapshot and back).
    #[arg(long, default_value_t = 3)]
    sync_reps: usize,
    /// Runs of the projection rebuild (LibraryCache only).
    #[arg(long, default_value_t = 1)]
    rebuild_runs: usize,
    /// Ingests, each into a fresh directory.
    #[arg(long, default_value_t = 3)]
    ingest_runs: usize,
    /// Likes changed per sync and added per merge.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Seconds of load per HTTP measurement (query × concurrency); 0 skips HTTP.
    #[arg(long, default_value_t = 3.0)]
    http_seconds: f64,
    /// Concurrent HTTP clients, one measurement each.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    http_clients: Vec<usize>,
    /// The workload served over HTTP (it must be one of `--sizes`).
    #[arg(long, value_enum, default_value = "large")]
    http_size: Size,
    /// Run LibraryCache without the repository's default syncs (they are loaded by default, as `serve` does).
    #[arg(long)]
    no_syncs: bool,
    /// Scratch directory for the caches.
    #[arg(long, default_value = "target/bench-work")]
    work_dir: PathBuf,
    /// Where to write the JSON report.
    #[arg(long, default_value = "target/bench-report.json")]
    report: PathBuf,
    /// Keep the caches on disk after the run.
    #[arg(long)]
    keep: bool,
    /// Concurrent writers in the write-throughput measurement (each merging into its own user);
    /// 0 skips it.
    #[arg(long, default_value_t = 8)]
    writers: usize,
    /// Merges each writer sends in the write-throughput measurement.
    #[arg(long, default_value_t = 100)]
    writes_each: usize,
    /// Also measure LibraryCache on the PostgreSQL server at this URL (each cache in a schema of its
    /// own, `lcbench_…`, dropped before and after the run unless --keep).
    #[arg(long, env = "LIBRARYCACHE_BENCH_PG")]
    pg: Option<String>,
}

fn main() -> ExitCode {
    let mut args = Args::parse();
    if args.quick {
        args.sizes = vec![Size::Small];
        args.reps = 5;
        args.sync_reps = 1;
        args.ingest_runs = 1;
        args.rebuild_runs = 1;
        args.http_seconds = args.http_seconds.min(1.0);
        args.http_size = Size::Small;
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("librarycache-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), BenchError> {
    let started = Instant::now();
    let machine = Machine::detect();
    let ours_backend = if args.no_syncs {
        OursBackend::with_syncs(None)
    } else {
        OursBackend::new()
    };
    eprintln!(
        "machine: {} ({} cores), load {:.2}; ours runs with {}",
        machine.cpu.as_deref().unwrap_or("unknown CPU"),
        machine.cores.unwrap_or(0),
        machine.load_average_1m.unwrap_or(0.0),
        match ours_backend.syncs() {
            Some(dir) => format!("the syncs in {}", dir.display()),
            None => "no syncs".to_owned(),
        }
    );
    let mut stores = vec![("sled", ours_backend.clone())];
    if let Some(url) = &args.pg {
        PgStore::drop_schemas_with_prefix(url, PG_SCHEMA_PREFIX).map_err(pg_error)?;
        eprintln!(
            "ours also runs on PostgreSQL at {}",
            librarycache::store::postgres::redact(url)
        );
        stores.push(("postgres", ours_backend.clone().on_postgres(url)));
    }
    let mut baseline = Vec::new();
    let mut floors = Vec::new();
    let mut base_outcomes: Vec<(&str, RunOutcome)> = Vec::new();
    // Per store: its measurements, its outcome per size, its HTTP figures.
    let mut per_store: Vec<StoreRun> = stores.iter().map(|_| StoreRun::default()).collect();
    let mut large_labels = Vec::new();
    for size in &args.sizes {
        let label = size.label();
        if *size == Size::Large {
            large_labels.push(label);
        }
        let workload = match size {
            Size::Small => Workload::small(args.seed),
            Size::Large => Workload::large(args.seed),
        };
        let body = workload.ingest_bytes(USER)?;
        eprintln!("{label}: {} bytes of ingest JSON; parsing", body.len());
        floors.extend(runner::parse_floors(label, &body, args.ingest_runs.max(3))?);
        drop(body);
        let cfg = RunConfig {
            label: label.to_owned(),
            reps: args.reps,
            sync_reps: args.sync_reps,
            ingest_runs: args.ingest_runs,
            rebuild_runs: args.rebuild_runs,
            k: args.k,
            work_dir: args.work_dir.clone(),
            keep: args.keep,
        };
        eprintln!("{label}: measuring sqlite");
        let base = runner::run(&SqliteBackend, &workload, &cfg)?;
        baseline.extend(base.measurements.iter().cloned());
        base_outcomes.push((label, base));
        for ((store, backend), run) in stores.iter().zip(per_store.iter_mut()) {
            eprintln!("{label}: measuring ours on {store}");
            let serve_http = args.http_seconds > 0.0 && *size == args.http_size;
            let http_figures = &mut run.http;
            let our = runner::run_with(backend, &workload, &cfg, &mut |cache| {
                let Some(engine) = cache.engine().filter(|_| serve_http) else {
                    return Ok(());
                };
                eprintln!("{label}: measuring ours on {store} over HTTP (after its ingest)");
                for m in http::measure(Arc::clone(engine), &http_plan(&workload, args))? {
                    http_figures.push((format!("{label}/{}", m.operation), m.figures));
                }
                Ok(())
            })?;
            run.measurements.extend(our.measurements.iter().cloned());
            run.sizes.push((label, our));
        }
    }

    for ((store, _), run) in stores.iter().zip(per_store) {
        let mut report = Report::new(machine.clone(), &baseline, Some(run.measurements.as_slice()));
        for floor in &floors {
            report.add_floor(floor);
        }
        for ((label, base), (_, our)) in base_outcomes.iter().zip(&run.sizes) {
            report.add_disk_size(
                &format!("{label}/after_ingest"),
                DiskSize::new(Some(our.bytes_after_ingest), Some(base.bytes_after_ingest)),
            );
            report.add_disk_size(
                &format!("{label}/after_run"),
                DiskSize::new(Some(our.bytes_at_end), Some(base.bytes_at_end)),
            );
            if let Some(rebuild) = &our.rebuild {
                report.add_rebuild(label, rebuild);
            }
        }
        for (operation, figures) in run.http {
            report.add_http(&operation, figures);
        }
        report.finish(&large_labels);
        println!("== LibraryCache on {store} (\"ours\") against the SQLite baseline");
        print!("{}", report.table());
        let path = match *store {
            "sled" => args.report.clone(),
            other => args.report.with_file_name(format!(
                "{}-{other}.json",
                args.report
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or("bench-report")
            )),
        };
        report.write(&path)?;
        eprintln!("wrote {}", path.display());
    }
    if args.writers > 0 {
        for (store, backend) in &stores {
            let dir = args.work_dir.join("writes").join(store);
            let figure = write_throughput(backend, &dir, args.writers, args.writes_each.max(1))?;
            println!(
                "== write throughput on {store}: {} writers x {} merges of one like (each into its own user, durable): \
                 {:.0} merges/s, median {:.2} ms, p99 {:.2} ms",
                args.writers, args.writes_each, figure.per_second, figure.median_ms, figure.p99_ms
            );
            if !args.keep {
                std::fs::remove_dir_all(&dir).ok();
            }
        }
    }
    if let (Some(url), false) = (&args.pg, args.keep) {
        PgStore::drop_schemas_with_prefix(url, PG_SCHEMA_PREFIX).map_err(pg_error)?;
    }
    eprintln!("{:.0} s in all", started.elapsed().as_secs_f64());
    Ok(())
}

/// Concurrent merges through the engine.
struct WriteFigure {
    per_second: f64,
    median_ms: f64,
    p99_ms: f64,
}

/// `writers` threads, each sending `each` merges of one new like into its own user, all at once
/// on one store (every merge answered only once durable): merges per second and latencies.
fn write_throughput(
    backend: &OursBackend,
    dir: &std::path::Path,
    writers: usize,
    each: usize,
) -> Result<WriteFigure, BenchError> {
    std::fs::remove_dir_all(dir).ok();
    let cache = backend.open_cache(dir)?;
    let engine = Arc::clone(cache.engine());
    for w in 0..writers {
        let answer = engine.invoke(
            "LibraryCache",
            "ingest",
            serde_json::json!({ "userId": format!("writer{w}") }),
        );
        answer.result.map_err(|e| BenchError::Backend {
            cache: backend_name(backend),
            source: Box::new(e),
        })?;
    }
    let started = Instant::now();
    let threads: Vec<_> = (0..writers)
        .map(|w| {
            let engine = Arc::clone(&engine);
            std::thread::spawn(move || -> Result<Vec<f64>, concept_core::ActionError> {
                let mut times = Vec::with_capacity(each);
                for i in 0..each {
                    let input = serde_json::json!({
                        "userId": format!("writer{w}"),
                        "likes": [{"trackId": format!("w{w}-{i}"), "likedAt": "2025-01-01T00:00:00Z"}]
                    });
                    let t = Instant::now();
                    engine.invoke("LibraryCache", "merge", input).result?;
                    times.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                Ok(times)
            })
        })
        .collect();
    let mut times = Vec::new();
    for thread in threads {
        let done = thread.join().map_err(|_| BenchError::Backend {
            cache: backend_name(backend),
            source: "a writer thread panicked".into(),
        })?;
        times.extend(done.map_err(|e| BenchError::Backend {
            cache: backend_name(backend),
            source: Box::new(e),
        })?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let n = times.len() as f64;
    Ok(WriteFigure {
        per_second: n / elapsed.max(f64::EPSILON),
        median_ms: http::percentile(&mut times, 0.5),
        p99_ms: http::percentile(&mut times, 0.99),
    })
}

fn backend_name(backend: &OursBackend) -> String {
    librarycache_bench::cache::Backend::name(backend).to_owned()
}

/// What one store's run of ours produced.
#[derive(Default)]
struct StoreRun {
    measurements: Vec<librarycache_bench::runner::Measurement>,
    sizes: Vec<(&'static str, RunOutcome)>,
    http: Vec<(String, librarycache_bench::http::HttpFigures)>,
}

fn pg_error(e: librarycache::store::StoreError) -> BenchError {
    BenchError::Backend {
        cache: "ours-pg".to_owned(),
        source: Box::new(e),
    }
}

/// The HTTP load: `_getLiked` of the workload's user, `_getPlaylist` cycling through every playlist.
fn http_plan(workload: &Workload, args: &Args) -> HttpPlan {
    HttpPlan {
        user: USER.to_owned(),
        expected_liked: workload.expected_liked(),
        playlists: http::playlist_answers(&workload.playlists, usize::MAX),
        clients: args.http_clients.clone(),
        duration: Duration::from_secs_f64(args.http_seconds),
    }
}
