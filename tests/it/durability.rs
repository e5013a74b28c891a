//! Durable acknowledgements, shown by the order of the server's system calls (I4 beyond a
//! process crash): the real server runs under `strace`, a client sends writes one after another
//! over HTTP, and the trace is checked so that, when each `200` answer starts to go out, every
//! write to a file of the store that finished before it was followed by an `fsync`/`fdatasync`
//! of that file, started after the write and finished before the answer, and every file created
//! (or renamed) in the store's directories by an `fsync` of its directory. `sync_file_range`,
//! which is all sled's own flush does, does not count: it reaches neither the drive's cache nor
//! the file's size. Remove the `fdatasync` from `src/store/sled/durable.rs` and this test fails.
//!
//! Needs `strace` (Debian's package; `.ci/run` installs it). Without it the test says so and
//! passes, unless `LIBRARYCACHE_REQUIRE_STRACE=1` (as in CI) makes it fail.

use crate::common;

use common::server::{metric, send, Server};
use librarycache::engine::{Engine, Registry};
use librarycache::store::{SledStore, Store};
use serde_json::json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn every_acknowledged_write_reached_the_disk_before_its_answer() {
    if Command::new("strace").arg("-V").output().is_err() {
        assert!(
            std::env::var("LIBRARYCACHE_REQUIRE_STRACE").is_err(),
            "strace is required (LIBRARYCACHE_REQUIRE_STRACE is set) but not installed"
        );
        eprintln!("strace is not installed: the syscall-order check of durable answers is skipped");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().canonicalize().expect("canonical tempdir");
    let store = root.join("store");
    let trace = root.join("syscalls.log");
    let trace_arg = trace.to_str().expect("utf-8 path");
    let wrapper = [
        "strace",
        "-f",
        "-yy",
        "-qq",
        "-s",
        "16",
        "-o",
        trace_arg,
        "-e",
        "trace=write,writev,pwrite64,pwritev,pwritev2,sendto,sendmsg,fsync,fdatasync,openat,rename,renameat,renameat2,link,linkat",
    ];
    let server = Server::spawn_under(&wrapper, &store, &[]).ready();

    // Writes of every kind, one at a time: each answer must find the store synced.
    let mut answers = 0;
    let mut expect_ok = |path: &str, body: serde_json::Value| {
        let r = server.post(path, &body);
        assert_eq!(r.status, 200, "{path} {body}: {}", r.body);
        answers += 1;
    };
    for user in ["ann", "bob"] {
        expect_ok(
            "/api/LibraryCache/ingest",
            json!({"userId": user,
                "tracks": (0..300).map(|i| json!({"id": format!("t{i}"), "title": format!("Song {i}"), "artist": "A"})).collect::<Vec<_>>(),
                "likes": (0..200).map(|i| json!({"trackId": format!("t{i}"), "likedAt": common::time_of(i)})).collect::<Vec<_>>(),
                "plays": (0..100).map(|i| json!({"trackId": format!("t{i}"), "playedAt": common::time_of(i)})).collect::<Vec<_>>(),
                "playlists": [{"id": format!("{user}/mix"), "name": "Mix", "entries": ["t1", "t2", "t3"]}]}),
        );
    }
    for i in 0..10 {
        expect_ok(
            "/api/LibraryCache/merge",
            json!({"userId": "ann", "tracks": [{"id": format!("new{i}"), "title": "New"}],
                "likes": [{"trackId": format!("new{i}"), "likedAt": common::time_of(1000 + i)}]}),
        );
        expect_ok(
            "/api/like",
            json!({"userId": "bob", "trackId": format!("t{}", 250 + i)}),
        );
    }
    expect_ok(
        "/api/LibraryCache/sync",
        json!({"userId": "bob", "likes": [{"trackId": "t1", "likedAt": common::time_of(1)}],
            "playlists": [{"id": "bob/mix", "name": "Mix", "entries": ["t1"]}]}),
    );
    expect_ok("/api/LibraryCache/clear", json!({"userId": "ann"}));

    stop_gracefully(server);
    let text = std::fs::read_to_string(&trace).expect("the trace");
    let report = check(&text, &store);
    if !report.violations.is_empty() {
        let kept = Path::new(env!("CARGO_TARGET_TMPDIR")).join("durability-syscalls.log");
        let _ = std::fs::write(&kept, &text);
        eprintln!("the system calls are kept in {}", kept.display());
    }
    assert!(
        report.violations.is_empty(),
        "answers sent before their writes were on disk:\n{}",
        report.violations.join("\n")
    );
    assert!(
        report.answers >= answers,
        "the trace shows {} answers, the client received {answers}",
        report.answers
    );
    assert!(
        report.store_writes > 0 && report.syncs > 0,
        "the trace saw no store writes or syncs: {report:?}"
    );
    println!(
        "durability: {} answers checked against {} store writes, {} syncs, {} files created",
        report.answers, report.store_writes, report.syncs, report.creates
    );
}

/// A read through `Requesting` (here `POST /api/liked`) changes no state, so its answer waits
/// for no flush of its own (its two action records reach the disk with the next one); a write,
/// or a read that an `Idempotency-Key` makes the store remember, is answered only after one.
/// Counted by the server's own `librarycache_store_flush_seconds_count`.
#[test]
fn a_read_waits_for_no_flush_and_a_write_or_a_remembered_key_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    // No scheduled job may tick (and flush) between the readings.
    let quiet = ["--refresh-every", "off", "--apple-library-watch-every", "off"];
    let server = Server::start(dir.path().join("store"), &quiet);
    let flushes = || {
        let text = server
            .client
            .get(format!("{}/metrics", server.base))
            .send()
            .and_then(|r| r.text())
            .expect("metrics");
        metric(&text, "librarycache_store_flush_seconds_count", &[])
    };
    let likes: Vec<_> = (0..50)
        .map(|i| json!({"trackId": format!("t{i}"), "likedAt": common::time_of(i)}))
        .collect();
    let r = server.post("/api/LibraryCache/ingest", &json!({"userId": "ann", "likes": likes}));
    assert_eq!(r.status, 200, "{}", r.body);
    let after_ingest = flushes();
    assert!(
        after_ingest >= 1.0,
        "the ingest was answered after a flush: {after_ingest}"
    );

    for _ in 0..5 {
        let r = server.post("/api/liked", &json!({"userId": "ann"}));
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["trackIds"].as_array().map(Vec::len), Some(50), "{}", r.body);
    }
    assert_eq!(flushes(), after_ingest, "five reads waited for no flush");

    let body = json!({"userId": "ann"}).to_string().into_bytes();
    let r = send(&server.client, &server.base, "/api/liked", body, Some("read-1")).expect("answer");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        flushes(),
        after_ingest + 1.0,
        "a remembered key is flushed before the answer"
    );

    let r = server.post("/api/like", &json!({"userId": "ann", "trackId": "t99"}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(flushes(), after_ingest + 2.0, "a write is flushed before the answer");
}

/// The same on the store itself, counting the flushes that reached the disk: reads through
/// `Requesting` after a write flush nothing (not even for the records of the reads before
/// them, which are no change), the next write flushes once, and the reads' records are kept.
#[test]
fn reads_through_requesting_flush_nothing_and_a_write_flushes_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SledStore::open(dir.path()).expect("open store"));
    let engine =
        Engine::new(Arc::clone(&store) as Arc<dyn Store>, Registry::standard()).with_syncs(common::shipped_syncs());
    let likes: Vec<_> = (0..30)
        .map(|i| json!({"trackId": format!("t{i}"), "likedAt": common::time_of(i)}))
        .collect();
    common::ok(&engine, "LibraryCache.ingest", json!({"userId": "ann", "likes": likes}));
    let request = |fields: serde_json::Value| {
        let answer = engine.invoke("Requesting", "request", fields);
        assert!(answer.result.is_ok() && answer.flow_error.is_none(), "{answer:?}");
        answer
    };
    let flushed = store.flushes();
    assert!(flushed >= 1, "the ingest was flushed before its answer");
    let mut flows = Vec::new();
    for _ in 0..5 {
        let answer = request(json!({"path": "/liked", "userId": "ann"}));
        let respond = answer.cascade().iter().find(|c| c.action == "respond").cloned();
        let ids = respond.map(|r| r.input["trackIds"].as_array().map_or(0, Vec::len));
        assert_eq!(ids, Some(30), "{answer:?}");
        flows.push(answer.flow);
    }
    assert_eq!(store.flushes(), flushed, "five reads flushed nothing");
    request(json!({"path": "/like", "userId": "ann", "trackId": "t99"}));
    assert_eq!(store.flushes(), flushed + 1, "the write flushed once");
    // Reopened, the store has every read's records.
    drop(engine);
    drop(store);
    let engine = common::engine_at(dir.path());
    for flow in flows {
        let recorded = engine.flow_report(flow).expect("read").expect("the flow's records");
        assert_eq!(
            common::server::action_names(&serde_json::to_value(&recorded).expect("json")),
            ["Requesting.request", "Requesting.respond"]
        );
    }
}

