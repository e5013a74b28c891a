//! The service's metrics (issue 18): names and the few calls that record them, through the
//! `metrics` facade. Without an installed recorder (one-shot commands, tests on an engine) each
//! call costs next to nothing; `serve` installs the Prometheus recorder and `GET /metrics`
//! renders it (`server::metrics`).
//!
//! | family | kind | labels |
//! |---|---|---|
//! | `librarycache_http_requests_total` | counter | `method`, `route`, `status` |
//! | `librarycache_http_request_duration_seconds` | histogram | `method`, `route`, `status` |
//! | `librarycache_store_commit_seconds` | histogram | |
//! | `librarycache_store_flush_seconds` | histogram | |
//! | `librarycache_flows_total` | counter | |
//! | `librarycache_actions_total` | counter | `concept`, `action`, `outcome` (`ok`, `refused`) |
//! | `librarycache_sync_firings_total` | counter | `sync` |
//! | `librarycache_source_reads` | gauge | `source`, `state` (`running`, `failed`, `rate_limited`, `needs_reauth`, `connected`) |
//! | `librarycache_source_retry_at_seconds` | gauge | `source` (the latest `retryAt` of a rate-limited read, Unix seconds; 0 when none) |
//! | `librarycache_store_size_bytes` | gauge | (the embedded store's directory) |

use std::time::Duration;

pub const HTTP_REQUESTS: &str = "librarycache_http_requests_total";
pub const HTTP_DURATION: &str = "librarycache_http_request_duration_seconds";
pub const COMMIT_SECONDS: &str = "librarycache_store_commit_seconds";
pub const FLUSH_SECONDS: &str = "librarycache_store_flush_seconds";
pub const FLOWS: &str = "librarycache_flows_total";
pub const ACTIONS: &str = "librarycache_actions_total";
pub const SYNC_FIRINGS: &str = "librarycache_sync_firings_total";
pub const SOURCE_READS: &str = "librarycache_source_reads";
pub const SOURCE_RETRY_AT: &str = "librarycache_source_retry_at_seconds";
pub const STORE_SIZE: &str = "librarycache_store_size_bytes";

/// One `Store::commit`, timed at its call site in the engine.
pub fn commit(took: Duration) {
    metrics::histogram!(COMMIT_SECONDS).record(took.as_secs_f64());
}

/// One `Store::wait_durable` of a flow that changed state (the flush it waits for before it
/// is answered).
pub fn flush(took: Duration) {
    metrics::histogram!(FLUSH_SECONDS).record(took.as_secs_f64());
}

/// A flow started (an external call, or a system action raised by background work).
pub fn flow() {
    metrics::counter!(FLOWS).increment(1);
}

/// An action completed and was recorded; `sync` fired it when it was a sync's.
pub fn action(concept: &str, action: &str, refused: bool, sync: Option<&str>) {
    let outcome = if refused { "refused" } else { "ok" };
    metrics::counter!(ACTIONS, "concept" => concept.to_string(), "action" => action.to_string(), "outcome" => outcome)
        .increment(1);
    if let Some(sync) = sync {
        metrics::counter!(SYNC_FIRINGS, "sync" => sync.to_string()).increment(1);
    }
}
