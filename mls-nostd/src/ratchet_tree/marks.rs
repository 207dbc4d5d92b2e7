//! What a store holds of a ratchet tree, node by node, and which nodes
//! changed since (issue #14: a Commit rewrites only the nodes it changed).
//!
//! Kept beside the tree (in the group), not in [`TreeSlices`], whose
//! storage callers may provide themselves. The tree's algorithms never read
//! it; the group marks the nodes a merged Commit changed, and
//! `store::snapshot` defines and uses the rest: each stored node is a record
//! in one of two versions, and a save writes a changed node into the version
//! the committed table does not name (see `store::snapshot`'s tree records).
//!
//! [`TreeSlices`]: super::tree::TreeSlices

use crate::tree_math::{self, NodeIndex};

/// The node has a record in the committed table.
pub(crate) const STORED: u8 = 1;
/// Which of its two record versions the committed table names.
pub(crate) const VERSION: u8 = 2;
/// Changed since it was stored.
pub(crate) const CHANGED: u8 = 4;
/// A record of an older version is left to remove.
pub(crate) const STALE: u8 = 8;

/// Four bits per node ([`STORED`], [`VERSION`], [`CHANGED`], [`STALE`]):
/// byte `i` holds leaf `i` (node `2i`, low bits) and node `2i + 1` (high
/// bits). All zero: nothing stored, nothing changed.
#[derive(Clone, Debug)]
pub(crate) struct NodeMarks<const N: usize> {
    bits: [u8; N],
    /// A save that changed the marks has not committed yet, or failed:
    /// what they say the store commits may not be so (a backend that rolls
    /// a failed save back takes its head back too, after the marks took
    /// its table for committed). The next save brings them in line with
    /// the slot's committed table first (`store::tree_records`).
    pub(crate) unsure: bool,
}

impl<const N: usize> NodeMarks<N> {
    pub(crate) const EMPTY: Self = Self { bits: [0; N], unsure: false };

    /// Nodes covered: `2N` (the last one is never in a tree of `N` leaves).
    pub(crate) const NODES: usize = 2 * N;

    fn at(x: NodeIndex) -> Option<(usize, u32)> {
        let i = usize::try_from(x.0 >> 1).ok().filter(|i| *i < N)?;
        Some((i, (x.0 & 1) * 4))
    }

    /// The bits of node `x` (0 outside the capacity).
    pub(crate) fn get(&self, x: NodeIndex) -> u8 {
        Self::at(x).and_then(|(i, s)| self.bits.get(i).map(|b| (b >> s) & 0xF)).unwrap_or(0)
    }

    /// Replaces the bits of node `x`.
    pub(crate) fn set(&mut self, x: NodeIndex, bits: u8) {
        if let Some((i, s)) = Self::at(x)
            && let Some(b) = self.bits.get_mut(i)
        {
            *b = (*b & !(0xF << s)) | ((bits & 0xF) << s);
        }
    }

    /// Node `x` changed.
    pub(crate) fn mark_changed(&mut self, x: NodeIndex) {
        self.set(x, self.get(x) | CHANGED);
    }

    /// Leaf node `x` changed, and with it the unmerged lists of its
    /// ancestors in a tree of `n_leaves` (marked too: a parent's record
    /// holds them).
    pub(crate) fn mark_changed_with_ancestors(&mut self, x: NodeIndex, n_leaves: u32) {
        self.mark_changed(x);
        let mut cur = x;
        while let Some(p) = tree_math::parent(cur, n_leaves) {
            self.mark_changed(p);
            cur = p;
        }
    }

    /// Every node changed (a new group in the slot).
    pub(crate) fn mark_all_changed(&mut self) {
        self.bits.iter_mut().for_each(|b| *b |= CHANGED | CHANGED << 4);
    }

    /// Node `x` as the slot's committed table has it (`committed`: its
    /// [`STORED`] and [`VERSION`] bits): if the marks name another record,
    /// they take the table's and the node is changed, so the next save
    /// writes it again under the version the table does not name.
    pub(crate) fn follow(&mut self, x: NodeIndex, committed: u8) {
        let bits = self.get(x);
        if (bits ^ committed) & (STORED | VERSION) != 0 {
            self.set(x, (committed & (STORED | VERSION)) | CHANGED | (bits & STALE));
        }
    }

    /// Nothing stored, nothing changed.
    pub(crate) fn clear(&mut self) {
        self.bits = [0; N];
        self.unsure = false;
    }
}
