//! The report: each operation's timings on each cache paired by name (LibraryCache against SQLite
//! with `synchronous=FULL`, SQLite `NORMAL` beside them), with the HTTP figures beside the same
//! operation; the parse floors, sizes on disk, the rebuild, memory, reads during big writes and
//! growth; and every target of the storage issue (issue 16) with met or missed. Printed as
//! plain-text tables and written as JSON (`target/bench-report.json`), whose
//! `operations.{size/op}.{ours_ms, baseline_ms, ratio}` keep the shape earlier reports had.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::BenchError;
use crate::http::HttpFigures;
use crate::machine::Machine;
use crate::stats::Summary;

/// The name of LibraryCache on sled in measurements; `ours-pg` on PostgreSQL.
pub const OURS: &str = "ours";
/// The baseline the ratios are taken against.
pub const BASELINE: &str = "sqlite-full";
/// The baseline reported beside it.
pub const BASELINE_NORMAL: &str = "sqlite-normal";

/// One figure per side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Sides<T> {
    pub ours: Option<T>,
    pub baseline: Option<T>,
    pub baseline_normal: Option<T>,
}

/// One operation. `ours_ms` and `baseline_ms` are medians (p50); `ratio` is `ours_ms /
/// baseline_ms` (below 1: ours is faster), against SQLite FULL; `ratio_normal` against SQLite
/// NORMAL. `http` holds the same operation over HTTP (LibraryCache only), keyed by the number of
/// concurrent clients (`clients_1`, `clients_16`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub ours_ms: Option<f64>,
    pub baseline_ms: Option<f64>,
    pub ratio: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_normal_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_normal: Option<f64>,
    /// The 99th percentile (nearest rank; with fewer than 100 runs, the slowest run).
    pub p99_ms: Sides<f64>,
    /// How many runs each side's figures come from.
    pub samples: Sides<usize>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub http: BTreeMap<String, HttpFigures>,
}

/// Bytes on disk for both sides (`ratio` is ours / SQLite FULL).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DiskSize {
    pub ours: Option<u64>,
    pub baseline: Option<u64>,
    pub baseline_normal: Option<u64>,
    pub ratio: Option<f64>,
}

/// An ingest's time as a multiple of parsing its JSON into the typed input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestVsParse {
    pub parse_ms: f64,
    pub ours: Option<f64>,
    pub baseline: Option<f64>,
}

/// A projection rebuild: events replayed, time, rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RebuildFigures {
    pub events: u64,
    pub ms: f64,
    pub events_per_second: f64,
}

/// Peak resident memory of a cache's process during a stretch of work.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemoryFigures {
    /// What the stretch is (e.g. "a fresh process: body read, then one ingest").
    pub what: String,
    /// The request body's size, where the stretch is an ingest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_bytes: Option<u64>,
    /// Resident before the stretch, by cache.
    pub before_bytes: BTreeMap<String, u64>,
    /// The peak during it, by cache.
    pub peak_bytes: BTreeMap<String, u64>,
    /// Resident after it and an idle pause (longer than the server's heap trim period), by cache.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub idle_bytes: BTreeMap<String, u64>,
}

/// The reads of one phase of the reads-during-writes measurement, on one cache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadsDuringWrite {
    /// How long the write took (0 for the stretch without writes).
    pub write_ms: f64,
    /// Latency of the reads that started during it, by query.
    pub reads: BTreeMap<String, Summary>,
}

/// Growth: merge latency at the start and at the end of a long series of single-like merges, and
/// the disk before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrowthFigures {
    pub merges: usize,
    /// The first and the last `window` merges.
    pub window: usize,
    pub first: Summary,
    pub last: Summary,
    pub all: Summary,
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// One of the storage issue's targets (reported, never asserted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    /// What is measured, e.g. `large/merge_10_likes ours/sqlite`.
    pub measure: String,
    /// The bound, e.g. `<= 1 x SQLite FULL`.
    pub target: String,
    pub value: f64,
    pub limit: f64,
    pub met: bool,
}

/// When and how the run was made.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// RFC 3339, UTC.
    pub started: String,
    pub command: String,
    pub seconds: f64,
    /// The 1-minute load average at the end (the machine's records the start).
    pub load_average_end: Option<f64>,
}

