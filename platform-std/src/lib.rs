//! The std adapter of `mls-nostd`: what a desktop, server or phone provides to
//! the heap-free core: OS randomness, a file store ([`FileStorage`]), an SQLite store
//! for many members and groups in one database (`SqliteDatabase`, feature
//! `sqlite`, on by default), groups
//! allocated on the heap and, with the `parallel` feature (on by default), a
//! rayon executor for the core's independent work items. The `fleet` feature
//! (on by default) adds the [`fleet`] simulation behind the `mls-fleet` binary.
#![deny(missing_docs)]

mod file_store;
#[cfg(feature = "fleet")]
pub mod fleet;
#[cfg(feature = "sqlite")]
mod sqlite_store;

pub use file_store::{FileStorage, Flush};
#[cfg(feature = "sqlite")]
pub use sqlite_store::{APPLICATION_ID, Durability, SqliteDatabase, SqliteError, SqliteOptions, SqliteStorage};
use rand_core::UnwrapErr;

/// The operating system's cryptographic RNG, in the form the core takes
/// (`rand_core::CryptoRng`). A failing OS RNG is unrecoverable on a host, so
/// it panics here, outside the core.
pub type OsRng = UnwrapErr<getrandom::SysRng>;

/// A handle to the OS RNG.
pub fn os_rng() -> OsRng {
    UnwrapErr(getrandom::SysRng)
}

/// Runs the core's independent work items on rayon's thread pool
/// (docs/architecture.md, decision 5). The core draws all randomness before a batch, so
/// the output is byte-identical to the sequential executor's.
#[cfg(feature = "parallel")]
#[derive(Clone, Copy, Debug, Default)]
pub struct RayonExecutor;

#[cfg(feature = "parallel")]
impl mls_nostd::executor::Executor for RayonExecutor {
    fn for_each_chunk(&self, buf: &mut [u8], chunk: usize, job: &(dyn Fn(usize, &mut [u8]) + Sync)) {
        use rayon::prelude::*;
        if chunk == 0 {
            return;
        }
        buf.par_chunks_exact_mut(chunk).enumerate().for_each(|(i, c)| job(i, c));
    }
}

/// A [`Group::EMPTY`](mls_nostd::group::Group::EMPTY) slot on the heap,
/// written straight into its allocation: large capacities (hundreds of
/// kilobytes per group) never pass through the stack.
pub fn boxed_group<const N: usize, const ARENA: usize, const K: usize, const P: usize>()
-> Box<mls_nostd::group::Group<N, ARENA, K, P>> {
    let mut slot = Box::<mls_nostd::group::Group<N, ARENA, K, P>>::new_uninit();
    // SAFETY: `write` initializes the whole value in place (the constant is
    // copied from its static image), so the box holds a valid group.
    unsafe {
        slot.as_mut_ptr().write(mls_nostd::group::Group::EMPTY);
        slot.assume_init()
    }
}
