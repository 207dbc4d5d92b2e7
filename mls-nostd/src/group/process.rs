//! Processing a Commit (RFC 9420 §12.4.2) into a staged next epoch, with the
//! proposal-list validation of §12.2 and the application order of §12.3; and
//! keeping proposals for later commits by reference (§12.1, §12.4).

use super::{EpochState, Group, MAX_GROUP_CONTEXT_LEN, MAX_PSKS_PER_COMMIT};
use crate::crypto::signer::Signer;
use crate::capacity::Capacity;
use crate::codec::{CodecError, Decode, Encode, OwnedBytes, Writer};
use crate::crypto::labeled::{PROPOSAL_REF_LABEL, VarintPrefix};
use crate::crypto::{CryptoError, HashValue, Secret};
use crate::extensions::{EXT_REQUIRED_CAPABILITIES, Extensions, U16List};
use crate::identity::{CredentialUse, IdentityProvider, MemberIdentity};
use crate::key_package::{DEFAULT_EXTENSION_TYPES, KeyPackageError};
use crate::key_schedule::{EpochSecrets, joiner_secret};
use crate::leaf_node::{Capabilities, LeafNode, LeafNodeContext, LeafNodeSource};
use crate::messages::commit::Commit;
use crate::messages::authenticated_content::AuthenticatedContent;
use crate::messages::framing::{Content, Sender};
use crate::messages::proposal::{Proposal, ProposalOrRef};
use crate::psk::{PreSharedKeyId, Psk, ResumptionPskUsage, psk_secret};
use crate::psk::PskStore;
use super::proposal_store::ProposalStore;
use crate::ratchet_tree::tree::{TreeError, TreeSlices, TreeView};
use crate::ratchet_tree::treekem::TreeKemError;
use crate::ratchet_tree::update_path::UpdatePath;
use crate::transcript;
use crate::tree_math::{LeafIndex, NodeIndex};

/// Why a Commit (or a proposal) was rejected. The group is unchanged.
///
/// Each variant has a stable code ([`CommitError::code`]) listed with its RFC
/// section and the test that proves it in `docs/validation.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum CommitError {
    /// The message is for another group.
    WrongGroupId,
    /// The message is for another epoch.
    WrongEpoch,
    /// The content is not a Commit (or not a Proposal where one is expected).
    WrongContentType,
    /// The sender is not a current member (external commits are not handled here).
    UnknownSender,
    /// We are the committer: merge or discard our own pending commit instead.
    OwnCommit,
    /// A commit is staged (ours or one received): merge or discard it before
    /// processing or creating another, or joining into this slot.
    CommitPending,
    /// A proposal reference names no proposal received this epoch.
    UnknownProposalRef,
    /// The committer's own Update is in the list (§12.2).
    UpdateFromCommitter,
    /// A Remove removes the committer (§12.2).
    RemovesCommitter,
    /// Two Update/Remove proposals for one leaf (§12.2).
    DuplicateUpdateOrRemove,
    /// A Remove of a blank or absent leaf (§12.1.3).
    RemoveOfBlankLeaf,
    /// Two Adds of the same client, by signature key (§12.2).
    DuplicateAdd,
    /// An Add of a client already in the group and not removed (§12.2).
    AddOfExistingMember,
    /// An Add's KeyPackage is invalid (§10.1).
    InvalidKeyPackage(KeyPackageError),
    /// An Update's leaf is invalid (§12.1.2, §7.3).
    InvalidUpdateLeaf,
    /// Two PreSharedKey proposals with the same PreSharedKeyID, nonce
    /// included (§12.2).
    DuplicatePsk,
    /// A PSK is unknown or its nonce has the wrong length (§12.1.4).
    InvalidPsk,
    /// More than one GroupContextExtensions proposal (§12.2).
    MultipleGroupContextExtensions,
    /// A GroupContextExtensions requires what some member lacks (§12.1.7).
    UnsupportedGroupContextExtensions,
    /// A ReInit together with other proposals (§12.2).
    ReInitWithOtherProposals,
    /// A ReInit to a protocol version below the group's (§12.1.5).
    InvalidReInit,
    /// An ExternalInit in a member's Commit (§12.2).
    ExternalInitInMemberCommit,
    /// A proposal type this sender may not send (§12.1.8).
    ProposalNotAllowedForSender,
    /// The application's policy refuses this proposal of its sender
    /// ([`IdentityProvider::authorize_proposal`], §12.2).
    ProposalNotAuthorized,
    /// An external Commit breaks the rules of §12.2 and §12.4.3.2.
    InvalidExternalCommit,
    /// A leaf lacks a capability the group requires (§7.3, §11.1).
    UnsupportedCapabilities,
    /// The application refused a credential the Commit brings in (§5.3.1).
    CredentialRejected,
    /// A leaf's new credential is not a valid successor of the one it
    /// replaces (an Update, a committer's path leaf, or an external resync's
    /// removed member), per the application (§5.3.1, §12.1.2, §12.4.3.2).
    InvalidSuccessor,
    /// A new key is already used in the tree (§7.3, §12.4.2).
    DuplicateKey,
    /// The Commit needs a path and has none (§12.4).
    PathRequired,
    /// The UpdatePath is invalid.
    InvalidPath(TreeKemError),
    /// The path's leaf keeps the committer's encryption key (§12.4.2).
    PathLeafKeyNotFresh,
    /// The confirmation tag does not match (§6.1).
    ConfirmationTagMismatch,
    /// Too many proposals, PSKs or pending proposal bytes for the
    /// capacities (which one is said).
    CapacityExceeded(Capacity),
    /// A tree operation failed.
    Tree(TreeError),
    /// A cryptographic operation failed.
    Crypto(CryptoError),
    /// Malformed content.
    Codec(CodecError),
}

impl core::fmt::Display for CommitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let code = self.code();
        match self {
            Self::WrongGroupId => write!(f, "{code}: message for another group"),
            Self::WrongEpoch => write!(f, "{code}: message for another epoch"),
            Self::WrongContentType => write!(f, "{code}: not a commit (or not a proposal where one is expected)"),
            Self::UnknownSender => write!(f, "{code}: sender is not a current member"),
            Self::OwnCommit => write!(f, "{code}: our own commit: merge or discard it instead"),
            Self::CommitPending => write!(f, "{code}: a commit is staged: merge or discard it first"),
            Self::UnknownProposalRef => write!(f, "{code}: proposal reference names no proposal of this epoch"),
            Self::UpdateFromCommitter => write!(f, "{code}: the committer's own Update is in the list"),
            Self::RemovesCommitter => write!(f, "{code}: a Remove removes the committer"),
            Self::DuplicateUpdateOrRemove => write!(f, "{code}: two Update or Remove proposals for one leaf"),
            Self::RemoveOfBlankLeaf => write!(f, "{code}: Remove of a blank or absent leaf"),
            Self::DuplicateAdd => write!(f, "{code}: two Adds of the same client"),
            Self::AddOfExistingMember => write!(f, "{code}: Add of a client already in the group"),
            Self::InvalidKeyPackage(e) => write!(f, "{code}: invalid KeyPackage in an Add: {e}"),
            Self::InvalidUpdateLeaf => write!(f, "{code}: invalid leaf in an Update"),
            Self::DuplicatePsk => write!(f, "{code}: two PreSharedKey proposals with the same PreSharedKeyID"),
            Self::InvalidPsk => write!(f, "{code}: PSK unknown or with a nonce of the wrong length"),
            Self::MultipleGroupContextExtensions => write!(f, "{code}: more than one GroupContextExtensions proposal"),
            Self::UnsupportedGroupContextExtensions => {
                write!(f, "{code}: GroupContextExtensions require what some member lacks")
            }
            Self::ReInitWithOtherProposals => write!(f, "{code}: ReInit together with other proposals"),
            Self::InvalidReInit => write!(f, "{code}: ReInit to a lower protocol version"),
            Self::ExternalInitInMemberCommit => write!(f, "{code}: ExternalInit in a member's commit"),
            Self::ProposalNotAllowedForSender => write!(f, "{code}: proposal type not allowed for this sender"),
            Self::ProposalNotAuthorized => write!(f, "{code}: proposal refused by the application's policy"),
            Self::InvalidExternalCommit => write!(f, "{code}: external commit breaks the rules of §12.2"),
            Self::UnsupportedCapabilities => write!(f, "{code}: a leaf lacks a capability the group requires"),
            Self::CredentialRejected => write!(f, "{code}: credential rejected by the identity provider"),
            Self::InvalidSuccessor => write!(f, "{code}: new credential is not a valid successor of the old one"),
            Self::DuplicateKey => write!(f, "{code}: a new key is already used in the tree"),
            Self::PathRequired => write!(f, "{code}: the commit needs a path and has none"),
            Self::InvalidPath(e) => write!(f, "{code}: invalid UpdatePath: {e}"),
            Self::PathLeafKeyNotFresh => write!(f, "{code}: the path's leaf keeps the committer's encryption key"),
            Self::ConfirmationTagMismatch => write!(f, "{code}: confirmation tag does not match"),
            Self::CapacityExceeded(c) => write!(f, "{code}: capacity exceeded: {c}"),
            Self::Tree(e) => write!(f, "{code}: ratchet tree: {e}"),
            Self::Crypto(e) => write!(f, "{code}: crypto: {e}"),
            Self::Codec(e) => write!(f, "{code}: malformed content: {e}"),
        }
    }
}

