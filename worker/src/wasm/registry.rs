//! [`WasmRuntime`]: the modules a worker knows, registered by the sha256 of their
//! bytes, and the one place WASM tasks run.
//!
//! A process has one runtime for `Op::Wasm` tasks ([`global`], configured once with
//! [`install_global`] or else with [`WasmConfig::default`]); tests and tools may make
//! their own.

use super::WasmConfig;
use super::builder;
use super::cache::{CompileCache, sha256_hex};
use super::convert::{StagedArg, context_of, spans, value_from_wit};
use super::engine::WasmEngine;
use super::module::{TaskInfo, WasmModule};
use super::sandbox::{CapturedOutput, TaskState};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use tessera_core::op::WasmTask;
use tessera_core::{Error, Key, Result, Value};
use wasmtime::component::Linker;
use wasmtime::{Store, Trap};

/// The result of one WASM task and what it printed.
#[derive(Debug)]
pub struct TaskRun {
    /// The task's value, or why it failed.
    pub result: Result<Value>,
    /// Its stdout and stderr, each cut at the configured limit.
    pub output: CapturedOutput,
}

/// A wasmtime engine with its linker, compile cache and registered modules.
pub struct WasmRuntime {
    config: WasmConfig,
    engine: WasmEngine,
    linker: Linker<TaskState>,
    cache: Option<CompileCache>,
    modules: RwLock<HashMap<String, Arc<WasmModule>>>,
    /// Serialises compilation so a component is compiled once even when several
    /// threads register it at the same time.
    compiling: Mutex<()>,
}

impl WasmRuntime {
    /// A runtime with `config`'s limits. A cache directory that cannot be used is
    /// an error (so a misconfigured worker says so rather than recompiling silently).
    pub fn new(config: WasmConfig) -> Result<WasmRuntime> {
        let engine = WasmEngine::new(&config)?;
        let mut linker = Linker::new(engine.engine());
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| Error::Engine(format!("cannot provide WASI to tasks: {e:#}")))?;
        builder::add_to_linker(&mut linker)?;
        let cache = config.cache_dir.as_deref().map(|dir| CompileCache::open(dir, engine.engine())).transpose()?;
        Ok(WasmRuntime {
            config,
            engine,
            linker,
            cache,
            modules: RwLock::new(HashMap::new()),
            compiling: Mutex::new(()),
        })
    }

    /// The limits tasks run under.
    pub fn config(&self) -> &WasmConfig {
        &self.config
    }

    /// Checks, compiles and registers the component in `bytes` (a no-op returning the
    /// known module when the same bytes were registered before).
    pub fn register(&self, bytes: &[u8]) -> Result<Arc<WasmModule>> {
        let sha = sha256_hex(bytes);
        if let Some(m) = self.module(&sha) {
            return Ok(m);
        }
        let _one_at_a_time = self.compiling.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(m) = self.module(&sha) {
            return Ok(m);
        }
        let module = Arc::new(WasmModule::load(&self.engine, &self.linker, self.cache.as_ref(), bytes)?);
        self.modules.write().unwrap_or_else(PoisonError::into_inner).insert(sha, module.clone());
        Ok(module)
    }

    /// The registered module whose bytes hash to `sha256` (hex).
    pub fn module(&self, sha256: &str) -> Option<Arc<WasmModule>> {
        self.modules.read().unwrap_or_else(PoisonError::into_inner).get(sha256).cloned()
    }

    /// The tasks of registered module `sha256`.
    pub fn tasks(&self, sha256: &str) -> Result<Vec<TaskInfo>> {
        Ok(self.registered(sha256)?.tasks().to_vec())
    }

    fn registered(&self, sha256: &str) -> Result<Arc<WasmModule>> {
        self.module(sha256).ok_or_else(|| {
            Error::invalid("wasm", format!("WASM module {sha256} is not registered on this worker; register it first"))
        })
    }

    /// Runs `op` as task `key` on `args` in a fresh sandbox.
    pub fn run(&self, op: &WasmTask, key: &Key, args: &[&Value]) -> TaskRun {
        let module = match self.registered(&op.module) {
            Ok(m) => m,
            Err(e) => return TaskRun { result: Err(e), output: CapturedOutput::default() },
        };
        let staged = match args.iter().map(|v| StagedArg::new(v)).collect::<Result<Vec<_>>>() {
            Ok(a) => a,
            Err(e) => return TaskRun { result: Err(e), output: CapturedOutput::default() },
        };
        let wit_args: Vec<_> = staged.iter().map(StagedArg::to_wit).collect();
        let key_text = key.to_string();
        let window = spans(op.window.as_deref());
        let ctx = context_of(key, &key_text, &window);
        let mut store = Store::new(
            self.engine.engine(),
            TaskState::new(self.config.memory_limit, self.config.output_limit, ctx.seed),
        );
        store.limiter(|s| &mut s.memory);
        store.set_epoch_deadline(self.engine.deadline_ticks(self.config.time_limit));
        let params = if op.params.is_empty() { "null" } else { op.params.as_str() };
        let called = module.call(&mut store, &op.task, &wit_args, params, ctx);
        let output = store.data().take_output();
        let failed = |message: String| Error::TaskFailed { key: key.to_string(), message };
        let result = match called {
            Ok(Ok(value)) => value_from_wit(value, store.data_mut(), op.window.as_deref())
                .map_err(|e| failed(format!("WASM task `{}`: {e}", op.task))),
            Ok(Err(message)) => Err(failed(message)),
            Err(err) => Err(failed(self.describe_trap(&op.task, &err, store.data(), &output))),
        };
        TaskRun { result, output }
    }

    /// A message for a task that trapped: a memory or time limit, or the guest's own
    /// failure with what it wrote to stderr (a Rust panic's message lands there).
    fn describe_trap(&self, task: &str, err: &wasmtime::Error, state: &TaskState, output: &CapturedOutput) -> String {
        if let Some(asked) = state.memory.refused {
            return format!(
                "WASM task `{task}` hit its memory limit: it asked for {asked} bytes of memory, more than the \
                 limit of {} bytes",
                self.config.memory_limit
            );
        }
        if err.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            return format!(
                "WASM task `{task}` hit its time limit: it ran longer than {:?} and was stopped",
                self.config.time_limit
            );
        }
        let stderr = output.stderr.trim();
        if stderr.is_empty() {
            format!("WASM task `{task}` trapped: {err:#}")
        } else {
            format!("WASM task `{task}` trapped: {err:#}\nguest stderr:\n{stderr}")
        }
    }
}

static GLOBAL: OnceLock<WasmRuntime> = OnceLock::new();

/// Sets up the process's runtime with `config`; fails if it already exists.
pub fn install_global(config: WasmConfig) -> Result<&'static WasmRuntime> {
    let runtime = WasmRuntime::new(config)?;
    GLOBAL.set(runtime).map_err(|_| Error::Engine("the WASM runtime was already set up".into()))?;
    global()
}

/// The process's runtime (created with [`WasmConfig::default`] on first use).
pub fn global() -> Result<&'static WasmRuntime> {
    if let Some(runtime) = GLOBAL.get() {
        return Ok(runtime);
    }
    // Two threads may both get here; the loser's runtime is dropped unused.
    let runtime = WasmRuntime::new(WasmConfig::default())?;
    Ok(GLOBAL.get_or_init(|| runtime))
}
