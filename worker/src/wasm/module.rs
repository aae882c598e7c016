//! [`WasmModule`]: a component checked against the `tessera:task` world, compiled and
//! ready to instantiate.
//!
//! Loading rejects, before any task runs: bytes that are not WebAssembly, a core
//! module instead of a component, a component importing something other than WASI and
//! the contract's array builder,
//! and a component that does not export the world's `call` and `tasks`.

use super::bindings::tessera::task::types::{Context, ValueParam};
use super::bindings::{Task as TaskWorld, TaskPre};
use super::cache::{CompileCache, sha256_hex};
use super::engine::WasmEngine;
use super::result::TaskValue;
use super::sandbox::TaskState;
use tessera_core::{Error, Result};
use wasmtime::Store;
use wasmtime::component::{Component, ComponentExportIndex, Linker};

/// One task function a component provides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskInfo {
    /// The name to call it by.
    pub name: String,
    /// What it does, for people.
    pub doc: String,
    /// Its arguments and result as the author declared them.
    pub signature: String,
}

/// A loaded component: its hash, its compiled code pre-linked against WASI, and the
/// tasks it exports.
pub struct WasmModule {
    sha256: String,
    pre: TaskPre<TaskState>,
    /// The world's `call` export.
    call: ComponentExportIndex,
    tasks: Vec<TaskInfo>,
}

/// The WebAssembly binary header: magic, then a version/layer word.
const MAGIC: &[u8; 4] = b"\0asm";
const CORE_VERSION: [u8; 4] = [1, 0, 0, 0];
const COMPONENT_VERSION: [u8; 4] = [0x0d, 0, 1, 0];

/// Refuses anything but a component binary, saying what the bytes are instead.
fn check_header(bytes: &[u8]) -> Result<()> {
    let invalid = |m: String| Err(Error::invalid("wasm module", m));
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        return invalid(format!("{} bytes that are not WebAssembly (no \\0asm header)", bytes.len()));
    }
    match <[u8; 4]>::try_from(&bytes[4..8]).expect("4 bytes") {
        COMPONENT_VERSION => Ok(()),
        CORE_VERSION => invalid(
            "a core WebAssembly module, not a component; build task crates with `cargo xtask build-tasks` \
             (or wrap the module with `wasm-tools component new --adapt` and a WASI preview 1 adapter)"
                .into(),
        ),
        other => invalid(format!("a WebAssembly binary of unknown version {other:?}")),
    }
}

impl WasmModule {
    /// Compiles (or loads from `cache`) the component in `bytes`, links it against
    /// `linker` and lists its tasks.
    pub fn load(
        wasm: &WasmEngine,
        linker: &Linker<TaskState>,
        cache: Option<&CompileCache>,
        bytes: &[u8],
    ) -> Result<WasmModule> {
        check_header(bytes)?;
        let engine = wasm.engine();
        let sha256 = sha256_hex(bytes);
        let invalid = |m: String| Error::invalid("wasm module", format!("component {}: {m}", &sha256[..12]));
        let component = match cache.and_then(|c| c.load(engine, &sha256)) {
            Some(component) => component,
            None => {
                let component =
                    Component::new(engine, bytes).map_err(|e| invalid(format!("cannot compile it: {e:#}")))?;
                if let Some(cache) = cache {
                    // A cache that cannot be written only costs a recompilation later.
                    let _ = cache.store(&sha256, &component);
                }
                component
            }
        };
        let instance_pre = linker
            .instantiate_pre(&component)
            .map_err(|e| invalid(format!("it imports something a task may not use (only WASI and the contract's array builder are provided): {e:#}")))?;
        let pre = TaskPre::new(instance_pre).map_err(|e| {
            invalid(format!("it is not a task component: it does not export the tessera:task world ({e:#})"))
        })?;
        let call = component.get_export_index(None, "call").expect("`TaskPre::new` found the `call` export");
        let tasks = list_tasks(wasm, &pre).map_err(|e| invalid(format!("listing its tasks failed: {e:#}")))?;
        Ok(WasmModule { sha256, pre, call, tasks })
    }

    /// The sha256 of the component's bytes, in hex: the module's identity.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The tasks the component exports, in its order.
    pub fn tasks(&self) -> &[TaskInfo] {
        &self.tasks
    }

    /// Instantiates the component in `store` and calls task `name` on `args` with
    /// `params` in context `ctx`: the task's value or its error message, or why the
    /// call trapped.
    pub(super) fn call(
        &self,
        store: &mut Store<TaskState>,
        name: &str,
        args: &[ValueParam<'_>],
        params: &str,
        ctx: Context<'_>,
    ) -> wasmtime::Result<std::result::Result<TaskValue, String>> {
        let instance = self.pre.instance_pre().instantiate(&mut *store)?;
        let call = instance.get_typed_func::<_, (std::result::Result<TaskValue, String>,)>(&mut *store, &self.call)?;
        let (result,) = call.call(store, (name, args, params, ctx))?;
        Ok(result)
    }
}

/// Calls the component's `tasks` export in a throwaway sandbox (one second, 64 MiB).
fn list_tasks(wasm: &WasmEngine, pre: &TaskPre<TaskState>) -> wasmtime::Result<Vec<TaskInfo>> {
    let mut store = Store::new(wasm.engine(), TaskState::new(64 << 20, 4096, 0));
    store.limiter(|s| &mut s.memory);
    store.set_epoch_deadline(wasm.deadline_ticks(std::time::Duration::from_secs(1)));
    let world: TaskWorld = pre.instantiate(&mut store)?;
    let infos = world.call_tasks(&mut store)?;
    Ok(infos.into_iter().map(|t| TaskInfo { name: t.name, doc: t.doc, signature: t.signature }).collect())
}
