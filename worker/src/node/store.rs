//! [`Store`]: the results a worker holds, shared by its task loop and its data server.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tessera_core::{Key, Value};

/// Results held in memory, by key, with their total size.
#[derive(Default)]
pub struct Store {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    values: HashMap<Key, Arc<Value>>,
    bytes: u64,
}

impl Store {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps `value` as the result of `key` (replacing an older one).
    pub fn insert(&self, key: Key, value: Arc<Value>) {
        let mut inner = self.lock();
        inner.bytes += value.nbytes() as u64;
        if let Some(old) = inner.values.insert(key, value) {
            inner.bytes -= old.nbytes() as u64;
        }
    }

    /// The value of `key`, if held.
    pub fn get(&self, key: &Key) -> Option<Arc<Value>> {
        self.lock().values.get(key).cloned()
    }

    /// Drops the value of `key`.
    pub fn remove(&self, key: &Key) {
        let mut inner = self.lock();
        if let Some(old) = inner.values.remove(key) {
            inner.bytes -= old.nbytes() as u64;
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.lock().bytes
    }

    /// Number of values held.
    pub fn len(&self) -> usize {
        self.lock().values.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
