//! A source's actions: check preconditions against the rows, refuse or decide events.

use crate::apply::Event;
use crate::events::SourceEvent;
use crate::model::*;
use crate::rows::{
    self, CheckpointRow, Connection, CursorRow, FetchRow, CHECKPOINT, CONFIRMED, CONNECTION, FETCH, PENDING,
};
use crate::secrets::{Secrets, SecretsError};
use crate::Source;
use concept_core::time::{format_rfc3339, parse_rfc3339};
use concept_core::{ActionCtx, ActionError, ProjectionRead};
use serde_json::Value;

/// What an action decided: the user's stream, its events, and the output.
pub type Decided<S, O> = (String, Vec<Event<S>>, O);

fn user_output(user: &str) -> UserOutput {
    UserOutput {
        user_id: user.to_string(),
    }
}

/// A user id or fetch id: the ids every concept takes (`concept_core::fields::id`).
pub use concept_core::fields::id as check_id;

/// An optional RFC 3339 time field (`concept_core::fields::opt_time`).
pub fn check_time(field: &str, t: &Option<String>) -> Result<(), ActionError> {
    concept_core::fields::opt_time(field, t.as_deref()).map(|_| ())
}

pub fn not_connected<S: Source>(user: &str) -> ActionError {
    ActionError::not_found(
        "NOT_CONNECTED",
        format!(
            "user {user:?} has not connected {}; call {}.connect first",
            S::SERVICE,
            S::NAME
        ),
    )
}

pub fn connection<S: Source>(view: &dyn ProjectionRead, user: &str) -> Result<Connection<S::Credentials>, ActionError> {
    rows::read::<Connection<S::Credentials>, _>(view, CONNECTION, user)?.ok_or_else(|| not_connected::<S>(user))
}

/// A secret that cannot be sealed or opened, as a refusal (503: the service's key is the
/// problem, not the input).
pub fn secrets_refusal(e: SecretsError) -> ActionError {
    ActionError::new(concept_core::ErrorKind::Unavailable, e.code(), e.to_string())
}

pub fn connect<S: Source>(
    source: &S,
    secrets: &Secrets,
    input: &S::Connect,
) -> Result<Decided<S, UserOutput>, ActionError> {
    let (user, credentials) = source.connect(input.clone())?;
    check_id("userId", &user)?;
    let credentials = secrets
        .seal_fields(S::NAME, &user, S::SECRETS, &credentials)
        .map_err(secrets_refusal)?;
    let out = user_output(&user);
    Ok((user, vec![SourceEvent::Connected(credentials)], out))
}

/// `rekey (userId)` (system): the connection's secrets sealed again with the current key (any
/// key `secrets` holds opens them); nothing happens when they already are.
pub fn rekey<S: Source>(
    view: &dyn ProjectionRead,
    secrets: &Secrets,
    input: &UserInput,
) -> Result<Decided<S, RekeyOutput>, ActionError> {
    check_id("userId", &input.user_id)?;
    let user = input.user_id.clone();
    let conn = connection::<S>(view, &user)?;
    if secrets.is_current(S::SECRETS, &conn.credentials) {
        let out = RekeyOutput {
            user_id: user.clone(),
            resealed: false,
        };
        return Ok((user, Vec::new(), out));
    }
    let plain = secrets
        .open_fields(S::NAME, &user, S::SECRETS, &conn.credentials)
        .map_err(secrets_refusal)?;
    let sealed = secrets
        .seal_fields(S::NAME, &user, S::SECRETS, &plain)
        .map_err(secrets_refusal)?;
    let out = RekeyOutput {
        user_id: user.clone(),
        resealed: true,
    };
    Ok((user, vec![SourceEvent::Resealed(sealed)], out))
}

pub fn disconnect<S: Source>(
    view: &dyn ProjectionRead,
    input: &UserInput,
) -> Result<Decided<S, UserOutput>, ActionError> {
    check_id("userId", &input.user_id)?;
    connection::<S>(view, &input.user_id)?;
    let out = user_output(&input.user_id);
    Ok((input.user_id.clone(), vec![SourceEvent::Disconnected {}], out))
}

