//! Shared parts of the fuzz targets: a deterministic live group built with
//! the core's own API, in-place snapshots of group slots, and the seed
//! corpora (official vectors read at run time, and messages our code makes).
//!
//! Seeds: run any target binary with `MLS_FUZZ_SEEDS=DIR` and it writes its
//! seed corpus into `DIR` and exits (see `fuzz/run.sh`). Because the group
//! is built from fixed seeds, the messages written as seeds are valid for
//! the group the target rebuilds in every run.

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::path::PathBuf;

use mls_nostd::codec::{Decode, Encode, Reader, Writer};
use mls_nostd::crypto::Secret;
use mls_nostd::key_schedule::{EpochSecrets, welcome_secret};
use mls_nostd::messages::authenticated_content::EncodedGroupContext;
use mls_nostd::messages::framing::{Content, FramedContent, Sender};
use mls_nostd::messages::group_info::{GroupInfo, GroupInfoTbs};
use mls_nostd::messages::public_message;
use mls_nostd::messages::welcome_secrets::{NewMember, WelcomeParams};
use mls_nostd::psk::psk_secret;
use mls_nostd::transcript::confirmation_tag;
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
use mls_nostd::messages::mls_message::{MlsMessage, MlsMessageBody};
use mls_nostd::messages::proposal::{Add, Proposal, Remove};
use mls_nostd::psk::NoPsks;
use mls_nostd::ratchet_tree::treekem::LeafTemplate;

/// The group type of the stateful targets: 8 leaves.
pub type G = Group<8, { 8 * 512 }, 32, 8192>;
/// "Now" for every lifetime check.
pub const NOW: u64 = 1_800_000_000;
/// Lifetime of every KeyPackage and leaf we make.
pub const LIFETIME: Lifetime = Lifetime { not_before: NOW - 10, not_after: NOW + 86_400 };
/// The cipher suites of the live groups, one world each (`with_world_in`):
/// the RFC's mandatory suite (X25519, Ed25519) and suite 2 (P-256, ECDSA),
/// the one a secure element does. The stateful targets pick the world by
/// a bit of their input, so one run covers both (issue #15).
pub const SUITES: [CipherSuite; 2] = [CipherSuite::X25519Aes128GcmSha256Ed25519, CipherSuite::P256Aes128GcmSha256P256];

/// The world index of a cipher suite code point: 1 for suite 2, else 0.
pub fn world_of_suite(code: u64) -> usize {
    usize::from(code == 2)
}
/// The live group's ID.
pub const GROUP_ID: &[u8] = b"fuzz-group";

/// A deterministic RNG (splitmix64): the same seed gives the same group.
pub struct TestRng(pub u64);

impl rand_core::TryRng for TestRng {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.try_next_u64()? as u32)
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

impl rand_core::TryCryptoRng for TestRng {}

/// A byte copy of a group slot, restored in place before every run so that
/// each input meets the same state. `Group` holds no pointers (no heap, no
/// lifetimes: every field is inline), so a byte copy is a faithful clone.
pub struct Snapshot {
    bytes: Box<MaybeUninit<G>>,
}

impl Snapshot {
    /// Copies `g`.
    pub fn take(g: &G) -> Self {
        let mut bytes = Box::<G>::new_uninit();
        // SAFETY: `G` is plain inline data (see the type's doc); we copy one
        // value into uninitialised memory of its type and never drop the copy.
        unsafe { std::ptr::copy_nonoverlapping(g as *const G, bytes.as_mut_ptr(), 1) };
        Self { bytes }
    }

    /// Overwrites `g` with the copy (the old value is forgotten, not dropped:
    /// it owns nothing).
    pub fn restore(&self, g: &mut G) {
        // SAFETY: as in `take`; the source was a valid `G` when copied.
        unsafe { std::ptr::copy_nonoverlapping(self.bytes.as_ptr(), g as *mut G, 1) };
    }
}

/// One member of the live group.
pub struct Member {
    /// Name, used as the basic credential.
    pub name: &'static str,
    /// The group slot (boxed: never on the stack).
    pub group: Box<G>,
    /// Signature key.
    pub signer: SignaturePrivateKey,
    /// Its RNG.
    pub rng: TestRng,
    /// The cipher suite of its keys and group.
    pub suite: CipherSuite,
}

