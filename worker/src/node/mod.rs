//! The worker as a network service: [`run`] joins a scheduler, runs the tasks it is
//! sent on a [`TaskPool`], fetches inputs held elsewhere from other workers and serves
//! its own results on a data port.
//!
//! One loop owns the worker's side of the conversation. It receives batches of
//! [`WorkerCommand`]s, finished tasks from the pool, fetched inputs and heartbeat ticks;
//! reports go back to the scheduler batched by a writer task.

mod data;
mod store;

pub use store::{SpillPolicy, Store};

use crate::pool::{Claim, Job, Outcome, TaskPool};
use rustc_hash::FxHashMap;
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tessera_core::wire::fetch::Peers;
use tessera_core::wire::transport::{Connection, Scheme, Tls};
use tessera_core::wire::{
    Hello, InputLocation, PROTOCOL_VERSION, Role, WorkerCommand, WorkerInfo, WorkerMetrics, WorkerReport, frame,
};
use tessera_core::{Error, Key, Result, Task, Value};
use tokio::net::TcpListener;
use tokio::sync::mpsc::{self, UnboundedSender};

/// Up to this many fetched inputs, a task's inputs are found by scanning them.
const FETCHED_SCAN: usize = 16;

/// How often a worker tells the scheduler it is alive.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// How a worker joins and what it offers.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// The scheduler's address (`tcp://host:port`, `tls://host:port` or `host:port`).
    pub scheduler: String,
    /// The cluster's shared secret.
    pub token: String,
    /// The worker's TLS identity: needed for a `tls://` scheduler, and then its data
    /// port serves TLS too.
    pub tls: Option<Tls>,
    /// The worker's name (unique in the cluster).
    pub name: String,
    /// Task threads.
    pub nthreads: usize,
    /// Bytes of results to hold in memory, if limited.
    pub memory_limit: Option<u64>,
    /// Above this fraction of the memory limit, results spill to disk (Dask's
    /// `distributed.worker.memory.target`).
    pub memory_target_fraction: f64,
    /// Above this fraction of the memory limit, the worker starts no new task until
    /// running ones finish or results are released (`...memory.pause`).
    pub memory_pause_fraction: f64,
    /// Where the spill directory is made (default: the system's temporary directory).
    pub local_directory: Option<PathBuf>,
    /// Abstract resources offered to tasks that need them (`("GPU", 2.0)`).
    pub resources: Vec<(String, f64)>,
    /// The host the data port listens on; by default the address this machine uses to
    /// reach the scheduler.
    pub listen_host: Option<String>,
}

/// What the worker loop is told.
enum Input {
    /// A batch from the scheduler (`None`: the scheduler went away).
    Commands(Option<Vec<WorkerCommand>>),
    /// A task finished on the pool.
    Done(Outcome),
    /// The inputs a task lacked arrived, or those that could not be fetched.
    Fetched { key: Key, task: Arc<Task>, inputs: std::result::Result<Vec<(Key, Arc<Value>)>, Vec<Key>> },
    /// Time to send a heartbeat.
    Heartbeat,
}

