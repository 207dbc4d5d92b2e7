//! The group (RFC 9420 §12): a member's state in one epoch and the state
//! machine that moves it to the next.
//!
//! Stage, then merge (docs/architecture.md, decision 6): processing a Commit builds the
//! next epoch beside the current one (a second tree buffer and a staged
//! [`EpochState`]); nothing the application can observe changes until
//! [`Group::merge_staged_commit_in_memory`]. A rejected message leaves the group exactly
//! as it was.

pub mod proposal_store;
mod commit;
mod staged;
mod create;
mod external;
mod join;
mod receive;
mod process;
mod signing_identity;
mod sizes;
#[cfg(feature = "test-utils")]
mod testing;

pub use commit::{CommitBuffers, CommitOptions, CommitOutput, CreateCommitError, MAX_PENDING_REFS, WireFormatPolicy};
pub use create::{CreateParams, default_capabilities};

pub use join::{JoinError, JoinParams};
pub use receive::{ReceiveError, Received};
pub use process::{CommitError, StagedCommitSummary, proposal_ref};
pub use signing_identity::SigningIdentity;
pub use staged::{MemberInfo, StagedCommit};

use crate::crypto::signer::Signer;
use crate::capacity::Capacity;
use crate::codec::{CodecError, Encode, OwnedBytes, Writer};
use crate::extensions::Extensions;
use crate::leaf_node::LeafNodeError;
use crate::messages::group_info::GroupInfoError;
use crate::messages::EncodedGroupContext;
use crate::ratchet_tree::tree::TreeError;
use crate::crypto::signature::SignaturePrivateKey;
use crate::crypto::{CipherSuite, CryptoError, HashValue};
use crate::group_context::GroupContext;
use crate::zero_option::{ZeroOption, Zeroed};
use crate::ratchet_tree::marks::NodeMarks;
use crate::identity::IdentityProvider;
use crate::key_schedule::EpochSecrets;
use crate::ratchet_tree::tree::{RatchetTree, TreeSlices, TreeView};
use crate::ratchet_tree::treekem::TreeKemPrivate;
use crate::secret_tree::{SecretTree, SecretTreeConfig, SecretTreeError};
use crate::tree_math::LeafIndex;
use proposal_store::ProposalStore;

/// Longest group ID a group may have: 128 bytes, or the value of the
/// environment variable `MLS_NOSTD_MAX_GROUP_ID_LEN` when the crate is
/// compiled (a firmware sets it in its `.cargo/config.toml` `[env]`). Every
/// group holds room for it several times (current, staged and previous
/// epoch, a ReInit), so a device that knows its groups' IDs lowers it.
pub const MAX_GROUP_ID_LEN: usize = crate::capacity::from_build_env(option_env!("MLS_NOSTD_MAX_GROUP_ID_LEN"), 128);
/// Most bytes the GroupContext extensions may take: 2,048, or the value of
/// `MLS_NOSTD_MAX_GROUP_EXTENSIONS_LEN` when the crate is compiled. A group
/// holds room for them five times (current and staged epoch, the previous
/// epoch's GroupContext, a ReInit committed and one staged) and a Commit
/// two more on the stack, so a device lowers it to what its groups use.
pub const MAX_GROUP_EXTENSIONS_LEN: usize =
    crate::capacity::from_build_env(option_env!("MLS_NOSTD_MAX_GROUP_EXTENSIONS_LEN"), 2048);
/// How many past epochs' resumption PSKs a group keeps (§8.6), besides the
/// current epoch's (about 56 bytes each). Set at build time by
/// `MLS_NOSTD_RESUMPTION_PSK_HISTORY` (default 8).
pub const RESUMPTION_PSK_HISTORY: usize =
    crate::capacity::from_build_env(option_env!("MLS_NOSTD_RESUMPTION_PSK_HISTORY"), 8);

/// Leaves of the previous epoch whose signature key (or that they were
/// blank) is kept for its late application messages when the Commit that
/// ended it removed, re-keyed or filled them (past that:
/// `ReceiveError::DepartedSender`).
pub const DEPARTED_KEYS: usize = 4;
/// Past epochs whose application messages still decrypt: 1, the one before
/// the current epoch, for messages sent just before a Commit (their senders
/// must still be members with the same signature key, or among the
/// [`DEPARTED_KEYS`]); or 0, none (RFC 9420 §9.2 and §12.4.2 leave it to
/// the client: OpenMLS keeps none by default). Keeping it costs a second
/// secret tree (about 120 bytes a leaf of capacity) and the epoch's
/// GroupContext. Set at build time by `MLS_NOSTD_PAST_EPOCHS_KEPT` (0 or 1;
/// default 1).
pub const PAST_EPOCHS_KEPT: usize = {
    let kept = crate::capacity::from_build_env(option_env!("MLS_NOSTD_PAST_EPOCHS_KEPT"), 1);
    assert!(kept <= 1, "MLS_NOSTD_PAST_EPOCHS_KEPT must be 0 or 1");
    kept
};
/// Most PreSharedKey proposals one Commit may carry. A staged Commit keeps
/// 64 bytes of PSK IDs per PSK ([`STAGED_PSK_BYTES`]). Set at build time by
/// `MLS_NOSTD_MAX_PSKS_PER_COMMIT` (default 16).
pub const MAX_PSKS_PER_COMMIT: usize =
    crate::capacity::from_build_env(option_env!("MLS_NOSTD_MAX_PSKS_PER_COMMIT"), 16);
/// Most bytes of encoded PreSharedKeyIDs a staged Commit keeps for
/// [`StagedCommit::psks`] (a Commit injecting more is refused): the
/// [`MAX_PSKS_PER_COMMIT`] PSKs with IDs of up to 28 bytes and nonces of 32.
pub const STAGED_PSK_BYTES: usize = MAX_PSKS_PER_COMMIT * 64;
/// Largest encoded GroupContext (group ID, two hashes, extensions, fixed fields).
pub const MAX_GROUP_CONTEXT_LEN: usize = 2 + 2 + 4 + MAX_GROUP_ID_LEN + 8 + 2 * (4 + 64) + 4 + MAX_GROUP_EXTENSIONS_LEN;

