//! The std adapter of `mls-nostd`: what a desktop, server or phone provides to
//! the heap-free core: OS randomness, a file store ([`FileStorage`]), an SQLite store
//! for many members and groups in one database (`SqliteDatabase`, feature
//! `sqlite`, on by default), groups
//! allocated on the heap and, with the `parallel` feature (on by default), a
//! rayon executor for the core's independent work items. The `fleet` feature
//! (on by default) adds the [`fleet`] simulation behind the `mls-fleet` binary.
#![deny(missing_docs)]

mod file_store;
mod os_lock;
#[cfg(feature = "fleet")]
pub mod fleet;
#[cfg(feature = "parallel")]
mod helpers;
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
        // No more chunks than threads: on the calling thread. Waking rayon's
        // sleeping threads costs more than it saves there (a join of 2
        // members, two leaf signatures: 271 us on rayon's 2 threads, 174 us
        // inline, on this project's 2-core machine).
        if buf.len() / chunk <= rayon::current_num_threads() {
            buf.chunks_exact_mut(chunk).enumerate().for_each(|(i, c)| job(i, c));
            return;
        }
        buf.par_chunks_exact_mut(chunk).enumerate().for_each(|(i, c)| job(i, c));
    }

    /// Batches of at most [`ED25519_BATCH`], each checked by
    /// `ed25519_dalek::verify_batch` (one multiscalar multiplication): fewer
    /// than [`ED25519_SPLIT`] signatures on the calling thread; more, shared
    /// over rayon's threads (a Commit of 15 Adds: 30 signatures, six
    /// batches of 5 on 2 threads); a share of at most [`ED25519_SINGLES`]
    /// one by one, without heap.
    fn verify_ed25519_batch(
        &self,
        count: usize,
        signatures: &mls_nostd::executor::Ed25519Batch<'_>,
    ) -> Option<bool> {
        use rayon::prelude::*;
        // A batch of one costs more than a single check: declined (the core
        // then checks it alone).
        if count < 2 {
            return None;
        }
        let size = ed25519_batch_size(count, rayon::current_num_threads(), false);
        let batches = count.div_ceil(size);
        let check = |b: usize| check_ed25519_batch(signatures, b * size..count.min((b + 1) * size));
        // Few signatures stay on the calling thread (one by one).
        if count < ED25519_SPLIT || batches == 1 {
            return Some((0..batches).all(check));
        }
        Some((0..batches).into_par_iter().all(check))
    }
}

/// Runs the core's independent work items on the calling thread and a
/// few helper threads (one fewer than the cores) that spin briefly for the
/// next items before they park: for short parallel steps, where waking a
/// parked thread costs as much as the step (a join of 16 members: 442 us
/// with [`RayonExecutor`], whose idle threads park at once). Output
/// byte-identical to the sequential executor's, as with rayon. A helper
/// that ran a step keeps a core busy for up to 2 ms after.
#[cfg(feature = "parallel")]
#[derive(Clone, Copy, Debug, Default)]
pub struct ThreadExecutor;

#[cfg(feature = "parallel")]
impl mls_nostd::executor::Executor for ThreadExecutor {
    fn for_each_chunk(
        &self,
        buf: &mut [u8],
        chunk: usize,
        job: &(dyn Fn(usize, &mut [u8]) + Sync),
    ) {
        if chunk == 0 {
            return;
        }
        let n = buf.len() / chunk;
        let base = SendPtr(buf.as_mut_ptr());
        helpers::run(n, &|i| {
            let base = &base;
            // SAFETY: `i < n`, so chunk `i` lies within `buf`; each `i` is
            // run once, so no two items see the same bytes; `buf` is
            // borrowed mutably until `run` returns.
            let c = unsafe { core::slice::from_raw_parts_mut(base.0.add(i * chunk), chunk) };
            job(i, c);
        });
    }

    /// As [`RayonExecutor`]'s (fewer than [`ED25519_SPLIT`] signatures on
    /// the calling thread, more shared over the threads), but shared from
    /// two signatures on while a helper spins: a join of 2 members checks
    /// its two leaf signatures one on each thread.
    fn verify_ed25519_batch(
        &self,
        count: usize,
        signatures: &mls_nostd::executor::Ed25519Batch<'_>,
    ) -> Option<bool> {
        if count < 2 {
            return None;
        }
        // A helper still spinning from the last step takes a share at once:
        // then even two signatures are split (one each, checked alone).
        let size = ed25519_batch_size(count, helpers::threads(), helpers::warm());
        let ok = std::sync::atomic::AtomicBool::new(true);
        helpers::run(count.div_ceil(size), &|b| {
            use std::sync::atomic::Ordering::Relaxed;
            if ok.load(Relaxed)
                && !check_ed25519_batch(signatures, b * size..count.min((b + 1) * size))
            {
                ok.store(false, Relaxed);
            }
        });
        Some(ok.into_inner())
    }

    /// Wakes parked helpers: they are awake when the parallel step comes.
    fn prepare(&self) {
        helpers::wake();
    }
}

/// The base of a buffer whose disjoint chunks the items of a task write.
#[cfg(feature = "parallel")]
struct SendPtr(*mut u8);

// SAFETY: each item writes its own chunk only (ThreadExecutor::for_each_chunk).
#[cfg(feature = "parallel")]
unsafe impl Sync for SendPtr {}

