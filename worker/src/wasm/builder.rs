//! The host side of the contract's `array-builder`: an array result a task writes
//! part by part, assembled by the host straight into a chunk.
//!
//! A task whose result is large writes each part as it computes it (a slab of a
//! filtered block, say), so the whole array never sits in the task's memory: it is not
//! zero-filled there, not copied out of there at the end, and the pages the sandbox
//! resets after the task are fewer. Each part is copied once, from the guest's memory
//! into the chunk's elements, while it is still in the cache.
//!
//! The builders a task creates are [`ChunkBuilder`]s in its store's resource table;
//! together they may hold at most the task's memory limit. The functions are linked by
//! hand rather than through the generated host traits so that `append` reads its bytes
//! in place in the guest's memory instead of through a temporary `Vec`.

use super::bindings::tessera::task::types::Dtype;
use super::convert::from_wit_dtype;
use super::result::TaskArray;
use super::sandbox::TaskState;
use tessera_core::{ChunkBuilder, Error, Result};
use wasmtime::component::{Linker, Resource, ResourceType, WasmList};

/// One `array-builder` of a task: its chunk so far (out of the table only while a
/// part is being appended).
pub struct ArrayBuilder(Option<ChunkBuilder>);

/// The instance the contract's types (and so the resource) are imported from.
const TYPES_INSTANCE: &str = "tessera:task/types@0.1.0";

/// Provides `array-builder` to the tasks `linker` instantiates.
pub fn add_to_linker(linker: &mut Linker<TaskState>) -> Result<()> {
    let link_error = |e: wasmtime::Error| Error::Engine(format!("cannot provide the array builder to tasks: {e:#}"));
    let mut types = linker.instance(TYPES_INSTANCE).map_err(link_error)?;
    types
        .resource("array-builder", ResourceType::host::<ArrayBuilder>(), |mut store, rep| {
            store.data_mut().table().delete(Resource::<ArrayBuilder>::new_own(rep))?;
            Ok(())
        })
        .map_err(link_error)?;
    types
        .func_wrap("[static]array-builder.create", |mut store, (dtype, shape): (Dtype, Vec<u64>)| {
            Ok((create(store.data_mut(), dtype, &shape).map_err(|e| e.to_string()),))
        })
        .map_err(link_error)?;
    types
        .func_wrap("[method]array-builder.append", |mut store, (this, data): (Resource<ArrayBuilder>, WasmList<u8>)| {
            // The chunk leaves the table while the bytes are read from the guest's
            // memory (which borrows the store), then goes back.
            let mut chunk = store.data_mut().table().get_mut(&this)?.0.take().expect("a builder holds its chunk");
            let appended = chunk.append_le_bytes(data.as_le_slice(&store));
            store.data_mut().table().get_mut(&this)?.0 = Some(chunk);
            Ok((appended.map_err(|e| e.to_string()),))
        })
        .map_err(link_error)?;
    Ok(())
}

/// A new builder of `dtype` and `shape` in `state`'s table, within its memory limit.
fn create(state: &mut TaskState, dtype: Dtype, shape: &[u64]) -> Result<Resource<ArrayBuilder>> {
    let dims = shape.iter().map(|&n| usize::try_from(n)).collect::<std::result::Result<Vec<_>, _>>();
    let dims = dims.map_err(|_| Error::invalid("array-builder", format!("shape {shape:?} is too large")))?;
    // Counted before its first part reserves any memory.
    let builder = ChunkBuilder::new(from_wit_dtype(dtype), dims)?;
    state.reserve_built(builder.nbytes())?;
    state
        .table()
        .push(ArrayBuilder(Some(builder)))
        .map_err(|e| Error::invalid("array-builder", format!("cannot hold another builder: {e}")))
}

/// The array a task returned in builder `handle`, taken out of `state`'s table (its
/// chunk an error unless every element was written).
pub fn finish(state: &mut TaskState, handle: Resource<ArrayBuilder>) -> Result<TaskArray> {
    let builder = state
        .table()
        .delete(handle)
        .map_err(|e| Error::invalid("array-builder", format!("the task returned a builder it does not own: {e}")))?;
    let chunk = builder.0.expect("a builder holds its chunk");
    Ok(TaskArray { shape: chunk.shape().iter().map(|&n| n as u64).collect(), chunk: chunk.finish() })
}
