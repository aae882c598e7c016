//! [`Saturation`]: how many tasks a worker is given per thread.
//!
//! The state machine assigns a worker at most as many tasks as it is credited threads
//! (Dask's queuing), so the rest wait in the scheduler in priority order. Crediting
//! `saturation × nthreads` keeps a few tasks queued on the worker, so its threads do not
//! idle while a finished task's report travels to the scheduler and the next task comes
//! back. While tasks are very short that round trip is most of their cost, so the
//! queue is made deeper; once they are long again it returns to the configured depth.
//! Both shells use it: the embedded engine and the network server.

use crate::server::status::Activity;

/// Below this mean task duration a worker's next tasks wait for the scheduler's round
/// trip rather than for a thread, so workers are given more tasks at once.
const SHORT_TASK_S: f64 = 0.001;

/// Tasks per thread assigned while recent tasks are shorter than [`SHORT_TASK_S`]
/// (they are too short to steal, so a deeper queue costs no balance worth having).
const SHORT_TASK_SATURATION: f64 = 8.0;

/// The configured tasks per thread and the current ones.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Saturation {
    configured: f64,
    current: f64,
}

impl Saturation {
    /// `configured` tasks per thread (at least one is always credited).
    pub fn new(configured: f64) -> Self {
        Saturation { configured, current: configured }
    }

    /// Tasks the state machine may assign at once to a worker with `nthreads` threads.
    pub fn slots(&self, nthreads: u32) -> usize {
        ((f64::from(nthreads) * self.current.max(1.0)).ceil() as usize).max(1)
    }

    /// Deepens the queues while the recent tasks of `activity` (the last
    /// [`RECENT_TASKS`](crate::server::status::RECENT_TASKS)) are shorter than
    /// [`SHORT_TASK_S`] and restores the configured depth when they are not. True when
    /// the depth changed: the shell then announces its workers' new slots to the state
    /// machine (`Event::WorkerAdded`).
    pub fn adapt(&mut self, activity: &Activity) -> bool {
        let short = activity.recent_mean_duration_s().is_some_and(|mean| mean < SHORT_TASK_S);
        let wanted = if short { self.configured.max(SHORT_TASK_SATURATION) } else { self.configured };
        let changed = wanted != self.current;
        self.current = wanted;
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::status::RECENT_TASKS;
    use std::sync::Arc;
    use tessera_core::Key;

    fn finish(activity: &mut Activity, n: usize, duration_s: f64) {
        let worker: Arc<str> = "w".into();
        for i in 0..n {
            activity.finished(&Key::new("t", [i as u64]), &worker, duration_s);
        }
    }

    #[test]
    fn short_tasks_deepen_the_queue_until_tasks_are_long_again() {
        let mut saturation = Saturation::new(1.0);
        let mut activity = Activity::default();
        assert!(!saturation.adapt(&activity), "nothing measured: the configured depth");
        assert_eq!(saturation.slots(2), 2);
        finish(&mut activity, 10, 5e-6);
        assert!(saturation.adapt(&activity));
        assert_eq!(saturation.slots(2), 16, "5 µs tasks: 8 per thread");
        assert!(!saturation.adapt(&activity), "unchanged depth is not reported again");
        finish(&mut activity, RECENT_TASKS, 0.05);
        assert!(saturation.adapt(&activity));
        assert_eq!(saturation.slots(2), 2, "50 ms tasks: back to the configured depth");
    }

    #[test]
    fn a_fractional_saturation_rounds_up_and_never_credits_zero() {
        assert_eq!(Saturation::new(1.5).slots(3), 5);
        assert_eq!(Saturation::new(0.0).slots(0), 1);
    }
}
