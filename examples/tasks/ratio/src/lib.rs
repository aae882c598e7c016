//! Tasks over several arrays at once, for `blockwise`: a ratio image from three
//! co-registered channels, and one 2-D mask applied to every plane of a stack.

#![deny(unsafe_code)]

use tessera_guest::ndarray::Zip;
use tessera_guest::{AnyArray, ArrayD, task};

/// `(signal - background) / (reference - background)` element by element, in float64
/// (e.g. fluorescence over brightfield, both background-corrected). The three blocks
/// must have one shape; where `reference` equals `background` the result is NaN or
/// ±infinity, as in NumPy.
#[task]
fn ratio(signal: AnyArray, reference: AnyArray, background: AnyArray) -> Result<ArrayD<f64>, String> {
    if signal.shape() != reference.shape() || signal.shape() != background.shape() {
        return Err(format!(
            "blocks differ in shape: signal {:?}, reference {:?}, background {:?}",
            signal.shape(),
            reference.shape(),
            background.shape()
        ));
    }
    let mut out = signal.to_f64();
    Zip::from(&mut out)
        .and(&reference.to_f64())
        .and(&background.to_f64())
        .for_each(|s, &r, &b| *s = (*s - b) / (r - b));
    Ok(out)
}

/// Zeroes every value of `stack` (any dtype, shape `(…, y, x)`) where the 2-D `mask`
/// (shape `(y, x)`) is false: one mask applied to every plane.
#[task]
fn apply_mask(stack: AnyArray, mask: ArrayD<bool>) -> Result<AnyArray, String> {
    let plane = stack.shape().len().checked_sub(2).map(|n| &stack.shape()[n..]);
    if plane != Some(mask.shape()) {
        return Err(format!(
            "the mask's shape {:?} is not the last two axes of the stack's shape {:?}",
            mask.shape(),
            stack.shape()
        ));
    }
    let mask = mask.as_standard_layout();
    let mask = mask.as_slice().unwrap_or_default();
    Ok(match stack {
        AnyArray::Bool(a) => AnyArray::Bool(masked(a, mask, false)),
        AnyArray::I8(a) => AnyArray::I8(masked(a, mask, 0)),
        AnyArray::I16(a) => AnyArray::I16(masked(a, mask, 0)),
        AnyArray::I32(a) => AnyArray::I32(masked(a, mask, 0)),
        AnyArray::I64(a) => AnyArray::I64(masked(a, mask, 0)),
        AnyArray::U8(a) => AnyArray::U8(masked(a, mask, 0)),
        AnyArray::U16(a) => AnyArray::U16(masked(a, mask, 0)),
        AnyArray::U32(a) => AnyArray::U32(masked(a, mask, 0)),
        AnyArray::U64(a) => AnyArray::U64(masked(a, mask, 0)),
        AnyArray::F32(a) => AnyArray::F32(masked(a, mask, 0.0)),
        AnyArray::F64(a) => AnyArray::F64(masked(a, mask, 0.0)),
    })
}

/// `stack` with `zero` wherever the plane-shaped `mask` (C order) is false.
fn masked<T: Copy>(stack: ArrayD<T>, mask: &[bool], zero: T) -> ArrayD<T> {
    let mut stack = stack.as_standard_layout().into_owned();
    if let Some(values) = stack.as_slice_mut() {
        for (v, &keep) in values.iter_mut().zip(mask.iter().cycle()) {
            if !keep {
                *v = zero;
            }
        }
    }
    stack
}

tessera_guest::export_tasks!(ratio, apply_mask);
