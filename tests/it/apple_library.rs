//! Apple Music's library file end to end: `Library.xml` files written here as Music.app exports
//! them (tests/it/common/apple.rs), `librarycache import --format apple-library` run as the real
//! binary on a real store, and the AppleLibraryFile source watching a file through the real
//! server; results read back through LibraryCache's queries. Tracks, likes (Loved, Favorited —
//! not Disliked), last plays, playlists (master library, kinds and folders left out, smart ones
//! marked); a second import as a complete read (likes and playlists removed, plays merged); a
//! malformed file named with line:column and nothing written; a large file's time and peak
//! memory; the watched file read again only when its modification time moved.

use crate::common;

use common::apple::{file_track, write_big_library, write_library, FilePlaylist, FileTrack, Kind};
use common::server::Server;
use common::source_reads::Reads;
use common::{engine_at, ok, refused};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

const USER: &str = "user:carol:apple";

/// The `import --format apple-library FILE` command into the store at `data`.
fn import_command(data: &Path, file: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_librarycache"));
    command
        .args(["import", "--user", USER, "--format", "apple-library", "--data"])
        .arg(data)
        .arg("--syncs")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("syncs"))
        .arg(file)
        .env_remove("LIBRARYCACHE_DATA");
    command
}

/// Runs `import --format apple-library FILE` into the store at `data`.
fn import(data: &Path, file: &Path) -> (bool, String, String) {
    let out = import_command(data, file).output().expect("runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn tid(n: u64) -> String {
    format!("apple:track:{n:016X}")
}

/// Twenty tracks (0..20 by `file_track`), one without a Persistent ID, and the playlists a
/// real library has: the library itself, a kind, a folder, a smart playlist and two of carol's.
fn carol(tracks: &mut Vec<FileTrack>) -> Vec<FilePlaylist> {
    tracks.extend((0..20).map(file_track));
    tracks.push(FileTrack {
        track_id: 5000,
        persistent_id: None,
        name: "A stream without an id".into(),
        date_modified: "2026-01-01T00:00:00Z".into(),
        ..FileTrack::default()
    });
    vec![
        FilePlaylist {
            persistent_id: "MASTER0000000000".into(),
            name: "Library".into(),
            kind: Kind::Master,
            items: vec![1000, 1001],
        },
        FilePlaylist {
            persistent_id: "MUSIC00000000000".into(),
            name: "Music".into(),
            kind: Kind::Distinguished(4),
            items: vec![1000],
        },
        FilePlaylist {
            persistent_id: "FOLDER0000000000".into(),
            name: "Mixes".into(),
            kind: Kind::Folder,
            items: vec![],
        },
        FilePlaylist {
            persistent_id: "SMART00000000000".into(),
            name: "Recently Played".into(),
            kind: Kind::Smart,
            items: vec![1002, 1001],
        },
        FilePlaylist {
            persistent_id: "P000000000000001".into(),
            name: "Road trip".into(),
            kind: Kind::Normal,
            items: vec![1005, 5000, 1003, 1005, 1019],
        },
        FilePlaylist {
            persistent_id: "P000000000000002".into(),
            name: "Quiet".into(),
            kind: Kind::Normal,
            items: vec![1007],
        },
    ]
}

#[test]
fn an_import_gives_tracks_likes_plays_and_playlists_and_a_second_one_is_a_complete_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, file) = (dir.path().join("data"), dir.path().join("Library.xml"));
    let mut tracks = Vec::new();
    let playlists = carol(&mut tracks);
    write_library(&file, tracks.clone(), &playlists);

    let (success, out, err) = import(&data, &file);
    assert!(success, "{out}\n{err}");
    assert!(
        out.contains(
            ": 20 tracks (1 without a Persistent ID skipped), 4 likes, 13 last plays, 3 playlists (3 left out"
        ),
        "{out}"
    );
    assert!(
        out.contains("LibraryCache.ingest: added 20 tracks, 4 likes, 13 plays, 3 playlists"),
        "{out}"
    );

    let engine = engine_at(&data);
    // Loved: 1 and 11; Favorited: 2 and 12; Disliked (3, 13) are not likes. Newest Date Modified first.
    let liked = ok(&engine, "LibraryCache._getLiked", json!({"userId": USER}));
    assert_eq!(liked["trackIds"], json!([tid(12), tid(2), tid(11), tid(1)]));
    let track = ok(&engine, "LibraryCache._getTrack", json!({"trackId": tid(4)}));
    assert_eq!(track["title"], "Song 4");
    assert_eq!(track["artist"], "Artist 4");
    assert_eq!(track["albumArtist"], "Artist 4");
    assert_eq!(track["album"], "Album 4");
    assert_eq!(track["durationMs"], 215000);
    assert_eq!(track["year"], 2019);
    assert_eq!(track["trackType"], "Remote");
    assert_eq!(track["appleMusic"], true);
    assert_eq!(track["catalogId"], "1440000004");
    assert_eq!(track["playCount"], 4);
    let local = ok(&engine, "LibraryCache._getTrack", json!({"trackId": tid(5)}));
    assert_eq!(
        (local["appleMusic"].clone(), local.get("catalogId")),
        (json!(false), None)
    );
    let road = ok(
        &engine,
        "LibraryCache._getPlaylist",
        json!({"playlistId": "apple:playlist:P000000000000001"}),
    );
    assert_eq!(road["name"], "Road trip");
    assert_eq!(road["smart"], false);
    assert_eq!(
        road["entries"],
        json!([tid(5), tid(3), tid(5), tid(19)]),
        "in order, repeats kept, the track without an id left out"
    );
    let smart = ok(
        &engine,
        "LibraryCache._getPlaylist",
        json!({"playlistId": "apple:playlist:SMART00000000000"}),
    );
    assert_eq!(
        (smart["smart"].clone(), smart["entries"].clone()),
        (json!(true), json!([tid(2), tid(1)]))
    );
    for left_out in ["MASTER0000000000", "MUSIC00000000000", "FOLDER0000000000"] {
        refused(
            &engine,
            "LibraryCache._getPlaylist",
            json!({"playlistId": format!("apple:playlist:{left_out}")}),
        );
    }
    let plays = ok(&engine, "LibraryCache._getPlays", json!({"userId": USER}));
    assert!(
        plays.to_string().contains("2026-10-02T01:00:00Z"),
        "track 1's last play: {plays}"
    );
    drop(engine);

    // Carol unloves 1, plays 2 again, deletes "Quiet": the next import is a complete read.
    tracks[1].loved = false;
    tracks[2].play_date_utc = Some("2026-11-20T21:00:00Z".into());
    tracks[2].play_count = Some(3);
    let playlists: Vec<FilePlaylist> = playlists.into_iter().filter(|p| p.name != "Quiet").collect();
    write_library(&file, tracks, &playlists);
    let (success, out, err) = import(&data, &file);
    assert!(success, "{out}\n{err}");
    assert!(
        out.contains("LibraryCache.sync: added 0 tracks, 0 likes, 1 plays, 0 playlists; removed 1 likes, 1 playlists; updated 1 tracks"),
        "{out}"
    );
    let engine = engine_at(&data);
    let liked = ok(&engine, "LibraryCache._getLiked", json!({"userId": USER}));
    assert_eq!(liked["trackIds"], json!([tid(12), tid(2), tid(11)]));
    let status = ok(&engine, "LibraryCache._getStatus", json!({"userId": USER}));
    assert_eq!(
        (status["plays"].clone(), status["playlists"].clone()),
        (json!(14), json!(2)),
        "plays merged: {status}"
    );
    drop(engine);

    // The same file again changes nothing.
    let (success, out, _) = import(&data, &file);
    assert!(success);
    assert!(out.contains("LibraryCache.sync: added 0 tracks, 0 likes, 0 plays, 0 playlists; removed 0 likes, 0 playlists; updated 0 tracks, 0 playlists"), "{out}");
}

