//! `librarycache trace FILE…`: runs trace files, each against a temporary store with the trace's
//! own clock, printing each step, its actual output and the actions the syncs fired; the exit
//! code says whether every step matched.

use crate::app::{App, Sources};
use crate::cli::args::SyncsArgs;
use crate::cli::setup;
use crate::engine::trace_log;
use crate::external::StandIn;
use crate::store::SledStore;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct Args {
    /// Trace files (`*.trace`).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub syncs: SyncsArgs,
}

pub fn exec(app: &App, args: Args) -> Result<ExitCode, String> {
    let mut ok = true;
    for file in &args.files {
        let name = file.display().to_string();
        let bytes = std::fs::read(file).map_err(|e| format!("cannot read {name}: {e}"))?;
        let steps = crate::trace::parse_trace_bytes(&name, &bytes).map_err(|e| e.to_string())?;
        let store = SledStore::temporary().map_err(|e| format!("cannot open a temporary store: {e}"))?;
        let clock = crate::trace::trace_clock();
        // External concepts answer from the trace's `answer` lines, never their services.
        let stand_in = Arc::new(StandIn::new());
        let registry = app.registry(Sources::default());
        let engine = setup::engine(Arc::new(store), &args.syncs, registry, Some(Arc::clone(&stand_in)))?
            .with_clock(Arc::new(clock.clone()));
        let report = crate::trace::run_trace_with(&engine, &clock, &name, &steps, Some(&stand_in));
        for s in &report.steps {
            let mark = if s.mismatch.is_some() { "FAIL" } else { "ok  " };
            println!(
                "{mark} {}:{} {}.{} => {}",
                name, s.step.line, s.step.concept, s.step.action, s.actual
            );
            for fired in &s.cascade {
                println!("     {}", trace_log::line(fired));
            }
        }
        for f in report.failures() {
            eprintln!("{f}");
        }
        ok &= report.passed();
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
