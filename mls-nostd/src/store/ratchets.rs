//! A secret tree's state as records, one per node and one per kept skipped
//! key, so that a message rewrites only what it changed: a received message
//! writes its sender's ratchets (about 100 bytes), whatever the group's size
//! (issue #14). The secret tree itself knows nothing of storage: this module
//! looks down at it.
//!
//! Layout. The epoch's tree and the previous epoch's (kept for late
//! application messages) live in the banks `epoch & 1` of their epochs. A
//! bank holds node records (a parent's secret, a leaf's secret or its two
//! ratchets), pool records (one per entry of the skipped-key pool) and an
//! index: a bitmap of the nodes that may have a record, so loading reads only
//! those. Every record starts with its tree's tag ([`tree_tag`]): a record of
//! another epoch or group left in the bank is never taken for this tree's.
//! Every record ends with 8 bytes of SHA-256 over the rest: a damaged record
//! is [`StoreError::Corrupt`], never a wrong key.
//!
//! No commit point is needed, because each record is written atomically and
//! the order of a save makes every prefix a usable state (a flash store may
//! read the node and pool records back together: [`is_unlisted`]):
//! 1. the index (before any record it lists);
//! 2. leaves, then parents, then pool entries (a leaf's ratchets before the
//!    skipped keys it made: a cut can lose a skipped key, never bring back
//!    a used one);
//! 3. removals last: a parent goes only after both children are stored.
//!
//! After a cut a parent may remain beside records below it. Loading then
//! derives the children it lacks and drops it ([`SecretTree::settle_parent`]): what
//! a node stores wins over what an ancestor derives, since a leaf's ratchets
//! may have moved on.
//!
//! A record the save wrote or removed stays marked changed (`*_DIRTY`) until
//! the save is over: a backend that rolls a failed save back whole
//! (`Storage::committed` commits, as `platform_std::SqliteStorage`) takes
//! those writes back too, so only a save that committed marks them saved
//! ([`SecretTree::end_save`]); a failed one leaves them for the next save.
//! Otherwise the next save would skip them and the store keep a ratchet
//! from before a message: after a reload the message is accepted again, a
//! replay that RFC 9420 §9.2 forbids ("deleted as soon as [a key] has been
//! used"), or our own sending ratchet goes back and a key and nonce are
//! used twice.
//!
//! [`tree_tag`]: crate::secret_tree::tree_tag

use super::{KIND_TREE_AUX, KIND_TREE_NODE, RecordKey, Storage, StoreError};
use crate::capacity::Capacity;
use crate::codec::{CodecError, Reader, Writer};
use crate::crypto::{CipherSuite, Secret};
use crate::secret_tree::{
    LEAF_DIRTY, LEAF_INDEXED, LEAF_PENDING, LeafSecrets, PARENT_DIRTY, PARENT_INDEXED, PARENT_PENDING, Ratchet, RatchetKey,
    RatchetKind, SKIPPED_DIRTY, SKIPPED_PENDING, SecretTree, SecretTreeConfig, SecretTreeError, SecretTreeMeta, SkippedKey,
    holds_leaf, parent_node, parent_secret,
};
use crate::tree_math::NodeIndex;
use zeroize::Zeroize;

const NODE_PARENT: u8 = 0;
const NODE_LEAF_SECRET: u8 = 1;
const NODE_LEAF_RATCHETS: u8 = 2;
/// Index chunks are aux records `INDEX_BASE + chunk`; pool entries are below.
const INDEX_BASE: u16 = 0x8000;
/// Bitmap bytes per index chunk (16,384 nodes).
const CHUNK_BYTES: usize = 2048;
const CHUNK_NODES: usize = CHUNK_BYTES * 8;
const CHECK_LEN: usize = 8;
/// `tag || n_leaves || chunk || pool slots covered` before an index chunk's bits
/// (the skipped-key slots that may have records: `SecretTreeMeta::pool_indexed`).
const INDEX_HEAD: usize = 8 + 4 + 2 + 2;

/// The longest record of a secret tree of `n_leaves` leaves: an index chunk
/// of its nodes, a leaf's two ratchets (the longest node record) or a
/// skipped key, each with its check.
pub(crate) const fn longest_record(n_leaves: usize) -> usize {
    use crate::crypto::max;
    let width = n_leaves.saturating_mul(2).saturating_sub(1);
    let bits = if width.div_ceil(8) < CHUNK_BYTES { width.div_ceil(8) } else { CHUNK_BYTES };
    let secret = 2 + crate::crypto::MAX_HASH_LEN;
    let ratchets = 8 + 4 + 1 + 2 * (secret + 4);
    let skipped = 8 + 4 + 1 + 8 + 4 + secret + crate::crypto::AEAD_NONCE_LEN;
    max(INDEX_HEAD + bits, max(ratchets, skipped)) + CHECK_LEN
}

fn node_key(slot: u8, bank: u8, node: usize) -> Result<RecordKey, StoreError> {
    let [a, b] = u16::try_from(node).map_err(|_| StoreError::CapacityExceeded(Capacity::Leaves))?.to_be_bytes();
    Ok(u32::from_be_bytes([KIND_TREE_NODE + (bank & 1), slot, a, b]))
}

fn aux_key(slot: u8, bank: u8, index: u16) -> RecordKey {
    let [a, b] = index.to_be_bytes();
    u32::from_be_bytes([KIND_TREE_AUX + (bank & 1), slot, a, b])
}

fn pool_key(slot: u8, bank: u8, k: usize) -> Result<RecordKey, StoreError> {
    match u16::try_from(k) {
        Ok(k) if k < INDEX_BASE => Ok(aux_key(slot, bank, k)),
        _ => Err(StoreError::CapacityExceeded(Capacity::SkippedKeys)),
    }
}

fn index_key(slot: u8, bank: u8, chunk: usize) -> Result<RecordKey, StoreError> {
    let c = u16::try_from(chunk).ok().and_then(|c| c.checked_add(INDEX_BASE));
    c.map(|c| aux_key(slot, bank, c)).ok_or(StoreError::CapacityExceeded(Capacity::Leaves))
}

/// Nodes of a tree of `n_leaves` leaves, and the index chunks covering them.
fn width_and_chunks(n_leaves: u32) -> (usize, usize) {
    let width = (n_leaves as usize).saturating_mul(2).saturating_sub(1);
    (width, width.div_ceil(CHUNK_NODES))
}

/// `key` is a record no other record lists: a secret tree's node or
/// skipped key (the index lists them, and is written before them). A flash
/// store may read such stores back together, before its next operation of
/// another kind (`store::flash`): a store it loses is found before a
/// removal or a commit point follows, and the stores after it change
/// nothing that a reload would not do with it lost alone (a lost leaf's
/// older ratchets derive whatever the skipped keys after it hold). The
/// index and the group's banks are read back at once: a record they list
/// must not land without them (it would never be removed).
#[cfg(feature = "flash")]
pub(crate) fn is_unlisted(key: RecordKey) -> bool {
    let [kind, _, a, b] = key.to_be_bytes();
    let node = kind == KIND_TREE_NODE || kind == KIND_TREE_NODE + 1;
    let aux = kind == KIND_TREE_AUX || kind == KIND_TREE_AUX + 1;
    node || (aux && u16::from_be_bytes([a, b]) < INDEX_BASE)
}

