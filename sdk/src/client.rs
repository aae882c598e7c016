//! [`Client`]: where graphs are computed.
//!
//! `Client::local()` runs the scheduler and a pool of task threads inside this process
//! (no network). Collections compute on the client they are given, or on
//! [`Client::current`], a process-wide local client created on first use.

use crate::futures::Batch;
use crossbeam_channel::Receiver;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tessera_core::wire::transport::{Tls, TlsFiles};
use tessera_core::wire::{ClusterInfo, Coordinate, Coordinated, TaskRecord};
use tessera_core::{Error, Graph, Key, Result, Value};

/// Counts of tasks finished by an engine, for progress bars.
#[derive(Default, Debug)]
pub struct Progress {
    /// Tasks that have finished (successfully or not) so far.
    pub finished: AtomicU64,
}

/// One submission to an engine: the keys it wants stay on the engine until it is
/// released or closed. Several tickets may want the same key.
pub(crate) type Ticket = u64;

/// Where a computed value is.
#[derive(Clone, Debug)]
pub(crate) enum Location {
    /// In this process (the embedded engine's values).
    #[cfg_attr(not(feature = "local"), allow(dead_code))]
    Here(Arc<Value>),
    /// On the worker whose data address this is.
    At(String),
}

/// An engine's news of one wanted key: where its value is, or why it has none.
pub(crate) type News = (Key, Result<Location>);

/// Something that runs graphs: the embedded engine or a remote cluster.
pub(crate) trait Engine: Send + Sync {
    /// Starts computing `keys` of `graph` (which holds no [`Op::Held`] task; its other
    /// dependencies are known to the engine). News of each key arrives on the receiver.
    ///
    /// [`Op::Held`]: tessera_core::Op::Held
    fn submit(&self, graph: Graph, keys: &[Key]) -> Result<(Ticket, Receiver<News>)>;
    /// Puts `values` on the engine under their keys and wants them, as [`submit`]
    /// wants computed keys. By default they are submitted as literal tasks; a cluster
    /// sends them straight to its workers instead.
    ///
    /// [`submit`]: Engine::submit
    fn scatter(&self, values: Vec<(Key, Arc<Value>)>) -> Result<(Ticket, Receiver<News>)> {
        let keys: Vec<Key> = values.iter().map(|(k, _)| k.clone()).collect();
        let mut graph = Graph::new();
        for (key, value) in values {
            graph.insert(key, tessera_core::Task::new(tessera_core::Op::Literal(value), vec![]));
        }
        self.submit(graph, &keys)
    }
    /// Asks again for `keys` of `ticket` whose values could not be fetched (their holder
    /// died): the engine recomputes them and sends news again.
    fn resubmit(&self, ticket: Ticket, keys: &[Key]) -> Result<()>;
    /// Fetches located values; returns them with the keys whose holder did not have them.
    fn fetch(&self, located: Vec<(Key, Location)>) -> (HashMap<Key, Arc<Value>>, Vec<Key>);
    /// `ticket` no longer wants `keys`.
    fn release(&self, ticket: Ticket, keys: &[Key]);
    /// `ticket` wants nothing more: everything it wanted is released.
    fn close(&self, ticket: Ticket);
    /// The engine's task counters.
    fn progress(&self) -> &Progress;
    /// The workers and the task count right now.
    fn cluster_info(&self) -> Result<ClusterInfo>;
    /// Stops every worker and the scheduler of a cluster.
    fn shutdown(&self) -> Result<()>;
    /// Copies the values of `keys` (computed) to every worker, in the background.
    fn replicate(&self, keys: &[Key]) -> Result<()>;
    /// The scheduler's clock (seconds since it started) and its recently finished
    /// tasks, oldest first.
    fn task_stream(&self) -> Result<(f64, Vec<TaskRecord>)>;
    /// Sends a request to the shared locks, events, variables and queues and waits up
    /// to `timeout` (forever when `None`) for the answer; `None` when the time passed
    /// first (the request is then withdrawn).
    fn coordinate(&self, op: Coordinate, timeout: Option<Duration>) -> Result<Option<Coordinated>>;
}

