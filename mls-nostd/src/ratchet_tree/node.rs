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