/// The slots of a tree of `n` leaves with a node changed (a `*_DIRTY`
/// flag), in order: a list when there are few, else every slot.
struct Changed {
    few: [u16; 32],
    /// Slots in `few`, or `n` with `all`.
    len: usize,
    all: bool,
}

impl Changed {
    fn of(flags: &[u8], n: usize) -> Self {
        let mut c = Self { few: [0; 32], len: 0, all: false };
        for (i, f) in flags.iter().enumerate().take(n) {
            if f & (LEAF_DIRTY | PARENT_DIRTY) == 0 {
                continue;
            }
            match (c.few.get_mut(c.len), u16::try_from(i)) {
                (Some(slot), Ok(i)) => *slot = i,
                _ => return Self { few: [0; 32], len: n, all: true },
            }
            c.len += 1;
        }
        c
    }

    fn iter(&self) -> ChangedIter<'_> {
        ChangedIter { changed: self, at: 0 }
    }
}

struct ChangedIter<'a> {
    changed: &'a Changed,
    at: usize,
}

impl Iterator for ChangedIter<'_> {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        let c = self.changed;
        let i = if c.all { self.at } else { usize::from(*c.few.get(self.at)?) };
        if self.at >= c.len {
            return None;
        }
        self.at += 1;
        Some(i)
    }
}

/// Appends the check to the `len` bytes of `buf` and writes them as `key`.
fn write_sealed<S: Storage>(storage: &mut S, key: RecordKey, buf: &mut [u8], len: usize) -> Result<(), StoreError> {
    let total = len + CHECK_LEN;
    let (body, rest) = buf.split_at_mut_checked(len).ok_or(StoreError::BufferTooSmall { needed: total })?;
    let check = crate::crypto::sha256(&[body]);
    rest.get_mut(..CHECK_LEN)
        .ok_or(StoreError::BufferTooSmall { needed: total })?
        .copy_from_slice(check.as_bytes().get(..CHECK_LEN).unwrap_or(&[0; CHECK_LEN]));
    let result = storage.write(key, buf.get(..total).ok_or(StoreError::BufferTooSmall { needed: total })?);
    buf.get_mut(..total).unwrap_or(&mut []).zeroize();
    Ok(result?)
}

/// Record `key` without its check, if present; `Corrupt` if the check fails.
fn read_sealed<'b, S: Storage>(storage: &mut S, key: RecordKey, buf: &'b mut [u8]) -> Result<Option<&'b [u8]>, StoreError> {
    let Some(bytes) = storage.read(key, buf)? else { return Ok(None) };
    let split = bytes.len().checked_sub(CHECK_LEN).ok_or(StoreError::Corrupt)?;
    let (body, check) = bytes.split_at(split);
    if crate::crypto::sha256(&[body]).as_bytes().get(..CHECK_LEN).is_none_or(|c| c != check) {
        return Err(StoreError::Corrupt);
    }
    Ok(Some(body))
}

fn write_secret(w: &mut Writer<'_>, s: &Secret) -> Result<(), CodecError> {
    w.write_opaque(s.as_bytes())
}

fn read_secret(r: &mut Reader<'_>) -> Result<Secret, CodecError> {
    Secret::from_slice(r.read_opaque()?).map_err(|_| CodecError::InvalidValue)
}

fn write_ratchet(w: &mut Writer<'_>, r: &Ratchet) -> Result<(), CodecError> {
    write_secret(w, &r.secret)?;
    w.write_u32(r.generation())
}

fn read_ratchet(r: &mut Reader<'_>) -> Result<Ratchet, CodecError> {
    Ok(Ratchet::new(read_secret(r)?, r.read_u32()?))
}

/// Removes every record of `bank` unless its index names the tree `keep`
/// (a bank left by an ended epoch, a group removed or replaced, a save cut
/// before its head).
pub(crate) fn clean_bank<S: Storage>(
    storage: &mut S,
    slot: u8,
    bank: u8,
    keep: Option<[u8; 8]>,
    buf: &mut [u8],
) -> Result<(), StoreError> {
    let mut chunks = 0;
    let mut pool = 0;
    loop {
        let key = index_key(slot, bank, chunks)?;
        let Some(body) = read_sealed(storage, key, buf)? else { break };
        let mut r = Reader::new(body);
        let tag: [u8; 8] = r.read_array()?;
        if keep == Some(tag) {
            return Ok(());
        }
        let n_leaves = r.read_u32()?;
        r.read_u16()?;
        pool = usize::from(r.read_u16()?);
        for (byte, bits) in r.remaining().iter().enumerate() {
            for bit in 0..8 {
                if bits & (1 << bit) != 0 {
                    storage.remove(node_key(slot, bank, chunks * CHUNK_NODES + byte * 8 + bit)?)?;
                }
            }
        }
        chunks += 1;
        if chunks >= width_and_chunks(n_leaves).1 {
            break;
        }
    }
    if chunks == 0 {
        return Ok(());
    }
    for k in 0..pool {
        storage.remove(pool_key(slot, bank, k)?)?;
    }
    for c in 0..chunks {
        storage.remove(index_key(slot, bank, c)?)?;
    }
    Ok(())
}

/// Changed (`dirty`, a `*_DIRTY` bit of `f`) and not yet written by the save
/// under way (its `*_PENDING` bit): a save's passes around a head write
/// each record once.
fn unsaved(f: u8, dirty: u8) -> bool {
    f & dirty != 0 && f & (dirty << 4) == 0
}

/// What a save may change of a tree besides its records' flags, as it was
/// before the save ([`SecretTree::begin_save`]): put back if the save fails.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SaveStart {
    bank_checked: bool,
    bank_stale: bool,
}

/// Which of a tree's changed records a save writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Records {
    /// All of them.
    All,
    /// Only leaf `i`'s (our own: before a head, so a key is never reused).
    Leaf(usize),
    /// All but leaf `i`'s (others': after a head, so that a handshake
    /// message is never consumed without its effect being stored).
    AllBut(usize),
}

impl<const N: usize, const K: usize, const E: usize> SecretTree<N, K, E> {
    /// Whether a save has yet to store this tree in its bank (a new epoch's,
    /// or one loaded from another store).
    pub(crate) fn is_new_in_store(&self) -> bool {
        !self.meta.bank_checked
    }

    /// What [`Self::end_save`] puts back if the save now beginning fails.
    pub(crate) fn begin_save(&self) -> SaveStart {
        SaveStart { bank_checked: self.meta.bank_checked, bank_stale: self.meta.bank_stale }
    }

