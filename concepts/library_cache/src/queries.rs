//! The queries: each reads projection rows (and `_getChanges` the user's own event stream),
//! never the whole log. An unknown user or playlist is a NOT_FOUND refusal, not an empty answer.
//!
//! The large answers — liked songs, tracks with their metadata, a playlist — are written
//! straight to JSON text from the chunks as stored (ids are stored JSON-escaped and metadata as
//! JSON), with no value built per entry: `_getLiked` of 25,000 songs is a copy of its chunks.

use crate::decide::user_not_found;
use crate::events::{LibraryEvent, RefreshKind};
use crate::model::*;
use crate::rows::{self, UserMeta};
use crate::validate;
use concept_core::chunked::Chunk;
use concept_core::time::{format_rfc3339, parse_rfc3339};
use concept_core::{ActionCtx, ActionError, Bytes, ProjectionRead};

/// The most rows a query answers with when no `limit` is given for the paged ones.
pub const DEFAULT_PAGE: u64 = 1_000;
/// The most change records `_getChanges` answers with at once.
pub const MAX_CHANGES: u64 = 10_000;

fn meta(view: &dyn ProjectionRead, user: &str) -> Result<UserMeta, ActionError> {
    validate::id("userId", user)?;
    rows::load_meta(view, user)?.ok_or_else(|| user_not_found(user))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A typed answer as JSON text, serialised directly (the engine need not build a value of it).
pub fn to_json<T: serde::Serialize>(answer: &T) -> Result<Bytes, ActionError> {
    serde_json::to_vec(answer)
        .map(Bytes::from)
        .map_err(|e| ActionError::internal(format!("could not write an answer: {e}")))
}

/// JSON text being written: an answer built from stored pieces.
struct Json(Vec<u8>);

impl Json {
    fn with_capacity(n: usize) -> Self {
        Json(Vec::with_capacity(n))
    }

    fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.extend_from_slice(bytes);
        self
    }

    /// A string whose text is already JSON-escaped.
    fn escaped_str(&mut self, escaped: &[u8]) -> &mut Self {
        self.0.push(b'"');
        self.0.extend_from_slice(escaped);
        self.0.push(b'"');
        self
    }

    fn str(&mut self, s: &str) -> &mut Self {
        self.escaped_str(&rows::json_escaped(s))
    }

    /// A string given as bytes (an id as stored): written as it is when it is ASCII with
    /// nothing to escape.
    fn id_str(&mut self, raw: &[u8]) -> &mut Self {
        if raw
            .iter()
            .all(|&b| (0x20..0x80).contains(&b) && b != b'"' && b != b'\\')
        {
            self.escaped_str(raw)
        } else {
            self.str(&String::from_utf8_lossy(raw))
        }
    }

    /// A separator before the next item of an array or object, unless it is the first.
    fn comma(&mut self, first: &mut bool) -> &mut Self {
        if !std::mem::take(first) {
            self.0.push(b',');
        }
        self
    }

    fn done(self) -> Bytes {
        Bytes::from(self.0)
    }
}

/// `_getLiked`: the liked track ids, newest first, copied from the liked list's chunks. Paged
/// (`limit` or `cursor` given), it answers a cursor too: [`liked_page`].
pub fn get_liked(view: &dyn ProjectionRead, input: GetLikedInput) -> Result<Bytes, ActionError> {
    if input.limit.is_some() || input.cursor.is_some() {
        return liked_page(view, input);
    }
    let since = validate::opt_time("since", input.since.as_deref())?;
    meta(view, &input.user_id)?;
    let list = rows::liked(&input.user_id);
    let offset = input.offset.unwrap_or(0) as usize;
    let limit = input.limit.map(|l| l as usize).unwrap_or(usize::MAX);
    let chunks = list.chunks(view)?;
    let size: usize = chunks.iter().map(|c| c.len()).sum();
    let mut out = Json::with_capacity(size + 16);
    out.raw(b"{\"trackIds\":[");
    let mut first = true;
    let (mut skipped, mut taken) = (0usize, 0usize);
    'chunks: for bytes in &chunks {
        let chunk = Chunk::parse(bytes)?;
        if since.is_none() && skipped + chunk.len() <= offset {
            skipped += chunk.len();
            continue;
        }
        for (key, id) in chunk.iter() {
            // Newest first: likes at or after `since` are a prefix of the list.
            if since.is_some_and(|s| rows::time_of(key) < s) || taken >= limit {
                break 'chunks;
            }
            if skipped < offset {
                skipped += 1;
                continue;
            }
            out.comma(&mut first).escaped_str(id);
            taken += 1;
        }
    }
    out.raw(b"]}");
    Ok(out.done())
}

