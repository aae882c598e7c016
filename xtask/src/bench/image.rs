//! `cargo xtask bench image`: the microscopy pipeline of `tessera demo` (projections,
//! gaussian smoothing, histogram, Otsu threshold, mask written as Zarr) on a 64×2048×2048
//! u16 volume in 16×512×512 chunks.
//!
//! The volume is the one `tessera demo` generates into `target/bench-data/image`. If it is
//! absent, a first (untimed) demo run generates it; the timed Tessera run then reads it,
//! and Dask (`benches/harness/dask_image.py`) runs the same pipeline on the same volume.

use std::ffi::OsString;
use std::path::PathBuf;

use super::{Harness, report};
use crate::util::Result;

const WORKLOAD: &str = "image";
const SHAPE: &str = "64,2048,2048";
const CHUNKS: &str = "16,512,512";

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
    let tessera_result = harness.measure("tessera", WORKLOAD, "pipeline_seconds", &demo)?;
    let dask_out = harness.data_dir("image-dask");
    let dask_result = harness.measure(
        "dask",
        WORKLOAD,
        "seconds",
        [
            harness.python().as_os_str(),
            harness.script("dask_image.py").as_os_str(),
            volume.as_os_str(),
            dask_out.as_os_str(),
        ],
    )?;
    report(WORKLOAD, &tessera_result, "dask", &dask_result);
    Ok(())
}
