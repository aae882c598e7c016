//! `cargo xtask bench NAME…`: Tessera and its peer (Dask) side by side, on the same input,
//! in one run. Each suite prints one line per workload on stdout:
//!
//! ```text
//! BENCH <workload> tessera_s=<x> peer=<name> peer_s=<y> speedup=<y/x> tessera_rss_mib=<m> peer_rss_mib=<n>
//! ```
//!
//! Every side runs as its own process under `benches/harness/measure.py`, which reports
//! the peak resident memory of that process; the side itself prints its timed seconds.
//! The peers' Python (numpy, dask, zarr, scipy, scikit-image) lives in a venv at
//! `target/bench-venv`, created once. A suite is a module below with a row in [`SUITES`].

mod array;
mod image;
mod overhead;
mod wasm;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::python::ensure_venv;
use crate::util::{self, Result, capture, cargo, repo_root, target_dir};

/// A benchmark suite: `cargo xtask bench <name>` calls `run`.
struct Suite {
    name: &'static str,
    about: &'static str,
    run: fn(&Harness) -> Result,
}

const SUITES: &[Suite] = &[
    Suite { name: "array", about: "reductions over a random 20000×20000 f64 array (vs dask.array)", run: array::run },
    Suite {
        name: "image",
        about: "the `tessera demo` microscopy pipeline on 64×2048×2048 u16 (vs dask)",
        run: image::run,
    },
    Suite {
        name: "overhead",
        about: "scheduling overhead: merge-50000 and tree-15, local and 2 worker processes (vs dask, dask.distributed)",
        run: overhead::run,
    },
    Suite {
        name: "wasm",
        about: "gaussian smoothing as a WASM task (vs native and dask+scipy); tiny-task overhead",
        run: wasm::run,
    },
];

const PEER_PACKAGES: &[&str] = &["numpy", "dask[array]", "distributed", "zarr", "scipy", "scikit-image"];
const PEER_IMPORTS: &[&str] = &["numpy", "dask.array", "distributed", "zarr", "scipy.ndimage", "skimage.filters"];

/// The suites, one per line, for the usage text.
pub fn suite_list() -> String {
    SUITES
        .iter()
        .map(|suite| format!("                   {:<8}{}", suite.name, suite.about))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs the named suites in order, after preparing the venv and the release build once.
pub fn run(names: &[String]) -> Result {
    let known = || SUITES.iter().map(|suite| suite.name).collect::<Vec<_>>().join(", ");
    if names.is_empty() {
        return Err(format!("`cargo xtask bench` needs a suite name: {}", known()));
    }
    let suites = names
        .iter()
        .map(|name| {
            SUITES
                .iter()
                .find(|suite| suite.name == name)
                .ok_or_else(|| format!("unknown bench `{name}`; known: {}", known()))
        })
        .collect::<Result<Vec<_>>>()?;
    let harness = Harness::prepare()?;
    suites.iter().try_for_each(|suite| (suite.run)(&harness))
}

/// What every suite needs: the peers' python, the harness scripts and the release binaries.
pub struct Harness {
    python: PathBuf,
    scripts: PathBuf,
    release: PathBuf,
}

impl Harness {
    fn prepare() -> Result<Self> {
        let python = ensure_venv(&target_dir().join("bench-venv"), PEER_PACKAGES, PEER_IMPORTS)?;
        util::run(&mut cargo(["build", "--release", "-p", "tessera-cli", "-p", "tessera-bench"]))?;
        Ok(Self { python, scripts: repo_root().join("benches").join("harness"), release: target_dir().join("release") })
    }

    /// The bench venv's python, which runs the peer scripts.
    pub fn python(&self) -> &Path {
        &self.python
    }

    /// A script in `benches/harness/`.
    pub fn script(&self, name: &str) -> PathBuf {
        self.scripts.join(name)
    }

    /// A binary from the release build.
    pub fn release_bin(&self, name: &str) -> PathBuf {
        self.release.join(name)
    }

    /// A directory for a suite's inputs and outputs, kept between runs: `target/bench-data/<name>`.
    pub fn data_dir(&self, name: &str) -> PathBuf {
        target_dir().join("bench-data").join(name)
    }

    /// Runs `argv` under `measure.py` with `RUST_BACKTRACE` unset, and reads the value of
    /// `seconds_key` it printed and its peak RSS. Fails, showing its output and naming
    /// `side` and `workload`, if it exits non-zero or a value is missing. Its output is
    /// copied to stderr so details such as `threshold=` stay visible.
    pub fn measure<I, S>(&self, side: &str, workload: &str, seconds_key: &str, argv: I) -> Result<Measurement>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.measure_with_env(side, workload, seconds_key, argv, &[])
    }

    /// A [`Turn`] named `name`: each call measures `argv` as `side`'s run of `workload`,
    /// reading the seconds it printed under `seconds_key`.
    pub fn turn<'a>(
        &'a self,
        name: &'a str,
        side: &'a str,
        workload: &'a str,
        seconds_key: &'a str,
        argv: Vec<&'a OsStr>,
    ) -> Turn<'a> {
        (name, Box::new(move || self.measure(side, workload, seconds_key, &argv)))
    }

    /// [`Harness::measure`] with extra environment variables for the side's process.
    pub fn measure_with_env<I, S>(
        &self,
        side: &str,
        workload: &str,
        seconds_key: &str,
        argv: I,
        env: &[(&str, &str)],
    ) -> Result<Measurement>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(&self.python);
        cmd.envs(env.iter().copied());
        cmd.arg(self.script("measure.py"))
            .args(argv)
            .current_dir(repo_root())
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE");
        let output = capture(&mut cmd)?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let failure = |what: String| {
            format!("bench {workload}: the {side} side {what}\n--- stdout ---\n{stdout}--- stderr ---\n{stderr}")
        };
        if !output.status.success() {
            return Err(failure(format!("failed ({})", output.status)));
        }
        let value = |key: &str| last_value(&stdout, key).ok_or_else(|| failure(format!("printed no number `{key}=`")));
        let measurement = Measurement { seconds: value(seconds_key)?, rss_mib: value("rss_mib")? };
        for line in stdout.lines().chain(stderr.lines()) {
            eprintln!("  {side}| {line}");
        }
        Ok(measurement)
    }
}