/// The whole report, as written to JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub machine: Machine,
    pub run: RunInfo,
    /// What an acknowledged write survives, by cache.
    pub durability: BTreeMap<String, String>,
    pub operations: BTreeMap<String, Comparison>,
    /// Costs that bound every cache from below, e.g. `large/parse_ingest_json`.
    pub floors_ms: BTreeMap<String, f64>,
    /// Per workload label: ingest time / typed parse time, for both sides.
    pub ingest_vs_parse: BTreeMap<String, IngestVsParse>,
    /// Keyed `<label>/after_ingest` and `<label>/after_run`.
    pub bytes_on_disk: BTreeMap<String, DiskSize>,
    /// Per workload label (LibraryCache).
    pub rebuild: BTreeMap<String, RebuildFigures>,
    /// Keyed `<label>/<stretch>`.
    pub memory: BTreeMap<String, MemoryFigures>,
    /// Keyed `<label>/<write>` (`idle`, `ingest`, `sync`, `rebuild`), then by cache.
    pub reads_during_write: BTreeMap<String, BTreeMap<String, ReadsDuringWrite>>,
    /// Per workload label, by cache.
    pub growth: BTreeMap<String, BTreeMap<String, GrowthFigures>>,
    pub targets: Vec<Target>,
}

/// The storage issue's absolute targets.
const GET_LIKED_25K_TARGET_MS: f64 = 1.0;
const COLD_START_TARGET_MS: f64 = 50.0;
const INGEST_OVER_PARSE_TARGET: f64 = 3.0;
const DISK_OVER_SQLITE_TARGET: f64 = 1.5;
const INGEST_PEAK_OVER_BODY_TARGET: f64 = 5.0;

impl Report {
    /// An empty report.
    pub fn new(machine: Machine) -> Report {
        Report {
            machine,
            run: RunInfo::default(),
            durability: BTreeMap::new(),
            operations: BTreeMap::new(),
            floors_ms: BTreeMap::new(),
            ingest_vs_parse: BTreeMap::new(),
            bytes_on_disk: BTreeMap::new(),
            rebuild: BTreeMap::new(),
            memory: BTreeMap::new(),
            reads_during_write: BTreeMap::new(),
            growth: BTreeMap::new(),
            targets: Vec::new(),
        }
    }

