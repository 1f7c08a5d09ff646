//! What the history writer has done, counted for the metrics: plain
//! atomics the writer and the senders bump, read by anyone with
//! `Ordering::Relaxed` (each figure on its own; they are not one
//! snapshot).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// The history writer's counts, read through `Server::history_stats`.
#[derive(Debug, Default)]
pub struct HistoryStats {
    pub(super) rows_queued: AtomicU64,
    pub(super) rows_written: AtomicU64,
    pub(super) rows_dropped_queue_full: AtomicU64,
    pub(super) rows_dropped_refused: AtomicU64,
    pub(super) write_failures: AtomicU64,
    pub(super) failing: AtomicBool,
    /// Set by the first line dropped for a full queue (which says so in
    /// the log), cleared by the writer once the queue is down to half.
    pub(super) overflowing: AtomicBool,
    pub(super) commit_latency: LatencyHistogram,
}

impl HistoryStats {
    /// Lines queued and neither written nor dropped yet (those in the
    /// transaction under way included).
    pub fn queue_depth(&self) -> u64 {
        self.rows_queued().saturating_sub(self.settled())
    }

    /// Lines handed to the writer since the start.
    pub fn rows_queued(&self) -> u64 {
        self.rows_queued.load(Ordering::Relaxed)
    }

    /// Lines committed to the database.
    pub fn rows_written(&self) -> u64 {
        self.rows_written.load(Ordering::Relaxed)
    }

    /// Lines never stored, for either reason below.
    pub fn rows_dropped(&self) -> u64 {
        self.rows_dropped_queue_full() + self.rows_dropped_refused()
    }

    /// The oldest queued lines, dropped to make room while the database
    /// fell behind or refused writes (the queue is bounded).
    pub fn rows_dropped_queue_full(&self) -> u64 {
        self.rows_dropped_queue_full.load(Ordering::Relaxed)
    }

    /// Lines given up because the database refused them: an error no
    /// wait mends (a constraint, corruption), or a database still
    /// refusing writes when the server stopped.
    pub fn rows_dropped_refused(&self) -> u64 {
        self.rows_dropped_refused.load(Ordering::Relaxed)
    }

    /// Transactions that failed (each try counts).
    pub fn write_failures(&self) -> u64 {
        self.write_failures.load(Ordering::Relaxed)
    }

    /// True from a failed write until the next one that works.
    pub fn failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    /// How long the transactions that worked took, from begin to commit.
    pub fn commit_latency(&self) -> &LatencyHistogram {
        &self.commit_latency
    }

    /// Lines whose fate is known: written or dropped.
    pub(super) fn settled(&self) -> u64 {
        self.rows_written() + self.rows_dropped()
    }
}

/// Upper bounds of the commit latency buckets, in microseconds: from a
/// small batch on a fast disk to a disk that takes seconds to sync.
pub const LATENCY_BOUNDS_MICROS: [u64; 12] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    5_000_000,
];

/// A histogram of durations in fixed buckets, the shape Prometheus
/// takes: counts per bucket, their sum and their number.
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    /// One per bound, then one for what lies above the last.
    buckets: [AtomicU64; LATENCY_BOUNDS_MICROS.len() + 1],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl LatencyHistogram {
    pub fn observe(&self, duration: Duration) {
        let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        let bucket = LATENCY_BOUNDS_MICROS.partition_point(|&bound| bound < micros);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// `(upper bound in µs, observations at or below it)` for every
    /// bound, cumulative as Prometheus' `le` buckets are; the `+Inf`
    /// bucket is [`LatencyHistogram::count`].
    pub fn cumulative_buckets(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        LATENCY_BOUNDS_MICROS
            .iter()
            .zip(&self.buckets)
            .scan(0, |total, (&bound, count)| {
                *total += count.load(Ordering::Relaxed);
                Some((bound, *total))
            })
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub fn sum(&self) -> Duration {
        Duration::from_micros(self.sum_micros.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_fall_in_the_first_bucket_that_holds_them() {
        let histogram = LatencyHistogram::default();
        for micros in [10, 500, 501, 7_000, 9_000_000] {
            histogram.observe(Duration::from_micros(micros));
        }
        let buckets: Vec<_> = histogram.cumulative_buckets().collect();
        assert_eq!(buckets[0], (500, 2));
        assert_eq!(buckets[1], (1_000, 3));
        assert_eq!(buckets[3], (5_000, 3));
        assert_eq!(buckets[4], (10_000, 4));
        assert_eq!(buckets.last(), Some(&(5_000_000, 4)));
        assert_eq!(histogram.count(), 5);
        assert_eq!(
            histogram.sum(),
            Duration::from_micros(10 + 500 + 501 + 7_000 + 9_000_000)
        );
    }
}
