//! Content authentication (RFC 9420 §6, §6.1, §6.2): `FramedContentTBS` and its
//! signature `SignWithLabel(., "FramedContentTBS", .)`, `AuthenticatedContent`,
//! and the membership tag `MAC(membership_key, AuthenticatedContentTBM)`.
//!
//! Nothing is buffered to be signed or MACed: `FramedContentTBS` is handed to
//! the signer and the MAC as three pieces — its 4-byte head (version,
//! wire format), the FramedContent as encoded (contiguous in a received
//! PublicMessage, [`PublicMessage::content_bytes`](super::PublicMessage::content_bytes),
//! and laid out contiguously by [`private_message`](super::private_message)),
//! and the encoded GroupContext — and `FramedContentAuthData` as its fields
//! with their length prefixes.
//!
//! [`ProtectionError`] is shared by [`public_message`](super::public_message)
//! (§6.2) and [`private_message`](super::private_message) (§6.3).

use crate::codec::{CodecError, Decode, Encode, Reader, Writer};
use crate::crypto::labeled::{VarintPrefix, sign_with_label_parts, verify_with_label_parts};
use crate::crypto::signature::{Signature, SignaturePublicKey};
use crate::crypto::signer::Signer;
use crate::crypto::{CipherSuite, CryptoError, HashValue, Secret};
use crate::group_context::{GroupContext, PROTOCOL_VERSION_MLS10};
use crate::secret_tree::SecretTreeError;

use super::framing::{
    ContentType, FramedContent, FramedContentAuthData, Sender, WIRE_FORMAT_PRIVATE_MESSAGE, WIRE_FORMAT_PUBLIC_MESSAGE,
};

/// The label of the content signature (§6.1).
pub const FRAMED_CONTENT_TBS_LABEL: &[u8] = b"FramedContentTBS";

/// Why a message could not be protected or unprotected (§6.1–§6.3).
///
/// Every rejection a receiver may want to tell apart has its own variant. A
/// rejected message changes no state: keys are consumed only once a message
/// has passed every check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ProtectionError {
    /// The message's `group_id` is not the group's.
    WrongGroupId,
    /// The message's `epoch` is not the epoch of the given GroupContext.
    WrongEpoch,
    /// The sender is not a non-blank member leaf (§6.3.2), or no signature
    /// key is known for it.
    UnknownSender,
    /// A sender type not allowed here: a PrivateMessage from a non-member
    /// (§6.3.2), or a sender type with a content type §6.1 forbids (external
    /// and new-member proposals must be proposals, new-member commits commits).
    InvalidSender,
    /// Application data as a PublicMessage (§6.2: application messages MUST
    /// be PrivateMessages).
    WrongContentType,
    /// The MLSMessage is not of the wire format the function handles.
    WrongWireFormat,
    /// A member's PublicMessage whose membership tag does not verify (§6.2).
    BadMembershipTag,
    /// A member's PublicMessage was protected without a membership key.
    MissingMembershipKey,
    /// The signature over `FramedContentTBS` does not verify (§6.1).
    BadSignature,
    /// A confirmation tag given for a non-commit, missing for a commit, or
    /// not `Nh` bytes long (§6.1).
    ConfirmationTagMismatch,
    /// `encrypted_sender_data` does not decrypt (§6.3.2).
    SenderDataDecryptionFailed,
    /// `ciphertext` does not decrypt (§6.3.1).
    ContentDecryptionFailed,
    /// The padding of a PrivateMessageContent holds a non-zero byte (§6.3.1).
    NonZeroPadding,
    /// The secret tree cannot give the key: consumed or replayed generation,
    /// generation too far ahead, leaf outside the tree (§9).
    SecretTree(SecretTreeError),
    /// The output buffer is too small: at least `needed` bytes are needed
    /// (exactly the message's size where the layout is computed up front,
    /// as for a PrivateMessage).
    BufferTooSmall {
        /// Bytes the output needs at least.
        needed: usize,
    },
    /// The message (or the decrypted content) is malformed.
    Malformed(CodecError),
    /// Any other cryptographic failure (e.g. an unusable key).
    Crypto(CryptoError),
}

