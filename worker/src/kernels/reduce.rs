//! Tree-reduction kernels: per-block partials, combining partials, final values.
//!
//! A reduction runs as a Dask-style tree: [`chunk`] turns every block into a partial
//! result in which the reduced axes are kept with length one, [`combine`] merges groups
//! of partials of identical shape (possibly over several levels), and [`finalize`] turns
//! the last partial of each output block into the result, dropping the reduced axes
//! unless `keepdims`.
//!
//! # Partial formats
//!
//! Every array in a partial has the block's shape with the reduced axes set to one.
//!
//! | kind | partial |
//! | --- | --- |
//! | `Sum` | chunk in [`DType::sum_type`] (i64 for signed and bool, u64 for unsigned, the float itself); integers wrap on overflow like NumPy |
//! | `Min`, `Max` | chunk in the input dtype; NaN propagates |
//! | `Any`, `All` | bool chunk |
//! | `Mean` | `Tuple[count, sum f64, tag]` |
//! | `Var`, `Std` | `Tuple[count, mean f64, M2 f64, tag]`, merged with Chan et al.'s parallel formula |
//! | `ArgMin`, `ArgMax` | `Tuple[best values in input dtype, indices i64]` |
//!
//! `count` is the number of input elements behind every output element, the same for
//! all of them, as a JSON number (`Value::Json(16.0)`). `tag` is the input dtype's name
//! as a JSON string (`Value::Json("float32")`): it tells [`finalize`] that float32
//! input gives a float32 mean, variance or standard deviation. A partial without it
//! finalizes to float64.
//!
//! Arg-reductions either reduce every axis, and then the index is the flat C-order
//! index into the whole array (`array_shape`, with the block at `offset`), or exactly
//! one axis, and then it is the global position along that axis. Ties go to the
//! smallest index and NaN counts as the extreme value, as in NumPy.
//!
//! Block data is walked as contiguous rows: the trailing axes that are all reduced (or
//! all kept) form the row, so whole-block reductions fold one slice and other
//! reductions either fold rows into single outputs or accumulate rows element-wise.

use ndarray::{ArrayD, Axis, IxDyn, Zip};
use std::borrow::Cow;
use tessera_core::op::ReduceKind;
use tessera_core::{Chunk, DType, Element, Error, Result, Value, chunk_map};

/// Element operations the reductions need, for every element type.
trait Num: Element {
    /// The type sums accumulate in (i64, u64 or f64).
    type Acc: Num;
    /// The largest value (the identity of `min`).
    const HIGHEST: Self;
    /// The smallest value (the identity of `max`).
    const LOWEST: Self;
    /// Converts to the sum accumulator.
    fn acc(self) -> Self::Acc;
    /// Converts to f64 (booleans become 0 or 1).
    fn real(self) -> f64;
    /// True for a float NaN.
    fn is_nan(self) -> bool;
    /// True for a non-zero value (NaN is non-zero, as in NumPy).
    fn truthy(self) -> bool;
    /// `self + other`, wrapping for integers and logical or for booleans.
    fn wadd(self, other: Self) -> Self;
    /// The sum of a slice in the accumulator type.
    fn sum_slice(s: &[Self]) -> Self::Acc;
}

macro_rules! impl_num_int {
    ($($t:ty => $acc:ty),*) => {$(
        impl Num for $t {
            type Acc = $acc;
            const HIGHEST: Self = <$t>::MAX;
            const LOWEST: Self = <$t>::MIN;
            fn acc(self) -> $acc {
                self as $acc
            }
            fn real(self) -> f64 {
                self as f64
            }
            fn is_nan(self) -> bool {
                false
            }
            fn truthy(self) -> bool {
                self != 0
            }
            fn wadd(self, other: Self) -> Self {
                self.wrapping_add(other)
            }
            fn sum_slice(s: &[Self]) -> $acc {
                lanes_sum(s)
            }
        }
    )*};
}
impl_num_int!(i8 => i64, i16 => i64, i32 => i64, i64 => i64, u8 => u64, u16 => u64, u32 => u64, u64 => u64);

macro_rules! impl_num_float {
    ($($t:ty),*) => {$(
        impl Num for $t {
            type Acc = f64;
            const HIGHEST: Self = <$t>::INFINITY;
            const LOWEST: Self = <$t>::NEG_INFINITY;
            fn acc(self) -> f64 {
                self as f64
            }
            fn real(self) -> f64 {
                self as f64
            }
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
            fn truthy(self) -> bool {
                self != 0.0
            }
            fn wadd(self, other: Self) -> Self {
                self + other
            }
            fn sum_slice(s: &[Self]) -> f64 {
                fsum(s, |v| v as f64)
            }
        }
    )*};
}
impl_num_float!(f32, f64);

impl Num for bool {
    type Acc = i64;
    const HIGHEST: Self = true;
    const LOWEST: Self = false;
    fn acc(self) -> i64 {
        i64::from(self)
    }
    fn real(self) -> f64 {
        f64::from(u8::from(self))
    }
    fn is_nan(self) -> bool {
        false
    }
    fn truthy(self) -> bool {
        self
    }
    fn wadd(self, other: Self) -> Self {
        self | other
    }
    fn sum_slice(s: &[Self]) -> i64 {
        lanes_sum(s)
    }
}

/// Sum with eight independent wrapping accumulators (vectorises for integers).
fn lanes_sum<T: Num>(s: &[T]) -> T::Acc {
    let mut acc = [<T::Acc>::default(); 8];
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = a.wadd(v.acc());
        }
    }
    let mut total = chunks.remainder().iter().fold(<T::Acc>::default(), |t, &v| t.wadd(v.acc()));
    for a in acc {
        total = total.wadd(a);
    }
    total
}

/// Pairwise sum of `f(v)` in f64: blocks of 256 elements summed with eight independent
/// accumulators, blocks combined as a binary tree (error grows with `log n`).
fn fsum<T: Copy>(s: &[T], f: impl Fn(T) -> f64 + Copy) -> f64 {
    const BLOCK: usize = 256;
    if s.len() > BLOCK {
        let (a, b) = s.split_at(s.len() / 2);
        return fsum(a, f) + fsum(b, f);
    }
    let mut acc = [0.0f64; 8];
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += f(v);
        }
    }
    let [a0, a1, a2, a3, a4, a5, a6, a7] = acc;
    let tail: f64 = chunks.remainder().iter().map(|&v| f(v)).sum();
    ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)) + tail
}

/// `min(acc, v)` (or `max` when `MAX`) with NaN propagating.
#[inline(always)]
fn pick<T: Num, const MAX: bool>(acc: T, v: T) -> T {
    let better = if MAX { v > acc } else { v < acc };
    if better || v.is_nan() { v } else { acc }
}

/// True when `v` beats the current best `b` of an arg-reduction (NaN beats numbers).
#[inline(always)]
fn arg_better<T: Num, const MAX: bool>(v: T, b: T) -> bool {
    let better = if MAX { v > b } else { v < b };
    better || (v.is_nan() && !b.is_nan())
}

/// Folds `s` into `init` with [`pick`], eight lanes at a time.
fn fold_pick<T: Num, const MAX: bool>(init: T, s: &[T]) -> T {
    let mut acc = [init; 8];
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = pick::<T, MAX>(*a, v);
        }
    }
    let best = acc.into_iter().fold(init, pick::<T, MAX>);
    chunks.remainder().iter().fold(best, |b, &v| pick::<T, MAX>(b, v))
}

/// The best value of a non-empty slice and the position of its first occurrence.
fn arg_slice<T: Num, const MAX: bool>(s: &[T]) -> Option<(T, usize)> {
    let first = *s.first()?;
    let best = fold_pick::<T, MAX>(first, s);
    let pos = if best.is_nan() { s.iter().position(|v| v.is_nan()) } else { s.iter().position(|&v| v == best) };
    Some((best, pos.unwrap_or(0)))
}

/// The sub-slice `v[o..o + n]`, empty if out of range.
fn span<T>(v: &mut [T], o: usize, n: usize) -> &mut [T] {
    v.get_mut(o..o + n).unwrap_or_default()
}

