//! The distributed runtime's wire protocol: who says what to whom.
//!
//! Every connection starts with a [`Hello`] answered by a [`Welcome`]; after that each
//! side sends frames holding batches of one message type ([`frame`]). The scheduler
//! listens for clients and workers; every worker listens for peers and clients that
//! fetch its results ("data moves once": values never pass through the scheduler).
//!
//! | connection | from → to | messages |
//! |---|---|---|
//! | client → scheduler | client → scheduler | [`ClientMessage`] |
//! | | scheduler → client | [`ClientReply`] |
//! | worker → scheduler | scheduler → worker | [`WorkerCommand`] |
//! | | worker → scheduler | [`WorkerReport`] |
//! | anyone → worker data port | requester → worker | [`DataRequest`] |
//! | | worker → requester | [`DataReply`] |

pub mod coordination;
pub mod fetch;
pub mod frame;
pub mod transport;

pub use coordination::{Coordinate, Coordinated};

use crate::graph::Task;
use crate::key::Key;
use crate::value::Value;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Bumped whenever a message changes shape; peers of another version are refused.
pub const PROTOCOL_VERSION: u32 = 5;

/// The first message on every connection.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Hello {
    /// [`PROTOCOL_VERSION`] of the sender.
    pub version: u32,
    /// The cluster's shared secret.
    pub token: String,
    /// Who is connecting.
    pub role: Role,
}

/// Who opens a connection.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Role {
    /// A client submitting graphs (to the scheduler) or gathering results (from a worker).
    Client,
    /// A worker joining the scheduler.
    Worker(WorkerInfo),
    /// A worker fetching its task inputs from another worker.
    Peer,
}

/// What a worker tells the scheduler about itself when it joins.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WorkerInfo {
    /// A name unique in the cluster (used to retire it by name).
    pub name: String,
    /// How many tasks it runs at once.
    pub nthreads: u32,
    /// Bytes of results it holds before spilling, if limited.
    pub memory_limit: Option<u64>,
    /// `host:port` where peers and clients fetch its data.
    pub data_address: String,
    /// Abstract resources it offers (`--resources GPU=2`), by name.
    pub resources: Vec<(String, f64)>,
}

/// The answer to a [`Hello`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Welcome {
    /// Accepted: the id the listener gave the connection.
    Accepted {
        /// The connection's id (a worker or client id on the scheduler).
        id: u32,
    },
    /// Refused; the connection closes.
    Refused {
        /// Why, in words meant for the user.
        reason: String,
    },
}

/// A client's request to the scheduler.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ClientMessage {
    /// Compute `wanted` from `tasks` (tasks the scheduler already knows may be left out).
    Submit {
        /// The graph, culled and fused.
        tasks: Vec<(Key, Arc<Task>)>,
        /// The keys to compute, most urgent first.
        wanted: Vec<Key>,
        /// Task components the graph calls that the scheduler has not been sent yet.
        modules: Vec<ModuleBytes>,
    },
    /// The client no longer wants these keys.
    Release {
        /// The keys.
        keys: Vec<Key>,
    },
    /// Asks for a [`ClusterInfo`] (answered with [`ClientReply::Info`]).
    Info,
    /// Stops every worker, then the scheduler.
    Shutdown,
    /// Copies the values of these keys (in memory) to every worker, for tasks anywhere
    /// to read them locally (`scatter` with broadcast, `replicate`).
    Replicate {
        /// The keys.
        keys: Vec<Key>,
    },
    /// A request to a lock, event, variable or queue, answered with
    /// [`ClientReply::Coordinated`] carrying the same `request` number.
    Coordinate {
        /// The client's number for this request.
        request: u64,
        /// What to do.
        op: Coordinate,
    },
    /// The client stopped waiting for `request` (its timeout passed): a lock granted
    /// to it in the meantime is released.
    CancelWait {
        /// The request.
        request: u64,
    },
    /// Asks for the recently finished tasks (answered with [`ClientReply::TaskStream`]).
    TaskStream,
    /// The client stored these values on the worker whose data address is `holder`
    /// ([`DataRequest::Put`], for `scatter`) and wants them kept there: each is answered
    /// `Ready` like a computed key. Nothing can compute them again, so a value lost with
    /// its workers errs.
    Scattered {
        /// The worker holding them.
        holder: String,
        /// Each value's key and size in bytes.
        values: Vec<(Key, u64)>,
    },
}

/// One finished task, for task streams and performance reports.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TaskRecord {
    /// The task's key.
    pub key: String,
    /// Its group.
    pub group: String,
    /// The worker that ran it.
    pub worker: String,
    /// When it started, in seconds since the scheduler started.
    pub start_s: f64,
    /// How long it ran, in seconds.
    pub duration_s: f64,
}

/// A task component's bytes with their sha256 (the name graphs call it by).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModuleBytes {
    /// The sha256 of `bytes`, in lowercase hex.
    pub sha256: String,
    /// The component.
    pub bytes: Arc<Vec<u8>>,
}

