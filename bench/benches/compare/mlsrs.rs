//! An mls-rs member: `RustCryptoProvider`, the in-memory storage of
//! `ClientBuilder::new()`, a basic credential, its own Ed25519 key; its
//! `MlsRules` put the ratchet tree into Welcomes, send handshakes as
//! PublicMessage, pad application messages not at all (as ours and OpenMLS
//! by default), and add a path to Add-only Commits when asked.

use super::{GROUP_ID, Lib, Member};
use mls_rs::client_builder::{BaseConfig, PaddingMode, WithCryptoProvider, WithIdentityProvider, WithMlsRules};
use mls_rs::group::{GroupContext, ReceivedMessage, Roster};
use mls_rs::identity::SigningIdentity;
use mls_rs::identity::basic::{BasicCredential, BasicIdentityProvider};
use mls_rs::mls_rules::{CommitDirection, CommitOptions, CommitSource, EncryptionOptions, ProposalBundle};
use mls_rs::{CipherSuite, CipherSuiteProvider, Client, CryptoProvider, ExtensionList, Group, MlsMessage, MlsRules};
use mls_rs_crypto_rustcrypto::RustCryptoProvider;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// MLS rules with a switch for the path on Add-only Commits.
#[derive(Clone, Debug, Default)]
pub struct Rules {
    path_on_add: Arc<AtomicBool>,
}

impl MlsRules for Rules {
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
            .with_ratchet_tree_extension(true))
    }

    fn encryption_options(&self, _: &Roster, _: &GroupContext) -> Result<EncryptionOptions, Infallible> {
        Ok(EncryptionOptions::new(false, PaddingMode::None))
    }
}

type Config = WithIdentityProvider<BasicIdentityProvider, WithCryptoProvider<RustCryptoProvider, WithMlsRules<Rules, BaseConfig>>>;

/// mls-rs 0.57.
pub struct MlsRs;

/// A member running mls-rs.
pub struct MlsRsMember {
    client: Client<Config>,
    rules: Rules,
    group: Option<Group<Config>>,
}

impl Lib for MlsRs {
    const NAME: &'static str = "mls-rs";
    type M = MlsRsMember;

    fn member(i: usize) -> Self::M {
        let suite = CipherSuite::CURVE25519_CHACHA;
        let crypto = RustCryptoProvider::default();
        let (secret, public) =
            crypto.cipher_suite_provider(suite).expect("mls-rs: suite 3").signature_key_generate().expect("mls-rs: key");
        let identity = SigningIdentity::new(BasicCredential::new(format!("member-{i}").into_bytes()).into_credential(), public);
        let rules = Rules::default();
        let client = Client::builder()
            .mls_rules(rules.clone())
            .crypto_provider(crypto)
            .identity_provider(BasicIdentityProvider::new())
            .signing_identity(identity, secret, suite)
            .build();
        MlsRsMember { client, rules, group: None }
    }
}

fn msg(bytes: &[u8]) -> MlsMessage {
    MlsMessage::from_bytes(bytes).expect("mls-rs: MLSMessage")
}

fn bytes(m: &MlsMessage) -> Vec<u8> {
    m.to_bytes().expect("mls-rs: serialize")
}

impl MlsRsMember {
    fn group(&mut self) -> &mut Group<Config> {
        self.group.as_mut().expect("mls-rs: a group")
    }
}

impl Member for MlsRsMember {
    fn key_package(&mut self) -> Vec<u8> {
        let kp = self
            .client
            .generate_key_package_message(ExtensionList::default(), ExtensionList::default(), None)
            .expect("mls-rs: KeyPackage");
        bytes(&kp)
    }

    fn create(&mut self) {
        let g = self
            .client
            .create_group_with_id(GROUP_ID.to_vec(), ExtensionList::default(), ExtensionList::default(), None)
            .expect("mls-rs: create");
        self.group = Some(g);
    }

    fn commit_add(&mut self, kps: &[Vec<u8>], path: bool) -> (Vec<u8>, Vec<u8>) {
        self.rules.path_on_add.store(path, Ordering::Relaxed);
        let mut b = self.group().commit_builder();
        for kp in kps {
            b = b.add_member(msg(kp)).expect("mls-rs: add_member");
        }
        let out = b.build().expect("mls-rs: commit");
        (bytes(out.commit_message()), bytes(&out.welcome_messages()[0]))
    }

    fn commit_update(&mut self) -> Vec<u8> {
        let out = self.group().commit(Vec::new()).expect("mls-rs: empty commit");
        bytes(out.commit_message())
    }

    fn merge(&mut self) {
        self.group().apply_pending_commit().expect("mls-rs: apply_pending_commit");
    }

    fn discard(&mut self) {
        self.group().clear_pending_commit();
    }

    fn join(&mut self, welcome: &[u8]) {
        let (g, _) = self.client.join_group(None, &msg(welcome), None).expect("mls-rs: join");
        self.group = Some(g);
    }

    fn leave(&mut self) {
        self.group = None;
    }

    fn process(&mut self, commit: &mut [u8]) {
        match self.group().process_incoming_message(msg(commit)).expect("mls-rs: process") {
            ReceivedMessage::Commit(_) => {}
            other => panic!("mls-rs: not a Commit: {other:?}"),
        }
    }

    fn protect(&mut self, data: &[u8]) -> Vec<u8> {
        bytes(&self.group().encrypt_application_message(data, Vec::new()).expect("mls-rs: protect"))
    }

    fn unprotect(&mut self, message: &mut [u8]) -> usize {
        match self.group().process_incoming_message(msg(message)).expect("mls-rs: unprotect") {
            ReceivedMessage::ApplicationMessage(a) => a.data().len(),
            other => panic!("mls-rs: not application data: {other:?}"),
        }
    }

    fn epoch_authenticator(&self) -> Vec<u8> {
        self.group.as_ref().expect("mls-rs: a group").epoch_authenticator().expect("mls-rs: epoch authenticator").to_vec()
    }
}