impl core::error::Error for CommitError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::InvalidKeyPackage(e) => Some(e),
            Self::InvalidPath(e) => Some(e),
            Self::Tree(e) => Some(e),
            Self::Crypto(e) => Some(e),
            Self::Codec(e) => Some(e),
            _ => None,
        }
    }
}

impl CommitError {
    /// The stable code of this rejection (see `docs/validation.md`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::WrongGroupId => "FRM-GROUP",
            Self::WrongEpoch => "FRM-EPOCH",
            Self::WrongContentType => "FRM-CONTENT",
            Self::UnknownSender => "FRM-SENDER",
            Self::OwnCommit => "COM-OWN",
            Self::CommitPending => "COM-PENDING",
            Self::UnknownProposalRef => "PRL-REF",
            Self::UpdateFromCommitter => "PRL-UPD-SELF",
            Self::RemovesCommitter => "PRL-REM-SELF",
            Self::DuplicateUpdateOrRemove => "PRL-UPD-REM-DUP",
            Self::RemoveOfBlankLeaf => "PRP-REM-BLANK",
            Self::DuplicateAdd => "PRL-ADD-DUP",
            Self::AddOfExistingMember => "PRL-ADD-MEMBER",
            Self::InvalidKeyPackage(_) => "PRP-ADD-KP",
            Self::InvalidUpdateLeaf => "PRP-UPD-LEAF",
            Self::DuplicatePsk => "PRL-PSK-DUP",
            Self::InvalidPsk => "PRP-PSK",
            Self::MultipleGroupContextExtensions => "PRL-GCE-DUP",
            Self::UnsupportedGroupContextExtensions => "PRP-GCE-CAPS",
            Self::ReInitWithOtherProposals => "PRL-REINIT",
            Self::InvalidReInit => "PRP-REINIT",
            Self::ExternalInitInMemberCommit => "PRL-EXTINIT",
            Self::ProposalNotAllowedForSender => "PRP-SENDER",
            Self::ProposalNotAuthorized => "PRP-POLICY",
            Self::InvalidExternalCommit => "PRL-EXTERNAL",
            Self::UnsupportedCapabilities => "LEAF-CAPS",
            Self::CredentialRejected => "LEAF-CRED",
            Self::InvalidSuccessor => "LEAF-SUCCESSOR",
            Self::DuplicateKey => "TREE-KEY-DUP",
            Self::PathRequired => "COM-PATH-REQ",
            Self::InvalidPath(_) => "COM-PATH",
            Self::PathLeafKeyNotFresh => "COM-PATH-LEAF-KEY",
            Self::ConfirmationTagMismatch => "COM-CONF-TAG",
            Self::CapacityExceeded(_) => "CAP",
            Self::Tree(_) => "TREE",
            Self::Crypto(_) => "CRYPTO",
            Self::Codec(_) => "CODEC",
        }
    }
}

impl From<TreeError> for CommitError {
    fn from(e: TreeError) -> Self {
        Self::Tree(e)
    }
}

impl From<CryptoError> for CommitError {
    fn from(e: CryptoError) -> Self {
        Self::Crypto(e)
    }
}

impl From<CodecError> for CommitError {
    fn from(e: CodecError) -> Self {
        Self::Codec(e)
    }
}

impl From<TreeKemError> for CommitError {
    fn from(e: TreeKemError) -> Self {
        Self::InvalidPath(e)
    }
}

/// What a staged Commit does, in numbers; [`Group::staged_commit`] tells
/// who and what.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StagedCommitSummary {
    /// The committer.
    pub committer: LeafIndex,
    /// The epoch the merge leads to.
    pub new_epoch: u64,
    /// Members added (see the staged tree for their leaves).
    pub adds: u32,
    /// Members removed.
    pub removes: u32,
    /// Members that updated their leaf.
    pub updates: u32,
    /// PSKs injected.
    pub psks: u32,
    /// The GroupContext extensions change.
    pub extensions_changed: bool,
    /// A ReInit is committed: the group must not be used after the merge.
    pub reinit: bool,
    /// The Commit had an UpdatePath.
    pub has_path: bool,
    /// We are removed by this Commit.
    pub removes_us: bool,
}

impl StagedCommitSummary {
    pub(crate) const EMPTY: Self = Self {
        committer: LeafIndex(0),
        new_epoch: 0,
        adds: 0,
        removes: 0,
        updates: 0,
        psks: 0,
        extensions_changed: false,
        reinit: false,
        has_path: false,
        removes_us: false,
    };
}

/// `confirmed_transcript_hash = Hash(interim || ConfirmedTranscriptHashInput)`
/// (§8.2) with the input `wire_format || FramedContent || signature<V>`, the
/// content as encoded on the wire.
pub(super) fn confirmed_hash(
    suite: crate::crypto::CipherSuite,
    interim: &HashValue,
    wire_format: u16,
    content_bytes: &[u8],
    signature: &[u8],
) -> Result<HashValue, CodecError> {
    let len = VarintPrefix::new(signature.len()).map_err(|_| CodecError::VarintTooLarge)?;
    let wf = wire_format.to_be_bytes();
    Ok(transcript::confirmed_transcript_hash(
        suite,
        interim.as_bytes(),
        &[&wf, content_bytes, len.as_bytes(), signature],
    ))
}

/// `MakeProposalRef` of an AuthenticatedContent (§5.2), hashed as it is encoded.
pub fn proposal_ref(suite: crate::crypto::CipherSuite, v: &AuthenticatedContent<'_>) -> Result<HashValue, CodecError> {
    let mut counter = Writer::counter();
    v.encode(&mut counter)?;
    let mut h = suite.hasher();
    let label_len = VarintPrefix::new(PROPOSAL_REF_LABEL.len()).map_err(|_| CodecError::VarintTooLarge)?;
    let value_len = VarintPrefix::new(counter.len()).map_err(|_| CodecError::VarintTooLarge)?;
    h.update(label_len.as_bytes());
    h.update(PROPOSAL_REF_LABEL);
    h.update(value_len.as_bytes());
    {
        let mut sink = |b: &[u8]| h.update(b);
        let mut w = Writer::sink(&mut sink);
        v.encode(&mut w)?;
    }
    Ok(h.finish())
}

/// A proposal of the list with its sender.
struct Resolved<'x> {
    proposal: Proposal<'x>,
    sender: Sender,
}

fn resolve<'x, const P: usize>(
    por: ProposalOrRef<'x>,
    store: &'x super::proposal_store::ProposalStore<P>,
    committer: LeafIndex,
) -> Result<Resolved<'x>, CommitError> {
    match por {
        ProposalOrRef::Proposal(p) => Ok(Resolved { proposal: p, sender: Sender::Member(committer.0) }),
        ProposalOrRef::Reference(r) => {
            let reference = HashValue::from_slice(r).map_err(|_| CommitError::UnknownProposalRef)?;
            let stored = store.get(&reference).ok_or(CommitError::UnknownProposalRef)?;
            let proposal = Proposal::decode_exact(stored.proposal)?;
            Ok(Resolved { proposal, sender: stored.sender })
        }
    }
}

/// True if every leaf of `tree` supports the RequiredCapabilities in `extensions`.
pub(super) fn members_support(tree: TreeView<'_>, extensions: Extensions<'_>) -> Result<bool, CommitError> {
    for e in extensions.iter() {
        if !DEFAULT_EXTENSION_TYPES.contains(&e.extension_type) {
            let ok = (0..tree.n_leaves()).filter_map(|i| tree.leaf_node(LeafIndex(i))).all(|l| {
                l.fields.capabilities.extensions.contains(e.extension_type)
            });
            if !ok {
                return Ok(false);
            }
        }
    }
    let Some(data) = extensions.find(EXT_REQUIRED_CAPABILITIES) else { return Ok(true) };
    let (exts, props, creds) = parse_required(data)?;
    Ok((0..tree.n_leaves()).filter_map(|i| tree.leaf_node(LeafIndex(i))).all(|l| leaf_supports(&l, exts, props, creds)))
}

