//! An OpenMLS member behind [`Party`]: `OpenMlsRustCrypto` (RustCrypto and
//! in-memory storage), a basic credential, a signature key of its suite.
//!
//! OpenMLS's defaults that matter here: its Welcomes carry no ratchet tree
//! unless `use_ratchet_tree_extension` is set (the tree then goes out of
//! band); handshake messages go out as PublicMessage with
//! `MIXED_PLAINTEXT_WIRE_FORMAT_POLICY` and as PrivateMessage with
//! `MIXED_CIPHERTEXT_WIRE_FORMAT_POLICY`, and both accept either. Its
//! capabilities carry GREASE values, and its PrivateMessages are padded to
//! multiples of `PADDING`.

use mls_interop::{Event, Party};
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls::schedule::{ExternalPsk, PreSharedKeyId, Psk};
use openmls::treesync::RatchetTreeIn;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;

/// The OpenMLS cipher suite with code point `suite`.
pub fn ciphersuite(suite: u16) -> Ciphersuite {
    Ciphersuite::try_from(suite).expect("a suite OpenMLS knows")
}

/// A fresh provider (storage) holding a new signature key of `scheme`, and
/// the basic credential `name` with that key.
fn identity(name: &str, scheme: SignatureScheme) -> (OpenMlsRustCrypto, SignatureKeyPair, CredentialWithKey) {
    let provider = OpenMlsRustCrypto::default();
    let signer = SignatureKeyPair::new(scheme).expect("signature key");
    signer.store(provider.storage()).expect("store signature key");
    let credential = CredentialWithKey {
        credential: BasicCredential::new(name.as_bytes().to_vec()).into(),
        signature_key: signer.to_public_vec().into(),
    };
    (provider, signer, credential)
}

/// A member running OpenMLS.
pub struct OpenMlsParty {
    name: String,
    suite: Ciphersuite,
    provider: OpenMlsRustCrypto,
    signer: SignatureKeyPair,
    credential: CredentialWithKey,
    group: Option<MlsGroup>,
    tree_in_welcome: bool,
    private_handshake: bool,
}

impl OpenMlsParty {
    /// A member named `name` for `suite`.
    pub fn new(name: &str, suite: u16) -> Self {
        let suite = ciphersuite(suite);
        let (provider, signer, credential) = identity(name, suite.signature_algorithm());
        Self {
            name: name.to_string(),
            suite,
            provider,
            signer,
            credential,
            group: None,
            tree_in_welcome: false,
            private_handshake: false,
        }
    }

    fn policy(&self) -> WireFormatPolicy {
        if self.private_handshake { MIXED_CIPHERTEXT_WIRE_FORMAT_POLICY } else { MIXED_PLAINTEXT_WIRE_FORMAT_POLICY }
    }

    fn join_config(&self) -> MlsGroupJoinConfig {
        MlsGroupJoinConfig::builder()
            .wire_format_policy(self.policy())
            .use_ratchet_tree_extension(self.tree_in_welcome)
            .padding_size(PADDING)
            // Keep one past epoch for late application messages (default: none).
            .max_past_epochs(1)
            // Room for the out-of-order test (two messages per sender, read newest first).
            .sender_ratchet_configuration(SenderRatchetConfiguration::new(20, 1000))
            .build()
    }

    /// OpenMLS's default capabilities plus GREASE values (RFC 9420 §13.5).
    fn capabilities(&self) -> Capabilities {
        Capabilities::builder().with_grease(self.provider.rand()).build()
    }

    fn group(&self) -> &MlsGroup {
        self.group.as_ref().unwrap_or_else(|| panic!("{}: no group", self.name))
    }

    fn apply_config(&mut self) {
        let cfg = self.join_config();
        if let Some(g) = self.group.as_mut() {
            g.set_configuration(self.provider.storage(), &cfg).expect("set configuration");
        }
    }

    fn merge_own(&mut self) {
        let Self { group, provider, .. } = self;
        group.as_mut().expect("group").merge_pending_commit(provider).expect("merge pending commit");
    }

    /// Whether OpenMLS accepts the KeyPackage in `msg` (an `MLSMessage`).
    pub fn check_key_package(&self, msg: &[u8]) -> Result<(), String> {
        match MlsMessageIn::tls_deserialize_exact(msg).map_err(|e| format!("{e:?}"))?.extract() {
            MlsMessageBodyIn::KeyPackage(kp) => {
                kp.validate(self.provider.crypto(), ProtocolVersion::Mls10).map(|_| ()).map_err(|e| format!("{e:?}"))
            }
            _ => Err("not a KeyPackage".into()),
        }
    }

    /// Processes the `MLSMessage` `msg` as a trial (tests/differential.rs):
    /// decodes it and runs `process_message` (a Commit is staged, never
    /// merged; a proposal is not stored), then restores the provider's
    /// storage and reloads the group from it, so that nothing the trial did
    /// (e.g. a ratchet generation consumed) stays. `Err` says why OpenMLS
    /// rejected it.
    pub fn trial(&mut self, msg: &[u8]) -> Result<(), String> {
        let snapshot = self.provider.storage().values.read().expect("storage lock").clone();
        let group_id = self.group().group_id().clone();
        let result = match MlsMessageIn::tls_deserialize_exact(msg) {
            Err(e) => Err(format!("decode: {e:?}")),
            Ok(m) => match m.try_into_protocol_message() {
                Err(e) => Err(format!("not a group message: {e:?}")),
                Ok(pm) => {
                    let Self { group, provider, .. } = self;
                    group.as_mut().expect("group").process_message(provider, pm).map(|_| ()).map_err(|e| format!("{e:?}"))
                }
            },
        };
        *self.provider.storage().values.write().expect("storage lock") = snapshot;
        self.group = Some(MlsGroup::load(self.provider.storage(), &group_id).expect("load group").expect("group stored"));
        result
    }

    /// Whether OpenMLS joins by external Commit from the GroupInfo in `msg`
    /// (an `MLSMessage` with the ratchet tree): the group and Commit are
    /// built and finalized in this party's storage (use a fresh party).
    pub fn trial_group_info(&self, msg: &[u8]) -> Result<(), String> {
        let gi = match MlsMessageIn::tls_deserialize_exact(msg).map_err(|e| format!("decode: {e:?}"))?.extract() {
            MlsMessageBodyIn::GroupInfo(gi) => gi,
            _ => return Err("not a GroupInfo".into()),
        };
        let leaf = LeafNodeParameters::builder().with_capabilities(self.capabilities()).build();
        MlsGroup::external_commit_builder()
            .with_config(self.join_config())
            .build_group(&self.provider, gi, self.credential.clone())
            .map_err(|e| format!("{e:?}"))?
            .leaf_node_parameters(leaf)
            .load_psks(self.provider.storage())
            .map_err(|e| format!("{e:?}"))?
            .build(self.provider.rand(), self.provider.crypto(), &self.signer, |_| true)
            .map_err(|e| format!("{e:?}"))?
            .finalize(&self.provider)
            .map(|_| ())
            .map_err(|e| format!("{e:?}"))
    }

