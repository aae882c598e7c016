//! [`Coordination`]: the cluster-wide locks, events, variables and queues clients
//! share (Dask's `Lock`, `Event`, `Variable`, `Queue`), as a sans-IO state machine.
//!
//! A request comes from a client with the client's request number; a request that
//! must wait is parked and answered later, when another request (or a client leaving)
//! makes it possible. Every call returns the answers to send, each addressed to the
//! [`Waiter`] that asked. A client that leaves gives back the locks it held.

use crate::ClientId;
use std::collections::{HashMap, VecDeque};
use tessera_core::Value;
use tessera_core::wire::{Coordinate, Coordinated};

/// Who is waiting for an answer: a client and its request number.
pub type Waiter = (ClientId, u64);

/// An answer to send.
pub type Answer = (Waiter, Coordinated);

/// Named primitives and the requests waiting on them.
#[derive(Default)]
pub struct Coordination {
    locks: HashMap<String, Lock>,
    events: HashMap<String, Event>,
    variables: HashMap<String, Variable>,
    queues: HashMap<String, Queue>,
}

#[derive(Default)]
struct Lock {
    /// The holding handle `(client, owner)` and the request that took it.
    holder: Option<(ClientId, u64, u64)>,
    /// Requests to take it, first come first served, with their owners.
    waiting: VecDeque<(Waiter, u64)>,
}

#[derive(Default)]
struct Event {
    set: bool,
    waiting: Vec<Waiter>,
}

#[derive(Default)]
struct Variable {
    value: Option<Value>,
    waiting: Vec<Waiter>,
}

#[derive(Default)]
struct Queue {
    values: VecDeque<Value>,
    waiting: VecDeque<Waiter>,
}

impl Coordination {
    /// Handles request `request` of `client`; returns the answers now possible (to
    /// this request or to parked ones).
    pub fn request(&mut self, client: ClientId, request: u64, op: Coordinate) -> Vec<Answer> {
        let me = (client, request);
        let mut out = Vec::new();
        match op {
            Coordinate::LockAcquire { name, owner } => {
                let lock = self.locks.entry(name).or_default();
                if lock.holder.is_none() {
                    lock.holder = Some((client, owner, request));
                    out.push((me, Coordinated::Done));
                } else {
                    lock.waiting.push_back((me, owner));
                }
            }
            Coordinate::LockRelease { name, owner } => {
                let held =
                    self.locks.get(&name).and_then(|l| l.holder).is_some_and(|(c, o, _)| (c, o) == (client, owner));
                if held {
                    self.pass_lock(&name, &mut out);
                    out.push((me, Coordinated::Done));
                } else {
                    out.push((me, Coordinated::Refused(format!("lock {name:?} is not held by this handle"))));
                }
            }
            Coordinate::EventSet { name } => {
                let event = self.events.entry(name).or_default();
                event.set = true;
                out.extend(event.waiting.drain(..).map(|w| (w, Coordinated::Done)));
                out.push((me, Coordinated::Done));
            }
            Coordinate::EventClear { name } => {
                if let Some(event) = self.events.get_mut(&name) {
                    event.set = false;
                }
                out.push((me, Coordinated::Done));
            }
            Coordinate::EventWait { name } => {
                let event = self.events.entry(name).or_default();
                if event.set {
                    out.push((me, Coordinated::Done));
                } else {
                    event.waiting.push(me);
                }
            }
            Coordinate::EventIsSet { name } => {
                out.push((me, Coordinated::Flag(self.events.get(&name).is_some_and(|e| e.set))));
            }
            Coordinate::VariableSet { name, value } => {
                let variable = self.variables.entry(name).or_default();
                out.extend(variable.waiting.drain(..).map(|w| (w, Coordinated::Value(value.clone()))));
                variable.value = Some(value);
                out.push((me, Coordinated::Done));
            }
            Coordinate::VariableGet { name } => {
                let variable = self.variables.entry(name).or_default();
                match &variable.value {
                    Some(value) => out.push((me, Coordinated::Value(value.clone()))),
                    None => variable.waiting.push(me),
                }
            }
            Coordinate::VariableDelete { name } => {
                if let Some(variable) = self.variables.get_mut(&name) {
                    variable.value = None;
                }
                out.push((me, Coordinated::Done));
            }
            Coordinate::QueuePut { name, value } => {
                let queue = self.queues.entry(name).or_default();
                match queue.waiting.pop_front() {
                    Some(taker) => out.push((taker, Coordinated::Value(value))),
                    None => queue.values.push_back(value),
                }
                out.push((me, Coordinated::Done));
            }
            Coordinate::QueueGet { name } => {
                let queue = self.queues.entry(name).or_default();
                match queue.values.pop_front() {
                    Some(value) => out.push((me, Coordinated::Value(value))),
                    None => queue.waiting.push_back(me),
                }
            }
            Coordinate::QueueSize { name } => {
                let size = self.queues.get(&name).map_or(0, |q| q.values.len() as u64);
                out.push((me, Coordinated::Size(size)));
            }
        }
        self.tidy();
        out
    }