/// `_getPlaylist`: the playlist's JSON as stored, after the id asked for.
pub fn get_playlist(view: &dyn ProjectionRead, input: GetPlaylistInput) -> Result<Bytes, ActionError> {
    validate::id("playlistId", &input.playlist_id)?;
    let stored = playlist_json(view, &input.playlist_id)?;
    let mut out = Json::with_capacity(stored.len() + input.playlist_id.len() + 20);
    out.raw(b"{\"playlistId\":").str(&input.playlist_id);
    // The stored playlist is a JSON object: its fields follow.
    let body = stored.strip_prefix(b"{").unwrap_or(&stored);
    if body.first() != Some(&b'}') {
        out.raw(b",");
    }
    out.raw(body);
    Ok(out.done())
}

fn playlist_json(view: &dyn ProjectionRead, id: &str) -> Result<Bytes, ActionError> {
    rows::shared_playlists()
        .get(view, id.as_bytes())?
        .ok_or_else(|| ActionError::not_found("PLAYLIST_NOT_FOUND", format!("no cached library holds playlist {id:?}")))
}

fn load_playlist(view: &dyn ProjectionRead, id: &str) -> Result<Option<Playlist>, ActionError> {
    match rows::shared_playlists().get(view, id.as_bytes())? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| ActionError::internal(format!("a stored playlist does not decode: {e}"))),
        None => Ok(None),
    }
}

/// A stored playlist read as its summary: its entries are counted, not kept.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredSummary {
    id: String,
    name: String,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    public: Option<bool>,
    #[serde(default)]
    collaborative: Option<bool>,
    #[serde(default)]
    snapshot_id: Option<String>,
    #[serde(default)]
    uri: Option<String>,
    entries: Vec<serde::de::IgnoredAny>,
}

/// The summaries of the stored playlists `ids` (in that order; ids with no stored playlist are
/// left out).
fn summaries_of(view: &dyn ProjectionRead, ids: &[&[u8]]) -> Result<Vec<PlaylistSummary>, ActionError> {
    let mut out = Vec::with_capacity(ids.len());
    for bytes in rows::shared_playlists().get_many(view, ids)?.into_iter().flatten() {
        let p: StoredSummary = serde_json::from_slice(&bytes)
            .map_err(|e| ActionError::internal(format!("a stored playlist does not decode: {e}")))?;
        out.push(PlaylistSummary {
            track_count: p.entries.len() as u64,
            id: p.id,
            name: p.name,
            owner: p.owner,
            public: p.public,
            collaborative: p.collaborative,
            snapshot_id: p.snapshot_id,
            uri: p.uri,
        });
    }
    Ok(out)
}

fn summaries(view: &dyn ProjectionRead, user: &str) -> Result<Vec<PlaylistSummary>, ActionError> {
    let entries = rows::playlists(user).entries(view)?;
    let ids: Vec<&[u8]> = entries.iter().map(|(id, _)| id.as_slice()).collect();
    summaries_of(view, &ids)
}

pub fn get_playlists(view: &dyn ProjectionRead, input: UserInput) -> Result<PlaylistsOutput, ActionError> {
    meta(view, &input.user_id)?;
    Ok(PlaylistsOutput {
        playlists: summaries(view, &input.user_id)?,
    })
}

