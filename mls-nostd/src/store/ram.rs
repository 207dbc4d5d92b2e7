//! A [`Storage`] in RAM: up to `RECORDS` records in `BYTES` bytes. Removed
//! and replaced records are zeroed at once, so no deleted secret stays in it.

use super::{RecordKey, Storage, StorageError};

#[derive(Clone, Copy, Debug)]
struct Entry {
    key: RecordKey,
    offset: usize,
    len: usize,
}

/// Records in a fixed arena (e.g. for tests, or RAM that survives a warm reset).
pub struct RamStorage<const RECORDS: usize, const BYTES: usize> {
    entries: [Option<Entry>; RECORDS],
    arena: [u8; BYTES],
    used: usize,
}

impl<const RECORDS: usize, const BYTES: usize> Default for RamStorage<RECORDS, BYTES> {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl<const RECORDS: usize, const BYTES: usize> RamStorage<RECORDS, BYTES> {
    /// No records; usable in `static` items.
    pub const EMPTY: Self = Self { entries: [None; RECORDS], arena: [0; BYTES], used: 0 };

    /// Number of records.
    pub fn len(&self) -> usize {
        self.entries.iter().flatten().count()
    }

    /// True when no record is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held by records.
    pub fn bytes_used(&self) -> usize {
        self.entries.iter().flatten().map(|e| e.len).sum()
    }

    /// The raw arena (to check that deleted secrets are gone).
    pub fn raw(&self) -> &[u8] {
        &self.arena
    }

    fn find(&self, key: RecordKey) -> Option<usize> {
        self.entries.iter().position(|e| e.is_some_and(|e| e.key == key))
    }

    fn wipe(&mut self, i: usize) {
        if let Some(Some(e)) = self.entries.get(i).copied()
            && let Some(bytes) = self.arena.get_mut(e.offset..e.offset.saturating_add(e.len))
        {
            bytes.fill(0);
        }
        if let Some(slot) = self.entries.get_mut(i) {
            *slot = None;
        }
    }

    /// Moves live records to the front, in offset order, and zeroes the rest.
    fn compact(&mut self) {
        let mut next = 0usize;
        loop {
            // The live record with the lowest offset not yet moved.
            let pick = self
                .entries
                .iter()
                .enumerate()
                .filter_map(|(i, e)| e.filter(|e| e.offset >= next).map(|e| (i, e)))
                .min_by_key(|(_, e)| e.offset);
            let Some((i, e)) = pick else { break };
            if e.offset != next {
                self.arena.copy_within(e.offset..e.offset.saturating_add(e.len), next);
            }
            if let Some(Some(slot)) = self.entries.get_mut(i) {
                slot.offset = next;
            }
            next = next.saturating_add(e.len);
        }
        if let Some(tail) = self.arena.get_mut(next..) {
            tail.fill(0);
        }
        self.used = next;
    }
}

/// The records hold the group's secrets: wiped when the storage goes.
impl<const RECORDS: usize, const BYTES: usize> Drop for RamStorage<RECORDS, BYTES> {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.arena);
    }
}

impl<const RECORDS: usize, const BYTES: usize> Storage for RamStorage<RECORDS, BYTES> {
    fn read<'b>(&mut self, key: RecordKey, buf: &'b mut [u8]) -> Result<Option<&'b [u8]>, StorageError> {
        let Some(Some(e)) = self.find(key).and_then(|i| self.entries.get(i)).copied() else {
            return Ok(None);
        };
        let src = self.arena.get(e.offset..e.offset.saturating_add(e.len)).ok_or(StorageError::Corrupted)?;
        let dst = buf.get_mut(..e.len).ok_or(StorageError::TooLarge)?;
        dst.copy_from_slice(src);
        Ok(Some(dst))
    }

    fn write(&mut self, key: RecordKey, value: &[u8]) -> Result<(), StorageError> {
        if value.len() > BYTES {
            return Err(StorageError::TooLarge);
        }
        let old = self.find(key);
        let free_slot = old.or_else(|| self.entries.iter().position(Option::is_none)).ok_or(StorageError::Full)?;
        let live_without_old = self.bytes_used().saturating_sub(old.and_then(|i| self.entries.get(i).copied().flatten()).map_or(0, |e| e.len));
        if live_without_old.saturating_add(value.len()) > BYTES {
            return Err(StorageError::Full);
        }
        if let Some(i) = old {
            self.wipe(i);
        }
        if self.used.saturating_add(value.len()) > BYTES {
            self.compact();
        }
        let offset = self.used;
        let end = offset.checked_add(value.len()).ok_or(StorageError::Full)?;
        self.arena.get_mut(offset..end).ok_or(StorageError::Full)?.copy_from_slice(value);
        self.used = end;
        if let Some(slot) = self.entries.get_mut(free_slot) {
            *slot = Some(Entry { key, offset, len: value.len() });
        }
        Ok(())
    }

    fn remove(&mut self, key: RecordKey) -> Result<(), StorageError> {
        if let Some(i) = self.find(key) {
            self.wipe(i);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_replace_remove_and_compact() {
        let mut s = RamStorage::<4, 16>::EMPTY;
        let mut buf = [0u8; 16];
        s.write(1, &[1; 6]).unwrap();
        s.write(2, &[2; 6]).unwrap();
        s.write(1, &[3; 8]).unwrap(); // needs compaction: 6 + 8 <= 16
        assert_eq!(s.read(1, &mut buf).unwrap(), Some(&[3u8; 8][..]));
        assert_eq!(s.read(2, &mut buf).unwrap(), Some(&[2u8; 6][..]));
        assert_eq!(s.write(3, &[4; 3]), Err(StorageError::Full));
        s.remove(2).unwrap();
        assert_eq!(s.read(2, &mut buf).unwrap(), None);
        assert!(!s.raw().contains(&2), "removed bytes are zeroed");
        assert_eq!(s.len(), 1);
    }
}
