//! A task written in Python (`examples/tasks-py/normalize`, built with componentize-py)
//! runs through the same runtime as the Rust guests: the contract is not Rust-only.
//!
//! The component is built by `cargo xtask build-tasks`, which prints (and
//! `cargo xtask test` exports) `TESSERA_TEST_COMPONENTS`, the folder holding it. Run
//! alone without it, these tests skip, unless `TESSERA_REQUIRE_TEST_SERVICES` is set.
//!
//! Compiling the component (CPython and the app, about 18 MB) takes tens of seconds, so
//! the compiled code is cached in cargo's per-test temporary folder, and
//! `.config/nextest.toml` runs these tests one at a time: the first compiles, the
//! others load the cache.

use ndarray::{ArrayD, IxDyn};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera_core::op::WasmTask;
use tessera_core::{Chunk, DType, Element, Key, Value};
use tessera_worker::wasm::{WasmConfig, WasmModule, WasmRuntime};

mod components;
use components::component;

/// Limits that fit CPython: its memory starts at the 13 MB heap snapshot componentize-py
/// takes at build time, and it unpacks a block into Python floats (tens of bytes per
/// element), so a 1000×1000 float64 block grew past 70 MB when measured: more than the
/// 64 MiB the Rust guests' tests allow (they work on the bytes in place). 128 MiB fits
/// that block; the blocks here are far smaller. Tasks take milliseconds; the time limit
/// only stops a hung one.
fn config() -> WasmConfig {
    WasmConfig {
        memory_limit: 128 << 20,
        time_limit: Duration::from_secs(10),
        output_limit: 4096,
        max_concurrent_tasks: 2,
        cache_dir: Some(Path::new(env!("CARGO_TARGET_TMPDIR")).join("wasm-python-cache")),
    }
}

/// A runtime with the Python component registered (the time it took is printed).
fn setup() -> Option<(WasmRuntime, Arc<WasmModule>)> {
    let bytes = component("normalize")?;
    let rt = WasmRuntime::new(config()).unwrap();
    let start = Instant::now();
    let module = rt.register(&bytes).unwrap();
    eprintln!("registered the {} byte Python component in {:?}", bytes.len(), start.elapsed());
    prune_cache(module.sha256());
    Some((rt, module))
}

/// Removes the cached code of earlier builds of the component (componentize-py's output
/// differs from build to build, and each entry is about 35 MB).
fn prune_cache(sha256: &str) {
    let dir = config().cache_dir.expect("the tests cache compiled code");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if !path.file_name().unwrap().to_string_lossy().starts_with(sha256) {
            std::fs::remove_file(&path).unwrap();
        }
    }
}

/// Task `task` of `module` with `params`, run on one block.
fn op(module: &WasmModule, task: &str, params: serde_json::Value) -> WasmTask {
    WasmTask {
        module: module.sha256().to_owned(),
        task: task.into(),
        params: params.to_string(),
        blockwise: true,
        window: None,
    }
}

fn chunk<T: Element>(shape: &[usize], f: impl Fn(usize) -> T) -> Value {
    let n = shape.iter().product();
    Value::Chunk(Chunk::from_array(ArrayD::from_shape_vec(IxDyn(shape), (0..n).map(f).collect()).unwrap()))
}

fn key(name: &str) -> Key {
    Key::new(name, [3, 1])
}

fn error_of(rt: &WasmRuntime, op: &WasmTask, args: &[&Value]) -> String {
    match rt.run(op, &key("n"), args).result {
        Ok(v) => panic!("task {} should have failed, returned {v:?}", op.task),
        Err(e) => e.to_string(),
    }
}

/// The values of an array result as float64, with its dtype and shape.
fn floats(value: &Value) -> (DType, Vec<usize>, Vec<f64>) {
    let c = value.as_chunk().unwrap();
    let values =
        tessera_core::with_dtype!(c.dtype(), T => c.typed::<T>().unwrap().iter().map(|v| v.to_f64()).collect());
    (c.dtype(), c.shape().to_vec(), values)
}

