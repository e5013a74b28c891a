//! One read of a user's Spotify library: liked songs, playlists and their entries, recent plays,
//! turned into LibraryCache's shapes (tracks keyed by their Spotify URI, so local files and
//! episodes have ids too).
//!
//! A *full* read lists everything. An *incremental* read pages liked songs only until it meets a
//! like the cursor knows, and re-reads only playlists whose `snapshot_id` changed; when the
//! liked-songs `total` shows that something was removed (the increment cannot see what), it
//! turns into a full read. A 401 renews the access token once and retries; every other failure
//! ends the read (the caller reports it).

use crate::model::{Credentials, Cursor, HeadLike, TokenRefresh};
use crate::web_api::{ApiError, WebApi};
use concept_core::time::{format_rfc3339, parse_rfc3339};
use concept_core::SharedClock;
use serde_json::{json, Map, Value};
use source_kit::{Mode, ReadJob, Reporter, Session};
use std::collections::HashSet;

/// How many of the newest likes the cursor keeps.
pub const HEAD: usize = 50;
/// Page sizes: the most each endpoint gives.
const LIKES_PAGE: u64 = 50;
const PLAYLISTS_PAGE: u64 = 50;
const ITEMS_PAGE: u64 = 100;
/// How often a playlist is re-read when its snapshot changes while it is being read.
const SNAPSHOT_ATTEMPTS: usize = 3;
/// A token expiring within this margin is renewed before the read starts.
const RENEW_MARGIN: chrono::Duration = chrono::Duration::seconds(60);

/// A finished read, in LibraryCache's shapes.
pub type Outcome = source_kit::Outcome<Cursor>;

/// Runs the read `job` asks for: renews a token about to expire first, then reads in full, or
/// incrementally against the confirmed cursor when asked.
pub async fn run(
    api: &WebApi,
    job: ReadJob<Credentials, Cursor>,
    report: Reporter<TokenRefresh>,
) -> Result<Outcome, ApiError> {
    let creds = job.connection.credentials.clone();
    let expires = creds.expires_at.as_deref().and_then(parse_rfc3339);
    let renew_first = expires.is_some_and(|t| t - RENEW_MARGIN <= job.now) && creds.refresh_token.is_some();
    let mut read = Read::new(api, creds, report, job.clock.clone(), job.session.clone());
    if renew_first {
        read.renew().await?;
    }
    let now = format_rfc3339(&job.now);
    read.run(job.mode, job.cursor.as_ref(), &now).await
}

/// A read in progress.
pub struct Read<'a> {
    api: &'a WebApi,
    creds: Credentials,
    refreshed: bool,
    report: Reporter<TokenRefresh>,
    /// The engine's clock (a renewed token expires relative to it).
    clock: SharedClock,
    /// The read's HTTP session (rate limits waited out, pages kept for a checkpoint).
    session: Session,
    tracks: Vec<Map<String, Value>>,
    seen_tracks: HashSet<String>,
    skipped: u64,
}

impl<'a> Read<'a> {
    pub fn new(
        api: &'a WebApi,
        creds: Credentials,
        report: Reporter<TokenRefresh>,
        clock: SharedClock,
        session: Session,
    ) -> Self {
        Read {
            api,
            creds,
            refreshed: false,
            report,
            clock,
            session,
            tracks: Vec::new(),
            seen_tracks: HashSet::new(),
            skipped: 0,
        }
    }

    /// Renews the access token now (it is about to expire, or was refused).
    pub async fn renew(&mut self) -> Result<(), ApiError> {
        let refresh = self.creds.refresh_token.clone().ok_or(ApiError::NoRefreshToken)?;
        let renewed = self
            .api
            .refresh(
                &self.session,
                &refresh,
                self.creds.client_id.as_deref(),
                self.creds.client_secret.as_deref(),
            )
            .await?;
        self.creds.access_token = renewed.access_token.clone();
        if let Some(rotated) = &renewed.refresh_token {
            self.creds.refresh_token = Some(rotated.clone());
        }
        self.refreshed = true;
        self.report.update(TokenRefresh {
            access_token: renewed.access_token,
            refresh_token: renewed.refresh_token,
            expires_at: renewed
                .expires_in
                .map(|s| format_rfc3339(&(self.clock.now() + chrono::Duration::seconds(s as i64)))),
        });
        Ok(())
    }

