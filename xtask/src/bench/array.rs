//! `cargo xtask bench array`: chunked-array reductions on x = random uniform
//! 20000×20000 f64 in 2000×2000 chunks, generated inside the graph. Workloads:
//! `sum-transpose` = (x + x.T).mean(), `mean-std` = (x + x.T).mean(axis=0).std(),
//! `mean-axis0` = x.mean(axis=0). Tessera runs `tessera-bench <workload>`, Dask runs
//! `benches/harness/dask_array.py <workload>`; both print `seconds=` for the timed part.

use super::{Harness, report};
use crate::util::Result;

const WORKLOADS: &[&str] = &["sum-transpose", "mean-std", "mean-axis0"];

pub fn run(harness: &Harness) -> Result {
    let tessera_bench = harness.release_bin("tessera-bench");
    let dask_script = harness.script("dask_array.py");
    for &workload in WORKLOADS {
        let tessera =
            harness.measure("tessera", workload, "seconds", [tessera_bench.as_os_str(), workload.as_ref()])?;
        let dask = harness.measure(
            "dask",
            workload,
            "seconds",
            [harness.python().as_os_str(), dask_script.as_os_str(), workload.as_ref()],
        )?;
        report(workload, &tessera, "dask", &dask);
    }
    Ok(())
}
