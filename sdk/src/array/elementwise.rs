//! Element-wise operations with NumPy broadcasting.
//!
//! Operands line up from their last axis; an axis of length one (or a missing leading
//! axis) is repeated to match the other operand. Blocks are paired up after the
//! operands are rechunked to a common chunking of every shared axis, so each output
//! block is one task over one block of each operand.

use super::chunks::unify;
use super::{Array, key_index};
use tessera_core::op::{ArrayOp, BinaryOp, UnaryOp};
use tessera_core::{DType, Element, Error, Key, Op, Result, Scalar, Task};

/// The right-hand side of a binary operation: another array or a scalar.
#[derive(Clone, Debug)]
pub enum Operand {
    /// An array (broadcast against the left-hand side).
    Array(Array),
    /// A single value.
    Scalar(Scalar),
}

impl From<&Array> for Operand {
    fn from(a: &Array) -> Self {
        Operand::Array(a.clone())
    }
}

impl From<Array> for Operand {
    fn from(a: Array) -> Self {
        Operand::Array(a)
    }
}

macro_rules! scalar_operands {
    ($($t:ty),*) => {
        $(impl From<$t> for Operand {
            fn from(v: $t) -> Self {
                Operand::Scalar(v.to_scalar())
            }
        })*
    };
}
scalar_operands!(bool, i8, i16, i32, i64, u8, u16, u32, u64, f32, f64);

impl From<Scalar> for Operand {
    fn from(s: Scalar) -> Self {
        Operand::Scalar(s)
    }
}

/// The broadcast shape of several shapes, or an error naming them.
fn broadcast_shape(op: &str, arrays: &[&Array]) -> Result<Vec<u64>> {
    let ndim = arrays.iter().map(|a| a.ndim()).max().unwrap_or(0);
    let mut out = vec![1u64; ndim];
    for a in arrays {
        let pad = ndim - a.ndim();
        for (i, &len) in a.shape().iter().enumerate() {
            let o = &mut out[pad + i];
            if *o == 1 {
                *o = len;
            } else if len != 1 && len != *o {
                let shapes: Vec<String> = arrays.iter().map(|a| format!("{:?} ({})", a.shape(), a.name())).collect();
                return Err(Error::invalid(
                    op,
                    format!("operands could not be broadcast together with shapes {}", shapes.join(" and ")),
                ));
            }
        }
    }
    Ok(out)
}

/// Builds one task per output block applying `op` to the matching blocks of `inputs`.
fn broadcast_blockwise(name: &str, op: ArrayOp, inputs: &[&Array], dtype: DType) -> Result<Array> {
    let shape = broadcast_shape(name, inputs)?;
    let ndim = shape.len();
    // Common chunks for every output axis, from the operands that are not broadcast.
    let mut chunks: Vec<Option<Vec<u64>>> = vec![None; ndim];
    for a in inputs {
        let pad = ndim - a.ndim();
        for (i, c) in a.chunks().iter().enumerate() {
            if a.shape()[i] == shape[pad + i] {
                let slot = &mut chunks[pad + i];
                *slot = Some(match slot.take() {
                    None => c.clone(),
                    Some(prev) => unify(&prev, c),
                });
            }
        }
    }
    let chunks: Vec<Vec<u64>> = chunks.into_iter().map(|c| c.unwrap_or_else(|| vec![1])).collect();
    let aligned: Vec<Array> = inputs
        .iter()
        .map(|a| {
            let pad = ndim - a.ndim();
            let target: Vec<Vec<u64>> = (0..a.ndim())
                .map(|i| if a.shape()[i] == shape[pad + i] { chunks[pad + i].clone() } else { a.chunks()[i].clone() })
                .collect();
            if target == a.chunks() { Ok((*a).clone()) } else { a.rechunk_to(target) }
        })
        .collect::<Result<_>>()?;
    let refs: Vec<&Array> = aligned.iter().collect();
    Array::blockwise_new(name, &refs, shape.clone(), chunks, dtype, |ix| {
        let deps: Vec<Key> = aligned
            .iter()
            .map(|a| {
                let pad = ndim - a.ndim();
                let index: Vec<usize> =
                    (0..a.ndim()).map(|i| if a.shape()[i] == shape[pad + i] { ix[pad + i] } else { 0 }).collect();
                Key::new(a.name(), key_index(&index))
            })
            .collect();
        Ok(Task::new(Op::Array(op.clone()), deps))
    })
}

/// `where(cond, x, y)`: elements of `x` where `cond` is true, else of `y`, broadcast.
/// A scalar branch takes the other branch's type (NumPy's rules for Python scalars).
pub fn where_(cond: &Array, x: impl Into<Operand>, y: impl Into<Operand>) -> Result<Array> {
    let (x, y) = (x.into(), y.into());
    let dtype = match (&x, &y) {
        (Operand::Array(a), Operand::Array(b)) => DType::promote(a.dtype(), b.dtype()),
        (Operand::Array(a), Operand::Scalar(s)) | (Operand::Scalar(s), Operand::Array(a)) => {
            DType::promote_scalar(a.dtype(), s.dtype())
        }
        (Operand::Scalar(a), Operand::Scalar(b)) => DType::promote(a.dtype(), b.dtype()),
    };
    let (x, y) = (x.into_array(dtype)?, y.into_array(dtype)?);
    broadcast_blockwise("where", ArrayOp::Where, &[cond, &x, &y], dtype)
}

