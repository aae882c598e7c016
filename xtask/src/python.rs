//! Python virtual environments under the target directory, created once and reused.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{Result, run, succeeds};

/// The interpreter that creates the virtual environments.
const BOOTSTRAP_PYTHON: &str = "python3";

/// Returns the python of the venv at `dir`, first creating the venv and installing
/// `packages` from PyPI unless that python can already import every module in `imports`.
pub fn ensure_venv(dir: &Path, packages: &[&str], imports: &[&str]) -> Result<PathBuf> {
    let python = dir.join("bin").join("python");
    let probe = format!("import {}", imports.join(", "));
    let ready = || succeeds(Command::new(&python).args(["-c", &probe]));
    if ready() {
        return Ok(python);
    }
    run(Command::new(BOOTSTRAP_PYTHON).args(["-m", "venv"]).arg(dir))?;
    run(Command::new(&python)
        .args(["-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off"])
        .args(packages))?;
    if ready() {
        Ok(python)
    } else {
        Err(format!("`{}` still cannot `{probe}` after installing {}", python.display(), packages.join(" ")))
    }
}
