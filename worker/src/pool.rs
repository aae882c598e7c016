//! [`TaskPool`]: the worker's task threads.
//!
//! The pool runs [`Job`]s on a fixed number of threads and reports each
//! [`Outcome`] through a callback. A panicking task becomes a failed task; the thread
//! carries on with the next job.

use crate::execute::execute;
use crossbeam_channel::{Receiver, Sender, unbounded};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
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
    jobs: Option<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl TaskPool {
    /// Starts `nthreads` threads; every finished job is passed to `on_done`.
    pub fn new(nthreads: usize, on_done: impl Fn(Outcome) + Send + Sync + 'static) -> std::io::Result<Self> {
        let (tx, rx) = unbounded::<Job>();
        let on_done = Arc::new(on_done);
        let threads = (0..nthreads.max(1))
            .map(|i| {
                let rx: Receiver<Job> = rx.clone();
                let on_done = on_done.clone();
                std::thread::Builder::new().name(format!("tessera-task-{i}")).spawn(move || {
                    for job in rx {
                        on_done(run_job(job));
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
            let _ = jobs.send(job);
        }
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
}
