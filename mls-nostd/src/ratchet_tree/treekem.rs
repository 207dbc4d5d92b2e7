//! TreeKEM (RFC 9420 §7.4–§7.6): creating an UpdatePath and applying one.
//!
//! The HPKE seals of an UpdatePath are independent: they go through an
//! [`Executor`] (sequential by default; `platform-std` runs them on rayon).
//! All randomness is drawn before the batch, so a seed gives the same bytes
//! whatever the executor. The seals share one `info` (the EncryptContext of
//! the provisional GroupContext), so its HPKE `info_hash` is computed once.

use super::tree::{MAX_DEPTH, TreeError, TreeSlices};
use crate::codec::{CodecError, Encode, Writer};
use crate::credential::Credential;
use crate::crypto::hpke::{self, HpkePrivateKey, HpkePublicKey, KemOutput};
use crate::crypto::labeled::{LABEL_PREFIX, VarintPrefix, derive_secret};
use crate::crypto::signature::SIGNATURE_LEN;
use crate::crypto::signer::Signer;
use crate::crypto::{AEAD_TAG_LEN, CipherSuite, CryptoError, MAX_HASH_LEN, Secret};
use crate::extensions::Extensions;
use crate::group_context::GroupContext;
use crate::leaf_node::{Capabilities, LeafNode, LeafNodeContext, LeafNodeError, LeafNodeFields, LeafNodeSource};
use super::update_path::{UpdatePath, UpdatePathNode};
use crate::tree_math::{self, LeafIndex, NodeIndex};
use rand_core::CryptoRng;

pub use crate::executor::{Executor, Sequential};

const LABEL: &[u8] = b"UpdatePathNode";

/// Why TreeKEM failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum TreeKemError {
    /// A tree operation failed.
    Tree(TreeError),
    /// A cryptographic operation failed.
    Crypto(CryptoError),
    /// The output buffer is too small.
    Codec(CodecError),
    /// The UpdatePath has a different number of nodes than the sender's
    /// filtered direct path (§7.6).
    WrongPathLength,
    /// A node has a different number of ciphertexts than its copath
    /// resolution (§7.6).
    WrongCiphertextCount,
    /// The new leaf's source is not `commit` or its signature is invalid.
    InvalidLeafNode,
    /// The leaf's parent hash differs from the one the path implies (§7.9.2).
    ParentHashMismatch,
    /// We hold no private key for the resolution our path secret was sent to.
    NoDecryptionKey,
    /// The path secret did not decrypt.
    DecryptionFailed,
    /// A public key derived from a path secret differs from the one sent.
    PublicKeyMismatch,
    /// The sender is blank, outside the tree, or ourselves.
    InvalidSender,
}

impl core::fmt::Display for TreeKemError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Tree(e) => write!(f, "ratchet tree: {e}"),
            Self::Crypto(e) => write!(f, "crypto: {e}"),
            Self::Codec(e) => write!(f, "encoding: {e}"),
            Self::WrongPathLength => f.write_str("UpdatePath length differs from the filtered direct path"),
            Self::WrongCiphertextCount => f.write_str("an UpdatePath node's ciphertext count differs from its copath resolution"),
            Self::InvalidLeafNode => f.write_str("UpdatePath leaf is not a commit leaf or its signature is invalid"),
            Self::ParentHashMismatch => f.write_str("UpdatePath leaf's parent hash differs from the path's"),
            Self::NoDecryptionKey => f.write_str("no private key for the resolution our path secret was sent to"),
            Self::DecryptionFailed => f.write_str("path secret does not decrypt"),
            Self::PublicKeyMismatch => f.write_str("a key derived from the path secret differs from the one sent"),
            Self::InvalidSender => f.write_str("sender is blank, outside the tree, or ourselves"),
        }
    }
}

impl core::error::Error for TreeKemError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Tree(e) => Some(e),
            Self::Crypto(e) => Some(e),
            Self::Codec(e) => Some(e),
            _ => None,
        }
    }
}

impl From<TreeError> for TreeKemError {
    fn from(e: TreeError) -> Self {
        Self::Tree(e)
    }
}

impl From<CryptoError> for TreeKemError {
    fn from(e: CryptoError) -> Self {
        Self::Crypto(e)
    }
}

impl From<CodecError> for TreeKemError {
    fn from(e: CodecError) -> Self {
        Self::Codec(e)
    }
}

/// A member's private keys in the tree: its leaf's and those of the parents
/// on its direct path that it knows (tree invariant, §7.3 of RFC 9420).
#[derive(Clone, Debug)]
pub struct TreeKemPrivate {
    /// The member's leaf.
    pub leaf: LeafIndex,
    /// The leaf's HPKE private key.
    pub leaf_key: HpkePrivateKey,
    /// Private keys of direct-path parents, indexed by level - 1.
    path: [Option<(NodeIndex, HpkePrivateKey)>; MAX_DEPTH],
}

