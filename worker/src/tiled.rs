//! Fused reductions run tile by tile, so their intermediates stay in cache.
//!
//! A fused task such as `transpose → add → mean partial` over 2000 × 2000 float64
//! blocks would otherwise materialise a 32 MB block per step and stream each one
//! through main memory again for the next step. When every step before the final
//! [`ArrayOp::ReduceChunk`] is element-wise, a transpose or a generated block (random,
//! full), the task runs on tiles of the reduced value instead: each tile's steps run on
//! slices of the inputs, the tile's partial is taken, and the partials are merged by the
//! reduction's own combine.
//!
//! Tiles are bands of the first reduced axis. When a band would read some input across
//! its rows (the input of a transpose), the bands are also cut along the last axis, so
//! every input is read in runs of [`TILE_COLUMNS`] elements; partials of tiles along a
//! kept axis are laid side by side. A step broadcast along a cut (length one there, or
//! missing the axis) is computed once, whole.
//!
//! Results equal the whole-block evaluation up to the rounding of float sums taken in a
//! different order; tile sizes are fixed, so they are reproducible.

use crate::kernels::{self, create, elementwise, reduce, structure};
use ndarray::{Axis, IxDyn, Slice};
use std::borrow::Cow;
use std::sync::Arc;
use tessera_core::op::{ArrayOp, Fused, FusedArg, FusedStep, ReduceKind};
use tessera_core::{Chunk, Element, Error, Op, Result, Value, chunk_map};

/// Bytes of one tile of the reduced value (counting 8-byte elements): a few arrays of
/// this size stay in a core's L2 cache at once.
pub const TILE_BYTES: usize = 128 * 1024;

/// Length along the last axis of tiles that are cut along two axes.
pub const TILE_COLUMNS: usize = 128;

/// For each tile dimension, the axis of a value it cuts (`None`: not cut along it).
type Cut = Vec<Option<usize>>;

/// One dimension of the tile grid: an axis of the reduced value, its length, and the
/// tile extent along it.
#[derive(Clone, Copy, Debug)]
struct TileDim {
    axis: usize,
    len: usize,
    size: usize,
}

/// A tile: the range `start..end` along each [`TileDim`].
type Tile = [(usize, usize)];

/// A fused reduction ready to run tile by tile: see the [module docs](self).
#[derive(Debug)]
pub struct TiledReduction<'a> {
    fused: &'a Fused,
    /// The grid: one or two dimensions.
    dims: Vec<TileDim>,
    /// Per step before the reduction, how a tile cuts its value (all `None`: the step
    /// is computed whole, once).
    cuts: Vec<Cut>,
    /// Per step, per argument that is a task input or a step computed whole: how a
    /// tile cuts that value before the step reads it.
    arg_cuts: Vec<Vec<Cut>>,
    /// The reduction: its kind, reduced axes, block offset and array shape.
    kind: ReduceKind,
    axes: &'a [usize],
    offset: &'a [u64],
    array_shape: &'a [u64],
    /// The step whose value is reduced.
    reduced: usize,
    /// Per step: a generated block read only by a transpose, which generates its tile
    /// in transposed order itself.
    absorbed: Vec<bool>,
}

