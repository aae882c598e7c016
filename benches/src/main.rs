//! `tessera-bench WORKLOAD`: runs one benchmark workload and prints `seconds=<float>`
//! for the timed part. `cargo xtask bench` runs it beside the same workload in Dask.
//!
//! Array workloads use x = uniform random 20000 × 20000 float64 in 2000 × 2000 chunks,
//! generated inside the graph (as `da.random.random` does), on a local client with one
//! task thread per core.

use std::process::ExitCode;
use std::time::Instant;
use tessera::array::{Array, Axes, random};
use tessera::{Client, Result};

/// Task outputs are large buffers allocated and freed at a high rate; mimalloc reuses
/// their pages instead of returning each one to the kernel and faulting it in again.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SIZE: u64 = 20_000;
const CHUNK: u64 = 2_000;

fn x(size: u64, chunk: u64) -> Result<Array> {
    random::random_sample(&[size, size], &[chunk, chunk], 0)
}

/// Builds the workload's graph; the returned array is what gets computed.
fn workload(name: &str, size: u64, chunk: u64) -> Result<Option<Array>> {
    let x = x(size, chunk)?;
    Ok(Some(match name {
        "sum-transpose" => x.add(&x.t()?)?.mean(Axes::All)?,
        "mean-std" => x.add(&x.t()?)?.mean(0)?.std(Axes::All)?,
        "mean-axis0" => x.mean(0)?,
        _ => return Ok(None),
    }))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (name, size, chunk) = match args.as_slice() {
        [name] => (name.as_str(), SIZE, CHUNK),
        [name, size, chunk] => match (size.parse(), chunk.parse()) {
            (Ok(s), Ok(c)) => (name.as_str(), s, c),
            _ => return usage(),
        },
        _ => return usage(),
    };
    let client = Client::local().with_progress(false);
    let start = Instant::now();
    let result = workload(name, size, chunk).and_then(|w| match w {
        Some(array) => array.compute_with(&client).map(Some),
        None => Ok(None),
    });
    match result {
        Ok(Some(value)) => {
            println!("seconds={:.6}", start.elapsed().as_secs_f64());
            println!("result={:?}", value.first());
            ExitCode::SUCCESS
        }
        Ok(None) => usage(),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: tessera-bench (sum-transpose | mean-std | mean-axis0) [SIZE CHUNK]");
    ExitCode::from(2)
}
