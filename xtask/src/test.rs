//! `cargo xtask test`: what CI runs (through `.ci/run`) on a fresh machine.
//!
//! 1. `cargo fmt --check` (first, because it is instant);
//! 2. installs, each skipped when already present: cargo-nextest, the `s3s-fs` S3 server,
//!    Debian's `chromium` (for the dashboard test) and a venv at `target/pyenv` with
//!    numpy and zarr;
//! 3. `cargo clippy -p tessera --no-default-features -- -D warnings` (the SDK without its
//!    default `local` feature: what a remote-only client links);
//! 4. builds the guest task components (`cargo xtask build-tasks`) for the WASM tests;
//! 5. starts `s3s-fs` (see [`crate::s3`]) and runs `cargo nextest run --workspace` with the
//!    environment that points the tests at it and at the venv's python;
//!    `TESSERA_REQUIRE_TEST_SERVICES=1` makes tests that need those fail instead of skip.
//!
//! Clippy lints the workspace's crates inside step 5's build: `clippy-driver` is the
//! workspace's compiler wrapper there (what `cargo clippy` itself sets up, with
//! `-D warnings`), so a lint fails the build. A separate `cargo clippy --workspace
//! --all-targets` would build every dependency a second time in check mode — wasmtime
//! and cranelift included, a quarter of an hour on two cores. For the same reason there
//! is no doc-test step: rustdoc resolves the workspace's features differently from the
//! test build and rebuilt wasmtime and zarrs. Examples live in `examples/` folders,
//! which the test build compiles (and lints), and the README's example is checked and
//! run by `sdk/tests/readme.rs`.
//!
//! A failing check does not stop the later ones; the command fails at the end, naming
//! every failed step. A failed install stops it at once.

use std::env;
use std::fs;
use std::process::Command;

use crate::python::ensure_venv;
use crate::s3::S3Server;
use crate::util::{self, Result, cargo, find_tool, succeeds, target_dir};

const S3S_FS_VERSION: &str = "0.14.1";
/// What the Python compatibility tests need in `target/pyenv`, and the modules that show
/// it is installed.
const PY_PACKAGES: &[&str] = &["numpy", "zarr"];
const PY_IMPORTS: &[&str] = &["numpy", "zarr"];
/// What `cargo clippy -- …` would pass to clippy-driver: every warning is an error.
const CLIPPY_LINT_ARGS: &[&str] = &["-D", "warnings"];
/// The nextest profile (in `.config/nextest.toml`) that kills hung tests.
const NEXTEST_PROFILE: &str = "ci";

/// Runs the whole suite; see the module doc.
pub fn run() -> Result {
    let mut failed = Vec::new();
    check("rustfmt", util::run(&mut cargo(["fmt", "--all", "--check"])), &mut failed);

    ensure_nextest()?;
    let s3s_fs = ensure_s3s_fs()?;
    ensure_chromium()?;
    let python = ensure_venv(&target_dir().join("pyenv"), PY_PACKAGES, PY_IMPORTS)?;

    // The SDK must also build without the embedded engine (what a remote-only client links).
    check(
        "clippy (sdk without the local engine)",
        util::run(cargo(["clippy", "-p", "tessera", "--no-default-features", "--"]).args(CLIPPY_LINT_ARGS)),
        &mut failed,
    );

    let components = crate::tasks::run()?;

    let log_dir = target_dir().join("xtask");
    fs::create_dir_all(&log_dir).map_err(|err| format!("cannot create {}: {err}", log_dir.display()))?;
    let server = S3Server::start(&s3s_fs, &log_dir.join("s3s-fs.log"))?;
    let mut test_env = server.env();
    test_env.push(("TESSERA_TEST_PYTHON", python.display().to_string()));
    test_env.push((crate::tasks::COMPONENTS_ENV, components.display().to_string()));
    test_env.push(("TESSERA_REQUIRE_TEST_SERVICES", "1".to_owned()));
    eprintln!("test environment:");
    for (key, value) in &test_env {
        eprintln!("  {key}={value}");
    }
    let nextest = ["nextest", "run", "--workspace", "--no-fail-fast", "--profile", NEXTEST_PROFILE];
    let mut nextest = with_test_env(cargo(nextest), &test_env);
    nextest.envs(clippy_wrapper()?);
    // A one-off build gains nothing from incremental state, which would take gigabytes.
    nextest.env("CARGO_INCREMENTAL", "0");
    check("clippy and nextest", util::run(&mut nextest), &mut failed);
    drop(server);

    if failed.is_empty() {
        eprintln!("xtask test: all steps passed");
        Ok(())
    } else {
        Err(format!("xtask test: failed steps: {}", failed.join(", ")))
    }
}

/// The environment under which cargo compiles the workspace's own crates with
/// `clippy-driver` and `-D warnings`, as `cargo clippy` does (dependencies are built by
/// plain rustc). `CLIPPY_ARGS` ends every argument with clippy's separator.
fn clippy_wrapper() -> Result<[(&'static str, String); 2]> {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = util::capture(Command::new(rustc).args(["--print", "sysroot"]))?;
    let sysroot = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let driver = std::path::Path::new(&sysroot).join("bin").join("clippy-driver");
    if !output.status.success() || !driver.is_file() {
        return Err(format!("no clippy-driver at {} (is the clippy component installed?)", driver.display()));
    }
    let args: String = CLIPPY_LINT_ARGS.iter().map(|arg| format!("{arg}__CLIPPY_HACKERY__")).collect();
    Ok([("RUSTC_WORKSPACE_WRAPPER", driver.display().to_string()), ("CLIPPY_ARGS", args)])
}

/// Records a failed step (its error is printed now; the run goes on to the next step).
fn check(step: &'static str, result: Result, failed: &mut Vec<&'static str>) {
    if let Err(message) = result {
        eprintln!("xtask: {step} failed: {message}");
        failed.push(step);
    }
}

/// `cmd` with the test environment, and without any other `AWS_*` variable of this
/// shell (a stray `AWS_SESSION_TOKEN` or `AWS_BUCKET` would reach `from_env` too).
fn with_test_env(mut cmd: Command, test_env: &[(&str, String)]) -> Command {
    for (key, _) in env::vars_os() {
        if key.to_str().is_some_and(|key| key.starts_with("AWS_")) {
            cmd.env_remove(key);
        }
    }
    cmd.envs(test_env.iter().map(|(key, value)| (key, value)));
    cmd
}

/// Debian's Chromium, which the dashboard test drives headless.
fn ensure_chromium() -> Result {
    if find_tool("chromium").is_some() {
        return Ok(());
    }
    util::apt_install(&["chromium"])
}

fn ensure_nextest() -> Result {
    if succeeds(&mut cargo(["nextest", "--version"])) {
        return Ok(());
    }
    util::run(&mut cargo(["install", "--locked", "cargo-nextest"]))
}

/// The path of `s3s-fs`, installed first (about two minutes) if it is not found.
fn ensure_s3s_fs() -> Result<std::path::PathBuf> {
    if let Some(path) = find_tool("s3s-fs") {
        return Ok(path);
    }
    util::run(&mut cargo(["install", "--locked", &format!("s3s-fs@{S3S_FS_VERSION}"), "--features", "binary"]))?;
    find_tool("s3s-fs").ok_or_else(|| "`cargo install s3s-fs` succeeded but no s3s-fs executable was found".to_owned())
}