impl<'a> TiledReduction<'a> {
    /// Plans `fused` over `inputs` with tiles of about `tile_bytes`, or `None` when the
    /// task is not a reduction of element-wise steps, or fits in one tile anyway.
    pub fn plan(fused: &'a Fused, inputs: &[Arc<Value>], tile_bytes: usize) -> Option<TiledReduction<'a>> {
        let (last, body) = fused.steps.split_last()?;
        let Op::Array(ArrayOp::ReduceChunk { kind, axes, offset, array_shape }) = &last.op else {
            return None;
        };
        let [FusedArg::Step(reduced)] = last.args.as_slice() else { return None };
        let reduced = *reduced;
        if reduced + 1 != body.len() {
            return None;
        }
        let shapes = shapes(body, inputs)?;
        let shape = &shapes[reduced];
        let first = *axes.iter().min()?;
        let mut dims = vec![TileDim { axis: first, len: *shape.get(first)?, size: 0 }];
        let (mut cuts, mut arg_cuts) = propagate(body, &shapes, inputs, reduced, &dims)?;
        let last_axis = shape.len() - 1;
        if last_axis != first && reads_across_rows(body, inputs, &arg_cuts) {
            dims.push(TileDim { axis: last_axis, len: shape[last_axis], size: TILE_COLUMNS.min(shape[last_axis]) });
            (cuts, arg_cuts) = propagate(body, &shapes, inputs, reduced, &dims)?;
        }
        let uncut: usize = shape
            .iter()
            .enumerate()
            .map(|(axis, &n)| match dims.iter().find(|d| d.axis == axis) {
                Some(d) if d.size > 0 => d.size,
                Some(_) => 1,
                None => n,
            })
            .product();
        dims[0].size = (tile_bytes / (uncut.max(1) * 8)).max(1);
        if dims.iter().all(|d| d.size >= d.len) {
            return None;
        }
        let mut absorbed = vec![false; body.len()];
        for step in body {
            if let (Op::Array(ArrayOp::Transpose { .. }), [FusedArg::Step(s)]) = (&step.op, step.args.as_slice()) {
                absorbed[*s] = body[*s].op.is_generator() && cuts[*s].iter().any(Option::is_some);
            }
        }
        Some(TiledReduction { fused, dims, cuts, arg_cuts, kind: *kind, axes, offset, array_shape, reduced, absorbed })
    }

    /// Runs the task over `inputs`: the merged partial of every tile.
    pub fn run(&self, inputs: &[Arc<Value>]) -> Result<Value> {
        let body = &self.fused.steps[..self.cuts.len()];
        let whole_step = |i: usize| self.cuts[i].iter().all(Option::is_none);
        let mut whole: Vec<Option<Value>> = vec![None; body.len()];
        for (i, step) in body.iter().enumerate() {
            if whole_step(i) {
                let args = self.args(i, inputs, &whole, &mut [], None)?;
                let value = run_step(&step.op, &args, &self.cuts[i], None)?;
                drop(args);
                whole[i] = Some(value);
            }
        }
        let ranges = |d: TileDim| (0..d.len).step_by(d.size).map(move |s| (s, (s + d.size).min(d.len)));
        let (rows, columns) = (self.dims[0], self.dims.get(1).copied());
        let column_ranges: Vec<(usize, usize)> = match columns {
            Some(c) => ranges(c).collect(),
            None => vec![(0, 0)],
        };
        let mut partials: Vec<Vec<Value>> = vec![Vec::new(); column_ranges.len()];
        for row in ranges(rows) {
            for (column, partials) in column_ranges.iter().zip(&mut partials) {
                let tile = [row, *column];
                let tile = &tile[..self.dims.len()];
                let mut values: Vec<Option<Value>> = vec![None; body.len()];
                for (i, step) in body.iter().enumerate() {
                    if whole_step(i) || self.absorbed[i] {
                        continue;
                    }
                    values[i] = Some(match (&step.op, step.args.as_slice()) {
                        (Op::Array(ArrayOp::Transpose { axes }), [FusedArg::Step(s)]) if self.absorbed[*s] => {
                            match &body[*s].op {
                                Op::Array(source) => generate(source, &self.cuts[*s], Some(tile), axes)?,
                                _ => return Err(missing(*s)),
                            }
                        }
                        // A transpose of an input (or of a step computed whole) copies its
                        // tile straight out of the permuted source.
                        (Op::Array(ArrayOp::Transpose { axes }), [arg]) if !self.tiled(arg) => {
                            let source = match *arg {
                                FusedArg::Input(j) => inputs.get(j).map(Arc::as_ref),
                                FusedArg::Step(s) => whole.get(s).and_then(Option::as_ref),
                            };
                            let source = source.ok_or_else(|| missing(i))?.as_chunk()?;
                            Value::Chunk(cut_chunk(source, Some(axes), &self.cuts[i], tile))
                        }
                        _ => {
                            let args = self.args(i, inputs, &whole, &mut values, Some(tile))?;
                            run_step(&step.op, &args, &self.cuts[i], Some(tile))?
                        }
                    });
                }
                let value = values[self.reduced].take().ok_or_else(|| missing(self.reduced))?;
                let mut offset = self.offset.to_vec();
                for (d, &(start, _)) in self.dims.iter().zip(tile) {
                    if let Some(o) = offset.get_mut(d.axis) {
                        *o += start as u64;
                    }
                }
                partials.push(reduce::chunk(self.kind, self.axes, &offset, self.array_shape, value.as_chunk()?)?);
            }
        }
        let mut merged = partials
            .iter()
            .map(|column| reduce::combine(self.kind, &column.iter().collect::<Vec<_>>()))
            .collect::<Result<Vec<_>>>()?;
        match columns {
            Some(c) if !self.axes.contains(&c.axis) => side_by_side(&merged, c.axis),
            _ if merged.len() == 1 => merged.pop().ok_or_else(|| missing(self.reduced)),
            _ => reduce::combine(self.kind, &merged.iter().collect::<Vec<_>>()),
        }
    }

    /// True when `arg` is a step computed tile by tile.
    fn tiled(&self, arg: &FusedArg) -> bool {
        matches!(*arg, FusedArg::Step(s) if self.cuts.get(s).is_some_and(|c| c.iter().any(Option::is_some)))
    }

    /// The arguments of step `i` for `tile` (`None`: the whole step), taking tiled
    /// step values out of `values` (each has one consumer).
    fn args<'v>(
        &self,
        i: usize,
        inputs: &'v [Arc<Value>],
        whole: &'v [Option<Value>],
        values: &mut [Option<Value>],
        tile: Option<&Tile>,
    ) -> Result<Vec<Cow<'v, Value>>> {
        let step = &self.fused.steps[i];
        let mut args = Vec::with_capacity(step.args.len());
        for (k, arg) in step.args.iter().enumerate() {
            let cut = &self.arg_cuts[i][k];
            args.push(match *arg {
                FusedArg::Input(j) => {
                    let input = inputs.get(j).ok_or_else(|| Error::invalid("fused", format!("no input {j}")))?;
                    cut_value(input, cut, tile)?
                }
                FusedArg::Step(s) => match whole.get(s).and_then(Option::as_ref) {
                    Some(value) => cut_value(value, cut, tile)?,
                    None => Cow::Owned(values.get_mut(s).and_then(Option::take).ok_or_else(|| missing(s))?),
                },
            });
        }
        Ok(args)
    }
}

