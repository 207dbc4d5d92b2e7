//! crypto-basics.json (RFC 9420 §5, §8, §9): RefHash, ExpandWithLabel,
//! DeriveSecret, DeriveTreeSecret, SignWithLabel and EncryptWithLabel, each
//! against the given values and in a round trip of our own.
use super::{
    CaseOutcome, CaseResult, Context, Stats, ensure, ensure_bytes, ensure_eq, field, hex_field, str_field,
    suite_or_return, u32_field, u64_field,
};
use crate::TestRng;
use mls_nostd::crypto::AEAD_TAG_LEN;
use mls_nostd::crypto::hpke::{HpkePrivateKey, HpkePublicKey, KemOutput};
use mls_nostd::crypto::labeled::*;
use mls_nostd::crypto::signature::{SignaturePrivateKey, SignaturePublicKey};
use serde_json::Value;

/// Checks one case.
pub fn check_case(case: &Value) -> CaseResult {
    let suite = suite_or_return!(case);

    let v = field(case, "ref_hash")?;
    let out = ref_hash(suite, str_field(v, "label")?.as_bytes(), &hex_field(v, "value")?).ctx("ref_hash")?;
    ensure_bytes!(out.as_bytes(), hex_field(v, "out")?, "ref_hash");

    let v = field(case, "expand_with_label")?;
    let mut out = vec![0u8; usize::try_from(u64_field(v, "length")?).ctx("length")?];
    expand_with_label(
        suite,
        &hex_field(v, "secret")?,
        str_field(v, "label")?.as_bytes(),
        &hex_field(v, "context")?,
        &mut out,
    )
    .ctx("expand_with_label")?;
    ensure_bytes!(out, hex_field(v, "out")?, "expand_with_label");

    let v = field(case, "derive_secret")?;
    let out = derive_secret(suite, &hex_field(v, "secret")?, str_field(v, "label")?.as_bytes()).ctx("derive_secret")?;
    ensure_bytes!(out.as_bytes(), hex_field(v, "out")?, "derive_secret");

    let v = field(case, "derive_tree_secret")?;
    let out = derive_tree_secret(
        suite,
        &hex_field(v, "secret")?,
        str_field(v, "label")?.as_bytes(),
        u32_field(v, "generation")?,
        usize::try_from(u64_field(v, "length")?).ctx("length")?,
    )
    .ctx("derive_tree_secret")?;
    ensure_bytes!(out.as_bytes(), hex_field(v, "out")?, "derive_tree_secret");

    let v = field(case, "sign_with_label")?;
    let sk = SignaturePrivateKey::from_slice(suite, &hex_field(v, "priv")?).ctx("sign_with_label priv")?;
    let pk = SignaturePublicKey::from_slice(&hex_field(v, "pub")?).ctx("sign_with_label pub")?;
    ensure_eq!(sk.public_key(), pk, "sign_with_label: key pair");
    let label = str_field(v, "label")?.as_bytes();
    let content = hex_field(v, "content")?;
    let given = hex_field(v, "signature")?;
    verify_with_label(suite, &pk, label, &content, &given).ctx("given signature")?;
    let sig = sign_with_label(suite, &sk, label, &content).ctx("sign_with_label")?;
    verify_with_label(suite, &pk, label, &content, &sig).ctx("own signature")?;
    // EdDSA is deterministic (RFC 8032 §5.1.6, §5.2.6): the same bytes.
    if !suite.signature_scheme().is_ecdsa() {
        ensure_bytes!(sig.as_bytes(), given, "own EdDSA signature");
    }
    ensure!(
        verify_with_label(suite, &pk, b"other", &content, &sig).is_err(),
        "label is bound"
    );

    let v = field(case, "encrypt_with_label")?;
    let sk = HpkePrivateKey::from_slice(suite, &hex_field(v, "priv")?).ctx("encrypt_with_label priv")?;
    let pk = HpkePublicKey::from_slice(&hex_field(v, "pub")?).ctx("encrypt_with_label pub")?;
    ensure_eq!(sk.public_key(suite), pk, "encrypt_with_label: key pair");
    let label = str_field(v, "label")?.as_bytes();
    let context = hex_field(v, "context")?;
    let plaintext = hex_field(v, "plaintext")?;
    let kem_output = KemOutput::from_slice(&hex_field(v, "kem_output")?).ctx("kem_output")?;
    let mut ct = hex_field(v, "ciphertext")?;
    ensure_eq!(ct.len(), plaintext.len() + AEAD_TAG_LEN, "ciphertext length");
    let (body, tag) = ct.split_at_mut(plaintext.len());
    decrypt_with_label(suite, &sk, label, &context, &kem_output, body, tag).ctx("given ciphertext")?;
    ensure_bytes!(body, plaintext, "decrypted given ciphertext");

    let mut buf = plaintext.clone();
    let sealed =
        encrypt_with_label(suite, &pk, label, &context, &mut buf, &mut TestRng(7)).ctx("encrypt_with_label")?;
    ensure!(buf != plaintext, "encrypt_with_label left the plaintext");
    decrypt_with_label(suite, &sk, label, &context, &sealed.kem_output, &mut buf, &sealed.tag).ctx("own ciphertext")?;
    ensure_bytes!(buf, plaintext, "own ciphertext round trip");
    Ok(CaseOutcome::Ran(Stats::default()))
}
