//! Scheduling's background work: the timer that raises `tick` for every job whose `nextAt` has
//! passed, then sleeps until the earliest `nextAt` or until `schedule`/`cancel` rings its bell.
//!
//! It keeps nothing that matters in memory: each round reads the jobs from the projections. A
//! job that missed several intervals (the service was down) is simply due, and gets one tick at
//! `now`, after which its next is `now + every` — no storm of catch-up ticks. A tick that is
//! refused or fails is logged and retried no sooner than after a back-off (1s, doubling up to
//! 5 min), so a broken job can never spin the loop.

use crate::{due_times, Due};
use chrono::{DateTime, Utc};
use concept_core::background::{raise, read};
use concept_core::time::{format_rfc3339, parse_rfc3339};
use concept_core::{ActionError, Host};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// The first wait before retrying a refused or failed tick.
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// The longest wait before retrying a refused or failed tick.
const LAST_RETRY: Duration = Duration::from_secs(300);
/// The longest the timer sleeps without looking again: a wall-clock jump, or a job scheduled
/// through another instance sharing the store (whose bell rings there, not here), is noticed
/// by then.
const LONGEST_SLEEP: Duration = Duration::from_secs(30);
/// The shortest pause between rounds: the loop never spins, whatever the clock says.
const SHORTEST_SLEEP: Duration = Duration::from_millis(10);

/// A job whose last tick was refused or failed: when it may be tried again, and the wait after that.
struct Retry {
    at: DateTime<Utc>,
    wait: Duration,
}

/// Runs the timer until the task is dropped.
pub async fn run(host: Arc<dyn Host>, wake: Arc<Notify>) {
    let mut retries: HashMap<String, Retry> = HashMap::new();
    let clock = host.clock();
    loop {
        let wake_at = round(&host, &mut retries).await;
        // The wait for the next due time is the clock's (a test's manual clock ends it by moving
        // past it); the longest sleep is real time, a bound on how long the store goes unread.
        let due = match wake_at {
            Some(at) => clock.sleep_until(at),
            None => Box::pin(std::future::pending()),
        };
        tokio::select! {
            _ = due => tokio::time::sleep(SHORTEST_SLEEP).await,
            _ = tokio::time::sleep(LONGEST_SLEEP) => {}
            _ = wake.notified() => {}
        }
    }
}

/// One pass: tick every due job; answer when the next one comes due (None: no job).
async fn round(host: &Arc<dyn Host>, retries: &mut HashMap<String, Retry>) -> Option<DateTime<Utc>> {
    let jobs = match read(host, due_times).await {
        Ok(jobs) => jobs,
        Err(e) => {
            tracing::warn!(error = %e, "Scheduling could not read its jobs; trying again later");
            return Some(host.now() + chrono_of(FIRST_RETRY));
        }
    };
    // A job that is gone (cancelled) needs no retry.
    retries.retain(|job, _| jobs.iter().any(|j| &j.job == job));
    let mut earliest: Option<DateTime<Utc>> = None;
    for Due { job, next_at } in jobs {
        let due = retries.get(&job).map_or(next_at, |r| next_at.max(r.at));
        let next = if due <= host.now() {
            match tick(host, &job).await {
                Ok(next) => {
                    retries.remove(&job);
                    next
                }
                Err(e) => {
                    let retry = retries.entry(job.clone()).or_insert(Retry {
                        at: host.now(),
                        wait: Duration::ZERO,
                    });
                    retry.wait = (retry.wait * 2).clamp(FIRST_RETRY, LAST_RETRY);
                    retry.at = host.now() + chrono_of(retry.wait);
                    tracing::warn!(
                        job = %job,
                        code = %e.code,
                        error = %e.message,
                        retry_in_s = retry.wait.as_secs(),
                        "Scheduling.tick was refused or failed; it will be retried"
                    );
                    retry.at
                }
            }
        } else {
            due
        };
        earliest = Some(earliest.map_or(next, |e| e.min(next)));
    }
    earliest
}

/// Raises `tick (job, at: now)` and answers the job's next due time.
async fn tick(host: &Arc<dyn Host>, job: &str) -> Result<DateTime<Utc>, ActionError> {
    let at = format_rfc3339(&host.now());
    let output = raise(host, "tick", json!({ "job": job, "at": at }), None).await?;
    tracing::debug!(job, at, "Scheduling.tick raised");
    output
        .get("nextAt")
        .and_then(|v| v.as_str())
        .and_then(parse_rfc3339)
        .ok_or_else(|| ActionError::internal(format!("Scheduling.tick answered without a valid nextAt: {output}")))
}

fn chrono_of(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}
