//! LibraryCache against a plain in-memory model: random sequences of ingest / sync / merge /
//! clear over a few users, run through the real engine on a real sled store. After every step
//! the action's answer (or refusal) and every query agree with the model; at the end a rebuild
//! from the log reproduces the projections byte for byte and the queries still agree.

use crate::common;

use chrono::{DateTime, Utc};
use common::{dump, fresh_engine};
use librarycache::engine::Engine;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

const USERS: [&str; 3] = ["user:1", "user:2", "user:3"];
const TRACKS: usize = 8;
const PLAYLISTS: usize = 4;

fn track_id(i: usize) -> String {
    format!("t:{i}")
}

fn playlist_id(i: usize) -> String {
    format!("pl:{i}")
}

/// A handful of instants, so equal times (ties) are common.
fn instant(i: u8) -> String {
    format!("2025-01-0{}T00:00:00Z", 1 + i % 4)
}

fn parse(t: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(t).expect("time").with_timezone(&Utc)
}

// ---------------------------------------------------------------- the inputs

#[derive(Debug, Clone)]
struct Track {
    id: usize,
    title: Option<&'static str>,
}

#[derive(Debug, Clone)]
struct Like {
    track: usize,
    at: Option<u8>,
}

#[derive(Debug, Clone)]
struct Play {
    track: usize,
    at: u8,
}

#[derive(Debug, Clone)]
struct Playlist {
    id: usize,
    name: &'static str,
    snapshot: Option<&'static str>,
    entries: Vec<usize>,
}

#[derive(Debug, Clone, Default)]
struct Library {
    tracks: Option<Vec<Track>>,
    likes: Option<Vec<Like>>,
    plays: Option<Vec<Play>>,
    playlists: Option<Vec<Playlist>>,
    unlikes: Option<Vec<usize>>,
    removed_playlists: Option<Vec<usize>>,
}

#[derive(Debug, Clone)]
enum Op {
    Ingest(usize, Library),
    Sync(usize, Library),
    Merge(usize, Library),
    Clear(usize),
}

fn track_json(t: &Track) -> Value {
    match t.title {
        Some(title) => json!({"id": track_id(t.id), "title": title}),
        None => json!({"id": track_id(t.id)}),
    }
}

fn playlist_json(p: &Playlist) -> Value {
    let mut v = json!({
        "id": playlist_id(p.id),
        "name": p.name,
        "entries": p.entries.iter().map(|e| track_id(*e)).collect::<Vec<_>>(),
    });
    if let Some(s) = p.snapshot {
        v["snapshotId"] = json!(s);
    }
    v
}

fn input(user: usize, lib: &Library) -> Value {
    let mut v = json!({"userId": USERS[user]});
    if let Some(tracks) = &lib.tracks {
        v["tracks"] = tracks.iter().map(track_json).collect();
    }
    if let Some(likes) = &lib.likes {
        v["likes"] = likes
            .iter()
            .map(|l| match l.at {
                Some(at) => json!({"trackId": track_id(l.track), "likedAt": instant(at)}),
                None => json!({"trackId": track_id(l.track)}),
            })
            .collect();
    }
    if let Some(plays) = &lib.plays {
        v["plays"] = plays
            .iter()
            .map(|p| json!({"trackId": track_id(p.track), "playedAt": instant(p.at)}))
            .collect();
    }
    if let Some(playlists) = &lib.playlists {
        v["playlists"] = playlists.iter().map(playlist_json).collect();
    }
    if let Some(unlikes) = &lib.unlikes {
        v["unlikes"] = unlikes.iter().map(|t| track_id(*t)).collect();
    }
    if let Some(removed) = &lib.removed_playlists {
        v["removedPlaylists"] = removed.iter().map(|p| playlist_id(*p)).collect();
    }
    v
}

