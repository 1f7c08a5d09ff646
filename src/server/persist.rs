//! Writes channels' state to the store in the background, so that a MODE
//! or TOPIC never waits for the disk: registered channels' state, and the
//! snapshots that bring every channel back after a restart. Changes queued
//! while a write is under way are merged (the latest of each channel wins)
//! and written together; a shutdown writes what is queued before it ends.
//!
//! A database that refuses the write (a full disk, an I/O error) loses
//! nothing: the changes stay, merged with the ones that keep coming (one
//! entry a channel, so memory stays bounded), and are tried again after a
//! pause that doubles up to [`MAX_RETRY_PAUSE`]. Meanwhile no new
//! snapshots are taken (`snapshots_queued` stays above zero), so changes
//! gather as names in the unsaved set. The log says when writing starts
//! failing and when it works again, once each.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::history::Stop;
use crate::store::{ChannelSnapshot, ChannelState, Store, StoreError};

/// The pause after a first failed write, doubled after each next one up
/// to `MAX_RETRY_PAUSE`.
const RETRY_PAUSE: Duration = Duration::from_millis(250);
const MAX_RETRY_PAUSE: Duration = super::history::MAX_RETRY_PAUSE;
/// Tries once the server is stopping.
const WRITE_ATTEMPTS: u32 = 4;

/// What the channel writer has done, for the metrics (read with
/// `Ordering::Relaxed`; reachable as `Server::channel_saver.stats`).
///
/// | field | meaning |
/// |---|---|
/// | `write_failures` | writes the database refused (every try) |
/// | `channels_dropped` | channels' changes given up: refused for good, or still refused when the server stopped |
/// | `failing` | true from a refused write until the next one that works |
#[derive(Debug, Default)]
pub struct ChannelWriterStats {
    pub write_failures: AtomicU64,
    pub channels_dropped: AtomicU64,
    pub failing: AtomicBool,
}

enum Change {
    /// A registered channel's state.
    Registered(String, ChannelState),
    /// A channel's snapshot, or `None` when the channel is gone.
    Snapshot(String, Option<ChannelSnapshot>),
}

/// The sending side, kept in the server.
pub struct ChannelSaver {
    queue: mpsc::UnboundedSender<Change>,
    /// Snapshots queued and not yet written: the task that saves them
    /// waits for this to come back to zero, so a slow disk makes changes
    /// gather in its set (one name a channel) rather than in this queue.
    pub snapshots_queued: Arc<AtomicUsize>,
    pub stats: Arc<ChannelWriterStats>,
}

/// The writing side, run by its own task.
pub struct ChannelWriter {
    queue: mpsc::UnboundedReceiver<Change>,
    snapshots_queued: Arc<AtomicUsize>,
    stats: Arc<ChannelWriterStats>,
    /// Changes not written yet: the latest of each channel.
    registered: HashMap<String, ChannelState>,
    snapshots: HashMap<String, Option<ChannelSnapshot>>,
    /// Snapshots taken from the queue and not yet written.
    snapshots_taken: usize,
    /// Since when writes have been failing.
    failing_since: Option<Instant>,
}

pub fn channel_saver() -> (ChannelSaver, ChannelWriter) {
    let (sender, receiver) = mpsc::unbounded_channel();
    let snapshots_queued = Arc::new(AtomicUsize::new(0));
    let stats = Arc::new(ChannelWriterStats::default());
    (
        ChannelSaver {
            queue: sender,
            snapshots_queued: snapshots_queued.clone(),
            stats: stats.clone(),
        },
        ChannelWriter {
            queue: receiver,
            snapshots_queued,
            stats,
            registered: HashMap::new(),
            snapshots: HashMap::new(),
            snapshots_taken: 0,
            failing_since: None,
        },
    )
}

impl ChannelSaver {
    /// Queues `state` as the state of the registered channel `folded`.
    pub fn save(&self, folded: String, state: ChannelState) {
        // The writer only goes away once the server has stopped.
        let _ = self.queue.send(Change::Registered(folded, state));
    }

    /// Queues the snapshot of channel `folded`, or with `None` its removal.
    pub fn save_snapshot(&self, folded: String, snapshot: Option<ChannelSnapshot>) {
        self.snapshots_queued.fetch_add(1, Ordering::AcqRel);
        let _ = self.queue.send(Change::Snapshot(folded, snapshot));
    }
}

