//! Test helpers for the live interoperability tests in `tests/` (OpenMLS and
//! mls-rs against mls-nostd): a member of ours behind a small byte-oriented
//! API, a seeded RNG, and the wall clock.
//!
//! Every message crosses between libraries as its `MLSMessage` TLS encoding
//! (RFC 9420 §6), exactly as it would on a wire. The anchors themselves are
//! dev-dependencies and live in `tests/common/`.
#![deny(missing_docs)]

pub mod scenarios;

use mls_nostd::codec::{Decode, Writer};
use mls_nostd::credential::Credential;
use mls_nostd::crypto::CipherSuite;
use mls_nostd::crypto::signature::SignaturePrivateKey;
use mls_nostd::executor::Sequential;
use mls_nostd::extensions::{Extensions, U16List};
use mls_nostd::group::{
    CommitBuffers, CommitOptions, CreateParams, Group, GroupConfig, JoinParams, Received, StagedCommitSummary,
    WireFormatPolicy,
    default_capabilities,
};
use mls_nostd::key_package::{KeyPackage, KeyPackageParams, KeyPackagePrivateKeys};
use mls_nostd::leaf_node::Lifetime;
use mls_nostd::messages::mls_message::{MlsMessage, MlsMessageBody};
use mls_nostd::messages::proposal::{Add, GroupContextExtensions, PreSharedKey, Proposal, Remove};
use mls_nostd::psk::{PreSharedKeyId, Psk, PskStore};
use mls_nostd::ratchet_tree::treekem::LeafTemplate;

/// Our group type in these tests: 32 leaves, 32 KiB of leaf encodings, 256
/// out-of-order keys, 16 KiB of pending proposals.
pub type OurGroup = Group<32, { 32 * 1024 }, 256, { 16 * 1024 }>;

/// The two cipher suites both sides implement, with their code points.
pub const SUITES: [(u16, CipherSuite); 2] = [
    (0x0001, CipherSuite::X25519Aes128GcmSha256Ed25519),
    (0x0003, CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519),
];

/// Seconds since the Unix epoch: the anchors check lifetimes against the
/// wall clock, so ours must too.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// SplitMix64: a seeded, reproducible RNG for test keys (never for real keys).
#[derive(Clone, Debug)]
pub struct SeededRng(pub u64);

impl SeededRng {
    /// A value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        use rand_core::TryRng;
        let Ok(v) = self.try_next_u64();
        (v % n as u64) as usize
    }
}

impl rand_core::TryRng for SeededRng {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok((self.try_next_u64()? >> 32) as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Ok(z ^ (z >> 31))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dst.chunks_mut(8) {
            let v = self.try_next_u64()?.to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for SeededRng {}

/// What an incoming handshake or application message was, in any library.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Application data and its `authenticated_data`.
    Application(Vec<u8>, Vec<u8>),
    /// A proposal, kept for a Commit by reference.
    Proposal,
    /// A Commit, merged; `removed_us` if it removed the receiver.
    Commit {
        /// The receiver is no longer a member.
        removed_us: bool,
    },
}

/// The external PSKs a member of ours holds (RFC 9420 §8.4).
struct ExternalPsks<'a>(&'a [(Vec<u8>, Vec<u8>)]);

impl PskStore for ExternalPsks<'_> {
    fn external_psk(&self, psk_id: &[u8]) -> Option<&[u8]> {
        self.0.iter().find(|(id, _)| id == psk_id).map(|(_, v)| v.as_slice())
    }
    fn resumption_psk(&self, _group_id: &[u8], _epoch: u64) -> Option<&[u8]> {
        None
    }
}

/// Zero padding of our PrivateMessages (odd, to differ from the anchors').
pub const PADDING: usize = 13;

/// `MLSMessage` header of a KeyPackage: version mls10, wire format 5.
const KEY_PACKAGE_HEADER: [u8; 4] = [0, 1, 0, 5];

/// A member of ours: an mls-nostd group slot, its signature key and RNG, and
/// the KeyPackage it waits to be added with.
pub struct Ours {
    /// Its basic credential's identity.
    pub name: String,
    /// The cipher suite of its KeyPackages and groups.
    pub suite: CipherSuite,
    /// The group slot.
    pub group: Box<OurGroup>,
    signer: SignaturePrivateKey,
    rng: SeededRng,
    key_package: Option<(Vec<u8>, KeyPackagePrivateKeys)>,
    /// How our commits and proposals are sent.
    pub wire_format: WireFormatPolicy,
    /// Whether our Welcomes carry the ratchet tree.
    pub tree_in_welcome: bool,
    sig_pub: Vec<u8>,
    /// What the last Commit we processed did.
    pub last_commit: Option<StagedCommitSummary>,
    /// Put GREASE extensions (type [`GREASE_EXTENSION`]) into our
    /// KeyPackages' leaf and KeyPackage extensions.
    pub grease_extensions: bool,
    external_psks: Vec<(Vec<u8>, Vec<u8>)>,
}

