//! What keeps other web pages from driving the service (issue 18): a browser open on any site
//! can send requests to a loopback server, so every request is checked before it reaches a
//! handler.
//!
//! - **Host** (DNS rebinding): a page on `evil.example` whose name is made to resolve to
//!   127.0.0.1 sends `Host: evil.example:5765`. Only the address the service is bound to (any IP
//!   literal when bound to `0.0.0.0`/`::`), `localhost` with the bound port, and the entries of
//!   `--allowed-hosts` are accepted; anything else is 421 `HOST_NOT_ALLOWED`. A request without
//!   any Host (HTTP/1.0) is not a browser's and passes.
//! - **Origin**: a request carrying an `Origin` other than the service's own (`http(s)://` +
//!   its accepted Host) is 403 `ORIGIN_NOT_ALLOWED` unless the origin is listed in
//!   `--allow-origin`; listed origins get CORS answers (preflights included) from tower-http's
//!   CORS layer.
//! - **Content type**: `POST /api/...` must be `Content-Type: application/json` (415
//!   `UNSUPPORTED_MEDIA_TYPE` otherwise), so a plain HTML form or a "simple" cross-site
//!   `fetch` (text/plain, no preflight) cannot run an action.
//! - **Whole-request deadline**: the request timeout counts from the moment the request
//!   arrived, so a client trickling its body is cut off (408 `REQUEST_TIMEOUT`) instead of
//!   holding a connection for ever; the engine's work gets what is left of it.
//! - **Start-up**: binding beyond loopback without `--token` is refused unless
//!   `--insecure-no-token` says so ([`check_listen`]).

use super::ApiError;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// A `--allowed-hosts` or `--allow-origin` list that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {flag} entry {entry:?}: {why}")]
pub struct ListError {
    pub flag: &'static str,
    pub entry: String,
    pub why: &'static str,
}

/// Why `serve` refuses to start with the address and token it was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "refusing to listen on {addr} without a token: anyone who can reach it could read and change every library and \
     the sources' credentials; give --token (or LIBRARYCACHE_TOKEN), listen on loopback (127.0.0.1), or pass \
     --insecure-no-token to accept that"
)]
pub struct InsecureListen {
    pub addr: SocketAddr,
}

/// Binding beyond loopback needs a token, unless `insecure_no_token` accepts the risk.
pub fn check_listen(addr: SocketAddr, token_set: bool, insecure_no_token: bool) -> Result<(), InsecureListen> {
    if addr.ip().is_loopback() || token_set || insecure_no_token {
        Ok(())
    } else {
        Err(InsecureListen { addr })
    }
}

/// One `--allowed-hosts` entry: a host name or IP (any port), or `host:port`, or `*` (any).
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostRule {
    Any,
    Name { host: String, port: Option<u16> },
}

/// The Host values accepted besides the bound address and `localhost` (`--allowed-hosts`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts(Vec<HostRule>);

impl AllowedHosts {
    /// Reads a comma-separated list of `name`, `name:port`, `[v6]:port` or `*`.
    pub fn parse(list: &str) -> Result<Self, ListError> {
        let mut rules = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if entry == "*" {
                rules.push(HostRule::Any);
                continue;
            }
            let bad = |why| ListError {
                flag: "--allowed-hosts",
                entry: entry.to_string(),
                why,
            };
            if entry.contains("://") || entry.contains('/') {
                return Err(bad("expected a host name or host:port, not a URL"));
            }
            let (host, port) = split_host(entry).ok_or_else(|| bad("expected host or host:port (port 1-65535)"))?;
            if host.is_empty() || !host.chars().all(|c| c.is_ascii_alphanumeric() || "-.:_".contains(c)) {
                return Err(bad("a host name has letters, digits, '-', '.' and '_' only"));
            }
            rules.push(HostRule::Name { host, port });
        }
        Ok(AllowedHosts(rules))
    }

    fn allows(&self, host: &str, port: Option<u16>) -> bool {
        self.0.iter().any(|rule| match rule {
            HostRule::Any => true,
            HostRule::Name { host: h, port: p } => h == host && p.map_or(true, |p| Some(p) == port),
        })
    }
}

/// The origins (`scheme://host[:port]`) other sites may call from (`--allow-origin`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedOrigins(Vec<String>);

