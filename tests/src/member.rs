//! A test member driven through the public API (shared by the group tests):
//! key packages, create, add, commit, receive, send, and agreement checks.
#![allow(missing_docs)]
use mls_nostd::codec::Decode;
use mls_nostd::credential::Credential;
use mls_nostd::crypto::signature::SignaturePrivateKey;
use mls_nostd::crypto::CipherSuite;
use mls_nostd::executor::Sequential;
use mls_nostd::extensions::{Extensions, U16List};
use mls_nostd::group::{
    default_capabilities, CommitBuffers, CommitOptions, CreateParams, Group, GroupConfig, JoinParams, Received,
    WireFormatPolicy,
};
use mls_nostd::key_package::{KeyPackage, KeyPackageParams, KeyPackagePrivateKeys};
use mls_nostd::leaf_node::Lifetime;
use mls_nostd::messages::proposal::{Add, Proposal};
use mls_nostd::psk::NoPsks;
use mls_nostd::ratchet_tree::treekem::LeafTemplate;
use mls_nostd::tree_math::LeafIndex;
use crate::TestRng;

pub type G = Group<16, { 16 * 512 }, 64, 8192>;
pub const NOW: u64 = 1_800_000_000;
pub const LIFETIME: Lifetime = Lifetime { not_before: NOW - 10, not_after: NOW + 86_400 };

/// A member of a group of any capacity ([`Member`]: the 16-leaf default),
/// its secret tree holding `E` secrets at once (by default one per leaf).
pub struct MemberOf<const N: usize, const A: usize, const K: usize, const P: usize, const E: usize = N> {
    pub name: &'static str,
    pub group: Box<Group<N, A, K, P, SignaturePrivateKey, E>>,
    pub signer: SignaturePrivateKey,
    pub rng: TestRng,
}

pub fn buffers() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    (vec![0u8; 256 * 1024], vec![0u8; 64 * 1024], vec![0u8; 64 * 1024])
}

/// The 16-leaf member most tests use.
pub type Member = MemberOf<16, { 16 * 512 }, 64, 8192>;

impl<const N: usize, const A: usize, const K: usize, const P: usize, const E: usize> MemberOf<N, A, K, P, E> {
    /// A member with an Ed25519 key (suites 1 and 3).
    pub fn new(name: &'static str, seed: u64) -> Self {
        Self::with_suite(name, seed, CipherSuite::X25519Aes128GcmSha256Ed25519)
    }

    /// A member with a signature key of `suite`'s scheme.
    pub fn with_suite(name: &'static str, seed: u64, suite: CipherSuite) -> Self {
        let mut s = [0u8; 32];
        s[..8].copy_from_slice(&seed.to_be_bytes());
        Self { name, group: Box::new(Group::EMPTY), signer: crate::signer(suite, &s), rng: TestRng(seed) }
    }

    pub fn key_package(&mut self, suite: CipherSuite) -> (Vec<u8>, KeyPackagePrivateKeys) {
        let params = KeyPackageParams {
            suite,
            credential: Credential::Basic { identity: self.name.as_bytes() },
            lifetime: LIFETIME,
            leaf_extensions: Extensions::default(),
            extensions: Extensions::default(),
            supported_extensions: U16List::default(),
            supported_proposals: U16List::default(),
        };
        let mut out = vec![0u8; 2048];
        let (bytes, keys) = KeyPackage::generate(&params, &self.signer, &mut self.rng, &mut out).unwrap();
        (bytes.to_vec(), keys)
    }

    /// Creates a group of which we are the only member.
    pub fn create(&mut self, suite: CipherSuite, group_id: &'static [u8], extensions: Extensions<'_>) {
        let mut caps = [0u8; 8];
        let params = CreateParams {
            suite,
            group_id,
            credential: Credential::Basic { identity: self.name.as_bytes() },
            lifetime: LIFETIME,
            capabilities: default_capabilities(suite, &mut caps),
            extensions,
            config: GroupConfig::default(),
        };
        let signer = self.signer.clone();
        self.group.create(&params, &signer, &mut self.rng).unwrap();
    }

    /// Adds `other` (a Commit without path, the tree in the Welcome); `other` joins.
    pub fn add(&mut self, other: &mut Self, suite: CipherSuite) {
        let (kp, keys) = other.key_package(suite);
        let add = Proposal::Add(Add { key_package: KeyPackage::decode_exact(&kp).unwrap() });
        let (_, welcome) = self.commit(&[add], false, WireFormatPolicy::Public);
        other.join(&welcome.unwrap(), &kp, &keys);
    }

