//! The lines waiting for the history writer: a bounded queue that drops
//! its oldest line to take a new one once full, so a database that falls
//! behind or refuses writes costs a fixed amount of memory, and what is
//! kept is what readers most likely want (the latest).
//!
//! A plain mutex: it is taken for a push (under the state lock, on the
//! fan-out path) and for the writer's take of a whole batch, never across
//! an `.await`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::Notify;

use super::stats::HistoryStats;
use crate::store::HistoryRecord;

#[derive(Debug)]
pub(super) struct Pending {
    records: Mutex<VecDeque<HistoryRecord>>,
    /// Most lines kept waiting (the batch being written aside); a
    /// reload may change it.
    limit: AtomicUsize,
    /// When a push reaches this many lines, the writer need not wait for
    /// more before writing.
    batch: usize,
    /// A line arrived in an empty queue.
    pub(super) arrived: Notify,
    /// A full batch waits.
    pub(super) batch_ready: Notify,
}

impl Pending {
    pub(super) fn new(limit: usize, batch: usize) -> Pending {
        Pending {
            records: Mutex::new(VecDeque::new()),
            limit: AtomicUsize::new(limit.max(1)),
            batch,
            arrived: Notify::new(),
            batch_ready: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<HistoryRecord>> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `record`, dropping the oldest lines past the limit (one,
    /// unless the limit was just lowered). Returns whether any went.
    pub(super) fn push(&self, record: HistoryRecord, stats: &HistoryStats) -> bool {
        let mut records = self.lock();
        records.push_back(record);
        let excess = records.len().saturating_sub(self.limit());
        records.drain(..excess);
        let len = records.len();
        // Counted under the lock, so the counts never show a line as
        // dropped before it was queued.
        stats.rows_queued.fetch_add(1, Ordering::Relaxed);
        if excess > 0 {
            stats
                .rows_dropped_queue_full
                .fetch_add(excess as u64, Ordering::Relaxed);
        }
        drop(records);
        if len == 1 {
            self.arrived.notify_one();
        } else if len == self.batch {
            self.batch_ready.notify_one();
        }
        excess > 0
    }

    /// Takes the oldest `most` lines, in order. A push waits for this, so
    /// the lock is held for a swap when everything goes (the usual case),
    /// and for moving `most` records out only when the writer is behind.
    pub(super) fn take(&self, most: usize) -> Vec<HistoryRecord> {
        let mut records = self.lock();
        if records.len() <= most {
            let all = std::mem::take(&mut *records);
            drop(records);
            Vec::from(all)
        } else {
            records.drain(..most).collect()
        }
    }

    /// Most lines kept waiting.
    pub(super) fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// A lower limit drops the oldest lines at the next push.
    pub(super) fn set_limit(&self, limit: usize) {
        self.limit.store(limit.max(1), Ordering::Relaxed);
    }

    pub(super) fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(msgid: u64) -> HistoryRecord {
        HistoryRecord {
            target: "#c".to_owned(),
            msgid,
            command: "PRIVMSG",
            line: format!("line {msgid}"),
        }
    }

    #[test]
    fn a_full_queue_drops_its_oldest_lines_and_counts_them() {
        let stats = HistoryStats::default();
        let pending = Pending::new(3, 100);
        for msgid in 1..=5 {
            pending.push(record(msgid), &stats);
        }
        assert_eq!(stats.rows_queued(), 5);
        assert_eq!(stats.rows_dropped_queue_full(), 2);
        assert_eq!(stats.queue_depth(), 3);
        let kept: Vec<u64> = pending.take(10).iter().map(|r| r.msgid).collect();
        assert_eq!(kept, [3, 4, 5]);
        assert_eq!(pending.len(), 0);
    }

    #[test]
    fn a_lowered_limit_drops_the_excess_at_the_next_push() {
        let stats = HistoryStats::default();
        let pending = Pending::new(10, 100);
        for msgid in 1..=5 {
            pending.push(record(msgid), &stats);
        }
        pending.set_limit(2);
        assert!(pending.push(record(6), &stats));
        assert_eq!(stats.rows_dropped_queue_full(), 4);
        let kept: Vec<u64> = pending.take(10).iter().map(|r| r.msgid).collect();
        assert_eq!(kept, [5, 6]);
    }

    #[test]
    fn a_take_keeps_the_order_and_leaves_the_rest() {
        let stats = HistoryStats::default();
        let pending = Pending::new(100, 100);
        for msgid in 1..=5 {
            pending.push(record(msgid), &stats);
        }
        let first: Vec<u64> = pending.take(2).iter().map(|r| r.msgid).collect();
        assert_eq!(first, [1, 2]);
        let rest: Vec<u64> = pending.take(10).iter().map(|r| r.msgid).collect();
        assert_eq!(rest, [3, 4, 5]);
    }
}
