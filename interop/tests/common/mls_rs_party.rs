//! An mls-rs member behind [`Party`]: `RustCryptoProvider`, the in-memory
//! storage of `ClientBuilder::new()`, a basic credential, a signature key of its suite.
//!
//! mls-rs decides per Commit through its `MlsRules`: ours here keep three
//! switches (path on Adds, ratchet tree in the Welcome, handshake as
//! PrivateMessage) that the test flips. Its defaults: no path on Add-only
//! Commits, the tree in the Welcome, PublicMessage handshakes.
//!
//! Its KeyPackages, leaves and the GroupInfos of its Welcomes carry an
//! extension unknown to the other libraries, listed in its capabilities, that
//! every receiver must ignore: a GREASE value (RFC 9420 §13.5) by default.
//!
//! OpenMLS 0.9.2 rejects any LeafNode or KeyPackage whose extensions hold a
//! GREASE type, even when its capabilities list it (`UnsupportedExtension(s)`:
//! it decodes the type as `ExtensionType::Grease` in capabilities but as
//! `ExtensionType::Unknown` in extensions, and they compare unequal). Tests
//! that mix OpenMLS and mls-rs members use a private-use type instead
//! ([`MlsRsParty::with_extension`]). mls-rs's own `grease` feature stays off:
//! besides hitting that OpenMLS bug, it puts a GREASE extension into
//! `KeyPackage.extensions` without listing it in the leaf's capabilities,
//! which RFC 9420 §10 forbids ("Extensions included in the extensions or
//! leaf_node.extensions fields MUST be included in the
//! leaf_node.capabilities field"). Ours accepts such KeyPackages: the
//! validation steps of §10.1 do not include that check.

use mls_interop::{Event, Party};
use mls_rs::client_builder::{BaseConfig, PaddingMode, WithCryptoProvider, WithIdentityProvider, WithMlsRules};
use mls_rs::group::{CommitEffect, ExportedTree, GroupContext, ReceivedMessage, Roster};
use mls_rs::identity::basic::{BasicCredential, BasicIdentityProvider};
use mls_rs::identity::{Credential, SigningIdentity};
use mls_rs::mls_rs_codec::MlsDecode;
use mls_rs::psk::{ExternalPskId, PreSharedKey};
use mls_rs::mls_rules::{CommitDirection, CommitOptions, CommitSource, EncryptionOptions, ProposalBundle};
use mls_rs::extension::ExtensionType;
use mls_rs::{
    CipherSuite, CipherSuiteProvider, Client, CryptoProvider, Extension, ExtensionList, Group, MlsMessage, MlsRules,
};
use mls_rs_crypto_rustcrypto::RustCryptoProvider;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// MLS rules whose options the test switches at run time.
#[derive(Clone, Debug, Default)]
pub struct Switches {
    path_on_add: Arc<AtomicBool>,
    tree_in_welcome: Arc<AtomicBool>,
    private_handshake: Arc<AtomicBool>,
}

impl MlsRules for Switches {
    type Error = Infallible;

    fn filter_proposals(
        &self,
        _: CommitDirection,
        _: CommitSource,
        _: &Roster,
        _: &GroupContext,
        proposals: ProposalBundle,
    ) -> Result<ProposalBundle, Infallible> {
        Ok(proposals)
    }

    fn commit_options(&self, _: &Roster, _: &GroupContext, _: &ProposalBundle) -> Result<CommitOptions, Infallible> {
        Ok(CommitOptions::new()
            .with_path_required(self.path_on_add.load(Ordering::Relaxed))
            .with_ratchet_tree_extension(self.tree_in_welcome.load(Ordering::Relaxed)))
    }

    fn encryption_options(&self, _: &Roster, _: &GroupContext) -> Result<EncryptionOptions, Infallible> {
        // Padded with its step function (the default), unlike ours and OpenMLS.
        Ok(EncryptionOptions::new(self.private_handshake.load(Ordering::Relaxed), PaddingMode::StepFunction))
    }
}

/// The GREASE extension type its leaves and KeyPackages carry by default.
pub const GREASE: u16 = 0x3a3a;

type Config = WithIdentityProvider<BasicIdentityProvider, WithCryptoProvider<RustCryptoProvider, WithMlsRules<Switches, BaseConfig>>>;

/// A member running mls-rs.
pub struct MlsRsParty {
    name: String,
    client: Client<Config>,
    rules: Switches,
    group: Option<Group<Config>>,
    extension: u16,
    reinit: Option<mls_rs::group::ReinitClient<Config>>,
}

impl MlsRsParty {
    /// A member named `name` for the suite with code point `suite`, whose
    /// KeyPackages, leaves and GroupInfos carry a GREASE extension.
    pub fn new(name: &str, suite: u16) -> Self {
        Self::with_extension(name, suite, GREASE)
    }

    /// Like [`MlsRsParty::new`], with `extension` as the unknown extension type.
    pub fn with_extension(name: &str, suite: u16, extension: u16) -> Self {
        let suite = CipherSuite::from(suite);
        let crypto = RustCryptoProvider::default();
        let (secret, public) =
            crypto.cipher_suite_provider(suite).expect("mls-rs supports the suite").signature_key_generate().expect("key");
        let identity = SigningIdentity::new(BasicCredential::new(name.as_bytes().to_vec()).into_credential(), public);
        let rules = Switches::default();
        rules.tree_in_welcome.store(true, Ordering::Relaxed);
        let client = Client::builder()
            .mls_rules(rules.clone())
            .crypto_provider(crypto)
            .identity_provider(BasicIdentityProvider::new())
            .extension_type(ExtensionType::new(extension))
            .signing_identity(identity, secret, suite)
            // mls-rs defaults to a year; ours accepts at most 90 days.
            .key_package_lifetime(std::time::Duration::from_secs(30 * 86_400))
            .build();
        Self { name: name.to_string(), client, rules, group: None, extension, reinit: None }
    }

    fn group(&self) -> &Group<Config> {
        self.group.as_ref().unwrap_or_else(|| panic!("{}: no group", self.name))
    }

    fn group_mut(&mut self) -> &mut Group<Config> {
        self.group.as_mut().expect("group")
    }

