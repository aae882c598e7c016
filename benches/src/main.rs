//! `tessera-bench WORKLOAD`: runs one benchmark workload and prints `seconds=<float>`
//! for the timed part. `cargo xtask bench` runs it beside the same workload in Dask.
//!
//! Array workloads use x = uniform random 20000 × 20000 float64 in 2000 × 2000 chunks,
//! generated inside the graph (as `da.random.random` does), on a local client with one
//! task thread per core. The WASM workloads are in [`wasm`], the scheduling-overhead
//! graphs in [`overhead`].

mod overhead;
mod wasm;

use std::process::ExitCode;
use std::time::Instant;
use tessera::array::{Array, Axes, random};
use tessera::{Client, Result};

/// Task outputs are large buffers allocated and freed at a high rate; see
/// [`tessera_worker::heap`].
#[global_allocator]
static ALLOCATOR: tessera_worker::heap::Allocator = tessera_worker::heap::Allocator;

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
    tessera_worker::heap::configure();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let seconds = match args.as_slice() {
        ["gaussian", volume] => wasm::gaussian(volume, None).map(Some),
        ["gaussian-wasm", volume, components] => wasm::gaussian(volume, Some(components)).map(Some),
        ["gaussian-block"] => wasm::gaussian_block(None).map(Some),
        ["gaussian-block-wasm", components] => wasm::gaussian_block(Some(components)).map(Some),
        ["wasm-task-overhead", components] => wasm::task_overhead(components).map(Some),
        ["overhead", workload, size, rest @ ..] if rest.len() <= 1 => match size.parse() {
            Ok(size) => overhead::run(workload, size, rest.first().copied()).map(Some),
            Err(_) => return usage(),
        },
        [name] => array_workload(name, SIZE, CHUNK),
        [name, size, chunk] => match (size.parse(), chunk.parse()) {
            (Ok(size), Ok(chunk)) => array_workload(name, size, chunk),
            _ => return usage(),
        },
        _ => return usage(),
    };
    match seconds {
        Ok(Some(seconds)) => {
            println!("seconds={seconds:.9}");
            ExitCode::SUCCESS
        }
        Ok(None) => usage(),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs an array workload and returns its seconds, or `None` for an unknown name.
fn array_workload(name: &str, size: u64, chunk: u64) -> Result<Option<f64>> {
    let client = Client::local().with_progress(false);
    let start = Instant::now();
    let Some(array) = workload(name, size, chunk)? else { return Ok(None) };
    let value = array.compute_with(&client)?;
    let seconds = start.elapsed().as_secs_f64();
    println!("result={:?}", value.first());
    Ok(Some(seconds))
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: tessera-bench (sum-transpose | mean-std | mean-axis0) [SIZE CHUNK]\n       \
         tessera-bench gaussian VOLUME | gaussian-wasm VOLUME COMPONENTS | wasm-task-overhead COMPONENTS\n       \
         tessera-bench gaussian-block | gaussian-block-wasm COMPONENTS\n       \
         tessera-bench overhead (merge N | tree DEPTH) [SCHEDULER_ADDRESS]"
    );
    ExitCode::from(2)
}
