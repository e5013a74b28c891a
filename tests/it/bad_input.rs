//! Bad input against the real server binary: each case is answered with the right 4xx and a
//! short sentence naming the problem, the service stays up (`/healthz`), and nothing changes
//! (every query of the library answers as before, users named only by bad calls do not exist).
//! Also: a library liking one track 100,000 times (one like), and sync and trace files of
//! random bytes given to the CLI (a non-zero exit naming the place, never a panic).

use crate::common;

use common::server::{Rng, Server};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

/// What the queries say about the library (the `stale` flag, which depends on the clock, aside),
/// and that `victim` (named by bad ingests) has no library.
fn state(server: &Server) -> Vec<Value> {
    let mut out = Vec::new();
    for (path, body) in [
        ("/api/LibraryCache/_getStatus", json!({"userId": "user:alice"})),
        ("/api/LibraryCache/_getLiked", json!({"userId": "user:alice"})),
        ("/api/LibraryCache/_getLikes", json!({"userId": "user:alice"})),
        ("/api/LibraryCache/_getPlays", json!({"userId": "user:alice"})),
        ("/api/LibraryCache/_getTracks", json!({"userId": "user:alice"})),
        ("/api/LibraryCache/_getPlaylists", json!({"userId": "user:alice"})),
        ("/api/LibraryCache/_getPlaylist", json!({"playlistId": "playlist:1"})),
        ("/api/LibraryCache/_getTrack", json!({"trackId": "track:a"})),
        ("/api/LibraryCache/_getChanges", json!({"userId": "user:alice"})),
        ("/api/LibraryCache/_getStatus", json!({"userId": "victim"})),
    ] {
        let mut r = server.post(path, &body);
        if let Some(obj) = r.body.as_object_mut() {
            obj.remove("stale");
        }
        out.push(json!([path, r.status, r.body]));
    }
    out
}

struct Case {
    what: &'static str,
    path: &'static str,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
    /// Words the message must contain (it names the problem and, for input, the field).
    mentions: &'static [&'static str],
}

fn case(
    what: &'static str,
    path: &'static str,
    body: impl Into<Vec<u8>>,
    status: u16,
    code: &'static str,
    mentions: &'static [&'static str],
) -> Case {
    Case {
        what,
        path,
        body: body.into(),
        status,
        code,
        mentions,
    }
}

const MERGE: &str = "/api/LibraryCache/merge";
const INGEST: &str = "/api/LibraryCache/ingest";

fn with_like(like: Value) -> Vec<u8> {
    json!({"userId": "user:alice", "likes": [like]})
        .to_string()
        .into_bytes()
}

