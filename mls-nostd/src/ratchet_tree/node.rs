//! Tree nodes on the wire (RFC 9420 §7.1, §12.4.3.3): ParentNode, Node and
//! the `optional<Node> ratchet_tree<V>` of the ratchet_tree extension.

use crate::codec::{CodecError, Decode, Encode, Reader, Writer};
use crate::leaf_node::LeafNode;

/// `ParentNode` (§7.1), borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParentNode<'a> {
    /// `HPKEPublicKey encryption_key`.
    pub encryption_key: &'a [u8],
    /// `opaque parent_hash<V>`.
    pub parent_hash: &'a [u8],
    /// `uint32 unmerged_leaves<V>`: body, whole `uint32`s.
    pub unmerged_leaves: U32List<'a>,
}
crate::tls_struct!(ParentNode<'a> { encryption_key, parent_hash, unmerged_leaves });

/// A parent node as the store keeps it (not a wire form): its key and
/// parent hash as in [`ParentNode`], and its unmerged leaves as a bitmap of
/// the leaves under it (bit `i % 8` of byte `i / 8`: the node's `i`-th
/// leaf), up to the byte of the last one. §7.1 keeps `unmerged_leaves`
/// sorted, so the bitmap loses nothing, and it is bounded by the subtree
/// (128 bytes under the root of 1,024 leaves) where the list took 4 bytes a
/// leaf (3 KB for 768 members added without a path: longer than a record).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ParentRecord<'a> {
    pub encryption_key: &'a [u8],
    pub parent_hash: &'a [u8],
    /// `opaque unmerged<V>`: the bitmap.
    pub unmerged: &'a [u8],
}

impl<'a> ParentRecord<'a> {
    /// Decodes a whole record.
    pub(crate) fn decode_exact(bytes: &'a [u8]) -> Result<Self, CodecError> {
        let mut r = Reader::new(bytes);
        let record = Self { encryption_key: r.read_opaque()?, parent_hash: r.read_opaque()?, unmerged: r.read_opaque()? };
        r.finish()?;
        Ok(record)
    }

    /// The unmerged leaves of parent `x`, in increasing order; an error if a
    /// bit names a leaf outside its subtree.
    pub(crate) fn unmerged_leaves(
        &self,
        x: crate::tree_math::NodeIndex,
    ) -> Result<impl Iterator<Item = crate::tree_math::LeafIndex> + 'a, super::tree::TreeError> {
        let (first, count) = crate::tree_math::leaf_span(x);
        let bits = self.unmerged.len().saturating_mul(8);
        // Bits past the subtree's last leaf must be clear.
        let outside = (count as usize..bits).any(|i| self.unmerged.get(i / 8).is_some_and(|b| b >> (i % 8) & 1 != 0));
        if outside || x.is_leaf() {
            return Err(super::tree::TreeError::UnmergedNotDescendant);
        }
        let unmerged = self.unmerged;
        Ok((0..bits.min(count as usize))
            .filter(move |&i| unmerged.get(i / 8).is_some_and(|b| b >> (i % 8) & 1 != 0))
            .map(move |i| crate::tree_math::LeafIndex(first.saturating_add(i as u32))))
    }
}

/// A `uint32 values<V>` list, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct U32List<'a>(&'a [u8]);

impl<'a> U32List<'a> {
    /// Checks that `body` holds whole `uint32`s.
    pub fn from_body(body: &'a [u8]) -> Result<Self, CodecError> {
        if !body.len().is_multiple_of(4) {
            return Err(CodecError::Truncated);
        }
        Ok(Self(body))
    }

    /// The values in order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + 'a {
        self.0.chunks_exact(4).map(|c| c.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)))
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.0.len() / 4
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Encode for U32List<'_> {
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), CodecError> {
        w.write_vector(|w| self.iter().try_for_each(|v| w.write_u32(v)))
    }
}

impl<'a> Decode<'a> for U32List<'a> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, CodecError> {
        Self::from_body(r.read_opaque()?)
    }
}

