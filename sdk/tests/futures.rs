//! The futures API on the embedded engine: submit, map, gather, scatter, wait,
//! as_completed, cancel, and values kept on the engine while they are referenced.

use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use tessera::array::{self, Axes};
use tessera::delayed;
use tessera::{Client, Value};

fn client() -> Client {
    Client::local_with(4, None).unwrap().with_progress(false)
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Json(j) => j.as_i64().expect("an integer"),
        other => panic!("expected JSON, got {}", other.kind()),
    }
}

/// Values the engine holds right now.
fn held(client: &Client) -> u64 {
    client.cluster_info().unwrap().workers[0].held_keys
}

/// Waits until the engine holds `n` values.
fn wait_until_held(client: &Client, n: u64) {
    let start = Instant::now();
    while held(client) != n {
        assert!(start.elapsed() < Duration::from_secs(10), "the engine holds {} values, not {n}", held(client));
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn map_and_gather_return_values_in_order() {
    let c = client();
    let futures =
        c.map("square", |v| Ok(Value::Json(json!(int(v) * int(v)))), (0..20).map(|i| Value::Json(json!(i)))).unwrap();
    let values = c.gather(&futures).unwrap();
    assert_eq!(values.iter().map(|v| int(v)).collect::<Vec<_>>(), (0..20).map(|i| i * i).collect::<Vec<_>>());
}

#[test]
fn futures_feed_later_work_without_recomputing() {
    let c = client();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let base = delayed::call(
        "base",
        move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
            Ok(Value::Json(json!(21)))
        },
        &[],
    );
    let future = c.submit(&base).unwrap();
    let twice = delayed::call("double", |a| Ok(Value::Json(json!(int(a[0]) * 2))), &[&future.to_delayed()]);
    let thrice = delayed::call("triple", |a| Ok(Value::Json(json!(int(a[0]) * 3))), &[&future.to_delayed()]);
    let results = c.gather(&c.submit_all(&[twice, thrice]).unwrap()).unwrap();
    assert_eq!((int(&results[0]), int(&results[1])), (42, 63));
    assert_eq!(int(&future.result().unwrap()), 21);
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the future's task ran once");
}

#[test]
fn scattered_values_stay_until_their_futures_are_dropped() {
    let c = client();
    let scattered = c.scatter((0..3).map(|i| Value::Json(json!(i)))).unwrap();
    wait_until_held(&c, 3);
    let sum = delayed::call(
        "sum",
        |a| Ok(Value::Json(json!(a.iter().map(|v| int(v)).sum::<i64>()))),
        &scattered.iter().map(|f| f.to_delayed()).collect::<Vec<_>>().iter().collect::<Vec<_>>(),
    );
    assert_eq!(int(&sum.compute_with(&c).unwrap()), 3);
    drop(sum);
    wait_until_held(&c, 3);
    drop(scattered);
    wait_until_held(&c, 0);
}

#[test]
fn as_completed_yields_each_future_as_it_finishes() {
    let c = client();
    // The slow task waits for the fast ones, so the order is known.
    let gate = Arc::new(Barrier::new(2));
    let slow_gate = gate.clone();
    let slow = delayed::call(
        "slow",
        move |_| {
            slow_gate.wait();
            Ok(Value::Json(json!("slow")))
        },
        &[],
    );
    let fast = delayed::call("fast", |_| Ok(Value::Json(json!("fast"))), &[]);
    let futures = c.submit_all(&[slow, fast]).unwrap();
    let mut order = tessera::as_completed(&futures);
    assert_eq!(order.next().unwrap().key(), futures[1].key());
    assert!(!futures[0].done());
    gate.wait();
    assert_eq!(order.next().unwrap().key(), futures[0].key());
    assert!(order.next().is_none());
    tessera::wait(&futures);
    assert!(futures.iter().all(tessera::Future::done));
}

#[test]
fn a_failed_task_fails_its_future_and_gather_names_it() {
    let c = client();
    let bad = delayed::call("explode", |_| Err(tessera::Error::Engine("boom".into())), &[]);
    let good = delayed::call("fine", |_| Ok(Value::Unit), &[]);
    let futures = c.submit_all(&[good, bad]).unwrap();
    assert_eq!(*futures[0].result().unwrap(), Value::Unit);
    let err = futures[1].result().unwrap_err().to_string();
    assert!(err.contains("explode") && err.contains("boom"), "{err}");
    let err = c.gather(&futures).unwrap_err().to_string();
    assert!(err.contains("boom"), "{err}");
}

#[test]
fn cancel_stops_queued_work_and_fails_the_future() {
    let c = Client::local_with(1, None).unwrap().with_progress(false);
    let ran = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Barrier::new(2));
    let blocker_gate = gate.clone();
    let blocker = c
        .submit(&delayed::call(
            "blocker",
            move |_| {
                blocker_gate.wait();
                Ok(Value::Unit)
            },
            &[],
        ))
        .unwrap();
    let counted = ran.clone();
    let queued = c
        .submit(&delayed::call(
            "queued",
            move |_| {
                counted.fetch_add(1, Ordering::SeqCst);
                Ok(Value::Unit)
            },
            &[],
        ))
        .unwrap();
    queued.cancel();
    gate.wait();
    blocker.result().unwrap();
    assert!(queued.result().unwrap_err().to_string().contains("cancelled"));
    let start = Instant::now();
    while c.cluster_info().unwrap().tasks > 1 {
        assert!(start.elapsed() < Duration::from_secs(10), "the cancelled task was not forgotten");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(ran.load(Ordering::SeqCst), 0, "a cancelled task ran");
}

#[test]
fn persist_keeps_blocks_on_the_engine_until_the_array_is_dropped() {
    let c = client();
    let x = array::random::random_sample(&[60, 40], &[20, 20], 3)
        .unwrap()
        .add(array::ones(&[60, 40], &[20, 20], tessera::DType::F64).unwrap())
        .unwrap();
    let expected = x.sum(Axes::All).unwrap().compute_with(&c).unwrap();
    wait_until_held(&c, 0);
    let persisted = x.persist_with(&c).unwrap();
    assert_eq!(persisted.name(), x.name(), "a persisted array keeps its keys");
    wait_until_held(&c, 6);
    assert_eq!(persisted.sum(Axes::All).unwrap().compute_with(&c).unwrap(), expected);
    wait_until_held(&c, 6);
    let copy = persisted.clone();
    drop(persisted);
    wait_until_held(&c, 6);
    drop(copy);
    wait_until_held(&c, 0);
}

#[test]
fn a_client_with_retries_runs_a_failed_task_again() {
    let attempts = Arc::new(AtomicUsize::new(0));
    let flaky = |attempts: Arc<AtomicUsize>| {
        delayed::call(
            "flaky",
            move |_| match attempts.fetch_add(1, Ordering::SeqCst) {
                0 | 1 => Err(tessera::Error::Engine("transient".into())),
                _ => Ok(Value::Json(json!("ok"))),
            },
            &[],
        )
    };
    let err = flaky(attempts.clone()).compute_with(&client()).unwrap_err().to_string();
    assert!(err.contains("transient"), "{err}");
    assert_eq!(attempts.load(Ordering::SeqCst), 1, "no retries by default");
    attempts.store(0, Ordering::SeqCst);
    let err = flaky(attempts.clone()).compute_with(&client().with_retries(1)).unwrap_err().to_string();
    assert!(err.contains("transient"), "{err}");
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    attempts.store(0, Ordering::SeqCst);
    let value = flaky(attempts.clone()).compute_with(&client().with_retries(2)).unwrap();
    assert_eq!(*value, Value::Json(json!("ok")));
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
}

#[test]
fn a_performance_report_describes_the_work_it_wraps() {
    let c = client();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.html");
    let x = array::random::random_sample(&[400, 400], &[100, 100], 1).unwrap();
    let total = c.performance_report(&path, || x.sum(Axes::All).unwrap().compute_with(&c)).unwrap();
    assert_eq!(total.shape(), &[] as &[usize]);
    let page = std::fs::read_to_string(&path).unwrap();
    assert!(page.starts_with("<!doctype html>") && page.contains("<svg id=\"task-stream\""));
    assert!(page.contains("<td>local</td>"), "the one worker is listed");
    // 16 fused random+partial-sum tasks and their tree of combines.
    let rects = page.matches("<rect").count();
    assert!(rects > 16, "{rects} tasks drawn");
    assert!(!page.contains("<script"), "self-contained, no scripts");
}

#[test]
fn the_embedded_engine_refuses_tasks_that_need_resources() {
    let c = client().with_resources(&[("GPU", 1.0)]);
    let err = array::ones(&[4], &[2], tessera::DType::F64).unwrap().compute_with(&c).unwrap_err().to_string();
    assert!(err.contains("offers no resources") && err.contains("GPU"), "{err}");
}

#[test]
fn work_built_on_another_client_s_futures_fetches_their_values() {
    let (first, second) = (client(), client());
    let x = array::random::random_sample(&[30, 20], &[10, 10], 8).unwrap();
    let persisted = x.persist_with(&first).unwrap();
    let doubled = persisted.mul(tessera::Scalar::F64(2.0)).unwrap();
    assert_eq!(doubled.compute_with(&second).unwrap(), doubled.compute_with(&first).unwrap());
    let future = first.scatter([Value::Json(json!(5))]).unwrap().remove(0);
    let plus_one = delayed::call("inc", |a| Ok(Value::Json(json!(int(a[0]) + 1))), &[&future.to_delayed()]);
    assert_eq!(int(&plus_one.compute_with(&second).unwrap()), 6);
}
