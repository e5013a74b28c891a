//! SpotifySource's actions: check preconditions against the rows, refuse or decide events.

use crate::events::SourceEvent;
use crate::model::*;
use crate::rows::{self, Connection, CursorRow, FetchRow, CONFIRMED, CONNECTION, FETCH, PENDING};
use crate::Settings;
use concept_core::time::{format_rfc3339, parse_rfc3339};
use concept_core::{ActionCtx, ActionError, ProjectionRead};

/// What an action decided: the user's stream, its events, and the output.
pub type Decided = (String, Vec<SourceEvent>, serde_json::Value);

fn output<T: serde::Serialize>(out: &T) -> Result<serde_json::Value, ActionError> {
    concept_core::input::encode(out)
}

/// A user id or fetch id: the ids every concept takes (`concept_core::fields::id`).
pub use concept_core::fields::id as check_id;

fn check_time(field: &str, t: &Option<String>) -> Result<(), ActionError> {
    concept_core::fields::opt_time(field, t.as_deref()).map(|_| ())
}

pub fn not_connected(user: &str) -> ActionError {
    ActionError::not_found(
        "NOT_CONNECTED",
        format!("user {user:?} has not connected Spotify; call SpotifySource.connect first"),
    )
}

pub fn connection(view: &dyn ProjectionRead, user: &str) -> Result<Connection, ActionError> {
    rows::read::<Connection, _>(view, CONNECTION, user)?.ok_or_else(|| not_connected(user))
}

pub fn connect(input: ConnectInput) -> Result<Decided, ActionError> {
    check_id("userId", &input.user_id)?;
    if input.access_token.trim().is_empty() {
        return Err(ActionError::invalid("EMPTY_TOKEN", "`accessToken` must not be empty"));
    }
    check_time("expiresAt", &input.expires_at)?;
    if input.refresh_token.is_some() && input.client_id.is_none() {
        return Err(ActionError::invalid(
            "MISSING_CLIENT_ID",
            "`refreshToken` needs `clientId` (and `clientSecret` unless the app uses PKCE) to be used",
        ));
    }
    let out = output(&UserOutput {
        user_id: input.user_id.clone(),
    })?;
    let event = SourceEvent::Connected {
        access_token: input.access_token,
        refresh_token: input.refresh_token,
        client_id: input.client_id,
        client_secret: input.client_secret,
        expires_at: input.expires_at,
    };
    Ok((input.user_id, vec![event], out))
}

pub fn disconnect(view: &dyn ProjectionRead, input: UserInput) -> Result<Decided, ActionError> {
    check_id("userId", &input.user_id)?;
    connection(view, &input.user_id)?;
    let out = output(&UserOutput {
        user_id: input.user_id.clone(),
    })?;
    Ok((input.user_id, vec![SourceEvent::Disconnected {}], out))
}

pub fn fetch(
    ctx: &ActionCtx,
    view: &dyn ProjectionRead,
    settings: &Settings,
    input: FetchInput,
) -> Result<Decided, ActionError> {
    let user = input.user_id;
    check_id("userId", &user)?;
    let conn = connection(view, &user)?;
    if conn.needs_reauth {
        return Err(ActionError::conflict(
            "NEEDS_REAUTH",
            format!("Spotify refused the stored credentials of {user:?}; connect again"),
        ));
    }
    let last = rows::read::<FetchRow, _>(view, FETCH, &user)?;
    if let Some(running) = last.as_ref().filter(|f| f.running()) {
        let out = output(&FetchOutput {
            user_id: user.clone(),
            fetch_id: running.fetch_id.clone(),
            mode: running.mode,
            running: true,
        })?;
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
                    "Spotify asked us to wait until {} before reading {user:?}'s library again",
                    format_rfc3339(&retry_at)
                ),
            ));
        }
    }
    let confirmed = rows::read::<CursorRow, _>(view, CONFIRMED, &user)?;
    let mode = choose_mode(ctx, settings, input.mode, confirmed.as_ref());
    let fetch_id = uuid::Uuid::now_v7().to_string();
    let out = output(&FetchOutput {
        user_id: user.clone(),
        fetch_id: fetch_id.clone(),
        mode,
        running: false,
    })?;
    let event = SourceEvent::FetchStarted {
        fetch_id,
        mode,
        flow: ctx.flow.to_string(),
    };
    Ok((user, vec![event], out))
}