/// A handle to an engine that computes task graphs. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    engine: Arc<dyn Engine>,
    show_progress: bool,
    retries: u32,
    resources: Vec<(String, f64)>,
}

#[cfg(feature = "local")]
static CURRENT: std::sync::OnceLock<Client> = std::sync::OnceLock::new();

/// What a client presents to a cluster: its token and, for a `tls://` scheduler, a TLS
/// identity signed by the cluster's CA.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    /// The cluster's shared secret.
    pub token: String,
    /// The client's CA, certificate and key files.
    pub tls: Option<TlsFiles>,
}

impl Client {
    /// An embedded engine with one task thread per core and no memory limit.
    #[cfg(feature = "local")]
    pub fn local() -> Client {
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        Client::local_with(threads, None).expect("the local engine starts")
    }

    /// An embedded engine with `threads` task threads; above `memory_limit` bytes of held
    /// results, no new task starts until running ones free memory.
    #[cfg(feature = "local")]
    pub fn local_with(threads: usize, memory_limit: Option<u64>) -> Result<Client> {
        let engine = crate::local::LocalEngine::start(threads, memory_limit)?;
        Ok(Client { engine: Arc::new(engine), show_progress: true, retries: 0, resources: Vec::new() })
    }

    /// A client of the cluster whose scheduler listens at `address` (`tcp://host:port`,
    /// `tls://host:port` or `host:port`), with the token in `TESSERA_TOKEN` and, for a
    /// TLS cluster, the identity in `TESSERA_TLS_CA`, `TESSERA_TLS_CERT` and
    /// `TESSERA_TLS_KEY`.
    pub fn connect(address: &str) -> Result<Client> {
        let token = std::env::var("TESSERA_TOKEN").unwrap_or_default();
        Client::connect_with_token(address, &token)
    }

    /// A client of the cluster at `address`, presenting `token` (and the TLS identity
    /// of the environment, if any).
    pub fn connect_with_token(address: &str, token: &str) -> Result<Client> {
        Client::connect_with(address, &Credentials { token: token.to_string(), tls: TlsFiles::from_env()? })
    }

    /// A client of the cluster at `address`, presenting `credentials`.
    pub fn connect_with(address: &str, credentials: &Credentials) -> Result<Client> {
        let tls = credentials.tls.as_ref().map(Tls::load).transpose()?;
        let engine = crate::remote::RemoteEngine::connect(address, &credentials.token, tls)?;
        Ok(Client { engine: Arc::new(engine), show_progress: true, retries: 0, resources: Vec::new() })
    }

    /// The process-wide default client (a [`Client::local`] created on first use), used
    /// by `compute()` on collections.
    #[cfg(feature = "local")]
    pub fn current() -> Client {
        CURRENT.get_or_init(Client::local).clone()
    }

    /// The engine behind this client.
    pub(crate) fn engine(&self) -> &dyn Engine {
        self.engine.as_ref()
    }

    /// True when `engine` is this client's engine.
    pub(crate) fn runs_on(&self, engine: &Arc<dyn Engine>) -> bool {
        Arc::ptr_eq(&self.engine, engine)
    }

    /// The workers (with their last reported figures) and the task count right now.
    pub fn cluster_info(&self) -> Result<ClusterInfo> {
        self.engine.cluster_info()
    }

    /// Stops every worker of the cluster, then its scheduler (a cluster only: the
    /// embedded engine stops with its process).
    pub fn shutdown(&self) -> Result<()> {
        self.engine.shutdown()
    }