/// Assigns every step's cut, from the reduced value's (`dims`) back to the inputs.
/// `None` when a step on the way cannot be cut, or is read twice.
fn propagate(
    body: &[FusedStep],
    shapes: &[Vec<usize>],
    inputs: &[Arc<Value>],
    reduced: usize,
    dims: &[TileDim],
) -> Option<(Vec<Cut>, Vec<Vec<Cut>>)> {
    let uncut = vec![None; dims.len()];
    let mut cuts = vec![uncut.clone(); body.len()];
    let mut arg_cuts: Vec<Vec<Cut>> = body.iter().map(|s| vec![uncut.clone(); s.args.len()]).collect();
    let mut assigned = vec![false; body.len()];
    cuts[reduced] = dims.iter().map(|d| Some(d.axis)).collect();
    assigned[reduced] = true;
    for (i, step) in body.iter().enumerate().rev() {
        if cuts[i].iter().all(Option::is_none) {
            continue;
        }
        let Op::Array(op) = &step.op else { return None };
        for (k, arg) in step.args.iter().enumerate() {
            let arg_shape = match arg {
                FusedArg::Input(j) => inputs.get(*j)?.as_chunk().ok()?.shape(),
                FusedArg::Step(s) => shapes.get(*s)?.as_slice(),
            };
            let mut arg_cut = Vec::with_capacity(dims.len());
            for cut in &cuts[i] {
                arg_cut.push(match (op, *cut) {
                    (_, None) => None,
                    (ArrayOp::Transpose { axes }, Some(axis)) => Some(*axes.get(axis)?),
                    (
                        ArrayOp::Unary(_) | ArrayOp::BinaryScalar { .. } | ArrayOp::Binary(_) | ArrayOp::Where,
                        Some(axis),
                    ) => {
                        let aligned = axis.checked_sub(shapes[i].len() - arg_shape.len());
                        aligned.filter(|&a| arg_shape.get(a) == shapes[i].get(axis))
                    }
                    _ => return None,
                });
            }
            match arg {
                FusedArg::Input(_) => arg_cuts[i][k] = arg_cut,
                FusedArg::Step(s) => {
                    // Fusion inlines producers with one consumer, so each step is
                    // reached once; anything else is run the ordinary way.
                    if std::mem::replace(&mut assigned[*s], true) {
                        return None;
                    }
                    cuts[*s] = arg_cut;
                }
            }
        }
    }
    Some((cuts, arg_cuts))
}