/// Joins the scheduler and works until told to shut down; an error when the scheduler
/// cannot be reached, refuses the worker, or goes away.
pub async fn run(config: WorkerConfig) -> Result<()> {
    let mut stream = Connection::open(&config.scheduler, config.tls.as_ref(), "the scheduler").await?;
    let host = match &config.listen_host {
        Some(host) => host.clone(),
        None => stream.local_addr()?.ip().to_string(),
    };
    let listener = TcpListener::bind((host.as_str(), 0))
        .await
        .map_err(|e| Error::Connection(format!("cannot open a data port on {host}: {e}")))?;
    let data_address = listener.local_addr().map_err(|e| Error::Connection(e.to_string()))?;
    let data_address = Scheme::serving(config.tls.as_ref()).address(data_address);
    let info = WorkerInfo {
        name: config.name.clone(),
        nthreads: config.nthreads as u32,
        memory_limit: config.memory_limit,
        data_address: data_address.clone(),
        resources: config.resources.clone(),
    };
    let hello = Hello { version: PROTOCOL_VERSION, token: config.token.clone(), role: Role::Worker(info) };
    frame::introduce(&mut stream, &hello).await?;
    tracing::info!(name = %config.name, %data_address, scheduler = %config.scheduler, "worker joined the scheduler");

    // The spill directory lives as long as the worker and is deleted with it.
    let spill_dir = match config.memory_limit {
        Some(_) => {
            let parent = config.local_directory.clone().unwrap_or_else(std::env::temp_dir);
            let dir = tempfile::Builder::new()
                .prefix("tessera-worker-")
                .tempdir_in(&parent)
                .map_err(|e| Error::Engine(format!("cannot make a spill directory in {}: {e}", parent.display())))?;
            Some(dir)
        }
        None => None,
    };
    let store = Arc::new(match (&spill_dir, config.memory_limit) {
        (Some(dir), Some(limit)) => Store::spilling(SpillPolicy {
            dir: dir.path().to_path_buf(),
            target_bytes: (limit as f64 * config.memory_target_fraction) as u64,
        }),
        _ => Store::default(),
    });
    tokio::spawn(data::serve(listener, store.clone(), config.token.clone().into(), config.tls.clone()));
    let (reader, writer) = stream.split();
    let (reports, queued) = mpsc::unbounded_channel();
    tokio::spawn(frame::send_batches(writer, queued));

    let (inputs, mut events) = mpsc::unbounded_channel::<Input>();
    let from_scheduler = inputs.clone();
    tokio::spawn(async move {
        let mut reader = reader;
        let mut buf = Vec::new();
        loop {
            let batch = frame::read::<_, Vec<WorkerCommand>>(&mut reader, &mut buf).await.ok().flatten();
            let closed = batch.is_none();
            if from_scheduler.send(Input::Commands(batch)).is_err() || closed {
                break;
            }
        }
    });
    let ticks = inputs.clone();
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(HEARTBEAT);
        loop {
            interval.tick().await;
            if ticks.send(Input::Heartbeat).is_err() {
                break;
            }
        }
    });
    let done = inputs.clone();
    let pool = TaskPool::new(config.nthreads, move |outcome| {
        let _ = done.send(Input::Done(outcome));
    })
    .map_err(|e| Error::Engine(format!("cannot start task threads: {e}")))?;

    let mut worker = Worker {
        store,
        pool,
        reports,
        inputs,
        peers: Arc::new(Peers::new(config.token.clone(), Role::Peer, config.tls.clone())),
        executing: 0,
        running: 0,
        handed: Vec::new(),
        pause_bytes: config.memory_limit.map(|limit| (limit as f64 * config.memory_pause_fraction) as u64),
        waiting: VecDeque::new(),
    };
    while let Some(input) = events.recv().await {
        match input {
            Input::Commands(None) => return Err(Error::Connection("the scheduler closed the connection".into())),
            Input::Commands(Some(commands)) => {
                for command in commands {
                    if worker.command(command) == Flow::Stop {
                        tracing::info!(name = %config.name, "worker shutting down");
                        return Ok(());
                    }
                }
            }
            Input::Done(outcome) => worker.finished(outcome),
            Input::Fetched { key, task, inputs } => worker.fetched(key, task, inputs),
            Input::Heartbeat => {
                let metrics = WorkerMetrics {
                    memory_bytes: worker.store.bytes(),
                    spilled_bytes: worker.store.spilled_bytes(),
                    executing: worker.executing,
                    stored_keys: worker.store.len() as u64,
                };
                let _ = worker.reports.send(WorkerReport::Heartbeat(metrics));
            }
        }
    }
    Ok(())
}

#[derive(PartialEq)]
enum Flow {
    Continue,
    Stop,
}

