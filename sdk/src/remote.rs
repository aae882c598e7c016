//! The engine behind [`Client::connect`](crate::Client::connect): a scheduler and its
//! workers in other processes, reached over TCP.
//!
//! A computation sends its graph to the scheduler, waits for a `Ready` (or `Erred`)
//! reply per wanted key, fetches the values straight from the workers holding them,
//! then releases the keys. A background task reads the scheduler's replies and hands
//! each to the computation waiting for that key, so one client can run several
//! computations at once; each client has its own results.

use crate::client::{Engine, Progress};
use crossbeam_channel::{Receiver, Sender, unbounded};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tessera_core::wire::fetch::Peers;
use tessera_core::wire::{ClientMessage, ClientReply, ClusterInfo, Hello, ModuleBytes, PROTOCOL_VERSION, Role, frame};
use tessera_core::{Error, Graph, Key, Op, Result, Value};
use tokio::net::TcpStream;
use tokio::sync::mpsc::{self, UnboundedSender};

/// Computations waiting for news of their keys.
type Waiting = Arc<Mutex<HashMap<Key, Vec<Sender<ClientReply>>>>>;

/// How often results whose holder died are asked for again before giving up.
const MAX_GATHER_RETRIES: u32 = 20;

/// The pause before asking again, times the attempt number (the scheduler needs a
/// moment to notice a dead worker).
const GATHER_BACKOFF: Duration = Duration::from_millis(50);

/// Callers of [`Engine::cluster_info`], answered in order.
type InfoWaiting = Arc<Mutex<VecDeque<Sender<ClusterInfo>>>>;

/// A connection to a scheduler.
pub(crate) struct RemoteEngine {
    runtime: tokio::runtime::Runtime,
    messages: UnboundedSender<ClientMessage>,
    waiting: Waiting,
    info_waiting: InfoWaiting,
    peers: Arc<Peers>,
    uploaded: Mutex<HashSet<String>>,
    progress: Arc<Progress>,
}

