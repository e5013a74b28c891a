//! LibraryCache over HTTP on loopback. The server side ([`Server`]) is the real router
//! (`librarycache::server::router`) served by axum on 127.0.0.1:0 in its own tokio runtime, as
//! `serve` runs it; the bench runs it in a worker process of its own. The client side (reqwest, in
//! the orchestrating process) sends requests one after another ([`sequence`]: writes and requests
//! whose every answer is checked) or from several concurrent connections for a fixed time
//! ([`load`]: every answer checked by status and length, the first of each kind in full). Client
//! and server share the machine's cores, as they would on one host.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use librarycache::engine::Engine;
use librarycache::server::{router, AppState};
use serde::{Deserialize, Serialize};

use crate::error::BenchError;
use crate::stats::Summary;

/// Throughput and latency of one kind of request at one concurrency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpFigures {
    /// Concurrent clients (each one connection, one request at a time).
    pub clients: usize,
    /// Requests answered in the measured window.
    pub requests: u64,
    pub seconds: f64,
    pub requests_per_second: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Bytes of one answer (the mean).
    pub response_bytes: u64,
}

impl HttpFigures {
    fn of(clients: usize, latencies: &[f64], seconds: f64, bytes: u64) -> HttpFigures {
        let s = Summary::of(latencies);
        let requests = latencies.len() as u64;
        HttpFigures {
            clients,
            requests,
            seconds,
            requests_per_second: if seconds > 0.0 { requests as f64 / seconds } else { 0.0 },
            mean_ms: s.mean,
            p50_ms: s.p50,
            p99_ms: s.p99,
            max_ms: s.max,
            response_bytes: bytes.checked_div(requests).unwrap_or(0),
        }
    }
}

/// The server: its address, and how to stop it.
pub struct Server {
    pub addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<Result<(), BenchError>>,
}

impl Server {
    /// Serves `engine` with the service's router on 127.0.0.1 (a free port).
    pub fn start(engine: Arc<Engine>) -> Result<Server, BenchError> {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, addr) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || -> Result<(), BenchError> {
            let runtime = tokio::runtime::Runtime::new().map_err(BenchError::io("start a runtime", "server"))?;
            runtime.block_on(async move {
                let bound = tokio::net::TcpListener::bind("127.0.0.1:0").await;
                let listener = match bound {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return Ok(());
                    }
                };
                let _ = ready.send(listener.local_addr());
                // As `librarycache serve` does: the free heap goes back to the OS now and then.
                let trimming = tokio::spawn(librarycache::server::heap::trim_periodically());
                let app = router(AppState::new(engine));
                let served = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
                    .map_err(BenchError::io("serve", "127.0.0.1"));
                trimming.abort();
                served
            })
        });
        let addr = addr
            .recv()
            .map_err(|_| http_error("the server thread ended before binding"))?
            .map_err(BenchError::io("bind", "127.0.0.1:0"))?;
        Ok(Server { addr, stop, thread })
    }

    /// Stops accepting, lets requests in flight finish, and waits for the server's thread.
    pub fn stop(self) -> Result<(), BenchError> {
        let _ = self.stop.send(());
        self.thread
            .join()
            .map_err(|_| http_error("the server thread panicked"))?
    }
}

fn http_error(message: impl Into<String>) -> BenchError {
    BenchError::Backend {
        cache: "ours over HTTP".to_owned(),
        source: message.into().into(),
    }
}

/// A request to send: its path (after `/api`), its body, and the answer expected: in full for
/// the first answer of a [`load`] and for every answer of a [`sequence`] when `expected` is given,
/// else by status only.
#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    pub body: Bytes,
    pub expected: Option<Bytes>,
}

