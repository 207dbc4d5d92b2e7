//! Group operations that persist before they emit (docs/architecture.md, decision 9).
//!
//! [`StoredGroup`] (a group bound to its storage, [`Group::stored`]) is the
//! way in: each of its operations runs the in-memory one, then saves what it
//! changed with one commit point, and only then returns its output. If the
//! save fails, nothing leaves: a ciphertext or plaintext buffer is zeroed and
//! a staged commit discarded, and the error says so. The in-memory ratchet may
//! then be ahead of the stored one, which is safe (a key is never used twice);
//! the caller can retry with [`Group::save`].

use super::records::{self, BlobWriter, for_each_item, verify};
use super::snapshot::{HeadPhase, RestoreChecks};
use super::{Head, MAX_RECORD_LEN, Part, Parts, Storage, StorageError, StoreError, key_package_key};
use crate::crypto::signer::Signer;
use crate::codec::CodecError;
use crate::crypto::HashValue;
use crate::crypto::hpke::HpkePrivateKey;
use crate::crypto::signature::SignaturePrivateKey;
use crate::executor::Executor;
use super::psks::StoredPsks;
use crate::group::{
    CommitBuffers, CommitError, CommitOptions, CommitOutput, CreateCommitError, Group, GroupError, JoinError,
    JoinParams, ReceiveError, Received, WireFormatPolicy,
};
use crate::ratchet_tree::treekem::LeafTemplate;
use crate::messages::proposal::{Add, Proposal, Remove};
use crate::key_package::KeyPackagePrivateKeys;
use crate::messages::authenticated_content::ProtectionError;
use crate::psk::PskStore;
use rand_core::CryptoRng;

/// How many KeyPackages' private keys the store holds at once.
pub const MAX_KEY_PACKAGES: u16 = 16;

/// An operation's own error, or the store's.
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DurableError<E> {
    /// The operation failed; nothing was saved and the group is as before.
    Op(E),
    /// The operation succeeded in memory but its result was not saved, so
    /// nothing was returned.
    Store(StoreError),
}

impl<E: core::fmt::Display> core::fmt::Display for DurableError<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Op(e) => write!(f, "{e}"),
            Self::Store(e) => write!(f, "operation done in memory but not saved (nothing returned): {e}"),
        }
    }
}

impl<E: core::error::Error + 'static> core::error::Error for DurableError<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Op(e) => Some(e),
            Self::Store(e) => Some(e),
        }
    }
}

impl<E> From<StoreError> for DurableError<E> {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// A buffer for one record.
pub type RecordBuffer = [u8; MAX_RECORD_LEN];

/// The secret trees' state in the store before a save's first write (the
/// epoch's, the previous epoch's, the ended tree's check): what a failed
/// save puts back.
type SaveStarts = (super::ratchets::SaveStart, Option<super::ratchets::SaveStart>, bool);

impl<const N: usize, const ARENA: usize, const K: usize, const P: usize, Sig: Signer, const E: usize> Group<N, ARENA, K, P, Sig, E> {
    /// Saves `parts` of this group to group `slot`, atomically: new records
    /// in the spare banks, then the head (the commit point), then the old
    /// banks are removed. The staged part is always written when it changed
    /// (a commit staged or dropped since the last save).
    ///
    /// The ratchet tree's nodes are not banked: each is a record of its
    /// own, and a save writes those a merged Commit changed, in the version
    /// the committed table does not name, before the head
    /// (`store::tree_records`). Nor are the secret trees: their nodes are
    /// records of their own, written only when they changed
    /// (`store::ratchets`). `Parts::RATCHETS` alone (an application
    /// message) writes the secret trees' records and no head. With
    /// a head, a new epoch's tree and our own leaf's ratchets are written
    /// before it and the other senders' after it, so a cut at any point
    /// loads either the old epoch or the new one, and never a key used
    /// twice.
    ///
    /// What changed is counted against the store this group last saved to
    /// or loaded from (its head names it): a save to any other store (a
    /// copy, a backup slot, another group's) writes the whole group, with
    /// all `parts`. A group whose secret tree is a pool with secrets in the
    /// store only cannot (`CapacityExceeded(SecretTreeEntries)`).
    pub fn save<S: Storage>(&mut self, storage: &mut S, slot: u8, parts: Parts, buf: &mut RecordBuffer) -> Result<(), StoreError> {
        self.save_with(storage, slot, parts, None, buf)
    }

    fn save_with<S: Storage>(
        &mut self,
        storage: &mut S,
        slot: u8,
        parts: Parts,
        consumed: Option<HashValue>,
        buf: &mut RecordBuffer,
    ) -> Result<(), StoreError> {
        let () = Self::RECORDS_HOLD_ITEMS;
        // An empty group (no tree: never created or joined, or wiped after
        // a failed save) would overwrite the slot's group with nothing.
        if self.tree.old().n_leaves() == 0 {
            return Err(StoreError::NoGroup);
        }
        let mut start = self.save_start();
        let result = self.save_inner(storage, slot, parts, consumed, &mut start, buf);
        // Only a save that committed stored what it wrote: a backend may
        // roll a failed one back whole (`Storage::committed`), so its
        // records stay changed and the banks' checks are as before its
        // first write, for the next save to do again (`store::ratchets`).
        let committed = result.is_ok();
        let (tree, past) = self.secret_trees.both_mut();
        tree.end_save(start.0, committed);
        if let (Some(past), Some(s)) = (past, start.1) {
            past.end_save(s, committed);
        }
        if !committed {
            self.ended.bank_checked = start.2;
        }
        // The buffer held plaintext records (secrets): none stays behind.
        zeroize::Zeroize::zeroize(buf);
        result
    }

    /// What a failed save puts back of the secret trees' state in the
    /// store (`store::ratchets`' `SaveStart`, the ended tree's check).
    fn save_start(&self) -> SaveStarts {
        (self.secret_trees.current().begin_save(), self.secret_trees.past().map(|p| p.begin_save()), self.ended.bank_checked)
    }