fn cases() -> Vec<Case> {
    let ten_mb = "x".repeat(10 * 1024 * 1024);
    let deep = format!(
        "{{\"userId\": \"user:alice\", \"likes\": {}{}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let deep_objects = format!("{}{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    vec![
        // Malformed JSON: 400.
        case(
            "truncated JSON",
            MERGE,
            "{\"userId\": \"user:alice\", ",
            400,
            "MALFORMED_JSON",
            &["not valid JSON", "EOF"],
        ),
        case(
            "single quotes",
            MERGE,
            "{'userId': 'user:alice'}",
            400,
            "MALFORMED_JSON",
            &["not valid JSON", "line 1 column 2"],
        ),
        case(
            "trailing garbage",
            MERGE,
            "{\"userId\": \"user:alice\"} x",
            400,
            "MALFORMED_JSON",
            &["trailing characters"],
        ),
        case(
            "NaN",
            MERGE,
            "{\"userId\": \"user:alice\", \"limit\": NaN}",
            400,
            "MALFORMED_JSON",
            &["not valid JSON"],
        ),
        case("empty body", MERGE, "", 400, "MALFORMED_JSON", &["empty"]),
        case(
            "nested 10,000 deep (arrays)",
            MERGE,
            deep,
            400,
            "MALFORMED_JSON",
            &["recursion limit"],
        ),
        case(
            "nested 10,000 deep (objects)",
            MERGE,
            deep_objects,
            400,
            "MALFORMED_JSON",
            &["recursion limit"],
        ),
        // Invalid UTF-8 and lone surrogates.
        case(
            "invalid UTF-8 bytes",
            MERGE,
            b"\xff\xfe{}".to_vec(),
            400,
            "MALFORMED_JSON",
            &["not valid JSON"],
        ),
        case(
            "invalid UTF-8 inside a string",
            INGEST,
            b"{\"userId\": \"vict\xc3\x28im\"}".to_vec(),
            400,
            "MALFORMED_JSON",
            &["not valid JSON", "line 1"],
        ),
        case(
            "a lone surrogate escape",
            INGEST,
            "{\"userId\": \"\\ud800victim\"}",
            400,
            "MALFORMED_JSON",
            &["escape", "line 1 column"],
        ),
        // Wrong types: 422 naming the field.
        case(
            "an array body",
            MERGE,
            "[1, 2]",
            422,
            "INVALID_INPUT",
            &["must be a JSON object"],
        ),
        case(
            "userId a number",
            MERGE,
            "{\"userId\": 5}",
            422,
            "INVALID_INPUT",
            &["`userId`", "integer"],
        ),
        case(
            "likes a string",
            MERGE,
            json!({"userId": "user:alice", "likes": "track:c"}).to_string(),
            422,
            "INVALID_INPUT",
            &["`likes`", "sequence"],
        ),
        case(
            "trackId a number",
            MERGE,
            with_like(json!({"trackId": 7})),
            422,
            "INVALID_INPUT",
            &["likes[0].trackId"],
        ),
        case(
            "a track's title an object",
            MERGE,
            json!({"userId": "user:alice", "tracks": [{"id": "track:a", "title": {"x": 1}}]}).to_string(),
            422,
            "INVALID_INPUT",
            &["tracks[0]", "title"],
        ),
        // Missing and unknown fields.
        case(
            "userId missing",
            MERGE,
            "{\"likes\": []}",
            422,
            "INVALID_INPUT",
            &["userId"],
        ),
        case(
            "trackId missing",
            MERGE,
            with_like(json!({"likedAt": "2025-10-01T09:00:00Z"})),
            422,
            "INVALID_INPUT",
            &["likes[0]", "trackId"],
        ),
        case(
            "an unknown field",
            MERGE,
            json!({"userId": "user:alice", "favourites": ["track:c"]}).to_string(),
            422,
            "INVALID_INPUT",
            &["favourites"],
        ),
        case(
            "an unknown field in a like",
            MERGE,
            with_like(json!({"trackId": "track:c", "stars": 5})),
            422,
            "INVALID_INPUT",
            &["likes[0]", "stars"],
        ),
        case(
            "a playlist without entries",
            INGEST,
            json!({"userId": "victim", "playlists": [{"id": "p", "name": "P"}]}).to_string(),
            422,
            "INVALID_INPUT",
            &["playlists[0]", "entries"],
        ),
        // A 10 MB string: refused with a short message that names the field.
        case(
            "a 10 MB userId",
            MERGE,
            json!({"userId": ten_mb}).to_string(),
            422,
            "INVALID_ID",
            &["`userId`", "longer than"],
        ),
        case(
            "a 10 MB likedAt",
            MERGE,
            with_like(json!({"trackId": "track:c", "likedAt": ten_mb})),
            422,
            "INVALID_TIME",
            &["likes[0].likedAt"],
        ),
        case(
            "a 10 MB string where a list belongs",
            MERGE,
            json!({"userId": "user:alice", "likes": ten_mb}).to_string(),
            422,
            "INVALID_INPUT",
            &["`likes`"],
        ),
        case(
            "a 10 MB unknown field name",
            MERGE,
            format!("{{\"userId\": \"user:alice\", \"{ten_mb}\": 1}}"),
            422,
            "INVALID_INPUT",
            &["unknown field", "expected one of"],
        ),
        // Numbers out of range.
        case(
            "durationMs 1e400",
            MERGE,
            "{\"userId\": \"user:alice\", \"tracks\": [{\"id\": \"track:a\", \"durationMs\": 1e400}]}",
            400,
            "MALFORMED_JSON",
            &["number out of range"],
        ),
        case(
            "durationMs -1",
            MERGE,
            json!({"userId": "user:alice", "tracks": [{"id": "track:a", "durationMs": -1}]}).to_string(),
            422,
            "INVALID_INPUT",
            &["tracks[0]", "durationMs", "-1"],
        ),
        case(
            "year beyond i32",
            MERGE,
            json!({"userId": "user:alice", "tracks": [{"id": "track:a", "year": 1u64 << 40}]}).to_string(),
            422,
            "INVALID_INPUT",
            &["tracks[0]", "year"],
        ),
        case(
            "limit 2^70",
            "/api/LibraryCache/_getLiked",
            "{\"userId\": \"user:alice\", \"limit\": 1180591620717411303424}",
            422,
            "INVALID_INPUT",
            &["`limit`"],
        ),
        case(
            "limit -1",
            "/api/LibraryCache/_getLiked",
            "{\"userId\": \"user:alice\", \"limit\": -1}",
            422,
            "INVALID_INPUT",
            &["`limit`"],
        ),
        case(
            "sinceVersion 2^64",
            "/api/LibraryCache/_getChanges",
            "{\"userId\": \"user:alice\", \"sinceVersion\": 18446744073709551616}",
            422,
            "INVALID_INPUT",
            &["`sinceVersion`"],
        ),
        case(
            "maxAge beyond a duration",
            "/api/LibraryCache/_getStatus",
            json!({"userId": "user:alice", "maxAge": u64::MAX}).to_string(),
            422,
            "INVALID_DURATION",
            &["maxAge"],
        ),
        // Invalid RFC 3339 times.
        case(
            "likedAt not a time",
            MERGE,
            with_like(json!({"trackId": "track:c", "likedAt": "yesterday"})),
            422,
            "INVALID_TIME",
            &["likes[0].likedAt", "RFC 3339"],
        ),
        case(
            "likedAt 30 February",
            MERGE,
            with_like(json!({"trackId": "track:c", "likedAt": "2025-02-30T00:00:00Z"})),
            422,
            "INVALID_TIME",
            &["likes[0].likedAt"],
        ),
        case(
            "likedAt without an offset",
            MERGE,
            with_like(json!({"trackId": "track:c", "likedAt": "2025-10-01T09:00:00"})),
            422,
            "INVALID_TIME",
            &["likes[0].likedAt"],
        ),
        case(
            "likedAt hour 25",
            MERGE,
            with_like(json!({"trackId": "track:c", "likedAt": "2025-10-01T25:00:00Z"})),
            422,
            "INVALID_TIME",
            &["likes[0].likedAt"],
        ),
        case(
            "playedAt empty",
            MERGE,
            json!({"userId": "user:alice", "plays": [{"trackId": "track:a", "playedAt": ""}]}).to_string(),
            422,
            "INVALID_TIME",
            &["plays[0].playedAt"],
        ),
        case(
            "since not a time",
            "/api/LibraryCache/_getLiked",
            json!({"userId": "user:alice", "since": "2025-10-01"}).to_string(),
            422,
            "INVALID_TIME",
            &["since"],
        ),
        // Empty ids.
        case(
            "userId empty",
            INGEST,
            json!({"userId": ""}).to_string(),
            422,
            "EMPTY_ID",
            &["`userId`"],
        ),
        case(
            "userId blank",
            INGEST,
            json!({"userId": "   "}).to_string(),
            422,
            "EMPTY_ID",
            &["`userId`"],
        ),
        case(
            "trackId empty",
            MERGE,
            with_like(json!({"trackId": ""})),
            422,
            "EMPTY_ID",
            &["likes[0].trackId"],
        ),
        case(
            "a playlist entry empty",
            INGEST,
            json!({"userId": "victim", "playlists": [{"id": "p", "name": "P", "entries": ["a", ""]}]}).to_string(),
            422,
            "EMPTY_ID",
            &["playlists[0].entries[1]"],
        ),
        case(
            "an unlike empty",
            MERGE,
            json!({"userId": "user:alice", "unlikes": [""]}).to_string(),
            422,
            "EMPTY_ID",
            &["unlikes[0]"],
        ),
        case(
            "a like through /api/like with an empty trackId",
            "/api/like",
            json!({"userId": "user:alice", "trackId": ""}).to_string(),
            422,
            "EMPTY_ID",
            &["trackId"],
        ),
        // A body over the limit (32 MiB by default).
        case(
            "a body over the limit",
            INGEST,
            json!({"userId": "victim", "tracks": [{"id": "t", "title": "y".repeat(33 * 1024 * 1024)}]}).to_string(),
            413,
            "BODY_TOO_LARGE",
            &["limit"],
        ),
    ]
}

#[test]
fn bad_input_is_refused_clearly_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    assert_eq!(server.post(INGEST, &common::alice_library()).status, 200);
    let before = state(&server);
    let mut wrong = Vec::new();
    for c in cases() {
        let r = server.post_raw(c.path, c.body);
        let message = r.body["error"].as_str().unwrap_or_default().to_string();
        let mut problems = Vec::new();
        if (r.status, r.body["code"].as_str()) != (c.status, Some(c.code)) {
            problems.push(format!(
                "answered {} {}, expected {} {}",
                r.status, r.body["code"], c.status, c.code
            ));
        }
        for m in c.mentions {
            if !message.contains(m) {
                problems.push(format!("the message does not mention {m:?}"));
            }
        }
        if message.is_empty() || message.len() > 1_000 {
            problems.push(format!("a message of {} bytes", message.len()));
        }
        if let Err(e) = server.health() {
            problems.push(format!("the service is down ({e})"));
        }
        if !problems.is_empty() {
            let shown: String = message.chars().take(300).collect();
            wrong.push(format!("{}: {} — message: {shown}", c.what, problems.join("; ")));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} case(s) answered wrongly:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert_eq!(state(&server), before, "a refused call changed the library");
}

#[test]
fn a_hundred_thousand_likes_of_one_track_are_one_like() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    let likes: Vec<Value> = (0..100_000)
        .map(|i| json!({"trackId": "track:r", "likedAt": common::time_of(i % 1000)}))
        .collect();
    let r = server.post(
        INGEST,
        &json!({"userId": "repeat", "tracks": [{"id": "track:r"}], "likes": likes}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["added"]["likes"], json!(1), "{}", r.body);
    let liked = server.post("/api/LibraryCache/_getLiked", &json!({"userId": "repeat"}));
    assert_eq!(liked.body, json!({"trackIds": ["track:r"]}));
    let status = server.post("/api/LibraryCache/_getStatus", &json!({"userId": "repeat"}));
    assert_eq!(status.body["likes"], json!(1), "{}", status.body);
    // The newest likedAt given wins.
    let stored = server.post("/api/LibraryCache/_getLikes", &json!({"userId": "repeat"}));
    let at = stored.body["likes"][0]["likedAt"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let parsed = chrono::DateTime::parse_from_rfc3339(&at).unwrap_or_else(|e| panic!("{at:?}: {e}"));
    let newest = chrono::DateTime::parse_from_rfc3339(&common::time_of(999)).expect("time");
    assert_eq!(parsed, newest, "{}", stored.body);
    // The same through a merge of an existing like: nothing added, still one like.
    let r = server.post(MERGE, &json!({"userId": "repeat", "likes": likes}));
    assert_eq!((r.status, &r.body["added"]["likes"]), (200, &json!(0)), "{}", r.body);
    let liked = server.post("/api/LibraryCache/_getLiked", &json!({"userId": "repeat"}));
    assert_eq!(liked.body, json!({"trackIds": ["track:r"]}));
    assert!(server.healthy());
}

fn random_bytes(rng: &mut Rng, n: usize, printable: bool) -> Vec<u8> {
    (0..n)
        .map(|_| {
            if printable {
                match rng.below(20) {
                    0 => b'\n',
                    1 => b'(',
                    2 => b'{',
                    3 => b'"',
                    _ => rng.range(0x20, 0x7f) as u8,
                }
            } else {
                rng.below(256) as u8
            }
        })
        .collect()
}

fn run_cli(args: &[&str], file: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_librarycache"))
        .args(args)
        .arg(file)
        .output()
        .expect("runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A line of `output` starts `name:line:col:` (with `col`) or `name:line:` (without).
fn has_place(output: &str, name: &str, with_col: bool) -> bool {
    output.lines().any(|line| {
        let Some(pos) = line.find(name) else { return false };
        let mut rest = line[pos + name.len()..].split(':');
        let _ = rest.next(); // empty: the text between the name and its colon
        let line_no = rest.next().is_some_and(|l| l.parse::<u32>().is_ok_and(|n| n >= 1));
        let col_no = !with_col || rest.next().is_some_and(|c| c.parse::<u32>().is_ok_and(|n| n >= 1));
        line_no && col_no
    })
}

#[test]
fn sync_and_trace_files_of_random_bytes_are_refused_with_their_place() {
    let mut rng = Rng::new(common::server::seed("random files"));
    let dir = tempfile::tempdir().expect("tempdir");
    for round in 0..6 {
        let printable = round % 2 == 1;
        let bytes = random_bytes(&mut rng, 4096, printable);

        let syncs = dir.path().join(format!("syncs{round}"));
        std::fs::create_dir(&syncs).expect("dir");
        std::fs::write(syncs.join("random.sync"), &bytes).expect("write");
        let (ok, out) = run_cli(&["check", "--syncs"], &syncs);
        assert!(!ok, "check accepted random bytes:\n{out}");
        assert!(!out.contains("panicked"), "check panicked:\n{out}");
        assert!(has_place(&out, "random.sync", true), "no file:line:col in:\n{out}");

        let trace = dir.path().join(format!("random{round}.trace"));
        std::fs::write(&trace, &bytes).expect("write");
        let syncs_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("syncs");
        let out = Command::new(env!("CARGO_BIN_EXE_librarycache"))
            .arg("trace")
            .arg("--syncs")
            .arg(&syncs_dir)
            .arg(&trace)
            .output()
            .expect("runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "trace accepted random bytes:\n{text}");
        assert!(!text.contains("panicked"), "trace panicked:\n{text}");
        assert!(
            has_place(&text, &format!("random{round}.trace"), false),
            "no file:line in:\n{text}"
        );
    }
}