/// The GREASE extension type of [`Ours::grease_extensions`] (RFC 9420 §13.5).
pub const GREASE_EXTENSION: u16 = 0x5a5a;

fn lifetime() -> Lifetime {
    let t = now();
    // Within every side's limit (OpenMLS: 12 weeks and an hour; ours: 90 days).
    Lifetime { not_before: t - 3600, not_after: t + 30 * 86_400 }
}

impl Ours {
    /// A member named `name` whose keys derive from `seed`.
    pub fn new(name: &str, suite: CipherSuite, seed: u64) -> Self {
        let mut rng = SeededRng(seed ^ 0x6d6c_732d_6e6f_7374);
        let mut s = [0u8; 32];
        rand_core::Rng::fill_bytes(&mut rng, &mut s);
        let signer = SignaturePrivateKey::from_slice(suite, &s).expect("a signature key of the suite");
        let sig_pub = signer.public_key().as_bytes().to_vec();
        Self {
            name: name.to_string(),
            suite,
            group: Box::new(OurGroup::EMPTY),
            signer,
            rng,
            key_package: None,
            wire_format: WireFormatPolicy::Public,
            tree_in_welcome: true,
            sig_pub,
            last_commit: None,
            grease_extensions: false,
            external_psks: Vec::new(),
        }
    }

    fn config() -> GroupConfig {
        GroupConfig::default()
    }

    /// Creates a one-member group with `group_id`.
    pub fn create(&mut self, group_id: &[u8]) {
        let mut caps = [0u8; 8];
        let params = CreateParams {
            suite: self.suite,
            group_id,
            credential: Credential::Basic { identity: self.name.as_bytes() },
            lifetime: lifetime(),
            capabilities: default_capabilities(self.suite, &mut caps),
            extensions: Extensions::default(),
            config: Self::config(),
        };
        self.group.create(&params, &self.signer, &mut self.rng).unwrap_or_else(|e| panic!("{}: create: {e:?}", self.name));
    }

    /// A fresh KeyPackage as an `MLSMessage`; its private keys are kept for
    /// [`Ours::join`].
    pub fn key_package_message(&mut self) -> Vec<u8> {
        // One extension: type, then `opaque extension_data<V>` (1-byte varint length).
        let g = GREASE_EXTENSION.to_be_bytes();
        let leaf_ext = [g[0], g[1], 4, b'l', b'e', b'a', b'f'];
        let kp_ext = [g[0], g[1], 2, 0xfe, 0xed];
        let (leaf_extensions, extensions, supported) = if self.grease_extensions {
            (
                Extensions::from_body(&leaf_ext).expect("extension"),
                Extensions::from_body(&kp_ext).expect("extension"),
                U16List::from_body(&g).expect("list"),
            )
        } else {
            (Extensions::default(), Extensions::default(), U16List::default())
        };
        let params = KeyPackageParams {
            suite: self.suite,
            credential: Credential::Basic { identity: self.name.as_bytes() },
            lifetime: lifetime(),
            leaf_extensions,
            extensions,
            supported_extensions: supported,
            supported_proposals: U16List::default(),
        };
        let mut out = vec![0u8; 4096];
        let (bytes, keys) = KeyPackage::generate(&params, &self.signer, &mut self.rng, &mut out)
            .unwrap_or_else(|e| panic!("{}: key package: {e:?}", self.name));
        let bytes = bytes.to_vec();
        let mut msg = KEY_PACKAGE_HEADER.to_vec();
        msg.extend_from_slice(&bytes);
        self.key_package = Some((bytes, keys));
        msg
    }

    /// Joins from an `MLSMessage(Welcome)`, with the tree out of band if given.
    pub fn join(&mut self, welcome: &[u8], ratchet_tree: Option<&[u8]>) {
        let psks = core::mem::take(&mut self.external_psks);
        self.join_with(welcome, ratchet_tree, &ExternalPsks(&psks));
        self.external_psks = psks;
    }