    /// [`Self::save_with`] but for what a failed save puts back: `start`,
    /// taken again before the first write.
    fn save_inner<S: Storage>(
        &mut self,
        storage: &mut S,
        slot: u8,
        mut parts: Parts,
        consumed: Option<HashValue>,
        start: &mut SaveStarts,
        buf: &mut RecordBuffer,
    ) -> Result<(), StoreError> {
        let old = match Head::read(storage, slot, buf) {
            Ok(h) => Some(h),
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(e),
        };
        let mut head = old.unwrap_or(Head::NEW);
        // The trees' records (and the ratchet tree's nodes) are saved as
        // they change, against the store this group last saved to or loaded
        // from, as the id in its head says (`store_id`): any other slot (a
        // fresh store, another group, a copy saved earlier) gets all of
        // them. Naming our trees does not make a slot ours: a copy saved
        // before names them too, with older records, and saved as ours it
        // would keep a used key (a message read again after it is loaded,
        // which RFC 9420 §9.2 forbids, or our own sending ratchet behind:
        // a key and nonce used twice) or name records it never got.
        let prev_tag = match self.secret_trees.past() {
            Some(past) => past.meta.tag,
            None => self.ended.tag,
        };
        let tag = self.secret_trees.current().meta.tag;
        let stored = head.tree_tags()[0];
        let own = old.is_some() && self.store_id != [0; 8] && head.store_id() == self.store_id;
        // A group the last Commit removed has no secret trees left to name
        // the slot (their tags are zero): its store id alone says whether
        // the slot is ours. (Taken for foreign, its own slot lost the
        // epoch's secret-tree records before the head, and a pool's
        // removal could not be saved at all.)
        let named = stored == tag || stored == prev_tag || !self.member;
        let foreign = !own || !named;
        let store_id = if foreign { new_store_id(&head, self.store_id, slot, [tag, prev_tag]) } else { self.store_id };
        if foreign {
            parts = Parts::ALL;
            let (tree, past) = self.secret_trees.both_mut();
            // A pool whose secrets are partly in another store cannot
            // write the whole tree here.
            if tree.meta.evicted || past.as_ref().is_some_and(|p| p.meta.evicted) {
                return Err(StoreError::CapacityExceeded(crate::capacity::Capacity::SecretTreeEntries));
            }
            tree.mark_all_unsaved();
            if let Some(past) = past {
                past.mark_all_unsaved();
            }
            self.ended.bank_checked = false;
            self.clean_spares = 0;
        }
        // A bank is cleared of this tree's records (`bank_stale`) only when
        // saved to a slot that is not ours: the flag of a foreign save that
        // failed does not follow the group to its own store. A foreign slot
        // whose head names the tree is cleared too: its records are older
        // than ours, and a skipped key used since would stay (the save
        // writes what the tree holds, not what it no longer does).
        let (tree, past) = self.secret_trees.both_mut();
        for t in core::iter::once(tree).chain(past) {
            if !foreign {
                t.meta.bank_stale = false;
            }
        }
        // A failed save leaves the trees as they are now (a foreign slot's
        // trees marked unsaved), not as before `mark_all_unsaved`.
        *start = self.save_start();
        let stored_staged = head.part(Part::Staged).records > 0;
        if self.staged.is_some() || stored_staged {
            parts = parts.with(Part::Staged);
        }
        if parts == Parts::RATCHETS {
            // An application message sent or read: its ratchet's record, no
            // head, no bank (issue #14).
            self.save_ratchets(storage, slot, None, buf)?;
            storage.committed()?;
            return Ok(());
        }
        // The secret trees' records around the head (`save_ratchets`): a
        // new epoch's root and our own ratchets before it.
        if parts.has(Part::Ratchets) {
            self.save_ratchets(storage, slot, Some(HeadPhase::Before), buf)?;
        }
        // The ratchet tree's changed nodes, before the epoch part lists them.
        // (A removed group's own slot is not foreign: its tree marks are
        // this slot's. Saved to another, it writes every node.)
        if parts.has(Part::Epoch) {
            let tree_foreign = old.is_none() || foreign;
            self.save_tree_records(storage, slot, tree_foreign, old.as_ref(), buf)?;
        }
        for part in Part::BANKED {
            if !parts.has(part) {
                continue;
            }
            let bank = head.part(part).bank ^ 1;
            // Written from here on, the bank is clean again only once a
            // save has committed and cleared the one it replaced.
            let clean = 1 << part as u8;
            let empty = self.clean_spares & clean != 0;
            self.clean_spares &= !clean;
            let mut w = BlobWriter::new(storage, slot, part, bank, empty, buf)?;
            self.save_part(part, &mut w)?;
            let info = w.finish()?;
            head.set_part(part, info);
        }
        // A join's consumed KeyPackage is named by the heads until a save
        // after it has made sure its keys are gone, also a save that names
        // another one (a second join into the slot: the head naming the
        // first is replaced, and its keys stayed for good).
        if let Some(reference) = old.and_then(|h| h.consumed)
            && consumed != Some(reference)
        {
            remove_key_package(storage, &reference, buf)?;
        }
        head.seq = head.seq.wrapping_add(1);
        head.consumed = consumed;
        head.set_tree_tags([tag, prev_tag]);
        head.set_store_id(store_id);
        head.write(storage, slot)?;
        if parts.has(Part::Epoch) {
            self.commit_tree_records(storage, slot)?;
        }
        if parts.has(Part::Ratchets) {
            self.save_ratchets(storage, slot, Some(HeadPhase::After), buf)?;
        }
        // Committed. The old banks (and their secrets) go: each holds the
        // records its head counts (a bank is cleared before it is written,
        // and a cut leaves a prefix), so none is looked up first.
        let mut cleaned = 0u8;
        if let Some(old) = old {
            for part in Part::BANKED {
                if parts.has(part) {
                    let info = old.part(part);
                    records::remove_records(storage, slot, part, info.bank, u16::from(info.records))?;
                    cleaned |= 1 << part as u8;
                }
            }
        }
        storage.committed()?;
        // The spares are known clean in the store the group now names (a
        // transactional store kept the removals only now).
        self.clean_spares |= cleaned;
        if parts.has(Part::Epoch) {
            // The marks are the slot's committed table (`save_tree_records`).
            self.tree_marks.unsure = false;
        }
        // Saved whole or as it changed, the slot is now ours. (A failed
        // save leaves the last one ours: what it wrote here stays changed.)
        self.store_id = store_id;
        Ok(())
    }

    /// Loads group `slot` into this group (whose previous state is replaced).
    /// Every record is checked against the head's hashes before anything is
    /// decoded; on any error the group is left empty and inactive.
    pub fn load<S: Storage>(
        &mut self,
        storage: &mut S,
        slot: u8,
        identity: &'static dyn crate::identity::IdentityProvider,
        buf: &mut RecordBuffer,
    ) -> Result<(), StoreError> {
        let () = Self::RECORDS_HOLD_ITEMS;
        let result = self.load_inner(storage, slot, identity, buf);
        // The buffer held plaintext records (secrets): none stays behind.
        zeroize::Zeroize::zeroize(buf);
        if result.is_err() {
            self.wipe();
        }
        result
    }

