//! `cargo xtask bench image`: the microscopy pipeline of `tessera demo` (projections,
//! gaussian smoothing, histogram, Otsu threshold, mask written as Zarr) on a 64×2048×2048
//! u16 volume in 16×512×512 chunks.
//!
//! The volume is the one `tessera demo` generates into `target/bench-data/image`. If it is
//! absent, a first (untimed) demo run generates it; the timed Tessera runs then read it,
//! and Dask (`benches/harness/dask_image.py`) runs the same pipeline on the same volume.
//!
//! The sides take turns for [`ROUNDS`] rounds and the median of each is reported (its
//! peak memory is the highest of its rounds): single runs of either side varied by a
//! third from one run to the next on the 2-core build machine.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use super::{Harness, report, take_turns};
use crate::util::Result;

const WORKLOAD: &str = "image";
const SHAPE: &str = "64,2048,2048";
const CHUNKS: &str = "16,512,512";
/// Timed runs of each side.
const ROUNDS: usize = 3;

/// The `tessera demo` command line of the benchmark and the volume it reads, which is
/// generated first (by an untimed demo run) when absent.
pub fn demo_volume(harness: &Harness) -> Result<([OsString; 8], PathBuf)> {
    let out = harness.data_dir("image");
    let volume = out.join("volume.zarr");
    let demo = [
        harness.release_bin("tessera").into_os_string(),
        "demo".into(),
        "--shape".into(),
        SHAPE.into(),
        "--chunks".into(),
        CHUNKS.into(),
        "--out".into(),
        out.into_os_string(),
    ];
    if !volume.exists() {
        eprintln!("{} is absent: a first, untimed `tessera demo` run generates it", volume.display());
        harness.measure("tessera", WORKLOAD, "pipeline_seconds", &demo)?;
    }
    Ok((demo, volume))
}

pub fn run(harness: &Harness) -> Result {
    let (demo, volume) = demo_volume(harness)?;
    let (dask_out, script) = (harness.data_dir("image-dask"), harness.script("dask_image.py"));
    let dask = [harness.python().as_os_str(), script.as_os_str(), volume.as_os_str(), dask_out.as_os_str()];
    let demo: Vec<&OsStr> = demo.iter().map(OsString::as_os_str).collect();
    let sides = vec![
        harness.turn("tessera", "tessera", WORKLOAD, "pipeline_seconds", demo),
        harness.turn("dask", "dask", WORKLOAD, "seconds", dask.to_vec()),
    ];
    let medians = take_turns(WORKLOAD, ROUNDS, sides)?;
    report(WORKLOAD, &medians[0], "dask", &medians[1]);
    Ok(())
}
