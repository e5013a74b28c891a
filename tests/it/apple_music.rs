//! AppleMusicSource against a local server speaking the part of the Apple Music API it reads
//! (tests/it/common/apple.rs), through the real service: library songs in pages followed by
//! `next`, ratings as likes (a love is a like, a dislike is not), playlists and their tracks in
//! order (one without tracks, answered 404 as Apple does), a song without a catalog id, the
//! developer token signed by the service with the MusicKit key (the fake checks the ES256
//! signature, key id and team id), a second read after loves are added and removed, an expired
//! Music-User-Token (NEEDS_REAUTH until connecting again), a 429 (retryAt, fetch refused), and
//! connect's refusals.

use crate::common;

use common::apple::{musickit_key, song, FakeAppleMusic};
use common::server::Server;
use common::source_reads::Reads;
use serde_json::{json, Value};

const USER: &str = "user:dana:apple";
const KEY_ID: &str = "ABC123DEFG";
const TEAM_ID: &str = "TEAM456HIJ";

fn sid(n: u32) -> String {
    format!("apple:library-song:i.S{n}")
}

fn liked(server: &Server) -> Vec<String> {
    let r = server.post("/api/LibraryCache/_getLiked", &json!({"userId": USER}));
    let mut ids: Vec<String> = serde_json::from_value(r.body["trackIds"].clone()).unwrap_or_default();
    ids.sort();
    ids
}

fn query(server: &Server, name: &str, body: Value) -> Value {
    let r = server.post(&format!("/api/LibraryCache/{name}"), &body);
    assert_eq!(r.status, 200, "{name}: {}", r.body);
    r.body
}

