//! One read of a user's Plex music library: every track of the music sections (paged, with
//! progress), the likes (tracks rated at or above the threshold), the playlists with their
//! entries, and the plays from the server's history — in LibraryCache's shapes.
//!
//! The server is identified first (`GET /identity`): the first read under a connection records
//! its `machineIdentifier`; a later read that meets another server fails with `SERVER_CHANGED`
//! before reading anything, so two servers' libraries are never mixed. Tracks, likes and
//! playlists are always read in full — a rating changes without `updatedAt` moving, so nothing
//! short of a complete read sees it — and the read is `complete`. Only the history is read
//! incrementally: back to the newest play the confirmed cursor saw (the cache merges plays).

use crate::api::{key_of, ApiError, PlexApi};
use crate::model::{Credentials, Cursor, ServerIdentified};
use crate::shapes::{flag, playlist_id, playlist_of, rating_of, time_of, track_id, track_of};
use crate::Settings;
use concept_core::time::parse_rfc3339;
use serde_json::{json, Map, Value};
use source_kit::http::Problem;
use source_kit::{Mode, ReadJob, Reporter, Session};
use std::collections::{HashMap, HashSet};

/// A finished read, in LibraryCache's shapes.
pub type Outcome = source_kit::Outcome<Cursor>;

/// Runs the read `job` asks for.
pub async fn run(
    api: &PlexApi,
    settings: &Settings,
    job: ReadJob<Credentials, Cursor>,
    report: Reporter<ServerIdentified>,
) -> Result<Outcome, ApiError> {
    let creds = job.connection.credentials.clone();
    let session = &job.session;
    let machine = api.identity(session, &creds).await?;
    match &creds.machine_identifier {
        Some(was) if *was != machine => {
            return Err(ApiError::ServerChanged {
                base_url: creds.base_url.clone(),
                was: was.clone(),
                now: machine,
            })
        }
        Some(_) => {}
        None => report.update(ServerIdentified {
            machine_identifier: machine.clone(),
        }),
    }
    // A cursor from another server (the user connected again to accept it) is no base.
    let base = job.incremental_base().filter(|c| c.machine_identifier == machine);
    let mut read = Read {
        api,
        session,
        creds: &creds,
        settings,
        report,
        found: Found::default(),
    };
    read.tracks().await?;
    let (playlists, unreadable) = read.playlists().await?;
    let since = base.and_then(|c| c.plays_until.as_deref()).and_then(parse_rfc3339);
    let (plays, newest) = match read.plays(since).await {
        Ok(plays) => plays,
        // The token read the library, so this is no bad token: the server keeps its history
        // from accounts other than its owner's. The read goes on without plays.
        Err(e) if history_refused(&e) => {
            tracing::warn!(error = %e, "the Plex server does not show this token its play history: no plays read");
            (Vec::new(), None)
        }
        Err(e) => return Err(e),
    };
    let now = concept_core::time::format_rfc3339(&job.now);
    let cursor = Cursor {
        machine_identifier: machine,
        plays_until: newest.or_else(|| base.and_then(|c| c.plays_until.clone())),
        full_at: match base {
            Some(c) => c.full_at.clone(),
            None => Some(now),
        },
    };
    let found = read.found;
    Ok(Outcome {
        complete: true,
        // Tracks, likes and playlists are always read in full; the history is what a mode
        // tells: back to the cursor's last play (incremental) or all of it.
        mode: if base.is_some() { Mode::Incremental } else { Mode::Full },
        likes: found.likes(),
        tracks: found.tracks,
        plays,
        playlists,
        skipped: found.skipped,
        unreadable,
        cursor,
    })
}

/// A 401 or 403 for the history, after the same token read the library.
fn history_refused(e: &ApiError) -> bool {
    match e {
        ApiError::Unauthorized { .. } => true,
        ApiError::Http(e) => e.status() == Some(403),
        _ => false,
    }
}

/// What the read found so far.
#[derive(Default)]
struct Found {
    tracks: Vec<Map<String, Value>>,
    /// Track ids already in `tracks`.
    seen: HashSet<String>,
    /// ratingKey → track id (the history names tracks by ratingKey).
    by_rating_key: HashMap<String, String>,
    /// (track id, likedAt), in the order met.
    liked: Vec<(String, Option<String>)>,
    liked_ids: HashSet<String>,
    skipped: u64,
}

