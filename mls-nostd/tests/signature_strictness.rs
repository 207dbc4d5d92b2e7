//! What signature verification accepts (issue #15: "Ed25519 and ECDSA
//! verification are strict where RFC 9420 requires it"). RFC 9420 §5.1.2
//! takes the schemes of RFC 8446 with their encodings: ECDSA signatures in
//! DER (RFC 8446 §4.2.3), EdDSA as RFC 8032 defines it; §5.1.1 wants ECDSA
//! public keys uncompressed. It asks for no low-S rule and no refusal of
//! small-order keys. Expected values come from RFC constants and from the
//! `p256` crate used directly (not through the code under test).
#![cfg(all(feature = "suite-1", feature = "suite-2"))]

use mls_nostd::crypto::signature::{SignaturePrivateKey, SignaturePublicKey};
use mls_nostd::crypto::{CipherSuite, CryptoError};

const P256: CipherSuite = CipherSuite::P256Aes128GcmSha256P256;
const ED25519: CipherSuite = CipherSuite::X25519Aes128GcmSha256Ed25519;

/// The order n of P-256 (FIPS 186-4, D.1.2.3), big-endian.
const P256_N: [u8; 32] = hex32("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");

const fn hex32(s: &str) -> [u8; 32] {
    let b = s.as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (nibble(b[2 * i]) << 4) | nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}

const fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => panic!("not hex"),
    }
}

fn verify(suite: CipherSuite, pk: &[u8], msg: &[u8], sig: &[u8]) -> Result<(), CryptoError> {
    SignaturePublicKey::from_slice(pk)?.verify(suite, &[msg], sig)
}

/// `a - b` for 32-byte big-endian numbers with `a >= b`.
fn sub_be(a: &[u8; 32], b: &[u8]) -> [u8; 32] {
    let mut bb = [0u8; 32];
    bb[32 - b.len()..].copy_from_slice(b);
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = i16::from(a[i]) - i16::from(bb[i]) - borrow;
        out[i] = d.rem_euclid(256) as u8;
        borrow = i16::from(d < 0);
    }
    assert_eq!(borrow, 0);
    out
}

/// A DER INTEGER of the unsigned big-endian `v`, minimal.
fn der_int(v: &[u8]) -> Vec<u8> {
    let mut v: Vec<u8> = v.iter().copied().skip_while(|b| *b == 0).collect();
    if v.is_empty() || v[0] & 0x80 != 0 {
        v.insert(0, 0);
    }
    let mut out = vec![0x02, v.len() as u8];
    out.extend_from_slice(&v);
    out
}

/// `Ecdsa-Sig-Value` of two encoded INTEGERs.
fn der_sig(r: &[u8], s: &[u8]) -> Vec<u8> {
    let mut out = vec![0x30, (r.len() + s.len()) as u8];
    out.extend_from_slice(r);
    out.extend_from_slice(s);
    out
}

/// (r, s) of a minimal DER signature, unsigned big-endian.
fn split_der(sig: &[u8]) -> (Vec<u8>, Vec<u8>) {
    assert_eq!(sig[0], 0x30);
    assert_eq!(usize::from(sig[1]), sig.len() - 2);
    let rl = usize::from(sig[3]);
    let r = &sig[4..4 + rl];
    let s = &sig[6 + rl..];
    assert_eq!(usize::from(sig[5 + rl]), s.len());
    let strip = |v: &[u8]| v.iter().copied().skip_while(|b| *b == 0).collect::<Vec<u8>>();
    (strip(r), strip(s))
}

fn p256_key(i: u8) -> (SignaturePrivateKey, [u8; 32]) {
    let mut scalar = [0x11u8; 32];
    scalar[0] = i;
    (SignaturePrivateKey::from_slice(P256, &scalar).expect("a valid scalar"), scalar)
}

/// Our ECDSA P-256 signatures are exactly `p256::ecdsa::SigningKey`'s
/// (RFC 6979, SHA-256, DER), and `p256` verifies them.
#[test]
fn ecdsa_p256_signatures_are_rfc6979_and_verify_elsewhere() {
    use p256::ecdsa::signature::{Signer, Verifier};
    let mut checked = 0;
    for i in 1..=8u8 {
        let (ours, scalar) = p256_key(i);
        let theirs = p256::ecdsa::SigningKey::from_bytes(&scalar.into()).expect("key");
        for msg in [&b""[..], b"MLS 1.0 test", &[0xa5; 1000]] {
            let sig = ours.sign(P256, &[msg]).expect("sign");
            let expected: p256::ecdsa::Signature = theirs.sign(msg);
            assert_eq!(sig.as_bytes(), expected.to_der().as_bytes(), "key {i}, message of {} bytes", msg.len());
            let der = p256::ecdsa::DerSignature::try_from(sig.as_bytes()).expect("DER");
            theirs.verifying_key().verify(msg, &der).expect("p256 verifies our signature");
            verify(P256, ours.public_key().as_bytes(), msg, &sig).expect("we verify our signature");
            checked += 1;
        }
    }
    assert_eq!(checked, 24);
}

