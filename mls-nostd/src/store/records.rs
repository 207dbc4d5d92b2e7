//! The record format: the head (the commit point) and blobs of items.
//!
//! A blob is a run of records `0, 1, ...` in one bank of one part; each
//! record is a concatenation of whole items, each `u16` length-prefixed, so an
//! item (one tree node, one ratchet) is decoded from one record without
//! copying. The head holds each part's bank, record count, byte count and
//! SHA-256 over its records, and a SHA-256 of itself.

use super::{Part, RecordKey, Storage, StorageError, StoreError, blob_key, head_key};
use crate::capacity::Capacity;
use crate::codec::{CodecError, Reader, Writer};
use crate::crypto::{HashValue, Hasher};

/// Longest record this format writes (an item at most this minus 2 bytes).
/// A store's [`RecordBuffer`](super::durable::RecordBuffer), the flash
/// store's work buffer and its scrub's copy are each this long. Set at
/// build time by `MLS_NOSTD_MAX_RECORD_LEN` (a decimal number; the default,
/// 3,072, fits one item of `sequential-storage` on 4 KiB flash pages; a
/// record longer than a page holds is refused when written,
/// [`StorageError::TooLarge`]): a firmware whose capacities are small sets
/// it lower (the boards set 1,024: 4 KiB less RAM, issue #14). Every item
/// whose length this build's capacities bound must fit: a
/// [`Group`](crate::group::Group) whose capacity `N` needs longer records
/// does not save or load (it does not compile), and no build takes less
/// than [`MIN_RECORD_LEN`]. What the capacities do not bound is checked
/// when saved ([`Capacity::RecordLen`], the store unchanged): a LeafNode
/// (its credential and extensions) takes one record, with 12 bytes more
/// when a staged Commit changed it. A store is read by builds of the same
/// record length or a longer one (a shorter one refuses its longer
/// records: [`StorageError::TooLarge`]).
pub const MAX_RECORD_LEN: usize = {
    let n = crate::capacity::from_build_env(option_env!("MLS_NOSTD_MAX_RECORD_LEN"), 3072);
    assert!(n >= MIN_RECORD_LEN, "MLS_NOSTD_MAX_RECORD_LEN is below store::MIN_RECORD_LEN, the longest record every group writes");
    assert!(n <= u16::MAX as usize, "MLS_NOSTD_MAX_RECORD_LEN: an item's length is a u16");
    n
};

/// The longest record of this build that no group's capacity bounds: the
/// head, a KeyPackage's private keys, an external PSK, the tree table item
/// and the state items of a one-leaf group. A group of `N` leaves may need
/// more for its path keys and its secret tree's index
/// ([`Group::LONGEST_RECORD`](crate::group::Group::LONGEST_RECORD)).
pub const MIN_RECORD_LEN: usize = {
    let fixed = crate::crypto::max(crate::crypto::max(HEAD_LEN, super::durable::KP_RECORD_LEN), super::psks::RECORD_LEN);
    crate::crypto::max(fixed, longest_record(1))
};

/// The longest record a group of `n_leaves` leaves writes whose length this
/// build's capacities bound: an item of its parts (with its 2-byte length),
/// a record of its secret tree, or a parent node's record (also an item of
/// a stage: 6 bytes more and the length).
pub(crate) const fn longest_record(n_leaves: usize) -> usize {
    use crate::crypto::max;
    let parent = super::tree_records::parent_record_len(n_leaves) + 6 + 2;
    max(max(super::snapshot::longest_item(tree_levels(n_leaves)) + 2, super::ratchets::longest_record(n_leaves)), parent)
}

/// Levels of a tree of `n` leaves: its direct paths' length at most.
const fn tree_levels(n: usize) -> usize {
    let mut levels = 0;
    while levels < usize::BITS as usize && (1usize << levels) < n {
        levels += 1;
    }
    levels
}

impl<const N: usize, const ARENA: usize, const K: usize, const P: usize, Sig: crate::crypto::signer::Signer, const E: usize>
    crate::group::Group<N, ARENA, K, P, Sig, E>
{
    /// The longest record this group's capacity lets it write (see
    /// [`MAX_RECORD_LEN`]).
    pub const LONGEST_RECORD: usize = longest_record(N);

    /// [`MAX_RECORD_LEN`] holds [`Self::LONGEST_RECORD`]: evaluated (at
    /// compile time) by every save and load.
    pub(crate) const RECORDS_HOLD_ITEMS: () = assert!(
        Self::LONGEST_RECORD <= MAX_RECORD_LEN,
        "MLS_NOSTD_MAX_RECORD_LEN is too short for this group's capacity N (see Group::LONGEST_RECORD)"
    );
}

