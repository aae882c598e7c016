//! The mask step of Otsu thresholding as a Tessera WASM task: given the threshold
//! (computed from the whole volume's histogram), each block becomes `block > threshold`.

#![deny(unsafe_code)]

use serde::Deserialize;
use tessera_guest::{AnyArray, ArrayD, task};

/// Parameters of [`otsu`].
#[derive(Deserialize)]
struct Params {
    /// Values strictly above it are foreground.
    threshold: f64,
}

/// A boolean mask of the values above `threshold` (compared as float64).
#[task]
fn otsu(block: AnyArray, #[params] p: Params) -> ArrayD<bool> {
    block.to_f64().mapv(|v| v > p.threshold)
}

tessera_guest::export_tasks!(otsu);
