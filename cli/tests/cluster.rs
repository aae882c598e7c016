//! A real cluster on loopback: a `tessera scheduler` process, `tessera worker`
//! processes, and clients in this test process over TCP.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tessera::array::{self, Array, Axes};
use tessera::{Client, Scalar};

const TOKEN: &str = "loopback-test-token";
const JOIN_TIMEOUT: Duration = Duration::from_secs(60);

/// A scheduler and workers, killed when dropped.
struct Cluster {
    _dir: tempfile::TempDir,
    address: String,
    /// `http://host:port/` of the dashboard and HTTP API.
    dashboard: String,
    scheduler: Child,
    workers: Vec<Child>,
}

impl Cluster {
    fn start(workers: usize) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("scheduler.json");
        let scheduler = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(["scheduler", "--host", "127.0.0.1", "--port", "0", "--dashboard-port", "0", "--token", TOKEN])
            .arg("--scheduler-file")
            .arg(&file)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while !file.exists() {
            assert!(start.elapsed() < JOIN_TIMEOUT, "the scheduler did not write its file");
            std::thread::sleep(Duration::from_millis(20));
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let info: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(info["token"], TOKEN);
        let address = info["address"].as_str().unwrap().to_string();
        let dashboard = info["dashboard"].as_str().unwrap().to_string();
        let mut cluster = Cluster { _dir: dir, address, dashboard, scheduler, workers: Vec::new() };
        for i in 0..workers {
            cluster.add_worker(&format!("w{i}"), TOKEN);
        }
        cluster
    }

