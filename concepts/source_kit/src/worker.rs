//! A source's background work: finds the reads the store says are running (asked for by
//! `fetch`, or interrupted by a restart, which starts them over under the same fetchId), runs
//! one at a time per user, and reports progress, credential updates and the end of each read as
//! system actions in the read's flow.
//!
//! Nothing here waits on the service's behalf: a 429 ends the read as `failed` with its
//! `retryAt` (which `fetch` then honours), so no task sleeps through a rate limit and no loop
//! hammers.

use crate::model::{FailedInput, FetchedInput, ProgressInput};
use crate::read::{Failure, Note, Outcome, ReadJob, Reporter};
use crate::rows::{self, Connection, CursorRow, FetchRow, CONFIRMED, CONNECTION, FETCH, RUNNING};
use crate::secrets::Secrets;
use crate::Source;
use concept_core::background::{raise, read};
use concept_core::time::format_rfc3339;
use concept_core::{ActionError, Host};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

/// How often the store is looked at even without a wake-up (a read asked for by another process
/// sharing the store would otherwise wait for the next local action).
const IDLE_LOOK: Duration = Duration::from_secs(30);

/// A read to run, as the store has it.
struct Job<S: Source> {
    fetch: FetchRow,
    read: ReadJob<S::Credentials, S::Cursor>,
}

pub async fn run<S: Source>(source: Arc<S>, wake: Arc<tokio::sync::Notify>, secrets: Secrets, host: Arc<dyn Host>) {
    let active: Arc<Mutex<HashSet<String>>> = Arc::default();
    loop {
        let clock = host.clock();
        match read(&host, move |view| running_jobs::<S>(view, clock)).await {
            Ok(jobs) => {
                for job in jobs {
                    let user = job.read.user.clone();
                    let fresh = active.lock().unwrap_or_else(|p| p.into_inner()).insert(user.clone());
                    if !fresh {
                        continue;
                    }
                    let (source, host, active) = (Arc::clone(&source), Arc::clone(&host), Arc::clone(&active));
                    let secrets = secrets.clone();
                    tokio::spawn(async move {
                        run_job(&*source, &secrets, &host, job).await;
                        active.lock().unwrap_or_else(|p| p.into_inner()).remove(&user);
                    });
                }
            }
            Err(e) => tracing::warn!(source = S::NAME, error = %e, "could not read the running reads"),
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(IDLE_LOOK) => {}
        }
    }
}

fn running_jobs<S: Source>(
    view: &dyn concept_core::ProjectionRead,
    clock: concept_core::SharedClock,
) -> Result<Vec<Job<S>>, ActionError> {
    let now = clock.now();
    let mut jobs = Vec::new();
    for user in rows::users(view, RUNNING)? {
        let (Some(fetch), Some(connection)) = (
            rows::read::<FetchRow, _>(view, FETCH, &user)?,
            rows::read::<Connection<S::Credentials>, _>(view, CONNECTION, &user)?,
        ) else {
            continue;
        };
        let cursor = rows::read::<CursorRow<S::Cursor>, _>(view, CONFIRMED, &user)?.map(|c| c.cursor);
        let read = ReadJob {
            user,
            fetch_id: fetch.fetch_id.clone(),
            mode: fetch.mode,
            connection,
            cursor,
            now,
            clock: std::sync::Arc::clone(&clock),
        };
        jobs.push(Job { fetch, read });
    }
    Ok(jobs)
}

