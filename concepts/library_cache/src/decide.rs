//! The actions: read the user's projections, check preconditions, and compute the smallest
//! events that turn the cached library into the one the input describes.
//!
//! The input is borrowed (the engine decodes it once and may run the action again after losing
//! a race); tracks and playlists go into events as shared `Arc`s, never copied. A complete read
//! is compared with the cached collection by a merge join: the input's ids sorted, against the
//! map's entries as they are stored (in id order) — no hash map of the whole library.

use crate::events::{chunked, LibraryEvent, LikeFact, PlayFact, PlaylistRef, RefreshKind, TrackRef, HASH_VERSION};
use crate::model::{ChangeOutput, LibraryInput, Like, MergeInput, Play, Playlist, RekeyNamedInput, Track};
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
    removed_tracks: Option<&'a [String]>,
    removed_plays: Option<&'a [Play]>,
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
        removed_tracks: None,
        removed_plays: None,
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
        removed_tracks: input.removed_tracks.as_deref(),
        removed_plays: input.removed_plays.as_deref(),
    };
    refresh(ctx, view, RefreshKind::Merge, delta)
}

/// `touch`: the library was checked against its source and found current — the one change is
/// the time of the last sync (so it is no longer stale), recorded as a refresh.
pub fn touch(view: &dyn ProjectionRead, user: &str) -> Result<(u64, Plan), ActionError> {
    validate::id("userId", user)?;
    rows::load_meta(view, user)?.ok_or_else(|| user_not_found(user))?;
    let plan = Plan {
        events: vec![LibraryEvent::Refreshed {
            kind: RefreshKind::Touch,
        }],
        out: ChangeOutput::default(),
    };
    finish(view, user, plan)
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
    let mode = if matches!(kind, RefreshKind::Merge | RefreshKind::Rekey) {
        Mode::Merge
    } else {
        Mode::Replace
    };
    state.plan(ctx, &mut plan, mode, &input)?;
    // An action that changes nothing records nothing: no event, and the version (and
    // `syncedAt`) as they were. Renewed hashes alone change nothing the library answers: they
    // are recorded with the next change.
    let unchanged = plan.events.iter().all(|e| matches!(e, LibraryEvent::Rehashed { .. }));
    if kind != RefreshKind::Ingest && unchanged {
        plan.events.clear();
        return finish(view, user, plan);
    }
    plan.events.push(LibraryEvent::Refreshed { kind });
    finish(view, user, plan)
}

/// What `rekeyNamed` found to move, besides the planned merge.
#[derive(Debug, Default)]
pub struct Rekeyed {
    /// Tracks known only by name that take a namesake's id.
    pub tracks: u64,
    /// Their plays and likes.
    pub plays: u64,
    pub likes: u64,
}

