//! From what the export holds and what the cache holds to LibraryCache's input: track ids for
//! the `StreamingHistory` rows (`names`), the plays not yet known (`plays`), the liked songs, the
//! playlists under ids of their own, and metadata for the tracks the user's library lacks.
//!
//! The export has no playlist ids: a playlist gets `spotify-export:{userId}:playlist:{name}`
//! (`#2`, `#3`… for a second playlist of the same name). A playlist the user's library already
//! holds under another id with the same name was read from Spotify itself, which is at least as
//! recent as the export: it is kept as it is and the export's copy is left out.

use super::cached::Cached;
use super::formats::{Export, Heard, Item};
use super::names::{self, Names};
use super::plays::{Origin, Seen, When};
use concept_core::time::format_rfc3339;
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};

/// The prefix of the playlist ids the import gives.
pub const PLAYLIST_PREFIX: &str = "spotify-export:";
/// The most characters of a playlist's name kept in its id.
const MAX_NAME_IN_ID: usize = 200;

/// LibraryCache's input and what deciding it found.
#[derive(Debug)]
pub struct Plan {
    /// `{userId, tracks, likes, plays, playlists}`.
    pub input: Value,
    pub counts: PlanCounts,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PlanCounts {
    /// New plays, to merge (besides those replacing cached ones).
    pub plays: u64,
    /// Plays the cache already holds.
    pub already_cached: u64,
    /// Plays the export holds more than once (e.g. in both history formats).
    pub repeated: u64,
    /// `StreamingHistory` plays matched to a known track by artist and title.
    pub by_name: u64,
    /// `StreamingHistory` plays of a track only known by name (a derived id).
    pub derived: u64,
    /// Liked songs in the export.
    pub likes: u64,
    /// Playlists to merge.
    pub playlists: u64,
    /// Playlists left out: the library holds one of that name read from Spotify.
    pub playlists_kept: u64,
    /// Cached plays to the minute replaced by the export's record of them to the second.
    pub precise: u64,
}

/// Decides the input. `metadata` answers the shared metadata of a track outside the user's
/// library (so the export's sparser names never replace it).
pub fn plan(
    user: &str,
    export: &Export,
    cached: &Cached,
    metadata: &dyn Fn(&str) -> Option<Map<String, Value>>,
) -> Plan {
    let mut counts = PlanCounts::default();
    let mut names = Names::default();
    let mut catalog: HashMap<String, Item> = HashMap::new();
    for item in &export.items {
        names.add(&item.id, item.artist.as_deref(), item.title.as_deref());
        catalog.entry(item.id.clone()).or_insert_with(|| item.clone());
    }
    for (id, meta) in &cached.tracks {
        names.add(id, text(meta, "artist"), text(meta, "title"));
    }
    // Every name is added before any song is asked for: a later name could join two songs.
    let mut heard = Vec::with_capacity(export.plays.len());
    for p in &export.plays {
        let id = match &p.heard {
            Heard::Uri(uri) => uri.clone(),
            Heard::Name { artist, title } => {
                let id = match names.resolve(artist, title) {
                    Some(id) => id.to_string(),
                    None => {
                        let id = names::derived(artist, title);
                        names.add(&id, Some(artist), Some(title));
                        catalog.entry(id.clone()).or_insert_with(|| Item {
                            id: id.clone(),
                            title: Some(title.clone()),
                            artist: Some(artist.clone()),
                            album: None,
                            kind: None,
                        });
                        id
                    }
                };
                if id.starts_with(names::DERIVED_PREFIX) {
                    counts.derived += 1;
                } else {
                    counts.by_name += 1;
                }
                id
            }
        };
        heard.push((
            id,
            When {
                at: p.at,
                minute: p.minute,
            },
        ));
    }
    let mut looked_up: HashMap<String, Option<Map<String, Value>>> = HashMap::new();
    for (id, _) in &cached.plays {
        if !cached.tracks.contains_key(id) && !catalog.contains_key(id) && !looked_up.contains_key(id) {
            let meta = metadata(id);
            if let Some(m) = &meta {
                names.add(id, text(m, "artist"), text(m, "title"));
            }
            looked_up.insert(id.clone(), meta);
        }
    }

    let mut seen = Seen::default();
    for (n, (id, at)) in cached.plays.iter().enumerate() {
        let song = names.song(id);
        seen.insert(song, When::cached(*at), Origin::Cache(n));
    }
    // Precise records first, so a play in both history formats keeps its precise time — also
    // when the record to the minute came in an earlier import (or a track known only by name
    // then): that cached play is replaced by the precise one.
    heard.sort_by_key(|(_, when)| when.minute);
    let mut plays = Vec::new();
    let mut replaced = Vec::new();
    for (id, when) in heard {
        let song = names.song(&id);
        match seen.find(song, when) {
            Some(Origin::Cache(n))
                if !when.minute && seen.is_minute(song, Origin::Cache(n)) && replaceable(&cached.plays[n].0) =>
            {
                seen.remove(song, Origin::Cache(n));
                seen.insert(song, when, Origin::Export);
                replaced.push(cached.plays[n].clone());
                counts.precise += 1;
                plays.push((id, when.at));
            }
            Some(Origin::Cache(_)) => counts.already_cached += 1,
            Some(Origin::Export) => counts.repeated += 1,
            None => {
                seen.insert(song, when, Origin::Export);
                plays.push((id, when.at));
                counts.plays += 1;
            }
        }
    }

    let mut liked = HashSet::new();
    let likes: Vec<&String> = export.likes.iter().filter(|id| liked.insert(id.as_str())).collect();
    counts.likes = likes.len() as u64;

    let playlists = playlists(user, export, cached, &mut counts);

    // Tracks: every one referred to that the user's library does not hold yet.
    let mut wanted: Vec<&str> = likes.iter().map(|s| s.as_str()).collect();
    wanted.extend(plays.iter().map(|(id, _)| id.as_str()));
    for p in &playlists {
        wanted.extend(p["entries"].as_array().into_iter().flatten().filter_map(Value::as_str));
    }
    let mut sent = HashSet::new();
    let mut tracks = Vec::new();
    for id in wanted {
        if cached.tracks.contains_key(id) || !sent.insert(id) {
            continue;
        }
        let known = match looked_up.get(id) {
            Some(meta) => meta.clone(),
            None => metadata(id),
        };
        match (known, catalog.get(id)) {
            (Some(meta), _) => tracks.push(Value::Object(meta)),
            (None, Some(item)) => tracks.push(track_of(item)),
            (None, None) => tracks.push(json!({ "id": id })),
        }
    }

    let play =
        |(id, at): &(String, chrono::DateTime<chrono::Utc>)| json!({"trackId": id, "playedAt": format_rfc3339(at)});
    let mut input = json!({
        "userId": user,
        "tracks": tracks,
        "likes": likes.iter().map(|id| json!({ "trackId": id })).collect::<Vec<_>>(),
        "plays": plays.iter().map(play).collect::<Vec<_>>(),
        "playlists": playlists,
    });
    // Only a cached library has plays to replace (and only a merge removes).
    if !replaced.is_empty() {
        input["removedPlays"] = replaced.iter().map(play).collect();
    }
    Plan { input, counts }
}

/// The export's playlists under their ids, leaving out exact repeats and those Spotify's own
/// copy stands for.
fn playlists(user: &str, export: &Export, cached: &Cached, counts: &mut PlanCounts) -> Vec<Value> {
    let live: HashSet<&str> = cached
        .playlists
        .iter()
        .filter(|(id, _)| !id.starts_with(PLAYLIST_PREFIX))
        .map(|(_, name)| name.as_str())
        .collect();
    let mut seen_content = HashSet::new();
    let mut occurrences: HashMap<&str, usize> = HashMap::new();
    let mut out = Vec::new();
    for p in &export.playlists {
        if !seen_content.insert((&p.name, &p.entries)) {
            continue;
        }
        if live.contains(p.name.as_str()) {
            counts.playlists_kept += 1;
            continue;
        }
        let n = occurrences.entry(&p.name).or_default();
        *n += 1;
        let mut playlist = json!({
            "id": playlist_id(user, &p.name, *n),
            "name": p.name,
            "entries": p.entries,
        });
        if let Some(date) = &p.last_modified {
            playlist["lastModifiedDate"] = json!(date);
        }
        out.push(playlist);
    }
    counts.playlists = out.len() as u64;
    out
}

/// Whether a cached play of `id` to the minute may give way to the export's precise record of
/// it: a play of a Spotify id or of a track known only by name (what this import, or an earlier
/// one, recorded), never another source's.
fn replaceable(id: &str) -> bool {
    id.starts_with("spotify:") || names::is_derived(id)
}

/// A text field of track metadata.
fn text<'m>(meta: &'m Map<String, Value>, key: &str) -> Option<&'m str> {
    meta.get(key).and_then(Value::as_str)
}

