//! Bad input for message protection (RFC 9420 §6.1–§6.3): tampered, misdirected,
//! replayed and premature messages, each refused with its own error, and a
//! receiver whose state is unchanged by every refusal (the untampered message
//! still unprotects afterwards). Fixtures are protected with our own functions
//! and fixed keys; a small independent re-implementation of §6.3 (`reseal`)
//! forges PrivateMessages that only an insider holding the epoch's keys could
//! make (non-zero padding, bad signatures, other senders).
use mls_nostd::codec::{CodecError, Decode, Encode, Writer};
use mls_nostd::crypto::signature::{SignaturePrivateKey, SignaturePublicKey};
use mls_nostd::crypto::{CipherSuite, Secret};
use mls_nostd::group_context::GroupContext;
use mls_nostd::messages::private_message::{self, ratchet_kind};
use mls_nostd::messages::public_message;
use mls_nostd::messages::{
    Commit, Content, ContentType, EncodedGroupContext, FramedContent, FramedContentAuthData, FramedContentTbs,
    ListView, MlsMessage, MlsMessageBody, PrivateMessage, PrivateMessageKeys, Proposal, ProtectionError, PublicMessage,
    Remove, Sender, WIRE_FORMAT_PUBLIC_MESSAGE,
};
use mls_nostd::secret_tree::{SecretTree, SecretTreeConfig, SecretTreeError, sender_data_key_nonce};
use mls_nostd::tree_math::LeafIndex;

const GROUP_ID: &[u8] = b"bad-input group";
const EPOCH: u64 = 42;
/// The sender of every fixture; leaves 0 and 2 are members too, leaf 3 is blank.
const SENDER: u32 = 1;
const APPLICATION_DATA: [u8; 100] = [0x61; 100];

type Tree = SecretTree<4, 16>;

mod common;
use common::TestRng;

fn encode_context(suite: CipherSuite, group_id: &[u8], epoch: u64) -> Vec<u8> {
    let gc = GroupContext {
        cipher_suite: suite,
        group_id,
        epoch,
        tree_hash: &[5; 32],
        confirmed_transcript_hash: &[6; 32],
        extensions: &[],
    };
    let mut buf = vec![0u8; gc.encoded_len().unwrap()];
    gc.encode_to(&mut buf).unwrap();
    buf
}

/// Fixed keys of one epoch of a 4-leaf group.
struct Fixture {
    suite: CipherSuite,
    context: Vec<u8>,
    sk: SignaturePrivateKey,
    pk: SignaturePublicKey,
    other_pk: SignaturePublicKey,
    encryption_secret: Secret,
    sender_data_secret: Secret,
    membership_key: Secret,
    rng: TestRng,
}

impl Fixture {
    fn new(suite: CipherSuite) -> Self {
        let sk = common::signer(suite, 1);
        let other = common::signer(suite, 9);
        Self {
            suite,
            context: encode_context(suite, GROUP_ID, EPOCH),
            pk: sk.public_key(),
            sk,
            other_pk: other.public_key(),
            encryption_secret: Secret::from_slice(&vec![2; suite.hash_len()]).unwrap(),
            sender_data_secret: Secret::from_slice(&vec![3; suite.hash_len()]).unwrap(),
            membership_key: Secret::from_slice(&vec![4; suite.hash_len()]).unwrap(),
            rng: TestRng(1),
        }
    }

