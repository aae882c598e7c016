//! `tessera scheduler`, `tessera worker` and `tessera local-cluster`: the processes of a
//! distributed cluster.
//!
//! Every cluster has a shared-secret token. The scheduler takes it from `--token` or
//! `TESSERA_TOKEN`, or makes a random one; it prints its address and token, and writes
//! both to `--scheduler-file` (readable only by the user) so workers and clients on a
//! shared file system can join with the file alone.
//!
//! With `--tls-ca/--tls-cert/--tls-key` (or `TESSERA_TLS_CA/_CERT/_KEY`) the scheduler
//! listens at a `tls://` address and every connection is mutual TLS; workers then
//! serve their data over TLS too.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;
use tessera::{Credentials, TlsFiles};
use tessera_core::wire::transport::{Scheme, Tls};
use tessera_scheduler::server::{ClusterConfig, SchedulerConfig};
use tessera_worker::node::WorkerConfig;

/// How to reach a scheduler: what `--scheduler-file` holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SchedulerFile {
    /// `tcp://host:port` or `tls://host:port`.
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
        let text = serde_json::to_string_pretty(self).expect("a scheduler file serialises");
        crate::files::write_atomically(path, &text, 0o600)
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
    pub tls: TlsOptions,
}

/// A member's TLS identity (all three, or none for plain TCP).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct TlsOptions {
    /// The cluster's certificate authority, PEM (default: TESSERA_TLS_CA).
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// This member's certificate, PEM, signed by the CA (default: TESSERA_TLS_CERT).
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    /// This member's private key, PEM (default: TESSERA_TLS_KEY).
    #[arg(long)]
    tls_key: Option<PathBuf>,
}

impl TlsOptions {
    /// The identity's files: from the options, else the environment; `None` for none.
    fn files(&self) -> Result<Option<TlsFiles>, String> {
        match (&self.tls_ca, &self.tls_cert, &self.tls_key) {
            (Some(ca), Some(cert), Some(key)) => {
                Ok(Some(TlsFiles { ca: ca.clone(), cert: cert.clone(), key: key.clone() }))
            }
            (None, None, None) => TlsFiles::from_env().map_err(|e| e.to_string()),
            _ => Err("give all of --tls-ca, --tls-cert and --tls-key, or none of them".into()),
        }
    }

    /// The loaded identity, if any.
    fn load(&self) -> Result<Option<Tls>, String> {
        self.files()?.map(|files| Tls::load(&files).map_err(|e| e.to_string())).transpose()
    }
}

/// Where the scheduler is and the token it wants (`--scheduler` or `--scheduler-file`).
#[derive(clap::Args)]
pub struct SchedulerAddress {
    /// The scheduler's address (tcp://host:port or tls://host:port).
    #[arg(long)]
    scheduler: Option<String>,
    /// The cluster described by this file (address and token).
    #[arg(long)]
    scheduler_file: Option<PathBuf>,
    /// The cluster's token (default: from the scheduler file, else TESSERA_TOKEN).
    #[arg(long)]
    token: Option<String>,
    #[command(flatten)]
    tls: TlsOptions,
}

/// Options of `tessera worker`.
#[derive(clap::Args)]
pub struct WorkerOptions {
    #[command(flatten)]
    scheduler: SchedulerAddress,
    /// The worker's name (default: worker-PID).
    #[arg(long)]
    name: Option<String>,
    /// Task threads (default: one per core).
    #[arg(long)]
    nthreads: Option<usize>,
    /// Bytes of results to hold in memory, e.g. 4GiB.
    #[arg(long, value_parser = parse_bytes)]
    memory_limit: Option<u64>,
    /// Above this fraction of the memory limit, results spill to local disk.
    #[arg(long, default_value_t = 0.6, value_parser = fraction)]
    memory_target_fraction: f64,
    /// Above this fraction of the memory limit, the worker starts no new task.
    #[arg(long, default_value_t = 0.8, value_parser = fraction)]
    memory_pause_fraction: f64,
    /// Where spilled results are written (default: the temporary directory).
    #[arg(long)]
    local_directory: Option<PathBuf>,
    /// Abstract resources offered to tasks that need them: NAME=AMOUNT,… (GPU=2).
    #[arg(long, value_parser = parse_resources)]
    resources: Option<Resources>,
    /// The interface the data port listens on (default: the one that reaches the
    /// scheduler).
    #[arg(long)]
    host: Option<String>,
}

/// A worker's resources, `(name, amount)`.
#[derive(Clone, Debug)]
struct Resources(Vec<(String, f64)>);

/// Parses a fraction between 0 and 1 (a memory threshold).
fn fraction(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!("{text:?} is not a fraction between 0 and 1")),
    }
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

/// The I/O runtime of a scheduler or worker process: one thread. Their work per
/// message is small (tasks run on the worker's own threads), and a message handed
/// from one runtime thread to another costs more than it saves.
fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the I/O runtime: {e}"))
}

