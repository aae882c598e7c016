//! Chunk arithmetic: regular chunkings, block offsets, and `auto` / whole-axis sizes.

use tessera_core::{DType, Error, Result};

/// Target bytes of one block when a chunk size is [`ChunkSize::Auto`] (as Dask's
/// `array.chunk-size`).
pub const AUTO_CHUNK_BYTES: u64 = 128 * 1024 * 1024;

/// The requested block length along one axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkSize {
    /// Blocks of this many elements (the last one may be shorter).
    Size(u64),
    /// One block spanning the whole axis (Dask's `-1`).
    Whole,
    /// A size chosen so blocks hold about [`AUTO_CHUNK_BYTES`] (Dask's `"auto"`).
    Auto,
}

impl From<u64> for ChunkSize {
    fn from(n: u64) -> Self {
        ChunkSize::Size(n)
    }
}

/// Regular chunks of `size` over an axis of `len` (last block ragged); an empty axis
/// has one empty block.
pub(crate) fn regular(len: u64, size: u64) -> Vec<u64> {
    if len == 0 {
        return vec![0];
    }
    let size = size.clamp(1, len);
    let mut out = vec![size; (len / size) as usize];
    if !len.is_multiple_of(size) {
        out.push(len % size);
    }
    out
}

/// Regular chunks of `chunk_shape` over `shape`, checking both have one entry per axis
/// and no chunk length is zero.
pub(crate) fn normalize(op: &str, shape: &[u64], chunk_shape: &[u64]) -> Result<Vec<Vec<u64>>> {
    if shape.len() != chunk_shape.len() {
        return Err(Error::invalid(
            op,
            format!(
                "chunk shape {chunk_shape:?} has {} axes but the shape {shape:?} has {}",
                chunk_shape.len(),
                shape.len()
            ),
        ));
    }
    if chunk_shape.contains(&0) {
        return Err(Error::invalid(op, format!("chunk shape {chunk_shape:?} has a zero length")));
    }
    Ok(shape.iter().zip(chunk_shape).map(|(&len, &size)| regular(len, size)).collect())
}

/// Resolves per-axis [`ChunkSize`]s for an array of `shape` and `dtype`.
pub(crate) fn resolve(op: &str, shape: &[u64], dtype: DType, sizes: &[ChunkSize]) -> Result<Vec<Vec<u64>>> {
    if sizes.len() != shape.len() {
        return Err(Error::invalid(
            op,
            format!("{} chunk sizes given for an array with {} axes (shape {shape:?})", sizes.len(), shape.len()),
        ));
    }
    let fixed_elements: u64 = shape
        .iter()
        .zip(sizes)
        .map(|(&len, s)| match s {
            ChunkSize::Size(n) => (*n).min(len).max(1),
            ChunkSize::Whole => len.max(1),
            ChunkSize::Auto => 1,
        })
        .product();
    let n_auto = sizes.iter().filter(|s| **s == ChunkSize::Auto).count() as i32;
    let auto_len = if n_auto > 0 {
        let budget = (AUTO_CHUNK_BYTES / dtype.size() as u64 / fixed_elements.max(1)).max(1) as f64;
        (budget.powf(1.0 / n_auto as f64).floor() as u64).max(1)
    } else {
        1
    };
    shape
        .iter()
        .zip(sizes)
        .map(|(&len, s)| match s {
            ChunkSize::Size(0) => Err(Error::invalid(op, format!("chunk size 0 is not allowed (shape {shape:?})"))),
            ChunkSize::Size(n) => Ok(regular(len, *n)),
            ChunkSize::Whole => Ok(vec![len]),
            ChunkSize::Auto => Ok(regular(len, auto_len)),
        })
        .collect()
}

/// The start of every block along one axis.
pub(crate) fn offsets(chunks: &[u64]) -> Vec<u64> {
    let mut acc = 0;
    chunks
        .iter()
        .map(|c| {
            let start = acc;
            acc += c;
            start
        })
        .collect()
}

/// The common refinement of two chunkings of one axis: blocks split wherever either
/// has a boundary.
pub(crate) fn unify(a: &[u64], b: &[u64]) -> Vec<u64> {
    let mut bounds: Vec<u64> = offsets(a).into_iter().chain(offsets(b)).collect();
    let total: u64 = a.iter().sum();
    bounds.push(total);
    bounds.sort_unstable();
    bounds.dedup();
    let out: Vec<u64> = bounds.windows(2).map(|w| w[1] - w[0]).collect();
    if out.is_empty() { vec![0] } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_chunks_have_a_ragged_tail() {
        assert_eq!(regular(10, 4), vec![4, 4, 2]);
        assert_eq!(regular(8, 4), vec![4, 4]);
        assert_eq!(regular(3, 10), vec![3]);
        assert_eq!(regular(0, 5), vec![0]);
    }

    #[test]
    fn auto_and_whole_resolve() {
        let c = resolve("t", &[100, 1 << 20], DType::F64, &[ChunkSize::Whole, ChunkSize::Auto]).unwrap();
        assert_eq!(c[0], vec![100]);
        // 128 MiB / 8 bytes / 100 rows = 167772 columns per block.
        assert_eq!(c[1][0], 167_772);
        assert!(resolve("t", &[4], DType::F64, &[ChunkSize::Size(0)]).is_err());
        assert!(normalize("t", &[4, 4], &[2]).unwrap_err().to_string().contains("has 1 axes"));
    }

    #[test]
    fn unify_splits_at_every_boundary() {
        assert_eq!(unify(&[4, 4, 2], &[5, 5]), vec![4, 1, 3, 2]);
        assert_eq!(offsets(&[4, 1, 3]), vec![0, 4, 5]);
    }
}
