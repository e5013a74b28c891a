//! Summaries of repeated timings (median, 99th percentile, worst) and the digests answers are
//! compared by (FNV-1a, 64 bits, as hex).

use serde::{Deserialize, Serialize};

/// The `q` quantile (nearest rank) of `values`; 0 for none. Sorts `values`.
pub fn percentile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let rank = (q * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

/// The median (the mean of the middle two for an even count); 0 for none. Sorts `values`.
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// What a list of timings comes to, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// How many timings.
    pub n: usize,
    pub p50: f64,
    /// The 99th percentile by nearest rank: with fewer than 100 timings, the slowest.
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl Summary {
    /// The summary of `times` (ms); all zero for none.
    pub fn of(times: &[f64]) -> Summary {
        let mut sorted = times.to_vec();
        let mean = if sorted.is_empty() {
            0.0
        } else {
            sorted.iter().sum::<f64>() / sorted.len() as f64
        };
        Summary {
            n: sorted.len(),
            p50: median(&mut sorted),
            p99: percentile(&mut sorted, 0.99),
            max: sorted.last().copied().unwrap_or(0.0),
            mean,
        }
    }
}

/// FNV-1a over a sequence of byte strings, each closed by its length (so that answers cannot run
/// into each other): the digest a run's answers are compared by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digest(u64);

impl Default for Digest {
    fn default() -> Self {
        Digest(0xcbf2_9ce4_8422_2325)
    }
}

impl Digest {
    /// Adds one answer.
    pub fn add(&mut self, bytes: &[u8]) -> &mut Self {
        for &b in bytes.iter().chain(&(bytes.len() as u64).to_le_bytes()) {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        self
    }

    /// The digest of one answer, as hex.
    pub fn of(bytes: &[u8]) -> String {
        Digest::default().add(bytes).hex()
    }

    /// The digest as a number.
    pub fn value(&self) -> u64 {
        self.0
    }

    pub fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank_and_medians() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&mut v, 0.99), 99.0);
        assert_eq!(percentile(&mut v, 0.5), 50.0);
        assert_eq!(percentile(&mut [3.0], 0.99), 3.0);
        assert_eq!(percentile(&mut [], 0.99), 0.0);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&mut []), 0.0);
        let s = Summary::of(&[5.0, 1.0, 3.0]);
        assert_eq!((s.n, s.p50, s.p99, s.max, s.mean), (3, 3.0, 5.0, 5.0, 3.0));
    }

    #[test]
    fn digests_tell_sequences_apart() {
        let one = Digest::default().add(b"ab").add(b"c").hex();
        let other = Digest::default().add(b"a").add(b"bc").hex();
        assert_ne!(one, other);
        assert_eq!(Digest::of(b"x"), Digest::of(b"x"));
    }
}