    /// Records the timings of `operation` on one side (`side` is [`OURS`]-like, [`BASELINE`] or
    /// [`BASELINE_NORMAL`]).
    pub fn add_times(&mut self, operation: &str, side: Side, times: &[f64]) {
        if times.is_empty() {
            return;
        }
        let s = Summary::of(times);
        let c = self.operations.entry(operation.to_owned()).or_default();
        match side {
            Side::Ours => {
                c.ours_ms = Some(s.p50);
                c.p99_ms.ours = Some(s.p99);
                c.samples.ours = Some(s.n);
            }
            Side::Baseline => {
                c.baseline_ms = Some(s.p50);
                c.p99_ms.baseline = Some(s.p99);
                c.samples.baseline = Some(s.n);
            }
            Side::BaselineNormal => {
                c.baseline_normal_ms = Some(s.p50);
                c.p99_ms.baseline_normal = Some(s.p99);
                c.samples.baseline_normal = Some(s.n);
            }
        }
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        };
        c.ratio = ratio(c.ours_ms, c.baseline_ms);
        c.ratio_normal = ratio(c.ours_ms, c.baseline_normal_ms);
    }

    /// Records a floor measurement (e.g. parse-only time).
    pub fn add_floor(&mut self, name: &str, ms: f64) {
        self.floors_ms.insert(name.to_owned(), ms);
    }

    /// Records an HTTP measurement beside the in-process operation `operation`.
    pub fn add_http(&mut self, operation: &str, figures: HttpFigures) {
        self.operations
            .entry(operation.to_owned())
            .or_default()
            .http
            .insert(format!("clients_{}", figures.clients), figures);
    }

    /// Derives the ingest/parse ratios and checks the storage issue's targets; call once
    /// everything is added. `large` is the label of the large library, if it ran.
    pub fn finish(&mut self, large: Option<&str>) {
        self.ingest_vs_parse.clear();
        for (name, &parse_ms) in &self.floors_ms {
            let Some(label) = name.strip_suffix("/parse_ingest_json") else {
                continue;
            };
            let ingest = self.operations.get(&format!("{label}/ingest"));
            let over = |ms: Option<f64>| ms.filter(|_| parse_ms > 0.0).map(|ms| ms / parse_ms);
            self.ingest_vs_parse.insert(
                label.to_owned(),
                IngestVsParse {
                    parse_ms,
                    ours: over(ingest.and_then(|c| c.ours_ms)),
                    baseline: over(ingest.and_then(|c| c.baseline_ms)),
                },
            );
        }
        let mut targets = Vec::new();
        let mut at_most = |measure: String, target: &str, value: Option<f64>, limit: f64| {
            if let Some(value) = value {
                targets.push(Target {
                    measure,
                    target: target.to_owned(),
                    value,
                    limit,
                    met: value <= limit,
                });
            }
        };
        for (name, c) in &self.operations {
            at_most(
                format!("{name} ours/sqlite"),
                "every operation <= 1.0 x SQLite FULL",
                c.ratio,
                1.0,
            );
        }
        for (name, c) in &self.operations {
            if name
                .rsplit('/')
                .next()
                .is_some_and(|op| op.starts_with("merge_") && op.ends_with("_likes"))
            {
                at_most(
                    format!("{name} ours/sqlite"),
                    "merge of 10 likes <= SQLite FULL",
                    c.ratio,
                    1.0,
                );
            }
        }
        for (label, r) in &self.ingest_vs_parse {
            if Some(label.as_str()) == large {
                at_most(
                    format!("{label}/ingest ours / typed parse"),
                    "ingest <= 3 x the typed parse",
                    r.ours,
                    INGEST_OVER_PARSE_TARGET,
                );
            }
        }
        for (label, r) in &self.rebuild {
            let ingest = self
                .operations
                .get(&format!("{label}/ingest"))
                .and_then(|c| c.baseline_ms);
            at_most(
                format!("{label}/rebuild ours / sqlite ingest"),
                "rebuild <= SQLite FULL's ingest",
                ingest.filter(|i| *i > 0.0).map(|i| r.ms / i),
                1.0,
            );
        }
        if let Some(large) = large {
            let get = |op: &str| self.operations.get(&format!("{large}/{op}")).and_then(|c| c.ours_ms);
            at_most(
                format!("{large}/get_liked ours (25,000 ids)"),
                "_getLiked of 25k < 1 ms",
                get("get_liked"),
                GET_LIKED_25K_TARGET_MS,
            );
            for op in [
                "cold_first_open_after_run",
                "cold_first_open_after_growth",
                "cold_open_get_liked",
            ] {
                at_most(
                    format!("{large}/{op} ours"),
                    "cold start < 50 ms",
                    get(op),
                    COLD_START_TARGET_MS,
                );
            }
        }
        for (key, size) in &self.bytes_on_disk {
            if key.ends_with("/after_run") {
                at_most(
                    format!("{key} ours/sqlite"),
                    "disk <= 1.5 x SQLite",
                    size.ratio,
                    DISK_OVER_SQLITE_TARGET,
                );
            }
        }
        for (key, m) in &self.memory {
            let is_large_ingest = large.is_some_and(|l| key.starts_with(&format!("{l}/ingest")));
            if let (true, Some(body), Some(peak)) = (is_large_ingest, m.body_bytes, m.peak_bytes.get(OURS)) {
                at_most(
                    format!("{key} ours peak RSS / body"),
                    "peak RSS during the large ingest <= 5 x the body",
                    (body > 0).then(|| *peak as f64 / body as f64),
                    INGEST_PEAK_OVER_BODY_TARGET,
                );
            }
        }
        self.targets = targets;
    }

    /// Writes the report as pretty JSON, creating the parent directory if needed.
    pub fn write(&self, path: &Path) -> Result<(), BenchError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(BenchError::io("create directory", dir))?;
        }
        let mut json = serde_json::to_vec_pretty(self)?;
        json.push(b'\n');
        std::fs::write(path, json).map_err(BenchError::io("write", path))
    }

    /// The report as plain-text tables for the terminal.
    pub fn table(&self) -> String {
        let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), fmt_ms);
        let ratio = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}"));
        let width = self.operations.keys().map(String::len).max().unwrap_or(9).max(24);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<width$}  {:>10} {:>10}  {:>10} {:>10}  {:>7}  {:>10} {:>7}  {:>5}",
            "operation (ms)", "ours p50", "ours p99", "FULL p50", "FULL p99", "ratio", "NORMAL p50", "ratio", "runs"
        );
        for (name, c) in &self.operations {
            if c.ours_ms.is_none() && c.baseline_ms.is_none() && c.baseline_normal_ms.is_none() {
                continue;
            }
            let _ = writeln!(
                out,
                "{name:<width$}  {:>10} {:>10}  {:>10} {:>10}  {:>7}  {:>10} {:>7}  {:>5}",
                ms(c.ours_ms),
                ms(c.p99_ms.ours),
                ms(c.baseline_ms),
                ms(c.p99_ms.baseline),
                ratio(c.ratio),
                ms(c.baseline_normal_ms),
                ratio(c.ratio_normal),
                c.samples.ours.or(c.samples.baseline).unwrap_or(0),
            );
        }
        for (name, v) in &self.floors_ms {
            let _ = writeln!(out, "{name:<width$}  {:>10} (floor)", fmt_ms(*v));
        }
        for (label, r) in &self.ingest_vs_parse {
            let x = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}x"));
            let _ = writeln!(
                out,
                "{:<width$}  {:>10}             {:>10}",
                format!("{label}/ingest / typed parse"),
                x(r.ours),
                x(r.baseline)
            );
        }
        let mb = |b: Option<u64>| b.map_or_else(|| "-".to_owned(), |b| format!("{:.1} MB", b as f64 / 1e6));
        let _ = writeln!(
            out,
            "\n{:<width$}  {:>10}  {:>10}  {:>10}  {:>7}",
            "bytes on disk", "ours", "FULL", "NORMAL", "ratio"
        );
        for (key, size) in &self.bytes_on_disk {
            let _ = writeln!(
                out,
                "{key:<width$}  {:>10}  {:>10}  {:>10}  {:>7}",
                mb(size.ours),
                mb(size.baseline),
                mb(size.baseline_normal),
                ratio(size.ratio)
            );
        }
        for (label, r) in &self.rebuild {
            let _ = writeln!(
                out,
                "{label}/rebuild: {} events in {:.1} ms = {:.0} events/s",
                r.events, r.ms, r.events_per_second
            );
        }
        if !self.memory.is_empty() {
            let _ = writeln!(out, "\npeak resident memory (MB)");
            for (key, m) in &self.memory {
                let peaks: Vec<String> = m
                    .peak_bytes
                    .iter()
                    .map(|(cache, b)| {
                        let before = m.before_bytes.get(cache).map_or(0, |b| *b);
                        let idle = m
                            .idle_bytes
                            .get(cache)
                            .map_or_else(String::new, |i| format!(", {:.0} after idling", *i as f64 / 1e6));
                        format!("{cache} {:.0} (from {:.0}{idle})", *b as f64 / 1e6, before as f64 / 1e6)
                    })
                    .collect();
                let body = m
                    .body_bytes
                    .map_or_else(String::new, |b| format!(" [body {:.1} MB]", b as f64 / 1e6));
                let _ = writeln!(out, "  {key}: {}{body}", peaks.join(", "));
            }
        }
        if !self.reads_during_write.is_empty() {
            let _ = writeln!(
                out,
                "\nreads of another user during a write (ms): p50 / p99 / max (reads)"
            );
            for (key, caches) in &self.reads_during_write {
                for (cache, r) in caches {
                    let reads: Vec<String> = r
                        .reads
                        .iter()
                        .map(|(q, s)| {
                            format!(
                                "{q} {} / {} / {} ({})",
                                fmt_ms(s.p50),
                                fmt_ms(s.p99),
                                fmt_ms(s.max),
                                s.n
                            )
                        })
                        .collect();
                    let _ = writeln!(
                        out,
                        "  {key:<16} {cache:<13} write {:>9}  {}",
                        fmt_ms(r.write_ms),
                        reads.join("; ")
                    );
                }
            }
        }
        if !self.growth.is_empty() {
            let _ = writeln!(
                out,
                "\ngrowth: single-like merges, p50 / p99 (ms) of the first and last window, disk"
            );
            for (label, caches) in &self.growth {
                for (cache, g) in caches {
                    let _ = writeln!(
                        out,
                        "  {label} {cache:<13} {} merges: first {} / {}, last {} / {}; {} -> {}",
                        g.merges,
                        fmt_ms(g.first.p50),
                        fmt_ms(g.first.p99),
                        fmt_ms(g.last.p50),
                        fmt_ms(g.last.p99),
                        mb(Some(g.bytes_before)),
                        mb(Some(g.bytes_after))
                    );
                }
            }
        }
        let http: Vec<(&String, &HttpFigures)> = self
            .operations
            .iter()
            .flat_map(|(name, c)| c.http.values().map(move |f| (name, f)))
            .collect();
        if !http.is_empty() {
            let _ = writeln!(
                out,
                "\n{:<width$}  {:>7}  {:>9}  {:>9}  {:>9}  {:>9}  {:>10}",
                "over HTTP (ours)", "clients", "req/s", "p50 ms", "p99 ms", "max ms", "bytes"
            );
            for (name, f) in http {
                let _ = writeln!(
                    out,
                    "{name:<width$}  {:>7}  {:>9.0}  {:>9}  {:>9}  {:>9}  {:>10}",
                    f.clients,
                    f.requests_per_second,
                    fmt_ms(f.p50_ms),
                    fmt_ms(f.p99_ms),
                    fmt_ms(f.max_ms),
                    f.response_bytes
                );
            }
        }
        if !self.targets.is_empty() {
            let _ = writeln!(out, "\ntargets (issue 16)");
            for t in &self.targets {
                let _ = writeln!(
                    out,
                    "  {} {:<w$}  {:>10.3}  ({})",
                    if t.met { "met   " } else { "MISSED" },
                    t.measure,
                    t.value,
                    t.target,
                    w = width + 24
                );
            }
        }
        out
    }
}

