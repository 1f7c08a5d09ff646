//! Which channels' saved snapshots are out of date (the saving itself is
//! in `restore.rs`).

use std::sync::Arc;

use tokio::sync::Notify;

use super::maps::HashSet;

/// The channels whose saved snapshot is out of date, by folded name.
#[derive(Debug)]
pub struct UnsavedChannels {
    pub(super) names: HashSet<String>,
    /// Wakes the task that saves them when the first is marked.
    pub(super) due: Arc<Notify>,
    /// Off when channels do not outlive a restart, and once the server is
    /// stopping (every channel was saved then).
    pub(super) tracking: bool,
}

impl UnsavedChannels {
    pub fn new(tracking: bool) -> UnsavedChannels {
        UnsavedChannels {
            names: HashSet::default(),
            due: Arc::default(),
            tracking,
        }
    }

    pub fn mark(&mut self, folded: &str) {
        if !self.tracking || self.names.contains(folded) {
            return;
        }
        if self.names.is_empty() {
            self.due.notify_one();
        }
        self.names.insert(folded.to_owned());
    }
}
