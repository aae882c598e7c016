//! Property tests: a simulated cluster drives [`State`] with random graphs, random
//! workers and thread counts, and random orders of task completion (plus, in some
//! tests, worker removals, task failures and clients coming and going). No threads,
//! no sleeps: the simulator is a loop over a seeded random generator.
//!
//! The simulator stores values per worker exactly as the scheduler's commands say:
//! `Execute` reads every dependency from a worker that `who_has` names (asserting it
//! is really there) and computes `value(task) = mix(task id, values of its deps in
//! order)`; `TaskFinished` stores the value on that worker; `Release` removes it
//! (asserting it was there). Answers are compared with a sequential evaluation of the
//! same graph. `State::check_consistency` runs after every event.
//!
//! # Memory bounds
//!
//! Memory is the number of values held by all workers, measured after each event's
//! commands are applied (a worker briefly holds one more value: a result that has just
//! finished, before the `Release` of its inputs arrives).
//!
//! For a tree (every task has at most one dependent) with fan-in ≤ f and depth d
//! (edges from the root to the deepest leaf), submitted at once with the root wanted
//! first (so priorities are the tree's post-order) and run on P threads in total,
//! memory never exceeds `P·(d·(f−1) + 1) + |wanted|`; with one thread, `d·(f−1) + 1 +
//! |wanted|`.
//!
//! Proof. A held value that is not wanted belongs to a finished task whose parent has
//! not finished. That parent is either running (≤ f finished children) or not started
//! yet ("open"). Lemma: every open task v with a finished child has a running task in
//! its subtree. Suppose not, and let u be the last task of v's subtree to finish (at
//! time τ), started at time s. Just after s, no ready task had a higher priority than
//! u, and so none from before v's subtree in post-order (the subtree is a contiguous
//! range ending at v). Between s and τ, each finish makes at most one task ready (its
//! parent) and frees a thread that at once takes the highest-priority ready task, so
//! no ready task before v's subtree is ever left waiting. At τ, the first unstarted
//! task z of v's subtree is ready (its children precede it in the subtree, so they
//! started, and none is running), so the freed thread takes a task between the start
//! of v's subtree and z: a task of v's subtree starts after τ, a contradiction. Hence
//! the open tasks holding values are proper ancestors of running tasks; such an
//! ancestor has at most f−1 finished children (the child towards the running task has
//! not finished). A running task at depth k contributes its ≤ f children and ≤ f−1 for
//! each of its k ancestors: ≤ f + (d−1)(f−1) = d(f−1)+1 if it has children (k ≤ d−1),
//! ≤ d(f−1) if it is a leaf. Summing over ≤ P running tasks and adding the wanted
//! values gives the bound.

use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use tessera_core::Key;
use tessera_core::op::ArrayOp;
use tessera_core::{Op, Task};
use tessera_scheduler::{ClientId, Command, Event, State, WorkerId};

/// SplitMix64: a small deterministic generator for the simulator's choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.0)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn percent(&mut self, p: u64) -> bool {
        self.next() % 100 < p
    }
}

fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A task graph over tasks `0..n`: `deps[i]` are the tasks `i` reads, in order.
#[derive(Clone, Debug)]
struct Graph {
    deps: Vec<Vec<usize>>,
}

impl Graph {
    fn key(i: usize) -> Key {
        Key::new(["x", "y", "sum-3f2a"][i % 3], [i as u64, 7])
    }

    /// A random DAG: each task reads up to `max_fanin` earlier tasks (repeats allowed),
    /// mostly recent ones so chains form.
    fn random_dag(rng: &mut Rng, n: usize, max_fanin: usize) -> Graph {
        let deps = (0..n)
            .map(|i| {
                if i == 0 {
                    return Vec::new();
                }
                let count = rng.below(max_fanin + 1);
                (0..count).map(|_| if rng.percent(60) { i - 1 - rng.below(i.min(8)) } else { rng.below(i) }).collect()
            })
            .collect();
        Graph { deps }
    }

