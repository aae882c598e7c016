//! Functions of each block ([`Array::map_blocks`]) and of each block with a halo of its
//! neighbours ([`Array::map_overlap`], [`Array::gaussian_filter`]), plus Otsu
//! thresholding.
//!
//! A filter such as a moving sum or a gaussian needs, for every output element, the
//! input elements around it, so a block alone is not enough near its edges. As in
//! Dask's `map_overlap`, every block is first extended by a *halo* of `depth` elements
//! per axis taken from its neighbours (one [`ArrayOp::Assemble`] task gathering up to
//! 3^k pieces, corners included). Where the block touches the array's edge there is
//! no neighbour, and the halo is made up according to a [`Boundary`] rule
//! ([`ArrayOp::Pad`]). The function then runs on the extended block and the halo is
//! trimmed off its result ([`ArrayOp::Slice`]; a WASM task keeps only the block's
//! window of its result in the first place), leaving a block of the original shape
//! whose values equal those of the function applied to the whole array (as long as
//! the function looks no further than `depth` elements away).
//!
//! Each step is a layer of its own, one task per block. The graph fuser turns
//! assemble → pad → function → trim into one task per block, so the extended block
//! never leaves the worker that made it. The built-in gaussian filter needs neither
//! pad nor trim: its kernel reflects at the extended block's own edges (which are the
//! array's where there is no neighbour) and computes only the block's window.
//!
//! Every neighbour must be able to supply the halo: along an axis with more than one
//! block, no block may be shorter than the depth. Such arrays are rechunked first
//! (small blocks merged into their neighbours), as Dask does.

use super::{Array, Axes, compute_all};
use crate::Client;
use std::sync::Arc;
use tessera_core::op::{ArrayOp, AxisSlice, PadMode, WasmTask};
use tessera_core::{Chunk, DType, Error, Key, NativeFn, Op, Result, Scalar, Task, Value};

/// How many sigmas wide [`Array::gaussian_filter`]'s kernel is (scipy's default).
const GAUSSIAN_TRUNCATE: f64 = 4.0;

/// How [`Array::map_overlap`] makes up the halo beyond the array's edges.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Boundary {
    /// Mirror including the edge element (`d c b a | a b c d`), as scipy's "reflect"
    /// (NumPy's "symmetric").
    Reflect,
    /// Repeat the edge element (`a a a a | a b c d`).
    Nearest,
    /// A constant value (converted to the array's dtype).
    Constant(f64),
    /// No halo at the array's edges: blocks there are extended on their inner sides
    /// only, so the function sees a smaller block (Dask's `boundary="none"`).
    None,
}

impl Boundary {
    /// The pad mode filling the halo of an array of `dtype`, if any.
    fn pad_mode(self, dtype: DType) -> Option<PadMode> {
        match self {
            Boundary::Reflect => Some(PadMode::Reflect),
            Boundary::Nearest => Some(PadMode::Nearest),
            Boundary::Constant(v) => Some(PadMode::Constant(Scalar::F64(v).cast(dtype))),
            Boundary::None => None,
        }
    }
}

/// The task op running `f` on one block, checking that it keeps the block's shape and
/// converting its result to `dtype`.
fn native_op(name: &str, dtype: DType, f: impl Fn(&Chunk) -> Result<Chunk> + Send + Sync + 'static) -> Op {
    let label: Arc<str> = name.into();
    let fn_name = label.clone();
    Op::Native(NativeFn::new(fn_name, true, move |args: &[&Value]| {
        let [arg] = args else {
            return Err(Error::invalid(&*label, format!("expected one block, got {} arguments", args.len())));
        };
        let input = arg.as_chunk()?;
        let output = f(input)?;
        if output.shape() != input.shape() {
            return Err(Error::invalid(
                &*label,
                format!(
                    "the function returned a block of shape {:?} for an input block of shape {:?}; it must keep \
                     the block's shape",
                    output.shape(),
                    input.shape()
                ),
            ));
        }
        Ok(Value::Chunk(output.into_dtype(dtype)))
    }))
}

/// Chunks of one axis in which every block is at least `depth` long: short blocks are
/// merged into the next one (the last into the previous). An axis shorter than `depth`
/// becomes one block.
fn merge_short_blocks(chunks: &[u64], depth: u64) -> Vec<u64> {
    let mut out: Vec<u64> = Vec::with_capacity(chunks.len());
    let mut pending = 0;
    for &c in chunks {
        pending += c;
        if pending >= depth {
            out.push(pending);
            pending = 0;
        }
    }
    match out.last_mut() {
        Some(last) => *last += pending,
        None => out.push(pending),
    }
    out
}

