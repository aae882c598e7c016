//! The scheduler's boundary: who talks to it ([`WorkerId`], [`ClientId`]), what it is
//! told ([`Event`]), what it asks for ([`Command`]) and how it reports a task
//! ([`TaskState`]). Everything here is plain data; the shell owns the I/O.

use std::sync::Arc;
use tessera_core::Key;

/// A worker (a process, or the in-process pool), named by the shell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkerId(pub u32);

/// A client (the submitter of graphs), named by the shell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(pub u32);

/// The structure of one task: its key and the keys whose values it reads. What the
/// task computes stays with the shell.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskSpec {
    /// The key the task computes.
    pub key: Key,
    /// The keys the task reads, in argument order (repeats allowed).
    pub deps: Arc<[Key]>,
    /// How many times the task is run again after it fails.
    pub retries: u32,
    /// Resources a worker must have free to run it (`(name, amount)`).
    pub resources: Vec<(String, f64)>,
}

impl TaskSpec {
    /// A task computing `key` from the values of `deps`, not retried, needing no
    /// resource.
    pub fn new(key: Key, deps: Vec<Key>) -> Self {
        TaskSpec { key, deps: deps.into(), retries: 0, resources: Vec::new() }
    }
}

/// Something that happened, told to [`State::handle`](crate::State::handle).
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A worker joined with `nthreads` threads (again: its thread count is updated).
    WorkerAdded {
        /// The worker.
        worker: WorkerId,
        /// How many tasks it may run at once.
        nthreads: usize,
        /// The resources it offers (`(name, amount)`), for tasks that need some.
        resources: Vec<(String, f64)>,
    },
    /// A worker died or left: its running tasks stopped and its data is gone.
    WorkerRemoved {
        /// The worker.
        worker: WorkerId,
    },
    /// A client wants `wanted` computed from `tasks` (plus tasks the scheduler already
    /// knows; a spec for a known key is ignored).
    GraphSubmitted {
        /// The client.
        client: ClientId,
        /// The task structure, in any order.
        tasks: Vec<TaskSpec>,
        /// The keys the client wants, most urgent first.
        wanted: Vec<Key>,
    },
    /// A worker finished a task and holds its value of `nbytes` bytes.
    TaskFinished {
        /// The worker.
        worker: WorkerId,
        /// The task's key.
        key: Key,
        /// Size of the value, used to run dependents near their data.
        nbytes: u64,
    },
    /// A task failed on a worker.
    TaskErred {
        /// The worker.
        worker: WorkerId,
        /// The task's key.
        key: Key,
        /// What went wrong.
        message: String,
    },
    /// A worker could not get inputs of a task it was sent: their holders did not
    /// answer or did not have them. The scheduler forgets those copies and runs the task
    /// again once the inputs are back in memory (recomputing them if need be).
    InputsMissing {
        /// The worker that was running the task.
        worker: WorkerId,
        /// The task's key.
        key: Key,
        /// The inputs it could not get.
        missing: Vec<Key>,
    },
    /// A worker gave back a task it had not started (it was stolen for an idle worker):
    /// the task runs elsewhere, on `worker` only if nowhere else fits.
    TaskReturned {
        /// The worker that had it.
        worker: WorkerId,
        /// The task's key.
        key: Key,
    },
    /// A copy of `key` was made on `to` so `from` can leave: `to` becomes its holder
    /// and `from` is told to drop it.
    ValueMoved {
        /// The key.
        key: Key,
        /// The worker that held it.
        from: WorkerId,
        /// The worker that now holds a copy.
        to: WorkerId,
    },
    /// A copy of `key` was made on `to` (a broadcast or replication): `to` holds a
    /// replica besides the value's holder.
    ValueReplicated {
        /// The key.
        key: Key,
        /// The worker that now holds a copy too.
        to: WorkerId,
    },
    /// A client stored values on a worker itself (a scatter) and wants them: they are
    /// in memory there from now on, with no task to compute them again.
    ValuesScattered {
        /// The client.
        client: ClientId,
        /// The worker holding them.
        worker: WorkerId,
        /// Each value's key and size in bytes.
        values: Vec<(Key, u64)>,
    },
    /// A client no longer wants these keys.
    KeysReleased {
        /// The client.
        client: ClientId,
        /// The keys it let go of.
        keys: Vec<Key>,
    },
}

/// Something the shell must do, returned by [`State::handle`](crate::State::handle).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Run the task on that worker; every dependency is in memory somewhere
    /// ([`State::who_has`](crate::State::who_has)).
    Execute {
        /// Where to run it.
        worker: WorkerId,
        /// The task's key.
        key: Key,
    },
    /// That worker may drop the value of `key`.
    Release {
        /// The worker holding the value.
        worker: WorkerId,
        /// The key.
        key: Key,
    },
    /// A key the client wants is in memory.
    Ready {
        /// The client.
        client: ClientId,
        /// The key.
        key: Key,
    },
    /// A key the client wants cannot be computed.
    Erred {
        /// The client.
        client: ClientId,
        /// The key.
        key: Key,
        /// Why: the task's own error, or "dependency X failed: ..." naming the task that
        /// failed first.
        message: String,
    },
    /// The scheduler forgot the task: the shell may drop what it keeps for it (its op).
    /// Sent once, after any `Release` of its value.
    Forget {
        /// The key.
        key: Key,
    },
}

/// Where a task stands; see the [`state`](crate::state) module for the life cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TaskState {
    /// Known, but its value is neither held nor being computed.
    Released,
    /// Needed; some dependency is not in memory yet.
    Waiting,
    /// Needed and ready to run; waits for a free thread in priority order.
    Queued,
    /// Running on a worker.
    Processing,
    /// Its value is held by a worker.
    Memory,
    /// It failed, or a dependency did.
    Erred,
}