/// `rekeyNamed`: every track of the user's library known only by name — an id beginning with
/// `prefix`, in the user's tracks, likes or plays, whose shared metadata names its artist and
/// title — that has a namesake among the user's other tracks (`concept_core::track_name`'s
/// rule; the smallest id of several) takes the namesake's id: its plays and like move there (a
/// play the namesake has at that time already, or a like it has, is kept as it is) and it
/// leaves the user's tracks. Planned as a merge of those moves; nothing to move appends nothing.
pub fn rekey_named(
    ctx: &ActionCtx,
    view: &dyn ProjectionRead,
    input: &RekeyNamedInput,
) -> Result<(u64, Plan, Rekeyed), ActionError> {
    use std::collections::{BTreeMap, BTreeSet, HashMap};
    validate::id("userId", &input.user_id)?;
    validate::id("prefix", &input.prefix)?;
    let (user, prefix) = (input.user_id.as_str(), input.prefix.as_bytes());
    rows::load_meta(view, user)?.ok_or_else(|| user_not_found(user))?;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();

    // The ids known only by name: in the user's tracks and likes (ranges of keys), and plays.
    let with_prefix = |map: &ChunkedMap| -> Result<Vec<(String, Vec<u8>)>, ActionError> {
        let mut out = Vec::new();
        let mut from = prefix.to_vec();
        loop {
            let rows = map.range_from(view, &from, 1024)?;
            let done = rows.len() < 1024;
            for (k, v) in rows {
                if !k.starts_with(prefix) {
                    return Ok(out);
                }
                from = k.clone();
                from.push(0);
                out.push((text(&k), v));
            }
            if done {
                return Ok(out);
            }
        }
    };
    let held: BTreeSet<String> = with_prefix(&rows::tracks(user))?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let liked: BTreeMap<String, Vec<u8>> = with_prefix(&rows::like_index(user))?.into_iter().collect();
    let mut played: Vec<(String, DateTime<Utc>)> = Vec::new();
    rows::plays(user).for_each(view, |k, _| {
        if k.len() > 8 && k[8..].starts_with(prefix) {
            played.push((text(&k[8..]), rows::time_of(k)));
        }
        Ok(())
    })?;
    let named: BTreeSet<&str> = held
        .iter()
        .chain(liked.keys())
        .map(String::as_str)
        .chain(played.iter().map(|(id, _)| id.as_str()))
        .collect();
    if named.is_empty() {
        let (expected, plan) = empty_plan(user, view)?;
        return Ok((expected, plan, Rekeyed::default()));
    }

    // Their names, then the namesakes among the user's other tracks (in id order: the first
    // found is the smallest).
    #[derive(serde::Deserialize)]
    struct Names {
        artist: Option<String>,
        title: Option<String>,
    }
    let names_of = |bytes: &[u8]| -> Option<Vec<String>> {
        let n: Names = serde_json::from_slice(bytes).ok()?;
        Some(concept_core::track_name::name_keys(&n.artist?, &n.title?))
    };
    let shared = rows::shared_tracks();
    let named_ids: Vec<&str> = named.iter().copied().collect();
    let keys: Vec<&[u8]> = named_ids.iter().map(|id| id.as_bytes()).collect();
    let mut wanted: HashMap<String, Option<String>> = HashMap::new();
    let mut keys_of: Vec<(&str, Vec<String>)> = Vec::new();
    for (id, meta) in named_ids.iter().zip(shared.get_many(view, &keys)?) {
        if let Some(k) = meta.as_deref().and_then(names_of) {
            for key in &k {
                wanted.insert(key.clone(), None);
            }
            keys_of.push((id, k));
        }
    }
    if !wanted.is_empty() {
        let mut others: Vec<Vec<u8>> = Vec::new();
        rows::tracks(user).for_each(view, |k, _| {
            if !k.starts_with(prefix) {
                others.push(k.to_vec());
            }
            Ok(())
        })?;
        let keys: Vec<&[u8]> = others.iter().map(Vec::as_slice).collect();
        for (id, meta) in others.iter().zip(shared.get_many(view, &keys)?) {
            for key in meta.as_deref().and_then(names_of).unwrap_or_default() {
                if let Some(slot @ None) = wanted.get_mut(&key) {
                    *slot = Some(text(id));
                }
            }
        }
    }
    let to: BTreeMap<&str, &str> = keys_of
        .iter()
        .filter_map(|(id, k)| {
            k.iter()
                .find_map(|key| wanted.get(key).and_then(Option::as_deref))
                .map(|namesake| (*id, namesake))
        })
        .collect();
    if to.is_empty() {
        let (expected, plan) = empty_plan(user, view)?;
        return Ok((expected, plan, Rekeyed::default()));
    }

    // The moves, as a merge.
    let removed_tracks: Vec<String> = held.iter().filter(|id| to.contains_key(id.as_str())).cloned().collect();
    let mut unlikes = Vec::new();
    let mut likes = Vec::new();
    let namesakes: Vec<&[u8]> = to.values().map(|id| id.as_bytes()).collect();
    let namesakes_liked: BTreeSet<&str> = to
        .values()
        .zip(rows::like_index(user).get_many(view, &namesakes)?)
        .filter(|(_, like)| like.is_some())
        .map(|(id, _)| *id)
        .collect();
    for (id, key) in &liked {
        let Some(namesake) = to.get(id.as_str()) else { continue };
        unlikes.push(id.clone());
        if !namesakes_liked.contains(namesake) {
            likes.push(Like {
                track_id: namesake.to_string(),
                liked_at: Some(format_rfc3339(&rows::time_of(key))),
            });
        }
    }
    let mut removed_plays = Vec::new();
    let mut plays = Vec::new();
    for (id, at) in &played {
        let Some(namesake) = to.get(id.as_str()) else { continue };
        let played_at = format_rfc3339(at);
        removed_plays.push(Play {
            track_id: id.clone(),
            played_at: played_at.clone(),
        });
        plays.push(Play {
            track_id: namesake.to_string(),
            played_at,
        });
    }
    let moved = Rekeyed {
        tracks: to.len() as u64,
        plays: removed_plays.len() as u64,
        likes: unlikes.len() as u64,
    };
    let delta = Delta {
        user_id: user,
        tracks: None,
        likes: Some(&likes),
        unlikes: Some(&unlikes),
        plays: Some(&plays),
        playlists: None,
        removed_playlists: None,
        removed_tracks: Some(&removed_tracks),
        removed_plays: Some(&removed_plays),
    };
    let (expected, plan) = refresh(ctx, view, RefreshKind::Rekey, delta)?;
    Ok((expected, plan, moved))
}

