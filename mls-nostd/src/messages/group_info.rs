//! GroupInfo (RFC 9420 §12.4.3): the signed description of a group's
//! current state that new members join from, with its `GroupInfoTBS` and the
//! GroupContext (§8.1) as it travels inside it; signing and verifying it
//! (`SignWithLabel(., "GroupInfoTBS", GroupInfoTBS)`, §12.4.3 and §5.1.2).

use crate::codec::{CodecError, Decode, Encode, Reader, Writer};
use crate::crypto::labeled::{sign_with_label_parts, verify_with_label_parts};
use crate::crypto::signature::{SignaturePublicKey};
use crate::crypto::signer::Signer;
use crate::crypto::{CipherSuite, CryptoError};
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
    /// The encoding of `tbs.group_context`, as received (a prefix of `tbs_bytes`).
    group_context_bytes: &'a [u8],
}

/// Label of the GroupInfo signature (§12.4.3).
pub const GROUP_INFO_TBS_LABEL: &[u8] = b"GroupInfoTBS";

/// Why a GroupInfo could not be signed, or its signature was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum GroupInfoError {
    /// The output buffer is too small, or a field too long to encode.
    Codec(CodecError),
    /// The GroupContext names another cipher suite (or protocol version)
    /// than the one the operation is for.
    WrongCipherSuite,
    /// The signature key is malformed, or signing failed.
    Crypto(CryptoError),
    /// The signature does not verify under the signer's key (§12.4.3).
    InvalidSignature,
}

impl core::fmt::Display for GroupInfoError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Codec(e) => write!(f, "GroupInfo encoding: {e}"),
            Self::WrongCipherSuite => f.write_str("GroupInfo of another cipher suite or version"),
            Self::Crypto(e) => write!(f, "GroupInfo signature: {e}"),
            Self::InvalidSignature => f.write_str("GroupInfo signature does not verify"),
        }
    }
}

impl core::error::Error for GroupInfoError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Codec(e) => Some(e),
            Self::Crypto(e) => Some(e),
            _ => None,
        }
    }
}

impl From<CodecError> for GroupInfoError {
    fn from(e: CodecError) -> Self {
        Self::Codec(e)
    }
}

impl<'a> GroupInfo<'a> {
    /// The encoding of the signed fields as received: the `GroupInfoTBS`
    /// content of the signature.
    pub fn tbs_bytes(&self) -> &'a [u8] {
        self.tbs_bytes
    }

    /// The encoding of `group_context` as received: the GroupContext the
    /// key schedule of a joiner uses (§8), byte-exact.
    pub fn group_context_bytes(&self) -> &'a [u8] {
        self.group_context_bytes
    }

    /// Writes the GroupInfo of `tbs`, signed by the member whose signature
    /// key is `key` (§12.4.3: `SignWithLabel(., "GroupInfoTBS",
    /// GroupInfoTBS)`), into `out`; returns its encoding. `tbs.signer` must
    /// be that member's leaf index, and `tbs.group_context` of `suite`.
    pub fn sign_into<'o>(
        suite: CipherSuite,
        tbs: &GroupInfoTbs<'_>,
        key: &impl Signer,
        out: &'o mut [u8],
    ) -> Result<&'o [u8], GroupInfoError> {
        check_suite(suite, &tbs.group_context)?;
        let mut w = Writer::new(out);
        tbs.encode(&mut w)?;
        let signature = sign_with_label_parts(suite, key, GROUP_INFO_TBS_LABEL, &[w.written()])
            .map_err(GroupInfoError::Crypto)?;
        w.write_opaque(&signature)?;
        let n = w.len();
        out.get(..n).ok_or(GroupInfoError::Codec(CodecError::BufferTooSmall { needed: n }))
    }

    /// Verifies the signature with the signature key of the leaf `tbs.signer`
    /// of the group's ratchet tree (§12.4.3), which the caller looks up (the
    /// tree is the group layer's). Fails unless the GroupContext is of
    /// version mls10 and cipher suite `suite`.
    pub fn verify_signature(&self, suite: CipherSuite, signer_key: &SignaturePublicKey) -> Result<(), GroupInfoError> {
        check_suite(suite, &self.tbs.group_context)?;
        verify_with_label_parts(suite, signer_key, GROUP_INFO_TBS_LABEL, &[self.tbs_bytes], self.signature)
            .map_err(|e| match e {
                CryptoError::InvalidKey => GroupInfoError::Crypto(e),
                _ => GroupInfoError::InvalidSignature,
            })
    }
}

fn check_suite(suite: CipherSuite, gc: &WireGroupContext<'_>) -> Result<(), GroupInfoError> {
    if gc.version != PROTOCOL_VERSION_MLS10 || gc.cipher_suite != suite.to_u16() {
        return Err(GroupInfoError::WrongCipherSuite);
    }
    Ok(())
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
        let group_context = WireGroupContext::decode(r)?;
        let group_context_bytes = r.consumed_since(start);
        let tbs = GroupInfoTbs {
            group_context,
            extensions: Extensions::decode(r)?,
            confirmation_tag: r.read_opaque()?,
            signer: r.read_u32()?,
        };
        let tbs_bytes = r.consumed_since(start);
        Ok(Self { tbs, signature: r.read_opaque()?, tbs_bytes, group_context_bytes })
    }
}
