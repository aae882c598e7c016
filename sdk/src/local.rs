//! The embedded engine behind `Client::local()`.
//!
//! One scheduler thread owns the scheduler's state machine
//! ([`tessera_scheduler::State`]), the task specs and the worker's data store; one
//! [`TaskPool`] runs the tasks. Everything talks over channels, exactly as the
//! distributed runtime talks over sockets: the scheduler decides, the pool executes,
//! and the outcome comes back as an event.
//!
//! Memory: when the values held exceed the memory limit, no new task starts while
//! others are running (Dask's "pause"), so finishing tasks can release their inputs.

use crate::client::{Engine, Progress};
use crossbeam_channel::{Receiver, Sender, unbounded};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tessera_core::wire::{ClusterInfo, WorkerMetrics, WorkerSummary};
use tessera_core::{Error, Graph, Key, Result, Task, Value};
use tessera_scheduler::{ClientId, Command, Event, State, TaskSpec, WorkerId};
use tessera_worker::pool::{Job, Outcome, TaskPool};

/// The single worker of the embedded engine.
const LOCAL_WORKER: WorkerId = WorkerId(0);

/// What a computation is told about each of its keys.
type Reply = (Key, Result<Arc<Value>>);

enum Message {
    Submit { graph: Graph, wanted: Vec<Key>, reply: Sender<Reply>, client: ClientId },
    Release { client: ClientId, keys: Vec<Key> },
    Info { reply: Sender<ClusterInfo> },
    Done(Outcome),
}

/// The in-process engine: a scheduler thread and a task pool.
pub(crate) struct LocalEngine {
    messages: Sender<Message>,
    next_client: std::sync::atomic::AtomicU32,
    progress: Arc<Progress>,
}

impl LocalEngine {
    /// Starts the scheduler thread and `nthreads` task threads.
    pub(crate) fn start(nthreads: usize, memory_limit: Option<u64>) -> Result<Self> {
        let (tx, rx) = unbounded();
        let done_tx = tx.clone();
        let pool = TaskPool::new(nthreads, move |outcome| {
            let _ = done_tx.send(Message::Done(outcome));
        })
        .map_err(|e| Error::Engine(format!("cannot start task threads: {e}")))?;
        let progress = Arc::new(Progress::default());
        let mut state = State::new();
        let mut scheduler = Scheduler {
            pool,
            tasks: HashMap::new(),
            store: HashMap::new(),
            stored_bytes: 0,
            memory_limit,
            running: 0,
            paused: VecDeque::new(),
            replies: HashMap::new(),
            progress: progress.clone(),
            commands: Vec::new(),
        };
        state.handle_into(Event::WorkerAdded { worker: LOCAL_WORKER, nthreads }, &mut scheduler.commands);
        std::thread::Builder::new()
            .name("tessera-scheduler".into())
            .spawn(move || scheduler.run(state, rx))
            .map_err(|e| Error::Engine(format!("cannot start the scheduler thread: {e}")))?;
        Ok(LocalEngine { messages: tx, next_client: Default::default(), progress })
    }
}

impl Engine for LocalEngine {
    fn compute(&self, graph: Graph, keys: &[Key]) -> Result<Vec<Arc<Value>>> {
        graph.validate()?;
        let client = ClientId(self.next_client.fetch_add(1, Ordering::Relaxed));
        let (reply, answers) = unbounded();
        self.messages
            .send(Message::Submit { graph, wanted: keys.to_vec(), reply, client })
            .map_err(|_| Error::Engine("the local engine has stopped".into()))?;
        let result = collect(keys, &answers);
        let _ = self.messages.send(Message::Release { client, keys: keys.to_vec() });
        result
    }

    fn cluster_info(&self) -> Result<ClusterInfo> {
        let (reply, answer) = unbounded();
        self.messages
            .send(Message::Info { reply })
            .map_err(|_| Error::Engine("the local engine has stopped".into()))?;
        answer.recv().map_err(|_| Error::Engine("the local engine has stopped".into()))
    }

    fn progress(&self) -> &Progress {
        &self.progress
    }
}

fn collect(keys: &[Key], answers: &Receiver<Reply>) -> Result<Vec<Arc<Value>>> {
    let mut values: HashMap<Key, Arc<Value>> = HashMap::with_capacity(keys.len());
    while values.len() < keys.len() {
        let (key, result) = answers.recv().map_err(|_| Error::Engine("the local engine has stopped".into()))?;
        values.insert(key, result?);
    }
    keys.iter().map(|k| values.get(k).cloned().ok_or_else(|| Error::Engine(format!("no result for {k}")))).collect()
}

/// State of the scheduler thread.
struct Scheduler {
    pool: TaskPool,
    tasks: HashMap<Key, Arc<Task>>,
    store: HashMap<Key, Arc<Value>>,
    stored_bytes: u64,
    memory_limit: Option<u64>,
    running: usize,
    paused: VecDeque<Key>,
    replies: HashMap<ClientId, Sender<Reply>>,
    progress: Arc<Progress>,
    commands: Vec<Command>,
}

