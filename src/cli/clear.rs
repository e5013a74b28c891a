//! `librarycache clear`: forgets a user's cached library through `LibraryCache.clear` (its
//! history stays in the log).

use crate::app::{App, Sources};
use crate::cli::args::{StoreArgs, UserArg};
use crate::cli::setup;
use crate::engine::Engine;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub user: UserArg,
}

pub fn exec(app: &App, args: Args) -> Result<ExitCode, String> {
    let user = &args.user.user;
    let engine = Engine::new(setup::open(&args.store.spec())?, app.registry(Sources::default()));
    let answer = engine.invoke("LibraryCache", "clear", serde_json::json!({ "userId": user }));
    answer.result.map_err(|e| format!("{}: {}", e.code, e.message))?;
    println!("cleared the cached library of {user} (its history stays in the log)");
    Ok(ExitCode::SUCCESS)
}
