//! Rechunking: the same array cut into a different grid of blocks.
//!
//! Each output block is built from the input blocks it overlaps. One input block
//! covering it exactly is reused without copying ([`Op::Alias`]); one input block
//! covering more is sliced ([`ArrayOp::Slice`]); several are cut and glued by one
//! [`ArrayOp::Assemble`] task. When chunkings differ so much that a task would read more
//! than [`MAX_FAN_IN`] blocks (rows to columns, say), the plan goes through an
//! intermediate chunking whose blocks have the geometric mean of the old and new block
//! lengths per axis — like Dask's rechunk planner — so fan-in and memory stay bounded.
//!
//! [`unify_chunks`] rechunks several arrays to the common refinement of their chunks so
//! operations that pair blocks up (element-wise arithmetic, `stack`) find them aligned.

use super::chunks::{ChunkSize, offsets, regular, resolve, unify};
use super::{Array, block_indices};
use tessera_core::op::{ArrayOp, AxisSlice};
use tessera_core::{Error, Op, Result, Task};

/// The most input blocks one rechunk task reads before the planner goes through an
/// intermediate chunking.
const MAX_FAN_IN: usize = 64;

/// The part `start .. stop` of input block `block` along one axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Overlap {
    block: usize,
    start: usize,
    stop: usize,
}

/// For every block of `new`, the blocks of `old` it overlaps along one axis, in order.
fn overlaps(old: &[u64], new: &[u64]) -> Vec<Vec<Overlap>> {
    let old_starts = offsets(old);
    let mut first = 0;
    let mut out = Vec::with_capacity(new.len());
    for (lo, len) in offsets(new).into_iter().zip(new.iter().copied()) {
        let hi = lo + len;
        // Skip the old blocks that end at or before `lo`.
        while first < old.len() && old_starts[first] + old[first] <= lo {
            first += 1;
        }
        if len == 0 {
            // An empty block (of an empty axis) takes an empty piece of the block at `lo`.
            let block = first.min(old.len() - 1);
            let at = (lo - old_starts[block]) as usize;
            out.push(vec![Overlap { block, start: at, stop: at }]);
            continue;
        }
        let mut pieces = Vec::new();
        let mut block = first;
        while block < old.len() && old_starts[block] < hi {
            let (start, end) = (old_starts[block], old_starts[block] + old[block]);
            if end > start {
                let from = lo.max(start) - start;
                let to = hi.min(end) - start;
                pieces.push(Overlap { block, start: from as usize, stop: to as usize });
            }
            block += 1;
        }
        out.push(pieces);
    }
    out
}

/// The most input blocks any output block reads when rechunking `old` to `new` (the
/// per-axis maxima multiply, since the overlaps of each axis combine independently).
fn fan_in(old: &[Vec<u64>], new: &[Vec<u64>]) -> usize {
    old.iter()
        .zip(new)
        .map(|(o, n)| overlaps(o, n).iter().map(Vec::len).max().unwrap_or(1))
        .fold(1, usize::saturating_mul)
}

/// An intermediate chunking between `old` and `new`: axes that do not change keep their
/// chunks; the others get regular blocks of the geometric mean of the largest old and
/// new block lengths.
fn intermediate(shape: &[u64], old: &[Vec<u64>], new: &[Vec<u64>]) -> Vec<Vec<u64>> {
    shape
        .iter()
        .zip(old.iter().zip(new))
        .map(|(&len, (o, n))| {
            if o == n {
                return o.clone();
            }
            let a = o.iter().copied().max().unwrap_or(1) as f64;
            let b = n.iter().copied().max().unwrap_or(1) as f64;
            regular(len, (a * b).sqrt().round() as u64)
        })
        .collect()
}

impl Array {
    /// The array cut into blocks of the given per-axis sizes (a length, the whole axis,
    /// or `auto` for blocks of about [`AUTO_CHUNK_BYTES`](super::chunks::AUTO_CHUNK_BYTES)),
    /// as Dask's `rechunk`. The values do not change.
    pub fn rechunk(&self, sizes: &[ChunkSize]) -> Result<Array> {
        let chunks = resolve("rechunk", &self.shape, self.dtype, sizes).map_err(|e| match e {
            Error::Invalid { op, message } => Error::invalid(op, format!("array {}: {message}", self.name())),
            other => other,
        })?;
        self.rechunk_to(chunks)
    }

