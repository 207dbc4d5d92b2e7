//! Every rejection of the group layer, one test per code of
//! `docs/validation.md` (RFC 9420 §6, §7.3, §10.1, §12.1, §12.2, §12.4.2,
//! §12.4.3.1). Each test shows that the bad input is refused with the typed
//! error a caller can match on, that the group is exactly as it was
//! (epoch, epoch authenticator, exporter, tree, nothing staged), and that
//! the same group then works: the receiver processes the valid message,
//! members exchange application data and commit, and all members agree on
//! the epoch authenticator and the tree.
//!
//! Commits that [`Group::commit`] refuses to create (it validates the list
//! too, and that refusal is tested alongside) are crafted at the framing
//! level: a `FramedContent` with the bad `Commit`, signed with the
//! committer's key over its current GroupContext and MACed with the epoch's
//! membership key, with a placeholder confirmation tag: every check tested
//! here comes before the confirmation tag in the order of §12.4.2, so the
//! code asserted is that of the first failing check.
use mls_nostd::Capacity;
use mls_nostd::codec::{Decode, Encode, ListView, Reader, Writer};
use mls_nostd::credential::{CertificateChain, Credential};
use mls_nostd::crypto::hpke::{HpkePublicKey, derive_key_pair};
use mls_nostd::crypto::labeled::decrypt_with_label;
use mls_nostd::crypto::signature::SignaturePrivateKey;
use mls_nostd::crypto::{CipherSuite, CryptoError, Secret};
use mls_nostd::executor::Sequential;
use mls_nostd::extensions::{EXT_EXTERNAL_PUB, EXT_RATCHET_TREE, EXT_REQUIRED_CAPABILITIES, Extensions, U16List};
use mls_nostd::group::{
    CommitBuffers, CommitError, CommitOptions, CreateCommitError, CreateParams, Group, GroupConfig, GroupError,
    JoinError, JoinParams, MAX_GROUP_CONTEXT_LEN, MAX_PSKS_PER_COMMIT, ReceiveError, Received, WireFormatPolicy,
};
use mls_nostd::group_context::GroupContext;
use mls_nostd::key_package::{KeyPackage, KeyPackageError, KeyPackageParams, KeyPackagePrivateKeys, KeyPackageTbs};
use mls_nostd::key_schedule::{EpochSecrets, welcome_key_nonce, welcome_secret};
use mls_nostd::leaf_node::{Capabilities, LeafNode, LeafNodeContext, LeafNodeFields, LeafNodeSource, Lifetime};
use mls_nostd::messages::authenticated_content::FramedContentTbs;
use mls_nostd::messages::proposal::{
    Add, ExternalInit, GroupContextExtensions, PreSharedKey, Proposal, ProposalOrRef, ReInit, Remove, Update,
};
use mls_nostd::messages::welcome_secrets::WELCOME_LABEL;
use mls_nostd::messages::{
    AuthenticatedContent, Commit, Content, EncodedGroupContext, FramedContent, FramedContentAuthData, GroupInfo,
    GroupInfoTbs, GroupSecrets, HpkeCiphertext, MlsMessage, MlsMessageBody, NewMember, ProtectionError, Sender,
    UpdatePath, UpdatePathNode, WIRE_FORMAT_PUBLIC_MESSAGE, WelcomeError, WelcomeParams, WireGroupContext,
    public_message,
};
use mls_nostd::psk::{NoPsks, PreSharedKeyId, Psk, PskStore, ResumptionPskUsage, psk_secret};
use mls_nostd::ratchet_tree::tree::{RatchetTree, TreeError, decode_tree};
use mls_nostd::ratchet_tree::treekem::{LeafTemplate, TreeKemError};
use mls_nostd::identity::{CredentialUse, IdentityProvider, MemberIdentity};
use mls_nostd::ratchet_tree::validate::TreeValidationError;
use mls_nostd::secret_tree::{SecretTreeConfig, SecretTreeError};
use mls_nostd::transcript::confirmation_tag;
use mls_nostd::tree_math::{LeafIndex, NodeIndex};
use mls_tests::TestRng;

type G = Group<16, { 16 * 512 }, 64, 8192>;
const SUITE: CipherSuite = CipherSuite::X25519Aes128GcmSha256Ed25519;
const NOW: u64 = 1_800_000_000;
const LIFETIME: Lifetime = Lifetime { not_before: NOW - 10, not_after: NOW + 86_400 };
const GROUP_ID: &[u8] = b"rejections-group";
/// A non-default extension type every member of the fixture supports.
const EXT_X: u16 = 0xff00;
/// Capabilities of the fixture's leaves: mls10, suite 1, extension
/// `EXT_X`, basic and X.509 credentials.
static CAPS: [u8; 10] = [0, 1, 0, 1, 0xff, 0x00, 0, 1, 0, 2];

fn caps() -> Capabilities<'static> {
    Capabilities {
        versions: U16List::from_body(&CAPS[0..2]).unwrap(),
        cipher_suites: U16List::from_body(&CAPS[2..4]).unwrap(),
        extensions: U16List::from_body(&CAPS[4..6]).unwrap(),
        proposals: U16List::default(),
        credentials: U16List::from_body(&CAPS[6..10]).unwrap(),
    }
}

/// External PSKs by ID.
#[derive(Default)]
struct Psks(Vec<(Vec<u8>, Vec<u8>)>);

impl Psks {
    fn with(ids: &[&[u8]]) -> Self {
        Self(ids.iter().map(|id| (id.to_vec(), [id.to_vec(), b"-secret".to_vec()].concat())).collect())
    }
}

impl PskStore for Psks {
    fn external_psk(&self, psk_id: &[u8]) -> Option<&[u8]> {
        self.0.iter().find(|(id, _)| id == psk_id).map(|(_, v)| v.as_slice())
    }

    fn resumption_psk(&self, _: &[u8], _: u64) -> Option<&[u8]> {
        None
    }
}

/// What must not change when a message is refused.
#[derive(Debug, PartialEq)]
struct Snapshot {
    inactive: bool,
    epoch: u64,
    own_leaf: LeafIndex,
    authenticator: Vec<u8>,
    exporter: Vec<u8>,
    tree_hash: Vec<u8>,
    tree: Vec<u8>,
}

struct Member {
    name: &'static str,
    group: Box<G>,
    signer: SignaturePrivateKey,
    rng: TestRng,
}

fn buffers() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    (vec![0u8; 256 * 1024], vec![0u8; 64 * 1024], vec![0u8; 64 * 1024])
}

impl Member {
    fn new(name: &'static str, seed: u64) -> Self {
        let mut s = [0u8; 32];
        s[..8].copy_from_slice(&seed.to_be_bytes());
        Self {
            name,
            group: Box::new(G::EMPTY),
            signer: SignaturePrivateKey::from_slice(SUITE, &s).unwrap(),
            rng: TestRng(seed),
        }
    }

    fn key_package_with(&mut self, suite: CipherSuite, lifetime: Lifetime) -> (Vec<u8>, KeyPackagePrivateKeys) {
        let params = KeyPackageParams {
            suite,
            credential: Credential::Basic { identity: self.name.as_bytes() },
            lifetime,
            leaf_extensions: Extensions::default(),
            extensions: Extensions::default(),
            supported_extensions: U16List::from_body(&CAPS[4..6]).unwrap(),
            supported_proposals: U16List::default(),
        };
        let mut out = vec![0u8; 2048];
        let (bytes, keys) = KeyPackage::generate(&params, &self.signer, &mut self.rng, &mut out).unwrap();
        (bytes.to_vec(), keys)
    }

    fn key_package(&mut self) -> (Vec<u8>, KeyPackagePrivateKeys) {
        self.key_package_with(SUITE, LIFETIME)
    }

    fn template(&self) -> LeafTemplate<'static> {
        let sk: &'static [u8] = Box::leak(self.signer.public_key().as_bytes().to_vec().into_boxed_slice());
        LeafTemplate {
            signature_key: sk,
            credential: Credential::Basic { identity: self.name.as_bytes() },
            capabilities: caps(),
            extensions: Extensions::default(),
        }
    }

    /// Creates a Commit (staged, not merged): `(commit, welcome)`.
    fn try_commit(
        &mut self,
        proposals: &[Proposal<'_>],
        include_pending: bool,
        force_path: bool,
        wire_format: WireFormatPolicy,
        psks: &dyn PskStore,
    ) -> Result<(Vec<u8>, Option<Vec<u8>>), CreateCommitError> {
        let (mut m, mut w, mut gi) = buffers();
        let opts = CommitOptions {
            proposals,
            include_pending,
            force_path,
            ratchet_tree_in_welcome: true,
            wire_format,
            padding: 0,
            authenticated_data: b"",
            leaf: Some(self.template()),
        };
        let bufs = CommitBuffers { message: &mut m, welcome: &mut w, group_info: &mut gi };
        let out = self.group.commit_in_memory(&opts, psks, NOW, &mut self.rng, &Sequential, bufs)?;
        Ok((out.commit.to_vec(), out.welcome.map(<[u8]>::to_vec)))
    }

    /// Commits `proposals` and pending proposals as a PublicMessage, merges.
    fn commit(&mut self, proposals: &[Proposal<'_>], force_path: bool) -> (Vec<u8>, Option<Vec<u8>>) {
        let out = self
            .try_commit(proposals, true, force_path, WireFormatPolicy::Public, &NoPsks)
            .unwrap_or_else(|e| panic!("{}: commit: {e:?}", self.name));
        self.group.merge_staged_commit_in_memory().unwrap();
        out
    }

    fn receive_commit(&mut self, commit: &[u8]) {
        self.receive_commit_with(commit, &NoPsks);
    }

    fn receive_commit_with(&mut self, commit: &[u8], psks: &dyn PskStore) {
        let mut msg = commit.to_vec();
        match self.group.process_message_in_memory(&mut msg, psks, NOW) {
            Ok(Received::Commit(_)) => self.group.merge_staged_commit_in_memory().unwrap(),
            other => panic!("{}: expected a commit: {other:?}", self.name),
        }
    }

    /// Processes a proposal message; returns its reference.
    fn receive_proposal(&mut self, msg: &[u8]) -> Vec<u8> {
        let mut m = msg.to_vec();
        match self.group.process_message_in_memory(&mut m, &NoPsks, NOW) {
            Ok(Received::Proposal { reference, .. }) => reference.as_bytes().to_vec(),
            other => panic!("{}: expected a proposal: {other:?}", self.name),
        }
    }

    fn propose(&mut self, proposal: &Proposal<'_>) -> Vec<u8> {
        let mut out = vec![0u8; 8192];
        self.group.propose(proposal, WireFormatPolicy::Public, &mut self.rng, &mut out).unwrap().to_vec()
    }

    fn join_with(&mut self, welcome: &[u8], kp: &[u8], keys: &KeyPackagePrivateKeys, config: GroupConfig) {
        self.try_join(welcome, kp, keys, None, config).unwrap_or_else(|e| panic!("{}: join: {e:?}", self.name));
    }

    fn try_join(
        &mut self,
        welcome: &[u8],
        kp: &[u8],
        keys: &KeyPackagePrivateKeys,
        ratchet_tree: Option<&[u8]>,
        config: GroupConfig,
    ) -> Result<(), JoinError> {
        let params = JoinParams {
            executor: &mls_nostd::executor::Sequential,
            key_package: kp,
            keys,
            signer: &self.signer,
            ratchet_tree,
            psks: &NoPsks,
            config,
        };
        let mut buf = vec![0u8; welcome.len()];
        self.group.join_in_memory(welcome, &params, &mut buf)
    }

    fn send(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; data.len() + 512];
        let n = self.group.protect_application_in_memory(data, b"", 0, &mut self.rng, &mut out).unwrap().len();
        out.truncate(n);
        out
    }

    fn receive_app(&mut self, msg: &[u8]) -> Vec<u8> {
        let mut m = msg.to_vec();
        match self.group.process_message_in_memory(&mut m, &NoPsks, NOW) {
            Ok(Received::Application { data, .. }) => data.to_vec(),
            other => panic!("{}: expected application data: {other:?}", self.name),
        }
    }

    /// The encoded GroupContext of the current epoch. (Not from `tree()`:
    /// while a Commit is staged the tree holds its changes, and the current
    /// epoch's tree hash is the one kept in the state; `snapshot` checks
    /// that it is the tree's whenever nothing is staged.)
    fn context(&mut self) -> Vec<u8> {
        let mut buf = vec![0u8; MAX_GROUP_CONTEXT_LEN];
        self.group.group_context(&mut buf).unwrap().to_vec()
    }

    fn tree_bytes(&mut self) -> Vec<u8> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut w = Writer::new(&mut buf);
        // The tree as stored, staged changes included (`export_tree` waits
        // for a merge): what a refusal must leave unchanged.
        self.group.tree_slices_for_testing().export(&mut w).unwrap();
        let n = w.len();
        buf.truncate(n);
        buf
    }

    fn leaf(&mut self, i: u32) -> Vec<u8> {
        self.group.tree().leaf_bytes(LeafIndex(i)).unwrap().to_vec()
    }

    fn snapshot(&mut self) -> Snapshot {
        if self.group.is_inactive() {
            return Snapshot {
                inactive: true,
                epoch: self.group.epoch(),
                own_leaf: LeafIndex(0),
                authenticator: vec![],
                exporter: vec![],
                tree_hash: vec![],
                tree: vec![],
            };
        }
        let mut exporter = vec![0u8; 32];
        self.group.export_secret(b"snapshot", b"", &mut exporter).unwrap();
        if !self.group.has_staged_commit() {
            let tree_hash = self.group.tree_slices_for_testing().root_tree_hash().unwrap();
            assert_eq!(self.group.state_for_testing().tree_hash, tree_hash, "{}: the kept tree hash is not the tree's", self.name);
        }
        Snapshot {
            inactive: false,
            epoch: self.group.epoch(),
            own_leaf: self.group.own_leaf(),
            authenticator: self.group.epoch_authenticator().to_vec(),
            exporter,
            tree_hash: self.group.tree_slices_for_testing().root_tree_hash().unwrap().as_bytes().to_vec(),
            tree: self.tree_bytes(),
        }
    }
}

/// Alice, Bob and Carol in epoch 2: Alice created the group, added Bob and
/// Carol (no path), Bob committed an update (with a path).
struct Fx {
    alice: Member,
    bob: Member,
    carol: Member,
}

fn fixture() -> Fx {
    fixture_with(GroupConfig::default())
}

fn fixture_with(config: GroupConfig) -> Fx {
    let mut alice = Member::new("alice", 1);
    let mut bob = Member::new("bob", 2);
    let mut carol = Member::new("carol", 3);
    let params = CreateParams {
        suite: SUITE,
        group_id: GROUP_ID,
        credential: Credential::Basic { identity: b"alice" },
        lifetime: LIFETIME,
        capabilities: caps(),
        extensions: Extensions::default(),
        config,
    };
    alice.group.create(&params, &alice.signer.clone(), &mut alice.rng).unwrap();
    let (bob_kp, bob_keys) = bob.key_package();
    let (carol_kp, carol_keys) = carol.key_package();
    let adds = [add(&bob_kp), add(&carol_kp)];
    let (_, welcome) = alice.commit(&adds, false);
    let welcome = welcome.unwrap();
    bob.join_with(&welcome, &bob_kp, &bob_keys, config);
    carol.join_with(&welcome, &carol_kp, &carol_keys, config);
    let (commit, _) = bob.commit(&[], true);
    alice.receive_commit(&commit);
    carol.receive_commit(&commit);
    let mut fx = Fx { alice, bob, carol };
    fx.agree();
    assert_eq!(fx.alice.group.epoch(), 2);
    fx
}

impl Fx {
    fn agree(&mut self) {
        let first = self.alice.snapshot();
        for m in [&mut self.bob, &mut self.carol] {
            let s = m.snapshot();
            assert_eq!(s.epoch, first.epoch, "{} epoch", m.name);
            assert_eq!(s.authenticator, first.authenticator, "{} epoch authenticator", m.name);
            assert_eq!(s.exporter, first.exporter, "{} exporter", m.name);
            assert_eq!(s.tree_hash, first.tree_hash, "{} tree hash", m.name);
        }
    }

    /// The group works: application data both ways, a commit from Carol
    /// that the others process, and every member agrees.
    fn usable(&mut self) {
        let m = self.alice.send(b"still here");
        assert_eq!(self.bob.receive_app(&m), b"still here");
        assert_eq!(self.carol.receive_app(&m), b"still here");
        let m = self.bob.send(b"me too");
        assert_eq!(self.alice.receive_app(&m), b"me too");
        let (commit, _) = self.carol.commit(&[], true);
        self.alice.receive_commit(&commit);
        self.bob.receive_commit(&commit);
        self.agree();
    }
}

fn add(kp: &[u8]) -> Proposal<'_> {
    Proposal::Add(Add { key_package: KeyPackage::decode_exact(kp).unwrap() })
}

fn remove(leaf: u32) -> Proposal<'static> {
    Proposal::Remove(Remove { removed: leaf })
}

fn external_psk<'a>(id: &'a [u8], nonce: &'a [u8]) -> Proposal<'a> {
    Proposal::PreSharedKey(PreSharedKey { psk: PreSharedKeyId { psk: Psk::External { psk_id: id }, psk_nonce: nonce } })
}

fn gce(body: &[u8]) -> Proposal<'_> {
    Proposal::GroupContextExtensions(GroupContextExtensions { extensions: Extensions::from_body(body).unwrap() })
}

/// The body of an `Extension extensions<V>` with one extension.
fn extension(extension_type: u16, data: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; data.len() + 8];
    let mut w = Writer::new(&mut buf);
    w.write_u16(extension_type).unwrap();
    w.write_opaque(data).unwrap();
    let n = w.len();
    buf.truncate(n);
    buf
}

/// `required_capabilities` data requiring extension types `exts`.
fn required_extensions(exts: &[u16]) -> Vec<u8> {
    let body: Vec<u8> = exts.iter().flat_map(|e| e.to_be_bytes()).collect();
    let mut out = vec![body.len() as u8];
    out.extend_from_slice(&body);
    out.extend_from_slice(&[0, 0]);
    out
}

/// Every proposal by value.
fn by_value<'a>(proposals: &[Proposal<'a>]) -> Vec<ProposalOrRef<'a>> {
    proposals.iter().map(|p| ProposalOrRef::Proposal(*p)).collect()
}

