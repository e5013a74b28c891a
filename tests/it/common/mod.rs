//! Shared helpers for the integration tests: real stores, real engines, the real binary.
#![allow(dead_code)]

use librarycache::engine::{Engine, Registry, SyncSet};
use librarycache::store::{PgStore, SledStore, Store, StoreSpec};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;

/// The PostgreSQL server the store tests also run on (`.ci/run` starts one and sets it).
pub const PG_ENV: &str = "LIBRARYCACHE_TEST_PG";
/// When set (CI), a missing [`PG_ENV`] fails the PostgreSQL half of the store tests.
pub const REQUIRE_PG_ENV: &str = "LIBRARYCACHE_REQUIRE_PG";

/// A fresh store for one test: sled in a temporary directory, or a new schema on the PostgreSQL
/// server of [`PG_ENV`] (dropped with the guard). Opening it again reaches the same data, as a
/// restart would.
pub struct TestStore {
    pub spec: StoreSpec,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl TestStore {
    pub fn sled() -> TestStore {
        let dir = tempfile::tempdir().expect("tempdir");
        TestStore {
            spec: StoreSpec::Sled(dir.path().to_path_buf()),
            _dir: Some(dir),
            pg: None,
        }
    }

    /// A store in a new schema on the configured PostgreSQL server; `None` (said once per test
    /// binary, on the terminal) when none is configured. With [`REQUIRE_PG_ENV`] set, a missing
    /// server fails the test instead.
    pub fn postgres() -> Option<TestStore> {
        let Some(url) = std::env::var(PG_ENV).ok().filter(|u| !u.is_empty()) else {
            let required = std::env::var(REQUIRE_PG_ENV).is_ok_and(|v| !v.is_empty() && v != "0");
            assert!(
                !required,
                "{REQUIRE_PG_ENV} is set but {PG_ENV} is not: the PostgreSQL store tests cannot run"
            );
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                use std::io::Write;
                // Straight to the terminal: the test harness captures eprintln!.
                let _ = writeln!(
                    std::io::stderr(),
                    "NOTE: {PG_ENV} is not set: the on_postgres tests of this binary run NOTHING \
                     (the stores are tested on sled only)"
                );
            });
            return None;
        };
        let schema = format!("lc_test_{}", uuid::Uuid::now_v7().simple());
        let store_url = PgStore::schema_url(&url, &schema).expect("create a schema on the test PostgreSQL server");
        Some(TestStore {
            spec: StoreSpec::Postgres(store_url),
            _dir: None,
            pg: Some((url, schema)),
        })
    }

    /// Another fresh store of the same kind (sled, or a new PostgreSQL schema).
    pub fn sibling(&self) -> TestStore {
        match &self.pg {
            None => TestStore::sled(),
            Some(_) => TestStore::postgres().expect("the PostgreSQL server is configured"),
        }
    }

    /// Opens the store (again).
    pub fn open(&self) -> Arc<dyn Store> {
        self.spec.open().expect("open store")
    }

    /// An engine over the store, with no syncs.
    pub fn engine(&self) -> Engine {
        Engine::new(self.open(), Registry::standard())
    }

    /// The `--store` argument of a server process on this store.
    pub fn arg(&self) -> String {
        match &self.spec {
            StoreSpec::Sled(dir) => dir.display().to_string(),
            StoreSpec::Postgres(url) => url.clone(),
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.spec.is_postgres()
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let Some((url, schema)) = &self.pg {
            let _ = PgStore::drop_schema(url, schema);
        }
    }
}

/// Runs each named test function (`fn name(store: TestStore)`) on both stores, as
/// `on_sled::name` and `on_postgres::name`.
#[macro_export]
macro_rules! on_each_store {
    ($($name:ident),* $(,)?) => {
        mod on_sled {
            $(
                #[test]
                fn $name() {
                    super::$name($crate::common::TestStore::sled())
                }
            )*
        }
        mod on_postgres {
            $(
                #[test]
                fn $name() {
                    if let Some(store) = $crate::common::TestStore::postgres() {
                        super::$name(store)
                    }
                }
            )*
        }
    };
}

/// The time by the clock a server process started by a test runs on: the system's, set ahead
/// by `LIBRARYCACHE_TEST_CLOCK_AHEAD` when CI sets it. A test that must compare with a real
/// server's time compares with this, never with `Utc::now()`.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use concept_core::Clock;
    concept_core::SystemClock::from_env()
        .expect("LIBRARYCACHE_TEST_CLOCK_AHEAD is a duration")
        .now()
}

/// A manual clock standing at `at` (RFC 3339), for an engine a test drives through time.
pub fn manual_clock(at: &str) -> Arc<concept_core::ManualClock> {
    let at = concept_core::time::parse_rfc3339(at).expect("an RFC 3339 time");
    Arc::new(concept_core::ManualClock::at(at))
}

/// The shipped sync files (`syncs/`), loaded and checked against the standard concepts.
pub fn shipped_syncs() -> SyncSet {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("syncs");
    SyncSet::new(
        librarycache::sync::load_checked(&dir, &Registry::standard().specs()).expect("the shipped syncs check"),
    )
}