    /// A list of one extension of our unknown type with `data`.
    fn unknown_extension(&self, data: &[u8]) -> ExtensionList {
        ExtensionList::from(vec![Extension::new(ExtensionType::new(self.extension), data.to_vec())])
    }

    fn apply(&mut self) {
        self.group_mut().apply_pending_commit().expect("mls-rs apply_pending_commit");
    }

    /// Processes the `MLSMessage` `msg` as a trial (tests/differential.rs)
    /// on a clone of the group, which is then dropped: nothing the trial did
    /// stays. `Err` says why mls-rs rejected it.
    pub fn trial(&self, msg: &[u8]) -> Result<(), String> {
        let m = MlsMessage::from_bytes(msg).map_err(|e| format!("decode: {e:?}"))?;
        let mut g = self.group().clone();
        g.process_incoming_message(m).map(|_| ()).map_err(|e| format!("{e:?}"))
    }

    /// Whether mls-rs accepts the KeyPackage in `msg` (an `MLSMessage`): a
    /// Commit adding it is built on a clone of the group (which validates
    /// it) and dropped.
    pub fn trial_key_package(&self, msg: &[u8]) -> Result<(), String> {
        let m = MlsMessage::from_bytes(msg).map_err(|e| format!("decode: {e:?}"))?;
        let mut g = self.group().clone();
        let b = g.commit_builder().add_member(m).map_err(|e| format!("{e:?}"))?;
        b.build().map(|_| ()).map_err(|e| format!("{e:?}"))
    }

    /// Whether mls-rs joins by external Commit from the GroupInfo in `msg`
    /// (an `MLSMessage` with the ratchet tree); the group is dropped (use a
    /// client that is not in the group).
    pub fn trial_group_info(&self, msg: &[u8]) -> Result<(), String> {
        let m = MlsMessage::from_bytes(msg).map_err(|e| format!("decode: {e:?}"))?;
        let b = self.client.external_commit_builder().map_err(|e| format!("{e:?}"))?;
        b.with_leaf_node_extensions(self.unknown_extension(b"leaf")).build(m).map(|_| ()).map_err(|e| format!("{e:?}"))
    }

    /// Whether mls-rs joins from the `MLSMessage(Welcome)` `welcome` (the
    /// tree in it) with a KeyPackage this client generated; the group is
    /// dropped and the KeyPackage store restored, so the KeyPackage stays.
    pub fn trial_join(&self, welcome: &[u8]) -> Result<(), String> {
        let store = self.client.key_package_store();
        let saved = store.key_packages();
        let result = MlsMessage::from_bytes(welcome)
            .map_err(|e| format!("decode: {e:?}"))
            .and_then(|m| self.client.join_group(None, &m, None).map(|_| ()).map_err(|e| format!("{e:?}")));
        for (id, data) in saved {
            store.insert(id, data);
        }
        result
    }

    /// Commits a ReInit (RFC 9420 §11.2) to `group_id` and the suite with
    /// code point `suite`; merged at once.
    pub fn commit_reinit(&mut self, group_id: &[u8], suite: u16) -> Vec<u8> {
        let b = self.group_mut().commit_builder().reinit(
            Some(group_id.to_vec()),
            mls_rs::ProtocolVersion::MLS_10,
            CipherSuite::from(suite),
            ExtensionList::default(),
        );
        let out = b.expect("mls-rs reinit").build().unwrap_or_else(|e| panic!("mls-rs ReInit commit: {e:?}"));
        self.apply();
        bytes(out.commit_message())
    }

    /// Proposes a ReInit (RFC 9420 §11.2) to `group_id` and the suite with
    /// code point `suite`, for another member to commit by reference.
    pub fn propose_reinit(&mut self, group_id: &[u8], suite: u16) -> Vec<u8> {
        let m = self.group_mut().propose_reinit(
            Some(group_id.to_vec()),
            mls_rs::ProtocolVersion::MLS_10,
            CipherSuite::from(suite),
            ExtensionList::default(),
            Vec::new(),
        );
        bytes(&m.unwrap_or_else(|e| panic!("mls-rs propose_reinit: {e:?}")))
    }

    /// Resyncs (RFC 9420 §12.4.3.2): rejoins its group by an external
    /// Commit from `group_info` (with the tree) that removes its old leaf;
    /// the new group replaces the old here. Returns the Commit.
    pub fn resync(&mut self, group_info: &[u8]) -> Vec<u8> {
        let old = self.group().current_member_index();
        let b = self
            .client
            .external_commit_builder()
            .expect("mls-rs external_commit_builder")
            .with_leaf_node_extensions(self.unknown_extension(b"leaf"))
            .with_removal(old);
        let (g, commit) = b.build(msg(group_info)).unwrap_or_else(|e| panic!("{}: mls-rs resync: {e:?}", self.name));
        self.group = Some(g);
        bytes(&commit)
    }

    /// After a ReInit Commit: leaves the old group for a `ReinitClient`.
    pub fn start_reinit(&mut self) {
        let g = self.group.take().expect("group");
        self.reinit = Some(g.get_reinit_client(None, None).unwrap_or_else(|e| panic!("mls-rs get_reinit_client: {e:?}")));
    }

    /// A KeyPackage for the new group of the ReInit.
    pub fn reinit_key_package(&mut self) -> Vec<u8> {
        let kp = self.reinit.as_ref().expect("a ReinitClient").generate_key_package(None);
        bytes(&kp.unwrap_or_else(|e| panic!("mls-rs reinit KeyPackage: {e:?}")))
    }

    /// Creates the new group of the ReInit with `key_packages` (its first
    /// Commit carries the reinit resumption PSK); returns the Welcome.
    pub fn reinit_create(&mut self, key_packages: &[Vec<u8>]) -> Vec<u8> {
        let rc = self.reinit.take().expect("a ReinitClient");
        let kps = key_packages.iter().map(|k| msg(k)).collect();
        let (g, welcomes) =
            rc.commit(kps, self.unknown_extension(b"leaf"), None).unwrap_or_else(|e| panic!("mls-rs reinit commit: {e:?}"));
        self.group = Some(g);
        bytes(&welcomes[0])
    }

