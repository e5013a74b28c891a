//! The foundation's invariants on the real sled store and the real LibraryCache concept:
//! rebuild equals live (I2), atomic actions (I1), restart, input validation, proportional
//! writes (I3) and user isolation (I6).

use crate::common;

use common::*;
use librarycache::store::{Commit, StoreError};
use serde_json::json;

fn rebuild_reproduces_live_projections_byte_for_byte(store: TestStore) {
    let engine = store.engine();
    ok(&engine, "LibraryCache.ingest", alice_library());
    ok(&engine, "LibraryCache.ingest", big_library("user:bob", 3_000, 30));
    ok(
        &engine,
        "LibraryCache.sync",
        json!({"userId": "user:alice", "likes": [{"trackId": "track:c"}, {"trackId": "track:a"}],
               "playlists": [{"id": "playlist:2", "name": "New", "entries": ["track:c", "track:c"]}]}),
    );
    ok(
        &engine,
        "LibraryCache.merge",
        json!({"userId": "user:bob", "unlikes": ["t000001"], "removedPlaylists": ["user:bob/pl3"]}),
    );
    ok(&engine, "LibraryCache.clear", json!({"userId": "user:alice"}));
    ok(&engine, "LibraryCache.ingest", alice_library());
    let live = dump(&engine);
    assert!(
        live.len() > 20,
        "expected a populated projection, got {} rows",
        live.len()
    );
    let replayed = engine.rebuild().expect("rebuild");
    assert_eq!(replayed, engine.store().last_seq().expect("seq"));
    let rebuilt = dump(&engine);
    assert_eq!(live.len(), rebuilt.len(), "row count differs after rebuild");
    assert!(live == rebuilt, "rebuilt projections differ from live ones");
    // And the queries still answer the same.
    let liked = ok(&engine, "LibraryCache._getLiked", json!({"userId": "user:alice"}));
    assert_eq!(liked, json!({"trackIds": ["track:b", "track:a"]}));
}

fn a_refused_action_writes_no_event_no_head_and_no_projection(store: TestStore) {
    let engine = store.engine();
    ok(&engine, "LibraryCache.ingest", alice_library());
    let (seq, rows) = (engine.store().last_seq().expect("seq"), dump(&engine));
    let version = engine
        .store()
        .view("LibraryCache")
        .stream_version("user:alice")
        .expect("version");
    assert_eq!(
        refused(&engine, "LibraryCache.ingest", alice_library()),
        "ALREADY_INGESTED"
    );
    assert_eq!(
        refused(&engine, "LibraryCache.sync", json!({"userId": "user:zed", "likes": []})),
        "USER_NOT_FOUND"
    );
    // Invalid input deep inside an otherwise fine sync: nothing of it may land.
    let bad = json!({"userId": "user:alice", "likes": [{"trackId": "track:c"}, {"trackId": "track:a", "likedAt": "yesterday"}]});
    assert_eq!(refused(&engine, "LibraryCache.sync", bad), "INVALID_TIME");
    assert_eq!(engine.store().last_seq().expect("seq"), seq);
    assert_eq!(
        engine
            .store()
            .view("LibraryCache")
            .stream_version("user:alice")
            .expect("version"),
        version
    );
    assert!(dump(&engine) == rows, "a refused action changed projections");
}

