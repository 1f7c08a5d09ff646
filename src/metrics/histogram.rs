//! A histogram with fixed buckets, for durations.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds of the buckets, in seconds: from a millisecond (a commit
/// of a few rows on a quiet disk) to ten seconds (a disk that stalls, or
/// a database another process holds; SQLite's busy timeout is 5 s).
pub const BOUNDS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Observations per bucket (not cumulative; a scrape adds them up), plus
/// one past the last bound, their sum and their count.
#[derive(Debug)]
pub struct Histogram {
    buckets: [AtomicU64; BOUNDS.len() + 1],
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

/// What a scrape reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Cumulative counts: observations at most `BOUNDS[i]`, then all.
    pub cumulative: [u64; BOUNDS.len() + 1],
    pub sum_seconds: f64,
    pub count: u64,
}

impl Histogram {
    pub const fn new() -> Histogram {
        Histogram {
            buckets: [const { AtomicU64::new(0) }; BOUNDS.len() + 1],
            sum_nanos: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let bucket = BOUNDS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(BOUNDS.len());
        self.buckets[bucket].fetch_add(1, Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    /// The counts so far. Read while others observe, the buckets, sum and
    /// count may be one observation apart; the `+Inf` bucket is the count,
    /// as the format requires.
    pub fn snapshot(&self) -> Snapshot {
        let mut cumulative = [0; BOUNDS.len() + 1];
        let mut running = 0u64;
        for (total, bucket) in cumulative.iter_mut().zip(&self.buckets) {
            running += bucket.load(Relaxed);
            *total = running;
        }
        let count = running;
        Snapshot {
            cumulative,
            sum_seconds: self.sum_nanos.load(Relaxed) as f64 / 1e9,
            count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_their_bucket_and_add_up() {
        let histogram = Histogram::new();
        histogram.observe(Duration::from_micros(500));
        histogram.observe(Duration::from_millis(1));
        histogram.observe(Duration::from_millis(30));
        histogram.observe(Duration::from_secs(60));
        let snapshot = histogram.snapshot();
        // At most 1 ms: the first two (the bound is inclusive).
        assert_eq!(snapshot.cumulative[0], 2);
        // At most 25 ms: still two; at most 50 ms: three.
        assert_eq!(snapshot.cumulative[4], 2);
        assert_eq!(snapshot.cumulative[5], 3);
        // Past the last bound: only the total has it.
        assert_eq!(snapshot.cumulative[BOUNDS.len() - 1], 3);
        assert_eq!(snapshot.cumulative[BOUNDS.len()], 4);
        assert_eq!(snapshot.count, 4);
        assert!((snapshot.sum_seconds - 60.0315).abs() < 1e-9);
    }
}
