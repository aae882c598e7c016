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
