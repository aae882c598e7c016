//! A real cluster on loopback: a `tessera scheduler` process, `tessera worker`
//! processes, and clients in this test process over TCP.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tessera::array::{self, Array, Axes, SliceArg};
use tessera::{Client, Credentials, Scalar, TlsFiles};

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
    /// The TLS identity every member presents, for a TLS cluster.
    tls: Option<TlsFiles>,
}

/// The command-line options presenting `tls`.
fn tls_options(tls: &Option<TlsFiles>) -> Vec<std::ffi::OsString> {
    let Some(tls) = tls else { return Vec::new() };
    let pairs = [("--tls-ca", &tls.ca), ("--tls-cert", &tls.cert), ("--tls-key", &tls.key)];
    pairs.into_iter().flat_map(|(option, path)| [option.into(), path.into()]).collect()
}

impl Cluster {
    fn start(workers: usize) -> Cluster {
        Cluster::start_with_tls(workers, None)
    }

    /// A cluster whose scheduler, workers and clients all present `tls`.
    fn start_with_tls(workers: usize, tls: Option<TlsFiles>) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("scheduler.json");
        let scheduler = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(["scheduler", "--host", "127.0.0.1", "--port", "0", "--dashboard-port", "0", "--token", TOKEN])
            .arg("--scheduler-file")
            .arg(&file)
            .args(tls_options(&tls))
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
        let mut cluster = Cluster { _dir: dir, address, dashboard, scheduler, workers: Vec::new(), tls };
        for i in 0..workers {
            cluster.add_worker(&format!("w{i}"), TOKEN);
        }
        cluster
    }

    fn worker_command(&self, name: &str, token: &str) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
        command.args(["worker", "--scheduler", &self.address, "--token", token, "--nthreads", "1", "--name", name]);
        command.args(tls_options(&self.tls));
        command
    }

    fn add_worker(&mut self, name: &str, token: &str) {
        self.add_worker_with(name, token, &[]);
    }

    /// Starts a worker with extra command-line options.
    fn add_worker_with(&mut self, name: &str, token: &str, options: &[&str]) {
        let child = self.worker_command(name, token).args(options).spawn().unwrap();
        self.workers.push(child);
    }

    fn client(&self) -> Client {
        let credentials = Credentials { token: TOKEN.into(), tls: self.tls.clone() };
        Client::connect_with(&self.address, &credentials).unwrap().with_progress(false)
    }

    /// Kills the workers at `indices` and waits until the scheduler has noticed.
    fn kill_workers(&mut self, indices: std::ops::Range<usize>, client: &Client) {
        let remaining = client.cluster_info().unwrap().workers.len() - indices.len();
        for worker in &mut self.workers[indices] {
            worker.kill().unwrap();
            worker.wait().unwrap();
        }
        let start = Instant::now();
        while client.cluster_info().unwrap().workers.len() != remaining {
            assert!(start.elapsed() < JOIN_TIMEOUT, "the dead workers were not noticed");
            std::thread::sleep(Duration::from_millis(20));
        }
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
    let authority = cluster.dashboard.trim_start_matches("http://").trim_end_matches('/');
    let stream = std::net::TcpStream::connect(authority).unwrap();
    let response = exchange(stream, authority, method, path, headers, body).unwrap();
    parse_response(&response)
}

/// One GET over HTTPS to a TLS cluster's dashboard, trusting only the cluster's CA and
/// presenting no certificate (as a browser): the status code and body.
fn https_get(cluster: &Cluster, ca: &std::path::Path, path: &str) -> (u16, String) {
    use rustls::pki_types::pem::PemObject;
    let authority = cluster.dashboard.trim_start_matches("https://").trim_end_matches('/');
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let host = authority.rsplit_once(':').unwrap().0.to_string();
    let name = rustls::pki_types::ServerName::try_from(host).unwrap();
    let session = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let stream = rustls::StreamOwned::new(session, std::net::TcpStream::connect(authority).unwrap());
    parse_response(&exchange(stream, authority, "GET", path, &[], "").unwrap())
}

