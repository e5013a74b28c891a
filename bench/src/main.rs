//! `librarycache-bench`: measures the caches on the generated workloads, prints a table and writes
//! `target/bench-report.json`. For now only the SQLite baseline is measured; "ours" is left empty.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use librarycache_bench::machine::Machine;
use librarycache_bench::report::{DiskSize, Report};
use librarycache_bench::runner::{self, RunConfig, USER};
use librarycache_bench::{BenchError, SqliteBackend, Workload};

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
    /// Ingests, each into a fresh directory.
    #[arg(long, default_value_t = 3)]
    ingest_runs: usize,
    /// Likes changed per sync and added per merge.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Scratch directory for the caches.
    #[arg(long, default_value = "target/bench-work")]
    work_dir: PathBuf,
    /// Where to write the JSON report.
    #[arg(long, default_value = "target/bench-report.json")]
    report: PathBuf,
    /// Keep the caches on disk after the run.
    #[arg(long)]
    keep: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("librarycache-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), BenchError> {
    let machine = Machine::detect();
    let mut baseline = Vec::new();
    let mut floors = Vec::new();
    let mut sizes = Vec::new();
    for size in &args.sizes {
        let label = size.label();
        let workload = match size {
            Size::Small => Workload::small(args.seed),
            Size::Large => Workload::large(args.seed),
        };
        let body = workload.ingest_bytes(USER)?;
        eprintln!(
            "{label}: {} bytes of ingest JSON; measuring sqlite",
            body.len()
        );
        floors.push(runner::parse_floor(label, &body, args.ingest_runs)?);
        drop(body);
        let cfg = RunConfig {
            label: label.to_owned(),
            reps: args.reps,
            sync_reps: args.sync_reps,
            ingest_runs: args.ingest_runs,
            k: args.k,
            work_dir: args.work_dir.clone(),
            keep: args.keep,
        };
        let outcome = runner::run(&SqliteBackend, &workload, &cfg)?;
        baseline.extend(outcome.measurements);
        sizes.push((label, outcome.bytes_on_disk));
    }

    let mut report = Report::new(machine, &baseline, None);
    for floor in &floors {
        report.add_floor(floor);
    }
    for (label, bytes) in sizes {
        report.add_disk_size(
            label,
            DiskSize {
                ours: None,
                baseline: Some(bytes),
            },
        );
    }
    print!("{}", report.table());
    report.write(&args.report)?;
    eprintln!("wrote {}", args.report.display());
    Ok(())
}
