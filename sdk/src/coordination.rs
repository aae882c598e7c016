//! Coordination between tasks' clients: [`Lock`], [`Event`], [`Variable`] and
//! [`Queue`], named and shared by every client of a cluster (or of one embedded
//! engine), as in `dask.distributed`. The scheduler holds them; a lock held by a
//! client that disconnects is given to the next waiter.

use crate::Client;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tessera_core::wire::{Coordinate, Coordinated};
use tessera_core::{Error, Result, Value};

/// Numbers lock handles, so two handles of one lock never pass for each other.
static NEXT_OWNER: AtomicU64 = AtomicU64::new(1);

/// Sends `op` and waits up to `timeout` (forever when `None`) for its answer; `None`
/// when the time passed first. A refusal is an error naming `what`.
fn ask(client: &Client, what: &str, op: Coordinate, timeout: Option<Duration>) -> Result<Option<Coordinated>> {
    match client.engine().coordinate(op, timeout)? {
        Some(Coordinated::Refused(message)) => Err(Error::invalid(what, message)),
        answer => Ok(answer),
    }
}

/// Like [`ask`] without a timeout: the answer.
fn ask_now(client: &Client, what: &str, op: Coordinate) -> Result<Coordinated> {
    ask(client, what, op, None)?.ok_or_else(|| Error::Engine(format!("{what}: no answer")))
}

fn unexpected(what: &str, answer: Coordinated) -> Error {
    Error::Engine(format!("{what}: unexpected answer {answer:?}"))
}

/// A named mutual-exclusion lock shared by the cluster's clients. Each handle is one
/// owner: a handle cannot release a lock another handle holds.
pub struct Lock {
    client: Client,
    name: String,
    owner: u64,
}

impl Lock {
    /// A handle to the lock called `name`.
    pub fn new(client: &Client, name: &str) -> Lock {
        Lock { client: client.clone(), name: name.to_string(), owner: NEXT_OWNER.fetch_add(1, Ordering::Relaxed) }
    }

    /// Takes the lock, waiting as long as it takes.
    pub fn acquire(&self) -> Result<()> {
        self.acquire_within(None).map(|_| ())
    }

    /// Takes the lock if that happens within `timeout`; false otherwise.
    pub fn try_acquire_for(&self, timeout: Duration) -> Result<bool> {
        self.acquire_within(Some(timeout))
    }

    fn acquire_within(&self, timeout: Option<Duration>) -> Result<bool> {
        let op = Coordinate::LockAcquire { name: self.name.clone(), owner: self.owner };
        Ok(ask(&self.client, &format!("lock {:?}", self.name), op, timeout)?.is_some())
    }

    /// Gives the lock back; an error unless this handle holds it.
    pub fn release(&self) -> Result<()> {
        let op = Coordinate::LockRelease { name: self.name.clone(), owner: self.owner };
        ask_now(&self.client, &format!("lock {:?}", self.name), op).map(|_| ())
    }
}

/// A named flag clients can wait on.
pub struct Event {
    client: Client,
    name: String,
}

impl Event {
    /// A handle to the event called `name` (initially clear).
    pub fn new(client: &Client, name: &str) -> Event {
        Event { client: client.clone(), name: name.to_string() }
    }

    fn what(&self) -> String {
        format!("event {:?}", self.name)
    }

    /// Sets the event, waking everyone waiting on it.
    pub fn set(&self) -> Result<()> {
        ask_now(&self.client, &self.what(), Coordinate::EventSet { name: self.name.clone() }).map(|_| ())
    }

    /// Clears the event.
    pub fn clear(&self) -> Result<()> {
        ask_now(&self.client, &self.what(), Coordinate::EventClear { name: self.name.clone() }).map(|_| ())
    }

    /// Whether the event is set now.
    pub fn is_set(&self) -> Result<bool> {
        match ask_now(&self.client, &self.what(), Coordinate::EventIsSet { name: self.name.clone() })? {
            Coordinated::Flag(set) => Ok(set),
            other => Err(unexpected(&self.what(), other)),
        }
    }

    /// Waits until the event is set, up to `timeout` (forever when `None`); whether it
    /// was set in time.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        Ok(ask(&self.client, &self.what(), Coordinate::EventWait { name: self.name.clone() }, timeout)?.is_some())
    }
}

/// A named value shared by clients.
pub struct Variable {
    client: Client,
    name: String,
}

impl Variable {
    /// A handle to the variable called `name`.
    pub fn new(client: &Client, name: &str) -> Variable {
        Variable { client: client.clone(), name: name.to_string() }
    }

    fn what(&self) -> String {
        format!("variable {:?}", self.name)
    }

    /// Sets the value, waking readers waiting for one.
    pub fn set(&self, value: Value) -> Result<()> {
        let op = Coordinate::VariableSet { name: self.name.clone(), value };
        ask_now(&self.client, &self.what(), op).map(|_| ())
    }

    /// The value, waiting until there is one, up to `timeout` (forever when `None`).
    pub fn get(&self, timeout: Option<Duration>) -> Result<Value> {
        match ask(&self.client, &self.what(), Coordinate::VariableGet { name: self.name.clone() }, timeout)? {
            Some(Coordinated::Value(value)) => Ok(value),
            Some(other) => Err(unexpected(&self.what(), other)),
            None => Err(Error::invalid(self.what(), format!("no value was set within {timeout:?}"))),
        }
    }

    /// Removes the value.
    pub fn delete(&self) -> Result<()> {
        ask_now(&self.client, &self.what(), Coordinate::VariableDelete { name: self.name.clone() }).map(|_| ())
    }
}

/// A named first-in first-out queue shared by clients.
pub struct Queue {
    client: Client,
    name: String,
}

impl Queue {
    /// A handle to the queue called `name`.
    pub fn new(client: &Client, name: &str) -> Queue {
        Queue { client: client.clone(), name: name.to_string() }
    }

    fn what(&self) -> String {
        format!("queue {:?}", self.name)
    }

    /// Appends a value.
    pub fn put(&self, value: Value) -> Result<()> {
        ask_now(&self.client, &self.what(), Coordinate::QueuePut { name: self.name.clone(), value }).map(|_| ())
    }

    /// Takes the oldest value, waiting while the queue is empty.
    pub fn get(&self) -> Result<Value> {
        match ask_now(&self.client, &self.what(), Coordinate::QueueGet { name: self.name.clone() })? {
            Coordinated::Value(value) => Ok(value),
            other => Err(unexpected(&self.what(), other)),
        }
    }

    /// How many values the queue holds now.
    pub fn qsize(&self) -> Result<u64> {
        match ask_now(&self.client, &self.what(), Coordinate::QueueSize { name: self.name.clone() })? {
            Coordinated::Size(n) => Ok(n),
            other => Err(unexpected(&self.what(), other)),
        }
    }
}
