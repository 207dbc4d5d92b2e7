//! key-schedule.json (RFC 9420 §8, §8.3, §8.5): for each epoch the
//! GroupContext, joiner and welcome secrets, every epoch secret, the external
//! public key and an exported secret; each epoch's init secret feeds the next.
//!
//! Counter: `epochs` (epochs checked).
use super::{
    CaseOutcome, CaseResult, Context, Stats, array_field, ensure_bytes, field, hex_field, secret_field, str_field,
    suite_or_return, u64_field,
};
use mls_nostd::codec::Encode;
use mls_nostd::group_context::GroupContext;
use mls_nostd::key_schedule::{EpochSecrets, joiner_secret, welcome_secret};
use serde_json::Value;

/// Checks one case.
pub fn check_case(case: &Value) -> CaseResult {
    let suite = suite_or_return!(case);
    let group_id = hex_field(case, "group_id")?;
    let mut init = secret_field(case, "initial_init_secret")?;
    let mut stats = Stats::default();
    for (n, e) in array_field(case, "epochs")?.iter().enumerate() {
        let check = || -> Result<_, String> {
            let tree_hash = hex_field(e, "tree_hash")?;
            let cth = hex_field(e, "confirmed_transcript_hash")?;
            let gc = GroupContext {
                cipher_suite: suite,
                group_id: &group_id,
                epoch: n as u64,
                tree_hash: &tree_hash,
                confirmed_transcript_hash: &cth,
                extensions: &[],
            };
            let mut buf = [0u8; 512];
            let gc = gc.encode_to(&mut buf).ctx("encode GroupContext")?;
            ensure_bytes!(gc, hex_field(e, "group_context")?, "group_context");

            let joiner = joiner_secret(suite, &init, &secret_field(e, "commit_secret")?, gc).ctx("joiner_secret")?;
            ensure_bytes!(joiner.as_bytes(), hex_field(e, "joiner_secret")?, "joiner_secret");
            let psk = secret_field(e, "psk_secret")?;
            let welcome = welcome_secret(suite, &joiner, &psk).ctx("welcome_secret")?;
            ensure_bytes!(welcome.as_bytes(), hex_field(e, "welcome_secret")?, "welcome_secret");

            let s = EpochSecrets::derive(suite, &joiner, &psk, gc).ctx("epoch secrets")?;
            for (got, key) in [
                (&s.init_secret, "init_secret"),
                (&s.sender_data_secret, "sender_data_secret"),
                (&s.encryption_secret, "encryption_secret"),
                (&s.exporter_secret, "exporter_secret"),
                (&s.epoch_authenticator, "epoch_authenticator"),
                (&s.external_secret, "external_secret"),
                (&s.confirmation_key, "confirmation_key"),
                (&s.membership_key, "membership_key"),
                (&s.resumption_psk, "resumption_psk"),
            ] {
                ensure_bytes!(got.as_bytes(), hex_field(e, key)?, "{key}");
            }
            let (_, external_pub) = s.external_key_pair(suite).ctx("external key pair")?;
            ensure_bytes!(external_pub.as_bytes(), hex_field(e, "external_pub")?, "external_pub");

            // The exporter label looks like hex but is used as its ASCII bytes.
            let x = field(e, "exporter")?;
            let mut out = vec![0u8; usize::try_from(u64_field(x, "length")?).ctx("exporter length")?];
            s.export(suite, str_field(x, "label")?.as_bytes(), &hex_field(x, "context")?, &mut out).ctx("export")?;
            ensure_bytes!(out, hex_field(x, "secret")?, "exporter");
            Ok(s.init_secret.clone())
        };
        init = check().map_err(|e| format!("epoch {n}: {e}"))?;
        stats.add("epochs", 1);
    }
    Ok(CaseOutcome::Ran(stats))
}