/// The shape and chunks of an array whose block `b` along axis `a` grew by
/// `widths(a, b)` (before, after).
fn widened(chunks: &[Vec<u64>], widths: impl Fn(usize, usize) -> (u64, u64)) -> (Vec<u64>, Vec<Vec<u64>>) {
    let chunks: Vec<Vec<u64>> = chunks
        .iter()
        .enumerate()
        .map(|(a, lengths)| {
            lengths
                .iter()
                .enumerate()
                .map(|(b, &c)| {
                    let (before, after) = widths(a, b);
                    c + before + after
                })
                .collect()
        })
        .collect();
    (chunks.iter().map(|c| c.iter().sum()).collect(), chunks)
}

/// Where the halo of each block comes from: `depth` elements per axis from each
/// neighbour, none beyond the array's edges.
struct Halo<'a> {
    depth: &'a [u64],
    /// The blocks' lengths along each axis.
    chunks: &'a [Vec<u64>],
}

impl Halo<'_> {
    /// The halo widths (before, after) of block `b` along axis `a` that its neighbours
    /// supply.
    fn widths(&self, a: usize, b: usize) -> (u64, u64) {
        let d = self.depth[a];
        (if b > 0 { d } else { 0 }, if b + 1 < self.chunks[a].len() { d } else { 0 })
    }
}

impl Array {
    /// Applies the Rust function `f` to every block (Dask's `map_blocks`), giving an
    /// array of the same shape and chunks with element type `dtype`.
    ///
    /// `f` must return a block of its input's shape (a wrong shape is reported when
    /// the array is computed); its result is converted to `dtype` if needed. `name`
    /// names the tasks. The function lives in this process, so the array computes on
    /// the local engine only.
    pub fn map_blocks(
        &self,
        name: &str,
        dtype: DType,
        f: impl Fn(&Chunk) -> Result<Chunk> + Send + Sync + 'static,
    ) -> Result<Array> {
        let op = native_op(name, dtype, f);
        Array::blockwise_new(name, &[self], self.shape.clone(), self.chunks.clone(), dtype, |ix| {
            Ok(Task::new(op.clone(), vec![self.key(ix)]))
        })
    }

    /// Applies `f` to every block extended by `depth[axis]` elements of its neighbours
    /// along each axis, then trims the extension off the result (Dask's
    /// `map_overlap`; see the module docs).
    ///
    /// Beyond the array's edges the halo follows `boundary`. `f` must return a block of
    /// its (extended) input's shape; its result is converted to `dtype`. Blocks shorter
    /// than a depth are merged with their neighbours first, so the result may be
    /// chunked more coarsely than `self`. Local engine only, like
    /// [`Array::map_blocks`].
    pub fn map_overlap(
        &self,
        name: &str,
        depth: &[u64],
        boundary: Boundary,
        dtype: DType,
        f: impl Fn(&Chunk) -> Result<Chunk> + Send + Sync + 'static,
    ) -> Result<Array> {
        self.overlap_map(native_op(name, dtype, f), depth, boundary, dtype)
    }

