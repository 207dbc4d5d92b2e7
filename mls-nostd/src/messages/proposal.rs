//! Proposals (RFC 9420 §12.1): Add, Update, Remove, PreSharedKey, ReInit,
//! ExternalInit and GroupContextExtensions, the `Proposal` that carries one of
//! them with its type, and `ProposalOrRef` (§12.4), the way a Commit lists them.
//!
//! Only structure is checked here; whether a proposal is valid for a group
//! (§12.1.x, §12.2) is decided by the group layer.

use crate::codec::{CodecError, Decode, Encode, Reader, Writer};
use crate::extensions::Extensions;
use crate::key_package::KeyPackage;
use crate::leaf_node::LeafNode;
use crate::psk::PreSharedKeyId;

/// `ProposalType add(1)`.
pub const PROPOSAL_TYPE_ADD: u16 = 0x0001;
/// `ProposalType update(2)`.
pub const PROPOSAL_TYPE_UPDATE: u16 = 0x0002;
/// `ProposalType remove(3)`.
pub const PROPOSAL_TYPE_REMOVE: u16 = 0x0003;
/// `ProposalType psk(4)`.
pub const PROPOSAL_TYPE_PSK: u16 = 0x0004;
/// `ProposalType reinit(5)`.
pub const PROPOSAL_TYPE_REINIT: u16 = 0x0005;
/// `ProposalType external_init(6)`.
pub const PROPOSAL_TYPE_EXTERNAL_INIT: u16 = 0x0006;
/// `ProposalType group_context_extensions(7)`.
pub const PROPOSAL_TYPE_GROUP_CONTEXT_EXTENSIONS: u16 = 0x0007;

/// `Add` (§12.1.1): add the client of a KeyPackage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Add<'a> {
    /// The new member's KeyPackage.
    pub key_package: KeyPackage<'a>,
}
crate::tls_struct!(Add<'a> { key_package });

/// `Update` (§12.1.2): replace the sender's leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Update<'a> {
    /// The sender's new leaf (source `update`).
    pub leaf_node: LeafNode<'a>,
}
crate::tls_struct!(Update<'a> { leaf_node });

/// `Remove` (§12.1.3): remove the member at a leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Remove {
    /// `uint32 removed`: the leaf index of the member to remove.
    pub removed: u32,
}
crate::tls_struct!(Remove { removed });