#[test]
fn a_malformed_library_is_refused_with_its_place_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, file) = (dir.path().join("data"), dir.path().join("Library.xml"));
    let mut tracks = Vec::new();
    let playlists = carol(&mut tracks);
    write_library(&file, tracks, &playlists);
    let text = std::fs::read_to_string(&file).expect("read");
    // An element left open in track 3, and, in another copy, a Year written as text.
    let broken = text.replacen("<string>Song 3</string>", "<string>Song 3</strin>", 1);
    let line = broken
        .lines()
        .position(|l| l.contains("Song 3</strin>"))
        .expect("the line")
        + 1;
    std::fs::write(&file, &broken).expect("write");
    let (success, out, err) = import(&data, &file);
    assert!(!success, "{out}");
    let place = format!("{}:{line}:", file.display());
    assert!(
        err.contains(&place)
            && err.contains("not a well-formed property list")
            && err.contains("(nothing was imported)"),
        "{err}"
    );

    let typed = text.replacen(
        "<key>Year</key><integer>2019</integer>",
        "<key>Year</key><string>2019</string>",
        1,
    );
    std::fs::write(&file, &typed).expect("write");
    let (success, _, err) = import(&data, &file);
    assert!(!success);
    assert!(
        err.contains("at Tracks › 1000 › Year: expected an integer, found a string"),
        "{err}"
    );

    let engine = engine_at(&data);
    let code = refused(&engine, "LibraryCache._getStatus", json!({"userId": USER}));
    assert_eq!(code, "USER_NOT_FOUND");
}

