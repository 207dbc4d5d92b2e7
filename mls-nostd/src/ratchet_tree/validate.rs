//! Validation of an imported ratchet tree (RFC 9420 §12.4.3.1, §7.3, §7.9.2).
//!
//! Cost: one signature check per leaf, the cached tree hashes, one parent
//! hash per parent and side, resolutions whose total size is O(N log N), and
//! two sorts of N keys for uniqueness: O(N log N), never quadratic.

use super::tree::{LeafSlot, TreeError, TreeSlices};
use crate::identity::{CredentialUse, IdentityProvider, MemberIdentity};
use crate::crypto::HashValue;
use crate::extensions::{Extensions, U16List, EXT_REQUIRED_CAPABILITIES};
use crate::key_package::DEFAULT_EXTENSION_TYPES;
use crate::leaf_node::{LeafNodeContext, LeafNodeSource};
use crate::tree_math::{self, LeafIndex, NodeIndex};
use crate::codec::{Decode, Reader};
use crate::executor::Executor;

/// Leaf signatures checked per executor batch when a tree is validated
/// (unless the executor verifies them all in one Ed25519 batch): a stack
/// buffer of one byte each, under every leaf's verification on a small
/// device (256 bytes was the deepest stack of a join on a Cortex-M4, issue
/// #14), and enough work per batch (some 3 ms of Ed25519, 6 ms of ECDSA
/// P-256 on a desktop core) that the executor's overhead does not show.
const SIGNATURE_BATCH: usize = 64;

/// Why a ratchet tree was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum TreeValidationError {
    /// A structural problem (see [`TreeError`]).
    Tree(TreeError),
    /// The root tree hash differs from the GroupInfo's.
    TreeHashMismatch,
    /// A leaf's signature does not verify.
    InvalidLeafSignature(LeafIndex),
    /// The application refused a leaf's credential.
    CredentialRejected(LeafIndex),
    /// A leaf lacks a capability the group requires, an extension it uses,
    /// or a credential type in use in the group.
    UnsupportedCapabilities(LeafIndex),
    /// A non-blank parent is not parent-hash valid (§7.9.2).
    ParentHashInvalid(NodeIndex),
    /// Two nodes share an encryption key.
    DuplicateEncryptionKey,
    /// Two leaves share a signature key.
    DuplicateSignatureKey,
    /// The scratch space is smaller than the tree: `needed` entries (one
    /// per leaf) are needed.
    ScratchTooSmall {
        /// Entries each scratch slice needs.
        needed: usize,
    },
}

impl core::fmt::Display for TreeValidationError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Tree(e) => write!(f, "ratchet tree: {e}"),
            Self::TreeHashMismatch => f.write_str("tree hash differs from the GroupInfo's"),
            Self::InvalidLeafSignature(l) => write!(f, "signature of leaf {} does not verify", l.0),
            Self::CredentialRejected(l) => write!(f, "credential of leaf {} rejected by the identity provider", l.0),
            Self::UnsupportedCapabilities(l) => write!(f, "leaf {} lacks a capability the group requires", l.0),
            Self::ParentHashInvalid(n) => write!(f, "parent node {} is not parent-hash valid", n.0),
            Self::DuplicateEncryptionKey => f.write_str("two nodes share an encryption key"),
            Self::DuplicateSignatureKey => f.write_str("two leaves share a signature key"),
            Self::ScratchTooSmall { needed } => write!(f, "validation scratch too small: {needed} entries needed"),
        }
    }
}

impl core::error::Error for TreeValidationError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Tree(e) => Some(e),
            _ => None,
        }
    }
}

impl From<TreeError> for TreeValidationError {
    fn from(e: TreeError) -> Self {
        Self::Tree(e)
    }
}

/// Most distinct credential types a group may use at once.
pub const MAX_CREDENTIAL_TYPES: usize = 8;

/// What a joining member checks a tree against.
#[derive(Clone, Copy)]
pub struct TreeCheck<'a> {
    /// The group's ID (context of `update`/`commit` leaf signatures).
    pub group_id: &'a [u8],
    /// The GroupInfo's tree hash, if the tree must match one.
    pub tree_hash: Option<&'a [u8]>,
    /// The group's GroupContext extensions (for `required_capabilities`).
    pub group_extensions: Extensions<'a>,
    /// The application's identity policy, asked for every leaf.
    pub identity: &'a dyn IdentityProvider,
}

