//! What the caches' answers must be, and how two answers are compared.
//!
//! Most answers must be byte for byte what the workload says (or what the other cache says).
//! Some carry what only one cache can know — an action's `version` and time, `_getStatus`'s
//! times and version, `_getChanges`'s versions and times — and are compared in a normal form
//! without those ([`normal_form`]): a write's counts; a status's counts and staleness; the changes
//! grouped by the action that made them, each group as a sorted list of
//! `(kind, trackId, playlistId, time)`.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::BenchError;
use crate::model::{Play, Playlist, Track};
use crate::workload::Workload;

/// How an answer is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Form {
    /// Byte for byte, but for a page's `nextCursor`: a cursor is opaque, each cache's own.
    Exact,
    /// An action's answer without its `version`.
    Write,
    /// `_getStatus` without its times and version.
    Status,
    /// `_getChanges` without versions and times, grouped by action.
    Changes,
}

/// `answer` without its top-level `nextCursor` (the bytes as they are when it has none).
fn without_cursor(answer: &[u8]) -> Result<Vec<u8>, BenchError> {
    const CURSOR: &[u8] = b"\"nextCursor\"";
    if !answer.windows(CURSOR.len()).any(|w| w == CURSOR) {
        return Ok(answer.to_vec());
    }
    let mut value: Value = serde_json::from_slice(answer)?;
    if let Some(fields) = value.as_object_mut() {
        fields.shift_remove("nextCursor");
    }
    Ok(serde_json::to_vec(&value)?)
}

/// The text two caches' answers must agree on.
pub fn normal_form(form: Form, answer: &[u8]) -> Result<Vec<u8>, BenchError> {
    if form == Form::Exact {
        return without_cursor(answer);
    }
    let mut value: Value = serde_json::from_slice(answer)?;
    let normal = match form {
        Form::Exact => return Ok(answer.to_vec()),
        Form::Write => {
            if let Some(fields) = value.as_object_mut() {
                fields.shift_remove("version");
            }
            value
        }
        Form::Status => {
            let keep = ["userId", "tracks", "likes", "plays", "playlists", "stale"];
            json!(keep
                .iter()
                .map(|k| value.get(*k).cloned().unwrap_or(Value::Null))
                .collect::<Vec<_>>())
        }
        Form::Changes => {
            let mut groups: Vec<Vec<Value>> = Vec::new();
            let mut current: Option<&Value> = None;
            let changes = value
                .get("changes")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            for c in changes {
                let version = c.get("version");
                if current != version || groups.is_empty() {
                    groups.push(Vec::new());
                    current = version;
                }
                let field = |k: &str| c.get(k).cloned().unwrap_or(Value::Null);
                if let Some(group) = groups.last_mut() {
                    group.push(json!([
                        field("kind"),
                        field("trackId"),
                        field("playlistId"),
                        field("time")
                    ]));
                }
            }
            for g in &mut groups {
                g.sort_by_key(|v| v.to_string());
            }
            json!({"groups": groups, "more": value.get("more").cloned().unwrap_or(Value::Null)})
        }
    };
    Ok(serde_json::to_vec(&normal)?)
}

/// `_getLiked`'s answer for a liked list.
pub fn liked_answer(ids: &[String]) -> Result<Vec<u8>, BenchError> {
    Ok(serde_json::to_vec(&json!({ "trackIds": ids }))?)
}

/// `/api/liked`'s answer for a liked list.
pub fn liked_request_answer(user: &str, ids: &[String]) -> Result<Vec<u8>, BenchError> {
    Ok(serde_json::to_vec(&json!({ "userId": user, "trackIds": ids }))?)
}

/// `_getPlaylist`'s answer: the id asked for, then the playlist as given.
pub fn playlist_answer(p: &Playlist) -> Result<Vec<u8>, BenchError> {
    let mut fields = serde_json::Map::new();
    fields.insert("playlistId".into(), Value::String(p.id.clone()));
    if let Value::Object(rest) = serde_json::to_value(p)? {
        fields.extend(rest);
    }
    Ok(serde_json::to_vec(&Value::Object(fields))?)
}

/// The workload's plays as `_getPlays` lists them: newest first, ties by track id.
pub fn plays_newest_first(w: &Workload) -> Vec<Play> {
    let mut plays: Vec<(i64, &Play)> = w
        .plays
        .iter()
        .map(|p| {
            let us = crate::model::parse_time(&p.played_at).map_or(0, |t| concept_core::time::micros(&t));
            (us, p)
        })
        .collect();
    plays.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.track_id.cmp(&b.1.track_id)));
    plays
        .into_iter()
        .map(|(us, p)| Play {
            track_id: p.track_id.clone(),
            played_at: crate::model::format_time(&concept_core::time::from_micros(us)),
        })
        .collect()
}

/// `_getPlays`'s answer with at most `limit` plays.
pub fn plays_answer(w: &Workload, limit: usize) -> Result<Vec<u8>, BenchError> {
    let plays: Vec<Play> = plays_newest_first(w).into_iter().take(limit).collect();
    Ok(serde_json::to_vec(&json!({ "plays": plays }))?)
}

/// `_getTracks`'s answer for the first `limit` of the workload's tracks (by id).
pub fn tracks_answer(w: &Workload, limit: usize) -> Result<Vec<u8>, BenchError> {
    let mut tracks: Vec<&Track> = w.tracks.iter().collect();
    tracks.sort_by(|a, b| a.id.cmp(&b.id));
    tracks.truncate(limit);
    Ok(serde_json::to_vec(
        &json!({ "tracks": tracks, "total": w.tracks.len() }),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_compare_without_their_version() -> Result<(), BenchError> {
        let a = br#"{"userId":"u","version":3,"added":{"likes":1}}"#;
        let b = br#"{"userId":"u","version":9,"added":{"likes":1}}"#;
        assert_eq!(normal_form(Form::Write, a)?, normal_form(Form::Write, b)?);
        assert_ne!(normal_form(Form::Exact, a)?, normal_form(Form::Exact, b)?);
        Ok(())
    }

    #[test]
    fn changes_compare_by_action_in_any_order_within_it() -> Result<(), BenchError> {
        let a = br#"{"changes":[{"version":4,"at":"x","kind":"liked","trackId":"a"},{"version":4,"at":"x","kind":"unliked","trackId":"b"},{"version":5,"at":"y","kind":"synced"}],"version":5,"more":false}"#;
        let b = br#"{"changes":[{"version":2,"at":"z","kind":"unliked","trackId":"b"},{"version":2,"at":"z","kind":"liked","trackId":"a"},{"version":3,"at":"z","kind":"synced"}],"version":3,"more":false}"#;
        let c = br#"{"changes":[{"version":2,"at":"z","kind":"unliked","trackId":"b"},{"version":3,"at":"z","kind":"liked","trackId":"a"},{"version":3,"at":"z","kind":"synced"}],"version":3,"more":false}"#;
        assert_eq!(normal_form(Form::Changes, a)?, normal_form(Form::Changes, b)?);
        assert_ne!(normal_form(Form::Changes, a)?, normal_form(Form::Changes, c)?);
        Ok(())
    }

    #[test]
    fn a_playlist_answer_starts_with_the_id_asked_for() -> Result<(), BenchError> {
        let w = Workload::small(1);
        let text = String::from_utf8_lossy(&playlist_answer(&w.playlists[0])?).into_owned();
        assert!(text.starts_with(&format!("{{\"playlistId\":\"{}\",\"id\":", w.playlists[0].id)));
        Ok(())
    }
}