    /// Runs the one-argument, shape-preserving `op` over every block extended by a halo
    /// of `depth` elements per axis (padded at the array's edges per `boundary`), then
    /// trims the halo off; the result has element type `dtype`.
    pub(crate) fn overlap_map(&self, op: Op, depth: &[u64], boundary: Boundary, dtype: DType) -> Result<Array> {
        let label = op.name();
        let ndim = self.ndim();
        if depth.len() != ndim {
            return Err(Error::invalid(
                &label,
                format!(
                    "got {} depths {depth:?} for array {} with {ndim} axes (shape {:?})",
                    depth.len(),
                    self.name(),
                    self.shape()
                ),
            ));
        }
        if depth.iter().all(|&d| d == 0) || self.is_empty() {
            // No halo needed: the op runs block by block.
            return Array::blockwise_new(&label, &[self], self.shape.clone(), self.chunks.clone(), dtype, |ix| {
                Ok(Task::new(op.clone(), vec![self.key(ix)]))
            });
        }
        let source = self.with_blocks_at_least(&label, depth)?;
        let source = &source;
        let halo = Halo { depth, chunks: &source.chunks };
        let chunks = &source.chunks;
        let mode = boundary.pad_mode(self.dtype);
        // Widths made up beyond the array's edges (none without padding).
        let padded = |a: usize, b: usize| -> (u64, u64) {
            let d = if mode.is_some() { depth[a] } else { 0 };
            (if b == 0 { d } else { 0 }, if b + 1 == chunks[a].len() { d } else { 0 })
        };

        // Layer 1: each block with its neighbours' halo.
        let assembled = source.with_halo(&halo)?;

        // Layer 2: the halo beyond the array's edges.
        let input = match mode {
            None => assembled,
            Some(mode) => {
                let (shape, pad_chunks) = widened(&assembled.chunks, padded);
                let assembled = &assembled;
                Array::blockwise_new("pad", &[assembled], shape, pad_chunks, self.dtype, |ix| {
                    let widths: Vec<(usize, usize)> = (0..ndim)
                        .map(|a| {
                            let (l, r) = padded(a, ix[a]);
                            (l as usize, r as usize)
                        })
                        .collect();
                    let op = if widths.iter().all(|&w| w == (0, 0)) {
                        Op::Alias
                    } else {
                        Op::Array(ArrayOp::Pad { widths, mode })
                    };
                    Ok(Task::new(op, vec![assembled.key(ix)]))
                })?
            }
        };

        // The part of extended block `ix` that is the block itself.
        let window = |ix: &[usize]| -> Vec<std::ops::Range<usize>> {
            (0..ndim)
                .map(|a| {
                    let start = (halo.widths(a, ix[a]).0 + padded(a, ix[a]).0) as usize;
                    start..start + chunks[a][ix[a]] as usize
                })
                .collect()
        };
        let input = &input;

        // Layer 3: the op on every extended block. A WASM task keeps only the block's
        // window of its result, so it needs no trimming afterwards.
        if let Op::Wasm(task) = &op {
            return Array::blockwise_new(&label, &[input], source.shape.clone(), chunks.clone(), dtype, |ix| {
                let op = Op::Wasm(WasmTask { window: Some(window(ix)), ..task.clone() });
                Ok(Task::new(op, vec![input.key(ix)]))
            });
        }
        let mapped = Array::blockwise_new(
            &format!("{label}-halo"),
            &[input],
            input.shape.clone(),
            input.chunks.clone(),
            dtype,
            |ix| Ok(Task::new(op.clone(), vec![input.key(ix)])),
        )?;

        // Layer 4: trim the halo off.
        let mapped = &mapped;
        Array::blockwise_new(&label, &[mapped], source.shape.clone(), chunks.clone(), dtype, |ix| {
            let slices = window(ix).into_iter().map(|w| AxisSlice { start: w.start, stop: w.end, step: 1 }).collect();
            Ok(Task::new(Op::Array(ArrayOp::Slice { slices, drop_axes: vec![] }), vec![mapped.key(ix)]))
        })
    }

    /// Every block extended by its neighbours' halo (one [`ArrayOp::Assemble`] task per
    /// block gathering up to 3^k pieces, corners included); blocks at the array's
    /// edges get no halo on their outer sides.
    fn with_halo(&self, halo: &Halo) -> Result<Array> {
        let ndim = self.ndim();
        let chunks = &self.chunks;
        let (shape, halo_chunks) = widened(chunks, |a, b| halo.widths(a, b));
        Array::blockwise_new("overlap", &[self], shape, halo_chunks, self.dtype, |ix| {
            // Per axis: (neighbour offset, range cut out of that neighbour).
            let axes: Vec<Vec<(usize, (usize, usize))>> = (0..ndim)
                .map(|a| {
                    let (b, c) = (ix[a], chunks[a][ix[a]] as usize);
                    let (l, r) = halo.widths(a, b);
                    let mut parts = Vec::with_capacity(3);
                    if l > 0 {
                        let prev = chunks[a][b - 1] as usize;
                        parts.push((b - 1, (prev - l as usize, prev)));
                    }
                    parts.push((b, (0, c)));
                    if r > 0 {
                        parts.push((b + 1, (0, r as usize)));
                    }
                    parts
                })
                .collect();
            let grid: Vec<usize> = axes.iter().map(Vec::len).collect();
            if grid.iter().all(|&g| g == 1) {
                return Ok(Task::new(Op::Alias, vec![self.key(ix)]));
            }
            let mut deps: Vec<Key> = Vec::with_capacity(grid.iter().product());
            let mut pieces = Vec::with_capacity(deps.capacity());
            for g in super::block_indices(&grid) {
                let cell: Vec<&(usize, (usize, usize))> = g.iter().zip(&axes).map(|(&i, parts)| &parts[i]).collect();
                deps.push(self.key(&cell.iter().map(|p| p.0).collect::<Vec<_>>()));
                pieces.push(cell.iter().map(|p| p.1).collect());
            }
            Ok(Task::new(Op::Array(ArrayOp::Assemble { grid, pieces }), deps))
        })
    }