    /// `client` stopped waiting for `request`: it is no longer parked, and a lock it
    /// was granted meanwhile is passed on.
    pub fn cancel(&mut self, client: ClientId, request: u64) -> Vec<Answer> {
        let me = (client, request);
        let mut out = Vec::new();
        let granted: Vec<String> = self
            .locks
            .iter()
            .filter(|(_, l)| l.holder.is_some_and(|(c, _, r)| (c, r) == me))
            .map(|(name, _)| name.clone())
            .collect();
        for name in granted {
            self.pass_lock(&name, &mut out);
        }
        self.forget_waiters(|w| w == me);
        self.tidy();
        out
    }

    /// `client` left: its parked requests are dropped and its locks passed on.
    pub fn client_left(&mut self, client: ClientId) -> Vec<Answer> {
        let mut out = Vec::new();
        self.forget_waiters(|(c, _)| c == client);
        let held: Vec<String> = self
            .locks
            .iter()
            .filter(|(_, l)| l.holder.is_some_and(|(c, _, _)| c == client))
            .map(|(name, _)| name.clone())
            .collect();
        for name in held {
            self.pass_lock(&name, &mut out);
        }
        self.tidy();
        out
    }

    /// Gives lock `name` to its next waiter (or frees it).
    fn pass_lock(&mut self, name: &str, out: &mut Vec<Answer>) {
        let Some(lock) = self.locks.get_mut(name) else { return };
        lock.holder = lock.waiting.pop_front().map(|((client, request), owner)| {
            out.push(((client, request), Coordinated::Done));
            (client, owner, request)
        });
    }

    /// Drops every parked request `gone` selects.
    fn forget_waiters(&mut self, gone: impl Fn(Waiter) -> bool) {
        self.locks.values_mut().for_each(|l| l.waiting.retain(|&(w, _)| !gone(w)));
        self.events.values_mut().for_each(|e| e.waiting.retain(|&w| !gone(w)));
        self.variables.values_mut().for_each(|v| v.waiting.retain(|&w| !gone(w)));
        self.queues.values_mut().for_each(|q| q.waiting.retain(|&w| !gone(w)));
    }

