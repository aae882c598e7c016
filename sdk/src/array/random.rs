//! Seeded random arrays.
//!
//! Every element is a function of the seed and its global index only, so an array's
//! values do not depend on its chunking or on which block computes them: the same seed
//! gives the same array in 1 block or 1000.

use super::Array;
use super::chunks::normalize;
use tessera_core::op::{ArrayOp, Distribution};
use tessera_core::{DType, Error, Op, Result, Task};

fn random(op: &str, shape: &[u64], chunks: &[u64], dist: Distribution, seed: u64) -> Result<Array> {
    let chunks = normalize(op, shape, chunks)?;
    let array_shape = shape.to_vec();
    Array::blockwise_new(op, &[], shape.to_vec(), chunks.clone(), DType::F64, |ix| {
        let offset = ix.iter().zip(&chunks).map(|(&i, c)| c[..i].iter().sum()).collect();
        let shape = ix.iter().zip(&chunks).map(|(&i, c)| c[i] as usize).collect();
        let op = ArrayOp::Random { dist, seed, array_shape: array_shape.clone(), offset, shape, dtype: DType::F64 };
        Ok(Task::new(Op::Array(op), vec![]))
    })
}

/// Float64 values uniform on `[low, high)`.
pub fn uniform(shape: &[u64], chunks: &[u64], low: f64, high: f64, seed: u64) -> Result<Array> {
    if !(low.is_finite() && high.is_finite() && low <= high) {
        return Err(Error::invalid("random.uniform", format!("need finite low <= high, got low {low}, high {high}")));
    }
    random("uniform", shape, chunks, Distribution::Uniform { low, high }, seed)
}

/// Float64 values uniform on `[0, 1)` (NumPy's `random`).
pub fn random_sample(shape: &[u64], chunks: &[u64], seed: u64) -> Result<Array> {
    uniform(shape, chunks, 0.0, 1.0, seed)
}

/// Float64 values from a normal distribution.
pub fn normal(shape: &[u64], chunks: &[u64], mean: f64, std: f64, seed: u64) -> Result<Array> {
    if !(mean.is_finite() && std.is_finite() && std >= 0.0) {
        return Err(Error::invalid(
            "random.normal",
            format!("need finite mean and std >= 0, got mean {mean}, std {std}"),
        ));
    }
    random("normal", shape, chunks, Distribution::Normal { mean, std }, seed)
}
