//! [`Cluster`]: the scheduler server's single owner of state. It turns what clients and
//! workers say into [`Event`]s for the [`State`] machine and its [`Command`]s into
//! messages, and keeps what the state machine leaves to its shell: each task's op, the
//! connected workers and clients, the task components to hand to workers, and the
//! activity the dashboard shows.
//!
//! Retiring a worker is graceful: it gets no new task; once its running tasks are
//! done, every value only it holds is copied to another worker (`Copy`), and when it
//! holds nothing the scheduler tells it to shut down. Nothing is recomputed.
//!
//! Replicating a value (a client's `Replicate`, as `scatter(broadcast)` sends) uses
//! the same `Copy`: every worker not holding it fetches it from a holder, and each copy
//! made becomes a replica in the state machine.

use super::status::{Activity, AdaptiveTarget, RetireRequest, Retired, Status};
use crate::coordination::{Answer, Coordination};
use crate::saturation::Saturation;
use crate::{ClientId, Command, Event, State, TaskState, WorkerId};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera_core::wire::{
    ClientMessage, ClientReply, ClusterInfo, InputLocation, WorkerCommand, WorkerInfo, WorkerMetrics, WorkerReport,
    WorkerSummary,
};
use tessera_core::{Key, Op, Task};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;

/// Work a new worker should be able to finish in, for the adaptive target.
const TARGET_DURATION_S: f64 = 5.0;

/// Tasks are stolen only while recent tasks ran at least this long on average: moving
/// a shorter task costs more round trips than it saves.
const MIN_STEAL_TASK_S: f64 = 0.005;

/// How long a shutting-down scheduler waits for its workers to leave.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The id given to a worker that is not connected (ids count up from 1).
const GONE: WorkerId = WorkerId(u32::MAX);

/// Assumed run time of a task before any has been measured (as Dask's default).
const UNKNOWN_TASK_DURATION_S: f64 = 0.5;

/// Something that reached the scheduler, from a connection, the HTTP API or a timer.
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
    /// The dashboard asks for the current [`Status`].
    Status { reply: oneshot::Sender<Status> },
    /// An autoscaler asks how many workers the work wants.
    AdaptiveTarget { reply: oneshot::Sender<AdaptiveTarget> },
    /// An autoscaler or user retires workers.
    Retire { request: RetireRequest, reply: oneshot::Sender<Result<Retired, String>> },
    /// Time passed: check heartbeats, retirements, send progress.
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
    /// `info.name`, shared by the task stream's entries.
    name: Arc<str>,
    commands: UnboundedSender<WorkerCommand>,
    last_seen: Instant,
    metrics: WorkerMetrics,
    /// Components it has been sent, by sha256.
    modules: HashSet<String>,
    /// Leaving: no new tasks; its values are being copied elsewhere.
    retiring: bool,
    /// Keys whose copy off this (retiring) worker is under way.
    copying: HashSet<Key>,
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
    modules: HashMap<String, Arc<Vec<u8>>>,
    workers: HashMap<WorkerId, Worker>,
    clients: HashMap<ClientId, Client>,
    activity: Activity,
    /// `finished_total` last sent to clients.
    progress_sent: u64,
    /// Locks, events, variables and queues shared by the clients.
    coordination: Coordination,
    /// Workers asked to give tasks back, until they answer.
    stealing_from: HashSet<WorkerId>,
    /// Tasks given back for idle workers since the start.
    stolen_total: u64,
    /// Tasks assigned per worker thread now: the configured saturation, or more while
    /// tasks are very short.
    saturation: Saturation,
    /// Copies made for a `Replicate` request, by key and receiving worker, until the
    /// worker reports them.
    replicating: HashSet<(Key, WorkerId)>,
    /// When a client asked the whole cluster to shut down.
    shutdown_since: Option<Instant>,
    /// Fired once the shutdown is complete: the server stops.
    stop: Option<oneshot::Sender<()>>,
}

