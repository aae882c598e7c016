//! Tessera: lazy chunked arrays and task graphs, computed in parallel.
//!
//! Operations on collections such as [`array::Array`] build a task graph and return
//! at once; nothing runs until `compute()` (bring the result into memory) or
//! `persist()` (compute and keep the blocks for reuse). A [`Client`] runs graphs:
//! [`Client::local()`] runs the scheduler and a pool of task threads in this process;
//! [`Client::connect`] uses a cluster of `tessera scheduler` and `tessera worker`
//! processes.
//!
//! `examples/quickstart.rs` (the README's example, run by the `readme` test) shows a
//! lazy graph, `persist` and `compute`; `examples/wasm_mask.rs` maps a WASM task over
//! blocks.

pub mod array;
pub mod client;
pub mod delayed;
#[cfg(feature = "local")]
mod local;
mod remote;
#[cfg(feature = "local")]
pub mod wasm;

pub use client::Client;
pub use tessera_core::{Chunk, DType, Element, Error, Graph, Key, Result, Scalar, Value};
