//! Arrays to and from [`Delayed`] values: a whole array as one lazy value, and one
//! lazy value (such as the result of a WASM task) as a one-block array.

use super::{Array, layer_name};
use crate::delayed::Delayed;
use tessera_core::{DType, Key, Op, Result, Task};

impl Array {
    /// The whole array as one lazy value (a [`tessera_core::Value::Chunk`]): its
    /// blocks are glued into one block first when there are several (Dask's
    /// `x.rechunk(-1).to_delayed()`). Use it to pass whole arrays to `delayed` calls.
    pub fn to_delayed(&self) -> Result<Delayed> {
        let whole = if self.numblocks().iter().all(|&n| n == 1) {
            self.clone()
        } else {
            self.rechunk_to(self.shape.iter().map(|&len| vec![len]).collect())?
        };
        let key = whole.key(&vec![0; whole.ndim()]);
        Ok(Delayed::from_graph(key, whole.graph()))
    }
}

/// A one-block array of `shape` and `dtype` whose block is the value of `value` (Dask's
/// `da.from_delayed`). The value must turn out to be an array of that shape; its dtype
/// is converted when it differs.
pub fn from_delayed(value: &Delayed, shape: &[u64], dtype: DType) -> Result<Array> {
    let name = layer_name("from-delayed");
    let mut tasks: Vec<(Key, Task)> = value.graph().iter().map(|(k, t)| (k.clone(), t.clone())).collect();
    let key = Key::new(name.clone(), vec![0; shape.len()]);
    tasks.push((key, Task::new(Op::Alias, vec![value.key().clone()])));
    let chunks = shape.iter().map(|&len| vec![len]).collect();
    Ok(Array::from_tasks(name, &[], tasks, shape.to_vec(), chunks, dtype))
}
