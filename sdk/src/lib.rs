//! Tessera: lazy chunked arrays and task graphs, computed in parallel.
//!
//! Operations on collections such as [`array::Array`] build a task graph and return
//! at once; nothing runs until `compute()` (bring the result into memory) or
//! `persist()` (compute and keep the blocks for reuse). A [`Client`] runs graphs:
//! [`Client::local()`] runs the scheduler and a pool of task threads in this process.
//!
//! ```
//! use tessera::array;
//! # fn main() -> tessera::Result<()> {
//! // A 1000 × 1000 array of ones, in 250 × 250 chunks: nothing is computed yet.
//! let x = array::ones(&[1000, 1000], &[250, 250], tessera::DType::F64)?;
//! let y = x.add(&x.transpose(None)?)?.sum(array::Axes::All)?;
//! assert_eq!(y.shape(), &[] as &[u64]);
//! // compute() runs the 16-chunk graph on the default local client.
//! assert_eq!(y.compute_scalar()?, 2_000_000.0);
//! # Ok(())
//! # }
//! ```

pub mod array;
pub mod client;
pub mod delayed;
#[cfg(feature = "local")]
mod local;
#[cfg(feature = "local")]
pub mod wasm;

pub use client::Client;
pub use tessera_core::{Chunk, DType, Element, Error, Graph, Key, Result, Scalar, Value};

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
