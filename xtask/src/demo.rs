//! `cargo xtask demo [ARGS…]`: `tessera demo ARGS…` from a release build of `tessera-cli`;
//! with `--wasm` it builds the example task components first.

use crate::util::{self, Result, cargo};

/// Builds and runs the demo, forwarding `args` unchanged.
pub fn run(args: &[String]) -> Result {
    if args.iter().any(|a| a == "--wasm") {
        let components = crate::tasks::run()?;
        let mut cmd = cargo(["run", "--release", "-p", "tessera-cli", "--", "demo", "--components"]);
        return util::run(cmd.arg(components).args(args));
    }
    util::run(cargo(["run", "--release", "-p", "tessera-cli", "--", "demo"]).args(args))
}