/// The elements of `a` in C order, borrowed when already contiguous.
fn contiguous<T: Element>(a: &ArrayD<T>) -> Cow<'_, [T]> {
    match a.as_slice() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(a.iter().copied().collect()),
    }
}

/// Wraps a C-order vector as an array of `shape`.
fn array<T>(name: &str, shape: &[usize], v: Vec<T>) -> Result<ArrayD<T>> {
    let len = v.len();
    ArrayD::from_shape_vec(IxDyn(shape), v)
        .map_err(|e| Error::invalid(name, format!("cannot shape {len} elements as {shape:?}: {e}")))
}

/// How a block is walked: contiguous rows, each either folded into one output element
/// (`inner_reduced`) or accumulated element-wise into a contiguous output row.
struct Layout {
    /// The partial's shape (reduced axes have length one).
    out_shape: Vec<usize>,
    /// Elements in the partial.
    out_len: usize,
    /// Input elements per output element.
    count: usize,
    /// True when the last axis is reduced.
    inner_reduced: bool,
    /// Length of a row: the trailing axes with the same reduced-ness as the last one.
    run: usize,
    /// Shape of the axes before the row.
    outer_shape: Vec<usize>,
    /// Output stride of each outer axis (zero for reduced axes).
    outer_strides: Vec<usize>,
}

impl Layout {
    fn new(shape: &[usize], reduced: &[bool]) -> Layout {
        let out_shape: Vec<usize> = shape.iter().zip(reduced).map(|(&n, &r)| if r { 1 } else { n }).collect();
        let count = shape.iter().zip(reduced).filter(|(_, r)| **r).map(|(n, _)| n).product();
        let inner_reduced = reduced.last().copied().unwrap_or(false);
        let split = reduced.iter().rposition(|&r| r != inner_reduced).map_or(0, |p| p + 1);
        let mut strides = vec![0; shape.len()];
        let mut step = 1;
        for ((s, &n), &r) in strides.iter_mut().zip(&out_shape).zip(reduced).rev() {
            *s = if r { 0 } else { step };
            step *= n;
        }
        strides.truncate(split);
        Layout {
            out_len: out_shape.iter().product(),
            out_shape,
            count,
            inner_reduced,
            run: shape[split..].iter().product(),
            outer_shape: shape[..split].to_vec(),
            outer_strides: strides,
        }
    }

    /// Calls `f(row, output offset, outer index)` for every row of `data` in C order.
    fn for_each_row<T>(&self, data: &[T], mut f: impl FnMut(&[T], usize, &[usize])) {
        let rows: usize = self.outer_shape.iter().product();
        let mut idx = vec![0usize; self.outer_shape.len()];
        let mut o = 0;
        for r in 0..rows {
            f(data.get(r * self.run..(r + 1) * self.run).unwrap_or_default(), o, &idx);
            for ((i, &n), &s) in idx.iter_mut().zip(&self.outer_shape).zip(&self.outer_strides).rev() {
                *i += 1;
                o += s;
                if *i < n {
                    break;
                }
                o -= s * n;
                *i = 0;
            }
        }
    }

    /// Reduces `data` into one accumulator per output element, starting from `init`:
    /// rows are folded with `row` when the last axis is reduced, otherwise each element
    /// is added with `elem`.
    fn accumulate<T: Copy, A: Copy>(
        &self,
        data: &[T],
        mut out: Vec<A>,
        row: impl Fn(A, &[T]) -> A,
        elem: impl Fn(A, T) -> A,
    ) -> Vec<A> {
        if self.inner_reduced {
            self.for_each_row(data, |r, o, _| {
                if let Some(a) = out.get_mut(o) {
                    *a = row(*a, r);
                }
            });
        } else {
            self.for_each_row(data, |r, o, _| {
                for (a, &v) in span(&mut out, o, r.len()).iter_mut().zip(r) {
                    *a = elem(*a, v);
                }
            });
        }
        out
    }
}

/// Which axes of an `ndim`-d block are reduced, rejecting bad or repeated axes.
fn reduced_mask(name: &str, axes: &[usize], ndim: usize) -> Result<Vec<bool>> {
    let mut mask = vec![false; ndim];
    for &ax in axes {
        match mask.get_mut(ax) {
            None => return Err(Error::invalid(name, format!("axis {ax} is out of range for a {ndim}-d block"))),
            Some(true) => return Err(Error::invalid(name, format!("axis {ax} is repeated in axes {axes:?}"))),
            Some(m) => *m = true,
        }
    }
    Ok(mask)
}

/// The tag recording the input dtype in mean and variance partials.
fn dtype_tag(dtype: DType) -> Value {
    Value::Json(serde_json::Value::from(dtype.name()))
}

/// The `count` member of a mean or variance partial.
fn count_member(count: f64) -> Value {
    Value::Json(serde_json::Value::from(count))
}

/// `a` as float32 when the input `dtype` is float32, otherwise as float64.
fn float_chunk(a: ArrayD<f64>, dtype: DType) -> Chunk {
    if dtype == DType::F32 { Chunk::F32(a.mapv(|v| v as f32)) } else { Chunk::F64(a) }
}

/// A float64 chunk of `shape` as a value.
fn f64_chunk(name: &str, shape: &[usize], v: Vec<f64>) -> Result<Value> {
    Ok(Value::Chunk(Chunk::F64(array(name, shape, v)?)))
}

/// Partial result of one block (see the module docs for the formats).
pub fn chunk(kind: ReduceKind, axes: &[usize], offset: &[u64], array_shape: &[u64], a: &Chunk) -> Result<Value> {
    let name = kind.name();
    let reduced = reduced_mask(name, axes, a.shape().len())?;
    let lay = Layout::new(a.shape(), &reduced);
    let no_identity = matches!(kind, ReduceKind::Min | ReduceKind::Max | ReduceKind::ArgMin | ReduceKind::ArgMax);
    if no_identity && lay.count == 0 && lay.out_len > 0 {
        return Err(Error::invalid(
            name,
            format!(
                "cannot reduce a zero-size block (shape {:?}) along axes {axes:?}: {name} has no identity",
                a.shape()
            ),
        ));
    }
    let block = Block { name, lay: &lay, reduced: &reduced, axes, offset, array_shape };
    chunk_map!(a, arr: T => block.partial(kind, arr))
}

/// One block being reduced, with everything the partial depends on.
struct Block<'a> {
    name: &'static str,
    lay: &'a Layout,
    reduced: &'a [bool],
    axes: &'a [usize],
    offset: &'a [u64],
    array_shape: &'a [u64],
}