pub fn fetch<S: Source>(
    ctx: &ActionCtx,
    view: &dyn ProjectionRead,
    source: &S,
    input: &FetchInput,
) -> Result<Decided<S, FetchOutput>, ActionError> {
    let user = input.user_id.clone();
    check_id("userId", &user)?;
    let conn = connection::<S>(view, &user)?;
    if conn.needs_reauth {
        return Err(ActionError::conflict(
            "NEEDS_REAUTH",
            format!(
                "{} refused the stored credentials of {user:?}; connect again",
                S::SERVICE
            ),
        ));
    }
    let last = rows::read::<FetchRow, _>(view, FETCH, &user)?;
    if let Some(running) = last.as_ref().filter(|f| f.running()) {
        let out = FetchOutput {
            user_id: user.clone(),
            fetch_id: running.fetch_id.clone(),
            mode: running.mode,
            running: true,
        };
        return Ok((user, Vec::new(), out));
    }
    if let Some(retry_at) = last
        .as_ref()
        .and_then(|f| f.retry_at.as_deref())
        .and_then(parse_rfc3339)
    {
        if retry_at > ctx.now {
            return Err(ActionError::new(
                concept_core::ErrorKind::RateLimited,
                "RATE_LIMITED",
                format!(
                    "{} asked us to wait until {} before reading {user:?}'s library again",
                    S::SERVICE,
                    format_rfc3339(&retry_at)
                ),
            ));
        }
    }
    // A read a rate limit stopped goes on from its checkpoint (unless another mode is asked).
    let stopped = match last.as_ref() {
        Some(f) if resumable(view, &user, f)? => Some(f),
        _ => None,
    };
    if let Some(stopped) = stopped {
        if input.mode.map_or(true, |m| m == stopped.mode) {
            let out = FetchOutput {
                user_id: user.clone(),
                fetch_id: stopped.fetch_id.clone(),
                mode: stopped.mode,
                running: false,
            };
            let event = SourceEvent::FetchResumed {
                fetch_id: stopped.fetch_id.clone(),
            };
            return Ok((user, vec![event], out));
        }
    }
    let confirmed = rows::read::<CursorRow<S::Cursor>, _>(view, CONFIRMED, &user)?;
    let full_at = confirmed.as_ref().map(|c| S::full_at(&c.cursor));
    let mode = choose_mode(ctx, source.full_every(), input.mode, full_at);
    let fetch_id = ctx.new_id().to_string();
    let out = FetchOutput {
        user_id: user.clone(),
        fetch_id: fetch_id.clone(),
        mode,
        running: false,
    };
    let event = SourceEvent::FetchStarted {
        fetch_id,
        mode,
        flow: ctx.flow.to_string(),
    };
    Ok((user, vec![event], out))
}

/// Whether `fetch` (the user's last read) failed for a rate limit and left a checkpoint.
fn resumable(view: &dyn ProjectionRead, user: &str, fetch: &FetchRow) -> Result<bool, ActionError> {
    if fetch.phase != "failed" {
        return Ok(false);
    }
    let row = rows::read::<CheckpointRow, _>(view, CHECKPOINT, user)?;
    Ok(row.is_some_and(|r| r.fetch_id == fetch.fetch_id))
}

/// Full without a confirmed read to compare against (`confirmed` is `None`), or when the last
/// full read (`Some(full_at)`) is older than `full_every` (increments cannot see removals);
/// incremental otherwise, or as asked.
fn choose_mode(
    ctx: &ActionCtx,
    full_every: chrono::Duration,
    asked: Option<Mode>,
    confirmed: Option<Option<&str>>,
) -> Mode {
    let Some(full_at) = confirmed else {
        return Mode::Full;
    };
    match asked {
        Some(mode) => mode,
        None => match full_at.and_then(parse_rfc3339) {
            Some(t) if ctx.now - t < full_every => Mode::Incremental,
            _ => Mode::Full,
        },
    }
}

/// The user's read `fetch_id`, which must be running.
fn running(view: &dyn ProjectionRead, user: &str, fetch_id: &str) -> Result<FetchRow, ActionError> {
    check_id("userId", user)?;
    check_id("fetchId", fetch_id)?;
    match rows::read::<FetchRow, _>(view, FETCH, user)? {
        Some(f) if f.fetch_id == fetch_id && f.running() => Ok(f),
        _ => Err(ActionError::conflict(
            "FETCH_NOT_RUNNING",
            format!("{user:?} has no running read {fetch_id:?}"),
        )),
    }
}

pub fn progressed<S: Source>(
    view: &dyn ProjectionRead,
    input: &ProgressInput,
) -> Result<Decided<S, UserOutput>, ActionError> {
    running(view, &input.user_id, &input.fetch_id)?;
    check_time("until", &input.until)?;
    let out = user_output(&input.user_id);
    let event = SourceEvent::FetchProgressed {
        fetch_id: input.fetch_id.clone(),
        phase: input.phase.clone(),
        current: input.current,
        total: input.total,
        until: input.until.clone(),
    };
    Ok((input.user_id.clone(), vec![event], out))
}

pub fn fetched<S: Source>(
    view: &dyn ProjectionRead,
    input: &FetchedInput<S::Cursor>,
) -> Result<Decided<S, FetchedOutput>, ActionError> {
    running(view, &input.user_id, &input.fetch_id)?;
    let counts = Counts {
        tracks: input.tracks.len() as u64,
        likes: input.likes.len() as u64,
        plays: input.plays.len() as u64,
        playlists: input.playlists.len() as u64,
        skipped: input.skipped,
        unreadable: input.unreadable,
    };
    let out = FetchedOutput {
        user_id: input.user_id.clone(),
        fetch_id: input.fetch_id.clone(),
        complete: input.complete,
        counts: counts.clone(),
    };
    let event = SourceEvent::FetchFinished {
        fetch_id: input.fetch_id.clone(),
        complete: input.complete,
        mode: input.mode,
        counts,
        cursor: input.cursor.clone(),
    };
    Ok((input.user_id.clone(), vec![event], out))
}