fn parse_required(data: &[u8]) -> Result<(U16List<'_>, U16List<'_>, U16List<'_>), CodecError> {
    let mut r = crate::codec::Reader::new(data);
    let e = U16List::decode(&mut r)?;
    let p = U16List::decode(&mut r)?;
    let c = U16List::decode(&mut r)?;
    r.finish()?;
    Ok((e, p, c))
}

fn leaf_supports(l: &LeafNode<'_>, exts: U16List<'_>, props: U16List<'_>, creds: U16List<'_>) -> bool {
    let caps = &l.fields.capabilities;
    exts.iter().all(|t| DEFAULT_EXTENSION_TYPES.contains(&t) || caps.extensions.contains(t))
        && props.iter().all(|t| (1..=7).contains(&t) || caps.proposals.contains(t))
        && creds.iter().all(|t| caps.credentials.contains(t))
}

/// §7.3 checks of a leaf joining or changing in a group with `extensions`:
/// required capabilities, its extensions listed in its capabilities, the
/// group's credential types supported, and its type supported by all.
///
/// A leaf that `replaces` a member's leaf (an Update, a path) with the same
/// credential type and no supported type dropped fits as that leaf did: every
/// member's leaf was checked this way when it entered (at the join, the
/// tree's validation), so the members' types need no pass over the tree
/// (7% of processing a Commit in a full 1,024-member tree before).
pub(super) fn leaf_fits_group(
    tree: TreeView<'_>,
    leaf: &LeafNode<'_>,
    replaces: Option<&LeafNode<'_>>,
    extensions: Extensions<'_>,
) -> Result<bool, CommitError> {
    if !leaf_fits_extensions(leaf, extensions)? {
        return Ok(false);
    }
    let supported = CredentialTypes::supported(leaf);
    Ok(match replaces {
        Some(old)
            if old.fields.credential.credential_type() == leaf.fields.credential.credential_type()
                && supported & CredentialTypes::supported(old) == CredentialTypes::supported(old) =>
        {
            true
        }
        _ => CredentialTypes::of(tree).admits(leaf),
    })
}

/// The part of [`leaf_fits_group`] that does not depend on the members:
/// required capabilities, the group's extensions and the leaf's own listed
/// in its capabilities.
pub(super) fn leaf_fits_extensions(leaf: &LeafNode<'_>, extensions: Extensions<'_>) -> Result<bool, CommitError> {
    let caps = &leaf.fields.capabilities;
    if !supports_group_extensions(caps, extensions) {
        return Ok(false);
    }
    if leaf
        .fields
        .extensions
        .iter()
        .any(|e| !DEFAULT_EXTENSION_TYPES.contains(&e.extension_type) && !caps.extensions.contains(e.extension_type))
    {
        return Ok(false);
    }
    if let Some(data) = extensions.find(EXT_REQUIRED_CAPABILITIES) {
        let (e, p, c) = parse_required(data)?;
        if !leaf_supports(leaf, e, p, c) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// True if `caps` lists every extension type of the GroupContext
/// `extensions` but the default ones (§13.4: "the capabilities field MUST
/// indicate support for each extension in the GroupContext"; default types
/// are never listed, §7.2). Checked for every new or changed leaf, and by
/// a joiner of its own ([`JoinError::UnsupportedGroupExtensions`]).
///
/// [`JoinError::UnsupportedGroupExtensions`]: super::JoinError::UnsupportedGroupExtensions
pub(super) fn supports_group_extensions(caps: &Capabilities<'_>, extensions: Extensions<'_>) -> bool {
    extensions
        .iter()
        .all(|e| DEFAULT_EXTENSION_TYPES.contains(&e.extension_type) || caps.extensions.contains(e.extension_type))
}

/// The members' credential types, and the types every member supports, as
/// bits (basic, X.509: the only types a leaf can hold, [`Credential`]'s
/// variants). A new leaf must support every type in use and its own type
/// must be supported by every member (§7.2, §7.3). Built once per Commit
/// and updated per Add, so that a Commit of many Adds checks each in O(1)
/// instead of decoding every member's leaf (issue #16: O(N²) at 10,000).
///
/// [`Credential`]: crate::credential::Credential
#[derive(Clone, Copy, Debug)]
pub(super) struct CredentialTypes {
    in_use: u8,
    supported_by_all: u8,
}

impl CredentialTypes {
    /// Those of a group of no members.
    const NONE: Self = Self { in_use: 0, supported_by_all: u8::MAX };

    fn bit(t: u16) -> u8 {
        match t {
            crate::credential::CREDENTIAL_BASIC => 1,
            crate::credential::CREDENTIAL_X509 => 2,
            _ => 0,
        }
    }

    fn supported(leaf: &LeafNode<'_>) -> u8 {
        Self::bits(leaf.fields.capabilities.credentials)
    }

    fn bits(types: U16List<'_>) -> u8 {
        types.iter().fold(0, |b, t| b | Self::bit(t))
    }

    /// Those of the members of `tree` (their leaves read in part: the
    /// tree decoded each whole when it entered).
    pub(super) fn of(tree: TreeView<'_>) -> Self {
        let mut types = Self::NONE;
        let leaves = (0..tree.n_leaves()).filter_map(|i| tree.leaf_bytes(LeafIndex(i)));
        for (own, supported) in leaves.filter_map(LeafNode::credential_types_of) {
            types.in_use |= Self::bit(own);
            types.supported_by_all &= Self::bits(supported);
        }
        types
    }

    /// True if `leaf` can join members of these types.
    pub(super) fn admits(&self, leaf: &LeafNode<'_>) -> bool {
        let own = Self::bit(leaf.fields.credential.credential_type());
        Self::supported(leaf) & self.in_use == self.in_use && self.supported_by_all & own != 0
    }

    /// Counts `leaf` among the members.
    pub(super) fn admit(&mut self, leaf: &LeafNode<'_>) {
        self.in_use |= Self::bit(leaf.fields.credential.credential_type());
        self.supported_by_all &= Self::supported(leaf);
    }
}

/// True if `leaf`'s encryption key is that of a node of `tree` other than
/// leaf `own`, or its signature key that of a leaf other than `own`: both
/// must be unique among the members (§7.3). `own` is the leaf it replaces
/// (an Update's sender, a path's committer), whose old keys are checked
/// apart (a fresh encryption key; the same signature key may stay).
fn leaf_keys_in_use(tree: &TreeSlices<'_>, leaf: &LeafNode<'_>, own: LeafIndex) -> bool {
    tree.has_encryption_key(leaf.fields.encryption_key, own.node())
        || tree.has_signature_key(leaf.fields.signature_key, Some(own))
}

fn identity_of<'a>(leaf: &LeafNode<'a>) -> MemberIdentity<'a> {
    MemberIdentity { credential: leaf.fields.credential, signature_key: leaf.fields.signature_key }
}

/// §5.3.1: the application accepts `leaf`'s credential for `usage` and, when
/// it replaces `predecessor`, as that member's successor (an external
/// joiner's: [`IdentityProvider::valid_resync`]).
pub(super) fn check_identity(
    identity: &dyn IdentityProvider,
    group_id: &[u8],
    usage: CredentialUse,
    leaf: &LeafNode<'_>,
    predecessor: Option<&LeafNode<'_>>,
) -> Result<(), CommitError> {
    let new = identity_of(leaf);
    if !identity.validate(group_id, usage, &new) {
        return Err(CommitError::CredentialRejected);
    }
    let accepted = |old: &LeafNode<'_>| match usage {
        CredentialUse::ExternalJoin => identity.valid_resync(&identity_of(old), &new),
        _ => identity.valid_successor(&identity_of(old), &new),
    };
    match predecessor {
        Some(old) if !accepted(old) => Err(CommitError::InvalidSuccessor),
        _ => Ok(()),
    }
}
/// The signature of an Update's new leaf from member `s` (§7.2: its
/// `LeafNodeTBS` names the group and the leaf).
pub(super) fn verify_update_leaf(suite: crate::crypto::CipherSuite, group_id: &[u8], s: u32, leaf: &LeafNode<'_>) -> Result<(), CommitError> {
    leaf.verify_signature(suite, Some(LeafNodeContext { group_id, leaf_index: s }))
        .map_err(|_| CommitError::InvalidUpdateLeaf)
}