    /// Branches (RFC 9420 §11.3) a subgroup `group_id` of its group with
    /// the holders of `key_packages` (members of the group), linked by a
    /// branch resumption PSK; the subgroup replaces the group here. Returns
    /// the Welcome.
    pub fn branch(&mut self, group_id: &[u8], key_packages: &[Vec<u8>]) -> Vec<u8> {
        let kps = key_packages.iter().map(|k| msg(k)).collect();
        let (g, welcomes) =
            self.group().branch(group_id.to_vec(), kps, None).unwrap_or_else(|e| panic!("mls-rs branch: {e:?}"));
        self.group = Some(g);
        bytes(&welcomes[0])
    }

    /// Joins a subgroup branched from its group (checking the branch PSK);
    /// the subgroup replaces the group here.
    pub fn join_branch(&mut self, welcome: &[u8]) {
        let (g, _) = self
            .group()
            .join_subgroup(&msg(welcome), None, None)
            .unwrap_or_else(|e| panic!("{}: mls-rs join_subgroup: {e:?}", self.name));
        self.group = Some(g);
    }

    /// Joins the new group of the ReInit from `welcome`.
    pub fn reinit_join(&mut self, welcome: &[u8]) {
        let rc = self.reinit.take().expect("a ReinitClient");
        let (g, _) = rc.join(&msg(welcome), None, None).unwrap_or_else(|e| panic!("{}: mls-rs reinit join: {e:?}", self.name));
        self.group = Some(g);
    }
}

fn msg(bytes: &[u8]) -> MlsMessage {
    MlsMessage::from_bytes(bytes).expect("mls-rs decodes the MLSMessage")
}

fn bytes(m: &MlsMessage) -> Vec<u8> {
    m.to_bytes().expect("serialize")
}

impl Party for MlsRsParty {
    fn name(&self) -> &str {
        &self.name
    }

