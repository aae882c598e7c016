//! Tessera's shared vocabulary: the task graph, the values tasks exchange, and errors.
//!
//! A computation is a [`Graph`]: a map from [`Key`] (a collection name plus a block
//! index) to a [`Task`] — an [`Op`] applied to the values of other keys. Graphs are
//! plain data: they serialise with serde, can be culled to the keys a caller wants
//! ([`Graph::cull`]), fused so a chain of blockwise steps becomes one task per chunk
//! ([`Graph::fuse_blockwise`]) and drawn as Graphviz DOT ([`Graph::to_dot`]).
//!
//! Values ([`Value`]) are what tasks produce: mostly [`Chunk`]s, n-dimensional arrays
//! whose element type ([`DType`]) is known only at run time.

#![warn(missing_docs)]

pub mod chunk;
pub mod chunk_bytes;
pub mod dtype;
pub mod error;
pub mod graph;
pub mod key;
pub mod layout;
pub mod op;
pub mod value;
pub mod wire;

pub use chunk::Chunk;
pub use chunk_bytes::ChunkBuilder;
pub use dtype::{DType, Element, Scalar};
pub use error::{Error, Result};
pub use graph::{Graph, Task};
pub use key::Key;
pub use op::{Held, NativeFn, Op};
pub use value::Value;