    /// The array cut into explicitly given blocks: `chunks[axis]` lists the block
    /// lengths along `axis`, which must add up to the axis length (an empty axis takes
    /// `[0]`). Returns `self` unchanged when the chunks already match.
    pub fn rechunk_to(&self, chunks: Vec<Vec<u64>>) -> Result<Array> {
        let fail = |why: String| {
            Err(Error::invalid(
                "rechunk",
                format!("cannot rechunk array {} of shape {:?} to chunks {chunks:?}: {why}", self.name(), self.shape),
            ))
        };
        if chunks.len() != self.ndim() {
            return fail(format!("{} chunk lists given for {} axes", chunks.len(), self.ndim()));
        }
        for (axis, (c, &len)) in chunks.iter().zip(&self.shape).enumerate() {
            let total: u64 = c.iter().sum();
            if total != len {
                return fail(format!("they cover {total} elements along axis {axis}"));
            }
            if c.is_empty() || (c.contains(&0) && c.as_slice() != [0]) {
                return fail(format!(
                    "axis {axis} needs blocks of at least one element (an empty axis takes the chunks [0])"
                ));
            }
        }
        if chunks == self.chunks {
            return Ok(self.clone());
        }
        let direct = fan_in(&self.chunks, &chunks);
        if direct > MAX_FAN_IN {
            let mid = intermediate(&self.shape, &self.chunks, &chunks);
            if mid != self.chunks && mid != chunks && fan_in(&self.chunks, &mid).max(fan_in(&mid, &chunks)) < direct {
                return self.rechunk_to(mid)?.rechunk_to(chunks);
            }
        }
        let plan: Vec<Vec<Vec<Overlap>>> = self.chunks.iter().zip(&chunks).map(|(o, n)| overlaps(o, n)).collect();
        let shape = self.shape.clone();
        Array::blockwise_new("rechunk", &[self], shape, chunks, self.dtype, |ix| {
            let pieces: Vec<&[Overlap]> = ix.iter().zip(&plan).map(|(&i, p)| p[i].as_slice()).collect();
            let grid: Vec<usize> = pieces.iter().map(|p| p.len()).collect();
            if let Some(single) = pieces.iter().map(|p| p.first().filter(|_| p.len() == 1)).collect::<Option<Vec<_>>>()
            {
                let src: Vec<usize> = single.iter().map(|o| o.block).collect();
                let whole = single.iter().zip(&self.chunks).all(|(o, c)| o.start == 0 && o.stop as u64 == c[o.block]);
                let op = if whole {
                    Op::Alias
                } else {
                    let slices = single.iter().map(|o| AxisSlice { start: o.start, stop: o.stop, step: 1 }).collect();
                    Op::Array(ArrayOp::Slice { slices, drop_axes: vec![] })
                };
                return Ok(Task::new(op, vec![self.key(&src)]));
            }
            let count = grid.iter().product();
            let mut deps = Vec::with_capacity(count);
            let mut ranges = Vec::with_capacity(count);
            for g in block_indices(&grid) {
                let parts: Vec<&Overlap> = g.iter().zip(&pieces).map(|(&i, p)| &p[i]).collect();
                let src: Vec<usize> = parts.iter().map(|o| o.block).collect();
                deps.push(self.key(&src));
                ranges.push(parts.iter().map(|o| (o.start, o.stop)).collect());
            }
            Ok(Task::new(Op::Array(ArrayOp::Assemble { grid, pieces: ranges }), deps))
        })
    }
}

