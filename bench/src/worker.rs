//! The worker processes: the bench binary re-executed as `librarycache-bench worker '<task>'`
//! runs one [`Task`] on one cache and prints its result as one line of JSON on stdout (progress
//! goes to stderr). Each cache thus runs in a process of its own, with a heap of its own, and a
//! measurement that needs a fresh process (an ingest's peak memory, a cold start) gets one.
//! [`spawn`] is the orchestrator's side; [`Task::Serve`] is an HTTP server driven over stdin.

use std::collections::BTreeMap;
use std::io::{BufRead, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::answers::{normal_form, Form};
use crate::cache::{user_body, CacheKind, Query};
use crate::concurrent::{self, Phase};
use crate::error::BenchError;
use crate::memory::{self, Memory};
use crate::model::Body;
use crate::plan::{read_body, read_lines, Plan};
use crate::stats::Digest;
use crate::suite::{self, elapsed_ms, SuiteResult};

/// The first argument that makes the binary a worker.
pub const WORKER_ARG: &str = "worker";

/// One job for a worker process.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "snake_case")]
pub enum Task {
    /// Parse a body `reps` times into the typed input and into a `serde_json::Value`.
    Parse { body: PathBuf, reps: usize },
    /// One ingest of `body` into a new cache in `dir`, with the process's memory around it.
    Ingest {
        cache: CacheKind,
        dir: PathBuf,
        body: PathBuf,
    },
    /// The in-process steps of the plan in `plan` on the cache in `dir` ([`suite::run`]).
    Suite {
        cache: CacheKind,
        dir: PathBuf,
        plan: PathBuf,
    },
    /// A cold start: open the cache in `dir` and answer the first `_getLiked` of `user`.
    Cold {
        cache: CacheKind,
        dir: PathBuf,
        user: String,
    },
    /// The plan's growth merges on the cache in `dir`, each timed, and the disk before and after.
    Growth {
        cache: CacheKind,
        dir: PathBuf,
        plan: PathBuf,
    },
    /// Reads during big writes ([`concurrent::run`]) on a new cache in `dir`.
    Concurrent {
        cache: CacheKind,
        dir: PathBuf,
        plan: PathBuf,
    },
    /// A rebuild of the cache in `dir`.
    Rebuild { cache: CacheKind, dir: PathBuf },
    /// Syncs of the bodies given, in order, on the cache in `dir`, each timed.
    Syncs {
        cache: CacheKind,
        dir: PathBuf,
        bodies: Vec<(String, PathBuf)>,
    },
    /// LibraryCache served over HTTP from `dir`; prints `{"addr"}`, then answers the commands
    /// `reset` (the peak memory), `memory` and `quit` read from stdin, one per line.
    Serve { cache: CacheKind, dir: PathBuf },
}

impl Task {
    fn describe(&self) -> String {
        let (what, cache) = match self {
            Task::Parse { .. } => ("parse", None),
            Task::Ingest { cache, .. } => ("ingest", Some(cache)),
            Task::Suite { cache, .. } => ("suite", Some(cache)),
            Task::Cold { cache, .. } => ("cold start", Some(cache)),
            Task::Growth { cache, .. } => ("growth", Some(cache)),
            Task::Concurrent { cache, .. } => ("reads during writes", Some(cache)),
            Task::Rebuild { cache, .. } => ("rebuild", Some(cache)),
            Task::Syncs { cache, .. } => ("syncs", Some(cache)),
            Task::Serve { cache, .. } => ("serve", Some(cache)),
        };
        match cache {
            Some(c) => format!("{what} on {}", c.name()),
            None => what.to_owned(),
        }
    }
}

/// What [`Task::Parse`] measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ParseResult {
    pub typed_ms: Vec<f64>,
    pub value_ms: Vec<f64>,
}

