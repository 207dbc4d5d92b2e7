//! The member scenario, run on the host at build time.
//!
//! Host members Alice, Bob, Carol and Dave (full groups), passive members
//! (KeyPackages only) and the device (simulated with the firmware's own
//! [`Device`] and seed) go through:
//!
//! 1. the device generates its KeyPackage;
//! 2. Alice adds everyone in one Commit; the device joins from the Welcome;
//! 3. Bob adds Erin (Commit without path);
//! 4. Carol updates (empty Commit with path, PrivateMessage);
//! 5. Dave proposes removing Erin; Alice commits it by reference;
//! 6. Alice sends 1 KiB and Dave a short message to the device;
//! 7. Bob proposes removing a member; the device commits it by reference
//!    with a path (PrivateMessage); the host members process that Commit;
//! 8. the device sends 1 KiB and a short message; the host members read them;
//! 9. Dave updates (Commit with path); Alice removes the device.
//!
//! After every step the simulated device's epoch authenticator must equal
//! the host members' (the build fails otherwise); that value is embedded as
//! the firmware's expectation. The scenario runs twice: once to learn the
//! sizes, once with exactly the scratch buffer the firmware will have, so a
//! too small buffer fails the build, not the board.

use board_member::{
    Action, DEVICE_SEED, Device, Expect, Floor, LIFETIME, NOW, Outcome, SUITE, SeededRng, Step, arena_bytes,
    commit_scratch, proposal_bytes, skipped_keys, welcome_scratch,
};
use mls_nostd::tree_math::{self, LeafIndex, NodeIndex};
use mls_nostd::codec::{Decode, Writer};
use mls_nostd::messages::{EncryptedGroupSecrets, MlsMessage, MlsMessageBody};
use mls_nostd::credential::Credential;
use mls_nostd::crypto::signature::SignaturePrivateKey;
use mls_nostd::executor::Sequential;
use mls_nostd::extensions::{Extensions, U16List};
use mls_nostd::group::{
    CommitBuffers, CommitOptions, CreateParams, Group, GroupConfig, JoinParams, Received, WireFormatPolicy,
    default_capabilities,
};
use mls_nostd::key_package::{KeyPackage, KeyPackageParams, KeyPackagePrivateKeys};
use mls_nostd::messages::proposal::{Add, Proposal, Remove};
use mls_nostd::psk::NoPsks;
use mls_nostd::ratchet_tree::treekem::LeafTemplate;
use std::fmt::Write as _;
use std::path::Path;

/// The scenario's group ID.
const GROUP_ID: &[u8] = b"board-member-scenario";

/// An owned [`Action`].
#[derive(Clone, Debug)]
pub enum OwnedAction {
    KeyPackage,
    /// The Welcome, and the ratchet tree sent out of band.
    Join(Vec<u8>, Vec<u8>),
    Receive(Vec<u8>),
    Commit,
    Protect(Vec<u8>),
}

/// An owned [`Expect`].
#[derive(Clone, Debug)]
pub enum OwnedExpect {
    KeyPackage(Vec<u8>),
    Joined,
    Application { sender: u32, data: Vec<u8> },
    Proposal,
    Merged { adds: u32, removes: u32, has_path: bool, removes_us: bool },
    Committed(Vec<u8>),
    Protected(Vec<u8>),
}

/// An owned [`Step`].
#[derive(Clone, Debug)]
pub struct OwnedStep {
    pub name: String,
    pub measure: Option<&'static str>,
    pub action: OwnedAction,
    pub expect: OwnedExpect,
    pub epoch: u64,
    pub epoch_authenticator: Vec<u8>,
    pub floor: Floor,
}

impl OwnedAction {
    fn borrow(&self) -> Action<'_> {
        match self {
            Self::KeyPackage => Action::KeyPackage,
            Self::Join(w, t) => Action::Join { welcome: w, ratchet_tree: t },
            Self::Receive(m) => Action::Receive { message: m },
            Self::Commit => Action::Commit,
            Self::Protect(d) => Action::Protect { data: d },
        }
    }
}

impl OwnedExpect {
    fn borrow(&self) -> Expect<'_> {
        match self {
            Self::KeyPackage(b) => Expect::KeyPackage(b),
            Self::Joined => Expect::Joined,
            Self::Application { sender, data } => Expect::Application { sender: *sender, data },
            Self::Proposal => Expect::Proposal,
            Self::Merged { adds, removes, has_path, removes_us } => {
                Expect::Merged { adds: *adds, removes: *removes, has_path: *has_path, removes_us: *removes_us }
            }
            Self::Committed(b) => Expect::Committed(b),
            Self::Protected(b) => Expect::Protected(b),
        }
    }
}

impl OwnedStep {
    /// The step as the firmware sees it.
    pub fn borrow(&self) -> Step<'_> {
        Step {
            name: &self.name,
            measure: self.measure,
            action: self.action.borrow(),
            expect: self.expect.borrow(),
            epoch: self.epoch,
            epoch_authenticator: &self.epoch_authenticator,
            floor: self.floor,
        }
    }
}

