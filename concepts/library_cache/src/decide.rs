//! The actions: read the user's projections, check preconditions, and compute the smallest
//! events that turn the cached library into the one the input describes.
//!
//! The input is borrowed (the engine decodes it once and may run the action again after losing
//! a race); tracks and playlists go into events as shared `Arc`s, never copied. A complete read
//! is compared with the cached collection by a merge join: the input's ids sorted, against the
//! map's entries as they are stored (in id order) — no hash map of the whole library.

use crate::events::{chunked, LibraryEvent, LikeFact, PlayFact, PlaylistRef, RefreshKind, TrackRef, HASH_VERSION};
use crate::model::{ChangeOutput, LibraryInput, Like, MergeInput, Play, Playlist, Track};
use crate::rows::{self, PlaylistMark, UserMeta};
use crate::validate;
use chrono::{DateTime, Utc};
use concept_core::chunked::ChunkedMap;
use concept_core::time::format_rfc3339;
use concept_core::{ActionCtx, ActionError, ProjectionRead};
use std::sync::Arc;

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

/// A library read or delta, borrowed from the decoded input.
struct Delta<'a> {
    user_id: &'a str,
    tracks: Option<&'a [Arc<Track>]>,
    likes: Option<&'a [Like]>,
    unlikes: Option<&'a [String]>,
    plays: Option<&'a [Play]>,
    playlists: Option<&'a [Arc<Playlist>]>,
    removed_playlists: Option<&'a [String]>,
}

/// A complete read as a delta that names no removals (they follow from what it leaves out).
fn complete_read(input: &LibraryInput) -> Delta<'_> {
    Delta {
        user_id: &input.user_id,
        tracks: input.tracks.as_deref(),
        likes: input.likes.as_deref(),
        unlikes: None,
        plays: input.plays.as_deref(),
        playlists: input.playlists.as_deref(),
        removed_playlists: None,
    }
}

pub fn ingest(ctx: &ActionCtx, view: &dyn ProjectionRead, input: &LibraryInput) -> Result<(u64, Plan), ActionError> {
    refresh(ctx, view, RefreshKind::Ingest, complete_read(input))
}

pub fn sync(ctx: &ActionCtx, view: &dyn ProjectionRead, input: &LibraryInput) -> Result<(u64, Plan), ActionError> {
    refresh(ctx, view, RefreshKind::Sync, complete_read(input))
}

pub fn merge(ctx: &ActionCtx, view: &dyn ProjectionRead, input: &MergeInput) -> Result<(u64, Plan), ActionError> {
    let delta = Delta {
        user_id: &input.user_id,
        tracks: input.tracks.as_deref(),
        likes: input.likes.as_deref(),
        unlikes: input.unlikes.as_deref(),
        plays: input.plays.as_deref(),
        playlists: input.playlists.as_deref(),
        removed_playlists: input.removed_playlists.as_deref(),
    };
    refresh(ctx, view, RefreshKind::Merge, delta)
}

/// The one planner of ingest, sync and merge: validate, check that the library exists (or, for
/// ingest, that it does not), plan each collection given (replacing it, or merging for a
/// merge), and end with `Refreshed`.
fn refresh(
    ctx: &ActionCtx,
    view: &dyn ProjectionRead,
    kind: RefreshKind,
    input: Delta<'_>,
) -> Result<(u64, Plan), ActionError> {
    validate_library(&input)?;
    let user = input.user_id;
    let meta = rows::load_meta(view, user)?;
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
            plan.events.push(LibraryEvent::Ingested {
                hash_version: HASH_VERSION,
            });
            State {
                view,
                user,
                next_ord: 0,
                fresh: true,
                hashes_v2: true,
            }
        }
        (_, None) => return Err(user_not_found(user)),
        (_, Some(meta)) => State::of(view, user, &meta),
    };
    let mode = if kind == RefreshKind::Merge {
        Mode::Merge
    } else {
        Mode::Replace
    };
    state.plan(ctx, &mut plan, mode, &input)?;
    plan.events.push(LibraryEvent::Refreshed { kind });
    finish(view, user, plan)
}

pub fn clear(view: &dyn ProjectionRead, user: &str) -> Result<(u64, Vec<LibraryEvent>), ActionError> {
    validate::id("userId", user)?;
    rows::load_meta(view, user)?.ok_or_else(|| user_not_found(user))?;
    Ok((view.stream_version(user)?, vec![LibraryEvent::Cleared {}]))
}

