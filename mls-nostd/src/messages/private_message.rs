//! Protecting and unprotecting PrivateMessages (RFC 9420 §6.3): the content
//! and its auth data encrypted under the sender's ratchet key with a reuse
//! guard (§6.3.1), the sender encrypted under a key derived from a sample of
//! that ciphertext (§6.3.2).
//!
//! No buffer besides the message's own: protection writes the
//! `MLSMessage(PrivateMessage)` into the caller's buffer and encrypts it
//! there; unprotection decrypts the received message in place and returns
//! views into it. The FramedContent is laid out contiguously in that buffer,
//! right before the content it ends with (sender: in the space the
//! PrivateMessage header leaves before the ciphertext; receiver: in the space
//! the decrypted sender data frees), so it is signed as one piece (§6.1) and
//! is at hand for the transcript hash (§8.2).
//!
//! Unprotection checks, in order: group id and epoch, sender data, that the
//! sender is a non-blank member (caller's lookup), the ratchet key of that
//! generation, content decryption, zero padding, the content's structure,
//! the signature. Only then is the key consumed (§9.2), so forged or broken
//! messages burn no keys; a failed message is zeroed where it was decrypted.

use core::ops::Range;

use rand_core::CryptoRng;
use zeroize::Zeroize;

use crate::codec::{CodecError, Decode, Encode, Reader, Writer};
use crate::crypto::signature::{Signature, SignaturePublicKey};
use crate::crypto::signer::Signer;
use crate::crypto::{AEAD_TAG_LEN, CipherSuite, Secret};
use crate::group_context::PROTOCOL_VERSION_MLS10;
use crate::secret_tree::{RatchetKey, RatchetKind, SecretTree, SecretTreeError, sender_data_key_nonce};
use crate::tree_math::LeafIndex;

use super::authenticated_content::{AuthenticatedContent, EncodedGroupContext, FramedContentTbs, ProtectionError};
use super::framing::{
    Content, ContentType, FramedContent, FramedContentAuthData, FramedContentHead, Sender, WIRE_FORMAT_PRIVATE_MESSAGE,
};

/// Bytes of `SenderData` (§6.3.2): `uint32 leaf_index`, `uint32 generation`,
/// `opaque reuse_guard[4]`.
pub const SENDER_DATA_LEN: usize = 12;
/// Bytes of `encrypted_sender_data`: SenderData and the AEAD tag.
pub const ENCRYPTED_SENDER_DATA_LEN: usize = SENDER_DATA_LEN + AEAD_TAG_LEN;
/// Bytes of the reuse guard (§6.3.1).
pub const REUSE_GUARD_LEN: usize = 4;
/// Bytes of the MLSMessage head (version, wire format).
const MLS_MESSAGE_HEAD: usize = 4;
/// Bytes of a member `Sender` (type and leaf index).
const MEMBER_SENDER_LEN: usize = 5;

/// Where the per-sender ratchet keys of an epoch come from (§9): the secret
/// tree, or a wrapper of it that persists ratchet positions.
pub trait MessageKeys {
    /// The key for the next message `leaf` sends on `kind`; the ratchet moves
    /// past it (see [`SecretTree::next_sending_key`]).
    fn next_sending_key(&mut self, leaf: LeafIndex, kind: RatchetKind) -> Result<RatchetKey, SecretTreeError>;
    /// The key of `generation` received from `leaf`, not consumed (see
    /// [`SecretTree::receiving_key`]).
    fn receiving_key(
        &mut self,
        leaf: LeafIndex,
        kind: RatchetKind,
        generation: u32,
    ) -> Result<RatchetKey, SecretTreeError>;
    /// Deletes the key of `generation` once its message is accepted (see
    /// [`SecretTree::consume`]).
    fn consume(&mut self, leaf: LeafIndex, kind: RatchetKind, generation: u32) -> Result<(), SecretTreeError>;
}

impl<const N: usize, const K: usize, const E: usize> MessageKeys for SecretTree<N, K, E> {
    fn next_sending_key(&mut self, leaf: LeafIndex, kind: RatchetKind) -> Result<RatchetKey, SecretTreeError> {
        SecretTree::next_sending_key(self, leaf, kind)
    }

    fn receiving_key(
        &mut self,
        leaf: LeafIndex,
        kind: RatchetKind,
        generation: u32,
    ) -> Result<RatchetKey, SecretTreeError> {
        SecretTree::receiving_key(self, leaf, kind, generation)
    }