/// The signatures inside a received Commit's proposals: each Update's new
/// leaf and each Add's KeyPackage, validated whole (§10.1; its two
/// signatures batched when `executor` batches). Checked before the
/// proposals are applied, in a frame of its own: under [`apply_proposals`],
/// whose decoded proposals take 2 KB, each verification was the deepest
/// stack of processing a Commit on a small device (issue #14). So an
/// invalid Add or Update is what a Commit with other faults too is refused
/// for. Proposals that do not resolve are left to [`apply_proposals`],
/// which names the error. With `references_checked` (our own Commit,
/// whose pending proposals were checked when chosen), only the proposals
/// by value are.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
pub(super) fn check_proposal_signatures<const P: usize>(
    commit: &Commit<'_>,
    proposals: &ProposalStore<P>,
    committer: LeafIndex,
    suite: crate::crypto::CipherSuite,
    group_id: &[u8],
    now: u64,
    max_lifetime: u64,
    executor: &dyn crate::executor::Executor,
    references_checked: bool,
) -> Result<(), CommitError> {
    // The Adds to check, and all of them: a batch takes every Add's. Each
    // proposal is decoded and resolved in a small frame of its own (a
    // resolved proposal is 184 bytes; this frame held several, 792 bytes
    // under every signature verified here on a Cortex-M4).
    let (mut adds, mut all_adds) = (0u32, 0u32);
    for por in commit.proposals.encoded() {
        if let Some(check) = is_add_checking_update(por, proposals, committer, suite, group_id, references_checked)? {
            all_adds = all_adds.saturating_add(1);
            adds = adds.saturating_add(u32::from(check));
        }
    }
    if adds == 0 || key_packages_batched(commit, proposals, committer, all_adds, suite, executor) {
        return Ok(());
    }
    for por in commit.proposals.encoded() {
        validate_add(por, proposals, committer, suite, now, max_lifetime, references_checked)?;
    }
    Ok(())
}

/// For [`check_proposal_signatures`], the encoded proposal `por`: if it is
/// an Add, whether to check it (some); if another member's Update to
/// check, verified first. Not checked: proposals by reference with
/// `references_checked`.
#[inline(never)]
fn is_add_checking_update<const P: usize>(
    por: &[u8],
    proposals: &ProposalStore<P>,
    committer: LeafIndex,
    suite: crate::crypto::CipherSuite,
    group_id: &[u8],
    references_checked: bool,
) -> Result<Option<bool>, CommitError> {
    let Ok(por) = ProposalOrRef::decode_exact(por) else { return Ok(None) };
    let check = !(references_checked && matches!(por, ProposalOrRef::Reference(_)));
    let Ok(r) = resolve(por, proposals, committer) else { return Ok(None) };
    match (r.proposal, r.sender) {
        (Proposal::Add(_), _) => Ok(Some(check)),
        // (One by value is the committer's own, refused as such.)
        (Proposal::Update(u), Sender::Member(s)) if check && s != committer.0 => {
            verify_update_leaf(suite, group_id, s, &u.leaf_node).map(|()| None)
        }
        _ => Ok(None),
    }
}

/// For [`check_proposal_signatures`]: validates the KeyPackage of the
/// encoded proposal `por` if it is an Add to check (§10.1).
#[inline(never)]
fn validate_add<const P: usize>(
    por: &[u8],
    proposals: &ProposalStore<P>,
    committer: LeafIndex,
    suite: crate::crypto::CipherSuite,
    now: u64,
    max_lifetime: u64,
    references_checked: bool,
) -> Result<(), CommitError> {
    let Ok(por) = ProposalOrRef::decode_exact(por) else { return Ok(()) };
    if references_checked && matches!(por, ProposalOrRef::Reference(_)) {
        return Ok(());
    }
    match resolve(por, proposals, committer) {
        Ok(Resolved { proposal: Proposal::Add(a), .. }) => {
            a.key_package.validate(suite, now, max_lifetime).map_err(CommitError::InvalidKeyPackage)
        }
        _ => Ok(()),
    }
}

/// Checks an Update's leaf from leaf `s` (§12.1.2, §7.3): source `update`,
/// an encryption key other than the one in the tree before the Commit, a
/// usable key of the suite (`TreeError::InvalidKey`, as the tree would
/// refuse it: checked here so that our own Commit leaves such a pending
/// Update out, §12.4, instead of failing on it); the
/// group's requirements; the application's identity policy (a valid
/// successor of the leaf it replaces); keys unique in `tree` as it is (with
/// the Updates before it). Its signature is checked apart, before
/// ([`verify_update_leaf`]), outside the callers' large frames.
pub(super) fn check_update_leaf(
    group_id: &[u8],
    tree: &TreeSlices<'_>,
    s: u32,
    leaf: &LeafNode<'_>,
    extensions: Extensions<'_>,
    identity: &dyn IdentityProvider,
) -> Result<(), CommitError> {
    let old = tree.old();
    let old_key = old.encryption_key(LeafIndex(s));
    if !matches!(leaf.fields.source, LeafNodeSource::Update) || old_key.is_none_or(|k| k == leaf.fields.encryption_key)
    {
        return Err(CommitError::InvalidUpdateLeaf);
    }
    crate::crypto::hpke::HpkePublicKey::for_suite(tree.suite(), leaf.fields.encryption_key)
        .map_err(|_| TreeError::InvalidKey)?;
    let predecessor = old.leaf_node(LeafIndex(s)).ok_or(CommitError::UnknownSender)?;
    if !leaf_fits_group(old, leaf, Some(&predecessor), extensions)? {
        return Err(CommitError::UnsupportedCapabilities);
    }
    check_identity(identity, group_id, CredentialUse::Update(LeafIndex(s)), leaf, Some(&predecessor))?;
    if leaf_keys_in_use(tree, leaf, LeafIndex(s)) {
        return Err(CommitError::DuplicateKey);
    }
    Ok(())
}

/// True if one of `path`'s new encryption keys is in use in `tree` (§7.3):
/// its leaf's at a node other than the committer's leaf (whose old key is
/// checked apart), each path node's at any node; in one pass over the tree
/// per 32 keys.
fn path_keys_in_use(tree: &TreeSlices<'_>, path: &UpdatePath<'_>, committer: LeafIndex) -> bool {
    let mut keys: heapless::Vec<(&[u8], Option<NodeIndex>), 32> = heapless::Vec::new();
    let leaf = (path.leaf_node.fields.encryption_key, committer.node());
    let nodes = path.node_keys().map(|k| (k, None));
    for key in core::iter::once(leaf).chain(nodes).filter(|(k, _)| !k.is_empty()) {
        if keys.is_full() {
            if tree.has_any_encryption_key(&keys) {
                return true;
            }
            keys.clear();
        }
        let _ = keys.push(key);
    }
    tree.has_any_encryption_key(&keys)
}

/// True if `key` is the encryption key of some node, or (for leaves) the
/// signature key of some leaf, in `tree`.
fn key_in_tree(tree: &TreeSlices<'_>, encryption_key: &[u8], signature_key: Option<&[u8]>) -> bool {
    (!encryption_key.is_empty() && tree.has_encryption_key(encryption_key, None))
        || signature_key.is_some_and(|s| tree.has_signature_key(s, None))
}

impl<const N: usize, const ARENA: usize, const K: usize, const P: usize, Sig: Signer, const E: usize> Group<N, ARENA, K, P, Sig, E> {
    /// Keeps a verified Proposal message for a later Commit by reference;
    /// returns its reference (§5.2). Never inlined, as
    /// [`Self::stage_commit`].
    #[inline(never)]
    pub(crate) fn store_proposal(&mut self, v: &AuthenticatedContent<'_>) -> Result<HashValue, CommitError> {
        self.check_frame(v)?;
        let Content::Proposal(p) = v.content.content else { return Err(CommitError::WrongContentType) };
        match (v.content.sender, &p) {
            (Sender::Member(s), _) if self.tree.old().leaf_node(LeafIndex(s)).is_none() => {
                return Err(CommitError::UnknownSender);
            }
            (Sender::Member(_), _) => {}
            // §12.1.8.1: external senders may send only these types.
            (
                Sender::External(_),
                Proposal::Add(_)
                | Proposal::Remove(_)
                | Proposal::PreSharedKey(_)
                | Proposal::ReInit(_)
                | Proposal::GroupContextExtensions(_),
            ) => {}
            // §12.1.8.2: a new member may only propose its own Add.
            (Sender::NewMemberProposal, Proposal::Add(_)) => {}
            _ => return Err(CommitError::ProposalNotAllowedForSender),
        }
        if !self.config().identity.authorize_proposal(self.state.group_id.as_slice(), v.content.sender, &p) {
            return Err(CommitError::ProposalNotAuthorized);
        }
        let reference = proposal_ref(self.state.suite, v)?;
        self.proposals.insert_encoded(&reference, v.content.sender, &p)?;
        Ok(reference)
    }

