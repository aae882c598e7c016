//! C-order copies of array views, fast for the layouts kernels meet: a view whose
//! rows are contiguous (a window of a larger block) is copied run by run, and a
//! transposed 2-D block tile by tile.

use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewD, Ix2};

/// Side of the square tiles in which [`to_standard`] transposes: a tile's rows and
/// its transposed rows both stay in L1.
const TILE: usize = 32;

/// A C-order copy of `view`, fast for the layouts kernels meet: rows contiguous in
/// memory are copied run by run, and a 2-D view whose columns are contiguous (a
/// transposed block, or a slice of one) is transposed tile by tile; anything else is
/// copied element by element.
pub fn to_standard<T: Copy>(view: ArrayViewD<'_, T>) -> ArrayD<T> {
    if let Ok(m) = view.view().into_dimensionality::<Ix2>() {
        let (rows, cols) = m.dim();
        if cols > 1 && m.strides()[1] != 1 && rows > 1 && m.strides()[0] == 1 {
            return transposed_rows(m.reversed_axes()).into_dyn();
        }
    }
    if view.ndim() > 0 {
        let mut values = Vec::with_capacity(view.len());
        for row in view.rows() {
            match row.to_slice() {
                Some(run) => values.extend_from_slice(run),
                None => values.extend(row.iter().copied()),
            }
        }
        if let Ok(out) = ArrayD::from_shape_vec(view.raw_dim(), values) {
            return out;
        }
    }
    view.as_standard_layout().into_owned()
}

/// The transpose of `src`, whose rows are contiguous, in C order: each output row of
/// a [`TILE`] × [`TILE`] tile is written contiguously from one column of the input
/// tile, whose rows stay in L1 while it is read.
fn transposed_rows<T: Copy>(src: ArrayView2<'_, T>) -> Array2<T> {
    let (rows, cols) = src.dim();
    let src_rows: Option<Vec<&[T]>> = (0..rows).map(|r| src.row(r).to_slice()).collect();
    let (Some(src_rows), Some(&first)) = (src_rows, src.iter().next()) else {
        return src.t().as_standard_layout().into_owned();
    };
    let mut out = vec![first; rows * cols];
    for r0 in (0..rows).step_by(TILE) {
        let tile_rows = &src_rows[r0..(r0 + TILE).min(rows)];
        for c0 in (0..cols).step_by(TILE) {
            for c in c0..(c0 + TILE).min(cols) {
                let out_run = &mut out[c * rows + r0..c * rows + r0 + tile_rows.len()];
                for (o, row) in out_run.iter_mut().zip(tile_rows) {
                    *o = row[c];
                }
            }
        }
    }
    Array2::from_shape_vec((cols, rows), out).unwrap_or_else(|_| src.t().to_owned())
}