    fn library(&self) -> &'static str {
        "mls-rs"
    }

    fn create(&mut self, group_id: &[u8]) {
        let g = self
            .client
            .create_group_with_id(group_id.to_vec(), ExtensionList::default(), self.unknown_extension(b"leaf"), None)
            .expect("mls-rs creates the group");
        self.group = Some(g);
    }

    fn key_package(&mut self) -> Vec<u8> {
        let kp = self
            .client
            .generate_key_package_message(self.unknown_extension(b"key package"), self.unknown_extension(b"leaf"), None)
            .expect("mls-rs KeyPackage");
        bytes(&kp)
    }

    fn join(&mut self, welcome: &[u8], ratchet_tree: Option<&[u8]>) {
        let tree = ratchet_tree.map(|t| ExportedTree::from_bytes(t).expect("mls-rs decodes the ratchet tree"));
        let (g, _) = self
            .client
            .join_group(tree, &msg(welcome), None)
            .unwrap_or_else(|e| panic!("{}: mls-rs rejects the Welcome: {e:?}", self.name));
        self.group = Some(g);
    }

    fn ratchet_tree(&mut self) -> Vec<u8> {
        self.group().export_tree().to_bytes().expect("serialize tree")
    }

    fn set_tree_in_welcome(&mut self, on: bool) {
        self.rules.tree_in_welcome.store(on, Ordering::Relaxed);
    }

    fn tree_in_welcome(&self) -> bool {
        self.rules.tree_in_welcome.load(Ordering::Relaxed)
    }

    fn set_private_handshake(&mut self, on: bool) {
        self.rules.private_handshake.store(on, Ordering::Relaxed);
    }

    fn add(&mut self, key_packages: &[Vec<u8>], path: bool) -> (Vec<u8>, Vec<u8>) {
        self.rules.path_on_add.store(path, Ordering::Relaxed);
        let gi = self.unknown_extension(b"group info");
        let mut b = self.group_mut().commit_builder().set_group_info_ext(gi);
        for kp in key_packages {
            b = b.add_member(msg(kp)).unwrap_or_else(|e| panic!("mls-rs rejects the KeyPackage: {e:?}"));
        }
        let out = b.build().unwrap_or_else(|e| panic!("mls-rs add: {e:?}"));
        self.rules.path_on_add.store(false, Ordering::Relaxed);
        self.apply();
        (bytes(out.commit_message()), bytes(&out.welcome_messages()[0]))
    }

    fn remove(&mut self, leaves: &[u32]) -> Vec<u8> {
        let mut b = self.group_mut().commit_builder();
        for l in leaves {
            b = b.remove_member(*l).expect("mls-rs remove_member");
        }
        let out = b.build().unwrap_or_else(|e| panic!("mls-rs remove: {e:?}"));
        self.apply();
        bytes(out.commit_message())
    }

    fn update(&mut self) -> Vec<u8> {
        let out = self.group_mut().commit(Vec::new()).unwrap_or_else(|e| panic!("mls-rs empty commit: {e:?}"));
        self.apply();
        bytes(out.commit_message())
    }

    fn commit_pending(&mut self) -> (Vec<u8>, Option<Vec<u8>>) {
        let out = self.group_mut().commit(Vec::new()).unwrap_or_else(|e| panic!("mls-rs commit: {e:?}"));
        self.apply();
        (bytes(out.commit_message()), out.welcome_messages().first().map(bytes))
    }

    fn propose_add(&mut self, key_package: &[u8]) -> Vec<u8> {
        bytes(&self.group_mut().propose_add(msg(key_package), Vec::new()).expect("mls-rs propose_add"))
    }

    fn propose_remove(&mut self, leaf: u32) -> Vec<u8> {
        bytes(&self.group_mut().propose_remove(leaf, Vec::new()).expect("mls-rs propose_remove"))
    }

    fn add_and_remove(&mut self, key_packages: &[Vec<u8>], leaves: &[u32]) -> (Vec<u8>, Option<Vec<u8>>) {
        let mut b = self.group_mut().commit_builder();
        for kp in key_packages {
            b = b.add_member(msg(kp)).unwrap_or_else(|e| panic!("mls-rs rejects the KeyPackage: {e:?}"));
        }
        for l in leaves {
            b = b.remove_member(*l).expect("mls-rs remove_member");
        }
        let out = b.build().unwrap_or_else(|e| panic!("mls-rs commit: {e:?}"));
        self.apply();
        (bytes(out.commit_message()), out.welcome_messages().first().map(bytes))
    }

    fn register_external_psk(&mut self, id: &[u8], secret: &[u8]) {
        self.client.secret_store().insert(ExternalPskId::new(id.to_vec()), PreSharedKey::new(secret.to_vec()));
    }

    fn propose_external_psk(&mut self, id: &[u8]) -> Vec<u8> {
        let m = self.group_mut().propose_external_psk(ExternalPskId::new(id.to_vec()), Vec::new());
        bytes(&m.expect("mls-rs propose_external_psk"))
    }

    fn commit_external_psk(&mut self, id: &[u8]) -> (Vec<u8>, Option<Vec<u8>>) {
        let b = self.group_mut().commit_builder().add_external_psk(ExternalPskId::new(id.to_vec()));
        let out = b.expect("mls-rs add_external_psk").build().unwrap_or_else(|e| panic!("mls-rs commit: {e:?}"));
        self.apply();
        (bytes(out.commit_message()), out.welcome_messages().first().map(bytes))
    }

    fn commit_group_context_extensions(&mut self, extensions: &[u8]) -> Vec<u8> {
        let list = ExtensionList::mls_decode(&mut &*extensions).expect("extension list");
        let b = self.group_mut().commit_builder().set_group_context_ext(list);
        let out = b.expect("mls-rs set_group_context_ext").build().unwrap_or_else(|e| panic!("mls-rs commit: {e:?}"));
        self.apply();
        bytes(out.commit_message())
    }

    fn propose_update(&mut self) -> Option<Vec<u8>> {
        Some(bytes(&self.group_mut().propose_update(Vec::new()).expect("mls-rs propose_update")))
    }

    fn send(&mut self, data: &[u8], aad: &[u8]) -> Vec<u8> {
        bytes(&self.group_mut().encrypt_application_message(data, aad.to_vec()).expect("mls-rs encrypt"))
    }

    fn process(&mut self, m: &[u8]) -> Event {
        let name = self.name.clone();
        let g = self.group_mut();
        let epoch = g.current_epoch();
        match g.process_incoming_message(msg(m)) {
            Ok(ReceivedMessage::ApplicationMessage(a)) => Event::Application(a.data().to_vec(), a.authenticated_data),
            Ok(ReceivedMessage::Proposal(_)) => Event::Proposal,
            Ok(ReceivedMessage::Commit(c)) => Event::Commit { removed_us: matches!(c.effect, CommitEffect::Removed { .. }) },
            Ok(other) => panic!("{name}: unexpected {other:?}"),
            Err(e) => panic!("{name}: mls-rs rejects the message (epoch {epoch}): {e:?}"),
        }
    }

    fn epoch(&self) -> u64 {
        self.group().current_epoch()
    }

    fn epoch_authenticator(&self) -> Vec<u8> {
        self.group().epoch_authenticator().expect("mls-rs epoch authenticator").to_vec()
    }

    fn export(&self, label: &[u8], context: &[u8], len: usize) -> Vec<u8> {
        self.group().export_secret(label, context, len).expect("mls-rs exporter").to_vec()
    }

    fn leaf_of(&mut self, identity: &[u8]) -> Option<u32> {
        self.group()
            .roster()
            .members_iter()
            .find(|m| matches!(&m.signing_identity.credential, Credential::Basic(b) if b.identifier == identity))
            .map(|m| m.index)
    }

    fn own_leaf(&self) -> u32 {
        self.group().current_member_index()
    }

    fn member_count(&mut self) -> usize {
        self.group().roster().members_iter().count()
    }

    fn group_info(&mut self, with_tree: bool) -> Vec<u8> {
        let m = self.group().group_info_message_allowing_ext_commit(with_tree);
        bytes(&m.unwrap_or_else(|e| panic!("{}: mls-rs group_info_message_allowing_ext_commit: {e:?}", self.name)))
    }

    fn join_external(&mut self, group_info: &[u8], ratchet_tree: Option<&[u8]>) -> Vec<u8> {
        let mut b = self
            .client
            .external_commit_builder()
            .expect("mls-rs external_commit_builder")
            .with_leaf_node_extensions(self.unknown_extension(b"leaf"));
        if let Some(t) = ratchet_tree {
            b = b.with_tree_data(ExportedTree::from_bytes(t).expect("mls-rs decodes the ratchet tree").into_owned());
        }
        let (g, commit) =
            b.build(msg(group_info)).unwrap_or_else(|e| panic!("{}: mls-rs external commit: {e:?}", self.name));
        self.group = Some(g);
        bytes(&commit)
    }
}

/// An external sender running mls-rs (`ExternalClient`): it observes the
/// group from a GroupInfo with the tree, then proposes.
pub struct MlsRsExternal {
    name: String,
    secret: mls_rs::crypto::SignatureSecretKey,
    identity: SigningIdentity,
}

impl MlsRsExternal {
    /// An external sender named `name` for the suite with code point `suite`.
    pub fn new(name: &str, suite: u16) -> Self {
        let suite = CipherSuite::from(suite);
        let crypto = RustCryptoProvider::default();
        let (secret, public) =
            crypto.cipher_suite_provider(suite).expect("mls-rs supports the suite").signature_key_generate().expect("key");
        let identity = SigningIdentity::new(BasicCredential::new(name.as_bytes().to_vec()).into_credential(), public);
        Self { name: name.to_string(), secret, identity }
    }

    fn observe(&self, group_info: &[u8]) -> mls_rs::external_client::ExternalGroup<impl mls_rs::external_client::builder::MlsConfig> {
        let client = mls_rs::external_client::ExternalClient::builder()
            .crypto_provider(RustCryptoProvider::default())
            .identity_provider(BasicIdentityProvider::new())
            .signer(self.secret.clone(), self.identity.clone())
            .build();
        client
            .observe_group(msg(group_info), None, None)
            .unwrap_or_else(|e| panic!("{}: mls-rs observe_group: {e:?}", self.name))
    }
}

