//! `librarycache import --format spotify-export DIR` end to end: export files written here in
//! each of Spotify's historic formats (account data's `YourLibrary.json`, `Playlist1.json` and
//! `StreamingHistory*.json`; the extended history's `Streaming_History_Audio_*.json` and older
//! `endsong_*.json`), the real binary run on a real store, and the result read back through
//! LibraryCache's queries: plays under 30 s not counted, a play in two formats counted once, a
//! re-import recording nothing (no event, the version as it was), plays already cached not
//! duplicated, audiobook rows skipped and counted, the account data and the extended history
//! imported one after the other in either order giving the library one import of both gives, a
//! malformed file named with the exact line:column of the bad value and nothing written (also an
//! empty file and a Git LFS pointer), history without `YourLibrary.json`.

use crate::common;

use common::{engine_at, ok};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const USER: &str = "user:alice";

/// Runs `import --format spotify-export` of `export` into the store at `data`.
fn import(data: &Path, export: &Path) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_librarycache"))
        .args(["import", "--user", USER, "--format", "spotify-export", "--data"])
        .arg(data)
        .arg("--syncs")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("syncs"))
        .arg(export)
        .env_remove("LIBRARYCACHE_DATA")
        .output()
        .expect("runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(dir: &Path, name: &str, value: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(&path, serde_json::to_string_pretty(value).expect("json")).expect("write");
    path
}

/// A `StreamingHistory` row (account data): minute-precision end time, names only.
fn account_play(end: &str, artist: &str, title: &str, ms: u64) -> Value {
    json!({"endTime": end, "artistName": artist, "trackName": title, "msPlayed": ms})
}

/// A `Streaming_History_Audio_*` row (the current extended history).
fn audio_play(ts: &str, uri: &str, title: &str, artist: &str, ms: u64) -> Value {
    json!({
        "ts": ts, "platform": "android", "ms_played": ms, "conn_country": "SE", "ip_addr": "192.0.2.1",
        "master_metadata_track_name": title, "master_metadata_album_artist_name": artist,
        "master_metadata_album_album_name": "First", "spotify_track_uri": uri,
        "episode_name": null, "episode_show_name": null, "spotify_episode_uri": null,
        "audiobook_title": null, "audiobook_uri": null, "audiobook_chapter_uri": null,
        "audiobook_chapter_title": null, "reason_start": "trackdone", "reason_end": "trackdone",
        "shuffle": false, "skipped": false, "offline": false, "offline_timestamp": null,
        "incognito_mode": false
    })
}

/// An `endsong_*` row (the older extended history, with its older field names).
fn endsong_play(ts: &str, uri: Option<&str>, title: Option<&str>, artist: Option<&str>, ms: u64) -> Value {
    json!({
        "ts": ts, "username": "alice", "platform": "Linux", "ms_played": ms, "conn_country": "SE",
        "ip_addr_decrypted": "192.0.2.1", "user_agent_decrypted": "unknown",
        "master_metadata_track_name": title, "master_metadata_album_artist_name": artist,
        "master_metadata_album_album_name": null, "spotify_track_uri": uri,
        "episode_name": null, "episode_show_name": null, "spotify_episode_uri": null,
        "reason_start": "clickrow", "reason_end": "endplay", "shuffle": null, "skipped": null,
        "offline": false, "offline_timestamp": 0, "incognito_mode": false
    })
}

fn library_track(uri: &str, title: &str) -> Value {
    json!({"artist": "Band", "album": "First", "track": title, "uri": uri})
}

