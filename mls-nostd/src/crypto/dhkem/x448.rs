//! X448 (RFC 7748) for DHKEM(X448, HKDF-SHA512), via the `x448` crate
//! (a pre-release, 0.14.0-pre).

use crate::crypto::CryptoError;
use zeroize::Zeroize;

/// `decodeScalar448`'s clamping (RFC 7748 §5).
pub(super) fn clamp(sk: &mut [u8]) {
    if let Some(first) = sk.first_mut() {
        *first &= 252;
    }
    if let Some(last) = sk.last_mut() {
        *last |= 128;
    }
}

fn x448(sk: &[u8], point: [u8; 56], out: &mut [u8]) -> Result<(), CryptoError> {
    let mut scalar: [u8; 56] = sk.try_into().map_err(|_| CryptoError::InvalidKey)?;
    // `x448::x448` refuses low-order points (their output would be zero).
    let r = x448::x448(scalar, point);
    scalar.zeroize();
    let mut shared = r.ok_or(CryptoError::InvalidSharedSecret)?;
    out.copy_from_slice(&shared);
    shared.zeroize();
    Ok(())
}

pub(super) fn public_key(sk: &[u8], out: &mut [u8]) -> Result<(), CryptoError> {
    x448(sk, x448::X448_BASEPOINT_BYTES, out)
}

pub(super) fn dh(sk: &[u8], pk: &[u8], out: &mut [u8]) -> Result<(), CryptoError> {
    x448(sk, pk.try_into().map_err(|_| CryptoError::InvalidKey)?, out)
}
