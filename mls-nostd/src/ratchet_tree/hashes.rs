//! Tree hashes (RFC 9420 §7.8) and parent hashes (§7.9).
//!
//! Tree hashes are cached for parents of
//! [`super::tree::HASH_CACHE_LEVEL`] and above (every parent by default)
//! and recomputed only below invalidated nodes, so a path change costs
//! O(log N) hashes. The original sibling tree
//! hash of §7.9 equals the cached tree hash unless the parent has unmerged
//! leaves under the sibling; only then is that subtree rehashed without them.

use super::tree::{TreeError, TreeSlices, leaf_span};
use crate::codec::{CodecError, Writer};
use crate::crypto::{HashValue, Hasher};
use crate::crypto::labeled::VarintPrefix;
use crate::tree_math::{self, LeafIndex, NodeIndex};

const NODE_TYPE_LEAF: u8 = 1;
const NODE_TYPE_PARENT: u8 = 2;

fn feed(h: &mut Hasher) -> impl FnMut(&[u8]) + '_ {
    move |b: &[u8]| h.update(b)
}

impl TreeSlices<'_> {
    /// The tree hash of node `n` (§7.8), from the cache where valid.
    pub fn tree_hash(&mut self, n: NodeIndex) -> Result<HashValue, TreeError> {
        match n.leaf() {
            Some(l) => {
                if self.leaf(l).is_none() {
                    return Err(TreeError::InvalidLeaf);
                }
                self.leaf_hash(l, false)
            }
            None => {
                self.parent(n).ok_or(TreeError::InvalidLeaf)?;
                let nh = self.suite().hash_len();
                if let Some(cached) = self.cached_hash(n) {
                    return HashValue::from_slice(cached.get(..nh).ok_or(TreeError::InvalidLeaf)?)
                        .map_err(|_| TreeError::InvalidLeaf);
                }
                let (a, b) = children(n)?;
                let left = self.tree_hash(a)?;
                let right = self.tree_hash(b)?;
                let h = self.parent_hash_input(n, None, &left, &right)?;
                self.cache_hash(n, h.as_bytes())?;
                Ok(h)
            }
        }
    }

    /// The tree hash of the root (the GroupContext's `tree_hash`).
    pub fn root_tree_hash(&mut self) -> Result<HashValue, TreeError> {
        let root = self.root().ok_or(TreeError::InvalidTreeSize)?;
        self.tree_hash(root)
    }

    /// `Hash(TreeHashInput)` of a leaf; `blank` forces the blank form.
    fn leaf_hash(&self, l: LeafIndex, blank: bool) -> Result<HashValue, TreeError> {
        let mut h = self.suite().hasher();
        h.update(&[NODE_TYPE_LEAF]);
        h.update(&l.0.to_be_bytes());
        match self.leaf_bytes(l).filter(|_| !blank) {
            Some(bytes) => {
                h.update(&[1]);
                h.update(bytes);
            }
            None => h.update(&[0]),
        }
        Ok(h.finish())
    }

    /// `Hash(TreeHashInput)` of parent `p` with children hashes `left` and
    /// `right`; its unmerged leaves omit those unmerged at `exclude_at`.
    fn parent_hash_input(
        &self,
        p: NodeIndex,
        exclude_at: Option<NodeIndex>,
        left: &HashValue,
        right: &HashValue,
    ) -> Result<HashValue, TreeError> {
        let mut h = self.suite().hasher();
        h.update(&[NODE_TYPE_PARENT]);
        if self.is_blank(p) {
            h.update(&[0]);
        } else {
            h.update(&[1]);
            self.hash_parent_node(&mut h, p, exclude_at)?;
        }
        for side in [left, right] {
            h.update(VarintPrefix::new(side.as_bytes().len())?.as_bytes());
            h.update(side.as_bytes());
        }
        Ok(h.finish())
    }

    /// Feeds the encoding of ParentNode `p` to `h`, leaving out unmerged
    /// leaves that are unmerged at `exclude_at`.
    fn hash_parent_node(&self, h: &mut Hasher, p: NodeIndex, exclude_at: Option<NodeIndex>) -> Result<(), TreeError> {
        let Some(ex) = exclude_at else {
            let mut sink = feed(h);
            let mut w = Writer::sink(&mut sink);
            return self.write_parent_node(&mut w, p).map_err(TreeError::Codec);
        };
        let slot = self.parent(p).copied().ok_or(TreeError::InvalidLeaf)?;
        let kept = |l: &LeafIndex| !self.is_unmerged_at(*l, ex);
        let count = self.unmerged_leaves(p).filter(kept).count();
        let mut sink = feed(h);
        let mut w = Writer::sink(&mut sink);
        w.write_opaque(slot.encryption_key.as_bytes())?;
        w.write_opaque(slot.parent_hash())?;
        w.write_varint(count.checked_mul(4).ok_or(CodecError::VarintTooLarge)?)?;
        for l in self.unmerged_leaves(p).filter(kept) {
            w.write_u32(l.0)?;
        }
        Ok(())
    }

    /// The tree hash of `s` in the tree where the leaves unmerged at `p` are
    /// blank and absent from all unmerged lists (§7.9, original sibling tree hash).
    pub fn original_sibling_tree_hash(&mut self, p: NodeIndex, s: NodeIndex) -> Result<HashValue, TreeError> {
        if !self.subtree_has_unmerged_at(s, p) {
            return self.tree_hash(s);
        }
        self.hash_excluding(s, p)
    }

    fn subtree_has_unmerged_at(&self, s: NodeIndex, p: NodeIndex) -> bool {
        if self.parent(p).is_none_or(|x| x.unmerged_count() == 0) {
            return false;
        }
        let (first, count) = leaf_span(s);
        (first..first.saturating_add(count)).any(|i| self.is_unmerged_at(LeafIndex(i), p))
    }

    fn hash_excluding(&mut self, n: NodeIndex, p: NodeIndex) -> Result<HashValue, TreeError> {
        if !self.subtree_has_unmerged_at(n, p) {
            return self.tree_hash(n);
        }
        match n.leaf() {
            // An excluded leaf hashes as blank.
            Some(l) => self.leaf_hash(l, true),
            None => {
                let (a, b) = children(n)?;
                let left = self.hash_excluding(a, p)?;
                let right = self.hash_excluding(b, p)?;
                self.parent_hash_input(n, Some(p), &left, &right)
            }
        }
    }

    /// The parent hash of `p` with copath child `s` (§7.9):
    /// `Hash(ParentHashInput{p.encryption_key, p.parent_hash, original_sibling_tree_hash(s)})`.
    pub fn parent_hash(&mut self, p: NodeIndex, s: NodeIndex) -> Result<HashValue, TreeError> {
        let slot = self.parent(p).copied().filter(|x| x.present).ok_or(TreeError::InvalidLeaf)?;
        let osth = self.original_sibling_tree_hash(p, s)?;
        let mut h = self.suite().hasher();
        {
            let mut sink = feed(&mut h);
            let mut w = Writer::sink(&mut sink);
            w.write_opaque(slot.encryption_key.as_bytes())?;
            w.write_opaque(slot.parent_hash())?;
            w.write_opaque(osth.as_bytes())?;
        }
        Ok(h.finish())
    }

    /// Sets the parent hashes along a filtered direct path (§7.9), root
    /// first: `path` lists `(node, copath child)` from the leaf upwards. Returns
    /// the parent hash the leaf must carry (empty for an empty path).
    pub fn set_path_parent_hashes(&mut self, path: &[(NodeIndex, NodeIndex)]) -> Result<HashValue, TreeError> {
        // The root's parent hash is the empty string.
        let mut above = HashValue::default();
        for (node, copath_child) in path.iter().rev() {
            self.set_parent_hash(*node, above.as_bytes())?;
            above = self.parent_hash(*node, *copath_child)?;
        }
        Ok(above)
    }
}

fn children(n: NodeIndex) -> Result<(NodeIndex, NodeIndex), TreeError> {
    match (tree_math::left(n), tree_math::right(n)) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err(TreeError::InvalidLeaf),
    }
}
