//! Which account owns each registered nick, kept in memory.
//!
//! Nick protection asks this for every client that registers or changes
//! its nick. Asked of the database, each batch of registrations was a query
//! through sqlx's worker thread, and a burst of them made the pool open
//! more SQLite connections (each a thread with its own caches): about
//! 15 µs of CPU and 0.3 KiB of memory per registration in the connect
//! benchmark, for an answer that is almost always "nobody".
//!
//! This process's changes go through the store and are applied here as
//! they commit. `parlor account` run beside a running server writes the
//! file from another process; those changes arrive with the next
//! [`Store::reload_nick_owners`], which the server runs every minute.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};

use super::{Store, StoreError};

/// Folded nick → folded name of the account owning it.
#[derive(Debug, Default)]
pub(super) struct NickOwners {
    owners: RwLock<HashMap<String, String>>,
    /// Counts the changes applied by this process, so that a reload that
    /// read the table before one of them committed is not installed over
    /// it.
    changes: AtomicU64,
}

impl NickOwners {
    fn change(&self, apply: impl FnOnce(&mut HashMap<String, String>)) {
        let mut owners = self.owners.write().unwrap_or_else(PoisonError::into_inner);
        self.changes.fetch_add(1, Ordering::Relaxed);
        apply(&mut owners);
    }

    pub(super) fn owned(&self, nick_folded: &str, account_folded: &str) {
        self.change(|owners| {
            owners.insert(nick_folded.to_owned(), account_folded.to_owned());
        });
    }

    pub(super) fn released(&self, nick_folded: &str) {
        self.change(|owners| {
            owners.remove(nick_folded);
        });
    }

    pub(super) fn account_deleted(&self, account_folded: &str) {
        self.change(|owners| owners.retain(|_, owner| owner != account_folded));
    }
}

impl Store {
    /// The folded name of the account owning `nick_folded`, as this
    /// process last saw it.
    pub fn owner_of_nick(&self, nick_folded: &str) -> Option<String> {
        let owners = self
            .nick_owners
            .owners
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        owners.get(nick_folded).cloned()
    }

    /// Reads every nick's owner from the database again, to take in what
    /// another process changed.
    pub async fn reload_nick_owners(&self) -> Result<(), StoreError> {
        let changes_before = self.nick_owners.changes.load(Ordering::Relaxed);
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT nick_folded, account FROM account_nicks")
                .fetch_all(&self.pool)
                .await?;
        let mut owners = self
            .nick_owners
            .owners
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        // A change of ours committed during the read may be missing from
        // it: keep what we have, and let the next reload try again.
        if self.nick_owners.changes.load(Ordering::Relaxed) == changes_before {
            *owners = rows.into_iter().collect();
        }
        Ok(())
    }
}
