//! The labeled helpers of RFC 9420 §5.1–§5.2 and §8 (ExpandWithLabel,
//! DeriveSecret, DeriveTreeSecret, RefHash, SignWithLabel, EncryptWithLabel).
//!
//! Labels are prefixed with `"MLS 1.0 "`. The labeled structs (`KDFLabel`,
//! `RefHashInput`, `SignContent`, `EncryptContext`) are fed to the primitive
//! piece by piece, so no buffer holds them: a context or content may be as
//! large as the group (a GroupContext with extensions, an encrypted GroupInfo).

use super::hpke::{HpkePrivateKey, HpkePublicKey, HpkeSealed, KemOutput};
use super::signature::{Signature, SignaturePublicKey};
use super::signer::Signer;
use super::{CipherSuite, CryptoError, HashValue, Secret};
use rand_core::CryptoRng;

/// Every label of RFC 9420 starts with this.
pub const LABEL_PREFIX: &[u8] = b"MLS 1.0 ";

/// Reference label of KeyPackage references (§5.2).
pub const KEY_PACKAGE_REF_LABEL: &[u8] = b"MLS 1.0 KeyPackage Reference";
/// Reference label of proposal references (§5.2).
pub const PROPOSAL_REF_LABEL: &[u8] = b"MLS 1.0 Proposal Reference";

/// The minimal MLS varint prefix of a length, in at most 4 bytes.
#[derive(Clone, Copy)]
pub(crate) struct VarintPrefix {
    bytes: [u8; 4],
    len: usize,
}

impl VarintPrefix {
    const EMPTY: Self = Self { bytes: [0; 4], len: 0 };

    pub(crate) fn new(n: usize) -> Result<Self, CryptoError> {
        let mut bytes = [0u8; 4];
        let mut w = crate::codec::Writer::new(&mut bytes);
        w.write_varint(n).map_err(|_| CryptoError::InvalidLength)?;
        let len = w.len();
        Ok(Self { bytes, len })
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }
}

/// `ExpandWithLabel(secret, label, context, out.len())` (§8):
/// `KDF.Expand(secret, KDFLabel{length, "MLS 1.0 " + label, context}, length)`.
pub fn expand_with_label(
    suite: CipherSuite,
    secret: &[u8],
    label: &[u8],
    context: &[u8],
    out: &mut [u8],
) -> Result<(), CryptoError> {
    expand_with_label_parts(suite, secret, label, &[context], out)
}

/// Most pieces a context may be given in to [`expand_with_label_parts`].
pub const MAX_CONTEXT_PARTS: usize = 10;

/// `ExpandWithLabel` whose context is the concatenation of `context_parts`
/// (at most [`MAX_CONTEXT_PARTS`]), for contexts that are encoded structs.
pub fn expand_with_label_parts(
    suite: CipherSuite,
    secret: &[u8],
    label: &[u8],
    context_parts: &[&[u8]],
    out: &mut [u8],
) -> Result<(), CryptoError> {
    if context_parts.len() > MAX_CONTEXT_PARTS {
        return Err(CryptoError::InvalidLength);
    }
    let context_total = context_parts
        .iter()
        .try_fold(0usize, |acc, p| acc.checked_add(p.len()))
        .ok_or(CryptoError::InvalidLength)?;
    let (length, label_len, context_len) = kdf_label_head(label, context_total, out.len())?;
    let mut info: [&[u8]; 5 + MAX_CONTEXT_PARTS] = [&[]; 5 + MAX_CONTEXT_PARTS];
    let head: [&[u8]; 5] = [&length, label_len.as_bytes(), LABEL_PREFIX, label, context_len.as_bytes()];
    for (slot, p) in info.iter_mut().zip(head.iter().chain(context_parts)) {
        *slot = p;
    }
    suite.kdf_expand(secret, &info, out)
}

/// `ExpandWithLabel(secret, label, context, out.len())` for each
/// `(label, context, out)` of `jobs`, the KDF keyed from `secret` once
/// (§8): the outputs are those of as many [`expand_with_label`] calls.
pub fn expand_with_labels<const J: usize>(
    suite: CipherSuite,
    secret: &[u8],
    jobs: [(&[u8], &[u8], &mut [u8]); J],
) -> Result<(), CryptoError> {
    // Each job's KDFLabel: its length, the label's and the context's
    // length prefixes; then the parts in order.
    let mut heads = [([0u8; 2], VarintPrefix::EMPTY, VarintPrefix::EMPTY); J];
    for ((label, context, out), head) in jobs.iter().zip(heads.iter_mut()) {
        *head = kdf_label_head(label, context.len(), out.len())?;
    }
    let mut parts: [[&[u8]; 6]; J] = [[&[]; 6]; J];
    for ((job, head), p) in jobs.iter().zip(heads.iter()).zip(parts.iter_mut()) {
        *p = [&head.0, head.1.as_bytes(), LABEL_PREFIX, job.0, head.2.as_bytes(), job.1];
    }
    let mut expansions = jobs.map(|(_, _, out)| (&[][..], out));
    for (e, p) in expansions.iter_mut().zip(parts.iter()) {
        e.0 = &p[..];
    }
    suite.kdf_expand_each(secret, &mut expansions)
}

