//! The engine behind [`Client::connect`](crate::Client::connect): a scheduler and its
//! workers in other processes, reached over TCP.
//!
//! A submission sends its graph to the scheduler, which answers `Ready` (or `Erred`)
//! per wanted key; values are fetched straight from the workers holding them, and
//! scattered values are sent straight to workers (the scheduler only hears where). A
//! background task reads the scheduler's replies and hands each to every submission
//! (ticket) wanting that key, so one client can run many computations and hold many
//! futures at once. The scheduler sees one client per connection: a key is released
//! there when the last ticket wanting it lets go.

use crate::client::{Engine, Location, News, Progress, Ticket, await_answer};
use crossbeam_channel::{Receiver, Sender, unbounded};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tessera_core::wire::fetch::Peers;
use tessera_core::wire::transport::{Connection, Tls};
use tessera_core::wire::{
    ClientMessage, ClientReply, ClusterInfo, Coordinate, Coordinated, Hello, ModuleBytes, PROTOCOL_VERSION, Role,
    TaskRecord, WorkerSummary, frame,
};
use tessera_core::{Error, Graph, Key, Op, Result, Value};
use tokio::sync::mpsc::{self, UnboundedSender};

/// The tickets of this connection and the keys each wants.
#[derive(Default)]
struct Registry {
    next_ticket: Ticket,
    tickets: HashMap<Ticket, (Sender<News>, HashSet<Key>)>,
    /// For each wanted key, the tickets wanting it.
    by_key: HashMap<Key, Vec<Ticket>>,
}

impl Registry {
    /// A new ticket wanting `keys`, with the receiver of their news.
    fn open(&mut self, keys: &[Key]) -> (Ticket, Receiver<News>) {
        let (news, receiver) = unbounded();
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        let wanted: HashSet<Key> = keys.iter().cloned().collect();
        for key in &wanted {
            self.by_key.entry(key.clone()).or_default().push(ticket);
        }
        self.tickets.insert(ticket, (news, wanted));
        (ticket, receiver)
    }

    /// Sends news of `key` to every ticket wanting it.
    fn announce(&self, key: &Key, result: &Result<Location>) {
        for ticket in self.by_key.get(key).into_iter().flatten() {
            if let Some((news, _)) = self.tickets.get(ticket) {
                let _ = news.send((key.clone(), result.clone()));
            }
        }
    }

    /// Drops `ticket`'s interest in `keys`; returns the keys no ticket wants any more.
    fn release(&mut self, ticket: Ticket, keys: impl IntoIterator<Item = Key>) -> Vec<Key> {
        let mut unwanted = Vec::new();
        for key in keys {
            if let Some(tickets) = self.by_key.get_mut(&key) {
                tickets.retain(|&t| t != ticket);
                if tickets.is_empty() {
                    self.by_key.remove(&key);
                    unwanted.push(key);
                }
            }
        }
        unwanted
    }
}

/// How long a shutdown may take before the client gives up waiting.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// Callers waiting for one kind of answer from the scheduler, answered in order.
type Askers<T> = Arc<Mutex<VecDeque<Sender<T>>>>;

/// Pops the oldest asker and hands it `answer`.
fn answer_next<T>(askers: &Askers<T>, answer: T) {
    if let Some(asker) = askers.lock().unwrap_or_else(PoisonError::into_inner).pop_front() {
        let _ = asker.send(answer);
    }
}

/// A connection to a scheduler.
pub(crate) struct RemoteEngine {
    runtime: tokio::runtime::Runtime,
    messages: UnboundedSender<ClientMessage>,
    registry: Arc<Mutex<Registry>>,
    info_waiting: Askers<ClusterInfo>,
    stream_waiting: Askers<(f64, Vec<TaskRecord>)>,
    peers: Arc<Peers>,
    uploaded: Mutex<HashSet<String>>,
    progress: Arc<Progress>,
    /// Disconnected when the scheduler closes the connection.
    closed: Receiver<()>,
    /// Coordination requests waiting for their answer, by request number.
    coordinating: Coordinating,
    next_request: AtomicU64,
}

/// Coordination requests waiting for their answer, by request number.
type Coordinating = Arc<Mutex<HashMap<u64, Sender<Coordinated>>>>;

