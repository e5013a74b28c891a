//! The `librarycache` command line. `args` declares the command and the settings its commands
//! share, `config` layers `librarycache.toml` under it, `setup` opens the store and the engine,
//! and each command is one file with its own settings and body (`serve`, `fetch`, `import`, …).
//! The rest support the commands: library files, Spotify's account-data export, the secrets key,
//! the store upgrade and migration.
//!
//! [`main`] runs it against the concepts of an [`App`]; `src/main.rs` does so for the standard
//! ones.

pub mod apple_library;
pub mod args;
pub mod check;
pub mod clear;
pub mod config;
pub mod export;
pub mod fetch;
pub mod import;
pub mod json_file;
pub mod library_file;
pub mod migrate;
pub mod rebuild;
pub mod rotate_key;
pub mod secrets_key;
pub mod serve;
pub mod setup;
pub mod sources;
pub mod spotify_export;
pub mod stats;
pub mod trace;
pub mod upgrade;

use crate::app::App;
use args::Command;
use std::ffi::OsString;
use std::process::ExitCode;

/// Runs the command line `args` (the program name first) against `app`'s concepts.
pub fn main(app: &App, args: Vec<OsString>) -> ExitCode {
    let cli = match config::parse(args) {
        Ok(cli) => cli,
        Err(config::ConfigError::CommandLine(e)) => e.exit(),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    log_to_stderr(matches!(&cli.command, Command::Serve(serve) if serve.trace));
    match concept_core::SystemClock::from_env() {
        Ok(clock) if clock.offset() != chrono::Duration::zero() => {
            tracing::warn!(ahead = %clock.offset(), "the clock runs ahead of the system's (a test setting)")
        }
        Ok(_) => {}
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    }
    match run(app, cli.command) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one command.
fn run(app: &App, command: Command) -> Result<ExitCode, String> {
    match command {
        Command::Serve(args) => serve::exec(app, args),
        Command::Fetch(args) => fetch::exec(app, args),
        Command::RotateKey(args) => rotate_key::exec(args),
        Command::Check(args) => check::exec(app, args),
        Command::Upgrade(args) => upgrade::exec(app, args),
        Command::Rebuild(args) => rebuild::exec(app, args),
        Command::Stats(args) => stats::exec(app, args),
        Command::Clear(args) => clear::exec(app, args),
        Command::Import(args) => import::exec(app, args),
        Command::Export(args) => export::exec(app, args),
        Command::Trace(args) => trace::exec(app, args),
        Command::Migrate(args) => migrate::exec(args),
    }
}

/// Logs to stderr, as RUST_LOG says (info by default); the trace log (`librarycache::trace`)
/// only with `trace` (`serve --trace`) or when RUST_LOG names it.
fn log_to_stderr(trace: bool) {
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "librarycache=info,tower_http=info".into());
    let directive = match (trace, std::env::var("RUST_LOG").is_ok()) {
        (true, _) => Some("librarycache::trace=info"),
        (false, false) => Some("librarycache::trace=off"),
        (false, true) => None,
    };
    if let Some(directive) = directive {
        filter = filter.add_directive(directive.parse().expect("a valid directive"));
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