/// What the application configures.
#[derive(Clone, Copy)]
pub struct GroupConfig {
    /// Out-of-order limits of the secret tree.
    pub secret_tree: SecretTreeConfig,
    /// Longest KeyPackage lifetime accepted, in seconds.
    pub max_lifetime: u64,
    /// Asked for every credential that enters the group or replaces another
    /// (§5.3.1; see [`crate::identity`]).
    pub identity: &'static dyn IdentityProvider,
}

impl GroupConfig {
    /// The defaults: a 1,000-message out-of-order window, KeyPackages valid
    /// for at most 90 days, and [`SameCredential`](crate::identity::SameCredential).
    pub const DEFAULT: Self = Self {
        secret_tree: SecretTreeConfig { max_forward_distance: 1000 },
        max_lifetime: 90 * 24 * 3600,
        identity: &crate::identity::SAME_CREDENTIAL,
    };
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl core::fmt::Debug for GroupConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("GroupConfig")
            .field("secret_tree", &self.secret_tree)
            .field("max_lifetime", &self.max_lifetime)
            .finish_non_exhaustive()
    }
}

/// A member's state in one epoch, besides the trees.
#[derive(Clone, Debug)]
pub struct EpochState {
    /// The group's cipher suite.
    pub suite: CipherSuite,
    /// The group ID.
    pub group_id: OwnedBytes<MAX_GROUP_ID_LEN>,
    /// The epoch number.
    pub epoch: u64,
    /// `confirmed_transcript_hash` (§8.2).
    pub confirmed_transcript_hash: HashValue,
    /// `interim_transcript_hash` (§8.2).
    pub interim_transcript_hash: HashValue,
    /// The confirmation tag of the Commit that began this epoch (§6.1), for
    /// the GroupInfo (§12.4.3).
    pub confirmation_tag: HashValue,
    /// The tree hash of this epoch's ratchet tree (§7.8): the GroupContext's
    /// `tree_hash`, kept so that the context of the current epoch needs no
    /// tree while the next one is staged in it.
    pub tree_hash: HashValue,
    /// Body of the GroupContext's `extensions` vector.
    pub extensions: OwnedBytes<MAX_GROUP_EXTENSIONS_LEN>,
    /// This epoch's secrets.
    pub secrets: EpochSecrets,
    /// Our private keys in the tree.
    pub private: TreeKemPrivate,
}

impl EpochState {
    /// Deletes `encryption_secret` once this epoch's secret tree is rooted
    /// at it. The tree keeps the root until the epoch's first message
    /// consumes it (§9.2: a consumed secret MUST be deleted at once); a copy
    /// kept here would outlive that and let whoever reads the state later
    /// derive every key of the epoch, those of messages already read too.
    pub(crate) fn secret_tree_rooted(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.secrets.encryption_secret);
    }

    /// No epoch (a group slot not yet filled, or a staged epoch about to be).
    pub(crate) const EMPTY: Self = Self {
        suite: CipherSuite::PLACEHOLDER,
        group_id: OwnedBytes::EMPTY,
        epoch: 0,
        confirmed_transcript_hash: HashValue::EMPTY,
        interim_transcript_hash: HashValue::EMPTY,
        confirmation_tag: HashValue::EMPTY,
        tree_hash: HashValue::EMPTY,
        extensions: OwnedBytes::EMPTY,
        secrets: EpochSecrets::EMPTY,
        private: TreeKemPrivate::EMPTY,
    };

    /// Encodes the GroupContext of this epoch, with `tree_hash`, into `buf`.
    pub fn group_context<'b>(&self, tree_hash: &[u8], buf: &'b mut [u8]) -> Result<&'b [u8], CodecError> {
        self.context(tree_hash).encode_to(buf)
    }

    /// The GroupContext of this epoch (with its tree hash), encoded in
    /// pieces: no buffer of the whole encoding (444 bytes on the boards,
    /// 2.4 KB with the default limits) on the stack of a message's
    /// protection and the signature verified under it.
    pub(crate) fn encoded_context(&self) -> Result<EncodedGroupContext<'_>, CodecError> {
        EncodedGroupContext::new(self.context(self.tree_hash.as_bytes()))
    }

    /// The GroupContext of this epoch, with `tree_hash`.
    fn context<'a>(&'a self, tree_hash: &'a [u8]) -> GroupContext<'a> {
        GroupContext {
            cipher_suite: self.suite,
            group_id: self.group_id.as_slice(),
            epoch: self.epoch,
            tree_hash,
            confirmed_transcript_hash: self.confirmed_transcript_hash.as_bytes(),
            extensions: self.extensions.as_slice(),
        }
    }
}

impl PrevEpoch {
    /// The previous-epoch slot `prev`, filled with an empty record if it was
    /// none, to be overwritten in place (its own frame: the record is 2.4 KB).
    #[inline(never)]
    pub(crate) fn slot(prev: &mut ZeroOption<PrevEpoch>) -> &mut PrevEpoch {
        prev.get_or_insert_empty()
    }
}

impl Zeroed for PrevEpoch {
    const EMPTY: Self = PrevEpoch {
        epoch: 0,
        sender_data_secret: crate::crypto::Secret::EMPTY,
        group_context: OwnedBytes::EMPTY,
        departed: Departed::EMPTY,
    };
}

/// The previous epoch, kept for its late application messages
/// ([`PAST_EPOCHS_KEPT`]): what [`PrevEpoch`] holds (none until an epoch
/// has ended); its secret tree is [`SecretTrees::past`].
pub(crate) struct PastEpoch {
    pub(crate) record: ZeroOption<PrevEpoch>,
}

impl PastEpoch {
    pub(crate) const EMPTY: Self = Self { record: ZeroOption::NONE };
}

/// The current epoch's secret tree (§9) and, with a past epoch kept
/// ([`PAST_EPOCHS_KEPT`]), the previous epoch's. Merging a Commit resets
/// the older one to the new epoch and flips which is current: neither is
/// moved (a tree of 16,384 leaves is 4.5 MB; swapping two took a tenth of
/// processing a Commit at 10,000 members: 4.55 ms with, 4.11 ms without).
pub(crate) struct SecretTrees<const N: usize, const K: usize, const E: usize> {
    first: SecretTree<N, K, E>,
    second: [SecretTree<N, K, E>; PAST_EPOCHS_KEPT],
    /// `second` is the current epoch's (false in `EMPTY`: zero bytes).
    second_current: bool,
}