    /// Like [`Ours::join`], with `psks` as the PSK store (e.g. the old group
    /// of a ReInit, holding its resumption PSK).
    pub fn join_with(&mut self, welcome: &[u8], ratchet_tree: Option<&[u8]>, psks: &dyn PskStore) {
        let (kp, keys) = self.key_package.take().unwrap_or_else(|| panic!("{}: no KeyPackage to join with", self.name));
        let params = JoinParams {
            key_package: &kp,
            keys: &keys,
            signer: &self.signer,
            ratchet_tree,
            psks,
            config: Self::config(),
        };
        let mut buf = vec![0u8; welcome.len()];
        self.group.join(welcome, &params, &mut buf).unwrap_or_else(|e| panic!("{}: join: {e:?}", self.name));
    }

    /// Joins a throwaway group from the `MLSMessage(Welcome)` `welcome`
    /// with the KeyPackage kept for [`Ours::join`], which stays kept (for
    /// the differential test); `Err` says why the join failed.
    pub fn trial_join(&self, welcome: &[u8], ratchet_tree: Option<&[u8]>) -> Result<(), String> {
        let (kp, keys) = self.key_package.as_ref().ok_or_else(|| format!("{}: no KeyPackage", self.name))?;
        let psks = ExternalPsks(&self.external_psks);
        let params = JoinParams {
            key_package: kp,
            keys,
            signer: &self.signer,
            ratchet_tree,
            psks: &psks,
            config: Self::config(),
        };
        let mut group = Box::new(OurGroup::EMPTY);
        let mut buf = vec![0u8; welcome.len()];
        group.join(welcome, &params, &mut buf).map(|_| ()).map_err(|e| format!("{e:?}"))
    }

    /// A signed GroupInfo (`MLSMessage`) with `external_pub` (and the
    /// `ratchet_tree` extension if `with_tree`), for an external commit.
    pub fn group_info(&mut self, with_tree: bool) -> Vec<u8> {
        let (mut out, mut scratch) = (vec![0u8; 256 * 1024], vec![0u8; 256 * 1024]);
        self.group
            .group_info(with_tree, &mut out, &mut scratch)
            .unwrap_or_else(|e| panic!("{}: group_info: {e:?}", self.name))
            .to_vec()
    }

    /// Joins by external commit from the `MLSMessage(GroupInfo)`
    /// `group_info` (the tree out of band if given); returns the Commit.
    pub fn join_external(&mut self, group_info: &[u8], ratchet_tree: Option<&[u8]>) -> Vec<u8> {
        let mut caps = [0u8; 8];
        let template = LeafTemplate {
            signature_key: &self.sig_pub,
            credential: Credential::Basic { identity: self.name.as_bytes() },
            capabilities: default_capabilities(self.suite, &mut caps),
            extensions: Extensions::default(),
        };
        let mut out = vec![0u8; 256 * 1024];
        let n = self
            .group
            .join_external(
                group_info,
                ratchet_tree,
                &template,
                &self.signer,
                None,
                Self::config(),
                &mut self.rng,
                &Sequential,
                &mut out,
            )
            .unwrap_or_else(|e| panic!("{}: join_external: {e:?}", self.name))
            .len();
        out.truncate(n);
        out
    }

    /// The current ratchet tree as `optional<Node> ratchet_tree<V>`, for a
    /// joiner that gets it out of band.
    pub fn ratchet_tree(&mut self) -> Vec<u8> {
        let mut buf = vec![0u8; 256 * 1024];
        let mut w = Writer::new(&mut buf);
        self.group.tree().export(&mut w).expect("tree export");
        w.written().to_vec()
    }

