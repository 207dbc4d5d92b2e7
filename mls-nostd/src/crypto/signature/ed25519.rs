//! Ed25519 (RFC 8032) via `ed25519-dalek`; what verification accepts is in
//! the parent module's documentation.

use crate::crypto::CryptoError;
use ed25519_dalek::ed25519::signature::MultipartVerifier;
use ed25519_dalek::{SigningKey, VerifyingKey};
use zeroize::Zeroize;

fn seed(sk: &[u8]) -> Result<[u8; 32], CryptoError> {
    sk.try_into().map_err(|_| CryptoError::InvalidKey)
}

pub(super) fn public_key(sk: &[u8], out: &mut [u8]) -> Result<(), CryptoError> {
    let mut s = seed(sk)?;
    let pk = SigningKey::from_bytes(&s).verifying_key().to_bytes();
    s.zeroize();
    out.get_mut(..32).ok_or(CryptoError::InvalidKey)?.copy_from_slice(&pk);
    Ok(())
}

/// Signs (the message is fed twice to the hash, as PureEdDSA needs, never
/// copied); `pk` is the kept public key.
pub(super) fn sign(sk: &[u8], pk: &[u8], parts: &[&[u8]], out: &mut [u8]) -> Result<usize, CryptoError> {
    use sha2::Digest;
    let mut s = seed(sk)?;
    let esk = ed25519_dalek::hazmat::ExpandedSecretKey::from(&s);
    s.zeroize();
    let vk = VerifyingKey::from_bytes(&pk.try_into().map_err(|_| CryptoError::InvalidKey)?)
        .map_err(|_| CryptoError::InvalidKey)?;
    let sig = ed25519_dalek::hazmat::raw_sign_byupdate::<sha2::Sha512, _>(
        &esk,
        |h: &mut sha2::Sha512| {
            for p in parts {
                h.update(p);
            }
            Ok(())
        },
        &vk,
    )
    .map_err(|_| CryptoError::InvalidKey)?;
    out.get_mut(..64).ok_or(CryptoError::InvalidLength)?.copy_from_slice(&sig.to_bytes());
    Ok(64)
}

pub(super) fn verify(pk: &[u8], parts: &[&[u8]], signature: &[u8]) -> Result<(), CryptoError> {
    let key = VerifyingKey::from_bytes(&pk.try_into().map_err(|_| CryptoError::InvalidKey)?)
        .map_err(|_| CryptoError::InvalidKey)?;
    let sig = ed25519_dalek::Signature::from_slice(signature).map_err(|_| CryptoError::InvalidSignature)?;
    key.multipart_verify(parts, &sig).map_err(|_| CryptoError::InvalidSignature)
}
