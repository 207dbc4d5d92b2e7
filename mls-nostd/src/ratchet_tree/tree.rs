//! Ratchet tree storage and its structural operations (RFC 9420 §4, §7.7):
//! add (leftmost blank leaf or extend), update, remove (blank the direct path,
//! truncate), unmerged leaves, resolution, filtered direct path, import from
//! and export to the `ratchet_tree` encoding.
//!
//! The storage is caller-owned slices ([`TreeSlices`]), so one copy of this
//! code serves every capacity; [`RatchetTree`] is the const-generic container.
//!
//! * Leaves keep their whole encoded LeafNode in a byte arena (a group pays
//!   for the credentials it has, not for the largest one allowed) and, in a
//!   20-byte slot, its place in the arena, its unmerged bits and the first
//!   bytes of its two keys (so that the uniqueness checks of §7.3 scan slots,
//!   not encodings).
//! * Unmerged leaves are a bit mask per leaf (bit `k - 1` set: unmerged at
//!   its ancestor of level `k`), so every parent's sorted list (§7.1) is
//!   implied by the leaves under it, with no per-parent capacity.
//! * Parents of level [`HASH_CACHE_LEVEL`] and above cache their tree hash
//!   (§7.8) in a table of their own; a change invalidates the node and its
//!   ancestors only. Lower parents and leaves are hashed again when needed.
//! * **One tree, staged in place.** A Commit is applied to the tree itself
//!   between [`TreeSlices::begin_stage`] and [`TreeSlices::merge_stage`] or
//!   [`TreeSlices::discard_stage`]: before a slot changes for the first time,
//!   its old value goes to an undo log kept at the top of the arena (growing
//!   down, towards the leaf encodings). Replaced encodings stay in the arena
//!   until the merge, so the undo log only points at them, and
//!   [`TreeSlices::old`] still reads every leaf of the tree before the
//!   Commit. A staged Commit therefore costs the slots and encodings it
//!   changes, not a second tree.
//! * **Keys indexed.** A hash table of the nodes' keys
//!   ([`super::key_index`]), kept in step with every slot write, answers the
//!   uniqueness checks of §7.3 and §12.4.2 without a pass over the tree.

use core::ops::ControlFlow;
use super::key_index::{self, KeyRef, PREFIX};
use super::node::{Node, ParentNode, ParentRecord, RatchetTreeView};
use crate::capacity::Capacity;
use crate::codec::{CodecError, Decode, Reader, Writer};
use crate::crypto::hpke::{HpkePublicKey, KEM_PUBLIC_LEN};
use crate::crypto::signature::SignaturePublicKey;
use crate::crypto::{CipherSuite, CryptoError, MAX_HASH_LEN};
use crate::leaf_node::{LeafNode, LeafNodeError};
use crate::tree_math::{self, LeafIndex, NodeIndex};

/// Bytes of arena bookkeeping per stored leaf (leaf index and length).
pub const LEAF_RECORD_HEADER: usize = 8;
/// Longest direct path of a tree this build handles: trees of up to
/// `2^MAX_DEPTH` leaves. It sizes a member's private path keys (held twice
/// by a group: this epoch's and a staged one's), the path secrets of a
/// Commit and the path buffers, 100-150 bytes a level. Set at build time by
/// `MLS_NOSTD_MAX_TREE_DEPTH` (a decimal number, 1 to 32; the default, 32,
/// takes every tree): a firmware whose groups hold at most 1,024 leaves
/// sets 10 and saves about 3 KiB of RAM and 1 KiB of stack. A
/// [`Group`](crate::group::Group) whose capacity needs more levels does not
/// compile.
pub const MAX_DEPTH: usize = {
    let depth = crate::capacity::from_build_env(option_env!("MLS_NOSTD_MAX_TREE_DEPTH"), 32);
    assert!(depth >= 1 && depth <= 32, "MLS_NOSTD_MAX_TREE_DEPTH must be 1 to 32");
    depth
};
/// Parents of this level and above cache their tree hash (§7.8), so a
/// change costs O(log N) hashes. Set at build time by
/// `MLS_NOSTD_HASH_CACHE_LEVEL` (1 to 4; default 1, every parent): the
/// cache takes `MAX_HASH_LEN >> (level - 1)` bytes a leaf of capacity (32,
/// 16, 8 or 4 with SHA-256), and a parent below the level is hashed again
/// from its subtree when its hash is needed (level 3: at most 4 leaves and
/// 3 parents, for the copath nodes of a Commit's path; the boards set 3,
/// 24 bytes a leaf less for about 3% more instructions per Commit, issue
/// #14).
pub const HASH_CACHE_LEVEL: u32 = {
    let level = crate::capacity::from_build_env(option_env!("MLS_NOSTD_HASH_CACHE_LEVEL"), 1);
    assert!(level >= 1 && level <= 4, "MLS_NOSTD_HASH_CACHE_LEVEL must be 1 to 4");
    level as u32
};
/// Bytes of tree-hash cache per leaf of capacity: parents of level
/// `L` = [`HASH_CACHE_LEVEL`] and above number fewer than `N >> (L - 1)`,
/// and node `x` of them has entry `x >> L` (the low `L` bits of such a
/// node's index are all ones, so the shift keeps them apart).
pub const HASH_CACHE_PER_LEAF: usize = MAX_HASH_LEN >> (HASH_CACHE_LEVEL - 1);
const _: () = assert!(HASH_CACHE_PER_LEAF << (HASH_CACHE_LEVEL - 1) == MAX_HASH_LEN, "the hash cache's entries must fill whole bytes");

/// Where node `x`'s cached tree hash is in a cache of [`HASH_CACHE_PER_LEAF`]
/// bytes per leaf: `None` for a node below [`HASH_CACHE_LEVEL`].
fn hash_cache_range(x: NodeIndex) -> Option<core::ops::Range<usize>> {
    if tree_math::level(x) < HASH_CACHE_LEVEL {
        return None;
    }
    let start = usize::try_from(x.0 >> HASH_CACHE_LEVEL).ok()?.checked_mul(MAX_HASH_LEN)?;
    Some(start..start.checked_add(MAX_HASH_LEN)?)
}

/// Zeros that pad a parent's key to [`KEM_PUBLIC_LEN`] in the undo log.
const PADDING: [u8; KEM_PUBLIC_LEN] = [0; KEM_PUBLIC_LEN];

/// Why a tree operation failed. The tree is unchanged when one is returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum TreeError {
    /// More leaves than the capacity ([`Capacity::Leaves`]), or leaf
    /// encodings (and, while a Commit is staged, its undo log) larger than
    /// the arena ([`Capacity::TreeArena`]).
    CapacityExceeded(Capacity),
    /// A node's encoding is malformed.
    Codec(CodecError),
    /// A leaf position holds a parent node or the reverse.
    WrongNodeType,
    /// A public key has the wrong length for the suite, or an encryption
    /// key is not one a DH can use (a point of small order, or not on the
    /// curve: RFC 9180 §7.1.4).
    InvalidKey,
    /// The encoded tree is empty, ends in a blank node, or is too long.
    InvalidTreeSize,
    /// A leaf index outside the tree, or a blank leaf where one is required.
    InvalidLeaf,
    /// A parent's `unmerged_leaves` is not strictly increasing (§7.1).
    UnmergedNotSorted,
    /// An unmerged leaf is blank or not under its parent (§12.4.3.1).
    UnmergedNotDescendant,
    /// An unmerged leaf is missing from a non-blank node between it and the
    /// parent that lists it (§12.4.3.1).
    UnmergedInconsistent,
    /// A parent hash longer than the hash function's output.
    InvalidParentHash,
    /// A stage was begun, merged or discarded out of turn.
    Staging,
    /// A cryptographic operation failed.
    Crypto(CryptoError),
}

impl core::fmt::Display for TreeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::CapacityExceeded(c) => write!(f, "ratchet tree capacity exceeded: {c}"),
            Self::Codec(e) => write!(f, "malformed node: {e}"),
            Self::WrongNodeType => f.write_str("a leaf position holds a parent node or the reverse"),
            Self::InvalidKey => f.write_str("public key of the wrong length for the cipher suite, or not a usable point"),
            Self::InvalidTreeSize => f.write_str("tree is empty, ends in a blank node, or is too long"),
            Self::InvalidLeaf => f.write_str("leaf outside the tree, or blank where a member is required"),
            Self::UnmergedNotSorted => f.write_str("unmerged_leaves not strictly increasing"),
            Self::UnmergedNotDescendant => f.write_str("unmerged leaf blank or not under its parent"),
            Self::UnmergedInconsistent => f.write_str("unmerged leaf missing from a node between it and its parent"),
            Self::InvalidParentHash => f.write_str("parent hash longer than the hash output"),
            Self::Staging => f.write_str("a stage was begun, merged or discarded out of turn"),
            Self::Crypto(e) => write!(f, "crypto: {e}"),
        }
    }
}

impl core::error::Error for TreeError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Codec(e) => Some(e),
            Self::Crypto(e) => Some(e),
            _ => None,
        }
    }
}

impl From<CryptoError> for TreeError {
    fn from(e: CryptoError) -> Self {
        Self::Crypto(e)
    }
}

impl From<CodecError> for TreeError {
    fn from(e: CodecError) -> Self {
        Self::Codec(e)
    }
}

impl From<LeafNodeError> for TreeError {
    fn from(e: LeafNodeError) -> Self {
        match e {
            LeafNodeError::Codec(c) => Self::Codec(c),
            _ => Self::InvalidKey,
        }
    }
}

/// A leaf's slot: where its encoding is, its unmerged bits, key prefixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeafSlot {
    /// Arena offset of the record holding the encoded LeafNode.
    pub(crate) offset: u32,
    /// Length of the encoding; 0 for a blank leaf.
    pub(crate) len: u32,
    /// Bit `k - 1` set: unmerged at the ancestor of level `k`.
    pub(crate) unmerged: u32,
    /// The first bytes of the encryption key.
    pub(crate) encryption_prefix: [u8; PREFIX],
    /// The first bytes of the signature key.
    pub(crate) signature_prefix: [u8; PREFIX],
}

impl LeafSlot {
    /// A blank leaf.
    pub const BLANK: Self =
        Self { offset: 0, len: 0, unmerged: 0, encryption_prefix: [0; PREFIX], signature_prefix: [0; PREFIX] };

    pub(crate) const fn present(&self) -> bool {
        self.len != 0
    }

    const BYTES: usize = 12 + 2 * PREFIX;

    fn write(&self, out: &mut [u8]) {
        let mut w = Writer::new(out);
        // The buffer is sized by BYTES: the writes cannot fail.
        let _ = w.write_u32(self.offset);
        let _ = w.write_u32(self.len);
        let _ = w.write_u32(self.unmerged);
        let _ = w.write_bytes(&self.encryption_prefix);
        let _ = w.write_bytes(&self.signature_prefix);
    }

    fn read(r: &mut Reader<'_>) -> Option<Self> {
        Some(Self {
            offset: r.read_u32().ok()?,
            len: r.read_u32().ok()?,
            unmerged: r.read_u32().ok()?,
            encryption_prefix: r.read_bytes(PREFIX).ok()?.try_into().ok()?,
            signature_prefix: r.read_bytes(PREFIX).ok()?.try_into().ok()?,
        })
    }
}

