//! The orchestrating process of a benchmark run: it generates each workload once, writes its
//! bodies ([`Plan`]), runs every measurement of every cache in worker processes of their own
//! ([`worker::spawn`]), drives LibraryCache's HTTP server (a worker too) with its client, checks
//! every answer — against the workload where the workload says what it must be, and between the
//! caches everywhere — and assembles the [`Report`]s (one for LibraryCache on sled, one more on
//! PostgreSQL with `--pg`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;

use crate::answers::{self, normal_form, Form};
use crate::cache::CacheKind;
use crate::concurrent::Phase;
use crate::error::BenchError;
use crate::http::{self, Client, Request};
use crate::machine::Machine;
use crate::plan::{read_body, read_lines, Expected, Plan, PlanSettings, Reps};
use crate::report::{
    DiskSize, GrowthFigures, MemoryFigures, ReadsDuringWrite, RebuildFigures, Report, Side, BASELINE, BASELINE_NORMAL,
};
use crate::sqlite_baseline::Durability;
use crate::stats::{median, Digest, Summary};
use crate::suite::SuiteResult;
use crate::worker::{self, ColdResult, GrowthResult, IngestResult, ParseResult, Served, Task};
use crate::workload::{FreshLikes, Sizes, Workload};

/// What ours' durability is, in one line (the SQLite lines are [`Durability::survives`]).
pub const OURS_DURABILITY: &str = "sled's flush, then fdatasync of its file (and of any blob file) before every acknowledgement: an acknowledged write survives a process kill, an OS crash and a power loss";
/// The same on PostgreSQL.
pub const OURS_PG_DURABILITY: &str =
    "each commit as the PostgreSQL server makes it durable (synchronous_commit as configured there)";

/// The HTTP measurements: on which workload, for how long, at which concurrencies.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub label: String,
    pub seconds: f64,
    pub clients: Vec<usize>,
}

/// What a run measures.
#[derive(Debug, Clone)]
pub struct Options {
    /// The workloads, by label, in order.
    pub sizes: Vec<(String, Sizes)>,
    /// The label of the large library (for the targets), if it is among `sizes`.
    pub large: Option<String>,
    pub seed: u64,
    pub k: usize,
    pub reps: Reps,
    pub ingest_runs: usize,
    pub http: Option<HttpOptions>,
    /// The workload of the growth measurement and its number of single-like merges.
    pub growth: Option<(String, usize)>,
    /// The workload of the reads-during-writes measurement.
    pub concurrent: Option<String>,
    /// LibraryCache's syncs (`None`: none).
    pub syncs: Option<PathBuf>,
    pub postgres: Option<String>,
    pub work_dir: PathBuf,
    pub keep: bool,
}

/// Everything one cache's worker processes measured on one workload.
#[derive(Debug, Clone, Default)]
struct CacheRun {
    ingests: Vec<IngestResult>,
    suite: SuiteResult,
    cold_first: Option<ColdResult>,
    cold: Vec<ColdResult>,
    growth: Option<GrowthResult>,
    /// The first open after the growth merges.
    cold_after_growth: Option<ColdResult>,
    concurrent: Option<Vec<Phase>>,
}

/// What LibraryCache answered over HTTP on one workload.
#[derive(Debug, Clone, Default)]
struct HttpRun {
    figures: Vec<(String, http::HttpFigures)>,
    memory: Vec<(String, MemoryFigures)>,
}

/// The expected answers the HTTP measurements check every answer against.
struct HttpExpected {
    liked: Bytes,
    playlists: Vec<(String, Bytes)>,
    liked_request: Bytes,
    liked_after: String,
}

/// The caches of a run: SQLite FULL, SQLite NORMAL, LibraryCache on sled (and on PostgreSQL).
fn caches(opts: &Options) -> Vec<CacheKind> {
    let mut caches = vec![
        CacheKind::Sqlite {
            durability: Durability::Full,
        },
        CacheKind::Sqlite {
            durability: Durability::Normal,
        },
        CacheKind::Ours {
            syncs: opts.syncs.clone(),
            postgres: None,
        },
    ];
    if let Some(url) = &opts.postgres {
        caches.push(CacheKind::Ours {
            syncs: opts.syncs.clone(),
            postgres: Some(url.clone()),
        });
    }
    caches
}