    /// A random tree rooted at 0 with at most `max_fanin` children per task, at most
    /// `max_depth` levels below the root and at most `budget` tasks.
    fn random_tree(rng: &mut Rng, max_fanin: usize, max_depth: usize, budget: usize) -> Graph {
        let mut deps = vec![Vec::new()];
        let mut depth = vec![0];
        let mut queue = VecDeque::from([0]);
        while let Some(v) = queue.pop_front() {
            let children = match rng.below(4) {
                _ if depth[v] == max_depth => 0,
                0 if v != 0 => 0,
                1 => 1 + rng.below(max_fanin),
                _ => max_fanin,
            };
            for _ in 0..children {
                if deps.len() == budget {
                    break;
                }
                let u = deps.len();
                deps.push(Vec::new());
                depth.push(depth[v] + 1);
                deps[v].push(u);
                queue.push_back(u);
            }
        }
        Graph { deps }
    }

    /// (depth in edges, largest fan-in) of a tree rooted at 0.
    fn tree_shape(&self) -> (usize, usize) {
        let mut depth = vec![0; self.deps.len()];
        for v in 0..self.deps.len() {
            for &c in &self.deps[v] {
                depth[c] = depth[v] + 1; // children are numbered after their parent
            }
        }
        (depth.iter().copied().max().unwrap_or(0), self.deps.iter().map(Vec::len).max().unwrap_or(0))
    }

    /// Depth-first post-order from `roots` in order, dependencies in order.
    fn post_order(&self, roots: &[usize]) -> Vec<usize> {
        fn visit(g: &Graph, v: usize, seen: &mut [bool], out: &mut Vec<usize>) {
            if !std::mem::replace(&mut seen[v], true) {
                for &d in &g.deps[v] {
                    visit(g, d, seen, out);
                }
                out.push(v);
            }
        }
        let mut seen = vec![false; self.deps.len()];
        let mut out = Vec::new();
        for &r in roots {
            visit(self, r, &mut seen, &mut out);
        }
        out
    }

    /// The scheduler's priority order, written plainly: depth-first post-order from
    /// `roots`, where numbering a task then numbers (depth first) each unnumbered task
    /// whose inputs are all numbered and which is either the last unnumbered consumer
    /// of one of the task's inputs (inputs in order) or a dependent of the task itself
    /// (in plain post-order); the search skips tasks numbered that way.
    fn priority_order(&self, roots: &[usize]) -> Vec<usize> {
        struct Walk<'a> {
            g: &'a Graph,
            needed: HashSet<usize>,
            plain: Vec<usize>,
            seen: Vec<bool>,
            out: Vec<usize>,
        }
        impl Walk<'_> {
            fn visit(&mut self, v: usize) {
                if !std::mem::replace(&mut self.seen[v], true) {
                    for &d in &self.g.deps[v] {
                        self.visit(d);
                    }
                    if !self.out.contains(&v) {
                        self.number(v);
                    }
                }
            }
            fn number(&mut self, v: usize) {
                self.out.push(v);
                let mut inputs = self.g.deps[v].clone();
                let mut listed = HashSet::new();
                inputs.retain(|&d| listed.insert(d));
                for d in inputs {
                    let users: Vec<usize> = (0..self.g.deps.len())
                        .filter(|u| self.needed.contains(u) && self.g.deps[*u].contains(&d) && !self.out.contains(u))
                        .collect();
                    if let [u] = users[..]
                        && self.g.deps[u].iter().all(|x| self.out.contains(x))
                    {
                        self.seen[u] = true;
                        self.number(u);
                    }
                }
                let users: Vec<usize> = self.plain.iter().copied().filter(|u| self.g.deps[*u].contains(&v)).collect();
                for u in users {
                    if !self.out.contains(&u) && self.g.deps[u].iter().all(|x| self.out.contains(x)) {
                        self.seen[u] = true;
                        self.number(u);
                    }
                }
            }
        }
        let mut walk = Walk {
            g: self,
            needed: self.closure(roots),
            plain: self.post_order(roots),
            seen: vec![false; self.deps.len()],
            out: Vec::new(),
        };
        for &r in roots {
            walk.visit(r);
        }
        walk.out
    }

    /// Every task's value, evaluated sequentially.
    fn values(&self) -> Vec<u64> {
        let mut values = vec![0; self.deps.len()];
        let all: Vec<usize> = (0..self.deps.len()).collect();
        for v in self.post_order(&all) {
            values[v] = value_of(v, self.deps[v].iter().map(|&d| values[d]));
        }
        values
    }

    /// The tasks `roots` need, themselves included.
    fn closure(&self, roots: &[usize]) -> HashSet<usize> {
        self.post_order(roots).into_iter().collect()
    }

    /// Every task, shuffled, with a few duplicates. The op is never run: the simulated
    /// workers compute [`value_of`] over the dependencies the scheduler hands back.
    fn specs(&self, rng: &mut Rng) -> Vec<(Key, Arc<Task>)> {
        let mut order: Vec<usize> = (0..self.deps.len()).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        let extra: Vec<usize> = (0..3).map(|_| rng.below(self.deps.len())).collect();
        order
            .into_iter()
            .chain(extra)
            .map(|i| {
                let deps = self.deps[i].iter().map(|&d| Graph::key(d)).collect();
                (Graph::key(i), Arc::new(Task::new(Op::Array(ArrayOp::AddN), deps)))
            })
            .collect()
    }
}

