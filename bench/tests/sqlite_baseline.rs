//! The SQLite baseline answers as LibraryCache must: liked ids newest first with ties in source order,
//! syncs and merges that change the liked list as expected, playlists in order with repeats, refusals.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use librarycache_bench::{BenchError, Cache, Durability, SqliteCache, Workload};
use serde_json::json;

/// A scratch directory removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("lcbench-{}-{name}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Scratch(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn bytes(v: serde_json::Value) -> Bytes {
    Bytes::from(v.to_string())
}

fn open(dir: &Path) -> Result<SqliteCache, BenchError> {
    SqliteCache::open(dir, Durability::Full)
}

fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn liked_newest_first_with_ties_in_source_order() -> Result<(), BenchError> {
    let dir = Scratch::new("ties");
    let mut cache = open(dir.path())?;
    cache.ingest(&bytes(json!({
        "userId": "u",
        "likes": [
            {"trackId": "old", "likedAt": "2019-01-01T00:00:00Z"},
            {"trackId": "tie1", "likedAt": "2021-06-01T12:00:00Z"},
            {"trackId": "new", "likedAt": "2023-03-03T00:00:00+02:00"},
            {"trackId": "tie2", "likedAt": "2021-06-01T12:00:00Z"},
            {"trackId": "tie3", "likedAt": "2021-06-01T14:00:00+02:00"}
        ]
    })))?;
    assert_eq!(cache.get_liked("u")?, ids(&["new", "tie1", "tie2", "tie3", "old"]));
    Ok(())
}

#[test]
fn generated_library_round_trips_in_order() -> Result<(), BenchError> {
    let dir = Scratch::new("small");
    let w = Workload::small(4);
    let mut cache = open(dir.path())?;
    cache.ingest(&Bytes::from(w.ingest_bytes("u")?))?;
    assert_eq!(cache.get_liked("u")?, w.expected_liked());
    assert!(w.likes.windows(2).any(|p| p[0].liked_at == p[1].liked_at) || w.likes.len() < 100);
    for p in &w.playlists {
        assert_eq!(cache.get_playlist(&p.id)?, p.entries);
    }
    assert!(cache.bytes_on_disk()? > 0);
    Ok(())
}

#[test]
fn playlist_keeps_order_and_repeats() -> Result<(), BenchError> {
    let dir = Scratch::new("playlist");
    let mut cache = open(dir.path())?;
    cache.ingest(&bytes(json!({
        "userId": "u",
        "playlists": [{"id": "p", "name": "Mix", "entries": ["b", "a", "b", "c", "a"]}]
    })))?;
    assert_eq!(cache.get_playlist("p")?, ids(&["b", "a", "b", "c", "a"]));
    assert!(matches!(
        cache.get_playlist("nope"),
        Err(BenchError::UnknownPlaylist(_))
    ));
    Ok(())
}

#[test]
fn sync_with_k_changed_likes_gives_the_new_list() -> Result<(), BenchError> {
    let dir = Scratch::new("sync");
    let w = Workload::small(9);
    let mut cache = open(dir.path())?;
    cache.ingest(&Bytes::from(w.ingest_bytes("u")?))?;
    let changed = w.with_changed_likes(10, 3);
    cache.sync(&Bytes::from(changed.ingest_bytes("u")?))?;
    assert_eq!(cache.get_liked("u")?, changed.expected_liked());
    // And back again, with likes only: the other collections are left as they were.
    let mut likes_only = w.ingest_body("u");
    likes_only.tracks = None;
    likes_only.plays = None;
    likes_only.playlists = None;
    cache.sync(&Bytes::from(serde_json::to_vec(&likes_only)?))?;
    assert_eq!(cache.get_liked("u")?, w.expected_liked());
    assert_eq!(cache.get_playlist(&w.playlists[3].id)?, w.playlists[3].entries);
    Ok(())
}

#[test]
fn sync_drops_missing_playlists_and_rewrites_changed_ones() -> Result<(), BenchError> {
    let dir = Scratch::new("sync-playlists");
    let mut cache = open(dir.path())?;
    cache.ingest(&bytes(json!({
        "userId": "u",
        "playlists": [
            {"id": "p1", "name": "A", "snapshotId": "s1", "entries": ["a", "b"]},
            {"id": "p2", "name": "B", "snapshotId": "s1", "entries": ["c"]}
        ]
    })))?;
    cache.sync(&bytes(json!({
        "userId": "u",
        "playlists": [{"id": "p1", "name": "A", "snapshotId": "s2", "entries": ["b", "b", "a"]}]
    })))?;
    assert_eq!(cache.get_playlist("p1")?, ids(&["b", "b", "a"]));
    assert!(matches!(cache.get_playlist("p2"), Err(BenchError::UnknownPlaylist(_))));
    Ok(())
}

