//! Element types: the run-time [`DType`], the compile-time [`Element`] trait and
//! [`Scalar`] values, plus NumPy-style type promotion.

use crate::chunk::Chunk;
use ndarray::ArrayD;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The element type of an array, known at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    /// Boolean.
    Bool,
    /// Signed 8-bit integer.
    I8,
    /// Signed 16-bit integer.
    I16,
    /// Signed 32-bit integer.
    I32,
    /// Signed 64-bit integer.
    I64,
    /// Unsigned 8-bit integer.
    U8,
    /// Unsigned 16-bit integer.
    U16,
    /// Unsigned 32-bit integer.
    U32,
    /// Unsigned 64-bit integer.
    U64,
    /// 32-bit float.
    F32,
    /// 64-bit float.
    F64,
}

impl DType {
    /// Every dtype, in promotion-table order.
    pub const ALL: [DType; 11] = [
        DType::Bool,
        DType::I8,
        DType::I16,
        DType::I32,
        DType::I64,
        DType::U8,
        DType::U16,
        DType::U32,
        DType::U64,
        DType::F32,
        DType::F64,
    ];

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::Bool | DType::I8 | DType::U8 => 1,
            DType::I16 | DType::U16 => 2,
            DType::I32 | DType::U32 | DType::F32 => 4,
            DType::I64 | DType::U64 | DType::F64 => 8,
        }
    }

    /// True for f32 and f64.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }

    /// True for the signed and unsigned integer types.
    pub fn is_integer(self) -> bool {
        !self.is_float() && self != DType::Bool
    }

    /// True for the signed integer types.
    pub fn is_signed_integer(self) -> bool {
        matches!(self, DType::I8 | DType::I16 | DType::I32 | DType::I64)
    }

    /// The NumPy name of the type (`"uint16"`, `"float64"`, …), also used by Zarr v3.
    pub fn name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::I8 => "int8",
            DType::I16 => "int16",
            DType::I32 => "int32",
            DType::I64 => "int64",
            DType::U8 => "uint8",
            DType::U16 => "uint16",
            DType::U32 => "uint32",
            DType::U64 => "uint64",
            DType::F32 => "float32",
            DType::F64 => "float64",
        }
    }

    /// Parses a NumPy / Zarr v3 type name.
    pub fn from_name(name: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.name() == name)
    }

    /// The type of `a op b` for arrays of types `a` and `b`, following NumPy's rules.
    pub fn promote(a: DType, b: DType) -> DType {
        use DType::*;
        if a == b {
            return a;
        }
        match (a, b) {
            (Bool, x) | (x, Bool) => x,
            (F64, _) | (_, F64) => F64,
            (F32, x) | (x, F32) => {
                if x.size() <= 2 {
                    F32
                } else {
                    F64
                }
            }
            _ => {
                let (sa, sb) = (a.is_signed_integer(), b.is_signed_integer());
                if sa == sb {
                    if a.size() >= b.size() { a } else { b }
                } else {
                    let (signed, unsigned) = if sa { (a, b) } else { (b, a) };
                    if unsigned.size() < signed.size() {
                        signed
                    } else {
                        match unsigned.size() {
                            1 => I16,
                            2 => I32,
                            4 => I64,
                            _ => F64,
                        }
                    }
                }
            }
        }
    }

    /// The type of `array op scalar`: the array's type, unless the array holds integers
    /// or booleans and the scalar is a float, which gives float64 (NumPy 2 rules for
    /// Python scalars).
    pub fn promote_scalar(array: DType, scalar: DType) -> DType {
        if scalar.is_float() && !array.is_float() {
            DType::F64
        } else if array == DType::Bool && scalar != DType::Bool {
            DType::I64
        } else {
            array
        }
    }

    /// The type a sum or mean accumulates in: i64 for signed and booleans, u64 for
    /// unsigned, the float itself for floats (NumPy's `sum` rules).
    pub fn sum_type(self) -> DType {
        match self {
            DType::Bool | DType::I8 | DType::I16 | DType::I32 | DType::I64 => DType::I64,
            DType::U8 | DType::U16 | DType::U32 | DType::U64 => DType::U64,
            f => f,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Runs `$body` with the type alias `$T` set to the Rust type of a [`DType`].
#[macro_export]
macro_rules! with_dtype {
    ($dtype:expr, $T:ident => $body:expr) => {
        $crate::with_numeric_dtype!($dtype, $T => $body, bool => {
            type $T = bool;
            $body
        })
    };
}

/// Like [`with_dtype!`] for the numeric types; `Bool` runs `$bool_body` instead.
#[macro_export]
macro_rules! with_numeric_dtype {
    ($dtype:expr, $T:ident => $body:expr, bool => $bool_body:expr) => {
        match $dtype {
            $crate::DType::Bool => $bool_body,
            $crate::DType::I8 => {
                type $T = i8;
                $body
            }
            $crate::DType::I16 => {
                type $T = i16;
                $body
            }
            $crate::DType::I32 => {
                type $T = i32;
                $body
            }
            $crate::DType::I64 => {
                type $T = i64;
                $body
            }
            $crate::DType::U8 => {
                type $T = u8;
                $body
            }
            $crate::DType::U16 => {
                type $T = u16;
                $body
            }
            $crate::DType::U32 => {
                type $T = u32;
                $body
            }
            $crate::DType::U64 => {
                type $T = u64;
                $body
            }
            $crate::DType::F32 => {
                type $T = f32;
                $body
            }
            $crate::DType::F64 => {
                type $T = f64;
                $body
            }
        }
    };
}

/// A Rust type that can be an array element.
pub trait Element: Copy + Send + Sync + 'static + PartialOrd + PartialEq + Default + fmt::Debug + fmt::Display {
    /// The matching run-time type.
    const DTYPE: DType;
    /// Converts to f64 (booleans become 0 or 1).
    fn to_f64(self) -> f64;
    /// Converts from f64 as Rust's `as` does (saturating, truncating; non-zero is true).
    fn from_f64(v: f64) -> Self;
    /// Converts to a [`Scalar`].
    fn to_scalar(self) -> Scalar;
    /// Converts from any [`Scalar`] (as NumPy's `astype` would).
    fn from_scalar(s: Scalar) -> Self;
    /// Wraps an array of this type into a [`Chunk`].
    fn into_chunk(a: ArrayD<Self>) -> Chunk;
    /// Borrows the array inside `c` if it has this element type.
    fn view(c: &Chunk) -> Option<&ArrayD<Self>>;
    /// Takes the array out of `c` if it has this element type.
    fn take(c: Chunk) -> Option<ArrayD<Self>>;
}

/// One value of any element type.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum Scalar {
    Bool(bool),
    I8(i8),
    I16(i16),
    I32(i32),
    I64(i64),
    U8(u8),
    U16(u16),
    U32(u32),
    U64(u64),
    F32(f32),
    F64(f64),
}