    fn consume(&mut self, leaf: LeafIndex, kind: RatchetKind, generation: u32) -> Result<(), SecretTreeError> {
        SecretTree::consume(self, leaf, kind, generation)
    }
}

/// The epoch's secrets that protect PrivateMessages.
pub struct PrivateMessageKeys<'k> {
    /// The per-sender ratchets (§9).
    pub secret_tree: &'k mut dyn MessageKeys,
    /// `sender_data_secret` (§8, §6.3.2).
    pub sender_data_secret: &'k Secret,
}

impl core::fmt::Debug for PrivateMessageKeys<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PrivateMessageKeys(..)")
    }
}

/// The ratchet of a content type (§6.3.1): application data on the
/// application ratchet, proposals and commits on the handshake ratchet.
pub fn ratchet_kind(content_type: ContentType) -> RatchetKind {
    match content_type {
        ContentType::Application => RatchetKind::Application,
        ContentType::Proposal | ContentType::Commit => RatchetKind::Handshake,
    }
}

/// The nonce of §6.3.1: the ratchet's nonce with its first bytes XORed with
/// the reuse guard.
fn guarded_nonce(key: &RatchetKey, reuse_guard: &[u8; REUSE_GUARD_LEN]) -> [u8; crate::crypto::AEAD_NONCE_LEN] {
    let mut nonce = key.nonce;
    for (n, g) in nonce.iter_mut().zip(reuse_guard) {
        *n ^= g;
    }
    nonce
}

/// Bytes of the variable-length integer `n` (§2.1.2).
fn varint_len(n: usize) -> Result<usize, CodecError> {
    crate::codec::varint_size(n).ok_or(CodecError::VarintTooLarge)
}

/// Bytes of an `opaque<V>` of `n` bytes.
fn opaque_len(n: usize) -> Result<usize, CodecError> {
    varint_len(n)?.checked_add(n).ok_or(CodecError::VarintTooLarge)
}

/// Bytes of the FramedContentAuthData of a content type (a signature of
/// `signature_len` bytes, and a `Nh`-byte confirmation tag for commits).
fn auth_len(suite: CipherSuite, content_type: ContentType, signature_len: usize) -> Result<usize, CodecError> {
    let signature = opaque_len(signature_len)?;
    match content_type {
        ContentType::Commit => signature.checked_add(opaque_len(suite.hash_len())?).ok_or(CodecError::VarintTooLarge),
        ContentType::Application | ContentType::Proposal => Ok(signature),
    }
}

/// A layout that contradicts itself: cannot happen for a message that
/// decoded, but reported rather than trusted.
const INCONSISTENT: ProtectionError = ProtectionError::Malformed(CodecError::InvalidValue);

/// A message size that overflows `usize`: no buffer can hold it.
const OVERFLOW: ProtectionError = ProtectionError::BufferTooSmall { needed: usize::MAX };

fn add(a: usize, b: usize) -> Result<usize, ProtectionError> {
    a.checked_add(b).ok_or(OVERFLOW)
}

/// A PrivateMessage whose content is laid out and signed, waiting for its
/// confirmation tag (commits) and encryption.
#[derive(Debug)]
pub struct SignedPrivateMessage<'o, 'c> {
    out: &'o mut [u8],
    suite: CipherSuite,
    head: FramedContentHead<'c>,
    leaf: LeafIndex,
    signature: Signature,
    /// Where the FramedContent starts (it ends with the body).
    content_start: usize,
    /// Where the plaintext (body, auth, padding) starts.
    body_start: usize,
    body_len: usize,
    auth_len: usize,
    padding: usize,
}