/// Fills in the user and the version the library will be at after the plan's events.
fn finish(view: &dyn ProjectionRead, user: &str, mut plan: Plan) -> Result<(u64, Plan), ActionError> {
    let expected = view.stream_version(user)?;
    plan.out.user_id = user.to_string();
    plan.out.version = expected + plan.events.len() as u64;
    Ok((expected, plan))
}

fn validate_library(input: &Delta<'_>) -> Result<(), ActionError> {
    validate::id("userId", input.user_id)?;
    for (i, t) in input.tracks.iter().copied().flatten().enumerate() {
        validate::id(&format!("tracks[{i}].id"), &t.id)?;
    }
    for (i, l) in input.likes.iter().copied().flatten().enumerate() {
        validate::id(&format!("likes[{i}].trackId"), &l.track_id)?;
        validate::opt_time(&format!("likes[{i}].likedAt"), l.liked_at.as_deref())?;
    }
    for (i, p) in input.plays.iter().copied().flatten().enumerate() {
        validate::id(&format!("plays[{i}].trackId"), &p.track_id)?;
        validate::time(&format!("plays[{i}].playedAt"), &p.played_at)?;
    }
    for (i, p) in input.playlists.iter().copied().flatten().enumerate() {
        validate::id(&format!("playlists[{i}].id"), &p.id)?;
        for (j, e) in p.entries.iter().enumerate() {
            validate::id(&format!("playlists[{i}].entries[{j}]"), e)?;
        }
    }
    for (i, id) in input.unlikes.iter().copied().flatten().enumerate() {
        validate::id(&format!("unlikes[{i}]"), id)?;
    }
    for (i, id) in input.removed_playlists.iter().copied().flatten().enumerate() {
        validate::id(&format!("removedPlaylists[{i}]"), id)?;
    }
    Ok(())
}

/// Positions `0..n` of items with ids, ordered by id (copies of one id in input order), in
/// runs of one id each.
struct Groups {
    order: Vec<usize>,
    starts: Vec<usize>,
}

impl Groups {
    fn of<'a>(n: usize, id: impl Fn(usize) -> &'a str) -> Self {
        // Sorted as (id, position) pairs: the ids' bytes are compared in place, without going
        // through the items for each comparison.
        let mut keyed: Vec<(&'a str, u32)> = (0..n).map(|i| (id(i), i as u32)).collect();
        keyed.sort_unstable();
        let mut starts = Vec::with_capacity(n);
        for k in 0..keyed.len() {
            if k == 0 || keyed[k - 1].0 != keyed[k].0 {
                starts.push(k);
            }
        }
        Groups {
            order: keyed.into_iter().map(|(_, i)| i as usize).collect(),
            starts,
        }
    }

    /// Each id's positions, ascending; the runs in id order.
    fn runs(&self) -> impl Iterator<Item = &[usize]> + '_ {
        self.starts.iter().enumerate().map(|(g, &start)| {
            let end = self.starts.get(g + 1).copied().unwrap_or(self.order.len());
            &self.order[start..end]
        })
    }

    /// The last copy of each id, in id order.
    fn last_of_each(&self) -> Vec<usize> {
        self.runs().filter_map(|r| r.last().copied()).collect()
    }

    /// The copy `pick` chooses of each id, in the order the input first names the ids.
    fn in_input_order(&self, pick: impl Fn(&[usize]) -> usize) -> Vec<usize> {
        let mut firsts: Vec<(usize, usize)> = self.runs().map(|r| (r[0], pick(r))).collect();
        firsts.sort_unstable_by_key(|(first, _)| *first);
        firsts.into_iter().map(|(_, kept)| kept).collect()
    }
}

/// Compares the input's items (positions sorted by id, one per id) with the cached entries
/// (sorted by id): each item's finding, by position, and the cached ids the input does not hold.
fn join<'a>(
    n: usize,
    sorted: &[usize],
    id: impl Fn(usize) -> &'a str,
    cached: &[(Vec<u8>, Vec<u8>)],
    mut compare: impl FnMut(usize, &[u8]) -> Found,
) -> (Vec<Option<Found>>, Vec<String>) {
    let mut found = vec![None; n];
    let mut gone = Vec::new();
    let mut c = 0;
    for &i in sorted {
        let key = id(i).as_bytes();
        while c < cached.len() && cached[c].0.as_slice() < key {
            gone.push(String::from_utf8_lossy(&cached[c].0).into_owned());
            c += 1;
        }
        if c < cached.len() && cached[c].0.as_slice() == key {
            found[i] = Some(compare(i, &cached[c].1));
            c += 1;
        } else {
            found[i] = Some(Found::New);
        }
    }
    gone.extend(cached[c..].iter().map(|(k, _)| String::from_utf8_lossy(k).into_owned()));
    (found, gone)
}

