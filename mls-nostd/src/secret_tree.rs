//! The secret tree (RFC 9420 §9): per-sender hash ratchets for handshake and
//! application messages, derived from the epoch's `encryption_secret`, with
//! the deletion schedule of §9.2.
//!
//! Secrets are derived on demand, top-down: a node's secret is split into its
//! children's and deleted; a leaf's secret is turned into its two ratchets and
//! deleted; a ratchet's secret is replaced by the next one as soon as a
//! generation's key is used. Keys for generations skipped by out-of-order
//! delivery are kept in a bounded pool (oldest evicted first), and a receiver
//! never ratchets further ahead than [`SecretTreeConfig::max_forward_distance`].
//!
//! The algorithms work over caller-owned slices ([`SecretTreeSlots`]);
//! [`SecretTree`] is the const-generic container that owns them.

use crate::crypto::labeled::{derive_tree_secret, expand_with_labels};
use crate::capacity::Capacity;
use crate::crypto::{AEAD_NONCE_LEN, CipherSuite, CryptoError, Secret};
use crate::tree_math::{self, LeafIndex, NodeIndex};
use core::num::NonZeroU8;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Why a secret-tree key could not be produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SecretTreeError {
    /// The leaf is outside the tree.
    InvalidLeaf,
    /// The tree has more leaves than the container's capacity
    /// ([`Capacity::Leaves`]).
    CapacityExceeded(Capacity),
    /// The key of that generation was already used (or evicted): a replay, or
    /// a message older than the out-of-order window.
    KeyConsumed,
    /// The generation is further ahead than the allowed forward distance.
    TooFarAhead,
    /// The ratchet reached the last generation (2^32 - 1).
    GenerationExhausted,
    /// A derivation failed.
    Crypto(CryptoError),
}

impl From<CryptoError> for SecretTreeError {
    fn from(e: CryptoError) -> Self {
        Self::Crypto(e)
    }
}

impl core::fmt::Display for SecretTreeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::InvalidLeaf => f.write_str("leaf outside the tree"),
            Self::CapacityExceeded(c) => write!(f, "tree larger than the secret tree: {c} exceeded"),
            Self::KeyConsumed => f.write_str("key already used or outside the window"),
            Self::TooFarAhead => f.write_str("generation too far ahead"),
            Self::GenerationExhausted => f.write_str("ratchet generations exhausted"),
            Self::Crypto(e) => write!(f, "crypto: {e}"),
        }
    }
}

impl core::error::Error for SecretTreeError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Crypto(e) => Some(e),
            _ => None,
        }
    }
}

/// Which ratchet of a sender (§9.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RatchetKind {
    /// Proposals and commits sent as PrivateMessage.
    Handshake,
    /// Application data.
    Application,
}

impl RatchetKind {
    /// As a [`SkippedKey`] keeps it: 1 handshake, 2 application (a store
    /// record keeps this minus 1, [`Self::from_u8`]'s byte).
    pub(crate) const fn to_nonzero(self) -> NonZeroU8 {
        match self {
            Self::Handshake => NonZeroU8::MIN,
            Self::Application => NonZeroU8::MIN.saturating_add(1),
        }
    }

    /// The kind of byte `b` (0 handshake, 1 application), if it is one.
    pub(crate) const fn from_u8(b: u8) -> Option<Self> {
        match b {
            0 => Some(Self::Handshake),
            1 => Some(Self::Application),
            _ => None,
        }
    }
}

/// Limits of the receiving side (the sender side has none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SecretTreeConfig {
    /// How many generations a receiver may ratchet ahead in one step.
    pub max_forward_distance: u32,
}

impl Default for SecretTreeConfig {
    fn default() -> Self {
        Self { max_forward_distance: 1000 }
    }
}

/// An AEAD key and nonce for one generation of one ratchet.
#[derive(Clone, PartialEq, Eq, Debug, Zeroize, ZeroizeOnDrop)]
pub struct RatchetKey {
    /// The generation the key belongs to.
    pub generation: u32,
    /// `Nk` bytes.
    pub key: Secret,
    /// `Nn` bytes.
    pub nonce: [u8; AEAD_NONCE_LEN],
}

/// One hash ratchet: the secret of the next unused generation.
#[derive(Clone, Debug, Zeroize, ZeroizeOnDrop)]
pub struct Ratchet {
    pub(crate) secret: Secret,
    /// The generation, as little-endian bytes: a `u32` field aligned the
    /// ratchet to 4 bytes, which padded every leaf's slot of the secret tree
    /// from 75 bytes to 84 (576 bytes of a 64-leaf member, issue #14).
    generation: [u8; 4],
}

impl Ratchet {
    /// A ratchet at `generation` with `secret`.
    pub(crate) fn new(secret: Secret, generation: u32) -> Self {
        Self { secret, generation: generation.to_le_bytes() }
    }

    /// The next generation this ratchet will produce.
    pub fn generation(&self) -> u32 {
        u32::from_le_bytes(self.generation)
    }

    /// The key and nonce of the current generation (§9.1).
    fn key(&self, suite: CipherSuite) -> Result<RatchetKey, CryptoError> {
        let generation = self.generation();
        // DeriveTreeSecret(secret, "key" / "nonce", generation, ...): one keyed KDF.
        let mut key = Secret::zero(suite.aead_key_len())?;
        let mut nonce = [0u8; AEAD_NONCE_LEN];
        let context = generation.to_be_bytes();
        expand_with_labels(
            suite,
            self.secret.as_bytes(),
            [(b"key", &context, key.as_mut_bytes()), (b"nonce", &context, &mut nonce)],
        )?;
        Ok(RatchetKey { generation, key, nonce })
    }

    /// Replaces the secret by the next generation's, deleting it.
    fn advance(&mut self, suite: CipherSuite) -> Result<(), SecretTreeError> {
        let generation = self.generation();
        let next = generation.checked_add(1).ok_or(SecretTreeError::GenerationExhausted)?;
        self.secret = derive_tree_secret(suite, self.secret.as_bytes(), b"secret", generation, suite.hash_len())?;
        self.generation = next.to_le_bytes();
        Ok(())
    }
}

/// What the secret tree holds in one leaf's slot: that leaf's secrets, or
/// the secret of the parent node whose leftmost leaf it is. The nodes that
/// hold a secret never lie on one path (a node's secret is deleted once its
/// children's are derived, §9.2), so no two of them share a slot: a tree of
/// N leaves needs N slots, not 2N - 1.
#[derive(Clone, Debug, Default, Zeroize, ZeroizeOnDrop)]
pub enum LeafSecrets {
    /// Nothing yet (derived from an ancestor on demand), or consumed.
    #[default]
    Empty,
    /// The secret of the parent node of `level` (at least 1) whose leftmost
    /// leaf this is, not yet split into its children's.
    Parent {
        /// The node's level (1 for a parent of two leaves).
        level: u8,
        /// Its tree secret.
        secret: Secret,
    },
    /// The leaf's tree secret, not yet split into ratchets.
    Secret(Secret),
    /// The two ratchets of this sender.
    Ratchets {
        /// Handshake ratchet.
        handshake: Ratchet,
        /// Application ratchet.
        application: Ratchet,
    },
}

/// A kept key of a skipped generation, for out-of-order delivery.
#[derive(Clone, Debug, Zeroize, ZeroizeOnDrop)]
pub struct SkippedKey {
    #[zeroize(skip)]
    pub(crate) leaf: u32,
    /// [`RatchetKind::to_nonzero`]. Its one invalid value, 0, is where an
    /// `Option<SkippedKey>` keeps its `None`, so an empty slot is all zero
    /// bytes and needs no tag of its own (a `RatchetKind` field would keep
    /// `None` as its unused value 2, and an empty tree would not be zero).
    #[zeroize(skip)]
    pub(crate) kind: NonZeroU8,
    /// Insertion order, to evict the oldest. 32 bits (a `u64` made each
    /// entry 8 bytes larger): it wraps only after 2^32 keys skipped in one
    /// epoch, far beyond any `max_forward_distance`, and would then only
    /// choose another entry to evict.
    #[zeroize(skip)]
    pub(crate) seq: u32,
    pub(crate) key: RatchetKey,
}

