//! The queries: each reads projection rows (and `_getChanges` the user's own event stream),
//! never the whole log. An unknown user or playlist is a NOT_FOUND refusal, not an empty answer.

use crate::apply::{load_meta, load_playlist};
use crate::decide::user_not_found;
use crate::events::{LibraryEvent, RefreshKind};
use crate::model::*;
use crate::rows::{self, UserMeta};
use crate::validate;
use concept_core::time::{format_rfc3339, parse_rfc3339};
use concept_core::{ActionCtx, ActionError, ProjectionRead};

/// The most rows a query answers with when no `limit` is given for the paged ones.
pub const DEFAULT_PAGE: u64 = 1_000;
/// The most change records `_getChanges` answers with at once.
pub const MAX_CHANGES: u64 = 10_000;

fn meta(view: &dyn ProjectionRead, user: &str) -> Result<UserMeta, ActionError> {
    validate::id("userId", user)?;
    load_meta(view, user)?.ok_or_else(|| user_not_found(user))
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

pub fn get_liked(view: &dyn ProjectionRead, input: GetLikedInput) -> Result<GetLikedOutput, ActionError> {
    let since = validate::opt_time("since", input.since.as_deref())?;
    meta(view, &input.user_id)?;
    let list = rows::liked(&input.user_id);
    let offset = input.offset.unwrap_or(0) as usize;
    let limit = input.limit.map(|l| l as usize).unwrap_or(usize::MAX);
    let entries = match since {
        // Newest first: likes at or after `since` are a prefix of the list.
        Some(since) => {
            let mut all = list.entries(view)?;
            let cut = all.partition_point(|(k, _)| rows::time_of(k) >= since);
            all.truncate(cut);
            all.into_iter().skip(offset).take(limit).collect()
        }
        None if offset == 0 && limit == usize::MAX => list.entries(view)?,
        None => list.page(view, offset, limit)?,
    };
    Ok(GetLikedOutput {
        track_ids: entries.into_iter().map(|(_, v)| text(v)).collect(),
    })
}

pub fn get_playlist(view: &dyn ProjectionRead, input: GetPlaylistInput) -> Result<GetPlaylistOutput, ActionError> {
    validate::id("playlistId", &input.playlist_id)?;
    let shared = load_playlist(view, &input.playlist_id)?.ok_or_else(|| {
        ActionError::not_found(
            "PLAYLIST_NOT_FOUND",
            format!("no cached library holds playlist {:?}", input.playlist_id),
        )
    })?;
    Ok(GetPlaylistOutput {
        playlist_id: input.playlist_id,
        playlist: shared.playlist,
    })
}

fn summaries(view: &dyn ProjectionRead, user: &str) -> Result<Vec<PlaylistSummary>, ActionError> {
    let mut out = Vec::new();
    for (id, _) in rows::playlists(user).entries(view)? {
        let id = text(id);
        if let Some(shared) = load_playlist(view, &id)? {
            let p = shared.playlist;
            out.push(PlaylistSummary {
                id: p.id,
                name: p.name,
                owner: p.owner,
                public: p.public,
                collaborative: p.collaborative,
                snapshot_id: p.snapshot_id,
                uri: p.uri,
                track_count: p.entries.len() as u64,
            });
        }
    }
    Ok(out)
}

pub fn get_playlists(view: &dyn ProjectionRead, input: UserInput) -> Result<PlaylistsOutput, ActionError> {
    meta(view, &input.user_id)?;
    Ok(PlaylistsOutput {
        playlists: summaries(view, &input.user_id)?,
    })
}

pub fn resolve_playlist(
    view: &dyn ProjectionRead,
    input: ResolvePlaylistInput,
) -> Result<PlaylistsOutput, ActionError> {
    meta(view, &input.user_id)?;
    let wanted = input.name_or_uri.trim();
    if wanted.is_empty() {
        return Err(ActionError::invalid("EMPTY_ID", "`nameOrUri` must not be empty"));
    }
    let all = summaries(view, &input.user_id)?;
    // An exact id or uri names one playlist; otherwise every case-insensitive name match.
    let exact: Vec<PlaylistSummary> = all
        .iter()
        .filter(|p| p.id == wanted || p.uri.as_deref() == Some(wanted))
        .cloned()
        .collect();
    if !exact.is_empty() {
        return Ok(PlaylistsOutput { playlists: exact });
    }
    let lower = wanted.to_lowercase();
    Ok(PlaylistsOutput {
        playlists: all.into_iter().filter(|p| p.name.to_lowercase() == lower).collect(),
    })
}

pub fn get_tracks(view: &dyn ProjectionRead, input: GetTracksInput) -> Result<GetTracksOutput, ActionError> {
    let m = meta(view, &input.user_id)?;
    let offset = input.offset.unwrap_or(0) as usize;
    let limit = input.limit.unwrap_or(DEFAULT_PAGE) as usize;
    let mut tracks = Vec::new();
    for (id, _) in rows::tracks(&input.user_id).page(view, offset, limit)? {
        tracks.push(track_or_id(view, text(id))?);
    }
    Ok(GetTracksOutput {
        tracks,
        total: m.tracks,
    })
}

/// A track's metadata, or just `{id}` when no library has given any.
fn track_or_id(view: &dyn ProjectionRead, id: String) -> Result<Track, ActionError> {
    match view.get(&rows::track_key(&id))? {
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| ActionError::internal(e.to_string())),
        None => Ok(Track {
            id,
            title: None,
            artist: None,
            album: None,
            duration_ms: None,
            year: None,
            genres: None,
            isrc: None,
            uri: None,
            extra: Default::default(),
        }),
    }
}