/// Lays `content` out in `out` as the start of an `MLSMessage(PrivateMessage)`
/// followed by `padding` zero bytes, and signs it with `signer` (§6.1). The
/// sender must be a member (§6.3.2) and the content must belong to the group
/// and epoch of `context`.
pub fn sign<'o, 'c>(
    context: &EncodedGroupContext<'c>,
    signer: &impl Signer,
    content: &FramedContent<'c>,
    padding: usize,
    out: &'o mut [u8],
) -> Result<SignedPrivateMessage<'o, 'c>, ProtectionError> {
    let head = content.head();
    let mut counter = Writer::counter();
    content.content.encode_body(&mut counter)?;
    let body_len = counter.len();
    let suite = context.cipher_suite();
    let start = body_start(suite, &head, body_len, padding)?;
    let max_signature = suite.signature_scheme().max_signature_len();
    // The whole message's size is known: a shortfall reports it.
    let total = add(start, ciphertext_len(suite, head.content_type, body_len, padding, max_signature)?)?;
    let short = ProtectionError::BufferTooSmall { needed: total };
    let mut w = Writer::new(out.get_mut(start..total).and_then(|r| r.get_mut(..body_len)).ok_or(short)?);
    content.content.encode_body(&mut w)?;
    sign_placed(context, signer, &head, body_len, padding, start, out)
}

/// Bytes of the PrivateMessage of a content with `head` before its
/// ciphertext's length prefix: the MLSMessage head, group_id, epoch,
/// content_type, authenticated_data and encrypted_sender_data.
fn header_len(head: &FramedContentHead<'_>) -> Result<usize, ProtectionError> {
    [opaque_len(head.group_id.len())?, 8, 1, opaque_len(head.authenticated_data.len())?, opaque_len(ENCRYPTED_SENDER_DATA_LEN)?]
        .iter()
        .try_fold(MLS_MESSAGE_HEAD, |acc, n| acc.checked_add(*n))
        .ok_or(OVERFLOW)
}

/// Bytes of the ciphertext of a body of `body_len` bytes with `padding` and
/// a signature of `signature_len`.
fn ciphertext_len(
    suite: CipherSuite,
    content_type: ContentType,
    body_len: usize,
    padding: usize,
    signature_len: usize,
) -> Result<usize, ProtectionError> {
    add(add(add(body_len, auth_len(suite, content_type, signature_len)?)?, padding)?, AEAD_TAG_LEN)
}

/// Where the body of `body_len` bytes starts in the PrivateMessage of a
/// content with `head` and `padding` bytes of padding when the signature is
/// the longest of the suite (the ciphertext's length prefix counts).
pub(crate) fn body_start(
    suite: CipherSuite,
    head: &FramedContentHead<'_>,
    body_len: usize,
    padding: usize,
) -> Result<usize, ProtectionError> {
    let max_signature = suite.signature_scheme().max_signature_len();
    add(header_len(head)?, varint_len(ciphertext_len(suite, head.content_type, body_len, padding, max_signature)?)?)
}