impl RemoteEngine {
    /// Connects to the scheduler at `address` (`host:port`, `tcp://host:port` or, with
    /// `tls`, `tls://host:port`) presenting `token`.
    pub(crate) fn connect(address: &str, token: &str, tls: Option<Tls>) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("tessera-client-io")
            .enable_all()
            .build()
            .map_err(|e| Error::Engine(format!("cannot start the client's I/O thread: {e}")))?;
        let registry: Arc<Mutex<Registry>> = Arc::default();
        let info_waiting: Askers<ClusterInfo> = Arc::default();
        let stream_waiting: Askers<(f64, Vec<TaskRecord>)> = Arc::default();
        let progress: Arc<Progress> = Arc::default();
        let (closing, closed) = crossbeam_channel::bounded::<()>(0);
        let coordinating: Coordinating = Arc::default();
        let hello = Hello { version: PROTOCOL_VERSION, token: token.to_string(), role: Role::Client };
        let messages = runtime.block_on(async {
            let mut stream = Connection::open(address, tls.as_ref(), "the scheduler").await?;
            frame::introduce(&mut stream, &hello).await?;
            let (mut reader, writer) = stream.split();
            let (messages, queued) = mpsc::unbounded_channel();
            tokio::spawn(frame::send_batches(writer, queued));
            let registry = registry.clone();
            let info_waiting = info_waiting.clone();
            let stream_waiting = stream_waiting.clone();
            let progress = progress.clone();
            let closing = closing;
            let coordinating = coordinating.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                while let Ok(Some(replies)) = frame::read::<_, Vec<ClientReply>>(&mut reader, &mut buf).await {
                    let registry = registry.lock().unwrap_or_else(PoisonError::into_inner);
                    for reply in replies {
                        match reply {
                            ClientReply::Ready { key, holder } => registry.announce(&key, &Ok(Location::At(holder))),
                            ClientReply::Erred { key, message } => {
                                let error = Error::TaskFailed { key: key.to_string(), message };
                                registry.announce(&key, &Err(error));
                            }
                            ClientReply::Progress { finished_total } => {
                                progress.finished.store(finished_total, Ordering::Relaxed);
                            }
                            ClientReply::Coordinated { request, reply } => {
                                let asker =
                                    coordinating.lock().unwrap_or_else(PoisonError::into_inner).remove(&request);
                                if let Some(asker) = asker {
                                    let _ = asker.send(reply);
                                }
                            }
                            ClientReply::Info(info) => answer_next(&info_waiting, info),
                            ClientReply::TaskStream { now_s, records } => {
                                answer_next(&stream_waiting, (now_s, records))
                            }
                        }
                    }
                }
                // Dropping every sender wakes the waiting callers with an error.
                registry.lock().unwrap_or_else(PoisonError::into_inner).tickets.clear();
                info_waiting.lock().unwrap_or_else(PoisonError::into_inner).clear();
                stream_waiting.lock().unwrap_or_else(PoisonError::into_inner).clear();
                coordinating.lock().unwrap_or_else(PoisonError::into_inner).clear();
                drop(closing);
            });
            Ok::<_, Error>(messages)
        })?;
        Ok(RemoteEngine {
            runtime,
            messages,
            registry,
            info_waiting,
            stream_waiting,
            peers: Arc::new(Peers::new(token.to_string(), Role::Client, tls)),
            uploaded: Mutex::new(HashSet::new()),
            progress,
            closed,
            coordinating,
            next_request: AtomicU64::new(0),
        })
    }

    /// The components `graph` calls that this client has not sent yet.
    fn modules_to_upload(&self, graph: &Graph) -> Result<Vec<ModuleBytes>> {
        let mut uploaded = self.uploaded.lock().unwrap_or_else(PoisonError::into_inner);
        let mut modules = Vec::new();
        let mut problem = None;
        for (key, task) in graph.iter() {
            task.op.walk(&mut |op| match op {
                Op::Native(f) if problem.is_none() => {
                    problem = Some(format!(
                        "task {key} calls the Rust closure `{}`, which cannot leave this process; \
                         use a built-in operation or a WASM task on a remote cluster",
                        f.name
                    ));
                }
                Op::Wasm(w) if !uploaded.contains(&w.module) => match module_bytes(&w.module) {
                    Some(bytes) => {
                        uploaded.insert(w.module.clone());
                        modules.push(ModuleBytes { sha256: w.module.clone(), bytes });
                    }
                    None => {
                        problem.get_or_insert_with(|| {
                            format!("task {key} calls component {}, which this process has not loaded", w.module)
                        });
                    }
                },
                _ => {}
            });
        }
        match problem {
            Some(message) => Err(Error::invalid("connect", message)),
            None => Ok(modules),
        }
    }

    fn send(&self, message: ClientMessage) -> Result<()> {
        if let Err(crossbeam_channel::TryRecvError::Disconnected) = self.closed.try_recv() {
            return Err(Error::Connection("the scheduler closed the connection".into()));
        }
        self.messages.send(message).map_err(|_| Error::Connection("the connection to the scheduler is closed".into()))
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends `message` and waits for the answer `askers` will be handed.
    fn ask<T>(&self, askers: &Askers<T>, message: ClientMessage) -> Result<T> {
        let (asker, answer) = unbounded();
        askers.lock().unwrap_or_else(PoisonError::into_inner).push_back(asker);
        self.send(message)?;
        crossbeam_channel::select! {
            recv(answer) -> a => a.map_err(|_| Error::Connection("lost the connection to the scheduler".into())),
            recv(self.closed) -> _ => Err(Error::Connection("lost the connection to the scheduler".into())),
        }
    }

    /// Tells the scheduler this client no longer wants `keys`.
    fn send_release(&self, keys: Vec<Key>) {
        if !keys.is_empty() {
            let _ = self.send(ClientMessage::Release { keys });
        }
    }
}

