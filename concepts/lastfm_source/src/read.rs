//! One read of a user's Last.fm: the scrobbles since the last known play (`user.getrecenttracks`)
//! and, when the connection asks for them, the loved tracks (`user.getlovedtracks`), in
//! LibraryCache's shapes. Never complete: a Last.fm read only adds (plays, likes, tracks).
//!
//! Recent tracks come newest first, [`PAGE`] to a page. `to` is pinned to the start of the read,
//! so scrobbles arriving while it pages do not shift the pages under it (they are the next
//! read's); `from` is the cursor's last play (the whole history without a cursor or when a full
//! read is asked for). The leading now-playing item (`@attr.nowplaying`, no `date`) is not a
//! play and is dropped; a play the cursor already holds (same second, same track) is dropped;
//! a play met twice in one read is kept once.

use crate::api::{number, ApiError, LastfmApi};
use crate::model::{Credentials, Cursor};
use crate::track::track_of;
use chrono::DateTime;
use concept_core::time::{format_rfc3339, parse_rfc3339};
use serde_json::{json, Map, Value};
use source_kit::{Mode, NoUpdate, Outcome, ReadJob, Reporter, Session};
use std::collections::HashSet;

/// Items asked for per page (the most `user.getrecenttracks` gives).
pub const PAGE: u64 = 200;

/// A finished read's parts before they become an [`Outcome`].
#[derive(Default)]
struct Gathered {
    tracks: Vec<Map<String, Value>>,
    track_ids: HashSet<String>,
    skipped: u64,
}

impl Gathered {
    /// The item's track (kept once per read) and its id; `None` (counted) without one.
    fn track(&mut self, item: &Value) -> Option<String> {
        let Some(track) = track_of(item) else {
            self.skipped += 1;
            return None;
        };
        let id = track["id"].as_str().unwrap_or_default().to_string();
        if self.track_ids.insert(id.clone()) {
            self.tracks.push(track);
        }
        Some(id)
    }
}

pub async fn run(
    api: &LastfmApi,
    job: ReadJob<Credentials, Cursor>,
    report: Reporter<NoUpdate>,
) -> Result<Outcome<Cursor>, ApiError> {
    let creds = &job.connection.credentials;
    let base = job.incremental_base();
    let mut gathered = Gathered::default();
    let session = &job.session;
    let (plays, newest) = plays(api, session, creds, base, job.now.timestamp(), &mut gathered, &report).await?;
    let likes = if creds.loved_tracks {
        loved(api, session, creds, &mut gathered, &report).await?
    } else {
        Vec::new()
    };
    let cursor = Cursor {
        last_played_at: newest
            .as_ref()
            .map(|(at, _)| at.clone())
            .or_else(|| base.and_then(|b| b.last_played_at.clone())),
        last_played: match newest {
            Some((_, ids)) => ids,
            None => base.map(|b| b.last_played.clone()).unwrap_or_default(),
        },
        full_at: match base {
            Some(b) => b.full_at.clone(),
            None => Some(format_rfc3339(&job.now)),
        },
    };
    Ok(Outcome {
        complete: false,
        mode: if base.is_some() { Mode::Incremental } else { Mode::Full },
        tracks: gathered.tracks,
        likes,
        plays,
        playlists: Vec::new(),
        skipped: gathered.skipped,
        unreadable: 0,
        cursor,
    })
}