/// What [`Task::Ingest`] measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IngestResult {
    pub ms: f64,
    /// The answer in its normal form's digest.
    pub answer: String,
    /// Resident memory with the body read, before the ingest.
    pub before: Memory,
    /// Resident memory after the ingest, and its peak during it.
    pub after: Memory,
    pub body_bytes: u64,
    pub bytes_on_disk: u64,
}

/// What [`Task::Cold`] measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ColdResult {
    /// Opening the cache.
    pub open_ms: f64,
    /// Opening and the first `_getLiked`.
    pub ms: f64,
    /// The digest of the first `_getLiked`'s answer.
    pub answer: String,
    pub memory: Memory,
}

/// What [`Task::Growth`] measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GrowthResult {
    pub times_ms: Vec<f64>,
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// The digest of `_getLiked` after the merges.
    pub liked: String,
}

/// What [`Task::Rebuild`] measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RebuildResult {
    pub ms: f64,
    pub events: Option<u64>,
    pub bytes_on_disk: u64,
}

/// What [`Task::Syncs`] measured: each sync's time and answer (normal form), by name.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncsResult {
    pub syncs: Vec<(String, f64, String)>,
}

/// The address [`Task::Serve`] listens on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Listening {
    pub addr: std::net::SocketAddr,
}

/// Runs the task given as the worker's argument and prints its result; the binary's `main` calls
/// it when its first argument is [`WORKER_ARG`].
pub fn main(arg: &str) -> Result<(), BenchError> {
    let task: Task = serde_json::from_str(arg)?;
    let result = run(&task)?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{result}").map_err(BenchError::io("write", "stdout"))?;
    stdout.flush().map_err(BenchError::io("write", "stdout"))
}

fn to_json(value: &impl Serialize) -> Result<String, BenchError> {
    Ok(serde_json::to_string(value)?)
}