    /// Whether OpenMLS joins from the `MLSMessage(Welcome)` `welcome` (the
    /// tree in it) with the KeyPackage this party generated; the storage is
    /// restored afterwards, so the KeyPackage stays usable.
    pub fn trial_join(&mut self, welcome: &[u8]) -> Result<(), String> {
        let snapshot = self.provider.storage().values.read().expect("storage lock").clone();
        let result = match MlsMessageIn::tls_deserialize_exact(welcome).map(|m| m.extract()) {
            Err(e) => Err(format!("decode: {e:?}")),
            Ok(MlsMessageBodyIn::Welcome(w)) => {
                let cfg = self.join_config();
                StagedWelcome::new_from_welcome(&self.provider, &cfg, w, None)
                    .map_err(|e| format!("{e:?}"))
                    .and_then(|staged| staged.into_group(&self.provider).map(|_| ()).map_err(|e| format!("{e:?}")))
            }
            Ok(_) => Err("not a Welcome".into()),
        };
        *self.provider.storage().values.write().expect("storage lock") = snapshot;
        result
    }

    fn key_package_in(&self, msg: &[u8]) -> KeyPackage {
        match MlsMessageIn::tls_deserialize_exact(msg).expect("MLSMessage").extract() {
            MlsMessageBodyIn::KeyPackage(kp) => kp
                .validate(self.provider.crypto(), ProtocolVersion::Mls10)
                .unwrap_or_else(|e| panic!("{}: OpenMLS rejects the KeyPackage: {e:?}", self.name)),
            _ => panic!("not a KeyPackage"),
        }
    }
}

/// OpenMLS's PrivateMessage padding block.
const PADDING: usize = 32;

fn bytes(m: &MlsMessageOut) -> Vec<u8> {
    m.tls_serialize_detached().expect("serialize MLSMessage")
}

impl Party for OpenMlsParty {
    fn name(&self) -> &str {
        &self.name
    }