impl mls_interop::ExternalParty for MlsRsExternal {
    fn library(&self) -> &'static str {
        "mls-rs"
    }

    fn external_sender(&self) -> Vec<u8> {
        use mls_rs::mls_rs_codec::MlsEncode;
        let mut out = self.identity.signature_key.mls_encode_to_vec().expect("encode key");
        out.extend(self.identity.credential.mls_encode_to_vec().expect("encode credential"));
        out
    }

    fn propose_add(&mut self, group_info: &[u8], _index: u32, key_package: &[u8]) -> Vec<u8> {
        let mut g = self.observe(group_info);
        bytes(&g.propose_add(msg(key_package), Vec::new()).unwrap_or_else(|e| panic!("{}: mls-rs external Add: {e:?}", self.name)))
    }

    fn propose_remove(&mut self, group_info: &[u8], _index: u32, leaf: u32) -> Vec<u8> {
        let mut g = self.observe(group_info);
        bytes(&g.propose_remove(leaf, Vec::new()).unwrap_or_else(|e| panic!("{}: mls-rs external Remove: {e:?}", self.name)))
    }
}

// ---------------------------------------------------------------------------
// A script actor played by mls-rs (mls_interop::scripts::Client).
// ---------------------------------------------------------------------------

use mls_interop::scripts::{
    self, Bytes, CommitOut, Failure, Library, Outcome, ProposalSpec, SentProposals, Tx, Welcomed, failed, wire,
};

fn unsupported<T>(reason: &str) -> Outcome<T> {
    Err(Failure::Unsupported { library: Library::MlsRs, reason: reason.into() })
}

fn decode(bytes: &[u8]) -> Outcome<MlsMessage> {
    MlsMessage::from_bytes(bytes).map_err(failed("decode"))
}

fn encode(m: &MlsMessage) -> Outcome<Bytes> {
    m.to_bytes().map_err(failed("encode"))
}

fn tree_in(tree: Option<&[u8]>) -> Outcome<Option<ExportedTree<'static>>> {
    tree.map(|t| ExportedTree::from_bytes(t).map(ExportedTree::into_owned)).transpose().map_err(failed("ratchet tree"))
}

fn extension_list(list: &[scripts::Extension]) -> ExtensionList {
    ExtensionList::from(
        list.iter().map(|e| Extension::new(ExtensionType::new(e.extension_type), e.extension_data.clone())).collect::<Vec<_>>(),
    )
}

/// A script actor running mls-rs: one `Client` per cipher suite (an mls-rs
/// client signs for one suite), each with its own signature key of the
/// suite, made when the suite is first needed, and all with the same
/// external PSKs; the MLS rules carry the handshake mode, the path and tree
/// choices of the next Commit.
pub struct MlsRsClient {
    name: String,
    keys: Vec<(u16, mls_rs::crypto::SignatureSecretKey, SigningIdentity)>,
    clients: Vec<(u16, Client<Config>)>,
    rules: Switches,
    psks: Vec<(Bytes, Bytes)>,
    group: Option<Group<Config>>,
    sent: SentProposals,
    reinit: Option<mls_rs::group::ReinitClient<Config>>,
    /// The suite of the ReInit its last Commit merged (`CommitEffect::ReInit`).
    reinit_suite: Option<u16>,
    external_signer: Option<(mls_rs::crypto::SignatureSecretKey, SigningIdentity)>,
}

fn unsupported_suite<T>(suite: u16) -> Outcome<T> {
    Err(Failure::Unsupported { library: Library::MlsRs, reason: format!("RustCryptoProvider has no cipher suite 0x{suite:04x}") })
}

/// The new suite of a ReInit that a Commit merged, if any.
fn reinit_suite(effect: &CommitEffect) -> Option<u16> {
    match effect {
        CommitEffect::ReInit(r) => Some(u16::from(r.proposal.new_cipher_suite())),
        _ => None,
    }
}

