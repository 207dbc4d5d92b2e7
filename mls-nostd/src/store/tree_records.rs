//! The ratchet tree as records, one per node, so that a save writes only the
//! nodes that changed since the last one (issue #14: a Commit received
//! rewrote the whole tree, 14 KB at 64 leaves).
//!
//! Each non-blank node of the epoch's tree (as before a staged Commit) is a
//! record: a LeafNode's encoding, or a parent's key, parent hash and bitmap
//! of unmerged leaves ([`ParentRecord`](crate::ratchet_tree::node::ParentRecord):
//! at most [`parent_record_len`]`(N)` bytes, checked at compile time), under
//! the key of its node index and one of two *versions*. The epoch part
//! holds the table ([`T_TREE_TABLE`](super::snapshot) items): for each node,
//! whether it is stored and under which version. A save:
//!
//! 1. removes records of older versions that an earlier save left
//!    ([`STALE`]: its removals failed after its head);
//! 2. before the head, writes every changed node under the version the
//!    committed table does *not* name, so the committed state stays intact
//!    until the head;
//! 3. writes the table of the new state in the epoch part, then the head
//!    (the commit point);
//! 4. after the head, marks the new table as committed and removes the
//!    records it no longer names.
//!
//! A cut before the head leaves records under unnamed versions, and one
//! after it leaves old versions: either is at most one record per node, is
//! never read (only the named version is), and is overwritten when that node
//! next changes. Loading reads the named records and checks the tree against
//! the tree hash the epoch part holds, so a damaged or missing record is an
//! error, never a different tree.
//!
//! A group marks the nodes a merged Commit changed ([`NodeMarks`]); a group
//! new to the slot (created, joined, or saved to another store) writes
//! every node, under the versions that the slot's committed table (another
//! group's, perhaps) does not name.

use super::records::{for_each_item, verify};
use super::{Head, KIND_RTREE_NODE, Part, RecordKey, Storage, StoreError};
use crate::capacity::Capacity;
use crate::codec::{CodecError, Writer};
use crate::crypto::signer::Signer;
use crate::group::Group;
use crate::ratchet_tree::marks::{CHANGED, NodeMarks, STALE, STORED, VERSION};
use crate::tree_math::{self, NodeIndex};

/// The key of node `x`'s record in group `slot`, of the version the
/// [`VERSION`] bit of `bits` names.
fn node_key(slot: u8, bits: u8, x: NodeIndex) -> Result<RecordKey, StoreError> {
    let [a, b] = u16::try_from(x.0).map_err(|_| StoreError::CapacityExceeded(Capacity::Leaves))?.to_be_bytes();
    Ok(u32::from_be_bytes([KIND_RTREE_NODE + u8::from(bits & VERSION != 0), slot, a, b]))
}

/// A parent's record at most, in a group of `n_leaves` leaves: key,
/// parent hash and the bitmap of its unmerged leaves
/// ([`ParentRecord`](crate::ratchet_tree::node::ParentRecord)), the root's
/// covering every leaf. As a staged node's item it has 6 bytes more (tag,
/// node, flag).
pub(crate) const fn parent_record_len(n_leaves: usize) -> usize {
    use super::snapshot::opaque;
    opaque(crate::crypto::hpke::KEM_PUBLIC_LEN) + opaque(crate::crypto::MAX_HASH_LEN) + opaque(n_leaves.div_ceil(8))
}

/// Nodes per table item (2 bits each: 128 bytes, built on the stack).
const TABLE_CHUNK_NODES: usize = 512;
/// A table item's length: tag, first node, the nodes' bits.
pub(crate) const TABLE_ITEM_LEN: usize = 1 + 4 + TABLE_CHUNK_NODES / 4;

impl<const N: usize, const ARENA: usize, const K: usize, const P: usize, Sig: Signer, const E: usize> Group<N, ARENA, K, P, Sig, E> {
    /// Node `x` of the epoch's tree (before a staged Commit) is not blank.
    fn node_present(&mut self, x: NodeIndex) -> bool {
        self.tree.slices().is_present_at(x, true)
    }

    /// What the table of the state being saved says of node `x`: stored,
    /// and under which version (a changed node under the other one).
    fn next_table_bits(&mut self, x: NodeIndex) -> u8 {
        let bits = self.tree_marks.get(x);
        if !self.node_present(x) {
            return bits & VERSION;
        }
        let version = if bits & CHANGED != 0 || bits & STORED == 0 { (bits & VERSION) ^ VERSION } else { bits & VERSION };
        STORED | version
    }

