//! [`TaskPool`]: the worker's task threads.
//!
//! The pool runs [`Job`]s on a fixed number of threads and reports each
//! [`Outcome`] through a callback. A panicking task becomes a failed task; the thread
//! carries on with the next job. A job submitted with [`TaskPool::submit_claimable`]
//! can be taken back until a thread starts it.

use crate::execute::execute;
use crossbeam_channel::{Receiver, Sender, unbounded};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tessera_core::{Error, Key, Result, Task, Value};

/// One task to run: its key, what to do, and the values of its dependencies.
pub struct Job {
    /// The task's key.
    pub key: Key,
    /// The task (op and dependency keys).
    pub task: Arc<Task>,
    /// The values of `task.deps`, in order.
    pub inputs: Vec<Arc<Value>>,
}

/// What became of a [`Job`].
pub struct Outcome {
    /// The task's key.
    pub key: Key,
    /// Its value, or the error it raised.
    pub result: Result<Arc<Value>>,
    /// How long it ran.
    pub duration: Duration,
    /// What the task printed (WASM tasks' captured stdout and stderr), often empty.
    pub log: String,
}

/// A fixed set of threads running jobs in the order they are submitted.
pub struct TaskPool {
    jobs: Option<Sender<(Job, Option<Claim>)>>,
    threads: Vec<JoinHandle<()>>,
}

impl TaskPool {
    /// Starts `nthreads` threads; every finished job is passed to `on_done`.
    pub fn new(nthreads: usize, on_done: impl Fn(Outcome) + Send + Sync + 'static) -> std::io::Result<Self> {
        let (tx, rx) = unbounded::<(Job, Option<Claim>)>();
        let on_done = Arc::new(on_done);
        let threads = (0..nthreads.max(1))
            .map(|i| {
                let rx: Receiver<(Job, Option<Claim>)> = rx.clone();
                let on_done = on_done.clone();
                std::thread::Builder::new().name(format!("tessera-task-{i}")).spawn(move || {
                    for (job, claim) in rx {
                        // A job taken back before it started is skipped, with no outcome.
                        if claim.is_none_or(|c| c.take()) {
                            on_done(run_job(job));
                        }
                    }
                })
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(TaskPool { jobs: Some(tx), threads })
    }

    /// How many threads run jobs.
    pub fn nthreads(&self) -> usize {
        self.threads.len()
    }

    /// Queues a job; it runs when a thread is free.
    pub fn submit(&self, job: Job) {
        if let Some(jobs) = &self.jobs {
            // The receivers live as long as the threads, which outlive this handle.
            let _ = jobs.send((job, None));
        }
    }

    /// Queues `job` like [`TaskPool::submit`]; until a thread starts it, the returned
    /// claim can take it back (then it never runs and has no outcome).
    pub fn submit_claimable(&self, job: Job) -> Claim {
        let claim = Claim(Arc::new(AtomicBool::new(false)));
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send((job, Some(claim.clone())));
        }
        claim
    }
}

/// The right to run a claimable job: whoever takes it first (a pool thread starting
/// the job, or its submitter taking it back) has it.
#[derive(Clone, Debug)]
pub struct Claim(Arc<AtomicBool>);

impl Claim {
    /// Takes the job; false when it was already taken.
    pub fn take(&self) -> bool {
        !self.0.swap(true, Ordering::AcqRel)
    }
}

impl Drop for TaskPool {
    fn drop(&mut self) {
        self.jobs = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn run_job(job: Job) -> Outcome {
    let start = Instant::now();
    let mut log = String::new();
    let result = catch_unwind(AssertUnwindSafe(|| execute(&job.key, &job.task.op, &job.inputs, &mut log)));
    let result = result.unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("unknown panic");
        Err(Error::invalid(job.task.op.name(), format!("the task panicked: {message}")))
    });
    Outcome { key: job.key, result, duration: start.elapsed(), log }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_core::{NativeFn, Op};

    #[test]
    fn panics_become_failed_tasks_and_the_pool_carries_on() {
        let (tx, rx) = unbounded();
        let pool = TaskPool::new(1, move |o| tx.send(o).unwrap()).unwrap();
        let boom = Op::Native(NativeFn::new("boom", false, |_| panic!("kaboom")));
        let fine = Op::Native(NativeFn::new("fine", false, |_| Ok(Value::Json(serde_json::json!(7)))));
        pool.submit(Job { key: Key::new("boom", []), task: Arc::new(Task::new(boom, vec![])), inputs: vec![] });
        pool.submit(Job { key: Key::new("fine", []), task: Arc::new(Task::new(fine, vec![])), inputs: vec![] });
        let first = rx.recv().unwrap();
        assert!(first.result.unwrap_err().to_string().contains("kaboom"));
        let second = rx.recv().unwrap();
        assert_eq!(*second.result.unwrap(), Value::Json(serde_json::json!(7)));
    }

    #[test]
    fn a_claimable_job_taken_back_before_it_starts_never_runs() {
        let (tx, rx) = unbounded();
        let pool = TaskPool::new(1, move |o: Outcome| tx.send(o.key).unwrap()).unwrap();
        let (gate_tx, gate_rx) = unbounded::<()>();
        let wait = Op::Native(NativeFn::new("wait", false, move |_| {
            gate_rx.recv().unwrap();
            Ok(Value::Unit)
        }));
        let unit = Op::Native(NativeFn::new("unit", false, |_| Ok(Value::Unit)));
        let job = |name: &str, op: &Op| Job {
            key: Key::new(name, []),
            task: Arc::new(Task::new(op.clone(), vec![])),
            inputs: vec![],
        };
        let first = pool.submit_claimable(job("first", &wait));
        let second = pool.submit_claimable(job("second", &unit));
        let third = pool.submit_claimable(job("third", &unit));
        assert!(second.take(), "the second job has not started: the one thread is busy");
        assert!(!second.take(), "a claim is taken once");
        gate_tx.send(()).unwrap();
        assert_eq!(rx.recv().unwrap(), Key::new("first", []));
        assert_eq!(rx.recv().unwrap(), Key::new("third", []));
        assert!(!first.take() && !third.take(), "started jobs cannot be taken back");
        drop(pool);
        assert!(rx.try_recv().is_err(), "the taken job never ran");
    }
}