/// The secrets a tree holds, by slot: slot `i` holds leaf `i`'s secrets or
/// those of the parent node whose leftmost leaf is `i` ([`LeafSecrets`]).
///
/// *Direct* (`tags` empty): entry `i` is slot `i`, one entry per leaf.
/// *Pool* (fewer entries than leaves): an entry holds the slot its tag
/// names, and a slot not held by any entry is empty. A tree holds the
/// secrets of the senders heard from and the siblings of their paths
/// (§9.2 deletes a node's secret once its children's are derived), so a
/// pool's RAM follows the senders heard from in an epoch, not the group's
/// size (issue #14).
pub(crate) struct Held<'s> {
    entries: &'s [LeafSecrets],
    tags: &'s [u16],
}

/// [`Held`], to change.
pub(crate) struct HeldMut<'s> {
    entries: &'s mut [LeafSecrets],
    tags: &'s mut [u16],
}

/// What an empty slot reads as.
static EMPTY_SLOT: LeafSecrets = LeafSecrets::Empty;

/// The entry of slot `i`: itself in a direct tree, else the entry tagged
/// `i` that holds something.
fn entry_of(entries: &[LeafSecrets], tags: &[u16], i: usize) -> Option<usize> {
    if tags.is_empty() {
        return (i < entries.len()).then_some(i);
    }
    let tag = u16::try_from(i).ok()?;
    entries.iter().zip(tags).position(|(e, t)| *t == tag && !matches!(e, LeafSecrets::Empty))
}

impl<'s> Held<'s> {
    /// The view of `entries` tagged by `tags` (by slot if `direct`).
    fn of(entries: &'s [LeafSecrets], tags: &'s [u16], direct: bool) -> Self {
        Self { entries, tags: if direct { &[] } else { tags } }
    }

    /// Entries free for new secrets (a direct tree has one for every slot).
    fn free(&self) -> usize {
        if self.tags.is_empty() {
            return usize::MAX;
        }
        self.entries.iter().filter(|e| matches!(e, LeafSecrets::Empty)).count()
    }

    /// Slot `i`'s secrets ([`LeafSecrets::Empty`] if none).
    pub(crate) fn get(&self, i: usize) -> &'s LeafSecrets {
        entry_of(self.entries, self.tags, i).and_then(|e| self.entries.get(e)).unwrap_or(&EMPTY_SLOT)
    }

    /// Some slot in `first..end` holds a secret.
    fn any_within(&self, first: usize, end: usize) -> bool {
        if self.tags.is_empty() {
            let end = end.min(self.entries.len());
            return self.entries.get(first..end).is_some_and(|s| s.iter().any(|l| !matches!(l, LeafSecrets::Empty)));
        }
        self.entries.iter().zip(self.tags).any(|(e, t)| (first..end).contains(&usize::from(*t)) && !matches!(e, LeafSecrets::Empty))
    }

    /// The slots that hold a secret, with it.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, &LeafSecrets)> + '_ {
        let direct = self.tags.is_empty();
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| !matches!(e, LeafSecrets::Empty))
            .map(move |(e, l)| (if direct { e } else { self.tags.get(e).map_or(usize::MAX, |t| usize::from(*t)) }, l))
    }
}

impl<'s> HeldMut<'s> {
    /// [`Held::of`], to change.
    fn of(entries: &'s mut [LeafSecrets], tags: &'s mut [u16], direct: bool) -> Self {
        Self { entries, tags: if direct { &mut [] } else { tags } }
    }

    pub(crate) fn as_ref(&self) -> Held<'_> {
        Held { entries: self.entries, tags: self.tags }
    }

    /// Slot `i`'s secrets, if it holds any.
    fn get_mut(&mut self, i: usize) -> Option<&mut LeafSecrets> {
        let e = entry_of(self.entries, self.tags, i)?;
        self.entries.get_mut(e).filter(|l| !matches!(l, LeafSecrets::Empty))
    }

    /// Puts `value` in slot `i`, replacing (and wiping) what it held.
    pub(crate) fn put(&mut self, i: usize, value: LeafSecrets) -> Result<(), SecretTreeError> {
        let e = match entry_of(self.entries, self.tags, i) {
            Some(e) => e,
            None if self.tags.is_empty() => return Err(SecretTreeError::CapacityExceeded(Capacity::Leaves)),
            None => self
                .entries
                .iter()
                .position(|e| matches!(e, LeafSecrets::Empty))
                .ok_or(SecretTreeError::CapacityExceeded(Capacity::SecretTreeEntries))?,
        };
        if let Some(t) = self.tags.get_mut(e) {
            *t = u16::try_from(i).map_err(|_| SecretTreeError::CapacityExceeded(Capacity::Leaves))?;
        }
        *self.entries.get_mut(e).ok_or(SecretTreeError::CapacityExceeded(Capacity::Leaves))? = value;
        Ok(())
    }

    /// Empties slot `i` (its secrets are wiped as they are replaced).
    fn empty(&mut self, i: usize) {
        if let Some(l) = self.get_mut(i) {
            *l = LeafSecrets::Empty;
        }
    }

    /// Empties every slot.
    fn empty_all(&mut self) {
        self.entries.iter_mut().filter(|e| !matches!(e, LeafSecrets::Empty)).for_each(|e| *e = LeafSecrets::Empty);
    }
}

/// Caller-owned storage of a secret tree.
pub struct SecretTreeSlots<'s> {
    /// The secrets held, by slot (direct, or a pool of tagged entries).
    pub(crate) held: HeldMut<'s>,
    /// Pool of skipped-generation keys, shared by all senders.
    pub skipped: &'s mut [Option<SkippedKey>],
    /// What changed since the last save, per index `i` (leaf `i` and the
    /// parent `2i + 1`: [`LEAF_DIRTY`], [`PARENT_DIRTY`]), so a store writes
    /// only those (as long as `leaves`).
    pub flags: &'s mut [u8],
    /// Which pool entries changed since the last save (as long as
    /// `skipped`; bit 0, the rest a store's during a save).
    pub skipped_dirty: &'s mut [u8],
}

/// [`SecretTreeSlots::flags`]: leaf `i` changed since the last save.
pub const LEAF_DIRTY: u8 = 1;
/// [`SecretTreeSlots::flags`]: parent `2i + 1` changed since the last save.
pub const PARENT_DIRTY: u8 = 2;
/// [`SecretTreeSlots::flags`] (for stores): leaf `i` is in the saved index.
pub const LEAF_INDEXED: u8 = 4;
/// [`SecretTreeSlots::flags`] (for stores): parent `2i + 1` is in the saved index.
pub const PARENT_INDEXED: u8 = 8;
/// [`SecretTreeSlots::flags`] (for stores, during a save only): leaf `i`'s
/// record was written (or removed) by the save under way, which has not
/// committed yet. [`LEAF_DIRTY`] stays until it has: a backend that rolls
/// a failed save back (`Storage::committed`) takes the write back too, so
/// the next save must write it again (`store::ratchets`).
pub(crate) const LEAF_PENDING: u8 = LEAF_DIRTY << 4;
/// [`SecretTreeSlots::flags`] (during a save): as [`LEAF_PENDING`], of
/// parent `2i + 1`.
pub(crate) const PARENT_PENDING: u8 = PARENT_DIRTY << 4;
/// [`SecretTreeSlots::skipped_dirty`]: the pool entry changed since the last save.
pub(crate) const SKIPPED_DIRTY: u8 = 1;
/// [`SecretTreeSlots::skipped_dirty`] (during a save): as [`LEAF_PENDING`],
/// of a pool entry.
pub(crate) const SKIPPED_PENDING: u8 = SKIPPED_DIRTY << 4;

