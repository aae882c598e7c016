//! Element-wise kernels with NumPy broadcasting and type promotion.
//!
//! Every kernel dispatches on the element type once and then runs monomorphic code
//! over `ndarray` views of any memory layout (transposed or broadcast inputs
//! included): operands stored in the same order run as one loop over their buffers,
//! long rows run row by row, and anything else goes through [`Zip`]. Operands are
//! converted only when their type differs from the type the operation computes in:
//!
//! * arithmetic (`add`, `sub`, `mul`, `pow`, `maximum`, `minimum`) computes in the
//!   promoted type, int64 for booleans; integers wrap on overflow;
//! * true division computes in the promoted type and yields float64 for integers and
//!   booleans;
//! * comparisons compute in the promoted type and yield booleans; `and` / `or` use the
//!   truthiness of each operand (NaN is true).
//!
//! With a scalar operand the type is [`DType::promote_scalar`]'s. An integer scalar
//! outside the range of an integer array's type makes comparisons constant (as
//! NumPy 2 does) and other operations an error, instead of silently wrapping.

use ndarray::{ArrayD, ArrayView1, ArrayView2, ArrayViewD, Ix2, IxDyn, Zip};
use std::borrow::Cow;
use std::cmp::Ordering;
use tessera_core::op::{BinaryOp, UnaryOp};
use tessera_core::{
    Chunk, DType, Element, Error, Result, Scalar, chunk_map, chunk_map_numeric, with_dtype, with_numeric_dtype,
};

/// `op(a)` element-wise.
///
/// `neg` wraps for integers and refuses booleans; `abs` wraps too (`abs(-128i8)` is
/// -128); `sqrt`, `exp` and `log` keep float32 and give float64 otherwise; `not`
/// takes booleans only; `clip` keeps the input type, with bounds converted to it
/// (integer bounds saturate, float bounds on integers round inwards).
pub fn unary(op: UnaryOp, a: &Chunk) -> Result<Chunk> {
    let name = op.name();
    match op {
        UnaryOp::Neg => chunk_map_numeric!(a, x: T => Ok(T::into_chunk(x.mapv(T::negate))), bool => {
            Err(Error::invalid(name, format!("cannot negate a bool chunk of shape {:?}; use invert (logical not)", x.shape())))
        }),
        UnaryOp::Abs => {
            chunk_map_numeric!(a, x: T => Ok(T::into_chunk(x.mapv(T::magnitude))), bool => Ok(Chunk::Bool(x.clone())))
        }
        UnaryOp::Sqrt => Ok(float_map(a, f32::sqrt, f64::sqrt)),
        UnaryOp::Exp => Ok(float_map(a, f32::exp, f64::exp)),
        UnaryOp::Log => Ok(float_map(a, f32::ln, f64::ln)),
        UnaryOp::Not => match a {
            Chunk::Bool(x) => Ok(Chunk::Bool(x.mapv(|v| !v))),
            other => Err(Error::invalid(
                name,
                format!("logical not needs bool data, got {} (convert with astype or compare first)", other.dtype()),
            )),
        },
        UnaryOp::AsType(dtype) => Ok(a.cast(dtype)),
        UnaryOp::Clip { min, max } => clip(a, min, max),
    }
}

/// `a op b` element-wise with broadcasting.
pub fn binary(op: BinaryOp, a: &Chunk, b: &Chunk) -> Result<Chunk> {
    let shape = broadcast_shape(&[a.shape(), b.shape()]).map_err(|m| Error::invalid(op.name(), m))?;
    let promoted = DType::promote(a.dtype(), b.dtype());
    compute(op, Operands::Arrays(Cow::Borrowed(a), Cow::Borrowed(b), shape), promoted)
}

/// `a op s` (or `s op a` when `scalar_first`).
pub fn binary_scalar(op: BinaryOp, a: &Chunk, s: Scalar, scalar_first: bool) -> Result<Chunk> {
    // Logical operations only need the scalar's truthiness.
    let s = if matches!(op, BinaryOp::And | BinaryOp::Or) { Scalar::Bool(s.to_f64() != 0.0) } else { s };
    let promoted = DType::promote_scalar(a.dtype(), s.dtype());
    let dtype = compute_dtype(op, promoted);
    if let Some((value, side)) = scalar_outside(s, dtype) {
        // `side` orders the scalar against every value of the array.
        let lhs_vs_rhs = if scalar_first { side } else { side.reverse() };
        let constant = match op {
            BinaryOp::Eq => false,
            BinaryOp::Ne => true,
            BinaryOp::Lt | BinaryOp::Le => lhs_vs_rhs == Ordering::Less,
            BinaryOp::Gt | BinaryOp::Ge => lhs_vs_rhs == Ordering::Greater,
            _ => {
                return Err(Error::invalid(
                    op.name(),
                    format!("scalar {value} is out of bounds for {dtype} (the array's type is {})", a.dtype()),
                ));
            }
        };
        return Ok(Chunk::Bool(ArrayD::from_elem(IxDyn(a.shape()), constant)));
    }
    compute(op, Operands::Scalar(Cow::Borrowed(a), s, scalar_first), promoted)
}

/// `where(cond, x, y)` with broadcasting.
///
/// `cond` may have any type (non-zero is true); `x` and `y` are promoted together.
pub fn where_(cond: &Chunk, x: &Chunk, y: &Chunk) -> Result<Chunk> {
    let shape = broadcast_shape(&[cond.shape(), x.shape(), y.shape()]).map_err(|m| Error::invalid("where", m))?;
    let dtype = DType::promote(x.dtype(), y.dtype());
    let cond = convert(Cow::Borrowed(cond), DType::Bool);
    let (x, y) = (convert(Cow::Borrowed(x), dtype), convert(Cow::Borrowed(y), dtype));
    let c = broadcast_view::<bool>(&cond, &shape)?;
    with_dtype!(dtype, T => {
        // A single-element branch (typically a scalar) is read once.
        let out = match (single::<T>(&x)?, single::<T>(&y)?) {
            (Some(x0), Some(y0)) => c.map(|&c| if c { x0 } else { y0 }),
            (None, Some(y0)) => zip2(&c, &broadcast_view::<T>(&x, &shape)?, |c, x| if c { x } else { y0 }),
            (Some(x0), None) => zip2(&c, &broadcast_view::<T>(&y, &shape)?, |c, y| if c { x0 } else { y }),
            (None, None) => {
                let (xv, yv) = (broadcast_view::<T>(&x, &shape)?, broadcast_view::<T>(&y, &shape)?);
                match (c.to_slice(), xv.to_slice(), yv.to_slice()) {
                    (Some(cs), Some(xs), Some(ys)) => {
                        let values = cs.iter().zip(xs).zip(ys).map(|((&c, &x), &y)| if c { x } else { y }).collect();
                        ArrayD::from_shape_vec(c.raw_dim(), values).map_err(|e| Error::invalid("where", e.to_string()))?
                    }
                    _ => Zip::from(&c).and(&xv).and(&yv).map_collect(|&c, &x, &y| if c { x } else { y }),
                }
            }
        };
        Ok(T::into_chunk(out))
    })
}

/// The value of a one-element chunk of type `T`, or `None` for other lengths.
fn single<T: Element>(c: &Chunk) -> Result<Option<T>> {
    let a = c.typed::<T>()?;
    Ok(if a.len() == 1 { a.first().copied() } else { None })
}

/// Rows at least this long go through the row-by-row path of [`zip2`].
const MIN_ROW: usize = 8;

/// One row (last-axis lane) of an operand of [`zip2`].
enum Row<'a, T> {
    /// Contiguous elements.
    Slice(&'a [T]),
    /// One value repeated (a broadcast row).
    Const(T),
    /// Anything else (strided or reversed).
    Other,
}

impl<'a, T: Copy> Row<'a, T> {
    /// Classifies a row.
    fn of(r: &ArrayView1<'a, T>) -> Self {
        match (r.to_slice(), r.first()) {
            (Some(s), _) => Row::Slice(s),
            (None, Some(&v)) if r.strides()[0] == 0 => Row::Const(v),
            _ => Row::Other,
        }
    }
}