impl From<CodecError> for ProtectionError {
    fn from(e: CodecError) -> Self {
        match e {
            CodecError::BufferTooSmall { needed } => Self::BufferTooSmall { needed },
            other => Self::Malformed(other),
        }
    }
}

impl From<SecretTreeError> for ProtectionError {
    fn from(e: SecretTreeError) -> Self {
        Self::SecretTree(e)
    }
}

impl From<CryptoError> for ProtectionError {
    fn from(e: CryptoError) -> Self {
        Self::Crypto(e)
    }
}

impl core::fmt::Display for ProtectionError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::WrongGroupId => f.write_str("message for another group"),
            Self::WrongEpoch => f.write_str("message for another epoch"),
            Self::UnknownSender => f.write_str("sender is not a member"),
            Self::InvalidSender => f.write_str("sender type not allowed for this message"),
            Self::WrongContentType => f.write_str("content type not allowed for this wire format"),
            Self::WrongWireFormat => f.write_str("unexpected wire format"),
            Self::BadMembershipTag => f.write_str("membership tag does not verify"),
            Self::MissingMembershipKey => f.write_str("membership key required for a member sender"),
            Self::BadSignature => f.write_str("content signature does not verify"),
            Self::ConfirmationTagMismatch => f.write_str("confirmation tag present or absent in error"),
            Self::SenderDataDecryptionFailed => f.write_str("sender data does not decrypt"),
            Self::ContentDecryptionFailed => f.write_str("content does not decrypt"),
            Self::NonZeroPadding => f.write_str("non-zero padding"),
            Self::SecretTree(e) => write!(f, "secret tree: {e}"),
            Self::BufferTooSmall { needed } => write!(f, "output buffer too small: at least {needed} bytes needed"),
            Self::Malformed(e) => write!(f, "malformed message: {e}"),
            Self::Crypto(e) => write!(f, "crypto: {e}"),
        }
    }
}

impl core::error::Error for ProtectionError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::SecretTree(e) => Some(e),
            Self::Malformed(e) => Some(e),
            Self::Crypto(e) => Some(e),
            _ => None,
        }
    }
}

/// The GroupContext of the epoch messages are protected for, both decoded
/// (for the group id, epoch and cipher suite) and as encoded (for
/// `FramedContentTBS`, §6.1), the encoding in the pieces it is made of
/// ([`Self::parts`]): as received ([`Self::decode`]), or a context's
/// fields and the few bytes between them ([`Self::new`]), so that a group
/// needs no buffer of the encoding's greatest length (444 bytes on the
/// boards, 2.4 KB with the default limits) under a signature verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncodedGroupContext<'a> {
    context: GroupContext<'a>,
    /// The encoding as received; none: `seams` and the fields give it.
    bytes: Option<&'a [u8]>,
    seams: Seams,
}

/// Bytes of a GroupContext's encoding between its variable-length fields
/// (§8.1): `version || cipher_suite || len(group_id)`, `epoch ||
/// len(tree_hash)`, `len(confirmed_transcript_hash)`, `len(extensions)`
/// (lengths as varints of at most 4 bytes), one after another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seams {
    bytes: [u8; SEAMS_LEN],
    /// Where each of the four ends in `bytes`.
    ends: [u8; 4],
}

const SEAMS_LEN: usize = 2 + 2 + 4 + 8 + 4 + 4 + 4;

impl Seams {
    const NONE: Self = Self { bytes: [0; SEAMS_LEN], ends: [0; 4] };

    fn of(context: &GroupContext<'_>) -> Result<Self, CodecError> {
        let mut seams = Self::NONE;
        let mut ends = [0usize; 4];
        let mut w = Writer::new(&mut seams.bytes);
        w.write_u16(PROTOCOL_VERSION_MLS10)?;
        w.write_u16(context.cipher_suite.to_u16())?;
        w.write_varint(context.group_id.len())?;
        ends[0] = w.len();
        w.write_u64(context.epoch)?;
        w.write_varint(context.tree_hash.len())?;
        ends[1] = w.len();
        w.write_varint(context.confirmed_transcript_hash.len())?;
        ends[2] = w.len();
        w.write_varint(context.extensions.len())?;
        ends[3] = w.len();
        for (end, e) in seams.ends.iter_mut().zip(ends) {
            *end = u8::try_from(e).map_err(|_| CodecError::BufferTooSmall { needed: e })?;
        }
        Ok(seams)
    }