/// Writes one request on `stream` and reads the whole response.
fn exchange(
    mut stream: impl std::io::Read + std::io::Write,
    authority: &str,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &str,
) -> std::io::Result<String> {
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    for header in headers {
        request.push_str(&format!("{header}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\nContent-Type: application/json\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    Ok(String::from_utf8_lossy(&response).into_owned())
}

fn parse_response(response: &str) -> (u16, String) {
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or_else(|| panic!("not HTTP: {response:?}"));
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

/// A new CA and member identity made by `tessera tls-certificates` in `dir`.
fn make_certificates(dir: &std::path::Path) -> TlsFiles {
    let output =
        Command::new(env!("CARGO_BIN_EXE_tessera")).arg("tls-certificates").arg("--out").arg(dir).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    TlsFiles { ca: dir.join("ca.pem"), cert: dir.join("cert.pem"), key: dir.join("key.pem") }
}

#[test]
fn a_tls_cluster_computes_and_refuses_members_without_the_cluster_s_certificate() {
    let certificates = tempfile::tempdir().unwrap();
    let tls = make_certificates(certificates.path());
    let cluster = Cluster::start_with_tls(2, Some(tls.clone()));
    assert!(cluster.address.starts_with("tls://"), "{}", cluster.address);
    let client = cluster.client();
    client.wait_for_workers(2, JOIN_TIMEOUT).unwrap();
    let info = client.cluster_info().unwrap();
    assert!(info.workers.iter().all(|w| w.data_address.starts_with("tls://")), "{info:?}");
    // The dashboard is HTTPS with the cluster's certificate; browsers need none of their own.
    assert!(cluster.dashboard.starts_with("https://"), "{}", cluster.dashboard);
    let (code, body) = https_get(&cluster, &tls.ca, "/api/v1/status");
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["cluster"]["workers"].as_array().unwrap().len(),
        2
    );
    let authority = cluster.dashboard.trim_start_matches("https://").trim_end_matches('/');
    let plain = exchange(std::net::TcpStream::connect(authority).unwrap(), authority, "GET", "/", &[], "");
    assert!(!plain.unwrap_or_default().starts_with("HTTP/"), "plain HTTP answered by a TLS dashboard");
    // Blocks move between workers and to the client over TLS.
    let local = pipeline(5).compute_with(&Client::local_with(2, None).unwrap().with_progress(false)).unwrap();
    assert_eq!(pipeline(5).compute_with(&client).unwrap(), local);

    let without_tls = Credentials { token: TOKEN.into(), tls: None };
    let err = Client::connect_with(&cluster.address, &without_tls).err().unwrap().to_string();
    assert!(err.contains("wants TLS"), "{err}");
    let plain = cluster.address.replace("tls://", "tcp://");
    assert!(Client::connect_with(&plain, &without_tls).is_err(), "plain TCP reached a TLS scheduler");
    let strangers = tempfile::tempdir().unwrap();
    let stranger = Credentials { token: TOKEN.into(), tls: Some(make_certificates(strangers.path())) };
    let err = Client::connect_with(&cluster.address, &stranger).err().unwrap().to_string();
    assert!(err.contains("TLS handshake"), "{err}");
    let output = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["worker", "--scheduler", &cluster.address, "--token", TOKEN, "--name", "stranger"])
        .args(tls_options(&stranger.tls))
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("TLS handshake"));
    assert_eq!(client.cluster_info().unwrap().workers.len(), 2, "the stranger never joined");
    cluster.wait_until_idle(&client);
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

/// Keys the scheduler says the workers hold, in all.
fn held_on_workers(client: &Client) -> u64 {
    client.cluster_info().unwrap().workers.iter().map(|w| w.held_keys).sum()
}

#[test]
fn persist_and_futures_keep_results_on_workers_until_released() {
    let cluster = Cluster::start(2);
    let client = cluster.client();
    client.wait_for_workers(2, JOIN_TIMEOUT).unwrap();
    let local = Client::local_with(2, None).unwrap().with_progress(false);
    let x = array::random::random_sample(&[400, 400], &[100, 100], 5).unwrap().mul(Scalar::F64(2.0)).unwrap();

    let persisted = x.persist_with(&client).unwrap();
    assert_eq!(held_on_workers(&client), 16, "the 16 persisted blocks stay on the workers");
    let total = persisted.sum(Axes::All).unwrap();
    let report = tempfile::tempdir().unwrap();
    let page = report.path().join("report.html");
    let remote = client.performance_report(&page, || total.compute_with(&client)).unwrap();
    assert_eq!(remote, total.compute_with(&local).unwrap());
    let page = std::fs::read_to_string(page).unwrap();
    assert!(page.contains("<td>w0</td>") || page.contains("<td>w1</td>"), "the report names the workers: {page}");

    // Futures of several results, gathered in order and seen once each as they finish.
    let rows = |i: i64| SliceArg::Range { start: Some(i * 100), stop: Some((i + 1) * 100), step: 1 };
    let parts: Vec<_> = (0..4).map(|i| persisted.slice(&[rows(i), SliceArg::Full]).unwrap()).collect();
    let delayed: Vec<_> = parts.iter().map(|p| p.sum(Axes::All).unwrap().to_delayed().unwrap()).collect();
    let futures = client.submit_all(&delayed).unwrap();
    let mut finished: Vec<String> = tessera::as_completed(&futures).map(|f| f.key().to_string()).collect();
    finished.sort();
    let mut keys: Vec<String> = futures.iter().map(|f| f.key().to_string()).collect();
    keys.sort();
    assert_eq!(finished, keys);
    let gathered = client.gather(&futures).unwrap();
    for (part, value) in parts.iter().zip(&gathered) {
        let expected = part.sum(Axes::All).unwrap().compute_with(&local).unwrap();
        assert_eq!(value.as_chunk().unwrap(), &expected);
    }

    // Scattered data lives on a worker until its future is dropped.
    let scattered = client.scatter([tessera::Value::Json(serde_json::json!({"a": 1}))]).unwrap();
    assert_eq!(*client.gather(&scattered).unwrap()[0], tessera::Value::Json(serde_json::json!({"a": 1})));

    drop((persisted, total, parts, delayed, futures, scattered));
    cluster.wait_until_idle(&client);
}

#[test]
fn a_broadcast_value_lands_on_every_worker_and_outlives_its_first_holder() {
    let mut cluster = Cluster::start(3);
    let client = cluster.client();
    client.wait_for_workers(3, JOIN_TIMEOUT).unwrap();
    let value = tessera::Value::Json(serde_json::json!({ "weights": [1, 2, 3] }));
    let futures = client.broadcast([value.clone()]).unwrap();
    let start = Instant::now();
    while !client.cluster_info().unwrap().workers.iter().all(|w| w.held_keys == 1) {
        assert!(start.elapsed() < JOIN_TIMEOUT, "not on every worker: {:?}", client.cluster_info());
        std::thread::sleep(Duration::from_millis(20));
    }
    // Two of the three workers die, the first holder among them whichever it was: the
    // last copy serves the value (nothing could compute it again).
    cluster.kill_workers(0..2, &client);
    assert_eq!(*client.gather(&futures).unwrap()[0], value);
    drop(futures);
    cluster.wait_until_idle(&client);
}

#[test]
fn scattered_values_go_straight_to_the_workers_and_one_lost_with_its_worker_fails() {
    let mut cluster = Cluster::start(2);
    let client = cluster.client();
    client.wait_for_workers(2, JOIN_TIMEOUT).unwrap();
    let values: Vec<tessera::Value> = (0..4).map(|i| tessera::Value::Json(serde_json::json!({ "i": i }))).collect();
    let futures = client.scatter(values.clone()).unwrap();
    let held: Vec<u64> = client.cluster_info().unwrap().workers.iter().map(|w| w.held_keys).collect();
    assert_eq!(held, [2, 2], "one value per worker thread in turn");
    let status = wait_for_status(&cluster, "the status", |_| true);
    assert_eq!(status["finished_total"], 0, "no task ran to put them there: {status}");
    let gathered: Vec<tessera::Value> = client.gather(&futures).unwrap().iter().map(|v| (**v).clone()).collect();
    assert_eq!(gathered, values);

    cluster.kill_workers(1..2, &client);
    let (mut kept, mut lost) = (0, 0);
    for (future, value) in futures.iter().zip(&values) {
        match future.result() {
            Ok(v) => {
                assert_eq!(*v, *value);
                kept += 1;
            }
            Err(e) => {
                assert!(e.to_string().contains("is gone"), "{e}");
                lost += 1;
            }
        }
    }
    assert_eq!((kept, lost), (2, 2), "w1's two values are lost, w0's are served");
    drop(futures);
    cluster.wait_until_idle(&client);
}

#[test]
fn a_cancelled_future_stops_its_work() {
    let cluster = Cluster::start(1);
    let client = cluster.client();
    client.wait_for_workers(1, JOIN_TIMEOUT).unwrap();
    let future = client.submit(&slow_work().to_delayed().unwrap()).unwrap();
    let start = Instant::now();
    while client.cluster_info().unwrap().tasks == 0 {
        assert!(start.elapsed() < JOIN_TIMEOUT, "the work never reached the scheduler");
        std::thread::sleep(Duration::from_millis(10));
    }
    future.cancel();
    let err = future.result().unwrap_err().to_string();
    assert!(err.contains("cancelled"), "{err}");
    assert!(future.done());
    cluster.wait_until_idle(&client);
}

#[test]
fn a_computation_bigger_than_the_cluster_s_memory_completes_by_spilling() {
    let mut cluster = Cluster::start(0);
    let spill_root = tempfile::tempdir().unwrap();
    let spill_dir = spill_root.path().to_str().unwrap();
    for name in ["w0", "w1"] {
        cluster.add_worker_with(name, TOKEN, &["--memory-limit", "8MiB", "--local-directory", spill_dir]);
    }
    let client = cluster.client();
    client.wait_for_workers(2, JOIN_TIMEOUT).unwrap();
    // 48 MB of results kept on two workers that may hold 16 MiB between them.
    let x = array::random::random_sample(&[2000, 3000], &[500, 500], 9).unwrap();
    let persisted = x.mul(Scalar::F64(3.0)).unwrap().persist_with(&client).unwrap();
    let start = Instant::now();
    let info = loop {
        let info = client.cluster_info().unwrap();
        let spilled: u64 = info.workers.iter().map(|w| w.metrics.spilled_bytes).sum();
        if spilled >= 48_000_000 - 2 * 5_033_165 && info.workers.iter().all(|w| w.metrics.stored_keys > 0) {
            break info;
        }
        assert!(start.elapsed() < JOIN_TIMEOUT, "the workers did not spill: {info:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    for w in &info.workers {
        assert!(w.metrics.memory_bytes <= 5_033_165, "{} holds more than its target in memory: {w:?}", w.name);
    }
    let spill_files = std::fs::read_dir(spill_dir).unwrap().count();
    assert_eq!(spill_files, 2, "one spill directory per worker");
    let sums = persisted.sum(Axes::from(0)).unwrap();
    let local = Client::local_with(2, None).unwrap().with_progress(false);
    let got = sums.compute_with(&client).unwrap().into_typed::<f64>().unwrap();
    // Computed locally, the multiplication and the block sums are one fused task that
    // sums in cache-sized tiles: the same values up to rounding.
    let want = x.mul(Scalar::F64(3.0)).unwrap().sum(Axes::from(0)).unwrap().compute_with(&local).unwrap();
    let want = want.into_typed::<f64>().unwrap();
    assert_eq!(got.shape(), want.shape());
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() <= 1e-12 * w.abs(), "cluster sum {g} != local sum {w}");
    }
    drop((persisted, sums));
    cluster.wait_until_idle(&client);
}

/// Waits for `child` to exit; its exit status.
fn wait_for_exit(child: &mut Child, what: &str) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(start.elapsed() < JOIN_TIMEOUT, "{what} did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn tessera_shutdown_stops_every_worker_and_the_scheduler() {
    let mut cluster = Cluster::start(2);
    let client = cluster.client();
    client.wait_for_workers(2, JOIN_TIMEOUT).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["shutdown", "--scheduler", &cluster.address, "--token", TOKEN])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(wait_for_exit(&mut cluster.scheduler, "the scheduler").success());
    for (i, worker) in cluster.workers.iter_mut().enumerate() {
        assert!(wait_for_exit(worker, &format!("worker w{i}")).success());
    }
    let err = client.cluster_info().unwrap_err().to_string();
    assert!(err.contains("connection"), "{err}");
}

