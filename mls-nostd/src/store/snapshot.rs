//! A group's state as items, part by part, and its restoration.
//!
//! Not stored: the epoch's `encryption_secret` (the secret tree, saved node
//! by node in [`super::ratchets`], replaces it: §9.2 deletion) and the
//! credential policy (a function, given again at load). Hash caches are
//! recomputed. The epoch part names the secret trees ([`T_TREES`]); their
//! records are written and read by [`Group::save_ratchets`] and
//! [`Group::load_ratchets`]. The ratchet tree's nodes are records of their
//! own too ([`super::tree_records`]); the epoch part holds their table.

use super::{ItemSink, Part, StoreError};
use crate::crypto::signer::Signer;
use crate::capacity::Capacity;
use crate::codec::{CodecError, OwnedBytes, Reader, Writer};
use crate::crypto::hpke::{HpkePrivateKey, KEM_PRIVATE_STORED_LEN};
use crate::crypto::{CipherSuite, HashValue, Secret};
use crate::group::{Departed, EpochState, Group, GroupConfig, PrevEpoch, ReInitParams, Staged};
use crate::key_schedule::EpochSecrets;
use crate::ratchet_tree::node::ParentRecord;
use crate::ratchet_tree::tree::TreeSlices;
use crate::ratchet_tree::treekem::TreeKemPrivate;
use crate::secret_tree::SecretTreeConfig;
use crate::tree_math::{LeafIndex, NodeIndex};
use zeroize::Zeroize;

// Item tags (the first byte of every item).
const T_HEADER: u8 = 1;
const T_EXTENSIONS: u8 = 2;
const T_REINIT: u8 = 3;
const T_PREV: u8 = 4;
const T_RESUMPTION_PSK: u8 = 5;
// 6 was a tree node in the epoch part (format versions 1 and 2).
const T_STAGED_REMOVED: u8 = 7;
const T_STAGED_HEADER: u8 = 8;
const T_STAGED_REINIT: u8 = 9;
const T_UPDATE_KEY: u8 = 10;
const T_PROPOSALS: u8 = 11;
const T_STAGED_INFO: u8 = 12;
const T_STAGED_SIZE: u8 = 13;
const T_STAGED_NODE: u8 = 14;
/// The previous epoch's keys of members its last Commit removed or re-keyed.
const T_PREV_DEPARTED: u8 = 15;
/// The secret trees' sizes and tags (the epoch's, the previous epoch's).
const T_TREES: u8 = 16;
/// Which ratchet-tree nodes are stored, under which version
/// ([`super::tree_records`]).
pub(crate) const T_TREE_TABLE: u8 = 17;

/// Proposal-store bytes per item: a record's, less the item's length and tag.
const PROPOSAL_CHUNK: usize = if super::MAX_RECORD_LEN - 3 < 2048 { super::MAX_RECORD_LEN - 3 } else { 2048 };

/// Bytes of an opaque of at most `n` bytes: its varint length (§2.1.2) and body.
pub(super) const fn opaque(n: usize) -> usize {
    n + match crate::codec::varint_size(n) {
        Some(size) => size,
        None => 4,
    }
}

/// The longest item (without its length) of the epoch, proposals and staged
/// parts of a group whose private path holds `levels` keys: the items
/// [`Group::save_part`] writes, each at the longest this build's capacities
/// allow, but a staged tree node's (not bounded by them: see
/// [`super::MAX_RECORD_LEN`]) and the proposals' (chunked by the record).
/// The group's signer counts at an in-memory key's length
/// ([`SIGNATURE_PRIVATE_LEN`]; a longer stored form is checked when saved).
///
/// [`SIGNATURE_PRIVATE_LEN`]: crate::crypto::signature::SIGNATURE_PRIVATE_LEN
pub(crate) const fn longest_item(levels: usize) -> usize {
    use crate::crypto::max;
    use crate::crypto::signature::SIGNATURE_PUBLIC_LEN;
    use crate::group::{DEPARTED_KEYS, MAX_GROUP_CONTEXT_LEN, MAX_GROUP_EXTENSIONS_LEN, MAX_GROUP_ID_LEN, PAST_EPOCHS_KEPT, STAGED_PSK_BYTES};
    let hash = opaque(crate::crypto::MAX_HASH_LEN);
    let staged_header = 1 + state_len(levels, true, Lens::MAX) + 4 + hash;
    let extensions = 1 + MAX_GROUP_EXTENSIONS_LEN;
    let reinit = 1 + 8 + opaque(MAX_GROUP_ID_LEN) + 4 + opaque(MAX_GROUP_EXTENSIONS_LEN);
    let prev = if PAST_EPOCHS_KEPT != 0 { 1 + 8 + hash + MAX_GROUP_CONTEXT_LEN } else { 0 };
    let departed = 2 + DEPARTED_KEYS * (4 + opaque(SIGNATURE_PUBLIC_LEN));
    let staged_info = 1 + 4 + 8 + 4 * 4 + 1 + 4 + opaque(STAGED_PSK_BYTES);
    // A resumption PSK, the secret trees' sizes and tags, the update key.
    let small = max(max(1 + 8 + hash, 1 + 2 * 12), 1 + KEM_PRIVATE_STORED_LEN);
    let table = super::tree_records::TABLE_ITEM_LEN;
    max(
        max(max(header_item_len(levels, Lens::MAX), staged_header), max(extensions, reinit)),
        max(max(prev, departed), max(staged_info, max(small, table))),
    )
}

/// Lengths an item's bound counts: those of the longest suite of this
/// build ([`Lens::MAX`]), or of one suite.
#[derive(Clone, Copy)]
struct Lens {
    hash: usize,
    kem_private_stored: usize,
    kem_private: usize,
    signature_private: usize,
}

