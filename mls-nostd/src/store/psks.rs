//! External PSKs (RFC 9420 §8.4) kept in the store, one record each, and
//! read back into a [`PskStore`] the group operations take.

use super::{KIND_PSK, RecordKey, Storage, StorageError, StoreError};
use crate::capacity::Capacity;
use crate::codec::{OwnedBytes, Reader, Writer};
use crate::psk::PskStore;
use core::cell::{Cell, OnceCell, RefCell};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// How many external PSKs the store holds.
pub const MAX_EXTERNAL_PSKS: u8 = 16;
/// Longest PSK ID kept.
pub const MAX_PSK_ID_LEN: usize = 64;
/// Longest PSK kept. A PSK may be longer than the suite's hash (it goes
/// through KDF.Extract first, RFC 9420 §8.4), so its room does not follow
/// `MAX_HASH_LEN`: a SHA-256-only build keeps 64-byte keys too.
pub const MAX_PSK_LEN: usize = 64;
// A 64-byte key's length also takes 2 varint bytes (RFC 9420 §2.1.2).
pub(crate) const RECORD_LEN: usize = 2 + MAX_PSK_ID_LEN + 2 + MAX_PSK_LEN;

/// A stored PSK read back: zeroized on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
struct PskKey {
    bytes: [u8; MAX_PSK_LEN],
    len: u8,
}

impl PskKey {
    fn from_slice(v: &[u8]) -> Result<Self, StoreError> {
        let mut key = Self { bytes: [0; MAX_PSK_LEN], len: 0 };
        let room = key.bytes.get_mut(..v.len()).ok_or(StoreError::Corrupt)?;
        room.copy_from_slice(v);
        key.len = v.len() as u8;
        Ok(key)
    }

    fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }
}

const fn psk_key(n: u8) -> RecordKey {
    u32::from_be_bytes([KIND_PSK, 0, 0, n])
}

fn read_entry<S: Storage>(storage: &mut S, n: u8) -> Result<Option<(OwnedBytes<MAX_PSK_ID_LEN>, PskKey)>, StoreError> {
    let mut buf = [0u8; RECORD_LEN];
    // The record holds a key: wiped on every path, a corrupt one's too.
    let mut parse = || {
        let Some(bytes) = storage.read(psk_key(n), &mut buf)? else { return Ok(None) };
        let mut r = Reader::new(bytes);
        let id = OwnedBytes::from_slice(r.read_opaque()?).map_err(|_| StoreError::Corrupt)?;
        let secret = PskKey::from_slice(r.read_opaque()?)?;
        r.finish().map(|()| Some((id, secret))).map_err(|_| StoreError::Corrupt)
    };
    let result = parse();
    buf.zeroize();
    result
}

/// Stores (or replaces) the external PSK `id`.
pub fn store_external_psk<S: Storage>(storage: &mut S, id: &[u8], secret: &[u8]) -> Result<(), StoreError> {
    if id.len() > MAX_PSK_ID_LEN || secret.len() > MAX_PSK_LEN {
        return Err(StoreError::CapacityExceeded(Capacity::PskLen));
    }
    let mut slot = None;
    for n in 0..MAX_EXTERNAL_PSKS {
        match read_entry(storage, n)? {
            Some((stored, _)) if stored.as_slice() == id => {
                slot = Some(n);
                break;
            }
            None if slot.is_none() => slot = Some(n),
            _ => {}
        }
    }
    let n = slot.ok_or(StoreError::Storage(StorageError::Full))?;
    let mut buf = [0u8; RECORD_LEN];
    let mut w = Writer::new(&mut buf);
    w.write_opaque(id)?;
    w.write_opaque(secret)?;
    let len = w.len();
    let result = storage.write(psk_key(n), buf.get(..len).unwrap_or(&[]));
    buf.zeroize();
    result?;
    storage.committed()?;
    Ok(())
}

/// Removes the external PSK `id` (absent is fine).
pub fn remove_external_psk<S: Storage>(storage: &mut S, id: &[u8]) -> Result<(), StoreError> {
    for n in 0..MAX_EXTERNAL_PSKS {
        if matches!(read_entry(storage, n)?, Some((stored, _)) if stored.as_slice() == id) {
            storage.remove(psk_key(n))?;
        }
    }
    storage.committed()?;
    Ok(())
}

/// The stored external PSKs, read into RAM (up to `M`), as a [`PskStore`].
pub struct ExternalPsks<const M: usize> {
    entries: heapless::Vec<(OwnedBytes<MAX_PSK_ID_LEN>, PskKey), M>,
}