#[test]
fn the_embedded_engine_has_no_cluster_to_shut_down() {
    let err = Client::local_with(1, None).unwrap().shutdown().unwrap_err().to_string();
    assert!(err.contains("no cluster to shut down"), "{err}");
}

#[test]
fn clients_coordinate_through_the_scheduler_and_a_dead_client_s_lock_is_passed_on() {
    use tessera::coordination::{Event, Lock, Queue, Variable};
    let cluster = Cluster::start(0);
    let (a, b) = (cluster.client(), cluster.client());
    let held_by_a = Lock::new(&a, "shared");
    held_by_a.acquire().unwrap();
    let waiting_in_b = Lock::new(&b, "shared");
    assert!(!waiting_in_b.try_acquire_for(Duration::from_millis(100)).unwrap());

    Queue::new(&a, "jobs").put(tessera::Value::Json(serde_json::json!("job-1"))).unwrap();
    assert_eq!(Queue::new(&b, "jobs").get().unwrap(), tessera::Value::Json(serde_json::json!("job-1")));
    Variable::new(&a, "v").set(tessera::Value::Bytes(vec![1, 2, 3])).unwrap();
    assert_eq!(Variable::new(&b, "v").get(None).unwrap(), tessera::Value::Bytes(vec![1, 2, 3]));
    Event::new(&b, "e").set().unwrap();
    assert!(Event::new(&a, "e").wait(Some(Duration::from_secs(5))).unwrap());

    // A's connection closes while it holds the lock: B gets it.
    drop((held_by_a, a));
    assert!(waiting_in_b.try_acquire_for(JOIN_TIMEOUT).unwrap());
    waiting_in_b.release().unwrap();
}