/// The scenario for one capacity, with what the firmware must check.
#[derive(Clone, Debug)]
pub struct Generated {
    pub capacity: usize,
    pub members: usize,
    pub scratch: usize,
    pub steps: Vec<OwnedStep>,
}

/// Members of the group the device joins, for a group of `capacity` leaves:
/// three quarters full (one leaf is added and removed again later); from 8
/// leaves up at least 6 (four host members, a passive one, the device).
pub fn members_for(capacity: usize) -> usize {
    if capacity <= 4 { capacity * 3 / 4 } else { (capacity * 3 / 4).max(6) }
}

/// The device's group at `$n` leaves, as the boards hold it.
macro_rules! device_group {
    ($n:literal, $members:expr) => {
        generate_for::<$n, { arena_bytes($n) }, { skipped_keys($n) }, { proposal_bytes($n) }>($members)
    };
}

/// Runs the scenario for a device group of `capacity` leaves: 4, 8, 64, 256
/// or 1,024, each with this crate's feature of that name (`cap-8`, ...).
pub fn generate(capacity: usize) -> Generated {
    let members = members_for(capacity);
    match capacity {
        #[cfg(feature = "cap-4")]
        4 => device_group!(4, members),
        #[cfg(feature = "cap-8")]
        8 => device_group!(8, members),
        #[cfg(feature = "cap-64")]
        64 => device_group!(64, members),
        #[cfg(feature = "cap-256")]
        256 => device_group!(256, members),
        #[cfg(feature = "cap-1024")]
        1024 => device_group!(1024, members),
        _ => panic!(
            "no scenario instance for capacity {capacity}: build board-scenario with its feature cap-{capacity} \
             (or add the capacity to board_scenario::member::generate)"
        ),
    }
}

fn generate_for<const N: usize, const A: usize, const K: usize, const P: usize>(members: usize) -> Generated {
    // Pass 1 learns the sizes; pass 2 runs with the firmware's exact scratch.
    let first = run::<N, A, K, P>(members, 1 << 20);
    let scratch = scratch_needed(&first);
    let second = run::<N, A, K, P>(members, scratch);
    assert_eq!(
        format!("{:?}", first.steps),
        format!("{:?}", second.steps),
        "the scenario is not deterministic"
    );
    second
}

/// The scratch bytes the device needs: every input and output, and the
/// Commit's work area.
fn scratch_needed(g: &Generated) -> usize {
    let mut need = 0usize;
    for s in &g.steps {
        let len = match (&s.action, &s.expect) {
            // The Welcome read in pieces: what the reader keeps (the tree
            // is read from flash).
            (OwnedAction::Join(w, _), _) => read_welcome_scratch(w),
            (OwnedAction::Receive(w), _) => w.len(),
            (_, OwnedExpect::KeyPackage(b) | OwnedExpect::Protected(b)) => b.len(),
            (OwnedAction::Commit, OwnedExpect::Committed(b)) => commit_scratch(b.len()),
            _ => 0,
        };
        need = need.max(len);
    }
    need.next_multiple_of(64)
}

/// `board_member::welcome_scratch` of the Welcome `w`, from its decoding.
fn read_welcome_scratch(w: &[u8]) -> usize {
    use mls_nostd::codec::Encode;
    let MlsMessageBody::Welcome(welcome) = MlsMessage::decode_exact(w).expect("a Welcome").body else {
        panic!("not a Welcome")
    };
    let entry_len = |e: &EncryptedGroupSecrets<'_>| {
        let mut counter = Writer::counter();
        e.encode(&mut counter).expect("an entry");
        counter.len()
    };
    let longest_entry = welcome.secrets.iter().map(|e| entry_len(&e)).max().unwrap_or(0);
    let longest_ciphertext = welcome.secrets.iter().map(|e| e.encrypted_group_secrets.ciphertext.len()).max().unwrap_or(0);
    welcome_scratch(welcome.encrypted_group_info.len(), longest_ciphertext, longest_entry)
}

/// A host member's group: the device's tree capacity, a host's other room.
type G<const N: usize, const A: usize> = Group<N, A, 16, 2048>;

/// A host member: a whole group state on the heap.
struct Host<const N: usize, const A: usize> {
    name: String,
    group: Box<G<N, A>>,
    signer: SignaturePrivateKey,
    public: Vec<u8>,
    rng: SeededRng,
}

fn key_package(name: &str, signer: &SignaturePrivateKey, rng: &mut SeededRng) -> (Vec<u8>, KeyPackagePrivateKeys) {
    let params = KeyPackageParams {
        suite: SUITE,
        credential: Credential::Basic { identity: name.as_bytes() },
        lifetime: LIFETIME,
        leaf_extensions: Extensions::default(),
        extensions: Extensions::default(),
        supported_extensions: U16List::default(),
        supported_proposals: U16List::default(),
    };
    let mut out = vec![0u8; 4096];
    let (bytes, keys) = KeyPackage::generate(&params, signer, rng, &mut out).expect("KeyPackage::generate");
    (bytes.to_vec(), keys)
}