    fn gc(&self) -> EncodedGroupContext<'_> {
        EncodedGroupContext::decode(&self.context).unwrap()
    }

    fn tree(&self, max_forward_distance: u32) -> Tree {
        Tree::new(self.suite, 4, &self.encryption_secret, SecretTreeConfig { max_forward_distance }).unwrap()
    }

    /// Leaves 0..=2 are members with the fixture's key; leaf 3 is blank.
    fn member_key(&self, leaf: LeafIndex) -> Option<SignaturePublicKey> {
        (leaf.0 < 3).then_some(self.pk)
    }

    fn proposal(&self, sender: Sender) -> FramedContent<'static> {
        FramedContent {
            group_id: GROUP_ID,
            epoch: EPOCH,
            sender,
            authenticated_data: b"ad",
            content: Content::Proposal(Proposal::Remove(Remove { removed: 2 })),
        }
    }

    fn application(&self) -> FramedContent<'static> {
        FramedContent {
            group_id: GROUP_ID,
            epoch: EPOCH,
            sender: Sender::Member(SENDER),
            authenticated_data: b"ad",
            content: Content::Application(&APPLICATION_DATA),
        }
    }

    fn protect_public(&self, content: &FramedContent<'_>) -> Vec<u8> {
        let mut out = vec![0u8; 1024];
        let key = matches!(content.sender, Sender::Member(_)).then_some(&self.membership_key);
        public_message::protect(&self.gc(), &self.sk, content, key, &mut out).unwrap().to_vec()
    }

    fn unprotect_public(&self, message: &[u8]) -> Result<(), ProtectionError> {
        self.unprotect_public_with(&self.gc(), &self.membership_key, message, Some(self.pk))
    }

    fn unprotect_public_with(
        &self,
        gc: &EncodedGroupContext<'_>,
        membership_key: &Secret,
        message: &[u8],
        key: Option<SignaturePublicKey>,
    ) -> Result<(), ProtectionError> {
        public_message::unprotect(gc, membership_key, message, &mut |_| key).map(|ac| {
            assert_eq!(ac.wire_format, WIRE_FORMAT_PUBLIC_MESSAGE);
        })
    }

    /// An application message from the sender, the next on `tx`.
    fn protect_private(&mut self, tx: &mut Tree, padding: usize) -> Vec<u8> {
        let mut out = vec![0u8; 1024];
        let content = self.application();
        let mut keys = PrivateMessageKeys { secret_tree: tx, sender_data_secret: &self.sender_data_secret };
        let gc = EncodedGroupContext::decode(&self.context).unwrap();
        private_message::protect(&gc, &mut keys, &self.sk, &content, padding, &mut self.rng, &mut out).unwrap().to_vec()
    }

    fn unprotect_private(&self, rx: &mut Tree, message: &[u8]) -> Result<Vec<u8>, ProtectionError> {
        self.unprotect_private_with(&self.gc(), rx, message, &mut |leaf| self.member_key(leaf))
    }

    /// Unprotects a copy of `message`; returns the application data.
    fn unprotect_private_with(
        &self,
        gc: &EncodedGroupContext<'_>,
        rx: &mut Tree,
        message: &[u8],
        sender_key: &mut dyn FnMut(LeafIndex) -> Option<SignaturePublicKey>,
    ) -> Result<Vec<u8>, ProtectionError> {
        let mut buf = message.to_vec();
        let mut keys = PrivateMessageKeys { secret_tree: rx, sender_data_secret: &self.sender_data_secret };
        let ac = private_message::unprotect(gc, &mut keys, &mut buf, sender_key)?;
        assert_eq!(ac.content.sender, Sender::Member(SENDER));
        match ac.content.content {
            Content::Application(data) => Ok(data.to_vec()),
            other => panic!("unexpected content {other:?}"),
        }
    }
}

/// A tampering: unprotects a changed copy of a valid message with the receiver.
type Tamper = dyn Fn(&Fixture, &[u8], &mut Tree) -> Result<Vec<u8>, ProtectionError>;

fn flip(message: &[u8], at: usize) -> Vec<u8> {
    let mut m = message.to_vec();
    m[at] ^= 0x01;
    m
}

/// Offsets of a PublicMessage from a member: (content, signature, membership tag).
fn public_offsets(message: &[u8]) -> (std::ops::Range<usize>, std::ops::Range<usize>, std::ops::Range<usize>) {
    let MlsMessageBody::PublicMessage(pm) = MlsMessage::decode_exact(message).unwrap().body else { panic!() };
    let content = 4..4 + pm.content_bytes().len();
    let sig_len = pm.auth.signature.len();
    let prefix = if sig_len < 64 { 1 } else { 2 };
    let signature = content.end + prefix..content.end + prefix + sig_len;
    let tag = message.len() - pm.membership_tag.map_or(0, |t| t.len())..message.len();
    (content, signature, tag)
}

/// Recomputes the membership tag of a (tampered) member PublicMessage: what
/// an insider holding the membership key could do.
fn remac(fx: &Fixture, message: &mut [u8]) {
    let copy = message.to_vec();
    let MlsMessageBody::PublicMessage(pm) = MlsMessage::decode_exact(&copy).unwrap().body else { panic!() };
    let tbs = FramedContentTbs::new(WIRE_FORMAT_PUBLIC_MESSAGE, pm.content_bytes(), &fx.context).unwrap();
    let tag = tbs.membership_tag(fx.suite, &fx.membership_key, &pm.auth).unwrap();
    let n = message.len();
    message[n - tag.as_bytes().len()..].copy_from_slice(tag.as_bytes());
}