impl RemoteEngine {
    /// Connects to the scheduler at `address` (`host:port`, optionally prefixed with
    /// `tcp://`) presenting `token`.
    pub(crate) fn connect(address: &str, token: &str) -> Result<Self> {
        let address = address.strip_prefix("tcp://").unwrap_or(address).to_string();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("tessera-client-io")
            .enable_all()
            .build()
            .map_err(|e| Error::Engine(format!("cannot start the client's I/O thread: {e}")))?;
        let waiting: Waiting = Arc::default();
        let info_waiting: InfoWaiting = Arc::default();
        let progress: Arc<Progress> = Arc::default();
        let hello = Hello { version: PROTOCOL_VERSION, token: token.to_string(), role: Role::Client };
        let messages = runtime.block_on(async {
            let mut stream = TcpStream::connect(&address)
                .await
                .map_err(|e| Error::Connection(format!("cannot reach the scheduler at {address}: {e}")))?;
            stream.set_nodelay(true).map_err(|e| Error::Connection(e.to_string()))?;
            frame::introduce(&mut stream, &hello).await?;
            let (mut reader, writer) = stream.into_split();
            let (messages, queued) = mpsc::unbounded_channel();
            tokio::spawn(frame::send_batches(writer, queued));
            let waiting = waiting.clone();
            let info_waiting = info_waiting.clone();
            let progress = progress.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                while let Ok(Some(replies)) = frame::read::<_, Vec<ClientReply>>(&mut reader, &mut buf).await {
                    let mut waiting = waiting.lock().unwrap_or_else(PoisonError::into_inner);
                    for reply in replies {
                        let key = match &reply {
                            ClientReply::Ready { key, .. } | ClientReply::Erred { key, .. } => key,
                            ClientReply::Progress { finished_total } => {
                                progress.finished.store(*finished_total, Ordering::Relaxed);
                                continue;
                            }
                            ClientReply::Info(info) => {
                                if let Some(asker) =
                                    info_waiting.lock().unwrap_or_else(PoisonError::into_inner).pop_front()
                                {
                                    let _ = asker.send(info.clone());
                                }
                                continue;
                            }
                        };
                        if let Some(senders) = waiting.remove(key) {
                            senders.iter().for_each(|s| {
                                let _ = s.send(reply.clone());
                            });
                        }
                    }
                }
                // Dropping every sender wakes the waiting callers with an error.
                waiting.lock().unwrap_or_else(PoisonError::into_inner).clear();
                info_waiting.lock().unwrap_or_else(PoisonError::into_inner).clear();
            });
            Ok::<_, Error>(messages)
        })?;
        Ok(RemoteEngine {
            runtime,
            messages,
            waiting,
            info_waiting,
            peers: Arc::new(Peers::new(token.to_string(), Role::Client)),
            uploaded: Mutex::new(HashSet::new()),
            progress,
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
        self.messages.send(message).map_err(|_| Error::Connection("the connection to the scheduler is closed".into()))
    }

    /// Waits for every key's reply; returns the holder of each, in `keys` order.
    fn await_keys(&self, keys: &[Key], replies: &Receiver<ClientReply>) -> Result<Vec<String>> {
        let mut holders: HashMap<&Key, String> = HashMap::with_capacity(keys.len());
        while holders.len() < keys.len() {
            let reply = replies.recv().map_err(|_| Error::Connection("lost the connection to the scheduler".into()))?;
            match reply {
                ClientReply::Ready { key, holder } => {
                    if let Some(k) = keys.iter().find(|k| **k == key) {
                        holders.insert(k, holder);
                    }
                }
                ClientReply::Erred { key, message } => {
                    return Err(Error::TaskFailed { key: key.to_string(), message });
                }
                ClientReply::Info(_) | ClientReply::Progress { .. } => {}
            }
        }
        Ok(keys.iter().map(|k| holders[k].clone()).collect())
    }

    /// Fetches the values of `keys` from their holders into `values`; returns the keys
    /// whose holders could not give them (a holder that died since it was announced).
    fn gather(&self, keys: &[Key], holders: Vec<String>, values: &mut HashMap<Key, Arc<Value>>) -> Vec<Key> {
        let mut by_holder: HashMap<String, Vec<Key>> = HashMap::new();
        for (key, holder) in keys.iter().zip(holders) {
            by_holder.entry(holder).or_default().push(key.clone());
        }
        let fetched = self.runtime.block_on(futures::future::join_all(by_holder.into_iter().map(|(holder, keys)| {
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
        lost
    }

    /// Registers `reply` as waiting for news of `keys`.
    fn wait_for(&self, keys: &[Key], reply: &Sender<ClientReply>) {
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        keys.iter().for_each(|k| waiting.entry(k.clone()).or_default().push(reply.clone()));
    }

    /// Stops waiting for news of `keys` on `reply`.
    fn stop_waiting(&self, keys: &[Key], reply: &Sender<ClientReply>) {
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        for key in keys {
            if let Some(senders) = waiting.get_mut(key) {
                senders.retain(|s| !s.same_channel(reply));
                if senders.is_empty() {
                    waiting.remove(key);
                }
            }
        }
    }

    /// Waits for `keys` and gathers them. Keys whose holder died before they were
    /// fetched are asked for again: the scheduler recomputes them and says so.
    fn results(
        &self,
        keys: &[Key],
        reply: &Sender<ClientReply>,
        replies: &Receiver<ClientReply>,
    ) -> Result<Vec<Arc<Value>>> {
        let mut values = HashMap::with_capacity(keys.len());
        let mut pending = keys.to_vec();
        for attempt in 0..=MAX_GATHER_RETRIES {
            let holders = self.await_keys(&pending, replies)?;
            pending = self.gather(&pending, holders, &mut values);
            if pending.is_empty() {
                return Ok(keys.iter().map(|k| values[k].clone()).collect());
            }
            std::thread::sleep(GATHER_BACKOFF * (attempt + 1));
            self.wait_for(&pending, reply);
            self.send(ClientMessage::Submit { tasks: Vec::new(), wanted: pending.clone(), modules: Vec::new() })?;
        }
        Err(Error::Connection(format!("could not fetch {} from any worker", pending[0])))
    }
}

impl Engine for RemoteEngine {
    fn compute(&self, graph: Graph, keys: &[Key]) -> Result<Vec<Arc<Value>>> {
        graph.validate()?;
        let modules = self.modules_to_upload(&graph)?;
        let (reply, replies) = unbounded();
        self.wait_for(keys, &reply);
        let tasks = graph.into_tasks().into_iter().map(|(k, t)| (k, Arc::new(t))).collect();
        self.send(ClientMessage::Submit { tasks, wanted: keys.to_vec(), modules })?;
        let result = self.results(keys, &reply, &replies);
        self.stop_waiting(keys, &reply);
        self.send(ClientMessage::Release { keys: keys.to_vec() })?;
        result
    }

    fn cluster_info(&self) -> Result<ClusterInfo> {
        let (asker, answer) = unbounded();
        self.info_waiting.lock().unwrap_or_else(PoisonError::into_inner).push_back(asker);
        self.send(ClientMessage::Info)?;
        answer.recv().map_err(|_| Error::Connection("lost the connection to the scheduler".into()))
    }

    fn progress(&self) -> &Progress {
        &self.progress
    }
}

/// The bytes of a component loaded in this process, by sha256.
fn module_bytes(sha256: &str) -> Option<Arc<Vec<u8>>> {
    #[cfg(feature = "local")]
    return crate::wasm::loaded_bytes(sha256);
    #[cfg(not(feature = "local"))]
    return None;
}