impl TreeKemPrivate {
    /// No keys (a group not yet joined).
    pub const EMPTY: Self = Self { leaf: LeafIndex(0), leaf_key: HpkePrivateKey::ZERO, path: [const { None }; MAX_DEPTH] };

    /// A member who knows only its leaf key.
    pub fn new(leaf: LeafIndex, leaf_key: HpkePrivateKey) -> Self {
        Self { leaf, leaf_key, path: [const { None }; MAX_DEPTH] }
    }

    /// Makes `self` a member who knows only its leaf key, in place
    /// ([`Self::new`] without the value on the stack).
    pub(crate) fn reset(&mut self, leaf: LeafIndex, leaf_key: HpkePrivateKey) {
        self.leaf = leaf;
        self.leaf_key = leaf_key;
        self.path.iter_mut().for_each(|slot| *slot = None);
    }

    /// Makes `self` a copy of `other` in place: `clone` would build the
    /// whole value (2.5 KB) on the stack first.
    pub(crate) fn copy_from(&mut self, other: &Self) {
        self.leaf = other.leaf;
        self.leaf_key.clone_from(&other.leaf_key);
        for (d, s) in self.path.iter_mut().zip(other.path.iter()) {
            d.clone_from(s);
        }
    }

    /// Sets the private key of ancestor `node` from its path secret (§7.4).
    pub fn set_path_secret(&mut self, suite: CipherSuite, node: NodeIndex, path_secret: &[u8]) -> Result<HpkePublicKey, CryptoError> {
        let (sk, pk) = node_key_pair(suite, path_secret)?;
        self.set_key(node, sk);
        Ok(pk)
    }

    /// Our path keys, for persistence.
    pub(crate) fn path_keys(&self) -> impl Iterator<Item = &(NodeIndex, HpkePrivateKey)> + '_ {
        self.path.iter().flatten()
    }

    pub(crate) fn set_key(&mut self, node: NodeIndex, sk: HpkePrivateKey) {
        let level = tree_math::level(node) as usize;
        if let Some(slot) = level.checked_sub(1).and_then(|i| self.path.get_mut(i)) {
            *slot = Some((node, sk));
        }
    }

    /// The private key of node `n`, if known.
    pub fn key(&self, n: NodeIndex) -> Option<&HpkePrivateKey> {
        if n.leaf() == Some(self.leaf) {
            return Some(&self.leaf_key);
        }
        let level = tree_math::level(n) as usize;
        match level.checked_sub(1).and_then(|i| self.path.get(i)) {
            Some(Some((node, sk))) if *node == n => Some(sk),
            _ => None,
        }
    }

    /// Forgets keys of nodes that are now blank or hold another public key
    /// (after proposals blanked or replaced them; §7.5 deletion).
    pub fn prune(&mut self, tree: &TreeSlices<'_>) {
        let suite = tree.suite();
        for slot in self.path.iter_mut() {
            let stale = match slot {
                Some((node, sk)) => tree.encryption_key(*node).is_none_or(|pk| sk.public_key(suite).as_bytes() != pk),
                None => false,
            };
            if stale {
                *slot = None;
            }
        }
    }

    fn forget_direct_path_of(&mut self, leaf: LeafIndex, n_leaves: u32) {
        let Some(mut cur) = leaf.node() else { return };
        while let Some(p) = tree_math::parent(cur, n_leaves) {
            let level = tree_math::level(p) as usize;
            if let Some(slot) = level.checked_sub(1).and_then(|i| self.path.get_mut(i))
                && slot.as_ref().is_some_and(|(n, _)| *n == p)
            {
                *slot = None;
            }
            cur = p;
        }
    }
}

/// `node_secret = DeriveSecret(path_secret, "node")`, then `DeriveKeyPair`.
fn node_key_pair(suite: CipherSuite, path_secret: &[u8]) -> Result<(HpkePrivateKey, HpkePublicKey), CryptoError> {
    let node_secret = derive_secret(suite, path_secret, b"node")?;
    hpke::derive_key_pair(suite, node_secret.as_bytes())
}

/// What the committer's new leaf carries besides keys and parent hash.
#[derive(Clone, Copy, Debug)]
pub struct LeafTemplate<'a> {
    /// The signature public key: the group signer's (a Commit or Update of
    /// another is refused, `CreateCommitError::SignatureKeyNotOurs`; an
    /// external join, `JoinError::SignatureKeyNotOurs`).
    pub signature_key: &'a [u8],
    /// The credential.
    pub credential: Credential<'a>,
    /// Capabilities.
    pub capabilities: Capabilities<'a>,
    /// Leaf extensions.
    pub extensions: Extensions<'a>,
}

