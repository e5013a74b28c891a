//! A source's queries: the latest read and the connections, never a secret.

use crate::decide::{check_id, connection, not_connected};
use crate::model::*;
use crate::rows::{self, CheckpointRow, Connection, CursorRow, FetchRow, CHECKPOINT, CONFIRMED, CONNECTION, FETCH};
use crate::Source;
use concept_core::{ActionError, ProjectionRead};

pub fn get_fetch<S: Source>(view: &dyn ProjectionRead, input: UserInput) -> Result<FetchStatus, ActionError> {
    let user = input.user_id;
    check_id("userId", &user)?;
    let conn = rows::read::<Connection<S::Credentials>, _>(view, CONNECTION, &user)?;
    let fetch = rows::read::<FetchRow, _>(view, FETCH, &user)?;
    if conn.is_none() && fetch.is_none() {
        return Err(not_connected::<S>(&user));
    }
    let confirmed = rows::read::<CursorRow<S::Cursor>, _>(view, CONFIRMED, &user)?;
    let mut status = FetchStatus {
        user_id: user,
        phase: "idle".into(),
        needs_reauth: conn.as_ref().is_some_and(|c| c.needs_reauth),
        connected: conn.is_some(),
        last_full_at: confirmed
            .as_ref()
            .and_then(|c| S::full_at(&c.cursor))
            .map(str::to_string),
        ..FetchStatus::default()
    };
    if let Some(f) = fetch {
        status.fetch_id = Some(f.fetch_id);
        status.flow = Some(f.flow);
        status.mode = Some(f.mode);
        status.phase = f.phase;
        status.current = f.current;
        status.total = f.total;
        status.started_at = Some(f.started_at);
        status.finished_at = f.finished_at;
        status.complete = f.complete;
        status.counts = f.counts;
        status.code = f.code;
        status.error = f.error;
        status.retry_at = f.retry_at;
        status.until = f.until;
        status.checkpoint_pages = rows::read::<CheckpointRow, _>(view, CHECKPOINT, &status.user_id)?
            .filter(|c| status.fetch_id.as_deref() == Some(c.fetch_id.as_str()))
            .map(|c| c.checkpoint.pages.len() as u64);
    }
    Ok(status)
}

pub fn get_connection<S: Source>(
    view: &dyn ProjectionRead,
    source: &S,
    input: UserInput,
) -> Result<S::ConnectionOutput, ActionError> {
    check_id("userId", &input.user_id)?;
    let conn = connection::<S>(view, &input.user_id)?;
    Ok(source.describe(&input.user_id, &conn))
}

pub fn get_connections(view: &dyn ProjectionRead) -> Result<UsersOutput, ActionError> {
    Ok(UsersOutput {
        user_ids: rows::users(view, CONNECTION)?,
    })
}
