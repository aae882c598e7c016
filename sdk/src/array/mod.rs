//! Chunked n-dimensional arrays, computed lazily.
//!
//! An [`Array`] is a grid of blocks (chunks). Each block is one task in a graph, and
//! every operation on an array adds a layer of tasks — usually one per output block —
//! without computing anything: `x.add(&y)` pairs up the blocks of `x` and `y`, a
//! reduction adds per-block partials plus a tree of combine steps, `rechunk` cuts and
//! glues blocks into a new grid. Shape, dtype and chunking are known at every step
//! (`shape()`, `dtype()`, `chunks()`, `nbytes()`), so mistakes are reported when the
//! graph is built, not when it runs.
//!
//! [`Array::compute`] runs the graph and returns one in-memory [`Chunk`];
//! [`Array::persist`] runs it and keeps the blocks, returning an array whose graph is
//! just those blocks; [`Array::to_zarr`] writes every block to a Zarr array in object
//! storage. Chunks are given per axis as block lengths (`chunks()[axis]`), as in Dask.

mod blockwise;
mod chunks;
mod create;
mod delayed;
mod elementwise;
mod overlap;
pub mod random;
mod rechunk;
mod reduce;
mod structure;
#[cfg(feature = "local")]
mod wasm;
// Zarr metadata is read and written through the worker's storage module, which the SDK
// links with the `local` feature.
#[cfg(feature = "local")]
mod zarr;

pub use blockwise::blockwise;
pub use chunks::ChunkSize;
pub use create::{BlockInfo, arange, from_blocks, from_chunk, from_ndarray, full, linspace, ones, zeros};
pub use delayed::from_delayed;
pub use elementwise::{Operand, where_};
pub use overlap::Boundary;
pub use reduce::Axes;
pub use structure::{SliceArg, concatenate, stack};
pub use tessera_core::op::{BinaryOp, ReduceKind, UnaryOp};
#[cfg(feature = "local")]
pub use wasm::blockwise_wasm;
#[cfg(feature = "local")]
pub use zarr::{Codec, ZarrOptions, from_zarr, from_zarr_with_chunks};

use crate::Client;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tessera_core::{Chunk, DType, Element, Error, Graph, Key, Result, Task, chunk_map};

/// One layer of an array's graph: the tasks that compute its blocks, plus the layers
/// they read from. Layers are shared between arrays, so building a long pipeline costs
/// one layer per step, not a copy of the whole graph.
pub(crate) struct Layer {
    name: Arc<str>,
    tasks: Vec<(Key, Arc<Task>)>,
    deps: Vec<Arc<Layer>>,
}

/// A lazy chunked n-dimensional array: a task graph plus its shape, chunks and dtype.
#[derive(Clone)]
pub struct Array {
    layer: Arc<Layer>,
    shape: Vec<u64>,
    chunks: Vec<Vec<u64>>,
    dtype: DType,
}

impl std::fmt::Debug for Array {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Array<{}, shape={:?}, chunks={:?}, dtype={}>", self.layer.name, self.shape, self.chunks, self.dtype)
    }
}

static NEXT_LAYER: AtomicU64 = AtomicU64::new(0);

/// A fresh layer name such as `add-1f`.
pub(crate) fn layer_name(op: &str) -> Arc<str> {
    format!("{op}-{:x}", NEXT_LAYER.fetch_add(1, Ordering::Relaxed)).into()
}

/// Every block index of a grid with `numblocks` blocks per axis, in C order.
pub(crate) fn block_indices(numblocks: &[usize]) -> impl Iterator<Item = Vec<usize>> + use<> {
    ndarray::indices(ndarray::IxDyn(numblocks)).into_iter().map(|ix| ndarray::Dimension::slice(&ix).to_vec())
}

/// Converts a block index to key form.
pub(crate) fn key_index(index: &[usize]) -> Vec<u64> {
    index.iter().map(|&i| i as u64).collect()
}

