//! Tessera: lazy chunked arrays and task graphs, computed in parallel.
//!
//! Operations on collections such as [`array::Array`] build a task graph and return
//! at once; nothing runs until `compute()` (bring the result into memory) or
//! `persist()` (compute and keep the blocks for reuse). A [`Client`] runs graphs:
//! [`Client::local()`] runs the scheduler and a pool of task threads in this process;
//! [`Client::connect`] uses a cluster of `tessera scheduler` and `tessera worker`
//! processes. [`Client::submit`] returns a [`Future`] whose value stays on the
//! engine for reuse, as in `dask.distributed`.
//!
//! `examples/quickstart.rs` (the README's example, run by the `readme` test) shows a
//! lazy graph, `persist` and `compute`; `examples/wasm_mask.rs` maps a WASM task over
//! blocks.

#![warn(missing_docs)]

pub mod array;
pub mod client;
pub mod coordination;
pub mod delayed;
pub mod futures;
#[cfg(feature = "local")]
mod local;
mod remote;
mod report;
#[cfg(feature = "local")]
pub mod wasm;

pub use crate::futures::{Future, as_completed, wait};
pub use client::{Client, Credentials};
pub use tessera_core::wire::transport::TlsFiles;
pub use tessera_core::{Chunk, DType, Element, Error, Graph, Key, Result, Scalar, Value};
