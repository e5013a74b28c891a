//! Paging that never skips: `_getPlays`, `_getLiked` and `_getChanges` followed page by page
//! through their `nextCursor` give exactly the unpaged answer, whatever the page size — plays
//! sharing a timestamp and likes sharing a `likedAt` included — and entries added between two
//! pages neither hide nor repeat an entry that was there before (a property test on a real engine
//! over a real store).

use crate::common;

use common::{fresh_engine, ok};
use librarycache::engine::Engine;
use proptest::prelude::*;
use serde_json::{json, Value};

const USER: &str = "user:pager";

/// A time among a few (so many entries share one): minute `m` of a fixed day.
fn at(m: u64) -> String {
    format!("2025-06-01T10:{:02}:00Z", m % 60)
}

/// Follows `query`'s pages of `limit` through `nextCursor`, calling `between` after each page;
/// the entries of every page, in order (`items` picks them from an answer).
fn paged(engine: &Engine, query: &str, limit: u64, items: &str, mut between: impl FnMut(usize)) -> Vec<Value> {
    let mut all = Vec::new();
    let mut input = json!({"userId": USER, "limit": limit});
    for page in 0.. {
        let out = ok(engine, &format!("LibraryCache.{query}"), input.clone());
        let got = out[items].as_array().expect("items").clone();
        assert!(
            got.len() as u64 <= limit || query == "_getChanges" && page == 0,
            "{query} answered {} entries for a limit of {limit}",
            got.len()
        );
        all.extend(got);
        between(page);
        match out["nextCursor"].as_str() {
            Some(cursor) => input["cursor"] = json!(cursor),
            None => break,
        }
        assert!(page < 10_000, "{query} never ended");
    }
    all
}

