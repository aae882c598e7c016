//! Helpers shared by the commands: where the repository is, and echoing, running and
//! probing child processes.

use std::env;
use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A failure as a message for the person at the terminal; `main` prints it and exits 1.
pub type Result<T = ()> = std::result::Result<T, String>;

/// The workspace root (the parent of `xtask/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask/ lies inside the workspace root").to_path_buf()
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` if set, otherwise `<repo>/target`.
pub fn target_dir() -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => std::path::absolute(&dir).unwrap_or_else(|_| repo_root().join(dir)),
        None => repo_root().join("target"),
    }
}

/// A `cargo` command (the same cargo that runs xtask), started in the workspace root.
pub fn cargo<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.args(args).current_dir(repo_root());
    cmd
}

/// `cmd` as a shell-like line: program and arguments, quoted where needed (the cargo that
/// runs xtask shows as plain `cargo`).
pub fn display(cmd: &Command) -> String {
    let program = match env::var_os("CARGO") {
        Some(cargo) if cargo == cmd.get_program() => "cargo".to_owned(),
        _ => quote(cmd.get_program()),
    };
    std::iter::once(program).chain(cmd.get_args().map(quote)).collect::<Vec<_>>().join(" ")
}

fn quote(word: &OsStr) -> String {
    let word = word.to_string_lossy();
    if !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+%".contains(c)) {
        word.into_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Echoes `cmd` to stderr, runs it with inherited stdio, and fails unless it exits 0.
pub fn run(cmd: &mut Command) -> Result {
    eprintln!("$ {}", display(cmd));
    let status = cmd.status().map_err(|err| format!("could not start `{}`: {err}", display(cmd)))?;
    if status.success() { Ok(()) } else { Err(format!("`{}` failed ({status})", display(cmd))) }
}

/// Echoes `cmd` to stderr and runs it with stdout and stderr captured; the caller judges
/// the exit status.
pub fn capture(cmd: &mut Command) -> Result<Output> {
    eprintln!("$ {}", display(cmd));
    cmd.stdin(Stdio::null()).output().map_err(|err| format!("could not start `{}`: {err}", display(cmd)))
}

/// Runs `cmd` silently and tells whether it started and exited 0 (an "is it there?" probe).
pub fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// The path of executable `name` on `PATH`, or else in cargo's bin directory (where
/// `cargo install` puts it, even when that directory is not on `PATH`).
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let cargo_home = env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")));
    env::var_os("PATH")
        .iter()
        .flat_map(env::split_paths)
        .chain(cargo_home.map(|home| home.join("bin")))
        .map(|dir| dir.join(name))
        .find(|path| path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// When `path` was last modified, or `None` when it does not exist (or cannot be read).
pub fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The paths of the entries of `dir`, in no particular order.
pub fn list_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|err| format!("cannot list {}: {err}", dir.display()))?;
    entries
        .map(|entry| entry.map(|e| e.path()).map_err(|err| format!("cannot list {}: {err}", dir.display())))
        .collect()
}

/// Installs Debian packages with `apt-get`, never prompting (CI has no terminal); a
/// fresh machine's package lists may be missing or stale, so a failed install updates
/// them once and retries.
pub fn apt_install(packages: &[&str]) -> Result {
    let install = || {
        let mut cmd = Command::new("apt-get");
        cmd.env("DEBIAN_FRONTEND", "noninteractive").args(["install", "-y", "-q"]).args(packages);
        cmd
    };
    if run(&mut install()).is_err() {
        run(Command::new("apt-get").arg("update"))?;
        run(&mut install())?;
    }
    Ok(())
}
