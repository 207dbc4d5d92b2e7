//! The application's identity policy (RFC 9420 §5.3.1).
//!
//! MLS authenticates members by their credentials, but only the application
//! knows which credentials it trusts and who may take over a leaf. The core
//! asks an [`IdentityProvider`] at every place a credential enters the group
//! or replaces another one:
//!
//! | where | asks |
//! |---|---|
//! | joining (every leaf of the tree, Welcome or external join) | [`IdentityProvider::validate`] |
//! | an Add proposal's KeyPackage | `validate` |
//! | an Update proposal's leaf (§12.1.2) | `validate`, then [`IdentityProvider::valid_successor`] of the leaf it replaces |
//! | the leaf of a member's UpdatePath (§12.4.2) | `validate`, then `valid_successor` of the committer's old leaf |
//! | the leaf of an external joiner's UpdatePath (§12.4.3.2) | `validate`; with a Remove in the Commit (a resync), [`IdentityProvider::valid_resync`] of the removed leaf |
//! | a new member's Add of itself (§12.1.8.2), pending when we commit | [`IdentityProvider::authorize_new_member_add`] (default: refused), then `validate` |
//! | every proposal: received, in a received Commit, or chosen for ours | [`IdentityProvider::authorize_proposal`] (default: accepted) |
//!
//! Without the successor check, anyone holding a GroupInfo with
//! `external_pub` could evict any member with an external Commit carrying a
//! Remove of that member (§12.4.3.2 requires the new leaf to meet the rules
//! of an Update of the removed one).
//!
//! A basic credential is "a bare assertion of an identity" (§5.3) that
//! anyone can copy: nothing in it binds the signature key, which is all a
//! leaf's signatures authenticate (§5.3.1). An Update or a committer's new
//! leaf comes in content signed with the member's current key, so a new
//! signature key there is the member's own choice; a resync's external
//! Commit is signed by its new leaf's key alone. So the default
//! [`IdentityProvider::valid_resync`] also requires the removed member's
//! signature key: were a fresh key accepted, an outsider copying a
//! member's credential could remove that member (§12.4.3.2: the new leaf
//! must present identifiers the application accepts for the removed
//! participant). Applications whose credentials bind a key to an identity
//! (X.509) may accept a new key there by implementing it.

use crate::credential::Credential;
use crate::messages::framing::Sender;
use crate::messages::proposal::Proposal;
use crate::tree_math::LeafIndex;

/// A member's identity as a leaf states it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberIdentity<'a> {
    /// The leaf's credential.
    pub credential: Credential<'a>,
    /// The leaf's signature public key.
    pub signature_key: &'a [u8],
}

/// Where a credential is being checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum CredentialUse {
    /// A leaf of a ratchet tree we join (from a Welcome or by external Commit).
    TreeMember(LeafIndex),
    /// The KeyPackage of an Add proposal.
    Add,
    /// The new leaf of an Update proposal from this leaf.
    Update(LeafIndex),
    /// The new leaf of the UpdatePath of a Commit by this member.
    CommitPath(LeafIndex),
    /// The leaf of an external joiner's UpdatePath.
    ExternalJoin,
}