/// The ids of the user's playlists under `prefix` in the name index, in id order.
fn indexed(view: &dyn ProjectionRead, user: &str, prefix: &[u8]) -> Result<Vec<Vec<u8>>, ActionError> {
    const STEP: usize = 64;
    let map = rows::playlist_names(user);
    let mut ids = Vec::new();
    let mut from = prefix.to_vec();
    loop {
        let found = map.range_from(view, &from, STEP)?;
        for (key, _) in &found {
            match key.strip_prefix(prefix) {
                Some(id) => ids.push(id.to_vec()),
                None => return Ok(ids),
            }
        }
        match found.last() {
            Some((last, _)) if found.len() == STEP => from = cursor::successor(last.clone()),
            _ => return Ok(ids),
        }
    }
}

/// `_resolvePlaylist`: the playlist whose id or uri is `nameOrUri`, else every playlist of that
/// name (case-insensitive), in id order. It reads the user's name index and the playlists it
/// names, not every playlist (a library ingested before the index reads them all).
pub fn resolve_playlist(
    view: &dyn ProjectionRead,
    input: ResolvePlaylistInput,
) -> Result<PlaylistsOutput, ActionError> {
    let m = meta(view, &input.user_id)?;
    let wanted = input.name_or_uri.trim();
    if wanted.is_empty() {
        return Err(ActionError::invalid("EMPTY_ID", "`nameOrUri` must not be empty"));
    }
    if !m.playlist_index {
        return resolve_by_reading_all(view, &input.user_id, wanted);
    }
    let user = &input.user_id;
    let mut exact = indexed(view, user, &rows::name_prefix(rows::BY_URI, wanted))?;
    if rows::playlists(user).get(view, wanted.as_bytes())?.is_some() {
        exact.push(wanted.as_bytes().to_vec());
        exact.sort_unstable();
        exact.dedup();
    }
    let ids = if exact.is_empty() {
        indexed(view, user, &rows::name_prefix(rows::BY_NAME, &wanted.to_lowercase()))?
    } else {
        exact
    };
    let keys: Vec<&[u8]> = ids.iter().map(Vec::as_slice).collect();
    Ok(PlaylistsOutput {
        playlists: summaries_of(view, &keys)?,
    })
}

