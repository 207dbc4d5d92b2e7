//! The cost of each primitive alone on this CPU, the unit of the floors
//! that `boards/measure.sh` compares the member's operations with. Each line
//! reads `primitive NAME: N instructions, stack peak S bytes`. The names are
//! those of [`board_member::Floor`] in the scenario's suite: Ed25519 and
//! X25519 (suite 3), or ECDSA P-256 and P-256 ECDH (feature `suite-2`).

use core::hint::black_box;

use board_member::SUITE;
use mls_nostd::crypto::hpke::derive_key_pair;

use crate::measure::Meter;

fn show(meter: &Meter, name: &str, f: impl FnOnce()) {
    let ((), cost) = meter.measure(f);
    out!("primitive {}: {} instructions, stack peak {} bytes", name, cost.instructions, cost.stack_bytes);
}

/// Prints what `long` costs beyond `short`: the primitive on a KiB more of
/// input (its work per KiB, without what it does once per call).
fn per_kib<A, B>(meter: &Meter, name: &str, short: impl FnOnce() -> A, long: impl FnOnce() -> B) {
    let (_, short) = meter.measure(|| black_box(short()));
    let (_, long) = meter.measure(|| black_box(long()));
    let extra = long.instructions.saturating_sub(short.instructions);
    out!("primitive {}: {} instructions, stack peak {} bytes", name, extra, long.stack_bytes);
}

/// Measures and prints every primitive of [`board_member::Floor`].
#[cfg(not(feature = "suite-2"))]
#[inline(never)]
pub fn measure(meter: &Meter) {
    use ed25519_dalek::{Signer, SigningKey, Verifier};
    use x25519_dalek::{PublicKey, StaticSecret};
    let message = [0x5au8; 100];
    let seed = [7u8; 32];
    // Ed25519 key generation: SHA-512 of the seed, one base-point multiplication.
    let mut key = None;
    show(meter, "keygen", || key = Some(SigningKey::from_bytes(black_box(&seed))));
    let Some(key) = key else { return };
    // Signing with the expanded key (one base-point multiplication, two SHA-512).
    let mut signature = None;
    show(meter, "sign", || signature = Some(key.sign(black_box(&message))));
    let Some(signature) = signature else { return };
    let verifying = key.verifying_key();
    show(meter, "verify", || {
        black_box(verifying.verify(black_box(&message), &signature).is_ok());
    });
    // A KiB more of message: the hashing a signature adds per KiB.
    let long = [0x5au8; 100 + 1024];
    per_kib(
        meter,
        "sign_kib",
        || black_box(key.sign(black_box(&message))),
        || black_box(key.sign(black_box(&long))),
    );
    // Ed25519 verification hashes its message once with SHA-512 (RFC 8032
    // §5.1.7); measured alone, since the rest of a verification takes a
    // time that depends on the values (the difference of two verifications
    // would not be the hashing's).
    let two = [0x5au8; 2048];
    per_kib(
        meter,
        "verify_kib",
        || {
            use sha2::Digest;
            sha2::Sha512::digest(black_box(&two[..1024]))
        },
        || {
            use sha2::Digest;
            sha2::Sha512::digest(black_box(&two[..]))
        },
    );
    // X25519: one variable-base multiplication.
    let secret = StaticSecret::from([9u8; 32]);
    let public = PublicKey::from([9u8; 32]);
    show(meter, "dh", || {
        black_box(secret.diffie_hellman(black_box(&public)));
    });
    // HPKE GenerateKeyPair (RFC 9180 §4): a random scalar and one
    // base-point multiplication.
    show(meter, "keypair", || {
        black_box(PublicKey::from(&StaticSecret::from(*black_box(&seed))));
    });
    common(meter, &seed);
}