    /// The `i`th seam.
    fn get(&self, i: usize) -> &[u8] {
        let start = i.checked_sub(1).and_then(|j| self.ends.get(j)).map_or(0, |&e| usize::from(e));
        let end = self.ends.get(i).map_or(0, |&e| usize::from(e));
        self.bytes.get(start..end).unwrap_or(&[])
    }
}

impl<'a> EncodedGroupContext<'a> {
    /// Decodes an encoded GroupContext (all of `bytes`), which is then
    /// signed as received.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, CodecError> {
        Ok(Self { context: GroupContext::decode_exact(bytes)?, bytes: Some(bytes), seams: Seams::NONE })
    }

    /// `context`, encoded in pieces ([`Self::parts`]): no buffer of the
    /// whole encoding. Fails only on a field longer than a varint can say.
    pub fn new(context: GroupContext<'a>) -> Result<Self, CodecError> {
        Ok(Self { seams: Seams::of(&context)?, context, bytes: None })
    }

    /// The decoded GroupContext.
    pub fn context(&self) -> &GroupContext<'a> {
        &self.context
    }

    /// The encoding, as eight pieces to be read one after another (some
    /// empty).
    pub fn parts(&self) -> [&[u8]; 8] {
        match self.bytes {
            Some(b) => [b, &[], &[], &[], &[], &[], &[], &[]],
            None => {
                let c = &self.context;
                [
                    self.seams.get(0),
                    c.group_id,
                    self.seams.get(1),
                    c.tree_hash,
                    self.seams.get(2),
                    c.confirmed_transcript_hash,
                    self.seams.get(3),
                    c.extensions,
                ]
            }
        }
    }

    /// The group's cipher suite.
    pub fn cipher_suite(&self) -> CipherSuite {
        self.context.cipher_suite
    }

    /// Fails unless `group_id` and `epoch` are this context's.
    pub fn check(&self, group_id: &[u8], epoch: u64) -> Result<(), ProtectionError> {
        if group_id != self.context.group_id {
            return Err(ProtectionError::WrongGroupId);
        }
        if epoch != self.context.epoch {
            return Err(ProtectionError::WrongEpoch);
        }
        Ok(())
    }
}

/// True if §6.1 allows `sender` to send content of `content_type`: external
/// senders and new members proposing send proposals, new members joining by
/// external commit send commits; members send anything.
pub fn sender_allowed(sender: &Sender, content_type: ContentType) -> bool {
    match sender {
        Sender::Member(_) => true,
        Sender::External(_) | Sender::NewMemberProposal => content_type == ContentType::Proposal,
        Sender::NewMemberCommit => content_type == ContentType::Commit,
    }
}

/// `FramedContentTBS` (§6.1), as the pieces it is signed and MACed in.
///
/// The GroupContext is included when the sender is a `member` or a
/// `new_member_commit`, so that those signatures are bound to one group and
/// epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FramedContentTbs<'a> {
    /// `ProtocolVersion version = mls10` and `WireFormat wire_format`.
    head: [u8; 4],
    content: &'a [u8],
    sender: Sender,
    /// The encoded GroupContext in pieces (all empty when the sender's TBS
    /// has none).
    group_context: [&'a [u8]; 8],
}

impl<'a> FramedContentTbs<'a> {
    /// The TBS of the encoded FramedContent `content` sent with
    /// `wire_format`; `group_context` is the encoded GroupContext of the
    /// epoch (left out for senders whose TBS has none). The sender is read
    /// from `content`, so it cannot disagree with what is signed.
    pub fn new(wire_format: u16, content: &'a [u8], group_context: &'a [u8]) -> Result<Self, CodecError> {
        Self::with_context_parts(wire_format, content, [group_context, &[], &[], &[], &[], &[], &[], &[]])
    }

    /// [`Self::new`] with the epoch's GroupContext as `context` holds it
    /// (in pieces: [`EncodedGroupContext::parts`]).
    pub fn with_context(wire_format: u16, content: &'a [u8], context: &'a EncodedGroupContext<'_>) -> Result<Self, CodecError> {
        Self::with_context_parts(wire_format, content, context.parts())
    }