impl TreeSlices<'_> {
    /// Validates the whole tree as a joining member must (§12.4.3.1).
    /// The leaf signatures are checked through `executor` (in parallel on a
    /// host: they are most of a join's work). `scratch_leaves` and
    /// `scratch_parents` each need one entry per leaf.
    pub fn validate(
        &mut self,
        check: &TreeCheck<'_>,
        executor: &dyn Executor,
        scratch_leaves: &mut [u32],
        scratch_parents: &mut [u32],
    ) -> Result<(), TreeValidationError> {
        self.validate_hash_and_leaves(check, executor)?;
        self.validate_keys_and_parents(scratch_leaves, scratch_parents)
    }

    /// [`Self::validate`]'s first half: the tree hash, then the leaves
    /// (signatures, credentials, capabilities). Its own frame: a caller
    /// that calls the halves apart keeps its scratch arrays (8 bytes a
    /// leaf) off the stack under the signatures (issue #14).
    #[inline(never)]
    pub(crate) fn validate_hash_and_leaves(
        &mut self,
        check: &TreeCheck<'_>,
        executor: &dyn Executor,
    ) -> Result<(), TreeValidationError> {
        if let Some(expected) = check.tree_hash {
            self.check_tree_hash(expected)?;
        }
        self.validate_leaves(check, executor)
    }

    /// Fails unless the tree hash is `expected`. Its own frame, not under
    /// the leaves' signatures.
    #[inline(never)]
    fn check_tree_hash(&mut self, expected: &[u8]) -> Result<(), TreeValidationError> {
        match self.root_tree_hash()?.ct_eq_bytes(expected) {
            true => Ok(()),
            false => Err(TreeValidationError::TreeHashMismatch),
        }
    }

    /// [`Self::validate`]'s second half: keys unique, parent hashes.
    pub(crate) fn validate_keys_and_parents(
        &mut self,
        scratch_leaves: &mut [u32],
        scratch_parents: &mut [u32],
    ) -> Result<(), TreeValidationError> {
        self.check_unique_keys(scratch_leaves, scratch_parents)?;
        self.validate_parent_hashes()
    }

    /// True if leaf `l` is blank or its signature verifies (§7.3; a leaf of
    /// a KeyPackage is signed without context).
    fn leaf_signature_verifies(&self, l: LeafIndex, group_id: &[u8]) -> bool {
        let Some(leaf) = self.leaf_node(l) else { return true };
        let context = match leaf.fields.source {
            LeafNodeSource::KeyPackage(_) => None,
            _ => Some(LeafNodeContext { group_id, leaf_index: l.0 }),
        };
        leaf.verify_signature(self.suite(), context).is_ok()
    }

    /// True if `executor` verified every leaf's signature in one batch
    /// ([`Executor::verify_ed25519_batch`]: Ed25519 suites, an executor that
    /// batches, no crypto engine, which would not see them). False if it
    /// cannot or one failed: the caller checks each leaf and names it.
    fn leaf_signatures_batched(&self, group_id: &[u8], executor: &dyn Executor) -> bool {
        #[cfg(all(feature = "_ed25519", not(feature = "engine")))]
        if matches!(self.suite().signature_scheme(), crate::crypto::signature::Scheme::Ed25519) {
            use core::sync::atomic::{AtomicBool, Ordering::Relaxed};
            let withheld = AtomicBool::new(false);
            let n = usize::try_from(self.n_leaves()).unwrap_or(0);
            let all = executor.verify_ed25519_batch(n, &|range, sink| {
                for i in range {
                    let l = LeafIndex(u32::try_from(i).unwrap_or(u32::MAX));
                    let Some(leaf) = self.leaf_node(l) else { continue };
                    let context = match leaf.fields.source {
                        LeafNodeSource::KeyPackage(_) => None,
                        _ => Some(LeafNodeContext { group_id, leaf_index: l.0 }),
                    };
                    let handed = leaf.with_signed_content(context, |message| {
                        crate::crypto::signature::ed25519::hand_to_batch(leaf.fields.signature_key, leaf.signature, message, sink)
                    });
                    if handed != Ok(true) {
                        withheld.store(true, Relaxed);
                    }
                }
            });
            return all == Some(true) && !withheld.load(Relaxed);
        }
        let _ = (group_id, executor);
        false
    }

    /// Leaf checks of §7.3 that do not depend on how the leaf arrived.
    #[inline(never)]
    fn validate_leaves(&self, check: &TreeCheck<'_>, executor: &dyn Executor) -> Result<(), TreeValidationError> {
        let required = check.group_extensions.find(EXT_REQUIRED_CAPABILITIES).map(parse_required).transpose()?;
        // Credential types in use, for the "supported by all" rule.
        let mut in_use = [0u16; MAX_CREDENTIAL_TYPES];
        let mut n_in_use = 0usize;
        for i in 0..self.n_leaves() {
            let Some(leaf) = self.leaf_node(LeafIndex(i)) else { continue };
            let t = leaf.fields.credential.credential_type();
            if !in_use.get(..n_in_use).unwrap_or(&[]).contains(&t) {
                *in_use.get_mut(n_in_use).ok_or(TreeValidationError::UnsupportedCapabilities(LeafIndex(i)))? = t;
                n_in_use += 1;
            }
        }
        let in_use = in_use.get(..n_in_use).unwrap_or(&[]);
        // Signatures first, a batch at a time through the executor: byte `j`
        // of `verified` says whether leaf `batch + j` (if any) verifies.
        // (Unless the executor verified them all in one batch.)
        let batched = self.leaf_signatures_batched(check.group_id, executor);
        let mut verified = [0u8; SIGNATURE_BATCH];
        let mut batch = 0u32;
        for i in 0..self.n_leaves() {
            let l = LeafIndex(i);
            let offset = i.wrapping_sub(batch) as usize;
            if !batched && (i == 0 || offset >= SIGNATURE_BATCH) {
                batch = i;
                let len = SIGNATURE_BATCH.min(usize::try_from(self.n_leaves().saturating_sub(i)).unwrap_or(SIGNATURE_BATCH));
                let out = verified.get_mut(..len).unwrap_or(&mut []);
                executor.for_each_chunk(out, 1, &|j, ok| {
                    let l = LeafIndex(batch.saturating_add(u32::try_from(j).unwrap_or(u32::MAX)));
                    if let Some(b) = ok.first_mut() {
                        *b = u8::from(self.leaf_signature_verifies(l, check.group_id));
                    }
                });
            }
            let Some(leaf) = self.leaf_node(l) else { continue };
            let f = &leaf.fields;
            if !batched && verified.get(i.wrapping_sub(batch) as usize) != Some(&1) {
                return Err(TreeValidationError::InvalidLeafSignature(l));
            }
            let member = MemberIdentity { credential: f.credential, signature_key: f.signature_key };
            if !check.identity.validate(check.group_id, CredentialUse::TreeMember(l), &member) {
                return Err(TreeValidationError::CredentialRejected(l));
            }
            let caps = &f.capabilities;
            let unsupported = TreeValidationError::UnsupportedCapabilities(l);
            if !in_use.iter().all(|t| caps.credentials.contains(*t)) {
                return Err(unsupported);
            }
            if f.extensions.iter().any(|e| {
                !DEFAULT_EXTENSION_TYPES.contains(&e.extension_type) && !caps.extensions.contains(e.extension_type)
            }) {
                return Err(unsupported);
            }
            if let Some((exts, props, creds)) = required {
                let ok = exts.iter().all(|t| DEFAULT_EXTENSION_TYPES.contains(&t) || caps.extensions.contains(t))
                    && props.iter().all(|t| (1..=7).contains(&t) || caps.proposals.contains(t))
                    && creds.iter().all(|t| caps.credentials.contains(t));
                if !ok {
                    return Err(unsupported);
                }
            }
        }
        Ok(())
    }

    /// The `parent_hash` a node carries: a parent's field, or a `commit`
    /// leaf's; `None` for other leaves and blanks.
    fn carried_parent_hash(&self, n: NodeIndex) -> Option<HashValue> {
        match n.leaf() {
            Some(l) => match self.leaf_node(l)?.fields.source {
                LeafNodeSource::Commit { parent_hash } => HashValue::from_slice(parent_hash).ok(),
                _ => None,
            },
            None => HashValue::from_slice(self.parent(n).filter(|s| s.present)?.parent_hash()).ok(),
        }
    }

    /// §7.9.2, top down: each non-blank parent must have exactly one
    /// descendant D, on one side C, with D's parent hash equal to the parent
    /// hash of P with copath child S, and P's unmerged leaves under C equal to
    /// the resolution of C without D.
    fn validate_parent_hashes(&mut self) -> Result<(), TreeValidationError> {
        let width = tree_math::node_width(self.n_leaves()).unwrap_or(0);
        for x in (1..width).step_by(2) {
            let p = NodeIndex(x);
            if self.is_blank(p) {
                continue;
            }
            let (Some(left), Some(right)) = (tree_math::left(p), tree_math::right(p)) else {
                return Err(TreeValidationError::ParentHashInvalid(p));
            };
            let mut valid_links = 0u32;
            for (c, s) in [(left, right), (right, left)] {
                let expected = self.parent_hash(p, s)?;
                let mut res_len = 0u32;
                let mut matches = 0u32;
                let mut stray = false;
                let this = &*self;
                this.for_each_in_resolution(c, &|_| false, &mut |d| {
                    res_len += 1;
                    let unmerged_here = d.leaf().is_some_and(|l| this.is_unmerged_at(l, p));
                    if unmerged_here {
                        return;
                    }
                    match this.carried_parent_hash(d) {
                        Some(h) if h == expected => matches += 1,
                        _ => stray = true,
                    }
                });
                let unmerged_under_c = this.unmerged_leaves(p).filter(|l| l.node().is_some_and(|n| is_under(n, c))).count();
                if matches == 1 && !stray && res_len.checked_sub(1) == u32::try_from(unmerged_under_c).ok() {
                    valid_links += 1;
                }
            }
            if valid_links != 1 {
                return Err(TreeValidationError::ParentHashInvalid(p));
            }
        }
        Ok(())
    }

    /// Every node's encryption key and every leaf's signature key is unique.
    fn check_unique_keys(&self, a: &mut [u32], b: &mut [u32]) -> Result<(), TreeValidationError> {
        let n = usize::try_from(self.n_leaves()).map_err(|_| TreeValidationError::ScratchTooSmall { needed: usize::MAX })?;
        let a = a.get_mut(..n).ok_or(TreeValidationError::ScratchTooSmall { needed: n })?;
        let b = b.get_mut(..n).ok_or(TreeValidationError::ScratchTooSmall { needed: n })?;
        let mut na = 0usize;
        for i in 0..self.n_leaves() {
            if !self.is_blank(NodeIndex(i.saturating_mul(2)))
                && let Some(slot) = a.get_mut(na)
            {
                *slot = i;
                na += 1;
            }
        }
        let leaves = a.get_mut(..na).unwrap_or(&mut []);
        let leaf_key = |i: &u32| self.encryption_key(NodeIndex(i.saturating_mul(2)));
        let parent_key = |x: &u32| self.encryption_key(NodeIndex(*x));
        let dup_enc = TreeValidationError::DuplicateEncryptionKey;
        // The leaves by encryption key, their slots' key prefixes in `b`.
        if self.leaves_sorted_have_twice(leaves, b, |s| s.encryption_prefix, &leaf_key)? {
            return Err(dup_enc);
        }
        let mut nb = 0usize;
        let width = tree_math::node_width(self.n_leaves()).unwrap_or(0);
        for x in (1..width).step_by(2) {
            if !self.is_blank(NodeIndex(x))
                && let Some(slot) = b.get_mut(nb)
            {
                *slot = x;
                nb += 1;
            }
        }
        let parents = b.get_mut(..nb).unwrap_or(&mut []);
        heap_sort_by_key(parents, parent_key);
        if parents.windows(2).any(|w| w.first().map(parent_key) == w.get(1).map(parent_key)) {
            return Err(dup_enc);
        }
        // Merge the two sorted lists to find a key shared by a leaf and a parent.
        let (mut i, mut j) = (0usize, 0usize);
        while let (Some(x), Some(y)) = (leaves.get(i), parents.get(j)) {
            match leaf_key(x).cmp(&parent_key(y)) {
                core::cmp::Ordering::Less => i += 1,
                core::cmp::Ordering::Greater => j += 1,
                core::cmp::Ordering::Equal => return Err(dup_enc),
            }
        }
        let sig_key = |i: &u32| self.signature_key(LeafIndex(*i));
        if self.leaves_sorted_have_twice(leaves, b, |s| s.signature_prefix, &sig_key)? {
            return Err(TreeValidationError::DuplicateSignatureKey);
        }
        Ok(())
    }

    /// Sorts `leaves` by `key` (with `prefix` of each leaf's slot in
    /// `scratch` to settle most comparisons) and tells whether two have
    /// one key.
    fn leaves_sorted_have_twice<'k>(
        &self,
        leaves: &mut [u32],
        scratch: &mut [u32],
        prefix: fn(&LeafSlot) -> [u8; 4],
        key: &dyn Fn(&u32) -> Option<&'k [u8]>,
    ) -> Result<bool, TreeValidationError> {
        let n = leaves.len();
        let prefixes = scratch.get_mut(..n).ok_or(TreeValidationError::ScratchTooSmall { needed: n })?;
        for (p, i) in prefixes.iter_mut().zip(leaves.iter()) {
            *p = self.leaf(LeafIndex(*i)).map_or(0, |s| u32::from_be_bytes(prefix(s)));
        }
        heap_sort_by_prefix(leaves, prefixes, key);
        // Equal keys have equal prefixes: only those are read.
        Ok((1..n).any(|j| prefixes.get(j - 1) == prefixes.get(j) && leaves.get(j - 1).map(key) == leaves.get(j).map(key)))
    }
}

