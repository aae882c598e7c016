//! `cargo xtask demo [ARGS…]`: `tessera demo ARGS…` from a release build of `tessera-cli`.

use crate::util::{self, Result, cargo};

/// Builds and runs the demo, forwarding `args` unchanged.
pub fn run(args: &[String]) -> Result {
    util::run(cargo(["run", "--release", "-p", "tessera-cli", "--", "demo"]).args(args))
}
