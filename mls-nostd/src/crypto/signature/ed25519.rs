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

/// Whether `a` is the canonical encoding of a point (RFC 8032 §5.1.3: the
/// y-coordinate below p, and no sign bit set for x = 0, which is when y is 1
/// or p - 1). `ed25519-dalek` decodes the non-canonical ones too (y + p for
/// the 19 y below 2^255 - p, and -0), so that one point has two keys.
fn is_canonical_point(a: &[u8; 32]) -> bool {
    // p = 2^255 - 19, little-endian: ed ff .. ff 7f.
    let (first, last) = (a[0], a[31] & 0x7f);
    let middle_ff = a[1..31].iter().all(|b| *b == 0xff);
    let y_at_least_p = last == 0x7f && middle_ff && first >= 0xed;
    let sign = a[31] & 0x80 != 0;
    let y_is_one = first == 1 && last == 0 && a[1..31].iter().all(|b| *b == 0);
    let y_is_minus_one = first == 0xec && last == 0x7f && middle_ff;
    !y_at_least_p && !(sign && (y_is_one || y_is_minus_one))
}

/// Hands `sink` the signature `signature` by `pk` over the concatenation
/// of `message` for a batch check
/// ([`crate::executor::Executor::verify_ed25519_batch`]); false, handing
/// nothing, if the single check below would refuse their encodings (a
/// canonical key of 32 bytes, a signature of 64): no batch may vouch for it.
/// (Not with a crypto engine, which must see every verification.)
#[cfg(not(feature = "engine"))]
pub(crate) fn hand_to_batch(
    pk: &[u8],
    signature: &[u8],
    message: &[&[u8]],
    sink: &mut dyn FnMut(crate::executor::Ed25519Check<'_>),
) -> bool {
    let (Ok(public_key), Ok(signature)) = (<&[u8; 32]>::try_from(pk), <&[u8; 64]>::try_from(signature)) else {
        return false;
    };
    if !is_canonical_point(public_key) {
        return false;
    }
    sink(crate::executor::Ed25519Check { public_key, message, signature });
    true
}

pub(super) fn verify(pk: &[u8], parts: &[&[u8]], signature: &[u8]) -> Result<(), CryptoError> {
    let pk: [u8; 32] = pk.try_into().map_err(|_| CryptoError::InvalidKey)?;
    // RFC 8032 §5.1.7: verification fails if the public key's decoding does.
    if !is_canonical_point(&pk) {
        return Err(CryptoError::InvalidKey);
    }
    let key = VerifyingKey::from_bytes(&pk).map_err(|_| CryptoError::InvalidKey)?;
    let sig = ed25519_dalek::Signature::from_slice(signature).map_err(|_| CryptoError::InvalidSignature)?;
    key.multipart_verify(parts, &sig).map_err(|_| CryptoError::InvalidSignature)
}
