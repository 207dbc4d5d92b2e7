//! X25519 (RFC 7748) for DHKEM(X25519, HKDF-SHA256), via `x25519-dalek`.

use crate::crypto::CryptoError;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroize;

/// `decodeScalar25519`'s clamping (RFC 7748 §5).
pub(super) fn clamp(sk: &mut [u8]) {
    if let Some(first) = sk.first_mut() {
        *first &= 248;
    }
    if let Some(last) = sk.last_mut() {
        *last = (*last & 127) | 64;
    }
}

fn secret(sk: &[u8]) -> Result<StaticSecret, CryptoError> {
    let mut bytes: [u8; 32] = sk.try_into().map_err(|_| CryptoError::InvalidKey)?;
    let s = StaticSecret::from(bytes);
    bytes.zeroize();
    Ok(s)
}

pub(super) fn public_key(sk: &[u8], out: &mut [u8]) -> Result<(), CryptoError> {
    let pk = PublicKey::from(&secret(sk)?);
    out.copy_from_slice(pk.as_bytes());
    Ok(())
}

/// The all-zero output of a low-order point is refused by the caller.
pub(super) fn dh(sk: &[u8], pk: &[u8], out: &mut [u8]) -> Result<(), CryptoError> {
    let pk: [u8; 32] = pk.try_into().map_err(|_| CryptoError::InvalidKey)?;
    let shared = secret(sk)?.diffie_hellman(&PublicKey::from(pk));
    out.copy_from_slice(shared.as_bytes());
    Ok(())
}