impl Block<'_> {
    fn partial<T: Num>(&self, kind: ReduceKind, arr: &ArrayD<T>) -> Result<Value> {
        let (name, lay) = (self.name, self.lay);
        let data = contiguous(arr);
        let bools = |out| Ok(Value::Chunk(Chunk::Bool(array(name, &lay.out_shape, out)?)));
        match kind {
            ReduceKind::Sum => {
                let zero = vec![<T::Acc>::default(); lay.out_len];
                let out = lay.accumulate(&data, zero, |s, r| s.wadd(T::sum_slice(r)), |s, v| s.wadd(v.acc()));
                // Floats are summed in f64; float32 partials stay float32.
                Ok(Value::Chunk(match Chunk::from_array(array(name, &lay.out_shape, out)?) {
                    Chunk::F64(sums) => float_chunk(sums, T::DTYPE),
                    other => other,
                }))
            }
            ReduceKind::Min => min_max::<T, false>(name, lay, &data),
            ReduceKind::Max => min_max::<T, true>(name, lay, &data),
            ReduceKind::Any => {
                let any = |s: bool, r: &[T]| s || r.iter().any(|v| v.truthy());
                bools(lay.accumulate(&data, vec![false; lay.out_len], any, |s, v| s | v.truthy()))
            }
            ReduceKind::All => {
                let all = |s: bool, r: &[T]| s && r.iter().all(|v| v.truthy());
                bools(lay.accumulate(&data, vec![true; lay.out_len], all, |s, v| s & v.truthy()))
            }
            ReduceKind::Mean => Ok(Value::Tuple(vec![
                count_member(lay.count as f64),
                f64_chunk(name, &lay.out_shape, float_sums(lay, &data))?,
                dtype_tag(T::DTYPE),
            ])),
            ReduceKind::Var { .. } | ReduceKind::Std { .. } => moments(name, lay, &data),
            ReduceKind::ArgMin => self.arg::<T, false>(arr.shape(), &data),
            ReduceKind::ArgMax => self.arg::<T, true>(arr.shape(), &data),
        }
    }

    /// Partial of an arg-reduction: best values and their global indices.
    fn arg<T: Num, const MAX: bool>(&self, shape: &[usize], data: &[T]) -> Result<Value> {
        let Block { name, lay, reduced, axes, offset, array_shape } = *self;
        let nd = shape.len();
        if offset.len() != nd || array_shape.len() != nd {
            return Err(Error::invalid(
                name,
                format!("block offset {offset:?} and array shape {array_shape:?} must both have {nd} entries"),
            ));
        }
        for ((&o, &n), &total) in offset.iter().zip(shape).zip(array_shape) {
            if o.checked_add(n as u64).is_none_or(|end| end > total) {
                return Err(Error::invalid(
                    name,
                    format!(
                        "block of shape {shape:?} at offset {offset:?} does not fit in array shape {array_shape:?}"
                    ),
                ));
            }
        }
        let too_big =
            || Error::invalid(name, format!("array shape {array_shape:?} has too many elements for i64 indices"));
        let values: Vec<T>;
        let indices: Vec<i64>;
        if reduced.iter().all(|&r| r) {
            let Some((best, pos)) = arg_slice::<T, MAX>(data) else {
                return Err(Error::invalid(name, format!("cannot reduce a zero-size block (shape {shape:?})")));
            };
            // Unravel the local position and ravel it again in the whole array.
            let mut rest = pos;
            let mut flat: u64 = 0;
            let mut stride: u64 = 1;
            for ((&n, &o), &total) in shape.iter().zip(offset).zip(array_shape).rev() {
                let local = (rest % n.max(1)) as u64;
                rest /= n.max(1);
                let term = (o + local).checked_mul(stride).ok_or_else(too_big)?;
                flat = flat.checked_add(term).ok_or_else(too_big)?;
                stride = stride.checked_mul(total).ok_or_else(too_big)?;
            }
            values = vec![best];
            indices = vec![i64::try_from(flat).map_err(|_| too_big())?];
        } else {
            let &[axis] = axes else {
                return Err(Error::invalid(
                    name,
                    format!("reduces either every axis or exactly one, got axes {axes:?} for a {nd}-d block"),
                ));
            };
            // offset + length fits in u64 (checked above); the indices must fit in i64.
            let end = i64::try_from(offset[axis] + shape[axis] as u64).map_err(|_| too_big())?;
            let start = end - shape[axis] as i64;
            let mut vals = vec![T::default(); lay.out_len];
            let mut idx = vec![-1i64; lay.out_len];
            if lay.inner_reduced {
                // The reduced axis is the row: one output per row.
                lay.for_each_row(data, |r, o, _| {
                    if let (Some((best, pos)), Some(v), Some(i)) =
                        (arg_slice::<T, MAX>(r), vals.get_mut(o), idx.get_mut(o))
                    {
                        *v = best;
                        *i = start + pos as i64;
                    }
                });
            } else {
                // Rows are visited in increasing position along the axis, so a strict
                // comparison keeps the first occurrence.
                lay.for_each_row(data, |r, o, outer| {
                    let at = start + outer.get(axis).copied().unwrap_or(0) as i64;
                    let n = r.len();
                    for ((v, i), &x) in span(&mut vals, o, n).iter_mut().zip(span(&mut idx, o, n)).zip(r) {
                        if *i < 0 || arg_better::<T, MAX>(x, *v) {
                            *v = x;
                            *i = at;
                        }
                    }
                });
            }
            values = vals;
            indices = idx;
        }
        Ok(Value::Tuple(vec![
            Value::Chunk(Chunk::from_array(array(name, &lay.out_shape, values)?)),
            Value::Chunk(Chunk::I64(array(name, &lay.out_shape, indices)?)),
        ]))
    }
}

/// Per-output sums of the elements as f64.
fn float_sums<T: Num>(lay: &Layout, data: &[T]) -> Vec<f64> {
    lay.accumulate(data, vec![0.0; lay.out_len], |s, r| s + fsum(r, T::real), |s, v| s + v.real())
}

fn min_max<T: Num, const MAX: bool>(name: &str, lay: &Layout, data: &[T]) -> Result<Value> {
    let init = vec![if MAX { T::LOWEST } else { T::HIGHEST }; lay.out_len];
    let out = lay.accumulate(data, init, fold_pick::<T, MAX>, pick::<T, MAX>);
    Ok(Value::Chunk(Chunk::from_array(array(name, &lay.out_shape, out)?)))
}

/// `[count, mean, M2]` per output element, by two passes (mean, then squared deviations).
fn moments<T: Num>(name: &str, lay: &Layout, data: &[T]) -> Result<Value> {
    let n = lay.count as f64;
    let means: Vec<f64> = float_sums(lay, data).into_iter().map(|s| if lay.count == 0 { 0.0 } else { s / n }).collect();
    let sq = |m: f64, v: T| {
        let d = v.real() - m;
        d * d
    };
    let init = means.iter().map(|&m| (m, 0.0)).collect();
    let acc = lay.accumulate(data, init, |(m, s), r| (m, s + fsum(r, |v| sq(m, v))), |(m, s), v| (m, s + sq(m, v)));
    Ok(Value::Tuple(vec![
        count_member(n),
        f64_chunk(name, &lay.out_shape, means)?,
        f64_chunk(name, &lay.out_shape, acc.into_iter().map(|(_, s)| s).collect())?,
        dtype_tag(T::DTYPE),
    ]))
}

/// Borrows the typed array of a partial, naming the reduction on a dtype mismatch.
fn typed<'a, T: Element>(name: &str, what: &str, c: &'a Chunk) -> Result<&'a ArrayD<T>> {
    T::view(c).ok_or_else(|| Error::invalid(name, format!("expected {what} of type {}, found {}", T::DTYPE, c.dtype())))
}

/// Errors unless every array has the shape of the first.
fn same_shapes(name: &str, shapes: impl IntoIterator<Item = Vec<usize>>) -> Result<()> {
    let mut it = shapes.into_iter();
    if let Some(first) = it.next() {
        for s in it {
            if s != first {
                return Err(Error::invalid(name, format!("partials have different shapes {first:?} and {s:?}")));
            }
        }
    }
    Ok(())
}

/// The count, the `n` f64 arrays and the input dtype (from the tag) of a mean or
/// variance partial.
fn float_parts<'a>(name: &str, v: &'a Value, n: usize) -> Result<(f64, Vec<&'a ArrayD<f64>>, DType)> {
    let parts = v.as_tuple().map_err(|e| Error::invalid(name, format!("bad partial: {e}")))?;
    let (members, dtype) = match parts.split_last() {
        Some((Value::Json(tag), rest)) if tag.is_string() => {
            let dtype = tag.as_str().and_then(DType::from_name);
            (rest, dtype.ok_or_else(|| Error::invalid(name, format!("bad dtype tag {tag} in partial")))?)
        }
        _ => (parts, DType::F64),
    };
    let Some((Value::Json(count), arrays)) = members.split_first() else {
        return Err(Error::invalid(name, "a partial must start with its count"));
    };
    let count = count.as_f64().ok_or_else(|| Error::invalid(name, format!("bad count {count} in partial")))?;
    if arrays.len() != n {
        return Err(Error::invalid(name, format!("expected a partial of {n} arrays, got {}", arrays.len())));
    }
    let arrays =
        arrays.iter().map(|p| typed::<f64>(name, "partial data", p.as_chunk()?)).collect::<Result<Vec<_>>>()?;
    same_shapes(name, arrays.iter().map(|a| a.shape().to_vec()))?;
    Ok((count, arrays, dtype))
}