    fn with_context_parts(wire_format: u16, content: &'a [u8], group_context: [&'a [u8]; 8]) -> Result<Self, CodecError> {
        let mut r = Reader::new(content);
        r.read_opaque()?; // group_id
        r.read_u64()?; // epoch
        let sender = Sender::decode(&mut r)?;
        let group_context = match sender {
            Sender::Member(_) | Sender::NewMemberCommit => group_context,
            Sender::External(_) | Sender::NewMemberProposal => [&[][..]; 8],
        };
        let [v0, v1] = PROTOCOL_VERSION_MLS10.to_be_bytes();
        let [w0, w1] = wire_format.to_be_bytes();
        Ok(Self { head: [v0, v1, w0, w1], content, sender, group_context })
    }

    /// The sender encoded in the content.
    pub fn sender(&self) -> Sender {
        self.sender
    }

    /// The encoded FramedContent.
    pub fn content(&self) -> &'a [u8] {
        self.content
    }

    /// The TBS as consecutive pieces.
    pub fn parts(&self) -> [&[u8]; 10] {
        let [g0, g1, g2, g3, g4, g5, g6, g7] = self.group_context;
        [&self.head, self.content, g0, g1, g2, g3, g4, g5, g6, g7]
    }

    /// `SignWithLabel(key, "FramedContentTBS", self)`.
    pub fn sign(&self, suite: CipherSuite, key: &impl Signer) -> Result<Signature, CryptoError> {
        sign_with_label_parts(suite, key, FRAMED_CONTENT_TBS_LABEL, &self.parts())
    }

    /// `VerifyWithLabel(key, "FramedContentTBS", self, signature)`; any
    /// failure (including an unusable key) is [`ProtectionError::BadSignature`].
    pub fn verify(
        &self,
        suite: CipherSuite,
        key: &SignaturePublicKey,
        signature: &[u8],
    ) -> Result<(), ProtectionError> {
        verify_with_label_parts(suite, key, FRAMED_CONTENT_TBS_LABEL, &self.parts(), signature)
            .map_err(|_| ProtectionError::BadSignature)
    }

    /// `MAC(membership_key, AuthenticatedContentTBM)` (§6.2), where
    /// `AuthenticatedContentTBM = FramedContentTBS || FramedContentAuthData`.
    pub fn membership_tag(
        &self,
        suite: CipherSuite,
        membership_key: &Secret,
        auth: &FramedContentAuthData<'_>,
    ) -> Result<HashValue, CryptoError> {
        let auth = AuthParts::new(auth)?;
        Ok(suite.mac(membership_key.as_bytes(), &self.tbm_parts(&auth)))
    }

    /// Checks `tag` against the membership tag in constant time.
    pub fn verify_membership_tag(
        &self,
        suite: CipherSuite,
        membership_key: &Secret,
        auth: &FramedContentAuthData<'_>,
        tag: &[u8],
    ) -> Result<(), ProtectionError> {
        let auth = AuthParts::new(auth)?;
        if suite.verify_mac(membership_key.as_bytes(), &self.tbm_parts(&auth), tag) {
            Ok(())
        } else {
            Err(ProtectionError::BadMembershipTag)
        }
    }

    fn tbm_parts<'s>(&'s self, auth: &'s AuthParts<'s>) -> [&'s [u8]; 14] {
        let [a, b, c0, c1, c2, c3, c4, c5, c6, c7] = self.parts();
        let [d, e, f, g] = auth.parts();
        [a, b, c0, c1, c2, c3, c4, c5, c6, c7, d, e, f, g]
    }
}

impl Encode for FramedContentTbs<'_> {
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), CodecError> {
        self.parts().iter().try_for_each(|p| w.write_bytes(p))
    }
}

/// `FramedContentAuthData` as pieces: each field after its length prefix.
struct AuthParts<'a> {
    signature_len: VarintPrefix,
    signature: &'a [u8],
    tag_len: Option<VarintPrefix>,
    tag: &'a [u8],
}

impl<'a> AuthParts<'a> {
    fn new(auth: &FramedContentAuthData<'a>) -> Result<Self, CryptoError> {
        Ok(Self {
            signature_len: VarintPrefix::new(auth.signature.len())?,
            signature: auth.signature,
            tag_len: auth.confirmation_tag.map(|t| VarintPrefix::new(t.len())).transpose()?,
            tag: auth.confirmation_tag.unwrap_or(&[]),
        })
    }

