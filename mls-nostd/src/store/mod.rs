//! Persistent state that survives power cuts (docs/architecture.md, decision 9).
//!
//! The caller injects a [`Storage`]: a key-value map of small records whose
//! single-record writes are atomic (a CRC-checked flash item, a file renamed
//! into place, a RAM slot). On top of it this module makes every group
//! operation atomic:
//!
//! - A group's state is three *blobs* ([`Part`]): the epoch (secrets, our
//!   private keys, the table of the public tree's nodes, transcript hashes,
//!   context), the pending proposals and a staged commit. Each blob is a run
//!   of records in one of two *banks*.
//! - The public tree's nodes are records of their own, each in one of two
//!   versions (`store/tree_records.rs`): a save writes the nodes that changed
//!   into the version the committed table does not name, so a Commit rewrites
//!   a path, not the tree.
//! - A save writes the changed blobs into their spare banks, then one *head*
//!   record naming, for each part, its bank, record count and SHA-256. The
//!   head write is the commit point: before it the old state is intact, after
//!   it the new one is. The old banks are then removed.
//! - The secret trees' ratchets (the fourth part) are records of their own,
//!   one per tree node and per kept skipped key (`store/ratchets.rs`), written as
//!   they change in an order that needs no commit point: a message sent or
//!   received writes its sender's ratchets (95 bytes) and no head, whatever
//!   the group's size.
//! - Loading verifies every blob's hash, and every tree record its own,
//!   before decoding anything, so a corrupted or foreign record is a typed
//!   error, never a half-built group; [`recover`] removes what a cut left of
//!   an unfinished save.
//! - Persist before emit: [`durable`] sends nothing (no ciphertext, no
//!   plaintext, no Commit) before the ratchet positions behind it are saved,
//!   so a reboot never reuses a key and nonce, and a replayed message stays
//!   rejected.
//! - A consumed KeyPackage's private keys are removed by the same head that
//!   stores the joined group ([`Head::consumed`]), finished by [`recover`] if
//!   the power fails in between.
//!
//! External PSKs are kept one record each ([`psks`]).
//!
//! Backends: [`RamStorage`] here, [`flash::FlashStorage`] over
//! `embedded-storage` with `sequential-storage` (feature `flash`), and a file
//! store in `platform-std`. Records removed from flash stay readable until
//! their page is erased; see [`flash`] for the scrub that bounds that delay.

pub mod durable;
#[cfg(feature = "flash")]
pub mod flash;
pub mod psks;
mod ram;
pub(crate) mod ratchets;
mod records;
mod snapshot;
mod tree_records;

pub use ram::RamStorage;
pub use records::{Head, MAX_RECORD_LEN, MIN_RECORD_LEN, PartInfo};
pub(crate) use records::ItemSink;

use crate::capacity::Capacity;
use crate::codec::CodecError;

/// A record's key. Layout: `kind (8) | slot (8) | part and bank (8) | index (8)`.
pub type RecordKey = u32;

/// Why a [`Storage`] operation failed.
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageError {
    /// No room left for the record.
    Full,
    /// The record is longer than the backend accepts.
    TooLarge,
    /// The medium failed (read, write or erase error).
    Io,
    /// The backend's own structures are damaged beyond its repair.
    Corrupted,
    /// A write reported success but did not read back (flash bug guard;
    /// a flash store may report it at its next operation, see
    /// `store::flash`).
    ReadBack,
}

/// What [`Storage::read_each`] calls with each record: its key, its bytes.
pub type EachRecord<'a> = dyn FnMut(RecordKey, &[u8]) -> Result<(), StoreError> + 'a;

