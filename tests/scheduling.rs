//! The Scheduling concept on a real engine and a real sled store: its timer (background work)
//! ticks due jobs, stops with cancel, wakes when a job is scheduled, gives a job that missed many
//! intervals exactly one catch-up tick, and its projections rebuild byte for byte (I2).
//!
//! Waits are generous polls (up to 10 s), never timing assertions.

mod common;

use common::*;
use librarycache::engine::Engine;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a poll waits for something that should happen within about a second.
const PATIENCE: Duration = Duration::from_secs(10);

/// A runtime running the engine's Scheduling background work (dropped: the work stops).
fn start_timer(engine: &Arc<Engine>) -> tokio::runtime::Runtime {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let work = engine
        .background()
        .into_iter()
        .find(|(concept, _)| concept == "Scheduling")
        .map(|(_, work)| work)
        .expect("Scheduling has background work");
    runtime.spawn(work);
    runtime
}

/// The kinds of the events of a job's stream, in order.
fn events(engine: &Engine, job: &str) -> Vec<String> {
    engine
        .store()
        .read_stream("Scheduling", job, 0)
        .expect("read stream")
        .into_iter()
        .map(|e| e.meta.kind)
        .collect()
}

fn ticks(engine: &Engine, job: &str) -> usize {
    events(engine, job).iter().filter(|k| *k == "Ticked").count()
}

/// Polls `f` until it holds or [`PATIENCE`] runs out; answers whether it held.
fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

fn job(engine: &Engine, name: &str) -> Value {
    ok(engine, "Scheduling._getJob", json!({ "job": name }))
}

fn time(v: &Value) -> chrono::DateTime<chrono::Utc> {
    let s = v.as_str().unwrap_or_else(|| panic!("{v} is not a time"));
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .with_timezone(&chrono::Utc)
}

#[test]
fn a_job_every_second_ticks_until_it_is_cancelled() {
    let (_dir, engine) = fresh_engine();
    let engine = Arc::new(engine);
    let _timer = start_timer(&engine);
    ok(&engine, "Scheduling.schedule", json!({"job": "j1", "every": "1s"}));
    assert!(
        eventually(|| ticks(&engine, "j1") >= 2),
        "no two ticks of a 1s job in {PATIENCE:?}: {:?}",
        events(&engine, "j1")
    );
    // The ticks are recorded as the job's last tick, and the next one counts from it.
    let j = job(&engine, "j1");
    let last = time(&j["lastTickAt"]);
    assert_eq!(time(&j["nextAt"]) - last, chrono::Duration::seconds(1), "{j}");
    assert!(
        eventually(|| time(&job(&engine, "j1")["lastTickAt"]) > last),
        "lastTickAt does not advance"
    );

    ok(&engine, "Scheduling.cancel", json!({"job": "j1"}));
    // A tick raised just before the cancel commits may still land before it; none after.
    std::thread::sleep(Duration::from_millis(2_500));
    let kinds = events(&engine, "j1");
    assert_eq!(kinds.last().map(String::as_str), Some("Cancelled"), "{kinds:?}");
    assert_eq!(
        refused(&engine, "Scheduling._getJob", json!({"job": "j1"})),
        "JOB_NOT_FOUND"
    );

    // What the timer did rebuilds like everything else.
    let live = dump(&engine);
    engine.rebuild().expect("rebuild");
    assert!(live == dump(&engine), "rebuilt projections differ from live ones");
}

#[test]
fn scheduling_a_job_wakes_a_sleeping_timer() {
    let (_dir, engine) = fresh_engine();
    let engine = Arc::new(engine);
    // The timer starts with one job an hour away: it sleeps (for minutes at a time).
    ok(&engine, "Scheduling.schedule", json!({"job": "hourly", "every": "1h"}));
    let _timer = start_timer(&engine);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(ticks(&engine, "hourly"), 0);
    // A job due in a second wakes it, and it ticks on time instead of after its long sleep.
    ok(&engine, "Scheduling.schedule", json!({"job": "soon", "every": "1s"}));
    assert!(
        eventually(|| ticks(&engine, "soon") >= 1),
        "the timer did not wake for a new job"
    );
    assert_eq!(ticks(&engine, "hourly"), 0, "a job not due ticked");
}