    fn parts(&self) -> [&[u8]; 4] {
        [
            self.signature_len.as_bytes(),
            self.signature,
            self.tag_len.as_ref().map_or(&[][..], VarintPrefix::as_bytes),
            self.tag,
        ]
    }
}

/// `AuthenticatedContent` (§6): a FramedContent with its auth data and the
/// wire format it was (or will be) sent in. Made from the FramedContent's
/// encoding, which is kept for signatures and transcript hashes (§8.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthenticatedContent<'a> {
    /// `WireFormat wire_format`: `mls_public_message` or `mls_private_message`.
    pub wire_format: u16,
    /// `FramedContent content`.
    pub content: FramedContent<'a>,
    /// `FramedContentAuthData auth`.
    pub auth: FramedContentAuthData<'a>,
    content_bytes: &'a [u8],
}

impl<'a> AuthenticatedContent<'a> {
    /// An AuthenticatedContent from an encoded FramedContent (all of
    /// `content_bytes`) and auth data that fits its content type.
    pub fn from_parts(
        wire_format: u16,
        content_bytes: &'a [u8],
        auth: FramedContentAuthData<'a>,
    ) -> Result<Self, CodecError> {
        check_wire_format(wire_format)?;
        let content = FramedContent::decode_exact(content_bytes)?;
        if !auth.fits(content.content.content_type()) {
            return Err(CodecError::InvalidValue);
        }
        Ok(Self { wire_format, content, auth, content_bytes })
    }

    /// An AuthenticatedContent whose `content` was decoded exactly from
    /// `content_bytes` and whose `auth` was decoded for its content type.
    pub(crate) fn from_decoded(
        wire_format: u16,
        content: FramedContent<'a>,
        content_bytes: &'a [u8],
        auth: FramedContentAuthData<'a>,
    ) -> Self {
        Self { wire_format, content, auth, content_bytes }
    }

    /// The encoding of `content`.
    pub fn content_bytes(&self) -> &'a [u8] {
        self.content_bytes
    }

    /// The `FramedContentTBS` of this content, with `group_context` (encoded)
    /// if the sender's TBS includes it.
    pub fn tbs<'s>(&'s self, group_context: &'s [u8]) -> Result<FramedContentTbs<'s>, CodecError> {
        FramedContentTbs::new(self.wire_format, self.content_bytes, group_context)
    }

    /// Verifies the signature with the sender's key (§6.1).
    pub fn verify_signature(
        &self,
        suite: CipherSuite,
        key: &SignaturePublicKey,
        group_context: &[u8],
    ) -> Result<(), ProtectionError> {
        self.tbs(group_context)?.verify(suite, key, self.auth.signature)
    }
}

fn check_wire_format(wire_format: u16) -> Result<(), CodecError> {
    match wire_format {
        WIRE_FORMAT_PUBLIC_MESSAGE | WIRE_FORMAT_PRIVATE_MESSAGE => Ok(()),
        _ => Err(CodecError::InvalidValue),
    }
}

impl Encode for AuthenticatedContent<'_> {
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), CodecError> {
        w.write_u16(self.wire_format)?;
        // Decoded exactly from these bytes: they are its canonical encoding.
        w.write_bytes(self.content_bytes)?;
        self.auth.encode(w)
    }
}