/// Aligns the blocks of arrays that broadcast together (NumPy rules: shapes aligned
/// from the last axis; a length of 1 stretches to any length).
///
/// Returns the arrays, in order, each rechunked so that along every axis where it has
/// the full broadcast length its chunks are the common refinement of all such arrays'
/// chunks (axes of length 1 that are broadcast keep their single block), together with
/// the chunks of the broadcast result. Block `ix` of the result then pairs with block
/// `ix` of every input (block 0 along its broadcast axes, none along axes it lacks).
/// `op` names the calling operation in errors, which name the arrays and shapes that do
/// not broadcast.
pub(crate) fn unify_chunks(op: &str, arrays: &[&Array]) -> Result<(Vec<Array>, Vec<Vec<u64>>)> {
    let ndim = arrays.iter().map(|a| a.ndim()).max().unwrap_or(0);
    // Axis `d` of the result is axis `d - (ndim - a.ndim())` of `a`, when `a` has it.
    let axis_of = |a: &Array, d: usize| (d + a.ndim()).checked_sub(ndim);
    let mut chunks = Vec::with_capacity(ndim);
    for d in 0..ndim {
        let along: Vec<(&Array, usize)> = arrays.iter().filter_map(|a| axis_of(a, d).map(|ax| (*a, ax))).collect();
        let owner = along.iter().find(|(a, ax)| a.shape[*ax] != 1).or(along.first());
        let Some(&(owner, owner_axis)) = owner else {
            chunks.push(vec![1]);
            continue;
        };
        let len = owner.shape[owner_axis];
        let mut refined = owner.chunks[owner_axis].clone();
        for &(a, ax) in &along {
            if a.shape[ax] == len {
                refined = unify(&refined, &a.chunks[ax]);
            } else if a.shape[ax] != 1 {
                return Err(Error::invalid(
                    op,
                    format!(
                        "array {} of shape {:?} does not broadcast with array {} of shape {:?}: lengths {} and {len} \
                         differ along axis {d} of the result and neither is 1",
                        a.name(),
                        a.shape,
                        owner.name(),
                        owner.shape,
                        a.shape[ax]
                    ),
                ));
            }
        }
        chunks.push(refined);
    }
    let shape: Vec<u64> = chunks.iter().map(|c| c.iter().sum()).collect();
    let aligned = arrays
        .iter()
        .map(|a| {
            let target = (0..a.ndim())
                .map(|ax| {
                    let d = ax + ndim - a.ndim();
                    if a.shape[ax] == shape[d] { chunks[d].clone() } else { a.chunks[ax].clone() }
                })
                .collect();
            a.rechunk_to(target)
        })
        .collect::<Result<_>>()?;
    Ok((aligned, chunks))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlaps_cut_at_both_boundaries() {
        let o = |block, start, stop| Overlap { block, start, stop };
        assert_eq!(overlaps(&[4, 4, 2], &[5, 5]), vec![vec![o(0, 0, 4), o(1, 0, 1)], vec![o(1, 1, 4), o(2, 0, 2)]]);
        assert_eq!(overlaps(&[10], &[3, 7]), vec![vec![o(0, 0, 3)], vec![o(0, 3, 10)]]);
        assert_eq!(overlaps(&[0], &[0]), vec![vec![o(0, 0, 0)]]);
    }

    fn meta(shape: &[u64], chunks: &[&[u64]]) -> Array {
        let chunks = chunks.iter().map(|c| c.to_vec()).collect();
        Array::from_tasks(super::super::layer_name("t"), &[], vec![], shape.to_vec(), chunks, tessera_core::DType::F64)
    }

    #[test]
    fn unify_chunks_refines_shared_axes_and_keeps_broadcast_ones() {
        let a = meta(&[4, 6], &[&[2, 2], &[3, 3]]);
        let b = meta(&[6], &[&[2, 4]]);
        let c = meta(&[4, 1], &[&[1, 3], &[1]]);
        let (aligned, chunks) = unify_chunks("add", &[&a, &b, &c]).unwrap();
        assert_eq!(chunks, vec![vec![1, 1, 2], vec![2, 1, 3]]);
        assert_eq!(aligned[0].chunks(), &[vec![1, 1, 2], vec![2, 1, 3]]);
        assert_eq!(aligned[1].chunks(), &[vec![2, 1, 3]]);
        assert_eq!(aligned[2].chunks(), &[vec![1, 1, 2], vec![1]]);
        let d = meta(&[5], &[&[5]]);
        let msg = unify_chunks("add", &[&a, &d]).unwrap_err().to_string();
        assert!(msg.starts_with("add: ") && msg.contains(d.name()) && msg.contains("[4, 6]"), "{msg}");
    }

    #[test]
    fn rows_to_columns_goes_through_an_intermediate() {
        let rows = vec![vec![1; 1000], vec![1000]];
        let cols = vec![vec![1000], vec![1; 1000]];
        assert_eq!(fan_in(&rows, &cols), 1000);
        let mid = intermediate(&[1000, 1000], &rows, &cols);
        assert_eq!(mid[0][0], 32);
        assert!(fan_in(&rows, &mid) <= 64 && fan_in(&mid, &cols) <= 64);
    }
}
