//! `cargo xtask bench wasm`: what user code costs as WASM tasks.
//!
//! - `gaussian-wasm`: the demo's smoothing (sigma 0, 2, 2) of the `bench image` volume by
//!   the `gaussian` example component (`map_overlap_wasm`), against Dask's
//!   `map_overlap` with `scipy.ndimage.gaussian_filter`; both reduce the result to its
//!   maximum.
//! - `gaussian-wasm-vs-native`: the same WASM run against Tessera's native kernel
//!   (peer `tessera-native`); speedup = native / WASM seconds.
//! - `wasm-task-overhead`: the median seconds of one call of a tiny WASM task (fresh
//!   instance, call, return; `probes`' `echo` on a one-element block), against Dask's
//!   per-task time for trivial delayed tasks on its threaded scheduler.
//!
//! The components are built first (`cargo xtask build-tasks`).

use super::{Harness, image, report};
use crate::util::Result;

/// Trivial Dask tasks timed for the overhead comparison.
const DASK_TASKS: &str = "5000";

pub fn run(harness: &Harness) -> Result {
    let components = crate::tasks::run()?;
    let (_, volume) = image::demo_volume(harness)?;
    let bench = harness.release_bin("tessera-bench");
    let dask = harness.script("dask_wasm.py");
    let python = harness.python();

    let wasm = harness.measure(
        "tessera",
        "gaussian-wasm",
        "seconds",
        [bench.as_os_str(), "gaussian-wasm".as_ref(), volume.as_os_str(), components.as_os_str()],
    )?;
    let native = harness.measure(
        "tessera",
        "gaussian",
        "seconds",
        [bench.as_os_str(), "gaussian".as_ref(), volume.as_os_str()],
    )?;
    let dask_gaussian = harness.measure(
        "dask",
        "gaussian-wasm",
        "seconds",
        [python.as_os_str(), dask.as_os_str(), "gaussian".as_ref(), volume.as_os_str()],
    )?;
    report("gaussian-wasm", &wasm, "dask", &dask_gaussian);
    report("gaussian-wasm-vs-native", &wasm, "tessera-native", &native);

    let overhead = harness.measure(
        "tessera",
        "wasm-task-overhead",
        "seconds",
        [bench.as_os_str(), "wasm-task-overhead".as_ref(), components.as_os_str()],
    )?;
    let dask_overhead = harness.measure(
        "dask",
        "wasm-task-overhead",
        "seconds",
        [python.as_os_str(), dask.as_os_str(), "task-overhead".as_ref(), DASK_TASKS.as_ref()],
    )?;
    report("wasm-task-overhead", &overhead, "dask", &dask_overhead);
    Ok(())
}