fn remove_dir(dir: &Path) -> Result<(), BenchError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(BenchError::io("remove", dir)(e)),
    }
}

fn wrong(cache: &str, operation: &str, detail: String) -> BenchError {
    BenchError::WrongAnswer {
        cache: cache.to_owned(),
        operation: operation.to_owned(),
        detail,
    }
}

/// Runs every measurement; returns the reports by LibraryCache's store (`sled`, `postgres`).
pub fn run(opts: &Options, machine: &Machine) -> Result<Vec<(String, Report)>, BenchError> {
    let caches = caches(opts);
    let mut runs: BTreeMap<(String, String), CacheRun> = BTreeMap::new();
    let mut floors: Vec<(String, f64)> = Vec::new();
    let mut http_runs: BTreeMap<String, HttpRun> = BTreeMap::new();
    let mut body_bytes: BTreeMap<String, u64> = BTreeMap::new();
    for (label, sizes) in &opts.sizes {
        let work = opts.work_dir.join(label);
        remove_dir(&work)?;
        eprintln!("{label}: generating the workload");
        let w = Workload::generate(*sizes, opts.seed);
        let settings = PlanSettings {
            label: label.clone(),
            k: opts.k,
            reps: opts.reps,
            growth_merges: match &opts.growth {
                Some((l, n)) if l == label => *n,
                _ => 0,
            },
            like_requests: match &opts.http {
                Some(h) if &h.label == label => opts.reps.reps,
                _ => 0,
            },
            seed: opts.seed,
        };
        let plan = Plan::write(&w, &work.join("plan"), &settings)?;
        let expected = Expected::of(&w, &plan)?;
        let http_expected = match &opts.http {
            Some(h) if &h.label == label => Some(http_expected(&w, &plan)?),
            _ => None,
        };
        drop(w);
        body_bytes.insert(label.clone(), plan.ingest_bytes);
        eprintln!("{label}: {} bytes of ingest JSON; parsing", plan.ingest_bytes);
        let parsed: ParseResult = worker::spawn(&Task::Parse {
            body: plan.ingest(),
            reps: opts.ingest_runs.max(3),
        })?;
        floors.push((
            format!("{label}/parse_ingest_json"),
            median(&mut parsed.typed_ms.clone()),
        ));
        floors.push((
            format!("{label}/parse_ingest_json_value"),
            median(&mut parsed.value_ms.clone()),
        ));
        for cache in &caches {
            let run = measure_cache(opts, cache, label, &plan, &work)?;
            check_run(cache, &run, &expected, &plan)?;
            runs.insert((label.clone(), cache.name().to_owned()), run);
        }
        check_between_caches(label, &caches, &runs)?;
        if let Some(expected) = &http_expected {
            let h = opts.http.as_ref().map_or_else(
                || HttpOptions {
                    label: label.clone(),
                    seconds: 1.0,
                    clients: vec![1],
                },
                Clone::clone,
            );
            let ours = runs
                .get(&(label.clone(), "ours".to_owned()))
                .cloned()
                .unwrap_or_default();
            let http = measure_http(opts, &h, &plan, expected, &ours.suite, &work)?;
            http_runs.insert(label.clone(), http);
        }
        if !opts.keep {
            remove_dir(&work)?;
        }
    }
    let mut reports = Vec::new();
    for (store, ours) in [("sled", "ours"), ("postgres", "ours-pg")] {
        if !caches.iter().any(|c| c.name() == ours) {
            continue;
        }
        let mut report = Report::new(machine.clone());
        report.durability.insert(
            ours.to_owned(),
            if store == "sled" {
                OURS_DURABILITY
            } else {
                OURS_PG_DURABILITY
            }
            .to_owned(),
        );
        for d in [Durability::Full, Durability::Normal] {
            report.durability.insert(
                CacheKind::Sqlite { durability: d }.name().to_owned(),
                d.survives().to_owned(),
            );
        }
        for (name, ms) in &floors {
            report.add_floor(name, *ms);
        }
        for (label, _) in &opts.sizes {
            add_label(&mut report, label, ours, &runs, body_bytes.get(label).copied());
            if store == "sled" {
                if let Some(http) = http_runs.get(label) {
                    for (op, figures) in &http.figures {
                        report.add_http(&format!("{label}/{op}"), figures.clone());
                    }
                    for (key, m) in &http.memory {
                        report.memory.insert(format!("{label}/{key}"), m.clone());
                    }
                }
            }
        }
        report.finish(opts.large.as_deref());
        reports.push((store.to_owned(), report));
    }
    Ok(reports)
}