/// True when cutting bands of the first tile dimension would slice some input of
/// two or more axes along another axis than its first, i.e. read it across its rows.
fn reads_across_rows(body: &[FusedStep], inputs: &[Arc<Value>], arg_cuts: &[Vec<Cut>]) -> bool {
    body.iter().zip(arg_cuts).any(|(step, cuts)| {
        step.args.iter().zip(cuts).any(|(arg, cut)| match (arg, cut.first()) {
            (FusedArg::Input(j), Some(Some(axis))) => {
                *axis != 0 && inputs.get(*j).and_then(|v| v.as_chunk().ok()).is_some_and(|c| c.shape().len() >= 2)
            }
            _ => false,
        })
    })
}

/// Runs one step's kernel; a generated block is generated for its `tile` only.
fn run_step(op: &Op, args: &[Cow<'_, Value>], cut: &Cut, tile: Option<&Tile>) -> Result<Value> {
    let Op::Array(op) = op else { return Err(Error::invalid("fused", "a tiled step must be an array kernel")) };
    match op {
        ArrayOp::Full { shape, .. } | ArrayOp::Random { shape, .. } => {
            generate(op, cut, tile, &(0..shape.len()).collect::<Vec<_>>())
        }
        op => kernels::run(op, &args.iter().map(Cow::as_ref).collect::<Vec<_>>()),
    }
}

/// The generated block `op` (full or random) cut to `tile` along the axes `cut`
/// names, with its axes permuted by `axes` (output axis `i` is block axis `axes[i]`).
fn generate(op: &ArrayOp, cut: &Cut, tile: Option<&Tile>, axes: &[usize]) -> Result<Value> {
    let region = |shape: &[usize], offset: &mut [u64]| {
        let mut shape = shape.to_vec();
        for (axis, &(start, end)) in cut.iter().zip(tile.unwrap_or_default()) {
            if let Some(axis) = *axis {
                shape[axis] = end - start;
                if let Some(o) = offset.get_mut(axis) {
                    *o += start as u64;
                }
            }
        }
        shape
    };
    match op {
        ArrayOp::Full { shape, value, dtype } => {
            let shape = region(shape, &mut []);
            let permuted = axes.iter().map(|&a| shape.get(a).copied()).collect::<Option<Vec<_>>>();
            let permuted =
                permuted.ok_or_else(|| Error::invalid("fused", format!("axes {axes:?} do not fit {shape:?}")))?;
            Ok(Chunk::full(&permuted, *value, *dtype).into())
        }
        ArrayOp::Random { dist, seed, array_shape, offset, shape, dtype } => {
            let mut offset = offset.clone();
            let shape = region(shape, &mut offset);
            Ok(create::random_permuted(*dist, *seed, array_shape, &offset, &shape, *dtype, axes)?.into())
        }
        other => Err(Error::invalid("fused", format!("{} is not a generated block", other.name()))),
    }
}

/// `value` cut to `tile` along the axes `cut` names (borrowed when nothing is cut).
fn cut_value<'v>(value: &'v Value, cut: &Cut, tile: Option<&Tile>) -> Result<Cow<'v, Value>> {
    match tile.filter(|_| cut.iter().any(Option::is_some)) {
        Some(tile) => Ok(Cow::Owned(Value::Chunk(cut_chunk(value.as_chunk()?, None, cut, tile)))),
        None => Ok(Cow::Borrowed(value)),
    }
}

