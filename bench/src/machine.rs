//! What machine the benchmark ran on, read from /proc (Linux); unknown facts are left out.

use serde::{Deserialize, Serialize};

/// The facts about the machine that a benchmark figure needs next to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// The CPU model name, e.g. `AMD EPYC 7B13`.
    pub cpu: Option<String>,
    /// Logical cores available to this process.
    pub cores: Option<usize>,
    /// Total memory in bytes.
    pub memory_bytes: Option<u64>,
    /// The 1-minute load average when the run started: above the core count, other work competed for
    /// the CPU and the figures are slower than on an idle machine.
    pub load_average_1m: Option<f64>,
    pub os: String,
    pub arch: String,
}

impl Machine {
    /// Reads the machine's facts; a fact that cannot be read is `None`.
    pub fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        Machine {
            cpu: cpu_model(&cpuinfo),
            cores: std::thread::available_parallelism().ok().map(usize::from),
            memory_bytes: mem_total(&meminfo),
            load_average_1m: loadavg.split_whitespace().next().and_then(|v| v.parse().ok()),
            os: std::env::consts::OS.to_owned(),
            arch: std::env::consts::ARCH.to_owned(),
        }
    }
}

/// The first `model name` line of /proc/cpuinfo.
fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name").and_then(|rest| rest.split_once(':')))
        .map(|(_, name)| name.trim().to_owned())
}

/// `MemTotal` of /proc/meminfo, in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_model_and_memory() {
        let cpuinfo = "processor\t: 0\nmodel name\t: Example CPU @ 3.00GHz\nflags\t: fpu\n";
        assert_eq!(cpu_model(cpuinfo).as_deref(), Some("Example CPU @ 3.00GHz"));
        assert_eq!(mem_total("MemTotal:       2048 kB\nMemFree: 1 kB\n"), Some(2048 * 1024));
        assert_eq!(cpu_model(""), None);
    }
}
