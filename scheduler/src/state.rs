//! [`State`]: the scheduler's task state machine.
//!
//! A task is *needed* while a client wants it or a waiting or queued dependent will
//! read it; its value is *kept* while it is needed or a processing dependent reads it.
//! Its life cycle ([`TaskState`]):
//!
//! - `Released` → `Waiting` when it becomes needed; `Waiting` → `Queued` once every
//!   dependency is in memory; `Queued` → `Processing` when a worker has a free thread
//!   (highest [priority](crate::order) first); `Processing` → `Memory` when it finishes.
//! - `Memory` → `Released` as soon as it is no longer kept: each holder gets
//!   `Release`. A released task keeps its spec while a kept task depends on it, so a
//!   lost value can be recomputed; a task neither wanted nor depended on is forgotten
//!   (`Forget`).
//! - Any → `Erred` when it fails, when its worker dies [`State::kill_limit`] times, or
//!   when a dependency erred; `Waiting`/`Queued` dependents err with it, and each
//!   wanting client gets `Erred` once. Erred tasks stay until nothing refers to them.
//! - A task stops being needed while `Waiting`/`Queued`: back to `Released` (it never
//!   runs). While `Processing`: it is released when it finishes.
//!
//! A value copied to another worker (`ValueMoved`, when a worker retires) changes
//! holder; the old holder is told to release it. A value copied to more workers
//! (`ValueReplicated`, for a broadcast) has replicas: tasks reading it run where any
//! copy is, a released value is released on every holder, and losing a holder loses
//! the value only when no replica is left.
//!
//! A scattered value (`ValuesScattered`) enters in memory on the worker the client
//! put it on, wanted by that client. No task computes it: once lost with its holders,
//! or released while a kept task still depends on it, it errs when needed again.
//!
//! A worker that cannot get a task's inputs (`InputsMissing`) has those copies
//! forgotten and the task queued again, without counting it as a kill.
//!
//! A worker loss puts its running tasks back in the queue and recomputes the values
//! only it held, if still needed (a wanted key is then announced `Ready` again). Tasks
//! running elsewhere carry on: they read their inputs when they started. A report from
//! a worker about a task not running there is answered with `Release`; events about
//! unknown workers or keys are ignored.

use crate::order::{self, Priority};
use crate::protocol::{ClientId, Command, Event, TaskState, WorkerId};
use crate::workers::Workers;
use rustc_hash::FxHashMap;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::sync::Arc;
use tessera_core::Key;
use tessera_core::Task as Spec;

mod check;
#[cfg(test)]
mod tests;

use TaskState::{Erred, Memory, Processing, Queued, Released, Waiting};

/// The dense internal name of a task: its index in the arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct TaskId(pub(crate) u32);

impl TaskId {
    fn ix(self) -> usize {
        self.0 as usize
    }
}

/// Why a task erred.
#[derive(Debug)]
struct Failure {
    /// Told to clients wanting this task.
    message: Arc<str>,
    /// Told about its dependents: "dependency X failed: ...", X being the task that
    /// failed first.
    for_dependents: Arc<str>,
}

/// One task's scalar state (its links live in [`Links`], so both can be borrowed at once).
#[derive(Debug)]
struct Task {
    key: Key,
    /// False for a free arena slot.
    live: bool,
    state: TaskState,
    priority: Priority,
    /// Waiting or queued dependents: they need this value computed.
    waiters: u32,
    /// Processing dependents: they may still read this value.
    readers: u32,
    /// While waiting: dependencies not in memory.
    waiting_on: u32,
    /// How many workers died while running this task.
    kills: u32,
    /// How many more times it is run again after failing.
    retries: u32,
    /// A worker that gave the task back: it runs elsewhere when another fits.
    avoid: Option<WorkerId>,
    /// Processing: where it runs. Memory: who holds the value.
    worker: Option<WorkerId>,
    /// Memory: other workers holding copies of the value.
    replicas: Vec<WorkerId>,
    nbytes: u64,
    wanted_by: Vec<ClientId>,
    failure: Option<Box<Failure>>,
    /// What the task runs, handed to the shell with `Execute`. None for a value a
    /// client put on a worker: nothing can compute it again.
    spec: Option<Arc<Spec>>,
}