fn a_commit_that_fails_midway_leaves_nothing_behind(store: TestStore) {
    // An append whose second stream conflicts: the first stream's events (already applied to
    // the commit's overlay) must not land either.
    let engine = store.engine();
    ok(&engine, "LibraryCache.ingest", alice_library());
    let store = engine.store();
    let (seq, rows) = (store.last_seq().expect("seq"), dump(&engine));
    let concept = engine.registry().get("LibraryCache").expect("concept");
    let ctx = concept_core::ActionCtx::new(uuid::Uuid::now_v7(), engine.now());
    let view = store.view("LibraryCache");
    let mut performed = concept
        .perform(
            &ctx,
            view.as_ref(),
            "sync",
            &decoded(
                &*concept,
                "sync",
                json!({"userId": "user:alice", "likes": [{"trackId": "track:c"}]}),
            ),
        )
        .expect("decides");
    drop(view);
    let mut second = concept
        .perform(
            &ctx,
            store.view("LibraryCache").as_ref(),
            "clear",
            &decoded(&*concept, "clear", json!({"userId": "user:alice"})),
        )
        .expect("decides")
        .appends;
    second[0].expected = concept_core::ExpectedVersion::Exact(999);
    performed.appends.extend(second);
    let err = store.commit(Commit {
        concept: "LibraryCache".into(),
        appends: performed.appends,
        ..Commit::default()
    });
    assert!(
        matches!(err, Err(StoreError::VersionConflict { expected: 999, .. })),
        "{err:?}"
    );
    assert_eq!(store.last_seq().expect("seq"), seq);
    assert!(dump(&engine) == rows, "a failed commit changed projections");
}

fn a_store_reopened_after_close_answers_the_same(store: TestStore) {
    let (liked, playlist, status) = {
        let engine = store.engine();
        ok(&engine, "LibraryCache.ingest", alice_library());
        ok(
            &engine,
            "LibraryCache.merge",
            json!({"userId": "user:alice", "likes": [{"trackId": "track:c", "likedAt": "2025-11-01T00:00:00Z"}]}),
        );
        (
            ok(&engine, "LibraryCache._getLiked", json!({"userId": "user:alice"})),
            ok(
                &engine,
                "LibraryCache._getPlaylist",
                json!({"playlistId": "playlist:1"}),
            ),
            ok(&engine, "LibraryCache._getStatus", json!({"userId": "user:alice"})),
        )
    };
    let engine = store.engine();
    assert_eq!(liked, json!({"trackIds": ["track:c", "track:b", "track:a"]}));
    assert_eq!(
        ok(&engine, "LibraryCache._getLiked", json!({"userId": "user:alice"})),
        liked
    );
    assert_eq!(
        ok(
            &engine,
            "LibraryCache._getPlaylist",
            json!({"playlistId": "playlist:1"})
        ),
        playlist
    );
    assert_eq!(
        ok(&engine, "LibraryCache._getStatus", json!({"userId": "user:alice"})),
        status
    );
    // The sequence continues where it stopped, without a gap.
    let before = engine.store().last_seq().expect("seq");
    let out = ok(
        &engine,
        "LibraryCache.merge",
        json!({"userId": "user:alice", "unlikes": ["track:c"]}),
    );
    assert_eq!(engine.store().last_seq().expect("seq"), before + 2, "{out}");
    let log = engine.store().read_log(0, usize::MAX).expect("log");
    assert!(
        log.iter().enumerate().all(|(i, e)| e.meta.seq == i as u64 + 1),
        "the global sequence has a gap"
    );
}

