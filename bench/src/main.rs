//! `librarycache-bench`: measures LibraryCache (durable: it fsyncs before answering) against a
//! hand-written SQLite cache (`synchronous=FULL`, and `NORMAL` beside it) on generated workloads,
//! each cache in worker processes of its own, the same operations on the same request bodies,
//! answers compared as the JSON an HTTP client receives; plus LibraryCache over HTTP. Prints the
//! tables and writes `target/bench-report.json`. `--scaling` runs the scaling measurements
//! instead (`target/bench-scaling.json` and `docs/bench-scaling.svg`). Run as `librarycache-bench
//! worker '<task>'`, the binary is one of its own worker processes.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use librarycache::store::PgStore;
use librarycache_bench::machine::Machine;
use librarycache_bench::orchestrate::{self, HttpOptions, Options};
use librarycache_bench::ours::{OursBackend, PG_SCHEMA_PREFIX};
use librarycache_bench::plan::Reps;
use librarycache_bench::report::RunInfo;
use librarycache_bench::scaling::{self, ScalingOptions};
use librarycache_bench::worker;
use librarycache_bench::{BenchError, Sizes};

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

    fn sizes(self) -> Sizes {
        match self {
            Size::Small => Sizes::SMALL,
            Size::Large => Sizes::LARGE,
        }
    }
}

