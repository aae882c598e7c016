//! `cargo xtask`: Tessera's project automation.
//!
//! - `cargo xtask test` installs what the tests need, lints, and runs every test against a
//!   real S3-protocol server and a Python with zarr (what CI runs through `.ci/run`).
//! - `cargo xtask build-tasks` builds the guest tasks of `examples/tasks/` (Rust) and
//!   `examples/tasks-py/` (Python) into WebAssembly components
//!   (`target/wasm-tasks/components/`).
//! - `cargo xtask demo [ARGS…]` runs `tessera demo ARGS…` from a release build.
//! - `cargo xtask bench NAME…` runs Tessera and Dask side by side and prints one
//!   `BENCH …` line per workload.
//!
//! Every command it runs is echoed to stderr as `$ …`; any failure exits non-zero with a
//! message naming what failed.

mod bench;
mod demo;
mod python;
mod python_tasks;
mod s3;
mod tasks;
mod test;
mod util;

use std::env;
use std::process::ExitCode;

fn usage() -> String {
    format!(
        "usage: cargo xtask <command>\n\n\
         commands:\n  \
         test           install test tools, check formatting and clippy, run all tests\n  \
         build-tasks    build examples/tasks/* (Rust) and examples/tasks-py/* (Python) into\n  \
         \x20              WASM components (target/wasm-tasks/components)\n  \
         demo [ARGS…]   cargo run --release -p tessera-cli -- demo ARGS…\n  \
         bench NAME…    Tessera vs Dask side by side; NAME is one of:\n{}",
        bench::suite_list()
    )
}

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.split_first().map(|(command, rest)| (command.as_str(), rest)) {
        Some(("test", [])) => test::run(),
        Some(("build-tasks", [])) => tasks::run().map(|_| ()),
        Some(("demo", rest)) => demo::run(rest),
        Some(("bench", rest)) => bench::run(rest),
        Some(("help" | "-h" | "--help", _)) => {
            println!("{}", usage());
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{}", usage());
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: error: {message}");
            ExitCode::FAILURE
        }
    }
}
