//! [`State::check_consistency`]: the invariants the transitions maintain, checked in
//! full (for tests and simulators; it walks every task).

use super::{Erred, Memory, Processing, Queued, Released, State, TaskId, Waiting};
use std::collections::{HashMap, HashSet};

impl State {
    /// Checks every invariant between `handle` calls and describes the first one
    /// broken. Costs time linear in tasks, edges and queue entries.
    pub fn check_consistency(&self) -> Result<(), String> {
        let live = self.tasks.iter().filter(|t| t.live).count();
        if live != self.ids.len() {
            return Err(format!("{} live tasks but {} interned keys", live, self.ids.len()));
        }
        for (key, id) in &self.ids {
            let task = self.tasks.get(id.ix()).ok_or_else(|| format!("{key} points past the arena"))?;
            if !task.live || task.key != *key {
                return Err(format!("{key} maps to a slot holding {}", task.key));
            }
        }
        let mut processing: HashMap<TaskId, _> = HashMap::new();
        let mut free_threads = 0;
        for (worker, nthreads, running) in self.workers.iter() {
            free_threads += nthreads.saturating_sub(running.len());
            for &id in running {
                if processing.insert(id, worker).is_some() {
                    return Err(format!("{} runs on two workers", self.tasks[id.ix()].key));
                }
            }
        }
        if free_threads != self.workers.free_threads() {
            return Err(format!("{free_threads} free threads counted as {}", self.workers.free_threads()));
        }
        let queued: HashSet<(TaskId, _)> = self.ready.iter().map(|e| (e.0.1, e.0.0)).collect();
        let parked: HashSet<TaskId> = self.parked.iter().copied().collect();
        for (i, task) in self.tasks.iter().enumerate().filter(|(_, t)| t.live) {
            let id = TaskId(i as u32);
            let key = &task.key;
            let links = &self.links[i];
            let mut seen = HashSet::new();
            for (j, &(d, p)) in links.deps.iter().enumerate() {
                let back = self.links.get(d.ix()).and_then(|l| l.dependents.get(p as usize));
                if !seen.insert(d) || !self.tasks[d.ix()].live || back != Some(&(id, j as u32)) {
                    return Err(format!("{key}: dependency link to slot {} is broken", d.0));
                }
            }
            seen.clear();
            for (p, &(d, j)) in links.dependents.iter().enumerate() {
                let back = self.links.get(d.ix()).and_then(|l| l.deps.get(j as usize));
                if !seen.insert(d) || !self.tasks[d.ix()].live || back != Some(&(id, p as u32)) {
                    return Err(format!("{key}: dependent link to slot {} is broken", d.0));
                }
            }
            let count = |f: fn(super::TaskState) -> bool| {
                links.dependents.iter().filter(|(d, _)| f(self.tasks[d.ix()].state)).count()
            };
            let waiters = count(|s| matches!(s, Waiting | Queued));
            let readers = count(|s| s == Processing);
            if (waiters, readers) != (task.waiters as usize, task.readers as usize) {
                return Err(format!(
                    "{key}: {} waiters and {} readers recorded, {waiters} and {readers} dependents",
                    task.waiters, task.readers
                ));
            }
            let mut clients = task.wanted_by.clone();
            clients.sort();
            clients.dedup();
            if clients.len() != task.wanted_by.len() {
                return Err(format!("{key}: a client is listed twice"));
            }
            let needed = task.waiters > 0 || !task.wanted_by.is_empty();
            let in_memory = links.deps.iter().filter(|(d, _)| self.tasks[d.ix()].state == Memory).count();
            let missing = (links.deps.len() - in_memory) as u32;
            let dep_erred = links.deps.iter().any(|(d, _)| self.tasks[d.ix()].state == Erred);
            let holds_worker = matches!(task.state, Processing | Memory);
            if holds_worker != task.worker.is_some() {
                return Err(format!("{key}: {:?} with worker {:?}", task.state, task.worker));
            }
            if (task.state == Processing) != processing.contains_key(&id) {
                return Err(format!(
                    "{key}: {:?}, on a worker's running list: {}",
                    task.state,
                    processing.contains_key(&id)
                ));
            }
            if task.failure.is_some() != (task.state == Erred) {
                return Err(format!("{key}: {:?} with failure {:?}", task.state, task.failure));
            }
            let broken = match task.state {
                Released if needed => Some("released but needed"),
                Released | Erred if !needed && links.dependents.is_empty() => Some("unreferenced but not forgotten"),
                Erred if task.waiters > 0 => Some("erred with computing dependents"),
                Waiting | Queued if !needed => Some("computing but not needed"),
                Waiting | Queued if dep_erred => Some("computing with an erred dependency"),
                Waiting if missing == 0 || task.waiting_on != missing => Some("waiting on the wrong count"),
                Queued if missing != 0 => Some("queued before its dependencies are in memory"),
                Queued if parked.contains(&id) && task.needs().is_empty() => Some("parked without resource needs"),
                Queued if parked.contains(&id) => None,
                Queued if !queued.contains(&(id, task.priority)) => Some("queued but not in the ready queue"),
                Queued if free_threads > 0 && task.needs().is_empty() => Some("queued while a thread is free"),
                Processing if processing.get(&id) != task.worker.as_ref() => Some("processing on another worker"),
                Memory if !needed && task.readers == 0 => Some("held but neither needed nor read"),
                Memory if task.worker.is_none_or(|w| !self.workers.contains(w)) => Some("held by an unknown worker"),
                Memory if task.replicas.iter().any(|&r| !self.workers.contains(r) || task.worker == Some(r)) => {
                    Some("a replica on an unknown worker or on the holder")
                }
                _ if task.state != Memory && !task.replicas.is_empty() => Some("replicas of a value not in memory"),
                _ => None,
            };
            if let Some(broken) = broken {
                return Err(format!("{key} ({:?}): {broken}", task.state));
            }
        }
        Ok(())
    }
}