    fn library(&self) -> &'static str {
        "openmls"
    }

    fn create(&mut self, group_id: &[u8]) {
        let cfg = MlsGroupCreateConfig::builder()
            .ciphersuite(self.suite)
            .wire_format_policy(self.policy())
            .use_ratchet_tree_extension(self.tree_in_welcome)
            .padding_size(PADDING)
            .max_past_epochs(1)
            .capabilities(self.capabilities())
            .sender_ratchet_configuration(SenderRatchetConfiguration::new(20, 1000))
            .build();
        let g = MlsGroup::new_with_group_id(
            &self.provider,
            &self.signer,
            &cfg,
            GroupId::from_slice(group_id),
            self.credential.clone(),
        )
        .expect("OpenMLS creates the group");
        self.group = Some(g);
    }

    fn key_package(&mut self) -> Vec<u8> {
        let bundle = KeyPackage::builder()
            .leaf_node_capabilities(self.capabilities())
            .build(self.suite, &self.provider, &self.signer, self.credential.clone())
            .expect("OpenMLS KeyPackage");
        MlsMessageOut::from(bundle.key_package().clone()).tls_serialize_detached().expect("serialize")
    }

    fn join(&mut self, welcome: &[u8], ratchet_tree: Option<&[u8]>) {
        let welcome = match MlsMessageIn::tls_deserialize_exact(welcome).expect("MLSMessage").extract() {
            MlsMessageBodyIn::Welcome(w) => w,
            _ => panic!("not a Welcome"),
        };
        let tree = ratchet_tree.map(|t| RatchetTreeIn::tls_deserialize_exact(t).expect("ratchet tree"));
        let cfg = self.join_config();
        let staged = StagedWelcome::new_from_welcome(&self.provider, &cfg, welcome, tree)
            .unwrap_or_else(|e| panic!("{}: OpenMLS rejects the Welcome: {e:?}", self.name));
        let g = staged.into_group(&self.provider).unwrap_or_else(|e| panic!("{}: OpenMLS join: {e:?}", self.name));
        self.group = Some(g);
    }

    fn ratchet_tree(&mut self) -> Vec<u8> {
        self.group().export_ratchet_tree().tls_serialize_detached().expect("serialize tree")
    }

    fn set_tree_in_welcome(&mut self, on: bool) {
        self.tree_in_welcome = on;
        self.apply_config();
    }

    fn tree_in_welcome(&self) -> bool {
        self.tree_in_welcome
    }

    fn set_private_handshake(&mut self, on: bool) {
        self.private_handshake = on;
        self.apply_config();
    }

    fn add(&mut self, key_packages: &[Vec<u8>], path: bool) -> (Vec<u8>, Vec<u8>) {
        let kps: Vec<KeyPackage> = key_packages.iter().map(|k| self.key_package_in(k)).collect();
        let Self { group, provider, signer, .. } = self;
        let g = group.as_mut().expect("group");
        let (commit, welcome, _) = if path {
            g.add_members(provider, signer, &kps)
        } else {
            g.add_members_without_update(provider, signer, &kps)
        }
        .unwrap_or_else(|e| panic!("OpenMLS add: {e:?}"));
        let out = (bytes(&commit), bytes(&welcome));
        self.merge_own();
        out
    }

    fn remove(&mut self, leaves: &[u32]) -> Vec<u8> {
        let leaves: Vec<LeafNodeIndex> = leaves.iter().map(|l| LeafNodeIndex::new(*l)).collect();
        let Self { group, provider, signer, .. } = self;
        let (commit, _, _) =
            group.as_mut().expect("group").remove_members(provider, signer, &leaves).unwrap_or_else(|e| panic!("OpenMLS remove: {e:?}"));
        let out = bytes(&commit);
        self.merge_own();
        out
    }

    fn update(&mut self) -> Vec<u8> {
        let Self { group, provider, signer, .. } = self;
        let bundle = group
            .as_mut()
            .expect("group")
            .self_update(provider, signer, LeafNodeParameters::default())
            .unwrap_or_else(|e| panic!("OpenMLS self_update: {e:?}"));
        let out = bytes(bundle.commit());
        self.merge_own();
        out
    }

    fn commit_pending(&mut self) -> (Vec<u8>, Option<Vec<u8>>) {
        let Self { group, provider, signer, .. } = self;
        let (commit, welcome, _) = group
            .as_mut()
            .expect("group")
            .commit_to_pending_proposals(provider, signer)
            .unwrap_or_else(|e| panic!("OpenMLS commit_to_pending_proposals: {e:?}"));
        let out = (bytes(&commit), welcome.as_ref().map(bytes));
        self.merge_own();
        out
    }

    fn propose_add(&mut self, key_package: &[u8]) -> Vec<u8> {
        let kp = self.key_package_in(key_package);
        let Self { group, provider, signer, .. } = self;
        let (m, _) = group.as_mut().expect("group").propose_add_member(provider, signer, &kp).expect("OpenMLS propose add");
        bytes(&m)
    }

    fn propose_remove(&mut self, leaf: u32) -> Vec<u8> {
        let Self { group, provider, signer, .. } = self;
        let (m, _) = group
            .as_mut()
            .expect("group")
            .propose_remove_member(provider, signer, LeafNodeIndex::new(leaf))
            .expect("OpenMLS propose remove");
        bytes(&m)
    }

    fn add_and_remove(&mut self, key_packages: &[Vec<u8>], leaves: &[u32]) -> (Vec<u8>, Option<Vec<u8>>) {
        let kps: Vec<KeyPackage> = key_packages.iter().map(|k| self.key_package_in(k)).collect();
        let leaves: Vec<LeafNodeIndex> = leaves.iter().map(|l| LeafNodeIndex::new(*l)).collect();
        let Self { group, provider, signer, .. } = self;
        let bundle = group
            .as_mut()
            .expect("group")
            .commit_builder()
            .propose_adds(kps)
            .propose_removals(leaves)
            .consume_proposal_store(true)
            .load_psks(provider.storage())
            .expect("load PSKs")
            .build(provider.rand(), provider.crypto(), signer, |_| true)
            .unwrap_or_else(|e| panic!("OpenMLS commit: {e:?}"))
            .stage_commit(provider)
            .expect("stage commit");
        let out = (bytes(bundle.commit()), bundle.to_welcome_msg().as_ref().map(bytes));
        self.merge_own();
        out
    }

    fn register_external_psk(&mut self, id: &[u8], secret: &[u8]) {
        // Stored by its `Psk` (the nonce is not part of the key).
        PreSharedKeyId::external(id.to_vec(), vec![0; self.suite.hash_length()])
            .store(&self.provider, secret)
            .expect("store PSK");
    }

    fn propose_external_psk(&mut self, id: &[u8]) -> Vec<u8> {
        let psk = PreSharedKeyId::new(self.suite, self.provider.rand(), Psk::External(ExternalPsk::new(id.to_vec())))
            .expect("PSK id");
        let Self { group, provider, signer, .. } = self;
        let (m, _) = group.as_mut().expect("group").propose_pre_shared_key(provider, signer, psk).expect("OpenMLS propose PSK");
        bytes(&m)
    }

    fn commit_external_psk(&mut self, id: &[u8]) -> (Vec<u8>, Option<Vec<u8>>) {
        let psk = PreSharedKeyId::new(self.suite, self.provider.rand(), Psk::External(ExternalPsk::new(id.to_vec())))
            .expect("PSK id");
        let Self { group, provider, signer, .. } = self;
        let bundle = group
            .as_mut()
            .expect("group")
            .commit_builder()
            .add_proposal(Proposal::PreSharedKey(Box::new(PreSharedKeyProposal::new(psk))))
            .consume_proposal_store(true)
            .load_psks(provider.storage())
            .expect("load PSKs")
            .build(provider.rand(), provider.crypto(), signer, |_| true)
            .unwrap_or_else(|e| panic!("OpenMLS commit: {e:?}"))
            .stage_commit(provider)
            .expect("stage commit");
        let out = (bytes(bundle.commit()), bundle.to_welcome_msg().as_ref().map(bytes));
        self.merge_own();
        out
    }

    fn commit_group_context_extensions(&mut self, extensions: &[u8]) -> Vec<u8> {
        let extensions = Extensions::<GroupContext>::tls_deserialize_exact(extensions).expect("extension list");
        let Self { group, provider, signer, .. } = self;
        let bundle = group
            .as_mut()
            .expect("group")
            .commit_builder()
            .propose_group_context_extensions(extensions)
            .expect("GroupContextExtensions")
            .consume_proposal_store(true)
            .load_psks(provider.storage())
            .expect("load PSKs")
            .build(provider.rand(), provider.crypto(), signer, |_| true)
            .unwrap_or_else(|e| panic!("OpenMLS commit: {e:?}"))
            .stage_commit(provider)
            .expect("stage commit");
        let out = bytes(bundle.commit());
        self.merge_own();
        out
    }

    fn propose_update(&mut self) -> Option<Vec<u8>> {
        let Self { group, provider, signer, .. } = self;
        let (m, _) = group
            .as_mut()
            .expect("group")
            .propose_self_update(provider, signer, LeafNodeParameters::default())
            .expect("OpenMLS propose update");
        Some(bytes(&m))
    }

    fn send(&mut self, data: &[u8], aad: &[u8]) -> Vec<u8> {
        let Self { group, provider, signer, .. } = self;
        let g = group.as_mut().expect("group");
        g.set_aad(aad.to_vec());
        let m = g.create_message(provider, signer, data).expect("OpenMLS create_message");
        bytes(&m)
    }

    fn process(&mut self, msg: &[u8]) -> Event {
        let name = self.name.clone();
        let Self { group, provider, .. } = self;
        let g = group.as_mut().expect("group");
        let pm = MlsMessageIn::tls_deserialize_exact(msg)
            .expect("MLSMessage")
            .try_into_protocol_message()
            .expect("a PublicMessage or PrivateMessage");
        let processed = g
            .process_message(provider, pm)
            .unwrap_or_else(|e| panic!("{name}: OpenMLS rejects the message (epoch {}): {e:?}", g.epoch().as_u64()));
        let aad = processed.aad().to_vec();
        match processed.into_content() {
            ProcessedMessageContent::ApplicationMessage(a) => Event::Application(a.into_bytes(), aad),
            ProcessedMessageContent::ProposalMessage(p) => {
                g.store_pending_proposal(provider.storage(), *p).expect("store proposal");
                Event::Proposal
            }
            ProcessedMessageContent::StagedCommitMessage(sc) => {
                let removed_us = sc.self_removed();
                g.merge_staged_commit(provider, *sc).unwrap_or_else(|e| panic!("{name}: OpenMLS merge: {e:?}"));
                Event::Commit { removed_us }
            }
            other => panic!("{name}: unexpected {other:?}"),
        }
    }

    fn epoch(&self) -> u64 {
        self.group().epoch().as_u64()
    }

    fn epoch_authenticator(&self) -> Vec<u8> {
        self.group().epoch_authenticator().as_slice().to_vec()
    }

    fn export(&self, label: &[u8], context: &[u8], len: usize) -> Vec<u8> {
        let label = std::str::from_utf8(label).expect("OpenMLS exporter labels are strings");
        self.group().export_secret(self.provider.crypto(), label, context, len).expect("OpenMLS exporter")
    }

    fn leaf_of(&mut self, identity: &[u8]) -> Option<u32> {
        self.group().members().find(|m| m.credential.serialized_content() == identity).map(|m| m.index.u32())
    }

    fn own_leaf(&self) -> u32 {
        self.group().own_leaf_index().u32()
    }

    fn member_count(&mut self) -> usize {
        self.group().members().count()
    }

    fn group_info(&mut self, with_tree: bool) -> Vec<u8> {
        let m = self
            .group()
            .export_group_info(self.provider.crypto(), &self.signer, with_tree)
            .unwrap_or_else(|e| panic!("{}: OpenMLS export_group_info: {e:?}", self.name));
        bytes(&m)
    }

    fn join_external(&mut self, group_info: &[u8], ratchet_tree: Option<&[u8]>) -> Vec<u8> {
        let name = self.name.clone();
        let gi = match MlsMessageIn::tls_deserialize_exact(group_info).expect("MLSMessage").extract() {
            MlsMessageBodyIn::GroupInfo(gi) => gi,
            _ => panic!("not a GroupInfo"),
        };
        let mut b = MlsGroup::external_commit_builder().with_config(self.join_config());
        if let Some(t) = ratchet_tree {
            b = b.with_ratchet_tree(RatchetTreeIn::tls_deserialize_exact(t).expect("ratchet tree"));
        }
        let leaf = LeafNodeParameters::builder().with_capabilities(self.capabilities()).build();
        let (g, bundle) = b
            .build_group(&self.provider, gi, self.credential.clone())
            .unwrap_or_else(|e| panic!("{name}: OpenMLS rejects the GroupInfo: {e:?}"))
            .leaf_node_parameters(leaf)
            .load_psks(self.provider.storage())
            .expect("load PSKs")
            .build(self.provider.rand(), self.provider.crypto(), &self.signer, |_| true)
            .unwrap_or_else(|e| panic!("{name}: OpenMLS external commit: {e:?}"))
            .finalize(&self.provider)
            .unwrap_or_else(|e| panic!("{name}: OpenMLS finalize: {e:?}"));
        self.group = Some(g);
        bytes(bundle.commit())
    }
}