/// A parent node's slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParentSlot {
    pub(crate) encryption_key: HpkePublicKey,
    pub(crate) parent_hash: [u8; MAX_HASH_LEN],
    /// How many leaves below are unmerged here ([`Self::unmerged_count`]),
    /// as little-endian bytes: a `u32` aligned the slot to 4 bytes and
    /// padded it (3 bytes a leaf of capacity, issue #14).
    unmerged: [u8; 4],
    pub(crate) parent_hash_len: u8,
    pub(crate) present: bool,
    /// The tree's hash cache holds this node's tree hash (§7.8); only set
    /// at [`HASH_CACHE_LEVEL`] and above.
    pub(crate) hash_valid: bool,
    /// Its value before the stage is in the undo log.
    pub(crate) logged: bool,
}

impl ParentSlot {
    /// A blank parent.
    pub const BLANK: Self = Self {
        encryption_key: HpkePublicKey::EMPTY,
        parent_hash: [0; MAX_HASH_LEN],
        unmerged: [0; 4],
        parent_hash_len: 0,
        present: false,
        hash_valid: false,
        logged: false,
    };

    pub(crate) fn parent_hash(&self) -> &[u8] {
        self.parent_hash.get(..usize::from(self.parent_hash_len)).unwrap_or(&[])
    }

    /// How many leaves below are unmerged here.
    pub(crate) fn unmerged_count(&self) -> u32 {
        u32::from_le_bytes(self.unmerged)
    }

    /// This slot with `count` unmerged leaves.
    pub(crate) fn with_unmerged_count(self, count: u32) -> Self {
        Self { unmerged: count.to_le_bytes(), ..self }
    }

    /// Its undo log entry's length: the slot and its cached hash.
    const BYTES: usize = 1 + KEM_PUBLIC_LEN + 2 * MAX_HASH_LEN + 4 + 3;

    /// Writes the slot and `hash`, its cached tree hash (zeros if none).
    fn write(&self, hash: &[u8; MAX_HASH_LEN], out: &mut [u8]) {
        let mut w = Writer::new(out);
        // The buffer is sized by BYTES: the writes cannot fail.
        // The key's length, then its bytes padded to the longest key.
        let key = self.encryption_key.as_bytes();
        let _ = w.write_u8(u8::try_from(key.len()).unwrap_or(0));
        let _ = w.write_bytes(key);
        let _ = w.write_bytes(KEM_PUBLIC_LEN.checked_sub(key.len()).and_then(|n| PADDING.get(..n)).unwrap_or(&[]));
        let _ = w.write_bytes(&self.parent_hash);
        let _ = w.write_bytes(hash);
        let _ = w.write_u32(self.unmerged_count());
        let _ = w.write_u8(self.parent_hash_len);
        let _ = w.write_u8(u8::from(self.present));
        let _ = w.write_u8(u8::from(self.hash_valid));
    }

    /// Reads a slot and its cached hash as [`Self::write`] wrote them.
    fn read(r: &mut Reader<'_>) -> Option<(Self, [u8; MAX_HASH_LEN])> {
        let mut hash = [0; MAX_HASH_LEN];
        let slot = Self {
            encryption_key: {
                let len = usize::from(r.read_u8().ok()?);
                let padded = r.read_bytes(KEM_PUBLIC_LEN).ok()?;
                match padded.get(..len)? {
                    [] => HpkePublicKey::EMPTY,
                    key => HpkePublicKey::from_slice(key).ok()?,
                }
            },
            parent_hash: r.read_bytes(MAX_HASH_LEN).ok()?.try_into().ok()?,
            unmerged: {
                hash.copy_from_slice(r.read_bytes(MAX_HASH_LEN).ok()?);
                r.read_u32().ok()?.to_le_bytes()
            },
            parent_hash_len: r.read_u8().ok()?,
            present: r.read_u8().ok()? != 0,
            hash_valid: r.read_u8().ok()? != 0,
            logged: false,
        };
        Some((slot, hash))
    }
}

/// The tree's state besides its storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TreeMeta {
    pub(crate) suite: CipherSuite,
    pub(crate) n_leaves: u32,
    /// Arena bytes in use from the bottom (leaf records, live or dead).
    pub(crate) arena_used: u32,
    /// Bytes of live records in the arena (headers included).
    pub(crate) arena_live: u32,
    /// Bytes of undo log at the top of the arena.
    pub(crate) undo_len: u32,
    /// `arena_live` when the stage began (restored when it is discarded).
    pub(crate) stage_arena_live: u32,
    /// `arena_used` when the stage began (records above it are the stage's).
    pub(crate) stage_arena_used: u32,
    /// A Commit is staged in the tree.
    pub(crate) staging: bool,
    /// Every leaf at this index or above is blank: a bound, raised when a
    /// leaf is set and never lowered but by `clear`. The resolution walk
    /// skips a blank parent's subtree past it (a group of 10,000 in 16,384
    /// leaves: 6,384 blank leaves and their parents per walk of the right
    /// edge, 11% of creating and 7% of processing a Commit in a full tree).
    pub(crate) leaves_below: u32,
    /// The length of the key index whose entries match the slots (0: none
    /// does, e.g. after the tree changed through slices without an index;
    /// the next [`RatchetTree::slices`] rebuilds it).
    pub(crate) key_index: u32,
}

impl TreeMeta {
    /// The state of an empty tree of `suite`.
    pub const fn new(suite: CipherSuite) -> Self {
        Self {
            suite,
            n_leaves: 0,
            arena_used: 0,
            arena_live: 0,
            undo_len: 0,
            stage_arena_live: 0,
            stage_arena_used: 0,
            staging: false,
            leaves_below: 0,
            key_index: 0,
        }
    }
}

/// Caller-owned storage of a ratchet tree.
#[derive(Debug)]
pub struct TreeSlices<'s> {
    pub(crate) meta: &'s mut TreeMeta,
    /// One slot per leaf (the capacity in leaves).
    pub(crate) leaves: &'s mut [LeafSlot],
    /// One slot per parent node, indexed by `node / 2` (capacity - 1 used).
    pub(crate) parents: &'s mut [ParentSlot],
    /// Encoded leaf nodes from the bottom, the undo log from the top.
    pub(crate) arena: &'s mut [u8],
    /// The key index's table (empty: no index, checks pass over the tree).
    pub(crate) index: &'s mut [u32],
    /// The tree hashes of parents of [`HASH_CACHE_LEVEL`] and above (empty:
    /// none cached, every tree hash computed from the leaves).
    pub(crate) hashes: &'s mut [u8],
}

pub(crate) use tree_math::leaf_span;

fn read_u32_le(bytes: &[u8], at: usize) -> Option<u32> {
    let b: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(b))
}

/// A 2,048-bit filter on keys' first two bytes: one test passes a node
/// whose key is none of `keys` with probability about `keys / 2048`.
struct KeyFilter([u64; 32]);

impl KeyFilter {
    fn bit(key: &[u8]) -> usize {
        let byte = |i| usize::from(key.get(i).copied().unwrap_or(0));
        (byte(0) << 8 | byte(1)) & 2047
    }

    fn new<'k>(keys: impl Iterator<Item = &'k [u8]>) -> Self {
        let mut words = [0u64; 32];
        for i in keys.map(Self::bit) {
            if let Some(w) = words.get_mut(i >> 6) {
                *w |= 1 << (i & 63);
            }
        }
        Self(words)
    }

    fn may_hold(&self, key: &[u8]) -> bool {
        let i = Self::bit(key);
        self.0.get(i >> 6).is_some_and(|w| w >> (i & 63) & 1 != 0)
    }
}

fn prefix(key: &[u8]) -> [u8; PREFIX] {
    let mut p = [0u8; PREFIX];
    p.iter_mut().zip(key).for_each(|(d, s)| *d = *s);
    p
}

/// The prefix of the key an index entry names, from the slots (`None` for
/// a blank node).
fn key_prefix(leaves: &[LeafSlot], parents: &[ParentSlot], r: KeyRef) -> Option<[u8; PREFIX]> {
    let leaf = |l: u32| leaves.get(usize::try_from(l).ok()?).filter(|s| s.present());
    match r {
        KeyRef::Encryption(n) => match n.leaf() {
            Some(l) => leaf(l.0).map(|s| s.encryption_prefix),
            None => parents
                .get(usize::try_from(n.0 >> 1).ok()?)
                .filter(|s| s.present)
                .map(|s| prefix(s.encryption_key.as_bytes())),
        },
        KeyRef::Signature(l) => leaf(l.0).map(|s| s.signature_prefix),
    }
}

// Undo log entries: tag, node index (u32, big-endian), the old value.
const UNDO_LEAF: u8 = 1;
const UNDO_PARENT: u8 = 2;
const UNDO_SIZE: u8 = 3;
/// A parent that was blank with no cached hash: 5 bytes instead of a whole
/// slot, so a Commit that adds many members (each new parent logged) fits.
const UNDO_BLANK_PARENT: u8 = 4;

const fn undo_entry_len(tag: u8) -> usize {
    5 + match tag {
        UNDO_LEAF => LeafSlot::BYTES,
        UNDO_PARENT => ParentSlot::BYTES,
        UNDO_BLANK_PARENT => 0,
        _ => 4,
    }
}

/// One entry of the undo log, decoded one at a time on the stack (P-521's
/// 133-byte keys make `Parent` the large variant; there is no heap to box it).
#[allow(clippy::large_enum_variant)]
enum Undo {
    Leaf(u32, LeafSlot),
    Parent(u32, ParentSlot, [u8; MAX_HASH_LEN]),
    Size(u32),
}

/// The encoding of leaf slot `slot` in `arena`.
fn slot_bytes<'a>(arena: &'a [u8], slot: &LeafSlot) -> Option<&'a [u8]> {
    if !slot.present() {
        return None;
    }
    let start = usize::try_from(slot.offset).ok()?.checked_add(LEAF_RECORD_HEADER)?;
    let end = start.checked_add(usize::try_from(slot.len).ok()?)?;
    arena.get(start..end)
}

/// The undo log entry at offset `at` of `arena` and its length.
fn undo_entry_at(arena: &[u8], at: usize) -> Option<(usize, Undo)> {
    let mut r = Reader::new(arena.get(at..)?);
    let tag = r.read_u8().ok()?;
    let node = r.read_u32().ok()?;
    let entry = match tag {
        UNDO_LEAF => Undo::Leaf(node, LeafSlot::read(&mut r)?),
        UNDO_PARENT => {
            let (slot, hash) = ParentSlot::read(&mut r)?;
            Undo::Parent(node, slot, hash)
        }
        UNDO_BLANK_PARENT => Undo::Parent(node, ParentSlot::BLANK, [0; MAX_HASH_LEN]),
        UNDO_SIZE => Undo::Size(r.read_u32().ok()?),
        _ => return None,
    };
    Some((undo_entry_len(tag), entry))
}

/// Reads the undo log (newest entry first) of `meta` in `arena`.
fn undo_entries<'a>(meta: &TreeMeta, arena: &'a [u8]) -> impl Iterator<Item = Undo> + 'a {
    let top = arena.len();
    let mut at = top.saturating_sub(usize::try_from(meta.undo_len).unwrap_or(usize::MAX));
    core::iter::from_fn(move || {
        let (len, entry) = undo_entry_at(arena.get(..top)?, at)?;
        at = at.saturating_add(len);
        Some(entry)
    })
}