/// The values and indices of an arg-reduction partial.
fn arg_parts<'a>(name: &str, v: &'a Value) -> Result<(&'a Chunk, &'a ArrayD<i64>)> {
    match v.as_tuple().map_err(|e| Error::invalid(name, format!("bad partial: {e}")))? {
        [values, indices] => {
            let values = values.as_chunk()?;
            let indices = typed::<i64>(name, "indices", indices.as_chunk()?)?;
            same_shapes(name, [values.shape().to_vec(), indices.shape().to_vec()])?;
            Ok((values, indices))
        }
        other => {
            Err(Error::invalid(name, format!("expected a partial of values and indices, got {} parts", other.len())))
        }
    }
}

/// A C-order owned copy of `a`.
fn owned<T: Element>(a: &ArrayD<T>) -> ArrayD<T> {
    a.as_standard_layout().into_owned()
}

/// Merges any number of partials of the same kind and shape.
pub fn combine(kind: ReduceKind, parts: &[&Value]) -> Result<Value> {
    let name = kind.name();
    let Some((first, rest)) = parts.split_first() else {
        return Err(Error::invalid(name, "combine needs at least one partial"));
    };
    let chunks = || parts.iter().map(|p| p.as_chunk()).collect::<Result<Vec<_>>>();
    Ok(match kind {
        ReduceKind::Sum => Value::Chunk(merge_chunks::<Add>(name, &chunks()?)?),
        ReduceKind::Min => Value::Chunk(merge_chunks::<Pick<false>>(name, &chunks()?)?),
        ReduceKind::Max => Value::Chunk(merge_chunks::<Pick<true>>(name, &chunks()?)?),
        ReduceKind::Any | ReduceKind::All => {
            let cs = chunks()?;
            let arrays = cs.iter().map(|c| typed::<bool>(name, "partial data", c)).collect::<Result<Vec<_>>>()?;
            same_shapes(name, arrays.iter().map(|a| a.shape().to_vec()))?;
            let Some((head, tail)) = arrays.split_first() else {
                return Err(Error::invalid(name, "combine needs at least one partial"));
            };
            let mut out = owned(head);
            let any = kind == ReduceKind::Any;
            for a in tail {
                Zip::from(&mut out).and(*a).for_each(|o, &v| *o = if any { *o | v } else { *o & v });
            }
            Value::Chunk(Chunk::Bool(out))
        }
        ReduceKind::Mean => {
            let (mut count, head, dtype) = float_parts(name, first, 1)?;
            let mut sum = owned(head[0]);
            for p in rest {
                let (n, arrays, _) = float_parts(name, p, 1)?;
                same_shapes(name, [sum.shape().to_vec(), arrays[0].shape().to_vec()])?;
                sum += arrays[0];
                count += n;
            }
            Value::Tuple(vec![count_member(count), Value::Chunk(Chunk::F64(sum)), dtype_tag(dtype)])
        }
        ReduceKind::Var { .. } | ReduceKind::Std { .. } => {
            let (mut na, head, dtype) = float_parts(name, first, 2)?;
            let (mut mean, mut m2) = (owned(head[0]), owned(head[1]));
            for p in rest {
                let (nb, b, _) = float_parts(name, p, 2)?;
                same_shapes(name, [mean.shape().to_vec(), b[0].shape().to_vec()])?;
                // Chan, Golub & LeVeque: merge two (count, mean, M2) summaries.
                let total = na + nb;
                if total > 0.0 {
                    let (weight, cross) = (nb / total, na * nb / total);
                    Zip::from(&mut mean).and(&mut m2).and(b[0]).and(b[1]).for_each(|ma, sa, &mb, &sb| {
                        let delta = mb - *ma;
                        *ma += delta * weight;
                        *sa += sb + delta * delta * cross;
                    });
                }
                na = total;
            }
            Value::Tuple(vec![
                count_member(na),
                Value::Chunk(Chunk::F64(mean)),
                Value::Chunk(Chunk::F64(m2)),
                dtype_tag(dtype),
            ])
        }
        ReduceKind::ArgMin => combine_arg::<false>(name, parts)?,
        ReduceKind::ArgMax => combine_arg::<true>(name, parts)?,
    })
}

fn combine_arg<const MAX: bool>(name: &str, parts: &[&Value]) -> Result<Value> {
    let all = parts.iter().map(|p| arg_parts(name, p)).collect::<Result<Vec<_>>>()?;
    same_shapes(name, all.iter().map(|(v, _)| v.shape().to_vec()))?;
    let Some(&(first_values, first_indices)) = all.first() else {
        return Err(Error::invalid(name, "combine needs at least one partial"));
    };
    chunk_map!(first_values, fv: T => {
        let mut values = owned(fv);
        let mut indices = owned(first_indices);
        for &(v, i) in &all[1..] {
            let v = typed::<T>(name, "values", v)?;
            Zip::from(&mut values).and(&mut indices).and(v).and(i).for_each(|bv, bi, &pv, &pi| {
                if arg_better::<T, MAX>(pv, *bv) || (!arg_better::<T, MAX>(*bv, pv) && pi < *bi) {
                    *bv = pv;
                    *bi = pi;
                }
            });
        }
        Ok(Value::Tuple(vec![Value::Chunk(Chunk::from_array(values)), Value::Chunk(Chunk::I64(indices))]))
    })
}

/// A binary operation used to merge chunks element-wise.
trait MergeOp {
    fn apply<T: Num>(acc: T, v: T) -> T;
}

/// Wrapping addition (logical or for booleans).
struct Add;

impl MergeOp for Add {
    fn apply<T: Num>(acc: T, v: T) -> T {
        acc.wadd(v)
    }
}

/// Minimum (or maximum when `MAX`) with NaN propagating.
struct Pick<const MAX: bool>;

impl<const MAX: bool> MergeOp for Pick<MAX> {
    fn apply<T: Num>(acc: T, v: T) -> T {
        pick::<T, MAX>(acc, v)
    }
}

/// Merges chunks of one dtype and shape element-wise with `M`.
fn merge_chunks<M: MergeOp>(name: &str, parts: &[&Chunk]) -> Result<Chunk> {
    let Some((first, rest)) = parts.split_first() else {
        return Err(Error::invalid(name, "needs at least one chunk"));
    };
    chunk_map!(first, fa: T => {
        let mut out = owned(fa);
        for c in rest {
            let a = typed::<T>(name, "a chunk", c)?;
            if out.shape() != a.shape() {
                same_shapes(name, [out.shape().to_vec(), a.shape().to_vec()])?;
            }
            match (out.as_slice_mut(), a.as_slice()) {
                // Both in standard order: a plain loop, without Zip's per-call setup
                // (a merge of many small partials is dominated by it).
                (Some(o), Some(v)) => o.iter_mut().zip(v).for_each(|(o, &v)| *o = M::apply(*o, v)),
                _ => Zip::from(&mut out).and(a).for_each(|o, &v| *o = M::apply(*o, v)),
            }
        }
        Ok(Chunk::from_array(out))
    })
}

/// Removes the length-one `axes` of a partial.
fn drop_axes<T>(name: &str, mut a: ArrayD<T>, axes: &[usize]) -> Result<ArrayD<T>> {
    let mut sorted = axes.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    for &ax in sorted.iter().rev() {
        match a.shape().get(ax) {
            Some(1) => a = a.index_axis_move(Axis(ax), 0),
            Some(&n) => {
                return Err(Error::invalid(
                    name,
                    format!("reduced axis {ax} of the partial has length {n}, expected 1"),
                ));
            }
            None => {
                return Err(Error::invalid(name, format!("axis {ax} is out of range for a {}-d partial", a.ndim())));
            }
        }
    }
    Ok(a)
}

/// [`drop_axes`] for a chunk of any dtype.
fn drop_chunk_axes(name: &str, c: Chunk, axes: &[usize]) -> Result<Chunk> {
    chunk_map!(c, a: T => Ok(Chunk::from_array(drop_axes(name, a, axes)?)))
}

