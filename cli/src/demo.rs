//! The demo: the classic Dask image-processing lab on a microscopy volume.
//!
//! Steps: open (or first generate) a uint16 volume stored as Zarr; max and mean
//! projections over z; gaussian smoothing (sigma 2 in y and x) with overlapping blocks;
//! one global Otsu threshold from the histogram of the whole smoothed volume; the
//! binary mask written as Zarr; PNGs of the image's and the mask's max projections.
//!
//! With `--wasm`, the smoothing and the mask run as the WASM tasks of the example
//! components `gaussian.wasm` and `otsu.wasm` instead of the native kernels, and give
//! the same mask.

use crate::picture::write_png;
use crate::volume::synthetic_volume;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tessera::array::{self, Array, Axes, Boundary, ZarrOptions};
use tessera::wasm::{Module, TaskFn};
use tessera::{Client, DType, Error, Result, Scalar};

/// Settings of one demo run.
pub struct DemoConfig {
    /// Volume shape (z, y, x).
    pub shape: [u64; 3],
    /// Chunk shape (z, y, x).
    pub chunks: [u64; 3],
    /// Output directory.
    pub out: PathBuf,
    /// Task threads (default: one per core).
    pub threads: Option<usize>,
    /// When set, the folder holding `gaussian.wasm` and `otsu.wasm`: smoothing and mask
    /// run as those WASM tasks.
    pub wasm: Option<PathBuf>,
}

/// The demo's smoothing and mask as WASM tasks.
struct WasmSteps {
    gaussian: TaskFn,
    otsu: TaskFn,
}

impl WasmSteps {
    /// Loads the two example components from `dir`.
    fn load(dir: &Path) -> Result<WasmSteps> {
        let gaussian = Module::from_file(dir.join("gaussian.wasm"))?.task("gaussian")?;
        let otsu = Module::from_file(dir.join("otsu.wasm"))?.task("otsu")?;
        Ok(WasmSteps { gaussian, otsu })
    }

    /// The WASM twin of `gaussian_filter(&SIGMA)`: same halo, same borders, float32.
    fn smooth(&self, volume: &Array) -> Result<Array> {
        let depth: Vec<u64> = SIGMA.iter().map(|s| (TRUNCATE * s + 0.5) as u64).collect();
        let params = serde_json::json!({ "sigma": SIGMA, "truncate": TRUNCATE });
        volume.map_overlap_wasm(&self.gaussian, params, &depth, Boundary::Reflect, DType::F32)
    }

    /// The WASM twin of `smoothed > threshold`.
    fn mask(&self, smoothed: &Array, threshold: f32) -> Result<Array> {
        // The task compares in float64; a float32 threshold widened exactly gives the
        // same answer as the native float32 comparison.
        smoothed.map_blocks_wasm(&self.otsu, serde_json::json!({ "threshold": f64::from(threshold) }), DType::Bool)
    }
}

/// Sigma of the smoothing, per axis (z, y, x).
const SIGMA: [f64; 3] = [0.0, 2.0, 2.0];
/// Where the gaussian kernel is cut off, in sigmas (scipy's default, as the native
/// kernel).
const TRUNCATE: f64 = 4.0;
/// Histogram bins for the Otsu threshold.
const BINS: usize = 256;
/// Seed of the synthetic volume.
const SEED: u64 = 42;

fn url(path: &Path) -> String {
    path.display().to_string()
}