/// The tree as it was before the staged Commit (or the tree itself when
/// nothing is staged), read-only: who is in the group.
#[derive(Clone, Copy, Debug)]
pub struct TreeView<'s> {
    meta: &'s TreeMeta,
    leaves: &'s [LeafSlot],
    arena: &'s [u8],
    /// Read through the undo log: the tree before the staged Commit.
    before_stage: bool,
}

impl<'s> TreeView<'s> {
    /// Number of leaves (a power of two, or 0 for an empty tree).
    pub fn n_leaves(&self) -> u32 {
        if self.before_stage && self.meta.staging {
            for e in undo_entries(self.meta, self.arena) {
                if let Undo::Size(n) = e {
                    return n;
                }
            }
        }
        self.meta.n_leaves
    }

    /// The leaf's slot before the stage.
    fn slot(&self, i: LeafIndex) -> Option<LeafSlot> {
        if i.0 >= self.n_leaves() {
            return None;
        }
        if self.before_stage && self.meta.staging {
            // A leaf may be logged more than once: its value before the
            // stage is the oldest entry (entries come newest first).
            let mut found = None;
            for e in undo_entries(self.meta, self.arena) {
                if let Undo::Leaf(n, old) = e
                    && n == i.0
                {
                    found = Some(old);
                }
            }
            if found.is_some() {
                return found;
            }
        }
        self.leaves.get(usize::try_from(i.0).ok()?).copied()
    }

    /// The encoded LeafNode of leaf `i`, if not blank.
    pub fn leaf_bytes(&self, i: LeafIndex) -> Option<&'s [u8]> {
        slot_bytes(self.arena, &self.slot(i)?)
    }

    /// The LeafNode of leaf `i`, if not blank.
    pub fn leaf_node(&self, i: LeafIndex) -> Option<LeafNode<'s>> {
        LeafNode::decode_exact(self.leaf_bytes(i)?).ok()
    }

    /// The signature key of leaf `i`, if not blank.
    pub fn signature_key(&self, i: LeafIndex) -> Option<&'s [u8]> {
        LeafNode::keys_of(self.leaf_bytes(i)?).map(|(_, k)| k)
    }

    /// The encryption key of leaf `i`, if not blank.
    pub fn encryption_key(&self, i: LeafIndex) -> Option<&'s [u8]> {
        LeafNode::keys_of(self.leaf_bytes(i)?).map(|(k, _)| k)
    }
}

impl<'s> TreeSlices<'s> {
    /// A tree over caller-owned storage (e.g. slices allocated on a host's
    /// heap for trees too large for the stack): `leaves` and `parents` give
    /// the capacity in leaves, `arena` holds the leaf encodings.
    pub fn new(
        meta: &'s mut TreeMeta,
        leaves: &'s mut [LeafSlot],
        parents: &'s mut [ParentSlot],
        arena: &'s mut [u8],
    ) -> Self {
        Self { meta, leaves, parents, arena, index: Default::default(), hashes: Default::default() }
    }

    /// The same tree with its cache of tree hashes in `hashes`
    /// ([`HASH_CACHE_PER_LEAF`] bytes per leaf of capacity; shorter caches
    /// fewer). It must be the cache these `parents` were used with, or any
    /// cache if no parent's hash is marked cached (fresh or cleared slots):
    /// a parent marked cached is read from it.
    pub fn with_hash_cache(mut self, hashes: &'s mut [u8]) -> Self {
        self.hashes = hashes;
        self
    }

    /// Node `x`'s cached tree hash, if it has one.
    pub(crate) fn cached_hash(&self, x: NodeIndex) -> Option<&[u8]> {
        self.parent(x).filter(|s| s.hash_valid)?;
        self.hashes.get(hash_cache_range(x)?)
    }

    /// Node `x`'s cache entry as the undo log keeps it (zeros if none).
    fn cache_entry(&self, x: NodeIndex) -> [u8; MAX_HASH_LEN] {
        let mut out = [0; MAX_HASH_LEN];
        if let Some(h) = self.cached_hash(x) {
            out.iter_mut().zip(h).for_each(|(d, s)| *d = *s);
        }
        out
    }

    /// The same tree with a key index in `index` (a few entries per leaf of
    /// capacity; see [`key_index::WAYS`]), rebuilt here unless it is the one
    /// kept in step with this tree. A build without the index
    /// (`MLS_NOSTD_KEY_INDEX` 0) ignores it. Inlined: the group builds its
    /// slices for every step (out of line, the call was 2% of a fleet's
    /// CPU), and the index is almost always in step.
    #[inline]
    pub fn with_key_index(mut self, index: &'s mut [u32]) -> Self {
        if key_index::WAYS == 0 {
            return self;
        }
        self.index = index;
        if !self.indexed() {
            self.rebuild_key_index();
        }
        self
    }

    /// True if the uniqueness checks ([`Self::has_encryption_key`] and the
    /// like) use the key index, false if they pass over the tree (no index
    /// given, or `MLS_NOSTD_KEY_INDEX` 0).
    pub fn is_key_indexed(&self) -> bool {
        self.indexed()
    }

    /// True if the key index matches the slots.
    #[inline]
    fn indexed(&self) -> bool {
        // A constant false without the index: its code is not linked.
        key_index::WAYS != 0
            && !self.index.is_empty() && usize::try_from(self.meta.key_index).ok() == Some(self.index.len())
    }

    /// Fills the key index from the slots (left empty, and unused, if it
    /// cannot hold them).
    #[cold]
    #[inline(never)]
    fn rebuild_key_index(&mut self) {
        self.index.fill(0);
        self.meta.key_index = 0;
        let Ok(len) = u32::try_from(self.index.len()) else { return };
        if len == 0 {
            return;
        }
        let n = usize::try_from(self.meta.n_leaves).unwrap_or(usize::MAX);
        let mut complete = true;
        for (i, s) in (0u32..).zip(self.leaves.iter().take(n)).filter(|(_, s)| s.present()) {
            complete &= key_index::insert(self.index, KeyRef::Encryption(NodeIndex(i.saturating_mul(2))), s.encryption_prefix)
                && key_index::insert(self.index, KeyRef::Signature(LeafIndex(i)), s.signature_prefix);
        }
        for (j, s) in (0u32..).zip(self.parents.iter().take(n.saturating_sub(1))).filter(|(_, s)| s.present) {
            let node = NodeIndex(j.saturating_mul(2).saturating_add(1));
            complete &= key_index::insert(self.index, KeyRef::Encryption(node), prefix(s.encryption_key.as_bytes()));
        }
        if complete {
            self.meta.key_index = len;
        } else {
            self.index.fill(0);
        }
    }

    /// Adds (`add`) or removes the index entry `r` with key prefix `p`; an
    /// index that cannot follow (none here, or out of step) is dropped.
    fn reindex(&mut self, r: KeyRef, p: [u8; PREFIX], add: bool) {
        if !self.indexed() {
            self.meta.key_index = 0;
            return;
        }
        let (leaves, parents) = (&*self.leaves, &*self.parents);
        let kept = if add {
            key_index::insert(self.index, r, p)
        } else {
            key_index::remove(self.index, r, p, |r| key_prefix(leaves, parents, r))
        };
        if !kept {
            self.meta.key_index = 0;
        }
    }

    /// Writes leaf slot `i` (not logged), keeping the key index in step.
    fn write_leaf_slot(&mut self, i: u32, slot: LeafSlot) {
        if !self.indexed() {
            // Nothing to keep in step (the index, if any, is dropped).
            self.meta.key_index = 0;
            if let Some(x) = usize::try_from(i).ok().and_then(|x| self.leaves.get_mut(x)) {
                *x = slot;
            }
            return;
        }
        let Some(old) = usize::try_from(i).ok().and_then(|x| self.leaves.get(x)).copied() else { return };
        let keys_of = |s: &LeafSlot| s.present().then_some((s.encryption_prefix, s.signature_prefix));
        let rekey = keys_of(&old) != keys_of(&slot);
        let node = KeyRef::Encryption(NodeIndex(i.saturating_mul(2)));
        if let (true, Some((e, s))) = (rekey, keys_of(&old)) {
            self.reindex(node, e, false);
            self.reindex(KeyRef::Signature(LeafIndex(i)), s, false);
        }
        if let Some(x) = usize::try_from(i).ok().and_then(|x| self.leaves.get_mut(x)) {
            *x = slot;
        }
        if let (true, Some((e, s))) = (rekey, keys_of(&slot)) {
            self.reindex(node, e, true);
            self.reindex(KeyRef::Signature(LeafIndex(i)), s, true);
        }
    }

    /// Writes the slot of parent node `p` (not logged), keeping the key
    /// index in step.
    fn write_parent_slot(&mut self, p: u32, slot: ParentSlot) {
        if !self.indexed() {
            self.meta.key_index = 0;
            if let Some(x) = usize::try_from(p >> 1).ok().and_then(|x| self.parents.get_mut(x)) {
                *x = slot;
            }
            return;
        }
        let Some(old) = usize::try_from(p >> 1).ok().and_then(|x| self.parents.get(x)).copied() else { return };
        let key_of = |s: &ParentSlot| s.present.then(|| prefix(s.encryption_key.as_bytes()));
        let rekey = key_of(&old) != key_of(&slot);
        if let (true, Some(k)) = (rekey, key_of(&old)) {
            self.reindex(KeyRef::Encryption(NodeIndex(p)), k, false);
        }
        if let Some(x) = usize::try_from(p >> 1).ok().and_then(|x| self.parents.get_mut(x)) {
            *x = slot;
        }
        if let (true, Some(k)) = (rekey, key_of(&slot)) {
            self.reindex(KeyRef::Encryption(NodeIndex(p)), k, true);
        }
    }

    /// Sets up an empty tree of `suite` (ending any stage).
    pub fn clear(&mut self, suite: CipherSuite) {
        *self.meta = TreeMeta::new(suite);
        self.leaves.iter_mut().for_each(|l| *l = LeafSlot::BLANK);
        self.parents.iter_mut().for_each(|p| *p = ParentSlot::BLANK);
        // An empty index is the index of an empty tree.
        self.index.fill(0);
        self.meta.key_index = u32::try_from(self.index.len()).unwrap_or(0);
    }

    /// The cipher suite.
    pub fn suite(&self) -> CipherSuite {
        self.meta.suite
    }

    /// Number of leaves (a power of two, or 0 for an empty tree).
    pub fn n_leaves(&self) -> u32 {
        self.meta.n_leaves
    }

    /// The root node.
    pub fn root(&self) -> Option<NodeIndex> {
        tree_math::root(self.meta.n_leaves)
    }