/// Every user with a cached library, ordered by id.
pub fn get_users(view: &dyn ProjectionRead, _input: NoInput) -> Result<UsersOutput, ActionError> {
    let user_ids = view
        .scan_prefix(rows::META_PREFIX)?
        .into_iter()
        .map(|(key, _)| text(key[rows::META_PREFIX.len()..].to_vec()))
        .collect();
    Ok(UsersOutput { user_ids })
}

/// Liked songs with their metadata in liked order (newest first), paged like `_getLiked`.
pub fn get_liked_tracks(
    view: &dyn ProjectionRead,
    input: GetLikedTracksInput,
) -> Result<LikedTracksOutput, ActionError> {
    let m = meta(view, &input.user_id)?;
    let offset = input.offset.unwrap_or(0) as usize;
    let limit = input.limit.unwrap_or(DEFAULT_PAGE) as usize;
    let mut tracks = Vec::new();
    for (_, id) in rows::liked(&input.user_id).page(view, offset, limit)? {
        tracks.push(track_or_id(view, text(id))?);
    }
    Ok(LikedTracksOutput { tracks, total: m.likes })
}

/// A playlist's entries with their metadata, in order, paged.
pub fn get_playlist_tracks(
    view: &dyn ProjectionRead,
    input: GetPlaylistTracksInput,
) -> Result<PlaylistTracksOutput, ActionError> {
    let playlist = get_playlist(
        view,
        GetPlaylistInput {
            playlist_id: input.playlist_id,
        },
    )?;
    let offset = input.offset.unwrap_or(0) as usize;
    let limit = input.limit.unwrap_or(DEFAULT_PAGE) as usize;
    let entries = &playlist.playlist.entries;
    let mut tracks = Vec::new();
    for id in entries.iter().skip(offset).take(limit) {
        tracks.push(track_or_id(view, id.clone())?);
    }
    Ok(PlaylistTracksOutput {
        total: entries.len() as u64,
        playlist_id: playlist.playlist_id,
        name: playlist.playlist.name,
        tracks,
    })
}

pub fn get_track(view: &dyn ProjectionRead, input: GetTrackInput) -> Result<Track, ActionError> {
    validate::id("trackId", &input.track_id)?;
    let bytes = view.get(&rows::track_key(&input.track_id))?.ok_or_else(|| {
        ActionError::not_found(
            "TRACK_NOT_FOUND",
            format!("no cached library has metadata for track {:?}", input.track_id),
        )
    })?;
    serde_json::from_slice(&bytes).map_err(|e| ActionError::internal(e.to_string()))
}

