//! User tasks as sandboxed WebAssembly components (the `tessera:task` world of
//! `core/wit/tessera.wit`).
//!
//! What the sandbox guarantees: a task sees only its arguments, its parameters and its
//! [context](crate::wasm::convert) — no preopened directories, no sockets, no name
//! lookup, no environment variables or arguments. Its memory is capped (2 GiB by
//! default) and its run time is limited by epoch interruption (10 minutes by default);
//! hitting either fails that task with a "memory limit" or "time limit" error and the
//! worker goes on with the next one. Its stdout and stderr are captured up to a size
//! cap. Its random numbers are seeded from the task key, so a rerun sees the same ones.
//!
//! What it costs: a component is compiled once per worker (and cached on disk, keyed by
//! the sha256 of its bytes and the engine's configuration); each task then gets a fresh
//! `Store` and instance from a cached `InstancePre` (about ten microseconds). An array
//! argument is copied into the guest's memory straight from its chunk (a chunk not
//! contiguous in C order is first laid out as bytes); the guest library reads it in
//! place (`tessera_guest::ArrayBuf`) or copies it into a typed array. A result is laid
//! out as bytes by the guest (at no cost when built in an `ArrayBuf`) and copied by the
//! host out of the guest's memory straight into the chunk's elements; or the guest
//! writes it part by part to an array builder ([`builder`]), each part copied into the
//! chunk as it comes, so the whole result never sits in the guest's memory. A task mapped
//! over blocks with a halo is told its block's window in its context: it may return
//! just that, or the whole extended block, which is copied out and then cut to the
//! window.
//!
//! - [`config`]: [`WasmConfig`], the limits and the cache directory;
//! - [`engine`]: the shared wasmtime engine with its epoch ticker;
//! - [`builder`]: the contract's `array-builder`, an array result a task writes part by
//!   part;
//! - [`cache`]: the on-disk cache of compiled components;
//! - [`module`]: [`WasmModule`], a loaded and checked component;
//! - [`sandbox`]: the per-task store (WASI context, limits, captured output);
//! - [`convert`]: Tessera values to and from the WIT values;
//! - [`result`]: a task's result, lifted with its array copied once into a chunk;
//! - [`registry`]: [`WasmRuntime`], modules registered by hash, which runs tasks.

pub mod builder;
pub mod cache;
pub mod config;
pub mod convert;
pub mod engine;
pub mod module;
pub mod registry;
pub mod result;
pub mod sandbox;

/// The host side of the `tessera:task` world, generated from the WIT contract.
mod bindings {
    wasmtime::component::bindgen!({
        path: "../core/wit",
        world: "tessera:task/task",
        // Arguments are lowered straight from the caller's buffers (no copy on the host).
        ownership: Borrowing { duplicate_if_necessary: true },
        // The host type of the contract's array builder (linked by hand, see `builder`).
        with: { "tessera:task/types.array-builder": super::builder::ArrayBuilder },
    });
}

pub use config::WasmConfig;
pub use module::{TaskInfo, WasmModule};
pub use registry::{TaskRun, WasmRuntime, global, install_global};
pub use sandbox::CapturedOutput;
