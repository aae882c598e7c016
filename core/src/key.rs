//! Keys name the values of a graph: a collection name plus a block index.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// The name of one value in a graph: the collection it belongs to and its block index.
///
/// `Key::new("sum-3f2a", [1, 0])` is block (1, 0) of collection `sum-3f2a`; a scalar
/// result has an empty index. Name and index are reference-counted, so cloning a key
/// (which the engines do for every edge of a graph) allocates nothing.
#[derive(Clone, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Key {
    /// The collection (layer) the key belongs to.
    pub name: Arc<str>,
    /// The block index within the collection.
    pub index: Arc<[u64]>,
}

impl Key {
    /// A key for block `index` of collection `name`.
    pub fn new(name: impl Into<Arc<str>>, index: impl Into<Arc<[u64]>>) -> Self {
        Key { name: name.into(), index: index.into() }
    }
}

impl PartialEq for Key {
    /// Equal names and indices. Keys of one collection usually share their name's
    /// allocation, so the name's bytes are compared only when the pointers differ.
    fn eq(&self, other: &Key) -> bool {
        (Arc::ptr_eq(&self.name, &other.name) || self.name == other.name) && self.index == other.index
    }
}

impl std::hash::Hash for Key {
    /// Hashes what [`PartialEq`] compares: the name's bytes and the index.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.index.hash(state);
    }
}

/// Each key of `keys` once, in the order first seen (a task's dependencies may repeat
/// a key). Linear in `keys`: a short list is scanned, a long one goes through a set.
pub fn distinct(keys: &[Key]) -> impl Iterator<Item = &Key> {
    /// Up to this many keys, scanning the ones before is faster than hashing.
    const SCAN: usize = 16;
    let mut seen = rustc_hash::FxHashSet::default();
    keys.iter()
        .enumerate()
        .filter(move |&(i, k)| if keys.len() <= SCAN { !keys[..i].contains(k) } else { seen.insert(k) })
        .map(|(_, k)| k)
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)?;
        if !self.index.is_empty() {
            write!(f, "(")?;
            for (i, v) in self.index.iter().enumerate() {
                if i > 0 {
                    write!(f, ",")?;
                }
                write!(f, "{v}")?;
            }
            write!(f, ")")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_keeps_first_occurrences_in_order() {
        let k = |i: u64| Key::new("x", [i % 7]);
        for n in [3, 40] {
            let keys: Vec<Key> = (0..n).map(k).collect();
            let expected: Vec<Key> = (0..n.min(7)).map(k).collect();
            assert_eq!(distinct(&keys).cloned().collect::<Vec<_>>(), expected, "{n} keys");
        }
    }

    #[test]
    fn keys_are_equal_by_content_whether_or_not_they_share_their_name() {
        use std::hash::BuildHasher;
        let shared: Arc<str> = "x".into();
        let hash = |k: &Key| rustc_hash::FxBuildHasher.hash_one(k);
        let (a, b, c) = (Key::new(shared.clone(), [1]), Key::new(shared, [1]), Key::new("x", [1]));
        assert!(a == b && a == c && hash(&a) == hash(&c));
        assert_ne!(a, Key::new("x", [2]));
        assert_ne!(a, Key::new("y", [1]));
    }

    #[test]
    fn display_shows_name_and_index() {
        assert_eq!(Key::new("x", [1, 2]).to_string(), "x(1,2)");
        assert_eq!(Key::new("total", []).to_string(), "total");
    }
}