impl Operand {
    /// The operand as an array (a scalar becomes a 0-d array of type `dtype`).
    fn into_array(self, dtype: DType) -> Result<Array> {
        match self {
            Operand::Array(a) => Ok(a),
            Operand::Scalar(s) => super::full(&[], &[], s, dtype),
        }
    }
}

impl Array {
    /// `self op other` element-wise, for any [`BinaryOp`].
    pub fn binary(&self, op: BinaryOp, other: impl Into<Operand>) -> Result<Array> {
        match other.into() {
            Operand::Array(b) => {
                let dtype = op.result_dtype(DType::promote(self.dtype, b.dtype));
                broadcast_blockwise(op.name(), ArrayOp::Binary(op), &[self, &b], dtype)
            }
            Operand::Scalar(scalar) => {
                let dtype = op.result_dtype(DType::promote_scalar(self.dtype, scalar.dtype()));
                let kernel = ArrayOp::BinaryScalar { op, scalar, scalar_first: false };
                broadcast_blockwise(op.name(), kernel, &[self], dtype)
            }
        }
    }

    /// `scalar op self` element-wise (e.g. `1 - x`).
    pub fn rbinary(&self, op: BinaryOp, scalar: impl Into<Scalar>) -> Result<Array> {
        let scalar = scalar.into();
        let dtype = op.result_dtype(DType::promote_scalar(self.dtype, scalar.dtype()));
        broadcast_blockwise(op.name(), ArrayOp::BinaryScalar { op, scalar, scalar_first: true }, &[self], dtype)
    }

    /// `op(self)` element-wise, for any [`UnaryOp`].
    pub fn unary(&self, op: UnaryOp) -> Result<Array> {
        let dtype = match op {
            UnaryOp::Sqrt | UnaryOp::Exp | UnaryOp::Log => {
                if self.dtype == DType::F32 {
                    DType::F32
                } else {
                    DType::F64
                }
            }
            UnaryOp::Not if self.dtype != DType::Bool => {
                return Err(Error::invalid(
                    "invert",
                    format!("array {} has dtype {}, not bool", self.name(), self.dtype),
                ));
            }
            UnaryOp::Neg if self.dtype == DType::Bool => {
                return Err(Error::invalid("neg", format!("array {} is boolean; use invert()", self.name())));
            }
            UnaryOp::AsType(d) => d,
            _ => self.dtype,
        };
        if op == UnaryOp::AsType(self.dtype) {
            return Ok(self.clone());
        }
        broadcast_blockwise(op.name(), ArrayOp::Unary(op), &[self], dtype)
    }
}

/// Generates Result-returning methods for binary operators.
macro_rules! binary_methods {
    ($($(#[$doc:meta])* $name:ident => $op:ident;)*) => {
        impl Array {
            $(
                $(#[$doc])*
                pub fn $name(&self, other: impl Into<Operand>) -> Result<Array> {
                    self.binary(BinaryOp::$op, other)
                }
            )*
        }
    };
}

binary_methods! {
    /// `self + other`.
    add => Add;
    /// `self - other`.
    sub => Sub;
    /// `self * other`.
    mul => Mul;
    /// `self / other` (true division: float result).
    div => Div;
    /// `self ** other`.
    pow => Pow;
    /// Element-wise maximum.
    maximum => Maximum;
    /// Element-wise minimum.
    minimum => Minimum;
    /// `self == other`.
    eq => Eq;
    /// `self != other`.
    ne => Ne;
    /// `self < other`.
    lt => Lt;
    /// `self <= other`.
    le => Le;
    /// `self > other`.
    gt => Gt;
    /// `self >= other`.
    ge => Ge;
    /// Logical and.
    and => And;
    /// Logical or.
    or => Or;
}

impl Array {
    /// `-self`.
    pub fn neg(&self) -> Result<Array> {
        self.unary(UnaryOp::Neg)
    }
    /// `|self|`.
    pub fn abs(&self) -> Result<Array> {
        self.unary(UnaryOp::Abs)
    }
    /// Square root.
    pub fn sqrt(&self) -> Result<Array> {
        self.unary(UnaryOp::Sqrt)
    }
    /// `e^self`.
    pub fn exp(&self) -> Result<Array> {
        self.unary(UnaryOp::Exp)
    }
    /// Natural logarithm.
    pub fn log(&self) -> Result<Array> {
        self.unary(UnaryOp::Log)
    }
    /// Logical not of a boolean array.
    pub fn invert(&self) -> Result<Array> {
        self.unary(UnaryOp::Not)
    }
    /// The array converted to `dtype` (NumPy's `astype`).
    pub fn astype(&self, dtype: DType) -> Result<Array> {
        self.unary(UnaryOp::AsType(dtype))
    }
    /// Values clamped to `[min, max]`; either bound may be omitted.
    pub fn clip(&self, min: Option<Scalar>, max: Option<Scalar>) -> Result<Array> {
        if let (Some(lo), Some(hi)) = (min, max)
            && lo.to_f64() > hi.to_f64()
        {
            return Err(Error::invalid("clip", format!("min {lo:?} is above max {hi:?} for array {}", self.name())));
        }
        self.unary(UnaryOp::Clip { min, max })
    }
}