    fn load_inner<S: Storage>(
        &mut self,
        storage: &mut S,
        slot: u8,
        identity: &'static dyn crate::identity::IdentityProvider,
        buf: &mut RecordBuffer,
    ) -> Result<(), StoreError> {
        let head = Head::read(storage, slot, buf)?;
        for part in Part::BANKED {
            verify(storage, slot, part, head.part(part), buf)?;
        }
        self.wipe();
        let mut checks = RestoreChecks::default();
        for part in Part::BANKED {
            let info = *head.part(part);
            for_each_item(storage, slot, part, &info, buf, &mut |item| {
                self.restore_item(part, item, &mut checks, identity)
            })?;
            if part == Part::Epoch {
                self.load_tree_records(storage, slot, buf)?;
            }
        }
        self.load_ratchets(storage, slot, &mut checks, buf)?;
        self.restore_finish(&checks)?;
        // Saves go on against this store (`save_inner`).
        self.store_id = head.store_id();
        Ok(())
    }
}

/// A new id for a slot that a group saves whole ([`Head::store_id`]):
/// SHA-256 over the id the slot's head had, the group's own (its last
/// store's), the slot's committed state and the trees saved, so distinct
/// from both ids (a collision of 64 bits aside) and from another slot's
/// unless both held the same state. Never zero (no store). A save has no
/// RNG: two copies of one state in memory (the same store loaded twice)
/// that each save to a slot in the same state (two fresh stores) give both
/// slots one id, and the library cannot tell those two apart.
fn new_store_id(head: &Head, own: [u8; 8], slot: u8, tags: [[u8; 8]; 2]) -> [u8; 8] {
    let mut hasher = crate::crypto::Hasher::sha256();
    hasher.update(b"mls-nostd store id");
    hasher.update(&head.store_id());
    hasher.update(&own);
    hasher.update(&[slot]);
    hasher.update(&head.seq.to_be_bytes());
    for p in &head.parts {
        hasher.update(&p.hash);
    }
    hasher.update(&tags[0]);
    hasher.update(&tags[1]);
    let digest = hasher.finish();
    let mut id = [0u8; 8];
    if let Some(src) = digest.as_bytes().get(..8) {
        id.copy_from_slice(src);
    }
    if id == [0; 8] {
        id[7] = 1;
    }
    id
}

fn key_package_ref(key_package: &[u8]) -> Result<HashValue, JoinError> {
    use crate::codec::Decode;
    let kp = crate::key_package::KeyPackage::decode_exact(key_package)?;
    let suite = crate::crypto::CipherSuite::from_u16(kp.tbs.cipher_suite)
        .ok_or(JoinError::Welcome(crate::messages::welcome_secrets::WelcomeError::WrongCipherSuite))?;
    Ok(kp.reference(suite)?)
}

/// `suite || reference<V> || init_key<V> || encryption_key<V> || signer<V>`
/// (private keys in their stored form, which may be a secure element's
/// handle; each length prefix at most 2 bytes; `signer` is the signer's
/// [`Signer::stored_form`], at most a private key).
pub(crate) const KP_RECORD_LEN: usize = 2
    + 4 * 2
    + crate::crypto::MAX_HASH_LEN
    + 2 * crate::crypto::hpke::KEM_PRIVATE_STORED_LEN
    + crate::crypto::signature::SIGNATURE_PRIVATE_LEN;

/// Generates a KeyPackage for `identity` ([`SigningIdentity::key_package`](crate::group::SigningIdentity::key_package))
/// and stores its private keys and signer ([`store_key_package`]) before
/// returning it: a KeyPackage is never published whose keys a reboot could
/// lose. [`StoredGroup::join`] consumes it.
pub fn generate_key_package<'o, S: Storage>(
    storage: &mut S,
    identity: &crate::group::SigningIdentity<'_, impl Signer>,
    rng: &mut impl CryptoRng,
    out: &'o mut [u8],
    buf: &mut RecordBuffer,
) -> Result<&'o [u8], DurableError<crate::key_package::KeyPackageBuildError>> {
    let (key_package, keys) = identity.key_package(rng, out).map_err(DurableError::Op)?;
    let reference = key_package_ref(key_package).map_err(|_| StoreError::Corrupt)?;
    store_key_package(storage, identity.suite, &reference, &keys, identity.signer, buf)?;
    Ok(key_package)
}

/// Keeps the private keys of a KeyPackage of `suite` (and the signature key
/// it was signed with) until a Welcome consumes it.
pub fn store_key_package<S: Storage>(
    storage: &mut S,
    suite: crate::crypto::CipherSuite,
    reference: &HashValue,
    keys: &KeyPackagePrivateKeys,
    signer: &impl Signer,
    buf: &mut RecordBuffer,
) -> Result<(), StoreError> {
    let mut free = None;
    for n in 0..MAX_KEY_PACKAGES {
        match kp_record_is(storage, n, reference, buf)? {
            Some(true) => {
                free = Some(n);
                break;
            }
            None if free.is_none() => free = Some(n),
            _ => {}
        }
    }
    let n = free.ok_or(StoreError::Storage(StorageError::Full))?;
    let mut record = [0u8; KP_RECORD_LEN];
    let mut w = crate::codec::Writer::new(&mut record);
    w.write_u16(suite.to_u16())?;
    w.write_opaque(reference.as_bytes())?;
    // Either key may be a crypto engine's handle (HpkePrivateKey::held).
    for key in [&keys.init_key, &keys.encryption_key] {
        let mut stored = [0u8; crate::crypto::hpke::KEM_PRIVATE_STORED_LEN];
        let len = key.stored_form(&mut stored);
        let written = w.write_opaque(stored.get(..len).unwrap_or(&[]));
        zeroize::Zeroize::zeroize(&mut stored);
        written?;
    }
    w.write_opaque(signer.stored_form())?;
    let len = w.len();
    let result = storage.write(key_package_key(n), record.get(..len).ok_or(StoreError::BufferTooSmall { needed: len })?);
    zeroize::Zeroize::zeroize(&mut record);
    result?;
    storage.committed()?;
    Ok(())
}

