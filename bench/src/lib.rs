//! Helpers of the benchmarks that compare mls-nostd with OpenMLS and mls-rs
//! (`benches/compare/`, run by `bench/run.sh`): heap allocation of large
//! groups without a stack copy, a seeded RNG and the wall clock.
#![deny(missing_docs)]

use mls_nostd::group::Group;

/// A `Group` slot on the heap, initialised in place to [`Group::EMPTY`].
///
/// `Box::new(Group::EMPTY)` may build the value on the stack first: a
/// 16,384-leaf group is 19 MiB. Here the memory is allocated uninitialised
/// and `EMPTY` (a constant) is written into it, which optimised builds (the
/// benches) lower to a copy from the constant's image; a debug build may
/// still pass the value through the stack (`ptr::write` not inlined).
pub fn boxed_group<const N: usize, const ARENA: usize, const K: usize, const P: usize>() -> Box<Group<N, ARENA, K, P>> {
    let mut slot = Box::<Group<N, ARENA, K, P>>::new_uninit();
    // SAFETY: `as_mut_ptr` points to memory allocated for one `Group`;
    // `write` initialises it completely without reading it.
    unsafe { slot.as_mut_ptr().write(Group::EMPTY) };
    // SAFETY: initialised just above.
    unsafe { slot.assume_init() }
}

/// Seconds since the Unix epoch (KeyPackage lifetimes are checked against it).
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// SplitMix64: a seeded, reproducible RNG for benchmark keys (never for real keys).
#[derive(Clone, Debug)]
pub struct SeededRng(pub u64);

impl rand_core::TryRng for SeededRng {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok((self.try_next_u64()? >> 32) as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Ok(z ^ (z >> 31))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dst.chunks_mut(8) {
            let v = self.try_next_u64()?.to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for SeededRng {}
