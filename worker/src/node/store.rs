//! [`Store`]: the results a worker holds, shared by its task loop and its data server.
//!
//! With a spill directory, the store keeps at most `target` bytes in memory: when an
//! insert goes past it, the least recently used results are written to disk and
//! dropped from memory; reading a spilled result loads it back (and may spill others).
//! Spilled files are private to this store and deleted when their result is removed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use tessera_core::{Error, Key, Result, Value};

/// Where and above what size results go to disk.
#[derive(Clone, Debug)]
pub struct SpillPolicy {
    /// A directory for this store alone.
    pub dir: PathBuf,
    /// Bytes of results to keep in memory at most (the worker's target fraction of its
    /// memory limit).
    pub target_bytes: u64,
}

/// Results held in memory or spilled to disk, by key.
#[derive(Default)]
pub struct Store {
    inner: Mutex<Inner>,
    spill: Option<SpillPolicy>,
}

#[derive(Default)]
struct Inner {
    /// In-memory results with the tick of their last use.
    memory: HashMap<Key, (Arc<Value>, u64)>,
    /// Spilled results: their file and size.
    on_disk: HashMap<Key, (PathBuf, u64)>,
    memory_bytes: u64,
    spilled_bytes: u64,
    /// Use counter, for least-recently-used order; also names spill files.
    tick: u64,
}

impl Store {
    /// A store that spills to `policy.dir` above `policy.target_bytes`.
    pub fn spilling(policy: SpillPolicy) -> Store {
        Store { inner: Mutex::default(), spill: Some(policy) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps `value` as the result of `key` (replacing an older one), spilling older
    /// results if memory is over the target.
    pub fn insert(&self, key: Key, value: Arc<Value>) {
        let mut inner = self.lock();
        inner.forget(&key);
        inner.keep(key, value);
        self.spill_over_target(&mut inner);
    }

    /// The value of `key`, if held; a spilled value is read back into memory. An error
    /// when its spill file cannot be read.
    pub fn get(&self, key: &Key) -> Result<Option<Arc<Value>>> {
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        if let Some((value, used)) = inner.memory.get_mut(key) {
            *used = tick;
            return Ok(Some(value.clone()));
        }
        let Some((path, nbytes)) = inner.on_disk.remove(key) else { return Ok(None) };
        inner.spilled_bytes -= nbytes;
        let value = read_spilled(&path);
        let _ = std::fs::remove_file(&path);
        let value = Arc::new(value.map_err(|e| Error::Engine(format!("cannot read spilled result {key}: {e}")))?);
        inner.keep(key.clone(), value.clone());
        self.spill_over_target(&mut inner);
        Ok(Some(value))
    }

    /// Drops the value of `key` (from memory or disk).
    pub fn remove(&self, key: &Key) {
        self.lock().forget(key);
    }

    /// Bytes held in memory.
    pub fn bytes(&self) -> u64 {
        self.lock().memory_bytes
    }

    /// Bytes of results spilled to disk.
    pub fn spilled_bytes(&self) -> u64 {
        self.lock().spilled_bytes
    }

    /// Number of results held, in memory or on disk.
    pub fn len(&self) -> usize {
        let inner = self.lock();
        inner.memory.len() + inner.on_disk.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes least recently used results to disk until memory is within the target.
    /// A result that cannot be written stays in memory (and the failure is logged).
    fn spill_over_target(&self, inner: &mut Inner) {
        let Some(policy) = &self.spill else { return };
        while inner.memory_bytes > policy.target_bytes {
            let Some(victim) = inner.memory.iter().min_by_key(|(_, (_, used))| *used).map(|(k, _)| k.clone()) else {
                return;
            };
            let (value, _) = inner.memory.remove(&victim).expect("the victim is in memory");
            let nbytes = value.nbytes() as u64;
            inner.tick += 1;
            let path = policy.dir.join(format!("{}.spill", inner.tick));
            match write_spilled(&path, &value) {
                Ok(()) => {
                    inner.memory_bytes -= nbytes;
                    inner.spilled_bytes += nbytes;
                    inner.on_disk.insert(victim, (path, nbytes));
                }
                Err(e) => {
                    tracing::error!(key = %victim, "cannot spill to {}: {e}", path.display());
                    let _ = std::fs::remove_file(&path);
                    let tick = inner.tick;
                    inner.memory.insert(victim, (value, tick));
                    return;
                }
            }
        }
    }
}

impl Inner {
    fn keep(&mut self, key: Key, value: Arc<Value>) {
        self.tick += 1;
        self.memory_bytes += value.nbytes() as u64;
        self.memory.insert(key, (value, self.tick));
    }

    fn forget(&mut self, key: &Key) {
        if let Some((old, _)) = self.memory.remove(key) {
            self.memory_bytes -= old.nbytes() as u64;
        }
        if let Some((path, nbytes)) = self.on_disk.remove(key) {
            self.spilled_bytes -= nbytes;
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        for (path, _) in self.lock().on_disk.values() {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn write_spilled(path: &std::path::Path, value: &Value) -> std::io::Result<()> {
    let bytes = postcard::to_stdvec(value).map_err(std::io::Error::other)?;
    std::fs::write(path, bytes)
}

fn read_spilled(path: &std::path::Path) -> std::io::Result<Value> {
    let bytes = std::fs::read(path)?;
    postcard::from_bytes(&bytes).map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_core::Chunk;

    fn block(seed: f64) -> Arc<Value> {
        Arc::new(Value::Chunk(Chunk::from_array(ndarray::Array1::from_elem(1000, seed).into_dyn())))
    }

    #[test]
    fn results_past_the_target_go_to_disk_and_come_back_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        // Room for two 8000-byte blocks.
        let store = Store::spilling(SpillPolicy { dir: dir.path().to_path_buf(), target_bytes: 16_000 });
        for i in 0..5 {
            store.insert(Key::new("x", [i]), block(i as f64));
        }
        assert_eq!(store.len(), 5);
        assert_eq!(store.bytes(), 16_000);
        assert_eq!(store.spilled_bytes(), 24_000);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
        // The oldest went first; reading it back spills the least recently used other.
        assert_eq!(store.get(&Key::new("x", [0])).unwrap().unwrap(), block(0.0));
        assert_eq!(store.bytes(), 16_000);
        assert_eq!(store.spilled_bytes(), 24_000);
        for i in 0..5 {
            assert_eq!(store.get(&Key::new("x", [i])).unwrap().unwrap(), block(i as f64), "block {i}");
        }
        for i in 0..5 {
            store.remove(&Key::new("x", [i]));
        }
        assert!(store.is_empty());
        assert_eq!((store.bytes(), store.spilled_bytes()), (0, 0));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "spill files are deleted with their results");
    }

    #[test]
    fn a_store_without_a_spill_directory_keeps_everything_in_memory() {
        let store = Store::default();
        for i in 0..5 {
            store.insert(Key::new("x", [i]), block(i as f64));
        }
        assert_eq!((store.bytes(), store.spilled_bytes()), (40_000, 0));
    }

    #[test]
    fn an_unwritable_spill_directory_keeps_results_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("gone");
        let store = Store::spilling(SpillPolicy { dir: missing, target_bytes: 1 });
        store.insert(Key::new("x", [0]), block(1.0));
        assert_eq!(store.get(&Key::new("x", [0])).unwrap().unwrap(), block(1.0));
        assert_eq!(store.spilled_bytes(), 0);
    }
}