/// Whether KeyPackage record `n` is `reference`'s (no key is read); `None`
/// if there is no record. A record this build cannot read (a cipher suite
/// it lacks, a longer hash, damage) is another KeyPackage's: it keeps its
/// place, and is never taken for ours. (Until December 8 it was `Corrupt`,
/// which failed every later save of a group joined with a KeyPackage, as
/// such a save removes the KeyPackage's keys first.)
fn kp_record_is<S: Storage>(storage: &mut S, n: u16, reference: &HashValue, buf: &mut RecordBuffer) -> Result<Option<bool>, StoreError> {
    let Some(bytes) = storage.read(key_package_key(n), buf)? else { return Ok(None) };
    let mut r = crate::codec::Reader::new(bytes);
    let ours = r.read_u16().is_ok_and(|s| crate::crypto::CipherSuite::from_u16(s).is_some())
        && r.read_opaque().is_ok_and(|b| b == reference.as_bytes());
    buf.fill(0);
    Ok(Some(ours))
}

fn read_kp<S: Storage, Sig: Signer>(
    storage: &mut S,
    n: u16,
    buf: &mut RecordBuffer,
) -> Result<Option<(HashValue, KeyPackagePrivateKeys, Sig)>, StoreError> {
    let Some(bytes) = storage.read(key_package_key(n), buf)? else { return Ok(None) };
    let mut r = crate::codec::Reader::new(bytes);
    let suite = crate::crypto::CipherSuite::from_u16(r.read_u16()?).ok_or(StoreError::Corrupt)?;
    let reference = HashValue::from_slice(r.read_opaque()?).map_err(|_| StoreError::Corrupt)?;
    let bad = |_| StoreError::Corrupt;
    let init_key = HpkePrivateKey::from_stored_form(suite, r.read_opaque()?).map_err(bad)?;
    let encryption_key = HpkePrivateKey::from_stored_form(suite, r.read_opaque()?).map_err(bad)?;
    let signer = Sig::from_stored_form(suite, r.read_opaque()?).map_err(bad)?;
    r.finish()?;
    let result = Some((reference, KeyPackagePrivateKeys { init_key, encryption_key }, signer));
    buf.fill(0);
    Ok(result)
}

/// The keys stored for the KeyPackage `reference`, and its signer (of the
/// type that stored it).
pub fn load_key_package<S: Storage, Sig: Signer>(
    storage: &mut S,
    reference: &HashValue,
    buf: &mut RecordBuffer,
) -> Result<Option<(KeyPackagePrivateKeys, Sig)>, StoreError> {
    for n in 0..MAX_KEY_PACKAGES {
        if kp_record_is(storage, n, reference, buf)? == Some(true) {
            return Ok(read_kp(storage, n, buf)?.map(|(_, keys, signer)| (keys, signer)));
        }
    }
    Ok(None)
}

/// Removes the keys of KeyPackage `reference` (a KeyPackage is used once, §16.8).
pub fn remove_key_package<S: Storage>(storage: &mut S, reference: &HashValue, buf: &mut [u8]) -> Result<(), StoreError> {
    let buf: &mut RecordBuffer = match buf.get_mut(..MAX_RECORD_LEN).and_then(|b| b.try_into().ok()) {
        Some(b) => b,
        None => return Err(StoreError::BufferTooSmall { needed: MAX_RECORD_LEN }),
    };
    for n in 0..MAX_KEY_PACKAGES {
        if kp_record_is(storage, n, reference, buf)? == Some(true) {
            storage.remove(key_package_key(n))?;
        }
    }
    storage.committed()?;
    Ok(())
}

/// A group bound to the storage that keeps it (decision 13, issue #13):
/// every operation that advances a ratchet, stages or merges an epoch, or
/// consumes a KeyPackage saves before it returns anything, so a device can
/// neither send with a key it would reuse after a reboot nor forget a step.
/// Made by [`Group::stored`]; on a device, use the group only through it.
/// (`Group`'s own `*_in_memory` operations are for hosts that save by other
/// means, and for tests.)
pub struct StoredGroup<
    'a,
    S: Storage,
    const N: usize,
    const ARENA: usize,
    const K: usize,
    const P: usize,
    Sig: Signer = SignaturePrivateKey,
    const E: usize = N,
> {
    group: &'a mut Group<N, ARENA, K, P, Sig, E>,
    storage: &'a mut S,
    slot: u8,
    buf: &'a mut RecordBuffer,
}

impl<const N: usize, const ARENA: usize, const K: usize, const P: usize, Sig: Signer, const E: usize> Group<N, ARENA, K, P, Sig, E> {
    /// This group, bound to group `slot` of `storage`; `buf` is the work
    /// buffer of one record (wiped after each save).
    pub fn stored<'a, S: Storage>(
        &'a mut self,
        storage: &'a mut S,
        slot: u8,
        buf: &'a mut RecordBuffer,
    ) -> StoredGroup<'a, S, N, ARENA, K, P, Sig, E> {
        StoredGroup { group: self, storage, slot, buf }
    }
}

