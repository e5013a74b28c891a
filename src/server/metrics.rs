//! `GET /metrics` in Prometheus text format, and the request counts and latencies behind it.
//! The families are listed in `crate::observe`; the engine records commits, flushes, flows,
//! actions and sync firings as they happen, this module the HTTP requests, and a scrape reads
//! the sources' reads and the store's size from the store at that moment.

use super::{ApiError, AppState};
use crate::engine::Engine;
use crate::observe;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Histogram buckets, in seconds: 100 µs to 60 s.
const BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's Prometheus recorder, installed on first use (None if another recorder was
/// installed first).
pub fn handle() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().set_buckets(BUCKETS).ok()?.build_recorder();
            let handle = recorder.handle();
            match metrics::set_global_recorder(recorder) {
                Ok(()) => Some(handle),
                Err(e) => {
                    tracing::warn!(error = %e, "metrics: another recorder is installed; GET /metrics answers 503");
                    None
                }
            }
        })
        .clone()
}

/// Drains the recorder's histogram samples now and then, so memory stays bounded between
/// scrapes.
pub async fn upkeep() {
    let Some(handle) = handle() else { return };
    let mut every = tokio::time::interval(Duration::from_secs(5));
    loop {
        every.tick().await;
        handle.run_upkeep();
    }
}

/// What a scrape needs besides the engine.
#[derive(Debug, Clone, Default)]
pub struct MetricsConfig {
    /// The embedded store's directory, whose size is reported (None on PostgreSQL).
    pub store_dir: Option<PathBuf>,
}

/// Counts and times every request by method, route and status.
pub async fn record(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_string();
    let route = route_of(&state.engine, request.uri().path());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!(observe::HTTP_REQUESTS, &labels).increment(1);
    metrics::histogram!(observe::HTTP_DURATION, &labels).record(started.elapsed().as_secs_f64());
    response
}

/// A request's route as a label of bounded cardinality: the fixed paths as they are, a concept
/// call as `/api/{Concept}/{action}` when the concept has that action, a request path when a
/// sync answers it, and `/api/{path}` or `other` for everything else.
fn route_of(engine: &Engine, path: &str) -> String {
    match path {
        "/" | "/healthz" | "/livez" | "/metrics" | "/api/schema" | "/api/openapi.json" => return path.to_string(),
        _ => {}
    }
    let Some(rest) = path.strip_prefix("/api/") else {
        return "other".to_string();
    };
    if rest.starts_with("flows/") {
        return "/api/flows/{flow}".to_string();
    }
    if let Some((concept, action)) = rest.split_once('/') {
        if engine
            .registry()
            .get(concept)
            .is_some_and(|c| c.spec().action(action).is_some())
        {
            return format!("/api/{concept}/{action}");
        }
    }
    let request = format!("/{rest}");
    if !engine
        .syncs()
        .mentioning("Requesting", "request", "path", &request)
        .is_empty()
    {
        return format!("/api{request}");
    }
    "/api/{path}".to_string()
}

/// `GET /metrics`: behind the token when one is set.
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    state.token.check(&headers)?;
    let Some(handle) = handle() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "METRICS_UNAVAILABLE",
            "this process has no Prometheus recorder",
        ));
    };
    let (engine, store_dir) = (Arc::clone(&state.engine), state.metrics.store_dir.clone());
    tokio::task::spawn_blocking(move || {
        sources(&engine);
        if let Some(dir) = store_dir {
            metrics::gauge!(observe::STORE_SIZE).set(dir_size(&dir) as f64);
        }
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", format!("metrics: {e}")))?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        handle.render(),
    )
        .into_response())
}

/// Each source's reads as the store has them now.
fn sources(engine: &Engine) {
    let now = engine.now();
    for source in engine.registry().sources() {
        let mut counts = [
            ("connected", 0u64),
            ("running", 0),
            ("failed", 0),
            ("rate_limited", 0),
            ("needs_reauth", 0),
        ];
        let mut retry_at: i64 = 0;
        let users = engine
            .query(&source, "_getConnections", json!({}))
            .ok()
            .and_then(|v| v.get("userIds").cloned())
            .and_then(|v| serde_json::from_value::<Vec<String>>(v).ok())
            .unwrap_or_default();
        for user in users {
            counts[0].1 += 1;
            let Ok(fetch) = engine.query(&source, "_getFetch", json!({ "userId": user })) else {
                continue;
            };
            let phase = fetch["phase"].as_str().unwrap_or_default();
            if !matches!(phase, "idle" | "done" | "failed" | "") {
                counts[1].1 += 1;
            }
            if phase == "failed" {
                counts[2].1 += 1;
            }
            if let Some(at) = fetch
                .get("retryAt")
                .and_then(Value::as_str)
                .and_then(concept_core::time::parse_rfc3339)
            {
                if at > now {
                    counts[3].1 += 1;
                    retry_at = retry_at.max(at.timestamp());
                }
            }
            if fetch["needsReauth"] == true {
                counts[4].1 += 1;
            }
        }
        for (state, n) in counts {
            metrics::gauge!(observe::SOURCE_READS, "source" => source.clone(), "state" => state).set(n as f64);
        }
        metrics::gauge!(observe::SOURCE_RETRY_AT, "source" => source.clone()).set(retry_at as f64);
    }
}

/// The bytes of the files under `dir` (what the store takes on disk).
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}