    fn buffers() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        (vec![0u8; 256 * 1024], vec![0u8; 128 * 1024], vec![0u8; 128 * 1024])
    }

    /// Commits by value `adds` (KeyPackages as `MLSMessage`s) and removes of
    /// `removes` (leaf indices), plus every pending proposal by reference;
    /// with a path when required or `force_path`. Merges at once; returns
    /// the Commit and the Welcome (if anyone is added).
    pub fn commit(&mut self, adds: &[Vec<u8>], removes: &[u32], force_path: bool) -> (Vec<u8>, Option<Vec<u8>>) {
        self.commit_with_psks(adds, removes, &[], force_path)
    }

    /// Like [`Ours::commit`], with PreSharedKey proposals of the external
    /// PSKs `psk_ids` (fresh nonces) by value.
    pub fn commit_with_psks(
        &mut self,
        adds: &[Vec<u8>],
        removes: &[u32],
        psk_ids: &[&[u8]],
        force_path: bool,
    ) -> (Vec<u8>, Option<Vec<u8>>) {
        let nonces: Vec<Vec<u8>> = psk_ids.iter().map(|_| self.nonce()).collect();
        let mut proposals = Vec::new();
        let kps: Vec<KeyPackage<'_>> = adds
            .iter()
            .map(|kp| {
                assert_eq!(kp.get(..4), Some(&KEY_PACKAGE_HEADER[..]), "{}: not an MLSMessage(KeyPackage)", self.name);
                KeyPackage::decode_exact(&kp[4..]).unwrap_or_else(|e| panic!("{}: decode KeyPackage: {e:?}", self.name))
            })
            .collect();
        for key_package in kps {
            proposals.push(Proposal::Add(Add { key_package }));
        }
        for r in removes {
            proposals.push(Proposal::Remove(Remove { removed: *r }));
        }
        for (psk_id, nonce) in psk_ids.iter().zip(&nonces) {
            let psk = PreSharedKeyId { psk: Psk::External { psk_id }, psk_nonce: nonce };
            proposals.push(Proposal::PreSharedKey(PreSharedKey { psk }));
        }
        self.commit_proposals(&proposals, force_path)
    }

    /// Commits `proposals` by value plus every pending proposal by
    /// reference; merges at once.
    pub fn commit_proposals(&mut self, proposals: &[Proposal<'_>], force_path: bool) -> (Vec<u8>, Option<Vec<u8>>) {
        let psks = core::mem::take(&mut self.external_psks);
        let out = self.commit_proposals_with(proposals, &ExternalPsks(&psks), force_path);
        self.external_psks = psks;
        out
    }

    /// Like [`Ours::commit_proposals`], with `psks` as the PSK store (e.g. an
    /// old group holding a resumption PSK).
    pub fn commit_proposals_with(
        &mut self,
        proposals: &[Proposal<'_>],
        psks: &dyn PskStore,
        force_path: bool,
    ) -> (Vec<u8>, Option<Vec<u8>>) {
        let (mut m, mut w, mut gi) = Self::buffers();
        let mut caps = [0u8; 8];
        let opts = CommitOptions {
            proposals,
            include_pending: true,
            force_path,
            ratchet_tree_in_welcome: self.tree_in_welcome,
            wire_format: self.wire_format,
            padding: PADDING,
            authenticated_data: b"commit of ours",
            leaf: Some(LeafTemplate {
                signature_key: &self.sig_pub,
                credential: Credential::Basic { identity: self.name.as_bytes() },
                capabilities: default_capabilities(self.suite, &mut caps),
                extensions: Extensions::default(),
            }),
        };
        let bufs = CommitBuffers { message: &mut m, welcome: &mut w, group_info: &mut gi };
        let now = now();
        let out = self
            .group
            .commit(&opts, psks, now, &mut self.rng, &Sequential, bufs)
            .unwrap_or_else(|e| panic!("{}: commit: {e:?}", self.name));
        let commit = out.commit.to_vec();
        let welcome = out.welcome.map(<[u8]>::to_vec);
        self.group.merge_staged_commit().unwrap_or_else(|e| panic!("{}: merge: {e:?}", self.name));
        (commit, welcome)
    }

    /// Sends a proposal to add the holder of `key_package` (an `MLSMessage`).
    pub fn propose_add(&mut self, key_package: &[u8]) -> Vec<u8> {
        assert_eq!(key_package.get(..4), Some(&KEY_PACKAGE_HEADER[..]));
        let kp = KeyPackage::decode_exact(&key_package[4..]).expect("KeyPackage");
        self.propose(&Proposal::Add(Add { key_package: kp }))
    }

    /// Sends an Update proposal of our leaf (fresh encryption key).
    pub fn propose_update(&mut self) -> Vec<u8> {
        let mut caps = [0u8; 8];
        let template = LeafTemplate {
            signature_key: &self.sig_pub,
            credential: Credential::Basic { identity: self.name.as_bytes() },
            capabilities: default_capabilities(self.suite, &mut caps),
            extensions: Extensions::default(),
        };
        let mut out = vec![0u8; 16 * 1024];
        let n = self
            .group
            .propose_update(&template, self.wire_format, &mut self.rng, &mut out)
            .unwrap_or_else(|e| panic!("{}: propose_update: {e:?}", self.name))
            .len();
        out.truncate(n);
        out
    }

    /// Sends a proposal to remove the member at leaf `leaf`.
    pub fn propose_remove(&mut self, leaf: u32) -> Vec<u8> {
        self.propose(&Proposal::Remove(Remove { removed: leaf }))
    }

    /// A fresh PSK nonce of `Nh` bytes.
    fn nonce(&mut self) -> Vec<u8> {
        let mut n = vec![0u8; self.suite.hash_len()];
        rand_core::Rng::fill_bytes(&mut self.rng, &mut n);
        n
    }

    /// Holds the external PSK `secret` under `id`.
    pub fn register_external_psk(&mut self, id: &[u8], secret: &[u8]) {
        self.external_psks.push((id.to_vec(), secret.to_vec()));
    }

    /// Sends a proposal to inject the external PSK `id`.
    pub fn propose_external_psk(&mut self, id: &[u8]) -> Vec<u8> {
        let nonce = self.nonce();
        let psk = PreSharedKeyId { psk: Psk::External { psk_id: id }, psk_nonce: &nonce };
        self.propose(&Proposal::PreSharedKey(PreSharedKey { psk }))
    }

    fn propose(&mut self, p: &Proposal<'_>) -> Vec<u8> {
        let mut out = vec![0u8; 16 * 1024];
        let n = self
            .group
            .propose(p, self.wire_format, &mut self.rng, &mut out)
            .unwrap_or_else(|e| panic!("{}: propose: {e:?}", self.name))
            .len();
        out.truncate(n);
        out
    }

    /// Protects application data as a PrivateMessage (with `PADDING` zero bytes).
    pub fn send(&mut self, data: &[u8], aad: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; data.len() + aad.len() + 1024];
        let n = self
            .group
            .protect_application(data, aad, PADDING, &mut self.rng, &mut out)
            .unwrap_or_else(|e| panic!("{}: protect: {e:?}", self.name))
            .len();
        out.truncate(n);
        out
    }

    /// Processes a group message; a Commit is merged at once.
    pub fn process(&mut self, msg: &[u8]) -> Event {
        let mut m = msg.to_vec();
        let event = match self.group.process_message(&mut m, &ExternalPsks(&self.external_psks), now()) {
            Ok(Received::Application { data, authenticated_data, .. }) => {
                Event::Application(data.to_vec(), authenticated_data.to_vec())
            }
            Ok(Received::Proposal { .. }) => Event::Proposal,
            Ok(Received::Commit(s)) => {
                self.last_commit = Some(s);
                Event::Commit { removed_us: s.removes_us }
            }
            Err(e) => panic!("{}: process_message (epoch {}): {e:?}", self.name, self.group.epoch()),
        };
        if matches!(event, Event::Commit { .. }) {
            self.group.merge_staged_commit().unwrap_or_else(|e| panic!("{}: merge: {e:?}", self.name));
        }
        event
    }

    /// The epoch number.
    pub fn epoch(&self) -> u64 {
        self.group.epoch()
    }

    /// The epoch authenticator (§8.7).
    pub fn epoch_authenticator(&self) -> Vec<u8> {
        self.group.epoch_authenticator().to_vec()
    }

    /// `MLS-Exporter(label, context, len)`.
    pub fn export(&self, label: &[u8], context: &[u8], len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        self.group.export_secret(label, context, &mut out).expect("exporter");
        out
    }

    /// Our leaf index.
    pub fn own_leaf(&self) -> u32 {
        self.group.own_leaf().0
    }

    /// True once removed (or before joining).
    pub fn is_inactive(&self) -> bool {
        self.group.is_inactive()
    }

    /// The leaf of the member whose basic identity is `identity`.
    pub fn leaf_of(&mut self, identity: &[u8]) -> Option<u32> {
        let tree = self.group.tree();
        (0..tree.n_leaves()).find(|i| {
            tree.leaf_node(mls_nostd::tree_math::LeafIndex(*i))
                .is_some_and(|l| matches!(l.fields.credential, Credential::Basic { identity: id } if id == identity))
        })
    }

    /// The number of members (non-blank leaves).
    pub fn member_count(&mut self) -> usize {
        let tree = self.group.tree();
        (0..tree.n_leaves()).filter(|i| tree.leaf_node(mls_nostd::tree_math::LeafIndex(*i)).is_some()).count()
    }
}