#[test]
fn public_message_tampering() {
    for &suite in CipherSuite::ALL {
        let fx = Fixture::new(suite);
        let valid = fx.protect_public(&fx.proposal(Sender::Member(SENDER)));
        fx.unprotect_public(&valid).unwrap();
        let (content, signature, tag) = public_offsets(&valid);
        let group_id_byte = content.start + 1;
        let ad_byte = content.start + 1 + GROUP_ID.len() + 8 + 5 + 1;
        assert_eq!(valid[ad_byte], b'a');

        let mut remaced_sig = flip(&valid, signature.start + 10);
        remac(&fx, &mut remaced_sig);
        let mut remaced_content = flip(&valid, ad_byte);
        remac(&fx, &mut remaced_content);
        let other_context = encode_context(suite, b"other group", EPOCH);
        let next_epoch = encode_context(suite, GROUP_ID, EPOCH + 1);
        let other_key = Secret::from_slice(&vec![0x44; suite.hash_len()]).unwrap();
        let mut truncated = valid.clone();
        truncated.pop();
        let mut trailing = valid.clone();
        trailing.push(0);

        let cases: Vec<(&str, Result<(), ProtectionError>, ProtectionError)> = vec![
            // The membership tag is checked first: any change a non-member
            // makes is caught by it.
            (
                "signature byte",
                fx.unprotect_public(&flip(&valid, signature.start + 10)),
                ProtectionError::BadMembershipTag,
            ),
            ("signature byte, re-MACed", fx.unprotect_public(&remaced_sig), ProtectionError::BadSignature),
            (
                "membership tag byte",
                fx.unprotect_public(&flip(&valid, tag.start + 3)),
                ProtectionError::BadMembershipTag,
            ),
            ("content byte", fx.unprotect_public(&flip(&valid, ad_byte)), ProtectionError::BadMembershipTag),
            ("content byte, re-MACed", fx.unprotect_public(&remaced_content), ProtectionError::BadSignature),
            ("group id byte", fx.unprotect_public(&flip(&valid, group_id_byte)), ProtectionError::WrongGroupId),
            (
                "other group",
                fx.unprotect_public_with(
                    &EncodedGroupContext::decode(&other_context).unwrap(),
                    &fx.membership_key,
                    &valid,
                    Some(fx.pk),
                ),
                ProtectionError::WrongGroupId,
            ),
            (
                "other epoch",
                fx.unprotect_public_with(
                    &EncodedGroupContext::decode(&next_epoch).unwrap(),
                    &fx.membership_key,
                    &valid,
                    Some(fx.pk),
                ),
                ProtectionError::WrongEpoch,
            ),
            (
                "wrong membership key",
                fx.unprotect_public_with(&fx.gc(), &other_key, &valid, Some(fx.pk)),
                ProtectionError::BadMembershipTag,
            ),
            (
                "unknown sender",
                fx.unprotect_public_with(&fx.gc(), &fx.membership_key, &valid, None),
                ProtectionError::UnknownSender,
            ),
            (
                "other sender key",
                fx.unprotect_public_with(&fx.gc(), &fx.membership_key, &valid, Some(fx.other_pk)),
                ProtectionError::BadSignature,
            ),
            ("truncated", fx.unprotect_public(&truncated), ProtectionError::Malformed(CodecError::Truncated)),
            ("trailing byte", fx.unprotect_public(&trailing), ProtectionError::Malformed(CodecError::TrailingBytes)),
        ];
        for (what, got, want) in cases {
            assert_eq!(got, Err(want), "{suite:?}: {what}");
            fx.unprotect_public(&valid).unwrap_or_else(|e| panic!("{suite:?}: valid after {what}: {e}"));
        }

        // A non-member's message has no membership tag: the signature alone.
        let external = fx.protect_public(&fx.proposal(Sender::External(0)));
        fx.unprotect_public(&external).unwrap();
        let (content, _, _) = public_offsets(&external);
        assert_eq!(fx.unprotect_public(&flip(&external, content.end + 2)), Err(ProtectionError::BadSignature));
        assert_eq!(
            fx.unprotect_public(&flip(&external, content.start + 1 + GROUP_ID.len() + 8 + 5 + 1)),
            Err(ProtectionError::BadSignature)
        );
        fx.unprotect_public(&external).unwrap();
    }
}