fn mark(flags: &mut [u8], i: usize, bit: u8) {
    if let Some(f) = flags.get_mut(i) {
        *f |= bit;
    }
}

/// The state of a secret tree besides its storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SecretTreeMeta {
    pub(crate) suite: CipherSuite,
    pub(crate) n_leaves: u32,
    pub(crate) config: SecretTreeConfig,
    pub(crate) next_seq: u32,
    /// Names this tree in a store (see [`tree_tag`]).
    pub(crate) tag: [u8; 8],
    /// A store checked that its bank holds this tree's records or none.
    pub(crate) bank_checked: bool,
    /// Some secret of this pool is in the store only (evicted, or not read
    /// back after a load): a store brings a sender's path in before its
    /// message (`store::ratchets`).
    pub(crate) evicted: bool,
    /// Skipped-key slots the store's index covers (`store::ratchets`): a
    /// slot at or above it has no record.
    pub(crate) pool_indexed: u16,
    /// The store's index may not match the flags and mark above: a write
    /// of it, or a save after it (a backend that rolls a failed save
    /// back), failed. The next save writes the index again.
    pub(crate) index_unsure: bool,
    /// The bank may hold records of this tree that the flags do not account
    /// for: from a save to a store that never committed them, or an older
    /// copy's (`store::ratchets`' `mark_all_unsaved`, for a store not the
    /// group's own): the next save removes them all, then writes every
    /// record.
    pub(crate) bank_stale: bool,
}

/// The name of the tree rooted at `encryption_secret` in a store: the first
/// 8 bytes of SHA-256 over a label and the root secret (one-way, as a key
/// check value), so a record of another epoch or group is never taken for
/// this tree's.
pub(crate) fn tree_tag(encryption_secret: &Secret) -> [u8; 8] {
    let h = crate::crypto::sha256(&[b"mls-nostd secret tree", encryption_secret.as_bytes()]);
    let mut tag = [0u8; 8];
    if let Some(head) = h.as_bytes().get(..8) {
        tag.copy_from_slice(head);
    }
    tag
}

impl SecretTreeMeta {
    /// Sets up `slots` for a tree of `n_leaves` leaves rooted at `encryption_secret`.
    pub fn init(
        suite: CipherSuite,
        n_leaves: u32,
        encryption_secret: &Secret,
        config: SecretTreeConfig,
        slots: &mut SecretTreeSlots<'_>,
    ) -> Result<Self, SecretTreeError> {
        Self::init_after(suite, n_leaves, encryption_secret, config, slots, usize::MAX)
    }

    /// [`Self::init`] where only the first `used` leaves (and their
    /// parents) may hold a secret: those of the tree it replaces.
    fn init_after(
        suite: CipherSuite,
        n_leaves: u32,
        encryption_secret: &Secret,
        config: SecretTreeConfig,
        slots: &mut SecretTreeSlots<'_>,
        used: usize,
    ) -> Result<Self, SecretTreeError> {
        let n = usize::try_from(n_leaves).map_err(|_| SecretTreeError::CapacityExceeded(Capacity::Leaves))?;
        if n == 0 || !n_leaves.is_power_of_two() {
            return Err(SecretTreeError::InvalidLeaf);
        }
        if slots.flags.len() < n {
            return Err(SecretTreeError::CapacityExceeded(Capacity::Leaves));
        }
        // A pool derives a leaf's secrets from the root with one entry per
        // level (the path's siblings) and one for the leaf.
        if !slots.held.tags.is_empty() && slots.held.entries.len() <= n_leaves.trailing_zeros() as usize {
            return Err(SecretTreeError::CapacityExceeded(Capacity::SecretTreeEntries));
        }
        // The last epoch's secrets are dropped (wiped): only those that hold
        // one are written (at 1,024 leaves, rewriting every slot was half of
        // merging a Commit), and only within the tree replaced (a slot with
        // room for more leaves than the group has is not read whole).
        //
        // A slot that holds a secret has its flag byte set: every write marks
        // it `*_DIRTY`, a save keeps it `*_INDEXED`, a load marks what it
        // reads. So the flags (a byte per leaf) are read, not the slots
        // (about 250 bytes per leaf: 16 MB at 65,536 leaves); a slot with no
        // flag byte is cleared. The flags are read 256 at a time (OR-ed
        // together, which vectorizes), since most are 0: one at a time was
        // a tenth of merging a Commit at 50,000 members. A parent's flags are
        // at `node / 2`, its secret in its leftmost leaf's slot.
        // (A pool's entries are few: each is cleared.)
        if slots.held.tags.is_empty() {
            let end = used.min(slots.held.entries.len());
            let flagged = end.min(slots.flags.len());
            let leaves = &mut *slots.held.entries;
            let mut clear = |i: usize, f: u8| {
                for (bits, at) in [(LEAF_DIRTY | LEAF_INDEXED, Some(i)), (PARENT_DIRTY | PARENT_INDEXED, leftmost_slot(parent_node(i)).ok())] {
                    if f & bits != 0
                        && let Some(l) = at.and_then(|at| leaves.get_mut(at))
                    {
                        *l = LeafSecrets::Empty;
                    }
                }
            };
            for (base, chunk) in (0usize..).step_by(256).zip(slots.flags.get(..flagged).unwrap_or(&[]).chunks(256)) {
                if chunk.iter().fold(0, |a, f| a | *f) != 0 {
                    (base..).zip(chunk).filter(|(_, f)| **f != 0).for_each(|(i, f)| clear(i, *f));
                }
            }
            (flagged..end).for_each(|i| clear(i, u8::MAX));
        } else {
            slots.held.empty_all();
        }
        slots.skipped.iter_mut().filter(|s| s.is_some()).for_each(|s| *s = None);
        slots.flags.fill(0);
        slots.skipped_dirty.fill(0);
        let root = tree_math::root(n_leaves).ok_or(SecretTreeError::InvalidLeaf)?;
        // A one-leaf tree's root is its leaf.
        store(slots, root, encryption_secret.clone())?;
        Ok(Self {
            suite,
            n_leaves,
            config,
            next_seq: 0,
            tag: tree_tag(encryption_secret),
            bank_checked: false,
            evicted: false,
            pool_indexed: 0,
            index_unsure: false,
            bank_stale: false,
        })
    }

    /// Number of leaves.
    pub fn n_leaves(&self) -> u32 {
        self.n_leaves
    }

    /// The key for the next message `leaf` sends with `kind`; the ratchet
    /// moves past it before it is returned (persist before use).
    pub fn next_sending_key(
        &mut self,
        slots: &mut SecretTreeSlots<'_>,
        leaf: LeafIndex,
        kind: RatchetKind,
    ) -> Result<RatchetKey, SecretTreeError> {
        let ratchet = self.ratchet(slots, leaf, kind)?;
        let key = ratchet.key(self.suite)?;
        ratchet.advance(self.suite)?;
        mark(slots.flags, leaf_slot(leaf)?, LEAF_DIRTY);
        Ok(key)
    }

