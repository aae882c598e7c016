//! Tessera values to and from the values of the WIT contract.
//!
//! Arrays cross as `ndarray { dtype, shape, data }` with `data` as
//! [`Chunk::le_bytes`] lays it out (borrowed, not copied, on the way in; on the way out
//! copied once, straight into a chunk, by [`TaskValue`]'s lift). Bytes and
//! JSON cross as themselves; an array a task wrote through an `array-builder` is
//! already a chunk ([`builder`]); a unit value crosses as JSON `null`. A table returned by
//! a task arrives as its Arrow IPC bytes ([`Value::Bytes`]).

use super::bindings::tessera::task::types::{Context, Dtype, NdarrayParam, Span, ValueParam};
use super::builder;
use super::result::{TaskArray, TaskValue};
use super::sandbox::TaskState;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::ops::Range;
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

/// The element type a WIT `dtype` names.
pub fn from_wit_dtype(d: Dtype) -> DType {
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

/// A task argument made ready to cross into the guest: an array's bytes are borrowed
/// from its chunk when the chunk is contiguous, so the only copy is into the guest.
pub enum StagedArg<'a> {
    /// An array.
    Array {
        /// Its element type.
        dtype: Dtype,
        /// Its shape.
        shape: Vec<u64>,
        /// Its elements in C order, little endian.
        data: Cow<'a, [u8]>,
    },
    /// Bytes as they are.
    Bytes(&'a [u8]),
    /// A JSON document's text.
    Json(String),
}

impl<'a> StagedArg<'a> {
    /// Stages a task argument.
    pub fn new(v: &'a Value) -> Result<Self> {
        Ok(match v {
            Value::Chunk(c) => StagedArg::Array {
                dtype: to_wit_dtype(c.dtype()),
                shape: c.shape().iter().map(|&n| n as u64).collect(),
                data: c.le_bytes(),
            },
            Value::Bytes(b) => StagedArg::Bytes(b),
            Value::Json(j) => StagedArg::Json(j.to_string()),
            Value::Unit => StagedArg::Json("null".into()),
            Value::Tuple(_) => {
                return Err(Error::invalid(
                    "wasm",
                    "a tuple cannot be passed to a WASM task; pass its parts as arguments",
                ));
            }
        })
    }

    /// The WIT value, borrowing from the staged argument.
    pub fn to_wit(&self) -> ValueParam<'_> {
        match self {
            StagedArg::Array { dtype, shape, data } => ValueParam::Array(NdarrayParam { dtype: *dtype, shape, data }),
            StagedArg::Bytes(b) => ValueParam::Bytes(b),
            StagedArg::Json(j) => ValueParam::Json(j),
        }
    }
}

/// A task's array as a chunk. With a `window`, an array of the window's shape is the
/// window already; a larger one is cut to it.
fn chunk_of(a: TaskArray, window: Option<&[Range<usize>]>) -> Result<Chunk> {
    let cut = |chunk: Chunk| match window {
        Some(w) if w.len() != chunk.shape().len() || w.iter().zip(chunk.shape()).any(|(w, &n)| w.len() != n) => {
            chunk.window(w)
        }
        _ => Ok(chunk),
    };
    a.chunk.and_then(cut).map_err(|e| Error::invalid("wasm", format!("the task's array of shape {:?}: {e}", a.shape)))
}

/// A task's result as a value (an array it built taken out of its sandbox `state`); of
/// an array, only `window` is kept when given (a result that is not an array is then an
/// error, and so is an array that is neither the window nor holds it).
pub fn value_from_wit(v: TaskValue, state: &mut TaskState, window: Option<&[Range<usize>]>) -> Result<Value> {
    if window.is_some() && !matches!(v, TaskValue::Array(_) | TaskValue::Built(_)) {
        return Err(Error::invalid("wasm", "the task returned no array, but an array block was expected"));
    }
    Ok(match v {
        TaskValue::Array(a) => Value::Chunk(chunk_of(a, window)?),
        TaskValue::Built(handle) => Value::Chunk(chunk_of(builder::finish(state, handle)?, window)?),
        TaskValue::Bytes(b) | TaskValue::Table(b) => Value::Bytes(b),
        TaskValue::Json(s) => Value::Json(
            serde_json::from_str(&s)
                .map_err(|e| Error::invalid("wasm", format!("the task returned invalid JSON: {e}")))?,
        ),
    })
}

/// The seed of the task whose key reads `key_text`: the first 8 bytes of the sha256 of
/// that text, so it is the same on every run and every worker.
pub fn seed_of(key_text: &str) -> u64 {
    let digest = Sha256::digest(key_text.as_bytes());
    u64::from_le_bytes(digest[..8].try_into().expect("a sha256 has 32 bytes"))
}

/// A task's window (where its block lies in its extended block) as WIT spans; none
/// for a task without one.
pub fn spans(window: Option<&[Range<usize>]>) -> Vec<Span> {
    let span = |r: &Range<usize>| Span { start: r.start as u64, end: r.end as u64 };
    window.unwrap_or_default().iter().map(span).collect()
}

/// The WIT context of task `key`, whose text is `key_text`, with its `window` spans.
pub fn context_of<'a>(key: &'a Key, key_text: &'a str, window: &'a [Span]) -> Context<'a> {
    Context { key: key_text, block_index: key.index(), seed: seed_of(key_text), window }
}
