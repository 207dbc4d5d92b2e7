//! Protecting and unprotecting PublicMessages (RFC 9420 §6.2): content signed
//! over `FramedContentTBS` (§6.1) and, for member senders, authenticated by
//! the membership tag `MAC(membership_key, AuthenticatedContentTBM)`.
//!
//! Protection writes the `MLSMessage(PublicMessage)` straight into a caller
//! buffer: the FramedContent is encoded once, where it is sent, and signed
//! and MACed there. It takes two steps because a commit's confirmation tag
//! depends on its signature (§8.2): [`sign`] then [`SignedPublicMessage::finish`];
//! [`protect`] does both for proposals. Application data is refused: §6.2
//! requires application messages to be PrivateMessages.
//!
//! Unprotection checks, in order: group id and epoch against the given
//! GroupContext, the sender type, the membership tag (member senders, before
//! any signature work), then the signature with the sender's key.

use crate::codec::{Decode, Writer};
use crate::crypto::Secret;
use crate::crypto::signature::{Signature, SignaturePublicKey};
use crate::crypto::signer::Signer;
use crate::group_context::PROTOCOL_VERSION_MLS10;

use super::authenticated_content::{
    AuthenticatedContent, EncodedGroupContext, FramedContentTbs, ProtectionError, sender_allowed,
};
use super::framing::{
    ContentType, FramedContent, FramedContentAuthData, FramedContentHead, PublicMessage, Sender,
    WIRE_FORMAT_PUBLIC_MESSAGE,
};
use super::mls_message::{MlsMessage, MlsMessageBody};

/// Bytes of the MLSMessage head (version, wire format) before the PublicMessage.
const MLS_MESSAGE_HEAD: usize = 4;

/// Checks what a PublicMessage may carry: the group and epoch of `context`,
/// no application data (§6.2), a sender type allowed for the content (§6.1).
#[inline(never)]
fn check_head(context: &EncodedGroupContext<'_>, head: &FramedContentHead<'_>) -> Result<(), ProtectionError> {
    context.check(head.group_id, head.epoch)?;
    if head.content_type == ContentType::Application {
        return Err(ProtectionError::WrongContentType);
    }
    if !sender_allowed(&head.sender, head.content_type) {
        return Err(ProtectionError::InvalidSender);
    }
    Ok(())
}

/// A PublicMessage whose content is encoded and signed, waiting for its
/// confirmation tag (commits) and membership tag (member senders).
#[derive(Debug)]
pub struct SignedPublicMessage<'o, 'c> {
    out: &'o mut [u8],
    body_start: usize,
    content_end: usize,
    signature: Signature,
    context: EncodedGroupContext<'c>,
    sender: Sender,
    content_type: ContentType,
}

/// Encodes `content` into `out` as the start of an `MLSMessage(PublicMessage)`
/// and signs it with `signer` (§6.1). The content must belong to the group and
/// epoch of `context`.
pub fn sign<'o, 'c>(
    context: &EncodedGroupContext<'c>,
    signer: &impl Signer,
    content: &FramedContent<'_>,
    out: &'o mut [u8],
) -> Result<SignedPublicMessage<'o, 'c>, ProtectionError> {
    // Checked by `sign_placed`, before anything is signed.
    let head = content.head();
    let start = body_start(&head)?;
    let mut w = Writer::new(out.get_mut(start..).ok_or(ProtectionError::BufferTooSmall { needed: start })?);
    // A shortfall counts from the message's start.
    content.content.encode_body(&mut w).map_err(|e| e.at_offset(start))?;
    let body_len = w.len();
    sign_placed(context, signer, &head, body_len, out)
}

/// Where the body of a content with `head` starts in its PublicMessage: the
/// MLSMessage head and the FramedContent's fields before it.
pub(crate) fn body_start(head: &FramedContentHead<'_>) -> Result<usize, ProtectionError> {
    let mut counter = Writer::counter();
    crate::codec::Encode::encode(head, &mut counter)?;
    Ok(MLS_MESSAGE_HEAD.saturating_add(counter.len()))
}

