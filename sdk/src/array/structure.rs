//! Changing an array's structure without touching its values: transposing axes, basic
//! slicing, joining arrays end to end (`concatenate`) or along a new axis (`stack`).
//!
//! These operations work on blocks, as in Dask: a transpose transposes every block and
//! permutes the grid; a slice cuts each input block that holds selected elements into
//! one output block (so the output's chunks follow the input's); a concatenation reuses
//! the inputs' blocks under new keys ([`Op::Alias`], no copy). Nothing is computed
//! here — each function adds one layer of tasks and checks its arguments on the way, so
//! a bad axis or an out-of-range index is reported when the graph is built.

use super::chunks::{offsets, unify};
use super::rechunk::unify_chunks;
use super::{Array, block_indices, key_index, layer_name};
use std::ops::{Range, RangeFrom, RangeFull, RangeTo};
use tessera_core::op::{ArrayOp, AxisSlice};
use tessera_core::{DType, Error, Key, Op, Result, Task};

/// How [`Array::slice`] selects along one axis, like one entry of a NumPy index tuple.
///
/// Besides the variants, [`SliceArg::index`], [`SliceArg::range`] and
/// [`SliceArg::step`] build arguments, and Rust ranges convert with `into()`:
/// `(2..5).into()` is `2:5`, `(3..).into()` is `3:`, `(..).into()` is `:`, and an
/// `i64` is an integer index. Prefer `SliceArg::range(1, -1)` to `(1..-1).into()` for
/// bounds counted from the end: clippy rejects Rust ranges that look empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SliceArg {
    /// The whole axis (`:`).
    Full,
    /// One element (`i`); the axis is removed. Negative values count from the end.
    Index(i64),
    /// Every `step`th element from `start` up to (not including) `stop`, as NumPy's
    /// `start:stop:step`. Missing bounds mean the start or end of the axis in the
    /// direction of `step`; negative bounds count from the end; `step` may be negative
    /// (walking backwards) but not zero.
    Range {
        /// First index (default: the first element in the direction of `step`).
        start: Option<i64>,
        /// End index, excluded (default: past the last element in the direction of `step`).
        stop: Option<i64>,
        /// Stride, never zero.
        step: i64,
    },
}

impl SliceArg {
    /// The integer index `i` (NumPy `i`).
    pub fn index(i: i64) -> SliceArg {
        SliceArg::Index(i)
    }

    /// Elements `start` up to `stop` (NumPy `start:stop`).
    pub fn range(start: i64, stop: i64) -> SliceArg {
        SliceArg::Range { start: Some(start), stop: Some(stop), step: 1 }
    }

    /// NumPy `start:stop:step`; pass `None` for a missing bound, e.g.
    /// `SliceArg::step(None, None, -1)` is `::-1`.
    pub fn step(start: impl Into<Option<i64>>, stop: impl Into<Option<i64>>, step: i64) -> SliceArg {
        SliceArg::Range { start: start.into(), stop: stop.into(), step }
    }
}

impl From<i64> for SliceArg {
    fn from(i: i64) -> Self {
        SliceArg::Index(i)
    }
}

impl From<Range<i64>> for SliceArg {
    fn from(r: Range<i64>) -> Self {
        SliceArg::range(r.start, r.end)
    }
}

impl From<RangeFrom<i64>> for SliceArg {
    fn from(r: RangeFrom<i64>) -> Self {
        SliceArg::step(r.start, None, 1)
    }
}

impl From<RangeTo<i64>> for SliceArg {
    fn from(r: RangeTo<i64>) -> Self {
        SliceArg::step(None, r.end, 1)
    }
}

impl From<RangeFull> for SliceArg {
    fn from(_: RangeFull) -> Self {
        SliceArg::Full
    }
}

/// What one axis of a slice selects: `count` global indices `first`, `first ± stride`, …
/// (downwards when `backwards`).
struct Selection {
    first: u64,
    stride: u64,
    backwards: bool,
    count: u64,
    /// True for an integer index: the axis disappears from the result.
    drop: bool,
}

