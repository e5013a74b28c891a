//! Pairs the "ours" and baseline measurements by operation, prints them as a table, and writes the JSON
//! report (`target/bench-report.json`): the machine, each operation's times and their ratio (with the HTTP
//! figures beside the queries), the parse floors and the ingest/parse ratios, the size of each cache on
//! disk, the rebuild rate, and the targets, each met or missed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::error::BenchError;
use crate::http::HttpFigures;
use crate::machine::Machine;
use crate::runner::{Measurement, Rebuild};

/// One operation's times. `ratio` is `ours_ms / baseline_ms` (below 1 means ours is faster); it is `None`
/// when either side was not measured. `http` holds the same query over HTTP on loopback, keyed by the
/// number of concurrent clients (`clients_1`, `clients_16`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub ours_ms: Option<f64>,
    pub baseline_ms: Option<f64>,
    pub ratio: Option<f64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub http: BTreeMap<String, HttpFigures>,
}

/// Bytes on disk for both sides (`ratio` is ours / baseline).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiskSize {
    pub ours: Option<u64>,
    pub baseline: Option<u64>,
    pub ratio: Option<f64>,
}

impl DiskSize {
    pub fn new(ours: Option<u64>, baseline: Option<u64>) -> DiskSize {
        let ratio = match (ours, baseline) {
            (Some(o), Some(b)) if b > 0 => Some(o as f64 / b as f64),
            _ => None,
        };
        DiskSize { ours, baseline, ratio }
    }
}

/// An ingest's time as a multiple of parsing its JSON into the typed input (the floor of that step).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IngestVsParse {
    pub parse_ms: f64,
    pub ours: Option<f64>,
    pub baseline: Option<f64>,
}

/// A projection rebuild: events replayed, time, rate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RebuildFigures {
    pub events: u64,
    pub ms: f64,
    pub events_per_second: f64,
}

/// One of the targets (reported, never asserted).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    /// What is measured, e.g. `large/merge_10_likes ours_ms`.
    pub measure: String,
    /// The bound, e.g. `<= 5 ms`.
    pub target: String,
    pub value: f64,
    pub limit: f64,
    pub met: bool,
}

/// The whole report, as written to JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub operations: BTreeMap<String, Comparison>,
    /// Costs that bound every cache from below, e.g. `large/parse_ingest_json`.
    pub floors_ms: BTreeMap<String, f64>,
    /// Per workload label: ingest time / typed parse time, for both sides.
    pub ingest_vs_parse: BTreeMap<String, IngestVsParse>,
    /// Keyed `<label>/after_ingest` and `<label>/after_run`.
    pub bytes_on_disk: BTreeMap<String, DiskSize>,
    /// Per workload label.
    pub rebuild: BTreeMap<String, RebuildFigures>,
    pub targets: Vec<Target>,
}

/// The absolute targets, in milliseconds.
const MERGE_TARGET_MS: f64 = 5.0;
const GET_LIKED_25K_TARGET_MS: f64 = 1.0;
const COLD_START_TARGET_MS: f64 = 50.0;
const INGEST_OVER_PARSE_TARGET: f64 = 3.0;

impl Report {
    /// Pairs the measurements by name (either side may be absent).
    pub fn new(machine: Machine, baseline: &[Measurement], ours: Option<&[Measurement]>) -> Report {
        let mut operations: BTreeMap<String, Comparison> = BTreeMap::new();
        let blank = Comparison {
            ours_ms: None,
            baseline_ms: None,
            ratio: None,
            http: BTreeMap::new(),
        };
        for m in baseline {
            operations
                .entry(m.name.clone())
                .or_insert_with(|| blank.clone())
                .baseline_ms = Some(m.ms);
        }
        for m in ours.unwrap_or_default() {
            operations
                .entry(m.name.clone())
                .or_insert_with(|| blank.clone())
                .ours_ms = Some(m.ms);
        }
        for c in operations.values_mut() {
            c.ratio = match (c.ours_ms, c.baseline_ms) {
                (Some(ours), Some(base)) if base > 0.0 => Some(ours / base),
                _ => None,
            };
        }
        Report {
            machine,
            operations,
            floors_ms: BTreeMap::new(),
            ingest_vs_parse: BTreeMap::new(),
            bytes_on_disk: BTreeMap::new(),
            rebuild: BTreeMap::new(),
            targets: Vec::new(),
        }
    }

