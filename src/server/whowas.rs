//! The nicks remembered for WHOWAS: the last `limits.whowas_entries`
//! nicks given up (by a nick change or a quit), kept by nick.
//!
//! A WHOWAS holds the state lock while it finds its entries, and the list
//! may hold 20,000 of them, many under one nick: so they are found by
//! their nick, not by a walk over the whole list, and shared, so that
//! taking one out of the hold is a reference count, not six strings
//! copied.

use std::collections::VecDeque;
use std::sync::Arc;

use super::maps::HashMap;

#[derive(Debug)]
pub struct WhowasEntry {
    pub nick: String,
    pub user: String,
    pub host: String,
    pub realname: String,
    pub server: String,
    pub left_at: u64,
}

#[derive(Debug, Default)]
pub struct Whowas {
    limit: usize,
    /// The folded nick of every entry, newest first: the last one is the
    /// entry forgotten next.
    order: VecDeque<Arc<str>>,
    /// Each folded nick's entries, newest first.
    by_nick: HashMap<Arc<str>, VecDeque<Arc<WhowasEntry>>>,
}

impl Whowas {
    /// A list that keeps at most `limit` entries (0: none).
    pub fn new(limit: usize) -> Whowas {
        Whowas {
            limit,
            ..Whowas::default()
        }
    }

    /// Remembers `entry`, under the folded nick `folded`, forgetting the
    /// oldest entry if the list is full.
    pub fn remember(&mut self, folded: &str, entry: WhowasEntry) {
        if self.limit == 0 {
            return;
        }
        if self.order.len() >= self.limit {
            self.forget_oldest();
        }
        // The nick is kept once, shared by the map and the order.
        let key = match self.by_nick.get_key_value(folded) {
            Some((key, _)) => key.clone(),
            None => Arc::from(folded),
        };
        let entries = self.by_nick.entry(key.clone()).or_default();
        entries.push_front(Arc::new(entry));
        self.order.push_front(key);
    }

    /// The oldest entry is its nick's oldest too: both lists are in the
    /// order the entries came.
    fn forget_oldest(&mut self) {
        let Some(folded) = self.order.pop_back() else {
            return;
        };
        if let Some(entries) = self.by_nick.get_mut(&folded) {
            entries.pop_back();
            if entries.is_empty() {
                self.by_nick.remove(&folded);
            }
        }
    }

    /// The newest `count` entries (at most) of the folded nick `folded`,
    /// newest first.
    pub fn find(&self, folded: &str, count: usize) -> Vec<Arc<WhowasEntry>> {
        self.by_nick
            .get(folded)
            .map(|entries| entries.iter().take(count).cloned().collect())
            .unwrap_or_default()
    }

    /// Entries remembered.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(nick: &str, left_at: u64) -> WhowasEntry {
        WhowasEntry {
            nick: nick.to_owned(),
            user: "~u".to_owned(),
            host: "h".to_owned(),
            realname: "r".to_owned(),
            server: "s".to_owned(),
            left_at,
        }
    }

    fn times(whowas: &Whowas, folded: &str, count: usize) -> Vec<u64> {
        whowas
            .find(folded, count)
            .iter()
            .map(|e| e.left_at)
            .collect()
    }

    #[test]
    fn entries_are_found_by_nick_newest_first_up_to_the_count() {
        let mut whowas = Whowas::new(10);
        for (at, nick) in ["a", "b", "a", "c", "a"].into_iter().enumerate() {
            whowas.remember(nick, entry(nick, at as u64));
        }
        assert_eq!(times(&whowas, "a", 10), [4, 2, 0]);
        assert_eq!(times(&whowas, "a", 2), [4, 2]);
        assert_eq!(times(&whowas, "b", 10), [1]);
        assert!(whowas.find("d", 10).is_empty());
        assert_eq!(whowas.len(), 5);
    }

    #[test]
    fn the_oldest_entry_is_forgotten_whatever_its_nick() {
        let mut whowas = Whowas::new(3);
        for (at, nick) in ["a", "b", "a", "b", "c"].into_iter().enumerate() {
            whowas.remember(nick, entry(nick, at as u64));
        }
        assert_eq!(whowas.len(), 3);
        assert_eq!(times(&whowas, "a", 10), [2]);
        assert_eq!(times(&whowas, "b", 10), [3]);
        assert_eq!(times(&whowas, "c", 10), [4]);
        // A nick whose last entry went is forgotten altogether.
        for at in 5..8 {
            whowas.remember("d", entry("d", at));
        }
        assert!(whowas.find("a", 10).is_empty());
        assert_eq!(whowas.by_nick.len(), 1);
        assert_eq!(times(&whowas, "d", 10), [7, 6, 5]);
    }

    #[test]
    fn a_limit_of_zero_keeps_nothing() {
        let mut whowas = Whowas::new(0);
        whowas.remember("a", entry("a", 1));
        assert!(whowas.is_empty());
        assert!(whowas.find("a", 10).is_empty());
    }
}