impl Task {
    /// Resources a worker must set aside to run it (none for a scattered value).
    fn needs(&self) -> &[(String, f64)] {
        self.spec.as_ref().map_or(&[], |spec| &spec.resources)
    }
}

/// A task's edges: its distinct dependencies and the live tasks depending on it. Each
/// edge also records its position in the other task's list, so a forgotten task is
/// unlinked in constant time per edge (a key read by 100 000 tasks stays cheap).
#[derive(Debug, Default)]
struct Links {
    /// (dependency, index of this task in its `dependents`).
    deps: Vec<(TaskId, u32)>,
    /// (dependent, index of this task in its `deps`).
    dependents: Vec<(TaskId, u32)>,
}

/// How a submitted spec's dependency was resolved.
#[derive(Clone, Copy)]
enum Dep {
    /// A task the scheduler already knew.
    Known(TaskId),
    /// Another spec of the same submission (its index).
    Local(u32),
    /// Nothing computes it.
    Missing,
}

/// The scheduler: tasks, workers and the ready queue. Feed it [`Event`]s with
/// [`State::handle`]; carry out the [`Command`]s it returns. It does no I/O.
#[derive(Debug)]
pub struct State {
    /// How many workers may die while running one task before it is marked erred
    /// (default 3).
    pub kill_limit: u32,
    ids: FxHashMap<Key, TaskId>,
    tasks: Vec<Task>,
    links: Vec<Links>,
    free: Vec<TaskId>,
    ready: BinaryHeap<Reverse<(Priority, TaskId)>>,
    workers: Workers,
    generation: u32,
    /// The key of free arena slots.
    vacant: Key,
    /// Tasks whose neededness may have changed; drained by [`State::settle`].
    recheck: Vec<TaskId>,
    /// Dependents of a task that just erred; drained by [`State::fail`].
    doomed: Vec<TaskId>,
    /// Scratch for a submitted task's dependencies.
    dep_ids: Vec<TaskId>,
    /// Queued tasks needing resources no worker has free; back in the ready queue once
    /// resources may have freed up.
    parked: Vec<TaskId>,
    /// Resources may have freed up since tasks were parked.
    unpark: bool,
}

impl Default for State {
    fn default() -> Self {
        State::new()
    }
}

impl State {
    /// An empty scheduler: no workers, no tasks.
    pub fn new() -> Self {
        State {
            kill_limit: 3,
            ids: FxHashMap::default(),
            tasks: Vec::new(),
            links: Vec::new(),
            free: Vec::new(),
            ready: BinaryHeap::new(),
            workers: Workers::default(),
            generation: 0,
            vacant: Key::new("", []),
            recheck: Vec::new(),
            doomed: Vec::new(),
            dep_ids: Vec::new(),
            parked: Vec::new(),
            unpark: false,
        }
    }

    /// Handles one event and returns the commands it leads to.
    pub fn handle(&mut self, event: Event) -> Vec<Command> {
        let mut out = Vec::new();
        self.handle_into(event, &mut out);
        out
    }

    /// Handles one event, appending the commands it leads to to `out`.
    pub fn handle_into(&mut self, event: Event, out: &mut Vec<Command>) {
        match event {
            Event::WorkerAdded { worker, nthreads, resources } => {
                self.workers.add(worker, nthreads, &resources);
                self.unpark = true;
            }
            Event::WorkerRemoved { worker } => self.remove_worker(worker, out),
            Event::GraphSubmitted { client, tasks, wanted } => self.submit(client, tasks, wanted, out),
            Event::TaskFinished { worker, key, nbytes } => self.finished(worker, key, nbytes, out),
            Event::TaskErred { worker, key, message } => self.task_erred(worker, key, message, out),
            Event::InputsMissing { worker, key, missing } => self.inputs_missing(worker, key, missing, out),
            Event::ValueMoved { key, from, to } => self.value_moved(key, from, to, out),
            Event::ValueReplicated { key, to } => self.value_replicated(key, to, out),
            Event::ValuesScattered { client, worker, values } => self.scattered(client, worker, values, out),
            Event::KeysReleased { client, keys } => self.release_keys(client, keys),
            Event::TaskReturned { worker, key } => self.task_returned(worker, key, out),
        }
        self.settle(out);
        self.schedule(out);
        if self.ids.is_empty() && !self.tasks.is_empty() {
            self.tasks.clear();
            self.links.clear();
            self.free.clear();
            self.ready.clear();
        }
    }