    /// Runs the read. `cursor` is the last confirmed read (required for an incremental one).
    pub async fn run(mut self, mode: Mode, cursor: Option<&Cursor>, now: &str) -> Result<Outcome, ApiError> {
        let base = match (mode, cursor) {
            (Mode::Incremental, Some(c)) => Some(c),
            _ => None,
        };
        if let Some(base) = base {
            if let Some(outcome) = self.incremental(base).await? {
                return Ok(outcome);
            }
            // Something was removed: only a full read can tell what.
            self.tracks.clear();
            self.seen_tracks.clear();
            self.skipped = 0;
        }
        self.full(now).await
    }

    async fn full(&mut self, now: &str) -> Result<Outcome, ApiError> {
        let (likes, likes_total) = self.likes(None).await?;
        let (playlists, snapshots, unreadable) = self.playlists(None).await?;
        let plays = self.plays().await?;
        let head = head_of(&likes, &[]);
        Ok(self.outcome(
            Mode::Full,
            likes,
            plays,
            playlists,
            unreadable,
            Cursor {
                likes_total,
                head,
                playlists: snapshots,
                full_at: Some(now.to_string()),
            },
        ))
    }

    /// `None` when the liked songs lost some since the cursor (a full read is needed).
    async fn incremental(&mut self, base: &Cursor) -> Result<Option<Outcome>, ApiError> {
        let (likes, total) = self.likes(Some(base)).await?;
        let Some(likes) = likes_if_consistent(likes, total, base) else {
            tracing::info!(
                total,
                known = base.likes_total,
                "liked songs lost some since the last read: reading in full"
            );
            return Ok(None);
        };
        let (playlists, snapshots, unreadable) = self.playlists(Some(base)).await?;
        let plays = self.plays().await?;
        let head = head_of(&likes, &base.head);
        Ok(Some(self.outcome(
            Mode::Incremental,
            likes,
            plays,
            playlists,
            unreadable,
            Cursor {
                likes_total: total,
                head,
                playlists: snapshots,
                full_at: base.full_at.clone(),
            },
        )))
    }

    /// A full read is complete (it holds the whole library); an increment is not.
    fn outcome(
        &mut self,
        mode: Mode,
        likes: Vec<Like>,
        plays: Vec<Map<String, Value>>,
        playlists: Vec<Map<String, Value>>,
        unreadable: u64,
        cursor: Cursor,
    ) -> Outcome {
        Outcome {
            complete: mode == Mode::Full,
            mode,
            tracks: std::mem::take(&mut self.tracks),
            likes: likes
                .into_iter()
                .filter_map(|l| {
                    let id = l.track_id?;
                    let mut m = Map::new();
                    m.insert("trackId".into(), Value::String(id));
                    m.insert("likedAt".into(), Value::String(l.added_at));
                    Some(m)
                })
                .collect(),
            plays,
            playlists,
            skipped: self.skipped,
            unreadable,
            cursor,
        }
    }

    /// An authorised GET; a 401 renews the token once per read and retries.
    async fn get(&mut self, path: &str) -> Result<Value, ApiError> {
        match self.api.get(&self.session, &self.creds.access_token, path).await {
            Err(ApiError::Unauthorized) if !self.refreshed && self.creds.refresh_token.is_some() => {
                self.renew().await?;
                self.api.get(&self.session, &self.creds.access_token, path).await
            }
            other => other,
        }
    }