fn every_field_of_ingest_is_validated_with_its_path(store: TestStore) {
    let engine = store.engine();
    let cases = [
        (json!({}), "INVALID_INPUT", "userId"),
        (json!({"userId": ""}), "EMPTY_ID", "userId"),
        (json!({"userId": 7}), "INVALID_INPUT", "userId"),
        (json!({"userId": "u", "extra": 1}), "INVALID_INPUT", "extra"),
        (json!({"userId": "u", "tracks": {}}), "INVALID_INPUT", "tracks"),
        (
            json!({"userId": "u", "tracks": [{"title": "x"}]}),
            "INVALID_INPUT",
            "tracks[0]",
        ),
        (
            json!({"userId": "u", "tracks": [{"id": ""}]}),
            "EMPTY_ID",
            "tracks[0].id",
        ),
        (
            json!({"userId": "u", "tracks": [{"id": "a", "durationMs": -1}]}),
            "INVALID_INPUT",
            "tracks[0].durationMs",
        ),
        (
            json!({"userId": "u", "tracks": [{"id": "a", "year": "1999"}]}),
            "INVALID_INPUT",
            "tracks[0].year",
        ),
        (
            json!({"userId": "u", "tracks": [{"id": "a", "genres": "rock"}]}),
            "INVALID_INPUT",
            "tracks[0].genres",
        ),
        (
            json!({"userId": "u", "likes": [{"likedAt": "2025-01-01T00:00:00Z"}]}),
            "INVALID_INPUT",
            "likes[0]",
        ),
        (
            json!({"userId": "u", "likes": [{"trackId": "a"}, {"trackId": " "}]}),
            "EMPTY_ID",
            "likes[1].trackId",
        ),
        (
            json!({"userId": "u", "likes": [{"trackId": "a", "likedAt": "2025-13-01"}]}),
            "INVALID_TIME",
            "likes[0].likedAt",
        ),
        (
            json!({"userId": "u", "likes": [{"trackId": "a", "when": "x"}]}),
            "INVALID_INPUT",
            "likes[0]",
        ),
        (
            json!({"userId": "u", "plays": [{"trackId": "a"}]}),
            "INVALID_INPUT",
            "plays[0]",
        ),
        (
            json!({"userId": "u", "plays": [{"trackId": "a", "playedAt": "noon"}]}),
            "INVALID_TIME",
            "plays[0].playedAt",
        ),
        (
            json!({"userId": "u", "plays": [{"trackId": "", "playedAt": "2025-01-01T00:00:00Z"}]}),
            "EMPTY_ID",
            "plays[0].trackId",
        ),
        (
            json!({"userId": "u", "playlists": [{"id": "p", "entries": []}]}),
            "INVALID_INPUT",
            "playlists[0]",
        ),
        (
            json!({"userId": "u", "playlists": [{"id": "", "name": "n", "entries": []}]}),
            "EMPTY_ID",
            "playlists[0].id",
        ),
        (
            json!({"userId": "u", "playlists": [{"id": "p", "name": "n", "entries": ["a", ""]}]}),
            "EMPTY_ID",
            "playlists[0].entries[1]",
        ),
        (
            json!({"userId": "u", "playlists": [{"id": "p", "name": "n", "public": "yes", "entries": []}]}),
            "INVALID_INPUT",
            "playlists[0].public",
        ),
        (json!({"userId": "u\u{0}x"}), "INVALID_ID", "userId"),
    ];
    for (input, code, path) in cases {
        let answer = engine.invoke("LibraryCache", "ingest", input.clone()).result;
        let e = answer.expect_err(&format!("{input} should be refused"));
        assert_eq!(e.code, code, "{input}: {}", e.message);
        assert!(
            e.message.contains(path),
            "{input}: message {:?} does not name {path}",
            e.message
        );
        assert_eq!(e.kind.status(), 422, "{input}");
    }
    assert_eq!(
        engine.store().last_seq().expect("seq"),
        0,
        "a refused ingest wrote events"
    );
}