impl MlsRsClient {
    /// A client for the actor `name`.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            keys: Vec::new(),
            clients: Vec::new(),
            rules: Switches::default(),
            psks: Vec::new(),
            group: None,
            sent: SentProposals::default(),
            reinit: None,
            reinit_suite: None,
            external_signer: None,
        }
    }

    /// Its signature key and signing identity for `suite`, made the first time.
    fn keys(&mut self, suite: u16) -> Outcome<(mls_rs::crypto::SignatureSecretKey, SigningIdentity)> {
        if let Some((_, secret, identity)) = self.keys.iter().find(|(s, _, _)| *s == suite) {
            return Ok((secret.clone(), identity.clone()));
        }
        let Some(provider) = RustCryptoProvider::default().cipher_suite_provider(CipherSuite::from(suite)) else {
            return unsupported_suite(suite);
        };
        let (secret, public) = provider.signature_key_generate().map_err(failed("signature key"))?;
        let identity = SigningIdentity::new(BasicCredential::new(self.name.as_bytes().to_vec()).into_credential(), public);
        self.keys.push((suite, secret.clone(), identity.clone()));
        Ok((secret, identity))
    }

    /// Its client for `suite`.
    fn client(&mut self, suite: u16) -> Outcome<&Client<Config>> {
        if let Some(i) = self.clients.iter().position(|(s, _)| *s == suite) {
            return Ok(&self.clients[i].1);
        }
        let (secret, identity) = self.keys(suite)?;
        let client = Client::builder()
            .mls_rules(self.rules.clone())
            .crypto_provider(RustCryptoProvider::default())
            .identity_provider(BasicIdentityProvider::new())
            .signing_identity(identity, secret, CipherSuite::from(suite))
            // mls-rs defaults to a year; ours accepts at most 90 days.
            .key_package_lifetime(std::time::Duration::from_secs(30 * 86_400))
            .build();
        for (id, secret) in &self.psks {
            client.secret_store().insert(ExternalPskId::new(id.clone()), PreSharedKey::new(secret.clone()));
        }
        self.clients.push((suite, client));
        Ok(&self.clients[self.clients.len() - 1].1)
    }

    fn group(&mut self) -> Outcome<&mut Group<Config>> {
        self.group.as_mut().ok_or_else(|| Failure::Failed("no group".into()))
    }

    fn epoch_authenticator(&mut self) -> Outcome<Bytes> {
        Ok(self.group()?.epoch_authenticator().map_err(failed("epoch authenticator"))?.to_vec())
    }

    fn set_mode(&self, encrypt: bool) {
        self.rules.private_handshake.store(encrypt, Ordering::Relaxed);
    }

    /// The next Commit's path and tree choices.
    fn set_commit(&self, force_path: bool, external_tree: bool) {
        self.rules.path_on_add.store(force_path, Ordering::Relaxed);
        self.rules.tree_in_welcome.store(!external_tree, Ordering::Relaxed);
    }

    fn leaf_of(&mut self, identity: &[u8]) -> Outcome<u32> {
        let found = self
            .group()?
            .roster()
            .members_iter()
            .find(|m| matches!(&m.signing_identity.credential, Credential::Basic(b) if b.identifier == identity))
            .map(|m| m.index);
        found.ok_or_else(|| Failure::Failed(format!("no member {:?}", String::from_utf8_lossy(identity))))
    }

    /// Processes the proposal messages it did not send (mls-rs caches them).
    fn take_proposals(&mut self, proposals: &[Bytes]) -> Outcome<()> {
        let others: Vec<Bytes> = self.sent.others(proposals).into_iter().cloned().collect();
        for p in others {
            let m = decode(&p)?;
            match self.group()?.process_incoming_message(m).map_err(failed("proposal"))? {
                ReceivedMessage::Proposal(_) => {}
                other => return Err(Failure::Failed(format!("expected a proposal, got {other:?}"))),
            }
        }
        Ok(())
    }

    fn sent(&mut self, m: &MlsMessage) -> Outcome<Bytes> {
        let b = encode(m)?;
        self.sent.sent(&b);
        Ok(b)
    }

    /// After a ReInit Commit: the old group becomes a `ReinitClient` (with
    /// its key of the new suite) and makes a KeyPackage for the new group.
    fn start_reinit(&mut self, ea: Bytes) -> Outcome<(Bytes, Bytes)> {
        let suite = self.reinit_suite.take().ok_or_else(|| Failure::Failed("the Commit held no ReInit".into()))?;
        let (secret, identity) = self.keys(suite)?;
        let g = self.group.take().ok_or_else(|| Failure::Failed("no group".into()))?;
        let rc = g.get_reinit_client(Some(secret), Some(identity)).map_err(failed("reinit client"))?;
        let kp = encode(&rc.generate_key_package(None).map_err(failed("reinit KeyPackage"))?)?;
        self.reinit = Some(rc);
        Ok((kp, ea))
    }

    fn welcomed(&mut self, welcomes: &[MlsMessage], external_tree: bool) -> Outcome<Welcomed> {
        let welcome = welcomes.first().map(encode).transpose()?.unwrap_or_default();
        let ratchet_tree =
            if external_tree { self.group()?.export_tree().to_bytes().map_err(failed("tree"))? } else { Vec::new() };
        Ok(Welcomed { welcome, ratchet_tree, epoch_authenticator: self.epoch_authenticator()? })
    }
}

impl scripts::Client for MlsRsClient {
    fn library(&self) -> Library {
        Library::MlsRs
    }

    fn create_group(&mut self, group_id: &[u8], suite: u16, encrypt: bool) -> Outcome<()> {
        self.set_mode(encrypt);
        let g = self
            .client(suite)?
            .create_group_with_id(group_id.to_vec(), ExtensionList::default(), ExtensionList::default(), None)
            .map_err(failed("create"))?;
        self.group = Some(g);
        Ok(())
    }

    fn create_key_package(&mut self, suite: u16) -> Outcome<(Tx, Bytes)> {
        let kp = self
            .client(suite)?
            .generate_key_package_message(ExtensionList::default(), ExtensionList::default(), None)
            .map_err(failed("KeyPackage"))?;
        Ok((Tx(0), encode(&kp)?))
    }

    fn join_group(&mut self, _tx: Tx, welcome: &[u8], encrypt: bool, ratchet_tree: Option<&[u8]>) -> Outcome<Bytes> {
        self.set_mode(encrypt);
        let w = decode(welcome)?;
        let suite = w.cipher_suite().map(u16::from).ok_or_else(|| Failure::Failed("no cipher suite".into()))?;
        let tree = tree_in(ratchet_tree)?;
        let (g, _) = self.client(suite)?.join_group(tree, &w, None).map_err(failed("join"))?;
        self.group = Some(g);
        self.sent.clear();
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
        self.set_mode(encrypt);
        let fields = wire::group_info(group_info).ok_or_else(|| Failure::Failed("not a GroupInfo".into()))?;
        for (id, secret) in psks {
            scripts::Client::store_psk(self, id, secret)?;
        }
        let mut b = self.client(fields.cipher_suite)?.external_commit_builder().map_err(failed("external commit"))?;
        if let Some(t) = tree_in(ratchet_tree)? {
            b = b.with_tree_data(t);
        }
        if remove_prior {
            let tree = fields.ratchet_tree().or(ratchet_tree).ok_or_else(|| Failure::Failed("no ratchet tree".into()))?;
            let leaf = wire::leaf_by_identity(tree, self.name.as_bytes())
                .ok_or_else(|| Failure::Failed("no prior leaf to remove".into()))?;
            b = b.with_removal(leaf);
        }
        for (id, _) in psks {
            b = b.with_external_psk(ExternalPskId::new(id.clone()));
        }
        let (g, commit) = b.build(decode(group_info)?).map_err(failed("external commit"))?;
        self.group = Some(g);
        self.sent.clear();
        Ok((encode(&commit)?, self.epoch_authenticator()?))
    }

    fn group_info(&mut self, external_tree: bool) -> Outcome<(Bytes, Bytes)> {
        let g = self.group()?;
        let gi = g.group_info_message_allowing_ext_commit(!external_tree).map_err(failed("GroupInfo"))?;
        let tree = if external_tree { g.export_tree().to_bytes().map_err(failed("tree"))? } else { Vec::new() };
        Ok((encode(&gi)?, tree))
    }