impl Cluster {
    /// A cluster with no workers and no clients yet; `stop` fires when a client has
    /// shut the cluster down.
    pub(crate) fn new(config: ClusterConfig, stop: oneshot::Sender<()>) -> Self {
        Cluster {
            saturation: Saturation::new(config.worker_saturation),
            config,
            state: State::new(),
            commands: Vec::new(),
            modules: HashMap::new(),
            workers: HashMap::new(),
            clients: HashMap::new(),
            activity: Activity::default(),
            progress_sent: 0,
            coordination: Coordination::default(),
            stealing_from: HashSet::new(),
            stolen_total: 0,
            replicating: HashSet::new(),
            shutdown_since: None,
            stop: Some(stop),
        }
    }

    /// Handles one inbound message and sends what follows from it.
    pub(crate) fn handle(&mut self, inbound: Inbound) {
        match inbound {
            Inbound::WorkerJoined { id, info, commands } => {
                tracing::info!(worker = %info.name, address = %info.data_address, nthreads = info.nthreads, "worker joined");
                let slots = self.saturation.slots(info.nthreads);
                let worker = Worker {
                    name: info.name.as_str().into(),
                    info,
                    commands,
                    last_seen: Instant::now(),
                    metrics: WorkerMetrics::default(),
                    modules: HashSet::new(),
                    retiring: false,
                    copying: HashSet::new(),
                };
                self.workers.insert(id, worker);
                let resources = self.workers[&id].info.resources.clone();
                self.event(Event::WorkerAdded { worker: id, nthreads: slots, resources });
            }
            Inbound::FromWorker { id, reports } => {
                let Some(worker) = self.workers.get_mut(&id) else { return };
                worker.last_seen = Instant::now();
                for report in reports {
                    self.worker_report(id, report);
                }
                self.progress_retirements();
                self.adapt_saturation();
            }
            Inbound::WorkerLeft { id } => {
                self.remove_worker(id, "its connection closed");
                self.finish_shutdown();
            }
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
                let answers = self.coordination.client_left(id);
                self.answer(answers);
            }
            Inbound::Status { reply } => {
                let _ = reply.send(self.status());
            }
            Inbound::AdaptiveTarget { reply } => {
                let _ = reply.send(self.adaptive_target());
            }
            Inbound::Retire { request, reply } => {
                let _ = reply.send(self.retire(request));
                self.progress_retirements();
            }
            Inbound::Tick => {
                let timeout = self.config.heartbeat_timeout;
                let silent: Vec<WorkerId> =
                    self.workers.iter().filter(|(_, w)| w.last_seen.elapsed() > timeout).map(|(id, _)| *id).collect();
                for id in silent {
                    self.remove_worker(id, "it missed its heartbeats");
                }
                self.progress_retirements();
                self.balance();
                self.finish_shutdown();
                let finished_total = self.activity.finished_total();
                if finished_total != self.progress_sent {
                    self.progress_sent = finished_total;
                    for client in self.clients.values() {
                        let _ = client.replies.send(ClientReply::Progress { finished_total });
                    }
                }
            }
        }
    }

    /// Sends coordination answers to the clients that asked.
    fn answer(&self, answers: Vec<Answer>) {
        for ((client, request), reply) in answers {
            if let Some(c) = self.clients.get(&client) {
                let _ = c.replies.send(ClientReply::Coordinated { request, reply });
            }
        }
    }

    /// Tells every worker to stop; the server stops once they have left.
    fn shutdown(&mut self) {
        tracing::info!(workers = self.workers.len(), "a client shut the cluster down");
        for worker in self.workers.values() {
            let _ = worker.commands.send(WorkerCommand::Shutdown);
        }
        self.shutdown_since.get_or_insert_with(Instant::now);
        self.finish_shutdown();
    }

    /// Stops the server when a shutdown has emptied the cluster (or waited long enough).
    fn finish_shutdown(&mut self) {
        if let Some(since) = self.shutdown_since
            && (self.workers.is_empty() || since.elapsed() > SHUTDOWN_GRACE)
            && let Some(stop) = self.stop.take()
        {
            let _ = stop.send(());
        }
    }

    /// Re-announces every worker's slots when the queue depth changed with the task
    /// durations (see [`Saturation`]). Checked after each batch of worker reports, so a
    /// computation of tiny tasks speeds up after its first few.
    fn adapt_saturation(&mut self) {
        if !self.saturation.adapt(&self.activity) {
            return;
        }
        let mut ids: Vec<WorkerId> = self.workers.keys().copied().collect();
        ids.sort();
        for worker in ids {
            let Some(w) = self.workers.get(&worker) else { continue };
            let (nthreads, resources) = (self.saturation.slots(w.info.nthreads), w.info.resources.clone());
            self.event(Event::WorkerAdded { worker, nthreads, resources });
        }
    }

    fn worker_report(&mut self, id: WorkerId, report: WorkerReport) {
        match report {
            WorkerReport::Finished { key, nbytes, duration_us } => {
                if let Some(worker) = self.workers.get(&id) {
                    let duration_s = duration_us as f64 / 1e6;
                    self.activity.finished(&key, &worker.name, duration_s);
                }
                self.event(Event::TaskFinished { worker: id, key, nbytes })
            }
            WorkerReport::Erred { key, message } => {
                self.activity.erred(key.name());
                self.event(Event::TaskErred { worker: id, key, message })
            }
            WorkerReport::MissingInputs { key, missing } => {
                self.event(Event::InputsMissing { worker: id, key, missing })
            }
            WorkerReport::Copied { values } => {
                for (key, from_address, _) in values {
                    if self.replicating.remove(&(key.clone(), id)) {
                        self.event(Event::ValueReplicated { key, to: id });
                        continue;
                    }
                    if let Some(from) = self.worker_at(&from_address) {
                        if let Some(w) = self.workers.get_mut(&from) {
                            w.copying.remove(&key);
                        }
                        self.event(Event::ValueMoved { key, from, to: id });
                    }
                }
            }
            WorkerReport::Returned { keys } => {
                self.stealing_from.remove(&id);
                self.stolen_total += keys.len() as u64;
                for key in keys {
                    self.event(Event::TaskReturned { worker: id, key });
                }
            }
            WorkerReport::Heartbeat(metrics) => {
                if let Some(worker) = self.workers.get_mut(&id) {
                    worker.metrics = metrics;
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
                for (key, task) in tasks.iter().filter(|(key, _)| self.state.task_state(key).is_none()) {
                    self.activity.submitted(key.name(), task.deps.iter().map(|d| d.name()));
                }
                self.event(Event::GraphSubmitted { client: id, tasks, wanted });
            }
            ClientMessage::Release { keys } => {
                if let Some(client) = self.clients.get_mut(&id) {
                    keys.iter().for_each(|k| {
                        client.wanted.remove(k);
                    });
                }
                self.event(Event::KeysReleased { client: id, keys });
            }
            ClientMessage::Scattered { holder, values } => {
                if let Some(client) = self.clients.get_mut(&id) {
                    client.wanted.extend(values.iter().map(|(k, _)| k.clone()));
                }
                // The values of a worker that left are erred by the state machine,
                // which knows no worker `GONE`.
                let worker = self.worker_at(&holder).unwrap_or(GONE);
                self.event(Event::ValuesScattered { client: id, worker, values });
            }
            ClientMessage::Shutdown => self.shutdown(),
            ClientMessage::Replicate { keys } => self.replicate(keys),
            ClientMessage::TaskStream => {
                if let Some(client) = self.clients.get(&id) {
                    let (now_s, records) = self.activity.task_stream();
                    let _ = client.replies.send(ClientReply::TaskStream { now_s, records });
                }
            }
            ClientMessage::Coordinate { request, op } => {
                let answers = self.coordination.request(id, request, op);
                self.answer(answers);
            }
            ClientMessage::CancelWait { request } => {
                let answers = self.coordination.cancel(id, request);
                self.answer(answers);
            }
            ClientMessage::Info => {
                if let Some(client) = self.clients.get(&id) {
                    let _ = client.replies.send(ClientReply::Info(self.info()));
                }
            }
        }
    }

    /// The workers and task count, workers sorted by name.
    pub(crate) fn info(&self) -> ClusterInfo {
        let mut workers: Vec<WorkerSummary> = self
            .workers
            .iter()
            .map(|(id, w)| WorkerSummary {
                name: w.info.name.clone(),
                data_address: w.info.data_address.clone(),
                nthreads: w.info.nthreads,
                held_keys: self.state.holding_count(*id) as u64,
                metrics: w.metrics.clone(),
            })
            .collect();
        workers.sort_by(|a, b| a.name.cmp(&b.name));
        ClusterInfo { workers, tasks: self.state.task_count() as u64, clients: self.clients.len() as u32 }
    }

    fn status(&self) -> Status {
        let mut status = Status { cluster: self.info(), ..Status::default() };
        status.states = self
            .state
            .count_by_state()
            .into_iter()
            .map(|(state, n)| (format!("{state:?}").to_lowercase(), n as u64))
            .collect();
        self.activity.report(&mut status);
        status.stolen_total = self.stolen_total;
        status
    }

    /// Work stealing: while some workers have idle threads, asks workers holding more
    /// tasks than threads to give back those not started. Under queuing a worker holds
    /// at most `worker_saturation` tasks per thread, so only those extra tasks move, and
    /// only while recent tasks are long enough to be worth moving.
    fn balance(&mut self) {
        let worth_moving = self.activity.recent_mean_duration_s().is_some_and(|mean| mean >= MIN_STEAL_TASK_S);
        if !worth_moving {
            return;
        }
        let mut idle_threads = 0;
        let mut victims = Vec::new();
        for (&id, worker) in &self.workers {
            let threads = worker.info.nthreads as usize;
            let assigned = self.state.processing_on(id);
            if !worker.retiring && assigned < threads {
                idle_threads += threads - assigned;
            } else if assigned > threads && !self.stealing_from.contains(&id) {
                victims.push((assigned - threads, id));
            }
        }
        victims.sort_by_key(|&(excess, id)| (std::cmp::Reverse(excess), id));
        for (excess, id) in victims {
            if idle_threads == 0 {
                break;
            }
            let count = excess.min(idle_threads);
            idle_threads -= count;
            if let Some(worker) = self.workers.get(&id) {
                let _ = worker.commands.send(WorkerCommand::Steal { count: count as u32 });
                self.stealing_from.insert(id);
            }
        }
    }

    /// Workers wanted: enough that the pending work takes about [`TARGET_DURATION_S`],
    /// no more than there are pending tasks to run, and enough to hold the results in
    /// memory within the workers' limits.
    fn adaptive_target(&self) -> AdaptiveTarget {
        let counts = self.state.count_by_state();
        let count = |s: TaskState| counts.iter().find(|(state, _)| *state == s).map_or(0, |(_, n)| *n as u64);
        let pending = count(TaskState::Waiting) + count(TaskState::Queued) + count(TaskState::Processing);
        let mean = self.activity.mean_duration_s().unwrap_or(UNKNOWN_TASK_DURATION_S);
        let expected_seconds = pending as f64 * mean;
        let threads = self.workers.values().map(|w| f64::from(w.info.nthreads)).sum::<f64>();
        let threads_per_worker = if self.workers.is_empty() { 1.0 } else { threads / self.workers.len() as f64 };
        let by_time = (expected_seconds / TARGET_DURATION_S / threads_per_worker).ceil();
        let by_tasks = (pending as f64 / threads_per_worker).ceil();
        let cpu = by_time.min(by_tasks);
        let held: u64 = self.workers.values().map(|w| w.metrics.memory_bytes).sum();
        let limits: Vec<u64> = self.workers.values().filter_map(|w| w.info.memory_limit).collect();
        let memory = match limits.is_empty() {
            true => 0.0,
            false => (held as f64 / (limits.iter().sum::<u64>() as f64 / limits.len() as f64)).ceil(),
        };
        let workers = cpu.max(memory).max(if pending > 0 { 1.0 } else { 0.0 });
        AdaptiveTarget { workers: workers as u32, pending_tasks: pending, expected_seconds }
    }

    /// Marks workers as retiring: by name, or the `n` least loaded.
    fn retire(&mut self, request: RetireRequest) -> Result<Retired, String> {
        let ids: Vec<WorkerId> = match request {
            RetireRequest::Names(names) => names
                .iter()
                .map(|name| {
                    self.workers
                        .iter()
                        .find(|(_, w)| &w.info.name == name)
                        .map(|(id, _)| *id)
                        .ok_or_else(|| format!("no worker is called {name:?}"))
                })
                .collect::<Result<_, _>>()?,
            RetireRequest::Count(n) => {
                let mut candidates: Vec<(&WorkerId, &Worker)> =
                    self.workers.iter().filter(|(_, w)| !w.retiring).collect();
                candidates.sort_by_key(|(id, w)| {
                    (w.metrics.memory_bytes, self.state.processing_on(**id), w.info.name.clone())
                });
                candidates.into_iter().take(n as usize).map(|(id, _)| *id).collect()
            }
        };
        let mut names = Vec::new();
        for id in ids {
            if let Some(worker) = self.workers.get_mut(&id) {
                worker.retiring = true;
                names.push(worker.info.name.clone());
                tracing::info!(worker = %worker.info.name, "retiring worker");
            }
            let resources = self.workers.get(&id).map(|w| w.info.resources.clone()).unwrap_or_default();
            self.event(Event::WorkerAdded { worker: id, nthreads: 0, resources });
        }
        Ok(Retired { workers: names })
    }

    /// Moves each idle retiring worker's values to the other workers, and shuts it down
    /// once it holds nothing. With no other worker to take them, the values stay.
    fn progress_retirements(&mut self) {
        let retiring: Vec<WorkerId> = self.workers.iter().filter(|(_, w)| w.retiring).map(|(id, _)| *id).collect();
        for id in retiring {
            if self.state.processing_on(id) > 0 {
                continue;
            }
            let held = self.state.held_by(id);
            if held.is_empty() {
                if let Some(worker) = self.workers.get(&id) {
                    let _ = worker.commands.send(WorkerCommand::Shutdown);
                }
                self.remove_worker(id, "it retired");
                continue;
            }
            let mut takers: Vec<WorkerId> =
                self.workers.iter().filter(|(_, w)| !w.retiring).map(|(id, _)| *id).collect();
            takers.sort();
            if takers.is_empty() {
                continue;
            }
            let Some(worker) = self.workers.get_mut(&id) else { continue };
            let address = worker.info.data_address.clone();
            let mut plan: HashMap<WorkerId, Vec<InputLocation>> = HashMap::new();
            for (i, key) in held.into_iter().enumerate() {
                if worker.copying.insert(key.clone()) {
                    plan.entry(takers[i % takers.len()])
                        .or_default()
                        .push(InputLocation { key, holder: address.clone() });
                }
            }
            for (taker, values) in plan {
                if let Some(w) = self.workers.get(&taker) {
                    let _ = w.commands.send(WorkerCommand::Copy { values });
                }
            }
        }
    }

    /// Copies each key in memory to every worker not holding it (and not retiring).
    fn replicate(&mut self, keys: Vec<Key>) {
        let mut plan: HashMap<WorkerId, Vec<InputLocation>> = HashMap::new();
        for key in keys {
            let holders: Vec<WorkerId> = self.state.who_has(&key).collect();
            let Some(address) = self.holder_address(&key) else { continue };
            for (&id, worker) in &self.workers {
                if worker.retiring || holders.contains(&id) || !self.replicating.insert((key.clone(), id)) {
                    continue;
                }
                plan.entry(id).or_default().push(InputLocation { key: key.clone(), holder: address.clone() });
            }
        }
        for (id, values) in plan {
            if let Some(w) = self.workers.get(&id) {
                let _ = w.commands.send(WorkerCommand::Copy { values });
            }
        }
    }

    fn remove_worker(&mut self, id: WorkerId, why: &str) {
        self.stealing_from.remove(&id);
        self.replicating.retain(|(_, to)| *to != id);
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
            Command::Execute { worker, key, task } => self.execute(worker, key, task),
            Command::Release { worker, key } => {
                if let Some(w) = self.workers.get_mut(&worker) {
                    w.copying.remove(&key);
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
            Command::Forget { key } => self.activity.forgotten(key.name()),
        }
    }

    /// The worker whose data port listens at `address`.
    fn worker_at(&self, address: &str) -> Option<WorkerId> {
        self.workers.iter().find(|(_, w)| w.info.data_address == address).map(|(id, _)| *id)
    }

    fn holder_address(&self, key: &Key) -> Option<String> {
        let holder = self.state.who_has(key).next()?;
        Some(self.workers.get(&holder)?.info.data_address.clone())
    }

    /// Sends a task to its worker with where to fetch the inputs it lacks, preceded by
    /// any component it calls that the worker has not been sent.
    fn execute(&mut self, id: WorkerId, key: Key, task: Arc<Task>) {
        let mut remote_inputs: Vec<InputLocation> = Vec::new();
        for dep in tessera_core::key::distinct(&task.deps) {
            if self.state.who_has(dep).any(|h| h == id) {
                continue;
            }
            let holder = self.state.who_has(dep).next();
            if let Some(address) = holder.and_then(|h| self.workers.get(&h)).map(|w| &w.info.data_address) {
                remote_inputs.push(InputLocation { key: dep.clone(), holder: address.clone() });
            }
        }
        self.send_modules(id, &task.op);
        match self.workers.get(&id) {
            Some(worker) => {
                let _ = worker.commands.send(WorkerCommand::Compute { key, task, remote_inputs });
            }
            None => {
                let message = "the worker chosen for the task has left".to_string();
                self.state.handle_into(Event::TaskErred { worker: id, key, message }, &mut self.commands);
            }
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_core::Value;
    use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

    const WORKER: WorkerId = WorkerId(1);

    /// A cluster with one single-threaded worker and one client that submitted `n`
    /// independent tasks; returns the worker's command queue.
    fn cluster_with_tasks(n: u64) -> (Cluster, UnboundedReceiver<WorkerCommand>) {
        let (stop, _) = oneshot::channel();
        let mut cluster = Cluster::new(ClusterConfig::default(), stop);
        let (commands, queued) = unbounded_channel();
        let info = WorkerInfo {
            name: "w0".into(),
            nthreads: 1,
            memory_limit: None,
            data_address: "tcp://127.0.0.1:1".into(),
            resources: Vec::new(),
        };
        cluster.handle(Inbound::WorkerJoined { id: WORKER, info, commands });
        let (replies, _) = unbounded_channel();
        cluster.handle(Inbound::ClientJoined { id: ClientId(1), replies });
        let literal = Arc::new(Task::new(Op::Literal(Arc::new(Value::Json(serde_json::json!(1)))), vec![]));
        let tasks: Vec<(Key, Arc<Task>)> = (0..n).map(|i| (Key::new("t", [i]), literal.clone())).collect();
        let wanted = tasks.iter().map(|(k, _)| k.clone()).collect();
        let submit = ClientMessage::Submit { tasks, wanted, modules: Vec::new() };
        cluster.handle(Inbound::FromClient { id: ClientId(1), messages: vec![submit] });
        (cluster, queued)
    }

    /// Reports every task the worker was sent as finished after `duration_us`.
    fn finish_all(cluster: &mut Cluster, queued: &mut UnboundedReceiver<WorkerCommand>, duration_us: u64) {
        let mut reports = Vec::new();
        while let Ok(command) = queued.try_recv() {
            if let WorkerCommand::Compute { key, .. } = command {
                reports.push(WorkerReport::Finished { key, nbytes: 8, duration_us });
            }
        }
        cluster.handle(Inbound::FromWorker { id: WORKER, reports });
    }

    #[test]
    fn very_short_tasks_deepen_the_workers_queues_until_tasks_are_long_again() {
        let (mut cluster, mut queued) = cluster_with_tasks(200);
        assert_eq!(cluster.state.processing_on(WORKER), 2, "the configured saturation: 2 tasks per thread");
        finish_all(&mut cluster, &mut queued, 5);
        assert_eq!(cluster.state.processing_on(WORKER), 8, "5 µs tasks: 8 per thread");
        finish_all(&mut cluster, &mut queued, 50_000);
        finish_all(&mut cluster, &mut queued, 50_000);
        assert_eq!(cluster.state.processing_on(WORKER), 2, "50 ms tasks: back to 2 per thread");
    }
}
