//! SpotifySource's background work: finds the reads the store says are running (asked for by
//! `fetch`, or interrupted by a restart, which starts them over), runs each, and reports
//! progress, renewed tokens and the end of the read as system actions in the read's flow.
//!
//! Nothing here waits on Spotify's behalf: a 429 ends the read as `failed` with its `retryAt`
//! (which `fetch` then honours), so no thread sleeps through a rate limit and no loop hammers.

use crate::model::{FailedInput, FetchedInput, ProgressInput, TokenRefreshedInput};
use crate::read::{Credentials, Note, Outcome, Read};
use crate::rows::{self, Connection, CursorRow, FetchRow, CONFIRMED, CONNECTION, FETCH, RUNNING};
use crate::web_api::{ApiError, WebApi};
use crate::Settings;
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
/// A token expiring within this margin is renewed before the read starts.
const RENEW_MARGIN: chrono::Duration = chrono::Duration::seconds(60);

/// A read to run, as the store has it.
struct Job {
    user: String,
    fetch: FetchRow,
    conn: Connection,
    cursor: Option<CursorRow>,
}

pub async fn run(settings: Settings, wake: Arc<tokio::sync::Notify>, host: Arc<dyn Host>) {
    let api = WebApi::new(settings);
    let active: Arc<Mutex<HashSet<String>>> = Arc::default();
    loop {
        match read(&host, running_jobs).await {
            Ok(jobs) => {
                for job in jobs {
                    let fresh = active
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(job.user.clone());
                    if !fresh {
                        continue;
                    }
                    let (api, host, active) = (api.clone(), Arc::clone(&host), Arc::clone(&active));
                    tokio::spawn(async move {
                        let user = job.user.clone();
                        run_job(&api, &host, job).await;
                        active.lock().unwrap_or_else(|p| p.into_inner()).remove(&user);
                    });
                }
            }
            Err(e) => tracing::warn!(error = %e, "SpotifySource could not read its running reads"),
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(IDLE_LOOK) => {}
        }
    }
}

fn running_jobs(view: &dyn concept_core::ProjectionRead) -> Result<Vec<Job>, ActionError> {
    let mut jobs = Vec::new();
    for user in rows::users(view, RUNNING)? {
        let (Some(fetch), Some(conn)) = (
            rows::read::<FetchRow, _>(view, FETCH, &user)?,
            rows::read::<Connection, _>(view, CONNECTION, &user)?,
        ) else {
            continue;
        };
        let cursor = rows::read::<CursorRow, _>(view, CONFIRMED, &user)?;
        jobs.push(Job {
            user,
            fetch,
            conn,
            cursor,
        });
    }
    Ok(jobs)
}

async fn run_job(api: &WebApi, host: &Arc<dyn Host>, job: Job) {
    let Job {
        user,
        fetch,
        conn,
        cursor,
    } = job;
    let flow = Uuid::parse_str(&fetch.flow).ok();
    if fetch.phase != "starting" {
        tracing::info!(user, fetch_id = %fetch.fetch_id, phase = %fetch.phase, "resuming a read a restart interrupted: starting it over");
    }
    let (notes_tx, notes_rx) = tokio::sync::mpsc::unbounded_channel();
    let reporter = tokio::spawn(report(
        Arc::clone(host),
        user.clone(),
        fetch.fetch_id.clone(),
        flow,
        notes_rx,
    ));
    let creds = Credentials {
        access_token: conn.access_token.clone(),
        refresh_token: conn.refresh_token.clone(),
        client_id: conn.client_id.clone(),
        client_secret: conn.client_secret.clone(),
    };
    let outcome = async {
        let mut read = Read::new(api, creds, notes_tx);
        let expires = conn.expires_at.as_deref().and_then(parse_rfc3339);
        if expires.is_some_and(|t| t - RENEW_MARGIN <= host.now()) && conn.refresh_token.is_some() {
            read.renew().await?;
        }
        let now = format_rfc3339(&host.now());
        let base = cursor.as_ref().map(|c| &c.cursor);
        read.run(fetch.mode, base, &now).await
    }
    .await;
    // Every note is raised before the end of the read is.
    reporter.await.ok();
    let (action, input) = match outcome {
        Ok(outcome) => ("fetched", fetched_input(&user, &fetch.fetch_id, outcome)),
        Err(e) => ("failed", failed_input(host, &user, &fetch.fetch_id, e)),
    };
    match raise(host, action, input, flow).await {
        Ok(_) => tracing::info!(user, fetch_id = %fetch.fetch_id, action, "a Spotify read ended"),
        Err(e) => {
            tracing::warn!(user, fetch_id = %fetch.fetch_id, action, error = %e, "the end of a Spotify read was refused")
        }
    }
}

/// Raises the read's notes in order; of several progress notes waiting, only the newest.
async fn report(
    host: Arc<dyn Host>,
    user: String,
    fetch_id: String,
    flow: Option<Uuid>,
    mut notes: tokio::sync::mpsc::UnboundedReceiver<Note>,
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
                        phase: phase.to_string(),
                        current,
                        total,
                    }),
                ),
                Note::Progress { .. } => continue,
                Note::TokenRefreshed(r) => (
                    "tokenRefreshed",
                    to_value(&TokenRefreshedInput {
                        user_id: user.clone(),
                        access_token: r.access_token,
                        refresh_token: r.refresh_token,
                        expires_at: r
                            .expires_in
                            .map(|s| format_rfc3339(&(chrono::Utc::now() + chrono::Duration::seconds(s as i64)))),
                    }),
                ),
            };
            if let Err(e) = raise(&host, action, input, flow).await {
                tracing::warn!(user, action, error = %e, "a Spotify read's note was refused");
            }
        }
    }
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn fetched_input(user: &str, fetch_id: &str, o: Outcome) -> Value {
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

/// A failed read as `failed`'s input: a code per cause, `retryAt` for a 429, `needsReauth` when
/// the credentials are no good any more.
fn failed_input(host: &Arc<dyn Host>, user: &str, fetch_id: &str, e: ApiError) -> Value {
    let (code, retry_at, needs_reauth) = match &e {
        ApiError::RateLimited { retry_after } => {
            let wait = chrono::Duration::from_std(*retry_after).unwrap_or_else(|_| chrono::Duration::hours(24));
            ("RATE_LIMITED", Some(format_rfc3339(&(host.now() + wait))), false)
        }
        ApiError::InvalidGrant(_) | ApiError::Unauthorized | ApiError::NoRefreshToken => ("NEEDS_REAUTH", None, true),
        ApiError::Forbidden { .. } => ("FORBIDDEN", None, false),
        ApiError::Upstream { .. } => ("UPSTREAM_ERROR", None, false),
        ApiError::Network { .. } => ("UPSTREAM_UNREACHABLE", None, false),
        ApiError::Unexpected { .. } => ("UPSTREAM_UNEXPECTED", None, false),
    };
    to_value(&FailedInput {
        user_id: user.to_string(),
        fetch_id: fetch_id.to_string(),
        code: code.to_string(),
        error: e.to_string(),
        retry_at,
        needs_reauth,
    })
}