fn run(task: &Task) -> Result<String, BenchError> {
    match task {
        Task::Parse { body, reps } => {
            let bytes = read_body(body)?;
            let mut out = ParseResult {
                typed_ms: Vec::new(),
                value_ms: Vec::new(),
            };
            for _ in 0..(*reps).max(1) {
                let start = Instant::now();
                let parsed: Body = serde_json::from_slice(&bytes)?;
                out.typed_ms.push(elapsed_ms(start));
                drop(parsed);
                let start = Instant::now();
                let parsed: serde_json::Value = serde_json::from_slice(&bytes)?;
                out.value_ms.push(elapsed_ms(start));
                drop(parsed);
            }
            to_json(&out)
        }
        Task::Ingest { cache, dir, body } => {
            remove_dir(dir)?;
            let bytes = read_body(body)?;
            let mut opened = cache.open(dir)?;
            memory::reset_peak();
            let before = memory::now();
            let start = Instant::now();
            let answer = opened.ingest(&bytes)?;
            let ms = elapsed_ms(start);
            let after = memory::now();
            let out = IngestResult {
                ms,
                answer: Digest::of(&normal_form(Form::Write, &answer)?),
                before,
                after,
                body_bytes: bytes.len() as u64,
                bytes_on_disk: opened.bytes_on_disk()?,
            };
            drop(opened);
            cache.wait_closed(dir)?;
            to_json(&out)
        }
        Task::Suite { cache, dir, plan } => {
            let plan = Plan::read(plan)?;
            let name = format!("{}/{}", plan.label, cache.name());
            let out: SuiteResult = suite::run(cache, dir, &plan, &mut |what| eprintln!("  {name}: {what}"))?;
            to_json(&out)
        }
        Task::Cold { cache, dir, user } => {
            let body = user_body(user);
            let start = Instant::now();
            let mut opened = cache.open(dir)?;
            let open_ms = elapsed_ms(start);
            let answer = opened.query(Query::GetLiked, &body)?;
            let ms = elapsed_ms(start);
            let out = ColdResult {
                open_ms,
                ms,
                answer: Digest::of(&answer),
                memory: memory::now(),
            };
            drop(opened);
            cache.wait_closed(dir)?;
            to_json(&out)
        }
        Task::Growth { cache, dir, plan } => {
            let plan = Plan::read(plan)?;
            let Some(step) = &plan.growth else {
                return Err(BenchError::Backend {
                    cache: cache.name().to_owned(),
                    source: "the plan has no growth merges".into(),
                });
            };
            let bodies = read_lines(&step.file)?;
            let mut opened = cache.open(dir)?;
            let bytes_before = opened.bytes_on_disk()?;
            let mut times_ms = Vec::with_capacity(bodies.len());
            for body in &bodies {
                let start = Instant::now();
                opened.merge(body)?;
                times_ms.push(elapsed_ms(start));
            }
            let liked = Digest::of(&opened.query(Query::GetLiked, &user_body(&plan.user))?);
            let out = GrowthResult {
                times_ms,
                bytes_before,
                bytes_after: opened.bytes_on_disk()?,
                liked,
            };
            drop(opened);
            cache.wait_closed(dir)?;
            to_json(&out)
        }
        Task::Concurrent { cache, dir, plan } => {
            remove_dir(dir)?;
            let plan = Plan::read(plan)?;
            let phases: Vec<Phase> = concurrent::run(cache, dir, &plan)?;
            to_json(&phases)
        }
        Task::Rebuild { cache, dir } => {
            let mut opened = cache.open(dir)?;
            let start = Instant::now();
            let events = opened.rebuild()?;
            let out = RebuildResult {
                ms: elapsed_ms(start),
                events,
                bytes_on_disk: opened.bytes_on_disk()?,
            };
            drop(opened);
            cache.wait_closed(dir)?;
            to_json(&out)
        }
        Task::Syncs { cache, dir, bodies } => {
            let mut opened = cache.open(dir)?;
            let mut syncs = Vec::with_capacity(bodies.len());
            for (name, path) in bodies {
                let body = read_body(path)?;
                let start = Instant::now();
                let answer = opened.sync(&body)?;
                syncs.push((
                    name.clone(),
                    elapsed_ms(start),
                    Digest::of(&normal_form(Form::Write, &answer)?),
                ));
            }
            drop(opened);
            cache.wait_closed(dir)?;
            to_json(&SyncsResult { syncs })
        }
        Task::Serve { cache, dir } => serve(cache, dir),
    }
}

fn serve(kind: &CacheKind, dir: &Path) -> Result<String, BenchError> {
    remove_dir(dir)?;
    let cache = kind.open(dir)?;
    let Some(engine) = cache.engine().cloned() else {
        return Err(BenchError::Backend {
            cache: kind.name().to_owned(),
            source: "only LibraryCache is served over HTTP".into(),
        });
    };
    let server = crate::http::Server::start(engine)?;
    let mut stdout = std::io::stdout().lock();
    let say = |out: &mut std::io::StdoutLock<'_>, line: String| -> Result<(), BenchError> {
        writeln!(out, "{line}").map_err(BenchError::io("write", "stdout"))?;
        out.flush().map_err(BenchError::io("write", "stdout"))
    };
    say(&mut stdout, to_json(&Listening { addr: server.addr })?)?;
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(BenchError::io("read", "stdin"))?;
        match line.trim() {
            "reset" => {
                memory::reset_peak();
                say(&mut stdout, to_json(&memory::now())?)?;
            }
            "memory" => say(&mut stdout, to_json(&memory::now())?)?,
            "quit" => break,
            _ => {}
        }
    }
    server.stop()?;
    drop(cache);
    kind.wait_closed(dir)?;
    to_json(&serde_json::json!({ "stopped": true }))
}

fn remove_dir(dir: &Path) -> Result<(), BenchError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(BenchError::io("remove", dir)(e)),
    }
}

