//! The task that writes queued history to the database, one transaction
//! per `history.commit_interval_ms` (sooner when a reader waits or a full
//! batch is queued).
//!
//! A database that refuses writes (a full disk, an I/O error, a file made
//! read-only, a lock held elsewhere) holds nothing else up: chat never
//! waits for this task. The writer keeps the batch it could not write and
//! tries it again after 0.25 s, doubling the pause up to
//! [`MAX_RETRY_PAUSE`], for as long as the error is one that time can mend
//! (`StoreError::is_transient`); lines go on queueing behind it, up to
//! the queue's bound, past which the oldest go (see `pending.rs`). Once
//! the database takes writes again the writer goes on by itself and
//! catches up. The log says so twice per stretch, when writing starts
//! failing and when it works again, not once per line or per try.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};

use super::pending::Pending;
use super::stats::HistoryStats;
use crate::store::{HistoryRecord, Store, StoreError};

/// Most records one transaction writes.
pub(super) const MAX_BATCH: usize = 5_000;

/// Tries of a batch the database refuses for good (an error no wait
/// mends) before it is dropped; and, once the server is stopping, tries
/// of any batch before everything still queued is given up.
const WRITE_ATTEMPTS: u32 = 4;
/// The pause after a batch's first failed try, doubled after each next
/// one up to [`MAX_RETRY_PAUSE`]: a full disk is tried again every two
/// seconds, each try one small failed transaction.
const RETRY_PAUSE: Duration = Duration::from_millis(250);
pub const MAX_RETRY_PAUSE: Duration = Duration::from_secs(2);

/// The writing side, run by its own task.
pub struct HistoryWriter {
    pub(super) pending: Arc<Pending>,
    pub(super) stats: Arc<HistoryStats>,
    /// Bumped after every try, so readers waiting for lines to be
    /// written look again (see `Written::wait`).
    pub(super) progress: watch::Sender<u64>,
    /// How long the first record of a batch waits for others.
    pub(super) interval: Duration,
    /// A reader waits: write without waiting for company.
    pub(super) flush: Arc<Notify>,
    pub(super) failing: Option<Failing>,
    /// `rows_dropped_queue_full` when the queue last overflowed, for the
    /// line that says it stopped.
    pub(super) dropped_when_reported: u64,
}

/// A stretch of failed writes, for the line that says it ended.
pub(super) struct Failing {
    since: Instant,
    dropped_before: u64,
    /// Whether a batch was given up in it (logged once a stretch).
    gave_up: bool,
}

impl HistoryWriter {
    /// Writes until `stop` resolves, then writes what is still queued.
    pub async fn run(mut self, store: Store, stop: impl Future<Output = ()>) {
        let mut stop = Stop::new(stop);
        loop {
            if !stop.stopped {
                self.wait_for_batch(&mut stop).await;
            }
            let mut batch = self.pending.take(MAX_BATCH);
            if batch.is_empty() {
                if stop.stopped {
                    return;
                }
                continue;
            }
            if !self.write(&store, &mut batch, &mut stop).await {
                self.give_up_the_rest();
                return;
            }
        }
    }

    /// Waits for a first record, then for company: one transaction per
    /// interval instead of one per message, unless a reader is waiting,
    /// a full batch is queued, or the server stops.
    async fn wait_for_batch(&mut self, stop: &mut Stop<impl Future>) {
        while self.pending.len() == 0 {
            tokio::select! {
                biased;
                () = stop.wait() => return,
                () = self.pending.arrived.notified() => {}
            }
        }
        if self.pending.len() >= MAX_BATCH {
            return;
        }
        let deadline = tokio::time::Instant::now() + self.interval;
        tokio::select! {
            biased;
            () = stop.wait() => {}
            () = self.flush.notified() => {}
            () = self.pending.batch_ready.notified() => {}
            () = tokio::time::sleep_until(deadline) => {}
        }
    }