/// `f(a, b)` for every element of two views of the same shape.
///
/// Operands that are both in C (or both in Fortran) order run as one loop over their
/// buffers; long rows run row by row, contiguous or broadcast rows as plain loops;
/// anything else goes through [`Zip`].
fn zip2<A: Copy, B: Copy, R>(a: &ArrayViewD<'_, A>, b: &ArrayViewD<'_, B>, f: impl Fn(A, B) -> R) -> ArrayD<R> {
    if let (Some(x), Some(y)) = (a.to_slice(), b.to_slice()) {
        let values = x.iter().zip(y).map(|(&x, &y)| f(x, y)).collect();
        if let Ok(out) = ArrayD::from_shape_vec(a.raw_dim(), values) {
            return out;
        }
    }
    let (at, bt) = (a.t(), b.t());
    if let (Some(x), Some(y)) = (at.to_slice(), bt.to_slice()) {
        let values = x.iter().zip(y).map(|(&x, &y)| f(x, y)).collect();
        if let Ok(out) = ArrayD::from_shape_vec(at.raw_dim(), values) {
            return out.reversed_axes();
        }
    }
    if let Some(out) = zip2_mixed(a, b, &f) {
        return out;
    }
    if a.shape().last().is_some_and(|&n| n >= MIN_ROW) {
        let mut values = Vec::with_capacity(a.len());
        for (ra, rb) in a.rows().into_iter().zip(b.rows()) {
            match (Row::of(&ra), Row::of(&rb)) {
                (Row::Slice(x), Row::Slice(y)) => values.extend(x.iter().zip(y).map(|(&x, &y)| f(x, y))),
                (Row::Slice(x), Row::Const(y)) => values.extend(x.iter().map(|&x| f(x, y))),
                (Row::Const(x), Row::Slice(y)) => values.extend(y.iter().map(|&y| f(x, y))),
                _ => values.extend(ra.iter().zip(rb.iter()).map(|(&x, &y)| f(x, y))),
            }
        }
        if let Ok(out) = ArrayD::from_shape_vec(a.raw_dim(), values) {
            return out;
        }
    }
    Zip::from(a).and(b).map_collect(|&x, &y| f(x, y))
}

/// Rows gathered at a time from the column-major operand by [`zip2_mixed`].
const BAND: usize = 16;

/// `f(a, b)` over 2-D operands of which one is row-contiguous and the other
/// column-contiguous (say a block of `x + x.T`), in C order. `BAND` rows of the
/// column-major operand are first gathered into a row-major buffer (each column read
/// as one short contiguous run), then every output row is a plain loop over two
/// contiguous rows. `None` for any other pair of layouts.
fn zip2_mixed<A: Copy, B: Copy, R>(
    a: &ArrayViewD<'_, A>,
    b: &ArrayViewD<'_, B>,
    f: &impl Fn(A, B) -> R,
) -> Option<ArrayD<R>> {
    let (a, b) = (a.view().into_dimensionality::<Ix2>().ok()?, b.view().into_dimensionality::<Ix2>().ok()?);
    let (m, n) = a.dim();
    let values = if a.strides()[1] == 1 && b.strides()[0] == 1 && m > 1 {
        rows_with_columns(&a, &b, f)?
    } else if b.strides()[1] == 1 && a.strides()[0] == 1 && m > 1 {
        rows_with_columns(&b, &a, |y, x| f(x, y))?
    } else {
        return None;
    };
    ArrayD::from_shape_vec(IxDyn(&[m, n]), values).ok()
}

/// The C-order values of `g(rows[i, j], columns[i, j])`, where `rows` has contiguous
/// rows and `columns` contiguous columns (see [`zip2_mixed`]).
fn rows_with_columns<X: Copy, Y: Copy, R>(
    rows: &ArrayView2<'_, X>,
    columns: &ArrayView2<'_, Y>,
    g: impl Fn(X, Y) -> R,
) -> Option<Vec<R>> {
    let (m, n) = rows.dim();
    let cols: Vec<&[Y]> = columns.columns().into_iter().map(|c| c.to_slice()).collect::<Option<_>>()?;
    let first = *cols.first()?.first()?;
    // Band rows are padded so that they do not sit a multiple of 4 KiB apart, which
    // would map the `BAND` stores of one column to the same cache set.
    let stride = n + 8;
    let mut band = vec![first; BAND.min(m) * stride];
    let mut out = Vec::with_capacity(m * n);
    for i0 in (0..m).step_by(BAND) {
        let h = BAND.min(m - i0);
        for (j, col) in cols.iter().enumerate() {
            for (r, &v) in col[i0..i0 + h].iter().enumerate() {
                band[r * stride + j] = v;
            }
        }
        for (r, gathered) in band.chunks_exact(stride).take(h).enumerate() {
            let row = rows.row(i0 + r);
            out.extend(row.to_slice()?.iter().zip(&gathered[..n]).map(|(&x, &y)| g(x, y)));
        }
    }
    Some(out)
}

/// The NumPy broadcast shape of `shapes`, or the error message naming them.
pub fn broadcast_shape(shapes: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
    let ndim = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![1usize; ndim];
    for shape in shapes {
        let pad = ndim - shape.len();
        for (i, &len) in shape.iter().enumerate() {
            let o = &mut out[pad + i];
            if *o == 1 {
                *o = len;
            } else if len != 1 && len != *o {
                let names: Vec<String> = shapes.iter().map(|s| format!("{s:?}")).collect();
                return Err(format!("operands could not be broadcast together with shapes {}", names.join(" and ")));
            }
        }
    }
    let elements = out.iter().filter(|&&n| n > 0).try_fold(1usize, |acc, &n| acc.checked_mul(n));
    if elements.is_none_or(|n| n > MAX_ELEMENTS) {
        return Err(format!("the broadcast shape {out:?} of shapes {shapes:?} is too large"));
    }
    Ok(out)
}

/// The most elements an output may have (so 8-byte elements stay below `isize::MAX` bytes).
const MAX_ELEMENTS: usize = isize::MAX as usize / 8;

/// A view of the typed array in `c` broadcast to `shape`.
fn broadcast_view<'a, T: Element>(c: &'a Chunk, shape: &[usize]) -> Result<ArrayViewD<'a, T>> {
    let a = c.typed::<T>()?;
    a.broadcast(IxDyn(shape))
        .ok_or_else(|| Error::invalid("broadcast", format!("cannot broadcast shape {:?} to {shape:?}", a.shape())))
}

/// `c` as `dtype`, borrowed when it already has that type.
fn convert(c: Cow<'_, Chunk>, dtype: DType) -> Cow<'_, Chunk> {
    if c.dtype() == dtype { c } else { Cow::Owned(c.cast(dtype)) }
}

/// The type a binary operation computes in, given the promoted operand type:
/// booleans go to int64 for arithmetic and float64 for division.
fn compute_dtype(op: BinaryOp, promoted: DType) -> DType {
    if promoted == DType::Bool { op.result_dtype(promoted) } else { promoted }
}

/// The operands of a binary kernel, before they are viewed as one element type.
enum Operands<'a> {
    /// Two arrays and their broadcast shape.
    Arrays(Cow<'a, Chunk>, Cow<'a, Chunk>, Vec<usize>),
    /// An array and a scalar; `true` when the scalar is the left operand.
    Scalar(Cow<'a, Chunk>, Scalar, bool),
}

impl Operands<'_> {
    /// The operands typed as `T`.
    fn pair<T: Element>(&self) -> Result<Pair<'_, T>> {
        Ok(match self {
            Operands::Arrays(a, b, shape) => Pair::Arrays(broadcast_view(a, shape)?, broadcast_view(b, shape)?),
            Operands::Scalar(a, s, first) => Pair::Scalar(a.typed::<T>()?.view(), s.get::<T>(), *first),
        })
    }
}