/// A host member's leaf contents for a new LeafNode (a Commit's path, an
/// Update).
fn leaf_template<'a>(name: &'a str, public: &'a [u8], caps: &'a mut [u8; 8]) -> LeafTemplate<'a> {
    LeafTemplate {
        signature_key: public,
        credential: Credential::Basic { identity: name.as_bytes() },
        capabilities: default_capabilities(SUITE, caps),
        extensions: Extensions::default(),
    }
}

impl<const N: usize, const A: usize> Host<N, A> {
    fn new(name: &str, seed: u64) -> Self {
        let mut rng = SeededRng::new(seed);
        let (signer, public) = SignaturePrivateKey::generate(SUITE, &mut rng);
        Self { name: name.into(), group: Box::new(G::EMPTY), signer, public: public.as_bytes().to_vec(), rng }
    }

    fn key_package(&mut self) -> (Vec<u8>, KeyPackagePrivateKeys) {
        key_package(&self.name, &self.signer, &mut self.rng)
    }

    fn create(&mut self) {
        let mut caps = [0u8; 8];
        let params = CreateParams {
            suite: SUITE,
            group_id: GROUP_ID,
            credential: Credential::Basic { identity: self.name.as_bytes() },
            lifetime: LIFETIME,
            capabilities: default_capabilities(SUITE, &mut caps),
            extensions: Extensions::default(),
            config: GroupConfig::default(),
        };
        self.group.create(&params, &self.signer, &mut self.rng).expect("create");
    }

    fn join(&mut self, welcome: &[u8], tree: &[u8], kp: &[u8], keys: &KeyPackagePrivateKeys) {
        let params = JoinParams {
            executor: &mls_nostd::executor::Sequential,
            key_package: kp,
            keys,
            signer: &self.signer,
            ratchet_tree: Some(tree),
            psks: &NoPsks,
            config: GroupConfig::default(),
        };
        let mut buf = vec![0u8; welcome.len()];
        self.group.join_in_memory(welcome, &params, &mut buf).unwrap_or_else(|e| panic!("{}: join: {e:?}", self.name));
    }

    /// Commits `proposals` and every pending proposal; merges; returns the
    /// Commit and the Welcome, if any.
    fn commit(&mut self, proposals: &[Proposal<'_>], force_path: bool, wf: WireFormatPolicy) -> (Vec<u8>, Option<Vec<u8>>) {
        let (mut m, mut w, mut gi) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
        let mut caps = [0u8; 8];
        let template = leaf_template(&self.name, &self.public, &mut caps);
        let opts = CommitOptions {
            proposals,
            include_pending: true,
            force_path,
            // Joiners get the tree out of band (`export_tree`).
            ratchet_tree_in_welcome: false,
            wire_format: wf,
            padding: 0,
            authenticated_data: &[],
            leaf: Some(template),
        };
        let bufs = CommitBuffers { message: &mut m, welcome: &mut w, group_info: &mut gi };
        let out = self
            .group
            .commit_in_memory(&opts, &NoPsks, NOW, &mut self.rng, &Sequential, bufs)
            .unwrap_or_else(|e| panic!("{}: commit: {e:?}", self.name));
        let commit = out.commit.to_vec();
        let welcome = out.welcome.map(<[u8]>::to_vec);
        self.group.merge_staged_commit_in_memory().expect("merge own commit");
        (commit, welcome)
    }

    /// This epoch's ratchet tree, for joiners (out of band).
    fn export_tree(&mut self) -> Vec<u8> {
        let mut out = vec![0u8; 1 << 20];
        let mut w = Writer::new(&mut out);
        self.group.export_tree(&mut w).expect("export tree");
        let len = w.len();
        out.truncate(len);
        out
    }

    /// Proposes an Update of our leaf (a fresh encryption key).
    fn propose_update(&mut self, wf: WireFormatPolicy) -> Vec<u8> {
        let mut out = vec![0u8; 1 << 16];
        let mut caps = [0u8; 8];
        let template = leaf_template(&self.name, &self.public, &mut caps);
        self.group
            .propose_update(&template, wf, &mut self.rng, &mut out)
            .unwrap_or_else(|e| panic!("{}: propose update: {e:?}", self.name))
            .to_vec()
    }

    fn propose(&mut self, proposal: &Proposal<'_>, wf: WireFormatPolicy) -> Vec<u8> {
        let mut out = vec![0u8; 1 << 16];
        self.group
            .propose(proposal, wf, &mut self.rng, &mut out)
            .unwrap_or_else(|e| panic!("{}: propose: {e:?}", self.name))
            .to_vec()
    }

    fn send(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; data.len() + 1024];
        self.group
            .protect_application_in_memory(data, &[], 0, &mut self.rng, &mut out)
            .unwrap_or_else(|e| panic!("{}: protect: {e:?}", self.name))
            .to_vec()
    }

    /// Processes a group message; merges a Commit; returns application data.
    fn receive(&mut self, message: &[u8]) -> Option<(u32, Vec<u8>)> {
        let mut m = message.to_vec();
        match self.group.process_message_in_memory(&mut m, &NoPsks, NOW) {
            Ok(Received::Commit(_)) => {
                self.group.merge_staged_commit_in_memory().expect("merge");
                None
            }
            Ok(Received::Proposal { .. }) => None,
            Ok(Received::Application { sender, data, .. }) => Some((sender.0, data.to_vec())),
            Err(e) => panic!("{}: process_message: {e:?}", self.name),
        }
    }
}

