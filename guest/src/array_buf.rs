//! [`ArrayBuf`]: a numeric array kept in the bytes that cross the component boundary,
//! taken as an argument or returned without a copy.

use crate::bindings::tessera::task::types::Ndarray;
use crate::{IntoValue, Number, WitValue};
use ndarray::{ArrayViewD, ArrayViewMutD};

/// An n-dimensional array of numbers kept in C order as the little-endian bytes that
/// cross the component boundary, so taking it as an argument or returning it copies
/// nothing. An [`ndarray::ArrayD`] argument or result instead copies its elements out
/// of or into bytes once, which for a large block costs a pass over memory and as much
/// memory again.
///
/// ```ignore
/// let mut out = ArrayBuf::<f32>::zeros(image.shape());
/// for (o, &v) in out.as_slice_mut().iter_mut().zip(image.iter()) {
///     *o = v.sqrt();
/// }
/// Ok(out)
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ArrayBuf<T: Number> {
    shape: Vec<usize>,
    bytes: Vec<u8>,
    _element: std::marker::PhantomData<T>,
}

impl<T: Number> ArrayBuf<T> {
    /// An array of `shape` filled with zeros.
    ///
    /// # Panics
    ///
    /// If the number of bytes overflows `usize`, or if the global allocator returns
    /// memory not aligned for `T` (the default one aligns every allocation to 16 bytes).
    pub fn zeros(shape: &[usize]) -> Self {
        let len = shape.iter().try_fold(T::SIZE, |acc, &n| acc.checked_mul(n));
        let len = len.unwrap_or_else(|| panic!("an array of {} with shape {shape:?} is too large", T::NAME));
        let buf = ArrayBuf { shape: shape.to_vec(), bytes: vec![0; len], _element: std::marker::PhantomData };
        assert!(
            T::cast(&buf.bytes).is_some(),
            "the allocator returned memory not aligned for {}; ArrayBuf needs an allocator that aligns \
             every allocation to at least 8 bytes",
            T::NAME
        );
        buf
    }

    /// The array of `shape` whose elements `bytes` holds (its length already checked),
    /// kept in place, or copied once if the bytes are not aligned for `T`.
    pub(crate) fn from_bytes(shape: Vec<usize>, bytes: Vec<u8>) -> Self {
        if T::cast(&bytes).is_some() {
            return ArrayBuf { shape, bytes, _element: std::marker::PhantomData };
        }
        let mut aligned = Self::zeros(&shape);
        aligned.bytes.copy_from_slice(&bytes);
        aligned
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The elements in C order.
    pub fn as_slice(&self) -> &[T] {
        T::cast(&self.bytes).expect("checked when the buffer was made")
    }

    /// The elements in C order, to fill in.
    pub fn as_slice_mut(&mut self) -> &mut [T] {
        T::cast_mut(&mut self.bytes).expect("checked when the buffer was made")
    }

    /// The array as an ndarray view.
    pub fn view(&self) -> ArrayViewD<'_, T> {
        ArrayViewD::from_shape(self.shape.as_slice(), self.as_slice()).expect("the bytes hold the whole shape")
    }

    /// The array as a mutable ndarray view.
    pub fn view_mut(&mut self) -> ArrayViewMutD<'_, T> {
        let elements = T::cast_mut(&mut self.bytes).expect("checked when the buffer was made");
        ArrayViewMutD::from_shape(self.shape.as_slice(), elements).expect("the bytes hold the whole shape")
    }
}

impl<T: Number> IntoValue for ArrayBuf<T> {
    fn into_value(self) -> WitValue {
        let shape = self.shape.iter().map(|&n| n as u64).collect();
        WitValue::Array(Ndarray { dtype: T::DTYPE, shape, data: self.bytes })
    }
}