pub fn get_plays(view: &dyn ProjectionRead, input: GetPlaysInput) -> Result<GetPlaysOutput, ActionError> {
    let since = validate::opt_time("since", input.since.as_deref())?;
    let until = validate::opt_time("until", input.until.as_deref())?;
    meta(view, &input.user_id)?;
    let limit = input.limit.unwrap_or(DEFAULT_PAGE) as usize;
    let map = rows::plays(&input.user_id);
    // Newest first: start at `until` (exclusive) and stop before `since`.
    let entries = match until {
        Some(until) => {
            let from = rows::newest_first(&(until - chrono::Duration::microseconds(1)));
            map.range_from(view, &from, limit)?
        }
        None => map.page(view, 0, limit)?,
    };
    let mut plays = Vec::new();
    for (key, _) in entries {
        let at = rows::time_of(&key);
        if since.is_some_and(|s| at < s) {
            break;
        }
        plays.push(Play {
            track_id: text(key[8..].to_vec()),
            played_at: format_rfc3339(&at),
        });
    }
    Ok(GetPlaysOutput { plays })
}

fn is_stale(m: &UserMeta, ctx: &ActionCtx, max_age: chrono::Duration) -> bool {
    parse_rfc3339(&m.synced_at).is_none_or(|t| ctx.now - t > max_age)
}

pub fn get_status(
    ctx: &ActionCtx,
    view: &dyn ProjectionRead,
    input: GetStatusInput,
) -> Result<StatusOutput, ActionError> {
    let max_age = match &input.max_age {
        Some(a) => validate::max_age("maxAge", a)?,
        None => chrono::Duration::hours(24),
    };
    let m = meta(view, &input.user_id)?;
    Ok(StatusOutput {
        user_id: input.user_id.clone(),
        tracks: m.tracks,
        likes: m.likes,
        plays: m.plays,
        playlists: m.playlists,
        stale: is_stale(&m, ctx, max_age),
        ingested_at: m.ingested_at,
        synced_at: m.synced_at,
        version: view.stream_version(&input.user_id)?,
    })
}

pub fn stale_users(
    ctx: &ActionCtx,
    view: &dyn ProjectionRead,
    input: StaleUsersInput,
) -> Result<StaleUsersOutput, ActionError> {
    let max_age = validate::max_age("maxAge", &input.max_age)?;
    let mut user_ids = Vec::new();
    for (key, value) in view.scan_prefix(rows::META_PREFIX)? {
        let m: UserMeta = serde_json::from_slice(&value).map_err(|e| ActionError::internal(e.to_string()))?;
        if is_stale(&m, ctx, max_age) {
            user_ids.push(text(key[rows::META_PREFIX.len()..].to_vec()));
        }
    }
    Ok(StaleUsersOutput { user_ids })
}

/// The library's history from its event stream, oldest first. Each change carries the version
/// and time of the action that made it. A page ends at an event boundary once `limit` changes
/// are collected (so it may run over by up to one event's facts, and may end inside an action);
/// `nextSinceVersion` continues it.
pub fn get_changes(view: &dyn ProjectionRead, input: GetChangesInput) -> Result<ChangesOutput, ActionError> {
    meta(view, &input.user_id)?;
    let limit = input.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_CHANGES) as usize;
    let version = view.stream_version(&input.user_id)?;
    let mut changes: Vec<Change> = Vec::new();
    let mut after = input.since_version.unwrap_or(0);
    // Changes of the action being read, waiting for its last event (whose version is the action's).
    let mut action: Option<(u64, Vec<Change>)> = None;
    let mut full = false;
    while !full {
        let events = view.stream_events(&input.user_id, after, 256)?;
        if events.is_empty() {
            break;
        }
        for (meta, data) in events {
            if action.as_ref().is_some_and(|(id, _)| *id != meta.action) {
                if let Some((_, done)) = action.take() {
                    changes.extend(done);
                }
            }
            if changes.len() + action.as_ref().map_or(0, |(_, c)| c.len()) >= limit {
                full = true;
                break;
            }
            after = meta.version;
            let event: LibraryEvent =
                serde_json::from_slice(&data).map_err(|e| ActionError::internal(e.to_string()))?;
            let at = format_rfc3339(&meta.at);
            let (_, pending) = action.get_or_insert_with(|| (meta.action, Vec::new()));
            for c in pending.iter_mut() {
                c.version = meta.version;
            }
            pending.extend(changes_of(event, meta.version, &at));
        }
    }
    if let Some((id, mut pending)) = action {
        // An action cut by the page: read on to its last event for the version it left.
        let final_version = action_end(view, &input.user_id, id, after)?;
        for c in pending.iter_mut() {
            c.version = final_version;
        }
        changes.extend(pending);
    }
    Ok(ChangesOutput {
        changes,
        version,
        next_since_version: after,
        more: after < version,
    })
}