/// An HTTP client of one server.
pub struct Client {
    base: String,
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl Client {
    /// A client with connections enough for `max_clients` at once.
    pub fn new(addr: SocketAddr, max_clients: usize) -> Result<Client, BenchError> {
        let runtime = tokio::runtime::Runtime::new().map_err(BenchError::io("start a runtime", "client"))?;
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(max_clients.max(1))
            .timeout(Duration::from_secs(600))
            .build()
            .map_err(|e| http_error(format!("cannot build the HTTP client: {e}")))?;
        Ok(Client {
            base: format!("http://{addr}/api"),
            http,
            runtime,
        })
    }

    /// Sends one request and returns the answer (an error unless the status is 200).
    pub fn send(&self, path: &str, body: &Bytes) -> Result<Bytes, BenchError> {
        let url = format!("{}{path}", self.base);
        self.runtime.block_on(send(&self.http, &url, body.clone()))
    }

    /// Sends `requests` one after another, timing each; every answer must be 200 and, when an
    /// answer is expected, that answer. Returns each latency, the answers' digest and their bytes.
    pub fn sequence(&self, requests: &[Request]) -> Result<(Vec<f64>, Vec<Bytes>), BenchError> {
        let mut times = Vec::with_capacity(requests.len());
        let mut answers = Vec::with_capacity(requests.len());
        for r in requests {
            let url = format!("{}{}", self.base, r.path);
            let start = Instant::now();
            let answer = self.runtime.block_on(send(&self.http, &url, r.body.clone()))?;
            times.push(start.elapsed().as_secs_f64() * 1_000.0);
            check(&url, &answer, r.expected.as_ref())?;
            answers.push(answer);
        }
        Ok((times, answers))
    }

    /// `clients` connections, each sending requests one after another (cycling through
    /// `requests`, each starting at its own offset; at least one each) for `duration` after a warm-up of a tenth of
    /// it (at least 100 ms). The first answer of each request is checked in full first.
    pub fn load(&self, requests: &[Request], clients: usize, duration: Duration) -> Result<HttpFigures, BenchError> {
        let mut checked = Vec::with_capacity(requests.len());
        for r in requests {
            let url = format!("{}{}", self.base, r.path);
            let answer = self.runtime.block_on(send(&self.http, &url, r.body.clone()))?;
            check(&url, &answer, r.expected.as_ref())?;
            checked.push((url, r.body.clone(), answer.len()));
        }
        let checked = Arc::new(checked);
        let warm = (duration / 10).max(Duration::from_millis(100));
        self.runtime
            .block_on(run_clients(&self.http, &checked, clients, warm))?;
        self.runtime
            .block_on(run_clients(&self.http, &checked, clients, duration))
    }
}

fn check(url: &str, answer: &Bytes, expected: Option<&Bytes>) -> Result<(), BenchError> {
    match expected {
        Some(e) if e != answer => Err(BenchError::WrongAnswer {
            cache: "ours over HTTP".to_owned(),
            operation: url.to_owned(),
            detail: format!(
                "{} bytes, not the {} expected: {}",
                answer.len(),
                e.len(),
                String::from_utf8_lossy(&answer[..answer.len().min(200)])
            ),
        }),
        _ => Ok(()),
    }
}

async fn send(client: &reqwest::Client, url: &str, body: Bytes) -> Result<Bytes, BenchError> {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| http_error(format!("POST {url}: {e}")))?;
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| http_error(format!("POST {url}: reading the answer: {e}")))?;
    if !status.is_success() {
        return Err(http_error(format!(
            "POST {url}: {status}: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
        )));
    }
    Ok(bytes)
}

async fn run_clients(
    client: &reqwest::Client,
    requests: &Arc<Vec<(String, Bytes, usize)>>,
    clients: usize,
    duration: Duration,
) -> Result<HttpFigures, BenchError> {
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::with_capacity(clients);
    for c in 0..clients.max(1) {
        let client = client.clone();
        let requests = Arc::clone(requests);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut bytes = 0u64;
            let mut i = c * requests.len() / clients.max(1);
            // Each client sends at least one request, however late it starts.
            loop {
                let (url, body, len) = &requests[i % requests.len()];
                i += 1;
                let sent = Instant::now();
                let answer = send(&client, url, body.clone()).await?;
                latencies.push(sent.elapsed().as_secs_f64() * 1_000.0);
                if answer.len() != *len {
                    return Err(http_error(format!(
                        "POST {url}: an answer of {} bytes instead of {len}",
                        answer.len()
                    )));
                }
                bytes += answer.len() as u64;
                if Instant::now() >= deadline {
                    break;
                }
            }
            Ok::<_, BenchError>((latencies, bytes))
        }));
    }
    let mut latencies = Vec::new();
    let mut bytes = 0u64;
    for task in tasks {
        let (mut l, b) = task
            .await
            .map_err(|e| http_error(format!("a client task failed: {e}")))??;
        latencies.append(&mut l);
        bytes += b;
    }
    Ok(HttpFigures::of(
        clients,
        &latencies,
        start.elapsed().as_secs_f64(),
        bytes,
    ))
}

/// Figures of requests sent one at a time (one client), from their latencies.
pub fn sequential_figures(latencies: &[f64], bytes: u64) -> HttpFigures {
    HttpFigures::of(1, latencies, latencies.iter().sum::<f64>() / 1_000.0, bytes)
}