const HEAD_MAGIC: [u8; 4] = *b"MLSh";
/// The format version written; others are refused with `WrongVersion`.
/// Version 2 (issue #14): the secret trees are stored node by node outside
/// the banks ([`super::ratchets`]). Version 3: the ratchet tree too
/// ([`super::tree_records`]); an older store is refused, not misread.
/// Version 4: a parent's unmerged leaves as a bitmap of its subtree
/// ([`ParentRecord`](crate::ratchet_tree::node::ParentRecord)), not a list
/// of 4 bytes a leaf. Version 5: the head names its store
/// ([`Head::store_id`]), so that a group tells the store it saved to last
/// from an older copy; a head of version 4 names none (its zero bytes
/// would be taken for an id).
pub(crate) const FORMAT_VERSION: u8 = 5;
// Integrity of records (against corruption, not an attacker who can write
// flash): SHA-256, whatever the group's suite.
const HASH_LEN: usize = 32;

/// Where one part's blob is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartInfo {
    /// The bank (0 or 1) holding the current records.
    pub bank: u8,
    /// Number of records.
    pub records: u8,
    /// Bytes over all records.
    pub bytes: u32,
    /// SHA-256 over the records, in order.
    pub hash: [u8; HASH_LEN],
}

impl PartInfo {
    const EMPTY: Self = Self { bank: 0, records: 0, bytes: 0, hash: [0; HASH_LEN] };
}

/// The commit point of a group slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// Incremented by every save.
    pub seq: u32,
    /// The parts, indexed by [`Part`].
    pub parts: [PartInfo; 4],
    /// A KeyPackage consumed by the join this head stores: its private keys
    /// are removed right after the head is written, or by `recover`.
    pub consumed: Option<HashValue>,
}

const HEAD_LEN: usize = 4 + 1 + 4 + 4 * (1 + 1 + 4 + HASH_LEN) + 1 + HASH_LEN + HASH_LEN;

impl Head {
    /// A head before the first save.
    pub const NEW: Self = Self { seq: 0, parts: [PartInfo::EMPTY; 4], consumed: None };

    /// The info of `part`.
    pub fn part(&self, part: Part) -> &PartInfo {
        // `Part` discriminants are 0..4.
        match part {
            Part::Epoch => &self.parts[0],
            Part::Proposals => &self.parts[1],
            Part::Staged => &self.parts[2],
            Part::Ratchets => &self.parts[3],
        }
    }

    fn part_mut(&mut self, part: Part) -> &mut PartInfo {
        match part {
            Part::Epoch => &mut self.parts[0],
            Part::Proposals => &mut self.parts[1],
            Part::Staged => &mut self.parts[2],
            Part::Ratchets => &mut self.parts[3],
        }
    }

    pub(crate) fn set_part(&mut self, part: Part, info: PartInfo) {
        *self.part_mut(part) = info;
    }

    /// The tags of the secret trees saved with this head (the epoch's, the
    /// previous epoch's), kept in the ratchets part's entry: the ratchets
    /// themselves are not in banks.
    pub(crate) fn tree_tags(&self) -> [[u8; 8]; 2] {
        let h = &self.part(Part::Ratchets).hash;
        let mut tags = [[0u8; 8]; 2];
        for (i, t) in tags.iter_mut().enumerate() {
            if let Some(src) = h.get(i * 8..i * 8 + 8) {
                t.copy_from_slice(src);
            }
        }
        tags
    }

    pub(crate) fn set_tree_tags(&mut self, tags: [[u8; 8]; 2]) {
        let h = &mut self.part_mut(Part::Ratchets).hash;
        for (i, t) in tags.iter().enumerate() {
            if let Some(dst) = h.get_mut(i * 8..i * 8 + 8) {
                dst.copy_from_slice(t);
            }
        }
    }

    /// The id of the store this head is in, after the tree tags in the
    /// ratchets part's entry: a group keeps the id of the store it last
    /// saved to or loaded from (`Group::save`), and any other store is
    /// saved whole. The tree tags cannot tell: a copy saved earlier names
    /// the same trees with older records.
    pub(crate) fn store_id(&self) -> [u8; 8] {
        let mut id = [0u8; 8];
        if let Some(src) = self.part(Part::Ratchets).hash.get(16..24) {
            id.copy_from_slice(src);
        }
        id
    }

    pub(crate) fn set_store_id(&mut self, id: [u8; 8]) {
        if let Some(dst) = self.part_mut(Part::Ratchets).hash.get_mut(16..24) {
            dst.copy_from_slice(&id);
        }
    }

