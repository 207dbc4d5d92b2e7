//! Message framing (RFC 9420 §6): wire formats, `Sender`, `ContentType`,
//! `FramedContent`, `FramedContentAuthData` (§6.1), `PublicMessage` (§6.2)
//! and `PrivateMessage` (§6.3).
//!
//! Only structure is checked here; signatures, membership tags and
//! decryption belong to the layers above.

use crate::codec::{CodecError, Decode, Encode, Reader, Writer};

use super::commit::Commit;
use super::proposal::Proposal;

/// `WireFormat mls_public_message` (§6, §17.2).
pub const WIRE_FORMAT_PUBLIC_MESSAGE: u16 = 0x0001;
/// `WireFormat mls_private_message` (§6, §17.2).
pub const WIRE_FORMAT_PRIVATE_MESSAGE: u16 = 0x0002;
/// `WireFormat mls_welcome` (§6, §17.2).
pub const WIRE_FORMAT_WELCOME: u16 = 0x0003;
/// `WireFormat mls_group_info` (§6, §17.2).
pub const WIRE_FORMAT_GROUP_INFO: u16 = 0x0004;
/// `WireFormat mls_key_package` (§6, §17.2).
pub const WIRE_FORMAT_KEY_PACKAGE: u16 = 0x0005;

/// `SenderType member(1)`.
pub const SENDER_TYPE_MEMBER: u8 = 1;
/// `SenderType external(2)`.
pub const SENDER_TYPE_EXTERNAL: u8 = 2;
/// `SenderType new_member_proposal(3)`.
pub const SENDER_TYPE_NEW_MEMBER_PROPOSAL: u8 = 3;
/// `SenderType new_member_commit(4)`.
pub const SENDER_TYPE_NEW_MEMBER_COMMIT: u8 = 4;

/// `Sender` (§6): who sent a message, with its `SenderType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sender {
    /// `member(1)`: the member at `uint32 leaf_index`.
    Member(u32),
    /// `external(2)`: the `uint32 sender_index`-th entry of the
    /// `external_senders` extension (§12.1.8.1).
    External(u32),
    /// `new_member_proposal(3)`: a client proposing its own Add (§12.1.8).
    NewMemberProposal,
    /// `new_member_commit(4)`: a client joining by external Commit (§12.4.3.2).
    NewMemberCommit,
}

impl Sender {
    /// The `SenderType` value.
    pub fn sender_type(&self) -> u8 {
        match self {
            Self::Member(_) => SENDER_TYPE_MEMBER,
            Self::External(_) => SENDER_TYPE_EXTERNAL,
            Self::NewMemberProposal => SENDER_TYPE_NEW_MEMBER_PROPOSAL,
            Self::NewMemberCommit => SENDER_TYPE_NEW_MEMBER_COMMIT,
        }
    }
}

impl Encode for Sender {
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), CodecError> {
        w.write_u8(self.sender_type())?;
        match self {
            Self::Member(index) | Self::External(index) => w.write_u32(*index),
            Self::NewMemberProposal | Self::NewMemberCommit => Ok(()),
        }
    }
}

impl<'a> Decode<'a> for Sender {
    fn decode(r: &mut Reader<'a>) -> Result<Self, CodecError> {
        Ok(match r.read_u8()? {
            SENDER_TYPE_MEMBER => Self::Member(r.read_u32()?),
            SENDER_TYPE_EXTERNAL => Self::External(r.read_u32()?),
            SENDER_TYPE_NEW_MEMBER_PROPOSAL => Self::NewMemberProposal,
            SENDER_TYPE_NEW_MEMBER_COMMIT => Self::NewMemberCommit,
            _ => return Err(CodecError::InvalidValue),
        })
    }
}

/// `ContentType` (§6): what a FramedContent or PrivateMessage carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ContentType {
    /// `application(1)`.
    Application,
    /// `proposal(2)`.
    Proposal,
    /// `commit(3)`.
    Commit,
}

impl ContentType {
    /// The registered value.
    pub const fn to_u8(self) -> u8 {
        match self {
            Self::Application => 1,
            Self::Proposal => 2,
            Self::Commit => 3,
        }
    }

