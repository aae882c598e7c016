//! WASM tasks end to end with real guest components: the sandbox's limits and denials,
//! loading checks, value conversion, and agreement with the native kernels.
//!
//! The guest components are built by `cargo xtask build-tasks`, which prints (and
//! `cargo xtask test` exports) `TESSERA_TEST_COMPONENTS`, the folder holding them. Run
//! alone without it, the tests that need them skip, unless
//! `TESSERA_REQUIRE_TEST_SERVICES` is set. The loading checks need no guest.

use ndarray::{ArrayD, IxDyn};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera_core::op::WasmTask;
use tessera_core::{Chunk, DType, Element, Key, Op, Scalar, Task, Value};
use tessera_worker::kernels::image::gaussian_filter;
use tessera_worker::pool::{Job, TaskPool};
use tessera_worker::wasm::{self, WasmConfig, WasmRuntime};

mod components;
use components::component;

/// Test limits: small enough that hitting them is quick.
fn config() -> WasmConfig {
    WasmConfig {
        memory_limit: 64 << 20,
        time_limit: Duration::from_millis(500),
        output_limit: 1000,
        max_concurrent_tasks: 4,
        cache_dir: None,
    }
}

/// A runtime with `name` registered, and the task op builder for it.
fn setup(name: &str) -> Option<(WasmRuntime, impl Fn(&str, serde_json::Value) -> WasmTask)> {
    let bytes = component(name)?;
    let rt = WasmRuntime::new(config()).unwrap();
    let module = rt.register(&bytes).unwrap().sha256().to_owned();
    let op = move |task: &str, params: serde_json::Value| WasmTask {
        module: module.clone(),
        task: task.into(),
        params: params.to_string(),
        blockwise: true,
        window: None,
    };
    Some((rt, op))
}

fn key(name: &str) -> Key {
    Key::new(name, [3, 1])
}

fn chunk<T: Element>(shape: &[usize], f: impl Fn(usize) -> T) -> Value {
    let n = shape.iter().product();
    Value::Chunk(Chunk::from_array(ArrayD::from_shape_vec(IxDyn(shape), (0..n).map(f).collect()).unwrap()))
}

fn error_of(rt: &WasmRuntime, op: &WasmTask, key: &Key, args: &[&Value]) -> String {
    match rt.run(op, key, args).result {
        Ok(v) => panic!("task {} should have failed, returned {v:?}", op.task),
        Err(e) => e.to_string(),
    }
}

#[test]
fn an_infinite_loop_hits_the_time_limit_and_the_next_task_runs() {
    let Some((rt, op)) = setup("probes") else { return };
    let start = Instant::now();
    let err = error_of(&rt, &op("spin", json!(null)), &key("spin"), &[]);
    let took = start.elapsed();
    assert!(err.contains("time limit"), "{err}");
    assert!(err.contains("spin(3,1)"), "the error names the task key: {err}");
    assert!(took >= Duration::from_millis(450) && took < Duration::from_secs(5), "stopped after {took:?}");
    let next = rt.run(&op("shout", json!({ "bytes": 3 })), &key("shout"), &[]);
    assert_eq!(next.result.unwrap(), Value::Chunk(Chunk::scalar(Scalar::U64(3))));
    assert_eq!(next.output.stdout, "xxx");
}

#[test]
fn allocating_past_the_cap_hits_the_memory_limit() {
    let Some((rt, op)) = setup("probes") else { return };
    let err = error_of(&rt, &op("hog", json!({ "mib": 200 })), &key("hog"), &[]);
    assert!(err.contains("memory limit"), "{err}");
    assert!(err.contains(&(64u64 << 20).to_string()), "the error gives the limit: {err}");
    // Within the cap the same task succeeds, in a fresh store.
    let ok = rt.run(&op("hog", json!({ "mib": 16 })), &key("hog"), &[]).result.unwrap();
    assert_eq!(ok, Value::Chunk(Chunk::scalar(Scalar::U64(16))));
}