/// Runs the demo and prints its summary.
pub fn run(config: &DemoConfig) -> Result<()> {
    let threads = config.threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let client = Client::local_with(threads, None)?;
    let wasm = config.wasm.as_deref().map(WasmSteps::load).transpose()?;
    std::fs::create_dir_all(&config.out)
        .map_err(|e| Error::storage(url(&config.out), format!("cannot create the output directory: {e}")))?;
    let volume_path = config.out.join("volume.zarr");
    let mask_path = config.out.join("mask.zarr");

    let volume_note = if volume_path.join("zarr.json").exists() {
        "existing".to_string()
    } else {
        let t = Instant::now();
        let volume = synthetic_volume(config.shape, config.chunks, SEED)?;
        volume.to_zarr_with(&client, &url(&volume_path), "/", &ZarrOptions::default())?;
        format!("generated in {:.2} s", t.elapsed().as_secs_f64())
    };

    let pipeline = Instant::now();
    let volume = array::from_zarr(&url(&volume_path), "/")?;
    if volume.ndim() != 3 {
        return Err(Error::invalid(
            "demo",
            format!("{} holds a {}-D array, expected 3-D", url(&volume_path), volume.ndim()),
        ));
    }

    // Pass 1: projections over z, and the range of the smoothed volume.
    let t = Instant::now();
    let smoothed = match &wasm {
        None => volume.gaussian_filter(&SIGMA)?,
        Some(steps) => steps.smooth(&volume)?,
    };
    let max_projection = volume.max(0)?;
    let mean_projection = volume.mean(0)?;
    let (smoothed_min, smoothed_max) = (smoothed.min(Axes::All)?, smoothed.max(Axes::All)?);
    // The smoothed range is asked for first, so the scheduler walks the volume in the
    // smoothing's order: a block is released once its neighbours are smoothed, and the
    // projections' partials (one z-slice per block) are what waits for the deeper z.
    let first = array::compute_all(&client, &[&smoothed_min, &smoothed_max, &max_projection, &mean_projection])?;
    let bound = |i: usize| first[i].first().map(|s| s.to_f64()).ok_or_else(|| Error::Engine("empty bound".into()));
    let (lo, hi) = (bound(0)?, bound(1)?);
    let projection_s = t.elapsed().as_secs_f64();

    // Pass 2: one global threshold from the histogram of the whole smoothed volume.
    let t = Instant::now();
    let threshold = smoothed.threshold_otsu_in_range(BINS, lo, hi)?.compute_with(&client)?;
    let threshold = threshold.first().map(|s| s.to_f64()).ok_or_else(|| Error::Engine("empty threshold".into()))?;
    let threshold_s = t.elapsed().as_secs_f64();

    // Pass 3: the mask, written as Zarr, with its projection and foreground fraction.
    let t = Instant::now();
    let mask = match &wasm {
        None => smoothed.gt(Scalar::F32(threshold as f32))?,
        Some(steps) => steps.mask(&smoothed, threshold as f32)?,
    };
    let write = mask.to_zarr_graph(&url(&mask_path), "/", &ZarrOptions::default())?;
    let mask_projection = mask.max(0)?;
    let foreground = mask.astype(DType::F64)?.mean(Axes::All)?;
    let results = array::compute_all(&client, &[&write, &mask_projection, &foreground])?;
    let foreground = results[2].first().map(|s| s.to_f64()).unwrap_or(f64::NAN);
    let mask_s = t.elapsed().as_secs_f64();
    let pipeline_s = pipeline.elapsed().as_secs_f64();

    let image_png = config.out.join("max_projection.png");
    let mask_png = config.out.join("mask_projection.png");
    write_png(&image_png, &first[2])?;
    write_png(&mask_png, &results[1])?;

    let [z, y, x] = config.shape;
    println!("volume       {} ({z}x{y}x{x} uint16, {volume_note})", url(&volume_path));
    if let Some(dir) = &config.wasm {
        println!("wasm         smoothing and mask by gaussian.wasm and otsu.wasm in {}", url(dir));
    }
    println!("projections  max and mean over z, smoothed range {lo:.2}..{hi:.2} in {projection_s:.2} s");
    println!("threshold    {threshold:.2} (Otsu, {BINS} bins over the smoothed volume) in {threshold_s:.2} s");
    println!("mask         {} foreground {:.2}% in {mask_s:.2} s", url(&mask_path), foreground * 100.0);
    println!("pictures     {} {}", url(&image_png), url(&mask_png));
    println!("pipeline_seconds={pipeline_s:.3}");
    println!("threshold={threshold}");
    println!("foreground={foreground}");
    Ok(())
}