/// One side's result for one workload.
#[derive(Debug)]
pub struct Measurement {
    /// The timed part, as the side reported it.
    pub seconds: f64,
    /// Peak resident memory of the side's process, in MiB.
    pub rss_mib: f64,
}

impl Measurement {
    /// The median time of `rounds` (the upper middle one of an even count) with the
    /// highest peak memory of any round.
    pub fn median(rounds: &[Measurement]) -> Measurement {
        let mut times: Vec<f64> = rounds.iter().map(|m| m.seconds).collect();
        times.sort_by(f64::total_cmp);
        Measurement {
            seconds: times.get(times.len() / 2).copied().unwrap_or(f64::NAN),
            rss_mib: rounds.iter().map(|m| m.rss_mib).fold(f64::NAN, f64::max),
        }
    }
}

/// One side of a benchmark run in turns: its name and how to measure it once.
pub type Turn<'a> = (&'a str, Box<dyn FnMut() -> Result<Measurement> + 'a>);

/// Measures the sides in turn, `rounds` times over (so a slow spell of the machine
/// falls on all of them alike), prints each side's round times under `workload`, and
/// returns each side's [median](Measurement::median), in the order given.
pub fn take_turns(workload: &str, rounds: usize, mut sides: Vec<Turn<'_>>) -> Result<Vec<Measurement>> {
    let mut measured: Vec<Vec<Measurement>> = sides.iter().map(|_| Vec::with_capacity(rounds)).collect();
    for _ in 0..rounds {
        for ((_, measure), times) in sides.iter_mut().zip(&mut measured) {
            times.push(measure()?);
        }
    }
    let line: Vec<String> = sides
        .iter()
        .zip(&measured)
        .map(|((name, _), times)| {
            let seconds: Vec<String> = times.iter().map(|m| format!("{:.6}", m.seconds)).collect();
            format!("{name} rounds_s={seconds:?}")
        })
        .collect();
    eprintln!("{workload}: {}", line.join(" "));
    Ok(measured.iter().map(|times| Measurement::median(times)).collect())
}

/// The last number printed as a whitespace-separated `key=<number>` field in `text`.
fn last_value(text: &str, key: &str) -> Option<f64> {
    text.split_whitespace()
        .filter_map(|field| field.split_once('='))
        .filter(|(k, _)| *k == key)
        .filter_map(|(_, v)| v.parse().ok())
        .next_back()
}

/// Prints the `BENCH` line for one workload.
pub fn report(workload: &str, tessera: &Measurement, peer: &str, peer_result: &Measurement) {
    println!(
        "BENCH {workload} tessera_s={} peer={peer} peer_s={} speedup={:.2} tessera_rss_mib={:.0} peer_rss_mib={:.0}",
        seconds(tessera.seconds),
        seconds(peer_result.seconds),
        peer_result.seconds / tessera.seconds,
        tessera.rss_mib,
        peer_result.rss_mib,
    );
}

/// `x` seconds with at least three decimals and four significant digits (a per-task
/// time of microseconds stays readable).
fn seconds(x: f64) -> String {
    let decimals = if x > 0.0 { (3 - x.log10().floor() as i32).clamp(3, 12) as usize } else { 3 };
    format!("{x:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(seconds: f64, rss_mib: f64) -> Measurement {
        Measurement { seconds, rss_mib }
    }

    #[test]
    fn median_takes_the_middle_time_and_the_highest_memory() {
        let odd = Measurement::median(&[m(9.0, 400.0), m(7.0, 450.0), m(8.0, 420.0)]);
        assert_eq!((odd.seconds, odd.rss_mib), (8.0, 450.0));
        let even = Measurement::median(&[m(2.0, 1.0), m(1.0, 3.0)]);
        assert_eq!((even.seconds, even.rss_mib), (2.0, 3.0));
        assert!(Measurement::median(&[]).seconds.is_nan());
    }

    #[test]
    fn sides_take_turns_and_each_gets_its_own_median() {
        let order = std::cell::RefCell::new(Vec::new());
        let side = |name: &'static str, times: Vec<f64>| -> Turn<'_> {
            let mut times = times.into_iter();
            let order = &order;
            (
                name,
                Box::new(move || {
                    order.borrow_mut().push(name);
                    Ok(m(times.next().expect("one time per round"), 1.0))
                }),
            )
        };
        let medians = take_turns("w", 3, vec![side("a", vec![5.0, 1.0, 3.0]), side("b", vec![2.0, 9.0, 4.0])]).unwrap();
        assert_eq!(medians.iter().map(|m| m.seconds).collect::<Vec<_>>(), [3.0, 4.0]);
        assert_eq!(*order.borrow(), ["a", "b", "a", "b", "a", "b"]);
        let failing: Turn = ("c", Box::new(|| Err("no luck".to_string())));
        assert_eq!(take_turns("w", 2, vec![failing]).unwrap_err(), "no luck");
    }

    #[test]
    fn the_last_number_printed_for_a_key_wins() {
        assert_eq!(last_value("a=1 seconds=2.5\nseconds=3 x=y", "seconds"), Some(3.0));
        assert_eq!(last_value("seconds=abc", "seconds"), None);
    }
}