fn encode_list(list: &[ProposalOrRef<'_>]) -> Vec<u8> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut w = Writer::new(&mut buf);
    for p in list {
        p.encode(&mut w).unwrap();
    }
    let n = w.len();
    buf.truncate(n);
    buf
}

/// A Commit from `m` with the proposal list `list` and `path`, as a
/// PublicMessage signed and MACed for the current epoch, with confirmation
/// tag `tag`.
fn craft_commit_with(m: &mut Member, list: &[ProposalOrRef<'_>], path: Option<UpdatePath<'_>>, tag: &[u8]) -> Vec<u8> {
    let gc_bytes = m.context();
    let gc = EncodedGroupContext::decode(&gc_bytes).unwrap();
    let body = encode_list(list);
    let proposals = ListView::from_body(&body).unwrap();
    let state = m.group.state_for_testing();
    let content = FramedContent {
        group_id: state.group_id.as_slice(),
        epoch: state.epoch,
        sender: Sender::Member(m.group.own_leaf().0),
        authenticated_data: b"",
        content: Content::Commit(Commit { proposals, path }),
    };
    let mut out = vec![0u8; 256 * 1024];
    let signed = public_message::sign(&gc, &m.signer, &content, &mut out).unwrap();
    signed.finish(Some(tag), Some(&state.secrets.membership_key)).unwrap().to_vec()
}

/// [`craft_commit_with`] a placeholder confirmation tag: for lists that are
/// refused before the tag is checked.
fn craft_commit(m: &mut Member, list: &[ProposalOrRef<'_>], path: Option<UpdatePath<'_>>) -> Vec<u8> {
    craft_commit_with(m, list, path, &[0x55; 32])
}

/// `m` refuses `msg` with `want` and is exactly as it was, with nothing staged.
fn refuse(m: &mut Member, msg: &[u8], psks: &dyn PskStore, want: ReceiveError) {
    let before = m.snapshot();
    let mut buf = msg.to_vec();
    let got = m.group.process_message_in_memory(&mut buf, psks, NOW).err();
    assert_eq!(got, Some(want), "{}", m.name);
    assert_eq!(m.snapshot(), before, "{}: a refused message changed the group", m.name);
    assert_eq!(m.group.merge_staged_commit_in_memory(), Err(GroupError::NothingStaged), "{}: something was staged", m.name);
}

/// [`refuse`] of a Commit for `code`.
fn refuse_commit(m: &mut Member, msg: &[u8], psks: &dyn PskStore, want: CommitError, code: &str) {
    assert_eq!(want.code(), code);
    refuse(m, msg, psks, ReceiveError::Commit(want));
}

/// `m`'s [`Group::commit`] refuses `proposals` with `want`, and `m` is
/// exactly as it was, with nothing staged.
fn refuse_create(
    m: &mut Member,
    proposals: &[Proposal<'_>],
    include_pending: bool,
    psks: &dyn PskStore,
    want: CommitError,
) {
    let before = m.snapshot();
    let got = m.try_commit(proposals, include_pending, false, WireFormatPolicy::Public, psks).err();
    assert_eq!(got, Some(CreateCommitError::Commit(want)), "{}: creation", m.name);
    assert_eq!(m.snapshot(), before, "{}: a refused commit changed the group", m.name);
    assert_eq!(m.group.merge_staged_commit_in_memory(), Err(GroupError::NothingStaged), "{}: something was staged", m.name);
}

/// Alice commits `proposals` and every valid pending proposal (her
/// [`Group::commit`] leaves out the invalid ones); Bob and Carol process it.
/// Returns the summary Bob staged.
fn commit_pending(fx: &mut Fx, proposals: &[Proposal<'_>]) -> mls_nostd::group::StagedCommitSummary {
    let (commit, _) = fx.alice.try_commit(proposals, true, true, WireFormatPolicy::Public, &NoPsks).unwrap();
    fx.alice.group.merge_staged_commit_in_memory().unwrap();
    let mut m = commit.clone();
    let summary = match fx.bob.group.process_message_in_memory(&mut m, &NoPsks, NOW) {
        Ok(Received::Commit(s)) => s,
        other => panic!("bob: {other:?}"),
    };
    fx.bob.group.merge_staged_commit_in_memory().unwrap();
    fx.carol.receive_commit(&commit);
    fx.agree();
    summary
}

/// Sends a commit of `proposals` from Alice that Bob and Carol process, then
/// checks the group is usable: the receivers' state after a refusal is the
/// one every member builds on.
fn valid_commit_then_usable(fx: &mut Fx, proposals: &[Proposal<'_>], psks: &dyn PskStore) {
    let (commit, _) = fx.alice.try_commit(proposals, false, true, WireFormatPolicy::Public, psks).unwrap();
    fx.alice.group.merge_staged_commit_in_memory().unwrap();
    fx.bob.receive_commit_with(&commit, psks);
    fx.carol.receive_commit_with(&commit, psks);
    fx.agree();
    fx.usable();
}

/// Replaces the membership tag of a PublicMessage with the one `m`
/// computes over it in its current epoch.
fn remac(m: &mut Member, msg: &mut [u8]) {
    let gc = m.context();
    let key = m.group.state_for_testing().secrets.membership_key.clone();
    let tag = {
        let MlsMessageBody::PublicMessage(pm) = MlsMessage::decode_exact(msg).unwrap().body else {
            panic!("not a PublicMessage")
        };
        let tbs = FramedContentTbs::new(WIRE_FORMAT_PUBLIC_MESSAGE, pm.content_bytes(), &gc).unwrap();
        tbs.membership_tag(SUITE, &key, &pm.auth).unwrap()
    };
    let n = msg.len();
    msg[n - 32..].copy_from_slice(tag.as_bytes());
}

fn flip(msg: &[u8], at: usize) -> Vec<u8> {
    let mut m = msg.to_vec();
    m[at] ^= 0x01;
    m
}

/// Offsets in an `MLSMessage(PrivateMessage)`: the body of
/// `encrypted_sender_data` and the start of the ciphertext body.
fn private_offsets(msg: &[u8]) -> (std::ops::Range<usize>, usize) {
    let mut r = Reader::new(&msg[4..]);
    r.read_opaque().unwrap();
    r.read_u64().unwrap();
    r.read_u8().unwrap();
    r.read_opaque().unwrap();
    let esd_len = r.read_opaque().unwrap().len();
    let esd_end = msg.len() - r.remaining().len();
    let ct_len = r.read_opaque().unwrap().len();
    (esd_end - esd_len..esd_end, msg.len() - ct_len)
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack.windows(needle.len()).position(|w| w == needle).expect("needle present")
}

/// An `update` LeafNode for `m`'s leaf `i`: its current fields with source
/// `update` and `encryption_key` replaced, signed by `signer`.
fn update_leaf(m: &mut Member, i: u32, encryption_key: &[u8], signer: &SignaturePrivateKey) -> Vec<u8> {
    let current = m.leaf(i);
    let leaf = LeafNode::decode_exact(&current).unwrap();
    let fields = LeafNodeFields { encryption_key, source: LeafNodeSource::Update, ..leaf.fields };
    let ctx = LeafNodeContext { group_id: GROUP_ID, leaf_index: i };
    let mut out = vec![0u8; 2048];
    LeafNode::sign_into(SUITE, &fields, Some(ctx), signer, &mut out).unwrap().to_vec()
}

fn fresh_key(seed: u8) -> Vec<u8> {
    derive_key_pair(SUITE, &[seed; 32]).unwrap().1.as_bytes().to_vec()
}

// ---------------------------------------------------------------------------
// Framing (§6): the message is refused before the group looks at it.
// ---------------------------------------------------------------------------

/// A PublicMessage commit whose signature was changed: the membership tag
/// catches it; re-MACed (an insider), the signature does.
#[test]
fn public_message_bad_signature() {
    let mut fx = fixture();
    let (commit, _) = fx.alice.try_commit(&[remove(2)], false, false, WireFormatPolicy::Public, &NoPsks).unwrap();
    // signature<V> (64) | confirmation_tag<V> (32) | membership_tag<V> (32)
    let sig_byte = commit.len() - 33 - 33 - 10;
    let tampered = flip(&commit, sig_byte);
    refuse(&mut fx.bob, &tampered, &NoPsks, ReceiveError::Protection(ProtectionError::BadMembershipTag));
    let mut remaced = tampered.clone();
    remac(&mut fx.bob, &mut remaced);
    refuse(&mut fx.bob, &remaced, &NoPsks, ReceiveError::Protection(ProtectionError::BadSignature));
    // A proposal signed by another member's key under Alice's name.
    let mut out = vec![0u8; 4096];
    let gc = fx.bob.context();
    let gc = EncodedGroupContext::decode(&gc).unwrap();
    let content = FramedContent {
        group_id: GROUP_ID,
        epoch: 2,
        sender: Sender::Member(0),
        authenticated_data: b"",
        content: Content::Proposal(remove(2)),
    };
    let key = fx.bob.group.state_for_testing().secrets.membership_key.clone();
    let forged = public_message::protect(&gc, &fx.carol.signer, &content, Some(&key), &mut out).unwrap().to_vec();
    refuse(&mut fx.bob, &forged, &NoPsks, ReceiveError::Protection(ProtectionError::BadSignature));

    fx.alice.group.merge_staged_commit_in_memory().unwrap();
    fx.bob.receive_commit(&commit);
    assert!(fx.carol.receive_commit_removed(&commit));
    let m = fx.alice.send(b"after");
    assert_eq!(fx.bob.receive_app(&m), b"after");
    assert_eq!(fx.alice.snapshot().authenticator, fx.bob.snapshot().authenticator);
}

impl Member {
    /// Processes a commit that removes us; true once merged and inactive.
    fn receive_commit_removed(&mut self, commit: &[u8]) -> bool {
        let mut msg = commit.to_vec();
        match self.group.process_message_in_memory(&mut msg, &NoPsks, NOW) {
            Ok(Received::Commit(s)) => assert!(s.removes_us, "{}", self.name),
            other => panic!("{}: expected a commit: {other:?}", self.name),
        }
        self.group.merge_staged_commit_in_memory().unwrap();
        self.group.is_inactive()
    }
}

/// A PublicMessage whose membership tag was changed, or MACed with another
/// epoch's membership key.
#[test]
fn public_message_bad_membership_tag() {
    let mut fx = fixture();
    let proposal = fx.alice.propose(&remove(2));
    let n = proposal.len();
    refuse(&mut fx.bob, &flip(&proposal, n - 1), &NoPsks, ReceiveError::Protection(ProtectionError::BadMembershipTag));
    refuse(&mut fx.bob, &flip(&proposal, n - 40), &NoPsks, ReceiveError::Protection(ProtectionError::BadMembershipTag));
    fx.bob.receive_proposal(&proposal);
    fx.carol.receive_proposal(&proposal);
    let (commit, _) = fx.alice.commit(&[], false);
    fx.bob.receive_commit(&commit);
    assert!(fx.carol.receive_commit_removed(&commit));
    let m = fx.bob.send(b"after");
    assert_eq!(fx.alice.receive_app(&m), b"after");
}

/// A PrivateMessage whose sender data was changed (§6.3.2), for application
/// data and for a commit.
#[test]
fn private_message_bad_sender_data() {
    let mut fx = fixture();
    let m = fx.alice.send(b"hello");
    let (sender_data, _) = private_offsets(&m);
    refuse(
        &mut fx.bob,
        &flip(&m, sender_data.start + 2),
        &NoPsks,
        ReceiveError::Protection(ProtectionError::SenderDataDecryptionFailed),
    );
    assert_eq!(fx.bob.receive_app(&m), b"hello");
    let (commit, _) = fx.alice.try_commit(&[], false, true, WireFormatPolicy::Private, &NoPsks).unwrap();
    let (sender_data, _) = private_offsets(&commit);
    refuse(
        &mut fx.carol,
        &flip(&commit, sender_data.end - 1),
        &NoPsks,
        ReceiveError::Protection(ProtectionError::SenderDataDecryptionFailed),
    );
    fx.alice.group.merge_staged_commit_in_memory().unwrap();
    fx.bob.receive_commit(&commit);
    fx.carol.receive_commit(&commit);
    fx.agree();
    fx.usable();
}

/// A PrivateMessage whose ciphertext was changed (§6.3.1): in the sample
/// the sender-data key is derived from, or after it.
#[test]
fn private_message_bad_ciphertext() {
    let mut fx = fixture();
    let m = fx.alice.send(b"hello, this is a longer message");
    let (_, ct) = private_offsets(&m);
    let sample = ReceiveError::Protection(ProtectionError::SenderDataDecryptionFailed);
    let content = ReceiveError::Protection(ProtectionError::ContentDecryptionFailed);
    refuse(&mut fx.bob, &flip(&m, ct + 1), &NoPsks, sample);
    refuse(&mut fx.bob, &flip(&m, m.len() - 1), &NoPsks, content);
    refuse(&mut fx.bob, &flip(&m, ct + 40), &NoPsks, content);
    assert_eq!(fx.bob.receive_app(&m), b"hello, this is a longer message");
    let (commit, _) = fx.alice.try_commit(&[], false, true, WireFormatPolicy::Private, &NoPsks).unwrap();
    refuse(&mut fx.carol, &flip(&commit, commit.len() - 20), &NoPsks, content);
    fx.alice.group.merge_staged_commit_in_memory().unwrap();
    fx.bob.receive_commit(&commit);
    fx.carol.receive_commit(&commit);
    fx.agree();
    fx.usable();
}

/// The same application message twice (§9.2: its key is deleted once used).
#[test]
fn application_replay() {
    let mut fx = fixture();
    let m1 = fx.alice.send(b"one");
    let m2 = fx.alice.send(b"two");
    assert_eq!(fx.bob.receive_app(&m1), b"one");
    refuse(
        &mut fx.bob,
        &m1,
        &NoPsks,
        ReceiveError::Protection(ProtectionError::SecretTree(SecretTreeError::KeyConsumed)),
    );
    assert_eq!(fx.bob.receive_app(&m2), b"two");
    refuse(
        &mut fx.bob,
        &m2,
        &NoPsks,
        ReceiveError::Protection(ProtectionError::SecretTree(SecretTreeError::KeyConsumed)),
    );
    fx.usable();
}

/// A generation further ahead than the receiver's `max_forward_distance`.
#[test]
fn application_too_far_ahead() {
    let config = GroupConfig { secret_tree: SecretTreeConfig { max_forward_distance: 4 }, ..GroupConfig::default() };
    let mut fx = fixture_with(config);
    let msgs: Vec<Vec<u8>> = (0..6u8).map(|i| fx.alice.send(&[i])).collect();
    refuse(
        &mut fx.bob,
        &msgs[5],
        &NoPsks,
        ReceiveError::Protection(ProtectionError::SecretTree(SecretTreeError::TooFarAhead)),
    );
    assert_eq!(fx.bob.receive_app(&msgs[4]), [4]);
    assert_eq!(fx.bob.receive_app(&msgs[5]), [5]);
    assert_eq!(fx.bob.receive_app(&msgs[0]), [0]);
    assert_eq!(fx.carol.receive_app(&msgs[4]), [4]);
    fx.usable();
}

/// A message of another group: a byte of the group id changed (the
/// framing layer), and a verified content handed to the group layer
/// directly (FRM-GROUP).
#[test]
fn frm_group_wrong_group_id() {
    let mut fx = fixture();
    let (commit, _) = fx.alice.try_commit(&[], false, true, WireFormatPolicy::Public, &NoPsks).unwrap();
    // MLSMessage head (4), group_id<V> prefix (1), first byte.
    refuse(&mut fx.bob, &flip(&commit, 5), &NoPsks, ReceiveError::Protection(ProtectionError::WrongGroupId));
    let m = fx.carol.send(b"x");
    refuse(&mut fx.bob, &flip(&m, 5), &NoPsks, ReceiveError::Protection(ProtectionError::WrongGroupId));
    direct(&mut fx.bob, b"other group", 2, Sender::Member(0), true, CommitError::WrongGroupId, "FRM-GROUP");
    fx.alice.group.merge_staged_commit_in_memory().unwrap();
    fx.bob.receive_commit(&commit);
    fx.carol.receive_commit(&commit);
    assert_eq!(fx.bob.receive_app(&m), b"x");
    fx.agree();
    fx.usable();
}

/// Hands [`Group::stage_commit`] (a Commit) or [`Group::store_proposal`] (a
/// Proposal) a content as if verified, and expects `want`, the group unchanged.
fn direct(m: &mut Member, group_id: &[u8], epoch: u64, sender: Sender, commit: bool, want: CommitError, code: &str) {
    assert_eq!(want.code(), code);
    let empty = Content::Commit(Commit { proposals: ListView::EMPTY, path: None });
    let content = FramedContent {
        group_id,
        epoch,
        sender,
        authenticated_data: b"",
        content: if commit { empty } else { Content::Proposal(remove(1)) },
    };
    let mut buf = vec![0u8; 1024];
    let bytes = content.encode_to(&mut buf).unwrap();
    let tag = [0u8; 32];
    let auth = FramedContentAuthData { signature: &[0; 64], confirmation_tag: commit.then_some(&tag[..]) };
    let ac = AuthenticatedContent::from_parts(WIRE_FORMAT_PUBLIC_MESSAGE, bytes, auth).unwrap();
    let before = m.snapshot();
    if commit {
        assert_eq!(m.group.stage_commit_for_testing(&ac, &NoPsks, NOW).err(), Some(want));
    } else {
        assert_eq!(m.group.store_proposal_for_testing(&ac).err(), Some(want));
    }
    assert_eq!(m.snapshot(), before);
    assert_eq!(m.group.merge_staged_commit_in_memory(), Err(GroupError::NothingStaged));
}

/// Messages of another epoch: a commit of the previous epoch, handshake
/// messages of the previous epoch as PrivateMessages, application data two
/// epochs old, a future epoch; and the group layer's own check (FRM-EPOCH).
#[test]
fn frm_epoch_wrong_epoch() {
    let mut fx = fixture();
    let old_app = fx.carol.send(b"epoch 2");
    let (stale_commit, _) = fx.carol.try_commit(&[], false, true, WireFormatPolicy::Public, &NoPsks).unwrap();
    fx.carol.group.discard_staged_commit();
    let (stale_private, _) = fx.carol.try_commit(&[], false, true, WireFormatPolicy::Private, &NoPsks).unwrap();
    fx.carol.group.discard_staged_commit();
    let proposal = {
        let mut out = vec![0u8; 4096];
        fx.carol.group.propose(&remove(0), WireFormatPolicy::Private, &mut fx.carol.rng, &mut out).unwrap().to_vec()
    };
    let (commit, _) = fx.alice.commit(&[], true);
    fx.bob.receive_commit(&commit);
    fx.carol.receive_commit(&commit);
    let wrong_epoch = ReceiveError::Protection(ProtectionError::WrongEpoch);
    refuse(&mut fx.bob, &stale_commit, &NoPsks, wrong_epoch);
    refuse(&mut fx.bob, &stale_private, &NoPsks, wrong_epoch);
    refuse(&mut fx.bob, &proposal, &NoPsks, wrong_epoch);
    // Application data of the previous epoch is still readable (late
    // messages); two epochs back it is not.
    let (commit, _) = fx.alice.commit(&[], true);
    fx.bob.receive_commit(&commit);
    fx.carol.receive_commit(&commit);
    refuse(&mut fx.bob, &old_app, &NoPsks, wrong_epoch);
    // A future epoch: the epoch field of a current message changed.
    let m = fx.carol.send(b"now");
    let mut r = Reader::new(&m[4..]);
    let gid = r.read_opaque().unwrap().len();
    let epoch_byte = 4 + 1 + gid + 7;
    refuse(&mut fx.bob, &flip(&m, epoch_byte), &NoPsks, wrong_epoch);
    assert_eq!(fx.bob.receive_app(&m), b"now");
    let epoch = fx.bob.group.epoch();
    direct(&mut fx.bob, GROUP_ID, epoch + 1, Sender::Member(0), true, CommitError::WrongEpoch, "FRM-EPOCH");
    direct(&mut fx.bob, GROUP_ID, epoch - 1, Sender::Member(0), false, CommitError::WrongEpoch, "FRM-EPOCH");
    fx.usable();
}

/// The group layer is handed the wrong content type (FRM-CONTENT).
#[test]
fn frm_content_wrong_content_type() {
    let mut fx = fixture();
    let content = FramedContent {
        group_id: GROUP_ID,
        epoch: 2,
        sender: Sender::Member(0),
        authenticated_data: b"",
        content: Content::Proposal(remove(2)),
    };
    let mut buf = vec![0u8; 1024];
    let bytes = content.encode_to(&mut buf).unwrap();
    let auth = FramedContentAuthData { signature: &[0; 64], confirmation_tag: None };
    let ac = AuthenticatedContent::from_parts(WIRE_FORMAT_PUBLIC_MESSAGE, bytes, auth).unwrap();
    let before = fx.bob.snapshot();
    let want = CommitError::WrongContentType;
    assert_eq!(want.code(), "FRM-CONTENT");
    assert_eq!(fx.bob.group.stage_commit_for_testing(&ac, &NoPsks, NOW).err(), Some(want));
    let commit =
        FramedContent { content: Content::Commit(Commit { proposals: ListView::EMPTY, path: None }), ..content };
    let mut buf = vec![0u8; 1024];
    let bytes = commit.encode_to(&mut buf).unwrap();
    let tag = [0u8; 32];
    let auth = FramedContentAuthData { signature: &[0; 64], confirmation_tag: Some(&tag) };
    let ac = AuthenticatedContent::from_parts(WIRE_FORMAT_PUBLIC_MESSAGE, bytes, auth).unwrap();
    assert_eq!(fx.bob.group.store_proposal_for_testing(&ac).err(), Some(want));
    assert_eq!(fx.bob.snapshot(), before);
    fx.usable();
}

/// Messages from a member after it was removed, from a leaf outside the
/// tree, and (group layer) from non-members (FRM-SENDER).
#[test]
fn frm_sender_removed_member() {
    let mut fx = fixture();
    let (commit, _) = fx.alice.commit(&[remove(2)], false);
    fx.bob.receive_commit(&commit);
    assert!(fx.carol.receive_commit_removed(&commit));
    // Carol signs a proposal for the new epoch as leaf 2; to isolate the
    // sender check it carries a valid membership tag (as if an insider
    // leaked the membership key).
    let gc = fx.bob.context();
    let gc = EncodedGroupContext::decode(&gc).unwrap();
    let key = fx.bob.group.state_for_testing().secrets.membership_key.clone();
    let unknown = ReceiveError::Protection(ProtectionError::UnknownSender);
    for leaf in [2, 9] {
        let content = FramedContent {
            group_id: GROUP_ID,
            epoch: 3,
            sender: Sender::Member(leaf),
            authenticated_data: b"",
            content: Content::Proposal(remove(0)),
        };
        let mut out = vec![0u8; 4096];
        let msg = public_message::protect(&gc, &fx.carol.signer, &content, Some(&key), &mut out).unwrap().to_vec();
        refuse(&mut fx.bob, &msg, &NoPsks, unknown);
    }
    // The removed member's own group refuses to work.
    assert_eq!(
        fx.carol.group.protect_application_in_memory(b"x", b"", 0, &mut fx.carol.rng, &mut [0u8; 512]).err(),
        Some(ReceiveError::Inactive)
    );
    assert_eq!(
        fx.carol.try_commit(&[], false, true, WireFormatPolicy::Public, &NoPsks).err(),
        Some(CreateCommitError::Inactive)
    );
    let mut out = vec![0u8; 4096];
    assert_eq!(
        fx.carol.group.propose(&remove(0), WireFormatPolicy::Public, &mut fx.carol.rng, &mut out).err(),
        Some(CreateCommitError::Inactive)
    );
    let m = fx.alice.send(b"two of us");
    let before = fx.carol.snapshot();
    assert_eq!(fx.carol.group.process_message_in_memory(&mut m.clone(), &NoPsks, NOW).err(), Some(ReceiveError::Inactive));
    assert_eq!(fx.carol.snapshot(), before);
    assert_eq!(fx.bob.receive_app(&m), b"two of us");
    for sender in [Sender::Member(2), Sender::Member(7), Sender::External(0), Sender::NewMemberProposal] {
        direct(&mut fx.bob, GROUP_ID, 3, sender, true, CommitError::UnknownSender, "FRM-SENDER");
    }
    direct(&mut fx.bob, GROUP_ID, 3, Sender::Member(2), false, CommitError::UnknownSender, "FRM-SENDER");
    let (commit, _) = fx.bob.commit(&[], true);
    fx.alice.receive_commit(&commit);
    assert_eq!(fx.alice.snapshot().authenticator, fx.bob.snapshot().authenticator);
    assert_eq!(fx.alice.snapshot().tree_hash, fx.bob.snapshot().tree_hash);
}

/// Application data sent as a PublicMessage (§6.2), built by hand: the
/// framing layer refuses to create one.
#[test]
fn frm_public_application_data() {
    let mut fx = fixture();
    let gc = fx.bob.context();
    let content = FramedContent {
        group_id: GROUP_ID,
        epoch: 2,
        sender: Sender::Member(0),
        authenticated_data: b"",
        content: Content::Application(b"in the clear"),
    };
    let mut buf = vec![0u8; 1024];
    let content_bytes = content.encode_to(&mut buf).unwrap().to_vec();
    let tbs = FramedContentTbs::new(WIRE_FORMAT_PUBLIC_MESSAGE, &content_bytes, &gc).unwrap();
    let signature = tbs.sign(SUITE, &fx.alice.signer).unwrap();
    let auth = FramedContentAuthData { signature: signature.as_ref(), confirmation_tag: None };
    let key = fx.bob.group.state_for_testing().secrets.membership_key.clone();
    let mtag = tbs.membership_tag(SUITE, &key, &auth).unwrap();
    let mut msg = vec![0, 1, 0, 1];
    msg.extend_from_slice(&content_bytes);
    let mut tail = vec![0u8; 256];
    let mut w = Writer::new(&mut tail);
    auth.encode(&mut w).unwrap();
    w.write_opaque(mtag.as_bytes()).unwrap();
    let n = w.len();
    msg.extend_from_slice(&tail[..n]);
    refuse(&mut fx.bob, &msg, &NoPsks, ReceiveError::Protection(ProtectionError::WrongContentType));
    fx.usable();
}

/// A Welcome or KeyPackage handed to `process_message`.
#[test]
fn not_a_group_message() {
    let mut fx = fixture();
    let mut dave = Member::new("dave", 4);
    let (kp, _) = dave.key_package();
    let (_, welcome) = fx.alice.try_commit(&[add(&kp)], false, false, WireFormatPolicy::Public, &NoPsks).unwrap();
    fx.alice.group.discard_staged_commit();
    refuse(&mut fx.bob, &welcome.unwrap(), &NoPsks, ReceiveError::NotAGroupMessage);
    let mut kp_message = vec![0, 1, 0, 5];
    kp_message.extend_from_slice(&kp);
    refuse(&mut fx.bob, &kp_message, &NoPsks, ReceiveError::NotAGroupMessage);
    fx.usable();
}

// ---------------------------------------------------------------------------
// Commits (§12.2 proposal list, §12.1 proposals, §12.4.2 processing).
// ---------------------------------------------------------------------------

/// A proposal reference that names no proposal of this epoch.
#[test]
fn prl_ref_unknown_reference() {
    let mut fx = fixture();
    let proposal = fx.carol.propose(&remove(2));
    let reference = fx.alice.receive_proposal(&proposal);
    // Bob has not seen the proposal; a made-up reference; one of the wrong length.
    let unknown = CommitError::UnknownProposalRef;
    let msg = craft_commit(&mut fx.alice, &[ProposalOrRef::Reference(&reference)], None);
    refuse_commit(&mut fx.bob, &msg, &NoPsks, unknown, "PRL-REF");
    fx.bob.receive_proposal(&proposal);
    for r in [&[0x42; 32][..], &[0x42; 5][..]] {
        let msg = craft_commit(&mut fx.alice, &[ProposalOrRef::Reference(r)], None);
        refuse_commit(&mut fx.bob, &msg, &NoPsks, unknown, "PRL-REF");
    }
    // A proposal of the previous epoch.
    let old = fx.bob.propose(&remove(2));
    let old_ref = fx.alice.receive_proposal(&old);
    fx.carol.receive_proposal(&old);
    let (commit, _) = fx.alice.commit(&[], true);
    fx.bob.receive_commit(&commit);
    assert!(fx.carol.receive_commit_removed(&commit));
    let msg = craft_commit(&mut fx.alice, &[ProposalOrRef::Reference(&old_ref)], None);
    refuse_commit(&mut fx.bob, &msg, &NoPsks, unknown, "PRL-REF");
    let (commit, _) = fx.alice.commit(&[], true);
    fx.bob.receive_commit(&commit);
    assert_eq!(fx.alice.snapshot().authenticator, fx.bob.snapshot().authenticator);
}

/// The committer's own Update, by value or by reference (§12.2).
#[test]
fn prl_upd_self_update_from_committer() {
    let mut fx = fixture();
    let new_key = fresh_key(1);
    let signer = fx.alice.signer.clone();
    let leaf = update_leaf(&mut fx.alice, 0, &new_key, &signer);
    let update = Proposal::Update(Update { leaf_node: LeafNode::decode_exact(&leaf).unwrap() });
    let want = CommitError::UpdateFromCommitter;
    let msg = craft_commit(&mut fx.alice, &by_value(&[update]), None);
    refuse_commit(&mut fx.bob, &msg, &NoPsks, want, "PRL-UPD-SELF");
    refuse_create(&mut fx.alice, &[update], false, &NoPsks, want);
    // Alice proposes her Update; a Commit of hers may not include it.
    let proposal = fx.alice.propose(&update);
    let reference = fx.bob.receive_proposal(&proposal);
    fx.carol.receive_proposal(&proposal);
    let msg = craft_commit(&mut fx.alice, &[ProposalOrRef::Reference(&reference)], None);
    refuse_commit(&mut fx.bob, &msg, &NoPsks, want, "PRL-UPD-SELF");
    // Alice's commit of the pending proposals leaves her own Update out.
    assert_eq!(commit_pending(&mut fx, &[]).updates, 0);
    fx.usable();
}

/// A Remove of the committer (§12.2).
#[test]
fn prl_rem_self_remove_of_committer() {
    let mut fx = fixture();
    let want = CommitError::RemovesCommitter;
    let msg = craft_commit(&mut fx.alice, &by_value(&[remove(0)]), None);
    refuse_commit(&mut fx.bob, &msg, &NoPsks, want, "PRL-REM-SELF");
    refuse_commit(&mut fx.carol, &msg, &NoPsks, want, "PRL-REM-SELF");
    refuse_create(&mut fx.alice, &[remove(0)], false, &NoPsks, want);
    // By reference: Bob proposes removing Alice; Alice cannot commit it.
    let proposal = fx.bob.propose(&remove(0));
    let reference = fx.alice.receive_proposal(&proposal);
    fx.carol.receive_proposal(&proposal);
    let msg = craft_commit(&mut fx.alice, &[ProposalOrRef::Reference(&reference)], None);
    refuse_commit(&mut fx.carol, &msg, &NoPsks, want, "PRL-REM-SELF");
    // Alice's commit of the pending proposals leaves the Remove of her out.
    assert_eq!(commit_pending(&mut fx, &[]).removes, 0);
    fx.usable();
}

/// Two Update/Remove proposals for one leaf (§12.2).
#[test]
fn prl_upd_rem_dup_same_leaf_twice() {
    let mut fx = fixture();
    let want = CommitError::DuplicateUpdateOrRemove;
    let msg = craft_commit(&mut fx.alice, &by_value(&[remove(2), remove(2)]), None);
    refuse_commit(&mut fx.bob, &msg, &NoPsks, want, "PRL-UPD-REM-DUP");
    refuse_create(&mut fx.alice, &[remove(2), remove(2)], false, &NoPsks, want);
    // Bob's Update and a Remove of Bob.
    let key = fresh_key(2);
    let signer = fx.bob.signer.clone();
    let leaf = update_leaf(&mut fx.bob, 1, &key, &signer);
    let update = Proposal::Update(Update { leaf_node: LeafNode::decode_exact(&leaf).unwrap() });
    let proposal = fx.bob.propose(&update);
    let reference = fx.alice.receive_proposal(&proposal);
    fx.carol.receive_proposal(&proposal);
    let list = [ProposalOrRef::Reference(&reference), ProposalOrRef::Proposal(remove(1))];
    let msg = craft_commit(&mut fx.alice, &list, None);
    refuse_commit(&mut fx.carol, &msg, &NoPsks, want, "PRL-UPD-REM-DUP");
    // Alice's own commit prefers the Remove and leaves the Update out.
    fx.alice.try_commit(&[remove(1)], true, false, WireFormatPolicy::Public, &NoPsks).unwrap();
    fx.alice.group.discard_staged_commit();
    valid_commit_then_usable(&mut fx, &[], &NoPsks);
}

/// A Remove of a blank leaf, or of a leaf outside the tree (§12.1.3).
#[test]
fn prp_rem_blank_remove_of_blank_leaf() {
    let mut fx = fixture();
    let want = CommitError::RemoveOfBlankLeaf;
    for leaf in [3, 4, 1000, u32::MAX] {
        let msg = craft_commit(&mut fx.alice, &by_value(&[remove(leaf)]), None);
        refuse_commit(&mut fx.bob, &msg, &NoPsks, want, "PRP-REM-BLANK");
        refuse_create(&mut fx.alice, &[remove(leaf)], false, &NoPsks, want);
    }
    valid_commit_then_usable(&mut fx, &[], &NoPsks);
}

/// Two Adds of the same client: the same KeyPackage twice, or two
/// KeyPackages with one signature key (§12.2).
#[test]
fn prl_add_dup_same_client_twice() {
    let mut fx = fixture();
    let mut dave = Member::new("dave", 4);
    let (kp1, _) = dave.key_package();
    let (kp2, _) = dave.key_package();
    let want = CommitError::DuplicateAdd;
    for adds in [[add(&kp1), add(&kp1)], [add(&kp1), add(&kp2)]] {
        let msg = craft_commit(&mut fx.alice, &by_value(&adds), None);
        refuse_commit(&mut fx.bob, &msg, &NoPsks, want, "PRL-ADD-DUP");
        refuse_create(&mut fx.alice, &adds, false, &NoPsks, want);
    }
    let (commit, welcome) = fx.alice.try_commit(&[add(&kp2)], false, false, WireFormatPolicy::Public, &NoPsks).unwrap();
    fx.alice.group.merge_staged_commit_in_memory().unwrap();
    fx.bob.receive_commit(&commit);
    fx.carol.receive_commit(&commit);
    assert!(welcome.is_some());
    fx.agree();
    fx.usable();
}

/// An Add of a client already in the group (same signature key), unless
/// the same Commit removes it (§12.2).
#[test]
fn prl_add_member_existing_member() {
    let mut fx = fixture();
    let (bob_again, bob_keys) = fx.bob.key_package();
    let want = CommitError::AddOfExistingMember;
    let msg = craft_commit(&mut fx.alice, &by_value(&[add(&bob_again)]), None);
    refuse_commit(&mut fx.carol, &msg, &NoPsks, want, "PRL-ADD-MEMBER");
    refuse_create(&mut fx.alice, &[add(&bob_again)], false, &NoPsks, want);
    // Alice's own client.
    let (alice_again, _) = fx.alice.key_package();
    let msg = craft_commit(&mut fx.alice, &by_value(&[add(&alice_again)]), None);
    refuse_commit(&mut fx.carol, &msg, &NoPsks, want, "PRL-ADD-MEMBER");
    // With a Remove of Bob, Bob's new KeyPackage is valid: he rejoins.
    let (commit, welcome) =
        fx.alice.try_commit(&[remove(1), add(&bob_again)], false, false, WireFormatPolicy::Public, &NoPsks).unwrap();
    fx.alice.group.merge_staged_commit_in_memory().unwrap();
    fx.carol.receive_commit(&commit);
    assert!(fx.bob.receive_commit_removed(&commit));
    fx.bob.join_with(&welcome.unwrap(), &bob_again, &bob_keys, GroupConfig::default());
    fx.agree();
    fx.usable();
}

/// A KeyPackageRef-worthy KeyPackage that is invalid (§10.1): expired, a
/// lifetime longer than allowed, another cipher suite, a bad signature.
#[test]
fn prp_add_kp_invalid_key_package() {
    let mut fx = fixture();
    let mut dave = Member::new("dave", 4);
    let expired = dave.key_package_with(SUITE, Lifetime { not_before: NOW - 1000, not_after: NOW - 1 }).0;
    let too_long = dave.key_package_with(SUITE, Lifetime { not_before: NOW - 1, not_after: NOW + 365 * 86_400 }).0;
    let other_suite = dave.key_package_with(CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519, LIFETIME).0;
    let (valid, _) = dave.key_package();
    let bad_signature = flip(&valid, valid.len() - 1);
    let not_yet = dave.key_package_with(SUITE, Lifetime { not_before: NOW + 100, not_after: NOW + 1000 }).0;
    for (kp, e) in [
        (&expired, KeyPackageError::Expired),
        (&not_yet, KeyPackageError::Expired),
        (&too_long, KeyPackageError::LifetimeTooLong),
        (&other_suite, KeyPackageError::WrongCipherSuite),
        (&bad_signature, KeyPackageError::InvalidSignature),
    ] {
        let want = CommitError::InvalidKeyPackage(e);
        let msg = craft_commit(&mut fx.alice, &by_value(&[add(kp)]), None);
        refuse_commit(&mut fx.bob, &msg, &NoPsks, want, "PRP-ADD-KP");
        refuse_create(&mut fx.alice, &[add(kp)], false, &NoPsks, want);
        // Proposed by Bob, it is left out of Alice's commit of pending
        // proposals (whose signatures she checks before choosing).
        let proposal = fx.bob.propose(&add(kp));
        fx.alice.receive_proposal(&proposal);
        fx.carol.receive_proposal(&proposal);
        assert_eq!(commit_pending(&mut fx, &[]).adds, 0, "PRP-ADD-KP pending, {e:?}");
    }
    // Hand-made KeyPackages of Dave's, each breaking one rule of §10.1/§7.3.
    let view = KeyPackage::decode_exact(&valid).unwrap();
    let base = view.tbs.leaf_node.fields;
    let ctx = LeafNodeContext { group_id: GROUP_ID, leaf_index: 3 };
    let x509_only = [0u8, 2];
    let two = [extension(EXT_X, b"a"), extension(EXT_X, b"b")].concat();
    let unlisted = extension(0xff01, b"x");
    let cases = [
        (
            kp_with(&dave.signer, &base, None, 2, view.tbs.init_key, Extensions::default()),
            KeyPackageError::WrongVersion,
        ),
        (
            kp_with(
                &dave.signer,
                &LeafNodeFields { source: LeafNodeSource::Update, ..base },
                Some(ctx),
                1,
                view.tbs.init_key,
                Extensions::default(),
            ),
            KeyPackageError::WrongLeafSource,
        ),
        (
            kp_with(&dave.signer, &base, None, 1, base.encryption_key, Extensions::default()),
            KeyPackageError::InitKeyReused,
        ),
        (
            kp_with(
                &dave.signer,
                &LeafNodeFields {
                    capabilities: Capabilities {
                        credentials: U16List::from_body(&x509_only).unwrap(),
                        ..base.capabilities
                    },
                    ..base
                },
                None,
                1,
                view.tbs.init_key,
                Extensions::default(),
            ),
            KeyPackageError::UnsupportedCredential,
        ),
        (
            kp_with(&dave.signer, &base, None, 1, view.tbs.init_key, Extensions::from_body(&two).unwrap()),
            KeyPackageError::DuplicateExtension,
        ),
        (
            kp_with(
                &dave.signer,
                &LeafNodeFields { extensions: Extensions::from_body(&unlisted).unwrap(), ..base },
                None,
                1,
                view.tbs.init_key,
                Extensions::default(),
            ),
            KeyPackageError::UnsupportedExtension,
        ),
        (
            kp_with(&fx.carol.signer, &base, None, 1, view.tbs.init_key, Extensions::default()),
            KeyPackageError::InvalidLeafSignature,
        ),
        (
            kp_with(&dave.signer, &base, None, 1, &view.tbs.init_key[..31], Extensions::default()),
            KeyPackageError::InvalidKey,
        ),
        (
            kp_with(
                &dave.signer,
                &LeafNodeFields {
                    capabilities: Capabilities { versions: U16List::default(), ..base.capabilities },
                    ..base
                },
                None,
                1,
                view.tbs.init_key,
                Extensions::default(),
            ),
            KeyPackageError::UnsupportedCapabilities,
        ),
    ];
    for (kp, e) in &cases {
        let want = CommitError::InvalidKeyPackage(*e);
        let msg = craft_commit(&mut fx.alice, &by_value(&[add(kp)]), None);
        refuse_commit(&mut fx.bob, &msg, &NoPsks, want, "PRP-ADD-KP");
        refuse_create(&mut fx.alice, &[add(kp)], false, &NoPsks, want);
    }
    valid_commit_then_usable(&mut fx, &[add(&valid)], &NoPsks);
}

/// A KeyPackage of `fields` (its leaf signed by `signer` with `ctx`),
/// `version`, `init_key` and `extensions`, signed by `signer`.
fn kp_with(
    signer: &SignaturePrivateKey,
    fields: &LeafNodeFields<'_>,
    ctx: Option<LeafNodeContext<'_>>,
    version: u16,
    init_key: &[u8],
    extensions: Extensions<'_>,
) -> Vec<u8> {
    let mut leaf_buf = vec![0u8; 2048];
    let leaf = LeafNode::sign_into(SUITE, fields, ctx, signer, &mut leaf_buf).unwrap().to_vec();
    let tbs = KeyPackageTbs {
        version,
        cipher_suite: SUITE.to_u16(),
        init_key,
        leaf_node: LeafNode::decode_exact(&leaf).unwrap(),
        extensions,
    };
    let mut out = vec![0u8; 4096];
    KeyPackage::sign_into(SUITE, &tbs, signer, &mut out).unwrap().to_vec()
}

/// An Update whose leaf is invalid (§12.1.2, §7.3): not of source `update`,
/// keeping the old encryption key, or badly signed.
#[test]
fn prp_upd_leaf_invalid_update() {
    let mut fx = fixture();
    let want = CommitError::InvalidUpdateLeaf;
    let signer = fx.bob.signer.clone();
    let current = fx.bob.leaf(1);
    let old_key = LeafNode::decode_exact(&current).unwrap().fields.encryption_key.to_vec();
    let same_key = update_leaf(&mut fx.bob, 1, &old_key, &signer);
    let fresh = update_leaf(&mut fx.bob, 1, &fresh_key(3), &signer);
    let bad_signature = flip(&fresh, fresh.len() - 1);
    let wrong_signer = update_leaf(&mut fx.bob, 1, &fresh_key(3), &fx.carol.signer.clone());
    for leaf in [&current, &same_key, &bad_signature, &wrong_signer] {
        let update = Proposal::Update(Update { leaf_node: LeafNode::decode_exact(leaf).unwrap() });
        let proposal = fx.bob.propose(&update);
        let reference = fx.alice.receive_proposal(&proposal);
        fx.carol.receive_proposal(&proposal);
        let msg = craft_commit(&mut fx.alice, &[ProposalOrRef::Reference(&reference)], None);
        refuse_commit(&mut fx.carol, &msg, &NoPsks, want, "PRP-UPD-LEAF");
        // Alice's commit of the pending proposals leaves the invalid Update out.
        assert_eq!(commit_pending(&mut fx, &[]).updates, 0);
    }
    fx.usable();
}

/// Two PreSharedKey proposals with the same PreSharedKeyID (§12.2): the
/// same PSK and the same nonce.
#[test]
fn prl_psk_dup_same_psk_twice() {
    let mut fx = fixture();
    let psks = Psks::with(&[b"psk-1", b"psk-2"]);
    let want = CommitError::DuplicatePsk;
    let (n1, n2) = ([1u8; 32], [2u8; 32]);
    for list in [
        [external_psk(b"psk-1", &n1), external_psk(b"psk-1", &n1)],
        [external_psk(b"psk-2", &n2), external_psk(b"psk-2", &n2)],
    ] {
        let msg = craft_commit(&mut fx.alice, &by_value(&list), None);
        refuse_commit(&mut fx.bob, &msg, &psks, want, "PRL-PSK-DUP");
        refuse_create(&mut fx.alice, &list, false, &psks, want);
    }
    valid_commit_then_usable(&mut fx, &[external_psk(b"psk-1", &n1), external_psk(b"psk-2", &n2)], &psks);
}

/// Regression (found by the interop tests against OpenMLS and mls-rs): one
/// PSK proposed twice with different nonces is two PreSharedKeyIDs, not a
/// duplicate (§12.2 compares the whole `PreSharedKeyID`, `psk_nonce`
/// included; §8.4 injects each). Both anchors commit and accept this; we
/// refused it and split from the group.
#[test]
fn prl_psk_dup_same_psk_fresh_nonces_is_valid() {
    let mut fx = fixture();
    let psks = Psks::with(&[b"psk-1"]);
    let (n1, n2) = ([1u8; 32], [2u8; 32]);
    valid_commit_then_usable(&mut fx, &[external_psk(b"psk-1", &n1), external_psk(b"psk-1", &n2)], &psks);
}

/// Regression (issue #13): two pending PreSharedKey proposals with the same
/// PreSharedKeyID (PSK and nonce), one from Bob and one from Carol, and then
/// one pending and the same one by value. Alice's `include_pending` Commit
/// takes the PreSharedKeyID once (§12.2) and the others accept it. Fails on
/// 7208f14: `select_pending` took both and Alice's own Commit failed with
/// `CreateCommitError::Commit(DuplicatePsk)`.
#[test]
fn prl_psk_dup_pending_duplicates_dropped() {
    let mut fx = fixture();
    let psks = Psks::with(&[b"psk-1"]);
    let nonce = [7u8; 32];
    let p = external_psk(b"psk-1", &nonce);
    for by_value in [false, true] {
        let from_bob = fx.bob.propose(&p);
        let from_carol = fx.carol.propose(&p);
        fx.alice.receive_proposal(&from_bob);
        fx.alice.receive_proposal(&from_carol);
        fx.bob.receive_proposal(&from_carol);
        fx.carol.receive_proposal(&from_bob);
        let list: &[Proposal<'_>] = if by_value { &[p] } else { &[] };
        let (commit, _) = fx
            .alice
            .try_commit(list, true, true, WireFormatPolicy::Public, &psks)
            .unwrap_or_else(|e| panic!("by value {by_value}: {e:?}"));
        fx.alice.group.merge_staged_commit_in_memory().unwrap();
        let mut m = commit.clone();
        match fx.bob.group.process_message_in_memory(&mut m, &psks, NOW) {
            Ok(Received::Commit(s)) => assert_eq!(s.psks, 1, "by value {by_value}: the PSK is injected once"),
            other => panic!("bob: {other:?}"),
        }
        fx.bob.group.merge_staged_commit_in_memory().unwrap();
        fx.carol.receive_commit_with(&commit, &psks);
        fx.agree();
    }
    fx.usable();
}

/// A PSK that is unknown, with a nonce not of length `Nh`, or a resumption
/// PSK of usage `reinit`/`branch` outside a reinitialization or branch
/// (§12.1.4).
#[test]
fn prp_psk_unknown_psk() {
    let mut fx = fixture();
    let psks = Psks::with(&[b"psk-1"]);
    let want = CommitError::InvalidPsk;
    let nonce = [1u8; 32];
    let reinit = Proposal::PreSharedKey(PreSharedKey {
        psk: PreSharedKeyId {
            psk: Psk::Resumption { usage: ResumptionPskUsage::Reinit, psk_group_id: GROUP_ID, psk_epoch: 1 },
            psk_nonce: &nonce,
        },
    });
    let unknown_epoch = Proposal::PreSharedKey(PreSharedKey {
        psk: PreSharedKeyId {
            psk: Psk::Resumption { usage: ResumptionPskUsage::Application, psk_group_id: GROUP_ID, psk_epoch: 77 },
            psk_nonce: &nonce,
        },
    });
    for p in [external_psk(b"psk-9", &nonce), external_psk(b"psk-1", &nonce[..16]), reinit, unknown_epoch] {
        let msg = craft_commit(&mut fx.alice, &by_value(&[p]), None);
        refuse_commit(&mut fx.bob, &msg, &psks, want, "PRP-PSK");
        refuse_create(&mut fx.alice, &[p], false, &psks, want);
    }
    // Known to Alice, not to Bob: Bob refuses the (otherwise valid) commit.
    let (commit, _) =
        fx.alice.try_commit(&[external_psk(b"psk-1", &nonce)], false, true, WireFormatPolicy::Public, &psks).unwrap();
    refuse_commit(&mut fx.bob, &commit, &NoPsks, want, "PRP-PSK");
    fx.alice.group.merge_staged_commit_in_memory().unwrap();
    fx.bob.receive_commit_with(&commit, &psks);
    fx.carol.receive_commit_with(&commit, &psks);
    fx.agree();
    // Our own group's resumption PSK of an epoch we kept is known.
    let own = Proposal::PreSharedKey(PreSharedKey {
        psk: PreSharedKeyId {
            psk: Psk::Resumption { usage: ResumptionPskUsage::Application, psk_group_id: GROUP_ID, psk_epoch: 2 },
            psk_nonce: &nonce,
        },
    });
    valid_commit_then_usable(&mut fx, &[own], &NoPsks);
}

/// Two GroupContextExtensions proposals (§12.2).
#[test]
fn prl_gce_dup_two_group_context_extensions() {
    let mut fx = fixture();
    let want = CommitError::MultipleGroupContextExtensions;
    let ext = extension(EXT_X, b"x");
    let list = [gce(&[]), gce(&ext)];
    let msg = craft_commit(&mut fx.alice, &by_value(&list), None);
    refuse_commit(&mut fx.bob, &msg, &NoPsks, want, "PRL-GCE-DUP");
    refuse_create(&mut fx.alice, &list, false, &NoPsks, want);
    valid_commit_then_usable(&mut fx, &[gce(&ext)], &NoPsks);
    assert!(!fx.alice.group.state_for_testing().extensions.as_slice().is_empty());
}

/// GroupContextExtensions that some member does not support (§12.1.7): an
/// extension type, or a `required_capabilities` listing one, unsupported by
/// a member; or one extension type twice.
#[test]
fn prp_gce_caps_unsupported_group_context_extensions() {
    let mut fx = fixture();
    let want = CommitError::UnsupportedGroupContextExtensions;
    let unsupported = extension(0xff01, b"x");
    let required = extension(EXT_REQUIRED_CAPABILITIES, &required_extensions(&[0xff01]));
    let twice = [extension(EXT_X, b"a"), extension(EXT_X, b"b")].concat();
    for body in [&unsupported, &required, &twice] {
        let msg = craft_commit(&mut fx.alice, &by_value(&[gce(body)]), None);
        refuse_commit(&mut fx.bob, &msg, &NoPsks, want, "PRP-GCE-CAPS");
        refuse_create(&mut fx.alice, &[gce(body)], false, &NoPsks, want);
    }
    // Required capabilities every member has are fine.
    let ok = extension(EXT_REQUIRED_CAPABILITIES, &required_extensions(&[EXT_X]));
    valid_commit_then_usable(&mut fx, &[gce(&ok)], &NoPsks);
}

/// A ReInit together with any other proposal (§12.2).
#[test]
fn prl_reinit_with_other_proposals() {
    let mut fx = fixture();
    let want = CommitError::ReInitWithOtherProposals;
    let reinit = Proposal::ReInit(ReInit {
        group_id: b"next group",
        version: 1,
        cipher_suite: SUITE.to_u16(),
        extensions: Extensions::default(),
    });
    let (dave_kp, _) = Member::new("dave", 4).key_package();
    for list in [vec![reinit, remove(2)], vec![add(&dave_kp), reinit], vec![reinit, reinit], vec![reinit, gce(&[])]] {
        let msg = craft_commit(&mut fx.alice, &by_value(&list), None);
        refuse_commit(&mut fx.bob, &msg, &NoPsks, want, "PRL-REINIT");
        refuse_create(&mut fx.alice, &list, false, &NoPsks, want);
    }
    // The ReInit alone is a valid Commit (no path needed).
    let (commit, _) = fx.alice.try_commit(&[reinit], false, false, WireFormatPolicy::Public, &NoPsks).unwrap();
    let mut m = commit.clone();
    match fx.bob.group.process_message_in_memory(&mut m, &NoPsks, NOW) {
        Ok(Received::Commit(s)) => assert!(s.reinit && !s.has_path),
        other => panic!("{other:?}"),
    }
    fx.bob.group.discard_staged_commit();
    fx.alice.group.discard_staged_commit();
    fx.usable();
}

/// A ReInit to a protocol version below the group's (§12.1.5).
#[test]
fn prp_reinit_version_below_the_groups() {
    let mut fx = fixture();
    let want = CommitError::InvalidReInit;
    let reinit = Proposal::ReInit(ReInit {
        group_id: b"next group",
        version: 0,
        cipher_suite: SUITE.to_u16(),
        extensions: Extensions::default(),
    });
    let msg = craft_commit(&mut fx.alice, &by_value(&[reinit]), None);
    refuse_commit(&mut fx.bob, &msg, &NoPsks, want, "PRP-REINIT");
    refuse_create(&mut fx.alice, &[reinit], false, &NoPsks, want);
    // Proposed by Bob, it is left out of Alice's commit of pending proposals.
    let proposal = fx.bob.propose(&reinit);
    fx.alice.receive_proposal(&proposal);
    fx.carol.receive_proposal(&proposal);
    let (commit, _) = fx.alice.try_commit(&[], true, true, WireFormatPolicy::Public, &NoPsks).unwrap();
    fx.alice.group.merge_staged_commit_in_memory().unwrap();
    fx.bob.receive_commit(&commit);
    fx.carol.receive_commit(&commit);
    assert!(fx.alice.group.reinit().is_none());
    fx.agree();
    fx.usable();
}

/// An ExternalInit in a member's Commit (§12.2).
#[test]
fn prl_extinit_in_member_commit() {
    let mut fx = fixture();
    let want = CommitError::ExternalInitInMemberCommit;
    let kem_output = fresh_key(9);
    let ext_init = Proposal::ExternalInit(ExternalInit { kem_output: &kem_output });
    for list in [vec![ext_init], vec![remove(2), ext_init]] {
        let msg = craft_commit(&mut fx.alice, &by_value(&list), None);
        refuse_commit(&mut fx.bob, &msg, &NoPsks, want, "PRL-EXTINIT");
        refuse_create(&mut fx.alice, &list, false, &NoPsks, want);
    }
    valid_commit_then_usable(&mut fx, &[], &NoPsks);
}

/// An Add whose leaf lacks what the group requires (§7.3, §12.2): a
/// `required_capabilities` set by the same Commit.
#[test]
fn leaf_caps_add_lacks_required_capability() {
    let mut fx = fixture();
    let want = CommitError::UnsupportedCapabilities;
    let mut dave = Member::new("dave", 4);
    let params = KeyPackageParams {
        suite: SUITE,
        credential: Credential::Basic { identity: b"dave" },
        lifetime: LIFETIME,
        leaf_extensions: Extensions::default(),
        extensions: Extensions::default(),
        supported_extensions: U16List::default(),
        supported_proposals: U16List::default(),
    };
    let mut out = vec![0u8; 2048];
    let kp = KeyPackage::generate(&params, &dave.signer, &mut dave.rng, &mut out).unwrap().0.to_vec();
    let required = extension(EXT_REQUIRED_CAPABILITIES, &required_extensions(&[EXT_X]));
    let list = [gce(&required), add(&kp)];
    let msg = craft_commit(&mut fx.alice, &by_value(&list), None);
    refuse_commit(&mut fx.bob, &msg, &NoPsks, want, "LEAF-CAPS");
    refuse_create(&mut fx.alice, &list, false, &NoPsks, want);
    // Without the requirement Dave can join.
    valid_commit_then_usable(&mut fx, &[add(&kp)], &NoPsks);
}

/// The credential types of an Add (§7.2, §7.3): the new leaf supports every
/// type in use, and every member supports its type, counting the Adds
/// before it in the same Commit (since issue #16 the check is O(1) per Add:
/// the types are gathered once per Commit instead of decoding every
/// member's leaf per Add). The members are basic and support basic and
/// X.509.
#[test]
fn leaf_caps_add_credential_types() {
    let mut fx = fixture();
    let want = CommitError::UnsupportedCapabilities;
    let x509 = fake_x509();
    let basic = Credential::Basic { identity: b"frank" };
    let (mut dave, mut erin, mut frank) = (Member::new("dave", 4), Member::new("erin", 5), Member::new("frank", 6));
    let x509_only = kp_of_types(&mut dave, x509, &[0, 2]);
    let x509_and_basic = kp_of_types(&mut erin, x509, &[0, 1, 0, 2]);
    let basic_only = kp_of_types(&mut frank, basic, &[0, 1]);
    // An X.509 member that does not support the basic type in use.
    refuse_commit(&mut fx.bob, &craft_commit(&mut fx.alice, &by_value(&[add(&x509_only)]), None), &NoPsks, want, "LEAF-CAPS");
    refuse_create(&mut fx.alice, &[add(&x509_only)], false, &NoPsks, want);
    // A basic-only member after an X.509 one of the same Commit.
    let list = [add(&x509_and_basic), add(&basic_only)];
    refuse_commit(&mut fx.bob, &craft_commit(&mut fx.alice, &by_value(&list), None), &NoPsks, want, "LEAF-CAPS");
    refuse_create(&mut fx.alice, &list, false, &NoPsks, want);
    // Alone, X.509 supporting both fits; after it, basic-only no longer does.
    valid_commit_then_usable(&mut fx, &[add(&x509_and_basic)], &NoPsks);
    let mut george = Member::new("george", 7);
    let basic_only = kp_of_types(&mut george, Credential::Basic { identity: b"george" }, &[0, 1]);
    refuse_commit(&mut fx.bob, &craft_commit(&mut fx.alice, &by_value(&[add(&basic_only)]), None), &NoPsks, want, "LEAF-CAPS");
    refuse_create(&mut fx.alice, &[add(&basic_only)], false, &NoPsks, want);
}

/// A new member's credential type must be supported by every member
/// already in the group (§7.2): once a basic-only member is in, an X.509
/// member (supporting both types) cannot be added, by value or received.
#[test]
fn leaf_caps_add_type_a_member_does_not_support() {
    let mut fx = fixture();
    let want = CommitError::UnsupportedCapabilities;
    let x509_and_basic = kp_of_types(&mut Member::new("erin", 5), fake_x509(), &[0, 1, 0, 2]);
    // Without frank the X.509 member fits (leaf_caps_add_credential_types);
    // frank joins.
    add_basic_only_frank(&mut fx);
    refuse_commit(&mut fx.bob, &craft_commit(&mut fx.alice, &by_value(&[add(&x509_and_basic)]), None), &NoPsks, want, "LEAF-CAPS");
    refuse_create(&mut fx.alice, &[add(&x509_and_basic)], false, &NoPsks, want);
}

/// The credential types of a Commit's path leaf (§7.3, §12.4.2): it may not
/// take a type a member does not support, nor drop support for a type in
/// use (a path leaf keeping its type and its supported types is admitted
/// without reading the members' leaves, since issue #16).
#[test]
fn leaf_caps_path_leaf_credential_types() {
    let mut fx = fixture();
    let want = CommitError::UnsupportedCapabilities;
    add_basic_only_frank(&mut fx);
    let (commit, _) = fx.alice.try_commit(&[], false, true, WireFormatPolicy::Public, &NoPsks).unwrap();
    fx.alice.group.discard_staged_commit();
    let path = path_of(&commit);
    let path = UpdatePath::decode_exact(&path).unwrap();
    let ctx = LeafNodeContext { group_id: GROUP_ID, leaf_index: 0 };
    let signer = fx.alice.signer.clone();
    let mut refused = 0;
    // X.509, which Frank does not support; basic, no longer supporting basic.
    for (credential, types) in [(fake_x509(), &[0u8, 1, 0, 2][..]), (Credential::Basic { identity: b"alice" }, &[0, 2][..])] {
        let capabilities = Capabilities { credentials: U16List::from_body(types).unwrap(), ..path.leaf_node.fields.capabilities };
        let fields = LeafNodeFields { credential, capabilities, ..path.leaf_node.fields };
        let mut buf = vec![0u8; 2048];
        let leaf = LeafNode::sign_into(SUITE, &fields, Some(ctx), &signer, &mut buf).unwrap().to_vec();
        let p = UpdatePath { leaf_node: LeafNode::decode_exact(&leaf).unwrap(), nodes: path.nodes };
        let msg = craft_commit(&mut fx.alice, &[], Some(p));
        refuse_commit(&mut fx.bob, &msg, &NoPsks, want, "LEAF-CAPS");
        refused += 1;
    }
    assert_eq!(refused, 2);
    fx.usable();
}

/// An X.509 credential of one fake certificate: the codec and the default
/// identity policy do not parse it.
fn fake_x509() -> Credential<'static> {
    const CHAIN: [u8; 4] = [3, 0x30, 0x01, 0x00];
    Credential::X509 { certificates: CertificateChain::from_body(&CHAIN).unwrap() }
}

/// Adds Frank, a member of the basic type supporting only it.
fn add_basic_only_frank(fx: &mut Fx) {
    let mut frank = Member::new("frank", 6);
    let basic_only = kp_of_types(&mut frank, Credential::Basic { identity: b"frank" }, &[0, 1]);
    valid_commit_then_usable(fx, &[add(&basic_only)], &NoPsks);
}

/// A KeyPackage of `m` with `credential` and the credential types `types`
/// (a `u16` list body) in its leaf's capabilities.
fn kp_of_types(m: &mut Member, credential: Credential<'_>, types: &[u8]) -> Vec<u8> {
    let (kp, _) = m.key_package();
    let view = KeyPackage::decode_exact(&kp).unwrap();
    let leaf = view.tbs.leaf_node.fields;
    let capabilities = Capabilities { credentials: U16List::from_body(types).unwrap(), ..leaf.capabilities };
    let fields = LeafNodeFields { credential, capabilities, ..leaf };
    kp_with(&m.signer.clone(), &fields, None, view.tbs.version, view.tbs.init_key, view.tbs.extensions)
}

/// An encryption key already in the tree (§7.3, §12.4.2): an Add's leaf, a
/// node of the UpdatePath, an Update's leaf.
#[test]
fn tree_key_dup_reused_encryption_key() {
    let mut fx = fixture();
    let want = CommitError::DuplicateKey;
    // Dave's KeyPackage with Carol's encryption key.
    let mut dave = Member::new("dave", 4);
    let carol_leaf = fx.carol.leaf(2);
    let carol_key = LeafNode::decode_exact(&carol_leaf).unwrap().fields.encryption_key.to_vec();
    let (kp, _) = dave.key_package();
    let kp_view = KeyPackage::decode_exact(&kp).unwrap();
    let fields = LeafNodeFields { encryption_key: &carol_key, ..kp_view.tbs.leaf_node.fields };
    let mut leaf_buf = vec![0u8; 2048];
    let leaf = LeafNode::sign_into(SUITE, &fields, None, &dave.signer, &mut leaf_buf).unwrap().to_vec();
    let tbs = KeyPackageTbs { leaf_node: LeafNode::decode_exact(&leaf).unwrap(), ..kp_view.tbs };
    let mut kp_buf = vec![0u8; 4096];
    let bad_kp = KeyPackage::sign_into(SUITE, &tbs, &dave.signer, &mut kp_buf).unwrap().to_vec();
    let msg = craft_commit(&mut fx.alice, &by_value(&[add(&bad_kp)]), None);
    refuse_commit(&mut fx.bob, &msg, &NoPsks, want, "TREE-KEY-DUP");
    refuse_create(&mut fx.alice, &[add(&bad_kp)], false, &NoPsks, want);
    // Dave's KeyPackage with the root's encryption key (a parent node).
    let root_key = fx.alice.group.tree_slices_for_testing().encryption_key(NodeIndex(3)).unwrap().to_vec();
    let fields = LeafNodeFields { encryption_key: &root_key, ..kp_view.tbs.leaf_node.fields };
    let leaf = LeafNode::sign_into(SUITE, &fields, None, &dave.signer, &mut leaf_buf).unwrap().to_vec();
    let tbs = KeyPackageTbs { leaf_node: LeafNode::decode_exact(&leaf).unwrap(), ..kp_view.tbs };
    let root_kp = KeyPackage::sign_into(SUITE, &tbs, &dave.signer, &mut kp_buf).unwrap().to_vec();
    let msg = craft_commit(&mut fx.alice, &by_value(&[add(&root_kp)]), None);
    refuse_commit(&mut fx.bob, &msg, &NoPsks, want, "TREE-KEY-DUP");
    refuse_create(&mut fx.alice, &[add(&root_kp)], false, &NoPsks, want);

    // Alice's commit with a path whose first node reuses Carol's key.
    let (commit, _) = fx.alice.try_commit(&[], false, true, WireFormatPolicy::Public, &NoPsks).unwrap();
    fx.alice.group.discard_staged_commit();
    let path = path_of(&commit);
    let path = UpdatePath::decode_exact(&path).unwrap();
    let nodes: Vec<UpdatePathNode<'_>> = path
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| if i == 0 { UpdatePathNode { encryption_key: &carol_key, ..n } } else { n })
        .collect();
    let body = encode_nodes(&nodes);
    let bad_path = UpdatePath { leaf_node: path.leaf_node, nodes: ListView::from_body(&body).unwrap() };
    let msg = craft_commit(&mut fx.alice, &[], Some(bad_path));
    refuse_commit(&mut fx.bob, &msg, &NoPsks, want, "TREE-KEY-DUP");
    // Its last node with the root's key (a parent), or with Alice's own
    // leaf key (which only her new leaf may not keep either).
    let alice_key = LeafNode::decode_exact(&fx.alice.leaf(0)).unwrap().fields.encryption_key.to_vec();
    for key in [&root_key, &alice_key] {
        let last = path.nodes.iter().count() - 1;
        let nodes: Vec<UpdatePathNode<'_>> = path
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| if i == last { UpdatePathNode { encryption_key: key, ..n } } else { n })
            .collect();
        let body = encode_nodes(&nodes);
        let bad_path = UpdatePath { leaf_node: path.leaf_node, nodes: ListView::from_body(&body).unwrap() };
        let msg = craft_commit(&mut fx.alice, &[], Some(bad_path));
        refuse_commit(&mut fx.bob, &msg, &NoPsks, want, "TREE-KEY-DUP");
    }

    // Alice's path leaf with Carol's encryption key; also refused by Bob,
    // whom the Commit removes.
    let fields = LeafNodeFields { encryption_key: &carol_key, ..path.leaf_node.fields };
    let ctx = LeafNodeContext { group_id: GROUP_ID, leaf_index: 0 };
    let mut buf = vec![0u8; 2048];
    let leaf = LeafNode::sign_into(SUITE, &fields, Some(ctx), &fx.alice.signer, &mut buf).unwrap().to_vec();
    let p = UpdatePath { leaf_node: LeafNode::decode_exact(&leaf).unwrap(), nodes: path.nodes };
    let msg = craft_commit(&mut fx.alice, &[], Some(p));
    refuse_commit(&mut fx.bob, &msg, &NoPsks, want, "TREE-KEY-DUP");
    let msg = craft_commit(&mut fx.alice, &by_value(&[remove(1)]), Some(p));
    refuse_commit(&mut fx.bob, &msg, &NoPsks, want, "TREE-KEY-DUP");

    // Bob's Update to Carol's encryption key.
    let signer = fx.bob.signer.clone();
    let leaf = update_leaf(&mut fx.bob, 1, &carol_key, &signer);
    let update = Proposal::Update(Update { leaf_node: LeafNode::decode_exact(&leaf).unwrap() });
    let proposal = fx.bob.propose(&update);
    let reference = fx.alice.receive_proposal(&proposal);
    fx.carol.receive_proposal(&proposal);
    let msg = craft_commit(&mut fx.alice, &[ProposalOrRef::Reference(&reference)], None);
    refuse_commit(&mut fx.carol, &msg, &NoPsks, want, "TREE-KEY-DUP");
    assert_eq!(commit_pending(&mut fx, &[]).updates, 0);
    fx.usable();
}

/// The body of an `HPKECiphertext encrypted_path_secret<V>`.
fn encode_cts(cts: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut w = Writer::new(&mut buf);
    for (kem_output, ciphertext) in cts {
        HpkeCiphertext { kem_output, ciphertext }.encode(&mut w).unwrap();
    }
    let n = w.len();
    buf.truncate(n);
    buf
}

fn encode_nodes(nodes: &[UpdatePathNode<'_>]) -> Vec<u8> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut w = Writer::new(&mut buf);
    for n in nodes {
        n.encode(&mut w).unwrap();
    }
    let n = w.len();
    buf.truncate(n);
    buf
}

/// The encoded UpdatePath of a PublicMessage commit.
fn path_of(commit: &[u8]) -> Vec<u8> {
    let MlsMessageBody::PublicMessage(pm) = MlsMessage::decode_exact(commit).unwrap().body else { panic!() };
    let Content::Commit(c) = pm.content.content else { panic!() };
    let path = c.path.expect("a path");
    let mut buf = vec![0u8; 64 * 1024];
    let n = path.encode_to(&mut buf).unwrap().len();
    buf.truncate(n);
    buf
}

/// A Commit without the path it needs (§12.4): Removes, Updates,
/// GroupContextExtensions, or no proposals at all.
#[test]
fn com_path_req_missing_path() {
    let mut fx = fixture();
    let want = CommitError::PathRequired;
    for list in [vec![], vec![remove(2)], vec![gce(&[])], vec![remove(2), external_psk(b"p", &[1; 32])]] {
        let msg = craft_commit(&mut fx.alice, &by_value(&list), None);
        refuse_commit(&mut fx.bob, &msg, &Psks::with(&[b"p"]), want, "COM-PATH-REQ");
    }
    // An Add alone needs none.
    let (kp, _) = Member::new("dave", 4).key_package();
    let (commit, _) = fx.alice.try_commit(&[add(&kp)], false, false, WireFormatPolicy::Public, &NoPsks).unwrap();
    fx.alice.group.merge_staged_commit_in_memory().unwrap();
    let mut m = commit.clone();
    match fx.bob.group.process_message_in_memory(&mut m, &NoPsks, NOW) {
        Ok(Received::Commit(s)) => assert!(!s.has_path),
        other => panic!("{other:?}"),
    }
    fx.bob.group.merge_staged_commit_in_memory().unwrap();
    fx.carol.receive_commit(&commit);
    fx.agree();
    fx.usable();
}

/// An invalid UpdatePath (§7.6, §12.4.2): one node short, a leaf of source
/// `update`, a leaf signed by someone else.
#[test]
fn com_path_invalid_update_path() {
    let mut fx = fixture();
    let (commit, _) = fx.alice.try_commit(&[], false, true, WireFormatPolicy::Public, &NoPsks).unwrap();
    let path_bytes = path_of(&commit);
    let path = UpdatePath::decode_exact(&path_bytes).unwrap();
    let nodes: Vec<UpdatePathNode<'_>> = path.nodes.iter().collect();
    let short = encode_nodes(&nodes[..nodes.len() - 1]);
    let short_path = UpdatePath { leaf_node: path.leaf_node, nodes: ListView::from_body(&short).unwrap() };
    let msg = craft_commit(&mut fx.alice, &[], Some(short_path));
    refuse_commit(&mut fx.bob, &msg, &NoPsks, CommitError::InvalidPath(TreeKemError::WrongPathLength), "COM-PATH");

    let ctx = LeafNodeContext { group_id: GROUP_ID, leaf_index: 0 };
    let mut buf = vec![0u8; 2048];
    let fields = LeafNodeFields { source: LeafNodeSource::Update, ..path.leaf_node.fields };
    let update_leaf = LeafNode::sign_into(SUITE, &fields, Some(ctx), &fx.alice.signer, &mut buf).unwrap().to_vec();
    let mut buf = vec![0u8; 2048];
    let foreign =
        LeafNode::sign_into(SUITE, &path.leaf_node.fields, Some(ctx), &fx.carol.signer, &mut buf).unwrap().to_vec();
    for leaf in [&update_leaf, &foreign] {
        let p = UpdatePath { leaf_node: LeafNode::decode_exact(leaf).unwrap(), nodes: path.nodes };
        let msg = craft_commit(&mut fx.alice, &[], Some(p));
        refuse_commit(&mut fx.bob, &msg, &NoPsks, CommitError::InvalidPath(TreeKemError::InvalidLeafNode), "COM-PATH");
    }
    // A node's key changed: the parent hashes no longer lead to the leaf's.
    let k = fresh_key(7);
    let mut changed = nodes.clone();
    let last = changed.len() - 1;
    changed[last] = UpdatePathNode { encryption_key: &k, ..changed[last] };
    // A ciphertext short in every node; every ciphertext corrupted.
    let mut cts: Vec<Vec<(Vec<u8>, Vec<u8>)>> = Vec::new();
    for n in &nodes {
        cts.push(n.encrypted_path_secret.iter().map(|c| (c.kem_output.to_vec(), c.ciphertext.to_vec())).collect());
    }
    let short_cts: Vec<Vec<u8>> = cts.iter().map(|c| encode_cts(&c[..c.len() - 1])).collect();
    let corrupted: Vec<Vec<(Vec<u8>, Vec<u8>)>> =
        cts.iter().map(|c| c.iter().map(|(k, ct)| (k.clone(), flip(ct, ct.len() - 1))).collect()).collect();
    let corrupted_cts: Vec<Vec<u8>> = corrupted.iter().map(|c| encode_cts(c)).collect();
    let with_cts = |bodies: &[Vec<u8>]| -> Vec<u8> {
        let nodes: Vec<UpdatePathNode<'_>> = nodes
            .iter()
            .zip(bodies)
            .map(|(n, b)| UpdatePathNode {
                encryption_key: n.encryption_key,
                encrypted_path_secret: ListView::from_body(b).unwrap(),
            })
            .collect();
        encode_nodes(&nodes)
    };
    let (changed_body, short_body, corrupted_body) =
        (encode_nodes(&changed), with_cts(&short_cts), with_cts(&corrupted_cts));
    let mut short_key = nodes.clone();
    short_key[last] = UpdatePathNode { encryption_key: &k[..31], ..short_key[last] };
    let short_key_body = encode_nodes(&short_key);
    for (body, e) in [
        (&short_key_body, TreeKemError::Tree(TreeError::InvalidKey)),
        (&changed_body, TreeKemError::ParentHashMismatch),
        (&short_body, TreeKemError::WrongCiphertextCount),
        (&corrupted_body, TreeKemError::DecryptionFailed),
    ] {
        let p = UpdatePath { leaf_node: path.leaf_node, nodes: ListView::from_body(body).unwrap() };
        let msg = craft_commit(&mut fx.alice, &[], Some(p));
        refuse_commit(&mut fx.bob, &msg, &NoPsks, CommitError::InvalidPath(e), "COM-PATH");
    }
    fx.alice.group.merge_staged_commit_in_memory().unwrap();
    fx.bob.receive_commit(&commit);
    fx.carol.receive_commit(&commit);
    fx.agree();
    fx.usable();
}

/// Regression (issue #13): the ciphertext count is wrong in a node Bob does
/// not decrypt (§7.6: every node has one ciphertext per member of its copath
/// child's resolution). Alice's path has two nodes: Bob decrypts the first,
/// the second (for Carol) has none or two. Fails on 7208f14: only the node
/// we decrypt was counted, so Bob went on to the confirmation tag
/// (`COM-CONF-TAG`) instead of refusing the path.
#[test]
fn com_path_ciphertext_count_of_every_node() {
    let mut fx = fixture();
    let (commit, _) = fx.alice.try_commit(&[], false, true, WireFormatPolicy::Public, &NoPsks).unwrap();
    let path_bytes = path_of(&commit);
    let path = UpdatePath::decode_exact(&path_bytes).unwrap();
    let nodes: Vec<UpdatePathNode<'_>> = path.nodes.iter().collect();
    assert_eq!(nodes.len(), 2, "Alice's filtered direct path in a 4-leaf tree");
    let cts: Vec<(Vec<u8>, Vec<u8>)> =
        nodes[1].encrypted_path_secret.iter().map(|c| (c.kem_output.to_vec(), c.ciphertext.to_vec())).collect();
    assert_eq!(cts.len(), 1, "Carol's resolution");
    let (none, two) = (encode_cts(&[]), encode_cts(&[cts[0].clone(), cts[0].clone()]));
    for body in [&none, &two] {
        let mut changed = nodes.clone();
        changed[1] = UpdatePathNode { encrypted_path_secret: ListView::from_body(body).unwrap(), ..nodes[1] };
        let encoded = encode_nodes(&changed);
        let p = UpdatePath { leaf_node: path.leaf_node, nodes: ListView::from_body(&encoded).unwrap() };
        let msg = craft_commit(&mut fx.alice, &[], Some(p));
        let want = CommitError::InvalidPath(TreeKemError::WrongCiphertextCount);
        refuse_commit(&mut fx.bob, &msg, &NoPsks, want, "COM-PATH");
    }
    fx.alice.group.merge_staged_commit_in_memory().unwrap();
    fx.bob.receive_commit(&commit);
    fx.carol.receive_commit(&commit);
    fx.agree();
    fx.usable();
}

/// Regression (issue #13): creating a group whose GroupContext extensions
/// require what the creator's own leaf does not support (§11.1): a
/// `required_capabilities` extension type, or an extension of a type the
/// leaf does not list. The slot stays empty. Fails on 7208f14: the group
/// was created.
#[test]
fn leaf_caps_creator_lacks_required_capability() {
    let required = extension(EXT_REQUIRED_CAPABILITIES, &required_extensions(&[0xff01]));
    let unsupported = extension(0xff01, b"x");
    for body in [&required, &unsupported] {
        let mut alice = Member::new("alice", 1);
        let params = CreateParams {
            suite: SUITE,
            group_id: GROUP_ID,
            credential: Credential::Basic { identity: b"alice" },
            lifetime: LIFETIME,
            capabilities: caps(),
            extensions: Extensions::from_body(body).unwrap(),
            config: GroupConfig::default(),
        };
        let got = alice.group.create(&params, &alice.signer.clone(), &mut alice.rng);
        assert_eq!(got, Err(GroupError::UnsupportedCapabilities));
        assert!(alice.group.is_inactive(), "no group was created");
    }
    // What the creator supports is fine.
    let mut alice = Member::new("alice", 1);
    let ok = extension(EXT_REQUIRED_CAPABILITIES, &required_extensions(&[EXT_X]));
    let params = CreateParams {
        suite: SUITE,
        group_id: GROUP_ID,
        credential: Credential::Basic { identity: b"alice" },
        lifetime: LIFETIME,
        capabilities: caps(),
        extensions: Extensions::from_body(&ok).unwrap(),
        config: GroupConfig::default(),
    };
    alice.group.create(&params, &alice.signer.clone(), &mut alice.rng).unwrap();
    assert!(!alice.group.is_inactive());
}

/// A path whose leaf keeps the committer's encryption key (§12.4.2).
#[test]
fn com_path_leaf_key_not_fresh() {
    let mut fx = fixture();
    let (commit, _) = fx.alice.try_commit(&[], false, true, WireFormatPolicy::Public, &NoPsks).unwrap();
    fx.alice.group.discard_staged_commit();
    let path_bytes = path_of(&commit);
    let path = UpdatePath::decode_exact(&path_bytes).unwrap();
    let old_leaf = fx.alice.leaf(0);
    let old_key = LeafNode::decode_exact(&old_leaf).unwrap().fields.encryption_key.to_vec();
    let fields = LeafNodeFields { encryption_key: &old_key, ..path.leaf_node.fields };
    let ctx = LeafNodeContext { group_id: GROUP_ID, leaf_index: 0 };
    let mut buf = vec![0u8; 2048];
    let leaf = LeafNode::sign_into(SUITE, &fields, Some(ctx), &fx.alice.signer, &mut buf).unwrap().to_vec();
    let p = UpdatePath { leaf_node: LeafNode::decode_exact(&leaf).unwrap(), nodes: path.nodes };
    let msg = craft_commit(&mut fx.alice, &[], Some(p));
    refuse_commit(&mut fx.bob, &msg, &NoPsks, CommitError::PathLeafKeyNotFresh, "COM-PATH-LEAF-KEY");
    // Also by the member the Commit removes, which cannot decrypt the path
    // but checks its keys all the same.
    let msg = craft_commit(&mut fx.alice, &by_value(&[remove(1)]), Some(p));
    refuse_commit(&mut fx.bob, &msg, &NoPsks, CommitError::PathLeafKeyNotFresh, "COM-PATH-LEAF-KEY");
    refuse_commit(&mut fx.carol, &msg, &NoPsks, CommitError::PathLeafKeyNotFresh, "COM-PATH-LEAF-KEY");
    valid_commit_then_usable(&mut fx, &[], &NoPsks);
}

/// Our own Commit, received back: merge or discard the staged one instead.
#[test]
fn com_own_own_commit_received() {
    let mut fx = fixture();
    let (commit, _) = fx.alice.try_commit(&[remove(2)], false, false, WireFormatPolicy::Public, &NoPsks).unwrap();
    let before = fx.alice.snapshot();
    let want = CommitError::OwnCommit;
    assert_eq!(want.code(), "COM-OWN");
    let mut m = commit.clone();
    assert_eq!(fx.alice.group.process_message_in_memory(&mut m, &NoPsks, NOW).err(), Some(ReceiveError::Commit(want)));
    assert_eq!(fx.alice.snapshot(), before);
    // The staged commit is intact: merging it agrees with the others.
    fx.alice.group.merge_staged_commit_in_memory().unwrap();
    fx.bob.receive_commit(&commit);
    assert!(fx.carol.receive_commit_removed(&commit));
    assert_eq!(fx.alice.snapshot().authenticator, fx.bob.snapshot().authenticator);
    assert_eq!(fx.alice.snapshot().tree_hash, fx.bob.snapshot().tree_hash);
    // A crafted commit from our own leaf, with nothing staged.
    let msg = craft_commit(&mut fx.alice, &[], None);
    refuse_commit(&mut fx.alice, &msg, &NoPsks, want, "COM-OWN");
    let (commit, _) = fx.bob.commit(&[], true);
    fx.alice.receive_commit(&commit);
    assert_eq!(fx.alice.snapshot().authenticator, fx.bob.snapshot().authenticator);
}

/// A wrong confirmation tag (§6.1, §12.4.2), re-MACed so that it reaches
/// the group layer; and a commit whose content was changed by an insider
/// who re-signed it (the tag no longer matches the transcript).
#[test]
fn com_conf_tag_wrong_confirmation_tag() {
    let mut fx = fixture();
    let want = CommitError::ConfirmationTagMismatch;
    let (commit, _) = fx.alice.try_commit(&[remove(2)], false, false, WireFormatPolicy::Public, &NoPsks).unwrap();
    // confirmation_tag<V> (32) | membership_tag<V> (32)
    let tag_byte = commit.len() - 33 - 5;
    let tampered = flip(&commit, tag_byte);
    refuse(&mut fx.bob, &tampered, &NoPsks, ReceiveError::Protection(ProtectionError::BadMembershipTag));
    let mut remaced = tampered.clone();
    remac(&mut fx.bob, &mut remaced);
    refuse_commit(&mut fx.bob, &remaced, &NoPsks, want, "COM-CONF-TAG");
    // The same proposals and path, signed and MACed again, with another tag.
    let path_bytes = path_of(&commit);
    let path = UpdatePath::decode_exact(&path_bytes).unwrap();
    let msg = craft_commit_with(&mut fx.alice, &by_value(&[remove(2)]), Some(path), &[0; 32]);
    refuse_commit(&mut fx.bob, &msg, &NoPsks, want, "COM-CONF-TAG");
    fx.alice.group.merge_staged_commit_in_memory().unwrap();
    fx.bob.receive_commit(&commit);
    assert!(fx.carol.receive_commit_removed(&commit));
    let m = fx.alice.send(b"after");
    assert_eq!(fx.bob.receive_app(&m), b"after");
    assert_eq!(fx.alice.snapshot().authenticator, fx.bob.snapshot().authenticator);
}

/// More PSKs than the capacity (`MAX_PSKS_PER_COMMIT`).
#[test]
fn cap_too_many_psks() {
    let mut fx = fixture();
    let ids: Vec<Vec<u8>> = (0..=MAX_PSKS_PER_COMMIT).map(|i| format!("psk-{i}").into_bytes()).collect();
    let id_refs: Vec<&[u8]> = ids.iter().map(Vec::as_slice).collect();
    let psks = Psks::with(&id_refs);
    let nonce = [3u8; 32];
    let list: Vec<Proposal<'_>> = id_refs.iter().map(|id| external_psk(id, &nonce)).collect();
    let want = CommitError::CapacityExceeded(Capacity::PsksPerCommit);
    let msg = craft_commit(&mut fx.alice, &by_value(&list), None);
    refuse_commit(&mut fx.bob, &msg, &psks, want, "CAP");
    refuse_create(&mut fx.alice, &list, false, &psks, want);
    valid_commit_then_usable(&mut fx, &list[..MAX_PSKS_PER_COMMIT], &psks);
}

/// More members than the group's leaf capacity: the tree refuses to grow.
#[test]
fn tree_capacity_exceeded() {
    let mut fx = fixture();
    let mut kps = Vec::new();
    for i in 0..14u64 {
        let mut m = Member::new("new", 100 + i);
        kps.push(m.key_package().0);
    }
    let list: Vec<Proposal<'_>> = kps.iter().map(|kp| add(kp)).collect();
    let want = CommitError::Tree(TreeError::CapacityExceeded(Capacity::Leaves));
    let msg = craft_commit(&mut fx.alice, &by_value(&list), None);
    refuse_commit(&mut fx.bob, &msg, &NoPsks, want, "TREE");
    refuse_create(&mut fx.alice, &list, false, &NoPsks, want);
    valid_commit_then_usable(&mut fx, &list[..13], &NoPsks);
}

/// A `required_capabilities` extension whose data does not decode.
#[test]
fn codec_malformed_required_capabilities() {
    let mut fx = fixture();
    let bad = extension(EXT_REQUIRED_CAPABILITIES, &[4, 0xff]);
    let want = CommitError::Codec(mls_nostd::codec::CodecError::Truncated);
    let msg = craft_commit(&mut fx.alice, &by_value(&[gce(&bad)]), None);
    refuse_commit(&mut fx.bob, &msg, &NoPsks, want, "CODEC");
    refuse_create(&mut fx.alice, &[gce(&bad)], false, &NoPsks, want);
    valid_commit_then_usable(&mut fx, &[], &NoPsks);
}

// ---------------------------------------------------------------------------
// Joining (§12.4.3.1).
// ---------------------------------------------------------------------------

/// The fixture with Dave added by Alice (with a path), Alice merged; Bob and
/// Carol processed the commit. Returns Dave, his KeyPackage and keys, the
/// Welcome.
fn with_dave(fx: &mut Fx, tree_in_welcome: bool) -> (Member, Vec<u8>, KeyPackagePrivateKeys, Vec<u8>) {
    let mut dave = Member::new("dave", 4);
    let (kp, keys) = dave.key_package();
    let (mut m, mut w, mut gi) = buffers();
    let opts = CommitOptions {
        proposals: &[add(&kp)],
        include_pending: false,
        force_path: true,
        ratchet_tree_in_welcome: tree_in_welcome,
        wire_format: WireFormatPolicy::Public,
        padding: 0,
        authenticated_data: b"",
        leaf: Some(fx.alice.template()),
    };
    let bufs = CommitBuffers { message: &mut m, welcome: &mut w, group_info: &mut gi };
    let out = fx.alice.group.commit_in_memory(&opts, &NoPsks, NOW, &mut fx.alice.rng, &Sequential, bufs).unwrap();
    let (commit, welcome) = (out.commit.to_vec(), out.welcome.unwrap().to_vec());
    fx.alice.group.merge_staged_commit_in_memory().unwrap();
    fx.bob.receive_commit(&commit);
    fx.carol.receive_commit(&commit);
    (dave, kp, keys, welcome)
}

/// `dave`'s join from `welcome` fails with `want`; his slot is as it was.
fn refuse_join(
    dave: &mut Member,
    welcome: &[u8],
    kp: &[u8],
    keys: &KeyPackagePrivateKeys,
    tree: Option<&[u8]>,
    want: JoinError,
) {
    let before = dave.snapshot();
    assert_eq!(dave.try_join(welcome, kp, keys, tree, GroupConfig::default()).err(), Some(want), "{}", dave.name);
    assert_eq!(dave.snapshot(), before, "{}: a failed join changed the slot", dave.name);
}

/// Dave joins with the valid Welcome and agrees with everyone.
fn dave_joins(
    fx: &mut Fx,
    dave: &mut Member,
    welcome: &[u8],
    kp: &[u8],
    keys: &KeyPackagePrivateKeys,
    tree: Option<&[u8]>,
) {
    dave.try_join(welcome, kp, keys, tree, GroupConfig::default()).unwrap();
    let m = dave.send(b"hi, I'm dave");
    assert_eq!(fx.alice.receive_app(&m), b"hi, I'm dave");
    assert_eq!(fx.bob.receive_app(&m), b"hi, I'm dave");
    let (commit, _) = fx.carol.commit(&[], true);
    fx.alice.receive_commit(&commit);
    fx.bob.receive_commit(&commit);
    dave.receive_commit(&commit);
    fx.agree();
    let (a, d) = (fx.alice.snapshot(), dave.snapshot());
    assert_eq!((d.epoch, &d.authenticator, &d.tree_hash), (a.epoch, &a.authenticator, &a.tree_hash));
}

/// A Welcome opened with the joiner's keys: its secrets and GroupInfo.
struct Opened {
    joiner: Secret,
    path_secret: Option<Secret>,
    group_info: Vec<u8>,
}

fn open_welcome(welcome: &[u8], kp: &[u8], keys: &KeyPackagePrivateKeys) -> Opened {
    let MlsMessageBody::Welcome(w) = MlsMessage::decode_exact(welcome).unwrap().body else { panic!("not a Welcome") };
    let kp = KeyPackage::decode_exact(kp).unwrap();
    let entry = w.secrets_for(kp.reference(SUITE).unwrap().as_bytes()).unwrap();
    let sealed = entry.encrypted_group_secrets;
    let kem_output = HpkePublicKey::from_slice(sealed.kem_output).unwrap();
    let (ct, tag) = sealed.ciphertext.split_at(sealed.ciphertext.len() - 16);
    let mut gs = ct.to_vec();
    decrypt_with_label(SUITE, &keys.init_key, WELCOME_LABEL, w.encrypted_group_info, &kem_output, &mut gs, tag)
        .unwrap();
    let secrets = GroupSecrets::decode_exact(&gs).unwrap();
    assert!(secrets.psks.is_empty());
    let joiner = Secret::from_slice(secrets.joiner_secret).unwrap();
    let path_secret = secrets.path_secret.map(|p| Secret::from_slice(p.path_secret).unwrap());
    let psk = psk_secret(SUITE, &[]).unwrap();
    let (key, nonce) = welcome_key_nonce(SUITE, &welcome_secret(SUITE, &joiner, &psk).unwrap()).unwrap();
    let egi = w.encrypted_group_info;
    let (ct, tag) = egi.split_at(egi.len() - 16);
    let mut group_info = ct.to_vec();
    SUITE.aead_open(key.as_bytes(), nonce.as_bytes(), &[], &mut group_info, tag).unwrap();
    Opened { joiner, path_secret, group_info }
}

/// A Welcome for the KeyPackage `kp` with `o`'s secrets and GroupInfo.
fn seal_welcome(o: &Opened, kp: &[u8], rng: &mut TestRng) -> Vec<u8> {
    let kp = KeyPackage::decode_exact(kp).unwrap();
    let psk = psk_secret(SUITE, &[]).unwrap();
    let ws = welcome_secret(SUITE, &o.joiner, &psk).unwrap();
    let params = WelcomeParams {
        suite: SUITE,
        joiner_secret: &o.joiner,
        psks: &[],
        welcome_secret: &ws,
        group_info: &o.group_info,
    };
    let members = [NewMember::from_key_package(SUITE, &kp, o.path_secret.as_ref()).unwrap()];
    let mut out = vec![0u8; 128 * 1024];
    params.create(&members, rng, &Sequential, &mut out).unwrap().to_vec()
}

/// The fields of a GroupInfo, owned, to edit and sign again.
#[derive(Clone)]
struct GiFields {
    group_id: Vec<u8>,
    epoch: u64,
    tree_hash: Vec<u8>,
    confirmed_transcript_hash: Vec<u8>,
    group_extensions: Vec<u8>,
    tree: Option<Vec<u8>>,
    /// Set to keep a given tag; `None` recomputes the right one.
    confirmation_tag: Option<Vec<u8>>,
    signer: u32,
}

fn gi_fields(group_info: &[u8]) -> GiFields {
    let gi = GroupInfo::decode_exact(group_info).unwrap();
    let gc = gi.tbs.group_context;
    GiFields {
        group_id: gc.group_id.to_vec(),
        epoch: gc.epoch,
        tree_hash: gc.tree_hash.to_vec(),
        confirmed_transcript_hash: gc.confirmed_transcript_hash.to_vec(),
        group_extensions: gc.extensions.body().to_vec(),
        tree: gi.tbs.extensions.find(EXT_RATCHET_TREE).map(<[u8]>::to_vec),
        confirmation_tag: None,
        signer: gi.tbs.signer,
    }
}

/// The tree hash of an encoded ratchet tree.
fn tree_hash_of(tree: &[u8]) -> Vec<u8> {
    let mut t = Box::new(RatchetTree::<16, { 16 * 512 }>::EMPTY);
    let mut s = t.slices();
    s.import(SUITE, &decode_tree(tree).unwrap()).unwrap();
    s.root_tree_hash().unwrap().as_bytes().to_vec()
}

/// Signs a GroupInfo of `f` with `key`; its confirmation tag is the right
/// one for the (possibly edited) GroupContext unless `f` gives one.
fn sign_group_info(f: &GiFields, joiner: &Secret, key: &SignaturePrivateKey) -> Vec<u8> {
    let gc = GroupContext {
        cipher_suite: SUITE,
        group_id: &f.group_id,
        epoch: f.epoch,
        tree_hash: &f.tree_hash,
        confirmed_transcript_hash: &f.confirmed_transcript_hash,
        extensions: &f.group_extensions,
    };
    let mut gc_buf = vec![0u8; 4096];
    let gc_bytes = gc.encode_to(&mut gc_buf).unwrap();
    let psk = psk_secret(SUITE, &[]).unwrap();
    let secrets = EpochSecrets::derive(SUITE, joiner, &psk, gc_bytes).unwrap();
    let tag = match &f.confirmation_tag {
        Some(t) => t.clone(),
        None => confirmation_tag(SUITE, &secrets.confirmation_key, &f.confirmed_transcript_hash).as_bytes().to_vec(),
    };
    let ext = f.tree.as_ref().map(|t| extension(EXT_RATCHET_TREE, t)).unwrap_or_default();
    let tbs = GroupInfoTbs {
        group_context: WireGroupContext::from_group_context(&gc).unwrap(),
        extensions: Extensions::from_body(&ext).unwrap(),
        confirmation_tag: &tag,
        signer: f.signer,
    };
    let mut out = vec![0u8; 64 * 1024];
    GroupInfo::sign_into(SUITE, &tbs, key, &mut out).unwrap().to_vec()
}

/// Dave's Welcome with its GroupInfo edited by `edit` and signed again by
/// Alice (the real signer), every secret kept.
fn edited_welcome(
    fx: &Fx,
    welcome: &[u8],
    kp: &[u8],
    keys: &KeyPackagePrivateKeys,
    edit: impl FnOnce(&mut GiFields),
) -> Vec<u8> {
    let mut o = open_welcome(welcome, kp, keys);
    let mut f = gi_fields(&o.group_info);
    edit(&mut f);
    o.group_info = sign_group_info(&f, &o.joiner, &fx.alice.signer);
    seal_welcome(&o, kp, &mut TestRng(77))
}

/// A Welcome for someone else's KeyPackage.
#[test]
fn join_welcome_not_for_us() {
    let mut fx = fixture();
    let (mut dave, kp, keys, welcome) = with_dave(&mut fx, true);
    let mut eve = Member::new("eve", 5);
    let (eve_kp, eve_keys) = eve.key_package();
    refuse_join(&mut eve, &welcome, &eve_kp, &eve_keys, None, JoinError::Welcome(WelcomeError::NotForUs));
    // Into a slot that holds a group: refused before the Welcome is read
    // (the slot has one tree buffer, which a join would overwrite), and
    // Bob's group is untouched.
    refuse_join(&mut fx.bob, &welcome, &eve_kp, &eve_keys, None, JoinError::SlotInUse);
    // A KeyPackage of another suite than the Welcome's.
    let (other_kp, other_keys) = dave.key_package_with(CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519, LIFETIME);
    refuse_join(&mut dave, &welcome, &other_kp, &other_keys, None, JoinError::Welcome(WelcomeError::WrongCipherSuite));
    dave_joins(&mut fx, &mut dave, &welcome, &kp, &keys, None);
}

/// Not a Welcome.
#[test]
fn join_malformed() {
    let mut fx = fixture();
    let (mut dave, kp, keys, welcome) = with_dave(&mut fx, true);
    let commit = fx.alice.try_commit(&[], false, true, WireFormatPolicy::Public, &NoPsks).unwrap().0;
    fx.alice.group.discard_staged_commit();
    refuse_join(&mut dave, &commit, &kp, &keys, None, JoinError::Malformed(mls_nostd::codec::CodecError::InvalidValue));
    let mut truncated = welcome.clone();
    truncated.pop();
    assert!(matches!(
        dave.try_join(&truncated, &kp, &keys, None, GroupConfig::default()),
        Err(JoinError::Malformed(_))
    ));
    assert!(dave.group.is_inactive());
    dave_joins(&mut fx, &mut dave, &welcome, &kp, &keys, None);
}

/// A GroupInfo whose signature does not verify: signed by another key, or
/// a byte of it changed.
#[test]
fn join_group_info_bad_signature() {
    let mut fx = fixture();
    let (mut dave, kp, keys, welcome) = with_dave(&mut fx, true);
    let want = JoinError::Welcome(WelcomeError::InvalidGroupInfoSignature);
    let mut o = open_welcome(&welcome, &kp, &keys);
    let f = gi_fields(&o.group_info);
    o.group_info = sign_group_info(&f, &o.joiner, &fx.carol.signer);
    let bad = seal_welcome(&o, &kp, &mut TestRng(5));
    refuse_join(&mut dave, &bad, &kp, &keys, None, want);
    let mut o = open_welcome(&welcome, &kp, &keys);
    let n = o.group_info.len();
    o.group_info[n - 3] ^= 1;
    let bad = seal_welcome(&o, &kp, &mut TestRng(6));
    refuse_join(&mut dave, &bad, &kp, &keys, None, want);
    // A signer index that names no leaf.
    let bad = edited_welcome(&fx, &welcome, &kp, &keys, |f| f.signer = 9);
    refuse_join(&mut dave, &bad, &kp, &keys, None, JoinError::UnknownSigner);
    dave_joins(&mut fx, &mut dave, &welcome, &kp, &keys, None);
}

/// A GroupInfo whose confirmation tag is not the epoch's.
#[test]
fn join_confirmation_tag_mismatch() {
    let mut fx = fixture();
    let (mut dave, kp, keys, welcome) = with_dave(&mut fx, true);
    let bad = edited_welcome(&fx, &welcome, &kp, &keys, |f| f.confirmation_tag = Some(vec![7; 32]));
    refuse_join(&mut dave, &bad, &kp, &keys, None, JoinError::Welcome(WelcomeError::InvalidConfirmationTag));
    dave_joins(&mut fx, &mut dave, &welcome, &kp, &keys, None);
}

/// A tree whose leaf signature does not verify; a tree whose parent hashes
/// do not chain; a tree that is not the GroupInfo's; a leaf lacking a
/// required capability. The GroupInfo is signed again by Alice with the
/// edited tree's hash and the right confirmation tag, so that the tree
/// checks are what fails.
#[test]
fn join_invalid_tree() {
    let mut fx = fixture();
    let (mut dave, kp, keys, welcome) = with_dave(&mut fx, true);
    let tree = fx.alice.tree_bytes();
    let bob_leaf = fx.bob.leaf(1);
    let at = find(&tree, &bob_leaf) + bob_leaf.len() - 1;
    let bad_leaf = flip(&tree, at);
    let root_key = fx.alice.group.tree_slices_for_testing().encryption_key(NodeIndex(3)).unwrap().to_vec();
    let bad_parent = flip(&tree, find(&tree, &root_key) + 3);
    for (bad, want) in [
        (bad_leaf, TreeValidationError::InvalidLeafSignature(LeafIndex(1))),
        (bad_parent, TreeValidationError::ParentHashInvalid(NodeIndex(3))),
    ] {
        let w = edited_welcome(&fx, &welcome, &kp, &keys, |f| {
            f.tree_hash = tree_hash_of(&bad);
            f.tree = Some(bad.clone());
        });
        refuse_join(&mut dave, &w, &kp, &keys, None, JoinError::InvalidTree(want));
    }
    // The tree does not hash to the GroupInfo's tree hash.
    let w = edited_welcome(&fx, &welcome, &kp, &keys, |f| f.tree_hash = vec![0; 32]);
    refuse_join(&mut dave, &w, &kp, &keys, None, JoinError::InvalidTree(TreeValidationError::TreeHashMismatch));
    // The group requires an extension no leaf supports.
    let required = extension(EXT_REQUIRED_CAPABILITIES, &required_extensions(&[0xff01]));
    let w = edited_welcome(&fx, &welcome, &kp, &keys, |f| f.group_extensions = required.clone());
    refuse_join(
        &mut dave,
        &w,
        &kp,
        &keys,
        None,
        JoinError::InvalidTree(TreeValidationError::UnsupportedCapabilities(LeafIndex(0))),
    );
    dave_joins(&mut fx, &mut dave, &welcome, &kp, &keys, None);
}

/// Our KeyPackage's leaf is not in the tree: the Welcome's secrets were
/// sealed to another KeyPackage of ours than the one added.
#[test]
fn join_not_in_tree() {
    let mut fx = fixture();
    let (mut dave, kp, keys, welcome) = with_dave(&mut fx, true);
    let (kp2, keys2) = dave.key_package();
    let o = open_welcome(&welcome, &kp, &keys);
    let w = seal_welcome(&o, &kp2, &mut TestRng(8));
    refuse_join(&mut dave, &w, &kp2, &keys2, None, JoinError::NotInTree);
    dave_joins(&mut fx, &mut dave, &welcome, &kp, &keys, None);
}

/// A path secret whose keys are not the tree's.
#[test]
fn join_path_secret_mismatch() {
    let mut fx = fixture();
    let (mut dave, kp, keys, welcome) = with_dave(&mut fx, true);
    let mut o = open_welcome(&welcome, &kp, &keys);
    assert!(o.path_secret.is_some());
    o.path_secret = Some(Secret::from_slice(&[9; 32]).unwrap());
    let w = seal_welcome(&o, &kp, &mut TestRng(8));
    refuse_join(&mut dave, &w, &kp, &keys, None, JoinError::PathSecretMismatch);
    dave_joins(&mut fx, &mut dave, &welcome, &kp, &keys, None);
}

/// No ratchet tree in the Welcome and none given; a given tree that does
/// not decode; a tree larger than the slot.
#[test]
fn join_no_ratchet_tree() {
    let mut fx = fixture();
    let (mut dave, kp, keys, welcome) = with_dave(&mut fx, false);
    refuse_join(&mut dave, &welcome, &kp, &keys, None, JoinError::NoRatchetTree);
    let garbage = [0xffu8; 7];
    let malformed = JoinError::Malformed(mls_nostd::codec::CodecError::InvalidVarintPrefix);
    assert_eq!(dave.try_join(&welcome, &kp, &keys, Some(&garbage), GroupConfig::default()), Err(malformed));
    assert!(dave.group.is_inactive());
    let tree = fx.alice.tree_bytes();
    let mut small: Box<Group<2, 2048, 8, 1024>> = Box::new(Group::EMPTY);
    let params = JoinParams {
        executor: &mls_nostd::executor::Sequential,
        key_package: &kp,
        keys: &keys,
        signer: &dave.signer,
        ratchet_tree: Some(&tree),
        psks: &NoPsks,
        config: GroupConfig::default(),
    };
    let mut buf = vec![0u8; welcome.len()];
    assert_eq!(small.join_in_memory(&welcome, &params, &mut buf), Err(JoinError::Tree(TreeError::CapacityExceeded(Capacity::Leaves))));
    assert!(small.is_inactive());
    dave_joins(&mut fx, &mut dave, &welcome, &kp, &keys, Some(&tree));
}

// ---------------------------------------------------------------------------
// State is kept apart: a refusal never touches a staged commit.
// ---------------------------------------------------------------------------

/// A Commit received while one is staged (ours, not yet merged) is refused
/// without touching the staged one (COM-PENDING); so are creating another
/// commit and a GroupInfo, and creating or joining a group into the slot
/// (which holds one: SlotInUse). The staged commit then merges as if
/// nothing happened, and a refused commit, if valid, is processed once the
/// staged one is discarded.
#[test]
fn com_pending_commit_staged() {
    let mut fx = fixture();
    let (ours, _) = fx.alice.try_commit(&[], false, true, WireFormatPolicy::Public, &NoPsks).unwrap();
    let want = CommitError::CommitPending;
    assert_eq!(want.code(), "COM-PENDING");
    // An invalid commit from Bob, a valid one from Carol.
    let bad = craft_commit(&mut fx.bob, &by_value(&[remove(1)]), None);
    let (theirs, _) = fx.carol.try_commit(&[], false, true, WireFormatPolicy::Public, &NoPsks).unwrap();
    fx.carol.group.discard_staged_commit();
    for msg in [&bad, &theirs] {
        let before = fx.alice.snapshot();
        let mut m = msg.clone();
        assert_eq!(fx.alice.group.process_message_in_memory(&mut m, &NoPsks, NOW).err(), Some(ReceiveError::Commit(want)));
        assert_eq!(fx.alice.snapshot(), before);
    }
    let before = fx.alice.snapshot();
    assert_eq!(
        fx.alice.try_commit(&[remove(5)], false, false, WireFormatPolicy::Public, &NoPsks).err(),
        Some(CreateCommitError::Commit(want))
    );
    let mut dave = Member::new("dave", 4);
    let (kp, keys) = dave.key_package();
    let (_, welcome) = fx.carol.try_commit(&[add(&kp)], false, false, WireFormatPolicy::Public, &NoPsks).unwrap();
    fx.carol.group.discard_staged_commit();
    // Joining into the slot: it holds a group (the staged commit's), which
    // a join would overwrite; refused as for any active slot.
    assert_eq!(
        fx.alice.try_join(&welcome.unwrap(), &kp, &keys, None, GroupConfig::default()).err(),
        Some(JoinError::SlotInUse)
    );
    assert_eq!(fx.alice.snapshot(), before);
    // Nor can a group be created into the slot.
    let params = CreateParams {
        suite: SUITE,
        group_id: b"another group",
        credential: Credential::Basic { identity: b"alice" },
        lifetime: LIFETIME,
        capabilities: caps(),
        extensions: Extensions::default(),
        config: GroupConfig::default(),
    };
    let signer = fx.alice.signer.clone();
    assert_eq!(fx.alice.group.create(&params, &signer, &mut fx.alice.rng).err(), Some(GroupError::SlotInUse));
    assert_eq!(fx.alice.snapshot(), before);
    // Nor can a GroupInfo be made: the tree holds the staged changes.
    let (mut gi, mut scratch) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    assert_eq!(fx.alice.group.group_info(true, &mut gi, &mut scratch).err(), Some(GroupError::CommitPending));
    assert_eq!(fx.alice.snapshot(), before);
    // Other messages are processed as usual meanwhile.
    let m = fx.bob.send(b"meanwhile");
    assert_eq!(fx.alice.receive_app(&m), b"meanwhile");
    // The staged commit is intact.
    fx.alice.group.merge_staged_commit_in_memory().unwrap();
    fx.bob.receive_commit(&ours);
    fx.carol.receive_commit(&ours);
    fx.agree();
    // The race the other way: Carol's commit wins, Alice discards hers.
    let (mine, _) = fx.alice.try_commit(&[], false, true, WireFormatPolicy::Public, &NoPsks).unwrap();
    let (theirs, _) = fx.carol.commit(&[], true);
    let mut m = theirs.clone();
    assert_eq!(fx.alice.group.process_message_in_memory(&mut m, &NoPsks, NOW).err(), Some(ReceiveError::Commit(want)));
    fx.alice.group.discard_staged_commit();
    fx.alice.receive_commit(&theirs);
    fx.bob.receive_commit(&theirs);
    refuse(&mut fx.bob, &mine, &NoPsks, ReceiveError::Protection(ProtectionError::WrongEpoch));
    fx.agree();
    fx.usable();
}

/// COM-PENDING for a Commit sent as a PrivateMessage: the race of
/// [`com_pending_commit_staged`] (Carol's Commit wins, Alice discards her
/// own staged one) with Carol's Commit encrypted. The refusal leaves Carol's
/// handshake key unused (§9.2 deletes a key once its message is processed;
/// this one was not), so Alice processes the same Commit once she has
/// discarded hers. Review finding: the refusal came after decryption and
/// used the key up, and the retry was `SecretTree(KeyConsumed)`: Alice could
/// never follow Carol into the next epoch.
#[test]
fn com_pending_private_commit_processed_after_discard() {
    let mut fx = fixture();
    // Our own encrypted Commit, come back, is not taken for another's: its
    // key was used when it was sent.
    let (mine, _) = fx.alice.try_commit(&[], false, true, WireFormatPolicy::Private, &NoPsks).unwrap();
    let mut m = mine.clone();
    assert_eq!(
        fx.alice.group.process_message_in_memory(&mut m, &NoPsks, NOW).err(),
        Some(ReceiveError::Protection(ProtectionError::SecretTree(SecretTreeError::KeyConsumed)))
    );
    fx.alice.group.discard_staged_commit();
    let (mine, _) = fx.alice.try_commit(&[], false, true, WireFormatPolicy::Public, &NoPsks).unwrap();
    let (theirs, _) = fx.carol.try_commit(&[], false, true, WireFormatPolicy::Private, &NoPsks).unwrap();
    fx.carol.group.merge_staged_commit_in_memory().unwrap();
    let mut m = theirs.clone();
    assert_eq!(
        fx.alice.group.process_message_in_memory(&mut m, &NoPsks, NOW).err(),
        Some(ReceiveError::Commit(CommitError::CommitPending))
    );
    fx.alice.group.discard_staged_commit();
    let mut m = theirs.clone();
    match fx.alice.group.process_message_in_memory(&mut m, &NoPsks, NOW) {
        Ok(Received::Commit(_)) => fx.alice.group.merge_staged_commit_in_memory().unwrap(),
        other => panic!("alice: Carol's Commit, retried once hers was discarded: {other:?}"),
    }
    fx.bob.receive_commit(&theirs);
    refuse(&mut fx.bob, &mine, &NoPsks, ReceiveError::Protection(ProtectionError::WrongEpoch));
    fx.agree();
    fx.usable();
}

// ---------------------------------------------------------------------------
// External commits and proposals (§12.1.8, §12.2, §12.4.3.2).
// ---------------------------------------------------------------------------

/// An external Commit whose proposal list breaks the rules for external
/// Commits (§12.2): no ExternalInit, two of them, an Add, a
/// GroupContextExtensions. Built from Eve's real external Commit, its list
/// replaced and signed again by Eve (the key of the path's leaf).
#[test]
fn prl_external_invalid_external_commit() {
    let mut fx = fixture();
    let mut eve = Member::new("eve", 5);
    let gi = {
        let (mut gi, mut scratch) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
        fx.alice.group.group_info(true, &mut gi, &mut scratch).unwrap().to_vec()
    };
    let template = eve.template();
    let mut out = vec![0u8; 128 * 1024];
    let signer = eve.signer.clone();
    let real = eve
        .group
        .join_external(
            &gi,
            None,
            &template,
            &signer,
            None,
            &[],
            &NoPsks,
            GroupConfig::default(),
            &mut eve.rng,
            &Sequential,
            &mut out,
        )
        .unwrap()
        .to_vec();
    let MlsMessageBody::PublicMessage(pm) = MlsMessage::decode_exact(&real).unwrap().body else { panic!() };
    let Content::Commit(c) = pm.content.content else { panic!() };
    let ext_init = c.proposals.iter().next().unwrap();
    assert!(matches!(ext_init, ProposalOrRef::Proposal(Proposal::ExternalInit(_))));
    let (dave_kp, _) = Member::new("dave", 4).key_package();
    let gc_bytes = fx.bob.context();
    let gc = EncodedGroupContext::decode(&gc_bytes).unwrap();
    let want = CommitError::InvalidExternalCommit;
    assert_eq!(want.code(), "PRL-EXTERNAL");
    for list in [
        vec![],
        vec![ext_init, ext_init],
        vec![ext_init, ProposalOrRef::Proposal(add(&dave_kp))],
        vec![ProposalOrRef::Proposal(gce(&[])), ext_init],
        vec![ext_init, ProposalOrRef::Proposal(remove(1)), ProposalOrRef::Proposal(remove(2))],
    ] {
        let body = encode_list(&list);
        let content = FramedContent {
            group_id: GROUP_ID,
            epoch: 2,
            sender: Sender::NewMemberCommit,
            authenticated_data: b"",
            content: Content::Commit(Commit { proposals: ListView::from_body(&body).unwrap(), path: c.path }),
        };
        let mut out = vec![0u8; 128 * 1024];
        let msg = public_message::sign(&gc, &signer, &content, &mut out)
            .unwrap()
            .finish(Some(&[0; 32]), None)
            .unwrap()
            .to_vec();
        refuse_commit(&mut fx.bob, &msg, &NoPsks, want, "PRL-EXTERNAL");
    }
    // The real one is accepted by everyone.
    fx.alice.receive_commit(&real);
    fx.bob.receive_commit(&real);
    fx.carol.receive_commit(&real);
    fx.agree();
    let (a, e) = (fx.alice.snapshot(), eve.snapshot());
    assert_eq!((e.epoch, &e.authenticator, &e.tree_hash), (a.epoch, &a.authenticator, &a.tree_hash));
    let m = eve.send(b"in");
    assert_eq!(fx.carol.receive_app(&m), b"in");
}

/// Proposals a sender type may not send (§12.1.8): a new member proposing
/// anything but its own Add, an external sender proposing an Update. Handed
/// to the group layer as verified (`external_sender_proposals` in
/// `group_lifecycle.rs` shows the refusal through `process_message`).
#[test]
fn prp_sender_proposal_not_allowed_for_sender() {
    let mut fx = fixture();
    let want = CommitError::ProposalNotAllowedForSender;
    assert_eq!(want.code(), "PRP-SENDER");
    let key = fresh_key(4);
    let signer = fx.bob.signer.clone();
    let leaf = update_leaf(&mut fx.bob, 1, &key, &signer);
    let update = Proposal::Update(Update { leaf_node: LeafNode::decode_exact(&leaf).unwrap() });
    let ext_init = fresh_key(5);
    for (sender, proposal) in [
        (Sender::NewMemberProposal, remove(1)),
        (Sender::NewMemberProposal, gce(&[])),
        (Sender::External(0), update),
        (Sender::External(0), Proposal::ExternalInit(ExternalInit { kem_output: &ext_init })),
    ] {
        let content = FramedContent {
            group_id: GROUP_ID,
            epoch: 2,
            sender,
            authenticated_data: b"",
            content: Content::Proposal(proposal),
        };
        let mut buf = vec![0u8; 4096];
        let bytes = content.encode_to(&mut buf).unwrap();
        let auth = FramedContentAuthData { signature: &[0; 64], confirmation_tag: None };
        let ac = AuthenticatedContent::from_parts(WIRE_FORMAT_PUBLIC_MESSAGE, bytes, auth).unwrap();
        let before = fx.bob.snapshot();
        assert_eq!(fx.bob.group.store_proposal_for_testing(&ac).err(), Some(want), "{sender:?}");
        assert_eq!(fx.bob.snapshot(), before);
    }
    // Nothing was stored: Bob's commit of pending proposals is empty.
    let (commit, _) = fx.bob.commit(&[], true);
    let mut m = commit.clone();
    match fx.alice.group.process_message_in_memory(&mut m, &NoPsks, NOW) {
        Ok(Received::Commit(s)) => assert_eq!((s.adds, s.removes, s.updates, s.extensions_changed), (0, 0, 0, false)),
        other => panic!("{other:?}"),
    }
    fx.alice.group.merge_staged_commit_in_memory().unwrap();
    fx.carol.receive_commit(&commit);
    fx.agree();
    fx.usable();
}

/// The application's policy on proposals (§12.2: a Commit includes the
/// proposals "valid ... according to application policy"): one committer,
/// Alice (leaf 0), as `delivery::Policy`; the others may propose their own
/// Update or Remove, and Updates are refused while `REFUSE_UPDATES` is set.
struct OneCommitter;

static REFUSE_UPDATES: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl IdentityProvider for OneCommitter {
    fn validate(&self, _: &[u8], _: CredentialUse, _: &MemberIdentity<'_>) -> bool {
        true
    }
    fn valid_successor(&self, old: &MemberIdentity<'_>, new: &MemberIdentity<'_>) -> bool {
        old.credential == new.credential
    }
    fn authorize_proposal(&self, _: &[u8], sender: Sender, proposal: &Proposal<'_>) -> bool {
        let refused = REFUSE_UPDATES.load(std::sync::atomic::Ordering::SeqCst) && matches!(proposal, Proposal::Update(_));
        mls_nostd::delivery::Policy { committer: 0 }.authorizes(sender, proposal) && !refused
    }
}

static ONE_COMMITTER: OneCommitter = OneCommitter;

/// A proposal the application's policy refuses
/// (`IdentityProvider::authorize_proposal`): Bob's Remove of Carol is not
/// sent by Bob, not kept by Alice when received, and a Commit carrying it
/// by value is refused; Bob's Update is kept, and left out of Alice's
/// Commit once her policy refuses it.
#[test]
fn prp_policy_proposal_not_authorized() {
    let config = GroupConfig { identity: &ONE_COMMITTER, ..GroupConfig::default() };
    let mut fx = fixture_with(config);
    let want = CommitError::ProposalNotAuthorized;
    assert_eq!(want.code(), "PRP-POLICY");
    // Bob's own policy refuses to send it.
    let before = fx.bob.snapshot();
    let mut out = vec![0u8; 8192];
    let got = fx.bob.group.propose(&remove(2), WireFormatPolicy::Public, &mut fx.bob.rng, &mut out).err();
    assert_eq!(got, Some(CreateCommitError::Commit(want)));
    assert_eq!(fx.bob.snapshot(), before, "a refused proposal changed bob's group");
    // Bob, rejoined with the default policy, sends it; Alice refuses it.
    let mut bob = Member::new("bob", 22);
    let (kp, keys) = bob.key_package();
    let (commit, welcome) = fx.alice.commit(&[remove(1), add(&kp)], false);
    fx.carol.receive_commit(&commit);
    bob.join_with(&welcome.unwrap(), &kp, &keys, GroupConfig::default());
    drop(std::mem::replace(&mut fx.bob, bob));
    fx.agree();
    let proposal = fx.bob.propose(&remove(2));
    refuse(&mut fx.alice, &proposal, &NoPsks, ReceiveError::Commit(want));
    // A Commit of Bob's carrying it by value: refused by both others.
    let (mut m, mut w, mut gi) = buffers();
    let opts = CommitOptions { proposals: &[remove(2)], ..CommitOptions::DEFAULT };
    let bufs = CommitBuffers { message: &mut m, welcome: &mut w, group_info: &mut gi };
    let out = fx.bob.group.commit_in_memory(&opts, &NoPsks, NOW, &mut fx.bob.rng, &Sequential, bufs).unwrap();
    let msg = out.commit.to_vec();
    fx.bob.group.discard_staged_commit();
    refuse_commit(&mut fx.alice, &msg, &NoPsks, want, "PRP-POLICY");
    refuse_commit(&mut fx.carol, &msg, &NoPsks, want, "PRP-POLICY");
    // Bob's Update is kept by Alice; refused by her policy when she
    // commits, it stays out, and Carol (same policy) takes her Commit.
    let template = fx.bob.template();
    let mut out = vec![0u8; 8192];
    let update = fx.bob.group.propose_update(&template, WireFormatPolicy::Public, &mut fx.bob.rng, &mut out).unwrap().to_vec();
    fx.alice.receive_proposal(&update);
    fx.carol.receive_proposal(&update);
    REFUSE_UPDATES.store(true, std::sync::atomic::Ordering::SeqCst);
    let (commit, _) = fx.alice.try_commit(&[], true, true, WireFormatPolicy::Public, &NoPsks).unwrap();
    REFUSE_UPDATES.store(false, std::sync::atomic::Ordering::SeqCst);
    fx.alice.group.merge_staged_commit_in_memory().unwrap();
    let mut m = commit.clone();
    match fx.carol.group.process_message_in_memory(&mut m, &NoPsks, NOW) {
        Ok(Received::Commit(s)) => assert_eq!((s.updates, s.removes), (0, 0), "carol staged a refused proposal"),
        other => panic!("carol: {other:?}"),
    }
    fx.carol.group.merge_staged_commit_in_memory().unwrap();
    fx.bob.receive_commit(&commit);
    fx.agree();
    // Without the refusal, Alice's Commit takes Bob's next Update.
    let template = fx.bob.template();
    let mut out = vec![0u8; 8192];
    let update = fx.bob.group.propose_update(&template, WireFormatPolicy::Public, &mut fx.bob.rng, &mut out).unwrap().to_vec();
    fx.alice.receive_proposal(&update);
    fx.carol.receive_proposal(&update);
    let (commit, _) = fx.alice.try_commit(&[], true, true, WireFormatPolicy::Public, &NoPsks).unwrap();
    fx.alice.group.merge_staged_commit_in_memory().unwrap();
    let mut m = commit.clone();
    match fx.carol.group.process_message_in_memory(&mut m, &NoPsks, NOW) {
        Ok(Received::Commit(s)) => assert_eq!(s.updates, 1, "carol staged no Update"),
        other => panic!("carol: {other:?}"),
    }
    fx.carol.group.merge_staged_commit_in_memory().unwrap();
    fx.bob.receive_commit(&commit);
    fx.agree();
}

/// `tree` (an encoded `ratchet_tree<V>`) with `len` bytes at `at` of its
/// body replaced by `with`.
fn splice_tree(tree: &[u8], at: usize, len: usize, with: &[u8]) -> Vec<u8> {
    let mut body = Reader::new(tree).read_opaque().unwrap().to_vec();
    body.splice(at..at + len, with.iter().copied());
    let mut out = vec![0u8; body.len() + 8];
    let mut w = Writer::new(&mut out);
    w.write_opaque(&body).unwrap();
    let n = w.len();
    out.truncate(n);
    out
}

/// A given ratchet tree that does not import: a parent's key of the wrong
/// length, a leaf's key of the wrong length, a parent hash longer than any
/// hash.
#[test]
fn join_tree_import_refusals() {
    let mut fx = fixture();
    let (mut dave, kp, keys, welcome) = with_dave(&mut fx, false);
    let tree = fx.alice.tree_bytes();
    let body = Reader::new(&tree).read_opaque().unwrap().to_vec();
    let root_key = fx.alice.group.tree_slices_for_testing().encryption_key(NodeIndex(3)).unwrap().to_vec();
    let node1_key = fx.alice.group.tree_slices_for_testing().encryption_key(NodeIndex(1)).unwrap().to_vec();
    let bob_key = fx.alice.group.tree_slices_for_testing().encryption_key(NodeIndex(2)).unwrap().to_vec();
    let short = |key: &[u8]| {
        let at = find(&body, key) - 1;
        splice_tree(&tree, at, 33, &[[31u8].as_slice(), &key[..31]].concat())
    };
    let long_hash = {
        // node 1: encryption_key<V>, then parent_hash<V> of 32 bytes.
        let at = find(&body, &node1_key) + 32;
        assert_eq!(body[at], 32);
        splice_tree(&tree, at, 33, &[[0x40u8, 65].as_slice(), &[7; 65]].concat())
    };
    for (bad, e) in [
        (short(&root_key), TreeError::InvalidKey),
        (short(&bob_key), TreeError::InvalidKey),
        (long_hash, TreeError::InvalidParentHash),
    ] {
        refuse_join(&mut dave, &welcome, &kp, &keys, Some(&bad), JoinError::Tree(e));
    }
    dave_joins(&mut fx, &mut dave, &welcome, &kp, &keys, Some(&tree));
}

/// GroupContext extensions larger than the group can hold
/// (`MAX_GROUP_EXTENSIONS_LEN`).
#[test]
fn join_capacity_exceeded() {
    let mut fx = fixture();
    let (mut dave, kp, keys, welcome) = with_dave(&mut fx, true);
    let big = extension(EXT_X, &[0; 3000]);
    let w = edited_welcome(&fx, &welcome, &kp, &keys, |f| f.group_extensions = big.clone());
    refuse_join(&mut dave, &w, &kp, &keys, None, JoinError::CapacityExceeded(Capacity::GroupExtensionsLen));
    dave_joins(&mut fx, &mut dave, &welcome, &kp, &keys, None);
}

/// Joining by external Commit (§12.4.3.2) from a GroupInfo without
/// `external_pub`, with a bad signature, or not a GroupInfo; resyncing a
/// blank leaf; an output buffer too small; a slot with a staged commit.
#[test]
fn join_external_refusals() {
    let mut fx = fixture();
    let mut eve = Member::new("eve", 5);
    let gi = {
        let (mut gi, mut scratch) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
        fx.alice.group.group_info(true, &mut gi, &mut scratch).unwrap().to_vec()
    };
    let no_pub = {
        let MlsMessageBody::GroupInfo(g) = MlsMessage::decode_exact(&gi).unwrap().body else { panic!() };
        let tree = extension(EXT_RATCHET_TREE, g.tbs.extensions.find(EXT_RATCHET_TREE).unwrap());
        let tbs = GroupInfoTbs { extensions: Extensions::from_body(&tree).unwrap(), ..g.tbs };
        let mut out = vec![0u8; 64 * 1024];
        let signed = GroupInfo::sign_into(SUITE, &tbs, &fx.alice.signer, &mut out).unwrap();
        [[0u8, 1, 0, 4].as_slice(), signed].concat()
    };
    let bad_signature = flip(&gi, gi.len() - 2);
    let template = eve.template();
    let signer = eve.signer.clone();
    let try_join = |slot: &mut Member, gi: &[u8], resync: Option<LeafIndex>, out_len: usize| {
        let mut out = vec![0u8; out_len];
        let before = slot.snapshot();
        let r = slot
            .group
            .join_external(
                gi,
                None,
                &template,
                &signer,
                resync,
                &[],
                &NoPsks,
                GroupConfig::default(),
                &mut TestRng(3),
                &Sequential,
                &mut out,
            )
            .map(<[u8]>::to_vec);
        if r.is_err() {
            assert_eq!(slot.snapshot(), before, "{}: a failed external join changed the slot", slot.name);
        }
        r
    };
    let big = 128 * 1024;
    assert_eq!(try_join(&mut eve, &no_pub, None, big).err(), Some(JoinError::NoExternalPub));
    assert_eq!(try_join(&mut eve, &bad_signature, None, big).err(), Some(JoinError::InvalidGroupInfo));
    let (kp, _) = eve.key_package();
    let not_gi = [[0u8, 1, 0, 5].as_slice(), &kp].concat();
    assert_eq!(
        try_join(&mut eve, &not_gi, None, big).err(),
        Some(JoinError::Malformed(mls_nostd::codec::CodecError::InvalidValue))
    );
    assert_eq!(
        try_join(&mut eve, &gi, Some(LeafIndex(3)), big).err(),
        Some(JoinError::Commit(CommitError::RemoveOfBlankLeaf))
    );
    // The UpdatePath's work area is sized from the path (a few hundred
    // bytes here): 512 bytes cannot hold it and the Commit.
    let small = try_join(&mut eve, &gi, None, 512).err();
    assert!(
        matches!(small, Some(JoinError::Protection(ProtectionError::BufferTooSmall { needed })) if needed > 512),
        "{small:?}"
    );
    assert!(eve.group.is_inactive());
    // A slot with a staged commit: Bob's. It holds a group, which the join
    // would overwrite (one tree buffer per slot): refused as any active slot.
    fx.bob.try_commit(&[], false, true, WireFormatPolicy::Public, &NoPsks).unwrap();
    assert_eq!(try_join(&mut fx.bob, &gi, None, big).err(), Some(JoinError::SlotInUse));
    fx.bob.group.discard_staged_commit();
    // The valid join.
    let commit = try_join(&mut eve, &gi, None, big).unwrap();
    fx.alice.receive_commit(&commit);
    fx.bob.receive_commit(&commit);
    fx.carol.receive_commit(&commit);
    fx.agree();
    let (a, e) = (fx.alice.snapshot(), eve.snapshot());
    assert_eq!((e.epoch, &e.authenticator, &e.tree_hash), (a.epoch, &a.authenticator, &a.tree_hash));
}

/// An external join whose leaf template names a signature key other than
/// the signer's is refused before anything is built
/// (`JoinError::SignatureKeyNotOurs`): the leaf would be signed with the
/// signer's key while naming another, which every member refuses (§7.3,
/// §12.4.3.2), and the joiner would think itself in the group (found in
/// review: the Commit was built and the slot joined).
#[test]
fn join_external_leaf_of_another_signature_key_refused() {
    let mut fx = fixture();
    let gi = published_group_info(&mut fx.alice);
    let mut eve = Member::new("eve", 5);
    let other = Member::new("eve", 99).signer;
    let other_key: &'static [u8] = Box::leak(other.public_key().as_bytes().to_vec().into_boxed_slice());
    let signer = eve.signer.clone();
    let mut out = vec![0u8; 128 * 1024];
    let bad = LeafTemplate { signature_key: other_key, ..eve.template() };
    let before = eve.snapshot();
    let got = eve
        .group
        .join_external(&gi, None, &bad, &signer, None, &[], &NoPsks, GroupConfig::default(), &mut TestRng(3), &Sequential, &mut out)
        .map(<[u8]>::to_vec);
    assert_eq!(got.err(), Some(JoinError::SignatureKeyNotOurs));
    assert_eq!(eve.snapshot(), before, "a refused external join changed the slot");
    assert!(eve.group.is_inactive());
    let template = eve.template();
    let join = eve
        .group
        .join_external(&gi, None, &template, &signer, None, &[], &NoPsks, GroupConfig::default(), &mut TestRng(3), &Sequential, &mut out)
        .unwrap()
        .to_vec();
    for m in [&mut fx.alice, &mut fx.bob, &mut fx.carol] {
        m.receive_commit(&join);
    }
    fx.agree();
    assert_eq!(eve.snapshot().authenticator, fx.alice.snapshot().authenticator);
}

/// A GroupInfo (signed by a member) whose extensions, or whose
/// GroupContext's, hold a type twice is refused by an external joiner
/// (§13.4: "Any field containing a list of extensions MUST NOT have more
/// than one extension of any given type"); found in review: it joined
/// with the first `external_pub` of two, and with a GroupContext no member
/// has.
#[test]
fn join_external_duplicate_extensions_refused() {
    let mut fx = fixture();
    let gi = published_group_info(&mut fx.alice);
    let MlsMessageBody::GroupInfo(g) = MlsMessage::decode_exact(&gi).unwrap().body else { panic!() };
    let (_, other_pub) = derive_key_pair(SUITE, &[7u8; 32]).unwrap();
    let tree = extension(EXT_RATCHET_TREE, g.tbs.extensions.find(EXT_RATCHET_TREE).unwrap());
    let real_pub = extension(EXT_EXTERNAL_PUB, g.tbs.extensions.find(EXT_EXTERNAL_PUB).unwrap());
    let other = extension(EXT_EXTERNAL_PUB, &[[32u8].as_slice(), other_pub.as_bytes()].concat());
    let two_pubs = [tree.clone(), real_pub.clone(), other].concat();
    let required = extension(EXT_REQUIRED_CAPABILITIES, &[0, 0, 0]);
    let gc_exts = [g.tbs.group_context.extensions.body(), &required, &required].concat();
    let resign = |tbs: &GroupInfoTbs<'_>| {
        let mut out = vec![0u8; 64 * 1024];
        let signed = GroupInfo::sign_into(SUITE, tbs, &fx.alice.signer, &mut out).unwrap();
        [[0u8, 1, 0, 4].as_slice(), signed].concat()
    };
    let dup_pub = resign(&GroupInfoTbs { extensions: Extensions::from_body(&two_pubs).unwrap(), ..g.tbs });
    let gc = WireGroupContext { extensions: Extensions::from_body(&gc_exts).unwrap(), ..g.tbs.group_context };
    let dup_gc = resign(&GroupInfoTbs { group_context: gc, ..g.tbs });
    let mut eve = Member::new("eve", 5);
    let template = eve.template();
    let signer = eve.signer.clone();
    let mut out = vec![0u8; 128 * 1024];
    for bad in [&dup_pub, &dup_gc] {
        let before = eve.snapshot();
        let got = eve
            .group
            .join_external(bad, None, &template, &signer, None, &[], &NoPsks, GroupConfig::default(), &mut TestRng(3), &Sequential, &mut out)
            .map(<[u8]>::to_vec);
        assert_eq!(got.err(), Some(JoinError::Malformed(mls_nostd::codec::CodecError::InvalidValue)));
        assert_eq!(eve.snapshot(), before, "a refused external join changed the slot");
    }
    let join = eve
        .group
        .join_external(&gi, None, &template, &signer, None, &[], &NoPsks, GroupConfig::default(), &mut TestRng(3), &Sequential, &mut out)
        .unwrap()
        .to_vec();
    for m in [&mut fx.alice, &mut fx.bob, &mut fx.carol] {
        m.receive_commit(&join);
    }
    fx.agree();
}

/// An external join whose leaf's signature key is a member's, without a
/// resync of that member, is refused by the joiner before anything is
/// built (`CommitError::DuplicateKey`, §7.3: signature keys are unique
/// among the leaves): every member refuses such a Commit, and the joiner
/// would think itself in the group (found in review: it was built and the
/// slot joined). With the resync of that leaf it is Bob's rejoin.
#[test]
fn join_external_signature_key_of_a_member_refused() {
    let mut fx = fixture();
    let gi = published_group_info(&mut fx.alice);
    let mut bob2 = Member::new("bob", 12);
    bob2.signer = fx.bob.signer.clone();
    let template = bob2.template();
    let signer = bob2.signer.clone();
    let mut out = vec![0u8; 128 * 1024];
    let before = bob2.snapshot();
    let got = bob2
        .group
        .join_external(&gi, None, &template, &signer, None, &[], &NoPsks, GroupConfig::default(), &mut TestRng(3), &Sequential, &mut out)
        .map(<[u8]>::to_vec);
    if let Ok(commit) = &got {
        refuse_commit(&mut fx.alice, commit, &NoPsks, CommitError::DuplicateKey, "TREE-KEY-DUP");
    }
    assert_eq!(got.err(), Some(JoinError::Commit(CommitError::DuplicateKey)));
    assert_eq!(bob2.snapshot(), before, "a refused external join changed the slot");
    let resync = bob2
        .group
        .join_external(&gi, None, &template, &signer, Some(LeafIndex(1)), &[], &NoPsks, GroupConfig::default(), &mut bob2.rng, &Sequential, &mut out)
        .unwrap()
        .to_vec();
    fx.alice.receive_commit(&resync);
    fx.carol.receive_commit(&resync);
    assert_eq!(bob2.snapshot().authenticator, fx.alice.snapshot().authenticator);
}

/// An external join whose leaf does not support what the group's
/// `required_capabilities` requires is refused by the joiner before the
/// Commit is built (`CommitError::UnsupportedCapabilities`, §7.3, §11.1):
/// every member refuses such a Commit, and the joiner would think itself in
/// the group (found in review: only §13.4's GroupContext extension types
/// were checked).
#[test]
fn join_external_leaf_lacking_required_capabilities_refused() {
    let mut fx = fixture();
    let required = extension(EXT_REQUIRED_CAPABILITIES, &required_extensions(&[EXT_X]));
    let (commit, _) = fx.alice.commit(&[gce(&required)], false);
    fx.bob.receive_commit(&commit);
    fx.carol.receive_commit(&commit);
    let gi = published_group_info(&mut fx.alice);
    let mut eve = Member::new("eve", 5);
    let signer = eve.signer.clone();
    let lacking = LeafTemplate { capabilities: Capabilities { extensions: U16List::default(), ..caps() }, ..eve.template() };
    let mut out = vec![0u8; 128 * 1024];
    let before = eve.snapshot();
    let got = eve
        .group
        .join_external(&gi, None, &lacking, &signer, None, &[], &NoPsks, GroupConfig::default(), &mut TestRng(3), &Sequential, &mut out)
        .map(<[u8]>::to_vec);
    if let Ok(commit) = &got {
        refuse_commit(&mut fx.alice, commit, &NoPsks, CommitError::UnsupportedCapabilities, "LEAF-CAPS");
    }
    assert_eq!(got.err(), Some(JoinError::Commit(CommitError::UnsupportedCapabilities)));
    assert_eq!(eve.snapshot(), before, "a refused external join changed the slot");
    let template = eve.template();
    let join = eve
        .group
        .join_external(&gi, None, &template, &signer, None, &[], &NoPsks, GroupConfig::default(), &mut TestRng(3), &Sequential, &mut out)
        .unwrap()
        .to_vec();
    for m in [&mut fx.alice, &mut fx.bob, &mut fx.carol] {
        m.receive_commit(&join);
    }
    fx.agree();
}

/// An external join whose PreSharedKeyIDs, fewer than
/// `MAX_PSKS_PER_COMMIT`, encode to more bytes than a staged Commit keeps
/// of them (`STAGED_PSK_BYTES`) is refused by the joiner before anything is
/// built (`CommitError::CapacityExceeded(Capacity::StagedPskBytes)`, as a
/// member's own Commit of them is): every member refuses such a Commit, and
/// the joiner would think itself in the group (found in review while
/// extending self_acceptance_external to external joins of several PSKs,
/// §12.4.3.2).
/// Fewer of them fit: the join every member accepts.
#[test]
fn join_external_psk_ids_beyond_the_staged_bytes_refused() {
    let mut fx = fixture();
    let gi = published_group_info(&mut fx.alice);
    // Twelve external PSKs of 100-byte IDs: 136 bytes each, encoded.
    let ids: Vec<Vec<u8>> = (0..12u8).map(|i| [vec![b'k'; 99], vec![i]].concat()).collect();
    let id_refs: Vec<&[u8]> = ids.iter().map(Vec::as_slice).collect();
    let store = Psks::with(&id_refs);
    let nonce = [5u8; 32];
    let psks: Vec<PreSharedKeyId<'_>> =
        ids.iter().map(|id| PreSharedKeyId { psk: Psk::External { psk_id: id }, psk_nonce: &nonce }).collect();
    let encoded: usize = psks
        .iter()
        .map(|p| {
            let mut buf = [0u8; 256];
            let mut w = Writer::new(&mut buf);
            p.encode(&mut w).unwrap();
            w.len()
        })
        .sum();
    assert!(encoded > mls_nostd::group::STAGED_PSK_BYTES && psks.len() <= mls_nostd::group::MAX_PSKS_PER_COMMIT);
    let mut eve = Member::new("eve", 5);
    let signer = eve.signer.clone();
    let template = eve.template();
    let mut out = vec![0u8; 128 * 1024];
    let before = eve.snapshot();
    let got = eve
        .group
        .join_external(&gi, None, &template, &signer, None, &psks, &store, GroupConfig::default(), &mut TestRng(3), &Sequential, &mut out)
        .map(<[u8]>::to_vec);
    let want = CommitError::CapacityExceeded(Capacity::StagedPskBytes);
    if let Ok(commit) = &got {
        refuse_commit(&mut fx.alice, commit, &store, want, "CAP");
    }
    assert_eq!(got.err(), Some(JoinError::Commit(want)));
    assert_eq!(eve.snapshot(), before, "a refused external join changed the slot");
    let join = eve
        .group
        .join_external(&gi, None, &template, &signer, None, &psks[..4], &store, GroupConfig::default(), &mut TestRng(3), &Sequential, &mut out)
        .unwrap()
        .to_vec();
    for m in [&mut fx.alice, &mut fx.bob, &mut fx.carol] {
        m.receive_commit_with(&join, &store);
    }
    fx.agree();
}

/// A [`PskStore`] that answers for keys like `inner` but claims `linked`
/// about the group a PSK links to.
struct Linked<'a> {
    inner: &'a dyn PskStore,
    linked: Option<mls_nostd::psk::LinkedGroup<'a>>,
}

impl PskStore for Linked<'_> {
    fn external_psk(&self, psk_id: &[u8]) -> Option<&[u8]> {
        self.inner.external_psk(psk_id)
    }

    fn resumption_psk(&self, group_id: &[u8], epoch: u64) -> Option<&[u8]> {
        self.inner.resumption_psk(group_id, epoch)
    }

    fn linked_group(&self, _: &[u8], _: u64) -> Option<mls_nostd::psk::LinkedGroup<'_>> {
        self.linked
    }
}

/// The first Commit of `creator`'s new group `group_id`, adding `joiner_kp`
/// with a resumption PSK of `usage` from `old` at `epoch`: its Welcome.
fn linked_welcome(
    creator: &mut Member,
    group_id: &'static [u8],
    joiner_kp: &[u8],
    usage: ResumptionPskUsage,
    old: &G,
    old_id: &'static [u8],
    epoch: u64,
) -> Vec<u8> {
    let params = CreateParams {
        suite: SUITE,
        group_id,
        credential: Credential::Basic { identity: creator.name.as_bytes() },
        lifetime: LIFETIME,
        capabilities: caps(),
        extensions: Extensions::default(),
        config: GroupConfig::default(),
    };
    creator.group.create(&params, &creator.signer.clone(), &mut creator.rng).unwrap();
    let nonce = [0x42u8; 32];
    let link = Proposal::PreSharedKey(PreSharedKey {
        psk: PreSharedKeyId {
            psk: Psk::Resumption { usage, psk_group_id: old_id, psk_epoch: epoch },
            psk_nonce: &nonce,
        },
    });
    let (_, welcome) =
        creator.try_commit(&[add(joiner_kp), link], false, false, WireFormatPolicy::Public, old).unwrap();
    creator.group.merge_staged_commit_in_memory().unwrap();
    welcome.unwrap()
}

/// Welcomes into a group that resumes another (§11.2, §11.3, §12.4.3.1):
/// the linked group unknown, no ReInit or another ReInit than the one
/// committed, a branch of another cipher suite.
#[test]
fn join_linked_group_refusals() {
    let mut fx = fixture();
    let reinit = Proposal::ReInit(ReInit {
        group_id: b"new-group",
        version: 1,
        cipher_suite: SUITE.to_u16(),
        extensions: Extensions::default(),
    });
    let (commit, _) = fx.alice.commit(&[reinit], false);
    fx.bob.receive_commit(&commit);
    fx.carol.receive_commit(&commit);
    let reinit_epoch = fx.alice.group.epoch();
    let mut new_alice = Member::new("alice", 1);
    new_alice.rng = TestRng(101);
    let mut new_bob = Member::new("bob", 2);
    new_bob.rng = TestRng(102);
    let (kp, keys) = new_bob.key_package();
    let welcome = linked_welcome(
        &mut new_alice,
        b"new-group",
        &kp,
        ResumptionPskUsage::Reinit,
        &fx.alice.group,
        GROUP_ID,
        reinit_epoch,
    );
    let join = |m: &mut Member, store: &dyn PskStore| {
        let signer = m.signer.clone();
        let params = JoinParams {
            executor: &mls_nostd::executor::Sequential,
            key_package: &kp,
            keys: &keys,
            signer: &signer,
            ratchet_tree: None,
            psks: store,
            config: GroupConfig::default(),
        };
        let mut buf = vec![0u8; welcome.len()];
        let before = m.snapshot();
        let r = m.group.join_in_memory(&welcome, &params, &mut buf);
        if r.is_err() {
            assert_eq!(m.snapshot(), before, "{}: a failed join changed the slot", m.name);
        }
        r
    };
    let old_bob: &G = &fx.bob.group;
    let suite = SUITE.to_u16();
    let cases = [
        (Linked { inner: old_bob, linked: None }, JoinError::UnknownLinkedGroup),
        (
            Linked { inner: old_bob, linked: Some(mls_nostd::psk::LinkedGroup { cipher_suite: suite, reinit: None }) },
            JoinError::ReInitMismatch,
        ),
        (
            Linked {
                inner: old_bob,
                linked: Some(mls_nostd::psk::LinkedGroup {
                    cipher_suite: suite,
                    reinit: Some((b"another-group", 1, suite, &[])),
                }),
            },
            JoinError::ReInitMismatch,
        ),
    ];
    for (store, want) in &cases {
        assert_eq!(join(&mut new_bob, store), Err(*want));
    }
    join(&mut new_bob, old_bob).unwrap();
    assert_eq!(new_bob.group.epoch_authenticator(), new_alice.group.epoch_authenticator());

    // A branch of the new group by Bob, with Alice; her store claims the
    // group it branches from has another cipher suite.
    let mut branch_bob = Member::new("bob", 2);
    branch_bob.rng = TestRng(103);
    let mut branch_alice = Member::new("alice", 1);
    branch_alice.rng = TestRng(104);
    let (akp, akeys) = branch_alice.key_package();
    let epoch = new_bob.group.epoch();
    let welcome = linked_welcome(
        &mut branch_bob,
        b"branch",
        &akp,
        ResumptionPskUsage::Branch,
        &new_bob.group,
        b"new-group",
        epoch,
    );
    let other = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519.to_u16();
    let lying = Linked {
        inner: &*new_alice.group,
        linked: Some(mls_nostd::psk::LinkedGroup { cipher_suite: other, reinit: None }),
    };
    for (store, want) in
        [(&lying as &dyn PskStore, Some(JoinError::BranchMismatch)), (&*new_alice.group as &dyn PskStore, None)]
    {
        let p = JoinParams {
            executor: &mls_nostd::executor::Sequential,
            key_package: &akp,
            keys: &akeys,
            signer: &branch_alice.signer,
            ratchet_tree: None,
            psks: store,
            config: GroupConfig::default(),
        };
        let mut buf = vec![0u8; welcome.len()];
        assert_eq!(branch_alice.group.join_in_memory(&welcome, &p, &mut buf).err(), want);
    }
    assert_eq!(branch_alice.group.epoch_authenticator(), branch_bob.group.epoch_authenticator());
}

/// The application refuses a credential a Commit brings in (§5.3.1): an Add
/// of "mallory" is refused by a member whose policy rejects that identity.
#[test]
fn leaf_cred_policy_rejects_added_credential() {
    struct NoMallory;
    impl IdentityProvider for NoMallory {
        fn validate(&self, _: &[u8], _: CredentialUse, m: &MemberIdentity<'_>) -> bool {
            !matches!(m.credential, Credential::Basic { identity } if identity == b"mallory")
        }
        fn valid_successor(&self, old: &MemberIdentity<'_>, new: &MemberIdentity<'_>) -> bool {
            old.credential == new.credential
        }
    }
    static NO_MALLORY: NoMallory = NoMallory;
    let config = GroupConfig { identity: &NO_MALLORY, ..GroupConfig::default() };
    let mut fx = fixture_with(config);
    let want = CommitError::CredentialRejected;
    let mut mallory = Member::new("mallory", 9);
    let (kp, _) = mallory.key_package();
    let list = [add(&kp)];
    let msg = craft_commit(&mut fx.alice, &by_value(&list), None);
    refuse_commit(&mut fx.bob, &msg, &NoPsks, want, "LEAF-CRED");
    refuse_create(&mut fx.alice, &list, false, &NoPsks, want);
    // Someone else may join.
    let mut dave = Member::new("dave", 4);
    let (kp, _) = dave.key_package();
    valid_commit_then_usable(&mut fx, &[add(&kp)], &NoPsks);
}

// ---------------------------------------------------------------------------
// Identity (§5.3.1): a new credential must be a valid successor of the one it
// replaces. Issue #13, point 1: at 7208f14 the core never asked, so each of
// the three commits refused below was accepted.
// ---------------------------------------------------------------------------

/// An identity policy that accepts every successor: the committer's side of
/// the tests below, so that it builds what a receiver must refuse.
struct AnySuccessor;

impl IdentityProvider for AnySuccessor {
    fn validate(&self, _: &[u8], _: CredentialUse, _: &MemberIdentity<'_>) -> bool {
        true
    }
    fn valid_successor(&self, _: &MemberIdentity<'_>, _: &MemberIdentity<'_>) -> bool {
        true
    }
    fn valid_resync(&self, _: &MemberIdentity<'_>, _: &MemberIdentity<'_>) -> bool {
        true
    }
}

static ANY_SUCCESSOR: AnySuccessor = AnySuccessor;

/// The GroupInfo Alice publishes, with `external_pub` and the tree.
fn published_group_info(m: &mut Member) -> Vec<u8> {
    let (mut gi, mut scratch) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    m.group.group_info(true, &mut gi, &mut scratch).unwrap().to_vec()
}

/// A new client `name` (seed `seed`, a signature key of its own) joins by
/// an external Commit that removes Bob (leaf 1), built from Alice's
/// GroupInfo under a policy of its own that accepts any successor.
fn external_commit_removing_bob(fx: &mut Fx, name: &'static str, seed: u64) -> (Member, Vec<u8>) {
    let gi = published_group_info(&mut fx.alice);
    let mut joiner = Member::new(name, seed);
    let template = joiner.template();
    let signer = joiner.signer.clone();
    let mut out = vec![0u8; 128 * 1024];
    let config = GroupConfig { identity: &ANY_SUCCESSOR, ..GroupConfig::default() };
    let msg = joiner
        .group
        .join_external(&gi, None, &template, &signer, Some(LeafIndex(1)), &[], &NoPsks, config, &mut joiner.rng, &Sequential, &mut out)
        .unwrap()
        .to_vec();
    (joiner, msg)
}

/// An external committer who is not Bob cannot remove Bob (§12.4.3.2: the
/// new leaf must meet the rules of an Update of the removed one). At
/// 7208f14 Eve's Commit was accepted and Bob was evicted.
#[test]
fn leaf_successor_external_commit_cannot_evict_another_member() {
    let mut fx = fixture();
    let gi = published_group_info(&mut fx.alice);
    let (_, evil) = external_commit_removing_bob(&mut fx, "eve", 5);
    refuse_commit(&mut fx.alice, &evil, &NoPsks, CommitError::InvalidSuccessor, "LEAF-SUCCESSOR");
    refuse_commit(&mut fx.carol, &evil, &NoPsks, CommitError::InvalidSuccessor, "LEAF-SUCCESSOR");
    refuse_commit(&mut fx.bob, &evil, &NoPsks, CommitError::InvalidSuccessor, "LEAF-SUCCESSOR");
    // Eve may still join without removing anyone.
    let mut eve = Member::new("eve", 6);
    let template = eve.template();
    let signer = eve.signer.clone();
    let mut out = vec![0u8; 128 * 1024];
    let join = eve
        .group
        .join_external(&gi, None, &template, &signer, None, &[], &NoPsks, GroupConfig::default(), &mut eve.rng, &Sequential, &mut out)
        .unwrap()
        .to_vec();
    for m in [&mut fx.alice, &mut fx.bob, &mut fx.carol] {
        m.receive_commit(&join);
    }
    fx.agree();
    fx.usable();
}

/// Bob resyncs himself: a new client of Bob's (his credential and his
/// signature key, new encryption keys) replaces his leaf by external
/// Commit, and every member accepts it. (With a new signature key the
/// default policy refuses it: `leaf_successor_resync_with_a_fresh_key_is_refused`.)
#[test]
fn leaf_successor_resync_by_the_same_member_is_accepted() {
    let mut fx = fixture();
    let gi = published_group_info(&mut fx.alice);
    let mut bob2 = Member::new("bob", 12);
    bob2.signer = fx.bob.signer.clone();
    let template = bob2.template();
    let signer = bob2.signer.clone();
    let mut out = vec![0u8; 128 * 1024];
    let resync = bob2
        .group
        .join_external(&gi, None, &template, &signer, Some(LeafIndex(1)), &[], &NoPsks, GroupConfig::default(), &mut bob2.rng, &Sequential, &mut out)
        .unwrap()
        .to_vec();
    fx.alice.receive_commit(&resync);
    fx.carol.receive_commit(&resync);
    assert_eq!(bob2.group.own_leaf(), LeafIndex(1));
    assert_eq!(bob2.snapshot().authenticator, fx.alice.snapshot().authenticator);
    let m = bob2.send(b"back");
    assert_eq!(fx.carol.receive_app(&m), b"back");
}

/// A group that ended publishes no GroupInfo (§12.4.2: after a ReInit
/// Commit the client "MUST NOT use the group to send messages anymore"; a
/// removed member is no longer in it). An outsider given one builds an
/// external Commit that every member refuses (`ReceiveError::Inactive`)
/// while it thinks itself joined. Found by `self_acceptance_external`:
/// `Group::group_info` signed a GroupInfo with `external_pub` for the
/// ended epoch.
#[test]
fn group_info_of_an_ended_group_refused() {
    let mut fx = fixture();
    let reinit = Proposal::ReInit(ReInit { group_id: b"next group", version: 1, cipher_suite: SUITE.to_u16(), extensions: Extensions::default() });
    let (commit, _) = fx.alice.commit(&[reinit], false);
    fx.bob.receive_commit(&commit);
    fx.carol.receive_commit(&commit);
    let (mut gi, mut scratch) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    for m in [&mut fx.alice, &mut fx.bob, &mut fx.carol] {
        assert!(m.group.is_inactive());
        let before = m.snapshot();
        let got = m.group.group_info(true, &mut gi, &mut scratch).map(<[u8]>::len);
        assert_eq!(got, Err(GroupError::Inactive), "{}: a GroupInfo of a reinitialized group", m.name);
        assert_eq!(m.snapshot(), before);
    }
    // A member removed from the group.
    let mut fx = fixture();
    let (commit, _) = fx.alice.commit(&[remove(2)], false);
    fx.bob.receive_commit(&commit);
    assert!(fx.carol.receive_commit_removed(&commit));
    let got = fx.carol.group.group_info(true, &mut gi, &mut scratch).map(<[u8]>::len);
    assert_eq!(got, Err(GroupError::Inactive), "a GroupInfo of a removed member");
    // The others go on.
    let gi = published_group_info(&mut fx.alice);
    assert!(!gi.is_empty());
}

/// A joiner's resync that would remove another member than its own old
/// leaf is refused by the joiner under its own identity policy (§12.2: the
/// new leaf must meet the rules of an Update of the removed one), before
/// anything is built: every member refuses such a Commit
/// (`leaf_successor_external_commit_cannot_evict_another_member`), and the
/// joiner, thinking itself in the group, would have left Bob's leaf index
/// to no one (found in review: the Commit was built and the slot joined).
#[test]
fn join_external_resync_of_another_member_refused() {
    let mut fx = fixture();
    let gi = published_group_info(&mut fx.alice);
    let mut eve = Member::new("eve", 5);
    let template = eve.template();
    let signer = eve.signer.clone();
    let mut out = vec![0u8; 128 * 1024];
    let before = eve.snapshot();
    let got = eve
        .group
        .join_external(&gi, None, &template, &signer, Some(LeafIndex(1)), &[], &NoPsks, GroupConfig::default(), &mut TestRng(3), &Sequential, &mut out)
        .map(<[u8]>::to_vec);
    assert_eq!(got.err(), Some(JoinError::Commit(CommitError::InvalidSuccessor)));
    assert_eq!(eve.snapshot(), before, "a refused external join changed the slot");
    // Bob's new client (his credential and key) resyncs Bob's leaf.
    let mut bob2 = Member::new("bob", 12);
    bob2.signer = fx.bob.signer.clone();
    let template = bob2.template();
    let signer = bob2.signer.clone();
    let resync = bob2
        .group
        .join_external(&gi, None, &template, &signer, Some(LeafIndex(1)), &[], &NoPsks, GroupConfig::default(), &mut bob2.rng, &Sequential, &mut out)
        .unwrap()
        .to_vec();
    fx.alice.receive_commit(&resync);
    fx.carol.receive_commit(&resync);
    assert_eq!(bob2.snapshot().authenticator, fx.alice.snapshot().authenticator);
}

/// An Update whose leaf carries another member's credential is refused
/// (§12.1.2, §5.3.1), and a pending-proposal Commit leaves it out. At
/// 7208f14 Bob could turn his leaf into "carol".
#[test]
fn leaf_successor_update_with_another_credential() {
    let mut fx = fixture();
    let current = fx.bob.leaf(1);
    let leaf = LeafNode::decode_exact(&current).unwrap();
    let key = fresh_key(7);
    let fields = LeafNodeFields {
        encryption_key: &key,
        source: LeafNodeSource::Update,
        credential: Credential::Basic { identity: b"carol" },
        ..leaf.fields
    };
    let ctx = LeafNodeContext { group_id: GROUP_ID, leaf_index: 1 };
    let mut buf = vec![0u8; 2048];
    let impostor = LeafNode::sign_into(SUITE, &fields, Some(ctx), &fx.bob.signer.clone(), &mut buf).unwrap().to_vec();
    let update = Proposal::Update(Update { leaf_node: LeafNode::decode_exact(&impostor).unwrap() });
    let proposal = fx.bob.propose(&update);
    let reference = fx.alice.receive_proposal(&proposal);
    fx.carol.receive_proposal(&proposal);
    let msg = craft_commit(&mut fx.alice, &[ProposalOrRef::Reference(&reference)], None);
    refuse_commit(&mut fx.carol, &msg, &NoPsks, CommitError::InvalidSuccessor, "LEAF-SUCCESSOR");
    assert_eq!(commit_pending(&mut fx, &[]).updates, 0);
    fx.usable();
}

/// Our own Commit or Update whose leaf template names a signature key other
/// than the group signer's is refused before anything is staged or sent
/// (`CreateCommitError::SignatureKeyNotOurs`): the leaf would be signed
/// with the signer's key while naming another, which every member refuses
/// (§7.3), and a merged Commit of ours that no one accepts leaves the group
/// (found in review: it was created, staged and refused by every receiver).
#[test]
fn create_commit_leaf_of_another_signature_key_refused() {
    let mut fx = fixture();
    let other = Member::new("alice", 99).signer;
    let other_key: &'static [u8] = Box::leak(other.public_key().as_bytes().to_vec().into_boxed_slice());
    let template = LeafTemplate { signature_key: other_key, ..fx.alice.template() };
    let before = fx.alice.snapshot();
    let (mut m, mut w, mut gi) = buffers();
    let opts = CommitOptions { force_path: true, leaf: Some(template), ..CommitOptions::DEFAULT };
    let bufs = CommitBuffers { message: &mut m, welcome: &mut w, group_info: &mut gi };
    let got = fx.alice.group.commit_in_memory(&opts, &NoPsks, NOW, &mut fx.alice.rng, &Sequential, bufs).err();
    assert_eq!(got, Some(CreateCommitError::SignatureKeyNotOurs));
    assert_eq!(fx.alice.group.merge_staged_commit_in_memory(), Err(GroupError::NothingStaged), "a Commit was staged");
    let mut out = vec![0u8; 8 * 1024];
    let got = fx.alice.group.propose_update(&template, WireFormatPolicy::Public, &mut fx.alice.rng, &mut out).err();
    assert_eq!(got, Some(CreateCommitError::SignatureKeyNotOurs));
    assert_eq!(fx.alice.snapshot(), before, "a refused Commit or Update changed the group");
    fx.usable();
}

/// Our Commit's path leaf and our Update's leaf are checked by our own
/// identity policy as the successor of our leaf (§5.3.1), as the receivers
/// check them: a template with another basic credential (the default
/// policy keeps credentials) is refused before anything is staged or
/// sent. Created, every member refused such a Commit (`InvalidSuccessor`),
/// and merged, it left us in an epoch of our own.
#[test]
fn create_commit_leaf_of_another_credential_refused() {
    let mut fx = fixture();
    let template = LeafTemplate { credential: Credential::Basic { identity: b"mallory" }, ..fx.alice.template() };
    let before = fx.alice.snapshot();
    let (mut m, mut w, mut gi) = buffers();
    let opts = CommitOptions { force_path: true, leaf: Some(template), ..CommitOptions::DEFAULT };
    let bufs = CommitBuffers { message: &mut m, welcome: &mut w, group_info: &mut gi };
    let got = fx.alice.group.commit_in_memory(&opts, &NoPsks, NOW, &mut fx.alice.rng, &Sequential, bufs).err();
    assert_eq!(got, Some(CreateCommitError::Commit(CommitError::InvalidSuccessor)));
    assert_eq!(fx.alice.group.merge_staged_commit_in_memory(), Err(GroupError::NothingStaged), "a Commit was staged");
    // An Update of it would be ignored by every member (§12.1.2).
    let mut out = vec![0u8; 8 * 1024];
    let got = fx.alice.group.propose_update(&template, WireFormatPolicy::Public, &mut fx.alice.rng, &mut out).err();
    assert_eq!(got, Some(CreateCommitError::Commit(CommitError::InvalidSuccessor)));
    assert_eq!(fx.alice.snapshot(), before, "a refused Commit or Update changed the group");
    fx.usable();
}

/// An Update that changes its member's signature key passes the default
/// policy (§12.1.2): it comes framed and signed with the member's current
/// key. Only a resync, signed by its new leaf's key alone, must keep the
/// removed member's key (`IdentityProvider::valid_resync`).
#[test]
fn leaf_successor_update_with_a_new_signature_key_is_accepted() {
    let mut fx = fixture();
    let current = fx.bob.leaf(1);
    let leaf = LeafNode::decode_exact(&current).unwrap();
    let key = fresh_key(7);
    let next = Member::new("bob", 31).signer;
    let next_key = next.public_key().as_bytes().to_vec();
    assert_ne!(next_key, leaf.fields.signature_key, "the same signature key");
    let fields = LeafNodeFields { encryption_key: &key, signature_key: &next_key, source: LeafNodeSource::Update, ..leaf.fields };
    let ctx = LeafNodeContext { group_id: GROUP_ID, leaf_index: 1 };
    let mut buf = vec![0u8; 2048];
    let rotated = LeafNode::sign_into(SUITE, &fields, Some(ctx), &next, &mut buf).unwrap().to_vec();
    let update = Proposal::Update(Update { leaf_node: LeafNode::decode_exact(&rotated).unwrap() });
    let proposal = fx.bob.propose(&update);
    fx.alice.receive_proposal(&proposal);
    fx.carol.receive_proposal(&proposal);
    // Alice's Commit takes it (her own checks leave an invalid one out),
    // and Carol stages it.
    let (commit, _) = fx.alice.try_commit(&[], true, true, WireFormatPolicy::Public, &NoPsks).unwrap();
    let mut m = commit.clone();
    match fx.carol.group.process_message_in_memory(&mut m, &NoPsks, NOW) {
        Ok(Received::Commit(s)) => assert_eq!(s.updates, 1, "carol staged no Update"),
        other => panic!("carol: {other:?}"),
    }
    fx.carol.group.merge_staged_commit_in_memory().unwrap();
    fx.alice.group.merge_staged_commit_in_memory().unwrap();
    assert_eq!(fx.carol.group.tree().signature_key(LeafIndex(1)), Some(&next_key[..]));
}

/// A member's Commit whose path leaf carries another credential is refused
/// (§12.4.2 applies §7.3 and §5.3.1 to the committer's new leaf). Bob's own
/// policy lets him build it; Alice and Carol refuse it.
#[test]
fn leaf_successor_commit_path_with_another_credential() {
    let mut fx = fixture();
    // Bob, rejoined with a policy that lets him commit anything.
    let mut bob = Member::new("bob", 22);
    let (kp, keys) = bob.key_package();
    let (commit, welcome) = fx.alice.commit(&[remove(1), add(&kp)], false);
    fx.carol.receive_commit(&commit);
    bob.join_with(&welcome.unwrap(), &kp, &keys, GroupConfig { identity: &ANY_SUCCESSOR, ..GroupConfig::default() });
    let fx_bob = std::mem::replace(&mut fx.bob, bob);
    drop(fx_bob);
    fx.agree();
    let template = LeafTemplate { credential: Credential::Basic { identity: b"alice" }, ..fx.bob.template() };
    let (mut m, mut w, mut gi) = buffers();
    let opts = CommitOptions {
        proposals: &[],
        include_pending: false,
        force_path: true,
        ratchet_tree_in_welcome: false,
        wire_format: WireFormatPolicy::Public,
        padding: 0,
        authenticated_data: b"",
        leaf: Some(template),
    };
    let bufs = CommitBuffers { message: &mut m, welcome: &mut w, group_info: &mut gi };
    let out = fx.bob.group.commit_in_memory(&opts, &NoPsks, NOW, &mut fx.bob.rng, &Sequential, bufs).unwrap();
    let msg = out.commit.to_vec();
    fx.bob.group.discard_staged_commit();
    refuse_commit(&mut fx.alice, &msg, &NoPsks, CommitError::InvalidSuccessor, "LEAF-SUCCESSOR");
    refuse_commit(&mut fx.carol, &msg, &NoPsks, CommitError::InvalidSuccessor, "LEAF-SUCCESSOR");
    fx.usable();
}

// ---------------------------------------------------------------------------
// Forged resyncs (§12.4.3.2, §5.3.1). A basic credential is a bare name:
// an outsider can copy it, and sign a leaf carrying it with a key of its
// own. The member such a Commit removes cannot check its confirmation tag.
// ---------------------------------------------------------------------------

/// An external Commit from Eve, forged without the group's secrets: a junk
/// ExternalInit, a Remove of Bob, a path of one leaf (`signature_key`,
/// Bob's credential, `source`, no path nodes) signed by `signer` for leaf
/// `signed_for`, a junk confirmation tag. Eve knows only the group ID, the
/// epoch, Bob's leaf index and his credential.
fn forged_resync(
    fx: &mut Fx,
    signer: &SignaturePrivateKey,
    source: LeafNodeSource<'_>,
    signed_for: u32,
) -> Vec<u8> {
    let enc = fresh_key(99);
    let sig = signer.public_key().as_bytes().to_vec();
    let fields = LeafNodeFields {
        encryption_key: &enc,
        signature_key: &sig,
        credential: Credential::Basic { identity: b"bob" },
        capabilities: caps(),
        source,
        extensions: Extensions::default(),
    };
    // Eve would take leaf 1 (Bob's, the leftmost blank after the Remove).
    let ctx = LeafNodeContext { group_id: GROUP_ID, leaf_index: signed_for };
    let mut buf = vec![0u8; 2048];
    let leaf = LeafNode::sign_into(SUITE, &fields, Some(ctx), signer, &mut buf).unwrap().to_vec();
    let nodes = encode_nodes(&[]);
    let path = UpdatePath { leaf_node: LeafNode::decode_exact(&leaf).unwrap(), nodes: ListView::from_body(&nodes).unwrap() };
    let kem = fresh_key(98);
    let list = [
        ProposalOrRef::Proposal(Proposal::ExternalInit(ExternalInit { kem_output: &kem })),
        ProposalOrRef::Proposal(remove(1)),
    ];
    let body = encode_list(&list);
    let gc_bytes = fx.bob.context();
    let gc = EncodedGroupContext::decode(&gc_bytes).unwrap();
    let content = FramedContent {
        group_id: GROUP_ID,
        epoch: 2,
        sender: Sender::NewMemberCommit,
        authenticated_data: b"",
        content: Content::Commit(Commit { proposals: ListView::from_body(&body).unwrap(), path: Some(path) }),
    };
    let mut out = vec![0u8; 64 * 1024];
    public_message::sign(&gc, signer, &content, &mut out).unwrap().finish(Some(&[0x55; 32]), None).unwrap().to_vec()
}

/// Eve resyncs "Bob" with her own key (Bob's basic credential copied):
/// every member refuses it, Bob too, who cannot check the confirmation tag
/// of a Commit that removes him. Before the default policy compared
/// signature keys, Bob staged his removal (and, with a GroupInfo
/// published, every member accepted a real one).
#[test]
fn leaf_successor_forged_resync_refused_by_its_victim() {
    let mut fx = fixture();
    let eve = Member::new("eve", 77);
    let msg = forged_resync(&mut fx, &eve.signer, LeafNodeSource::Commit { parent_hash: &[7u8; 32] }, 1);
    for m in [&mut fx.alice, &mut fx.carol, &mut fx.bob] {
        refuse_commit(m, &msg, &NoPsks, CommitError::InvalidSuccessor, "LEAF-SUCCESSOR");
    }
    fx.usable();
}

/// A member removed by an external Commit checks its path leaf as the
/// others do (§12.4.2, §7.3): here the members accept a new signature key
/// for a credential (an application policy, as X.509 users may have), and
/// Eve's leaf is signed for another leaf index, or is a KeyPackage's leaf
/// (a valid signature, source `key_package`). Before the check, Bob, the
/// member removed, staged his removal for both.
#[test]
fn com_path_leaf_checked_by_the_member_it_removes() {
    let mut fx = fixture_with(GroupConfig { identity: &ANY_SUCCESSOR, ..GroupConfig::default() });
    let eve = Member::new("eve", 77);
    let want = CommitError::InvalidPath(TreeKemError::InvalidLeafNode);
    let wrong_leaf = forged_resync(&mut fx, &eve.signer, LeafNodeSource::Commit { parent_hash: &[7u8; 32] }, 5);
    let key_package_leaf = forged_resync(&mut fx, &eve.signer, LeafNodeSource::KeyPackage(LIFETIME), 1);
    for msg in [wrong_leaf, key_package_leaf] {
        for m in [&mut fx.bob, &mut fx.alice, &mut fx.carol] {
            refuse_commit(m, &msg, &NoPsks, want, "COM-PATH");
        }
    }
    fx.usable();
}

/// Bob's new client resyncs with a fresh signature key under his name: the
/// default policy refuses it (a basic credential binds no key, so the name
/// alone is anyone's), Bob included. A policy of the application's that
/// accepts the new key lets it in.
#[test]
fn leaf_successor_resync_with_a_fresh_key_is_refused() {
    let resync = |fx: &mut Fx| external_commit_removing_bob(fx, "bob", 12);
    let mut fx = fixture();
    let (_, msg) = resync(&mut fx);
    for m in [&mut fx.alice, &mut fx.carol, &mut fx.bob] {
        refuse_commit(m, &msg, &NoPsks, CommitError::InvalidSuccessor, "LEAF-SUCCESSOR");
    }
    fx.usable();
    let mut fx = fixture_with(GroupConfig { identity: &ANY_SUCCESSOR, ..GroupConfig::default() });
    let (mut bob2, msg) = resync(&mut fx);
    fx.alice.receive_commit(&msg);
    fx.carol.receive_commit(&msg);
    assert_eq!(bob2.snapshot().authenticator, fx.alice.snapshot().authenticator);
}

// ---------------------------------------------------------------------------
// GroupContext extensions (§13.4): every member supports each of them.
// ---------------------------------------------------------------------------

/// §13.4: "A client adding a new member to a group MUST verify that the
/// LeafNode for the new member is compatible with the group's extensions.
/// The capabilities field MUST indicate support for each extension in the
/// GroupContext." The group uses extension `EXT_X`; Dave's KeyPackage does
/// not list it. Alice's own Commit refuses the Add, and so do Bob and Carol
/// in a Commit crafted with it. Before the check both accepted it.
#[test]
fn leaf_caps_add_lacks_group_context_extension() {
    let mut fx = fixture();
    let ext = extension(EXT_X, b"x");
    let (commit, _) = fx.alice.commit(&[gce(&ext)], false);
    fx.bob.receive_commit(&commit);
    fx.carol.receive_commit(&commit);
    fx.agree();
    assert_eq!(fx.alice.group.extensions().find(EXT_X), Some(&b"x"[..]));
    let mut dave = Member::new("dave", 4);
    let params = KeyPackageParams {
        suite: SUITE,
        credential: Credential::Basic { identity: b"dave" },
        lifetime: LIFETIME,
        leaf_extensions: Extensions::default(),
        extensions: Extensions::default(),
        supported_extensions: U16List::default(),
        supported_proposals: U16List::default(),
    };
    let mut out = vec![0u8; 2048];
    let (kp, _) = KeyPackage::generate(&params, &dave.signer, &mut dave.rng, &mut out).unwrap();
    let kp = kp.to_vec();
    let want = CommitError::UnsupportedCapabilities;
    refuse_create(&mut fx.alice, &[add(&kp)], false, &NoPsks, want);
    let msg = craft_commit(&mut fx.alice, &by_value(&[add(&kp)]), None);
    refuse_commit(&mut fx.bob, &msg, &NoPsks, want, "LEAF-CAPS");
    refuse_commit(&mut fx.carol, &msg, &NoPsks, want, "LEAF-CAPS");
    // Dave's KeyPackage listing it is added.
    let mut dave = Member::new("dave", 4);
    let (kp, _) = dave.key_package();
    valid_commit_then_usable(&mut fx, &[add(&kp)], &NoPsks);
}

/// §13.4: "A client joining a group MUST verify that it supports every
/// extension in the GroupContext for the group. Otherwise, it MUST treat
/// the enclosing GroupInfo message as invalid and not join the group."
/// Dave's Welcome whose (signed) GroupContext has an extension his leaf
/// does not list; an external join of Eve, whose leaf does not list the
/// group's `EXT_X`. Before the check both joins went through.
#[test]
fn join_group_context_extension_we_do_not_support() {
    let mut fx = fixture();
    let (mut dave, kp, keys, welcome) = with_dave(&mut fx, true);
    let unknown = extension(0xff01, b"y");
    let w = edited_welcome(&fx, &welcome, &kp, &keys, |f| f.group_extensions = unknown.clone());
    refuse_join(&mut dave, &w, &kp, &keys, None, JoinError::UnsupportedGroupExtensions);
    dave_joins(&mut fx, &mut dave, &welcome, &kp, &keys, None);
    // External: the group now uses EXT_X, which Eve's leaf does not list.
    let ext = extension(EXT_X, b"x");
    let (commit, _) = fx.alice.commit(&[gce(&ext)], false);
    fx.bob.receive_commit(&commit);
    fx.carol.receive_commit(&commit);
    dave.receive_commit(&commit);
    let gi = published_group_info(&mut fx.alice);
    let mut eve = Member::new("eve", 5);
    let signer = eve.signer.clone();
    let lacking = Capabilities { extensions: U16List::default(), ..caps() };
    let mut out = vec![0u8; 128 * 1024];
    for (template, want) in [
        (LeafTemplate { capabilities: lacking, ..eve.template() }, Some(JoinError::UnsupportedGroupExtensions)),
        (eve.template(), None),
    ] {
        let before = eve.snapshot();
        let got = eve.group.join_external(
            &gi,
            None,
            &template,
            &signer,
            None,
            &[],
            &NoPsks,
            GroupConfig::default(),
            &mut TestRng(3),
            &Sequential,
            &mut out,
        );
        match want {
            Some(want) => {
                assert_eq!(got.err(), Some(want));
                assert_eq!(eve.snapshot(), before, "a failed external join changed the slot");
            }
            None => {
                let join = got.unwrap().to_vec();
                for m in [&mut fx.alice, &mut fx.bob, &mut fx.carol, &mut dave] {
                    m.receive_commit(&join);
                }
            }
        }
    }
    fx.agree();
    assert_eq!(eve.snapshot().authenticator, fx.alice.snapshot().authenticator);
}

// ---------------------------------------------------------------------------
// A new member's Add of itself (§12.1.8.2): anyone can send one.
// ---------------------------------------------------------------------------

/// `joiner`'s Add proposal of itself (sender `new_member_proposal`) to the
/// group in `m`'s epoch; its KeyPackage and keys.
fn self_add(m: &mut Member, joiner: &mut Member) -> (Vec<u8>, KeyPackagePrivateKeys, Vec<u8>) {
    let (kp, keys) = joiner.key_package();
    let msg = new_member_add(m, &joiner.signer, &kp);
    (kp, keys, msg)
}

/// An Add of KeyPackage `kp` sent by a new member (sender
/// `new_member_proposal`, signed by `signer`) to the group in `m`'s epoch.
fn new_member_add(m: &mut Member, signer: &SignaturePrivateKey, kp: &[u8]) -> Vec<u8> {
    let gc_bytes = m.context();
    let gc = EncodedGroupContext::decode(&gc_bytes).unwrap();
    let content = FramedContent {
        group_id: GROUP_ID,
        epoch: m.group.epoch(),
        sender: Sender::NewMemberProposal,
        authenticated_data: b"",
        content: Content::Proposal(add(kp)),
    };
    let mut out = vec![0u8; 8192];
    public_message::sign(&gc, signer, &content, &mut out).unwrap().finish(None, None).unwrap().to_vec()
}

/// Admits a new member's Add of itself from "dave" only.
struct DaveInvited;

impl IdentityProvider for DaveInvited {
    fn validate(&self, _: &[u8], _: CredentialUse, _: &MemberIdentity<'_>) -> bool {
        true
    }
    fn valid_successor(&self, old: &MemberIdentity<'_>, new: &MemberIdentity<'_>) -> bool {
        old == new
    }
    fn authorize_new_member_add(&self, _: &[u8], joiner: &MemberIdentity<'_>) -> bool {
        joiner.credential == Credential::Basic { identity: b"dave" }
    }
}

static DAVE_INVITED: DaveInvited = DaveInvited;

/// Dave and Eve each send an Add of themselves (§12.1.8.2: "existing
/// members of the group can independently verify that an Add proposal
/// sent by the new joiner itself ... is authorized"). By default a Commit
/// of pending proposals leaves both out; with a policy that admits Dave,
/// Dave's is committed and he joins, Eve's stays out. Before the check,
/// both were committed.
#[test]
fn prp_sender_new_member_add_committed_only_if_authorized() {
    for (config, added) in [
        (GroupConfig::default(), 0),
        (GroupConfig { identity: &DAVE_INVITED, ..GroupConfig::default() }, 1),
    ] {
        let mut fx = fixture_with(config);
        let (mut dave, mut eve) = (Member::new("dave", 4), Member::new("eve", 5));
        let (kp, keys, dave_add) = self_add(&mut fx.alice, &mut dave);
        let (_, _, eve_add) = self_add(&mut fx.alice, &mut eve);
        for msg in [&dave_add, &eve_add] {
            for m in [&mut fx.alice, &mut fx.bob, &mut fx.carol] {
                m.receive_proposal(msg);
            }
        }
        let (commit, welcome) = fx.alice.try_commit(&[], true, true, WireFormatPolicy::Public, &NoPsks).unwrap();
        fx.alice.group.merge_staged_commit_in_memory().unwrap();
        let mut m = commit.clone();
        match fx.bob.group.process_message_in_memory(&mut m, &NoPsks, NOW) {
            Ok(Received::Commit(s)) => assert_eq!(s.adds, added, "{config:?}"),
            other => panic!("bob: {other:?}"),
        }
        fx.bob.group.merge_staged_commit_in_memory().unwrap();
        fx.carol.receive_commit(&commit);
        fx.agree();
        assert_eq!(welcome.is_some(), added == 1);
        if let Some(welcome) = welcome {
            dave.join_with(&welcome, &kp, &keys, config);
            assert_eq!(dave.snapshot().authenticator, fx.alice.snapshot().authenticator);
        }
        fx.usable();
    }
}

// ---------------------------------------------------------------------------
// Unusable KEM public keys (RFC 9180 §7.1.4, RFC 7748 §6). A seal to an
// X25519 key of small order always fails (its DH output is all zero), so
// such a key must not come in: once in, every Welcome or UpdatePath sealed
// to it fails (§12.4, §7.6), whoever commits.
// ---------------------------------------------------------------------------

/// X25519 public keys of small order: u = 0; u = 1 with bit 255 set (which
/// RFC 7748 §5 ignores); p = 2^255 - 19, which is u = 0 above p; a point of
/// order 8.
fn low_order_keys() -> Vec<Vec<u8>> {
    let mut one_high = [0u8; 32];
    one_high[0] = 1;
    one_high[31] = 0x80;
    let mut p = [0xffu8; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    let order_8 = hex::decode("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800").unwrap();
    vec![vec![0u8; 32], one_high.to_vec(), p.to_vec(), order_8]
}

/// A KeyPackage whose `init_key` is of small order (§10.1, §5.1.1: an
/// HPKEPublicKey of the suite) is refused: its Add by value, at creation
/// and on receipt (`PRP-ADD-KP`), and as a pending proposal (a member's, or
/// a new member's Add of itself the application admits) it is left out of
/// our Commit (§12.4: "all valid proposals"), which goes through. Before
/// the check the KeyPackage validated, was chosen for every Commit of the
/// pending proposals, and each failed with `Welcome(InvalidInitKey)`: no
/// member could commit with the default options for the rest of the
/// epoch, and anyone can send a new member's Add.
#[test]
fn prp_add_kp_low_order_init_key_refused_and_left_out() {
    let mut fx = fixture_with(GroupConfig { identity: &DAVE_INVITED, ..GroupConfig::default() });
    let mut dave = Member::new("dave", 4);
    let (valid, _) = dave.key_package();
    let view = KeyPackage::decode_exact(&valid).unwrap();
    let base = view.tbs.leaf_node.fields;
    for key in low_order_keys() {
        let kp = kp_with(&dave.signer, &base, None, 1, &key, Extensions::default());
        assert_eq!(
            KeyPackage::decode_exact(&kp).unwrap().validate(SUITE, NOW, u64::MAX),
            Err(KeyPackageError::InvalidKey),
            "{key:02x?}"
        );
    }
    let kp = kp_with(&dave.signer, &base, None, 1, &[0u8; 32], Extensions::default());
    let want = CommitError::InvalidKeyPackage(KeyPackageError::InvalidKey);
    refuse_create(&mut fx.alice, &[add(&kp)], false, &NoPsks, want);
    let msg = craft_commit(&mut fx.alice, &by_value(&[add(&kp)]), None);
    refuse_commit(&mut fx.bob, &msg, &NoPsks, want, "PRP-ADD-KP");
    // Pending: Bob's Add of it, and Dave's Add of himself.
    let proposal = fx.bob.propose(&add(&kp));
    fx.alice.receive_proposal(&proposal);
    fx.carol.receive_proposal(&proposal);
    let self_add = new_member_add(&mut fx.alice, &dave.signer, &kp);
    for m in [&mut fx.alice, &mut fx.bob, &mut fx.carol] {
        m.receive_proposal(&self_add);
    }
    assert_eq!(commit_pending(&mut fx, &[]).adds, 0);
    fx.usable();
}

/// The same for the KeyPackage leaf's `encryption_key` (§7.3, §10.1). An
/// Add needs no path, so before the check such an Add was accepted by every
/// member, and from then on every UpdatePath whose copath resolution holds
/// that leaf failed to seal (`InvalidPath(Crypto(InvalidSharedSecret))`)
/// until the leaf was removed.
#[test]
fn prp_add_kp_low_order_encryption_key_refused_and_left_out() {
    let mut fx = fixture();
    let mut dave = Member::new("dave", 4);
    let (valid, _) = dave.key_package();
    let view = KeyPackage::decode_exact(&valid).unwrap();
    let want = CommitError::InvalidKeyPackage(KeyPackageError::InvalidKey);
    for key in low_order_keys() {
        let fields = LeafNodeFields { encryption_key: &key, ..view.tbs.leaf_node.fields };
        let kp = kp_with(&dave.signer, &fields, None, 1, view.tbs.init_key, Extensions::default());
        assert_eq!(
            KeyPackage::decode_exact(&kp).unwrap().validate(SUITE, NOW, u64::MAX),
            Err(KeyPackageError::InvalidKey),
            "{key:02x?}"
        );
        refuse_create(&mut fx.alice, &[add(&kp)], false, &NoPsks, want);
        let msg = craft_commit(&mut fx.alice, &by_value(&[add(&kp)]), None);
        refuse_commit(&mut fx.bob, &msg, &NoPsks, want, "PRP-ADD-KP");
        let proposal = fx.bob.propose(&add(&kp));
        fx.alice.receive_proposal(&proposal);
        fx.carol.receive_proposal(&proposal);
        assert_eq!(commit_pending(&mut fx, &[]).adds, 0);
    }
    // Every member still commits with a path.
    fx.usable();
    let (commit, _) = fx.bob.commit(&[], true);
    fx.alice.receive_commit(&commit);
    fx.carol.receive_commit(&commit);
    fx.agree();
}

/// An Update whose leaf has an encryption key of small order (§12.1.2,
/// §7.3): refused in a Commit (`TreeError::InvalidKey`, as the tree
/// refuses a key of the wrong length), and left out of our Commit of the
/// pending proposals. Before the check, Carol staged the Update (and
/// refused the Commit only for its missing path), and Alice's Commit chose
/// it and failed to seal her path to Bob's new leaf.
#[test]
fn tree_low_order_update_leaf_key_refused_and_left_out() {
    let mut fx = fixture();
    let signer = fx.bob.signer.clone();
    for key in low_order_keys() {
        let leaf = update_leaf(&mut fx.bob, 1, &key, &signer);
        let update = Proposal::Update(Update { leaf_node: LeafNode::decode_exact(&leaf).unwrap() });
        let proposal = fx.bob.propose(&update);
        let reference = fx.alice.receive_proposal(&proposal);
        fx.carol.receive_proposal(&proposal);
        let msg = craft_commit(&mut fx.alice, &[ProposalOrRef::Reference(&reference)], None);
        refuse_commit(&mut fx.carol, &msg, &NoPsks, CommitError::Tree(TreeError::InvalidKey), "TREE");
        assert_eq!(commit_pending(&mut fx, &[]).updates, 0);
    }
    fx.usable();
}

/// An UpdatePath whose new leaf, or one of whose nodes, has an encryption
/// key of small order (§7.5, §7.6, §12.4.2): refused
/// (`InvalidPath(Tree(InvalidKey))`). The leaf is re-signed by Alice, so
/// only its key is wrong. Before the check the node's key was taken (and
/// the path refused only for its parent hash), and the leaf's too (the
/// path then refused for its ciphertexts, sealed to another tree hash). A
/// committer who computed the hashes over such a key would have had it
/// accepted (the leaf's by every member, a node's by those that do not
/// derive it, §7.5), and every later path over it would have failed to
/// seal.
#[test]
fn com_path_low_order_keys_refused() {
    let mut fx = fixture();
    let (commit, _) = fx.alice.try_commit(&[], false, true, WireFormatPolicy::Public, &NoPsks).unwrap();
    let path_bytes = path_of(&commit);
    let path = UpdatePath::decode_exact(&path_bytes).unwrap();
    let nodes: Vec<UpdatePathNode<'_>> = path.nodes.iter().collect();
    let want = CommitError::InvalidPath(TreeKemError::Tree(TreeError::InvalidKey));
    for key in low_order_keys() {
        let fields = LeafNodeFields { encryption_key: &key, ..path.leaf_node.fields };
        let ctx = LeafNodeContext { group_id: GROUP_ID, leaf_index: 0 };
        let mut buf = vec![0u8; 2048];
        let leaf = LeafNode::sign_into(SUITE, &fields, Some(ctx), &fx.alice.signer, &mut buf).unwrap().to_vec();
        let with_leaf = UpdatePath { leaf_node: LeafNode::decode_exact(&leaf).unwrap(), nodes: path.nodes };
        let msg = craft_commit(&mut fx.alice, &[], Some(with_leaf));
        refuse_commit(&mut fx.bob, &msg, &NoPsks, want, "COM-PATH");
        for at in 0..nodes.len() {
            let mut changed = nodes.clone();
            changed[at] = UpdatePathNode { encryption_key: &key, ..changed[at] };
            let body = encode_nodes(&changed);
            let with_node = UpdatePath { leaf_node: path.leaf_node, nodes: ListView::from_body(&body).unwrap() };
            let msg = craft_commit(&mut fx.alice, &[], Some(with_node));
            refuse_commit(&mut fx.bob, &msg, &NoPsks, want, "COM-PATH");
            refuse_commit(&mut fx.carol, &msg, &NoPsks, want, "COM-PATH");
        }
    }
    fx.alice.group.merge_staged_commit_in_memory().unwrap();
    fx.bob.receive_commit(&commit);
    fx.carol.receive_commit(&commit);
    fx.agree();
    fx.usable();
}

/// A ratchet tree given to a joiner with a parent's or a leaf's encryption
/// key of small order (§12.4.3.1, §7.3): the import refuses it
/// (`JoinError::Tree(InvalidKey)`), before any signature or hash is
/// checked. Before the check the tree imported and was refused only for
/// its tree hash; a tree that matched (its keys put there by a committer
/// or a joiner before us) would have been joined, and our paths over it
/// would have failed to seal.
#[test]
fn join_tree_low_order_keys_refused() {
    let mut fx = fixture();
    let (mut dave, kp, keys, welcome) = with_dave(&mut fx, false);
    let tree = fx.alice.tree_bytes();
    let body = Reader::new(&tree).read_opaque().unwrap().to_vec();
    let slices = fx.alice.group.tree_slices_for_testing();
    let parents = [NodeIndex(3), NodeIndex(1)].map(|n| slices.encryption_key(n).unwrap().to_vec());
    let leaves = [NodeIndex(2), NodeIndex(4)].map(|n| slices.encryption_key(n).unwrap().to_vec());
    for key in parents.iter().chain(&leaves) {
        for low in low_order_keys() {
            let bad = splice_tree(&tree, find(&body, key), 32, &low);
            refuse_join(&mut dave, &welcome, &kp, &keys, Some(&bad), JoinError::Tree(TreeError::InvalidKey));
        }
    }
    dave_joins(&mut fx, &mut dave, &welcome, &kp, &keys, Some(&tree));
}

/// A GroupInfo whose `external_pub` is of small order (§12.4.3.2; RFC 9180
/// §7.1.4), signed by a member: an external join refuses it
/// (`JoinError::Crypto(InvalidKey)`) before importing the tree. Before the
/// check it failed only at the seal, after the tree's import and checks.
#[test]
fn join_external_low_order_external_pub_refused() {
    let mut fx = fixture();
    let gi = published_group_info(&mut fx.alice);
    let mut eve = Member::new("eve", 5);
    let template = eve.template();
    let signer = eve.signer.clone();
    let join = |eve: &mut Member, gi: &[u8]| {
        let mut out = vec![0u8; 128 * 1024];
        eve.group
            .join_external(
                gi,
                None,
                &template,
                &signer,
                None,
                &[],
                &NoPsks,
                GroupConfig::default(),
                &mut TestRng(3),
                &Sequential,
                &mut out,
            )
            .map(<[u8]>::to_vec)
    };
    for key in low_order_keys() {
        let bad = {
            let MlsMessageBody::GroupInfo(g) = MlsMessage::decode_exact(&gi).unwrap().body else { panic!() };
            let tree = extension(EXT_RATCHET_TREE, g.tbs.extensions.find(EXT_RATCHET_TREE).unwrap());
            let external_pub = extension(EXT_EXTERNAL_PUB, &[[32u8].as_slice(), &key].concat());
            let exts = [tree, external_pub].concat();
            let tbs = GroupInfoTbs { extensions: Extensions::from_body(&exts).unwrap(), ..g.tbs };
            let mut out = vec![0u8; 64 * 1024];
            let signed = GroupInfo::sign_into(SUITE, &tbs, &fx.alice.signer, &mut out).unwrap();
            [[0u8, 1, 0, 4].as_slice(), signed].concat()
        };
        let before = eve.snapshot();
        assert_eq!(join(&mut eve, &bad).err(), Some(JoinError::Crypto(CryptoError::InvalidKey)), "{key:02x?}");
        assert_eq!(eve.snapshot(), before, "a failed external join changed the slot");
    }
    let commit = join(&mut eve, &gi).unwrap();
    fx.alice.receive_commit(&commit);
    fx.bob.receive_commit(&commit);
    fx.carol.receive_commit(&commit);
    fx.agree();
    assert_eq!(eve.snapshot().authenticator, fx.alice.snapshot().authenticator);
}
