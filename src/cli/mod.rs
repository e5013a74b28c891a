//! Support for the `librarycache` command line: the configuration file and library files for
//! `import` / `export`. The commands themselves are in `src/main.rs`.

pub mod config;
pub mod fetch;
pub mod library_file;
