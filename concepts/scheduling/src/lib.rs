//! The Scheduling concept: named jobs that come due at a fixed interval. `schedule` and `cancel`
//! are called from outside; `tick` is a system action its own timer raises (see [`timer`]) when a
//! job's `nextAt` has passed, so a sync can react to "it is time" like to any other action.
//!
//! Each job is an event stream (`Scheduled`, `Ticked`, `Cancelled`); the one projection row per
//! job is written only by [`Concept::apply`], so a rebuild reproduces it exactly. Its spec is
//! `Scheduling.concept` beside Cargo.toml.

pub mod timer;

use chrono::{DateTime, Utc};
use concept_core::time::{format_rfc3339, from_micros, micros, parse_duration};
use concept_core::{
    ActionCtx, ActionError, Actions, BackgroundWork, Concept, Decision, EventMeta, ExpectedVersion, Host,
    ProjectionRead, ProjectionTxn, StoreFault,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::Notify;

pub const NAME: &str = "Scheduling";

/// The shortest interval a job may have, in milliseconds.
pub const MIN_EVERY_MS: i64 = 1_000;

// ---------------------------------------------------------------------------------------------
// Wire types

/// `schedule (job, every)`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScheduleInput {
    /// The job's name, chosen by the caller (e.g. `refresh:user:alice`).
    pub job: String,
    /// How often the job comes due: seconds (`"90"`) or `"90s"`, `"30m"`, `"24h"`, `"7d"`; at least 1s.
    pub every: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleOutput {
    pub job: String,
    pub every: String,
    /// When the job next comes due (RFC 3339).
    pub next_at: String,
}

/// `cancel (job)` and `_getJob (job)`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobInput {
    pub job: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobOutput {
    pub job: String,
}

/// `tick (job, at)`: raised by the concept's timer.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TickInput {
    pub job: String,
    /// The time the tick happened (RFC 3339).
    pub at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TickOutput {
    pub job: String,
    pub at: String,
    pub every: String,
    /// `at + every`.
    pub next_at: String,
}

/// `_getJobs {}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoInput {}

/// One job as the queries show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    pub job: String,
    pub every: String,
    pub scheduled_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_tick_at: Option<String>,
    pub next_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobsOutput {
    /// Every job, ordered by name.
    pub jobs: Vec<JobView>,
}

// ---------------------------------------------------------------------------------------------
// Events and rows

/// The facts of a job's stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum SchedulingEvent {
    /// The job was created, or its interval changed.
    #[serde(rename_all = "camelCase")]
    Scheduled { job: String, every: String, every_ms: i64 },
    /// The job came due at `at` (microseconds since the epoch).
    #[serde(rename_all = "camelCase")]
    Ticked { job: String, at: i64 },
    /// The job was removed.
    #[serde(rename_all = "camelCase")]
    Cancelled { job: String },
}

/// The projection row of one job (`job/<name>`), as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JobRow {
    every: String,
    every_ms: i64,
    /// Microseconds since the epoch.
    scheduled_at: i64,
    last_tick_at: Option<i64>,
}

impl JobRow {
    /// `(lastTickAt or scheduledAt) + every`, in microseconds.
    fn next_at(&self) -> i64 {
        self.last_tick_at
            .unwrap_or(self.scheduled_at)
            .saturating_add(self.every_ms.saturating_mul(1000))
    }

    fn view(&self, job: &str) -> JobView {
        JobView {
            job: job.to_string(),
            every: self.every.clone(),
            scheduled_at: format_rfc3339(&from_micros(self.scheduled_at)),
            last_tick_at: self.last_tick_at.map(|t| format_rfc3339(&from_micros(t))),
            next_at: format_rfc3339(&from_micros(self.next_at())),
        }
    }
}

const JOB_PREFIX: &[u8] = b"job/";

fn job_key(job: &str) -> Vec<u8> {
    let mut key = JOB_PREFIX.to_vec();
    key.extend_from_slice(job.as_bytes());
    key
}

fn read_row<R: ProjectionRead + ?Sized>(view: &R, job: &str) -> Result<Option<JobRow>, StoreFault> {
    view.get(&job_key(job))?
        .map(|bytes| {
            serde_json::from_slice(&bytes).map_err(|e| StoreFault::new(format!("job row {job:?} does not decode: {e}")))
        })
        .transpose()
}

fn write_row(txn: &mut dyn ProjectionTxn, job: &str, row: &JobRow) -> Result<(), StoreFault> {
    let bytes =
        serde_json::to_vec(row).map_err(|e| StoreFault::new(format!("job row {job:?} does not encode: {e}")))?;
    txn.put(&job_key(job), bytes);
    Ok(())
}

