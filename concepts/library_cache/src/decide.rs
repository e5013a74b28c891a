//! The actions: read the user's projections, check preconditions, and compute the smallest
//! events that turn the cached library into the one the input describes.

use crate::apply::load_meta;
use crate::events::{chunked, LibraryEvent, LikeFact, PlayFact, PlaylistRef, RefreshKind, TrackRef};
use crate::model::{ChangeOutput, LibraryInput, Like, MergeInput, Play, Playlist, Track};
use crate::rows::{self, PlaylistMark};
use crate::validate;
use chrono::{DateTime, Utc};
use concept_core::time::format_rfc3339;
use concept_core::{ActionCtx, ActionError, ProjectionRead};
use std::collections::{HashMap, HashSet};

/// Whether a collection replaces the cached one (a complete read) or is merged into it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Replace,
    Merge,
}

/// The events an action appends and the counts it answers with.
pub struct Plan {
    pub events: Vec<LibraryEvent>,
    pub out: ChangeOutput,
}

pub fn user_not_found(user: &str) -> ActionError {
    ActionError::not_found(
        "USER_NOT_FOUND",
        format!("user {user:?} has no cached library; ingest it first"),
    )
}

pub fn ingest(ctx: &ActionCtx, view: &dyn ProjectionRead, input: LibraryInput) -> Result<(u64, Plan), ActionError> {
    refresh(ctx, view, RefreshKind::Ingest, complete_read(input))
}

pub fn sync(ctx: &ActionCtx, view: &dyn ProjectionRead, input: LibraryInput) -> Result<(u64, Plan), ActionError> {
    refresh(ctx, view, RefreshKind::Sync, complete_read(input))
}

pub fn merge(ctx: &ActionCtx, view: &dyn ProjectionRead, input: MergeInput) -> Result<(u64, Plan), ActionError> {
    refresh(ctx, view, RefreshKind::Merge, input)
}

/// A complete read as a delta that names no removals (they follow from what it leaves out).
fn complete_read(input: LibraryInput) -> MergeInput {
    MergeInput {
        user_id: input.user_id,
        tracks: input.tracks,
        likes: input.likes,
        unlikes: None,
        plays: input.plays,
        playlists: input.playlists,
        removed_playlists: None,
    }
}

/// The one planner of ingest, sync and merge: validate, check that the library exists (or, for
/// ingest, that it does not), plan each collection given (replacing it, or merging for a
/// merge), and end with `Refreshed`.
fn refresh(
    ctx: &ActionCtx,
    view: &dyn ProjectionRead,
    kind: RefreshKind,
    input: MergeInput,
) -> Result<(u64, Plan), ActionError> {
    validate_library(
        &input.user_id,
        &input.tracks,
        &input.likes,
        &input.plays,
        &input.playlists,
    )?;
    for (i, id) in input.unlikes.iter().flatten().enumerate() {
        validate::id(&format!("unlikes[{i}]"), id)?;
    }
    for (i, id) in input.removed_playlists.iter().flatten().enumerate() {
        validate::id(&format!("removedPlaylists[{i}]"), id)?;
    }
    let user = input.user_id.clone();
    let meta = load_meta(view, &user)?;
    let mut plan = Plan {
        events: Vec::new(),
        out: ChangeOutput::default(),
    };
    let state = match (kind, meta) {
        (RefreshKind::Ingest, Some(_)) => {
            return Err(ActionError::conflict(
                "ALREADY_INGESTED",
                format!(
                    "user {user:?} already has a cached library; use sync or merge to refresh it, or clear it first"
                ),
            ))
        }
        (RefreshKind::Ingest, None) => {
            plan.events.push(LibraryEvent::Ingested {});
            State {
                view,
                user: &user,
                next_ord: 0,
                fresh: true,
            }
        }
        (_, None) => return Err(user_not_found(&user)),
        (_, Some(meta)) => State {
            view,
            user: &user,
            next_ord: meta.next_ord,
            fresh: false,
        },
    };
    let mode = if kind == RefreshKind::Merge {
        Mode::Merge
    } else {
        Mode::Replace
    };
    state.plan(ctx, &mut plan, mode, input)?;
    plan.events.push(LibraryEvent::Refreshed { kind });
    finish(view, &user, plan)
}

pub fn clear(view: &dyn ProjectionRead, user: &str) -> Result<(u64, Vec<LibraryEvent>), ActionError> {
    validate::id("userId", user)?;
    load_meta(view, user)?.ok_or_else(|| user_not_found(user))?;
    Ok((view.stream_version(user)?, vec![LibraryEvent::Cleared {}]))
}

