//! The injected store of KeyPackage private keys (RFC 9420 §10, §16.8): a
//! trait, and a fixed-capacity store in RAM. A KeyPackage's keys are looked up
//! by its reference when a Welcome arrives and deleted once consumed.

use crate::crypto::HashValue;
use crate::key_package::KeyPackagePrivateKeys;

/// The store is full. (Not `#[non_exhaustive]`: a [`KeyPackageStore`]
/// implemented outside this crate returns it.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyStoreFull;

impl core::fmt::Display for KeyStoreFull {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("KeyPackage key store full")
    }
}

impl core::error::Error for KeyStoreFull {}

/// Keeps the private keys of this client's KeyPackages.
pub trait KeyPackageStore {
    /// Keeps `keys` under the KeyPackage `reference` (§5.2).
    fn put(&mut self, reference: &HashValue, keys: &KeyPackagePrivateKeys) -> Result<(), KeyStoreFull>;
    /// The keys of the KeyPackage with `reference`, if kept.
    fn get(&self, reference: &HashValue) -> Option<KeyPackagePrivateKeys>;
    /// Deletes (and wipes) the keys of `reference`.
    fn remove(&mut self, reference: &HashValue);
}

/// Up to `M` KeyPackages' keys in RAM; removed entries are zeroized.
pub struct MemoryKeyPackageStore<const M: usize> {
    entries: [Option<(HashValue, KeyPackagePrivateKeys)>; M],
}

impl<const M: usize> MemoryKeyPackageStore<M> {
    /// An empty store, usable in `static` items.
    pub const EMPTY: Self = Self { entries: [const { None }; M] };

    /// Number of kept KeyPackages.
    pub fn len(&self) -> usize {
        self.entries.iter().flatten().count()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<const M: usize> Default for MemoryKeyPackageStore<M> {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl<const M: usize> KeyPackageStore for MemoryKeyPackageStore<M> {
    fn put(&mut self, reference: &HashValue, keys: &KeyPackagePrivateKeys) -> Result<(), KeyStoreFull> {
        let slot = self
            .entries
            .iter_mut()
            .find(|e| e.as_ref().is_none_or(|(r, _)| r == reference))
            .ok_or(KeyStoreFull)?;
        *slot = Some((*reference, keys.clone()));
        Ok(())
    }

    fn get(&self, reference: &HashValue) -> Option<KeyPackagePrivateKeys> {
        self.entries.iter().flatten().find(|(r, _)| r == reference).map(|(_, k)| k.clone())
    }

    fn remove(&mut self, reference: &HashValue) {
        for e in self.entries.iter_mut() {
            if e.as_ref().is_some_and(|(r, _)| r == reference) {
                // The keys zeroize on drop.
                *e = None;
            }
        }
    }
}
