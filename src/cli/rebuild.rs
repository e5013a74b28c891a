//! `librarycache rebuild`: drops every projection and rebuilds it by replaying the event log
//! through the concepts' apply functions.

use crate::app::App;
use crate::cli::args::StoreArgs;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub store: StoreArgs,
}

pub fn exec(app: &App, args: Args) -> Result<ExitCode, String> {
    let engine = args.store.engine(app)?;
    let started = std::time::Instant::now();
    let events = engine.rebuild().map_err(|e| format!("rebuild failed: {e}"))?;
    println!("rebuilt projections from {events} events in {:.2?}", started.elapsed());
    Ok(ExitCode::SUCCESS)
}