#[test]
fn a_panic_reaches_the_caller_with_the_guest_message_and_the_key() {
    let Some((rt, op)) = setup("probes") else { return };
    let err = error_of(&rt, &op("boom", json!(null)), &Key::new("explode", [7]), &[]);
    assert!(err.contains("task explode(7) failed"), "{err}");
    assert!(err.contains("boom at explode(7)"), "the guest's panic message is kept: {err}");
}

#[test]
fn files_sockets_and_the_environment_are_denied() {
    let Some((rt, op)) = setup("probes") else { return };
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "secret").unwrap();
    let path = file.path().display().to_string();
    for p in [path.as_str(), "/etc/passwd", "."] {
        let err = error_of(&rt, &op("read_file", json!({ "path": p })), &key("read"), &[]);
        assert!(err.contains(&format!("cannot read {p}")), "{err}");
        assert!(!err.contains("secret"), "{err}");
    }

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let err = error_of(&rt, &op("connect", json!({ "addr": addr })), &key("net"), &[]);
    assert!(err.contains("cannot connect"), "{err}");
    assert!(listener.accept().is_err(), "the guest reached a host socket");

    let seen = rt.run(&op("environment", json!(null)), &key("env"), &[]).result.unwrap();
    assert_eq!(seen, Value::Json(json!({ "vars": [], "args": [] })));
    assert!(std::env::vars().next().is_some(), "the host has variables the guest must not see");
}

#[test]
fn random_numbers_depend_only_on_the_task_key() {
    let Some((rt, op)) = setup("probes") else { return };
    let draw = |k: &Key| rt.run(&op("random", json!(null)), k, &[]).result.unwrap();
    let a = draw(&key("r"));
    assert_eq!(a, draw(&key("r")), "a rerun of the same task sees the same randomness");
    assert_ne!(a, draw(&Key::new("r", [3, 2])), "another task sees other randomness");
}

#[test]
fn output_is_captured_and_capped() {
    let Some((rt, op)) = setup("probes") else { return };
    let run = rt.run(&op("chatty", json!(null)), &key("talk"), &[]);
    assert_eq!(run.result.unwrap(), Value::Json(json!("talk(3,1)")));
    assert_eq!(run.output.stdout, "hello from talk(3,1)\n");
    assert_eq!(run.output.stderr, "warning from talk(3,1)\n");
    assert!(!run.output.truncated);

    let run = rt.run(&op("shout", json!({ "bytes": 100_000 })), &key("shout"), &[]);
    assert_eq!(run.result.unwrap(), Value::Chunk(Chunk::scalar(Scalar::U64(100_000))), "long output is not an error");
    assert_eq!(run.output.stdout.len(), 1000);
    assert!(run.output.truncated);
}

#[test]
fn every_dtype_crosses_the_boundary_unchanged() {
    let Some((rt, op)) = setup("echo") else { return };
    let echo = op("echo", json!(null));
    for dtype in DType::ALL {
        let x = tessera_core::with_dtype!(dtype, T => chunk(&[3, 4], |i| T::from_scalar(Scalar::F64(i as f64 * 1.5 - 3.0))));
        assert_eq!(rt.run(&echo, &key("echo"), &[&x]).result.unwrap(), x, "{dtype}");
    }
    let scalar = Value::Chunk(Chunk::scalar(Scalar::F64(2.5)));
    assert_eq!(rt.run(&echo, &key("echo"), &[&scalar]).result.unwrap(), scalar);
    let strided = Value::Chunk(Chunk::from_array(
        ArrayD::from_shape_fn(IxDyn(&[3, 4]), |ix| ix[0] * 10 + ix[1]).reversed_axes().mapv(|v| v as u16),
    ));
    assert_eq!(rt.run(&echo, &key("echo"), &[&strided]).result.unwrap(), strided, "non-C-order input");
}

