//! Creating a Commit (RFC 9420 §12.4.1) and its Welcome (§12.4.3.1), and
//! sending proposals (§12.1). The Commit is staged like a received one: the
//! group moves to the new epoch only at [`Group::merge_staged_commit_in_memory`], once
//! the application has sent the messages (or discards it).

use super::process::{Applied, AppliedOut, CommitError, StagedCommitSummary, apply_proposals};
use super::{Group, MAX_GROUP_CONTEXT_LEN, Staged};
use crate::crypto::signer::Signer;
use crate::capacity::Capacity;
use crate::codec::{CodecError, Decode, Encode, ListView, Reader, Writer};
use crate::crypto::{HashValue, Secret};
use crate::executor::Executor;
use crate::extensions::{EXT_RATCHET_TREE, Extensions};
use crate::group_context::GroupContext;
use crate::key_schedule::{EpochSecrets, joiner_secret, welcome_secret};
use crate::messages::authenticated_content::{AuthenticatedContent, ProtectionError};
use crate::messages::commit::Commit;
use crate::messages::framing::{
    Content, ContentType, FramedContent, FramedContentAuthData, FramedContentHead, Sender, WIRE_FORMAT_PRIVATE_MESSAGE,
    WIRE_FORMAT_PUBLIC_MESSAGE,
};
use crate::messages::group_info::{GroupInfo, GroupInfoError, GroupInfoTbs, WireGroupContext};
use crate::messages::private_message::{self, PrivateMessageKeys};
use crate::messages::proposal::{Proposal, ProposalOrRef};
use crate::messages::public_message;
use crate::messages::welcome_secrets::{NewMember, WelcomeError, WelcomeParams};
use crate::psk::{PreSharedKeyId, PskStore};
use crate::ratchet_tree::tree::{MAX_DEPTH, TreeSlices};
use crate::ratchet_tree::treekem::{LeafTemplate, PathSecrets};
use crate::transcript;
use crate::tree_math::{self, LeafIndex};
use rand_core::CryptoRng;

/// Most proposals received in an epoch that one Commit refers to.
pub const MAX_PENDING_REFS: usize = 64;

/// How handshake messages (proposals and commits) are sent (§6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WireFormatPolicy {
    /// As PublicMessage: the delivery service can see and check them.
    #[default]
    Public,
    /// As PrivateMessage: encrypted to the group.
    Private,
}

/// What the Commit does besides the proposals received this epoch.
#[derive(Clone, Copy, Debug)]
pub struct CommitOptions<'a> {
    /// Proposals of our own, committed by value.
    pub proposals: &'a [Proposal<'a>],
    /// Commit every valid proposal received this epoch, by reference (a new
    /// member's Add of itself only if the group's identity provider
    /// authorizes it: [`IdentityProvider::authorize_new_member_add`]).
    ///
    /// [`IdentityProvider::authorize_new_member_add`]: crate::identity::IdentityProvider::authorize_new_member_add
    pub include_pending: bool,
    /// Send an UpdatePath even where none is required.
    pub force_path: bool,
    /// Put the ratchet tree into the Welcome's GroupInfo (§12.4.3.3).
    pub ratchet_tree_in_welcome: bool,
    /// PublicMessage or PrivateMessage.
    pub wire_format: WireFormatPolicy,
    /// Zero padding of a PrivateMessage.
    pub padding: usize,
    /// `authenticated_data` of the message.
    pub authenticated_data: &'a [u8],
    /// Our leaf's new signature key, credential, capabilities and extensions
    /// if a path is sent; `None` keeps them as they are.
    pub leaf: Option<LeafTemplate<'a>>,
}

impl CommitOptions<'_> {
    /// Commits the proposals received this epoch and nothing of our own, as a
    /// PublicMessage without padding or authenticated data, with the tree in
    /// any Welcome, a path only where one is required (§12.4), and our leaf
    /// as it is.
    pub const DEFAULT: Self = Self {
        proposals: &[],
        include_pending: true,
        force_path: false,
        ratchet_tree_in_welcome: true,
        wire_format: WireFormatPolicy::Public,
        padding: 0,
        authenticated_data: &[],
        leaf: None,
    };
}

impl Default for CommitOptions<'_> {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Buffers a Commit is written into.
#[derive(Debug)]
pub struct CommitBuffers<'o> {
    /// The Commit message, built in place: the proposal list is written at
    /// the buffer's end and moved to its place in the message, the
    /// UpdatePath built where the message carries it, its HPKE ciphertexts
    /// sealed in jobs of their own (the recipient's key, an IKM and the
    /// secret: 96 bytes in suite 1, a third more than the ciphertext at
    /// most) and written over them. The Commit's size plus a third
    /// suffices.
    pub message: &'o mut [u8],
    /// The Welcome, if members are added.
    pub welcome: &'o mut [u8],
    /// The signed GroupInfo of the Welcome (with the tree if requested).
    pub group_info: &'o mut [u8],
}

/// A Commit we created, staged until merged.
#[derive(Debug)]
pub struct CommitOutput<'o> {
    /// The `MLSMessage` holding the Commit, to send to the group.
    pub commit: &'o [u8],
    /// The `MLSMessage(Welcome)` for the new members, if any.
    pub welcome: Option<&'o [u8]>,
    /// What the Commit does.
    pub summary: StagedCommitSummary,
}

/// Why a Commit could not be created. The group is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum CreateCommitError {
    /// The proposal list is invalid (§12.2) or could not be applied.
    Commit(CommitError),
    /// Framing or protection failed (a buffer too small, among others).
    Protection(ProtectionError),
    /// The Welcome could not be built.
    Welcome(WelcomeError),
    /// The group cannot be used.
    Inactive,
    /// [`Group::commit_reinit_in_memory`] was given a reference that names no ReInit
    /// proposal received (or sent) this epoch.
    NoPendingReInit,
    /// The GroupInfo for the Welcome could not be signed (e.g. the
    /// `group_info` buffer too small: it needs twice the GroupInfo's size).
    GroupInfo(GroupInfoError),
    /// A leaf template names a signature key that is not our signer's: the
    /// leaf would be signed with another key than the one it names, which
    /// every member refuses (§7.3), and the group signs with its one
    /// signer. Nothing is staged or sent.
    SignatureKeyNotOurs,
    /// [`Group::propose_update`] while an Update of ours is pending in
    /// this epoch: a Commit takes at most one Update per leaf (§12.2), and
    /// only the last one's private key would be kept, so a Commit of the
    /// first would leave us with a leaf key we do not hold.
    UpdatePending,
}