/// DER is required (RFC 8446 §4.2.3): one encoding per (r, s). BER lengths,
/// padded integers, trailing bytes, r or s out of [1, n - 1] are refused;
/// the high-S twin (r, n - s) is accepted, as `p256` accepts it (no low-S
/// rule in RFC 9420; the official suite-7 vector's signature is high-S).
#[test]
fn ecdsa_der_is_strict_and_high_s_is_accepted() {
    use p256::ecdsa::signature::Verifier;
    let (key, scalar) = p256_key(3);
    let pk = key.public_key();
    let msg = b"strict DER";
    let sig = key.sign(P256, &[msg]).expect("sign").as_bytes().to_vec();
    verify(P256, pk.as_bytes(), msg, &sig).expect("the signature as made");
    let (r, s) = split_der(&sig);

    let mut refused = 0;
    let mut refuse = |what: &str, bad: Vec<u8>| {
        assert_eq!(verify(P256, pk.as_bytes(), msg, &bad), Err(CryptoError::InvalidSignature), "{what}");
        refused += 1;
    };
    // The sequence length in long form (BER, not DER).
    let mut long = vec![0x30, 0x81, sig[1]];
    long.extend_from_slice(&sig[2..]);
    refuse("long-form length", long);
    // r with a superfluous leading zero byte.
    let mut padded_r = vec![0x02, (r.len() + 2) as u8, 0, 0];
    padded_r.extend_from_slice(&r);
    refuse("r padded with zero bytes", der_sig(&padded_r, &der_int(&s)));
    // A byte after the sequence.
    let mut trailing = sig.clone();
    trailing.push(0);
    refuse("a trailing byte", trailing);
    // s = 0, s = n, r = 0.
    refuse("s = 0", der_sig(&der_int(&r), &der_int(&[0])));
    refuse("s = n", der_sig(&der_int(&r), &der_int(&P256_N)));
    refuse("r = 0", der_sig(&der_int(&[0]), &der_int(&s)));
    // The whole signature's bytes, then one of them changed.
    let mut flipped = sig.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    refuse("s changed", flipped);
    assert_eq!(refused, 7);

    // High S: (r, n - s) is a valid signature of the same message.
    let high = der_sig(&der_int(&r), &der_int(&sub_be(&P256_N, &s)));
    assert_ne!(high, sig);
    let theirs = p256::ecdsa::SigningKey::from_bytes(&scalar.into()).expect("key");
    let der = p256::ecdsa::DerSignature::try_from(high.as_slice()).expect("DER");
    theirs.verifying_key().verify(msg, &der).expect("p256 accepts the high-S twin");
    verify(P256, pk.as_bytes(), msg, &high).expect("we accept the high-S twin");
}

/// ECDSA public keys: uncompressed only (RFC 9420 §5.1.1); the compressed
/// and hybrid forms of the very key that made a valid signature are
/// refused, and so are points off the curve and the identity.
#[test]
fn ecdsa_public_keys_only_uncompressed_on_the_curve() {
    let (key, _) = p256_key(5);
    let msg = b"key forms";
    let sig = key.sign(P256, &[msg]).expect("sign");
    let pk = key.public_key().as_bytes().to_vec();
    assert_eq!((pk.len(), pk[0]), (65, 0x04));
    verify(P256, &pk, msg, &sig).expect("uncompressed");
    let y_odd = pk[64] & 1;
    let mut compressed = vec![0x02 | y_odd];
    compressed.extend_from_slice(&pk[1..33]);
    // The compressed form is a valid encoding of the same point elsewhere.
    assert_eq!(p256::elliptic_curve::sec1::ToSec1Point::to_sec1_point(p256::PublicKey::from_sec1_bytes(&compressed).expect("p256 decodes it").as_affine(), false).as_bytes(), &pk[..]);
    let mut hybrid = pk.clone();
    hybrid[0] = 0x06 | y_odd;
    let mut off_curve = pk.clone();
    off_curve[64] ^= 1;
    let mut refused = 0;
    for (what, bad) in [("compressed", compressed), ("hybrid", hybrid), ("off the curve", off_curve), ("identity", vec![0x00])] {
        assert_eq!(verify(P256, &bad, msg, &sig), Err(CryptoError::InvalidKey), "{what}");
        refused += 1;
    }
    assert_eq!(refused, 4);
}