/// Which side a timing belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Ours,
    Baseline,
    BaselineNormal,
}

/// A time in ms with about three significant digits.
pub fn fmt_ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine() -> Machine {
        Machine {
            cpu: Some("cpu".to_owned()),
            cores: Some(2),
            memory_bytes: None,
            load_average_1m: None,
            os: "linux".to_owned(),
            arch: "x86_64".to_owned(),
        }
    }

    #[test]
    fn ratios_percentiles_and_targets_are_derived() {
        let mut report = Report::new(machine());
        report.add_times("large/ingest", Side::Baseline, &[1000.0, 1100.0, 900.0]);
        report.add_times("large/ingest", Side::Ours, &[400.0]);
        report.add_times("large/merge_10_likes", Side::Baseline, &[1.0]);
        report.add_times("large/merge_10_likes", Side::Ours, &[7.0, 9.0]);
        report.add_times("large/merge_10_likes", Side::BaselineNormal, &[0.5]);
        report.add_floor("large/parse_ingest_json", 100.0);
        report.rebuild.insert(
            "large".into(),
            RebuildFigures {
                events: 10,
                ms: 500.0,
                events_per_second: 20.0,
            },
        );
        report.finish(Some("large"));
        assert_eq!(report.ingest_vs_parse["large"].ours, Some(4.0));
        let merge = &report.operations["large/merge_10_likes"];
        assert_eq!(
            (merge.ours_ms, merge.p99_ms.ours, merge.samples.ours),
            (Some(8.0), Some(9.0), Some(2))
        );
        assert_eq!(merge.ratio_normal, Some(16.0));
        let met = |measure: &str, target: &str| {
            report
                .targets
                .iter()
                .find(|t| t.measure == measure && t.target.contains(target))
                .map(|t| t.met)
        };
        assert_eq!(met("large/ingest ours/sqlite", "every operation"), Some(true));
        assert_eq!(
            met("large/merge_10_likes ours/sqlite", "merge of 10 likes"),
            Some(false)
        );
        assert_eq!(met("large/ingest ours / typed parse", "typed parse"), Some(false));
        assert_eq!(met("large/rebuild ours / sqlite ingest", "rebuild"), Some(true));
        assert!(report.table().contains("MISSED"));
    }

    #[test]
    fn the_json_keeps_the_operations_shape() -> Result<(), serde_json::Error> {
        let mut report = Report::new(machine());
        report.add_times("small/ingest", Side::Baseline, &[2.0]);
        let json = serde_json::to_value(&report)?;
        let op = &json["operations"]["small/ingest"];
        assert_eq!(op["baseline_ms"], 2.0);
        assert!(op["ours_ms"].is_null() && op["ratio"].is_null());
        assert_eq!(op["p99_ms"]["baseline"], 2.0);
        assert_eq!(json["machine"]["cores"], 2);
        Ok(())
    }
}