/// Measure LibraryCache against a hand-written SQLite cache, each in processes of its own.
#[derive(Debug, Parser)]
#[command(name = "librarycache-bench", version)]
struct Args {
    /// A short run to check that everything works: the small workload only, few runs of each
    /// step, HTTP for 0.5 s per measurement, 200 growth merges (overrides the options below).
    #[arg(long)]
    quick: bool,
    /// Workloads to run, in order.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "small,large")]
    sizes: Vec<Size>,
    /// Seed of the workload generator.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Runs of each cheap query and of each kind of merge (p50 and p99 are reported).
    #[arg(long, default_value_t = 101)]
    reps: usize,
    /// Runs of the queries that answer a whole collection (every play, a page of 1,000 tracks).
    #[arg(long, default_value_t = 31)]
    heavy_reps: usize,
    /// Runs of each full-snapshot sync (each run is two syncs: to the changed snapshot and back).
    #[arg(long, default_value_t = 3)]
    sync_reps: usize,
    /// Runs of the projection rebuild (LibraryCache only).
    #[arg(long, default_value_t = 1)]
    rebuild_runs: usize,
    /// Ingests, each into a fresh directory in a fresh process.
    #[arg(long, default_value_t = 3)]
    ingest_runs: usize,
    /// Cold starts after the first open after the run, each in a fresh process.
    #[arg(long, default_value_t = 21)]
    cold_reps: usize,
    /// Likes changed per sync and added per merge (besides the merges of one like).
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Seconds of load per HTTP query measurement (query × concurrency); 0 skips HTTP.
    #[arg(long, default_value_t = 3.0)]
    http_seconds: f64,
    /// Concurrent HTTP clients, one measurement each.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    http_clients: Vec<usize>,
    /// The workload served over HTTP (it must be one of `--sizes`).
    #[arg(long, value_enum, default_value = "large")]
    http_size: Size,
    /// Single-like merges of the growth measurement; 0 skips it.
    #[arg(long, default_value_t = 10_000)]
    growth_merges: usize,
    /// The workload the growth measurement runs on (it must be one of `--sizes`).
    #[arg(long, value_enum, default_value = "large")]
    growth_size: Size,
    /// Skip the reads-during-writes measurement (it runs on the last of `--sizes`).
    #[arg(long)]
    no_concurrent: bool,
    /// Run LibraryCache without the repository's default syncs (they are loaded by default, as
    /// `serve` does; `/api/liked` needs them).
    #[arg(long)]
    no_syncs: bool,
    /// Scratch directory for the caches.
    #[arg(long, default_value = "target/bench-work")]
    work_dir: PathBuf,
    /// Where to write the JSON report.
    #[arg(long, default_value = "target/bench-report.json")]
    report: PathBuf,
    /// Keep the caches and bodies on disk after the run.
    #[arg(long)]
    keep: bool,
    /// Also measure LibraryCache on the PostgreSQL server at this URL (each cache in a schema of
    /// its own, `lcbench_…`, dropped before and after the run unless --keep); a second report.
    #[arg(long, env = "LIBRARYCACHE_BENCH_PG")]
    pg: Option<String>,
    /// Run the scaling measurements instead: ingest, rebuild, cold start and disk at
    /// `--scaling-factors` times the large library, and syncs against k changed likes.
    #[arg(long)]
    scaling: bool,
    /// Multiples of the large library for `--scaling`.
    #[arg(long, value_delimiter = ',', default_value = "0.25,1,4")]
    scaling_factors: Vec<f64>,
    /// Numbers of changed likes for `--scaling`'s sync sweep.
    #[arg(long, value_delimiter = ',', default_value = "1,10,100,1000,10000")]
    scaling_ks: Vec<usize>,
    /// Where `--scaling` writes its JSON report.
    #[arg(long, default_value = "target/bench-scaling.json")]
    scaling_report: PathBuf,
    /// Where `--scaling` writes its figure.
    #[arg(long, default_value = "docs/bench-scaling.svg")]
    plot: PathBuf,
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some(worker::WORKER_ARG) {
        return match worker::main(argv.get(2).map(String::as_str).unwrap_or_default()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("librarycache-bench worker: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let mut args = Args::parse();
    if args.quick {
        args.sizes = vec![Size::Small];
        args.reps = 11;
        args.heavy_reps = 5;
        args.sync_reps = 1;
        args.ingest_runs = 1;
        args.rebuild_runs = 1;
        args.cold_reps = 3;
        args.http_seconds = args.http_seconds.min(0.5);
        args.http_size = Size::Small;
        args.growth_merges = args.growth_merges.min(200);
        args.growth_size = Size::Small;
    }
    let command = format!("librarycache-bench {}", argv.get(1..).unwrap_or_default().join(" "));
    let outcome = if args.scaling {
        run_scaling(&args, command.trim())
    } else {
        run(&args, command.trim())
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("librarycache-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn syncs(args: &Args) -> Option<PathBuf> {
    if args.no_syncs {
        None
    } else {
        OursBackend::new().syncs().map(|p| p.to_path_buf())
    }
}

fn run_info(command: &str, started: &str, clock: Instant) -> RunInfo {
    RunInfo {
        started: started.to_owned(),
        command: command.to_owned(),
        seconds: clock.elapsed().as_secs_f64(),
        load_average_end: Machine::detect().load_average_1m,
    }
}

fn now() -> String {
    concept_core::time::format_rfc3339(&chrono::Utc::now())
}

fn run(args: &Args, command: &str) -> Result<(), BenchError> {
    let clock = Instant::now();
    let started = now();
    let machine = Machine::detect();
    eprintln!(
        "machine: {} ({} cores), load {:.2}",
        machine.cpu.as_deref().unwrap_or("unknown CPU"),
        machine.cores.unwrap_or(0),
        machine.load_average_1m.unwrap_or(0.0),
    );
    let labels: Vec<&str> = args.sizes.iter().map(|s| s.label()).collect();
    let pick = |size: Size| labels.contains(&size.label()).then(|| size.label().to_owned());
    let opts = Options {
        sizes: args.sizes.iter().map(|s| (s.label().to_owned(), s.sizes())).collect(),
        large: pick(Size::Large),
        seed: args.seed,
        k: args.k,
        reps: Reps {
            reps: args.reps.max(1),
            heavy_reps: args.heavy_reps.max(1),
            sync_reps: args.sync_reps.max(1),
            rebuild_runs: args.rebuild_runs.max(1),
            cold_reps: args.cold_reps.max(1),
        },
        ingest_runs: args.ingest_runs.max(1),
        http: (args.http_seconds > 0.0)
            .then(|| pick(args.http_size))
            .flatten()
            .map(|label| HttpOptions {
                label,
                seconds: args.http_seconds,
                clients: args.http_clients.clone(),
            }),
        growth: (args.growth_merges > 0)
            .then(|| pick(args.growth_size))
            .flatten()
            .map(|label| (label, args.growth_merges)),
        concurrent: (!args.no_concurrent)
            .then(|| labels.last().map(|l| (*l).to_owned()))
            .flatten(),
        syncs: syncs(args),
        postgres: args.pg.clone(),
        work_dir: args.work_dir.clone(),
        keep: args.keep,
    };
    if let Some(url) = &args.pg {
        PgStore::drop_schemas_with_prefix(url, PG_SCHEMA_PREFIX).map_err(pg_error)?;
    }
    let reports = orchestrate::run(&opts, &machine)?;
    if let (Some(url), false) = (&args.pg, args.keep) {
        PgStore::drop_schemas_with_prefix(url, PG_SCHEMA_PREFIX).map_err(pg_error)?;
    }
    for (store, mut report) in reports {
        report.run = run_info(command, &started, clock);
        println!("== LibraryCache on {store} (\"ours\") against the SQLite baseline");
        print!("{}", report.table());
        let path = match store.as_str() {
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
    eprintln!("{:.0} s in all", clock.elapsed().as_secs_f64());
    Ok(())
}

fn run_scaling(args: &Args, command: &str) -> Result<(), BenchError> {
    let clock = Instant::now();
    let started = now();
    let machine = Machine::detect();
    let opts = ScalingOptions {
        factors: args.scaling_factors.clone(),
        ks: args.scaling_ks.clone(),
        seed: args.seed,
        cold_reps: args.cold_reps.clamp(1, 7),
        syncs: syncs(args),
        work_dir: args.work_dir.clone(),
        keep: args.keep,
    };
    let mut report = scaling::run(&opts, &machine)?;
    report.run = run_info(command, &started, clock);
    print!("{}", report.table());
    let json = serde_json::to_vec_pretty(&report)?;
    if let Some(dir) = args.scaling_report.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(BenchError::io("create directory", dir))?;
    }
    std::fs::write(&args.scaling_report, json).map_err(BenchError::io("write", &args.scaling_report))?;
    if let Some(dir) = args.plot.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(BenchError::io("create directory", dir))?;
    }
    std::fs::write(&args.plot, report.svg()).map_err(BenchError::io("write", &args.plot))?;
    eprintln!(
        "wrote {} and {}; {:.0} s in all",
        args.scaling_report.display(),
        args.plot.display(),
        clock.elapsed().as_secs_f64()
    );
    Ok(())
}

fn pg_error(e: librarycache::store::StoreError) -> BenchError {
    BenchError::Backend {
        cache: "ours-pg".to_owned(),
        source: Box::new(e),
    }
}