/// Every worker of one cache on one workload: the ingests (each a fresh process), the suite,
/// the first open after it and the cold starts, the growth, the reads during writes.
fn measure_cache(
    opts: &Options,
    cache: &CacheKind,
    label: &str,
    plan: &Plan,
    work: &Path,
) -> Result<CacheRun, BenchError> {
    let name = cache.name();
    let base = work.join(name);
    let mut run = CacheRun::default();
    eprintln!(
        "{label}: {name}: {} ingests, each in a fresh process",
        opts.ingest_runs.max(1)
    );
    let mut dir = base.join("ingest-0");
    for i in 0..opts.ingest_runs.max(1) {
        if i > 0 {
            remove_dir(&dir)?;
        }
        dir = base.join(format!("ingest-{i}"));
        run.ingests.push(worker::spawn(&Task::Ingest {
            cache: cache.clone(),
            dir: dir.clone(),
            body: plan.ingest(),
        })?);
    }
    eprintln!("{label}: {name}: queries, syncs, changes, merges, rebuild");
    run.suite = worker::spawn(&Task::Suite {
        cache: cache.clone(),
        dir: dir.clone(),
        plan: Plan::file(&plan.dir),
    })?;
    let cold = Task::Cold {
        cache: cache.clone(),
        dir: dir.clone(),
        user: plan.user.clone(),
    };
    eprintln!(
        "{label}: {name}: the first open after the run, then {} cold starts",
        plan.reps.cold_reps.max(1)
    );
    run.cold_first = Some(worker::spawn(&cold)?);
    for _ in 0..plan.reps.cold_reps.max(1) {
        run.cold.push(worker::spawn(&cold)?);
    }
    if let Some(g) = &plan.growth {
        eprintln!("{label}: {name}: growth, {} merges of one like", g.count);
        run.growth = Some(worker::spawn(&Task::Growth {
            cache: cache.clone(),
            dir: dir.clone(),
            plan: Plan::file(&plan.dir),
        })?);
        eprintln!("{label}: {name}: the first open after the growth merges");
        run.cold_after_growth = Some(worker::spawn(&cold)?);
    }
    if !opts.keep {
        remove_dir(&base)?;
    }
    if opts.concurrent.as_deref() == Some(label) {
        eprintln!("{label}: {name}: reads of another user during a large ingest, a sync and a rebuild");
        let dir = base.join("concurrent");
        run.concurrent = Some(worker::spawn(&Task::Concurrent {
            cache: cache.clone(),
            dir: dir.clone(),
            plan: Plan::file(&plan.dir),
        })?);
        if !opts.keep {
            remove_dir(&base)?;
        }
    }
    Ok(run)
}