    /// Ends a save begun at `start`. `committed`: it succeeded, up to and
    /// including `Storage::committed`, and the records it wrote or removed
    /// (`*_PENDING`) are saved. Otherwise they stay changed and the bank's
    /// check is as before the save, so the next save writes them again and
    /// checks the bank again: a transactional backend rolled back every
    /// write of the save (the index's too: [`SecretTreeMeta::index_unsure`]),
    /// and a pool must not evict a secret the store may not have
    /// ([`Self::evict_for`] takes only clean ones). One pass over the
    /// flags, in place (no copy of them).
    pub(crate) fn end_save(&mut self, start: SaveStart, committed: bool) {
        let n = (self.meta.n_leaves as usize).min(N);
        let done = if committed { LEAF_DIRTY | PARENT_DIRTY } else { 0 };
        for f in self.flags.get_mut(..n).unwrap_or(&mut []) {
            let pending = (*f >> 4) & (LEAF_DIRTY | PARENT_DIRTY);
            *f &= !((pending << 4) | (pending & done));
        }
        for d in self.skipped_dirty.iter_mut() {
            if *d & SKIPPED_PENDING != 0 {
                *d = if committed { 0 } else { *d & !SKIPPED_PENDING };
            }
        }
        if !committed {
            self.meta.bank_checked = start.bank_checked;
            self.meta.bank_stale = start.bank_stale;
            self.meta.index_unsure = true;
        }
    }

    /// Stores what changed since the last save in `bank` of group `slot`
    /// (module documentation: the order). A tree with no leaves removes what
    /// its bank held.
    pub(crate) fn save_records<S: Storage>(
        &mut self,
        storage: &mut S,
        slot: u8,
        bank: u8,
        which: Records,
        buf: &mut [u8],
    ) -> Result<(), StoreError> {
        let leaf_ok = |i: usize| match which {
            Records::All => true,
            Records::Leaf(l) => i == l,
            Records::AllBut(l) => i != l,
        };
        let rest_ok = !matches!(which, Records::Leaf(_));
        if !self.meta.bank_checked {
            // Records of this tree that a save never committed, or that an
            // older copy holds (all are written again), go too: a skipped
            // key used since would stay.
            let keep = (self.meta.n_leaves > 0 && !self.meta.bank_stale).then_some(self.meta.tag);
            clean_bank(storage, slot, bank, keep, buf)?;
            self.meta.bank_checked = true;
            self.meta.bank_stale = false;
        }
        let n = self.meta.n_leaves as usize;
        if n == 0 {
            return Ok(());
        }
        let has_leaf = |t: &Self, i: usize| holds_leaf(&t.held(), i);
        let has_parent = |t: &Self, i: usize| parent_secret(&t.held(), parent_node(i)).is_some();
        // The passes below look only at slots with a node changed: a
        // message changes its sender's path, and a slot a leaf of 1,024.
        let changed = Changed::of(&self.flags, n);
        let unindexed = changed.iter().any(|i| {
            let f = self.flags.get(i).copied().unwrap_or(0);
            (f & LEAF_DIRTY != 0 && f & LEAF_INDEXED == 0 && has_leaf(self, i))
                || (f & PARENT_DIRTY != 0 && f & PARENT_INDEXED == 0 && has_parent(self, i))
        });
        // The index covers the skipped-key slots below a mark that only
        // grows (a bank's records of a slot are listed before written), so
        // a bank's removal and a load look up the slots used, not all `K`:
        // each lookup scans a flash store's map.
        let written = (0..K).filter(|&k| rest_ok && self.skipped_dirty.get(k).is_some_and(|d| unsaved(*d, SKIPPED_DIRTY)));
        let mark = written.filter(|&k| self.skipped.get(k).is_some_and(Option::is_some)).map(|k| k + 1).max().unwrap_or(0);
        let pool_unindexed = mark > usize::from(self.meta.pool_indexed);
        if pool_unindexed {
            self.meta.pool_indexed = u16::try_from(mark).map_err(|_| StoreError::CapacityExceeded(Capacity::SkippedKeys))?;
        }
        if unindexed || pool_unindexed || self.meta.index_unsure {
            // The flags first: a pool's secret is found by a scan of its
            // entries, and a slot not changed since the last save is skipped.
            for i in changed.iter() {
                let f = self.flags.get(i).copied().unwrap_or(0);
                let leaf = f & LEAF_DIRTY != 0 && has_leaf(self, i);
                let parent = f & PARENT_DIRTY != 0 && has_parent(self, i);
                if let Some(f) = self.flags.get_mut(i) {
                    if leaf {
                        *f |= LEAF_INDEXED;
                    }
                    if parent {
                        *f |= PARENT_INDEXED;
                    }
                }
            }
            self.write_index(storage, slot, bank, buf)?;
        }
        let tag = self.meta.tag;
        for i in changed.iter().filter(|i| leaf_ok(*i)) {
            if self.flags.get(i).is_some_and(|f| unsaved(*f, LEAF_DIRTY)) && has_leaf(self, i) {
                let len = {
                    let mut w = Writer::new(buf);
                    w.write_bytes(&tag)?;
                    w.write_u32((2 * i) as u32)?;
                    match self.held().get(i) {
                        LeafSecrets::Secret(s) => {
                            w.write_u8(NODE_LEAF_SECRET)?;
                            write_secret(&mut w, s)?;
                        }
                        LeafSecrets::Ratchets { handshake, application } => {
                            w.write_u8(NODE_LEAF_RATCHETS)?;
                            write_ratchet(&mut w, handshake)?;
                            write_ratchet(&mut w, application)?;
                        }
                        _ => return Err(StoreError::Invalid(CodecError::InvalidValue)),
                    }
                    w.len()
                };
                write_sealed(storage, node_key(slot, bank, 2 * i)?, buf, len)?;
                set_flag(&mut self.flags, i, LEAF_PENDING);
            }
        }
        if !rest_ok {
            return Ok(());
        }
        for i in changed.iter() {
            if self.flags.get(i).is_some_and(|f| unsaved(*f, PARENT_DIRTY))
                && let Some(s) = parent_secret(&self.held(), parent_node(i))
            {
                let len = {
                    let mut w = Writer::new(buf);
                    w.write_bytes(&tag)?;
                    w.write_u32((2 * i + 1) as u32)?;
                    w.write_u8(NODE_PARENT)?;
                    write_secret(&mut w, s)?;
                    w.len()
                };
                write_sealed(storage, node_key(slot, bank, 2 * i + 1)?, buf, len)?;
                set_flag(&mut self.flags, i, PARENT_PENDING);
            }
        }
        for k in 0..K {
            if self.skipped_dirty.get(k).is_some_and(|d| unsaved(*d, SKIPPED_DIRTY))
                && let Some(Some(e)) = self.skipped.get(k)
            {
                let len = {
                    let mut w = Writer::new(buf);
                    w.write_bytes(&tag)?;
                    w.write_u32(e.leaf)?;
                    w.write_u8(e.kind.get().wrapping_sub(1))?;
                    // (A u64 in the record, as when it was one in memory.)
                    w.write_u64(u64::from(e.seq))?;
                    w.write_u32(e.key.generation)?;
                    write_secret(&mut w, &e.key.key)?;
                    w.write_bytes(&e.key.nonce)?;
                    w.len()
                };
                write_sealed(storage, pool_key(slot, bank, k)?, buf, len)?;
                if let Some(d) = self.skipped_dirty.get_mut(k) {
                    *d |= SKIPPED_PENDING;
                }
            }
        }
        // Removals last (a slot the index does not cover has no record).
        for k in 0..K {
            if self.skipped_dirty.get(k).is_some_and(|d| unsaved(*d, SKIPPED_DIRTY)) {
                if k < usize::from(self.meta.pool_indexed) {
                    storage.remove(pool_key(slot, bank, k)?)?;
                }
                if let Some(d) = self.skipped_dirty.get_mut(k) {
                    *d |= SKIPPED_PENDING;
                }
            }
        }
        // (A node the index does not list has no record: derived and used
        // up between two saves.)
        for i in changed.iter() {
            let f = self.flags.get(i).copied().unwrap_or(0);
            if unsaved(f, PARENT_DIRTY) {
                if f & PARENT_INDEXED != 0 {
                    storage.remove(node_key(slot, bank, 2 * i + 1)?)?;
                }
                set_flag(&mut self.flags, i, PARENT_PENDING);
            }
            if leaf_ok(i) && unsaved(f, LEAF_DIRTY) {
                if f & LEAF_INDEXED != 0 {
                    storage.remove(node_key(slot, bank, 2 * i)?)?;
                }
                set_flag(&mut self.flags, i, LEAF_PENDING);
            }
        }
        Ok(())
    }