    fn check_frame(&self, v: &AuthenticatedContent<'_>) -> Result<(), CommitError> {
        if v.content.group_id != self.state.group_id.as_slice() {
            return Err(CommitError::WrongGroupId);
        }
        if v.content.epoch != self.state.epoch {
            return Err(CommitError::WrongEpoch);
        }
        Ok(())
    }

    /// Processes a verified Commit from another member (§12.4.2) into a staged
    /// next epoch; [`Group::merge_staged_commit_in_memory`] makes it current.
    /// `now` (seconds since the Unix epoch) checks KeyPackage lifetimes.
    /// Never inlined: inlined into `Group::process_message_in_memory`,
    /// which also unprotects the message, its locals lay under every
    /// signature verification (500 bytes of a received Commit's peak stack
    /// on a Cortex-M4, issue #14).
    #[inline(never)]
    pub(crate) fn stage_commit(
        &mut self,
        v: &AuthenticatedContent<'_>,
        psks: &dyn PskStore,
        now: u64,
    ) -> Result<StagedCommitSummary, CommitError> {
        self.check_frame(v)?;
        let Content::Commit(commit) = &v.content.content else { return Err(CommitError::WrongContentType) };
        // A member's Commit, or an external joiner's (§12.4.3.2), whose leaf is
        // known once the proposals are applied.
        let (external, committer) = match v.content.sender {
            Sender::Member(c) => (false, LeafIndex(c)),
            Sender::NewMemberCommit => (true, LeafIndex(u32::MAX)),
            _ => return Err(CommitError::UnknownSender),
        };
        if committer == self.state.private.leaf {
            return Err(CommitError::OwnCommit);
        }
        // One Commit at a time is staged in the tree.
        if self.staged.is_some() {
            return Err(CommitError::CommitPending);
        }
        if !external && self.tree.old().leaf_node(committer).is_none() {
            return Err(CommitError::UnknownSender);
        }
        // The proposals' signatures first, from this small frame: under
        // the staging's (the list of added leaves, the decoded path, the
        // next epoch's fields: 1 KB) they were the deepest stack of a
        // received Add on a Cortex-M4 (issue #14).
        check_proposal_signatures(
            commit,
            &self.proposals,
            committer,
            self.state.suite,
            self.state.group_id.as_slice(),
            now,
            self.config().max_lifetime,
            &crate::executor::Sequential,
            false,
        )?;
        self.tree.slices().begin_stage()?;
        let result = self.stage_commit_in_tree(v, commit, external, committer, psks, now);
        if result.is_err() {
            // Nothing can fail: the tree is staging. The staging fields,
            // partly filled, are emptied.
            let _ = self.tree.slices().discard_stage();
            self.clear_staging();
        }
        result
    }

    /// [`Self::stage_commit`] once the tree is staging: the proposals
    /// ([`Self::stage_proposals`]), then the path and the key schedule of the
    /// new epoch, written in place into the staging fields. Never inlined:
    /// its locals are not under [`check_proposal_signatures`].
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn stage_commit_in_tree(
        &mut self,
        v: &AuthenticatedContent<'_>,
        commit: &Commit<'_>,
        external: bool,
        committer: LeafIndex,
        psks: &dyn PskStore,
        now: u64,
    ) -> Result<StagedCommitSummary, CommitError> {
        let tag = v.auth.confirmation_tag.ok_or(CommitError::WrongContentType)?;
        // Filled in place: its list of added leaves is 4 bytes a leaf of
        // capacity (256 KiB at 65,536), too large to move (returned by value
        // through two frames it was a tenth of processing a Commit there).
        let mut applied = Applied::new();
        let committer = self.stage_proposals(commit, external, committer, psks, now, &mut applied)?;
        // The path's new leaf is checked here, not where the path is
        // applied: its signature verification (6 KB of stack on a
        // Cortex-M4) is then not under the path's and the key schedule's
        // frames (2.5 KB), the deepest stack of processing a Commit (issue
        // #14). A member the Commit removes applies no path and cannot
        // check the confirmation tag, but checks this leaf as the others
        // do (it used to skip it, and staged its removal by an external
        // Commit whose path leaf did not verify).
        if let Some(path) = &commit.path {
            crate::ratchet_tree::treekem::verify_path_leaf(self.state.suite, path, self.state.group_id.as_slice(), committer)?;
        }
        self.stage_next_epoch(v, commit, tag, &applied, committer)
    }

    /// The path (if any) and the key schedule of the new epoch of a received
    /// Commit whose proposals are staged. Its own frame, as
    /// [`Self::stage_proposals`] has its own: the GroupContext buffer is on
    /// the stack only here.
    #[inline(never)]
    fn stage_next_epoch(
        &mut self,
        v: &AuthenticatedContent<'_>,
        commit: &Commit<'_>,
        tag: &[u8],
        applied: &Applied<N>,
        committer: LeafIndex,
    ) -> Result<StagedCommitSummary, CommitError> {
        let summary = applied.summary;
        let suite = self.state.suite;
        let own_leaf = self.state.private.leaf;
        let Self { tree, state, staged, reinit, staged_info, pending_update_key, .. } = self;
        if summary.removes_us {
            // Removed: nothing of the next epoch is ours to derive.
            staged.set(super::Staged::Removed);
            // (The group is active: `reinit` is the staged Commit's.)
            *reinit = None;
            staged_info.summary = summary;
            staged_info.external_removed = applied.external_removed;
            return Ok(summary);
        }
        let Some(super::Staged::Epoch(next)) = staged.as_mut() else { return Err(CommitError::CommitPending) };
        let mut new = tree.slices();
        let added = &applied.added;
        let extensions = Extensions::from_body(next.extensions.as_slice())?;
        let group_id = state.group_id.as_slice();

        // The path, against the provisional GroupContext (§12.4.2).
        let nh = suite.hash_len();
        let mut gc_buf = [0u8; MAX_GROUP_CONTEXT_LEN];
        let provisional = crate::group_context::GroupContext {
            cipher_suite: suite,
            group_id,
            epoch: summary.new_epoch,
            tree_hash: &[],
            confirmed_transcript_hash: state.confirmed_transcript_hash.as_bytes(),
            extensions: extensions.body(),
        };
        // If the commit applies our own Update proposal, our leaf key is the
        // one we kept for it (§12.1.2).
        next.private.copy_from(&state.private);
        if let Some(sk) = pending_update_key.as_ref()
            && let Some(node) = own_leaf.node()
            && new.encryption_key(node).is_some_and(|pk| pk == sk.public_key(suite).as_bytes())
        {
            next.private.leaf_key = sk.clone();
        }
        let commit_secret = match &commit.path {
            Some(path) => {
                // `added` is in leaf order.
                let excluded = |l: LeafIndex| added.binary_search(&l.0).is_ok();
                new.apply_update_path_in_place(committer, path, &mut next.private, &provisional, &mut gc_buf, &excluded, true)?
                    .0
            }
            None => Secret::zero(nh)?,
        };
        next.private.prune(&new);

        // Transcript hashes and the key schedule of the new epoch (§8).
        let confirmed =
            confirmed_hash(suite, &state.interim_transcript_hash, v.wire_format, v.content_bytes(), v.auth.signature)?;
        let tree_hash = new.root_tree_hash()?;
        let gc = crate::group_context::GroupContext {
            tree_hash: tree_hash.as_bytes(),
            confirmed_transcript_hash: confirmed.as_bytes(),
            ..provisional
        }
        .encode_to(&mut gc_buf)?;
        let init_secret = match &applied.external_init {
            Some(kem_output) => external_init_secret(suite, &state.secrets, kem_output)?,
            None => state.secrets.init_secret.clone(),
        };
        let joiner = joiner_secret(suite, &init_secret, &commit_secret, gc)?;
        next.secrets = EpochSecrets::derive(suite, &joiner, &applied.psk_secret, gc)?;
        if !transcript::verify_confirmation_tag(suite, &next.secrets.confirmation_key, confirmed.as_bytes(), tag) {
            return Err(CommitError::ConfirmationTagMismatch);
        }
        next.interim_transcript_hash = transcript::interim_transcript_hash(suite, confirmed.as_bytes(), tag)?;
        next.confirmation_tag = HashValue::from_slice(tag).map_err(CommitError::Crypto)?;
        next.suite = suite;
        next.group_id.set(group_id).map_err(|_| CommitError::CapacityExceeded(Capacity::GroupIdLen))?;
        next.epoch = summary.new_epoch;
        next.confirmed_transcript_hash = confirmed;
        next.tree_hash = tree_hash;
        staged_info.summary = summary;
        staged_info.external_removed = applied.external_removed;
        Ok(summary)
    }

