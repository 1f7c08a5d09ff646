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

/// Names kept in the form they were given in, keyed by their casefolded
/// form (MONITOR's list, which `MONITOR L` shows as it was added): like a
/// [`SparseSet`], one pointer until it has a member. Iterating gives the
/// casefolded keys.
#[derive(Debug, Default)]
pub struct SparseNames(Option<Box<HashMap<String, Box<str>>>>);

/// The casefolded keys of a [`SparseNames`].
pub type FoldedNames<'a> = std::iter::Flatten<
    std::option::IntoIter<std::collections::hash_map::Keys<'a, String, Box<str>>>,
>;

impl SparseNames {
    pub fn contains(&self, folded: &str) -> bool {
        self.0
            .as_ref()
            .is_some_and(|names| names.contains_key(folded))
    }

    /// Adds `given` under `folded`; `false`, keeping the form it was first
    /// given in, if the name was there already.
    pub fn insert(&mut self, folded: String, given: &str) -> bool {
        match self.0.get_or_insert_default().entry(folded) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(entry) => {
                entry.insert(given.into());
                true
            }
        }
    }

    /// Removes the name, giving the room back once none is left.
    pub fn remove(&mut self, folded: &str) -> bool {
        let Some(names) = self.0.as_mut() else {
            return false;
        };
        let removed = names.remove(folded).is_some();
        if names.is_empty() {
            self.0 = None;
        }
        removed
    }

    pub fn clear(&mut self) {
        self.0 = None;
    }

    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |names| names.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The casefolded names.
    pub fn iter(&self) -> FoldedNames<'_> {
        self.0.as_deref().map(HashMap::keys).into_iter().flatten()
    }

    /// The names as they were given.
    pub fn given(&self) -> impl Iterator<Item = &str> {
        self.0
            .as_deref()
            .into_iter()
            .flat_map(|names| names.values().map(|name| &**name))
    }
}

impl<'a> IntoIterator for &'a SparseNames {
    type Item = &'a String;
    type IntoIter = FoldedNames<'a>;

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

    #[test]
    fn sparse_names_keep_the_form_first_given_under_the_folded_key() {
        let mut names = SparseNames::default();
        assert!(names.0.is_none() && names.is_empty() && !names.contains("bob"));
        assert!(names.insert("bob".to_owned(), "Bob"));
        assert!(!names.insert("bob".to_owned(), "BOB"));
        assert!(names.insert("carol".to_owned(), "carol"));
        assert_eq!(names.len(), 2);
        assert!(names.contains("bob") && !names.contains("Bob"));
        let mut given: Vec<&str> = names.given().collect();
        given.sort_unstable();
        assert_eq!(given, ["Bob", "carol"]);
        let mut folded: Vec<&String> = (&names).into_iter().collect();
        folded.sort_unstable();
        assert_eq!(folded, ["bob", "carol"]);
        assert!(names.remove("bob") && !names.remove("bob"));
        assert!(names.remove("carol"));
        assert!(names.0.is_none(), "emptied names give their room back");
        names.insert("dave".to_owned(), "Dave");
        names.clear();
        assert!(names.is_empty() && names.given().next().is_none());
    }
}