impl<S: Storage, const N: usize, const ARENA: usize, const K: usize, const P: usize, Sig: Signer, const E: usize>
    StoredGroup<'_, S, N, ARENA, K, P, Sig, E>
{
    /// The group, for what only reads it (epoch, members, exporter).
    pub fn group(&self) -> &Group<N, ARENA, K, P, Sig, E> {
        self.group
    }

    /// Saves `parts` of the group; see [`Group::save`].
    pub fn save(&mut self, parts: Parts) -> Result<(), StoreError> {
        self.group.save(self.storage, self.slot, parts, self.buf)
    }

    /// [`Group::prepare_ratchets`] (a pool's sender read back from the
    /// store). If the pool has no clean secret to evict, those it holds were
    /// derived since the last save (by a message that was then refused, say:
    /// a forgery whose sender data decrypted, or a frame damaged after it;
    /// nothing was consumed): their records are saved, and the preparation
    /// tried again. Before, every sender but those already in the pool was
    /// refused until the device's next save of its own.
    fn prepare_ratchets(&mut self, message: Option<&[u8]>) -> Result<(), StoreError> {
        match self.group.prepare_ratchets(self.storage, self.slot, message, self.buf) {
            Err(StoreError::CapacityExceeded(crate::capacity::Capacity::SecretTreeEntries)) => {
                self.save(Parts::RATCHETS)?;
                self.group.prepare_ratchets(self.storage, self.slot, message, self.buf)
            }
            other => other,
        }
    }

    /// Loads the group from its slot; see [`Group::load`].
    pub fn load(&mut self, identity: &'static dyn crate::identity::IdentityProvider) -> Result<(), StoreError> {
        self.group.load(self.storage, self.slot, identity, self.buf)
    }

    /// Creates a one-member group ([`Group::create`]) and saves all of it.
    /// If the save fails, the group is emptied again.
    pub fn create(
        &mut self,
        p: &crate::group::CreateParams<'_>,
        signer: &Sig,
        rng: &mut impl CryptoRng,
    ) -> Result<(), DurableError<GroupError>> {
        self.group.create(p, signer, rng).map_err(DurableError::Op)?;
        if let Err(e) = self.save(Parts::ALL) {
            self.group.wipe();
            return Err(e.into());
        }
        Ok(())
    }

    /// Encrypts an application message (§6.3), returning the ciphertext only
    /// once the sending ratchet's new position is stored: a reboot never
    /// reuses the key and nonce.
    pub fn protect_application<'o>(
        &mut self,
        data: &[u8],
        authenticated_data: &[u8],
        padding: usize,
        rng: &mut impl CryptoRng,
        out: &'o mut [u8],
    ) -> Result<&'o [u8], DurableError<ReceiveError>> {
        self.prepare_ratchets(None)?;
        let len = self
            .group
            .protect_application_in_memory(data, authenticated_data, padding, rng, out)
            .map_err(DurableError::Op)?
            .len();
        if let Err(e) = self.save(Parts::RATCHETS) {
            out.fill(0);
            return Err(e.into());
        }
        // `len` bytes of `out` were just written: this cannot fail.
        out.get(..len).ok_or(DurableError::Op(ReceiveError::Protection(ProtectionError::BufferTooSmall { needed: len })))
    }

    /// Sends a proposal (§12.1; see [`Group::propose`]), returning the
    /// message only once the store holds what it changed: the proposal,
    /// kept for our next Commit, and for a PrivateMessage the handshake
    /// ratchet's new position (a reboot never reuses its key and nonce). If
    /// the save fails, `out` is wiped (the proposal must not be sent) and
    /// the group is emptied, as [`StoredGroup::merge_staged_commit`] leaves
    /// it, since the one in memory keeps a proposal nobody received:
    /// [`StoredGroup::load`] it. A save that failed after its commit point
    /// stored the proposal: it is returned (a proposal the store holds but
    /// nobody received would be named by our next Commit, which the others
    /// would refuse).
    pub fn propose<'o>(
        &mut self,
        proposal: &Proposal<'_>,
        wire_format: WireFormatPolicy,
        rng: &mut impl CryptoRng,
        out: &'o mut [u8],
    ) -> Result<&'o [u8], DurableError<CreateCommitError>> {
        self.prepare_ratchets(None)?;
        let len = self.group.propose(proposal, wire_format, rng, out).map_err(DurableError::Op)?.len();
        self.store_own_proposal(out, len)
    }

    /// Proposes an Update of our leaf (§12.1.2; see
    /// [`Group::propose_update`]), stored as [`StoredGroup::propose`]: its
    /// new private key too, which a Commit of the Update needs after a
    /// reboot.
    pub fn propose_update<'o>(
        &mut self,
        template: &LeafTemplate<'_>,
        wire_format: WireFormatPolicy,
        rng: &mut impl CryptoRng,
        out: &'o mut [u8],
    ) -> Result<&'o [u8], DurableError<CreateCommitError>> {
        self.prepare_ratchets(None)?;
        let len = self.group.propose_update(template, wire_format, rng, out).map_err(DurableError::Op)?.len();
        self.store_own_proposal(out, len)
    }

    /// Saves `parts` for an operation whose output goes out only once
    /// stored: fails only if the store does not hold the save. A save that
    /// failed after its head was written (a cleanup after it failed) stored
    /// the operation once the head is committed ([`Storage::committed`]: a
    /// no-op on flash, where the head's write is the commit point; a
    /// transactional store commits the save's writes so far, head
    /// included, or fails): its output must then go out, as the store
    /// expects. What it did not clean up, the next save writes again (the
    /// save's marks stay unsaved).
    fn save_to_commit_point(&mut self, parts: Parts) -> Result<(), StoreError> {
        self.save_to_commit_point_with(parts, None)
    }

    /// [`Self::save_to_commit_point`] of a join, whose head names the
    /// KeyPackage `consumed`.
    fn save_to_commit_point_with(&mut self, parts: Parts, consumed: Option<HashValue>) -> Result<(), StoreError> {
        // The head's sequence number, `None` without a head; a head that
        // cannot be read tells nothing.
        let seq = |s: &mut S, slot: u8, buf: &mut RecordBuffer| match Head::read(s, slot, buf) {
            Ok(h) => Ok(Some(h.seq)),
            Err(StoreError::NotFound) => Ok(None),
            Err(e) => Err(e),
        };
        let before = seq(self.storage, self.slot, self.buf);
        let saved = self.group.save_with(self.storage, self.slot, parts, consumed, self.buf);
        if saved.is_err()
            && let (Ok(before), Ok(Some(after))) = (before, seq(self.storage, self.slot, self.buf))
            && before != Some(after)
            && self.storage.committed().is_ok()
        {
            return Ok(());
        }
        saved
    }

    /// Saves our proposal of `len` bytes in `out` (see [`Self::propose`]).
    fn store_own_proposal<'o>(&mut self, out: &'o mut [u8], len: usize) -> Result<&'o [u8], DurableError<CreateCommitError>> {
        if let Err(e) = self.save_to_commit_point(Parts::RATCHETS.with(Part::Proposals)) {
            out.fill(0);
            self.group.wipe();
            return Err(e.into());
        }
        // `len` bytes of `out` were just written: this cannot fail.
        out.get(..len).ok_or(DurableError::Op(CreateCommitError::Commit(CommitError::Codec(CodecError::Truncated))))
    }

    /// Processes a message (§6, §12.4.2) with the external PSKs kept in the
    /// store ([`store_external_psk`](super::psks::store_external_psk); read
    /// only for a Commit that names them, up to [`STORED_PSKS_PER_USE`]), as
    /// [`StoredGroup::process_message_with_psks`].
    pub fn process_message<'m>(&mut self, message: &'m mut [u8], now: u64) -> Result<Received<'m>, DurableError<ReceiveError>> {
        self.prepare_ratchets(Some(message))?;
        let psks = StoredPsks::<S, STORED_PSKS_PER_USE>::new(&mut *self.storage);
        let processed = process_in_memory(self.group, message, &psks, now);
        if let Some(e) = psks.error() {
            return Err(e.into());
        }
        drop(psks);
        self.finish_receive(message, processed?)
    }

    /// Processes a message (§6, §12.4.2) with the PSKs of `psks`, saving
    /// what it consumed before anything is returned: the receiving ratchet
    /// for application data (a replay after a reboot stays rejected), the
    /// proposal store for a proposal. A staged Commit is not saved: it is
    /// saved by [`StoredGroup::merge_staged_commit`] (after a reboot the
    /// Commit is processed again); a save while it is staged saves it too.
    pub fn process_message_with_psks<'m>(
        &mut self,
        message: &'m mut [u8],
        psks: &dyn PskStore,
        now: u64,
    ) -> Result<Received<'m>, DurableError<ReceiveError>> {
        self.prepare_ratchets(Some(message))?;
        let processed = process_in_memory(self.group, message, psks, now)?;
        self.finish_receive(message, processed)
    }

    /// Saves what [`process_in_memory`] consumed, then returns the message's
    /// content, re-sliced from `message` (wiped if the save fails).
    fn finish_receive<'m>(&mut self, message: &'m mut [u8], (parts, app): Processed) -> Result<Received<'m>, DurableError<ReceiveError>> {
        if let Some(Err(e)) = parts.map(|parts| self.save(parts)) {
            message.fill(0);
            return Err(e.into());
        }
        match app {
            Err(other) => Ok(other),
            Ok((sender, (d, dl, a, al))) => {
                let message: &'m [u8] = message;
                let slice = |at: usize, len: usize| at.checked_add(len).and_then(|end| message.get(at..end));
                // The spans were taken from `message`: this cannot fail.
                let outside = DurableError::Op(ReceiveError::Protection(ProtectionError::Malformed(CodecError::Truncated)));
                Ok(Received::Application {
                    sender,
                    data: slice(d, dl).ok_or(outside)?,
                    authenticated_data: slice(a, al).ok_or(outside)?,
                })
            }
        }
    }

    /// Makes the staged Commit the current epoch and saves it (the ended
    /// epoch's secrets leave the store at the same commit point).
    ///
    /// If the save fails, the group is emptied, as a failed join or create
    /// leaves it (and an empty group refuses to be saved,
    /// [`StoreError::NoGroup`], so a retried save cannot replace the stored
    /// group): [`StoredGroup::load`] it. The store holds the epoch
    /// before the Commit (process the Commit again; ours is in the store,
    /// staged: merge it again), or the new one if the operation that
    /// failed came after the save's commit point. Kept in memory, the new epoch
    /// would send with keys the store may not know were used, and a save
    /// of its ratchets would mark the Commit's own key consumed in the
    /// stored epoch, which then could not process the Commit again.
    pub fn merge_staged_commit(&mut self) -> Result<(), DurableError<GroupError>> {
        self.group.merge_staged_commit_in_memory().map_err(DurableError::Op)?;
        if let Err(e) = self.save(Parts::ALL) {
            self.group.wipe();
            return Err(e.into());
        }
        Ok(())
    }

    /// Drops the staged Commit, in memory and in the store. If the save
    /// fails, the store may still hold the stage, which a load brings back:
    /// discard it again.
    pub fn discard_staged_commit(&mut self) -> Result<(), StoreError> {
        self.group.discard_staged_commit();
        // A save rewrites the staged part whenever the store holds one.
        self.save(Parts::RATCHETS)
    }

    /// Creates a Commit (§12.4; see [`Group::commit_in_memory`]), returning
    /// it and its Welcome only once the staged epoch (with the path secrets
    /// behind it) is stored: after a reboot the member can still merge the
    /// Commit the group accepted. If the save fails, the Commit is
    /// discarded and `bufs` wiped (it must not be sent), and the store
    /// holds no stage of it. A save that failed after its commit point
    /// stored the stage: the Commit is returned, as after a save that
    /// succeeded (a stage in the store that was never sent, merged after a
    /// reboot, would put the member in an epoch of its own).
    pub fn commit<'o>(
        &mut self,
        opts: &CommitOptions<'_>,
        psks: &dyn PskStore,
        now: u64,
        rng: &mut impl CryptoRng,
        executor: &impl Executor,
        bufs: CommitBuffers<'o>,
    ) -> Result<CommitOutput<'o>, DurableError<CreateCommitError>> {
        self.prepare_ratchets(None)?;
        let CommitBuffers { message, welcome, group_info } = bufs;
        let bufs = CommitBuffers { message: &mut *message, welcome: &mut *welcome, group_info: &mut *group_info };
        let bases = Placed::bases(&bufs);
        let output = self.group.commit_in_memory(opts, psks, now, rng, executor, bufs).map_err(DurableError::Op)?;
        let placed = Placed::of(&bases, output);
        self.store_own_commit(placed, CommitBuffers { message, welcome, group_info })
    }

    /// Commits the pending ReInit `reinit` (§11.2; see
    /// [`Group::commit_reinit_in_memory`]), stored as [`StoredGroup::commit`].
    #[allow(clippy::too_many_arguments)]
    pub fn commit_reinit<'o>(
        &mut self,
        reinit: &HashValue,
        opts: &CommitOptions<'_>,
        psks: &dyn PskStore,
        now: u64,
        rng: &mut impl CryptoRng,
        executor: &impl Executor,
        bufs: CommitBuffers<'o>,
    ) -> Result<CommitOutput<'o>, DurableError<CreateCommitError>> {
        self.prepare_ratchets(None)?;
        let CommitBuffers { message, welcome, group_info } = bufs;
        let bufs = CommitBuffers { message: &mut *message, welcome: &mut *welcome, group_info: &mut *group_info };
        let bases = Placed::bases(&bufs);
        let output = self.group.commit_reinit_in_memory(reinit, opts, psks, now, rng, executor, bufs);
        let placed = Placed::of(&bases, output.map_err(DurableError::Op)?);
        self.store_own_commit(placed, CommitBuffers { message, welcome, group_info })
    }

    /// Adds the member of `key_package` (an encoded KeyPackage, §12.1.1)
    /// with a Commit that also covers the proposals received this epoch; the
    /// Welcome carries the tree. `buf` holds the Commit, the Welcome and
    /// their work space: [`Group::commit_buffers_len`]`(key_package.len() + 3)`
    /// bytes. Stored as [`StoredGroup::commit`], with the store's external
    /// PSKs.
    pub fn add_member<'o>(
        &mut self,
        key_package: &[u8],
        now: u64,
        rng: &mut impl CryptoRng,
        buf: &'o mut [u8],
    ) -> Result<CommitOutput<'o>, DurableError<CreateCommitError>> {
        use crate::codec::Decode;
        let kp = crate::key_package::KeyPackage::decode_exact(key_package)
            .map_err(|e| DurableError::Op(CreateCommitError::Protection(ProtectionError::Malformed(e))))?;
        let add = [Proposal::Add(Add { key_package: kp })];
        // ProposalOrRef type, proposal type, KeyPackage.
        let by_value = key_package.len().saturating_add(3);
        self.commit_one_buffer(&CommitOptions { proposals: &add, ..CommitOptions::DEFAULT }, by_value, now, rng, buf)
    }

    /// Removes the member at leaf `removed` (§12.1.3) with a Commit that
    /// also covers the proposals received this epoch. `buf`:
    /// [`Group::commit_buffers_len`]`(7)` bytes. Stored as
    /// [`StoredGroup::commit`].
    pub fn remove_member<'o>(
        &mut self,
        removed: u32,
        now: u64,
        rng: &mut impl CryptoRng,
        buf: &'o mut [u8],
    ) -> Result<CommitOutput<'o>, DurableError<CreateCommitError>> {
        let remove = [Proposal::Remove(Remove { removed })];
        self.commit_one_buffer(&CommitOptions { proposals: &remove, ..CommitOptions::DEFAULT }, 7, now, rng, buf)
    }

    /// Updates our leaf's keys with a Commit that carries an UpdatePath
    /// (post-compromise security, §12.4) and covers the proposals received
    /// this epoch. `buf`: [`Group::commit_buffers_len`]`(0)` bytes. Stored
    /// as [`StoredGroup::commit`].
    pub fn update<'o>(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRng,
        buf: &'o mut [u8],
    ) -> Result<CommitOutput<'o>, DurableError<CreateCommitError>> {
        self.commit_one_buffer(&CommitOptions { force_path: true, ..CommitOptions::DEFAULT }, 0, now, rng, buf)
    }

    /// [`StoredGroup::commit`] into one buffer split by the group's sizes,
    /// with the store's external PSKs (read only if a pending proposal
    /// names one), one signature check after another.
    fn commit_one_buffer<'o>(
        &mut self,
        opts: &CommitOptions<'_>,
        by_value: usize,
        now: u64,
        rng: &mut impl CryptoRng,
        buf: &'o mut [u8],
    ) -> Result<CommitOutput<'o>, DurableError<CreateCommitError>> {
        let needed = Group::<N, ARENA, K, P>::commit_buffers_len(by_value);
        let CommitBuffers { message, welcome, group_info } = Group::<N, ARENA, K, P>::split_commit_buffers(buf, by_value)
            .ok_or(DurableError::Op(CreateCommitError::Protection(ProtectionError::BufferTooSmall { needed })))?;
        let bufs = CommitBuffers { message: &mut *message, welcome: &mut *welcome, group_info: &mut *group_info };
        let bases = Placed::bases(&bufs);
        let psks = StoredPsks::<S, STORED_PSKS_PER_USE>::new(&mut *self.storage);
        let output = self.group.commit_in_memory(opts, &psks, now, rng, &crate::executor::Sequential, bufs);
        let output = output.map(|o| Placed::of(&bases, o));
        if let Some(e) = psks.error() {
            if output.is_ok() {
                self.group.discard_staged_commit();
            }
            return Err(e.into());
        }
        drop(psks);
        let placed = output.map_err(DurableError::Op)?;
        self.store_own_commit(placed, CommitBuffers { message, welcome, group_info })
    }

    /// Stores our staged Commit and the ratchet that framed it, then gives
    /// the Commit and its Welcome from `bufs`. If the save fails, the
    /// Commit is discarded and `bufs` wiped: framed with a ratchet whose
    /// position the store does not hold, it must not leave (after a reboot
    /// that ratchet would frame another message the same).
    fn store_own_commit<'o>(
        &mut self,
        placed: Option<Placed>,
        bufs: CommitBuffers<'o>,
    ) -> Result<CommitOutput<'o>, DurableError<CreateCommitError>> {
        let CommitBuffers { message, welcome, group_info } = bufs;
        // The spans were taken from these buffers: `None` cannot happen.
        let outside = DurableError::Op(CreateCommitError::Protection(ProtectionError::BufferTooSmall { needed: 0 }));
        let saved = match placed {
            Some(_) => self.save_to_commit_point(Parts::RATCHETS.with(Part::Staged)).map_err(DurableError::from),
            None => Err(outside),
        };
        if let Err(e) = saved {
            self.group.discard_staged_commit();
            for buf in [message, welcome, group_info] {
                zeroize::Zeroize::zeroize(buf);
            }
            return Err(e);
        }
        let placed = placed.ok_or(outside)?;
        let bufs: [&'o [u8]; 3] = [message, welcome, group_info];
        let get = |(i, at, len): Span| bufs.get(i).and_then(|b| b.get(at..at.checked_add(len)?));
        let commit = get(placed.commit).ok_or(outside)?;
        let welcome = match placed.welcome {
            Some(span) => Some(get(span).ok_or(outside)?),
            None => None,
        };
        Ok(CommitOutput { commit, welcome, summary: placed.summary })
    }

    /// Joins from `welcome` (the tree in it, no PSKs, the default
    /// [`GroupConfig`](crate::group::GroupConfig)) as the member of
    /// `key_package`, whose keys the store keeps ([`generate_key_package`]),
    /// as [`StoredGroup::join_with`]. `buf` holds the Welcome's GroupInfo
    /// and tree: the Welcome's length suffices.
    pub fn join(&mut self, welcome: &[u8], key_package: &[u8], buf: &mut [u8]) -> Result<(), DurableError<JoinError>> {
        // The keys and signer of these parameters are not read: the store's are.
        let unused = KeyPackagePrivateKeys { init_key: HpkePrivateKey::ZERO, encryption_key: HpkePrivateKey::ZERO };
        self.join_with(welcome, &JoinParams::new(key_package, &unused, &Sig::NONE), buf)
    }

    /// Joins from `welcome` with the KeyPackage keys kept in the store
    /// ([`store_key_package`]) and saves the group. The KeyPackage's private
    /// keys are removed by the same commit point (the head names them;
    /// [`super::recover`] finishes the removal after a cut): neither a lost
    /// join nor a reusable key. `p.keys` and `p.signer` are ignored: both
    /// come from the store. Once the head is written the join holds, and
    /// returns `Ok` even if a cleanup after it failed. If the removal of the
    /// keys failed so (the storage failing, not a cut), they remain until
    /// [`super::recover`] or the group's next save, and until then another
    /// Welcome for the same KeyPackage would join too: after an error of
    /// the storage, run `recover` before the next join.
    pub fn join_with(&mut self, welcome: &[u8], p: &JoinParams<'_, Sig>, group_info_buf: &mut [u8]) -> Result<(), DurableError<JoinError>> {
        self.join_stored(p, |group, p| group.join_in_memory(welcome, p, group_info_buf))
    }

    /// [`Self::join_with`] with the Welcome decrypted where it lies
    /// ([`Group::join_in_place_in_memory`]): discard `welcome` afterwards.
    pub fn join_in_place(&mut self, welcome: &mut [u8], p: &JoinParams<'_, Sig>) -> Result<(), DurableError<JoinError>> {
        self.join_stored(p, |group, p| group.join_in_place_in_memory(welcome, p))
    }

    /// [`Self::join_with`] from a Welcome read in pieces
    /// ([`Group::join_read_in_memory`]): discard the reader's buffer
    /// afterwards.
    pub fn join_read(
        &mut self,
        welcome: &mut crate::messages::welcome_reader::ReadWelcome<'_>,
        p: &JoinParams<'_, Sig>,
    ) -> Result<(), DurableError<JoinError>> {
        self.join_stored(p, |group, p| group.join_read_in_memory(welcome, p))
    }

    /// Joins with `join`, given `p` with the KeyPackage's keys and signer
    /// from the store, then saves the group and removes the keys.
    fn join_stored(
        &mut self,
        p: &JoinParams<'_, Sig>,
        join: impl FnOnce(&mut Group<N, ARENA, K, P, Sig, E>, &JoinParams<'_, Sig>) -> Result<(), JoinError>,
    ) -> Result<(), DurableError<JoinError>> {
        let reference = key_package_ref(p.key_package).map_err(DurableError::Op)?;
        let (keys, signer) = load_key_package(self.storage, &reference, self.buf)?.ok_or(DurableError::Op(
            JoinError::Welcome(crate::messages::welcome_secrets::WelcomeError::NotForUs),
        ))?;
        join(self.group, &JoinParams { keys: &keys, signer: &signer, ..*p }).map_err(DurableError::Op)?;
        // Joined once the head is written, whatever fails after it (as our
        // Commit and proposals: before, the group was wiped and the join
        // refused while the store held it, with the KeyPackage's keys).
        if let Err(e) = self.save_to_commit_point_with(Parts::ALL, Some(reference)) {
            self.group.wipe();
            return Err(e.into());
        }
        // Joined and stored. If this removal fails (or power is cut), the
        // head still names the KeyPackage: `recover` or the next save
        // removes its keys.
        let _ = remove_key_package(self.storage, &reference, self.buf);
        Ok(())
    }
}