fn library(merge: bool) -> impl Strategy<Value = Library> {
    let track =
        (0..TRACKS, prop::option::of(prop::sample::select(vec!["x", "y"]))).prop_map(|(id, title)| Track { id, title });
    let like = (0..TRACKS, prop::option::weighted(0.85, 0u8..4)).prop_map(|(track, at)| Like { track, at });
    let play = (0..TRACKS, 0u8..4).prop_map(|(track, at)| Play { track, at });
    let playlist = (
        0..PLAYLISTS,
        prop::sample::select(vec!["Mix", "mix", "Other"]),
        prop::option::of(prop::sample::select(vec!["s1", "s2"])),
        prop::collection::vec(0..TRACKS, 0..4),
    )
        .prop_map(|(id, name, snapshot, entries)| Playlist {
            id,
            name,
            snapshot,
            entries,
        });
    let ids = |n: usize| prop::option::of(prop::collection::vec(0..n, 0..3));
    (
        prop::option::of(prop::collection::vec(track, 0..5)),
        prop::option::of(prop::collection::vec(like, 0..6)),
        prop::option::of(prop::collection::vec(play, 0..4)),
        prop::option::of(prop::collection::vec(playlist, 0..3)),
        ids(TRACKS),
        ids(PLAYLISTS),
    )
        .prop_map(move |(tracks, likes, plays, playlists, unlikes, removed)| Library {
            tracks,
            likes,
            plays,
            playlists,
            unlikes: if merge { unlikes } else { None },
            removed_playlists: if merge { removed } else { None },
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..USERS.len(), library(false)).prop_map(|(u, l)| Op::Ingest(u, l)),
        3 => (0..USERS.len(), library(false)).prop_map(|(u, l)| Op::Sync(u, l)),
        3 => (0..USERS.len(), library(true)).prop_map(|(u, l)| Op::Merge(u, l)),
        1 => (0..USERS.len()).prop_map(Op::Clear),
    ]
}

// ---------------------------------------------------------------- the model

