//! Signature keys of the supported suites: Ed25519 (RFC 8032) for suites 1 and 3
//! (RFC 9420 §5.1.2 fixes `SignaturePublicKey` as the raw public key).
//!
//! Verification is the ordinary (cofactorless, non-batched) Ed25519 check that
//! other Rust MLS implementations use, so members agree on what is accepted.

use super::{CipherSuite, CryptoError};
use ed25519_dalek::ed25519::signature::MultipartVerifier;
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

/// A signature private key; zeroized on drop. Its public key is computed once
/// and kept: signing then costs one scalar multiplication, not two.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SignaturePrivateKey {
    seed: [u8; SIGNATURE_PRIVATE_LEN],
    #[zeroize(skip)]
    public: [u8; SIGNATURE_PUBLIC_LEN],
}

impl SignaturePrivateKey {
    /// An all-zero placeholder key (signing with it fails).
    pub const ZERO: Self = Self { seed: [0; SIGNATURE_PRIVATE_LEN], public: [0; SIGNATURE_PUBLIC_LEN] };

    /// A private key from its serialization; fails on a wrong length.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        let mut seed: [u8; SIGNATURE_PRIVATE_LEN] = bytes.try_into().map_err(|_| CryptoError::InvalidKey)?;
        let public = SigningKey::from_bytes(&seed).verifying_key().to_bytes();
        let sk = Self { seed, public };
        seed.zeroize();
        Ok(sk)
    }

    /// A fresh key pair drawn from `rng`.
    pub fn generate(_suite: CipherSuite, rng: &mut impl CryptoRng) -> (Self, SignaturePublicKey) {
        let mut seed = [0u8; SIGNATURE_PRIVATE_LEN];
        rng.fill_bytes(&mut seed);
        let public = SigningKey::from_bytes(&seed).verifying_key().to_bytes();
        let sk = Self { seed, public };
        seed.zeroize();
        (sk, SignaturePublicKey(public))
    }

    /// The serialized key.
    pub fn as_bytes(&self) -> &[u8] {
        &self.seed
    }

    /// The matching public key.
    pub fn public_key(&self) -> SignaturePublicKey {
        SignaturePublicKey(self.public)
    }

    /// Signs the concatenation of `message_parts` (Ed25519, RFC 8032; the
    /// message is fed twice to the hash, as PureEdDSA needs, never copied).
    pub fn sign(&self, _suite: CipherSuite, message_parts: &[&[u8]]) -> Result<Signature, CryptoError> {
        use sha2::Digest;
        let esk = ed25519_dalek::hazmat::ExpandedSecretKey::from(&self.seed);
        let vk = VerifyingKey::from_bytes(&self.public).map_err(|_| CryptoError::InvalidKey)?;
        let sig = ed25519_dalek::hazmat::raw_sign_byupdate::<sha2::Sha512, _>(
            &esk,
            |h: &mut sha2::Sha512| {
                for p in message_parts {
                    h.update(p);
                }
                Ok(())
            },
            &vk,
        )
        .map_err(|_| CryptoError::InvalidKey)?;
        Ok(sig.to_bytes())
    }
}

impl core::fmt::Debug for SignaturePrivateKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SignaturePrivateKey(..)")
    }
}
