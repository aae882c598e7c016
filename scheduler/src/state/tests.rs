//! One test per transition and per guarantee, on small hand-made graphs.

use super::*;
use tessera_core::Op;
use tessera_core::op::ArrayOp;

const A: WorkerId = WorkerId(1);
const B: WorkerId = WorkerId(2);
const C1: ClientId = ClientId(1);
const C2: ClientId = ClientId(2);

fn k(name: &str) -> Key {
    Key::new(name, [])
}

/// A task over `deps` (the scheduler never runs its op).
fn task(deps: &[&str]) -> Spec {
    Spec::new(Op::Array(ArrayOp::AddN), deps.iter().map(|d| k(d)).collect())
}

fn spec(name: &str, deps: &[&str]) -> (Key, Arc<Spec>) {
    (k(name), Arc::new(task(deps)))
}

/// A scheduler checked for consistency after every event.
struct Harness(State);

impl Harness {
    fn new(workers: &[(WorkerId, usize)]) -> Self {
        let mut h = Harness(State::new());
        for &(worker, nthreads) in workers {
            assert!(h.step(Event::WorkerAdded { worker, nthreads, resources: Vec::new() }).is_empty());
        }
        h
    }

    fn step(&mut self, event: Event) -> Vec<Command> {
        let out = self.0.handle(event);
        if let Err(e) = self.0.check_consistency() {
            panic!("inconsistent after {out:?}: {e}");
        }
        out
    }

    fn submit(&mut self, client: ClientId, specs: Vec<(Key, Arc<Spec>)>, wanted: &[&str]) -> Vec<Command> {
        self.step(Event::GraphSubmitted { client, tasks: specs, wanted: wanted.iter().map(|w| k(w)).collect() })
    }

    fn finish(&mut self, worker: WorkerId, name: &str, nbytes: u64) -> Vec<Command> {
        self.step(Event::TaskFinished { worker, key: k(name), nbytes })
    }

    fn fail(&mut self, worker: WorkerId, name: &str, message: &str) -> Vec<Command> {
        self.step(Event::TaskErred { worker, key: k(name), message: message.into() })
    }

    fn release(&mut self, client: ClientId, names: &[&str]) -> Vec<Command> {
        self.step(Event::KeysReleased { client, keys: names.iter().map(|n| k(n)).collect() })
    }

    fn state(&self, name: &str) -> Option<TaskState> {
        self.0.task_state(&k(name))
    }
}

/// Compares equal to any `Execute` of `name` on `worker`, whatever its task.
fn exec(worker: WorkerId, name: &str) -> Command {
    Command::Execute { worker, key: k(name), task: Arc::new(task(&[])) }
}

fn release(worker: WorkerId, name: &str) -> Command {
    Command::Release { worker, key: k(name) }
}

fn ready(client: ClientId, name: &str) -> Command {
    Command::Ready { client, key: k(name) }
}

fn forget(name: &str) -> Command {
    Command::Forget { key: k(name) }
}

fn executed(out: &[Command]) -> Vec<String> {
    out.iter()
        .filter_map(|c| match c {
            Command::Execute { key, .. } => Some(key.to_string()),
            _ => None,
        })
        .collect()
}