impl Lens {
    const MAX: Self = Self {
        hash: crate::crypto::MAX_HASH_LEN,
        kem_private_stored: KEM_PRIVATE_STORED_LEN,
        kem_private: crate::crypto::hpke::KEM_PRIVATE_LEN,
        signature_private: crate::crypto::signature::SIGNATURE_PRIVATE_LEN,
    };
}

/// [`write_state`]'s output at most, with `levels` path keys: suite, group
/// ID, epoch, three hashes, nine secrets (the encryption secret empty
/// unless `with_encryption`), our leaf and its key, the path's keys.
const fn state_len(levels: usize, with_encryption: bool, l: Lens) -> usize {
    let hash = opaque(l.hash);
    let levels = if levels < crate::ratchet_tree::tree::MAX_DEPTH { levels } else { crate::ratchet_tree::tree::MAX_DEPTH };
    2 + opaque(crate::group::MAX_GROUP_ID_LEN)
        + 8
        + 3 * hash
        + 8 * hash
        + if with_encryption { hash } else { 1 }
        + 4
        + opaque(l.kem_private_stored)
        + 1
        + levels * (4 + opaque(l.kem_private))
}

/// The epoch part's header item ([`Group::save_part`]) at most: tag, the
/// state, the signer (an in-memory key), removed, the secret tree's
/// configuration, the tree's size and hash.
const fn header_item_len(levels: usize, l: Lens) -> usize {
    1 + state_len(levels, false, l) + opaque(l.signature_private) + 1 + 4 + 8 + 4 + opaque(l.hash)
}

fn write_secret(w: &mut Writer<'_>, s: &Secret) -> Result<(), CodecError> {
    w.write_opaque(s.as_bytes())
}

fn read_secret(r: &mut Reader<'_>) -> Result<Secret, CodecError> {
    Secret::from_slice(r.read_opaque()?).map_err(|_| CodecError::InvalidValue)
}

fn read_hash(r: &mut Reader<'_>) -> Result<HashValue, CodecError> {
    HashValue::from_slice(r.read_opaque()?).map_err(|_| CodecError::InvalidValue)
}

fn read_hpke_key(r: &mut Reader<'_>, suite: CipherSuite) -> Result<HpkePrivateKey, CodecError> {
    HpkePrivateKey::from_slice(suite, r.read_opaque()?).map_err(|_| CodecError::InvalidValue)
}

/// The secrets of §8 table 4; `encryption_secret` only for a staged epoch,
/// whose secret tree is built from it at merge.
fn write_secrets(w: &mut Writer<'_>, s: &EpochSecrets, with_encryption: bool) -> Result<(), CodecError> {
    for secret in [
        &s.sender_data_secret,
        &s.exporter_secret,
        &s.external_secret,
        &s.confirmation_key,
        &s.membership_key,
        &s.resumption_psk,
        &s.epoch_authenticator,
        &s.init_secret,
    ] {
        write_secret(w, secret)?;
    }
    if with_encryption { write_secret(w, &s.encryption_secret) } else { w.write_opaque(&[]) }
}

fn write_staged_info(w: &mut Writer<'_>, info: &crate::group::StagedInfo) -> Result<(), CodecError> {
    let s = &info.summary;
    w.write_u32(s.committer.0)?;
    w.write_u64(s.new_epoch)?;
    for n in [s.adds, s.removes, s.updates, s.psks] {
        w.write_u32(n)?;
    }
    let flags = u8::from(s.extensions_changed)
        | u8::from(s.reinit) << 1
        | u8::from(s.has_path) << 2
        | u8::from(s.removes_us) << 3
        | u8::from(info.external_removed.is_some()) << 4;
    w.write_u8(flags)?;
    w.write_u32(info.external_removed.map_or(0, |l| l.0))?;
    w.write_opaque(info.psk_ids.as_slice())
}

/// Reads a staged Commit's info into `info`, in place (1 KB).
fn read_staged_info_into(r: &mut Reader<'_>, info: &mut crate::group::StagedInfo) -> Result<(), CodecError> {
    let committer = LeafIndex(r.read_u32()?);
    let new_epoch = r.read_u64()?;
    let (adds, removes, updates, psks) = (r.read_u32()?, r.read_u32()?, r.read_u32()?, r.read_u32()?);
    let flags = r.read_u8()?;
    if flags >> 5 != 0 {
        return Err(CodecError::InvalidValue);
    }
    let external_removed = r.read_u32()?;
    info.psk_ids.set(r.read_opaque()?)?;
    info.summary = crate::group::StagedCommitSummary {
        committer,
        new_epoch,
        adds,
        removes,
        updates,
        psks,
        extensions_changed: flags & 1 != 0,
        reinit: flags & 2 != 0,
        has_path: flags & 4 != 0,
        removes_us: flags & 8 != 0,
    };
    info.external_removed = (flags & 16 != 0).then_some(LeafIndex(external_removed));
    Ok(())
}

fn read_secrets(r: &mut Reader<'_>) -> Result<EpochSecrets, CodecError> {
    Ok(EpochSecrets {
        sender_data_secret: read_secret(r)?,
        exporter_secret: read_secret(r)?,
        external_secret: read_secret(r)?,
        confirmation_key: read_secret(r)?,
        membership_key: read_secret(r)?,
        resumption_psk: read_secret(r)?,
        epoch_authenticator: read_secret(r)?,
        init_secret: read_secret(r)?,
        encryption_secret: read_secret(r)?,
    })
}