/// `chunk`, with its axes permuted by `axes` when given, cut to `tile` along the axes
/// `cut` names, as a new C-order chunk.
fn cut_chunk(chunk: &Chunk, axes: Option<&[usize]>, cut: &Cut, tile: &Tile) -> Chunk {
    chunk_map!(chunk, x: T => {
        let mut part = x.view();
        if let Some(axes) = axes {
            part = part.permuted_axes(IxDyn(axes));
        }
        for (axis, &(start, end)) in cut.iter().zip(tile) {
            if let Some(axis) = *axis {
                part.slice_axis_inplace(Axis(axis), Slice::from(start..end));
            }
        }
        T::into_chunk(tessera_core::layout::to_standard(part))
    })
}

/// Partials of neighbouring tiles along the kept `axis`, laid side by side: chunks are
/// concatenated, and so is each chunk of a tuple partial (other members, such as the
/// dtype tag, are taken from the first).
fn side_by_side(parts: &[Value], axis: usize) -> Result<Value> {
    match parts.first() {
        Some(Value::Chunk(_)) => {
            let chunks = parts.iter().map(Value::as_chunk).collect::<Result<Vec<_>>>()?;
            Ok(Value::Chunk(concatenate(&chunks, axis)?))
        }
        Some(Value::Tuple(first)) => {
            let mut merged = Vec::with_capacity(first.len());
            for (m, member) in first.iter().enumerate() {
                merged.push(match member {
                    Value::Chunk(_) => {
                        let chunks = parts
                            .iter()
                            .map(|p| match p {
                                Value::Tuple(t) => t.get(m).ok_or_else(|| missing_member(m))?.as_chunk(),
                                _ => Err(missing_member(m)),
                            })
                            .collect::<Result<Vec<_>>>()?;
                        Value::Chunk(concatenate(&chunks, axis)?)
                    }
                    other => other.clone(),
                });
            }
            Ok(Value::Tuple(merged))
        }
        _ => Err(Error::invalid("fused", "tile partials must be chunks or tuples")),
    }
}

/// `chunks` joined along `axis`, by the assembling kernel.
fn concatenate(chunks: &[&Chunk], axis: usize) -> Result<Chunk> {
    let ndim = chunks.first().map_or(0, |c| c.shape().len());
    let grid: Vec<usize> = (0..ndim).map(|d| if d == axis { chunks.len() } else { 1 }).collect();
    let whole = |c: &&Chunk| c.shape().iter().map(|&n| (0, n)).collect::<Vec<_>>();
    structure::assemble(&grid, &chunks.iter().map(whole).collect::<Vec<_>>(), chunks)
}

