//! Array operations whose per-block function is a WASM task ([`crate::wasm`]).

use super::overlap::Boundary;
use super::{Array, blockwise::blockwise_op, layer_name};
use crate::delayed::Delayed;
use crate::wasm::TaskFn;
use tessera_core::{DType, Error, Key, Result, Task};

/// Most partial results one combine task of [`Array::reduction_wasm`] merges when
/// `split_every` is not given.
const DEFAULT_SPLIT_EVERY: usize = 16;

impl Array {
    /// Applies WASM task `task` with `params` to every block (Dask's `map_blocks`),
    /// giving an array of the same shape and chunks. `dtype` must be the element type
    /// the task returns; it must keep each block's shape.
    pub fn map_blocks_wasm(&self, task: &TaskFn, params: serde_json::Value, dtype: DType) -> Result<Array> {
        let op = task.op(&params, true);
        Array::blockwise_new(task.name(), &[self], self.shape.clone(), self.chunks.clone(), dtype, |ix| {
            Ok(Task::new(op.clone(), vec![self.key(ix)]))
        })
    }

    /// Applies WASM task `task` with `params` to every block extended by `depth[axis]`
    /// elements of its neighbours (filled per `boundary` at the array's edges), then
    /// trims the extension off, as [`Array::map_overlap`]. `dtype` must be the element
    /// type the task returns. The task is told in its context where its own block lies
    /// in the extended one (`window`): it may return just that part, skipping the work
    /// on the halo, or an array of its extended input's shape, which is trimmed.
    pub fn map_overlap_wasm(
        &self,
        task: &TaskFn,
        params: serde_json::Value,
        depth: &[u64],
        boundary: Boundary,
        dtype: DType,
    ) -> Result<Array> {
        self.overlap_map(task.op(&params, true), depth, boundary, dtype)
    }

    /// A tree reduction over every element with three WASM tasks (Dask's
    /// `da.reduction(x, chunk, aggregate, combine=…)`): `chunk` turns each block into a
    /// partial result, `combine` merges up to `split_every` partials (16 when `None`)
    /// into one, level by level, and `aggregate` turns the last partial into the result,
    /// which may be any value (an array, JSON, bytes). Each task gets `params`.
    pub fn reduction_wasm(
        &self,
        chunk: &TaskFn,
        combine: &TaskFn,
        aggregate: &TaskFn,
        params: serde_json::Value,
        split_every: Option<usize>,
    ) -> Result<Delayed> {
        let split_every = match split_every {
            None => DEFAULT_SPLIT_EVERY,
            Some(n) if n >= 2 => n,
            Some(n) => {
                return Err(Error::invalid(
                    chunk.name(),
                    format!("split_every must be at least 2, got {n} (array {})", self.name()),
                ));
            }
        };
        let mut graph = self.graph();
        let partial = layer_name(chunk.name());
        let chunk_op = chunk.op(&params, true);
        let mut level: Vec<Key> = self
            .keys()
            .into_iter()
            .enumerate()
            .map(|(i, key)| {
                let partial_key = Key::new(partial.clone(), [i as u64]);
                graph.insert(partial_key.clone(), Task::new(chunk_op.clone(), vec![key]));
                partial_key
            })
            .collect();
        let combine_op = combine.op(&params, false);
        while level.len() > 1 {
            let name = layer_name(combine.name());
            level = level
                .chunks(split_every)
                .enumerate()
                .map(|(i, group)| {
                    let key = Key::new(name.clone(), [i as u64]);
                    graph.insert(key.clone(), Task::new(combine_op.clone(), group.to_vec()));
                    key
                })
                .collect();
        }
        let key = Key::new(layer_name(aggregate.name()), []);
        graph.insert(key.clone(), Task::new(aggregate.op(&params, false), level));
        Ok(Delayed::from_graph(key, graph))
    }
}

/// Applies WASM task `task` with `params` to the matching blocks of `args`, each an
/// array with one letter per axis, laid out on the grid of `out_index` (Dask's
/// `da.blockwise`; see [`super::blockwise()`] for the index rules). The task gets the
/// blocks in the order of `args` and must return the output block in `dtype`.
pub fn blockwise_wasm(
    task: &TaskFn,
    params: serde_json::Value,
    out_index: &str,
    args: &[(&Array, &str)],
    dtype: DType,
) -> Result<Array> {
    blockwise_op(task.name(), task.op(&params, true), out_index, args, dtype)
}
