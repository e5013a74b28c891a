//! `librarycache migrate`: copies one store's event log, action records and engine rows into
//! another, empty store (sled to PostgreSQL or back), rebuilds the projections there from the
//! copied log, and verifies the result: the same counts and byte-for-byte the same projections.

use crate::cli::setup;
use crate::engine::{Engine, Registry};
use crate::store::StoreSpec;
use crate::store::{Import, Store, StoreError};
use std::sync::Arc;

/// Rows copied per batch (each batch one atomic import).
const BATCH: usize = 10_000;

#[derive(clap::Args)]
pub struct Args {
    /// The store to copy: a directory of the embedded store or a `postgres://…` URL.
    #[arg(long)]
    pub from: String,
    /// The empty store to copy into.
    #[arg(long)]
    pub to: String,
}

/// Copies the store `--from` into `--to`, with a progress bar, and prints the report.
pub fn exec(args: Args) -> Result<std::process::ExitCode, String> {
    let (from, to) = (StoreSpec::parse(&args.from), StoreSpec::parse(&args.to));
    if from == to {
        return Err("--from and --to name the same store".to_string());
    }
    let source = setup::open(&from)?;
    let target = setup::open(&to)?;
    eprintln!("copying {from} into {to}");
    let report = run(source, target, &mut Progress::bar()).map_err(|e| format!("migrate failed: {e}"))?;
    println!("{report}");
    Ok(std::process::ExitCode::SUCCESS)
}

/// Why a migration stopped.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("the target store is not empty (it has {events} events and {actions} actions); migrate only into an empty store")]
    TargetNotEmpty { events: u64, actions: u64 },
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("verification failed: {0}")]
    Mismatch(String),
}

/// What was copied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrateReport {
    pub events: u64,
    pub records: u64,
    pub engine_rows: u64,
    pub projection_rows: u64,
}

impl std::fmt::Display for MigrateReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "copied {} events, {} action records and {} guards/idempotency keys; rebuilt {} projection rows; \
             counts and projections verified",
            self.events, self.records, self.engine_rows, self.projection_rows
        )
    }
}

/// Where progress goes.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    /// A progress bar on the terminal (stderr).
    pub fn bar() -> Self {
        Progress {
            bar: Some(indicatif::ProgressBar::new(0)),
        }
    }

    /// No output (tests).
    pub fn quiet() -> Self {
        Progress { bar: None }
    }

    fn stage(&mut self, what: &'static str, total: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(total);
            bar.set_position(0);
            bar.set_message(what);
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{msg:>16} [{bar:40}] {pos}/{len} ({per_sec}, {eta})")
            {
                bar.set_style(style.progress_chars("=> "));
            }
        }
    }

    fn advance(&mut self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    fn done(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}

/// Copies `from` into the empty `to`, rebuilds `to`'s projections and verifies them.
pub fn run(from: Arc<dyn Store>, to: Arc<dyn Store>, progress: &mut Progress) -> Result<MigrateReport, MigrateError> {
    let target = to.stats()?;
    if target.last_seq > 0 || target.actions > 0 {
        return Err(MigrateError::TargetNotEmpty {
            events: target.last_seq,
            actions: target.actions,
        });
    }
    let source = from.stats()?;
    let mut report = MigrateReport::default();

    progress.stage("events", source.last_seq);
    let mut after = 0u64;
    loop {
        let events = from.read_log(after, BATCH)?;
        let Some(last) = events.last() else { break };
        after = last.meta.seq;
        let n = events.len() as u64;
        to.import(Import {
            events,
            ..Import::default()
        })?;
        report.events += n;
        progress.advance(n);
    }

    progress.stage("action records", source.actions);
    let mut after = 0u64;
    loop {
        let records = from.read_records(after, BATCH)?;
        let Some(last) = records.last() else { break };
        after = last.id;
        let n = records.len() as u64;
        to.import(Import {
            records,
            ..Import::default()
        })?;
        report.records += n;
        progress.advance(n);
    }

    progress.stage("engine rows", 0);
    let mut after: Vec<u8> = Vec::new();
    loop {
        let rows = from.read_engine_rows(&after, BATCH)?;
        let Some((last, _)) = rows.last() else { break };
        after = last.clone();
        let n = rows.len() as u64;
        to.import(Import {
            engine_rows: rows,
            ..Import::default()
        })?;
        report.engine_rows += n;
        progress.advance(n);
    }
    // The counters last, so ids compacted away in the source are never reused in the target.
    to.import(Import {
        last_seq: source.last_seq,
        last_action: source.actions,
        ..Import::default()
    })?;

    progress.stage("rebuild", 1);
    let engine = Engine::new(Arc::clone(&to), Registry::standard());
    let replayed = engine.rebuild()?;
    progress.advance(1);
    progress.done();

    // Verify: the same counts, and the rebuilt projections equal the source's live ones.
    let copied = to.stats()?;
    let mut problems = Vec::new();
    if copied.last_seq != source.last_seq || report.events != source.last_seq || replayed != source.last_seq {
        problems.push(format!(
            "events: source {}, copied {}, target {}, replayed {replayed}",
            source.last_seq, report.events, copied.last_seq
        ));
    }
    if copied.actions != source.actions {
        problems.push(format!(
            "last action id: source {}, target {}",
            source.actions, copied.actions
        ));
    }
    if copied.projection_rows != source.projection_rows {
        problems.push(format!(
            "projection rows: source {}, target {}",
            source.projection_rows, copied.projection_rows
        ));
    }
    let records_in_target = count_records(to.as_ref())?;
    if records_in_target != report.records {
        problems.push(format!(
            "action records: copied {}, target has {records_in_target}",
            report.records
        ));
    }
    if problems.is_empty() && from.projection_dump()? != to.projection_dump()? {
        problems.push("the rebuilt projections differ from the source's".to_string());
    }
    if !problems.is_empty() {
        return Err(MigrateError::Mismatch(problems.join("; ")));
    }
    report.projection_rows = copied.projection_rows;
    Ok(report)
}

fn count_records(store: &dyn Store) -> Result<u64, StoreError> {
    let mut after = 0u64;
    let mut n = 0u64;
    loop {
        let records = store.read_records(after, BATCH)?;
        let Some(last) = records.last() else {
            return Ok(n);
        };
        after = last.id;
        n += records.len() as u64;
    }
}
