//! `cargo xtask build-tasks`: builds every guest crate under `examples/tasks/` and every
//! Python guest under `examples/tasks-py/` into a WebAssembly component,
//! `target/wasm-tasks/components/<name>.wasm`.
//!
//! 1. Picks a toolchain for `wasm32-wasip1`: rustup's target when `rustup` exists and
//!    the target is (or can be) installed; otherwise Debian's `rustc-web` with the
//!    standard library built from `rust-web-src`, linked by `wasm-ld-16` against
//!    `wasi-libc` (those packages are installed with `apt-get` when missing).
//! 2. `cargo build --release` of the `examples/tasks` workspace into `target/wasm-tasks`.
//! 3. Turns each core module into a component with the WASI preview 1 *proxy* adapter
//!    matching the worker's wasmtime, skipping modules older than their component. Of
//!    WASI, that adapter imports only stdio, clocks and random numbers (file and
//!    environment calls fail inside the guest), which is all a task may use: fewer
//!    imports to link make each task's instantiation about a tenth cheaper than with
//!    the full (reactor) adapter.
//! 4. Builds each Python guest with componentize-py (pinned, from PyPI, in a venv under
//!    `target/wasm-tasks`), skipping those older than their component; see
//!    [`crate::python_tasks`].
//!
//! It is idempotent: with nothing changed it costs one no-op cargo build and one probe of
//! the componentize-py venv.
//! `TESSERA_GUEST_TOOLCHAIN=debian` forces the Debian route.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_PROXY_ADAPTER,
};

use crate::python_tasks;
use crate::util::{self, Result, find_tool, list_dir, modified, repo_root, succeeds, target_dir};

/// The guest target.
const TARGET: &str = "wasm32-wasip1";
/// Debian packages of the fallback toolchain.
const DEBIAN_PACKAGES: &[&str] = &["rustc-web", "cargo-web", "rust-web-src", "wasi-libc", "lld-16"];
/// Where Debian's `wasi-libc` puts the WASI sysroot libraries.
const DEBIAN_WASI_LIBS: &str = "/usr/lib/wasm32-wasi";
/// Code generation flags of the guests on both routes: WebAssembly SIMD, so element
/// loops vectorise (wasmtime compiles it to the host's vector instructions), and loops
/// unrolled four times. wasmtime checks a task's time limit at every loop iteration,
/// and around that check (a possible call into the host) it keeps the loop's vector
/// constants in memory, reloading and storing them each time: an unrolled loop pays
/// that once per four iterations (the gaussian example runs about 17% faster).
const GUEST_RUSTFLAGS: &str = "-C target-feature=+simd128 -C llvm-args=-unroll-runtime -C llvm-args=-unroll-count=4";
/// Set to `debian` to skip rustup and build with Debian's toolchain (the route a
/// machine without rustup's download server takes).
const FORCE_DEBIAN_ENV: &str = "TESSERA_GUEST_TOOLCHAIN";
/// The environment variable that points tests at the built components.
pub const COMPONENTS_ENV: &str = "TESSERA_TEST_COMPONENTS";

/// Builds every guest (Rust, then Python); returns the directory holding the components.
pub fn run() -> Result<PathBuf> {
    let workspace = repo_root().join("examples").join("tasks");
    let crates = guest_crates(&workspace)?;
    let build_dir = target_dir().join("wasm-tasks");
    let mut cmd = cargo_for_wasm()?;
    cmd.args(["build", "--release", "--target", TARGET, "--target-dir"]).arg(&build_dir).current_dir(&workspace);
    util::run(&mut cmd)?;

    let out_dir = build_dir.join("components");
    fs::create_dir_all(&out_dir).map_err(|err| format!("cannot create {}: {err}", out_dir.display()))?;
    for name in &crates {
        let module = build_dir.join(TARGET).join("release").join(format!("{}.wasm", name.replace('-', "_")));
        let component = out_dir.join(format!("{name}.wasm"));
        if modified(&component).is_some_and(|c| modified(&module).is_some_and(|m| m <= c)) {
            continue;
        }
        componentize(&module, &component)?;
        eprintln!("built {}", component.display());
    }
    python_tasks::build(&build_dir, &out_dir, &crates)?;
    eprintln!("{COMPONENTS_ENV}={}", out_dir.display());
    Ok(out_dir)
}