impl Selection {
    /// Normalises `arg` for axis `axis` of length `len`, refusing out-of-range values.
    fn new(array: &Array, axis: usize, arg: SliceArg) -> Result<Selection> {
        let len = array.shape[axis];
        let n = len as i64;
        let out_of_range = |what: &str, value: i64, allowed: &str| {
            Error::invalid(
                "slice",
                format!(
                    "{what} {value} is out of range for axis {axis} of array {} (length {len}, shape {:?}); \
                     allowed values are {allowed}",
                    array.name(),
                    array.shape()
                ),
            )
        };
        match arg {
            SliceArg::Full => Ok(Selection { first: 0, stride: 1, backwards: false, count: len, drop: false }),
            SliceArg::Index(i) => {
                if i < -n || i >= n {
                    let allowed =
                        if n == 0 { "none (the axis is empty)".to_string() } else { format!("-{n} ..= {}", n - 1) };
                    return Err(out_of_range("index", i, &allowed));
                }
                let i = if i < 0 { i + n } else { i };
                Ok(Selection { first: i as u64, stride: 1, backwards: false, count: 1, drop: true })
            }
            SliceArg::Range { start, stop, step } => {
                if step == 0 {
                    return Err(Error::invalid(
                        "slice",
                        format!(
                            "slice step 0 given for axis {axis} of array {}: the step cannot be zero",
                            array.name()
                        ),
                    ));
                }
                for bound in [start, stop].into_iter().flatten() {
                    if bound < -n || bound > n {
                        return Err(out_of_range("slice bound", bound, &format!("-{n} ..= {n}")));
                    }
                }
                // Both bounds now lie in -n ..= n; map them to 0 ..= n.
                let norm = |b: i64| if b < 0 { b + n } else { b };
                let stride = step.unsigned_abs();
                if step > 0 {
                    let first = start.map_or(0, norm);
                    let end = stop.map_or(n, norm);
                    let count = if end > first { ((end - first) as u64).div_ceil(stride) } else { 0 };
                    Ok(Selection { first: first as u64, stride, backwards: false, count, drop: false })
                } else {
                    // Walking down from `first` (at most the last element) to just above `end`.
                    let first = start.map_or(n - 1, |s| norm(s).min(n - 1));
                    let end = stop.map_or(-1, norm);
                    let count = if first > end { ((first - end) as u64).div_ceil(stride) } else { 0 };
                    Ok(Selection { first: first.max(0) as u64, stride, backwards: true, count, drop: false })
                }
            }
        }
    }

    /// The global index of the `k`th selected element.
    fn at(&self, k: u64) -> u64 {
        if self.backwards { self.first - k * self.stride } else { self.first + k * self.stride }
    }

    /// The range `k_lo .. k_hi` of selected elements that fall in `lo .. hi`.
    fn within(&self, lo: u64, hi: u64) -> (u64, u64) {
        let (k_lo, k_hi) = if self.backwards {
            // first - k * stride in lo .. hi  <=>  (first - hi) / stride < k <= (first - lo) / stride.
            let k_lo = if self.first < hi { 0 } else { (self.first - hi) / self.stride + 1 };
            let k_hi = if self.first < lo { 0 } else { (self.first - lo) / self.stride + 1 };
            (k_lo, k_hi)
        } else {
            let k_lo = lo.saturating_sub(self.first).div_ceil(self.stride);
            let k_hi = hi.saturating_sub(self.first).div_ceil(self.stride);
            (k_lo, k_hi)
        };
        (k_lo.min(self.count), k_hi.min(self.count))
    }

    /// One piece per input block holding selected elements, in output order.
    fn plan(&self, chunks: &[u64]) -> Vec<AxisPiece> {
        if self.count == 0 {
            return vec![AxisPiece {
                block: 0,
                slice: AxisSlice { start: 0, stop: 0, step: 1 },
                len: 0,
                whole: chunks[0] == 0,
            }];
        }
        let starts = offsets(chunks);
        let mut order: Vec<usize> = (0..chunks.len()).collect();
        if self.backwards {
            order.reverse();
        }
        let mut pieces = Vec::new();
        for block in order {
            let (lo, block_len) = (starts[block], chunks[block]);
            let (k_lo, k_hi) = self.within(lo, lo + block_len);
            if k_hi <= k_lo {
                continue;
            }
            let len = k_hi - k_lo;
            let (a, b) = (self.at(k_lo) - lo, self.at(k_hi - 1) - lo);
            let (low, high) = if self.backwards { (b, a) } else { (a, b) };
            // A single element needs no stride; otherwise the stride is below the block
            // length, so it fits in an isize.
            let step = match (len, self.backwards) {
                (1, _) => 1,
                (_, false) => self.stride as isize,
                (_, true) => -(self.stride as isize),
            };
            let slice = AxisSlice { start: low as usize, stop: high as usize + 1, step };
            let whole = step == 1 && len == block_len;
            pieces.push(AxisPiece { block, slice, len, whole });
        }
        pieces
    }
}

