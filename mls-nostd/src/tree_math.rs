//! Array-representation tree arithmetic (RFC 9420 Appendix C, §4.2).
//!
//! Nodes are numbered left to right; leaves have even indices, parents odd.
//! RFC 9420 trees always hold a power-of-two number of leaves. Functions that
//! can fail on their input (a node outside the tree, the parent of the root)
//! return `None`; none of them panics or overflows.

/// Index of a node in the array representation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NodeIndex(pub u32);

/// Index of a leaf among the leaves (`LeafIndex`, §7.8): node index / 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LeafIndex(pub u32);

impl LeafIndex {
    /// The node that holds this leaf.
    pub const fn node(self) -> Option<NodeIndex> {
        match self.0.checked_mul(2) {
            Some(n) => Some(NodeIndex(n)),
            None => None,
        }
    }
}

impl NodeIndex {
    /// True for a leaf node (even index).
    pub const fn is_leaf(self) -> bool {
        self.0 & 1 == 0
    }

    /// The leaf index of a leaf node.
    pub const fn leaf(self) -> Option<LeafIndex> {
        if self.is_leaf() { Some(LeafIndex(self.0 >> 1)) } else { None }
    }
}

/// `floor(log2(x))`, with `log2(0) = 0`.
pub const fn log2(x: u32) -> u32 {
    if x == 0 { 0 } else { 31 - x.leading_zeros() }
}

/// The level of a node: 0 for leaves, the number of trailing one bits.
pub const fn level(x: NodeIndex) -> u32 {
    x.0.trailing_ones()
}

/// The leaves under `node`: `(first leaf index, count)`. A node of level `k`
/// is `prefix << (k + 1) | (2^k - 1)`; its leaves start at `prefix << k`.
pub fn leaf_span(node: NodeIndex) -> (u32, u32) {
    let k = level(node);
    let count = 1u32.checked_shl(k).unwrap_or(0);
    let first = node.0.checked_shr(k + 1).unwrap_or(0).checked_shl(k).unwrap_or(0);
    (first, count)
}

/// Number of nodes of a tree with `n_leaves` leaves.
pub const fn node_width(n_leaves: u32) -> Option<u32> {
    if n_leaves == 0 {
        return Some(0);
    }
    match (n_leaves - 1).checked_mul(2) {
        Some(w) => w.checked_add(1),
        None => None,
    }
}

/// The root of a tree with `n_leaves` leaves.
pub const fn root(n_leaves: u32) -> Option<NodeIndex> {
    match node_width(n_leaves) {
        Some(w) if w > 0 => Some(NodeIndex((1u32 << log2(w)) - 1)),
        _ => None,
    }
}

/// The left child of an intermediate node.
pub const fn left(x: NodeIndex) -> Option<NodeIndex> {
    let k = level(x);
    if k == 0 { None } else { Some(NodeIndex(x.0 ^ (1 << (k - 1)))) }
}

/// The right child of an intermediate node.
pub const fn right(x: NodeIndex) -> Option<NodeIndex> {
    let k = level(x);
    if k == 0 { None } else { Some(NodeIndex(x.0 ^ (3 << (k - 1)))) }
}

/// The parent of `x` in a tree with `n_leaves` leaves (`None` for the root or
/// a node outside the tree).
pub const fn parent(x: NodeIndex, n_leaves: u32) -> Option<NodeIndex> {
    let Some(r) = root(n_leaves) else { return None };
    let Some(w) = node_width(n_leaves) else { return None };
    if x.0 == r.0 || x.0 >= w {
        return None;
    }
    let k = level(x);
    // k + 1 <= 31 here: x < w < 2^31 for any tree whose width fits in u32.
    if k >= 31 {
        return None;
    }
    let b = (x.0 >> (k + 1)) & 1;
    Some(NodeIndex((x.0 | (1 << k)) ^ (b << (k + 1))))
}

/// The other child of `x`'s parent.
pub const fn sibling(x: NodeIndex, n_leaves: u32) -> Option<NodeIndex> {
    let Some(p) = parent(x, n_leaves) else { return None };
    if x.0 < p.0 { right(p) } else { left(p) }
}

/// The direct path of `x` (§4.1): its ancestors from parent to root, written
/// into `out`; returns how many. `out` needs `log2(width) + 1` entries.
pub fn direct_path(x: NodeIndex, n_leaves: u32, out: &mut [NodeIndex]) -> Option<usize> {
    let mut n = 0;
    let mut cur = x;
    while let Some(p) = parent(cur, n_leaves) {
        *out.get_mut(n)? = p;
        n += 1;
        cur = p;
    }
    Some(n)
}

/// The copath of `x` (§4.1): the sibling of `x` and of each node of its direct
/// path except the root, written into `out`; returns how many.
pub fn copath(x: NodeIndex, n_leaves: u32, out: &mut [NodeIndex]) -> Option<usize> {
    let mut n = 0;
    let mut cur = x;
    while let Some(s) = sibling(cur, n_leaves) {
        *out.get_mut(n)? = s;
        n += 1;
        cur = parent(cur, n_leaves)?;
    }
    Some(n)
}

/// The lowest common ancestor of two nodes (§4.1), the node whose subtree
/// holds both.
pub fn common_ancestor(a: NodeIndex, b: NodeIndex) -> NodeIndex {
    // Keep the common prefix of the two indices, then set the bits below it
    // to the level's pattern (0111..).
    let (mut x, mut y, mut k) = (a.0, b.0, 0u32);
    while x != y {
        x >>= 1;
        y >>= 1;
        k += 1;
    }
    if k == 0 {
        return NodeIndex(x);
    }
    // k may reach 32 (indices that differ in the top bit): shifts saturate.
    let high = x.checked_shl(k).unwrap_or(0);
    let low = 1u32.checked_shl(k - 1).unwrap_or(0).wrapping_sub(1);
    NodeIndex(high | low)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_tree() {
        assert_eq!(root(4), Some(NodeIndex(3)));
        assert_eq!(parent(NodeIndex(0), 4), Some(NodeIndex(1)));
        assert_eq!(parent(NodeIndex(3), 4), None);
        assert_eq!(parent(NodeIndex(7), 4), None);
        assert_eq!(sibling(NodeIndex(5), 4), Some(NodeIndex(1)));
        assert_eq!(common_ancestor(NodeIndex(0), NodeIndex(6)), NodeIndex(3));
        assert_eq!(common_ancestor(NodeIndex(4), NodeIndex(6)), NodeIndex(5));
        assert_eq!(common_ancestor(NodeIndex(2), NodeIndex(2)), NodeIndex(2));
        let mut out = [NodeIndex(0); 4];
        assert_eq!(direct_path(NodeIndex(4), 4, &mut out), Some(2));
        assert_eq!(&out[..2], &[NodeIndex(5), NodeIndex(3)]);
        assert_eq!(copath(NodeIndex(4), 4, &mut out), Some(2));
        assert_eq!(&out[..2], &[NodeIndex(6), NodeIndex(1)]);
        assert_eq!(direct_path(NodeIndex(4), 4, &mut out[..1]), None);
    }

    #[test]
    fn extremes_do_not_panic() {
        for n in [0, 1, 2, u32::MAX / 2, u32::MAX / 2 + 1, u32::MAX] {
            let _ = root(n);
            for x in [0, 1, u32::MAX - 1, u32::MAX] {
                let _ = parent(NodeIndex(x), n);
                let _ = sibling(NodeIndex(x), n);
                let _ = left(NodeIndex(x));
                let _ = right(NodeIndex(x));
                let _ = common_ancestor(NodeIndex(x), NodeIndex(0));
            }
        }
    }
}
