//! `cargo xtask bench overhead`: scheduling overhead on the RSDS graphs `merge-50000`
//! (50 000 trivial tasks merged by one) and `tree-15` (a binary tree reduction of
//! 65 535 tasks), each run twice:
//!
//! - `-local`: Tessera's `Client::local()` against Dask's threaded scheduler;
//! - `-distributed`: a `tessera scheduler` with two `tessera worker --nthreads 1`
//!   processes against a dask.distributed LocalCluster of two 1-thread worker
//!   processes.
//!
//! Tessera computes each graph three times everywhere; Dask three times locally and
//! once on its cluster (its distributed rounds take minutes). Each prints the median
//! `seconds=` for submit → result and its time per task. RSS is the
//! client process's (the workers are separate processes on both sides).

use super::{Harness, report};
use crate::util::{Result, target_dir};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WORKLOADS: &[(&str, &str, &str)] = &[("merge-50000", "merge", "50000"), ("tree-15", "tree", "15")];

/// The token of the bench's cluster (loopback only, for the run's duration).
const TOKEN: &str = "tessera-bench-overhead";

pub fn run(harness: &Harness) -> Result {
    let bench = harness.release_bin("tessera-bench");
    let dask = harness.script("dask_overhead.py");
    let python = harness.python();
    for &(workload, kind, size) in WORKLOADS {
        let tessera = harness.measure(
            "tessera",
            workload,
            "seconds",
            [bench.as_os_str(), "overhead".as_ref(), kind.as_ref(), size.as_ref()],
        )?;
        let peer = harness.measure(
            "dask",
            workload,
            "seconds",
            [python.as_os_str(), dask.as_os_str(), kind.as_ref(), size.as_ref(), "threads".as_ref()],
        )?;
        report(&format!("{workload}-local"), &tessera, "dask-threads", &peer);

        let cluster = BenchCluster::start(&harness.release_bin("tessera"))?;
        let tessera = harness.measure_with_env(
            "tessera",
            workload,
            "seconds",
            [bench.as_os_str(), "overhead".as_ref(), kind.as_ref(), size.as_ref(), cluster.address.as_ref()],
            &[("TESSERA_TOKEN", TOKEN)],
        );
        drop(cluster);
        let peer = harness.measure(
            "dask",
            workload,
            "seconds",
            [python.as_os_str(), dask.as_os_str(), kind.as_ref(), size.as_ref(), "distributed".as_ref()],
        )?;
        report(&format!("{workload}-distributed"), &tessera?, "dask-distributed", &peer);
    }
    Ok(())
}

/// A scheduler and two one-thread workers on loopback, shut down when dropped.
struct BenchCluster {
    address: String,
    processes: Vec<Child>,
    /// `tessera shutdown --scheduler-file FILE`, which stops them cleanly.
    shutdown: Command,
}

impl BenchCluster {
    fn start(tessera: &Path) -> Result<BenchCluster> {
        let file = target_dir().join("bench-data").join("overhead-scheduler.json");
        let _ = std::fs::remove_file(&file);
        std::fs::create_dir_all(file.parent().expect("a parent")).map_err(|e| e.to_string())?;
        let spawn = |args: &[&str]| {
            Command::new(tessera)
                .args(args)
                .env("TESSERA_LOG", "warn")
                .stdout(Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot start {}: {e}", tessera.display()))
        };
        let file_arg = file.to_string_lossy().into_owned();
        let mut shutdown = Command::new(tessera);
        shutdown.args(["shutdown", "--scheduler-file", &file_arg]).stdout(Stdio::null());
        let mut cluster = BenchCluster { address: String::new(), processes: Vec::new(), shutdown };
        cluster.processes.push(spawn(&[
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--token",
            TOKEN,
            "--scheduler-file",
            &file_arg,
        ])?);
        let start = Instant::now();
        while !file.exists() {
            if start.elapsed() > Duration::from_secs(30) {
                return Err("the bench scheduler did not start within 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for name in ["bench-0", "bench-1"] {
            cluster.processes.push(spawn(&[
                "worker",
                "--scheduler-file",
                &file_arg,
                "--nthreads",
                "1",
                "--name",
                name,
            ])?);
        }
        let text = std::fs::read_to_string(&file).map_err(|e| e.to_string())?;
        cluster.address = json_string_field(&text, "address").ok_or("the scheduler file has no address")?;
        Ok(cluster)
    }
}

impl Drop for BenchCluster {
    fn drop(&mut self) {
        let stopped = self.shutdown.status().is_ok_and(|s| s.success());
        for child in &mut self.processes {
            if !stopped {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

/// The string value of `"field": "…"` in a flat JSON object without escapes (the
/// scheduler file).
fn json_string_field(json: &str, field: &str) -> Option<String> {
    let after = json.split_once(&format!("\"{field}\""))?.1;
    let value = after.trim_start().strip_prefix(':')?.trim_start().strip_prefix('"')?;
    Some(value.split_once('"')?.0.to_string())
}
