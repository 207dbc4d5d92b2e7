//! Ratchet tree storage and its structural operations (RFC 9420 §4, §7.7):
//! add (leftmost blank leaf or extend), update, remove (blank the direct path,
//! truncate), unmerged leaves, resolution, filtered direct path, import from
//! and export to the `ratchet_tree` encoding.
//!
//! The storage is caller-owned slices ([`TreeSlices`]), so one copy of this
//! code serves every capacity; [`RatchetTree`] is the const-generic container.
//!
//! * Leaves keep their keys (used by every algorithm) in fixed slots and their
//!   whole encoded LeafNode in a byte arena: a group pays for the credentials
//!   it has, not for the largest one allowed.
//! * Unmerged leaves are a bit mask per leaf (bit `k - 1` set: unmerged at
//!   its ancestor of level `k`), so every parent's sorted list (§7.1) is
//!   implied by the leaves under it, with no per-parent capacity.
//! * Each node caches its tree hash (§7.8); a change invalidates the node and
//!   its ancestors only.

use super::node::{Node, ParentNode, RatchetTreeView};
use crate::capacity::Capacity;
use crate::codec::{CodecError, Decode, Reader, Writer};
use crate::crypto::hpke::HpkePublicKey;
use crate::crypto::signature::SignaturePublicKey;
use crate::crypto::{CipherSuite, CryptoError, MAX_HASH_LEN};
use crate::leaf_node::{LeafNode, LeafNodeError};
use crate::tree_math::{self, LeafIndex, NodeIndex};

/// Bytes of arena bookkeeping per stored leaf (leaf index and length).
pub const LEAF_RECORD_HEADER: usize = 8;
/// Longest direct path of any tree this code handles (2^32 leaves).
pub const MAX_DEPTH: usize = 32;
const DEAD: u32 = u32::MAX;

/// Why a tree operation failed. The tree is unchanged when one is returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum TreeError {
    /// More leaves than the capacity ([`Capacity::Leaves`]), or leaf
    /// encodings larger than the arena ([`Capacity::TreeArena`]).
    CapacityExceeded(Capacity),
    /// A node's encoding is malformed.
    Codec(CodecError),
    /// A leaf position holds a parent node or the reverse.
    WrongNodeType,
    /// A public key has the wrong length for the suite.
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
    /// A cryptographic operation failed.
    Crypto(CryptoError),
}

impl core::fmt::Display for TreeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::CapacityExceeded(c) => write!(f, "ratchet tree capacity exceeded: {c}"),
            Self::Codec(e) => write!(f, "malformed node: {e}"),
            Self::WrongNodeType => f.write_str("a leaf position holds a parent node or the reverse"),
            Self::InvalidKey => f.write_str("public key of the wrong length for the cipher suite"),
            Self::InvalidTreeSize => f.write_str("tree is empty, ends in a blank node, or is too long"),
            Self::InvalidLeaf => f.write_str("leaf outside the tree, or blank where a member is required"),
            Self::UnmergedNotSorted => f.write_str("unmerged_leaves not strictly increasing"),
            Self::UnmergedNotDescendant => f.write_str("unmerged leaf blank or not under its parent"),
            Self::UnmergedInconsistent => f.write_str("unmerged leaf missing from a node between it and its parent"),
            Self::InvalidParentHash => f.write_str("parent hash longer than the hash output"),
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

/// A cached hash value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HashCache {
    pub(crate) bytes: [u8; MAX_HASH_LEN],
    pub(crate) valid: bool,
}

impl HashCache {
    const EMPTY: Self = Self { bytes: [0; MAX_HASH_LEN], valid: false };
}

/// A leaf's slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeafSlot {
    pub(crate) present: bool,
    pub(crate) encryption_key: HpkePublicKey,
    pub(crate) signature_key: SignaturePublicKey,
    /// Arena offset of the record holding the encoded LeafNode.
    pub(crate) offset: u32,
    pub(crate) len: u32,
    /// Bit `k - 1` set: unmerged at the ancestor of level `k`.
    pub(crate) unmerged: u32,
    pub(crate) hash: HashCache,
}

