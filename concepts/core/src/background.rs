//! Work a concept does outside any action: a timer that comes due, a read of a remote service.
//!
//! A concept that has such work returns it from [`crate::Concept::background`] as a future. The
//! service runs it (the trace runner and one-shot CLI commands do not), and it reports what
//! happens by raising the concept's *system actions* through a [`Host`], which records them like
//! any other action and runs the syncs that match them. The work keeps nothing that matters in
//! memory: what it is doing is in the concept's projections, so after a restart it reads them
//! and carries on. The engine wakes it with [`crate::Concept::committed`] when an action of its
//! concept commits (a fetch was asked for, a job was scheduled).

use crate::{ActionError, ProjectionRead, SharedClock};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use uuid::Uuid;

/// A concept's background work, ready to run on the service's async runtime.
pub type BackgroundWork = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// What background work may do: raise its concept's system actions and read its projections.
/// Every method blocks (a commit, a flush, a read), so async work calls them through
/// [`raise`] / [`read`] below, which move the call to the blocking pool.
pub trait Host: Send + Sync {
    /// Raises one of the concept's system actions in `flow` (the flow that started the work) or
    /// in a new flow, runs the syncs it sets off and returns once all of it is durable: the
    /// action's output, or its refusal.
    fn raise(&self, action: &str, input: Value, flow: Option<Uuid>) -> Result<Value, ActionError>;

    /// The concept's own projections as committed now.
    fn view(&self) -> Box<dyn ProjectionRead + '_>;

    /// The engine's clock: the only source of time for background work (its `now`, and its
    /// waits, which a test's manual clock ends by moving forward).
    fn clock(&self) -> SharedClock;

    /// The time, at the precision actions see it.
    fn now(&self) -> DateTime<Utc> {
        self.clock().now()
    }
}

/// [`Host::raise`] from async code, on the blocking pool.
pub async fn raise(host: &Arc<dyn Host>, action: &str, input: Value, flow: Option<Uuid>) -> Result<Value, ActionError> {
    let (host, action) = (Arc::clone(host), action.to_string());
    tokio::task::spawn_blocking(move || host.raise(&action, input, flow))
        .await
        .unwrap_or_else(|e| Err(ActionError::internal(format!("raising a system action panicked: {e}"))))
}

/// Runs `f` against the concept's projections from async code, on the blocking pool.
pub async fn read<T, F>(host: &Arc<dyn Host>, f: F) -> Result<T, ActionError>
where
    T: Send + 'static,
    F: FnOnce(&dyn ProjectionRead) -> Result<T, ActionError> + Send + 'static,
{
    let host = Arc::clone(host);
    tokio::task::spawn_blocking(move || {
        let view = host.view();
        f(view.as_ref())
    })
    .await
    .unwrap_or_else(|e| Err(ActionError::internal(format!("reading projections panicked: {e}"))))
}