/// The outcome of creating or applying an UpdatePath.
pub struct PathOutcome {
    /// `commit_secret` (§8): the path secret one past the root's.
    pub commit_secret: Secret,
    /// The member's private tree state after the path.
    pub private: TreeKemPrivate,
    /// Bytes of the encoded UpdatePath (creation only).
    pub update_path_len: usize,
    /// The path secret the receiver decrypted (processing only).
    pub decrypted_path_secret: Option<Secret>,
    /// The path secret of each node of the filtered direct path, leaf
    /// upwards (creation only): a new member gets the one of its lowest common
    /// ancestor with the committer (§12.4.3.1).
    pub path_secrets: [Option<(NodeIndex, Secret)>; MAX_DEPTH],
}

/// The path secret of each node of a created UpdatePath's filtered direct
/// path, leaf upwards ([`PathOutcome::path_secrets`]).
pub type PathSecrets = [Option<(NodeIndex, Secret)>; MAX_DEPTH];

impl PathOutcome {
    /// The path secret of `node`, if it is on the created path.
    pub fn path_secret(&self, node: NodeIndex) -> Option<&Secret> {
        self.path_secrets.iter().flatten().find(|(n, _)| *n == node).map(|(_, s)| s)
    }
}

/// Bytes per seal job: recipient key (`Npk`), ephemeral ikm and path secret
/// (`Nh` each) in; the encoded HPKECiphertext out (shorter, for every suite).
const fn job_len(suite: CipherSuite) -> usize {
    suite.kem().public_len() + 2 * suite.hash_len()
}

/// Bytes of an encoded HPKECiphertext of a path secret:
/// `kem_output<V> || ciphertext<V>` (`Nh` + tag).
const fn entry_len(suite: CipherSuite) -> usize {
    let npk = suite.kem().public_len();
    let ct = suite.hash_len() + AEAD_TAG_LEN;
    varint_size(npk) + npk + varint_size(ct) + ct
}

/// Bytes of the MLS varint length prefix of any `n` (§2.1.2; a length past
/// the varint's range fails when it is written).
const fn varint_size(n: usize) -> usize {
    match crate::codec::varint_size(n) {
        Some(size) => size,
        None => 4,
    }
}

/// Writes `nodes<V>` of an UpdatePath at `out[start..]`: for each node of
/// `fdp` its key from `tree` and the `counts[i]` ciphertexts sealed in the
/// jobs of `job` bytes from `jobs_start` (each ciphertext the first `entry`
/// bytes of its job). Every job lies at or after its ciphertext's place,
/// so the ciphertexts move down over the jobs already read. Returns where
/// the path ends.
#[allow(clippy::too_many_arguments)]
fn write_path_nodes(
    tree: &TreeSlices<'_>,
    fdp: &[(NodeIndex, NodeIndex)],
    counts: &[usize],
    nodes_len: usize,
    jobs_start: usize,
    job: usize,
    entry: usize,
    start: usize,
    out: &mut [u8],
) -> Result<usize, TreeKemError> {
    // Writes at `out[at..]` with `f`; returns where it stopped.
    let write = |out: &mut [u8], at: usize, f: &dyn Fn(&mut Writer<'_>) -> Result<(), CodecError>| {
        let mut w = Writer::new(out.get_mut(at..).ok_or(CodecError::Truncated)?);
        f(&mut w)?;
        at.checked_add(w.len()).ok_or(CodecError::Truncated)
    };
    let mut at = write(out, start, &|w| w.write_varint(nodes_len))?;
    let mut k = 0usize;
    for ((node, _), c) in fdp.iter().zip(counts) {
        // UpdatePathNode: encryption_key<V>, then the ciphertexts' prefix.
        let key = tree.encryption_key(*node).ok_or(CodecError::InvalidValue)?;
        at = write(out, at, &|w| {
            w.write_opaque(key)?;
            w.write_varint(c.saturating_mul(entry))
        })?;
        for _ in 0..*c {
            let from = k.checked_mul(job).and_then(|o| o.checked_add(jobs_start)).ok_or(CodecError::Truncated)?;
            let end = at.checked_add(entry).ok_or(CodecError::Truncated)?;
            if from < at || from.checked_add(entry).is_none_or(|e| e > out.len()) || end > out.len() {
                return Err(CodecError::Truncated.into());
            }
            let (low, high) = out.split_at_mut_checked(from).ok_or(CodecError::Truncated)?;
            match (low.get_mut(at..end), high.get(..entry)) {
                // Already in its place.
                _ if at == from => {}
                // Apart (the usual case): one copy.
                (Some(to), Some(ciphertext)) => to.copy_from_slice(ciphertext),
                // Overlapping with `at < from`: forward, byte by byte.
                _ => {
                    for i in 0..entry {
                        if let Some(b) = out.get(from + i).copied()
                            && let Some(d) = out.get_mut(at + i)
                        {
                            *d = b;
                        }
                    }
                }
            }
            at = end;
            k += 1;
        }
    }
    Ok(at)
}

