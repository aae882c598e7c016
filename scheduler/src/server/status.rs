//! What the scheduler reports about itself over HTTP: [`Status`] (the dashboard's
//! data), [`AdaptiveTarget`] and [`RetireRequest`]. Plain serde types, so other
//! processes (the operator, tests) read the same JSON.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;
use tessera_core::Key;
use tessera_core::wire::ClusterInfo;
pub use tessera_core::wire::TaskRecord;

/// Finished tasks remembered for the task stream.
const STREAM_LENGTH: usize = 2000;

/// How many of the most recently finished tasks [`Activity::recent_mean_duration_s`]
/// averages.
pub const RECENT_TASKS: usize = 100;

/// Everything the dashboard shows, as of one moment.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Status {
    /// Workers, task and client counts.
    pub cluster: ClusterInfo,
    /// Tasks per state: released, waiting, queued, processing, memory, erred.
    pub states: BTreeMap<String, u64>,
    /// Progress of each task group (the tasks of one collection layer), by name.
    pub groups: Vec<GroupProgress>,
    /// Dependencies between groups: `(from, to)` when a task of `to` reads one of `from`.
    pub edges: Vec<(String, String)>,
    /// The most recently finished tasks, oldest first.
    pub stream: Vec<TaskRecord>,
    /// Tasks finished since the scheduler started.
    pub finished_total: u64,
    /// Tasks busy workers gave back for idle ones (work stealing) since the start.
    pub stolen_total: u64,
    /// Seconds since the scheduler started.
    pub uptime_s: f64,
}

/// How far one task group has got.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct GroupProgress {
    /// The group's name (the layer name of its keys).
    pub name: String,
    /// Tasks submitted.
    pub total: u64,
    /// Tasks finished.
    pub done: u64,
    /// Tasks failed.
    pub erred: u64,
    /// Mean run time of its finished tasks, in seconds.
    pub mean_duration_s: f64,
}

/// The answer of `GET /api/v1/adaptive-target`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AdaptiveTarget {
    /// How many workers the current work wants.
    pub workers: u32,
    /// Tasks waiting, queued or running.
    pub pending_tasks: u64,
    /// Their expected total run time, in seconds, from measured task durations.
    pub expected_seconds: f64,
}

/// The body of `POST /api/v1/retire-workers`: by count (the least loaded first) or
/// by name.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum RetireRequest {
    /// Retire this many workers.
    Count(u32),
    /// Retire the workers with these names.
    Names(Vec<String>),
}

/// The answer of `POST /api/v1/retire-workers`: the names of the workers retired.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Retired {
    /// Names of the workers being retired.
    pub workers: Vec<String>,
}

/// Per-group counters, the task stream and the group graph, kept by a scheduler's
/// loop (the cluster's, or the embedded engine's).
#[derive(Debug)]
pub struct Activity {
    started: Instant,
    groups: BTreeMap<Arc<str>, GroupCounters>,
    edges: BTreeSet<(Arc<str>, Arc<str>)>,
    stream: VecDeque<Finished>,
    finished_total: u64,
    durations: (f64, u64),
    /// Durations of the last [`RECENT_TASKS`] finished tasks, and their sum.
    recent: VecDeque<f64>,
    recent_sum_s: f64,
}

/// One entry of the task stream, kept as it arrived and written out as a
/// [`TaskRecord`] only when someone looks (most never are).
#[derive(Debug)]
struct Finished {
    key: Key,
    worker: Arc<str>,
    start_s: f64,
    duration_s: f64,
}

impl Finished {
    fn record(&self) -> TaskRecord {
        TaskRecord {
            key: self.key.to_string(),
            group: self.key.name().to_string(),
            worker: self.worker.to_string(),
            start_s: self.start_s,
            duration_s: self.duration_s,
        }
    }
}

#[derive(Debug, Default)]
struct GroupCounters {
    total: u64,
    done: u64,
    erred: u64,
    /// Tasks of the group the scheduler still knows.
    live: u64,
    duration_sum_s: f64,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            started: Instant::now(),
            groups: BTreeMap::new(),
            edges: BTreeSet::new(),
            stream: VecDeque::new(),
            finished_total: 0,
            durations: (0.0, 0),
            recent: VecDeque::with_capacity(RECENT_TASKS),
            recent_sum_s: 0.0,
        }
    }
}

