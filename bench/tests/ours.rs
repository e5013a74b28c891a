//! The "ours" backend (LibraryCache on a real sled store, through the engine) answers the small workload
//! as the runner expects, refuses what the service refuses, and answers the same over HTTP. No timings are
//! asserted. Every store lives in a `TempDir` kept alive until the store is closed (sled must not lose its
//! directory while open).

use std::time::Duration;

use librarycache_bench::http::{self, HttpPlan};
use librarycache_bench::runner::{self, RunConfig, USER};
use librarycache_bench::{Backend, BenchError, Cache, OursBackend, Workload};
use serde_json::json;

fn bytes(v: serde_json::Value) -> Vec<u8> {
    v.to_string().into_bytes()
}

#[test]
fn ours_answers_the_small_workload() -> Result<(), BenchError> {
    let dir = tempfile::tempdir().map_err(BenchError::io("create", "tempdir"))?;
    let backend = OursBackend::new();
    let w = Workload::small(4);
    {
        let mut cache = backend.open(dir.path())?;
        cache.ingest(&w.ingest_bytes("u")?)?;
        assert_eq!(cache.get_liked("u")?, w.expected_liked());
        for p in &w.playlists {
            assert_eq!(cache.get_playlist(&p.id)?, p.entries);
        }
        let changed = w.with_changed_likes(10, 3);
        cache.sync(&changed.ingest_bytes("u")?)?;
        assert_eq!(cache.get_liked("u")?, changed.expected_liked());
        let delta = changed.new_likes(10);
        cache.merge(&delta.merge_bytes("u")?)?;
        let mut expected: Vec<String> = delta.likes.iter().map(|l| l.track_id.clone()).collect();
        expected.extend(changed.expected_liked());
        assert_eq!(cache.get_liked("u")?, expected);
        assert!(cache.rebuild()?.is_some_and(|events| events > 0));
        assert_eq!(cache.get_liked("u")?, expected);
        assert!(cache.bytes_on_disk()? > 0);

        assert!(matches!(
            cache.ingest(&w.ingest_bytes("u")?),
            Err(BenchError::AlreadyIngested(_))
        ));
        let nobody = bytes(json!({"userId": "nobody", "likes": []}));
        assert!(matches!(cache.sync(&nobody), Err(BenchError::UnknownUser(_))));
        assert!(matches!(cache.get_liked("nobody"), Err(BenchError::UnknownUser(_))));
        assert!(matches!(
            cache.get_playlist("nope"),
            Err(BenchError::UnknownPlaylist(_))
        ));
        assert!(matches!(cache.ingest(b"{not json"), Err(BenchError::Json(_))));
        drop(cache);
    }
    backend.wait_closed(dir.path())?;
    let (_cache, liked) = backend.open_and_first_get_liked(dir.path(), "u")?;
    assert_eq!(liked, expected_after_reopen(&w));
    Ok(())
}

fn expected_after_reopen(w: &Workload) -> Vec<String> {
    let changed = w.with_changed_likes(10, 3);
    let delta = changed.new_likes(10);
    let mut expected: Vec<String> = delta.likes.iter().map(|l| l.track_id.clone()).collect();
    expected.extend(changed.expected_liked());
    expected
}

/// The runner's whole sequence (which checks every answer) on both caches, one run of each step.
#[test]
fn the_runner_accepts_both_caches_on_the_small_workload() -> Result<(), BenchError> {
    let work = tempfile::tempdir().map_err(BenchError::io("create", "tempdir"))?;
    let w = Workload::small(42);
    let cfg = RunConfig {
        label: "small".to_owned(),
        reps: 2,
        sync_reps: 1,
        ingest_runs: 2,
        rebuild_runs: 1,
        k: 10,
        work_dir: work.path().to_path_buf(),
        keep: false,
    };
    let ours = runner::run(&OursBackend::new(), &w, &cfg)?;
    let names: Vec<&str> = ours.measurements.iter().map(|m| m.name.as_str()).collect();
    for op in [
        "small/ingest",
        "small/get_liked",
        "small/get_playlist",
        "small/merge_10_likes",
        "small/rebuild",
        "small/cold_open_get_liked",
    ] {
        assert!(names.contains(&op), "{op} missing from {names:?}");
    }
    assert!(ours.rebuild.is_some_and(|r| r.events > 0));
    assert!(ours.bytes_after_ingest > 0);
    let sqlite = runner::run(&librarycache_bench::SqliteBackend, &w, &cfg)?;
    assert!(sqlite.rebuild.is_none());
    assert_eq!(sqlite.measurements.len() + 1, ours.measurements.len());
    Ok(())
}

/// The real server on loopback answers `_getLiked` and `_getPlaylist` as the workload says (the HTTP
/// module checks every answer; a wrong one is an error).
#[test]
fn ours_over_http_answers_the_small_workload() -> Result<(), BenchError> {
    let dir = tempfile::tempdir().map_err(BenchError::io("create", "tempdir"))?;
    let backend = OursBackend::new();
    let w = Workload::small(7);
    let figures = {
        let mut cache = backend.open_cache(dir.path())?;
        cache.ingest(&w.ingest_bytes(USER)?)?;
        let plan = HttpPlan {
            user: USER.to_owned(),
            expected_liked: w.expected_liked(),
            playlists: http::playlist_answers(&w.playlists, 5),
            clients: vec![1, 3],
            duration: Duration::from_millis(150),
        };
        http::measure(cache.engine().clone(), &plan)?
    };
    backend.wait_closed(dir.path())?;
    assert_eq!(figures.len(), 4);
    assert!(figures.iter().all(|m| m.figures.requests > 0));
    Ok(())
}