#[test]
fn the_library_is_read_in_pages_with_ratings_playlists_and_the_failures_the_api_gives() {
    let (pem, public) = musickit_key();
    let fake = FakeAppleMusic::start(public, KEY_ID, TEAM_ID, "music-user-token-1");
    // 250 songs (three pages of 100); every tenth uploaded from the user's files (no catalog id).
    fake.set_songs((0..250).map(|n| song(n, n % 10 == 0)).collect());
    fake.rate("i.S1", 1);
    fake.rate("i.S5", 1);
    fake.rate("i.S150", 1);
    fake.rate("i.S2", -1);
    fake.add_playlist("p.Road", "Road trip", &["i.S5", "i.S1", "i.S5", "i.S240"]);
    fake.add_playlist("p.Empty", "Nothing yet", &[]);

    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path().join("data"), &["--apple-music-api-base", &fake.api_base()]);
    let reads = Reads {
        server: &server,
        concept: "AppleMusicSource",
        user: USER,
    };

    // connect's refusals: a developer token or a key is needed, and a key must be one.
    let r = server.post(
        "/api/AppleMusicSource/connect",
        &json!({"userId": USER, "musicUserToken": "t"}),
    );
    assert_eq!(
        (r.status, r.body["code"].clone()),
        (422, json!("DEVELOPER_TOKEN_REQUIRED")),
        "{}",
        r.body
    );
    let r = server.post(
        "/api/AppleMusicSource/connect",
        &json!({"userId": USER, "musicUserToken": "t", "privateKey": "not a key", "keyId": KEY_ID, "teamId": TEAM_ID}),
    );
    assert_eq!(
        (r.status, r.body["code"].clone()),
        (422, json!("INVALID_PRIVATE_KEY")),
        "{}",
        r.body
    );

    // Connecting starts the first read; the service signs the developer token itself.
    let connect = json!({"userId": USER, "musicUserToken": "music-user-token-1", "privateKey": pem, "keyId": KEY_ID, "teamId": TEAM_ID});
    reads.ok("connect", connect.clone());
    let first = reads.wait(None);
    assert_eq!(
        (first["phase"].clone(), first["complete"].clone()),
        (json!("done"), json!(true)),
        "{first}"
    );
    assert_eq!(first["counts"]["tracks"], 250);
    assert_eq!(first["counts"]["likes"], 3);
    assert_eq!(first["counts"]["playlists"], 2);
    let connection = reads.ok("_getConnection", json!({"userId": USER}));
    assert_eq!(connection["signsDeveloperTokens"], true);
    assert!(!connection.to_string().contains("music-user-token-1") && !connection.to_string().contains("PRIVATE KEY"));

    // Paging: three pages of songs, `next` followed with the page size asked again.
    let log = fake.log();
    let pages: Vec<&String> = log.iter().filter(|l| l.starts_with("/v1/me/library/songs?")).collect();
    assert_eq!(
        pages,
        vec![
            "/v1/me/library/songs?limit=100",
            "/v1/me/library/songs?limit=100&offset=100",
            "/v1/me/library/songs?limit=100&offset=200"
        ]
    );
    assert_eq!(
        log.iter()
            .filter(|l| l.starts_with("/v1/me/ratings/library-songs?"))
            .count(),
        3
    );

    // Loves are likes; the dislike is not.
    assert_eq!(liked(&server), vec![sid(1), sid(150), sid(5)]);
    // A song with a catalog id keeps it; one uploaded from the user's files has none.
    let matched = query(&server, "_getTrack", json!({"trackId": sid(11)}));
    assert_eq!(
        (matched["title"].clone(), matched["catalogId"].clone()),
        (json!("Song 11"), json!("1440000011"))
    );
    let uploaded = query(&server, "_getTrack", json!({"trackId": sid(10)}));
    assert_eq!(uploaded["title"], "Song 10");
    assert!(uploaded.get("catalogId").is_none(), "{uploaded}");
    // Playlists: entries in order with repeats; the one without tracks (404) is empty.
    let road = query(
        &server,
        "_getPlaylist",
        json!({"playlistId": "apple:library-playlist:p.Road"}),
    );
    assert_eq!(road["entries"], json!([sid(5), sid(1), sid(5), sid(240)]));
    let empty = query(
        &server,
        "_getPlaylist",
        json!({"playlistId": "apple:library-playlist:p.Empty"}),
    );
    assert_eq!(
        (empty["name"].clone(), empty["entries"].clone()),
        (json!("Nothing yet"), json!([]))
    );

    // Dana loves S7 and takes the love off S5: the next read (complete) adds one, removes one.
    fake.rate("i.S7", 1);
    fake.rate("i.S5", 0);
    let second = reads.again(&first);
    assert_eq!(second["phase"], "done", "{second}");
    assert_eq!(liked(&server), vec![sid(1), sid(150), sid(7)]);

    // The user's token expires: the read fails NEEDS_REAUTH, fetch is refused until dana
    // connects again with a new one.
    fake.expire_user_token();
    let expired = reads.again(&second);
    assert_eq!(
        (
            expired["phase"].clone(),
            expired["code"].clone(),
            expired["needsReauth"].clone()
        ),
        (json!("failed"), json!("NEEDS_REAUTH"), json!(true)),
        "{expired}"
    );
    let r = server.post("/api/AppleMusicSource/fetch", &json!({"userId": USER}));
    assert_eq!((r.status, r.body["code"].clone()), (409, json!("NEEDS_REAUTH")));
    assert_eq!(
        liked(&server),
        vec![sid(1), sid(150), sid(7)],
        "the cache is left as it was"
    );
    let mut again = connect.clone();
    again["musicUserToken"] = json!("a token issued since");
    reads.ok("connect", again);
    let reconnected = reads.wait(Some(&expired));
    assert_eq!(reconnected["phase"], "done", "{reconnected}");

    // A 429 asking for two hours: the read ends RATE_LIMITED with retryAt, and fetch is refused
    // until then; the cache is left as it was.
    fake.throttle(&[7200]);
    let limited = reads.again(&reconnected);
    assert_eq!(
        (limited["phase"].clone(), limited["code"].clone()),
        (json!("failed"), json!("RATE_LIMITED")),
        "{limited}"
    );
    assert!(limited["retryAt"].is_string(), "{limited}");
    let r = server.post("/api/AppleMusicSource/fetch", &json!({"userId": USER}));
    assert_eq!((r.status, r.body["code"].clone()), (429, json!("RATE_LIMITED")));
    assert_eq!(liked(&server), vec![sid(1), sid(150), sid(7)]);

    // Both Apple sources are listed under `sources` (the web page's footer reads that list), and
    // `stats` shows the last read.
    let schema: Value = server
        .client
        .get(format!("{}/api/schema", server.base))
        .send()
        .expect("schema")
        .json()
        .expect("json");
    let sources = schema["sources"].as_array().expect("sources");
    assert!(
        sources.contains(&json!("AppleMusicSource")) && sources.contains(&json!("AppleLibraryFile")),
        "{sources:?}"
    );
    let mut server = server;
    server.kill();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_librarycache"))
        .args(["stats", "--user", USER, "--data"])
        .arg(dir.path().join("data"))
        .env_remove("LIBRARYCACHE_DATA")
        .output()
        .expect("stats");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("apple music last read failed") && text.contains("(RATE_LIMITED); asked to wait until"),
        "{text}"
    );
    assert!(text.contains("likes       3"), "{text}");
}