fn value_of(task: usize, deps: impl Iterator<Item = u64>) -> u64 {
    deps.fold(mix64(task as u64 + 1), |acc, v| mix64(acc ^ v.rotate_left(17)))
}

struct SimWorker {
    nthreads: usize,
    running: usize,
    store: HashMap<usize, u64>,
}

struct Run {
    worker: WorkerId,
    task: usize,
    outcome: Result<u64, String>,
}

/// A cluster of simulated workers carrying out a [`State`]'s commands.
struct Sim {
    state: State,
    graph: Graph,
    index: HashMap<Key, usize>,
    rng: Rng,
    workers: BTreeMap<WorkerId, SimWorker>,
    next_worker: u32,
    running: Vec<Run>,
    failing: HashSet<usize>,
    runs: Vec<usize>,
    order: Vec<usize>,
    answers: HashMap<(ClientId, usize), Result<u64, String>>,
    held: usize,
    peak: usize,
}

impl Sim {
    fn new(graph: Graph, seed: u64) -> Sim {
        let index = (0..graph.deps.len()).map(|i| (Graph::key(i), i)).collect();
        let n = graph.deps.len();
        Sim {
            state: State::new(),
            graph,
            index,
            rng: Rng(seed),
            workers: BTreeMap::new(),
            next_worker: 0,
            running: Vec::new(),
            failing: HashSet::new(),
            runs: vec![0; n],
            order: Vec::new(),
            answers: HashMap::new(),
            held: 0,
            peak: 0,
        }
    }

    fn event(&mut self, event: Event) {
        let out = self.state.handle(event.clone());
        if let Err(e) = self.state.check_consistency() {
            panic!("inconsistent after {event:?} → {out:?}: {e}");
        }
        for command in out {
            self.apply(command);
        }
        self.peak = self.peak.max(self.held);
    }

    fn apply(&mut self, command: Command) {
        match command {
            Command::Execute { worker, key, task: spec } => {
                let task = self.index[&key];
                let w = self.workers.get_mut(&worker).expect("Execute on a live worker");
                w.running += 1;
                assert!(w.running <= w.nthreads, "{worker:?} runs more than {} tasks", w.nthreads);
                let inputs: Vec<u64> = spec
                    .deps
                    .iter()
                    .map(|d| {
                        let mut holders = self.state.who_has(d);
                        let holder = holders.next().unwrap_or_else(|| panic!("{key}: input {d} is nowhere"));
                        self.workers[&holder].store[&self.index[d]]
                    })
                    .collect();
                let outcome = if self.failing.contains(&task) {
                    Err(format!("boom {task}"))
                } else {
                    Ok(value_of(task, inputs.into_iter()))
                };
                self.runs[task] += 1;
                self.order.push(task);
                self.running.push(Run { worker, task, outcome });
            }
            Command::Release { worker, key } => {
                let task = self.index[&key];
                let w = self.workers.get_mut(&worker).expect("Release on a live worker");
                assert!(w.store.remove(&task).is_some(), "{worker:?} released {key}, which it does not hold");
                self.held -= 1;
            }
            Command::Ready { client, key } => {
                let task = self.index[&key];
                let holder = self.state.who_has(&key).next().expect("a ready key is held");
                let value = self.workers[&holder].store[&task];
                // A wanted value lost with its worker is recomputed and announced again.
                let before = self.answers.insert((client, task), Ok(value));
                assert!(before.is_none() || before == Some(Ok(value)), "{client:?}: {key} changed or erred before");
            }
            Command::Erred { client, key, message } => {
                let task = self.index[&key];
                assert!(
                    self.answers.insert((client, task), Err(message)).is_none(),
                    "{client:?} told twice about {key}"
                );
            }
            Command::Forget { key } => assert_eq!(self.state.task_state(&key), None),
        }
    }

