//! The hash maps and sets of the network state.
//!
//! Keyed by foldhash instead of the standard SipHash: several times faster
//! on the short keys looked up for every message (nicks, channel names,
//! client ids). Its `quality` variant is seeded per process, like SipHash,
//! so names that all collide cannot be worked out in advance.

pub type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::quality::RandomState>;
pub type HashSet<T> = std::collections::HashSet<T, foldhash::quality::RandomState>;

/// A set of names most clients never fill (invitations, MONITOR): one
/// pointer until it has a member, where a [`HashSet`] takes 40 bytes in
/// every idle client.
#[derive(Debug, Default)]
pub struct SparseSet(Option<Box<HashSet<String>>>);

impl SparseSet {
    pub fn contains(&self, name: &str) -> bool {
        self.0.as_ref().is_some_and(|set| set.contains(name))
    }

    /// Adds `name`; `false` if it was there already.
    pub fn insert(&mut self, name: String) -> bool {
        self.0.get_or_insert_default().insert(name)
    }

    /// Removes `name`, giving the set's room back once it is empty.
    pub fn remove(&mut self, name: &str) -> bool {
        let Some(set) = self.0.as_mut() else {
            return false;
        };
        let removed = set.remove(name);
        if set.is_empty() {
            self.0 = None;
        }
        removed
    }

    pub fn clear(&mut self) {
        self.0 = None;
    }

    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |set| set.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn iter(&self) -> std::iter::Flatten<std::option::IntoIter<&HashSet<String>>> {
        self.0.as_deref().into_iter().flatten()
    }
}

impl<'a> IntoIterator for &'a SparseSet {
    type Item = &'a String;
    type IntoIter = std::iter::Flatten<std::option::IntoIter<&'a HashSet<String>>>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sparse_set_holds_nothing_until_it_has_a_member() {
        let mut set = SparseSet::default();
        assert!(set.0.is_none() && set.is_empty() && !set.contains("a"));
        assert!(set.insert("a".to_owned()));
        assert!(!set.insert("a".to_owned()));
        assert!(set.insert("b".to_owned()));
        assert_eq!(set.len(), 2);
        assert!(set.contains("b"));
        assert!(set.remove("a") && !set.remove("a"));
        assert_eq!(set.iter().collect::<Vec<_>>(), ["b"]);
        assert!(set.remove("b"));
        assert!(set.0.is_none(), "an emptied set gives its room back");
        assert!(!set.remove("b"));
    }
}