    /// The table items of the epoch part (nodes of the tree before a staged
    /// Commit; a node outside them is not stored).
    pub(crate) fn write_tree_table(&mut self, out: &mut dyn super::ItemSink, tag: u8) -> Result<(), StoreError> {
        let width = tree_math::node_width(self.tree.old().n_leaves()).unwrap_or(0) as usize;
        let mut first = 0;
        while first < width {
            let count = (width - first).min(TABLE_CHUNK_NODES);
            let mut packed = [0u8; TABLE_CHUNK_NODES / 4];
            for k in 0..count {
                let bits = self.next_table_bits(NodeIndex((first + k) as u32));
                if let Some(b) = packed.get_mut(k / 4) {
                    *b |= (bits & (STORED | VERSION)) << (2 * (k % 4));
                }
            }
            let bytes = packed.get(..count.div_ceil(4)).unwrap_or(&[]);
            out.item(&|w| {
                w.write_u8(tag)?;
                w.write_u32(first as u32)?;
                w.write_bytes(bytes)
            })?;
            first += count;
        }
        Ok(())
    }

    /// Applies one table item's body (after its tag) to the marks: what
    /// the store holds. A node beyond this group's capacity is an error if
    /// `strict`, else skipped (another group's table, being replaced).
    pub(crate) fn read_tree_table(marks: &mut NodeMarks<N>, r: &mut crate::codec::Reader<'_>, strict: bool) -> Result<(), CodecError> {
        let first = r.read_u32()? as usize;
        for (k, b) in r.remaining().iter().enumerate() {
            for j in 0..4 {
                let x = first.saturating_add(k * 4 + j);
                if x >= NodeMarks::<N>::NODES {
                    if strict && (b >> (2 * j)) & 3 != 0 {
                        return Err(CodecError::CapacityExceeded(Capacity::Leaves));
                    }
                    continue;
                }
                marks.set(NodeIndex(x as u32), (b >> (2 * j)) & (STORED | VERSION));
            }
        }
        Ok(())
    }

    /// [`NodeMarks::follow`] for the nodes of one table item's body (after
    /// its tag); the node after its last.
    fn follow_tree_table(marks: &mut NodeMarks<N>, r: &mut crate::codec::Reader<'_>) -> Result<usize, CodecError> {
        let first = r.read_u32()? as usize;
        let bytes = r.remaining();
        for (k, b) in bytes.iter().enumerate() {
            for j in 0..4 {
                let x = first.saturating_add(k * 4 + j);
                if x < NodeMarks::<N>::NODES {
                    marks.follow(NodeIndex(x as u32), (b >> (2 * j)) & (STORED | VERSION));
                }
            }
        }
        Ok(first.saturating_add(bytes.len() * 4))
    }

    /// Steps 1 and 2 of a save (before the epoch part and the head): the
    /// marks brought in line with the slot if the group is new to it
    /// (`foreign`, with the slot's committed `old` head if any) or if a
    /// save since they were last in line failed ([`NodeMarks::unsure`]),
    /// stale records removed, changed nodes written.
    pub(crate) fn save_tree_records<S: Storage>(
        &mut self,
        storage: &mut S,
        slot: u8,
        foreign: bool,
        old: Option<&Head>,
        buf: &mut [u8],
    ) -> Result<(), StoreError> {
        if foreign || self.tree_marks.unsure {
            // A failed save may have left the marks naming records the
            // slot does not commit: a transactional backend rolled back
            // its head after `commit_tree_records` took its table for
            // committed, or the marks are another store's (a save
            // elsewhere failed). Unless the group is new to the slot, the
            // marks follow its committed table: a node it names otherwise
            // is written again (else the next table names a record never
            // committed, and the store no longer loads).
            let follow = !foreign;
            if foreign {
                self.tree_marks.clear();
            }
            let mut end = 0usize;
            let mut read = Ok(());
            if let Some(old) = old {
                let info = *old.part(Part::Epoch);
                // What the slot's committed table names is kept until our
                // head replaces it. An unreadable one names nothing we can
                // keep: the slot's state is lost already.
                let marks = &mut self.tree_marks;
                read = verify(storage, slot, Part::Epoch, &info, buf).and_then(|()| {
                    for_each_item(storage, slot, Part::Epoch, &info, buf, &mut |item| {
                        let mut r = crate::codec::Reader::new(item);
                        if r.read_u8()? == super::snapshot::T_TREE_TABLE {
                            if follow {
                                end = end.max(Self::follow_tree_table(marks, &mut r)?);
                            } else {
                                Self::read_tree_table(marks, &mut r, false)?;
                            }
                        }
                        Ok(())
                    })
                });
            }
            if read.is_err() {
                self.tree_marks.clear();
            }
            if foreign || read.is_err() {
                self.tree_marks.mark_all_changed();
            } else {
                // Nodes past the committed table: not stored.
                for x in (end..NodeMarks::<N>::NODES).map(|x| NodeIndex(x as u32)) {
                    self.tree_marks.follow(x, 0);
                }
            }
        }
        // Until this save commits (`store::durable`).
        self.tree_marks.unsure = true;
        self.remove_stale_tree_records(storage, slot)?;
        let width = tree_math::node_width(self.tree.old().n_leaves()).unwrap_or(0);
        for x in (0..width).map(NodeIndex) {
            let next = self.next_table_bits(x);
            let bits = self.tree_marks.get(x);
            if next & STORED == 0 || (bits & STORED != 0 && next & VERSION == bits & VERSION) {
                continue;
            }
            let t = self.tree.slices();
            let len = {
                let mut w = Writer::new(buf);
                // A LeafNode longer than a record (a parent is bounded by N).
                t.write_node(x, true, &mut w).map_err(|e| match e {
                    CodecError::BufferTooSmall { .. } => StoreError::CapacityExceeded(Capacity::RecordLen),
                    e => e.into(),
                })?;
                w.len()
            };
            let record = buf.get(..len).ok_or(StoreError::BufferTooSmall { needed: len })?;
            storage.write(node_key(slot, next, x)?, record)?;
        }
        Ok(())
    }

