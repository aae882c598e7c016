//! Tessera values to and from the values of the WIT contract.
//!
//! Arrays cross as `ndarray { dtype, shape, data }` with `data` as
//! [`Chunk::to_le_bytes`] lays it out. Bytes and JSON cross as themselves; a unit
//! value crosses as JSON `null`. A table returned by a task arrives as its Arrow IPC
//! bytes ([`Value::Bytes`]).

use super::bindings::tessera::task::types::{Context, Dtype, Ndarray, Value as WitValue};
use sha2::{Digest, Sha256};
use tessera_core::{Chunk, DType, Error, Key, Result, Value};

fn to_wit_dtype(d: DType) -> Dtype {
    match d {
        DType::Bool => Dtype::Bool,
        DType::I8 => Dtype::I8,
        DType::I16 => Dtype::I16,
        DType::I32 => Dtype::I32,
        DType::I64 => Dtype::I64,
        DType::U8 => Dtype::U8,
        DType::U16 => Dtype::U16,
        DType::U32 => Dtype::U32,
        DType::U64 => Dtype::U64,
        DType::F32 => Dtype::F32,
        DType::F64 => Dtype::F64,
    }
}

fn from_wit_dtype(d: Dtype) -> DType {
    match d {
        Dtype::Bool => DType::Bool,
        Dtype::I8 => DType::I8,
        Dtype::I16 => DType::I16,
        Dtype::I32 => DType::I32,
        Dtype::I64 => DType::I64,
        Dtype::U8 => DType::U8,
        Dtype::U16 => DType::U16,
        Dtype::U32 => DType::U32,
        Dtype::U64 => DType::U64,
        Dtype::F32 => DType::F32,
        Dtype::F64 => DType::F64,
    }
}

/// A chunk as a WIT array.
pub fn chunk_to_wit(chunk: &Chunk) -> Ndarray {
    let shape = chunk.shape().iter().map(|&n| n as u64).collect();
    let data = chunk.to_le_bytes();
    Ndarray { dtype: to_wit_dtype(chunk.dtype()), shape, data }
}

/// A WIT array as a chunk, checking that the data fits the shape.
pub fn chunk_from_wit(a: Ndarray) -> Result<Chunk> {
    let dtype = from_wit_dtype(a.dtype);
    let shape = a.shape.iter().map(|&n| usize::try_from(n)).collect::<std::result::Result<Vec<_>, _>>();
    let shape = shape.map_err(|_| Error::invalid("wasm", format!("array shape {:?} is too large", a.shape)))?;
    Chunk::from_le_bytes(dtype, shape, &a.data)
        .map_err(|e| Error::invalid("wasm", format!("the task's array does not fit its shape {:?}: {e}", a.shape)))
}

/// A task argument as a WIT value.
pub fn value_to_wit(v: &Value) -> Result<WitValue> {
    Ok(match v {
        Value::Chunk(c) => WitValue::Array(chunk_to_wit(c)),
        Value::Bytes(b) => WitValue::Bytes(b.clone()),
        Value::Json(j) => WitValue::Json(j.to_string()),
        Value::Unit => WitValue::Json("null".into()),
        Value::Tuple(_) => {
            return Err(Error::invalid("wasm", "a tuple cannot be passed to a WASM task; pass its parts as arguments"));
        }
    })
}

/// A task's WIT result as a value.
pub fn value_from_wit(v: WitValue) -> Result<Value> {
    Ok(match v {
        WitValue::Array(a) => Value::Chunk(chunk_from_wit(a)?),
        WitValue::Bytes(b) | WitValue::Table(b) => Value::Bytes(b),
        WitValue::Json(s) => Value::Json(
            serde_json::from_str(&s)
                .map_err(|e| Error::invalid("wasm", format!("the task returned invalid JSON: {e}")))?,
        ),
    })
}

/// The seed of task `key`: the first 8 bytes of the sha256 of its text, so it is the
/// same on every run and every worker.
pub fn seed_of(key: &Key) -> u64 {
    let digest = Sha256::digest(key.to_string().as_bytes());
    u64::from_le_bytes(digest[..8].try_into().expect("a sha256 has 32 bytes"))
}

/// The WIT context of task `key`.
pub fn context_of(key: &Key) -> Context {
    Context { key: key.to_string(), block_index: key.index.to_vec(), seed: seed_of(key) }
}