#[test]
fn tasks_needing_a_resource_run_only_on_workers_offering_it() {
    let mut cluster = Cluster::start(1);
    cluster.add_worker_with("gpu-worker", TOKEN, &["--resources", "GPU=1"]);
    let client = cluster.client();
    client.wait_for_workers(2, JOIN_TIMEOUT).unwrap();
    let on_gpu = client.clone().with_resources(&[("GPU", 1.0)]);
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    let remote = on_gpu.performance_report(&page, || pipeline(8).compute_with(&on_gpu)).unwrap();
    let local = pipeline(8).compute_with(&Client::local_with(2, None).unwrap().with_progress(false)).unwrap();
    assert_eq!(remote, local);
    let page = std::fs::read_to_string(page).unwrap();
    assert!(page.contains("<td>gpu-worker</td>"), "{page}");
    assert!(!page.contains("<td>w0</td>"), "a task ran on the worker without a GPU: {page}");
}

/// The directory of the example task components, or `None` (after saying so) when
/// they were not built and the run does not require them.
fn test_components() -> Option<std::path::PathBuf> {
    match std::env::var("TESSERA_TEST_COMPONENTS") {
        Ok(dir) if !dir.is_empty() => Some(std::path::PathBuf::from(dir)),
        _ if std::env::var_os("TESSERA_REQUIRE_TEST_SERVICES").is_some() => {
            panic!("TESSERA_TEST_COMPONENTS is not set but TESSERA_REQUIRE_TEST_SERVICES is")
        }
        _ => {
            eprintln!("skipping: TESSERA_TEST_COMPONENTS is not set (run `cargo xtask build-tasks`)");
            None
        }
    }
}