    /// Marks every stored secret changed and the bank unchecked, so the next
    /// save writes the whole tree (to a store that does not hold it). Only
    /// adds marks: what the flags say of the group's own store (the records
    /// its index lists, the consumed ones it has yet to remove, the pool
    /// slots it covers) stays true if this save fails, and the next save
    /// there still removes them (a used key otherwise stayed in the store
    /// for good, against RFC 9420 §9.2). The index they write lists a
    /// superset of the records, which a load and a bank's removal allow.
    pub(crate) fn mark_all_unsaved(&mut self) {
        let (held, flags) = self.held_and_flags();
        for (i, secrets) in held.iter() {
            // A parent's secret lies in its leftmost leaf's slot, its flag at
            // `node / 2`.
            let (at, bit) = match secrets {
                LeafSecrets::Secret(_) | LeafSecrets::Ratchets { .. } => (i, LEAF_DIRTY),
                LeafSecrets::Parent { level, .. } => {
                    let node = (2 * i).saturating_add((1usize << (*level).min(31)) - 1);
                    (node / 2, PARENT_DIRTY)
                }
                LeafSecrets::Empty => continue,
            };
            if let Some(f) = flags.get_mut(at) {
                *f |= bit;
            }
        }
        for (d, e) in self.skipped_dirty.iter_mut().zip(self.skipped.iter()) {
            if e.is_some() {
                *d |= SKIPPED_DIRTY;
            }
        }
        self.meta.bank_checked = false;
        self.meta.bank_stale = true;
        // The flags may list every node already: the index is written anyway.
        self.meta.index_unsure = true;
    }

    /// Node `node`'s record in `bank` of group `slot`, if the store has one
    /// of this tree (one of another tree, left by a cut, is marked to be
    /// removed at the next save).
    fn read_node<S: Storage>(
        &mut self,
        storage: &mut S,
        slot: u8,
        bank: u8,
        node: usize,
        buf: &mut [u8],
    ) -> Result<Option<LeafSecrets>, StoreError> {
        let f = self.flags.get(node / 2).copied().unwrap_or(0);
        let (listed, dirty) =
            if node.is_multiple_of(2) { (f & LEAF_INDEXED != 0, LEAF_DIRTY) } else { (f & PARENT_INDEXED != 0, PARENT_DIRTY) };
        // (Changed and not held: consumed, its record to be removed.)
        if !listed || f & dirty != 0 {
            return Ok(None);
        }
        let Some(body) = read_sealed(storage, node_key(slot, bank, node)?, buf)? else { return Ok(None) };
        let mut r = Reader::new(body);
        if r.read_array::<8>()? != self.meta.tag {
            // Left by another tree before a cut: removed at the next save.
            if let Some(f) = self.flags.get_mut(node / 2) {
                *f |= dirty;
            }
            return Ok(None);
        }
        if r.read_u32()? as usize != node {
            return Err(StoreError::Corrupt);
        }
        let kind = r.read_u8()?;
        let value = match (node % 2, kind) {
            (1, NODE_PARENT) => LeafSecrets::Parent {
                level: u8::try_from(crate::tree_math::level(NodeIndex(node as u32))).map_err(|_| StoreError::Corrupt)?,
                secret: read_secret(&mut r)?,
            },
            (0, NODE_LEAF_SECRET) => LeafSecrets::Secret(read_secret(&mut r)?),
            (0, NODE_LEAF_RATCHETS) => {
                LeafSecrets::Ratchets { handshake: read_ratchet(&mut r)?, application: read_ratchet(&mut r)? }
            }
            _ => return Err(StoreError::Corrupt),
        };
        r.finish()?;
        Ok(Some(value))
    }

    /// Makes a pool ready for a message of `leaf` (received, or ours to
    /// send): brings in from `bank` the nearest secret on its path that the
    /// store holds and RAM does not (its own ratchets, or an ancestor's to
    /// derive them from; at most one node of a path holds a secret, in RAM
    /// or in the store, once a load settled what a cut left), and evicts
    /// secrets the store holds unchanged until the derivation has room.
    /// Nothing to do for a direct tree. Without room even after evicting,
    /// [`Capacity::SecretTreeEntries`].
    pub(crate) fn prepare_leaf<S: Storage>(
        &mut self,
        storage: &mut S,
        slot: u8,
        bank: u8,
        leaf: crate::tree_math::LeafIndex,
        buf: &mut [u8],
    ) -> Result<(), StoreError> {
        let n_leaves = self.meta.n_leaves;
        if !self.is_pool() || leaf.0 >= n_leaves {
            return Ok(());
        }
        let full = || StoreError::CapacityExceeded(Capacity::SecretTreeEntries);
        let Some(target) = leaf.node() else { return Ok(()) };
        let mut found = None;
        for node in core::iter::successors(Some(target), |n| crate::tree_math::parent(*n, n_leaves)) {
            if self.holds_node(node) {
                found = Some(node);
                break;
            }
            let read = self.read_node(storage, slot, bank, node.0 as usize, buf);
            buf.zeroize();
            if let Some(value) = read? {
                if !self.evict_for(1, None) {
                    return Err(full());
                }
                self.take_in(node, value).map_err(|_| full())?;
                found = Some(node);
                break;
            }
        }
        // None: the sender's secrets were consumed; processing says so.
        let Some(found) = found else { return Ok(()) };
        let own = match found.leaf() {
            Some(l) => l.0 as usize,
            None => crate::secret_tree::leftmost_slot(found).map_err(|_| StoreError::Corrupt)?,
        };
        if self.evict_for(crate::tree_math::level(found) as usize, Some(own)) { Ok(()) } else { Err(full()) }
    }