/// The user's library as the planner needs it.
struct State<'v> {
    view: &'v dyn ProjectionRead,
    user: &'v str,
    next_ord: u64,
    /// True for a user with no cached rows yet (ingest): nothing to read.
    fresh: bool,
    /// False while the library still holds hashes of JSON text (see [`rows::legacy_hash`]).
    hashes_v2: bool,
}

/// How an item of the input compares with the cached one.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Found {
    New,
    Changed,
    Same,
    /// Unchanged, but cached under a hash of its JSON text: renew the hash.
    Rehash,
}

impl<'v> State<'v> {
    fn of(view: &'v dyn ProjectionRead, user: &'v str, meta: &UserMeta) -> Self {
        State {
            view,
            user,
            next_ord: meta.next_ord,
            fresh: false,
            hashes_v2: meta.hashes_v2,
        }
    }

    /// Plans each collection `input` gives (a complete read names no removals).
    fn plan(mut self, ctx: &ActionCtx, plan: &mut Plan, mode: Mode, input: &Delta<'_>) -> Result<(), ActionError> {
        let mut rehash = (Vec::new(), Vec::new());
        if let Some(tracks) = input.tracks {
            rehash.0 = self.plan_tracks(plan, mode, tracks)?;
        }
        if input.likes.is_some() || input.unlikes.is_some() {
            self.plan_likes(
                ctx,
                plan,
                mode,
                input.likes.unwrap_or_default(),
                input.unlikes.unwrap_or_default(),
            )?;
        }
        if let Some(plays) = input.plays {
            self.plan_plays(plan, plays)?;
        }
        if input.playlists.is_some() || input.removed_playlists.is_some() {
            rehash.1 = self.plan_playlists(
                plan,
                mode,
                input.playlists.unwrap_or_default(),
                input.removed_playlists.unwrap_or_default(),
            )?;
        }
        // A complete read of both collections renews every hash a library ingested before
        // hashes of decoded fields still holds.
        let complete = mode == Mode::Replace && input.tracks.is_some() && input.playlists.is_some();
        if !self.hashes_v2 && (complete || !rehash.0.is_empty() || !rehash.1.is_empty()) {
            plan.events.push(LibraryEvent::Rehashed {
                tracks: rehash.0,
                playlists: rehash.1,
                complete,
            });
        }
        Ok(())
    }

    /// Every entry of one of the user's maps, in key order (nothing for a fresh user).
    fn all(&self, map: &ChunkedMap) -> Result<concept_core::Rows, ActionError> {
        if self.fresh {
            return Ok(Vec::new());
        }
        Ok(map.entries(self.view)?)
    }

    /// The cached values of `keys` (sorted) in one of the user's maps, as (key, value) pairs in
    /// key order: every entry for a complete read, only those asked for in a merge.
    fn cached(&self, map: &ChunkedMap, mode: Mode, keys: &[&[u8]]) -> Result<concept_core::Rows, ActionError> {
        if self.fresh {
            return Ok(Vec::new());
        }
        match mode {
            Mode::Replace => self.all(map),
            Mode::Merge => Ok(keys
                .iter()
                .zip(map.get_many(self.view, keys)?)
                .filter_map(|(k, v)| v.map(|v| (k.to_vec(), v.to_vec())))
                .collect()),
        }
    }

    fn plan_tracks(
        &mut self,
        plan: &mut Plan,
        mode: Mode,
        tracks: &[Arc<Track>],
    ) -> Result<Vec<TrackRef>, ActionError> {
        let groups = Groups::of(tracks.len(), |i| tracks[i].id.as_str());
        let sorted = groups.last_of_each();
        let keys: Vec<&[u8]> = sorted.iter().map(|&i| tracks[i].id.as_bytes()).collect();
        let cached = self.cached(&rows::tracks(self.user), mode, &keys)?;
        let hashes: Vec<u64> = {
            let mut h = vec![0; tracks.len()];
            for &i in &sorted {
                h[i] = rows::track_hash(&tracks[i]);
            }
            h
        };
        let legacy = !self.hashes_v2;
        let (found, gone) = join(
            tracks.len(),
            &sorted,
            |i| tracks[i].id.as_str(),
            &cached,
            |i, stored| {
                let stored = rows_u64(stored);
                if stored == hashes[i] {
                    Found::Same
                } else if legacy && stored == rows::legacy_hash(&*tracks[i]) {
                    Found::Rehash
                } else {
                    Found::Changed
                }
            },
        );
        // Events list tracks in the order the input first names them (the last copy wins).
        let mut saved = Vec::new();
        let (mut added, mut updated, mut rehash) = (Vec::new(), Vec::new(), Vec::new());
        for i in groups.in_input_order(|run| run[run.len() - 1]) {
            let r = TrackRef {
                id: tracks[i].id.clone(),
                hash: hashes[i],
            };
            match found[i] {
                Some(Found::New) => added.push(r),
                Some(Found::Changed) => updated.push(r),
                Some(Found::Rehash) => {
                    rehash.push(r);
                    continue;
                }
                Some(Found::Same) | None => continue,
            }
            saved.push(Arc::clone(&tracks[i]));
        }
        plan.out.added.tracks = added.len() as u64;
        plan.out.updated.tracks = updated.len() as u64;
        let removed = match mode {
            Mode::Replace => gone,
            Mode::Merge => Vec::new(),
        };
        plan.out.removed.tracks = removed.len() as u64;
        plan.events
            .extend(chunked(saved, |tracks| LibraryEvent::TracksSaved { tracks }));
        plan.events
            .extend(chunked(added, |tracks| LibraryEvent::TracksAdded { tracks }));
        plan.events
            .extend(chunked(updated, |tracks| LibraryEvent::TracksUpdated { tracks }));
        plan.events
            .extend(chunked(removed, |track_ids| LibraryEvent::TracksRemoved { track_ids }));
        Ok(rehash)
    }

