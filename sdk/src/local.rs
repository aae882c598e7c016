//! The embedded engine behind `Client::local()`.
//!
//! One scheduler thread owns the scheduler's state machine
//! ([`tessera_scheduler::State`], which holds the tasks) and the worker's data store;
//! one [`TaskPool`] runs the tasks. Everything talks over channels, exactly as the
//! distributed runtime talks over sockets: the scheduler decides, the pool executes,
//! and the outcome comes back as an event.
//!
//! Memory: when the values held exceed the memory limit, no new task starts while
//! others are running (Dask's "pause"), so finishing tasks can release their inputs.
//!
//! The pool is given one task per thread, or a few more while tasks are very short
//! ([`Saturation`]), so its threads need not wait for this thread between tasks.

use crate::client::{Engine, Location, News, Progress, Ticket, await_answer};
use crossbeam_channel::{Receiver, Sender, unbounded};
use rustc_hash::FxHashMap;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tessera_core::wire::{ClusterInfo, Coordinate, Coordinated, TaskRecord, WorkerMetrics, WorkerSummary};
use tessera_core::{Error, Graph, Key, Result, Task, Value};
use tessera_scheduler::coordination::{Answer, Coordination};
use tessera_scheduler::saturation::Saturation;
use tessera_scheduler::server::status::Activity;
use tessera_scheduler::{ClientId, Command, Event, State, WorkerId};
use tessera_worker::pool::{Job, Outcome, TaskPool};

/// The single worker of the embedded engine.
const LOCAL_WORKER: WorkerId = WorkerId(0);

/// Its name in cluster info and task streams.
const LOCAL_WORKER_NAME: &str = "local";

enum Message {
    /// A new ticket (`news` set) or more keys for a known one (`news` empty).
    Submit {
        graph: Graph,
        wanted: Vec<Key>,
        news: Option<Sender<News>>,
        client: ClientId,
    },
    Release {
        client: ClientId,
        keys: Vec<Key>,
    },
    Close {
        client: ClientId,
    },
    Info {
        reply: Sender<ClusterInfo>,
    },
    TaskStream {
        reply: Sender<(f64, Vec<TaskRecord>)>,
    },
    Coordinate {
        request: u64,
        op: Coordinate,
        answer: Sender<Coordinated>,
    },
    CancelWait {
        request: u64,
    },
    Done(Outcome),
}

/// The one client of the coordination primitives: every handle in this process.
const COORDINATING_CLIENT: ClientId = ClientId(u32::MAX);

/// A ticket of the embedded engine: a client of its scheduler.
struct Submitter {
    news: Sender<News>,
    wanted: HashSet<Key>,
}

/// The in-process engine: a scheduler thread and a task pool.
pub(crate) struct LocalEngine {
    messages: Sender<Message>,
    next_client: std::sync::atomic::AtomicU32,
    next_request: std::sync::atomic::AtomicU64,
    progress: Arc<Progress>,
    /// Never sends: the engine lives as long as the process.
    never_closed: Receiver<()>,
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
            store: FxHashMap::default(),
            stored_bytes: 0,
            memory_limit,
            running: 0,
            paused: VecDeque::new(),
            submitters: HashMap::new(),
            coordination: Coordination::default(),
            coordinating: HashMap::new(),
            activity: Activity::default(),
            worker_name: LOCAL_WORKER_NAME.into(),
            progress: progress.clone(),
            commands: Vec::new(),
            saturation: Saturation::new(1.0),
        };
        state.handle_into(
            Event::WorkerAdded { worker: LOCAL_WORKER, nthreads, resources: Vec::new() },
            &mut scheduler.commands,
        );
        std::thread::Builder::new()
            .name("tessera-scheduler".into())
            .spawn(move || scheduler.run(state, rx))
            .map_err(|e| Error::Engine(format!("cannot start the scheduler thread: {e}")))?;
        Ok(LocalEngine {
            messages: tx,
            next_client: Default::default(),
            next_request: Default::default(),
            progress,
            never_closed: crossbeam_channel::never(),
        })
    }
}

impl LocalEngine {
    fn send(&self, message: Message) -> Result<()> {
        self.messages.send(message).map_err(|_| Error::Engine("the local engine has stopped".into()))
    }
}