/// The device's simulation and the recorded steps.
struct Sim<const N: usize, const A: usize, const K: usize, const P: usize> {
    device: Device,
    group: Box<Group<N, A, K, P>>,
    scratch: Vec<u8>,
    steps: Vec<OwnedStep>,
}

impl<const N: usize, const A: usize, const K: usize, const P: usize> Sim<N, A, K, P> {
    /// Runs `action` on the simulated device. With `expect` given, checks the
    /// outcome against it; without (the device produces bytes), the outcome's
    /// bytes become the expectation. Returns the outcome's bytes.
    fn step(
        &mut self,
        name: &str,
        measure: Option<&'static str>,
        action: OwnedAction,
        expect: Option<OwnedExpect>,
    ) -> Vec<u8> {
        let outcome = self
            .device
            .step(&mut *self.group, &action.borrow(), &mut self.scratch)
            .unwrap_or_else(|e| panic!("device step {name:?}: {e:?}"));
        let (expect, bytes) = match (expect, outcome) {
            (Some(e), o) => {
                assert!(e.borrow().matches(&o), "device step {name:?}: got {o:?}, expected {e:?}");
                (e, Vec::new())
            }
            (None, Outcome::KeyPackage(b)) => (OwnedExpect::KeyPackage(b.to_vec()), b.to_vec()),
            (None, Outcome::Committed(b)) => (OwnedExpect::Committed(b.to_vec()), b.to_vec()),
            (None, Outcome::Protected(b)) => (OwnedExpect::Protected(b.to_vec()), b.to_vec()),
            (None, o) => panic!("device step {name:?}: no expectation for {o:?}"),
        };
        self.steps.push(OwnedStep {
            name: name.into(),
            measure,
            action,
            expect,
            epoch: 0,
            epoch_authenticator: Vec::new(),
            floor: Floor::default(),
        });
        bytes
    }

    /// Sets the primitive floor of the last step.
    fn floor(&mut self, floor: Floor) {
        self.steps.last_mut().expect("a step").floor = floor;
    }

    /// The filtered direct path of `leaf` in the device's current tree, with
    /// the size of each copath child's resolution.
    fn filtered_direct_path(&mut self, leaf: u32) -> Vec<(NodeIndex, usize)> {
        let tree = self.group.tree_slices_for_testing();
        let mut fdp = [(NodeIndex(0), NodeIndex(0)); 32];
        let n = tree.filtered_direct_path(LeafIndex(leaf), &mut fdp).expect("filtered direct path");
        let mut res = vec![NodeIndex(0); 1 << 16];
        fdp[..n].iter().map(|&(p, sibling)| (p, tree.resolution(sibling, &mut res).expect("resolution"))).collect()
    }

    /// Which leaves of the device's tree hold a member (for the secret
    /// tree's floor: a subtree without members sends nothing this epoch).
    fn member_leaves(&mut self) -> Vec<bool> {
        let tree = self.group.tree_slices_for_testing();
        (0..tree.n_leaves()).map(|l| LeafIndex(l).node().is_some_and(|n| !tree.is_blank(n))).collect()
    }

    /// Records the hosts' epoch and authenticator for the last step, after
    /// checking that the device and every host agree on them.
    fn agree(&mut self, hosts: &[Host<N, A>]) {
        let epoch = hosts[0].group.epoch();
        let ea = hosts[0].group.epoch_authenticator().to_vec();
        for h in hosts {
            assert_eq!(h.group.epoch(), epoch, "{}: epoch", h.name);
            assert_eq!(h.group.epoch_authenticator(), &ea[..], "{}: epoch authenticator", h.name);
        }
        let last = self.steps.last_mut().expect("a step");
        assert_eq!(self.group.epoch(), epoch, "device epoch after {:?}", last.name);
        assert_eq!(self.group.epoch_authenticator(), &ea[..], "device epoch authenticator after {:?}", last.name);
        last.epoch = epoch;
        last.epoch_authenticator = ea;
    }
}

/// KDF calls of a floor: `fresh` ones key their HMAC from a secret,
/// `more` ones use a secret keyed already (a second derivation from it) or
/// extract with an empty salt (a fixed keyed state).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Kdfs {
    fresh: u32,
    more: u32,
}

impl core::ops::Add for Kdfs {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self { fresh: self.fresh + o.fresh, more: self.more + o.more }
    }
}

impl core::ops::Mul<u32> for Kdfs {
    type Output = Self;
    fn mul(self, n: u32) -> Self {
        Self { fresh: self.fresh * n, more: self.more * n }
    }
}