impl<const N: usize, const K: usize, const E: usize> SecretTrees<N, K, E> {
    pub(crate) const EMPTY: Self = Self {
        first: SecretTree::EMPTY,
        second: [const { SecretTree::EMPTY }; PAST_EPOCHS_KEPT],
        second_current: false,
    };

    /// The current epoch's tree.
    pub(crate) fn current(&self) -> &SecretTree<N, K, E> {
        match (self.second_current, self.second.first()) {
            (true, Some(second)) => second,
            _ => &self.first,
        }
    }

    /// The current epoch's tree, to advance.
    pub(crate) fn current_mut(&mut self) -> &mut SecretTree<N, K, E> {
        self.both_mut().0
    }

    /// The previous epoch's tree (none without a past epoch kept).
    pub(crate) fn past(&self) -> Option<&SecretTree<N, K, E>> {
        match (self.second_current, self.second.first()) {
            (true, Some(_)) => Some(&self.first),
            (_, second) => second,
        }
    }

    /// The previous epoch's tree, to advance or reset.
    pub(crate) fn past_mut(&mut self) -> Option<&mut SecretTree<N, K, E>> {
        self.both_mut().1
    }

    /// The current and the previous epoch's trees.
    pub(crate) fn both_mut(&mut self) -> (&mut SecretTree<N, K, E>, Option<&mut SecretTree<N, K, E>>) {
        match (self.second_current, self.second.first_mut()) {
            (true, Some(second)) => (second, Some(&mut self.first)),
            (_, second) => (&mut self.first, second),
        }
    }

    /// The previous epoch's tree becomes the current one and the current
    /// one the previous (nothing without a past epoch kept).
    pub(crate) fn flip(&mut self) {
        if !self.second.is_empty() {
            self.second_current = !self.second_current;
        }
    }

    /// Deletes the previous epoch's tree.
    pub(crate) fn clear_past(&mut self) {
        if let Some(past) = self.past_mut() {
            past.clear();
        }
    }
}

/// With no past epoch kept ([`PAST_EPOCHS_KEPT`] 0), what a store needs of
/// the ended epoch's secret tree: its name, so that a head naming it is not
/// taken for another group's, and whether its records were removed (once the
/// new epoch's head is written).
#[derive(Clone, Copy, Debug)]
pub(crate) struct EndedTree {
    pub(crate) tag: [u8; 8],
    pub(crate) bank_checked: bool,
}

impl EndedTree {
    pub(crate) const EMPTY: Self = Self { tag: [0; 8], bank_checked: false };
}

/// What is kept of the previous epoch to read its late application messages.
#[derive(Clone, Debug)]
pub(crate) struct PrevEpoch {
    pub(crate) epoch: u64,
    pub(crate) sender_data_secret: crate::crypto::Secret,
    pub(crate) group_context: OwnedBytes<MAX_GROUP_CONTEXT_LEN>,
    pub(crate) departed: Departed,
}

/// The signature keys, in the previous epoch, of the leaves whose key the
/// Commit that ended it changed: members removed (their leaf blank or given
/// to an added member) or updated with a new key, and leaves blank then that
/// it filled (kept with an empty key: not a member then). A late
/// application message of that epoch is authenticated with its sender's
/// leaf in that epoch's tree (RFC 9420 §6.1; §6.3.2: the leaf must be
/// non-blank), and the previous epoch's secret tree is kept for such
/// messages (§9.2: unconsumed secrets MAY be kept for out-of-order delivery;
/// §12.4.2: "a client might keep the secret tree for a short time to decrypt
/// late messages in the previous epoch"). Rather than a second tree, only
/// these are kept: every other leaf is the same in the current tree. (Leaves
/// past that epoch's tree have no keys in its secret tree.) At most
/// [`DEPARTED_KEYS`]; beyond, `overflow` is set, and a late message whose
/// sender's key is then unknown is [`ReceiveError::DepartedSender`]
/// (stale), never authenticated with the current tree's key.
#[derive(Clone, Debug)]
pub(crate) struct Departed {
    pub(crate) keys: [(LeafIndex, crate::crypto::signature::SignaturePublicKey); DEPARTED_KEYS],
    pub(crate) len: u8,
    pub(crate) overflow: bool,
    /// With `overflow` and `ranged`: every leaf whose entry was not kept and
    /// that is not blank in the current tree is in `unkept_from..unkept_to`.
    /// Not saved: a loaded group is not `ranged` (as `EMPTY`, all zero
    /// bytes), and under `overflow` only its kept entries then answer.
    unkept_from: u32,
    unkept_to: u32,
    ranged: bool,
}

/// A late message's sender in the previous epoch, as [`Departed::sender`]
/// knows it.
pub(crate) enum PastSender {
    /// A member, of this signature key.
    Member(crate::crypto::signature::SignaturePublicKey),
    /// Its leaf was blank.
    NotAMember,
    /// The Commit changed more leaves than are kept, perhaps this one.
    Unknown,
}

impl Departed {
    pub(crate) const EMPTY: Self = Self {
        keys: [(LeafIndex(0), crate::crypto::signature::SignaturePublicKey::EMPTY); DEPARTED_KEYS],
        len: 0,
        overflow: false,
        unkept_from: 0,
        unkept_to: 0,
        ranged: false,
    };

    /// Keeps `key` for `leaf` (empty: the leaf was blank), or notes that it
    /// could not; true if kept.
    pub(crate) fn push(&mut self, leaf: LeafIndex, key: &[u8]) -> bool {
        let kept = match key {
            [] => Ok(crate::crypto::signature::SignaturePublicKey::EMPTY),
            key => crate::crypto::signature::SignaturePublicKey::from_slice(key),
        };
        match (self.keys.get_mut(usize::from(self.len)), kept) {
            (Some(slot), Ok(k)) => {
                *slot = (leaf, k);
                self.len += 1;
                true
            }
            _ => {
                self.overflow = true;
                false
            }
        }
    }