impl<const M: usize> ExternalPsks<M> {
    /// Reads every stored external PSK.
    pub fn load<S: Storage>(storage: &mut S) -> Result<Self, StoreError> {
        let mut entries = heapless::Vec::new();
        for n in 0..MAX_EXTERNAL_PSKS {
            if let Some(e) = read_entry(storage, n)? {
                entries.push(e).map_err(|_| StoreError::CapacityExceeded(Capacity::ExternalPsks))?;
            }
        }
        Ok(Self { entries })
    }
}

impl<const M: usize> PskStore for ExternalPsks<M> {
    fn external_psk(&self, psk_id: &[u8]) -> Option<&[u8]> {
        self.entries.iter().find(|(id, _)| id.as_slice() == psk_id).map(|(_, s)| s.as_bytes())
    }

    fn resumption_psk(&self, _: &[u8], _: u64) -> Option<&[u8]> {
        None
    }
}

/// The stored external PSKs as a [`PskStore`] that reads a key only when a
/// Commit names it, keeping up to `M` of them for the one use: a Commit
/// without PSKs reads nothing, and the keys take `M` slots of RAM, not
/// [`MAX_EXTERNAL_PSKS`]. A storage error reads as an unknown PSK (the
/// operation then fails) and is kept for [`StoredPsks::error`].
pub struct StoredPsks<'s, S: Storage, const M: usize> {
    storage: RefCell<&'s mut S>,
    found: [OnceCell<(OwnedBytes<MAX_PSK_ID_LEN>, PskKey)>; M],
    error: Cell<Option<StoreError>>,
}

impl<'s, S: Storage, const M: usize> StoredPsks<'s, S, M> {
    /// The PSKs of `storage`, read on demand.
    pub fn new(storage: &'s mut S) -> Self {
        Self { storage: RefCell::new(storage), found: [const { OnceCell::new() }; M], error: Cell::new(None) }
    }

    /// The storage error a lookup met, if any.
    pub fn error(&self) -> Option<StoreError> {
        self.error.get()
    }

    fn read(&self, psk_id: &[u8]) -> Option<(OwnedBytes<MAX_PSK_ID_LEN>, PskKey)> {
        let mut storage = self.storage.try_borrow_mut().ok()?;
        for n in 0..MAX_EXTERNAL_PSKS {
            match read_entry(&mut **storage, n) {
                Ok(Some((id, secret))) if id.as_slice() == psk_id => return Some((id, secret)),
                Ok(_) => {}
                Err(e) => {
                    self.error.set(Some(e));
                    return None;
                }
            }
        }
        None
    }
}

impl<S: Storage, const M: usize> PskStore for StoredPsks<'_, S, M> {
    fn external_psk(&self, psk_id: &[u8]) -> Option<&[u8]> {
        for cell in &self.found {
            match cell.get() {
                Some((id, secret)) if id.as_slice() == psk_id => return Some(secret.as_bytes()),
                Some(_) => {}
                None => {
                    let entry = self.read(psk_id)?;
                    // `set`, not `get_or_init`: no reentrancy check (a
                    // panic path) for a cell only this loop fills.
                    let _ = cell.set(entry);
                    return cell.get().map(|(_, secret)| secret.as_bytes());
                }
            }
        }
        None
    }

    fn resumption_psk(&self, _: &[u8], _: u64) -> Option<&[u8]> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ram::RamStorage;

    /// Keys longer than the build's hash come back whole: a SHA-256-only
    /// build (`test.sh` runs this test in one) once refused every load
    /// after one 48-byte key was stored (`Corrupt`).
    #[test]
    fn keys_longer_than_the_hash_are_kept() {
        let mut storage = RamStorage::<8, 1024>::EMPTY;
        let keys: [&[u8]; 3] = [&[1; 32], &[2; 48], &[3; MAX_PSK_LEN]];
        for (n, key) in keys.iter().enumerate() {
            store_external_psk(&mut storage, &[n as u8; MAX_PSK_ID_LEN], key).unwrap();
        }
        assert!(store_external_psk(&mut storage, b"too long", &[4; MAX_PSK_LEN + 1]).is_err());
        let loaded = ExternalPsks::<4>::load(&mut storage).unwrap();
        let stored = StoredPsks::<_, 3>::new(&mut storage);
        for (n, key) in keys.iter().enumerate() {
            let id = [n as u8; MAX_PSK_ID_LEN];
            assert_eq!(loaded.external_psk(&id), Some(*key));
            assert_eq!(stored.external_psk(&id), Some(*key));
        }
        assert!(stored.error().is_none());
    }
}
