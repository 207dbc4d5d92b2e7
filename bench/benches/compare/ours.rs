//! Our member: an mls-nostd `Group` in a `Box` (allocated in place), the
//! rayon executor where the API takes one, buffers allocated once.

use super::{GROUP_ID, Lib, Member};
use mls_bench::{SeededRng, boxed_group, now};
use mls_nostd::codec::Decode;
use mls_nostd::credential::Credential;
use mls_nostd::crypto::CipherSuite;
use mls_nostd::crypto::signature::SignaturePrivateKey;
use mls_nostd::extensions::{Extensions, U16List};
use mls_nostd::group::{
    CommitBuffers, CommitOptions, CreateParams, Group, GroupConfig, JoinParams, Received, WireFormatPolicy,
    default_capabilities,
};
use mls_nostd::key_package::{KeyPackage, KeyPackageParams, KeyPackagePrivateKeys};
use mls_nostd::leaf_node::Lifetime;
use mls_nostd::messages::proposal::{Add, Proposal};
use mls_nostd::psk::NoPsks;
use mls_nostd::ratchet_tree::treekem::LeafTemplate;
use mls_nostd::tree_math::{NodeIndex, node_width};
use platform_std::ThreadExecutor;

/// Cipher suite 3.
pub const SUITE: CipherSuite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;

/// mls-nostd with room for `N` leaves and `ARENA` bytes of leaf encodings.
pub struct Ours<const N: usize, const ARENA: usize>;

/// A member of ours.
pub struct OursMember<const N: usize, const ARENA: usize> {
    name: Vec<u8>,
    signer: SignaturePrivateKey,
    sig_pub: Vec<u8>,
    rng: SeededRng,
    /// Allocated at the first create or join (members that only publish a
    /// KeyPackage need none).
    slot: Option<Box<Group<N, ARENA, 64, 4096>>>,
    key_package: Option<(Vec<u8>, KeyPackagePrivateKeys)>,
    message: Vec<u8>,
    welcome: Vec<u8>,
    group_info: Vec<u8>,
    join_buf: Vec<u8>,
}

impl<const N: usize, const ARENA: usize> Lib for Ours<N, ARENA> {
    const NAME: &'static str = "ours";
    type M = OursMember<N, ARENA>;

    fn member(i: usize) -> Self::M {
        let mut rng = SeededRng(0x6f75_7273 ^ ((i as u64) << 20));
        let mut seed = [0u8; 32];
        rand_core::Rng::fill_bytes(&mut rng, &mut seed);
        let signer = SignaturePrivateKey::from_slice(SUITE, &seed).expect("an Ed25519 seed");
        let sig_pub = signer.public_key().as_bytes().to_vec();
        OursMember {
            name: format!("member-{i}").into_bytes(),
            signer,
            sig_pub,
            rng,
            slot: None,
            key_package: None,
            message: Vec::new(),
            welcome: Vec::new(),
            group_info: Vec::new(),
            join_buf: Vec::new(),
        }
    }
}

fn lifetime() -> Lifetime {
    let t = now();
    Lifetime { not_before: t - 3600, not_after: t + 30 * 86_400 }
}

impl<const N: usize, const ARENA: usize> OursMember<N, ARENA> {
    /// Sizes the output buffers for a group of `n` members (once).
    fn buffers(&mut self, n: usize) {
        let (m, w, g) = (n * 1024 + (256 << 10), n * 1024 + (64 << 10), n * 512 + (64 << 10));
        if self.message.len() < m {
            self.message = vec![0; m];
            self.welcome = vec![0; w];
            self.group_info = vec![0; g];
        }
    }

    /// The group slot, allocated in place on first use.
    fn group(&mut self) -> &mut Group<N, ARENA, 64, 4096> {
        self.slot.get_or_insert_with(boxed_group)
    }

    /// Members of the current group (leaves, blanks included).
    fn members(&mut self) -> usize {
        self.group().tree().n_leaves() as usize
    }

    fn commit(&mut self, adds: &[Proposal<'_>], path: bool) -> (Vec<u8>, Vec<u8>) {
        let mut caps = [0u8; 8];
        let Self { name, signer: _, sig_pub, rng, slot, message, welcome, group_info, .. } = self;
        let group = slot.get_or_insert_with(boxed_group);
        let template = LeafTemplate {
            signature_key: sig_pub,
            credential: Credential::Basic { identity: name },
            capabilities: default_capabilities(SUITE, &mut caps),
            extensions: Extensions::default(),
        };
        let opts = CommitOptions {
            proposals: adds,
            include_pending: false,
            force_path: path,
            ratchet_tree_in_welcome: true,
            wire_format: WireFormatPolicy::Public,
            padding: 0,
            authenticated_data: &[],
            leaf: Some(template),
        };
        let bufs = CommitBuffers { message, welcome, group_info };
        let out = group.commit_in_memory(&opts, &NoPsks, now(), rng, &ThreadExecutor, bufs).expect("ours: commit");
        (out.commit.to_vec(), out.welcome.map(<[u8]>::to_vec).unwrap_or_default())
    }
}

impl<const N: usize, const ARENA: usize> Member for OursMember<N, ARENA> {
    fn key_package(&mut self) -> Vec<u8> {
        let params = KeyPackageParams {
            suite: SUITE,
            credential: Credential::Basic { identity: &self.name },
            lifetime: lifetime(),
            leaf_extensions: Extensions::default(),
            extensions: Extensions::default(),
            supported_extensions: U16List::default(),
            supported_proposals: U16List::default(),
        };
        let mut out = vec![0u8; 2048];
        let (bytes, keys) = KeyPackage::generate(&params, &self.signer, &mut self.rng, &mut out).expect("ours: KeyPackage");
        let bytes = bytes.to_vec();
        self.key_package = Some((bytes.clone(), keys));
        bytes
    }

