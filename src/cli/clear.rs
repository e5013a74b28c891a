//! `librarycache clear`: forgets a user's cached library through `LibraryCache.clear` (its
//! history stays in the log).

use crate::app::App;
use crate::cli::args::LibraryArgs;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub library: LibraryArgs,
}

pub fn exec(app: &App, args: Args) -> Result<ExitCode, String> {
    let user = &args.library.user;
    let engine = args.library.store.engine(app)?;
    let answer = engine.invoke("LibraryCache", "clear", serde_json::json!({ "userId": user }));
    answer.result.map_err(|e| format!("{}: {}", e.code, e.message))?;
    println!("cleared the cached library of {user} (its history stays in the log)");
    Ok(ExitCode::SUCCESS)
}
