//! [`Chunk`]: one block of an array, an n-dimensional array of any [`DType`].

use crate::dtype::{DType, Element, Scalar};
use crate::error::{Error, Result};
use crate::layout::to_standard;
use ndarray::{ArrayD, IxDyn, Slice};
use std::ops::Range;

/// One block of a chunked array: an `ndarray` whose element type is known at run time.
/// It serialises as `(dtype, shape, bytes)` ([`chunk_bytes`](crate::chunk_bytes)).
///
/// Kernels usually dispatch once on the variant with [`chunk_map!`](crate::chunk_map)
/// and then run generic code over `ArrayD<T>`.
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs)]
pub enum Chunk {
    Bool(ArrayD<bool>),
    I8(ArrayD<i8>),
    I16(ArrayD<i16>),
    I32(ArrayD<i32>),
    I64(ArrayD<i64>),
    U8(ArrayD<u8>),
    U16(ArrayD<u16>),
    U32(ArrayD<u32>),
    U64(ArrayD<u64>),
    F32(ArrayD<f32>),
    F64(ArrayD<f64>),
}

/// Runs `$body` with `$a` bound to the typed array inside a [`Chunk`] (by reference or
/// by value, depending on how the chunk is passed) and `$T` aliased to its element type.
#[macro_export]
macro_rules! chunk_map {
    ($chunk:expr, $a:ident : $T:ident => $body:expr) => {
        $crate::chunk_map_numeric!($chunk, $a: $T => $body, bool => {
            #[allow(unused)]
            type $T = bool;
            $body
        })
    };
}

/// Like [`chunk_map!`] for numeric chunks; a `Bool` chunk runs `$bool_body` with `$a`
/// bound to the boolean array.
#[macro_export]
macro_rules! chunk_map_numeric {
    ($chunk:expr, $a:ident : $T:ident => $body:expr, bool => $bool_body:expr) => {
        match $chunk {
            $crate::Chunk::Bool($a) => $bool_body,
            $crate::Chunk::I8($a) => {
                #[allow(unused)]
                type $T = i8;
                $body
            }
            $crate::Chunk::I16($a) => {
                #[allow(unused)]
                type $T = i16;
                $body
            }
            $crate::Chunk::I32($a) => {
                #[allow(unused)]
                type $T = i32;
                $body
            }
            $crate::Chunk::I64($a) => {
                #[allow(unused)]
                type $T = i64;
                $body
            }
            $crate::Chunk::U8($a) => {
                #[allow(unused)]
                type $T = u8;
                $body
            }
            $crate::Chunk::U16($a) => {
                #[allow(unused)]
                type $T = u16;
                $body
            }
            $crate::Chunk::U32($a) => {
                #[allow(unused)]
                type $T = u32;
                $body
            }
            $crate::Chunk::U64($a) => {
                #[allow(unused)]
                type $T = u64;
                $body
            }
            $crate::Chunk::F32($a) => {
                #[allow(unused)]
                type $T = f32;
                $body
            }
            $crate::Chunk::F64($a) => {
                #[allow(unused)]
                type $T = f64;
                $body
            }
        }
    };
}

/// The values in nested brackets, as NumPy prints an array.
impl std::fmt::Display for Chunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        chunk_map!(self, a: T => std::fmt::Display::fmt(a, f))
    }
}

impl Chunk {
    /// The element type.
    pub fn dtype(&self) -> DType {
        chunk_map!(self, _a: T => T::DTYPE)
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        chunk_map!(self, a: T => a.shape())
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        chunk_map!(self, a: T => a.len())
    }

    /// True when the chunk has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of element data.
    pub fn nbytes(&self) -> usize {
        self.len() * self.dtype().size()
    }

    /// A chunk of `shape` filled with `value` (converted to `dtype`).
    pub fn full(shape: &[usize], value: Scalar, dtype: DType) -> Chunk {
        crate::with_dtype!(dtype, T => T::into_chunk(ArrayD::from_elem(IxDyn(shape), T::from_scalar(value))))
    }