/// Alice's export, as the unpacked archives lay it out: the account data and the extended
/// history in folders of their own.
fn alice_export(root: &Path) {
    let account = root.join("my_spotify_data/Spotify Account Data");
    write(
        &account,
        "YourLibrary.json",
        &json!({
            "tracks": [library_track("spotify:track:t1", "Opening"), library_track("spotify:track:t2", "Closing")],
            "albums": [{"artist": "Band", "album": "First", "uri": "spotify:album:a1"}],
            "shows": [], "episodes": [], "bannedTracks": [], "artists": [], "bannedArtists": [], "other": []
        }),
    );
    write(
        &account,
        "Playlist1.json",
        &json!({"playlists": [{
        "name": "Road trip", "lastModifiedDate": "2021-02-20", "description": null, "numberOfFollowers": 0,
        "items": [
            {"track": {"trackName": "Opening", "artistName": "Band", "albumName": "First", "trackUri": "spotify:track:t1"},
             "episode": null, "localTrack": null, "addedDate": "2021-02-01"},
            {"track": null, "episode": {"episodeName": "Ep 1", "showName": "Talk", "episodeUri": "spotify:episode:e1"},
             "localTrack": null, "addedDate": "2021-02-02"},
            {"track": null, "episode": null, "localTrack": {"uri": "spotify:local:Me:Demo:Demo+Song:180"}, "addedDate": "2021-02-03"},
            {"track": null, "episode": null, "localTrack": null, "addedDate": "2021-02-04"},
            {"track": {"trackName": "Solo", "artistName": "Singer", "albumName": "Alone", "trackUri": "spotify:track:t3"},
             "episode": null, "localTrack": null, "addedDate": "2021-02-05"}
        ]}]}),
    );
    write(
        &account,
        "StreamingHistory_music_0.json",
        &json!([
            account_play("2021-03-01 10:00", "Band", "Opening", 200_000),
            account_play("2021-03-01 10:05", "band", "closing", 31_000),
            account_play("2021-03-01 10:10", "Band", "Opening", 29_999),
            account_play("2021-03-01 10:20", "Unknown Artist", "Rare Song", 120_000),
        ]),
    );
    write(
        &account,
        "StreamingHistory_podcast_0.json",
        &json!([{"endTime": "2021-03-01 11:00", "podcastName": "Talk", "episodeName": "Ep 1", "msPlayed": 1_800_000}]),
    );
    write(&account, "Userdata.json", &json!({"username": "alice"}));
    let extended = root.join("my_spotify_data/Spotify Extended Streaming History");
    let mut podcast = audio_play("2021-03-02T08:00:00Z", "", "", "", 1_200_000);
    podcast["spotify_track_uri"] = Value::Null;
    podcast["master_metadata_track_name"] = Value::Null;
    podcast["episode_name"] = json!("Ep 2");
    podcast["spotify_episode_uri"] = json!("spotify:episode:e2");
    write(
        &extended,
        "Streaming_History_Audio_2021_0.json",
        &json!([
            audio_play("2021-03-02T09:00:30Z", "spotify:track:t3", "Solo", "Singer", 180_000),
            audio_play("2021-03-02T09:05:00Z", "spotify:track:t1", "Opening", "Band", 5_000),
            podcast,
            // The account data's 10:00 play of Opening, to the second.
            audio_play("2021-03-01T10:00:20Z", "spotify:track:t1", "Opening", "Band", 200_000),
        ]),
    );
    write(
        &extended,
        "endsong_0.json",
        &json!([
            endsong_play(
                "2020-12-31T23:59:59Z",
                Some("spotify:track:t2"),
                Some("Closing"),
                Some("Band"),
                240_000
            ),
            endsong_play("2020-12-30T10:00:00Z", None, None, None, 100_000),
        ]),
    );
    write(&extended, "ReadMeFirst_ExtendedStreamingHistory.json", &json!({}));
}

const RARE: &str = "spotify-export:track:unknown artist:rare song";