/// The shape of every step's value, or `None` if a step is not one a tile can run.
fn shapes(body: &[FusedStep], inputs: &[Arc<Value>]) -> Option<Vec<Vec<usize>>> {
    let mut shapes: Vec<Vec<usize>> = Vec::with_capacity(body.len());
    for step in body {
        let shape = {
            let arg_shape = |arg: &FusedArg| -> Option<&[usize]> {
                match arg {
                    FusedArg::Input(j) => Some(inputs.get(*j)?.as_chunk().ok()?.shape()),
                    FusedArg::Step(s) => shapes.get(*s).map(Vec::as_slice),
                }
            };
            let Op::Array(op) = &step.op else { return None };
            match (op, step.args.as_slice()) {
                (ArrayOp::Full { shape, .. } | ArrayOp::Random { shape, .. }, []) => shape.clone(),
                (ArrayOp::Unary(_) | ArrayOp::BinaryScalar { .. }, [a]) => arg_shape(a)?.to_vec(),
                (ArrayOp::Binary(_), [_, _]) | (ArrayOp::Where, [_, _, _]) => {
                    let operands = step.args.iter().map(arg_shape).collect::<Option<Vec<_>>>()?;
                    elementwise::broadcast_shape(&operands).ok()?
                }
                (ArrayOp::Transpose { axes }, [a]) => {
                    let a = arg_shape(a)?;
                    if !structure::is_permutation(axes, a.len()) {
                        return None;
                    }
                    axes.iter().map(|&ax| a.get(ax).copied()).collect::<Option<Vec<_>>>()?
                }
                _ => return None,
            }
        };
        shapes.push(shape);
    }
    Some(shapes)
}

/// The error for a step value that is not there when it is read.
fn missing(step: usize) -> Error {
    Error::invalid("fused", format!("step {step} was read before it ran"))
}

