//! Latency percentiles and per-run results.

use serde::{Deserialize, Serialize};

/// The value at percentile `p` (0–100) of `sorted` (nearest-rank), or 0 when empty.
pub(crate) fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median of `values` (mean of the middle two for an even count); 0 when empty.
pub(crate) fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// One measured run of one scenario against one server.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct RunResult {
    /// The server ("footlights", "rivetkit-2.3.19", ...).
    pub target: String,
    /// The scenario id, e.g. `c_http_c64_1actor_json`.
    pub scenario: String,
    /// 0-based run number.
    pub run: u32,
    /// Operations completed in the measured window.
    pub ops: u64,
    /// Length of the measured window in seconds.
    pub secs: f64,
    /// Operations per second.
    pub throughput: f64,
    /// Latency percentiles in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Maximum, ms.
    pub max_ms: f64,
    /// Failed operations (in the window and outside it).
    pub errors: u64,
    /// Server RSS at the end of the window, KiB (summed over the server's processes).
    pub server_rss_kb: u64,
    /// Server CPU seconds used during the window.
    pub server_cpu_s: f64,
    /// Load generator CPU seconds during the window.
    pub client_cpu_s: f64,
    /// Memory scenarios: server RSS growth per actor or per connection, in bytes.
    #[serde(default)]
    pub bytes_per_unit: f64,
    /// Free-form extra figures (bytes per actor, recovered value, ...).
    pub note: String,
}

impl RunResult {
    /// Fills the latency fields from unsorted nanosecond samples.
    pub(crate) fn set_latencies(&mut self, mut nanos: Vec<u64>) {
        nanos.sort_unstable();
        let ms = |v: u64| v as f64 / 1e6;
        self.p50_ms = ms(percentile(&nanos, 50.0));
        self.p99_ms = ms(percentile(&nanos, 99.0));
        self.max_ms = ms(nanos.last().copied().unwrap_or(0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&v, 0.0), 1);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
        let small = [10, 20, 30];
        assert_eq!(percentile(&small, 50.0), 20);
        assert_eq!(percentile(&small, 99.0), 30);
    }

    #[test]
    fn median_odd_even() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&mut []), 0.0);
    }

    #[test]
    fn latencies_in_ms() {
        let mut r = RunResult::default();
        r.set_latencies(vec![3_000_000, 1_000_000, 2_000_000]);
        assert_eq!(r.p50_ms, 2.0);
        assert_eq!(r.max_ms, 3.0);
    }
}
