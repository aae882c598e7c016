//! Reductions (`sum`, `mean`, `var`, `argmin`, …) and histograms, as tree reductions.
//!
//! A reduction never gathers the whole array in one task. As in Dask, it runs in three
//! steps:
//!
//! 1. **chunk**: every block is reduced on its own to a *partial* result
//!    ([`ArrayOp::ReduceChunk`]); the reduced axes are kept with length one, so the
//!    partials form a grid with one entry per input block along the reduced axes.
//! 2. **combine**: while a reduced axis still has more than one partial, groups of
//!    neighbouring partials along the reduced axes are merged
//!    ([`ArrayOp::ReduceCombine`]). The group size per axis comes from `split_every`
//!    (the total fan-in of one combine task, 16 by default: 4 × 4 for two reduced
//!    axes), so a reduction over `n` blocks takes `log(n) / log(split_every)` levels
//!    and no task reads more than `split_every` partials.
//! 3. **finalize**: the single partial left for each output block becomes the result
//!    ([`ArrayOp::ReduceFinalize`]), dropping the reduced axes unless `keepdims`.
//!
//! Axes that are not reduced keep their chunks, so a reduction along one axis gives
//! one independent tree per row of blocks. [`Array::histogram`] works the same way: one
//! histogram per block, then a tree of element-wise sums ([`ArrayOp::AddN`]).

use super::{Array, layer_name};
use tessera_core::op::{ArrayOp, ReduceKind};
use tessera_core::{DType, Error, Key, Op, Result, Task};

/// Total fan-in of one combine task when `split_every` is not given (Dask's default).
const DEFAULT_SPLIT_EVERY: usize = 16;

/// Fan-in of one combine task of a histogram.
const HISTOGRAM_FAN_IN: usize = 16;

/// Which axes a reduction runs over.
///
/// Built from one axis (`0`), an array or slice of axes (`[0, 2]`) or a `Vec`;
/// [`Axes::All`] reduces every axis (NumPy's `axis=None`). An empty list reduces
/// nothing (NumPy's `axis=()`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Axes {
    /// Every axis.
    All,
    /// The listed axes.
    Some(Vec<usize>),
}

impl From<usize> for Axes {
    fn from(axis: usize) -> Self {
        Axes::Some(vec![axis])
    }
}

impl<const N: usize> From<[usize; N]> for Axes {
    fn from(axes: [usize; N]) -> Self {
        Axes::Some(axes.to_vec())
    }
}

impl From<Vec<usize>> for Axes {
    fn from(axes: Vec<usize>) -> Self {
        Axes::Some(axes)
    }
}

impl From<&[usize]> for Axes {
    fn from(axes: &[usize]) -> Self {
        Axes::Some(axes.to_vec())
    }
}

/// The largest `n` with `n^k <= total`, at least 2: the per-axis group size giving a
/// total fan-in of at most `total` over `k` axes (Dask's `int(split_every ** (1 / k))`).
fn per_axis_fan_in(total: usize, k: usize) -> usize {
    if k <= 1 {
        return total.max(2);
    }
    let fits = |n: usize| (0..k).try_fold(1usize, |acc, _| acc.checked_mul(n)).is_some_and(|p| p <= total);
    // The float root is within one of the answer; the integer checks settle it.
    let mut n = ((total as f64).powf(1.0 / k as f64) as usize).max(2);
    while n > 2 && !fits(n) {
        n -= 1;
    }
    while n < total && fits(n + 1) {
        n += 1;
    }
    n
}

