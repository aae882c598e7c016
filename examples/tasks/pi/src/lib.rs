//! The classic Monte-Carlo estimate of π: each `sample` task throws points at the unit
//! square with a generator seeded from its task context, counts those inside the
//! quarter circle, and `estimate` turns the counts into π.

#![deny(unsafe_code)]

use serde::Deserialize;
use tessera_guest::ndarray::{Array0, arr0};
use tessera_guest::{Context, task};

/// Parameters shared by both tasks.
#[derive(Deserialize)]
struct Params {
    /// Points per `sample` task.
    samples: u64,
}

/// SplitMix64: a small, well-mixed generator; enough for a demo.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform on [0, 1) with 53 random bits.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// How many of `samples` random points in the unit square fall inside the quarter
/// circle (uint64 scalar); the points come from the context's seed.
#[task]
fn sample(ctx: &Context, #[params] p: Params) -> Array0<u64> {
    let mut rng = SplitMix64(ctx.seed);
    let inside = (0..p.samples)
        .filter(|_| {
            let (x, y) = (rng.next_f64(), rng.next_f64());
            x * x + y * y < 1.0
        })
        .count();
    arr0(inside as u64)
}

/// π from the counts of any number of `sample` tasks of `samples` points each.
#[task]
fn estimate(#[rest] counts: Vec<Array0<u64>>, #[params] p: Params) -> Result<f64, String> {
    let total = p.samples * counts.len() as u64;
    if total == 0 {
        return Err("no samples: give at least one count and samples > 0".into());
    }
    let inside: u64 = counts.iter().map(|c| c.clone().into_scalar()).sum();
    Ok(4.0 * inside as f64 / total as f64)
}

tessera_guest::export_tasks!(sample, estimate);
