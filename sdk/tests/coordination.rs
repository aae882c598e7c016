//! Locks, events, variables and queues on the embedded engine, used from many threads.

use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tessera::coordination::{Event, Lock, Queue, Variable};
use tessera::{Client, Value};

fn client() -> Client {
    Client::local_with(1, None).unwrap().with_progress(false)
}

#[test]
fn a_lock_lets_one_holder_in_at_a_time() {
    let c = client();
    let inside = Arc::new(AtomicBool::new(false));
    let entries = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (c, inside, entries) = (c.clone(), inside.clone(), entries.clone());
            std::thread::spawn(move || {
                let lock = Lock::new(&c, "counter");
                for _ in 0..20 {
                    lock.acquire().unwrap();
                    assert!(!inside.swap(true, Ordering::SeqCst), "two holders at once");
                    std::thread::sleep(Duration::from_micros(200));
                    entries.fetch_add(1, Ordering::SeqCst);
                    inside.store(false, Ordering::SeqCst);
                    lock.release().unwrap();
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(entries.load(Ordering::SeqCst), 80);
}

#[test]
fn a_held_lock_times_out_others_and_refuses_foreign_releases() {
    let c = client();
    let (mine, theirs) = (Lock::new(&c, "l"), Lock::new(&c, "l"));
    mine.acquire().unwrap();
    assert!(!theirs.try_acquire_for(Duration::from_millis(50)).unwrap());
    let err = theirs.release().unwrap_err().to_string();
    assert!(err.contains("lock \"l\"") && err.contains("not held"), "{err}");
    mine.release().unwrap();
    assert!(theirs.try_acquire_for(Duration::from_secs(5)).unwrap(), "the timed-out request left no trace");
    theirs.release().unwrap();
}

#[test]
fn an_event_wakes_its_waiters() {
    let c = client();
    let event = Event::new(&c, "go");
    assert!(!event.is_set().unwrap());
    assert!(!event.wait(Some(Duration::from_millis(20))).unwrap());
    let waiter = {
        let c = c.clone();
        std::thread::spawn(move || Event::new(&c, "go").wait(None).unwrap())
    };
    std::thread::sleep(Duration::from_millis(20));
    event.set().unwrap();
    assert!(waiter.join().unwrap());
    assert!(event.is_set().unwrap());
    event.clear().unwrap();
    assert!(!event.is_set().unwrap());
}

#[test]
fn a_variable_waits_for_a_value() {
    let c = client();
    let v = Variable::new(&c, "threshold");
    let err = v.get(Some(Duration::from_millis(20))).unwrap_err().to_string();
    assert!(err.contains("variable \"threshold\"") && err.contains("no value"), "{err}");
    let reader = {
        let c = c.clone();
        std::thread::spawn(move || Variable::new(&c, "threshold").get(None).unwrap())
    };
    v.set(Value::Json(json!(0.5))).unwrap();
    assert_eq!(reader.join().unwrap(), Value::Json(json!(0.5)));
    v.set(Value::Json(json!(0.7))).unwrap();
    assert_eq!(v.get(None).unwrap(), Value::Json(json!(0.7)));
    v.delete().unwrap();
    assert!(v.get(Some(Duration::from_millis(20))).is_err());
}

#[test]
fn a_queue_hands_values_over_in_order() {
    let c = client();
    let consumer = {
        let c = c.clone();
        std::thread::spawn(move || {
            let q = Queue::new(&c, "work");
            (0..10).map(|_| q.get().unwrap()).collect::<Vec<_>>()
        })
    };
    let q = Queue::new(&c, "work");
    for i in 0..10 {
        q.put(Value::Json(json!(i))).unwrap();
    }
    assert_eq!(consumer.join().unwrap(), (0..10).map(|i| Value::Json(json!(i))).collect::<Vec<_>>());
    assert_eq!(q.qsize().unwrap(), 0);
}
