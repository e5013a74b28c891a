//! The memory of the running process, from /proc (Linux): resident set size now and at its peak,
//! and resetting the peak so that it covers one stretch of work. Elsewhere every figure is `None`.

use serde::{Deserialize, Serialize};

/// Resident memory in bytes: now, and the highest since the process started or the peak was reset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    pub rss_bytes: Option<u64>,
    pub peak_bytes: Option<u64>,
}

/// Reads `VmRSS` and `VmHWM` of /proc/self/status.
pub fn now() -> Memory {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    Memory {
        rss_bytes: field_kib(&status, "VmRSS:"),
        peak_bytes: field_kib(&status, "VmHWM:"),
    }
}

/// Resets the peak to the current resident size (writes `5` to /proc/self/clear_refs); false
/// when the kernel refused (the peak then still counts from the start of the process).
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn field_kib(status: &str, name: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(name))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kib_fields() {
        let status = "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(field_kib(status, "VmRSS:"), Some(1024 * 1024));
        assert_eq!(field_kib(status, "VmHWM:"), Some(2048 * 1024));
        assert_eq!(field_kib(status, "VmSwap:"), None);
    }

    #[test]
    fn the_peak_is_at_least_the_resident_size() {
        let m = now();
        if let (Some(rss), Some(peak)) = (m.rss_bytes, m.peak_bytes) {
            assert!(peak >= rss);
        }
    }
}