#[derive(Debug, Clone, Default)]
struct UserLib {
    /// Track id → the metadata this user's source last gave (decides "changed").
    tracks: BTreeMap<usize, Value>,
    /// Track id → (likedAt, ord).
    likes: BTreeMap<usize, (DateTime<Utc>, u64)>,
    next_ord: u64,
    plays: BTreeSet<(DateTime<Utc>, usize)>,
    /// Playlist id → (content this user last recorded, its snapshotId).
    playlists: BTreeMap<usize, (Value, Option<&'static str>)>,
}

#[derive(Debug, Default)]
struct Model {
    users: BTreeMap<usize, UserLib>,
    /// Shared track metadata: the last saved by anyone.
    metadata: BTreeMap<usize, Value>,
    /// Shared playlist content and who holds it.
    playlists: BTreeMap<usize, (Value, BTreeSet<usize>)>,
}

#[derive(Debug, Default, PartialEq)]
struct Counts {
    added: [u64; 4],
    removed: [u64; 3],
    updated: [u64; 2],
}

fn last_wins<T: Clone>(items: &[T], key: impl Fn(&T) -> usize) -> Vec<T> {
    let mut order: Vec<usize> = Vec::new();
    let mut last: BTreeMap<usize, T> = BTreeMap::new();
    for item in items {
        let k = key(item);
        if last.insert(k, item.clone()).is_none() {
            order.push(k);
        }
    }
    order.into_iter().map(|k| last[&k].clone()).collect()
}

impl Model {
    /// Applies a refresh; `now` is the action's time (from the library's status).
    fn refresh(&mut self, user: usize, lib: &Library, replace: bool, now: DateTime<Utc>) -> Counts {
        let mut c = Counts::default();
        let mut u = self.users.remove(&user).unwrap_or_default();
        if let Some(tracks) = &lib.tracks {
            let unique = last_wins(tracks, |t| t.id);
            for t in &unique {
                let j = track_json(t);
                match u.tracks.get(&t.id) {
                    Some(old) if *old == j => continue,
                    Some(_) => c.updated[0] += 1,
                    None => c.added[0] += 1,
                }
                u.tracks.insert(t.id, j.clone());
                self.metadata.insert(t.id, j);
            }
            if replace {
                let keep: BTreeSet<usize> = unique.iter().map(|t| t.id).collect();
                let before = u.tracks.len();
                u.tracks.retain(|id, _| keep.contains(id));
                c.removed[0] = (before - u.tracks.len()) as u64;
            }
        }
        if lib.likes.is_some() || lib.unlikes.is_some() {
            // One like per track, in first-listed order; the newest time wins (undated = now).
            let mut wanted: Vec<(usize, Option<DateTime<Utc>>)> = Vec::new();
            for l in lib.likes.iter().flatten() {
                let at = l.at.map(|a| parse(&instant(a)));
                match wanted.iter_mut().find(|(t, _)| *t == l.track) {
                    Some(w) if at.unwrap_or(now) > w.1.unwrap_or(now) => w.1 = at,
                    Some(_) => {}
                    None => wanted.push((l.track, at)),
                }
            }
            let named: BTreeSet<usize> = wanted.iter().map(|(t, _)| *t).collect();
            let gone: Vec<usize> = if replace {
                u.likes.keys().filter(|t| !named.contains(t)).copied().collect()
            } else {
                lib.unlikes
                    .iter()
                    .flatten()
                    .filter(|t| u.likes.contains_key(t) && !named.contains(t))
                    .copied()
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect()
            };
            for t in &gone {
                u.likes.remove(t);
            }
            c.removed[1] = gone.len() as u64;
            for (t, at) in wanted {
                let record = match (u.likes.get(&t), at) {
                    (None, _) => {
                        c.added[1] += 1;
                        true
                    }
                    (Some((old, _)), Some(new)) => *old != new,
                    (Some(_), None) => false,
                };
                if record {
                    u.likes.insert(t, (at.unwrap_or(now), u.next_ord));
                    u.next_ord += 1;
                }
            }
        }
        if let Some(plays) = &lib.plays {
            for p in plays {
                if u.plays.insert((parse(&instant(p.at)), p.track)) {
                    c.added[2] += 1;
                }
            }
        }
        if lib.playlists.is_some() || lib.removed_playlists.is_some() {
            let unique = last_wins(lib.playlists.as_deref().unwrap_or_default(), |p| p.id);
            let named: BTreeSet<usize> = unique.iter().map(|p| p.id).collect();
            let gone: Vec<usize> = if replace {
                u.playlists.keys().filter(|p| !named.contains(p)).copied().collect()
            } else {
                lib.removed_playlists
                    .iter()
                    .flatten()
                    .filter(|p| u.playlists.contains_key(p) && !named.contains(p))
                    .copied()
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect()
            };
            for p in &gone {
                u.playlists.remove(p);
                self.release(*p, user);
            }
            c.removed[2] = gone.len() as u64;
            for p in &unique {
                let j = playlist_json(p);
                match u.playlists.get(&p.id) {
                    Some((old, snap)) => {
                        if (p.snapshot.is_some() && p.snapshot == *snap) || *old == j {
                            continue;
                        }
                        c.updated[1] += 1;
                    }
                    None => c.added[3] += 1,
                }
                u.playlists.insert(p.id, (j.clone(), p.snapshot));
                let holders = self.playlists.remove(&p.id).map(|(_, h)| h).unwrap_or_default();
                let mut holders = holders;
                holders.insert(user);
                self.playlists.insert(p.id, (j, holders));
            }
        }
        self.users.insert(user, u);
        c
    }

    fn release(&mut self, playlist: usize, user: usize) {
        if let Some((_, holders)) = self.playlists.get_mut(&playlist) {
            holders.remove(&user);
            if holders.is_empty() {
                self.playlists.remove(&playlist);
            }
        }
    }