#[test]
fn a_task_whose_worker_dies_three_times_fails_with_an_error_naming_it() {
    let Some(dir) = test_components() else { return };
    let mut cluster = Cluster::start(3);
    let client = cluster.client();
    client.wait_for_workers(3, JOIN_TIMEOUT).unwrap();
    // A task that never returns stands in for one that crashes its worker: each time
    // it runs, the test kills that worker's process.
    let probes = tessera::wasm::Module::from_file(dir.join("probes.wasm")).unwrap();
    let spin = probes.task("spin").unwrap().call(&serde_json::json!(null), &[]);
    let future = client.submit(&spin).unwrap();
    for round in 1..=3 {
        let start = Instant::now();
        let running = loop {
            let info = client.cluster_info().unwrap();
            if let Some(w) = info.workers.iter().find(|w| w.metrics.executing > 0) {
                break w.name.clone();
            }
            assert!(start.elapsed() < JOIN_TIMEOUT, "round {round}: no worker runs the task: {info:?}");
            std::thread::sleep(Duration::from_millis(50));
        };
        let index: usize = running.trim_start_matches('w').parse().unwrap();
        cluster.workers[index].kill().unwrap();
        cluster.workers[index].wait().unwrap();
    }
    let err = future.result().unwrap_err().to_string();
    assert!(err.contains("killed 3 workers") && err.contains(&spin.key().to_string()), "{err}");
    // The cluster itself is fine: a new worker computes the next graph.
    cluster.add_worker("w3", TOKEN);
    client.wait_for_workers(1, JOIN_TIMEOUT).unwrap();
    let local = pipeline(8).compute_with(&Client::local_with(2, None).unwrap().with_progress(false)).unwrap();
    assert_eq!(pipeline(8).compute_with(&client).unwrap(), local);
}