    fn store_psk(&mut self, id: &[u8], secret: &[u8]) -> Outcome<()> {
        self.psks.push((id.to_vec(), secret.to_vec()));
        for (_, c) in &self.clients {
            c.secret_store().insert(ExternalPskId::new(id.to_vec()), PreSharedKey::new(secret.to_vec()));
        }
        Ok(())
    }

    fn propose(&mut self, spec: &ProposalSpec) -> Outcome<Bytes> {
        let m = match spec {
            ProposalSpec::Add(kp) => self.group()?.propose_add(decode(kp)?, Vec::new()),
            ProposalSpec::Remove(identity) => {
                let leaf = self.leaf_of(identity)?;
                self.group()?.propose_remove(leaf, Vec::new())
            }
            ProposalSpec::ExternalPsk(id) => self.group()?.propose_external_psk(ExternalPskId::new(id.clone()), Vec::new()),
            ProposalSpec::ResumptionPsk(epoch) => self.group()?.propose_resumption_psk(*epoch, Vec::new()),
            ProposalSpec::GroupContextExtensions(list) => {
                self.group()?.propose_group_context_extensions(extension_list(list), Vec::new())
            }
            ProposalSpec::ReInit { group_id, suite, extensions } => self.group()?.propose_reinit(
                Some(group_id.clone()),
                mls_rs::ProtocolVersion::MLS_10,
                CipherSuite::from(*suite),
                extension_list(extensions),
                Vec::new(),
            ),
        }
        .map_err(failed("propose"))?;
        self.sent(&m)
    }

    fn propose_update(&mut self) -> Outcome<Bytes> {
        let m = self.group()?.propose_update(Vec::new()).map_err(failed("propose update"))?;
        self.sent(&m)
    }

    fn commit(&mut self, by_reference: &[Bytes], by_value: &[ProposalSpec], force_path: bool, external_tree: bool) -> Outcome<CommitOut> {
        self.take_proposals(by_reference)?;
        let removed: Vec<u32> = by_value
            .iter()
            .filter_map(|s| if let ProposalSpec::Remove(id) = s { Some(id.clone()) } else { None })
            .map(|id| self.leaf_of(&id))
            .collect::<Outcome<_>>()?;
        self.set_commit(force_path, external_tree);
        let mut removed = removed.into_iter();
        let mut b = self.group()?.commit_builder();
        for spec in by_value {
            b = match spec {
                ProposalSpec::Add(kp) => b.add_member(decode(kp)?),
                ProposalSpec::Remove(_) => b.remove_member(removed.next().unwrap_or(u32::MAX)),
                ProposalSpec::ExternalPsk(id) => b.add_external_psk(ExternalPskId::new(id.clone())),
                ProposalSpec::ResumptionPsk(epoch) => b.add_resumption_psk(*epoch),
                ProposalSpec::GroupContextExtensions(list) => b.set_group_context_ext(extension_list(list)),
                ProposalSpec::ReInit { group_id, suite, extensions } => b.reinit(
                    Some(group_id.clone()),
                    mls_rs::ProtocolVersion::MLS_10,
                    CipherSuite::from(*suite),
                    extension_list(extensions),
                ),
            }
            .map_err(failed("commit proposal"))?;
        }
        let out = b.build().map_err(failed("commit"))?;
        let ratchet_tree = match out.ratchet_tree() {
            Some(t) if external_tree => t.to_bytes().map_err(failed("tree"))?,
            _ => Vec::new(),
        };
        Ok(CommitOut {
            commit: encode(out.commit_message())?,
            welcome: out.welcome_messages().first().map(encode).transpose()?.unwrap_or_default(),
            ratchet_tree,
        })
    }

    fn handle_pending_commit(&mut self) -> Outcome<Bytes> {
        let d = self.group()?.apply_pending_commit().map_err(failed("apply pending commit"))?;
        self.reinit_suite = reinit_suite(&d.effect);
        self.sent.clear();
        self.epoch_authenticator()
    }

    fn handle_commit(&mut self, proposals: &[Bytes], commit: &[u8]) -> Outcome<Bytes> {
        self.take_proposals(proposals)?;
        match self.group()?.process_incoming_message(decode(commit)?).map_err(failed("commit"))? {
            ReceivedMessage::Commit(d) => self.reinit_suite = reinit_suite(&d.effect),
            other => return Err(Failure::Failed(format!("expected a Commit, got {other:?}"))),
        }
        self.sent.clear();
        self.epoch_authenticator()
    }

    fn protect(&mut self, authenticated_data: &[u8], plaintext: &[u8]) -> Outcome<Bytes> {
        let m = self.group()?.encrypt_application_message(plaintext, authenticated_data.to_vec()).map_err(failed("protect"))?;
        encode(&m)
    }

    fn unprotect(&mut self, ciphertext: &[u8]) -> Outcome<(Bytes, Bytes)> {
        match self.group()?.process_incoming_message(decode(ciphertext)?).map_err(failed("unprotect"))? {
            ReceivedMessage::ApplicationMessage(a) => Ok((a.authenticated_data.clone(), a.data().to_vec())),
            other => Err(Failure::Failed(format!("expected application data, got {other:?}"))),
        }
    }

    fn reinit_commit(&mut self, proposals: &[Bytes]) -> Outcome<Bytes> {
        Ok(scripts::Client::commit(self, proposals, &[], false, false)?.commit)
    }

    fn handle_pending_reinit_commit(&mut self) -> Outcome<(Bytes, Bytes)> {
        let ea = scripts::Client::handle_pending_commit(self)?;
        self.start_reinit(ea)
    }

    fn handle_reinit_commit(&mut self, proposals: &[Bytes], commit: &[u8]) -> Outcome<(Bytes, Bytes)> {
        let ea = scripts::Client::handle_commit(self, proposals, commit)?;
        self.start_reinit(ea)
    }

    fn reinit_welcome(&mut self, key_packages: &[Bytes], force_path: bool, external_tree: bool) -> Outcome<Welcomed> {
        let rc = self.reinit.take().ok_or_else(|| Failure::Failed("no ReInit".into()))?;
        self.set_commit(force_path, external_tree);
        let kps = key_packages.iter().map(|k| decode(k)).collect::<Outcome<Vec<_>>>()?;
        let (g, welcomes) = rc.commit(kps, ExtensionList::default(), None).map_err(failed("reinit commit"))?;
        self.group = Some(g);
        self.sent.clear();
        self.welcomed(&welcomes, external_tree)
    }

