//! User tasks as WebAssembly components: load a component once, then use its task
//! functions on arrays like built-in operations.
//!
//! `examples/wasm_mask.rs` maps a task of the `otsu` example component over blocks.
//!
//! A component is identified by the sha256 of its bytes; graphs carry only that hash
//! and the task name ([`Op::Wasm`]). Loading a module checks it and compiles it in the
//! embedded engine (`Client::local()`), where its tasks then run sandboxed: no files,
//! network or environment, with memory and time limits.

use crate::delayed::Delayed;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use tessera_core::op::WasmTask;
use tessera_core::{Error, Op, Result};

pub use tessera_worker::wasm::TaskInfo;

/// The bytes of every component loaded in this process, by sha256, for remote
/// clusters (which are sent a component before its first task).
static LOADED: Mutex<BTreeMap<String, Arc<Vec<u8>>>> = Mutex::new(BTreeMap::new());

/// The bytes of the component with this sha256, if loaded in this process.
pub(crate) fn loaded_bytes(sha256: &str) -> Option<Arc<Vec<u8>>> {
    LOADED.lock().unwrap_or_else(PoisonError::into_inner).get(sha256).cloned()
}

/// A loaded task component.
#[derive(Clone, Debug)]
pub struct Module {
    sha256: String,
    tasks: Vec<TaskInfo>,
}

impl Module {
    /// Checks and compiles the component in `bytes` (compiled once per process and
    /// cached on disk).
    pub fn from_bytes(bytes: &[u8]) -> Result<Module> {
        let module = tessera_worker::wasm::global()?.register(bytes)?;
        LOADED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(module.sha256().to_owned())
            .or_insert_with(|| Arc::new(bytes.to_vec()));
        Ok(Module { sha256: module.sha256().to_owned(), tasks: module.tasks().to_vec() })
    }

    /// [`Module::from_bytes`] of the file at `path`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Module> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::storage(path.display().to_string(), e))?;
        Module::from_bytes(&bytes)
    }

    /// The sha256 of the component's bytes, in hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The tasks the component provides.
    pub fn tasks(&self) -> &[TaskInfo] {
        &self.tasks
    }

    /// The task called `name`, or an error listing the tasks there are.
    pub fn task(&self, name: &str) -> Result<TaskFn> {
        if self.tasks.iter().any(|t| t.name == name) {
            return Ok(TaskFn { module: self.sha256.clone(), name: name.to_owned() });
        }
        let known: Vec<&str> = self.tasks.iter().map(|t| t.name.as_str()).collect();
        Err(Error::invalid(
            "wasm",
            format!("component {} has no task `{name}` (it has: {})", &self.sha256[..12], known.join(", ")),
        ))
    }
}

/// One task function of a [`Module`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskFn {
    module: String,
    name: String,
}

impl TaskFn {
    /// The task's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Records a call of the task on the values of `args` with `params` (Dask's
    /// `delayed(f)(*args)`); nothing runs until the result is computed.
    pub fn call(&self, params: &serde_json::Value, args: &[&Delayed]) -> Delayed {
        crate::delayed::apply(&self.name, self.op(params, false), args)
    }

    /// The graph op calling this task with `params`; `blockwise` when it maps one block
    /// to one block (so it may be fused with its inputs).
    pub fn op(&self, params: &serde_json::Value, blockwise: bool) -> Op {
        Op::Wasm(WasmTask {
            module: self.module.clone(),
            task: self.name.clone(),
            params: params.to_string(),
            blockwise,
            window: None,
        })
    }
}