    /// Validates and applies a received Commit's proposals into the staged
    /// tree and the staging fields (an empty next epoch is staged first),
    /// adds an external joiner's leaf, and checks the path's new keys
    /// (§12.4.2). Returns the proposals' effect and the committer's leaf.
    /// The proposals' signatures were checked before
    /// ([`check_proposal_signatures`]). Its own frame: the GroupContext
    /// buffer of the path and key schedule is not on the stack under it.
    #[inline(never)]
    fn stage_proposals(
        &mut self,
        commit: &Commit<'_>,
        external: bool,
        mut committer: LeafIndex,
        psks: &dyn PskStore,
        now: u64,
        applied: &mut Applied<N>,
    ) -> Result<LeafIndex, CommitError> {
        let own_leaf = self.state.private.leaf;
        let config = self.config();
        let Self { tree, proposals, state, staged, resumption_psks, reinit, staged_info, .. } = self;
        let own_psks = OwnResumptionPsks { state, history: resumption_psks, inner: psks };
        let psks: &dyn PskStore = &own_psks;
        // (`stage_commit` checked that a member committer is in the tree.)
        let mut new = tree.slices();

        // The next epoch is built in place in the group's staging fields
        // (stage_commit empties them on an error).
        let next = super::Staged::begin_epoch(staged).ok_or(CommitError::CommitPending)?;
        let group_id = state.group_id.as_slice();
        let out = AppliedOut { extensions: &mut next.extensions, psk_ids: &mut staged_info.psk_ids, reinit };
        // (The proposals' signatures were checked by `stage_commit`.)
        apply_proposals(
            commit,
            committer,
            own_leaf,
            &mut new,
            proposals,
            state,
            psks,
            now,
            config.max_lifetime,
            external,
            config.identity,
            out,
            applied,
        )?;
        if applied.path_required && commit.path.is_none() {
            return Err(CommitError::PathRequired);
        }
        if let (true, Some(path)) = (external, &commit.path) {
            // The joiner takes the leftmost blank leaf (§12.4.3.2).
            let leaf = &path.leaf_node;
            if key_in_tree(&new, leaf.fields.encryption_key, Some(leaf.fields.signature_key)) {
                return Err(CommitError::DuplicateKey);
            }
            committer = new.add_leaf(leaf.as_bytes())?;
            applied.summary.committer = committer;
        }
        let extensions = Extensions::from_body(next.extensions.as_slice())?;
        // The path's new keys (§12.4.2, §7.3), checked even by a member the
        // Commit removes (it cannot decrypt the path, but it can check these).
        if let Some(path) = &commit.path {
            let leaf = &path.leaf_node;
            let old_key = new.old().encryption_key(committer);
            if old_key.is_some_and(|k| k == leaf.fields.encryption_key) {
                return Err(CommitError::PathLeafKeyNotFresh);
            }
            // The committer's new leaf replaces its old one; an external
            // joiner's replaces the member it removes, if any (§12.4.3.2).
            let (usage, predecessor) = match (external, applied.external_removed) {
                (true, Some(removed)) => (CredentialUse::ExternalJoin, Some(removed)),
                (true, None) => (CredentialUse::ExternalJoin, None),
                (false, _) => (CredentialUse::CommitPath(committer), Some(committer)),
            };
            let old = new.old();
            let predecessor = match predecessor {
                Some(l) => Some(old.leaf_node(l).ok_or(CommitError::UnknownSender)?),
                None => None,
            };
            let replaces = predecessor.as_ref().filter(|_| !external);
            if !leaf_fits_group(new.view(), leaf, replaces, extensions)? {
                return Err(CommitError::UnsupportedCapabilities);
            }
            check_identity(config.identity, group_id, usage, leaf, predecessor.as_ref())?;
            if new.has_signature_key(leaf.fields.signature_key, Some(committer))
                || path_keys_in_use(&new, path, committer)
            {
                return Err(CommitError::DuplicateKey);
            }
        }
        Ok(committer)
    }
}

/// The exporter label of external initialization (§8.3).
pub(super) const EXTERNAL_INIT_LABEL: &[u8] = b"MLS 1.0 external init secret";

/// `init_secret` of an external commit, as a member computes it (§8.3):
/// `SetupBaseR(kem_output, external_priv, "").export("MLS 1.0 external init secret", Nh)`.
fn external_init_secret(
    suite: crate::crypto::CipherSuite,
    secrets: &EpochSecrets,
    kem_output: &crate::crypto::hpke::KemOutput,
) -> Result<Secret, CommitError> {
    let (sk, _) = secrets.external_key_pair(suite)?;
    let info_hash = crate::crypto::hpke::info_hash(suite, &[])?;
    let mut init = Secret::zero(suite.hash_len())?;
    crate::crypto::hpke::export_base_receiver(suite, &sk, kem_output, &info_hash, EXTERNAL_INIT_LABEL, init.as_mut_bytes())
        .map_err(|_| CommitError::InvalidExternalCommit)?;
    Ok(init)
}

/// True if `executor` verified the two signatures of every Add's KeyPackage
/// of `commit` (§10.1) in one batch ([`crate::executor::Executor::verify_ed25519_batch`]:
/// Ed25519 suites, an executor that batches, no crypto engine; a single
/// Add's two signatures too: apart on two threads while one is awake).
/// False if it cannot or one failed: each KeyPackage is then checked
/// alone, which names the error.
#[inline(never)]
fn key_packages_batched<const P: usize>(
    commit: &Commit<'_>,
    proposals: &ProposalStore<P>,
    committer: LeafIndex,
    adds: u32,
    suite: crate::crypto::CipherSuite,
    executor: &dyn crate::executor::Executor,
) -> bool {
    #[cfg(all(feature = "_ed25519", not(feature = "engine")))]
    if adds > 0 && matches!(suite.signature_scheme(), crate::crypto::signature::Scheme::Ed25519) {
        use core::sync::atomic::{AtomicBool, Ordering::Relaxed};
        let withheld = AtomicBool::new(false);
        let Ok(count) = usize::try_from(adds).map(|a| a.saturating_mul(2)) else { return false };
        // Slots 2k and 2k + 1: the leaf's and the KeyPackage's signature of Add k.
        let all = executor.verify_ed25519_batch(count, &|range, sink| {
            let mut k = 0usize;
            for por in commit.proposals.iter() {
                if k >= range.end {
                    break;
                }
                // (Resolved once already by the caller's first pass.)
                let Ok(resolved) = resolve(por, proposals, committer) else {
                    withheld.store(true, Relaxed);
                    continue;
                };
                let Proposal::Add(a) = resolved.proposal else { continue };
                for slot in [k, k.saturating_add(1)].into_iter().filter(|s| range.contains(s)) {
                    if !a.key_package.hand_signature_to_batch(slot.saturating_sub(k), sink) {
                        withheld.store(true, Relaxed);
                    }
                }
                k = k.saturating_add(2);
            }
        });
        return all == Some(true) && !withheld.load(Relaxed);
    }
    let _ = (commit, proposals, committer, adds, suite, executor);
    false
}