/// Where a slice lies in a Commit's three buffers (message, Welcome,
/// GroupInfo): which one, at what offset, how long.
type Span = (usize, usize, usize);

/// A Commit's output as spans of its buffers, so that the buffers can be
/// wiped, or the output given back, once its save is known.
struct Placed {
    commit: Span,
    welcome: Option<Span>,
    summary: crate::group::StagedCommitSummary,
}

impl Placed {
    /// Where `out` lies in the buffers of `bases` (address and length of
    /// each); `None` if outside them (it never is: it was built there).
    fn of(bases: &[(usize, usize); 3], out: CommitOutput<'_>) -> Option<Self> {
        let span = |s: &[u8]| {
            let p = s.as_ptr() as usize;
            bases.iter().enumerate().find_map(|(i, &(base, len))| {
                let at = p.checked_sub(base)?;
                (at.checked_add(s.len())? <= len).then_some((i, at, s.len()))
            })
        };
        let welcome = match out.welcome {
            Some(w) => Some(span(w)?),
            None => None,
        };
        Some(Self { commit: span(out.commit)?, welcome, summary: out.summary })
    }

    /// The address and length of each of a Commit's buffers.
    fn bases(bufs: &CommitBuffers<'_>) -> [(usize, usize); 3] {
        [&*bufs.message, &*bufs.welcome, &*bufs.group_info].map(|b| (b.as_ptr() as usize, b.len()))
    }
}