/// HPKE open in base mode (RFC 9180 §4.1, §5.1): `eae_prk` (empty salt),
/// `shared_secret`, `info_hash` (empty salt), `secret`, then `key` and
/// `base_nonce` from it. `psk_id_hash` (of the empty `psk_id`) is fixed
/// per suite; the exporter secret is not needed.
const HPKE_OPEN: Kdfs = Kdfs { fresh: 3, more: 3 };
/// HPKE seal, per recipient: an open's calls but `info_hash`, the same for
/// every seal of one UpdatePath (its context is the provisional
/// GroupContext, RFC 9420 §7.6), so once per Commit ([`HPKE_INFO`]).
const HPKE_SEAL: Kdfs = Kdfs { fresh: 3, more: 2 };
const HPKE_INFO: Kdfs = Kdfs { fresh: 0, more: 1 };
/// An epoch's key schedule (RFC 9420 §8), no PSK, no Welcome: the
/// extractions keyed by the init and joiner secrets, the joiner and epoch
/// secrets, from the epoch secret the sender data, encryption,
/// confirmation, membership and init secrets (the exporter, external,
/// resumption and authentication secrets only an implementation offering
/// them derives), and the confirmation tag's MAC.
const KEY_SCHEDULE: Kdfs = Kdfs { fresh: 6, more: 4 };

/// The KDF calls of `sender`'s first message of an epoch (RFC 9420 §9),
/// after messages of `seen` in it, in a tree whose leaves `members` hold a
/// member. From the root down to the sender's leaf, each node not split
/// yet derives its child on the path and, if the other child's subtree
/// holds a member, that one too (a consumed parent must be deleted, §9.2:
/// a subtree without members sends nothing this epoch); then the leaf's
/// handshake and application secrets, the ratchet's key, nonce and next
/// secret, and the sender data's key and nonce (from the epoch's sender
/// data secret, keyed once).
fn secret_tree_kdfs(members: &[bool], seen: &[u32], sender: u32) -> Kdfs {
    assert!(!seen.contains(&sender), "not the sender's first message");
    let n = members.len() as u32;
    let holds_member = |x: NodeIndex| {
        let (first, count) = tree_math::leaf_span(x);
        (first..first + count).any(|l| members.get(l as usize).copied().unwrap_or(false))
    };
    let mut split = std::collections::BTreeSet::new();
    let mut walk = |leaf: u32| {
        let target = LeafIndex(leaf).node().expect("leaf node");
        let mut kdfs = Kdfs::default();
        let mut x = tree_math::root(n).expect("root");
        while x != target {
            let (l, r) = (tree_math::left(x).expect("left"), tree_math::right(x).expect("right"));
            let (on_path, other) = if target.0 < x.0 { (l, r) } else { (r, l) };
            if split.insert(x) {
                kdfs = kdfs + Kdfs { fresh: 1, more: u32::from(holds_member(other)) };
            }
            x = on_path;
        }
        kdfs
    };
    for &s in seen {
        walk(s);
    }
    walk(sender) + Kdfs { fresh: 1, more: 1 } + Kdfs { fresh: 1, more: 2 } + Kdfs { fresh: 0, more: 2 }
}

/// The lengths a PrivateMessage's floor counts: its AEAD's plaintext
/// (`PrivateMessageContent`: the content, its `FramedContentAuthData` and
/// padding; the ciphertext less the 16-byte tag of the suites' AEADs) and
/// at least its content's (the plaintext less the longest authentication
/// data: a signature of up to 72 bytes, a SHA-256 confirmation tag, their
/// length prefixes; the scenario pads nothing).
fn private_lengths(message: &[u8]) -> (u32, u32) {
    let MlsMessageBody::PrivateMessage(m) = MlsMessage::decode_exact(message).expect("an MLSMessage").body else {
        panic!("not a PrivateMessage");
    };
    let payload = m.ciphertext.len() - 16;
    (payload as u32, payload.saturating_sub(1 + 72 + 1 + 32) as u32)
}

/// Delivers `message` from `hosts[from]` (or from the device: `None`) to
/// every other host member, which processes it (merging a Commit).
fn deliver<const N: usize, const A: usize>(hosts: &mut [Host<N, A>], from: Option<usize>, message: &[u8]) {
    for (i, h) in hosts.iter_mut().enumerate() {
        if Some(i) != from {
            h.receive(message);
        }
    }
}