    /// Liked songs, newest first, with Spotify's `total`. With a cursor, stops at the first like
    /// the cursor knows (the likes after it are known too).
    async fn likes(&mut self, known: Option<&Cursor>) -> Result<(Vec<Like>, u64), ApiError> {
        let known_pairs: HashSet<(&str, &str)> = known
            .map(|c| {
                c.head
                    .iter()
                    .map(|h| (h.track_id.as_str(), h.added_at.as_str()))
                    .collect()
            })
            .unwrap_or_default();
        let newest_known = known.and_then(|c| c.head.first()).map(|h| h.added_at.clone());
        let mut likes = Vec::new();
        let mut offset = 0;
        let mut total;
        loop {
            let page = self
                .get(&format!("/me/tracks?limit={LIKES_PAGE}&offset={offset}"))
                .await?;
            total = page["total"].as_u64().unwrap_or(0);
            let items = items_of(&page, "/me/tracks")?;
            let count = items.len() as u64;
            for item in items {
                let added_at = item["added_at"].as_str().unwrap_or_default().to_string();
                let track = &item["track"];
                let id = track_id(track);
                if known.is_some() {
                    let pair_known = id
                        .as_deref()
                        .is_some_and(|id| known_pairs.contains(&(id, added_at.as_str())));
                    let older = newest_known.as_deref().is_some_and(|n| added_at.as_str() < n);
                    if pair_known || older {
                        self.report.progress("likes", likes.len() as u64, likes.len() as u64);
                        return Ok((likes, total));
                    }
                }
                if id.is_some() {
                    self.keep_track(track);
                } else {
                    self.skipped += 1;
                }
                likes.push(Like { track_id: id, added_at });
            }
            offset += count;
            self.report.progress("likes", offset.min(total), total);
            if count == 0 || offset >= total {
                return Ok((likes, total));
            }
        }
    }

    /// The playlists, and the snapshot of each; with a cursor, only those whose snapshot changed
    /// carry their entries (the rest are left out of the read).
    async fn playlists(
        &mut self,
        known: Option<&Cursor>,
    ) -> Result<(Vec<Map<String, Value>>, std::collections::BTreeMap<String, String>, u64), ApiError> {
        let mut listed = Vec::new();
        let mut offset = 0;
        loop {
            let page = self
                .get(&format!("/me/playlists?limit={PLAYLISTS_PAGE}&offset={offset}"))
                .await?;
            let total = page["total"].as_u64().unwrap_or(0);
            let items = items_of(&page, "/me/playlists")?;
            let count = items.len() as u64;
            listed.extend(items.iter().filter(|p| p.is_object()).cloned());
            offset += count;
            if count == 0 || offset >= total {
                break;
            }
        }
        let total = listed.len() as u64;
        let mut snapshots = std::collections::BTreeMap::new();
        let mut playlists = Vec::new();
        let mut unreadable = 0;
        for (n, p) in listed.iter().enumerate() {
            let Some(spotify_id) = p["id"].as_str().filter(|s| !s.is_empty()) else {
                continue;
            };
            let id = p["uri"]
                .as_str()
                .filter(|u| !u.is_empty())
                .map(str::to_string)
                .unwrap_or_else(|| format!("spotify:playlist:{spotify_id}"));
            let mut snapshot = p["snapshot_id"].as_str().unwrap_or_default().to_string();
            let unchanged = known.is_some_and(|c| !snapshot.is_empty() && c.playlists.get(&id) == Some(&snapshot));
            if !unchanged {
                let read = self.entries(spotify_id, &snapshot).await;
                let mut playlist = playlist_of(&id, p);
                match read {
                    Ok((entries, latest)) => {
                        snapshot = latest;
                        playlist.insert("entries".into(), Value::Array(entries));
                    }
                    Err(ApiError::Forbidden { .. }) => {
                        // A followed playlist Spotify will not list for this app: keep what we know.
                        unreadable += 1;
                        playlist.insert("entries".into(), json!([]));
                        playlist.insert("unreadable".into(), Value::Bool(true));
                    }
                    Err(e) => return Err(e),
                }
                if !snapshot.is_empty() {
                    playlist.insert("snapshotId".into(), Value::String(snapshot.clone()));
                }
                playlists.push(playlist);
            }
            snapshots.insert(id, snapshot);
            self.report.progress("playlists", n as u64 + 1, total);
        }
        Ok((playlists, snapshots, unreadable))
    }