/// External PSKs a stored group reads from its store for one Commit (the
/// rest of the Commit's PSKs, if any, are unknown to it): 4, or fewer if a
/// Commit may carry fewer ([`MAX_PSKS_PER_COMMIT`]). Their slots (about 140
/// bytes each) are on the stack of every message processed.
///
/// [`MAX_PSKS_PER_COMMIT`]: crate::group::MAX_PSKS_PER_COMMIT
pub const STORED_PSKS_PER_USE: usize =
    if crate::group::MAX_PSKS_PER_COMMIT < 4 { crate::group::MAX_PSKS_PER_COMMIT } else { 4 };

/// What processing a message consumed: the parts to save, and the
/// application data's spans in the message (sender, data, authenticated
/// data) or the other content.
type Processed = (Option<Parts>, Result<(crate::tree_math::LeafIndex, (usize, usize, usize, usize)), Received<'static>>);

/// [`Group::process_message_in_memory`], with the application data kept as
/// spans of `message` (so that it can be wiped if the save fails).
fn process_in_memory<const N: usize, const ARENA: usize, const K: usize, const P: usize, Sig: Signer, const E: usize>(
    group: &mut Group<N, ARENA, K, P, Sig, E>,
    message: &mut [u8],
    psks: &dyn PskStore,
    now: u64,
) -> Result<Processed, DurableError<ReceiveError>> {
    let base = message.as_ptr() as usize;
    Ok(match group.process_message_in_memory(message, psks, now).map_err(DurableError::Op)? {
        Received::Application { sender, data, authenticated_data } => {
            let at = |s: &[u8]| (s.as_ptr() as usize).wrapping_sub(base);
            (Some(Parts::RATCHETS), Ok((sender, (at(data), data.len(), at(authenticated_data), authenticated_data.len()))))
        }
        Received::Proposal { sender, reference } => {
            (Some(Parts::RATCHETS.with(Part::Proposals)), Err(Received::Proposal { sender, reference }))
        }
        Received::Commit(summary) => (None, Err(Received::Commit(summary))),
    })
}