fn alice_plays() -> BTreeSet<(String, String)> {
    [
        ("spotify:track:t2", "2020-12-31T23:59:59Z"),
        ("spotify:track:t1", "2021-03-01T10:00:20Z"),
        ("spotify:track:t2", "2021-03-01T10:05:00Z"),
        (RARE, "2021-03-01T10:20:00Z"),
        ("spotify:track:t3", "2021-03-02T09:00:30Z"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect()
}

fn plays(data: &Path) -> BTreeSet<(String, String)> {
    plays_of(&engine_at(data))
}

fn plays_of(engine: &librarycache::engine::Engine) -> BTreeSet<(String, String)> {
    let out = ok(engine, "LibraryCache._getPlays", json!({"userId": USER, "limit": 1000}));
    out["plays"]
        .as_array()
        .expect("plays")
        .iter()
        .map(|p| {
            (
                p["trackId"].as_str().expect("id").to_string(),
                p["playedAt"].as_str().expect("at").to_string(),
            )
        })
        .collect()
}

fn status(data: &Path) -> Value {
    ok(&engine_at(data), "LibraryCache._getStatus", json!({"userId": USER}))
}

#[test]
fn every_historic_format_is_imported_and_plays_under_30_seconds_are_not_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, export) = (dir.path().join("store"), dir.path().join("export"));
    alice_export(&export);
    let (success, out, err) = import(&data, &export);
    assert!(success, "{out}{err}");
    assert!(
        out.contains("read 6 file(s)")
            && out.contains("1 YourLibrary.json, 1 playlist files, 2 StreamingHistory files, 2 extended history files"),
        "{out}"
    );
    assert!(
        out.contains(
            "plays: 11 history rows; 5 counted and new, 2 under 30 s, 1 duplicates (0 already cached, 1 twice in the export), 2 podcasts skipped, 0 audiobook rows skipped, 1 rows without a track skipped"
        ),
        "{out}"
    );
    assert!(
        out.contains("2 matched to a track by artist and title, 1 given a derived id"),
        "{out}"
    );
    assert!(out.contains("LibraryCache.ingest: 5 plays, 2 likes"), "{out}");

    assert_eq!(plays(&data), alice_plays());
    let engine = engine_at(&data);
    assert_eq!(
        ok(&engine, "LibraryCache._getLiked", json!({"userId": USER}))["trackIds"],
        json!(["spotify:track:t1", "spotify:track:t2"])
    );
    let lists = ok(&engine, "LibraryCache._getPlaylists", json!({"userId": USER}));
    assert_eq!(lists["playlists"].as_array().map(Vec::len), Some(1), "{lists}");
    let road_trip = ok(
        &engine,
        "LibraryCache._getPlaylist",
        json!({"playlistId": "spotify-export:user:alice:playlist:Road trip"}),
    );
    assert_eq!(
        road_trip["entries"],
        json!([
            "spotify:track:t1",
            "spotify:episode:e1",
            "spotify:local:Me:Demo:Demo+Song:180",
            "spotify:track:t3"
        ])
    );
    assert_eq!(road_trip["lastModifiedDate"], json!("2021-02-20"));
    let rare = ok(&engine, "LibraryCache._getTrack", json!({"trackId": RARE}));
    assert_eq!(
        (rare["title"].as_str(), rare["artist"].as_str()),
        (Some("Rare Song"), Some("Unknown Artist"))
    );
    let solo = ok(
        &engine,
        "LibraryCache._getTrack",
        json!({"trackId": "spotify:track:t3"}),
    );
    assert_eq!(
        solo,
        json!({"id": "spotify:track:t3", "title": "Solo", "artist": "Singer", "album": "Alone", "uri": "spotify:track:t3"})
    );
    let episode = ok(
        &engine,
        "LibraryCache._getTrack",
        json!({"trackId": "spotify:episode:e1"}),
    );
    assert_eq!(episode["kind"], json!("episode"));
}

#[test]
fn a_second_import_of_the_same_export_adds_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, export) = (dir.path().join("store"), dir.path().join("export"));
    alice_export(&export);
    assert!(import(&data, &export).0);
    let before = status(&data);
    let (success, out, err) = import(&data, &export);
    assert!(success, "{out}{err}");
    assert!(
        out.contains("0 counted and new") && out.contains("6 already cached, 0 twice in the export"),
        "{out}"
    );
    assert!(
        out.contains("LibraryCache.merge: 0 plays, 0 likes, 0 tracks added"),
        "{out}"
    );
    assert!(out.contains("playlists: 1 merged (0 new, 0 changed)"), "{out}");
    assert_eq!(
        status(&data),
        before,
        "nothing recorded: the version, syncedAt and every count as they were"
    );
    assert_eq!(changes(&data), before["version"], "no event");
    assert_eq!(plays(&data), alice_plays());
}

/// The version the last event left, as `_getChanges` reads the log.
fn changes(data: &Path) -> Value {
    ok(
        &engine_at(data),
        "LibraryCache._getChanges",
        json!({"userId": USER, "limit": 10000}),
    )["version"]
        .clone()
}

