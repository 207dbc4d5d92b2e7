//! Our HPKE base mode (crypto::hpke) against the `hpke` crate as an oracle
//! (RFC 9180): both directions, both AEADs, and DeriveKeyPair.
use hpke::aead::{AesGcm128, ChaCha20Poly1305};
use hpke::inout::InOutBuf;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};
use mls_nostd::crypto::hpke::{derive_key_pair, info_hash, open_base, seal_base, HpkePrivateKey, HpkePublicKey};
use mls_nostd::crypto::{CipherSuite, CryptoError};

type TheirKem = X25519HkdfSha256;

mod common;
use common::TestRng as Rng;

fn roundtrips<A: hpke::aead::Aead>(suite: CipherSuite, seed: u64) {
    let ikm: Vec<u8> = (0..32).map(|i| (seed as u8).wrapping_mul(31).wrapping_add(i)).collect();
    let (our_sk, our_pk) = derive_key_pair(suite, &ikm).unwrap();
    let (their_sk, their_pk) = TheirKem::derive_keypair(&ikm);
    assert_eq!(our_sk.as_bytes(), &their_sk.to_bytes()[..], "DeriveKeyPair private key");
    assert_eq!(our_pk.as_bytes(), &their_pk.to_bytes()[..], "DeriveKeyPair public key");

    let info = format!("info {seed}").into_bytes();
    let aad = b"aad";
    let plaintext: Vec<u8> = (0..(seed as usize % 300)).map(|i| i as u8).collect();
    let ih = info_hash(suite, &[&info]).unwrap();

    // Ours seals, theirs opens.
    let mut buf = plaintext.clone();
    let sealed = seal_base(suite, &our_pk, &ih, aad, &mut buf, &[seed as u8; 32]).unwrap();
    let enc = <TheirKem as Kem>::EncappedKey::from_bytes(sealed.kem_output.as_bytes()).unwrap();
    let tag = hpke::aead::AeadTag::<A>::from_bytes(&sealed.tag).unwrap();
    hpke::single_shot_open_inout_detached::<A, HkdfSha256, TheirKem>(
        &OpModeR::Base,
        &their_sk,
        &enc,
        &info,
        InOutBuf::from(&mut buf[..]),
        aad,
        &tag,
    )
    .expect("hpke crate opens our ciphertext");
    assert_eq!(buf, plaintext);

    // Theirs seals, ours opens; a flipped bit is refused and the buffer wiped.
    let mut buf = plaintext.clone();
    let (enc, tag) = hpke::single_shot_seal_inout_detached_with_rng::<A, HkdfSha256, TheirKem>(
        &OpModeS::Base,
        &their_pk,
        &info,
        InOutBuf::from(&mut buf[..]),
        aad,
        &mut Rng(seed),
    )
    .unwrap();
    let enc = HpkePublicKey::from_slice(&enc.to_bytes()).unwrap();
    let tag = tag.to_bytes().to_vec();
    let mut tampered = buf.clone();
    let mut bad_tag = tag.clone();
    bad_tag[0] ^= 1;
    assert_eq!(
        open_base(suite, &our_sk, &enc, &ih, aad, &mut tampered, &bad_tag),
        Err(CryptoError::DecryptionFailed)
    );
    assert!(tampered.iter().all(|b| *b == 0));
    open_base(suite, &our_sk, &enc, &ih, aad, &mut buf, &tag).expect("we open the hpke crate's ciphertext");
    assert_eq!(buf, plaintext);
}

#[test]
fn hpke_agrees_with_the_hpke_crate() {
    for seed in 0..40 {
        roundtrips::<AesGcm128>(CipherSuite::X25519Aes128GcmSha256Ed25519, seed);
        roundtrips::<ChaCha20Poly1305>(CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519, seed);
    }
}

#[test]
fn low_order_public_key_is_refused() {
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let ih = info_hash(suite, &[b"x"]).unwrap();
    // The all-zero u-coordinate gives an all-zero shared secret (RFC 9180 §7.1.4).
    let zero = HpkePublicKey::from_slice(&[0u8; 32]).unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(seal_base(suite, &zero, &ih, &[], &mut buf, &[1; 32]), Err(CryptoError::InvalidSharedSecret));
    let sk = HpkePrivateKey::from_slice(&[7u8; 32]).unwrap();
    assert_eq!(open_base(suite, &sk, &zero, &ih, &[], &mut buf, &[0; 16]), Err(CryptoError::InvalidSharedSecret));
}

/// HPKE secret export (RFC 9180 §5.3), used by MLS external joins (§8.3),
/// against the `hpke` crate.
#[test]
fn export_agrees_with_the_hpke_crate() {
    use mls_nostd::crypto::hpke::{export_base_receiver, export_base_sender};
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let (our_sk, our_pk) = derive_key_pair(suite, &[5; 32]).unwrap();
    let (their_sk, _) = TheirKem::derive_keypair(&[5; 32]);
    let ih = info_hash(suite, &[]).unwrap();
    let mut ours = [0u8; 32];
    let enc = export_base_sender(suite, &our_pk, &ih, b"MLS 1.0 external init secret", &mut ours, &[9; 32]).unwrap();
    let their_enc = <TheirKem as Kem>::EncappedKey::from_bytes(enc.as_bytes()).unwrap();
    let ctx = hpke::setup_receiver::<ChaCha20Poly1305, HkdfSha256, TheirKem>(&OpModeR::Base, &their_sk, &their_enc, &[]).unwrap();
    let mut theirs = [0u8; 32];
    ctx.export(b"MLS 1.0 external init secret", &mut theirs).unwrap();
    assert_eq!(ours, theirs);
    let mut back = [0u8; 32];
    export_base_receiver(suite, &our_sk, &enc, &ih, b"MLS 1.0 external init secret", &mut back).unwrap();
    assert_eq!(back, ours);
}
