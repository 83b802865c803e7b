//! Latency histograms: one per generator thread, merged at the end.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Largest latency kept exactly; longer ones are recorded as this.
pub const LATENCY_NS_MAX: u64 = 60_000_000_000;

/// Records response latencies in nanoseconds, 3 significant digits.
#[derive(Debug, Clone)]
pub struct LatencyRecorder {
    histogram: Histogram<u64>,
}

/// Percentiles of a run, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

impl Default for LatencyRecorder {
    fn default() -> Self {
        LatencyRecorder::new()
    }
}

impl LatencyRecorder {
    /// An empty recorder.
    pub fn new() -> LatencyRecorder {
        LatencyRecorder {
            histogram: Histogram::new_with_bounds(1, LATENCY_NS_MAX, 3).expect("static histogram bounds are valid"),
        }
    }

    /// Records one latency. Zero counts as 1 ns, beyond the bound as the bound.
    pub fn record_ns(&mut self, latency_ns: u64) {
        self.histogram.saturating_record(latency_ns.clamp(1, LATENCY_NS_MAX));
    }

    /// Adds another recorder's samples (same bounds, so this cannot fail).
    pub fn merge(&mut self, other: &LatencyRecorder) {
        self.histogram
            .add(&other.histogram)
            .expect("recorders share bounds, so merging cannot overflow them");
    }

    /// Samples recorded.
    #[cfg(test)]
    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// The percentiles; all zero when nothing was recorded.
    pub fn summary(&self) -> LatencySummary {
        let h = &self.histogram;
        if h.is_empty() {
            return LatencySummary {
                count: 0,
                mean_us: 0.0,
                p50_us: 0.0,
                p90_us: 0.0,
                p99_us: 0.0,
                p999_us: 0.0,
                max_us: 0.0,
            };
        }
        let us = |ns: u64| ns as f64 / 1_000.0;
        LatencySummary {
            count: h.len(),
            mean_us: h.mean() / 1_000.0,
            p50_us: us(h.value_at_quantile(0.50)),
            p90_us: us(h.value_at_quantile(0.90)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Within the histogram's 3 significant digits.
    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= b * 0.001 + 0.001
    }

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut r = LatencyRecorder::new();
        // 1..=1000 µs, one sample each.
        for us in 1..=1_000u64 {
            r.record_ns(us * 1_000);
        }
        let s = r.summary();
        assert_eq!(s.count, 1_000);
        assert!(close(s.p50_us, 500.0), "p50 {}", s.p50_us);
        assert!(close(s.p90_us, 900.0), "p90 {}", s.p90_us);
        assert!(close(s.p99_us, 990.0), "p99 {}", s.p99_us);
        assert!(close(s.p999_us, 999.0), "p999 {}", s.p999_us);
        assert!(close(s.max_us, 1_000.0), "max {}", s.max_us);
        assert!(close(s.mean_us, 500.5), "mean {}", s.mean_us);
    }

    #[test]
    fn merge_adds_samples() {
        let mut a = LatencyRecorder::new();
        let mut b = LatencyRecorder::new();
        a.record_ns(10_000);
        b.record_ns(30_000);
        b.record_ns(30_000);
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert!(close(a.summary().p50_us, 30.0));
        assert_eq!(LatencyRecorder::new().summary().p99_us, 0.0, "empty is all zero");
    }

    #[test]
    fn out_of_range_samples_are_clamped() {
        let mut r = LatencyRecorder::new();
        r.record_ns(0);
        r.record_ns(u64::MAX);
        let s = r.summary();
        assert_eq!(s.count, 2);
        assert!(close(s.max_us, LATENCY_NS_MAX as f64 / 1_000.0));
    }
}