impl Array {
    /// Builds an array from a new layer of tasks reading from `inputs`.
    pub(crate) fn from_tasks(
        name: Arc<str>,
        inputs: &[&Array],
        tasks: Vec<(Key, Task)>,
        shape: Vec<u64>,
        chunks: Vec<Vec<u64>>,
        dtype: DType,
    ) -> Array {
        let mut deps: Vec<Arc<Layer>> = Vec::with_capacity(inputs.len());
        for a in inputs {
            if !deps.iter().any(|d| Arc::ptr_eq(d, &a.layer)) {
                deps.push(a.layer.clone());
            }
        }
        let tasks = tasks.into_iter().map(|(k, t)| (k, Arc::new(t))).collect();
        Array { layer: Arc::new(Layer { name, tasks, deps }), shape, chunks, dtype }
    }

    /// Builds an array whose block at each index of its grid is computed by
    /// `make_task(index)`; `make_task` names dependency keys of `inputs`.
    pub(crate) fn blockwise_new(
        op: &str,
        inputs: &[&Array],
        shape: Vec<u64>,
        chunks: Vec<Vec<u64>>,
        dtype: DType,
        mut make_task: impl FnMut(&[usize]) -> Result<Task>,
    ) -> Result<Array> {
        let name = layer_name(op);
        let numblocks: Vec<usize> = chunks.iter().map(Vec::len).collect();
        let mut tasks = Vec::with_capacity(numblocks.iter().product());
        for index in block_indices(&numblocks) {
            let task = make_task(&index)?;
            tasks.push((Key::new(name.clone(), key_index(&index)), task));
        }
        Ok(Array::from_tasks(name, inputs, tasks, shape, chunks, dtype))
    }

    /// The name of the array's final layer (the name part of its keys).
    pub fn name(&self) -> &str {
        &self.layer.name
    }

    /// The shape.
    pub fn shape(&self) -> &[u64] {
        &self.shape
    }