#[test]
fn public_message_refusals() {
    for &suite in CipherSuite::ALL {
        let fx = Fixture::new(suite);
        let gc = fx.gc();
        let mk = Some(&fx.membership_key);
        let mut out = vec![0u8; 1024];
        // §6.2: application data is never a PublicMessage, from anyone.
        assert_eq!(
            public_message::protect(&gc, &fx.sk, &fx.application(), mk, &mut out),
            Err(ProtectionError::WrongContentType)
        );
        // §6.1: external senders propose, new members joining commit.
        let commit = Content::Commit(Commit { proposals: ListView::EMPTY, path: None });
        let external_commit =
            FramedContent { sender: Sender::External(0), content: commit, ..fx.proposal(Sender::Member(0)) };
        assert_eq!(
            public_message::sign(&gc, &fx.sk, &external_commit, &mut out).err(),
            Some(ProtectionError::InvalidSender)
        );
        assert_eq!(
            public_message::protect(&gc, &fx.sk, &fx.proposal(Sender::NewMemberCommit), None, &mut out),
            Err(ProtectionError::InvalidSender)
        );
        // A member's message needs the membership key.
        assert_eq!(
            public_message::protect(&gc, &fx.sk, &fx.proposal(Sender::Member(1)), None, &mut out),
            Err(ProtectionError::MissingMembershipKey)
        );
        // Content of another group or epoch.
        let other_group = FramedContent { group_id: b"x", ..fx.proposal(Sender::Member(1)) };
        assert_eq!(
            public_message::protect(&gc, &fx.sk, &other_group, mk, &mut out),
            Err(ProtectionError::WrongGroupId)
        );
        let other_epoch = FramedContent { epoch: 1, ..fx.proposal(Sender::Member(1)) };
        assert_eq!(public_message::protect(&gc, &fx.sk, &other_epoch, mk, &mut out), Err(ProtectionError::WrongEpoch));
        // Confirmation tags: exactly for commits, Nh bytes.
        let member_commit = FramedContent { content: commit, ..fx.proposal(Sender::Member(1)) };
        assert_eq!(
            public_message::protect(&gc, &fx.sk, &member_commit, mk, &mut out),
            Err(ProtectionError::ConfirmationTagMismatch)
        );
        let signed = public_message::sign(&gc, &fx.sk, &member_commit, &mut out).unwrap();
        assert_eq!(signed.finish(Some(&[1; 31]), mk), Err(ProtectionError::ConfirmationTagMismatch));
        let signed = public_message::sign(&gc, &fx.sk, &fx.proposal(Sender::Member(1)), &mut out).unwrap();
        assert_eq!(signed.finish(Some(&[1; 32]), mk), Err(ProtectionError::ConfirmationTagMismatch));
        let signed = public_message::sign(&gc, &fx.sk, &member_commit, &mut out).unwrap();
        let message = signed.finish(Some(&vec![1; suite.hash_len()]), mk).unwrap().to_vec();
        fx.unprotect_public(&message).unwrap();
        // Buffers too small, at every length.
        for n in 0..message.len() {
            let mut small = vec![0u8; n];
            let got = public_message::sign(&gc, &fx.sk, &member_commit, &mut small)
                .and_then(|s| s.finish(Some(&vec![1; suite.hash_len()]), mk));
            // At least one byte more than the buffer, at most the message.
            assert!(
                matches!(got, Err(ProtectionError::BufferTooSmall { needed }) if needed > n && needed <= message.len()),
                "buffer of {n}: {got:?}"
            );
        }

        // Received: application data or a sender/content mismatch, built by hand.
        let signature = [0u8; 64];
        for (sender, content, want) in [
            (Sender::External(0), Content::Application(b"x"), ProtectionError::WrongContentType),
            (Sender::Member(1), Content::Application(b"x"), ProtectionError::WrongContentType),
            (Sender::NewMemberProposal, commit, ProtectionError::InvalidSender),
            (Sender::NewMemberCommit, fx.proposal(Sender::Member(0)).content, ProtectionError::InvalidSender),
        ] {
            let content = FramedContent { sender, content, ..fx.proposal(Sender::Member(0)) };
            let tag = vec![0u8; suite.hash_len()];
            let pm = PublicMessage::decode_exact(&{
                let mut buf = vec![0u8; 512];
                let mut w = Writer::new(&mut buf);
                content.encode(&mut w).unwrap();
                let confirmation_tag = (content.content.content_type() == ContentType::Commit).then_some(&tag[..]);
                FramedContentAuthData { signature: &signature, confirmation_tag }.encode(&mut w).unwrap();
                if let Sender::Member(_) = sender {
                    w.write_opaque(&tag).unwrap();
                }
                let n = w.len();
                buf.truncate(n);
                buf
            })
            .map(|pm| {
                let mut buf = vec![0u8; 600];
                let m = MlsMessage { version: 1, body: MlsMessageBody::PublicMessage(pm) };
                m.encode_to(&mut buf).unwrap().to_vec()
            })
            .unwrap();
            assert_eq!(fx.unprotect_public(&pm), Err(want), "{sender:?}");
        }

        // Another wire format.
        let mut tx = fx.tree(10);
        let mut fx = fx;
        let private = fx.protect_private(&mut tx, 0);
        assert_eq!(fx.unprotect_public(&private), Err(ProtectionError::WrongWireFormat));
    }
}

/// The decrypted SenderData, for [`reseal`] to edit.
#[derive(Clone, Copy)]
struct SenderData {
    leaf: u32,
    generation: u32,
    reuse_guard: [u8; 4],
}

/// An independent implementation of §6.3: decrypts `message` with the
/// fixture's keys, lets `edit` change the sender data and the plaintext
/// (PrivateMessageContent), and encrypts it again. Only an insider with the
/// epoch's secrets can do this; the receiver must still refuse what the
/// signature or padding rules forbid.
fn reseal(fx: &Fixture, message: &[u8], edit: impl FnOnce(&mut SenderData, &mut Vec<u8>)) -> Vec<u8> {
    let suite = fx.suite;
    let MlsMessageBody::PrivateMessage(pm) = MlsMessage::decode_exact(message).unwrap().body else { panic!() };
    let mut sd_aad = vec![0u8; 256];
    let sd_aad = {
        let mut w = Writer::new(&mut sd_aad);
        w.write_opaque(pm.group_id).unwrap();
        w.write_u64(pm.epoch).unwrap();
        pm.content_type.encode(&mut w).unwrap();
        w.written().to_vec()
    };
    let mut content_aad = sd_aad.clone();
    content_aad.extend_from_slice(&[pm.authenticated_data.len() as u8]);
    content_aad.extend_from_slice(pm.authenticated_data);

    let (key, nonce) = sender_data_key_nonce(suite, &fx.sender_data_secret, pm.ciphertext).unwrap();
    let mut sd = pm.encrypted_sender_data[..12].to_vec();
    suite.aead_open(key.as_bytes(), &nonce, &sd_aad, &mut sd, &pm.encrypted_sender_data[12..]).unwrap();
    let mut sender_data = SenderData {
        leaf: u32::from_be_bytes(sd[..4].try_into().unwrap()),
        generation: u32::from_be_bytes(sd[4..8].try_into().unwrap()),
        reuse_guard: sd[8..12].try_into().unwrap(),
    };
    let kind = ratchet_kind(pm.content_type);
    let key_of = |sd: &SenderData| fx.tree(1000).receiving_key(LeafIndex(sd.leaf), kind, sd.generation);
    let guarded = |nonce: [u8; 12], guard: &[u8; 4]| {
        let mut n = nonce;
        n.iter_mut().zip(guard).for_each(|(n, g)| *n ^= g);
        n
    };
    let rk = key_of(&sender_data).unwrap();
    let n = pm.ciphertext.len() - 16;
    let mut plaintext = pm.ciphertext[..n].to_vec();
    let nonce = guarded(rk.nonce, &sender_data.reuse_guard);
    suite.aead_open(rk.key.as_bytes(), &nonce, &content_aad, &mut plaintext, &pm.ciphertext[n..]).unwrap();

    edit(&mut sender_data, &mut plaintext);

    // Encrypted with the key of the sender data as edited (that of the
    // original sender if the edited one has none).
    let rk = key_of(&sender_data).unwrap_or(rk);
    let nonce = guarded(rk.nonce, &sender_data.reuse_guard);
    let tag = suite.aead_seal(rk.key.as_bytes(), &nonce, &content_aad, &mut plaintext).unwrap();
    let mut ciphertext = plaintext;
    ciphertext.extend_from_slice(&tag);
    let (key, nonce) = sender_data_key_nonce(suite, &fx.sender_data_secret, &ciphertext).unwrap();
    let mut sd = Vec::new();
    sd.extend_from_slice(&sender_data.leaf.to_be_bytes());
    sd.extend_from_slice(&sender_data.generation.to_be_bytes());
    sd.extend_from_slice(&sender_data.reuse_guard);
    let tag = suite.aead_seal(key.as_bytes(), &nonce, &sd_aad, &mut sd).unwrap();
    sd.extend_from_slice(&tag);
    let resealed = PrivateMessage { encrypted_sender_data: &sd, ciphertext: &ciphertext, ..pm };
    let m = MlsMessage { version: 1, body: MlsMessageBody::PrivateMessage(resealed) };
    let mut buf = vec![0u8; message.len() + 1024];
    m.encode_to(&mut buf).unwrap().to_vec()
}