/// The part of one input block that one output block takes along one axis.
struct AxisPiece {
    block: usize,
    slice: AxisSlice,
    len: u64,
    /// True when the piece is the whole input block, in order.
    whole: bool,
}

/// The NumPy promotion of the arrays' dtypes.
fn common_dtype(arrays: &[&Array]) -> DType {
    arrays.iter().map(|a| a.dtype).reduce(DType::promote).unwrap_or(DType::F64)
}

/// Joins arrays end to end along an existing `axis`, as `numpy.concatenate`.
///
/// The arrays need the same number of axes and the same length along every other axis.
/// Their dtypes are promoted to a common type (NumPy rules); their chunks along the
/// other axes are unified by rechunking to the common refinement. The result's blocks
/// are the inputs' blocks, reused without copying.
pub fn concatenate(arrays: &[&Array], axis: usize) -> Result<Array> {
    let Some(first) = arrays.first() else {
        return Err(Error::invalid("concatenate", "need at least one array to concatenate"));
    };
    let ndim = first.ndim();
    for a in arrays {
        if a.ndim() != ndim {
            return Err(Error::invalid(
                "concatenate",
                format!(
                    "array {} has {} axes (shape {:?}) but array {} has {ndim} (shape {:?}); \
                     arrays to concatenate need the same number of axes",
                    a.name(),
                    a.ndim(),
                    a.shape,
                    first.name(),
                    first.shape
                ),
            ));
        }
    }
    if axis >= ndim {
        return Err(Error::invalid(
            "concatenate",
            format!(
                "axis {axis} is out of range for array {} with {ndim} axes (shape {:?})",
                first.name(),
                first.shape
            ),
        ));
    }
    for a in arrays {
        if let Some(d) = (0..ndim).find(|&d| d != axis && a.shape[d] != first.shape[d]) {
            return Err(Error::invalid(
                "concatenate",
                format!(
                    "array {} has shape {:?} but array {} has shape {:?}: they differ along axis {d}, \
                     and may differ only along the concatenation axis {axis}",
                    a.name(),
                    a.shape,
                    first.name(),
                    first.shape
                ),
            ));
        }
    }
    // Arrays with nothing along `axis` contribute no element (and would leave an empty
    // block in the middle of the result); keep one if all are empty.
    let mut parts: Vec<&Array> = arrays.iter().copied().filter(|a| a.shape[axis] > 0).collect();
    if parts.is_empty() {
        parts.push(first);
    }
    let dtype = common_dtype(arrays);
    let mut chunks: Vec<Vec<u64>> = parts[0].chunks.clone();
    for (d, c) in chunks.iter_mut().enumerate() {
        if d != axis {
            *c = parts.iter().fold(c.clone(), |acc, a| unify(&acc, &a.chunks[d]));
        }
    }
    let parts: Vec<Array> = parts
        .into_iter()
        .map(|a| {
            let mut target = chunks.clone();
            target[axis] = a.chunks[axis].clone();
            a.rechunk_to(target)?.astype(dtype)
        })
        .collect::<Result<_>>()?;
    if let [single] = parts.as_slice() {
        return Ok(single.clone());
    }
    // Output block `i` along `axis` is block `local[i]` of part `owner[i]`.
    let mut owner = Vec::new();
    let mut local = Vec::new();
    for (p, a) in parts.iter().enumerate() {
        owner.extend(std::iter::repeat_n(p, a.chunks[axis].len()));
        local.extend(0..a.chunks[axis].len());
    }
    chunks[axis] = parts.iter().flat_map(|a| a.chunks[axis].iter().copied()).collect();
    let mut shape = first.shape.clone();
    shape[axis] = chunks[axis].iter().sum();
    let inputs: Vec<&Array> = parts.iter().collect();
    Array::blockwise_new("concatenate", &inputs, shape, chunks, dtype, |ix| {
        let mut src = ix.to_vec();
        src[axis] = local[ix[axis]];
        Ok(Task::new(Op::Alias, vec![parts[owner[ix[axis]]].key(&src)]))
    })
}