/// [`sign`] for a content whose body (`body_len` bytes) the caller wrote in
/// `out` at [`body_start`]: the rest of the FramedContent is written before
/// it and the whole signed where it is.
pub(crate) fn sign_placed<'o, 'c>(
    context: &EncodedGroupContext<'c>,
    signer: &impl Signer,
    head: &FramedContentHead<'_>,
    body_len: usize,
    out: &'o mut [u8],
) -> Result<SignedPublicMessage<'o, 'c>, ProtectionError> {
    check_head(context, head)?;
    let start = body_start(head)?;
    let content_end = start.checked_add(body_len).ok_or(ProtectionError::BufferTooSmall { needed: usize::MAX })?;
    let short = ProtectionError::BufferTooSmall { needed: content_end };
    let mut w = Writer::new(out.get_mut(..start).ok_or(short)?);
    w.write_u16(PROTOCOL_VERSION_MLS10)?;
    w.write_u16(WIRE_FORMAT_PUBLIC_MESSAGE)?;
    crate::codec::Encode::encode(head, &mut w)?;
    let encoded = out.get(MLS_MESSAGE_HEAD..content_end).ok_or(short)?;
    let tbs = FramedContentTbs::with_context(WIRE_FORMAT_PUBLIC_MESSAGE, encoded, context)?;
    let signature = tbs.sign(context.cipher_suite(), signer)?;
    Ok(SignedPublicMessage {
        out,
        body_start: start,
        content_end,
        signature,
        context: *context,
        sender: head.sender,
        content_type: head.content_type,
    })
}

impl<'o> SignedPublicMessage<'o, '_> {
    /// The encoded FramedContent, as signed (input to the confirmed
    /// transcript hash, §8.2).
    pub fn content_bytes(&self) -> &[u8] {
        self.out.get(MLS_MESSAGE_HEAD..self.content_end).unwrap_or(&[])
    }

    /// The content's body (its `select` part), as signed.
    pub(crate) fn body(&self) -> &[u8] {
        self.out.get(self.body_start..self.content_end).unwrap_or(&[])
    }

    /// The signature over `FramedContentTBS`.
    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// Appends the auth data and, for a member sender, the membership tag
    /// computed with `membership_key`; returns the whole MLSMessage.
    /// `confirmation_tag` must be given (`Nh` bytes) exactly for commits.
    pub fn finish(
        self,
        confirmation_tag: Option<&[u8]>,
        membership_key: Option<&Secret>,
    ) -> Result<&'o [u8], ProtectionError> {
        let suite = self.context.cipher_suite();
        let auth = FramedContentAuthData { signature: &self.signature, confirmation_tag };
        if !auth.fits(self.content_type) || confirmation_tag.is_some_and(|t| t.len() != suite.hash_len()) {
            return Err(ProtectionError::ConfirmationTagMismatch);
        }
        let membership_tag = match self.sender {
            Sender::Member(_) => {
                let key = membership_key.ok_or(ProtectionError::MissingMembershipKey)?;
                let encoded = self
                    .out
                    .get(MLS_MESSAGE_HEAD..self.content_end)
                    .ok_or(ProtectionError::BufferTooSmall { needed: self.content_end })?;
                let tbs = FramedContentTbs::with_context(WIRE_FORMAT_PUBLIC_MESSAGE, encoded, &self.context)?;
                Some(tbs.membership_tag(suite, key, &auth)?)
            }
            Sender::External(_) | Sender::NewMemberProposal | Sender::NewMemberCommit => None,
        };
        let write_tail = |w: &mut Writer<'_>| {
            crate::codec::Encode::encode(&auth, w)?;
            match &membership_tag {
                Some(tag) => w.write_opaque(tag.as_bytes()),
                None => Ok(()),
            }
        };
        // The whole size is known once the tail is measured: report it.
        let mut counter = Writer::counter();
        write_tail(&mut counter)?;
        let end = self.content_end.saturating_add(counter.len());
        let short = ProtectionError::BufferTooSmall { needed: end };
        let tail = self.out.get_mut(self.content_end..end).ok_or(short)?;
        write_tail(&mut Writer::new(tail))?;
        self.out.get(..end).ok_or(short)
    }
}

/// Protects a proposal as an `MLSMessage(PublicMessage)` in `out` and returns
/// it: [`sign`], then [`SignedPublicMessage::finish`] without a confirmation
/// tag. `membership_key` is required for member senders. Commits need their
/// confirmation tag, which depends on the signature: use the two steps.
pub fn protect<'o>(
    context: &EncodedGroupContext<'_>,
    signer: &impl Signer,
    content: &FramedContent<'_>,
    membership_key: Option<&Secret>,
    out: &'o mut [u8],
) -> Result<&'o [u8], ProtectionError> {
    sign(context, signer, content, out)?.finish(None, membership_key)
}