impl core::fmt::Display for CreateCommitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Commit(e) => write!(f, "{e}"),
            Self::Protection(e) => write!(f, "framing the commit: {e}"),
            Self::Welcome(e) => write!(f, "building the Welcome: {e}"),
            Self::Inactive => f.write_str("the group was left, removed or reinitialized"),
            Self::NoPendingReInit => f.write_str("the reference names no ReInit proposal pending in this epoch"),
            Self::GroupInfo(e) => write!(f, "signing the GroupInfo: {e}"),
            Self::SignatureKeyNotOurs => {
                f.write_str("the leaf template's signature key is not the group signer's (a new key needs a new signer)")
            }
            Self::UpdatePending => f.write_str("an Update of ours is pending in this epoch: one Update per epoch"),
        }
    }
}

impl core::error::Error for CreateCommitError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Commit(e) => Some(e),
            Self::Protection(e) => Some(e),
            Self::Welcome(e) => Some(e),
            Self::GroupInfo(e) => Some(e),
            _ => None,
        }
    }
}

impl From<CommitError> for CreateCommitError {
    fn from(e: CommitError) -> Self {
        Self::Commit(e)
    }
}

impl From<ProtectionError> for CreateCommitError {
    fn from(e: ProtectionError) -> Self {
        Self::Protection(e)
    }
}

impl From<WelcomeError> for CreateCommitError {
    fn from(e: WelcomeError) -> Self {
        Self::Welcome(e)
    }
}

impl From<CodecError> for CreateCommitError {
    fn from(e: CodecError) -> Self {
        Self::Commit(CommitError::Codec(e))
    }
}

fn encode_list(w: &mut Writer<'_>, refs: &[HashValue], by_value: &[Proposal<'_>]) -> Result<(), CodecError> {
    w.write_vector(|w| {
        for r in refs {
            ProposalOrRef::Reference(r.as_bytes()).encode(w)?;
        }
        for p in by_value {
            ProposalOrRef::Proposal(*p).encode(w)?;
        }
        Ok(())
    })
}

