//! Keys name the values of a graph: a collection name plus a block index.

use serde::{Deserialize, Serialize, Serializer};
use std::cmp::Ordering;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::Arc;

/// The name of one value in a graph: the collection it belongs to and its block index.
///
/// `Key::new("sum-3f2a", [1, 0])` is block (1, 0) of collection `sum-3f2a`; a scalar
/// result has an empty index. A key is a hash and a reference-counted pointer to its
/// name and index, so cloning one (which the engines do for every edge of a graph)
/// allocates nothing and touches one counter of that key alone, and hashing one (which
/// they do several times per task) reads nothing behind the pointer.
#[derive(Clone, Deserialize)]
#[serde(from = "KeyParts")]
pub struct Key {
    /// Hash of name and index, computed once by [`Key::new`].
    hash: u64,
    parts: Arc<KeyParts>,
}

/// What a [`Key`] names, and its serialised form. Ordered by name, then index.
#[derive(PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename = "Key")]
struct KeyParts {
    name: Arc<str>,
    index: Box<[u64]>,
}

impl From<KeyParts> for Key {
    fn from(parts: KeyParts) -> Self {
        Key::new(parts.name, parts.index)
    }
}

impl Serialize for Key {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut parts = serializer.serialize_struct("Key", 2)?;
        parts.serialize_field("name", &self.parts.name)?;
        parts.serialize_field("index", &self.parts.index)?;
        parts.end()
    }
}

impl Key {
    /// A key for block `index` of collection `name`.
    pub fn new(name: impl Into<Arc<str>>, index: impl Into<Box<[u64]>>) -> Self {
        let (name, index) = (name.into(), index.into());
        let hash = rustc_hash::FxBuildHasher.hash_one((&*name, &*index));
        Key { hash, parts: Arc::new(KeyParts { name, index }) }
    }

    /// The collection (layer) the key belongs to.
    pub fn name(&self) -> &Arc<str> {
        &self.parts.name
    }

    /// The block index within the collection.
    pub fn index(&self) -> &[u64] {
        &self.parts.index
    }
}

impl PartialEq for Key {
    /// Equal names and indices. Keys of different content almost always differ in
    /// hash, so the parts are compared only when the hashes match (and `Arc`'s equality
    /// skips that for clones of one key, or names of one collection).
    fn eq(&self, other: &Key) -> bool {
        self.hash == other.hash && self.parts == other.parts
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Key) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    /// By name, then by index.
    fn cmp(&self, other: &Key) -> Ordering {
        self.parts.cmp(&other.parts)
    }
}

impl std::hash::Hash for Key {
    /// Writes the hash computed from what [`PartialEq`] compares: name and index.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
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
        write!(f, "{}", self.name())?;
        if !self.index().is_empty() {
            write!(f, "(")?;
            for (i, v) in self.index().iter().enumerate() {
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
    fn a_key_read_back_from_the_wire_equals_and_hashes_as_the_original() {
        use std::hash::BuildHasher;
        let key = Key::new("sum-3f2a", [4, 2]);
        let bytes = postcard::to_allocvec(&key).unwrap();
        assert_eq!(
            bytes,
            postcard::to_allocvec(&("sum-3f2a", &[4u64, 2][..])).unwrap(),
            "only name and index are sent"
        );
        let back: Key = postcard::from_bytes(&bytes).unwrap();
        let hash = |k: &Key| rustc_hash::FxBuildHasher.hash_one(k);
        assert!(back == key && hash(&back) == hash(&key));
        let json: Key = serde_json::from_str(&serde_json::to_string(&key).unwrap()).unwrap();
        assert!(json == key && hash(&json) == hash(&key));
    }

    #[test]
    fn display_shows_name_and_index() {
        assert_eq!(Key::new("x", [1, 2]).to_string(), "x(1,2)");
        assert_eq!(Key::new("total", []).to_string(), "total");
    }
}
