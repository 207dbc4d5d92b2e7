//! A secret tree's state as items (§9), one per stored secret, so that only
//! what exists is written. The secret tree itself knows nothing of storage:
//! this module looks down at it.

use super::{ItemSink, StoreError};
use crate::capacity::Capacity;
use crate::codec::{CodecError, Reader, Writer};
use crate::crypto::{CipherSuite, Secret};
use crate::secret_tree::{
    LeafSecrets, Ratchet, RatchetKey, RatchetKind, SecretTree, SecretTreeConfig, SecretTreeMeta, SkippedKey,
};

const ITEM_META: u8 = 1;
const ITEM_PARENT: u8 = 2;
const ITEM_LEAF_SECRET: u8 = 3;
const ITEM_LEAF_RATCHETS: u8 = 4;
const ITEM_SKIPPED: u8 = 5;

fn write_secret(w: &mut Writer<'_>, s: &Secret) -> Result<(), CodecError> {
    w.write_opaque(s.as_bytes())
}

fn read_secret(r: &mut Reader<'_>) -> Result<Secret, CodecError> {
    Secret::from_slice(r.read_opaque()?).map_err(|_| CodecError::InvalidValue)
}

fn write_ratchet(w: &mut Writer<'_>, r: &Ratchet) -> Result<(), CodecError> {
    write_secret(w, &r.secret)?;
    w.write_u32(r.generation)
}

fn read_ratchet(r: &mut Reader<'_>) -> Result<Ratchet, CodecError> {
    Ok(Ratchet { secret: read_secret(r)?, generation: r.read_u32()? })
}

impl<const N: usize, const K: usize> SecretTree<N, K> {
    /// Writes this tree as items tagged `which` (current or previous epoch).
    pub(crate) fn save_items(
        &self,
        which: u8,
        out: &mut dyn ItemSink,
    ) -> Result<(), StoreError> {
        let meta = self.meta;
        out.item(&|w| {
            w.write_u8(ITEM_META)?;
            w.write_u8(which)?;
            w.write_u16(meta.suite.to_u16())?;
            w.write_u32(meta.n_leaves)?;
            w.write_u32(meta.config.max_forward_distance)?;
            w.write_u64(meta.next_seq)
        })?;
        for (i, p) in self.parents.iter().enumerate() {
            let Some(secret) = p else { continue };
            let i = u32::try_from(i).map_err(|_| StoreError::CapacityExceeded(Capacity::Leaves))?;
            out.item(&|w| {
                w.write_u8(ITEM_PARENT)?;
                w.write_u8(which)?;
                w.write_u32(i)?;
                write_secret(w, secret)
            })?;
        }
        for (i, l) in self.leaves.iter().enumerate() {
            let i = u32::try_from(i).map_err(|_| StoreError::CapacityExceeded(Capacity::Leaves))?;
            match l {
                LeafSecrets::Empty => {}
                LeafSecrets::Secret(secret) => out.item(&|w| {
                    w.write_u8(ITEM_LEAF_SECRET)?;
                    w.write_u8(which)?;
                    w.write_u32(i)?;
                    write_secret(w, secret)
                })?,
                LeafSecrets::Ratchets { handshake, application } => out.item(&|w| {
                    w.write_u8(ITEM_LEAF_RATCHETS)?;
                    w.write_u8(which)?;
                    w.write_u32(i)?;
                    write_ratchet(w, handshake)?;
                    write_ratchet(w, application)
                })?,
            }
        }
        for k in self.skipped.iter().flatten() {
            out.item(&|w| {
                w.write_u8(ITEM_SKIPPED)?;
                w.write_u8(which)?;
                w.write_u32(k.leaf)?;
                w.write_u8(match k.kind {
                    RatchetKind::Handshake => 0,
                    RatchetKind::Application => 1,
                })?;
                w.write_u64(k.seq)?;
                w.write_u32(k.key.generation)?;
                write_secret(w, &k.key.key)?;
                w.write_bytes(&k.key.nonce)
            })?;
        }
        Ok(())
    }

    /// Restores one item written by [`Self::save_items`] (its tag and
    /// `which` already read). Call [`Self::clear`] first.
    pub(crate) fn restore_item(&mut self, tag: u8, r: &mut Reader<'_>) -> Result<(), CodecError> {
        match tag {
            ITEM_META => {
                let suite = CipherSuite::from_u16(r.read_u16()?).ok_or(CodecError::InvalidValue)?;
                let n_leaves = r.read_u32()?;
                if usize::try_from(n_leaves).map_or(true, |n| n > N) || (n_leaves != 0 && !n_leaves.is_power_of_two()) {
                    return Err(CodecError::CapacityExceeded(Capacity::Leaves));
                }
                let max_forward_distance = r.read_u32()?;
                let next_seq = r.read_u64()?;
                self.meta = SecretTreeMeta { suite, n_leaves, config: SecretTreeConfig { max_forward_distance }, next_seq };
            }
            ITEM_PARENT => {
                let i = r.read_u32()?;
                let slot = usize::try_from(i).ok().and_then(|i| self.parents.get_mut(i)).ok_or(CodecError::CapacityExceeded(Capacity::Leaves))?;
                *slot = Some(read_secret(r)?);
            }
            ITEM_LEAF_SECRET | ITEM_LEAF_RATCHETS => {
                let i = r.read_u32()?;
                let value = if tag == ITEM_LEAF_SECRET {
                    LeafSecrets::Secret(read_secret(r)?)
                } else {
                    LeafSecrets::Ratchets { handshake: read_ratchet(r)?, application: read_ratchet(r)? }
                };
                let slot = usize::try_from(i).ok().and_then(|i| self.leaves.get_mut(i)).ok_or(CodecError::CapacityExceeded(Capacity::Leaves))?;
                *slot = value;
            }
            ITEM_SKIPPED => {
                let leaf = r.read_u32()?;
                let kind = match r.read_u8()? {
                    0 => RatchetKind::Handshake,
                    1 => RatchetKind::Application,
                    _ => return Err(CodecError::InvalidValue),
                };
                let seq = r.read_u64()?;
                let generation = r.read_u32()?;
                let key = read_secret(r)?;
                let nonce = r.read_array()?;
                let slot = self.skipped.iter_mut().find(|s| s.is_none()).ok_or(CodecError::CapacityExceeded(Capacity::SkippedKeys))?;
                *slot = Some(SkippedKey { leaf, kind, seq, key: RatchetKey { generation, key, nonce } });
            }
            _ => return Err(CodecError::InvalidValue),
        }
        Ok(())
    }
}
