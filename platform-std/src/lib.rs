//! The std adapter of `mls-nostd`: what a desktop, server or phone provides to
//! the heap-free core. For now, OS randomness.
#![deny(missing_docs)]

use rand_core::UnwrapErr;

/// The operating system's cryptographic RNG, in the form the core takes
/// (`rand_core::CryptoRng`). A failing OS RNG is unrecoverable on a host, so
/// it panics here, outside the core.
pub type OsRng = UnwrapErr<getrandom::SysRng>;

/// A handle to the OS RNG.
pub fn os_rng() -> OsRng {
    UnwrapErr(getrandom::SysRng)
}