fn buffers() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024], vec![0u8; 64 * 1024])
}

impl Member {
    /// A member of `suite` with keys from `seed` (an Ed25519 seed or a
    /// P-256 scalar: `seed`, then 0x11 bytes, is below the group order).
    pub fn new(name: &'static str, seed: u64, suite: CipherSuite) -> Self {
        let mut s = [0x11u8; 32];
        s[..8].copy_from_slice(&seed.to_be_bytes());
        Self { name, group: Box::new(G::EMPTY), signer: SignaturePrivateKey::from_slice(suite, &s).unwrap(), rng: TestRng(seed), suite }
    }

    /// A fresh KeyPackage and its private keys.
    pub fn key_package(&mut self) -> (Vec<u8>, KeyPackagePrivateKeys) {
        let params = KeyPackageParams {
            suite: self.suite,
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

    /// Our leaf template (basic credential, default capabilities).
    pub fn template<'a>(&self, caps: &'a mut [u8; 8], sk: &'a [u8]) -> LeafTemplate<'a> {
        LeafTemplate {
            signature_key: sk,
            credential: Credential::Basic { identity: self.name.as_bytes() },
            capabilities: default_capabilities(self.suite, caps),
            extensions: Extensions::default(),
        }
    }

    /// Commits `proposals`; returns (commit, welcome). The commit stays
    /// staged: merge or discard it.
    pub fn commit(&mut self, proposals: &[Proposal<'_>], force_path: bool, wf: WireFormatPolicy) -> (Vec<u8>, Option<Vec<u8>>) {
        let (mut m, mut w, mut gi) = buffers();
        let mut caps = [0u8; 8];
        let sk = self.signer.public_key();
        let sk = sk.as_bytes().to_vec();
        let template = self.template(&mut caps, &sk);
        let opts = CommitOptions {
            proposals,
            include_pending: true,
            force_path,
            ratchet_tree_in_welcome: true,
            wire_format: wf,
            padding: 8,
            authenticated_data: b"fuzz",
            leaf: Some(template),
        };
        let bufs = CommitBuffers { message: &mut m, welcome: &mut w, group_info: &mut gi };
        let out = self.group.commit_in_memory(&opts, &NoPsks, NOW, &mut self.rng, &Sequential, bufs).unwrap();
        (out.commit.to_vec(), out.welcome.map(|w| w.to_vec()))
    }

    /// Joins from `welcome` with KeyPackage `kp`.
    pub fn join(&mut self, welcome: &[u8], kp: &[u8], keys: &KeyPackagePrivateKeys) {
        let mut buf = vec![0u8; welcome.len()];
        let signer = self.signer.clone();
        self.group.join_in_memory(welcome, &join_params(kp, keys, &signer), &mut buf).unwrap();
    }

    /// Processes a commit and merges it.
    pub fn receive_commit(&mut self, commit: &[u8]) {
        let mut msg = commit.to_vec();
        match self.group.process_message_in_memory(&mut msg, &NoPsks, NOW).unwrap() {
            Received::Commit(_) => self.group.merge_staged_commit_in_memory().unwrap(),
            other => panic!("{}: expected a commit, got {other:?}", self.name),
        }
    }

    /// An application message.
    pub fn send(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; 4096];
        self.group.protect_application_in_memory(data, b"ad", 0, &mut self.rng, &mut out).unwrap().to_vec()
    }

    /// A proposal by us.
    pub fn propose(&mut self, p: &Proposal<'_>, wf: WireFormatPolicy) -> Vec<u8> {
        let mut out = vec![0u8; 8192];
        self.group.propose(p, wf, &mut self.rng, &mut out).unwrap().to_vec()
    }

    /// `MLSMessage(GroupInfo)` of the current epoch with the tree.
    pub fn group_info(&mut self) -> Vec<u8> {
        let (mut out, mut scratch) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
        self.group.group_info(true, &mut out, &mut scratch).unwrap().to_vec()
    }
}

/// The join parameters of the stateful targets.
pub fn join_params<'a>(kp: &'a [u8], keys: &'a KeyPackagePrivateKeys, signer: &'a SignaturePrivateKey) -> JoinParams<'a> {
    JoinParams {
        executor: &mls_nostd::executor::Sequential,
        key_package: kp,
        keys,
        signer,
        ratchet_tree: None,
        psks: &NoPsks,
        config: GroupConfig::default(),
    }
}

