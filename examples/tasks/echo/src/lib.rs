//! The smallest task there is: it returns its input. Its component holds nothing
//! else, so it shows what one task costs the worker (a fresh instance, the copies in
//! and out, the call) and that every dtype crosses the boundary unchanged.

#![deny(unsafe_code)]

use tessera_guest::{AnyArrayBuf, task};

/// Returns its input unchanged.
#[task]
fn echo(block: AnyArrayBuf) -> AnyArrayBuf {
    block
}

tessera_guest::export_tasks!(echo);