/// An external sender running OpenMLS (`ExternalProposal`), with its own
/// provider and a signature key of its suite's scheme.
pub struct OpenMlsExternal {
    name: String,
    provider: OpenMlsRustCrypto,
    signer: SignatureKeyPair,
}

impl OpenMlsExternal {
    /// An external sender named `name` for `suite`.
    pub fn new(name: &str, suite: u16) -> Self {
        let provider = OpenMlsRustCrypto::default();
        let signer = SignatureKeyPair::new(ciphersuite(suite).signature_algorithm()).expect("signature key");
        Self { name: name.to_string(), provider, signer }
    }

    fn group_of(group_info: &[u8]) -> (GroupId, GroupEpoch) {
        match MlsMessageIn::tls_deserialize_exact(group_info).expect("MLSMessage").extract() {
            MlsMessageBodyIn::GroupInfo(gi) => (gi.group_id().clone(), gi.epoch()),
            _ => panic!("not a GroupInfo"),
        }
    }
}

impl mls_interop::ExternalParty for OpenMlsExternal {
    fn library(&self) -> &'static str {
        "openmls"
    }

    fn external_sender(&self) -> Vec<u8> {
        ExternalSender::new(self.signer.to_public_vec().into(), BasicCredential::new(self.name.as_bytes().to_vec()).into())
            .tls_serialize_detached()
            .expect("serialize ExternalSender")
    }

    fn propose_add(&mut self, group_info: &[u8], index: u32, key_package: &[u8]) -> Vec<u8> {
        let (group_id, epoch) = Self::group_of(group_info);
        let kp = match MlsMessageIn::tls_deserialize_exact(key_package).expect("MLSMessage").extract() {
            MlsMessageBodyIn::KeyPackage(kp) => {
                kp.validate(self.provider.crypto(), ProtocolVersion::Mls10).expect("OpenMLS accepts the KeyPackage")
            }
            _ => panic!("not a KeyPackage"),
        };
        let m = ExternalProposal::new_add::<OpenMlsRustCrypto>(kp, group_id, epoch, &self.signer, SenderExtensionIndex::new(index))
            .unwrap_or_else(|e| panic!("{}: OpenMLS external Add: {e:?}", self.name));
        bytes(&m)
    }

    fn propose_remove(&mut self, group_info: &[u8], index: u32, leaf: u32) -> Vec<u8> {
        let (group_id, epoch) = Self::group_of(group_info);
        let m = ExternalProposal::new_remove::<OpenMlsRustCrypto>(
            LeafNodeIndex::new(leaf),
            group_id,
            epoch,
            &self.signer,
            SenderExtensionIndex::new(index),
        )
        .unwrap_or_else(|e| panic!("{}: OpenMLS external Remove: {e:?}", self.name));
        bytes(&m)
    }
}

// ---------------------------------------------------------------------------
// A script actor played by OpenMLS (mls_interop::scripts::Client).
// ---------------------------------------------------------------------------

use mls_interop::scripts::{
    self, Bytes, CommitOut, Failure, Library, Outcome, ProposalSpec, SentProposals, Tx, Welcomed, failed, wire,
};
use openmls::schedule::psk::{ResumptionPsk, ResumptionPskUsage};

fn unsupported<T>(reason: &str) -> Outcome<T> {
    Err(Failure::Unsupported { library: Library::OpenMls, reason: reason.into() })
}

/// OpenMLS 0.9.2 joins a Welcome only with its provider's PSK store and an
/// empty resumption-PSK store: it cannot join a group linked to another by
/// a reinit or branch PSK (`PskError::KeyNotFound`).
const NO_RESUMPTION_JOIN: &str =
    "joins Welcomes with an empty resumption-PSK store, so not a group linked by a reinit or branch PSK (PskError::KeyNotFound)";

/// OpenMLS 0.9.2 processes proposals from external senders only of three
/// types (`process_external_authenticated_content`: "TODO #151/#106").
const NO_EXTERNAL_PSK_OR_REINIT: &str = "takes proposals from external senders only of types Add, Remove and \
    GroupContextExtensions (ProcessMessageError::UnsupportedProposalType); RFC 9420 §12.1.8.1 allows PreSharedKey and ReInit too";