impl Engine for RemoteEngine {
    fn submit(&self, graph: Graph, keys: &[Key]) -> Result<(Ticket, Receiver<News>)> {
        let modules = self.modules_to_upload(&graph)?;
        let (ticket, receiver) = self.registry().open(keys);
        let tasks = graph.into_tasks().into_iter().collect();
        self.send(ClientMessage::Submit { tasks, wanted: keys.to_vec(), modules })?;
        Ok((ticket, receiver))
    }

    /// Sends the values straight to the workers, round robin over their threads, then
    /// tells the scheduler where they are. Values stored before a worker failed to take
    /// its share are registered and released again, so none is left behind.
    fn scatter(&self, values: Vec<(Key, Arc<Value>)>) -> Result<(Ticket, Receiver<News>)> {
        let keys: Vec<Key> = values.iter().map(|(k, _)| k.clone()).collect();
        let shares = share_out(&self.cluster_info()?.workers, values)?;
        let stored = self.runtime.block_on(::futures::future::join_all(shares.into_iter().map(|(holder, values)| {
            let peers = self.peers.clone();
            async move {
                let sizes: Vec<(Key, u64)> = values.iter().map(|(k, v)| (k.clone(), v.nbytes() as u64)).collect();
                peers.put(&holder, values).await.map(|()| (holder, sizes))
            }
        })));
        let (ticket, receiver) = self.registry().open(&keys);
        let mut failure = None;
        for result in stored {
            match result {
                Ok((holder, values)) => self.send(ClientMessage::Scattered { holder, values })?,
                Err(e) => failure = Some(e),
            }
        }
        match failure {
            Some(e) => {
                self.close(ticket);
                Err(e)
            }
            None => Ok((ticket, receiver)),
        }
    }

    fn resubmit(&self, _ticket: Ticket, keys: &[Key]) -> Result<()> {
        self.send(ClientMessage::Submit { tasks: Vec::new(), wanted: keys.to_vec(), modules: Vec::new() })
    }

    fn fetch(&self, located: Vec<(Key, Location)>) -> (HashMap<Key, Arc<Value>>, Vec<Key>) {
        let mut values = HashMap::with_capacity(located.len());
        let mut by_holder: HashMap<String, Vec<Key>> = HashMap::new();
        for (key, location) in located {
            match location {
                Location::Here(value) => {
                    values.insert(key, value);
                }
                Location::At(holder) => by_holder.entry(holder).or_default().push(key),
            }
        }
        let fetched =
            self.runtime.block_on(::futures::future::join_all(by_holder.into_iter().map(|(holder, keys)| {
                let peers = self.peers.clone();
                async move { peers.fetch(&holder, keys.clone()).await.map_err(|_| keys) }
            })));
        let mut lost = Vec::new();
        for result in fetched {
            match result {
                Ok(pairs) => values.extend(pairs),
                Err(keys) => lost.extend(keys),
            }
        }
        (values, lost)
    }

    fn release(&self, ticket: Ticket, keys: &[Key]) {
        let unwanted = {
            let mut registry = self.registry();
            if let Some((_, wanted)) = registry.tickets.get_mut(&ticket) {
                keys.iter().for_each(|k| {
                    wanted.remove(k);
                });
            }
            registry.release(ticket, keys.iter().cloned())
        };
        self.send_release(unwanted);
    }

