//! The `tessera` command.

mod certificates;
mod cluster;
mod demo;
mod files;
mod picture;
mod task;
mod volume;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Task outputs are large buffers allocated and freed at a high rate; see
/// [`tessera_worker::heap`].
#[global_allocator]
static ALLOCATOR: tessera_worker::heap::Allocator = tessera_worker::heap::Allocator;

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
    /// Runs a scheduler: clients and workers connect to it.
    Scheduler {
        /// The interface to listen on.
        #[arg(long, default_value = "0.0.0.0")]
        host: String,
        /// The port (0: any free port).
        #[arg(long, default_value_t = 8786)]
        port: u16,
        /// The dashboard and HTTP API port (0: any free port; printed).
        #[arg(long, default_value_t = 8787)]
        dashboard_port: u16,
        /// Serves no dashboard or HTTP API.
        #[arg(long)]
        no_dashboard: bool,
        /// The shared secret clients and workers must present (default: TESSERA_TOKEN,
        /// else a random one, printed).
        #[arg(long)]
        token: Option<String>,
        /// Writes the address and token here (JSON, readable by the owner only).
        #[arg(long)]
        scheduler_file: Option<PathBuf>,
        /// Tasks handed to a worker per thread.
        #[arg(long, default_value_t = 2.0)]
        worker_saturation: f64,
        #[command(flatten)]
        tls: cluster::TlsOptions,
    },
    /// Stops every worker of a cluster, then its scheduler.
    Shutdown(cluster::SchedulerAddress),
    /// Runs a worker that joins a scheduler.
    Worker(cluster::WorkerOptions),
    /// Runs a scheduler and N worker processes on this machine.
    LocalCluster {
        /// Worker processes.
        #[arg(long, default_value_t = 2)]
        workers: usize,
        /// Task threads per worker.
        #[arg(long, default_value_t = 1)]
        nthreads: usize,
        /// The scheduler's port on 127.0.0.1 (0: any free port).
        #[arg(long, default_value_t = 8786)]
        port: u16,
        /// Writes the address and token here.
        #[arg(long)]
        scheduler_file: Option<PathBuf>,
    },
    /// Makes a certificate authority and a member certificate for a TLS cluster.
    TlsCertificates {
        /// Where ca.pem, cert.pem and key.pem are written.
        #[arg(long)]
        out: PathBuf,
        /// A host name or IP address the certificate names, besides localhost and the
        /// loopback addresses (repeatable).
        #[arg(long = "host")]
        hosts: Vec<String>,
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
    tessera_worker::heap::configure();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(std::env::var("TESSERA_LOG").ok().and_then(|l| l.parse().ok()).unwrap_or(tracing::Level::INFO))
        .init();
    let result = match cli.command {
        Command::Demo { shape, chunks, out, threads, wasm, components } => {
            demo::run(&demo::DemoConfig { shape, chunks, out, threads, wasm: wasm.then_some(components) })
        }
        Command::Scheduler {
            host,
            port,
            dashboard_port,
            no_dashboard,
            token,
            scheduler_file,
            worker_saturation,
            tls,
        } => {
            let dashboard_port = (!no_dashboard).then_some(dashboard_port);
            cluster::scheduler(cluster::SchedulerOptions {
                host,
                port,
                dashboard_port,
                token,
                scheduler_file,
                worker_saturation,
                tls,
            })
            .map_err(tessera::Error::Engine)
        }
        Command::Worker(options) => cluster::worker(options).map_err(tessera::Error::Engine),
        Command::Shutdown(address) => cluster::shutdown(address).map_err(tessera::Error::Engine),
        Command::LocalCluster { workers, nthreads, port, scheduler_file } => {
            cluster::local_cluster(workers, nthreads, port, scheduler_file).map_err(tessera::Error::Engine)
        }
        Command::TlsCertificates { out, hosts } => certificates::create(&out, &hosts).map_err(tessera::Error::Engine),
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