#[test]
fn plays_likes_and_playlists_already_cached_are_neither_duplicated_nor_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, export) = (dir.path().join("store"), dir.path().join("export"));
    alice_export(&export);
    // A later play the account data has, and its metadata, as a Spotify read leaves them.
    write(
        &export,
        "my_spotify_data/Spotify Account Data/StreamingHistory_music_1.json",
        &json!([
            account_play("2021-03-05 08:00", "Old Band", "Cached Song", 200_000),
            account_play("2021-03-05 09:00", "Old Band", "Cached Song", 200_000),
        ]),
    );
    {
        let engine = engine_at(&data);
        ok(
            &engine,
            "LibraryCache.ingest",
            json!({
                "userId": USER,
                "tracks": [
                    {"id": "spotify:track:t1", "title": "Opening", "artist": "Band", "durationMs": 200000, "isrc": "SE123"},
                    {"id": "spotify:track:t7", "title": "Cached Song", "artist": "Old Band, Guest"},
                    {"id": "spotify:track:t8", "title": "Kept", "artist": "Band"}
                ],
                "likes": [{"trackId": "spotify:track:t8", "likedAt": "2024-01-01T00:00:00Z"}],
                "plays": [
                    // The Web API's played_at of the extended history's 10:00:20 play.
                    {"trackId": "spotify:track:t1", "playedAt": "2021-03-01T10:00:21.345Z"},
                    {"trackId": "spotify:track:t7", "playedAt": "2021-03-05T08:00:41Z"}
                ],
                "playlists": [{"id": "spotify:playlist:rt", "name": "Road trip", "snapshotId": "s9",
                               "entries": ["spotify:track:t8"]}]
            }),
        );
    }
    let (success, out, err) = import(&data, &export);
    assert!(success, "{out}{err}");
    assert!(out.contains("3 already cached, 0 twice in the export"), "{out}");
    assert!(out.contains("1 kept as read from Spotify"), "{out}");
    let mut expected = alice_plays();
    expected.remove(&("spotify:track:t1".to_string(), "2021-03-01T10:00:20Z".to_string()));
    expected.insert(("spotify:track:t1".into(), "2021-03-01T10:00:21.345Z".into()));
    expected.insert(("spotify:track:t7".into(), "2021-03-05T08:00:41Z".into()));
    expected.insert(("spotify:track:t7".into(), "2021-03-05T09:00:00Z".into()));
    assert_eq!(plays(&data), expected);
    let engine = engine_at(&data);
    assert_eq!(
        ok(&engine, "LibraryCache._getLiked", json!({"userId": USER}))["trackIds"],
        json!(["spotify:track:t1", "spotify:track:t2", "spotify:track:t8"]),
        "the cached like stays; the export's are added"
    );
    let lists = ok(&engine, "LibraryCache._getPlaylists", json!({"userId": USER}));
    let ids: Vec<&str> = lists["playlists"]
        .as_array()
        .expect("playlists")
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    assert_eq!(ids, ["spotify:playlist:rt"], "Spotify's own copy of Road trip is kept");
    let t1 = ok(
        &engine,
        "LibraryCache._getTrack",
        json!({"trackId": "spotify:track:t1"}),
    );
    assert_eq!(
        (t1["durationMs"].as_u64(), t1["isrc"].as_str()),
        (Some(200_000), Some("SE123")),
        "the export's sparser names do not replace cached metadata: {t1}"
    );
}

/// `StreamingHistory` rows laid out as Spotify writes them: `[`, then per row `  {`, one line per
/// field (`    "key" : value`) and `  }`, so row `i`'s field `k` (0-based) is on line 3 + 6i + k.
fn spotify_layout(rows: &[Value]) -> String {
    let mut out = String::from("[");
    for (i, row) in rows.iter().enumerate() {
        out.push_str(if i == 0 { "\n  {\n" } else { ",\n  {\n" });
        let fields: Vec<String> = row
            .as_object()
            .expect("a row")
            .iter()
            .map(|(k, v)| format!("    {} : {v}", json!(k)))
            .collect();
        out.push_str(&fields.join(",\n"));
        out.push_str("\n  }");
    }
    out.push_str("\n]");
    out
}

/// 1,000 rows of four fields (endTime, artistName, trackName, msPlayed, in that order).
fn many_rows() -> Vec<Value> {
    (0..1000)
        .map(|i| {
            let mut row = serde_json::Map::new();
            row.insert(
                "endTime".into(),
                json!(format!("2021-03-01 {:02}:{:02}", i / 60 % 24, i % 60)),
            );
            row.insert("artistName".into(), json!("Beyoncé"));
            row.insert("trackName".into(), json!(format!("Song {i}")));
            row.insert("msPlayed".into(), json!(200_000));
            Value::Object(row)
        })
        .collect()
}

