//! [`Graph`]: tasks keyed by [`Key`], with culling, blockwise fusion and DOT output.

use crate::error::{Error, Result};
use crate::key::Key;
use crate::op::{Fused, FusedArg, FusedStep, Op};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};
use std::collections::hash_map::Entry;
use std::fmt::Write;
use std::sync::Arc;

/// One node of a graph: an operation applied to the values of `deps`, in order.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Task {
    /// What the task does.
    pub op: Op,
    /// The keys whose values are the op's arguments (shared: the engines hand them to
    /// their schedulers without copying).
    pub deps: Arc<[Key]>,
    /// How many times the task is run again after it fails.
    #[serde(default)]
    pub retries: u32,
    /// Abstract resources (such as `("GPU", 1.0)`) a worker must offer, and sets aside
    /// while the task runs; empty for most tasks.
    #[serde(default)]
    pub resources: Vec<(String, f64)>,
}

impl Task {
    /// A task running `op` over the values of `deps`, not retried, needing no resource.
    pub fn new(op: Op, deps: Vec<Key>) -> Self {
        Task { op, deps: deps.into(), retries: 0, resources: Vec::new() }
    }
}

/// A task graph: every key with the task that computes it.
///
/// Graphs are merged as collections are combined, culled to the keys a caller asks
/// for, fused, then handed to the scheduler. Tasks are shared, so each of those steps
/// copies pointers, not tasks.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(into = "Vec<(Key, Arc<Task>)>", from = "Vec<(Key, Arc<Task>)>")]
pub struct Graph {
    tasks: FxHashMap<Key, Arc<Task>>,
}