#[test]
fn sync_keeps_the_first_recorded_time_of_a_like_without_liked_at() -> Result<(), BenchError> {
    let dir = Scratch::new("stamp");
    let mut cache = open(dir.path())?;
    cache.ingest(&bytes(json!({"userId": "u", "likes": [{"trackId": "a"}]})))?;
    // `b` is liked later, without a time: it is stamped now, so it is newer than `a`.
    cache.sync(&bytes(
        json!({"userId": "u", "likes": [{"trackId": "a"}, {"trackId": "b"}]}),
    ))?;
    assert_eq!(cache.get_liked("u")?, ids(&["b", "a"]));
    Ok(())
}

#[test]
fn merge_adds_likes_newest_first_and_keeps_existing() -> Result<(), BenchError> {
    let dir = Scratch::new("merge");
    let w = Workload::small(5);
    let mut cache = open(dir.path())?;
    cache.ingest(&Bytes::from(w.ingest_bytes("u")?))?;
    let delta = w.new_likes(10);
    cache.merge(&Bytes::from(delta.merge_bytes("u")?))?;
    let mut expected: Vec<String> = delta.likes.iter().map(|l| l.track_id.clone()).collect();
    expected.extend(w.expected_liked());
    assert_eq!(cache.get_liked("u")?, expected);
    // Merging the same likes again changes nothing.
    cache.merge(&Bytes::from(delta.merge_bytes("u")?))?;
    assert_eq!(cache.get_liked("u")?, expected);
    Ok(())
}

#[test]
fn merged_ties_come_after_cached_likes_of_the_same_time() -> Result<(), BenchError> {
    let dir = Scratch::new("merge-ties");
    let mut cache = open(dir.path())?;
    let at = "2022-02-02T02:02:02Z";
    cache.ingest(&bytes(
        json!({"userId": "u", "likes": [{"trackId": "a", "likedAt": at}]}),
    ))?;
    cache.merge(&bytes(
        json!({"userId": "u", "likes": [{"trackId": "b", "likedAt": at}, {"trackId": "c", "likedAt": at}]}),
    ))?;
    assert_eq!(cache.get_liked("u")?, ids(&["a", "b", "c"]));
    Ok(())
}

#[test]
fn refusals_and_cold_start() -> Result<(), BenchError> {
    let dir = Scratch::new("refusals");
    let body = bytes(json!({"userId": "u", "likes": [{"trackId": "a", "likedAt": "2020-01-01T00:00:00Z"}]}));
    {
        let mut cache = open(dir.path())?;
        assert!(matches!(cache.sync(&body), Err(BenchError::UnknownUser(_))));
        assert!(matches!(cache.merge(&body), Err(BenchError::UnknownUser(_))));
        cache.ingest(&body)?;
        assert!(matches!(cache.ingest(&body), Err(BenchError::AlreadyIngested(_))));
        assert!(matches!(
            cache.get_liked("someone else"),
            Err(BenchError::UnknownUser(_))
        ));
        assert!(matches!(
            cache.ingest(&Bytes::from_static(b"{not json")),
            Err(BenchError::Json(_))
        ));
    }
    let mut reopened = open(dir.path())?;
    assert_eq!(reopened.get_liked("u")?, ids(&["a"]));
    Ok(())
}

#[test]
fn merge_removes_only_what_it_names_and_accepts_unknown_fields() -> Result<(), BenchError> {
    let dir = Scratch::new("merge-removals");
    let mut cache = open(dir.path())?;
    cache.ingest(&bytes(json!({
        "userId": "u",
        "tracks": [{"id": "a", "popularity": 71}],
        "likes": [
            {"trackId": "a", "likedAt": "2020-01-02T00:00:00Z"},
            {"trackId": "b", "likedAt": "2020-01-01T00:00:00Z"}
        ],
        "playlists": [
            {"id": "p1", "name": "A", "entries": ["a"], "followers": 3},
            {"id": "p2", "name": "B", "entries": ["b"]}
        ]
    })))?;
    cache.merge(&bytes(
        json!({"userId": "u", "unlikes": ["a"], "removedPlaylists": ["p2"]}),
    ))?;
    assert_eq!(cache.get_liked("u")?, ids(&["b"]));
    assert_eq!(cache.get_playlist("p1")?, ids(&["a"]));
    assert!(matches!(cache.get_playlist("p2"), Err(BenchError::UnknownPlaylist(_))));
    Ok(())
}