/// A plan of no events for `user` (an action that found nothing to do).
fn empty_plan(user: &str, view: &dyn ProjectionRead) -> Result<(u64, Plan), ActionError> {
    finish(
        view,
        user,
        Plan {
            events: Vec::new(),
            out: ChangeOutput::default(),
        },
    )
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
    for (i, id) in input.removed_tracks.iter().copied().flatten().enumerate() {
        validate::id(&format!("removedTracks[{i}]"), id)?;
    }
    for (i, p) in input.removed_plays.iter().copied().flatten().enumerate() {
        validate::id(&format!("removedPlays[{i}].trackId"), &p.track_id)?;
        validate::time(&format!("removedPlays[{i}].playedAt"), &p.played_at)?;
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

/// The items at the positions of `order` by what [`join`] found: new and changed ones (saved,
/// in order) and unchanged ones whose stored hash is only renewed; each as `make` refers to it.
struct Sorted<R, T> {
    added: Vec<R>,
    updated: Vec<R>,
    rehash: Vec<R>,
    saved: Vec<Arc<T>>,
}

impl<R, T> Sorted<R, T> {
    fn of(order: Vec<usize>, found: &[Option<Found>], items: &[Arc<T>], make: impl Fn(usize) -> R) -> Self {
        let mut sorted = Sorted {
            added: Vec::new(),
            updated: Vec::new(),
            rehash: Vec::new(),
            saved: Vec::new(),
        };
        for i in order {
            match found[i] {
                Some(Found::New) => sorted.added.push(make(i)),
                Some(Found::Changed) => sorted.updated.push(make(i)),
                Some(Found::Rehash) => {
                    sorted.rehash.push(make(i));
                    continue;
                }
                Some(Found::Same) | None => continue,
            }
            sorted.saved.push(Arc::clone(&items[i]));
        }
        sorted
    }
}

/// The ids a merge names for removal that the library holds (`cached`, sorted by id) and the
/// merge does not give again (`given`): sorted, once each.
fn named_removals<'a>(
    named: impl IntoIterator<Item = &'a str>,
    given: impl IntoIterator<Item = &'a str>,
    cached: &[(Vec<u8>, Vec<u8>)],
) -> Vec<String> {
    let given: std::collections::BTreeSet<&str> = given.into_iter().collect();
    let named: std::collections::BTreeSet<&str> = named.into_iter().collect();
    named
        .into_iter()
        .filter(|id| {
            !given.contains(id)
                && cached
                    .binary_search_by(|(k, _)| k.as_slice().cmp(id.as_bytes()))
                    .is_ok()
        })
        .map(str::to_string)
        .collect()
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
        if let Some(removed) = input.removed_tracks {
            self.plan_removed_tracks(plan, removed, input.tracks.unwrap_or_default())?;
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
        if let Some(removed) = input.removed_plays {
            self.plan_removed_plays(plan, removed, input.plays.unwrap_or_default())?;
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
        let order = groups.in_input_order(|run| run[run.len() - 1]);
        let ref_of = |i: usize| TrackRef {
            id: tracks[i].id.clone(),
            hash: hashes[i],
        };
        let Sorted {
            added,
            updated,
            rehash,
            saved,
        } = Sorted::of(order, &found, tracks, ref_of);
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
            Mode::Merge => named_removals(unlike_keys, sorted.iter().map(|&i| likes[i].track_id.as_str()), &cached),
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
        let order = groups.in_input_order(|run| run[run.len() - 1]);
        let ref_of = |i: usize| PlaylistRef {
            id: playlists[i].id.clone(),
            hash: hashes[i],
            snapshot_id: playlists[i].snapshot_id.clone(),
        };
        let Sorted {
            added,
            updated,
            rehash,
            saved,
        } = Sorted::of(order, &found, playlists, ref_of);
        plan.out.added.playlists = added.len() as u64;
        plan.out.updated.playlists = updated.len() as u64;
        let gone: Vec<String> = match mode {
            Mode::Replace => gone,
            Mode::Merge => named_removals(
                removed.iter().map(String::as_str),
                sorted.iter().map(|&i| playlists[i].id.as_str()),
                &cached,
            ),
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

impl State<'_> {
    /// A merge's `removedTracks`: those the user's library holds and the merge does not give.
    fn plan_removed_tracks(
        &mut self,
        plan: &mut Plan,
        removed: &[String],
        given: &[Arc<Track>],
    ) -> Result<(), ActionError> {
        let given: std::collections::BTreeSet<&str> = given.iter().map(|t| t.id.as_str()).collect();
        let mut ids: Vec<&str> = removed
            .iter()
            .map(String::as_str)
            .filter(|id| !given.contains(id))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        if self.fresh || ids.is_empty() {
            return Ok(());
        }
        let keys: Vec<&[u8]> = ids.iter().map(|id| id.as_bytes()).collect();
        let held = rows::tracks(self.user).get_many(self.view, &keys)?;
        let gone: Vec<String> = ids
            .into_iter()
            .zip(held)
            .filter(|(_, held)| held.is_some())
            .map(|(id, _)| id.to_string())
            .collect();
        plan.out.removed.tracks += gone.len() as u64;
        plan.events
            .extend(chunked(gone, |track_ids| LibraryEvent::TracksRemoved { track_ids }));
        Ok(())
    }

    /// A merge's `removedPlays`: those the user's library holds and the merge does not give.
    fn plan_removed_plays(&mut self, plan: &mut Plan, removed: &[Play], given: &[Play]) -> Result<(), ActionError> {
        let mut given_keys = std::collections::BTreeSet::new();
        for (i, p) in given.iter().enumerate() {
            let at = validate::time(&format!("plays[{i}].playedAt"), &p.played_at)?;
            given_keys.insert(rows::play_key(&at, &p.track_id));
        }
        let mut keyed: Vec<(Vec<u8>, PlayFact)> = Vec::with_capacity(removed.len());
        for (i, p) in removed.iter().enumerate() {
            let at = validate::time(&format!("removedPlays[{i}].playedAt"), &p.played_at)?;
            let key = rows::play_key(&at, &p.track_id);
            if !given_keys.contains(&key) {
                let fact = PlayFact {
                    track_id: p.track_id.clone(),
                    played_at: format_rfc3339(&at),
                };
                keyed.push((key, fact));
            }
        }
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        keyed.dedup_by(|b, a| a.0 == b.0);
        if self.fresh || keyed.is_empty() {
            return Ok(());
        }
        let keys: Vec<&[u8]> = keyed.iter().map(|(k, _)| k.as_slice()).collect();
        let held = rows::plays(self.user).get_many(self.view, &keys)?;
        let gone: Vec<PlayFact> = keyed
            .into_iter()
            .zip(held)
            .filter(|(_, held)| held.is_some())
            .map(|((_, fact), _)| fact)
            .collect();
        plan.out.removed.plays = gone.len() as u64;
        plan.events
            .extend(chunked(gone, |plays| LibraryEvent::PlaysRemoved { plays }));
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

#[cfg(test)]
mod tests {
    //! The merge join against plain models: [`Groups`] and [`join`] against maps and sets, and
    //! `ingest`/`sync`/`merge` of likes and tracks, decided and applied over an in-memory key
    //! space, against a model of the liked list and the tracks.

    use super::*;
    use crate::model::{GetLikedInput, GetTracksInput};
    use crate::{apply, queries, LibraryCache};
    use concept_core::memory::Memory;
    use concept_core::{Concept, EventMeta};
    use proptest::prelude::*;
    use serde_json::{json, Value};
    use std::collections::{BTreeMap, BTreeSet, HashMap};

    fn name(n: u8) -> String {
        format!("id{n:02}")
    }

    /// A finding as text (`Found` has no `Debug`: the planner never prints it).
    fn kind(found: Option<Found>) -> &'static str {
        match found {
            None => "-",
            Some(Found::New) => "new",
            Some(Found::Changed) => "changed",
            Some(Found::Same) => "same",
            Some(Found::Rehash) => "rehash",
        }
    }

    proptest! {
        /// Each id's positions form one ascending run; `last_of_each` is the last copy of each
        /// id in id order ("last one wins"), and `in_input_order` the chosen copy of each id in
        /// the order the input first names them.
        #[test]
        fn groups_find_every_copy_and_keep_the_last_of_each(ids in prop::collection::vec(0u8..12, 0..60)) {
            let names: Vec<String> = ids.iter().map(|&i| name(i)).collect();
            let groups = Groups::of(names.len(), |i| names[i].as_str());

            let mut last: BTreeMap<&str, usize> = BTreeMap::new();
            let mut first_seen: Vec<&str> = Vec::new();
            for (i, n) in names.iter().enumerate() {
                if last.insert(n.as_str(), i).is_none() {
                    first_seen.push(n.as_str());
                }
            }
            prop_assert_eq!(groups.last_of_each(), last.values().copied().collect::<Vec<_>>());
            let want: Vec<usize> = first_seen.iter().map(|n| last[n]).collect();
            prop_assert_eq!(groups.in_input_order(|run| *run.last().expect("a run is never empty")), want);

            let runs: Vec<&[usize]> = groups.runs().collect();
            prop_assert_eq!(runs.len(), last.len());
            prop_assert_eq!(runs.iter().map(|r| r.len()).sum::<usize>(), names.len());
            for run in runs {
                prop_assert!(run.windows(2).all(|w| w[0] < w[1]), "run {:?} not ascending", run);
                prop_assert!(run.iter().all(|&i| names[i] == names[run[0]]), "run {:?} mixes ids", run);
            }
        }

        /// The join of the input's last copies with the cached rows: an id not cached is new,
        /// one cached with the same value the same, with another value changed; other copies
        /// are not looked at; and what is gone is exactly the cached ids the input leaves out,
        /// in id order.
        #[test]
        fn the_merge_join_tells_new_changed_same_and_gone(
            input in prop::collection::vec((0u8..16, 0u8..3), 0..40),
            cached in prop::collection::btree_map(0u8..16, 0u8..3, 0..16),
        ) {
            let names: Vec<String> = input.iter().map(|&(i, _)| name(i)).collect();
            let values: Vec<u8> = input.iter().map(|&(_, v)| v).collect();
            let rows: Vec<(Vec<u8>, Vec<u8>)> = cached.iter().map(|(&k, &v)| (name(k).into_bytes(), vec![v])).collect();
            let groups = Groups::of(names.len(), |i| names[i].as_str());
            let sorted = groups.last_of_each();
            let (found, gone) = join(names.len(), &sorted, |i| names[i].as_str(), &rows, |i, stored| {
                if stored == [values[i]] { Found::Same } else { Found::Changed }
            });

            let last: HashMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
            for (i, n) in names.iter().enumerate() {
                let want = if last[n.as_str()] != i {
                    "-"
                } else {
                    match cached.get(&input[i].0) {
                        None => "new",
                        Some(&v) if v == values[i] => "same",
                        Some(_) => "changed",
                    }
                };
                prop_assert_eq!(kind(found[i]), want, "position {} ({})", i, n);
            }
            let named: BTreeSet<u8> = input.iter().map(|&(i, _)| i).collect();
            let want_gone: Vec<String> = cached.keys().filter(|k| !named.contains(k)).map(|&k| name(k)).collect();
            prop_assert_eq!(gone, want_gone);
        }
    }

    /// What the tests do with the in-memory key space (`concept_core::memory::Memory`): commit a
    /// plan as a store would, and read the liked list and the tracks back through the queries.
    trait Library {
        fn commit_plan(&mut self, user: &str, plan: &Plan, at: DateTime<Utc>);
        fn liked(&self, user: &str) -> Vec<String>;
        fn tracks(&self, user: &str) -> BTreeMap<String, String>;
    }

    impl Library for Memory {
        /// Applies a plan's events as one commit: each event's apply, then the maps written.
        fn commit_plan(&mut self, user: &str, plan: &Plan, at: DateTime<Utc>) {
            for event in &plan.events {
                let seq = self.next_seq();
                let meta = EventMeta {
                    seq,
                    stream: user.to_string(),
                    version: self.next_version(user),
                    kind: LibraryCache::event_kind(event).to_string(),
                    action: seq,
                    at,
                };
                apply::apply(&meta, event, self).expect("apply");
            }
            self.commit().expect("commit");
        }

        fn liked(&self, user: &str) -> Vec<String> {
            let input = GetLikedInput {
                user_id: user.to_string(),
                since: None,
                offset: None,
                limit: None,
                cursor: None,
            };
            let bytes = queries::get_liked(self, input).expect("_getLiked");
            let answer: Value = serde_json::from_slice(&bytes).expect("JSON");
            serde_json::from_value(answer["trackIds"].clone()).expect("trackIds")
        }

        /// The user's tracks: id → title.
        fn tracks(&self, user: &str) -> BTreeMap<String, String> {
            let input = GetTracksInput {
                user_id: user.to_string(),
                offset: None,
                limit: Some(1000),
            };
            let bytes = queries::get_tracks(self, input).expect("_getTracks");
            let answer: Value = serde_json::from_slice(&bytes).expect("JSON");
            answer["tracks"]
                .as_array()
                .expect("tracks")
                .iter()
                .map(|t| {
                    let id = t["id"].as_str().expect("id").to_string();
                    (id, t["title"].as_str().unwrap_or_default().to_string())
                })
                .collect()
        }
    }

    const USER: &str = "user:model";

    /// One action of the model run: a complete read (`sync`; the first is `ingest`) or a merge.
    #[derive(Debug, Clone)]
    enum Step {
        /// Likes (track, time) and tracks (id, title) of a complete read.
        Read(Vec<(u8, u16)>, Vec<(u8, u8)>),
        /// Likes, unlikes and tracks of a merge.
        Merge(Vec<(u8, u16)>, Vec<u8>, Vec<(u8, u8)>),
    }

    fn step() -> impl Strategy<Value = Step> {
        let likes = || prop::collection::vec((0u8..20, 0u16..400), 0..14);
        let tracks = || prop::collection::vec((0u8..20, 0u8..3), 0..14);
        prop_oneof![
            (likes(), tracks()).prop_map(|(l, t)| Step::Read(l, t)),
            (likes(), prop::collection::vec(0u8..20, 0..6), tracks()).prop_map(|(l, u, t)| Step::Merge(l, u, t)),
        ]
    }

    /// Times unique over the whole run (step and position in the low bits), so the liked
    /// list's order is the model's without ties, while a later step may still like a track at
    /// an earlier time than before.
    fn time(at: u16, step: usize, pos: usize) -> DateTime<Utc> {
        let secs = 1_700_000_000 + i64::from(at) * 4096 + (step as i64) * 64 + pos as i64;
        DateTime::from_timestamp(secs, 0).expect("time")
    }

    /// A step's input as JSON: `likes` (with unique times), `tracks`, and for a merge `unlikes`.
    fn input_of(step: &Step, s: usize) -> Value {
        let (likes, tracks) = match step {
            Step::Read(l, t) | Step::Merge(l, _, t) => (l, t),
        };
        let mut input = json!({
            "userId": USER,
            "likes": likes
                .iter()
                .enumerate()
                .map(|(p, &(t, at))| json!({"trackId": name(t), "likedAt": format_rfc3339(&time(at, s, p))}))
                .collect::<Vec<_>>(),
            "tracks": tracks
                .iter()
                .map(|&(t, title)| json!({"id": name(t), "title": format!("title {title}")}))
                .collect::<Vec<_>>(),
        });
        if let Step::Merge(_, unlikes, _) = step {
            input["unlikes"] = json!(unlikes.iter().map(|&u| name(u)).collect::<Vec<_>>());
        }
        input
    }

    /// Decides `step` as the `s`-th action (an ingest first) over `mem`.
    fn decide(mem: &Memory, step: &Step, s: usize, ctx: &ActionCtx) -> Result<Plan, ActionError> {
        let input = input_of(step, s);
        let plan = match step {
            _ if s == 0 => {
                let mut input = input;
                input.as_object_mut().expect("object").remove("unlikes");
                ingest(ctx, mem, &serde_json::from_value(input).expect("input"))?
            }
            Step::Read(..) => sync(ctx, mem, &serde_json::from_value(input).expect("input"))?,
            Step::Merge(..) => merge(ctx, mem, &serde_json::from_value(input).expect("input"))?,
        };
        Ok(plan.1)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Ingest, then syncs and merges, decided and applied: after each, the liked list is
        /// the model's, newest first (a complete read's likes replace it; a merge adds its likes
        /// and takes away its unlikes; a track liked twice in one input keeps its newest time),
        /// the user's tracks are the model's (the last copy of a track wins; a complete read
        /// drops the tracks it leaves out, a merge none), the counts say what was added,
        /// updated and is gone, and the same action again plans no event.
        #[test]
        fn likes_and_tracks_follow_a_plain_model(steps in prop::collection::vec(step(), 1..8)) {
            let mut mem = Memory::default();
            let mut liked: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
            let mut titles: BTreeMap<String, String> = BTreeMap::new();
            let first = ActionCtx::new(Default::default(), time(0, 0, 63));
            if let Step::Merge(..) = &steps[0] {
                let input: MergeInput = serde_json::from_value(input_of(&steps[0], 0)).expect("input");
                let refused = merge(&first, &mem, &input).err().expect("a merge before any ingest is refused");
                prop_assert_eq!(refused.code.as_str(), "USER_NOT_FOUND");
            }
            for (s, step) in steps.iter().enumerate() {
                let now = time(0, s, 63);
                let ctx = ActionCtx::new(Default::default(), now);
                let (likes, tracks, unlikes) = match step {
                    Step::Read(l, t) => (l, t, &Vec::new()),
                    Step::Merge(l, u, t) => (l, t, u),
                };
                let complete = s == 0 || matches!(step, Step::Read(..));

                // The model: each liked track's newest time among the input's copies; each
                // track's last title.
                let mut wanted: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
                for (p, &(t, at)) in likes.iter().enumerate() {
                    let at = time(at, s, p);
                    let w = wanted.entry(name(t)).or_insert(at);
                    *w = (*w).max(at);
                }
                let mut given: BTreeMap<String, String> = BTreeMap::new();
                for &(t, title) in tracks {
                    given.insert(name(t), format!("title {title}"));
                }
                let (liked_before, titles_before) = (liked.clone(), titles.clone());
                if complete {
                    liked = wanted.clone();
                    titles = given.clone();
                } else {
                    for u in unlikes {
                        if !wanted.contains_key(&name(*u)) {
                            liked.remove(&name(*u));
                        }
                    }
                    liked.extend(wanted.clone());
                    titles.extend(given.clone());
                }

                let plan = decide(&mem, step, s, &ctx).expect("decided");
                let count = |n: usize| n as u64;
                let out = &plan.out;
                prop_assert_eq!(out.added.likes, count(liked.keys().filter(|k| !liked_before.contains_key(*k)).count()), "step {}: {:?}", s, step);
                prop_assert_eq!(out.removed.likes, count(liked_before.keys().filter(|k| !liked.contains_key(*k)).count()), "step {}: {:?}", s, step);
                prop_assert_eq!(out.added.tracks, count(given.keys().filter(|k| !titles_before.contains_key(*k)).count()), "step {}: {:?}", s, step);
                prop_assert_eq!(
                    out.updated.tracks,
                    count(given.iter().filter(|(k, t)| titles_before.get(*k).is_some_and(|b| b != *t)).count()),
                    "step {}: {:?}", s, step
                );
                prop_assert_eq!(out.removed.tracks, count(titles_before.keys().filter(|k| !titles.contains_key(*k)).count()), "step {}: {:?}", s, step);
                mem.commit_plan(USER, &plan, now);

                let mut order: Vec<(&String, &DateTime<Utc>)> = liked.iter().collect();
                order.sort_by(|a, b| b.1.cmp(a.1));
                let want: Vec<String> = order.into_iter().map(|(k, _)| k.clone()).collect();
                prop_assert_eq!(mem.liked(USER), want, "step {}: {:?}", s, step);
                prop_assert_eq!(mem.tracks(USER), titles.clone(), "step {}: {:?}", s, step);

                // The same action again changes nothing and so records nothing (an ingest
                // again is refused instead).
                if s > 0 {
                    let again = decide(&mem, step, s, &ctx).expect("decided again");
                    prop_assert!(again.events.is_empty(), "step {} again: {} events", s, again.events.len());
                }
            }
        }
    }
}