/// Valid messages of the live group, all for epoch `World::epoch` unless said.
pub struct Messages {
    /// Application messages (PrivateMessage) from Alice and Carol.
    pub app_alice: Vec<u8>,
    /// Carol's first application message: read after every rejection.
    pub app_carol: Vec<u8>,
    /// Its plaintext.
    pub app_carol_text: &'static [u8],
    /// Proposals by Alice (Remove Carol, Add Dave), as PublicMessage and PrivateMessage.
    pub proposals: Vec<Vec<u8>>,
    /// Commits by Alice: update with path (public, private), remove Carol, add Dave.
    pub commits: Vec<Vec<u8>>,
    /// Carol's commit with path: processed after every rejection.
    pub commit_carol: Vec<u8>,
    /// Bob's epoch authenticator after merging `commit_carol`.
    pub after_carol: Vec<u8>,
    /// The Welcome of Alice's add-Dave commit.
    pub welcome_dave: Vec<u8>,
    /// Alice's epoch authenticator after merging her add-Dave commit.
    pub after_add_dave: Vec<u8>,
    /// `MLSMessage(GroupInfo)` with the tree, of the epoch after adding Dave
    /// (Dave's leaf in it).
    pub group_info_with_dave: Vec<u8>,
    /// `MLSMessage(GroupInfo)` with the tree, of the current epoch.
    pub group_info: Vec<u8>,
    /// The current ratchet tree, encoded.
    pub tree: Vec<u8>,
}

/// A group of three (Alice, Bob, Carol) two epochs old; Bob receives.
/// Dave has a KeyPackage and receives Welcomes.
pub struct World {
    /// Leaf 0, the creator.
    pub alice: Member,
    /// Leaf 1: the member the targets feed.
    pub bob: Member,
    /// Leaf 2.
    pub carol: Member,
    /// Not a member: joins from Welcomes.
    pub dave: Member,
    /// Dave's KeyPackage.
    pub dave_kp: Vec<u8>,
    /// Its private keys.
    pub dave_keys: KeyPackagePrivateKeys,
    /// Bob's state in the current epoch.
    pub bob_snapshot: Snapshot,
    /// An empty slot (Dave before joining).
    pub empty_snapshot: Snapshot,
    /// The current epoch.
    pub epoch: u64,
    /// Bob's epoch authenticator now.
    pub authenticator: Vec<u8>,
    /// Bob's encoded GroupContext now.
    pub group_context: Vec<u8>,
    /// Bob's `MLS-Exporter("fuzz", "", 32)` now.
    pub exported: [u8; 32],
    /// The membership key now.
    pub membership_key: Secret,
    /// Messages for this epoch.
    pub msgs: Messages,
}

