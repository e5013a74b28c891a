//! Queries over HTTP on loopback: the real router (`librarycache::server::router`) served by axum
//! on 127.0.0.1:0 in its own tokio runtime (as `serve` runs it), and a reqwest client in another
//! runtime driving `POST /api/LibraryCache/_getLiked` and `_getPlaylist` from 1 and 16 concurrent
//! connections for a fixed time. Client and server share the machine's cores, as they would on one
//! host. Every answer is checked: the first of each kind in full, the others by status and length.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use librarycache::engine::Engine;
use librarycache::server::{router, AppState};
use serde::Serialize;
use serde_json::{json, Value};

use crate::error::BenchError;
use crate::runner::median;

/// Throughput and latency of one query at one concurrency.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    /// Bytes of one answer (for `_getPlaylist`, the mean).
    pub response_bytes: u64,
}

/// One measured query: its name in the report (`get_liked`, `get_playlist`), and the figures.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpMeasurement {
    pub operation: &'static str,
    pub figures: HttpFigures,
}

/// What to request and what the answers must be.
#[derive(Debug, Clone)]
pub struct HttpPlan {
    /// The user whose liked list `_getLiked` asks for, and the answer expected.
    pub user: String,
    pub expected_liked: Vec<String>,
    /// Playlists to cycle through, with their expected entries.
    pub playlists: Vec<(String, Vec<String>)>,
    /// Concurrency levels, e.g. `[1, 16]`.
    pub clients: Vec<usize>,
    /// Measured time per (query, concurrency); a tenth of it (at least 100 ms) warms up first.
    pub duration: Duration,
}

/// Serves `engine` on loopback and measures the plan's queries at each concurrency.
pub fn measure(engine: Arc<Engine>, plan: &HttpPlan) -> Result<Vec<HttpMeasurement>, BenchError> {
    let server = Server::start(engine)?;
    let result = measure_against(server.addr, plan);
    server.stop();
    result
}

/// The server: its address, and how to stop it.
struct Server {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<Result<(), BenchError>>,
}

impl Server {
    fn start(engine: Arc<Engine>) -> Result<Server, BenchError> {
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
                let app = router(AppState::new(engine));
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
                    .map_err(BenchError::io("serve", "127.0.0.1"))
            })
        });
        let addr = addr
            .recv()
            .map_err(|_| http_error("the server thread ended before binding"))?
            .map_err(BenchError::io("bind", "127.0.0.1:0"))?;
        Ok(Server { addr, stop, thread })
    }

    fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

fn http_error(message: impl Into<String>) -> BenchError {
    BenchError::Backend {
        cache: "ours over HTTP".to_owned(),
        source: message.into().into(),
    }
}

/// A request to send: its URL path, body, and expected answer length (checked on every answer).
#[derive(Debug, Clone)]
struct Request {
    url: String,
    body: Vec<u8>,
    expected_len: usize,
}

fn measure_against(addr: SocketAddr, plan: &HttpPlan) -> Result<Vec<HttpMeasurement>, BenchError> {
    let runtime = tokio::runtime::Runtime::new().map_err(BenchError::io("start a runtime", "client"))?;
    runtime.block_on(async {
        let max_clients = plan.clients.iter().copied().max().unwrap_or(1);
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(max_clients)
            .build()
            .map_err(|e| http_error(format!("cannot build the HTTP client: {e}")))?;
        let base = format!("http://{addr}/api/LibraryCache");
        let liked = vec![
            first_answer(
                &client,
                format!("{base}/_getLiked"),
                json!({ "userId": plan.user }),
                "trackIds",
                &plan.expected_liked,
            )
            .await?,
        ];
        let mut playlists = Vec::with_capacity(plan.playlists.len());
        for (id, entries) in &plan.playlists {
            playlists.push(
                first_answer(
                    &client,
                    format!("{base}/_getPlaylist"),
                    json!({ "playlistId": id }),
                    "entries",
                    entries,
                )
                .await?,
            );
        }
        let mut out = Vec::new();
        for (operation, requests) in [("get_liked", liked), ("get_playlist", playlists)] {
            if requests.is_empty() {
                continue;
            }
            let requests = Arc::new(requests);
            for &clients in &plan.clients {
                let warm = (plan.duration / 10).max(Duration::from_millis(100));
                run_clients(&client, &requests, clients, warm).await?;
                let figures = run_clients(&client, &requests, clients, plan.duration).await?;
                out.push(HttpMeasurement { operation, figures });
            }
        }
        Ok(out)
    })
}