/// Final block from a partial: drops the reduced `axes` unless `keepdims`.
pub fn finalize(kind: ReduceKind, axes: &[usize], keepdims: bool, partial: &Value) -> Result<Chunk> {
    let name = kind.name();
    let result = match kind {
        ReduceKind::Sum | ReduceKind::Min | ReduceKind::Max | ReduceKind::Any | ReduceKind::All => {
            partial.as_chunk()?.clone()
        }
        ReduceKind::ArgMin | ReduceKind::ArgMax => Chunk::I64(arg_parts(name, partial)?.1.clone()),
        ReduceKind::Mean => {
            let (n, p, dtype) = float_parts(name, partial, 1)?;
            float_chunk(p[0].mapv(|s| s / n), dtype)
        }
        ReduceKind::Var { ddof } | ReduceKind::Std { ddof } => {
            let (n, p, dtype) = float_parts(name, partial, 2)?;
            let std = matches!(kind, ReduceKind::Std { .. });
            let out = p[1].mapv(|m2| {
                let var = if n - ddof > 0.0 { m2 / (n - ddof) } else { f64::NAN };
                if std { var.sqrt() } else { var }
            });
            float_chunk(out, dtype)
        }
    };
    if keepdims { Ok(result) } else { drop_chunk_axes(name, result, axes) }
}

