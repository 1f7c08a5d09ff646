//! Writes channels' state to the store in the background, so that a MODE
//! or TOPIC never waits for the disk: registered channels' state, and the
//! snapshots that bring every channel back after a restart. Changes queued
//! while a write is under way are merged (the latest of each channel wins)
//! and written together; a shutdown writes what is queued before it ends.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::store::{ChannelSnapshot, ChannelState, Store};

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
}

/// The writing side, run by its own task.
pub struct ChannelWriter {
    queue: mpsc::UnboundedReceiver<Change>,
    snapshots_queued: Arc<AtomicUsize>,
}

pub fn channel_saver() -> (ChannelSaver, ChannelWriter) {
    let (sender, receiver) = mpsc::unbounded_channel();
    let snapshots_queued = Arc::new(AtomicUsize::new(0));
    (
        ChannelSaver {
            queue: sender,
            snapshots_queued: snapshots_queued.clone(),
        },
        ChannelWriter {
            queue: receiver,
            snapshots_queued,
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
    pub async fn run(mut self, store: Store, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            let first = tokio::select! {
                biased;
                received = self.queue.recv() => received,
                () = &mut stop => None,
            };
            let Some(first) = first else {
                break;
            };
            self.write_batch(&store, first).await;
        }
        while let Ok(change) = self.queue.try_recv() {
            self.write_batch(&store, change).await;
        }
    }

    async fn write_batch(&mut self, store: &Store, first: Change) {
        let mut registered: HashMap<String, ChannelState> = HashMap::new();
        let mut snapshots: HashMap<String, Option<ChannelSnapshot>> = HashMap::new();
        let mut snapshots_taken = 0;
        let mut next = Some(first);
        while let Some(change) = next {
            match change {
                Change::Registered(folded, state) => {
                    registered.insert(folded, state);
                }
                Change::Snapshot(folded, snapshot) => {
                    snapshots.insert(folded, snapshot);
                    snapshots_taken += 1;
                }
            }
            next = self.queue.try_recv().ok();
        }
        for (folded, state) in registered {
            if let Err(error) = store.save_channel_state(&folded, &state).await {
                tracing::error!(channel = %folded, %error, "cannot save channel state");
            }
        }
        let snapshots: Vec<_> = snapshots.into_iter().collect();
        if let Err(error) = store.save_channel_snapshots(&snapshots).await {
            tracing::error!(channels = snapshots.len(), %error, "cannot save channel snapshots");
        }
        self.snapshots_queued
            .fetch_sub(snapshots_taken, Ordering::AcqRel);
    }
}
