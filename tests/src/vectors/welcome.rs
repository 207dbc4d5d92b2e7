//! welcome.json (RFC 9420 §12.4.3.1, FORMAT.md "Welcome"): the Welcome
//! decrypts with the init key, its GroupInfo is signed by the given key and
//! carries the confirmation tag recomputed from the joined epoch; the same
//! Welcome is refused to another KeyPackage, with a wrong init key, with a
//! wrong signer key and in another suite.
use super::{CaseOutcome, CaseResult, Context, Stats, ensure, ensure_bytes, ensure_eq, hex_field, suite_or_return};
use crate::test_leaf;
use mls_nostd::codec::Decode;
use mls_nostd::crypto::CipherSuite;
use mls_nostd::crypto::hpke::HpkePrivateKey;
use mls_nostd::crypto::signature::SignaturePublicKey;
use mls_nostd::messages::{GroupInfoError, MlsMessage, MlsMessageBody, WelcomeError, process_welcome};
use mls_nostd::psk::NoPsks;
use mls_nostd::transcript::{confirmation_tag, interim_transcript_hash};
use serde_json::Value;

/// Checks one case.
pub fn check_case(case: &Value) -> CaseResult {
    let suite = suite_or_return!(case);
    let init_priv = HpkePrivateKey::from_slice(suite, &hex_field(case, "init_priv")?).ctx("init_priv")?;
    let signer_pub = SignaturePublicKey::from_slice(&hex_field(case, "signer_pub")?).ctx("signer_pub")?;
    let kp_bytes = hex_field(case, "key_package")?;
    let MlsMessageBody::KeyPackage(kp) = MlsMessage::decode_exact(&kp_bytes).ctx("key_package")?.body else {
        return Err("key_package is not an MLSMessage(KeyPackage)".to_string());
    };
    ensure_bytes!(kp.tbs.init_key, init_priv.public_key(suite).as_bytes(), "init key pair");
    let kp_ref = kp.reference(suite).ctx("KeyPackageRef")?;
    let welcome_bytes = hex_field(case, "welcome")?;
    let MlsMessageBody::Welcome(welcome) = MlsMessage::decode_exact(&welcome_bytes).ctx("welcome")?.body else {
        return Err("welcome is not an MLSMessage(Welcome)".to_string());
    };

    let mut buf = vec![0u8; welcome_bytes.len()];
    let decrypted =
        process_welcome(suite, kp_ref.as_bytes(), &init_priv, &welcome, &NoPsks, &mut buf).ctx("processing")?;
    let gi = *decrypted.group_info();
    ensure_eq!(gi.verify_signature(suite, &signer_pub), Ok(()), "GroupInfo signature");
    // A key that did not sign it.
    let (_, other_sk) = test_leaf(suite, b"other", 99, None);
    ensure_eq!(
        gi.verify_signature(suite, &other_sk.public_key()),
        Err(GroupInfoError::InvalidSignature),
        "GroupInfo signature with another key"
    );
    let verified = decrypted.verify(&signer_pub).ctx("verifying")?;
    // The confirmation tag, recomputed as FORMAT.md says.
    let cth = verified.group_context.confirmed_transcript_hash;
    let tag = confirmation_tag(suite, &verified.epoch_secrets.confirmation_key, cth);
    ensure_bytes!(tag.as_bytes(), gi.tbs.confirmation_tag, "confirmation tag");
    ensure_eq!(
        verified.interim_transcript_hash,
        interim_transcript_hash(suite, cth, gi.tbs.confirmation_tag).ctx("interim transcript hash")?,
        "interim transcript hash"
    );
    ensure!(verified.psks.is_empty(), "PSKs in the GroupSecrets");

    // The same Welcome refused: to another KeyPackage, with our wrong
    // key, with a wrong signer key, in another suite.
    let mut buf = vec![0u8; welcome_bytes.len()];
    let r = process_welcome(suite, &[0u8; 32], &init_priv, &welcome, &NoPsks, &mut buf);
    ensure_eq!(r.err(), Some(WelcomeError::NotForUs), "to another KeyPackage");
    let wrong = crate::hpke_key(suite, &[9u8]);
    let r = process_welcome(suite, kp_ref.as_bytes(), &wrong, &welcome, &NoPsks, &mut buf);
    ensure_eq!(r.err(), Some(WelcomeError::GroupSecretsDecryptionFailed), "with a wrong init key");
    let d =
        process_welcome(suite, kp_ref.as_bytes(), &init_priv, &welcome, &NoPsks, &mut buf).ctx("processing again")?;
    ensure_eq!(
        d.verify(&other_sk.public_key()).err(),
        Some(WelcomeError::InvalidGroupInfoSignature),
        "with a wrong signer key"
    );
    let other_suite = CipherSuite::ALL.iter().copied().find(|s| *s != suite).ctx("another suite")?;
    let r = process_welcome(other_suite, kp_ref.as_bytes(), &init_priv, &welcome, &NoPsks, &mut buf);
    ensure_eq!(r.err(), Some(WelcomeError::WrongCipherSuite), "in another suite");
    Ok(CaseOutcome::Ran(Stats::default()))
}