/// An engine over a fresh temporary sled store on `clock` (keep the directory guard).
pub fn engine_on(clock: &Arc<concept_core::ManualClock>) -> (tempfile::TempDir, Engine) {
    let (dir, engine) = fresh_engine();
    (dir, engine.with_clock(Arc::clone(clock) as concept_core::SharedClock))
}

/// An engine over a sled store in `dir`.
pub fn engine_at(dir: &Path) -> Engine {
    Engine::new(
        Arc::new(SledStore::open(dir).expect("open store")),
        Registry::standard(),
    )
}

/// An engine over a store in a new temporary directory (removed when the guard drops: keep it).
pub fn fresh_engine() -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = engine_at(dir.path());
    (dir, engine)
}

/// Runs an action or query and returns its output, panicking with the refusal otherwise.
pub fn ok(engine: &Engine, concept_action: &str, input: Value) -> Value {
    let (c, a) = concept_action.split_once('.').expect("Concept.action");
    match engine.invoke(c, a, input).result {
        Ok(v) => v,
        Err(e) => panic!("{concept_action} refused: {e}"),
    }
}

/// Runs an action or query that must be refused; returns the refusal code.
pub fn refused(engine: &Engine, concept_action: &str, input: Value) -> String {
    let (c, a) = concept_action.split_once('.').expect("Concept.action");
    match engine.invoke(c, a, input).result {
        Ok(v) => panic!("{concept_action} succeeded with {v}, a refusal was expected"),
        Err(e) => e.code,
    }
}

pub fn alice_library() -> Value {
    json!({
        "userId": "user:alice",
        "tracks": [
            {"id": "track:a", "title": "Alpha", "artist": "Ana", "album": "First"},
            {"id": "track:b", "title": "Bravo", "artist": "Ben", "album": "Second"},
            {"id": "track:c", "title": "Charlie", "artist": "Cy", "album": "Third"}
        ],
        "likes": [
            {"trackId": "track:b", "likedAt": "2025-10-02T09:00:00Z"},
            {"trackId": "track:a", "likedAt": "2025-10-01T09:00:00Z"}
        ],
        "plays": [{"trackId": "track:a", "playedAt": "2025-10-03T20:15:00Z"}],
        "playlists": [{"id": "playlist:1", "name": "Oct25", "entries": ["track:b", "track:a"]}]
    })
}

/// A library of `likes` liked tracks and `playlists` playlists of 20 entries.
pub fn big_library(user: &str, likes: usize, playlists: usize) -> Value {
    let tracks: Vec<Value> = (0..likes)
        .map(|i| json!({"id": format!("t{i:06}"), "title": format!("Song {i}"), "artist": "A"}))
        .collect();
    let like_list: Vec<Value> = (0..likes)
        .map(|i| json!({"trackId": format!("t{i:06}"), "likedAt": time_of(likes - i)}))
        .collect();
    let pls: Vec<Value> = (0..playlists)
        .map(|p| {
            let entries: Vec<String> = (0..20).map(|e| format!("t{:06}", (p * 7 + e) % likes.max(1))).collect();
            json!({"id": format!("{user}/pl{p}"), "name": format!("List {p}"), "snapshotId": "s1", "entries": entries})
        })
        .collect();
    json!({"userId": user, "tracks": tracks, "likes": like_list, "playlists": pls})
}

/// A distinct RFC 3339 time for a counter (larger counter, later time).
pub fn time_of(n: usize) -> String {
    let t = chrono::DateTime::from_timestamp(1_600_000_000 + n as i64 * 60, 0).expect("time");
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The projections as a list of rows, for comparing live and rebuilt state.
pub fn dump(engine: &Engine) -> Vec<(Vec<u8>, Vec<u8>)> {
    engine.store().projection_dump().expect("dump")
}

/// The rows where two dumps differ (key, left value, right value; absent as "-"), at most
/// `limit` of them, readably: for the message of a failed "rebuild equals live" check.
pub fn dump_diff(left: &[(Vec<u8>, Vec<u8>)], right: &[(Vec<u8>, Vec<u8>)], limit: usize) -> String {
    let l: std::collections::BTreeMap<_, _> = left.iter().cloned().collect();
    let r: std::collections::BTreeMap<_, _> = right.iter().cloned().collect();
    let keys: std::collections::BTreeSet<_> = l.keys().chain(r.keys()).collect();
    let show = |v: Option<&Vec<u8>>| v.map_or("-".to_string(), |v| String::from_utf8_lossy(v).into_owned());
    keys.into_iter()
        .filter(|k| l.get(*k) != r.get(*k))
        .take(limit)
        .map(|k| {
            format!(
                "{}: {} | {}",
                String::from_utf8_lossy(k),
                show(l.get(k)),
                show(r.get(k))
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub mod apple;
pub mod fake_http;
pub mod in_process;
pub mod lastfm;
pub mod plex;
pub mod server;
pub mod source_reads;
pub mod spotify;