/// Sends one request, checks the answer in full (the list under `field` must be `expected`), and
/// returns the request with the answer's length for the load runs to check against.
async fn first_answer(
    client: &reqwest::Client,
    url: String,
    input: Value,
    field: &str,
    expected: &[String],
) -> Result<Request, BenchError> {
    let body = serde_json::to_vec(&input)?;
    let answer = send(client, &url, &body).await?;
    let value: Value = serde_json::from_slice(&answer)?;
    let got: Vec<&str> = value
        .get(field)
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if got.len() != expected.len() || got.iter().zip(expected).any(|(a, b)| a != b) {
        return Err(BenchError::WrongAnswer {
            cache: "ours over HTTP".to_owned(),
            operation: url,
            detail: format!("{} {field} instead of the {} expected", got.len(), expected.len()),
        });
    }
    Ok(Request {
        url,
        body,
        expected_len: answer.len(),
    })
}

async fn send(client: &reqwest::Client, url: &str, body: &[u8]) -> Result<bytes::Bytes, BenchError> {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_vec())
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
            String::from_utf8_lossy(&bytes)
        )));
    }
    Ok(bytes)
}

/// `clients` tasks, each sending requests one after another (cycling through `requests`, each task
/// starting at its own offset) until `duration` has passed.
async fn run_clients(
    client: &reqwest::Client,
    requests: &Arc<Vec<Request>>,
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
            while Instant::now() < deadline {
                let r = &requests[i % requests.len()];
                i += 1;
                let sent = Instant::now();
                let answer = send(&client, &r.url, &r.body).await?;
                latencies.push(sent.elapsed().as_secs_f64() * 1_000.0);
                if answer.len() != r.expected_len {
                    return Err(http_error(format!(
                        "POST {}: an answer of {} bytes instead of {}",
                        r.url,
                        answer.len(),
                        r.expected_len
                    )));
                }
                bytes += answer.len() as u64;
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
    let seconds = start.elapsed().as_secs_f64();
    let requests = latencies.len() as u64;
    let mean = if latencies.is_empty() {
        0.0
    } else {
        latencies.iter().sum::<f64>() / latencies.len() as f64
    };
    let p99 = percentile(&mut latencies, 0.99);
    Ok(HttpFigures {
        clients,
        requests,
        seconds,
        requests_per_second: if seconds > 0.0 { requests as f64 / seconds } else { 0.0 },
        mean_ms: mean,
        p50_ms: median(&mut latencies),
        p99_ms: p99,
        response_bytes: bytes.checked_div(requests).unwrap_or(0),
    })
}

/// The `q` quantile (nearest rank) of `values`; 0 for none.
pub fn percentile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let rank = (q * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

/// The playlists to cycle through and their expected entries (at most `limit`).
pub fn playlist_answers(playlists: &[crate::model::Playlist], limit: usize) -> Vec<(String, Vec<String>)> {
    playlists
        .iter()
        .take(limit)
        .map(|p| (p.id.clone(), p.entries.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&mut v, 0.99), 99.0);
        assert_eq!(percentile(&mut v, 0.5), 50.0);
        assert_eq!(percentile(&mut [3.0], 0.99), 3.0);
        assert_eq!(percentile(&mut [], 0.99), 0.0);
    }
}
