//! Checker tests: one per kind of problem, each asserting the exact `file:line:col: message`, plus
//! files that must pass and several problems reported at once.

use crate::sync::{check, parse_sync_file, SyncFile};

use super::fixtures::concepts;

fn file(path: &str, text: &str) -> SyncFile {
    match parse_sync_file(path, text) {
        Ok(file) => file,
        Err(errors) => panic!("unexpected parse errors: {errors:?}"),
    }
}

/// The checker's messages for one file `c.sync` holding `text`.
fn problems(text: &str) -> Vec<String> {
    check(&[file("c.sync", text)], &concepts())
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// A sync that starts from a `Requesting.request` carrying `userId` and runs `rest`.
fn with_request(rest: &str) -> String {
    format!("sync S when Requesting.request (path: \"/p\", userId) : (request)\n{rest}")
}

#[test]
fn accepts_the_design_example_and_richer_syncs() {
    let liked = "# Answer GET-style requests for liked songs through the Requesting concept.
sync LikedSongs
when
    Requesting.request (path: \"/liked\", userId) : (request)
where
    LibraryCache._getLiked (userId) : (trackIds)
then
    Requesting.respond (request, trackIds)
";
    assert_eq!(problems(liked), Vec::<String>::new());
    let rich = "sync Refresh
when
    Scheduling.tick (at)
where
    Scheduling._staleUsers (limit: 10) : (userIds)
    userId in userIds
    LibraryCache._getLibrary (userId) : (library)
    like in library.likes
    not LibraryCache._getLiked (userId) : (trackIds: [])
    library.count > 0, like.likedAt != null, like.trackId == \"t\"
then
    LibraryCache.merge (userId, likes: [{trackId: like.trackId, likedAt: null}, like], limit: 5, mode: \"full\", weight: 2)
    LibraryCache.sync (userId, likes: library.likes)

sync Failed
when
    LibraryCache.merge (userId) : (error, code: \"NOT_FOUND\")
    Requesting.request (userId, anything: 1) : (request)
then
    Requesting.respond (request, status: 404, error, extra: {userId, code: 404})
";
    let rich = rich.replace(
        "not LibraryCache._getLiked (userId) : (trackIds: [])",
        "not LibraryCache._getLiked (userId)",
    );
    assert_eq!(problems(&rich), Vec::<String>::new());
}

#[test]
fn reports_an_unknown_concept() {
    assert_eq!(
        problems("sync S when LibraryCach.merge (userId) then LibraryCache.sync (userId)"),
        ["c.sync:1:13: unknown concept `LibraryCach` (did you mean `LibraryCache`?)"]
    );
    assert_eq!(
        problems("sync S when Spotify.fetched (userId) then LibraryCache.sync (userId)"),
        ["c.sync:1:13: unknown concept `Spotify` (known concepts: `Requesting`, `LibraryCache`, `Scheduling`; a concept served elsewhere is declared by a `Spotify.external.json` file in the sync directory or --concepts)"]
    );
}

#[test]
fn reports_an_unknown_action_or_query() {
    assert_eq!(
        problems(&with_request(
            "where LibraryCache._getLike (userId) : (trackIds) then Requesting.respond (request)"
        )),
        ["c.sync:2:20: unknown query `_getLike` of LibraryCache (did you mean `_getLiked`?)"]
    );
    assert_eq!(
        problems(&with_request("then LibraryCache.ingest (userId)")),
        ["c.sync:2:19: unknown action `ingest` of LibraryCache (LibraryCache's actions: `merge`, `sync`)"]
    );
}

#[test]
fn reports_a_query_in_when() {
    assert_eq!(
        problems("sync S when LibraryCache._getLiked (userId) then LibraryCache.sync (userId)"),
        ["c.sync:1:26: `when` matches completed actions, but LibraryCache._getLiked is a query (queries are not recorded; move it to `where`)"]
    );
}

#[test]
fn reports_an_action_in_where() {
    assert_eq!(
        problems(&with_request(
            "where LibraryCache.sync (userId) then Requesting.respond (request)"
        )),
        ["c.sync:2:20: `where` takes queries, but LibraryCache.sync is an action"]
    );
    assert_eq!(
        problems(&with_request(
            "where not Scheduling.tick (at: \"x\") then Requesting.respond (request)"
        )),
        ["c.sync:2:22: `where` takes queries, but Scheduling.tick is a system action"]
    );
}

#[test]
fn reports_queries_and_system_actions_in_then() {
    assert_eq!(
        problems(&with_request("then LibraryCache._getLiked (userId)")),
        ["c.sync:2:19: `then` invokes actions, but LibraryCache._getLiked is a query (move it to `where`)"]
    );
    assert_eq!(
        problems(&with_request("then Scheduling.tick (at: \"now\")")),
        ["c.sync:2:17: `then` invokes actions, but Scheduling.tick is a system action (only its own concept raises it)"]
    );
}

#[test]
fn reports_unknown_input_fields() {
    assert_eq!(
        problems(&with_request(
            "where LibraryCache._getLiked (usrId: userId) : (trackIds) then Requesting.respond (request)"
        )),
        ["c.sync:2:31: unknown input `usrId` of LibraryCache._getLiked (did you mean `userId`?)"]
    );
    assert_eq!(
        problems(&with_request("then LibraryCache.sync (userId, tracks: [])")),
        ["c.sync:2:33: unknown input `tracks` of LibraryCache.sync (its inputs: `userId`, `likes`)"]
    );
}

#[test]
fn open_inputs_accept_any_field() {
    assert_eq!(
        problems(&with_request(
            "then Requesting.respond (request, anything: [1, {a: userId}])"
        )),
        Vec::<String>::new()
    );
}

#[test]
fn reports_unknown_output_fields() {
    assert_eq!(
        problems(&with_request(
            "where LibraryCache._getLiked (userId) : (trackId) then Requesting.respond (request)"
        )),
        ["c.sync:2:42: unknown output `trackId` of LibraryCache._getLiked (did you mean `trackIds`?)"]
    );
    assert_eq!(
        problems(
            "sync S when LibraryCache.merge (userId) : (added, error, code, count) then LibraryCache.sync (userId)"
        ),
        ["c.sync:1:64: unknown output `count` of LibraryCache.merge (its outputs: `added`, `error`, `code`)"]
    );
}

#[test]
fn queries_have_no_error_output() {
    assert_eq!(
        problems(&with_request(
            "where LibraryCache._getLiked (userId) : (error) then Requesting.respond (request)"
        )),
        ["c.sync:2:42: unknown output `error` of LibraryCache._getLiked (its outputs: `trackIds`)"]
    );
}

#[test]
fn reports_variables_never_bound() {
    assert_eq!(
        problems(&with_request(
            "where LibraryCache._getLiked (userId: user) : (trackIds) then Requesting.respond (request)"
        )),
        ["c.sync:2:39: variable `user` is never bound (bind it in `when` or `where`)"]
    );
    assert_eq!(
        problems(&with_request("then Requesting.respond (request, trackIds)")),
        ["c.sync:2:35: variable `trackIds` is never bound (bind it in `when` or `where`)"]
    );
    assert_eq!(
        problems(&with_request(
            "where count > 1, x in items then Requesting.respond (request: requst)"
        )),
        [
            "c.sync:2:7: variable `count` is never bound (bind it in `when` or `where`)",
            "c.sync:2:23: variable `items` is never bound (bind it in `when` or `where`)",
            "c.sync:2:63: variable `requst` is never bound (did you mean `request`?)",
        ]
    );
}

#[test]
fn reports_variables_used_before_they_are_bound() {
    assert_eq!(
        problems(&with_request(
            "where trackId in trackIds\nLibraryCache._getLiked (userId) : (trackIds) then Requesting.respond (request, trackId)"
        )),
        ["c.sync:2:18: variable `trackIds` is used before it is bound (it is bound at c.sync:3:36; `where` clauses bind in order)"]
    );
}

#[test]
fn negated_queries_bind_nothing() {
    assert_eq!(
        problems(&with_request(
            "where not LibraryCache._getLiked (userId) : (trackIds) then Requesting.respond (request, trackIds)"
        )),
        ["c.sync:2:90: variable `trackIds` is never bound (bind it in `when` or `where`)"]
    );
}

#[test]
fn reports_literals_of_the_wrong_type() {
    assert_eq!(
        problems(&with_request(
            "where LibraryCache._getLiked (userId: 42) : (trackIds) then Requesting.respond (request)"
        )),
        ["c.sync:2:39: LibraryCache._getLiked input `userId` expects a string, found 42"]
    );
    assert_eq!(
        problems(&with_request(
            "then LibraryCache.merge (userId, likes: [], limit: 2.5, weight: \"heavy\", public: 1)"
        )),
        [
            "c.sync:2:52: LibraryCache.merge input `limit` expects an integer or null, found 2.5",
            "c.sync:2:65: LibraryCache.merge input `weight` expects a number or null, found \"heavy\"",
            "c.sync:2:82: LibraryCache.merge input `public` expects a boolean or null, found 1",
        ]
    );
    assert_eq!(
        problems("sync S when Scheduling.tick (at: null) : (error: 3) then LibraryCache.sync (userId: \"u\")"),
        [
            "c.sync:1:34: Scheduling.tick input `at` expects a string, found null",
            "c.sync:1:50: Scheduling.tick output `error` expects a string, found 3",
        ]
    );
}

#[test]
fn checks_literals_through_refs_items_and_enums() {
    assert_eq!(
        problems(&with_request(
            "then LibraryCache.merge (userId, likes: [{trackId: 5}, {likedAt: \"x\"}, \"t\", {trackId: \"a\", rating: 5}], mode: \"fast\")"
        )),
        [
            "c.sync:2:52: field `trackId` of an item of LibraryCache.merge input `likes` expects a string, found 5",
            "c.sync:2:56: missing required field `trackId` in an item of LibraryCache.merge input `likes`",
            "c.sync:2:72: an item of LibraryCache.merge input `likes` expects an object, found \"t\"",
            "c.sync:2:100: an item of LibraryCache.merge input `likes` has no field `rating`",
            "c.sync:2:111: LibraryCache.merge input `mode` expects one of \"full\", \"partial\", null, found \"fast\"",
        ]
    );
    assert_eq!(
        problems(&with_request(
            "then LibraryCache.merge (userId: {}, likes: {trackId: \"a\"})"
        )),
        [
            "c.sync:2:34: LibraryCache.merge input `userId` expects a string, found an object",
            "c.sync:2:45: LibraryCache.merge input `likes` expects an array, found an object",
        ]
    );
}

#[test]
fn reports_variables_whose_schema_type_does_not_fit() {
    assert_eq!(
        problems(&with_request(
            "where LibraryCache._getLiked (userId) : (trackIds)\nLibraryCache._getLibrary (userId: trackIds) : (library)\n\
             then LibraryCache.merge (userId: library.count, likes: trackIds)"
        )),
        [
            "c.sync:3:35: LibraryCache._getLibrary input `userId` expects a string, but `trackIds` is an array (bound by LibraryCache._getLiked output `trackIds`)",
            "c.sync:4:34: LibraryCache.merge input `userId` expects a string, but `library.count` is an integer (bound by LibraryCache._getLibrary output `library`)",
            "c.sync:4:56: an item of LibraryCache.merge input `likes` expects an object, but an item of `trackIds` is a string (bound by LibraryCache._getLiked output `trackIds`)",
        ]
    );
}

#[test]
fn reports_comparisons_that_can_never_hold() {
    assert_eq!(
        problems(&with_request(
            "where LibraryCache._getLibrary (userId) : (library)\nlibrary.count == \"3\", library.likes != null, x in library.count\n\
             then Requesting.respond (request)"
        )),
        [
            "c.sync:3:1: `library.count == \"3\"` compares `library.count` (an integer, bound by LibraryCache._getLibrary output `library`) with \"3\" (a string), which never match",
            "c.sync:3:23: `library.likes != null` compares `library.likes` (an array, bound by LibraryCache._getLibrary output `library`) with null (null), which never match",
            "c.sync:3:51: `x in library.count` needs a list, but `library.count` is an integer (bound by LibraryCache._getLibrary output `library`)",
        ]
    );
}

#[test]
fn reports_missing_required_inputs() {
    assert_eq!(
        problems(&with_request(
            "then LibraryCache.merge (likes: [])\nLibraryCache.sync ()"
        )),
        [
            "c.sync:2:6: missing required input `userId` of LibraryCache.merge",
            "c.sync:3:1: missing required input `userId` of LibraryCache.sync",
        ]
    );
}

#[test]
fn open_inputs_have_no_missing_inputs() {
    assert_eq!(
        problems("sync S when Scheduling.tick (at) then Requesting.respond ()"),
        Vec::<String>::new()
    );
}

#[test]
fn reports_every_problem_at_once_in_source_order() {
    let text = "sync A
when
    Requesting.request (path: 1, userId) : (requst)
where
    LibraryCache._getLikd (userId) : (trackIds)
    Nope._q (x)
then
    Requesting.respond (request, trackIds)
    LibraryCache.merge (userId: userId, likes: [{trackId: t}])

sync B
when
    LibraryCache._getLiked (userId)
then
    LibraryCache.sync ()
";
    assert_eq!(
        problems(text),
        [
            "c.sync:3:31: Requesting.request input `path` expects a string, found 1",
            "c.sync:3:45: unknown output `requst` of Requesting.request (did you mean `request`?)",
            "c.sync:5:18: unknown query `_getLikd` of LibraryCache (did you mean `_getLiked`?)",
            "c.sync:6:5: unknown concept `Nope` (known concepts: `Requesting`, `LibraryCache`, `Scheduling`; a concept served elsewhere is declared by a `Nope.external.json` file in the sync directory or --concepts)",
            "c.sync:6:14: variable `x` is never bound (bind it in `when` or `where`)",
            "c.sync:8:25: variable `request` is never bound (did you mean `requst`?)",
            "c.sync:9:59: variable `t` is never bound (bind it in `when` or `where`)",
            "c.sync:13:18: `when` matches completed actions, but LibraryCache._getLiked is a query (queries are not recorded; move it to `where`)",
            "c.sync:15:5: missing required input `userId` of LibraryCache.sync",
        ]
    );
}

#[test]
fn reports_sync_names_defined_in_two_files() {
    let a = file(
        "syncs/a.sync",
        "sync Same when Scheduling.tick (at) then LibraryCache.sync (userId: at)",
    );
    let b = file(
        "syncs/b.sync",
        "\n  sync Same when Scheduling.tick (at) then LibraryCache.sync (userId: at)",
    );
    let errors: Vec<String> = check(&[a, b], &concepts()).iter().map(ToString::to_string).collect();
    assert_eq!(
        errors,
        ["syncs/b.sync:2:3: sync `Same` is defined twice: here and at syncs/a.sync:1:1"]
    );
}

#[test]
fn without_concepts_every_name_is_unknown() {
    let errors: Vec<String> = check(&[file("c.sync", "sync S when A.a () then B.b ()")], &[])
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        errors,
        [
            "c.sync:1:13: unknown concept `A` (no concepts are loaded)",
            "c.sync:1:25: unknown concept `B` (no concepts are loaded)"
        ]
    );
}