/// The answers one cache gave that the workload determines.
fn check_run(cache: &CacheKind, run: &CacheRun, expected: &Expected, plan: &Plan) -> Result<(), BenchError> {
    let name = cache.name();
    let bad = worker::disagreements(&run.suite.checks, &expected.checks);
    if let Some((check, got, want)) = bad.first() {
        return Err(wrong(
            name,
            check,
            format!("digest {got} instead of {want} ({} checks differ)", bad.len()),
        ));
    }
    for must in [
        "liked/after_ingest",
        "liked/after_merges",
        "playlists",
        "plays/all",
        "tracks/first_page",
    ] {
        if !run.suite.checks.contains_key(must) {
            return Err(wrong(name, must, "the suite did not check it".to_owned()));
        }
    }
    let after = expected.checks.get("liked/after_merges");
    for c in run.cold_first.iter().chain(&run.cold) {
        if Some(&c.answer) != after {
            return Err(wrong(
                name,
                "cold start",
                "the first _getLiked differs from the list after the run".to_owned(),
            ));
        }
    }
    if let Some(g) = &run.growth {
        if Some(&g.liked) != expected.checks.get("liked/after_growth") {
            return Err(wrong(
                name,
                "growth",
                "the liked list after the merges is not the one expected".to_owned(),
            ));
        }
        if g.times_ms.len() != plan.growth.as_ref().map_or(0, |s| s.count) {
            return Err(wrong(name, "growth", "not every merge ran".to_owned()));
        }
        if run.cold_after_growth.as_ref().map(|c| &c.answer) != Some(&g.liked) {
            return Err(wrong(
                name,
                "the first open after the growth merges",
                "its first _getLiked is not the list the merges left".to_owned(),
            ));
        }
    }
    Ok(())
}

/// The answers every cache must give alike: each ingest's, and every step's (in its normal form).
fn check_between_caches(
    label: &str,
    caches: &[CacheKind],
    runs: &BTreeMap<(String, String), CacheRun>,
) -> Result<(), BenchError> {
    let Some(first) = caches.first() else {
        return Ok(());
    };
    let Some(reference) = runs.get(&(label.to_owned(), first.name().to_owned())) else {
        return Ok(());
    };
    for cache in caches {
        let Some(run) = runs.get(&(label.to_owned(), cache.name().to_owned())) else {
            continue;
        };
        for ingest in &run.ingests {
            if reference.ingests.first().map(|i| &i.answer) != Some(&ingest.answer) {
                return Err(wrong(
                    cache.name(),
                    "ingest",
                    format!("its answer differs from {}'s", first.name()),
                ));
            }
        }
        for (step, mine) in &run.suite.steps {
            let Some(theirs) = reference.suite.steps.get(step) else {
                continue;
            };
            if !mine.digest.is_empty() && mine.digest != theirs.digest {
                return Err(wrong(
                    cache.name(),
                    step,
                    format!("its answers differ from {}'s", first.name()),
                ));
            }
        }
    }
    Ok(())
}

/// The expected answers of the HTTP measurements.
fn http_expected(w: &Workload, plan: &Plan) -> Result<HttpExpected, BenchError> {
    let original = w.expected_liked();
    let fresh = FreshLikes::of(w);
    let mut added: Vec<usize> = plan
        .merges
        .iter()
        .flat_map(|m| m.first_like..m.first_like + m.likes_each * m.count)
        .collect();
    if let Some(l) = &plan.like_requests {
        added.extend(l.first_like..l.first_like + l.count);
    }
    let after = fresh.expected_after(added, &original);
    Ok(HttpExpected {
        liked: Bytes::from(answers::liked_answer(&original)?),
        playlists: w
            .playlists
            .iter()
            .map(|p| Ok((p.id.clone(), Bytes::from(answers::playlist_answer(p)?))))
            .collect::<Result<_, BenchError>>()?,
        liked_request: Bytes::from(answers::liked_request_answer(&plan.user, &original)?),
        liked_after: Digest::of(&answers::liked_answer(&after)?),
    })
}

/// How long the server is left idle before its resident memory is read: a little longer than
/// the period at which it returns its free heap.
const IDLE_PAUSE: Duration = Duration::from_secs(librarycache::server::heap::TRIM_EVERY.as_secs() + 2);

