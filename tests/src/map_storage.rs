//! A `Storage` in a `BTreeMap` that tests can inspect, copy and damage
//! record by record.

use mls_nostd::store::{RecordKey, Storage, StorageError};
use std::collections::BTreeMap;

/// Records by key.
#[derive(Default, Clone, Debug)]
pub struct MapStorage(pub BTreeMap<RecordKey, Vec<u8>>);

impl Storage for MapStorage {
    fn read<'b>(&mut self, key: RecordKey, buf: &'b mut [u8]) -> Result<Option<&'b [u8]>, StorageError> {
        match self.0.get(&key) {
            None => Ok(None),
            Some(v) => {
                let out = buf.get_mut(..v.len()).ok_or(StorageError::TooLarge)?;
                out.copy_from_slice(v);
                Ok(Some(out))
            }
        }
    }

    fn write(&mut self, key: RecordKey, value: &[u8]) -> Result<(), StorageError> {
        self.0.insert(key, value.to_vec());
        Ok(())
    }

    fn remove(&mut self, key: RecordKey) -> Result<(), StorageError> {
        self.0.remove(&key);
        Ok(())
    }
}
