//! The `tessera` command.

mod demo;
mod picture;
mod task;
mod volume;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Task outputs are large buffers allocated and freed at a high rate; mimalloc reuses
/// their pages instead of returning each one to the kernel and faulting it in again.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Tessera: lazy chunked arrays and task graphs, computed in parallel.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the microscopy demo: projections, gaussian smoothing, a global Otsu
    /// threshold and a mask written as Zarr, on a synthetic volume made when absent.
    Demo {
        /// Volume shape Z,Y,X.
        #[arg(long, default_value = "64,2048,2048", value_parser = parse_triple)]
        shape: [u64; 3],
        /// Chunk shape Z,Y,X.
        #[arg(long, default_value = "16,512,512", value_parser = parse_triple)]
        chunks: [u64; 3],
        /// Output directory (holds volume.zarr, mask.zarr and the PNGs).
        #[arg(long, default_value = "tessera-demo")]
        out: PathBuf,
        /// Task threads (default: one per core).
        #[arg(long)]
        threads: Option<usize>,
        /// Runs the smoothing and the mask as the WASM tasks of the example components
        /// (`cargo xtask build-tasks`) instead of the native kernels.
        #[arg(long)]
        wasm: bool,
        /// Where `--wasm` finds gaussian.wasm and otsu.wasm.
        #[arg(long, default_value = "target/wasm-tasks/components")]
        components: PathBuf,
    },
    /// Inspects and runs the tasks of a WASM task component.
    Task {
        #[command(subcommand)]
        command: TaskCommand,
    },
}

#[derive(Subcommand)]
enum TaskCommand {
    /// Prints the tasks a component exports, with their signatures and docs.
    List {
        /// The component (.wasm).
        module: PathBuf,
    },
    /// Runs one task over whole input arrays and writes or prints its result.
    Run {
        /// The component (.wasm).
        module: PathBuf,
        /// The task's name.
        name: String,
        /// A Zarr array (path or URL of the array) passed whole; repeat for more inputs,
        /// in order.
        #[arg(long = "input")]
        inputs: Vec<String>,
        /// The task's parameters as JSON.
        #[arg(long, default_value = "null")]
        params: String,
        /// Writes an array result as a Zarr array here (path or URL); without it the
        /// result is printed.
        #[arg(long)]
        out: Option<String>,
    },
}

fn parse_triple(text: &str) -> Result<[u64; 3], String> {
    let parts: Vec<u64> = text
        .split(',')
        .map(|p| p.trim().parse::<u64>().map_err(|e| format!("{p:?} is not a whole number: {e}")))
        .collect::<Result<_, _>>()?;
    match parts.as_slice() {
        [a, b, c] if *a > 0 && *b > 0 && *c > 0 => Ok([*a, *b, *c]),
        _ => Err(format!("expected three positive numbers Z,Y,X, got {text:?}")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo { shape, chunks, out, threads, wasm, components } => {
            demo::run(&demo::DemoConfig { shape, chunks, out, threads, wasm: wasm.then_some(components) })
        }
        Command::Task { command: TaskCommand::List { module } } => task::list(&module),
        Command::Task { command: TaskCommand::Run { module, name, inputs, params, out } } => {
            task::run(&task::RunConfig {
                module: &module,
                task: &name,
                inputs: &inputs,
                params: &params,
                out: out.as_deref(),
            })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