/// Fills in the user and the version the library will be at after the plan's events.
fn finish(view: &dyn ProjectionRead, user: &str, mut plan: Plan) -> Result<(u64, Plan), ActionError> {
    let expected = view.stream_version(user)?;
    plan.out.user_id = user.to_string();
    plan.out.version = expected + plan.events.len() as u64;
    Ok((expected, plan))
}

fn validate_library(
    user: &str,
    tracks: &Option<Vec<Track>>,
    likes: &Option<Vec<Like>>,
    plays: &Option<Vec<Play>>,
    playlists: &Option<Vec<Playlist>>,
) -> Result<(), ActionError> {
    validate::id("userId", user)?;
    for (i, t) in tracks.iter().flatten().enumerate() {
        validate::id(&format!("tracks[{i}].id"), &t.id)?;
    }
    for (i, l) in likes.iter().flatten().enumerate() {
        validate::id(&format!("likes[{i}].trackId"), &l.track_id)?;
        validate::opt_time(&format!("likes[{i}].likedAt"), l.liked_at.as_deref())?;
    }
    for (i, p) in plays.iter().flatten().enumerate() {
        validate::id(&format!("plays[{i}].trackId"), &p.track_id)?;
        validate::time(&format!("plays[{i}].playedAt"), &p.played_at)?;
    }
    for (i, p) in playlists.iter().flatten().enumerate() {
        validate::id(&format!("playlists[{i}].id"), &p.id)?;
        for (j, e) in p.entries.iter().enumerate() {
            validate::id(&format!("playlists[{i}].entries[{j}]"), e)?;
        }
    }
    Ok(())
}

/// The user's library as the planner needs it.
struct State<'v> {
    view: &'v dyn ProjectionRead,
    user: &'v str,
    next_ord: u64,
    /// True for a user with no cached rows yet (ingest): nothing to read.
    fresh: bool,
}

