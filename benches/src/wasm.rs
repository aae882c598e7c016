//! The WASM workloads of `cargo xtask bench wasm`.
//!
//! - `gaussian VOLUME` and `gaussian-wasm VOLUME COMPONENTS`: the demo's smoothing
//!   (sigma 0, 2, 2 on the uint16 Zarr volume, reflected borders) by the native kernel or
//!   by the `gaussian` example component, reduced to its maximum so every smoothed block
//!   is computed and then dropped. The component, like the native kernel, reflects at
//!   its block's edges, which at the array's edges are the array's: so it is mapped
//!   with no padding layer (`Boundary::None`, as dask-image maps scipy's filters), and
//!   both do the same work.
//! - `gaussian-block` and `gaussian-block-wasm COMPONENTS`: the same smoothing of one
//!   in-memory block shaped like a chunk of the demo volume with its halo
//!   (16 × 528 × 528 uint16, its 16 × 512 × 512 window computed), [`BLOCK_CALLS`] times
//!   one after the other, by the native kernel or by the component through the worker's
//!   WASM runtime (argument in, fresh instance, call, result out); prints the median.
//!   No storage, decoding or scheduling: the filter and the sandbox alone.
//! - `wasm-task-overhead COMPONENTS`: the `echo` component's one task called
//!   [`OVERHEAD_CALLS`] times on a one-element block through the worker's WASM runtime
//!   (fresh instance, call, return), timed one call at a time; prints the median. A
//!   component's imports are part of each instantiation's cost, so the bench uses one
//!   that holds only this task (the `probes` component, which links file, socket and
//!   environment code to test the sandbox, takes about a third longer).

use std::ops::Range;
use std::time::Instant;
use tessera::array::{self, Axes, Boundary};
use tessera::wasm::Module;
use tessera::{Chunk, Client, DType, Key, Result, Value};
use tessera_core::op::WasmTask;
use tessera_worker::kernels::image::gaussian_filter;
use tessera_worker::wasm::{WasmConfig, WasmRuntime};

/// Sigma per axis (z, y, x), as the demo.
const SIGMA: [f64; 3] = [0.0, 2.0, 2.0];
/// Kernel cut-off in sigmas (scipy's default).
const TRUNCATE: f64 = 4.0;
/// The demo volume's chunk shape, the window of `gaussian-block`'s block.
const BLOCK_WINDOW: [usize; 3] = [16, 512, 512];
/// Smoothings timed by `gaussian-block`.
const BLOCK_CALLS: usize = 20;
/// Calls timed by `wasm-task-overhead`.
const OVERHEAD_CALLS: usize = 20_000;

/// Smooths the volume at `volume` natively, or with the `gaussian` component of
/// `components` when given; returns the seconds taken.
pub fn gaussian(volume: &str, components: Option<&str>) -> Result<f64> {
    let client = Client::local().with_progress(false);
    let start = Instant::now();
    let x = array::from_zarr(volume, "/")?;
    let smoothed = match components {
        None => x.gaussian_filter(&SIGMA)?,
        Some(dir) => {
            let task = Module::from_file(std::path::Path::new(dir).join("gaussian.wasm"))?.task("gaussian")?;
            let depth: Vec<u64> = SIGMA.iter().map(|s| (TRUNCATE * s + 0.5) as u64).collect();
            let params = serde_json::json!({ "sigma": SIGMA, "truncate": TRUNCATE });
            x.map_overlap_wasm(&task, params, &depth, Boundary::None, DType::F32)?
        }
    };
    let max = smoothed.max(Axes::All)?.compute_with(&client)?;
    let seconds = start.elapsed().as_secs_f64();
    println!("max={:?}", max.first());
    Ok(seconds)
}

/// The median seconds of smoothing one in-memory block (see the module docs) natively,
/// or with the `gaussian` component of `components` when given.
pub fn gaussian_block(components: Option<&str>) -> Result<f64> {
    let depth: Vec<usize> = SIGMA.iter().map(|s| (TRUNCATE * s + 0.5) as usize).collect();
    let shape: Vec<usize> = BLOCK_WINDOW.iter().zip(&depth).map(|(w, d)| w + 2 * d).collect();
    let window: Vec<Range<usize>> = BLOCK_WINDOW.iter().zip(&depth).map(|(&w, &d)| d..d + w).collect();
    let pixels: Vec<u8> =
        (0..shape.iter().product::<usize>()).flat_map(|i| (((i * 7919) % 4099) as u16).to_le_bytes()).collect();
    let block = Value::Chunk(Chunk::from_le_bytes(DType::U16, shape, &pixels)?);
    let mut smooth: Box<dyn FnMut() -> Result<Value>> = match components {
        None => Box::new(|| gaussian_filter(block.as_chunk()?, &SIGMA, TRUNCATE, Some(&window)).map(Value::Chunk)),
        Some(dir) => {
            let params = serde_json::json!({ "sigma": SIGMA, "truncate": TRUNCATE }).to_string();
            let (runtime, op) = block_task(dir, "gaussian", params, Some(window.clone()))?;
            let key = Key::new("gaussian", [0, 0, 0]);
            Box::new(move || runtime.run(&op, &key, &[&block]).result)
        }
    };
    let mut times = Vec::with_capacity(BLOCK_CALLS);
    for _ in 0..BLOCK_CALLS {
        let start = Instant::now();
        let smoothed = smooth()?;
        times.push(start.elapsed().as_secs_f64());
        drop(smoothed);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// The median seconds of one call of a tiny WASM task; also prints the mean and the
/// 99th percentile.
pub fn task_overhead(components: &str) -> Result<f64> {
    let (runtime, op) = block_task(components, "echo", "null".into(), None)?;
    let block = Value::Chunk(Chunk::scalar(tessera::Scalar::F64(1.0)));
    let key = Key::new("echo", [0]);
    let mut times = Vec::with_capacity(OVERHEAD_CALLS);
    for _ in 0..OVERHEAD_CALLS {
        let start = Instant::now();
        let run = runtime.run(&op, &key, &[&block]);
        times.push(start.elapsed().as_secs_f64());
        run.result?;
    }
    times.sort_by(f64::total_cmp);
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    println!("mean_us={:.2} p99_us={:.2}", mean * 1e6, times[times.len() * 99 / 100] * 1e6);
    Ok(times[times.len() / 2])
}

/// A WASM runtime holding the component `NAME.wasm` of `components`, and the op calling
/// its task `NAME` with `params` on one block (computing just `window` when given).
fn block_task(
    components: &str,
    name: &str,
    params: String,
    window: Option<Vec<Range<usize>>>,
) -> Result<(WasmRuntime, WasmTask)> {
    let path = std::path::Path::new(components).join(format!("{name}.wasm"));
    let bytes = std::fs::read(&path).map_err(|e| tessera::Error::storage(path.display().to_string(), e))?;
    let runtime = WasmRuntime::new(WasmConfig::default())?;
    let module = runtime.register(&bytes)?.sha256().to_owned();
    let op = WasmTask { module, task: name.into(), params, blockwise: true, window };
    Ok((runtime, op))
}