    fn handle_reinit_welcome(&mut self, welcome: &[u8], ratchet_tree: Option<&[u8]>) -> Outcome<Bytes> {
        let rc = self.reinit.take().ok_or_else(|| Failure::Failed("no ReInit".into()))?;
        let (g, _) = rc.join(&decode(welcome)?, tree_in(ratchet_tree)?, None).map_err(failed("reinit join"))?;
        self.group = Some(g);
        self.sent.clear();
        self.epoch_authenticator()
    }

    fn create_branch(
        &mut self,
        group_id: &[u8],
        extensions: &[scripts::Extension],
        key_packages: &[Bytes],
        force_path: bool,
        external_tree: bool,
    ) -> Outcome<Welcomed> {
        if extension_list(extensions) != self.group()?.context().extensions {
            return unsupported(
                "Group::branch gives the subgroup the old group's GroupContext extensions, and takes no others",
            );
        }
        self.set_commit(force_path, external_tree);
        let kps = key_packages.iter().map(|k| decode(k)).collect::<Outcome<Vec<_>>>()?;
        let (g, welcomes) = self.group()?.branch(group_id.to_vec(), kps, None).map_err(failed("branch"))?;
        self.group = Some(g);
        self.sent.clear();
        self.welcomed(&welcomes, external_tree)
    }

    fn handle_branch(&mut self, _tx: Tx, welcome: &[u8], ratchet_tree: Option<&[u8]>) -> Outcome<Bytes> {
        let w = decode(welcome)?;
        let tree = tree_in(ratchet_tree)?;
        let (g, _) = match self.group()?.join_subgroup(&w, tree, None) {
            Err(mls_rs::error::MlsError::ReInitExtensionsMismatch) => return unsupported(
                "Group::join_subgroup requires the old group's GroupContext extensions in the subgroup \
                 (MlsError::ReInitExtensionsMismatch); RFC 9420 §11.3 sets no such condition",
            ),
            other => other.map_err(failed("join subgroup"))?,
        };
        self.group = Some(g);
        self.sent.clear();
        self.epoch_authenticator()
    }

    fn new_member_add_proposal(&mut self, group_info: &[u8]) -> Outcome<(Tx, Bytes)> {
        let fields = wire::group_info(group_info).ok_or_else(|| Failure::Failed("not a GroupInfo".into()))?;
        let gi = decode(group_info)?;
        let m = self
            .client(fields.cipher_suite)?
            .external_add_proposal(&gi, None, Vec::new(), ExtensionList::default(), ExtensionList::default(), None)
            .map_err(failed("external add proposal"))?;
        Ok((Tx(0), encode(&m)?))
    }

    fn create_external_signer(&mut self, suite: u16) -> Outcome<Bytes> {
        use mls_rs::mls_rs_codec::MlsEncode;
        let (secret, public) = RustCryptoProvider::default()
            .cipher_suite_provider(CipherSuite::from(suite))
            .ok_or_else(|| Failure::Failed("cipher suite".into()))?
            .signature_key_generate()
            .map_err(failed("signature key"))?;
        let identity = SigningIdentity::new(BasicCredential::new(self.name.as_bytes().to_vec()).into_credential(), public);
        let mut entry = identity.signature_key.mls_encode_to_vec().map_err(failed("encode"))?;
        entry.extend(identity.credential.mls_encode_to_vec().map_err(failed("encode"))?);
        self.external_signer = Some((secret, identity));
        Ok(entry)
    }

    fn add_external_signer(&mut self, external_sender: &[u8]) -> Outcome<Bytes> {
        use mls_rs::mls_rs_codec::MlsEncode;
        let current = self.group()?.context().extensions.mls_encode_to_vec().map_err(failed("extensions"))?;
        let list = scripts::decode_extensions(&current).ok_or_else(|| Failure::Failed("our extensions".into()))?;
        let list = scripts::with_external_sender(&list, external_sender)
            .ok_or_else(|| Failure::Failed("malformed external_senders".into()))?;
        self.propose(&ProposalSpec::GroupContextExtensions(list))
    }

    fn external_signer_proposal(&mut self, group_info: &[u8], ratchet_tree: &[u8], spec: &ProposalSpec) -> Outcome<Bytes> {
        let (secret, identity) = self.external_signer.clone().ok_or_else(|| Failure::Failed("not an external signer".into()))?;
        let client = mls_rs::external_client::ExternalClient::builder()
            .crypto_provider(RustCryptoProvider::default())
            .identity_provider(BasicIdentityProvider::new())
            .signer(secret, identity)
            .build();
        let tree = tree_in((!ratchet_tree.is_empty()).then_some(ratchet_tree))?;
        let mut g = client.observe_group(decode(group_info)?, tree, None).map_err(failed("observe group"))?;
        let m = match spec {
            ProposalSpec::Add(kp) => g.propose_add(decode(kp)?, Vec::new()),
            ProposalSpec::Remove(identity) => {
                let leaf = g
                    .roster()
                    .members_iter()
                    .find(|m| matches!(&m.signing_identity.credential, Credential::Basic(b) if b.identifier == *identity))
                    .map(|m| m.index)
                    .ok_or_else(|| Failure::Failed("no such member".into()))?;
                g.propose_remove(leaf, Vec::new())
            }
            ProposalSpec::ExternalPsk(id) => g.propose_external_psk(ExternalPskId::new(id.clone()), Vec::new()),
            ProposalSpec::ResumptionPsk(epoch) => g.propose_resumption_psk(*epoch, Vec::new()),
            ProposalSpec::GroupContextExtensions(list) => g.propose_group_context_extensions(extension_list(list), Vec::new()),
            ProposalSpec::ReInit { group_id, suite, extensions } => g.propose_reinit(
                Some(group_id.clone()),
                mls_rs::ProtocolVersion::MLS_10,
                CipherSuite::from(*suite),
                extension_list(extensions),
                Vec::new(),
            ),
        }
        .map_err(failed("external proposal"))?;
        encode(&m)
    }
}