/// Measures and prints every primitive of [`board_member::Floor`], suite 2:
/// ECDSA P-256 through the core's signature API (what the core runs: the
/// DER encoding and, for a key, the scalar check and its public point), and
/// ECDH with `p256` as the core's `crypto::nist::dh` does it.
#[cfg(feature = "suite-2")]
#[inline(never)]
pub fn measure(meter: &Meter) {
    use mls_nostd::crypto::signature::SignaturePrivateKey;
    let message = [0x5au8; 100];
    let seed = [7u8; 32];
    // Key from a scalar: range check and one base-point multiplication.
    let mut key = None;
    show(meter, "keygen", || key = SignaturePrivateKey::from_slice(SUITE, black_box(&seed)).ok());
    let Some(key) = key else { return };
    // ECDSA signing: SHA-256, RFC 6979 nonce (HMAC-SHA-256), one base-point
    // multiplication, one inversion; DER encoding.
    let mut signature = None;
    show(meter, "sign", || signature = key.sign(SUITE, &[black_box(&message)]).ok());
    let Some(signature) = signature else { return };
    let public = key.public_key();
    show(meter, "verify", || {
        black_box(public.verify(SUITE, &[black_box(&message)], &signature).is_ok());
    });
    // A KiB more of message: the hashing a signature adds per KiB.
    let long = [0x5au8; 100 + 1024];
    per_kib(meter, "sign_kib", || key.sign(SUITE, &[black_box(&message)]).is_ok(), || key.sign(SUITE, &[black_box(&long)]).is_ok());
    // ECDSA P-256 verification hashes its message once with SHA-256 (the
    // suite's hash).
    let two = [0x5au8; 2048];
    per_kib(meter, "verify_kib", || SUITE.hash(&[black_box(&two[..1024])]), || SUITE.hash(&[black_box(&two[..])]));
    // ECDH: decode the peer's point, one variable-base multiplication.
    let Ok(secret) = p256::SecretKey::from_bytes(&[9u8; 32].into()) else { return };
    let peer = public.as_bytes();
    show(meter, "dh", || {
        let peer = p256::PublicKey::from_sec1_bytes(black_box(peer));
        black_box(peer.map(|p| (p.to_projective() * *secret.to_nonzero_scalar()).to_affine()).is_ok());
    });
    // HPKE GenerateKeyPair (RFC 9180 §4): a random scalar and one
    // base-point multiplication.
    show(meter, "keypair", || {
        let scalar: [u8; 32] = *black_box(&[9u8; 32]);
        black_box(p256::SecretKey::from_bytes(&scalar.into()).map(|k| k.public_key()).is_ok());
    });
    common(meter, &seed);
}

/// The suite's DeriveKeyPair, AEAD, HKDF and hash.
fn common(meter: &Meter, seed: &[u8; 32]) {
    // HPKE DeriveKeyPair (RFC 9180 §7.1.3): labeled HKDF, one base-point multiplication.
    show(meter, "dkp", || {
        black_box(derive_key_pair(SUITE, black_box(seed)).is_ok());
    });
    // The suite's AEAD per KiB, as the core calls it (suite 3:
    // ChaCha20Poly1305; suite 2: AES-128-GCM): sealing 2 KiB less sealing 1.
    let mut data = [0u8; 2048];
    let key = [1u8; 32];
    let key = &key[..SUITE.aead_key_len()];
    let (_, one) = meter.measure(|| black_box(SUITE.aead_seal(key, &[2; 12], &[], black_box(&mut data[..1024])).is_ok()));
    let (_, two) = meter.measure(|| black_box(SUITE.aead_seal(key, &[2; 12], &[], black_box(&mut data[..])).is_ok()));
    out!(
        "primitive aead_kib: {} instructions, stack peak {} bytes",
        two.instructions.saturating_sub(one.instructions),
        two.stack_bytes
    );
    // HMAC-based KDF (RFC 5869 with the suites' SHA-256), alone: an
    // expansion to 32 bytes with a 17-byte info (a label's KDFLabel), its
    // HMAC keyed from the secret first (`kdf`), or keyed already, for a
    // further expansion from the same secret (`kdf_more`: a node's second
    // child, a ratchet's nonce after its key). An extraction costs the same
    // (`kdf`, or `kdf_more` with an empty salt, whose keyed state is fixed).
    let info = [0x4du8; 17];
    show(meter, "kdf", || {
        let mut out = [0u8; 32];
        let hk = hkdf::Hkdf::<sha2::Sha256>::from_prk(black_box(seed));
        black_box(hk.map(|hk| hk.expand(&info, &mut out).is_ok()).is_ok());
    });
    if let Ok(hk) = hkdf::Hkdf::<sha2::Sha256>::from_prk(seed) {
        show(meter, "kdf_more", || {
            let mut out = [0u8; 32];
            black_box(hk.expand(black_box(&info), &mut out).is_ok());
        });
    }
    // The suite's hash per KiB (the transcript hash's, RFC 9420 §8.2):
    // hashing 2 KiB less hashing 1.
    per_kib(meter, "hash_kib", || SUITE.hash(&[black_box(&data[..1024])]), || SUITE.hash(&[black_box(&data[..])]));
}