impl Scheduler {
    fn run(mut self, mut state: State, messages: Receiver<Message>) {
        self.apply(&mut state);
        for message in messages {
            match message {
                Message::Submit { graph, wanted, reply, client } => {
                    self.replies.insert(client, reply);
                    let mut specs = Vec::with_capacity(graph.len());
                    for (key, task) in graph.into_tasks() {
                        if !self.tasks.contains_key(&key) {
                            self.progress.submitted.fetch_add(1, Ordering::Relaxed);
                        }
                        specs.push(TaskSpec { key: key.clone(), deps: task.deps.clone() });
                        self.tasks.entry(key).or_insert_with(|| Arc::new(task));
                    }
                    state.handle_into(Event::GraphSubmitted { client, tasks: specs, wanted }, &mut self.commands);
                }
                Message::Release { client, keys } => {
                    self.replies.remove(&client);
                    state.handle_into(Event::KeysReleased { client, keys }, &mut self.commands);
                }
                Message::Info { reply } => {
                    let metrics = WorkerMetrics {
                        memory_bytes: self.stored_bytes,
                        executing: (self.running + self.paused.len()) as u32,
                        stored_keys: self.store.len() as u64,
                    };
                    let worker = WorkerSummary {
                        name: "local".into(),
                        data_address: String::new(),
                        nthreads: self.pool.nthreads() as u32,
                        held_keys: self.store.len() as u64,
                        metrics,
                    };
                    let _ = reply.send(ClusterInfo {
                        workers: vec![worker],
                        tasks: state.task_count() as u64,
                        clients: self.replies.len() as u32,
                    });
                }
                Message::Done(outcome) => {
                    self.running -= 1;
                    self.progress.finished.fetch_add(1, Ordering::Relaxed);
                    let event = match outcome.result {
                        Ok(value) => {
                            let nbytes = value.nbytes() as u64;
                            self.stored_bytes += nbytes;
                            self.store.insert(outcome.key.clone(), value);
                            Event::TaskFinished { worker: LOCAL_WORKER, key: outcome.key, nbytes }
                        }
                        // The error reaches the caller as `TaskFailed` for this key, so a
                        // message that already says so is not wrapped twice.
                        Err(Error::TaskFailed { key, message }) if key == outcome.key.to_string() => {
                            Event::TaskErred { worker: LOCAL_WORKER, key: outcome.key, message }
                        }
                        Err(e) => Event::TaskErred { worker: LOCAL_WORKER, key: outcome.key, message: e.to_string() },
                    };
                    state.handle_into(event, &mut self.commands);
                }
            }
            self.apply(&mut state);
        }
    }

    /// Carries out the scheduler's commands, starting queued tasks while memory allows,
    /// until nothing is left to do.
    fn apply(&mut self, state: &mut State) {
        loop {
            for command in std::mem::take(&mut self.commands) {
                match command {
                    Command::Execute { key, .. } => self.paused.push_back(key),
                    Command::Release { key, .. } => {
                        if let Some(v) = self.store.remove(&key) {
                            self.stored_bytes -= v.nbytes() as u64;
                        }
                    }
                    Command::Forget { key } => {
                        self.tasks.remove(&key);
                    }
                    Command::Ready { client, key } => {
                        if let (Some(reply), Some(value)) = (self.replies.get(&client), self.store.get(&key)) {
                            let _ = reply.send((key, Ok(value.clone())));
                        }
                    }
                    Command::Erred { client, key, message } => {
                        if let Some(reply) = self.replies.get(&client) {
                            let _ = reply.send((key.clone(), Err(Error::TaskFailed { key: key.to_string(), message })));
                        }
                    }
                }
            }
            while self.running == 0 || self.memory_limit.is_none_or(|limit| self.stored_bytes <= limit) {
                let Some(key) = self.paused.pop_front() else { break };
                self.start(key, state);
            }
            if self.commands.is_empty() {
                break;
            }
        }
    }

    fn start(&mut self, key: Key, state: &mut State) {
        let Some(task) = self.tasks.get(&key).cloned() else {
            let message = "the scheduler asked to run a task it was never given".to_string();
            state.handle_into(Event::TaskErred { worker: LOCAL_WORKER, key, message }, &mut self.commands);
            return;
        };
        let inputs: Option<Vec<Arc<Value>>> = task.deps.iter().map(|d| self.store.get(d).cloned()).collect();
        match inputs {
            Some(inputs) => {
                self.running += 1;
                self.pool.submit(Job { key, task, inputs });
            }
            None => {
                let message = "an input of the task is not in memory".to_string();
                state.handle_into(Event::TaskErred { worker: LOCAL_WORKER, key, message }, &mut self.commands);
            }
        }
    }
}