/// Re-encrypts only the sender data of `message`, edited by `edit`.
fn reseal_sender_data(fx: &Fixture, message: &[u8], edit: impl FnOnce(&mut SenderData)) -> Vec<u8> {
    let mut edited = None;
    let resealed = reseal(fx, message, |sd, _| {
        edit(sd);
        edited = Some(SenderData { ..*sd });
    });
    // The content as originally encrypted, with the new sender data.
    let sd = edited.unwrap();
    let MlsMessageBody::PrivateMessage(pm) = MlsMessage::decode_exact(message).unwrap().body else { panic!() };
    let MlsMessageBody::PrivateMessage(new) = MlsMessage::decode_exact(&resealed).unwrap().body else { panic!() };
    assert_ne!(pm.ciphertext, new.ciphertext);
    let (key, nonce) = sender_data_key_nonce(fx.suite, &fx.sender_data_secret, pm.ciphertext).unwrap();
    let mut plain = Vec::new();
    plain.extend_from_slice(&sd.leaf.to_be_bytes());
    plain.extend_from_slice(&sd.generation.to_be_bytes());
    plain.extend_from_slice(&sd.reuse_guard);
    let aad = &message[4..private_offsets(message)[3] - 1];
    let tag = fx.suite.aead_seal(key.as_bytes(), &nonce, aad, &mut plain).unwrap();
    plain.extend_from_slice(&tag);
    let mut out = message.to_vec();
    let o = private_offsets(message)[4];
    out[o..o + 28].copy_from_slice(&plain);
    out
}

/// Offsets in an MLSMessage(PrivateMessage) of the fixture: (group id,
/// epoch, content type, authenticated data, encrypted sender data, ciphertext).
fn private_offsets(message: &[u8]) -> [usize; 6] {
    let MlsMessageBody::PrivateMessage(pm) = MlsMessage::decode_exact(message).unwrap().body else { panic!() };
    let group_id = 5;
    let epoch = group_id + pm.group_id.len();
    let content_type = epoch + 8;
    let ad = content_type + 2;
    let esd = ad + pm.authenticated_data.len() + 1;
    let ciphertext = message.len() - pm.ciphertext.len();
    assert_eq!(&message[esd..esd + 28], pm.encrypted_sender_data);
    [group_id, epoch, content_type, ad, esd, ciphertext]
}