/// 2^255 - 19 + 1, little-endian: a non-canonical encoding of y = 1 (the
/// identity, x = 0).
const ED_Y_P_PLUS_1: [u8; 32] = {
    let mut a = [0xff; 32];
    a[0] = 0xee;
    a[31] = 0x7f;
    a
};

/// The canonical encoding of the identity (y = 1, x = 0).
const ED_IDENTITY: [u8; 32] = {
    let mut a = [0; 32];
    a[0] = 1;
    a
};

/// The base point B's encoding (RFC 8032 §5.1) and S = 1: `[1]B = R + [k]O`
/// for the identity O, so (B, 1) "signs" every message for the identity key.
fn forged_for_identity() -> [u8; 64] {
    let mut sig = [0x66u8; 64];
    sig[0] = 0x58;
    sig[32..].fill(0);
    sig[32] = 1;
    sig
}

/// Ed25519 (RFC 8032 §5.1.7): the public key must decode, and decoding
/// fails on a non-canonical encoding (§5.1.3: y >= p, or the sign bit set
/// for x = 0). A small-order key in its canonical encoding is accepted:
/// RFC 8032 and RFC 9420 do not refuse it (mls-rs accepts it too, OpenMLS
/// refuses it), so the forged signature verifies under the identity
/// encoded canonically, and under no other encoding of it.
#[test]
fn ed25519_public_key_encodings_are_canonical() {
    let msg = b"any message at all";
    let sig = forged_for_identity();
    assert_eq!(verify(ED25519, &ED_IDENTITY, msg, &sig), Ok(()), "small-order key, canonical: accepted (documented)");
    let mut minus_zero = ED_IDENTITY;
    minus_zero[31] |= 0x80;
    let mut refused = 0;
    for (what, pk) in [("y = p + 1", ED_Y_P_PLUS_1), ("x = -0", minus_zero)] {
        assert_eq!(verify(ED25519, &pk, msg, &sig), Err(CryptoError::InvalidKey), "{what}");
        refused += 1;
    }
    // y = p - 1 (x = 0) with the sign bit set: -0 again, of the point of order 2.
    let mut minus_one = ED_Y_P_PLUS_1;
    minus_one[0] = 0xec;
    assert_ne!(verify(ED25519, &minus_one, msg, &sig), Err(CryptoError::InvalidKey), "y = p - 1, sign clear: a key");
    minus_one[31] |= 0x80;
    assert_eq!(verify(ED25519, &minus_one, msg, &sig), Err(CryptoError::InvalidKey), "y = p - 1 with the sign bit");
    refused += 1;
    assert_eq!(refused, 3);
}

/// Ed25519 signatures: S must be below L (RFC 8032 §5.1.7); S + L, which
/// satisfies the same equation, is refused. And an ordinary key signs and
/// verifies.
#[test]
fn ed25519_s_is_canonical() {
    // L = 2^252 + 27742317777372353535851937790883648493, little-endian.
    const L: [u8; 32] = {
        let mut l = [0u8; 32];
        let low: [u8; 16] = [0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14];
        let mut i = 0;
        while i < 16 {
            l[i] = low[i];
            i += 1;
        }
        l[31] = 0x10;
        l
    };
    let key = SignaturePrivateKey::from_slice(ED25519, &[0x42; 32]).expect("seed");
    let msg = b"canonical S";
    let sig = key.sign(ED25519, &[msg]).expect("sign").as_bytes().to_vec();
    let pk = key.public_key();
    verify(ED25519, pk.as_bytes(), msg, &sig).expect("valid");
    let mut s_plus_l = sig.clone();
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(sig[32 + i]) + u16::from(L[i]) + carry;
        s_plus_l[32 + i] = v as u8;
        carry = v >> 8;
    }
    assert_eq!(carry, 0);
    assert_eq!(verify(ED25519, pk.as_bytes(), msg, &s_plus_l), Err(CryptoError::InvalidSignature));
}