/// The worker loop's state.
struct Worker {
    store: Arc<Store>,
    pool: TaskPool,
    reports: UnboundedSender<WorkerReport>,
    inputs: UnboundedSender<Input>,
    peers: Arc<Peers>,
    /// Tasks received and not yet finished.
    executing: u32,
    /// Tasks handed to the pool and not yet finished (nor taken back).
    running: u32,
    /// The tasks handed to the pool, with the claims that take back those not started.
    handed: Vec<(Key, Claim)>,
    /// Above this many bytes in memory, no new task starts while others run.
    pause_bytes: Option<u64>,
    /// Tasks ready to run, held back while memory is above the pause threshold.
    waiting: VecDeque<(Key, Arc<Task>, Vec<Arc<Value>>)>,
}

impl Worker {
    fn command(&mut self, command: WorkerCommand) -> Flow {
        match command {
            WorkerCommand::LoadModule { bytes } => {
                if let Err(e) = crate::wasm::global().and_then(|rt| rt.register(&bytes)) {
                    tracing::error!("cannot load a task component: {e}");
                }
            }
            WorkerCommand::Compute { key, task, remote_inputs } => {
                self.executing += 1;
                if remote_inputs.is_empty() {
                    self.start(key, task, Vec::new());
                } else {
                    self.fetch(key, task, remote_inputs);
                }
            }
            WorkerCommand::Copy { values } => self.copy(values),
            WorkerCommand::Release { key } => {
                self.store.remove(&key);
                self.resume();
            }
            WorkerCommand::Steal { count } => self.give_back(count as usize),
            WorkerCommand::Shutdown => return Flow::Stop,
        }
        Flow::Continue
    }

    /// Fetches a task's remote inputs in the background, one request per holder.
    fn fetch(&self, key: Key, task: Arc<Task>, remote: Vec<InputLocation>) {
        let (peers, inputs) = (self.peers.clone(), self.inputs.clone());
        tokio::spawn(async move {
            let mut by_holder: HashMap<String, Vec<Key>> = HashMap::new();
            for input in remote {
                by_holder.entry(input.holder).or_default().push(input.key);
            }
            let fetches = by_holder.into_iter().map(|(holder, keys)| {
                let peers = peers.clone();
                async move { peers.fetch(&holder, keys.clone()).await.map_err(|e| (keys, e)) }
            });
            let mut fetched = Vec::new();
            let mut missing = Vec::new();
            for result in futures::future::join_all(fetches).await {
                match result {
                    Ok(values) => fetched.extend(values),
                    Err((keys, e)) => {
                        tracing::warn!(task = %key, "cannot fetch inputs: {e}");
                        missing.extend(keys);
                    }
                }
            }
            let inputs_or_missing = if missing.is_empty() { Ok(fetched) } else { Err(missing) };
            let _ = inputs.send(Input::Fetched { key, task, inputs: inputs_or_missing });
        });
    }

    /// Fetches values from a retiring worker and keeps them, then reports which arrived.
    fn copy(&self, values: Vec<InputLocation>) {
        let (peers, store, reports) = (self.peers.clone(), self.store.clone(), self.reports.clone());
        tokio::spawn(async move {
            let mut by_holder: HashMap<String, Vec<Key>> = HashMap::new();
            for value in values {
                by_holder.entry(value.holder).or_default().push(value.key);
            }
            let mut copied = Vec::new();
            for (holder, keys) in by_holder {
                match peers.fetch(&holder, keys).await {
                    Ok(pairs) => {
                        for (key, value) in pairs {
                            let nbytes = value.nbytes() as u64;
                            store.insert(key.clone(), value);
                            copied.push((key, holder.clone(), nbytes));
                        }
                    }
                    Err(e) => tracing::warn!("cannot copy values from {holder}: {e}"),
                }
            }
            let _ = reports.send(WorkerReport::Copied { values: copied });
        });
    }

    fn fetched(&mut self, key: Key, task: Arc<Task>, inputs: std::result::Result<Vec<(Key, Arc<Value>)>, Vec<Key>>) {
        match inputs {
            Ok(fetched) => self.start(key, task, fetched),
            Err(missing) => {
                self.executing = self.executing.saturating_sub(1);
                let _ = self.reports.send(WorkerReport::MissingInputs { key, missing });
            }
        }
    }