/// The operands of a binary kernel as views of one element type.
enum Pair<'a, T> {
    /// Two arrays already broadcast to the output shape.
    Arrays(ArrayViewD<'a, T>, ArrayViewD<'a, T>),
    /// An array and a scalar; `true` when the scalar is the left operand.
    Scalar(ArrayViewD<'a, T>, T, bool),
}

impl<T: Element> Pair<'_, T> {
    /// `f(left, right)` for every element.
    fn apply<R, F: Fn(T, T) -> R>(&self, f: F) -> ArrayD<R> {
        match self {
            Pair::Arrays(a, b) => zip2(a, b, f),
            Pair::Scalar(a, s, false) => {
                let s = *s;
                a.map(|&x| f(x, s))
            }
            Pair::Scalar(a, s, true) => {
                let s = *s;
                a.map(|&x| f(s, x))
            }
        }
    }

    /// True when `pred` holds for some value of the right operand.
    fn right_any(&self, pred: impl Fn(T) -> bool) -> bool {
        match self {
            Pair::Arrays(_, b) => b.iter().any(|&v| pred(v)),
            Pair::Scalar(_, s, false) => pred(*s),
            Pair::Scalar(a, _, true) => a.iter().any(|&v| pred(v)),
        }
    }
}

/// Converts the operands to the compute type and runs `op`.
fn compute(op: BinaryOp, operands: Operands<'_>, promoted: DType) -> Result<Chunk> {
    let dtype = compute_dtype(op, promoted);
    let operands = match operands {
        Operands::Arrays(a, b, shape) => Operands::Arrays(convert(a, dtype), convert(b, dtype), shape),
        Operands::Scalar(a, s, first) => Operands::Scalar(convert(a, dtype), s, first),
    };
    with_numeric_dtype!(dtype, T => numeric::<T>(op, &operands.pair::<T>()?), bool => boolean(op, &operands.pair::<bool>()?))
}

/// The NumPy `maximum`: the larger value, NaN if either is NaN.
fn maximum<T: PartialOrd + Copy>(x: T, y: T) -> T {
    if x >= y || is_nan(x) { x } else { y }
}

/// The NumPy `minimum`: the smaller value, NaN if either is NaN.
fn minimum<T: PartialOrd + Copy>(x: T, y: T) -> T {
    if x <= y || is_nan(x) { x } else { y }
}

/// True for a float NaN (never for integers or booleans).
fn is_nan<T: PartialOrd>(x: T) -> bool {
    x.partial_cmp(&x).is_none()
}

