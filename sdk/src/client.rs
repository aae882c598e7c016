//! [`Client`]: where graphs are computed.
//!
//! `Client::local()` runs the scheduler and a pool of task threads inside this process
//! (no network). Collections compute on the client they are given, or on
//! [`Client::current`], a process-wide local client created on first use.

use indicatif::{ProgressBar, ProgressStyle};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tessera_core::wire::ClusterInfo;
use tessera_core::{Error, Graph, Key, Result, Value};

/// Counts of tasks submitted to and finished by an engine, for progress bars.
#[derive(Default, Debug)]
pub struct Progress {
    /// Tasks handed to the scheduler so far.
    pub submitted: AtomicU64,
    /// Tasks that have finished (successfully or not) so far.
    pub finished: AtomicU64,
}

/// Something that runs graphs: the embedded engine or a remote cluster.
pub(crate) trait Engine: Send + Sync {
    /// Computes `keys` of `graph`, returning their values in order.
    fn compute(&self, graph: Graph, keys: &[Key]) -> Result<Vec<Arc<Value>>>;
    /// The engine's task counters.
    fn progress(&self) -> &Progress;
    /// The workers and the task count right now.
    fn cluster_info(&self) -> Result<ClusterInfo>;
}

/// A handle to an engine that computes task graphs. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    engine: Arc<dyn Engine>,
    show_progress: bool,
}

#[cfg(feature = "local")]
static CURRENT: std::sync::OnceLock<Client> = std::sync::OnceLock::new();

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
        Ok(Client { engine: Arc::new(engine), show_progress: true })
    }

    /// A client of the cluster whose scheduler listens at `address` (`host:port`),
    /// presenting the token in the `TESSERA_TOKEN` environment variable.
    pub fn connect(address: &str) -> Result<Client> {
        let token = std::env::var("TESSERA_TOKEN").unwrap_or_default();
        Client::connect_with_token(address, &token)
    }

    /// A client of the cluster at `address`, presenting `token`.
    pub fn connect_with_token(address: &str, token: &str) -> Result<Client> {
        let engine = crate::remote::RemoteEngine::connect(address, token)?;
        Ok(Client { engine: Arc::new(engine), show_progress: true })
    }

    /// The process-wide default client (a [`Client::local`] created on first use), used
    /// by `compute()` on collections.
    #[cfg(feature = "local")]
    pub fn current() -> Client {
        CURRENT.get_or_init(Client::local).clone()
    }

    /// The workers (with their last reported figures) and the task count right now.
    pub fn cluster_info(&self) -> Result<ClusterInfo> {
        self.engine.cluster_info()
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

    /// Computes the values of `keys` in `graph`: culls, fuses blockwise chains, runs.
    pub fn compute_keys(&self, graph: &Graph, keys: &[Key]) -> Result<Vec<Arc<Value>>> {
        let graph = graph.cull(keys)?.fuse_blockwise(keys);
        if !self.show_progress {
            return self.engine.compute(graph, keys);
        }
        let progress = self.engine.progress();
        let start_done = progress.finished.load(Ordering::Relaxed);
        let bar = ProgressBar::new(graph.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("[{elapsed_precise}] {bar:40} {pos}/{len} tasks")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let result = std::thread::scope(|scope| {
            let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
            let bar = &bar;
            scope.spawn(move || {
                while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                    stop_rx.recv_timeout(Duration::from_millis(100))
                {
                    bar.set_position(progress.finished.load(Ordering::Relaxed).saturating_sub(start_done));
                }
            });
            let result = self.engine.compute(graph, keys);
            drop(stop_tx);
            result
        });
        bar.finish_and_clear();
        result
    }
}