/// `EncryptContext` info hash for the path secrets of an UpdatePath.
fn path_info_hash(suite: CipherSuite, group_context: &[u8]) -> Result<Secret, CryptoError> {
    let label_len = VarintPrefix::new(LABEL_PREFIX.len() + LABEL.len())?;
    let ctx_len = VarintPrefix::new(group_context.len())?;
    hpke::info_hash(suite, &[label_len.as_bytes(), LABEL_PREFIX, LABEL, ctx_len.as_bytes(), group_context])
}

/// Encodes `template` with `tree_hash` into `buf`; returns the encoding.
fn encode_context<'b>(template: &GroupContext<'_>, tree_hash: &[u8], buf: &'b mut [u8]) -> Result<&'b [u8], CodecError> {
    GroupContext { tree_hash, ..*template }.encode_to(buf)
}

impl TreeSlices<'_> {
    /// Creates an UpdatePath for `me` (§7.5): refreshes `me`'s leaf and its
    /// filtered direct path in this tree, and writes the encoded UpdatePath
    /// into the start of `out` (whose tail is used as seal scratch space).
    /// `context` is the provisional GroupContext whose tree hash is filled in
    /// after the path is merged; `gc_buf` holds its encoding. Leaves for which
    /// `excluded` is true (added by this commit) get no ciphertext.
    #[allow(clippy::too_many_arguments)]
    pub fn create_update_path(
        &mut self,
        me: &TreeKemPrivate,
        template: Option<&LeafTemplate<'_>>,
        signer: &impl Signer,
        context: &GroupContext<'_>,
        gc_buf: &mut [u8],
        excluded: &dyn Fn(LeafIndex) -> bool,
        rng: &mut impl CryptoRng,
        executor: &impl Executor,
        out: &mut [u8],
    ) -> Result<PathOutcome, TreeKemError> {
        let mut private = me.clone();
        let mut path_secrets: PathSecrets = [const { None }; MAX_DEPTH];
        let (commit_secret, update_path_len) = self.create_update_path_in_place(
            &mut private,
            template,
            signer,
            context,
            gc_buf,
            excluded,
            rng,
            executor,
            out,
            &mut path_secrets,
        )?;
        Ok(PathOutcome { commit_secret, private, update_path_len, decrypted_path_secret: None, path_secrets })
    }

    /// [`Self::create_update_path`] with the member's private keys updated
    /// in place (`private` holds them before, and after on success) and the
    /// path secrets written to `path_secrets`: nothing as large as a
    /// [`PathOutcome`] goes through the stack. Returns `commit_secret` and
    /// the length of the encoded UpdatePath. On an error `private` and
    /// `path_secrets` are partly written (and the tree changed, as always).
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    pub(crate) fn create_update_path_in_place(
        &mut self,
        private: &mut TreeKemPrivate,
        template: Option<&LeafTemplate<'_>>,
        signer: &impl Signer,
        context: &GroupContext<'_>,
        gc_buf: &mut [u8],
        excluded: &dyn Fn(LeafIndex) -> bool,
        rng: &mut impl CryptoRng,
        executor: &impl Executor,
        out: &mut [u8],
        path_secrets: &mut PathSecrets,
    ) -> Result<(Secret, usize), TreeKemError> {
        let suite = self.suite();
        let nh = suite.hash_len();
        let leaf = private.leaf;
        if self.is_blank(leaf.node().ok_or(TreeKemError::InvalidSender)?) {
            return Err(TreeKemError::InvalidSender);
        }
        let mut fdp_buf = [(NodeIndex(0), NodeIndex(0)); MAX_DEPTH];
        let n = self.filtered_direct_path(leaf, &mut fdp_buf)?;
        let fdp = fdp_buf.get(..n).ok_or(TreeKemError::WrongPathLength)?;

        // Randomness first: leaf key, first path secret, then one ephemeral
        // key per seal (drawn below, before the batch).
        let mut leaf_ikm = Secret::zero(nh)?;
        rng.fill_bytes(leaf_ikm.as_mut_bytes());
        // path_secret[0] is drawn, path_secret[i] = DeriveSecret(path_secret[i-1],
        // "path"), and the one past the root's is the commit secret (§7.4).
        let mut ps = Secret::zero(nh)?;
        rng.fill_bytes(ps.as_mut_bytes());
        path_secrets.iter_mut().for_each(|slot| *slot = None);
        for (slot, (node, _)) in path_secrets.iter_mut().zip(fdp) {
            let next = derive_secret(suite, ps.as_bytes(), b"path")?;
            *slot = Some((*node, core::mem::replace(&mut ps, next)));
        }
        let commit_secret = ps;
        let secret_of = |i: usize| -> Result<&Secret, TreeKemError> {
            match path_secrets.get(i) {
                Some(Some((_, s))) => Ok(s),
                _ => Err(TreeKemError::WrongPathLength),
            }
        };

        // Merge the new public keys, then the parent hashes (§7.9).
        private.forget_direct_path_of(leaf, self.n_leaves());
        self.blank_direct_path(leaf)?;
        for (i, (node, _)) in fdp.iter().enumerate() {
            let ps = secret_of(i)?;
            let (sk, pk) = node_key_pair(suite, ps.as_bytes())?;
            self.set_parent(*node, pk.as_bytes(), &[])?;
            private.set_key(*node, sk);
        }
        let leaf_ph = self.set_path_parent_hashes(fdp)?;

        // The new leaf, signed over the group (§7.2), at the start of `out`.
        let (leaf_sk, leaf_pk) = hpke::derive_key_pair(suite, leaf_ikm.as_bytes())?;
        private.leaf_key = leaf_sk;
        let fields = self.path_leaf_fields(leaf, template, leaf_pk.as_bytes(), leaf_ph.as_bytes())?;
        let ctx = LeafNodeContext { group_id: context.group_id, leaf_index: leaf.0 };
        let leaf_len = LeafNode::sign_into(suite, &fields, Some(ctx), signer, out)
            .map_err(|e| match e {
                LeafNodeError::Codec(c) => TreeKemError::Codec(c),
                LeafNodeError::Crypto(c) => TreeKemError::Crypto(c),
                _ => TreeKemError::InvalidLeafNode,
            })?
            .len();
        self.set_leaf(leaf, out.get(..leaf_len).ok_or(CodecError::BufferTooSmall { needed: leaf_len })?)?;

        // The provisional GroupContext with the new tree hash.
        let tree_hash = self.root_tree_hash()?;
        let gc = encode_context(context, tree_hash.as_bytes(), gc_buf)?;
        let info_hash = path_info_hash(suite, gc)?;

        // One sealing job per (path node, resolution member), sealed in place,
        // then the UpdatePath written left to right over them: the jobs start
        // where each lies at or after its HPKECiphertext's place in the path
        // (a ciphertext is shorter than its job), so the path takes no room
        // of its own beyond them.
        let entry = entry_len(suite);
        let job = job_len(suite);
        let npk = suite.kem().public_len();
        let mut res_counts = [0usize; MAX_DEPTH];
        for ((_, copath), c) in fdp.iter().zip(res_counts.iter_mut()) {
            self.for_each_in_resolution(*copath, excluded, &mut |_| *c = c.saturating_add(1));
        }
        let counts = res_counts.get(..n).ok_or(TreeKemError::WrongPathLength)?;
        // UpdatePathNode { encryption_key<V>; encrypted_path_secret<V> }.
        let node_head = |c: usize| varint_size(npk).saturating_add(npk).saturating_add(varint_size(c.saturating_mul(entry)));
        let nodes_len =
            counts.iter().fold(0usize, |acc, c| acc.saturating_add(node_head(*c)).saturating_add(c.saturating_mul(entry)));
        let mut at = leaf_len.saturating_add(varint_size(nodes_len));
        let mut jobs_start = leaf_len;
        let mut jobs_total = 0usize;
        for c in counts {
            at = at.saturating_add(node_head(*c));
            for _ in 0..*c {
                jobs_start = jobs_start.max(at.saturating_sub(jobs_total.saturating_mul(job)));
                at = at.saturating_add(entry);
                jobs_total = jobs_total.saturating_add(1);
            }
        }
        let path_end = at;
        let jobs_end = jobs_start.saturating_add(jobs_total.saturating_mul(job));
        let needed = jobs_end.max(path_end);
        if out.len() < needed {
            return Err(CodecError::BufferTooSmall { needed }.into());
        }
        let jobs = out.get_mut(jobs_start..jobs_end).ok_or(CodecError::BufferTooSmall { needed })?;
        let mut j = 0usize;
        for (i, (_, copath)) in fdp.iter().enumerate() {
            let ps = secret_of(i)?;
            if ps.len() != nh {
                return Err(TreeKemError::WrongPathLength);
            }
            let mut fill = |r: NodeIndex| {
                let Some(chunk) = jobs.get_mut(j * job..(j + 1) * job) else { return };
                let Some((pk, rest)) = chunk.split_at_mut_checked(suite.kem().public_len()) else { return };
                let Some((ikm, pt)) = rest.split_at_mut_checked(nh) else { return };
                // Keys in the tree have the suite's length (set_leaf, set_parent).
                if let Some(key) = self.encryption_key(r) {
                    pk.iter_mut().zip(key).for_each(|(d, s)| *d = *s);
                }
                rng.fill_bytes(ikm);
                // ps is nh bytes (checked above): the zip copies it whole.
                pt.iter_mut().zip(ps.as_bytes()).for_each(|(d, s)| *d = *s);
                j += 1;
            };
            self.for_each_in_resolution(*copath, excluded, &mut fill);
        }
        let failed = core::sync::atomic::AtomicBool::new(false);
        executor.for_each_chunk(jobs, job, &|_, chunk| {
            if seal_job(suite, &info_hash, chunk).is_err() {
                failed.store(true, core::sync::atomic::Ordering::Relaxed);
            }
        });
        if failed.load(core::sync::atomic::Ordering::Relaxed) {
            jobs.fill(0);
            return Err(TreeKemError::Crypto(CryptoError::InvalidSharedSecret));
        }

        // UpdatePath { leaf_node; UpdatePathNode nodes<V> }: the nodes after
        // the leaf, each ciphertext moved down from its job.
        let written = write_path_nodes(self, fdp, counts, nodes_len, jobs_start, job, entry, leaf_len, out);
        // What is left of the jobs holds ephemeral keys and path secrets.
        let end = match written {
            Ok(end) => end,
            Err(_) => leaf_len,
        };
        if let Some(rest) = out.get_mut(end..needed) {
            rest.fill(0);
        }
        let update_path_len = written?;

        Ok((commit_secret, update_path_len))
    }

    /// The fields of the new leaf of `leaf`'s UpdatePath: `template`'s, or
    /// without one the leaf's own, with a new encryption key and parent hash.
    fn path_leaf_fields<'f>(
        &'f self,
        leaf: LeafIndex,
        template: Option<&LeafTemplate<'f>>,
        encryption_key: &'f [u8],
        parent_hash: &'f [u8],
    ) -> Result<LeafNodeFields<'f>, TreeKemError> {
        // Without a template the leaf keeps its signature key, credential,
        // capabilities and extensions: only its encryption key and parent
        // hash change (§12.4.2 asks nothing more of a path's leaf).
        let (signature_key, credential, capabilities, extensions) = match template {
            Some(t) => (t.signature_key, t.credential, t.capabilities, t.extensions),
            None => {
                let own = self.leaf_node(leaf).ok_or(TreeKemError::InvalidSender)?.fields;
                (own.signature_key, own.credential, own.capabilities, own.extensions)
            }
        };
        Ok(LeafNodeFields {
            encryption_key,
            signature_key,
            credential,
            capabilities,
            source: LeafNodeSource::Commit { parent_hash },
            extensions,
        })
    }

    /// The bytes [`Self::create_update_path_in_place`] needs in `out` for
    /// `leaf`'s UpdatePath in this tree (`template` and `excluded` as
    /// there): the signed leaf, the path's nodes' keys, and a sealing job
    /// per member of each copath resolution (§7.6), over which the path's
    /// HPKECiphertexts are written. Exact but for the signature and the
    /// length prefixes, counted at their longest, so a Commit's work area
    /// follows the group, not its capacity.
    pub(crate) fn update_path_room(
        &self,
        leaf: LeafIndex,
        template: Option<&LeafTemplate<'_>>,
        excluded: &dyn Fn(LeafIndex) -> bool,
    ) -> Result<usize, TreeKemError> {
        let suite = self.suite();
        let npk = suite.kem().public_len();
        let zeros = [0u8; hpke::KEM_PUBLIC_LEN];
        let key = zeros.get(..npk).ok_or(CryptoError::InvalidLength)?;
        let parent_hash = zeros.get(..suite.hash_len()).ok_or(CryptoError::InvalidLength)?;
        let fields_len = self.path_leaf_fields(leaf, template, key, parent_hash)?.encoded_len()?;
        let leaf_len = fields_len + varint_size(SIGNATURE_LEN) + SIGNATURE_LEN;
        let mut fdp_buf = [(NodeIndex(0), NodeIndex(0)); MAX_DEPTH];
        let n = self.filtered_direct_path(leaf, &mut fdp_buf)?;
        let mut seals = 0usize;
        for (_, copath) in fdp_buf.get(..n).ok_or(TreeKemError::WrongPathLength)? {
            self.for_each_in_resolution(*copath, excluded, &mut |_| seals += 1);
        }
        // UpdatePath: the leaf, then nodes<V> of { encryption_key<V>,
        // encrypted_path_secret<V> }, prefixes at their longest (4 bytes).
        let nodes = 4 + n * (4 + npk + 4);
        // The ciphertexts are written over their jobs: a job each.
        Ok(leaf_len + nodes + seals * job_len(suite))
    }

    /// Applies an UpdatePath from `sender` (§7.5, §12.4.2): merges its keys and
    /// parent hashes into this tree, checks the new leaf, then decrypts the
    /// one ciphertext meant for `me` and derives the rest of the path. The
    /// tree is modified: apply while a stage is begun, and discard it on error.
    #[allow(clippy::too_many_arguments)]
    pub fn apply_update_path(
        &mut self,
        sender: LeafIndex,
        path: &UpdatePath<'_>,
        me: &TreeKemPrivate,
        context: &GroupContext<'_>,
        gc_buf: &mut [u8],
        excluded: &dyn Fn(LeafIndex) -> bool,
    ) -> Result<PathOutcome, TreeKemError> {
        let mut private = me.clone();
        let (commit_secret, decrypted) =
            self.apply_update_path_in_place(sender, path, &mut private, context, gc_buf, excluded, false)?;
        Ok(PathOutcome {
            commit_secret,
            private,
            update_path_len: 0,
            decrypted_path_secret: Some(decrypted),
            path_secrets: [const { None }; MAX_DEPTH],
        })
    }

    /// [`Self::apply_update_path`] with the member's private keys updated in
    /// place (`private` holds them before, and after on success; partly
    /// updated on an error). Returns `commit_secret` and the path secret
    /// decrypted. With `leaf_verified`, the caller has checked the new
    /// leaf's signature ([`verify_path_leaf`]) in a shallower frame.
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn apply_update_path_in_place(
        &mut self,
        sender: LeafIndex,
        path: &UpdatePath<'_>,
        private: &mut TreeKemPrivate,
        context: &GroupContext<'_>,
        gc_buf: &mut [u8],
        excluded: &dyn Fn(LeafIndex) -> bool,
        leaf_verified: bool,
    ) -> Result<(Secret, Secret), TreeKemError> {
        let suite = self.suite();
        let me_leaf = private.leaf;
        if sender == me_leaf || self.is_blank(sender.node().ok_or(TreeKemError::InvalidSender)?) {
            return Err(TreeKemError::InvalidSender);
        }
        let mut fdp_buf = [(NodeIndex(0), NodeIndex(0)); MAX_DEPTH];
        let n = self.filtered_direct_path(sender, &mut fdp_buf)?;
        let fdp = fdp_buf.get(..n).ok_or(TreeKemError::WrongPathLength)?;
        if path.nodes.len() != n {
            return Err(TreeKemError::WrongPathLength);
        }
        // The nodes decoded once (each decode walks its ciphertext list:
        // 10,000 of them in a sparse tree of 10,000).
        let mut nodes: heapless::Vec<UpdatePathNode<'_>, MAX_DEPTH> = heapless::Vec::new();
        for upn in path.nodes.iter() {
            nodes.push(upn).map_err(|_| TreeKemError::WrongPathLength)?;
        }
        // The first path node whose copath child holds our leaf.
        let ours = fdp
            .iter()
            .enumerate()
            .find(|(_, (_, c))| {
                let (first, count) = super::tree::leaf_span(*c);
                first <= me_leaf.0 && me_leaf.0 < first.saturating_add(count)
            })
            .map(|(i, (_, c))| (i, *c));
        // §7.6: every node has one ciphertext per member of its copath
        // child's resolution (new members excluded), not only the node we
        // decrypt (issue #13: at 7208f14 only ours was counted). In the
        // same walk, our position in our copath child's resolution.
        let mut found: Option<(usize, NodeIndex)> = None;
        for ((_, c), upn) in fdp.iter().zip(nodes.iter()) {
            let mut count = 0usize;
            let is_ours = ours.is_some_and(|(_, copath)| copath == *c);
            self.for_each_in_resolution(*c, excluded, &mut |r| {
                if is_ours && found.is_none() && private.key(r).is_some() {
                    found = Some((count, r));
                }
                count += 1;
            });
            if upn.encrypted_path_secret.len() != count {
                return Err(TreeKemError::WrongCiphertextCount);
            }
        }
        let leaf = &path.leaf_node;
        let LeafNodeSource::Commit { parent_hash } = leaf.fields.source else {
            return Err(TreeKemError::InvalidLeafNode);
        };
        if !leaf_verified {
            verify_path_leaf(suite, path, context.group_id, sender)?;
        }

        // Merge.
        private.forget_direct_path_of(sender, self.n_leaves());
        self.blank_direct_path(sender)?;
        for ((node, _), upn) in fdp.iter().zip(nodes.iter()) {
            HpkePublicKey::from_slice(upn.encryption_key).map_err(|_| TreeError::InvalidKey)?;
            self.set_parent(*node, upn.encryption_key, &[])?;
        }
        let expected_ph = self.set_path_parent_hashes(fdp)?;
        if !expected_ph.ct_eq_bytes(parent_hash) {
            return Err(TreeKemError::ParentHashMismatch);
        }
        self.set_leaf(sender, leaf.as_bytes())?;
        let tree_hash = self.root_tree_hash()?;
        let gc = encode_context(context, tree_hash.as_bytes(), gc_buf)?;

        // Our position in our copath child's resolution (new members
        // excluded), found in the count above.
        let i = ours.ok_or(TreeKemError::NoDecryptionKey)?.0;
        let (pos_in_res, holder) = found.ok_or(TreeKemError::NoDecryptionKey)?;
        let upn = nodes.get(i).ok_or(TreeKemError::WrongPathLength)?;
        let ct = upn
            .encrypted_path_secret
            .iter()
            .nth(pos_in_res)
            .ok_or(TreeKemError::WrongCiphertextCount)?;
        let sk = private
            .key(holder)
            .ok_or(TreeKemError::NoDecryptionKey)?
            .clone();
        let kem_output =
            KemOutput::from_slice(ct.kem_output).map_err(|_| TreeKemError::DecryptionFailed)?;
        let body_len = ct
            .ciphertext
            .len()
            .checked_sub(AEAD_TAG_LEN)
            .ok_or(TreeKemError::DecryptionFailed)?;
        let mut secret = Secret::zero(body_len.min(MAX_HASH_LEN))?;
        if body_len != suite.hash_len() {
            return Err(TreeKemError::DecryptionFailed);
        }
        let (body, tag) = ct.ciphertext.split_at(body_len);
        secret.as_mut_bytes().copy_from_slice(body);
        let info_hash = path_info_hash(suite, gc)?;
        hpke::open_base(suite, &sk, &kem_output, &info_hash, &[], secret.as_mut_bytes(), tag)
            .map_err(|_| TreeKemError::DecryptionFailed)?;
        let decrypted = secret.clone();

        // Derive the rest of the path and check every public key (§7.5).
        let mut ps = secret;
        for (k, ((node, _), upn)) in fdp.iter().zip(nodes.iter()).enumerate().skip(i) {
            if k > i {
                ps = derive_secret(suite, ps.as_bytes(), b"path")?;
            }
            let (sk, pk) = node_key_pair(suite, ps.as_bytes())?;
            if pk.as_bytes() != upn.encryption_key {
                return Err(TreeKemError::PublicKeyMismatch);
            }
            private.set_key(*node, sk);
        }
        let commit_secret = derive_secret(suite, ps.as_bytes(), b"path")?;
        Ok((commit_secret, decrypted))
    }
}

