//! The `tessera` command.

mod demo;
mod picture;
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
        Command::Demo { shape, chunks, out, threads } => demo::run(&demo::DemoConfig { shape, chunks, out, threads }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