    /// The previous epoch's sender at `leaf`, `current` giving its key in
    /// the current tree (a leaf of that epoch's tree).
    pub(crate) fn sender(
        &self,
        leaf: LeafIndex,
        current: impl FnOnce() -> Option<crate::crypto::signature::SignaturePublicKey>,
    ) -> PastSender {
        let kept = self.keys.iter().take(usize::from(self.len)).find(|(l, _)| *l == leaf);
        match kept {
            Some((_, k)) if k.as_bytes().is_empty() => PastSender::NotAMember,
            Some((_, k)) => PastSender::Member(*k),
            None if self.overflow && (!self.ranged || (self.unkept_from..self.unkept_to).contains(&leaf.0)) => {
                PastSender::Unknown
            }
            None => match current() {
                Some(k) => PastSender::Member(k),
                // Blank now: a member then whose key was not kept, or blank then too.
                None if self.overflow => PastSender::Unknown,
                None => PastSender::NotAMember,
            },
        }
    }

    /// The leaves of `tree` whose signature key its staged Commit changes,
    /// with their key before it. One pass over the stage's log, newest entry
    /// first: a leaf's later entry is older and replaces what an earlier one
    /// said, so its last is its value before the stage.
    fn of_stage(tree: &TreeSlices<'_>) -> Self {
        let new = tree.view();
        let old_leaves = tree.old().n_leaves();
        let mut d = Self { unkept_from: u32::MAX, ranged: true, ..Self::EMPTY };
        for (leaf, before) in tree.staged_leaf_values() {
            d.forget(leaf);
            let before = before.and_then(crate::leaf_node::LeafNode::keys_of).map(|(_, key)| key);
            let after = new.signature_key(leaf);
            if leaf.0 < old_leaves && before != after {
                d.keep(leaf, before.unwrap_or(&[]), after.is_some());
            }
        }
        d
    }

    /// Keeps `key` (empty: blank) as `leaf`'s, which is a member now if
    /// `member`; if it cannot, the leaf goes to the unkept range. A key
    /// takes the place of a blank leaf's entry (which only refuses late
    /// messages: the range does that too) rather than be dropped.
    fn keep(&mut self, leaf: LeafIndex, key: &[u8], member: bool) {
        let len = usize::from(self.len);
        if !key.is_empty() && len == DEPARTED_KEYS {
            let blank = self.keys.iter().take(len).find(|(_, k)| k.as_bytes().is_empty()).map(|(l, _)| *l);
            if let Some(blank) = blank {
                self.forget(blank);
                self.overflow = true;
                self.unkept(blank);
            }
        }
        if !self.push(leaf, key) && member {
            self.unkept(leaf);
        }
    }

    /// Widens the unkept range to `leaf`.
    fn unkept(&mut self, leaf: LeafIndex) {
        self.unkept_from = self.unkept_from.min(leaf.0);
        self.unkept_to = self.unkept_to.max(leaf.0.saturating_add(1));
    }

    /// Drops what is kept for `leaf`, if anything.
    fn forget(&mut self, leaf: LeafIndex) {
        let len = usize::from(self.len);
        if let Some(i) = self.keys.iter().take(len).position(|(l, _)| *l == leaf) {
            // The last entry takes its place (order does not matter).
            let last = self.keys.get(len.saturating_sub(1)).copied();
            if let (Some(last), Some(slot)) = (last, self.keys.get_mut(i)) {
                *slot = last;
            }
            self.len = self.len.saturating_sub(1);
        }
    }
}

/// The parameters of a committed ReInit proposal (§12.1.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReInitParams {
    /// The new group's ID.
    pub group_id: OwnedBytes<MAX_GROUP_ID_LEN>,
    /// The new group's protocol version.
    pub version: u16,
    /// The new group's cipher suite.
    pub cipher_suite: u16,
    /// The new group's GroupContext extensions (body).
    pub extensions: OwnedBytes<MAX_GROUP_EXTENSIONS_LEN>,
}

impl<const N: usize, const ARENA: usize, const K: usize, const P: usize, Sig: Signer, const E: usize> crate::psk::PskStore
    for Group<N, ARENA, K, P, Sig, E>
{
    fn external_psk(&self, _: &[u8]) -> Option<&[u8]> {
        None
    }

    fn resumption_psk(&self, group_id: &[u8], epoch: u64) -> Option<&[u8]> {
        if group_id != self.state.group_id.as_slice() {
            return None;
        }
        self.resumption_psk(epoch)
    }

    fn linked_group(&self, group_id: &[u8], epoch: u64) -> Option<crate::psk::LinkedGroup<'_>> {
        if group_id != self.state.group_id.as_slice() {
            return None;
        }
        let reinit = match (&self.reinit, self.reinit_epoch) {
            (Some(r), Some(e)) if e == epoch => {
                Some((r.group_id.as_slice(), r.version, r.cipher_suite, r.extensions.as_slice()))
            }
            _ => None,
        };
        Some(crate::psk::LinkedGroup { cipher_suite: self.state.suite.to_u16(), reinit })
    }
}

/// A processed Commit waiting to be merged.
// Stored once, in place, in the group: no heap to box the large variant into.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub(crate) enum Staged {
    /// The next epoch: this state, and the changes staged in the tree.
    Epoch(EpochState),
    /// The Commit removes us: merging ends our membership.
    Removed,
}

impl Staged {
    /// Stages an empty next epoch in `slot` and returns it, for the Commit
    /// being processed or created to fill in place: an `EpochState` (5 KB)
    /// built on the stack and moved would add its size (or twice) to the
    /// frame. Never inlined, so that any temporary of the assignment stays
    /// out of the caller's frame. (None cannot happen.)
    #[inline(never)]
    pub(crate) fn begin_epoch(slot: &mut ZeroOption<Staged>) -> Option<&mut EpochState> {
        match slot.insert_empty() {
            Staged::Epoch(next) => Some(next),
            Staged::Removed => None,
        }
    }
}

