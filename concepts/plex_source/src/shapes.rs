//! Plex metadata in LibraryCache's shapes: a track (id from its `guid`, stable when the server
//! gives the item a new `ratingKey`), a playlist, Plex's epoch-second times as RFC 3339.

use crate::api::key_of;
use concept_core::time::format_rfc3339;
use serde_json::{json, Map, Value};

/// A track's id: its `guid` (e.g. `plex://track/5d07…`, or `local://…` for a track no agent
/// matched), which survives a rescan that gives the item a new `ratingKey`. Only a track
/// without a guid falls back to `plex-item:{ratingKey}` (as stable as the ratingKey).
pub fn track_id(item: &Value) -> Option<String> {
    if let Some(guid) = item["guid"].as_str().filter(|g| !g.trim().is_empty()) {
        return Some(guid.to_string());
    }
    key_of(&item["ratingKey"]).map(|k| format!("plex-item:{k}"))
}

/// Plex's epoch seconds (a number or a string of digits) as RFC 3339.
pub fn time_of(v: &Value) -> Option<String> {
    let secs = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }?;
    chrono::DateTime::from_timestamp(secs, 0).map(|t| format_rfc3339(&t))
}

/// A flag Plex may give as `true`, `1` or `"1"`.
pub fn flag(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_u64() == Some(1),
        Value::String(s) => s == "1" || s == "true",
        _ => false,
    }
}

/// A rating on Plex's 0–10 scale (10 = five stars).
pub fn rating_of(item: &Value) -> Option<f64> {
    match &item["userRating"] {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A non-empty text field of an item.
fn text<'v>(item: &'v Value, field: &str) -> Option<&'v str> {
    item[field].as_str().filter(|s| !s.trim().is_empty())
}

/// A track (`type=10` item) as LibraryCache's track metadata. The artist is the track's own
/// (`originalTitle`, which Plex sets on a compilation's tracks) when it has one, else the album
/// artist (`grandparentTitle`, "Various Artists" on a compilation), which is also kept as
/// `albumArtist`.
pub fn track_of(item: &Value) -> Option<Map<String, Value>> {
    let id = track_id(item)?;
    let mut t = Map::new();
    t.insert("id".into(), Value::String(id));
    if let Some(title) = item["title"].as_str() {
        t.insert("title".into(), json!(title));
    }
    let album_artist = text(item, "grandparentTitle");
    if let Some(artist) = text(item, "originalTitle").or(album_artist) {
        t.insert("artist".into(), json!(artist));
    }
    if let Some(album) = item["parentTitle"].as_str() {
        t.insert("album".into(), json!(album));
    }
    if let Some(album_artist) = album_artist {
        t.insert("albumArtist".into(), json!(album_artist));
    }
    if let Some(ms) = item["duration"].as_u64() {
        t.insert("durationMs".into(), json!(ms));
    }
    if let Some(year) = item["year"].as_i64().or(item["parentYear"].as_i64()) {
        t.insert("year".into(), json!(year));
    }
    let genres: Vec<&str> = item["Genre"]
        .as_array()
        .map(|g| g.iter().filter_map(|x| x["tag"].as_str()).collect())
        .unwrap_or_default();
    if !genres.is_empty() {
        t.insert("genres".into(), json!(genres));
    }
    if let Some(key) = key_of(&item["ratingKey"]) {
        t.insert("ratingKey".into(), json!(key));
    }
    if let Some(rating) = rating_of(item) {
        t.insert("userRating".into(), json!(rating));
    }
    for field in ["addedAt", "updatedAt"] {
        if let Some(at) = time_of(&item[field]) {
            t.insert(field.into(), json!(at));
        }
    }
    Some(t)
}

/// A playlist's id: its `guid` when it has one, else `plex-playlist:{ratingKey}`.
pub fn playlist_id(p: &Value) -> Option<String> {
    if let Some(guid) = p["guid"].as_str().filter(|g| !g.trim().is_empty()) {
        return Some(guid.to_string());
    }
    key_of(&p["ratingKey"]).map(|k| format!("plex-playlist:{k}"))
}

/// A listed playlist's metadata as LibraryCache's playlist (entries added by the caller).
pub fn playlist_of(id: &str, p: &Value) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), json!(id));
    m.insert("name".into(), json!(p["title"].as_str().unwrap_or_default()));
    m.insert("smart".into(), json!(flag(&p["smart"])));
    if let Some(key) = key_of(&p["ratingKey"]) {
        m.insert("ratingKey".into(), json!(key));
    }
    if let Some(summary) = p["summary"].as_str().filter(|s| !s.is_empty()) {
        m.insert("summary".into(), json!(summary));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_track_becomes_library_metadata_keyed_by_its_guid() {
        let t = track_of(&json!({
            "ratingKey": "1234", "guid": "plex://track/abc", "title": "Song", "grandparentTitle": "Artist",
            "parentTitle": "Album", "duration": 215000, "parentYear": 1999,
            "Genre": [{"tag": "Rock"}, {"tag": "Pop"}], "userRating": 8.0,
            "addedAt": 1700000000, "updatedAt": "1700000100"
        }))
        .unwrap();
        assert_eq!(
            Value::Object(t),
            json!({"id": "plex://track/abc", "title": "Song", "artist": "Artist", "album": "Album",
                   "albumArtist": "Artist", "durationMs": 215000, "year": 1999, "genres": ["Rock", "Pop"],
                   "ratingKey": "1234", "userRating": 8.0, "addedAt": "2023-11-14T22:13:20Z",
                   "updatedAt": "2023-11-14T22:15:00Z"})
        );
    }

    #[test]
    fn a_compilation_track_has_its_own_artist_and_the_album_artist_beside_it() {
        let t = track_of(&json!({
            "ratingKey": "9", "guid": "plex://track/c", "title": "Hit", "grandparentTitle": "Various Artists",
            "originalTitle": "The Band", "parentTitle": "Now 42"
        }))
        .unwrap();
        assert_eq!(
            (t["artist"].as_str(), t["albumArtist"].as_str(), t["album"].as_str()),
            (Some("The Band"), Some("Various Artists"), Some("Now 42"))
        );
        let empty =
            track_of(&json!({"guid": "plex://track/d", "grandparentTitle": "Solo", "originalTitle": " "})).unwrap();
        assert_eq!(
            empty["artist"].as_str(),
            Some("Solo"),
            "an empty originalTitle is no artist"
        );
    }

    #[test]
    fn without_a_guid_the_rating_key_names_the_track() {
        assert_eq!(track_id(&json!({"ratingKey": 7})).as_deref(), Some("plex-item:7"));
        assert_eq!(
            track_id(&json!({"guid": "", "ratingKey": "8"})).as_deref(),
            Some("plex-item:8")
        );
        assert_eq!(track_id(&json!({"title": "nothing to name it by"})), None);
    }

    #[test]
    fn flags_and_times_come_in_several_spellings() {
        assert!(flag(&json!(true)) && flag(&json!(1)) && flag(&json!("1")));
        assert!(!flag(&json!(false)) && !flag(&json!(0)) && !flag(&Value::Null));
        assert_eq!(time_of(&json!("0")).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(time_of(&json!("soon")), None);
    }
}