#[test]
fn a_malformed_file_is_named_with_its_position_and_nothing_is_imported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, export) = (dir.path().join("store"), dir.path().join("export"));
    alice_export(&export);
    ok(
        &engine_at(&data),
        "LibraryCache.ingest",
        json!({"userId": USER, "likes": [{"trackId": "spotify:track:t8"}]}),
    );
    let before = status(&data);
    let history = "my_spotify_data/Spotify Account Data/StreamingHistory_music_0.json";
    // Row 500's endTime (field 0) is on line 3 + 3000 = 3003; its value starts at column 17
    // (`    "endTime" : ` is 16 characters). Row 700 lacks msPlayed: the row, from its `{` on line
    // 2 + 4200 = 4202, column 3. Row 900's msPlayed (field 3, line 3 + 5400 + 3) is a string.
    // A file cut short ends where it ends.
    let mut bad_time = many_rows();
    bad_time[500]["endTime"] = json!("2021-13-01 10:00");
    let mut missing = many_rows();
    missing[700].as_object_mut().expect("row").remove("msPlayed");
    let mut wrong_type = many_rows();
    wrong_type[900]["msPlayed"] = json!("long");
    let cases = [
        (
            spotify_layout(&bad_time),
            "StreamingHistory_music_0.json:3003:17: at [500].endTime: expected a time as YYYY-MM-DD HH:MM, found \"2021-13-01 10:00\"".to_string(),
        ),
        (
            spotify_layout(&missing),
            "StreamingHistory_music_0.json:4202:3: at [700]: missing field `msPlayed`".to_string(),
        ),
        (
            spotify_layout(&wrong_type),
            "StreamingHistory_music_0.json:5406:18: at [900].msPlayed: invalid type: string \"long\", expected u64".to_string(),
        ),
        (
            "[{\"endTime\": \"2021-03-01 10:00\", \"artistName\": \"Band\"".to_string(),
            "StreamingHistory_music_0.json:1:53: not valid JSON: EOF while parsing an object".to_string(),
        ),
        (
            String::new(),
            "StreamingHistory_music_0.json: the file is empty (0 bytes): there is nothing to read".to_string(),
        ),
        (
            "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 3212840\n".to_string(),
            "StreamingHistory_music_0.json: this is a Git LFS pointer (to 3212840 bytes of content kept in Git LFS), not the file itself".to_string(),
        ),
    ];
    // The layout itself parses: only the bad value is refused.
    std::fs::write(export.join(history), spotify_layout(&many_rows())).expect("write");
    let probe = tempfile::tempdir().expect("tempdir");
    let (success, out, err) = import(&probe.path().join("store"), &export);
    assert!(success, "{out}{err}");
    for (text, message) in cases {
        std::fs::write(export.join(history), text).expect("write");
        let (success, out, err) = import(&data, &export);
        assert!(!success, "{out}");
        assert!(err.contains(&message), "{message}\nin {err}");
        assert!(err.contains("nothing was imported"), "{err}");
        assert_eq!(status(&data), before, "the cache is unchanged");
    }
}

/// An audiobook row of a 2024 account-data export (`StreamingHistory_audiobook_0.json`).
fn audiobook_row(end: &str) -> Value {
    json!({"endTime": end, "audiobookName": "A Long Book", "chapterName": "Chapter 3",
           "authorName": "An Author", "msPlayed": 1_800_000})
}

#[test]
fn audiobook_rows_are_skipped_and_counted_never_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, export) = (dir.path().join("store"), dir.path().join("export"));
    alice_export(&export);
    let account = export.join("my_spotify_data/Spotify Account Data");
    write(
        &account,
        "StreamingHistory_audiobook_0.json",
        &json!([audiobook_row("2024-05-01 20:00"), audiobook_row("2024-05-02 20:00")]),
    );
    let extended = export.join("my_spotify_data/Spotify Extended Streaming History");
    let mut chapter = audio_play("2024-05-03T20:00:00Z", "", "", "", 1_800_000);
    chapter["spotify_track_uri"] = Value::Null;
    chapter["master_metadata_track_name"] = Value::Null;
    chapter["audiobook_title"] = json!("A Long Book");
    chapter["audiobook_uri"] = json!("spotify:audiobook:b1");
    chapter["audiobook_chapter_uri"] = json!("spotify:chapter:c3");
    chapter["audiobook_chapter_title"] = json!("Chapter 3");
    write(&extended, "Streaming_History_Audio_2024.json", &json!([chapter]));
    let (success, out, err) = import(&data, &export);
    assert!(success, "{out}{err}");
    assert!(out.contains("read 8 file(s)"), "{out}");
    assert!(
        out.contains("plays: 14 history rows; 5 counted and new") && out.contains("3 audiobook rows skipped"),
        "{out}"
    );
    assert_eq!(plays(&data), alice_plays(), "no play of a chapter");
}

