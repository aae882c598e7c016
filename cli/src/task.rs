//! `tessera task list|run`: inspect a WASM task component and run one of its tasks
//! over whole arrays, for authors debugging a task and for scripts.

use std::path::Path;
use tessera::array::{self, ChunkSize, ZarrOptions};
use tessera::wasm::Module;
use tessera::{Chunk, Client, Error, Result, Value};

/// Arrays with at most this many elements are printed in full.
const PRINT_LIMIT: usize = 100;

/// Prints every task of the component at `module`: name, signature, then its doc.
pub fn list(module: &Path) -> Result<()> {
    let module = Module::from_file(module)?;
    for task in module.tasks() {
        println!("{}{}", task.name, task.signature);
        for line in task.doc.lines() {
            println!("    {line}");
        }
    }
    Ok(())
}

/// What `tessera task run` runs.
pub struct RunConfig<'a> {
    /// The component file.
    pub module: &'a Path,
    /// The task's name.
    pub task: &'a str,
    /// Zarr arrays (URL or path of the array itself), passed whole, in order.
    pub inputs: &'a [String],
    /// The task's parameters as JSON.
    pub params: &'a str,
    /// Where to write an array result as Zarr; without it the result is printed.
    pub out: Option<&'a str>,
}

/// Runs one task over whole input arrays on the local engine and writes or prints
/// its result.
pub fn run(config: &RunConfig) -> Result<()> {
    let module = Module::from_file(config.module)?;
    let task = module.task(config.task)?;
    let params: serde_json::Value = serde_json::from_str(config.params)
        .map_err(|e| Error::invalid("task run", format!("--params is not JSON ({e}): {}", config.params)))?;
    let inputs = config
        .inputs
        .iter()
        .map(|url| array::from_zarr(url, "/").and_then(|a| a.to_delayed()))
        .collect::<Result<Vec<_>>>()?;
    let client = Client::local().with_progress(false);
    let result = task.call(&params, &inputs.iter().collect::<Vec<_>>()).compute_with(&client)?;
    match (config.out, &*result) {
        (Some(url), Value::Chunk(chunk)) => write(&client, chunk, url),
        (Some(url), other) => Err(Error::invalid(
            "task run",
            format!("task {} returned {}, not an array, so it cannot be written to {url}", config.task, other.kind()),
        )),
        (None, value) => {
            print(value);
            Ok(())
        }
    }
}

/// Writes `chunk` as a Zarr array at `url`, in chunks of the default size.
fn write(client: &Client, chunk: &Chunk, url: &str) -> Result<()> {
    let shape: Vec<u64> = chunk.shape().iter().map(|&n| n as u64).collect();
    let auto = vec![ChunkSize::Auto; shape.len()];
    array::from_chunk(chunk.clone()).rechunk(&auto)?.to_zarr_with(client, url, "/", &ZarrOptions::default())?;
    println!("wrote {url}: shape {shape:?}, dtype {}", chunk.dtype());
    Ok(())
}

/// Prints a result for people: JSON as JSON, small arrays in full, large ones as a
/// summary.
fn print(value: &Value) {
    match value {
        Value::Json(json) => println!("{json:#}"),
        Value::Chunk(chunk) if chunk.len() <= PRINT_LIMIT => {
            println!("array shape {:?} dtype {}", chunk.shape(), chunk.dtype());
            println!("{chunk}");
        }
        Value::Chunk(chunk) => {
            println!(
                "array shape {:?} dtype {} ({} elements; write it with --out)",
                chunk.shape(),
                chunk.dtype(),
                chunk.len()
            )
        }
        Value::Bytes(bytes) => println!("{} bytes", bytes.len()),
        other => println!("{other:?}"),
    }
}
