//! `blockwise` with index notation: one task per output block, reading the matching
//! block of every input (Dask's `da.blockwise`).
//!
//! Each input is given with one letter per axis; the output's letters name the axes of
//! the result. Letters shared between arrays are the same axis: `("tyx", stack)` and
//! `("yx", mask)` with output `"tyx"` pair every block of a 3-D stack with the block of
//! a 2-D mask over the same rows and columns. An axis must have one length in every
//! array that has it; inputs chunked differently along it are rechunked to the chunks
//! of the first input that has it. Every input letter must appear in the output
//! (contractions are not supported), and every output letter in some input.

use super::Array;
use std::collections::BTreeMap;
use tessera_core::{Chunk, DType, Error, NativeFn, Op, Result, Task, Value};

/// Letters of one index string, checked against the array's dimensions.
fn letters(op: &str, index: &str, array: Option<&Array>) -> Result<Vec<char>> {
    let chars: Vec<char> = index.chars().collect();
    if let Some(c) = chars.iter().find(|c| !c.is_ascii_alphabetic()) {
        return Err(Error::invalid(op, format!("index {index:?} has {c:?}; use one letter per axis")));
    }
    for (i, c) in chars.iter().enumerate() {
        if chars[..i].contains(c) {
            return Err(Error::invalid(op, format!("index {index:?} repeats axis {c:?}")));
        }
    }
    if let Some(a) = array
        && a.ndim() != chars.len()
    {
        return Err(Error::invalid(
            op,
            format!(
                "index {index:?} has {} letters but array {} has {} axes (shape {:?})",
                chars.len(),
                a.name(),
                a.ndim(),
                a.shape()
            ),
        ));
    }
    Ok(chars)
}

/// One output block per block of the grid named by `out_index`; the task at block
/// `ix` runs `op` on the matching block of each of `args`, in order. `op` must return
/// a block whose shape is the output block's and whose dtype is `dtype`.
pub(crate) fn blockwise_op(
    name: &str,
    op: Op,
    out_index: &str,
    args: &[(&Array, &str)],
    dtype: DType,
) -> Result<Array> {
    let out = letters(name, out_index, None)?;
    if args.is_empty() {
        return Err(Error::invalid(name, "needs at least one input array"));
    }
    // Length and chunks of every axis letter, from the first array that has it.
    let mut axes: BTreeMap<char, (u64, Vec<u64>, &str)> = BTreeMap::new();
    let mut arg_letters = Vec::with_capacity(args.len());
    // Where each input axis sits in the output index.
    let mut positions = Vec::with_capacity(args.len());
    for (array, index) in args {
        let chars = letters(name, index, Some(array))?;
        let mut position = Vec::with_capacity(chars.len());
        for (axis, c) in chars.iter().enumerate() {
            let Some(p) = out.iter().position(|o| o == c) else {
                return Err(Error::invalid(
                    name,
                    format!(
                        "axis {c:?} of array {} (index {index:?}) is not in the output index {out_index:?}",
                        array.name()
                    ),
                ));
            };
            position.push(p);
            let len = array.shape()[axis];
            match axes.get(c) {
                Some((first_len, _, first)) if *first_len != len => {
                    return Err(Error::invalid(
                        name,
                        format!(
                            "axis {c:?} has length {first_len} in array {first} but {len} in array {}",
                            array.name()
                        ),
                    ));
                }
                Some(_) => {}
                None => {
                    axes.insert(*c, (len, array.chunks()[axis].clone(), array.name()));
                }
            }
        }
        arg_letters.push(chars);
        positions.push(position);
    }
    if let Some(c) = out.iter().find(|c| !axes.contains_key(c)) {
        return Err(Error::invalid(name, format!("output axis {c:?} of {out_index:?} is in no input index")));
    }
    // Inputs chunked differently along a shared axis are rechunked to the first's chunks.
    let mut inputs = Vec::with_capacity(args.len());
    for ((array, _), chars) in args.iter().zip(&arg_letters) {
        let chunks: Vec<Vec<u64>> = chars.iter().map(|c| axes[c].1.clone()).collect();
        inputs.push(if array.chunks() == chunks.as_slice() { (*array).clone() } else { array.rechunk_to(chunks)? });
    }
    let shape = out.iter().map(|c| axes[c].0).collect();
    let chunks = out.iter().map(|c| axes[c].1.clone()).collect();
    let refs: Vec<&Array> = inputs.iter().collect();
    Array::blockwise_new(name, &refs, shape, chunks, dtype, |ix| {
        let deps = inputs
            .iter()
            .zip(&positions)
            .map(|(input, pos)| input.key(&pos.iter().map(|&p| ix[p]).collect::<Vec<_>>()))
            .collect();
        Ok(Task::new(op.clone(), deps))
    })
}

/// Applies the Rust function `f` to the matching blocks of `args` (each an array with
/// its index string; see the module docs) and lays the results out on the grid of
/// `out_index` (Dask's `da.blockwise(f, out_index, x, "ij", y, "j", dtype=…)`).
///
/// `f` gets the blocks in the order of `args` and must return the output block (its
/// shape is the block's extent along the output letters); the result is converted to
/// `dtype`. The function lives in this process, so the array computes on the local
/// engine only.
pub fn blockwise(
    name: &str,
    out_index: &str,
    args: &[(&Array, &str)],
    dtype: DType,
    f: impl Fn(&[&Chunk]) -> Result<Chunk> + Send + Sync + 'static,
) -> Result<Array> {
    let op = Op::Native(NativeFn::new(name, true, move |values: &[&Value]| {
        let blocks = values.iter().map(|v| v.as_chunk()).collect::<Result<Vec<_>>>()?;
        Ok(Value::Chunk(f(&blocks)?.into_dtype(dtype)))
    }));
    blockwise_op(name, op, out_index, args, dtype)
}