    /// A playlist's entries in order (duplicates kept), and the snapshot they belong to: read
    /// again when the snapshot moved while they were read.
    async fn entries(&mut self, spotify_id: &str, listed_snapshot: &str) -> Result<(Vec<Value>, String), ApiError> {
        let mut snapshot = listed_snapshot.to_string();
        let mut entries = Vec::new();
        for _ in 0..SNAPSHOT_ATTEMPTS {
            entries.clear();
            let mut offset = 0;
            loop {
                let page = self
                    .get(&format!(
                        "/playlists/{spotify_id}/items?limit={ITEMS_PAGE}&offset={offset}"
                    ))
                    .await?;
                let total = page["total"].as_u64().unwrap_or(0);
                let items = items_of(&page, "/playlists/{id}/items")?;
                let count = items.len() as u64;
                for item in items {
                    // The 2026 field is `item`; `track` is the older name.
                    let track = if item["item"].is_object() {
                        &item["item"]
                    } else {
                        &item["track"]
                    };
                    match track_id(track) {
                        Some(id) => {
                            self.keep_track(track);
                            entries.push(Value::String(id));
                        }
                        None => self.skipped += 1,
                    }
                }
                offset += count;
                if count == 0 || offset >= total {
                    break;
                }
            }
            let now = self.get(&format!("/playlists/{spotify_id}?fields=snapshot_id")).await?;
            let after = now["snapshot_id"].as_str().unwrap_or_default().to_string();
            if after == snapshot || after.is_empty() {
                return Ok((entries, snapshot));
            }
            snapshot = after;
        }
        // Still moving: keep the last read, without a snapshot, so the next read looks again.
        Ok((entries, String::new()))
    }

    /// The last 50 plays, each once (track + playedAt).
    async fn plays(&mut self) -> Result<Vec<Map<String, Value>>, ApiError> {
        let page = self.get("/me/player/recently-played?limit=50").await?;
        let items = items_of(&page, "/me/player/recently-played")?;
        let mut seen = HashSet::new();
        let mut plays = Vec::new();
        for item in items {
            let track = &item["track"];
            let (Some(id), Some(at)) = (track_id(track), item["played_at"].as_str()) else {
                continue;
            };
            if !seen.insert((id.clone(), at.to_string())) {
                continue;
            }
            self.keep_track(track);
            let mut m = Map::new();
            m.insert("trackId".into(), Value::String(id));
            m.insert("playedAt".into(), Value::String(at.to_string()));
            plays.push(m);
        }
        self.report.progress("plays", plays.len() as u64, plays.len() as u64);
        Ok(plays)
    }

    fn keep_track(&mut self, track: &Value) {
        if let Some(t) = track_of(track) {
            if let Some(Value::String(id)) = t.get("id") {
                if self.seen_tracks.insert(id.clone()) {
                    self.tracks.push(t);
                }
            }
        }
    }
}

/// A liked item as read: its track's id (none for an item without a track) and when it was liked.
#[derive(Debug, Clone)]
pub struct Like {
    pub track_id: Option<String>,
    pub added_at: String,
}

/// The new likes of an incremental read, if they account for the whole change in `total` (if
/// not, likes were removed too).
fn likes_if_consistent(new: Vec<Like>, total: u64, base: &Cursor) -> Option<Vec<Like>> {
    (base.likes_total + new.len() as u64 == total).then_some(new)
}

/// The cursor's head: the newest likes (those with a track) before the older head.
fn head_of(likes: &[Like], older: &[HeadLike]) -> Vec<HeadLike> {
    likes
        .iter()
        .filter_map(|l| {
            l.track_id.as_ref().map(|id| HeadLike {
                track_id: id.clone(),
                added_at: l.added_at.clone(),
            })
        })
        .chain(older.iter().cloned())
        .take(HEAD)
        .collect()
}

fn items_of<'v>(page: &'v Value, path: &str) -> Result<&'v Vec<Value>, ApiError> {
    page["items"]
        .as_array()
        .ok_or_else(|| ApiError::unexpected(path, "the answer has no `items` list"))
}

/// A track's (or episode's, or local file's) id: its URI.
pub fn track_id(track: &Value) -> Option<String> {
    if !track.is_object() {
        return None;
    }
    if let Some(uri) = track["uri"].as_str().filter(|u| !u.is_empty()) {
        return Some(uri.to_string());
    }
    let kind = track["type"].as_str().unwrap_or("track");
    track["id"]
        .as_str()
        .filter(|id| !id.is_empty())
        .map(|id| format!("spotify:{kind}:{id}"))
}

