//! Ed448 (RFC 8032 §5.2, "Ed448": PureEdDSA with an empty context) over the
//! curve arithmetic of `ed448-goldilocks` (a pre-release, 0.14.0-pre).
//!
//! The crate signs and verifies only messages in one slice; MLS signs
//! contents given in pieces (a GroupInfo can be large) and this crate has no
//! heap to join them, so the two SHAKE256 hashes of RFC 8032 §5.2.6 and
//! §5.2.7 are fed piece by piece here, with the crate's point and scalar
//! types. The host tests check it against the crate's own `sign_raw` and
//! `verify_raw` and the RFC 8032 vectors.

use crate::crypto::CryptoError;
use ed448_goldilocks::elliptic_curve::array::Array;
use ed448_goldilocks::shake::Shake256;
use ed448_goldilocks::shake::digest::{ExtendableOutput, Update, XofReader};
use ed448_goldilocks::{CompressedEdwardsY, EdwardsPoint, EdwardsScalar, EdwardsScalarBytes, WideEdwardsScalarBytes};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

/// `dom4(0, "")` (RFC 8032 §5.2): "SigEd448", phflag 0, empty context.
const DOM4: [u8; 10] = *b"SigEd448\x00\x00";
const KEY_LEN: usize = 57;

/// The secret scalar `s` and the `prefix` of a seed (RFC 8032 §5.2.5).
struct Expanded {
    scalar: EdwardsScalar,
    prefix: [u8; KEY_LEN],
}

impl Drop for Expanded {
    fn drop(&mut self) {
        self.scalar.zeroize();
        self.prefix.zeroize();
    }
}

fn expand(sk: &[u8]) -> Result<Expanded, CryptoError> {
    if sk.len() != KEY_LEN {
        return Err(CryptoError::InvalidKey);
    }
    let mut h = WideEdwardsScalarBytes::default();
    Shake256::default().chain(sk).finalize_xof().read(&mut h);
    let mut s = EdwardsScalarBytes::default();
    let mut prefix = [0u8; KEY_LEN];
    let (lo, hi) = h.split_at(KEY_LEN);
    s.copy_from_slice(lo);
    prefix.copy_from_slice(hi);
    h.zeroize();
    // Clear the 2 low bits and the last byte, set the highest bit of byte 55.
    if let Some(b) = s.first_mut() {
        *b &= 0xFC;
    }
    if let Some(b) = s.get_mut(56) {
        *b = 0;
    }
    if let Some(b) = s.get_mut(55) {
        *b |= 0x80;
    }
    let scalar = EdwardsScalar::from_bytes_mod_order(&s);
    s.zeroize();
    Ok(Expanded { scalar, prefix })
}

fn encode(p: &EdwardsPoint) -> [u8; KEY_LEN] {
    p.to_affine().compress().0
}

/// A point from its encoding, strictly: canonical (re-encodes to the same
/// bytes), on the curve, torsion-free.
fn decode(bytes: &[u8]) -> Result<EdwardsPoint, CryptoError> {
    let enc: [u8; KEY_LEN] = bytes.try_into().map_err(|_| CryptoError::InvalidKey)?;
    let p: Option<ed448_goldilocks::AffinePoint> = CompressedEdwardsY(enc).decompress().into();
    let p = p.ok_or(CryptoError::InvalidKey)?.to_edwards();
    if encode(&p) != enc {
        return Err(CryptoError::InvalidKey);
    }
    Ok(p)
}

/// `SHAKE256(dom4 || head[0] || head[1] || M, 114)` reduced mod L.
fn hash_to_scalar(head: [&[u8]; 2], parts: &[&[u8]]) -> EdwardsScalar {
    let mut h = Shake256::default();
    h.update(&DOM4);
    for p in head.iter().chain(parts) {
        h.update(p);
    }
    let mut wide = WideEdwardsScalarBytes::default();
    h.finalize_xof().read(&mut wide);
    let s = EdwardsScalar::from_bytes_mod_order_wide(&wide);
    wide.zeroize();
    s
}

pub(super) fn public_key(sk: &[u8], out: &mut [u8]) -> Result<(), CryptoError> {
    let e = expand(sk)?;
    out.get_mut(..KEY_LEN).ok_or(CryptoError::InvalidKey)?.copy_from_slice(&encode(&(EdwardsPoint::GENERATOR * e.scalar)));
    Ok(())
}

/// RFC 8032 §5.2.6; `pk` is the kept public key.
pub(super) fn sign(sk: &[u8], pk: &[u8], parts: &[&[u8]], out: &mut [u8]) -> Result<usize, CryptoError> {
    let e = expand(sk)?;
    let mut r = hash_to_scalar([&e.prefix, &[]], parts);
    let big_r = encode(&(EdwardsPoint::GENERATOR * r));
    let k = hash_to_scalar([&big_r, pk], parts);
    let s = r + k * e.scalar;
    r.zeroize();
    let out = out.get_mut(..2 * KEY_LEN).ok_or(CryptoError::InvalidLength)?;
    let (ro, so) = out.split_at_mut(KEY_LEN);
    ro.copy_from_slice(&big_r);
    so.copy_from_slice(&s.to_bytes_rfc_8032());
    Ok(2 * KEY_LEN)
}

/// RFC 8032 §5.2.7 with the checks of the parent module's documentation.
pub(super) fn verify(pk: &[u8], parts: &[&[u8]], signature: &[u8]) -> Result<(), CryptoError> {
    let a = decode(pk)?;
    if bool::from(a.ct_eq(&EdwardsPoint::IDENTITY)) {
        return Err(CryptoError::InvalidKey);
    }
    if signature.len() != 2 * KEY_LEN {
        return Err(CryptoError::InvalidSignature);
    }
    let (r_bytes, s_bytes) = signature.split_at(KEY_LEN);
    // `S < L` (RFC 8032 §5.2.7): its 57th byte must be zero. The crate's
    // `from_canonical_bytes` lets that byte through when the 56th byte's top
    // bits are clear (and then ignores it): a second encoding of the same S.
    if s_bytes.last() != Some(&0) {
        return Err(CryptoError::InvalidSignature);
    }
    let r = decode(r_bytes).map_err(|_| CryptoError::InvalidSignature)?;
    let s_arr: Array<u8, _> = Array::try_from(s_bytes).map_err(|_| CryptoError::InvalidSignature)?;
    let s = Option::<EdwardsScalar>::from(EdwardsScalar::from_canonical_bytes(&s_arr))
        .ok_or(CryptoError::InvalidSignature)?;
    let k = hash_to_scalar([r_bytes, pk], parts);
    if EdwardsPoint::GENERATOR * s == r + a * k {
        Ok(())
    } else {
        Err(CryptoError::InvalidSignature)
    }
}
