//! Tessera's worker: runs tasks and holds their results.
//!
//! A worker executes [`Op`](tessera_core::Op)s: built-in array kernels natively
//! ([`kernels`]), Zarr reads and writes through `object_store` ([`storage`]), fused
//! chains step by step (fused reductions band by band, [`tiled`]) and Rust closures in
//! the local engine ([`execute`](mod@execute)), user code as sandboxed WebAssembly components
//! ([`wasm`]), on a pool of task threads ([`pool`]); [`node`] runs all that as a
//! networked worker of a distributed cluster. [`heap`] is the allocator its binaries
//! install.

#![warn(missing_docs)]

pub mod execute;
pub mod heap;
pub mod kernels;
pub mod node;
pub mod pool;
pub mod storage;
pub mod tiled;
pub mod wasm;

pub use execute::execute;