    fn clear(&mut self, user: usize) {
        if let Some(u) = self.users.remove(&user) {
            for p in u.playlists.keys() {
                self.release(*p, user);
            }
        }
    }
}

// ---------------------------------------------------------------- checking

fn call(engine: &Engine, action: &str, input: Value) -> Result<Value, String> {
    engine.invoke("LibraryCache", action, input).result.map_err(|e| e.code)
}

fn counts(out: &Value) -> Counts {
    let n = |v: &Value| v.as_u64().expect("a count");
    Counts {
        added: ["tracks", "likes", "plays", "playlists"].map(|k| n(&out["added"][k])),
        removed: ["tracks", "likes", "playlists"].map(|k| n(&out["removed"][k])),
        updated: ["tracks", "playlists"].map(|k| n(&out["updated"][k])),
    }
}

/// The time the user's last refresh was made at (the time undated likes were stamped with).
fn last_refresh(engine: &Engine, user: usize) -> DateTime<Utc> {
    let status = call(engine, "_getStatus", json!({"userId": USERS[user]})).expect("status");
    parse(status["syncedAt"].as_str().expect("syncedAt"))
}

fn step(engine: &Engine, model: &mut Model, op: &Op) -> Result<(), TestCaseError> {
    match op {
        Op::Ingest(user, lib) | Op::Sync(user, lib) | Op::Merge(user, lib) => {
            let (action, must_exist, replace) = match op {
                Op::Ingest(..) => ("ingest", false, true),
                Op::Sync(..) => ("sync", true, true),
                _ => ("merge", true, false),
            };
            let answer = call(engine, action, input(*user, lib));
            let exists = model.users.contains_key(user);
            if exists != must_exist {
                let want = if exists { "ALREADY_INGESTED" } else { "USER_NOT_FOUND" };
                prop_assert_eq!(answer, Err(want.to_string()), "{} {:?}", action, lib);
                return Ok(());
            }
            let out = answer.map_err(|code| TestCaseError::fail(format!("{action} refused: {code}")))?;
            let now = last_refresh(engine, *user);
            let expected = model.refresh(*user, lib, replace, now);
            prop_assert_eq!(counts(&out), expected, "{} answered {}", action, out);
        }
        Op::Clear(user) => {
            let answer = call(engine, "clear", json!({"userId": USERS[*user]}));
            if model.users.contains_key(user) {
                prop_assert_eq!(answer, Ok(json!({"userId": USERS[*user]})));
                model.clear(*user);
            } else {
                prop_assert_eq!(answer, Err("USER_NOT_FOUND".to_string()));
            }
        }
    }
    Ok(())
}

/// Every query agrees with the model.
fn agree(engine: &Engine, model: &Model) -> Result<(), TestCaseError> {
    for (i, name) in USERS.iter().enumerate() {
        let user = json!({"userId": name});
        let Some(u) = model.users.get(&i) else {
            for q in ["_getLiked", "_getTracks", "_getPlays", "_getPlaylists", "_getStatus"] {
                prop_assert_eq!(
                    call(engine, q, user.clone()),
                    Err("USER_NOT_FOUND".to_string()),
                    "{}",
                    q
                );
            }
            continue;
        };
        let mut likes: Vec<(&usize, &(DateTime<Utc>, u64))> = u.likes.iter().collect();
        likes.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.1 .1.cmp(&b.1 .1)));
        let liked: Vec<String> = likes.iter().map(|(t, _)| track_id(**t)).collect();
        prop_assert_eq!(
            call(engine, "_getLiked", user.clone()),
            Ok(json!({"trackIds": liked})),
            "{}",
            name
        );

        // Ordered by id (single-digit ids: numeric order is byte order).
        let tracks: Vec<Value> = u
            .tracks
            .keys()
            .map(|t| model.metadata.get(t).cloned().unwrap_or(json!({"id": track_id(*t)})))
            .collect();
        prop_assert_eq!(
            call(engine, "_getTracks", user.clone()),
            Ok(json!({"tracks": tracks, "total": u.tracks.len()})),
            "{}",
            name
        );