    fn create(&mut self) {
        let mut caps = [0u8; 8];
        let params = CreateParams {
            suite: SUITE,
            group_id: GROUP_ID,
            credential: Credential::Basic { identity: &self.name },
            lifetime: lifetime(),
            capabilities: default_capabilities(SUITE, &mut caps),
            extensions: Extensions::default(),
            config: GroupConfig::default(),
        };
        self.slot.get_or_insert_with(boxed_group).create(&params, &self.signer, &mut self.rng).expect("ours: create");
    }

    fn commit_add(&mut self, kps: &[Vec<u8>], path: bool) -> (Vec<u8>, Vec<u8>) {
        let n = self.members() + kps.len();
        self.buffers(n);
        let adds: Vec<Proposal<'_>> = kps
            .iter()
            .map(|k| Proposal::Add(Add { key_package: KeyPackage::decode_exact(k).expect("ours: a KeyPackage") }))
            .collect();
        self.commit(&adds, path)
    }

    fn commit_update(&mut self) -> Vec<u8> {
        let n = self.members();
        self.buffers(n);
        self.commit(&[], true).0
    }

    fn merge(&mut self) {
        self.group().merge_staged_commit_in_memory().expect("ours: merge");
    }

    fn discard(&mut self) {
        self.group().discard_staged_commit();
    }

    fn join(&mut self, welcome: &[u8]) {
        let (kp, keys) = self.key_package.as_ref().expect("ours: a KeyPackage to join with");
        if self.join_buf.len() < welcome.len() {
            self.join_buf = vec![0; welcome.len()];
        }
        let params = JoinParams {
            executor: &ThreadExecutor,
            key_package: kp,
            keys,
            signer: &self.signer,
            ratchet_tree: None,
            psks: &NoPsks,
            config: GroupConfig::default(),
        };
        self.slot.get_or_insert_with(boxed_group).join_in_memory(welcome, &params, &mut self.join_buf).expect("ours: join");
    }

    fn leave(&mut self) {
        // A fresh empty slot, allocated here (outside the timed join): `join`
        // refuses a slot that holds a group (`SlotInUse`).
        self.slot = Some(boxed_group());
    }

    fn process(&mut self, commit: &mut [u8]) {
        match self.slot.get_or_insert_with(boxed_group).process_message_in_memory(commit, &NoPsks, now()) {
            Ok(Received::Commit(_)) => {}
            other => panic!("ours: process: {other:?}"),
        }
        self.group().merge_staged_commit_in_memory().expect("ours: merge");
    }

    fn protect(&mut self, data: &[u8]) -> Vec<u8> {
        if self.message.len() < data.len() + 1024 {
            self.message = vec![0; data.len() + 1024];
        }
        self.slot.get_or_insert_with(boxed_group).protect_application_in_memory(data, &[], 0, &mut self.rng, &mut self.message).expect("ours: protect").to_vec()
    }

    fn unprotect(&mut self, message: &mut [u8]) -> usize {
        match self.slot.get_or_insert_with(boxed_group).process_message_in_memory(message, &NoPsks, now()) {
            Ok(Received::Application { data, .. }) => data.len(),
            other => panic!("ours: unprotect: {other:?}"),
        }
    }

    fn epoch_authenticator(&self) -> Vec<u8> {
        self.slot.as_ref().expect("ours: a group").epoch_authenticator().to_vec()
    }

    fn blanks_and_unmerged(&mut self) -> Option<(usize, usize)> {
        let tree = self.group().tree_slices_for_testing();
        let width = node_width(tree.n_leaves()).unwrap_or(0);
        let nodes = (0..width).map(NodeIndex);
        let blanks = nodes.clone().filter(|&x| tree.encryption_key(x).is_none()).count();
        let unmerged = nodes.filter(|x| x.0 % 2 == 1).map(|x| tree.unmerged_leaves(x).count()).sum();
        Some((blanks, unmerged))
    }
}

/// Bytes of one of our group slots of this capacity.
pub fn slot_bytes<const N: usize, const ARENA: usize>() -> usize {
    std::mem::size_of::<Group<N, ARENA, 64, 4096>>()
}