/// Element operations of the numeric types (integers wrap on overflow).
trait Num: Element {
    /// True for the signed integer types (whose exponents must be checked).
    const SIGNED_INT: bool;
    /// `self + o`.
    fn wadd(self, o: Self) -> Self;
    /// `self - o`.
    fn wsub(self, o: Self) -> Self;
    /// `self * o`.
    fn wmul(self, o: Self) -> Self;
    /// `self ** e` (`e` is non-negative for integers).
    fn power(self, e: Self) -> Self;
    /// True for a negative integer.
    fn is_negative(self) -> bool;
    /// `-self`.
    fn negate(self) -> Self;
    /// `|self|`.
    fn magnitude(self) -> Self;
    /// True when non-zero (NaN included).
    fn truthy(self) -> bool;
    /// True division of the pair: float64 for integers, the type itself for floats.
    fn true_div(p: &Pair<'_, Self>) -> Chunk;
}

macro_rules! impl_num_int {
    ($signed:expr, $is_negative:expr, $abs:expr; $($t:ty),*) => {$(
        impl Num for $t {
            const SIGNED_INT: bool = $signed;
            fn wadd(self, o: Self) -> Self {
                self.wrapping_add(o)
            }
            fn wsub(self, o: Self) -> Self {
                self.wrapping_sub(o)
            }
            fn wmul(self, o: Self) -> Self {
                self.wrapping_mul(o)
            }
            fn power(self, e: Self) -> Self {
                // Square-and-multiply over the exponent's bits, wrapping like NumPy.
                let (mut base, mut e, mut acc): (Self, u64, Self) = (self, e as u64, 1);
                while e > 0 {
                    if e & 1 == 1 {
                        acc = acc.wrapping_mul(base);
                    }
                    base = base.wrapping_mul(base);
                    e >>= 1;
                }
                acc
            }
            fn is_negative(self) -> bool {
                ($is_negative)(self)
            }
            fn negate(self) -> Self {
                self.wrapping_neg()
            }
            fn magnitude(self) -> Self {
                ($abs)(self)
            }
            fn truthy(self) -> bool {
                self != 0
            }
            fn true_div(p: &Pair<'_, Self>) -> Chunk {
                Chunk::F64(p.apply(|x, y| x as f64 / y as f64))
            }
        }
    )*};
}

impl_num_int!(true, |v: Self| v < 0, |v: Self| v.wrapping_abs(); i8, i16, i32, i64);
impl_num_int!(false, |_: Self| false, |v: Self| v; u8, u16, u32, u64);

macro_rules! impl_num_float {
    ($($t:ty),*) => {$(
        impl Num for $t {
            const SIGNED_INT: bool = false;
            fn wadd(self, o: Self) -> Self {
                self + o
            }
            fn wsub(self, o: Self) -> Self {
                self - o
            }
            fn wmul(self, o: Self) -> Self {
                self * o
            }
            fn power(self, e: Self) -> Self {
                self.powf(e)
            }
            fn is_negative(self) -> bool {
                false
            }
            fn negate(self) -> Self {
                -self
            }
            fn magnitude(self) -> Self {
                self.abs()
            }
            fn truthy(self) -> bool {
                self != 0.0
            }
            fn true_div(p: &Pair<'_, Self>) -> Chunk {
                <$t>::into_chunk(p.apply(|x, y| x / y))
            }
        }
    )*};
}

impl_num_float!(f32, f64);

/// `op` over numeric operands of one type.
fn numeric<T: Num>(op: BinaryOp, p: &Pair<'_, T>) -> Result<Chunk> {
    Ok(match op {
        BinaryOp::Add => T::into_chunk(p.apply(T::wadd)),
        BinaryOp::Sub => T::into_chunk(p.apply(T::wsub)),
        BinaryOp::Mul => T::into_chunk(p.apply(T::wmul)),
        BinaryOp::Div => T::true_div(p),
        BinaryOp::Pow => {
            if T::SIGNED_INT && p.right_any(T::is_negative) {
                return Err(Error::invalid(
                    op.name(),
                    format!("{} integers to negative integer powers are not allowed", T::DTYPE),
                ));
            }
            T::into_chunk(p.apply(T::power))
        }
        BinaryOp::Maximum => T::into_chunk(p.apply(maximum)),
        BinaryOp::Minimum => T::into_chunk(p.apply(minimum)),
        BinaryOp::Eq => Chunk::Bool(p.apply(|x, y| x == y)),
        BinaryOp::Ne => Chunk::Bool(p.apply(|x, y| x != y)),
        BinaryOp::Lt => Chunk::Bool(p.apply(|x, y| x < y)),
        BinaryOp::Le => Chunk::Bool(p.apply(|x, y| x <= y)),
        BinaryOp::Gt => Chunk::Bool(p.apply(|x, y| x > y)),
        BinaryOp::Ge => Chunk::Bool(p.apply(|x, y| x >= y)),
        BinaryOp::And => Chunk::Bool(p.apply(|x, y| x.truthy() && y.truthy())),
        BinaryOp::Or => Chunk::Bool(p.apply(|x, y| x.truthy() || y.truthy())),
    })
}

/// `op` over boolean operands (arithmetic never computes in bool: see [`compute_dtype`]).
fn boolean(op: BinaryOp, p: &Pair<'_, bool>) -> Result<Chunk> {
    Ok(Chunk::Bool(match op {
        BinaryOp::Maximum | BinaryOp::Or => p.apply(|x, y| x || y),
        BinaryOp::Minimum | BinaryOp::And => p.apply(|x, y| x && y),
        BinaryOp::Eq => p.apply(|x, y| x == y),
        BinaryOp::Ne => p.apply(|x, y| x != y),
        // false < true, written with logic operators.
        BinaryOp::Lt => p.apply(|x, y| !x & y),
        BinaryOp::Le => p.apply(|x, y| !x | y),
        BinaryOp::Gt => p.apply(|x, y| x & !y),
        BinaryOp::Ge => p.apply(|x, y| x | !y),
        BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Pow => {
            return Err(Error::invalid(op.name(), "boolean operands must be promoted to int64 or float64 first"));
        }
    }))
}

/// Maps a chunk through a float function: float32 stays float32, anything else is
/// computed in float64.
fn float_map(a: &Chunk, f32_fn: impl Fn(f32) -> f32, f64_fn: impl Fn(f64) -> f64) -> Chunk {
    match a {
        Chunk::F32(x) => Chunk::F32(x.mapv(f32_fn)),
        Chunk::F64(x) => Chunk::F64(x.mapv(f64_fn)),
        other => chunk_map!(other, x: T => Chunk::F64(x.mapv(|v| f64_fn(v.to_f64())))),
    }
}

/// `minimum(maximum(a, min), max)` in the type of `a` (NaN propagates, as in NumPy).
fn clip(a: &Chunk, min: Option<Scalar>, max: Option<Scalar>) -> Result<Chunk> {
    chunk_map!(a, x: T => {
        let lo = min.map(|s| clip_bound::<T>(s, true)).transpose()?;
        let hi = max.map(|s| clip_bound::<T>(s, false)).transpose()?;
        Ok(T::into_chunk(match (lo, hi) {
            (Some(lo), Some(hi)) => x.mapv(|v| minimum(maximum(v, lo), hi)),
            (Some(lo), None) => x.mapv(|v| maximum(v, lo)),
            (None, Some(hi)) => x.mapv(|v| minimum(v, hi)),
            (None, None) => x.clone(),
        }))
    })
}

/// A clip bound converted to `T`: integer bounds saturate to the type's range, float
/// bounds on integer data round inwards (up for the lower bound, down for the upper).
fn clip_bound<T: Element>(s: Scalar, lower: bool) -> Result<T> {
    let Some((min, max)) = int_range(T::DTYPE) else {
        return Ok(T::from_scalar(s));
    };
    if let Some(v) = scalar_int(s) {
        // Within an integer type's range, negative values fit int64 and others uint64.
        let v = v.clamp(min, max);
        return Ok(T::from_scalar(if v < 0 { Scalar::I64(v as i64) } else { Scalar::U64(v as u64) }));
    }
    let v = s.to_f64();
    if v.is_nan() {
        return Err(Error::invalid("clip", format!("a NaN bound cannot clip {} data", T::DTYPE)));
    }
    Ok(T::from_f64(if lower { v.ceil() } else { v.floor() }))
}

/// The value range of an integer type.
fn int_range(dtype: DType) -> Option<(i128, i128)> {
    Some(match dtype {
        DType::I8 => (i8::MIN.into(), i8::MAX.into()),
        DType::I16 => (i16::MIN.into(), i16::MAX.into()),
        DType::I32 => (i32::MIN.into(), i32::MAX.into()),
        DType::I64 => (i64::MIN.into(), i64::MAX.into()),
        DType::U8 => (0, u8::MAX.into()),
        DType::U16 => (0, u16::MAX.into()),
        DType::U32 => (0, u32::MAX.into()),
        DType::U64 => (0, u64::MAX.into()),
        DType::Bool | DType::F32 | DType::F64 => return None,
    })
}

/// The exact value of an integer or boolean scalar.
fn scalar_int(s: Scalar) -> Option<i128> {
    Some(match s {
        Scalar::Bool(v) => v.into(),
        Scalar::I8(v) => v.into(),
        Scalar::I16(v) => v.into(),
        Scalar::I32(v) => v.into(),
        Scalar::I64(v) => v.into(),
        Scalar::U8(v) => v.into(),
        Scalar::U16(v) => v.into(),
        Scalar::U32(v) => v.into(),
        Scalar::U64(v) => v.into(),
        Scalar::F32(_) | Scalar::F64(_) => return None,
    })
}

/// For an integer scalar that `dtype` (an integer type) cannot hold: its value and how
/// it orders against every value of the type.
fn scalar_outside(s: Scalar, dtype: DType) -> Option<(i128, Ordering)> {
    let (min, max) = int_range(dtype)?;
    let v = scalar_int(s)?;
    if v > max {
        Some((v, Ordering::Greater))
    } else if v < min {
        Some((v, Ordering::Less))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array, ArrayD, Dimension, ShapeBuilder, arr0, arr1, arr2};
    use proptest::prelude::*;

    fn chunk<T: Element, D: Dimension>(a: Array<T, D>) -> Chunk {
        Chunk::from_array(a.into_dyn())
    }

    fn values<T: Element>(c: &Chunk) -> Vec<T> {
        c.typed::<T>().unwrap().iter().copied().collect()
    }

    fn err(r: Result<Chunk>) -> String {
        r.unwrap_err().to_string()
    }

    /// Naive broadcasting by explicit index arithmetic (independent of Zip).
    fn naive_binary<T: Element, R>(a: &ArrayD<T>, b: &ArrayD<T>, f: impl Fn(T, T) -> R) -> ArrayD<R> {
        let ndim = a.ndim().max(b.ndim());
        let dim = |x: &ArrayD<T>, d: usize| if d + x.ndim() < ndim { 1 } else { x.shape()[d + x.ndim() - ndim] };
        let shape: Vec<usize> = (0..ndim).map(|d| dim(a, d).max(dim(b, d))).collect();
        let pick = |x: &ArrayD<T>, idx: &[usize]| -> T {
            let sub: Vec<usize> =
                (0..x.ndim()).map(|i| if x.shape()[i] == 1 { 0 } else { idx[ndim - x.ndim() + i] }).collect();
            x[IxDyn(&sub)]
        };
        ArrayD::from_shape_fn(IxDyn(&shape), |idx| f(pick(a, idx.slice()), pick(b, idx.slice())))
    }

    #[test]
    fn broadcast_column_by_row() {
        let a = arr2(&[[0i32], [10], [20]]).into_dyn();
        let b = arr2(&[[1i32, 2, 3, 4]]).into_dyn();
        let out = binary(BinaryOp::Add, &chunk(a), &chunk(b)).unwrap();
        let expected = arr2(&[[1i32, 2, 3, 4], [11, 12, 13, 14], [21, 22, 23, 24]]).into_dyn();
        assert_eq!(out.typed::<i32>().unwrap(), &expected);
    }

    #[test]
    fn broadcast_vector_against_3d() {
        let a = ArrayD::from_shape_fn(IxDyn(&[2, 3, 4]), |i| (i[0] * 100 + i[1] * 10 + i[2]) as f64);
        let b = arr1(&[0.5, 1.5, 2.5, 3.5]).into_dyn();
        let out = binary(BinaryOp::Sub, &chunk(a.clone()), &chunk(b.clone())).unwrap();
        let mut expected = Vec::new();
        for i in 0..2 {
            for j in 0..3 {
                for k in 0..4 {
                    expected.push((i * 100 + j * 10 + k) as f64 - (k as f64 + 0.5));
                }
            }
        }
        assert_eq!(out.shape(), &[2, 3, 4]);
        assert_eq!(values::<f64>(&out), expected);
        // And with the operands swapped.
        let out = binary(BinaryOp::Sub, &chunk(b), &chunk(a)).unwrap();
        assert_eq!(values::<f64>(&out), expected.iter().map(|v| -v).collect::<Vec<_>>());
    }

    #[test]
    fn mixed_layouts_gather_bands_of_rows() {
        // A C-order block plus a transposed one, with a ragged last band.
        let a = ArrayD::from_shape_fn(IxDyn(&[150, 130]), |i| (i[0] * 1000 + i[1]) as i64);
        let t = ArrayD::from_shape_fn(IxDyn(&[130, 150]), |i| (i[0] * 7 + i[1] * 3) as i64);
        let b = t.clone().reversed_axes();
        let out = binary(BinaryOp::Sub, &chunk(a.clone()), &chunk(b.clone())).unwrap();
        assert_eq!(out.typed::<i64>().unwrap(), &naive_binary(&a, &b.as_standard_layout().to_owned(), |x, y| x - y));
        // The transposed operand first.
        let out = binary(BinaryOp::Mul, &chunk(b.clone()), &chunk(a.clone().reversed_axes().reversed_axes())).unwrap();
        assert_eq!(out.typed::<i64>().unwrap(), &naive_binary(&b.to_owned(), &a, |x, y| x * y));
    }

    #[test]
    fn zero_d_operands() {
        let a = chunk(arr0(5i64));
        let b = chunk(arr1(&[1i64, 2, 3]));
        assert_eq!(values::<i64>(&binary(BinaryOp::Mul, &a, &b).unwrap()), vec![5, 10, 15]);
        let both = binary(BinaryOp::Sub, &a, &chunk(arr0(7i64))).unwrap();
        assert_eq!(both.shape(), &[] as &[usize]);
        assert_eq!(values::<i64>(&both), vec![-2]);
        let neg = unary(UnaryOp::Neg, &a).unwrap();
        assert_eq!(values::<i64>(&neg), vec![-5]);
    }

    #[test]
    fn empty_and_odd_shapes() {
        let a = chunk(ArrayD::<f32>::zeros(IxDyn(&[0, 3])));
        let b = chunk(arr1(&[1f32, 2., 3.]));
        let out = binary(BinaryOp::Add, &a, &b).unwrap();
        assert_eq!(out.shape(), &[0, 3]);
        let a = ArrayD::from_shape_fn(IxDyn(&[1, 5, 1, 3]), |i| (i[1] * 3 + i[3]) as u16);
        let b = ArrayD::from_shape_fn(IxDyn(&[7, 1]), |i| (i[0] * 9000) as u16);
        let out = binary(BinaryOp::Mul, &chunk(a.clone()), &chunk(b.clone())).unwrap();
        assert_eq!(out.shape(), &[1, 5, 7, 3]);
        assert_eq!(out.typed::<u16>().unwrap(), &naive_binary(&a, &b, |x, y| x.wrapping_mul(y)));
    }

    #[test]
    fn broadcast_errors_name_shapes() {
        let a = chunk(ArrayD::<f64>::zeros(IxDyn(&[3, 4])));
        let b = chunk(ArrayD::<f64>::zeros(IxDyn(&[5])));
        assert_eq!(
            err(binary(BinaryOp::Add, &a, &b)),
            "add: operands could not be broadcast together with shapes [3, 4] and [5]"
        );
        let c = chunk(ArrayD::<bool>::from_elem(IxDyn(&[2, 1]), true));
        // 2^20 x 2^20 x 2^20 one-byte elements do not fit in memory.
        let n = 1usize << 20;
        let axis = |d: usize| {
            let mut shape = [1, 1, 1];
            shape[d] = n;
            ArrayD::<u8>::zeros(IxDyn(&shape))
        };
        let e = err(where_(&chunk(axis(0).mapv(|v| v > 0)), &chunk(axis(1)), &chunk(axis(2))));
        assert!(e.contains("too large"), "{e}");
        let empty = binary(BinaryOp::Add, &chunk(ArrayD::<u8>::zeros(IxDyn(&[0, 1]))), &chunk(axis(2))).unwrap();
        assert_eq!(empty.shape(), &[1, 0, n]);
        let e = err(where_(&c, &a, &a));
        assert!(e.starts_with("where: operands could not be broadcast together with shapes [2, 1] and [3, 4]"), "{e}");
    }

    #[test]
    fn promotion_between_dtypes() {
        let u = chunk(arr1(&[200u8, 1]));
        let i = chunk(arr1(&[100i8, -2]));
        let out = binary(BinaryOp::Add, &u, &i).unwrap();
        assert_eq!(out.dtype(), DType::I16);
        assert_eq!(values::<i16>(&out), vec![300, -1]);
        let f = chunk(arr1(&[0.5f32, 0.25]));
        let s = chunk(arr1(&[2i16, 4]));
        let out = binary(BinaryOp::Mul, &f, &s).unwrap();
        assert_eq!(out.dtype(), DType::F32);
        assert_eq!(values::<f32>(&out), vec![1.0, 1.0]);
        let out = binary(BinaryOp::Add, &chunk(arr1(&[u64::MAX])), &chunk(arr1(&[-1i64]))).unwrap();
        assert_eq!(out.dtype(), DType::F64);
        assert_eq!(values::<f64>(&out), vec![u64::MAX as f64 - 1.0]);
    }

    #[test]
    fn division_is_true_division() {
        let a = chunk(arr1(&[7i32, -7, 1, 0]));
        let b = chunk(arr1(&[2i32, 2, 0, 0]));
        let out = binary(BinaryOp::Div, &a, &b).unwrap();
        assert_eq!(out.dtype(), DType::F64);
        let v = values::<f64>(&out);
        assert_eq!(&v[..3], &[3.5, -3.5, f64::INFINITY]);
        assert!(v[3].is_nan());
        let out = binary(BinaryOp::Div, &chunk(arr1(&[1f32])), &chunk(arr1(&[4f32]))).unwrap();
        assert_eq!(out.dtype(), DType::F32);
        assert_eq!(values::<f32>(&out), vec![0.25]);
        let out = binary(BinaryOp::Div, &chunk(arr1(&[true, false])), &chunk(arr1(&[true, true]))).unwrap();
        assert_eq!(values::<f64>(&out), vec![1.0, 0.0]);
        let out = binary_scalar(BinaryOp::Div, &chunk(arr1(&[2u8, 4])), Scalar::I64(1), true).unwrap();
        assert_eq!(values::<f64>(&out), vec![0.5, 0.25]);
    }

    #[test]
    fn booleans_promote_to_int64_for_arithmetic() {
        let t = chunk(arr1(&[true, true, false]));
        let f = chunk(arr1(&[true, false, false]));
        let out = binary(BinaryOp::Add, &t, &f).unwrap();
        assert_eq!(out.dtype(), DType::I64);
        assert_eq!(values::<i64>(&out), vec![2, 1, 0]);
        let out = binary(BinaryOp::Sub, &f, &t).unwrap();
        assert_eq!(values::<i64>(&out), vec![0, -1, 0]);
        let out = binary(BinaryOp::Maximum, &t, &f).unwrap();
        assert_eq!(values::<bool>(&out), vec![true, true, false]);
        let out = binary(BinaryOp::Minimum, &t, &f).unwrap();
        assert_eq!(values::<bool>(&out), vec![true, false, false]);
        let x = chunk(arr1(&[false, false, true, true]));
        let y = chunk(arr1(&[false, true, false, true]));
        let cmp = |op| values::<bool>(&binary(op, &x, &y).unwrap());
        assert_eq!(cmp(BinaryOp::Lt), vec![false, true, false, false]);
        assert_eq!(cmp(BinaryOp::Le), vec![true, true, false, true]);
        assert_eq!(cmp(BinaryOp::Gt), vec![false, false, true, false]);
        assert_eq!(cmp(BinaryOp::Ge), vec![true, false, true, true]);
        assert_eq!(cmp(BinaryOp::Eq), vec![true, false, false, true]);
        assert_eq!(cmp(BinaryOp::Ne), vec![false, true, true, false]);
        assert_eq!(cmp(BinaryOp::And), vec![false, false, false, true]);
        assert_eq!(cmp(BinaryOp::Or), vec![false, true, true, true]);
        let out = binary_scalar(BinaryOp::Add, &t, Scalar::Bool(true), false).unwrap();
        assert_eq!(values::<i64>(&out), vec![2, 2, 1]);
        let out = binary_scalar(BinaryOp::Mul, &t, Scalar::I64(3), false).unwrap();
        assert_eq!(values::<i64>(&out), vec![3, 3, 0]);
    }

    #[test]
    fn integer_arithmetic_wraps() {
        let a = chunk(arr1(&[127i8, -128, 100]));
        let b = chunk(arr1(&[1i8, 1, 2]));
        assert_eq!(values::<i8>(&binary(BinaryOp::Add, &a, &b).unwrap()), vec![-128, -127, 102]);
        assert_eq!(values::<i8>(&binary(BinaryOp::Sub, &b, &a).unwrap()), vec![-126, -127, -98]);
        assert_eq!(values::<i8>(&binary(BinaryOp::Mul, &a, &b).unwrap()), vec![127, -128, -56]);
        let u = chunk(arr1(&[0u8, 255]));
        assert_eq!(values::<u8>(&binary_scalar(BinaryOp::Sub, &u, Scalar::I64(1), false).unwrap()), vec![255, 254]);
        assert_eq!(values::<u8>(&binary_scalar(BinaryOp::Add, &u, Scalar::U8(1), false).unwrap()), vec![1, 0]);
    }

    #[test]
    fn integer_and_float_powers() {
        let base = chunk(arr1(&[2i64, 3, -2, 0, 2, -1]));
        let exp = chunk(arr1(&[10i64, 0, 3, 0, 64, 1_000_001]));
        assert_eq!(values::<i64>(&binary(BinaryOp::Pow, &base, &exp).unwrap()), vec![1024, 1, -8, 1, 0, -1]);
        let u = chunk(arr1(&[3u8, 2, 255]));
        assert_eq!(values::<u8>(&binary_scalar(BinaryOp::Pow, &u, Scalar::I64(5), false).unwrap()), vec![243, 32, 255]);
        // 3 ** 5 = 243 fits; 5 ** 4 = 625 wraps to 113 in uint8.
        let five = chunk(arr1(&[5u8]));
        assert_eq!(values::<u8>(&binary_scalar(BinaryOp::Pow, &five, Scalar::I64(4), false).unwrap()), vec![113]);
        let out = binary_scalar(BinaryOp::Pow, &chunk(arr1(&[0i32, 1, 3])), Scalar::I64(2), true).unwrap();
        assert_eq!(values::<i32>(&out), vec![1, 2, 8]);
        let e = err(binary(BinaryOp::Pow, &chunk(arr1(&[2i32, 2])), &chunk(arr1(&[1i32, -1]))));
        assert!(e.contains("negative integer powers"), "{e}");
        let e = err(binary_scalar(BinaryOp::Pow, &chunk(arr1(&[-1i16])), Scalar::I64(2), true));
        assert!(e.contains("negative integer powers"), "{e}");
        let f =
            binary(BinaryOp::Pow, &chunk(arr1(&[4f64, 2.0, -8.0])), &chunk(arr1(&[0.5f64, -1.0, 1.0 / 3.0]))).unwrap();
        let v = values::<f64>(&f);
        assert_eq!(&v[..2], &[2.0, 0.5]);
        assert!(v[2].is_nan());
        let out = binary_scalar(BinaryOp::Pow, &chunk(arr1(&[2i32])), Scalar::F64(0.5), false).unwrap();
        assert_eq!(out.dtype(), DType::F64);
        assert_eq!(values::<f64>(&out), vec![2f64.sqrt()]);
    }

    #[test]
    fn maximum_minimum_propagate_nan() {
        let a = chunk(arr1(&[1.0f64, f64::NAN, 3.0, f64::NAN, -0.5]));
        let b = chunk(arr1(&[2.0f64, 1.0, f64::NAN, f64::NAN, -1.5]));
        let mx = values::<f64>(&binary(BinaryOp::Maximum, &a, &b).unwrap());
        let mn = values::<f64>(&binary(BinaryOp::Minimum, &a, &b).unwrap());
        assert_eq!(mx[0], 2.0);
        assert_eq!(mn[0], 1.0);
        assert_eq!((mx[4], mn[4]), (-0.5, -1.5));
        assert!(mx[1..4].iter().all(|v| v.is_nan()));
        assert!(mn[1..4].iter().all(|v| v.is_nan()));
        let f = chunk(arr1(&[1.0f32, f32::NAN]));
        let out = binary_scalar(BinaryOp::Maximum, &f, Scalar::F64(f64::NAN), true).unwrap();
        assert!(values::<f32>(&out).iter().all(|v| v.is_nan()));
        let out = binary_scalar(BinaryOp::Minimum, &chunk(arr1(&[-3i16, 4])), Scalar::I64(0), false).unwrap();
        assert_eq!(values::<i16>(&out), vec![-3, 0]);
        let out = binary(BinaryOp::Maximum, &chunk(arr1(&[5u32, 1])), &chunk(arr1(&[2u32, 9]))).unwrap();
        assert_eq!(values::<u32>(&out), vec![5, 9]);
    }

    #[test]
    fn comparisons_and_nan() {
        let a = chunk(arr1(&[1.0f64, f64::NAN, 3.0]));
        let b = chunk(arr1(&[1.0f64, f64::NAN, 2.0]));
        let cmp = |op| values::<bool>(&binary(op, &a, &b).unwrap());
        assert_eq!(cmp(BinaryOp::Eq), vec![true, false, false]);
        assert_eq!(cmp(BinaryOp::Ne), vec![false, true, true]);
        assert_eq!(cmp(BinaryOp::Lt), vec![false, false, false]);
        assert_eq!(cmp(BinaryOp::Le), vec![true, false, false]);
        assert_eq!(cmp(BinaryOp::Gt), vec![false, false, true]);
        assert_eq!(cmp(BinaryOp::Ge), vec![true, false, true]);
        let out = binary(BinaryOp::Lt, &chunk(arr1(&[-1i8, 5])), &chunk(arr1(&[255u8, 4]))).unwrap();
        assert_eq!(values::<bool>(&out), vec![true, false]);
        let out = binary_scalar(BinaryOp::Gt, &chunk(arr1(&[1i32, 2, 3])), Scalar::F64(1.5), true).unwrap();
        assert_eq!(values::<bool>(&out), vec![true, false, false]);
    }

    #[test]
    fn logical_and_or_use_truthiness() {
        let a = chunk(arr1(&[0.0f64, f64::NAN, 2.0, 0.0]));
        let b = chunk(arr1(&[1i32, 0, 7, 0]));
        assert_eq!(values::<bool>(&binary(BinaryOp::And, &a, &b).unwrap()), vec![false, false, true, false]);
        assert_eq!(values::<bool>(&binary(BinaryOp::Or, &a, &b).unwrap()), vec![true, true, true, false]);
        let u = chunk(arr1(&[0u8, 3]));
        // 256 is out of range for uint8 but still true.
        assert_eq!(
            values::<bool>(&binary_scalar(BinaryOp::And, &u, Scalar::I64(256), false).unwrap()),
            vec![false, true]
        );
        assert_eq!(
            values::<bool>(&binary_scalar(BinaryOp::Or, &u, Scalar::F64(0.0), true).unwrap()),
            vec![false, true]
        );
    }

    #[test]
    fn out_of_range_scalars() {
        let u = chunk(arr1(&[0u8, 255]));
        assert_eq!(
            values::<bool>(&binary_scalar(BinaryOp::Lt, &u, Scalar::I64(300), false).unwrap()),
            vec![true, true]
        );
        assert_eq!(
            values::<bool>(&binary_scalar(BinaryOp::Lt, &u, Scalar::I64(300), true).unwrap()),
            vec![false, false]
        );
        assert_eq!(values::<bool>(&binary_scalar(BinaryOp::Ge, &u, Scalar::I64(-1), false).unwrap()), vec![true, true]);
        assert_eq!(
            values::<bool>(&binary_scalar(BinaryOp::Eq, &u, Scalar::I64(-1), false).unwrap()),
            vec![false, false]
        );
        assert_eq!(values::<bool>(&binary_scalar(BinaryOp::Ne, &u, Scalar::I64(-1), true).unwrap()), vec![true, true]);
        let e = err(binary_scalar(BinaryOp::Add, &u, Scalar::I64(300), false));
        assert_eq!(e, "add: scalar 300 is out of bounds for uint8 (the array's type is uint8)");
        let e = err(binary_scalar(BinaryOp::Mul, &chunk(arr1(&[1i64])), Scalar::U64(u64::MAX), false));
        assert!(e.contains("18446744073709551615") && e.contains("int64"), "{e}");
    }

    #[test]
    fn scalar_operand_order_and_float_promotion() {
        let a = chunk(arr1(&[1i32, 2, 3]));
        assert_eq!(values::<i32>(&binary_scalar(BinaryOp::Sub, &a, Scalar::I64(10), true).unwrap()), vec![9, 8, 7]);
        assert_eq!(values::<i32>(&binary_scalar(BinaryOp::Sub, &a, Scalar::I64(10), false).unwrap()), vec![-9, -8, -7]);
        let out = binary_scalar(BinaryOp::Add, &a, Scalar::F64(0.5), false).unwrap();
        assert_eq!(out.dtype(), DType::F64);
        assert_eq!(values::<f64>(&out), vec![1.5, 2.5, 3.5]);
        let f = chunk(arr1(&[1f32, 2.0]));
        let out = binary_scalar(BinaryOp::Mul, &f, Scalar::F64(0.5), false).unwrap();
        assert_eq!(out.dtype(), DType::F32);
        assert_eq!(values::<f32>(&out), vec![0.5, 1.0]);
        // A float32 array compares with a float scalar rounded to float32 (NumPy 2).
        let out = binary_scalar(BinaryOp::Eq, &chunk(arr1(&[0.1f32])), Scalar::F64(0.1), false).unwrap();
        assert_eq!(values::<bool>(&out), vec![true]);
    }

    #[test]
    fn every_dtype_family_adds_and_compares() {
        let base = chunk(arr1(&[0.0f64, 1.0, 2.0, 3.0]));
        for dtype in DType::ALL {
            let a = base.cast(dtype);
            let sum = binary(BinaryOp::Add, &a, &a).unwrap();
            let expected_dtype = if dtype == DType::Bool { DType::I64 } else { dtype };
            assert_eq!(sum.dtype(), expected_dtype, "{dtype}");
            let expected = if dtype == DType::Bool { vec![0.0, 2.0, 2.0, 2.0] } else { vec![0.0, 2.0, 4.0, 6.0] };
            assert_eq!(sum.cast(DType::F64).typed::<f64>().unwrap().as_slice().unwrap(), &expected[..], "{dtype}");
            let gt = binary_scalar(BinaryOp::Gt, &a, Scalar::I64(1), false).unwrap();
            let expected = if dtype == DType::Bool { vec![false; 4] } else { vec![false, false, true, true] };
            assert_eq!(values::<bool>(&gt), expected, "{dtype}");
            let same = binary(BinaryOp::Eq, &a, &a).unwrap();
            assert_eq!(values::<bool>(&same), vec![true; 4], "{dtype}");
        }
    }

    #[test]
    fn non_contiguous_inputs() {
        // A transposed view stored as an owned array with permuted strides.
        let base = ArrayD::from_shape_fn(IxDyn(&[3, 4]), |i| (i[0] * 4 + i[1]) as i64);
        let t = base.clone().permuted_axes(IxDyn(&[1, 0]));
        assert!(!t.is_standard_layout());
        let c = ArrayD::from_shape_fn(IxDyn(&[4, 3]), |i| (i[0] * 10 + i[1]) as i64);
        let out = binary(BinaryOp::Sub, &chunk(t.clone()), &chunk(c.clone())).unwrap();
        let expected = ArrayD::from_shape_fn(IxDyn(&[4, 3]), |i| (i[1] * 4 + i[0]) as i64 - (i[0] * 10 + i[1]) as i64);
        assert_eq!(out.typed::<i64>().unwrap(), &expected);
        let out = binary(BinaryOp::Add, &chunk(t.clone()), &chunk(t.clone())).unwrap();
        assert_eq!(out.typed::<i64>().unwrap(), &t.mapv(|v| 2 * v));
        let neg = unary(UnaryOp::Neg, &chunk(t.clone())).unwrap();
        assert_eq!(neg.typed::<i64>().unwrap()[IxDyn(&[3, 2])], -11);
        let sq = unary(UnaryOp::Sqrt, &chunk(t.clone())).unwrap();
        assert_eq!(sq.typed::<f64>().unwrap()[IxDyn(&[1, 2])], 9f64.sqrt());
        let mixed = binary(BinaryOp::Mul, &chunk(t.mapv(|v| v as f32)), &chunk(arr1(&[1i8, 2, 3]))).unwrap();
        assert_eq!(mixed.dtype(), DType::F32);
        assert_eq!(mixed.typed::<f32>().unwrap()[IxDyn(&[3, 2])], 33.0);
        let stepped = base.slice_each_axis(|_| ndarray::Slice::new(0, None, 2)).to_owned();
        let out = binary_scalar(BinaryOp::Mul, &chunk(stepped), Scalar::I64(2), false).unwrap();
        assert_eq!(values::<i64>(&out), vec![0, 4, 16, 20]);
    }

    #[test]
    fn layouts_and_long_rows() {
        // Rows of at least MIN_ROW elements take the row-by-row path; check every
        // combination of contiguous, broadcast, strided and reversed rows.
        let c = ArrayD::from_shape_fn(IxDyn(&[3, 10]), |i| (i[0] * 10 + i[1]) as i32);
        let f =
            ArrayD::from_shape_fn(IxDyn(&[10, 3]), |i| (i[0] * 7 + i[1] * 100) as i32).permuted_axes(IxDyn(&[1, 0]));
        let row = ArrayD::from_shape_fn(IxDyn(&[10]), |i| i[0] as i32 * 1000);
        let col = ArrayD::from_shape_fn(IxDyn(&[3, 1]), |i| -(i[0] as i32));
        let rev = c.slice_each_axis(|_| ndarray::Slice::new(0, None, -1)).to_owned();
        let rev_last =
            c.slice_each_axis(|d| ndarray::Slice::new(0, None, if d.axis.index() == 1 { -1 } else { 1 })).to_owned();
        assert!(rev.strides().iter().all(|&s| s < 0) && rev_last.strides()[1] < 0);
        let operands = [c, f, row, col, rev, rev_last];
        for a in &operands {
            for b in &operands {
                for op in [BinaryOp::Sub, BinaryOp::Gt] {
                    let out = binary(op, &chunk(a.clone()), &chunk(b.clone())).unwrap();
                    if op == BinaryOp::Sub {
                        assert_eq!(out.typed::<i32>().unwrap(), &naive_binary(a, b, |x, y| x - y), "{:?} {:?}", a, b);
                    } else {
                        assert_eq!(out.typed::<bool>().unwrap(), &naive_binary(a, b, |x, y| x > y), "{:?} {:?}", a, b);
                    }
                }
            }
        }
        // Both operands in Fortran order: the result keeps that order.
        let f2 = operands[1].mapv(|v| v + 1);
        let fortran = ArrayD::from_shape_fn(IxDyn(&[3, 10]).f(), |i| (i[0] + i[1]) as i32);
        let out = binary(BinaryOp::Mul, &chunk(fortran.clone()), &chunk(f2.clone())).unwrap();
        assert_eq!(out.typed::<i32>().unwrap(), &naive_binary(&fortran, &f2, |x, y| x * y));
    }

    #[test]
    fn unary_neg_abs() {
        assert_eq!(values::<i8>(&unary(UnaryOp::Neg, &chunk(arr1(&[1i8, -128, 0]))).unwrap()), vec![-1, -128, 0]);
        assert_eq!(values::<u8>(&unary(UnaryOp::Neg, &chunk(arr1(&[1u8, 0]))).unwrap()), vec![255, 0]);
        assert_eq!(values::<f32>(&unary(UnaryOp::Neg, &chunk(arr1(&[1.5f32]))).unwrap()), vec![-1.5]);
        let e = err(unary(UnaryOp::Neg, &chunk(arr1(&[true]))));
        assert!(e.starts_with("neg:") && e.contains("bool"), "{e}");
        assert_eq!(values::<i8>(&unary(UnaryOp::Abs, &chunk(arr1(&[-5i8, -128, 3]))).unwrap()), vec![5, -128, 3]);
        assert_eq!(values::<u16>(&unary(UnaryOp::Abs, &chunk(arr1(&[7u16]))).unwrap()), vec![7]);
        assert_eq!(values::<bool>(&unary(UnaryOp::Abs, &chunk(arr1(&[true, false]))).unwrap()), vec![true, false]);
        let abs = values::<f64>(&unary(UnaryOp::Abs, &chunk(arr1(&[-2.5f64, f64::NAN]))).unwrap());
        assert_eq!(abs[0], 2.5);
        assert!(abs[1].is_nan());
    }

    #[test]
    fn unary_float_functions() {
        let s = unary(UnaryOp::Sqrt, &chunk(arr1(&[4i32, 9]))).unwrap();
        assert_eq!(s.dtype(), DType::F64);
        assert_eq!(values::<f64>(&s), vec![2.0, 3.0]);
        let s = unary(UnaryOp::Sqrt, &chunk(arr1(&[16f32, -1.0]))).unwrap();
        assert_eq!(s.dtype(), DType::F32);
        let v = values::<f32>(&s);
        assert_eq!(v[0], 4.0);
        assert!(v[1].is_nan());
        let l = values::<f64>(&unary(UnaryOp::Log, &chunk(arr1(&[0u8, 1]))).unwrap());
        assert_eq!(l, vec![f64::NEG_INFINITY, 0.0]);
        let e = values::<f64>(&unary(UnaryOp::Exp, &chunk(arr1(&[true, false]))).unwrap());
        assert_eq!(e, vec![std::f64::consts::E, 1.0]);
    }

    #[test]
    fn unary_not_and_astype() {
        assert_eq!(values::<bool>(&unary(UnaryOp::Not, &chunk(arr1(&[true, false]))).unwrap()), vec![false, true]);
        let e = err(unary(UnaryOp::Not, &chunk(arr1(&[1i32]))));
        assert!(e.starts_with("invert:") && e.contains("int32"), "{e}");
        let c = unary(UnaryOp::AsType(DType::U8), &chunk(arr1(&[1.7f64, -1.0, 300.0]))).unwrap();
        assert_eq!(values::<u8>(&c), vec![1, 0, 255]);
    }

    #[test]
    fn clip_keeps_dtype() {
        let f = chunk(arr1(&[-2.0f64, 0.5, 9.0, f64::NAN]));
        let c = values::<f64>(
            &unary(UnaryOp::Clip { min: Some(Scalar::I64(0)), max: Some(Scalar::F64(1.0)) }, &f).unwrap(),
        );
        assert_eq!(&c[..3], &[0.0, 0.5, 1.0]);
        assert!(c[3].is_nan());
        let nan_bound = unary(UnaryOp::Clip { min: Some(Scalar::F64(f64::NAN)), max: None }, &f).unwrap();
        assert!(values::<f64>(&nan_bound).iter().all(|v| v.is_nan()));
        let i = chunk(arr1(&[-3i32, 1, 2, 7]));
        let c = unary(UnaryOp::Clip { min: Some(Scalar::F64(1.5)), max: Some(Scalar::F64(5.5)) }, &i).unwrap();
        assert_eq!(c.dtype(), DType::I32);
        assert_eq!(values::<i32>(&c), vec![2, 2, 2, 5]);
        let u = chunk(arr1(&[0u8, 128, 255]));
        let c = unary(UnaryOp::Clip { min: Some(Scalar::I64(-5)), max: Some(Scalar::I64(300)) }, &u).unwrap();
        assert_eq!(values::<u8>(&c), vec![0, 128, 255]);
        let c = unary(UnaryOp::Clip { min: None, max: Some(Scalar::I64(100)) }, &u).unwrap();
        assert_eq!(values::<u8>(&c), vec![0, 100, 100]);
        let c = unary(UnaryOp::Clip { min: None, max: None }, &u).unwrap();
        assert_eq!(values::<u8>(&c), vec![0, 128, 255]);
        let e = err(unary(UnaryOp::Clip { min: Some(Scalar::F64(f64::NAN)), max: None }, &u));
        assert!(e.contains("NaN") && e.contains("uint8"), "{e}");
        let b = chunk(arr1(&[true, false]));
        let c = unary(UnaryOp::Clip { min: Some(Scalar::Bool(true)), max: None }, &b).unwrap();
        assert_eq!(values::<bool>(&c), vec![true, true]);
    }

    #[test]
    fn where_broadcasts_three_ways_and_promotes() {
        let cond = chunk(arr2(&[[1.0f64], [0.0], [f64::NAN]]));
        let x = chunk(arr1(&[1i32, 2]));
        let y = chunk(arr0(0.5f32));
        let out = where_(&cond, &x, &y).unwrap();
        assert_eq!(out.dtype(), DType::F64);
        assert_eq!(out.shape(), &[3, 2]);
        assert_eq!(values::<f64>(&out), vec![1.0, 2.0, 0.5, 0.5, 1.0, 2.0]);
        let cond = chunk(arr1(&[true, false, true]));
        let same = chunk(arr1(&[7u8, 8, 9]));
        let out = where_(&cond, &same, &chunk(arr0(0u8))).unwrap();
        assert_eq!(out.dtype(), DType::U8);
        assert_eq!(values::<u8>(&out), vec![7, 0, 9]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn broadcasting_matches_naive_loops(
            a_shape in prop::collection::vec(1usize..4, 0..4),
            b_shape in prop::collection::vec(1usize..4, 0..4),
            ones in prop::collection::vec(any::<bool>(), 8),
            seed in 0i64..1000,
        ) {
            // Make the shapes compatible: trailing-aligned axes take the same length
            // unless one of them is turned into 1.
            let ndim = a_shape.len().max(b_shape.len());
            let full: Vec<usize> = (0..ndim).map(|d| {
                let a = (d + a_shape.len()).checked_sub(ndim).map(|i| a_shape[i]);
                a.unwrap_or_else(|| b_shape[d + b_shape.len() - ndim])
            }).collect();
            let a_shape: Vec<usize> = (0..a_shape.len()).map(|i| if ones[i] { 1 } else { full[ndim - a_shape.len() + i] }).collect();
            let b_shape: Vec<usize> = (0..b_shape.len()).map(|i| if ones[4 + i] { 1 } else { full[ndim - b_shape.len() + i] }).collect();
            let a = ArrayD::from_shape_fn(IxDyn(&a_shape), |i| i.slice().iter().fold(seed, |acc, &v| acc * 7 + v as i64));
            let b = ArrayD::from_shape_fn(IxDyn(&b_shape), |i| i.slice().iter().fold(-seed, |acc, &v| acc * 5 + v as i64));
            for op in [BinaryOp::Sub, BinaryOp::Maximum, BinaryOp::Lt] {
                let out = binary(op, &chunk(a.clone()), &chunk(b.clone())).unwrap();
                match op {
                    BinaryOp::Sub => prop_assert_eq!(out.typed::<i64>().unwrap(), &naive_binary(&a, &b, |x, y| x - y)),
                    BinaryOp::Maximum => prop_assert_eq!(out.typed::<i64>().unwrap(), &naive_binary(&a, &b, |x, y| x.max(y))),
                    _ => prop_assert_eq!(out.typed::<bool>().unwrap(), &naive_binary(&a, &b, |x, y| x < y)),
                }
            }
        }
    }
}