    /// Some node below `node` is in the index.
    fn indexed_below(&self, node: NodeIndex) -> bool {
        let (first, count) = crate::tree_math::leaf_span(node);
        let (first, count) = (first as usize, count as usize);
        // Nodes 2 * first ..= 2 * (first + count - 1): flag bytes first..first + count
        // (a byte holds a leaf and the parent right of it; the last byte's
        // parent and `node` itself are not below it).
        (first..first + count).any(|i| {
            let f = self.flags.get(i).copied().unwrap_or(0);
            let parent = 2 * i + 1;
            f & LEAF_INDEXED != 0 || (f & PARENT_INDEXED != 0 && parent != node.0 as usize && i + 1 < first + count)
        })
    }

    /// A pool's load: the records that a cut left of a parent beside
    /// records below it (a save is cut between storing a split's children
    /// and removing the parent) are settled in the store, as the direct
    /// tree's load does in RAM (`settle_parent`): the children the store
    /// lacks are derived and stored (index first), then the parent is
    /// removed. Afterwards at most one node of a path holds a secret, which
    /// is what [`Self::prepare_leaf`] relies on. Levels upwards, so a cut
    /// parent below is settled before one above derives into it.
    fn settle_in_store<S: Storage>(&mut self, storage: &mut S, slot: u8, bank: u8, buf: &mut [u8]) -> Result<(), StoreError> {
        let n_leaves = self.meta.n_leaves;
        let levels = n_leaves.trailing_zeros();
        let width = width_and_chunks(n_leaves).0;
        for k in 1..=levels {
            let (start, step) = ((1usize << k) - 1, 1usize << (k + 1));
            for p in (start..width).step_by(step) {
                let node = NodeIndex(p as u32);
                if self.flags.get(p / 2).is_none_or(|f| f & PARENT_INDEXED == 0) || !self.indexed_below(node) {
                    continue;
                }
                let read = self.read_node(storage, slot, bank, p, buf);
                buf.zeroize();
                if let Some(LeafSecrets::Parent { secret, .. }) = &read? {
                    self.settle_node(storage, slot, bank, node, secret, buf)?;
                }
            }
        }
        Ok(())
    }

    /// Derives `node`'s children from `secret` down to the records below it
    /// and stores those the store lacks, then removes `node`'s record.
    fn settle_node<S: Storage>(
        &mut self,
        storage: &mut S,
        slot: u8,
        bank: u8,
        node: NodeIndex,
        secret: &Secret,
        buf: &mut [u8],
    ) -> Result<(), StoreError> {
        let corrupt = |_| StoreError::Corrupt;
        let (l, r) = match (crate::tree_math::left(node), crate::tree_math::right(node)) {
            (Some(l), Some(r)) => (l, r),
            _ => return Err(StoreError::Corrupt),
        };
        let (ls, rs) = crate::secret_tree::split_secret(self.meta.suite, secret).map_err(corrupt)?;
        for (child, derived) in [(l, ls), (r, rs)] {
            let stored = self.read_node(storage, slot, bank, child.0 as usize, buf);
            buf.zeroize();
            if stored?.is_some() {
                continue;
            }
            if !child.is_leaf() && self.indexed_below(child) {
                self.settle_node(storage, slot, bank, child, &derived, buf)?;
                continue;
            }
            let (i, indexed, kind) = if child.is_leaf() {
                (child.0 as usize / 2, LEAF_INDEXED, NODE_LEAF_SECRET)
            } else {
                (child.0 as usize / 2, PARENT_INDEXED, NODE_PARENT)
            };
            if let Some(f) = self.flags.get_mut(i) {
                *f |= indexed;
            }
            self.write_index(storage, slot, bank, buf)?;
            let len = {
                let mut w = Writer::new(buf);
                w.write_bytes(&self.meta.tag)?;
                w.write_u32(child.0)?;
                w.write_u8(kind)?;
                write_secret(&mut w, &derived)?;
                w.len()
            };
            write_sealed(storage, node_key(slot, bank, child.0 as usize)?, buf, len)?;
        }
        storage.remove(node_key(slot, bank, node.0 as usize)?)?;
        Ok(())
    }

    /// Writes the index: every node whose `*_INDEXED` flag is set, and the
    /// pool's mark. The flags and mark are raised before it: until it is
    /// written they are ahead of the store's, so a save that fails on the
    /// way leaves [`SecretTreeMeta::index_unsure`] set for the next save.
    fn write_index<S: Storage>(&mut self, storage: &mut S, slot: u8, bank: u8, buf: &mut [u8]) -> Result<(), StoreError> {
        self.meta.index_unsure = true;
        let n_leaves = self.meta.n_leaves;
        let (width, chunks) = width_and_chunks(n_leaves);
        for c in 0..chunks {
            let first = c * CHUNK_NODES;
            let nodes = (width - first).min(CHUNK_NODES);
            let len = INDEX_HEAD + nodes.div_ceil(8);
            let area = buf.get_mut(..len).ok_or(StoreError::BufferTooSmall { needed: len + CHECK_LEN })?;
            area.fill(0);
            let (head, bits) = area.split_at_mut(INDEX_HEAD);
            let mut w = Writer::new(head);
            w.write_bytes(&self.meta.tag)?;
            w.write_u32(n_leaves)?;
            w.write_u16(c as u16)?;
            w.write_u16(self.meta.pool_indexed)?;
            for j in 0..nodes {
                let node = first + j;
                let f = self.flags.get(node / 2).copied().unwrap_or(0);
                let listed = if node.is_multiple_of(2) { f & LEAF_INDEXED != 0 } else { f & PARENT_INDEXED != 0 };
                if listed && let Some(b) = bits.get_mut(j / 8) {
                    *b |= 1 << (j % 8);
                }
            }
            write_sealed(storage, index_key(slot, bank, c)?, buf, len)?;
        }
        self.meta.index_unsure = false;
        Ok(())
    }