impl<const N: usize, const ARENA: usize, const K: usize, const P: usize, Sig: Signer, const E: usize> Group<N, ARENA, K, P, Sig, E> {
    /// Sends a proposal (§12.1) as a handshake message into `out`, and keeps
    /// it for our own next Commit.
    pub fn propose<'o>(
        &mut self,
        proposal: &Proposal<'_>,
        wire_format: WireFormatPolicy,
        rng: &mut impl CryptoRng,
        out: &'o mut [u8],
    ) -> Result<&'o [u8], CreateCommitError> {
        if self.is_inactive() {
            return Err(CreateCommitError::Inactive);
        }
        // What our own policy refuses, the others' refuses too (§12.2).
        let sender = Sender::Member(self.state.private.leaf.0);
        if !self.config().identity.authorize_proposal(self.state.group_id.as_slice(), sender, proposal) {
            return Err(CommitError::ProposalNotAuthorized.into());
        }
        let gc = self.state.encoded_context()?;
        let content = FramedContent {
            group_id: self.state.group_id.as_slice(),
            epoch: self.state.epoch,
            sender: Sender::Member(self.state.private.leaf.0),
            authenticated_data: &[],
            content: Content::Proposal(*proposal),
        };
        let wf = match wire_format {
            WireFormatPolicy::Public => WIRE_FORMAT_PUBLIC_MESSAGE,
            WireFormatPolicy::Private => WIRE_FORMAT_PRIVATE_MESSAGE,
        };
        let suite = self.state.suite;
        // The reference is over the AuthenticatedContent (§5.2), known once signed.
        let reference = |content_bytes: &[u8], signature: &[u8]| -> Result<HashValue, CreateCommitError> {
            let auth = FramedContentAuthData { signature, confirmation_tag: None };
            let ac = AuthenticatedContent::from_parts(wf, content_bytes, auth)?;
            Ok(super::process::proposal_ref(suite, &ac)?)
        };
        let (message, reference) = match wire_format {
            WireFormatPolicy::Public => {
                let signed = public_message::sign(&gc, &self.signer, &content, out)?;
                let r = reference(signed.content_bytes(), signed.signature())?;
                (signed.finish(None, Some(&self.state.secrets.membership_key))?, r)
            }
            WireFormatPolicy::Private => {
                let signed = private_message::sign(&gc, &self.signer, &content, 0, out)?;
                let r = reference(signed.content_bytes(), signed.signature())?;
                let mut keys = PrivateMessageKeys {
                    secret_tree: self.secret_trees.current_mut(),
                    sender_data_secret: &self.state.secrets.sender_data_secret,
                };
                (signed.finish(None, &mut keys, rng)?, r)
            }
        };
        self.proposals.insert_encoded(&reference, Sender::Member(self.state.private.leaf.0), proposal)?;
        Ok(message)
    }
    /// The signatures of the pending Updates' leaves (§7.2, with their
    /// senders' leaf indexes) and Adds' KeyPackages (§10.1) among the first
    /// [`MAX_PENDING_REFS`] pending proposals, for [`Self::select_pending`]
    /// to choose by: an Add or Update further on waits for a later Commit
    /// (a Commit carries at most that many references). In a frame of its
    /// own, never inlined.
    #[inline(never)]
    fn pending_signatures(&self) -> PendingSignatures {
        let suite = self.state.suite;
        let me = self.state.private.leaf;
        let group_id = self.state.group_id.as_slice();
        let mut out = PendingSignatures::default();
        for (i, stored) in self.proposals.iter().enumerate().take(MAX_PENDING_REFS) {
            let valid = match (Proposal::decode_exact(stored.proposal), stored.sender) {
                (Ok(Proposal::Update(u)), crate::messages::framing::Sender::Member(s)) if s != me.0 => {
                    super::process::verify_update_leaf(suite, group_id, s, &u.leaf_node).is_ok()
                }
                // The rest of its validation is done where it is chosen.
                (Ok(Proposal::Add(a)), _) => a.key_package.verify_signatures(suite).is_ok(),
                _ => continue,
            };
            if valid {
                out.0 |= 1 << i;
            }
        }
        out
    }


    /// The pending proposals a Commit of ours should include (§12.4: "all
    /// proposals received that are valid"): each valid on its own, none
    /// touching a leaf twice (a Remove wins over an Update), one
    /// GroupContextExtensions, no ExternalInit, a new member's Add of itself
    /// only if [`IdentityProvider::authorize_new_member_add`] says so
    /// (§12.1.8.2), and never a ReInit (only
    /// [`Group::commit_reinit_in_memory`] commits one).
    ///
    /// [`IdentityProvider::authorize_new_member_add`]: crate::identity::IdentityProvider::authorize_new_member_add
    fn select_pending(
        &mut self,
        refs: &mut heapless::Vec<HashValue, MAX_PENDING_REFS>,
        by_value: &[Proposal<'_>],
        now: u64,
        psks: &dyn PskStore,
        signed: PendingSignatures,
    ) -> Result<(), CommitError> {
        let suite = self.state.suite;
        let me = self.state.private.leaf;
        let config = self.config();
        let (max_lifetime, identity) = (config.max_lifetime, config.identity);
        let group_id = self.state.group_id.as_slice();
        // The extensions the Commit's Updates and Adds must fit (§12.3):
        // those of its GroupContextExtensions, if any.
        let mut extensions = crate::extensions::Extensions::from_body(self.state.extensions.as_slice())?;
        if let Some(e) = by_value.iter().find_map(|p| match p {
            Proposal::GroupContextExtensions(g) => Some(g.extensions),
            _ => None,
        }) {
            extensions = e;
        }
        let own = super::process::OwnResumptionPsks { state: &self.state, history: &self.resumption_psks, inner: psks };
        let psks: &dyn PskStore = &own;
        let tree = self.tree.slices();
        // Leaves removed or updated, and clients added, by this commit: the
        // proposals by value are looked up where they are (any number of
        // them); the lists hold only the pending ones chosen (bounded by refs).
        let mut touched: heapless::Vec<u32, MAX_PENDING_REFS> = heapless::Vec::new();
        let mut gce = by_value.iter().any(|p| matches!(p, Proposal::GroupContextExtensions(_)));
        let by_value_touches = |leaf: u32| {
            by_value.iter().any(|p| match p {
                Proposal::Remove(r) => r.removed == leaf,
                Proposal::Update(_) => me.0 == leaf,
                _ => false,
            })
        };
        let by_value_adds = |key: &[u8]| {
            by_value.iter().any(|p| matches!(p, Proposal::Add(a) if a.key_package.tbs.leaf_node.fields.signature_key == key))
        };
        // Signature keys of the pending clients added so far: each client once (§12.2).
        let mut adding: heapless::Vec<crate::crypto::signature::SignaturePublicKey, MAX_PENDING_REFS> =
            heapless::Vec::new();
        // PreSharedKeyIDs chosen so far, nonce included: each once (§12.2;
        // issue #13: at 7208f14 two pending proposals of one PreSharedKeyID
        // were both chosen and our own Commit failed with DuplicatePsk).
        // A pending one is chosen only if the Commit stays valid with it
        // (the checks of `add_psk`, which also apply them on receipt).
        let mut injecting: heapless::Vec<(PreSharedKeyId<'_>, &[u8]), { super::MAX_PSKS_PER_COMMIT }> =
            heapless::Vec::new();
        let by_value_injects =
            |id: &PreSharedKeyId<'_>| by_value.iter().any(|p| matches!(p, Proposal::PreSharedKey(q) if q.psk == *id));
        let mut link_seen = by_value
            .iter()
            .any(|p| matches!(p, Proposal::PreSharedKey(q) if super::process::is_link_psk(&q.psk.psk)));
        // The PSKs by value count against MAX_PSKS_PER_COMMIT too: pending
        // ones are chosen only while the Commit stays within it.
        let by_value_psks = by_value.iter().filter(|p| matches!(p, Proposal::PreSharedKey(_))).count();
        let at = (suite, self.state.epoch);
        // A new leaf (an Add's or Update's) sharing a key with one this
        // Commit already brings (by value or chosen): keys are unique in the
        // tree (§7.3), so a second one would make the Commit invalid.
        fn leaf_of<'p>(p: &Proposal<'p>) -> Option<crate::leaf_node::LeafNode<'p>> {
            match p {
                Proposal::Add(a) => Some(a.key_package.tbs.leaf_node),
                Proposal::Update(u) => Some(u.leaf_node),
                _ => None,
            }
        }
        let proposals = &self.proposals;
        // The pending Adds and Updates chosen so far, a bit per store index
        // (only the first MAX_PENDING_REFS can be chosen, as their
        // signatures are checked): a candidate is compared with them in one
        // pass over the store, not a lookup by reference per chosen one. A
        // bit, not a list of their keys: 1 KiB less stack on a 32-bit MCU.
        let mut chosen_leaves: u64 = 0;
        let clashes = |chosen: u64, leaf: &crate::leaf_node::LeafNode<'_>| {
            let same = |o: crate::leaf_node::LeafNode<'_>| {
                o.fields.encryption_key == leaf.fields.encryption_key || o.fields.signature_key == leaf.fields.signature_key
            };
            by_value.iter().filter_map(leaf_of).any(same)
                || proposals
                    .iter()
                    .take(MAX_PENDING_REFS)
                    .enumerate()
                    .filter(|&(j, _)| (chosen >> j) & 1 != 0)
                    .filter_map(|(_, s)| Proposal::decode_exact(s.proposal).ok())
                    .filter_map(|p| leaf_of(&p))
                    .any(same)
        };
        // The members' credential types and the Adds' chosen so far (§7.3),
        // found at the first pending Add.
        let mut types: Option<super::process::CredentialTypes> = None;
        // Leaves removed by this Commit: by value, or the pending Removes
        // chosen (the first `n_removed` of `touched`, pass 0).
        let mut n_removed = 0;
        // Removes first, so that an Update of a removed leaf is dropped;
        // the GroupContextExtensions too, whose extensions the others fit.
        for pass in 0..2 {
            if pass == 1 {
                n_removed = touched.len();
            }
            for (i, stored) in proposals.iter().enumerate() {
                let Ok(p) = Proposal::decode_exact(stored.proposal) else { continue };
                // The application's policy first (§12.2), before any list
                // below takes the proposal in.
                if !identity.authorize_proposal(group_id, stored.sender, &p) {
                    continue;
                }
                let keep = match (pass, &p, stored.sender) {
                    (0, Proposal::Remove(r), _) => {
                        r.removed != me.0
                            && tree.leaf_node(LeafIndex(r.removed)).is_some()
                            && !touched.contains(&r.removed)
                            && !by_value_touches(r.removed)
                    }
                    // One, supported by every member (§12.1.7, §12.2).
                    (0, Proposal::GroupContextExtensions(g), _) if !gce => {
                        let valid = !g.extensions.has_duplicates()
                            && super::process::members_support(tree.old(), g.extensions).unwrap_or(false);
                        if valid {
                            gce = true;
                            extensions = g.extensions;
                        }
                        valid
                    }
                    (1, Proposal::Update(u), crate::messages::framing::Sender::Member(s)) => {
                        s != me.0
                            && tree.leaf_node(LeafIndex(s)).is_some()
                            && !touched.contains(&s)
                            && !by_value_touches(s)
                            && signed.valid(i)
                            && super::process::check_update_leaf(group_id, &tree, s, &u.leaf_node, extensions, identity)
                                .is_ok()
                            && !clashes(chosen_leaves, &u.leaf_node)
                    }
                    (1, Proposal::Add(a), sender) => {
                        let key = a.key_package.tbs.leaf_node.fields.signature_key;
                        // Not a member this commit keeps (an Update keeps
                        // its leaf), not added twice. (Signature keys are
                        // unique in the tree: one leaf at most.)
                        let removed = |l: u32| {
                            touched.get(..n_removed).is_some_and(|t| t.contains(&l))
                                || by_value.iter().any(|p| matches!(p, Proposal::Remove(r) if r.removed == l))
                        };
                        let member = tree.find_signature_key(key).is_some_and(|i| !removed(i.0));
                        let fresh = !member && !by_value_adds(key) && !adding.iter().any(|k| k.as_bytes() == key);
                        let leaf = &a.key_package.tbs.leaf_node;
                        // Its encryption key new to the tree and the Commit.
                        let fresh = fresh
                            && !tree.has_encryption_key(leaf.fields.encryption_key, None)
                            && !clashes(chosen_leaves, leaf);
                        let accepted = super::process::check_identity(
                            identity,
                            group_id,
                            crate::identity::CredentialUse::Add,
                            leaf,
                            None,
                        )
                        .is_ok();
                        let valid =
                            signed.valid(i) && a.key_package.validate_except_signatures(suite, now, max_lifetime).is_ok();
                        // It supports the group's extensions and credential
                        // types, and its type is supported by all (§7.3, §12.2).
                        let t = types.get_or_insert_with(|| {
                            let mut t = super::process::CredentialTypes::of(tree.old());
                            for p in by_value {
                                if let Proposal::Add(a) = p {
                                    t.admit(&a.key_package.tbs.leaf_node);
                                }
                            }
                            t
                        });
                        let fits = super::process::leaf_fits_extensions(leaf, extensions).unwrap_or(false) && t.admits(leaf);
                        // A new member's Add of itself only if the application
                        // authorizes it (§12.1.8.2; anyone can send one).
                        let authorized = sender != crate::messages::framing::Sender::NewMemberProposal
                            || identity.authorize_new_member_add(
                                group_id,
                                &crate::identity::MemberIdentity { credential: leaf.fields.credential, signature_key: key },
                            );
                        if fresh && accepted && valid && authorized && fits {
                            t.admit(leaf);
                            if let Ok(k) = crate::crypto::signature::SignaturePublicKey::from_slice(key) {
                                adding.push(k).map_err(|_| CommitError::CapacityExceeded(Capacity::ProposalsPerCommit))?;
                            }
                            true
                        } else {
                            false
                        }
                    }
                    // Only PSKs we hold, with a nonce of the right length
                    // (§12.1.4), whose IDs, with those chosen and those by
                    // value, fit what the members keep of a staged Commit's
                    // (`STAGED_PSK_BYTES`): they refuse a Commit of more,
                    // and a Commit of pending ones failed with it.
                    (1, Proposal::PreSharedKey(p), _) => {
                        let link_before = link_seen;
                        let added = !by_value_injects(&p.psk)
                            && injecting.len().saturating_add(by_value_psks) < super::MAX_PSKS_PER_COMMIT
                            && super::process::add_psk(&mut injecting, p.psk, at, &mut link_seen, psks).is_ok();
                        let by_value_ids = by_value.iter().filter_map(|q| match q {
                            Proposal::PreSharedKey(q) => Some(q.psk),
                            _ => None,
                        });
                        let fits = added
                            && super::process::check_staged_psk_bytes(by_value_ids.chain(injecting.iter().map(|(id, _)| *id)))
                                .is_ok();
                        if added && !fits {
                            injecting.pop();
                            link_seen = link_before;
                        }
                        fits
                    }
                    _ => false,
                };
                if !keep {
                    continue;
                }
                if leaf_of(&p).is_some() {
                    chosen_leaves |= u32::try_from(i).ok().and_then(|i| 1u64.checked_shl(i)).unwrap_or(0);
                }
                match p {
                    Proposal::Remove(r) => {
                        touched.push(r.removed).map_err(|_| CommitError::CapacityExceeded(Capacity::ProposalsPerCommit))?
                    }
                    Proposal::Update(_) => {
                        if let crate::messages::framing::Sender::Member(s) = stored.sender {
                            touched.push(s).map_err(|_| CommitError::CapacityExceeded(Capacity::ProposalsPerCommit))?;
                        }
                    }
                    _ => {}
                }
                refs.push(stored.reference).map_err(|_| CommitError::CapacityExceeded(Capacity::ProposalsPerCommit))?;
            }
        }
        Ok(())
    }

    /// A leaf we sign from `template` names our signer's key: a LeafNode's
    /// signature is checked with the key it names (§7.3), and a group has
    /// one signer, so a template of another key would make a leaf every
    /// member refuses (and a Commit of ours that, merged, leaves the group).
    fn check_template_key(&self, template: &LeafTemplate<'_>) -> Result<(), CreateCommitError> {
        if template.signature_key != self.signer.public_key().as_bytes() {
            return Err(CreateCommitError::SignatureKeyNotOurs);
        }
        Ok(())
    }

    /// Proposes an Update of our leaf (§12.1.2): a fresh encryption key and
    /// the leaf contents of `template`. The new private key is kept until a
    /// Commit applies the proposal (or the epoch ends).
    pub fn propose_update<'o>(
        &mut self,
        template: &LeafTemplate<'_>,
        wire_format: WireFormatPolicy,
        rng: &mut impl CryptoRng,
        out: &'o mut [u8],
    ) -> Result<&'o [u8], CreateCommitError> {
        self.check_template_key(template)?;
        // One Update of ours per epoch: a Commit takes one Update per leaf
        // (RFC 9420 §12.2), any of those sent, and we keep one private key.
        // A second Update let a Commit of the first leave our leaf with a
        // key we did not hold: the path secret sealed to it did not
        // decrypt (found by `self_acceptance`).
        if self.pending_update_key.is_some() {
            return Err(CreateCommitError::UpdatePending);
        }
        let suite = self.state.suite;
        let mut ikm = Secret::zero(suite.hash_len()).map_err(CommitError::Crypto)?;
        rng.fill_bytes(ikm.as_mut_bytes());
        let (sk, pk) = crate::crypto::hpke::derive_key_pair(suite, ikm.as_bytes()).map_err(CommitError::Crypto)?;
        let fields = crate::leaf_node::LeafNodeFields {
            encryption_key: pk.as_bytes(),
            signature_key: template.signature_key,
            credential: template.credential,
            capabilities: template.capabilities,
            source: crate::leaf_node::LeafNodeSource::Update,
            extensions: template.extensions,
        };
        let ctx = crate::leaf_node::LeafNodeContext {
            group_id: self.state.group_id.as_slice(),
            leaf_index: self.state.private.leaf.0,
        };
        let mut leaf_buf = [0u8; 4096];
        let leaf = crate::leaf_node::LeafNode::sign_into(suite, &fields, Some(ctx), &self.signer, &mut leaf_buf)
            .map_err(|e| match e.in_own_buffer() {
                crate::leaf_node::LeafNodeError::Codec(c) => CommitError::Codec(c),
                crate::leaf_node::LeafNodeError::Crypto(c) => CommitError::Crypto(c),
                _ => CommitError::InvalidUpdateLeaf,
            })?;
        let leaf_node = crate::leaf_node::LeafNode::decode_exact(leaf)?;
        // Checked as the receivers check it (§12.1.2, §7.3), who would
        // ignore it: its capabilities, our policy on the successor.
        let identity = self.config().identity;
        let extensions = crate::extensions::Extensions::from_body(self.state.extensions.as_slice())?;
        let me = self.state.private.leaf.0;
        super::process::check_update_leaf(self.state.group_id.as_slice(), &self.tree.slices(), me, &leaf_node, extensions, identity)?;
        let proposal = Proposal::Update(crate::messages::proposal::Update { leaf_node });
        let message = self.propose(&proposal, wire_format, rng, out)?;
        self.pending_update_key = Some(sk);
        Ok(message)
    }

    /// Creates a Commit (§12.4.1) of `opts.proposals` and, if asked, every
    /// valid proposal received this epoch; with an UpdatePath when required or
    /// forced; and a Welcome for the members it adds. The new epoch is staged:
    /// send the messages, then [`Group::merge_staged_commit_in_memory`].
    ///
    /// `include_pending` never selects a ReInit: committing one ends the
    /// group and obliges the committer to create its successor (§12.4.1),
    /// which only [`Group::commit_reinit_in_memory`] asks for.
    #[allow(clippy::too_many_arguments)]
    pub fn commit_in_memory<'o>(
        &mut self,
        opts: &CommitOptions<'_>,
        psks: &dyn PskStore,
        now: u64,
        rng: &mut impl CryptoRng,
        executor: &impl Executor,
        bufs: CommitBuffers<'o>,
    ) -> Result<CommitOutput<'o>, CreateCommitError> {
        self.commit_with(None, opts, psks, now, rng, executor, bufs)
    }

    /// Commits the pending ReInit proposal `reinit` (its reference, §5.2: as
    /// [`Received::Proposal`](super::Received::Proposal) or
    /// [`Group::pending_proposals`] give it) by reference and alone, as §12.2
    /// requires: `opts.proposals` must be empty and `opts.include_pending`
    /// false ([`CommitError::ReInitWithOtherProposals`] otherwise). The rest
    /// of `opts` applies as in [`Group::commit_in_memory`] (a path only if forced).
    ///
    /// Once merged, the group is inactive (§11.2) and [`Group::reinit`]
    /// gives the new group's parameters; the committer must then create the
    /// new group, whose first Commit injects this group's resumption PSK of
    /// usage `reinit` at the merged epoch (§12.4.1): pass this group as the
    /// [`PskStore`] of that Commit.
    #[allow(clippy::too_many_arguments)]
    pub fn commit_reinit_in_memory<'o>(
        &mut self,
        reinit: &HashValue,
        opts: &CommitOptions<'_>,
        psks: &dyn PskStore,
        now: u64,
        rng: &mut impl CryptoRng,
        executor: &impl Executor,
        bufs: CommitBuffers<'o>,
    ) -> Result<CommitOutput<'o>, CreateCommitError> {
        self.commit_with(Some(reinit), opts, psks, now, rng, executor, bufs)
    }

    #[allow(clippy::too_many_arguments)]
    fn commit_with<'o>(
        &mut self,
        reinit: Option<&HashValue>,
        opts: &CommitOptions<'_>,
        psks: &dyn PskStore,
        now: u64,
        rng: &mut impl CryptoRng,
        executor: &impl Executor,
        bufs: CommitBuffers<'o>,
    ) -> Result<CommitOutput<'o>, CreateCommitError> {
        if self.is_inactive() {
            return Err(CreateCommitError::Inactive);
        }
        if let Some(template) = &opts.leaf {
            self.check_template_key(template)?;
        }
        // One Commit at a time is staged in the tree.
        if self.staged.is_some() {
            return Err(CommitError::CommitPending.into());
        }
        self.tree.slices().begin_stage().map_err(CommitError::Tree)?;
        // Adds' KeyPackages are checked, and the path and Welcome sealed, in
        // parallel: threads woken now are ready for the later steps.
        executor.prepare();
        let result = self.commit_in_tree(reinit, opts, psks, now, rng, executor, bufs);
        if result.is_err() {
            // Nothing can fail: the tree is staging. The staging fields,
            // partly filled, are emptied.
            let _ = self.tree.slices().discard_stage();
            self.clear_staging();
        }
        result
    }

    /// Chooses the proposals of the Commit (`reinit` alone, or ours by
    /// value and the pending ones) and encodes the list at the end of
    /// `message`; returns its length. Its own frame: the references (2 KB)
    /// are gone before the path is created.
    #[inline(never)]
    fn write_proposal_list(
        &mut self,
        reinit: Option<&HashValue>,
        opts: &CommitOptions<'_>,
        psks: &dyn PskStore,
        now: u64,
        message: &mut [u8],
        signed: PendingSignatures,
    ) -> Result<usize, CreateCommitError> {
        let mut refs: heapless::Vec<HashValue, MAX_PENDING_REFS> = heapless::Vec::new();
        if let Some(reference) = reinit {
            if !opts.proposals.is_empty() || opts.include_pending {
                return Err(CommitError::ReInitWithOtherProposals.into());
            }
            let is_reinit = self
                .proposals
                .get(reference)
                .is_some_and(|p| matches!(Proposal::decode_exact(p.proposal), Ok(Proposal::ReInit(_))));
            if !is_reinit {
                return Err(CreateCommitError::NoPendingReInit);
            }
            refs.push(*reference).map_err(|_| CommitError::CapacityExceeded(Capacity::ProposalsPerCommit))?;
        } else if opts.include_pending {
            self.select_pending(&mut refs, opts.proposals, now, psks, signed)?;
        }
        let mut counter = Writer::counter();
        encode_list(&mut counter, &refs, opts.proposals)?;
        let list_len = counter.len();
        let list_start = message.len().checked_sub(list_len).ok_or(ProtectionError::BufferTooSmall { needed: list_len })?;
        let list_area = message.get_mut(list_start..).ok_or(ProtectionError::BufferTooSmall { needed: list_len })?;
        encode_list(&mut Writer::new(list_area), &refs, opts.proposals)?;
        Ok(list_len)
    }

    /// Writes the proposal list at the end of `message` (returns its
    /// length), stages an empty next epoch and applies the proposals to it
    /// and to the staged tree (§12.2, §12.3). Its own frame: the
    /// GroupContext buffers of the path and the signature are not on the
    /// stack while proposals' signatures are verified.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn stage_own_proposals(
        &mut self,
        reinit: Option<&HashValue>,
        opts: &CommitOptions<'_>,
        psks: &dyn PskStore,
        now: u64,
        executor: &dyn Executor,
        message: &mut [u8],
        applied: &mut Applied<N>,
    ) -> Result<usize, CreateCommitError> {
        let me = self.state.private.leaf;
        // The proposal list, encoded at the end of the message buffer.
        // The pending proposals' signatures are checked here, not where they
        // are chosen: `write_proposal_list`'s frame (5 KB: the chosen
        // references and signature keys) would be under each verification.
        let signed = match reinit.is_none() && opts.include_pending {
            true => self.pending_signatures(),
            false => PendingSignatures::default(),
        };
        let list_len = self.write_proposal_list(reinit, opts, psks, now, message, signed)?;
        let list_start = message.len().checked_sub(list_len).ok_or(ProtectionError::BufferTooSmall { needed: list_len })?;
        let list_area = message.get(list_start..).ok_or(ProtectionError::BufferTooSmall { needed: list_len })?;
        let proposals_view: ListView<'_, ProposalOrRef<'_>> = {
            let mut r = Reader::new(list_area);
            ListView::from_body(r.read_opaque()?)?
        };

        // Validate and apply, staged in the tree (§12.2, §12.3).
        let config = self.config();
        let Self { tree, proposals, state, staged, reinit, staged_info, resumption_psks, .. } = self;
        // Our own group's resumption PSKs resolve as they do for the receivers.
        let own_psks = super::process::OwnResumptionPsks { state, history: resumption_psks, inner: psks };
        let mut new = tree.slices();
        let draft = Commit { proposals: proposals_view, path: None };
        // The next epoch, filled in place (commit_with empties it on an error).
        let next = Staged::begin_epoch(staged).ok_or(CommitError::CommitPending)?;
        let out = AppliedOut { extensions: &mut next.extensions, psk_ids: &mut staged_info.psk_ids, reinit };
        super::process::check_proposal_signatures(
            &draft,
            proposals,
            me,
            state.suite,
            state.group_id.as_slice(),
            now,
            config.max_lifetime,
            executor,
            true,
        )?;
        apply_proposals::<N, P>(
            &draft,
            me,
            LeafIndex(u32::MAX),
            &mut new,
            proposals,
            state,
            &own_psks,
            now,
            config.max_lifetime,
            false,
            config.identity,
            out,
            applied,
        )?;
        Ok(list_len)
    }

    /// [`Self::commit_in_memory`] or [`Self::commit_reinit_in_memory`] once the tree is staging.
    /// The new epoch is built in place in the staging fields.
    #[allow(clippy::too_many_arguments)]
    fn commit_in_tree<'o>(
        &mut self,
        reinit: Option<&HashValue>,
        opts: &CommitOptions<'_>,
        psks: &dyn PskStore,
        now: u64,
        rng: &mut impl CryptoRng,
        executor: &impl Executor,
        bufs: CommitBuffers<'o>,
    ) -> Result<CommitOutput<'o>, CreateCommitError> {
        // Filled in place, not moved: its list of added leaves is 4 bytes a
        // leaf of capacity.
        let mut applied = Applied::new();
        let list_len = self.stage_own_proposals(reinit, opts, psks, now, executor, &mut *bufs.message, &mut applied)?;
        let CommitBuffers { message, welcome, group_info } = bufs;
        let shape = (opts.wire_format, opts.force_path, opts.ratchet_tree_in_welcome);
        self.commit_next_epoch(opts, shape, list_len, &applied, rng, executor, message, welcome, group_info)
    }

    /// The path, the signed and protected Commit, the new epoch's key
    /// schedule and the Welcome of a Commit whose proposals are staged
    /// ([`Self::stage_own_proposals`] wrote their list at the end of
    /// `bufs.message`, `list_len` bytes). Its own frame: the GroupContext
    /// buffers are on the stack only here. The options that choose between
    /// branches come as scalars, `(wire_format, force_path,
    /// ratchet_tree_in_welcome)`, and the buffers one by one: with a single
    /// call site the compiler propagates a caller's constant options into
    /// this function and drops the branches it never takes (a firmware that
    /// only sends PrivateMessages and no Welcome carries no code for them).
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn commit_next_epoch<'o>(
        &mut self,
        opts: &CommitOptions<'_>,
        (wire_format_policy, force_path, ratchet_tree_in_welcome): (WireFormatPolicy, bool, bool),
        list_len: usize,
        applied: &Applied<N>,
        rng: &mut impl CryptoRng,
        executor: &impl Executor,
        message_buf: &'o mut [u8],
        welcome_buf: &'o mut [u8],
        group_info_buf: &'o mut [u8],
    ) -> Result<CommitOutput<'o>, CreateCommitError> {
        let suite = self.state.suite;
        let me = self.state.private.leaf;
        let identity = self.config().identity;
        let buf_len = message_buf.len();
        let list_start = buf_len.checked_sub(list_len).ok_or(ProtectionError::BufferTooSmall { needed: list_len })?;
        let Self {
            tree,
            proposals,
            state,
            staged,
            signer,
            secret_trees,
            staged_info,
            ..
        } = self;
        let mut new = tree.slices();
        let Some(Staged::Epoch(next)) = staged.as_mut() else { return Err(CommitError::CommitPending.into()) };
        let mut summary = applied.summary;
        let extensions = Extensions::from_body(next.extensions.as_slice())?;

        // The UpdatePath's room: as large as this path in this tree needs
        // (none without a path).
        let with_path = applied.path_required || force_path;
        // `added` is in leaf order.
        let excluded = |l: LeafIndex| applied.added.binary_search(&l.0).is_ok();
        let path_room = match with_path {
            true => new.update_path_room(me, opts.leaf.as_ref(), &excluded).map_err(CommitError::InvalidPath)?,
            false => 0,
        };
        // The Commit's body (the proposal list, the path's presence byte and
        // the path) is laid out where the message carries it, so the path is
        // built in its place, not copied there (issue #14): the buffer needs
        // the message and what the path's sealing jobs take beyond it.
        let head = FramedContentHead {
            group_id: state.group_id.as_slice(),
            epoch: state.epoch,
            sender: Sender::Member(me.0),
            authenticated_data: opts.authenticated_data,
            content_type: ContentType::Commit,
        };
        let overflow = ProtectionError::BufferTooSmall { needed: usize::MAX };
        let body_room = list_len.checked_add(1).and_then(|n| n.checked_add(path_room)).ok_or(overflow)?;
        let body_at = match wire_format_policy {
            WireFormatPolicy::Public => public_message::body_start(&head)?,
            WireFormatPolicy::Private => private_message::body_start(suite, &head, body_room, opts.padding)?,
        };
        let path_at = body_at.checked_add(list_len).and_then(|n| n.checked_add(1)).ok_or(overflow)?;
        let path_end = body_at.checked_add(body_room).ok_or(overflow)?;
        if path_end > buf_len {
            return Err(ProtectionError::BufferTooSmall { needed: path_end }.into());
        }
        // The list moves down from the end of the buffer to the body's start
        // (its old place may then lie under the path), followed by the
        // presence byte of `optional<UpdatePath>`.
        if !crate::codec::move_within(message_buf, list_start..buf_len, body_at) {
            return Err(CodecError::InvalidValue.into());
        }
        *message_buf.get_mut(path_at - 1).ok_or(CodecError::Truncated)? = u8::from(with_path);
        let path_area = message_buf.get_mut(path_at..path_end).ok_or(CodecError::Truncated)?;
        let provisional = GroupContext {
            cipher_suite: suite,
            group_id: state.group_id.as_slice(),
            epoch: summary.new_epoch,
            tree_hash: &[],
            confirmed_transcript_hash: state.confirmed_transcript_hash.as_bytes(),
            extensions: extensions.body(),
        };
        // The provisional GroupContext while the path is created, then the new one.
        let mut gc_buf = [0u8; MAX_GROUP_CONTEXT_LEN];
        let mut path_secrets: PathSecrets = [const { None }; MAX_DEPTH];
        next.private.copy_from(&state.private);
        let (commit_secret, path_len) = if with_path {
            new.create_update_path_in_place(
                &mut next.private,
                opts.leaf.as_ref(),
                signer,
                &provisional,
                &mut gc_buf,
                &excluded,
                rng,
                executor,
                path_area,
                &mut path_secrets,
            )
            .map_err(CommitError::InvalidPath)?
        } else {
            (Secret::zero(suite.hash_len()).map_err(CommitError::Crypto)?, 0)
        };
        // Our new leaf fits the group as the receivers check it (§7.3):
        // a template's capabilities may not, nor its credential pass the
        // application's policy as our old leaf's successor (§5.3.1).
        if with_path {
            let (old, leaf) = (new.old().leaf_node(me), new.view().leaf_node(me));
            let (Some(old), Some(leaf)) = (old, leaf) else { return Err(CommitError::UnknownSender.into()) };
            if !super::process::leaf_fits_group(new.view(), &leaf, Some(&old), extensions)? {
                return Err(CommitError::UnsupportedCapabilities.into());
            }
            let usage = crate::identity::CredentialUse::CommitPath(me);
            super::process::check_identity(identity, state.group_id.as_slice(), usage, &leaf, Some(&old))?;
        }
        summary.has_path = with_path;
        next.private.prune(&new);
        let body_len = path_at.checked_add(path_len).and_then(|end| end.checked_sub(body_at)).ok_or(overflow)?;

        // Frame and sign with the old context, then the new epoch's key schedule.
        // The old context, signed over and (PublicMessage) kept until the
        // membership tag.
        let gc_old = state.encoded_context()?;
        let wire_format = match wire_format_policy {
            WireFormatPolicy::Public => WIRE_FORMAT_PUBLIC_MESSAGE,
            WireFormatPolicy::Private => WIRE_FORMAT_PRIVATE_MESSAGE,
        };
        // Lives on the stack for the duration of one call.
        #[allow(clippy::large_enum_variant)]
        enum Signed<'o, 'c> {
            Public(public_message::SignedPublicMessage<'o, 'c>),
            Private(private_message::SignedPrivateMessage<'o, 'c>),
        }
        let signed = match wire_format_policy {
            WireFormatPolicy::Public => {
                Signed::Public(public_message::sign_placed(&gc_old, signer, &head, body_len, message_buf)?)
            }
            WireFormatPolicy::Private => Signed::Private(private_message::sign_placed(
                &gc_old,
                signer,
                &head,
                body_len,
                opts.padding,
                body_at,
                message_buf,
            )?),
        };
        let (content_bytes, signature) = match &signed {
            Signed::Public(s) => (s.content_bytes(), *s.signature()),
            Signed::Private(s) => (s.content_bytes(), *s.signature()),
        };
        next.confirmed_transcript_hash =
            super::process::confirmed_hash(suite, &state.interim_transcript_hash, wire_format, content_bytes, &signature)?;
        next.tree_hash = new.root_tree_hash().map_err(CommitError::Tree)?;
        let new_gc = GroupContext {
            tree_hash: next.tree_hash.as_bytes(),
            confirmed_transcript_hash: next.confirmed_transcript_hash.as_bytes(),
            ..provisional
        };
        let new_gc_bytes = new_gc.encode_to(&mut gc_buf)?;
        let joiner = joiner_secret(suite, &state.secrets.init_secret, &commit_secret, new_gc_bytes).map_err(CommitError::Crypto)?;
        next.secrets = EpochSecrets::derive(suite, &joiner, &applied.psk_secret, new_gc_bytes).map_err(CommitError::Crypto)?;
        let confirmed = next.confirmed_transcript_hash.as_bytes();
        next.confirmation_tag = transcript::confirmation_tag(suite, &next.secrets.confirmation_key, confirmed);
        next.interim_transcript_hash =
            transcript::interim_transcript_hash(suite, confirmed, next.confirmation_tag.as_bytes()).map_err(CommitError::Crypto)?;
        let tag = next.confirmation_tag.as_bytes();

        // The Welcome (§12.4.3.1) for the members added, from the list in
        // the signed body (before a PrivateMessage encrypts it).
        let welcome = if applied.added.is_empty() {
            None
        } else {
            let body = match &signed {
                Signed::Public(s) => s.body(),
                Signed::Private(s) => s.body(),
            };
            let proposals_view: ListView<'_, ProposalOrRef<'_>> = ListView::from_body(Reader::new(body).read_opaque()?)?;
            let new_members = NewMembers {
                suite,
                me,
                proposals_view,
                proposals,
                added: &applied.added,
                path_secrets: &path_secrets,
                joiner: &joiner,
                psk_secret: &applied.psk_secret,
            };
            let group_info = GroupInfoParts { context: &new_gc, tag, signer, tree: &new };
            Some(create_welcome::<N, P>(&new_members, &group_info, ratchet_tree_in_welcome, rng, executor, group_info_buf, welcome_buf)?)
        };

        let message = match signed {
            Signed::Public(s) => s.finish(Some(tag), Some(&state.secrets.membership_key))?,
            Signed::Private(s) => {
                let mut keys = PrivateMessageKeys {
                    secret_tree: secret_trees.current_mut(),
                    sender_data_secret: &state.secrets.sender_data_secret,
                };
                s.finish(Some(tag), &mut keys, rng)?
            }
        };

        next.suite = suite;
        next.group_id.set(state.group_id.as_slice()).map_err(|_| CommitError::CapacityExceeded(Capacity::GroupIdLen))?;
        next.epoch = summary.new_epoch;
        staged_info.summary = summary;
        staged_info.external_removed = None;
        Ok(CommitOutput { commit: message, welcome, summary })
    }
}