    /// The array rechunked so that along every axis with a non-zero depth and more
    /// than one block, every block is at least that deep (itself when it already is).
    fn with_blocks_at_least(&self, op: &str, depth: &[u64]) -> Result<Array> {
        let short = |a: usize| depth[a] > 0 && self.chunks[a].len() > 1 && self.chunks[a].iter().any(|&c| c < depth[a]);
        if !(0..self.ndim()).any(short) {
            return Ok(self.clone());
        }
        let chunks: Vec<Vec<u64>> = (0..self.ndim())
            .map(|a| if short(a) { merge_short_blocks(&self.chunks[a], depth[a]) } else { self.chunks[a].clone() })
            .collect();
        self.rechunk_to(chunks).map_err(|e| {
            Error::invalid(op, format!("array {} has blocks shorter than the depth {depth:?}: {e}", self.name()))
        })
    }

    /// Gaussian filter with one standard deviation per axis, equal to
    /// `scipy.ndimage.gaussian_filter(x, sigma, mode="reflect")` on the whole array.
    ///
    /// The kernel extends 4 sigmas on each side, so each block gets a halo of
    /// `int(4 * sigma + 0.5)` elements, reflected at the array's edges. float64 input
    /// gives float64, anything else float32.
    pub fn gaussian_filter(&self, sigma: &[f64]) -> Result<Array> {
        const OP: &str = "gaussian_filter";
        if sigma.len() != self.ndim() {
            return Err(Error::invalid(
                OP,
                format!(
                    "got {} sigmas {sigma:?} for array {} with {} axes (shape {:?})",
                    sigma.len(),
                    self.name(),
                    self.ndim(),
                    self.shape()
                ),
            ));
        }
        if let Some(s) = sigma.iter().find(|s| !(**s >= 0.0 && s.is_finite())) {
            return Err(Error::invalid(
                OP,
                format!("sigma must be finite and non-negative, got {s} in {sigma:?} (array {})", self.name()),
            ));
        }
        let depth: Vec<u64> = sigma.iter().map(|&s| (GAUSSIAN_TRUNCATE * s + 0.5) as u64).collect();
        let dtype = if self.dtype == DType::F64 { DType::F64 } else { DType::F32 };
        let op =
            |window| Op::Array(ArrayOp::GaussianFilter { sigma: sigma.to_vec(), truncate: GAUSSIAN_TRUNCATE, window });
        if depth.iter().all(|&d| d == 0) || self.is_empty() {
            return Array::blockwise_new("gaussian", &[self], self.shape.clone(), self.chunks.clone(), dtype, |ix| {
                Ok(Task::new(op(None), vec![self.key(ix)]))
            });
        }
        // The kernel's radius is the depth, and the filter reflects at the extended
        // block's own edges: inside the array they are a full halo away, at its edges
        // they are the array's. So no padding layer is needed, and the filter keeps
        // only the block's own window instead of trimming afterwards.
        let source = self.with_blocks_at_least(OP, &depth)?;
        let halo = Halo { depth: &depth, chunks: &source.chunks };
        let extended = source.with_halo(&halo)?;
        let extended = &extended;
        Array::blockwise_new("gaussian", &[extended], source.shape.clone(), source.chunks.clone(), dtype, |ix| {
            let window = (0..self.ndim())
                .map(|a| {
                    let start = halo.widths(a, ix[a]).0 as usize;
                    start..start + source.chunks[a][ix[a]] as usize
                })
                .collect();
            Ok(Task::new(op(Some(window)), vec![extended.key(ix)]))
        })
    }

    /// Otsu's threshold of the whole array from a histogram of `bins` bins, as
    /// scikit-image's `threshold_otsu(x, nbins=bins)`, on [`Client::current`]; see
    /// [`Array::threshold_otsu_with`].
    #[cfg(feature = "local")]
    pub fn threshold_otsu(&self, bins: usize) -> Result<Array> {
        self.threshold_otsu_with(&Client::current(), bins)
    }

