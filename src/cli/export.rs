//! `librarycache export`: writes a user's cached library as JSON, in the shape `import` reads,
//! to stdout or `--out FILE`.

use crate::app::App;
use crate::cli::args::LibraryArgs;
use crate::cli::library_file;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub library: LibraryArgs,
    /// Write here instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn exec(app: &App, args: Args) -> Result<ExitCode, String> {
    let engine = args.library.store.engine(app)?;
    let library = library_file::export(&engine, &args.library.user).map_err(|e| e.to_string())?;
    let text = serde_json::to_string_pretty(&library).map_err(|e| e.to_string())?;
    match args.out {
        Some(path) => {
            std::fs::write(&path, text + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()))?
        }
        None => println!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
