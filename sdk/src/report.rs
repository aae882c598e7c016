//! Performance reports: [`Client::performance_report`] runs some work and writes one
//! self-contained HTML file (no scripts, no external files) describing it: wall time,
//! task time per group and per worker, and the task stream drawn as SVG, one row per
//! worker thread.

use crate::Client;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;
use std::time::Instant;
use tessera_core::wire::TaskRecord;
use tessera_core::{Error, Result};

/// Width of the task stream drawing, in pixels.
const STREAM_WIDTH: f64 = 1000.0;

/// Height of one thread's row in the task stream.
const ROW_HEIGHT: f64 = 14.0;

impl Client {
    /// Runs `work` and writes a performance report of the tasks it ran to `path` (an
    /// HTML file), then returns what `work` returned. The report covers the tasks that
    /// finished while `work` ran (the scheduler remembers the last 2000); work other
    /// clients ran at the same time appears too.
    pub fn performance_report<T>(&self, path: impl AsRef<Path>, work: impl FnOnce() -> Result<T>) -> Result<T> {
        let (start_s, _) = self.engine().task_stream()?;
        let started = Instant::now();
        let result = work();
        let wall_s = started.elapsed().as_secs_f64();
        let (_, records) = self.engine().task_stream()?;
        let records: Vec<TaskRecord> = records.into_iter().filter(|r| r.start_s >= start_s).collect();
        let html = render(&records, wall_s, result.as_ref().err());
        let path = path.as_ref();
        std::fs::write(path, html)
            .map_err(|e| Error::invalid("performance_report", format!("cannot write {}: {e}", path.display())))?;
        result
    }
}

/// Totals of one group or one worker.
#[derive(Default)]
struct Totals {
    tasks: u64,
    seconds: f64,
}

/// The whole report page.
fn render(records: &[TaskRecord], wall_s: f64, error: Option<&Error>) -> String {
    let mut groups: BTreeMap<&str, Totals> = BTreeMap::new();
    let mut workers: BTreeMap<&str, Totals> = BTreeMap::new();
    for r in records {
        for totals in [groups.entry(&r.group).or_default(), workers.entry(&r.worker).or_default()] {
            totals.tasks += 1;
            totals.seconds += r.duration_s;
        }
    }
    let task_s: f64 = records.iter().map(|r| r.duration_s).sum();
    let mut page = String::from(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Tessera performance report</title>\n<style>\
         body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}\
         td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}td:first-child,th:first-child{text-align:left}\
         .error{color:#b00}</style></head><body>\n<h1>Tessera performance report</h1>\n",
    );
    let _ = writeln!(
        page,
        "<p id=\"summary\">wall time {wall_s:.3} s · {} tasks · {task_s:.3} s of task time · {} workers · parallelism {:.2}</p>",
        records.len(),
        workers.len(),
        if wall_s > 0.0 { task_s / wall_s } else { 0.0 },
    );
    if let Some(error) = error {
        let _ = writeln!(page, "<p class=\"error\">the work failed: {}</p>", escape(&error.to_string()));
    }
    page.push_str("<h2>Task groups</h2>\n");
    table(&mut page, "groups", "group", &groups, task_s);
    page.push_str("<h2>Workers</h2>\n");
    table(&mut page, "workers", "worker", &workers, task_s);
    page.push_str("<h2>Task stream</h2>\n");
    task_stream(&mut page, records);
    page.push_str("</body></html>\n");
    page
}

/// A table of totals by name.
fn table(page: &mut String, id: &str, what: &str, rows: &BTreeMap<&str, Totals>, task_s: f64) {
    let _ = writeln!(
        page,
        "<table id=\"{id}\"><tr><th>{what}</th><th>tasks</th><th>task time s</th><th>mean ms</th><th>share</th></tr>"
    );
    for (name, t) in rows {
        let mean_ms = 1e3 * t.seconds / t.tasks as f64;
        let share = if task_s > 0.0 { 100.0 * t.seconds / task_s } else { 0.0 };
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{:.3}</td><td>{mean_ms:.3}</td><td>{share:.1} %</td></tr>",
            escape(name),
            t.tasks,
            t.seconds
        );
    }
    page.push_str("</table>\n");
}

