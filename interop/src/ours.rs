//! Ours, behind the byte-oriented APIs of the tests: [`Ours`] (a member for
//! the scenario tests, [`crate::Party`]), [`OursExternal`] (an external
//! sender) and [`OursClient`] (a script actor, [`crate::scripts::Client`]).
//! Every use of mls-nostd's API by the interop helpers is in this file, so
//! that a change of the core's API is mended here.

use mls_nostd::codec::{Decode, Writer};
use mls_nostd::credential::Credential;
use mls_nostd::crypto::{CipherSuite, HashValue};
use mls_nostd::crypto::signature::{Scheme, SignaturePrivateKey};
use mls_nostd::executor::Sequential;
use mls_nostd::extensions::{Extensions, U16List};
use mls_nostd::identity::{CredentialUse, IdentityProvider, MemberIdentity, SameCredential};
use mls_nostd::group::{
    CommitBuffers, CommitOptions, CreateParams, Group, GroupConfig, JoinParams, Received, StagedCommitSummary,
    WireFormatPolicy,
    default_capabilities,
};
use mls_nostd::key_package::{KeyPackage, KeyPackageParams, KeyPackagePrivateKeys};
use mls_nostd::leaf_node::Lifetime;
use mls_nostd::messages::mls_message::{MlsMessage, MlsMessageBody};
use mls_nostd::messages::proposal::{Add, GroupContextExtensions, PreSharedKey, Proposal, Remove};
use mls_nostd::psk::{NoPsks, PreSharedKeyId, Psk, PskStore};
use mls_nostd::ratchet_tree::treekem::LeafTemplate;
use crate::{Event, ExternalParty, Party, SeededRng, now};

/// Our group type in these tests: 32 leaves, 32 KiB of leaf encodings, 256
/// out-of-order keys, 16 KiB of pending proposals.
pub type OurGroup = Group<32, { 32 * 1024 }, 256, { 16 * 1024 }>;

/// The cipher suites of the scenario tests (`tests/openmls.rs`,
/// `mls_rs.rs`, `passive_client.rs`, `random.rs`, `differential.rs`), with
/// their code points: the two Ed25519 suites and suite 2 (ECDSA P-256),
/// which both anchors' RustCrypto providers offer. The scripts run in
/// [`crate::scripts::OUR_SUITES`].
pub const SUITES: [(u16, CipherSuite); 3] = [
    (0x0001, CipherSuite::X25519Aes128GcmSha256Ed25519),
    (0x0003, CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519),
    (0x0002, CipherSuite::P256Aes128GcmSha256P256),
];

/// The index into [`SUITES`] of the suite a ReInit of the scenario tests
/// goes into from `SUITES[i]`: the other Ed25519 suite (1 <-> 3), and suite
/// 2 into itself. The anchors' test parties keep their signature key across
/// a ReInit, so the new suite must sign with the same scheme; ReInit into
/// another scheme is run by the interop scripts.
pub const fn reinit_suite(i: usize) -> usize {
    match i {
        0 => 1,
        1 => 0,
        _ => i,
    }
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

/// Our leaf's template for a path or a new leaf: a basic credential with
/// `name`, the default capabilities of `suite` (written into `caps`).
fn leaf_template<'a>(signature_key: &'a [u8], name: &'a str, suite: CipherSuite, caps: &'a mut [u8; 8]) -> LeafTemplate<'a> {
    LeafTemplate {
        signature_key,
        credential: Credential::Basic { identity: name.as_bytes() },
        capabilities: default_capabilities(suite, caps),
        extensions: Extensions::default(),
    }
}

fn lifetime() -> Lifetime {
    let t = now();
    // Within every side's limit (OpenMLS: 12 weeks and an hour; ours: 90 days).
    Lifetime { not_before: t - 3600, not_after: t + 30 * 86_400 }
}

