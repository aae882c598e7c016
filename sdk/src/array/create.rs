//! Creating arrays: constants, ranges, in-memory data.

use super::Array;
use super::chunks::normalize;
use ndarray::ArrayD;
use std::sync::Arc;
use tessera_core::op::ArrayOp;
use tessera_core::{Chunk, DType, Element, Error, Op, Result, Scalar, Task, Value};

/// An array of `shape` in blocks of `chunks`, every element `value` (converted to
/// `dtype`).
pub fn full(shape: &[u64], chunks: &[u64], value: Scalar, dtype: DType) -> Result<Array> {
    let chunks = normalize("full", shape, chunks)?;
    let array = Array::blockwise_new("full", &[], shape.to_vec(), chunks.clone(), dtype, |ix| {
        let shape = ix.iter().zip(&chunks).map(|(&i, c)| c[i] as usize).collect();
        Ok(Task::new(Op::Array(ArrayOp::Full { shape, value, dtype }), vec![]))
    })?;
    Ok(array)
}

/// An array of zeros.
pub fn zeros(shape: &[u64], chunks: &[u64], dtype: DType) -> Result<Array> {
    full(shape, chunks, Scalar::U8(0), dtype)
}

/// An array of ones.
pub fn ones(shape: &[u64], chunks: &[u64], dtype: DType) -> Result<Array> {
    full(shape, chunks, Scalar::U8(1), dtype)
}

fn ranged(op: &str, start: f64, step: f64, len: u64, chunk: u64, dtype: DType) -> Result<Array> {
    let chunks = normalize(op, &[len], &[chunk])?;
    Array::blockwise_new(op, &[], vec![len], chunks.clone(), dtype, |ix| {
        let offset = chunks[0][..ix[0]].iter().sum();
        let len = chunks[0][ix[0]] as usize;
        Ok(Task::new(Op::Array(ArrayOp::Arange { start, step, offset, len, dtype }), vec![]))
    })
}

/// Evenly spaced values `start, start + step, …` below `stop` (NumPy's `arange`), in
/// blocks of `chunk`.
pub fn arange(start: f64, stop: f64, step: f64, chunk: u64, dtype: DType) -> Result<Array> {
    if step == 0.0 || !step.is_finite() || !start.is_finite() || !stop.is_finite() {
        return Err(Error::invalid(
            "arange",
            format!("start {start}, stop {stop} and step {step} must be finite, step non-zero"),
        ));
    }
    let len = ((stop - start) / step).ceil().max(0.0) as u64;
    ranged("arange", start, step, len, chunk, dtype)
}

/// `num` evenly spaced float64 values from `start` to `stop` inclusive (NumPy's
/// `linspace`), in blocks of `chunk`.
pub fn linspace(start: f64, stop: f64, num: u64, chunk: u64) -> Result<Array> {
    if !start.is_finite() || !stop.is_finite() {
        return Err(Error::invalid("linspace", format!("start {start} and stop {stop} must be finite")));
    }
    let step = if num > 1 { (stop - start) / (num - 1) as f64 } else { 0.0 };
    ranged("linspace", start, step, num, chunk, DType::F64)
}

/// An array holding `data`, cut into blocks of `chunks` (the blocks are embedded in the
/// graph).
pub fn from_ndarray<T: Element>(data: ArrayD<T>, chunks: &[u64]) -> Result<Array> {
    let shape: Vec<u64> = data.shape().iter().map(|&s| s as u64).collect();
    let chunks = normalize("from_ndarray", &shape, chunks)?;
    let numblocks: Vec<usize> = chunks.iter().map(Vec::len).collect();
    if numblocks.iter().product::<usize>() == 1 {
        return Ok(from_chunk(Chunk::from_array(data)));
    }
    let offsets: Vec<Vec<usize>> =
        chunks.iter().map(|c| super::chunks::offsets(c).into_iter().map(|o| o as usize).collect()).collect();
    Array::blockwise_new("array", &[], shape.clone(), chunks.clone(), T::DTYPE, |ix| {
        let block = data
            .slice_each_axis(|ax| {
                let a = ax.axis.index();
                let start = offsets[a][ix[a]];
                ndarray::Slice::from(start..start + chunks[a][ix[a]] as usize)
            })
            .to_owned();
        Ok(Task::new(Op::Literal(Arc::new(Value::Chunk(Chunk::from_array(block)))), vec![]))
    })
}

/// A one-block array holding `chunk` (embedded in the graph); `rechunk` it to cut it
/// into blocks.
pub fn from_chunk(chunk: Chunk) -> Array {
    let shape: Vec<u64> = chunk.shape().iter().map(|&n| n as u64).collect();
    let chunks = shape.iter().map(|&n| vec![n]).collect();
    let dtype = chunk.dtype();
    let value = Arc::new(Value::Chunk(chunk));
    let name = super::layer_name("array");
    let key = tessera_core::Key::new(name.clone(), vec![0; shape.len()]);
    Array::from_tasks(name, &[], vec![(key, Task::new(Op::Literal(value), vec![]))], shape, chunks, dtype)
}

/// Where a block sits in its array: passed to the function of [`from_blocks`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockInfo {
    /// The block's index in the grid of blocks.
    pub index: Vec<usize>,
    /// The global position of the block's first element.
    pub offset: Vec<u64>,
    /// The block's shape.
    pub shape: Vec<usize>,
    /// The whole array's shape.
    pub array_shape: Vec<u64>,
}

/// An array whose every block is made by the Rust function `make` from the block's
/// position (like Dask's `map_blocks` with `block_info`); `make` must return a block of
/// the given shape and `dtype`. Local engine only.
pub fn from_blocks(
    name: &str,
    shape: &[u64],
    chunks: &[u64],
    dtype: DType,
    make: impl Fn(&BlockInfo) -> Result<Chunk> + Send + Sync + 'static,
) -> Result<Array> {
    let chunks = normalize(name, shape, chunks)?;
    let make = Arc::new(make);
    Array::blockwise_new(name, &[], shape.to_vec(), chunks.clone(), dtype, |ix| {
        let info = BlockInfo {
            index: ix.to_vec(),
            offset: ix.iter().zip(&chunks).map(|(&i, c)| c[..i].iter().sum()).collect(),
            shape: ix.iter().zip(&chunks).map(|(&i, c)| c[i] as usize).collect(),
            array_shape: shape.to_vec(),
        };
        let make = make.clone();
        let body = move |_: &[&Value]| make(&info).map(|c| Value::Chunk(c.into_dtype(dtype)));
        Ok(Task::new(Op::Native(tessera_core::NativeFn::new(name, true, body)), vec![]))
    })
}