/// OpenMLS 0.9.2 derives, for a Commit holding PreSharedKey proposals both
/// by reference and by value, a `psk_secret` that no member derives, itself
/// included (found in `tests/openmls.rs` too; README, Interoperability).
const PSKS_BY_REFERENCE_AND_VALUE: &str = "its Commits with PreSharedKey proposals both by reference and by value \
    carry a psk_secret no member derives, OpenMLS's own included (ConfirmationTagMismatch)";

/// A signature key of one scheme and the basic credential with it.
struct Keys {
    signer: SignatureKeyPair,
    credential: CredentialWithKey,
}

/// A script actor running OpenMLS: one provider (storage, PSKs), one
/// signature key per scheme for all its leaves of that scheme, made when
/// first needed (so that a rejoin by external Commit removes its old leaf:
/// OpenMLS finds it by signature key).
pub struct OpenMlsClient {
    name: String,
    provider: OpenMlsRustCrypto,
    keys: Vec<Keys>,
    group: Option<MlsGroup>,
    encrypt: bool,
    key_packages: usize,
    sent: SentProposals,
    merged_early: Option<Bytes>,
    external_signer: Option<SignatureKeyPair>,
}

impl OpenMlsClient {
    /// A client for the actor `name`.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            provider: OpenMlsRustCrypto::default(),
            keys: Vec::new(),
            group: None,
            encrypt: false,
            key_packages: 0,
            sent: SentProposals::default(),
            merged_early: None,
            external_signer: None,
        }
    }

    fn join_config(encrypt: bool, tree_in_welcome: bool) -> MlsGroupJoinConfig {
        MlsGroupJoinConfig::builder()
            .wire_format_policy(if encrypt { MIXED_CIPHERTEXT_WIRE_FORMAT_POLICY } else { MIXED_PLAINTEXT_WIRE_FORMAT_POLICY })
            .use_ratchet_tree_extension(tree_in_welcome)
            .padding_size(PADDING)
            .max_past_epochs(1)
            .number_of_resumption_psks(16)
            .sender_ratchet_configuration(SenderRatchetConfiguration::new(20, 1000))
            .build()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::builder().with_grease(self.provider.rand()).build()
    }

    fn group(&mut self) -> Outcome<&mut MlsGroup> {
        self.group.as_mut().ok_or_else(|| Failure::Failed("no group".into()))
    }

    fn suite(&mut self) -> Outcome<Ciphersuite> {
        Ok(self.group()?.ciphersuite())
    }

    /// The index in `keys` of its key for `suite`'s scheme, made the first time.
    fn keys_for(&mut self, suite: Ciphersuite) -> Outcome<usize> {
        let scheme = suite.signature_algorithm();
        if let Some(i) = self.keys.iter().position(|k| k.signer.signature_scheme() == scheme) {
            return Ok(i);
        }
        let signer = SignatureKeyPair::new(scheme).map_err(failed("signature key"))?;
        signer.store(self.provider.storage()).map_err(failed("store signature key"))?;
        let credential = CredentialWithKey {
            credential: BasicCredential::new(self.name.as_bytes().to_vec()).into(),
            signature_key: signer.to_public_vec().into(),
        };
        self.keys.push(Keys { signer, credential });
        Ok(self.keys.len() - 1)
    }

    /// The index in `keys` of its key for its group's suite.
    fn group_keys(&mut self) -> Outcome<usize> {
        let suite = self.suite()?;
        self.keys_for(suite)
    }

    fn epoch_authenticator(&mut self) -> Outcome<Bytes> {
        Ok(self.group()?.epoch_authenticator().as_slice().to_vec())
    }

    fn key_package(&mut self, suite: u16) -> Outcome<(Tx, Bytes)> {
        let suite = Ciphersuite::try_from(suite).map_err(failed("cipher suite"))?;
        let i = self.keys_for(suite)?;
        let k = &self.keys[i];
        let bundle = KeyPackage::builder()
            .leaf_node_capabilities(self.capabilities())
            .build(suite, &self.provider, &k.signer, k.credential.clone())
            .map_err(failed("KeyPackage"))?;
        self.key_packages += 1;
        let msg = MlsMessageOut::from(bundle.key_package().clone());
        Ok((Tx(self.key_packages - 1), bytes(&msg)))
    }

    fn key_package_in(&self, msg: &[u8]) -> Outcome<KeyPackage> {
        match MlsMessageIn::tls_deserialize_exact(msg).map_err(failed("decode"))?.extract() {
            MlsMessageBodyIn::KeyPackage(kp) => {
                kp.validate(self.provider.crypto(), ProtocolVersion::Mls10).map_err(failed("KeyPackage"))
            }
            _ => Err(Failure::Failed("not a KeyPackage".into())),
        }
    }

    fn leaf_of(&mut self, identity: &[u8]) -> Outcome<LeafNodeIndex> {
        let found = self.group()?.members().find(|m| m.credential.serialized_content() == identity).map(|m| m.index);
        found.ok_or_else(|| Failure::Failed(format!("no member {:?}", String::from_utf8_lossy(identity))))
    }

    fn extensions(list: &[scripts::Extension]) -> Outcome<Extensions<GroupContext>> {
        Extensions::<GroupContext>::tls_deserialize_exact(scripts::encode_extensions(list)).map_err(failed("extensions"))
    }

    fn psk_id(&mut self, spec: &ProposalSpec) -> Outcome<PreSharedKeyId> {
        let suite = self.suite()?;
        let psk = match spec {
            ProposalSpec::ExternalPsk(id) => Psk::External(ExternalPsk::new(id.clone())),
            ProposalSpec::ResumptionPsk(epoch) => {
                let gid = self.group()?.group_id().clone();
                Psk::Resumption(ResumptionPsk::new(ResumptionPskUsage::Application, gid, GroupEpoch::from(*epoch)))
            }
            _ => return Err(Failure::Failed("not a PSK".into())),
        };
        PreSharedKeyId::new(suite, self.provider.rand(), psk).map_err(failed("PSK ID"))
    }

    /// Processes a group message (`what` names it in errors).
    fn process(&mut self, msg: &[u8], what: &str) -> Outcome<ProcessedMessage> {
        let pm = MlsMessageIn::tls_deserialize_exact(msg)
            .map_err(failed("decode"))?
            .try_into_protocol_message()
            .map_err(failed("not a group message"))?;
        let Self { group, provider, .. } = self;
        let g = group.as_mut().ok_or_else(|| Failure::Failed("no group".into()))?;
        match g.process_message(provider, pm) {
            // Returned for external senders' proposals of other types only.
            Err(ProcessMessageError::UnsupportedProposalType) => unsupported(NO_EXTERNAL_PSK_OR_REINIT),
            other => other.map_err(failed(what)),
        }
    }

    /// Processes the proposal messages it did not send, storing them.
    fn take_proposals(&mut self, proposals: &[Bytes]) -> Outcome<()> {
        let others: Vec<Bytes> = self.sent.others(proposals).into_iter().cloned().collect();
        for p in others {
            match self.process(&p, "proposal")?.into_content() {
                ProcessedMessageContent::ProposalMessage(q) | ProcessedMessageContent::ExternalJoinProposalMessage(q) => {
                    let Self { group, provider, .. } = self;
                    let g = group.as_mut().ok_or_else(|| Failure::Failed("no group".into()))?;
                    g.store_pending_proposal(provider.storage(), *q).map_err(failed("store proposal"))?
                }
                other => return Err(Failure::Failed(format!("expected a proposal, got {other:?}"))),
            }
        }
        Ok(())
    }

    fn process_commit(&mut self, commit: &[u8]) -> Outcome<Box<StagedCommit>> {
        match self.process(commit, "commit")?.into_content() {
            ProcessedMessageContent::StagedCommitMessage(sc) => Ok(sc),
            other => Err(Failure::Failed(format!("expected a Commit, got {other:?}"))),
        }
    }

    fn merge(&mut self, sc: StagedCommit) -> Outcome<Bytes> {
        let Self { group, provider, .. } = self;
        let g = group.as_mut().ok_or_else(|| Failure::Failed("no group".into()))?;
        g.merge_staged_commit(provider, sc).map_err(failed("merge"))?;
        self.sent.clear();
        self.epoch_authenticator()
    }
}