/// The scheduler's news for a client.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ClientReply {
    /// A wanted key is in memory on the worker whose data address is `holder`.
    Ready {
        /// The key.
        key: Key,
        /// Where to fetch it.
        holder: String,
    },
    /// A wanted key cannot be computed.
    Erred {
        /// The key.
        key: Key,
        /// Why.
        message: String,
    },
    /// The answer to [`ClientMessage::Info`].
    Info(ClusterInfo),
    /// The answer to [`ClientMessage::TaskStream`]: the scheduler's clock (seconds since
    /// it started) and the most recently finished tasks, oldest first.
    TaskStream {
        /// Seconds since the scheduler started.
        now_s: f64,
        /// The finished tasks.
        records: Vec<TaskRecord>,
    },
    /// The answer to a [`ClientMessage::Coordinate`].
    Coordinated {
        /// The request it answers.
        request: u64,
        /// The answer.
        reply: Coordinated,
    },
    /// Tasks finished on the cluster so far (sent a few times a second while it
    /// changes), for progress bars.
    Progress {
        /// Tasks finished since the scheduler started.
        finished_total: u64,
    },
}

/// What a cluster is made of right now.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ClusterInfo {
    /// The connected workers, by name.
    pub workers: Vec<WorkerSummary>,
    /// Tasks the scheduler knows (zero when every client released everything).
    pub tasks: u64,
    /// Clients connected.
    pub clients: u32,
}

/// One worker in a [`ClusterInfo`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct WorkerSummary {
    /// Its name.
    pub name: String,
    /// Where its data port listens.
    pub data_address: String,
    /// Its task threads.
    pub nthreads: u32,
    /// Results the scheduler knows it holds (exact, unlike the heartbeat's figures).
    pub held_keys: u64,
    /// Its last reported figures (from its latest heartbeat).
    pub metrics: WorkerMetrics,
}

/// Where a task's input can be fetched.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InputLocation {
    /// The input's key.
    pub key: Key,
    /// The data address of a worker holding it.
    pub holder: String,
}

/// The scheduler's instruction to a worker.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum WorkerCommand {
    /// Register a task component (sent before the first task that calls it).
    LoadModule {
        /// The component's bytes.
        bytes: Arc<Vec<u8>>,
    },
    /// Run a task once its inputs are here, fetching from peers those it lacks.
    Compute {
        /// The task's key.
        key: Key,
        /// What to run.
        task: Arc<Task>,
        /// Inputs held by other workers.
        remote_inputs: Vec<InputLocation>,
    },
    /// Fetch these values from their holders and keep them (the holder is retiring);
    /// answered with [`WorkerReport::Copied`].
    Copy {
        /// The values and where they are.
        values: Vec<InputLocation>,
    },
    /// Drop the value of a key.
    Release {
        /// The key.
        key: Key,
    },
    /// Give back up to `count` tasks that have not started (other workers are idle),
    /// the most recently received first; answered with [`WorkerReport::Returned`].
    Steal {
        /// How many tasks at most.
        count: u32,
    },
    /// Stop: finish nothing more, close connections and exit.
    Shutdown,
}

/// A worker's report to the scheduler.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum WorkerReport {
    /// A task finished; its value of `nbytes` bytes is held here.
    Finished {
        /// The task's key.
        key: Key,
        /// Size of the value.
        nbytes: u64,
        /// How long it ran, in microseconds.
        duration_us: u64,
    },
    /// A task failed.
    Erred {
        /// The task's key.
        key: Key,
        /// What went wrong.
        message: String,
    },
    /// Inputs of a task could not be fetched from their holders; the task did not run.
    MissingInputs {
        /// The task's key.
        key: Key,
        /// The inputs it could not get.
        missing: Vec<Key>,
    },
    /// Values fetched for a [`WorkerCommand::Copy`] are held here now, with their
    /// holders then; keys that could not be fetched are left out.
    Copied {
        /// `(key, former holder's data address, nbytes)` per value copied.
        values: Vec<(Key, String, u64)>,
    },
    /// The answer to a [`WorkerCommand::Steal`]: tasks given back unstarted (perhaps
    /// none); the worker forgets them.
    Returned {
        /// Their keys.
        keys: Vec<Key>,
    },
    /// Still alive, with current figures.
    Heartbeat(WorkerMetrics),
}

/// A worker's figures, sent with each heartbeat.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct WorkerMetrics {
    /// Bytes of results held in memory.
    pub memory_bytes: u64,
    /// Bytes of results spilled to the worker's local disk.
    pub spilled_bytes: u64,
    /// Tasks running or waiting for a thread.
    pub executing: u32,
    /// Results held.
    pub stored_keys: u64,
}

/// A request to a worker's data port.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum DataRequest {
    /// Send the values of these keys (answered with [`DataReply::Values`]).
    Get {
        /// The keys.
        keys: Vec<Key>,
    },
    /// Keep these values (a client's `scatter`; answered with [`DataReply::Stored`] once
    /// they are in the worker's store). Only clients may put values.
    Put {
        /// The keys with their values.
        values: Vec<(Key, Arc<Value>)>,
    },
}

/// A worker's answer to a [`DataRequest`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum DataReply {
    /// Each requested key with its value, in request order, or `None` when the worker
    /// does not hold it.
    Values(Vec<(Key, Option<Arc<Value>>)>),
    /// The values put are stored.
    Stored,
}

/// Compares a presented token with the expected one in time independent of where they
/// differ.
pub fn token_matches(presented: &str, expected: &str) -> bool {
    let (a, b) = (presented.as_bytes(), expected.as_bytes());
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_only_when_equal() {
        assert!(token_matches("s3cret", "s3cret"));
        assert!(!token_matches("s3cret", "s3cres"));
        assert!(!token_matches("s3cret", "s3cret2"));
        assert!(!token_matches("", "x"));
        assert!(token_matches("", ""));
    }
}