fn a_sync_that_changes_k_likes_writes_in_proportion_to_k(store: TestStore) {
    // I3: a library of 10,000 likes and 100 playlists; a sync that changes k likes.
    let engine = store.engine();
    let library = big_library("user:big", 10_000, 100);
    ok(&engine, "LibraryCache.ingest", library.clone());
    let concept = engine.registry().get("LibraryCache").expect("concept");
    let mut cost = Vec::new();
    for k in [2usize, 20, 200] {
        let mut snapshot = library.clone();
        let likes = snapshot["likes"].as_array_mut().expect("likes");
        // k/2 unliked (the oldest), k/2 newly liked (the newest).
        for _ in 0..k / 2 {
            likes.pop();
        }
        for i in 0..k / 2 {
            likes.insert(
                0,
                json!({"trackId": format!("new{k}-{i}"), "likedAt": time_of(20_000 + i)}),
            );
        }
        let ctx = concept_core::ActionCtx::new(uuid::Uuid::now_v7(), engine.now());
        let performed = concept
            .perform(
                &ctx,
                engine.store().view("LibraryCache").as_ref(),
                "sync",
                &decoded(&*concept, "sync", snapshot),
            )
            .expect("decides");
        let receipt = engine
            .store()
            .commit(Commit {
                concept: "LibraryCache".into(),
                appends: performed.appends,
                ..Commit::default()
            })
            .expect("commits");
        cost.push((k, receipt.events, receipt.projection_rows, receipt.bytes));
        // The sync really applied: rebuild the library to the original for the next round.
        let out = ok(&engine, "LibraryCache.sync", library.clone());
        assert_eq!(out["added"]["likes"], json!(k / 2), "{out}");
    }
    for &(k, events, rows, bytes) in &cost {
        println!("I3: sync changing {k} likes of 10,000: {events} events, {rows} projection rows, {bytes} bytes");
        // Unliked + Liked + Refreshed; rows: meta + at most 2 chunks and an index per map
        // touched, per changed like; bytes: at most a few chunks of ids per like.
        assert!(events <= 3, "k={k}: {events} events");
        assert!(rows <= 1 + 2 * 2 * (k + 1), "k={k}: {rows} projection rows");
        assert!(bytes <= 2_000 + k * 2 * 2 * 40_000, "k={k}: {bytes} bytes");
    }
    // The whole library is 10,000 likes: a 2-like change must write a small fraction of it.
    let (_, _, _, small) = cost[0];
    assert!(small < 200_000, "changing 2 likes wrote {small} bytes");
}

fn one_users_actions_never_change_another_users_library(store: TestStore) {
    let engine = store.engine();
    ok(&engine, "LibraryCache.ingest", alice_library());
    let mut bob = alice_library();
    bob["userId"] = json!("user:bob");
    ok(&engine, "LibraryCache.ingest", bob);
    let bob_before = (
        ok(&engine, "LibraryCache._getLiked", json!({"userId": "user:bob"})),
        ok(&engine, "LibraryCache._getPlays", json!({"userId": "user:bob"})),
        ok(&engine, "LibraryCache._getStatus", json!({"userId": "user:bob"})),
        ok(&engine, "LibraryCache._getPlaylists", json!({"userId": "user:bob"})),
    );
    ok(
        &engine,
        "LibraryCache.sync",
        json!({"userId": "user:alice", "likes": [], "playlists": [], "tracks": []}),
    );
    ok(
        &engine,
        "LibraryCache.merge",
        json!({"userId": "user:alice", "plays": [{"trackId": "track:b", "playedAt": "2025-11-01T00:00:00Z"}]}),
    );
    ok(&engine, "LibraryCache.clear", json!({"userId": "user:alice"}));
    let mut bob_after = (
        ok(&engine, "LibraryCache._getLiked", json!({"userId": "user:bob"})),
        ok(&engine, "LibraryCache._getPlays", json!({"userId": "user:bob"})),
        ok(&engine, "LibraryCache._getStatus", json!({"userId": "user:bob"})),
        ok(&engine, "LibraryCache._getPlaylists", json!({"userId": "user:bob"})),
    );
    bob_after.2["stale"] = bob_before.2["stale"].clone();
    assert_eq!(bob_before, bob_after);
    assert_eq!(
        ok(
            &engine,
            "LibraryCache._getPlaylist",
            json!({"playlistId": "playlist:1"})
        )["entries"],
        json!(["track:b", "track:a"])
    );
}

on_each_store!(
    rebuild_reproduces_live_projections_byte_for_byte,
    a_refused_action_writes_no_event_no_head_and_no_projection,
    a_commit_that_fails_midway_leaves_nothing_behind,
    a_store_reopened_after_close_answers_the_same,
    every_field_of_ingest_is_validated_with_its_path,
    a_sync_that_changes_k_likes_writes_in_proportion_to_k,
    one_users_actions_never_change_another_users_library,
);

/// An input decoded for one of a concept's actions, as the engine decodes it.
fn decoded(concept: &dyn concept_core::DynConcept, action: &str, input: serde_json::Value) -> concept_core::Decoded {
    concept
        .decode(action, &concept_core::Input::Value(input))
        .expect("the input decodes")
}
