//! transcript-hashes.json (RFC 9420 §8.2, §6.1): the confirmed transcript
//! hash, the confirmation tag (and a wrong one refused), the interim
//! transcript hash.
use super::{
    CaseOutcome, CaseResult, Context, Stats, ensure, ensure_bytes, hex_field, secret_field, suite_or_return,
};
use mls_nostd::transcript;
use serde_json::Value;

/// Checks one case.
pub fn check_case(case: &Value) -> CaseResult {
    let suite = suite_or_return!(case);
    let ac = hex_field(case, "authenticated_content")?;
    // AuthenticatedContent = wire_format || FramedContent || signature<V> ||
    // confirmation_tag<V>; the tag is Nh bytes, so its field is the last
    // Nh bytes and their varint prefix (1 byte below 64, else 2: SHA-512's
    // 64 is `0x40 0x40`). ConfirmedTranscriptHashInput is everything before.
    let nh = suite.hash_len();
    let prefix: &[u8] = if nh < 64 { &[nh as u8] } else { &[0x40 | (nh >> 8) as u8, nh as u8] };
    ensure!(ac.len() > prefix.len() + nh, "authenticated_content too short ({} bytes)", ac.len());
    let (input, tag_field) = ac.split_at(ac.len() - prefix.len() - nh);
    ensure_bytes!(tag_field[..prefix.len()], prefix, "confirmation_tag length prefix");
    let tag = &tag_field[prefix.len()..];

    let confirmed =
        transcript::confirmed_transcript_hash(suite, &hex_field(case, "interim_transcript_hash_before")?, &[input]);
    ensure_bytes!(
        confirmed.as_bytes(),
        hex_field(case, "confirmed_transcript_hash_after")?,
        "confirmed transcript hash"
    );
    let key = secret_field(case, "confirmation_key")?;
    ensure!(transcript::verify_confirmation_tag(suite, &key, confirmed.as_bytes(), tag), "confirmation tag");
    let mut bad = tag.to_vec();
    bad[0] ^= 1;
    ensure!(
        !transcript::verify_confirmation_tag(suite, &key, confirmed.as_bytes(), &bad),
        "wrong confirmation tag accepted"
    );
    let interim =
        transcript::interim_transcript_hash(suite, confirmed.as_bytes(), tag).ctx("interim transcript hash")?;
    ensure_bytes!(interim.as_bytes(), hex_field(case, "interim_transcript_hash_after")?, "interim transcript hash");
    Ok(CaseOutcome::Ran(Stats::default()))
}