/// Runs a scheduler until the process is stopped.
pub fn scheduler(options: SchedulerOptions) -> Result<(), String> {
    let token = token_or_random(options.token)?;
    let tls = options.tls.load()?;
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
            Some(d) => {
                let scheme = if tls.is_some() { "https" } else { "http" };
                Some(format!("{scheme}://{}/", d.local_addr().map_err(|e| e.to_string())?))
            }
            None => None,
        };
        let file = SchedulerFile {
            address: Scheme::serving(tls.as_ref()).address(address),
            token: token.clone(),
            dashboard: dashboard_address,
        };
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
            tls,
            cluster: ClusterConfig { worker_saturation: options.worker_saturation, ..ClusterConfig::default() },
        };
        tessera_scheduler::server::serve(listener, dashboard, config).await.map_err(|e| e.to_string())
    })
}

/// The scheduler's address and what to present to it: the address from `--scheduler`,
/// else the scheduler file; the token from `--token`, else the file, else
/// `TESSERA_TOKEN`; the TLS identity from the options, else the environment.
fn resolve_scheduler(address: SchedulerAddress) -> Result<(String, Credentials), String> {
    let SchedulerAddress { scheduler, scheduler_file, token, tls } = address;
    let (address, file_token) = match (scheduler, scheduler_file) {
        (Some(address), _) => (address, None),
        (None, Some(path)) => {
            let file = SchedulerFile::read(&path)?;
            (file.address, Some(file.token))
        }
        (None, None) => return Err("give the scheduler's address (--scheduler) or --scheduler-file".into()),
    };
    let token = token.or(file_token).or_else(|| std::env::var("TESSERA_TOKEN").ok()).unwrap_or_default();
    Ok((address, Credentials { token, tls: tls.files()? }))
}

/// Stops every worker of a cluster, then its scheduler.
pub fn shutdown(address: SchedulerAddress) -> Result<(), String> {
    let (address, credentials) = resolve_scheduler(address)?;
    let client = tessera::Client::connect_with(&address, &credentials).map_err(|e| e.to_string())?;
    client.shutdown().map_err(|e| e.to_string())
}

/// Runs a worker until the scheduler tells it to stop or goes away.
pub fn worker(options: WorkerOptions) -> Result<(), String> {
    let (address, credentials) = resolve_scheduler(options.scheduler)?;
    let tls = credentials.tls.as_ref().map(Tls::load).transpose().map_err(|e| e.to_string())?;
    let nthreads = options.nthreads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let name = options.name.unwrap_or_else(|| format!("worker-{}", std::process::id()));
    let config = WorkerConfig {
        scheduler: address,
        token: credentials.token,
        tls,
        name,
        nthreads,
        memory_limit: options.memory_limit,
        memory_target_fraction: options.memory_target_fraction,
        memory_pause_fraction: options.memory_pause_fraction,
        local_directory: options.local_directory,
        resources: options.resources.map(|r| r.0).unwrap_or_default(),
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
            tls: TlsOptions::default(),
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

/// Parses `NAME=AMOUNT[,NAME=AMOUNT…]` (a worker's resources, e.g. `GPU=2,MEM=64e9`).
fn parse_resources(text: &str) -> Result<Resources, String> {
    text.split(',')
        .map(|item| {
            let (name, amount) =
                item.split_once('=').ok_or_else(|| format!("{item:?} is not NAME=AMOUNT (in --resources {text:?})"))?;
            let amount: f64 = amount.trim().parse().map_err(|_| format!("{amount:?} is not a number (in {item:?})"))?;
            if name.trim().is_empty() || !(amount >= 0.0 && amount.is_finite()) {
                return Err(format!("{item:?} needs a name and a non-negative amount"));
            }
            Ok((name.trim().to_string(), amount))
        })
        .collect::<Result<_, String>>()
        .map(Resources)
}

#[cfg(test)]
mod tests {
    use super::{parse_bytes, parse_resources};

    #[test]
    fn resources_parse_as_named_amounts() {
        assert_eq!(parse_resources("GPU=2, MEM=1e9").unwrap().0, [("GPU".to_string(), 2.0), ("MEM".to_string(), 1e9)]);
        assert!(parse_resources("GPU").unwrap_err().contains("NAME=AMOUNT"));
        assert!(parse_resources("GPU=lots").unwrap_err().contains("not a number"));
        assert!(parse_resources("GPU=-1").unwrap_err().contains("non-negative"));
    }

    #[test]
    fn byte_counts_parse_with_units() {
        assert_eq!(parse_bytes("1000").unwrap(), 1000);
        assert_eq!(parse_bytes("4GiB").unwrap(), 4 << 30);
        assert_eq!(parse_bytes("1.5 kB").unwrap(), 1500);
        assert!(parse_bytes("12 parsecs").unwrap_err().contains("unknown unit"));
        assert!(parse_bytes("lots").unwrap_err().contains("does not start with a number"));
    }
}