/// Runs the scenario once with a device scratch buffer of `scratch` bytes.
///
/// From 8 leaves up the host members are Alice, Bob, Carol and Dave. In a
/// group of 4 leaves (the micro:bit's, three quarters full: Alice, Bob and
/// the device) Bob also plays Carol's and Dave's parts, and in step 7 he
/// proposes an Update, there being no passive member to remove.
fn run<const N: usize, const A: usize, const K: usize, const P: usize>(members: usize, scratch: usize) -> Generated {
    let names: &[&str] = if N <= 4 { &["alice", "bob"] } else { &["alice", "bob", "carol", "dave"] };
    let passive = members.checked_sub(names.len() + 1).expect("room for the host members and the device");
    assert!(members < N && (N <= 4 || passive >= 1), "{members} members in a group of {N} leaves");
    let mut hosts: Vec<Host<N, A>> = names.iter().zip(1..).map(|(name, seed)| Host::new(name, seed)).collect();
    // Who plays each part: indices into `hosts`.
    let (alice, bob) = (0, 1);
    let (carol, dave) = if N <= 4 { (bob, bob) } else { (2, 3) };
    let mut sim = Sim::<N, A, K, P> {
        device: Device::new(DEVICE_SEED),
        group: Box::new(Group::EMPTY),
        scratch: vec![0u8; scratch],
        steps: Vec::new(),
    };

    // 1. The device's KeyPackage.
    let device_kp = sim.step("generate KeyPackage", Some("keypackage"), OwnedAction::KeyPackage, None);
    // A signature key, the init and leaf HPKE keys (fresh: GenerateKeyPair),
    // the LeafNode and KeyPackage signatures.
    sim.floor(Floor { keygen: 1, keypair: 2, sign: 2, ..Floor::default() });

    // 2. Alice adds the other host members, passive members and the device
    //    (at the middle leaf) in one Commit without path; the tree goes out
    //    of band (the device reads it from flash, the Welcome stays small).
    hosts[alice].create();
    let host_kps: Vec<_> = hosts[1..].iter_mut().map(Host::key_package).collect();
    let mut passive_kps = Vec::new();
    for i in 0..passive {
        let mut rng = SeededRng::new(1000 + i as u64);
        let (signer, _) = SignaturePrivateKey::generate(SUITE, &mut rng);
        passive_kps.push(key_package(&format!("sensor-{i:03}"), &signer, &mut rng).0);
    }
    let device_leaf = (members / 2 + 1) as u32;
    let mut kps: Vec<&[u8]> = host_kps.iter().map(|(kp, _)| kp.as_slice()).collect();
    kps.extend(passive_kps.iter().map(Vec::as_slice));
    kps.insert(device_leaf as usize - 1, &device_kp);
    assert_eq!(kps.len(), members - 1);
    let adds: Vec<Proposal<'_>> = kps
        .iter()
        .map(|kp| Proposal::Add(Add { key_package: KeyPackage::decode_exact(kp).expect("KeyPackage") }))
        .collect();
    let (_, welcome) = hosts[alice].commit(&adds, false, WireFormatPolicy::Public);
    let welcome = welcome.expect("Welcome");
    let tree = hosts[alice].export_tree();
    for (h, (kp, keys)) in hosts[1..].iter_mut().zip(&host_kps) {
        h.join(&welcome, &tree, kp, keys);
    }
    sim.step("join from Welcome", Some("join"), OwnedAction::Join(welcome, tree), Some(OwnedExpect::Joined));
    // Open the GroupSecrets (one DH), verify the GroupInfo and every leaf;
    // the Commit had no path, so there is no path secret to derive keys from.
    sim.floor(Floor { dh: 1, verify: members as u32 + 1, ..Floor::default() });
    assert_eq!(sim.group.own_leaf().0, device_leaf);
    sim.agree(&hosts);

    // 3. Bob adds Erin: a Commit without path.
    let mut erin_rng = SeededRng::new(5);
    let (erin_signer, _) = SignaturePrivateKey::generate(SUITE, &mut erin_rng);
    let (erin_kp, _) = key_package("erin", &erin_signer, &mut erin_rng);
    let add = Proposal::Add(Add { key_package: KeyPackage::decode_exact(&erin_kp).expect("KeyPackage") });
    let (commit, _) = hosts[bob].commit(&[add], false, WireFormatPolicy::Public);
    deliver(&mut hosts, Some(bob), &commit);
    let erin_leaf = members as u32;
    let merged = |adds, removes, has_path, removes_us| Some(OwnedExpect::Merged { adds, removes, has_path, removes_us });
    sim.step("receive Commit: add (no path)", None, OwnedAction::Receive(commit), merged(1, 0, false, false));
    sim.agree(&hosts);

    // 4. Carol updates: an empty Commit with path, as a PrivateMessage.
    let (commit, _) = hosts[carol].commit(&[], true, WireFormatPolicy::Private);
    let (payload, content) = private_lengths(&commit);
    let (occupied, carol_leaf) = (sim.member_leaves(), hosts[carol].group.own_leaf().0);
    deliver(&mut hosts, Some(carol), &commit);
    sim.step(
        "receive Commit: update (path, PrivateMessage)",
        Some("process-commit-path"),
        OwnedAction::Receive(commit),
        merged(0, 0, true, false),
    );
    // Verify the content and the new leaf, open one path secret (one DH),
    // derive the key pair of every path node from there to the root.
    let device_node = LeafIndex(device_leaf).node().expect("device node");
    let path = sim.filtered_direct_path(hosts[carol].group.own_leaf().0);
    let first = path.iter().position(|&(p, _)| tree_math::common_ancestor(p, device_node) == p).expect("a common node");
    // Open the PrivateMessage, hash the Commit for its signature and for
    // the transcript hash. KDF: Carol's handshake ratchet from the root,
    // HPKE's open, each path node's "node" and "path" secrets (the last
    // "path" one is the commit secret), the key schedule.
    let k = (path.len() - first) as u32;
    let kdfs = secret_tree_kdfs(&occupied, &[], carol_leaf) + HPKE_OPEN + Kdfs { fresh: 1, more: 1 } * k + KEY_SCHEDULE;
    sim.floor(Floor {
        verify: 2,
        dh: 1,
        dkp: k,
        kdf: kdfs.fresh,
        kdf_more: kdfs.more,
        aead_bytes: payload,
        verify_bytes: content,
        hash_bytes: content,
        ..Floor::default()
    });
    sim.agree(&hosts);

    // 5. Dave proposes removing Erin; Alice commits it by reference.
    let proposal = hosts[dave].propose(&Proposal::Remove(Remove { removed: erin_leaf }), WireFormatPolicy::Public);
    deliver(&mut hosts, Some(dave), &proposal);
    sim.step("receive Proposal: remove", None, OwnedAction::Receive(proposal), Some(OwnedExpect::Proposal));
    sim.agree(&hosts);
    let (commit, _) = hosts[alice].commit(&[], false, WireFormatPolicy::Public);
    deliver(&mut hosts, Some(alice), &commit);
    sim.step("receive Commit: remove by reference (path)", None, OwnedAction::Receive(commit), merged(0, 1, true, false));
    sim.agree(&hosts);

    // 6. Application messages to the device.
    let kib: Vec<u8> = (0..1024u32).map(|i| (i * 7 + 3) as u8).collect();
    let message = hosts[alice].send(&kib);
    let (payload, _) = private_lengths(&message);
    sim.step(
        "unprotect 1 KiB from alice",
        Some("unprotect-1k"),
        OwnedAction::Receive(message),
        Some(OwnedExpect::Application { sender: 0, data: kib.clone() }),
    );
    // Alice's application ratchet from the root.
    let kdfs = secret_tree_kdfs(&sim.member_leaves(), &[], hosts[alice].group.own_leaf().0);
    sim.floor(Floor {
        verify: 1,
        kdf: kdfs.fresh,
        kdf_more: kdfs.more,
        aead_bytes: payload,
        verify_bytes: kib.len() as u32,
        ..Floor::default()
    });
    sim.agree(&hosts);
    let short = b"setpoint=19.0".to_vec();
    let message = hosts[dave].send(&short);
    let dave_leaf = hosts[dave].group.own_leaf().0;
    sim.step(
        &format!("unprotect short from {}", names[dave]),
        None,
        OwnedAction::Receive(message),
        Some(OwnedExpect::Application { sender: dave_leaf, data: short }),
    );
    sim.agree(&hosts);

    // 7. Bob proposes removing the last passive member (in a group of 4
    //    leaves, an Update of his leaf) as a PrivateMessage; the device
    //    commits it by reference with a path.
    let (name, proposal) = match passive {
        0 => ("receive Proposal: update (PrivateMessage)", hosts[bob].propose_update(WireFormatPolicy::Private)),
        _ => {
            let victim = Proposal::Remove(Remove { removed: members as u32 - 1 });
            ("receive Proposal: remove (PrivateMessage)", hosts[bob].propose(&victim, WireFormatPolicy::Private))
        }
    };
    deliver(&mut hosts, Some(bob), &proposal);
    sim.step(name, None, OwnedAction::Receive(proposal), Some(OwnedExpect::Proposal));
    sim.agree(&hosts);
    let members_before = sim.member_leaves();
    let commit = sim.step("create Commit: by reference, with path", Some("create-commit-path"), OwnedAction::Commit, None);
    // A new leaf key (GenerateKeyPair) and one key pair per path node
    // (DeriveKeyPair); per copath resolution node one HPKE seal (an
    // ephemeral key pair and a DH); the LeafNode and content signatures.
    let path = sim.filtered_direct_path(device_leaf);
    let seals: usize = path.iter().map(|&(_, r)| r).sum();
    // Then seal the PrivateMessage, hash the Commit for its signature and
    // for the transcript hash.
    let (payload, content) = private_lengths(&commit);
    // KDF: our handshake ratchet below the nodes this epoch's earlier
    // messages (Alice's, Dave's, Bob's proposal) split; each HPKE seal and
    // the UpdatePath's info_hash; per path node its "node" secret and,
    // from each path secret, the next ("path"; the last one is the commit
    // secret: 2 per node, path_secret[0] being random, §7.4); the key
    // schedule.
    let seen = [alice, dave, bob].map(|h| hosts[h].group.own_leaf().0);
    let kdfs = secret_tree_kdfs(&members_before, &seen, device_leaf)
        + HPKE_SEAL * seals as u32
        + if seals > 0 { HPKE_INFO } else { Kdfs::default() }
        + Kdfs { fresh: 1, more: 1 } * path.len() as u32
        + KEY_SCHEDULE;
    sim.floor(Floor {
        sign: 2,
        dkp: path.len() as u32,
        keypair: (1 + seals) as u32,
        dh: seals as u32,
        kdf: kdfs.fresh,
        kdf_more: kdfs.more,
        aead_bytes: payload,
        sign_bytes: content,
        hash_bytes: content,
        ..Floor::default()
    });
    deliver(&mut hosts, None, &commit);
    sim.agree(&hosts);

    // 8. The device sends; every host member reads it.
    let kib: Vec<u8> = (0..1024u32).map(|i| (i * 13 + 1) as u8).collect();
    for (name, measure, data) in [
        ("protect 1 KiB", Some("protect-1k"), kib),
        ("protect short", None, b"temp=21.5;rh=40".to_vec()),
    ] {
        let message = sim.step(name, measure, OwnedAction::Protect(data.clone()), None);
        if measure.is_some() {
            let (payload, _) = private_lengths(&message);
            // Our application ratchet from the root.
            let kdfs = secret_tree_kdfs(&sim.member_leaves(), &[], device_leaf);
            sim.floor(Floor {
                sign: 1,
                kdf: kdfs.fresh,
                kdf_more: kdfs.more,
                aead_bytes: payload,
                sign_bytes: data.len() as u32,
                ..Floor::default()
            });
        }
        for h in &mut hosts {
            assert_eq!(h.receive(&message), Some((device_leaf, data.clone())), "{}: device's message", h.name);
        }
        sim.agree(&hosts);
    }

    // 9. Dave updates; then Alice removes the device.
    let (commit, _) = hosts[dave].commit(&[], true, WireFormatPolicy::Public);
    deliver(&mut hosts, Some(dave), &commit);
    sim.step("receive Commit: update after own commit", None, OwnedAction::Receive(commit), merged(0, 0, true, false));
    sim.agree(&hosts);
    let remove = Proposal::Remove(Remove { removed: device_leaf });
    let (commit, _) = hosts[alice].commit(&[remove], false, WireFormatPolicy::Public);
    deliver(&mut hosts, Some(alice), &commit);
    sim.step("receive Commit: removes the device", None, OwnedAction::Receive(commit), merged(0, 1, true, true));
    assert!(sim.group.is_inactive(), "the device is still active after its removal");

    Generated { capacity: N, members, scratch, steps: sim.steps }
}