impl World {
    /// Builds the group in `suite`; deterministic.
    pub fn build(suite: CipherSuite) -> Self {
        let mut alice = Member::new("alice", 1, suite);
        let mut bob = Member::new("bob", 2, suite);
        let mut carol = Member::new("carol", 3, suite);
        let mut dave = Member::new("dave", 4, suite);
        let mut caps = [0u8; 8];
        let params = CreateParams {
            suite,
            group_id: GROUP_ID,
            credential: Credential::Basic { identity: b"alice" },
            lifetime: LIFETIME,
            capabilities: default_capabilities(suite, &mut caps),
            extensions: Extensions::default(),
            config: GroupConfig::default(),
        };
        let signer = alice.signer.clone();
        alice.group.create(&params, &signer, &mut alice.rng).unwrap();
        let (bkp, bkeys) = bob.key_package();
        let (ckp, ckeys) = carol.key_package();
        let adds = [
            Proposal::Add(Add { key_package: KeyPackage::decode_exact(&bkp).unwrap() }),
            Proposal::Add(Add { key_package: KeyPackage::decode_exact(&ckp).unwrap() }),
        ];
        let (_, welcome) = alice.commit(&adds, false, WireFormatPolicy::Public);
        alice.group.merge_staged_commit_in_memory().unwrap();
        let welcome = welcome.unwrap();
        bob.join(&welcome, &bkp, &bkeys);
        carol.join(&welcome, &ckp, &ckeys);
        // Carol updates: parent nodes in the tree.
        let (c, _) = carol.commit(&[], true, WireFormatPolicy::Public);
        carol.group.merge_staged_commit_in_memory().unwrap();
        alice.receive_commit(&c);
        bob.receive_commit(&c);
        assert_eq!(alice.group.epoch_authenticator(), bob.group.epoch_authenticator());
        let (dave_kp, dave_keys) = dave.key_package();

        let bob_snapshot = Snapshot::take(&bob.group);
        let empty_snapshot = Snapshot::take(&dave.group);
        let epoch = bob.group.epoch();
        let authenticator = bob.group.epoch_authenticator().to_vec();
        let mut gc = vec![0u8; 4096];
        let group_context = bob.group.group_context(&mut gc).unwrap().to_vec();
        let mut exported = [0u8; 32];
        bob.group.export_secret(b"fuzz", b"", &mut exported).unwrap();
        let membership_key = bob.group.state_for_testing().secrets.membership_key.clone();

        // Alice's commits (each discarded, so all are for this epoch).
        let alice_snapshot = Snapshot::take(&alice.group);
        let mut commits = Vec::new();
        for (proposals, wf) in [
            (vec![], WireFormatPolicy::Public),
            (vec![], WireFormatPolicy::Private),
            (vec![Proposal::Remove(Remove { removed: 2 })], WireFormatPolicy::Public),
        ] {
            let (c, _) = alice.commit(&proposals, true, wf);
            alice.group.discard_staged_commit();
            commits.push(c);
        }
        let add_dave = Proposal::Add(Add { key_package: KeyPackage::decode_exact(&dave_kp).unwrap() });
        let (c, w) = alice.commit(&[add_dave], false, WireFormatPolicy::Public);
        commits.push(c);
        alice.group.merge_staged_commit_in_memory().unwrap();
        let welcome_dave = w.unwrap();
        let after_add_dave = alice.group.epoch_authenticator().to_vec();
        let group_info_with_dave = alice.group_info();
        alice_snapshot.restore(&mut alice.group);

        let group_info = alice.group_info();
        let tree = {
            let mut out = vec![0u8; 64 * 1024];
            let mut w = Writer::new(&mut out);
            alice.group.export_tree(&mut w).unwrap();
            let n = w.len();
            out.truncate(n);
            out
        };
        let mut proposals = Vec::new();
        for wf in [WireFormatPolicy::Public, WireFormatPolicy::Private] {
            proposals.push(alice.propose(&Proposal::Remove(Remove { removed: 2 }), wf));
            proposals.push(alice.propose(&add_dave, wf));
        }
        let app_alice = alice.send(b"hello from alice");
        let app_carol_text: &'static [u8] = b"hello from carol";
        let app_carol = carol.send(app_carol_text);
        let (commit_carol, _) = carol.commit(&[], true, WireFormatPolicy::Public);
        carol.group.merge_staged_commit_in_memory().unwrap();
        let after_carol = carol.group.epoch_authenticator().to_vec();

        let msgs = Messages {
            app_alice,
            app_carol,
            app_carol_text,
            proposals,
            commits,
            commit_carol,
            after_carol,
            welcome_dave,
            after_add_dave,
            group_info_with_dave,
            group_info,
            tree,
        };
        Self { alice, bob, carol, dave, dave_kp, dave_keys, bob_snapshot, empty_snapshot, epoch, authenticator, group_context, exported, membership_key, msgs }
    }