/// Runs the import like [`import`] and also returns the peak resident memory of that one child
/// process, in bytes, from its own `wait4`. (Not `getrusage(RUSAGE_CHILDREN)`: that is the
/// largest of every child this test process ever waited for, and the other tests of this binary
/// run servers, browsers and imports of their own.)
// The child is reaped by `wait4` below, which std's `wait` cannot stand in for (it gives no
// rusage): clippy sees no `wait()` call.
#[allow(clippy::zombie_processes)]
fn import_with_peak_rss(data: &Path, file: &Path) -> ((bool, String, String), u64) {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = import_command(data, file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    // Drained on their own threads, so a full pipe never stops the child.
    let drain = |mut from: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            from.read_to_end(&mut text).expect("read the child's output");
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout")));
    let err = drain(Box::new(child.stderr.take().expect("stderr")));
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: wait4 writes into the status and the struct it is given and nothing else. The
    // child is reaped here, once; `child` is never waited on afterwards (dropping it does not wait).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4: {}", std::io::Error::last_os_error());
    let success = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    let out = out.join().expect("stdout thread");
    let err = err.join().expect("stderr thread");
    ((success, out, err), usage.ru_maxrss as u64 * 1024)
}

#[test]
fn a_large_library_imports_with_a_progress_bar_and_bounded_memory() {
    // 100,000 tracks (about 100 MB) with LIBRARYCACHE_LONG=1; 20,000 otherwise.
    let n = if common::server::long() { 100_000 } else { 20_000 };
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, file) = (dir.path().join("data"), dir.path().join("Library.xml"));
    write_big_library(&file, n, 200);
    let size = std::fs::metadata(&file).expect("size").len();
    let started = std::time::Instant::now();
    let ((success, out, err), peak) = import_with_peak_rss(&data, &file);
    let took = started.elapsed();
    assert!(success, "{out}\n{err}");
    assert!(
        out.contains(&format!(": {n} tracks (0 without a Persistent ID skipped)")),
        "{out}"
    );
    eprintln!(
        "imported {n} tracks ({:.1} MB of Library.xml) in {:.1} s, peak RSS {:.0} MB",
        size as f64 / 1e6,
        took.as_secs_f64(),
        peak as f64 / 1e6
    );
    // The document is never held whole: memory is the read's own, a few times the file at most.
    assert!(
        peak < 6 * size + 300_000_000,
        "peak RSS {peak} for a file of {size} bytes"
    );
    let engine = engine_at(&data);
    let status = ok(&engine, "LibraryCache._getStatus", json!({"userId": USER}));
    assert_eq!(status["tracks"], n);
    assert_eq!(status["playlists"], 201);
}