pub fn failed<S: Source>(
    view: &dyn ProjectionRead,
    input: &FailedInput,
) -> Result<Decided<S, FailedOutput>, ActionError> {
    running(view, &input.user_id, &input.fetch_id)?;
    check_time("retryAt", &input.retry_at)?;
    if input.checkpoint.is_some() && input.retry_at.is_none() {
        return Err(ActionError::invalid(
            "INVALID_INPUT",
            "`checkpoint` is kept only for a read that may go on later: it needs `retryAt`",
        ));
    }
    let out = FailedOutput {
        user_id: input.user_id.clone(),
        fetch_id: input.fetch_id.clone(),
        code: input.code.clone(),
    };
    let event = SourceEvent::FetchFailed {
        fetch_id: input.fetch_id.clone(),
        code: input.code.clone(),
        error: input.error.clone(),
        retry_at: input.retry_at.clone(),
        needs_reauth: input.needs_reauth,
        checkpoint: input.checkpoint.clone(),
    };
    Ok((input.user_id.clone(), vec![event], out))
}

/// `resume` (system): the read a rate limit stopped goes on from its checkpoint, once its
/// `retryAt` has come, while the user is connected and need not connect again.
pub fn resume<S: Source>(
    ctx: &ActionCtx,
    view: &dyn ProjectionRead,
    input: &ResumeInput,
) -> Result<Decided<S, FetchOutput>, ActionError> {
    let user = input.user_id.clone();
    check_id("userId", &user)?;
    check_id("fetchId", &input.fetch_id)?;
    let conn = connection::<S>(view, &user)?;
    let not_resumable = |why: &str| {
        ActionError::conflict(
            "FETCH_NOT_RESUMABLE",
            format!("{user:?}'s read {:?} cannot resume: {why}", input.fetch_id),
        )
    };
    if conn.needs_reauth {
        return Err(not_resumable("the user must connect again"));
    }
    let fetch = rows::read::<FetchRow, _>(view, FETCH, &user)?
        .filter(|f| f.fetch_id == input.fetch_id)
        .ok_or_else(|| not_resumable("it is not the user's latest read"))?;
    if !resumable(view, &user, &fetch)? {
        return Err(not_resumable("it did not stop for a rate limit with a checkpoint"));
    }
    if let Some(retry_at) = fetch.retry_at.as_deref().and_then(parse_rfc3339) {
        if retry_at > ctx.now {
            return Err(not_resumable(&format!(
                "{} asked to wait until {}",
                S::SERVICE,
                format_rfc3339(&retry_at)
            )));
        }
    }
    let out = FetchOutput {
        user_id: user.clone(),
        fetch_id: fetch.fetch_id.clone(),
        mode: fetch.mode,
        running: false,
    };
    Ok((
        user,
        vec![SourceEvent::FetchResumed {
            fetch_id: fetch.fetch_id,
        }],
        out,
    ))
}

/// The update action ([`Source::UPDATE_ACTION`]): `userId` plus the fields of `S::Update`.
pub fn updated<S: Source>(
    view: &dyn ProjectionRead,
    source: &S,
    secrets: &Secrets,
    action: &str,
    input: &Value,
) -> Result<Decided<S, UserOutput>, ActionError> {
    let mut input = input.clone();
    let user = match input.as_object_mut().and_then(|o| o.remove("userId")) {
        Some(Value::String(user)) => user,
        Some(_) => {
            return Err(ActionError::invalid(
                "INVALID_INPUT",
                format!("invalid input for {action}: field `userId` must be a string"),
            ))
        }
        None => {
            return Err(ActionError::invalid(
                "INVALID_INPUT",
                format!("invalid input for {action}: missing field `userId`"),
            ))
        }
    };
    let update: S::Update = concept_core::Input::Value(input).decode(action)?;
    check_id("userId", &user)?;
    connection::<S>(view, &user)?;
    source.check_update(&update)?;
    let update = secrets
        .seal_fields(S::NAME, &user, S::SECRETS, &update)
        .map_err(secrets_refusal)?;
    let out = user_output(&user);
    Ok((user, vec![SourceEvent::ConnectionUpdated(update)], out))
}

pub fn confirm<S: Source>(
    view: &dyn ProjectionRead,
    input: &ConfirmInput,
) -> Result<Decided<S, ConfirmOutput>, ActionError> {
    check_id("userId", &input.user_id)?;
    check_id("fetchId", &input.fetch_id)?;
    let pending = rows::read::<CursorRow<Value>, _>(view, PENDING, &input.user_id)?;
    let confirmed = pending.is_some_and(|p| p.fetch_id == input.fetch_id);
    let out = ConfirmOutput {
        user_id: input.user_id.clone(),
        fetch_id: input.fetch_id.clone(),
        confirmed,
    };
    let events = if confirmed {
        vec![SourceEvent::CursorConfirmed {
            fetch_id: input.fetch_id.clone(),
        }]
    } else {
        Vec::new()
    };
    Ok((input.user_id.clone(), events, out))
}
