//! Requests to the scheduler's coordination primitives (Dask's `Lock`, `Event`,
//! `Variable` and `Queue`), shared by every client of a cluster and named by strings.

use crate::value::Value;
use serde::{Deserialize, Serialize};

/// One request to a named primitive. Requests that may wait (acquiring a lock, waiting
/// for an event, reading an unset variable, taking from an empty queue) are answered
/// when they can be.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Coordinate {
    /// Takes the lock for `owner` (a number unique to one lock handle of the client),
    /// waiting while another owner holds it.
    LockAcquire {
        /// The lock.
        name: String,
        /// The handle taking it.
        owner: u64,
    },
    /// Gives the lock back; an error unless `owner` holds it.
    LockRelease {
        /// The lock.
        name: String,
        /// The handle giving it back.
        owner: u64,
    },
    /// Sets the event, waking its waiters.
    EventSet {
        /// The event.
        name: String,
    },
    /// Clears the event.
    EventClear {
        /// The event.
        name: String,
    },
    /// Waits until the event is set.
    EventWait {
        /// The event.
        name: String,
    },
    /// Whether the event is set, without waiting.
    EventIsSet {
        /// The event.
        name: String,
    },
    /// Sets the variable, waking readers waiting for a value.
    VariableSet {
        /// The variable.
        name: String,
        /// Its new value.
        value: Value,
    },
    /// Reads the variable, waiting until it has a value.
    VariableGet {
        /// The variable.
        name: String,
    },
    /// Removes the variable's value.
    VariableDelete {
        /// The variable.
        name: String,
    },
    /// Appends a value to the queue.
    QueuePut {
        /// The queue.
        name: String,
        /// The value.
        value: Value,
    },
    /// Takes the oldest value from the queue, waiting while it is empty.
    QueueGet {
        /// The queue.
        name: String,
    },
    /// How many values the queue holds.
    QueueSize {
        /// The queue.
        name: String,
    },
}

/// The answer to a [`Coordinate`] request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Coordinated {
    /// Done (a lock taken or given back, an event set, a value stored).
    Done,
    /// A value read or taken.
    Value(Value),
    /// Whether an event is set.
    Flag(bool),
    /// A queue's length.
    Size(u64),
    /// The request was refused.
    Refused(String),
}