impl State<'_> {
    /// Plans each collection `input` gives (a complete read names no removals).
    fn plan(mut self, ctx: &ActionCtx, plan: &mut Plan, mode: Mode, input: MergeInput) -> Result<(), ActionError> {
        let MergeInput {
            tracks,
            likes,
            unlikes,
            plays,
            playlists,
            removed_playlists,
            ..
        } = input;
        if let Some(tracks) = tracks {
            self.plan_tracks(plan, mode, tracks)?;
        }
        if likes.is_some() || unlikes.is_some() {
            self.plan_likes(ctx, plan, mode, likes.unwrap_or_default(), unlikes.unwrap_or_default())?;
        }
        if let Some(plays) = plays {
            self.plan_plays(plan, plays)?;
        }
        if playlists.is_some() || removed_playlists.is_some() {
            self.plan_playlists(
                plan,
                mode,
                playlists.unwrap_or_default(),
                removed_playlists.unwrap_or_default(),
            )?;
        }
        Ok(())
    }

    /// Reads a whole chunked map (nothing for a fresh user).
    fn all(&self, map: concept_core::chunked::ChunkedMap) -> Result<concept_core::Rows, ActionError> {
        if self.fresh {
            return Ok(Vec::new());
        }
        Ok(map.entries(self.view)?)
    }

    /// The values of some keys (a merge reads only what it names).
    fn some(
        &self,
        map: concept_core::chunked::ChunkedMap,
        keys: &[&[u8]],
    ) -> Result<Vec<Option<Vec<u8>>>, ActionError> {
        if self.fresh {
            return Ok(vec![None; keys.len()]);
        }
        Ok(map.get_many(self.view, keys)?)
    }

    fn plan_tracks(&mut self, plan: &mut Plan, mode: Mode, tracks: Vec<Track>) -> Result<(), ActionError> {
        // The last occurrence of a track id wins.
        let mut position: HashMap<String, usize> = HashMap::with_capacity(tracks.len());
        let mut unique: Vec<Track> = Vec::with_capacity(tracks.len());
        for t in tracks {
            match position.get(&t.id) {
                Some(&i) => unique[i] = t,
                None => {
                    position.insert(t.id.clone(), unique.len());
                    unique.push(t);
                }
            }
        }
        let hashes: Vec<u64> = unique.iter().map(|t| rows::content_hash(&rows::encode(t))).collect();
        let current: HashMap<Vec<u8>, u64> = match mode {
            Mode::Replace => self
                .all(rows::tracks(self.user))?
                .into_iter()
                .map(|(k, v)| (k, rows_u64(&v)))
                .collect(),
            Mode::Merge => {
                let keys: Vec<&[u8]> = unique.iter().map(|t| t.id.as_bytes()).collect();
                let found = self.some(rows::tracks(self.user), &keys)?;
                keys.iter()
                    .zip(found)
                    .filter_map(|(k, v)| v.map(|v| (k.to_vec(), rows_u64(&v))))
                    .collect()
            }
        };
        let mut saved = Vec::new();
        let (mut added, mut updated) = (Vec::new(), Vec::new());
        for (t, hash) in unique.into_iter().zip(hashes) {
            let r = TrackRef { id: t.id.clone(), hash };
            match current.get(t.id.as_bytes()) {
                Some(&h) if h == hash => continue,
                Some(_) => updated.push(r),
                None => added.push(r),
            }
            saved.push(t);
        }
        plan.out.added.tracks = added.len() as u64;
        plan.out.updated.tracks = updated.len() as u64;
        let mut removed = Vec::new();
        if mode == Mode::Replace {
            for id in current.keys() {
                if !position.contains_key(std::str::from_utf8(id).unwrap_or_default()) {
                    removed.push(String::from_utf8_lossy(id).into_owned());
                }
            }
            removed.sort();
            plan.out.removed.tracks = removed.len() as u64;
        }
        plan.events
            .extend(chunked(saved, |tracks| LibraryEvent::TracksSaved { tracks }));
        plan.events
            .extend(chunked(added, |tracks| LibraryEvent::TracksAdded { tracks }));
        plan.events
            .extend(chunked(updated, |tracks| LibraryEvent::TracksUpdated { tracks }));
        plan.events
            .extend(chunked(removed, |track_ids| LibraryEvent::TracksRemoved { track_ids }));
        Ok(())
    }

    fn plan_likes(
        &mut self,
        ctx: &ActionCtx,
        plan: &mut Plan,
        mode: Mode,
        likes: Vec<Like>,
        unlikes: Vec<String>,
    ) -> Result<(), ActionError> {
        // One like per track: the newest likedAt wins; a like without likedAt counts as now.
        struct Wanted {
            track_id: String,
            liked_at: Option<DateTime<Utc>>,
        }
        let mut position: HashMap<String, usize> = HashMap::with_capacity(likes.len());
        let mut wanted: Vec<Wanted> = Vec::with_capacity(likes.len());
        for (i, like) in likes.into_iter().enumerate() {
            let liked_at = validate::opt_time(&format!("likes[{i}].likedAt"), like.liked_at.as_deref())?;
            let effective = liked_at.unwrap_or(ctx.now);
            match position.get(&like.track_id) {
                Some(&p) => {
                    if effective > wanted[p].liked_at.unwrap_or(ctx.now) {
                        wanted[p].liked_at = liked_at;
                    }
                }
                None => {
                    position.insert(like.track_id.clone(), wanted.len());
                    wanted.push(Wanted {
                        track_id: like.track_id,
                        liked_at,
                    });
                }
            }
        }
        let index = rows::like_index(self.user);
        let current: HashMap<Vec<u8>, DateTime<Utc>> = match mode {
            Mode::Replace => self
                .all(index)?
                .into_iter()
                .map(|(k, v)| (k, rows::time_of(&v)))
                .collect(),
            Mode::Merge => {
                let mut keys: Vec<&[u8]> = wanted.iter().map(|w| w.track_id.as_bytes()).collect();
                keys.extend(unlikes.iter().map(|u| u.as_bytes()));
                let found = self.some(index, &keys)?;
                keys.iter()
                    .zip(found)
                    .filter_map(|(k, v)| v.map(|v| (k.to_vec(), rows::time_of(&v))))
                    .collect()
            }
        };
        let mut liked = Vec::new();
        for w in &wanted {
            let record = match (current.get(w.track_id.as_bytes()), w.liked_at) {
                (None, _) => {
                    plan.out.added.likes += 1;
                    true
                }
                (Some(old), Some(new)) => *old != new,
                (Some(_), None) => false,
            };
            if record {
                liked.push(LikeFact {
                    track_id: w.track_id.clone(),
                    liked_at: format_rfc3339(&w.liked_at.unwrap_or(ctx.now)),
                    ord: self.next_ord,
                });
                self.next_ord += 1;
            }
        }
        let mut gone: Vec<String> = match mode {
            Mode::Replace => current
                .keys()
                .filter(|k| !position.contains_key(std::str::from_utf8(k).unwrap_or_default()))
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .collect(),
            Mode::Merge => {
                let mut seen = HashSet::new();
                unlikes
                    .into_iter()
                    .filter(|u| {
                        current.contains_key(u.as_bytes()) && !position.contains_key(u) && seen.insert(u.clone())
                    })
                    .collect()
            }
        };
        gone.sort();
        plan.out.removed.likes = gone.len() as u64;
        plan.events
            .extend(chunked(gone, |track_ids| LibraryEvent::Unliked { track_ids }));
        plan.events
            .extend(chunked(liked, |likes| LibraryEvent::Liked { likes }));
        Ok(())
    }

    fn plan_plays(&mut self, plan: &mut Plan, plays: Vec<Play>) -> Result<(), ActionError> {
        let mut seen = HashSet::with_capacity(plays.len());
        let mut unique = Vec::with_capacity(plays.len());
        for (i, p) in plays.into_iter().enumerate() {
            let at = validate::time(&format!("plays[{i}].playedAt"), &p.played_at)?;
            let key = rows::play_key(&at, &p.track_id);
            if seen.insert(key.clone()) {
                unique.push((
                    key,
                    PlayFact {
                        track_id: p.track_id,
                        played_at: format_rfc3339(&at),
                    },
                ));
            }
        }
        let keys: Vec<&[u8]> = unique.iter().map(|(k, _)| k.as_slice()).collect();
        let found = self.some(rows::plays(self.user), &keys)?;
        let new: Vec<PlayFact> = unique
            .into_iter()
            .zip(found)
            .filter(|(_, f)| f.is_none())
            .map(|((_, fact), _)| fact)
            .collect();
        plan.out.added.plays = new.len() as u64;
        plan.events
            .extend(chunked(new, |plays| LibraryEvent::PlaysAdded { plays }));
        Ok(())
    }

    fn plan_playlists(
        &mut self,
        plan: &mut Plan,
        mode: Mode,
        playlists: Vec<Playlist>,
        removed: Vec<String>,
    ) -> Result<(), ActionError> {
        let mut position: HashMap<String, usize> = HashMap::with_capacity(playlists.len());
        let mut unique: Vec<Playlist> = Vec::with_capacity(playlists.len());
        for p in playlists {
            match position.get(&p.id) {
                Some(&i) => unique[i] = p,
                None => {
                    position.insert(p.id.clone(), unique.len());
                    unique.push(p);
                }
            }
        }
        let map = rows::playlists(self.user);
        let current: HashMap<Vec<u8>, PlaylistMark> = match mode {
            Mode::Replace => self
                .all(map)?
                .into_iter()
                .filter_map(|(k, v)| decode_mark(&v).map(|m| (k, m)))
                .collect(),
            Mode::Merge => {
                let mut keys: Vec<&[u8]> = unique.iter().map(|p| p.id.as_bytes()).collect();
                keys.extend(removed.iter().map(|r| r.as_bytes()));
                let found = self.some(map, &keys)?;
                keys.iter()
                    .zip(found)
                    .filter_map(|(k, v)| v.and_then(|v| decode_mark(&v)).map(|m| (k.to_vec(), m)))
                    .collect()
            }
        };
        let mut saved = Vec::new();
        let (mut added, mut updated) = (Vec::new(), Vec::new());
        for p in unique {
            let hash = rows::content_hash(&rows::encode(&p));
            let r = PlaylistRef {
                id: p.id.clone(),
                hash,
                snapshot_id: p.snapshot_id.clone(),
            };
            match current.get(p.id.as_bytes()) {
                Some(mark) => {
                    let same_snapshot = p.snapshot_id.is_some() && p.snapshot_id == mark.snapshot_id;
                    if same_snapshot || mark.hash == hash {
                        continue;
                    }
                    updated.push(r);
                }
                None => added.push(r),
            }
            saved.push(p);
        }
        plan.out.added.playlists = added.len() as u64;
        plan.out.updated.playlists = updated.len() as u64;
        let mut gone: Vec<String> = match mode {
            Mode::Replace => current
                .keys()
                .filter(|k| !position.contains_key(std::str::from_utf8(k).unwrap_or_default()))
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .collect(),
            Mode::Merge => {
                let mut seen = HashSet::new();
                removed
                    .into_iter()
                    .filter(|r| {
                        current.contains_key(r.as_bytes()) && !position.contains_key(r) && seen.insert(r.clone())
                    })
                    .collect()
            }
        };
        gone.sort();
        plan.out.removed.playlists = gone.len() as u64;
        plan.events
            .extend(chunked(gone, |playlist_ids| LibraryEvent::PlaylistsRemoved {
                playlist_ids,
            }));
        plan.events.extend(
            saved
                .chunks(100)
                .map(|c| LibraryEvent::PlaylistsSaved { playlists: c.to_vec() }),
        );
        plan.events
            .extend(chunked(added, |playlists| LibraryEvent::PlaylistsAdded { playlists }));
        plan.events
            .extend(chunked(updated, |playlists| LibraryEvent::PlaylistsUpdated {
                playlists,
            }));
        Ok(())
    }
}

fn rows_u64(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = bytes.len().min(8);
    b[..n].copy_from_slice(&bytes[..n]);
    u64::from_be_bytes(b)
}

fn decode_mark(bytes: &[u8]) -> Option<PlaylistMark> {
    postcard::from_bytes(bytes).ok()
}