impl Engine for LocalEngine {
    fn submit(&self, graph: Graph, keys: &[Key]) -> Result<(Ticket, Receiver<News>)> {
        if let Some((key, task)) = graph.iter().find(|(_, t)| !t.resources.is_empty()) {
            return Err(Error::invalid(
                "resources",
                format!(
                    "task {key} needs {:?}, but the embedded engine offers no resources; run it on a cluster \
                     whose workers offer them (tessera worker --resources)",
                    task.resources
                ),
            ));
        }
        let client = ClientId(self.next_client.fetch_add(1, Ordering::Relaxed));
        let (news, receiver) = unbounded();
        self.send(Message::Submit { graph, wanted: keys.to_vec(), news: Some(news), client })?;
        Ok((Ticket::from(client.0), receiver))
    }

    fn resubmit(&self, ticket: Ticket, keys: &[Key]) -> Result<()> {
        let client = client_of(ticket);
        self.send(Message::Submit { graph: Graph::new(), wanted: keys.to_vec(), news: None, client })
    }

    fn fetch(&self, located: Vec<(Key, Location)>) -> (HashMap<Key, Arc<Value>>, Vec<Key>) {
        let mut values = HashMap::with_capacity(located.len());
        let mut lost = Vec::new();
        for (key, location) in located {
            match location {
                Location::Here(value) => {
                    values.insert(key, value);
                }
                Location::At(_) => lost.push(key),
            }
        }
        (values, lost)
    }

    fn release(&self, ticket: Ticket, keys: &[Key]) {
        let _ = self.send(Message::Release { client: client_of(ticket), keys: keys.to_vec() });
    }

    fn close(&self, ticket: Ticket) {
        let _ = self.send(Message::Close { client: client_of(ticket) });
    }

    fn cluster_info(&self) -> Result<ClusterInfo> {
        let (reply, answer) = unbounded();
        self.send(Message::Info { reply })?;
        answer.recv().map_err(|_| Error::Engine("the local engine has stopped".into()))
    }

    fn task_stream(&self) -> Result<(f64, Vec<TaskRecord>)> {
        let (reply, answer) = unbounded();
        self.send(Message::TaskStream { reply })?;
        answer.recv().map_err(|_| Error::Engine("the local engine has stopped".into()))
    }

    fn shutdown(&self) -> Result<()> {
        Err(Error::invalid("shutdown", "the embedded engine has no cluster to shut down; it stops with its process"))
    }

    fn replicate(&self, _keys: &[Key]) -> Result<()> {
        // Every task thread reads the one in-process copy.
        Ok(())
    }

    fn coordinate(&self, op: Coordinate, timeout: Option<Duration>) -> Result<Option<Coordinated>> {
        let request = self.next_request.fetch_add(1, Ordering::Relaxed);
        let (answer, answered) = crossbeam_channel::bounded(1);
        self.send(Message::Coordinate { request, op, answer })?;
        await_answer(&answered, &self.never_closed, timeout, || self.send(Message::CancelWait { request }))
    }

    fn progress(&self) -> &Progress {
        &self.progress
    }
}

/// The scheduler's client for `ticket` (tickets are client ids here).
fn client_of(ticket: Ticket) -> ClientId {
    ClientId(ticket as u32)
}

/// State of the scheduler thread.
struct Scheduler {
    pool: TaskPool,
    store: FxHashMap<Key, Arc<Value>>,
    stored_bytes: u64,
    memory_limit: Option<u64>,
    running: usize,
    /// Tasks the scheduler assigned that have not started.
    paused: VecDeque<(Key, Arc<Task>)>,
    submitters: HashMap<ClientId, Submitter>,
    coordination: Coordination,
    coordinating: HashMap<u64, Sender<Coordinated>>,
    activity: Activity,
    /// The one worker's name in the task stream.
    worker_name: Arc<str>,
    progress: Arc<Progress>,
    commands: Vec<Command>,
    /// Tasks given to the pool per thread.
    saturation: Saturation,
}