    /// Waits until at least `n` workers have joined; an error naming how many did
    /// when `timeout` passes first.
    pub fn wait_for_workers(&self, n: usize, timeout: Duration) -> Result<()> {
        let start = std::time::Instant::now();
        loop {
            let joined = self.cluster_info()?.workers.len();
            if joined >= n {
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(Error::Engine(format!("only {joined} of {n} workers joined within {timeout:?}")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether `compute` draws a progress bar on a terminal (on by default; never drawn
    /// when stderr is not a terminal).
    pub fn with_progress(mut self, show: bool) -> Client {
        self.show_progress = show;
        self
    }

    /// A client whose tasks are run again up to `retries` times when they fail (for
    /// flaky work such as reads from a remote store); a worker dying under a task is
    /// handled separately and needs no retries.
    pub fn with_retries(mut self, retries: u32) -> Client {
        self.retries = retries;
        self
    }

    /// A client whose tasks each need `resources` (such as `[("GPU", 1.0)]`): they run
    /// only on workers offering them (`tessera worker --resources GPU=2`), as many at
    /// once as the amounts allow.
    pub fn with_resources(mut self, resources: &[(&str, f64)]) -> Client {
        self.resources = resources.iter().map(|(name, amount)| (name.to_string(), *amount)).collect();
        self
    }

    /// Computes the values of `keys` in `graph`: culls, fuses blockwise chains, runs,
    /// gathers, and lets the engine forget them. Draws a progress bar while it waits.
    pub fn compute_keys(&self, graph: &Graph, keys: &[Key]) -> Result<Vec<Arc<Value>>> {
        let (batch, tasks) = self.submit_keys(graph, keys)?;
        if !self.show_progress {
            return batch.values(keys);
        }
        std::thread::scope(|scope| {
            let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
            let progress = self.engine.progress();
            scope.spawn(move || draw_progress(progress, tasks, &stopped));
            let values = batch.values(keys);
            drop(stop);
            values
        })
    }

    /// Starts computing `keys` of `graph` (culled and fused); the returned batch holds
    /// them on the engine until it is dropped. Also returns the number of tasks sent.
    pub(crate) fn submit_keys(&self, graph: &Graph, keys: &[Key]) -> Result<(Arc<Batch>, u64)> {
        let graph = graph.cull(keys)?.fuse_blockwise(keys);
        let graph = self.adopt_held(graph)?.without_held().with_options(self.retries, &self.resources);
        let tasks = graph.len() as u64;
        Ok((Batch::submit(self.engine.clone(), graph, keys)?, tasks))
    }

    /// Puts `values` on the engine under their keys, kept while the batch lives.
    pub(crate) fn scatter_keys(&self, values: Vec<(Key, Arc<Value>)>) -> Result<Arc<Batch>> {
        Batch::scatter(self.engine.clone(), values)
    }
}

/// Waits for the answer to a coordination request: up to `timeout` (forever when
/// `None`), or until `closed` disconnects (the engine went away). When the time passes
/// first, `withdraw` tells the engine to stop waiting, and `None` is returned unless the
/// answer arrived meanwhile.
pub(crate) fn await_answer(
    answered: &Receiver<Coordinated>,
    closed: &Receiver<()>,
    timeout: Option<Duration>,
    withdraw: impl FnOnce() -> Result<()>,
) -> Result<Option<Coordinated>> {
    let deadline = timeout.map_or_else(crossbeam_channel::never, crossbeam_channel::after);
    let gone = || Error::Connection("the engine went away before answering".into());
    crossbeam_channel::select! {
        recv(answered) -> answer => answer.map(Some).map_err(|_| gone()),
        recv(closed) -> _ => Err(gone()),
        recv(deadline) -> _ => {
            withdraw()?;
            Ok(answered.try_recv().ok())
        }
    }
}

/// Draws a terminal progress bar of `total` tasks, from the engine's finished counter,
/// until `done` is disconnected.
fn draw_progress(progress: &Progress, total: u64, done: &Receiver<()>) {
    let start_done = progress.finished.load(Ordering::Relaxed);
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("[{elapsed_precise}] {bar:40} {pos}/{len} tasks")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    while let Err(crossbeam_channel::RecvTimeoutError::Timeout) = done.recv_timeout(Duration::from_millis(100)) {
        bar.set_position(progress.finished.load(Ordering::Relaxed).saturating_sub(start_done));
    }
    bar.finish_and_clear();
}