    fn close(&self, ticket: Ticket) {
        let unwanted = {
            let mut registry = self.registry();
            match registry.tickets.remove(&ticket) {
                Some((_, wanted)) => registry.release(ticket, wanted),
                None => Vec::new(),
            }
        };
        self.send_release(unwanted);
    }

    fn cluster_info(&self) -> Result<ClusterInfo> {
        self.ask(&self.info_waiting, ClientMessage::Info)
    }

    fn task_stream(&self) -> Result<(f64, Vec<TaskRecord>)> {
        self.ask(&self.stream_waiting, ClientMessage::TaskStream)
    }

    fn shutdown(&self) -> Result<()> {
        self.send(ClientMessage::Shutdown)?;
        match self.closed.recv_timeout(SHUTDOWN_TIMEOUT) {
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => Ok(()),
            _ => Err(Error::Connection(format!("the scheduler did not stop within {SHUTDOWN_TIMEOUT:?}"))),
        }
    }

    fn replicate(&self, keys: &[Key]) -> Result<()> {
        self.send(ClientMessage::Replicate { keys: keys.to_vec() })
    }

    fn coordinate(&self, op: Coordinate, timeout: Option<Duration>) -> Result<Option<Coordinated>> {
        let request = self.next_request.fetch_add(1, Ordering::Relaxed);
        let (answer, answered) = crossbeam_channel::bounded(1);
        self.coordinating.lock().unwrap_or_else(PoisonError::into_inner).insert(request, answer);
        self.send(ClientMessage::Coordinate { request, op })?;
        await_answer(&answered, &self.closed, timeout, || {
            self.coordinating.lock().unwrap_or_else(PoisonError::into_inner).remove(&request);
            self.send(ClientMessage::CancelWait { request })
        })
    }

    fn progress(&self) -> &Progress {
        &self.progress
    }
}

/// Values with their keys, as scattered.
type Values = Vec<(Key, Arc<Value>)>;

/// Deals `values` out to `workers` by data address, one per worker thread in turn (as
/// Dask's scatter does), so each worker gets a share proportional to its threads.
fn share_out(workers: &[WorkerSummary], values: Values) -> Result<HashMap<String, Values>> {
    let max_threads = workers.iter().map(|w| w.nthreads).max().unwrap_or(0);
    let seats: Vec<&str> = (0..max_threads)
        .flat_map(|round| workers.iter().filter(move |w| w.nthreads > round).map(|w| w.data_address.as_str()))
        .collect();
    if seats.is_empty() && !values.is_empty() {
        return Err(Error::Connection("no worker is connected to take the scattered values".into()));
    }
    let mut shares: HashMap<&str, Values> = HashMap::new();
    for (i, value) in values.into_iter().enumerate() {
        shares.entry(seats[i % seats.len()]).or_default().push(value);
    }
    Ok(shares.into_iter().map(|(address, values)| (address.to_string(), values)).collect())
}

/// The bytes of a component loaded in this process, by sha256 (none without the
/// `local` feature, which is what loads components).
#[cfg(feature = "local")]
fn module_bytes(sha256: &str) -> Option<Arc<Vec<u8>>> {
    crate::wasm::loaded_bytes(sha256)
}

/// The bytes of a component loaded in this process: none without the `local` feature,
/// which is what loads components.
#[cfg(not(feature = "local"))]
fn module_bytes(_sha256: &str) -> Option<Arc<Vec<u8>>> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(address: &str, nthreads: u32) -> WorkerSummary {
        WorkerSummary {
            name: address.into(),
            data_address: address.into(),
            nthreads,
            held_keys: 0,
            metrics: Default::default(),
        }
    }

    #[test]
    fn scattered_values_are_dealt_out_per_worker_thread() {
        let values: Vec<(Key, Arc<Value>)> =
            (0..5).map(|i| (Key::new("s", [i]), Arc::new(Value::Json(serde_json::json!(i))))).collect();
        let shares = share_out(&[worker("a", 2), worker("b", 1)], values.clone()).unwrap();
        let indices = |w: &str| shares[w].iter().map(|(k, _)| k.index()[0]).collect::<Vec<_>>();
        assert_eq!(indices("a"), [0, 2, 3], "a has two threads: two seats in every round of three");
        assert_eq!(indices("b"), [1, 4]);
        let err = share_out(&[], values).unwrap_err().to_string();
        assert!(err.contains("no worker"), "{err}");
        assert!(share_out(&[], Vec::new()).unwrap().is_empty());
    }
}