/// A job as the timer needs it: its name and when it next comes due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub job: String,
    pub next_at: DateTime<Utc>,
}

/// Every job with its views, ordered by name.
fn all_jobs(view: &dyn ProjectionRead) -> Result<Vec<(String, JobRow)>, StoreFault> {
    view.scan_prefix(JOB_PREFIX)?
        .into_iter()
        .map(|(key, value)| {
            let job = String::from_utf8_lossy(&key[JOB_PREFIX.len()..]).into_owned();
            let row: JobRow = serde_json::from_slice(&value)
                .map_err(|e| StoreFault::new(format!("job row {job:?} does not decode: {e}")))?;
            Ok((job, row))
        })
        .collect()
}

/// Every job and when it next comes due: what the timer reads.
pub fn due_times(view: &dyn ProjectionRead) -> Result<Vec<Due>, ActionError> {
    Ok(all_jobs(view)?
        .into_iter()
        .map(|(job, row)| Due {
            next_at: from_micros(row.next_at()),
            job,
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Validation

fn check_job(value: &str) -> Result<(), ActionError> {
    concept_core::fields::id("job", value)
}

/// `every` in milliseconds: a duration of at least 1s.
fn check_every(value: &str) -> Result<i64, ActionError> {
    let bad = || {
        ActionError::invalid(
            "INVALID_DURATION",
            format!(
                "`every` must be a duration of at least 1s such as \"90s\", \"30m\", \"24h\" or \"7d\" (or seconds), not {value:?}"
            ),
        )
    };
    let every = parse_duration(value).map_err(|_| bad())?;
    let ms = every.num_milliseconds();
    if ms < MIN_EVERY_MS {
        return Err(bad());
    }
    Ok(ms)
}

fn not_found(job: &str) -> ActionError {
    ActionError::not_found("JOB_NOT_FOUND", format!("no job named {job:?} is scheduled"))
}

// ---------------------------------------------------------------------------------------------
// The concept

/// The Scheduling concept. It holds the bell that wakes its timer when a job is scheduled or
/// cancelled; everything else it knows is in its projections.
#[derive(Debug, Default)]
pub struct Scheduling {
    wake: Arc<Notify>,
}

impl Scheduling {
    pub fn new() -> Self {
        Self::default()
    }

    fn schedule(&self, ctx: &ActionCtx, view: &dyn ProjectionRead, input: &ScheduleInput) -> Decided<ScheduleOutput> {
        check_job(&input.job)?;
        let every_ms = check_every(&input.every)?;
        let every = input.every.trim().to_string();
        let existing = read_row(view, &input.job)?;
        let row = match existing {
            Some(row) if row.every_ms == every_ms => {
                // The same interval again: nothing changes, no event.
                let out = ScheduleOutput {
                    job: input.job.clone(),
                    every: row.every.clone(),
                    next_at: format_rfc3339(&from_micros(row.next_at())),
                };
                return Ok(Decision::output_only(out));
            }
            Some(row) => JobRow {
                every: every.clone(),
                every_ms,
                ..row
            },
            None => JobRow {
                every: every.clone(),
                every_ms,
                scheduled_at: micros(&ctx.now),
                last_tick_at: None,
            },
        };
        let version = view.stream_version(&input.job)?;
        let out = ScheduleOutput {
            job: input.job.clone(),
            every: every.clone(),
            next_at: format_rfc3339(&from_micros(row.next_at())),
        };
        Ok(Decision::append(
            out,
            input.job.clone(),
            ExpectedVersion::Exact(version),
            vec![SchedulingEvent::Scheduled {
                job: input.job.clone(),
                every,
                every_ms,
            }],
        ))
    }

    fn cancel(&self, _ctx: &ActionCtx, view: &dyn ProjectionRead, input: &JobInput) -> Decided<JobOutput> {
        check_job(&input.job)?;
        if read_row(view, &input.job)?.is_none() {
            return Err(not_found(&input.job));
        }
        let version = view.stream_version(&input.job)?;
        Ok(Decision::append(
            JobOutput { job: input.job.clone() },
            input.job.clone(),
            ExpectedVersion::Exact(version),
            vec![SchedulingEvent::Cancelled { job: input.job.clone() }],
        ))
    }

    fn tick(&self, _ctx: &ActionCtx, view: &dyn ProjectionRead, input: &TickInput) -> Decided<TickOutput> {
        check_job(&input.job)?;
        let at = concept_core::fields::time("at", &input.at)?;
        let at = micros(&at);
        let row = read_row(view, &input.job)?.ok_or_else(|| not_found(&input.job))?;
        if let Some(last) = row.last_tick_at {
            if at < last {
                return Err(ActionError::conflict(
                    "TICK_OUT_OF_ORDER",
                    format!(
                        "`at` ({}) is before the job's last tick ({})",
                        format_rfc3339(&from_micros(at)),
                        format_rfc3339(&from_micros(last))
                    ),
                ));
            }
        }
        let ticked = JobRow {
            last_tick_at: Some(at),
            ..row
        };
        let version = view.stream_version(&input.job)?;
        let out = TickOutput {
            job: input.job.clone(),
            at: format_rfc3339(&from_micros(at)),
            every: ticked.every.clone(),
            next_at: format_rfc3339(&from_micros(ticked.next_at())),
        };
        Ok(Decision::append(
            out,
            input.job.clone(),
            ExpectedVersion::Exact(version),
            vec![SchedulingEvent::Ticked {
                job: input.job.clone(),
                at,
            }],
        ))
    }

    fn get_jobs(
        &self,
        _ctx: &ActionCtx,
        view: &dyn ProjectionRead,
        _input: NoInput,
    ) -> Result<JobsOutput, ActionError> {
        let jobs = all_jobs(view)?.into_iter().map(|(job, row)| row.view(&job)).collect();
        Ok(JobsOutput { jobs })
    }

    fn get_job(&self, _ctx: &ActionCtx, view: &dyn ProjectionRead, input: JobInput) -> Result<JobView, ActionError> {
        check_job(&input.job)?;
        let row = read_row(view, &input.job)?.ok_or_else(|| not_found(&input.job))?;
        Ok(row.view(&input.job))
    }
}

type Decided<O> = Result<Decision<SchedulingEvent, O>, ActionError>;

impl Concept for Scheduling {
    type Event = SchedulingEvent;

    fn actions(&self) -> Actions<Self> {
        Actions::new(NAME)
            .action("schedule", Scheduling::schedule)
            .action("cancel", Scheduling::cancel)
            .system("tick", Scheduling::tick)
            .query("_getJobs", Scheduling::get_jobs)
            .query("_getJob", Scheduling::get_job)
    }

    fn event_kind(event: &SchedulingEvent) -> &'static str {
        match event {
            SchedulingEvent::Scheduled { .. } => "Scheduled",
            SchedulingEvent::Ticked { .. } => "Ticked",
            SchedulingEvent::Cancelled { .. } => "Cancelled",
        }
    }

    fn apply(&self, meta: &EventMeta, event: &SchedulingEvent, txn: &mut dyn ProjectionTxn) -> Result<(), StoreFault> {
        match event {
            SchedulingEvent::Scheduled { job, every, every_ms } => {
                let row = match read_row(&*txn, job)? {
                    Some(row) => JobRow {
                        every: every.clone(),
                        every_ms: *every_ms,
                        ..row
                    },
                    None => JobRow {
                        every: every.clone(),
                        every_ms: *every_ms,
                        scheduled_at: micros(&meta.at),
                        last_tick_at: None,
                    },
                };
                write_row(txn, job, &row)
            }
            SchedulingEvent::Ticked { job, at } => {
                let row = read_row(&*txn, job)?.ok_or_else(|| {
                    StoreFault::new(format!("event {}: a tick of job {job:?}, which has no row", meta.seq))
                })?;
                write_row(
                    txn,
                    job,
                    &JobRow {
                        last_tick_at: Some(*at),
                        ..row
                    },
                )
            }
            SchedulingEvent::Cancelled { job } => {
                txn.delete(&job_key(job));
                Ok(())
            }
        }
    }

    fn committed(&self, action: &str, _output: &Value) {
        // A new, changed or removed job may move the earliest due time: wake the timer. (Its
        // own ticks need not: it computes the next due time from their answers.)
        if action == "schedule" || action == "cancel" {
            self.wake.notify_one();
        }
    }

    fn background(self: Arc<Self>, host: Arc<dyn Host>) -> Option<BackgroundWork> {
        Some(Box::pin(timer::run(host, Arc::clone(&self.wake))))
    }
}

#[cfg(test)]
mod tests {
    //! The concept's actions decided and applied over an in-memory key space, against a plain
    //! model of the jobs: each job's due time is `(lastTickAt or scheduledAt) + every`.

    use super::*;
    use concept_core::memory::Memory;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// A decision committed to the in-memory key space (`concept_core::memory::Memory`) as a store
    /// would: each append's expected version checked, then its events applied.
    trait Commit {
        fn commit_decision<O>(
            &mut self,
            concept: &Scheduling,
            decision: &Decision<SchedulingEvent, O>,
            at: DateTime<Utc>,
        );
    }

    impl Commit for Memory {
        fn commit_decision<O>(
            &mut self,
            concept: &Scheduling,
            decision: &Decision<SchedulingEvent, O>,
            at: DateTime<Utc>,
        ) {
            for (stream, expected, events) in &decision.appends {
                let version = self.stream_version(stream).expect("version");
                assert_eq!(*expected, ExpectedVersion::Exact(version), "stream {stream}");
                for event in events {
                    let seq = self.next_seq();
                    let meta = EventMeta {
                        seq,
                        stream: stream.clone(),
                        version: self.next_version(stream),
                        kind: Scheduling::event_kind(event).to_string(),
                        action: seq,
                        at,
                    };
                    concept.apply(&meta, event, self).expect("apply");
                }
            }
            self.commit().expect("commit");
        }
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_225_600 + secs, 0).expect("time")
    }

    fn ctx(now: DateTime<Utc>) -> ActionCtx {
        ActionCtx::new(Default::default(), now)
    }

    fn schedule_input(job: &str, every: &str) -> ScheduleInput {
        ScheduleInput {
            job: job.to_string(),
            every: every.to_string(),
        }
    }

    #[test]
    fn a_job_is_due_one_interval_after_it_was_scheduled_and_after_each_tick() {
        let (concept, mut mem) = (Scheduling::new(), Memory::default());
        let scheduled = at(0);
        let d = concept
            .schedule(&ctx(scheduled), &mem, &schedule_input("refresh", "24h"))
            .expect("schedule");
        assert_eq!(d.output.next_at, "2026-01-02T00:00:00Z");
        mem.commit_decision(&concept, &d, scheduled);
        let due = due_times(&mem).expect("due");
        assert_eq!(
            due,
            vec![Due {
                job: "refresh".into(),
                next_at: scheduled + chrono::Duration::hours(24)
            }]
        );

        // Ticked late (the service was down for days): due one interval after the tick, not
        // after the missed due times.
        let tick = TickInput {
            job: "refresh".into(),
            at: "2026-01-05T03:00:00Z".into(),
        };
        let d = concept.tick(&ctx(at(4 * 86_400)), &mem, &tick).expect("tick");
        assert_eq!(d.output.next_at, "2026-01-06T03:00:00Z");
        mem.commit_decision(&concept, &d, at(4 * 86_400));
        assert_eq!(
            due_times(&mem).expect("due")[0].next_at,
            concept_core::time::parse_rfc3339("2026-01-06T03:00:00Z").expect("time")
        );
        let view = concept
            .get_job(&ctx(at(0)), &mem, JobInput { job: "refresh".into() })
            .expect("_getJob");
        assert_eq!(view.scheduled_at, "2026-01-01T00:00:00Z");
        assert_eq!(view.last_tick_at.as_deref(), Some("2026-01-05T03:00:00Z"));
    }

    #[test]
    fn every_is_a_duration_of_at_least_a_second_and_the_same_interval_again_changes_nothing() {
        let (concept, mut mem) = (Scheduling::new(), Memory::default());
        for bad in ["999ms", "0", "", "soon", "-5", "1w"] {
            let e = concept
                .schedule(&ctx(at(0)), &mem, &schedule_input("j", bad))
                .err()
                .unwrap_or_else(|| panic!("{bad:?} accepted"));
            assert_eq!(e.code, "INVALID_DURATION", "{bad:?}");
        }
        let d = concept
            .schedule(&ctx(at(0)), &mem, &schedule_input("j", "90"))
            .expect("90");
        assert_eq!(d.appends.len(), 1);
        mem.commit_decision(&concept, &d, at(0));
        // "90s" is another spelling of "90": the same interval appends nothing.
        let again = concept
            .schedule(&ctx(at(50)), &mem, &schedule_input("j", "90s"))
            .expect("90s");
        assert!(again.appends.is_empty());
        assert_eq!(again.output.next_at, "2026-01-01T00:01:30Z");
        // Another length reschedules: the job keeps when it was scheduled.
        let d = concept
            .schedule(&ctx(at(50)), &mem, &schedule_input("j", "1m"))
            .expect("1m");
        mem.commit_decision(&concept, &d, at(50));
        assert_eq!(d.output.next_at, "2026-01-01T00:01:00Z");
        assert_eq!(due_times(&mem).expect("due")[0].next_at, at(60));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Schedule(u8, usize),
        /// A tick `back` seconds before now (0: now).
        Tick(u8, i64),
        Cancel(u8),
        Wait(i64),
    }

    const EVERY: [(&str, i64); 6] = [
        ("1", 1_000),
        ("90s", 90_000),
        ("90", 90_000),
        ("30m", 1_800_000),
        ("24h", 86_400_000),
        ("7d", 604_800_000),
    ];

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0u8..4, 0..EVERY.len()).prop_map(|(j, e)| Op::Schedule(j, e)),
            3 => (0u8..4, prop_oneof![3 => Just(0i64), 1 => 1i64..100_000]).prop_map(|(j, b)| Op::Tick(j, b)),
            1 => (0u8..4).prop_map(Op::Cancel),
            2 => (1i64..200_000).prop_map(Op::Wait),
        ]
    }

    /// A job of the model: interval, when scheduled, last tick (seconds on the test's clock).
    #[derive(Debug, Clone, Copy)]
    struct Job {
        every_ms: i64,
        scheduled: i64,
        last_tick: Option<i64>,
    }

    impl Job {
        fn next_at(&self) -> DateTime<Utc> {
            at(self.last_tick.unwrap_or(self.scheduled)) + chrono::Duration::milliseconds(self.every_ms)
        }
    }

    proptest! {
        /// Any run of schedules, ticks (some out of order), cancels and waits: the due times
        /// the timer reads are the model's, for every job, in name order; the actions answer
        /// the model's due time, and refuse what the model says they must.
        #[test]
        fn due_times_follow_a_plain_model(ops in prop::collection::vec(op(), 1..40)) {
            let (concept, mut mem) = (Scheduling::new(), Memory::default());
            let mut jobs: BTreeMap<String, Job> = BTreeMap::new();
            let mut now = 0i64;
            for op in &ops {
                let c = ctx(at(now));
                match *op {
                    Op::Schedule(j, e) => {
                        let (every, every_ms) = EVERY[e];
                        let job = format!("job{j}");
                        // A new job, or a new interval, is an event; the same interval again none.
                        let changes = !matches!(jobs.get(&job), Some(m) if m.every_ms == every_ms);
                        let d = concept.schedule(&c, &mem, &schedule_input(&job, every)).expect("schedule");
                        prop_assert_eq!(!d.appends.is_empty(), changes, "{:?}", op);
                        let model = jobs.entry(job.clone()).or_insert(Job { every_ms, scheduled: now, last_tick: None });
                        model.every_ms = every_ms;
                        prop_assert_eq!(&d.output.next_at, &format_rfc3339(&model.next_at()));
                        mem.commit_decision(&concept, &d, at(now));
                    }
                    Op::Tick(j, back) => {
                        let job = format!("job{j}");
                        let when = now - back;
                        let input = TickInput { job: job.clone(), at: format_rfc3339(&at(when)) };
                        let result = concept.tick(&c, &mem, &input);
                        match jobs.get_mut(&job) {
                            None => prop_assert_eq!(result.err().map(|e| e.code), Some("JOB_NOT_FOUND".to_string())),
                            Some(model) if model.last_tick.is_some_and(|last| when < last) => {
                                prop_assert_eq!(result.err().map(|e| e.code), Some("TICK_OUT_OF_ORDER".to_string()))
                            }
                            Some(model) => {
                                let d = result.expect("tick");
                                model.last_tick = Some(when);
                                prop_assert_eq!(&d.output.next_at, &format_rfc3339(&model.next_at()));
                                mem.commit_decision(&concept, &d, at(now));
                            }
                        }
                    }
                    Op::Cancel(j) => {
                        let job = format!("job{j}");
                        let result = concept.cancel(&c, &mem, &JobInput { job: job.clone() });
                        match jobs.remove(&job) {
                            None => prop_assert_eq!(result.err().map(|e| e.code), Some("JOB_NOT_FOUND".to_string())),
                            Some(_) => mem.commit_decision(&concept, &result.expect("cancel"), at(now)),
                        }
                    }
                    Op::Wait(secs) => now += secs,
                }
                let want: Vec<Due> = jobs.iter().map(|(job, m)| Due { job: job.clone(), next_at: m.next_at() }).collect();
                prop_assert_eq!(due_times(&mem).expect("due"), want, "after {:?}", op);
                let listed = concept.get_jobs(&c, &mem, NoInput {}).expect("_getJobs").jobs;
                let names: Vec<&str> = listed.iter().map(|v| v.job.as_str()).collect();
                prop_assert_eq!(names, jobs.keys().map(String::as_str).collect::<Vec<_>>());
            }
        }
    }
}
