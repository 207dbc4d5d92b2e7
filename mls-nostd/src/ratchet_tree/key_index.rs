//! An index of the ratchet tree's public keys, for the uniqueness checks of
//! RFC 9420 §7.3 (a new leaf's encryption and signature keys unique among the
//! members) and §12.4.2 (an UpdatePath's keys found nowhere else in the
//! tree; "Uniqueness of Ratchet Tree Key Pairs", §16.7). Without it each
//! check is a pass over every node: at 10,000 members a third of processing
//! a Commit, at 50,000 half.
//!
//! An open-addressing hash table with linear probing of `u32` entries that
//! name nodes, not keys: the keys stay in the tree's slots, and an entry's
//! bucket is recomputed from the first bytes of its node's key (the prefix
//! the slots keep). Deletion shifts the run back (no tombstones), so the
//! table never needs rebuilding while it is kept in step.
//!
//! The buckets come from key bytes a member chooses: one who grinds keys with
//! a common prefix makes its run long, which costs lookups the pass over the
//! tree they replace, never a wrong answer (every candidate's whole key is
//! compared).

use crate::tree_math::{LeafIndex, NodeIndex};

/// Bytes of a key's prefix that pick its bucket.
pub(crate) const PREFIX: usize = 4;

/// Index entries per leaf of capacity (a `u32` each; the table holds at most
/// 3 per leaf: the leaf's two keys and one parent's). Set at build time by
/// `MLS_NOSTD_KEY_INDEX` (0, or 3 to 16; default 6, half full at most): 0
/// keeps no index and each check passes over the tree, which is what a
/// firmware of a few dozen leaves wants (24 bytes a leaf saved, and a pass
/// over 64 leaves costs less than hashing).
pub const WAYS: usize = {
    let ways = crate::capacity::from_build_env(option_env!("MLS_NOSTD_KEY_INDEX"), 6);
    assert!(ways == 0 || (ways >= 3 && ways <= 16), "MLS_NOSTD_KEY_INDEX must be 0 or 3 to 16");
    ways
};

const SIGNATURE: u32 = 1 << 31;

/// What an entry names: a node's encryption key or a leaf's signature key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyRef {
    Encryption(NodeIndex),
    Signature(LeafIndex),
}

impl KeyRef {
    /// The entry: the index plus 1 (0 is an empty bucket), the top bit set
    /// for a signature key.
    fn entry(self) -> Option<u32> {
        let (i, tag) = match self {
            Self::Encryption(n) => (n.0, 0),
            Self::Signature(l) => (l.0, SIGNATURE),
        };
        i.checked_add(1).filter(|e| e & SIGNATURE == 0).map(|e| e | tag)
    }

    fn from_entry(e: u32) -> Option<Self> {
        let i = (e & !SIGNATURE).checked_sub(1)?;
        Some(if e & SIGNATURE != 0 { Self::Signature(LeafIndex(i)) } else { Self::Encryption(NodeIndex(i)) })
    }
}

/// The bucket of a key with prefix `p` in a table of `len` entries
/// (multiplicative hash, then the high half of a 64-bit product: no modulo).
fn bucket(p: [u8; PREFIX], len: usize) -> usize {
    let h = u32::from_le_bytes(p).wrapping_mul(0x9E37_79B9);
    let len = u64::try_from(len).unwrap_or(0);
    usize::try_from((u64::from(h) * len) >> 32).unwrap_or(0)
}

fn next(i: usize, len: usize) -> usize {
    if i.saturating_add(1) >= len { 0 } else { i + 1 }
}

/// Adds `r`, whose key starts with `p`; false if the table is full (or `r`
/// cannot be an entry).
pub(crate) fn insert(table: &mut [u32], r: KeyRef, p: [u8; PREFIX]) -> bool {
    let (Some(e), len) = (r.entry(), table.len()) else { return false };
    let mut i = bucket(p, len);
    for _ in 0..len {
        match table.get_mut(i) {
            Some(slot) if *slot == 0 => {
                *slot = e;
                return true;
            }
            Some(_) => i = next(i, len),
            None => return false,
        }
    }
    false
}