    fn add_worker(&mut self, nthreads: usize) {
        let worker = WorkerId(self.next_worker);
        self.next_worker += 1;
        self.workers.insert(worker, SimWorker { nthreads, running: 0, store: HashMap::new() });
        self.event(Event::WorkerAdded { worker, nthreads, resources: Vec::new() });
    }

    fn remove_random_worker(&mut self) {
        let ids: Vec<WorkerId> = self.workers.keys().copied().collect();
        let worker = ids[self.rng.below(ids.len())];
        if let Some(w) = self.workers.remove(&worker) {
            self.held -= w.store.len();
        }
        self.running.retain(|r| r.worker != worker);
        self.event(Event::WorkerRemoved { worker });
        if self.workers.is_empty() {
            let nthreads = 1 + self.rng.below(3);
            self.add_worker(nthreads);
        }
    }

    fn submit(&mut self, client: ClientId, wanted: &[usize]) {
        let tasks = self.graph.specs(&mut self.rng);
        self.event(Event::GraphSubmitted { client, tasks, wanted: wanted.iter().map(|&w| Graph::key(w)).collect() });
    }

    fn release(&mut self, client: ClientId, keys: &[usize]) {
        self.event(Event::KeysReleased { client, keys: keys.iter().map(|&k| Graph::key(k)).collect() });
    }

    /// Finishes one running task, chosen at random.
    fn finish_one(&mut self) {
        let Run { worker, task, outcome } = self.running.swap_remove(self.rng.below(self.running.len()));
        let w = self.workers.get_mut(&worker).expect("runs of removed workers are dropped");
        w.running -= 1;
        let key = Graph::key(task);
        match outcome {
            Ok(value) => {
                assert!(w.store.insert(task, value).is_none(), "{worker:?} computed {key} twice");
                self.held += 1;
                let nbytes = 1 + self.rng.below(1000) as u64;
                self.event(Event::TaskFinished { worker, key, nbytes });
            }
            Err(message) => self.event(Event::TaskErred { worker, key, message }),
        }
    }

    /// Runs until nothing is running; `removals` workers die at random moments.
    fn run(&mut self, mut removals: usize) {
        while !self.running.is_empty() {
            if removals > 0 && self.rng.percent(10) {
                removals -= 1;
                self.remove_random_worker();
                if self.rng.percent(50) {
                    let nthreads = 1 + self.rng.below(3);
                    self.add_worker(nthreads);
                }
                continue;
            }
            self.finish_one();
        }
    }

    /// Asserts `client` got the right answer for every key in `wanted`.
    fn assert_answers(&self, client: ClientId, wanted: &[usize]) {
        let values = self.graph.values();
        for &w in wanted {
            assert_eq!(self.answers.get(&(client, w)), Some(&Ok(values[w])), "{client:?}, task {w}");
        }
    }

    /// Asserts that nothing is left anywhere.
    fn assert_empty(&self) {
        assert_eq!(self.state.task_count(), 0, "the scheduler still knows tasks");
        assert_eq!(self.held, 0);
        assert!(self.workers.values().all(|w| w.store.is_empty()));
        assert!(self.running.is_empty());
    }
}

