//! From a source's events to its projection rows — the only writer of the rows, run live inside
//! each commit and again by a rebuild.

use crate::events::SourceEvent;
use crate::rows::{
    self, CheckpointRow, Connection, CursorRow, FetchRow, CHECKPOINT, CONFIRMED, CONNECTION, FETCH, PENDING, RUNNING,
};
use crate::Source;
use concept_core::time::format_rfc3339;
use concept_core::{EventMeta, ProjectionTxn, StoreFault};

/// The event type of source `S`.
pub type Event<S> = SourceEvent<<S as Source>::Credentials, <S as Source>::Update, <S as Source>::Cursor>;

pub fn apply<S: Source>(
    source: &S,
    meta: &EventMeta,
    event: &Event<S>,
    txn: &mut dyn ProjectionTxn,
) -> Result<(), StoreFault> {
    let user = meta.stream.as_str();
    let at = format_rfc3339(&meta.at);
    match event {
        SourceEvent::Connected(credentials) => {
            let row = Connection {
                credentials: credentials.clone(),
                connected_at: at,
                needs_reauth: false,
            };
            txn.put(&rows::key(CONNECTION, user), rows::encode(&row));
            // Pages read under other credentials (perhaps of another server) are no base.
            txn.delete(&rows::key(CHECKPOINT, user));
        }
        SourceEvent::Disconnected {} => {
            txn.delete(&rows::key(CONNECTION, user));
            txn.delete(&rows::key(CONFIRMED, user));
            txn.delete(&rows::key(PENDING, user));
            txn.delete(&rows::key(CHECKPOINT, user));
            // A read still running ends here: it has no credentials to go on.
            if let Some(mut fetch) = rows::read::<FetchRow, _>(&*txn, FETCH, user)? {
                if fetch.running() {
                    fetch.phase = "failed".into();
                    fetch.finished_at = Some(at);
                    fetch.code = Some("DISCONNECTED".into());
                    fetch.error = Some(format!("the user disconnected {} while the read ran", S::SERVICE));
                    txn.put(&rows::key(FETCH, user), rows::encode(&fetch));
                }
            }
            txn.delete(&rows::key(RUNNING, user));
        }
        SourceEvent::ConnectionUpdated(update) => {
            if let Some(mut conn) = rows::read::<Connection<S::Credentials>, _>(&*txn, CONNECTION, user)? {
                source.apply_update(&mut conn.credentials, update);
                txn.put(&rows::key(CONNECTION, user), rows::encode(&conn));
            }
        }
        SourceEvent::FetchStarted { fetch_id, mode, flow } => {
            let row = FetchRow {
                fetch_id: fetch_id.clone(),
                mode: *mode,
                flow: flow.clone(),
                phase: "starting".into(),
                current: 0,
                total: 0,
                started_at: at,
                finished_at: None,
                complete: None,
                counts: None,
                code: None,
                error: None,
                retry_at: None,
                until: None,
            };
            txn.put(&rows::key(FETCH, user), rows::encode(&row));
            txn.put(&rows::key(RUNNING, user), fetch_id.as_bytes().to_vec());
            // A new read supersedes a stopped one.
            txn.delete(&rows::key(CHECKPOINT, user));
        }
        SourceEvent::FetchProgressed {
            fetch_id,
            phase,
            current,
            total,
            until,
        } => update_fetch(txn, user, fetch_id, |f| {
            f.phase = phase.clone();
            f.current = *current;
            f.total = *total;
            f.until = until.clone();
        })?,
        SourceEvent::FetchFinished {
            fetch_id,
            complete,
            mode,
            counts,
            cursor,
        } => {
            update_fetch(txn, user, fetch_id, |f| {
                f.phase = "done".into();
                f.finished_at = Some(at.clone());
                f.complete = Some(*complete);
                f.counts = Some(counts.clone());
                f.until = None;
                f.mode = match mode {
                    Some(mode) => *mode,
                    None if *complete => crate::model::Mode::Full,
                    None => f.mode,
                };
            })?;
            txn.delete(&rows::key(RUNNING, user));
            txn.delete(&rows::key(CHECKPOINT, user));
            let pending = CursorRow {
                fetch_id: fetch_id.clone(),
                cursor: cursor.clone(),
            };
            txn.put(&rows::key(PENDING, user), rows::encode(&pending));
        }
        SourceEvent::FetchFailed {
            fetch_id,
            code,
            error,
            retry_at,
            needs_reauth,
            checkpoint,
        } => {
            update_fetch(txn, user, fetch_id, |f| {
                f.phase = "failed".into();
                f.finished_at = Some(at.clone());
                f.code = Some(code.clone());
                // Also for events written before reads redacted their messages.
                f.error = Some(concept_core::redact::redact_text(error));
                f.retry_at = retry_at.clone();
                f.until = None;
            })?;
            txn.delete(&rows::key(RUNNING, user));
            match (checkpoint, retry_at) {
                (Some(checkpoint), Some(retry_at)) => {
                    let row = CheckpointRow {
                        fetch_id: fetch_id.clone(),
                        retry_at: retry_at.clone(),
                        checkpoint: checkpoint.clone(),
                    };
                    txn.put(&rows::key(CHECKPOINT, user), rows::encode(&row));
                }
                _ => txn.delete(&rows::key(CHECKPOINT, user)),
            }
            if *needs_reauth {
                if let Some(mut conn) = rows::read::<Connection<S::Credentials>, _>(&*txn, CONNECTION, user)? {
                    conn.needs_reauth = true;
                    txn.put(&rows::key(CONNECTION, user), rows::encode(&conn));
                }
            }
        }
        SourceEvent::FetchResumed { fetch_id } => {
            update_fetch(txn, user, fetch_id, |f| {
                f.phase = "resuming".into();
                f.finished_at = None;
                f.code = None;
                f.error = None;
                f.retry_at = None;
                f.until = None;
            })?;
            txn.put(&rows::key(RUNNING, user), fetch_id.as_bytes().to_vec());
        }
        SourceEvent::Resealed(credentials) => {
            if let Some(mut conn) = rows::read::<Connection<S::Credentials>, _>(&*txn, CONNECTION, user)? {
                conn.credentials = credentials.clone();
                txn.put(&rows::key(CONNECTION, user), rows::encode(&conn));
            }
        }
        SourceEvent::CursorConfirmed { fetch_id } => {
            if let Some(pending) = rows::read::<CursorRow<S::Cursor>, _>(&*txn, PENDING, user)? {
                if &pending.fetch_id == fetch_id {
                    txn.put(&rows::key(CONFIRMED, user), rows::encode(&pending));
                    txn.delete(&rows::key(PENDING, user));
                }
            }
        }
    }
    Ok(())
}

fn update_fetch(
    txn: &mut dyn ProjectionTxn,
    user: &str,
    fetch_id: &str,
    change: impl FnOnce(&mut FetchRow),
) -> Result<(), StoreFault> {
    if let Some(mut fetch) = rows::read::<FetchRow, _>(&*txn, FETCH, user)? {
        if fetch.fetch_id == fetch_id {
            change(&mut fetch);
            txn.put(&rows::key(FETCH, user), rows::encode(&fetch));
        }
    }
    Ok(())
}