impl scripts::Client for OpenMlsClient {
    fn library(&self) -> Library {
        Library::OpenMls
    }

    fn create_group(&mut self, group_id: &[u8], suite: u16, encrypt: bool) -> Outcome<()> {
        let suite = Ciphersuite::try_from(suite).map_err(failed("cipher suite"))?;
        let i = self.keys_for(suite)?;
        let k = &self.keys[i];
        let cfg = MlsGroupCreateConfig::builder()
            .ciphersuite(suite)
            .wire_format_policy(if encrypt { MIXED_CIPHERTEXT_WIRE_FORMAT_POLICY } else { MIXED_PLAINTEXT_WIRE_FORMAT_POLICY })
            .use_ratchet_tree_extension(true)
            .padding_size(PADDING)
            .max_past_epochs(1)
            .number_of_resumption_psks(16)
            .capabilities(self.capabilities())
            .sender_ratchet_configuration(SenderRatchetConfiguration::new(20, 1000))
            .build();
        let g = MlsGroup::new_with_group_id(&self.provider, &k.signer, &cfg, GroupId::from_slice(group_id), k.credential.clone())
            .map_err(failed("create"))?;
        self.group = Some(g);
        self.encrypt = encrypt;
        Ok(())
    }

    fn create_key_package(&mut self, suite: u16) -> Outcome<(Tx, Bytes)> {
        self.key_package(suite)
    }

    fn join_group(&mut self, _tx: Tx, welcome: &[u8], encrypt: bool, ratchet_tree: Option<&[u8]>) -> Outcome<Bytes> {
        let welcome = match MlsMessageIn::tls_deserialize_exact(welcome).map_err(failed("decode"))?.extract() {
            MlsMessageBodyIn::Welcome(w) => w,
            _ => return Err(Failure::Failed("not a Welcome".into())),
        };
        let tree = ratchet_tree.map(RatchetTreeIn::tls_deserialize_exact).transpose().map_err(failed("ratchet tree"))?;
        let cfg = Self::join_config(encrypt, true);
        let staged = StagedWelcome::new_from_welcome(&self.provider, &cfg, welcome, tree).map_err(failed("Welcome"))?;
        self.group = Some(staged.into_group(&self.provider).map_err(failed("join"))?);
        self.encrypt = encrypt;
        self.sent.clear();
        self.epoch_authenticator()
    }

    fn external_join(
        &mut self,
        group_info: &[u8],
        ratchet_tree: Option<&[u8]>,
        encrypt: bool,
        _remove_prior: bool,
        psks: &[(Bytes, Bytes)],
    ) -> Outcome<(Bytes, Bytes)> {
        // A prior leaf with our signature key is removed by OpenMLS itself.
        let gi = match MlsMessageIn::tls_deserialize_exact(group_info).map_err(failed("decode"))?.extract() {
            MlsMessageBodyIn::GroupInfo(gi) => gi,
            _ => return Err(Failure::Failed("not a GroupInfo".into())),
        };
        let suite = gi.ciphersuite();
        let i = self.keys_for(suite)?;
        let k = &self.keys[i];
        let mut b = MlsGroup::external_commit_builder().with_config(Self::join_config(encrypt, true));
        if let Some(t) = ratchet_tree {
            b = b.with_ratchet_tree(RatchetTreeIn::tls_deserialize_exact(t).map_err(failed("ratchet tree"))?);
        }
        let leaf = LeafNodeParameters::builder().with_capabilities(self.capabilities()).build();
        let mut cb = b
            .build_group(&self.provider, gi, k.credential.clone())
            .map_err(failed("GroupInfo"))?
            .leaf_node_parameters(leaf);
        for (id, secret) in psks {
            PreSharedKeyId::external(id.clone(), vec![0; suite.hash_length()])
                .store(&self.provider, secret)
                .map_err(failed("store PSK"))?;
            let psk = PreSharedKeyId::new(suite, self.provider.rand(), Psk::External(ExternalPsk::new(id.clone())))
                .map_err(failed("PSK ID"))?;
            cb = cb.add_psk_proposal(PreSharedKeyProposal::new(psk));
        }
        let (g, bundle) = cb
            .load_psks(self.provider.storage())
            .map_err(failed("load PSKs"))?
            .build(self.provider.rand(), self.provider.crypto(), &k.signer, |_| true)
            .map_err(failed("external commit"))?
            .finalize(&self.provider)
            .map_err(failed("finalize"))?;
        self.group = Some(g);
        self.encrypt = encrypt;
        self.sent.clear();
        Ok((bytes(bundle.commit()), self.epoch_authenticator()?))
    }

    fn group_info(&mut self, external_tree: bool) -> Outcome<(Bytes, Bytes)> {
        let i = self.group_keys()?;
        let k = &self.keys[i];
        let g = self.group.as_ref().ok_or_else(|| Failure::Failed("no group".into()))?;
        let gi = g.export_group_info(self.provider.crypto(), &k.signer, !external_tree).map_err(failed("GroupInfo"))?;
        let tree = if external_tree {
            g.export_ratchet_tree().tls_serialize_detached().map_err(failed("tree"))?
        } else {
            Vec::new()
        };
        Ok((bytes(&gi), tree))
    }

