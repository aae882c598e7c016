//! `cargo xtask bench wasm`: what user code costs as WASM tasks.
//!
//! - `gaussian-wasm`: the demo's smoothing (sigma 0, 2, 2) of the `bench image` volume by
//!   the `gaussian` example component (`map_overlap_wasm`), against Dask's
//!   `map_overlap` with `scipy.ndimage.gaussian_filter`; both reduce the result to its
//!   maximum.
//! - `gaussian-wasm-vs-native`: the same WASM run against Tessera's native kernel
//!   (peer `tessera-native`); speedup = native / WASM seconds.
//! - `gaussian-block-wasm-vs-native`: the same smoothing of one in-memory block the shape
//!   of a chunk with its halo, repeated, WASM against native: the filter and the
//!   sandbox's own costs without storage, decoding or scheduling.
//! - `wasm-task-overhead`: the median seconds of one call of a tiny WASM task (fresh
//!   instance, call, return; the `echo` component on a one-element block), against Dask's
//!   per-task time for trivial delayed tasks on its threaded scheduler.
//!
//! The sides take turns for [`ROUNDS`] rounds and each one's median is reported. The
//! components are built first (`cargo xtask build-tasks`).

use super::{Harness, image, report, take_turns};
use crate::util::Result;

/// Timed runs of each side; the medians are reported. Five, not three: runs on a
/// shared 2-core machine vary by ±10 %, and with a cold compile cache the first WASM
/// round also compiles the component.
const ROUNDS: usize = 5;

/// Trivial Dask tasks timed for the overhead comparison.
const DASK_TASKS: &str = "5000";

pub fn run(harness: &Harness) -> Result {
    let components = crate::tasks::run()?;
    let (_, volume) = image::demo_volume(harness)?;
    let bench = harness.release_bin("tessera-bench");
    let dask = harness.script("dask_wasm.py");
    let python = harness.python();

    let (bench, dask, python) = (bench.as_os_str(), dask.as_os_str(), python.as_os_str());
    let (volume, components) = (volume.as_os_str(), components.as_os_str());
    let gaussian = vec![
        harness.turn(
            "tessera-wasm",
            "tessera",
            "gaussian-wasm",
            "seconds",
            vec![bench, "gaussian-wasm".as_ref(), volume, components],
        ),
        harness.turn("tessera-native", "tessera", "gaussian", "seconds", vec![bench, "gaussian".as_ref(), volume]),
        harness.turn("dask", "dask", "gaussian-wasm", "seconds", vec![python, dask, "gaussian".as_ref(), volume]),
    ];
    let medians = take_turns("gaussian-wasm", ROUNDS, gaussian)?;
    report("gaussian-wasm", &medians[0], "dask", &medians[2]);
    report("gaussian-wasm-vs-native", &medians[0], "tessera-native", &medians[1]);

    let block = vec![
        harness.turn(
            "tessera-wasm",
            "tessera",
            "gaussian-block",
            "seconds",
            vec![bench, "gaussian-block-wasm".as_ref(), components],
        ),
        harness.turn("tessera-native", "tessera", "gaussian-block", "seconds", vec![bench, "gaussian-block".as_ref()]),
    ];
    let medians = take_turns("gaussian-block", ROUNDS, block)?;
    report("gaussian-block-wasm-vs-native", &medians[0], "tessera-native", &medians[1]);

    let overhead = vec![
        harness.turn(
            "tessera",
            "tessera",
            "wasm-task-overhead",
            "seconds",
            vec![bench, "wasm-task-overhead".as_ref(), components],
        ),
        harness.turn(
            "dask",
            "dask",
            "wasm-task-overhead",
            "seconds",
            vec![python, dask, "task-overhead".as_ref(), DASK_TASKS.as_ref()],
        ),
    ];
    let medians = take_turns("wasm-task-overhead", ROUNDS, overhead)?;
    report("wasm-task-overhead", &medians[0], "dask", &medians[1]);
    Ok(())
}