/// `spotify-export:{user}:playlist:{name}`, `#n` for the n-th playlist of that name (n > 1).
fn playlist_id(user: &str, name: &str, n: usize) -> String {
    let name: String = name
        .chars()
        .take(MAX_NAME_IN_ID)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut id = format!("{PLAYLIST_PREFIX}{user}:playlist:{name}");
    if n > 1 {
        id.push_str(&format!("#{n}"));
    }
    id
}

/// An item as LibraryCache track metadata (as SpotifySource writes it: `uri` for Spotify's own
/// items, `kind` for episodes and local files).
fn track_of(item: &Item) -> Value {
    let mut t = Map::new();
    t.insert("id".into(), json!(item.id));
    for (key, value) in [("title", &item.title), ("artist", &item.artist), ("album", &item.album)] {
        if let Some(v) = value {
            t.insert(key.into(), json!(v));
        }
    }
    if item.id.starts_with("spotify:") {
        t.insert("uri".into(), json!(item.id));
    }
    if let Some(kind) = item.kind {
        t.insert("kind".into(), json!(kind));
    }
    Value::Object(t)
}

#[cfg(test)]
mod tests {
    use super::super::formats::Play;
    use super::*;
    use concept_core::time::parse_rfc3339;

    fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
        parse_rfc3339(s).unwrap()
    }

    #[test]
    fn history_rows_resolve_by_name_and_plays_in_both_formats_count_once() {
        let export = Export {
            items: vec![Item {
                id: "spotify:track:1".into(),
                title: Some("Song".into()),
                artist: Some("Band".into()),
                album: None,
                kind: None,
            }],
            plays: vec![
                Play {
                    heard: Heard::Name {
                        artist: "band".into(),
                        title: "song".into(),
                    },
                    at: at("2021-03-04T12:34:00Z"),
                    minute: true,
                },
                Play {
                    heard: Heard::Uri("spotify:track:1".into()),
                    at: at("2021-03-04T12:34:41Z"),
                    minute: false,
                },
                Play {
                    heard: Heard::Name {
                        artist: "Other".into(),
                        title: "Tune".into(),
                    },
                    at: at("2021-03-04T12:40:00Z"),
                    minute: true,
                },
            ],
            ..Export::default()
        };
        let cached = Cached {
            exists: true,
            plays: vec![("spotify-export:track:other:tune".into(), at("2021-03-04T12:40:00Z"))],
            ..Cached::default()
        };
        let plan = plan("u", &export, &cached, &|_| None);
        assert_eq!(
            plan.input["plays"],
            json!([{"trackId": "spotify:track:1", "playedAt": "2021-03-04T12:34:41Z"}])
        );
        assert_eq!((plan.counts.by_name, plan.counts.derived), (1, 1));
        assert_eq!((plan.counts.repeated, plan.counts.already_cached), (1, 1));
        assert_eq!(
            plan.input["tracks"],
            json!([{"id": "spotify:track:1", "title": "Song", "artist": "Band", "uri": "spotify:track:1"}])
        );
    }

    #[test]
    fn playlists_get_ids_of_their_own_unless_spotify_s_copy_is_cached() {
        let p = |name: &str, entries: &[&str]| super::super::formats::ExportPlaylist {
            name: name.into(),
            last_modified: None,
            entries: entries.iter().map(|s| s.to_string()).collect(),
        };
        let export = Export {
            playlists: vec![p("Mix", &["a"]), p("Mix", &["b"]), p("Mix", &["a"]), p("Live", &["c"])],
            ..Export::default()
        };
        let cached = Cached {
            exists: true,
            playlists: vec![("spotify:playlist:9".into(), "Live".into())],
            ..Cached::default()
        };
        let plan = plan("user:a", &export, &cached, &|_| None);
        let ids: Vec<&str> = plan.input["playlists"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            [
                "spotify-export:user:a:playlist:Mix",
                "spotify-export:user:a:playlist:Mix#2"
            ]
        );
        assert_eq!((plan.counts.playlists, plan.counts.playlists_kept), (2, 1));
    }
}