    /// The key of `generation` for a message received from `leaf`, without
    /// consuming it: call [`Self::consume`] once the message authenticated,
    /// so that a forged message cannot burn keys.
    pub fn receiving_key(
        &mut self,
        slots: &mut SecretTreeSlots<'_>,
        leaf: LeafIndex,
        kind: RatchetKind,
        generation: u32,
    ) -> Result<RatchetKey, SecretTreeError> {
        let suite = self.suite;
        let max = self.config.max_forward_distance;
        // No sender ever uses the last generation (its ratchet cannot move
        // past it, see `next_sending_key`): refused before any work.
        if generation == u32::MAX {
            return Err(SecretTreeError::GenerationExhausted);
        }
        let ratchet = self.ratchet(slots, leaf, kind)?;
        if generation < ratchet.generation() {
            return find_skipped(slots.skipped, leaf, kind, generation)
                .map(|i| i.key.clone())
                .ok_or(SecretTreeError::KeyConsumed);
        }
        if generation - ratchet.generation() > max {
            return Err(SecretTreeError::TooFarAhead);
        }
        let mut probe = ratchet.clone();
        while probe.generation() < generation {
            probe.advance(suite)?;
        }
        Ok(probe.key(suite)?)
    }

    /// Deletes the key of `generation` after its message was accepted: from
    /// the pool if it was skipped, otherwise by ratcheting past it and keeping
    /// the keys of generations jumped over.
    pub fn consume(
        &mut self,
        slots: &mut SecretTreeSlots<'_>,
        leaf: LeafIndex,
        kind: RatchetKind,
        generation: u32,
    ) -> Result<(), SecretTreeError> {
        let suite = self.suite;
        let max = self.config.max_forward_distance;
        // Checked before the ratchet moves: consuming the last generation
        // would fail only after skipping ahead (a refusal that changed state).
        if generation == u32::MAX {
            return Err(SecretTreeError::GenerationExhausted);
        }
        let current = self.ratchet(slots, leaf, kind)?.generation();
        if generation < current {
            let i = slots
                .skipped
                .iter()
                .position(|s| matches!(s, Some(k) if k.leaf == leaf.0 && k.kind == kind.to_nonzero() && k.key.generation == generation))
                .ok_or(SecretTreeError::KeyConsumed)?;
            if let Some(s) = slots.skipped.get_mut(i) {
                *s = None;
            }
            if let Some(d) = slots.skipped_dirty.get_mut(i) {
                *d |= SKIPPED_DIRTY;
            }
            return Ok(());
        }
        if generation - current > max {
            return Err(SecretTreeError::TooFarAhead);
        }
        mark(slots.flags, leaf_slot(leaf)?, LEAF_DIRTY);
        while self.ratchet(slots, leaf, kind)?.generation() < generation {
            let ratchet = self.ratchet(slots, leaf, kind)?;
            let key = ratchet.key(suite)?;
            ratchet.advance(suite)?;
            self.keep_skipped(slots.skipped, slots.skipped_dirty, leaf, kind, key);
        }
        self.ratchet(slots, leaf, kind)?.advance(suite)
    }

    fn keep_skipped(
        &mut self,
        pool: &mut [Option<SkippedKey>],
        dirty: &mut [u8],
        leaf: LeafIndex,
        kind: RatchetKind,
        key: RatchetKey,
    ) {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        // A free slot, else the oldest entry (evicting it deletes its key).
        let slot = pool.iter().position(Option::is_none).or_else(|| {
            pool.iter()
                .enumerate()
                .min_by_key(|(_, s)| s.as_ref().map_or(0, |k| k.seq))
                .map(|(i, _)| i)
        });
        if let Some(i) = slot {
            if let Some(s) = pool.get_mut(i) {
                *s = Some(SkippedKey { leaf: leaf.0, kind: kind.to_nonzero(), seq, key });
            }
            if let Some(d) = dirty.get_mut(i) {
                *d |= SKIPPED_DIRTY;
            }
        }
    }

    /// The ratchet of `leaf`, deriving it (and deleting what it came from) on
    /// first use.
    fn ratchet<'t>(
        &self,
        slots: &'t mut SecretTreeSlots<'_>,
        leaf: LeafIndex,
        kind: RatchetKind,
    ) -> Result<&'t mut Ratchet, SecretTreeError> {
        if leaf.0 >= self.n_leaves {
            return Err(SecretTreeError::InvalidLeaf);
        }
        let idx = usize::try_from(leaf.0).map_err(|_| SecretTreeError::InvalidLeaf)?;
        // Empty, or holding the secret of an ancestor whose leftmost leaf it is.
        if matches!(slots.held.as_ref().get(idx), LeafSecrets::Empty | LeafSecrets::Parent { .. }) {
            self.derive_leaf_secret(slots, leaf)?;
        }
        let suite = self.suite;
        let entry = slots.held.get_mut(idx).ok_or(SecretTreeError::KeyConsumed)?;
        if let LeafSecrets::Secret(secret) = entry {
            let (mut handshake, mut application) = (Secret::zero(suite.hash_len())?, Secret::zero(suite.hash_len())?);
            expand_with_labels(
                suite,
                secret.as_bytes(),
                [(b"handshake", &[], handshake.as_mut_bytes()), (b"application", &[], application.as_mut_bytes())],
            )?;
            let (handshake, application) = (Ratchet::new(handshake, 0), Ratchet::new(application, 0));
            *entry = LeafSecrets::Ratchets { handshake, application };
            mark(slots.flags, idx, LEAF_DIRTY);
        }
        match entry {
            LeafSecrets::Ratchets { handshake, application } => Ok(match kind {
                RatchetKind::Handshake => handshake,
                RatchetKind::Application => application,
            }),
            _ => Err(SecretTreeError::KeyConsumed),
        }
    }

    /// Walks from the root to `leaf`, splitting each stored secret on the way
    /// into its children's (§9: "left"/"right") and deleting it.
    ///
    /// From a secret held `h` levels up, the walk holds `h` more secrets
    /// (each level's sibling, and the leaf's for the parent's): a pool
    /// without that many free entries refuses before anything changes.
    fn derive_leaf_secret(&self, slots: &mut SecretTreeSlots<'_>, leaf: LeafIndex) -> Result<(), SecretTreeError> {
        let target = leaf.node().ok_or(SecretTreeError::InvalidLeaf)?;
        let root = tree_math::root(self.n_leaves).ok_or(SecretTreeError::InvalidLeaf)?;
        let n_leaves = self.n_leaves;
        let held = core::iter::successors(tree_math::parent(target, n_leaves), |p| tree_math::parent(*p, n_leaves))
            .find(|n| parent_secret(&slots.held.as_ref(), *n).is_some());
        if let Some(holder) = held
            && slots.held.as_ref().free() < tree_math::level(holder) as usize
        {
            return Err(SecretTreeError::CapacityExceeded(Capacity::SecretTreeEntries));
        }
        let mut cur = root;
        while cur != target {
            let (l, r) = match (tree_math::left(cur), tree_math::right(cur)) {
                (Some(l), Some(r)) => (l, r),
                _ => return Err(SecretTreeError::InvalidLeaf),
            };
            if let Some(secret) = take_parent_secret(&mut slots.held, cur)? {
                mark(slots.flags, parent_slot(cur)?, PARENT_DIRTY);
                let (ls, rs) = split_secret(self.suite, &secret)?;
                store(slots, l, ls)?;
                store(slots, r, rs)?;
            }
            cur = if target.0 < cur.0 { l } else { r };
        }
        Ok(())
    }
}

/// A node's secret split into its children's (§9: "tree", "left"/"right").
pub(crate) fn split_secret(suite: CipherSuite, secret: &Secret) -> Result<(Secret, Secret), SecretTreeError> {
    let nh = suite.hash_len();
    let mut ls = Secret::zero(nh)?;
    let mut rs = Secret::zero(nh)?;
    expand_with_labels(suite, secret.as_bytes(), [(b"tree", b"left", ls.as_mut_bytes()), (b"tree", b"right", rs.as_mut_bytes())])?;
    Ok((ls, rs))
}

fn find_skipped(pool: &[Option<SkippedKey>], leaf: LeafIndex, kind: RatchetKind, generation: u32) -> Option<&SkippedKey> {
    pool.iter()
        .flatten()
        .find(|k| k.leaf == leaf.0 && k.kind == kind.to_nonzero() && k.key.generation == generation)
}

