//! Pairs the "ours" and baseline measurements by operation, prints them as a table, and writes the JSON
//! report (`target/bench-report.json`): the machine, each operation's times and their ratio, the parse
//! floors and the size of each cache on disk.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::error::BenchError;
use crate::machine::Machine;
use crate::runner::Measurement;

/// One operation's times. `ratio` is `ours_ms / baseline_ms` (below 1 means ours is faster); it is `None`
/// when either side was not measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub ours_ms: Option<f64>,
    pub baseline_ms: Option<f64>,
    pub ratio: Option<f64>,
}

/// Bytes on disk at the end of a run, per workload label, for both sides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiskSize {
    pub ours: Option<u64>,
    pub baseline: Option<u64>,
}

/// The whole report, as written to JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub operations: BTreeMap<String, Comparison>,
    /// Costs that bound every cache from below, e.g. `large/parse_ingest_json`.
    pub floors_ms: BTreeMap<String, f64>,
    pub bytes_on_disk: BTreeMap<String, DiskSize>,
}

impl Report {
    /// Pairs the measurements by name. `ours` is `None` until the service's side is wired in.
    pub fn new(machine: Machine, baseline: &[Measurement], ours: Option<&[Measurement]>) -> Report {
        let mut operations: BTreeMap<String, Comparison> = BTreeMap::new();
        let blank = Comparison {
            ours_ms: None,
            baseline_ms: None,
            ratio: None,
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
            bytes_on_disk: BTreeMap::new(),
        }
    }

    /// Records a floor measurement (e.g. parse-only time).
    pub fn add_floor(&mut self, m: &Measurement) {
        self.floors_ms.insert(m.name.clone(), m.ms);
    }

    /// Records the size of both sides' caches after the run labelled `label`.
    pub fn add_disk_size(&mut self, label: &str, size: DiskSize) {
        self.bytes_on_disk.insert(label.to_owned(), size);
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

    /// The report as a plain-text table for the terminal.
    pub fn table(&self) -> String {
        let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"));
        let width = self
            .operations
            .keys()
            .chain(self.floors_ms.keys())
            .map(String::len)
            .max()
            .unwrap_or(9)
            .max(9);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<width$}  {:>12}  {:>12}  {:>8}",
            "operation", "baseline ms", "ours ms", "ratio"
        );
        for (name, c) in &self.operations {
            let ratio = c
                .ratio
                .map_or_else(|| "-".to_owned(), |r| format!("{r:.2}"));
            let _ = writeln!(
                out,
                "{name:<width$}  {:>12}  {:>12}  {ratio:>8}",
                ms(c.baseline_ms),
                ms(c.ours_ms)
            );
        }
        for (name, v) in &self.floors_ms {
            let _ = writeln!(
                out,
                "{name:<width$}  {:>12}  {:>12}  {:>8}",
                ms(Some(*v)),
                "(floor)",
                ""
            );
        }
        for (label, size) in &self.bytes_on_disk {
            let mb = |b: Option<u64>| {
                b.map_or_else(|| "-".to_owned(), |b| format!("{:.1} MB", b as f64 / 1e6))
            };
            let name = format!("{label}/bytes_on_disk");
            let _ = writeln!(
                out,
                "{name:<width$}  {:>12}  {:>12}",
                mb(size.baseline),
                mb(size.ours)
            );
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
