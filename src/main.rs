//! The `librarycache` command: serve the HTTP API, rebuild projections, run trace files.

use clap::{Parser, Subcommand};
use librarycache::engine::{Engine, Registry};
use librarycache::server::{self, ServerConfig};
use librarycache::store::{SledStore, Store};
use librarycache::trace;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "librarycache",
    version,
    about = "A local, queryable snapshot of users' music libraries"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API on the embedded store.
    Serve {
        /// Directory of the embedded store (created if missing).
        #[arg(long, env = "LIBRARYCACHE_DATA", default_value = "./data")]
        data: PathBuf,
        /// Address to listen on.
        #[arg(long, env = "LIBRARYCACHE_ADDR", default_value = "127.0.0.1:5765")]
        addr: SocketAddr,
        /// Directory of sync files.
        #[arg(long, env = "LIBRARYCACHE_SYNCS", default_value = "./syncs")]
        syncs: PathBuf,
        /// Largest accepted request body, in bytes.
        #[arg(long, env = "LIBRARYCACHE_BODY_LIMIT", default_value_t = server::DEFAULT_BODY_LIMIT)]
        body_limit: usize,
    },
    /// Check sync files against the concepts' schemas; print every problem as file:line:col.
    Check {
        /// Directory of sync files.
        #[arg(long, env = "LIBRARYCACHE_SYNCS", default_value = "./syncs")]
        syncs: PathBuf,
    },
    /// Drop every projection and rebuild it by replaying the event log.
    Rebuild {
        #[arg(long, env = "LIBRARYCACHE_DATA", default_value = "./data")]
        data: PathBuf,
    },
    /// Run trace files against a temporary store; print each step and its actual output.
    Trace {
        /// Trace files (`*.trace`).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "librarycache=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn open(data: &std::path::Path) -> Result<Arc<dyn Store>, String> {
    let store = SledStore::open(data).map_err(|e| format!("cannot open the store at {}: {e}", data.display()))?;
    Ok(Arc::new(store))
}

/// Loads and checks every sync file in a directory; the error lists every problem.
fn load_syncs(dir: &std::path::Path) -> Result<Vec<librarycache::sync::SyncFile>, String> {
    librarycache::sync::load_checked(dir, &Registry::standard().specs()).map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        format!("{} problem(s) in the sync files:\n{}", lines.len(), lines.join("\n"))
    })
}

fn run(cli: Cli) -> Result<ExitCode, String> {
    match cli.command {
        Command::Serve {
            data,
            addr,
            syncs: _,
            body_limit,
        } => {
            let engine = Arc::new(Engine::new(open(&data)?, Registry::standard()));
            let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("cannot start the runtime: {e}"))?;
            runtime
                .block_on(server::serve(engine, ServerConfig { addr, body_limit }))
                .map_err(|e| format!("cannot serve on {addr}: {e}"))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { syncs } => {
            let files = load_syncs(&syncs)?;
            let count: usize = files.iter().map(|f| f.syncs.len()).sum();
            println!("{} sync file(s), {count} sync(s): no problems", files.len());
            Ok(ExitCode::SUCCESS)
        }
        Command::Rebuild { data } => {
            let engine = Engine::new(open(&data)?, Registry::standard());
            let started = std::time::Instant::now();
            let events = engine.rebuild().map_err(|e| format!("rebuild failed: {e}"))?;
            println!("rebuilt projections from {events} events in {:.2?}", started.elapsed());
            Ok(ExitCode::SUCCESS)
        }
        Command::Trace { files } => {
            let mut ok = true;
            for file in files {
                let name = file.display().to_string();
                let text = std::fs::read_to_string(&file).map_err(|e| format!("cannot read {name}: {e}"))?;
                let steps = trace::parse_trace(&name, &text).map_err(|e| e.to_string())?;
                let store = SledStore::temporary().map_err(|e| format!("cannot open a temporary store: {e}"))?;
                let engine = Engine::new(Arc::new(store), Registry::standard());
                let report = trace::run_trace(&engine, &name, &steps);
                for s in &report.steps {
                    let mark = if s.mismatch.is_some() { "FAIL" } else { "ok  " };
                    println!(
                        "{mark} {}:{} {}.{} => {}",
                        name, s.step.line, s.step.concept, s.step.action, s.actual
                    );
                }
                for f in report.failures() {
                    eprintln!("{f}");
                }
                ok &= report.passed();
            }
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
    }
}