fn leaf_slot(leaf: LeafIndex) -> Result<usize, SecretTreeError> {
    usize::try_from(leaf.0).map_err(|_| SecretTreeError::InvalidLeaf)
}

/// The index of parent `node` (an odd index) in `flags`.
fn parent_slot(node: NodeIndex) -> Result<usize, SecretTreeError> {
    if node.is_leaf() {
        return Err(SecretTreeError::InvalidLeaf);
    }
    usize::try_from(node.0 >> 1).map_err(|_| SecretTreeError::InvalidLeaf)
}

/// The slot of `node`'s secret: its leftmost leaf's.
pub(crate) fn leftmost_slot(node: NodeIndex) -> Result<usize, SecretTreeError> {
    usize::try_from(tree_math::leaf_span(node).0).map_err(|_| SecretTreeError::InvalidLeaf)
}

/// The parent node whose flags are at index `i` (`2i + 1`, see [`parent_slot`]).
pub(crate) fn parent_node(i: usize) -> NodeIndex {
    NodeIndex(u32::try_from(i).unwrap_or(u32::MAX).saturating_mul(2).saturating_add(1))
}

/// Parent `node`'s secret, if its slot holds it.
pub(crate) fn parent_secret<'h>(held: &Held<'h>, node: NodeIndex) -> Option<&'h Secret> {
    let level = u8::try_from(tree_math::level(node)).ok().filter(|l| *l > 0)?;
    let i = leftmost_slot(node).ok()?;
    let e = entry_of(held.entries, held.tags, i)?;
    match held.entries.get(e)? {
        LeafSecrets::Parent { level: l, secret } if *l == level => Some(secret),
        _ => None,
    }
}

/// Takes parent `node`'s secret out of its slot, if the slot holds it.
fn take_parent_secret(held: &mut HeldMut<'_>, node: NodeIndex) -> Result<Option<Secret>, SecretTreeError> {
    let Some(secret) = parent_secret(&held.as_ref(), node).cloned() else { return Ok(None) };
    // The slot's value is zeroized as it is replaced.
    held.empty(leftmost_slot(node)?);
    Ok(Some(secret))
}

/// The slot holds its own leaf's secrets (not an ancestor's).
pub(crate) fn holds_leaf(held: &Held<'_>, i: usize) -> bool {
    matches!(held.get(i), LeafSecrets::Secret(_) | LeafSecrets::Ratchets { .. })
}

pub(crate) fn store(slots: &mut SecretTreeSlots<'_>, node: NodeIndex, secret: Secret) -> Result<(), SecretTreeError> {
    match node.leaf() {
        Some(leaf) => {
            let i = leaf_slot(leaf)?;
            slots.held.put(i, LeafSecrets::Secret(secret))?;
            mark(slots.flags, i, LEAF_DIRTY);
        }
        None => {
            let level = u8::try_from(tree_math::level(node)).map_err(|_| SecretTreeError::InvalidLeaf)?;
            slots.held.put(leftmost_slot(node)?, LeafSecrets::Parent { level, secret })?;
            mark(slots.flags, parent_slot(node)?, PARENT_DIRTY);
        }
    }
    Ok(())
}

/// A secret tree for up to `N` leaves, keeping up to `K` skipped keys and
/// the secrets of up to `E` slots at once (a group's `E`, by default `N`).
///
/// With `E` at least `N` the tree is direct: a slot per leaf, 75 bytes each
/// (suites of SHA-256). With fewer, its `E` entries hold the secrets of
/// the senders heard from in the epoch and of their paths' siblings,
/// each tagged with its slot: a sender's first message needs one entry per level of the
/// tree between it and the nearest secret held (the root's in a fresh
/// epoch), so `s` senders spread over a tree of depth `d` need at most
/// about `s * (1 + d - log2 s)` entries (16 senders of 64 leaves: 48). A
/// message whose sender finds too few free entries is refused
/// ([`Capacity::SecretTreeEntries`]) with nothing changed; `E` must be at
/// least `d + 1`, the entries of one sender from the root.
pub struct SecretTree<const N: usize, const K: usize, const E: usize = N> {
    pub(crate) meta: SecretTreeMeta,
    pub(crate) entries: [LeafSecrets; E],
    /// The slot each entry holds, in a pool (`E < N`); unused when direct.
    pub(crate) tags: [u16; E],
    pub(crate) skipped: [Option<SkippedKey>; K],
    /// See [`SecretTreeSlots::flags`].
    pub(crate) flags: [u8; N],
    /// See [`SecretTreeSlots::skipped_dirty`].
    pub(crate) skipped_dirty: [u8; K],
}

#[cfg(feature = "test-utils")]
impl<const N: usize, const K: usize, const E: usize> SecretTree<N, K, E> {
    /// The root's secret (the epoch's `encryption_secret`) until a message
    /// of the epoch consumes it; for this workspace's tests, which derive
    /// message keys themselves (feature `test-utils`).
    #[doc(hidden)]
    pub fn root_secret_for_testing(&self) -> Option<&Secret> {
        let root = tree_math::root(self.meta.n_leaves)?;
        match root.leaf() {
            Some(leaf) => match self.held().get(leaf_slot(leaf).ok()?) {
                LeafSecrets::Secret(s) => Some(s),
                _ => None,
            },
            None => parent_secret(&self.held(), root),
        }
    }
}

impl<const N: usize, const K: usize, const E: usize> SecretTree<N, K, E> {
    /// The tree is direct: a slot per leaf ([`Held`]'s two forms).
    const DIRECT: bool = E >= N;
    /// A pool's tags name slots in 16 bits.
    const TAGS_FIT: () = assert!(E >= N || N <= 1 << 16, "a secret tree with fewer entries than leaves holds at most 65,536 leaves");