    /// The tree before the staged Commit (the tree itself when none is).
    pub fn old(&self) -> TreeView<'_> {
        TreeView { meta: self.meta, leaves: self.leaves, arena: self.arena, before_stage: true }
    }

    /// The tree as it is now (the staged one while a Commit is staged).
    pub fn view(&self) -> TreeView<'_> {
        TreeView { meta: self.meta, leaves: self.leaves, arena: self.arena, before_stage: false }
    }

    pub(crate) fn leaf(&self, i: LeafIndex) -> Option<&LeafSlot> {
        if i.0 >= self.meta.n_leaves {
            return None;
        }
        self.leaves.get(usize::try_from(i.0).ok()?)
    }

    pub(crate) fn parent(&self, n: NodeIndex) -> Option<&ParentSlot> {
        if n.is_leaf() || tree_math::node_width(self.meta.n_leaves).is_none_or(|w| n.0 >= w) {
            return None;
        }
        self.parents.get(usize::try_from(n.0 >> 1).ok()?)
    }

    /// Replaces leaf slot `i`, logging its old value while staging. (A leaf
    /// changed twice is logged twice: entries are small, and replaying them
    /// newest first ends with the oldest.)
    fn put_leaf(&mut self, i: LeafIndex, slot: LeafSlot) -> Result<(), TreeError> {
        let old = *self.leaf(i).ok_or(TreeError::InvalidLeaf)?;
        if old == slot {
            return Ok(());
        }
        self.log(UNDO_LEAF, i.0, &|out| old.write(out))?;
        self.write_leaf_slot(i.0, slot);
        if slot.present() {
            self.meta.leaves_below = self.meta.leaves_below.max(i.0.saturating_add(1));
        }
        Ok(())
    }

    /// Logs parent `p`'s value before the stage, the first time it is
    /// touched while staging (parents change often in one Commit: unmerged
    /// counts, cached hashes; one entry each).
    fn touch_parent(&mut self, p: NodeIndex) -> Result<&mut ParentSlot, TreeError> {
        let old = *self.parent(p).ok_or(TreeError::InvalidLeaf)?;
        if self.meta.staging && !old.logged {
            if old == ParentSlot::BLANK {
                self.log(UNDO_BLANK_PARENT, p.0, &|_| {})?;
            } else {
                let hash = self.cache_entry(p);
                self.log(UNDO_PARENT, p.0, &|out| old.write(&hash, out))?;
            }
        }
        let staging = self.meta.staging;
        let slot =
            self.parents.get_mut(usize::try_from(p.0 >> 1).map_err(|_| TreeError::InvalidLeaf)?).ok_or(TreeError::InvalidLeaf)?;
        slot.logged |= staging;
        Ok(slot)
    }

    /// Replaces parent slot `p`, logging its old value while staging.
    fn put_parent(&mut self, p: NodeIndex, mut slot: ParentSlot) -> Result<(), TreeError> {
        let old = *self.parent(p).ok_or(TreeError::InvalidLeaf)?;
        slot.logged = old.logged;
        if old == slot {
            return Ok(());
        }
        slot.logged = self.touch_parent(p)?.logged;
        self.write_parent_slot(p.0, slot);
        Ok(())
    }

    /// Records the old value of a slot in the undo log while staging.
    fn log(&mut self, tag: u8, node: u32, write: &dyn Fn(&mut [u8])) -> Result<(), TreeError> {
        if !self.meta.staging {
            return Ok(());
        }
        let len = undo_entry_len(tag);
        let undo = usize::try_from(self.meta.undo_len).map_err(|_| TreeError::CapacityExceeded(Capacity::TreeArena))?;
        let used = usize::try_from(self.meta.arena_used).map_err(|_| TreeError::CapacityExceeded(Capacity::TreeArena))?;
        let top = self.arena.len().checked_sub(undo).ok_or(TreeError::CapacityExceeded(Capacity::TreeArena))?;
        let start = top.checked_sub(len).filter(|s| *s >= used).ok_or(TreeError::CapacityExceeded(Capacity::TreeArena))?;
        let entry = self.arena.get_mut(start..top).ok_or(TreeError::CapacityExceeded(Capacity::TreeArena))?;
        let (head, body) = entry.split_at_mut_checked(5).ok_or(TreeError::CapacityExceeded(Capacity::TreeArena))?;
        head.iter_mut().zip(core::iter::once(tag).chain(node.to_be_bytes())).for_each(|(d, s)| *d = s);
        write(body);
        self.meta.undo_len = self.meta.undo_len.saturating_add(len as u32);
        Ok(())
    }

    /// Starts staging a Commit in place: every change until
    /// [`Self::merge_stage`] or [`Self::discard_stage`] can be undone.
    pub fn begin_stage(&mut self) -> Result<(), TreeError> {
        if self.meta.staging {
            return Err(TreeError::Staging);
        }
        // Room for the stage's new encodings and its undo log: dead records
        // are compacted away first, whatever the free space, so that whether
        // a Commit fits depends on the tree alone, not on this member's
        // history of replaced leaves: every member applies the same Commit
        // to the same tree (RFC 9420 §12.4.2). Compacted only when dead
        // records took more than the free space, a member refused
        // (`CapacityExceeded(TreeArena)`) a Commit its committer, whose
        // arena was compacted, had created (found by `self_acceptance`).
        if self.meta.arena_used > self.meta.arena_live {
            self.compact();
        }
        self.meta.undo_len = 0;
        self.meta.stage_arena_used = self.meta.arena_used;
        self.meta.stage_arena_live = self.meta.arena_live;
        self.meta.staging = true;
        Ok(())
    }

    /// True while a Commit is staged in the tree.
    pub fn is_staging(&self) -> bool {
        self.meta.staging
    }

    /// Keeps the staged changes: the tree is the new epoch's.
    pub fn merge_stage(&mut self) -> Result<(), TreeError> {
        if !self.meta.staging {
            return Err(TreeError::Staging);
        }
        // The parents the stage changed lose their mark.
        let top = self.arena.len();
        let start = top.saturating_sub(usize::try_from(self.meta.undo_len).unwrap_or(usize::MAX));
        let mut r = Reader::new(self.arena.get(start..top).unwrap_or(&[]));
        while let (Ok(tag), Ok(node)) = (r.read_u8(), r.read_u32()) {
            if (tag == UNDO_PARENT || tag == UNDO_BLANK_PARENT)
                && let Some(s) = usize::try_from(node >> 1).ok().and_then(|i| self.parents.get_mut(i))
            {
                s.logged = false;
            }
            if r.read_bytes(undo_entry_len(tag).saturating_sub(5)).is_err() {
                break;
            }
        }
        self.meta.staging = false;
        self.meta.undo_len = 0;
        // Meaningful while staging only: the tree is as before a stage.
        self.meta.stage_arena_used = 0;
        self.meta.stage_arena_live = 0;
        // Kept in step by every write (a recount read every leaf slot: a
        // fifth of merging a Commit at 50,000 members).
        debug_assert_eq!(self.meta.arena_live, self.counted_live(), "arena_live out of step");
        Ok(())
    }

    /// Undoes every staged change: the tree is exactly as before the stage
    /// (cached hashes included).
    pub fn discard_stage(&mut self) -> Result<(), TreeError> {
        if !self.meta.staging {
            return Err(TreeError::Staging);
        }
        // Entries are read newest first; each slot has one entry (its value
        // before the stage), so the order does not matter.
        let top = self.arena.len();
        let start = top.saturating_sub(usize::try_from(self.meta.undo_len).unwrap_or(usize::MAX));
        let mut at = start;
        let mut size = None;
        while let Some((len, entry)) = undo_entry_at(self.arena, at) {
            at = at.saturating_add(len);
            // Leaves are logged by leaf index, parents by node index.
            match entry {
                Undo::Leaf(node, old) => {
                    self.write_leaf_slot(node, old);
                    if old.present() {
                        self.meta.leaves_below = self.meta.leaves_below.max(node.saturating_add(1));
                    }
                }
                Undo::Parent(node, old, hash) => {
                    self.write_parent_slot(node, old);
                    // Its cache entry as it was (the stage may have cached
                    // its staged subtree's hash there).
                    let entry = hash_cache_range(NodeIndex(node)).and_then(|r| self.hashes.get_mut(r));
                    if let (true, Some(e)) = (old.hash_valid, entry) {
                        e.copy_from_slice(&hash);
                    }
                }
                Undo::Size(n) => size = Some(n),
            }
        }
        if let Some(n) = size {
            // Slots the stage's extension added are blank again.
            let old_width = tree_math::node_width(n).unwrap_or(0);
            let new_width = tree_math::node_width(self.meta.n_leaves).unwrap_or(0);
            for x in old_width..new_width {
                match NodeIndex(x).leaf() {
                    Some(l) => self.write_leaf_slot(l.0, LeafSlot::BLANK),
                    None => self.write_parent_slot(x, ParentSlot::BLANK),
                }
            }
            self.meta.n_leaves = n;
        }
        // The stage's new encodings are dropped; replaced ones were kept.
        self.meta.arena_used = self.meta.stage_arena_used;
        self.meta.arena_live = self.meta.stage_arena_live;
        self.meta.staging = false;
        self.meta.undo_len = 0;
        // Meaningful while staging only: the tree is as before a stage.
        self.meta.stage_arena_used = 0;
        self.meta.stage_arena_live = 0;
        debug_assert_eq!(self.meta.arena_live, self.counted_live(), "arena_live out of step");
        Ok(())
    }

    /// Leaf slot `i` before the stage (`before`) or as it is.
    fn slot_at(&self, i: LeafIndex, before: bool) -> Option<LeafSlot> {
        if before { self.old().slot(i) } else { self.leaf(i).copied() }
    }

    /// Parent slot `p` before the stage (`before`) or as it is.
    fn parent_at(&self, p: NodeIndex, before: bool) -> Option<ParentSlot> {
        let n = if before { self.old().n_leaves() } else { self.meta.n_leaves };
        if p.is_leaf() || tree_math::node_width(n).is_none_or(|w| p.0 >= w) {
            return None;
        }
        if before && self.meta.staging {
            for e in undo_entries(self.meta, self.arena) {
                if let Undo::Parent(x, old, _) = e
                    && x == p.0
                {
                    return Some(old);
                }
            }
        }
        self.parents.get(usize::try_from(p.0 >> 1).ok()?).copied()
    }

    /// Node `x` of the tree before the stage (`before`) or as it is is not
    /// blank: [`Self::write_node`] would write it. Without encoding the
    /// node: a parent's bitmap reads every leaf below it, and a save asks
    /// this of every node of the tree (`store::tree_records`).
    pub(crate) fn is_present_at(&self, x: NodeIndex, before: bool) -> bool {
        if before && self.meta.staging {
            return match x.leaf() {
                Some(l) => self.old().leaf_bytes(l).is_some(),
                None => self.parent_at(x, true).is_some_and(|s| s.present),
            };
        }
        // The tree as it is: its slots by reference (a parent's is 73 bytes).
        // A leaf by its bytes, as `write_node` writes it.
        match x.leaf() {
            Some(l) => self.leaf_bytes(l).is_some(),
            None => !self.is_blank(x),
        }
    }

    /// Writes node `x` of the tree before the stage (`before`) or as it is,
    /// in its stored form: a LeafNode's encoding, or a parent's
    /// [`ParentRecord`]; false, writing nothing, if it is blank.
    pub(crate) fn write_node(&self, x: NodeIndex, before: bool, w: &mut Writer<'_>) -> Result<bool, CodecError> {
        match x.leaf() {
            Some(l) => match self.slot_at(l, before).and_then(|s| slot_bytes(self.arena, &s)) {
                Some(bytes) => w.write_bytes(bytes).map(|()| true),
                None => Ok(false),
            },
            None => {
                let Some(slot) = self.parent_at(x, before).filter(|s| s.present) else { return Ok(false) };
                w.write_opaque(slot.encryption_key.as_bytes())?;
                w.write_opaque(slot.parent_hash())?;
                let k = tree_math::level(x);
                let bit = 1u32.checked_shl(k.saturating_sub(1)).unwrap_or(0);
                let (first, count) = leaf_span(x);
                // Leaf `i` of the subtree is unmerged here. Only the subtree's
                // leaves: the last byte's bits past it would name leaves of
                // a sibling subtree unmerged at its own node of this level,
                // which a load refuses (§7.1: unmerged leaves are descendants).
                let unmerged = |i: u32| {
                    i < count && self.slot_at(LeafIndex(first.saturating_add(i)), before).is_some_and(|s| s.unmerged & bit != 0)
                };
                // The bitmap up to its last set bit's byte.
                let len = (0..count).rev().find(|&i| unmerged(i)).map_or(0, |i| i / 8 + 1);
                w.write_varint(len as usize)?;
                for byte in 0..len {
                    let bits = (0..8u32).filter(|&j| unmerged(byte * 8 + j)).fold(0u8, |b, j| b | 1 << j);
                    w.write_u8(bits)?;
                }
                Ok(true)
            }
        }
    }

    /// The unmerged bits of leaf `l` as it is.
    pub(crate) fn unmerged_bits(&self, l: LeafIndex) -> u32 {
        self.leaf(l).map_or(0, |s| s.unmerged)
    }

    /// Sets leaf `l` to `bytes` (or blank) with `unmerged` bits, as a saved
    /// stage recorded it (logged while staging).
    pub(crate) fn restore_leaf(&mut self, l: LeafIndex, bytes: Option<&[u8]>, unmerged: u32) -> Result<(), TreeError> {
        match bytes {
            Some(b) => self.set_leaf(l, b)?,
            None => {
                let old = self.leaf(l).copied().ok_or(TreeError::InvalidLeaf)?;
                if old.present() {
                    self.meta.arena_live =
                        self.meta.arena_live.saturating_sub(old.len.saturating_add(LEAF_RECORD_HEADER as u32));
                }
                self.put_leaf(l, LeafSlot::BLANK)?;
                self.invalidate(l.node().ok_or(TreeError::InvalidLeaf)?)?;
            }
        }
        let slot = self.leaf(l).copied().ok_or(TreeError::InvalidLeaf)?;
        self.put_leaf(l, LeafSlot { unmerged, ..slot })
    }

    /// Sets parent `p` to `node` (or blank), its unmerged count from the
    /// record (the leaves' bits are restored with the leaves).
    pub(crate) fn restore_parent(&mut self, p: NodeIndex, node: Option<&ParentRecord<'_>>) -> Result<(), TreeError> {
        let slot = match node {
            None => ParentSlot::BLANK,
            Some(n) => {
                let key = HpkePublicKey::for_suite(self.suite(), n.encryption_key).map_err(|_| TreeError::InvalidKey)?;
                let mut slot = ParentSlot { present: true, encryption_key: key, ..ParentSlot::BLANK };
                slot.parent_hash
                    .get_mut(..n.parent_hash.len())
                    .ok_or(TreeError::InvalidParentHash)?
                    .copy_from_slice(n.parent_hash);
                slot.parent_hash_len = u8::try_from(n.parent_hash.len()).map_err(|_| TreeError::InvalidParentHash)?;
                slot.unmerged = u32::try_from(n.unmerged_leaves(p)?.count()).map_err(|_| TreeError::UnmergedNotDescendant)?.to_le_bytes();
                slot
            }
        };
        self.put_parent(p, slot)?;
        self.invalidate(p)
    }

    /// Sets the number of leaves as a saved stage recorded it. A smaller
    /// tree blanks the nodes it drops first, as [`Self::truncate`] did
    /// (§7.7; logged, so a discard restores them).
    pub(crate) fn restore_size(&mut self, n: u32) -> Result<(), TreeError> {
        let cap_leaves = u32::try_from(self.leaves.len()).unwrap_or(u32::MAX);
        if n > cap_leaves || (n != 0 && !n.is_power_of_two()) {
            return Err(TreeError::CapacityExceeded(Capacity::Leaves));
        }
        let new_width = tree_math::node_width(n).unwrap_or(0);
        let old_width = tree_math::node_width(self.meta.n_leaves).unwrap_or(0);
        for x in (new_width..old_width).map(NodeIndex) {
            match x.leaf() {
                Some(l) => self.restore_leaf(l, None, 0)?,
                None => self.restore_parent(x, None)?,
            }
        }
        self.resize(n)
    }

    /// The slots the stage changed (each once): leaves and parents by node.
    /// (A leaf changed twice is listed twice.)
    pub(crate) fn staged_nodes(&self) -> impl Iterator<Item = NodeIndex> + '_ {
        undo_entries(self.meta, self.arena).filter_map(|e| match e {
            Undo::Leaf(l, _) => LeafIndex(l).node(),
            Undo::Parent(p, ..) => Some(NodeIndex(p)),
            Undo::Size(_) => None,
        })
    }

    /// The values the stage logged for leaves, newest first: each leaf
    /// and its LeafNode encoding then (`None`: blank). A leaf changed twice
    /// is listed twice; its last entry is its value before the stage. One
    /// pass over the log, where asking [`TreeView::slot`] per leaf would
    /// read the whole log each time (quadratic in a Commit of many Adds).
    pub(crate) fn staged_leaf_values(&self) -> impl Iterator<Item = (LeafIndex, Option<&[u8]>)> + '_ {
        undo_entries(self.meta, self.arena).filter_map(|e| match e {
            Undo::Leaf(l, slot) => Some((LeafIndex(l), slot_bytes(self.arena, &slot))),
            Undo::Parent(..) | Undo::Size(_) => None,
        })
    }

    /// The bytes of live records, counted from the slots (what
    /// `arena_live` must be outside a stage; debug builds check it).
    fn counted_live(&self) -> u32 {
        let n = usize::try_from(self.meta.n_leaves).unwrap_or(usize::MAX);
        self.leaves
            .iter()
            .take(n)
            .filter(|s| s.present())
            .map(|s| s.len.saturating_add(LEAF_RECORD_HEADER as u32))
            .fold(0u32, u32::saturating_add)
    }

    /// True if node `n` is blank (or outside the tree).
    pub fn is_blank(&self, n: NodeIndex) -> bool {
        match n.leaf() {
            Some(l) => !self.leaf(l).is_some_and(LeafSlot::present),
            None => !self.parent(n).is_some_and(|s| s.present),
        }
    }

    /// The encoded LeafNode of leaf `i`, if not blank.
    pub fn leaf_bytes(&self, i: LeafIndex) -> Option<&[u8]> {
        slot_bytes(self.arena, self.leaf(i)?)
    }

    /// The LeafNode of leaf `i`, if not blank.
    pub fn leaf_node(&self, i: LeafIndex) -> Option<LeafNode<'_>> {
        LeafNode::decode_exact(self.leaf_bytes(i)?).ok()
    }

    /// The HPKE public key of node `n`, if not blank.
    pub fn encryption_key(&self, n: NodeIndex) -> Option<&[u8]> {
        match n.leaf() {
            Some(l) => LeafNode::keys_of(self.leaf_bytes(l)?).map(|(k, _)| k),
            None => self.parent(n).filter(|s| s.present).map(|s| s.encryption_key.as_bytes()),
        }
    }

    /// The signature key of leaf `i`, if not blank.
    pub fn signature_key(&self, i: LeafIndex) -> Option<&[u8]> {
        LeafNode::keys_of(self.leaf_bytes(i)?).map(|(_, k)| k)
    }

    /// True if `key` is the encryption key of a node other than `except`.
    pub fn has_encryption_key(&self, key: &[u8], except: Option<NodeIndex>) -> bool {
        self.has_any_encryption_key(&[(key, except)])
    }

    /// True if one of `keys` is the encryption key of a node of the tree
    /// other than the node paired with it: [`Self::has_encryption_key`] for
    /// each, in one pass over the tree (an UpdatePath's keys, §7.3: one pass
    /// instead of one per path node, a sixth of processing a Commit in a
    /// full 1,024-member tree before).
    pub fn has_any_encryption_key(&self, keys: &[(&[u8], Option<NodeIndex>)]) -> bool {
        if !self.indexed() {
            return self.scan_encryption_keys(keys);
        }
        let found = keys.iter().any(|(k, except)| self.indexed_keys(k, false).any(|r| Some(r) != except.map(KeyRef::Encryption)));
        debug_assert_eq!(found, self.scan_encryption_keys(keys), "key index out of step");
        found
    }

    /// The index entries whose whole key is `key`: encryption keys, or
    /// (`signature`) leaves' signature keys.
    fn indexed_keys<'k>(&'k self, key: &'k [u8], signature: bool) -> impl Iterator<Item = KeyRef> + 'k {
        let p = prefix(key);
        key_index::candidates(self.index, p)
            .filter(move |r| matches!(r, KeyRef::Signature(_)) == signature)
            .filter(move |r| key_prefix(self.leaves, self.parents, *r) == Some(p))
            .filter(move |r| match *r {
                KeyRef::Encryption(n) => self.encryption_key(n) == Some(key),
                KeyRef::Signature(l) => self.signature_key(l) == Some(key),
            })
    }

    /// [`Self::has_any_encryption_key`] by a pass over the tree.
    fn scan_encryption_keys(&self, keys: &[(&[u8], Option<NodeIndex>)]) -> bool {
        let filter = KeyFilter::new(keys.iter().map(|(k, _)| *k));
        let hit = |n: NodeIndex, node_key: &[u8]| keys.iter().any(|(k, except)| *except != Some(n) && *k == node_key);
        // The slices walked directly (a leaf `i` is node `2i`, a parent slot
        // `j` node `2j + 1`): no index arithmetic per node.
        let n = usize::try_from(self.meta.n_leaves).unwrap_or(usize::MAX);
        let leaf = |(i, s): (usize, &LeafSlot)| {
            s.present()
                && filter.may_hold(&s.encryption_prefix)
                && keys.iter().any(|(k, _)| prefix(k) == s.encryption_prefix)
                && u32::try_from(2 * i).map(NodeIndex).is_ok_and(|n| self.encryption_key(n).is_some_and(|k| hit(n, k)))
        };
        let parent = |(j, s): (usize, &ParentSlot)| {
            let k = s.encryption_key.as_bytes();
            s.present && filter.may_hold(k) && u32::try_from(2 * j + 1).is_ok_and(|n| hit(NodeIndex(n), k))
        };
        self.leaves.iter().take(n).enumerate().any(leaf) || self.parents.iter().take(n.saturating_sub(1)).enumerate().any(parent)
    }

    /// True if `key` is the signature key of a leaf other than `except`.
    pub fn has_signature_key(&self, key: &[u8], except: Option<LeafIndex>) -> bool {
        if !self.indexed() {
            return self.scan_signature_key(key, except);
        }
        let found = self.indexed_keys(key, true).any(|r| Some(r) != except.map(KeyRef::Signature));
        debug_assert_eq!(found, self.scan_signature_key(key, except), "key index out of step");
        found
    }

    /// [`Self::has_signature_key`] by a pass over the leaves.
    fn scan_signature_key(&self, key: &[u8], except: Option<LeafIndex>) -> bool {
        let p = prefix(key);
        (0..self.meta.n_leaves).map(LeafIndex).filter(|l| Some(*l) != except).any(|l| {
            self.leaf(l).is_some_and(|s| s.present() && s.signature_prefix == p)
                && self.signature_key(l).is_some_and(|k| k == key)
        })
    }

    /// The leaf whose signature key is `key`, if any.
    pub fn find_signature_key(&self, key: &[u8]) -> Option<LeafIndex> {
        if self.indexed() {
            let found = self.indexed_keys(key, true).find_map(|r| match r {
                KeyRef::Signature(l) => Some(l),
                KeyRef::Encryption(_) => None,
            });
            debug_assert_eq!(found.is_some(), self.scan_signature_key(key, None), "key index out of step");
            return found;
        }
        let p = prefix(key);
        (0..self.meta.n_leaves).map(LeafIndex).find(|l| {
            self.leaf(*l).is_some_and(|s| s.present() && s.signature_prefix == p)
                && self.signature_key(*l).is_some_and(|k| k == key)
        })
    }

    /// True if leaf `l` is unmerged at its ancestor `p`.
    pub fn is_unmerged_at(&self, l: LeafIndex, p: NodeIndex) -> bool {
        let k = tree_math::level(p);
        k > 0 && self.leaf(l).is_some_and(|s| s.unmerged & (1u32 << (k - 1).min(31)) != 0)
    }

    /// The unmerged leaves of parent `p`, in increasing order.
    pub fn unmerged_leaves(&self, p: NodeIndex) -> impl Iterator<Item = LeafIndex> + '_ {
        let (first, count) = leaf_span(p);
        let has_any = self.parent(p).is_some_and(|s| s.present && s.unmerged_count() > 0);
        let count = if has_any { count } else { 0 };
        (first..first.saturating_add(count)).map(LeafIndex).filter(move |l| self.is_unmerged_at(*l, p))
    }

    /// Calls `f` on each node of the resolution of `n` (§4.1), in order,
    /// skipping leaves for which `exclude` is true.
    pub fn for_each_in_resolution(&self, n: NodeIndex, exclude: &dyn Fn(LeafIndex) -> bool, f: &mut dyn FnMut(NodeIndex)) {
        let _ = self.walk_resolution(n, exclude, &mut |x| {
            f(x);
            ControlFlow::Continue(())
        });
    }

    /// [`Self::for_each_in_resolution`] until `f` breaks. The callbacks are
    /// `dyn`, so that the walk has one copy in flash: generic, it had one
    /// per caller (188 bytes more on the boards, which are at their flash
    /// budget), for 1% in processing the sparse Commit at 10,000 (hot
    /// loop: 2.72 ms generic, 2.74 ms dyn).
    fn walk_resolution(
        &self,
        n: NodeIndex,
        exclude: &dyn Fn(LeafIndex) -> bool,
        f: &mut dyn FnMut(NodeIndex) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        if let Some(l) = n.leaf() {
            if !self.is_blank(n) && !exclude(l) {
                return f(n);
            }
            return ControlFlow::Continue(());
        }
        if !self.is_blank(n) {
            f(n)?;
            for l in self.unmerged_leaves(n) {
                if let Some(node) = l.node().filter(|_| !exclude(l)) {
                    f(node)?;
                }
            }
            return ControlFlow::Continue(());
        }
        // A blank parent with only blank leaves below resolves to nothing.
        if leaf_span(n).0 >= self.meta.leaves_below {
            return ControlFlow::Continue(());
        }
        if let (Some(a), Some(b)) = (tree_math::left(n), tree_math::right(n)) {
            self.walk_resolution(a, exclude, f)?;
            self.walk_resolution(b, exclude, f)?;
        }
        ControlFlow::Continue(())
    }

    /// Writes the resolution of `n` into `out`; returns its length.
    pub fn resolution(&self, n: NodeIndex, out: &mut [NodeIndex]) -> Result<usize, TreeError> {
        let mut len = 0usize;
        let mut overflow = false;
        self.for_each_in_resolution(n, &|_| false, &mut |x| {
            match out.get_mut(len) {
                Some(slot) => *slot = x,
                None => overflow = true,
            }
            len += 1;
        });
        if overflow { Err(TreeError::CapacityExceeded(Capacity::Container(out.len()))) } else { Ok(len) }
    }

    /// True if the resolution of `n` is empty (after `exclude`).
    pub fn resolution_is_empty(&self, n: NodeIndex, exclude: &dyn Fn(LeafIndex) -> bool) -> bool {
        // The walk stops at the first node found.
        self.walk_resolution(n, exclude, &mut |_| ControlFlow::Break(())).is_continue()
    }

    /// The filtered direct path of leaf `l` (§4.1) with, for each node, the
    /// child on `l`'s copath: written into `out`, returns how many.
    pub fn filtered_direct_path(
        &self,
        l: LeafIndex,
        out: &mut [(NodeIndex, NodeIndex)],
    ) -> Result<usize, TreeError> {
        let mut n = 0usize;
        let full = TreeError::CapacityExceeded(Capacity::Container(out.len()));
        let mut cur = l.node().ok_or(TreeError::InvalidLeaf)?;
        let width = self.meta.n_leaves;
        if l.0 >= width {
            return Err(TreeError::InvalidLeaf);
        }
        while let Some(p) = tree_math::parent(cur, width) {
            let sibling = tree_math::sibling(cur, width).ok_or(TreeError::InvalidLeaf)?;
            if !self.resolution_is_empty(sibling, &|_| false) {
                *out.get_mut(n).ok_or(full)? = (p, sibling);
                n += 1;
            }
            cur = p;
        }
        Ok(n)
    }

    /// Marks the cached tree hash of `n`'s ancestors (and of `n`, a parent)
    /// stale. While staging every one of them is logged, even if its cache
    /// was already stale: [`Self::cache_hash`] relies on it.
    pub(crate) fn invalidate(&mut self, n: NodeIndex) -> Result<(), TreeError> {
        let width = self.meta.n_leaves;
        let mut cur = Some(n);
        while let Some(x) = cur {
            if self.parent(x).is_some_and(|s| s.hash_valid || (self.meta.staging && !s.logged)) {
                self.touch_parent(x)?.hash_valid = false;
            }
            cur = tree_math::parent(x, width);
        }
        Ok(())
    }

    /// Caches the tree hash of parent `p` (valid until its subtree changes),
    /// if `p` is of [`HASH_CACHE_LEVEL`] or above and the cache has its
    /// entry. Not logged: a parent the stage did not touch has the same
    /// subtree before and after it, and a touched one is restored from the log.
    pub(crate) fn cache_hash(&mut self, p: NodeIndex, hash: &[u8]) -> Result<(), TreeError> {
        if hash.len() > MAX_HASH_LEN || self.parent(p).is_none() {
            return Ok(());
        }
        let Some(entry) = hash_cache_range(p).and_then(|r| self.hashes.get_mut(r)) else { return Ok(()) };
        entry.fill(0);
        entry.iter_mut().zip(hash).for_each(|(d, x)| *d = *x);
        if let Some(s) = usize::try_from(p.0 >> 1).ok().and_then(|i| self.parents.get_mut(i)) {
            s.hash_valid = true;
        }
        Ok(())
    }

    /// Blanks parent `p`, dropping its unmerged leaves.
    pub(crate) fn blank_parent(&mut self, p: NodeIndex) -> Result<(), TreeError> {
        let k = tree_math::level(p);
        let Some(slot) = self.parent(p).copied() else { return Ok(()) };
        if slot.unmerged_count() > 0 && k > 0 {
            let (first, count) = leaf_span(p);
            let bit = 1u32 << (k - 1).min(31);
            for i in (first..first.saturating_add(count)).map(LeafIndex) {
                if let Some(s) = self.leaf(i).copied().filter(|s| s.unmerged & bit != 0) {
                    self.put_leaf(i, LeafSlot { unmerged: s.unmerged & !bit, ..s })?;
                }
            }
        }
        if slot.present {
            self.put_parent(p, ParentSlot::BLANK)?;
        }
        self.invalidate(p)
    }

    /// Blanks the direct path of leaf `l` (§7.7, §7.5).
    pub fn blank_direct_path(&mut self, l: LeafIndex) -> Result<(), TreeError> {
        let mut cur = l.node().ok_or(TreeError::InvalidLeaf)?;
        while let Some(p) = tree_math::parent(cur, self.meta.n_leaves) {
            self.blank_parent(p)?;
            cur = p;
        }
        Ok(())
    }

    /// Sets parent `p` to a fresh node with `encryption_key`, no unmerged
    /// leaves, and `parent_hash`.
    pub fn set_parent(&mut self, p: NodeIndex, encryption_key: &[u8], parent_hash: &[u8]) -> Result<(), TreeError> {
        let key = HpkePublicKey::for_suite(self.suite(), encryption_key).map_err(|_| TreeError::InvalidKey)?;
        let mut slot = ParentSlot { present: true, encryption_key: key, ..ParentSlot::BLANK };
        slot.parent_hash.get_mut(..parent_hash.len()).ok_or(TreeError::InvalidParentHash)?.copy_from_slice(parent_hash);
        slot.parent_hash_len = u8::try_from(parent_hash.len()).map_err(|_| TreeError::InvalidParentHash)?;
        if self.parent(p).is_none() {
            return Err(TreeError::InvalidLeaf);
        }
        self.blank_parent(p)?;
        self.put_parent(p, slot)?;
        self.invalidate(p)
    }

    /// Replaces the parent hash of non-blank parent `p`.
    pub(crate) fn set_parent_hash(&mut self, p: NodeIndex, parent_hash: &[u8]) -> Result<(), TreeError> {
        let mut slot = self.parent(p).copied().filter(|s| s.present).ok_or(TreeError::InvalidLeaf)?;
        slot.parent_hash.get_mut(..parent_hash.len()).ok_or(TreeError::InvalidParentHash)?.copy_from_slice(parent_hash);
        slot.parent_hash_len = u8::try_from(parent_hash.len()).map_err(|_| TreeError::InvalidParentHash)?;
        self.put_parent(p, slot)?;
        self.invalidate(p)
    }

    /// Marks leaf `l` unmerged at parent `p`.
    fn add_unmerged(&mut self, l: LeafIndex, p: NodeIndex) -> Result<(), TreeError> {
        let k = tree_math::level(p);
        if k == 0 || k > 32 || self.is_unmerged_at(l, p) {
            return Err(TreeError::UnmergedNotSorted);
        }
        let parent = self.parent(p).copied().filter(|s| s.present).ok_or(TreeError::UnmergedNotDescendant)?;
        let leaf = self.leaf(l).copied().ok_or(TreeError::InvalidLeaf)?;
        self.put_parent(p, parent.with_unmerged_count(parent.unmerged_count().saturating_add(1)))?;
        self.put_leaf(l, LeafSlot { unmerged: leaf.unmerged | 1u32 << (k - 1), ..leaf })?;
        self.invalidate(p)
    }

    /// Compacts the arena: live records move down in order, dead ones
    /// (no longer the encoding of their leaf) vanish. Never while staging:
    /// the undo log points at replaced records.
    fn compact(&mut self) {
        if self.meta.staging {
            return;
        }
        let used = usize::try_from(self.meta.arena_used).unwrap_or(0);
        let (mut read, mut write) = (0usize, 0usize);
        while read < used {
            let (Some(idx), Some(len)) = (read_u32_le(self.arena, read), read_u32_le(self.arena, read + 4)) else {
                break;
            };
            let total = LEAF_RECORD_HEADER.saturating_add(usize::try_from(len).unwrap_or(usize::MAX));
            if read.saturating_add(total) > used {
                break;
            }
            let live = self
                .leaf(LeafIndex(idx))
                .is_some_and(|s| s.present() && usize::try_from(s.offset).ok() == Some(read));
            if live {
                if !crate::codec::move_within(self.arena, read..read + total, write) {
                    break;
                }
                if let Some(s) = usize::try_from(idx).ok().and_then(|i| self.leaves.get_mut(i)) {
                    s.offset = write as u32;
                }
                write += total;
            }
            read += total;
        }
        self.meta.arena_used = write as u32;
        self.meta.arena_live = write as u32;
    }

    /// Stores `bytes` as leaf `l`'s record; returns its offset.
    fn store_leaf_bytes(&mut self, l: LeafIndex, bytes: &[u8]) -> Result<u32, TreeError> {
        let total = Self::arena_bytes_needed(bytes.len());
        if self.space() < total {
            self.compact();
        }
        if self.space() < total {
            return Err(TreeError::CapacityExceeded(Capacity::TreeArena));
        }
        let start = usize::try_from(self.meta.arena_used).map_err(|_| TreeError::CapacityExceeded(Capacity::TreeArena))?;
        let rec = self.arena.get_mut(start..start + total).ok_or(TreeError::CapacityExceeded(Capacity::TreeArena))?;
        let (head, body) = rec.split_at_mut(LEAF_RECORD_HEADER);
        let len = u32::try_from(bytes.len()).map_err(|_| TreeError::CapacityExceeded(Capacity::TreeArena))?;
        head.iter_mut().zip(l.0.to_le_bytes().into_iter().chain(len.to_le_bytes())).for_each(|(d, s)| *d = s);
        body.iter_mut().zip(bytes).for_each(|(d, s)| *d = *s);
        self.meta.arena_used = self.meta.arena_used.saturating_add(total as u32);
        self.meta.arena_live = self.meta.arena_live.saturating_add(total as u32);
        Ok(start as u32)
    }

    /// Free bytes between the leaf records and the undo log.
    fn space(&self) -> usize {
        let undo = usize::try_from(self.meta.undo_len).unwrap_or(usize::MAX);
        let used = usize::try_from(self.meta.arena_used).unwrap_or(usize::MAX);
        self.arena.len().saturating_sub(undo).saturating_sub(used)
    }

    /// Arena bytes a leaf encoding of `len` bytes needs.
    pub fn arena_bytes_needed(len: usize) -> usize {
        len.saturating_add(LEAF_RECORD_HEADER)
    }

    /// Free arena bytes (after compaction).
    pub fn arena_free(&self) -> usize {
        let undo = usize::try_from(self.meta.undo_len).unwrap_or(usize::MAX);
        let live = usize::try_from(self.meta.arena_live).unwrap_or(usize::MAX);
        self.arena.len().saturating_sub(undo).saturating_sub(live)
    }

    /// Sets leaf `l` to the LeafNode encoded in `bytes` (already validated by
    /// the caller), keeping its unmerged bits.
    pub fn set_leaf(&mut self, l: LeafIndex, bytes: &[u8]) -> Result<(), TreeError> {
        let leaf = LeafNode::decode_exact(bytes)?;
        // Keys of the suite's lengths only (RFC 9420 §5.1.1), and an
        // encryption key a DH can use (RFC 9180 §7.1.4).
        let suite = self.suite();
        HpkePublicKey::for_suite(suite, leaf.fields.encryption_key).map_err(|_| TreeError::InvalidKey)?;
        SignaturePublicKey::for_suite(suite, leaf.fields.signature_key).map_err(|_| TreeError::InvalidKey)?;
        let old = self.leaf(l).copied().ok_or(TreeError::InvalidLeaf)?;
        let offset = self.store_leaf_bytes(l, bytes)?;
        let slot = LeafSlot {
            offset,
            len: u32::try_from(bytes.len()).map_err(|_| TreeError::CapacityExceeded(Capacity::TreeArena))?,
            unmerged: old.unmerged,
            encryption_prefix: prefix(leaf.fields.encryption_key),
            signature_prefix: prefix(leaf.fields.signature_key),
        };
        if old.present() {
            self.meta.arena_live =
                self.meta.arena_live.saturating_sub(old.len.saturating_add(LEAF_RECORD_HEADER as u32));
        }
        self.put_leaf(l, slot)?;
        self.invalidate(l.node().ok_or(TreeError::InvalidLeaf)?)
    }

    /// Blanks leaf `l` and removes it from every unmerged list.
    pub fn blank_leaf(&mut self, l: LeafIndex) -> Result<(), TreeError> {
        let width = self.meta.n_leaves;
        let node = l.node().ok_or(TreeError::InvalidLeaf)?;
        let old = self.leaf(l).copied().ok_or(TreeError::InvalidLeaf)?;
        let mut cur = node;
        while let Some(p) = tree_math::parent(cur, width) {
            let k = tree_math::level(p);
            let unmerged_here = k > 0 && old.unmerged & (1u32 << (k - 1).min(31)) != 0;
            if let Some(s) = self.parent(p).copied().filter(|_| unmerged_here) {
                self.put_parent(p, s.with_unmerged_count(s.unmerged_count().saturating_sub(1)))?;
            }
            cur = p;
        }
        if old.present() {
            self.meta.arena_live =
                self.meta.arena_live.saturating_sub(old.len.saturating_add(LEAF_RECORD_HEADER as u32));
        }
        self.put_leaf(l, LeafSlot::BLANK)?;
        self.invalidate(node)
    }

    /// Changes the number of leaves to `n` (logged, once, while staging).
    fn resize(&mut self, n: u32) -> Result<(), TreeError> {
        let old = self.meta.n_leaves;
        if undo_entries(self.meta, self.arena).any(|e| matches!(e, Undo::Size(_))) {
            self.meta.n_leaves = n;
            return Ok(());
        }
        self.log(UNDO_SIZE, 0, &|out| {
            let mut w = Writer::new(out);
            let _ = w.write_u32(old);
        })?;
        self.meta.n_leaves = n;
        Ok(())
    }

    /// Doubles the tree: the old tree becomes the left subtree of a new blank
    /// root (§7.7).
    fn extend(&mut self) -> Result<(), TreeError> {
        let n = if self.meta.n_leaves == 0 { 1 } else { self.meta.n_leaves.checked_mul(2).ok_or(TreeError::CapacityExceeded(Capacity::Leaves))? };
        let cap_leaves = u32::try_from(self.leaves.len()).unwrap_or(u32::MAX);
        let cap_parents = u32::try_from(self.parents.len()).unwrap_or(u32::MAX);
        if n > cap_leaves || n.saturating_sub(1) > cap_parents {
            return Err(TreeError::CapacityExceeded(Capacity::Leaves));
        }
        // Slots beyond the tree are blank (cleared on truncation and on
        // discarding a stage that extended the tree).
        self.resize(n)
    }

    /// Undoes [`Self::extend`] from `saved` after the new leaf failed to be
    /// set: a failed operation leaves the tree as it was. While staging,
    /// `set_leaf` may fail on the undo log after writing the leaf's slot
    /// (and marking parents logged): every slot past the old tree is blank
    /// again and its entries (all logged since `saved`: the size, the new
    /// leaf and its new ancestors) are dropped, or the leaf stayed in its
    /// slot past the tree, not blanked by a discard. Outside a stage only
    /// the arena's compaction may have happened: it stays.
    fn undo_extend(&mut self, saved: TreeMeta) {
        let old_width = tree_math::node_width(saved.n_leaves).unwrap_or(0);
        let new_width = tree_math::node_width(self.meta.n_leaves).unwrap_or(0);
        for x in old_width..new_width {
            match NodeIndex(x).leaf() {
                Some(l) => self.write_leaf_slot(l.0, LeafSlot::BLANK),
                None => self.write_parent_slot(x, ParentSlot::BLANK),
            }
        }
        let now = *self.meta;
        *self.meta = TreeMeta { key_index: now.key_index, ..saved };
        if !now.staging {
            self.meta.arena_used = now.arena_used;
            self.meta.arena_live = now.arena_live;
        }
    }

    /// Halves the tree while its right half is all blank (§7.7).
    fn truncate(&mut self) -> Result<(), TreeError> {
        let mut n = self.meta.n_leaves;
        while n > 1 {
            let half = n / 2;
            if (half..n).any(|i| !self.is_blank(NodeIndex(i.saturating_mul(2)))) {
                break;
            }
            // All leaves on the right are blank; so are their parents in a
            // valid tree: blank them to be sure (logged while staging). The
            // root is discarded "whether or not [it] is blank" (§7.7), and
            // with it its unmerged_leaves (§7.1): a joined tree may hold a
            // non-blank root over a blank right half, listing leaves of the
            // left half that keep their bits otherwise, and a regrown
            // parent at that node would list them again.
            let old_width = tree_math::node_width(n).unwrap_or(0);
            let new_width = tree_math::node_width(half).unwrap_or(0);
            for x in (new_width..old_width).map(NodeIndex).filter(|x| !x.is_leaf()) {
                if !self.is_blank(x) {
                    self.blank_parent(x)?;
                }
            }
            n = half;
        }
        if n == 1 && self.is_blank(NodeIndex(0)) {
            n = 0;
        }
        if n != self.meta.n_leaves {
            self.resize(n)?;
        }
        Ok(())
    }

    /// Adds a leaf (§7.7, Add proposal §12.1.1): the leftmost blank leaf, or
    /// a new one after extending the tree; it becomes unmerged at every
    /// non-blank ancestor.
    pub fn add_leaf(&mut self, bytes: &[u8]) -> Result<LeafIndex, TreeError> {
        self.add_leaf_after(bytes, LeafIndex(0))
    }

    /// [`Self::add_leaf`] when every leaf left of `first` is known to be
    /// non-blank (the next of a Commit's Adds starts after the previous
    /// one's leaf: a Commit of N Adds looks at each leaf once, not N times).
    pub fn add_leaf_after(&mut self, bytes: &[u8], first: LeafIndex) -> Result<LeafIndex, TreeError> {
        let free = (first.0..self.meta.n_leaves).map(LeafIndex).find(|l| self.leaf(*l).is_some_and(|s| !s.present()));
        let l = match free {
            Some(l) => l,
            None => {
                let l = LeafIndex(self.meta.n_leaves);
                let saved = *self.meta;
                self.extend()?;
                if let Err(e) = self.set_leaf(l, bytes) {
                    self.undo_extend(saved);
                    return Err(e);
                }
                self.mark_unmerged_path(l)?;
                return Ok(l);
            }
        };
        self.set_leaf(l, bytes)?;
        self.mark_unmerged_path(l)?;
        Ok(l)
    }

    fn mark_unmerged_path(&mut self, l: LeafIndex) -> Result<(), TreeError> {
        if let Some(s) = self.leaf(l).copied() {
            self.put_leaf(l, LeafSlot { unmerged: 0, ..s })?;
        }
        let mut cur = l.node().ok_or(TreeError::InvalidLeaf)?;
        while let Some(p) = tree_math::parent(cur, self.meta.n_leaves) {
            if !self.is_blank(p) {
                self.add_unmerged(l, p)?;
            }
            cur = p;
        }
        Ok(())
    }

    /// Replaces leaf `l` (Update proposal, §12.1.2): new leaf, blank direct path.
    pub fn update_leaf(&mut self, l: LeafIndex, bytes: &[u8]) -> Result<(), TreeError> {
        if self.leaf(l).is_none_or(|s| !s.present()) {
            return Err(TreeError::InvalidLeaf);
        }
        self.set_leaf(l, bytes)?;
        self.blank_direct_path(l)
    }

    /// Removes leaf `l` (Remove proposal, §12.1.3): blank it and its direct
    /// path, then truncate.
    pub fn remove_leaf(&mut self, l: LeafIndex) -> Result<(), TreeError> {
        if self.leaf(l).is_none_or(|s| !s.present()) {
            return Err(TreeError::InvalidLeaf);
        }
        self.blank_leaf(l)?;
        self.blank_direct_path(l)?;
        self.truncate()
    }

    /// Replaces the whole tree by the decoded `ratchet_tree` (§12.4.3.3),
    /// checking its structure: node types, key lengths, unmerged lists sorted
    /// and consistent (§12.4.3.1). Signatures, parent hashes and the tree hash
    /// are checked by [`super::validate`].
    pub fn import(&mut self, suite: CipherSuite, view: &RatchetTreeView<'_>) -> Result<(), TreeError> {
        let len = view.len();
        if len == 0 {
            return Err(TreeError::InvalidTreeSize);
        }
        // Smallest power of two whose width holds every node sent.
        let mut n = 1u32;
        while tree_math::node_width(n).is_some_and(|w| w < len) {
            n = n.checked_mul(2).ok_or(TreeError::InvalidTreeSize)?;
        }
        let cap_leaves = u32::try_from(self.leaves.len()).unwrap_or(u32::MAX);
        if n > cap_leaves || n.saturating_sub(1) > u32::try_from(self.parents.len()).unwrap_or(u32::MAX) {
            return Err(TreeError::CapacityExceeded(Capacity::Leaves));
        }
        self.clear(suite);
        self.meta.n_leaves = n;
        let mut last_present = false;
        for (i, node) in (0u32..).zip(view.iter()) {
            let x = NodeIndex(i);
            last_present = node.is_some();
            match (node, x.leaf()) {
                (None, _) => {}
                (Some(Node::Leaf(leaf)), Some(l)) => self.set_leaf(l, leaf.as_bytes())?,
                (Some(Node::Parent(p)), None) => self.import_parent(x, &p)?,
                _ => return Err(TreeError::WrongNodeType),
            }
        }
        if !last_present {
            return Err(TreeError::InvalidTreeSize);
        }
        self.check_unmerged()?;
        Ok(())
    }

    /// Sets parent `x` from its stored form, with its unmerged leaves.
    pub(crate) fn import_parent_record(&mut self, x: NodeIndex, p: &ParentRecord<'_>) -> Result<(), TreeError> {
        self.set_parent(x, p.encryption_key, p.parent_hash)?;
        for l in p.unmerged_leaves(x)? {
            self.add_unmerged(l, x)?;
        }
        Ok(())
    }

    pub(crate) fn import_parent(&mut self, x: NodeIndex, p: &ParentNode<'_>) -> Result<(), TreeError> {
        self.set_parent(x, p.encryption_key, p.parent_hash)?;
        let (first, count) = leaf_span(x);
        let mut prev: Option<u32> = None;
        for l in p.unmerged_leaves.iter() {
            if prev.is_some_and(|q| l <= q) {
                return Err(TreeError::UnmergedNotSorted);
            }
            prev = Some(l);
            if l < first || l >= first.saturating_add(count) {
                return Err(TreeError::UnmergedNotDescendant);
            }
            self.add_unmerged(LeafIndex(l), x)?;
        }
        Ok(())
    }

    /// §12.4.3.1: every unmerged leaf is a non-blank descendant, and every
    /// non-blank node between it and the parent lists it too.
    pub(crate) fn check_unmerged(&self) -> Result<(), TreeError> {
        for i in 0..self.meta.n_leaves {
            let l = LeafIndex(i);
            let Some(slot) = self.leaf(l) else { continue };
            if slot.unmerged == 0 {
                continue;
            }
            if !slot.present() {
                return Err(TreeError::UnmergedNotDescendant);
            }
            // The highest level at which it is unmerged: all non-blank nodes
            // below it on the path must have it too.
            let top = 32 - slot.unmerged.leading_zeros();
            let mut cur = l.node().ok_or(TreeError::InvalidLeaf)?;
            while let Some(p) = tree_math::parent(cur, self.meta.n_leaves) {
                let k = tree_math::level(p);
                if k > top {
                    break;
                }
                if !self.is_blank(p) && !self.is_unmerged_at(l, p) {
                    return Err(TreeError::UnmergedInconsistent);
                }
                cur = p;
            }
        }
        Ok(())
    }

    /// Writes the tree as `optional<Node> ratchet_tree<V>` (§12.4.3.3),
    /// without trailing blank nodes.
    pub fn export(&self, w: &mut Writer<'_>) -> Result<(), TreeError> {
        let width = tree_math::node_width(self.meta.n_leaves).unwrap_or(0);
        let last = (0..width).rev().find(|x| !self.is_blank(NodeIndex(*x)));
        let end = last.map_or(0, |x| x.saturating_add(1));
        w.write_vector(|w| {
            for x in 0..end {
                self.write_optional_node(w, NodeIndex(x))?;
            }
            Ok(())
        })?;
        Ok(())
    }

    /// Writes `optional<Node>` for node `x`.
    fn write_optional_node(&self, w: &mut Writer<'_>, x: NodeIndex) -> Result<(), CodecError> {
        if self.is_blank(x) {
            return w.write_u8(0);
        }
        w.write_u8(1)?;
        match x.leaf() {
            Some(l) => {
                w.write_u8(1)?;
                w.write_bytes(self.leaf_bytes(l).ok_or(CodecError::InvalidValue)?)
            }
            None => {
                w.write_u8(2)?;
                self.write_parent_node(w, x)
            }
        }
    }

    /// Writes the ParentNode at `p` (§7.1).
    pub(crate) fn write_parent_node(&self, w: &mut Writer<'_>, p: NodeIndex) -> Result<(), CodecError> {
        let slot = self.parent(p).filter(|s| s.present).ok_or(CodecError::InvalidValue)?;
        w.write_opaque(slot.encryption_key.as_bytes())?;
        w.write_opaque(slot.parent_hash())?;
        let count = usize::try_from(slot.unmerged_count()).map_err(|_| CodecError::VarintTooLarge)?;
        w.write_varint(count.checked_mul(4).ok_or(CodecError::VarintTooLarge)?)?;
        for l in self.unmerged_leaves(p) {
            w.write_u32(l.0)?;
        }
        Ok(())
    }
}