    fn plan_likes(
        &mut self,
        ctx: &ActionCtx,
        plan: &mut Plan,
        mode: Mode,
        likes: &[Like],
        unlikes: &[String],
    ) -> Result<(), ActionError> {
        let mut times: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(likes.len());
        for (i, like) in likes.iter().enumerate() {
            times.push(validate::opt_time(
                &format!("likes[{i}].likedAt"),
                like.liked_at.as_deref(),
            )?);
        }
        // One like per track, at the place the input first names it, with the newest likedAt
        // of its copies (a like without likedAt counts as now).
        let groups = Groups::of(likes.len(), |i| likes[i].track_id.as_str());
        let mut wanted_at = times.clone();
        for run in groups.runs() {
            let first = run[0];
            for &i in &run[1..] {
                if times[i].unwrap_or(ctx.now) > wanted_at[first].unwrap_or(ctx.now) {
                    wanted_at[first] = times[i];
                }
            }
        }
        let sorted: Vec<usize> = groups.runs().map(|r| r[0]).collect();
        let unlike_keys: Vec<&str> = {
            let mut u: Vec<&str> = unlikes.iter().map(String::as_str).collect();
            u.sort_unstable();
            u.dedup();
            u
        };
        let mut asked: Vec<&[u8]> = sorted.iter().map(|&i| likes[i].track_id.as_bytes()).collect();
        asked.extend(unlike_keys.iter().map(|u| u.as_bytes()));
        asked.sort_unstable();
        asked.dedup();
        let cached = self.cached(&rows::like_index(self.user), mode, &asked)?;
        let (found, gone) = join(
            likes.len(),
            &sorted,
            |i| likes[i].track_id.as_str(),
            &cached,
            |i, stored| match wanted_at[i] {
                Some(new) if rows::time_of(stored) != new => Found::Changed,
                _ => Found::Same,
            },
        );
        let mut liked = Vec::new();
        for i in groups.in_input_order(|run| run[0]) {
            match found[i] {
                Some(Found::New) => plan.out.added.likes += 1,
                Some(Found::Changed) => {}
                _ => continue,
            }
            liked.push(LikeFact {
                track_id: likes[i].track_id.clone(),
                liked_at: format_rfc3339(&wanted_at[i].unwrap_or(ctx.now)),
                ord: self.next_ord,
            });
            self.next_ord += 1;
        }
        let gone: Vec<String> = match mode {
            Mode::Replace => gone,
            Mode::Merge => {
                let wanted: std::collections::BTreeSet<&str> =
                    sorted.iter().map(|&i| likes[i].track_id.as_str()).collect();
                let held: std::collections::BTreeSet<&[u8]> = cached.iter().map(|(k, _)| k.as_slice()).collect();
                unlike_keys
                    .into_iter()
                    .filter(|u| held.contains(u.as_bytes()) && !wanted.contains(u))
                    .map(str::to_string)
                    .collect()
            }
        };
        plan.out.removed.likes = gone.len() as u64;
        plan.events
            .extend(chunked(gone, |track_ids| LibraryEvent::Unliked { track_ids }));
        plan.events
            .extend(chunked(liked, |likes| LibraryEvent::Liked { likes }));
        Ok(())
    }

