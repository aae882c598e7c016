//! `tessera scheduler`, `tessera worker` and `tessera local-cluster`: the processes of a
//! distributed cluster.
//!
//! Every cluster has a shared-secret token. The scheduler takes it from `--token` or
//! `TESSERA_TOKEN`, or makes a random one; it prints its address and token, and writes
//! both to `--scheduler-file` (readable only by the user) so workers and clients on a
//! shared file system can join with the file alone.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;
use tessera_scheduler::server::{ClusterConfig, SchedulerConfig};
use tessera_worker::node::WorkerConfig;

/// How to reach a scheduler: what `--scheduler-file` holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SchedulerFile {
    /// `tcp://host:port`.
    pub address: String,
    /// The cluster's token.
    pub token: String,
    /// The dashboard's URL, when it serves one.
    #[serde(default)]
    pub dashboard: Option<String>,
}

impl SchedulerFile {
    /// Reads a scheduler file.
    pub fn read(path: &Path) -> Result<SchedulerFile, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{} is not a scheduler file: {e}", path.display()))
    }

    /// Writes the file readable by its owner only.
    fn write(&self, path: &Path) -> Result<(), String> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let text = serde_json::to_string_pretty(self).expect("a scheduler file serialises");
        let tmp = path.with_extension("tmp");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        file.write_all(text.as_bytes()).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, path).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }
}

/// Options of `tessera scheduler`.
pub struct SchedulerOptions {
    pub host: String,
    pub port: u16,
    pub dashboard_port: Option<u16>,
    pub token: Option<String>,
    pub scheduler_file: Option<PathBuf>,
    pub worker_saturation: f64,
}

/// Options of `tessera worker`.
pub struct WorkerOptions {
    pub scheduler: Option<String>,
    pub scheduler_file: Option<PathBuf>,
    pub token: Option<String>,
    pub name: Option<String>,
    pub nthreads: Option<usize>,
    pub memory_limit: Option<u64>,
    pub host: Option<String>,
}

/// A token from the option, the environment, or 32 random hex digits.
fn token_or_random(token: Option<String>) -> Result<String, String> {
    if let Some(token) = token.or_else(|| std::env::var("TESSERA_TOKEN").ok()).filter(|t| !t.is_empty()) {
        return Ok(token);
    }
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| format!("cannot make a random token: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the I/O runtime: {e}"))
}

/// Runs a scheduler until the process is stopped.
pub fn scheduler(options: SchedulerOptions) -> Result<(), String> {
    let token = token_or_random(options.token)?;
    runtime()?.block_on(async {
        let listener = tokio::net::TcpListener::bind((options.host.as_str(), options.port))
            .await
            .map_err(|e| format!("cannot listen on {}:{}: {e}", options.host, options.port))?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        let dashboard = match options.dashboard_port {
            Some(port) => Some(
                tokio::net::TcpListener::bind((options.host.as_str(), port))
                    .await
                    .map_err(|e| format!("cannot serve the dashboard on {}:{port}: {e}", options.host))?,
            ),
            None => None,
        };
        let dashboard_address = match &dashboard {
            Some(d) => Some(format!("http://{}/", d.local_addr().map_err(|e| e.to_string())?)),
            None => None,
        };
        let file =
            SchedulerFile { address: format!("tcp://{address}"), token: token.clone(), dashboard: dashboard_address };
        if let Some(path) = &options.scheduler_file {
            file.write(path)?;
        }
        println!("tessera scheduler listening on {}", file.address);
        if let Some(dashboard) = &file.dashboard {
            println!("dashboard: {dashboard}");
        }
        println!("token: {token}");
        let config = SchedulerConfig {
            token,
            cluster: ClusterConfig { worker_saturation: options.worker_saturation, ..ClusterConfig::default() },
        };
        tessera_scheduler::server::serve(listener, dashboard, config).await.map_err(|e| e.to_string())
    })
}

/// Runs a worker until the scheduler tells it to stop or goes away.
pub fn worker(options: WorkerOptions) -> Result<(), String> {
    let (address, file_token) = match (&options.scheduler, &options.scheduler_file) {
        (Some(address), _) => (address.clone(), None),
        (None, Some(path)) => {
            let file = SchedulerFile::read(path)?;
            (file.address, Some(file.token))
        }
        (None, None) => return Err("give the scheduler's address (--scheduler) or --scheduler-file".into()),
    };
    let token = options.token.or(file_token).or_else(|| std::env::var("TESSERA_TOKEN").ok()).unwrap_or_default();
    let nthreads = options.nthreads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let name = options.name.unwrap_or_else(|| format!("worker-{}", std::process::id()));
    let config = WorkerConfig {
        scheduler: address.strip_prefix("tcp://").unwrap_or(&address).to_string(),
        token,
        name,
        nthreads,
        memory_limit: options.memory_limit,
        listen_host: options.host,
    };
    runtime()?.block_on(tessera_worker::node::run(config)).map_err(|e| e.to_string())
}

/// Runs a scheduler in this process and `workers` worker processes on this machine,
/// until the process is stopped; the workers exit when the scheduler goes.
pub fn local_cluster(
    workers: usize,
    nthreads: usize,
    port: u16,
    scheduler_file: Option<PathBuf>,
) -> Result<(), String> {
    let token = token_or_random(None)?;
    let file_path = match scheduler_file {
        Some(path) => path,
        None => std::env::temp_dir().join(format!("tessera-local-cluster-{}.json", std::process::id())),
    };
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the tessera executable: {e}"))?;
    let scheduler_file = file_path.clone();
    let token_for_scheduler = token.clone();
    let scheduler = std::thread::spawn(move || {
        scheduler(SchedulerOptions {
            host: "127.0.0.1".into(),
            port,
            dashboard_port: Some(if port == 0 { 0 } else { port + 1 }),
            token: Some(token_for_scheduler),
            scheduler_file: Some(scheduler_file),
            worker_saturation: ClusterConfig::default().worker_saturation,
        })
    });
    while !file_path.exists() {
        if scheduler.is_finished() {
            return scheduler.join().unwrap_or_else(|_| Err("the scheduler panicked".into()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut children: Vec<Child> = Vec::new();
    for i in 0..workers {
        let child = Command::new(&exe)
            .args(["worker", "--scheduler-file"])
            .arg(&file_path)
            .args(["--nthreads", &nthreads.to_string(), "--name", &format!("local-{i}")])
            .spawn()
            .map_err(|e| format!("cannot start worker {i}: {e}"))?;
        children.push(child);
    }
    let result = scheduler.join().unwrap_or_else(|_| Err("the scheduler panicked".into()));
    for mut child in children {
        let _ = child.kill();
        let _ = child.wait();
    }
    result
}

/// Parses a byte count such as `4GiB`, `512MB` or `1000000`.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| format!("{text:?} does not start with a number"))?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        other => return Err(format!("unknown unit {other:?} in {text:?} (use B, kB, MB, GB, KiB, MiB, GiB…)")),
    };
    Ok((number * scale) as u64)
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn byte_counts_parse_with_units() {
        assert_eq!(parse_bytes("1000").unwrap(), 1000);
        assert_eq!(parse_bytes("4GiB").unwrap(), 4 << 30);
        assert_eq!(parse_bytes("1.5 kB").unwrap(), 1500);
        assert!(parse_bytes("12 parsecs").unwrap_err().contains("unknown unit"));
        assert!(parse_bytes("lots").unwrap_err().contains("does not start with a number"));
    }
}
