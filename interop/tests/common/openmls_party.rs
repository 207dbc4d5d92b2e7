//! An OpenMLS member behind [`Party`]: `OpenMlsRustCrypto` (RustCrypto and
//! in-memory storage), a basic credential, an Ed25519 key.
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
        let provider = OpenMlsRustCrypto::default();
        let signer = SignatureKeyPair::new(suite.signature_algorithm()).expect("signature key");
        signer.store(provider.storage()).expect("store signature key");
        let credential = CredentialWithKey {
            credential: BasicCredential::new(name.as_bytes().to_vec()).into(),
            signature_key: signer.to_public_vec().into(),
        };
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
/// provider and Ed25519 key.
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