    /// The content type with value `v`; `None` for `reserved(0)` and unknown values.
    pub const fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::Application),
            2 => Some(Self::Proposal),
            3 => Some(Self::Commit),
            _ => None,
        }
    }
}

impl Encode for ContentType {
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), CodecError> {
        w.write_u8(self.to_u8())
    }
}

impl<'a> Decode<'a> for ContentType {
    fn decode(r: &mut Reader<'a>) -> Result<Self, CodecError> {
        Self::from_u8(r.read_u8()?).ok_or(CodecError::InvalidValue)
    }
}

/// The `content_type` and `select (content_type)` part of FramedContent (§6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content<'a> {
    /// `application`: `opaque application_data<V>`.
    Application(&'a [u8]),
    /// `proposal`: `Proposal proposal`.
    Proposal(Proposal<'a>),
    /// `commit`: `Commit commit`.
    Commit(Commit<'a>),
}

impl<'a> Content<'a> {
    /// The content's type.
    pub fn content_type(&self) -> ContentType {
        match self {
            Self::Application(_) => ContentType::Application,
            Self::Proposal(_) => ContentType::Proposal,
            Self::Commit(_) => ContentType::Commit,
        }
    }

    /// Writes the `select` part only, without the content type: the form of
    /// `PrivateMessageContent` (§6.3.1), whose type is in the PrivateMessage.
    pub fn encode_body(&self, w: &mut Writer<'_>) -> Result<(), CodecError> {
        match self {
            Self::Application(data) => w.write_opaque(data),
            Self::Proposal(p) => p.encode(w),
            Self::Commit(c) => c.encode(w),
        }
    }

    /// Reads the `select` part of a content of type `content_type`, as in
    /// `PrivateMessageContent` (§6.3.1).
    pub fn decode_body(r: &mut Reader<'a>, content_type: ContentType) -> Result<Self, CodecError> {
        Ok(match content_type {
            ContentType::Application => Self::Application(r.read_opaque()?),
            ContentType::Proposal => Self::Proposal(Proposal::decode(r)?),
            ContentType::Commit => Self::Commit(Commit::decode(r)?),
        })
    }
}

impl Encode for Content<'_> {
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), CodecError> {
        self.content_type().encode(w)?;
        self.encode_body(w)
    }
}

impl<'a> Decode<'a> for Content<'a> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, CodecError> {
        let content_type = ContentType::decode(r)?;
        Self::decode_body(r, content_type)
    }
}

/// `FramedContent` (§6): a message's content with its group, epoch and sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FramedContent<'a> {
    /// `opaque group_id<V>`.
    pub group_id: &'a [u8],
    /// `uint64 epoch`.
    pub epoch: u64,
    /// `Sender sender`.
    pub sender: Sender,
    /// `opaque authenticated_data<V>`: application data, authenticated only.
    pub authenticated_data: &'a [u8],
    /// `ContentType content_type` and the content it selects.
    pub content: Content<'a>,
}
crate::tls_struct!(FramedContent<'a> { group_id, epoch, sender, authenticated_data, content });

impl<'a> FramedContent<'a> {
    /// Its fields before the content's body.
    pub(crate) fn head(&self) -> FramedContentHead<'a> {
        FramedContentHead {
            group_id: self.group_id,
            epoch: self.epoch,
            sender: self.sender,
            authenticated_data: self.authenticated_data,
            content_type: self.content.content_type(),
        }
    }
}

/// A FramedContent's fields up to its content's body (§6): what a sender
/// writes and signs around a body it laid out in place (a Commit's
/// UpdatePath is built where it is sent, issue #14).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FramedContentHead<'a> {
    pub(crate) group_id: &'a [u8],
    pub(crate) epoch: u64,
    pub(crate) sender: Sender,
    pub(crate) authenticated_data: &'a [u8],
    pub(crate) content_type: ContentType,
}
crate::tls_struct!(FramedContentHead<'a> { group_id, epoch, sender, authenticated_data, content_type });

/// `FramedContentAuthData` (§6.1): the signature over `FramedContentTBS` and,
/// for a commit, the confirmation tag.
///
/// Its encoding depends on the content type of the message it belongs to, so
/// it is read with [`FramedContentAuthData::decode_for`], not [`Decode`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FramedContentAuthData<'a> {
    /// `opaque signature<V>`.
    pub signature: &'a [u8],
    /// `MAC confirmation_tag`: present if and only if the content is a commit.
    pub confirmation_tag: Option<&'a [u8]>,
}

