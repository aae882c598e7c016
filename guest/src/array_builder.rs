//! [`ArrayBuilder`]: an array result written part by part into an array the host
//! assembles (the contract's `array-builder`).

use crate::bindings::tessera::task::types::ArrayBuilder as HostArray;
use crate::{Element, IntoValue, WitValue};

/// An array result the task writes a part at a time, in C order, straight into an
/// array the host assembles: the whole array is never held in the task's memory, nor
/// zero-filled first, nor copied out of it at the end. Each part is copied once, while
/// it is still in the cache. Return it once every element is written; the host fails
/// the task otherwise. All the builders of one task may hold at most its memory limit.
///
/// ```ignore
/// let mut out = ArrayBuilder::<f32>::new(&[planes, rows, cols])?;
/// let mut plane = vec![0.0; rows * cols];
/// for z in 0..planes {
///     smooth_plane(&image, z, &mut plane);
///     out.append(&plane)?;
/// }
/// Ok(out)
/// ```
#[derive(Debug)]
pub struct ArrayBuilder<T: Element> {
    host: HostArray,
    _element: std::marker::PhantomData<T>,
}

impl<T: Element> ArrayBuilder<T> {
    /// An empty array of `shape`; an error when the host refuses it (it would take the
    /// task past its memory limit, or the task already created 1024 builders).
    pub fn new(shape: &[usize]) -> Result<Self, String> {
        let shape: Vec<u64> = shape.iter().map(|&n| n as u64).collect();
        let host = HostArray::create(T::DTYPE, &shape)?;
        Ok(ArrayBuilder { host, _element: std::marker::PhantomData })
    }

    /// Appends `values` after the elements written so far; an error, appending
    /// nothing, when they would run past the array's end.
    pub fn append(&mut self, values: &[T]) -> Result<(), String> {
        self.host.append(&T::le_bytes(values))
    }
}

impl<T: Element> IntoValue for ArrayBuilder<T> {
    fn into_value(self) -> WitValue {
        WitValue::Built(self.host)
    }
}
