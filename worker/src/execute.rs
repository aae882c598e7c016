//! Running one task: an [`Op`] applied to its argument values.

use crate::tiled::{TILE_BYTES, TiledReduction};
use crate::{kernels, storage, wasm};
use std::sync::Arc;
use tessera_core::op::{ArrayOp, Fused, FusedArg};
use tessera_core::{Chunk, DType, Error, Key, Op, Result, Scalar, Value};

/// Runs `op` as task `key` over `args` (the values of the task's dependencies, in
/// order), appending what the task printed (WASM tasks' stdout and stderr) to `log`.
///
/// Values are shared, never copied: a literal or an alias returns an `Arc`, and fused
/// steps pass references to each other, dropping each intermediate after its last use.
/// WASM tasks run in the process's [`wasm::global`] runtime, where their module must
/// be registered.
pub fn execute(key: &Key, op: &Op, args: &[Arc<Value>], log: &mut String) -> Result<Arc<Value>> {
    let borrowed = || args.iter().map(|a| a.as_ref()).collect::<Vec<&Value>>();
    match op {
        Op::Literal(v) => Ok(v.clone()),
        Op::Alias => args.first().cloned().ok_or_else(|| Error::invalid("alias", "expected one argument")),
        Op::Array(a) => execute_array(a, &borrowed()).map(Arc::new),
        Op::Native(f) => (f.body)(&borrowed()).map(Arc::new),
        Op::Fused(f) => execute_fused(key, f, args, log),
        Op::Wasm(w) => {
            let run = wasm::global()?.run(w, key, &borrowed());
            run.output.append_to(log);
            run.result.map(Arc::new)
        }
        Op::Held(_) => Err(Error::Engine(format!("task {key} is a value held by the engine and is never run"))),
    }
}

fn execute_array(op: &ArrayOp, args: &[&Value]) -> Result<Value> {
    match op {
        ArrayOp::ZarrRead { store, path, offset, shape } => {
            storage::read_region(store, path, offset, shape).map(Value::Chunk)
        }
        ArrayOp::ZarrWrite { store, path, chunk } => {
            let data = args.first().ok_or_else(|| Error::invalid("write-zarr", "expected one argument"))?.as_chunk()?;
            storage::write_chunk(store, path, chunk, data)?;
            // One `true` per chunk written, so write tasks form a boolean array over the
            // chunk grid that can be computed like any other.
            Ok(Value::Chunk(Chunk::full(&vec![1; chunk.len()], Scalar::Bool(true), DType::Bool)))
        }
        other => kernels::run(other, args),
    }
}

fn execute_fused(key: &Key, fused: &Fused, args: &[Arc<Value>], log: &mut String) -> Result<Arc<Value>> {
    match TiledReduction::plan(fused, args, TILE_BYTES) {
        Some(tiled) => tiled.run(args).map(Arc::new),
        None => execute_steps(key, fused, args, log),
    }
}

/// Runs the steps of `fused` one after the other, each over whole blocks.
pub(crate) fn execute_steps(key: &Key, fused: &Fused, args: &[Arc<Value>], log: &mut String) -> Result<Arc<Value>> {
    let n = fused.steps.len();
    let mut last_use = vec![0usize; n];
    for (i, step) in fused.steps.iter().enumerate() {
        for a in &step.args {
            if let FusedArg::Step(s) = a {
                last_use[*s] = i;
            }
        }
    }
    let mut results: Vec<Option<Arc<Value>>> = vec![None; n];
    for (i, step) in fused.steps.iter().enumerate() {
        let mut step_args = Vec::with_capacity(step.args.len());
        for a in &step.args {
            step_args.push(match a {
                FusedArg::Input(j) => args
                    .get(*j)
                    .cloned()
                    .ok_or_else(|| Error::invalid("fused", format!("step {i} reads missing input {j}")))?,
                FusedArg::Step(s) => results
                    .get(*s)
                    .cloned()
                    .flatten()
                    .ok_or_else(|| Error::invalid("fused", format!("step {i} reads step {s} before it ran")))?,
            });
        }
        let value = execute(key, &step.op, &step_args, log)?;
        drop(step_args);
        results[i] = Some(value);
        for (s, slot) in results.iter_mut().enumerate().take(i) {
            if last_use[s] == i {
                *slot = None;
            }
        }
    }
    results.pop().flatten().ok_or_else(|| Error::invalid("fused", "a fused task has no steps"))
}