    /// The secrets held, by slot.
    pub(crate) fn held(&self) -> Held<'_> {
        Held::of(&self.entries, &self.tags, Self::DIRECT)
    }

    /// The secrets held, by slot, beside the flags to change.
    pub(crate) fn held_and_flags(&mut self) -> (Held<'_>, &mut [u8]) {
        (Held::of(&self.entries, &self.tags, Self::DIRECT), &mut self.flags)
    }

    /// The tree holds fewer entries than it has slots.
    pub(crate) const fn is_pool(&self) -> bool {
        !Self::DIRECT
    }

    /// A store must make room (and read secrets back) before a message of
    /// this tree: a pool that evicted secrets, or has fewer free entries
    /// than a sender's first message from the root may need.
    pub(crate) fn needs_prepare(&self) -> bool {
        let depth = self.meta.n_leaves.trailing_zeros() as usize;
        !Self::DIRECT && (self.meta.evicted || self.held().free() < depth)
    }

    /// `node`'s secrets are held (not only stored).
    pub(crate) fn holds_node(&self, node: NodeIndex) -> bool {
        match node.leaf() {
            Some(leaf) => leaf_slot(leaf).is_ok_and(|i| holds_leaf(&self.held(), i)),
            None => parent_secret(&self.held(), node).is_some(),
        }
    }

    /// Evicts held secrets that the store holds unchanged (their record
    /// saved, nothing since: `*_INDEXED` without `*_DIRTY`), other than slot
    /// `keep`'s, until `need` entries are free; they are read back when a
    /// sender below them speaks (`store::ratchets`). False if too few
    /// could be evicted (what was evicted stays evicted: the store has it).
    pub(crate) fn evict_for(&mut self, need: usize, keep: Option<usize>) -> bool {
        if Self::DIRECT {
            return true;
        }
        let mut free = self.held().free();
        for e in 0..E {
            if free >= need {
                break;
            }
            let slot = self.tags.get(e).map_or(usize::MAX, |t| usize::from(*t));
            let node = match self.entries.get(e) {
                Some(LeafSecrets::Secret(_) | LeafSecrets::Ratchets { .. }) => NodeIndex((2 * slot) as u32),
                Some(LeafSecrets::Parent { level, .. }) => NodeIndex((2 * slot + (1usize << (*level).min(31)) - 1) as u32),
                _ => continue,
            };
            let (indexed, dirty) = if node.is_leaf() { (LEAF_INDEXED, LEAF_DIRTY) } else { (PARENT_INDEXED, PARENT_DIRTY) };
            let clean = self.flags.get(node.0 as usize / 2).is_some_and(|b| b & indexed != 0 && b & dirty == 0);
            if !clean || Some(slot) == keep {
                continue;
            }
            if let Some(entry) = self.entries.get_mut(e) {
                *entry = LeafSecrets::Empty;
            }
            self.meta.evicted = true;
            free += 1;
        }
        free >= need
    }

    /// Holds `node`'s secrets as its record in the store has them (clean:
    /// nothing to save).
    pub(crate) fn take_in(&mut self, node: NodeIndex, value: LeafSecrets) -> Result<(), SecretTreeError> {
        let slot = match node.leaf() {
            Some(leaf) => leaf_slot(leaf)?,
            None => leftmost_slot(node)?,
        };
        self.held_mut().put(slot, value)
    }

    /// The secrets held, by slot, to change.
    pub(crate) fn held_mut(&mut self) -> HeldMut<'_> {
        HeldMut::of(&mut self.entries, &mut self.tags, Self::DIRECT)
    }

    /// A tree of `n_leaves` leaves rooted at `encryption_secret`. On small
    /// devices prefer [`Self::EMPTY`] in a `static` plus [`Self::reset`], which
    /// never builds the arrays on the stack.
    pub fn new(
        suite: CipherSuite,
        n_leaves: u32,
        encryption_secret: &Secret,
        config: SecretTreeConfig,
    ) -> Result<Self, SecretTreeError> {
        let mut tree = Self::EMPTY;
        tree.reset(suite, n_leaves, encryption_secret, config)?;
        Ok(tree)
    }

    /// A tree with no leaves, usable in `const` and `static` items.
    pub const EMPTY: Self = Self {
        meta: SecretTreeMeta {
            suite: CipherSuite::PLACEHOLDER,
            n_leaves: 0,
            config: SecretTreeConfig { max_forward_distance: 0 },
            next_seq: 0,
            tag: [0; 8],
            bank_checked: false,
            evicted: false,
            pool_indexed: 0,
            index_unsure: false,
            bank_stale: false,
        },
        entries: {
            let () = Self::TAGS_FIT;
            [const { LeafSecrets::Empty }; E]
        },
        tags: [0; E],
        skipped: [const { None }; K],
        flags: [0; N],
        skipped_dirty: [0; K],
    };

    /// Deletes every secret in place (the tree has no leaves afterwards).
    /// A store then removes what it kept of the tree at its next save.
    pub fn clear(&mut self) {
        self.held_mut().empty_all();
        self.skipped.iter_mut().for_each(|s| *s = None);
        self.flags.iter_mut().for_each(|f| *f = 0);
        self.skipped_dirty.iter_mut().for_each(|d| *d = 0);
        self.meta.n_leaves = 0;
        self.meta.tag = [0; 8];
        self.meta.bank_checked = false;
        // No secret is left, in memory or to read back from a store (what a
        // store holds of the tree goes at its next save).
        self.meta.evicted = false;
    }

    /// Fails as [`Self::reset`] to `n_leaves` leaves would (its only
    /// failures), without touching anything.
    pub fn check_size(n_leaves: u32) -> Result<(), SecretTreeError> {
        let n = usize::try_from(n_leaves).map_err(|_| SecretTreeError::CapacityExceeded(Capacity::Leaves))?;
        if n == 0 || !n_leaves.is_power_of_two() {
            return Err(SecretTreeError::InvalidLeaf);
        }
        if n > N {
            return Err(SecretTreeError::CapacityExceeded(Capacity::Leaves));
        }
        if !Self::DIRECT && E <= n_leaves.trailing_zeros() as usize {
            return Err(SecretTreeError::CapacityExceeded(Capacity::SecretTreeEntries));
        }
        Ok(())
    }

    /// Re-initialises the tree in place for a new epoch, deleting every
    /// secret of the previous one.
    pub fn reset(
        &mut self,
        suite: CipherSuite,
        n_leaves: u32,
        encryption_secret: &Secret,
        config: SecretTreeConfig,
    ) -> Result<(), SecretTreeError> {
        // Slots past the tree's leaves hold nothing (only `clear` and this
        // set the size, and both wipe what lay within the old one).
        let used = usize::try_from(self.meta.n_leaves).unwrap_or(usize::MAX);
        let (meta, mut slots) = self.split();
        *meta = SecretTreeMeta::init_after(suite, n_leaves, encryption_secret, config, &mut slots, used)?;
        Ok(())
    }

    fn split(&mut self) -> (&mut SecretTreeMeta, SecretTreeSlots<'_>) {
        (
            &mut self.meta,
            SecretTreeSlots {
                held: HeldMut::of(&mut self.entries, &mut self.tags, Self::DIRECT),
                skipped: &mut self.skipped,
                flags: &mut self.flags,
                skipped_dirty: &mut self.skipped_dirty,
            },
        )
    }

    /// See [`SecretTreeMeta::next_sending_key`].
    pub fn next_sending_key(&mut self, leaf: LeafIndex, kind: RatchetKind) -> Result<RatchetKey, SecretTreeError> {
        let (meta, mut slots) = self.split();
        meta.next_sending_key(&mut slots, leaf, kind)
    }

    /// See [`SecretTreeMeta::receiving_key`].
    pub fn receiving_key(
        &mut self,
        leaf: LeafIndex,
        kind: RatchetKind,
        generation: u32,
    ) -> Result<RatchetKey, SecretTreeError> {
        let (meta, mut slots) = self.split();
        meta.receiving_key(&mut slots, leaf, kind, generation)
    }

    /// Takes in parent `node`'s secret as a store read it after a power cut
    /// (store::ratchets loads the leaves' records first, then the parents'
    /// level by level upwards). With nothing stored below, the node keeps
    /// it, as read. Otherwise the cut came between writing its children and
    /// removing it: its secret is split, each child taking the derived secret
    /// only where nothing at or below it is stored (what a node stores wins:
    /// a stored leaf may have ratcheted on), and it is deleted. Changes are
    /// marked for the next save.
    pub(crate) fn settle_parent(&mut self, node: NodeIndex, secret: Secret) -> Result<(), SecretTreeError> {
        if !self.holds_within(node) {
            let level = u8::try_from(tree_math::level(node)).map_err(|_| SecretTreeError::InvalidLeaf)?;
            return self.held_mut().put(leftmost_slot(node)?, LeafSecrets::Parent { level, secret });
        }
        mark(&mut self.flags, parent_slot(node)?, PARENT_DIRTY);
        self.split_into(node, &secret)
    }

    /// Some slot under `node` holds a secret (its own, or a descendant's:
    /// while loading, no ancestor's is in place yet).
    fn holds_within(&self, node: NodeIndex) -> bool {
        let (first, count) = tree_math::leaf_span(node);
        let first = usize::try_from(first).unwrap_or(usize::MAX);
        let end = first.saturating_add(usize::try_from(count).unwrap_or(0));
        self.held().any_within(first, end)
    }

    /// Derives `node`'s children from `secret` down to where records are.
    fn split_into(&mut self, node: NodeIndex, secret: &Secret) -> Result<(), SecretTreeError> {
        let (l, r) = match (tree_math::left(node), tree_math::right(node)) {
            (Some(l), Some(r)) => (l, r),
            _ => return Err(SecretTreeError::InvalidLeaf),
        };
        let (ls, rs) = split_secret(self.meta.suite, secret)?;
        for (child, derived) in [(l, ls), (r, rs)] {
            let own = match child.leaf() {
                Some(leaf) => holds_leaf(&self.held(), leaf_slot(leaf)?),
                None => parent_secret(&self.held(), child).is_some(),
            };
            if own {
                continue;
            }
            if self.holds_within(child) {
                self.split_into(child, &derived)?;
            } else {
                let (_, mut slots) = self.split();
                store(&mut slots, child, derived)?;
            }
        }
        Ok(())
    }

    /// See [`SecretTreeMeta::consume`].
    pub fn consume(&mut self, leaf: LeafIndex, kind: RatchetKind, generation: u32) -> Result<(), SecretTreeError> {
        let (meta, mut slots) = self.split();
        meta.consume(&mut slots, leaf, kind, generation)
    }
}