    /// Writes `batch`, trying again while the database refuses it for a
    /// reason that passes, and empties it. Returns false if the server
    /// stopped while the database still refused writes: the batch is
    /// then given up, and so should the rest be.
    async fn write(
        &mut self,
        store: &Store,
        batch: &mut Vec<HistoryRecord>,
        stop: &mut Stop<impl Future>,
    ) -> bool {
        let mut failures = 0;
        let mut failures_since_stop = 0;
        let written = loop {
            let started = Instant::now();
            let error = match store.append_history(batch).await {
                Ok(()) => {
                    self.stats.commit_latency.observe(started.elapsed());
                    break true;
                }
                Err(error) => error,
            };
            failures += 1;
            if stop.stopped {
                failures_since_stop += 1;
            }
            self.stats.write_failures.fetch_add(1, Ordering::Relaxed);
            self.start_failing(&error, batch.len());
            self.progress.send_modify(|tries| *tries += 1);
            let lasting = !error.is_transient();
            if failures_since_stop >= WRITE_ATTEMPTS || (lasting && failures >= WRITE_ATTEMPTS) {
                self.give_up(batch.len(), &error, lasting);
                break false;
            }
            // A stop cuts the pauses short: its few tries come at once.
            let pause = if stop.stopped {
                RETRY_PAUSE
            } else {
                RETRY_PAUSE
                    .saturating_mul(1 << (failures - 1).min(16))
                    .min(MAX_RETRY_PAUSE)
            };
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = stop.wait() => {}
            }
        };
        let batch_len = batch.len();
        let count = batch_len as u64;
        batch.clear();
        if written {
            self.stats.rows_written.fetch_add(count, Ordering::Relaxed);
            self.stop_failing();
        } else {
            self.stats
                .rows_dropped_refused
                .fetch_add(count, Ordering::Relaxed);
            crate::metrics::history_rows_dropped(batch_len);
        }
        self.report_queue_recovered();
        self.progress.send_modify(|tries| *tries += 1);
        written || !stop.stopped
    }

    /// The first failure of a stretch is logged, and readers stop
    /// waiting for the writer; later ones are only counted.
    fn start_failing(&mut self, error: &StoreError, records: usize) {
        if self.failing.is_some() {
            return;
        }
        self.failing = Some(Failing {
            since: Instant::now(),
            dropped_before: self.stats.rows_dropped(),
            gave_up: false,
        });
        self.stats.failing.store(true, Ordering::Relaxed);
        tracing::warn!(
            %error,
            records,
            "history: cannot write to the database; lines wait in memory (the oldest dropped \
             past {} lines) and the write is tried again every few seconds",
            self.pending.limit()
        );
    }

    fn stop_failing(&mut self) {
        let Some(failing) = self.failing.take() else {
            return;
        };
        self.stats.failing.store(false, Ordering::Relaxed);
        tracing::info!(
            after_secs = failing.since.elapsed().as_secs(),
            waiting = self.stats.queue_depth(),
            dropped = self.stats.rows_dropped() - failing.dropped_before,
            "history: writing to the database again; the lines that waited follow"
        );
    }

    fn give_up(&mut self, records: usize, error: &StoreError, lasting: bool) {
        let Some(failing) = &mut self.failing else {
            return;
        };
        if std::mem::replace(&mut failing.gave_up, true) {
            return;
        }
        if lasting {
            tracing::error!(%error, records, "history: the database refuses these lines; they are lost");
        } else {
            tracing::error!(
                %error,
                records,
                "history: stopping while the database refuses writes; the lines waiting are lost"
            );
        }
    }

    /// Once the queue that overflowed is down to half, says so (the
    /// sender said when it overflowed).
    fn report_queue_recovered(&mut self) {
        if self.stats.queue_depth() > self.pending.limit() as u64 / 2
            || !self.stats.overflowing.swap(false, Ordering::Relaxed)
        {
            return;
        }
        let dropped = self.stats.rows_dropped_queue_full();
        tracing::info!(
            dropped = dropped - self.dropped_when_reported,
            "history: the queue has room again; no more lines are dropped"
        );
        self.dropped_when_reported = dropped;
    }

    /// Once stopped with the database refusing writes: what is still
    /// queued is counted as given up, and nobody waits for it.
    fn give_up_the_rest(&mut self) {
        let given_up = self.pending.take(usize::MAX).len();
        self.stats
            .rows_dropped_refused
            .fetch_add(given_up as u64, Ordering::Relaxed);
        crate::metrics::history_rows_dropped(given_up);
        self.progress.send_modify(|tries| *tries += 1);
    }
}

/// A stop signal that resolves once and is remembered: waiting on it
/// after that never resolves again, so a `select!` goes on with its
/// other branches.
pub(in crate::server) struct Stop<F> {
    future: std::pin::Pin<Box<F>>,
    pub(in crate::server) stopped: bool,
}

impl<F: Future> Stop<F> {
    pub(in crate::server) fn new(future: F) -> Stop<F> {
        Stop {
            future: Box::pin(future),
            stopped: false,
        }
    }

    pub(in crate::server) async fn wait(&mut self) {
        if self.stopped {
            std::future::pending::<()>().await;
        }
        (&mut self.future).await;
        self.stopped = true;
    }
}