fn ingest(engine: &Engine, plays: &[(u64, u64)], likes: &[(u64, u64)]) {
    let plays: Vec<Value> = plays
        .iter()
        .map(|(m, t)| json!({"trackId": format!("t{t:02}"), "playedAt": at(*m)}))
        .collect();
    let likes: Vec<Value> = likes
        .iter()
        .map(|(t, m)| json!({"trackId": format!("t{t:02}"), "likedAt": at(*m)}))
        .collect();
    ok(
        engine,
        "LibraryCache.ingest",
        json!({"userId": USER, "plays": plays, "likes": likes}),
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn pages_of_any_size_concatenate_to_the_unpaged_answer(
        plays in proptest::collection::vec((0u64..4, 0u64..30), 0..70),
        likes in proptest::collection::vec((0u64..40, 0u64..3), 0..50),
        merges in proptest::collection::vec(proptest::collection::vec((0u64..40, 0u64..3), 0..6), 0..6),
        limit in 1u64..12,
    ) {
        let (_dir, engine) = fresh_engine();
        ingest(&engine, &plays, &likes);
        // Some history for _getChanges: merges of a few likes (and unlikes).
        for (i, merge) in merges.iter().enumerate() {
            let likes: Vec<Value> = merge
                .iter()
                .map(|(t, m)| json!({"trackId": format!("t{t:02}"), "likedAt": at(*m + 10)}))
                .collect();
            ok(&engine, "LibraryCache.merge", json!({"userId": USER, "likes": likes, "unlikes": [format!("t{i:02}")]}));
        }

        let unpaged = ok(&engine, "LibraryCache._getPlays", json!({"userId": USER, "limit": 100_000}));
        let all_plays = unpaged["plays"].as_array().expect("plays").clone();
        prop_assert!(unpaged["nextCursor"].is_null());
        prop_assert_eq!(paged(&engine, "_getPlays", limit, "plays", |_| ()), all_plays);

        let unpaged = ok(&engine, "LibraryCache._getLiked", json!({"userId": USER}));
        let all_likes = unpaged["trackIds"].as_array().expect("trackIds").clone();
        prop_assert_eq!(paged(&engine, "_getLiked", limit, "trackIds", |_| ()), all_likes);

        let unpaged = ok(&engine, "LibraryCache._getChanges", json!({"userId": USER, "limit": 10_000}));
        let all_changes = unpaged["changes"].as_array().expect("changes").clone();
        prop_assert_eq!(paged(&engine, "_getChanges", limit, "changes", |_| ()), all_changes);
    }

    #[test]
    fn entries_added_between_pages_hide_and_repeat_nothing_that_was_there(
        plays in proptest::collection::vec((0u64..4, 0u64..30), 1..60),
        likes in proptest::collection::vec((0u64..40, 0u64..3), 1..40),
        added in proptest::collection::vec((0u64..5, 30u64..60), 1..8),
        limit in 1u64..8,
    ) {
        let (_dir, engine) = fresh_engine();
        ingest(&engine, &plays, &likes);
        let before = ok(&engine, "LibraryCache._getPlays", json!({"userId": USER, "limit": 100_000}))["plays"]
            .as_array()
            .expect("plays")
            .clone();
        let liked_before = ok(&engine, "LibraryCache._getLiked", json!({"userId": USER}))["trackIds"]
            .as_array()
            .expect("trackIds")
            .clone();
        // Between pages, plays arrive at times before, among and after the ones listed (new
        // tracks, so new plays), and likes newer and older than the listed ones.
        let mut next = added.iter();
        let got = paged(&engine, "_getPlays", limit, "plays", |_| {
            if let Some((m, t)) = next.next() {
                ok(&engine, "LibraryCache.merge", json!({"userId": USER, "plays": [
                    {"trackId": format!("t{t:02}"), "playedAt": at(*m)}]}));
            }
        });
        let kept: Vec<Value> = got.into_iter().filter(|p| before.contains(p)).collect();
        prop_assert_eq!(kept, before);

        let mut next = added.iter();
        let got = paged(&engine, "_getLiked", limit, "trackIds", |_| {
            if let Some((m, t)) = next.next() {
                ok(&engine, "LibraryCache.merge", json!({"userId": USER, "likes": [
                    {"trackId": format!("n{t:02}"), "likedAt": at(*m * 10)}]}));
            }
        });
        let kept: Vec<Value> = got.into_iter().filter(|id| liked_before.contains(id)).collect();
        prop_assert_eq!(kept, liked_before);
    }
}

#[test]
fn plays_sharing_a_timestamp_at_a_page_boundary_are_not_skipped() {
    let (_dir, engine) = fresh_engine();
    // Three plays at one minute, two at the next: `until` (exclusive, no tie-breaker) would
    // skip the second and third of the first minute after a page of one ended on its first.
    ingest(&engine, &[(1, 1), (1, 2), (1, 3), (2, 4), (2, 5)], &[]);
    let first = ok(&engine, "LibraryCache._getPlays", json!({"userId": USER, "limit": 3}));
    assert_eq!(first["plays"].as_array().map(Vec::len), Some(3));
    let cursor = first["nextCursor"].as_str().expect("a cursor: more follow");
    let second = ok(
        &engine,
        "LibraryCache._getPlays",
        json!({"userId": USER, "limit": 3, "cursor": cursor}),
    );
    assert_eq!(
        second,
        json!({"plays": [
            {"trackId": "t02", "playedAt": "2025-06-01T10:01:00Z"},
            {"trackId": "t03", "playedAt": "2025-06-01T10:01:00Z"}
        ]}),
        "the rest of the shared minute, and no cursor: nothing follows"
    );
    // A cursor is opaque but checked: another query's, or made up, is refused with its field.
    for bad in ["x", "p1234", "p00000000zz000000", "l7ff99e4782761ecd0000000000000002"] {
        let code = common::refused(
            &engine,
            "LibraryCache._getPlays",
            json!({"userId": USER, "cursor": bad}),
        );
        assert_eq!(code, "INVALID_CURSOR", "{bad}");
    }
}