/// Reads a whole `optional<Node> ratchet_tree<V>` encoding.
pub fn decode_tree(bytes: &[u8]) -> Result<RatchetTreeView<'_>, CodecError> {
    let mut r = Reader::new(bytes);
    let v = RatchetTreeView::decode(&mut r)?;
    r.finish()?;
    Ok(v)
}

/// A ratchet tree for up to `N` leaves whose leaf encodings (and the undo
/// log of one staged Commit) fit in `ARENA` bytes.
pub struct RatchetTree<const N: usize, const ARENA: usize> {
    meta: TreeMeta,
    leaves: [LeafSlot; N],
    parents: [ParentSlot; N],
    arena: [u8; ARENA],
    index: [[u32; key_index::WAYS]; N],
    hashes: [[u8; HASH_CACHE_PER_LEAF]; N],
}

impl<const N: usize, const ARENA: usize> Clone for RatchetTree<N, ARENA> {
    fn clone(&self) -> Self {
        Self {
            meta: self.meta,
            leaves: self.leaves,
            parents: self.parents,
            arena: self.arena,
            index: self.index,
            hashes: self.hashes,
        }
    }

    /// Copies in place, without a whole tree passing through the stack.
    fn clone_from(&mut self, source: &Self) {
        self.meta = source.meta;
        self.leaves.copy_from_slice(&source.leaves);
        self.parents.copy_from_slice(&source.parents);
        self.arena.copy_from_slice(&source.arena);
        self.index.copy_from_slice(&source.index);
        self.hashes.copy_from_slice(&source.hashes);
    }
}

