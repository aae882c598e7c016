//! The wasmtime [`Engine`] a worker shares between all its WASM tasks, and the ticker
//! thread that drives its epoch-based time limits.
//!
//! The engine uses the pooling instance allocator (memory slots are reserved once and
//! reused, so instantiating a task costs no `mmap`) sized by
//! [`WasmConfig::max_concurrent_tasks`], and epoch interruption: a thread increments
//! the epoch every [`tick`] and each store's deadline is the task's time limit in ticks.

use super::WasmConfig;
use std::time::Duration;
use tessera_core::{Error, Result};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Core instances, memories and tables one component may hold (a Rust guest with the
/// WASI adapter uses a handful of each).
const PER_COMPONENT: u32 = 16;

/// Bytes of a freed linear memory slot kept resident and reset in place (only the
/// pages a task touched, found with the kernel's `PAGEMAP_SCAN`), so the next task in
/// the slot takes no page faults there: a block task over a few chunks of a volume
/// touches tens of MiB, and faulting them in again cost a fifth of its time. Slots are
/// reused least-recently-used first (no other warm slots are kept), so at most one
/// such region per concurrently running task stays resident.
const MEMORY_KEEP_RESIDENT: usize = 128 << 20;

/// Bytes of a freed table kept resident and reset in place.
const TABLE_KEEP_RESIDENT: usize = 64 << 10;

/// The epoch period for a time limit: fine enough to stop within 5 % of the limit,
/// never faster than every millisecond nor slower than every 100 ms.
pub fn tick(time_limit: Duration) -> Duration {
    (time_limit / 20).clamp(Duration::from_millis(1), Duration::from_millis(100))
}

/// The shared engine and the period of its epoch ticker.
#[derive(Clone)]
pub struct WasmEngine {
    engine: Engine,
    tick: Duration,
}

impl WasmEngine {
    /// A new engine for `config`, with its epoch ticker running until the engine is
    /// dropped.
    pub fn new(config: &WasmConfig) -> Result<WasmEngine> {
        let engine = new_engine(config)?;
        let tick = tick(config.time_limit);
        spawn_ticker(&engine, tick)?;
        Ok(WasmEngine { engine, tick })
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// A store deadline (in epoch ticks) that passes after about `limit`.
    pub fn deadline_ticks(&self, limit: Duration) -> u64 {
        let ticks = limit.as_nanos().div_ceil(self.tick.as_nanos().max(1));
        u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
    }
}

fn new_engine(config: &WasmConfig) -> Result<Engine> {
    let n = config.max_concurrent_tasks.max(1);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(n)
        .total_core_instances(n.saturating_mul(PER_COMPONENT))
        .total_memories(n.saturating_mul(PER_COMPONENT))
        .total_tables(n.saturating_mul(PER_COMPONENT))
        .total_stacks(n)
        .max_core_instances_per_component(PER_COMPONENT)
        .max_memories_per_component(PER_COMPONENT)
        .max_tables_per_component(PER_COMPONENT)
        .max_memory_size(config.memory_limit)
        .max_unused_warm_slots(0);
    // Without PAGEMAP_SCAN (Linux before 6.7) keeping memory resident would `memset`
    // the whole kept region on every reuse, touched or not; decommitting is cheaper.
    if PoolingAllocationConfig::is_pagemap_scan_available() {
        pool.pagemap_scan(Enabled::Yes)
            .linear_memory_keep_resident(MEMORY_KEEP_RESIDENT)
            .table_keep_resident(TABLE_KEEP_RESIDENT);
    }
    let mut wasm = Config::new();
    wasm.wasm_component_model(true)
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&wasm).map_err(|e| Error::Engine(format!("cannot start the WASM engine: {e:#}")))
}

/// Increments `engine`'s epoch every `period` until the engine is dropped.
fn spawn_ticker(engine: &Engine, period: Duration) -> Result<()> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("tessera-wasm-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(period);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => return,
                }
            }
        })
        .map(drop)
        .map_err(|e| Error::Engine(format!("cannot start the WASM epoch thread: {e}")))
}
