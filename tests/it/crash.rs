//! Crash safety of the real server binary (I1 atomic actions, I2 rebuildable, I4 durable acks,
//! I5 gapless order): several clients drive ingests, syncs, merges and `/api/like` requests for
//! several users while the server is SIGKILLed at random moments and restarted, round after
//! round. Every call carries an `Idempotency-Key`; a call whose answer was lost to a kill is
//! sent again with the same key after the restart, so it is either replayed (it had committed)
//! or runs now. After every kill (before the next start) the store is opened directly and
//! checked:
//!
//! - every acknowledged action is there: its flow holds its record with the output the client
//!   received, its events are in the log, the stream's event at the answered version is its
//!   own, and its effect (likes, plays) is visible;
//! - no action is half there: every record's event range is in the log and every event belongs
//!   to the record that claims it; action ids and the global sequence have no gap;
//! - each stream's head is the version of its last event, and a stream's versions count 1, 2, …;
//! - after the last kill only (it rewrites the projections): a rebuild reproduces the live
//!   projections byte for byte.
//!
//! `cargo test --test it crash::` runs 20 rounds; `LIBRARYCACHE_LONG=1` runs 200 (`LIBRARYCACHE_ROUNDS`
//! sets any number, `LIBRARYCACHE_SEED` replays a run's random choices).

use crate::common;

use common::server::{self, send, Reply, Rng, Server};
use common::TestStore;
use librarycache::engine::{Engine, Registry};
use librarycache::store::{Store, StoredEvent};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

const CLIENTS: usize = 4;
const USERS_PER_CLIENT: usize = 3;
/// A user every client merges into (so their commits race for one stream).
const SHARED: &str = "shared";

/// One call a client makes.
#[derive(Debug, Clone)]
struct Op {
    /// `ingest`, `sync`, `merge` or `like` (the `/api/like` request path).
    kind: &'static str,
    path: &'static str,
    user: String,
    body: Value,
    key: String,
    /// Track ids the call likes.
    likes: Vec<String>,
    /// (trackId, playedAt) pairs the call adds.
    plays: Vec<(String, String)>,
}

/// A call answered 200, with its answer.
#[derive(Debug, Clone)]
struct Acked {
    op: Op,
    reply: Reply,
}

struct OwnedUser {
    id: String,
    ingested: bool,
    /// Every like of an acknowledged call (a sync repeats them all, so none is ever removed).
    likes: Vec<String>,
}

/// A client's state across rounds.
struct Client {
    id: usize,
    rng: Rng,
    users: Vec<OwnedUser>,
    next: u64,
    /// The call whose answer a kill took, to send again with its key.
    pending: Option<Op>,
    acked: Vec<Acked>,
    /// Calls sent again after a kill, and how many of those were answered from the key.
    retried: u64,
    replayed: u64,
    conflicts: u64,
    failures: Vec<String>,
}

enum Outcome {
    Acked,
    Refused,
    Lost,
}

impl Client {
    fn new(id: usize, seed: u64) -> Client {
        Client {
            id,
            rng: Rng::new(seed ^ (id as u64).wrapping_mul(0x1234_5678_9abc_def1)),
            users: (0..USERS_PER_CLIENT)
                .map(|k| OwnedUser {
                    id: format!("c{id}u{k}"),
                    ingested: false,
                    likes: Vec::new(),
                })
                .collect(),
            next: 0,
            pending: None,
            acked: Vec::new(),
            retried: 0,
            replayed: 0,
            conflicts: 0,
            failures: Vec::new(),
        }
    }

    fn fresh(&mut self, what: &str) -> String {
        self.next += 1;
        format!("c{}-{what}{}", self.id, self.next)
    }

    fn time(&mut self) -> String {
        let t = chrono::DateTime::from_timestamp(1_700_000_000 + self.rng.below(10_000_000) as i64, 0).expect("time");
        t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }

    /// The next call: an ingest for a user not yet ingested, otherwise a merge, sync or like
    /// (or a merge into the shared user).
    fn next_op(&mut self) -> Op {
        let key = self.fresh("key");
        if self.rng.chance(20) {
            let track = self.fresh("s");
            let body = json!({"userId": SHARED, "tracks": [{"id": track, "title": "Shared"}],
                "likes": [{"trackId": track, "likedAt": self.time()}]});
            return op("merge", SHARED, body, key, vec![track], vec![]);
        }
        let u = self.rng.below(USERS_PER_CLIENT as u64) as usize;
        let user = self.users[u].id.clone();
        if !self.users[u].ingested {
            let (a, b) = (self.fresh("t"), self.fresh("t"));
            let played = self.time();
            let body = json!({"userId": user,
                "tracks": [{"id": a, "title": "A"}, {"id": b, "title": "B"}],
                "likes": [{"trackId": a, "likedAt": self.time()}, {"trackId": b, "likedAt": self.time()}],
                "plays": [{"trackId": a, "playedAt": played}],
                "playlists": [{"id": format!("{user}/pl"), "name": "Mine", "entries": [a, b, a]}]});
            return op("ingest", &user, body, key, vec![a.clone(), b], vec![(a, played)]);
        }
        match self.rng.below(4) {
            0 => {
                // A complete read: every like acknowledged so far plus a new one, a new play,
                // one playlist.
                let t = self.fresh("t");
                let played = self.time();
                let mut likes: Vec<Value> = self.users[u].likes.iter().map(|id| json!({"trackId": id})).collect();
                likes.insert(0, json!({"trackId": t, "likedAt": self.time()}));
                let body = json!({"userId": user, "likes": likes,
                    "plays": [{"trackId": t, "playedAt": played}],
                    "playlists": [{"id": format!("{user}/pl"), "name": "Mine", "entries": [t]}]});
                op("sync", &user, body, key, vec![t.clone()], vec![(t, played)])
            }
            1 => {
                let t = self.fresh("t");
                let body = json!({"userId": user, "trackId": t});
                let mut o = op("like", &user, body, key, vec![t], vec![]);
                o.path = "/api/like";
                o
            }
            _ => {
                let t = self.fresh("t");
                let body = json!({"userId": user, "tracks": [{"id": t, "title": "New", "durationMs": 1000}],
                    "likes": [{"trackId": t, "likedAt": self.time()}]});
                op("merge", &user, body, key, vec![t], vec![])
            }
        }
    }

    fn send(&mut self, http: &reqwest::blocking::Client, base: &str, op: &Op) -> Outcome {
        let reply = match send(http, base, op.path, op.body.to_string().into_bytes(), Some(&op.key)) {
            Ok(r) => r,
            Err(_) => return Outcome::Lost,
        };
        match reply.status {
            200 => {
                if reply.replayed {
                    self.replayed += 1;
                }
                if let Some(user) = self.users.iter_mut().find(|u| u.id == op.user) {
                    user.ingested = true;
                    user.likes.extend(op.likes.iter().cloned());
                }
                self.acked.push(Acked { op: op.clone(), reply });
                Outcome::Acked
            }
            409 if op.user == SHARED && reply.body["code"] == "CONCURRENT_UPDATE" => {
                self.conflicts += 1;
                Outcome::Refused
            }
            _ => {
                self.failures.push(format!(
                    "{} {} (key {}): {} {}",
                    op.kind, op.user, op.key, reply.status, reply.body
                ));
                Outcome::Refused
            }
        }
    }

    /// Sends the call a kill interrupted (same key), then new calls until the server is gone.
    fn run_round(mut self, base: String, cap: usize) -> Client {
        let http = server::client();
        if let Some(op) = self.pending.take() {
            self.retried += 1;
            if let Outcome::Lost = self.send(&http, &base, &op) {
                self.pending = Some(op);
                return self;
            }
        }
        for _ in 0..cap {
            let op = self.next_op();
            if let Outcome::Lost = self.send(&http, &base, &op) {
                self.pending = Some(op);
                break;
            }
        }
        self
    }
}

fn op(
    kind: &'static str,
    user: &str,
    body: Value,
    key: String,
    likes: Vec<String>,
    plays: Vec<(String, String)>,
) -> Op {
    Op {
        kind,
        path: match kind {
            "ingest" => "/api/LibraryCache/ingest",
            "sync" => "/api/LibraryCache/sync",
            _ => "/api/LibraryCache/merge",
        },
        user: user.to_string(),
        body,
        key,
        likes,
        plays,
    }
}