    fn store_psk(&mut self, id: &[u8], secret: &[u8]) -> Outcome<()> {
        // Stored by its `Psk`: the nonce is not part of the key.
        PreSharedKeyId::external(id.to_vec(), vec![0; 32]).store(&self.provider, secret).map_err(failed("store PSK"))
    }

    fn propose(&mut self, spec: &ProposalSpec) -> Outcome<Bytes> {
        let msg = match spec {
            ProposalSpec::Add(kp) => {
                let kp = self.key_package_in(kp)?;
                let i = self.group_keys()?;
                let Self { group, provider, keys, .. } = self;
                let signer = &keys[i].signer;
                let g = group.as_mut().ok_or_else(|| Failure::Failed("no group".into()))?;
                g.propose_add_member(provider, signer, &kp).map_err(failed("propose add"))?.0
            }
            ProposalSpec::Remove(identity) => {
                let leaf = self.leaf_of(identity)?;
                let i = self.group_keys()?;
                let Self { group, provider, keys, .. } = self;
                let signer = &keys[i].signer;
                let g = group.as_mut().ok_or_else(|| Failure::Failed("no group".into()))?;
                g.propose_remove_member(provider, signer, leaf).map_err(failed("propose remove"))?.0
            }
            ProposalSpec::ExternalPsk(_) | ProposalSpec::ResumptionPsk(_) => {
                let psk = self.psk_id(spec)?;
                let i = self.group_keys()?;
                let Self { group, provider, keys, .. } = self;
                let signer = &keys[i].signer;
                let g = group.as_mut().ok_or_else(|| Failure::Failed("no group".into()))?;
                g.propose_pre_shared_key(provider, signer, psk).map_err(failed("propose PSK"))?.0
            }
            ProposalSpec::GroupContextExtensions(list) => {
                let ext = Self::extensions(list)?;
                let i = self.group_keys()?;
                let Self { group, provider, keys, .. } = self;
                let signer = &keys[i].signer;
                let g = group.as_mut().ok_or_else(|| Failure::Failed("no group".into()))?;
                g.propose_group_context_extensions(provider, ext, signer).map_err(failed("propose GCE"))?.0
            }
            ProposalSpec::ReInit { .. } => return unsupported("no API to propose a ReInit"),
        };
        let msg = bytes(&msg);
        self.sent.sent(&msg);
        Ok(msg)
    }

    fn propose_update(&mut self) -> Outcome<Bytes> {
        let i = self.group_keys()?;
        let Self { group, provider, keys, .. } = self;
        let signer = &keys[i].signer;
        let g = group.as_mut().ok_or_else(|| Failure::Failed("no group".into()))?;
        let (m, _) = g.propose_self_update(provider, signer, LeafNodeParameters::default()).map_err(failed("propose update"))?;
        let msg = bytes(&m);
        self.sent.sent(&msg);
        Ok(msg)
    }

    fn commit(&mut self, by_reference: &[Bytes], by_value: &[ProposalSpec], force_path: bool, external_tree: bool) -> Outcome<CommitOut> {
        self.take_proposals(by_reference)?;
        let (mut adds, mut removes, mut psks, mut gce) = (Vec::new(), Vec::new(), Vec::new(), None);
        for spec in by_value {
            match spec {
                ProposalSpec::Add(kp) => adds.push(self.key_package_in(kp)?),
                ProposalSpec::Remove(identity) => removes.push(self.leaf_of(identity)?),
                ProposalSpec::ExternalPsk(_) | ProposalSpec::ResumptionPsk(_) => {
                    psks.push(Proposal::PreSharedKey(Box::new(PreSharedKeyProposal::new(self.psk_id(spec)?))))
                }
                ProposalSpec::GroupContextExtensions(list) => gce = Some(Self::extensions(list)?),
                ProposalSpec::ReInit { .. } => return unsupported("no API to commit a ReInit"),
            }
        }
        if !psks.is_empty() && self.group()?.pending_proposals().any(|q| matches!(q.proposal(), Proposal::PreSharedKey(_))) {
            return unsupported(PSKS_BY_REFERENCE_AND_VALUE);
        }
        let cfg = Self::join_config(self.encrypt, !external_tree);
        let i = self.group_keys()?;
        let Self { group, provider, keys, .. } = self;
        let signer = &keys[i].signer;
        let g = group.as_mut().ok_or_else(|| Failure::Failed("no group".into()))?;
        g.set_configuration(provider.storage(), &cfg).map_err(failed("configuration"))?;
        let mut b = g.commit_builder().propose_adds(adds).propose_removals(removes).add_proposals(psks);
        if let Some(e) = gce {
            b = b.propose_group_context_extensions(e).map_err(failed("GroupContextExtensions"))?;
        }
        let bundle = b
            .force_self_update(force_path)
            .consume_proposal_store(true)
            .load_psks(provider.storage())
            .map_err(failed("load PSKs"))?
            .build(provider.rand(), provider.crypto(), signer, |_| true)
            .map_err(failed("commit"))?
            .stage_commit(provider)
            .map_err(failed("stage commit"))?;
        let commit = bytes(bundle.commit());
        let welcome = bundle.to_welcome_msg().as_ref().map(bytes).unwrap_or_default();
        let mut ratchet_tree = Vec::new();
        if external_tree {
            // The tree after the Commit: merged now, so that it can be exported.
            g.merge_pending_commit(provider).map_err(failed("merge"))?;
            ratchet_tree = g.export_ratchet_tree().tls_serialize_detached().map_err(failed("tree"))?;
            self.merged_early = Some(g.epoch_authenticator().as_slice().to_vec());
        }
        Ok(CommitOut { commit, welcome, ratchet_tree })
    }

    fn handle_pending_commit(&mut self) -> Outcome<Bytes> {
        self.sent.clear();
        if let Some(ea) = self.merged_early.take() {
            return Ok(ea);
        }
        let Self { group, provider, .. } = self;
        let g = group.as_mut().ok_or_else(|| Failure::Failed("no group".into()))?;
        g.merge_pending_commit(provider).map_err(failed("merge"))?;
        self.epoch_authenticator()
    }

    fn handle_commit(&mut self, proposals: &[Bytes], commit: &[u8]) -> Outcome<Bytes> {
        self.take_proposals(proposals)?;
        let sc = self.process_commit(commit)?;
        self.merge(*sc)
    }

    fn protect(&mut self, authenticated_data: &[u8], plaintext: &[u8]) -> Outcome<Bytes> {
        let i = self.group_keys()?;
        let Self { group, provider, keys, .. } = self;
        let signer = &keys[i].signer;
        let g = group.as_mut().ok_or_else(|| Failure::Failed("no group".into()))?;
        g.set_aad(authenticated_data.to_vec());
        Ok(bytes(&g.create_message(provider, signer, plaintext).map_err(failed("protect"))?))
    }

