//! The device's random number generator: SplitMix64 from a fixed seed, behind
//! the `rand_core` 0.10 traits the core asks for.
//!
//! QEMU's emulated boards have no usable true RNG (mps2-an386 and RISC-V
//! `virt` have none; the micro:bit model's RNG draws from the host and is not
//! reproducible), and the build-time simulation must draw exactly the bytes
//! the firmware will draw to predict its KeyPackage, Commit and messages
//! byte for byte. So the firmware uses this seeded generator.
//!
//! NOT a cryptographic RNG: its output is predictable by design. A product
//! puts its TRNG (for instance the nRF52840's RNG peripheral, or a DRBG
//! seeded from it) behind the same traits; nothing else changes.

use core::convert::Infallible;
use rand_core::{TryCryptoRng, TryRng};

/// SplitMix64 (Steele, Lea, Flood 2014) from a seed.
#[derive(Clone, Debug)]
pub struct SeededRng(u64);

impl SeededRng {
    /// A generator whose whole output is determined by `seed`.
    pub const fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The generator's state: `new(state)` continues where this one is.
    pub const fn state(&self) -> u64 {
        self.0
    }
}

impl TryRng for SeededRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok((self.try_next_u64()? >> 32) as u32)
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Ok(z ^ (z >> 31))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(8) {
            let word = self.try_next_u64()?.to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        Ok(())
    }
}

/// Marker only: lets the core's `CryptoRng`-bound APIs take it (see above:
/// it is not one).
impl TryCryptoRng for SeededRng {}
