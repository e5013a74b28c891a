//! A Last.fm track as LibraryCache's track. Last.fm has no stable track id, so the id is
//!
//! - `mbid:{mbid}` when the track carries a MusicBrainz recording id (a UUID), else
//! - `lastfm:track:{artist}:{title}` derived by `concept_core::track_name::derived_id`: artist
//!   and title trimmed, inner white space collapsed, lower-cased, `%` `:` and control characters
//!   written `%XX` — so the same song scrobbled by another player, in another case, is one track.
//!
//! The metadata kept: `title`, `artist`, `album`, `url` (the track's Last.fm page) and `mbid`.

use concept_core::track_name::derived_id;
use serde_json::{json, Map, Value};

/// The prefix of ids derived from artist and title.
pub const DERIVED_PREFIX: &str = "lastfm:track:";
/// The prefix of ids from a MusicBrainz recording id.
pub const MBID_PREFIX: &str = "mbid:";

/// The text of a Last.fm name field: a plain string, `{"#text": …}` (recent tracks) or
/// `{"name": …}` (loved tracks, extended answers).
fn text(v: &Value) -> Option<&str> {
    let s = match v {
        Value::String(s) => s.as_str(),
        Value::Object(o) => o.get("#text").or_else(|| o.get("name")).and_then(Value::as_str)?,
        _ => return None,
    };
    Some(s.trim()).filter(|s| !s.is_empty())
}

/// A MusicBrainz id as Last.fm gives it ("" for none): kept only when it is a UUID.
fn mbid(v: &Value) -> Option<&str> {
    let s = v.as_str()?.trim();
    let uuid = s.len() == 36
        && s.char_indices().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
    uuid.then_some(s)
}

/// The id of a track with this MusicBrainz id (if any), artist and title.
pub fn track_id(mbid: Option<&str>, artist: &str, title: &str) -> String {
    match mbid {
        Some(m) => format!("{MBID_PREFIX}{}", m.to_lowercase()),
        None => derived_id(DERIVED_PREFIX, artist, title),
    }
}

/// A Last.fm track item (recent or loved) as LibraryCache track metadata, `id` included;
/// `None` without an artist or a title.
pub fn track_of(item: &Value) -> Option<Map<String, Value>> {
    let title = text(&item["name"])?;
    let artist = text(&item["artist"])?;
    let mbid = mbid(&item["mbid"]);
    let mut t = Map::new();
    t.insert("id".into(), json!(track_id(mbid, artist, title)));
    t.insert("title".into(), json!(title));
    t.insert("artist".into(), json!(artist));
    if let Some(album) = text(&item["album"]) {
        t.insert("album".into(), json!(album));
    }
    if let Some(url) = item["url"].as_str().filter(|u| !u.is_empty()) {
        t.insert("url".into(), json!(url));
    }
    if let Some(m) = mbid {
        t.insert("mbid".into(), json!(m));
    }
    Some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_with_an_mbid_are_known_by_it_others_by_their_names() {
        let with = track_of(&json!({
            "artist": {"mbid": "", "#text": "Cher"}, "mbid": "0A2B3C4D-0000-4000-8000-000000000001",
            "album": {"mbid": "", "#text": "Believe"}, "name": "Believe", "url": "https://www.last.fm/music/Cher/_/Believe"
        }))
        .unwrap();
        assert_eq!(
            Value::Object(with),
            json!({"id": "mbid:0a2b3c4d-0000-4000-8000-000000000001", "title": "Believe", "artist": "Cher",
                   "album": "Believe", "url": "https://www.last.fm/music/Cher/_/Believe",
                   "mbid": "0A2B3C4D-0000-4000-8000-000000000001"})
        );
        let without =
            track_of(&json!({"artist": {"name": "AC/DC"}, "mbid": "", "name": "T.N.T.", "album": {"#text": ""}}))
                .unwrap();
        assert_eq!(without["id"], json!("lastfm:track:ac/dc:t.n.t."));
        assert!(!without.contains_key("album") && !without.contains_key("mbid"));
        assert_eq!(
            track_of(&json!({"artist": "Band", "name": "Song", "mbid": "not-a-uuid"})).unwrap()["id"],
            json!("lastfm:track:band:song")
        );
        assert!(track_of(&json!({"artist": {"#text": " "}, "name": "Song"})).is_none());
        assert!(track_of(&json!({"artist": {"#text": "A"}})).is_none());
    }
}