#[test]
fn private_message_tampering() {
    for &suite in CipherSuite::ALL {
        let mut fx = Fixture::new(suite);
        let mut tx = fx.tree(1000);
        let mut rx = fx.tree(1000);
        let other_context = encode_context(suite, b"other group", EPOCH);
        let next_epoch = encode_context(suite, GROUP_ID, EPOCH + 1);
        let cases: Vec<(&str, Box<Tamper>, ProtectionError)> = vec![
            (
                "sender data byte",
                Box::new(|fx, m, rx| fx.unprotect_private(rx, &flip(m, private_offsets(m)[4] + 2))),
                ProtectionError::SenderDataDecryptionFailed,
            ),
            (
                "sender data tag byte",
                Box::new(|fx, m, rx| fx.unprotect_private(rx, &flip(m, private_offsets(m)[4] + 27))),
                ProtectionError::SenderDataDecryptionFailed,
            ),
            // The first Nh bytes of the ciphertext key the sender data (§6.3.2).
            (
                "ciphertext byte in the sample",
                Box::new(|fx, m, rx| fx.unprotect_private(rx, &flip(m, private_offsets(m)[5] + 3))),
                ProtectionError::SenderDataDecryptionFailed,
            ),
            (
                "ciphertext byte after the sample",
                Box::new(|fx, m, rx| fx.unprotect_private(rx, &flip(m, private_offsets(m)[5] + fx.suite.hash_len() + 8))),
                ProtectionError::ContentDecryptionFailed,
            ),
            (
                "ciphertext tag byte",
                Box::new(|fx, m, rx| fx.unprotect_private(rx, &flip(m, m.len() - 1))),
                ProtectionError::ContentDecryptionFailed,
            ),
            // authenticated_data is in PrivateContentAAD, not SenderDataAAD.
            (
                "authenticated data byte",
                Box::new(|fx, m, rx| fx.unprotect_private(rx, &flip(m, private_offsets(m)[3]))),
                ProtectionError::ContentDecryptionFailed,
            ),
            (
                "content type",
                Box::new(|fx, m, rx| {
                    let mut t = m.to_vec();
                    t[private_offsets(m)[2]] = 2;
                    fx.unprotect_private(rx, &t)
                }),
                ProtectionError::SenderDataDecryptionFailed,
            ),
            (
                "group id byte",
                Box::new(|fx, m, rx| fx.unprotect_private(rx, &flip(m, private_offsets(m)[0]))),
                ProtectionError::WrongGroupId,
            ),
            (
                "epoch byte",
                Box::new(|fx, m, rx| fx.unprotect_private(rx, &flip(m, private_offsets(m)[1] + 7))),
                ProtectionError::WrongEpoch,
            ),
            (
                "truncated",
                Box::new(|fx, m, rx| fx.unprotect_private(rx, &m[..m.len() - 1])),
                ProtectionError::Malformed(CodecError::Truncated),
            ),
            (
                "sender unknown to the caller",
                Box::new(|fx, m, rx| fx.unprotect_private_with(&fx.gc(), rx, m, &mut |_| None)),
                ProtectionError::UnknownSender,
            ),
            (
                "other sender key",
                Box::new(|fx, m, rx| fx.unprotect_private_with(&fx.gc(), rx, m, &mut |_| Some(fx.other_pk))),
                ProtectionError::BadSignature,
            ),
            // Forgeries by an insider holding the epoch's secrets.
            (
                "non-zero padding",
                Box::new(|fx, m, rx| {
                    fx.unprotect_private(
                        rx,
                        &reseal(fx, m, |_, p| {
                            let n = p.len();
                            p[n - 1] = 1;
                        }),
                    )
                }),
                ProtectionError::NonZeroPadding,
            ),
            (
                "padding byte 0x80 first",
                Box::new(|fx, m, rx| {
                    fx.unprotect_private(
                        rx,
                        &reseal(fx, m, |_, p| {
                            let n = p.len();
                            p[n - 8] = 0x80;
                        }),
                    )
                }),
                ProtectionError::NonZeroPadding,
            ),
            (
                "signature byte",
                Box::new(|fx, m, rx| {
                    fx.unprotect_private(rx, &reseal(fx, m, |_, p| p[APPLICATION_DATA.len() + 1 + 2 + 5] ^= 1))
                }),
                ProtectionError::BadSignature,
            ),
            (
                "application data byte",
                Box::new(|fx, m, rx| fx.unprotect_private(rx, &reseal(fx, m, |_, p| p[10] ^= 1))),
                ProtectionError::BadSignature,
            ),
            (
                "claims another member",
                Box::new(|fx, m, rx| fx.unprotect_private(rx, &reseal(fx, m, |sd, _| sd.leaf = 2))),
                ProtectionError::BadSignature,
            ),
            (
                "claims a blank leaf",
                Box::new(|fx, m, rx| fx.unprotect_private(rx, &reseal(fx, m, |sd, _| sd.leaf = 3))),
                ProtectionError::UnknownSender,
            ),
            (
                "claims a leaf outside the tree",
                Box::new(|fx, m, rx| {
                    fx.unprotect_private_with(&fx.gc(), rx, &reseal(fx, m, |sd, _| sd.leaf = 7), &mut |_| Some(fx.pk))
                }),
                ProtectionError::SecretTree(SecretTreeError::InvalidLeaf),
            ),
            // Sender data re-encrypted alone: the content key or nonce no longer match.
            (
                "other reuse guard",
                Box::new(|fx, m, rx| fx.unprotect_private(rx, &reseal_sender_data(fx, m, |sd| sd.reuse_guard[3] ^= 1))),
                ProtectionError::ContentDecryptionFailed,
            ),
            (
                "other generation",
                Box::new(|fx, m, rx| fx.unprotect_private(rx, &reseal_sender_data(fx, m, |sd| sd.generation += 1))),
                ProtectionError::ContentDecryptionFailed,
            ),
            (
                "other leaf",
                Box::new(|fx, m, rx| fx.unprotect_private(rx, &reseal_sender_data(fx, m, |sd| sd.leaf = 0))),
                ProtectionError::ContentDecryptionFailed,
            ),
            (
                "content cut short",
                Box::new(|fx, m, rx| fx.unprotect_private(rx, &reseal(fx, m, |_, p| p.truncate(50)))),
                ProtectionError::Malformed(CodecError::Truncated),
            ),
            (
                "empty content",
                Box::new(|fx, m, rx| fx.unprotect_private(rx, &reseal(fx, m, |_, p| p.clear()))),
                ProtectionError::Malformed(CodecError::Truncated),
            ),
        ];
        for (what, tamper, want) in &cases {
            let valid = fx.protect_private(&mut tx, 8);
            assert_eq!(tamper(&fx, &valid, &mut rx), Err(*want), "{suite:?}: {what}");
            assert_eq!(
                fx.unprotect_private(&mut rx, &valid).unwrap_or_else(|e| panic!("{suite:?}: valid after {what}: {e}")),
                APPLICATION_DATA
            );
        }
        for (what, context, want) in [
            ("other group", &other_context, ProtectionError::WrongGroupId),
            ("other epoch", &next_epoch, ProtectionError::WrongEpoch),
        ] {
            let valid = fx.protect_private(&mut tx, 0);
            let gc = EncodedGroupContext::decode(context).unwrap();
            let got = fx.unprotect_private_with(&gc, &mut rx, &valid, &mut |leaf| fx.member_key(leaf));
            assert_eq!(got, Err(want), "{suite:?}: {what}");
            fx.unprotect_private(&mut rx, &valid).unwrap();
        }

        // A refused message is zeroed where it was decrypted; the original
        // still unprotects.
        let valid = fx.protect_private(&mut tx, 3);
        let mut buf = valid.clone();
        let mut keys = PrivateMessageKeys { secret_tree: &mut rx, sender_data_secret: &fx.sender_data_secret };
        let got = private_message::unprotect(&fx.gc(), &mut keys, &mut buf, &mut |_| Some(fx.other_pk));
        assert_eq!(got.err(), Some(ProtectionError::BadSignature));
        let ct = private_offsets(&valid)[5];
        assert!(buf[ct..].iter().all(|b| *b == 0), "plaintext zeroed");
        fx.unprotect_private(&mut rx, &valid).unwrap();
    }
}

