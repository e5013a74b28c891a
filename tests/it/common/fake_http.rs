//! What the stand-ins for outside services share (tests/it/common/spotify.rs, plex.rs, lastfm.rs):
//! the router served on a free loopback port by a runtime of its own, which stops when the last
//! handle to it is dropped; and, for the fakes that gate requests by path, the request log and
//! the injected faults ([`Script`]).

use axum::response::Response;
use axum::Router;
use std::collections::HashMap;
use std::sync::Arc;

/// A running fake service.
#[derive(Clone)]
pub struct Served {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    _runtime: Arc<tokio::runtime::Runtime>,
}

/// Serves `app` on a free loopback port.
pub fn serve(app: Router) -> Served {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    runtime.spawn(async move { axum::serve(listener, app).await.ok() });
    Served {
        base,
        _runtime: Arc::new(runtime),
    }
}

/// A fake that gates its requests with a [`Script`] (Spotify, Plex): the script's faults,
/// throttles and request log, on the fake. A fake gives access to its script; the rest follows.
pub trait Scripted {
    /// Runs `f` on the fake's script.
    fn script<T>(&self, f: impl FnOnce(&mut Script) -> T) -> T;

    /// The next `times` requests whose path starts with `prefix` answer 429 with
    /// `Retry-After: retry_after`.
    fn rate_limit(&self, prefix: &str, retry_after: u64, times: u32) {
        self.script(|s| s.fault(prefix, 429, Some(retry_after), times));
    }

    /// The next `times` requests whose path starts with `prefix` answer `status` (a 5xx).
    fn fail(&self, prefix: &str, status: u16, times: u32) {
        self.script(|s| s.fault(prefix, status, None, times));
    }

    /// Every `n`-th request from now on answers 429 with `Retry-After: secs`.
    fn throttle_every(&self, n: u64, secs: u64) {
        self.script(|s| s.throttle_every(n, secs));
    }

    /// No more 429s every `n`-th request.
    fn stop_throttling(&self) {
        self.script(Script::stop_throttling);
    }

    /// The `n`-th request from now on answers 429 with `Retry-After: secs`, once.
    fn throttle_request(&self, n: u64, secs: u64) {
        self.script(|s| s.throttle_request(n, secs));
    }

    /// The requests answered with an injected fault, as logged.
    fn faulted(&self) -> Vec<String> {
        self.script(|s| s.faulted())
    }

    /// The requests served so far, as the fake logs them (`path?query`, and Plex's paging
    /// headers when sent).
    fn requests(&self) -> Vec<String> {
        self.script(|s| s.requests())
    }

    /// How many requests so far had a path starting with `prefix`.
    fn count(&self, prefix: &str) -> usize {
        self.script(|s| s.count(prefix))
    }

    fn clear_log(&self) {
        self.script(Script::clear_log);
    }
}

/// What a fake was asked (its request log) and the faults it was told to answer with, for the
/// fakes that gate every request by path (Spotify, Plex).
#[derive(Default)]
pub struct Script {
    faults: Vec<Fault>,
    log: Vec<String>,
    /// Every `n`-th gated request answers 429 with `Retry-After: secs` (a rolling rate limit).
    every: Option<(u64, u64)>,
    /// The request with this number (counted from the first gated one) answers 429 with
    /// `Retry-After: secs`, once.
    at: Vec<(u64, u64)>,
    /// Gated requests so far.
    served: u64,
    /// The logged requests that were answered with an injected fault.
    faulted: Vec<String>,
}

/// An injected fault: the next `times` requests whose path starts with `prefix` answer `status`
/// (with `Retry-After` when given).
struct Fault {
    prefix: String,
    status: u16,
    retry_after: Option<u64>,
    times: u32,
}

impl Script {
    /// The next `times` requests whose path starts with `prefix` answer `status`.
    pub fn fault(&mut self, prefix: &str, status: u16, retry_after: Option<u64>, times: u32) {
        self.faults.push(Fault {
            prefix: prefix.into(),
            status,
            retry_after,
            times,
        });
    }

    /// Every `n`-th request from now on answers 429 with `Retry-After: secs`.
    pub fn throttle_every(&mut self, n: u64, secs: u64) {
        self.every = Some((n.max(1), secs));
    }

    /// No more 429s every `n`-th request.
    pub fn stop_throttling(&mut self) {
        self.every = None;
    }

    /// The `n`-th request from now on answers 429 with `Retry-After: secs`, once.
    pub fn throttle_request(&mut self, n: u64, secs: u64) {
        self.at.push((self.served + n, secs));
    }

    /// The requests answered with an injected fault (a 429, a 5xx), as logged.
    pub fn faulted(&self) -> Vec<String> {
        self.faulted.clone()
    }

    /// Logs a request as `path?k=v&…` (query sorted) followed by `suffix`.
    pub fn record(&mut self, path: &str, query: &HashMap<String, String>, suffix: &str) {
        let mut q: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        q.sort();
        self.log.push(format!("{path}?{}{suffix}", q.join("&")));
    }

    /// Logs a line as it is.
    pub fn record_line(&mut self, line: &str) {
        self.log.push(line.into());
    }

    /// The answer of the fault due for `path`, if any (counting it down): `error(status)` with
    /// the fault's `Retry-After`.
    pub fn due(&mut self, path: &str, error: impl FnOnce(u16) -> Response) -> Option<Response> {
        self.served += 1;
        let n = self.served;
        let scheduled = self
            .at
            .iter()
            .position(|(at, _)| *at == n)
            .map(|i| self.at.remove(i).1)
            .or_else(|| self.every.filter(|(every, _)| n % every == 0).map(|(_, secs)| secs));
        let (status, retry_after) = match scheduled {
            Some(secs) => (429, Some(secs)),
            None => {
                let f = self
                    .faults
                    .iter_mut()
                    .find(|f| f.times > 0 && path.starts_with(&f.prefix))?;
                f.times -= 1;
                (f.status, f.retry_after)
            }
        };
        if let Some(last) = self.log.last() {
            self.faulted.push(last.clone());
        }
        let mut response = error(status);
        if let Some(s) = retry_after {
            response
                .headers_mut()
                .insert("retry-after", s.to_string().parse().expect("header"));
        }
        Some(response)
    }

    /// The requests logged so far.
    pub fn requests(&self) -> Vec<String> {
        self.log.clone()
    }

    /// How many logged requests start with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.log.iter().filter(|r| r.starts_with(prefix)).count()
    }

    pub fn clear_log(&mut self) {
        self.log.clear();
        self.faulted.clear();
    }
}