    /// Adds `other` (a Commit without path, merged); every one of `members`
    /// processes the Commit and `other` joins from its Welcome.
    pub fn add_seen_by(&mut self, other: &mut Self, members: &mut [&mut Self], suite: CipherSuite) {
        let (kp, keys) = other.key_package(suite);
        let add = Proposal::Add(Add { key_package: KeyPackage::decode_exact(&kp).unwrap() });
        let (commit, welcome) = self.commit(&[add], false, WireFormatPolicy::Public);
        for m in members.iter_mut() {
            m.receive_commit(&commit);
        }
        other.join(&welcome.unwrap(), &kp, &keys);
    }

    pub fn template(&self) -> LeafTemplate<'static> {
        // Basic credential of our name, default capabilities (leaked for the test's lifetime).
        let caps: &'static mut [u8; 8] = Box::leak(Box::new([0u8; 8]));
        let sk: &'static [u8] = Box::leak(self.signer.public_key().as_bytes().to_vec().into_boxed_slice());
        LeafTemplate {
            signature_key: sk,
            credential: Credential::Basic { identity: self.name.as_bytes() },
            capabilities: default_capabilities(self.group.suite(), caps),
            extensions: Extensions::default(),
        }
    }

    /// Commits `proposals` (plus pending ones), merges, returns (commit, welcome).
    pub fn commit(&mut self, proposals: &[Proposal<'_>], force_path: bool, wf: WireFormatPolicy) -> (Vec<u8>, Option<Vec<u8>>) {
        let (mut m, mut w, mut gi) = buffers();
        let template = self.template();
        let opts = CommitOptions {
            proposals,
            include_pending: true,
            force_path,
            ratchet_tree_in_welcome: true,
            wire_format: wf,
            padding: 16,
            authenticated_data: b"",
            leaf: Some(template),
        };
        let bufs = CommitBuffers { message: &mut m, welcome: &mut w, group_info: &mut gi };
        let out = self.group.commit_in_memory(&opts, &NoPsks, NOW, &mut self.rng, &Sequential, bufs).unwrap_or_else(|e| panic!("{}: commit: {e:?}", self.name));
        let commit = out.commit.to_vec();
        let welcome = out.welcome.map(|w| w.to_vec());
        self.group.merge_staged_commit_in_memory().unwrap();
        (commit, welcome)
    }

    pub fn receive_commit(&mut self, commit: &[u8]) {
        let mut msg = commit.to_vec();
        match self.group.process_message_in_memory(&mut msg, &NoPsks, NOW) {
            Ok(Received::Commit(_)) => self.group.merge_staged_commit_in_memory().unwrap(),
            other => panic!("{}: expected a commit: {other:?}", self.name),
        }
    }

    pub fn join(&mut self, welcome: &[u8], kp: &[u8], keys: &KeyPackagePrivateKeys) {
        let params = JoinParams {
            executor: &mls_nostd::executor::Sequential,
            key_package: kp,
            keys,
            signer: &self.signer,
            ratchet_tree: None,
            psks: &NoPsks,
            config: GroupConfig::default(),
        };
        let mut buf = vec![0u8; welcome.len()];
        self.group.join_in_memory(welcome, &params, &mut buf).unwrap_or_else(|e| panic!("{}: join: {e:?}", self.name));
    }

    pub fn send(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; data.len() + 512];
        let n = self.group.protect_application_in_memory(data, b"ad", 8, &mut self.rng, &mut out).unwrap().len();
        out.truncate(n);
        out
    }

    pub fn receive_app(&mut self, msg: &[u8]) -> (LeafIndex, Vec<u8>) {
        let mut m = msg.to_vec();
        match self.group.process_message_in_memory(&mut m, &NoPsks, NOW).unwrap() {
            Received::Application { sender, data, authenticated_data } => {
                assert_eq!(authenticated_data, b"ad");
                (sender, data.to_vec())
            }
            other => panic!("{}: expected application data: {other:?}", self.name),
        }
    }
}

pub fn agree<const N: usize, const A: usize, const K: usize, const P: usize, const E: usize>(members: &[&MemberOf<N, A, K, P, E>]) {
    let first = members[0];
    for m in members {
        assert_eq!(m.group.epoch(), first.group.epoch(), "{} epoch", m.name);
        assert_eq!(m.group.epoch_authenticator(), first.group.epoch_authenticator(), "{} authenticator", m.name);
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        m.group.export_secret(b"test", b"ctx", &mut a).unwrap();
        first.group.export_secret(b"test", b"ctx", &mut b).unwrap();
        assert_eq!(a, b);
    }
}

