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

/// The u-coordinates of the points of order 1, 2, 4 and 8 of Curve25519
/// and its twist, and the encodings of 0 and 1 above p (libsodium's
/// `has_small_order`): 0, 1, the two of order 8, p - 1, p, p + 1. A DH
/// with any of them is all zero (RFC 7748 §6), whatever the private key.
const SMALL_ORDER: [[u8; 32]; 7] = [
    [0; 32],
    [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [
        0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,
        0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00,
    ],
    [
        0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef, 0x5b,
        0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f, 0x11, 0x57,
    ],
    [
        0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
    ],
    [
        0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
    ],
    [
        0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
    ],
];

/// False for a point of small order ([`SMALL_ORDER`]). Bit 255 is ignored,
/// as RFC 7748 §5 decodes u, so each has two encodings. Compared without
/// branches on the bytes (a public key: not required, but free).
pub(super) fn is_valid_public(pk: &[u8]) -> bool {
    let Ok(u) = <&[u8; 32]>::try_from(pk) else { return false };
    let mut small = 0u8;
    for blocked in &SMALL_ORDER {
        let mut diff = 0u8;
        for (i, (a, b)) in u.iter().zip(blocked).enumerate() {
            let a = if i == 31 { a & 0x7f } else { *a };
            diff |= a ^ b;
        }
        small |= u8::from(diff == 0);
    }
    small == 0
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
