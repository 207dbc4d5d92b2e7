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

/// Signs (RFC 8032 §5.1.6; the message is fed twice to the hash, as
/// PureEdDSA needs, never copied); `pk` is the public key derived from
/// `sk` when the key was made (`SignaturePrivateKey` keeps it; a wrong one
/// would give two signatures of one message with one r).
///
/// The steps of `ed25519_dalek::hazmat::raw_sign_byupdate`, which takes
/// the public key as a `VerifyingKey`: making one from the kept bytes
/// decompresses the point (a square root, 12% of protecting a 1 KiB
/// message) only for its bytes to be hashed. The expanded key (clamped
/// scalar and prefix) is still dalek's; tests compare with its signatures.
pub(super) fn sign(
    sk: &[u8],
    pk: &[u8],
    parts: &[&[u8]],
    out: &mut [u8],
) -> Result<usize, CryptoError> {
    use curve25519_dalek::{EdwardsPoint, Scalar};
    use sha2::{Digest, Sha512};
    let pk: &[u8; 32] = pk.try_into().map_err(|_| CryptoError::InvalidKey)?;
    let out = out.get_mut(..64).ok_or(CryptoError::InvalidLength)?;
    let mut s = seed(sk)?;
    // Zeroized on drop.
    let esk = ed25519_dalek::hazmat::ExpandedSecretKey::from(&s);
    s.zeroize();
    let hash = |first: &[&[u8]]| {
        let mut h = Sha512::new();
        first.iter().chain(parts).for_each(|p| h.update(p));
        h
    };
    // r = H(prefix || M), R = [r]B, k = H(R || A || M), S = r + k * s.
    let mut r = Scalar::from_hash(hash(&[&esk.hash_prefix]));
    let big_r = EdwardsPoint::mul_base(&r).compress();
    let k = Scalar::from_hash(hash(&[big_r.as_bytes(), pk]));
    let big_s = k * esk.scalar + r;
    r.zeroize();
    // R || S, 64 bytes (`out` was cut to that length above).
    for (o, b) in out
        .iter_mut()
        .zip(big_r.as_bytes().iter().chain(big_s.as_bytes()))
    {
        *o = *b;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Byte for byte ed25519-dalek's signature (its own signing path, which
    /// decompresses the public key), for keys and messages split into parts.
    #[test]
    fn sign_matches_ed25519_dalek() {
        use ed25519_dalek::Signer as _;
        let message: [u8; 300] = core::array::from_fn(|i| (i * 7 + 3) as u8);
        let mut checked = 0;
        for k in 0u8..16 {
            let seed = [k.wrapping_mul(37) ^ 0xa5; 32];
            let mut pk = [0u8; 32];
            public_key(&seed, &mut pk).expect("a key");
            for cut in [0, 1, 64, 111, 128, 299, 300] {
                let (a, b) = message.split_at(cut);
                let mut ours = [0u8; 64];
                assert_eq!(sign(&seed, &pk, &[a, b], &mut ours), Ok(64));
                let theirs = ed25519_dalek::SigningKey::from_bytes(&seed)
                    .sign(&message)
                    .to_bytes();
                assert_eq!(ours, theirs, "key {k}, parts split at {cut}");
                verify(&pk, &[&message], &ours).expect("verifies");
                checked += 1;
            }
        }
        assert_eq!(checked, 16 * 7);
    }
}