/// `Node` (§7.8): a leaf or a parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Node<'a> {
    /// `leaf(1)`.
    Leaf(LeafNode<'a>),
    /// `parent(2)`.
    Parent(ParentNode<'a>),
}

impl Encode for Node<'_> {
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), CodecError> {
        match self {
            Self::Leaf(l) => {
                w.write_u8(1)?;
                l.encode(w)
            }
            Self::Parent(p) => {
                w.write_u8(2)?;
                p.encode(w)
            }
        }
    }
}

impl<'a> Decode<'a> for Node<'a> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, CodecError> {
        match r.read_u8()? {
            1 => Ok(Self::Leaf(LeafNode::decode(r)?)),
            2 => Ok(Self::Parent(ParentNode::decode(r)?)),
            _ => Err(CodecError::InvalidValue),
        }
    }
}

/// `optional<Node> ratchet_tree<V>` (§12.4.3.3), checked and borrowed: the
/// nodes in array order, trailing blanks already removed by the sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RatchetTreeView<'a> {
    body: &'a [u8],
    len: u32,
}

impl<'a> RatchetTreeView<'a> {
    /// Checks that `body` is a sequence of `optional<Node>`.
    pub fn from_body(body: &'a [u8]) -> Result<Self, CodecError> {
        let mut r = Reader::new(body);
        let mut len = 0u32;
        while !r.is_empty() {
            Option::<Node>::decode(&mut r)?;
            len = len.checked_add(1).ok_or(CodecError::CapacityExceeded(crate::capacity::Capacity::Container(u32::MAX as usize)))?;
        }
        Ok(Self { body, len })
    }

    /// Number of nodes sent (the last one is never blank in a valid tree).
    pub fn len(&self) -> u32 {
        self.len
    }

    /// True when no node was sent.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The nodes in array order.
    pub fn iter(&self) -> impl Iterator<Item = Option<Node<'a>>> + 'a {
        let mut r = Reader::new(self.body);
        core::iter::from_fn(move || if r.is_empty() { None } else { Option::<Node>::decode(&mut r).ok() })
    }
}

impl Encode for RatchetTreeView<'_> {
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), CodecError> {
        w.write_vector(|w| self.iter().try_for_each(|n| n.encode(w)))
    }
}

impl<'a> Decode<'a> for RatchetTreeView<'a> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, CodecError> {
        Self::from_body(r.read_opaque()?)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::ParentRecord;
    use crate::ratchet_tree::tree::TreeError;
    use crate::tree_math::{LeafIndex, NodeIndex};
    use std::vec::Vec;

    fn leaves(x: u32, unmerged: &[u8]) -> Result<Vec<u32>, TreeError> {
        let record = ParentRecord { encryption_key: &[], parent_hash: &[], unmerged };
        Ok(record.unmerged_leaves(NodeIndex(x))?.map(|LeafIndex(l)| l).collect())
    }

    /// Bit `i` names the node's `i`-th leaf; a bit past its subtree, or a
    /// leaf's record with a bitmap, is refused.
    #[test]
    fn a_parent_record_names_its_unmerged_leaves_by_bit() {
        // Node 3: leaves 0..4. Node 5: leaves 2..4. Node 23: leaves 8..16.
        assert_eq!(leaves(3, &[0b0000_0101]), Ok(std::vec![0, 2]));
        assert_eq!(leaves(5, &[0b10]), Ok(std::vec![3]));
        assert_eq!(leaves(23, &[0b1000_0001]), Ok(std::vec![8, 15]));
        assert_eq!(leaves(3, &[]), Ok(std::vec![]));
        assert_eq!(leaves(3, &[0b0001_0000]), Err(TreeError::UnmergedNotDescendant));
        assert_eq!(leaves(5, &[0, 1]), Err(TreeError::UnmergedNotDescendant));
        assert_eq!(leaves(2, &[]), Err(TreeError::UnmergedNotDescendant));
        // Trailing zero bytes name nothing.
        assert_eq!(leaves(23, &[0b10, 0, 0]), Ok(std::vec![9]));
    }
}
