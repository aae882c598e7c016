//! Delayed: lazy calls of Rust functions, for work that is not an array.
//!
//! `delayed::call("name", f, &[&a, &b])` records a call of `f` on the values of `a`
//! and `b` without running it; `compute()` runs the whole chain of calls in parallel.
//! Functions are native closures, so they run on `Client::local()` only.

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

/// Wraps a constant value.
pub fn value(v: Value) -> Delayed {
    let key = Key::new(layer_name("value"), []);
    let mut graph = Graph::new();
    graph.insert(key.clone(), Task::new(Op::Literal(Arc::new(v)), vec![]));
    Delayed { key, graph: Arc::new(graph) }
}

/// Records a call of `f` on the values of `args`.
pub fn call(name: &str, f: impl Fn(&[&Value]) -> Result<Value> + Send + Sync + 'static, args: &[&Delayed]) -> Delayed {
    let key = Key::new(layer_name(name), []);
    let mut graph = Graph::new();
    for a in args {
        graph.merge(&a.graph);
    }
    let deps = args.iter().map(|a| a.key.clone()).collect();
    graph.insert(key.clone(), Task::new(Op::Native(NativeFn::new(name, false, f)), deps));
    Delayed { key, graph: Arc::new(graph) }
}

impl Delayed {
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
