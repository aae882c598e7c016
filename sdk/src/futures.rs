//! Futures: results that stay on the engine until the client lets go of them.
//!
//! [`Client::submit`] starts a computation and returns a [`Future`] at once; its value
//! is computed in the background and stays on the engine (on a worker, for a cluster)
//! while any clone of the future, or any graph built on it ([`Future::to_delayed`]),
//! is alive. [`Client::gather`], [`wait`] and [`as_completed`] collect them, as in
//! `dask.distributed`.
//!
//! Underneath, every submission is a [`Batch`]: one engine ticket wanting some keys,
//! and the news the engine sends about them.

use crate::Client;
use crate::client::{Engine, Location, News, Ticket};
use crate::delayed::{self, Delayed};
use crossbeam_channel::{Receiver, RecvTimeoutError, Select};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tessera_core::{Error, Graph, Held, Key, NativeFn, Op, Result, Task, Value};

/// How often values whose holder died are asked for again before giving up.
const MAX_FETCH_RETRIES: u32 = 20;

/// The pause before asking again, times the attempt number (the engine needs a moment
/// to notice a dead worker).
const FETCH_BACKOFF: Duration = Duration::from_millis(50);

/// How long a waiting thread blocks on the news channel before looking at what other
/// threads received.
const NEWS_POLL: Duration = Duration::from_millis(20);

/// One submission: the keys one engine ticket wants, and what is known of them. The
/// engine keeps the keys until the batch is dropped (or they are cancelled).
pub(crate) struct Batch {
    engine: Arc<dyn Engine>,
    ticket: Ticket,
    news: Receiver<News>,
    known: Mutex<HashMap<Key, Result<Location>>>,
}

impl Batch {
    /// Submits `graph` (culled, fused, without held tasks) for `keys`.
    pub(crate) fn submit(engine: Arc<dyn Engine>, graph: Graph, keys: &[Key]) -> Result<Arc<Batch>> {
        let (ticket, news) = engine.submit(graph, keys)?;
        Ok(Batch::of(engine, ticket, news))
    }

    /// Puts `values` on the engine under their keys.
    pub(crate) fn scatter(engine: Arc<dyn Engine>, values: Vec<(Key, Arc<Value>)>) -> Result<Arc<Batch>> {
        let (ticket, news) = engine.scatter(values)?;
        Ok(Batch::of(engine, ticket, news))
    }

    fn of(engine: Arc<dyn Engine>, ticket: Ticket, news: Receiver<News>) -> Arc<Batch> {
        Arc::new(Batch { engine, ticket, news, known: Mutex::default() })
    }