impl LeafSlot {
    /// A blank leaf.
    pub const BLANK: Self = Self {
        present: false,
        encryption_key: HpkePublicKey::EMPTY,
        signature_key: SignaturePublicKey::EMPTY,
        offset: 0,
        len: 0,
        unmerged: 0,
        hash: HashCache::EMPTY,
    };
}

/// A parent node's slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParentSlot {
    pub(crate) present: bool,
    pub(crate) encryption_key: HpkePublicKey,
    pub(crate) parent_hash: [u8; MAX_HASH_LEN],
    pub(crate) parent_hash_len: u8,
    /// How many leaves below are unmerged here.
    pub(crate) unmerged_count: u32,
    pub(crate) hash: HashCache,
}

impl ParentSlot {
    /// A blank parent.
    pub const BLANK: Self = Self {
        present: false,
        encryption_key: HpkePublicKey::EMPTY,
        parent_hash: [0; MAX_HASH_LEN],
        parent_hash_len: 0,
        unmerged_count: 0,
        hash: HashCache::EMPTY,
    };

    pub(crate) fn parent_hash(&self) -> &[u8] {
        self.parent_hash.get(..usize::from(self.parent_hash_len)).unwrap_or(&[])
    }
}

/// The tree's state besides its storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TreeMeta {
    pub(crate) suite: CipherSuite,
    pub(crate) n_leaves: u32,
    pub(crate) arena_used: u32,
    /// Bytes of live records in the arena (headers included).
    pub(crate) arena_live: u32,
}

impl TreeMeta {
    /// The state of an empty tree of `suite`.
    pub const fn new(suite: CipherSuite) -> Self {
        Self { suite, n_leaves: 0, arena_used: 0, arena_live: 0 }
    }
}

/// Caller-owned storage of a ratchet tree.
#[derive(Debug)]
pub struct TreeSlices<'s> {
    /// The tree's state.
    pub meta: &'s mut TreeMeta,
    /// One slot per leaf (the capacity in leaves).
    pub leaves: &'s mut [LeafSlot],
    /// One slot per parent node, indexed by `node / 2` (capacity - 1 used).
    pub parents: &'s mut [ParentSlot],
    /// Encoded leaf nodes.
    pub arena: &'s mut [u8],
}

/// A read-only view of a ratchet tree's leaves: who is in the group.
#[derive(Clone, Copy, Debug)]
pub struct TreeView<'s> {
    meta: &'s TreeMeta,
    leaves: &'s [LeafSlot],
    arena: &'s [u8],
}

impl<'s> TreeView<'s> {
    /// Number of leaves (a power of two, or 0 for an empty tree).
    pub fn n_leaves(&self) -> u32 {
        self.meta.n_leaves
    }

    /// The encoded LeafNode of leaf `i`, if not blank.
    pub fn leaf_bytes(&self, i: LeafIndex) -> Option<&'s [u8]> {
        if i.0 >= self.meta.n_leaves {
            return None;
        }
        let slot = self.leaves.get(usize::try_from(i.0).ok()?).filter(|s| s.present)?;
        let start = usize::try_from(slot.offset).ok()?.checked_add(LEAF_RECORD_HEADER)?;
        let end = start.checked_add(usize::try_from(slot.len).ok()?)?;
        self.arena.get(start..end)
    }

    /// The LeafNode of leaf `i`, if not blank.
    pub fn leaf_node(&self, i: LeafIndex) -> Option<LeafNode<'s>> {
        LeafNode::decode_exact(self.leaf_bytes(i)?).ok()
    }
}

/// The leaves under `node`: `(first leaf index, count)`. A node of level `k`
/// is `prefix << (k + 1) | (2^k - 1)`; its leaves start at `prefix << k`.
pub(crate) fn leaf_span(node: NodeIndex) -> (u32, u32) {
    let k = tree_math::level(node);
    let count = 1u32.checked_shl(k).unwrap_or(0);
    let first = node.0.checked_shr(k + 1).unwrap_or(0).checked_shl(k).unwrap_or(0);
    (first, count)
}

fn read_u32_le(bytes: &[u8], at: usize) -> Option<u32> {
    let b: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(b))
}

