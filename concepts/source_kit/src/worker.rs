//! A source's background work: finds the reads the store says are running (asked for by
//! `fetch`, or interrupted by a restart, which starts them over under the same fetchId), runs
//! one at a time per user, and reports progress, credential updates and the end of each read as
//! system actions in the read's flow.
//!
//! Rate limits: a read waits out a short one itself (its [`Session`] waits on the engine's
//! clock, and progress shows `waiting`); a longer one ends it as `failed` with `retryAt` and
//! the pages read so far as a checkpoint. This work then sleeps until that `retryAt` (on the
//! engine's clock) and raises `resume`, and the read goes on from its checkpoint — without
//! waiting for anyone to ask, and without asking the service again for what it had. Before
//! `retryAt`, `fetch` is refused, so no loop hammers the service.

use crate::model::{Checkpoint, FailedInput, FetchedInput, ProgressInput, ResumeInput};
use crate::read::{Failure, Note, Outcome, ReadJob, Reporter};
use crate::rows::{
    self, CheckpointRow, Connection, CursorRow, FetchRow, CHECKPOINT, CONFIRMED, CONNECTION, FETCH, RUNNING,
};
use crate::secrets::Secrets;
use crate::session::Session;
use crate::Source;
use chrono::{DateTime, Utc};
use concept_core::background::{raise, read};
use concept_core::time::{format_rfc3339, parse_rfc3339};
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
    user: String,
    fetch: FetchRow,
    connection: Connection<S::Credentials>,
    cursor: Option<S::Cursor>,
    /// The pages of the read a rate limit stopped, when this read resumes it.
    checkpoint: Option<Checkpoint>,
}

/// A read stopped by a rate limit, to resume at `retry_at`.
struct Stopped {
    user: String,
    fetch_id: String,
    flow: Option<Uuid>,
    retry_at: DateTime<Utc>,
}

/// What the store shows: the reads to run, and the stopped reads waiting for their `retryAt`.
struct Look<S: Source> {
    jobs: Vec<Job<S>>,
    stopped: Vec<Stopped>,
}

