//! Delayed: lazy calls of Rust functions, for work that is not an array.
//!
//! `delayed::call("name", f, &[&a, &b])` records a call of `f` on the values of `a`
//! and `b` without running it; `compute()` runs the whole chain of calls in parallel.
//! Native closures run on `Client::local()` only; WASM tasks
//! ([`crate::wasm::TaskFn::call`]) run anywhere. [`crate::array::Array::to_delayed`]
//! passes a whole array to a call.

use crate::Client;
use crate::array::layer_name;
use std::sync::Arc;
use tessera_core::{Graph, Key, NativeFn, Op, Result, Task, Value};

/// A lazy value: the result of a recorded call (or a wrapped constant).
#[derive(Clone)]
pub struct Delayed {
    key: Key,
    graph: Arc<Graph>,
}

impl std::fmt::Debug for Delayed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Delayed<{}, {} tasks>", self.key, self.graph.len())
    }
}

/// Wraps a constant value.
pub fn value(v: Value) -> Delayed {
    let key = Key::new(layer_name("value"), []);
    let mut graph = Graph::new();
    graph.insert(key.clone(), Task::new(Op::Literal(Arc::new(v)), vec![]));
    Delayed { key, graph: Arc::new(graph) }
}

/// Records a call of `f` on the values of `args`.
pub fn call(name: &str, f: impl Fn(&[&Value]) -> Result<Value> + Send + Sync + 'static, args: &[&Delayed]) -> Delayed {
    apply(name, Op::Native(NativeFn::new(name, false, f)), args)
}

/// Records a task running `op` on the values of `args`.
pub(crate) fn apply(name: &str, op: Op, args: &[&Delayed]) -> Delayed {
    let key = Key::new(layer_name(name), []);
    let mut graph = Graph::new();
    for a in args {
        graph.merge(&a.graph);
    }
    let deps = args.iter().map(|a| a.key.clone()).collect();
    graph.insert(key.clone(), Task::new(op, deps));
    Delayed { key, graph: Arc::new(graph) }
}

impl Delayed {
    /// The value of `key` in `graph`.
    pub(crate) fn from_graph(key: Key, graph: Graph) -> Delayed {
        Delayed { key, graph: Arc::new(graph) }
    }

    /// The key of the value.
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// The graph that computes the value.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Computes the value on [`Client::current`].
    #[cfg(feature = "local")]
    pub fn compute(&self) -> Result<Arc<Value>> {
        self.compute_with(&Client::current())
    }

    /// Computes the value on `client`.
    pub fn compute_with(&self, client: &Client) -> Result<Arc<Value>> {
        let mut values = client.compute_keys(&self.graph, std::slice::from_ref(&self.key))?;
        values.pop().ok_or_else(|| tessera_core::Error::Engine("no value returned".into()))
    }
}