/// [`sign`] for a content whose body (`body_len` bytes) the caller wrote in
/// `out` at `body_at`: [`body_start`] for a body as long or longer (a
/// Commit's path is built in its place from the room it may take; a shorter
/// body may shorten the ciphertext's length prefix, and moves down with it).
/// The FramedContent's other fields are written right before the body and
/// the whole signed where it is.
pub(crate) fn sign_placed<'o, 'c>(
    context: &EncodedGroupContext<'c>,
    signer: &impl Signer,
    head: &FramedContentHead<'c>,
    body_len: usize,
    padding: usize,
    body_at: usize,
    out: &'o mut [u8],
) -> Result<SignedPrivateMessage<'o, 'c>, ProtectionError> {
    context.check(head.group_id, head.epoch)?;
    let Sender::Member(leaf) = head.sender else {
        return Err(ProtectionError::InvalidSender);
    };
    let suite = context.cipher_suite();
    let content_type = head.content_type;
    // Where the body starts, the auth data's length and the message's, for a
    // signature of `signature_len` bytes (ECDSA's DER signatures vary in length).
    let out_len = out.len();
    let header_len = header_len(head)?;
    let layout = |signature_len: usize| -> Result<(usize, usize, usize), ProtectionError> {
        let ciphertext_len = ciphertext_len(suite, content_type, body_len, padding, signature_len)?;
        let body_start = add(header_len, varint_len(ciphertext_len)?)?;
        let total = add(body_start, ciphertext_len)?;
        if out_len < total {
            return Err(ProtectionError::BufferTooSmall { needed: total });
        }
        Ok((body_start, auth_len(suite, content_type, signature_len)?, total))
    };
    let (body_start, _, total) = layout(suite.signature_scheme().max_signature_len())?;
    let short = ProtectionError::BufferTooSmall { needed: total };
    let content_end = add(body_start, body_len)?;
    // A body laid out for a longer one moves down to its place.
    if body_at != body_start
        && (body_at < body_start || !crate::codec::move_within(out, body_at..add(body_at, body_len)?, body_start))
    {
        return Err(INCONSISTENT);
    }
    // The FramedContent ends where the body starts: its head (group_id,
    // epoch, sender, authenticated_data, content_type) is shorter than the
    // PrivateMessage header, so it fits before.
    let content_head = [
        opaque_len(head.group_id.len())?,
        8,
        MEMBER_SENDER_LEN,
        opaque_len(head.authenticated_data.len())?,
        1,
    ]
    .iter()
    .try_fold(0usize, |acc, n| acc.checked_add(*n))
    .ok_or(short)?;
    let content_start = body_start.checked_sub(content_head).ok_or(short)?;
    let mut w = Writer::new(out.get_mut(content_start..body_start).ok_or(short)?);
    crate::codec::Encode::encode(head, &mut w)?;
    if w.len() != content_head {
        return Err(INCONSISTENT);
    }
    let encoded = out.get(content_start..content_end).ok_or(short)?;
    let tbs = FramedContentTbs::with_context(WIRE_FORMAT_PRIVATE_MESSAGE, encoded, context)?;
    let signature = tbs.sign(suite, signer)?;
    // A signature shorter than the longest may shorten the ciphertext's
    // length prefix: then the content moves left with the body's start.
    let (new_body_start, auth_len, _) = layout(signature.len())?;
    let shift = body_start.checked_sub(new_body_start).ok_or(INCONSISTENT)?;
    let content_start = content_start.checked_sub(shift).ok_or(INCONSISTENT)?;
    let body_start = new_body_start;
    if shift > 0 && !crate::codec::move_within(out, add(content_start, shift)?..content_end, content_start) {
        return Err(INCONSISTENT);
    }
    Ok(SignedPrivateMessage {
        out,
        suite,
        head: *head,
        leaf: LeafIndex(leaf),
        signature,
        content_start,
        body_start,
        body_len,
        auth_len,
        padding,
    })
}