fn write_private(w: &mut Writer<'_>, p: &TreeKemPrivate) -> Result<(), CodecError> {
    w.write_u32(p.leaf.0)?;
    // The leaf key may be a crypto engine's handle (HpkePrivateKey::held).
    let mut leaf_key = [0u8; KEM_PRIVATE_STORED_LEN];
    let len = p.leaf_key.stored_form(&mut leaf_key);
    let written = w.write_opaque(leaf_key.get(..len).unwrap_or(&[]));
    leaf_key.zeroize();
    written?;
    let count = p.path_keys().count();
    w.write_u8(u8::try_from(count).map_err(|_| CodecError::CapacityExceeded(Capacity::Container(255)))?)?;
    for (node, key) in p.path_keys() {
        w.write_u32(node.0)?;
        w.write_opaque(key.as_bytes())?;
    }
    Ok(())
}

/// Reads our private tree keys into `p`, in place (2.5 KB).
fn read_private_into(r: &mut Reader<'_>, suite: CipherSuite, p: &mut TreeKemPrivate) -> Result<(), CodecError> {
    let leaf = LeafIndex(r.read_u32()?);
    // A removed member has deleted its keys (its state is stored all the
    // same); restore_finish refuses a member whose leaf lacks its key.
    let key = r.read_opaque()?;
    let leaf_key = if key.is_empty() {
        HpkePrivateKey::ZERO
    } else {
        HpkePrivateKey::from_stored_form(suite, key).map_err(|_| CodecError::InvalidValue)?
    };
    p.reset(leaf, leaf_key);
    for _ in 0..r.read_u8()? {
        let node = NodeIndex(r.read_u32()?);
        if node.leaf().is_some() {
            return Err(CodecError::InvalidValue);
        }
        p.set_key(node, read_hpke_key(r, suite)?);
    }
    Ok(())
}

/// An epoch's state except its extensions (their own item: up to 2 KiB).
fn write_state(w: &mut Writer<'_>, s: &EpochState, with_encryption: bool) -> Result<(), CodecError> {
    w.write_u16(s.suite.to_u16())?;
    w.write_opaque(s.group_id.as_slice())?;
    w.write_u64(s.epoch)?;
    w.write_opaque(s.confirmed_transcript_hash.as_bytes())?;
    w.write_opaque(s.interim_transcript_hash.as_bytes())?;
    w.write_opaque(s.confirmation_tag.as_bytes())?;
    write_secrets(w, &s.secrets, with_encryption)?;
    write_private(w, &s.private)
}

/// Reads an epoch's state into `s`, in place: an `EpochState` (5 KB) built
/// on the stack and moved would add its size to the restore's frame. The
/// tree hash and the extensions are emptied (set by the items that follow).
fn read_state_into(r: &mut Reader<'_>, s: &mut EpochState) -> Result<(), CodecError> {
    let suite = CipherSuite::from_u16(r.read_u16()?).ok_or(CodecError::InvalidValue)?;
    s.suite = suite;
    s.group_id.set(r.read_opaque()?)?;
    s.epoch = r.read_u64()?;
    s.confirmed_transcript_hash = read_hash(r)?;
    s.interim_transcript_hash = read_hash(r)?;
    s.confirmation_tag = read_hash(r)?;
    s.tree_hash = HashValue::EMPTY;
    s.extensions.0.clear();
    s.secrets = read_secrets(r)?;
    read_private_into(r, suite, &mut s.private)
}

fn write_reinit(w: &mut Writer<'_>, p: &ReInitParams) -> Result<(), CodecError> {
    w.write_opaque(p.group_id.as_slice())?;
    w.write_u16(p.version)?;
    w.write_u16(p.cipher_suite)?;
    w.write_opaque(p.extensions.as_slice())
}

fn read_reinit(r: &mut Reader<'_>) -> Result<ReInitParams, CodecError> {
    Ok(ReInitParams {
        group_id: OwnedBytes::from_slice(r.read_opaque()?)?,
        version: r.read_u16()?,
        cipher_suite: r.read_u16()?,
        extensions: OwnedBytes::from_slice(r.read_opaque()?)?,
    })
}