        let mut plays: Vec<&(DateTime<Utc>, usize)> = u.plays.iter().collect();
        plays.sort_by(|a, b| b.0.cmp(&a.0).then(track_id(a.1).cmp(&track_id(b.1))));
        let plays: Vec<Value> = plays
            .iter()
            .map(|(at, t)| {
                json!({"trackId": track_id(*t), "playedAt": at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)})
            })
            .collect();
        prop_assert_eq!(
            call(engine, "_getPlays", user.clone()),
            Ok(json!({"plays": plays})),
            "{}",
            name
        );

        let summaries: Vec<Value> = u
            .playlists
            .keys()
            .map(|p| {
                let content = &model.playlists[p].0;
                let mut s = json!({
                    "id": content["id"],
                    "name": content["name"],
                    "trackCount": content["entries"].as_array().map_or(0, Vec::len),
                });
                if let Some(snap) = content.get("snapshotId") {
                    s["snapshotId"] = snap.clone();
                }
                s
            })
            .collect();
        prop_assert_eq!(
            call(engine, "_getPlaylists", user.clone()),
            Ok(json!({"playlists": summaries})),
            "{}",
            name
        );
        // `_resolvePlaylist`: an exact id, else every playlist of that name, any case (names
        // are shared content, so another user's sync renames them too).
        for wanted in ["mix", "MIX", "Other", "nothing", "pl:0", "pl:3"] {
            let exact: Vec<Value> = summaries.iter().filter(|s| s["id"] == wanted).cloned().collect();
            let expected = if exact.is_empty() {
                let lower = wanted.to_lowercase();
                summaries
                    .iter()
                    .filter(|s| s["name"].as_str().map(str::to_lowercase).as_deref() == Some(lower.as_str()))
                    .cloned()
                    .collect()
            } else {
                exact
            };
            prop_assert_eq!(
                call(engine, "_resolvePlaylist", json!({"userId": name, "nameOrUri": wanted})),
                Ok(json!({"playlists": expected})),
                "{} {}",
                name,
                wanted
            );
        }

        let status = call(engine, "_getStatus", user.clone()).map_err(TestCaseError::fail)?;
        for (field, n) in [
            ("tracks", u.tracks.len()),
            ("likes", u.likes.len()),
            ("plays", u.plays.len()),
            ("playlists", u.playlists.len()),
        ] {
            prop_assert_eq!(
                status[field].as_u64(),
                Some(n as u64),
                "{} {} in {}",
                name,
                field,
                status
            );
        }
    }
    for p in 0..PLAYLISTS {
        let answer = call(engine, "_getPlaylist", json!({"playlistId": playlist_id(p)}));
        match model.playlists.get(&p) {
            Some((content, _)) => {
                let out = answer.map_err(TestCaseError::fail)?;
                prop_assert_eq!(&out["entries"], &content["entries"], "{}", playlist_id(p));
                prop_assert_eq!(&out["name"], &content["name"], "{}", playlist_id(p));
            }
            None => prop_assert_eq!(answer, Err("PLAYLIST_NOT_FOUND".to_string()), "{}", playlist_id(p)),
        }
    }
    for t in 0..TRACKS {
        let answer = call(engine, "_getTrack", json!({"trackId": track_id(t)}));
        match model.metadata.get(&t) {
            Some(meta) => prop_assert_eq!(answer, Ok(meta.clone()), "{}", track_id(t)),
            None => prop_assert_eq!(answer, Err("TRACK_NOT_FOUND".to_string()), "{}", track_id(t)),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(48),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn library_cache_agrees_with_a_plain_model(ops in prop::collection::vec(op(), 1..24)) {
        let (_dir, engine) = fresh_engine();
        let mut model = Model::default();
        for op in &ops {
            step(&engine, &mut model, op)?;
            agree(&engine, &model)?;
        }
        let live = dump(&engine);
        engine.rebuild().map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(dump(&engine) == live, "a rebuild from the log differs from the live projections");
        agree(&engine, &model)?;
    }
}
