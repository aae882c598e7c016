//! [`Cluster`]: the scheduler server's single owner of state. It turns what clients and
//! workers say into [`Event`]s for the [`State`] machine and its [`Command`]s into
//! messages, and keeps what the state machine leaves to its shell: each task's op, the
//! connected workers and clients, and the task components to hand to workers.

use crate::{ClientId, Command, Event, State, TaskSpec, WorkerId};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera_core::wire::{
    ClientMessage, ClientReply, ClusterInfo, InputLocation, WorkerCommand, WorkerInfo, WorkerMetrics, WorkerReport,
    WorkerSummary,
};
use tessera_core::{Key, Op, Task};
use tokio::sync::mpsc::UnboundedSender;

/// Something that reached the scheduler, from a connection or a timer.
pub(crate) enum Inbound {
    /// A worker passed the handshake.
    WorkerJoined { id: WorkerId, info: WorkerInfo, commands: UnboundedSender<WorkerCommand> },
    /// A batch of a worker's reports.
    FromWorker { id: WorkerId, reports: Vec<WorkerReport> },
    /// A worker's connection closed.
    WorkerLeft { id: WorkerId },
    /// A client passed the handshake.
    ClientJoined { id: ClientId, replies: UnboundedSender<ClientReply> },
    /// A batch of a client's requests.
    FromClient { id: ClientId, messages: Vec<ClientMessage> },
    /// A client's connection closed.
    ClientLeft { id: ClientId },
    /// Time passed: check heartbeats.
    Tick,
}

/// How the scheduler treats its workers.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// Tasks assigned to a worker per thread (at least 1): above 1, a worker has its
    /// next task at hand when one finishes instead of waiting a round trip.
    pub worker_saturation: f64,
    /// A worker silent for this long is removed and its tasks rescheduled.
    pub heartbeat_timeout: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig { worker_saturation: 2.0, heartbeat_timeout: Duration::from_secs(30) }
    }
}

/// A connected worker.
struct Worker {
    info: WorkerInfo,
    commands: UnboundedSender<WorkerCommand>,
    last_seen: Instant,
    metrics: WorkerMetrics,
    /// Components it has been sent, by sha256.
    modules: HashSet<String>,
}

/// A connected client.
struct Client {
    replies: UnboundedSender<ClientReply>,
    /// Keys it wants, released when it leaves.
    wanted: HashSet<Key>,
}

/// The scheduler's state and the shell's bookkeeping around it.
pub(crate) struct Cluster {
    config: ClusterConfig,
    state: State,
    commands: Vec<Command>,
    tasks: HashMap<Key, Arc<Task>>,
    modules: HashMap<String, Arc<Vec<u8>>>,
    workers: HashMap<WorkerId, Worker>,
    clients: HashMap<ClientId, Client>,
}

impl Cluster {
    /// A cluster with no workers and no clients yet.
    pub(crate) fn new(config: ClusterConfig) -> Self {
        Cluster {
            config,
            state: State::new(),
            commands: Vec::new(),
            tasks: HashMap::new(),
            modules: HashMap::new(),
            workers: HashMap::new(),
            clients: HashMap::new(),
        }
    }

    /// Handles one inbound message and sends what follows from it.
    pub(crate) fn handle(&mut self, inbound: Inbound) {
        match inbound {
            Inbound::WorkerJoined { id, info, commands } => {
                let slots = (f64::from(info.nthreads) * self.config.worker_saturation.max(1.0)).ceil() as usize;
                tracing::info!(worker = %info.name, address = %info.data_address, nthreads = info.nthreads, "worker joined");
                let worker = Worker {
                    info,
                    commands,
                    last_seen: Instant::now(),
                    metrics: WorkerMetrics::default(),
                    modules: HashSet::new(),
                };
                self.workers.insert(id, worker);
                self.event(Event::WorkerAdded { worker: id, nthreads: slots.max(1) });
            }
            Inbound::FromWorker { id, reports } => {
                let Some(worker) = self.workers.get_mut(&id) else { return };
                worker.last_seen = Instant::now();
                for report in reports {
                    match report {
                        WorkerReport::Finished { key, nbytes, .. } => {
                            self.event(Event::TaskFinished { worker: id, key, nbytes })
                        }
                        WorkerReport::Erred { key, message } => {
                            self.event(Event::TaskErred { worker: id, key, message })
                        }
                        WorkerReport::MissingInputs { key, missing } => {
                            self.event(Event::InputsMissing { worker: id, key, missing })
                        }
                        WorkerReport::Heartbeat(metrics) => {
                            if let Some(worker) = self.workers.get_mut(&id) {
                                worker.metrics = metrics;
                            }
                        }
                    }
                }
            }
            Inbound::WorkerLeft { id } => self.remove_worker(id, "its connection closed"),
            Inbound::ClientJoined { id, replies } => {
                self.clients.insert(id, Client { replies, wanted: HashSet::new() });
            }
            Inbound::FromClient { id, messages } => {
                for message in messages {
                    self.client_message(id, message);
                }
            }
            Inbound::ClientLeft { id } => {
                if let Some(client) = self.clients.remove(&id) {
                    let keys: Vec<Key> = client.wanted.into_iter().collect();
                    self.event(Event::KeysReleased { client: id, keys });
                }
            }
            Inbound::Tick => {
                let timeout = self.config.heartbeat_timeout;
                let silent: Vec<WorkerId> =
                    self.workers.iter().filter(|(_, w)| w.last_seen.elapsed() > timeout).map(|(id, _)| *id).collect();
                for id in silent {
                    self.remove_worker(id, "it missed its heartbeats");
                }
            }
        }
    }