fn rounds() -> usize {
    std::env::var("LIBRARYCACHE_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(if server::long() { 200 } else { 20 })
}

fn acknowledged_actions_survive_sigkill_and_the_store_stays_consistent(store: TestStore) {
    let seed = server::seed("crash");
    let mut rng = Rng::new(seed);
    let rounds = rounds();
    let started = Instant::now();

    {
        let server = Server::start(store.arg(), &[]);
        let r = server.post("/api/LibraryCache/ingest", &json!({"userId": SHARED}));
        assert_eq!(r.status, 200, "{}", r.body);
    }

    let mut clients: Vec<Client> = (0..CLIENTS).map(|c| Client::new(c, seed)).collect();
    let mut killed_at_start = 0;
    let mut checked = Checked::default();
    for round in 0..rounds {
        // Now and then the kill lands while the server is still opening (recovering) the store.
        if rng.chance(15) {
            let mut server = Server::spawn(store.arg(), &[]);
            std::thread::sleep(Duration::from_millis(rng.below(150)));
            server.kill();
            killed_at_start += 1;
            check_after_kill(&store, &clients, round, &mut checked);
            continue;
        }
        let mut server = Server::start(store.arg(), &[]);
        let base = server.base.clone();
        let handles: Vec<_> = clients
            .drain(..)
            .map(|client| {
                let base = base.clone();
                std::thread::spawn(move || client.run_round(base, 5_000))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(rng.range(20, 400)));
        server.kill();
        clients = handles.into_iter().map(|h| h.join().expect("client thread")).collect();
        let failures: Vec<&String> = clients.iter().flat_map(|c| &c.failures).collect();
        assert!(failures.is_empty(), "round {round}: unexpected answers: {failures:#?}");
        check_after_kill(&store, &clients, round, &mut checked);
    }
    let driving = started.elapsed();

    // The server is gone: open the store directly and check everything again from nothing.
    let store = store.open();
    let engine = Engine::new(store.clone(), Registry::standard());
    let acked: Vec<&Acked> = clients.iter().flat_map(|c| &c.acked).collect();
    let mut all = Checked::default();
    check_log_records_and_heads(store.as_ref(), &mut all);
    check_acknowledged(&engine, &clients, &mut all);
    let log = all.log;
    let before = store.projection_dump().expect("dump");
    engine.rebuild().expect("rebuild");
    let after = store.projection_dump().expect("dump");
    assert!(before == after, "rebuild differs from the live projections");

    let count = |kind: &str| acked.iter().filter(|a| a.op.kind == kind).count();
    println!(
        "crash: {rounds} rounds ({killed_at_start} killed while starting), {} acknowledged calls \
         ({} ingest, {} sync, {} merge, {} like), {} resent after a kill ({} replayed from their key), \
         {} refused as concurrent, {} calls lost to the last kill; {} events, {} projection rows; \
         all present and consistent; driving {:.1?}, checks {:.1?}",
        acked.len(),
        count("ingest"),
        count("sync"),
        count("merge"),
        count("like"),
        clients.iter().map(|c| c.retried).sum::<u64>(),
        clients.iter().map(|c| c.replayed).sum::<u64>(),
        clients.iter().map(|c| c.conflicts).sum::<u64>(),
        clients.iter().filter(|c| c.pending.is_some()).count(),
        log.len(),
        before.len(),
        driving,
        started.elapsed() - driving,
    );
    assert!(
        acked.len() >= rounds,
        "too little work was acknowledged to mean anything"
    );
}

/// What the checks after earlier kills have seen: the log read so far, the records checked,
/// which record claims each event, each stream's version, the versions answered, and how many
/// of each client's acknowledged calls were checked. Committed data is never rewritten, so a
/// check reads and checks only what is new since the last one, and then every stream's head and
/// every user's likes and plays; the check after the last kill starts from nothing.
#[derive(Default)]
struct Checked {
    log: Vec<StoredEvent>,
    actions: u64,
    claimed: HashMap<u64, u64>,
    streams: BTreeMap<(String, String), u64>,
    versions_seen: HashSet<(String, u64)>,
    acked: Vec<usize>,
}

/// After a kill, before the next start: the store opened directly holds every call acknowledged
/// so far, and its log, records and heads agree.
fn check_after_kill(store: &TestStore, clients: &[Client], round: usize, checked: &mut Checked) {
    let opened = store.open();
    let engine = Engine::new(opened.clone(), Registry::standard());
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        check_log_records_and_heads(opened.as_ref(), checked);
        check_acknowledged(&engine, clients, checked);
    }));
    if let Err(panic) = result {
        let said = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        panic!("after the kill of round {round}: {said}");
    }
}