    /// The PublicMessage of the `FramedContent` at the start of `rest`,
    /// signed by the member it names (Alice for other senders), with the
    /// confirmation tag that follows it (commits) and the membership tag.
    pub fn resigned(&mut self, rest: &[u8]) -> Option<Vec<u8>> {
        let mut r = Reader::new(rest);
        let content = FramedContent::decode(&mut r).ok()?;
        let tag = r.remaining();
        let gc = EncodedGroupContext::decode(&self.group_context).ok()?;
        let signer = match content.sender {
            Sender::Member(1) => &self.bob.signer,
            Sender::Member(2) => &self.carol.signer,
            _ => &self.alice.signer,
        };
        let mut out = vec![0u8; rest.len() + 1024];
        let signed = public_message::sign(&gc, signer, &content, &mut out).ok()?;
        let tag = matches!(content.content, Content::Commit(_)).then_some(tag);
        Some(signed.finish(tag, Some(&self.membership_key)).ok()?.to_vec())
    }

    /// The cipher suite of this world.
    pub fn suite(&self) -> CipherSuite {
        self.alice.suite
    }

    /// Seals `gi` (a GroupInfo encoding) into a Welcome for Dave; with `forge`,
    /// first recomputes its confirmation tag and signs it.
    pub fn sealed(&self, gi: &[u8], forge: bool) -> Option<Vec<u8>> {
        let suite = self.suite();
        let joiner = Secret::from_slice(&[7u8; 32]).ok()?;
        let psk = psk_secret(suite, &[]).ok()?;
        let mut signed = vec![0u8; gi.len() + 256];
        let gi = if forge {
            let decoded = GroupInfo::decode_exact(gi).ok()?;
            let secrets = EpochSecrets::derive(suite, &joiner, &psk, decoded.group_context_bytes()).ok()?;
            let tag =
                confirmation_tag(suite, &secrets.confirmation_key, decoded.tbs.group_context.confirmed_transcript_hash);
            let tbs = GroupInfoTbs { confirmation_tag: tag.as_bytes(), ..decoded.tbs };
            let key = match tbs.signer {
                1 => &self.bob.signer,
                2 => &self.carol.signer,
                _ => &self.alice.signer,
            };
            GroupInfo::sign_into(suite, &tbs, key, &mut signed).ok()?
        } else {
            gi
        };
        let ws = welcome_secret(suite, &joiner, &psk).ok()?;
        let kp = KeyPackage::decode_exact(&self.dave_kp).ok()?;
        let member = NewMember::from_key_package(suite, &kp, None).ok()?;
        let params = WelcomeParams { suite, joiner_secret: &joiner, psks: &[], welcome_secret: &ws, group_info: gi };
        let mut out = vec![0u8; params.sizes(&[member]).ok()?.buffer_len];
        let mut rng = TestRng(5);
        Some(params.create(&[member], &mut rng, &Sequential, &mut out).ok()?.to_vec())
    }

    /// Processes `msg` on a fresh copy of Bob; merges a staged commit.
    pub fn bob_processes(&mut self, msg: &[u8]) -> Result<(), String> {
        self.bob_snapshot.restore(&mut self.bob.group);
        let mut m = msg.to_vec();
        match self.bob.group.process_message_in_memory(&mut m, &NoPsks, NOW) {
            Ok(Received::Commit(_)) => self.bob.group.merge_staged_commit_in_memory().map_err(|e| format!("{e:?}")),
            Ok(_) => Ok(()),
            Err(e) => Err(format!("{e:?}")),
        }
    }

    /// Dave joins from `welcome` on an empty slot.
    pub fn dave_joins(&mut self, welcome: &[u8]) -> Result<(), String> {
        self.empty_snapshot.restore(&mut self.dave.group);
        let mut buf = vec![0u8; welcome.len()];
        let signer = self.dave.signer.clone();
        let p = join_params(&self.dave_kp, &self.dave_keys, &signer);
        self.dave.group.join_in_memory(welcome, &p, &mut buf).map_err(|e| format!("{e:?}"))
    }