impl<'o> SignedPrivateMessage<'o, '_> {
    /// The encoded FramedContent, as signed (input to the confirmed
    /// transcript hash, §8.2).
    pub fn content_bytes(&self) -> &[u8] {
        self.out.get(self.content_start..self.body_start.saturating_add(self.body_len)).unwrap_or(&[])
    }

    /// The content's body (its `select` part), as signed.
    pub(crate) fn body(&self) -> &[u8] {
        self.out.get(self.body_start..self.body_start.saturating_add(self.body_len)).unwrap_or(&[])
    }

    /// The signature over `FramedContentTBS`.
    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// Appends the auth data and the padding, takes the sender's next key
    /// for the content type from `keys`, draws the reuse guard from `rng`,
    /// encrypts content and sender data (§6.3.1, §6.3.2), and returns the
    /// whole MLSMessage. `confirmation_tag` must be given (`Nh` bytes) exactly
    /// for commits. A failure before the key is taken leaves the ratchet as it
    /// was.
    pub fn finish(
        self,
        confirmation_tag: Option<&[u8]>,
        keys: &mut PrivateMessageKeys<'_>,
        rng: &mut impl CryptoRng,
    ) -> Result<&'o [u8], ProtectionError> {
        let suite = self.suite;
        let content_type = self.head.content_type;
        let auth = FramedContentAuthData { signature: &self.signature, confirmation_tag };
        if !auth.fits(content_type) || confirmation_tag.is_some_and(|t| t.len() != suite.hash_len()) {
            return Err(ProtectionError::ConfirmationTagMismatch);
        }
        let auth_start = add(self.body_start, self.body_len)?;
        let padding_start = add(auth_start, self.auth_len)?;
        let tag_start = add(padding_start, self.padding)?;
        let total = add(tag_start, AEAD_TAG_LEN)?;
        let short = ProtectionError::BufferTooSmall { needed: total };
        let (header, rest) = self.out.split_at_mut_checked(self.body_start).ok_or(short)?;

        // The PrivateMessage header, over the FramedContent (no longer needed).
        let mut w = Writer::new(header);
        w.write_u16(PROTOCOL_VERSION_MLS10)?;
        w.write_u16(WIRE_FORMAT_PRIVATE_MESSAGE)?;
        w.write_opaque(self.head.group_id)?;
        w.write_u64(self.head.epoch)?;
        content_type.encode(&mut w)?;
        let sender_data_aad_end = w.len();
        w.write_opaque(self.head.authenticated_data)?;
        let content_aad_end = w.len();
        w.write_varint(ENCRYPTED_SENDER_DATA_LEN)?;
        let sender_data_start = w.len();
        w.write_bytes(&[0; ENCRYPTED_SENDER_DATA_LEN])?;
        w.write_varint(total - self.body_start)?;
        if w.len() != self.body_start {
            return Err(ProtectionError::Malformed(CodecError::InvalidValue));
        }

        // PrivateMessageContent: the body is in place; auth and zero padding.
        let plaintext_len = tag_start - self.body_start;
        let (plaintext, tail) = rest.split_at_mut_checked(plaintext_len).ok_or(short)?;
        let mut w = Writer::new(plaintext.get_mut(self.body_len..).ok_or(short)?);
        auth.encode(&mut w)?;
        if w.len() != self.auth_len {
            return Err(ProtectionError::Malformed(CodecError::InvalidValue));
        }
        plaintext.get_mut(self.auth_len + self.body_len..).ok_or(short)?.fill(0);

        // Content encryption (§6.3.1).
        let key = keys.secret_tree.next_sending_key(self.leaf, ratchet_kind(content_type))?;
        let mut reuse_guard = [0u8; REUSE_GUARD_LEN];
        rng.fill_bytes(&mut reuse_guard);
        let mut nonce = guarded_nonce(&key, &reuse_guard);
        let content_aad = header.get(MLS_MESSAGE_HEAD..content_aad_end).ok_or(short)?;
        let tag = suite.aead_seal(key.key.as_bytes(), &nonce, content_aad, plaintext)?;
        nonce.zeroize();
        tail.get_mut(..AEAD_TAG_LEN).ok_or(short)?.copy_from_slice(&tag);

        // Sender data encryption (§6.3.2), keyed by a sample of the ciphertext.
        let ciphertext = rest.get(..plaintext_len + AEAD_TAG_LEN).ok_or(short)?;
        let (sd_key, sd_nonce) = sender_data_key_nonce(suite, keys.sender_data_secret, ciphertext)?;
        let (aad_part, sender_data) =
            header.split_at_mut_checked(sender_data_start).ok_or(short)?;
        let sender_data_aad =
            aad_part.get(MLS_MESSAGE_HEAD..sender_data_aad_end).ok_or(short)?;
        let (plain, sd_tag) = sender_data
            .get_mut(..ENCRYPTED_SENDER_DATA_LEN)
            .and_then(|s| s.split_at_mut_checked(SENDER_DATA_LEN))
            .ok_or(short)?;
        let mut w = Writer::new(plain);
        w.write_u32(self.leaf.0)?;
        w.write_u32(key.generation)?;
        w.write_bytes(&reuse_guard)?;
        let tag = suite.aead_seal(sd_key.as_bytes(), &sd_nonce, sender_data_aad, plain)?;
        sd_tag.copy_from_slice(&tag);
        reuse_guard.zeroize();
        self.out.get(..total).ok_or(short)
    }
}

/// Protects a proposal or application message as an
/// `MLSMessage(PrivateMessage)` in `out`, with `padding` zero bytes of
/// padding, and returns it: [`sign`], then [`SignedPrivateMessage::finish`]
/// without a confirmation tag. Commits need their confirmation tag, which
/// depends on the signature: use the two steps.
pub fn protect<'o>(
    context: &EncodedGroupContext<'_>,
    keys: &mut PrivateMessageKeys<'_>,
    signer: &impl Signer,
    content: &FramedContent<'_>,
    padding: usize,
    rng: &mut impl CryptoRng,
    out: &'o mut [u8],
) -> Result<&'o [u8], ProtectionError> {
    sign(context, signer, content, padding, out)?.finish(None, keys, rng)
}

/// Positions in an encoded `MLSMessage(PrivateMessage)`.
struct Layout {
    /// `opaque group_id<V>` with its length prefix.
    group_id: Range<usize>,
    epoch: u64,
    content_type: ContentType,
    /// End of `SenderDataAAD` (group_id, epoch, content_type).
    sender_data_aad_end: usize,
    /// `opaque authenticated_data<V>` with its length prefix; ends
    /// `PrivateContentAAD`.
    authenticated_data: Range<usize>,
    /// The body of `encrypted_sender_data`.
    encrypted_sender_data: Range<usize>,
    /// The body of `ciphertext`: the message's last bytes.
    ciphertext_start: usize,
}