    /// The state of the task computing `key`; `None` if unknown or forgotten.
    pub fn task_state(&self, key: &Key) -> Option<TaskState> {
        self.ids.get(key).map(|id| self.tasks[id.ix()].state)
    }

    /// The workers holding the value of `key` (none unless it is in memory): its
    /// holder, then its replicas.
    pub fn who_has(&self, key: &Key) -> impl Iterator<Item = WorkerId> + '_ {
        let task = self.ids.get(key).map(|id| &self.tasks[id.ix()]).filter(|t| t.state == Memory);
        task.into_iter().flat_map(|t| t.worker.iter().chain(&t.replicas).copied())
    }

    /// The keys whose values only `worker` holds.
    pub fn held_by(&self, worker: WorkerId) -> Vec<Key> {
        self.tasks
            .iter()
            .filter(|t| t.live && t.state == Memory && t.worker == Some(worker) && t.replicas.is_empty())
            .map(|t| t.key.clone())
            .collect()
    }

    /// How many values `worker` holds, replicas included.
    pub fn holding_count(&self, worker: WorkerId) -> usize {
        let holds = |t: &&Task| t.worker == Some(worker) || t.replicas.contains(&worker);
        self.tasks.iter().filter(|t| t.live && t.state == Memory).filter(holds).count()
    }

    /// How many tasks are in each state.
    pub fn count_by_state(&self) -> Vec<(TaskState, usize)> {
        let states = [Released, Waiting, Queued, Processing, Memory, Erred];
        let mut counts = [0usize; 6];
        for task in self.tasks.iter().filter(|t| t.live) {
            counts[states.iter().position(|s| *s == task.state).unwrap_or(0)] += 1;
        }
        states.into_iter().zip(counts).collect()
    }

    /// Tasks running on `worker` (zero for an unknown worker).
    pub fn processing_on(&self, worker: WorkerId) -> usize {
        self.workers.iter().find(|(id, _, _)| *id == worker).map_or(0, |(_, _, running)| running.len())
    }

    /// How many tasks the scheduler knows (zero once every client released everything).
    pub fn task_count(&self) -> usize {
        self.ids.len()
    }

    // ----- events -----

    fn submit(&mut self, client: ClientId, tasks: Vec<(Key, Arc<Spec>)>, wanted: Vec<Key>, out: &mut Vec<Command>) {
        let generation = self.generation;
        self.generation = self.generation.wrapping_add(1);
        let (keys, specs): (Vec<Key>, Vec<Arc<Spec>>) = tasks.into_iter().unzip();
        let deps = |i: usize| &specs[i].deps[..];
        // The new specs: the first spec of each key not known yet. Dependencies are
        // resolved once, into a compressed edge list indexed by spec.
        let mut local: FxHashMap<&Key, u32> = FxHashMap::default();
        local.reserve(keys.len());
        for (i, key) in keys.iter().enumerate() {
            if !self.ids.contains_key(key) {
                local.entry(key).or_insert(i as u32);
            }
        }
        let mut offsets = Vec::with_capacity(keys.len() + 1);
        let mut edges = Vec::with_capacity((0..keys.len()).map(|i| deps(i).len()).sum());
        offsets.push(0);
        for (i, key) in keys.iter().enumerate() {
            if local.get(key) == Some(&(i as u32)) {
                // `local` holds only keys the scheduler does not know.
                edges.extend(deps(i).iter().map(|dep| match local.get(dep) {
                    Some(&j) => Dep::Local(j),
                    None => self.ids.get(dep).map_or(Dep::Missing, |&id| Dep::Known(id)),
                }));
            }
            offsets.push(edges.len());
        }
        let roots: Vec<u32> = wanted.iter().filter_map(|k| local.get(k).copied()).collect();
        drop(local);
        let edges_of = |i: usize| &edges[offsets[i]..offsets[i + 1]];
        let order = order::post_order(keys.len(), roots, |i| {
            edges_of(i as usize).iter().filter_map(|d| match d {
                Dep::Local(j) => Some(*j),
                _ => None,
            })
        });
        // Create the tasks dependencies first; a dependency not created yet is a cycle.
        self.ids.reserve(order.len());
        let fresh = order.len().saturating_sub(self.free.len());
        self.tasks.reserve(fresh);
        self.links.reserve(fresh);
        let mut created: Vec<Option<TaskId>> = vec![None; keys.len()];
        let mut tasks: Vec<Option<(Key, Arc<Spec>)>> = keys.into_iter().zip(specs).map(Some).collect();
        for (position, &i) in order.iter().enumerate() {
            let i = i as usize;
            let Some((key, spec)) = tasks[i].take() else { continue };
            let id = self.alloc(key, Priority::new(generation, position as u32));
            let task = &mut self.tasks[id.ix()];
            task.retries = spec.retries;
            let mut problem = None;
            let mut dep_ids = std::mem::take(&mut self.dep_ids);
            for (dep, dep_key) in edges_of(i).iter().zip(spec.deps.iter()) {
                match *dep {
                    Dep::Known(d) => dep_ids.push(d),
                    Dep::Local(j) => match created[j as usize] {
                        Some(d) => dep_ids.push(d),
                        None => problem = Some(format!("depends on {dep_key}, which is part of a dependency cycle")),
                    },
                    Dep::Missing => problem = Some(format!("depends on {dep_key}, which has no task")),
                }
            }
            created[i] = Some(id);
            self.tasks[id.ix()].spec = Some(spec);
            match problem {
                Some(problem) => {
                    let message = format!("task {} {problem}", self.tasks[id.ix()].key);
                    let for_dependents = format!("dependency {} failed: {message}", self.tasks[id.ix()].key);
                    self.fail(id, message.into(), for_dependents.into(), out);
                }
                None => {
                    dep_ids.sort_unstable();
                    dep_ids.dedup();
                    for (j, &d) in dep_ids.iter().enumerate() {
                        let dependents = &mut self.links[d.ix()].dependents;
                        dependents.push((id, j as u32));
                        let p = dependents.len() as u32 - 1;
                        self.links[id.ix()].deps.push((d, p));
                    }
                }
            }
            dep_ids.clear();
            self.dep_ids = dep_ids;
            // Forgotten again by `settle` unless something ends up needing it.
            self.recheck.push(id);
        }
        let mut listed = HashSet::new();
        for key in wanted {
            let Some(&id) = self.ids.get(&key) else {
                out.push(Command::Erred { client, message: format!("no task computes {key}"), key });
                continue;
            };
            if !listed.insert(id) {
                continue;
            }
            let task = &mut self.tasks[id.ix()];
            if !task.wanted_by.contains(&client) {
                task.wanted_by.push(client);
                self.recheck.push(id);
            }
            match (task.state, &task.failure) {
                (Memory, _) => out.push(Command::Ready { client, key }),
                (Erred, Some(failure)) => {
                    out.push(Command::Erred { client, key, message: failure.message.to_string() })
                }
                _ => {}
            }
        }
    }

    fn finished(&mut self, worker: WorkerId, key: Key, nbytes: u64, out: &mut Vec<Command>) {
        if !self.workers.contains(worker) {
            return;
        }
        let Some(&id) = self.ids.get(&key) else {
            out.push(Command::Release { worker, key });
            return;
        };
        let task = &mut self.tasks[id.ix()];
        if task.state != Processing || task.worker != Some(worker) {
            // A late or duplicate report: the worker need not keep the value.
            if task.state != Memory || task.worker != Some(worker) {
                out.push(Command::Release { worker, key });
            }
            return;
        }
        task.state = Memory;
        task.nbytes = nbytes;
        out.extend(task.wanted_by.iter().map(|&client| Command::Ready { client, key: key.clone() }));
        self.stop_on(worker, id);
        self.recheck.push(id);
        self.unclaim_deps(id, Processing);
        for &(d, _) in &self.links[id.ix()].dependents {
            let dependent = &mut self.tasks[d.ix()];
            if dependent.state == Waiting {
                dependent.waiting_on -= 1;
                if dependent.waiting_on == 0 {
                    dependent.state = Queued;
                    self.ready.push(Reverse((dependent.priority, d)));
                }
            }
        }
    }

    fn task_erred(&mut self, worker: WorkerId, key: Key, message: String, out: &mut Vec<Command>) {
        let Some(&id) = self.ids.get(&key) else { return };
        let task = &mut self.tasks[id.ix()];
        if task.state != Processing || task.worker != Some(worker) {
            return;
        }
        task.worker = None;
        self.stop_on(worker, id);
        let task = &mut self.tasks[id.ix()];
        let needed = task.waiters > 0 || !task.wanted_by.is_empty();
        if needed && task.retries > 0 {
            task.retries -= 1;
            self.requeue(id, out);
        } else if needed {
            let for_dependents = format!("dependency {key} failed: {message}");
            self.fail(id, message.into(), for_dependents.into(), out);
        } else {
            // Nobody needs it any more: drop it, so a later request tries again.
            self.unclaim_deps(id, Processing);
            let task = &mut self.tasks[id.ix()];
            task.state = Released;
            self.recheck.push(id);
        }
    }

    fn inputs_missing(&mut self, worker: WorkerId, key: Key, missing: Vec<Key>, out: &mut Vec<Command>) {
        let Some(&id) = self.ids.get(&key) else { return };
        let task = &self.tasks[id.ix()];
        if task.state != Processing || task.worker != Some(worker) {
            return;
        }
        for dep in missing {
            let Some(&d) = self.ids.get(&dep) else { continue };
            let is_input = self.links[id.ix()].deps.iter().any(|&(x, _)| x == d);
            let dep_task = &mut self.tasks[d.ix()];
            if is_input && dep_task.state == Memory {
                for holder in dep_task.worker.iter().chain(&dep_task.replicas) {
                    out.push(Command::Release { worker: *holder, key: dep.clone() });
                }
                self.lose(d);
            }
        }
        self.stop_on(worker, id);
        self.requeue(id, out);
    }

    fn task_returned(&mut self, worker: WorkerId, key: Key, out: &mut Vec<Command>) {
        let Some(&id) = self.ids.get(&key) else { return };
        let task = &self.tasks[id.ix()];
        if task.state != Processing || task.worker != Some(worker) {
            return;
        }
        self.stop_on(worker, id);
        self.tasks[id.ix()].avoid = Some(worker);
        self.requeue(id, out);
    }

    fn value_moved(&mut self, key: Key, from: WorkerId, to: WorkerId, out: &mut Vec<Command>) {
        let to_known = self.workers.contains(to);
        let Some(task) = self.ids.get(&key).map(|id| &mut self.tasks[id.ix()]) else {
            out.push(Command::Release { worker: to, key });
            return;
        };
        if let Some(i) = task.replicas.iter().position(|&r| r == from).filter(|_| task.state == Memory && to_known) {
            // A replica moved: `to` holds it now, unless it held one already.
            if task.worker == Some(to) || task.replicas.contains(&to) {
                task.replicas.swap_remove(i);
            } else {
                task.replicas[i] = to;
            }
            out.push(Command::Release { worker: from, key });
        } else if task.state == Memory && task.worker == Some(from) && from != to && to_known {
            task.worker = Some(to);
            task.replicas.retain(|&r| r != to);
            out.push(Command::Release { worker: from, key });
        } else if task.worker != Some(to) || task.state != Memory {
            // Released meanwhile, or a stale report: the copy is not needed.
            out.push(Command::Release { worker: to, key });
        }
    }

    fn value_replicated(&mut self, key: Key, to: WorkerId, out: &mut Vec<Command>) {
        let Some(task) = self.ids.get(&key).map(|id| &mut self.tasks[id.ix()]) else {
            out.push(Command::Release { worker: to, key });
            return;
        };
        let holds = task.worker == Some(to) || task.replicas.contains(&to);
        if task.state == Memory && self.workers.contains(to) && !holds {
            task.replicas.push(to);
        } else if !holds {
            // Released or recomputed meanwhile: the copy is not needed.
            out.push(Command::Release { worker: to, key });
        }
    }

    fn scattered(&mut self, client: ClientId, worker: WorkerId, values: Vec<(Key, u64)>, out: &mut Vec<Command>) {
        if !self.workers.contains(worker) {
            for (key, _) in values {
                let message = format!("the worker holding the scattered value {key} left before it was registered");
                out.push(Command::Erred { client, key, message });
            }
            return;
        }
        let generation = self.generation;
        self.generation = self.generation.wrapping_add(1);
        let mut known = Vec::new();
        for (key, nbytes) in values {
            if self.ids.contains_key(&key) {
                // Already known (scattered twice): the scheduler's copy stands.
                out.push(Command::Release { worker, key: key.clone() });
                known.push(key);
                continue;
            }
            let id = self.alloc(key, Priority::new(generation, 0));
            let task = &mut self.tasks[id.ix()];
            task.state = Memory;
            task.worker = Some(worker);
            task.nbytes = nbytes;
            task.wanted_by.push(client);
            out.push(Command::Ready { client, key: task.key.clone() });
            self.recheck.push(id);
        }
        if !known.is_empty() {
            self.submit(client, Vec::new(), known, out);
        }
    }

    fn release_keys(&mut self, client: ClientId, keys: Vec<Key>) {
        for key in keys {
            let Some(&id) = self.ids.get(&key) else { continue };
            let wanted_by = &mut self.tasks[id.ix()].wanted_by;
            if let Some(pos) = wanted_by.iter().position(|&c| c == client) {
                wanted_by.swap_remove(pos);
                self.recheck.push(id);
            }
        }
    }

    fn remove_worker(&mut self, worker: WorkerId, out: &mut Vec<Command>) {
        let Some(processing) = self.workers.remove(worker) else { return };
        for id in processing {
            let task = &mut self.tasks[id.ix()];
            task.worker = None;
            task.kills += 1;
            if task.kills >= self.kill_limit {
                let message = format!("task {} killed {} workers", task.key, task.kills);
                let for_dependents = format!("dependency {} failed: {message}", task.key);
                self.fail(id, message.into(), for_dependents.into(), out);
            } else {
                self.requeue(id, out);
            }
        }
        for i in 0..self.tasks.len() {
            let task = &mut self.tasks[i];
            if !(task.live && task.state == Memory) {
                continue;
            }
            task.replicas.retain(|&r| r != worker);
            if task.worker == Some(worker) {
                match task.replicas.pop() {
                    Some(replica) => task.worker = Some(replica),
                    None => self.lose(TaskId(i as u32)),
                }
            }
        }
    }

    // ----- transitions -----

    /// Applies the consequences of changed neededness until nothing changes.
    fn settle(&mut self, out: &mut Vec<Command>) {
        while let Some(id) = self.recheck.pop() {
            let task = &self.tasks[id.ix()];
            if !task.live {
                continue;
            }
            let needed = task.waiters > 0 || !task.wanted_by.is_empty();
            match task.state {
                Released if needed => self.start_waiting(id, out),
                Released | Erred if !needed && self.links[id.ix()].dependents.is_empty() => self.forget(id, out),
                Waiting | Queued if !needed => {
                    self.unclaim_deps(id, Waiting);
                    self.tasks[id.ix()].state = Released;
                    self.recheck.push(id);
                }
                Memory if !needed && task.readers == 0 => {
                    let task = &mut self.tasks[id.ix()];
                    for worker in task.worker.take().into_iter().chain(task.replicas.drain(..)) {
                        out.push(Command::Release { worker, key: task.key.clone() });
                    }
                    task.state = Released;
                    task.nbytes = 0;
                    self.recheck.push(id);
                }
                _ => {}
            }
        }
    }

    /// Released → Waiting (or Queued, or Erred if a dependency erred): claims its
    /// dependencies, which become needed in turn.
    fn start_waiting(&mut self, id: TaskId, out: &mut Vec<Command>) {
        let task = &self.tasks[id.ix()];
        if task.spec.is_none() {
            let message = format!(
                "the scattered value {} is gone (its workers left, or it was released) and nothing can compute \
                 it again; scatter it again",
                task.key
            );
            let for_dependents = format!("dependency {} failed: {message}", task.key);
            self.fail(id, message.into(), for_dependents.into(), out);
            return;
        }
        let (missing, failed) = self.missing_deps(id);
        if let Some(failed) = failed {
            self.fail_after(id, failed, out);
            return;
        }
        for &(d, _) in &self.links[id.ix()].deps {
            let dep = &mut self.tasks[d.ix()];
            dep.waiters += 1;
            if dep.state == Released {
                self.recheck.push(d);
            }
        }
        self.tasks[id.ix()].state = Waiting;
        self.tasks[id.ix()].waiting_on = missing;
        if missing == 0 {
            self.enqueue(id);
        }
    }

    /// Processing → Waiting (or Queued) after its worker died: it needs its
    /// dependencies computed again, lost ones included.
    fn requeue(&mut self, id: TaskId, out: &mut Vec<Command>) {
        for &(d, _) in &self.links[id.ix()].deps {
            let dep = &mut self.tasks[d.ix()];
            dep.readers -= 1;
            dep.waiters += 1;
            if dep.state == Released {
                self.recheck.push(d);
            }
        }
        let (missing, failed) = self.missing_deps(id);
        let task = &mut self.tasks[id.ix()];
        task.state = Waiting;
        task.worker = None;
        task.waiting_on = missing;
        self.recheck.push(id);
        if let Some(failed) = failed {
            self.fail_after(id, failed, out);
        } else if missing == 0 {
            self.enqueue(id);
        }
    }

    /// Memory → Released because its only holder died; waiting and queued dependents
    /// wait for it again (processing ones read it when they started).
    fn lose(&mut self, id: TaskId) {
        let task = &mut self.tasks[id.ix()];
        task.state = Released;
        task.worker = None;
        task.replicas.clear();
        task.nbytes = 0;
        self.recheck.push(id);
        for &(d, _) in &self.links[id.ix()].dependents {
            let dependent = &mut self.tasks[d.ix()];
            match dependent.state {
                Waiting => dependent.waiting_on += 1,
                Queued => {
                    dependent.state = Waiting;
                    dependent.waiting_on = 1;
                }
                _ => {}
            }
        }
    }

    /// Marks `id` erred and, transitively, its waiting and queued dependents; each
    /// wanting client is told. The caller has taken it off its worker.
    fn fail(&mut self, id: TaskId, message: Arc<str>, for_dependents: Arc<str>, out: &mut Vec<Command>) {
        self.set_erred(id, message, for_dependents.clone(), out);
        while let Some(d) = self.doomed.pop() {
            if matches!(self.tasks[d.ix()].state, Waiting | Queued) {
                self.set_erred(d, for_dependents.clone(), for_dependents.clone(), out);
            }
        }
    }

    /// Fails `id` because its dependency `failed` erred.
    fn fail_after(&mut self, id: TaskId, failed: TaskId, out: &mut Vec<Command>) {
        let blame = match &self.tasks[failed.ix()].failure {
            Some(failure) => failure.for_dependents.clone(),
            None => format!("dependency {} failed", self.tasks[failed.ix()].key).into(),
        };
        self.fail(id, blame.clone(), blame, out);
    }

    fn set_erred(&mut self, id: TaskId, message: Arc<str>, for_dependents: Arc<str>, out: &mut Vec<Command>) {
        let state = self.tasks[id.ix()].state;
        if matches!(state, Waiting | Queued | Processing) {
            self.unclaim_deps(id, state);
        }
        let task = &mut self.tasks[id.ix()];
        task.state = Erred;
        task.waiting_on = 0;
        task.worker = None;
        out.extend(task.wanted_by.iter().map(|&client| Command::Erred {
            client,
            key: task.key.clone(),
            message: message.to_string(),
        }));
        task.failure = Some(Box::new(Failure { message, for_dependents }));
        self.recheck.push(id);
        for &(d, _) in &self.links[id.ix()].dependents {
            if matches!(self.tasks[d.ix()].state, Waiting | Queued) {
                self.doomed.push(d);
            }
        }
    }

    /// Drops the claim a task in `state` has on its dependencies: as a waiter (waiting,
    /// queued) or as a reader (processing).
    fn unclaim_deps(&mut self, id: TaskId, state: TaskState) {
        for &(d, _) in &self.links[id.ix()].deps {
            let dep = &mut self.tasks[d.ix()];
            if state == Processing {
                dep.readers -= 1;
            } else {
                dep.waiters -= 1;
            }
            self.recheck.push(d);
        }
    }

    /// How many dependencies are not in memory, and one that erred, if any.
    fn missing_deps(&self, id: TaskId) -> (u32, Option<TaskId>) {
        let mut missing = 0;
        for &(d, _) in &self.links[id.ix()].deps {
            match self.tasks[d.ix()].state {
                Memory => {}
                Erred => return (missing, Some(d)),
                _ => missing += 1,
            }
        }
        (missing, None)
    }

    /// Records that task `id` no longer runs on `worker`, freeing its thread and
    /// resources.
    fn stop_on(&mut self, worker: WorkerId, id: TaskId) {
        let needs = self.tasks[id.ix()].needs();
        self.workers.stop(worker, id, needs);
        self.unpark |= !needs.is_empty();
    }

    fn enqueue(&mut self, id: TaskId) {
        let task = &mut self.tasks[id.ix()];
        task.state = Queued;
        self.ready.push(Reverse((task.priority, id)));
    }

    /// Assigns queued tasks, highest priority first, while a worker has a free thread.
    /// A task needing resources no worker has free is parked until some free up.
    fn schedule(&mut self, out: &mut Vec<Command>) {
        if std::mem::take(&mut self.unpark) {
            for id in self.parked.drain(..) {
                let task = &self.tasks[id.ix()];
                if task.live && task.state == Queued {
                    self.ready.push(Reverse((task.priority, id)));
                }
            }
        }
        while let Some(&Reverse((priority, id))) = self.ready.peek() {
            // Entries of tasks requeued or released since are stale; every queued task has
            // a spec (a scattered value errs when needed again).
            let current = self.tasks.get(id.ix()).filter(|t| t.live && t.state == Queued && t.priority == priority);
            let Some(spec) = current.and_then(|t| t.spec.clone()) else {
                self.ready.pop();
                continue;
            };
            if self.workers.free_threads() == 0 {
                break;
            }
            let tasks = &self.tasks;
            let holders = self.links[id.ix()].deps.iter().flat_map(|(d, _)| {
                let dep = &tasks[d.ix()];
                let copies = dep.worker.iter().chain(&dep.replicas).filter(|_| dep.state == Memory);
                copies.map(|&w| (w, dep.nbytes))
            });
            let (needs, avoid) = (tasks[id.ix()].needs(), tasks[id.ix()].avoid);
            let Some(worker) = self.workers.choose(holders, needs, avoid) else {
                if needs.is_empty() {
                    break;
                }
                self.ready.pop();
                self.parked.push(id);
                continue;
            };
            self.ready.pop();
            self.workers.start(worker, id, self.tasks[id.ix()].needs());
            for &(d, _) in &self.links[id.ix()].deps {
                let dep = &mut self.tasks[d.ix()];
                dep.waiters -= 1;
                dep.readers += 1;
            }
            let task = &mut self.tasks[id.ix()];
            task.state = Processing;
            task.worker = Some(worker);
            task.avoid = None;
            out.push(Command::Execute { worker, key: task.key.clone(), task: spec });
        }
    }

    // ----- the arena -----

    /// A new released task in a free slot.
    fn alloc(&mut self, key: Key, priority: Priority) -> TaskId {
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                let id = TaskId(self.tasks.len() as u32);
                self.tasks.push(self.vacant_task());
                self.links.push(Links::default());
                id
            }
        };
        self.ids.insert(key.clone(), id);
        let task = &mut self.tasks[id.ix()];
        task.key = key;
        task.live = true;
        task.priority = priority;
        id
    }

    fn vacant_task(&self) -> Task {
        Task {
            key: self.vacant.clone(),
            live: false,
            state: Released,
            priority: Priority::new(0, 0),
            waiters: 0,
            readers: 0,
            waiting_on: 0,
            kills: 0,
            retries: 0,
            avoid: None,
            worker: None,
            replicas: Vec::new(),
            nbytes: 0,
            wanted_by: Vec::new(),
            failure: None,
            spec: None,
        }
    }

    /// Removes a released or erred task nothing refers to, and tells the shell.
    fn forget(&mut self, id: TaskId, out: &mut Vec<Command>) {
        let vacant = self.vacant_task();
        let task = std::mem::replace(&mut self.tasks[id.ix()], vacant);
        self.ids.remove(&task.key);
        out.push(Command::Forget { key: task.key });
        let links = &mut self.links[id.ix()];
        let mut deps = std::mem::take(&mut links.deps);
        shrink(&mut links.dependents);
        for &(d, p) in &deps {
            let dependents = &mut self.links[d.ix()].dependents;
            dependents.swap_remove(p as usize);
            if let Some(&(moved, j)) = dependents.get(p as usize) {
                self.links[moved.ix()].deps[j as usize].1 = p;
            }
            self.recheck.push(d);
        }
        shrink(&mut deps);
        self.links[id.ix()].deps = deps;
        self.free.push(id);
    }
}

/// Empties a vector for reuse, keeping a small allocation only.
fn shrink<T>(v: &mut Vec<T>) {
    if v.capacity() > 16 {
        *v = Vec::new();
    } else {
        v.clear();
    }
}
