//! Our HPKE base mode (crypto::hpke) against the `hpke` crate as an oracle
//! (RFC 9180): both directions, every AEAD, and DeriveKeyPair, for every
//! DHKEM the crate has (X25519, P-256, P-384, P-521; X448 it lacks: the
//! official MLS vectors of suites 4 and 6 and `x448_*` below cover it), plus
//! the RFC 9180 Appendix A vectors of the P-256 and P-521 suites.
#![cfg(all(feature = "suite-1", feature = "suite-2", feature = "suite-3", feature = "suite-5", feature = "suite-7"))]
use hpke::aead::{Aead, AesGcm128, AesGcm256, ChaCha20Poly1305};
use hpke::inout::InOutBuf;
use hpke::kdf::{HkdfSha256, HkdfSha384, HkdfSha512, Kdf};
use hpke::kem::{DhP256HkdfSha256, DhP384HkdfSha384, DhP521HkdfSha512, X25519HkdfSha256};
use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};
use mls_nostd::crypto::hpke::{derive_key_pair, info_hash, open_base, seal_base, HpkePrivateKey, HpkePublicKey};
use mls_nostd::crypto::{CipherSuite, CryptoError};

type TheirKem = X25519HkdfSha256;

mod common;
use common::TestRng as Rng;

fn roundtrips<K: Kem, A: Aead, D: Kdf>(suite: CipherSuite, seed: u64) {
    let nsk = suite.kem().private_len();
    let ikm: Vec<u8> = (0..nsk).map(|i| (seed as u8).wrapping_mul(31).wrapping_add(i as u8)).collect();
    let (our_sk, our_pk) = derive_key_pair(suite, &ikm).unwrap();
    let (their_sk, their_pk) = K::derive_keypair(&ikm);
    assert_eq!(our_sk.as_bytes(), &their_sk.to_bytes()[..], "DeriveKeyPair private key, {suite:?}");
    assert_eq!(our_pk.as_bytes(), &their_pk.to_bytes()[..], "DeriveKeyPair public key, {suite:?}");

    let info = format!("info {seed}").into_bytes();
    let aad = b"aad";
    let plaintext: Vec<u8> = (0..(seed as usize % 300)).map(|i| i as u8).collect();
    let ih = info_hash(suite, &[&info]).unwrap();

    // Ours seals, theirs opens.
    let mut buf = plaintext.clone();
    let sealed = seal_base(suite, &our_pk, &ih, aad, &mut buf, &[seed as u8; 32]).unwrap();
    let enc = K::EncappedKey::from_bytes(sealed.kem_output.as_bytes()).unwrap();
    let tag = hpke::aead::AeadTag::<A>::from_bytes(&sealed.tag).unwrap();
    hpke::single_shot_open_inout_detached::<A, D, K>(
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
    let (enc, tag) = hpke::single_shot_seal_inout_detached_with_rng::<A, D, K>(
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
        roundtrips::<X25519HkdfSha256, AesGcm128, HkdfSha256>(CipherSuite::X25519Aes128GcmSha256Ed25519, seed);
        roundtrips::<X25519HkdfSha256, ChaCha20Poly1305, HkdfSha256>(
            CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519,
            seed,
        );
        roundtrips::<DhP256HkdfSha256, AesGcm128, HkdfSha256>(CipherSuite::P256Aes128GcmSha256P256, seed);
        roundtrips::<DhP384HkdfSha384, AesGcm256, HkdfSha384>(CipherSuite::P384Aes256GcmSha384P384, seed);
        roundtrips::<DhP521HkdfSha512, AesGcm256, HkdfSha512>(CipherSuite::P521Aes256GcmSha512P521, seed);
    }
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

/// RFC 9180 Appendix A: base mode, `ikmE`/`ikmR` through DeriveKeyPair, the
/// first encryption (sequence number 0) and the first export.
fn rfc9180_base(suite: CipherSuite, v: [&str; 12]) {
    let [ikm_e, pk_em, sk_em, ikm_r, pk_rm, sk_rm, info, pt, aad, ct, exp_ctx, exported] = v;
    let (sk_e, pk_e) = derive_key_pair(suite, &unhex(ikm_e)).unwrap();
    assert_eq!(sk_e.as_bytes(), unhex(sk_em), "skEm");
    assert_eq!(pk_e.as_bytes(), unhex(pk_em), "pkEm");
    let (sk_r, pk_r) = derive_key_pair(suite, &unhex(ikm_r)).unwrap();
    assert_eq!(sk_r.as_bytes(), unhex(sk_rm), "skRm");
    assert_eq!(pk_r.as_bytes(), unhex(pk_rm), "pkRm");
    let ih = info_hash(suite, &[&unhex(info)]).unwrap();
    let mut buf = unhex(pt);
    let sealed = seal_base(suite, &pk_r, &ih, &unhex(aad), &mut buf, &unhex(ikm_e)).unwrap();
    assert_eq!(sealed.kem_output, pk_e, "enc");
    buf.extend_from_slice(&sealed.tag);
    assert_eq!(buf, unhex(ct), "ct of sequence number 0");
    let n = buf.len() - 16;
    let (body, tag) = buf.split_at_mut(n);
    open_base(suite, &sk_r, &pk_e, &ih, &unhex(aad), body, tag).unwrap();
    assert_eq!(body, unhex(pt));
    let mut out = vec![0u8; 32];
    mls_nostd::crypto::hpke::export_base_receiver(suite, &sk_r, &pk_e, &ih, &unhex(exp_ctx), &mut out).unwrap();
    assert_eq!(out, unhex(exported), "export");
}

// Values of RFC 9180 Appendix A (extracted from the RFC text), in the
// order ikmE, pkEm, skEm, ikmR, pkRm, skRm, info, pt, aad, ct (sequence
// number 0), exporter_context, exported_value (L = 32).

#[test]
fn rfc9180_p256_vector() {
    // DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-128-GCM (suite 2's HPKE).
    rfc9180_base(
        CipherSuite::P256Aes128GcmSha256P256,
        [
            "4270e54ffd08d79d5928020af4686d8f6b7d35dbe470265f1f5aa22816ce860e",
            "04a92719c6195d5085104f469a8b9814d5838ff72b60501e2c4466e5e67b325ac98536d7b61a1af4b78e5b7f951c0900be863c403ce65c9bfcb9382657222d18c4",
            "4995788ef4b9d6132b249ce59a77281493eb39af373d236a1fe415cb0c2d7beb",
            "668b37171f1072f3cf12ea8a236a45df23fc13b82af3609ad1e354f6ef817550",
            "04fe8c19ce0905191ebc298a9245792531f26f0cece2460639e8bc39cb7f706a826a779b4cf969b8a0e539c7f62fb3d30ad6aa8f80e30f1d128aafd68a2ce72ea0",
            "f3ce7fdae57e1a310d87f1ebbde6f328be0a99cdbcadf4d6589cf29de4b8ffd2",
            "4f6465206f6e2061204772656369616e2055726e",
            "4265617574792069732074727574682c20747275746820626561757479",
            "436f756e742d30",
            "5ad590bb8baa577f8619db35a36311226a896e7342a6d836d8b7bcd2f20b6c7f9076ac232e3ab2523f39513434",
            "",
            "5e9bc3d236e1911d95e65b576a8a86d478fb827e8bdfe77b741b289890490d4d",
        ],
    );
}

#[test]
fn rfc9180_p521_vector() {
    // DHKEM(P-521, HKDF-SHA512), HKDF-SHA512, AES-256-GCM (suite 5's HPKE):
    // DeriveKeyPair's bitmask 0x01.
    rfc9180_base(
        CipherSuite::P521Aes256GcmSha512P521,
        [
            "7f06ab8215105fc46aceeb2e3dc5028b44364f960426eb0d8e4026c2f8b5d7e7a986688f1591abf5ab753c357a5d6f0440414b4ed4ede71317772ac98d9239f70904",
            "040138b385ca16bb0d5fa0c0665fbbd7e69e3ee29f63991d3e9b5fa740aab8900aaeed46ed73a49055758425a0ce36507c54b29cc5b85a5cee6bae0cf1c21f2731ece2013dc3fb7c8d21654bb161b463962ca19e8c654ff24c94dd2898de12051f1ed0692237fb02b2f8d1dc1c73e9b366b529eb436e98a996ee522aef863dd5739d2f29b0",
            "014784c692da35df6ecde98ee43ac425dbdd0969c0c72b42f2e708ab9d535415a8569bdacfcc0a114c85b8e3f26acf4d68115f8c91a66178cdbd03b7bcc5291e374b",
            "2ad954bbe39b7122529f7dde780bff626cd97f850d0784a432784e69d86eccaade43b6c10a8ffdb94bf943c6da479db137914ec835a7e715e36e45e29b587bab3bf1",
            "0401b45498c1714e2dce167d3caf162e45e0642afc7ed435df7902ccae0e84ba0f7d373f646b7738bbbdca11ed91bdeae3cdcba3301f2457be452f271fa6837580e661012af49583a62e48d44bed350c7118c0d8dc861c238c72a2bda17f64704f464b57338e7f40b60959480c0e58e6559b190d81663ed816e523b6b6a418f66d2451ec64",
            "01462680369ae375e4b3791070a7458ed527842f6a98a79ff5e0d4cbde83c27196a3916956655523a6a2556a7af62c5cadabe2ef9da3760bb21e005202f7b2462847",
            "4f6465206f6e2061204772656369616e2055726e",
            "4265617574792069732074727574682c20747275746820626561757479",
            "436f756e742d30",
            "170f8beddfe949b75ef9c387e201baf4132fa7374593dfafa90768788b7b2b200aafcc6d80ea4c795a7c5b841a",
            "",
            "05e2e5bd9f0c30832b80a279ff211cc65eceb0d97001524085d609ead60d0412",
        ],
    );
}

#[test]
fn low_order_public_key_is_refused() {
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let ih = info_hash(suite, &[b"x"]).unwrap();
    // The all-zero u-coordinate gives an all-zero shared secret (RFC 9180 §7.1.4).
    let zero = HpkePublicKey::from_slice(&[0u8; 32]).unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(seal_base(suite, &zero, &ih, &[], &mut buf, &[1; 32]), Err(CryptoError::InvalidSharedSecret));
    let sk = HpkePrivateKey::from_slice(suite, &[7u8; 32]).unwrap();
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
