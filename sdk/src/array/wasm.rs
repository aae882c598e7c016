//! Array operations whose per-block function is a WASM task ([`crate::wasm`]).

use super::Array;
use super::overlap::Boundary;
use crate::wasm::TaskFn;
use tessera_core::{DType, Result, Task};

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
    /// type the task returns; it must keep its (extended) input's shape.
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
}