fn reads(server: &Server) -> Reads<'_> {
    Reads {
        server,
        concept: "AppleLibraryFile",
        user: USER,
    }
}

fn set_mtime(path: &Path, secs: u64) {
    let f = std::fs::File::options().write(true).open(path).expect("open");
    f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .expect("mtime");
}

fn liked(server: &Server) -> Value {
    let r = server.post("/api/LibraryCache/_getLiked", &json!({"userId": USER}));
    r.body["trackIds"].clone()
}

#[test]
fn a_watched_file_is_read_again_only_when_its_modification_time_moves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, file) = (dir.path().join("data"), dir.path().join("Library.xml"));
    let mut tracks = Vec::new();
    let playlists = carol(&mut tracks);
    write_library(&file, tracks.clone(), &playlists);
    set_mtime(&file, 1_800_000_000);
    let path = file.to_str().expect("utf-8 path");
    let server = Server::start(&data, &["--apple-library-watch-every", "off"]);
    let reads = reads(&server);

    // Connecting reads the file; the cursor's watermark is its modification time.
    reads.ok("connect", json!({"userId": USER, "path": path}));
    let first = reads.wait(None);
    assert_eq!(
        (first["phase"].clone(), first["complete"].clone()),
        (json!("done"), json!(true)),
        "{first}"
    );
    assert_eq!(first["counts"]["tracks"], 20);
    assert_eq!(first["counts"]["skipped"], 1);
    assert_eq!(liked(&server), json!([tid(12), tid(2), tid(11), tid(1)]));

    // Unchanged: a look reads nothing and the library stays at its version.
    let version = server
        .post("/api/LibraryCache/_getStatus", &json!({"userId": USER}))
        .body["version"]
        .clone();
    let unchanged = reads.again(&first);
    assert_eq!(
        (unchanged["phase"].clone(), unchanged["complete"].clone()),
        (json!("done"), json!(false)),
        "{unchanged}"
    );
    assert_eq!(unchanged["counts"]["tracks"], 0);
    assert_eq!(
        server
            .post("/api/LibraryCache/_getStatus", &json!({"userId": USER}))
            .body["version"],
        version
    );

    // Carol loves track 7 (Music.app rewrites the file): the next look reads it.
    tracks[7].loved = true;
    tracks[7].date_modified = "2026-11-21T12:00:00Z".into();
    write_library(&file, tracks.clone(), &playlists);
    set_mtime(&file, 1_800_000_060);
    let changed = reads.again(&unchanged);
    assert_eq!(changed["complete"], true, "{changed}");
    assert_eq!(liked(&server), json!([tid(7), tid(12), tid(2), tid(11), tid(1)]));

    // A file broken mid-write fails the read with its place; the library stays as it was.
    let text = std::fs::read_to_string(&file).expect("read");
    std::fs::write(&file, &text[..text.len() / 2]).expect("write");
    set_mtime(&file, 1_800_000_120);
    let failed = reads.again(&changed);
    assert_eq!(failed["phase"], "failed", "{failed}");
    assert_eq!(failed["code"], "MALFORMED_LIBRARY");
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|e| e.starts_with(&format!("{path}:"))),
        "{failed}"
    );
    assert_eq!(liked(&server), json!([tid(7), tid(12), tid(2), tid(11), tid(1)]));

    // Written whole again, it is read (the failed read confirmed no watermark).
    write_library(&file, tracks, &playlists);
    set_mtime(&file, 1_800_000_180);
    let again = reads.again(&failed);
    assert_eq!(
        (again["phase"].clone(), again["complete"].clone()),
        (json!("done"), json!(true)),
        "{again}"
    );
}
