//! `MLSMessage` (RFC 9420 §6): the outer envelope of everything MLS sends,
//! tagged with its protocol version and wire format.

use crate::codec::{CodecError, Decode, Encode, Reader, Writer};
use crate::group_context::PROTOCOL_VERSION_MLS10;
use crate::key_package::KeyPackage;

use super::framing::{
    PrivateMessage, PublicMessage, WIRE_FORMAT_GROUP_INFO, WIRE_FORMAT_KEY_PACKAGE, WIRE_FORMAT_PRIVATE_MESSAGE,
    WIRE_FORMAT_PUBLIC_MESSAGE, WIRE_FORMAT_WELCOME,
};
use super::group_info::GroupInfo;
use super::welcome::Welcome;

/// The `select (MLSMessage.wire_format)` part of an MLSMessage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MlsMessageBody<'a> {
    /// `mls_public_message`.
    PublicMessage(PublicMessage<'a>),
    /// `mls_private_message`.
    PrivateMessage(PrivateMessage<'a>),
    /// `mls_welcome`.
    Welcome(Welcome<'a>),
    /// `mls_group_info`.
    GroupInfo(GroupInfo<'a>),
    /// `mls_key_package`.
    KeyPackage(KeyPackage<'a>),
}

impl MlsMessageBody<'_> {
    /// The `WireFormat` value.
    pub fn wire_format(&self) -> u16 {
        match self {
            Self::PublicMessage(_) => WIRE_FORMAT_PUBLIC_MESSAGE,
            Self::PrivateMessage(_) => WIRE_FORMAT_PRIVATE_MESSAGE,
            Self::Welcome(_) => WIRE_FORMAT_WELCOME,
            Self::GroupInfo(_) => WIRE_FORMAT_GROUP_INFO,
            Self::KeyPackage(_) => WIRE_FORMAT_KEY_PACKAGE,
        }
    }
}

impl Encode for MlsMessageBody<'_> {
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), CodecError> {
        w.write_u16(self.wire_format())?;
        match self {
            Self::PublicMessage(m) => m.encode(w),
            Self::PrivateMessage(m) => m.encode(w),
            Self::Welcome(m) => m.encode(w),
            Self::GroupInfo(m) => m.encode(w),
            Self::KeyPackage(m) => m.encode(w),
        }
    }
}

impl<'a> Decode<'a> for MlsMessageBody<'a> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, CodecError> {
        Ok(match r.read_u16()? {
            WIRE_FORMAT_PUBLIC_MESSAGE => Self::PublicMessage(PublicMessage::decode(r)?),
            WIRE_FORMAT_PRIVATE_MESSAGE => Self::PrivateMessage(PrivateMessage::decode(r)?),
            WIRE_FORMAT_WELCOME => Self::Welcome(Welcome::decode(r)?),
            WIRE_FORMAT_GROUP_INFO => Self::GroupInfo(GroupInfo::decode(r)?),
            WIRE_FORMAT_KEY_PACKAGE => Self::KeyPackage(KeyPackage::decode(r)?),
            // reserved(0) and wire formats this build does not know.
            _ => return Err(CodecError::InvalidValue),
        })
    }
}

/// `MLSMessage` (§6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MlsMessage<'a> {
    /// `ProtocolVersion version`: always `mls10` once decoded.
    pub version: u16,
    /// `WireFormat wire_format` and the message it selects.
    pub body: MlsMessageBody<'a>,
}

impl MlsMessage<'_> {
    /// The `WireFormat` value.
    pub fn wire_format(&self) -> u16 {
        self.body.wire_format()
    }
}

impl Encode for MlsMessage<'_> {
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), CodecError> {
        w.write_u16(self.version)?;
        self.body.encode(w)
    }
}

impl<'a> Decode<'a> for MlsMessage<'a> {
    /// Reads an MLSMessage of version `mls10`; other versions fail with
    /// [`CodecError::InvalidValue`], since their body may be laid out differently.
    fn decode(r: &mut Reader<'a>) -> Result<Self, CodecError> {
        let version = r.read_u16()?;
        if version != PROTOCOL_VERSION_MLS10 {
            return Err(CodecError::InvalidValue);
        }
        Ok(Self { version, body: MlsMessageBody::decode(r)? })
    }
}