/// The key checks of a Commit's Adds (§12.2, §7.3), once all are in `tree`
/// at the leaves `added` (increasing, as they are on return): no client
/// added twice, none a member the Commit keeps, and each encryption key
/// unique among the tree's nodes. Sorted once per Commit and searched per
/// node, O((N + A) log A), where checking each Add against the tree was
/// O(N A) (issue #16: seconds at 10,000).
fn check_added_keys(tree: &TreeSlices<'_>, added: &mut [u32]) -> Result<(), CommitError> {
    use crate::ratchet_tree::validate::heap_sort_by_key;
    // Two entries of `sorted` (sorted by `key_of`) with one key.
    fn twice<'k>(sorted: &[u32], key_of: impl Fn(&u32) -> Option<&'k [u8]>) -> bool {
        sorted.windows(2).any(|w| w.first().map(&key_of) == w.get(1).map(&key_of))
    }
    // An entry of `sorted` other than `own` with key `key`.
    fn shared<'k>(sorted: &[u32], key: &[u8], key_of: impl Fn(&u32) -> Option<&'k [u8]>, own: Option<u32>) -> bool {
        sorted.binary_search_by(|i| key_of(i).cmp(&Some(key))).ok().and_then(|j| sorted.get(j)).is_some_and(|i| Some(*i) != own)
    }
    if added.is_empty() {
        // Nothing to search for: a Commit without Adds reads no member's keys.
        return Ok(());
    }
    let signature_key = |i: &u32| tree.signature_key(LeafIndex(*i));
    let encryption_key = |i: &u32| tree.encryption_key(NodeIndex(i.saturating_mul(2)));
    heap_sort_by_key(added, signature_key);
    if twice(added, signature_key) {
        return Err(CommitError::DuplicateAdd);
    }
    for l in (0..tree.n_leaves()).map(LeafIndex) {
        if let Some(key) = tree.signature_key(l)
            && shared(added, key, signature_key, Some(l.0))
        {
            return Err(CommitError::AddOfExistingMember);
        }
    }
    heap_sort_by_key(added, encryption_key);
    if twice(added, encryption_key) {
        return Err(CommitError::DuplicateKey);
    }
    let width = crate::tree_math::node_width(tree.n_leaves()).unwrap_or(0);
    for x in (0..width).map(NodeIndex) {
        if let Some(key) = tree.encryption_key(x)
            && shared(added, key, encryption_key, x.leaf().map(|l| l.0))
        {
            return Err(CommitError::DuplicateKey);
        }
    }
    // Back in leaf order, which the Welcome follows.
    heap_sort_by_key(added, |i| *i);
    Ok(())
}

/// Appends PreSharedKeyID `id` of a Commit to a group of `suite` at `epoch`, with its
/// key from `psks`, to `list` (§8.4): a nonce of `Nh` bytes (§12.1.4); a
/// resumption PSK of usage reinit or branch only in a new group's first
/// Commit, at most one (§11.2, §11.3; `link_seen` says one was); never the
/// same PreSharedKeyID twice, nonce included (§12.2: one PSK injected twice
/// with fresh nonces is two PSKs).
pub(super) fn add_psk<'k>(
    list: &mut heapless::Vec<(PreSharedKeyId<'k>, &'k [u8]), MAX_PSKS_PER_COMMIT>,
    id: PreSharedKeyId<'k>,
    (suite, epoch): (crate::crypto::CipherSuite, u64),
    link_seen: &mut bool,
    psks: &'k dyn PskStore,
) -> Result<(), CommitError> {
    let link = is_link_psk(&id.psk);
    if id.psk_nonce.len() != suite.hash_len() || (link && (epoch != 0 || *link_seen)) {
        return Err(CommitError::InvalidPsk);
    }
    let value = psks.psk(&id.psk).ok_or(CommitError::InvalidPsk)?;
    if list.iter().any(|(other, _)| *other == id) {
        return Err(CommitError::DuplicatePsk);
    }
    list.push((id, value)).map_err(|_| CommitError::CapacityExceeded(Capacity::PsksPerCommit))?;
    *link_seen |= link;
    Ok(())
}

/// Checks that the PreSharedKeyIDs `ids` of a Commit fit what a staged
/// Commit keeps of them ([`STAGED_PSK_BYTES`](super::STAGED_PSK_BYTES)): its
/// receivers refuse a Commit injecting more (`CommitError::CapacityExceeded`,
/// `Capacity::StagedPskBytes`). So an external joiner, whose PSK proposals
/// §12.4.3.2 allows, must not send one (it would think itself in a group
/// whose members all refused its Commit), and our Commit takes the pending
/// PreSharedKey proposals that fit and leaves out the others (§12.4).
pub(super) fn check_staged_psk_bytes<'p>(ids: impl IntoIterator<Item = PreSharedKeyId<'p>>) -> Result<(), CommitError> {
    let mut counter = Writer::counter();
    for id in ids {
        id.encode(&mut counter)?;
    }
    if counter.len() > super::STAGED_PSK_BYTES {
        return Err(CommitError::CapacityExceeded(Capacity::StagedPskBytes));
    }
    Ok(())
}

/// True if `psk` is a resumption PSK of usage reinit or branch.
pub(super) fn is_link_psk(psk: &Psk<'_>) -> bool {
    matches!(psk, Psk::Resumption { usage: ResumptionPskUsage::Reinit | ResumptionPskUsage::Branch, .. })
}

/// Resumption PSKs of our own group first (current and kept epochs, §8.6),
/// then the application's store. A reinit or branch PSK always names
/// another group (the one reinitialized or branched from, §11.2, §11.3),
/// which may have our group ID and any epoch: it is looked up in the
/// application's store only, never shadowed by our own epochs.
pub(super) struct OwnResumptionPsks<'a> {
    pub(super) state: &'a EpochState,
    pub(super) history: &'a [Option<(u64, Secret)>],
    pub(super) inner: &'a dyn PskStore,
}

impl PskStore for OwnResumptionPsks<'_> {
    fn external_psk(&self, psk_id: &[u8]) -> Option<&[u8]> {
        self.inner.external_psk(psk_id)
    }

    fn resumption_psk(&self, group_id: &[u8], epoch: u64) -> Option<&[u8]> {
        if group_id != self.state.group_id.as_slice() {
            return self.inner.resumption_psk(group_id, epoch);
        }
        if epoch == self.state.epoch {
            return Some(self.state.secrets.resumption_psk.as_bytes());
        }
        self.history.iter().flatten().find(|(e, _)| *e == epoch).map(|(_, s)| s.as_bytes())
    }

    fn psk(&self, psk: &Psk<'_>) -> Option<&[u8]> {
        match *psk {
            Psk::External { psk_id } => self.inner.external_psk(psk_id),
            Psk::Resumption { usage: ResumptionPskUsage::Application, psk_group_id, psk_epoch } => {
                self.resumption_psk(psk_group_id, psk_epoch)
            }
            Psk::Resumption { psk_group_id, psk_epoch, .. } => self.inner.resumption_psk(psk_group_id, psk_epoch),
        }
    }
}

/// The effect of a Commit's proposal list (§12.2 validated, §12.3 applied);
/// its large parts go to [`AppliedOut`].
pub(super) struct Applied<const N: usize> {
    pub(super) summary: StagedCommitSummary,
    /// The ExternalInit's KEM output, for an external commit.
    pub(super) external_init: Option<crate::crypto::hpke::KemOutput>,
    /// The leaves of the added members, increasing.
    pub(super) added: heapless::Vec<u32, N>,
    pub(super) psk_secret: Secret,
    pub(super) path_required: bool,
    /// The member an external Commit removes (a resync, §12.4.3.2).
    pub(super) external_removed: Option<LeafIndex>,
}

impl<const N: usize> Applied<N> {
    /// Nothing applied yet ([`apply_proposals`] fills it).
    pub(super) const fn new() -> Self {
        Self {
            summary: StagedCommitSummary::EMPTY,
            external_init: None,
            added: heapless::Vec::new(),
            psk_secret: Secret::EMPTY,
            path_required: false,
            external_removed: None,
        }
    }
}

/// Where [`apply_proposals`] writes the large parts of a Commit's effect
/// (5 KB together): the staged epoch's fields, in place, rather than a
/// returned value the caller then copies.
pub(super) struct AppliedOut<'a> {
    /// The new epoch's GroupContext extensions (body).
    pub(super) extensions: &'a mut OwnedBytes<{ super::MAX_GROUP_EXTENSIONS_LEN }>,
    /// The PreSharedKeyIDs injected, encoded one after another.
    pub(super) psk_ids: &'a mut OwnedBytes<{ super::STAGED_PSK_BYTES }>,
    /// The committed ReInit's parameters, if one is committed.
    pub(super) reinit: &'a mut Option<super::ReInitParams>,
}

/// Sets `slot` to the parameters of ReInit `r` (its own frame: the
/// parameters are 2 KB).
#[inline(never)]
fn set_reinit(slot: &mut Option<super::ReInitParams>, r: &crate::messages::proposal::ReInit<'_>) -> Result<(), CommitError> {
    *slot = Some(super::ReInitParams {
        group_id: OwnedBytes::from_slice(r.group_id).map_err(|_| CommitError::CapacityExceeded(Capacity::GroupIdLen))?,
        version: r.version,
        cipher_suite: r.cipher_suite,
        extensions: OwnedBytes::from_slice(r.extensions.body())
            .map_err(|_| CommitError::CapacityExceeded(Capacity::GroupExtensionsLen))?,
    });
    Ok(())
}