    /// Queues a task whose inputs are all here (in `fetched` or the store) for a thread.
    fn start(&mut self, key: Key, task: Arc<Task>, fetched: Vec<(Key, Arc<Value>)>) {
        // Most tasks fetch an input or two: a scan finds them; many go through a map.
        let index: Option<FxHashMap<&Key, &Arc<Value>>> =
            (fetched.len() > FETCHED_SCAN).then(|| fetched.iter().map(|(k, v)| (k, v)).collect());
        let mut inputs = Vec::with_capacity(task.deps.len());
        for dep in task.deps.iter() {
            let found = match &index {
                Some(index) => index.get(dep).copied(),
                None => fetched.iter().find(|(k, _)| k == dep).map(|(_, v)| v),
            };
            let value = match found {
                Some(v) => Ok(Some(v.clone())),
                None => self.store.get(dep),
            };
            match value {
                Ok(Some(v)) => inputs.push(v),
                Ok(None) => return self.fail(key, format!("its input {dep} is not held by this worker")),
                Err(e) => return self.fail(key, e.to_string()),
            }
        }
        if self.over_pause() && self.waiting.is_empty() {
            tracing::info!(memory_bytes = self.store.bytes(), "memory above the pause threshold: pausing");
        }
        self.waiting.push_back((key, task, inputs));
        self.resume();
    }

    /// True when no new task may start: memory is above the pause threshold and some
    /// task is running (which will finish and may free memory).
    fn over_pause(&self) -> bool {
        self.running > 0 && self.pause_bytes.is_some_and(|pause| self.store.bytes() > pause)
    }

    /// Hands waiting tasks to the pool (whose threads take them in order) while memory
    /// allows.
    fn resume(&mut self) {
        while !self.over_pause() {
            let Some((key, task, inputs)) = self.waiting.pop_front() else { break };
            self.running += 1;
            let claim = self.pool.submit_claimable(Job { key: key.clone(), task, inputs });
            self.handed.push((key, claim));
        }
    }

    /// Gives up to `count` tasks that have not started back to the scheduler, the
    /// newest first: held-back ones, then ones the pool has not started.
    fn give_back(&mut self, count: usize) {
        let keep = self.waiting.len().saturating_sub(count);
        let mut keys: Vec<Key> = self.waiting.drain(keep..).rev().map(|(key, _, _)| key).collect();
        let mut i = self.handed.len();
        while keys.len() < count && i > 0 {
            i -= 1;
            if self.handed[i].1.take() {
                keys.push(self.handed.remove(i).0);
                self.running -= 1;
            }
        }
        self.executing = self.executing.saturating_sub(keys.len() as u32);
        let _ = self.reports.send(WorkerReport::Returned { keys });
    }

    fn finished(&mut self, outcome: Outcome) {
        self.executing = self.executing.saturating_sub(1);
        self.running = self.running.saturating_sub(1);
        if let Some(i) = self.handed.iter().position(|(key, _)| *key == outcome.key) {
            self.handed.remove(i);
        }
        match outcome.result {
            Ok(value) => {
                let nbytes = value.nbytes() as u64;
                self.store.insert(outcome.key.clone(), value);
                let duration_us = outcome.duration.as_micros() as u64;
                let _ = self.reports.send(WorkerReport::Finished { key: outcome.key, nbytes, duration_us });
            }
            Err(Error::TaskFailed { key, message }) if key == outcome.key.to_string() => {
                let _ = self.reports.send(WorkerReport::Erred { key: outcome.key, message });
            }
            Err(e) => {
                let _ = self.reports.send(WorkerReport::Erred { key: outcome.key, message: e.to_string() });
            }
        }
        self.resume();
    }

    fn fail(&mut self, key: Key, message: String) {
        self.executing = self.executing.saturating_sub(1);
        let _ = self.reports.send(WorkerReport::Erred { key, message });
    }
}
