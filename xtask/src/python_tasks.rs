//! The Python guests of `cargo xtask build-tasks`: every folder under
//! `examples/tasks-py/` (an `app.py` implementing the `task` world, plus any modules
//! beside it) becomes `components/<folder>.wasm`, built by componentize-py.
//!
//! componentize-py comes from PyPI, pinned, in a venv under the target directory that
//! is created once (its folder name carries the version, so a new pin gets a new venv).
//! A component is rebuilt only when a source file, the WIT contract or componentize-py
//! is newer than it. The sources are copied to a staging folder first, because
//! componentize-py's build-time interpreter writes `__pycache__` beside them.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use crate::python::ensure_venv;
use crate::util::{self, Result, list_dir, modified, repo_root};

/// The componentize-py release the components are built with.
const COMPONENTIZE_PY_VERSION: &str = "0.25.1";
/// The module every Python guest folder must provide.
const APP_MODULE: &str = "app";

/// Builds each folder under `examples/tasks-py/` into `out_dir/<folder>.wasm`, using
/// `build_dir` for the venv and the staged sources. `taken` are the names of the
/// components already built (the Rust guests), which a Python guest may not reuse.
pub fn build(build_dir: &Path, out_dir: &Path, taken: &[String]) -> Result {
    let root = repo_root();
    let guests = guest_folders(&root.join("examples").join("tasks-py"))?;
    if let Some((name, _)) = guests.iter().find(|(name, _)| taken.contains(name)) {
        return Err(format!("examples/tasks-py/{name} has the same name as the Rust guest crate `{name}`; rename one"));
    }
    if guests.is_empty() {
        return Ok(());
    }
    let venv = build_dir.join(format!("componentize-py-{COMPONENTIZE_PY_VERSION}"));
    let python = ensure_venv(&venv, &[&format!("componentize-py=={COMPONENTIZE_PY_VERSION}")], &["componentize_py"])?;
    let tool = python.with_file_name("componentize-py");
    let wit = root.join("core").join("wit");
    let shared_inputs = newest(&wit)?.max(modified(&tool));
    for (name, source) in &guests {
        let component = out_dir.join(format!("{name}.wasm"));
        let built = modified(&component);
        if built.is_some() && built >= newest(source)?.max(shared_inputs) {
            continue;
        }
        let staged = build_dir.join("python").join(name);
        stage(source, &staged)?;
        let tmp = component.with_extension("wasm.tmp");
        // componentize-py adds an activated venv's packages to the guest's module path;
        // the guest gets only its own folder (and the standard library).
        util::run(
            Command::new(&tool)
                .env_remove("VIRTUAL_ENV")
                .arg("-q")
                .arg("-d")
                .arg(&wit)
                .args(["-w", "task", "componentize", APP_MODULE, "-p"])
                .arg(&staged)
                .arg("-o")
                .arg(&tmp),
        )?;
        fs::rename(&tmp, &component).map_err(|err| format!("cannot write {}: {err}", component.display()))?;
        eprintln!("built {}", component.display());
    }
    Ok(())
}

/// The Python guests under `dir` as (name, folder), sorted: every folder holding
/// `app.py` (none when `dir` does not exist). A folder without it is an error.
fn guest_folders(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut guests = Vec::new();
    for path in list(dir)? {
        if !path.is_dir() {
            continue;
        }
        if !path.join(format!("{APP_MODULE}.py")).is_file() {
            return Err(format!("{} has no {APP_MODULE}.py, the module a Python guest must provide", path.display()));
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| format!("{} is not a UTF-8 name", path.display()))?
            .to_owned();
        guests.push((name, path));
    }
    guests.sort();
    Ok(guests)
}

/// The entries of `dir`, skipping `__pycache__`.
fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut paths = list_dir(dir)?;
    paths.retain(|path| path.file_name().is_some_and(|name| name != "__pycache__"));
    Ok(paths)
}

/// The latest modification time of any file under `dir`.
fn newest(dir: &Path) -> Result<Option<SystemTime>> {
    let mut latest = None;
    for path in list(dir)? {
        let time = if path.is_dir() { newest(&path)? } else { modified(&path) };
        latest = latest.max(time);
    }
    Ok(latest)
}

/// Replaces `staged` with a copy of the files under `source`.
fn stage(source: &Path, staged: &Path) -> Result {
    if staged.exists() {
        fs::remove_dir_all(staged).map_err(|err| format!("cannot remove {}: {err}", staged.display()))?;
    }
    fs::create_dir_all(staged).map_err(|err| format!("cannot create {}: {err}", staged.display()))?;
    for path in list(source)? {
        let to = staged.join(path.file_name().expect("a listed entry has a name"));
        if path.is_dir() {
            stage(&path, &to)?;
        } else {
            fs::copy(&path, &to).map_err(|err| format!("cannot copy {} to {}: {err}", path.display(), to.display()))?;
        }
    }
    Ok(())
}
