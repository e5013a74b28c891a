//! Support for the `librarycache` command line: the configuration file, library files for
//! `import` / `export`, Spotify's account-data export for `import --format spotify-export`, and
//! the one-shot `fetch`. The commands themselves are in `src/main.rs`.

pub mod config;
pub mod fetch;
pub mod json_file;
pub mod library_file;
pub mod spotify_export;