impl From<Graph> for Vec<(Key, Arc<Task>)> {
    fn from(g: Graph) -> Self {
        let mut v: Vec<_> = g.tasks.into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

impl From<Vec<(Key, Arc<Task>)>> for Graph {
    fn from(v: Vec<(Key, Arc<Task>)>) -> Self {
        Graph { tasks: v.into_iter().collect() }
    }
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Self {
        Graph::default()
    }

    /// Adds (or replaces) the task computing `key`.
    pub fn insert(&mut self, key: Key, task: impl Into<Arc<Task>>) {
        self.tasks.insert(key, task.into());
    }

    /// Adds every task of `other`.
    pub fn merge(&mut self, other: &Graph) {
        for (k, t) in &other.tasks {
            self.tasks.entry(k.clone()).or_insert_with(|| t.clone());
        }
    }

    /// The task computing `key`.
    pub fn get(&self, key: &Key) -> Option<&Task> {
        self.tasks.get(key).map(|t| &**t)
    }

    /// True when the graph has a task for `key`.
    pub fn contains(&self, key: &Key) -> bool {
        self.tasks.contains_key(key)
    }

    /// Number of tasks.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// True when the graph has no tasks.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Every key with its task, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&Key, &Task)> {
        self.tasks.iter().map(|(k, t)| (k, &**t))
    }

    /// Consumes the graph into its (shared) tasks.
    pub fn into_tasks(self) -> FxHashMap<Key, Arc<Task>> {
        self.tasks
    }

    /// The graph without its [`Op::Held`] tasks: what is sent to an engine, which
    /// already holds those values.
    pub fn without_held(self) -> Graph {
        let mut tasks = self.tasks;
        tasks.retain(|_, t| !matches!(t.op, Op::Held(_)));
        Graph { tasks }
    }

    /// The graph with every task retried `retries` times after a failure and needing
    /// `resources` (see [`Task::resources`]). Only tasks whose options differ are copied.
    pub fn with_options(self, retries: u32, resources: &[(String, f64)]) -> Graph {
        let mut tasks = self.tasks;
        for t in tasks.values_mut().filter(|t| t.retries != retries || t.resources != resources) {
            let t = Arc::make_mut(t);
            t.retries = retries;
            t.resources = resources.to_vec();
        }
        Graph { tasks }
    }

    /// For every key, the keys that depend on it (a key listed twice in one task's
    /// dependencies counts once).
    pub fn dependents(&self) -> FxHashMap<&Key, Vec<&Key>> {
        let mut out: FxHashMap<&Key, Vec<&Key>> =
            FxHashMap::with_capacity_and_hasher(self.tasks.len(), Default::default());
        for (k, t) in &self.tasks {
            for d in crate::key::distinct(&t.deps) {
                out.entry(d).or_default().push(k);
            }
        }
        out
    }

    /// The subgraph needed to compute `outputs`: every other task is dropped. An error
    /// names an output or dependency that has no task, or a dependency cycle.
    pub fn cull(&self, outputs: &[Key]) -> Result<Graph> {
        // A depth-first walk. `visit[key]` indexes `finished`, which turns true once the
        // key's dependencies are all done; meeting an unfinished key again is a cycle.
        let mut visit: FxHashMap<&Key, u32> = FxHashMap::with_capacity_and_hasher(self.tasks.len(), Default::default());
        let mut finished: Vec<bool> = Vec::with_capacity(self.tasks.len());
        let mut path: Vec<(&Key, &Task, usize, u32)> = Vec::new();
        for out in outputs {
            if visit.contains_key(out) {
                continue;
            }
            let task = self.tasks.get(out).ok_or_else(|| Error::invalid("cull", format!("no task computes {out}")))?;
            visit.insert(out, finished.len() as u32);
            path.push((out, task, 0, finished.len() as u32));
            finished.push(false);
            while let Some((key, task, next, at)) = path.last_mut() {
                let Some(dep) = task.deps.get(*next) else {
                    finished[*at as usize] = true;
                    path.pop();
                    continue;
                };
                *next += 1;
                match visit.entry(dep) {
                    Entry::Occupied(seen) if finished[*seen.get() as usize] => {}
                    Entry::Occupied(_) => {
                        return Err(Error::invalid("graph", format!("the graph has a cycle through {dep}")));
                    }
                    Entry::Vacant(vacant) => {
                        let Some(dep_task) = self.tasks.get(dep) else {
                            let message = format!("task {key} depends on {dep}, which has no task");
                            return Err(Error::invalid("graph", message));
                        };
                        let at = finished.len() as u32;
                        vacant.insert(at);
                        finished.push(false);
                        path.push((dep, dep_task, 0, at));
                    }
                }
            }
        }
        if visit.len() == self.tasks.len() {
            // Everything is needed: copying the table is cheaper than rebuilding it.
            return Ok(self.clone());
        }
        let mut keep = FxHashMap::with_capacity_and_hasher(visit.len(), Default::default());
        for key in visit.into_keys() {
            keep.insert(key.clone(), self.tasks[key].clone());
        }
        Ok(Graph { tasks: keep })
    }

    /// Fuses chains of blockwise tasks: a task whose only consumer is one blockwise
    /// task (and which is not an output) is inlined into that consumer, so a chain such
    /// as read → scale → threshold → write becomes one task per chunk. A generated block
    /// ([`Op::is_generator`]) whose consumers are all blockwise is inlined into each of
    /// them. Consumes the
    /// graph: unfused tasks move into the result without being copied.
    pub fn fuse_blockwise(self, outputs: &[Key]) -> Graph {
        // Only a blockwise consumer takes in a producer.
        if !self.tasks.values().any(|t| t.op.is_blockwise() && !t.deps.is_empty()) {
            return self;
        }
        let (inlined_keys, fused) = {
            let dependents = self.dependents();
            let outputs: FxHashSet<&Key> = outputs.iter().collect();
            let inlined_keys: FxHashSet<&Key> = dependents
                .iter()
                .filter(|(k, consumers)| {
                    if outputs.contains(*k) || matches!(self.tasks[**k].op, Op::Held(_)) {
                        return false;
                    }
                    match consumers.as_slice() {
                        [consumer] => {
                            let consumer_task = &self.tasks[*consumer];
                            consumer_task.op.is_blockwise()
                                && consumer_task.deps.iter().filter(|d| d == *k).count() == 1
                        }
                        // A generated block is recomputed by each of its consumers.
                        many => {
                            self.tasks[**k].op.is_generator() && many.iter().all(|c| self.tasks[*c].op.is_blockwise())
                        }
                    }
                })
                .map(|(k, _)| *k)
                .collect();
            if inlined_keys.is_empty() {
                return self;
            }
            let inlined = |k: &Key| inlined_keys.contains(k);
            let mut fused = Vec::new();
            for (k, task) in &self.tasks {
                if inlined(k) || !task.deps.iter().any(inlined) {
                    continue;
                }
                let mut builder =
                    FusionBuilder { graph: &self, inlined: &inlined, steps: Vec::new(), inputs: Vec::new() };
                builder.add(task);
                let FusionBuilder { steps, inputs, .. } = builder;
                fused.push((k.clone(), Arc::new(Task::new(Op::Fused(Fused { steps }), inputs))));
            }
            let inlined_keys: Vec<Key> = inlined_keys.into_iter().cloned().collect();
            (inlined_keys, fused)
        };
        // Tasks that neither are inlined nor read an inlined one move over unchanged.
        let mut tasks = self.tasks;
        for k in &inlined_keys {
            tasks.remove(k);
        }
        tasks.extend(fused);
        Graph { tasks }
    }

    /// Graphviz DOT text of the graph: one node per task labelled with its key and op.
    pub fn to_dot(&self) -> String {
        let mut keys: Vec<&Key> = self.tasks.keys().collect();
        keys.sort();
        let ids: FxHashMap<&Key, usize> = keys.iter().enumerate().map(|(i, k)| (*k, i)).collect();
        let mut out = String::from("digraph tessera {\n  rankdir=BT;\n  node [shape=box, fontsize=10];\n");
        for k in &keys {
            let label = format!("{k}\\n{}", self.tasks[*k].op.name()).replace('"', "'");
            let _ = writeln!(out, "  n{} [label=\"{label}\"];", ids[k]);
        }
        for k in &keys {
            for d in self.tasks[*k].deps.iter() {
                let _ = writeln!(out, "  n{} -> n{};", ids[d], ids[k]);
            }
        }
        out.push_str("}\n");
        out
    }
}

/// Builds the steps of one fused task by inlining producers depth first.
struct FusionBuilder<'a, F: Fn(&Key) -> bool> {
    graph: &'a Graph,
    inlined: &'a F,
    steps: Vec<FusedStep>,
    inputs: Vec<Key>,
}

