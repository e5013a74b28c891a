//! The Scheduling concept on a real engine and a real sled store: its timer (background work)
//! ticks due jobs, stops with cancel, wakes when a job is scheduled, gives a job that missed many
//! intervals exactly one catch-up tick, and its projections rebuild byte for byte (I2).
//!
//! The engine runs on a manual clock the tests move: a job comes due when the clock reaches it,
//! never because real time passed. Waits for the timer (async work) are generous polls (up to
//! 10 s), never timing assertions.

use crate::common;

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

/// Moves the clock forward one second at a time, `n` times, waiting after each step for the
/// timer to tick the probe job (due every second): once it has, the timer has done a round at
/// that time, and every other job due by then has ticked too.
fn step_seconds(engine: &Engine, clock: &concept_core::ManualClock, n: usize) {
    for _ in 0..n {
        let before = ticks(engine, "probe");
        clock.advance(chrono::Duration::seconds(1));
        assert!(
            eventually(|| ticks(engine, "probe") > before),
            "the timer did not tick the probe job after the clock moved: {:?}",
            events(engine, "probe")
        );
    }
}

#[test]
fn a_job_every_second_ticks_until_it_is_cancelled() {
    let clock = manual_clock("2026-11-21T12:00:00Z");
    let (_dir, engine) = engine_on(&clock);
    let engine = Arc::new(engine);
    let _timer = start_timer(&engine);
    ok(&engine, "Scheduling.schedule", json!({"job": "probe", "every": "1s"}));
    ok(&engine, "Scheduling.schedule", json!({"job": "j1", "every": "1s"}));
    // Nothing is due until the clock moves.
    assert_eq!(ticks(&engine, "j1"), 0);
    step_seconds(&engine, &clock, 3);
    assert_eq!(ticks(&engine, "j1"), 3, "{:?}", events(&engine, "j1"));
    // Each tick is at the clock's time, and the next one counts from it.
    let j = job(&engine, "j1");
    assert_eq!(j["lastTickAt"], json!("2026-11-21T12:00:03Z"), "{j}");
    assert_eq!(j["nextAt"], json!("2026-11-21T12:00:04Z"), "{j}");

    ok(&engine, "Scheduling.cancel", json!({"job": "j1"}));
    step_seconds(&engine, &clock, 3);
    let kinds = events(&engine, "j1");
    assert_eq!(kinds.last().map(String::as_str), Some("Cancelled"), "{kinds:?}");
    assert_eq!(ticks(&engine, "j1"), 3, "a cancelled job ticked: {kinds:?}");
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
    let clock = manual_clock("2026-11-21T12:00:00Z");
    let (_dir, engine) = engine_on(&clock);
    let engine = Arc::new(engine);
    // The timer starts with one job an hour away: it waits for the clock to reach it.
    ok(&engine, "Scheduling.schedule", json!({"job": "hourly", "every": "1h"}));
    let _timer = start_timer(&engine);
    // A new job a second away wakes it (without the wake-up it would look again only after
    // its longest sleep, 30 s of real time, longer than the test waits).
    ok(&engine, "Scheduling.schedule", json!({"job": "soon", "every": "1s"}));
    clock.advance(chrono::Duration::seconds(1));
    assert!(
        eventually(|| ticks(&engine, "soon") >= 1),
        "the timer did not wake for a new job: {:?}",
        events(&engine, "soon")
    );
    assert_eq!(job(&engine, "soon")["lastTickAt"], json!("2026-11-21T12:00:01Z"));
    assert_eq!(ticks(&engine, "hourly"), 0, "a job not due ticked");
    // The hourly job ticks when the clock reaches it, not before.
    clock.advance(chrono::Duration::minutes(58));
    ok(&engine, "Scheduling.schedule", json!({"job": "probe", "every": "1s"}));
    step_seconds(&engine, &clock, 1);
    assert_eq!(ticks(&engine, "hourly"), 0, "the hourly job ticked a minute early");
    clock.set(concept_core::time::parse_rfc3339("2026-11-21T13:00:00Z").expect("time"));
    assert!(
        eventually(|| ticks(&engine, "hourly") == 1),
        "the hourly job did not tick when the clock reached it: {:?}",
        events(&engine, "hourly")
    );
    assert_eq!(job(&engine, "hourly")["lastTickAt"], json!("2026-11-21T13:00:00Z"));
}

#[test]
fn a_job_that_missed_many_intervals_gets_one_catch_up_tick_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = manual_clock("2020-01-01T00:00:00Z");
    {
        // Before the "downtime": a job every second and an hourly one, last ticked in 2020.
        let engine = engine_at(dir.path()).with_clock(Arc::clone(&clock) as concept_core::SharedClock);
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
    // Years later the service starts again.
    clock.set(concept_core::time::parse_rfc3339("2026-11-21T12:00:00Z").expect("time"));
    let engine = Arc::new(engine_at(dir.path()).with_clock(Arc::clone(&clock) as concept_core::SharedClock));
    let _timer = start_timer(&engine);
    // Each job missed many intervals: one tick at "now" each, then the next is `every` away.
    assert!(
        eventually(|| ticks(&engine, "later") >= 2 && ticks(&engine, "late") >= 2),
        "no catch-up ticks: {:?} {:?}",
        events(&engine, "later"),
        events(&engine, "late")
    );
    let j = job(&engine, "later");
    assert_eq!(j["lastTickAt"], json!("2026-11-21T12:00:00Z"), "{j}");
    assert_eq!(j["nextAt"], json!("2026-11-21T13:00:00Z"), "{j}");
    // The job every second carries on from now at its pace: three seconds, three more ticks,
    // not one per second missed since 2020; the hourly one not again.
    ok(&engine, "Scheduling.schedule", json!({"job": "probe", "every": "1s"}));
    step_seconds(&engine, &clock, 3);
    assert_eq!(ticks(&engine, "late"), 2 + 3, "{:?}", events(&engine, "late"));
    assert_eq!(ticks(&engine, "later"), 2, "more than one catch-up tick");
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