/// The log, checked against the action records and the heads: no gap in sequence numbers or
/// action ids, every record's events present and its own, every event claimed by a record,
/// each head the version of its stream's last event. Reads and checks what `checked` has not
/// seen yet, then every head.
fn check_log_records_and_heads(store: &dyn Store, checked: &mut Checked) {
    let last_seq = store.last_seq().expect("last seq");
    let first_new = checked.log.len();
    loop {
        let after = checked.log.last().map_or(0, |e| e.meta.seq);
        let page = store.read_log(after, 10_000).expect("read log");
        if page.is_empty() {
            break;
        }
        checked.log.extend(page);
    }
    let log = &checked.log;
    assert!(
        log.iter().enumerate().all(|(i, e)| e.meta.seq == i as u64 + 1) && log.len() as u64 == last_seq,
        "the global sequence has a gap (last seq {last_seq}, {} events read)",
        log.len()
    );

    let stats = store.stats().expect("stats");
    for id in checked.actions + 1..=stats.actions {
        let record = store
            .action(id)
            .expect("read record")
            .unwrap_or_else(|| panic!("action record {id} of {} is missing", stats.actions));
        assert!(
            store.flow(record.flow).expect("flow").iter().any(|r| r.id == id),
            "action {id} is missing from its flow's index"
        );
        if let Some((first, last)) = record.events {
            assert!(
                first <= last && last <= last_seq,
                "action {id} claims events {first}..={last}"
            );
            for seq in first..=last {
                let event = &log[(seq - 1) as usize];
                assert_eq!(
                    event.meta.action, id,
                    "event {seq} in action {id}'s range belongs to another action"
                );
                checked.claimed.insert(seq, id);
            }
        } else {
            assert!(
                record.failed || record.concept != "LibraryCache",
                "LibraryCache action {id} succeeded without events"
            );
        }
    }
    checked.actions = stats.actions;
    for event in &log[first_new..] {
        assert_eq!(
            checked.claimed.get(&event.meta.seq),
            Some(&event.meta.action),
            "event {} is claimed by no action record",
            event.meta.seq
        );
        let version = checked
            .streams
            .entry((event.concept.clone(), event.meta.stream.clone()))
            .or_insert(0);
        assert_eq!(
            event.meta.version,
            *version + 1,
            "stream {}/{} skips from version {} at event {}",
            event.concept,
            event.meta.stream,
            version,
            event.meta.seq
        );
        *version += 1;
    }
    for ((concept, stream), version) in &checked.streams {
        let head = store.view(concept).stream_version(stream).expect("head");
        assert_eq!(
            head, *version,
            "the head of {concept}/{stream} is not its last event's version"
        );
    }
}

