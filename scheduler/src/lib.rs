//! Tessera's scheduler: a pure, sans-IO task state machine in the spirit of Dask's
//! distributed scheduler.
//!
//! [`State`] knows the submitted tasks (their dependencies, and the ops it hands back to
//! run), the workers and their threads, and where every value lives. A shell — the
//! in-process engine, a network server or a simulator — feeds it [`Event`]s and carries
//! out the [`Command`]s that [`State::handle`] returns. There are no threads, sockets,
//! timers or async here, so every behaviour is reproducible in a test.
//!
//! What it guarantees:
//! - each needed task runs once a worker has a free thread, highest [priority](order)
//!   first (a depth-first order, so memory stays low), near its data;
//! - a value is released as soon as no client wants it and no dependent still has to
//!   read it, and a task is forgotten once nothing wanted depends on it;
//! - failures reach exactly the wanted keys downstream of them; lost values are
//!   recomputed while still needed.
//!
//! See the [`state`] module for the task life cycle. [`coordination`] holds the locks,
//! events, variables and queues clients share, also sans-IO.

#![warn(missing_docs)]

pub mod coordination;
pub mod order;
pub mod protocol;
pub mod saturation;
pub mod server;
pub mod state;
mod workers;

pub use protocol::{ClientId, Command, Event, TaskState, WorkerId};
pub use state::State;