/// True if `msg` is an `MLSMessage` whose wire format is PrivateMessage.
pub fn is_private_message(msg: &[u8]) -> bool {
    matches!(MlsMessage::decode_exact(msg).map(|m| m.body), Ok(MlsMessageBody::PrivateMessage(_)))
}

/// One member of a group, in any of the three libraries. Every message is
/// an `MLSMessage` encoding; leaves are RFC 9420 leaf indices.
pub trait Party {
    /// The identity of its basic credential.
    fn name(&self) -> &str;
    /// The library it runs on ("ours", "openmls", "mls-rs").
    fn library(&self) -> &'static str;
    /// Creates a one-member group.
    fn create(&mut self, group_id: &[u8]);
    /// A fresh KeyPackage (`MLSMessage`); its keys are kept for `join`.
    fn key_package(&mut self) -> Vec<u8>;
    /// Joins from a Welcome, with the ratchet tree out of band if given.
    fn join(&mut self, welcome: &[u8], ratchet_tree: Option<&[u8]>);
    /// The ratchet tree (`optional<Node> ratchet_tree<V>`), for out-of-band delivery.
    fn ratchet_tree(&mut self) -> Vec<u8>;
    /// Whether its Welcomes carry the ratchet tree extension.
    fn set_tree_in_welcome(&mut self, on: bool);
    /// True if its Welcomes carry the ratchet tree extension.
    fn tree_in_welcome(&self) -> bool;
    /// Whether its proposals and commits go out as PrivateMessage.
    fn set_private_handshake(&mut self, on: bool);
    /// Commits Adds of `key_packages` (with a path if `path`); merged at
    /// once. Returns the Commit and the Welcome.
    fn add(&mut self, key_packages: &[Vec<u8>], path: bool) -> (Vec<u8>, Vec<u8>);
    /// Commits the removal of `leaves` (with a path); merged at once.
    fn remove(&mut self, leaves: &[u32]) -> Vec<u8>;
    /// An empty Commit with a path (a full update); merged at once.
    fn update(&mut self) -> Vec<u8>;
    /// Commits every pending proposal by reference; merged at once. Returns
    /// the Commit and a Welcome if the proposals added anyone.
    fn commit_pending(&mut self) -> (Vec<u8>, Option<Vec<u8>>);
    /// Proposes to add the holder of `key_package`.
    fn propose_add(&mut self, key_package: &[u8]) -> Vec<u8>;
    /// Proposes to remove the member at `leaf`.
    fn propose_remove(&mut self, leaf: u32) -> Vec<u8>;
    /// Commits Adds of `key_packages` and Removes of `leaves` by value in one
    /// Commit (with every pending proposal); merged at once.
    fn add_and_remove(&mut self, key_packages: &[Vec<u8>], leaves: &[u32]) -> (Vec<u8>, Option<Vec<u8>>);
    /// Holds the external PSK `secret` under `id`.
    fn register_external_psk(&mut self, id: &[u8], secret: &[u8]);
    /// Proposes injecting the external PSK `id`.
    fn propose_external_psk(&mut self, id: &[u8]) -> Vec<u8>;
    /// Commits a PreSharedKey proposal of the external PSK `id` by value
    /// (with every pending proposal); merged at once. Returns the Commit and
    /// a Welcome if pending proposals added anyone.
    fn commit_external_psk(&mut self, id: &[u8]) -> (Vec<u8>, Option<Vec<u8>>);
    /// Commits a GroupContextExtensions proposal by value whose list is
    /// `extensions` (an `Extension extensions<V>` encoding); merged at once.
    fn commit_group_context_extensions(&mut self, extensions: &[u8]) -> Vec<u8>;
    /// Proposes an update of its own leaf, if the library can.
    fn propose_update(&mut self) -> Option<Vec<u8>>;
    /// Protects application data with `aad` as its `authenticated_data`.
    fn send(&mut self, data: &[u8], aad: &[u8]) -> Vec<u8>;
    /// Processes a group message; Commits are merged at once.
    fn process(&mut self, msg: &[u8]) -> Event;
    /// The epoch number.
    fn epoch(&self) -> u64;
    /// The epoch authenticator (§8.7).
    fn epoch_authenticator(&self) -> Vec<u8>;
    /// `MLS-Exporter(label, context, len)` (§8.5).
    fn export(&self, label: &[u8], context: &[u8], len: usize) -> Vec<u8>;
    /// The leaf of the member whose basic identity is `identity`.
    fn leaf_of(&mut self, identity: &[u8]) -> Option<u32>;
    /// Its own leaf.
    fn own_leaf(&self) -> u32;
    /// Number of members in its view of the group.
    fn member_count(&mut self) -> usize;
    /// Whether the last Commit it processed had an UpdatePath, where the
    /// library says (ours does).
    fn last_commit_had_path(&self) -> Option<bool> {
        None
    }
    /// A signed GroupInfo (`MLSMessage`) with the `external_pub` extension,
    /// for an external commit (RFC 9420 §12.4.3.2); with the `ratchet_tree`
    /// extension if `with_tree`.
    fn group_info(&mut self, with_tree: bool) -> Vec<u8>;
    /// Joins by external commit from `group_info` (the tree out of band if
    /// given); returns the Commit, already merged by the joiner.
    fn join_external(&mut self, group_info: &[u8], ratchet_tree: Option<&[u8]>) -> Vec<u8>;
}

