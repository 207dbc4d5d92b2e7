//! psk_secret.json (RFC 9420 §8.4): the PSK secret of a list of external PSKs.
use super::{CaseOutcome, CaseResult, Context, Stats, array_field, ensure_bytes, hex_field, suite_or_return};
use mls_nostd::psk::{PreSharedKeyId, Psk, psk_secret};
use serde_json::Value;

/// Checks one case.
pub fn check_case(case: &Value) -> CaseResult {
    let suite = suite_or_return!(case);
    let raw = array_field(case, "psks")?
        .iter()
        .map(|p| Ok((hex_field(p, "psk_id")?, hex_field(p, "psk_nonce")?, hex_field(p, "psk")?)))
        .collect::<Result<Vec<_>, String>>()?;
    let psks: Vec<(PreSharedKeyId, &[u8])> = raw
        .iter()
        .map(|(id, nonce, psk)| {
            (PreSharedKeyId { psk: Psk::External { psk_id: id }, psk_nonce: nonce }, psk.as_slice())
        })
        .collect();
    let out = psk_secret(suite, &psks).ctx("psk_secret")?;
    ensure_bytes!(out.as_bytes(), hex_field(case, "psk_secret")?, "psk_secret with {} PSKs", psks.len());
    Ok(CaseOutcome::Ran(Stats::default()))
}