pub async fn run<S: Source>(source: Arc<S>, wake: Arc<tokio::sync::Notify>, secrets: Secrets, host: Arc<dyn Host>) {
    let active: Arc<Mutex<HashSet<String>>> = Arc::default();
    loop {
        let mut next_resume: Option<DateTime<Utc>> = None;
        let mut resumed = false;
        match read(&host, look::<S>).await {
            Ok(Look { jobs, stopped }) => {
                for job in jobs {
                    let user = job.user.clone();
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
                let now = host.now();
                for s in stopped {
                    if s.retry_at > now {
                        next_resume = Some(next_resume.map_or(s.retry_at, |n| n.min(s.retry_at)));
                        continue;
                    }
                    let input = to_value(&ResumeInput {
                        user_id: s.user.clone(),
                        fetch_id: s.fetch_id.clone(),
                    });
                    match raise(&host, "resume", input, s.flow).await {
                        Ok(_) => {
                            resumed = true;
                            tracing::info!(
                                source = S::NAME,
                                user = s.user,
                                fetch_id = s.fetch_id,
                                "a read stopped by a rate limit resumes from its checkpoint"
                            )
                        }
                        Err(e) => {
                            tracing::warn!(source = S::NAME, user = s.user, error = %e, "could not resume a read stopped by a rate limit")
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(source = S::NAME, error = %e, "could not read the running reads"),
        }
        if resumed {
            // The resumed reads are running now: start them.
            continue;
        }
        let clock = host.clock();
        let resume_due = async move {
            match next_resume {
                Some(at) => clock.sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = wake.notified() => {}
            _ = resume_due => {}
            _ = tokio::time::sleep(IDLE_LOOK) => {}
        }
    }
}

fn look<S: Source>(view: &dyn concept_core::ProjectionRead) -> Result<Look<S>, ActionError> {
    let mut jobs = Vec::new();
    for user in rows::users(view, RUNNING)? {
        let (Some(fetch), Some(connection)) = (
            rows::read::<FetchRow, _>(view, FETCH, &user)?,
            rows::read::<Connection<S::Credentials>, _>(view, CONNECTION, &user)?,
        ) else {
            continue;
        };
        let cursor = rows::read::<CursorRow<S::Cursor>, _>(view, CONFIRMED, &user)?.map(|c| c.cursor);
        let checkpoint = rows::read::<CheckpointRow, _>(view, CHECKPOINT, &user)?
            .filter(|c| c.fetch_id == fetch.fetch_id)
            .map(|c| c.checkpoint);
        jobs.push(Job {
            user,
            fetch,
            connection,
            cursor,
            checkpoint,
        });
    }
    let mut stopped = Vec::new();
    for user in rows::users(view, CHECKPOINT)? {
        let (Some(row), Some(fetch), Some(connection)) = (
            rows::read::<CheckpointRow, _>(view, CHECKPOINT, &user)?,
            rows::read::<FetchRow, _>(view, FETCH, &user)?,
            rows::read::<Connection<S::Credentials>, _>(view, CONNECTION, &user)?,
        ) else {
            continue;
        };
        let Some(retry_at) = parse_rfc3339(&row.retry_at) else {
            continue;
        };
        if fetch.fetch_id != row.fetch_id || fetch.phase != "failed" || connection.needs_reauth {
            continue;
        }
        stopped.push(Stopped {
            user,
            fetch_id: row.fetch_id,
            flow: Uuid::parse_str(&fetch.flow).ok(),
            retry_at,
        });
    }
    Ok(Look { jobs, stopped })
}

async fn run_job<S: Source>(source: &S, secrets: &Secrets, host: &Arc<dyn Host>, job: Job<S>) {
    let Job {
        user,
        fetch,
        mut connection,
        cursor,
        checkpoint,
    } = job;
    let flow = Uuid::parse_str(&fetch.flow).ok();
    // The secrets open just before the read; a key that does not open them fails the read with
    // a code saying so (the rest of the service is not concerned).
    match secrets.open_fields(S::NAME, &user, S::SECRETS, &connection.credentials) {
        Ok(opened) => connection.credentials = opened,
        Err(e) => {
            tracing::warn!(source = S::NAME, user, fetch_id = %fetch.fetch_id, code = e.code(), error = %e, "cannot open the stored credentials");
            let failure = Failure::new(
                e.code(),
                format!("the stored {} credentials cannot be read: {e}", S::SERVICE),
            );
            let input = failed_input(host, &user, &fetch.fetch_id, failure, None);
            if let Err(e) = raise(host, "failed", input, flow).await {
                tracing::warn!(source = S::NAME, user, error = %e, "the end of a read was refused");
            }
            return;
        }
    }
    // Every secret value of the connection, to hide wherever a message might quote it.
    let hidden = Secrets::plain_values(S::SECRETS, &connection.credentials);
    let clock = host.clock();
    // A read resumed from a checkpoint keeps its start time: it asks what it asked before.
    let now = match &checkpoint {
        Some(_) => parse_rfc3339(&fetch.started_at).unwrap_or_else(|| clock.now()),
        None => clock.now(),
    };
    match (&checkpoint, fetch.phase.as_str()) {
        (Some(c), _) => {
            tracing::info!(source = S::NAME, user, fetch_id = %fetch.fetch_id, pages = c.pages.len(), "resuming a read from its checkpoint")
        }
        (None, "starting") => {}
        (None, phase) => {
            tracing::info!(source = S::NAME, user, fetch_id = %fetch.fetch_id, phase, "resuming a read a restart interrupted: starting it over")
        }
    }
    let (reporter, notes) = Reporter::channel();
    let waits = reporter.clone();
    let session = Session::new(
        Arc::clone(&clock),
        source.max_wait(),
        checkpoint,
        move |until| match until {
            Some(until) => waits.waiting(until),
            None => waits.resumed(),
        },
    );
    let read = ReadJob {
        user: user.clone(),
        fetch_id: fetch.fetch_id.clone(),
        mode: fetch.mode,
        connection,
        cursor,
        now,
        clock,
        session: session.clone(),
    };
    let raising = tokio::spawn(report::<S>(
        Arc::clone(host),
        user.clone(),
        fetch.fetch_id.clone(),
        flow,
        notes,
    ));
    let outcome = source.read(read, reporter).await;
    // A rate limit keeps what was read: the read goes on from it at retryAt.
    let checkpoint = match &outcome {
        Err(e) if e.retry_after.is_some() => Some(session.checkpoint()),
        _ => None,
    };
    // Every note is raised before the end of the read is: the reporter went with the read, and
    // the session's copy of it goes now, which ends `report`.
    drop(session);
    raising.await.ok();
    let (action, input) = match outcome {
        Ok(outcome) => ("fetched", fetched_input(&user, &fetch.fetch_id, outcome)),
        Err(mut e) => {
            e.error = concept_core::redact::redact_values(&e.error, hidden.iter().map(String::as_str));
            tracing::info!(source = S::NAME, user, fetch_id = %fetch.fetch_id, code = %e.code, error = %e.error, "a read failed");
            ("failed", failed_input(host, &user, &fetch.fetch_id, e, checkpoint))
        }
    };
    match raise(host, action, input, flow).await {
        Ok(_) => tracing::info!(source = S::NAME, user, fetch_id = %fetch.fetch_id, action, "a read ended"),
        Err(e) => {
            tracing::warn!(source = S::NAME, user, fetch_id = %fetch.fetch_id, action, error = %e, "the end of a read was refused")
        }
    }
}

/// Raises the read's notes in order; of several progress notes waiting (a wait and its end
/// count as progress), only the newest.
async fn report<S: Source>(
    host: Arc<dyn Host>,
    user: String,
    fetch_id: String,
    flow: Option<Uuid>,
    mut notes: tokio::sync::mpsc::UnboundedReceiver<Note<S::Update>>,
) {
    // The last progress the read reported: shown again when a wait ends.
    let mut shown = ("starting".to_string(), 0, 0);
    while let Some(first) = notes.recv().await {
        let mut batch = vec![first];
        while let Ok(more) = notes.try_recv() {
            batch.push(more);
        }
        let is_progress =
            |n: &Note<S::Update>| matches!(n, Note::Progress { .. } | Note::Waiting { .. } | Note::Resumed);
        let last_progress = batch.iter().rposition(is_progress);
        for (i, note) in batch.into_iter().enumerate() {
            if let Note::Progress { phase, current, total } = &note {
                shown = (phase.clone(), *current, *total);
            }
            let progress = |phase: String, until: Option<String>| {
                to_value(&ProgressInput {
                    user_id: user.clone(),
                    fetch_id: fetch_id.clone(),
                    phase,
                    current: shown.1,
                    total: shown.2,
                    until,
                })
            };
            let (action, input) = match note {
                _ if is_progress(&note) && Some(i) != last_progress => continue,
                Note::Progress { phase, .. } => ("progressed", progress(phase, None)),
                Note::Waiting { until } => ("progressed", progress("waiting".into(), Some(format_rfc3339(&until)))),
                Note::Resumed => ("progressed", progress(shown.0.clone(), None)),
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
        mode: Some(o.mode),
        tracks: o.tracks,
        likes: o.likes,
        plays: o.plays,
        playlists: o.playlists,
        skipped: o.skipped,
        unreadable: o.unreadable,
        cursor: o.cursor,
    })
}

/// A failed read as `failed`'s input, its wait turned into `retryAt` (with the checkpoint of
/// what it had read).
fn failed_input(host: &Arc<dyn Host>, user: &str, fetch_id: &str, f: Failure, checkpoint: Option<Checkpoint>) -> Value {
    let retry_at = f.retry_after.map(|wait| {
        let wait = chrono::Duration::from_std(wait).unwrap_or_else(|_| chrono::Duration::hours(24));
        format_rfc3339(&(host.now() + wait))
    });
    to_value(&FailedInput {
        user_id: user.to_string(),
        fetch_id: fetch_id.to_string(),
        code: f.code,
        error: f.error,
        checkpoint: checkpoint.filter(|_| retry_at.is_some()),
        retry_at,
        needs_reauth: f.needs_reauth,
    })
}