    /// Step 4 (after the head): the table just written is the committed
    /// one; the records it no longer names are removed.
    pub(crate) fn commit_tree_records<S: Storage>(&mut self, storage: &mut S, slot: u8) -> Result<(), StoreError> {
        for x in (0..NodeMarks::<N>::NODES as u32).map(NodeIndex) {
            let bits = self.tree_marks.get(x);
            let next = self.next_table_bits(x);
            // An old record goes if the node is now blank or moved to the
            // other version.
            let stale = bits & STORED != 0 && (next & STORED == 0 || next & VERSION != bits & VERSION);
            self.tree_marks.set(x, next | if stale || bits & STALE != 0 { STALE } else { 0 });
        }
        self.remove_stale_tree_records(storage, slot)
    }

    /// Removes the records marked [`STALE`]: the version the table does not
    /// name if the node is stored, else the one it names.
    fn remove_stale_tree_records<S: Storage>(&mut self, storage: &mut S, slot: u8) -> Result<(), StoreError> {
        for x in (0..NodeMarks::<N>::NODES as u32).map(NodeIndex) {
            let bits = self.tree_marks.get(x);
            if bits & STALE == 0 {
                continue;
            }
            let version = if bits & STORED != 0 { bits ^ VERSION } else { bits };
            storage.remove(node_key(slot, version, x)?)?;
            self.tree_marks.set(x, bits & !STALE);
        }
        Ok(())
    }

    /// Reads the nodes the table (already applied to the marks) names into
    /// the tree (sized by the epoch part's header), in whatever order the
    /// store gives them ([`Storage::read_each`]: a flash store walks its
    /// records instead of looking each node up); a missing record is
    /// [`StoreError::Corrupt`].
    pub(crate) fn load_tree_records<S: Storage>(&mut self, storage: &mut S, slot: u8, buf: &mut [u8]) -> Result<(), StoreError> {
        let width = tree_math::node_width(self.tree.old().n_leaves()).unwrap_or(0);
        let marks = &self.tree_marks;
        let stored = |x: &NodeIndex| marks.get(*x) & STORED != 0;
        let all = (0..NodeMarks::<N>::NODES as u32).map(NodeIndex);
        let mut expected = 0usize;
        for x in all.clone().filter(stored) {
            if x.0 >= width {
                return Err(StoreError::Invalid(CodecError::InvalidValue));
            }
            expected += 1;
        }
        let mut keys = all.filter(stored).filter_map(|x| node_key(slot, marks.get(x), x).ok());
        // The key of a node the table names, under the version it names.
        let wanted = |key: RecordKey| {
            let x = NodeIndex(key & 0xFFFF);
            (x.0 as usize) < NodeMarks::<N>::NODES && stored(&x) && node_key(slot, marks.get(x), x) == Ok(key)
        };
        let tree = &mut self.tree;
        let mut read = 0usize;
        storage.read_each(&mut keys, &wanted, buf, &mut |key, record| {
            super::snapshot::restore_node(&mut tree.slices(), NodeIndex(key & 0xFFFF), record)?;
            read += 1;
            Ok(())
        })?;
        if read != expected {
            return Err(StoreError::Corrupt);
        }
        Ok(())
    }
}