impl Party for Ours {
    fn name(&self) -> &str {
        &self.name
    }
    fn library(&self) -> &'static str {
        "ours"
    }
    fn create(&mut self, group_id: &[u8]) {
        Ours::create(self, group_id)
    }
    fn key_package(&mut self) -> Vec<u8> {
        self.key_package_message()
    }
    fn join(&mut self, welcome: &[u8], ratchet_tree: Option<&[u8]>) {
        Ours::join(self, welcome, ratchet_tree)
    }
    fn ratchet_tree(&mut self) -> Vec<u8> {
        Ours::ratchet_tree(self)
    }
    fn set_tree_in_welcome(&mut self, on: bool) {
        self.tree_in_welcome = on;
    }
    fn tree_in_welcome(&self) -> bool {
        self.tree_in_welcome
    }
    fn set_private_handshake(&mut self, on: bool) {
        self.wire_format = if on { WireFormatPolicy::Private } else { WireFormatPolicy::Public };
    }
    fn add(&mut self, key_packages: &[Vec<u8>], path: bool) -> (Vec<u8>, Vec<u8>) {
        let (c, w) = self.commit(key_packages, &[], path);
        (c, w.expect("a Welcome for the added members"))
    }
    fn remove(&mut self, leaves: &[u32]) -> Vec<u8> {
        self.commit(&[], leaves, true).0
    }
    fn update(&mut self) -> Vec<u8> {
        self.commit(&[], &[], true).0
    }
    fn commit_pending(&mut self) -> (Vec<u8>, Option<Vec<u8>>) {
        self.commit(&[], &[], false)
    }
    fn propose_add(&mut self, key_package: &[u8]) -> Vec<u8> {
        Ours::propose_add(self, key_package)
    }
    fn propose_remove(&mut self, leaf: u32) -> Vec<u8> {
        Ours::propose_remove(self, leaf)
    }
    fn add_and_remove(&mut self, key_packages: &[Vec<u8>], leaves: &[u32]) -> (Vec<u8>, Option<Vec<u8>>) {
        self.commit(key_packages, leaves, false)
    }
    fn register_external_psk(&mut self, id: &[u8], secret: &[u8]) {
        Ours::register_external_psk(self, id, secret)
    }
    fn propose_external_psk(&mut self, id: &[u8]) -> Vec<u8> {
        Ours::propose_external_psk(self, id)
    }
    fn commit_external_psk(&mut self, id: &[u8]) -> (Vec<u8>, Option<Vec<u8>>) {
        self.commit_with_psks(&[], &[], &[id], false)
    }
    fn commit_group_context_extensions(&mut self, extensions: &[u8]) -> Vec<u8> {
        let extensions = Extensions::decode_exact(extensions).expect("an extension list");
        let p = [Proposal::GroupContextExtensions(GroupContextExtensions { extensions })];
        self.commit_proposals(&p, true).0
    }
    fn propose_update(&mut self) -> Option<Vec<u8>> {
        Some(Ours::propose_update(self))
    }
    fn send(&mut self, data: &[u8], aad: &[u8]) -> Vec<u8> {
        Ours::send(self, data, aad)
    }
    fn process(&mut self, msg: &[u8]) -> Event {
        Ours::process(self, msg)
    }
    fn epoch(&self) -> u64 {
        Ours::epoch(self)
    }
    fn epoch_authenticator(&self) -> Vec<u8> {
        Ours::epoch_authenticator(self)
    }
    fn export(&self, label: &[u8], context: &[u8], len: usize) -> Vec<u8> {
        Ours::export(self, label, context, len)
    }
    fn leaf_of(&mut self, identity: &[u8]) -> Option<u32> {
        Ours::leaf_of(self, identity)
    }
    fn own_leaf(&self) -> u32 {
        Ours::own_leaf(self)
    }
    fn member_count(&mut self) -> usize {
        Ours::member_count(self)
    }
    fn last_commit_had_path(&self) -> Option<bool> {
        self.last_commit.map(|s| s.has_path)
    }
    fn group_info(&mut self, with_tree: bool) -> Vec<u8> {
        Ours::group_info(self, with_tree)
    }
    fn join_external(&mut self, group_info: &[u8], ratchet_tree: Option<&[u8]>) -> Vec<u8> {
        Ours::join_external(self, group_info, ratchet_tree)
    }
}