impl Activity {
    /// A new task of group `group` reading tasks of `dep_groups`.
    pub fn submitted<'a>(&mut self, group: &Arc<str>, dep_groups: impl Iterator<Item = &'a Arc<str>>) {
        let counters = self.groups.entry(group.clone()).or_default();
        counters.total += 1;
        counters.live += 1;
        for dep in dep_groups {
            if dep != group && !self.edges.contains(&(dep.clone(), group.clone())) {
                self.edges.insert((dep.clone(), group.clone()));
            }
        }
    }

    /// Task `key` (of group `key.name`) finished on `worker` after `duration_s`.
    pub fn finished(&mut self, key: &Key, worker: &Arc<str>, duration_s: f64) {
        if let Some(counters) = self.groups.get_mut(key.name()) {
            counters.done += 1;
            counters.duration_sum_s += duration_s;
        }
        self.finished_total += 1;
        self.durations.0 += duration_s;
        self.durations.1 += 1;
        if self.recent.len() == RECENT_TASKS {
            self.recent_sum_s -= self.recent.pop_front().unwrap_or(0.0);
        }
        self.recent.push_back(duration_s);
        self.recent_sum_s += duration_s;
        if self.finished_total.is_multiple_of(RECENT_TASKS as u64) {
            // Sums again from the window, so rounding cannot build up.
            self.recent_sum_s = self.recent.iter().sum();
        }
        let end = self.started.elapsed().as_secs_f64();
        if self.stream.len() == STREAM_LENGTH {
            self.stream.pop_front();
        }
        self.stream.push_back(Finished {
            key: key.clone(),
            worker: worker.clone(),
            start_s: (end - duration_s).max(0.0),
            duration_s,
        });
    }

    /// A task of `group` failed.
    pub fn erred(&mut self, group: &Arc<str>) {
        if let Some(counters) = self.groups.get_mut(group) {
            counters.erred += 1;
        }
    }

    /// The scheduler forgot a task of `group`; a group with no task left disappears.
    pub fn forgotten(&mut self, group: &Arc<str>) {
        if let Some(counters) = self.groups.get_mut(group) {
            counters.live = counters.live.saturating_sub(1);
            if counters.live == 0 {
                self.groups.remove(group);
                self.edges.retain(|(a, b)| a != group && b != group);
            }
        }
    }

    /// Tasks finished since the start.
    pub fn finished_total(&self) -> u64 {
        self.finished_total
    }

    /// Mean duration of the [`RECENT_TASKS`] most recently finished tasks (fewer at
    /// first), if any finished. Constant time: the shells ask after every report.
    pub fn recent_mean_duration_s(&self) -> Option<f64> {
        (!self.recent.is_empty()).then(|| self.recent_sum_s / self.recent.len() as f64)
    }

    /// Mean measured task duration, if any task finished.
    pub fn mean_duration_s(&self) -> Option<f64> {
        (self.durations.1 > 0).then(|| self.durations.0 / self.durations.1 as f64)
    }

    /// Seconds since the activity started (the clock of [`TaskRecord::start_s`]) and
    /// the task stream.
    pub fn task_stream(&self) -> (f64, Vec<TaskRecord>) {
        (self.started.elapsed().as_secs_f64(), self.stream.iter().map(Finished::record).collect())
    }

    /// Fills the activity parts of a [`Status`].
    pub fn report(&self, status: &mut Status) {
        status.groups = self
            .groups
            .iter()
            .map(|(name, c)| GroupProgress {
                name: name.to_string(),
                total: c.total,
                done: c.done,
                erred: c.erred,
                mean_duration_s: if c.done > 0 { c.duration_sum_s / c.done as f64 } else { 0.0 },
            })
            .collect();
        status.edges = self.edges.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        status.stream = self.stream.iter().map(Finished::record).collect();
        status.finished_total = self.finished_total;
        status.uptime_s = self.started.elapsed().as_secs_f64();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_count_their_tasks_and_vanish_when_forgotten() {
        let (x, y): (Arc<str>, Arc<str>) = ("x-1".into(), "y-2".into());
        let mut a = Activity::default();
        a.submitted(&x, [].into_iter());
        a.submitted(&x, [].into_iter());
        a.submitted(&y, [&x, &x].into_iter());
        let w0: Arc<str> = "w0".into();
        a.finished(&Key::new(x.clone(), [0]), &w0, 0.5);
        a.erred(&x);
        let mut status = Status::default();
        a.report(&mut status);
        let xs = &status.groups[0];
        assert_eq!((xs.name.as_str(), xs.total, xs.done, xs.erred, xs.mean_duration_s), ("x-1", 2, 1, 1, 0.5));
        assert_eq!(status.edges, [("x-1".to_string(), "y-2".to_string())]);
        assert_eq!(status.stream[0].worker, "w0");
        a.forgotten(&x);
        a.forgotten(&x);
        a.report(&mut status);
        assert_eq!(status.groups.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(), ["y-2"]);
        assert!(status.edges.is_empty());
        assert_eq!(a.mean_duration_s(), Some(0.5));
        a.finished(&Key::new(y.clone(), [0]), &w0, 0.1);
        a.finished(&Key::new(y.clone(), [1]), &w0, 0.3);
        assert!((a.recent_mean_duration_s().unwrap() - 0.3).abs() < 1e-12, "all three so far");
        for i in 0..RECENT_TASKS as u64 {
            a.finished(&Key::new(y.clone(), [i]), &w0, 0.002);
        }
        assert!((a.recent_mean_duration_s().unwrap() - 0.002).abs() < 1e-12, "the last {RECENT_TASKS} only");
        assert_eq!(Activity::default().recent_mean_duration_s(), None);
    }

    #[test]
    fn retire_requests_read_as_json() {
        assert_eq!(serde_json::from_str::<RetireRequest>(r#"{"count": 2}"#).unwrap(), RetireRequest::Count(2));
        assert_eq!(
            serde_json::from_str::<RetireRequest>(r#"{"names": ["w1"]}"#).unwrap(),
            RetireRequest::Names(vec!["w1".into()])
        );
    }
}