/// Writes what a staged Commit changed in the tree: the new size, then each
/// changed node as it is now (blank or not; a leaf with its unmerged bits).
fn save_staged_tree(t: &TreeSlices<'_>, out: &mut dyn ItemSink) -> Result<(), StoreError> {
    let n_leaves = t.n_leaves();
    out.item(&|w| {
        w.write_u8(T_STAGED_SIZE)?;
        w.write_u32(n_leaves)
    })?;
    for (i, x) in t.staged_nodes().enumerate() {
        // A leaf changed twice is listed twice: write it once.
        if t.staged_nodes().take(i).any(|y| y == x) {
            continue;
        }
        out.item(&|w| {
            w.write_u8(T_STAGED_NODE)?;
            w.write_u32(x.0)?;
            if let Some(l) = x.leaf() {
                w.write_u32(t.unmerged_bits(l))?;
            }
            let present = t.is_present_at(x, false);
            w.write_u8(u8::from(present))?;
            if present {
                t.write_node(x, false, w)?;
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// Node `x` of the epoch's tree from its record ([`super::tree_records`]).
pub(crate) fn restore_node(t: &mut TreeSlices<'_>, x: NodeIndex, bytes: &[u8]) -> Result<(), StoreError> {
    let width = crate::tree_math::node_width(t.n_leaves()).unwrap_or(0);
    if x.0 >= width {
        return Err(StoreError::Invalid(CodecError::InvalidValue));
    }
    let bad = |_| StoreError::Invalid(CodecError::InvalidValue);
    match x.leaf() {
        Some(l) => t.set_leaf(l, bytes).map_err(bad)?,
        None => t.import_parent_record(x, &ParentRecord::decode_exact(bytes)?).map_err(bad)?,
    }
    Ok(())
}

/// One changed node of a saved stage (see [`save_staged_tree`]).
fn restore_staged_node(t: &mut TreeSlices<'_>, r: &mut Reader<'_>) -> Result<(), StoreError> {
    let bad = |_| StoreError::Invalid(CodecError::InvalidValue);
    let x = NodeIndex(r.read_u32()?);
    let width = crate::tree_math::node_width(t.n_leaves()).unwrap_or(0);
    if x.0 >= width {
        // A node a truncation dropped (§7.7): blank, and blanked already
        // by the stage's size ([`TreeSlices::restore_size`]).
        if x.leaf().is_some() && r.read_u32()? != 0 {
            return Err(StoreError::Invalid(CodecError::InvalidValue));
        }
        if r.read_u8()? != 0 || usize::try_from(x.0 / 2).map_or(true, |i| i >= t.leaves.len()) {
            return Err(StoreError::Invalid(CodecError::InvalidValue));
        }
        return Ok(r.finish()?);
    }
    match x.leaf() {
        Some(l) => {
            let unmerged = r.read_u32()?;
            let bytes = if r.read_u8()? != 0 { Some(r.remaining()) } else { None };
            t.restore_leaf(l, bytes, unmerged).map_err(bad)?;
        }
        None => {
            if r.read_u8()? != 0 {
                let node = ParentRecord::decode_exact(r.remaining())?;
                t.restore_parent(x, Some(&node)).map_err(bad)?;
            } else {
                r.finish()?;
                t.restore_parent(x, None).map_err(bad)?;
            }
        }
    }
    Ok(())
}

/// The tree header fields: leaf count and root tree hash (checked at load).
fn write_tree_header(w: &mut Writer<'_>, n_leaves: u32, tree_hash: &HashValue) -> Result<(), CodecError> {
    w.write_u32(n_leaves)?;
    w.write_opaque(tree_hash.as_bytes())
}

/// Which side of a head a save of the secret trees is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HeadPhase {
    Before,
    After,
}

/// What restoring checks once all items are read.
#[derive(Default)]
pub(crate) struct RestoreChecks {
    tree_hash: Option<HashValue>,
    staged_tree_hash: Option<HashValue>,
    header_seen: bool,
    /// From [`T_TREES`]: each tree's leaves and tag (0 leaves: none).
    trees: Option<[(u32, [u8; 8]); 2]>,
    ratchets_seen: bool,
    /// The current epoch's tree was checked and the stage begun.
    stage_begun: bool,
}

impl<const N: usize, const ARENA: usize, const K: usize, const P: usize, Sig: Signer, const E: usize> Group<N, ARENA, K, P, Sig, E> {
    /// Writes `part` of this group as items.
    pub(crate) fn save_part(&mut self, part: Part, out: &mut dyn ItemSink) -> Result<(), StoreError> {
        match part {
            Part::Epoch => self.save_epoch(out),
            Part::Proposals => {
                if let Some(key) = &self.pending_update_key {
                    out.item(&|w| {
                        w.write_u8(T_UPDATE_KEY)?;
                        w.write_bytes(key.as_bytes())
                    })?;
                }
                for chunk in self.proposals.raw().chunks(PROPOSAL_CHUNK) {
                    out.item(&|w| {
                        w.write_u8(T_PROPOSALS)?;
                        w.write_bytes(chunk)
                    })?;
                }
                Ok(())
            }
            Part::Staged => self.save_staged(out),
            // Record by record, outside the banks: `save_ratchets`.
            Part::Ratchets => Ok(()),
        }
    }

    /// The banks of the epoch's secret tree and of the previous epoch's.
    fn ratchet_banks(&self) -> (u8, u8) {
        let bank = (self.state.epoch & 1) as u8;
        (bank, bank ^ 1)
    }

    /// Stores what changed in the secret trees since the last save (no
    /// commit point needed: [`super::ratchets`]). Around a head (`around`):
    /// before it, a new epoch's tree (the head will name it) and our own
    /// ratchets (a key is never used twice, even if the head is never
    /// written); after it, every other sender's (a handshake message is
    /// consumed only once its effect is stored; a replay in between is
    /// processed again, which a proposal store takes as a no-op).
    pub(crate) fn save_ratchets<S: super::Storage>(
        &mut self,
        storage: &mut S,
        slot: u8,
        around: Option<HeadPhase>,
        buf: &mut [u8],
    ) -> Result<(), StoreError> {
        use super::ratchets::Records;
        let (current, prev) = self.ratchet_banks();
        let me = self.state.private.leaf.0 as usize;
        let (cur, prv) = match around {
            None => (Records::All, Records::All),
            Some(HeadPhase::Before) => {
                // A tree with no leaves (a removed group's) writes nothing,
                // and the records the committed head names stay until the
                // new head: its bank (the epoch's own, as the removal does
                // not change the epoch) is cleaned after it.
                let (tree, past) = self.secret_trees.both_mut();
                let cur = if tree.is_new_in_store() {
                    Records::All
                } else {
                    Records::Leaf(me)
                };
                if tree.meta.n_leaves > 0 {
                    tree.save_records(storage, slot, current, cur, buf)?;
                }
                if let Some(past) = past
                    && past.is_new_in_store()
                    && past.meta.n_leaves > 0
                {
                    past.save_records(storage, slot, prev, Records::All, buf)?;
                }
                return Ok(());
            }
            Some(HeadPhase::After) => (Records::AllBut(me), Records::All),
        };
        let (tree, past) = self.secret_trees.both_mut();
        tree.save_records(storage, slot, current, cur, buf)?;
        match past {
            Some(past) => past.save_records(storage, slot, prev, prv, buf),
            // None kept: the ended epoch's records go once no head names
            // its tree (never before the head: `HeadPhase::Before` skips this).
            None if !self.ended.bank_checked => {
                super::ratchets::clean_bank(storage, slot, prev, None, buf)?;
                self.ended.bank_checked = true;
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Makes a secret tree that keeps some of its secrets in the store only
    /// (a pool, `E < N`) ready for `message` (a PrivateMessage of this
    /// epoch or, kept, the previous one: its sender's path), or for a
    /// message of ours (`None`). See [`SecretTree::prepare_leaf`]; nothing
    /// to do for a direct tree, or a pool that holds all its secrets and
    /// has room for any sender (no sender data decrypted twice).
    ///
    /// [`SecretTree::prepare_leaf`]: crate::secret_tree::SecretTree
    pub(crate) fn prepare_ratchets<S: super::Storage>(
        &mut self,
        storage: &mut S,
        slot: u8,
        message: Option<&[u8]>,
        buf: &mut [u8],
    ) -> Result<(), StoreError> {
        let (current, prev) = self.ratchet_banks();
        let Self { state, secret_trees, past, .. } = self;
        let (tree, past_tree) = secret_trees.both_mut();
        let Some(message) = message else {
            if !tree.needs_prepare() {
                return Ok(());
            }
            return tree.prepare_leaf(storage, slot, current, state.private.leaf, buf);
        };
        let Some(epoch) = crate::messages::private_message::epoch_of(message) else { return Ok(()) };
        let (tree, bank, secret) = if epoch == state.epoch {
            (tree, current, &state.secrets.sender_data_secret)
        } else {
            match (past_tree, past.first().and_then(|p| p.record.as_ref()).filter(|p| p.epoch == epoch)) {
                (Some(t), Some(p)) => (t, prev, &p.sender_data_secret),
                _ => return Ok(()),
            }
        };
        if !tree.needs_prepare() {
            return Ok(());
        }
        match crate::messages::private_message::sender_of(state.suite, secret, message) {
            Some(leaf) => tree.prepare_leaf(storage, slot, bank, leaf, buf),
            // Not decryptable: processing the message says why.
            None => Ok(()),
        }
    }

    /// Loads the secret trees named by the epoch part (after its items).
    pub(crate) fn load_ratchets<S: super::Storage>(
        &mut self,
        storage: &mut S,
        slot: u8,
        checks: &mut RestoreChecks,
        buf: &mut [u8],
    ) -> Result<(), StoreError> {
        let Some([(cur_leaves, cur_tag), (prev_leaves, prev_tag)]) = checks.trees else {
            return Err(StoreError::Invalid(CodecError::InvalidValue));
        };
        let (current, prev) = self.ratchet_banks();
        let (suite, config) = (self.state.suite, self.config().secret_tree);
        let required = self.member;
        let (tree, past) = self.secret_trees.both_mut();
        tree.load_records(
            storage, slot, current, suite, cur_leaves, config, cur_tag, required, buf,
        )?;
        match past {
            Some(past) => past.load_records(
                storage,
                slot,
                prev,
                suite,
                prev_leaves,
                config,
                prev_tag,
                false,
                buf,
            )?,
            // None kept (the store may hold the tree, from a build that kept
            // it): its records go at the next save.
            None => self.ended = crate::group::EndedTree { tag: prev_tag, bank_checked: false },
        }
        checks.ratchets_seen = true;
        Ok(())
    }

    fn save_epoch(&mut self, out: &mut dyn ItemSink) -> Result<(), StoreError> {
        let tree_hash = self.state.tree_hash;
        let n_leaves = self.tree.old().n_leaves();
        let (state, signer, removed, config) = (&self.state, &self.signer, !self.member, self.config());
        out.item(&|w| {
            w.write_u8(T_HEADER)?;
            write_state(w, state, false)?;
            w.write_opaque(signer.stored_form())?;
            w.write_u8(u8::from(removed))?;
            w.write_u32(config.secret_tree.max_forward_distance)?;
            w.write_u64(config.max_lifetime)?;
            write_tree_header(w, n_leaves, &tree_hash)
        })?;
        out.item(&|w| {
            w.write_u8(T_EXTENSIONS)?;
            w.write_bytes(state.extensions.as_slice())
        })?;
        if let (Some(epoch), Some(p)) = (self.reinit_epoch, &self.reinit) {
            out.item(&|w| {
                w.write_u8(T_REINIT)?;
                w.write_u64(epoch)?;
                write_reinit(w, p)
            })?;
        }
        if let Some(prev) = self.past.first().and_then(|p| p.record.as_ref()) {
            out.item(&|w| {
                w.write_u8(T_PREV)?;
                w.write_u64(prev.epoch)?;
                write_secret(w, &prev.sender_data_secret)?;
                w.write_bytes(prev.group_context.as_slice())
            })?;
            let d = &prev.departed;
            if d.len > 0 || d.overflow {
                out.item(&|w| {
                    w.write_u8(T_PREV_DEPARTED)?;
                    w.write_u8(u8::from(d.overflow))?;
                    for (leaf, key) in d.keys.iter().take(usize::from(d.len)) {
                        w.write_u32(leaf.0)?;
                        w.write_opaque(key.as_bytes())?;
                    }
                    Ok(())
                })?;
            }
        }
        let prev_tree = match self.secret_trees.past() {
            Some(past) => (past.meta.n_leaves, past.meta.tag),
            None => (0, self.ended.tag),
        };
        let tree = self.secret_trees.current();
        let trees = [(tree.meta.n_leaves, tree.meta.tag), prev_tree];
        out.item(&|w| {
            w.write_u8(T_TREES)?;
            for (n_leaves, tag) in trees {
                w.write_u32(n_leaves)?;
                w.write_bytes(&tag)?;
            }
            Ok(())
        })?;
        for (epoch, psk) in self.resumption_psks.iter().flatten() {
            out.item(&|w| {
                w.write_u8(T_RESUMPTION_PSK)?;
                w.write_u64(*epoch)?;
                write_secret(w, psk)
            })?;
        }
        self.write_tree_table(out, T_TREE_TABLE)
    }

    fn save_staged(&mut self, out: &mut dyn ItemSink) -> Result<(), StoreError> {
        if self.staged.is_none() {
            return Ok(());
        }
        let info = &self.staged_info;
        out.item(&|w| {
            w.write_u8(T_STAGED_INFO)?;
            write_staged_info(w, info)
        })?;
        let state = match self.staged.as_ref() {
            None => return Ok(()),
            Some(Staged::Removed) => {
                out.item(&|w| w.write_u8(T_STAGED_REMOVED))?;
                return save_staged_tree(&self.tree.slices(), out);
            }
            Some(Staged::Epoch(state)) => state,
        };
        let n_leaves = self.tree.view().n_leaves();
        out.item(&|w| {
            w.write_u8(T_STAGED_HEADER)?;
            write_state(w, state, true)?;
            write_tree_header(w, n_leaves, &state.tree_hash)
        })?;
        out.item(&|w| {
            w.write_u8(T_EXTENSIONS)?;
            w.write_bytes(state.extensions.as_slice())
        })?;
        if let (None, Some(p)) = (self.reinit_epoch, &self.reinit) {
            out.item(&|w| {
                w.write_u8(T_STAGED_REINIT)?;
                write_reinit(w, p)
            })?;
        }
        save_staged_tree(&self.tree.slices(), out)
    }

    /// Empties this slot before a restore (and after a failed one): the
    /// group is inactive and holds no secret.
    pub(crate) fn wipe(&mut self) {
        self.state.secrets = EpochSecrets::EMPTY;
        self.state.private = TreeKemPrivate::EMPTY;
        self.state.epoch = 0;
        self.signer = Sig::NONE;
        self.member = false;
        self.reinit = None;
        self.reinit_epoch = None;
        self.staged_info = crate::group::StagedInfo::EMPTY;
        self.pending_update_key = None;
        self.tree.slices().clear(CipherSuite::PLACEHOLDER);
        self.tree_marks.clear();
        self.secret_trees.current_mut().clear();
        self.secret_trees.clear_past();
        self.past.iter_mut().for_each(|p| p.record.clear());
        self.ended = crate::group::EndedTree::EMPTY;
        self.store_id = [0; 8];
        self.clean_spares = 0;
        self.proposals.clear();
        self.staged.clear();
        self.resumption_psks = [const { None }; crate::group::RESUMPTION_PSK_HISTORY];
    }

    /// Applies one item of `part` (after [`Self::wipe`]).
    pub(crate) fn restore_item(
        &mut self,
        part: Part,
        item: &[u8],
        checks: &mut RestoreChecks,
        identity: &'static dyn crate::identity::IdentityProvider,
    ) -> Result<(), StoreError> {
        let mut r = Reader::new(item);
        let tag = r.read_u8()?;
        let bad = StoreError::Invalid(CodecError::InvalidValue);
        match (part, tag) {
            (Part::Epoch, T_HEADER) => {
                // Into the (wiped) slot in place; a failed restore wipes it again.
                read_state_into(&mut r, &mut self.state)?;
                let signer = Sig::from_stored_form(self.state.suite, r.read_opaque()?).map_err(|_| bad)?;
                let removed = r.read_u8()? != 0;
                let max_forward_distance = r.read_u32()?;
                let max_lifetime = r.read_u64()?;
                let n_leaves = r.read_u32()?;
                let tree_hash = read_hash(&mut r)?;
                r.finish()?;
                self.set_tree_size(self.state.suite, n_leaves)?;
                self.state.tree_hash = tree_hash;
                self.signer = signer;
                self.member = !removed;
                self.config = Some(GroupConfig {
                    secret_tree: SecretTreeConfig { max_forward_distance },
                    max_lifetime,
                    identity,
                });
                checks.tree_hash = Some(tree_hash);
                checks.header_seen = true;
            }
            (Part::Epoch, T_EXTENSIONS) => self.state.extensions.set(r.remaining())?,
            (Part::Epoch, T_REINIT) => {
                let epoch = r.read_u64()?;
                self.reinit = Some(read_reinit(&mut r)?);
                self.reinit_epoch = Some(epoch);
                r.finish()?;
            }
            (Part::Epoch, T_PREV) => {
                let epoch = r.read_u64()?;
                let sender_data_secret = read_secret(&mut r)?;
                // A build that keeps no past epoch reads the item and drops it.
                let Some(past) = self.past.first_mut() else { return Ok(()) };
                let prev = PrevEpoch::slot(&mut past.record);
                prev.epoch = epoch;
                prev.sender_data_secret = sender_data_secret;
                prev.group_context.set(r.remaining())?;
            }
            (Part::Epoch, T_PREV_DEPARTED) => {
                let Some(past) = self.past.first_mut() else { return Ok(()) };
                let d = &mut PrevEpoch::slot(&mut past.record).departed;
                *d = Departed::EMPTY;
                d.overflow = r.read_u8()? != 0;
                while !r.is_empty() {
                    let leaf = LeafIndex(r.read_u32()?);
                    d.push(leaf, r.read_opaque()?);
                }
            }
            (Part::Epoch, T_RESUMPTION_PSK) => {
                let epoch = r.read_u64()?;
                let psk = read_secret(&mut r)?;
                r.finish()?;
                // Kept newest last: fill from the front, shift at the end.
                let slot = self
                    .resumption_psks
                    .iter_mut()
                    .find(|s| s.is_none())
                    .ok_or(StoreError::CapacityExceeded(Capacity::ResumptionPsks))?;
                *slot = Some((epoch, psk));
            }
            (Part::Epoch, T_TREE_TABLE) => Self::read_tree_table(&mut self.tree_marks, &mut r, true)?,
            (Part::Proposals, T_UPDATE_KEY) => {
                self.pending_update_key = Some(HpkePrivateKey::from_slice(self.state.suite, r.remaining()).map_err(|_| bad)?);
            }
            (Part::Proposals, T_PROPOSALS) => {
                self.proposals
                    .append_raw(r.remaining())
                    .map_err(|_| StoreError::CapacityExceeded(Capacity::PendingProposalBytes))?;
            }
            (Part::Staged, T_STAGED_REMOVED) => {
                self.begin_restoring_stage(checks)?;
                self.staged.set(Staged::Removed);
            }
            (Part::Staged, T_STAGED_INFO) => {
                read_staged_info_into(&mut r, &mut self.staged_info)?;
                r.finish()?;
            }
            (Part::Staged, T_STAGED_HEADER) => {
                let next = Staged::begin_epoch(&mut self.staged).ok_or(bad)?;
                read_state_into(&mut r, next)?;
                let _n_leaves = r.read_u32()?;
                let tree_hash = read_hash(&mut r)?;
                r.finish()?;
                next.tree_hash = tree_hash;
                self.begin_restoring_stage(checks)?;
                checks.staged_tree_hash = Some(tree_hash);
            }
            (Part::Staged, T_EXTENSIONS) => match self.staged.as_mut() {
                Some(Staged::Epoch(s)) => s.extensions.set(r.remaining())?,
                _ => return Err(bad),
            },
            (Part::Staged, T_STAGED_REINIT) => {
                // A group whose ReInit is committed stages nothing.
                if self.reinit_epoch.is_some() {
                    return Err(bad);
                }
                self.reinit = Some(read_reinit(&mut r)?);
                r.finish()?;
            }
            (Part::Staged, T_STAGED_SIZE) => {
                if !checks.stage_begun {
                    return Err(bad);
                }
                let n = r.read_u32()?;
                r.finish()?;
                self.tree.slices().restore_size(n).map_err(|_| bad)?;
            }
            (Part::Staged, T_STAGED_NODE) => {
                if !checks.stage_begun {
                    return Err(bad);
                }
                restore_staged_node(&mut self.tree.slices(), &mut r)?;
            }
            (Part::Epoch, T_TREES) => {
                let mut tree = || -> Result<(u32, [u8; 8]), CodecError> { Ok((r.read_u32()?, r.read_array()?)) };
                let trees = [tree()?, tree()?];
                r.finish()?;
                checks.trees = Some(trees);
            }
            _ => return Err(bad),
        }
        Ok(())
    }

    fn set_tree_size(&mut self, suite: CipherSuite, n_leaves: u32) -> Result<(), StoreError> {
        let mut t = self.tree.slices();
        if n_leaves == 0 || !n_leaves.is_power_of_two() || usize::try_from(n_leaves).map_or(true, |n| n > t.leaves.len()) {
            return Err(StoreError::Invalid(CodecError::CapacityExceeded(Capacity::Leaves)));
        }
        t.clear(suite);
        t.meta.n_leaves = n_leaves;
        Ok(())
    }

    /// Before the first item of a saved stage: the current epoch's tree is
    /// complete; check it, then stage the saved changes on it.
    fn begin_restoring_stage(&mut self, checks: &mut RestoreChecks) -> Result<(), StoreError> {
        let bad = StoreError::Invalid(CodecError::InvalidValue);
        if checks.stage_begun || !checks.header_seen {
            return Err(bad);
        }
        self.check_restored_tree(checks.tree_hash.as_ref())?;
        self.tree.slices().begin_stage().map_err(|_| bad)?;
        checks.stage_begun = true;
        Ok(())
    }

    /// The tree is consistent and hashes to `expected`.
    fn check_restored_tree(&mut self, expected: Option<&HashValue>) -> Result<(), StoreError> {
        let bad = StoreError::Invalid(CodecError::InvalidValue);
        let mut t = self.tree.slices();
        t.check_unmerged().map_err(|_| bad)?;
        let hash = t.root_tree_hash().map_err(|_| bad)?;
        if expected.is_some_and(|e| *e != hash) {
            return Err(StoreError::Corrupt);
        }
        Ok(())
    }

    /// Checks what items cannot check alone: the trees hash to what was
    /// saved, unmerged lists are consistent, the parts were all there.
    pub(crate) fn restore_finish(&mut self, checks: &RestoreChecks) -> Result<(), StoreError> {
        let bad = StoreError::Invalid(CodecError::InvalidValue);
        if !checks.header_seen || (!checks.ratchets_seen && self.member) {
            return Err(bad);
        }
        // Resumption PSKs: oldest first in the file, newest last in the ring.
        let used = self.resumption_psks.iter().filter(|s| s.is_some()).count();
        self.resumption_psks.rotate_left(used);
        if self.staged.is_some() != checks.stage_begun {
            return Err(bad);
        }
        if checks.stage_begun {
            // The staged tree; for a Commit that removes us, nothing to check it against.
            self.check_restored_tree(checks.staged_tree_hash.as_ref())?;
        } else if self.member {
            self.check_restored_tree(checks.tree_hash.as_ref())?;
        } else {
            // Removed: the tree is the one the Commit that removed us made,
            // the state the epoch we left (nothing of it is used again).
            self.check_restored_tree(None)?;
        }
        // Our leaf must hold our key (the tree and the private state agree).
        let me = self.state.private.leaf;
        if self.member {
            let pk = self.state.private.leaf_key.public_key(self.state.suite);
            let ok = self.tree.old().encryption_key(me).is_some_and(|k| k == pk.as_bytes());
            if !ok {
                return Err(bad);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::credential::Credential;
    use crate::group::{MAX_GROUP_ID_LEN, SigningIdentity};
    use crate::leaf_node::Lifetime;
    use crate::crypto::signature::SignaturePrivateKey;
    use crate::store::ram::RamStorage;
    use crate::store::{MAX_RECORD_LEN, Storage, StorageError};
    use std::boxed::Box;
    use std::vec::Vec;

    const SUITE: CipherSuite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    type G = Group<64, 16384, 8, 1024>;

    /// Each item's tag and length.
    #[derive(Default)]
    struct Lengths(Vec<(u8, usize)>);

    impl ItemSink for Lengths {
        fn item(&mut self, f: &dyn Fn(&mut Writer<'_>) -> Result<(), CodecError>) -> Result<(), StoreError> {
            let mut counter = Writer::counter();
            f(&mut counter)?;
            let mut buf = std::vec![0u8; counter.len()];
            f(&mut Writer::new(&mut buf))?;
            self.0.push((buf[0], buf.len()));
            Ok(())
        }
    }

    fn rng() -> impl rand_core::CryptoRng {
        rand_core::UnwrapErr(getrandom::SysRng)
    }

    /// A group whose header item has every field at its longest (the
    /// longest group ID, a key at each of its 64-leaf tree's 6 levels) is
    /// exactly as long as the bound.
    #[test]
    fn a_full_header_item_is_as_long_as_its_bound() {
        let (key, _) = SignaturePrivateKey::generate(SUITE, &mut rng());
        let id = SigningIdentity::new(SUITE, Credential::Basic { identity: b"a" }, &key, Lifetime { not_before: 0, not_after: u64::MAX });
        let group_id = [7u8; MAX_GROUP_ID_LEN];
        let mut g = Box::new(G::EMPTY);
        g.create(&id.create_params(&group_id), &key, &mut rng()).unwrap();
        // Leaf 0's direct path in a 64-leaf tree: nodes 1, 3, 7, 15, 31, 63.
        for level in 1..=6u32 {
            g.state.private.set_path_secret(SUITE, NodeIndex((1 << level) - 1), &[level as u8; 32]).unwrap();
        }
        assert_eq!(g.state.private.path_keys().count(), 6);
        // Epoch 0's confirmed transcript hash is empty (§8.2); a later one's is not.
        g.state.confirmed_transcript_hash = HashValue::from_slice(&[1; 32]).unwrap();
        let mut items = Lengths::default();
        g.save_part(Part::Epoch, &mut items).unwrap();
        let headers: Vec<usize> = items.0.iter().filter(|(t, _)| *t == T_HEADER).map(|(_, n)| *n).collect();
        // Suite 3's keys and hash are 32 bytes each.
        let suite_3 = Lens { hash: 32, kem_private_stored: 32, kem_private: 32, signature_private: 32 };
        assert_eq!(headers, [header_item_len(6, suite_3)]);
        assert!(longest_item(6) >= header_item_len(6, Lens::MAX));
    }

    /// A LeafNode longer than a record: the save refuses it by name and the
    /// store holds nothing (no head: the group was never stored).
    #[test]
    fn a_leaf_longer_than_a_record_is_refused_and_nothing_is_stored() {
        let (key, _) = SignaturePrivateKey::generate(SUITE, &mut rng());
        let name = std::vec![b'x'; MAX_RECORD_LEN];
        let id = SigningIdentity::new(SUITE, Credential::Basic { identity: &name }, &key, Lifetime { not_before: 0, not_after: u64::MAX });
        let mut storage = RamStorage::<64, { 64 * 1024 }>::EMPTY;
        let mut record = [0u8; MAX_RECORD_LEN];
        let mut g = Box::new(G::EMPTY);
        let err = g.stored(&mut storage, 0, &mut record).create(&id.create_params(b"g"), &key, &mut rng()).unwrap_err();
        assert!(
            matches!(err, crate::store::durable::DurableError::Store(StoreError::CapacityExceeded(Capacity::RecordLen))),
            "{err:?}"
        );
        let mut buf = [0u8; MAX_RECORD_LEN];
        assert_eq!(storage.read(super::super::head_key(0), &mut buf).map(|r| r.is_some()), Ok::<bool, StorageError>(false));
        // A name that fits is stored.
        // (The LeafNode adds about 150 bytes to its credential.)
        let fits = &name[..MAX_RECORD_LEN - 200];
        let id = SigningIdentity::new(SUITE, Credential::Basic { identity: fits }, &key, Lifetime { not_before: 0, not_after: u64::MAX });
        let mut g = Box::new(G::EMPTY);
        g.stored(&mut storage, 0, &mut record).create(&id.create_params(b"g"), &key, &mut rng()).unwrap();
    }
}