/// A Spotify track, episode or local file as LibraryCache's track metadata.
pub fn track_of(track: &Value) -> Option<Map<String, Value>> {
    let id = track_id(track)?;
    let mut t = Map::new();
    t.insert("id".into(), Value::String(id.clone()));
    if let Some(name) = track["name"].as_str() {
        t.insert("title".into(), json!(name));
    }
    let artists: Vec<&str> = track["artists"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["name"].as_str()).collect())
        .unwrap_or_default();
    if !artists.is_empty() {
        t.insert("artist".into(), json!(artists.join(", ")));
    } else if let Some(show) = track["show"]["name"].as_str() {
        t.insert("artist".into(), json!(show));
    }
    if let Some(album) = track["album"]["name"].as_str() {
        t.insert("album".into(), json!(album));
    }
    if let Some(ms) = track["duration_ms"].as_u64() {
        t.insert("durationMs".into(), json!(ms));
    }
    let released = track["album"]["release_date"]
        .as_str()
        .or(track["release_date"].as_str());
    if let Some(year) = released.and_then(|d| d.get(..4)).and_then(|y| y.parse::<i32>().ok()) {
        t.insert("year".into(), json!(year));
    }
    if let Some(isrc) = track["external_ids"]["isrc"].as_str() {
        t.insert("isrc".into(), json!(isrc));
    }
    t.insert("uri".into(), Value::String(id));
    match track["type"].as_str() {
        Some("episode") => {
            t.insert("kind".into(), json!("episode"));
        }
        _ if track["is_local"] == true => {
            t.insert("kind".into(), json!("local"));
        }
        _ => {}
    }
    Some(t)
}

/// A listed playlist's metadata as LibraryCache's playlist (entries added by the caller).
fn playlist_of(id: &str, p: &Value) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), json!(id));
    m.insert("name".into(), json!(p["name"].as_str().unwrap_or_default()));
    let owner = p["owner"]["display_name"].as_str().or(p["owner"]["id"].as_str());
    if let Some(owner) = owner {
        m.insert("owner".into(), json!(owner));
    }
    for (from, to) in [("public", "public"), ("collaborative", "collaborative")] {
        if let Some(b) = p[from].as_bool() {
            m.insert(to.into(), json!(b));
        }
    }
    m.insert("uri".into(), json!(id));
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_uris_for_tracks_local_files_and_episodes() {
        assert_eq!(
            track_id(&json!({"id": "abc", "type": "track"})).as_deref(),
            Some("spotify:track:abc")
        );
        assert_eq!(
            track_id(&json!({"id": null, "uri": "spotify:local:A:B:C:180", "is_local": true})).as_deref(),
            Some("spotify:local:A:B:C:180")
        );
        assert_eq!(
            track_id(&json!({"id": "e1", "type": "episode"})).as_deref(),
            Some("spotify:episode:e1")
        );
        assert_eq!(track_id(&Value::Null), None);
    }

    #[test]
    fn a_track_becomes_library_metadata() {
        let t = track_of(&json!({
            "id": "abc", "uri": "spotify:track:abc", "name": "Song", "type": "track",
            "artists": [{"name": "A"}, {"name": "B"}], "album": {"name": "Al", "release_date": "1999-03-01"},
            "duration_ms": 180000, "external_ids": {"isrc": "US123"}
        }))
        .unwrap();
        assert_eq!(
            Value::Object(t),
            json!({"id": "spotify:track:abc", "title": "Song", "artist": "A, B", "album": "Al",
                   "durationMs": 180000, "year": 1999, "isrc": "US123", "uri": "spotify:track:abc"})
        );
    }

    #[test]
    fn an_increment_that_does_not_account_for_the_total_means_removals() {
        let base = Cursor {
            likes_total: 10,
            ..Cursor::default()
        };
        let new = || {
            vec![Like {
                track_id: Some("x".into()),
                added_at: "2026-01-01T00:00:00Z".into(),
            }]
        };
        assert!(likes_if_consistent(new(), 11, &base).is_some());
        assert!(
            likes_if_consistent(new(), 10, &base).is_none(),
            "one added and one removed"
        );
        assert!(likes_if_consistent(Vec::new(), 9, &base).is_none(), "one removed");
    }
}