/// The application's decisions on credentials (§5.3.1).
/// `Sync` because a group holds it as `&'static dyn IdentityProvider` and
/// firmware keeps its group in a `static`.
pub trait IdentityProvider: Sync {
    /// True if `member` may be a member of group `group_id`: its credential is
    /// one the application trusts for its signature key.
    fn validate(&self, group_id: &[u8], usage: CredentialUse, member: &MemberIdentity<'_>) -> bool;

    /// True if `successor` may replace `predecessor` in the same leaf (an
    /// Update, a committer's new leaf) or, for an external resync, take the
    /// removed member's place: both present identifiers the application
    /// considers the same participant (§5.3.1).
    fn valid_successor(&self, predecessor: &MemberIdentity<'_>, successor: &MemberIdentity<'_>) -> bool;

    /// True if `successor`, the leaf of an external Commit that removes
    /// `predecessor` (a resync, §12.4.3.2), may take that member's place.
    /// Such a Commit is authenticated by `successor`'s key alone, so the
    /// default asks [`Self::valid_successor`] and the predecessor's
    /// signature key (see the module documentation). A policy may accept a
    /// new key only if the credential shows that it is the removed
    /// member's (an X.509 certificate for that key and identity).
    fn valid_resync(&self, predecessor: &MemberIdentity<'_>, successor: &MemberIdentity<'_>) -> bool {
        self.valid_successor(predecessor, successor) && predecessor.signature_key == successor.signature_key
    }

    /// True if a Commit of ours may include the pending Add proposal that
    /// `joiner` sent of itself (sender `new_member_proposal`, §12.1.8.2) to
    /// group `group_id`. Such a proposal is signed by the joiner's own key
    /// and needs nothing of the group's but its ID and epoch, so anyone can
    /// send one; §12.1.8 leaves it to the members to check that it is
    /// authorized ("External proposals that are not authorized are
    /// considered invalid"). Asked only when a Commit of ours takes the
    /// proposals received this epoch
    /// ([`CommitOptions::include_pending`](crate::group::CommitOptions::include_pending));
    /// a received Commit that includes one was authorized by its committer.
    /// The default refuses: such a proposal stays out of our Commits, and
    /// the application that wants its sender in adds the KeyPackage by value.
    fn authorize_new_member_add(&self, group_id: &[u8], joiner: &MemberIdentity<'_>) -> bool {
        let _ = (group_id, joiner);
        false
    }

    /// True if the application lets `sender` make `proposal` in group
    /// `group_id`: RFC 9420 §12.2 has a Commit include the proposals "valid
    /// according to the rules for their proposal types and according to
    /// application policy", and a list with a proposal its sender has no
    /// application-level permission for is invalid. Asked for
    /// - a proposal received: refused, it is not kept
    ///   ([`CommitError::ProposalNotAuthorized`](crate::group::CommitError::ProposalNotAuthorized));
    /// - each proposal of a received Commit, with the committer as the
    ///   sender of those by value (`new_member_commit` for an external
    ///   Commit's): one refused refuses the Commit;
    /// - each proposal of our own Commit: a pending one refused stays out,
    ///   one given by value refuses the Commit before anything is staged.
    ///
    /// The rules of §12.1.8 on senders and types are checked before it. The
    /// default accepts every proposal. A group of one committer (a gateway)
    /// refuses here the proposals its other members may not make, e.g. a
    /// device's Remove of another device (see `delivery::Policy`).
    fn authorize_proposal(&self, group_id: &[u8], sender: Sender, proposal: &Proposal<'_>) -> bool {
        let _ = (group_id, sender, proposal);
        true
    }
}

/// The default policy: every credential is accepted, and a successor must
/// carry exactly its predecessor's credential (type and content; in an
/// Update or a committer's path the signature key may change, in a resync
/// it may not: [`IdentityProvider::valid_resync`]). Suits applications
/// that authenticate members by other means and use basic credentials;
/// X.509 users (whose certificates are renewed) implement
/// [`IdentityProvider`] themselves.
#[derive(Clone, Copy, Debug, Default)]
pub struct SameCredential;

impl IdentityProvider for SameCredential {
    fn validate(&self, _: &[u8], _: CredentialUse, _: &MemberIdentity<'_>) -> bool {
        true
    }

    fn valid_successor(&self, predecessor: &MemberIdentity<'_>, successor: &MemberIdentity<'_>) -> bool {
        predecessor.credential == successor.credential
    }
}

/// [`SameCredential`] as a `'static` reference, for
/// [`GroupConfig`](crate::group::GroupConfig).
pub static SAME_CREDENTIAL: SameCredential = SameCredential;