/// Signatures per batch for `count` on `threads` threads: fewer than
/// [`ED25519_SPLIT`] in one thread's share unless `split`, more (or with
/// `split`) shared over the threads. A share of at most
/// [`ED25519_SINGLES`] is checked one by one; up to
/// [`ED25519_STRAUS_BATCH`], in batches of at most [`ED25519_LEAN_BATCH`];
/// below Pippenger's method, of at most [`ED25519_STRAUS_BATCH`]; at most
/// [`ED25519_BATCH`] each.
#[cfg(feature = "parallel")]
fn ed25519_batch_size(count: usize, threads: usize, split: bool) -> usize {
    let threads = threads.max(1);
    let share = match count < ED25519_SPLIT && !split {
        true => count,
        false => count.div_ceil(threads),
    };
    if share <= ED25519_SINGLES {
        return 1;
    }
    // A batch of k multiplies 2k + 1 points: Pippenger's method from 190.
    // Below, batches of equal size, as many per thread.
    let cap = match share <= ED25519_STRAUS_BATCH {
        true => ED25519_LEAN_BATCH,
        false => ED25519_STRAUS_BATCH,
    };
    if 2 * share + 1 < 190 && share > cap {
        let batches = count.div_ceil(cap).next_multiple_of(threads);
        return count.div_ceil(batches).max(1);
    }
    share.clamp(1, ED25519_BATCH)
}

/// A thread's share of at most this many signatures is checked one by one,
/// without heap: Straus's method (below) keeps 1,280 bytes of tables per
/// point, 2k + 1 points for k signatures, in a vector that doubles as it
/// fills (a join of 16 members, two batches of 8 on 2 threads: 98 KiB of
/// heap, for 188 us of checks per thread where one by one takes 302 us).
#[cfg(feature = "parallel")]
pub const ED25519_SINGLES: usize = 8;

/// Most signatures per batch when a thread's share is at most
/// [`ED25519_STRAUS_BATCH`]: 15 points fill a table vector of 16 (one of 8
/// signatures would grow it to 32), about 38 KB per thread (a Commit of 15
/// Adds, 30 signatures: 121 KiB of heap in batches of 15, 70 KB in six of 5).
#[cfg(feature = "parallel")]
pub const ED25519_LEAN_BATCH: usize = 7;

/// Most signatures per batch below Pippenger's method: Straus's keeps a
/// 1,280-byte table per point in a vector that doubles as it fills, so a
/// batch of 64 (129 points) peaks at 492 KB and one of 15 (31 points) at
/// 61 KB (a join of 128 members: 783 KiB of heap on 2 threads with
/// batches of 64), for 3% more time per signature (the e. rows of the
/// README: a batch of 16 costs 20.7 us per signature, one of 64 20.2 us).
#[cfg(feature = "parallel")]
pub const ED25519_STRAUS_BATCH: usize = 15;

/// One `ed25519_dalek::verify_batch` of the signatures in `range` (false
/// if a key does not decode); a single one is checked alone as the core
/// would (RFC 8032 §5.1.7, no heap), a batch of one costing more.
#[cfg(feature = "parallel")]
fn check_ed25519_batch(
    signatures: &mls_nostd::executor::Ed25519Batch<'_>,
    range: core::ops::Range<usize>,
) -> bool {
    if range.len() == 1 {
        // A blank slot hands no signature: nothing to refuse.
        let mut ok = true;
        signatures(range, &mut |c| {
            ok = ed25519_dalek::VerifyingKey::from_bytes(c.public_key).is_ok_and(|key| {
                use ed25519_dalek::ed25519::signature::MultipartVerifier;
                key.multipart_verify(
                    c.message,
                    &ed25519_dalek::Signature::from_bytes(c.signature),
                )
                .is_ok()
            });
        });
        return ok;
    }
    let (mut messages, mut sigs, mut keys) = (Vec::new(), Vec::new(), Vec::new());
    let mut decoded = true;
    signatures(
        range,
        &mut |c| match ed25519_dalek::VerifyingKey::from_bytes(c.public_key) {
            Ok(key) => {
                keys.push(key);
                sigs.push(ed25519_dalek::Signature::from_bytes(c.signature));
                messages.push(c.message.concat());
            }
            Err(_) => decoded = false,
        },
    );
    let messages: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    decoded && ed25519_dalek::verify_batch(&messages, &sigs, &keys).is_ok()
}

/// Most signatures per batch of [`RayonExecutor`]'s Ed25519 checks: large
/// enough for the multiscalar multiplication's Pippenger method, small
/// enough that a join's batches spread over the cores.
#[cfg(feature = "parallel")]
pub const ED25519_BATCH: usize = 256;

/// Fewer signatures than this are checked by [`RayonExecutor`] (and by
/// [`ThreadExecutor`] while its helpers are parked) on the calling thread
/// (one by one, [`ED25519_SINGLES`]): waking rayon's threads (about 100 us on this
/// project's 2-core machine) costs more than the part another thread would
/// take (a join of 2 members: 187 us with its two leaf signatures checked
/// one by one, 175 us as one batch; a join of 16: 443 us in two batches on
/// rayon, 497 us in one batch inline).
#[cfg(feature = "parallel")]
pub const ED25519_SPLIT: usize = 8;

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

#[cfg(all(test, feature = "parallel"))]
mod tests {
    use super::*;

    /// Batch sizes on 2 threads: small counts stay whole unless a helper
    /// waits; a thread's share is cut to 15 below Pippenger's method (190
    /// points), to 256 above it.
    #[test]
    fn ed25519_batch_sizes() {
        let cases = [
            (2, false, 1),
            (2, true, 1),
            (7, false, 1),
            (7, true, 1),
            (16, false, 1),
            (18, false, 5),
            (30, false, 5),
            (32, false, 8),
            (128, false, 13),
            (150, false, 15),
            (190, false, 95),
            (1024, false, 256),
        ];
        for (count, split, want) in cases {
            assert_eq!(
                ed25519_batch_size(count, 2, split),
                want,
                "{count} signatures, split {split}"
            );
        }
    }
}