/// `_resolvePlaylist` for a library without the name index: every playlist is read.
fn resolve_by_reading_all(view: &dyn ProjectionRead, user: &str, wanted: &str) -> Result<PlaylistsOutput, ActionError> {
    let all = summaries(view, user)?;
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

/// Writes `{"tracks":[...],"total":n}` (plus `extra` fields first) for track ids, each as its
/// stored metadata or `{"id": id}` when no library gave any.
fn tracks_json(view: &dyn ProjectionRead, ids: &[Vec<u8>], total: u64, extra: &[u8]) -> Result<Bytes, ActionError> {
    let keys: Vec<&[u8]> = ids.iter().map(Vec::as_slice).collect();
    let found = rows::shared_tracks().get_many(view, &keys)?;
    let size: usize = found.iter().map(|f| f.as_ref().map_or(40, |b| b.len() + 1)).sum();
    let mut out = Json::with_capacity(size + extra.len() + 40);
    out.raw(b"{").raw(extra).raw(b"\"tracks\":[");
    let mut first = true;
    for (id, track) in ids.iter().zip(found) {
        out.comma(&mut first);
        match track {
            Some(json) => out.raw(&json),
            None => out.raw(b"{\"id\":").str(&String::from_utf8_lossy(id)).raw(b"}"),
        };
    }
    out.raw(format!("],\"total\":{total}}}").as_bytes());
    Ok(out.done())
}

pub fn get_tracks(view: &dyn ProjectionRead, input: GetTracksInput) -> Result<Bytes, ActionError> {
    let m = meta(view, &input.user_id)?;
    let offset = input.offset.unwrap_or(0) as usize;
    let limit = input.limit.unwrap_or(DEFAULT_PAGE) as usize;
    let mut ids = Vec::new();
    rows::tracks(&input.user_id).page(view, offset, limit, |id, _| {
        ids.push(id.to_vec());
        Ok(())
    })?;
    tracks_json(view, &ids, m.tracks, b"")
}

/// Every user with a cached library, ordered by id.
pub fn get_users(view: &dyn ProjectionRead, _input: NoInput) -> Result<UsersOutput, ActionError> {
    let user_ids = view
        .scan_prefix(rows::META_PREFIX)?
        .into_iter()
        .map(|(key, _)| text(&key[rows::META_PREFIX.len()..]))
        .collect();
    Ok(UsersOutput { user_ids })
}

/// Liked songs with their metadata in liked order (newest first), paged like `_getLiked`.
pub fn get_liked_tracks(view: &dyn ProjectionRead, input: GetLikedTracksInput) -> Result<Bytes, ActionError> {
    let m = meta(view, &input.user_id)?;
    let offset = input.offset.unwrap_or(0) as usize;
    let limit = input.limit.unwrap_or(DEFAULT_PAGE) as usize;
    let mut ids = Vec::new();
    rows::liked(&input.user_id).page(view, offset, limit, |_, id| {
        ids.push(rows::json_unescaped(id).into_bytes());
        Ok(())
    })?;
    tracks_json(view, &ids, m.likes, b"")
}

/// A playlist's entries with their metadata, in order, paged.
pub fn get_playlist_tracks(view: &dyn ProjectionRead, input: GetPlaylistTracksInput) -> Result<Bytes, ActionError> {
    validate::id("playlistId", &input.playlist_id)?;
    let playlist = load_playlist(view, &input.playlist_id)?.ok_or_else(|| {
        ActionError::not_found(
            "PLAYLIST_NOT_FOUND",
            format!("no cached library holds playlist {:?}", input.playlist_id),
        )
    })?;
    let offset = input.offset.unwrap_or(0) as usize;
    let limit = input.limit.unwrap_or(DEFAULT_PAGE) as usize;
    let ids: Vec<Vec<u8>> = playlist
        .entries
        .iter()
        .skip(offset)
        .take(limit)
        .map(|id| id.clone().into_bytes())
        .collect();
    let mut head = Json::with_capacity(64);
    head.raw(b"\"playlistId\":")
        .str(&input.playlist_id)
        .raw(b",\"name\":")
        .str(&playlist.name)
        .raw(b",");
    tracks_json(view, &ids, playlist.entries.len() as u64, &head.0)
}

pub fn get_track(view: &dyn ProjectionRead, input: GetTrackInput) -> Result<Bytes, ActionError> {
    validate::id("trackId", &input.track_id)?;
    rows::shared_tracks()
        .get(view, input.track_id.as_bytes())?
        .ok_or_else(|| {
            ActionError::not_found(
                "TRACK_NOT_FOUND",
                format!("no cached library has metadata for track {:?}", input.track_id),
            )
        })
}

/// `_getPlays`: a page of plays, newest first, written straight to JSON text from the keys of
/// the plays map (a play's key is its time and its track id).
pub fn get_plays(view: &dyn ProjectionRead, input: GetPlaysInput) -> Result<Bytes, ActionError> {
    let since = validate::opt_time("since", input.since.as_deref())?;
    let until = validate::opt_time("until", input.until.as_deref())?;
    let after = input
        .cursor
        .as_deref()
        .map(|c| cursor::decode(cursor::PLAYS, c))
        .transpose()?;
    meta(view, &input.user_id)?;
    let limit = input.limit.unwrap_or(DEFAULT_PAGE) as usize;
    let map = rows::plays(&input.user_id);
    // Newest first (a play's key is its time, then its track): start at `until` (exclusive)
    // or right after the cursor's play, whichever comes later, and stop before `since`. One
    // entry more than the page tells whether another page follows.
    let from = [
        until.map(|u| rows::newest_first(&(u - chrono::Duration::microseconds(1))).to_vec()),
        after.map(cursor::successor),
    ]
    .into_iter()
    .flatten()
    .max();
    let take = limit.saturating_add(1);
    let keys: Vec<Vec<u8>> = match from {
        Some(from) => map.range_from(view, &from, take)?.into_iter().map(|(k, _)| k).collect(),
        None => {
            let mut page = Vec::new();
            map.page(view, 0, take, |k, _| {
                page.push(k.to_vec());
                Ok(())
            })?;
            page
        }
    };
    let mut out = Json::with_capacity(keys.len().min(limit) * 72 + 64);
    out.raw(b"{\"plays\":[");
    let mut first = true;
    let mut last: Option<(String, &[u8])> = None;
    let mut more = false;
    for (written, key) in keys.iter().enumerate() {
        let at = rows::time_of(key);
        if since.is_some_and(|s| at < s) {
            break;
        }
        if written == limit {
            more = limit > 0;
            break;
        }
        let played_at = format_rfc3339(&at);
        let track = key.get(8..).unwrap_or_default();
        out.comma(&mut first).raw(b"{\"trackId\":").id_str(track);
        out.raw(b",\"playedAt\":").id_str(played_at.as_bytes()).raw(b"}");
        last = Some((played_at, track));
    }
    out.raw(b"]");
    if more {
        // The cursor names the last play as its answer says it (its time as written).
        let place = last
            .and_then(|(at, track)| parse_rfc3339(&at).map(|at| rows::play_key(&at, &text(track))))
            .unwrap_or_default();
        out.raw(b",\"nextCursor\":").str(&cursor::encode(cursor::PLAYS, &place));
    }
    out.raw(b"}");
    Ok(out.done())
}

/// Opaque paging cursors: a query's kind and a place in its order, as hex. A place is a key of
/// the list the query reads (a play's time and track, a like's time and order), or for
/// `_getChanges` an event's version and how many of its changes were answered — places that
/// entries added or removed meanwhile do not move.
mod cursor {
    use concept_core::ActionError;

    pub const PLAYS: char = 'p';
    pub const LIKES: char = 'l';
    pub const CHANGES: char = 'c';

    pub fn encode(kind: char, place: &[u8]) -> String {
        let mut out = String::with_capacity(1 + place.len() * 2);
        out.push(kind);
        for b in place {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }

    /// The place a cursor of `kind` names; refused with `INVALID_CURSOR` otherwise.
    pub fn decode(kind: char, cursor: &str) -> Result<Vec<u8>, ActionError> {
        let invalid = || {
            ActionError::invalid(
                "INVALID_CURSOR",
                format!("`cursor` {cursor:?} is not a nextCursor this query answered"),
            )
        };
        let hex = cursor.strip_prefix(kind).ok_or_else(invalid)?;
        if hex.len() % 2 != 0 || hex.len() < 16 {
            return Err(invalid());
        }
        (0..hex.len())
            .step_by(2)
            .map(|i| hex.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(invalid)
    }

    /// The first key after `key` (a key and then a zero byte: nothing sorts between them).
    pub fn successor(mut key: Vec<u8>) -> Vec<u8> {
        key.push(0);
        key
    }
}

/// `_getLiked` paged: a page of `limit` liked ids (all after `offset`, or after the cursor's
/// like) and, when more follow, the cursor of its last like.
fn liked_page(view: &dyn ProjectionRead, input: GetLikedInput) -> Result<Bytes, ActionError> {
    let since = validate::opt_time("since", input.since.as_deref())?;
    let after = input
        .cursor
        .as_deref()
        .map(|c| cursor::decode(cursor::LIKES, c))
        .transpose()?;
    if after.is_some() && input.offset.is_some() {
        return Err(ActionError::invalid(
            "INVALID_INPUT",
            "give `offset` or `cursor`, not both: a cursor already names where the page starts",
        ));
    }
    meta(view, &input.user_id)?;
    let limit = input.limit.unwrap_or(DEFAULT_PAGE) as usize;
    let list = rows::liked(&input.user_id);
    let take = limit.saturating_add(1);
    let entries = match after {
        Some(after) => list.range_from(view, &cursor::successor(after), take)?,
        None => {
            let mut page = Vec::new();
            list.page(view, input.offset.unwrap_or(0) as usize, take, |k, v| {
                page.push((k.to_vec(), v.to_vec()));
                Ok(())
            })?;
            page
        }
    };
    let mut out = GetLikedOutput {
        track_ids: Vec::new(),
        next_cursor: None,
    };
    let mut last: &[u8] = &[];
    for (key, id) in &entries {
        // Newest first: likes at or after `since` are a prefix of the list.
        if since.is_some_and(|s| rows::time_of(key) < s) {
            break;
        }
        if out.track_ids.len() == limit {
            out.next_cursor = (limit > 0).then(|| cursor::encode(cursor::LIKES, last));
            break;
        }
        out.track_ids.push(rows::json_unescaped(id));
        last = key;
    }
    serde_json::to_vec(&out)
        .map(Bytes::from)
        .map_err(|e| ActionError::internal(format!("could not write an answer: {e}")))
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
            user_ids.push(text(&key[rows::META_PREFIX.len()..]));
        }
    }
    Ok(StaleUsersOutput { user_ids })
}

/// The library's history from its event stream, oldest first. Each change carries the version
/// and time of the action that made it. A page ends at an event boundary once `limit` changes
/// are collected (so it may run over by up to one event's facts, and may end inside an action);
/// `nextSinceVersion` continues it.
pub fn get_changes(view: &dyn ProjectionRead, input: GetChangesInput) -> Result<ChangesOutput, ActionError> {
    if let Some(c) = input.cursor.as_deref() {
        let place = cursor::decode(cursor::CHANGES, c)?;
        meta(view, &input.user_id)?;
        return changes_page(view, &input, &place);
    }
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
            let at = format_rfc3339(&meta.at);
            let (_, pending) = action.get_or_insert_with(|| (meta.action, Vec::new()));
            for c in pending.iter_mut() {
                c.version = meta.version;
            }
            pending.extend(changes_in(&meta.kind, &data, meta.version, &at)?);
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
        next_cursor: (after < version).then(|| changes_cursor(after + 1, 0)),
    })
}

