//! Ed25519 (RFC 8032) via `ed25519-dalek`; what verification accepts is in
//! the parent module's documentation.

use crate::crypto::CryptoError;
use ed25519_dalek::SigningKey;
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

/// Verifies (RFC 8032 §5.1.7, cofactorless): `R == [s]B - [k]A` with
/// `k = H(R || A || M)`, compared as encodings, with `s` below the group
/// order. The same checks as ed25519-dalek's `VerifyingKey::verify` (tests
/// compare the two), in steps of their own frames: inlined into one, the
/// point decoding, the hash and the double-base multiplication took 4.6 KB
/// of stack above the multiplication's tables, on every receive path of a
/// small device (issue #14).
pub(super) fn verify(pk: &[u8], parts: &[&[u8]], signature: &[u8]) -> Result<(), CryptoError> {
    let pk: &[u8; 32] = pk.try_into().map_err(|_| CryptoError::InvalidKey)?;
    // RFC 8032 §5.1.7: verification fails if the public key's decoding does.
    if !is_canonical_point(pk) {
        return Err(CryptoError::InvalidKey);
    }
    let signature: &[u8; 64] = signature.try_into().map_err(|_| CryptoError::InvalidSignature)?;
    let (big_r, s) = signature.split_at(32);
    let s: [u8; 32] = s.try_into().map_err(|_| CryptoError::InvalidSignature)?;
    let s = Option::<curve25519_dalek::Scalar>::from(curve25519_dalek::Scalar::from_canonical_bytes(s))
        .ok_or(CryptoError::InvalidSignature)?;
    let k = challenge(big_r, pk, parts);
    check_r(pk, &k, &s, big_r)
}

/// Decodes `-A` from `a` and compares `[k](-A) + [s]B` with `big_r`: the
/// point (160 bytes) is decoded into this small frame's one slot, not
/// returned through copies in [`verify`]'s frame (600 bytes under the
/// multiplication on a Cortex-M4; 376 with this frame).
#[inline(never)]
fn check_r(
    a: &[u8; 32],
    k: &curve25519_dalek::Scalar,
    s: &curve25519_dalek::Scalar,
    big_r: &[u8],
) -> Result<(), CryptoError> {
    let mut minus_a = curve25519_dalek::EdwardsPoint::default();
    if !negated_point(a, &mut minus_a) {
        return Err(CryptoError::InvalidKey);
    }
    // Public values: no need for a constant-time comparison.
    match recomputed_r(k, &minus_a, s) == *big_r {
        true => Ok(()),
        false => Err(CryptoError::InvalidSignature),
    }
}

/// Writes `-A` from the encoding `a` into `out`; false if `a` is not a point.
#[inline(never)]
fn negated_point(a: &[u8; 32], out: &mut curve25519_dalek::EdwardsPoint) -> bool {
    match curve25519_dalek::edwards::CompressedEdwardsY(*a).decompress() {
        Some(p) => {
            *out = -p;
            true
        }
        None => false,
    }
}

/// `k = H(R || A || M)` reduced mod the group order (RFC 8032 §5.1.7 step 2).
#[inline(never)]
fn challenge(big_r: &[u8], a: &[u8; 32], parts: &[&[u8]]) -> curve25519_dalek::Scalar {
    use sha2::{Digest, Sha512};
    let mut h = Sha512::new();
    h.update(big_r);
    h.update(a);
    parts.iter().for_each(|p| h.update(p));
    curve25519_dalek::Scalar::from_hash(h)
}

/// The encoding of `[k](-A) + [s]B`.
#[inline(never)]
fn recomputed_r(
    k: &curve25519_dalek::Scalar,
    minus_a: &curve25519_dalek::EdwardsPoint,
    s: &curve25519_dalek::Scalar,
) -> [u8; 32] {
    curve25519_dalek::EdwardsPoint::vartime_double_scalar_mul_basepoint(k, minus_a, s)
        .compress()
        .to_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::VerifyingKey;

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

    /// Our verification (its steps apart, for the stack) accepts exactly
    /// what ed25519-dalek's `VerifyingKey::verify` accepts: every valid
    /// signature, and none with a bit of R or S flipped, S + l (the same
    /// point, so accepted if S were not required below l), S with its top
    /// bit set, another message or another key. Counted both ways, so that
    /// two refusals of everything cannot pass for agreement.
    #[test]
    fn verify_agrees_with_ed25519_dalek() {
        use ed25519_dalek::Verifier as _;
        // l = 2^252 + 27742317777372353535851937790883648493, little-endian.
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let plus_l = |s: &[u8]| {
            let mut out = [0u8; 32];
            let mut carry = 0u16;
            for i in 0..32 {
                let v = u16::from(s[i]) + u16::from(L[i]) + carry;
                out[i] = v as u8;
                carry = v >> 8;
            }
            out
        };
        let message: [u8; 200] = core::array::from_fn(|i| (i * 13 + 5) as u8);
        let (mut accepted, mut refused) = (0, 0);
        for k in 0u8..8 {
            let seed = [k.wrapping_mul(91) ^ 0x3c; 32];
            let mut pk = [0u8; 32];
            public_key(&seed, &mut pk).expect("a key");
            let mut other = [0u8; 32];
            public_key(&[k ^ 0xff; 32], &mut other).expect("a key");
            let mut sig = [0u8; 64];
            assert_eq!(sign(&seed, &pk, &[&message], &mut sig), Ok(64));
            // (key, message, signature, valid)
            type Case = ([u8; 32], [u8; 200], [u8; 64], bool);
            let mut cases: heapless::Vec<Case, 13> = heapless::Vec::new();
            let mut push = |c: Case| cases.push(c).expect("room for every case");
            push((pk, message, sig, true));
            for bit in [0usize, 9, 100, 254] {
                let mut r = sig;
                r[bit / 8] ^= 1 << (bit % 8);
                push((pk, message, r, false));
                let mut s = sig;
                s[32 + bit / 8] ^= 1 << (bit % 8);
                push((pk, message, s, false));
            }
            let mut s_plus_l = sig;
            s_plus_l[32..].copy_from_slice(&plus_l(&sig[32..]));
            push((pk, message, s_plus_l, false));
            let mut high = sig;
            high[63] |= 0x80;
            push((pk, message, high, false));
            let mut changed = message;
            changed[17] ^= 4;
            push((pk, changed, sig, false));
            push((other, message, sig, false));
            for (i, (key, msg, sig, valid)) in cases.iter().enumerate() {
                let ours = verify(key, &[&msg[..50], &msg[50..]], sig).is_ok();
                let theirs = VerifyingKey::from_bytes(key)
                    .is_ok_and(|vk| vk.verify(msg, &ed25519_dalek::Signature::from_bytes(sig)).is_ok());
                assert_eq!(ours, theirs, "key {k}, case {i}");
                assert_eq!(ours, *valid, "key {k}, case {i}");
                if ours { accepted += 1 } else { refused += 1 }
            }
        }
        assert_eq!((accepted, refused), (8, 8 * 12));
    }
}