impl ChannelWriter {
    /// Writes until `stop` resolves, then writes what is still queued.
    pub async fn run(mut self, store: Store, stop: impl Future<Output = ()>) {
        let mut stop = Stop::new(stop);
        while !stop.stopped {
            let first = tokio::select! {
                biased;
                received = self.queue.recv() => received,
                () = stop.wait() => None,
            };
            let Some(first) = first else {
                break;
            };
            self.take(first);
            // Until it is written, or the server stops.
            let mut failures = 0;
            while !self.write(&store).await {
                failures += 1;
                let pause = RETRY_PAUSE
                    .saturating_mul(1 << (failures - 1).min(16))
                    .min(MAX_RETRY_PAUSE);
                let deadline = tokio::time::Instant::now() + pause;
                // Changes that come meanwhile join the ones waiting.
                loop {
                    tokio::select! {
                        biased;
                        () = stop.wait() => break,
                        () = tokio::time::sleep_until(deadline) => break,
                        Some(change) = self.queue.recv() => self.take(change),
                    }
                }
                if stop.stopped {
                    break;
                }
            }
        }
        // Stopping: a few quick tries, then what the database still
        // refuses is given up.
        for attempt in 1..=WRITE_ATTEMPTS {
            while let Ok(change) = self.queue.try_recv() {
                self.take(change);
            }
            if self.write(&store).await {
                return;
            }
            if attempt < WRITE_ATTEMPTS {
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
        self.give_up("the server stopped while the database refused writes");
    }

    /// Merges `first` and every change queued behind it into the
    /// changes waiting.
    fn take(&mut self, first: Change) {
        let mut next = Some(first);
        while let Some(change) = next {
            match change {
                Change::Registered(folded, state) => {
                    self.registered.insert(folded, state);
                }
                Change::Snapshot(folded, snapshot) => {
                    self.snapshots.insert(folded, snapshot);
                    self.snapshots_taken += 1;
                }
            }
            next = self.queue.try_recv().ok();
        }
    }

    /// Writes the changes waiting. At the first refusal that may pass
    /// (see `StoreError::is_transient`) it stops, and that change and the
    /// ones not tried yet stay for the next try; a change refused for
    /// good is dropped alone, so it cannot hold up the others. Returns
    /// whether none is left.
    async fn write(&mut self, store: &Store) -> bool {
        let mut refused: Option<StoreError> = None;
        let mut registered = std::mem::take(&mut self.registered).into_iter();
        while let Some((folded, state)) = registered.next() {
            match store.save_channel_state(&folded, &state).await {
                Ok(_) => {}
                Err(error) if error.is_transient() => {
                    self.registered.insert(folded, state);
                    self.registered.extend(registered);
                    refused = Some(error);
                    break;
                }
                Err(error) => self.drop_refused(1, &folded, &error),
            }
        }
        if refused.is_none() && !self.snapshots.is_empty() {
            let snapshots: Vec<_> = self.snapshots.drain().collect();
            match store.save_channel_snapshots(&snapshots).await {
                Ok(()) => {}
                Err(error) if error.is_transient() => {
                    self.snapshots.extend(snapshots);
                    refused = Some(error);
                }
                Err(error) => self.drop_refused(snapshots.len(), "(snapshots)", &error),
            }
        }
        let Some(error) = refused else {
            self.snapshots_queued
                .fetch_sub(std::mem::take(&mut self.snapshots_taken), Ordering::AcqRel);
            if let Some(since) = self.failing_since.take() {
                self.stats.failing.store(false, Ordering::Relaxed);
                tracing::info!(
                    after_secs = since.elapsed().as_secs(),
                    "channel state: writing to the database again"
                );
            }
            return true;
        };
        self.stats.write_failures.fetch_add(1, Ordering::Relaxed);
        if self.failing_since.is_none() {
            self.failing_since = Some(Instant::now());
            self.stats.failing.store(true, Ordering::Relaxed);
            tracing::warn!(
                %error,
                channels = self.registered.len() + self.snapshots.len(),
                "channel state: cannot write to the database; the changes wait in memory \
                 and the write is tried again every few seconds"
            );
        }
        false
    }

    /// A change no retry would save: counted and logged.
    fn drop_refused(&mut self, channels: usize, channel: &str, error: &StoreError) {
        self.stats.write_failures.fetch_add(1, Ordering::Relaxed);
        self.stats
            .channels_dropped
            .fetch_add(channels as u64, Ordering::Relaxed);
        tracing::error!(channel, channels, %error, "channel state not saved: the database refuses it");
    }

    /// Forgets the changes waiting, counted and logged.
    fn give_up(&mut self, why: &str) {
        let channels = self.registered.len() + self.snapshots.len();
        if channels == 0 {
            return;
        }
        self.stats
            .channels_dropped
            .fetch_add(channels as u64, Ordering::Relaxed);
        tracing::error!(channels, "channel state not saved: {why}");
        self.registered.clear();
        self.snapshots.clear();
        self.snapshots_queued
            .fetch_sub(std::mem::take(&mut self.snapshots_taken), Ordering::AcqRel);
    }
}