fn erred(out: &[Command]) -> Vec<(ClientId, String, String)> {
    out.iter()
        .filter_map(|c| match c {
            Command::Erred { client, key, message } => Some((*client, key.to_string(), message.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_chain_walks_through_every_state() {
    let mut h = Harness::new(&[]);
    let out = h.submit(C1, vec![spec("c", &["b"]), spec("b", &["a"]), spec("a", &[])], &["c"]);
    assert!(out.is_empty(), "no worker yet: {out:?}");
    assert_eq!(h.state("a"), Some(TaskState::Queued));
    assert_eq!(h.state("b"), Some(TaskState::Waiting));
    assert_eq!(h.step(Event::WorkerAdded { worker: A, nthreads: 1, resources: Vec::new() }), vec![exec(A, "a")]);
    assert_eq!(h.state("a"), Some(TaskState::Processing));
    assert_eq!(h.finish(A, "a", 8), vec![exec(A, "b")]);
    assert_eq!(h.state("a"), Some(TaskState::Memory));
    assert_eq!(h.0.who_has(&k("a")).collect::<Vec<_>>(), [A]);
    assert_eq!(h.finish(A, "b", 8), vec![release(A, "a"), exec(A, "c")]);
    // Released but kept: c could need it again.
    assert_eq!(h.state("a"), Some(TaskState::Released));
    assert_eq!(h.0.who_has(&k("a")).count(), 0);
    assert_eq!(h.finish(A, "c", 8), vec![ready(C1, "c"), release(A, "b")]);
    assert_eq!(h.state("c"), Some(TaskState::Memory));
    assert_eq!(h.release(C1, &["c"]), vec![release(A, "c"), forget("c"), forget("b"), forget("a")]);
    assert_eq!(h.0.task_count(), 0);
    assert_eq!(h.state("a"), None);
}

#[test]
fn queued_tasks_wait_for_a_free_thread() {
    let mut h = Harness::new(&[(A, 2)]);
    let names = ["t0", "t1", "t2", "t3", "t4"];
    let out = h.submit(C1, names.iter().map(|n| spec(n, &[])).collect(), &names);
    assert_eq!(executed(&out), ["t0", "t1"]);
    assert_eq!(h.state("t2"), Some(TaskState::Queued));
    assert_eq!(h.finish(A, "t1", 1), vec![ready(C1, "t1"), exec(A, "t2")]);
    assert_eq!(
        h.step(Event::WorkerAdded { worker: A, nthreads: 3, resources: Vec::new() }),
        vec![exec(A, "t3")],
        "one more thread"
    );
    assert_eq!(h.state("t4"), Some(TaskState::Queued));
}

#[test]
fn one_thread_runs_the_depth_first_post_order() {
    let mut h = Harness::new(&[(A, 1)]);
    let specs = vec![
        spec("r", &["x", "y"]),
        spec("y", &["c", "d"]),
        spec("x", &["a", "b"]),
        spec("d", &[]),
        spec("c", &[]),
        spec("b", &[]),
        spec("a", &[]),
    ];
    let mut order = executed(&h.submit(C1, specs, &["r"]));
    while let Some(last) = order.last().cloned() {
        let out = h.finish(A, &last, 1);
        match executed(&out).pop() {
            Some(next) => order.push(next),
            None => break,
        }
    }
    assert_eq!(order, ["a", "b", "x", "c", "d", "y", "r"]);
}

#[test]
fn later_submissions_run_after_earlier_ones() {
    let mut h = Harness::new(&[]);
    h.submit(C1, vec![spec("p", &["p0"]), spec("p0", &[])], &["p"]);
    h.submit(C2, vec![spec("q", &[])], &["q"]);
    assert_eq!(h.step(Event::WorkerAdded { worker: A, nthreads: 1, resources: Vec::new() }), vec![exec(A, "p0")]);
    // p0 then p (first submission) before q, although q was ready all along.
    assert_eq!(executed(&h.finish(A, "p0", 1)), ["p"]);
    assert_eq!(executed(&h.finish(A, "p", 1)), ["q"]);
}

#[test]
fn tasks_run_where_most_of_their_input_bytes_are() {
    let mut h = Harness::new(&[(A, 1), (B, 1)]);
    let out = h.submit(C1, vec![spec("a", &[]), spec("b", &[]), spec("c", &["a", "b"])], &["c"]);
    assert_eq!(out, vec![exec(A, "a"), exec(B, "b")], "equal load: lowest id first");
    h.finish(A, "a", 10);
    assert_eq!(h.finish(B, "b", 100), vec![exec(B, "c")]);
}

#[test]
fn an_input_is_released_once_every_dependent_finished() {
    let mut h = Harness::new(&[(A, 2)]);
    let specs = vec![spec("a", &[]), spec("b", &["a"]), spec("c", &["a"]), spec("d", &["b", "c"])];
    h.submit(C1, specs, &["d"]);
    assert_eq!(h.finish(A, "a", 1), vec![exec(A, "b"), exec(A, "c")]);
    assert_eq!(h.finish(A, "b", 1), vec![]);
    assert_eq!(h.state("a"), Some(TaskState::Memory), "c still reads a");
    assert_eq!(h.finish(A, "c", 1), vec![release(A, "a"), exec(A, "d")]);
}

#[test]
fn an_error_reaches_exactly_the_dependents() {
    let mut h = Harness::new(&[(A, 1)]);
    let specs = vec![spec("a", &[]), spec("b", &["a"]), spec("c", &["b"]), spec("e", &[]), spec("f", &["e"])];
    h.submit(C1, specs, &["c", "f"]);
    h.submit(C2, vec![], &["b"]);
    let out = h.fail(A, "a", "boom");
    let mut errs = erred(&out);
    errs.sort();
    assert_eq!(
        errs,
        [(C1, "c".into(), "dependency a failed: boom".into()), (C2, "b".into(), "dependency a failed: boom".into())]
    );
    assert_eq!(executed(&out), ["e"], "independent work continues");
    assert_eq!(h.state("a"), Some(TaskState::Erred));
    assert_eq!(h.state("c"), Some(TaskState::Erred));
    h.finish(A, "e", 1);
    assert_eq!(h.finish(A, "f", 1), vec![ready(C1, "f"), release(A, "e")]);
    // A late client is told at once; the erred tasks go once nobody refers to them.
    assert_eq!(erred(&h.submit(ClientId(3), vec![spec("z", &["c"])], &["z"])).len(), 1);
    h.release(ClientId(3), &["z"]);
    h.release(C2, &["b"]);
    h.release(C1, &["c", "f"]);
    assert_eq!(h.0.task_count(), 0);
}

#[test]
fn released_keys_stop_queued_work_and_drop_running_work_when_it_ends() {
    let mut h = Harness::new(&[(A, 1)]);
    h.submit(C1, vec![spec("a", &[]), spec("b", &[]), spec("c", &["b"])], &["a", "c"]);
    assert_eq!(h.state("a"), Some(TaskState::Processing));
    let out = h.release(C1, &["a", "c"]);
    assert_eq!(out, vec![forget("c"), forget("b")], "queued b never runs");
    assert_eq!(h.state("a"), Some(TaskState::Processing));
    assert_eq!(h.finish(A, "a", 1), vec![release(A, "a"), forget("a")]);
    assert_eq!(h.0.task_count(), 0);
}

#[test]
fn a_task_wanted_again_while_running_is_kept() {
    let mut h = Harness::new(&[(A, 1)]);
    h.submit(C1, vec![spec("a", &[])], &["a"]);
    h.release(C1, &["a"]);
    assert!(h.submit(C2, vec![spec("a", &[])], &["a"]).is_empty(), "still running: not sent again");
    assert_eq!(h.finish(A, "a", 1), vec![ready(C2, "a")]);
}

#[test]
fn a_removed_worker_s_work_and_data_are_redone_elsewhere() {
    let mut h = Harness::new(&[(A, 1)]);
    h.submit(C1, vec![spec("a", &[]), spec("b", &["a"])], &["b"]);
    h.finish(A, "a", 1);
    assert_eq!(h.state("b"), Some(TaskState::Processing));
    h.step(Event::WorkerAdded { worker: B, nthreads: 1, resources: Vec::new() });
    // b goes back to the queue, a's only copy is gone: recompute a, then b.
    assert_eq!(h.step(Event::WorkerRemoved { worker: A }), vec![exec(B, "a")]);
    assert_eq!(h.state("b"), Some(TaskState::Waiting));
    assert!(h.finish(A, "a", 1).is_empty(), "reports from a removed worker are ignored");
    assert_eq!(h.finish(B, "a", 1), vec![exec(B, "b")]);
    assert_eq!(h.finish(B, "b", 1), vec![ready(C1, "b"), release(B, "a")]);
}

#[test]
fn a_task_running_elsewhere_keeps_going_when_an_input_is_lost() {
    let mut h = Harness::new(&[(A, 1), (B, 1)]);
    h.submit(C1, vec![spec("a", &[]), spec("x", &[]), spec("b", &["a", "x"]), spec("c", &["a"])], &["b", "c"]);
    assert_eq!(h.finish(A, "a", 1), vec![exec(A, "c")]);
    assert_eq!(h.finish(B, "x", 5), vec![exec(B, "b")]);
    // A dies with a and c: c runs again, which needs a again; b on B already read a.
    let a2 = WorkerId(0);
    h.step(Event::WorkerAdded { worker: a2, nthreads: 1, resources: Vec::new() });
    assert_eq!(h.step(Event::WorkerRemoved { worker: A }), vec![exec(a2, "a")]);
    assert_eq!(h.state("b"), Some(TaskState::Processing));
    assert_eq!(h.finish(B, "b", 1), vec![ready(C1, "b"), release(B, "x")]);
    assert_eq!(h.finish(a2, "a", 1), vec![exec(a2, "c")]);
    assert_eq!(h.finish(a2, "c", 1), vec![ready(C1, "c"), release(a2, "a")]);
}

#[test]
fn a_queued_task_whose_input_is_lost_waits_again() {
    let mut h = Harness::new(&[(A, 1), (B, 1)]);
    assert_eq!(
        h.submit(C1, vec![spec("a", &[]), spec("x", &[]), spec("b", &["a", "x"])], &["b"]),
        [exec(A, "a"), exec(B, "x")]
    );
    h.finish(A, "a", 1);
    // No free thread anywhere when b becomes ready.
    h.step(Event::WorkerAdded { worker: A, nthreads: 0, resources: Vec::new() });
    h.step(Event::WorkerAdded { worker: B, nthreads: 0, resources: Vec::new() });
    assert!(h.finish(B, "x", 1).is_empty());
    assert_eq!(h.state("b"), Some(TaskState::Queued));
    assert!(h.step(Event::WorkerRemoved { worker: A }).is_empty());
    assert_eq!(h.state("b"), Some(TaskState::Waiting));
    assert_eq!(h.state("a"), Some(TaskState::Queued));
    assert_eq!(h.step(Event::WorkerAdded { worker: B, nthreads: 1, resources: Vec::new() }), vec![exec(B, "a")]);
    assert_eq!(h.finish(B, "a", 1), vec![exec(B, "b")]);
}

#[test]
fn a_lost_input_only_a_running_task_reads_is_not_recomputed() {
    let mut h = Harness::new(&[(A, 1), (B, 1)]);
    h.submit(C1, vec![spec("a", &[]), spec("x", &[]), spec("b", &["a", "x"])], &["b"]);
    h.finish(A, "a", 1);
    assert_eq!(h.finish(B, "x", 5), vec![exec(B, "b")]);
    assert!(h.step(Event::WorkerRemoved { worker: A }).is_empty());
    assert_eq!(h.state("a"), Some(TaskState::Released));
    assert_eq!(h.finish(B, "b", 1), vec![ready(C1, "b"), release(B, "x")]);
}

#[test]
fn a_task_that_kills_too_many_workers_errs() {
    let mut h = Harness::new(&[]);
    h.0.kill_limit = 2;
    h.submit(C1, vec![spec("t", &[]), spec("u", &["t"])], &["u"]);
    for (i, worker) in [WorkerId(10), WorkerId(11)].into_iter().enumerate() {
        assert_eq!(h.step(Event::WorkerAdded { worker, nthreads: 1, resources: Vec::new() }), vec![exec(worker, "t")]);
        let out = h.step(Event::WorkerRemoved { worker });
        if i == 0 {
            assert!(out.is_empty());
            assert_eq!(h.state("t"), Some(TaskState::Queued));
        } else {
            assert_eq!(erred(&out), [(C1, "u".into(), "dependency t failed: task t killed 2 workers".into())]);
            assert_eq!(h.state("t"), Some(TaskState::Erred));
        }
    }
}

#[test]
fn the_default_kill_limit_is_three() {
    assert_eq!(State::new().kill_limit, 3);
}

#[test]
fn invalid_graphs_err_without_panicking() {
    let mut h = Harness::new(&[(A, 1)]);
    let out = h.submit(C1, vec![spec("a", &["ghost"]), spec("b", &["a"])], &["b", "nothing"]);
    assert_eq!(
        erred(&out),
        [
            (C1, "nothing".into(), "no task computes nothing".into()),
            (C1, "b".into(), "dependency a failed: task a depends on ghost, which has no task".into()),
        ]
    );
    let out = h.submit(C2, vec![spec("x", &["y"]), spec("y", &["x"]), spec("s", &["s"])], &["x", "s"]);
    let errs = erred(&out);
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs.iter().all(|e| e.2.contains("dependency cycle")), "{errs:?}");
    assert!(executed(&out).is_empty());
    h.release(C1, &["b", "nothing"]);
    h.release(C2, &["x", "s"]);
    assert_eq!(h.0.task_count(), 0);
}

#[test]
fn resubmission_is_idempotent_and_memory_is_reused() {
    let mut h = Harness::new(&[(A, 1)]);
    let graph = || vec![spec("a", &[]), spec("b", &["a"]), spec("a", &["ignored duplicate"])];
    assert_eq!(h.submit(C1, graph(), &["a"]), vec![exec(A, "a")]);
    assert!(h.submit(C1, graph(), &["a"]).is_empty());
    assert_eq!(h.finish(A, "a", 1), vec![ready(C1, "a")]);
    // Persisted a: a second client's graph reads it, and gets it at once when it asks.
    let out = h.submit(C2, graph(), &["a", "b", "a"]);
    assert_eq!(out, vec![ready(C2, "a"), exec(A, "b")]);
    h.finish(A, "b", 1);
    assert_eq!(h.release(C1, &["a"]), vec![], "C2 still wants a");
    assert_eq!(h.release(C2, &["a", "b"]), vec![release(A, "b"), forget("b"), release(A, "a"), forget("a")]);
}

#[test]
fn each_wanting_client_is_told() {
    let mut h = Harness::new(&[(A, 1)]);
    h.submit(C1, vec![spec("a", &[])], &["a"]);
    h.submit(C2, vec![spec("a", &[])], &["a"]);
    assert_eq!(h.finish(A, "a", 1), vec![ready(C1, "a"), ready(C2, "a")]);
}

#[test]
fn stray_events_are_ignored_or_answered_with_release() {
    let mut h = Harness::new(&[(A, 1), (B, 1)]);
    h.submit(C1, vec![spec("a", &[])], &["a"]);
    assert_eq!(h.finish(B, "a", 1), vec![release(B, "a")], "not running there");
    assert_eq!(h.finish(B, "who", 1), vec![release(B, "who")], "unknown key");
    assert!(h.finish(WorkerId(9), "a", 1).is_empty(), "unknown worker");
    assert!(h.fail(B, "a", "stale").is_empty());
    assert!(h.fail(B, "who", "stale").is_empty());
    assert!(h.release(C2, &["a", "who"]).is_empty());
    assert!(h.step(Event::WorkerRemoved { worker: WorkerId(9) }).is_empty());
    assert_eq!(h.finish(A, "a", 1), vec![ready(C1, "a")]);
    assert!(h.finish(A, "a", 1).is_empty(), "duplicate report");
}

#[test]
fn an_unneeded_failure_is_dropped_quietly() {
    let mut h = Harness::new(&[(A, 1)]);
    h.submit(C1, vec![spec("a", &[])], &["a"]);
    h.release(C1, &["a"]);
    assert_eq!(h.fail(A, "a", "boom"), vec![forget("a")]);
}

#[test]
fn handle_into_appends_the_same_commands() {
    let event = Event::GraphSubmitted { client: C1, tasks: vec![spec("a", &[])], wanted: vec![k("a")] };
    let mut one = Harness::new(&[(A, 1)]).0;
    let mut two = Harness::new(&[(A, 1)]).0;
    let mut out = vec![forget("earlier")];
    two.handle_into(event.clone(), &mut out);
    assert_eq!(out[1..], one.handle(event)[..]);
}

#[test]
fn a_task_whose_inputs_cannot_be_fetched_runs_again_after_they_are_recomputed() {
    let mut h = Harness::new(&[(A, 1), (B, 1)]);
    h.submit(C1, vec![spec("a", &[]), spec("x", &[]), spec("b", &["a", "x"])], &["b"]);
    h.finish(A, "a", 1);
    assert_eq!(h.finish(B, "x", 5), vec![exec(B, "b")]);
    // B could not fetch `a` from A: A's copy is dropped and `a` computed again.
    let out = h.step(Event::InputsMissing { worker: B, key: k("b"), missing: vec![k("a")] });
    assert_eq!(out, vec![release(A, "a"), exec(A, "a")]);
    assert_eq!(h.state("b"), Some(TaskState::Waiting));
    assert_eq!(h.finish(A, "a", 1), vec![exec(B, "b")]);
    // A report about a task not running there changes nothing; no kill was counted.
    assert!(h.step(Event::InputsMissing { worker: A, key: k("b"), missing: vec![k("a")] }).is_empty());
    assert_eq!(h.finish(B, "b", 1), vec![ready(C1, "b"), release(B, "x"), release(A, "a")]);
}

#[test]
fn a_moved_value_changes_holder_and_the_old_copy_is_released() {
    let mut h = Harness::new(&[(A, 1), (B, 1)]);
    h.submit(C1, vec![spec("a", &[])], &["a"]);
    h.finish(A, "a", 4);
    assert_eq!(h.0.held_by(A), [k("a")]);
    assert_eq!(h.step(Event::ValueMoved { key: k("a"), from: A, to: B }), vec![release(A, "a")]);
    assert_eq!(h.0.who_has(&k("a")).collect::<Vec<_>>(), [B]);
    assert!(h.0.held_by(A).is_empty());
    // A repeated report changes nothing; a copy made of a released key is dropped.
    assert!(h.step(Event::ValueMoved { key: k("a"), from: A, to: B }).is_empty());
    assert_eq!(h.0.who_has(&k("a")).collect::<Vec<_>>(), [B]);
    let counts = h.0.count_by_state();
    assert!(counts.contains(&(TaskState::Memory, 1)), "{counts:?}");
    h.release(C1, &["a"]);
    assert_eq!(h.step(Event::ValueMoved { key: k("a"), from: B, to: A }), vec![release(A, "a")]);
}

#[test]
fn replicas_serve_readers_anywhere_and_outlive_their_holder() {
    let mut h = Harness::new(&[(A, 1), (B, 1)]);
    h.submit(C1, vec![spec("a", &[])], &["a"]);
    h.finish(A, "a", 4);
    assert!(h.step(Event::ValueReplicated { key: k("a"), to: B }).is_empty());
    assert_eq!(h.0.who_has(&k("a")).collect::<Vec<_>>(), [A, B]);
    assert!(h.0.held_by(A).is_empty(), "A's value is not unique: it need not move when A retires");
    assert_eq!((h.0.holding_count(A), h.0.holding_count(B)), (1, 1));
    // A repeated report, or one from the holder itself, changes nothing.
    assert!(h.step(Event::ValueReplicated { key: k("a"), to: B }).is_empty());
    assert!(h.step(Event::ValueReplicated { key: k("a"), to: A }).is_empty());
    // The holder dies: the replica holds the value, nothing is recomputed.
    assert!(h.step(Event::WorkerRemoved { worker: A }).is_empty());
    assert_eq!(h.state("a"), Some(TaskState::Memory));
    assert_eq!(h.0.who_has(&k("a")).collect::<Vec<_>>(), [B]);
    // A task reading it runs where the copy is.
    assert_eq!(h.submit(C1, vec![spec("b", &["a"])], &["b"]), vec![exec(B, "b")]);
}

#[test]
fn a_released_value_is_released_on_every_holder() {
    let mut h = Harness::new(&[(A, 1), (B, 1)]);
    h.submit(C1, vec![spec("a", &[])], &["a"]);
    h.finish(A, "a", 4);
    h.step(Event::ValueReplicated { key: k("a"), to: B });
    assert_eq!(h.release(C1, &["a"]), vec![release(A, "a"), release(B, "a"), forget("a")]);
    // A copy landing after the release is dropped at once.
    assert_eq!(h.step(Event::ValueReplicated { key: k("a"), to: B }), vec![release(B, "a")]);
}

#[test]
fn a_moved_replica_keeps_one_copy_per_worker() {
    let c = WorkerId(3);
    let mut h = Harness::new(&[(A, 1), (B, 1), (c, 1)]);
    h.submit(C1, vec![spec("a", &[])], &["a"]);
    h.finish(A, "a", 4);
    h.step(Event::ValueReplicated { key: k("a"), to: B });
    // B retires and its replica moves to C; then A's copy moves to C, which has one.
    assert_eq!(h.step(Event::ValueMoved { key: k("a"), from: B, to: c }), vec![release(B, "a")]);
    assert_eq!(h.0.who_has(&k("a")).collect::<Vec<_>>(), [A, c]);
    assert_eq!(h.step(Event::ValueMoved { key: k("a"), from: A, to: c }), vec![release(A, "a")]);
    assert_eq!(h.0.who_has(&k("a")).collect::<Vec<_>>(), [c]);
}

#[test]
fn execute_hands_back_the_task_first_submitted_for_the_key() {
    let mut h = Harness::new(&[(A, 1)]);
    let (first, second) = (spec("a", &[]), spec("a", &[]));
    let out = h.submit(C1, vec![first.clone(), second.clone(), spec("b", &["a"])], &["b"]);
    assert_eq!(out, [exec(A, "a")]);
    let Command::Execute { task, .. } = &out[0] else { unreachable!() };
    assert!(Arc::ptr_eq(task, &first.1) && !Arc::ptr_eq(task, &second.1), "the first task for a key stands");
    let out = h.finish(A, "a", 8);
    let Command::Execute { task, .. } = &out[0] else { panic!("b should run: {out:?}") };
    assert_eq!(task.deps[..], [k("a")], "b's own task, with its dependency");
}

#[test]
fn a_failed_task_with_retries_left_runs_again() {
    let mut h = Harness::new(&[(A, 1)]);
    let flaky = (k("flaky"), Arc::new(Spec { retries: 1, ..task(&["a"]) }));
    assert_eq!(h.submit(C1, vec![flaky, spec("a", &[])], &["flaky"]), vec![exec(A, "a")]);
    assert_eq!(h.finish(A, "a", 8), vec![exec(A, "flaky")]);
    assert_eq!(h.fail(A, "flaky", "transient"), vec![exec(A, "flaky")], "retried on the same input");
    assert_eq!(h.state("a"), Some(TaskState::Memory));
    let out = h.fail(A, "flaky", "again");
    assert_eq!(erred(&out), vec![(C1, "flaky".to_string(), "again".to_string())], "no retries left");
}

#[test]
fn a_task_needing_a_resource_waits_for_a_worker_with_it_free() {
    let gpu = vec![("GPU".to_string(), 1.0)];
    let mut h = Harness::new(&[(A, 2)]);
    let on_gpu = |name: &str| (k(name), Arc::new(Spec { resources: gpu.clone(), ..task(&[]) }));
    let out = h.submit(C1, vec![on_gpu("g0"), on_gpu("g1"), spec("t", &[])], &["g0", "g1", "t"]);
    assert_eq!(executed(&out), ["t"], "A offers no GPU");
    let out = h.step(Event::WorkerAdded { worker: B, nthreads: 2, resources: gpu.clone() });
    let first = executed(&out);
    assert_eq!(first.len(), 1, "B has one GPU for two GPU tasks: {out:?}");
    assert!(out.iter().all(|c| matches!(c, Command::Execute { worker: B, .. })));
    let out = h.finish(B, &first[0], 8);
    let second = executed(&out);
    assert_eq!(second.len(), 1, "the GPU is free again: {out:?}");
    assert_ne!(first, second);
    assert!(out.iter().any(|c| matches!(c, Command::Execute { worker: B, .. })));
}

#[test]
fn a_task_given_back_runs_on_another_worker() {
    let mut h = Harness::new(&[(A, 2), (B, 1)]);
    let out = h.submit(C1, vec![spec("a", &[]), spec("b", &["a"]), spec("c", &["a"])], &["b", "c"]);
    assert_eq!(out, vec![exec(A, "a")]);
    let out = h.finish(A, "a", 100);
    assert_eq!(out.len(), 2, "both dependents go to the holder of their input: {out:?}");
    assert!(out.iter().all(|c| matches!(c, Command::Execute { worker: A, .. })));
    assert_eq!(h.step(Event::TaskReturned { worker: A, key: k("c") }), vec![exec(B, "c")]);
    assert_eq!(h.step(Event::TaskReturned { worker: A, key: k("c") }), vec![], "not on A any more: ignored");
    assert_eq!(h.finish(B, "c", 8), vec![ready(C1, "c")]);
}

fn scatter(h: &mut Harness, client: ClientId, worker: WorkerId, names: &[&str]) -> Vec<Command> {
    h.step(Event::ValuesScattered { client, worker, values: names.iter().map(|n| (k(n), 16)).collect() })
}

#[test]
fn scattered_values_are_in_memory_where_they_were_put_and_feed_tasks_there() {
    let mut h = Harness::new(&[(A, 1), (B, 1)]);
    assert_eq!(scatter(&mut h, C1, B, &["x", "y"]), vec![ready(C1, "x"), ready(C1, "y")]);
    assert_eq!(h.state("x"), Some(TaskState::Memory));
    assert_eq!(h.0.who_has(&k("x")).collect::<Vec<_>>(), [B]);
    assert_eq!(h.submit(C1, vec![spec("s", &["x", "y"])], &["s"]), vec![exec(B, "s")], "runs by its inputs");
    assert_eq!(h.finish(B, "s", 8), vec![ready(C1, "s")], "x and y stay: the client wants them");
    assert_eq!(h.release(C1, &["x"]), vec![release(B, "x")], "kept as a spec: s depends on it");
    let out = h.release(C1, &["s", "y"]);
    assert_eq!(out, vec![release(B, "y"), release(B, "s"), forget("s"), forget("y"), forget("x")]);
    assert_eq!(h.0.task_count(), 0);
}

#[test]
fn a_lost_scattered_value_errs_with_its_dependents_instead_of_running() {
    let mut h = Harness::new(&[(A, 1), (B, 1)]);
    scatter(&mut h, C1, A, &["x"]);
    h.submit(C1, vec![spec("s", &["x"]), spec("t", &["s"])], &["t"]);
    h.finish(A, "s", 8);
    assert_eq!(h.state("t"), Some(TaskState::Processing));
    let out = h.step(Event::WorkerRemoved { worker: A });
    assert!(executed(&out).is_empty(), "nothing can compute x again: {out:?}");
    let failures = erred(&out);
    assert_eq!(failures.len(), 2, "x and t, both wanted by C1: {out:?}");
    assert!(failures.iter().all(|(_, _, m)| m.contains("scattered value x is gone")), "{failures:?}");
    assert_eq!(h.state("t"), Some(TaskState::Erred));
    // A replica would have kept it.
    scatter(&mut h, C2, B, &["z"]);
    h.step(Event::WorkerAdded { worker: A, nthreads: 1, resources: Vec::new() });
    h.step(Event::ValueReplicated { key: k("z"), to: A });
    assert!(h.step(Event::WorkerRemoved { worker: B }).is_empty());
    assert_eq!(h.0.who_has(&k("z")).collect::<Vec<_>>(), [A]);
}

#[test]
fn scattering_to_a_departed_worker_or_a_known_key_keeps_one_consistent_copy() {
    let mut h = Harness::new(&[(A, 1)]);
    let out = scatter(&mut h, C1, B, &["x"]);
    assert_eq!(erred(&out).len(), 1, "B is not a worker: {out:?}");
    assert_eq!(h.state("x"), None);
    scatter(&mut h, C1, A, &["x"]);
    h.step(Event::WorkerAdded { worker: B, nthreads: 1, resources: Vec::new() });
    assert_eq!(scatter(&mut h, C2, B, &["x"]), vec![release(B, "x"), ready(C2, "x")], "the first copy stands");
    assert_eq!(h.0.who_has(&k("x")).collect::<Vec<_>>(), [A]);
    assert_eq!(h.release(C1, &["x"]), vec![], "C2 wants it too");
}
