//! Native array kernels: the built-in operations of [`ArrayOp`], run on one block.
//!
//! Each submodule holds one family — creation, element-wise maths, structure
//! (transpose, slicing, assembling blocks), reductions and image filters — as plain
//! functions over [`Chunk`]s. [`run`] dispatches an [`ArrayOp`] to them; storage ops
//! are handled by [`crate::storage`].

pub mod create;
pub mod elementwise;
pub mod image;
pub mod reduce;
pub mod structure;

use tessera_core::op::ArrayOp;
use tessera_core::{Chunk, Error, Result, Value};

/// Runs a non-storage array kernel over its argument values.
pub fn run(op: &ArrayOp, args: &[&Value]) -> Result<Value> {
    let chunk = |i: usize| -> Result<&Chunk> {
        args.get(i)
            .ok_or_else(|| {
                Error::invalid(op.name(), format!("expected at least {} arguments, got {}", i + 1, args.len()))
            })?
            .as_chunk()
    };
    let chunks = || args.iter().map(|v| v.as_chunk()).collect::<Result<Vec<_>>>();
    Ok(match op {
        ArrayOp::Full { shape, value, dtype } => Chunk::full(shape, *value, *dtype).into(),
        ArrayOp::Arange { start, step, offset, len, dtype } => {
            create::arange(*start, *step, *offset, *len, *dtype).into()
        }
        ArrayOp::Random { dist, seed, array_shape, offset, shape, dtype } => {
            create::random(*dist, *seed, array_shape, offset, shape, *dtype)?.into()
        }
        ArrayOp::Unary(u) => elementwise::unary(*u, chunk(0)?)?.into(),
        ArrayOp::Binary(b) => elementwise::binary(*b, chunk(0)?, chunk(1)?)?.into(),
        ArrayOp::BinaryScalar { op, scalar, scalar_first } => {
            elementwise::binary_scalar(*op, chunk(0)?, *scalar, *scalar_first)?.into()
        }
        ArrayOp::Where => elementwise::where_(chunk(0)?, chunk(1)?, chunk(2)?)?.into(),
        ArrayOp::Transpose { axes } => structure::transpose(chunk(0)?, axes)?.into(),
        ArrayOp::Slice { slices, drop_axes } => structure::slice(chunk(0)?, slices, drop_axes)?.into(),
        ArrayOp::Assemble { grid, pieces } => structure::assemble(grid, pieces, &chunks()?)?.into(),
        ArrayOp::Pad { widths, mode } => structure::pad(chunk(0)?, widths, *mode)?.into(),
        ArrayOp::ExpandDims { axis } => structure::expand_dims(chunk(0)?, *axis)?.into(),
        ArrayOp::ReduceChunk { kind, axes, offset, array_shape } => {
            reduce::chunk(*kind, axes, offset, array_shape, chunk(0)?)?
        }
        ArrayOp::ReduceCombine { kind } => reduce::combine(*kind, args)?,
        ArrayOp::ReduceFinalize { kind, axes, keepdims } => {
            let first = args.first().ok_or_else(|| Error::invalid(op.name(), "expected one argument"))?;
            reduce::finalize(*kind, axes, *keepdims, first)?.into()
        }
        ArrayOp::AddN => reduce::add_n(&chunks()?)?.into(),
        ArrayOp::Histogram { bins, range } => image::histogram(chunk(0)?, *bins, *range)?.into(),
        ArrayOp::OtsuThreshold { range } => image::otsu_threshold(chunk(0)?, *range)?.into(),
        ArrayOp::GaussianFilter { sigma, truncate, window } => {
            image::gaussian_filter(chunk(0)?, sigma, *truncate, window.as_deref())?.into()
        }
        ArrayOp::ZarrRead { .. } | ArrayOp::ZarrWrite { .. } => {
            return Err(Error::invalid(op.name(), "storage operations run through the storage module"));
        }
    })
}