impl Scalar {
    /// The element type of the value.
    pub fn dtype(self) -> DType {
        match self {
            Scalar::Bool(_) => DType::Bool,
            Scalar::I8(_) => DType::I8,
            Scalar::I16(_) => DType::I16,
            Scalar::I32(_) => DType::I32,
            Scalar::I64(_) => DType::I64,
            Scalar::U8(_) => DType::U8,
            Scalar::U16(_) => DType::U16,
            Scalar::U32(_) => DType::U32,
            Scalar::U64(_) => DType::U64,
            Scalar::F32(_) => DType::F32,
            Scalar::F64(_) => DType::F64,
        }
    }

    /// The value as f64.
    pub fn to_f64(self) -> f64 {
        match self {
            Scalar::Bool(v) => v.to_f64(),
            Scalar::I8(v) => v.to_f64(),
            Scalar::I16(v) => v.to_f64(),
            Scalar::I32(v) => v.to_f64(),
            Scalar::I64(v) => v.to_f64(),
            Scalar::U8(v) => v.to_f64(),
            Scalar::U16(v) => v.to_f64(),
            Scalar::U32(v) => v.to_f64(),
            Scalar::U64(v) => v.to_f64(),
            Scalar::F32(v) => v.to_f64(),
            Scalar::F64(v) => v,
        }
    }

    /// The value converted to `dtype`.
    pub fn cast(self, dtype: DType) -> Scalar {
        with_dtype!(dtype, T => T::from_scalar(self).to_scalar())
    }

    /// The value as element type `T`.
    pub fn get<T: Element>(self) -> T {
        T::from_scalar(self)
    }
}