    /// Loads the tree `tag` of `n_leaves` leaves from `bank` of group `slot`
    /// (after [`SecretTree::clear`]-like reset). Without its index the tree
    /// has no secrets: an error if `required` (the epoch's own tree), else a
    /// previous epoch whose late messages are lost (a cut while an epoch
    /// began).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn load_records<S: Storage>(
        &mut self,
        storage: &mut S,
        slot: u8,
        bank: u8,
        suite: CipherSuite,
        n_leaves: u32,
        config: SecretTreeConfig,
        tag: [u8; 8],
        required: bool,
        buf: &mut [u8],
    ) -> Result<(), StoreError> {
        self.clear();
        if n_leaves == 0 {
            return Ok(());
        }
        if usize::try_from(n_leaves).map_or(true, |n| n > N) || !n_leaves.is_power_of_two() {
            return Err(StoreError::Invalid(CodecError::CapacityExceeded(Capacity::Leaves)));
        }
        self.meta = SecretTreeMeta {
            suite,
            n_leaves,
            config,
            next_seq: 0,
            tag,
            bank_checked: false,
            evicted: false,
            pool_indexed: 0,
            index_unsure: false,
            bank_stale: false,
        };
        let (width, chunks) = width_and_chunks(n_leaves);
        for c in 0..chunks {
            let body = match read_sealed(storage, index_key(slot, bank, c)?, buf)? {
                Some(body) => body,
                None if required => return Err(StoreError::Corrupt),
                None => return Ok(()),
            };
            let mut r = Reader::new(body);
            let found: [u8; 8] = r.read_array()?;
            if found != tag {
                if required {
                    return Err(StoreError::Corrupt);
                }
                return Ok(());
            }
            if r.read_u32()? != n_leaves || usize::from(r.read_u16()?) != c {
                return Err(StoreError::Corrupt);
            }
            // The skipped-key slots that may have records (for `clean_bank`).
            self.meta.pool_indexed = r.read_u16()?;
            for (byte, bits) in r.remaining().iter().enumerate() {
                for bit in 0..8 {
                    let node = c * CHUNK_NODES + byte * 8 + bit;
                    if bits & (1 << bit) == 0 {
                        continue;
                    }
                    if node >= width {
                        return Err(StoreError::Corrupt);
                    }
                    let flag = if node.is_multiple_of(2) { LEAF_INDEXED } else { PARENT_INDEXED };
                    if let Some(f) = self.flags.get_mut(node / 2) {
                        *f |= flag;
                    }
                }
            }
        }
        self.meta.bank_checked = true;
        // The leaves' records, then the parents' level by level upwards: a
        // parent read finds whatever is stored below it in place
        // (`settle_parent`).
        let levels = n_leaves.trailing_zeros();
        let order = (0..=levels).flat_map(|k| {
            let (start, step) = ((1usize << k) - 1, 1usize << (k + 1));
            (start..width).step_by(step)
        });
        // A pool reads a node's record when a sender on its path speaks
        // (`prepare_leaf`): it may not hold them all.
        let pool = self.is_pool();
        self.meta.evicted = pool;
        if pool {
            self.settle_in_store(storage, slot, bank, buf)?;
        }
        for node in order.filter(|_| !pool) {
            let Some(value) = self.read_node(storage, slot, bank, node, buf)? else { continue };
            match &value {
                LeafSecrets::Parent { secret, .. } => {
                    let node = u32::try_from(node).map_err(|_| StoreError::Corrupt)?;
                    self.settle_parent(NodeIndex(node), secret.clone()).map_err(|e| match e {
                        SecretTreeError::CapacityExceeded(c) => StoreError::CapacityExceeded(c),
                        _ => StoreError::Corrupt,
                    })?;
                }
                _ => self.held_mut().put(node / 2, value).map_err(|_| StoreError::CapacityExceeded(Capacity::SecretTreeEntries))?,
            }
        }
        for k in 0..K.min(usize::from(self.meta.pool_indexed)) {
            let Some(body) = read_sealed(storage, pool_key(slot, bank, k)?, buf)? else { continue };
            let mut r = Reader::new(body);
            if r.read_array::<8>()? != tag {
                if let Some(d) = self.skipped_dirty.get_mut(k) {
                    *d |= SKIPPED_DIRTY;
                }
                continue;
            }
            let leaf = r.read_u32()?;
            let kind = RatchetKind::from_u8(r.read_u8()?).ok_or(StoreError::Corrupt)?.to_nonzero();
            let seq = u32::try_from(r.read_u64()?).map_err(|_| StoreError::Corrupt)?;
            let generation = r.read_u32()?;
            let key = read_secret(&mut r)?;
            let nonce = r.read_array()?;
            r.finish()?;
            self.meta.next_seq = self.meta.next_seq.max(seq.wrapping_add(1));
            if let Some(e) = self.skipped.get_mut(k) {
                *e = Some(SkippedKey { leaf, kind, seq, key: RatchetKey { generation, key, nonce } });
            }
        }
        buf.zeroize();
        let holds = if self.is_pool() {
            self.flags.iter().any(|f| f & (LEAF_INDEXED | PARENT_INDEXED) != 0)
        } else {
            self.held().iter().next().is_some()
        };
        if required && !holds {
            // The epoch's tree always holds a secret (its root at least).
            return Err(StoreError::Corrupt);
        }
        Ok(())
    }
}