impl Ours {
    /// A member named `name` whose keys derive from `seed`.
    pub fn new(name: &str, suite: CipherSuite, seed: u64) -> Self {
        let mut rng = SeededRng(seed ^ 0x6d6c_732d_6e6f_7374);
        let (signer, public) = SignaturePrivateKey::generate(suite, &mut rng);
        let sig_pub = public.as_bytes().to_vec();
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
            executor: &mls_nostd::executor::Sequential,
            key_package: &kp,
            keys: &keys,
            signer: &self.signer,
            ratchet_tree,
            psks,
            config: Self::config(),
        };
        let mut buf = vec![0u8; welcome.len()];
        self.group.join_in_memory(welcome, &params, &mut buf).unwrap_or_else(|e| panic!("{}: join: {e:?}", self.name));
    }

    /// Joins a throwaway group from the `MLSMessage(Welcome)` `welcome`
    /// with the KeyPackage kept for [`Ours::join`], which stays kept (for
    /// the differential test); `Err` says why the join failed.
    pub fn trial_join(&self, welcome: &[u8], ratchet_tree: Option<&[u8]>) -> Result<(), String> {
        let (kp, keys) = self.key_package.as_ref().ok_or_else(|| format!("{}: no KeyPackage", self.name))?;
        let psks = ExternalPsks(&self.external_psks);
        let params = JoinParams {
            executor: &mls_nostd::executor::Sequential,
            key_package: kp,
            keys,
            signer: &self.signer,
            ratchet_tree,
            psks: &psks,
            config: Self::config(),
        };
        let mut group = Box::new(OurGroup::EMPTY);
        let mut buf = vec![0u8; welcome.len()];
        group.join_in_memory(welcome, &params, &mut buf).map(|_| ()).map_err(|e| format!("{e:?}"))
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
        let template = leaf_template(&self.sig_pub, &self.name, self.suite, &mut caps);
        let mut out = vec![0u8; 256 * 1024];
        let n = self
            .group
            .join_external(
                group_info,
                ratchet_tree,
                &template,
                &self.signer,
                None,
                &[],
                &NoPsks,
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
        self.group.export_tree(&mut w).expect("tree export");
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
            leaf: Some(leaf_template(&self.sig_pub, &self.name, self.suite, &mut caps)),
        };
        let bufs = CommitBuffers { message: &mut m, welcome: &mut w, group_info: &mut gi };
        let now = now();
        let out = self
            .group
            .commit_in_memory(&opts, psks, now, &mut self.rng, &Sequential, bufs)
            .unwrap_or_else(|e| panic!("{}: commit: {e:?}", self.name));
        let commit = out.commit.to_vec();
        let welcome = out.welcome.map(<[u8]>::to_vec);
        self.group.merge_staged_commit_in_memory().unwrap_or_else(|e| panic!("{}: merge: {e:?}", self.name));
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
        let template = leaf_template(&self.sig_pub, &self.name, self.suite, &mut caps);
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
            .protect_application_in_memory(data, aad, PADDING, &mut self.rng, &mut out)
            .unwrap_or_else(|e| panic!("{}: protect: {e:?}", self.name))
            .len();
        out.truncate(n);
        out
    }

    /// Processes a group message; a Commit is merged at once.
    pub fn process(&mut self, msg: &[u8]) -> Event {
        let mut m = msg.to_vec();
        let event = match self.group.process_message_in_memory(&mut m, &ExternalPsks(&self.external_psks), now()) {
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
            self.group.merge_staged_commit_in_memory().unwrap_or_else(|e| panic!("{}: merge: {e:?}", self.name));
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

/// An external sender of ours: a signature key, and framing and signing by
/// mls-nostd (`messages::public_message::sign`).
pub struct OursExternal {
    name: String,
    signer: SignaturePrivateKey,
}

impl OursExternal {
    /// An external sender named `name` with a signature key of `suite`'s
    /// scheme drawn from `seed`.
    pub fn new(name: &str, suite: CipherSuite, seed: u64) -> Self {
        let (signer, _) = SignaturePrivateKey::generate(suite, &mut SeededRng(seed));
        Self { name: name.to_string(), signer }
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
        crate::external_sender_entry(self.signer.public_key().as_bytes(), self.name.as_bytes())
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

// ---------------------------------------------------------------------------
// A script actor of ours (crate::scripts::Client).
// ---------------------------------------------------------------------------

use crate::scripts::{
    self, Bytes, CommitOut, Extension, Failure, Library, Outcome, ProposalSpec, SentProposals, Tx, Welcomed, failed,
};
use mls_nostd::extensions::EXT_RATCHET_TREE;
use mls_nostd::messages::authenticated_content::EncodedGroupContext;
use mls_nostd::messages::framing::{Content, FramedContent, Sender};
use mls_nostd::messages::proposal::ReInit;
use mls_nostd::psk::ResumptionPskUsage;
use mls_nostd::ratchet_tree::node::Node;

/// Our group type in the scripts: `deep_random` reaches 70 members.
pub type ScriptGroup = Group<128, { 128 * 512 }, 256, { 32 * 1024 }>;

/// A KeyPackage an [`OursClient`] made: its encoding (no `MLSMessage`
/// header), private keys and cipher suite.
struct PendingKeyPackage {
    body: Bytes,
    keys: KeyPackagePrivateKeys,
    suite: CipherSuite,
}

/// The script actors' identity policy: [`SameCredential`]'s, and a new
/// member's Add of itself is committed with the pending proposals (a
/// script that sends one then commits it: the script authorizes it).
struct ScriptIdentity;

impl IdentityProvider for ScriptIdentity {
    fn validate(&self, group_id: &[u8], usage: CredentialUse, member: &MemberIdentity<'_>) -> bool {
        SameCredential.validate(group_id, usage, member)
    }

    fn valid_successor(&self, predecessor: &MemberIdentity<'_>, successor: &MemberIdentity<'_>) -> bool {
        SameCredential.valid_successor(predecessor, successor)
    }

    fn authorize_new_member_add(&self, _: &[u8], _: &MemberIdentity<'_>) -> bool {
        true
    }
}

static SCRIPT_IDENTITY: ScriptIdentity = ScriptIdentity;

/// The configuration of a script actor's groups.
fn script_config() -> GroupConfig {
    GroupConfig { identity: &SCRIPT_IDENTITY, ..GroupConfig::default() }
}

/// A script actor played by mls-nostd: its current group, the KeyPackages
/// it made, its external PSKs, the old group of a ReInit it takes part in,
/// and its external-signer key. One signature key per signature scheme
/// (suites 1 and 3 share Ed25519, suite 2 signs with ECDSA P-256), made when
/// a group or KeyPackage of the scheme first needs it and kept: a rejoin by
/// external Commit then replaces a leaf with the same key, as OpenMLS's
/// resync expects.
pub struct OursClient {
    name: String,
    rng: SeededRng,
    signers: Vec<(Scheme, SignaturePrivateKey)>,
    group: Option<Box<ScriptGroup>>,
    encrypt: bool,
    key_packages: Vec<PendingKeyPackage>,
    external_psks: Vec<(Bytes, Bytes)>,
    sent: SentProposals,
    /// The references of the proposals it sent this epoch (a Commit of its
    /// own ReInit names it by reference).
    sent_refs: Vec<(Bytes, HashValue)>,
    /// The epoch authenticator of a Commit merged when created (the tree
    /// asked for out of band is the new epoch's, and the core gives the
    /// staged tree only once merged).
    merged_early: Option<Bytes>,
    /// The old group of a ReInit and the KeyPackage for its new group.
    reinit: Option<(Box<ScriptGroup>, Tx)>,
    external_signer: Option<SignaturePrivateKey>,
}

fn suite_of(code: u16) -> Outcome<CipherSuite> {
    CipherSuite::from_u16(code)
        .ok_or_else(|| Failure::Unsupported { library: Library::Ours, reason: format!("cipher suite 0x{code:04x}") })
}

fn wire_format(encrypt: bool) -> WireFormatPolicy {
    if encrypt { WireFormatPolicy::Private } else { WireFormatPolicy::Public }
}

fn new_group() -> Box<ScriptGroup> {
    Box::new(ScriptGroup::EMPTY)
}

/// A KeyPackage body (no `MLSMessage` header) of an `MLSMessage(KeyPackage)`.
fn key_package_body(msg: &[u8]) -> Outcome<&[u8]> {
    match msg.split_at_checked(4) {
        Some((head, body)) if head == KEY_PACKAGE_HEADER => Ok(body),
        _ => Err(Failure::Failed("not an MLSMessage(KeyPackage)".into())),
    }
}

/// The leaf of the member whose basic identity is `identity` in an encoded
/// ratchet tree (`optional<Node> ratchet_tree<V>`).
fn leaf_in_tree(tree: &[u8], identity: &[u8]) -> Option<u32> {
    let view = mls_nostd::ratchet_tree::tree::decode_tree(tree).ok()?;
    view.iter().enumerate().find_map(|(i, n)| match n {
        Some(Node::Leaf(l)) if matches!(l.fields.credential, Credential::Basic { identity: id } if id == identity) => {
            u32::try_from(i / 2).ok()
        }
        _ => None,
    })
}

/// The ratchet tree of a GroupInfo: its extension, else `out_of_band`.
fn tree_of<'a>(gi: &'a mls_nostd::messages::group_info::GroupInfo<'a>, out_of_band: Option<&'a [u8]>) -> Option<&'a [u8]> {
    gi.tbs.extensions.find(EXT_RATCHET_TREE).or(out_of_band)
}

fn decode_group_info(msg: &[u8]) -> Outcome<mls_nostd::messages::group_info::GroupInfo<'_>> {
    match MlsMessage::decode_exact(msg).map_err(failed("decode GroupInfo"))?.body {
        MlsMessageBody::GroupInfo(gi) => Ok(gi),
        _ => Err(Failure::Failed("not an MLSMessage(GroupInfo)".into())),
    }
}

/// What a proposal borrows while it is built.
#[derive(Default)]
struct Owned {
    nonce: Bytes,
    group_id: Bytes,
    extensions: Bytes,
    leaf: u32,
}

/// `spec` as a core proposal; `owned` holds what it borrows.
fn proposal<'a>(spec: &'a ProposalSpec, owned: &'a Owned) -> Outcome<Proposal<'a>> {
    let ext = || Extensions::from_body(&owned.extensions).map_err(failed("extensions"));
    Ok(match spec {
        ProposalSpec::Add(kp) => Proposal::Add(Add {
            key_package: KeyPackage::decode_exact(key_package_body(kp)?).map_err(failed("decode KeyPackage"))?,
        }),
        ProposalSpec::Remove(_) => Proposal::Remove(Remove { removed: owned.leaf }),
        ProposalSpec::ExternalPsk(id) => Proposal::PreSharedKey(PreSharedKey {
            psk: PreSharedKeyId { psk: Psk::External { psk_id: id }, psk_nonce: &owned.nonce },
        }),
        ProposalSpec::ResumptionPsk(epoch) => Proposal::PreSharedKey(PreSharedKey {
            psk: PreSharedKeyId {
                psk: Psk::Resumption {
                    usage: ResumptionPskUsage::Application,
                    psk_group_id: &owned.group_id,
                    psk_epoch: *epoch,
                },
                psk_nonce: &owned.nonce,
            },
        }),
        ProposalSpec::GroupContextExtensions(_) => {
            Proposal::GroupContextExtensions(GroupContextExtensions { extensions: ext()? })
        }
        ProposalSpec::ReInit { group_id, suite, .. } => {
            Proposal::ReInit(ReInit { group_id, version: 1, cipher_suite: *suite, extensions: ext()? })
        }
    })
}

impl OursClient {
    /// A client for the actor `name`, all of whose randomness comes from `seed`.
    pub fn new(name: &str, seed: u64) -> Self {
        Self {
            name: name.to_string(),
            rng: SeededRng(seed ^ 0x6f75_7273_636c_6965),
            signers: Vec::new(),
            group: None,
            encrypt: false,
            key_packages: Vec::new(),
            external_psks: Vec::new(),
            sent: SentProposals::default(),
            sent_refs: Vec::new(),
            merged_early: None,
            reinit: None,
            external_signer: None,
        }
    }

    fn group(&mut self) -> Outcome<&mut ScriptGroup> {
        match self.group.as_deref_mut() {
            Some(g) => Ok(g),
            None => Err(Failure::Failed(format!("{}: no group", self.name))),
        }
    }

    fn suite(&mut self) -> Outcome<CipherSuite> {
        Ok(self.group()?.suite())
    }

    fn nonce(&mut self, suite: CipherSuite) -> Bytes {
        let mut n = vec![0u8; suite.hash_len()];
        rand_core::Rng::fill_bytes(&mut self.rng, &mut n);
        n
    }

    /// Its signature key for `suite`'s scheme, drawn the first time.
    fn signer(&mut self, suite: CipherSuite) -> SignaturePrivateKey {
        let scheme = suite.signature_scheme();
        if let Some((_, k)) = self.signers.iter().find(|(s, _)| *s == scheme) {
            return k.clone();
        }
        let (k, _) = SignaturePrivateKey::generate(suite, &mut self.rng);
        self.signers.push((scheme, k.clone()));
        k
    }

    fn sig_pub(&mut self, suite: CipherSuite) -> Bytes {
        self.signer(suite).public_key().as_bytes().to_vec()
    }

    /// Fills what `spec` borrows; `tree` finds removed members (else our group's tree).
    fn owned(&mut self, spec: &ProposalSpec, suite: CipherSuite, group_id: &[u8], tree: Option<&[u8]>) -> Outcome<Owned> {
        let mut o = Owned { group_id: group_id.to_vec(), ..Owned::default() };
        match spec {
            ProposalSpec::ExternalPsk(_) | ProposalSpec::ResumptionPsk(_) => o.nonce = self.nonce(suite),
            ProposalSpec::GroupContextExtensions(e) | ProposalSpec::ReInit { extensions: e, .. } => {
                o.extensions = scripts::extensions_body(e)
            }
            ProposalSpec::Remove(identity) => {
                let leaf = match tree {
                    Some(t) => leaf_in_tree(t, identity),
                    None => self.leaf_of(identity)?,
                };
                o.leaf = leaf.ok_or_else(|| {
                    Failure::Failed(format!("{}: no member {:?}", self.name, String::from_utf8_lossy(identity)))
                })?;
            }
            ProposalSpec::Add(_) => {}
        }
        Ok(o)
    }

    fn leaf_of(&mut self, identity: &[u8]) -> Outcome<Option<u32>> {
        let tree = self.group()?.tree();
        Ok((0..tree.n_leaves()).find(|i| {
            tree.leaf_node(mls_nostd::tree_math::LeafIndex(*i))
                .is_some_and(|l| matches!(l.fields.credential, Credential::Basic { identity: id } if id == identity))
        }))
    }

    fn make_key_package(&mut self, suite: CipherSuite) -> Outcome<(Tx, Bytes)> {
        let signer = self.signer(suite);
        let params = KeyPackageParams {
            suite,
            credential: Credential::Basic { identity: self.name.as_bytes() },
            lifetime: lifetime(),
            leaf_extensions: Extensions::default(),
            extensions: Extensions::default(),
            supported_extensions: U16List::default(),
            supported_proposals: U16List::default(),
        };
        let mut out = vec![0u8; 4096];
        let (body, keys) = KeyPackage::generate(&params, &signer, &mut self.rng, &mut out).map_err(failed("KeyPackage"))?;
        let mut msg = KEY_PACKAGE_HEADER.to_vec();
        msg.extend_from_slice(body);
        self.key_packages.push(PendingKeyPackage { body: body.to_vec(), keys, suite });
        Ok((Tx(self.key_packages.len() - 1), msg))
    }

    /// Joins a fresh group slot from `welcome` with the KeyPackage `tx`;
    /// `psks` resolves PSKs (external, or an old group's resumption PSKs).
    fn join_slot(&self, tx: Tx, welcome: &[u8], tree: Option<&[u8]>, psks: &dyn PskStore) -> Outcome<Box<ScriptGroup>> {
        let kp = self.key_packages.get(tx.0).ok_or_else(|| Failure::Failed("no such KeyPackage".into()))?;
        // Made with the KeyPackage.
        let scheme = kp.suite.signature_scheme();
        let signer = self.signers.iter().find(|(s, _)| *s == scheme).map(|(_, k)| k);
        let params = JoinParams {
            executor: &mls_nostd::executor::Sequential,
            key_package: &kp.body,
            keys: &kp.keys,
            signer: signer.ok_or_else(|| Failure::Failed("no signature key of the KeyPackage's suite".into()))?,
            ratchet_tree: tree,
            psks,
            config: script_config(),
        };
        let mut group = new_group();
        let mut buf = vec![0u8; welcome.len()];
        group.join_in_memory(welcome, &params, &mut buf).map_err(failed("join"))?;
        Ok(group)
    }

    fn epoch_authenticator(&mut self) -> Outcome<Bytes> {
        Ok(self.group()?.epoch_authenticator().to_vec())
    }

    fn export_tree(group: &mut ScriptGroup) -> Outcome<Bytes> {
        let mut buf = vec![0u8; 256 * 1024];
        let mut w = Writer::new(&mut buf);
        group.export_tree(&mut w).map_err(failed("export tree"))?;
        Ok(w.written().to_vec())
    }

    /// Sends a proposal that `make` writes (in the handshake mode), and
    /// remembers it as its own.
    fn send_proposal(
        &mut self,
        make: impl FnOnce(
            &mut ScriptGroup,
            WireFormatPolicy,
            &mut SeededRng,
            &mut [u8],
        ) -> Result<Bytes, mls_nostd::group::CreateCommitError>,
    ) -> Outcome<Bytes> {
        let wf = wire_format(self.encrypt);
        let Self { group, rng, .. } = self;
        let group = group.as_deref_mut().ok_or_else(|| Failure::Failed("no group".into()))?;
        let mut out = vec![0u8; 64 * 1024];
        let msg = make(group, wf, rng, &mut out).map_err(failed("propose"))?;
        // Kept last among the pending proposals.
        let reference = group.pending_proposals().last().map(|p| p.reference);
        let reference = reference.ok_or_else(|| Failure::Failed("our proposal is not pending".into()))?;
        self.sent.sent(&msg);
        self.sent_refs.push((msg.clone(), reference));
        Ok(msg)
    }

    /// Forgets the proposals it sent (a new epoch or group).
    fn forget_sent(&mut self) {
        self.sent.clear();
        self.sent_refs.clear();
    }

    /// Processes the proposal messages it did not send itself; returns the
    /// references of all of `proposals`, in order.
    fn take_proposals(&mut self, proposals: &[Bytes]) -> Outcome<Vec<HashValue>> {
        let others: Vec<Bytes> = self.sent.others(proposals).into_iter().cloned().collect();
        let psks = core::mem::take(&mut self.external_psks);
        let result = (|| {
            let mut refs = Vec::new();
            for p in proposals {
                if !others.contains(p) {
                    let own = self.sent_refs.iter().find(|(m, _)| m == p).map(|(_, r)| *r);
                    refs.push(own.ok_or_else(|| Failure::Failed("no reference of our own proposal".into()))?);
                    continue;
                }
                let mut m = p.clone();
                match self.group()?.process_message_in_memory(&mut m, &ExternalPsks(&psks), now()) {
                    Ok(Received::Proposal { reference, .. }) => refs.push(reference),
                    Ok(other) => return Err(Failure::Failed(format!("expected a proposal, got {other:?}"))),
                    Err(e) => return Err(Failure::Failed(format!("proposal: {e:?}"))),
                }
            }
            Ok(refs)
        })();
        self.external_psks = psks;
        result
    }

    /// Commits `proposals` by value and every pending proposal in `group`,
    /// or, with `reinit`, that pending ReInit alone; `psks` resolves PSKs.
    /// Returns the Commit and the Welcome (staged).
    #[allow(clippy::too_many_arguments)]
    fn commit_in(
        group: &mut ScriptGroup,
        name: &str,
        signer_pub: &[u8],
        proposals: &[Proposal<'_>],
        reinit: Option<&HashValue>,
        psks: &dyn PskStore,
        force_path: bool,
        tree_in_welcome: bool,
        encrypt: bool,
        rng: &mut SeededRng,
    ) -> Outcome<(Bytes, Bytes)> {
        let suite = group.suite();
        let (mut m, mut w, mut gi) = (vec![0u8; 1024 * 1024], vec![0u8; 512 * 1024], vec![0u8; 512 * 1024]);
        let mut caps = [0u8; 8];
        let opts = CommitOptions {
            proposals,
            include_pending: reinit.is_none(),
            force_path,
            ratchet_tree_in_welcome: tree_in_welcome,
            wire_format: wire_format(encrypt),
            padding: PADDING,
            authenticated_data: &[],
            leaf: Some(leaf_template(signer_pub, name, suite, &mut caps)),
        };
        let bufs = CommitBuffers { message: &mut m, welcome: &mut w, group_info: &mut gi };
        let out = match reinit {
            None => group.commit_in_memory(&opts, psks, now(), rng, &Sequential, bufs).map_err(failed("commit"))?,
            Some(r) => group.commit_reinit_in_memory(r, &opts, psks, now(), rng, &Sequential, bufs).map_err(failed("commit_reinit"))?,
        };
        Ok((out.commit.to_vec(), out.welcome.map(<[u8]>::to_vec).unwrap_or_default()))
    }

    /// A one-member group `group_id` of `suite` whose GroupContext
    /// extensions are the list body `extensions`.
    fn create(&mut self, group_id: &[u8], suite: CipherSuite, extensions: &[u8]) -> Outcome<Box<ScriptGroup>> {
        let signer = self.signer(suite);
        let mut group = new_group();
        let mut caps = [0u8; 8];
        let params = CreateParams {
            suite,
            group_id,
            credential: Credential::Basic { identity: self.name.as_bytes() },
            lifetime: lifetime(),
            capabilities: default_capabilities(suite, &mut caps),
            extensions: Extensions::from_body(extensions).map_err(failed("extensions"))?,
            config: script_config(),
        };
        group.create(&params, &signer, &mut self.rng).map_err(failed("create"))?;
        Ok(group)
    }

    /// A new group `group_id` of `suite` with `extensions`, whose first
    /// Commit adds `key_packages` and injects the resumption PSK of `old`
    /// (usage `usage`): a ReInit's new group or a branch (§11.2, §11.3).
    #[allow(clippy::too_many_arguments)]
    fn resume(
        &mut self,
        old: &ScriptGroup,
        usage: ResumptionPskUsage,
        group_id: &[u8],
        suite: CipherSuite,
        extensions: &[u8],
        key_packages: &[Bytes],
        force_path: bool,
        external_tree: bool,
    ) -> Outcome<(Box<ScriptGroup>, Welcomed)> {
        let mut group = self.create(group_id, suite, extensions)?;
        let nonce = self.nonce(suite);
        let old_id = old.group_id().to_vec();
        let mut proposals = vec![Proposal::PreSharedKey(PreSharedKey {
            psk: PreSharedKeyId {
                psk: Psk::Resumption { usage, psk_group_id: &old_id, psk_epoch: old.epoch() },
                psk_nonce: &nonce,
            },
        })];
        for kp in key_packages {
            let key_package = KeyPackage::decode_exact(key_package_body(kp)?).map_err(failed("decode KeyPackage"))?;
            proposals.push(Proposal::Add(Add { key_package }));
        }
        let sig_pub = self.sig_pub(suite);
        let (_, welcome) =
            Self::commit_in(&mut group, &self.name, &sig_pub, &proposals, None, old, force_path, !external_tree, self.encrypt, &mut self.rng)?;
        group.merge_staged_commit_in_memory().map_err(failed("merge"))?;
        let ratchet_tree = if external_tree { Self::export_tree(&mut group)? } else { Vec::new() };
        let epoch_authenticator = group.epoch_authenticator().to_vec();
        Ok((group, Welcomed { welcome, ratchet_tree, epoch_authenticator }))
    }

    /// Signs `content` as a PublicMessage outside the group (an external
    /// sender or a new member) with the GroupContext of `gi`.
    fn sign_outside(
        gi: &mls_nostd::messages::group_info::GroupInfo<'_>,
        signer: &SignaturePrivateKey,
        content: &FramedContent<'_>,
    ) -> Outcome<Bytes> {
        use mls_nostd::codec::Encode;
        let mut gc = vec![0u8; 64 * 1024];
        let n = {
            let mut w = Writer::new(&mut gc);
            gi.tbs.group_context.encode(&mut w).map_err(failed("GroupContext"))?;
            w.len()
        };
        let gc = EncodedGroupContext::decode(&gc[..n]).map_err(failed("GroupContext"))?;
        let mut out = vec![0u8; 64 * 1024];
        let n = mls_nostd::messages::public_message::sign(&gc, signer, content, &mut out)
            .and_then(|s| s.finish(None, None).map(<[u8]>::len))
            .map_err(failed("sign"))?;
        out.truncate(n);
        Ok(out)
    }
}

impl scripts::Client for OursClient {
    fn library(&self) -> Library {
        Library::Ours
    }

    fn create_group(&mut self, group_id: &[u8], suite: u16, encrypt: bool) -> Outcome<()> {
        let group = self.create(group_id, suite_of(suite)?, &[])?;
        self.group = Some(group);
        self.encrypt = encrypt;
        Ok(())
    }

    fn create_key_package(&mut self, suite: u16) -> Outcome<(Tx, Bytes)> {
        let suite = suite_of(suite)?;
        self.make_key_package(suite)
    }

    fn join_group(&mut self, tx: Tx, welcome: &[u8], encrypt: bool, ratchet_tree: Option<&[u8]>) -> Outcome<Bytes> {
        let group = self.join_slot(tx, welcome, ratchet_tree, &ExternalPsks(&self.external_psks))?;
        self.group = Some(group);
        self.encrypt = encrypt;
        self.forget_sent();
        self.epoch_authenticator()
    }

    fn external_join(
        &mut self,
        group_info: &[u8],
        ratchet_tree: Option<&[u8]>,
        encrypt: bool,
        remove_prior: bool,
        psks: &[(Bytes, Bytes)],
    ) -> Outcome<(Bytes, Bytes)> {
        let gi = decode_group_info(group_info)?;
        let suite = suite_of(gi.tbs.group_context.cipher_suite)?;
        // Each PSK by its ID with a fresh nonce, in the order given.
        let nonces: Vec<Bytes> = psks.iter().map(|_| self.nonce(suite)).collect();
        let psk_ids: Vec<PreSharedKeyId<'_>> = psks
            .iter()
            .zip(&nonces)
            .map(|((id, _), nonce)| PreSharedKeyId { psk: Psk::External { psk_id: id }, psk_nonce: nonce })
            .collect();
        let resync = match remove_prior {
            false => None,
            true => {
                let tree = tree_of(&gi, ratchet_tree).ok_or_else(|| Failure::Failed("no ratchet tree".into()))?;
                let leaf = leaf_in_tree(tree, self.name.as_bytes())
                    .ok_or_else(|| Failure::Failed(format!("{}: no prior leaf to remove", self.name)))?;
                Some(mls_nostd::tree_math::LeafIndex(leaf))
            }
        };
        let mut caps = [0u8; 8];
        let signer = self.signer(suite);
        let sig_pub = signer.public_key().as_bytes().to_vec();
        let template = leaf_template(&sig_pub, &self.name, suite, &mut caps);
        let mut group = new_group();
        let mut out = vec![0u8; 1024 * 1024];
        let n = group
            .join_external(
                group_info,
                ratchet_tree,
                &template,
                &signer,
                resync,
                &psk_ids,
                &ExternalPsks(psks),
                script_config(),
                &mut self.rng,
                &Sequential,
                &mut out,
            )
            .map_err(failed("join_external"))?
            .len();
        out.truncate(n);
        self.group = Some(group);
        self.encrypt = encrypt;
        self.forget_sent();
        Ok((out, self.epoch_authenticator()?))
    }

    fn group_info(&mut self, external_tree: bool) -> Outcome<(Bytes, Bytes)> {
        let group = self.group()?;
        let (mut out, mut scratch) = (vec![0u8; 512 * 1024], vec![0u8; 512 * 1024]);
        let gi = group.group_info(!external_tree, &mut out, &mut scratch).map_err(failed("group_info"))?.to_vec();
        let tree = if external_tree { Self::export_tree(group)? } else { Vec::new() };
        Ok((gi, tree))
    }

    fn store_psk(&mut self, id: &[u8], secret: &[u8]) -> Outcome<()> {
        self.external_psks.push((id.to_vec(), secret.to_vec()));
        Ok(())
    }

    fn propose(&mut self, spec: &ProposalSpec) -> Outcome<Bytes> {
        let suite = self.suite()?;
        let group_id = self.group()?.group_id().to_vec();
        let owned = self.owned(spec, suite, &group_id, None)?;
        let p = proposal(spec, &owned)?;
        self.send_proposal(|group, wf, rng, out| group.propose(&p, wf, rng, out).map(<[u8]>::to_vec))
    }

    fn propose_update(&mut self) -> Outcome<Bytes> {
        let suite = self.suite()?;
        let (sig_pub, name) = (self.sig_pub(suite), self.name.clone());
        let mut caps = [0u8; 8];
        let template = leaf_template(&sig_pub, &name, suite, &mut caps);
        self.send_proposal(|group, wf, rng, out| group.propose_update(&template, wf, rng, out).map(<[u8]>::to_vec))
    }

    fn commit(&mut self, by_reference: &[Bytes], by_value: &[ProposalSpec], force_path: bool, external_tree: bool) -> Outcome<CommitOut> {
        self.take_proposals(by_reference)?;
        let suite = self.suite()?;
        let group_id = self.group()?.group_id().to_vec();
        let owned = by_value.iter().map(|s| self.owned(s, suite, &group_id, None)).collect::<Outcome<Vec<_>>>()?;
        let proposals = by_value.iter().zip(&owned).map(|(s, o)| proposal(s, o)).collect::<Outcome<Vec<_>>>()?;
        let sig_pub = self.sig_pub(suite);
        let Self { group, rng, name, encrypt, external_psks, .. } = self;
        let group = group.as_deref_mut().ok_or_else(|| Failure::Failed("no group".into()))?;
        let psks = ExternalPsks(external_psks);
        let (commit, welcome) =
            Self::commit_in(group, name, &sig_pub, &proposals, None, &psks, force_path, !external_tree, *encrypt, rng)?;
        let mut ratchet_tree = Vec::new();
        if external_tree {
            group.merge_staged_commit_in_memory().map_err(failed("merge"))?;
            ratchet_tree = Self::export_tree(group)?;
            self.merged_early = Some(group.epoch_authenticator().to_vec());
        }
        Ok(CommitOut { commit, welcome, ratchet_tree })
    }

    fn handle_pending_commit(&mut self) -> Outcome<Bytes> {
        self.forget_sent();
        if let Some(ea) = self.merged_early.take() {
            return Ok(ea);
        }
        self.group()?.merge_staged_commit_in_memory().map_err(failed("merge"))?;
        self.epoch_authenticator()
    }

    fn handle_commit(&mut self, proposals: &[Bytes], commit: &[u8]) -> Outcome<Bytes> {
        self.take_proposals(proposals)?;
        let mut m = commit.to_vec();
        let Self { group, external_psks, .. } = self;
        let group = group.as_deref_mut().ok_or_else(|| Failure::Failed("no group".into()))?;
        match group.process_message_in_memory(&mut m, &ExternalPsks(external_psks), now()) {
            Ok(Received::Commit(_)) => {}
            Ok(other) => return Err(Failure::Failed(format!("expected a Commit, got {other:?}"))),
            Err(e) => return Err(Failure::Failed(format!("process commit: {e:?}"))),
        }
        group.merge_staged_commit_in_memory().map_err(failed("merge"))?;
        self.forget_sent();
        self.epoch_authenticator()
    }

    fn protect(&mut self, authenticated_data: &[u8], plaintext: &[u8]) -> Outcome<Bytes> {
        let Self { group, rng, .. } = self;
        let group = group.as_deref_mut().ok_or_else(|| Failure::Failed("no group".into()))?;
        let mut out = vec![0u8; plaintext.len() + authenticated_data.len() + 1024];
        let msg = group
            .protect_application_in_memory(plaintext, authenticated_data, PADDING, rng, &mut out)
            .map_err(failed("protect"))?;
        Ok(msg.to_vec())
    }

    fn unprotect(&mut self, ciphertext: &[u8]) -> Outcome<(Bytes, Bytes)> {
        let mut m = ciphertext.to_vec();
        let Self { group, external_psks, .. } = self;
        let group = group.as_deref_mut().ok_or_else(|| Failure::Failed("no group".into()))?;
        match group.process_message_in_memory(&mut m, &ExternalPsks(external_psks), now()) {
            Ok(Received::Application { data, authenticated_data, .. }) => Ok((authenticated_data.to_vec(), data.to_vec())),
            Ok(other) => Err(Failure::Failed(format!("expected application data, got {other:?}"))),
            Err(e) => Err(Failure::Failed(format!("unprotect: {e:?}"))),
        }
    }

    fn reinit_commit(&mut self, proposals: &[Bytes]) -> Outcome<Bytes> {
        let refs = self.take_proposals(proposals)?;
        let [reference] = refs[..] else {
            return Err(Failure::Failed(format!("a ReInit Commit covers one proposal, not {}", refs.len())));
        };
        let suite = self.suite()?;
        let sig_pub = self.sig_pub(suite);
        let Self { group, rng, name, encrypt, external_psks, .. } = self;
        let group = group.as_deref_mut().ok_or_else(|| Failure::Failed("no group".into()))?;
        // As the runner asks: no proposals by value, no forced path.
        let psks = ExternalPsks(external_psks);
        let (commit, _) = Self::commit_in(group, name, &sig_pub, &[], Some(&reference), &psks, false, false, *encrypt, rng)?;
        Ok(commit)
    }

    fn handle_pending_reinit_commit(&mut self) -> Outcome<(Bytes, Bytes)> {
        let ea = self.handle_pending_commit()?;
        self.start_reinit(ea)
    }

    fn handle_reinit_commit(&mut self, proposals: &[Bytes], commit: &[u8]) -> Outcome<(Bytes, Bytes)> {
        let ea = self.handle_commit(proposals, commit)?;
        self.start_reinit(ea)
    }

    fn reinit_welcome(&mut self, key_packages: &[Bytes], force_path: bool, external_tree: bool) -> Outcome<Welcomed> {
        let (old, _) = self.reinit.take().ok_or_else(|| Failure::Failed("no ReInit to welcome into".into()))?;
        let params = old.reinit().cloned().ok_or_else(|| Failure::Failed("the old group ended without a ReInit".into()))?;
        let suite = suite_of(params.cipher_suite)?;
        let (group, w) = self.resume(
            &old,
            ResumptionPskUsage::Reinit,
            params.group_id.as_slice(),
            suite,
            params.extensions.as_slice(),
            key_packages,
            force_path,
            external_tree,
        )?;
        self.group = Some(group);
        self.forget_sent();
        Ok(w)
    }

    fn handle_reinit_welcome(&mut self, welcome: &[u8], ratchet_tree: Option<&[u8]>) -> Outcome<Bytes> {
        let (old, tx) = self.reinit.take().ok_or_else(|| Failure::Failed("no ReInit to join".into()))?;
        let group = self.join_slot(tx, welcome, ratchet_tree, &*old)?;
        self.group = Some(group);
        self.forget_sent();
        self.epoch_authenticator()
    }

    fn create_branch(
        &mut self,
        group_id: &[u8],
        extensions: &[Extension],
        key_packages: &[Bytes],
        force_path: bool,
        external_tree: bool,
    ) -> Outcome<Welcomed> {
        let old = self.group.take().ok_or_else(|| Failure::Failed("no group to branch".into()))?;
        let suite = old.suite();
        let (group, w) = self.resume(
            &old,
            ResumptionPskUsage::Branch,
            group_id,
            suite,
            &scripts::extensions_body(extensions),
            key_packages,
            force_path,
            external_tree,
        )?;
        self.group = Some(group);
        self.forget_sent();
        Ok(w)
    }

    fn handle_branch(&mut self, tx: Tx, welcome: &[u8], ratchet_tree: Option<&[u8]>) -> Outcome<Bytes> {
        let old = self.group.take().ok_or_else(|| Failure::Failed("no group to branch from".into()))?;
        match self.join_slot(tx, welcome, ratchet_tree, &*old) {
            Ok(g) => self.group = Some(g),
            Err(e) => {
                self.group = Some(old);
                return Err(e);
            }
        }
        self.forget_sent();
        self.epoch_authenticator()
    }

    fn new_member_add_proposal(&mut self, group_info: &[u8]) -> Outcome<(Tx, Bytes)> {
        let gi = decode_group_info(group_info)?;
        let suite = suite_of(gi.tbs.group_context.cipher_suite)?;
        let (tx, kp) = self.make_key_package(suite)?;
        let key_package = KeyPackage::decode_exact(key_package_body(&kp)?).map_err(failed("KeyPackage"))?;
        let content = FramedContent {
            group_id: gi.tbs.group_context.group_id,
            epoch: gi.tbs.group_context.epoch,
            sender: Sender::NewMemberProposal,
            authenticated_data: &[],
            content: Content::Proposal(Proposal::Add(Add { key_package })),
        };
        let signer = self.signer(suite);
        let msg = Self::sign_outside(&gi, &signer, &content)?;
        Ok((tx, msg))
    }

    fn create_external_signer(&mut self, suite: u16) -> Outcome<Bytes> {
        let (signer, public) = SignaturePrivateKey::generate(suite_of(suite)?, &mut self.rng);
        let entry = scripts::external_sender(public.as_bytes(), self.name.as_bytes());
        self.external_signer = Some(signer);
        Ok(entry)
    }

    fn add_external_signer(&mut self, external_sender: &[u8]) -> Outcome<Bytes> {
        let list = scripts::decode_extensions_body(self.group()?.extensions().body())
            .ok_or_else(|| Failure::Failed("our extensions".into()))?;
        let list = scripts::with_external_sender(&list, external_sender)
            .ok_or_else(|| Failure::Failed("malformed external_senders".into()))?;
        self.propose(&ProposalSpec::GroupContextExtensions(list))
    }

    fn external_signer_proposal(&mut self, group_info: &[u8], ratchet_tree: &[u8], spec: &ProposalSpec) -> Outcome<Bytes> {
        let signer = self.external_signer.clone().ok_or_else(|| Failure::Failed("not an external signer".into()))?;
        let gi = decode_group_info(group_info)?;
        let suite = suite_of(gi.tbs.group_context.cipher_suite)?;
        let ext = scripts::decode_extensions_body(gi.tbs.group_context.extensions.body())
            .ok_or_else(|| Failure::Failed("GroupContext extensions".into()))?;
        let index = scripts::external_sender_index(&ext, signer.public_key().as_bytes())
            .ok_or_else(|| Failure::Failed("not among the group's external senders".into()))?;
        let tree = tree_of(&gi, (!ratchet_tree.is_empty()).then_some(ratchet_tree));
        let owned = self.owned(spec, suite, gi.tbs.group_context.group_id, Some(tree.unwrap_or_default()))?;
        let content = FramedContent {
            group_id: gi.tbs.group_context.group_id,
            epoch: gi.tbs.group_context.epoch,
            sender: Sender::External(index),
            authenticated_data: &[],
            content: Content::Proposal(proposal(spec, &owned)?),
        };
        Self::sign_outside(&gi, &signer, &content)
    }
}

impl OursClient {
    /// After a ReInit Commit merged: keeps the old group for its PSK and
    /// makes a KeyPackage in the new suite.
    fn start_reinit(&mut self, ea: Bytes) -> Outcome<(Bytes, Bytes)> {
        let old = self.group.take().ok_or_else(|| Failure::Failed("no group".into()))?;
        let Some(code) = old.reinit().map(|p| p.cipher_suite) else {
            self.group = Some(old);
            return Err(Failure::Failed("the Commit held no ReInit".into()));
        };
        let suite = suite_of(code)?;
        let (tx, kp) = self.make_key_package(suite)?;
        self.reinit = Some((old, tx));
        Ok((kp, ea))
    }
}