/// Runs `task` in a new worker process and returns its result.
pub fn spawn<T: DeserializeOwned>(task: &Task) -> Result<T, BenchError> {
    let exe = std::env::current_exe().map_err(BenchError::io("find", "the bench's own executable"))?;
    let output = Command::new(&exe)
        .arg(WORKER_ARG)
        .arg(serde_json::to_string(task)?)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .map_err(BenchError::io("run", &exe))?;
    if !output.status.success() {
        return Err(BenchError::Worker {
            task: task.describe(),
            detail: format!("it ended with {} (its message is above)", output.status),
        });
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let last = text.lines().last().unwrap_or_default();
    serde_json::from_str(last).map_err(|e| BenchError::Worker {
        task: task.describe(),
        detail: format!("its result does not read: {e}"),
    })
}

/// A [`Task::Serve`] worker: its address, and a line protocol over its stdin and stdout.
pub struct Served {
    pub addr: std::net::SocketAddr,
    child: Child,
    stdin: ChildStdin,
    stdout: std::io::BufReader<ChildStdout>,
}

impl Served {
    /// Starts LibraryCache's server in a worker process on a new store in `dir`.
    pub fn start(cache: &CacheKind, dir: &Path) -> Result<Served, BenchError> {
        let task = Task::Serve {
            cache: cache.clone(),
            dir: dir.to_path_buf(),
        };
        let exe = std::env::current_exe().map_err(BenchError::io("find", "the bench's own executable"))?;
        let mut child = Command::new(&exe)
            .arg(WORKER_ARG)
            .arg(serde_json::to_string(&task)?)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(BenchError::io("run", &exe))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(BenchError::Worker {
                task: task.describe(),
                detail: "no pipes to the server process".to_owned(),
            });
        };
        let mut served = Served {
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            child,
            stdin,
            stdout: std::io::BufReader::new(stdout),
        };
        let listening: Listening = served.read_line()?;
        served.addr = listening.addr;
        Ok(served)
    }

    fn read_line<T: DeserializeOwned>(&mut self) -> Result<T, BenchError> {
        let mut line = String::new();
        let n = self
            .stdout
            .read_line(&mut line)
            .map_err(BenchError::io("read", "the server process's output"))?;
        if n == 0 {
            return Err(BenchError::Worker {
                task: "serve".to_owned(),
                detail: "the server process ended early (its message is above)".to_owned(),
            });
        }
        Ok(serde_json::from_str(line.trim())?)
    }

    fn command<T: DeserializeOwned>(&mut self, command: &str) -> Result<T, BenchError> {
        writeln!(self.stdin, "{command}").map_err(BenchError::io("write", "the server process's input"))?;
        self.stdin
            .flush()
            .map_err(BenchError::io("write", "the server process's input"))?;
        self.read_line()
    }

    /// Resets the server process's peak memory; answers its memory now.
    pub fn reset_peak(&mut self) -> Result<Memory, BenchError> {
        self.command("reset")
    }

    /// The server process's memory: now, and its peak since the last reset.
    pub fn memory(&mut self) -> Result<Memory, BenchError> {
        self.command("memory")
    }

    /// Stops the server and waits for its process.
    pub fn stop(mut self) -> Result<(), BenchError> {
        let _: serde_json::Value = self.command("quit")?;
        let status = self
            .child
            .wait()
            .map_err(BenchError::io("wait for", "the server process"))?;
        if status.success() {
            Ok(())
        } else {
            Err(BenchError::Worker {
                task: "serve".to_owned(),
                detail: format!("it ended with {status}"),
            })
        }
    }
}

/// Checks of a suite that disagree with `expected` (name, got, expected).
pub fn disagreements<'a>(
    got: &'a BTreeMap<String, String>,
    expected: &'a BTreeMap<String, String>,
) -> Vec<(&'a str, &'a str, &'a str)> {
    got.iter()
        .filter_map(|(name, digest)| match expected.get(name) {
            Some(e) if e != digest => Some((name.as_str(), digest.as_str(), e.as_str())),
            _ => None,
        })
        .collect()
}
