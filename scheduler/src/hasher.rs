//! A fast, non-cryptographic hasher for the scheduler's key maps (the Fx hash used
//! by rustc). Keys are named by the shell, not by an adversary, so SipHash's
//! protection against collision attacks is not worth its cost on the hot path.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` using [`FxHasher`].
pub(crate) type FxHashMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Fx: per word, rotate, xor and multiply.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

const SEED: u64 = 0xf135_7aea_2e62_a9c5;

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word) ^ (rest.len() as u64) << 59);
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        // The multiply leaves its best bits high; hash tables index with the low ones.
        self.0.rotate_left(26)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;
    use tessera_core::Key;

    fn hash(key: &Key) -> u64 {
        BuildHasherDefault::<FxHasher>::default().hash_one(key)
    }

    #[test]
    fn similar_keys_spread_over_low_bits() {
        let mut buckets = [0u32; 256];
        for i in 0..4096u64 {
            buckets[(hash(&Key::new("sum-3f2a", [i, 0])) & 255) as usize] += 1;
        }
        assert!(buckets.iter().all(|&b| (4..=40).contains(&b)), "{buckets:?}");
        assert_ne!(hash(&Key::new("ab", [1])), hash(&Key::new("a", [1])));
        assert_ne!(hash(&Key::new("x", [1, 2])), hash(&Key::new("x", [2, 1])));
    }
}