/// SIGTERM to the server (strace's child), then wait for strace to write the rest and exit.
fn stop_gracefully(mut server: Server) {
    let tracer = server.child.id();
    let children = std::fs::read_to_string(format!("/proc/{tracer}/task/{tracer}/children")).unwrap_or_default();
    for pid in children.split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
        // SAFETY: kill(2) with a pid read from /proc and a valid signal has no memory effects.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = server.child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the server did not stop within 30 s of SIGTERM");
}

#[derive(Debug, Default)]
struct Report {
    answers: usize,
    store_writes: usize,
    syncs: usize,
    creates: usize,
    violations: Vec<String>,
}

/// One system call as strace shows it: its thread, name and first argument (the fd with its
/// path, `-yy`), the rest of the line, and whether the line is its start, its end, or both.
struct Call<'a> {
    thread: &'a str,
    name: &'a str,
    target: &'a str,
    rest: &'a str,
    starts: bool,
    ends: bool,
}

/// Parses `PID name(args) = ret`, `PID name(args <unfinished ...>` and
/// `PID <... name resumed>...) = ret` (the resumed half's target comes from its start).
fn parse<'a>(line: &'a str, open: &HashMap<&'a str, (&'a str, &'a str)>) -> Option<Call<'a>> {
    let (thread, call) = line.trim_start().split_once(' ')?;
    let call = call.trim_start();
    if let Some(resumed) = call.strip_prefix("<... ") {
        let (name, rest) = resumed.split_once(" resumed>")?;
        let (_, target) = open.get(thread).copied()?;
        return Some(Call {
            thread,
            name,
            target,
            rest,
            starts: false,
            ends: true,
        });
    }
    let (name, args) = call.split_once('(')?;
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    let (args, unfinished) = match args.strip_suffix(" <unfinished ...>") {
        Some(args) => (args, true),
        None => (args, false),
    };
    let end = args.find(", ").or_else(|| args.find(')')).unwrap_or(args.len());
    let target = &args[..end];
    Some(Call {
        thread,
        name,
        target,
        rest: &args[end..],
        starts: true,
        ends: !unfinished,
    })
}