#[test]
fn a_windowed_task_keeps_only_its_window_of_the_result() {
    let Some((rt, op)) = setup("echo") else { return };
    let windowed = WasmTask { window: Some(vec![1..3, 0..2]), ..op("echo", json!(null)) };
    for dtype in [DType::U16, DType::F32, DType::Bool] {
        let value = |i: usize| Scalar::F64(i as f64);
        let x = tessera_core::with_dtype!(dtype, T => chunk(&[3, 4], |i| T::from_scalar(value(i))));
        // Element i of the window is element (1 + i / 2, i % 2) of the block.
        let want =
            tessera_core::with_dtype!(dtype, T => chunk(&[2, 2], |i| T::from_scalar(value((1 + i / 2) * 4 + i % 2))));
        assert_eq!(rt.run(&windowed, &key("echo"), &[&x]).result.unwrap(), want, "{dtype}");
    }
    let outside = WasmTask { window: Some(vec![0..3, 2..5]), ..op("echo", json!(null)) };
    let e = error_of(&rt, &outside, &key("echo"), &[&chunk(&[3, 4], |i| i as f32)]);
    assert!(e.contains("window [0..3, 2..5] does not fit an array of shape [3, 4]"), "{e}");
    let Some((rt, op)) = setup("probes") else { return };
    // A task told its window may return just that part, which is kept as it is.
    let told = WasmTask { window: Some(vec![1..3, 0..2]), ..op("window_start", json!(null)) };
    let got = rt.run(&told, &key("told"), &[&chunk(&[3, 4], |i| i as u8)]).result.unwrap();
    assert_eq!(got, chunk(&[2, 2], |_| 1u64));
    let bytes = WasmTask { window: Some(vec![0..1, 0..1]), ..op("random", json!(null)) };
    let e = error_of(&rt, &bytes, &key("random"), &[]);
    assert!(e.contains("the task returned no array, but an array block was expected"), "{e}");
}

#[test]
fn an_array_whose_data_does_not_fit_its_shape_fails_its_task() {
    let Some((rt, op)) = setup("probes") else { return };
    let e = error_of(&rt, &op("misshapen", json!(null)), &key("misshapen"), &[]);
    assert!(e.contains("task misshapen"), "{e}");
    assert!(e.contains("the task's array of shape [2, 2]"), "{e}");
    assert!(e.contains("15 bytes of data do not fit an array of float32 with shape [2, 2]"), "{e}");
}

#[test]
fn an_array_written_part_by_part_is_assembled_by_the_host() {
    let Some((rt, op)) = setup("probes") else { return };
    let build = |p: serde_json::Value| op("build", p);
    let whole = rt.run(&build(json!({ "shape": [3, 4], "part": 5 })), &key("build"), &[]).result.unwrap();
    assert_eq!(whole, chunk(&[3, 4], |i| i as f32));
    // A built array is cut to the task's window like any other.
    let windowed = WasmTask { window: Some(vec![1..3, 0..2]), ..build(json!({ "shape": [3, 4], "part": 5 })) };
    let got = rt.run(&windowed, &key("build"), &[]).result.unwrap();
    assert_eq!(got, chunk(&[2, 2], |i| ((1 + i / 2) * 4 + i % 2) as f32));
    // Written short of its shape, past its end, or larger than the memory limit allows.
    let e = error_of(&rt, &build(json!({ "shape": [3, 4], "part": 5, "written": 7 })), &key("build"), &[]);
    assert!(e.contains("only 7 of the 12 elements of an array of float32 with shape [3, 4] were written"), "{e}");
    let e = error_of(&rt, &build(json!({ "shape": [3, 4], "part": 5, "written": 14 })), &key("build"), &[]);
    assert!(
        e.contains("4 more elements of float32 run past the end of an array of shape [3, 4] (10 of 12 written)"),
        "{e}"
    );
    let e = error_of(&rt, &build(json!({ "shape": [17 << 20], "part": 1 })), &key("build"), &[]);
    assert!(
        e.contains("an array of 71303168 bytes would take the task's arrays to 71303168 bytes, more than its memory limit of 67108864 bytes"),
        "{e}"
    );
    let e = error_of(&rt, &build(json!({ "shape": [2], "part": 1, "scratch": 1_000_000 })), &key("build"), &[]);
    assert!(e.contains("a task may create at most 1024 array builders"), "{e}");
    let scratch = build(json!({ "shape": [2], "part": 1, "scratch": 1023 }));
    assert_eq!(rt.run(&scratch, &key("build"), &[]).result.unwrap(), chunk(&[2], |i| i as f32));
    // The worker goes on with the next task.
    assert_eq!(
        rt.run(&build(json!({ "shape": [2], "part": 1 })), &key("build"), &[]).result.unwrap(),
        chunk(&[2], |i| i as f32)
    );
}