/// A KDFLabel's fields before its label and context bytes (§8): the output
/// `length`, the length prefixes of the full label ("MLS 1.0 " + `label`)
/// and of a context of `context_len` bytes.
fn kdf_label_head(label: &[u8], context_len: usize, out_len: usize) -> Result<([u8; 2], VarintPrefix, VarintPrefix), CryptoError> {
    let full_label = LABEL_PREFIX.len().checked_add(label.len()).ok_or(CryptoError::InvalidLength)?;
    Ok((
        u16::try_from(out_len).map_err(|_| CryptoError::InvalidLength)?.to_be_bytes(),
        VarintPrefix::new(full_label)?,
        VarintPrefix::new(context_len)?,
    ))
}

/// `ExpandWithLabel` into a [`Secret`] of `len` bytes (at most [`MAX_HASH_LEN`](super::MAX_HASH_LEN)).
pub fn expand_with_label_secret(
    suite: CipherSuite,
    secret: &[u8],
    label: &[u8],
    context: &[u8],
    len: usize,
) -> Result<Secret, CryptoError> {
    let mut out = Secret::zero(len)?;
    expand_with_label(suite, secret, label, context, out.as_mut_bytes())?;
    Ok(out)
}

/// `DeriveSecret(secret, label) = ExpandWithLabel(secret, label, "", Nh)` (§8).
pub fn derive_secret(suite: CipherSuite, secret: &[u8], label: &[u8]) -> Result<Secret, CryptoError> {
    expand_with_label_secret(suite, secret, label, &[], suite.hash_len())
}

/// `DeriveTreeSecret(secret, label, generation, length)` (§9):
/// `ExpandWithLabel(secret, label, uint32 generation, length)`.
pub fn derive_tree_secret(
    suite: CipherSuite,
    secret: &[u8],
    label: &[u8],
    generation: u32,
    len: usize,
) -> Result<Secret, CryptoError> {
    expand_with_label_secret(suite, secret, label, &generation.to_be_bytes(), len)
}

/// `RefHash(label, value) = Hash(RefHashInput{label, value})` (§5.2). The label
/// is used as given (the reference labels already carry "MLS 1.0 ").
pub fn ref_hash(suite: CipherSuite, label: &[u8], value: &[u8]) -> Result<HashValue, CryptoError> {
    let label_len = VarintPrefix::new(label.len())?;
    let value_len = VarintPrefix::new(value.len())?;
    Ok(suite.hash(&[label_len.as_bytes(), label, value_len.as_bytes(), value]))
}

/// `MakeKeyPackageRef(value)` over an encoded KeyPackage (§5.2).
pub fn make_key_package_ref(suite: CipherSuite, key_package: &[u8]) -> Result<HashValue, CryptoError> {
    ref_hash(suite, KEY_PACKAGE_REF_LABEL, key_package)
}

/// `MakeProposalRef(value)` over an encoded AuthenticatedContent (§5.2).
pub fn make_proposal_ref(suite: CipherSuite, authenticated_content: &[u8]) -> Result<HashValue, CryptoError> {
    ref_hash(suite, PROPOSAL_REF_LABEL, authenticated_content)
}

/// Most pieces a signed content may be given in (a FramedContentTBS: its
/// head, the content, and the GroupContext in the eight pieces of
/// [`crate::messages::EncodedGroupContext::parts`]).
pub const MAX_CONTENT_PARTS: usize = 10;

/// The pieces of a labeled struct `{ opaque label<V> = "MLS 1.0 " + label;
/// opaque content<V> }` (SignContent, EncryptContext), with the content itself
/// in up to [`MAX_CONTENT_PARTS`] pieces (borrowed, not copied: this is on
/// the stack under every signature verification).
struct LabeledContent<'a, 'c> {
    label_len: VarintPrefix,
    label: &'a [u8],
    content_len: VarintPrefix,
    content: &'c [&'a [u8]],
}

