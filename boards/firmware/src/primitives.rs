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

/// Prints what `long` (the primitive on 1,124 bytes) costs beyond `short`
/// (on 100): the hashing it does per KiB of message.
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
    show(meter, "verify_kib", || {
        use sha2::Digest;
        black_box(sha2::Sha512::digest(black_box(&long[..1024])));
    });
    // X25519: one variable-base multiplication.
    let secret = StaticSecret::from([9u8; 32]);
    let public = PublicKey::from([9u8; 32]);
    show(meter, "dh", || {
        black_box(secret.diffie_hellman(black_box(&public)));
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
    // ECDSA P-256 verification hashes its message once with SHA-256.
    show(meter, "verify_kib", || {
        black_box(SUITE.hash(&[black_box(&long[..1024])]));
    });
    // ECDH: decode the peer's point, one variable-base multiplication.
    let Ok(secret) = p256::SecretKey::from_bytes(&[9u8; 32].into()) else { return };
    let peer = public.as_bytes();
    show(meter, "dh", || {
        let peer = p256::PublicKey::from_sec1_bytes(black_box(peer));
        black_box(peer.map(|p| (p.to_projective() * *secret.to_nonzero_scalar()).to_affine()).is_ok());
    });
    common(meter, &seed);
}

/// The suite's DeriveKeyPair and AEAD, through the core.
fn common(meter: &Meter, seed: &[u8; 32]) {
    // HPKE DeriveKeyPair (RFC 9180 §7.1.3): labeled HKDF, one base-point multiplication.
    show(meter, "dkp", || {
        black_box(derive_key_pair(SUITE, black_box(seed)).is_ok());
    });
    // The suite's AEAD over 1 KiB, as the core calls it (suite 3:
    // ChaCha20Poly1305; suite 2: AES-128-GCM).
    let mut data = [0u8; 1024];
    let key = [1u8; 32];
    let key = &key[..SUITE.aead_key_len()];
    show(meter, "aead_kib", || {
        black_box(SUITE.aead_seal(key, &[2; 12], &[], black_box(&mut data)).is_ok());
    });
    // One HMAC-based KDF call through the core: DeriveSecret (RFC 9420
    // §8), an ExpandWithLabel with a short label and no context, its HMAC
    // keyed afresh (the unit of the key schedule's, the secret tree's and
    // HPKE's derivations).
    show(meter, "kdf", || {
        black_box(mls_nostd::crypto::labeled::derive_secret(SUITE, black_box(seed), b"tree").is_ok());
    });
    // The suite's hash over 1 KiB (the transcript hash's, RFC 9420 §8.2).
    show(meter, "hash_kib", || {
        black_box(SUITE.hash(&[black_box(&data)]));
    });
}
