//! GroupInfo (RFC 9420 §12.4.3): the signed description of a group's
//! current state that new members join from, with its `GroupInfoTBS` and the
//! GroupContext (§8.1) as it travels inside it.

use crate::codec::{CodecError, Decode, Encode, Reader, Writer};
use crate::crypto::CipherSuite;
use crate::extensions::Extensions;
use crate::group_context::{GroupContext, PROTOCOL_VERSION_MLS10};

/// A `GroupContext` (§8.1) as carried in a GroupInfo, before its version and
/// cipher suite are checked: any version and suite decode, so a GroupInfo of
/// a suite this build does not implement can still be read (and forwarded).
///
/// [`GroupContext`] is the checked form the key schedule uses; convert with
/// [`WireGroupContext::to_group_context`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WireGroupContext<'a> {
    /// `ProtocolVersion version`.
    pub version: u16,
    /// `CipherSuite cipher_suite` (raw).
    pub cipher_suite: u16,
    /// `opaque group_id<V>`.
    pub group_id: &'a [u8],
    /// `uint64 epoch`.
    pub epoch: u64,
    /// `opaque tree_hash<V>`.
    pub tree_hash: &'a [u8],
    /// `opaque confirmed_transcript_hash<V>`.
    pub confirmed_transcript_hash: &'a [u8],
    /// `Extension extensions<V>`.
    pub extensions: Extensions<'a>,
}
crate::tls_struct!(WireGroupContext<'a> {
    version,
    cipher_suite,
    group_id,
    epoch,
    tree_hash,
    confirmed_transcript_hash,
    extensions,
});

impl<'a> WireGroupContext<'a> {
    /// The checked GroupContext; `None` unless the version is mls10 and this
    /// build implements the cipher suite.
    pub fn to_group_context(&self) -> Option<GroupContext<'a>> {
        if self.version != PROTOCOL_VERSION_MLS10 {
            return None;
        }
        Some(GroupContext {
            cipher_suite: CipherSuite::from_u16(self.cipher_suite)?,
            group_id: self.group_id,
            epoch: self.epoch,
            tree_hash: self.tree_hash,
            confirmed_transcript_hash: self.confirmed_transcript_hash,
            extensions: self.extensions.body(),
        })
    }

    /// The wire form of `gc`; fails if its extensions are malformed.
    pub fn from_group_context(gc: &GroupContext<'a>) -> Result<Self, CodecError> {
        Ok(Self {
            version: PROTOCOL_VERSION_MLS10,
            cipher_suite: gc.cipher_suite.to_u16(),
            group_id: gc.group_id,
            epoch: gc.epoch,
            tree_hash: gc.tree_hash,
            confirmed_transcript_hash: gc.confirmed_transcript_hash,
            extensions: Extensions::from_body(gc.extensions)?,
        })
    }
}

/// `GroupInfoTBS` (§12.4.3): the fields of a GroupInfo its signature covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupInfoTbs<'a> {
    /// `GroupContext group_context`.
    pub group_context: WireGroupContext<'a>,
    /// `Extension extensions<V>`: extensions of the GroupInfo itself (e.g.
    /// `ratchet_tree`, `external_pub`).
    pub extensions: Extensions<'a>,
    /// `MAC confirmation_tag` of the epoch.
    pub confirmation_tag: &'a [u8],
    /// `uint32 signer`: leaf index of the signing member.
    pub signer: u32,
}
crate::tls_struct!(GroupInfoTbs<'a> { group_context, extensions, confirmation_tag, signer });

/// `GroupInfo` (§12.4.3), viewed over its encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupInfo<'a> {
    /// The signed fields.
    pub tbs: GroupInfoTbs<'a>,
    /// `opaque signature<V>`: `SignWithLabel(., "GroupInfoTBS", GroupInfoTBS)`.
    pub signature: &'a [u8],
    /// The encoding of `tbs`, as received.
    tbs_bytes: &'a [u8],
}

impl<'a> GroupInfo<'a> {
    /// The encoding of the signed fields as received: the `GroupInfoTBS`
    /// content of the signature.
    pub fn tbs_bytes(&self) -> &'a [u8] {
        self.tbs_bytes
    }
}

impl Encode for GroupInfo<'_> {
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), CodecError> {
        self.tbs.encode(w)?;
        w.write_opaque(self.signature)
    }
}

impl<'a> Decode<'a> for GroupInfo<'a> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, CodecError> {
        let start = r.remaining();
        let tbs = GroupInfoTbs::decode(r)?;
        let tbs_bytes = r.consumed_since(start);
        Ok(Self { tbs, signature: r.read_opaque()?, tbs_bytes })
    }
}
