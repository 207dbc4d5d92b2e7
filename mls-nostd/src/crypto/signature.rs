//! Signature keys of the supported suites: Ed25519 (RFC 8032) for suites 1 and 3
//! (RFC 9420 §5.1.2 fixes `SignaturePublicKey` as the raw public key).
//!
//! Verification is the ordinary (cofactorless, non-batched) Ed25519 check that
//! other Rust MLS implementations use, so members agree on what is accepted.

use super::{CipherSuite, CryptoError};
use ed25519_dalek::ed25519::signature::{MultipartSigner, MultipartVerifier};
use ed25519_dalek::{SigningKey, VerifyingKey};
use rand_core::CryptoRng;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Length of a signature public key of the supported suites.
pub const SIGNATURE_PUBLIC_LEN: usize = 32;
/// Length of a signature private key of the supported suites.
pub const SIGNATURE_PRIVATE_LEN: usize = 32;
/// Length of a signature of the supported suites.
pub const SIGNATURE_LEN: usize = 64;

/// A signature, raw bytes.
pub type Signature = [u8; SIGNATURE_LEN];

/// A signature public key (`SignaturePublicKey`), raw bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct SignaturePublicKey([u8; SIGNATURE_PUBLIC_LEN]);

impl SignaturePublicKey {
    /// A public key from its serialization; fails on a wrong length.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        Ok(Self(bytes.try_into().map_err(|_| CryptoError::InvalidKey)?))
    }

    /// The serialized key.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Verifies `signature` over the concatenation of `message_parts`.
    pub fn verify(&self, _suite: CipherSuite, message_parts: &[&[u8]], signature: &[u8]) -> Result<(), CryptoError> {
        let key = VerifyingKey::from_bytes(&self.0).map_err(|_| CryptoError::InvalidKey)?;
        let sig = ed25519_dalek::Signature::from_slice(signature).map_err(|_| CryptoError::InvalidSignature)?;
        key.multipart_verify(message_parts, &sig).map_err(|_| CryptoError::InvalidSignature)
    }
}

/// A signature private key; zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SignaturePrivateKey([u8; SIGNATURE_PRIVATE_LEN]);

impl SignaturePrivateKey {
    /// An all-zero placeholder key.
    pub const ZERO: Self = Self([0; SIGNATURE_PRIVATE_LEN]);

    /// A private key from its serialization; fails on a wrong length.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        Ok(Self(bytes.try_into().map_err(|_| CryptoError::InvalidKey)?))
    }

    /// A fresh key pair drawn from `rng`.
    pub fn generate(_suite: CipherSuite, rng: &mut impl CryptoRng) -> (Self, SignaturePublicKey) {
        let mut seed = [0u8; SIGNATURE_PRIVATE_LEN];
        rng.fill_bytes(&mut seed);
        let sk = Self(seed);
        seed.zeroize();
        let pk = sk.public_key();
        (sk, pk)
    }

    /// The serialized key.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The matching public key.
    pub fn public_key(&self) -> SignaturePublicKey {
        SignaturePublicKey(SigningKey::from_bytes(&self.0).verifying_key().to_bytes())
    }

    /// Signs the concatenation of `message_parts`.
    pub fn sign(&self, _suite: CipherSuite, message_parts: &[&[u8]]) -> Result<Signature, CryptoError> {
        let key = SigningKey::from_bytes(&self.0);
        let sig = key.try_multipart_sign(message_parts).map_err(|_| CryptoError::InvalidKey)?;
        Ok(sig.to_bytes())
    }
}

impl core::fmt::Debug for SignaturePrivateKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SignaturePrivateKey(..)")
    }
}