    fn unprotect(&mut self, ciphertext: &[u8]) -> Outcome<(Bytes, Bytes)> {
        let processed = self.process(ciphertext, "unprotect")?;
        let aad = processed.aad().to_vec();
        match processed.into_content() {
            ProcessedMessageContent::ApplicationMessage(a) => Ok((aad, a.into_bytes())),
            other => Err(Failure::Failed(format!("expected application data, got {other:?}"))),
        }
    }

    fn reinit_commit(&mut self, _proposals: &[Bytes]) -> Outcome<Bytes> {
        unsupported("no API to commit a ReInit")
    }

    fn handle_pending_reinit_commit(&mut self) -> Outcome<(Bytes, Bytes)> {
        unsupported("no API to commit a ReInit")
    }

    fn handle_reinit_commit(&mut self, proposals: &[Bytes], commit: &[u8]) -> Outcome<(Bytes, Bytes)> {
        self.take_proposals(proposals)?;
        let sc = self.process_commit(commit)?;
        // The new suite, from the ReInit's encoding (its fields are private).
        let reinit = sc.queued_proposals().find_map(|q| match q.proposal() {
            Proposal::ReInit(r) => r.tls_serialize_detached().ok(),
            _ => None,
        });
        let reinit = reinit.ok_or_else(|| Failure::Failed("the Commit holds no ReInit".into()))?;
        let mut r = reinit.as_slice();
        scripts::read_opaque(&mut r).ok_or_else(|| Failure::Failed("ReInit".into()))?;
        let suite = r.get(2..4).map(|s| u16::from_be_bytes([s[0], s[1]])).ok_or_else(|| Failure::Failed("ReInit".into()))?;
        let ea = self.merge(*sc)?;
        let (_, kp) = self.key_package(suite)?;
        Ok((kp, ea))
    }

    fn reinit_welcome(&mut self, _: &[Bytes], _: bool, _: bool) -> Outcome<Welcomed> {
        unsupported("no API to create the new group of a ReInit")
    }

    fn handle_reinit_welcome(&mut self, _: &[u8], _: Option<&[u8]>) -> Outcome<Bytes> {
        unsupported(NO_RESUMPTION_JOIN)
    }

    fn create_branch(&mut self, _: &[u8], _: &[scripts::Extension], _: &[Bytes], _: bool, _: bool) -> Outcome<Welcomed> {
        unsupported("no API to branch a group")
    }

    fn handle_branch(&mut self, _: Tx, _: &[u8], _: Option<&[u8]>) -> Outcome<Bytes> {
        unsupported(NO_RESUMPTION_JOIN)
    }

    fn new_member_add_proposal(&mut self, group_info: &[u8]) -> Outcome<(Tx, Bytes)> {
        let fields = wire::group_info(group_info).ok_or_else(|| Failure::Failed("not a GroupInfo".into()))?;
        let (tx, kp) = self.key_package(fields.cipher_suite)?;
        let kp = self.key_package_in(&kp)?;
        let i = self.keys_for(kp.ciphersuite())?;
        let k = &self.keys[i];
        let m = JoinProposal::new::<<OpenMlsRustCrypto as OpenMlsProvider>::StorageProvider>(
            kp,
            GroupId::from_slice(&fields.group_id),
            GroupEpoch::from(fields.epoch),
            &k.signer,
        )
        .map_err(failed("join proposal"))?;
        Ok((tx, bytes(&m)))
    }

    fn create_external_signer(&mut self, suite: u16) -> Outcome<Bytes> {
        let suite = Ciphersuite::try_from(suite).map_err(failed("cipher suite"))?;
        let signer = SignatureKeyPair::new(suite.signature_algorithm()).map_err(failed("signature key"))?;
        let entry = ExternalSender::new(signer.to_public_vec().into(), BasicCredential::new(self.name.as_bytes().to_vec()).into())
            .tls_serialize_detached()
            .map_err(failed("ExternalSender"))?;
        self.external_signer = Some(signer);
        Ok(entry)
    }

    fn add_external_signer(&mut self, external_sender: &[u8]) -> Outcome<Bytes> {
        let current = self.group()?.extensions().tls_serialize_detached().map_err(failed("extensions"))?;
        let list = scripts::decode_extensions(&current).ok_or_else(|| Failure::Failed("our extensions".into()))?;
        let list = scripts::with_external_sender(&list, external_sender)
            .ok_or_else(|| Failure::Failed("malformed external_senders".into()))?;
        self.propose(&ProposalSpec::GroupContextExtensions(list))
    }

    fn external_signer_proposal(&mut self, group_info: &[u8], ratchet_tree: &[u8], spec: &ProposalSpec) -> Outcome<Bytes> {
        let signer = self.external_signer.as_ref().ok_or_else(|| Failure::Failed("not an external signer".into()))?;
        let fields = wire::group_info(group_info).ok_or_else(|| Failure::Failed("not a GroupInfo".into()))?;
        let index = scripts::external_sender_index(&fields.group_context_extensions, &signer.to_public_vec())
            .ok_or_else(|| Failure::Failed("not among the group's external senders".into()))?;
        let (gid, epoch, index) =
            (GroupId::from_slice(&fields.group_id), GroupEpoch::from(fields.epoch), SenderExtensionIndex::new(index));
        type P = OpenMlsRustCrypto;
        let m = match spec {
            ProposalSpec::Add(kp) => {
                let kp = self.key_package_in(kp)?;
                ExternalProposal::new_add::<P>(kp, gid, epoch, signer, index).map_err(failed("external Add"))?
            }
            ProposalSpec::Remove(identity) => {
                let tree = fields.ratchet_tree().unwrap_or(ratchet_tree);
                let leaf = wire::leaf_by_identity(tree, identity).ok_or_else(|| Failure::Failed("no such member".into()))?;
                ExternalProposal::new_remove::<P>(LeafNodeIndex::new(leaf), gid, epoch, signer, index)
                    .map_err(failed("external Remove"))?
            }
            ProposalSpec::GroupContextExtensions(list) => {
                ExternalProposal::new_group_context_extensions::<P>(Self::extensions(list)?, gid, epoch, signer, index)
                    .map_err(failed("external GroupContextExtensions"))?
            }
            ProposalSpec::ExternalPsk(_) | ProposalSpec::ResumptionPsk(_) | ProposalSpec::ReInit { .. } => {
                return unsupported("ExternalProposal makes only Add, Remove and GroupContextExtensions proposals");
            }
        };
        Ok(bytes(&m))
    }
}