#[test]
fn wrong_arguments_are_named() {
    let Some((rt, op)) = setup("gaussian") else { return };
    let g = op("gaussian", json!({ "sigma": [1.0] }));
    let bytes = Value::Bytes(vec![1, 2, 3]);
    let err = error_of(&rt, &g, &key("g"), &[&bytes]);
    assert!(err.contains("task `gaussian`: argument 1 `block`: expected an array, got bytes"), "{err}");
    let x = chunk(&[5], |i| i as f32);
    let err = error_of(&rt, &g, &key("g"), &[&x, &x]);
    assert!(err.contains("task `gaussian` takes 1 argument (block), got 2"), "{err}");
    let err = error_of(&rt, &op("gaussian", json!({ "sigma": "wide" })), &key("g"), &[&x]);
    assert!(err.contains("task `gaussian`: params"), "{err}");
    let err = error_of(&rt, &op("gaussian", json!({ "sigma": [1.0, 2.0] })), &key("g"), &[&x]);
    assert!(err.contains("got 2 sigmas [1.0, 2.0] for a 1-d block"), "{err}");
    let err = error_of(&rt, &op("blur", json!(null)), &key("g"), &[&x]);
    assert!(err.contains("no task `blur` in this component (it has: gaussian)"), "{err}");
}

#[test]
fn the_gaussian_task_equals_the_native_kernel() {
    let Some((rt, op)) = setup("gaussian") else { return };
    let cases: [(Value, Vec<f64>, f64); 9] = [
        (chunk(&[5, 19, 23], |i| ((i * 37) % 251) as u8), vec![0.0, 1.5, 2.0], 4.0),
        (chunk(&[4, 21, 18], |i| ((i * 7919) % 4099) as f32 * 0.5), vec![0.0, 2.0, 2.0], 4.0),
        (chunk(&[6, 37, 29], |i| ((i * 7919) % 4099) as u16), vec![1.0, 2.5, 1.5], 4.0),
        // Leading axes without a kernel: the task filters slab by slab.
        (chunk(&[3, 11, 13], |i| ((i * 7919) % 4099) as u16), vec![0.0, 1.5, 2.0], 4.0),
        (chunk(&[2, 3, 4, 17], |i| ((i * 13) % 29) as f64 - 7.5), vec![0.0, 0.0, 0.0, 1.2], 4.0),
        (chunk(&[4, 5], |i| i as i16 - 9), vec![0.0, 0.0], 4.0),
        (chunk(&[41, 23], |i| ((i * 31) % 97) as f64 * 0.25 - 3.0), vec![3.0, 0.0], 3.5),
        (chunk(&[9, 8], |i| i % 3 == 0), vec![0.8, 0.8], 4.0),
        (chunk(&[2, 3], |i| i as i64 - 2), vec![5.0, 7.0], 4.0),
    ];
    for (x, sigma, truncate) in cases {
        let native = gaussian_filter(x.as_chunk().unwrap(), &sigma, truncate, None).unwrap();
        let g = op("gaussian", json!({ "sigma": sigma, "truncate": truncate }));
        let wasm = rt.run(&g, &key("g"), &[&x]).result.unwrap();
        assert_eq!(wasm, Value::Chunk(native), "sigma {sigma:?}");
        // Mapped with a halo, the task computes only its block's window (one element
        // in from each side, where there are more than two), as the native kernel does.
        let window: Vec<_> =
            x.as_chunk().unwrap().shape().iter().map(|&n| if n > 2 { 1..n - 1 } else { 0..n }).collect();
        let native = gaussian_filter(x.as_chunk().unwrap(), &sigma, truncate, Some(&window)).unwrap();
        let windowed = WasmTask { window: Some(window.clone()), ..g };
        let wasm = rt.run(&windowed, &key("g"), &[&x]).result.unwrap();
        assert_eq!(wasm, Value::Chunk(native), "sigma {sigma:?}, window {window:?}");
    }
}

