//! Writes registered channels' state to the store in the background, so
//! that a MODE or TOPIC never waits for the disk. Changes queued while a
//! write is under way are merged (the latest state of each channel wins)
//! and written together; a shutdown writes what is queued before it ends.

use std::collections::HashMap;

use tokio::sync::mpsc;

use crate::store::{ChannelState, Store};

/// The sending side, kept in the server.
pub struct ChannelSaver {
    queue: mpsc::UnboundedSender<(String, ChannelState)>,
}

/// The writing side, run by its own task.
pub struct ChannelWriter {
    queue: mpsc::UnboundedReceiver<(String, ChannelState)>,
}

pub fn channel_saver() -> (ChannelSaver, ChannelWriter) {
    let (sender, receiver) = mpsc::unbounded_channel();
    (
        ChannelSaver { queue: sender },
        ChannelWriter { queue: receiver },
    )
}

impl ChannelSaver {
    /// Queues `state` as the state of the registered channel `folded`.
    pub fn save(&self, folded: String, state: ChannelState) {
        // The writer only goes away once the server has stopped.
        let _ = self.queue.send((folded, state));
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
        while let Ok(item) = self.queue.try_recv() {
            self.write_batch(&store, item).await;
        }
    }

    async fn write_batch(&mut self, store: &Store, first: (String, ChannelState)) {
        let mut latest: HashMap<String, ChannelState> = HashMap::new();
        latest.insert(first.0, first.1);
        while let Ok((folded, state)) = self.queue.try_recv() {
            latest.insert(folded, state);
        }
        for (folded, state) in latest {
            if let Err(error) = store.save_channel_state(&folded, &state).await {
                tracing::error!(channel = %folded, %error, "cannot save channel state");
            }
        }
    }
}
