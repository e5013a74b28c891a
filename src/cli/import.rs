//! `librarycache import`: loads a user's library from a file, by its format: a library JSON
//! file (`library_file`), a Spotify account-data export directory (`spotify_export`), or a
//! Music.app `Library.xml` (`apple_library`). Each is one ingest, sync or merge through the
//! engine, with the syncs of `--syncs` firing.

use crate::app::{App, Sources};
use crate::cli::args::{LibraryArgs, SyncsArgs};
use crate::cli::{apple_library, library_file, setup, spotify_export};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub library: LibraryArgs,
    /// What FILE is (default: a library JSON file).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    #[command(flatten)]
    pub syncs: SyncsArgs,
    /// The JSON file (with `--format spotify-export`: the export's directory; with
    /// `--format apple-library`: `Library.xml`).
    pub file: PathBuf,
}

/// The formats `import --format` reads besides a library file.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// A Spotify account-data or extended streaming history export (a directory).
    SpotifyExport,
    /// A Music.app / iTunes library file (`Library.xml`, File › Library › Export Library…):
    /// a complete read (ingest, or sync: likes and playlists the file no longer has go).
    AppleLibrary,
}

pub fn exec(app: &App, args: Args) -> Result<ExitCode, String> {
    let (user, file) = (&args.library.user, &args.file);
    let engine = || {
        setup::engine(
            setup::open(&args.library.store.spec())?,
            &args.syncs,
            app.registry(Sources::default()),
            None,
        )
    };
    let summary = match args.format {
        None => {
            // A library file is read and checked before the store is opened.
            let library = library_file::read(file, user).map_err(|e| e.to_string())?;
            let (action, out) = library_file::import(&engine()?, library).map_err(|e| e.to_string())?;
            format!("{action}: {out}")
        }
        Some(Format::SpotifyExport) => spotify_export::run(&engine()?, user, file)
            .map_err(|e| e.to_string())?
            .to_string(),
        Some(Format::AppleLibrary) => apple_library::run(&engine()?, user, file)
            .map_err(|e| e.to_string())?
            .to_string(),
    };
    println!("{summary}");
    Ok(ExitCode::SUCCESS)
}
