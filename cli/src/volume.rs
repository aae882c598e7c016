//! The synthetic microscopy volume of the demo: cell-like bright blobs on noise.
//!
//! Blobs are anisotropic gaussians (narrower in z, as a confocal stack) at seeded
//! random positions; the background is gaussian noise around a dark offset. Each block
//! is rendered independently from the blob list, so the volume is generated in
//! parallel and is identical whatever its chunking.

use ndarray::{ArrayD, IxDyn};
use std::sync::Arc;
use tessera::array::{self, Array, BlockInfo};
use tessera::{Chunk, DType, Result, Scalar};

/// Mean background level of the noise.
const BACKGROUND: f64 = 100.0;
/// Standard deviation of the noise.
const NOISE: f64 = 12.0;
/// Voxels per blob, on average.
const VOXELS_PER_BLOB: u64 = 60_000;

/// One bright blob.
#[derive(Clone, Copy, Debug)]
struct Blob {
    center: [f64; 3],
    sigma: [f64; 3],
    amplitude: f64,
}

/// A small deterministic generator for the blob list (splitmix64).
struct SplitMix(u64);

impl SplitMix {
    fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next_f64()
    }
}

fn blobs(shape: [u64; 3], seed: u64) -> Vec<Blob> {
    let mut rng = SplitMix(seed);
    let count = (shape.iter().product::<u64>() / VOXELS_PER_BLOB).max(1);
    (0..count)
        .map(|_| Blob {
            center: [0, 1, 2].map(|a| rng.range(0.0, shape[a] as f64)),
            sigma: [rng.range(1.5, 3.0), rng.range(3.0, 7.0), rng.range(3.0, 7.0)],
            amplitude: rng.range(600.0, 2400.0),
        })
        .collect()
}

/// Renders the blobs that reach into one block, as float32.
fn render(blobs: &[Blob], info: &BlockInfo) -> Result<Chunk> {
    let shape = [info.shape[0], info.shape[1], info.shape[2]];
    let mut out = ArrayD::<f32>::zeros(IxDyn(&shape));
    let start: [f64; 3] = [0, 1, 2].map(|a| info.offset[a] as f64);
    for blob in blobs {
        // The blob's 3-sigma box, clipped to the block, in block coordinates.
        let mut lo = [0usize; 3];
        let mut hi = [0usize; 3];
        let mut empty = false;
        for a in 0..3 {
            let reach = 3.0 * blob.sigma[a];
            let l = (blob.center[a] - reach - start[a]).floor().max(0.0);
            let h = (blob.center[a] + reach - start[a]).ceil().min(shape[a] as f64);
            empty |= h <= l;
            lo[a] = l as usize;
            hi[a] = h.max(l) as usize;
        }
        if empty {
            continue;
        }
        let profile = |a: usize| -> Vec<f32> {
            (lo[a]..hi[a])
                .map(|i| {
                    let d = (start[a] + i as f64 - blob.center[a]) / blob.sigma[a];
                    (-0.5 * d * d).exp() as f32
                })
                .collect()
        };
        let (pz, py, px) = (profile(0), profile(1), profile(2));
        let amplitude = blob.amplitude as f32;
        for (z, wz) in pz.iter().enumerate() {
            for (y, wy) in py.iter().enumerate() {
                let w = amplitude * wz * wy;
                let mut row = out.slice_mut(ndarray::s![lo[0] + z, lo[1] + y, lo[2]..hi[2]]);
                for (v, wx) in row.iter_mut().zip(&px) {
                    *v += w * wx;
                }
            }
        }
    }
    Ok(Chunk::from_array(out))
}

/// The lazy synthetic volume: blobs plus noise, clipped and stored as uint16.
pub fn synthetic_volume(shape: [u64; 3], chunks: [u64; 3], seed: u64) -> Result<Array> {
    let blobs = Arc::new(blobs(shape, seed));
    let bright = array::from_blocks("blobs", &shape, &chunks, DType::F32, move |info| render(&blobs, info))?;
    let noise = array::random::normal(&shape, &chunks, BACKGROUND, NOISE, seed ^ 0x5EED)?;
    bright.add(&noise)?.clip(Some(Scalar::F64(0.0)), Some(Scalar::F64(65535.0)))?.astype(DType::U16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_render_bright_centres_over_noise() {
        let blob = Blob { center: [2.0, 5.0, 5.0], sigma: [1.0, 2.0, 2.0], amplitude: 1000.0 };
        let info = BlockInfo {
            index: [0, 0, 0].into(),
            offset: vec![0, 0, 0],
            shape: vec![4, 10, 10],
            array_shape: vec![4, 10, 10],
        };
        let chunk = render(&[blob], &info).unwrap();
        let a = chunk.typed::<f32>().unwrap();
        assert!((a[[2, 5, 5]] - 1000.0).abs() < 1e-3);
        let expected = 1000.0 * (-0.5f64 * (1.0 + 0.25)).exp();
        assert!((a[[1, 6, 5]] as f64 - expected).abs() < 1e-2);
        // Rendering the same blob from a block offset by (0, 5, 0) gives the same values.
        let shifted = BlockInfo {
            index: [0, 1, 0].into(),
            offset: vec![0, 5, 0],
            shape: vec![4, 5, 10],
            array_shape: vec![4, 10, 10],
        };
        let part = render(&[blob], &shifted).unwrap();
        assert_eq!(part.typed::<f32>().unwrap()[[2, 0, 5]], a[[2, 5, 5]]);
    }
}