#[test]
fn private_message_every_byte_flipped() {
    for &suite in CipherSuite::ALL {
        let mut fx = Fixture::new(suite);
        let mut tx = fx.tree(1000);
        let mut rx = fx.tree(1000);
        let valid = fx.protect_private(&mut tx, 5);
        for i in 0..valid.len() {
            for bit in [0x01u8, 0x80] {
                let mut t = valid.clone();
                t[i] ^= bit;
                assert!(fx.unprotect_private(&mut rx, &t).is_err(), "{suite:?}: byte {i} ^ {bit:#x} accepted");
            }
        }
        assert_eq!(fx.unprotect_private(&mut rx, &valid).unwrap(), APPLICATION_DATA);

        let valid = fx.protect_public(&fx.proposal(Sender::Member(SENDER)));
        for i in 0..valid.len() {
            for bit in [0x01u8, 0x80] {
                let mut t = valid.clone();
                t[i] ^= bit;
                assert!(fx.unprotect_public(&t).is_err(), "{suite:?}: public byte {i} ^ {bit:#x} accepted");
            }
        }
        fx.unprotect_public(&valid).unwrap();
    }
}

#[test]
fn private_message_replay_and_window() {
    for &suite in CipherSuite::ALL {
        let mut fx = Fixture::new(suite);
        let mut tx = fx.tree(1000);
        let mut rx = fx.tree(4);
        let m: Vec<Vec<u8>> = (0..6).map(|_| fx.protect_private(&mut tx, 0)).collect();
        // Generation 5 is more than 4 ahead of the receiver's ratchet at 0.
        assert_eq!(
            fx.unprotect_private(&mut rx, &m[5]),
            Err(ProtectionError::SecretTree(SecretTreeError::TooFarAhead))
        );
        fx.unprotect_private(&mut rx, &m[0]).unwrap();
        // Replays: the key of a received generation is gone.
        assert_eq!(
            fx.unprotect_private(&mut rx, &m[0]),
            Err(ProtectionError::SecretTree(SecretTreeError::KeyConsumed))
        );
        fx.unprotect_private(&mut rx, &m[5]).unwrap();
        assert_eq!(
            fx.unprotect_private(&mut rx, &m[5]),
            Err(ProtectionError::SecretTree(SecretTreeError::KeyConsumed))
        );
        // Skipped generations stay receivable once each.
        for g in [3, 1, 4, 2] {
            fx.unprotect_private(&mut rx, &m[g]).unwrap();
            assert_eq!(
                fx.unprotect_private(&mut rx, &m[g]),
                Err(ProtectionError::SecretTree(SecretTreeError::KeyConsumed)),
                "replay of {g}"
            );
        }
        // A forged message for a future generation burns nothing: the
        // sender's real message of that generation still unprotects.
        let next = fx.protect_private(&mut tx, 0);
        let forged = reseal(&fx, &next, |_, p| p[10] ^= 1);
        assert_eq!(fx.unprotect_private(&mut rx, &forged), Err(ProtectionError::BadSignature));
        assert_eq!(fx.unprotect_private(&mut rx, &next).unwrap(), APPLICATION_DATA);
    }
}