    fn plan_plays(&mut self, plan: &mut Plan, plays: &[Play]) -> Result<(), ActionError> {
        let mut keyed: Vec<(Vec<u8>, usize, DateTime<Utc>)> = Vec::with_capacity(plays.len());
        for (i, p) in plays.iter().enumerate() {
            let at = validate::time(&format!("plays[{i}].playedAt"), &p.played_at)?;
            keyed.push((rows::play_key(&at, &p.track_id), i, at));
        }
        // One play per key, at the place the input first names it.
        keyed.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        keyed.dedup_by(|b, a| a.0 == b.0);
        let new: Vec<bool> = if self.fresh {
            vec![true; keyed.len()]
        } else {
            let keys: Vec<&[u8]> = keyed.iter().map(|(k, _, _)| k.as_slice()).collect();
            rows::plays(self.user)
                .get_many(self.view, &keys)?
                .into_iter()
                .map(|v| v.is_none())
                .collect()
        };
        let mut fresh: Vec<(usize, PlayFact)> = keyed
            .into_iter()
            .zip(new)
            .filter(|(_, new)| *new)
            .map(|((_, i, at), _)| {
                (
                    i,
                    PlayFact {
                        track_id: plays[i].track_id.clone(),
                        played_at: format_rfc3339(&at),
                    },
                )
            })
            .collect();
        fresh.sort_by_key(|(i, _)| *i);
        plan.out.added.plays = fresh.len() as u64;
        plan.events
            .extend(chunked(fresh.into_iter().map(|(_, f)| f).collect(), |plays| {
                LibraryEvent::PlaysAdded { plays }
            }));
        Ok(())
    }

    fn plan_playlists(
        &mut self,
        plan: &mut Plan,
        mode: Mode,
        playlists: &[Arc<Playlist>],
        removed: &[String],
    ) -> Result<Vec<PlaylistRef>, ActionError> {
        let groups = Groups::of(playlists.len(), |i| playlists[i].id.as_str());
        let sorted = groups.last_of_each();
        let mut asked: Vec<&[u8]> = sorted.iter().map(|&i| playlists[i].id.as_bytes()).collect();
        asked.extend(removed.iter().map(|r| r.as_bytes()));
        asked.sort_unstable();
        asked.dedup();
        let cached = self.cached(&rows::playlists(self.user), mode, &asked)?;
        let hashes: Vec<u64> = {
            let mut h = vec![0; playlists.len()];
            for &i in &sorted {
                h[i] = rows::playlist_hash(&playlists[i]);
            }
            h
        };
        let legacy = !self.hashes_v2;
        let (found, gone) = join(
            playlists.len(),
            &sorted,
            |i| playlists[i].id.as_str(),
            &cached,
            |i, stored| {
                let Some(mark) = decode_mark(stored) else {
                    return Found::Changed;
                };
                let p = &playlists[i];
                let same_snapshot = p.snapshot_id.is_some() && p.snapshot_id == mark.snapshot_id;
                if mark.hash == hashes[i] {
                    Found::Same
                } else if legacy && mark.hash == rows::legacy_hash(&**p) {
                    Found::Rehash
                } else if same_snapshot {
                    Found::Same
                } else {
                    Found::Changed
                }
            },
        );
        let mut saved = Vec::new();
        let (mut added, mut updated, mut rehash) = (Vec::new(), Vec::new(), Vec::new());
        for i in groups.in_input_order(|run| run[run.len() - 1]) {
            let p = &playlists[i];
            let r = PlaylistRef {
                id: p.id.clone(),
                hash: hashes[i],
                snapshot_id: p.snapshot_id.clone(),
            };
            match found[i] {
                Some(Found::New) => added.push(r),
                Some(Found::Changed) => updated.push(r),
                Some(Found::Rehash) => {
                    rehash.push(r);
                    continue;
                }
                Some(Found::Same) | None => continue,
            }
            saved.push(Arc::clone(p));
        }
        plan.out.added.playlists = added.len() as u64;
        plan.out.updated.playlists = updated.len() as u64;
        let gone: Vec<String> = match mode {
            Mode::Replace => gone,
            Mode::Merge => {
                let wanted: std::collections::BTreeSet<&str> =
                    sorted.iter().map(|&i| playlists[i].id.as_str()).collect();
                let held: std::collections::BTreeSet<&[u8]> = cached.iter().map(|(k, _)| k.as_slice()).collect();
                let mut r: Vec<&str> = removed.iter().map(String::as_str).collect();
                r.sort_unstable();
                r.dedup();
                r.into_iter()
                    .filter(|id| held.contains(id.as_bytes()) && !wanted.contains(id))
                    .map(str::to_string)
                    .collect()
            }
        };
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
        Ok(rehash)
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