/// Element-wise sum of same-shaped, same-dtype blocks (integers wrap, booleans or).
pub fn add_n(parts: &[&Chunk]) -> Result<Chunk> {
    merge_chunks::<Add>("add_n", parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{ArrayD, Dimension, IxDyn, Slice};
    use proptest::prelude::*;
    use tessera_core::Scalar;

    /// Deterministic pseudo-random numbers in [0, 1).
    fn uniform(seed: u64, n: usize) -> Vec<f64> {
        (0..n as u64).map(|i| crate::kernels::create::uniform01(seed, i)).collect()
    }

    fn random_array(shape: &[usize], seed: u64) -> ArrayD<f64> {
        let n = shape.iter().product();
        ArrayD::from_shape_vec(IxDyn(shape), uniform(seed, n)).unwrap()
    }

    /// Small integers 0..4 as floats, so ties and zeros are common.
    fn small_ints(shape: &[usize], seed: u64) -> ArrayD<f64> {
        random_array(shape, seed).mapv(|v| (v * 4.0).floor())
    }

    /// Naive reference over the whole array, keepdims shape: each output element's
    /// values (with their flat index) gathered by walking every index.
    fn reference(kind: ReduceKind, a: &ArrayD<f64>, axes: &[usize]) -> ArrayD<f64> {
        let out_shape: Vec<usize> =
            a.shape().iter().enumerate().map(|(d, &n)| if axes.contains(&d) { 1 } else { n }).collect();
        let mut groups: ArrayD<Vec<(usize, f64)>> = ArrayD::from_elem(IxDyn(&out_shape), Vec::new());
        for (flat, (idx, &v)) in a.indexed_iter().enumerate() {
            let mut o = idx.slice().to_vec();
            for &ax in axes {
                o[ax] = 0;
            }
            groups[IxDyn(&o)].push((flat, v));
        }
        groups.mapv(|g| {
            let n = g.len() as f64;
            let has_nan = g.iter().any(|(_, v)| v.is_nan());
            let var = |ddof: f64| {
                let mean = g.iter().map(|(_, v)| v).sum::<f64>() / n;
                let ss: f64 = g.iter().map(|(_, v)| (v - mean) * (v - mean)).sum();
                if n - ddof > 0.0 { ss / (n - ddof) } else { f64::NAN }
            };
            let arg = |max: bool| {
                let mut best = 0;
                for (k, &(_, v)) in g.iter().enumerate() {
                    let b = g[best].1;
                    if (v.is_nan() && !b.is_nan()) || (!b.is_nan() && if max { v > b } else { v < b }) {
                        best = k;
                    }
                }
                // Flat index when every axis is reduced, else the position in the group.
                if axes.len() == a.ndim() { g[best].0 as f64 } else { best as f64 }
            };
            match kind {
                ReduceKind::Sum => g.iter().map(|(_, v)| v).sum(),
                ReduceKind::Mean => g.iter().map(|(_, v)| v).sum::<f64>() / n,
                ReduceKind::Var { ddof } => var(ddof),
                ReduceKind::Std { ddof } => var(ddof).sqrt(),
                ReduceKind::Min if has_nan => f64::NAN,
                ReduceKind::Max if has_nan => f64::NAN,
                ReduceKind::Min => g.iter().map(|(_, v)| *v).fold(f64::INFINITY, f64::min),
                ReduceKind::Max => g.iter().map(|(_, v)| *v).fold(f64::NEG_INFINITY, f64::max),
                ReduceKind::Any => g.iter().any(|(_, v)| *v != 0.0) as u8 as f64,
                ReduceKind::All => g.iter().all(|(_, v)| *v != 0.0) as u8 as f64,
                ReduceKind::ArgMin => arg(false),
                ReduceKind::ArgMax => arg(true),
            }
        })
    }

    /// Block boundaries from chunk sizes per axis: (grid index, offset, shape) per block.
    fn blocks(chunks: &[Vec<usize>]) -> Vec<(Vec<usize>, Vec<usize>, Vec<usize>)> {
        let mut out = vec![(vec![], vec![], vec![])];
        for sizes in chunks {
            let mut next = Vec::new();
            for (g, o, s) in &out {
                let mut start = 0;
                for (i, &n) in sizes.iter().enumerate() {
                    let extend = |v: &Vec<usize>, x| v.iter().copied().chain([x]).collect::<Vec<_>>();
                    next.push((extend(g, i), extend(o, start), extend(s, n)));
                    start += n;
                }
            }
            out = next;
        }
        out
    }

    fn cut(a: &Chunk, offset: &[usize], shape: &[usize]) -> Chunk {
        chunk_map!(a, x: T => Chunk::from_array(
            x.slice_each_axis(|ax| {
                let d = ax.axis.index();
                Slice::from(offset[d]..offset[d] + shape[d])
            })
            .to_owned(),
        ))
    }

    /// Runs the whole tree (chunk, combine in groups of `group` until one partial is
    /// left per output block, finalize with keepdims) and assembles the result as f64.
    fn tree(kind: ReduceKind, a: &Chunk, chunks: &[Vec<usize>], axes: &[usize], group: usize) -> Result<ArrayD<f64>> {
        let array_shape: Vec<u64> = a.shape().iter().map(|&n| n as u64).collect();
        let mut partials: Vec<(Vec<usize>, Vec<usize>, Value)> = Vec::new();
        for (grid, offset, shape) in blocks(chunks) {
            let off: Vec<u64> = offset.iter().map(|&o| o as u64).collect();
            let p = chunk(kind, axes, &off, &array_shape, &cut(a, &offset, &shape))?;
            let key: Vec<usize> =
                grid.iter().enumerate().map(|(d, &g)| if axes.contains(&d) { 0 } else { g }).collect();
            let out_off: Vec<usize> =
                offset.iter().enumerate().map(|(d, &o)| if axes.contains(&d) { 0 } else { o }).collect();
            partials.push((key, out_off, p));
        }
        let out_shape: Vec<usize> =
            a.shape().iter().enumerate().map(|(d, &n)| if axes.contains(&d) { 1 } else { n }).collect();
        let mut out = ArrayD::<f64>::from_elem(IxDyn(&out_shape), -999.0);
        let mut keys: Vec<Vec<usize>> = partials.iter().map(|p| p.0.clone()).collect();
        keys.sort();
        keys.dedup();
        for key in keys {
            let members: Vec<&(Vec<usize>, Vec<usize>, Value)> = partials.iter().filter(|p| p.0 == key).collect();
            let out_off = members[0].1.clone();
            let mut level: Vec<Value> = members.iter().map(|p| p.2.clone()).collect();
            while level.len() > 1 {
                level =
                    level.chunks(group).map(|g| combine(kind, &g.iter().collect::<Vec<_>>())).collect::<Result<_>>()?;
            }
            let fin = finalize(kind, axes, true, &level[0])?;
            assert_eq!(fin.dtype(), kind.result_dtype(a.dtype()), "{kind:?} of {}", a.dtype());
            let fin = fin.cast(DType::F64).into_typed::<f64>()?;
            out.slice_each_axis_mut(|ax| {
                let d = ax.axis.index();
                Slice::from(out_off[d]..out_off[d] + fin.shape()[d])
            })
            .assign(&fin);
        }
        Ok(out)
    }

    fn assert_close(got: &ArrayD<f64>, want: &ArrayD<f64>, tol: f64, what: &str) {
        assert_eq!(got.shape(), want.shape(), "{what}");
        for (g, w) in got.iter().zip(want) {
            let ok = (g.is_nan() && w.is_nan()) || (g - w).abs() <= tol * w.abs().max(1.0);
            assert!(ok, "{what}: got {got} want {want}");
        }
    }

    const KINDS: [ReduceKind; 11] = [
        ReduceKind::Sum,
        ReduceKind::Mean,
        ReduceKind::Var { ddof: 0.0 },
        ReduceKind::Var { ddof: 1.0 },
        ReduceKind::Std { ddof: 1.0 },
        ReduceKind::Min,
        ReduceKind::Max,
        ReduceKind::Any,
        ReduceKind::All,
        ReduceKind::ArgMin,
        ReduceKind::ArgMax,
    ];

    fn valid_axes(kind: ReduceKind, axes: &[usize], ndim: usize) -> bool {
        !matches!(kind, ReduceKind::ArgMin | ReduceKind::ArgMax) || axes.len() == 1 || axes.len() == ndim
    }

    #[test]
    fn ragged_blocks_match_whole_array_reference() {
        let a = small_ints(&[7, 5, 6], 1) + random_array(&[7, 5, 6], 2).mapv(|v| (v * 2.0).floor() * 0.5);
        let chunks = vec![vec![3, 3, 1], vec![2, 3], vec![4, 2]];
        let axes_sets: [&[usize]; 8] = [&[0], &[1], &[2], &[0, 1], &[0, 2], &[1, 2], &[0, 1, 2], &[2, 0]];
        for kind in KINDS {
            for axes in axes_sets {
                if !valid_axes(kind, axes, 3) {
                    continue;
                }
                let want = reference(kind, &a, axes);
                for group in [2, 3] {
                    let got = tree(kind, &Chunk::F64(a.clone()), &chunks, axes, group).unwrap();
                    assert_close(&got, &want, 1e-12, &format!("{kind:?} axes {axes:?} group {group}"));
                }
            }
        }
    }

    #[test]
    fn one_element_blocks_and_single_block() {
        let a = small_ints(&[3, 4], 5);
        let ones = vec![vec![1; 3], vec![1; 4]];
        let whole = vec![vec![3], vec![4]];
        for kind in KINDS {
            for axes in [&[0usize][..], &[1], &[0, 1]] {
                let want = reference(kind, &a, axes);
                for chunks in [&ones, &whole] {
                    let got = tree(kind, &Chunk::F64(a.clone()), chunks, axes, 2).unwrap();
                    assert_close(&got, &want, 1e-12, &format!("{kind:?} axes {axes:?} chunks {chunks:?}"));
                }
            }
        }
    }

    #[test]
    fn dtypes_reduce_in_their_accumulators() {
        let a = small_ints(&[6, 5], 9);
        let chunks = vec![vec![2, 4], vec![3, 2]];
        for dtype in [DType::Bool, DType::U16, DType::I32, DType::F32, DType::F64, DType::I8, DType::U64] {
            let c = Chunk::F64(a.clone()).cast(dtype);
            let af = c.cast(DType::F64).into_typed::<f64>().unwrap();
            for kind in KINDS {
                for axes in [&[0usize][..], &[1], &[0, 1]] {
                    let want = reference(kind, &af, axes);
                    let got = tree(kind, &c, &chunks, axes, 2).unwrap();
                    let tol = if dtype == DType::F32 { 1e-6 } else { 1e-12 };
                    assert_close(&got, &want, tol, &format!("{kind:?} {dtype} axes {axes:?}"));
                }
            }
        }
    }

    #[test]
    fn known_numpy_results() {
        let run = |kind, a: ArrayD<f64>, axes: &[usize]| {
            let shape: Vec<u64> = a.shape().iter().map(|&n| n as u64).collect();
            let p = chunk(kind, axes, &vec![0; shape.len()], &shape, &Chunk::F64(a)).unwrap();
            finalize(kind, axes, false, &p).unwrap()
        };
        let v = |x: &[f64]| ArrayD::from_shape_vec(IxDyn(&[x.len()]), x.to_vec()).unwrap();
        let m = |x: &[f64], cols: usize| ArrayD::from_shape_vec(IxDyn(&[x.len() / cols, cols]), x.to_vec()).unwrap();
        // np.var([1, 2, 3, 4], ddof=1), np.std([2, 4, 4, 4, 5, 5, 7, 9])
        assert_eq!(
            run(ReduceKind::Var { ddof: 1.0 }, v(&[1.0, 2.0, 3.0, 4.0]), &[0]),
            Chunk::scalar(Scalar::F64(1.6666666666666667))
        );
        assert_eq!(
            run(ReduceKind::Std { ddof: 0.0 }, v(&[2., 4., 4., 4., 5., 5., 7., 9.]), &[0]),
            Chunk::scalar(Scalar::F64(2.0))
        );
        // np.argmax([[1, 5, 5], [5, 0, 2]]) == 1
        assert_eq!(run(ReduceKind::ArgMax, m(&[1., 5., 5., 5., 0., 2.], 3), &[0, 1]), Chunk::scalar(Scalar::I64(1)));
        // np.argmin([[3, 1, 1], [0, 5, 1]], axis=0) == [1, 0, 0]; argmax(axis=1) == [0, 1]
        let b = m(&[3., 1., 1., 0., 5., 1.], 3);
        assert_eq!(run(ReduceKind::ArgMin, b.clone(), &[0]).typed::<i64>().unwrap().as_slice().unwrap(), &[1, 0, 0]);
        assert_eq!(run(ReduceKind::ArgMax, b, &[1]).typed::<i64>().unwrap().as_slice().unwrap(), &[0, 1]);
        // Mean of an f32 array is float32; of integers float64.
        let f = Chunk::F64(v(&[1.0, 2.0])).cast(DType::F32);
        let p = chunk(ReduceKind::Mean, &[0], &[0], &[2], &f).unwrap();
        assert_eq!(finalize(ReduceKind::Mean, &[0], false, &p).unwrap(), Chunk::scalar(Scalar::F32(1.5)));
        // Sums of booleans count, of uint16 give uint64.
        let bools = Chunk::F64(v(&[1.0, 0.0, 1.0])).cast(DType::Bool);
        let p = chunk(ReduceKind::Sum, &[0], &[0], &[3], &bools).unwrap();
        assert_eq!(finalize(ReduceKind::Sum, &[0], false, &p).unwrap(), Chunk::scalar(Scalar::I64(2)));
        let u = Chunk::F64(v(&[65535.0, 65535.0])).cast(DType::U16);
        let p = chunk(ReduceKind::Sum, &[0], &[0], &[2], &u).unwrap();
        assert_eq!(finalize(ReduceKind::Sum, &[0], false, &p).unwrap(), Chunk::scalar(Scalar::U64(131070)));
    }

    #[test]
    fn keepdims_and_dropped_axes_shapes() {
        let a = Chunk::F64(random_array(&[2, 3, 4], 4));
        for (keepdims, shape) in [(true, vec![1, 3, 1]), (false, vec![3])] {
            for kind in [ReduceKind::Sum, ReduceKind::Mean, ReduceKind::Var { ddof: 0.0 }, ReduceKind::Max] {
                let p = chunk(kind, &[2, 0], &[0, 0, 0], &[2, 3, 4], &a).unwrap();
                assert_eq!(finalize(kind, &[0, 2], keepdims, &p).unwrap().shape(), &shape[..]);
            }
        }
        let p = chunk(ReduceKind::ArgMin, &[1], &[0, 0, 0], &[2, 3, 4], &a).unwrap();
        assert_eq!(finalize(ReduceKind::ArgMin, &[1], false, &p).unwrap().shape(), &[2, 4]);
    }

    #[test]
    fn argmin_flat_index_is_global_across_blocks() {
        // 4 x 6 array, minimum -5 at (2, 4) and (3, 1) (flat 16 and 19): first wins.
        let mut a = small_ints(&[4, 6], 11);
        a[[2, 4]] = -5.0;
        a[[3, 1]] = -5.0;
        a[[0, 5]] = 9.0;
        a[[3, 0]] = 9.0;
        let chunks = vec![vec![3, 1], vec![2, 2, 2]];
        let c = Chunk::F64(a);
        for group in [2, 3] {
            assert_eq!(
                tree(ReduceKind::ArgMin, &c, &chunks, &[0, 1], group).unwrap().into_raw_vec_and_offset().0,
                vec![16.0]
            );
            assert_eq!(
                tree(ReduceKind::ArgMax, &c, &chunks, &[0, 1], group).unwrap().into_raw_vec_and_offset().0,
                vec![5.0]
            );
        }
        // One block in the middle of a larger array: index into the whole array.
        let block = Chunk::F64(ArrayD::from_shape_vec(IxDyn(&[2, 2]), vec![4.0, 3.0, 1.0, 2.0]).unwrap());
        let p = chunk(ReduceKind::ArgMin, &[0, 1], &[5, 7], &[10, 20], &block).unwrap();
        assert_eq!(finalize(ReduceKind::ArgMin, &[0, 1], false, &p).unwrap(), Chunk::scalar(Scalar::I64(6 * 20 + 7)));
        let p = chunk(ReduceKind::ArgMax, &[1], &[5, 7], &[10, 20], &block).unwrap();
        assert_eq!(
            finalize(ReduceKind::ArgMax, &[1], false, &p).unwrap().typed::<i64>().unwrap().as_slice().unwrap(),
            &[7, 8]
        );
    }

    #[test]
    fn nan_propagates_like_numpy() {
        let mut a = random_array(&[5, 4], 3);
        a[[1, 2]] = f64::NAN;
        a[[3, 2]] = f64::NAN;
        let chunks = vec![vec![2, 3], vec![3, 1]];
        for kind in KINDS {
            for axes in [&[0usize][..], &[1], &[0, 1]] {
                let want = reference(kind, &a, axes);
                let got = tree(kind, &Chunk::F64(a.clone()), &chunks, axes, 2).unwrap();
                assert_close(&got, &want, 1e-12, &format!("{kind:?} axes {axes:?}"));
            }
        }
        // np.argmin([1, nan, 0, nan]) == 1, np.max(...) is nan, np.any([nan]) is True
        let v = Chunk::F64(ArrayD::from_shape_vec(IxDyn(&[4]), vec![1.0, f64::NAN, 0.0, f64::NAN]).unwrap());
        let p = chunk(ReduceKind::ArgMin, &[0], &[0], &[4], &v).unwrap();
        assert_eq!(finalize(ReduceKind::ArgMin, &[0], false, &p).unwrap(), Chunk::scalar(Scalar::I64(1)));
        let p = chunk(ReduceKind::Max, &[0], &[0], &[4], &v).unwrap();
        assert!(finalize(ReduceKind::Max, &[0], false, &p).unwrap().first().unwrap().to_f64().is_nan());
        let nan = Chunk::F64(ArrayD::from_elem(IxDyn(&[1]), f64::NAN));
        let p = chunk(ReduceKind::Any, &[0], &[0], &[1], &nan).unwrap();
        assert_eq!(finalize(ReduceKind::Any, &[0], false, &p).unwrap(), Chunk::scalar(Scalar::Bool(true)));
    }

    #[test]
    fn ddof_at_or_above_count_gives_nan() {
        let a = Chunk::F64(ArrayD::from_elem(IxDyn(&[2]), 3.0));
        for ddof in [2.0, 5.0] {
            let p = chunk(ReduceKind::Var { ddof }, &[0], &[0], &[2], &a).unwrap();
            assert!(finalize(ReduceKind::Var { ddof }, &[0], false, &p).unwrap().first().unwrap().to_f64().is_nan());
        }
        let p = chunk(ReduceKind::Std { ddof: 1.0 }, &[0], &[0], &[2], &a).unwrap();
        assert_eq!(finalize(ReduceKind::Std { ddof: 1.0 }, &[0], false, &p).unwrap(), Chunk::scalar(Scalar::F64(0.0)));
    }

    #[test]
    fn empty_blocks() {
        let empty = Chunk::F64(ArrayD::zeros(IxDyn(&[0, 3])));
        let full = Chunk::F64(ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![1., 2., 3., 4., 5., 9.]).unwrap());
        for (kind, want) in [
            (ReduceKind::Sum, vec![5.0, 7.0, 12.0]),
            (ReduceKind::Mean, vec![2.5, 3.5, 6.0]),
            (ReduceKind::Var { ddof: 0.0 }, vec![2.25, 2.25, 9.0]),
        ] {
            let pe = chunk(kind, &[0], &[0, 0], &[2, 3], &empty).unwrap();
            let pf = chunk(kind, &[0], &[0, 0], &[2, 3], &full).unwrap();
            let got = finalize(kind, &[0], false, &combine(kind, &[&pe, &pf]).unwrap()).unwrap();
            assert_eq!(got.typed::<f64>().unwrap().as_slice().unwrap(), &want[..], "{kind:?}");
            let alone = finalize(kind, &[0], false, &pe).unwrap().cast(DType::F64).into_typed::<f64>().unwrap();
            assert_eq!(alone[[0]] == 0.0, kind == ReduceKind::Sum, "{kind:?} of nothing: {alone}");
        }
        for kind in [ReduceKind::Min, ReduceKind::ArgMax] {
            let err = chunk(kind, &[0], &[0, 0], &[2, 3], &empty).unwrap_err().to_string();
            assert!(err.contains("zero-size block (shape [0, 3])") && err.contains("no identity"), "{err}");
        }
        // Reducing a non-empty axis of an array with no elements gives an empty result.
        let p = chunk(ReduceKind::Max, &[1], &[0, 0], &[0, 3], &empty).unwrap();
        assert_eq!(finalize(ReduceKind::Max, &[1], false, &p).unwrap().shape(), &[0]);
        let p = chunk(ReduceKind::All, &[0], &[0, 0], &[0, 3], &empty).unwrap();
        assert_eq!(
            finalize(ReduceKind::All, &[0], false, &p).unwrap().typed::<bool>().unwrap().as_slice().unwrap(),
            &[true; 3]
        );
    }

    #[test]
    fn non_contiguous_input_gives_same_result() {
        let a = small_ints(&[4, 5, 3], 21);
        let t = a.clone().permuted_axes(IxDyn(&[2, 0, 1]));
        assert!(t.as_slice().is_none());
        for kind in KINDS {
            for axes in [&[0usize][..], &[2], &[0, 1, 2]] {
                let want = reference(kind, &t.as_standard_layout().into_owned(), axes);
                let got = tree(kind, &Chunk::F64(t.clone()), &[vec![3], vec![2, 2], vec![5]], axes, 2).unwrap();
                assert_close(&got, &want, 1e-12, &format!("{kind:?} axes {axes:?}"));
            }
        }
    }

    #[test]
    fn large_f64_sum_is_accurate() {
        let n = 1 << 22;
        let a =
            ArrayD::from_shape_vec(IxDyn(&[n]), uniform(7, n).into_iter().map(|v| v * 1e3 + 1e-3).collect()).unwrap();
        // Neumaier-compensated reference sum.
        let (mut s, mut c) = (0.0f64, 0.0f64);
        for &v in a.iter() {
            let t = s + v;
            c += if s.abs() >= v.abs() { (s - t) + v } else { (v - t) + s };
            s = t;
        }
        let want = s + c;
        let p = chunk(ReduceKind::Sum, &[0], &[0], &[n as u64], &Chunk::F64(a.clone())).unwrap();
        let got = finalize(ReduceKind::Sum, &[0], false, &p).unwrap().first().unwrap().to_f64();
        assert!(((got - want) / want).abs() < 1e-13, "sum {got} vs {want}");
        let p = chunk(ReduceKind::Var { ddof: 0.0 }, &[0], &[0], &[n as u64], &Chunk::F64(a.clone() + 1e9)).unwrap();
        let var = finalize(ReduceKind::Var { ddof: 0.0 }, &[0], false, &p).unwrap().first().unwrap().to_f64();
        let mean = want / n as f64;
        let ref_var = a.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
        assert!(((var - ref_var) / ref_var).abs() < 1e-9, "var {var} vs {ref_var}");
    }

    #[test]
    fn integer_sums_wrap_like_numpy() {
        let a = Chunk::I64(ArrayD::from_shape_vec(IxDyn(&[2]), vec![i64::MAX, 2]).unwrap());
        let p = chunk(ReduceKind::Sum, &[0], &[0], &[2], &a).unwrap();
        assert_eq!(finalize(ReduceKind::Sum, &[0], false, &p).unwrap(), Chunk::scalar(Scalar::I64(i64::MIN + 1)));
        let merged = combine(ReduceKind::Sum, &[&p, &p]).unwrap();
        assert_eq!(merged, Value::Chunk(Chunk::I64(ArrayD::from_elem(IxDyn(&[1]), 2))));
    }

    #[test]
    fn partials_without_dtype_tag_finalize_to_f64() {
        let sum = Value::Chunk(Chunk::F64(ArrayD::from_elem(IxDyn(&[1]), 3.0)));
        let p = Value::Tuple(vec![count_member(2.0), sum]);
        assert_eq!(finalize(ReduceKind::Mean, &[0], false, &p).unwrap(), Chunk::scalar(Scalar::F64(1.5)));
    }

    #[test]
    fn add_n_sums_same_shaped_chunks() {
        let h = |v: Vec<u64>| Chunk::U64(ArrayD::from_shape_vec(IxDyn(&[v.len()]), v).unwrap());
        let got = add_n(&[&h(vec![1, 2, 3]), &h(vec![10, 20, 30]), &h(vec![0, 0, u64::MAX])]).unwrap();
        assert_eq!(got, h(vec![11, 22, 32]));
        let f = Chunk::F64(ArrayD::from_elem(IxDyn(&[2, 2]), 0.5));
        assert_eq!(add_n(&[&f, &f]).unwrap(), Chunk::F64(ArrayD::from_elem(IxDyn(&[2, 2]), 1.0)));
        assert_eq!(add_n(&[&f]).unwrap(), f);
        // A transposed part (not in standard order) adds element by element too.
        let m = ArrayD::from_shape_vec(IxDyn(&[2, 2]), vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let (plain, transposed) = (Chunk::F64(m.clone()), Chunk::F64(m.clone().reversed_axes()));
        let expected = ArrayD::from_shape_vec(IxDyn(&[2, 2]), vec![2.0, 5.0, 5.0, 8.0]).unwrap();
        assert_eq!(add_n(&[&plain, &transposed]).unwrap(), Chunk::F64(expected.clone()));
        assert_eq!(add_n(&[&transposed, &plain]).unwrap(), Chunk::F64(expected));
        let err = add_n(&[&h(vec![1, 2]), &h(vec![1, 2, 3])]).unwrap_err().to_string();
        assert_eq!(err, "add_n: partials have different shapes [2] and [3]");
        let err = add_n(&[&h(vec![1, 2]), &f]).unwrap_err().to_string();
        assert_eq!(err, "add_n: expected a chunk of type uint64, found float64");
        assert_eq!(add_n(&[]).unwrap_err().to_string(), "add_n: needs at least one chunk");
    }

    #[test]
    fn errors_name_the_values() {
        let a = Chunk::F64(random_array(&[2, 3, 4], 1));
        let err = |r: Result<Value>| r.unwrap_err().to_string();
        assert_eq!(err(chunk(ReduceKind::Sum, &[3], &[], &[], &a)), "sum: axis 3 is out of range for a 3-d block");
        assert_eq!(err(chunk(ReduceKind::Max, &[1, 1], &[], &[], &a)), "max: axis 1 is repeated in axes [1, 1]");
        assert_eq!(
            err(chunk(ReduceKind::ArgMin, &[0, 2], &[0, 0, 0], &[2, 3, 4], &a)),
            "argmin: reduces either every axis or exactly one, got axes [0, 2] for a 3-d block"
        );
        assert_eq!(
            err(chunk(ReduceKind::ArgMax, &[0], &[0, 0], &[2, 3, 4], &a)),
            "argmax: block offset [0, 0] and array shape [2, 3, 4] must both have 3 entries"
        );
        assert_eq!(
            err(chunk(ReduceKind::ArgMax, &[0], &[1, 0, 0], &[2, 3, 4], &a)),
            "argmax: block of shape [2, 3, 4] at offset [1, 0, 0] does not fit in array shape [2, 3, 4]"
        );
        let s1 = chunk(ReduceKind::Sum, &[0], &[], &[], &a).unwrap();
        let s2 = chunk(ReduceKind::Sum, &[1], &[], &[], &a).unwrap();
        assert_eq!(
            err(combine(ReduceKind::Sum, &[&s1, &s2])),
            "sum: partials have different shapes [1, 3, 4] and [2, 1, 4]"
        );
        assert_eq!(err(combine(ReduceKind::Mean, &[])), "mean: combine needs at least one partial");
        let m = chunk(ReduceKind::Mean, &[0], &[], &[], &a).unwrap();
        assert_eq!(err(combine(ReduceKind::Var { ddof: 0.0 }, &[&m])), "var: expected a partial of 2 arrays, got 1");
        assert_eq!(err(combine(ReduceKind::Mean, &[&s1])), "mean: bad partial: value: expected a tuple, found chunk");
        let uncounted = Value::Tuple(vec![s1.clone(), s1.clone()]);
        assert_eq!(err(combine(ReduceKind::Mean, &[&uncounted])), "mean: a partial must start with its count");
        let bad_tag = Value::Tuple(vec![count_member(1.0), s1.clone(), Value::Json("float128".into())]);
        assert_eq!(err(combine(ReduceKind::Mean, &[&bad_tag])), "mean: bad dtype tag \"float128\" in partial");
        assert!(err(combine(ReduceKind::Any, &[&s1])).contains("expected partial data of type bool, found float64"));
        assert!(err(combine(ReduceKind::ArgMin, &[&s1])).starts_with("argmin: bad partial: "));
        assert_eq!(
            finalize(ReduceKind::Sum, &[1], false, &s1).unwrap_err().to_string(),
            "sum: reduced axis 1 of the partial has length 3, expected 1"
        );
        assert_eq!(
            finalize(ReduceKind::Sum, &[5], false, &s1).unwrap_err().to_string(),
            "sum: axis 5 is out of range for a 3-d partial"
        );
    }

    /// Chunk sizes from cut flags: a cut after position i when `cuts[i]`.
    fn sizes(cuts: &[bool]) -> Vec<usize> {
        let mut out = vec![1];
        for &c in cuts {
            if c {
                out.push(1);
            } else if let Some(last) = out.last_mut() {
                *last += 1;
            }
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]
        #[test]
        fn any_block_split_gives_the_whole_array_result(
            (shape, cuts, mask) in prop::collection::vec(1usize..6, 1..4).prop_flat_map(|shape| {
                let cuts: Vec<_> = shape.iter().map(|&n| prop::collection::vec(any::<bool>(), n - 1)).collect();
                let mask = prop::collection::vec(any::<bool>(), shape.len());
                (Just(shape), cuts, mask)
            }),
            kind in 0usize..KINDS.len(),
            seed in any::<u64>(),
            group in 2usize..4,
            dtype in prop::sample::select(vec![DType::F64, DType::F32, DType::I32, DType::U16, DType::Bool]),
        ) {
            let kind = KINDS[kind];
            let mut axes: Vec<usize> = mask.iter().enumerate().filter(|(_, m)| **m).map(|(d, _)| d).collect();
            if !valid_axes(kind, &axes, shape.len()) {
                axes = (0..shape.len()).collect();
            }
            let c = Chunk::F64(small_ints(&shape, seed)).cast(dtype);
            let chunks: Vec<Vec<usize>> = cuts.iter().map(|c| sizes(c)).collect();
            let got = tree(kind, &c, &chunks, &axes, group).unwrap();
            let whole = tree(kind, &c, &shape.iter().map(|&n| vec![n]).collect::<Vec<_>>(), &axes, group).unwrap();
            let want = reference(kind, &c.cast(DType::F64).into_typed::<f64>().unwrap(), &axes);
            let tol = if dtype == DType::F32 { 1e-6 } else { 1e-12 };
            assert_close(&got, &want, tol, &format!("{kind:?} axes {axes:?} chunks {chunks:?}"));
            assert_close(&whole, &want, tol, &format!("{kind:?} axes {axes:?} whole"));
        }
    }
}
