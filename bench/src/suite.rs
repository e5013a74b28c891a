//! The in-process measurements of one cache on one plan, run in the cache's own process (a
//! worker) on the store its ingest left: the queries, the syncs, `_getChanges`, the merges and
//! the rebuild, each timed run by run; and the checks, read outside the timed regions. Every timed
//! answer is kept until its clock has stopped and then folded, in the plan's normal form, into the
//! step's digest, which the orchestrator compares between the caches.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::answers::{normal_form, Form};
use crate::cache::{number, user_body, Cache, CacheKind, Query};
use crate::error::BenchError;
use crate::memory::{self, Memory};
use crate::plan::{read_body, read_lines, Plan, PLAYS_PAGE, TRACKS_PAGE};
use crate::stats::Digest;

/// The runs of one step: each run's time, and the digest of its answers in the step's normal form.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub times_ms: Vec<f64>,
    pub digest: String,
}

/// Times runs and folds their answers into a digest after each clock stops.
struct Timer {
    times: Vec<f64>,
    digest: Digest,
    form: Form,
}

impl Timer {
    fn new(form: Form) -> Timer {
        Timer {
            times: Vec::new(),
            digest: Digest::default(),
            form,
        }
    }

    fn run(&mut self, f: impl FnOnce() -> Result<Bytes, BenchError>) -> Result<Bytes, BenchError> {
        let start = Instant::now();
        let answer = f()?;
        self.times.push(elapsed_ms(start));
        self.digest.add(&normal_form(self.form, &answer)?);
        Ok(answer)
    }

    fn done(self) -> Step {
        Step {
            times_ms: self.times,
            digest: self.digest.hex(),
        }
    }
}

pub fn elapsed_ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1_000.0
}

/// What a suite measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SuiteResult {
    /// By step name (`get_liked`, `sync_unchanged`, `merge_1_like`, `rebuild`, …).
    pub steps: BTreeMap<String, Step>,
    /// Digests of answers read outside the timed regions, by check name (see [`crate::plan::Expected`]).
    pub checks: BTreeMap<String, String>,
    /// The process's memory: resident before the queries, and its peak while they ran.
    pub serving: Memory,
    pub serving_before: Memory,
    pub bytes_after_ingest: u64,
    pub bytes_at_end: u64,
    /// Events replayed by the rebuild, for a cache that has one.
    pub rebuild_events: Option<u64>,
}