impl<'a> FramedContentAuthData<'a> {
    /// Reads the auth data of a message whose content is of `content_type`.
    pub fn decode_for(r: &mut Reader<'a>, content_type: ContentType) -> Result<Self, CodecError> {
        let signature = r.read_opaque()?;
        let confirmation_tag = match content_type {
            ContentType::Commit => Some(r.read_opaque()?),
            ContentType::Application | ContentType::Proposal => None,
        };
        Ok(Self { signature, confirmation_tag })
    }

    /// True if the confirmation tag is present exactly when `content_type` is
    /// a commit: the condition for the encoding to read back.
    pub fn fits(&self, content_type: ContentType) -> bool {
        self.confirmation_tag.is_some() == (content_type == ContentType::Commit)
    }
}

impl Encode for FramedContentAuthData<'_> {
    /// Writes the signature and, if present, the confirmation tag (a `MAC`,
    /// without an `optional` presence byte).
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), CodecError> {
        w.write_opaque(self.signature)?;
        match self.confirmation_tag {
            Some(tag) => w.write_opaque(tag),
            None => Ok(()),
        }
    }
}

/// `PublicMessage` (§6.2): a signed, unencrypted message, viewed over its
/// encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicMessage<'a> {
    /// `FramedContent content`.
    pub content: FramedContent<'a>,
    /// `FramedContentAuthData auth`.
    pub auth: FramedContentAuthData<'a>,
    /// `MAC membership_tag`: present if and only if the sender is a member.
    pub membership_tag: Option<&'a [u8]>,
    /// The encoding of `content`, as received.
    content_bytes: &'a [u8],
}

impl<'a> PublicMessage<'a> {
    /// The encoding of `content` (the FramedContent) as received: the part of
    /// `FramedContentTBS` (§6.1), `AuthenticatedContent` (§6) and
    /// `ConfirmedTranscriptHashInput` (§8.2) that this message carries.
    pub fn content_bytes(&self) -> &'a [u8] {
        self.content_bytes
    }
}

impl Encode for PublicMessage<'_> {
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), CodecError> {
        let is_member = matches!(self.content.sender, Sender::Member(_));
        if !self.auth.fits(self.content.content.content_type()) || self.membership_tag.is_some() != is_member {
            return Err(CodecError::InvalidValue);
        }
        self.content.encode(w)?;
        self.auth.encode(w)?;
        match self.membership_tag {
            Some(tag) => w.write_opaque(tag),
            None => Ok(()),
        }
    }
}

impl<'a> Decode<'a> for PublicMessage<'a> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, CodecError> {
        let start = r.remaining();
        let content = FramedContent::decode(r)?;
        let content_bytes = r.consumed_since(start);
        let auth = FramedContentAuthData::decode_for(r, content.content.content_type())?;
        let membership_tag = match content.sender {
            Sender::Member(_) => Some(r.read_opaque()?),
            Sender::External(_) | Sender::NewMemberProposal | Sender::NewMemberCommit => None,
        };
        Ok(Self { content, auth, membership_tag, content_bytes })
    }
}

/// `PrivateMessage` (§6.3): an encrypted message. The sender and the content
/// are in the two ciphertexts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrivateMessage<'a> {
    /// `opaque group_id<V>`.
    pub group_id: &'a [u8],
    /// `uint64 epoch`.
    pub epoch: u64,
    /// `ContentType content_type`.
    pub content_type: ContentType,
    /// `opaque authenticated_data<V>`.
    pub authenticated_data: &'a [u8],
    /// `opaque encrypted_sender_data<V>`: the sealed `SenderData` (§6.3.2).
    pub encrypted_sender_data: &'a [u8],
    /// `opaque ciphertext<V>`: the sealed `PrivateMessageContent` (§6.3.1).
    pub ciphertext: &'a [u8],
}
crate::tls_struct!(PrivateMessage<'a> {
    group_id,
    epoch,
    content_type,
    authenticated_data,
    encrypted_sender_data,
    ciphertext,
});