#[test]
fn the_python_component_lists_its_tasks() {
    let Some((rt, module)) = setup() else { return };
    let listed: Vec<(&str, &str, &str)> =
        module.tasks().iter().map(|t| (t.name.as_str(), t.doc.as_str(), t.signature.as_str())).collect();
    assert_eq!(
        listed,
        [
            (
                "minmax",
                "The block's value count and range as JSON (NaNs are skipped; null when none is left).",
                "(block: array<number>) -> json {count, min, max}"
            ),
            (
                "normalize",
                "The block rescaled from [min, max] to [0, 1] and clipped, as float64.",
                "(block: array<number>, params: {min: number, max: number}) -> array<f64>"
            ),
        ]
    );
    assert_eq!(rt.tasks(module.sha256()).unwrap(), module.tasks());
}

#[test]
fn python_normalizes_blocks_like_a_direct_computation() {
    let Some((rt, module)) = setup() else { return };
    let blocks = [
        chunk(&[6, 9], |i| if i == 7 { f64::NAN } else { ((i * 37) % 23) as f64 * 0.75 - 5.0 }),
        chunk(&[4, 5, 3], |i| ((i * 7919) % 4099) as u16),
        chunk(&[11], |i| i as f32 / 3.0 - 1.0),
    ];
    // Each block's range from the Python task, combined here into the array's range.
    let (mut lo, mut hi, mut count) = (f64::INFINITY, f64::NEG_INFINITY, 0);
    for (b, block) in blocks.iter().enumerate() {
        let Value::Json(range) = rt.run(&op(&module, "minmax", json!(null)), &key("r"), &[block]).result.unwrap()
        else {
            panic!("minmax returns JSON")
        };
        let values: Vec<f64> = floats(block).2.into_iter().filter(|v| !v.is_nan()).collect();
        let (min, max) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, z), &v| (a.min(v), z.max(v)));
        let got = (range["count"].as_u64(), range["min"].as_f64(), range["max"].as_f64());
        assert_eq!(got, (Some(values.len() as u64), Some(min), Some(max)), "block {b}: {range}");
        (lo, hi, count) = (lo.min(min), hi.max(max), count + values.len());
    }
    assert_eq!(count, 54 - 1 + 60 + 11);

    // The whole range maps onto [0, 1]; a narrower one clips.
    for (from, to) in [(lo, hi), (-1.0, 2.5)] {
        let normalize = op(&module, "normalize", json!({ "min": from, "max": to }));
        for (b, block) in blocks.iter().enumerate() {
            let (_, shape, input) = floats(block);
            let (dtype, out_shape, output) = floats(&rt.run(&normalize, &key("n"), &[block]).result.unwrap());
            assert_eq!((dtype, &out_shape), (DType::F64, &shape), "block {b}");
            for (x, y) in input.iter().zip(&output) {
                let expected = ((x - from) / (to - from)).clamp(0.0, 1.0);
                assert!(
                    (x.is_nan() && y.is_nan()) || (y - expected).abs() < 1e-12,
                    "block {b}, range [{from}, {to}]: {x} became {y}, expected {expected}"
                );
            }
        }
    }
}

#[test]
fn bad_arguments_get_the_python_error_message() {
    let Some((rt, module)) = setup() else { return };
    let x = chunk(&[5], |i| i as f64);
    let normalize = op(&module, "normalize", json!({ "min": 0, "max": 4 }));
    let err = error_of(&rt, &normalize, &[&Value::Bytes(vec![1, 2, 3])]);
    assert!(err.contains("task n(3,1) failed"), "the error names the task key: {err}");
    assert!(err.contains("task `normalize`: argument 1 `block`: expected an array, got bytes"), "{err}");
    let err = error_of(&rt, &normalize, &[&x, &x]);
    assert!(err.contains("task `normalize` takes 1 argument (block), got 2"), "{err}");
    let mask = chunk(&[5], |i| i % 2 == 0);
    let err = error_of(&rt, &normalize, &[&mask]);
    assert!(err.contains("task `normalize`: argument 1 `block`: expected a numeric array, got dtype bool"), "{err}");
    let err = error_of(&rt, &op(&module, "normalize", json!({ "min": 0 })), &[&x]);
    assert!(err.contains("task `normalize`: params `max` must be a finite number, got null"), "{err}");
    let err = error_of(&rt, &op(&module, "normalize", json!({ "min": 3, "max": 3 })), &[&x]);
    assert!(err.contains("task `normalize`: params `min` (3.0) must be less than `max` (3.0)"), "{err}");
    let err = error_of(&rt, &op(&module, "rescale", json!(null)), &[&x]);
    assert!(err.contains("no task `rescale` in this component (it has: minmax, normalize)"), "{err}");
}