/// Joins arrays of one shape along a new axis inserted at `axis`, as `numpy.stack`.
///
/// Dtypes are promoted to a common type and chunks unified as for [`concatenate`]; the
/// new axis has one block per input array.
pub fn stack(arrays: &[&Array], axis: usize) -> Result<Array> {
    let Some(first) = arrays.first() else {
        return Err(Error::invalid("stack", "need at least one array to stack"));
    };
    if let Some(a) = arrays.iter().find(|a| a.shape != first.shape) {
        return Err(Error::invalid(
            "stack",
            format!(
                "array {} has shape {:?} but array {} has shape {:?}; arrays to stack need the same shape",
                a.name(),
                a.shape,
                first.name(),
                first.shape
            ),
        ));
    }
    if axis > first.ndim() {
        return Err(Error::invalid(
            "stack",
            format!(
                "axis {axis} is out of range for stacking arrays with {} axes (shape {:?}, array {}): \
                 the new axis goes at 0 ..= {}",
                first.ndim(),
                first.shape,
                first.name(),
                first.ndim()
            ),
        ));
    }
    let dtype = common_dtype(arrays);
    let (parts, mut chunks) = unify_chunks("stack", arrays)?;
    let parts: Vec<Array> = parts.iter().map(|a| a.astype(dtype)).collect::<Result<_>>()?;
    chunks.insert(axis, vec![1; parts.len()]);
    let mut shape = first.shape.clone();
    shape.insert(axis, parts.len() as u64);
    let inputs: Vec<&Array> = parts.iter().collect();
    Array::blockwise_new("stack", &inputs, shape, chunks, dtype, |ix| {
        let mut src = ix.to_vec();
        let which = src.remove(axis);
        Ok(Task::new(Op::Array(ArrayOp::ExpandDims { axis }), vec![parts[which].key(&src)]))
    })
}

impl Array {
    /// Permutes the axes: axis `i` of the result is axis `axes[i]` of `self`; `None`
    /// reverses them (NumPy's `transpose`). Each block is transposed and the grid of
    /// blocks permuted the same way.
    pub fn transpose(&self, axes: Option<&[usize]>) -> Result<Array> {
        let ndim = self.ndim();
        let axes: Vec<usize> = match axes {
            Some(axes) => axes.to_vec(),
            None => (0..ndim).rev().collect(),
        };
        let mut seen = vec![false; ndim];
        let is_permutation =
            axes.len() == ndim && axes.iter().all(|&a| a < ndim && !std::mem::replace(&mut seen[a], true));
        if !is_permutation {
            return Err(Error::invalid(
                "transpose",
                format!(
                    "axes {axes:?} are not a permutation of the {ndim} axes 0..{ndim} of array {} (shape {:?})",
                    self.name(),
                    self.shape
                ),
            ));
        }
        if axes.iter().enumerate().all(|(i, &a)| i == a) {
            return Ok(self.clone());
        }
        let shape = axes.iter().map(|&a| self.shape[a]).collect();
        let chunks = axes.iter().map(|&a| self.chunks[a].clone()).collect();
        Array::blockwise_new("transpose", &[self], shape, chunks, self.dtype, |ix| {
            let mut src = vec![0; ndim];
            for (i, &a) in axes.iter().enumerate() {
                src[a] = ix[i];
            }
            Ok(Task::new(Op::Array(ArrayOp::Transpose { axes: axes.clone() }), vec![self.key(&src)]))
        })
    }

    /// The array with its axes reversed (NumPy's `.T`).
    pub fn t(&self) -> Result<Array> {
        self.transpose(None)
    }

