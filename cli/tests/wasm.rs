//! `tessera task list|run` and `tessera demo --wasm`: real `tessera` processes with the
//! example task components that `cargo xtask build-tasks` builds (`cargo xtask test`
//! exports `TESSERA_TEST_COMPONENTS`). Without them the tests skip, unless
//! `TESSERA_REQUIRE_TEST_SERVICES` is set.

use ndarray::{ArrayD, IxDyn};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tessera::array::{self, ZarrOptions};
use tessera::{Client, DType};

/// The folder of the built components, or `None` (skip).
fn components() -> Option<PathBuf> {
    match std::env::var("TESSERA_TEST_COMPONENTS") {
        Ok(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ if std::env::var_os("TESSERA_REQUIRE_TEST_SERVICES").is_some() => {
            panic!("TESSERA_TEST_COMPONENTS is not set but TESSERA_REQUIRE_TEST_SERVICES is")
        }
        _ => {
            eprintln!("skipping: TESSERA_TEST_COMPONENTS is not set (run `cargo xtask build-tasks`)");
            None
        }
    }
}

fn tessera(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tessera")).args(args).output().unwrap()
}

fn succeeded(output: Output) -> String {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

fn failed(output: Output) -> String {
    assert!(!output.status.success(), "expected a failure: {}", String::from_utf8_lossy(&output.stdout));
    String::from_utf8(output.stderr).unwrap()
}

fn client() -> Client {
    Client::local_with(2, None).unwrap().with_progress(false)
}

/// Writes `data` as a Zarr array at `path` and returns the path as text.
fn zarr(path: &Path, data: ArrayD<f64>) -> String {
    let url = path.to_str().unwrap().to_owned();
    array::from_ndarray(data, &[4, 4]).unwrap().to_zarr_with(&client(), &url, "/", &ZarrOptions::default()).unwrap();
    url
}

fn read(url: &str) -> ArrayD<f64> {
    let a = array::from_zarr(url, "/").unwrap();
    assert_eq!(a.dtype(), DType::F64);
    a.compute_with(&client()).unwrap().into_typed::<f64>().unwrap()
}

#[test]
fn task_list_prints_each_task_with_its_signature() {
    let Some(dir) = components() else { return };
    let stdout = succeeded(tessera(&["task", "list", dir.join("stats.wasm").to_str().unwrap()]));
    for task in ["partial(block: AnyArray)", "combine(", "aggregate(total: Array1<f64>)"] {
        assert!(stdout.contains(task), "{task} missing from:\n{stdout}");
    }
    assert!(stdout.contains("Merges any number of partials into one."), "{stdout}");
    let stderr = failed(tessera(&["task", "list", "/nonexistent/x.wasm"]));
    assert!(stderr.contains("/nonexistent/x.wasm"), "{stderr}");
}

#[test]
fn task_run_passes_whole_arrays_and_writes_or_prints_the_result() {
    let Some(dir) = components() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let grid = |f: fn(usize, usize) -> f64| ArrayD::from_shape_fn(IxDyn(&[6, 10]), |ix| f(ix[0], ix[1]));
    let signal = zarr(&tmp.path().join("s.zarr"), grid(|y, x| (y * 10 + x) as f64));
    let reference = zarr(&tmp.path().join("r.zarr"), grid(|y, x| (y + x) as f64 + 100.0));
    let background = zarr(&tmp.path().join("b.zarr"), grid(|_, _| 2.0));
    let out = tmp.path().join("ratio.zarr").to_str().unwrap().to_owned();
    let ratio = dir.join("ratio.wasm").to_str().unwrap().to_owned();
    let args = ["task", "run", &ratio, "ratio", "--input", &signal, "--input", &reference, "--input", &background];
    let stdout = succeeded(tessera(&[&args[..], &["--out", &out]].concat()));
    assert!(stdout.contains("shape [6, 10], dtype float64"), "{stdout}");
    let expected = grid(|y, x| ((y * 10 + x) as f64 - 2.0) / ((y + x) as f64 + 98.0));
    assert_eq!(read(&out), expected);

    // A JSON result is printed; --params reach the task.
    let stats = dir.join("stats.wasm").to_str().unwrap().to_owned();
    let partial = succeeded(tessera(&["task", "run", &stats, "partial", "--input", &signal]));
    assert!(partial.contains("array shape [5] dtype float64"), "{partial}");
    assert!(partial.contains("[60, 29.5,"), "count 60 and mean 29.5 first: {partial}");
    let otsu = dir.join("otsu.wasm").to_str().unwrap().to_owned();
    let mask = succeeded(tessera(&[
        "task",
        "run",
        &otsu,
        "otsu",
        "--input",
        &background,
        "--params",
        r#"{"threshold": 1.5}"#,
    ]));
    assert!(mask.contains("dtype bool") && !mask.contains("false"), "{mask}");

    // Mistakes are named.
    let stderr = failed(tessera(&["task", "run", &otsu, "otsu", "--input", &background, "--params", "{threshold"]));
    assert!(stderr.contains("--params is not JSON"), "{stderr}");
    let stderr = failed(tessera(&["task", "run", &otsu, "median", "--input", &background]));
    assert!(stderr.contains("has no task `median` (it has: otsu)"), "{stderr}");
    let stderr = failed(tessera(&["task", "run", &otsu, "otsu", "--input", &background]));
    assert!(stderr.contains("task `otsu`: params null") && stderr.contains("expected struct Params"), "{stderr}");
    assert_eq!(stderr.matches("failed").count(), 1, "the task is named once: {stderr}");
}

#[test]
fn demo_with_wasm_tasks_writes_the_native_mask() {
    let Some(dir) = components() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let demo = |out: &Path, wasm: bool| {
        let mut args = vec!["demo", "--shape", "4,64,72", "--chunks", "2,32,40", "--threads", "2", "--out"];
        args.push(out.to_str().unwrap());
        if wasm {
            args.extend(["--wasm", "--components", dir.to_str().unwrap()]);
        }
        succeeded(tessera(&args))
    };
    let native = demo(&tmp.path().join("native"), false);
    let wasm = demo(&tmp.path().join("wasm"), true);
    assert!(wasm.contains("smoothing and mask by gaussian.wasm and otsu.wasm"), "{wasm}");
    let line = |text: &str, name: &str| text.lines().find(|l| l.starts_with(name)).unwrap_or_default().to_owned();
    assert_eq!(line(&native, "threshold="), line(&wasm, "threshold="));
    let mask = |run: &str| {
        let url = tmp.path().join(run).join("mask.zarr");
        let a = array::from_zarr(url.to_str().unwrap(), "/").unwrap();
        a.compute_with(&client()).unwrap().into_typed::<bool>().unwrap()
    };
    let native_mask = mask("native");
    assert!(native_mask.iter().any(|&v| v) && native_mask.iter().any(|&v| !v));
    assert_eq!(mask("wasm"), native_mask);
}