impl<'s> TreeSlices<'s> {
    /// Sets up an empty tree of `suite`.
    pub fn clear(&mut self, suite: CipherSuite) {
        *self.meta = TreeMeta::new(suite);
        self.leaves.iter_mut().for_each(|l| *l = LeafSlot::BLANK);
        self.parents.iter_mut().for_each(|p| *p = ParentSlot::BLANK);
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

    pub(crate) fn leaf(&self, i: LeafIndex) -> Option<&LeafSlot> {
        if i.0 >= self.meta.n_leaves {
            return None;
        }
        self.leaves.get(usize::try_from(i.0).ok()?)
    }

    pub(crate) fn leaf_mut(&mut self, i: LeafIndex) -> Option<&mut LeafSlot> {
        if i.0 >= self.meta.n_leaves {
            return None;
        }
        self.leaves.get_mut(usize::try_from(i.0).ok()?)
    }

    pub(crate) fn parent(&self, n: NodeIndex) -> Option<&ParentSlot> {
        if n.is_leaf() || tree_math::node_width(self.meta.n_leaves).is_none_or(|w| n.0 >= w) {
            return None;
        }
        self.parents.get(usize::try_from(n.0 >> 1).ok()?)
    }

    pub(crate) fn parent_mut(&mut self, n: NodeIndex) -> Option<&mut ParentSlot> {
        if n.is_leaf() || tree_math::node_width(self.meta.n_leaves).is_none_or(|w| n.0 >= w) {
            return None;
        }
        self.parents.get_mut(usize::try_from(n.0 >> 1).ok()?)
    }

    /// True if node `n` is blank (or outside the tree).
    pub fn is_blank(&self, n: NodeIndex) -> bool {
        match n.leaf() {
            Some(l) => !self.leaf(l).is_some_and(|s| s.present),
            None => !self.parent(n).is_some_and(|s| s.present),
        }
    }

    /// The encoded LeafNode of leaf `i`, if not blank.
    pub fn leaf_bytes(&self, i: LeafIndex) -> Option<&[u8]> {
        self.view().leaf_bytes(i)
    }

    /// A read-only view of this tree.
    pub fn view(&self) -> TreeView<'_> {
        TreeView { meta: self.meta, leaves: self.leaves, arena: self.arena }
    }

