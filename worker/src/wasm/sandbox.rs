//! The per-task sandbox: a fresh wasmtime store holding the task's WASI context (no
//! files, sockets, name lookup or environment), its memory limiter, its captured
//! stdout and stderr, random number generators seeded from the task key, and the
//! arrays it is writing through array builders (counted against its memory limit).

use rand::SeedableRng;
use rand::rngs::StdRng;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context as PollContext, Poll};
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// What a task wrote to stdout and stderr, each cut at the output limit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CapturedOutput {
    /// The first bytes written to stdout (lossily decoded as UTF-8).
    pub stdout: String,
    /// The first bytes written to stderr (lossily decoded as UTF-8).
    pub stderr: String,
    /// True when either stream wrote more than the limit and the rest was dropped.
    pub truncated: bool,
}

impl CapturedOutput {
    /// Appends the non-empty streams to a task log, each under a header line.
    pub fn append_to(&self, log: &mut String) {
        for (name, text) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            if !text.is_empty() {
                log.push_str(&format!("--- {name} ---\n{text}"));
                if !text.ends_with('\n') {
                    log.push('\n');
                }
            }
        }
        if self.truncated {
            log.push_str("--- output truncated at the task's output limit ---\n");
        }
    }
}

/// A byte buffer that keeps the first `limit` bytes written to it and counts the rest.
#[derive(Clone)]
struct CappedBuffer {
    inner: Arc<Mutex<(Vec<u8>, bool)>>,
    limit: usize,
}

impl CappedBuffer {
    fn new(limit: usize) -> Self {
        CappedBuffer { inner: Arc::new(Mutex::new((Vec::new(), false))), limit }
    }

    fn append(&self, bytes: &[u8]) {
        let mut guard = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let (buf, truncated) = &mut *guard;
        let room = self.limit.saturating_sub(buf.len());
        buf.extend_from_slice(&bytes[..room.min(bytes.len())]);
        *truncated |= bytes.len() > room;
    }

    fn take(&self) -> (String, bool) {
        let mut guard = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let (buf, truncated) = std::mem::take(&mut *guard);
        (String::from_utf8_lossy(&buf).into_owned(), truncated)
    }
}

impl IsTerminal for CappedBuffer {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedBuffer {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CappedBuffer {
    async fn ready(&mut self) {}
}

impl OutputStream for CappedBuffer {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Always writable: output past the limit is dropped, never an error, so a
        // chatty task is not failed by its logging.
        Ok(64 << 10)
    }
}

impl tokio::io::AsyncWrite for CappedBuffer {
    fn poll_write(self: Pin<&mut Self>, _: &mut PollContext<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut PollContext<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut PollContext<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Refuses memory growth past a cap and remembers that it did.
pub struct MemoryCap {
    limit: usize,
    /// The size a refused growth asked for, if any.
    pub refused: Option<usize>,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.refused = Some(desired);
            return Err(wasmtime::format_err!("memory limit of {} bytes exceeded", self.limit));
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        // Tables hold function references; a million of them is far beyond any real
        // task and keeps a runaway table from eating the memory cap's worth of host RAM.
        Ok(desired <= 1 << 20)
    }
}

/// Array builders one task may create (a task returns one array; a few more may serve
/// as scratch).
pub const MAX_BUILDERS: usize = 1024;

/// Everything one task's store holds.
pub struct TaskState {
    wasi: WasiCtx,
    table: ResourceTable,
    /// The task's memory limiter.
    pub memory: MemoryCap,
    /// Bytes the task's array builders hold together.
    built: usize,
    /// Array builders the task has created.
    builders: usize,
    stdout: CappedBuffer,
    stderr: CappedBuffer,
}

impl TaskState {
    /// A sandbox with `memory_limit` bytes of memory, output kept up to `output_limit`
    /// bytes per stream, and randomness derived from `seed`.
    pub fn new(memory_limit: usize, output_limit: usize, seed: u64) -> TaskState {
        let (stdout, stderr) = (CappedBuffer::new(output_limit), CappedBuffer::new(output_limit));
        let mut builder = WasiCtxBuilder::new();
        // No preopened directories, environment or arguments are ever added; the
        // network is switched off explicitly rather than relying on defaults.
        builder
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .secure_random(StdRng::seed_from_u64(seed))
            .insecure_random(StdRng::seed_from_u64(seed ^ 0x5eed))
            .insecure_random_seed(u128::from(seed) << 64 | u128::from(!seed));
        TaskState {
            wasi: builder.build(),
            table: ResourceTable::new(),
            memory: MemoryCap { limit: memory_limit, refused: None },
            built: 0,
            builders: 0,
            stdout,
            stderr,
        }
    }

    /// The table of the task's resources (WASI's and its array builders).
    pub fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    /// Counts a new array builder of `bytes`; an error when the task already created
    /// [`MAX_BUILDERS`] (each costs the host a little memory, even empty), or when all
    /// of them together would exceed the task's memory limit.
    pub fn reserve_built(&mut self, bytes: usize) -> tessera_core::Result<()> {
        if self.builders == MAX_BUILDERS {
            return Err(tessera_core::Error::invalid(
                "array-builder",
                format!("a task may create at most {MAX_BUILDERS} array builders"),
            ));
        }
        let total = self.built.saturating_add(bytes);
        if total > self.memory.limit {
            return Err(tessera_core::Error::invalid(
                "array-builder",
                format!(
                    "an array of {bytes} bytes would take the task's arrays to {total} bytes, more than its memory \
                     limit of {} bytes",
                    self.memory.limit
                ),
            ));
        }
        self.built = total;
        self.builders += 1;
        Ok(())
    }

    /// What the task wrote so far (the buffers are emptied).
    pub fn take_output(&self) -> CapturedOutput {
        let (stdout, t1) = self.stdout.take();
        let (stderr, t2) = self.stderr.take();
        CapturedOutput { stdout, stderr, truncated: t1 || t2 }
    }
}

impl WasiView for TaskState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}