impl<'a> Decode<'a> for AuthenticatedContent<'a> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, CodecError> {
        let wire_format = r.read_u16()?;
        check_wire_format(wire_format)?;
        let start = r.remaining();
        let content = FramedContent::decode(r)?;
        let content_bytes = r.consumed_since(start);
        let auth = FramedContentAuthData::decode_for(r, content.content.content_type())?;
        Ok(Self { wire_format, content, auth, content_bytes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::framing::Content;

    const SUITE: CipherSuite = CipherSuite::X25519Aes128GcmSha256Ed25519;

    /// A GroupContext in pieces reads as its encoding, whatever the
    /// lengths of its fields (varints of 1, 2 and 4 bytes), and a TBS over
    /// the pieces is the TBS over the encoding.
    #[test]
    fn group_context_in_pieces_is_its_encoding() {
        extern crate std;
        use std::vec::Vec;
        let ext = [0x11u8; 20_000];
        let mut checked = 0;
        for (gid_len, hash_len, ext_len) in [(0, 0, 0), (5, 32, 0), (63, 64, 64), (64, 48, 16_383), (128, 32, 16_384), (1, 1, 20_000)] {
            let gid = [7u8; 128];
            let hash = [9u8; 64];
            let gc = GroupContext {
                cipher_suite: SUITE,
                group_id: &gid[..gid_len],
                epoch: 0x0102_0304_0506_0708,
                tree_hash: &hash[..hash_len],
                confirmed_transcript_hash: &hash[..hash_len / 2],
                extensions: &ext[..ext_len],
            };
            let mut buf = [0u8; 20_400];
            let encoded = gc.encode_to(&mut buf).unwrap();
            let pieces = EncodedGroupContext::new(gc).unwrap();
            let joined: Vec<u8> = pieces.parts().concat();
            assert_eq!(joined, encoded, "lengths {gid_len}, {hash_len}, {ext_len}");
            assert_eq!(pieces.context(), &gc);
            let mut content_buf = [0u8; 64];
            let content = content_bytes(Sender::Member(2), &mut content_buf);
            let tbs = FramedContentTbs::with_context(1, content, &pieces).unwrap();
            let whole = FramedContentTbs::new(1, content, encoded).unwrap();
            assert_eq!(tbs.parts().concat(), whole.parts().concat::<u8>());
            checked += 1;
        }
        assert_eq!(checked, 6);
    }

    fn content_bytes(sender: Sender, buf: &mut [u8]) -> &[u8] {
        let fc = FramedContent {
            group_id: b"group",
            epoch: 7,
            sender,
            authenticated_data: b"ad",
            content: Content::Application(b"hello"),
        };
        fc.encode_to(buf).unwrap()
    }

    #[test]
    fn tbs_pieces_equal_the_encoding() {
        let mut buf = [0u8; 64];
        let content = content_bytes(Sender::Member(3), &mut buf);
        let gc = [9u8; 5];
        let tbs = FramedContentTbs::new(WIRE_FORMAT_PRIVATE_MESSAGE, content, &gc).unwrap();
        assert_eq!(tbs.sender(), Sender::Member(3));
        let mut out = [0u8; 128];
        let enc = tbs.encode_to(&mut out).unwrap();
        assert_eq!(&enc[..4], &[0, 1, 0, 2]);
        assert_eq!(&enc[4..enc.len() - 5], content);
        assert_eq!(&enc[enc.len() - 5..], &gc);

        let mut buf = [0u8; 64];
        let content = content_bytes(Sender::External(0), &mut buf);
        let tbs = FramedContentTbs::new(WIRE_FORMAT_PUBLIC_MESSAGE, content, &gc).unwrap();
        assert_eq!(tbs.encoded_len().unwrap(), 4 + content.len(), "no context for external senders");
    }

    #[test]
    fn membership_tag_covers_auth_data() {
        let mut buf = [0u8; 64];
        let content = content_bytes(Sender::Member(1), &mut buf);
        let tbs = FramedContentTbs::new(WIRE_FORMAT_PUBLIC_MESSAGE, content, &[1, 2]).unwrap();
        let key = Secret::from_slice(&[4; 32]).unwrap();
        let auth = FramedContentAuthData { signature: &[5; 64], confirmation_tag: None };
        let tag = tbs.membership_tag(SUITE, &key, &auth).unwrap();
        // Same as the MAC of the concatenation.
        let mut tbm = [0u8; 160];
        let mut w = Writer::new(&mut tbm);
        tbs.encode(&mut w).unwrap();
        auth.encode(&mut w).unwrap();
        assert_eq!(tag, SUITE.mac(key.as_bytes(), &[w.written()]));
        tbs.verify_membership_tag(SUITE, &key, &auth, tag.as_bytes()).unwrap();
        let other = FramedContentAuthData { signature: &[5; 64], confirmation_tag: Some(&[]) };
        assert_eq!(
            tbs.verify_membership_tag(SUITE, &key, &other, tag.as_bytes()),
            Err(ProtectionError::BadMembershipTag)
        );
    }
}
