//! Support for the `librarycache` command line: the configuration file, library files for
//! `import` / `export`, Spotify's account-data export for `import --format spotify-export`, the
//! one-shot `fetch`, `stats`, and `migrate` between stores; `command` holds the arguments and
//! runs each command.

pub mod apple_library;
pub mod command;
pub mod config;
pub mod fetch;
pub mod json_file;
pub mod library_file;
pub mod migrate;
pub mod rotate_key;
pub mod secrets_key;
pub mod spotify_export;
pub mod stats;
pub mod upgrade;
