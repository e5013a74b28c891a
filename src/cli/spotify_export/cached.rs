//! What LibraryCache already holds for the user, read through its queries: whether there is a
//! library, its tracks (with their names), its plays around the export's, its playlists — and
//! the shared metadata of any other track.

use crate::engine::Engine;
use chrono::{DateTime, Duration, Utc};
use concept_core::time::{format_rfc3339, parse_rfc3339};
use concept_core::ActionError;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// The user's cached library, as far as the import needs it.
#[derive(Debug, Default)]
pub struct Cached {
    /// The user has a cached library (the import merges; otherwise it ingests).
    pub exists: bool,
    /// The user's tracks and their metadata, by id (in order, so a name resolves the same way each time).
    pub tracks: BTreeMap<String, Map<String, Value>>,
    /// The user's plays in the window asked for.
    pub plays: Vec<(String, DateTime<Utc>)>,
    /// The user's playlists: (id, name).
    pub playlists: Vec<(String, String)>,
}

/// Plays this far outside the export's first and last are read too (the widest dedup window).
const MARGIN: Duration = Duration::minutes(2);
/// Plays asked for per page.
const PAGE: u64 = 10_000;

/// Reads the user's library; `window` is the export's first and last play.
pub fn load(
    engine: &Engine,
    user: &str,
    window: Option<(DateTime<Utc>, DateTime<Utc>)>,
) -> Result<Cached, ActionError> {
    let q = |query: &str, input: Value| engine.query("LibraryCache", query, input);
    let status = match q("_getStatus", json!({ "userId": user })) {
        Ok(status) => status,
        Err(e) if e.code == "USER_NOT_FOUND" => return Ok(Cached::default()),
        Err(e) => return Err(e),
    };
    let count = |k: &str| status[k].as_u64().unwrap_or(0);
    let mut cached = Cached {
        exists: true,
        ..Cached::default()
    };
    let tracks = q("_getTracks", json!({"userId": user, "limit": count("tracks")}))?;
    for t in tracks["tracks"].as_array().into_iter().flatten() {
        if let (Some(id), Some(meta)) = (t["id"].as_str(), t.as_object()) {
            cached.tracks.insert(id.to_string(), meta.clone());
        }
    }
    let mut window_input = window.map(|(first, last)| {
        json!({"userId": user, "since": format_rfc3339(&(first - MARGIN)),
               "until": format_rfc3339(&(last + MARGIN)), "limit": PAGE})
    });
    // Page by page, following the cursor: plays sharing a time are neither skipped nor repeated.
    while let Some(input) = window_input.take() {
        let plays = q("_getPlays", input.clone())?;
        for p in plays["plays"].as_array().into_iter().flatten() {
            if let (Some(id), Some(at)) = (p["trackId"].as_str(), p["playedAt"].as_str().and_then(parse_rfc3339)) {
                cached.plays.push((id.to_string(), at));
            }
        }
        if let Some(next) = plays["nextCursor"].as_str() {
            let mut input = input;
            input["cursor"] = json!(next);
            window_input = Some(input);
        }
    }
    let playlists = q("_getPlaylists", json!({ "userId": user }))?;
    for p in playlists["playlists"].as_array().into_iter().flatten() {
        if let (Some(id), Some(name)) = (p["id"].as_str(), p["name"].as_str()) {
            cached.playlists.push((id.to_string(), name.to_string()));
        }
    }
    Ok(cached)
}

/// The metadata any library gave `id`, if there is some.
pub fn metadata(engine: &Engine, id: &str) -> Option<Map<String, Value>> {
    engine
        .query("LibraryCache", "_getTrack", json!({ "trackId": id }))
        .ok()
        .and_then(|v| v.as_object().cloned())
}
