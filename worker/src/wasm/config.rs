//! [`WasmConfig`]: the limits every WASM task runs under, and where compiled
//! components are cached.

use std::path::PathBuf;
use std::time::Duration;

/// Limits and locations of a [`WasmRuntime`](super::WasmRuntime).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WasmConfig {
    /// The most linear memory one task may use, in bytes (default 2 GiB).
    pub memory_limit: usize,
    /// The longest one task may run (default 10 minutes).
    pub time_limit: Duration,
    /// The most bytes kept of each of a task's stdout and stderr (default 64 KiB);
    /// the rest is dropped and the output marked truncated.
    pub output_limit: usize,
    /// How many tasks may run at once (sizes the pooling allocator; default 4 per core).
    pub max_concurrent_tasks: u32,
    /// Where compiled components are kept between runs (`None`: compile every time).
    pub cache_dir: Option<PathBuf>,
}

impl Default for WasmConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        WasmConfig {
            memory_limit: 2 << 30,
            time_limit: Duration::from_secs(600),
            output_limit: 64 << 10,
            max_concurrent_tasks: u32::try_from(cores * 4).unwrap_or(u32::MAX).clamp(4, 256),
            cache_dir: default_cache_dir(),
        }
    }
}

/// `$TESSERA_WASM_CACHE`, else `$XDG_CACHE_HOME/tessera/wasm`, else
/// `~/.cache/tessera/wasm`.
fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("TESSERA_WASM_CACHE") {
        return Some(PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("tessera").join("wasm"))
}
