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

    /// Checks many Ed25519 signatures at once (batch verification, about
    /// twice as fast per signature on a host; it needs a heap, so the core
    /// cannot do it). The signatures fill slots `0..count`: `signatures(r,
    /// sink)` hands `sink` those of the slots in range `r`, in order (none
    /// for an empty slot: a blank leaf). `Some(true)` if every one
    /// verifies, `Some(false)` if one does not (the caller then checks them
    /// one by one to name it), `None` if this executor does not batch (the
    /// default: the caller checks them one by one).
    ///
    /// The core hands over only encodings its single check accepts (a
    /// canonical public key, RFC 8032 §5.1.7). A batch check is the
    /// cofactorless equation of RFC 8032 §5.1.7 summed with random weights:
    /// it accepts what the single check accepts, and may accept a signature
    /// whose error is a small-order point, which only its key's holder can
    /// make (`crypto::signature`: where the core uses it and why that is safe).
    fn verify_ed25519_batch(&self, count: usize, signatures: &Ed25519Batch<'_>) -> Option<bool> {
        let _ = (count, signatures);
        None
    }

    /// A hint: parallel items follow shortly (a join checks its leaf
    /// signatures after an HPKE open and the GroupInfo's signature, about
    /// 90 us on a host). An executor whose threads sleep may wake them now,
    /// so that they are ready when the items come instead of taking as long
    /// to wake as the items take to run. The default does nothing.
    fn prepare(&self) {}
}

/// The signatures of [`Executor::verify_ed25519_batch`]: called with a
/// range of slots and a sink, it hands the sink each of their signatures.
pub type Ed25519Batch<'a> = dyn Fn(core::ops::Range<usize>, &mut dyn FnMut(Ed25519Check<'_>)) + Sync + 'a;

/// One Ed25519 signature of a batch ([`Executor::verify_ed25519_batch`]):
/// `signature` (`R || S`) by `public_key` over the concatenation of `message`.
#[derive(Clone, Copy, Debug)]
pub struct Ed25519Check<'a> {
    /// The signer's public key (RFC 8032 encoding).
    pub public_key: &'a [u8; 32],
    /// The signed message, in pieces.
    pub message: &'a [&'a [u8]],
    /// The signature.
    pub signature: &'a [u8; 64],
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