#[test]
fn wasm_tasks_run_on_remote_workers() {
    let Some(dir) = test_components() else { return };
    let cluster = Cluster::start(2);
    let client = cluster.client();
    client.wait_for_workers(2, JOIN_TIMEOUT).unwrap();
    let local = Client::local_with(2, None).unwrap().with_progress(false);

    // The gaussian component, uploaded once by this client, on blocks with halos.
    let gaussian = tessera::wasm::Module::from_file(dir.join("gaussian.wasm")).unwrap();
    let noise = array::random::random_sample(&[4, 60, 50], &[2, 30, 25], 4).unwrap();
    let x = noise.mul(Scalar::F64(4000.0)).unwrap().astype(tessera::DType::U16).unwrap();
    let params = serde_json::json!({ "sigma": [1.0, 1.5, 1.5], "truncate": 4.0 });
    let smoothed = x
        .map_overlap_wasm(
            &gaussian.task("gaussian").unwrap(),
            params,
            &[4, 6, 6],
            array::Boundary::Reflect,
            tessera::DType::F32,
        )
        .unwrap();
    let native = x.gaussian_filter(&[1.0, 1.5, 1.5]).unwrap();
    assert_eq!(smoothed.compute_with(&client).unwrap(), native.compute_with(&local).unwrap());

    // Delayed WASM calls: Monte-Carlo π from eight tasks, the same on any engine.
    let pi = tessera::wasm::Module::from_file(dir.join("pi.wasm")).unwrap();
    let params = serde_json::json!({ "samples": 100_000 });
    let (sample, estimate) = (pi.task("sample").unwrap(), pi.task("estimate").unwrap());
    let counts: Vec<tessera::delayed::Delayed> = (0..8).map(|_| sample.call(&params, &[])).collect();
    let estimate = estimate.call(&params, &counts.iter().collect::<Vec<_>>());
    let remote = estimate.compute_with(&client).unwrap();
    assert_eq!(*remote, *estimate.compute_with(&local).unwrap(), "seeded from task keys, so equal everywhere");
    let value = remote.as_chunk().unwrap().first().unwrap().to_f64();
    assert!((value - std::f64::consts::PI).abs() < 0.02, "π ≈ {value}");

    // A WASM task mapped over scattered blocks, on the workers holding them.
    let otsu = tessera::wasm::Module::from_file(dir.join("otsu.wasm")).unwrap();
    let blocks: Vec<ndarray::ArrayD<f64>> =
        (0..3).map(|i| ndarray::ArrayD::from_shape_fn(vec![4, 5], |ix| (i * 20 + ix[0] * 5 + ix[1]) as f64)).collect();
    let scattered = client.scatter(blocks.iter().map(|b| tessera::Value::Chunk(tessera::Chunk::from_array(b.clone()))));
    let scattered = scattered.unwrap();
    let params = serde_json::json!({ "threshold": 30.0 });
    let masks = client.map_task(&otsu.task("otsu").unwrap(), &params, scattered.iter().map(|f| f.to_delayed()));
    let masks = client.gather(&masks.unwrap()).unwrap();
    for (block, mask) in blocks.iter().zip(&masks) {
        let expected = tessera::Chunk::from_array(block.mapv(|v| v > 30.0));
        assert_eq!(mask.as_chunk().unwrap(), &expected);
    }
}

#[test]
fn an_idle_worker_steals_a_task_waiting_on_a_busy_one() {
    let mut cluster = Cluster::start(1);
    let client = cluster.client();
    client.wait_for_workers(1, JOIN_TIMEOUT).unwrap();
    // Two big blocks, both held by w0.
    let x =
        array::random::random_sample(&[2, 3000, 3000], &[1, 3000, 3000], 12).unwrap().persist_with(&client).unwrap();
    cluster.add_worker("w1", TOKEN);
    client.wait_for_workers(2, JOIN_TIMEOUT).unwrap();
    // Slow tasks reading them: locality sends both to w0 (one runs, one waits there
    // for its only thread) until w1, idle, takes the waiting one.
    let mut slow = x.clone();
    for _ in 0..12 {
        slow = slow.exp().unwrap().log().unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    let remote = client.performance_report(&page, || slow.sum(Axes::All).unwrap().compute_with(&client)).unwrap();
    let local = slow.sum(Axes::All).unwrap().compute_with(&Client::local_with(2, None).unwrap().with_progress(false));
    let (a, b) = (remote.first().unwrap().to_f64(), local.unwrap().first().unwrap().to_f64());
    assert!((a - b).abs() <= 1e-9 * b.abs(), "{a} vs {b}");
    let status = wait_for_status(&cluster, "a steal", |s| s["stolen_total"].as_u64() >= Some(1));
    let page = std::fs::read_to_string(page).unwrap();
    assert!(page.contains("<td>w0</td>") && page.contains("<td>w1</td>"), "both workers ran tasks: {status}");
}
