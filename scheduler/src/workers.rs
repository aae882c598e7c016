//! The workers the scheduler knows, the tasks running on each, and where the next
//! task should run.
//!
//! A worker runs at most `nthreads` tasks at once (Dask's queuing): the scheduler only
//! assigns a task to a worker with a free thread. Among those it prefers the worker
//! already holding the most bytes of the task's dependencies, then the one running the
//! fewest tasks, then the lowest id, so choices are deterministic.
//!
//! A task may need abstract resources (`GPU = 1`): it only runs on a worker offering
//! them, and holds them while it runs.

use crate::protocol::WorkerId;
use crate::state::TaskId;
use std::cmp::Reverse;
use std::collections::BTreeMap;

/// The most threads a worker is credited with, so totals cannot overflow.
const MAX_THREADS: usize = 1 << 24;

/// One worker's capacity and running tasks.
#[derive(Debug, Default)]
struct Worker {
    nthreads: usize,
    processing: Vec<TaskId>,
    /// Resources offered: `(name, total, in use)`.
    resources: Vec<(String, f64, f64)>,
}

impl Worker {
    fn free(&self) -> usize {
        self.nthreads.saturating_sub(self.processing.len())
    }

    /// True when it has a free thread and every resource in `needs` free.
    fn fits(&self, needs: &[(String, f64)]) -> bool {
        self.free() > 0
            && needs.iter().all(|(name, amount)| {
                self.resources.iter().any(|(n, total, used)| n == name && total - used >= *amount)
            })
    }

    /// Sets aside (`sign` 1) or gives back (`sign` -1) the resources in `needs`.
    fn hold(&mut self, needs: &[(String, f64)], sign: f64) {
        for (name, amount) in needs {
            if let Some((_, _, used)) = self.resources.iter_mut().find(|(n, _, _)| n == name) {
                *used = (*used + sign * amount).max(0.0);
            }
        }
    }
}

/// Every known worker, with a running total of free threads.
#[derive(Debug, Default)]
pub(crate) struct Workers {
    map: BTreeMap<WorkerId, Worker>,
    free_threads: usize,
    /// Scratch for [`Workers::choose`]: bytes of dependencies per candidate worker.
    locality: Vec<(WorkerId, u64)>,
}

impl Workers {
    /// Adds a worker, or updates the thread count and resources of a known one (at
    /// most 2²⁴ threads).
    pub(crate) fn add(&mut self, id: WorkerId, nthreads: usize, resources: &[(String, f64)]) {
        let nthreads = nthreads.min(MAX_THREADS);
        let worker = self.map.entry(id).or_default();
        self.free_threads -= worker.free();
        worker.nthreads = nthreads;
        self.free_threads += worker.free();
        let in_use = |name: &str| worker.resources.iter().find(|(n, _, _)| n == name).map_or(0.0, |r| r.2);
        worker.resources = resources.iter().map(|(name, total)| (name.clone(), *total, in_use(name))).collect();
    }

    /// Removes a worker, returning the tasks it was running.
    pub(crate) fn remove(&mut self, id: WorkerId) -> Option<Vec<TaskId>> {
        let worker = self.map.remove(&id)?;
        self.free_threads -= worker.free();
        Some(worker.processing)
    }

    /// True when the worker is known.
    pub(crate) fn contains(&self, id: WorkerId) -> bool {
        self.map.contains_key(&id)
    }

    /// Free threads over all workers.
    pub(crate) fn free_threads(&self) -> usize {
        self.free_threads
    }

    /// Records that `task`, needing `needs`, runs on `id`.
    pub(crate) fn start(&mut self, id: WorkerId, task: TaskId, needs: &[(String, f64)]) {
        if let Some(worker) = self.map.get_mut(&id) {
            self.free_threads -= worker.free();
            worker.processing.push(task);
            worker.hold(needs, 1.0);
            self.free_threads += worker.free();
        }
    }

    /// Records that `task`, needing `needs`, no longer runs on `id`.
    pub(crate) fn stop(&mut self, id: WorkerId, task: TaskId, needs: &[(String, f64)]) {
        if let Some(worker) = self.map.get_mut(&id)
            && let Some(pos) = worker.processing.iter().position(|&t| t == task)
        {
            self.free_threads -= worker.free();
            worker.processing.swap_remove(pos);
            worker.hold(needs, -1.0);
            self.free_threads += worker.free();
        }
    }

    /// The worker with a free thread (and the resources in `needs` free) where a task
    /// should run, given `(holder, nbytes)` for each of its dependencies in memory;
    /// `None` when no worker fits now. `avoid` (a worker that gave the task back) is
    /// chosen only when no other worker fits.
    pub(crate) fn choose(
        &mut self,
        holders: impl Iterator<Item = (WorkerId, u64)>,
        needs: &[(String, f64)],
        avoid: Option<WorkerId>,
    ) -> Option<WorkerId> {
        if self.map.len() == 1 {
            return self.least_busy(needs, None);
        }
        self.locality.clear();
        for (id, nbytes) in holders {
            if Some(id) == avoid || self.map.get(&id).is_none_or(|w| !w.fits(needs)) {
                continue;
            }
            match self.locality.iter_mut().find(|(w, _)| *w == id) {
                Some((_, total)) => *total = total.saturating_add(nbytes),
                None => self.locality.push((id, nbytes)),
            }
        }
        let busy = |id: WorkerId| self.map.get(&id).map_or(usize::MAX, |w| w.processing.len());
        let near = self
            .locality
            .iter()
            .filter(|(_, bytes)| *bytes > 0)
            .min_by_key(|&&(id, bytes)| (Reverse(bytes), busy(id), id));
        near.map(|&(id, _)| id).or_else(|| self.least_busy(needs, avoid)).or_else(|| self.least_busy(needs, None))
    }