/// The version of the last event of `action`, reading the stream on from `after`.
fn action_end(view: &dyn ProjectionRead, user: &str, action: u64, mut after: u64) -> Result<u64, ActionError> {
    loop {
        let events = view.stream_events(user, after, 256)?;
        if events.is_empty() {
            return Ok(after);
        }
        for (meta, _) in events {
            if meta.action != action {
                return Ok(after);
            }
            after = meta.version;
        }
    }
}

/// What one event changed, each change stamped with `version` and the action's time `at`.
fn changes_of(event: LibraryEvent, version: u64, at: &str) -> Vec<Change> {
    let change = |kind: &str| Change {
        version,
        at: at.to_string(),
        kind: kind.to_string(),
        track_id: None,
        playlist_id: None,
        time: None,
    };
    let track = |kind: &str, id: String, time: Option<String>| Change {
        track_id: Some(id),
        time,
        ..change(kind)
    };
    let playlist = |kind: &str, id: String| Change {
        playlist_id: Some(id),
        ..change(kind)
    };
    match event {
        LibraryEvent::Ingested {} => vec![change("ingested")],
        LibraryEvent::Cleared {} => vec![change("cleared")],
        LibraryEvent::Refreshed { kind } => match kind {
            RefreshKind::Ingest => vec![],
            RefreshKind::Sync => vec![change("synced")],
            RefreshKind::Merge => vec![change("merged")],
        },
        LibraryEvent::TracksSaved { .. } | LibraryEvent::PlaylistsSaved { .. } => vec![],
        LibraryEvent::TracksAdded { tracks } => tracks.into_iter().map(|t| track("trackAdded", t.id, None)).collect(),
        LibraryEvent::TracksUpdated { tracks } => {
            tracks.into_iter().map(|t| track("trackChanged", t.id, None)).collect()
        }
        LibraryEvent::TracksRemoved { track_ids } => track_ids
            .into_iter()
            .map(|id| track("trackRemoved", id, None))
            .collect(),
        LibraryEvent::Liked { likes } => likes
            .into_iter()
            .map(|l| track("liked", l.track_id, Some(l.liked_at)))
            .collect(),
        LibraryEvent::Unliked { track_ids } => track_ids.into_iter().map(|id| track("unliked", id, None)).collect(),
        LibraryEvent::PlaysAdded { plays } => plays
            .into_iter()
            .map(|p| track("playAdded", p.track_id, Some(p.played_at)))
            .collect(),
        LibraryEvent::PlaylistsAdded { playlists } => {
            playlists.into_iter().map(|p| playlist("playlistAdded", p.id)).collect()
        }
        LibraryEvent::PlaylistsUpdated { playlists } => playlists
            .into_iter()
            .map(|p| playlist("playlistChanged", p.id))
            .collect(),
        LibraryEvent::PlaylistsRemoved { playlist_ids } => playlist_ids
            .into_iter()
            .map(|id| playlist("playlistRemoved", id))
            .collect(),
    }
}

/// The user's likes with their `likedAt`, newest first, paged (`_getLiked` gives ids only).
pub fn get_likes(view: &dyn ProjectionRead, input: GetTracksInput) -> Result<GetLikesOutput, ActionError> {
    let m = meta(view, &input.user_id)?;
    let offset = input.offset.unwrap_or(0) as usize;
    let limit = input.limit.unwrap_or(DEFAULT_PAGE) as usize;
    let likes = rows::liked(&input.user_id)
        .page(view, offset, limit)?
        .into_iter()
        .map(|(key, id)| Like {
            track_id: text(id),
            liked_at: Some(format_rfc3339(&rows::time_of(&key))),
        })
        .collect();
    Ok(GetLikesOutput { likes, total: m.likes })
}