    fn client_message(&mut self, id: ClientId, message: ClientMessage) {
        match message {
            ClientMessage::Submit { tasks, wanted, modules } => {
                for module in modules {
                    self.modules.insert(module.sha256.clone(), module.bytes);
                }
                if let Some(client) = self.clients.get_mut(&id) {
                    client.wanted.extend(wanted.iter().cloned());
                }
                let mut specs = Vec::with_capacity(tasks.len());
                for (key, task) in tasks {
                    specs.push(TaskSpec::new(key.clone(), task.deps.clone()));
                    self.tasks.entry(key).or_insert(task);
                }
                self.event(Event::GraphSubmitted { client: id, tasks: specs, wanted });
            }
            ClientMessage::Info => {
                if let Some(client) = self.clients.get(&id) {
                    let _ = client.replies.send(ClientReply::Info(self.info()));
                }
            }
            ClientMessage::Release { keys } => {
                if let Some(client) = self.clients.get_mut(&id) {
                    keys.iter().for_each(|k| {
                        client.wanted.remove(k);
                    });
                }
                self.event(Event::KeysReleased { client: id, keys });
            }
        }
    }

    /// The workers and task count, workers sorted by name.
    pub(crate) fn info(&self) -> ClusterInfo {
        let mut workers: Vec<WorkerSummary> = self
            .workers
            .values()
            .map(|w| WorkerSummary {
                name: w.info.name.clone(),
                data_address: w.info.data_address.clone(),
                nthreads: w.info.nthreads,
                metrics: w.metrics.clone(),
            })
            .collect();
        workers.sort_by(|a, b| a.name.cmp(&b.name));
        ClusterInfo { workers, tasks: self.state.task_count() as u64, clients: self.clients.len() as u32 }
    }

    fn remove_worker(&mut self, id: WorkerId, why: &str) {
        if let Some(worker) = self.workers.remove(&id) {
            tracing::warn!(worker = %worker.info.name, "worker removed: {why}");
            self.event(Event::WorkerRemoved { worker: id });
        }
    }

    /// Feeds the state machine and carries out its commands until none are left.
    fn event(&mut self, event: Event) {
        self.state.handle_into(event, &mut self.commands);
        while !self.commands.is_empty() {
            for command in std::mem::take(&mut self.commands) {
                self.apply(command);
            }
        }
    }

    fn apply(&mut self, command: Command) {
        match command {
            Command::Execute { worker, key } => self.execute(worker, key),
            Command::Release { worker, key } => {
                if let Some(w) = self.workers.get(&worker) {
                    let _ = w.commands.send(WorkerCommand::Release { key });
                }
            }
            Command::Ready { client, key } => {
                let holder = self.holder_address(&key);
                if let (Some(c), Some(holder)) = (self.clients.get(&client), holder) {
                    let _ = c.replies.send(ClientReply::Ready { key, holder });
                }
            }
            Command::Erred { client, key, message } => {
                if let Some(c) = self.clients.get(&client) {
                    let _ = c.replies.send(ClientReply::Erred { key, message });
                }
            }
            Command::Forget { key } => {
                self.tasks.remove(&key);
            }
        }
    }

    fn holder_address(&self, key: &Key) -> Option<String> {
        let holder = self.state.who_has(key).first()?;
        Some(self.workers.get(holder)?.info.data_address.clone())
    }

    /// Sends a task to its worker with where to fetch the inputs it lacks, preceded by
    /// any component it calls that the worker has not been sent.
    fn execute(&mut self, id: WorkerId, key: Key) {
        let failure = match self.tasks.get(&key).cloned() {
            None => Some("the scheduler was asked to run a task it was never given".to_string()),
            Some(task) => {
                let mut remote_inputs: Vec<InputLocation> = Vec::new();
                for dep in &task.deps {
                    let holder = self.state.who_has(dep).first().copied();
                    if holder == Some(id) || remote_inputs.iter().any(|i| &i.key == dep) {
                        continue;
                    }
                    if let Some(address) = holder.and_then(|h| self.workers.get(&h)).map(|w| &w.info.data_address) {
                        remote_inputs.push(InputLocation { key: dep.clone(), holder: address.clone() });
                    }
                }
                self.send_modules(id, &task.op);
                match self.workers.get(&id) {
                    Some(worker) => {
                        let _ = worker.commands.send(WorkerCommand::Compute { key: key.clone(), task, remote_inputs });
                        None
                    }
                    None => Some("the worker chosen for the task has left".to_string()),
                }
            }
        };
        if let Some(message) = failure {
            self.commands_after(Event::TaskErred { worker: id, key, message });
        }
    }

    fn send_modules(&mut self, id: WorkerId, op: &Op) {
        let Some(worker) = self.workers.get_mut(&id) else { return };
        op.walk(&mut |op| {
            if let Op::Wasm(w) = op
                && !worker.modules.contains(&w.module)
                && let Some(bytes) = self.modules.get(&w.module)
            {
                worker.modules.insert(w.module.clone());
                let _ = worker.commands.send(WorkerCommand::LoadModule { bytes: bytes.clone() });
            }
        });
    }

    /// Handles an event raised while carrying out commands; its commands join the queue.
    fn commands_after(&mut self, event: Event) {
        self.state.handle_into(event, &mut self.commands);
    }
}