/// Validates `commit`'s proposal list against the tree (§12.2) and applies
/// it (§12.3): extensions, updates, removes, adds in order; resolves PSKs.
/// The tree must be staging: `new.old()` is the tree before the Commit.
#[allow(clippy::too_many_arguments)]
pub(super) fn apply_proposals<const N: usize, const P: usize>(
    commit: &Commit<'_>,
    committer: LeafIndex,
    own_leaf: LeafIndex,
    new: &mut TreeSlices<'_>,
    proposals: &ProposalStore<P>,
    state: &EpochState,
    psks: &dyn PskStore,
    now: u64,
    max_lifetime: u64,
    external: bool,
    identity: &dyn IdentityProvider,
    out: AppliedOut<'_>,
    applied: &mut Applied<N>,
) -> Result<(), CommitError> {
    let suite = state.suite;
    let mut external_init: Option<crate::crypto::hpke::KemOutput> = None;
    let mut link_psk = false;
    *out.reinit = None;
    // §12.2 over the whole list, with the old tree.
    let mut summary = StagedCommitSummary {
        committer,
        new_epoch: state.epoch.checked_add(1).ok_or(CommitError::WrongEpoch)?,
        adds: 0,
        removes: 0,
        updates: 0,
        psks: 0,
        extensions_changed: false,
        reinit: false,
        has_path: commit.path.is_some(),
        removes_us: false,
    };
    let mut touched: heapless::Vec<u32, N> = heapless::Vec::new();
    let mut psk_list: heapless::Vec<(PreSharedKeyId<'_>, &[u8]), MAX_PSKS_PER_COMMIT> = heapless::Vec::new();
    let mut gce: Option<Extensions<'_>> = None;
    let mut last_removed: Option<LeafIndex> = None;
    let mut path_required = commit.proposals.is_empty();
    let mut total = 0u32;
    for por in commit.proposals.iter() {
        let by_value = matches!(por, ProposalOrRef::Proposal(_));
        let r = resolve(por, proposals, committer)?;
        total += 1;
        // The application's policy (§12.2); an external joiner's own
        // proposals are those of `new_member_commit`.
        let sender = if external && by_value { Sender::NewMemberCommit } else { r.sender };
        if !identity.authorize_proposal(state.group_id.as_slice(), sender, &r.proposal) {
            return Err(CommitError::ProposalNotAuthorized);
        }
        match r.proposal {
            Proposal::Update(_) => {
                path_required = true;
                let Sender::Member(s) = r.sender else { return Err(CommitError::UnknownSender) };
                if s == committer.0 {
                    return Err(CommitError::UpdateFromCommitter);
                }
                if touched.contains(&s) {
                    return Err(CommitError::DuplicateUpdateOrRemove);
                }
                touched.push(s).map_err(|_| CommitError::CapacityExceeded(Capacity::Leaves))?;
                summary.updates += 1;
            }
            Proposal::Remove(rm) => {
                path_required = true;
                if rm.removed == committer.0 {
                    return Err(CommitError::RemovesCommitter);
                }
                if new.old().leaf_node(LeafIndex(rm.removed)).is_none() {
                    return Err(CommitError::RemoveOfBlankLeaf);
                }
                if touched.contains(&rm.removed) {
                    return Err(CommitError::DuplicateUpdateOrRemove);
                }
                touched.push(rm.removed).map_err(|_| CommitError::CapacityExceeded(Capacity::Leaves))?;
                last_removed = Some(LeafIndex(rm.removed));
                summary.removes += 1;
                summary.removes_us |= rm.removed == own_leaf.0;
            }
            Proposal::Add(_) => summary.adds += 1,
            Proposal::PreSharedKey(p) => {
                add_psk(&mut psk_list, p.psk, (suite, state.epoch), &mut link_psk, psks)?;
                summary.psks += 1;
            }
            Proposal::ReInit(r) => {
                // §12.1.5: not to a version below the group's (mls10).
                if r.version < crate::group_context::PROTOCOL_VERSION_MLS10 {
                    return Err(CommitError::InvalidReInit);
                }
                summary.reinit = true;
                set_reinit(out.reinit, &r)?;
            }
            Proposal::ExternalInit(e) if external => {
                if external_init.is_some() {
                    return Err(CommitError::InvalidExternalCommit);
                }
                external_init = Some(
                    crate::crypto::hpke::KemOutput::from_slice(e.kem_output)
                        .map_err(|_| CommitError::InvalidExternalCommit)?,
                );
            }
            Proposal::ExternalInit(_) => return Err(CommitError::ExternalInitInMemberCommit),
            Proposal::GroupContextExtensions(g) => {
                path_required = true;
                if gce.is_some() {
                    return Err(CommitError::MultipleGroupContextExtensions);
                }
                gce = Some(g.extensions);
                summary.extensions_changed = true;
            }
        }
    }
    if summary.reinit && total > 1 {
        return Err(CommitError::ReInitWithOtherProposals);
    }
    // §12.2, external commits: exactly one ExternalInit, at most one Remove,
    // PSKs, nothing else, nothing by reference (§12.4.3.2).
    if external {
        let by_reference = commit.proposals.iter().any(|p| matches!(p, ProposalOrRef::Reference(_)));
        if external_init.is_none()
            || by_reference
            || summary.removes > 1
            || summary.adds + summary.updates > 0
            || summary.extensions_changed
            || summary.reinit
        {
            return Err(CommitError::InvalidExternalCommit);
        }
        path_required = true;
    }

    // §12.3: extensions, updates, removes, adds, in that order.
    let old_extensions = Extensions::from_body(state.extensions.as_slice())?;
    let extensions = gce.unwrap_or(old_extensions);
    if let Some(g) = gce
        && (g.has_duplicates() || !members_support(new.old(), g)?)
    {
        return Err(CommitError::UnsupportedGroupContextExtensions);
    }
    for por in commit.proposals.iter() {
        let r = resolve(por, proposals, committer)?;
        if let (Proposal::Update(u), Sender::Member(s)) = (r.proposal, r.sender) {
            let leaf = u.leaf_node;
            check_update_leaf(state.group_id.as_slice(), new, s, &leaf, extensions, identity)?;
            new.update_leaf(LeafIndex(s), leaf.as_bytes())?;
        }
    }
    for por in commit.proposals.iter() {
        if let Proposal::Remove(rm) = resolve(por, proposals, committer)?.proposal {
            new.remove_leaf(LeafIndex(rm.removed))?;
        }
    }
    let added = &mut applied.added;
    added.clear();
    // The members' credential types once (if there is an Add), then each
    // Add's (§7.3).
    let mut types = match summary.adds {
        0 => CredentialTypes::NONE,
        _ => CredentialTypes::of(new.view()),
    };
    for por in commit.proposals.iter() {
        let Proposal::Add(a) = resolve(por, proposals, committer)?.proposal else { continue };
        let kp = a.key_package;
        // Its signatures were checked by `check_proposal_signatures`.
        kp.validate_except_signatures(suite, now, max_lifetime).map_err(CommitError::InvalidKeyPackage)?;
        let leaf = kp.tbs.leaf_node;
        check_identity(identity, state.group_id.as_slice(), CredentialUse::Add, &leaf, None)?;
        if !(leaf_fits_extensions(&leaf, extensions)? && types.admits(&leaf)) {
            return Err(CommitError::UnsupportedCapabilities);
        }
        types.admit(&leaf);
        // Adds take the leftmost blank leaves: each after the previous one.
        let first = added.last().map_or(LeafIndex(0), |l| LeafIndex(l.saturating_add(1)));
        let l = new.add_leaf_after(leaf.as_bytes(), first)?;
        added.push(l.0).map_err(|_| CommitError::CapacityExceeded(Capacity::Leaves))?;
    }
    check_added_keys(new, added)?;
    let psk_secret = psk_secret(suite, &psk_list)?;
    // Kept for the application's inspection of the staged commit.
    let psk_ids = out.psk_ids;
    psk_ids.0.clear();
    let mut overflow = false;
    {
        let mut sink = |b: &[u8]| overflow |= psk_ids.0.extend_from_slice(b).is_err();
        let mut w = Writer::sink(&mut sink);
        for (id, _) in psk_list.iter() {
            id.encode(&mut w)?;
        }
    }
    if overflow {
        return Err(CommitError::CapacityExceeded(Capacity::StagedPskBytes));
    }
    out.extensions.set(extensions.body()).map_err(|_| CommitError::CapacityExceeded(Capacity::GroupExtensionsLen))?;
    applied.summary = summary;
    applied.external_init = external_init;
    applied.psk_secret = psk_secret;
    applied.path_required = path_required;
    applied.external_removed = if external { last_removed } else { None };
    Ok(())
}