    /// Basic indexing, as NumPy's `x[args]`: one [`SliceArg`] per leading axis (missing
    /// trailing ones mean the whole axis). An integer index removes its axis; ranges
    /// keep it, possibly with a negative step or no elements at all (a zero-length axis
    /// with one empty block).
    ///
    /// Stricter than NumPy: a range bound outside `-len ..= len` is an error rather than
    /// being clipped, as is an integer index outside `-len .. len` (as in NumPy). Use a
    /// missing bound (`None`) to run to the end of an axis.
    ///
    /// As in Dask, every input block holding selected elements gives one output block
    /// (in reverse order for a negative step), cut out by one task; a block selected
    /// whole is reused without copying.
    pub fn slice(&self, args: &[SliceArg]) -> Result<Array> {
        let ndim = self.ndim();
        if args.len() > ndim {
            return Err(Error::invalid(
                "slice",
                format!(
                    "{} indices given for array {} with {ndim} axes (shape {:?})",
                    args.len(),
                    self.name(),
                    self.shape
                ),
            ));
        }
        let selections = (0..ndim)
            .map(|axis| Selection::new(self, axis, args.get(axis).copied().unwrap_or(SliceArg::Full)))
            .collect::<Result<Vec<_>>>()?;
        if selections
            .iter()
            .zip(&self.shape)
            .all(|(s, &len)| !s.drop && !s.backwards && s.stride == 1 && s.count == len)
        {
            return Ok(self.clone());
        }
        let plans: Vec<Vec<AxisPiece>> = selections.iter().zip(&self.chunks).map(|(s, c)| s.plan(c)).collect();
        let drop_axes: Vec<usize> = (0..ndim).filter(|&a| selections[a].drop).collect();
        let kept: Vec<usize> = (0..ndim).filter(|&a| !selections[a].drop).collect();
        let chunks: Vec<Vec<u64>> = kept.iter().map(|&a| plans[a].iter().map(|p| p.len).collect()).collect();
        let shape: Vec<u64> = kept.iter().map(|&a| selections[a].count).collect();
        let name = layer_name("getitem");
        let grid: Vec<usize> = plans.iter().map(Vec::len).collect();
        let mut tasks = Vec::with_capacity(grid.iter().product());
        for ix in block_indices(&grid) {
            let pieces: Vec<&AxisPiece> = ix.iter().zip(&plans).map(|(&i, plan)| &plan[i]).collect();
            let src: Vec<usize> = pieces.iter().map(|p| p.block).collect();
            let op = if drop_axes.is_empty() && pieces.iter().all(|p| p.whole) {
                Op::Alias
            } else {
                let slices = pieces.iter().map(|p| p.slice).collect();
                Op::Array(ArrayOp::Slice { slices, drop_axes: drop_axes.clone() })
            };
            let out: Vec<usize> = kept.iter().map(|&a| ix[a]).collect();
            tasks.push((Key::new(name.clone(), key_index(&out)), Task::new(op, vec![self.key(&src)])));
        }
        Ok(Array::from_tasks(name, &[self], tasks, shape, chunks, self.dtype))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn select(len: u64, arg: SliceArg) -> Vec<u64> {
        let a = Array::from_tasks(
            layer_name("t"),
            &[],
            vec![],
            vec![len],
            vec![crate::array::chunks::regular(len, 3)],
            DType::F64,
        );
        let s = Selection::new(&a, 0, arg).unwrap();
        (0..s.count).map(|k| s.at(k)).collect()
    }

    #[test]
    fn selections_follow_numpy() {
        assert_eq!(select(5, SliceArg::step(None, None, -1)), vec![4, 3, 2, 1, 0]);
        assert_eq!(select(5, SliceArg::step(5, None, -2)), vec![4, 2, 0]);
        assert_eq!(select(5, SliceArg::step(3, -5, -1)), vec![3, 2, 1]);
        assert_eq!(select(5, SliceArg::step(-5, None, -1)), vec![0]);
        assert_eq!(select(5, SliceArg::range(1, -1)), vec![1, 2, 3]);
        assert_eq!(select(5, SliceArg::step(None, None, 7)), vec![0]);
        assert_eq!(select(0, SliceArg::step(None, None, -1)), Vec::<u64>::new());
        assert_eq!(select(5, SliceArg::range(4, 2)), Vec::<u64>::new());
        assert_eq!(select(5, SliceArg::step(None, None, i64::MAX)), vec![0]);
        assert_eq!(select(5, SliceArg::step(None, None, i64::MIN)), vec![4]);
    }

    #[test]
    fn plans_cut_each_block_once() {
        let a = Array::from_tasks(layer_name("t"), &[], vec![], vec![10], vec![vec![4, 4, 2]], DType::F64);
        let s = Selection::new(&a, 0, SliceArg::step(8, 0, -3)).unwrap();
        let plan = s.plan(&[4, 4, 2]);
        // 8, 5, 2 from blocks 2, 1, 0.
        let got: Vec<(usize, AxisSlice, u64)> = plan.iter().map(|p| (p.block, p.slice, p.len)).collect();
        assert_eq!(
            got,
            vec![
                (2, AxisSlice { start: 0, stop: 1, step: 1 }, 1),
                (1, AxisSlice { start: 1, stop: 2, step: 1 }, 1),
                (0, AxisSlice { start: 2, stop: 3, step: 1 }, 1),
            ]
        );
        let s = Selection::new(&a, 0, SliceArg::step(None, None, -2)).unwrap();
        let got: Vec<(usize, AxisSlice)> = s.plan(&[4, 4, 2]).iter().map(|p| (p.block, p.slice)).collect();
        // 9, 7, 5, 3, 1: block 2 gives 9, block 1 gives 7 and 5, block 0 gives 3 and 1.
        assert_eq!(
            got,
            vec![
                (2, AxisSlice { start: 1, stop: 2, step: 1 }),
                (1, AxisSlice { start: 1, stop: 4, step: -2 }),
                (0, AxisSlice { start: 1, stop: 4, step: -2 }),
            ]
        );
    }
}