/// LibraryCache served in a worker process: the ingest, the queries at each concurrency, the
/// writes one at a time; the server process's memory during the ingest and while serving.
fn measure_http(
    opts: &Options,
    h: &HttpOptions,
    plan: &Plan,
    expected: &HttpExpected,
    in_process: &SuiteResult,
    work: &Path,
) -> Result<HttpRun, BenchError> {
    let label = &h.label;
    eprintln!("{label}: LibraryCache over HTTP (its server in a process of its own)");
    let ours = CacheKind::Ours {
        syncs: opts.syncs.clone(),
        postgres: None,
    };
    let dir = work.join("http");
    let mut served = Served::start(&ours, &dir)?;
    let outcome = (|| -> Result<HttpRun, BenchError> {
        let client = Client::new(served.addr, h.clients.iter().copied().max().unwrap_or(1))?;
        let mut out = HttpRun::default();
        let ingest = read_body(&plan.ingest())?;
        let before = served.reset_peak()?;
        let (times, answers) = client.sequence(&[Request {
            path: "/LibraryCache/ingest".into(),
            body: ingest.clone(),
            expected: None,
        }])?;
        let after = served.memory()?;
        out.figures
            .push(("ingest".into(), http::sequential_figures(&times, bytes_of(&answers))));
        out.memory.push((
            "ingest_over_http".into(),
            memory_figures(
                "the server's process (the real router, in a worker of its own): one ingest over HTTP",
                Some(ingest.len() as u64),
                before,
                after,
            ),
        ));
        let user = crate::cache::user_body(&plan.user);
        let queries: Vec<(&str, Vec<Request>)> = vec![
            (
                "get_liked",
                vec![Request {
                    path: "/LibraryCache/_getLiked".into(),
                    body: user.clone(),
                    expected: Some(expected.liked.clone()),
                }],
            ),
            (
                "get_playlist",
                expected
                    .playlists
                    .iter()
                    .map(|(id, answer)| Request {
                        path: "/LibraryCache/_getPlaylist".into(),
                        body: Bytes::from(serde_json::json!({ "playlistId": id }).to_string()),
                        expected: Some(answer.clone()),
                    })
                    .collect(),
            ),
            (
                "liked_request",
                vec![Request {
                    path: "/liked".into(),
                    body: user.clone(),
                    expected: Some(expected.liked_request.clone()),
                }],
            ),
        ];
        let before = served.reset_peak()?;
        for (op, requests) in &queries {
            for &clients in &h.clients {
                eprintln!("{label}: over HTTP: {op} from {clients} clients");
                let figures = client.load(requests, clients, Duration::from_secs_f64(h.seconds))?;
                out.figures.push(((*op).to_owned(), figures));
            }
        }
        let after = served.memory()?;
        let mut serving = memory_figures(
            "the server's process while it answered the HTTP queries above; then resident after an idle pause",
            None,
            before,
            after,
        );
        // Idle for longer than the server's heap trim period, then read what stays resident.
        std::thread::sleep(IDLE_PAUSE);
        if let Some(idle) = served.memory()?.rss_bytes {
            serving.idle_bytes.insert("ours".into(), idle);
        }
        out.memory.push(("serving_over_http".into(), serving));
        eprintln!("{label}: over HTTP: syncs and merges, one at a time");
        let k = plan.k;
        let reps = plan.reps.sync_reps.max(1);
        let post = |path: &str, body: &Bytes| Request {
            path: path.to_owned(),
            body: body.clone(),
            expected: None,
        };
        let sync = "/LibraryCache/sync";
        let changed = read_body(&plan.sync_changed())?;
        let likes_only = read_body(&plan.likes_only())?;
        let likes_only_changed = read_body(&plan.likes_only_changed())?;
        let mut writes: Vec<(String, Vec<Request>)> = vec![
            (
                "sync_unchanged".into(),
                (0..reps).map(|_| post(sync, &ingest)).collect(),
            ),
            (
                format!("sync_full_{k}_likes_changed"),
                (0..reps)
                    .flat_map(|_| [post(sync, &changed), post(sync, &ingest)])
                    .collect(),
            ),
            (
                format!("sync_likes_only_{k}_changed"),
                (0..reps)
                    .flat_map(|_| [post(sync, &likes_only_changed), post(sync, &likes_only)])
                    .collect(),
            ),
        ];
        for m in &plan.merges {
            let bodies = read_lines(&m.file)?;
            writes.push((
                m.name.clone(),
                bodies.iter().map(|b| post("/LibraryCache/merge", b)).collect(),
            ));
        }
        for (op, requests) in &writes {
            let (times, answers) = client.sequence(requests)?;
            let mut digest = Digest::default();
            for a in &answers {
                digest.add(&normal_form(Form::Write, a)?);
            }
            if in_process.steps.get(op).map(|s| &s.digest) != Some(&digest.hex()) {
                return Err(wrong(
                    "ours over HTTP",
                    op,
                    "its answers differ from the same writes in-process".to_owned(),
                ));
            }
            out.figures
                .push((op.clone(), http::sequential_figures(&times, bytes_of(&answers))));
        }
        if let Some(l) = &plan.like_requests {
            let requests: Vec<Request> = read_lines(&l.file)?.iter().map(|b| post("/like", b)).collect();
            let (times, answers) = client.sequence(&requests)?;
            for a in &answers {
                if crate::cache::number(a, "added")? != 1 {
                    return Err(wrong("ours over HTTP", "/api/like", "a like was not added".to_owned()));
                }
            }
            out.figures.push((
                "like_request".into(),
                http::sequential_figures(&times, bytes_of(&answers)),
            ));
        }
        let liked = client.send("/LibraryCache/_getLiked", &user)?;
        if Digest::of(&liked) != expected.liked_after {
            return Err(wrong(
                "ours over HTTP",
                "_getLiked after the writes",
                "not the list the writes make".to_owned(),
            ));
        }
        Ok(out)
    })();
    let stopped = served.stop();
    let out = outcome?;
    stopped?;
    if !opts.keep {
        remove_dir(&dir)?;
    }
    Ok(out)
}