impl AllowedOrigins {
    /// Reads a comma-separated list of origins, e.g. `https://app.example,http://localhost:3000`.
    pub fn parse(list: &str) -> Result<Self, ListError> {
        let mut origins = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let bad = |why| ListError {
                flag: "--allow-origin",
                entry: entry.to_string(),
                why,
            };
            let Some((scheme, rest)) = entry.split_once("://") else {
                return Err(bad("expected an origin: http://host[:port] or https://host[:port]"));
            };
            if !matches!(scheme, "http" | "https") {
                return Err(bad("an origin's scheme is http or https"));
            }
            if rest.is_empty() || rest.contains('/') || rest.contains('?') || rest.contains('#') || rest.contains('@') {
                return Err(bad("an origin is scheme://host[:port], without a path, query or user"));
            }
            if split_host(rest).is_none() {
                return Err(bad("the port is not a number from 1 to 65535"));
            }
            origins.push(entry.to_ascii_lowercase());
        }
        Ok(AllowedOrigins(origins))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn allows(&self, origin: &str) -> bool {
        self.0.iter().any(|o| o.eq_ignore_ascii_case(origin))
    }

    /// tower-http's CORS layer for the listed origins: it answers their preflights and adds the
    /// `Access-Control-*` headers to their answers (requests from other origins never reach it:
    /// [`check`] refused them).
    pub fn cors(&self) -> CorsLayer {
        let origins: Vec<HeaderValue> = self.0.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                header::HeaderName::from_static("idempotency-key"),
            ])
            .expose_headers([
                header::HeaderName::from_static(super::routes::FLOW_HEADER),
                header::HeaderName::from_static("idempotent-replayed"),
            ])
            .max_age(Duration::from_secs(600))
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port` → (lower-case host without brackets, port).
fn split_host(text: &str) -> Option<(String, Option<u16>)> {
    let port = |p: &str| p.parse::<u16>().ok().filter(|p| *p != 0);
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after {
            "" => Some((host.to_ascii_lowercase(), None)),
            _ => Some((host.to_ascii_lowercase(), Some(port(after.strip_prefix(':')?)?))),
        };
    }
    match text.rsplit_once(':') {
        // A bare IPv6 address (more than one ':') has no port.
        Some((host, _)) if host.contains(':') => Some((text.to_ascii_lowercase(), None)),
        Some((host, p)) => Some((host.to_ascii_lowercase(), Some(port(p)?))),
        None => Some((text.to_ascii_lowercase(), None)),
    }
}

/// The checks of one running service.
#[derive(Debug, Clone)]
pub struct Guard {
    /// The address the listener is bound to (its real port, also when asked for port 0); `None`
    /// for a router served by someone else (the benchmark): then loopback IPs and `localhost`
    /// on any port are the accepted hosts.
    pub bound: Option<SocketAddr>,
    pub allowed_hosts: AllowedHosts,
    pub allowed_origins: AllowedOrigins,
    /// How long a whole request may take, from its arrival.
    pub request_timeout: Duration,
}

impl Guard {
    /// Whether a request's Host (`host`, `port` as sent; no port means 80) may be served.
    fn host_allowed(&self, host: &str, port: Option<u16>) -> bool {
        if self.allowed_hosts.allows(host, port) {
            return true;
        }
        let ip = host.parse::<IpAddr>().ok();
        match self.bound {
            None => host == "localhost" || ip.is_some_and(|ip| ip.is_loopback()),
            Some(bound) => {
                if port.unwrap_or(80) != bound.port() {
                    return false;
                }
                match ip {
                    None => host == "localhost",
                    // Bound to every interface: any of the machine's addresses (an IP literal is
                    // never a rebound name).
                    Some(_) if bound.ip().is_unspecified() => true,
                    Some(ip) => ip == bound.ip() || (ip.is_loopback() && bound.ip().is_loopback()),
                }
            }
        }
    }
}

/// The host and port a request was sent to (`Host`, or the URI's authority in HTTP/2).
fn request_host(request: &Request) -> Option<Result<(String, Option<u16>), ()>> {
    let text = match request.uri().authority() {
        Some(authority) => authority.as_str().to_string(),
        None => match request.headers().get(header::HOST) {
            Some(value) => match value.to_str() {
                Ok(text) => text.to_string(),
                Err(_) => return Some(Err(())),
            },
            None => return None,
        },
    };
    Some(split_host(text.trim()).ok_or(()))
}

fn host_refused(shown: &str) -> Response {
    ApiError::new(
        StatusCode::MISDIRECTED_REQUEST,
        "HOST_NOT_ALLOWED",
        format!(
            "this service does not answer for the host {shown:?} (a DNS-rebinding guard); use its address or \
             localhost, or list the name in --allowed-hosts"
        ),
    )
    .into_response()
}

/// Whether `headers` say the body is JSON (`application/json`, parameters allowed).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

tokio::task_local! {
    /// When the request being handled must be answered by (see [`remaining`]).
    static DEADLINE: Instant;
}

/// What is left of the current request's time (`fallback` outside a request).
pub fn remaining(fallback: Duration) -> Duration {
    DEADLINE
        .try_with(|deadline| deadline.saturating_duration_since(Instant::now()))
        .unwrap_or(fallback)
}

/// The checks, in order: Host, Origin, content type; then the request runs under its deadline.
pub async fn check(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let host = match request_host(&request) {
        None => None,
        Some(Ok((host, port))) => {
            if !guard.host_allowed(&host, port) {
                let shown = match port {
                    Some(p) if host.contains(':') => format!("[{host}]:{p}"),
                    Some(p) => format!("{host}:{p}"),
                    None => host,
                };
                tracing::warn!(host = %shown, path = %request.uri().path(), "refused a request for another host");
                return host_refused(&shown);
            }
            request
                .headers()
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .map(str::to_ascii_lowercase)
                .or_else(|| request.uri().authority().map(|a| a.as_str().to_ascii_lowercase()))
        }
        Some(Err(())) => return host_refused("(unreadable)"),
    };
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("(unreadable)").to_string();
        let own = host.as_deref().is_some_and(|h| {
            origin.eq_ignore_ascii_case(&format!("http://{h}")) || origin.eq_ignore_ascii_case(&format!("https://{h}"))
        });
        if !own && !guard.allowed_origins.allows(&origin) {
            tracing::warn!(%origin, path = %request.uri().path(), "refused a request from another origin");
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "ORIGIN_NOT_ALLOWED",
                format!("requests from the origin {origin:?} are not allowed; list it in --allow-origin to let its pages call this service"),
            )
            .into_response();
        }
    }
    let api_post = request.method() == Method::POST && request.uri().path().starts_with("/api/");
    if api_post && !is_json(request.headers()) {
        let sent = request
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        return ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            match sent {
                Some(sent) => format!("the Content-Type {sent:?} is not accepted: send the body as application/json"),
                None => "a Content-Type header is required: send the body as application/json".to_string(),
            },
        )
        .into_response();
    }
    within_deadline(&guard, request, next).await
}

/// Runs the request under its deadline: the body must have arrived by then (408 otherwise),
/// and the engine's work gets what is left (`routes::blocking` answers 503 `TIMEOUT` with the
/// flow's id when that runs out).
async fn within_deadline(guard: &Guard, request: Request, next: Next) -> Response {
    let deadline = Instant::now() + guard.request_timeout;
    let late = Arc::new(AtomicBool::new(false));
    let (parts, body) = request.into_parts();
    let body = Body::new(DeadlineBody {
        inner: body,
        sleep: Box::pin(tokio::time::sleep_until(deadline)),
        late: Arc::clone(&late),
    });
    let request = Request::from_parts(parts, body);
    let timeout = guard.request_timeout;
    // A margin past the deadline: the handler's own timeout answers first, naming the flow.
    let work = DEADLINE.scope(deadline, next.run(request));
    let response = match tokio::time::timeout_at(deadline + Duration::from_secs(1), work).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "TIMEOUT",
            format!("no answer within {timeout:?}; any work started goes on and may still complete"),
        )
        .into_response(),
    };
    if late.load(Ordering::Relaxed) {
        let mut refused = ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "REQUEST_TIMEOUT",
            format!("the request body did not arrive within {timeout:?} (--request-timeout); nothing was run"),
        )
        .into_response();
        refused
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return refused;
    }
    response
}

/// A request body that fails once the request's deadline passes (a trickling upload).
struct DeadlineBody {
    inner: Body,
    sleep: Pin<Box<tokio::time::Sleep>>,
    late: Arc<AtomicBool>,
}

/// The error a [`DeadlineBody`] ends with.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct BodyTooSlow;

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        if self.sleep.as_mut().poll(cx).is_ready() {
            self.late.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(Box::new(BodyTooSlow))));
        }
        Pin::new(&mut self.inner).poll_frame(cx).map_err(Into::into)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(bound: &str) -> Guard {
        Guard {
            bound: Some(bound.parse().expect("addr")),
            allowed_hosts: AllowedHosts::parse("music.example, other.example:8080").expect("hosts"),
            allowed_origins: AllowedOrigins::default(),
            request_timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn hosts_are_the_bound_address_localhost_or_listed() {
        let g = guard("127.0.0.1:5765");
        assert!(g.host_allowed("127.0.0.1", Some(5765)));
        assert!(g.host_allowed("localhost", Some(5765)));
        assert!(!g.host_allowed("localhost", Some(80)));
        assert!(!g.host_allowed("localhost", None));
        assert!(!g.host_allowed("evil.example", Some(5765)));
        assert!(!g.host_allowed("10.0.0.1", Some(5765)), "another IP than the bound one");
        assert!(g.host_allowed("music.example", None));
        assert!(g.host_allowed("music.example", Some(443)));
        assert!(g.host_allowed("other.example", Some(8080)));
        assert!(!g.host_allowed("other.example", Some(8081)));
        let any = guard("0.0.0.0:5765");
        assert!(any.host_allowed("192.168.1.10", Some(5765)));
        assert!(!any.host_allowed("192.168.1.10", Some(5766)));
        assert!(!any.host_allowed("evil.example", Some(5765)));
        let v6 = guard("[::1]:5765");
        assert!(v6.host_allowed("::1", Some(5765)));
        let unbound = Guard {
            bound: None,
            ..guard("127.0.0.1:1")
        };
        assert!(unbound.host_allowed("127.0.0.1", Some(40000)));
        assert!(!unbound.host_allowed("evil.example", Some(40000)));
    }

    #[test]
    fn lists_are_checked_with_the_entry_named() {
        assert_eq!(split_host("[::1]:80"), Some(("::1".into(), Some(80))));
        assert_eq!(split_host("::1"), Some(("::1".into(), None)));
        assert_eq!(
            split_host("Host.Example:8080"),
            Some(("host.example".into(), Some(8080)))
        );
        assert_eq!(split_host("host:0"), None);
        let e = AllowedHosts::parse("ok.example, http://bad.example").expect_err("a URL");
        assert_eq!(e.entry, "http://bad.example");
        assert!(e.to_string().starts_with("invalid --allowed-hosts entry"), "{e}");
        assert!(AllowedHosts::parse("x:99999").is_err());
        assert!(AllowedHosts::parse("*").expect("any").allows("whatever", Some(1)));
        let o = AllowedOrigins::parse("https://app.example, http://localhost:3000").expect("origins");
        assert!(o.allows("https://APP.example"));
        assert!(!o.allows("https://app.example:444"));
        for bad in [
            "app.example",
            "ftp://app.example",
            "https://app.example/path",
            "https://u@app.example",
        ] {
            let e = AllowedOrigins::parse(bad).expect_err(bad);
            assert_eq!(e.entry, bad);
        }
    }

    #[test]
    fn listening_beyond_loopback_needs_a_token_or_the_explicit_opt_out() {
        let any: SocketAddr = "0.0.0.0:5765".parse().expect("addr");
        let lo: SocketAddr = "127.0.0.1:5765".parse().expect("addr");
        assert!(check_listen(lo, false, false).is_ok());
        assert!(check_listen(any, true, false).is_ok());
        assert!(check_listen(any, false, true).is_ok());
        let e = check_listen(any, false, false).expect_err("refused");
        assert!(e.to_string().contains("--insecure-no-token"), "{e}");
    }

    #[test]
    fn only_json_is_accepted() {
        let mut h = HeaderMap::new();
        assert!(!is_json(&h));
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(!is_json(&h));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Application/JSON; charset=utf-8"),
        );
        assert!(is_json(&h));
    }
}