#[test]
fn stats_tasks_reduce_like_a_direct_computation() {
    let Some((rt, op)) = setup("stats") else { return };
    let blocks: Vec<Value> = (0..3).map(|b| chunk(&[4, 5], move |i| ((i * 13 + b * 7) % 11) as i32 - 4)).collect();
    let values: Vec<f64> = blocks
        .iter()
        .flat_map(|b| b.as_chunk().unwrap().typed::<i32>().unwrap().iter().map(|&v| f64::from(v)).collect::<Vec<_>>())
        .collect();
    let partials: Vec<Value> =
        blocks.iter().map(|b| rt.run(&op("partial", json!(null)), &key("p"), &[b]).result.unwrap()).collect();
    let combined = rt.run(&op("combine", json!(null)), &key("c"), &partials.iter().collect::<Vec<_>>()).result.unwrap();
    let Value::Json(stats) = rt.run(&op("aggregate", json!(null)), &key("a"), &[&combined]).result.unwrap() else {
        panic!("aggregate returns JSON")
    };
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let std = (values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt();
    assert_eq!(stats["count"], json!(60.0));
    assert!((stats["mean"].as_f64().unwrap() - mean).abs() < 1e-12, "{stats} vs mean {mean}");
    assert!((stats["std"].as_f64().unwrap() - std).abs() < 1e-12, "{stats} vs std {std}");
    assert_eq!(stats["min"], json!(values.iter().cloned().fold(f64::INFINITY, f64::min)));
    assert_eq!(stats["max"], json!(values.iter().cloned().fold(f64::NEG_INFINITY, f64::max)));
}

#[test]
fn the_pi_tasks_estimate_pi_from_keyed_seeds() {
    let Some((rt, op)) = setup("pi") else { return };
    let params = json!({ "samples": 200_000 });
    let counts: Vec<Value> =
        (0..8).map(|i| rt.run(&op("sample", params.clone()), &Key::new("pi", [i]), &[]).result.unwrap()).collect();
    assert_ne!(counts[0], counts[1], "each task has its own seed");
    let again = rt.run(&op("sample", params.clone()), &Key::new("pi", [0]), &[]).result.unwrap();
    assert_eq!(again, counts[0], "reruns are reproducible");
    let pi = rt.run(&op("estimate", params), &key("est"), &counts.iter().collect::<Vec<_>>()).result.unwrap();
    let pi = pi.as_chunk().unwrap().typed::<f64>().unwrap().first().copied().unwrap();
    assert!((pi - std::f64::consts::PI).abs() < 0.01, "estimated {pi}");
}

#[test]
fn a_component_lists_its_tasks() {
    let Some(bytes) = component("stats") else { return };
    let rt = WasmRuntime::new(config()).unwrap();
    let module = rt.register(&bytes).unwrap();
    let names: Vec<&str> = module.tasks().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["partial", "combine", "aggregate"]);
    let combine = &module.tasks()[1];
    assert_eq!(combine.doc, "Merges any number of partials into one.");
    assert_eq!(combine.signature, "(parts: Vec<Array1<f64>>) -> Result<Array1<f64>, String>");
    assert_eq!(rt.tasks(module.sha256()).unwrap(), module.tasks());
}