    /// Checks that the stateful targets' own seeds are accepted: every
    /// message of ours as is and re-signed (`group_process`), the Welcome
    /// for Dave and the GroupInfo sealed with a recomputed tag
    /// (`group_join`). Panics otherwise: seeds that are refused would
    /// leave the fuzzers outside the valid paths without anyone noticing.
    pub fn check_own_seeds(&mut self) {
        for m in self.group_messages() {
            self.bob_processes(&m).unwrap_or_else(|e| panic!("own message refused: {e}"));
            if let Some(MlsMessageBody::PublicMessage(pm)) = decode_message(&m) {
                let mut rest = pm.content_bytes().to_vec();
                rest.extend_from_slice(pm.auth.confirmation_tag.unwrap_or(&[]));
                let again = self.resigned(&rest).expect("own content re-signs");
                assert_eq!(again, m, "re-signing our own message gave other bytes");
            }
        }
        let welcome = self.msgs.welcome_dave.clone();
        self.dave_joins(&welcome).unwrap_or_else(|e| panic!("own Welcome refused: {e}"));
        assert_eq!(self.dave.group.epoch_authenticator(), self.msgs.after_add_dave.as_slice());
        let gi = strip_header(&self.msgs.group_info_with_dave, 4).unwrap().to_vec();
        let sealed = self.sealed(&gi, true).expect("own GroupInfo seals");
        self.dave_joins(&sealed).unwrap_or_else(|e| panic!("own GroupInfo, sealed, refused: {e}"));
        eprintln!("own seeds of the stateful targets, suite 0x{:04x}: all accepted", self.suite().to_u16());
    }

    /// Every group message of `msgs`, as `MLSMessage` encodings.
    pub fn group_messages(&self) -> Vec<Vec<u8>> {
        let m = &self.msgs;
        let mut v = vec![m.app_alice.clone(), m.app_carol.clone(), m.commit_carol.clone()];
        v.extend(m.proposals.iter().cloned());
        v.extend(m.commits.iter().cloned());
        v
    }

    /// Every message we make, of every wire format.
    pub fn all_messages(&mut self) -> Vec<Vec<u8>> {
        let mut v = self.group_messages();
        v.push(self.msgs.welcome_dave.clone());
        v.push(self.msgs.group_info.clone());
        v.push(self.msgs.group_info_with_dave.clone());
        let mut kp = self.dave_kp.clone();
        kp.splice(0..0, [0, 1, 0, 5]);
        v.push(kp);
        v
    }
}

thread_local! {
    static WORLDS: [RefCell<Option<World>>; 2] = const { [RefCell::new(None), RefCell::new(None)] };
}

/// Runs `f` on the live group of suite 1, built on first use.
pub fn with_world<R>(f: impl FnOnce(&mut World) -> R) -> R {
    with_world_in(0, f)
}

/// Runs `f` on the live group of `SUITES[i % 2]`, built on first use.
pub fn with_world_in<R>(i: usize, f: impl FnOnce(&mut World) -> R) -> R {
    let i = i % SUITES.len();
    WORLDS.with(|w| {
        let mut w = w[i].borrow_mut();
        let world = w.get_or_insert_with(|| World::build(SUITES[i]));
        f(world)
    })
}

// ---------------------------------------------------------------------------
// Seeds
// ---------------------------------------------------------------------------

/// Where the official vectors are: `$MLS_TEST_VECTORS`, else the repository's
/// copy in `tests/data/test-vectors`.
pub fn vectors_dir() -> PathBuf {
    match std::env::var_os("MLS_TEST_VECTORS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/test-vectors"),
    }
}

/// A hex field of a vector case.
pub struct VectorField {
    /// The field's name.
    pub key: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// The case's `group_id`, if it has one.
    pub group_id: Option<Vec<u8>>,
    /// The case's `cipher_suite`, if it has one.
    pub suite: Option<u64>,
}