#[test]
fn private_message_refusals() {
    for &suite in CipherSuite::ALL {
        let mut fx = Fixture::new(suite);
        let gc_bytes = fx.context.clone();
        let gc = EncodedGroupContext::decode(&gc_bytes).unwrap();
        let mut tx = fx.tree(1000);
        // A receiver that only accepts generation 0: shows when a refusal
        // advanced the sending ratchet.
        let mut rx = fx.tree(0);
        let sds = fx.sender_data_secret.clone();
        let sk = SignaturePrivateKey::from_slice(suite, fx.sk.as_bytes()).unwrap();
        let mut out = vec![0u8; 1024];
        let mut keys = PrivateMessageKeys { secret_tree: &mut tx, sender_data_secret: &sds };
        // §6.3.2: only members send PrivateMessages.
        let external = fx.proposal(Sender::External(0));
        assert_eq!(
            private_message::protect(&gc, &mut keys, &sk, &external, 0, &mut fx.rng, &mut out),
            Err(ProtectionError::InvalidSender)
        );
        let other_group = FramedContent { group_id: b"x", ..fx.application() };
        assert_eq!(
            private_message::protect(&gc, &mut keys, &sk, &other_group, 0, &mut fx.rng, &mut out),
            Err(ProtectionError::WrongGroupId)
        );
        let commit = FramedContent {
            content: Content::Commit(Commit { proposals: ListView::EMPTY, path: None }),
            ..fx.application()
        };
        assert_eq!(
            private_message::protect(&gc, &mut keys, &sk, &commit, 0, &mut fx.rng, &mut out),
            Err(ProtectionError::ConfirmationTagMismatch)
        );
        let signed = private_message::sign(&gc, &sk, &fx.application(), 0, &mut out).unwrap();
        assert_eq!(
            signed.finish(Some(&[0; 32]), &mut keys, &mut fx.rng),
            Err(ProtectionError::ConfirmationTagMismatch)
        );
        let signed = private_message::sign(&gc, &sk, &commit, 0, &mut out).unwrap();
        assert_eq!(
            signed.finish(Some(&[0; 16]), &mut keys, &mut fx.rng),
            Err(ProtectionError::ConfirmationTagMismatch)
        );
        // Buffers too small, at every length.
        let needed =
            private_message::protect(&gc, &mut keys, &sk, &fx.application(), 10, &mut TestRng(0), &mut out.clone())
                .map(<[u8]>::len);
        // That one consumed generation 0 of the sender: use a new sender tree.
        let mut tx = fx.tree(1000);
        let mut keys = PrivateMessageKeys { secret_tree: &mut tx, sender_data_secret: &sds };
        for n in 0..needed.unwrap() {
            let mut small = vec![0u8; n];
            let got = private_message::protect(&gc, &mut keys, &sk, &fx.application(), 10, &mut fx.rng, &mut small);
            // The layout is computed first, for the suite's longest signature:
            // the exact size, or (ECDSA's DER signatures vary in length) up to
            // the few bytes by which a shorter signature undercuts the longest.
            let Err(ProtectionError::BufferTooSmall { needed: claimed }) = got else {
                panic!("{suite:?}: buffer of {n}: {got:?}")
            };
            let len = needed.unwrap();
            // Only ECDSA's DER signatures vary (Ed25519 and Ed448 are fixed).
            let ecdsa = format!("{:?}", suite.signature_scheme()).starts_with("Ecdsa");
            let slack = if ecdsa { 4 } else { 0 };
            assert!(claimed >= len && claimed <= len + slack, "{suite:?}: buffer of {n}: {claimed} for {len}");
        }
        // None of the refusals took a key: the next message is generation 0.
        let message = private_message::protect(&gc, &mut keys, &sk, &fx.application(), 10, &mut fx.rng, &mut out)
            .unwrap()
            .to_vec();
        assert_eq!(fx.unprotect_private(&mut rx, &message).unwrap(), APPLICATION_DATA);

        // A commit through the two steps, and unprotect_into, which leaves
        // the message as it was.
        let mut rx = fx.tree(1000);
        let signed = private_message::sign(&gc, &sk, &commit, 7, &mut out).unwrap();
        let content_bytes = signed.content_bytes().to_vec();
        let tag = vec![0xcc; suite.hash_len()];
        let message = signed.finish(Some(&tag), &mut keys, &mut fx.rng).unwrap().to_vec();
        let mut small = vec![0u8; message.len() - 1];
        let mut rkeys = PrivateMessageKeys { secret_tree: &mut rx, sender_data_secret: &sds };
        assert_eq!(
            private_message::unprotect_into(&gc, &mut rkeys, &message, &mut small, &mut |l| fx.member_key(l)).err(),
            Some(ProtectionError::BufferTooSmall { needed: message.len() })
        );
        let mut buf = vec![0u8; message.len()];
        let ac =
            private_message::unprotect_into(&gc, &mut rkeys, &message, &mut buf, &mut |l| fx.member_key(l)).unwrap();
        assert_eq!(ac.content_bytes(), &content_bytes[..]);
        assert_eq!(ac.auth.confirmation_tag, Some(&tag[..]));
        assert!(matches!(ac.content.content, Content::Commit(_)));
    }
}
