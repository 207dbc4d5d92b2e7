//! The cost of each primitive alone on this CPU, the unit of the floors
//! that `boards/measure.sh` compares the member's operations with. Each line
//! reads `primitive NAME: N instructions, stack peak S bytes`.

use core::hint::black_box;

use board_member::SUITE;
use ed25519_dalek::{Signer, SigningKey, Verifier};
use mls_nostd::crypto::hpke::derive_key_pair;
use x25519_dalek::{PublicKey, StaticSecret};

use crate::measure::Meter;

fn show(meter: &Meter, name: &str, f: impl FnOnce()) {
    let ((), cost) = meter.measure(f);
    out!("primitive {}: {} instructions, stack peak {} bytes", name, cost.instructions, cost.stack_bytes);
}

/// Measures and prints every primitive of [`board_member::Floor`].
#[inline(never)]
pub fn measure(meter: &Meter) {
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
    // X25519: one variable-base multiplication.
    let secret = StaticSecret::from([9u8; 32]);
    let public = PublicKey::from([9u8; 32]);
    show(meter, "dh", || {
        black_box(secret.diffie_hellman(black_box(&public)));
    });
    // HPKE DeriveKeyPair (RFC 9180 §7.1.3): labeled HKDF, one base-point multiplication.
    show(meter, "dkp", || {
        black_box(derive_key_pair(SUITE, black_box(&seed)).is_ok());
    });
    // ChaCha20Poly1305 over 1 KiB, as the core calls it.
    let mut data = [0u8; 1024];
    show(meter, "aead_kib", || {
        black_box(SUITE.aead_seal(&[1; 32], &[2; 12], &[], black_box(&mut data)).is_ok());
    });
}