/// Asserts that every member is in the same epoch with the same epoch
/// authenticator and exporter output.
pub fn agree(members: &[&dyn Party]) {
    let Some(first) = members.first() else { return };
    let (epoch, auth) = (first.epoch(), first.epoch_authenticator());
    let exported = first.export(b"interop", b"context", 32);
    for m in members {
        assert_eq!(m.epoch(), epoch, "{} ({}) epoch vs {} ({})", m.name(), m.library(), first.name(), first.library());
        assert_eq!(
            m.epoch_authenticator(),
            auth,
            "epoch {epoch}: epoch authenticator of {} ({}) differs from {} ({})",
            m.name(),
            m.library(),
            first.name(),
            first.library()
        );
        assert_eq!(m.export(b"interop", b"context", 32), exported, "epoch {epoch}: exporter of {} ({})", m.name(), m.library());
    }
}

/// The `ExternalSender` entry (RFC 9420 §12.1.8.1) of a signature key and a
/// basic credential with `identity`.
pub fn external_sender_entry(signature_key: &[u8], identity: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 1024];
    let mut w = Writer::new(&mut buf);
    w.write_opaque(signature_key).expect("fits");
    w.write_u16(1).expect("fits"); // CredentialType basic
    w.write_opaque(identity).expect("fits");
    w.written().to_vec()
}

