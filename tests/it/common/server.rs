//! The real `librarycache serve` binary on a loopback port over a data directory the caller
//! owns (keep its `TempDir` alive while the server runs: sled hangs if its directory vanishes).
//!
//! The server binds port 0 itself and the test reads the port from its "listening" log line
//! ([`spawn_listening`]): a port picked by the test and freed for the server to bind could be
//! taken meanwhile by another test of this binary, and its `/healthz` answered by that test's
//! server.

use serde_json::Value;
use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:PORT`; empty until [`Server::ready`] (or [`Server::start`]) read it.
    pub base: String,
    pub client: reqwest::blocking::Client,
    listening: Option<mpsc::Receiver<String>>,
}

/// Spawns `command`, a `serve` told to listen on port 0 (`--addr 127.0.0.1:0`), with its
/// standard error piped: the receiver gets the address it bound (`127.0.0.1:PORT`) from its
/// `librarycache listening` log line. The rest of the log is read and dropped, so the pipe never
/// fills. `RUST_LOG` is removed so the line is logged (and the trace log stays off).
pub fn spawn_listening(command: &mut Command) -> (Child, mpsc::Receiver<String>) {
    let mut child = command
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .spawn()
        .expect("server starts");
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let (Some(sender), Some(addr)) = (&tx, listening_addr(&line)) {
                let _ = sender.send(addr);
                tx = None;
            }
        }
    });
    (child, rx)
}

/// The address in a `librarycache listening addr=…` log line (its colours taken out).
pub fn listening_addr(line: &str) -> Option<String> {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // An ANSI escape: `ESC [ … letter`.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    if !plain.contains("librarycache listening") {
        return None;
    }
    let addr = plain.split_once("addr=")?.1.split_whitespace().next()?;
    Some(addr.to_string())
}

/// Waits for the address [`spawn_listening`] reads, failing if `child` exits first or it takes
/// longer than `limit`.
pub fn await_listening(child: &mut Child, listening: &mpsc::Receiver<String>, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        match listening.recv_timeout(Duration::from_millis(50)) {
            Ok(addr) => return addr,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait().expect("wait");
                panic!("the server exited ({status}) before it listened");
            }
        }
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("the server exited ({status}) before it listened");
        }
        assert!(Instant::now() < deadline, "the server did not listen within {limit:?}");
    }
}

/// The actions of a `GET /api/flows/{flow}` report, in order, each named `Concept.action`.
pub fn action_names(report: &Value) -> Vec<String> {
    report["actions"]
        .as_array()
        .map(|actions| {
            actions
                .iter()
                .map(|a| {
                    format!(
                        "{}.{}",
                        a["concept"].as_str().unwrap_or(""),
                        a["action"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// One HTTP answer: status, JSON body (Null when the body is not JSON), and headers of interest.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    /// The `x-flow-id` header.
    pub flow: String,
    /// Whether the answer is an idempotency key's remembered one.
    pub replayed: bool,
}

/// A blocking client that does not decompress (answers are read as sent) and gives up after 60 s.
pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

impl Server {
    /// Starts the server and waits until it answers `/healthz`.
    ///
    /// `store` is a sled directory or a PostgreSQL URL (see `TestStore::arg`).
    pub fn start(store: impl AsRef<std::ffi::OsStr>, extra: &[&str]) -> Server {
        Self::spawn(store, extra).ready()
    }

    /// Waits until the spawned server answers `/healthz`.
    pub fn ready(self) -> Server {
        let mut server = self;
        if let Some(listening) = server.listening.take() {
            let addr = await_listening(&mut server.child, &listening, Duration::from_secs(30));
            server.base = format!("http://{addr}");
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if server.healthy() {
                return server;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("server did not answer /healthz in time");
    }

    /// Starts the server without waiting for it to answer.
    pub fn spawn(store: impl AsRef<std::ffi::OsStr>, extra: &[&str]) -> Server {
        Self::spawn_under(&[], store, extra)
    }

    /// Starts the server as the last argument of `wrapper` (e.g. `strace -f -o FILE`); with an
    /// empty `wrapper`, directly.
    pub fn spawn_under(wrapper: &[&str], store: impl AsRef<std::ffi::OsStr>, extra: &[&str]) -> Server {
        let binary = env!("CARGO_BIN_EXE_librarycache");
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(binary);
                c
            }
            None => Command::new(binary),
        };
        command
            .args(["serve", "--addr", "127.0.0.1:0", "--store"])
            .arg(store)
            .arg("--syncs")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("syncs"))
            .args(extra)
            .env_remove("LIBRARYCACHE_TOKEN")
            .env_remove("LIBRARYCACHE_STORE")
            .env_remove("LIBRARYCACHE_BODY_LIMIT")
            .stdout(Stdio::null());
        let (child, listening) = spawn_listening(&mut command);
        Server {
            child,
            base: String::new(),
            client: client(),
            listening: Some(listening),
        }
    }

    /// A server the caller spawned with [`spawn_listening`] (its own flags, `--addr
    /// 127.0.0.1:0`); [`Server::ready`] reads its address.
    pub fn spawned(child: Child, listening: mpsc::Receiver<String>) -> Server {
        Server {
            child,
            base: String::new(),
            client: client(),
            listening: Some(listening),
        }
    }

    /// A server the caller started, listening at `base`.
    pub fn at(child: Child, base: String) -> Server {
        Server {
            child,
            base,
            client: client(),
            listening: None,
        }
    }

    /// `GET /healthz` answers 200.
    pub fn healthy(&self) -> bool {
        self.health().is_ok()
    }

    /// `GET /healthz` on a fresh connection (a connection a refused request left behind is
    /// never reused); the status or the client's error when it is not a 200.
    pub fn health(&self) -> Result<(), String> {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(15))
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|e| e.to_string())?;
        match client.get(format!("{}/healthz", self.base)).send() {
            Ok(r) if r.status() == 200 => Ok(()),
            Ok(r) => Err(format!(
                "/healthz answered {}: {}",
                r.status(),
                r.text().unwrap_or_default()
            )),
            Err(e) => Err(format!("/healthz: {e}")),
        }
    }

    pub fn post(&self, path: &str, body: &Value) -> Reply {
        self.post_raw(path, body.to_string().into_bytes())
    }

    pub fn post_raw(&self, path: &str, body: Vec<u8>) -> Reply {
        send(&self.client, &self.base, path, body, None).expect("request")
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The answer's `x-flow-id` header ("" when it has none).
pub fn flow_of(response: &reqwest::blocking::Response) -> String {
    response
        .headers()
        .get("x-flow-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// POSTs `body` to `base` + `path` (with an `Idempotency-Key` when given). An error is a
/// transport failure: the connection broke before a whole answer arrived.
pub fn send(
    client: &reqwest::blocking::Client,
    base: &str,
    path: &str,
    body: Vec<u8>,
    key: Option<&str>,
) -> Result<Reply, reqwest::Error> {
    let mut request = client
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let resp = request.send()?;
    let status = resp.status().as_u16();
    let flow = flow_of(&resp);
    let replayed = resp.headers().contains_key("idempotent-replayed");
    let bytes = resp.bytes()?;
    Ok(Reply {
        status,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        flow,
        replayed,
    })
}

/// The value of the sample `name{labels}` (labels as rendered, in any order), or 0.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(series, _)| {
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            n == name && labels.iter().all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|(_, v)| v.parse::<f64>().ok())
        .sum()
}

/// A small deterministic random number generator (splitmix64), so a run is described by its seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `range` (half open).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo)
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// The seed of a randomised test: `$LIBRARYCACHE_SEED` when set, otherwise the clock (printed, so
/// a failure can be rerun with the same choices).
pub fn seed(test: &str) -> u64 {
    let seed = std::env::var("LIBRARYCACHE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(7)
        });
    println!("{test}: seed {seed} (rerun with LIBRARYCACHE_SEED={seed})");
    seed
}

/// Whether the long versions of the reliability tests were asked for (`LIBRARYCACHE_LONG=1`).
pub fn long() -> bool {
    std::env::var("LIBRARYCACHE_LONG").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Runs `work` on its own thread and fails the test if it has not finished within `limit` (a
/// deadlock shows up as this failure, not as a hung test run).
pub fn within<T: Send + 'static>(limit: Duration, work: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let out = work();
        let _ = tx.send(());
        out
    });
    match rx.recv_timeout(limit) {
        Ok(()) => handle.join().expect("the work panicked"),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            // The work panicked before sending: re-raise its panic.
            match handle.join() {
                Ok(out) => out,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("not finished within {limit:?}: a deadlock or a hang")
        }
    }
}

/// The `p`-th percentile (0–100) of sorted durations.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p / 100.0).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}