impl Found {
    /// Keeps a track item (once per id); its id, or None (counted as skipped) without one.
    fn keep(&mut self, item: &Value) -> Option<String> {
        let Some(track) = track_of(item) else {
            self.skipped += 1;
            return None;
        };
        let id = track_id(item)?;
        if let Some(key) = key_of(&item["ratingKey"]) {
            self.by_rating_key.insert(key, id.clone());
        }
        if self.seen.insert(id.clone()) {
            self.tracks.push(track);
        }
        Some(id)
    }

    /// A track of a music section: kept, and liked when rated at or above `threshold`.
    fn section_track(&mut self, item: &Value, threshold: f64) {
        let Some(id) = self.keep(item) else { return };
        if rating_of(item).is_some_and(|r| r >= threshold) && self.liked_ids.insert(id.clone()) {
            self.liked.push((id, time_of(&item["lastRatedAt"])));
        }
    }

    /// The likes, the most recently rated first (those without `lastRatedAt` last).
    fn likes(&self) -> Vec<Map<String, Value>> {
        let mut liked = self.liked.clone();
        liked.sort_by(|a, b| match (&a.1, &b.1) {
            (Some(x), Some(y)) => {
                let (x, y) = (parse_rfc3339(x), parse_rfc3339(y));
                y.cmp(&x)
            }
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        });
        liked
            .into_iter()
            .map(|(id, at)| {
                let mut m = Map::new();
                m.insert("trackId".into(), Value::String(id));
                if let Some(at) = at {
                    m.insert("likedAt".into(), Value::String(at));
                }
                m
            })
            .collect()
    }
}

/// A read in progress.
struct Read<'a> {
    api: &'a PlexApi,
    session: &'a Session,
    creds: &'a Credentials,
    settings: &'a Settings,
    report: Reporter<ServerIdentified>,
    found: Found,
}

/// Reads every page of the listing at `path`, handing each page's items to `on_page` with the
/// count read so far and the listing's `totalSize`; `on_page` answers whether to go on.
async fn paged(
    (api, session): (&PlexApi, &Session),
    creds: &Credentials,
    path: &str,
    size: u64,
    mut on_page: impl FnMut(Vec<Value>, u64, u64) -> bool,
) -> Result<(), ApiError> {
    let mut start = 0;
    loop {
        let page = api.page(session, creds, path, start, size).await?;
        let count = page.items.len() as u64;
        start += count;
        let total = page.total.unwrap_or(start).max(start);
        let go_on = on_page(page.items, start, total);
        // Without totalSize, a short page is the last.
        let more = match page.total {
            Some(t) => start < t,
            None => count >= size,
        };
        if !go_on || count == 0 || !more {
            return Ok(());
        }
    }
}

