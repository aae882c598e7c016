//! Helpers shared by the SDK's integration tests.

use tessera::{Client, Result};

/// A two-thread local client without a progress bar.
pub fn client() -> Result<Client> {
    Ok(Client::local_with(2, None)?.with_progress(false))
}

/// Deterministic pseudo-random numbers (xorshift64*), uniform in `[0, 1)`.
pub struct Rng(pub u64);

impl Rng {
    /// The next number.
    pub fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The value of `var`, which `cargo xtask test` sets to point tests at a service it
/// started or an artefact it built; `None` (the test skips, saying why) when it is
/// unset, unless `TESSERA_REQUIRE_TEST_SERVICES` is set.
#[allow(dead_code)] // not every test binary uses a service
pub fn service(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if std::env::var_os("TESSERA_REQUIRE_TEST_SERVICES").is_some() => {
            panic!("{var} is not set but TESSERA_REQUIRE_TEST_SERVICES is: run through `cargo xtask test`")
        }
        _ => {
            eprintln!("skipping: {var} is not set (run through `cargo xtask test`)");
            None
        }
    }
}
