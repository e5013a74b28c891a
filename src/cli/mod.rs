//! Support for the `librarycache` command line: the configuration file and library files for
//! `import` / `export`, `fetch`, `stats`, and `migrate` between stores. The commands themselves are in `src/main.rs`.

pub mod config;
pub mod fetch;
pub mod library_file;
pub mod migrate;
pub mod stats;