/// What the Welcome says to the members a Commit adds (§12.4.3.1).
struct NewMembers<'a, 'p, const P: usize> {
    suite: crate::crypto::CipherSuite,
    me: LeafIndex,
    proposals_view: ListView<'p, ProposalOrRef<'p>>,
    proposals: &'a super::proposal_store::ProposalStore<P>,
    added: &'a [u32],
    path_secrets: &'a PathSecrets,
    joiner: &'a Secret,
    psk_secret: &'a Secret,
}

/// The new epoch's GroupInfo, before it is signed.
struct GroupInfoParts<'a, 't, Sig: Signer> {
    context: &'a GroupContext<'a>,
    tag: &'a [u8],
    signer: &'a Sig,
    tree: &'a TreeSlices<'t>,
}

/// Signs the GroupInfo into `gi_buf` and writes the Welcome into `out`. Its
/// own frame: the new members' list (70 bytes per leaf of capacity) is on
/// the stack only while a Welcome is made.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn create_welcome<'o, const N: usize, const P: usize>(
    m: &NewMembers<'_, '_, P>,
    gi: &GroupInfoParts<'_, '_, impl Signer>,
    ratchet_tree_in_welcome: bool,
    rng: &mut impl CryptoRng,
    executor: &impl Executor,
    gi_buf: &mut [u8],
    out: &'o mut [u8],
) -> Result<&'o [u8], CreateCommitError> {
    let suite = m.suite;
    let gi_len = {
        // GroupInfo extensions: the ratchet tree if asked for.
        let split = gi_buf.len() / 2;
        let (gi_out, ext_area) = gi_buf.split_at_mut(split);
        let ext_len = if ratchet_tree_in_welcome {
            let mut w = Writer::new(ext_area);
            w.write_u16(EXT_RATCHET_TREE)?;
            let mut tree_w = Writer::counter();
            gi.tree.export(&mut tree_w).map_err(CommitError::Tree)?;
            w.write_varint(tree_w.len())?;
            gi.tree.export(&mut w).map_err(CommitError::Tree)?;
            w.len()
        } else {
            0
        };
        let ext = Extensions::from_body(ext_area.get(..ext_len).ok_or(CodecError::Truncated)?)?;
        let tbs = GroupInfoTbs {
            group_context: WireGroupContext::from_group_context(gi.context)?,
            extensions: ext,
            confirmation_tag: gi.tag,
            signer: m.me.0,
        };
        GroupInfo::sign_into(suite, &tbs, gi.signer, gi_out)
            .map_err(|e| match e {
                // The GroupInfo is signed into the first half of the
                // buffer (the extensions use the second half).
                GroupInfoError::Codec(CodecError::BufferTooSmall { needed }) => {
                    GroupInfoError::Codec(CodecError::BufferTooSmall { needed: needed.saturating_mul(2) })
                }
                other => other,
            })
            .map_err(CreateCommitError::GroupInfo)?
            .len()
    };
    let group_info = gi_buf.get(..gi_len).ok_or(CodecError::Truncated)?;
    let welcome_secret = welcome_secret(suite, m.joiner, m.psk_secret).map_err(CommitError::Crypto)?;
    let mut psk_ids: heapless::Vec<PreSharedKeyId<'_>, { super::MAX_PSKS_PER_COMMIT }> = heapless::Vec::new();
    let mut members: heapless::Vec<NewMember<'_>, N> = heapless::Vec::new();
    let me_node = m.me.node().ok_or(CommitError::UnknownSender)?;
    let mut added_iter = m.added.iter();
    for por in m.proposals_view.iter() {
        let proposal = match por {
            ProposalOrRef::Proposal(p) => p,
            ProposalOrRef::Reference(r) => {
                let reference = HashValue::from_slice(r).map_err(|_| CommitError::UnknownProposalRef)?;
                let stored = m.proposals.get(&reference).ok_or(CommitError::UnknownProposalRef)?;
                Proposal::decode_exact(stored.proposal)?
            }
        };
        match proposal {
            Proposal::PreSharedKey(p) => {
                psk_ids.push(p.psk).map_err(|_| CommitError::CapacityExceeded(Capacity::PsksPerCommit))?;
            }
            Proposal::Add(a) => {
                // One leaf was added per Add: cannot fail.
                let leaf = added_iter.next().copied().ok_or(CommitError::CapacityExceeded(Capacity::Leaves))?;
                let lca = tree_math::common_ancestor(LeafIndex(leaf).node().ok_or(CommitError::UnknownSender)?, me_node);
                let path_secret = m.path_secrets.iter().flatten().find(|(n, _)| *n == lca).map(|(_, s)| s);
                let nm = NewMember::from_key_package(suite, &a.key_package, path_secret).map_err(CommitError::Crypto)?;
                members.push(nm).map_err(|_| CommitError::CapacityExceeded(Capacity::Leaves))?;
            }
            _ => {}
        }
    }
    let params = WelcomeParams { suite, joiner_secret: m.joiner, psks: &psk_ids, welcome_secret: &welcome_secret, group_info };
    Ok(params.create(&members, rng, executor, out)?)
}

/// Which of the first [`MAX_PENDING_REFS`] pending proposals carry valid
/// signatures ([`Group::pending_signatures`]; a bit per proposal).
#[derive(Clone, Copy, Default)]
struct PendingSignatures(u64);

// One bit per pending proposal a Commit may reference.
const _: () = assert!(MAX_PENDING_REFS <= 64);

impl PendingSignatures {
    /// Whether pending proposal `i` was checked and its signatures are valid.
    fn valid(self, i: usize) -> bool {
        u32::try_from(i).ok().and_then(|i| 1u64.checked_shl(i)).is_some_and(|bit| self.0 & bit != 0)
    }
}