impl Scheduler {
    fn run(mut self, mut state: State, messages: Receiver<Message>) {
        self.apply(&mut state);
        for message in messages {
            match message {
                Message::Submit { graph, wanted, news, client } => {
                    if let Some(news) = news {
                        self.submitters.insert(client, Submitter { news, wanted: HashSet::new() });
                    }
                    let Some(submitter) = self.submitters.get_mut(&client) else { continue };
                    submitter.wanted.extend(wanted.iter().cloned());
                    let tasks = graph.into_tasks().into_iter().collect();
                    state.handle_into(Event::GraphSubmitted { client, tasks, wanted }, &mut self.commands);
                }
                Message::Release { client, keys } => {
                    if let Some(submitter) = self.submitters.get_mut(&client) {
                        keys.iter().for_each(|k| {
                            submitter.wanted.remove(k);
                        });
                    }
                    state.handle_into(Event::KeysReleased { client, keys }, &mut self.commands);
                }
                Message::Close { client } => {
                    if let Some(submitter) = self.submitters.remove(&client) {
                        let keys = submitter.wanted.into_iter().collect();
                        state.handle_into(Event::KeysReleased { client, keys }, &mut self.commands);
                    }
                }
                Message::Info { reply } => {
                    let metrics = WorkerMetrics {
                        memory_bytes: self.stored_bytes,
                        spilled_bytes: 0,
                        executing: (self.running + self.paused.len()) as u32,
                        stored_keys: self.store.len() as u64,
                    };
                    let worker = WorkerSummary {
                        name: LOCAL_WORKER_NAME.into(),
                        data_address: String::new(),
                        nthreads: self.pool.nthreads() as u32,
                        held_keys: self.store.len() as u64,
                        metrics,
                    };
                    let _ = reply.send(ClusterInfo {
                        workers: vec![worker],
                        tasks: state.task_count() as u64,
                        clients: self.submitters.len() as u32,
                    });
                }
                Message::TaskStream { reply } => {
                    let _ = reply.send(self.activity.task_stream());
                }
                Message::Coordinate { request, op, answer } => {
                    self.coordinating.insert(request, answer);
                    let answers = self.coordination.request(COORDINATING_CLIENT, request, op);
                    self.answer(answers);
                }
                Message::CancelWait { request } => {
                    self.coordinating.remove(&request);
                    let answers = self.coordination.cancel(COORDINATING_CLIENT, request);
                    self.answer(answers);
                }
                Message::Done(outcome) => {
                    self.running -= 1;
                    self.progress.finished.fetch_add(1, Ordering::Relaxed);
                    let (key, duration_s) = (&outcome.key, outcome.duration.as_secs_f64());
                    self.activity.finished(key, &self.worker_name, duration_s);
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
                    if self.saturation.adapt(&self.activity) {
                        let nthreads = self.saturation.slots(self.pool.nthreads() as u32);
                        let added = Event::WorkerAdded { worker: LOCAL_WORKER, nthreads, resources: Vec::new() };
                        state.handle_into(added, &mut self.commands);
                    }
                }
            }
            self.apply(&mut state);
        }
    }

    /// Sends coordination answers to the requests that asked.
    fn answer(&mut self, answers: Vec<Answer>) {
        for ((_, request), reply) in answers {
            if let Some(asker) = self.coordinating.remove(&request) {
                let _ = asker.send(reply);
            }
        }
    }

    /// Carries out the scheduler's commands, starting queued tasks while memory allows,
    /// until nothing is left to do.
    fn apply(&mut self, state: &mut State) {
        loop {
            for command in std::mem::take(&mut self.commands) {
                match command {
                    Command::Execute { key, task, .. } => self.paused.push_back((key, task)),
                    Command::Release { key, .. } => {
                        if let Some(v) = self.store.remove(&key) {
                            self.stored_bytes -= v.nbytes() as u64;
                        }
                    }
                    // The scheduler drops the task's op; nothing else is kept per task.
                    Command::Forget { .. } => {}
                    Command::Ready { client, key } => {
                        if let (Some(submitter), Some(value)) = (self.submitters.get(&client), self.store.get(&key)) {
                            let _ = submitter.news.send((key, Ok(Location::Here(value.clone()))));
                        }
                    }
                    Command::Erred { client, key, message } => {
                        if let Some(submitter) = self.submitters.get(&client) {
                            let _ = submitter
                                .news
                                .send((key.clone(), Err(Error::TaskFailed { key: key.to_string(), message })));
                        }
                    }
                }
            }
            while self.running == 0 || self.memory_limit.is_none_or(|limit| self.stored_bytes <= limit) {
                let Some((key, task)) = self.paused.pop_front() else { break };
                self.start(key, task, state);
            }
            if self.commands.is_empty() {
                break;
            }
        }
    }

    fn start(&mut self, key: Key, task: Arc<Task>, state: &mut State) {
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
