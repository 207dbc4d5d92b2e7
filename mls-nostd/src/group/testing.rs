//! Entry points for this workspace's own tests (feature `test-utils`).
//!
//! They hand the group layer content that no signature or membership tag
//! vouches for, or show secrets and the tree's raw storage: exactly what the
//! public API must not allow (issue #13). No application may enable the
//! feature; the tests use it to reach the group layer's own checks behind
//! the framing layer, and to look at what the store and zeroization did.

use super::{EpochState, Group, StagedCommitSummary};
use crate::crypto::signer::Signer;
use crate::crypto::HashValue;
use crate::group::CommitError;
use crate::messages::authenticated_content::AuthenticatedContent;
use crate::psk::PskStore;
use crate::ratchet_tree::tree::TreeSlices;

impl<const N: usize, const ARENA: usize, const K: usize, const P: usize, Sig: Signer, const E: usize> Group<N, ARENA, K, P, Sig, E> {
    /// [`Group::process_message_in_memory`]'s Commit step on content that was not
    /// verified.
    #[doc(hidden)]
    pub fn stage_commit_for_testing(
        &mut self,
        v: &AuthenticatedContent<'_>,
        psks: &dyn PskStore,
        now: u64,
    ) -> Result<StagedCommitSummary, CommitError> {
        self.stage_commit(v, psks, now)
    }

    /// [`Group::process_message_in_memory`]'s Proposal step on content that was not
    /// verified.
    #[doc(hidden)]
    pub fn store_proposal_for_testing(&mut self, v: &AuthenticatedContent<'_>) -> Result<HashValue, CommitError> {
        self.store_proposal(v)
    }

    /// This epoch's state, secrets and private keys included.
    #[doc(hidden)]
    pub fn state_for_testing(&self) -> &EpochState {
        &self.state
    }

    /// This epoch's `encryption_secret`, read from the root of its secret
    /// tree (the state deletes its own copy once the tree is rooted, §9.2):
    /// none once a message of the epoch has consumed the root.
    #[doc(hidden)]
    pub fn encryption_secret_for_testing(&self) -> Option<&crate::crypto::Secret> {
        self.secret_trees.current().root_secret_for_testing()
    }

    /// The ratchet tree's storage, staged changes included, mutators and all.
    #[doc(hidden)]
    pub fn tree_slices_for_testing(&mut self) -> TreeSlices<'_> {
        self.tree_slices()
    }
}