impl Layout {
    fn read(message: &[u8]) -> Result<Self, ProtectionError> {
        let mut r = Reader::new(message);
        let pos = |r: &Reader<'_>| message.len() - r.remaining().len();
        if r.read_u16()? != PROTOCOL_VERSION_MLS10 {
            return Err(ProtectionError::Malformed(CodecError::InvalidValue));
        }
        if r.read_u16()? != WIRE_FORMAT_PRIVATE_MESSAGE {
            return Err(ProtectionError::WrongWireFormat);
        }
        let start = pos(&r);
        r.read_opaque()?;
        let group_id = start..pos(&r);
        let epoch = r.read_u64()?;
        let content_type = ContentType::decode(&mut r)?;
        let sender_data_aad_end = pos(&r);
        r.read_opaque()?;
        let authenticated_data = sender_data_aad_end..pos(&r);
        let encrypted_sender_data = r.read_opaque()?.len();
        let encrypted_sender_data = pos(&r) - encrypted_sender_data..pos(&r);
        let ciphertext = r.read_opaque()?.len();
        r.finish()?;
        Ok(Self {
            group_id,
            epoch,
            content_type,
            sender_data_aad_end,
            authenticated_data,
            encrypted_sender_data,
            ciphertext_start: message.len() - ciphertext,
        })
    }
}

/// `SenderData` (§6.3.2), decrypted.
struct SenderData {
    leaf: LeafIndex,
    generation: u32,
    reuse_guard: [u8; REUSE_GUARD_LEN],
}

impl Drop for SenderData {
    fn drop(&mut self) {
        self.reuse_guard.zeroize();
    }
}

/// Decrypts the sender data (§6.3.2) of `message` laid out as `layout`.
fn open_sender_data(
    suite: CipherSuite,
    sender_data_secret: &Secret,
    message: &[u8],
    layout: &Layout,
) -> Result<SenderData, ProtectionError> {
    let ciphertext = message.get(layout.ciphertext_start..).ok_or(ProtectionError::ContentDecryptionFailed)?;
    let aad =
        message.get(MLS_MESSAGE_HEAD..layout.sender_data_aad_end).ok_or(ProtectionError::SenderDataDecryptionFailed)?;
    let sealed = message
        .get(layout.encrypted_sender_data.clone())
        .filter(|s| s.len() == ENCRYPTED_SENDER_DATA_LEN)
        .ok_or(ProtectionError::SenderDataDecryptionFailed)?;
    let (sealed, tag) = sealed.split_at(SENDER_DATA_LEN);
    let mut plain = [0u8; SENDER_DATA_LEN];
    plain.copy_from_slice(sealed);
    let (key, nonce) = sender_data_key_nonce(suite, sender_data_secret, ciphertext)?;
    suite
        .aead_open(key.as_bytes(), &nonce, aad, &mut plain, tag)
        .map_err(|_| ProtectionError::SenderDataDecryptionFailed)?;
    let mut r = Reader::new(&plain);
    let sender_data =
        SenderData { leaf: LeafIndex(r.read_u32()?), generation: r.read_u32()?, reuse_guard: r.read_array()? };
    plain.zeroize();
    Ok(sender_data)
}

/// The epoch of an encoded `MLSMessage(PrivateMessage)`; none for another
/// message or a malformed one.
pub(crate) fn epoch_of(message: &[u8]) -> Option<u64> {
    Layout::read(message).ok().map(|l| l.epoch)
}

/// The sending leaf of an encoded `MLSMessage(PrivateMessage)`, from its
/// sender data (§6.3.2) under `sender_data_secret`: what a store reads in
/// before the message is processed (a secret tree's pool). Nothing is
/// consumed; none if it does not decrypt.
pub(crate) fn sender_of(suite: CipherSuite, sender_data_secret: &Secret, message: &[u8]) -> Option<LeafIndex> {
    let layout = Layout::read(message).ok()?;
    open_sender_data(suite, sender_data_secret, message, &layout).ok().map(|d| d.leaf)
}