    /// Forgets primitives in their initial state, so names do not pile up.
    fn tidy(&mut self) {
        self.locks.retain(|_, l| l.holder.is_some() || !l.waiting.is_empty());
        self.events.retain(|_, e| e.set || !e.waiting.is_empty());
        self.variables.retain(|_, v| v.value.is_some() || !v.waiting.is_empty());
        self.queues.retain(|_, q| !q.values.is_empty() || !q.waiting.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: ClientId = ClientId(1);
    const B: ClientId = ClientId(2);

    fn acquire(owner: u64) -> Coordinate {
        Coordinate::LockAcquire { name: "l".into(), owner }
    }

    fn release(owner: u64) -> Coordinate {
        Coordinate::LockRelease { name: "l".into(), owner }
    }

    fn json(v: i64) -> Value {
        Value::Json(serde_json::json!(v))
    }

    #[test]
    fn a_lock_is_held_by_one_handle_and_passed_in_order() {
        let mut c = Coordination::default();
        assert_eq!(c.request(A, 1, acquire(10)), vec![((A, 1), Coordinated::Done)]);
        assert_eq!(c.request(B, 1, acquire(20)), vec![], "B waits");
        assert_eq!(c.request(A, 2, acquire(11)), vec![], "another handle of A waits too");
        let refused = c.request(B, 2, release(20));
        assert!(matches!(&refused[..], [((B, 2), Coordinated::Refused(m))] if m.contains("not held")), "{refused:?}");
        assert_eq!(c.request(A, 3, release(10)), vec![((B, 1), Coordinated::Done), ((A, 3), Coordinated::Done)]);
        assert_eq!(c.request(B, 3, release(20)), vec![((A, 2), Coordinated::Done), ((B, 3), Coordinated::Done)]);
        assert_eq!(c.request(A, 4, release(11)), vec![((A, 4), Coordinated::Done)]);
        assert!(c.locks.is_empty(), "a free lock is forgotten");
    }

    #[test]
    fn a_client_that_leaves_gives_its_locks_to_the_next_waiter() {
        let mut c = Coordination::default();
        c.request(A, 1, acquire(10));
        c.request(B, 1, acquire(20));
        c.request(A, 2, Coordinate::QueueGet { name: "q".into() });
        assert_eq!(c.client_left(A), vec![((B, 1), Coordinated::Done)]);
        assert!(c.queues.is_empty(), "A's parked get is dropped");
    }

    #[test]
    fn a_cancelled_acquire_that_was_granted_meanwhile_is_passed_on() {
        let mut c = Coordination::default();
        c.request(A, 1, acquire(10));
        c.request(B, 1, acquire(20));
        c.request(B, 2, acquire(21));
        // B's first request times out just as A releases: the grant crosses the cancel.
        assert_eq!(c.request(A, 2, release(10)), vec![((B, 1), Coordinated::Done), ((A, 2), Coordinated::Done)]);
        assert_eq!(c.cancel(B, 1), vec![((B, 2), Coordinated::Done)]);
        assert_eq!(c.cancel(B, 7), vec![], "cancelling an unknown request does nothing");
    }

    #[test]
    fn events_wake_every_waiter_and_stay_set_until_cleared() {
        let mut c = Coordination::default();
        let wait = || Coordinate::EventWait { name: "e".into() };
        assert_eq!(c.request(A, 1, wait()), vec![]);
        assert_eq!(c.request(B, 1, wait()), vec![]);
        let out = c.request(A, 2, Coordinate::EventSet { name: "e".into() });
        assert_eq!(out, vec![((A, 1), Coordinated::Done), ((B, 1), Coordinated::Done), ((A, 2), Coordinated::Done)]);
        assert_eq!(c.request(B, 2, wait()), vec![((B, 2), Coordinated::Done)]);
        c.request(A, 3, Coordinate::EventClear { name: "e".into() });
        assert_eq!(
            c.request(B, 3, Coordinate::EventIsSet { name: "e".into() }),
            vec![((B, 3), Coordinated::Flag(false))]
        );
        assert_eq!(c.request(B, 4, wait()), vec![]);
    }

    #[test]
    fn variables_wait_for_a_value_and_keep_the_latest() {
        let mut c = Coordination::default();
        let get = || Coordinate::VariableGet { name: "v".into() };
        assert_eq!(c.request(B, 1, get()), vec![]);
        let out = c.request(A, 1, Coordinate::VariableSet { name: "v".into(), value: json(1) });
        assert_eq!(out, vec![((B, 1), Coordinated::Value(json(1))), ((A, 1), Coordinated::Done)]);
        c.request(A, 2, Coordinate::VariableSet { name: "v".into(), value: json(2) });
        assert_eq!(c.request(B, 2, get()), vec![((B, 2), Coordinated::Value(json(2)))]);
        c.request(A, 3, Coordinate::VariableDelete { name: "v".into() });
        assert_eq!(c.request(B, 3, get()), vec![]);
    }

    #[test]
    fn queues_are_first_in_first_out_and_feed_waiting_takers() {
        let mut c = Coordination::default();
        let put = |v| Coordinate::QueuePut { name: "q".into(), value: json(v) };
        let get = || Coordinate::QueueGet { name: "q".into() };
        assert_eq!(c.request(B, 1, get()), vec![]);
        assert_eq!(c.request(A, 1, put(1)), vec![((B, 1), Coordinated::Value(json(1))), ((A, 1), Coordinated::Done)]);
        c.request(A, 2, put(2));
        c.request(A, 3, put(3));
        assert_eq!(c.request(B, 2, Coordinate::QueueSize { name: "q".into() }), vec![((B, 2), Coordinated::Size(2))]);
        assert_eq!(c.request(B, 3, get()), vec![((B, 3), Coordinated::Value(json(2)))]);
        assert_eq!(c.request(B, 4, get()), vec![((B, 4), Coordinated::Value(json(3)))]);
        assert!(c.queues.is_empty());
    }
}