/// Sorts `v` by `key` in place (heapsort: O(n log n), no allocation).
///
/// Instead of `sort_unstable_by_key`: the standard library's sort is
/// compiled out of line with a panic path (`panic_on_ord_violation`) and
/// costs about 3.5 KiB of flash per key type; this one has no panic path.
/// Which of equal elements comes first does not matter to the callers.
pub(crate) fn heap_sort_by_key<K: Ord>(v: &mut [u32], key: impl Fn(&u32) -> K) {
    let n = v.len();
    let k = |v: &[u32], i: usize| v.get(i).map(&key);
    heap_sort(v, n, |v, i, j| k(v, i) < k(v, j), swap_in);
}

/// Swaps `v[i]` and `v[j]` (nothing if either is out of range: no panic path).
fn swap_in(v: &mut [u32], i: usize, j: usize) {
    if let (Some(&a), Some(&b)) = (v.get(i), v.get(j)) {
        if let Some(x) = v.get_mut(i) {
            *x = b;
        }
        if let Some(y) = v.get_mut(j) {
            *y = a;
        }
    }
}

/// Sorts the pairs `(index[i], prefix[i])` (the first `index.len()`) by
/// `prefix`, then by `key` of the index where prefixes tie: the prefixes
/// (a key's first bytes, kept in its leaf slot) settle almost every
/// comparison without reading the keys from the arena, which a heapsort
/// reads in no useful order (a join of 50,000: 6 million key reads).
/// `key` is `dyn` (it is called only on ties): one copy of the sort in
/// flash for the encryption and the signature keys.
pub(crate) fn heap_sort_by_prefix<K: Ord>(index: &mut [u32], prefix: &mut [u32], key: &dyn Fn(&u32) -> K) {
    let n = index.len().min(prefix.len());
    let mut pairs = (index, prefix);
    let less = |(v, p): &(&mut [u32], &mut [u32]), i: usize, j: usize| match p.get(i).cmp(&p.get(j)) {
        core::cmp::Ordering::Equal => v.get(i).map(key) < v.get(j).map(key),
        order => order.is_lt(),
    };
    let swap = |(v, p): &mut (&mut [u32], &mut [u32]), i: usize, j: usize| {
        swap_in(v, i, j);
        swap_in(p, i, j);
    };
    heap_sort(&mut pairs, n, less, swap);
}