impl<F: Fn(&Key) -> bool> FusionBuilder<'_, F> {
    /// Appends `task` (after its inlined producers) and returns its step index.
    fn add(&mut self, task: &Task) -> usize {
        let mut args = Vec::with_capacity(task.deps.len());
        for d in task.deps.iter() {
            if (self.inlined)(d) {
                let producer = &self.graph.tasks[d];
                args.push(FusedArg::Step(self.add(producer)));
            } else {
                let pos = match self.inputs.iter().position(|k| k == d) {
                    Some(p) => p,
                    None => {
                        self.inputs.push(d.clone());
                        self.inputs.len() - 1
                    }
                };
                args.push(FusedArg::Input(pos));
            }
        }
        // A producer that was itself fused contributes its steps, re-based.
        match &task.op {
            Op::Fused(inner) => {
                let base = self.steps.len();
                for step in &inner.steps {
                    let args = step
                        .args
                        .iter()
                        .map(|a| match a {
                            FusedArg::Input(i) => args[*i],
                            FusedArg::Step(s) => FusedArg::Step(base + s),
                        })
                        .collect();
                    self.steps.push(FusedStep { op: step.op.clone(), args });
                }
            }
            op => self.steps.push(FusedStep { op: op.clone(), args }),
        }
        self.steps.len() - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::{ArrayOp, BinaryOp, NativeFn, UnaryOp};
    use crate::{DType, Scalar, Value};

    fn full(v: f64) -> Task {
        Task::new(Op::Array(ArrayOp::Full { shape: vec![2], value: Scalar::F64(v), dtype: DType::F64 }), vec![])
    }

    fn chain() -> (Graph, Key) {
        let mut g = Graph::new();
        let a = Key::new("a", [0]);
        let b = Key::new("b", [0]);
        let c = Key::new("c", [0]);
        let read = ArrayOp::ZarrRead { store: "memory://".into(), path: "a".into(), offset: vec![0], shape: vec![2] };
        g.insert(a.clone(), Task::new(Op::Array(read), vec![]));
        g.insert(b.clone(), Task::new(Op::Array(ArrayOp::Unary(UnaryOp::Neg)), vec![a.clone()]));
        g.insert(c.clone(), Task::new(Op::Array(ArrayOp::Binary(BinaryOp::Add)), vec![b.clone(), a.clone()]));
        g.insert(Key::new("unused", [0]), full(3.0));
        (g, c)
    }

    #[test]
    fn cull_keeps_only_what_outputs_need() {
        let (g, c) = chain();
        let culled = g.cull(std::slice::from_ref(&c)).unwrap();
        assert_eq!(culled.len(), 3);
        assert!(!culled.contains(&Key::new("unused", [0])));
        assert!(g.cull(&[Key::new("nope", [])]).is_err());
    }

    #[test]
    fn fusion_inlines_single_consumer_chains() {
        let (g, c) = chain();
        let g = g.cull(std::slice::from_ref(&c)).unwrap();
        let fused = g.fuse_blockwise(std::slice::from_ref(&c));
        // `a` has two consumers so it stays; `b` is fused into `c`.
        assert_eq!(fused.len(), 2);
        let task = fused.get(&c).unwrap();
        assert_eq!(*task.deps, [Key::new("a", [0])]);
        match &task.op {
            Op::Fused(f) => {
                assert_eq!(f.steps.len(), 2);
                assert_eq!(f.steps[0].args, vec![FusedArg::Input(0)]);
                assert_eq!(f.steps[1].args, vec![FusedArg::Step(0), FusedArg::Input(0)]);
            }
            other => panic!("expected a fused task, got {other:?}"),
        }
    }

    #[test]
    fn fusion_recomputes_a_generated_block_in_each_blockwise_consumer() {
        let mut g = Graph::new();
        let ones = Key::new("ones", [0]);
        let (neg, add, rechunk) = (Key::new("neg", [0]), Key::new("add", [0]), Key::new("rechunk", [0]));
        g.insert(ones.clone(), full(1.0));
        g.insert(neg.clone(), Task::new(Op::Array(ArrayOp::Unary(UnaryOp::Neg)), vec![ones.clone()]));
        g.insert(add.clone(), Task::new(Op::Array(ArrayOp::Binary(BinaryOp::Add)), vec![ones.clone(), neg.clone()]));
        let fused = g.clone().fuse_blockwise(std::slice::from_ref(&add));
        assert_eq!(fused.len(), 1, "ones is generated inside the one fused task");
        match &fused.get(&add).unwrap().op {
            Op::Fused(f) => {
                let names: Vec<String> = f.steps.iter().map(|s| s.op.name()).collect();
                assert_eq!(names, ["full", "full", "neg", "add"]);
                assert!(f.steps.iter().all(|s| s.args.iter().all(|a| matches!(a, FusedArg::Step(_)))));
            }
            other => panic!("expected a fused task, got {other:?}"),
        }
        // A consumer that is not blockwise (an assembly) needs the block itself.
        let assemble = ArrayOp::Assemble { grid: vec![1], pieces: vec![vec![(0, 2)]] };
        g.insert(rechunk.clone(), Task::new(Op::Array(assemble), vec![ones.clone()]));
        let fused = g.fuse_blockwise(&[add, rechunk]);
        assert!(fused.contains(&ones));
    }

    #[test]
    fn cull_finds_missing_outputs_missing_deps_and_cycles() {
        let mut g = Graph::new();
        let (a, b) = (Key::new("a", []), Key::new("b", []));
        g.insert(a.clone(), Task::new(Op::Literal(std::sync::Arc::new(Value::Unit)), vec![b.clone()]));
        assert!(g.cull(&[Key::new("z", [])]).unwrap_err().to_string().contains("no task computes z"));
        assert!(
            g.cull(std::slice::from_ref(&a))
                .unwrap_err()
                .to_string()
                .contains("task a depends on b, which has no task")
        );
        g.insert(b.clone(), Task::new(Op::Literal(std::sync::Arc::new(Value::Unit)), vec![a.clone()]));
        assert!(g.cull(std::slice::from_ref(&a)).unwrap_err().to_string().contains("the graph has a cycle through a"));
        // A key reached twice without a cycle (a diamond) is fine.
        let mut g = Graph::new();
        let unit = || Op::Literal(std::sync::Arc::new(Value::Unit));
        g.insert(a.clone(), Task::new(unit(), vec![]));
        g.insert(b.clone(), Task::new(unit(), vec![a.clone()]));
        g.insert(Key::new("c", []), Task::new(unit(), vec![a.clone()]));
        g.insert(Key::new("d", []), Task::new(unit(), vec![b.clone(), Key::new("c", []), a.clone()]));
        assert_eq!(g.cull(&[Key::new("d", []), b]).unwrap().len(), 4);
    }

    #[test]
    fn graphs_round_trip_through_json_but_closures_refuse() {
        let (g, c) = chain();
        let text = serde_json::to_string(&g).unwrap();
        let back: Graph = serde_json::from_str(&text).unwrap();
        assert_eq!(back.len(), g.len());
        assert_eq!(back.get(&c).unwrap().deps, g.get(&c).unwrap().deps);
        let mut g2 = Graph::new();
        g2.insert(Key::new("f", []), Task::new(Op::Native(NativeFn::new("my_fn", false, |_| Ok(Value::Unit))), vec![]));
        let err = serde_json::to_string(&g2).unwrap_err().to_string();
        assert!(err.contains("my_fn") && err.contains("Client::local"), "{err}");
    }

    #[test]
    fn dot_lists_nodes_and_edges() {
        let (g, _) = chain();
        let dot = g.to_dot();
        assert!(dot.starts_with("digraph"));
        assert_eq!(dot.matches("->").count(), 3);
        assert!(dot.contains("c(0)\\nadd"));
    }
}
