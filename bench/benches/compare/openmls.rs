//! An OpenMLS member: `OpenMlsRustCrypto` (RustCrypto, in-memory storage),
//! a basic credential, its own Ed25519 key; handshakes as PublicMessage,
//! the ratchet tree in the Welcome, default padding.
//!
//! Its KeyPackages are marked last resort so that one member can join from
//! the same Welcome again and again (OpenMLS otherwise deletes the private
//! key at the join; that deletion is skipped, a small saving for OpenMLS).

use super::{GROUP_ID, Lib, Member};
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;

const SUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519;

/// OpenMLS 0.9.
pub struct OpenMls;

/// A member running OpenMLS.
pub struct OpenMlsMember {
    provider: OpenMlsRustCrypto,
    signer: SignatureKeyPair,
    credential: CredentialWithKey,
    group: Option<MlsGroup>,
}

impl Lib for OpenMls {
    const NAME: &'static str = "openmls";
    type M = OpenMlsMember;

    fn member(i: usize) -> Self::M {
        let provider = OpenMlsRustCrypto::default();
        let signer = SignatureKeyPair::new(SUITE.signature_algorithm()).expect("openmls: signature key");
        signer.store(provider.storage()).expect("openmls: store signature key");
        let credential = CredentialWithKey {
            credential: BasicCredential::new(format!("member-{i}").into_bytes()).into(),
            signature_key: signer.to_public_vec().into(),
        };
        OpenMlsMember { provider, signer, credential, group: None }
    }
}

fn bytes(m: &MlsMessageOut) -> Vec<u8> {
    m.tls_serialize_detached().expect("openmls: serialize")
}

fn protocol_message(m: &[u8]) -> ProtocolMessage {
    MlsMessageIn::tls_deserialize_exact(m)
        .expect("openmls: MLSMessage")
        .try_into_protocol_message()
        .expect("openmls: a PublicMessage or PrivateMessage")
}

impl Member for OpenMlsMember {
    fn key_package(&mut self) -> Vec<u8> {
        // The last_resort extension must be listed in the leaf's capabilities.
        let capabilities = Capabilities::builder().extensions(vec![ExtensionType::LastResort]).build();
        let bundle = KeyPackage::builder()
            .leaf_node_capabilities(capabilities)
            .mark_as_last_resort()
            .build(SUITE, &self.provider, &self.signer, self.credential.clone())
            .expect("openmls: KeyPackage");
        MlsMessageOut::from(bundle.key_package().clone()).tls_serialize_detached().expect("openmls: serialize")
    }

    fn create(&mut self) {
        let cfg = MlsGroupCreateConfig::builder()
            .ciphersuite(SUITE)
            .wire_format_policy(MIXED_PLAINTEXT_WIRE_FORMAT_POLICY)
            .use_ratchet_tree_extension(true)
            .build();
        let g = MlsGroup::new_with_group_id(
            &self.provider,
            &self.signer,
            &cfg,
            GroupId::from_slice(GROUP_ID),
            self.credential.clone(),
        )
        .expect("openmls: create");
        self.group = Some(g);
    }

    fn commit_add(&mut self, kps: &[Vec<u8>], path: bool) -> (Vec<u8>, Vec<u8>) {
        let kps: Vec<KeyPackage> = kps
            .iter()
            .map(|k| match MlsMessageIn::tls_deserialize_exact(k).expect("openmls: MLSMessage").extract() {
                MlsMessageBodyIn::KeyPackage(kp) => {
                    kp.validate(self.provider.crypto(), ProtocolVersion::Mls10).expect("openmls: a valid KeyPackage")
                }
                _ => panic!("openmls: not a KeyPackage"),
            })
            .collect();
        let Self { group, provider, signer, .. } = self;
        let g = group.as_mut().expect("openmls: a group");
        let (commit, welcome, _) = if path {
            g.add_members(provider, signer, &kps)
        } else {
            g.add_members_without_update(provider, signer, &kps)
        }
        .expect("openmls: add");
        (bytes(&commit), bytes(&welcome))
    }

    fn commit_update(&mut self) -> Vec<u8> {
        let Self { group, provider, signer, .. } = self;
        let bundle = group
            .as_mut()
            .expect("openmls: a group")
            .self_update(provider, signer, LeafNodeParameters::default())
            .expect("openmls: self_update");
        bytes(bundle.commit())
    }

    fn merge(&mut self) {
        let Self { group, provider, .. } = self;
        group.as_mut().expect("openmls: a group").merge_pending_commit(provider).expect("openmls: merge");
    }

    fn discard(&mut self) {
        let Self { group, provider, .. } = self;
        group.as_mut().expect("openmls: a group").clear_pending_commit(provider.storage()).expect("openmls: clear");
    }

    fn join(&mut self, welcome: &[u8]) {
        let welcome = match MlsMessageIn::tls_deserialize_exact(welcome).expect("openmls: MLSMessage").extract() {
            MlsMessageBodyIn::Welcome(w) => w,
            _ => panic!("openmls: not a Welcome"),
        };
        let cfg = MlsGroupJoinConfig::builder()
            .wire_format_policy(MIXED_PLAINTEXT_WIRE_FORMAT_POLICY)
            .use_ratchet_tree_extension(true)
            .build();
        let staged = StagedWelcome::new_from_welcome(&self.provider, &cfg, welcome, None).expect("openmls: Welcome");
        self.group = Some(staged.into_group(&self.provider).expect("openmls: join"));
    }

    fn leave(&mut self) {
        if let Some(mut g) = self.group.take() {
            g.delete(self.provider.storage()).expect("openmls: delete the group");
        }
    }

    fn process(&mut self, commit: &mut [u8]) {
        let pm = protocol_message(commit);
        let Self { group, provider, .. } = self;
        let g = group.as_mut().expect("openmls: a group");
        match g.process_message(provider, pm).expect("openmls: process").into_content() {
            ProcessedMessageContent::StagedCommitMessage(sc) => {
                g.merge_staged_commit(provider, *sc).expect("openmls: merge staged")
            }
            _ => panic!("openmls: not a Commit"),
        }
    }

    fn protect(&mut self, data: &[u8]) -> Vec<u8> {
        let Self { group, provider, signer, .. } = self;
        bytes(&group.as_mut().expect("openmls: a group").create_message(provider, signer, data).expect("openmls: protect"))
    }

    fn unprotect(&mut self, message: &mut [u8]) -> usize {
        let pm = protocol_message(message);
        let provider = &self.provider;
        let g = self.group.as_mut().expect("openmls: a group");
        match g.process_message(provider, pm).expect("openmls: unprotect").into_content() {
            ProcessedMessageContent::ApplicationMessage(a) => a.into_bytes().len(),
            _ => panic!("openmls: not application data"),
        }
    }

    fn epoch_authenticator(&self) -> Vec<u8> {
        self.group.as_ref().expect("openmls: a group").epoch_authenticator().as_slice().to_vec()
    }
}