    fn known(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Result<Location>>> {
        self.known.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the news that has arrived, without blocking.
    fn drain(&self) {
        let mut known = self.known();
        for (key, result) in self.news.try_iter() {
            known.insert(key, result);
        }
    }

    /// True when news of `key` has arrived.
    fn is_done(&self, key: &Key) -> bool {
        self.drain();
        self.known().contains_key(key)
    }

    /// Blocks until news of every key in `keys` has arrived.
    fn wait(&self, keys: &[Key]) -> Result<()> {
        self.drain();
        let mut missing: HashSet<&Key> = {
            let known = self.known();
            keys.iter().filter(|k| !known.contains_key(*k)).collect()
        };
        while !missing.is_empty() {
            match self.news.recv_timeout(NEWS_POLL) {
                Ok((key, result)) => {
                    missing.remove(&key);
                    self.known().insert(key, result);
                }
                Err(RecvTimeoutError::Timeout) => {
                    // Another thread waiting on this batch may have taken the news.
                    let known = self.known();
                    missing.retain(|k| !known.contains_key(*k));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(Error::Connection("the engine stopped before the results were ready".into()));
                }
            }
        }
        Ok(())
    }

    /// Waits for `keys` and fetches their values, in order; the first failed key's
    /// error otherwise. Values whose holder died before they were fetched are asked
    /// for again (the engine recomputes them).
    pub(crate) fn values(&self, keys: &[Key]) -> Result<Vec<Arc<Value>>> {
        let mut values = HashMap::with_capacity(keys.len());
        let mut pending: Vec<Key> = keys.to_vec();
        for attempt in 0..=MAX_FETCH_RETRIES {
            self.wait(&pending)?;
            let located = {
                let known = self.known();
                let mut located = Vec::with_capacity(pending.len());
                for key in &pending {
                    match &known[key] {
                        Ok(location) => located.push((key.clone(), location.clone())),
                        Err(e) => return Err(e.clone()),
                    }
                }
                located
            };
            let (fetched, lost) = self.engine.fetch(located);
            values.extend(fetched);
            if lost.is_empty() {
                return keys
                    .iter()
                    .map(|k| values.get(k).cloned().ok_or_else(|| Error::Engine(format!("no value for {k}"))))
                    .collect();
            }
            {
                let mut known = self.known();
                lost.iter().for_each(|k| {
                    known.remove(k);
                });
            }
            std::thread::sleep(FETCH_BACKOFF * (attempt + 1));
            self.engine.resubmit(self.ticket, &lost)?;
            pending = lost;
        }
        Err(Error::Connection(format!("could not fetch {} from any worker", pending[0])))
    }

    /// Lets the engine forget `keys` (unless other tickets want them); waiting for
    /// them afterwards fails with "cancelled".
    fn cancel(&self, keys: &[Key]) {
        self.engine.release(self.ticket, keys);
        let mut known = self.known();
        for key in keys {
            known.insert(key.clone(), Err(Error::Engine(format!("{key} was cancelled"))));
        }
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        self.engine.close(self.ticket);
    }
}

/// A value being computed (or computed) on the engine, kept there while the future
/// (or a clone of it, or a graph built on it) is alive.
#[derive(Clone)]
pub struct Future {
    batch: Arc<Batch>,
    key: Key,
}

impl std::fmt::Debug for Future {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = if self.done() { "finished" } else { "pending" };
        write!(f, "Future<{}, {status}>", self.key)
    }
}

impl Future {
    /// The key of the value.
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// True once the value is computed, or its task failed or was cancelled.
    pub fn done(&self) -> bool {
        self.batch.is_done(&self.key)
    }

    /// Waits for the value and fetches it; the task's error if it failed.
    pub fn result(&self) -> Result<Arc<Value>> {
        let mut values = self.batch.values(std::slice::from_ref(&self.key))?;
        values.pop().ok_or_else(|| Error::Engine(format!("no value for {}", self.key)))
    }

    /// Stops computing the value (if nothing else wants it) and lets the engine drop
    /// it; [`Future::result`] then fails with "cancelled".
    pub fn cancel(&self) {
        self.batch.cancel(std::slice::from_ref(&self.key));
    }

    /// A lazy value reading this future's value, for building more work on it (as
    /// `client.submit(f, future)` does in Dask). The graph keeps the value alive.
    pub fn to_delayed(&self) -> Delayed {
        let mut graph = Graph::new();
        graph.insert(self.key.clone(), Task::new(Op::Held(Held(self.batch.clone())), vec![]));
        Delayed::from_graph(self.key.clone(), graph)
    }
}

impl Client {
    /// Starts computing `value` and returns its future at once.
    pub fn submit(&self, value: &Delayed) -> Result<Future> {
        Ok(self.submit_all(std::slice::from_ref(value))?.remove(0))
    }

    /// Starts computing every value in one submission (shared work runs once).
    pub fn submit_all(&self, values: &[Delayed]) -> Result<Vec<Future>> {
        let mut graph = Graph::new();
        for v in values {
            graph.merge(v.graph());
        }
        let keys: Vec<Key> = values.iter().map(|v| v.key().clone()).collect();
        let (batch, _) = self.submit_keys(&graph, &keys)?;
        Ok(keys.into_iter().map(|key| Future { batch: batch.clone(), key }).collect())
    }

    /// Computes `keys` of `graph` and keeps their values on the engine; returns a task
    /// per key that stands for the held value (for a persisted collection's graph).
    pub(crate) fn persist_keys(&self, graph: &Graph, keys: &[Key]) -> Result<Vec<(Key, Task)>> {
        let (batch, _) = self.submit_keys(graph, keys)?;
        batch.wait(keys)?;
        if let Some(Err(error)) = keys.iter().find_map(|k| batch.known().get(k).filter(|r| r.is_err()).cloned()) {
            return Err(error);
        }
        let held = Held(batch);
        Ok(keys.iter().map(|k| (k.clone(), Task::new(Op::Held(held.clone()), vec![]))).collect())
    }

