//! `librarycache check`: checks a directory of sync files against the schemas of every concept
//! of the app, printing every problem as file:line:col, as `serve` would refuse to start.

use crate::app::{App, Sources};
use crate::cli::args::SyncsArgs;
use crate::cli::setup;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub syncs: SyncsArgs,
}

pub fn exec(app: &App, args: Args) -> Result<ExitCode, String> {
    let dir = args
        .syncs
        .dir()
        .ok_or("no sync files to check: ./syncs is not a directory; give --syncs DIR")?;
    let registry = setup::with_externals(app.registry(Sources::default()), &args.syncs, None)?;
    let files = setup::load_syncs(&dir, &registry.specs())?;
    let count: usize = files.iter().map(|f| f.syncs.len()).sum();
    println!("{} sync file(s), {count} sync(s): no problems", files.len());
    Ok(ExitCode::SUCCESS)
}
