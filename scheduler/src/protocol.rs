//! The scheduler's boundary: who talks to it ([`WorkerId`], [`ClientId`]), what it is
//! told ([`Event`]), what it asks for ([`Command`]) and how it reports a task
//! ([`TaskState`]). Everything here is plain data; the shell owns the I/O.

use std::sync::Arc;
use tessera_core::{Key, Task};

/// A worker (a process, or the in-process pool), named by the shell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkerId(pub u32);

/// A client (the submitter of graphs), named by the shell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(pub u32);

/// Something that happened, told to [`State::handle`](crate::State::handle).
#[derive(Clone, Debug)]
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
    /// knows; a task for a known key is ignored).
    GraphSubmitted {
        /// The client.
        client: ClientId,
        /// Each key with the task computing it, in any order. The scheduler reads the
        /// task's dependencies, retries and resources, and hands the task back with
        /// [`Command::Execute`].
        tasks: Vec<(Key, Arc<Task>)>,
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
#[derive(Clone, Debug)]
pub enum Command {
    /// Run the task on that worker; every dependency is in memory somewhere
    /// ([`State::who_has`](crate::State::who_has)).
    Execute {
        /// Where to run it.
        worker: WorkerId,
        /// The task's key.
        key: Key,
        /// What to run: the task submitted for `key`.
        task: Arc<Task>,
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
    /// The scheduler forgot the task (and dropped its op). Sent once, after any
    /// `Release` of its value.
    Forget {
        /// The key.
        key: Key,
    },
}

impl PartialEq for Command {
    /// The same instruction: the same variant about the same key, worker and client.
    /// `Execute` does not compare the tasks (ops have no equality): a key names one task
    /// in the scheduler.
    fn eq(&self, other: &Command) -> bool {
        use Command::*;
        match (self, other) {
            (Execute { worker: w1, key: k1, .. }, Execute { worker: w2, key: k2, .. })
            | (Release { worker: w1, key: k1 }, Release { worker: w2, key: k2 }) => w1 == w2 && k1 == k2,
            (Ready { client: c1, key: k1 }, Ready { client: c2, key: k2 }) => c1 == c2 && k1 == k2,
            (Erred { client: c1, key: k1, message: m1 }, Erred { client: c2, key: k2, message: m2 }) => {
                c1 == c2 && k1 == k2 && m1 == m2
            }
            (Forget { key: k1 }, Forget { key: k2 }) => k1 == k2,
            _ => false,
        }
    }
}

impl Eq for Command {}

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
