//! Transcript hashes (RFC 9420 §8.2) and the confirmation tag (§6.1).
//!
//! ```text
//! confirmed_transcript_hash_[n] = Hash(interim_transcript_hash_[n-1] || ConfirmedTranscriptHashInput_[n])
//! interim_transcript_hash_[n]   = Hash(confirmed_transcript_hash_[n] || InterimTranscriptHashInput_[n])
//! ```
//! `ConfirmedTranscriptHashInput` is `wire_format || FramedContent || signature<V>`
//! of the Commit; `InterimTranscriptHashInput` is `confirmation_tag<V>`.

use crate::crypto::labeled::VarintPrefix;
use crate::crypto::{CipherSuite, CryptoError, HashValue, Secret};

/// The confirmed transcript hash after a Commit whose encoded
/// `ConfirmedTranscriptHashInput` is given in pieces.
pub fn confirmed_transcript_hash(suite: CipherSuite, interim_before: &[u8], input_parts: &[&[u8]]) -> HashValue {
    let mut h = suite.hasher();
    h.update(interim_before);
    for p in input_parts {
        h.update(p);
    }
    h.finish()
}

/// The interim transcript hash after a Commit with `confirmation_tag`.
pub fn interim_transcript_hash(
    suite: CipherSuite,
    confirmed: &[u8],
    confirmation_tag: &[u8],
) -> Result<HashValue, CryptoError> {
    let len = VarintPrefix::new(confirmation_tag.len())?;
    Ok(suite.hash(&[confirmed, len.as_bytes(), confirmation_tag]))
}

/// `confirmation_tag = MAC(confirmation_key, confirmed_transcript_hash)` (§6.1).
pub fn confirmation_tag(suite: CipherSuite, confirmation_key: &Secret, confirmed: &[u8]) -> HashValue {
    suite.mac(confirmation_key.as_bytes(), &[confirmed])
}

/// Checks a received confirmation tag, in constant time.
pub fn verify_confirmation_tag(suite: CipherSuite, confirmation_key: &Secret, confirmed: &[u8], tag: &[u8]) -> bool {
    suite.verify_mac(confirmation_key.as_bytes(), &[confirmed], tag)
}