macro_rules! impl_element {
    ($t:ty, $variant:ident, $to:expr, $from:expr, $conv:ident) => {
        impl From<$t> for Scalar {
            fn from(v: $t) -> Self {
                Scalar::$variant(v)
            }
        }

        impl Element for $t {
            const DTYPE: DType = DType::$variant;
            fn to_f64(self) -> f64 {
                ($to)(self)
            }
            fn from_f64(v: f64) -> Self {
                ($from)(v)
            }
            fn to_scalar(self) -> Scalar {
                Scalar::$variant(self)
            }
            fn from_scalar(s: Scalar) -> Self {
                match s {
                    Scalar::Bool(v) => $conv(v as u8),
                    Scalar::I8(v) => $conv(v),
                    Scalar::I16(v) => $conv(v),
                    Scalar::I32(v) => $conv(v),
                    Scalar::I64(v) => $conv(v),
                    Scalar::U8(v) => $conv(v),
                    Scalar::U16(v) => $conv(v),
                    Scalar::U32(v) => $conv(v),
                    Scalar::U64(v) => $conv(v),
                    Scalar::F32(v) => $conv(v),
                    Scalar::F64(v) => $conv(v),
                }
            }
            fn into_chunk(a: ArrayD<Self>) -> Chunk {
                Chunk::$variant(a)
            }
            fn view(c: &Chunk) -> Option<&ArrayD<Self>> {
                match c {
                    Chunk::$variant(a) => Some(a),
                    _ => None,
                }
            }
            fn take(c: Chunk) -> Option<ArrayD<Self>> {
                match c {
                    Chunk::$variant(a) => Some(a),
                    _ => None,
                }
            }
        }
    };
}

macro_rules! numeric_conv {
    ($name:ident, $t:ty) => {
        fn $name<V: num_traits::AsPrimitive<$t>>(v: V) -> $t {
            v.as_()
        }
    };
}
numeric_conv!(conv_i8, i8);
numeric_conv!(conv_i16, i16);
numeric_conv!(conv_i32, i32);
numeric_conv!(conv_i64, i64);
numeric_conv!(conv_u8, u8);
numeric_conv!(conv_u16, u16);
numeric_conv!(conv_u32, u32);
numeric_conv!(conv_u64, u64);
numeric_conv!(conv_f32, f32);
numeric_conv!(conv_f64, f64);

fn conv_bool<V: num_traits::AsPrimitive<f64>>(v: V) -> bool {
    v.as_() != 0.0
}

impl_element!(bool, Bool, |v: bool| v as u8 as f64, |v: f64| v != 0.0, conv_bool);
impl_element!(i8, I8, |v: i8| v as f64, |v: f64| v as i8, conv_i8);
impl_element!(i16, I16, |v: i16| v as f64, |v: f64| v as i16, conv_i16);
impl_element!(i32, I32, |v: i32| v as f64, |v: f64| v as i32, conv_i32);
impl_element!(i64, I64, |v: i64| v as f64, |v: f64| v as i64, conv_i64);
impl_element!(u8, U8, |v: u8| v as f64, |v: f64| v as u8, conv_u8);
impl_element!(u16, U16, |v: u16| v as f64, |v: f64| v as u16, conv_u16);
impl_element!(u32, U32, |v: u32| v as f64, |v: f64| v as u32, conv_u32);
impl_element!(u64, U64, |v: u64| v as f64, |v: f64| v as u64, conv_u64);
impl_element!(f32, F32, |v: f32| v as f64, |v: f64| v as f32, conv_f32);
impl_element!(f64, F64, |v: f64| v, |v: f64| v, conv_f64);

#[cfg(test)]
mod tests {
    use super::*;
    use DType::*;

    #[test]
    fn promotion_follows_numpy() {
        assert_eq!(DType::promote(U8, I8), I16);
        assert_eq!(DType::promote(U16, I32), I32);
        assert_eq!(DType::promote(U64, I64), F64);
        assert_eq!(DType::promote(I16, F32), F32);
        assert_eq!(DType::promote(I32, F32), F64);
        assert_eq!(DType::promote(Bool, U8), U8);
        assert_eq!(DType::promote_scalar(U16, F64), F64);
        assert_eq!(DType::promote_scalar(F32, F64), F32);
        assert_eq!(DType::promote_scalar(U8, I64), U8);
    }

    #[test]
    fn scalar_casts_like_as() {
        assert_eq!(Scalar::F64(3.9).cast(I32), Scalar::I32(3));
        assert_eq!(Scalar::F64(-1.0).cast(U8), Scalar::U8(0));
        assert_eq!(Scalar::I64(2).cast(Bool), Scalar::Bool(true));
        assert_eq!(Scalar::Bool(true).cast(F32), Scalar::F32(1.0));
    }
}