/// The task stream as SVG: time left to right, one row per worker thread (tasks that
/// overlap on a worker go to separate rows), one colour per group.
fn task_stream(page: &mut String, records: &[TaskRecord]) {
    let Some(t0) = records.iter().map(|r| r.start_s).reduce(f64::min) else {
        page.push_str("<p>no task finished</p>\n");
        return;
    };
    let t1 = records.iter().map(|r| r.start_s + r.duration_s).fold(t0, f64::max);
    let scale = STREAM_WIDTH / (t1 - t0).max(1e-9);
    let mut by_worker: BTreeMap<&str, Vec<&TaskRecord>> = BTreeMap::new();
    records.iter().for_each(|r| by_worker.entry(&r.worker).or_default().push(r));
    let mut rects = String::new();
    let mut row = 0usize;
    for (worker, mut tasks) in by_worker {
        tasks.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
        let mut row_ends: Vec<f64> = Vec::new();
        let first_row = row;
        for t in tasks {
            let lane = match row_ends.iter().position(|&end| end <= t.start_s + 1e-9) {
                Some(lane) => lane,
                None => {
                    row_ends.push(0.0);
                    row_ends.len() - 1
                }
            };
            row_ends[lane] = t.start_s + t.duration_s;
            let _ = writeln!(
                rects,
                "<rect x=\"{:.2}\" y=\"{:.1}\" width=\"{:.2}\" height=\"{:.1}\" fill=\"{}\"><title>{} on {} · {:.3} ms</title></rect>",
                (t.start_s - t0) * scale,
                (first_row + lane) as f64 * ROW_HEIGHT,
                (t.duration_s * scale).max(0.5),
                ROW_HEIGHT - 2.0,
                colour(&t.group),
                escape(&t.key),
                escape(worker),
                t.duration_s * 1e3,
            );
        }
        let _ = writeln!(
            rects,
            "<text x=\"2\" y=\"{:.1}\" font-size=\"10\">{}</text>",
            first_row as f64 * ROW_HEIGHT + 10.0,
            escape(worker)
        );
        row += row_ends.len();
    }
    let _ = writeln!(
        page,
        "<svg id=\"task-stream\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{STREAM_WIDTH}\" height=\"{:.0}\">\n{rects}</svg>\n<p>{:.3} s from first start to last end</p>",
        row as f64 * ROW_HEIGHT,
        t1 - t0
    );
}

/// A stable colour for a group name.
fn colour(group: &str) -> String {
    let hue = group.bytes().fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b))) % 360;
    format!("hsl({hue},60%,55%)")
}

/// Text made safe inside HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &str, worker: &str, start_s: f64, duration_s: f64) -> TaskRecord {
        let group = key.split('(').next().unwrap().to_string();
        TaskRecord { key: key.into(), group, worker: worker.into(), start_s, duration_s }
    }

    #[test]
    fn overlapping_tasks_of_a_worker_get_their_own_rows_and_names_are_escaped() {
        let records = [
            record("a(0)", "w<0>", 1.0, 1.0),
            record("a(1)", "w<0>", 1.5, 1.0),
            record("b(0)", "w<0>", 2.0, 0.5),
            record("b(1)", "w1", 1.0, 2.0),
        ];
        let page = render(&records, 2.0, None);
        assert!(page.contains("4 tasks · 4.500 s of task time · 2 workers · parallelism 2.25"), "{page}");
        assert_eq!(page.matches("<rect").count(), 4);
        // w<0> needs two rows (a(0) overlaps a(1); b(0) reuses the first), w1 one.
        assert!(page.contains("height=\"42\""), "{page}");
        assert!(page.contains("w&lt;0&gt;") && !page.contains("w<0>"));
        assert!(page.contains("<td>a</td><td>2</td><td>2.000</td><td>1000.000</td><td>44.4 %</td>"), "{page}");
    }

    #[test]
    fn an_empty_stream_says_so() {
        let page = render(&[], 0.1, Some(&Error::Engine("boom".into())));
        assert!(page.contains("no task finished"));
        assert!(page.contains("the work failed") && page.contains("boom"));
    }
}