/// An extended-history row of `uri` on album `album`.
fn extended_play(ts: &str, uri: &str, title: &str, artist: &str, album: &str, ms: u64) -> Value {
    let mut row = audio_play(ts, uri, title, artist, ms);
    row["master_metadata_album_album_name"] = json!(album);
    row
}

/// Bo's two archives, in folders of their own under `root`: the account data (`account`) and the
/// extended history (`extended`). What each alone knows differs:
/// - Opening (t1) is liked: the account data resolves its row by name; the extended history has
///   the same play to the second;
/// - Jingle (t9), a 45-second song, was played twice within one minute: the account data has two
///   rows of the same minute (one play, alone), the extended history both plays; only the
///   extended history knows its URI;
/// - Closing (t2) is in the account data only by name, at a time the extended history (which has
///   another play of it) does not cover;
/// - Rare Song is nowhere but in the account data: it keeps its derived id whatever the order;
/// - both hold audiobook chapters, skipped.
fn bo_export(root: &Path) -> (PathBuf, PathBuf) {
    let account = root.join("Spotify Account Data");
    let extended = root.join("Spotify Extended Streaming History");
    write(
        &account,
        "YourLibrary.json",
        &json!({"tracks": [library_track("spotify:track:t1", "Opening")]}),
    );
    write(
        &account,
        "Playlist1.json",
        &json!({"playlists": [{"name": "Road trip", "lastModifiedDate": "2021-02-20", "items": [
            {"track": {"trackName": "Opening", "artistName": "Band", "albumName": "First", "trackUri": "spotify:track:t1"},
             "episode": null, "localTrack": null},
            {"track": {"trackName": "Solo", "artistName": "Singer", "albumName": "Alone", "trackUri": "spotify:track:t3"},
             "episode": null, "localTrack": null}
        ]}]}),
    );
    write(
        &account,
        "StreamingHistory_music_0.json",
        &json!([
            account_play("2021-03-01 10:00", "Band", "Opening", 200_000),
            account_play("2021-03-01 11:00", "Band", "Jingle", 40_000),
            account_play("2021-03-01 11:00", "Band", "Jingle", 40_000),
            account_play("2021-03-01 12:00", "Nobody", "Rare Song", 120_000),
            account_play("2021-03-01 13:00", "Band", "Closing", 240_000),
        ]),
    );
    write(
        &account,
        "StreamingHistory_audiobook_0.json",
        &json!([audiobook_row("2021-03-01 21:00")]),
    );
    let mut chapter = audio_play("2021-03-01T22:00:00Z", "", "", "", 1_800_000);
    chapter["spotify_track_uri"] = Value::Null;
    chapter["master_metadata_track_name"] = Value::Null;
    chapter["audiobook_title"] = json!("A Long Book");
    chapter["audiobook_uri"] = json!("spotify:audiobook:b1");
    write(
        &extended,
        "Streaming_History_Audio_2021.json",
        &json!([
            extended_play(
                "2021-02-01T08:00:00Z",
                "spotify:track:t2",
                "Closing",
                "Band",
                "First",
                240_000
            ),
            extended_play(
                "2021-03-01T10:00:20Z",
                "spotify:track:t1",
                "Opening",
                "Band",
                "First",
                200_000
            ),
            extended_play(
                "2021-03-01T11:00:05Z",
                "spotify:track:t9",
                "Jingle",
                "Band",
                "Ads",
                40_000
            ),
            extended_play(
                "2021-03-01T11:00:50Z",
                "spotify:track:t9",
                "Jingle",
                "Band",
                "Ads",
                40_000
            ),
            chapter,
            extended_play(
                "2021-03-02T09:00:30Z",
                "spotify:track:t3",
                "Solo",
                "Singer",
                "Alone",
                180_000
            ),
        ]),
    );
    (account, extended)
}