/// The path inside a `-yy` fd annotation (`3</dir/db>`), or the quoted path of `openat`/`rename`.
fn fd_path(target: &str) -> Option<&str> {
    let (_, inner) = target.split_once('<')?;
    inner.strip_suffix('>')
}

fn check(text: &str, store: &Path) -> Report {
    let store = store.to_str().expect("utf-8 path");
    let in_store = |p: &str| p == store || p.starts_with(&format!("{store}/"));
    let mut report = Report::default();
    let mut open: HashMap<&str, (&str, &str)> = HashMap::new();
    // Per path: the step at which its last write (or, for a directory, entry change) ended; the
    // latest start of a sync of it that has ended; the start of each thread's running sync.
    let mut dirty: HashMap<PathBuf, usize> = HashMap::new();
    let mut covered: HashMap<PathBuf, usize> = HashMap::new();
    let mut syncing: HashMap<&str, usize> = HashMap::new();
    for (step, line) in text.lines().enumerate() {
        let Some(call) = parse(line, &open) else { continue };
        if call.starts && !call.ends {
            open.insert(call.thread, (call.name, call.target));
        } else if !call.starts {
            open.remove(call.thread);
        }
        match call.name {
            "fsync" | "fdatasync" => {
                let Some(path) = fd_path(call.target).filter(|p| in_store(p)) else {
                    continue;
                };
                if call.starts {
                    syncing.insert(call.thread, step);
                }
                if call.ends && call.rest.trim_end().ends_with("= 0") {
                    let started = syncing.remove(call.thread).unwrap_or(step);
                    let c = covered.entry(PathBuf::from(path)).or_default();
                    *c = (*c).max(started);
                    report.syncs += 1;
                }
            }
            "write" | "writev" | "sendto" | "sendmsg"
                if call.target.contains("<TCP:") && call.starts && call.rest.contains("\"HTTP/1.1 2") =>
            {
                report.answers += 1;
                for (path, &written) in &dirty {
                    if covered.get(path).map_or(true, |&c| c < written) {
                        report.violations.push(format!(
                            "trace line {}: an answer went out while {} was not synced since its change on line {}: {}",
                            step + 1,
                            path.display(),
                            written + 1,
                            text.lines().nth(written).unwrap_or_default()
                        ));
                    }
                }
            }
            "write" | "writev" | "pwrite64" | "pwritev" | "pwritev2" => {
                if let Some(path) = fd_path(call.target).filter(|p| in_store(p)) {
                    if call.ends {
                        dirty.insert(PathBuf::from(path), step);
                        report.store_writes += 1;
                    }
                }
            }
            "openat" if call.ends && line.contains("O_CREAT") => {
                // The created file's path is the fd annotation of the result (`= 7</dir/f>`).
                let Some((_, result)) = line.rsplit_once(" = ") else {
                    continue;
                };
                if let Some(path) = fd_path(result.trim()).filter(|p| in_store(p)) {
                    if let Some(parent) = Path::new(path).parent() {
                        dirty.insert(parent.to_path_buf(), step);
                        report.creates += 1;
                    }
                }
            }
            "rename" | "renameat" | "renameat2" | "link" | "linkat" if call.ends => {
                // The new name is the last quoted path on the line.
                let quoted: Vec<&str> = line.split('"').skip(1).step_by(2).collect();
                if let Some(parent) = quoted
                    .last()
                    .filter(|p| in_store(p))
                    .and_then(|p| Path::new(p).parent())
                {
                    dirty.insert(parent.to_path_buf(), step);
                    report.creates += 1;
                }
            }
            _ => {}
        }
    }
    report
}