/// `PreSharedKey` (§12.1.4): inject a PSK into the next epoch's key schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PreSharedKey<'a> {
    /// `PreSharedKeyID psk`.
    pub psk: PreSharedKeyId<'a>,
}
crate::tls_struct!(PreSharedKey<'a> { psk });

/// `ReInit` (§12.1.5): reinitialize the group with new parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReInit<'a> {
    /// `opaque group_id<V>` of the new group.
    pub group_id: &'a [u8],
    /// `ProtocolVersion version` of the new group.
    pub version: u16,
    /// `CipherSuite cipher_suite` of the new group (raw: any suite decodes).
    pub cipher_suite: u16,
    /// `Extension extensions<V>` of the new group.
    pub extensions: Extensions<'a>,
}
crate::tls_struct!(ReInit<'a> { group_id, version, cipher_suite, extensions });

/// `ExternalInit` (§12.1.6): the KEM output of an external joiner (§8.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExternalInit<'a> {
    /// `opaque kem_output<V>`.
    pub kem_output: &'a [u8],
}
crate::tls_struct!(ExternalInit<'a> { kem_output });

/// `GroupContextExtensions` (§12.1.7): replace the group's extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupContextExtensions<'a> {
    /// `Extension extensions<V>`: the complete new list.
    pub extensions: Extensions<'a>,
}
crate::tls_struct!(GroupContextExtensions<'a> { extensions });

/// `Proposal` (§12.1): a proposal with its `ProposalType`.
///
/// Proposal types other than the seven of RFC 9420 do not decode
/// ([`CodecError::InvalidValue`]): their body has no length prefix, so a
/// decoder cannot skip what it does not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proposal<'a> {
    /// `add(1)`.
    Add(Add<'a>),
    /// `update(2)`.
    Update(Update<'a>),
    /// `remove(3)`.
    Remove(Remove),
    /// `psk(4)`.
    PreSharedKey(PreSharedKey<'a>),
    /// `reinit(5)`.
    ReInit(ReInit<'a>),
    /// `external_init(6)`.
    ExternalInit(ExternalInit<'a>),
    /// `group_context_extensions(7)`.
    GroupContextExtensions(GroupContextExtensions<'a>),
}

impl Proposal<'_> {
    /// The `ProposalType` value.
    pub fn proposal_type(&self) -> u16 {
        match self {
            Self::Add(_) => PROPOSAL_TYPE_ADD,
            Self::Update(_) => PROPOSAL_TYPE_UPDATE,
            Self::Remove(_) => PROPOSAL_TYPE_REMOVE,
            Self::PreSharedKey(_) => PROPOSAL_TYPE_PSK,
            Self::ReInit(_) => PROPOSAL_TYPE_REINIT,
            Self::ExternalInit(_) => PROPOSAL_TYPE_EXTERNAL_INIT,
            Self::GroupContextExtensions(_) => PROPOSAL_TYPE_GROUP_CONTEXT_EXTENSIONS,
        }
    }
}

impl Encode for Proposal<'_> {
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), CodecError> {
        w.write_u16(self.proposal_type())?;
        match self {
            Self::Add(p) => p.encode(w),
            Self::Update(p) => p.encode(w),
            Self::Remove(p) => p.encode(w),
            Self::PreSharedKey(p) => p.encode(w),
            Self::ReInit(p) => p.encode(w),
            Self::ExternalInit(p) => p.encode(w),
            Self::GroupContextExtensions(p) => p.encode(w),
        }
    }
}

impl<'a> Decode<'a> for Proposal<'a> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, CodecError> {
        Ok(match r.read_u16()? {
            PROPOSAL_TYPE_ADD => Self::Add(Add::decode(r)?),
            PROPOSAL_TYPE_UPDATE => Self::Update(Update::decode(r)?),
            PROPOSAL_TYPE_REMOVE => Self::Remove(Remove::decode(r)?),
            PROPOSAL_TYPE_PSK => Self::PreSharedKey(PreSharedKey::decode(r)?),
            PROPOSAL_TYPE_REINIT => Self::ReInit(ReInit::decode(r)?),
            PROPOSAL_TYPE_EXTERNAL_INIT => Self::ExternalInit(ExternalInit::decode(r)?),
            PROPOSAL_TYPE_GROUP_CONTEXT_EXTENSIONS => Self::GroupContextExtensions(GroupContextExtensions::decode(r)?),
            // reserved(0) and types whose encoding this build does not know.
            _ => return Err(CodecError::InvalidValue),
        })
    }
}

/// `ProposalOrRefType proposal(1)`.
pub const PROPOSAL_OR_REF_PROPOSAL: u8 = 1;
/// `ProposalOrRefType reference(2)`.
pub const PROPOSAL_OR_REF_REFERENCE: u8 = 2;

/// `ProposalOrRef` (§12.4): a proposal carried in a Commit by value, or by
/// reference to one sent earlier in the epoch.
///
/// The `Proposal` variant is a few hundred bytes of borrowed slices (an Add
/// holds a whole KeyPackage view); without a heap it cannot be boxed, and a
/// Commit's list yields one value at a time, so the size stays bounded.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProposalOrRef<'a> {
    /// `proposal(1)`: the proposal itself.
    Proposal(Proposal<'a>),
    /// `reference(2)`: `ProposalRef reference`, the `MakeProposalRef` of the
    /// AuthenticatedContent that carried the proposal (§5.2).
    Reference(&'a [u8]),
}

impl Encode for ProposalOrRef<'_> {
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), CodecError> {
        match self {
            Self::Proposal(p) => {
                w.write_u8(PROPOSAL_OR_REF_PROPOSAL)?;
                p.encode(w)
            }
            Self::Reference(r) => {
                w.write_u8(PROPOSAL_OR_REF_REFERENCE)?;
                w.write_opaque(r)
            }
        }
    }
}

impl<'a> Decode<'a> for ProposalOrRef<'a> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, CodecError> {
        match r.read_u8()? {
            PROPOSAL_OR_REF_PROPOSAL => Ok(Self::Proposal(Proposal::decode(r)?)),
            PROPOSAL_OR_REF_REFERENCE => Ok(Self::Reference(r.read_opaque()?)),
            _ => Err(CodecError::InvalidValue),
        }
    }
}