/// What a library holds, as its queries answer it: the tracks with their metadata, the liked
/// ids in order (their times are the import's), the plays, the playlists with their entries.
fn library(data: &Path) -> Value {
    let engine = engine_at(data);
    let playlists: Vec<Value> = ok(&engine, "LibraryCache._getPlaylists", json!({"userId": USER}))["playlists"]
        .as_array()
        .expect("playlists")
        .iter()
        .map(|p| ok(&engine, "LibraryCache._getPlaylist", json!({"playlistId": p["id"]})))
        .collect();
    json!({
        "tracks": ok(&engine, "LibraryCache._getTracks", json!({"userId": USER, "limit": 1000}))["tracks"],
        "liked": ok(&engine, "LibraryCache._getLiked", json!({"userId": USER}))["trackIds"],
        "plays": plays_of(&engine).into_iter().collect::<Vec<_>>(),
        "playlists": playlists,
    })
}

#[test]
fn account_data_and_extended_history_give_one_library_in_either_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let export = dir.path().join("export");
    let (account, extended) = bo_export(&export);

    // Both at once.
    let together = dir.path().join("together");
    let (success, out, err) = import(&together, &export);
    assert!(success, "{out}{err}");
    assert!(out.contains("2 audiobook rows skipped"), "{out}");
    let expected = library(&together);
    let plays: BTreeSet<(String, String)> = [
        ("spotify:track:t2", "2021-02-01T08:00:00Z"),
        ("spotify:track:t1", "2021-03-01T10:00:20Z"),
        ("spotify:track:t9", "2021-03-01T11:00:05Z"),
        ("spotify:track:t9", "2021-03-01T11:00:50Z"),
        ("spotify-export:track:nobody:rare song", "2021-03-01T12:00:00Z"),
        ("spotify:track:t2", "2021-03-01T13:00:00Z"),
        ("spotify:track:t3", "2021-03-02T09:00:30Z"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(super_plays(&expected), plays, "{expected:#}");
    let ids: Vec<&str> = expected["tracks"]
        .as_array()
        .expect("tracks")
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "spotify-export:track:nobody:rare song",
            "spotify:track:t1",
            "spotify:track:t2",
            "spotify:track:t3",
            "spotify:track:t9"
        ]
    );
    assert_eq!(expected["liked"], json!(["spotify:track:t1"]));

    // The account data first: Jingle and Closing are known only by name until the extended
    // history brings their URIs; then they are re-keyed and the minute records of Opening and
    // Jingle give way to their times to the second (Jingle's second play, lost as a same-minute
    // repeat alone, comes back).
    let account_first = dir.path().join("account-first");
    let (success, out, err) = import(&account_first, &account);
    assert!(success, "{out}{err}");
    assert!(
        out.contains("1 matched to a track by artist and title, 4 given a derived id"),
        "{out}"
    );
    let (success, out, err) = import(&account_first, &extended);
    assert!(success, "{out}{err}");
    assert!(
        out.contains("plays cached to the minute given their time to the second: 2"),
        "{out}"
    );
    assert!(
        out.contains("tracks known only by name given their Spotify id: 2 (1 plays and 0 likes moved)"),
        "{out}"
    );
    assert_eq!(library(&account_first), expected, "account data, then extended history");

    // The extended history first: every account-data row but Rare Song's resolves to a URI the
    // cache holds, and its plays are already there.
    let extended_first = dir.path().join("extended-first");
    let (success, out, err) = import(&extended_first, &extended);
    assert!(success, "{out}{err}");
    let (success, out, err) = import(&extended_first, &account);
    assert!(success, "{out}{err}");
    assert!(out.contains("3 already cached"), "{out}");
    assert_eq!(
        library(&extended_first),
        expected,
        "extended history, then account data"
    );

    // Importing any of them again into any of the libraries records nothing.
    for data in [&together, &account_first, &extended_first] {
        let before = status(data);
        for again in [&export, &account, &extended] {
            let (success, out, err) = import(data, again);
            assert!(success, "{out}{err}");
            assert!(out.contains("0 counted and new"), "{out}");
            assert_eq!(status(data), before, "{} again: nothing recorded", again.display());
        }
        assert_eq!(library(data), expected);
    }
}

fn super_plays(library: &Value) -> BTreeSet<(String, String)> {
    serde_json::from_value(library["plays"].clone()).expect("plays")
}