    /// Turns values held by other clients' engines in `graph` into literals fetched from
    /// those engines, so work built on another client's futures or persisted arrays runs
    /// here too. Values held by this client's engine stay where they are.
    pub(crate) fn adopt_held(&self, graph: Graph) -> Result<Graph> {
        let mut foreign: HashMap<*const Batch, (Arc<Batch>, Vec<Key>)> = HashMap::new();
        for (key, task) in graph.iter() {
            if let Op::Held(Held(guard)) = &task.op
                && let Ok(batch) = guard.clone().downcast::<Batch>()
                && !self.runs_on(&batch.engine)
            {
                foreign.entry(Arc::as_ptr(&batch)).or_insert_with(|| (batch, Vec::new())).1.push(key.clone());
            }
        }
        if foreign.is_empty() {
            return Ok(graph);
        }
        let mut graph = graph;
        for (batch, keys) in foreign.into_values() {
            for (key, value) in keys.iter().zip(batch.values(&keys)?) {
                graph.insert(key.clone(), Task::new(Op::Literal(value), vec![]));
            }
        }
        Ok(graph)
    }

    /// Calls `f` on every item in parallel, one task per item (a native closure: the
    /// local engine only; map a WASM task with [`Client::map_task`] on a cluster).
    pub fn map(
        &self,
        name: &str,
        f: impl Fn(&Value) -> Result<Value> + Send + Sync + 'static,
        items: impl IntoIterator<Item = Value>,
    ) -> Result<Vec<Future>> {
        let f = NativeFn::new(name, false, move |args: &[&Value]| f(args[0]));
        let calls: Vec<Delayed> = items
            .into_iter()
            .map(|item| delayed::apply(name, Op::Native(f.clone()), &[&delayed::value(item)]))
            .collect();
        self.submit_all(&calls)
    }

    /// Calls the WASM `task` with `params` on every input in parallel, one task per
    /// input, on any engine (Dask's `client.map`). Inputs are lazy values: literals
    /// ([`delayed::value`]) or futures ([`Future::to_delayed`]), such as scattered data.
    #[cfg(feature = "local")]
    pub fn map_task(
        &self,
        task: &crate::wasm::TaskFn,
        params: &serde_json::Value,
        inputs: impl IntoIterator<Item = Delayed>,
    ) -> Result<Vec<Future>> {
        let calls: Vec<Delayed> = inputs.into_iter().map(|input| task.call(params, &[&input])).collect();
        self.submit_all(&calls)
    }

    /// Puts values on the engine and returns their futures, to pass to later work
    /// without sending the data again. On a cluster the client sends each value straight
    /// to a worker (round robin over the workers' threads); nothing can compute a
    /// scattered value again, so one lost with its workers fails its future (unless it
    /// was [broadcast](Client::broadcast) or [replicated](Client::replicate)).
    pub fn scatter(&self, values: impl IntoIterator<Item = Value>) -> Result<Vec<Future>> {
        let name = crate::array::layer_name("scatter");
        let values: Vec<(Key, Arc<Value>)> =
            values.into_iter().enumerate().map(|(i, v)| (Key::new(name.clone(), [i as u64]), Arc::new(v))).collect();
        let keys: Vec<Key> = values.iter().map(|(k, _)| k.clone()).collect();
        let batch = self.scatter_keys(values)?;
        Ok(keys.into_iter().map(|key| Future { batch: batch.clone(), key }).collect())
    }

    /// Puts values on every worker (Dask's `scatter(..., broadcast=True)`): scattered,
    /// then copied to each worker, so tasks reading them anywhere find them locally.
    /// The copies are made in the background; until one lands, tasks fetch the value.
    pub fn broadcast(&self, values: impl IntoIterator<Item = Value>) -> Result<Vec<Future>> {
        let futures = self.scatter(values)?;
        self.replicate(&futures)?;
        Ok(futures)
    }