/// Every hex field named one of `keys` in every vector file (arrays of hex
/// strings included), with its case's group ID and suite. Files that are
/// missing are skipped with a note on stderr.
pub fn vector_fields(keys: &[&str]) -> Vec<VectorField> {
    use serde_json::Value;
    fn walk(v: &Value, key: &str, case: &serde_json::Map<String, Value>, keys: &[&str], out: &mut Vec<VectorField>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    walk(v, k, case, keys, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, key, case, keys, out)),
            Value::String(s) if keys.contains(&key) => {
                if let Ok(bytes) = hex::decode(s) {
                    let group_id = case.get("group_id").and_then(|g| g.as_str()).and_then(|g| hex::decode(g).ok());
                    let suite = case.get("cipher_suite").and_then(|s| s.as_u64());
                    out.push(VectorField { key: key.to_string(), bytes, group_id, suite });
                }
            }
            _ => {}
        }
    }
    let dir = vectors_dir();
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("no test vectors at {} (set MLS_TEST_VECTORS): seeds from our own messages only", dir.display());
        return out;
    };
    let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "json")).collect();
    paths.sort();
    for p in paths {
        let Ok(text) = std::fs::read_to_string(&p) else { continue };
        let Ok(Value::Array(cases)) = serde_json::from_str::<Value>(&text) else { continue };
        for case in &cases {
            if let Value::Object(m) = case {
                walk(case, "", m, keys, &mut out);
            }
        }
    }
    out
}

/// Field names holding an `MLSMessage` (or, in message-protection, a
/// message body: harmless as a seed).
pub const MESSAGE_KEYS: &[&str] = &[
    "mls_welcome",
    "mls_group_info",
    "mls_key_package",
    "public_message_application",
    "public_message_proposal",
    "public_message_commit",
    "private_message",
    "key_package",
    "welcome",
    "commit",
    "proposals",
    "application_priv",
    "commit_priv",
    "commit_pub",
    "proposal_priv",
    "proposal_pub",
];

/// Field names holding a ratchet tree.
pub const TREE_KEYS: &[&str] = &["ratchet_tree", "tree", "tree_before", "tree_after"];

/// The body of an `MLSMessage` of wire format `wf`, if `m` is one.
pub fn strip_header(m: &[u8], wf: u16) -> Option<&[u8]> {
    let wf = wf.to_be_bytes();
    (m.len() >= 4 && m[..2] == [0, 1] && m[2..4] == wf).then(|| &m[4..])
}

/// Seeds larger than this are left out (keeps `-max_len` and CI short).
pub const MAX_SEED_LEN: usize = 48 * 1024;

/// If `MLS_FUZZ_SEEDS` names a directory, writes `seeds()` there (one file
/// each, named by content) and exits; otherwise returns.
pub fn maybe_write_seeds(target: &str, seeds: impl FnOnce() -> Vec<Vec<u8>>) {
    let Some(dir) = std::env::var_os("MLS_FUZZ_SEEDS") else { return };
    let dir = PathBuf::from(dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut n = 0usize;
    for s in seeds() {
        if s.len() > MAX_SEED_LEN {
            continue;
        }
        let h = fnv(&s);
        let path = dir.join(format!("seed-{h:016x}"));
        if !path.exists() {
            std::fs::write(path, &s).unwrap();
            n += 1;
        }
    }
    eprintln!("{target}: wrote {n} seeds to {}", dir.display());
    std::process::exit(0);
}

/// FNV-1a 64 of `b`: seed file names (duplicates collapse) and input sampling.
pub fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, x| (h ^ u64::from(*x)).wrapping_mul(0x100_0000_01b3))
}

/// Asserts that a decoded value re-encodes to exactly `bytes`.
pub fn assert_round_trip<T: Encode + std::fmt::Debug>(v: &T, bytes: &[u8]) {
    let len = v.encoded_len().expect("a decoded value has an encoded length");
    let mut out = vec![0u8; len];
    let enc = v.encode_to(&mut out).expect("a decoded value encodes");
    assert_eq!(enc, bytes, "re-encoding differs from the input: {v:?}");
}

/// Reads `n` as a `u8`-prefixed chunk: (chunk, rest).
pub fn split_prefixed(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&n, rest) = data.split_first()?;
    let n = usize::from(n);
    (rest.len() >= n).then(|| rest.split_at(n))
}

/// The `MLSMessage` body of `m` decoded, if it is one.
pub fn decode_message(m: &[u8]) -> Option<MlsMessageBody<'_>> {
    MlsMessage::decode_exact(m).ok().map(|m| m.body)
}

/// `Reader` re-export for the targets.
pub fn reader(b: &[u8]) -> Reader<'_> {
    Reader::new(b)
}