#[test]
fn history_alone_without_your_library_still_imports_plays() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, export) = (dir.path().join("store"), dir.path().join("export"));
    // The older account-data name, and the older extended history.
    write(
        &export,
        "StreamingHistory0.json",
        &json!([account_play("2019-05-01 21:13", "Band", "Opening", 60_000)]),
    );
    write(
        &export,
        "endsong_3.json",
        &json!([endsong_play(
            "2019-05-02T07:00:01Z",
            Some("spotify:track:t1"),
            Some("Opening"),
            Some("Band"),
            90_000
        )]),
    );
    let (success, out, err) = import(&data, &export);
    assert!(success, "{out}{err}");
    assert!(out.contains("likes: 0 in the export"), "{out}");
    let expected: BTreeSet<(String, String)> = [
        ("spotify:track:t1", "2019-05-01T21:13:00Z"),
        ("spotify:track:t1", "2019-05-02T07:00:01Z"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(
        plays(&data),
        expected,
        "the name resolves through the extended history's URI"
    );
}

#[test]
fn a_directory_without_export_files_says_what_was_looked_for() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, export) = (dir.path().join("store"), dir.path().join("export"));
    write(&export, "Userdata.json", &json!({"username": "alice"}));
    let (success, _, err) = import(&data, &export);
    assert!(!success);
    assert!(
        err.contains("no Spotify export files") && err.contains("YourLibrary.json") && err.contains("endsong_*.json"),
        "{err}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_librarycache"))
        .args(["import", "--user", USER, "--format", "itunes", "x"])
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("spotify-export"), "{err}");
}

#[test]
fn a_spotify_read_gives_the_tracks_an_export_knew_only_by_name_their_ids() {
    use common::server::Server;
    use common::spotify::{track, FakeSpotify, Liked};
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().expect("tempdir");
    let (data, export) = (dir.path().join("store"), dir.path().join("export"));
    // Account data alone: its rows name songs that neither its liked songs nor a playlist have.
    write(
        &export,
        "StreamingHistory_music_0.json",
        &json!([
            account_play("2024-05-01 20:00", "Artist", "Song t001", 200_000),
            account_play("2024-05-02 20:00", "artist", "song t001", 200_000),
            account_play("2024-05-03 20:00", "Someone", "Unheard Of", 200_000),
        ]),
    );
    let (success, out, err) = import(&data, &export);
    assert!(success, "{out}{err}");
    assert!(out.contains("3 given a derived id"), "{out}");

    // Spotify knows the song: liked, as t001 ("Song t001" by "Artist").
    let spotify = FakeSpotify::start("access-0", "refresh-0");
    spotify.library(|l| {
        l.liked.push(Liked {
            track: Some(track("t001")),
            added_at: "2025-01-01T00:00:00Z".into(),
        })
    });
    let (api, accounts) = (spotify.api_base(), spotify.accounts_base());
    let server = Server::start(
        &data,
        &["--spotify-api-base", &api, "--spotify-accounts-base", &accounts],
    );
    let r = server.post(
        "/api/SpotifySource/connect",
        &json!({"userId": USER, "accessToken": "access-0", "refreshToken": "refresh-0",
                "clientId": "client", "clientSecret": "secret"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // The read, its sync and the re-key run in the background: wait for the plays to move.
    let want: BTreeSet<(String, String)> = [
        ("spotify:track:t001", "2024-05-01T20:00:00Z"),
        ("spotify:track:t001", "2024-05-02T20:00:00Z"),
        ("spotify-export:track:someone:unheard of", "2024-05-03T20:00:00Z"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let plays = loop {
        let r = server.post("/api/LibraryCache/_getPlays", &json!({"userId": USER}));
        let plays: BTreeSet<(String, String)> = r.body["plays"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| Some((p["trackId"].as_str()?.to_string(), p["playedAt"].as_str()?.to_string())))
            .collect();
        if plays == want || Instant::now() > deadline {
            break plays;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(plays, want, "the derived id's plays moved to the URI the read brought");
    let tracks = server.post("/api/LibraryCache/_getTracks", &json!({"userId": USER}));
    let ids: Vec<&str> = tracks.body["tracks"]
        .as_array()
        .expect("tracks")
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    assert_eq!(ids, ["spotify:track:t001"], "a complete read's tracks: {}", tracks.body);
    let changes = server.post("/api/LibraryCache/_getChanges", &json!({"userId": USER, "limit": 1000}));
    let kinds: Vec<&str> = changes.body["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter_map(|c| c["kind"].as_str())
        .collect();
    assert_eq!(kinds.last(), Some(&"rekeyed"), "{kinds:?}");
}