/// Splits a decrypted PrivateMessageContent (§6.3.1) of `content_type`:
/// returns the lengths of the body and of the auth data, after checking that
/// the padding after them is all zero.
fn split_plaintext(plaintext: &[u8], content_type: ContentType) -> Result<(usize, usize), ProtectionError> {
    let mut r = Reader::new(plaintext);
    Content::decode_body(&mut r, content_type)?;
    let body_len = plaintext.len() - r.remaining().len();
    FramedContentAuthData::decode_for(&mut r, content_type)?;
    let auth_len = plaintext.len() - r.remaining().len() - body_len;
    // Not secret, but checked without an early exit all the same.
    if r.remaining().iter().fold(0u8, |acc, b| acc | b) != 0 {
        return Err(ProtectionError::NonZeroPadding);
    }
    Ok((body_len, auth_len))
}

/// Writes the FramedContent head (group_id, epoch, sender, authenticated_data,
/// content_type) of a PrivateMessage so that it ends at `header.len()`, from
/// the fields of the PrivateMessage header (which it overwrites); returns
/// where it starts.
fn lay_out_content_head(header: &mut [u8], layout: &Layout, leaf: LeafIndex) -> Result<usize, ProtectionError> {
    let group_id_len = layout.group_id.len();
    let ad_len = layout.authenticated_data.len();
    let head_len = [group_id_len, 8, MEMBER_SENDER_LEN, ad_len, 1].iter().sum::<usize>();
    let start = header.len().checked_sub(head_len).ok_or(INCONSISTENT)?;
    // Both fields move right (the header is longer than the head, §6.3:
    // encrypted_sender_data alone is 29 bytes): the later one first, so
    // that neither overwrites the other's source.
    let ad_dest = start + group_id_len + 8 + MEMBER_SENDER_LEN;
    if start < layout.group_id.start || ad_dest < layout.authenticated_data.start {
        return Err(INCONSISTENT);
    }
    // The moves keep the bytes they uncover unspecified: the head is then
    // written whole, between and around the two fields.
    if ad_dest.checked_add(ad_len).is_none_or(|end| end >= header.len())
        || layout.authenticated_data.end > header.len()
        || layout.group_id.end > layout.authenticated_data.start
        || !crate::codec::move_within(header, layout.authenticated_data.clone(), ad_dest)
        || !crate::codec::move_within(header, layout.group_id.clone(), start)
    {
        return Err(INCONSISTENT);
    }
    let mut w = Writer::new(header.get_mut(start + group_id_len..ad_dest).ok_or(INCONSISTENT)?);
    w.write_u64(layout.epoch)?;
    Sender::Member(leaf.0).encode(&mut w)?;
    let content_type = header.get_mut(ad_dest + ad_len).ok_or(INCONSISTENT)?;
    *content_type = layout.content_type.to_u8();
    Ok(start)
}

/// Unprotects an encoded `MLSMessage(PrivateMessage)` (all of `message`) in
/// place (§6.3). `sender_key` tells whether a leaf is a non-blank member and
/// gives its signature key (`None`: unknown sender). On success the message
/// buffer holds the decrypted content and the returned views borrow from it;
/// the key is consumed. On failure nothing is consumed and any decrypted
/// plaintext is zeroed.
pub fn unprotect<'a>(
    context: &EncodedGroupContext<'_>,
    keys: &mut PrivateMessageKeys<'_>,
    message: &'a mut [u8],
    sender_key: &mut dyn FnMut(LeafIndex) -> Option<SignaturePublicKey>,
) -> Result<AuthenticatedContent<'a>, ProtectionError> {
    unprotect_as(context, keys, message, sender_key)
}