    /// The worker other than `avoid` that fits `needs` running the fewest tasks (lowest
    /// id on ties).
    fn least_busy(&self, needs: &[(String, f64)], avoid: Option<WorkerId>) -> Option<WorkerId> {
        self.map
            .iter()
            .filter(|(id, w)| Some(**id) != avoid && w.fits(needs))
            .min_by_key(|(id, w)| (w.processing.len(), **id))
            .map(|(id, _)| *id)
    }

    /// Every worker with its thread count and running tasks, for consistency checks.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (WorkerId, usize, &[TaskId])> {
        self.map.iter().map(|(id, w)| (*id, w.nthreads, w.processing.as_slice()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: WorkerId = WorkerId(1);
    const B: WorkerId = WorkerId(2);

    #[test]
    fn free_threads_follow_starts_stops_and_updates() {
        let mut w = Workers::default();
        w.add(A, 2, &[]);
        w.add(B, 1, &[]);
        assert_eq!(w.free_threads(), 3);
        w.start(A, TaskId(0), &[]);
        w.start(A, TaskId(1), &[]);
        assert_eq!(w.free_threads(), 1);
        w.add(A, 1, &[]); // shrink below the running count: no free thread, no underflow
        assert_eq!(w.free_threads(), 1);
        w.stop(A, TaskId(0), &[]);
        assert_eq!(w.free_threads(), 1);
        w.stop(A, TaskId(7), &[]); // not running there: ignored
        assert_eq!(w.remove(A), Some(vec![TaskId(1)]));
        assert_eq!(w.free_threads(), 1);
        assert_eq!(w.remove(A), None);
    }

    #[test]
    fn choice_prefers_bytes_then_load_then_id() {
        let mut w = Workers::default();
        w.add(A, 2, &[]);
        w.add(B, 2, &[]);
        assert_eq!(w.choose([].into_iter(), &[], None), Some(A));
        w.start(A, TaskId(0), &[]);
        assert_eq!(w.choose([].into_iter(), &[], None), Some(B), "fewest running");
        assert_eq!(w.choose([(A, 10), (B, 4), (B, 4)].into_iter(), &[], None), Some(A), "most bytes");
        assert_eq!(w.choose([(A, 0)].into_iter(), &[], None), Some(B), "no bytes: fewest running");
        w.start(A, TaskId(1), &[]);
        assert_eq!(w.choose([(A, 100)].into_iter(), &[], None), Some(B), "A has no free thread");
        w.start(B, TaskId(2), &[]);
        w.start(B, TaskId(3), &[]);
        assert_eq!(w.choose([(A, 1)].into_iter(), &[], None), None);
    }

    #[test]
    fn huge_inputs_saturate_instead_of_overflowing() {
        let mut w = Workers::default();
        w.add(A, usize::MAX, &[]);
        w.add(B, usize::MAX, &[]);
        assert_eq!(w.free_threads(), 2 * MAX_THREADS);
        assert_eq!(w.choose([(B, u64::MAX), (B, u64::MAX), (A, 1)].into_iter(), &[], None), Some(B));
    }

    #[test]
    fn tasks_needing_resources_go_where_they_are_free() {
        let gpu = |n: f64| vec![("GPU".to_string(), n)];
        let mut w = Workers::default();
        w.add(A, 4, &[]);
        w.add(B, 4, &gpu(1.0));
        assert_eq!(w.choose([(A, 100)].into_iter(), &gpu(1.0), None), Some(B), "only B offers a GPU");
        assert_eq!(w.choose([].into_iter(), &gpu(2.0), None), None, "nobody offers two");
        w.start(B, TaskId(0), &gpu(1.0));
        assert_eq!(w.choose([].into_iter(), &gpu(1.0), None), None, "B's GPU is in use");
        assert_eq!(w.choose([].into_iter(), &[], None), Some(A), "unrestricted tasks still run");
        w.stop(B, TaskId(0), &gpu(1.0));
        assert_eq!(w.choose([].into_iter(), &gpu(0.5), None), Some(B));
        w.start(B, TaskId(1), &gpu(0.5));
        w.add(B, 4, &gpu(1.0));
        assert_eq!(w.choose([].into_iter(), &gpu(1.0), None), None, "an update keeps what is in use");
    }

    #[test]
    fn a_worker_that_gave_a_task_back_gets_it_only_if_nobody_else_fits() {
        let mut w = Workers::default();
        w.add(A, 2, &[]);
        w.add(B, 2, &[]);
        w.start(B, TaskId(0), &[]);
        assert_eq!(w.choose([(A, 100)].into_iter(), &[], Some(A)), Some(B), "not back to A");
        w.start(B, TaskId(1), &[]);
        assert_eq!(w.choose([(A, 100)].into_iter(), &[], Some(A)), Some(A), "B is full");
    }
}