async fn run_job<S: Source>(source: &S, secrets: &Secrets, host: &Arc<dyn Host>, job: Job<S>) {
    let Job { fetch, mut read } = job;
    let user = read.user.clone();
    let flow = Uuid::parse_str(&fetch.flow).ok();
    // The secrets open just before the read; a key that does not open them fails the read with
    // a code saying so (the rest of the service is not concerned).
    match secrets.open_fields(S::NAME, &user, S::SECRETS, &read.connection.credentials) {
        Ok(opened) => read.connection.credentials = opened,
        Err(e) => {
            tracing::warn!(source = S::NAME, user, fetch_id = %fetch.fetch_id, code = e.code(), error = %e, "cannot open the stored credentials");
            let failure = Failure::new(
                e.code(),
                format!("the stored {} credentials cannot be read: {e}", S::SERVICE),
            );
            let input = failed_input(host, &user, &fetch.fetch_id, failure);
            if let Err(e) = raise(host, "failed", input, flow).await {
                tracing::warn!(source = S::NAME, user, error = %e, "the end of a read was refused");
            }
            return;
        }
    }
    // Every secret value of the connection, to hide wherever a message might quote it.
    let hidden = Secrets::plain_values(S::SECRETS, &read.connection.credentials);
    if fetch.phase != "starting" {
        tracing::info!(source = S::NAME, user, fetch_id = %fetch.fetch_id, phase = %fetch.phase, "resuming a read a restart interrupted: starting it over");
    }
    let (reporter, notes) = Reporter::channel();
    let raising = tokio::spawn(report::<S>(
        Arc::clone(host),
        user.clone(),
        fetch.fetch_id.clone(),
        flow,
        notes,
    ));
    let outcome = source.read(read, reporter).await;
    // Every note is raised before the end of the read is (the reporter was dropped with the
    // read, which ends `report`).
    raising.await.ok();
    let (action, input) = match outcome {
        Ok(outcome) => ("fetched", fetched_input(&user, &fetch.fetch_id, outcome)),
        Err(mut e) => {
            e.error = concept_core::redact::redact_values(&e.error, hidden.iter().map(String::as_str));
            tracing::info!(source = S::NAME, user, fetch_id = %fetch.fetch_id, code = %e.code, error = %e.error, "a read failed");
            ("failed", failed_input(host, &user, &fetch.fetch_id, e))
        }
    };
    match raise(host, action, input, flow).await {
        Ok(_) => tracing::info!(source = S::NAME, user, fetch_id = %fetch.fetch_id, action, "a read ended"),
        Err(e) => {
            tracing::warn!(source = S::NAME, user, fetch_id = %fetch.fetch_id, action, error = %e, "the end of a read was refused")
        }
    }
}

/// Raises the read's notes in order; of several progress notes waiting, only the newest.
async fn report<S: Source>(
    host: Arc<dyn Host>,
    user: String,
    fetch_id: String,
    flow: Option<Uuid>,
    mut notes: tokio::sync::mpsc::UnboundedReceiver<Note<S::Update>>,
) {
    while let Some(first) = notes.recv().await {
        let mut batch = vec![first];
        while let Ok(more) = notes.try_recv() {
            batch.push(more);
        }
        let last_progress = batch.iter().rposition(|n| matches!(n, Note::Progress { .. }));
        for (i, note) in batch.into_iter().enumerate() {
            let (action, input) = match note {
                Note::Progress { phase, current, total } if Some(i) == last_progress => (
                    "progressed",
                    to_value(&ProgressInput {
                        user_id: user.clone(),
                        fetch_id: fetch_id.clone(),
                        phase,
                        current,
                        total,
                    }),
                ),
                Note::Progress { .. } => continue,
                Note::Update(update) => {
                    let Some(action) = S::UPDATE_ACTION else {
                        tracing::warn!(
                            source = S::NAME,
                            user,
                            "a read reported an update the source has no action for"
                        );
                        continue;
                    };
                    (action, update_input(&user, &update))
                }
            };
            if let Err(e) = raise(&host, action, input, flow).await {
                tracing::warn!(source = S::NAME, user, action, error = %e, "a read's note was refused");
            }
        }
    }
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// The update action's input: `userId` and the update's fields.
fn update_input<U: serde::Serialize>(user: &str, update: &U) -> Value {
    let mut input = serde_json::Map::new();
    input.insert("userId".into(), Value::String(user.to_string()));
    if let Value::Object(fields) = to_value(update) {
        input.extend(fields);
    }
    Value::Object(input)
}

fn fetched_input<K: serde::Serialize>(user: &str, fetch_id: &str, o: Outcome<K>) -> Value {
    to_value(&FetchedInput {
        user_id: user.to_string(),
        fetch_id: fetch_id.to_string(),
        complete: o.complete,
        tracks: o.tracks,
        likes: o.likes,
        plays: o.plays,
        playlists: o.playlists,
        skipped: o.skipped,
        unreadable: o.unreadable,
        cursor: o.cursor,
    })
}

/// A failed read as `failed`'s input, its wait turned into `retryAt`.
fn failed_input(host: &Arc<dyn Host>, user: &str, fetch_id: &str, f: Failure) -> Value {
    let retry_at = f.retry_after.map(|wait| {
        let wait = chrono::Duration::from_std(wait).unwrap_or_else(|_| chrono::Duration::hours(24));
        format_rfc3339(&(host.now() + wait))
    });
    to_value(&FailedInput {
        user_id: user.to_string(),
        fetch_id: fetch_id.to_string(),
        code: f.code,
        error: f.error,
        retry_at,
        needs_reauth: f.needs_reauth,
    })
}