/// Writes the scenario for `capacity` into `out_dir`: one `.bin` file per
/// input or expected output, and `scenario.rs`, which defines
/// `pub static SCENARIO: board_member::Scenario<'static>` (with
/// `include_bytes!` of those files) and `pub const SCRATCH_LEN: usize`.
/// Returns the generated scenario.
pub fn write(out_dir: &Path, capacity: usize) -> Generated {
    let g = generate(capacity);
    let dir = out_dir.join("scenario");
    std::fs::create_dir_all(&dir).expect("create scenario dir");
    let mut n = 0usize;
    let mut bytes = |b: &[u8]| -> String {
        n += 1;
        let path = dir.join(format!("{n:03}.bin"));
        std::fs::write(&path, b).expect("write scenario data");
        format!("include_bytes!({:?})", path.display().to_string())
    };
    let mut src = String::new();
    writeln!(
        src,
        "// Generated by board_scenario::member::write: the member scenario for a group of {capacity} leaves."
    )
    .unwrap();
    writeln!(src, "pub const SCRATCH_LEN: usize = {};", g.scratch).unwrap();
    writeln!(
        src,
        "pub static SCENARIO: board_member::Scenario<'static> = board_member::Scenario {{\n    \
         capacity: {capacity}, members: {}, seed: {DEVICE_SEED:#x}, scratch: SCRATCH_LEN, steps: &[",
        g.members
    )
    .unwrap();
    for s in &g.steps {
        let action = match &s.action {
            OwnedAction::KeyPackage => "board_member::Action::KeyPackage".to_string(),
            OwnedAction::Join(w, t) => {
                format!("board_member::Action::Join {{ welcome: {}, ratchet_tree: {} }}", bytes(w), bytes(t))
            }
            OwnedAction::Receive(b) => format!("board_member::Action::Receive {{ message: {} }}", bytes(b)),
            OwnedAction::Commit => "board_member::Action::Commit".to_string(),
            OwnedAction::Protect(b) => format!("board_member::Action::Protect {{ data: {} }}", bytes(b)),
        };
        let expect = match &s.expect {
            OwnedExpect::KeyPackage(b) => format!("board_member::Expect::KeyPackage({})", bytes(b)),
            OwnedExpect::Joined => "board_member::Expect::Joined".to_string(),
            OwnedExpect::Application { sender, data } => {
                format!("board_member::Expect::Application {{ sender: {sender}, data: {} }}", bytes(data))
            }
            OwnedExpect::Proposal => "board_member::Expect::Proposal".to_string(),
            OwnedExpect::Merged { adds, removes, has_path, removes_us } => format!(
                "board_member::Expect::Merged {{ adds: {adds}, removes: {removes}, has_path: {has_path}, removes_us: {removes_us} }}"
            ),
            OwnedExpect::Committed(b) => format!("board_member::Expect::Committed({})", bytes(b)),
            OwnedExpect::Protected(b) => format!("board_member::Expect::Protected({})", bytes(b)),
        };
        let ea = bytes(&s.epoch_authenticator);
        writeln!(
            src,
            "    board_member::Step {{ name: {:?}, measure: {:?}, action: {action}, expect: {expect}, epoch: {}, epoch_authenticator: {ea}, floor: board_member::{:?} }},",
            s.name, s.measure, s.epoch, s.floor
        )
        .unwrap();
    }
    src.push_str("] };\n");
    std::fs::write(out_dir.join("scenario.rs"), src).expect("write scenario.rs");
    g
}