/// The plays after the cursor up to `to`, oldest first, and the newest one's time with the
/// tracks played at that second.
async fn plays(
    api: &LastfmApi,
    session: &Session,
    creds: &Credentials,
    base: Option<&Cursor>,
    to: i64,
    gathered: &mut Gathered,
    report: &Reporter<NoUpdate>,
) -> Result<(Vec<Map<String, Value>>, Option<(String, Vec<String>)>), ApiError> {
    let method = "user.getrecenttracks";
    let from = base
        .and_then(|b| b.last_played_at.as_deref())
        .and_then(parse_rfc3339)
        .map(|t| t.timestamp());
    let known: HashSet<&str> = base
        .map(|b| b.last_played.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let mut seen: HashSet<(String, i64)> = HashSet::new();
    let mut plays: Vec<(i64, String)> = Vec::new();
    let mut page = 1;
    loop {
        let mut params = vec![
            ("limit", PAGE.to_string()),
            ("page", page.to_string()),
            ("to", to.to_string()),
        ];
        if let Some(from) = from {
            params.push(("from", from.to_string()));
        }
        let mut answer = api.call(session, creds, method, &params).await?;
        let list = answer
            .remove("recenttracks")
            .ok_or_else(|| ApiError::unexpected(method, "the answer has no `recenttracks`"))?;
        let (items, pages, total) = listing(&list);
        let mut fresh = 0;
        for item in &items {
            if item["@attr"]["nowplaying"] == json!("true") {
                continue;
            }
            fresh += 1;
            let Some(at) = seconds(&item["date"]["uts"]) else {
                gathered.skipped += 1;
                continue;
            };
            if at > to || from.is_some_and(|f| at < f) {
                continue;
            }
            let Some(id) = gathered.track(item) else {
                continue;
            };
            if from == Some(at) && known.contains(id.as_str()) {
                continue;
            }
            if seen.insert((id.clone(), at)) {
                plays.push((at, id));
            }
        }
        report.progress("plays", plays.len() as u64, total.max(plays.len() as u64));
        if fresh == 0 || page >= pages {
            break;
        }
        page += 1;
    }
    plays.sort();
    let newest = plays.last().map(|(at, _)| *at).map(|newest| {
        let ids = plays
            .iter()
            .filter(|(at, _)| *at == newest)
            .map(|(_, id)| id.clone())
            .collect();
        (time(newest), ids)
    });
    let plays = plays
        .into_iter()
        .map(|(at, id)| {
            let mut m = Map::new();
            m.insert("trackId".into(), json!(id));
            m.insert("playedAt".into(), json!(time(at)));
            m
        })
        .collect();
    Ok((plays, newest))
}

/// The loved tracks as likes (`likedAt`: when they were loved), each track once.
async fn loved(
    api: &LastfmApi,
    session: &Session,
    creds: &Credentials,
    gathered: &mut Gathered,
    report: &Reporter<NoUpdate>,
) -> Result<Vec<Map<String, Value>>, ApiError> {
    let method = "user.getlovedtracks";
    let mut likes = Vec::new();
    let mut liked = HashSet::new();
    let mut page = 1;
    loop {
        let params = [("limit", PAGE.to_string()), ("page", page.to_string())];
        let mut answer = api.call(session, creds, method, &params).await?;
        let list = answer
            .remove("lovedtracks")
            .ok_or_else(|| ApiError::unexpected(method, "the answer has no `lovedtracks`"))?;
        let (items, pages, total) = listing(&list);
        for item in &items {
            let Some(id) = gathered.track(item) else {
                continue;
            };
            if !liked.insert(id.clone()) {
                continue;
            }
            let mut like = Map::new();
            like.insert("trackId".into(), json!(id));
            if let Some(at) = seconds(&item["date"]["uts"]) {
                like.insert("likedAt".into(), json!(time(at)));
            }
            likes.push(like);
        }
        report.progress("loved", likes.len() as u64, total.max(likes.len() as u64));
        if items.is_empty() || page >= pages {
            break;
        }
        page += 1;
    }
    Ok(likes)
}

/// A listing's items (Last.fm gives a lone item as an object, none as nothing), its page count
/// and total.
fn listing(list: &Value) -> (Vec<Value>, u64, u64) {
    let items = match &list["track"] {
        Value::Array(items) => items.clone(),
        Value::Object(_) => vec![list["track"].clone()],
        _ => Vec::new(),
    };
    let attr = &list["@attr"];
    let pages = number(&attr["totalPages"]).unwrap_or(1);
    let total = number(&attr["total"]).unwrap_or(0);
    (items, pages, total)
}

/// A `date.uts`: UNIX seconds that make a time.
fn seconds(v: &Value) -> Option<i64> {
    number(v)
        .and_then(|s| i64::try_from(s).ok())
        .filter(|s| DateTime::from_timestamp(*s, 0).is_some())
}

/// UNIX seconds (checked by [`seconds`]) as RFC 3339.
fn time(uts: i64) -> String {
    DateTime::from_timestamp(uts, 0)
        .map(|t| format_rfc3339(&t))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_take_a_list_a_lone_item_or_nothing() {
        let (items, pages, total) =
            listing(&json!({"track": [{"name": "a"}, {"name": "b"}], "@attr": {"totalPages": "3", "total": "401"}}));
        assert_eq!((items.len(), pages, total), (2, 3, 401));
        let (items, pages, _) = listing(&json!({"track": {"name": "a"}, "@attr": {"totalPages": 1}}));
        assert_eq!((items.len(), pages), (1, 1));
        assert_eq!(listing(&json!({"@attr": {}})).0.len(), 0);
        assert_eq!(time(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