/// [`unprotect`] with the error type of its caller, so that the content is
/// written once, where the caller returns it: converted from a
/// `Result<_, ProtectionError>`, it took a second slot (the content is 248
/// bytes) in a frame under the signature verification.
pub(crate) fn unprotect_as<'a, E: From<ProtectionError>>(
    context: &EncodedGroupContext<'_>,
    keys: &mut PrivateMessageKeys<'_>,
    message: &'a mut [u8],
    sender_key: &mut dyn FnMut(LeafIndex) -> Option<SignaturePublicKey>,
) -> Result<AuthenticatedContent<'a>, E> {
    let suite = context.cipher_suite();
    let layout = Layout::read(message)?;
    let group_id = message.get(layout.group_id.clone()).map(|g| Reader::new(g).read_opaque());
    let group_id = group_id.ok_or(ProtectionError::Malformed(CodecError::Truncated))?.map_err(ProtectionError::from)?;
    context.check(group_id, layout.epoch)?;

    let sender_data = open_sender_data(suite, keys.sender_data_secret, message, &layout)?;
    let leaf = sender_data.leaf;
    let signature_key = sender_key(leaf).ok_or(ProtectionError::UnknownSender)?;
    let kind = ratchet_kind(layout.content_type);
    let key = keys.secret_tree.receiving_key(leaf, kind, sender_data.generation).map_err(ProtectionError::from)?;

    let ct_start = layout.ciphertext_start;
    let (header, ciphertext) =
        message.split_at_mut_checked(ct_start).ok_or(ProtectionError::ContentDecryptionFailed)?;
    let plaintext_len = ciphertext.len().checked_sub(AEAD_TAG_LEN).ok_or(ProtectionError::ContentDecryptionFailed)?;
    let (plaintext, tag) = ciphertext.split_at_mut(plaintext_len);
    let aad =
        header.get(MLS_MESSAGE_HEAD..layout.authenticated_data.end).ok_or(ProtectionError::ContentDecryptionFailed)?;
    let mut nonce = guarded_nonce(&key, &sender_data.reuse_guard);
    let opened = suite.aead_open(key.key.as_bytes(), &nonce, aad, plaintext, tag);
    nonce.zeroize();
    opened.map_err(|_| ProtectionError::ContentDecryptionFailed)?;

    let checked = split_plaintext(plaintext, layout.content_type).and_then(|(body_len, auth_len)| {
        let content_start = lay_out_content_head(header, &layout, leaf)?;
        Ok((content_start, body_len, auth_len))
    });
    let verified = checked.and_then(|(content_start, body_len, auth_len)| {
        let content_end = ct_start + body_len;
        let encoded = message.get(content_start..content_end).ok_or(INCONSISTENT)?;
        let auth_bytes = message.get(content_end..content_end + auth_len).ok_or(INCONSISTENT)?;
        let auth = FramedContentAuthData::decode_for(&mut Reader::new(auth_bytes), layout.content_type)?;
        let tbs = FramedContentTbs::with_context(WIRE_FORMAT_PRIVATE_MESSAGE, encoded, context)?;
        tbs.verify(suite, &signature_key, auth.signature)?;
        keys.secret_tree.consume(leaf, kind, sender_data.generation)?;
        Ok((content_start, content_end, auth_len))
    });
    let (content_start, content_end, auth_len) = match verified {
        Ok(v) => v,
        Err(e) => {
            if let Some(p) = message.get_mut(ct_start..) {
                p.zeroize();
            }
            return Err(e.into());
        }
    };
    // The views, borrowed from the buffer for as long as the caller lent it.
    // Decoding cannot fail: the head was written above, body and auth decoded.
    let message: &'a [u8] = message;
    let encoded = message.get(content_start..content_end).ok_or(INCONSISTENT)?;
    let auth_bytes = message.get(content_end..content_end + auth_len).ok_or(INCONSISTENT)?;
    let auth =
        FramedContentAuthData::decode_for(&mut Reader::new(auth_bytes), layout.content_type).map_err(ProtectionError::from)?;
    let content = FramedContent::decode_exact(encoded).map_err(ProtectionError::from)?;
    Ok(AuthenticatedContent::from_decoded(WIRE_FORMAT_PRIVATE_MESSAGE, content, encoded, auth))
}

/// Unprotects an encoded `MLSMessage(PrivateMessage)` left untouched: it is
/// copied to `buf` (at least as long as `message`) and unprotected there, see
/// [`unprotect`].
pub fn unprotect_into<'a>(
    context: &EncodedGroupContext<'_>,
    keys: &mut PrivateMessageKeys<'_>,
    message: &[u8],
    buf: &'a mut [u8],
    sender_key: &mut dyn FnMut(LeafIndex) -> Option<SignaturePublicKey>,
) -> Result<AuthenticatedContent<'a>, ProtectionError> {
    let copy = buf.get_mut(..message.len()).ok_or(ProtectionError::BufferTooSmall { needed: message.len() })?;
    copy.copy_from_slice(message);
    unprotect(context, keys, copy, sender_key)
}