#[test]
fn a_job_that_missed_many_intervals_gets_one_catch_up_tick_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        // Before the "downtime": a job every second whose last tick was years ago.
        let engine = engine_at(dir.path());
        ok(&engine, "Scheduling.schedule", json!({"job": "late", "every": "1s"}));
        ok(&engine, "Scheduling.schedule", json!({"job": "later", "every": "1h"}));
        for name in ["late", "later"] {
            ok(
                &engine,
                "Scheduling.tick",
                json!({"job": name, "at": "2020-01-01T00:00:00Z"}),
            );
        }
    }
    let started = chrono::Utc::now();
    let engine = Arc::new(engine_at(dir.path()));
    let _timer = start_timer(&engine);
    // The hourly job missed tens of thousands of intervals: one tick at "now", then the next
    // is an hour away.
    assert!(
        eventually(|| ticks(&engine, "later") >= 2),
        "no catch-up tick: {:?}",
        events(&engine, "later")
    );
    std::thread::sleep(Duration::from_millis(2_500));
    assert_eq!(ticks(&engine, "later"), 2, "more than one catch-up tick");
    let j = job(&engine, "later");
    let last = time(&j["lastTickAt"]);
    assert!(
        last >= started - chrono::Duration::seconds(1),
        "the catch-up tick is not at now: {j}"
    );
    assert_eq!(time(&j["nextAt"]) - last, chrono::Duration::hours(1), "{j}");
    // The job every second carries on from now at its pace: in 2.5 s a handful of ticks, not
    // one per second missed since 2020.
    let late = ticks(&engine, "late");
    assert!((2..=10).contains(&late), "{late} ticks of the 1s job");
}

#[test]
fn rescheduling_with_the_same_interval_appends_nothing_and_rebuild_equals_live() {
    let (_dir, engine) = fresh_engine();
    ok(&engine, "LibraryCache.ingest", alice_library());
    ok(&engine, "Scheduling.schedule", json!({"job": "a", "every": "24h"}));
    let version = events(&engine, "a").len();
    let seq = engine.store().last_seq().expect("seq");
    let again = ok(&engine, "Scheduling.schedule", json!({"job": "a", "every": "1d"}));
    assert_eq!(again["every"], "24h");
    assert_eq!(
        events(&engine, "a").len(),
        version,
        "the same interval appended an event"
    );
    assert_eq!(engine.store().last_seq().expect("seq"), seq);

    ok(
        &engine,
        "Scheduling.tick",
        json!({"job": "a", "at": "2030-01-01T00:00:00Z"}),
    );
    ok(&engine, "Scheduling.schedule", json!({"job": "a", "every": "1h"}));
    ok(&engine, "Scheduling.schedule", json!({"job": "b", "every": "90s"}));
    ok(&engine, "Scheduling.schedule", json!({"job": "c", "every": "7d"}));
    ok(&engine, "Scheduling.cancel", json!({"job": "c"}));
    ok(&engine, "Scheduling.schedule", json!({"job": "c", "every": "30m"}));
    ok(
        &engine,
        "Scheduling.tick",
        json!({"job": "c", "at": "2030-02-01T00:00:00.123456Z"}),
    );
    assert_eq!(
        events(&engine, "a"),
        ["Scheduled", "Ticked", "Scheduled"].map(String::from).to_vec()
    );
    let jobs = ok(&engine, "Scheduling._getJobs", json!({}));
    let names: Vec<&str> = jobs["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .filter_map(|j| j["job"].as_str())
        .collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!(jobs["jobs"][2]["nextAt"], "2030-02-01T00:30:00.123456Z");

    let live = dump(&engine);
    let before = jobs.clone();
    engine.rebuild().expect("rebuild");
    let rebuilt = dump(&engine);
    assert_eq!(live.len(), rebuilt.len(), "row count differs after rebuild");
    assert!(live == rebuilt, "rebuilt projections differ from live ones");
    assert_eq!(ok(&engine, "Scheduling._getJobs", json!({})), before);
}