impl Zeroed for Staged {
    /// An empty next epoch (its bytes are `EpochState::EMPTY`'s: zero).
    const EMPTY: Self = Staged::Epoch(EpochState::EMPTY);
}

/// What a staged Commit does, kept beside it for [`StagedCommit`].
#[derive(Clone, Debug)]
pub(crate) struct StagedInfo {
    pub(crate) summary: StagedCommitSummary,
    /// The PreSharedKeyIDs injected, encoded one after another.
    pub(crate) psk_ids: OwnedBytes<STAGED_PSK_BYTES>,
    /// The member an external Commit removes (a resync).
    pub(crate) external_removed: Option<LeafIndex>,
}

impl StagedInfo {
    pub(crate) const EMPTY: Self = Self {
        summary: StagedCommitSummary::EMPTY,
        psk_ids: OwnedBytes::EMPTY,
        external_removed: None,
    };
}

/// Why a group operation failed (besides Commit processing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum GroupError {
    /// A capacity of the group was exceeded (which one is said).
    CapacityExceeded(Capacity),
    /// A cryptographic operation failed.
    Crypto(CryptoError),
    /// An encoding was malformed or a buffer too small.
    Codec(CodecError),
    /// There is no staged commit to merge.
    NothingStaged,
    /// A Commit is staged: merge or discard it first.
    CommitPending,
    /// The slot holds an active group: creating or joining would replace it
    /// (use another slot, or empty this one with [`Group::EMPTY`]).
    SlotInUse,
    /// A ratchet tree operation failed (e.g. hashing a tree that does not
    /// fit its capacity).
    Tree(TreeError),
    /// The secret tree could not be set up for the new epoch.
    SecretTree(SecretTreeError),
    /// Our leaf could not be signed (e.g. a credential larger than the
    /// leaf buffer).
    LeafNode(LeafNodeError),
    /// The GroupInfo could not be signed.
    GroupInfo(GroupInfoError),
    /// The creator's own leaf does not support what the GroupContext
    /// extensions require: a `required_capabilities` entry or a
    /// non-default extension type (§11.1, §12.1.7).
    UnsupportedCapabilities,
    /// The group cannot be used: we were removed from it, or a ReInit was
    /// committed (§11.2, §12.4.2).
    Inactive,
}

impl core::fmt::Display for GroupError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::CapacityExceeded(c) => write!(f, "group capacity exceeded: {c}"),
            Self::Crypto(e) => write!(f, "crypto: {e}"),
            Self::Codec(e) => write!(f, "encoding: {e}"),
            Self::NothingStaged => f.write_str("no staged commit to merge"),
            Self::CommitPending => f.write_str("a commit is staged: merge or discard it first"),
            Self::SlotInUse => {
                f.write_str("the slot holds an active group: use another slot or empty this one with Group::EMPTY")
            }
            Self::Tree(e) => write!(f, "ratchet tree: {e}"),
            Self::SecretTree(e) => write!(f, "secret tree: {e}"),
            Self::LeafNode(e) => write!(f, "our leaf: {e}"),
            Self::GroupInfo(e) => write!(f, "{e}"),
            Self::UnsupportedCapabilities => {
                f.write_str("the creator's leaf does not support the capabilities the group extensions require")
            }
            Self::Inactive => f.write_str("the group was left, removed or reinitialized"),
        }
    }
}

impl core::error::Error for GroupError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Crypto(e) => Some(e),
            Self::Codec(e) => Some(e),
            Self::Tree(e) => Some(e),
            Self::SecretTree(e) => Some(e),
            Self::LeafNode(e) => Some(e),
            Self::GroupInfo(e) => Some(e),
            _ => None,
        }
    }
}

impl From<CodecError> for GroupError {
    fn from(e: CodecError) -> Self {
        Self::Codec(e)
    }
}

// A group lives in a `static` on firmware (which must be `Sync`) and moves
// between threads on hosts: a field that is neither must not creep in (CI's
// board builds once failed on a `dyn IdentityProvider` that was not `Sync`).
const _: () = {
    const fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<Group<2, 64, 1, 64>>();
};

/// A member of a group with room for `N` leaves, `ARENA` bytes of leaf
/// encodings, `K` out-of-order keys and `P` bytes of pending proposals.
///
/// On a device, use it through [`Group::stored`] (every operation saved
/// before it returns); its own operations are named `*_in_memory`.
///
/// What the API does not allow (issue #13; each block below must fail to
/// compile, and the doc tests check that it does). Content reaches the
/// state machine only through [`Group::process_message_in_memory`], which
/// verifies it; there is no public way to hand the group an
/// `AuthenticatedContent`:
///
/// ```compile_fail,E0624
/// use mls_nostd::group::Group;
/// use mls_nostd::messages::authenticated_content::AuthenticatedContent;
/// fn stage(g: &mut Group<2, 64, 1, 64>, ac: &AuthenticatedContent<'_>) {
///     let _ = g.stage_commit(ac, &mls_nostd::psk::NoPsks, 0);
/// }
/// ```
///
/// ```compile_fail,E0624
/// use mls_nostd::group::Group;
/// use mls_nostd::messages::authenticated_content::AuthenticatedContent;
/// fn store(g: &mut Group<2, 64, 1, 64>, ac: &AuthenticatedContent<'_>) {
///     let _ = g.store_proposal(ac);
/// }
/// ```
///
/// The epoch's secrets and our private keys are not reachable (only the
/// exporter, [`Group::export_secret`], derives from them):
///
/// ```compile_fail,E0599
/// fn secrets(g: &mls_nostd::group::Group<2, 64, 1, 64>) {
///     let _ = &g.state().secrets;
/// }
/// ```
///
/// The tree is read-only:
///
/// ```compile_fail,E0599
/// fn blank(g: &mut mls_nostd::group::Group<2, 64, 1, 64>) {
///     let _ = g.tree().blank_leaf(mls_nostd::tree_math::LeafIndex(0));
/// }
/// ```
///
/// `Sig` signs for this member: [`SignaturePrivateKey`] (the key in memory,
/// the default) or a handle to a key in a secure element ([`Signer`]).
///
/// `E` (by default `N`) is how many secrets of the epoch's secret tree
/// (§9) the group holds at once. Below `N` its RAM follows the senders
/// heard from in an epoch, not the group's size (issue #14): a message
/// whose sender needs more entries than are free is refused with
/// [`Capacity::SecretTreeEntries`](crate::capacity::Capacity) (see
/// [`SecretTree`] for how many `s` senders need).
pub struct Group<
    const N: usize,
    const ARENA: usize,
    const K: usize,
    const P: usize,
    Sig: Signer = SignaturePrivateKey,
    const E: usize = N,