impl<'a, 'c> LabeledContent<'a, 'c> {
    fn new(label: &'a [u8], content_parts: &'c [&'a [u8]]) -> Result<Self, CryptoError> {
        if content_parts.len() > MAX_CONTENT_PARTS {
            return Err(CryptoError::InvalidLength);
        }
        let full = LABEL_PREFIX.len().checked_add(label.len()).ok_or(CryptoError::InvalidLength)?;
        let total = content_parts
            .iter()
            .try_fold(0usize, |acc, p| acc.checked_add(p.len()))
            .ok_or(CryptoError::InvalidLength)?;
        Ok(Self { label_len: VarintPrefix::new(full)?, label, content_len: VarintPrefix::new(total)?, content: content_parts })
    }

    /// Calls `f` with the pieces, as many as there are (a consumer such as
    /// HPKE's `LabeledExtract` takes a bounded number).
    fn with_parts<R>(&self, f: impl FnOnce(&[&[u8]]) -> R) -> R {
        let mut parts: [&[u8]; 4 + MAX_CONTENT_PARTS] = [&[]; 4 + MAX_CONTENT_PARTS];
        let [label_len, prefix, label, content_len, content @ ..] = &mut parts;
        *label_len = self.label_len.as_bytes();
        *prefix = LABEL_PREFIX;
        *label = self.label;
        *content_len = self.content_len.as_bytes();
        content.iter_mut().zip(self.content).for_each(|(slot, p)| *slot = p);
        f(parts.get(..4 + self.content.len()).unwrap_or(&[]))
    }
}

/// `SignWithLabel(key, label, content)` (§5.1.2).
pub fn sign_with_label(
    suite: CipherSuite,
    key: &impl Signer,
    label: &[u8],
    content: &[u8],
) -> Result<Signature, CryptoError> {
    sign_with_label_parts(suite, key, label, &[content])
}

/// `SignWithLabel` over a content given in pieces (e.g. a TBS struct whose
/// fields are encoded and whose context is appended).
pub fn sign_with_label_parts(
    suite: CipherSuite,
    key: &impl Signer,
    label: &[u8],
    content_parts: &[&[u8]],
) -> Result<Signature, CryptoError> {
    let sc = LabeledContent::new(label, content_parts)?;
    sc.with_parts(|parts| key.sign(suite, parts))
}

/// `VerifyWithLabel(key, label, content, signature)` (§5.1.2).
pub fn verify_with_label(
    suite: CipherSuite,
    key: &SignaturePublicKey,
    label: &[u8],
    content: &[u8],
    signature: &[u8],
) -> Result<(), CryptoError> {
    verify_with_label_parts(suite, key, label, &[content], signature)
}

/// Calls `f` with the pieces whose concatenation is the `SignContent`
/// (§5.1.2) of `label` and `content_parts`: what a batch verifier signs
/// over ([`crate::executor::Executor::verify_ed25519_batch`]).
pub(crate) fn with_sign_content<R>(
    label: &[u8],
    content_parts: &[&[u8]],
    f: impl FnOnce(&[&[u8]]) -> R,
) -> Result<R, CryptoError> {
    let sc = LabeledContent::new(label, content_parts)?;
    Ok(sc.with_parts(f))
}

/// `VerifyWithLabel` over a content given in pieces.
pub fn verify_with_label_parts(
    suite: CipherSuite,
    key: &SignaturePublicKey,
    label: &[u8],
    content_parts: &[&[u8]],
    signature: &[u8],
) -> Result<(), CryptoError> {
    let sc = LabeledContent::new(label, content_parts)?;
    sc.with_parts(|parts| key.verify(suite, parts, signature))
}

/// `EncryptWithLabel(key, label, context, plaintext)` (§5.1.3): HPKE base-mode
/// seal with `EncryptContext` as `info` and empty `aad`. `plaintext` is
/// encrypted in place; the ephemeral key comes from `rng`.
pub fn encrypt_with_label(
    suite: CipherSuite,
    key: &HpkePublicKey,
    label: &[u8],
    context: &[u8],
    plaintext: &mut [u8],
    rng: &mut impl CryptoRng,
) -> Result<HpkeSealed, CryptoError> {
    // `Nh` bytes of entropy: at least the security level of the suite.
    let mut ikm = Secret::zero(suite.hash_len())?;
    rng.fill_bytes(ikm.as_mut_bytes());
    let context = [context];
    let ec = LabeledContent::new(label, &context)?;
    let info_hash = ec.with_parts(|parts| super::hpke::info_hash(suite, parts))?;
    super::hpke::seal_base(suite, key, &info_hash, &[], plaintext, ikm.as_bytes())
}

/// `DecryptWithLabel(key, label, context, kem_output, ciphertext)` (§5.1.3):
/// checks `tag` (the last bytes of the HPKE ciphertext) and decrypts
/// `ciphertext` (the bytes before it) in place.
pub fn decrypt_with_label(
    suite: CipherSuite,
    key: &HpkePrivateKey,
    label: &[u8],
    context: &[u8],
    kem_output: &KemOutput,
    ciphertext: &mut [u8],
    tag: &[u8],
) -> Result<(), CryptoError> {
    let context = [context];
    let ec = LabeledContent::new(label, &context)?;
    let info_hash = ec.with_parts(|parts| super::hpke::info_hash(suite, parts))?;
    super::hpke::open_base(suite, key, kem_output, &info_hash, &[], ciphertext, tag)
}
