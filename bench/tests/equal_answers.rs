//! Both caches give the same answers — byte for byte, or in the normal form where an answer holds
//! what only one cache can know (versions, times) — for every operation the bench times: the
//! suite's whole sequence on the small workload, checked against the workload too; and a sequence
//! of writes that exercises every kind of change `_getChanges` reports.

use std::collections::BTreeMap;

use bytes::Bytes;
use librarycache_bench::answers::{normal_form, Form};
use librarycache_bench::cache::{number, user_body};
use librarycache_bench::plan::{Expected, Plan, PlanSettings, Reps};
use librarycache_bench::suite::{self, SuiteResult};
use librarycache_bench::{BenchError, CacheKind, Durability, Query, Workload};
use serde_json::json;

fn kinds() -> [CacheKind; 3] {
    [
        CacheKind::ours(),
        CacheKind::Sqlite {
            durability: Durability::Full,
        },
        CacheKind::Sqlite {
            durability: Durability::Normal,
        },
    ]
}

#[test]
fn every_step_of_the_suite_answers_alike_and_as_the_workload_says() -> Result<(), BenchError> {
    let work = tempfile::tempdir().map_err(BenchError::io("create", "tempdir"))?;
    let w = Workload::small(42);
    let settings = PlanSettings {
        label: "small".into(),
        k: 10,
        reps: Reps {
            reps: 3,
            heavy_reps: 2,
            sync_reps: 1,
            rebuild_runs: 1,
            cold_reps: 1,
        },
        growth_merges: 0,
        like_requests: 0,
        seed: 42,
    };
    let plan = Plan::write(&w, &work.path().join("plan"), &settings)?;
    let expected = Expected::of(&w, &plan)?;
    let mut results: BTreeMap<&str, SuiteResult> = BTreeMap::new();
    let mut ingests = Vec::new();
    for kind in kinds() {
        let dir = work.path().join(kind.name());
        let mut cache = kind.open(&dir)?;
        let answer = cache.ingest(&Bytes::from(
            std::fs::read(plan.ingest()).map_err(BenchError::io("read", plan.ingest()))?,
        ))?;
        ingests.push(normal_form(Form::Write, &answer)?);
        drop(cache);
        kind.wait_closed(&dir)?;
        let result = suite::run(&kind, &dir, &plan, &mut |_| {})?;
        for (name, digest) in &result.checks {
            assert_eq!(Some(digest), expected.checks.get(name), "{}: check {name}", kind.name());
        }
        results.insert(kind.name(), result);
    }
    assert!(ingests.windows(2).all(|p| p[0] == p[1]), "ingest answers differ");
    let ours = &results["ours"];
    for step in [
        "get_liked",
        "get_playlist",
        "get_plays_200",
        "get_plays_all",
        "get_tracks",
        "get_status",
        "resolve_playlist",
        "liked_request",
        "get_changes",
        "sync_unchanged",
        "sync_full_10_likes_changed",
        "sync_likes_only_10_changed",
        "merge_1_like",
        "merge_10_likes",
        "rebuild",
    ] {
        assert!(ours.steps.contains_key(step), "ours has no step {step}");
    }
    for (name, result) in &results {
        for (step, s) in &result.steps {
            if s.digest.is_empty() {
                continue;
            }
            assert_eq!(
                Some(&s.digest),
                ours.steps.get(step).map(|o| &o.digest),
                "{name}: {step}"
            );
        }
    }
    assert!(results["sqlite-full"].rebuild_events.is_none());
    Ok(())
}