/// A sender outside the group (RFC 9420 §12.1.8.1), listed in its
/// `external_senders` group context extension, in any library.
pub trait ExternalParty {
    /// The library it runs on.
    fn library(&self) -> &'static str;
    /// Its `ExternalSender` entry (signature key, basic credential).
    fn external_sender(&self) -> Vec<u8>;
    /// A PublicMessage proposal, as sender `index` of `external_senders`, to
    /// add the holder of `key_package` to the group that `group_info` (an
    /// `MLSMessage(GroupInfo)` with the ratchet tree) describes.
    fn propose_add(&mut self, group_info: &[u8], index: u32, key_package: &[u8]) -> Vec<u8>;
    /// Likewise, to remove the member at `leaf`.
    fn propose_remove(&mut self, group_info: &[u8], index: u32, leaf: u32) -> Vec<u8>;
}

/// An external sender of ours: a signature key, and framing and signing by
/// mls-nostd (`messages::public_message::sign`).
pub struct OursExternal {
    name: String,
    signer: SignaturePrivateKey,
}

impl OursExternal {
    /// An external sender named `name` with the Ed25519 key of `seed`.
    pub fn new(name: &str, seed: u8) -> Self {
        Self { name: name.to_string(), signer: SignaturePrivateKey::from_slice(CipherSuite::X25519Aes128GcmSha256Ed25519, &[seed; 32])
                .expect("an Ed25519 seed") }
    }

    fn propose(&self, group_info: &[u8], index: u32, proposal: Proposal<'_>) -> Vec<u8> {
        use mls_nostd::codec::Encode;
        use mls_nostd::messages::authenticated_content::EncodedGroupContext;
        use mls_nostd::messages::framing::{Content, FramedContent, Sender};
        let MlsMessageBody::GroupInfo(gi) = MlsMessage::decode_exact(group_info).expect("MLSMessage").body else {
            panic!("not a GroupInfo")
        };
        let mut gc = vec![0u8; 64 * 1024];
        let n = {
            let mut w = Writer::new(&mut gc);
            gi.tbs.group_context.encode(&mut w).expect("GroupContext");
            w.len()
        };
        let gc = EncodedGroupContext::decode(&gc[..n]).expect("GroupContext");
        let content = FramedContent {
            group_id: gi.tbs.group_context.group_id,
            epoch: gi.tbs.group_context.epoch,
            sender: Sender::External(index),
            authenticated_data: &[],
            content: Content::Proposal(proposal),
        };
        let mut out = vec![0u8; 64 * 1024];
        let n = mls_nostd::messages::public_message::sign(&gc, &self.signer, &content, &mut out)
            .and_then(|s| s.finish(None, None).map(<[u8]>::len))
            .unwrap_or_else(|e| panic!("{}: external proposal: {e:?}", self.name));
        out.truncate(n);
        out
    }
}

impl ExternalParty for OursExternal {
    fn library(&self) -> &'static str {
        "ours"
    }
    fn external_sender(&self) -> Vec<u8> {
        external_sender_entry(self.signer.public_key().as_bytes(), self.name.as_bytes())
    }
    fn propose_add(&mut self, group_info: &[u8], index: u32, key_package: &[u8]) -> Vec<u8> {
        assert_eq!(key_package.get(..4), Some(&KEY_PACKAGE_HEADER[..]));
        let kp = KeyPackage::decode_exact(&key_package[4..]).expect("KeyPackage");
        self.propose(group_info, index, Proposal::Add(Add { key_package: kp }))
    }
    fn propose_remove(&mut self, group_info: &[u8], index: u32, leaf: u32) -> Vec<u8> {
        self.propose(group_info, index, Proposal::Remove(Remove { removed: leaf }))
    }
}