/// Distinct random tasks, in random order.
fn pick(rng: &mut Rng, n: usize, count: usize) -> Vec<usize> {
    let mut out = Vec::new();
    while out.len() < count.min(n) {
        let t = rng.below(n);
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

fn cluster(sim: &mut Sim, threads: &[usize]) {
    for &t in threads {
        sim.add_worker(t);
    }
}

const C1: ClientId = ClientId(1);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Without failures every needed task runs exactly once (the others never), each
    /// wanted key is answered with its sequential value, and releasing leaves nothing.
    #[test]
    fn every_task_runs_once_and_results_match(
        seed: u64,
        n in 1usize..200,
        fanin in 0usize..6,
        threads in prop::collection::vec(1usize..4, 1..5),
        nwanted in 1usize..6,
    ) {
        let mut rng = Rng(seed);
        let graph = Graph::random_dag(&mut rng, n, fanin);
        let wanted = pick(&mut rng, n, nwanted);
        let mut sim = Sim::new(graph, seed);
        cluster(&mut sim, &threads);
        sim.submit(C1, &wanted);
        sim.run(0);
        sim.assert_answers(C1, &wanted);
        let needed = sim.graph.closure(&wanted);
        for (task, &runs) in sim.runs.iter().enumerate() {
            prop_assert_eq!(runs, usize::from(needed.contains(&task)), "task {}", task);
        }
        sim.release(C1, &wanted);
        sim.assert_empty();
    }

    /// With one thread, tasks run exactly in priority order (see `Graph::priority_order`).
    #[test]
    fn one_thread_runs_the_post_order(seed: u64, n in 1usize..200, fanin in 0usize..5, nwanted in 1usize..5) {
        let mut rng = Rng(seed);
        let graph = Graph::random_dag(&mut rng, n, fanin);
        let wanted = pick(&mut rng, n, nwanted);
        let mut sim = Sim::new(graph, seed);
        cluster(&mut sim, &[1]);
        sim.submit(C1, &wanted);
        sim.run(0);
        prop_assert_eq!(&sim.order, &sim.graph.priority_order(&wanted));
        sim.release(C1, &wanted);
        sim.assert_empty();
    }

    /// Trees on one thread: memory ≤ d·(f−1) + 1 + |wanted| (see the module docs).
    #[test]
    fn tree_memory_on_one_thread(seed: u64, fanin in 2usize..6, depth in 2usize..7, extra in 0usize..4) {
        let mut rng = Rng(seed);
        let graph = Graph::random_tree(&mut rng, fanin, depth, 200);
        let (d, f) = graph.tree_shape();
        let mut wanted = vec![0];
        wanted.extend(pick(&mut rng, graph.deps.len(), extra).into_iter().filter(|&t| t != 0));
        let mut sim = Sim::new(graph, seed);
        cluster(&mut sim, &[1]);
        sim.submit(C1, &wanted);
        sim.run(0);
        sim.assert_answers(C1, &wanted);
        let bound = d * f.saturating_sub(1) + 1 + wanted.len();
        prop_assert!(sim.peak <= bound, "peak {} > bound {} (d={}, f={})", sim.peak, bound, d, f);
        sim.release(C1, &wanted);
        sim.assert_empty();
    }

    /// Trees on P threads over several workers: memory ≤ P·(d·(f−1) + 1) + |wanted|.
    #[test]
    fn tree_memory_on_many_threads(
        seed: u64,
        fanin in 2usize..6,
        depth in 2usize..7,
        extra in 0usize..4,
        threads in prop::collection::vec(1usize..4, 1..4),
    ) {
        let mut rng = Rng(seed);
        let graph = Graph::random_tree(&mut rng, fanin, depth, 200);
        let (d, f) = graph.tree_shape();
        let mut wanted = vec![0];
        wanted.extend(pick(&mut rng, graph.deps.len(), extra).into_iter().filter(|&t| t != 0));
        let mut sim = Sim::new(graph, seed);
        cluster(&mut sim, &threads);
        sim.submit(C1, &wanted);
        sim.run(0);
        sim.assert_answers(C1, &wanted);
        let p: usize = threads.iter().sum();
        let bound = p * (d * f.saturating_sub(1) + 1) + wanted.len();
        prop_assert!(sim.peak <= bound, "peak {} > bound {} (P={}, d={}, f={})", sim.peak, bound, p, d, f);
        sim.release(C1, &wanted);
        sim.assert_empty();
    }

    /// Workers die mid-run (their running tasks and data are lost): every wanted key
    /// still ends Ready with the right value, and nothing leaks.
    #[test]
    fn worker_removals_lose_nothing(
        seed: u64,
        n in 1usize..200,
        fanin in 0usize..5,
        threads in prop::collection::vec(1usize..4, 1..5),
        nwanted in 1usize..6,
        removals in 1usize..6,
    ) {
        let mut rng = Rng(seed);
        let graph = Graph::random_dag(&mut rng, n, fanin);
        let wanted = pick(&mut rng, n, nwanted);
        let mut sim = Sim::new(graph, seed);
        sim.state.kill_limit = u32::MAX;
        cluster(&mut sim, &threads);
        sim.submit(C1, &wanted);
        sim.run(removals);
        sim.assert_answers(C1, &wanted);
        sim.release(C1, &wanted);
        sim.assert_empty();
    }

    /// Some tasks fail: exactly the wanted keys downstream of a failure are Erred, with
    /// a message naming a failed task they depend on; the others are Ready and right.
    #[test]
    fn failures_reach_exactly_their_dependents(
        seed: u64,
        n in 1usize..200,
        fanin in 0usize..5,
        threads in prop::collection::vec(1usize..4, 1..4),
        nwanted in 1usize..8,
        nfailing in 1usize..6,
    ) {
        let mut rng = Rng(seed);
        let graph = Graph::random_dag(&mut rng, n, fanin);
        let wanted = pick(&mut rng, n, nwanted);
        let failing = pick(&mut rng, n, nfailing);
        let mut sim = Sim::new(graph, seed);
        sim.failing = failing.iter().copied().collect();
        cluster(&mut sim, &threads);
        sim.submit(C1, &wanted);
        sim.run(0);
        let values = sim.graph.values();
        for &w in &wanted {
            let upstream = sim.graph.closure(&[w]);
            let culprits: Vec<usize> = failing.iter().copied().filter(|f| upstream.contains(f)).collect();
            match sim.answers.get(&(C1, w)) {
                Some(Ok(v)) => {
                    prop_assert!(culprits.is_empty(), "task {} is Ready despite failures {:?}", w, culprits);
                    prop_assert_eq!(*v, values[w]);
                }
                Some(Err(message)) => {
                    let named = culprits.iter().any(|&c| {
                        *message == format!("boom {c}")
                            || *message == format!("dependency {} failed: boom {c}", Graph::key(c))
                    });
                    prop_assert!(named, "task {} erred with {:?}; failures upstream: {:?}", w, message, culprits);
                }
                None => prop_assert!(false, "task {} never answered", w),
            }
        }
        for (task, &runs) in sim.runs.iter().enumerate() {
            prop_assert!(runs <= 1, "task {} ran {} times", task, runs);
        }
        sim.release(C1, &wanted);
        sim.assert_empty();
    }

    /// Several clients submit overlapping requests at random moments, some let go
    /// before their answer arrives, workers die: whoever keeps wanting a key gets its
    /// right value once, and after everyone releases, nothing is left.
    #[test]
    fn clients_come_and_go(
        seed: u64,
        n in 1usize..150,
        fanin in 0usize..5,
        threads in prop::collection::vec(1usize..4, 1..4),
        nclients in 1usize..4,
        removals in 0usize..3,
    ) {
        let mut rng = Rng(seed);
        let graph = Graph::random_dag(&mut rng, n, fanin);
        let requests: Vec<(ClientId, Vec<usize>, bool)> = (0..nclients)
            .map(|c| {
                let count = 1 + rng.below(5);
                (ClientId(c as u32), pick(&mut rng, n, count), rng.percent(30))
            })
            .collect();
        let mut sim = Sim::new(graph, seed);
        sim.state.kill_limit = u32::MAX;
        cluster(&mut sim, &threads);
        let mut pending: Vec<usize> = (0..requests.len()).collect();
        let mut early: Vec<usize> = Vec::new();
        let mut removals = removals;
        // Interleave submissions, early releases, removals and completions.
        while !pending.is_empty() || !early.is_empty() || !sim.running.is_empty() {
            match sim.rng.below(10) {
                0 | 1 if !pending.is_empty() => {
                    let r = pending.swap_remove(sim.rng.below(pending.len()));
                    let (client, wanted, gives_up) = &requests[r];
                    sim.submit(*client, wanted);
                    if *gives_up {
                        early.push(r);
                    }
                }
                2 if !early.is_empty() => {
                    let r = early.swap_remove(sim.rng.below(early.len()));
                    sim.release(requests[r].0, &requests[r].1);
                }
                3 if removals > 0 => {
                    removals -= 1;
                    sim.remove_random_worker();
                }
                _ if !sim.running.is_empty() => sim.finish_one(),
                _ => {}
            }
        }
        let values = sim.graph.values();
        for (client, wanted, gives_up) in &requests {
            if !gives_up {
                sim.assert_answers(*client, wanted);
            }
            for &w in wanted {
                if let Some(answer) = sim.answers.get(&(*client, w)) {
                    prop_assert_eq!(answer, &Ok(values[w]));
                }
            }
        }
        for (client, wanted, gives_up) in &requests {
            if !gives_up {
                sim.release(*client, wanted);
            }
        }
        sim.assert_empty();
    }
}