/// Heapsort of the `n` positions of `s` through `less` and `swap`.
fn heap_sort<S: ?Sized>(s: &mut S, n: usize, less: impl Fn(&S, usize, usize) -> bool, swap: impl Fn(&mut S, usize, usize)) {
    // Moves s[root] down the max-heap s[..end].
    let sift_down = |s: &mut S, mut root: usize, end: usize| {
        while let Some(left) = root.checked_mul(2).and_then(|x| x.checked_add(1)).filter(|&c| c < end) {
            let right = left + 1;
            let child = if right < end && less(s, left, right) { right } else { left };
            if !less(s, root, child) {
                break;
            }
            swap(s, root, child);
            root = child;
        }
    };
    for root in (0..n / 2).rev() {
        sift_down(s, root, n);
    }
    for end in (1..n).rev() {
        swap(s, 0, end);
        sift_down(s, 0, end);
    }
}

/// True if node `n` is in the subtree of `c`.
fn is_under(n: NodeIndex, c: NodeIndex) -> bool {
    let k = tree_math::level(c);
    let span = 1u32.checked_shl(k).unwrap_or(u32::MAX);
    let first = c.0.saturating_sub(span.saturating_sub(1));
    let last = c.0.saturating_add(span.saturating_sub(1));
    n.0 >= first && n.0 <= last
}

