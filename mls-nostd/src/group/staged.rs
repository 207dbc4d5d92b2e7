//! Inspecting a staged Commit before merging it (RFC 9420 §12.4.2; docs/architecture.md,
//! decision 6): who is added, removed and updated, with their credentials,
//! which PSKs are injected and how the GroupContext extensions change, so
//! the application can accept ([`Group::merge_staged_commit_in_memory`]) or reject
//! ([`Group::discard_staged_commit`]) it. Nothing here allocates: members
//! are read from the current and the staged tree.

use super::{Group, Staged, StagedCommitSummary, StagedInfo};
use crate::crypto::signer::Signer;
use crate::codec::{Decode, Reader};
use crate::credential::Credential;
use crate::extensions::Extensions;
use crate::psk::PreSharedKeyId;
use crate::ratchet_tree::tree::TreeView;
use crate::tree_math::LeafIndex;

/// A member as its leaf shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberInfo<'a> {
    /// Its leaf.
    pub leaf: LeafIndex,
    /// Its credential.
    pub credential: Credential<'a>,
    /// Its signature public key.
    pub signature_key: &'a [u8],
}

fn member<'a>(tree: &TreeView<'a>, leaf: LeafIndex) -> Option<MemberInfo<'a>> {
    let node = tree.leaf_node(leaf)?;
    Some(MemberInfo { leaf, credential: node.fields.credential, signature_key: node.fields.signature_key })
}

/// What a Commit does to one leaf.
enum Change<'a> {
    Same,
    Added(MemberInfo<'a>),
    Removed(MemberInfo<'a>),
    /// A member removed and another in its leaf.
    Replaced(MemberInfo<'a>, MemberInfo<'a>),
    Updated(MemberInfo<'a>, MemberInfo<'a>),
}

/// A staged Commit (ours or received), read-only.
#[derive(Clone, Copy, Debug)]
pub struct StagedCommit<'g> {
    info: &'g StagedInfo,
    old: TreeView<'g>,
    new: Option<TreeView<'g>>,
    old_extensions: &'g [u8],
    new_extensions: Option<&'g [u8]>,
}

impl<'g> StagedCommit<'g> {
    /// The counts and flags.
    pub fn summary(&self) -> &'g StagedCommitSummary {
        &self.info.summary
    }

    /// How leaf `i` changes.
    fn change(&self, i: u32) -> Change<'g> {
        let l = LeafIndex(i);
        let old_bytes = self.old.leaf_bytes(l);
        let new_bytes = self.new.as_ref().and_then(|t| t.leaf_bytes(l));
        if old_bytes == new_bytes {
            return Change::Same;
        }
        let before = member(&self.old, l);
        let after = self.new.as_ref().and_then(|t| t.leaf_node(l));
        let after_member = after.as_ref().map(|n| MemberInfo {
            leaf: l,
            credential: n.fields.credential,
            signature_key: n.fields.signature_key,
        });
        match (before, after_member) {
            (Some(old), None) => Change::Removed(old),
            (None, Some(new)) => Change::Added(new),
            (Some(old), Some(new)) => {
                // A leaf from a KeyPackage is a new member in a blanked leaf
                // (§12.1.1, §7.7); an external joiner taking over a removed
                // member's leaf is a resync (§12.4.3.2); any other new leaf
                // (source update or commit, §7.3) is the same member's.
                let from_key_package =
                    after.is_some_and(|n| matches!(n.fields.source, crate::leaf_node::LeafNodeSource::KeyPackage(_)));
                if from_key_package || self.info.external_removed == Some(l) {
                    Change::Replaced(old, new)
                } else {
                    Change::Updated(old, new)
                }
            }
            (None, None) => Change::Same,
        }
    }

    fn width(&self) -> u32 {
        self.old.n_leaves().max(self.new.as_ref().map_or(0, |t| t.n_leaves()))
    }

    /// Members the Commit adds (Add proposals, and an external joiner), as
    /// they will be in the new epoch.
    pub fn added(&self) -> impl Iterator<Item = MemberInfo<'g>> + '_ {
        (0..self.width()).filter_map(move |i| match self.change(i) {
            Change::Added(new) | Change::Replaced(_, new) => Some(new),
            _ => None,
        })
    }

    /// Members the Commit removes, as they were.
    pub fn removed(&self) -> impl Iterator<Item = MemberInfo<'g>> + '_ {
        (0..self.width()).filter_map(move |i| match self.change(i) {
            Change::Removed(old) | Change::Replaced(old, _) => Some(old),
            _ => None,
        })
    }

    /// Members whose leaf changes (Update proposals, the committer's path):
    /// `(before, after)`. For a Commit that removes us, without the
    /// committer's path leaf (we cannot process its path).
    pub fn updated(&self) -> impl Iterator<Item = (MemberInfo<'g>, MemberInfo<'g>)> + '_ {
        (0..self.width()).filter_map(move |i| match self.change(i) {
            Change::Updated(old, new) => Some((old, new)),
            _ => None,
        })
    }

    /// The PreSharedKeyIDs the Commit injects, in order.
    pub fn psks(&self) -> impl Iterator<Item = PreSharedKeyId<'g>> + 'g {
        let mut r = Reader::new(self.info.psk_ids.as_slice());
        core::iter::from_fn(move || if r.is_empty() { None } else { PreSharedKeyId::decode(&mut r).ok() })
    }

    /// The GroupContext extensions of the new epoch, if the Commit changes
    /// them (a GroupContextExtensions proposal; not shown to a member the
    /// Commit removes).
    pub fn new_extensions(&self) -> Option<Extensions<'g>> {
        let new = self.new_extensions?;
        if !self.info.summary.extensions_changed && new == self.old_extensions {
            return None;
        }
        Extensions::from_body(new).ok()
    }
}

impl<const N: usize, const ARENA: usize, const K: usize, const P: usize, Sig: Signer, const E: usize> Group<N, ARENA, K, P, Sig, E> {
    /// The staged Commit, if one waits for merge or discard.
    pub fn staged_commit(&self) -> Option<StagedCommit<'_>> {
        let staged = self.staged.as_ref()?;
        // A Commit that removes us still has its proposals applied to the
        // tree (not its path, which we cannot decrypt).
        let new_extensions = match staged {
            Staged::Epoch(state) => Some(state.extensions.as_slice()),
            Staged::Removed => None,
        };
        let new = Some(self.tree.view());
        Some(StagedCommit {
            info: &self.staged_info,
            old: self.tree.old(),
            new,
            old_extensions: self.state.extensions.as_slice(),
            new_extensions,
        })
    }
}