    /// A zero-dimensional chunk holding `value`.
    pub fn scalar(value: Scalar) -> Chunk {
        Chunk::full(&[], value, value.dtype())
    }

    /// Wraps a typed array.
    pub fn from_array<T: Element>(a: ArrayD<T>) -> Chunk {
        T::into_chunk(a)
    }

    /// Borrows the typed array, or names the actual type in the error.
    pub fn typed<T: Element>(&self) -> Result<&ArrayD<T>> {
        T::view(self)
            .ok_or_else(|| Error::invalid("chunk", format!("expected {} data, found {}", T::DTYPE, self.dtype())))
    }

    /// Takes the typed array, or names the actual type in the error.
    pub fn into_typed<T: Element>(self) -> Result<ArrayD<T>> {
        let found = self.dtype();
        T::take(self).ok_or_else(|| Error::invalid("chunk", format!("expected {} data, found {found}", T::DTYPE)))
    }

    /// Converts every element to `dtype` (as NumPy's `astype`).
    pub fn cast(&self, dtype: DType) -> Chunk {
        if self.dtype() == dtype {
            return self.clone();
        }
        chunk_map!(self, a: S => crate::with_dtype!(dtype, D => D::into_chunk(a.mapv(|v| D::from_scalar(v.to_scalar())))))
    }

    /// Converts into `dtype`, reusing the buffer when the type already matches.
    pub fn into_dtype(self, dtype: DType) -> Chunk {
        if self.dtype() == dtype { self } else { self.cast(dtype) }
    }

    /// The part `window` (one index range per axis) of the chunk, as a new chunk in C
    /// order; an error when the window does not fit the shape.
    pub fn window(&self, window: &[Range<usize>]) -> Result<Chunk> {
        let shape = self.shape();
        let fits =
            window.len() == shape.len() && window.iter().zip(shape).all(|(w, &n)| w.start <= w.end && w.end <= n);
        if !fits {
            return Err(Error::invalid("chunk", format!("window {window:?} does not fit an array of shape {shape:?}")));
        }
        let cut = |axis: ndarray::AxisDescription| Slice::from(window[axis.axis.index()].clone());
        Ok(chunk_map!(self, a: T => T::into_chunk(to_standard(a.slice_each_axis(cut)))))
    }

    /// The single element of a chunk with one element.
    pub fn first(&self) -> Option<Scalar> {
        chunk_map!(self, a: T => a.iter().next().map(|v| v.to_scalar()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cast_converts_elements() {
        let c = Chunk::from_array(ndarray::arr1(&[1.5f64, -2.0, 300.0]).into_dyn());
        let u = c.cast(DType::U8);
        assert_eq!(u.typed::<u8>().unwrap().as_slice().unwrap(), &[1, 0, 255]);
        assert_eq!(c.nbytes(), 24);
        assert!(c.typed::<f32>().unwrap_err().to_string().contains("expected float32 data, found float64"));
    }

    #[test]
    fn a_window_is_that_slice_of_the_chunk_in_c_order() {
        let a = ndarray::Array2::from_shape_fn((5, 6), |(i, j)| (i * 10 + j) as f64).into_dyn();
        let want = a.slice(ndarray::s![1..4, 2..6]).to_owned().into_dyn();
        for dtype in DType::ALL {
            let chunk = Chunk::from_array(a.clone()).cast(dtype);
            let got = chunk.window(&[1..4, 2..6]).unwrap();
            assert_eq!(got, Chunk::from_array(want.clone()).cast(dtype), "{dtype}");
        }
        let transposed = Chunk::from_array(a.t().to_owned());
        let got = transposed.window(&[2..6, 1..4]).unwrap();
        assert_eq!(got, Chunk::from_array(want.t().as_standard_layout().into_owned()));
        let chunk = Chunk::from_array(a);
        let err = chunk.window(&[1..4, 2..7]).unwrap_err();
        assert!(err.to_string().contains("window [1..4, 2..7] does not fit an array of shape [5, 6]"), "{err}");
        assert!(chunk.window(&[1..4, 2..6, 0..1]).unwrap_err().to_string().contains("does not fit"));
    }
}