> {
    pub(crate) state: EpochState,
    pub(crate) signer: Sig,
    /// We are a member of the group in this slot: false while the slot is
    /// empty and after we were removed (false, not a `removed: true`, so
    /// that [`Group::EMPTY`] is all zero bytes).
    pub(crate) member: bool,
    /// The ReInit of the staged Commit, or the one committed (§11.2). One
    /// slot serves both: a group whose ReInit is committed is inactive and
    /// stages nothing (the parameters hold up to 300 bytes of extensions
    /// and group ID).
    pub(crate) reinit: Option<ReInitParams>,
    /// The epoch the committed ReInit began; none while `reinit`, if any,
    /// is the staged Commit's.
    pub(crate) reinit_epoch: Option<u64>,
    /// What the staged commit does (meaningful while `staged` is some).
    pub(crate) staged_info: StagedInfo,
    /// The private key of the leaf in our pending Update proposal (§12.1.2).
    pub(crate) pending_update_key: Option<crate::crypto::hpke::HpkePrivateKey>,
    /// The ratchet tree; a staged Commit's changes are in it, undoably.
    pub(crate) tree: RatchetTree<N, ARENA>,
    /// What the store holds of the tree and what changed since (the
    /// store's; merging a Commit marks the nodes it changed).
    pub(crate) tree_marks: NodeMarks<N>,
    pub(crate) secret_trees: SecretTrees<N, K, E>,
    /// The previous epoch, for its late application messages (none kept in
    /// a build with [`PAST_EPOCHS_KEPT`] 0).
    pub(crate) past: [PastEpoch; PAST_EPOCHS_KEPT],
    /// With no past epoch kept: the ended epoch's secret tree as the store
    /// knows it (the store's).
    pub(crate) ended: EndedTree,
    /// The id of the store this group last saved to or loaded from, as its
    /// head names it (the store's; zero: none). What the marks and flags
    /// above say is stored, and what changed since, holds for that store
    /// only: a save to any other is a save of the whole group.
    pub(crate) store_id: [u8; 8],
    /// Bit `p`: the spare bank of part `p` in that store is empty (this
    /// group's last save there cleared it after its commit point), so the
    /// next save writes it without looking for leftovers (the store's).
    pub(crate) clean_spares: u8,
    pub(crate) proposals: ProposalStore<P>,
    pub(crate) staged: ZeroOption<Staged>,
    /// What the application configured (none while the slot is empty:
    /// [`GroupConfig::DEFAULT`] holds a reference, never zero bytes).
    pub(crate) config: Option<GroupConfig>,
    /// Resumption PSKs of past epochs, newest last (§8.6).
    pub(crate) resumption_psks: [Option<(u64, crate::crypto::Secret)>; RESUMPTION_PSK_HISTORY],
}

impl<const N: usize, const ARENA: usize, const K: usize, const P: usize, Sig: Signer, const E: usize> Group<N, ARENA, K, P, Sig, E> {
    /// A group slot with no group yet (create or join fills it), usable in
    /// `static` items so that no group state is ever built on the stack.
    ///
    /// All zero bytes (with a `Sig` whose `NONE` is; [`SignaturePrivateKey`]'s
    /// is): a writable `static` holding it lands in `.bss` and costs no
    /// flash (issue #14; the test `empty_group` and the firmware's footprint
    /// budget check it). Hence `member` rather than `removed`, the
    /// configuration as an `Option`, and `ZeroOption` where an `Option`
    /// would keep its `None` in a niche.
    pub const EMPTY: Self = {
        let () = Self::DEPTH_HOLDS_CAPACITY;
        Self::EMPTY_UNCHECKED
    };

    /// The tree's levels this build keeps keys for ([`MAX_DEPTH`]) reach `N`
    /// leaves: a member of a larger tree would lose its path keys.
    ///
    /// [`MAX_DEPTH`]: crate::ratchet_tree::tree::MAX_DEPTH
    const DEPTH_HOLDS_CAPACITY: () = {
        let depth = crate::ratchet_tree::tree::MAX_DEPTH;
        assert!(
            depth >= usize::BITS as usize || N <= 1usize << depth,
            "the group's capacity N needs more tree levels than MLS_NOSTD_MAX_TREE_DEPTH allows"
        );
    };

    const EMPTY_UNCHECKED: Self = Self {
        state: EpochState::EMPTY,
        signer: Sig::NONE,
        member: false,
        reinit: None,
        reinit_epoch: None,
        staged_info: StagedInfo::EMPTY,
        pending_update_key: None,
        tree: RatchetTree::EMPTY,
        tree_marks: NodeMarks::EMPTY,
        secret_trees: SecretTrees::EMPTY,
        past: [const { PastEpoch::EMPTY }; PAST_EPOCHS_KEPT],
        ended: EndedTree::EMPTY,
        store_id: [0; 8],
        clean_spares: 0,
        proposals: ProposalStore::EMPTY,
        staged: ZeroOption::NONE,
        config: None,
        resumption_psks: [const { None }; RESUMPTION_PSK_HISTORY],
    };

    /// What the application configured at create or join (the defaults
    /// while the slot is empty).
    pub(crate) fn config(&self) -> GroupConfig {
        self.config.unwrap_or(GroupConfig::DEFAULT)
    }

    /// The resumption PSK of this group at `epoch`, if still kept (§8.6): a
    /// secret, the only one besides the exporter's that the group gives
    /// out, for the group that resumes or branches from this one (§11.2,
    /// §11.3); keep it as the group's state is kept.
    pub fn resumption_psk(&self, epoch: u64) -> Option<&[u8]> {
        if epoch == self.state.epoch && self.member {
            return Some(self.state.secrets.resumption_psk.as_bytes());
        }
        self.resumption_psks.iter().flatten().find(|(e, _)| *e == epoch).map(|(_, s)| s.as_bytes())
    }