/// The error for a tuple partial without member `m`.
fn missing_member(m: usize) -> Error {
    Error::invalid("fused", format!("a tile partial has no member {m}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execute::execute_steps;
    use ndarray::{ArrayD, IxDyn};
    use proptest::prelude::*;
    use tessera_core::op::{BinaryOp, Distribution, UnaryOp};
    use tessera_core::{DType, Key};

    fn step(op: ArrayOp, args: &[FusedArg]) -> FusedStep {
        FusedStep { op: Op::Array(op), args: args.to_vec() }
    }

    fn reduction(kind: ReduceKind, axes: &[usize], offset: &[u64], array_shape: &[u64], of: usize) -> FusedStep {
        let op = ArrayOp::ReduceChunk {
            kind,
            axes: axes.to_vec(),
            offset: offset.to_vec(),
            array_shape: array_shape.to_vec(),
        };
        step(op, &[FusedArg::Step(of)])
    }

    /// Distinct, unordered values (so sums and arg-reductions are sensitive to every
    /// element), with a repeated maximum to exercise ties.
    fn input(shape: &[usize], salt: usize) -> Arc<Value> {
        let n: usize = shape.iter().product();
        let values = (0..n).map(|i| ((i * 7919 + salt * 104_729) % 997) as f64 / 10.0 - 40.0).collect();
        Arc::new(Value::Chunk(Chunk::F64(ArrayD::from_shape_vec(IxDyn(shape), values).unwrap())))
    }

    /// Runs `fused` tile by tile and step by step and checks the finalized results
    /// agree (floats to 1e-9 relative, indices exactly). False when the task fits in
    /// one tile, so it is not tiled.
    fn tiled_equals_plain(fused: &Fused, inputs: &[Arc<Value>], tile_bytes: usize) -> bool {
        let Some(plan) = TiledReduction::plan(fused, inputs, tile_bytes) else { return false };
        let tiled = plan.run(inputs).unwrap();
        let plain = execute_steps(&Key::new("t", vec![0]), fused, inputs, &mut String::new()).unwrap();
        let Some(Op::Array(ArrayOp::ReduceChunk { kind, axes, .. })) = fused.steps.last().map(|s| &s.op) else {
            panic!("not a reduction")
        };
        let finalize = |v: &Value| reduce::finalize(*kind, axes, false, v).unwrap();
        match (finalize(&tiled), finalize(&plain)) {
            (Chunk::F64(t), Chunk::F64(p)) => {
                assert_eq!(t.shape(), p.shape());
                for (t, p) in t.iter().zip(&p) {
                    assert!((t - p).abs() <= 1e-9 * p.abs().max(1.0), "tiled {t} != plain {p}");
                }
            }
            (t, p) => assert_eq!(t, p),
        }
        true
    }

    #[test]
    fn a_transposed_random_block_is_generated_in_place_and_summed_by_tiles() {
        for dist in [Distribution::Uniform { low: -1.0, high: 3.0 }, Distribution::Normal { mean: 2.0, std: 0.5 }] {
            let random = |offset: [u64; 2], shape: [usize; 2]| ArrayOp::Random {
                dist,
                seed: 11,
                array_shape: vec![23, 23],
                offset: offset.to_vec(),
                shape: shape.to_vec(),
                dtype: DType::F64,
            };
            // Block (0, 1) of x + x.T for a 23 × 23 x in 9 × 14 blocks.
            let fused = Fused {
                steps: vec![
                    step(random([0, 9], [9, 14]), &[]),
                    step(random([9, 0], [14, 9]), &[]),
                    step(ArrayOp::Transpose { axes: vec![1, 0] }, &[FusedArg::Step(1)]),
                    step(ArrayOp::Binary(BinaryOp::Add), &[FusedArg::Step(0), FusedArg::Step(2)]),
                    reduction(ReduceKind::Sum, &[0, 1], &[0, 9], &[23, 23], 3),
                ],
            };
            let plan = TiledReduction::plan(&fused, &[], 3 * 14 * 8).unwrap();
            assert_eq!(plan.absorbed, [false, true, false, false]);
            for tile_bytes in [8, 3 * 14 * 8, 5 * 14 * 8] {
                assert!(tiled_equals_plain(&fused, &[], tile_bytes));
            }
        }
    }

    #[test]
    fn reading_a_transposed_input_cuts_tiles_along_both_axes_and_lays_kept_partials_side_by_side() {
        let inputs = [input(&[7, 300], 1), input(&[300, 7], 2)];
        for kind in [ReduceKind::Mean, ReduceKind::Var { ddof: 1.0 }, ReduceKind::ArgMax, ReduceKind::Min] {
            let fused = Fused {
                steps: vec![
                    step(ArrayOp::Transpose { axes: vec![1, 0] }, &[FusedArg::Input(1)]),
                    step(ArrayOp::Binary(BinaryOp::Add), &[FusedArg::Input(0), FusedArg::Step(0)]),
                    reduction(kind, &[0], &[14, 300], &[30, 900], 1),
                ],
            };
            let plan = TiledReduction::plan(&fused, &inputs, 2 * TILE_COLUMNS * 8).unwrap();
            assert_eq!(plan.dims.len(), 2, "{kind:?}");
            assert!(tiled_equals_plain(&fused, &inputs, 2 * TILE_COLUMNS * 8), "{kind:?}");
        }
    }

    #[test]
    fn a_broadcast_operand_is_computed_once_and_read_whole() {
        let inputs = [input(&[40, 6], 3), input(&[1, 6], 4), input(&[6], 5)];
        let fused = Fused {
            steps: vec![
                step(ArrayOp::Unary(UnaryOp::Abs), &[FusedArg::Input(1)]),
                step(ArrayOp::Binary(BinaryOp::Sub), &[FusedArg::Input(0), FusedArg::Step(0)]),
                step(ArrayOp::Binary(BinaryOp::Mul), &[FusedArg::Step(1), FusedArg::Input(2)]),
                step(
                    ArrayOp::BinaryScalar {
                        op: BinaryOp::Add,
                        scalar: tessera_core::Scalar::F64(0.5),
                        scalar_first: false,
                    },
                    &[FusedArg::Step(2)],
                ),
                reduction(ReduceKind::ArgMin, &[0, 1], &[8, 0], &[48, 6], 3),
            ],
        };
        let plan = TiledReduction::plan(&fused, &inputs, 6 * 8 * 3).unwrap();
        assert_eq!(plan.cuts[0], [None], "the broadcast row is not cut");
        assert_eq!(plan.arg_cuts[2][1], [None], "the 1-d operand has no axis 0 to cut");
        assert!(tiled_equals_plain(&fused, &inputs, 6 * 8 * 3));
    }

    #[test]
    fn tasks_that_are_not_element_wise_reductions_run_the_ordinary_way() {
        let inputs = [input(&[64, 64], 6)];
        let not_reduced = Fused { steps: vec![step(ArrayOp::Unary(UnaryOp::Neg), &[FusedArg::Input(0)])] };
        assert!(TiledReduction::plan(&not_reduced, &inputs, 64).is_none());
        let slice = ArrayOp::Slice {
            slices: vec![tessera_core::op::AxisSlice { start: 0, stop: 8, step: 1 }; 2],
            drop_axes: vec![],
        };
        let sliced = Fused {
            steps: vec![step(slice, &[FusedArg::Input(0)]), reduction(ReduceKind::Sum, &[0, 1], &[0, 0], &[8, 8], 0)],
        };
        assert!(TiledReduction::plan(&sliced, &inputs, 64).is_none());
        let bad_transpose = Fused {
            steps: vec![
                step(ArrayOp::Transpose { axes: vec![0, 0] }, &[FusedArg::Input(0)]),
                reduction(ReduceKind::Sum, &[0, 1], &[0, 0], &[64, 64], 0),
            ],
        };
        assert!(TiledReduction::plan(&bad_transpose, &inputs, 64).is_none(), "the kernel reports the bad axes");
        let small = Fused { steps: vec![reduction(ReduceKind::Sum, &[0], &[0, 0], &[64, 64], 0)] };
        assert!(TiledReduction::plan(&small, &[], 1 << 20).is_none());
    }

    proptest! {
        #[test]
        fn tiled_reductions_equal_whole_block_ones(
            rows in 1usize..14,
            cols in 1usize..14,
            tile_bytes in 1usize..60,
            kind in 0usize..6,
            axes in prop_oneof![Just(vec![0]), Just(vec![1]), Just(vec![0, 1])],
            transposed in any::<bool>(),
        ) {
            let kind = [
                ReduceKind::Sum,
                ReduceKind::Mean,
                ReduceKind::Std { ddof: 0.0 },
                ReduceKind::Max,
                ReduceKind::ArgMax,
                ReduceKind::ArgMin,
            ][kind];
            let second = if transposed { input(&[cols, rows], 8) } else { input(&[rows, cols], 8) };
            let inputs = [input(&[rows, cols], 7), second];
            let operand = if transposed { FusedArg::Step(0) } else { FusedArg::Input(1) };
            let fused = Fused {
                steps: vec![
                    step(ArrayOp::Transpose { axes: vec![1, 0] }, &[FusedArg::Input(1)]),
                    step(ArrayOp::Binary(BinaryOp::Maximum), &[FusedArg::Input(0), operand]),
                    reduction(kind, &axes, &[3, 2], &[rows as u64 + 5, cols as u64 + 2], 1),
                ],
            };
            if !transposed {
                // Without the transpose, step 0 is not read: leave it out.
                let steps = vec![fused.steps[1].clone(), reduction(kind, &axes, &[3, 2], &[rows as u64 + 5, cols as u64 + 2], 0)];
                let mut steps = steps;
                steps[0].args = vec![FusedArg::Input(0), FusedArg::Input(1)];
                tiled_equals_plain(&Fused { steps }, &inputs, tile_bytes * 8);
            } else {
                tiled_equals_plain(&fused, &inputs, tile_bytes * 8);
            }
        }
    }
}