/// Runs the plan's in-process steps on the cache of `kind` in `dir`, which holds the plan's user
/// just ingested. `log` reports progress.
pub fn run(kind: &CacheKind, dir: &Path, plan: &Plan, log: &mut dyn FnMut(&str)) -> Result<SuiteResult, BenchError> {
    let mut cache = kind.open(dir)?;
    let mut out = SuiteResult {
        bytes_after_ingest: cache.bytes_on_disk()?,
        ..SuiteResult::default()
    };
    let user = user_body(&plan.user);
    check(&mut out, "liked/after_ingest", cache.query(Query::GetLiked, &user)?)?;
    let version_after_ingest = number(&cache.query(Query::GetStatus, &user)?, "version")?;
    checks_of_reads(cache.as_mut(), plan, &mut out)?;

    log("queries");
    memory::reset_peak();
    out.serving_before = memory::now();
    for step in &plan.queries {
        let bodies: Vec<Bytes> = step.bodies.iter().map(|b| Bytes::from(b.clone())).collect();
        if bodies.is_empty() {
            continue;
        }
        let mut timer = Timer::new(step.form);
        for i in 0..step.reps.max(1) {
            timer.run(|| cache.query(step.query, &bodies[i % bodies.len()]))?;
        }
        out.steps.insert(step.name.clone(), timer.done());
    }
    out.serving = memory::now();

    log("syncs");
    let ingest = read_body(&plan.ingest())?;
    let reps = plan.reps.sync_reps.max(1);
    let mut timer = Timer::new(Form::Write);
    for _ in 0..reps {
        timer.run(|| cache.sync(&ingest))?;
    }
    out.steps.insert("sync_unchanged".into(), timer.done());
    check(
        &mut out,
        "liked/after_sync_unchanged",
        cache.query(Query::GetLiked, &user)?,
    )?;
    // Syncs that change k likes: alternate between the changed snapshot and the original, ending
    // on the original, so that every run changes exactly k likes.
    let k = plan.k;
    for (name, point, changed, original) in [
        (
            format!("sync_full_{k}_likes_changed"),
            "sync_full",
            read_body(&plan.sync_changed())?,
            ingest.clone(),
        ),
        (
            format!("sync_likes_only_{k}_changed"),
            "sync_likes_only",
            read_body(&plan.likes_only_changed())?,
            read_body(&plan.likes_only())?,
        ),
    ] {
        let mut timer = Timer::new(Form::Write);
        for _ in 0..reps {
            timer.run(|| cache.sync(&changed))?;
            check(
                &mut out,
                &format!("liked/after_{point}_changed"),
                cache.query(Query::GetLiked, &user)?,
            )?;
            timer.run(|| cache.sync(&original))?;
        }
        out.steps.insert(name, timer.done());
        check(
            &mut out,
            &format!("liked/after_{point}_back"),
            cache.query(Query::GetLiked, &user)?,
        )?;
    }
    drop(ingest);

    log("changes");
    let since = Bytes::from(json!({ "userId": plan.user, "sinceVersion": version_after_ingest }).to_string());
    let mut timer = Timer::new(Form::Changes);
    for _ in 0..plan.reps.reps.max(1) {
        timer.run(|| cache.query(Query::GetChanges, &since))?;
    }
    out.steps.insert("get_changes".into(), timer.done());

    log("merges");
    for step in &plan.merges {
        let bodies = read_lines(&step.file)?;
        let mut timer = Timer::new(Form::Write);
        for body in &bodies {
            timer.run(|| cache.merge(body))?;
        }
        out.steps.insert(step.name.clone(), timer.done());
    }
    check(&mut out, "liked/after_merges", cache.query(Query::GetLiked, &user)?)?;

    let mut times = Vec::new();
    for _ in 0..plan.reps.rebuild_runs.max(1) {
        let start = Instant::now();
        let Some(events) = cache.rebuild()? else {
            break;
        };
        times.push(elapsed_ms(start));
        out.rebuild_events = Some(events);
        log("rebuilt");
        check(&mut out, "liked/after_rebuild", cache.query(Query::GetLiked, &user)?)?;
    }
    if !times.is_empty() {
        out.steps.insert(
            "rebuild".into(),
            Step {
                times_ms: times,
                digest: String::new(),
            },
        );
    }
    out.bytes_at_end = cache.bytes_on_disk()?;
    drop(cache);
    kind.wait_closed(dir)?;
    Ok(out)
}

/// Records the digest of `answer` in its exact form (a page's opaque `nextCursor` left out).
fn check(out: &mut SuiteResult, name: &str, answer: Bytes) -> Result<(), BenchError> {
    let exact = crate::answers::normal_form(Form::Exact, &answer)?;
    out.checks.insert(name.to_owned(), Digest::of(&exact));
    Ok(())
}

/// The untimed reads checked against the workload: every playlist, the plays, the first page of
/// tracks, `/api/liked`.
fn checks_of_reads(cache: &mut dyn Cache, plan: &Plan, out: &mut SuiteResult) -> Result<(), BenchError> {
    let mut playlists = Digest::default();
    if let Some(step) = plan.queries.iter().find(|q| q.query == Query::GetPlaylist) {
        for body in &step.bodies {
            playlists.add(&cache.query(Query::GetPlaylist, &Bytes::from(body.clone()))?);
        }
    }
    out.checks.insert("playlists".into(), playlists.hex());
    let user = &plan.user;
    let plays_all = plan
        .queries
        .iter()
        .find(|q| q.name == "get_plays_all")
        .and_then(|q| q.bodies.first().cloned())
        .unwrap_or_default();
    for (name, query, body) in [
        (
            format!("plays/{PLAYS_PAGE}"),
            Query::GetPlays,
            json!({ "userId": user, "limit": PLAYS_PAGE }).to_string(),
        ),
        ("plays/all".to_owned(), Query::GetPlays, plays_all),
        (
            "tracks/first_page".to_owned(),
            Query::GetTracks,
            json!({ "userId": user, "limit": TRACKS_PAGE }).to_string(),
        ),
        (
            "liked_request/after_ingest".to_owned(),
            Query::LikedRequest,
            json!({ "userId": user }).to_string(),
        ),
    ] {
        let answer = cache.query(query, &Bytes::from(body))?;
        check(out, &name, answer)?;
    }
    Ok(())
}