/// The package names of the guest crates (every folder of `workspace` with a
/// `Cargo.toml`), sorted.
fn guest_crates(workspace: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for dir in list_dir(workspace)? {
        let manifest = dir.join("Cargo.toml");
        if !manifest.is_file() {
            continue;
        }
        let text = fs::read_to_string(&manifest).map_err(|err| format!("cannot read {}: {err}", manifest.display()))?;
        let name = text
            .lines()
            .find_map(|line| line.trim().strip_prefix("name = \"")?.strip_suffix('"').map(str::to_owned))
            .ok_or_else(|| format!("{} has no package name", manifest.display()))?;
        names.push(name);
    }
    names.sort();
    if names.is_empty() {
        return Err(format!("no guest crates under {}", workspace.display()));
    }
    Ok(names)
}

/// A `cargo` able to build for `wasm32-wasip1`: rustup's target if it can be had,
/// otherwise Debian's toolchain with the standard library built from source.
fn cargo_for_wasm() -> Result<Command> {
    if env::var_os(FORCE_DEBIAN_ENV).is_some_and(|v| v == "debian") {
        eprintln!("{FORCE_DEBIAN_ENV}=debian: using Debian's toolchain");
        return debian_cargo();
    }
    if find_tool("rustup").is_some() {
        if rustup_has_target() {
            return Ok(rustup_cargo());
        }
        match util::run(Command::new("rustup").args(["target", "add", TARGET])) {
            Ok(()) if rustup_has_target() => return Ok(rustup_cargo()),
            Ok(()) => eprintln!("rustup did not install {TARGET}; using Debian's toolchain"),
            Err(err) => eprintln!("{err}; using Debian's toolchain"),
        }
    }
    debian_cargo()
}

/// The cargo running this xtask, with the guests' code generation flags.
fn rustup_cargo() -> Command {
    let mut cmd = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.env("CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS", GUEST_RUSTFLAGS);
    cmd
}

fn rustup_has_target() -> bool {
    let mut cmd = Command::new("rustup");
    cmd.args(["target", "list", "--installed"]);
    util::capture(&mut cmd).is_ok_and(|out| {
        out.status.success() && String::from_utf8_lossy(&out.stdout).lines().any(|l| l.trim() == TARGET)
    })
}

/// Debian's cargo set up to build std for `wasm32-wasip1` (packages installed first
/// when missing).
fn debian_cargo() -> Result<Command> {
    let ready = || {
        Path::new("/usr/bin/cargo").is_file()
            && Path::new("/usr/bin/rustc").is_file()
            && Path::new(DEBIAN_WASI_LIBS).is_dir()
            && find_tool("wasm-ld-16").is_some()
            && succeeds(Command::new("/usr/bin/rustc").args(["--print", "sysroot"]))
    };
    if !ready() {
        util::apt_install(DEBIAN_PACKAGES)?;
        if !ready() {
            return Err(format!("installed {} but the toolchain is still incomplete", DEBIAN_PACKAGES.join(" ")));
        }
    }
    let path = env::var_os("PATH").unwrap_or_default();
    let path = env::join_paths(std::iter::once(PathBuf::from("/usr/bin")).chain(env::split_paths(&path)))
        .map_err(|err| format!("cannot build PATH: {err}"))?;
    let mut cmd = Command::new("/usr/bin/cargo");
    cmd.env("PATH", path)
        .env("RUSTC", "/usr/bin/rustc")
        .env("RUSTC_BOOTSTRAP", "1")
        .env(
            "RUSTFLAGS",
            format!("{GUEST_RUSTFLAGS} -C linker=wasm-ld-16 -C link-self-contained=no -L native={DEBIAN_WASI_LIBS}"),
        )
        .env_remove("RUSTUP_TOOLCHAIN")
        .args(["-Z", "build-std=std,panic_abort"]);
    Ok(cmd)
}

/// Wraps the core module at `module` with the proxy adapter into a component.
fn componentize(module: &Path, component: &Path) -> Result {
    let bytes = fs::read(module).map_err(|err| format!("cannot read {}: {err}", module.display()))?;
    let encoded = wit_component::ComponentEncoder::default()
        .module(&bytes)
        .and_then(|e| e.adapter(WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_PROXY_ADAPTER))
        .and_then(|e| e.validate(true).encode())
        .map_err(|err| format!("cannot make a component of {}: {err:#}", module.display()))?;
    let tmp = component.with_extension("wasm.tmp");
    fs::write(&tmp, encoded).map_err(|err| format!("cannot write {}: {err}", tmp.display()))?;
    fs::rename(&tmp, component).map_err(|err| format!("cannot write {}: {err}", component.display()))
}
