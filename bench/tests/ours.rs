//! The "ours" backend (LibraryCache on a real sled store, through the engine) answers the small
//! workload as the workload says, refuses what the service refuses, and answers the same over
//! HTTP (the real router served in-process here; the bench serves it from a worker process). No
//! timings are asserted. Every store lives in a `TempDir` kept alive until the store is closed.

use std::time::Duration;

use bytes::Bytes;
use librarycache_bench::answers;
use librarycache_bench::cache::{liked_ids, playlist_entries, user_body};
use librarycache_bench::http::{Client, Request, Server};
use librarycache_bench::plan::USER;
use librarycache_bench::{BenchError, CacheKind, Query, Workload};
use serde_json::json;

fn bytes(v: serde_json::Value) -> Bytes {
    Bytes::from(v.to_string())
}

#[test]
fn ours_answers_the_small_workload_and_refuses_as_the_service() -> Result<(), BenchError> {
    let dir = tempfile::tempdir().map_err(BenchError::io("create", "tempdir"))?;
    let kind = CacheKind::ours();
    let w = Workload::small(4);
    let expected = {
        let mut cache = kind.open(dir.path())?;
        cache.ingest(&Bytes::from(w.ingest_bytes("u")?))?;
        assert_eq!(liked_ids(cache.as_mut(), "u")?, w.expected_liked());
        for p in &w.playlists {
            assert_eq!(playlist_entries(cache.as_mut(), &p.id)?, p.entries);
        }
        let changed = w.with_changed_likes(10, 3);
        cache.sync(&Bytes::from(changed.ingest_bytes("u")?))?;
        assert_eq!(liked_ids(cache.as_mut(), "u")?, changed.expected_liked());
        let delta = changed.new_likes(10);
        cache.merge(&Bytes::from(delta.merge_bytes("u")?))?;
        let mut expected: Vec<String> = delta.likes.iter().map(|l| l.track_id.clone()).collect();
        expected.extend(changed.expected_liked());
        assert_eq!(liked_ids(cache.as_mut(), "u")?, expected);
        assert!(cache.rebuild()?.is_some_and(|events| events > 0));
        assert_eq!(liked_ids(cache.as_mut(), "u")?, expected);
        assert!(cache.bytes_on_disk()? > 0);
        let request = cache.query(Query::LikedRequest, &user_body("u"))?;
        assert_eq!(request, answers::liked_request_answer("u", &expected)?);

        assert!(matches!(
            cache.ingest(&Bytes::from(w.ingest_bytes("u")?)),
            Err(BenchError::AlreadyIngested(_))
        ));
        let nobody = bytes(json!({"userId": "nobody", "likes": []}));
        assert!(matches!(cache.sync(&nobody), Err(BenchError::UnknownUser(_))));
        for q in [Query::GetLiked, Query::GetStatus, Query::GetTracks, Query::LikedRequest] {
            assert!(
                matches!(cache.query(q, &user_body("nobody")), Err(BenchError::UnknownUser(_))),
                "{q:?}"
            );
        }
        assert!(matches!(
            cache.query(Query::GetPlaylist, &bytes(json!({"playlistId": "nope"}))),
            Err(BenchError::UnknownPlaylist(_))
        ));
        assert!(matches!(
            cache.ingest(&Bytes::from_static(b"{not json")),
            Err(BenchError::Json(_))
        ));
        expected
    };
    kind.wait_closed(dir.path())?;
    let mut reopened = kind.open(dir.path())?;
    assert_eq!(liked_ids(reopened.as_mut(), "u")?, expected);
    Ok(())
}

/// The real server on loopback answers queries, `/api/liked` and writes as in-process.
#[test]
fn ours_over_http_answers_the_small_workload() -> Result<(), BenchError> {
    let dir = tempfile::tempdir().map_err(BenchError::io("create", "tempdir"))?;
    let kind = CacheKind::ours();
    let w = Workload::small(7);
    {
        let cache = kind.open(dir.path())?;
        let Some(engine) = cache.engine().cloned() else {
            return Err(BenchError::WrongAnswer {
                cache: "ours".into(),
                operation: "engine".into(),
                detail: "ours has no engine".into(),
            });
        };
        let server = Server::start(engine)?;
        let client = Client::new(server.addr, 3)?;
        let user = user_body(USER);
        let (_, ingested) = client.sequence(&[Request {
            path: "/LibraryCache/ingest".into(),
            body: Bytes::from(w.ingest_bytes(USER)?),
            expected: None,
        }])?;
        assert!(ingested[0].starts_with(b"{\"userId\":\"user:bench\""));
        let liked = Request {
            path: "/LibraryCache/_getLiked".into(),
            body: user.clone(),
            expected: Some(Bytes::from(answers::liked_answer(&w.expected_liked())?)),
        };
        let playlists: Vec<Request> = w
            .playlists
            .iter()
            .take(5)
            .map(|p| {
                Ok(Request {
                    path: "/LibraryCache/_getPlaylist".into(),
                    body: bytes(json!({"playlistId": p.id})),
                    expected: Some(Bytes::from(answers::playlist_answer(p)?)),
                })
            })
            .collect::<Result<_, BenchError>>()?;
        let request = Request {
            path: "/liked".into(),
            body: user.clone(),
            expected: Some(Bytes::from(answers::liked_request_answer(USER, &w.expected_liked())?)),
        };
        for (requests, clients) in [(vec![liked], 1), (playlists, 3), (vec![request], 2)] {
            let figures = client.load(&requests, clients, Duration::from_millis(150))?;
            // Every client sends at least one request, whatever the machine's speed.
            assert!(figures.requests >= clients as u64 && figures.p99_ms >= figures.p50_ms);
        }
        let delta = w.new_likes(10);
        let (times, answers) = client.sequence(&[Request {
            path: "/LibraryCache/merge".into(),
            body: Bytes::from(delta.merge_bytes(USER)?),
            expected: None,
        }])?;
        assert_eq!(
            (
                times.len(),
                librarycache_bench::cache::number(&answers[0], "version").is_ok()
            ),
            (1, true)
        );
        server.stop()?;
    }
    kind.wait_closed(dir.path())?;
    Ok(())
}