fn bytes_of(answers: &[Bytes]) -> u64 {
    answers.iter().map(|a| a.len() as u64).sum()
}

fn memory_figures(
    what: &str,
    body: Option<u64>,
    before: crate::memory::Memory,
    after: crate::memory::Memory,
) -> MemoryFigures {
    let mut m = MemoryFigures {
        what: what.to_owned(),
        body_bytes: body,
        ..MemoryFigures::default()
    };
    if let Some(b) = before.rss_bytes {
        m.before_bytes.insert("ours".into(), b);
    }
    if let Some(p) = after.peak_bytes {
        m.peak_bytes.insert("ours".into(), p);
    }
    m
}

/// Adds one workload's figures to a report whose LibraryCache is the cache named `ours`.
fn add_label(
    report: &mut Report,
    label: &str,
    ours: &str,
    runs: &BTreeMap<(String, String), CacheRun>,
    body: Option<u64>,
) {
    let sides = [
        (ours, Side::Ours),
        (BASELINE, Side::Baseline),
        (BASELINE_NORMAL, Side::BaselineNormal),
    ];
    let mut disk_ingest = DiskSize::default();
    let mut disk_run = DiskSize::default();
    let mut ingest_memory = MemoryFigures {
        what: "a fresh process: the body read, then one ingest (in-process); the highest peak of the runs".into(),
        body_bytes: body,
        ..MemoryFigures::default()
    };
    let mut query_memory = MemoryFigures {
        what: "the suite's process while it answered the queries (in-process)".into(),
        ..MemoryFigures::default()
    };
    let mut cold_memory = MemoryFigures {
        what: "a fresh process: open, then the first _getLiked".into(),
        ..MemoryFigures::default()
    };
    for (name, side) in sides {
        let Some(run) = runs.get(&(label.to_owned(), name.to_owned())) else {
            continue;
        };
        let times: Vec<f64> = run.ingests.iter().map(|i| i.ms).collect();
        report.add_times(&format!("{label}/ingest"), side, &times);
        for (step, s) in &run.suite.steps {
            report.add_times(&format!("{label}/{step}"), side, &s.times_ms);
        }
        if let Some(c) = &run.cold_first {
            report.add_times(&format!("{label}/cold_first_open_after_run"), side, &[c.ms]);
        }
        if let Some(c) = &run.cold_after_growth {
            report.add_times(&format!("{label}/cold_first_open_after_growth"), side, &[c.ms]);
        }
        let cold: Vec<f64> = run.cold.iter().map(|c| c.ms).collect();
        report.add_times(&format!("{label}/cold_open_get_liked"), side, &cold);
        let (after_ingest, after_run) = (Some(run.suite.bytes_after_ingest), Some(run.suite.bytes_at_end));
        match side {
            Side::Ours => {
                disk_ingest.ours = after_ingest;
                disk_run.ours = after_run;
            }
            Side::Baseline => {
                disk_ingest.baseline = after_ingest;
                disk_run.baseline = after_run;
            }
            Side::BaselineNormal => {
                disk_ingest.baseline_normal = after_ingest;
                disk_run.baseline_normal = after_run;
            }
        }
        if let (Some(events), Some(step), Side::Ours) = (run.suite.rebuild_events, run.suite.steps.get("rebuild"), side)
        {
            let ms = median(&mut step.times_ms.clone());
            report.rebuild.insert(
                label.to_owned(),
                RebuildFigures {
                    events,
                    ms,
                    events_per_second: if ms > 0.0 { events as f64 / (ms / 1_000.0) } else { 0.0 },
                },
            );
        }
        if let Some(i) = run.ingests.iter().max_by_key(|i| i.after.peak_bytes.unwrap_or(0)) {
            if let (Some(b), Some(p)) = (i.before.rss_bytes, i.after.peak_bytes) {
                ingest_memory.before_bytes.insert(name.to_owned(), b);
                ingest_memory.peak_bytes.insert(name.to_owned(), p);
            }
        }
        if let (Some(b), Some(p)) = (run.suite.serving_before.rss_bytes, run.suite.serving.peak_bytes) {
            query_memory.before_bytes.insert(name.to_owned(), b);
            query_memory.peak_bytes.insert(name.to_owned(), p);
        }
        if let Some(p) = run.cold.iter().filter_map(|c| c.memory.peak_bytes).max() {
            cold_memory.peak_bytes.insert(name.to_owned(), p);
        }
        if let Some(g) = &run.growth {
            let n = g.times_ms.len();
            let window = (n / 5).clamp(1, 500).min(n.max(1));
            let figures = GrowthFigures {
                merges: n,
                window,
                first: Summary::of(&g.times_ms[..window.min(n)]),
                last: Summary::of(&g.times_ms[n.saturating_sub(window)..]),
                all: Summary::of(&g.times_ms),
                bytes_before: g.bytes_before,
                bytes_after: g.bytes_after,
            };
            report
                .growth
                .entry(label.to_owned())
                .or_default()
                .insert(name.to_owned(), figures);
        }
        if let Some(phases) = &run.concurrent {
            for p in phases {
                report
                    .reads_during_write
                    .entry(format!("{label}/{}", p.name))
                    .or_default()
                    .insert(
                        name.to_owned(),
                        ReadsDuringWrite {
                            write_ms: p.write_ms,
                            reads: p.reads_ms.iter().map(|(q, t)| (q.clone(), Summary::of(t))).collect(),
                        },
                    );
            }
        }
    }
    disk_ingest.ratio = ratio(disk_ingest.ours, disk_ingest.baseline);
    disk_run.ratio = ratio(disk_run.ours, disk_run.baseline);
    report
        .bytes_on_disk
        .insert(format!("{label}/after_ingest"), disk_ingest);
    report.bytes_on_disk.insert(format!("{label}/after_run"), disk_run);
    report.memory.insert(format!("{label}/ingest"), ingest_memory);
    report.memory.insert(format!("{label}/queries"), query_memory);
    report.memory.insert(format!("{label}/cold_start"), cold_memory);
}

fn ratio(a: Option<u64>, b: Option<u64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0 => Some(a as f64 / b as f64),
        _ => None,
    }
}