    fn encode(&self, out: &mut [u8; HEAD_LEN]) -> Result<(), CodecError> {
        let mut w = Writer::new(out);
        w.write_bytes(&HEAD_MAGIC)?;
        w.write_u8(FORMAT_VERSION)?;
        w.write_u32(self.seq)?;
        for p in &self.parts {
            w.write_u8(p.bank)?;
            w.write_u8(p.records)?;
            w.write_u32(p.bytes)?;
            w.write_bytes(&p.hash)?;
        }
        let mut consumed = [0u8; HASH_LEN];
        if let Some(r) = &self.consumed {
            consumed.get_mut(..r.as_bytes().len()).ok_or(CodecError::InvalidValue)?.copy_from_slice(r.as_bytes());
        }
        w.write_u8(self.consumed.map_or(0, |r| r.as_bytes().len() as u8))?;
        w.write_bytes(&consumed)?;
        let digest = crate::crypto::sha256(&[w.written()]);
        w.write_bytes(digest.as_bytes())?;
        Ok(())
    }

    fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        if bytes.len() != HEAD_LEN {
            return Err(StoreError::Corrupt);
        }
        let (body, digest) = bytes.split_at(HEAD_LEN - HASH_LEN);
        if !crate::crypto::sha256(&[body]).ct_eq_bytes(digest) {
            return Err(StoreError::Corrupt);
        }
        let mut r = Reader::new(body);
        if r.read_array::<4>()? != HEAD_MAGIC {
            return Err(StoreError::Corrupt);
        }
        let version = r.read_u8()?;
        if version != FORMAT_VERSION {
            return Err(StoreError::WrongVersion(version));
        }
        let seq = r.read_u32()?;
        let mut parts = [PartInfo::EMPTY; 4];
        for p in parts.iter_mut() {
            let bank = r.read_u8()?;
            if bank > 1 {
                return Err(StoreError::Corrupt);
            }
            *p = PartInfo { bank, records: r.read_u8()?, bytes: r.read_u32()?, hash: r.read_array()? };
        }
        let consumed_len = usize::from(r.read_u8()?);
        let consumed_bytes = r.read_array::<HASH_LEN>()?;
        let consumed = match consumed_len {
            0 => None,
            n => Some(HashValue::from_slice(consumed_bytes.get(..n).ok_or(StoreError::Corrupt)?).map_err(|_| StoreError::Corrupt)?),
        };
        r.finish()?;
        Ok(Self { seq, parts, consumed })
    }

    /// Reads the head of group `slot`.
    pub fn read<S: Storage>(storage: &mut S, slot: u8, buf: &mut [u8]) -> Result<Self, StoreError> {
        match storage.read(head_key(slot), buf)? {
            Some(bytes) => Self::decode(bytes),
            None => Err(StoreError::NotFound),
        }
    }

    /// Writes the head of group `slot`: the commit point. [`Group::save`]
    /// writes it after the parts; tools that build a store themselves (the
    /// fuzz targets) may too.
    ///
    /// [`Group::save`]: crate::group::Group::save
    pub fn write<S: Storage>(&self, storage: &mut S, slot: u8) -> Result<(), StoreError> {
        let mut out = [0u8; HEAD_LEN];
        self.encode(&mut out)?;
        storage.write(head_key(slot), &out)?;
        Ok(())
    }
}

/// Something items can be written to.
pub(crate) trait ItemSink {
    /// Appends one item, written by `f`.
    fn item(&mut self, f: &dyn Fn(&mut Writer<'_>) -> Result<(), CodecError>) -> Result<(), StoreError>;
}

/// Writes a blob's items into records of one bank.
pub(crate) struct BlobWriter<'a, S: Storage> {
    storage: &'a mut S,
    slot: u8,
    part: Part,
    bank: u8,
    buf: &'a mut [u8],
    used: usize,
    records: u8,
    bytes: u32,
    hasher: Hasher,
}

impl<'a, S: Storage> BlobWriter<'a, S> {
    /// Starts a blob in `bank`, after removing whatever that bank holds
    /// (unless the caller knows it `empty`: each lookup of a flash store
    /// scans its map, and one for an absent record all of it).
    /// `buf` must hold [`MAX_RECORD_LEN`] bytes.
    pub(crate) fn new(storage: &'a mut S, slot: u8, part: Part, bank: u8, empty: bool, buf: &'a mut [u8]) -> Result<Self, StoreError> {
        if buf.len() < MAX_RECORD_LEN {
            return Err(StoreError::BufferTooSmall { needed: MAX_RECORD_LEN });
        }
        if !empty {
            clear_bank(storage, slot, part, bank, buf)?;
        }
        Ok(Self { storage, slot, part, bank, buf, used: 0, records: 0, bytes: 0, hasher: Hasher::sha256() })
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        if self.used == 0 {
            return Ok(());
        }
        let record = self.buf.get(..self.used).ok_or(StoreError::BufferTooSmall { needed: self.used })?;
        self.storage.write(blob_key(self.slot, self.part, self.bank, self.records), record)?;
        self.hasher.update(record);
        self.records = self.records.checked_add(1).ok_or(StoreError::CapacityExceeded(Capacity::Records))?;
        self.bytes = self.bytes.saturating_add(self.used as u32);
        self.used = 0;
        Ok(())
    }