    /// The LeafNode of leaf `i`, if not blank.
    pub fn leaf_node(&self, i: LeafIndex) -> Option<LeafNode<'_>> {
        LeafNode::decode_exact(self.leaf_bytes(i)?).ok()
    }

    /// The HPKE public key of node `n`, if not blank.
    pub fn encryption_key(&self, n: NodeIndex) -> Option<&[u8]> {
        match n.leaf() {
            Some(l) => self.leaf(l).filter(|s| s.present).map(|s| s.encryption_key.as_bytes()),
            None => self.parent(n).filter(|s| s.present).map(|s| s.encryption_key.as_bytes()),
        }
    }

    /// The signature key of leaf `i`, if not blank.
    pub fn signature_key(&self, i: LeafIndex) -> Option<&[u8]> {
        self.leaf(i).filter(|s| s.present).map(|s| s.signature_key.as_bytes())
    }

    /// True if leaf `l` is unmerged at its ancestor `p`.
    pub fn is_unmerged_at(&self, l: LeafIndex, p: NodeIndex) -> bool {
        let k = tree_math::level(p);
        k > 0 && self.leaf(l).is_some_and(|s| s.unmerged & (1u32 << (k - 1).min(31)) != 0)
    }

    /// The unmerged leaves of parent `p`, in increasing order.
    pub fn unmerged_leaves(&self, p: NodeIndex) -> impl Iterator<Item = LeafIndex> + '_ {
        let (first, count) = leaf_span(p);
        let has_any = self.parent(p).is_some_and(|s| s.present && s.unmerged_count > 0);
        let count = if has_any { count } else { 0 };
        (first..first.saturating_add(count)).map(LeafIndex).filter(move |l| self.is_unmerged_at(*l, p))
    }

    /// Calls `f` on each node of the resolution of `n` (§4.1), in order,
    /// skipping leaves for which `exclude` is true.
    pub fn for_each_in_resolution(
        &self,
        n: NodeIndex,
        exclude: &dyn Fn(LeafIndex) -> bool,
        f: &mut dyn FnMut(NodeIndex),
    ) {
        if let Some(l) = n.leaf() {
            if !self.is_blank(n) && !exclude(l) {
                f(n);
            }
            return;
        }
        if !self.is_blank(n) {
            f(n);
            for l in self.unmerged_leaves(n) {
                if let Some(node) = l.node().filter(|_| !exclude(l)) {
                    f(node);
                }
            }
            return;
        }
        if let (Some(a), Some(b)) = (tree_math::left(n), tree_math::right(n)) {
            self.for_each_in_resolution(a, exclude, f);
            self.for_each_in_resolution(b, exclude, f);
        }
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
        let mut empty = true;
        self.for_each_in_resolution(n, exclude, &mut |_| empty = false);
        empty
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

    /// Marks the cached tree hash of `n` and of its ancestors stale.
    pub(crate) fn invalidate(&mut self, n: NodeIndex) {
        let width = self.meta.n_leaves;
        let mut cur = Some(n);
        while let Some(x) = cur {
            match x.leaf() {
                Some(l) => {
                    if let Some(s) = self.leaf_mut(l) {
                        s.hash.valid = false;
                    }
                }
                None => {
                    if let Some(s) = self.parent_mut(x) {
                        s.hash.valid = false;
                    }
                }
            }
            cur = tree_math::parent(x, width);
        }
    }

    /// Blanks parent `p`, dropping its unmerged leaves.
    pub(crate) fn blank_parent(&mut self, p: NodeIndex) {
        let k = tree_math::level(p);
        let had_unmerged = self.parent(p).is_some_and(|s| s.unmerged_count > 0);
        if had_unmerged && k > 0 {
            let (first, count) = leaf_span(p);
            let bit = 1u32 << (k - 1).min(31);
            for i in first..first.saturating_add(count) {
                if let Some(s) = self.leaf_mut(LeafIndex(i)) {
                    s.unmerged &= !bit;
                }
            }
        }
        if let Some(s) = self.parent_mut(p) {
            *s = ParentSlot::BLANK;
        }
        self.invalidate(p);
    }

    /// Blanks the direct path of leaf `l` (§7.7, §7.5).
    pub fn blank_direct_path(&mut self, l: LeafIndex) -> Result<(), TreeError> {
        let mut cur = l.node().ok_or(TreeError::InvalidLeaf)?;
        while let Some(p) = tree_math::parent(cur, self.meta.n_leaves) {
            self.blank_parent(p);
            cur = p;
        }
        Ok(())
    }

    /// Sets parent `p` to a fresh node with `encryption_key`, no unmerged
    /// leaves, and `parent_hash`.
    pub fn set_parent(&mut self, p: NodeIndex, encryption_key: &[u8], parent_hash: &[u8]) -> Result<(), TreeError> {
        let key = HpkePublicKey::for_suite(self.suite(), encryption_key).map_err(|_| TreeError::InvalidKey)?;
        let mut ph = [0u8; MAX_HASH_LEN];
        ph.get_mut(..parent_hash.len()).ok_or(TreeError::InvalidParentHash)?.copy_from_slice(parent_hash);
        if self.parent(p).is_none() {
            return Err(TreeError::InvalidLeaf);
        }
        self.blank_parent(p);
        let slot = self.parent_mut(p).ok_or(TreeError::InvalidLeaf)?;
        slot.present = true;
        slot.encryption_key = key;
        slot.parent_hash = ph;
        slot.parent_hash_len = parent_hash.len() as u8;
        Ok(())
    }

    /// Replaces the parent hash of non-blank parent `p`.
    pub(crate) fn set_parent_hash(&mut self, p: NodeIndex, parent_hash: &[u8]) -> Result<(), TreeError> {
        let slot = self.parent_mut(p).filter(|s| s.present).ok_or(TreeError::InvalidLeaf)?;
        slot.parent_hash
            .get_mut(..parent_hash.len())
            .ok_or(TreeError::InvalidParentHash)?
            .copy_from_slice(parent_hash);
        slot.parent_hash_len = parent_hash.len() as u8;
        self.invalidate(p);
        Ok(())
    }

    /// Marks leaf `l` unmerged at parent `p`.
    fn add_unmerged(&mut self, l: LeafIndex, p: NodeIndex) -> Result<(), TreeError> {
        let k = tree_math::level(p);
        if k == 0 || k > 32 || self.is_unmerged_at(l, p) {
            return Err(TreeError::UnmergedNotSorted);
        }
        let slot = self.parent_mut(p).filter(|s| s.present).ok_or(TreeError::UnmergedNotDescendant)?;
        slot.unmerged_count = slot.unmerged_count.saturating_add(1);
        self.leaf_mut(l).ok_or(TreeError::InvalidLeaf)?.unmerged |= 1u32 << (k - 1);
        self.invalidate(p);
        Ok(())
    }

    /// Compacts the arena: live records move down in order, dead ones vanish.
    fn compact(&mut self) {
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
            if idx != DEAD {
                if !crate::codec::move_within(self.arena, read..read + total, write) {
                    break;
                }
                if let Some(slot) = self.leaves.get_mut(usize::try_from(idx).unwrap_or(usize::MAX)) {
                    slot.offset = write as u32;
                }
                write += total;
            }
            read += total;
        }
        self.meta.arena_used = write as u32;
    }

    /// Stores `bytes` as the encoding of leaf `l` (appending to the arena,
    /// compacting first if needed) and returns the record offset.
    fn store_leaf_bytes(&mut self, l: LeafIndex, bytes: &[u8]) -> Result<u32, TreeError> {
        let len = u32::try_from(bytes.len()).map_err(|_| TreeError::CapacityExceeded(Capacity::TreeArena))?;
        let need = bytes.len().checked_add(LEAF_RECORD_HEADER).ok_or(TreeError::CapacityExceeded(Capacity::TreeArena))?;
        let mut used = usize::try_from(self.meta.arena_used).map_err(|_| TreeError::CapacityExceeded(Capacity::TreeArena))?;
        if used.checked_add(need).is_none_or(|end| end > self.arena.len()) {
            self.compact();
            used = usize::try_from(self.meta.arena_used).map_err(|_| TreeError::CapacityExceeded(Capacity::TreeArena))?;
        }
        let end = used.checked_add(need).ok_or(TreeError::CapacityExceeded(Capacity::TreeArena))?;
        let rec = self.arena.get_mut(used..end).ok_or(TreeError::CapacityExceeded(Capacity::TreeArena))?;
        let (header, body) = rec.split_at_mut(LEAF_RECORD_HEADER);
        let (h_idx, h_len) = header.split_at_mut(4);
        h_idx.copy_from_slice(&l.0.to_le_bytes());
        h_len.copy_from_slice(&len.to_le_bytes());
        body.copy_from_slice(bytes);
        self.meta.arena_used = u32::try_from(end).map_err(|_| TreeError::CapacityExceeded(Capacity::TreeArena))?;
        self.meta.arena_live = self.meta.arena_live.saturating_add(u32::try_from(need).unwrap_or(u32::MAX));
        u32::try_from(used).map_err(|_| TreeError::CapacityExceeded(Capacity::TreeArena))
    }

    /// Marks leaf `l`'s arena record dead.
    fn free_leaf_bytes(&mut self, l: LeafIndex) {
        let Some(slot) = self.leaf(l).filter(|s| s.present).copied() else { return };
        let off = usize::try_from(slot.offset).unwrap_or(usize::MAX);
        if let Some(h) = self.arena.get_mut(off..).and_then(|a| a.first_chunk_mut::<4>()) {
            *h = DEAD.to_le_bytes();
        }
        let freed = slot.len.saturating_add(LEAF_RECORD_HEADER as u32);
        self.meta.arena_live = self.meta.arena_live.saturating_sub(freed);
    }

    /// Arena bytes a leaf encoding of `len` bytes needs.
    pub fn arena_bytes_needed(len: usize) -> usize {
        len.saturating_add(LEAF_RECORD_HEADER)
    }

    /// Free arena bytes (after compaction).
    pub fn arena_free(&self) -> usize {
        self.arena.len().saturating_sub(usize::try_from(self.meta.arena_live).unwrap_or(usize::MAX))
    }

    /// Sets leaf `l` to the LeafNode encoded in `bytes` (already validated by
    /// the caller), keeping its unmerged bits.
    pub fn set_leaf(&mut self, l: LeafIndex, bytes: &[u8]) -> Result<(), TreeError> {
        let leaf = LeafNode::decode_exact(bytes)?;
        // Keys of the suite's lengths only (RFC 9420 §5.1.1).
        let suite = self.suite();
        let encryption_key =
            HpkePublicKey::for_suite(suite, leaf.fields.encryption_key).map_err(|_| TreeError::InvalidKey)?;
        let signature_key =
            SignaturePublicKey::for_suite(suite, leaf.fields.signature_key).map_err(|_| TreeError::InvalidKey)?;
        if self.leaf(l).is_none() {
            return Err(TreeError::InvalidLeaf);
        }
        // Store first: if the arena is full, nothing changed.
        let old = self.leaf(l).copied();
        let room = self.arena_free()
            + old.filter(|s| s.present).map_or(0, |s| Self::arena_bytes_needed(s.len as usize));
        if Self::arena_bytes_needed(bytes.len()) > room {
            return Err(TreeError::CapacityExceeded(Capacity::TreeArena));
        }
        self.free_leaf_bytes(l);
        let offset = self.store_leaf_bytes(l, bytes)?;
        let slot = self.leaf_mut(l).ok_or(TreeError::InvalidLeaf)?;
        slot.present = true;
        slot.encryption_key = encryption_key;
        slot.signature_key = signature_key;
        slot.offset = offset;
        slot.len = bytes.len() as u32;
        self.invalidate(l.node().ok_or(TreeError::InvalidLeaf)?);
        Ok(())
    }

    /// Blanks leaf `l` and removes it from every unmerged list.
    pub fn blank_leaf(&mut self, l: LeafIndex) -> Result<(), TreeError> {
        let width = self.meta.n_leaves;
        let node = l.node().ok_or(TreeError::InvalidLeaf)?;
        let mask = self.leaf(l).ok_or(TreeError::InvalidLeaf)?.unmerged;
        let mut cur = node;
        while let Some(p) = tree_math::parent(cur, width) {
            let k = tree_math::level(p);
            let unmerged_here = k > 0 && mask & (1u32 << (k - 1).min(31)) != 0;
            if let Some(s) = self.parent_mut(p).filter(|_| unmerged_here) {
                s.unmerged_count = s.unmerged_count.saturating_sub(1);
            }
            cur = p;
        }
        self.free_leaf_bytes(l);
        if let Some(s) = self.leaf_mut(l) {
            *s = LeafSlot::BLANK;
        }
        self.invalidate(node);
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
        let old = self.meta.n_leaves;
        self.meta.n_leaves = n;
        for i in old..n {
            if let Some(s) = self.leaf_mut(LeafIndex(i)) {
                *s = LeafSlot::BLANK;
            }
        }
        // New parents: the new root and the right subtree's parents.
        let old_width = tree_math::node_width(old).unwrap_or(0);
        let new_width = tree_math::node_width(n).unwrap_or(0);
        let mut x = old_width;
        while x < new_width {
            if let Some(s) = self.parent_mut(NodeIndex(x)) {
                *s = ParentSlot::BLANK;
            }
            x = x.saturating_add(1);
        }
        // The old root's ancestors changed: its cached hash is still right,
        // but the new root has none yet (blank slots carry no valid hash).
        Ok(())
    }

    /// Halves the tree while its right half is all blank (§7.7).
    fn truncate(&mut self) {
        while self.meta.n_leaves > 1 {
            let half = self.meta.n_leaves / 2;
            if (half..self.meta.n_leaves).any(|i| !self.is_blank(NodeIndex(i.saturating_mul(2)))) {
                return;
            }
            // All leaves on the right are blank; their parents are blank too
            // in a valid tree, but clear them to be sure.
            let old_width = tree_math::node_width(self.meta.n_leaves).unwrap_or(0);
            let new_width = tree_math::node_width(half).unwrap_or(0);
            for x in new_width..old_width {
                if let Some(s) = self.parents.get_mut((x >> 1) as usize).filter(|_| x & 1 == 1) {
                    *s = ParentSlot::BLANK;
                }
            }
            self.meta.n_leaves = half;
        }
        if self.meta.n_leaves == 1 && self.is_blank(NodeIndex(0)) {
            self.meta.n_leaves = 0;
        }
    }

    /// Adds a leaf (§7.7, Add proposal §12.1.1): the leftmost blank leaf, or
    /// a new one after extending the tree; it becomes unmerged at every
    /// non-blank ancestor.
    pub fn add_leaf(&mut self, bytes: &[u8]) -> Result<LeafIndex, TreeError> {
        let free = (0..self.meta.n_leaves).map(LeafIndex).find(|l| self.leaf(*l).is_some_and(|s| !s.present));
        let l = match free {
            Some(l) => l,
            None => {
                let l = LeafIndex(self.meta.n_leaves);
                let saved = *self.meta;
                self.extend()?;
                if let Err(e) = self.set_leaf(l, bytes) {
                    // Undo the extension: nothing else changed.
                    *self.meta = saved;
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
        if let Some(s) = self.leaf_mut(l) {
            s.unmerged = 0;
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
        if self.leaf(l).is_none_or(|s| !s.present) {
            return Err(TreeError::InvalidLeaf);
        }
        self.set_leaf(l, bytes)?;
        self.blank_direct_path(l)
    }

    /// Removes leaf `l` (Remove proposal, §12.1.3): blank it and its direct
    /// path, then truncate.
    pub fn remove_leaf(&mut self, l: LeafIndex) -> Result<(), TreeError> {
        if self.leaf(l).is_none_or(|s| !s.present) {
            return Err(TreeError::InvalidLeaf);
        }
        self.blank_leaf(l)?;
        self.blank_direct_path(l)?;
        self.truncate();
        Ok(())
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
            if !slot.present {
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
        let count = usize::try_from(slot.unmerged_count).map_err(|_| CodecError::VarintTooLarge)?;
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

/// A ratchet tree for up to `N` leaves whose leaf encodings fit in `ARENA`
/// bytes.
pub struct RatchetTree<const N: usize, const ARENA: usize> {
    meta: TreeMeta,
    leaves: [LeafSlot; N],
    parents: [ParentSlot; N],
    arena: [u8; ARENA],
}

impl<const N: usize, const ARENA: usize> Clone for RatchetTree<N, ARENA> {
    fn clone(&self) -> Self {
        Self { meta: self.meta, leaves: self.leaves, parents: self.parents, arena: self.arena }
    }

    /// Copies in place: staging a commit copies the tree into the spare
    /// buffer without a whole tree passing through the stack.
    fn clone_from(&mut self, source: &Self) {
        self.meta = source.meta;
        self.leaves.copy_from_slice(&source.leaves);
        self.parents.copy_from_slice(&source.parents);
        let used = usize::try_from(source.meta.arena_used).unwrap_or(ARENA).min(ARENA);
        if let (Some(dst), Some(src)) = (self.arena.get_mut(..used), source.arena.get(..used)) {
            dst.copy_from_slice(src);
        }
    }
}

impl<const N: usize, const ARENA: usize> RatchetTree<N, ARENA> {
    /// An empty tree, usable in `const` and `static` items.
    pub const EMPTY: Self = Self {
        meta: TreeMeta::new(CipherSuite::PLACEHOLDER),
        leaves: [LeafSlot::BLANK; N],
        parents: [ParentSlot::BLANK; N],
        arena: [0; ARENA],
    };

    /// A read-only view of the tree.
    pub fn view(&self) -> TreeView<'_> {
        TreeView { meta: &self.meta, leaves: &self.leaves, arena: &self.arena }
    }

    /// The tree's storage, for the algorithms.
    pub fn slices(&mut self) -> TreeSlices<'_> {
        TreeSlices { meta: &mut self.meta, leaves: &mut self.leaves, parents: &mut self.parents, arena: &mut self.arena }
    }
}