fn set_flag(flags: &mut [u8], i: usize, bit: u8) {
    if let Some(f) = flags.get_mut(i) {
        *f |= bit;
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::store::StorageError;
    use crate::tree_math::LeafIndex;
    use std::collections::BTreeMap;
    use std::vec::Vec;

    const SUITE: CipherSuite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;

    /// A map store that counts the bytes written to it.
    #[derive(Default, Clone)]
    struct Counting {
        records: BTreeMap<RecordKey, Vec<u8>>,
        written: usize,
    }

    impl Storage for Counting {
        fn read<'b>(&mut self, key: RecordKey, buf: &'b mut [u8]) -> Result<Option<&'b [u8]>, StorageError> {
            let Some(v) = self.records.get(&key) else { return Ok(None) };
            let out = buf.get_mut(..v.len()).ok_or(StorageError::TooLarge)?;
            out.copy_from_slice(v);
            Ok(Some(out))
        }
        fn write(&mut self, key: RecordKey, value: &[u8]) -> Result<(), StorageError> {
            self.written += value.len();
            self.records.insert(key, value.to_vec());
            Ok(())
        }
        fn remove(&mut self, key: RecordKey) -> Result<(), StorageError> {
            self.records.remove(&key);
            Ok(())
        }
    }

    impl<const N: usize, const E: usize> SecretTree<N, 8, E> {
        /// A save of the whole tree as `store::durable` makes one (the
        /// store takes each write at once: `committed`).
        fn save_all(&mut self, store: &mut Counting, bank: u8, buf: &mut [u8]) {
            let start = self.begin_save();
            self.save_records(store, 0, bank, Records::All, buf).unwrap();
            self.end_save(start, true);
        }
    }

    fn tree<const N: usize>(n: u32, root: u8) -> std::boxed::Box<SecretTree<N, 8>> {
        let mut t = std::boxed::Box::new(SecretTree::<N, 8>::EMPTY);
        t.reset(SUITE, n, &Secret::from_slice(&[root; 32]).unwrap(), SecretTreeConfig::default()).unwrap();
        t
    }

    /// Receives generation `g` from `leaf` (as a member does once the
    /// message authenticated).
    fn receive<const N: usize, const E: usize>(t: &mut SecretTree<N, 8, E>, leaf: u32, g: u32) -> RatchetKey {
        let k = t.receiving_key(LeafIndex(leaf), RatchetKind::Application, g).unwrap();
        t.consume(LeafIndex(leaf), RatchetKind::Application, g).unwrap();
        k
    }

    /// Issue #14's target: a received message writes at most 512 bytes at
    /// 64 and at 1,024 leaves once every member has spoken (the sender's
    /// ratchets; before, the whole ratchets part: every sender's).
    #[test]
    fn a_received_message_writes_its_sender_only() {
        fn run<const N: usize>() -> (usize, usize) {
            let n = N as u32;
            let mut store = Counting::default();
            let mut buf = std::vec![0u8; super::super::MAX_RECORD_LEN];
            let mut t = tree::<N>(n, 3);
            // The same messages, never saved: what the stored tree must equal.
            let mut mirror = tree::<N>(n, 3);
            t.save_all(&mut store, 0, &mut buf);
            let mut first = 0;
            for leaf in 0..n {
                let before = store.written;
                receive(&mut t, leaf, 0);
                receive(&mut mirror, leaf, 0);
                t.save_all(&mut store, 0, &mut buf);
                first = first.max(store.written - before);
            }
            let mut steady = 0;
            for leaf in (0..n).step_by(7) {
                let before = store.written;
                receive(&mut t, leaf, 1);
                receive(&mut mirror, leaf, 1);
                t.save_all(&mut store, 0, &mut buf);
                steady = steady.max(store.written - before);
            }
            let mut back = std::boxed::Box::new(SecretTree::<N, 8>::EMPTY);
            back.load_records(&mut store, 0, 0, SUITE, n, SecretTreeConfig::default(), t.meta.tag, true, &mut buf).unwrap();
            for leaf in 0..n {
                for g in 0..3 {
                    let kind = RatchetKind::Application;
                    assert_eq!(back.receiving_key(LeafIndex(leaf), kind, g), mirror.receiving_key(LeafIndex(leaf), kind, g));
                }
            }
            (first, steady)
        }
        let (first64, steady64) = run::<64>();
        let (first1024, steady1024) = run::<1024>();
        std::println!("bytes written per message received: 64 leaves first {first64}, then {steady64}; 1,024 leaves first {first1024}, then {steady1024}");
        assert!(steady64 <= 512 && steady1024 <= 512, "{steady64} / {steady1024}");
        // A sender's first message also stores its path's siblings and the index.
        assert!(first1024 > steady1024);
    }

    /// A tree of `n` leaves with `E` entries (a pool if `E < N`).
    fn pool<const N: usize, const E: usize>(n: u32, root: u8) -> std::boxed::Box<SecretTree<N, 8, E>> {
        let mut t = std::boxed::Box::new(SecretTree::<N, 8, E>::EMPTY);
        t.reset(SUITE, n, &Secret::from_slice(&[root; 32]).unwrap(), SecretTreeConfig::default()).unwrap();
        t
    }

    /// Issue #14: a pool of 8 entries in a tree of 64 leaves (a sender's
    /// path needs 7) hears every member twice, saving after each message as
    /// a stored group does, and reads each sender's secrets back from the
    /// store when it speaks again; its keys are a direct tree's, a used key
    /// stays used, and after a reload (which reads no secret) the same.
    #[test]
    fn a_pool_reads_its_senders_secrets_back_from_the_store() {
        let mut store = Counting::default();
        let mut buf = std::vec![0u8; super::super::MAX_RECORD_LEN];
        let mut t = pool::<64, 8>(64, 3);
        let mut mirror = tree::<64>(64, 3);
        t.save_all(&mut store, 0, &mut buf);
        let senders: Vec<u32> = (0..64).map(|i| (i * 37) % 64).collect();
        let mut next = [0u32; 64];
        let mut heard = 0;
        let mut hear = |t: &mut SecretTree<64, 8, 8>, mirror: &mut SecretTree<64, 8>, store: &mut Counting, buf: &mut [u8], l: u32| {
            if t.needs_prepare() {
                t.prepare_leaf(store, 0, 0, LeafIndex(l), buf).unwrap();
            }
            let g = next[l as usize];
            next[l as usize] += 1;
            assert_eq!(receive(t, l, g), receive(mirror, l, g), "leaf {l}, generation {g}");
            t.save_all(store, 0, buf);
            heard += 1;
        };
        for _ in 0..2 {
            for &l in &senders {
                hear(&mut t, &mut mirror, &mut store, &mut buf, l);
            }
        }
        assert!(t.meta.evicted, "secrets were evicted");
        // A used key stays used once read back.
        let (l, used) = (senders[3], 1);
        t.prepare_leaf(&mut store, 0, 0, LeafIndex(l), &mut buf).unwrap();
        assert_eq!(t.receiving_key(LeafIndex(l), RatchetKind::Application, used), Err(SecretTreeError::KeyConsumed));
        // A reload reads only the index; the senders' secrets come back as they speak.
        let mut back = std::boxed::Box::new(SecretTree::<64, 8, 8>::EMPTY);
        back.load_records(&mut store, 0, 0, SUITE, 64, SecretTreeConfig::default(), t.meta.tag, true, &mut buf).unwrap();
        assert_eq!(back.held().iter().count(), 0);
        for &l in senders.iter().rev() {
            hear(&mut back, &mut mirror, &mut store, &mut buf, l);
        }
        assert_eq!(heard, 3 * 64);
        // Our own messages: the sending ratchet as a direct tree's.
        back.prepare_leaf(&mut store, 0, 0, LeafIndex(9), &mut buf).unwrap();
        assert_eq!(
            back.next_sending_key(LeafIndex(9), RatchetKind::Handshake),
            mirror.next_sending_key(LeafIndex(9), RatchetKind::Handshake)
        );
    }

    /// The cut of `a_parent_left_by_a_cut_yields_to_what_is_stored_below`
    /// loaded by a pool, which reads no secret at load: the stale root is
    /// settled in the store (what its children lack derived and stored,
    /// the root removed), and every leaf then derives what a fresh tree
    /// does, leaf 5 keeping its used generation.
    #[test]
    fn a_pool_settles_a_parent_left_by_a_cut_in_the_store() {
        let mut store = Counting::default();
        let mut buf = std::vec![0u8; super::super::MAX_RECORD_LEN];
        let mut t = tree::<8>(8, 9);
        t.save_all(&mut store, 1, &mut buf);
        let before = store.clone();
        receive(&mut t, 5, 0);
        t.save_all(&mut store, 1, &mut buf);
        let root = node_key(0, 1, 7).unwrap();
        store.records.insert(root, before.records[&root].clone());
        store.records.remove(&node_key(0, 1, 3).unwrap());
        store.records.remove(&node_key(0, 1, 8).unwrap());
        let mut back = std::boxed::Box::new(SecretTree::<8, 8, 4>::EMPTY);
        back.load_records(&mut store, 0, 1, SUITE, 8, SecretTreeConfig::default(), t.meta.tag, true, &mut buf).unwrap();
        assert!(!store.records.contains_key(&root), "the root left by the cut is removed");
        for node in [3, 8, 10, 13] {
            assert!(store.records.contains_key(&node_key(0, 1, node).unwrap()), "node {node} stored");
        }
        let mut fresh = tree::<8>(8, 9);
        receive(&mut fresh, 5, 0);
        for leaf in 0..8 {
            back.prepare_leaf(&mut store, 0, 1, LeafIndex(leaf), &mut buf).unwrap();
            assert_eq!(
                back.receiving_key(LeafIndex(leaf), RatchetKind::Application, 1).unwrap(),
                fresh.receiving_key(LeafIndex(leaf), RatchetKind::Application, 1).unwrap(),
                "leaf {leaf}"
            );
            back.consume(LeafIndex(leaf), RatchetKind::Application, 1).unwrap();
            fresh.consume(LeafIndex(leaf), RatchetKind::Application, 1).unwrap();
            back.save_all(&mut store, 1, &mut buf);
        }
        back.prepare_leaf(&mut store, 0, 1, LeafIndex(5), &mut buf).unwrap();
        assert_eq!(
            back.receiving_key(LeafIndex(5), RatchetKind::Application, 0),
            Err(crate::secret_tree::SecretTreeError::KeyConsumed)
        );
    }

    /// Why a pool's load settles a cut parent: the save of leaf 5's first
    /// message in a fresh tree of 8 is cut after leaf 4's record (node 8),
    /// so the store holds the root and that record only. After the reboot
    /// leaf 4 speaks (its record, then ratchets, are found first), then
    /// leaf 5's message comes again (its consumption was never stored, so
    /// it is read). Derived from the root as the store left it, leaf 5's
    /// path would put a fresh secret in leaf 4's place and take leaf 4's
    /// used generation again; settled at load, it does not.
    #[test]
    fn a_pool_never_derives_a_stored_leaf_again_from_a_cut_parent() {
        let mut store = Counting::default();
        let mut buf = std::vec![0u8; super::super::MAX_RECORD_LEN];
        let mut t = pool::<8, 4>(8, 5);
        t.save_all(&mut store, 0, &mut buf);
        let root = node_key(0, 0, 7).unwrap();
        let root_record = store.records[&root].clone();
        receive(&mut t, 5, 0);
        t.save_all(&mut store, 0, &mut buf);
        // The cut: only leaf 4's record and the index were written.
        store.records.insert(root, root_record);
        for node in [3, 10, 13] {
            store.records.remove(&node_key(0, 0, node).unwrap());
        }
        let mut back = std::boxed::Box::new(SecretTree::<8, 8, 4>::EMPTY);
        back.load_records(&mut store, 0, 0, SUITE, 8, SecretTreeConfig::default(), t.meta.tag, true, &mut buf).unwrap();
        let mut fresh = tree::<8>(8, 5);
        let mut hear = |back: &mut SecretTree<8, 8, 4>, store: &mut Counting, leaf: u32, g: u32| {
            back.prepare_leaf(store, 0, 0, LeafIndex(leaf), &mut buf).unwrap();
            let k = back.receiving_key(LeafIndex(leaf), RatchetKind::Application, g);
            if k.is_ok() {
                back.consume(LeafIndex(leaf), RatchetKind::Application, g).unwrap();
                back.save_all(store, 0, &mut buf);
            }
            k
        };
        assert_eq!(hear(&mut back, &mut store, 4, 0), Ok(receive(&mut fresh, 4, 0)));
        assert_eq!(hear(&mut back, &mut store, 5, 0), Ok(receive(&mut fresh, 5, 0)));
        assert_eq!(hear(&mut back, &mut store, 4, 0), Err(crate::secret_tree::SecretTreeError::KeyConsumed), "leaf 4's used key");
        assert_eq!(hear(&mut back, &mut store, 4, 1), Ok(receive(&mut fresh, 4, 1)));
    }

    /// A cut between storing a split's children and removing the parent
    /// leaves both: loading derives what is missing from the parent, keeps
    /// what is stored below it (a leaf that ratcheted on), and drops it.
    #[test]
    fn a_parent_left_by_a_cut_yields_to_what_is_stored_below() {
        let mut store = Counting::default();
        let mut buf = std::vec![0u8; super::super::MAX_RECORD_LEN];
        let mut t = tree::<8>(8, 9);
        t.save_all(&mut store, 1, &mut buf);
        let before = store.clone();
        let k0 = receive(&mut t, 5, 0);
        t.save_all(&mut store, 1, &mut buf);
        // The cut: the root (node 7) is back, as if its removal never happened.
        let root = node_key(0, 1, 7).unwrap();
        store.records.insert(root, before.records[&root].clone());
        // Two siblings on leaf 5's path lost their records too (as if the
        // cut came before they were written): the parent 3 and leaf 4
        // (node 8) are derived again.
        store.records.remove(&node_key(0, 1, 3).unwrap());
        store.records.remove(&node_key(0, 1, 8).unwrap());
        let mut back = std::boxed::Box::new(SecretTree::<8, 8>::EMPTY);
        back.load_records(&mut store, 0, 1, SUITE, 8, SecretTreeConfig::default(), t.meta.tag, true, &mut buf).unwrap();
        assert!(parent_secret(&back.held(), NodeIndex(7)).is_none(), "the parent left by the cut is dropped");
        assert!(parent_secret(&back.held(), NodeIndex(3)).is_some(), "its left child derived again, in slot 0");
        // Leaf 5 keeps its ratchet: generation 0 stays used.
        assert_eq!(
            back.receiving_key(LeafIndex(5), RatchetKind::Application, 0),
            Err(crate::secret_tree::SecretTreeError::KeyConsumed)
        );
        let mut fresh = tree::<8>(8, 9);
        assert_eq!(receive(&mut fresh, 5, 0), k0);
        for leaf in 0..8 {
            assert_eq!(
                back.receiving_key(LeafIndex(leaf), RatchetKind::Application, 1).unwrap(),
                fresh.receiving_key(LeafIndex(leaf), RatchetKind::Application, 1).unwrap(),
                "leaf {leaf}"
            );
        }
        // The next save removes the parent's record.
        back.save_all(&mut store, 1, &mut buf);
        assert!(!store.records.contains_key(&root));
    }
}