/// Removes `r`, whose key starts with `p`, moving later entries of its run
/// back; `prefix_of` gives the prefix of any other entry's key. False if
/// `r` is not in the table (the table no longer matches the tree).
pub(crate) fn remove(
    table: &mut [u32],
    r: KeyRef,
    p: [u8; PREFIX],
    prefix_of: impl Fn(KeyRef) -> Option<[u8; PREFIX]>,
) -> bool {
    let (Some(e), len) = (r.entry(), table.len()) else { return false };
    let mut i = bucket(p, len);
    let mut steps = 0;
    loop {
        match table.get(i) {
            Some(&x) if x == e => break,
            Some(&x) if x != 0 && steps < len => {
                i = next(i, len);
                steps += 1;
            }
            _ => return false,
        }
    }
    // An entry at `j` whose bucket `h` lies cyclically outside `(i, j]`
    // may fill the hole at `i`: lookups from `h` still pass it.
    let distance = |from: usize, to: usize| if to >= from { to - from } else { to + len - from };
    let mut j = i;
    for _ in 0..len {
        j = next(j, len);
        let Some(&x) = table.get(j) else { return false };
        if x == 0 {
            break;
        }
        let Some(h) = KeyRef::from_entry(x).and_then(&prefix_of).map(|q| bucket(q, len)) else { return false };
        if distance(h, i) < distance(h, j) {
            if let Some(hole) = table.get_mut(i) {
                *hole = x;
            }
            i = j;
        }
    }
    if let Some(hole) = table.get_mut(i) {
        *hole = 0;
    }
    true
}

/// The entries that may name a key starting with `p`: the run from its
/// bucket to the first empty one (the caller compares the keys).
pub(crate) fn candidates(table: &[u32], p: [u8; PREFIX]) -> impl Iterator<Item = KeyRef> + '_ {
    let len = table.len();
    let mut i = bucket(p, len);
    let mut left = len;
    core::iter::from_fn(move || {
        let x = *table.get(i).filter(|x| **x != 0 && left > 0)?;
        i = next(i, len);
        left -= 1;
        Some(KeyRef::from_entry(x))
    })
    .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inserts and removes keys whose prefixes collide in a small table and
    /// checks after each step that every key present is found from its
    /// bucket and no removed one is.
    #[test]
    fn runs_survive_removal() {
        let mut table = [0u32; 16];
        // Node i's key prefix: i / 3 (three keys share each prefix, so runs
        // overlap and wrap around the end).
        let prefix = |r: KeyRef| match r {
            KeyRef::Encryption(n) => Some((n.0 / 3).wrapping_mul(0x0101_0101).to_le_bytes()),
            KeyRef::Signature(_) => None,
        };
        let key = |i: u32| KeyRef::Encryption(NodeIndex(i));
        let mut present = [false; 10];
        let check = |table: &[u32], present: &[bool; 10]| {
            for (i, &on) in (0u32..).zip(present) {
                let found = candidates(table, prefix(key(i)).unwrap()).any(|r| r == key(i));
                assert_eq!(found, on, "key {i} present {on}, found {found}: {table:?}");
            }
        };
        for i in 0..10 {
            assert!(insert(&mut table, key(i), prefix(key(i)).unwrap()));
            present[i as usize] = true;
            check(&table, &present);
        }
        for i in [4u32, 0, 9, 5, 1, 3, 8, 2, 7, 6] {
            assert!(remove(&mut table, key(i), prefix(key(i)).unwrap(), prefix));
            present[i as usize] = false;
            check(&table, &present);
            assert!(!remove(&mut table, key(i), prefix(key(i)).unwrap(), prefix), "removed twice");
        }
        assert_eq!(table, [0; 16]);
    }

    /// A full table refuses one more entry instead of looping.
    #[test]
    fn full_table_refuses() {
        let mut table = [0u32; 4];
        for i in 0..4 {
            assert!(insert(&mut table, KeyRef::Signature(LeafIndex(i)), [7; PREFIX]));
        }
        assert!(!insert(&mut table, KeyRef::Signature(LeafIndex(9)), [7; PREFIX]));
        assert_eq!(candidates(&table, [7; PREFIX]).count(), 4);
    }
}
