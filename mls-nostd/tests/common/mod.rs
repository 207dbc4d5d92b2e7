//! Helpers shared by the core's integration tests.

/// A deterministic RNG (SplitMix64) for tests. Not for production use.
#[allow(dead_code)]
pub struct TestRng(pub u64);

impl rand_core::TryRng for TestRng {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.try_next_u64()? as u32)
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

impl rand_core::TryCryptoRng for TestRng {}

/// A signature key of `suite`'s scheme made of the byte `fill` (`[fill; 32]`
/// for Ed25519 as before; ECDSA scalars get a zero first byte, below the order).
#[allow(dead_code)]
pub fn signer(
    suite: mls_nostd::crypto::CipherSuite,
    fill: u8,
) -> mls_nostd::crypto::signature::SignaturePrivateKey {
    let scheme = suite.signature_scheme();
    let mut bytes = vec![fill; scheme.private_len()];
    if scheme.is_ecdsa() {
        bytes[0] = 0;
    }
    mls_nostd::crypto::signature::SignaturePrivateKey::from_slice(suite, &bytes).unwrap()
}

/// A store that also keeps every value ever written to it (to show what a
/// store never held).
#[allow(dead_code)]
pub struct Recording<S> {
    pub inner: S,
    pub written: Vec<Vec<u8>>,
}

impl<S: mls_nostd::store::Storage> mls_nostd::store::Storage for Recording<S> {
    fn read<'b>(
        &mut self,
        key: mls_nostd::store::RecordKey,
        buf: &'b mut [u8],
    ) -> Result<Option<&'b [u8]>, mls_nostd::store::StorageError> {
        self.inner.read(key, buf)
    }
    fn write(&mut self, key: mls_nostd::store::RecordKey, value: &[u8]) -> Result<(), mls_nostd::store::StorageError> {
        self.written.push(value.to_vec());
        self.inner.write(key, value)
    }
    fn remove(&mut self, key: mls_nostd::store::RecordKey) -> Result<(), mls_nostd::store::StorageError> {
        self.inner.remove(key)
    }
    fn committed(&mut self) -> Result<(), mls_nostd::store::StorageError> {
        self.inner.committed()
    }
}

#[allow(dead_code)]
impl<S> Recording<S> {
    /// True if some value written held `needle`.
    pub fn ever_held(&self, needle: &[u8]) -> bool {
        self.written.iter().any(|v| v.windows(needle.len()).any(|w| w == needle))
    }
}