/// `RequiredCapabilities` (§11.1): extension, proposal and credential types.
fn parse_required(data: &[u8]) -> Result<(U16List<'_>, U16List<'_>, U16List<'_>), TreeValidationError> {
    let mut r = Reader::new(data);
    let parsed = (|| {
        let e = U16List::decode(&mut r)?;
        let p = U16List::decode(&mut r)?;
        let c = U16List::decode(&mut r)?;
        r.finish()?;
        Ok((e, p, c))
    })();
    parsed.map_err(|e| TreeValidationError::Tree(TreeError::Codec(e)))
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::{heap_sort_by_key, heap_sort_by_prefix};
    use std::vec::Vec;

    /// Pairs sorted by prefix, then by key where prefixes tie (many ties:
    /// prefixes of 0 to 3), as the standard sort orders them; each index
    /// keeps its prefix.
    #[test]
    fn prefix_heap_sort_sorts_pairs_like_the_standard_sort() {
        let key = |e: &u32| e.wrapping_mul(2_654_435_761);
        let mut sorted = 0;
        for n in [0usize, 1, 2, 5, 64, 257] {
            let mut index: Vec<u32> = (0..n as u32).map(|i| i.wrapping_mul(40_503) % 1000).collect();
            let mut prefix: Vec<u32> = index.iter().map(|i| i % 4).collect();
            let mut expected: Vec<(u32, u32)> = prefix.iter().copied().zip(index.iter().map(key)).collect();
            expected.sort_unstable();
            heap_sort_by_prefix(&mut index, &mut prefix, &key);
            let got: Vec<(u32, u32)> = prefix.iter().copied().zip(index.iter().map(key)).collect();
            assert_eq!(got, expected, "n = {n}");
            assert!(index.iter().zip(&prefix).all(|(i, p)| i % 4 == *p), "n = {n}: pairs kept together");
            sorted += 1;
        }
        assert_eq!(sorted, 6);
    }

    #[test]
    fn heap_sort_sorts_like_the_standard_sort() {
        let key = |e: &u32| e.wrapping_mul(2_654_435_761);
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for n in [0usize, 1, 2, 3, 7, 8, 31, 64, 100, 257] {
            for modulus in [3u32, 1000, u32::MAX] {
                let mut v = [0u32; 257];
                for e in v.iter_mut().take(n) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    *e = (x as u32) % modulus;
                }
                let mut expected = v;
                expected[..n].sort_unstable_by_key(key);
                heap_sort_by_key(&mut v[..n], key);
                for i in 0..n {
                    assert_eq!(key(&v[i]), key(&expected[i]), "n = {n}, i = {i}");
                }
                // Same elements: a permutation.
                let mut a = v;
                let mut b = expected;
                a[..n].sort_unstable();
                b[..n].sort_unstable();
                assert_eq!(a[..n], b[..n]);
            }
        }
    }
}
