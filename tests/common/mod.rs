//! Shared helpers for the integration tests: real stores, real engines, the real binary.
#![allow(dead_code)]

use librarycache::engine::{Engine, Registry};
use librarycache::store::SledStore;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;

/// An engine over a sled store in `dir`.
pub fn engine_at(dir: &Path) -> Engine {
    Engine::new(
        Arc::new(SledStore::open(dir).expect("open store")),
        Registry::standard(),
    )
}

/// An engine over a store in a new temporary directory (removed when the guard drops: keep it).
pub fn fresh_engine() -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = engine_at(dir.path());
    (dir, engine)
}

/// Runs an action or query and returns its output, panicking with the refusal otherwise.
pub fn ok(engine: &Engine, concept_action: &str, input: Value) -> Value {
    let (c, a) = concept_action.split_once('.').expect("Concept.action");
    match engine.invoke(c, a, input).result {
        Ok(v) => v,
        Err(e) => panic!("{concept_action} refused: {e}"),
    }
}

/// Runs an action or query that must be refused; returns the refusal code.
pub fn refused(engine: &Engine, concept_action: &str, input: Value) -> String {
    let (c, a) = concept_action.split_once('.').expect("Concept.action");
    match engine.invoke(c, a, input).result {
        Ok(v) => panic!("{concept_action} succeeded with {v}, a refusal was expected"),
        Err(e) => e.code,
    }
}

pub fn alice_library() -> Value {
    json!({
        "userId": "user:alice",
        "tracks": [
            {"id": "track:a", "title": "Alpha", "artist": "Ana", "album": "First"},
            {"id": "track:b", "title": "Bravo", "artist": "Ben", "album": "Second"},
            {"id": "track:c", "title": "Charlie", "artist": "Cy", "album": "Third"}
        ],
        "likes": [
            {"trackId": "track:b", "likedAt": "2025-10-02T09:00:00Z"},
            {"trackId": "track:a", "likedAt": "2025-10-01T09:00:00Z"}
        ],
        "plays": [{"trackId": "track:a", "playedAt": "2025-10-03T20:15:00Z"}],
        "playlists": [{"id": "playlist:1", "name": "Oct25", "entries": ["track:b", "track:a"]}]
    })
}

/// A library of `likes` liked tracks and `playlists` playlists of 20 entries.
pub fn big_library(user: &str, likes: usize, playlists: usize) -> Value {
    let tracks: Vec<Value> = (0..likes)
        .map(|i| json!({"id": format!("t{i:06}"), "title": format!("Song {i}"), "artist": "A"}))
        .collect();
    let like_list: Vec<Value> = (0..likes)
        .map(|i| json!({"trackId": format!("t{i:06}"), "likedAt": time_of(likes - i)}))
        .collect();
    let pls: Vec<Value> = (0..playlists)
        .map(|p| {
            let entries: Vec<String> = (0..20).map(|e| format!("t{:06}", (p * 7 + e) % likes.max(1))).collect();
            json!({"id": format!("{user}/pl{p}"), "name": format!("List {p}"), "snapshotId": "s1", "entries": entries})
        })
        .collect();
    json!({"userId": user, "tracks": tracks, "likes": like_list, "playlists": pls})
}

/// A distinct RFC 3339 time for a counter (larger counter, later time).
pub fn time_of(n: usize) -> String {
    let t = chrono::DateTime::from_timestamp(1_600_000_000 + n as i64 * 60, 0).expect("time");
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The projections as a list of rows, for comparing live and rebuilt state.
pub fn dump(engine: &Engine) -> Vec<(Vec<u8>, Vec<u8>)> {
    engine.store().projection_dump().expect("dump")
}

pub mod lastfm;
pub mod plex;
pub mod server;
pub mod source_reads;
pub mod spotify;