/// Every acknowledged call is in the store as it was answered (the calls acknowledged since the
/// last check), and the effect of every call acknowledged so far is visible.
fn check_acknowledged(engine: &Engine, clients: &[Client], checked: &mut Checked) {
    let store = engine.store();
    let mut liked: HashMap<String, HashSet<String>> = HashMap::new();
    let mut plays: HashMap<String, HashSet<(String, String)>> = HashMap::new();
    checked.acked.resize(clients.len(), 0);
    for (c, client) in clients.iter().enumerate() {
        for (i, a) in client.acked.iter().enumerate() {
            liked
                .entry(a.op.user.clone())
                .or_default()
                .extend(a.op.likes.iter().cloned());
            plays
                .entry(a.op.user.clone())
                .or_default()
                .extend(a.op.plays.iter().cloned());
            if i < checked.acked[c] {
                continue;
            }
            let flow: uuid::Uuid = a.reply.flow.parse().expect("acknowledged answers carry a flow id");
            let records = store.flow(flow).expect("flow");
            let what = format!("{} {} (key {}, flow {flow})", a.op.kind, a.op.user, a.op.key);
            let action = if a.op.kind == "like" { "merge" } else { a.op.kind };
            let record = records
                .iter()
                .find(|r| r.concept == "LibraryCache" && r.action == action && !r.failed)
                .unwrap_or_else(|| panic!("acknowledged {what} is not in the store: {records:?}"));
            let version = a.reply.body["version"].as_u64().expect("a version was answered");
            if a.op.kind == "like" {
                let names: Vec<String> = records.iter().map(|r| format!("{}.{}", r.concept, r.action)).collect();
                assert_eq!(
                    names,
                    ["Requesting.request", "LibraryCache.merge", "Requesting.respond"],
                    "{what}"
                );
                assert_eq!(record.output["version"], json!(version), "{what}");
            } else {
                assert_eq!(
                    record.output, a.reply.body,
                    "{what}: recorded output differs from the answer"
                );
            }
            let (first, last) = record.events.expect("an acknowledged action has events");
            let last_event = &checked.log[(last - 1) as usize];
            assert_eq!(
                (
                    last_event.meta.stream.as_str(),
                    last_event.meta.version,
                    last_event.meta.action
                ),
                (a.op.user.as_str(), version, record.id),
                "{what}: the event at the answered version is not this action's"
            );
            assert!(first <= last);
            assert!(
                checked.versions_seen.insert((a.op.user.clone(), version)),
                "{what}: version {version} was answered twice"
            );
            let head = store.view("LibraryCache").stream_version(&a.op.user).expect("head");
            assert!(
                version <= head,
                "{what}: answered version {version} is beyond the head {head}"
            );
        }
        checked.acked[c] = client.acked.len();
    }
    for (user, likes) in &liked {
        let out = engine
            .query("LibraryCache", "_getLiked", json!({"userId": user}))
            .unwrap_or_else(|e| panic!("{user}: {e}"));
        let now: HashSet<&str> = out["trackIds"]
            .as_array()
            .expect("ids")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let lost: Vec<&String> = likes.iter().filter(|t| !now.contains(t.as_str())).collect();
        assert!(lost.is_empty(), "{user}: acknowledged likes lost: {lost:?}");
    }
    for (user, expected) in &plays {
        let out = engine
            .query("LibraryCache", "_getPlays", json!({"userId": user, "limit": 1_000_000}))
            .unwrap_or_else(|e| panic!("{user}: {e}"));
        let now: HashSet<(String, String)> = out["plays"]
            .as_array()
            .expect("plays")
            .iter()
            .map(|p| {
                (
                    p["trackId"].as_str().unwrap_or_default().to_string(),
                    p["playedAt"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let lost: Vec<&(String, String)> = expected.iter().filter(|p| !now.contains(p)).collect();
        assert!(lost.is_empty(), "{user}: acknowledged plays lost: {lost:?}");
    }
}

/// A crash can land between a request's first commit (the request, with its idempotency key)
/// and the rest of its flow. The retry with the same key must finish the flow and answer as a
/// whole run would, not replay half a flow as "unanswered".
fn a_retried_request_whose_flow_a_crash_cut_short_is_finished(store: TestStore) {
    let flow = uuid::Uuid::now_v7();
    {
        // The store as a crash leaves it: the request committed (and its key), nothing after it.
        // An engine without syncs commits exactly that.
        let engine = Engine::new(store.open(), Registry::standard());
        common::ok(&engine, "LibraryCache.ingest", json!({"userId": "u"}));
        let cut = engine.invoke_once(
            flow,
            "retry-me",
            "Requesting",
            "request",
            json!({"path": "/like", "userId": "u", "trackId": "t1"}),
        );
        assert!(cut.result.is_ok(), "{:?}", cut.result);
        assert_eq!(cut.actions.len(), 1, "only the request ran");
    }
    let server = Server::start(store.arg(), &[]);
    let body = json!({"userId": "u", "trackId": "t1"}).to_string().into_bytes();
    let retry = send(
        &server.client,
        &server.base,
        "/api/like",
        body.clone(),
        Some("retry-me"),
    )
    .expect("request");
    assert_eq!(retry.status, 200, "{}", retry.body);
    assert_eq!(retry.body["added"], json!(1), "{}", retry.body);
    assert_eq!(retry.flow, flow.to_string(), "the retry answers for the first flow");
    let liked = server.post("/api/LibraryCache/_getLiked", &json!({"userId": "u"}));
    assert_eq!(liked.body, json!({"trackIds": ["t1"]}));
    // Once finished, the flow is whole and a further retry answers the same without running again.
    let again = send(&server.client, &server.base, "/api/like", body, Some("retry-me")).expect("request");
    assert_eq!((again.status, &again.body), (200, &retry.body));
    assert!(again.replayed);
    let report = server
        .client
        .get(format!("{}/api/flows/{flow}", server.base))
        .send()
        .expect("flow");
    let report: Value = report.json().expect("json");
    let names = server::action_names(&report);
    assert_eq!(
        names,
        ["Requesting.request", "LibraryCache.merge", "Requesting.respond"]
    );
}

/// sled allows one process per store: a second `serve` on the same data waits for the lock
/// (10 s), then stops with the typed "in use" error, and the first keeps serving untouched.
#[test]
fn a_second_process_on_the_same_store_is_refused_as_in_use() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    assert_eq!(
        server.post("/api/LibraryCache/ingest", &json!({"userId": "u"})).status,
        200
    );
    let started = Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_librarycache"))
        .args(["serve", "--addr", "127.0.0.1:0", "--data"])
        .arg(dir.path())
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a second server started on the same store");
    assert!(stderr.contains("is in use by another process"), "{stderr}");
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "it gave up before waiting for the lock"
    );
    assert!(server.healthy());
    let liked = server.post("/api/LibraryCache/_getLiked", &json!({"userId": "u"}));
    assert_eq!((liked.status, liked.body), (200, json!({"trackIds": []})));
}

on_each_store!(
    acknowledged_actions_survive_sigkill_and_the_store_stays_consistent,
    a_retried_request_whose_flow_a_crash_cut_short_is_finished,
);