    /// Records a floor measurement (e.g. parse-only time).
    pub fn add_floor(&mut self, m: &Measurement) {
        self.floors_ms.insert(m.name.clone(), m.ms);
    }

    /// Records the size of both sides' caches, e.g. under `large/after_ingest`.
    pub fn add_disk_size(&mut self, key: &str, size: DiskSize) {
        self.bytes_on_disk.insert(key.to_owned(), size);
    }

    /// Records an HTTP measurement beside the in-process operation `operation` (e.g. `large/get_liked`).
    pub fn add_http(&mut self, operation: &str, figures: HttpFigures) {
        let entry = self
            .operations
            .entry(operation.to_owned())
            .or_insert_with(|| Comparison {
                ours_ms: None,
                baseline_ms: None,
                ratio: None,
                http: BTreeMap::new(),
            });
        entry.http.insert(format!("clients_{}", figures.clients), figures);
    }

    /// Records the rebuild of the workload labelled `label`.
    pub fn add_rebuild(&mut self, label: &str, rebuild: &Rebuild) {
        self.rebuild.insert(
            label.to_owned(),
            RebuildFigures {
                events: rebuild.events,
                ms: rebuild.ms,
                events_per_second: rebuild.events_per_second(),
            },
        );
    }

    /// Derives the ingest/parse ratios and checks the targets; call once everything is added.
    /// `large_labels` are the labels whose workload is the large library (25,000 likes).
    pub fn finish(&mut self, large_labels: &[&str]) {
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
        let mut at_most = |measure: String, value: Option<f64>, limit: f64, unit: &str| {
            if let Some(value) = value {
                targets.push(Target {
                    measure,
                    target: format!("<= {limit} {unit}").trim_end().to_owned(),
                    value,
                    limit,
                    met: value <= limit,
                });
            }
        };
        for (name, c) in &self.operations {
            at_most(format!("{name} ours/sqlite"), c.ratio, 1.0, "");
        }
        for (name, c) in &self.operations {
            let op = name.rsplit('/').next().unwrap_or(name);
            let label = name.split('/').next().unwrap_or(name);
            if op.starts_with("merge_") {
                at_most(format!("{name} ours"), c.ours_ms, MERGE_TARGET_MS, "ms");
            }
            if op == "cold_open_get_liked" {
                at_most(format!("{name} ours"), c.ours_ms, COLD_START_TARGET_MS, "ms");
            }
            if op == "get_liked" && large_labels.contains(&label) {
                at_most(format!("{name} ours"), c.ours_ms, GET_LIKED_25K_TARGET_MS, "ms");
            }
        }
        for (label, r) in &self.ingest_vs_parse {
            if large_labels.contains(&label.as_str()) {
                at_most(
                    format!("{label}/ingest ours / parse"),
                    r.ours,
                    INGEST_OVER_PARSE_TARGET,
                    "x",
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
        let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"));
        let ratio = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}"));
        let width = self
            .operations
            .keys()
            .chain(self.floors_ms.keys())
            .chain(self.bytes_on_disk.keys())
            .map(String::len)
            .max()
            .unwrap_or(9)
            .max(9);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<width$}  {:>12}  {:>12}  {:>8}",
            "operation", "ours ms", "sqlite ms", "ours/sql"
        );
        for (name, c) in &self.operations {
            if c.ours_ms.is_none() && c.baseline_ms.is_none() {
                continue;
            }
            let _ = writeln!(
                out,
                "{name:<width$}  {:>12}  {:>12}  {:>8}",
                ms(c.ours_ms),
                ms(c.baseline_ms),
                ratio(c.ratio)
            );
        }
        for (name, v) in &self.floors_ms {
            let _ = writeln!(
                out,
                "{name:<width$}  {:>12}  {:>12}  {:>8}",
                "(floor)",
                ms(Some(*v)),
                ""
            );
        }
        for (label, r) in &self.ingest_vs_parse {
            let name = format!("{label}/ingest / parse");
            let x = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}x"));
            let _ = writeln!(out, "{name:<width$}  {:>12}  {:>12}", x(r.ours), x(r.baseline));
        }
        for (key, size) in &self.bytes_on_disk {
            let mb = |b: Option<u64>| b.map_or_else(|| "-".to_owned(), |b| format!("{:.1} MB", b as f64 / 1e6));
            let _ = writeln!(
                out,
                "{key:<width$}  {:>12}  {:>12}  {:>8}",
                mb(size.ours),
                mb(size.baseline),
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
        let http: Vec<(&String, &HttpFigures)> = self
            .operations
            .iter()
            .flat_map(|(name, c)| c.http.values().map(move |f| (name, f)))
            .collect();
        if !http.is_empty() {
            let _ = writeln!(
                out,
                "\nover HTTP (ours)  {:>8}  {:>10}  {:>9}  {:>9}  {:>9}  {:>10}",
                "clients", "req/s", "mean ms", "p50 ms", "p99 ms", "bytes"
            );
            for (name, f) in http {
                let _ = writeln!(
                    out,
                    "{name:<17}  {:>7}  {:>10.0}  {:>9.3}  {:>9.3}  {:>9.3}  {:>10}",
                    f.clients, f.requests_per_second, f.mean_ms, f.p50_ms, f.p99_ms, f.response_bytes
                );
            }
        }
        if !self.targets.is_empty() {
            let _ = writeln!(out, "\ntargets");
            for t in &self.targets {
                let _ = writeln!(
                    out,
                    "  {} {:<width$}  {:>10.3}  {}",
                    if t.met { "met   " } else { "MISSED" },
                    t.measure,
                    t.value,
                    t.target,
                    width = width + 14
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, ms: f64) -> Measurement {
        Measurement {
            name: name.to_owned(),
            ms,
        }
    }

    fn machine() -> Machine {
        Machine {
            cpu: Some("cpu".to_owned()),
            cores: Some(2),
            memory_bytes: None,
            load_average_1m: None,
            os: "linux",
            arch: "x86_64",
        }
    }

    #[test]
    fn targets_and_ingest_ratios_are_derived() {
        let mut report = Report::new(
            machine(),
            &[m("large/ingest", 1000.0), m("large/merge_10_likes", 1.0)],
            Some(&[m("large/ingest", 400.0), m("large/merge_10_likes", 7.0)]),
        );
        report.add_floor(&m("large/parse_ingest_json", 100.0));
        report.finish(&["large"]);
        assert_eq!(report.ingest_vs_parse["large"].ours, Some(4.0));
        let met = |measure: &str| report.targets.iter().find(|t| t.measure == measure).map(|t| t.met);
        assert_eq!(met("large/ingest ours/sqlite"), Some(true));
        assert_eq!(met("large/merge_10_likes ours"), Some(false));
        assert_eq!(met("large/ingest ours / parse"), Some(false));
        assert!(report.table().contains("MISSED"));
    }

    #[test]
    fn without_ours_the_ratio_is_null() -> Result<(), serde_json::Error> {
        let report = Report::new(machine(), &[m("small/ingest", 2.0)], None);
        let json = serde_json::to_value(&report)?;
        let op = &json["operations"]["small/ingest"];
        assert_eq!(op["baseline_ms"], 2.0);
        assert!(op["ours_ms"].is_null() && op["ratio"].is_null());
        assert_eq!(json["machine"]["cores"], 2);
        Ok(())
    }

    #[test]
    fn with_ours_the_ratio_is_ours_over_baseline() {
        let report = Report::new(
            machine(),
            &[m("a", 4.0), m("b", 1.0)],
            Some(&[m("a", 1.0), m("c", 3.0)]),
        );
        assert_eq!(report.operations["a"].ratio, Some(0.25));
        assert_eq!(report.operations["b"].ratio, None);
        assert_eq!(report.operations["c"].baseline_ms, None);
        assert!(report.table().contains("0.25"));
    }
}
