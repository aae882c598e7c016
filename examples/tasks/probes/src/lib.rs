//! Probe tasks for testing the worker's sandbox: each one tries something a task must
//! not be able to do (run forever, allocate without bound, touch files, the network or
//! the environment) or fails in a known way, and reports what happened.

#![deny(unsafe_code)]

use serde::Deserialize;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use tessera_guest::bindings::tessera::task::types::{Dtype, Ndarray};
use tessera_guest::serde_json::{Value, json};
use tessera_guest::{AnyArrayBuf, ArrayBuf, ArrayBuilder, ArrayD, Context, WitValue, task};

/// Loops forever (the host must stop it with its time limit).
#[task]
fn spin() -> u64 {
    let mut i: u64 = 0;
    loop {
        i = std::hint::black_box(i.wrapping_add(1));
        if std::hint::black_box(i) == u64::MAX {
            return i;
        }
    }
}

/// Parameters of [`hog`].
#[derive(Deserialize)]
struct HogParams {
    /// How many MiB to allocate and touch.
    mib: usize,
}

/// Allocates `mib` MiB one MiB at a time, touching every page; returns the MiB held.
#[task]
fn hog(#[params] p: HogParams) -> u64 {
    let mut held: Vec<Vec<u8>> = Vec::new();
    for i in 0..p.mib {
        held.push(vec![(i % 251) as u8 + 1; 1 << 20]);
    }
    std::hint::black_box(&held);
    held.len() as u64
}

/// Panics with a recognisable message.
#[task]
fn boom(ctx: &Context) -> u64 {
    panic!("boom at {}", ctx.key)
}

/// Parameters of [`read_file`].
#[derive(Deserialize)]
struct PathParams {
    /// The file to read.
    path: String,
}

/// Tries to read a file; the error is the task's error.
#[task]
fn read_file(#[params] p: PathParams) -> Result<Vec<u8>, String> {
    std::fs::read(&p.path).map_err(|e| format!("cannot read {}: {e}", p.path))
}

/// Parameters of [`connect`].
#[derive(Deserialize)]
struct AddrParams {
    /// `host:port` to connect to.
    addr: String,
}

/// Tries to open a TCP connection; the error is the task's error.
#[task]
fn connect(#[params] p: AddrParams) -> Result<Vec<u8>, String> {
    std::net::TcpStream::connect(&p.addr)
        .map(|_| b"connected".to_vec())
        .map_err(|e| format!("cannot connect to {}: {e}", p.addr))
}

/// The environment variables and arguments the task can see, as JSON.
#[task]
fn environment() -> Value {
    let vars: Vec<(String, String)> = std::env::vars().collect();
    json!({ "vars": vars, "args": std::env::args().collect::<Vec<_>>() })
}

/// Random bytes from the host's WASI random source (through std's hash seeds).
#[task]
fn random() -> Vec<u8> {
    let a = RandomState::new().hash_one(0u64);
    let b = RandomState::new().hash_one(1u64);
    [a.to_le_bytes(), b.to_le_bytes()].concat()
}

/// Writes a line to stdout and one to stderr, then returns the task key as JSON.
#[task]
fn chatty(ctx: &Context) -> Value {
    println!("hello from {}", ctx.key);
    eprintln!("warning from {}", ctx.key);
    json!(ctx.key)
}

/// Parameters of [`shout`].
#[derive(Deserialize)]
struct ShoutParams {
    /// Bytes to print to stdout.
    bytes: usize,
}

/// Prints `bytes` bytes of `x` to stdout (for the host's output cap).
#[task]
fn shout(#[params] p: ShoutParams) -> u64 {
    print!("{}", "x".repeat(p.bytes));
    p.bytes as u64
}

/// An array of the shape of its block's window, every element the window's first
/// start (0 when it has no window): what it returns shows the window it was told.
#[task]
fn window_start(block: AnyArrayBuf, ctx: &Context) -> ArrayD<u64> {
    let shape: Vec<usize> = match ctx.window.as_slice() {
        [] => block.shape().to_vec(),
        window => window.iter().map(|w| w.len()).collect(),
    };
    let start = ctx.window.first().map_or(0, |w| w.start as u64);
    ArrayD::from_elem(shape, start)
}

/// Parameters of [`fail_on`].
#[derive(Deserialize)]
struct FailOnParams {
    /// The element value whose block fails.
    value: f64,
}

/// Returns its block unchanged, or fails naming the block when it holds `value`: one
/// failing block among blocks that succeed.
#[task]
fn fail_on(block: ArrayBuf<f64>, #[params] p: FailOnParams, ctx: &Context) -> Result<ArrayBuf<f64>, String> {
    if block.as_slice().contains(&p.value) {
        return Err(format!("found {} in block {}", p.value, ctx.key));
    }
    Ok(block)
}

/// Parameters of [`build`].
#[derive(Deserialize)]
struct BuildParams {
    /// The shape of the array.
    shape: Vec<usize>,
    /// Elements appended in each part.
    part: usize,
    /// Elements appended in all (the whole array when absent).
    written: Option<usize>,
    /// Empty builders created (and dropped) first.
    #[serde(default)]
    scratch: usize,
}

/// A float32 array written through an [`ArrayBuilder`], element `i` being `i`, `part`
/// elements at a time; with `written`, that many elements, short of the shape or past
/// it (the host must refuse both); with `scratch`, that many empty builders first.
#[task]
fn build(#[params] p: BuildParams) -> Result<ArrayBuilder<f32>, String> {
    for _ in 0..p.scratch {
        ArrayBuilder::<f32>::new(&[0])?;
    }
    let mut out = ArrayBuilder::new(&p.shape)?;
    let written = p.written.unwrap_or(p.shape.iter().product());
    let values: Vec<f32> = (0..written).map(|i| i as f32).collect();
    for part in values.chunks(p.part.max(1)) {
        out.append(part)?;
    }
    Ok(out)
}

/// A 2 x 2 float32 array whose data is one byte short (the host must refuse it).
#[task]
fn misshapen() -> WitValue {
    WitValue::Array(Ndarray { dtype: Dtype::F32, shape: vec![2, 2], data: vec![0; 15] })
}

tessera_guest::export_tasks!(
    spin,
    hog,
    boom,
    read_file,
    connect,
    environment,
    random,
    chatty,
    shout,
    window_start,
    build,
    fail_on,
    misshapen
);