    /// Otsu's threshold of the whole array, as a lazy 0-d float64 array.
    ///
    /// The histogram range is the array's minimum and maximum, which are computed now
    /// on `client` (one pass over the data); the rest is
    /// [`Array::threshold_otsu_in_range`]. To save that pass, compute the minimum and
    /// maximum together with other results and call `threshold_otsu_in_range`.
    pub fn threshold_otsu_with(&self, client: &Client, bins: usize) -> Result<Array> {
        self.check_otsu_input(bins)?;
        let (lo, hi) = (self.min(Axes::All)?, self.max(Axes::All)?);
        let values = compute_all(client, &[&lo, &hi])?;
        let mut bounds = values.iter().map(|v| {
            v.first()
                .map(Scalar::to_f64)
                .ok_or_else(|| Error::Engine(format!("the minimum or maximum of {} is empty", self.name())))
        });
        let (Some(min), Some(max)) = (bounds.next().transpose()?, bounds.next().transpose()?) else {
            return Err(Error::Engine(format!("the minimum and maximum of {} were not returned", self.name())));
        };
        self.threshold_otsu_in_range(bins, min, max)
    }

    /// Otsu's threshold of the whole array, whose minimum and maximum are `min` and
    /// `max`, as a lazy 0-d float64 array.
    ///
    /// The histogram has `bins` bins over `min..=max`; the threshold is the centre of
    /// the bin maximising the between-class variance. Integer (and boolean) arrays
    /// holding at most `bins` distinct values between their minimum and maximum get
    /// one bin per value, as scikit-image counts integer images, so the threshold is
    /// one of those values. `min == max` gives that value; non-finite bounds are an
    /// error.
    pub fn threshold_otsu_in_range(&self, bins: usize, min: f64, max: f64) -> Result<Array> {
        const OP: &str = "threshold_otsu";
        self.check_otsu_input(bins)?;
        if !(min.is_finite() && max.is_finite() && min <= max) {
            return Err(Error::invalid(
                OP,
                format!(
                    "array {} has non-finite or inverted bounds (minimum {min}, maximum {max}); they must be finite with minimum <= maximum",
                    self.name()
                ),
            ));
        }
        if min == max {
            let value = Arc::new(Value::Chunk(Chunk::scalar(Scalar::F64(min))));
            return Array::blockwise_new("otsu", &[], vec![], vec![], DType::F64, |_| {
                Ok(Task::new(Op::Literal(value.clone()), vec![]))
            });
        }
        // Integers spanning at most `bins` values get one bin per value, centred on it,
        // as scikit-image's integer histogram: the threshold is then one of the values.
        let span = max - min + 1.0;
        let (bins, range) = if !self.dtype.is_float() && span <= bins as f64 {
            (span as usize, (min - 0.5, max + 0.5))
        } else {
            (bins, (min, max))
        };
        let (counts, _) = self.histogram(bins, range)?;
        let counts = &counts;
        Array::blockwise_new("otsu", &[counts], vec![], vec![], DType::F64, |_| {
            let op = Op::Array(ArrayOp::OtsuThreshold { range });
            Ok(Task::new(op, vec![counts.key(&[0])]))
        })
    }

    /// Rejects zero bins and empty arrays, naming the array.
    fn check_otsu_input(&self, bins: usize) -> Result<()> {
        const OP: &str = "threshold_otsu";
        if bins == 0 {
            return Err(Error::invalid(OP, format!("bins must be at least 1, got 0 (array {})", self.name())));
        }
        if self.is_empty() {
            return Err(Error::invalid(
                OP,
                format!("array {} of shape {:?} has no elements", self.name(), self.shape()),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_blocks_merge_into_neighbours() {
        assert_eq!(merge_short_blocks(&[4, 4, 1], 2), vec![4, 5]);
        assert_eq!(merge_short_blocks(&[1, 1, 1, 1, 1], 2), vec![2, 3]);
        assert_eq!(merge_short_blocks(&[3, 0, 3], 1), vec![3, 3]);
        assert_eq!(merge_short_blocks(&[1, 2], 5), vec![3]);
        assert_eq!(merge_short_blocks(&[5, 5], 5), vec![5, 5]);
    }
}