/// Checks an UpdatePath's new leaf from `sender`: its source is `commit`
/// and its signature verifies (§7.5; its `LeafNodeTBS` names the group and
/// the leaf, §7.2). What a member the Commit removes can check of it too.
pub(crate) fn verify_path_leaf(
    suite: CipherSuite,
    path: &UpdatePath<'_>,
    group_id: &[u8],
    sender: LeafIndex,
) -> Result<(), TreeKemError> {
    if !matches!(path.leaf_node.fields.source, LeafNodeSource::Commit { .. }) {
        return Err(TreeKemError::InvalidLeafNode);
    }
    path.leaf_node
        .verify_signature(suite, Some(LeafNodeContext { group_id, leaf_index: sender.0 }))
        .map_err(|_| TreeKemError::InvalidLeafNode)
}

/// One seal: reads `pk || ikm || path_secret` from `chunk` and writes the
/// encoded HPKECiphertext over it.
fn seal_job(suite: CipherSuite, info_hash: &Secret, chunk: &mut [u8]) -> Result<(), CryptoError> {
    let nh = suite.hash_len();
    let npk = suite.kem().public_len();
    let pk = HpkePublicKey::from_slice(chunk.get(..npk).ok_or(CryptoError::InvalidLength)?)?;
    let ikm = Secret::from_slice(chunk.get(npk..npk + nh).ok_or(CryptoError::InvalidLength)?)?;
    let pt_start = npk + nh;
    let mut pt = Secret::from_slice(chunk.get(pt_start..pt_start + nh).ok_or(CryptoError::InvalidLength)?)?;
    let sealed = hpke::seal_base(suite, &pk, info_hash, &[], pt.as_mut_bytes(), ikm.as_bytes())?;
    // The inputs (ephemeral ikm, path secret) are overwritten or wiped.
    chunk.fill(0);
    let mut w = Writer::new(chunk);
    let write = |w: &mut Writer<'_>| -> Result<(), CodecError> {
        w.write_opaque(sealed.kem_output.as_bytes())?;
        w.write_varint(nh + AEAD_TAG_LEN)?;
        w.write_bytes(pt.as_bytes())?;
        w.write_bytes(&sealed.tag)
    };
    write(&mut w).map_err(|_| CryptoError::InvalidLength)
}