impl<const N: usize, const ARENA: usize> RatchetTree<N, ARENA> {
    /// An empty tree, usable in `const` and `static` items.
    pub const EMPTY: Self = Self {
        meta: TreeMeta::new(CipherSuite::PLACEHOLDER),
        leaves: [LeafSlot::BLANK; N],
        parents: [ParentSlot::BLANK; N],
        arena: [0; ARENA],
        index: [[0; key_index::WAYS]; N],
        hashes: [[0; HASH_CACHE_PER_LEAF]; N],
    };

    /// A read-only view of the tree before a staged Commit (the tree itself
    /// when none is).
    pub fn old(&self) -> TreeView<'_> {
        TreeView { meta: &self.meta, leaves: &self.leaves, arena: &self.arena, before_stage: true }
    }

    /// A read-only view of the tree as it is (staged changes included).
    pub fn view(&self) -> TreeView<'_> {
        TreeView { meta: &self.meta, leaves: &self.leaves, arena: &self.arena, before_stage: false }
    }

    /// The tree's storage, for the algorithms (the key index rebuilt first
    /// if it is out of step: after `EMPTY` or a change without it).
    #[inline]
    pub fn slices(&mut self) -> TreeSlices<'_> {
        TreeSlices::new(&mut self.meta, &mut self.leaves, &mut self.parents, &mut self.arena)
            .with_key_index(self.index.as_flattened_mut())
            .with_hash_cache(self.hashes.as_flattened_mut())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stage is begun only when none is, merged or discarded only when
    /// one is; out of turn, nothing changes.
    #[test]
    fn staging_out_of_turn() {
        let mut tree = RatchetTree::<4, 256>::EMPTY;
        let mut t = tree.slices();
        assert_eq!(t.merge_stage(), Err(TreeError::Staging));
        assert_eq!(t.discard_stage(), Err(TreeError::Staging));
        assert!(!t.is_staging());
        assert_eq!(t.begin_stage(), Ok(()));
        assert_eq!(t.begin_stage(), Err(TreeError::Staging));
        assert!(t.is_staging());
        assert_eq!(t.discard_stage(), Ok(()));
        assert_eq!(t.begin_stage(), Ok(()));
        assert_eq!(t.merge_stage(), Ok(()));
        assert_eq!(t.merge_stage(), Err(TreeError::Staging));
        assert!(!t.is_staging());
    }
}
