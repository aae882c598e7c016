//! `cargo xtask bench image`: the microscopy pipeline of `tessera demo` (projections,
//! gaussian smoothing, histogram, Otsu threshold, mask written as Zarr) on a 64×2048×2048
//! u16 volume in 16×512×512 chunks.
//!
//! The volume is the one `tessera demo` generates into `target/bench-data/image`. If it is
//! absent, a first (untimed) demo run generates it; the timed Tessera run then reads it,
//! and Dask (`benches/harness/dask_image.py`) runs the same pipeline on the same volume.

use std::ffi::OsStr;

use super::{Harness, report};
use crate::util::Result;

const WORKLOAD: &str = "image";
const SHAPE: &str = "64,2048,2048";
const CHUNKS: &str = "16,512,512";

pub fn run(harness: &Harness) -> Result {
    let out = harness.data_dir("image");
    let volume = out.join("volume.zarr");
    let tessera = harness.release_bin("tessera");
    let demo: [&OsStr; 8] = [
        tessera.as_os_str(),
        "demo".as_ref(),
        "--shape".as_ref(),
        SHAPE.as_ref(),
        "--chunks".as_ref(),
        CHUNKS.as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ];
    if !volume.exists() {
        eprintln!("{} is absent: a first, untimed `tessera demo` run generates it", volume.display());
        harness.measure("tessera", WORKLOAD, "pipeline_seconds", demo)?;
    }
    let tessera_result = harness.measure("tessera", WORKLOAD, "pipeline_seconds", demo)?;
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