    /// True until the group is created or joined, after we were removed, and
    /// after a ReInit was committed (§11.2: the group must not be used).
    pub fn is_inactive(&self) -> bool {
        !self.member || self.reinit_epoch.is_some()
    }

    /// The ReInit this group ended with (§11.2): new group ID, version,
    /// cipher suite and extensions, for whoever creates the new group.
    pub fn reinit(&self) -> Option<&ReInitParams> {
        self.reinit.as_ref().filter(|_| self.reinit_epoch.is_some())
    }

    /// The proposals received (and sent) this epoch, in arrival order, with
    /// their references and senders, for the application to inspect before
    /// it commits them (e.g. a ReInit, for [`Group::commit_reinit_in_memory`]).
    /// `StoredProposal::proposal` is the encoded `Proposal`.
    pub fn pending_proposals(&self) -> impl Iterator<Item = proposal_store::StoredProposal<'_>> + '_ {
        self.proposals.iter()
    }

    /// The group's cipher suite.
    pub fn suite(&self) -> CipherSuite {
        self.state.suite
    }

    /// The group ID.
    pub fn group_id(&self) -> &[u8] {
        self.state.group_id.as_slice()
    }

    /// This epoch's GroupContext extensions (§8.1).
    pub fn extensions(&self) -> Extensions<'_> {
        // Checked when the epoch was set up; an unreadable body reads as none.
        Extensions::from_body(self.state.extensions.as_slice()).unwrap_or_default()
    }

    /// The epoch number.
    pub fn epoch(&self) -> u64 {
        self.state.epoch
    }

    /// The epoch authenticator (§8.7).
    pub fn epoch_authenticator(&self) -> &[u8] {
        self.state.secrets.epoch_authenticator.as_bytes()
    }

    /// The encoded GroupContext of the current epoch (§8.1), e.g. for an
    /// external sender signing a proposal to the group.
    pub fn group_context<'b>(&mut self, buf: &'b mut [u8]) -> Result<&'b [u8], GroupError> {
        // The epoch's cached tree hash: `tree()` is the staged tree while a
        // Commit is staged, not this epoch's.
        Ok(self.state.group_context(self.state.tree_hash.as_bytes(), buf)?)
    }

    /// Our leaf.
    pub fn own_leaf(&self) -> LeafIndex {
        self.state.private.leaf
    }

    /// `MLS-Exporter(label, context, out.len())` (§8.5).
    pub fn export_secret(&self, label: &[u8], context: &[u8], out: &mut [u8]) -> Result<(), GroupError> {
        self.state.secrets.export(self.state.suite, label, context, out).map_err(GroupError::Crypto)
    }

    /// This epoch's ratchet tree, read-only: who is in the group (a staged
    /// Commit's changes show only once it is merged).
    pub fn tree(&self) -> TreeView<'_> {
        self.tree.old()
    }

    /// Writes this epoch's ratchet tree as `optional<Node> ratchet_tree<V>`
    /// (§12.4.3.3), e.g. for a joiner that gets no `ratchet_tree` extension
    /// (`GroupError::CommitPending` while a Commit is staged).
    pub fn export_tree(&mut self, w: &mut Writer<'_>) -> Result<(), GroupError> {
        if self.staged.is_some() {
            return Err(GroupError::CommitPending);
        }
        self.tree.slices().export(w).map_err(GroupError::Tree)
    }

    /// The ratchet tree's storage, staged changes included (the algorithms'
    /// view; crate-private: its mutators bypass every check).
    pub(crate) fn tree_slices(&mut self) -> TreeSlices<'_> {
        self.tree.slices()
    }

    /// Makes the staged commit the current epoch (§12.4.2, last step). On
    /// an error nothing changed: the commit is still staged.
    pub fn merge_staged_commit_in_memory(&mut self) -> Result<(), GroupError> {
        match self.staged.as_ref() {
            None => return Err(GroupError::NothingStaged),
            Some(Staged::Removed) => {
                // Delete what is ours; late messages of the epoch are lost.
                self.mark_staged_nodes();
                self.tree.slices().merge_stage().map_err(|_| GroupError::NothingStaged)?;
                self.staged.clear();
                self.staged_info = StagedInfo::EMPTY;
                self.member = false;
                self.secret_trees.current_mut().clear();
                self.secret_trees.clear_past();
                self.past.iter_mut().for_each(|p| p.record.clear());
                self.ended = EndedTree::EMPTY;
                self.state.secrets = EpochSecrets::EMPTY;
                self.state.private = TreeKemPrivate::EMPTY;
                self.proposals.clear();
                return Ok(());
            }
            Some(Staged::Epoch(_)) => {}
        }
        // Every fallible step first (issue #13: at 7208f14 a failure here
        // lost the staged commit). With a past epoch kept, the epoch that
        // ends keeps its keys for late application messages, its
        // GroupContext (measured here, written in place below) and the
        // signature keys the Commit changes.
        let kept = !self.past.is_empty();
        let gc_len = match kept {
            true => {
                let mut counter = Writer::counter();
                self.state.context(self.state.tree_hash.as_bytes()).encode(&mut counter)?;
                counter.len()
            }
            false => 0,
        };
        if gc_len > MAX_GROUP_CONTEXT_LEN {
            return Err(CodecError::CapacityExceeded(Capacity::Container(MAX_GROUP_CONTEXT_LEN)).into());
        }
        let new_leaves = self.tree.slices().n_leaves();
        let Some(Staged::Epoch(staged)) = self.staged.as_ref() else { return Err(GroupError::NothingStaged) };
        let tree_config = self.config().secret_tree;
        match self.secret_trees.past_mut() {
            // The tree of two epochs ago is the one replaced; its reset
            // checks the size before it deletes anything.
            Some(past) => past
                .reset(staged.suite, new_leaves, &staged.secrets.encryption_secret, tree_config)
                .map_err(GroupError::SecretTree)?,
            // The epoch's own tree is replaced, after the last step that can
            // fail: only the size can make its reset fail, checked here.
            None => SecretTree::<N, K>::check_size(new_leaves).map_err(GroupError::SecretTree)?,
        }
        let departed = match kept {
            true => Departed::of_stage(&self.tree.slices()),
            false => Departed::EMPTY,
        };
        self.mark_staged_nodes();
        self.tree.slices().merge_stage().map_err(|_| GroupError::NothingStaged)?;
        // Nothing fails from here.
        self.staged_info = StagedInfo::EMPTY;
        match self.past.first_mut() {
            Some(past) => {
                // The tree just reset becomes the current one.
                self.secret_trees.flip();
                let prev = PrevEpoch::slot(&mut past.record);
                prev.epoch = self.state.epoch;
                prev.sender_data_secret.clone_from(&self.state.secrets.sender_data_secret);
                prev.departed = departed;
                let written = prev.group_context.0.resize(gc_len, 0).is_ok()
                    && self.state.group_context(self.state.tree_hash.as_bytes(), &mut prev.group_context.0).is_ok();
                if !written {
                    // Cannot happen (measured above); late messages are then refused.
                    past.record.clear();
                }
            }
            None => {
                // The ended epoch's keys go at once; so do its records in the
                // store, at the next save after the new epoch's head.
                let Some(Staged::Epoch(staged)) = self.staged.as_ref() else { return Err(GroupError::NothingStaged) };
                self.ended = EndedTree { tag: self.secret_trees.current().meta.tag, bank_checked: false };
                self.secret_trees
                    .current_mut()
                    .reset(staged.suite, new_leaves, &staged.secrets.encryption_secret, tree_config)
                    .map_err(GroupError::SecretTree)?;
            }
        }
        // Keep this epoch's resumption PSK; the oldest kept one is deleted.
        self.resumption_psks.rotate_left(1);
        if let Some(last) = self.resumption_psks.last_mut() {
            *last = Some((self.state.epoch, self.state.secrets.resumption_psk.clone()));
        }
        // The staged epoch becomes current in place (swapped, not moved
        // through the stack); the old one is dropped (zeroized) with `staged`.
        if let Some(Staged::Epoch(next)) = self.staged.as_mut() {
            core::mem::swap(&mut self.state, next);
        }
        self.state.secret_tree_rooted();
        self.staged.clear();
        self.proposals.clear();
        // A staged ReInit is now committed: the group becomes inactive.
        self.reinit_epoch = self.reinit.as_ref().map(|_| self.state.epoch);
        // Proposals of the ended epoch are gone, ours included.
        self.pending_update_key = None;
        Ok(())
    }

    /// Marks the nodes the staged Commit changed, for the store: a changed
    /// leaf's ancestors too, whose records hold their unmerged leaves (the
    /// stage lists those whose unmerged count changed already; this keeps a
    /// parent's record from lagging its leaves whatever the stage logs). A
    /// mark too many costs at most a record written; one too few would fail
    /// the tree hash check at load (seen: the store tests fail with no marks).
    fn mark_staged_nodes(&mut self) {
        let t = self.tree.slices();
        let n_leaves = t.n_leaves();
        for x in t.staged_nodes() {
            if x.is_leaf() {
                self.tree_marks.mark_changed_with_ancestors(x, n_leaves);
            } else {
                self.tree_marks.mark_changed(x);
            }
        }
    }

    /// Makes `state`, with the tree already in place, this slot's group
    /// (after create or join); everything of a previous group is deleted.
    pub(crate) fn install(
        &mut self,
        state: EpochState,
        signer: &Sig,
        config: GroupConfig,
    ) -> Result<(), SecretTreeError> {
        let n_leaves = self.tree.slices().n_leaves();
        self.secret_trees.current_mut().reset(state.suite, n_leaves, &state.secrets.encryption_secret, config.secret_tree)?;
        self.state = state;
        self.state.secret_tree_rooted();
        self.finish_install(signer, config);
        Ok(())
    }

    /// [`Self::install`] of the state already written into `self.state`.
    pub(crate) fn install_in_place(&mut self, signer: &Sig, config: GroupConfig) -> Result<(), SecretTreeError> {
        let n_leaves = self.tree.slices().n_leaves();
        let state = &self.state;
        self.secret_trees.current_mut().reset(state.suite, n_leaves, &state.secrets.encryption_secret, config.secret_tree)?;
        self.state.secret_tree_rooted();
        self.finish_install(signer, config);
        Ok(())
    }

    fn finish_install(&mut self, signer: &Sig, config: GroupConfig) {
        self.signer = signer.clone();
        self.config = Some(config);
        self.tree_marks.mark_all_changed();
        self.store_id = [0; 8];
        self.clean_spares = 0;
        self.proposals.clear();
        self.staged.clear();
        self.past.iter_mut().for_each(|p| p.record.clear());
        self.secret_trees.clear_past();
        self.ended = EndedTree::EMPTY;
        self.member = true;
        self.reinit = None;
        self.reinit_epoch = None;
        self.staged_info = StagedInfo::EMPTY;
        self.pending_update_key = None;
        self.resumption_psks = [const { None }; RESUMPTION_PSK_HISTORY];
    }

    /// True while a processed or created Commit waits for merge or discard
    /// (also after a reload: our own commit is saved staged).
    pub fn has_staged_commit(&self) -> bool {
        self.staged.is_some()
    }

    /// Drops a staged commit; the group stays in its epoch.
    pub fn discard_staged_commit(&mut self) {
        if self.staged.is_some() {
            // Nothing can fail: the tree is staging whenever a commit is staged.
            let _ = self.tree.slices().discard_stage();
        }
        self.clear_staging();
    }

    /// Empties the staging fields (a Commit's next epoch is built in them
    /// in place, and they are emptied again if that fails).
    pub(crate) fn clear_staging(&mut self) {
        self.staged.clear();
        // The staged Commit's ReInit (a committed one stays).
        if self.reinit_epoch.is_none() {
            self.reinit = None;
        }
        self.staged_info = StagedInfo::EMPTY;
    }
}
