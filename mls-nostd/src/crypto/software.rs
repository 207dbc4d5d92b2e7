//! The RustCrypto implementation of the hash and the AEADs: what the core
//! computes with when no engine is plugged in, and what an engine's default
//! methods fall back to ([`super::engine`], feature `engine`).
//!
//! [`super::CipherSuite`]'s primitives reach this module through `backend`
//! (`crypto/mod.rs`): here without the feature, the engine's link with it.

#[cfg(any(feature = "suite-1", feature = "suite-2"))]
use aes_gcm::Aes128Gcm;
#[cfg(any(feature = "suite-4", feature = "suite-5", feature = "suite-7"))]
use aes_gcm::Aes256Gcm;
#[cfg(feature = "_chacha")]
use chacha20poly1305::ChaCha20Poly1305;
#[cfg(any(feature = "_aes", feature = "_chacha"))]
use aead::{AeadInOut, KeyInit, inout::InOutBuf};
use sha2::Digest;

use super::{AEAD_TAG_LEN, AeadAlg, CryptoError, HashAlg};

// The digest types the KDF and MAC are built on, and their HKDF and HMAC
// (`crypto/mod.rs`'s `with_hash!` names them through `backend`; with an
// engine, `engine::backend` names its own).
#[cfg(not(feature = "engine"))]
pub(super) use hkdf::{Hkdf, HkdfExtract};
#[cfg(not(feature = "engine"))]
pub(super) use hmac::Hmac;
#[cfg(all(feature = "_sha256", not(feature = "engine")))]
pub(super) use sha2::Sha256;
#[cfg(all(feature = "_sha384", not(feature = "engine")))]
pub(super) use sha2::Sha384;
#[cfg(all(feature = "_sha512", not(feature = "engine")))]
pub(super) use sha2::Sha512;

/// The state of a running hash.
#[derive(Clone)]
pub enum HashState {
    /// SHA-256.
    Sha256(sha2::Sha256),
    /// SHA-384.
    #[cfg(feature = "_sha384")]
    Sha384(sha2::Sha384),
    /// SHA-512.
    #[cfg(feature = "_sha512")]
    Sha512(sha2::Sha512),
}

/// A new hash of `alg`.
pub fn hash_start(alg: HashAlg) -> HashState {
    match alg {
        #[cfg(feature = "_sha256")]
        HashAlg::Sha256 => HashState::Sha256(sha2::Sha256::new()),
        #[cfg(feature = "_sha384")]
        HashAlg::Sha384 => HashState::Sha384(sha2::Sha384::new()),
        #[cfg(feature = "_sha512")]
        HashAlg::Sha512 => HashState::Sha512(sha2::Sha512::new()),
    }
}

/// The SHA-256 of the store's integrity checks, whatever the suites.
#[cfg(any(not(feature = "engine"), not(feature = "_sha256")))]
pub fn sha256_start() -> HashState {
    HashState::Sha256(sha2::Sha256::new())
}

/// Feeds `data` to the hash.
pub fn hash_update(state: &mut HashState, data: &[u8]) {
    match state {
        HashState::Sha256(h) => h.update(data),
        #[cfg(feature = "_sha384")]
        HashState::Sha384(h) => h.update(data),
        #[cfg(feature = "_sha512")]
        HashState::Sha512(h) => h.update(data),
    }
}

/// Writes the hash into the front of `out` (which has room for the
/// longest); returns its length.
pub fn hash_finish(state: HashState, out: &mut [u8]) -> usize {
    let put = |out: &mut [u8], digest: &[u8]| match out.get_mut(..digest.len()) {
        Some(o) => {
            o.copy_from_slice(digest);
            digest.len()
        }
        None => 0,
    };
    match state {
        HashState::Sha256(h) => put(out, &h.finalize()),
        #[cfg(feature = "_sha384")]
        HashState::Sha384(h) => put(out, &h.finalize()),
        #[cfg(feature = "_sha512")]
        HashState::Sha512(h) => put(out, &h.finalize()),
    }
}

/// `AEAD.Seal` in place: encrypts `buf`, returns the detached tag.
pub fn aead_seal(
    alg: AeadAlg,
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    buf: &mut [u8],
) -> Result<[u8; AEAD_TAG_LEN], CryptoError> {
    match alg {
        #[cfg(any(feature = "suite-1", feature = "suite-2"))]
        AeadAlg::Aes128Gcm => seal_with::<Aes128Gcm>(key, nonce, aad, buf),
        #[cfg(any(feature = "suite-4", feature = "suite-5", feature = "suite-7"))]
        AeadAlg::Aes256Gcm => seal_with::<Aes256Gcm>(key, nonce, aad, buf),
        #[cfg(feature = "_chacha")]
        AeadAlg::ChaCha20Poly1305 => seal_with::<ChaCha20Poly1305>(key, nonce, aad, buf),
    }
}

/// `AEAD.Open` in place: checks `tag` and decrypts `buf` (left as it is
/// on failure: the caller wipes it).
pub fn aead_open(alg: AeadAlg, key: &[u8], nonce: &[u8], aad: &[u8], buf: &mut [u8], tag: &[u8]) -> Result<(), CryptoError> {
    match alg {
        #[cfg(any(feature = "suite-1", feature = "suite-2"))]
        AeadAlg::Aes128Gcm => open_with::<Aes128Gcm>(key, nonce, aad, buf, tag),
        #[cfg(any(feature = "suite-4", feature = "suite-5", feature = "suite-7"))]
        AeadAlg::Aes256Gcm => open_with::<Aes256Gcm>(key, nonce, aad, buf, tag),
        #[cfg(feature = "_chacha")]
        AeadAlg::ChaCha20Poly1305 => open_with::<ChaCha20Poly1305>(key, nonce, aad, buf, tag),
    }
}

fn seal_with<A: AeadInOut + KeyInit>(
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    buf: &mut [u8],
) -> Result<[u8; AEAD_TAG_LEN], CryptoError> {
    let cipher = A::new_from_slice(key).map_err(|_| CryptoError::InvalidKey)?;
    let nonce = nonce.try_into().map_err(|_| CryptoError::InvalidKey)?;
    let tag = cipher
        .encrypt_inout_detached(nonce, aad, InOutBuf::from(buf))
        .map_err(|_| CryptoError::MessageTooLong)?;
    let mut out = [0u8; AEAD_TAG_LEN];
    if tag.len() != AEAD_TAG_LEN {
        return Err(CryptoError::InvalidLength);
    }
    out.copy_from_slice(&tag);
    Ok(out)
}

fn open_with<A: AeadInOut + KeyInit>(
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    buf: &mut [u8],
    tag: &[u8],
) -> Result<(), CryptoError> {
    let cipher = A::new_from_slice(key).map_err(|_| CryptoError::InvalidKey)?;
    let nonce = nonce.try_into().map_err(|_| CryptoError::InvalidKey)?;
    let tag = tag.try_into().map_err(|_| CryptoError::DecryptionFailed)?;
    cipher
        .decrypt_inout_detached(nonce, aad, InOutBuf::from(buf), tag)
        .map_err(|_| CryptoError::DecryptionFailed)
}