    /// Copies the values of `futures` to every worker once computed (Dask's
    /// `replicate`), so a worker's loss does not lose them and tasks anywhere read
    /// them locally. Waits for the futures; an error if one of them failed.
    pub fn replicate(&self, futures: &[Future]) -> Result<()> {
        let mut keys = Vec::with_capacity(futures.len());
        for f in futures {
            f.batch.wait(std::slice::from_ref(&f.key))?;
            if let Some(Err(error)) = f.batch.known().get(&f.key) {
                return Err(error.clone());
            }
            keys.push(f.key.clone());
        }
        self.engine().replicate(&keys)
    }

    /// Waits for every future and fetches the values, in order; the first error
    /// otherwise. Futures of one submission are fetched together.
    pub fn gather(&self, futures: &[Future]) -> Result<Vec<Arc<Value>>> {
        let mut by_batch: HashMap<*const Batch, (&Arc<Batch>, Vec<Key>)> = HashMap::new();
        for f in futures {
            by_batch.entry(Arc::as_ptr(&f.batch)).or_insert_with(|| (&f.batch, Vec::new())).1.push(f.key.clone());
        }
        let mut values: HashMap<(*const Batch, Key), Arc<Value>> = HashMap::with_capacity(futures.len());
        for (ptr, (batch, keys)) in by_batch {
            let fetched = batch.values(&keys)?;
            values.extend(keys.into_iter().map(|k| (ptr, k)).zip(fetched));
        }
        Ok(futures.iter().map(|f| values[&(Arc::as_ptr(&f.batch), f.key.clone())].clone()).collect())
    }
}

/// Blocks until every future is done (computed, failed or cancelled).
pub fn wait(futures: &[Future]) {
    for f in futures {
        // Failures are the futures' own business; `wait` only waits.
        let _ = f.batch.wait(std::slice::from_ref(&f.key));
    }
}

/// The futures in the order they finish (computed, failed or cancelled).
pub fn as_completed(futures: &[Future]) -> AsCompleted {
    AsCompleted { pending: futures.to_vec() }
}

/// Iterator of [`as_completed`].
pub struct AsCompleted {
    pending: Vec<Future>,
}

impl Iterator for AsCompleted {
    type Item = Future;

    fn next(&mut self) -> Option<Future> {
        loop {
            if self.pending.is_empty() {
                return None;
            }
            if let Some(i) = self.pending.iter().position(Future::done) {
                return Some(self.pending.remove(i));
            }
            // Sleep until some batch has news (or a moment passes: another thread may
            // have taken the news of a future here).
            let mut batches: Vec<&Arc<Batch>> = Vec::new();
            let mut seen = HashSet::new();
            for f in &self.pending {
                if seen.insert(Arc::as_ptr(&f.batch)) {
                    batches.push(&f.batch);
                }
            }
            let mut select = Select::new();
            batches.iter().for_each(|b| {
                select.recv(&b.news);
            });
            let _ = select.ready_timeout(NEWS_POLL);
        }
    }
}

#[cfg(all(test, feature = "local"))]
mod tests {
    use super::*;

    fn json_int(v: &Value) -> i64 {
        match v {
            Value::Json(j) => j.as_i64().expect("an integer"),
            other => panic!("expected JSON, got {}", other.kind()),
        }
    }

    #[test]
    fn a_future_in_a_graph_is_held_not_run() {
        let client = Client::local_with(2, None).unwrap().with_progress(false);
        let x = client.scatter([Value::Json(serde_json::json!(20))]).unwrap().remove(0);
        let d = x.to_delayed();
        assert!(matches!(d.graph().get(x.key()).unwrap().op, Op::Held(_)));
        let doubled = delayed::call("double", |a| Ok(Value::Json(serde_json::json!(json_int(a[0]) * 2))), &[&d]);
        let y = client.submit(&doubled).unwrap();
        assert_eq!(json_int(&y.result().unwrap()), 40);
    }

    #[test]
    fn broadcast_values_read_like_scattered_ones_and_failed_futures_cannot_be_replicated() {
        let client = Client::local_with(2, None).unwrap().with_progress(false);
        let shared = client.broadcast([Value::Json(serde_json::json!(7))]).unwrap();
        assert_eq!(json_int(&client.gather(&shared).unwrap()[0]), 7);
        let failing = delayed::call("fails", |_| Err(Error::Engine("no".into())), &[]);
        let future = client.submit(&failing).unwrap();
        let err = client.replicate(&[future]).unwrap_err().to_string();
        assert!(err.contains("no"), "{err}");
    }
}
