//! The scheduling-overhead workloads of `cargo xtask bench overhead` (the RSDS graphs):
//!
//! - `merge N`: N independent trivial tasks (each makes a 0-d block holding its index),
//!   merged by one task that adds them all;
//! - `tree DEPTH`: a binary tree reduction: 2^DEPTH trivial leaves added pairwise up to
//!   one root (2^(DEPTH+1) − 1 tasks).
//!
//! Each runs on `Client::local()` or, given a scheduler address (token in
//! `TESSERA_TOKEN`), on that cluster. The timed part is submit → result, run
//! [`ROUNDS`] times and reported as the median; every result is checked against its
//! closed form.

use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera::{Client, DType, Error, Graph, Key, Result, Scalar, Value};
use tessera_core::Task;
use tessera_core::op::{ArrayOp, Op};

/// How many times each graph is computed locally; the median time is reported.
const ROUNDS: usize = 3;

/// A trivial leaf: a 0-d float64 block holding `i`.
fn leaf(i: u64) -> Task {
    Task::new(Op::Array(ArrayOp::Full { shape: vec![], value: Scalar::F64(i as f64), dtype: DType::F64 }), vec![])
}

/// `merge N`: its graph, output key and expected sum.
fn merge(n: u64) -> (Graph, Key, f64) {
    let mut graph = Graph::new();
    let name: Arc<str> = "leaf".into();
    let leaves: Vec<Key> = (0..n).map(|i| Key::new(name.clone(), [i])).collect();
    for (i, key) in leaves.iter().enumerate() {
        graph.insert(key.clone(), leaf(i as u64));
    }
    let out = Key::new("merge", []);
    graph.insert(out.clone(), Task::new(Op::Array(ArrayOp::AddN), leaves));
    (graph, out, (n * (n - 1) / 2) as f64)
}

/// `tree DEPTH`: its graph, root key and expected sum.
fn tree(depth: u32) -> (Graph, Key, f64) {
    let mut graph = Graph::new();
    let width = 1u64 << depth;
    // One name per level, shared by its keys (as the SDK's collections share theirs).
    let names: Vec<Arc<str>> = (0..=depth).map(|level| format!("tree-{level}").into()).collect();
    for i in 0..width {
        graph.insert(Key::new(names[0].clone(), [i]), leaf(i));
    }
    for level in 1..=depth as usize {
        let below = &names[level - 1];
        for i in 0..(width >> level) {
            let children = vec![Key::new(below.clone(), [2 * i]), Key::new(below.clone(), [2 * i + 1])];
            graph.insert(Key::new(names[level].clone(), [i]), Task::new(Op::Array(ArrayOp::AddN), children));
        }
    }
    (graph, Key::new(names[depth as usize].clone(), [0]), (width * (width - 1) / 2) as f64)
}

/// Runs `merge N` or `tree DEPTH` [`ROUNDS`] times and returns the median seconds;
/// prints the task count and the median time per task.
pub fn run(workload: &str, size: u64, scheduler: Option<&str>) -> Result<f64> {
    let (graph, out, expected) = match workload {
        "merge" => merge(size),
        "tree" => tree(size as u32),
        other => return Err(Error::invalid("bench", format!("unknown overhead workload {other}"))),
    };
    let client = match scheduler {
        None => Client::local(),
        Some(address) => {
            let client = Client::connect(address)?;
            client.wait_for_workers(2, Duration::from_secs(60))?;
            client
        }
    }
    .with_progress(false);
    let tasks = graph.len();
    let mut rounds = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let values = client.compute_keys(&graph, std::slice::from_ref(&out))?;
        rounds.push(start.elapsed().as_secs_f64());
        let total = match values[0].as_ref() {
            Value::Chunk(c) => c.first().map(|s| s.to_f64()),
            _ => None,
        };
        if total != Some(expected) {
            return Err(Error::invalid("bench", format!("{workload} {size} gave {total:?}, expected {expected}")));
        }
    }
    rounds.sort_by(f64::total_cmp);
    let seconds = rounds[ROUNDS / 2];
    println!("tasks={tasks} rounds_s={rounds:?} per_task_us={:.3}", seconds / tasks as f64 * 1e6);
    Ok(seconds)
}