    fn worker_command(&self, name: &str, token: &str) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
        command.args(["worker", "--scheduler", &self.address, "--token", token, "--nthreads", "1", "--name", name]);
        command
    }

    fn add_worker(&mut self, name: &str, token: &str) {
        let child = self.worker_command(name, token).spawn().unwrap();
        self.workers.push(child);
    }

    fn client(&self) -> Client {
        Client::connect_with_token(&self.address, TOKEN).unwrap().with_progress(false)
    }

    /// Waits until the scheduler knows no task and the workers hold nothing.
    fn wait_until_idle(&self, client: &Client) {
        let start = Instant::now();
        loop {
            let info = client.cluster_info().unwrap();
            if info.tasks == 0 && info.workers.iter().all(|w| w.held_keys == 0 && w.metrics.stored_keys == 0) {
                return;
            }
            assert!(start.elapsed() < JOIN_TIMEOUT, "the cluster did not release its work: {info:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// One HTTP/1.1 request to the dashboard's server: the status code and body.
fn http(cluster: &Cluster, method: &str, path: &str, headers: &[&str], body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let authority = cluster.dashboard.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(authority).unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    for header in headers {
        request.push_str(&format!("{header}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\nContent-Type: application/json\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let code = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (code, body.to_string())
}

/// Waits until `done` holds for the scheduler's status JSON.
fn wait_for_status(cluster: &Cluster, what: &str, done: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let (code, body) = http(cluster, "GET", "/api/v1/status", &[], "");
        assert_eq!(code, 200, "{body}");
        let status: serde_json::Value = serde_json::from_str(&body).unwrap();
        if done(&status) {
            return status;
        }
        assert!(start.elapsed() < JOIN_TIMEOUT, "timed out waiting for {what}: {status}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.workers.iter_mut().chain([&mut self.scheduler]) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A pipeline with transfers between workers: a transpose, a rechunk and a reduction.
fn pipeline(seed: u64) -> Array {
    let x = array::random::random_sample(&[600, 400], &[100, 100], seed).unwrap();
    let y = x.mul(Scalar::F64(2.0)).unwrap().rechunk_to(vec![vec![200, 200, 200], vec![400]]).unwrap();
    y.add(&x).unwrap().sum(Axes::from(1)).unwrap()
}

#[test]
fn a_multi_worker_pipeline_gives_the_local_result() {
    let cluster = Cluster::start(2);
    let client = cluster.client();
    client.wait_for_workers(2, JOIN_TIMEOUT).unwrap();
    let remote = pipeline(3).compute_with(&client).unwrap();
    let local = pipeline(3).compute_with(&Client::local_with(2, None).unwrap().with_progress(false)).unwrap();
    assert_eq!(remote, local);
    let info = client.cluster_info().unwrap();
    assert_eq!(info.workers.iter().map(|w| w.name.as_str()).collect::<Vec<_>>(), ["w0", "w1"]);
    cluster.wait_until_idle(&client);
}

#[test]
fn a_bad_token_is_refused_with_a_clear_error() {
    let mut cluster = Cluster::start(0);
    let err = Client::connect_with_token(&cluster.address, "wrong").err().unwrap().to_string();
    assert!(err.contains("token does not match"), "{err}");
    let output = cluster.worker_command("intruder", "wrong").output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("token does not match"), "{stderr}");
    cluster.add_worker("w0", TOKEN);
    let client = cluster.client();
    client.wait_for_workers(1, JOIN_TIMEOUT).unwrap();
    assert_eq!(client.cluster_info().unwrap().workers.len(), 1, "the intruder never joined");
}

#[test]
fn a_killed_worker_s_results_are_recomputed_and_the_answer_is_right() {
    let mut cluster = Cluster::start(2);
    let client = cluster.client();
    client.wait_for_workers(2, JOIN_TIMEOUT).unwrap();
    let work = || {
        let x = array::random::normal(&[4000, 4000], &[250, 250], 0.0, 1.0, 11).unwrap();
        x.mul(&x).unwrap().t().unwrap().add(&x).unwrap().sum(Axes::from(0)).unwrap()
    };
    let expected = work().compute_with(&Client::local_with(2, None).unwrap().with_progress(false)).unwrap();
    let running = std::thread::spawn({
        let client = client.clone();
        move || work().compute_with(&client)
    });
    // Kill w1 once it holds results others still need.
    let start = Instant::now();
    loop {
        let info = client.cluster_info().unwrap();
        if info.workers.iter().any(|w| w.name == "w1" && w.held_keys > 0) {
            break;
        }
        assert!(start.elapsed() < JOIN_TIMEOUT, "w1 never held a result: {info:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!running.is_finished(), "the computation finished before the kill; make it bigger");
    let victim = &mut cluster.workers[1];
    victim.kill().unwrap();
    victim.wait().unwrap();
    let result = running.join().unwrap().unwrap();
    assert_eq!(result, expected);
    let info = client.cluster_info().unwrap();
    assert_eq!(info.workers.iter().map(|w| w.name.as_str()).collect::<Vec<_>>(), ["w0"]);
}

#[test]
fn a_client_that_disconnects_mid_computation_releases_its_work() {
    let cluster = Cluster::start(1);
    let observer = cluster.client();
    observer.wait_for_workers(1, JOIN_TIMEOUT).unwrap();
    // A client in another process submits a big computation and is killed.
    let mut doomed = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "submit_and_wait_forever", "--ignored", "--nocapture"])
        .env("TESSERA_TEST_SCHEDULER", &cluster.address)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while observer.cluster_info().unwrap().tasks == 0 {
        assert!(start.elapsed() < JOIN_TIMEOUT, "the other client never submitted");
        std::thread::sleep(Duration::from_millis(20));
    }
    doomed.kill().unwrap();
    doomed.wait().unwrap();
    cluster.wait_until_idle(&observer);
    assert_eq!(observer.cluster_info().unwrap().clients, 1);
}

/// Run by `a_client_that_disconnects_mid_computation_releases_its_work` in a child
/// process, which it kills.
#[test]
#[ignore = "run as a child process by another test"]
fn submit_and_wait_forever() {
    let Ok(address) = std::env::var("TESSERA_TEST_SCHEDULER") else { return };
    let client = Client::connect_with_token(&address, TOKEN).unwrap().with_progress(false);
    let x = array::random::normal(&[20000, 20000], &[500, 500], 0.0, 1.0, 5).unwrap();
    let _ = x.mul(&x).unwrap().sum(Axes::All).unwrap().compute_with(&client);
    unreachable!("the computation should outlive this process");
}

#[test]
fn native_closures_are_refused_by_a_remote_cluster() {
    let cluster = Cluster::start(0);
    let client = cluster.client();
    let one = tessera::delayed::call("one", |_| Ok(tessera::Value::Json(serde_json::json!(1))), &[]);
    let err = one.compute_with(&client).unwrap_err().to_string();
    assert!(err.contains("calls the Rust closure `one`, which cannot leave this process"), "{err}");
}

/// A computation long enough to watch: a few seconds of work on two 1-thread workers.
fn slow_work() -> Array {
    let x = array::random::normal(&[6000, 6000], &[250, 250], 0.0, 1.0, 17).unwrap();
    x.mul(&x).unwrap().t().unwrap().add(&x).unwrap().sum(Axes::from(0)).unwrap()
}

#[test]
fn the_dashboard_shows_live_workers_and_progress_in_headless_chromium() {
    let cluster = Cluster::start(2);
    let client = cluster.client();
    client.wait_for_workers(2, JOIN_TIMEOUT).unwrap();
    // About a minute of work: the page is read while it runs; the cluster (and the
    // computation) stop when the test ends.
    let endless = array::random::normal(&[40000, 40000], &[250, 250], 0.0, 1.0, 3).unwrap().sum(Axes::All).unwrap();
    let running = std::thread::spawn({
        let client = client.clone();
        move || endless.compute_with(&client)
    });
    wait_for_status(&cluster, "some finished tasks", |s| s["finished_total"].as_u64() > Some(0));
    let output = Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=1500", "--dump-dom"])
        .arg(&cluster.dashboard)
        .output()
        .expect("chromium runs (cargo xtask test installs Debian's package)");
    assert!(!running.is_finished(), "the computation ended before the page was read; make it bigger");
    drop(running); // stopped with the cluster
    let dom = String::from_utf8_lossy(&output.stdout);
    for worker in ["w0", "w1"] {
        assert!(dom.contains(&format!("<tr class=\"worker\"><td>{worker}</td>")), "no live worker {worker} in\n{dom}");
    }
    let progressing = dom.split("<tr class=\"group\"").skip(1).any(|row| {
        let done =
            row.split("data-done=\"").nth(1).and_then(|r| r.split('"').next()).and_then(|n| n.parse::<u64>().ok());
        done > Some(0)
    });
    assert!(progressing, "no task group with finished tasks in\n{dom}");
    assert!(dom.contains("class=\"task\""), "the task stream is empty in\n{dom}");
    assert!(dom.contains("class=\"node\""), "the group graph is empty in\n{dom}");
}

#[test]
fn the_http_api_serves_status_metrics_and_the_adaptive_target() {
    let cluster = Cluster::start(1);
    let client = cluster.client();
    client.wait_for_workers(1, JOIN_TIMEOUT).unwrap();
    let (code, body) = http(&cluster, "GET", "/api/v1/adaptive-target", &[], "");
    assert_eq!(code, 200);
    let idle: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!((idle["workers"].as_u64(), idle["pending_tasks"].as_u64()), (Some(0), Some(0)), "{idle}");
    let running = std::thread::spawn({
        let client = client.clone();
        move || slow_work().compute_with(&client)
    });
    wait_for_status(&cluster, "a running computation", |s| s["cluster"]["tasks"].as_u64() > Some(0));
    let (_, body) = http(&cluster, "GET", "/api/v1/adaptive-target", &[], "");
    let busy: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(busy["workers"].as_u64() >= Some(1) && busy["pending_tasks"].as_u64() > Some(0), "{busy}");
    let (code, metrics) = http(&cluster, "GET", "/metrics", &[], "");
    assert_eq!(code, 200);
    assert!(metrics.lines().any(|l| l == "tessera_workers 1"), "{metrics}");
    assert!(metrics.contains("tessera_worker_memory_bytes{worker=\"w0\"}"), "{metrics}");
    running.join().unwrap().unwrap();
    let (code, page) = http(&cluster, "GET", "/", &[], "");
    assert_eq!(code, 200);
    assert!(page.contains("id=\"task-stream\""));
}

#[test]
fn retiring_a_worker_moves_its_data_first_and_it_exits_cleanly() {
    let mut cluster = Cluster::start(2);
    let client = cluster.client();
    client.wait_for_workers(2, JOIN_TIMEOUT).unwrap();
    let (code, body) = http(&cluster, "POST", "/api/v1/retire-workers", &[], r#"{"names": ["w1"]}"#);
    assert_eq!(code, 401, "{body}");
    let expected = slow_work().compute_with(&Client::local_with(2, None).unwrap().with_progress(false)).unwrap();
    let running = std::thread::spawn({
        let client = client.clone();
        move || slow_work().compute_with(&client)
    });
    wait_for_status(&cluster, "w1 holding results", |s| {
        s["cluster"]["workers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["name"] == "w1" && w["metrics"]["stored_keys"].as_u64() > Some(0))
    });
    let auth = format!("Authorization: Bearer {TOKEN}");
    let (code, body) = http(&cluster, "POST", "/api/v1/retire-workers", &[&auth], r#"{"names": ["w1"]}"#);
    assert_eq!((code, body.as_str()), (200, r#"{"workers":["w1"]}"#));
    let (code, body) = http(&cluster, "POST", "/api/v1/retire-workers", &[&auth], r#"{"names": ["nobody"]}"#);
    assert_eq!(code, 400);
    assert!(body.contains("no worker is called \"nobody\""), "{body}");
    let status = cluster.workers[1].wait().unwrap();
    assert!(status.success(), "the retired worker exited with {status}");
    assert_eq!(running.join().unwrap().unwrap(), expected);
    let info = client.cluster_info().unwrap();
    assert_eq!(info.workers.iter().map(|w| w.name.as_str()).collect::<Vec<_>>(), ["w0"]);
}