/// The sender-data key and nonce (§6.3.2):
/// `ExpandWithLabel(sender_data_secret, "key"/"nonce", ciphertext_sample, Nk/Nn)`
/// where the sample is the first `Nh` bytes of the ciphertext (all of it if shorter).
pub fn sender_data_key_nonce(
    suite: CipherSuite,
    sender_data_secret: &Secret,
    ciphertext: &[u8],
) -> Result<(Secret, [u8; AEAD_NONCE_LEN]), CryptoError> {
    let sample = ciphertext.get(..suite.hash_len()).unwrap_or(ciphertext);
    let mut key = Secret::zero(suite.aead_key_len())?;
    let mut nonce = [0u8; AEAD_NONCE_LEN];
    expand_with_labels(suite, sender_data_secret.as_bytes(), [(b"key", sample, key.as_mut_bytes()), (b"nonce", sample, &mut nonce)])?;
    Ok((key, nonce))
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    const SUITE: CipherSuite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;

    fn tree(max_forward: u32) -> SecretTree<4, 3> {
        let root = Secret::from_slice(&[5; 32]).unwrap();
        SecretTree::new(SUITE, 4, &root, SecretTreeConfig { max_forward_distance: max_forward }).unwrap()
    }

    #[test]
    fn sender_and_receiver_agree_out_of_order() {
        let mut tx = tree(10);
        let mut rx = tree(10);
        let keys: Vec<RatchetKey> =
            (0..5).map(|_| tx.next_sending_key(LeafIndex(2), RatchetKind::Application).unwrap()).collect();
        // Receive 3 first: 0, 1, 2 are kept as skipped keys.
        for g in [3u32, 0, 2, 4, 1] {
            let k = rx.receiving_key(LeafIndex(2), RatchetKind::Application, g).unwrap();
            assert_eq!(k, keys[g as usize]);
            rx.consume(LeafIndex(2), RatchetKind::Application, g).unwrap();
            assert_eq!(
                rx.receiving_key(LeafIndex(2), RatchetKind::Application, g),
                Err(SecretTreeError::KeyConsumed),
                "replay of {g}"
            );
        }
        // Handshake ratchet of the same leaf is independent.
        assert_ne!(rx.receiving_key(LeafIndex(2), RatchetKind::Handshake, 0).unwrap(), keys[0]);
    }

    #[test]
    fn looking_up_a_key_does_not_consume_it() {
        let mut rx = tree(10);
        let a = rx.receiving_key(LeafIndex(1), RatchetKind::Handshake, 5).unwrap();
        let b = rx.receiving_key(LeafIndex(1), RatchetKind::Handshake, 5).unwrap();
        assert_eq!(a, b);
        // Nothing was ratcheted: generation 0 is still available.
        rx.receiving_key(LeafIndex(1), RatchetKind::Handshake, 0).unwrap();
    }

    #[test]
    fn bounds() {
        let mut rx = tree(4);
        assert_eq!(rx.receiving_key(LeafIndex(0), RatchetKind::Application, 5), Err(SecretTreeError::TooFarAhead));
        assert_eq!(rx.consume(LeafIndex(0), RatchetKind::Application, 5), Err(SecretTreeError::TooFarAhead));
        assert_eq!(rx.receiving_key(LeafIndex(4), RatchetKind::Application, 0), Err(SecretTreeError::InvalidLeaf));
        // Jumping to 4 keeps 0..=3, but the pool holds 3: the oldest (0) is evicted.
        rx.consume(LeafIndex(0), RatchetKind::Application, 4).unwrap();
        assert_eq!(rx.receiving_key(LeafIndex(0), RatchetKind::Application, 0), Err(SecretTreeError::KeyConsumed));
        for g in 1..4 {
            rx.receiving_key(LeafIndex(0), RatchetKind::Application, g).unwrap();
        }
        let root = Secret::from_slice(&[5; 32]).unwrap();
        assert!(matches!(
            SecretTree::<4, 3>::new(SUITE, 8, &root, SecretTreeConfig::default()),
            Err(SecretTreeError::CapacityExceeded(Capacity::Leaves))
        ));
        assert!(matches!(
            SecretTree::<4, 3>::new(SUITE, 3, &root, SecretTreeConfig::default()),
            Err(SecretTreeError::InvalidLeaf)
        ));
    }

    /// Audit (generation overflow): a ratchet near 2^32 - 1. The sender can
    /// use every generation below the last and then fails with a typed error,
    /// forever, without wrapping; a receiver refuses the last generation
    /// before any work and without moving its ratchet (regression: `consume`
    /// used to skip ahead, keeping keys, and only then fail).
    #[test]
    fn generation_exhaustion() {
        let near = |g: u32| Ratchet::new(Secret::from_slice(&[7; 32]).unwrap(), g);
        let mut tx = tree(10);
        let mut rx = tree(10);
        for t in [&mut tx, &mut rx] {
            t.entries[1] = LeafSecrets::Ratchets { handshake: near(u32::MAX - 3), application: near(u32::MAX - 3) };
        }
        let kind = RatchetKind::Application;
        let generation = |t: &SecretTree<4, 3>| match &t.entries[1] {
            LeafSecrets::Ratchets { application, .. } => application.generation(),
            _ => panic!("no ratchets"),
        };
        let sent: Vec<RatchetKey> = (0..2).map(|_| tx.next_sending_key(LeafIndex(1), kind).unwrap()).collect();
        assert_eq!(sent[1].generation, u32::MAX - 2);
        let last = tx.next_sending_key(LeafIndex(1), kind).unwrap();
        assert_eq!(last.generation, u32::MAX - 1);
        for _ in 0..3 {
            assert_eq!(tx.next_sending_key(LeafIndex(1), kind), Err(SecretTreeError::GenerationExhausted));
            assert_eq!(generation(&tx), u32::MAX);
        }
        // The receiver: the last generation is refused, nothing moves.
        assert_eq!(rx.receiving_key(LeafIndex(1), kind, u32::MAX), Err(SecretTreeError::GenerationExhausted));
        assert_eq!(rx.consume(LeafIndex(1), kind, u32::MAX), Err(SecretTreeError::GenerationExhausted));
        assert_eq!(generation(&rx), u32::MAX - 3);
        assert!(rx.skipped.iter().all(Option::is_none), "no key kept by a refused generation");
        // Everything the sender could send is received.
        assert_eq!(rx.receiving_key(LeafIndex(1), kind, u32::MAX - 1).unwrap(), last);
        rx.consume(LeafIndex(1), kind, u32::MAX - 1).unwrap();
        assert_eq!(generation(&rx), u32::MAX);
        for k in &sent {
            assert_eq!(&rx.receiving_key(LeafIndex(1), kind, k.generation).unwrap(), k);
            rx.consume(LeafIndex(1), kind, k.generation).unwrap();
        }
        assert_eq!(rx.receiving_key(LeafIndex(1), kind, u32::MAX), Err(SecretTreeError::GenerationExhausted));
    }

    /// A new epoch deletes every secret of the last one, found through the
    /// flags: those written since the last save (`*_DIRTY`) and those saved
    /// (`*_INDEXED`, as a store leaves them).
    #[test]
    fn reset_deletes_every_secret_of_the_last_epoch() {
        for saved in [false, true] {
            let mut t = tree(10);
            t.next_sending_key(LeafIndex(1), RatchetKind::Application).unwrap();
            t.receiving_key(LeafIndex(0), RatchetKind::Application, 3).unwrap();
            t.consume(LeafIndex(0), RatchetKind::Application, 3).unwrap();
            let holding = |t: &SecretTree<4, 3>| {
                let leaves = (0..4).filter(|i| holds_leaf(&t.held(), *i)).count();
                let parents = t.entries.iter().filter(|l| matches!(l, LeafSecrets::Parent { .. })).count();
                (leaves, parents, t.skipped.iter().filter(|s| s.is_some()).count())
            };
            assert_eq!(holding(&t), (2, 1, 3), "leaves 0 and 1, parent 5 (above 2 and 3), 3 skipped keys");
            if saved {
                for f in t.flags.iter_mut() {
                    let (leaf, parent) = (*f & LEAF_DIRTY != 0, *f & PARENT_DIRTY != 0);
                    *f = if leaf { LEAF_INDEXED } else { 0 } | if parent { PARENT_INDEXED } else { 0 };
                }
            }
            let next = Secret::from_slice(&[6; 32]).unwrap();
            t.reset(SUITE, 4, &next, SecretTreeConfig { max_forward_distance: 10 }).unwrap();
            assert_eq!(holding(&t), (0, 1, 0), "saved {saved}: only the new root is left");
            assert_eq!(parent_secret(&t.held(), NodeIndex(3)), Some(&next), "the root (node 3) holds the new epoch's secret");
            assert!(matches!(t.entries[0], LeafSecrets::Parent { level: 2, .. }), "in its leftmost leaf's slot");
        }
    }

    /// Keys of two messages (application, the sender's next generations)
    /// from each of `senders` received by a tree of 16 leaves with `E`
    /// entries, and how many entries it holds after each.
    fn keys_of<const E: usize>(senders: &[u32]) -> Vec<(Result<RatchetKey, SecretTreeError>, usize)> {
        let root = Secret::from_slice(&[9; 32]).unwrap();
        let mut t = SecretTree::<16, 3, E>::new(SUITE, 16, &root, SecretTreeConfig::default()).unwrap();
        let kind = RatchetKind::Application;
        let mut next = [0u32; 16];
        senders
            .iter()
            .flat_map(|&l| [l, l])
            .map(|l| {
                let g = next[l as usize];
                next[l as usize] += 1;
                (l, g)
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|(l, g)| {
                let k = t.receiving_key(LeafIndex(l), kind, g);
                if k.is_ok() {
                    t.consume(LeafIndex(l), kind, g).unwrap();
                }
                (k, t.held().iter().count())
            })
            .collect()
    }

    /// Issue #14: a pool of entries holds what the senders heard from need
    /// and derives the keys a direct tree does. Senders 3, 12, 7, 0, 15 of
    /// 16 leaves need 5 + 3 + 2 + 1 + 1 = 12 entries (each the levels
    /// between it and the nearest secret held); with 11, the last sender is
    /// refused and nothing changes.
    #[test]
    fn a_pool_holds_what_its_senders_need() {
        let senders = [3, 12, 7, 0, 15, 3];
        let direct = keys_of::<16>(&senders);
        let pool = keys_of::<12>(&senders);
        assert_eq!(direct.len(), 12);
        for (i, ((d, _), (p, held))) in direct.iter().zip(&pool).enumerate() {
            assert!(d.is_ok(), "direct {i}");
            assert_eq!(d, p, "message {i}");
            assert!(*held <= 12);
        }
        let held: Vec<usize> = pool.iter().step_by(2).map(|(_, h)| *h).collect();
        assert_eq!(held, [5, 8, 10, 11, 12, 12]);
        let short = keys_of::<11>(&senders);
        assert_eq!(&short[..8], &pool[..8]);
        for refused in &short[8..10] {
            assert_eq!(refused.0, Err(SecretTreeError::CapacityExceeded(Capacity::SecretTreeEntries)));
            assert_eq!(refused.1, 11, "nothing derived for the refused sender");
        }
        // Sender 3 again: its ratchet is held, its keys are those of a direct tree.
        for (s, p) in short[10..].iter().zip(&pool[10..]) {
            assert_eq!(s.0, p.0);
            assert!(s.0.is_ok());
        }
    }

    /// A pool needs an entry per level and one for the leaf; a new epoch
    /// wipes every entry.
    #[test]
    fn a_pool_is_as_deep_as_its_tree_and_reset_wipes_it() {
        let root = Secret::from_slice(&[9; 32]).unwrap();
        assert!(matches!(
            SecretTree::<16, 3, 4>::new(SUITE, 16, &root, SecretTreeConfig::default()),
            Err(SecretTreeError::CapacityExceeded(Capacity::SecretTreeEntries))
        ));
        assert_eq!(SecretTree::<16, 3, 4>::check_size(8), Ok(()));
        let mut t = SecretTree::<16, 3, 5>::new(SUITE, 16, &root, SecretTreeConfig::default()).unwrap();
        let k = t.next_sending_key(LeafIndex(9), RatchetKind::Handshake).unwrap();
        assert_eq!(t.held().iter().count(), 5);
        // Another sender across the root needs 4 more entries.
        assert_eq!(
            t.next_sending_key(LeafIndex(2), RatchetKind::Handshake),
            Err(SecretTreeError::CapacityExceeded(Capacity::SecretTreeEntries))
        );
        let next = Secret::from_slice(&[10; 32]).unwrap();
        t.reset(SUITE, 16, &next, SecretTreeConfig::default()).unwrap();
        assert_eq!(t.held().iter().count(), 1, "the new root only");
        assert!(t.entries.iter().filter(|e| !matches!(e, LeafSecrets::Empty)).count() == 1);
        t.next_sending_key(LeafIndex(2), RatchetKind::Handshake).unwrap();
        assert_ne!(t.next_sending_key(LeafIndex(9), RatchetKind::Handshake), Ok(k.clone()), "a new epoch's keys");
    }

    /// A pool's RAM follows `E`, not `N`: at 1,024 leaves a pool of 20
    /// secrets (twice the depth) is its entries, their tags and a flag
    /// byte per leaf; the direct tree is a slot per leaf (75 bytes with
    /// SHA-256 suites only).
    #[test]
    fn a_pools_size_follows_its_entries() {
        use core::mem::size_of;
        let fixed = size_of::<SecretTreeMeta>() + 8 * (size_of::<Option<SkippedKey>>() + 1) + 8;
        let pool = size_of::<SecretTree<1024, 8, 20>>();
        let direct = size_of::<SecretTree<1024, 8>>();
        std::println!("secret tree of 1,024 leaves: direct {direct} bytes, a pool of 20 {pool} bytes");
        // 75 bytes with SHA-256 suites only, more with SHA-384/512 ones.
        let entry = size_of::<LeafSecrets>();
        assert!(pool <= 1024 + 20 * (entry + 2) + fixed, "{pool}");
        assert!(direct >= 1024 * (entry + 1), "{direct}");
    }

    #[test]
    fn one_leaf_tree() {
        let root = Secret::from_slice(&[5; 32]).unwrap();
        let mut t = SecretTree::<1, 1>::new(SUITE, 1, &root, SecretTreeConfig::default()).unwrap();
        t.next_sending_key(LeafIndex(0), RatchetKind::Application).unwrap();
    }
}
