//! A throwaway S3-protocol server for the test run: `s3s-fs` on a free loopback port,
//! serving a fresh temporary directory that holds the empty bucket [`BUCKET`].
//!
//! Dropping the [`S3Server`] stops the server and deletes its data.

use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{self, Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::util::{Result, display};

/// The bucket that exists when the tests start.
pub const BUCKET: &str = "tessera-test";
const ACCESS_KEY: &str = "tessera-test-access";
const SECRET_KEY: &str = "tessera-test-secret";
const REGION: &str = "us-east-1";
/// How long the server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// A port picked by binding port 0 may be taken by another process before the server
/// binds it, so start-up is tried this many times, each on a new port.
const START_ATTEMPTS: u32 = 3;

/// A running `s3s-fs`; stopped (and its data deleted) on drop.
pub struct S3Server {
    child: Child,
    port: u16,
    // Dropped after `Drop::drop` has stopped the server.
    _root: TempDir,
}

impl S3Server {
    /// Starts `binary` (an `s3s-fs` executable), writing its output to `log`, and waits
    /// until it accepts connections.
    pub fn start(binary: &Path, log: &Path) -> Result<Self> {
        let root = TempDir::create("tessera-s3")?;
        let bucket = root.0.join(BUCKET);
        fs::create_dir(&bucket).map_err(|err| format!("cannot create {}: {err}", bucket.display()))?;
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            let mut child = spawn(binary, port, &root.0, log)?;
            match wait_until_listening(&mut child, port) {
                Ok(()) => {
                    eprintln!("s3s-fs is serving {} on 127.0.0.1:{port} (log: {})", root.0.display(), log.display());
                    return Ok(Self { child, port, _root: root });
                }
                Err(failure) => {
                    // Best effort: the child may already have exited.
                    let _ = child.kill();
                    let _ = child.wait();
                    failures.push(failure);
                }
            }
        }
        let log_text = fs::read_to_string(log).unwrap_or_default();
        Err(format!("s3s-fs did not start: {}\ns3s-fs output:\n{log_text}", failures.join("; ")))
    }

    /// The variables `object_store`'s `AmazonS3Builder::from_env` reads to reach this
    /// server, plus `TESSERA_TEST_S3_BUCKET`.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_owned()),
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_ENDPOINT", format!("http://127.0.0.1:{}", self.port)),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
            ("TESSERA_TEST_S3_BUCKET", BUCKET.to_owned()),
        ]
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        // Best effort: there is nothing more to do if the server is already gone.
        let _ = self.child.kill();
        let _ = self.child.wait();
        eprintln!("stopped s3s-fs on 127.0.0.1:{}", self.port);
    }
}

fn spawn(binary: &Path, port: u16, root: &Path, log: &Path) -> Result<Child> {
    let log_file = File::create(log).map_err(|err| format!("cannot create {}: {err}", log.display()))?;
    let log_file2 = log_file.try_clone().map_err(|err| format!("cannot reopen {}: {err}", log.display()))?;
    let mut cmd = Command::new(binary);
    cmd.args([
        "--host",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--access-key",
        ACCESS_KEY,
        "--secret-key",
        SECRET_KEY,
    ])
    .arg(root)
    .stdin(Stdio::null())
    .stdout(log_file)
    .stderr(log_file2);
    eprintln!("$ {} &", display(&cmd));
    cmd.spawn().map_err(|err| format!("could not start `{}`: {err}", display(&cmd)))
}

/// A loopback port that was free a moment ago.
fn free_port() -> Result<u16> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|err| format!("cannot bind a loopback port: {err}"))?;
    listener.local_addr().map(|addr| addr.port()).map_err(|err| format!("cannot read the bound port: {err}"))
}

fn wait_until_listening(child: &mut Child, port: u16) -> Result {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().map_err(|err| format!("cannot poll s3s-fs: {err}"))? {
            return Err(format!("it exited during start-up on port {port} ({status})"));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(250)).is_ok() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("it did not accept connections on {addr} within {}s", START_TIMEOUT.as_secs()));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// A new directory under the system temp dir, deleted with everything in it on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn create(prefix: &str) -> Result<Self> {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
        let path = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", process::id()));
        fs::create_dir(&path).map_err(|err| format!("cannot create {}: {err}", path.display()))?;
        Ok(Self(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Best effort: a leftover directory in the temp dir is harmless.
        let _ = fs::remove_dir_all(&self.0);
    }
}