impl Array {
    /// Checks `axes` against the array's dimensions and returns them sorted.
    fn reduce_axes(&self, op: &str, axes: &Axes) -> Result<Vec<usize>> {
        let ndim = self.ndim();
        let list = match axes {
            Axes::All => return Ok((0..ndim).collect()),
            Axes::Some(list) => list,
        };
        let mut sorted = list.clone();
        sorted.sort_unstable();
        if let Some(&bad) = list.iter().find(|&&a| a >= ndim) {
            return Err(Error::invalid(
                op,
                format!(
                    "axis {bad} is out of range for array {} with {ndim} axes (shape {:?})",
                    self.name(),
                    self.shape()
                ),
            ));
        }
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::invalid(
                op,
                format!("axis {} is repeated in axes {list:?} (array {})", w[0], self.name()),
            ));
        }
        Ok(sorted)
    }

    /// Reduces the array along `axes` with `kind`, as a tree of tasks (see the module
    /// docs).
    ///
    /// `keepdims` keeps the reduced axes with length one; `split_every` is the most
    /// partial results one combine task merges (at least 2; 16 when `None`). Kept axes
    /// keep their chunks; the result's dtype is `kind.result_dtype(self.dtype())`.
    /// Arg-reductions need one axis or every axis (then the result is the flat C-order
    /// index, as NumPy's `argmin()` without an axis). Min, max and the arg-reductions
    /// refuse to reduce an empty axis.
    pub fn reduction(
        &self,
        kind: ReduceKind,
        axes: impl Into<Axes>,
        keepdims: bool,
        split_every: Option<usize>,
    ) -> Result<Array> {
        let op = kind.name();
        let axes = self.reduce_axes(op, &axes.into())?;
        let ndim = self.ndim();
        let reduced: Vec<bool> = (0..ndim).map(|a| axes.contains(&a)).collect();
        if matches!(kind, ReduceKind::ArgMin | ReduceKind::ArgMax) && axes.len() != 1 && axes.len() != ndim {
            return Err(Error::invalid(
                op,
                format!("reduces one axis or every axis, got axes {axes:?} for array {} with {ndim} axes", self.name()),
            ));
        }
        if let ReduceKind::Var { ddof } | ReduceKind::Std { ddof } = kind
            && !ddof.is_finite()
        {
            return Err(Error::invalid(op, format!("ddof must be finite, got {ddof} (array {})", self.name())));
        }
        let split_every = match split_every {
            None => DEFAULT_SPLIT_EVERY,
            Some(n) if n >= 2 => n,
            Some(n) => {
                return Err(Error::invalid(
                    op,
                    format!("split_every must be at least 2, got {n} (array {})", self.name()),
                ));
            }
        };
        let reduced_len: u64 = axes.iter().map(|&a| self.shape[a]).product();
        let kept_len: u64 = (0..ndim).filter(|&a| !reduced[a]).map(|a| self.shape[a]).product();
        let no_identity = matches!(kind, ReduceKind::Min | ReduceKind::Max | ReduceKind::ArgMin | ReduceKind::ArgMax);
        if no_identity && reduced_len == 0 && kept_len > 0 {
            return Err(Error::invalid(
                op,
                format!(
                    "cannot reduce array {} of shape {:?} along axes {axes:?}: they hold no elements and {op} \
                     has no identity",
                    self.name(),
                    self.shape()
                ),
            ));
        }
        let dtype = kind.result_dtype(self.dtype);

        // Level 0: one partial per input block. Empty blocks along a reduced axis are
        // skipped (unless the whole axis is empty) so min and max never see them.
        let live: Vec<Vec<usize>> = (0..ndim)
            .map(|a| {
                let all = 0..self.chunks[a].len();
                if !reduced[a] {
                    return all.collect();
                }
                let non_empty: Vec<usize> = all.filter(|&i| self.chunks[a][i] > 0).collect();
                if non_empty.is_empty() { vec![0] } else { non_empty }
            })
            .collect();
        let partial_chunks = |counts: &[usize]| -> Vec<Vec<u64>> {
            (0..ndim).map(|a| if reduced[a] { vec![1; counts[a]] } else { self.chunks[a].clone() }).collect()
        };
        let shape_of = |chunks: &[Vec<u64>]| -> Vec<u64> { chunks.iter().map(|c| c.iter().sum()).collect() };
        let counts: Vec<usize> = live.iter().map(Vec::len).collect();
        let chunks = partial_chunks(&counts);
        let mut partials =
            Array::blockwise_new(&format!("{op}-chunk"), &[self], shape_of(&chunks), chunks, dtype, |p| {
                let block: Vec<usize> = p.iter().zip(&live).map(|(&i, l)| l[i]).collect();
                let task = ArrayOp::ReduceChunk {
                    kind,
                    axes: axes.clone(),
                    offset: self.block_offset(&block),
                    array_shape: self.shape.clone(),
                };
                Ok(Task::new(Op::Array(task), vec![self.key(&block)]))
            })?;

        // Combine levels until every reduced axis has one partial.
        let fan_in = per_axis_fan_in(split_every, axes.len());
        loop {
            let counts = partials.numblocks();
            if (0..ndim).all(|a| !reduced[a] || counts[a] == 1) {
                break;
            }
            let group: Vec<usize> = (0..ndim).map(|a| if reduced[a] { fan_in } else { 1 }).collect();
            let next: Vec<usize> = counts.iter().zip(&group).map(|(&n, &g)| n.div_ceil(g)).collect();
            let chunks = partial_chunks(&next);
            let prev = &partials;
            let level =
                Array::blockwise_new(&format!("{op}-combine"), &[prev], shape_of(&chunks), chunks, dtype, |q| {
                    let start: Vec<usize> = q.iter().zip(&group).map(|(&i, &g)| i * g).collect();
                    let extent: Vec<usize> =
                        start.iter().zip(&group).zip(&counts).map(|((&s, &g), &n)| g.min(n - s)).collect();
                    let deps: Vec<Key> = super::block_indices(&extent)
                        .map(|o| prev.key(&o.iter().zip(&start).map(|(&o, &s)| o + s).collect::<Vec<_>>()))
                        .collect();
                    let op = if deps.len() == 1 { Op::Alias } else { Op::Array(ArrayOp::ReduceCombine { kind }) };
                    Ok(Task::new(op, deps))
                })?;
            partials = level;
        }

        // Finalize: one task per output block.
        let out_chunks: Vec<Vec<u64>> = (0..ndim)
            .filter_map(|a| match (reduced[a], keepdims) {
                (false, _) => Some(self.chunks[a].clone()),
                (true, true) => Some(vec![1]),
                (true, false) => None,
            })
            .collect();
        let partials = &partials;
        Array::blockwise_new(op, &[partials], shape_of(&out_chunks), out_chunks, dtype, |ix| {
            // The partial of an output block: its kept indices, zero along reduced axes.
            let source: Vec<usize> = if keepdims {
                ix.iter().zip(&reduced).map(|(&i, &r)| if r { 0 } else { i }).collect()
            } else {
                let mut kept = ix.iter().copied();
                reduced.iter().map(|&r| if r { 0 } else { kept.next().unwrap_or(0) }).collect()
            };
            let task = ArrayOp::ReduceFinalize { kind, axes: axes.clone(), keepdims };
            Ok(Task::new(Op::Array(task), vec![partials.key(&source)]))
        })
    }

    /// Sum along `axes` (integers accumulate in 64 bits, as NumPy).
    pub fn sum(&self, axes: impl Into<Axes>) -> Result<Array> {
        self.reduction(ReduceKind::Sum, axes, false, None)
    }

    /// Arithmetic mean along `axes` (float64, or float32 for float32 input).
    pub fn mean(&self, axes: impl Into<Axes>) -> Result<Array> {
        self.reduction(ReduceKind::Mean, axes, false, None)
    }

    /// Minimum along `axes` (NaN propagates).
    pub fn min(&self, axes: impl Into<Axes>) -> Result<Array> {
        self.reduction(ReduceKind::Min, axes, false, None)
    }

    /// Maximum along `axes` (NaN propagates).
    pub fn max(&self, axes: impl Into<Axes>) -> Result<Array> {
        self.reduction(ReduceKind::Max, axes, false, None)
    }

    /// True where any element along `axes` is non-zero.
    pub fn any(&self, axes: impl Into<Axes>) -> Result<Array> {
        self.reduction(ReduceKind::Any, axes, false, None)
    }

    /// True where every element along `axes` is non-zero.
    pub fn all(&self, axes: impl Into<Axes>) -> Result<Array> {
        self.reduction(ReduceKind::All, axes, false, None)
    }

    /// Population variance along `axes` (`ddof = 0`).
    pub fn var(&self, axes: impl Into<Axes>) -> Result<Array> {
        self.var_ddof(axes, 0.0)
    }

    /// Population standard deviation along `axes` (`ddof = 0`).
    pub fn std(&self, axes: impl Into<Axes>) -> Result<Array> {
        self.std_ddof(axes, 0.0)
    }

    /// Variance along `axes` dividing by `n - ddof` (NaN when `n - ddof <= 0`).
    pub fn var_ddof(&self, axes: impl Into<Axes>, ddof: f64) -> Result<Array> {
        self.reduction(ReduceKind::Var { ddof }, axes, false, None)
    }

    /// Standard deviation along `axes` dividing by `n - ddof`.
    pub fn std_ddof(&self, axes: impl Into<Axes>, ddof: f64) -> Result<Array> {
        self.reduction(ReduceKind::Std { ddof }, axes, false, None)
    }

    /// Index of the minimum along `axis`, or the flat C-order index over the whole
    /// array when `None` (ties go to the first occurrence; NaN counts as the minimum).
    pub fn argmin(&self, axis: Option<usize>) -> Result<Array> {
        self.reduction(ReduceKind::ArgMin, axis.map_or(Axes::All, Axes::from), false, None)
    }

    /// Index of the maximum along `axis`, or the flat C-order index over the whole
    /// array when `None` (ties go to the first occurrence; NaN counts as the maximum).
    pub fn argmax(&self, axis: Option<usize>) -> Result<Array> {
        self.reduction(ReduceKind::ArgMax, axis.map_or(Axes::All, Axes::from), false, None)
    }

    /// Histogram of every element in `bins` equal-width bins over `range`, as
    /// `numpy.histogram(x, bins, range)`: the counts (a 1-D uint64 array in one block)
    /// and the `bins + 1` bin edges. The last bin includes its upper edge; values
    /// outside the range and NaN are not counted. A range with equal ends is widened
    /// to `(low - 0.5, high + 0.5)`, as NumPy does.
    pub fn histogram(&self, bins: usize, range: (f64, f64)) -> Result<(Array, Vec<f64>)> {
        const OP: &str = "histogram";
        let (mut lo, mut hi) = range;
        if bins == 0 {
            return Err(Error::invalid(OP, format!("bins must be at least 1, got 0 (array {})", self.name())));
        }
        if !(lo.is_finite() && hi.is_finite() && (hi - lo).is_finite()) {
            return Err(Error::invalid(OP, format!("range ({lo}, {hi}) is not finite (array {})", self.name())));
        }
        if lo > hi {
            return Err(Error::invalid(
                OP,
                format!("range ({lo}, {hi}) must have low <= high (array {})", self.name()),
            ));
        }
        if lo == hi {
            lo -= 0.5;
            hi += 0.5;
        }
        // numpy.linspace(lo, hi, bins + 1), in float32 for float32 input as NumPy does.
        let round = |v: f64| if self.dtype == DType::F32 { f64::from(v as f32) } else { v };
        let step = (hi - lo) / bins as f64;
        let mut edges: Vec<f64> = (0..bins).map(|i| round(i as f64 * step + lo)).collect();
        edges.push(round(hi));

        let width = bins as u64;
        let blocks = self.keys();
        let name = layer_name(OP);
        let tasks: Vec<(Key, Task)> = blocks
            .into_iter()
            .enumerate()
            .map(|(i, k)| {
                let op = Op::Array(ArrayOp::Histogram { bins, range: (lo, hi) });
                (Key::new(name.clone(), [i as u64]), Task::new(op, vec![k]))
            })
            .collect();
        // Level `l` is a 1-D array holding one histogram per block.
        let n = tasks.len();
        let mut level =
            Array::from_tasks(name, &[self], tasks, vec![width * n as u64], vec![vec![width; n]], DType::U64);
        while level.numblocks()[0] > 1 {
            let count = level.numblocks()[0];
            let next = count.div_ceil(HISTOGRAM_FAN_IN);
            let prev = &level;
            let chunks = vec![vec![width; next]];
            let merged = Array::blockwise_new(OP, &[prev], vec![width * next as u64], chunks, DType::U64, |ix| {
                let start = ix[0] * HISTOGRAM_FAN_IN;
                let deps: Vec<Key> = (start..count.min(start + HISTOGRAM_FAN_IN)).map(|j| prev.key(&[j])).collect();
                let op = if deps.len() == 1 { Op::Alias } else { Op::Array(ArrayOp::AddN) };
                Ok(Task::new(op, deps))
            })?;
            level = merged;
        }
        Ok((level, edges))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fan_in_is_the_integer_root() {
        assert_eq!(per_axis_fan_in(16, 1), 16);
        assert_eq!(per_axis_fan_in(16, 2), 4);
        assert_eq!(per_axis_fan_in(16, 3), 2);
        assert_eq!(per_axis_fan_in(27, 3), 3);
        assert_eq!(per_axis_fan_in(64, 3), 4);
        assert_eq!(per_axis_fan_in(2, 2), 2);
        assert_eq!(per_axis_fan_in(usize::MAX, 2), u32::MAX as usize);
        assert_eq!(per_axis_fan_in(usize::MAX, 1), usize::MAX);
    }
}