#[test]
fn bytes_that_are_not_a_task_component_are_rejected_at_load() {
    let rt = WasmRuntime::new(config()).unwrap();
    let err = |bytes: &[u8]| rt.register(bytes).err().expect("loading should fail").to_string();
    assert!(err(b"definitely not wasm").contains("not WebAssembly"));
    let core = wat::parse_str("(module (func (export \"call\")))").unwrap();
    assert!(err(&core).contains("a core WebAssembly module, not a component"), "{}", err(&core));
    let other_world = wat::parse_str("(component)").unwrap();
    let e = err(&other_world);
    assert!(e.contains("does not export the tessera:task world"), "{e}");
    let strange_import =
        wat::parse_str(r#"(component (import "evil:host/files" (instance (export "read" (func)))))"#).unwrap();
    let e = err(&strange_import);
    assert!(e.contains("imports something a task may not use"), "{e}");
    let unknown =
        WasmTask { module: "00".repeat(32), task: "x".into(), params: "null".into(), blockwise: false, window: None };
    let e = rt.run(&unknown, &key("x"), &[]).result.unwrap_err().to_string();
    assert!(e.contains("is not registered on this worker"), "{e}");
}

#[test]
fn compiled_components_are_cached_on_disk_and_checked() {
    let Some(bytes) = component("otsu") else { return };
    let dir = tempfile::tempdir().unwrap();
    let cached = || {
        let mut files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        files
    };
    let with_cache = || WasmRuntime::new(WasmConfig { cache_dir: Some(dir.path().into()), ..config() }).unwrap();
    let x = chunk(&[3], |i| i as f32);
    let mask = Value::Chunk(Chunk::from_array(ndarray::arr1(&[false, false, true]).into_dyn()));
    for round in 0..3 {
        let rt = with_cache();
        let module = rt.register(&bytes).unwrap().sha256().to_owned();
        let files = cached();
        assert_eq!(files.len(), 2, "round {round}: {files:?}");
        assert!(files[0].file_name().unwrap().to_str().unwrap().starts_with(&module));
        let op = WasmTask {
            module,
            task: "otsu".into(),
            params: json!({ "threshold": 1.5 }).to_string(),
            blockwise: true,
            window: None,
        };
        assert_eq!(rt.run(&op, &key("m"), &[&x]).result.unwrap(), mask, "round {round}");
        if round == 1 {
            // A damaged entry is never loaded: the component is compiled again.
            let code = files.iter().find(|p| p.extension().is_some_and(|e| e == "cwasm")).unwrap();
            let mut damaged = std::fs::read(code).unwrap();
            let mid = damaged.len() / 2;
            damaged[mid] ^= 0xff;
            std::fs::write(code, damaged).unwrap();
        }
    }
}

#[test]
fn worker_tasks_dispatch_wasm_ops_through_the_registry() {
    let Some(bytes) = component("probes") else { return };
    let rt = wasm::install_global(config()).unwrap();
    let module = rt.register(&bytes).unwrap().sha256().to_owned();
    let task = |name: &str| {
        let op = WasmTask {
            module: module.clone(),
            task: name.into(),
            params: "null".into(),
            blockwise: false,
            window: None,
        };
        Arc::new(Task::new(Op::Wasm(op), vec![]))
    };
    let (tx, rx) = crossbeam_channel::unbounded();
    let pool = TaskPool::new(1, move |o| tx.send(o).unwrap()).unwrap();
    pool.submit(Job { key: Key::new("spin", []), task: task("spin"), inputs: vec![] });
    pool.submit(Job { key: Key::new("chatty", [2]), task: task("chatty"), inputs: vec![] });
    let first = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    let err = first.result.unwrap_err().to_string();
    assert!(err.contains("task spin failed") && err.contains("time limit"), "{err}");
    let second = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(*second.result.unwrap(), Value::Json(json!("chatty(2)")));
    assert!(
        second.log.contains("hello from chatty(2)") && second.log.contains("warning from chatty(2)"),
        "{}",
        second.log
    );
    assert!(wasm::install_global(config()).is_err(), "the global runtime is set up once");
}