/// Unprotects a decoded PublicMessage (§6.2): checks the group id and epoch
/// against `context`, the sender type, the membership tag with
/// `membership_key` if the sender is a member (first, before any signature
/// work), then the signature with the key `sender_key` gives for the content
/// (`None`: unknown sender). The confirmation tag of a commit is left to the
/// caller, who derives the next epoch (§8.1).
pub fn unprotect_decoded<'a>(
    context: &EncodedGroupContext<'_>,
    membership_key: &Secret,
    message: &PublicMessage<'a>,
    sender_key: &mut dyn FnMut(&FramedContent<'a>) -> Option<SignaturePublicKey>,
) -> Result<AuthenticatedContent<'a>, ProtectionError> {
    unprotect_decoded_as(context, membership_key, message, sender_key)
}

/// [`unprotect_decoded`] with the error type of its caller, so that the
/// content is written once, where the caller returns it: converted from a
/// `Result<_, ProtectionError>`, it took a second slot (the content is 248
/// bytes) in a frame under the signature verification.
#[inline(always)]
fn unprotect_decoded_as<'a, E: From<ProtectionError>>(
    context: &EncodedGroupContext<'_>,
    membership_key: &Secret,
    message: &PublicMessage<'a>,
    sender_key: &mut dyn FnMut(&FramedContent<'a>) -> Option<SignaturePublicKey>,
) -> Result<AuthenticatedContent<'a>, E> {
    let content = &message.content;
    check_head(context, &content.head())?;
    let suite = context.cipher_suite();
    let tbs = FramedContentTbs::with_context(WIRE_FORMAT_PUBLIC_MESSAGE, message.content_bytes(), context)
        .map_err(ProtectionError::from)?;
    if let Sender::Member(_) = content.sender {
        // Decoding guarantees the tag is present for members.
        let tag = message.membership_tag.ok_or(ProtectionError::BadMembershipTag)?;
        tbs.verify_membership_tag(suite, membership_key, &message.auth, tag)?;
    }
    let key = sender_key(content).ok_or(ProtectionError::UnknownSender)?;
    tbs.verify(suite, &key, message.auth.signature)?;
    // Decoded from these bytes, auth for its content type: no need to decode again.
    Ok(AuthenticatedContent::from_decoded(WIRE_FORMAT_PUBLIC_MESSAGE, *content, message.content_bytes(), message.auth))
}

/// Unprotects an encoded `MLSMessage(PublicMessage)` (all of `message`): see
/// [`unprotect_decoded`].
pub fn unprotect<'a>(
    context: &EncodedGroupContext<'_>,
    membership_key: &Secret,
    message: &'a [u8],
    sender_key: &mut dyn FnMut(&FramedContent<'a>) -> Option<SignaturePublicKey>,
) -> Result<AuthenticatedContent<'a>, ProtectionError> {
    unprotect_as(context, membership_key, message, sender_key)
}

/// [`unprotect`] with the error type of its caller ([`unprotect_decoded_as`]).
/// Inlined into its caller in a group, which reads only PublicMessages: two
/// frames held the decoded content twice.
#[inline(always)]
pub(crate) fn unprotect_as<'a, E: From<ProtectionError>>(
    context: &EncodedGroupContext<'_>,
    membership_key: &Secret,
    message: &'a [u8],
    sender_key: &mut dyn FnMut(&FramedContent<'a>) -> Option<SignaturePublicKey>,
) -> Result<AuthenticatedContent<'a>, E> {
    let pm = decode(message)?;
    unprotect_decoded_as(context, membership_key, &pm, sender_key)
}

/// The PublicMessage `message` holds. Its own frame: the decoder's locals
/// are not on the stack while the signature is verified (once inlined into
/// [`unprotect`], they added 128 bytes to every received Commit's deepest
/// stack on a Cortex-M4).
#[inline(never)]
fn decode(message: &[u8]) -> Result<PublicMessage<'_>, ProtectionError> {
    match MlsMessage::decode_exact(message)?.body {
        MlsMessageBody::PublicMessage(pm) => Ok(pm),
        _ => Err(ProtectionError::WrongWireFormat),
    }
}