    /// Writes the last record; returns where the blob is.
    pub(crate) fn finish(mut self) -> Result<PartInfo, StoreError> {
        self.flush()?;
        let hash = self.hasher.clone().finish();
        let mut h = [0u8; HASH_LEN];
        h.copy_from_slice(hash.as_bytes().get(..HASH_LEN).ok_or(StoreError::Corrupt)?);
        Ok(PartInfo { bank: self.bank, records: self.records, bytes: self.bytes, hash: h })
    }
}

impl<S: Storage> ItemSink for BlobWriter<'_, S> {
    fn item(&mut self, f: &dyn Fn(&mut Writer<'_>) -> Result<(), CodecError>) -> Result<(), StoreError> {
        let mut counter = Writer::counter();
        f(&mut counter)?;
        let len = counter.len();
        let too_large = StoreError::CapacityExceeded(Capacity::RecordLen);
        let framed = len.checked_add(2).filter(|n| *n <= MAX_RECORD_LEN).ok_or(too_large)?;
        if self.used.saturating_add(framed) > MAX_RECORD_LEN {
            self.flush()?;
        }
        let end = self.used.checked_add(framed).ok_or(too_large)?;
        let out = self.buf.get_mut(self.used..end).ok_or(too_large)?;
        let mut w = Writer::new(out);
        w.write_u16(u16::try_from(len).map_err(|_| too_large)?)?;
        f(&mut w)?;
        if w.len() != framed {
            return Err(too_large);
        }
        self.used = end;
        Ok(())
    }
}

/// Checks that the records of a part match the head (count, bytes, hash)
/// before anything is decoded.
pub(crate) fn verify<S: Storage>(storage: &mut S, slot: u8, part: Part, info: &PartInfo, buf: &mut [u8]) -> Result<(), StoreError> {
    let mut hasher = Hasher::sha256();
    let mut bytes = 0u32;
    for i in 0..info.records {
        let record = storage.read(blob_key(slot, part, info.bank, i), buf)?.ok_or(StoreError::Corrupt)?;
        hasher.update(record);
        bytes = bytes.saturating_add(record.len() as u32);
    }
    if bytes != info.bytes || !hasher.finish().ct_eq_bytes(&info.hash) {
        return Err(StoreError::Corrupt);
    }
    Ok(())
}

/// Calls `f` with every item of a (verified) part, in order.
pub(crate) fn for_each_item<S: Storage>(
    storage: &mut S,
    slot: u8,
    part: Part,
    info: &PartInfo,
    buf: &mut [u8],
    f: &mut dyn FnMut(&[u8]) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    for i in 0..info.records {
        let record = storage.read(blob_key(slot, part, info.bank, i), buf)?.ok_or(StoreError::Corrupt)?;
        let mut r = Reader::new(record);
        while !r.is_empty() {
            let len = usize::from(r.read_u16()?);
            f(r.read_bytes(len)?)?;
        }
    }
    Ok(())
}

/// Removes every record of a bank. Saves write records in order and clears
/// remove them in reverse, so what a cut leaves is always a prefix `0..k`:
/// removing until the first absent index finds all of it.
pub(crate) fn clear_bank<S: Storage>(storage: &mut S, slot: u8, part: Part, bank: u8, buf: &mut [u8]) -> Result<(), StoreError> {
    let mut n: u16 = 0;
    while n <= u16::from(u8::MAX) {
        let key: RecordKey = blob_key(slot, part, bank, n as u8);
        match storage.read(key, buf) {
            Ok(Some(_)) => n += 1,
            Ok(None) => break,
            // A damaged leftover record is garbage too.
            Err(StorageError::Corrupted) => n += 1,
            Err(e) => return Err(e.into()),
        }
    }
    remove_records(storage, slot, part, bank, n)
}

/// Removes records `0..n` of a bank, the last first (so that a cut leaves
/// a prefix): a committed bank's, whose head counts them ([`PartInfo`]).
pub(crate) fn remove_records<S: Storage>(storage: &mut S, slot: u8, part: Part, bank: u8, n: u16) -> Result<(), StoreError> {
    for i in (0..n).rev() {
        storage.remove(blob_key(slot, part, bank, i as u8))?;
    }
    Ok(())
}