/// A key-value map of records. A `write` replaces the record atomically:
/// after a power cut the key holds the old value or the new one, never a mix.
pub trait Storage {
    /// Copies the record `key` into `buf` and returns it, or `None` if absent.
    fn read<'b>(&mut self, key: RecordKey, buf: &'b mut [u8]) -> Result<Option<&'b [u8]>, StorageError>;
    /// Writes (or replaces) the record `key`.
    fn write(&mut self, key: RecordKey, value: &[u8]) -> Result<(), StorageError>;
    /// Removes the record `key` (absent keys are fine).
    fn remove(&mut self, key: RecordKey) -> Result<(), StorageError>;
    /// Called after each commit point: once at the end of every save (after
    /// the head and the removal of the old banks) and of every KeyPackage or
    /// PSK change. Backends that keep removed bytes readable (flash) erase
    /// them here, at least every so many calls (their documented bound).
    /// Transactional backends (`platform_std::SqliteStorage`) commit here
    /// every write and removal made since the previous call, as one
    /// transaction: a whole save then becomes atomic, which is why every
    /// operation that writes must end with this call (a save that fails
    /// before it leaves a prefix of its writes, which [`recover`] handles).
    fn committed(&mut self) -> Result<(), StorageError> {
        Ok(())
    }
    /// Calls `f` once with each record whose key `wanted` accepts, in no
    /// particular order; a key without a record is skipped. `keys` lists
    /// every key `wanted` accepts, in any order: this default reads them one
    /// by one into `buf`; a backend that can walk its records in a few
    /// passes (`FlashStorage`, whose lookups each scan the map) uses
    /// `wanted` instead. Loading a group reads its ratchet tree's nodes so.
    fn read_each(
        &mut self,
        keys: &mut dyn Iterator<Item = RecordKey>,
        wanted: &dyn Fn(RecordKey) -> bool,
        buf: &mut [u8],
        f: &mut EachRecord<'_>,
    ) -> Result<(), StoreError> {
        let _ = wanted;
        for key in keys {
            if let Some(value) = self.read(key, buf)? {
                f(key, value)?;
            }
        }
        Ok(())
    }
}

/// Why saving or loading state failed.
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend failed.
    Storage(StorageError),
    /// Nothing is stored in this slot.
    NotFound,
    /// A record was written by an unknown format version.
    WrongVersion(u8),
    /// A record is damaged, truncated, missing or foreign: its hash or framing
    /// does not match what the head says. Nothing was loaded.
    Corrupt,
    /// A record decoded but is invalid for this group type (e.g. more leaves
    /// than its capacity, an unknown cipher suite).
    Invalid(CodecError),
    /// A capacity was exceeded: an item larger than [`MAX_RECORD_LEN`]
    /// ([`Capacity::RecordLen`]), a part needing more records than it may
    /// have ([`Capacity::Records`]), an external PSK too long, more stored
    /// items than the group keeps.
    CapacityExceeded(Capacity),
    /// The caller's buffer is too small: `needed` bytes are needed (a
    /// [`RecordBuffer`](durable::RecordBuffer) of [`MAX_RECORD_LEN`]).
    BufferTooSmall {
        /// Bytes the buffer needs.
        needed: usize,
    },
    /// The group holds nothing to save: never created or joined, or
    /// emptied by an operation whose save failed (load it again). Saved,
    /// it would replace the slot's group.
    NoGroup,
}

impl From<StorageError> for StoreError {
    fn from(e: StorageError) -> Self {
        Self::Storage(e)
    }
}

impl From<CodecError> for StoreError {
    fn from(e: CodecError) -> Self {
        Self::Invalid(e)
    }
}

impl core::fmt::Display for StoreError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Storage(e) => write!(f, "storage failed: {e}"),
            Self::NotFound => f.write_str("no state stored in this slot"),
            Self::WrongVersion(v) => {
                write!(f, "stored state has format version {v}; this build reads version {}", records::FORMAT_VERSION)
            }
            Self::Corrupt => f.write_str("stored state is corrupted (hash mismatch)"),
            Self::Invalid(e) => write!(f, "stored state is invalid: {e}"),
            Self::CapacityExceeded(c) => write!(f, "state does not fit the store: {c} exceeded"),
            Self::BufferTooSmall { needed } => write!(f, "record buffer too small: {needed} bytes needed"),
            Self::NoGroup => f.write_str("the group is empty (never created or joined, or emptied by a failed save): nothing to save"),
        }
    }
}

impl core::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Storage(e) => Some(e),
            Self::Invalid(e) => Some(e),
            _ => None,
        }
    }
}

impl core::fmt::Display for StorageError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Full => "no room left for the record",
            Self::TooLarge => "record longer than the backend accepts",
            Self::Io => "the medium failed (read, write or erase)",
            Self::Corrupted => "the backend's structures are damaged",
            Self::ReadBack => "a written record did not read back",
        })
    }
}