/// Full without a confirmed read to compare against, or when the last full read is older than
/// the configured period (increments cannot see removals); incremental otherwise, or as asked.
fn choose_mode(ctx: &ActionCtx, settings: &Settings, asked: Option<Mode>, confirmed: Option<&CursorRow>) -> Mode {
    let Some(confirmed) = confirmed else {
        return Mode::Full;
    };
    match asked {
        Some(mode) => mode,
        None => {
            let full_at = confirmed.cursor.full_at.as_deref().and_then(parse_rfc3339);
            match full_at {
                Some(t) if ctx.now - t < settings.full_every => Mode::Incremental,
                _ => Mode::Full,
            }
        }
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

pub fn progressed(view: &dyn ProjectionRead, input: ProgressInput) -> Result<Decided, ActionError> {
    running(view, &input.user_id, &input.fetch_id)?;
    let out = output(&UserOutput {
        user_id: input.user_id.clone(),
    })?;
    let event = SourceEvent::FetchProgressed {
        fetch_id: input.fetch_id,
        phase: input.phase,
        current: input.current,
        total: input.total,
    };
    Ok((input.user_id, vec![event], out))
}

pub fn fetched(view: &dyn ProjectionRead, input: FetchedInput) -> Result<Decided, ActionError> {
    running(view, &input.user_id, &input.fetch_id)?;
    let counts = Counts {
        tracks: input.tracks.len() as u64,
        likes: input.likes.len() as u64,
        plays: input.plays.len() as u64,
        playlists: input.playlists.len() as u64,
        skipped: input.skipped,
        unreadable: input.unreadable,
    };
    let out = output(&FetchedOutput {
        user_id: input.user_id.clone(),
        fetch_id: input.fetch_id.clone(),
        complete: input.complete,
        counts: counts.clone(),
    })?;
    let event = SourceEvent::FetchFinished {
        fetch_id: input.fetch_id,
        complete: input.complete,
        counts,
        cursor: input.cursor,
    };
    Ok((input.user_id, vec![event], out))
}

pub fn failed(view: &dyn ProjectionRead, input: FailedInput) -> Result<Decided, ActionError> {
    running(view, &input.user_id, &input.fetch_id)?;
    check_time("retryAt", &input.retry_at)?;
    let out = output(&FailedOutput {
        user_id: input.user_id.clone(),
        fetch_id: input.fetch_id.clone(),
        code: input.code.clone(),
    })?;
    let event = SourceEvent::FetchFailed {
        fetch_id: input.fetch_id,
        code: input.code,
        error: input.error,
        retry_at: input.retry_at,
        needs_reauth: input.needs_reauth,
    };
    Ok((input.user_id, vec![event], out))
}

pub fn token_refreshed(view: &dyn ProjectionRead, input: TokenRefreshedInput) -> Result<Decided, ActionError> {
    check_id("userId", &input.user_id)?;
    connection(view, &input.user_id)?;
    check_time("expiresAt", &input.expires_at)?;
    let out = output(&UserOutput {
        user_id: input.user_id.clone(),
    })?;
    let event = SourceEvent::TokenRefreshed {
        access_token: input.access_token,
        refresh_token: input.refresh_token,
        expires_at: input.expires_at,
    };
    Ok((input.user_id, vec![event], out))
}

pub fn confirm(view: &dyn ProjectionRead, input: ConfirmInput) -> Result<Decided, ActionError> {
    check_id("userId", &input.user_id)?;
    check_id("fetchId", &input.fetch_id)?;
    let pending = rows::read::<CursorRow, _>(view, PENDING, &input.user_id)?;
    let confirmed = pending.is_some_and(|p| p.fetch_id == input.fetch_id);
    let out = output(&ConfirmOutput {
        user_id: input.user_id.clone(),
        fetch_id: input.fetch_id.clone(),
        confirmed,
    })?;
    let events = if confirmed {
        vec![SourceEvent::CursorConfirmed {
            fetch_id: input.fetch_id,
        }]
    } else {
        Vec::new()
    };
    Ok((input.user_id, events, out))
}