    /// The number of dimensions.
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The block lengths along each axis (`chunks()[axis][i]` is the length of the
    /// `i`th block along `axis`).
    pub fn chunks(&self) -> &[Vec<u64>] {
        &self.chunks
    }

    /// The number of blocks along each axis.
    pub fn numblocks(&self) -> Vec<usize> {
        self.chunks.iter().map(Vec::len).collect()
    }

    /// The number of elements.
    pub fn len(&self) -> u64 {
        self.shape.iter().product()
    }

    /// True when the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the whole array would take in memory.
    pub fn nbytes(&self) -> u64 {
        self.len() * self.dtype.size() as u64
    }

    /// The key of the block at `index`.
    pub fn key(&self, index: &[usize]) -> Key {
        Key::new(self.layer.name.clone(), key_index(index))
    }

    /// The keys of every block, in C order of their block index.
    pub fn keys(&self) -> Vec<Key> {
        block_indices(&self.numblocks()).map(|ix| self.key(&ix)).collect()
    }

    /// The shape of the block at `index`.
    pub fn block_shape(&self, index: &[usize]) -> Vec<usize> {
        index.iter().zip(&self.chunks).map(|(&i, c)| c[i] as usize).collect()
    }

    /// The global position of the first element of the block at `index`.
    pub fn block_offset(&self, index: &[usize]) -> Vec<u64> {
        index.iter().zip(&self.chunks).map(|(&i, c)| c[..i].iter().sum()).collect()
    }

    /// The whole task graph of the array (every layer it depends on).
    pub fn graph(&self) -> Graph {
        let mut graph = Graph::new();
        let mut seen: HashSet<*const Layer> = HashSet::new();
        let mut stack = vec![&self.layer];
        while let Some(layer) = stack.pop() {
            if !seen.insert(Arc::as_ptr(layer)) {
                continue;
            }
            for (k, t) in &layer.tasks {
                graph.insert(k.clone(), t.clone());
            }
            stack.extend(layer.deps.iter());
        }
        graph
    }

    /// Graphviz DOT text of the array's graph (after culling and fusion, as it would
    /// run), for `dot -Tsvg`.
    pub fn visualize(&self) -> Result<String> {
        let keys = self.keys();
        Ok(self.graph().cull(&keys)?.fuse_blockwise(&keys).to_dot())
    }

    /// Computes the array on [`Client::current`] and returns it as one block.
    #[cfg(feature = "local")]
    pub fn compute(&self) -> Result<Chunk> {
        self.compute_with(&Client::current())
    }

    /// Computes the array on `client` and returns it as one block.
    pub fn compute_with(&self, client: &Client) -> Result<Chunk> {
        let keys = self.keys();
        let values = client.compute_keys(&self.graph(), &keys)?;
        let blocks: Vec<&Chunk> = values.iter().map(|v| v.as_chunk()).collect::<Result<_>>()?;
        self.assemble_blocks(&blocks)
    }

    /// Computes the array and returns it as an `ndarray` of element type `T` (which
    /// must be the array's dtype).
    #[cfg(feature = "local")]
    pub fn compute_array<T: Element>(&self) -> Result<ndarray::ArrayD<T>> {
        self.compute()?.into_typed::<T>()
    }

    /// Computes a zero-dimensional (or one-element) array and returns its value as f64.
    #[cfg(feature = "local")]
    pub fn compute_scalar(&self) -> Result<f64> {
        let chunk = self.compute()?;
        match (chunk.len(), chunk.first()) {
            (1, Some(v)) => Ok(v.to_f64()),
            (n, _) => Err(Error::invalid("compute_scalar", format!("array {} has {n} elements, not one", self.name()))),
        }
    }

    /// Computes the array on `client` and returns the blocks' values in C order of
    /// block index, without assembling them.
    pub fn compute_blocks_with(&self, client: &Client) -> Result<Vec<std::sync::Arc<tessera_core::Value>>> {
        client.compute_keys(&self.graph(), &self.keys())
    }

    /// Computes every block on [`Client::current`] and keeps the results on the engine
    /// (on workers, for a cluster): the returned array, with the same name and keys,
    /// starts later computations from them. They are released when the last array or
    /// graph built on it is dropped.
    #[cfg(feature = "local")]
    pub fn persist(&self) -> Result<Array> {
        self.persist_with(&Client::current())
    }

    /// Like [`Array::persist`] on `client`.
    pub fn persist_with(&self, client: &Client) -> Result<Array> {
        let tasks = client.persist_keys(&self.graph(), &self.keys())?;
        Ok(Array::from_tasks(self.layer.name.clone(), &[], tasks, self.shape.clone(), self.chunks.clone(), self.dtype))
    }

    /// Lays computed blocks (in C order of block index) out as one array.
    fn assemble_blocks(&self, blocks: &[&Chunk]) -> Result<Chunk> {
        let shape: Vec<usize> = self.shape.iter().map(|&s| s as usize).collect();
        if let [single] = blocks
            && single.shape() == shape.as_slice()
        {
            return Ok((*single).clone());
        }
        let mut out = Chunk::full(&shape, tessera_core::Scalar::Bool(false), self.dtype);
        for (ix, block) in block_indices(&self.numblocks()).zip(blocks) {
            let offset = self.block_offset(&ix);
            let expected = self.block_shape(&ix);
            if block.shape() != expected.as_slice() {
                return Err(Error::invalid(
                    "compute",
                    format!("block {ix:?} of {} has shape {:?}, expected {expected:?}", self.name(), block.shape()),
                ));
            }
            let converted;
            let block: &Chunk = if block.dtype() == self.dtype {
                block
            } else {
                converted = block.cast(self.dtype);
                &converted
            };
            chunk_map!(&mut out, o: T => {
                let b = T::view(block).ok_or_else(|| Error::Engine("block dtype changed".into()))?;
                o.slice_each_axis_mut(|ax| {
                    let i = ax.axis.index();
                    let start = offset[i] as usize;
                    ndarray::Slice::from(start..start + b.shape()[i])
                })
                .assign(b);
            });
        }
        Ok(out)
    }
}

/// Computes several arrays in one pass over their shared graph (blocks they have in
/// common are computed once) and returns each as one block.
pub fn compute_all(client: &Client, arrays: &[&Array]) -> Result<Vec<Chunk>> {
    let mut graph = Graph::new();
    let mut keys = Vec::new();
    for a in arrays {
        graph.merge(&a.graph());
        keys.extend(a.keys());
    }
    let values = client.compute_keys(&graph, &keys)?;
    let mut rest = values.as_slice();
    let mut out = Vec::with_capacity(arrays.len());
    for a in arrays {
        let (mine, tail) = rest.split_at(a.keys().len());
        rest = tail;
        let blocks: Vec<&Chunk> = mine.iter().map(|v| v.as_chunk()).collect::<Result<_>>()?;
        out.push(a.assemble_blocks(&blocks)?);
    }
    Ok(out)
}
