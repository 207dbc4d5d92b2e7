//! The executor trait (docs/architecture.md, decision 5): independent, expensive work
//! items (HPKE seals to the copath resolutions of an UpdatePath, GroupSecrets
//! for each new member, leaf signature checks) run through it. The default
//! runs them in order; `platform-std` runs them on rayon. Callers draw all
//! randomness before a batch, so the output does not depend on the executor.

/// Runs independent work items, possibly in parallel (docs/architecture.md, decision 5).
pub trait Executor {
    /// Calls `job(i, chunk_i)` for each of the `buf.len() / chunk` chunks of
    /// `buf`, in any order and on any thread.
    fn for_each_chunk(&self, buf: &mut [u8], chunk: usize, job: &(dyn Fn(usize, &mut [u8]) + Sync));
}

/// Runs the items one after the other on the calling thread.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sequential;

impl Executor for Sequential {
    fn for_each_chunk(&self, buf: &mut [u8], chunk: usize, job: &(dyn Fn(usize, &mut [u8]) + Sync)) {
        if chunk == 0 {
            return;
        }
        for (i, c) in buf.chunks_exact_mut(chunk).enumerate() {
            job(i, c);
        }
    }
}