impl core::error::Error for StorageError {}

/// The parts of a group's state, each stored as its own blob.
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// Epoch secrets, private keys, the public tree, context, past-epoch data.
    Epoch = 0,
    /// Pending proposals and our pending Update's leaf key.
    Proposals = 1,
    /// A staged commit (ours, waiting for the delivery service), or none.
    Staged = 2,
    /// The secret trees' ratchet positions and out-of-order keys (stored
    /// node by node, outside the banks and the head).
    Ratchets = 3,
}

impl Part {
    /// Every part, in save order.
    pub const ALL: [Part; 4] = [Part::Epoch, Part::Proposals, Part::Staged, Part::Ratchets];
    /// The parts stored as blobs in banks under the head (the ratchets are
    /// stored record by record: [`ratchets`]).
    pub(crate) const BANKED: [Part; 3] = [Part::Epoch, Part::Proposals, Part::Staged];
}

/// Which parts a save writes (the others keep their records).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parts(u8);

impl Parts {
    /// Everything.
    pub const ALL: Self = Self(0b1111);
    /// Only the ratchets (after sending or reading a message).
    pub const RATCHETS: Self = Self(1 << Part::Ratchets as u8);

    /// These parts and `p`.
    pub const fn with(self, p: Part) -> Self {
        Self(self.0 | 1 << p as u8)
    }

    /// True if `p` is included.
    pub const fn has(self, p: Part) -> bool {
        self.0 & (1 << p as u8) != 0
    }
}

/// Record kinds (the key's top byte).
pub(crate) const KIND_HEAD: u8 = 1;
pub(crate) const KIND_BLOB: u8 = 2;
pub(crate) const KIND_KEY_PACKAGE: u8 = 3;
pub(crate) const KIND_PSK: u8 = 4;
/// Secret-tree node records of banks 0 and 1 (5, 6; [`ratchets`]).
pub(crate) const KIND_TREE_NODE: u8 = 5;
/// Secret-tree pool entries and index chunks of banks 0 and 1 (7, 8).
pub(crate) const KIND_TREE_AUX: u8 = 7;
/// Ratchet-tree node records of versions 0 and 1 (9, 10; [`tree_records`]).
pub(crate) const KIND_RTREE_NODE: u8 = 9;

/// The key of a group slot's head record.
pub const fn head_key(slot: u8) -> RecordKey {
    u32::from_be_bytes([KIND_HEAD, slot, 0, 0])
}

/// The key of record `index` of `part` in `bank` of a group slot.
pub const fn blob_key(slot: u8, part: Part, bank: u8, index: u8) -> RecordKey {
    u32::from_be_bytes([KIND_BLOB, slot, (part as u8) << 1 | (bank & 1), index])
}

/// The key of KeyPackage private-key slot `n`.
pub const fn key_package_key(n: u16) -> RecordKey {
    let [a, b] = n.to_be_bytes();
    u32::from_be_bytes([KIND_KEY_PACKAGE, 0, a, b])
}

/// Finishes what a power cut interrupted in group `slot`: removes records of
/// an unfinished save (and of a finished one whose old banks were not yet
/// removed), and the KeyPackage a join consumed. Run it at start-up before
/// loading; it is idempotent.
pub fn recover<S: Storage>(storage: &mut S, slot: u8, buf: &mut [u8]) -> Result<(), StoreError> {
    let head = match Head::read(storage, slot, buf) {
        Ok(h) => h,
        Err(StoreError::NotFound) => {
            // No committed group: every bank is garbage.
            for part in Part::BANKED {
                for bank in 0..2 {
                    records::clear_bank(storage, slot, part, bank, buf)?;
                }
            }
            for bank in 0..2 {
                ratchets::clean_bank(storage, slot, bank, None, buf)?;
            }
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    for part in Part::BANKED {
        let spare = head.part(part).bank ^ 1;
        records::clear_bank(storage, slot, part, spare, buf)?;
    }
    if let Some(reference) = head.consumed {
        durable::remove_key_package(storage, &reference, buf)?;
    }
    Ok(())
}