impl Read<'_> {
    /// Every track of the music sections (those connected, or all of type `artist`).
    async fn tracks(&mut self) -> Result<(), ApiError> {
        let sections = match &self.creds.section_ids {
            Some(ids) => ids.clone(),
            None => self.api.music_sections(self.session, self.creds).await?,
        };
        let (size, threshold) = (self.settings.page_size, self.settings.like_rating);
        let (mut done_before, mut total_before) = (0, 0);
        for section in sections {
            let path = format!("/library/sections/{section}/all?type=10");
            let (found, report) = (&mut self.found, &self.report);
            let (mut done, mut total) = (0, 0);
            paged(
                (self.api, self.session),
                self.creds,
                &path,
                size,
                |items, read, listed| {
                    for item in &items {
                        found.section_track(item, threshold);
                    }
                    (done, total) = (read, listed);
                    report.progress("tracks", done_before + read, total_before + listed);
                    true
                },
            )
            .await?;
            done_before += done;
            total_before += total;
        }
        Ok(())
    }

    /// The audio playlists, each with its entries in order (one per `playlistItemID`, so a
    /// track listed twice is there twice); smart ones marked `smart: true`. A playlist whose
    /// items the server will not list (403, 404) is kept with `entries: []` and `unreadable`.
    async fn playlists(&mut self) -> Result<(Vec<Map<String, Value>>, u64), ApiError> {
        let size = self.settings.page_size;
        let mut listed = Vec::new();
        paged(
            (self.api, self.session),
            self.creds,
            "/playlists?playlistType=audio",
            size,
            |items, _, _| {
                listed.extend(items.into_iter().filter(|p| p["playlistType"] == "audio"));
                true
            },
        )
        .await?;
        let total = listed.len() as u64;
        let mut playlists = Vec::new();
        let mut unreadable = 0;
        for (n, p) in listed.iter().enumerate() {
            let (Some(id), Some(key)) = (playlist_id(p), key_of(&p["ratingKey"])) else {
                self.found.skipped += 1;
                continue;
            };
            let mut playlist = playlist_of(&id, p);
            let mut entries = Vec::new();
            let mut item_ids = HashSet::new();
            let found = &mut self.found;
            let read = paged(
                (self.api, self.session),
                self.creds,
                &format!("/playlists/{key}/items"),
                size,
                |items, _, _| {
                    for item in &items {
                        let fresh = key_of(&item["playlistItemID"]).map_or(true, |i| item_ids.insert(i));
                        if !fresh {
                            continue;
                        }
                        if let Some(id) = found.keep(item) {
                            entries.push(Value::String(id));
                        }
                    }
                    true
                },
            )
            .await;
            match read {
                Ok(()) => {
                    playlist.insert("entries".into(), Value::Array(entries));
                }
                Err(ApiError::Http(e)) if matches!(e.problem, Problem::Status { status: 403 | 404, .. }) => {
                    tracing::info!(playlist = %id, error = %e, "a Plex playlist's items could not be read: kept without entries");
                    unreadable += 1;
                    playlist.insert("entries".into(), json!([]));
                    playlist.insert("unreadable".into(), Value::Bool(true));
                }
                Err(e) => return Err(e),
            }
            if flag(&p["smart"]) {
                playlist.insert("smart".into(), Value::Bool(true));
            }
            playlists.push(playlist);
            self.report.progress("playlists", n as u64 + 1, total);
        }
        Ok((playlists, unreadable))
    }

    /// The plays in the server's history (newest first), back to `since` when given (plays at
    /// `since` itself included: another may have come in the same second); each (track,
    /// playedAt) once. A play of a track the read did not meet (a section not read, a track
    /// since deleted or given a new ratingKey) is skipped and counted. Also the newest play's
    /// time.
    async fn plays(
        &mut self,
        since: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<(Vec<Map<String, Value>>, Option<String>), ApiError> {
        let mut path = "/status/sessions/history/all?sort=viewedAt:desc".to_string();
        if let Some(account) = self.creds.account_id {
            path.push_str(&format!("&accountID={account}"));
        }
        let (found, report) = (&mut self.found, &self.report);
        let mut plays = Vec::new();
        let mut seen = HashSet::new();
        let mut newest: Option<(chrono::DateTime<chrono::Utc>, String)> = None;
        paged(
            (self.api, self.session),
            self.creds,
            &path,
            self.settings.page_size,
            |items, read, listed| {
                let mut reached = false;
                for item in &items {
                    if item["type"] != "track" {
                        continue;
                    }
                    let Some(at) = time_of(&item["viewedAt"]) else {
                        found.skipped += 1;
                        continue;
                    };
                    let when = parse_rfc3339(&at);
                    if let (Some(since), Some(when)) = (since, when) {
                        if when < since {
                            reached = true;
                            break;
                        }
                    }
                    if let Some(when) = when {
                        if newest.as_ref().map_or(true, |(n, _)| when > *n) {
                            newest = Some((when, at.clone()));
                        }
                    }
                    let track = key_of(&item["ratingKey"]).and_then(|k| found.by_rating_key.get(&k).cloned());
                    let Some(track) = track else {
                        // A play at the boundary was the last read's to count.
                        if since.is_none() || when != since {
                            found.skipped += 1;
                        }
                        continue;
                    };
                    if seen.insert((track.clone(), at.clone())) {
                        let mut m = Map::new();
                        m.insert("trackId".into(), Value::String(track));
                        m.insert("playedAt".into(), Value::String(at));
                        plays.push(m);
                    }
                }
                let total = if reached { read } else { listed };
                report.progress("plays", read, total);
                !reached
            },
        )
        .await?;
        Ok((plays, newest.map(|(_, at)| at)))
    }
}