/// A `_getChanges` cursor: the changes go on at change `skip` of the event at `version`.
fn changes_cursor(version: u64, skip: u64) -> String {
    let mut place = version.to_be_bytes().to_vec();
    place.extend_from_slice(&skip.to_be_bytes());
    cursor::encode(cursor::CHANGES, &place)
}

/// One change as read, before its version (its action's last event's) is known.
struct Read {
    change: Change,
    action: u64,
}

/// `_getChanges` from a cursor: exactly `limit` changes (fewer at the end) from the place the
/// cursor names, each labelled with the version its action left, and the cursor of the next.
fn changes_page(
    view: &dyn ProjectionRead,
    input: &GetChangesInput,
    place: &[u8],
) -> Result<ChangesOutput, ActionError> {
    let number = |bytes: Option<&[u8]>| {
        bytes
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| ActionError::invalid("INVALID_CURSOR", "`cursor` is not a nextCursor _getChanges answered"))
    };
    let (start, mut skip) = (number(place.get(..8))?, number(place.get(8..16))?);
    let limit = input.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_CHANGES) as usize;
    let user = &input.user_id;
    let version = view.stream_version(user)?;
    let mut read: Vec<Read> = Vec::new();
    let mut next: Option<(u64, u64)> = None;
    // The last event read, and the last event read of each action.
    let mut at = start.saturating_sub(1);
    let mut ends: std::collections::HashMap<u64, u64> = std::collections::HashMap::new();
    let mut last_action = None;
    'events: loop {
        let events = view.stream_events(user, at, 256)?;
        if events.is_empty() {
            break;
        }
        for (meta, data) in events {
            at = meta.version;
            last_action = Some(meta.action);
            ends.insert(meta.action, meta.version);
            let time = format_rfc3339(&meta.at);
            let changes = changes_in(&meta.kind, &data, meta.version, &time)?;
            let from = if meta.version == start { skip } else { 0 };
            skip = 0;
            for (i, change) in changes.into_iter().enumerate().skip(from as usize) {
                if read.len() == limit {
                    next = Some((meta.version, i as u64));
                    break 'events;
                }
                read.push(Read {
                    change,
                    action: meta.action,
                });
            }
        }
    }
    // Each change carries the version its action left, its last event's: the action read last
    // may go on past the events read.
    if let Some(last) = last_action {
        ends.insert(last, action_end(view, user, last, at)?);
    }
    let changes: Vec<Change> = read
        .into_iter()
        .map(|r| Change {
            version: ends.get(&r.action).copied().unwrap_or(r.change.version),
            ..r.change
        })
        .collect();
    let next_since_version = match next {
        Some((v, _)) => v - 1,
        None => at.max(start.saturating_sub(1)),
    };
    Ok(ChangesOutput {
        changes,
        version,
        next_since_version,
        more: next.is_some(),
        next_cursor: next.map(|(v, skip)| changes_cursor(v, skip)),
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

/// Kinds of events that change nothing a `_getChanges` lists (shared content, renewed hashes):
/// they are the largest events of the log and are not decoded.
const SILENT: &[&str] = &["TracksSaved", "PlaylistsSaved", "Rehashed"];

/// What the stored event `data` of kind `kind` changed (see [`changes_of`]).
fn changes_in(kind: &str, data: &[u8], version: u64, at: &str) -> Result<Vec<Change>, ActionError> {
    if SILENT.contains(&kind) {
        return Ok(Vec::new());
    }
    let event: LibraryEvent = serde_json::from_slice(data).map_err(|e| ActionError::internal(e.to_string()))?;
    Ok(changes_of(event, version, at))
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
        LibraryEvent::Ingested { .. } => vec![change("ingested")],
        LibraryEvent::Cleared {} => vec![change("cleared")],
        LibraryEvent::Refreshed { kind } => match kind {
            RefreshKind::Ingest => vec![],
            RefreshKind::Sync => vec![change("synced")],
            RefreshKind::Merge => vec![change("merged")],
            RefreshKind::Touch => vec![change("touched")],
            RefreshKind::Rekey => vec![change("rekeyed")],
        },
        LibraryEvent::TracksSaved { .. } | LibraryEvent::PlaylistsSaved { .. } | LibraryEvent::Rehashed { .. } => {
            vec![]
        }
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
        LibraryEvent::PlaysRemoved { plays } => plays
            .into_iter()
            .map(|p| track("playRemoved", p.track_id, Some(p.played_at)))
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
    let mut likes = Vec::new();
    rows::liked(&input.user_id).page(view, offset, limit, |key, id| {
        likes.push(Like {
            track_id: rows::json_unescaped(id),
            liked_at: Some(format_rfc3339(&rows::time_of(key))),
        });
        Ok(())
    })?;
    Ok(GetLikesOutput { likes, total: m.likes })
}

#[cfg(test)]
mod tests {
    //! `_resolvePlaylist` through the name index, after renames by another holder and removals,
    //! and the same answers for a library ingested before the index (read by the full scan).
    use super::*;
    use crate::apply::apply;
    use crate::events::PlaylistRef;
    use concept_core::memory::Memory;
    use concept_core::{EventMeta, ProjectionTxn};
    use std::sync::Arc;

    /// What the tests do with the in-memory key space (`concept_core::memory::Memory`): apply an
    /// event as its own commit, and resolve a playlist name.
    trait Library {
        fn apply_one(&mut self, user: &str, event: LibraryEvent);
        fn resolve(&self, user: &str, wanted: &str) -> Vec<String>;
    }

    impl Library for Memory {
        /// Applies one event of `user` as its own commit.
        fn apply_one(&mut self, user: &str, event: LibraryEvent) {
            let meta = EventMeta {
                seq: 1,
                stream: user.to_string(),
                version: 1,
                kind: String::new(),
                action: 1,
                // A fixed time: no test reads the wall clock.
                at: chrono::DateTime::from_timestamp(1_767_225_600, 0).expect("a time"),
            };
            apply(&meta, &event, self).expect("apply");
            self.commit().expect("commit");
        }

        fn resolve(&self, user: &str, wanted: &str) -> Vec<String> {
            let input = ResolvePlaylistInput {
                user_id: user.to_string(),
                name_or_uri: wanted.to_string(),
            };
            let out = resolve_playlist(self, input).expect("resolve");
            out.playlists.into_iter().map(|p| p.id).collect()
        }
    }

    fn playlist(id: &str, name: &str, uri: Option<&str>) -> Arc<Playlist> {
        Arc::new(Playlist {
            id: id.to_string(),
            name: name.to_string(),
            owner: None,
            public: None,
            collaborative: None,
            snapshot_id: None,
            uri: uri.map(str::to_string),
            entries: vec!["t:1".to_string()],
            extra: Default::default(),
        })
    }

    fn refs(ids: &[&str]) -> Vec<PlaylistRef> {
        ids.iter()
            .map(|id| PlaylistRef {
                id: id.to_string(),
                hash: 1,
                snapshot_id: None,
            })
            .collect()
    }

    #[test]
    fn resolve_reads_the_name_index_and_answers_as_the_full_scan_does() {
        let mut m = Memory::default();
        for user in ["u1", "u2"] {
            m.apply_one(user, LibraryEvent::Ingested { hash_version: 2 });
        }
        m.apply_one(
            "u1",
            LibraryEvent::PlaylistsSaved {
                playlists: vec![
                    playlist("pl:a", "Mix", Some("sp:a")),
                    playlist("pl:b", "mix", None),
                    playlist("pl:c", "Other", None),
                ],
            },
        );
        m.apply_one(
            "u1",
            LibraryEvent::PlaylistsAdded {
                playlists: refs(&["pl:a", "pl:b", "pl:c"]),
            },
        );
        m.apply_one(
            "u2",
            LibraryEvent::PlaylistsAdded {
                playlists: refs(&["pl:a"]),
            },
        );
        assert_eq!(m.resolve("u1", " MIX "), ["pl:a", "pl:b"]);
        assert_eq!(m.resolve("u2", "mix"), ["pl:a"]);
        // Another holder's sync renames the shared playlist and moves its uri.
        m.apply_one(
            "u2",
            LibraryEvent::PlaylistsSaved {
                playlists: vec![playlist("pl:a", "Road", Some("sp:a2"))],
            },
        );
        m.apply_one(
            "u2",
            LibraryEvent::PlaylistsUpdated {
                playlists: refs(&["pl:a"]),
            },
        );
        let asked = ["mix", "road", "ROAD", "sp:a", "sp:a2", "pl:c", "pl:a", "Other", "none"];
        let answers = |m: &Memory| -> Vec<Vec<String>> { asked.iter().map(|w| m.resolve("u1", w)).collect() };
        let expected: Vec<Vec<&str>> = vec![
            vec!["pl:b"],
            vec!["pl:a"],
            vec!["pl:a"],
            vec![],
            vec!["pl:a"],
            vec!["pl:c"],
            vec!["pl:a"],
            vec!["pl:c"],
            vec![],
        ];
        assert_eq!(answers(&m), expected);
        m.apply_one(
            "u1",
            LibraryEvent::PlaylistsRemoved {
                playlist_ids: vec!["pl:b".to_string()],
            },
        );
        assert_eq!(m.resolve("u1", "mix"), Vec::<String>::new());
        assert_eq!(m.resolve("u2", "road"), ["pl:a"]);

        // The same library as one ingested before the index: no index rows, the flag unset.
        let indexed = answers(&m);
        let mut old = Memory::default();
        let index = rows::playlist_names("u1");
        for (k, v) in &m.rows.0 {
            if !k.starts_with(index.base()) {
                old.rows.0.insert(k.clone(), v.clone());
            }
        }
        let mut meta = rows::load_meta(&old, "u1").expect("meta").expect("a library");
        assert!(meta.playlist_index);
        meta.playlist_index = false;
        old.put(&rows::meta_key("u1"), rows::encode(&meta));
        assert_eq!(answers(&old), indexed);
        // An index entry left after a Cleared library is gone with it.
        m.apply_one("u1", LibraryEvent::Cleared {});
        assert!(!m.rows.0.keys().any(|k| k.starts_with(index.base())));
    }
}
