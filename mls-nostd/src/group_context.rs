//! The GroupContext (RFC 9420 §8.1): the state every member agrees on, mixed
//! into the key schedule of each epoch.

use crate::codec::{CodecError, Decode, Encode, Reader, Writer};
use crate::crypto::CipherSuite;

/// `ProtocolVersion mls10` (§6).
pub const PROTOCOL_VERSION_MLS10: u16 = 1;

/// A GroupContext whose variable-length fields borrow from elsewhere.
///
/// `extensions` holds the encoded body of the `Extension extensions<V>` vector
/// (the concatenated extensions, without the length prefix), kept byte-exact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupContext<'a> {
    /// The group's cipher suite.
    pub cipher_suite: CipherSuite,
    /// `opaque group_id<V>`.
    pub group_id: &'a [u8],
    /// The epoch number.
    pub epoch: u64,
    /// `opaque tree_hash<V>`: the root's tree hash.
    pub tree_hash: &'a [u8],
    /// `opaque confirmed_transcript_hash<V>`.
    pub confirmed_transcript_hash: &'a [u8],
    /// Body of `Extension extensions<V>`.
    pub extensions: &'a [u8],
}

impl Encode for GroupContext<'_> {
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), CodecError> {
        w.write_u16(PROTOCOL_VERSION_MLS10)?;
        w.write_u16(self.cipher_suite.to_u16())?;
        w.write_opaque(self.group_id)?;
        w.write_u64(self.epoch)?;
        w.write_opaque(self.tree_hash)?;
        w.write_opaque(self.confirmed_transcript_hash)?;
        w.write_opaque(self.extensions)
    }
}

impl<'a> Decode<'a> for GroupContext<'a> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, CodecError> {
        if r.read_u16()? != PROTOCOL_VERSION_MLS10 {
            return Err(CodecError::InvalidValue);
        }
        let cipher_suite = CipherSuite::from_u16(r.read_u16()?).ok_or(CodecError::InvalidValue)?;
        let group_id = r.read_opaque()?;
        let epoch = r.read_u64()?;
        let tree_hash = r.read_opaque()?;
        let confirmed_transcript_hash = r.read_opaque()?;
        let extensions = r.read_opaque()?;
        // Each extension must be well formed: uint16 type, opaque data<V>.
        let mut ext = Reader::new(extensions);
        while !ext.is_empty() {
            ext.read_u16()?;
            ext.read_opaque()?;
        }
        Ok(Self { cipher_suite, group_id, epoch, tree_hash, confirmed_transcript_hash, extensions })
    }
}