/// Writes that add, change and remove tracks, likes, plays and playlists (with and without
/// snapshot ids), then every query, on both caches.
#[test]
fn changes_status_and_queries_agree_after_every_kind_of_write() -> Result<(), BenchError> {
    let b = |v: serde_json::Value| Bytes::from(v.to_string());
    let writes: Vec<(&str, Bytes)> = vec![
        (
            "ingest",
            b(json!({"userId": "u",
                "tracks": [{"id": "a", "title": "A", "popularity": 3}, {"id": "b", "title": "B"}, {"id": "c"}],
                "likes": [{"trackId": "b", "likedAt": "2024-05-01T10:00:00Z"}, {"trackId": "a", "likedAt": "2024-05-01T10:00:00Z"}],
                "plays": [{"trackId": "a", "playedAt": "2024-06-01T10:00:00.5Z"}, {"trackId": "b", "playedAt": "2024-06-01T10:00:00.5Z"}],
                "playlists": [{"id": "p1", "name": "Road Trip", "snapshotId": "s1", "entries": ["a", "b", "a"]},
                              {"id": "p2", "name": "road trip", "uri": "spotify:playlist:p2", "entries": ["c"], "followers": 2}]})),
        ),
        (
            "sync",
            b(json!({"userId": "u",
                "tracks": [{"id": "a", "title": "A2", "popularity": 3}, {"id": "c"}, {"id": "d", "artist": "D"}],
                "likes": [{"trackId": "d", "likedAt": "2024-07-01T00:00:00Z"}, {"trackId": "a", "likedAt": "2024-05-02T10:00:00Z"}],
                "plays": [{"trackId": "d", "playedAt": "2024-08-01T00:00:00Z"}, {"trackId": "a", "playedAt": "2024-06-01T10:00:00.5Z"}],
                "playlists": [{"id": "p1", "name": "Road Trip", "snapshotId": "s2", "entries": ["d"]}]})),
        ),
        (
            "merge",
            b(json!({"userId": "u",
                "tracks": [{"id": "e", "title": "E"}],
                "likes": [{"trackId": "e", "likedAt": "2024-09-01T00:00:00Z"}, {"trackId": "d", "likedAt": "2024-07-01T00:00:00Z"}],
                "unlikes": ["a", "zz"],
                "plays": [{"trackId": "e", "playedAt": "2024-09-01T00:00:01Z"}],
                "playlists": [{"id": "p3", "name": "Road trip", "snapshotId": "x", "entries": ["e", "e"]}],
                "removedPlaylists": ["p1"]})),
        ),
        ("sync", b(json!({"userId": "u", "likes": []}))),
    ];
    let queries: Vec<(Query, Bytes, Form)> = vec![
        (Query::GetLiked, user_body("u"), Form::Exact),
        (
            Query::GetLiked,
            b(json!({"userId": "u", "limit": 1, "offset": 1})),
            Form::Exact,
        ),
        (Query::GetPlays, b(json!({"userId": "u"})), Form::Exact),
        (
            Query::GetPlays,
            b(json!({"userId": "u", "limit": 2, "since": "2024-06-01T10:00:00.5Z"})),
            Form::Exact,
        ),
        (Query::GetTracks, user_body("u"), Form::Exact),
        (
            Query::GetTracks,
            b(json!({"userId": "u", "offset": 1, "limit": 2})),
            Form::Exact,
        ),
        (Query::GetStatus, user_body("u"), Form::Status),
        (Query::GetChanges, user_body("u"), Form::Changes),
        // (A page smaller than an action is cut differently: LibraryCache pages by its events,
        // of up to 1,000 facts each, the baseline by whole actions. The bench times pages that
        // hold whole actions.)
        (
            Query::GetChanges,
            b(json!({"userId": "u", "sinceVersion": 0, "limit": 10_000})),
            Form::Changes,
        ),
        (
            Query::ResolvePlaylist,
            b(json!({"userId": "u", "nameOrUri": " ROAD TRIP "})),
            Form::Exact,
        ),
        (
            Query::ResolvePlaylist,
            b(json!({"userId": "u", "nameOrUri": "p3"})),
            Form::Exact,
        ),
        (Query::GetPlaylist, b(json!({"playlistId": "p3"})), Form::Exact),
        (Query::LikedRequest, user_body("u"), Form::Exact),
    ];
    let mut transcripts: Vec<(String, Vec<String>)> = Vec::new();
    for kind in kinds().into_iter().take(2) {
        let work = tempfile::tempdir().map_err(BenchError::io("create", "tempdir"))?;
        let mut cache = kind.open(work.path())?;
        let mut lines = Vec::new();
        for (action, body) in &writes {
            let answer = match *action {
                "ingest" => cache.ingest(body)?,
                "sync" => cache.sync(body)?,
                _ => cache.merge(body)?,
            };
            lines.push(format!(
                "{action}: {}",
                String::from_utf8_lossy(&normal_form(Form::Write, &answer)?)
            ));
            assert!(number(&answer, "version").is_ok());
            for (q, body, form) in &queries {
                // A refusal (a playlist not there yet, or removed) is part of the transcript too.
                let text = match cache.query(*q, body) {
                    Ok(answer) => String::from_utf8_lossy(&normal_form(*form, &answer)?).into_owned(),
                    Err(e @ (BenchError::UnknownPlaylist(_) | BenchError::UnknownUser(_))) => format!("refused: {e}"),
                    Err(e) => return Err(e),
                };
                lines.push(format!("  {q:?} {body:?}: {text}"));
            }
        }
        drop(cache);
        kind.wait_closed(work.path())?;
        transcripts.push((kind.name().to_owned(), lines));
    }
    let (ours, sqlite) = (&transcripts[0].1, &transcripts[1].1);
    for (o, s) in ours.iter().zip(sqlite) {
        assert_eq!(o, s, "ours and sqlite differ");
    }
    assert_eq!(ours.len(), sqlite.len());
    Ok(())
}
