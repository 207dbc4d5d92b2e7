//! Buffer sizes for the messages a group of a given capacity writes, as
//! `const` values (issue #13): a firmware sizes its static buffers from
//! them, and `StoredGroup`'s one-buffer commit operations split theirs by
//! them.
//!
//! Each is an upper bound over the cipher suites built in (the crypto
//! `MAX_*` constants follow the features) and over every tree the capacity
//! allows; the tests check real messages of full groups against them.

use super::commit::{CommitBuffers, MAX_PENDING_REFS};
use super::{Group, MAX_GROUP_CONTEXT_LEN, MAX_GROUP_ID_LEN, MAX_PSKS_PER_COMMIT};
use crate::crypto::signer::Signer;
use crate::crypto::hpke::KEM_PUBLIC_LEN;
use crate::crypto::signature::SIGNATURE_LEN;
use crate::crypto::{AEAD_TAG_LEN, MAX_HASH_LEN};
use crate::messages::private_message::ENCRYPTED_SENDER_DATA_LEN;

/// Longest variable-length prefix of a vector (§2.1.2).
const V: usize = 4;
/// Longest `PreSharedKeyID` (§8.4): a resumption PSK of the longest group
/// ID, or an external one, with its nonce.
const PSK_ID: usize = 1 + 1 + V + MAX_GROUP_ID_LEN + 8 + V + MAX_HASH_LEN;
/// What framing adds around a Commit's content, PublicMessage or
/// PrivateMessage (§6), without authenticated data or padding: the
/// `MLSMessage` header, group ID, epoch, sender, content type, signature,
/// confirmation and membership tags, encrypted sender data and the AEAD tag.
const FRAMING: usize = 2
    + 2
    + (V + MAX_GROUP_ID_LEN)
    + 8
    + 5
    + V
    + 1
    + (V + SIGNATURE_LEN)
    + 2 * (V + MAX_HASH_LEN)
    + (V + ENCRYPTED_SENDER_DATA_LEN)
    + V
    + AEAD_TAG_LEN;

/// Bytes one HPKE seal of a path secret takes in the UpdatePath's work
/// area, over the suites built in: its job (the recipient's key, the
/// ephemeral key's IKM and the secret), over which its `HPKECiphertext` is
/// then written (the KEM output and the sealed secret with their prefixes:
/// shorter than the job in every suite).
const SEAL_ROOM: usize = KEM_PUBLIC_LEN + 2 * MAX_HASH_LEN;
const _: () = assert!(SEAL_ROOM >= 2 + KEM_PUBLIC_LEN + 2 + MAX_HASH_LEN + AEAD_TAG_LEN);

/// An upper bound of the room [`Group::commit_in_memory`] takes for the
/// UpdatePath in the middle of `CommitBuffers::message` in any tree of
/// `leaves` leaves (it takes what the path needs: see
/// `TreeSlices::update_path_room`): 8 KiB for our leaf and the path
/// nodes' keys, and a seal for every other leaf.
pub(crate) const fn path_room(leaves: usize) -> usize {
    8192usize.saturating_add(leaves.saturating_mul(SEAL_ROOM))
}

impl<const N: usize, const ARENA: usize, const K: usize, const P: usize, Sig: Signer, const E: usize> Group<N, ARENA, K, P, Sig, E> {
    /// Parent nodes on a direct path of a tree of `N` leaves (§4.1), plus one.
    const PATH_NODES: usize = crate::tree_math::log2(if N > u32::MAX as usize { u32::MAX } else { N as u32 }) as usize + 2;

    /// [`path_room`] of a full tree.
    const PATH_ROOM: usize = path_room(N);

    /// The encoded ratchet tree (§12.4.3.3): every leaf encoding (together
    /// at most `ARENA` bytes), every parent's key, parent hash and unmerged
    /// leaves (at most `N` per parent level), and a presence byte per node.
    const TREE_LEN: usize = V + 2 * (2 * N) + ARENA + N * (V + KEM_PUBLIC_LEN + V + MAX_HASH_LEN + V) + 4 * N * Self::PATH_NODES;

    /// Largest signed `GroupInfo` (§12.4.3) this group writes: its
    /// GroupContext, the ratchet tree and `external_pub` extensions, the
    /// confirmation tag, the signer and the signature.
    pub const GROUP_INFO_LEN: usize = MAX_GROUP_CONTEXT_LEN
        + V
        + (2 + V + Self::TREE_LEN)
        + (2 + V + V + KEM_PUBLIC_LEN)
        + (V + MAX_HASH_LEN)
        + 4
        + (V + SIGNATURE_LEN);

    /// Largest `MLSMessage(Welcome)` (§12.4.3) for up to `N` new members:
    /// per member its KeyPackage reference and sealed `GroupSecrets` (joiner
    /// secret, path secret, PSK IDs), then the encrypted GroupInfo.
    pub const WELCOME_LEN: usize = 2
        + 2
        + 2
        + V
        + N * ((V + MAX_HASH_LEN)
            + (V + KEM_PUBLIC_LEN)
            + V
            + (2 * (V + MAX_HASH_LEN) + 1 + V + MAX_PSKS_PER_COMMIT * PSK_ID)
            + AEAD_TAG_LEN)
        + V
        + Self::GROUP_INFO_LEN
        + AEAD_TAG_LEN;

    /// Largest `MLSMessage` holding a Commit (§12.4) whose own proposals,
    /// committed by value, encode to `by_value` bytes (each `ProposalOrRef`:
    /// a type byte, the proposal type and its body), with every pending
    /// proposal by reference, an UpdatePath, and no authenticated data or
    /// padding (add those lengths when used).
    pub const fn commit_len(by_value: usize) -> usize {
        FRAMING + Self::proposal_list_len(by_value) + 1 + Self::PATH_ROOM
    }

    /// The encoded proposal list of such a Commit.
    const fn proposal_list_len(by_value: usize) -> usize {
        V + MAX_PENDING_REFS * (1 + V + MAX_HASH_LEN) + by_value
    }

    /// What `CommitBuffers::message` needs for such a Commit: the message,
    /// and the proposal list and the path area it is built from.
    pub const fn commit_message_buffer_len(by_value: usize) -> usize {
        Self::commit_len(by_value) + Self::proposal_list_len(by_value) + Self::PATH_ROOM
    }

    /// All three [`CommitBuffers`] of such a Commit in one buffer, as the
    /// one-buffer operations of [`StoredGroup`](crate::store::durable::StoredGroup)
    /// take it: the message, the Welcome and the GroupInfo (which needs
    /// twice its size as work space).
    pub const fn commit_buffers_len(by_value: usize) -> usize {
        Self::commit_message_buffer_len(by_value) + Self::WELCOME_LEN + 2 * Self::GROUP_INFO_LEN
    }

    /// Splits `buf` into the three buffers of a Commit with `by_value`
    /// bytes of proposals; `None` if it is shorter than
    /// [`Self::commit_buffers_len`].
    pub(crate) fn split_commit_buffers(buf: &mut [u8], by_value: usize) -> Option<CommitBuffers<'_>> {
        if buf.len() < Self::commit_buffers_len(by_value) {
            return None;
        }
        let (group_info, rest) = buf.split_at_mut(2 * Self::GROUP_INFO_LEN);
        let (welcome, message) = rest.split_at_mut(Self::WELCOME_LEN);
        Some(CommitBuffers { message, welcome, group_info })
    }
}
