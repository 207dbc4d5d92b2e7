//! Audit of the bug classes found in other MLS implementations (issue #9,
//! part 4) and of secrets left in RAM (part 5). `docs/audit.md` maps each
//! class to what RFC 9420 expects, the code that enforces it and every test
//! that proves it; this file holds the tests that were missing or that the
//! existing ones did not make explicit.
//!
//! "Nothing changed" is checked on the whole persisted state of a member:
//! [`state`] saves the group (epoch secrets, private keys, tree, pending
//! proposals, staged commit, both secret trees with their skipped keys) to a
//! fresh store and returns every record, so two equal results mean two equal
//! groups, byte for byte.
//!
//! The memory tests (`*_zeroed_on_drop`) need `unsafe`: they run a value's
//! destructor in place inside a heap cell that outlives it and read the bytes
//! it occupied. The core itself forbids `unsafe`.
use std::collections::BTreeMap;
use std::mem::MaybeUninit;

use mls_nostd::codec::{CodecError, Decode, Encode, ListView, Reader, Writer};
use mls_nostd::credential::Credential;
use mls_nostd::crypto::hpke::{HpkePrivateKey, HpkePublicKey};
use mls_nostd::crypto::labeled::decrypt_with_label;
use mls_nostd::crypto::signature::SignaturePrivateKey;
use mls_nostd::crypto::{CipherSuite, HashValue, Secret};
use mls_nostd::executor::Sequential;
use mls_nostd::extensions::{Extensions, U16List};
use mls_nostd::group::{
    CommitBuffers, CommitError, CommitOptions, CreateCommitError, GroupConfig, JoinError,
    JoinParams, ReceiveError, WireFormatPolicy, MAX_GROUP_CONTEXT_LEN,
};
use mls_nostd::key_package::{KeyPackage, KeyPackageError, KeyPackageParams, KeyPackagePrivateKeys, KeyPackageTbs};
use mls_nostd::key_schedule::{welcome_key_nonce, welcome_secret, EpochSecrets};
use mls_nostd::key_store::{KeyPackageStore, MemoryKeyPackageStore};
use mls_nostd::leaf_node::{LeafNode, LeafNodeFields, Lifetime};
use mls_nostd::messages::proposal::{Add, Proposal, ProposalOrRef, Remove};
use mls_nostd::messages::welcome_secrets::WELCOME_LABEL;
use mls_nostd::messages::{
    private_message, public_message, AuthenticatedContent, Commit, Content, EncodedGroupContext, FramedContent,
    FramedContentAuthData, GroupInfo, GroupInfoTbs, GroupSecrets, MlsMessage, MlsMessageBody, NewMember,
    PrivateMessageKeys, ProtectionError, Sender, UpdatePath, WelcomeError, WelcomeParams, WireGroupContext,
    WIRE_FORMAT_PUBLIC_MESSAGE,
};
use mls_nostd::psk::{psk_secret, NoPsks};
use mls_nostd::ratchet_tree::tree::decode_tree;
use mls_nostd::secret_tree::{
    sender_data_key_nonce, RatchetKey, RatchetKind, SecretTree, SecretTreeConfig, SecretTreeError,
};
use mls_nostd::store::durable::{load_key_package, store_key_package, DurableError, RecordBuffer};
use mls_nostd::store::{Parts, RamStorage, RecordKey, MAX_RECORD_LEN};
use mls_nostd::transcript::{confirmation_tag, verify_confirmation_tag};
use mls_nostd::tree_math::LeafIndex;
use mls_tests::MapStorage;
use mls_tests::member::{agree, buffers, Member, G, NOW};
use mls_tests::TestRng;

const SUITE: CipherSuite = CipherSuite::X25519Aes128GcmSha256Ed25519;

// ---------------------------------------------------------------------------
// Fixture and helpers
// ---------------------------------------------------------------------------

/// Alice, Bob and Carol in one group (leaves 0, 1, 2; leaf 3 blank), all at
/// the epoch of Carol's Add, nothing sent in it yet.
fn trio() -> (Member, Member, Member) {
    let mut alice = Member::new("alice", 1);
    let mut bob = Member::new("bob", 2);
    let mut carol = Member::new("carol", 3);
    alice.create(SUITE, b"audit group", Extensions::default());
    alice.add(&mut bob, SUITE);
    let (kp, keys) = carol.key_package(SUITE);
    let (commit, welcome) = alice.commit(&[add(&kp)], false, WireFormatPolicy::Public);
    bob.receive_commit(&commit);
    carol.join(&welcome.unwrap(), &kp, &keys);
    agree(&[&alice, &bob, &carol]);
    (alice, bob, carol)
}

fn add(kp: &[u8]) -> Proposal<'_> {
    Proposal::Add(Add { key_package: KeyPackage::decode_exact(kp).unwrap() })
}

fn record_buffer() -> Box<RecordBuffer> {
    Box::new([0u8; MAX_RECORD_LEN])
}

/// Every record of `m`'s whole state, saved to a fresh store.
fn state(m: &mut Member) -> BTreeMap<RecordKey, Vec<u8>> {
    let mut s = MapStorage::default();
    m.group.save(&mut s, 0, Parts::ALL, &mut record_buffer()).unwrap();
    // Not the head (kind 1): it names the store it is in (a new id for
    // each store a group is saved to whole), so no two observations share
    // it. It holds the parts' hashes; the parts' records are compared.
    s.0.into_iter().filter(|(k, _)| k.to_be_bytes()[0] != 1).collect()
}

/// The records of [`state`] without the ratchets (the secret
/// trees' positions), which an authentic PrivateMessage consumes.
fn state_without_ratchets(m: &mut Member) -> BTreeMap<RecordKey, Vec<u8>> {
    // Record keys: kind (1: head, 2: blob, 5 to 8: secret-tree records) |
    // slot | ... The head holds every part's hash, so it goes too.
    state(m)
        .into_iter()
        .filter(|(k, _)| {
            let [kind, ..] = k.to_be_bytes();
            kind != 1 && !(5..=8).contains(&kind)
        })
        .collect()
}

/// `m` refuses `msg` with `want`; its whole state is unchanged and nothing is staged.
fn refuse(m: &mut Member, msg: &[u8], want: ReceiveError) {
    let before = state(m);
    let mut buf = msg.to_vec();
    assert_eq!(m.group.process_message_in_memory(&mut buf, &NoPsks, NOW).err(), Some(want), "{}", m.name);
    assert!(!m.group.has_staged_commit(), "{}: something was staged", m.name);
    assert!(state(m) == before, "{}: a refused message changed the group", m.name);
}

fn context(m: &mut Member) -> Vec<u8> {
    let mut b = vec![0u8; MAX_GROUP_CONTEXT_LEN];
    m.group.group_context(&mut b).unwrap().to_vec()
}

/// A PublicMessage in `m`'s current epoch with `content`, framed as sent by
/// `sender`, signed by `signer`, MACed with `m`'s membership key (what an
/// insider can do), with confirmation tag `tag` (commits).
fn public(m: &mut Member, signer: &SignaturePrivateKey, sender: Sender, content: Content<'_>, tag: Option<&[u8]>) -> Vec<u8> {
    let gc_bytes = context(m);
    let gc = EncodedGroupContext::decode(&gc_bytes).unwrap();
    let state = m.group.state_for_testing();
    let fc = FramedContent {
        group_id: state.group_id.as_slice(),
        epoch: state.epoch,
        sender,
        authenticated_data: b"",
        content,
    };
    let mut out = vec![0u8; 64 * 1024];
    let signed = public_message::sign(&gc, signer, &fc, &mut out).unwrap();
    signed.finish(tag, Some(&state.secrets.membership_key)).unwrap().to_vec()
}

fn flip(msg: &[u8], at: usize) -> Vec<u8> {
    let mut m = msg.to_vec();
    m[at] ^= 0x01;
    m
}

fn list_body(list: &[ProposalOrRef<'_>]) -> Vec<u8> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut w = Writer::new(&mut buf);
    for p in list {
        p.encode(&mut w).unwrap();
    }
    let n = w.len();
    buf.truncate(n);
    buf
}

/// `m`'s [`Group::commit`] of `proposals` (staged, not merged).
fn try_commit(m: &mut Member, proposals: &[Proposal<'_>], force_path: bool) -> Result<(Vec<u8>, Option<Vec<u8>>), CreateCommitError> {
    try_commit_as(m, proposals, force_path, WireFormatPolicy::Public)
}

fn try_commit_as(
    m: &mut Member,
    proposals: &[Proposal<'_>],
    force_path: bool,
    wire_format: WireFormatPolicy,
) -> Result<(Vec<u8>, Option<Vec<u8>>), CreateCommitError> {
    let (mut msg, mut w, mut gi) = buffers();
    let opts = CommitOptions {
        proposals,
        include_pending: false,
        force_path,
        ratchet_tree_in_welcome: true,
        wire_format,
        padding: 0,
        authenticated_data: b"",
        leaf: Some(m.template()),
    };
    let bufs = CommitBuffers { message: &mut msg, welcome: &mut w, group_info: &mut gi };
    let out = m.group.commit_in_memory(&opts, &NoPsks, NOW, &mut m.rng, &Sequential, bufs)?;
    Ok((out.commit.to_vec(), out.welcome.map(<[u8]>::to_vec)))
}

/// `SenderDataAAD` and `PrivateContentAAD` (§6.3) of a PrivateMessage.
fn private_aads(pm: &mls_nostd::messages::PrivateMessage<'_>) -> (Vec<u8>, Vec<u8>) {
    let mut buf = vec![0u8; 1024];
    let mut w = Writer::new(&mut buf);
    w.write_opaque(pm.group_id).unwrap();
    w.write_u64(pm.epoch).unwrap();
    pm.content_type.encode(&mut w).unwrap();
    let sd_aad = w.written().to_vec();
    w.write_opaque(pm.authenticated_data).unwrap();
    (sd_aad, w.written().to_vec())
}

/// `(leaf, generation, reuse_guard)` of a PrivateMessage of `m`'s epoch.
fn open_sender_data(m: &Member, msg: &[u8]) -> (u32, u32, [u8; 4]) {
    let MlsMessageBody::PrivateMessage(pm) = MlsMessage::decode_exact(msg).unwrap().body else { panic!("not private") };
    let secrets = &m.group.state_for_testing().secrets;
    let (key, nonce) = sender_data_key_nonce(SUITE, &secrets.sender_data_secret, pm.ciphertext).unwrap();
    let (sd_aad, _) = private_aads(&pm);
    let mut sd = pm.encrypted_sender_data[..12].to_vec();
    SUITE.aead_open(key.as_bytes(), &nonce, &sd_aad, &mut sd, &pm.encrypted_sender_data[12..]).unwrap();
    (
        u32::from_be_bytes(sd[..4].try_into().unwrap()),
        u32::from_be_bytes(sd[4..8].try_into().unwrap()),
        sd[8..12].try_into().unwrap(),
    )
}

/// `msg` with its sender data replaced by `(leaf, generation, guard)`,
/// sealed with the epoch's sender-data key (an insider's forgery); the
/// content ciphertext is left as it was.
fn reseal_sender_data(m: &Member, msg: &[u8], leaf: u32, generation: u32, guard: [u8; 4]) -> Vec<u8> {
    let MlsMessageBody::PrivateMessage(pm) = MlsMessage::decode_exact(msg).unwrap().body else { panic!("not private") };
    let secrets = &m.group.state_for_testing().secrets;
    let (key, nonce) = sender_data_key_nonce(SUITE, &secrets.sender_data_secret, pm.ciphertext).unwrap();
    let (sd_aad, _) = private_aads(&pm);
    let mut sd = Vec::new();
    sd.extend_from_slice(&leaf.to_be_bytes());
    sd.extend_from_slice(&generation.to_be_bytes());
    sd.extend_from_slice(&guard);
    let tag = SUITE.aead_seal(key.as_bytes(), &nonce, &sd_aad, &mut sd).unwrap();
    sd.extend_from_slice(&tag);
    let at = msg.windows(28).position(|w| w == pm.encrypted_sender_data).unwrap();
    let mut out = msg.to_vec();
    out[at..at + 28].copy_from_slice(&sd);
    out
}

// ---------------------------------------------------------------------------
// 1. MAC and tag comparisons (constant time: see docs/audit.md for the sites)
// ---------------------------------------------------------------------------

/// Every comparison helper the core uses for MACs and tags accepts exactly
/// the right value: any bit of any byte changed, a truncated or extended tag,
/// an empty tag, all refused (`subtle` compares slices of different lengths
/// as unequal without looking at the bytes).
#[test]
fn mac_and_tag_comparisons_accept_only_the_exact_value() {
    let key = [7u8; 32];
    let tag = SUITE.mac(&key, &[b"authenticated ", b"content"]);
    let good = tag.as_bytes().to_vec();
    let verify = |t: &[u8]| SUITE.verify_mac(&key, &[b"authenticated ", b"content"], t);
    assert!(verify(&good));
    let ck = Secret::from_slice(&[9; 32]).unwrap();
    let cth = [1u8; 32];
    let ctag = confirmation_tag(SUITE, &ck, &cth).as_bytes().to_vec();
    assert!(verify_confirmation_tag(SUITE, &ck, &cth, &ctag));
    let hv = HashValue::from_slice(&good).unwrap();
    for (what, reference) in [("mac", &good), ("confirmation tag", &ctag)] {
        let check = |t: &[u8]| match what {
            "mac" => verify(t),
            _ => verify_confirmation_tag(SUITE, &ck, &cth, t),
        };
        for i in 0..reference.len() {
            for bit in [0x01u8, 0x80] {
                let mut t = reference.clone();
                t[i] ^= bit;
                assert!(!check(&t), "{what}: byte {i} ^ {bit:#x} accepted");
            }
        }
        assert!(!check(&reference[..31]), "{what}: truncated tag accepted");
        assert!(!check(&[]), "{what}: empty tag accepted");
        let mut longer = reference.clone();
        longer.push(0);
        assert!(!check(&longer), "{what}: extended tag accepted");
    }
    assert!(hv.ct_eq_bytes(&good));
    assert!(!hv.ct_eq_bytes(&good[..31]));
    assert!(!hv.ct_eq_bytes(&flip(&good, 31)));
    // Secret equality (constant time) and private-key equality.
    assert_eq!(Secret::from_slice(&[3; 32]).unwrap(), Secret::from_slice(&[3; 32]).unwrap());
    assert_ne!(Secret::from_slice(&[3; 32]).unwrap(), Secret::from_slice(&[3; 31]).unwrap());
    assert_ne!(Secret::from_slice(&[3; 32]).unwrap(), Secret::from_slice(&flip(&[3; 32], 0)).unwrap());
    let a = HpkePrivateKey::from_slice(SUITE, &[5; 32]).unwrap();
    assert!(a == HpkePrivateKey::from_slice(SUITE, &[5; 32]).unwrap());
    assert!(a != HpkePrivateKey::from_slice(SUITE, &flip(&[5; 32], 9)).unwrap());
}

// ---------------------------------------------------------------------------
// 2. The membership tag is checked before anything else uses the content
// ---------------------------------------------------------------------------

/// PublicMessages from a member whose content is bad in five different ways
/// (proposals are validated when committed, so the bad contents are Commits
/// and framing).
/// MACed correctly (an insider), each is refused by the check its defect
/// fails (so the defect is real); with a wrong membership tag, each is
/// refused with `BadMembershipTag`: the tag is checked before the sender is
/// looked up, the signature verified, or the proposal or commit looked at.
/// (The group id and epoch come first: they select the key; §6.2.)
#[test]
fn membership_tag_is_checked_before_anything_else() {
    let (mut alice, mut bob, mut carol) = trio();
    let mut dave = Member::new("dave", 4);
    let (dave_kp, _) = dave.key_package(SUITE);
    let remove_self = list_body(&[ProposalOrRef::Proposal(Proposal::Remove(Remove { removed: 0 }))]);
    let remove_blank = list_body(&[ProposalOrRef::Proposal(Proposal::Remove(Remove { removed: 3 }))]);
    let add_dave = list_body(&[ProposalOrRef::Proposal(add(&dave_kp))]);
    fn commit_of(body: &[u8]) -> Commit<'_> {
        Commit { proposals: ListView::from_body(body).unwrap(), path: None }
    }
    let placeholder = [0x55u8; 32];
    let a = alice.signer.clone();
    let c = carol.signer.clone();
    let cases: Vec<(&str, Vec<u8>, ReceiveError)> = vec![
        (
            "signed with another member's key",
            public(&mut bob, &c, Sender::Member(0), Content::Proposal(Proposal::Remove(Remove { removed: 2 })), None),
            ReceiveError::Protection(ProtectionError::BadSignature),
        ),
        (
            "sender outside the tree",
            public(&mut bob, &a, Sender::Member(9), Content::Proposal(Proposal::Remove(Remove { removed: 2 })), None),
            ReceiveError::Protection(ProtectionError::UnknownSender),
        ),
        (
            "Commit removing a blank leaf",
            public(&mut bob, &a, Sender::Member(0), Content::Commit(commit_of(&remove_blank)), Some(&placeholder)),
            ReceiveError::Commit(CommitError::RemoveOfBlankLeaf),
        ),
        (
            "Commit removing its committer",
            public(&mut bob, &a, Sender::Member(0), Content::Commit(commit_of(&remove_self)), Some(&placeholder)),
            ReceiveError::Commit(CommitError::RemovesCommitter),
        ),
        (
            "Commit with a wrong confirmation tag",
            public(&mut bob, &a, Sender::Member(0), Content::Commit(commit_of(&add_dave)), Some(&placeholder)),
            ReceiveError::Commit(CommitError::ConfirmationTagMismatch),
        ),
    ];
    for (what, msg, want) in &cases {
        refuse(&mut bob, msg, *want);
        let n = msg.len();
        for at in [n - 1, n - 32] {
            let bad_tag = flip(msg, at);
            let before = state(&mut bob);
            let mut buf = bad_tag.clone();
            assert_eq!(
                bob.group.process_message_in_memory(&mut buf, &NoPsks, NOW).err(),
                Some(ReceiveError::Protection(ProtectionError::BadMembershipTag)),
                "{what}: a bad tag must be reported first"
            );
            assert!(state(&mut bob) == before, "{what}: changed the group");
        }
    }
    // The group goes on.
    let (commit, _) = alice.commit(&[], true, WireFormatPolicy::Public);
    bob.receive_commit(&commit);
    carol.receive_commit(&commit);
    agree(&[&alice, &bob, &carol]);
}

// ---------------------------------------------------------------------------
// 3. The confirmation tag is checked before a commit is merged
// ---------------------------------------------------------------------------

/// Alice's real Commit (with a path that Bob decrypts) sent again by an
/// insider with only its confirmation tag changed, as a PublicMessage and as
/// a PrivateMessage: Bob refuses it with `ConfirmationTagMismatch`, after
/// every other check passed; nothing is staged or merged and his whole
/// state is unchanged (the PrivateMessage consumes its ratchet key, by
/// design: it was authentic). The real commit is then processed and
/// everyone agrees.
#[test]
fn confirmation_tag_is_checked_before_anything_is_merged() {
    let (mut alice, mut bob, mut carol) = trio();
    let a = alice.signer.clone();

    // As a PublicMessage, re-signed and re-MACed.
    let (commit, _) = try_commit(&mut alice, &[], true).unwrap();
    let MlsMessageBody::PublicMessage(pm) = MlsMessage::decode_exact(&commit).unwrap().body else { panic!() };
    assert!(matches!(pm.content.content, Content::Commit(Commit { path: Some(_), .. })));
    let bad_tag = flip(pm.auth.confirmation_tag.unwrap(), 5);
    let forged = public(&mut bob, &a, Sender::Member(0), pm.content.content, Some(&bad_tag));
    // Only the tag differs from the real message (Ed25519 signs deterministically).
    assert_eq!(forged.len(), commit.len());
    assert!(forged.iter().zip(&commit).filter(|(x, y)| x != y).count() <= 1 + 32);
    refuse(&mut bob, &forged, ReceiveError::Commit(CommitError::ConfirmationTagMismatch));
    refuse(&mut carol, &forged, ReceiveError::Commit(CommitError::ConfirmationTagMismatch));
    alice.group.discard_staged_commit();

    // As a PrivateMessage: Alice's real one (handshake generation 0), read
    // with the epoch's secrets, sealed again at generation 1 with another tag.
    let (commit, _) = try_commit_as(&mut alice, &[], true, WireFormatPolicy::Private).unwrap();
    let secrets = bob.group.state_for_testing().secrets.clone();
    let root = bob.group.encryption_secret_for_testing().expect("the epoch's root, no message read yet").clone();
    let n_leaves = bob.group.tree().n_leaves();
    let tree = || SecretTree::<16, 8>::new(SUITE, n_leaves, &root, SecretTreeConfig::default()).unwrap();
    let gc_bytes = context(&mut bob);
    let gc = EncodedGroupContext::decode(&gc_bytes).unwrap();
    let mut plain = commit.clone();
    let mut probe = tree();
    let mut keys = PrivateMessageKeys { secret_tree: &mut probe, sender_data_secret: &secrets.sender_data_secret };
    let ac = private_message::unprotect(&gc, &mut keys, &mut plain, &mut |_| Some(a.public_key())).unwrap();
    let bad_tag = flip(ac.auth.confirmation_tag.unwrap(), 5);
    let mut sender = tree();
    assert_eq!(sender.next_sending_key(LeafIndex(0), RatchetKind::Handshake).unwrap().generation, 0);
    let mut out = vec![0u8; 64 * 1024];
    let signed = private_message::sign(&gc, &a, &ac.content, 0, &mut out).unwrap();
    let mut keys = PrivateMessageKeys { secret_tree: &mut sender, sender_data_secret: &secrets.sender_data_secret };
    let forged = signed.finish(Some(&bad_tag), &mut keys, &mut TestRng(9)).unwrap().to_vec();
    assert_eq!(open_sender_data(&bob, &forged).1, 1);
    for m in [&mut bob, &mut carol] {
        let before = state_without_ratchets(m);
        let mut buf = forged.clone();
        assert_eq!(
            m.group.process_message_in_memory(&mut buf, &NoPsks, NOW).err(),
            Some(ReceiveError::Commit(CommitError::ConfirmationTagMismatch))
        );
        assert!(!m.group.has_staged_commit());
        assert!(state_without_ratchets(m) == before, "{}: a wrong confirmation tag changed the group", m.name);
    }
    alice.group.merge_staged_commit_in_memory().unwrap();
    bob.receive_commit(&commit);
    carol.receive_commit(&commit);
    agree(&[&alice, &bob, &carol]);
}

// ---------------------------------------------------------------------------
// 4. Sender data: the reuse guard, and no generation used twice
// ---------------------------------------------------------------------------

/// Alice's application messages, opened with the epoch's secrets: their
/// generations are 0, 1, 2, ... with no repeat, also across a protection that
/// failed after drawing its key (the generation is skipped, never reused);
/// the reuse guard is random per message and XORed into the nonce (the
/// content opens with the guarded nonce and not with the ratchet's own); a
/// message whose sender data carries another reuse guard (sealed again by an
/// insider) is refused and changes nothing, and the original is then read.
#[test]
fn reuse_guard_is_applied_and_no_generation_repeats() {
    let (mut alice, mut bob, _carol) = trio();
    let root = bob.group.encryption_secret_for_testing().expect("the epoch's root, no message read yet").clone();
    let n_leaves = bob.group.tree().n_leaves();
    let mut probe = SecretTree::<16, 8>::new(SUITE, n_leaves, &root, SecretTreeConfig::default()).unwrap();
    let mut generations = Vec::new();
    let mut guards = Vec::new();
    let mut msgs = Vec::new();
    for i in 0..24u8 {
        if i == 10 {
            // Too small a buffer: refused (the key may be drawn already).
            let mut tiny = [0u8; 40];
            assert!(alice.group.protect_application_in_memory(b"x", b"ad", 0, &mut alice.rng, &mut tiny).is_err());
        }
        let msg = alice.send(&[i; 20]);
        let (leaf, generation, guard) = open_sender_data(&bob, &msg);
        assert_eq!(leaf, 0);
        // The content opens with the ratchet's nonce XOR the guard, and only so.
        let MlsMessageBody::PrivateMessage(pm) = MlsMessage::decode_exact(&msg).unwrap().body else { panic!() };
        let (_, content_aad) = private_aads(&pm);
        let key: RatchetKey = probe.receiving_key(LeafIndex(0), RatchetKind::Application, generation).unwrap();
        let n = pm.ciphertext.len() - 16;
        let (ct, tag) = pm.ciphertext.split_at(n);
        let mut guarded = key.nonce;
        guarded.iter_mut().zip(guard).for_each(|(b, g)| *b ^= g);
        let mut plain = ct.to_vec();
        SUITE.aead_open(key.key.as_bytes(), &guarded, &content_aad, &mut plain, tag).unwrap();
        if guard != [0; 4] {
            let mut plain = ct.to_vec();
            assert!(SUITE.aead_open(key.key.as_bytes(), &key.nonce, &content_aad, &mut plain, tag).is_err());
        }
        generations.push(generation);
        guards.push(guard);
        msgs.push(msg);
    }
    assert!(generations.windows(2).all(|w| w[0] < w[1]), "generations not strictly increasing: {generations:?}");
    assert_eq!(&generations[..10], &(0..10).collect::<Vec<u32>>()[..]);
    let mut distinct = guards.clone();
    distinct.sort();
    distinct.dedup();
    assert!(distinct.len() > guards.len() / 2, "reuse guards are not random: {guards:?}");

    // Bob reads the last message first (his ratchet for Alice is derived
    // and moves past the others, keeping their keys).
    let last = msgs.pop().unwrap();
    bob.receive_app(&last);
    // A changed reuse guard: the content no longer opens.
    let (_, generation, guard) = open_sender_data(&bob, &msgs[3]);
    for bit in [0x01u8, 0x80] {
        let mut other = guard;
        other[0] ^= bit;
        let forged = reseal_sender_data(&bob, &msgs[3], 0, generation, other);
        refuse(&mut bob, &forged, ReceiveError::Protection(ProtectionError::ContentDecryptionFailed));
    }
    // Every real message is read once, in any order; a replay is refused.
    for msg in msgs.iter().rev() {
        bob.receive_app(msg);
    }
    refuse(
        &mut bob,
        &msgs[3],
        ReceiveError::Protection(ProtectionError::SecretTree(SecretTreeError::KeyConsumed)),
    );
}

// ---------------------------------------------------------------------------
// 5. Generation overflow and far-future generations
// ---------------------------------------------------------------------------

/// Sender data (sealed by an insider) naming generation 2^32 - 1, or one
/// beyond `max_forward_distance`: refused before any key is derived, with a
/// typed error, the state unchanged. A generation at the limit costs the
/// receiver at most `max_forward_distance` hash steps and, its content not
/// opening, consumes nothing. (The ratchet's own boundary, a sender at
/// 2^32 - 2, is `mls-nostd/src/secret_tree.rs::tests::generation_exhaustion`.)
#[test]
fn generation_overflow_and_far_future_are_refused() {
    let (mut alice, mut bob, _carol) = trio();
    // Bob's ratchet for Alice is derived and at generation 1.
    let first = alice.send(b"first");
    bob.receive_app(&first);
    let msg = alice.send(b"hello");
    let (_, generation, guard) = open_sender_data(&bob, &msg);
    assert_eq!(generation, 1);
    let max = SecretTreeConfig::default().max_forward_distance;
    for (g, want) in [
        (u32::MAX, ProtectionError::SecretTree(SecretTreeError::GenerationExhausted)),
        (u32::MAX - 1, ProtectionError::SecretTree(SecretTreeError::TooFarAhead)),
        (1 + max + 1, ProtectionError::SecretTree(SecretTreeError::TooFarAhead)),
        (1 + max, ProtectionError::ContentDecryptionFailed),
    ] {
        let forged = reseal_sender_data(&bob, &msg, 0, g, guard);
        let t = std::time::Instant::now();
        refuse(&mut bob, &forged, ReceiveError::Protection(want));
        println!("generation {g}: refused with {want:?} in {:?}", t.elapsed());
    }
    assert_eq!(bob.receive_app(&msg).1, b"hello");

    // The secret tree's own API: the window and the last generation.
    let root = Secret::from_slice(&[1; 32]).unwrap();
    let mut rx = SecretTree::<4, 4>::new(SUITE, 4, &root, SecretTreeConfig { max_forward_distance: 10 }).unwrap();
    let kind = RatchetKind::Application;
    assert_eq!(rx.receiving_key(LeafIndex(1), kind, 11), Err(SecretTreeError::TooFarAhead));
    assert_eq!(rx.consume(LeafIndex(1), kind, 11), Err(SecretTreeError::TooFarAhead));
    assert_eq!(rx.receiving_key(LeafIndex(1), kind, u32::MAX), Err(SecretTreeError::GenerationExhausted));
    assert_eq!(rx.consume(LeafIndex(1), kind, u32::MAX), Err(SecretTreeError::GenerationExhausted));
    // Nothing moved: generation 0 is still there.
    rx.receiving_key(LeafIndex(1), kind, 0).unwrap();
    rx.consume(LeafIndex(1), kind, 10).unwrap();
    // The window moves with the ratchet (now at 11).
    assert_eq!(rx.receiving_key(LeafIndex(1), kind, 22), Err(SecretTreeError::TooFarAhead));
    rx.receiving_key(LeafIndex(1), kind, 21).unwrap();
}

// ---------------------------------------------------------------------------
// 6. Duplicate keys among the leaves a Commit adds
// ---------------------------------------------------------------------------

/// Two Adds in one Commit whose KeyPackages (of different clients, different
/// signature keys) carry the same leaf encryption key: neither is in the tree
/// yet, so only a check over the Commit's own new leaves catches it. Refused
/// by the committer's own `Group::commit` and by a receiver. (Duplicates
/// against the tree, by signature key and in imported trees are in
/// `group_rejections` and `ratchet_tree_bad_input`: see docs/audit.md.)
#[test]
fn two_adds_with_the_same_encryption_key_are_refused() {
    let (mut alice, mut bob, _carol) = trio();
    let mut dave = Member::new("dave", 4);
    let mut eve = Member::new("eve", 5);
    let (dave_kp, _) = dave.key_package(SUITE);
    let (eve_kp, _) = eve.key_package(SUITE);
    let dave_key = KeyPackage::decode_exact(&dave_kp).unwrap().tbs.leaf_node.fields.encryption_key.to_vec();
    // Eve's KeyPackage with Dave's encryption key, signed by Eve.
    let eve_view = KeyPackage::decode_exact(&eve_kp).unwrap();
    let fields = LeafNodeFields { encryption_key: &dave_key, ..eve_view.tbs.leaf_node.fields };
    let mut leaf_buf = vec![0u8; 2048];
    let leaf = LeafNode::sign_into(SUITE, &fields, None, &eve.signer, &mut leaf_buf).unwrap().to_vec();
    let tbs = KeyPackageTbs { leaf_node: LeafNode::decode_exact(&leaf).unwrap(), ..eve_view.tbs };
    let mut kp_buf = vec![0u8; 4096];
    let bad_eve = KeyPackage::sign_into(SUITE, &tbs, &eve.signer, &mut kp_buf).unwrap().to_vec();
    KeyPackage::decode_exact(&bad_eve).unwrap().validate(SUITE, NOW, GroupConfig::default().max_lifetime).unwrap();

    let before = state(&mut alice);
    assert_eq!(
        try_commit(&mut alice, &[add(&dave_kp), add(&bad_eve)], false).err(),
        Some(CreateCommitError::Commit(CommitError::DuplicateKey))
    );
    assert!(state(&mut alice) == before);
    let body = list_body(&[ProposalOrRef::Proposal(add(&dave_kp)), ProposalOrRef::Proposal(add(&bad_eve))]);
    let a = alice.signer.clone();
    let msg = public(
        &mut bob,
        &a,
        Sender::Member(0),
        Content::Commit(Commit { proposals: ListView::from_body(&body).unwrap(), path: None }),
        Some(&[0x55; 32]),
    );
    refuse(&mut bob, &msg, ReceiveError::Commit(CommitError::DuplicateKey));
    // Each alone is fine.
    try_commit(&mut alice, &[add(&dave_kp), add(&eve_kp)], false).unwrap();
    alice.group.discard_staged_commit();
}

// ---------------------------------------------------------------------------
// 7. A Welcome cannot reuse a KeyPackage
// ---------------------------------------------------------------------------

/// Dave keeps his KeyPackage keys in a store. Joining consumes them: a
/// second join from the same Welcome (a replay, or a second Welcome for the
/// same KeyPackage) fails with `NotForUs`, with the durable store and with the
/// RAM key store, and the private keys are gone from the store's raw bytes.
#[test]
fn a_welcome_cannot_reuse_a_key_package() {
    let (mut alice, mut bob, mut carol) = trio();
    let mut dave = Member::new("dave", 4);
    let (kp, keys) = dave.key_package(SUITE);
    let reference = KeyPackage::decode_exact(&kp).unwrap().reference(SUITE).unwrap();
    let mut storage = Box::new(RamStorage::<64, { 128 * 1024 }>::EMPTY);
    let mut buf = record_buffer();
    store_key_package(storage.as_mut(), SUITE, &reference, &keys, &dave.signer, &mut buf).unwrap();
    assert!(contains(storage.raw(), keys.init_key.as_bytes()));

    let (commit, welcome) = alice.commit(&[add(&kp)], false, WireFormatPolicy::Public);
    bob.receive_commit(&commit);
    carol.receive_commit(&commit);
    let welcome = welcome.unwrap();
    let params = JoinParams {
        executor: &mls_nostd::executor::Sequential,
        key_package: &kp,
        keys: &keys,
        signer: &dave.signer,
        ratchet_tree: None,
        psks: &NoPsks,
        config: GroupConfig::default(),
    };
    let mut gi = vec![0u8; welcome.len()];
    dave.group.stored(storage.as_mut(), 1, &mut buf).join_with(&welcome, &params, &mut gi).unwrap();
    assert!(load_key_package::<_, SignaturePrivateKey>(storage.as_mut(), &reference, &mut buf).unwrap().is_none());
    // The leaf's encryption key now lives in the group's records; the init key nowhere.
    assert!(!contains(storage.raw(), keys.init_key.as_bytes()), "the consumed init key is still in the store");
    let mut again = Box::new(G::EMPTY);
    assert_eq!(
        again.stored(storage.as_mut(), 2, &mut buf).join_with(&welcome, &params, &mut gi).err(),
        Some(DurableError::Op(JoinError::Welcome(WelcomeError::NotForUs)))
    );
    assert!(again.is_inactive());

    // The RAM key store of the core does the same.
    let mut eve = Member::new("eve", 5);
    let (kp, keys) = eve.key_package(SUITE);
    let reference = KeyPackage::decode_exact(&kp).unwrap().reference(SUITE).unwrap();
    let mut store = MemoryKeyPackageStore::<2>::EMPTY;
    store.put(&reference, &keys).unwrap();
    let (commit, welcome) = alice.commit(&[add(&kp)], false, WireFormatPolicy::Public);
    for m in [&mut bob, &mut carol, &mut dave] {
        m.receive_commit(&commit);
    }
    let welcome = welcome.unwrap();
    let params = JoinParams {
        executor: &mls_nostd::executor::Sequential,
        key_package: &kp,
        keys: &keys,
        signer: &eve.signer,
        ratchet_tree: None,
        psks: &NoPsks,
        config: GroupConfig::default(),
    };
    let mut gi = vec![0u8; welcome.len()];
    eve.group.join_with_store(&welcome, &params, &mut store, &mut gi).unwrap();
    assert!(store.get(&reference).is_none());
    let mut again = Box::new(G::EMPTY);
    assert_eq!(
        again.join_with_store(&welcome, &params, &mut store, &mut gi),
        Err(JoinError::Welcome(WelcomeError::NotForUs))
    );
    agree(&[&alice, &bob, &carol, &dave, &eve]);
}

// ---------------------------------------------------------------------------
// 8. KeyPackage lifetimes at their boundaries
// ---------------------------------------------------------------------------

fn key_package_with(m: &mut Member, lifetime: Lifetime) -> Vec<u8> {
    let params = KeyPackageParams {
        suite: SUITE,
        credential: Credential::Basic { identity: m.name.as_bytes() },
        lifetime,
        leaf_extensions: Extensions::default(),
        extensions: Extensions::default(),
        supported_extensions: U16List::default(),
        supported_proposals: U16List::default(),
    };
    let mut out = vec![0u8; 2048];
    KeyPackage::generate(&params, &m.signer, &mut m.rng, &mut out).unwrap().0.to_vec()
}

/// Both ends of a lifetime are inclusive (§7.2); one second outside either
/// end is `Expired`; a lifetime longer than `max_lifetime` is refused even
/// when `now` is inside it, without overflow at the extremes of `u64`; an
/// inverted lifetime contains no time at all. A Commit adding an expired
/// KeyPackage is refused by its sender and by a receiver.
#[test]
fn key_package_lifetime_boundaries() {
    let (mut alice, mut bob, _carol) = trio();
    let mut dave = Member::new("dave", 4);
    let max = 1000u64;
    let check = |kp: &[u8], now: u64| KeyPackage::decode_exact(kp).unwrap().validate(SUITE, now, max);
    let kp = key_package_with(&mut dave, Lifetime { not_before: NOW, not_after: NOW + max });
    assert_eq!(check(&kp, NOW), Ok(()));
    assert_eq!(check(&kp, NOW + max), Ok(()));
    assert_eq!(check(&kp, NOW - 1), Err(KeyPackageError::Expired));
    assert_eq!(check(&kp, NOW + max + 1), Err(KeyPackageError::Expired));
    let too_long = key_package_with(&mut dave, Lifetime { not_before: NOW, not_after: NOW + max + 1 });
    assert_eq!(check(&too_long, NOW), Err(KeyPackageError::LifetimeTooLong));
    let forever = key_package_with(&mut dave, Lifetime { not_before: 0, not_after: u64::MAX });
    assert_eq!(check(&forever, NOW), Err(KeyPackageError::LifetimeTooLong));
    let inverted = key_package_with(&mut dave, Lifetime { not_before: NOW + 10, not_after: NOW - 10 });
    assert_eq!(check(&inverted, NOW), Err(KeyPackageError::Expired));
    assert_eq!(check(&inverted, u64::MAX), Err(KeyPackageError::Expired));

    let expired = key_package_with(&mut dave, Lifetime { not_before: NOW - 100, not_after: NOW - 1 });
    let want = CommitError::InvalidKeyPackage(KeyPackageError::Expired);
    assert_eq!(try_commit(&mut alice, &[add(&expired)], false).err(), Some(CreateCommitError::Commit(want)));
    let body = list_body(&[ProposalOrRef::Proposal(add(&expired))]);
    let a = alice.signer.clone();
    let commit = Content::Commit(Commit { proposals: ListView::from_body(&body).unwrap(), path: None });
    let msg = public(&mut bob, &a, Sender::Member(0), commit, Some(&[0x55; 32]));
    refuse(&mut bob, &msg, ReceiveError::Commit(want));
}

// ---------------------------------------------------------------------------
// 9. The epoch number cannot wrap
// ---------------------------------------------------------------------------

/// The joiner's secrets and GroupInfo from a Welcome.
fn open_welcome(welcome: &[u8], kp: &[u8], keys: &KeyPackagePrivateKeys) -> (Secret, Vec<u8>) {
    let MlsMessageBody::Welcome(w) = MlsMessage::decode_exact(welcome).unwrap().body else { panic!("not a Welcome") };
    let kp = KeyPackage::decode_exact(kp).unwrap();
    let entry = w.secrets_for(kp.reference(SUITE).unwrap().as_bytes()).unwrap();
    let sealed = entry.encrypted_group_secrets;
    let kem_output = HpkePublicKey::from_slice(sealed.kem_output).unwrap();
    let (ct, tag) = sealed.ciphertext.split_at(sealed.ciphertext.len() - 16);
    let mut gs = ct.to_vec();
    decrypt_with_label(SUITE, &keys.init_key, WELCOME_LABEL, w.encrypted_group_info, &kem_output, &mut gs, tag).unwrap();
    let secrets = GroupSecrets::decode_exact(&gs).unwrap();
    assert!(secrets.psks.is_empty());
    let joiner = Secret::from_slice(secrets.joiner_secret).unwrap();
    let psk = psk_secret(SUITE, &[]).unwrap();
    let (key, nonce) = welcome_key_nonce(SUITE, &welcome_secret(SUITE, &joiner, &psk).unwrap()).unwrap();
    let egi = w.encrypted_group_info;
    let (ct, tag) = egi.split_at(egi.len() - 16);
    let mut group_info = ct.to_vec();
    SUITE.aead_open(key.as_bytes(), nonce.as_bytes(), &[], &mut group_info, tag).unwrap();
    (joiner, group_info)
}

/// A Welcome for `kp` with `joiner` and `group_info`.
fn seal_welcome(joiner: &Secret, group_info: &[u8], kp: &[u8]) -> Vec<u8> {
    let kp = KeyPackage::decode_exact(kp).unwrap();
    let psk = psk_secret(SUITE, &[]).unwrap();
    let ws = welcome_secret(SUITE, joiner, &psk).unwrap();
    let params = WelcomeParams { suite: SUITE, joiner_secret: joiner, psks: &[], welcome_secret: &ws, group_info };
    let members = [NewMember::from_key_package(SUITE, &kp, None).unwrap()];
    let mut out = vec![0u8; 128 * 1024];
    params.create(&members, &mut TestRng(77), &Sequential, &mut out).unwrap().to_vec()
}

/// `group_info` at epoch `epoch`, with the confirmation tag of that epoch's
/// secrets, signed again by `signer` (the committer: an insider).
fn group_info_at_epoch(group_info: &[u8], epoch: u64, joiner: &Secret, signer: &SignaturePrivateKey) -> Vec<u8> {
    let gi = GroupInfo::decode_exact(group_info).unwrap();
    let wgc = WireGroupContext { epoch, ..gi.tbs.group_context };
    let gc = wgc.to_group_context().unwrap();
    let mut gc_buf = vec![0u8; 4096];
    let gc_bytes = gc.encode_to(&mut gc_buf).unwrap();
    let psk = psk_secret(SUITE, &[]).unwrap();
    let secrets = EpochSecrets::derive(SUITE, joiner, &psk, gc_bytes).unwrap();
    let tag = confirmation_tag(SUITE, &secrets.confirmation_key, gc.confirmed_transcript_hash);
    let tbs = GroupInfoTbs { group_context: wgc, confirmation_tag: tag.as_bytes(), ..gi.tbs };
    let mut out = vec![0u8; 64 * 1024];
    GroupInfo::sign_into(SUITE, &tbs, signer, &mut out).unwrap().to_vec()
}

/// A group at epoch 2^64 - 1 (a Welcome whose GroupInfo says so, signed by
/// the committer): joining works and application messages flow, but the
/// epoch cannot advance. Creating a Commit and staging a received one both
/// fail with a typed error (`WrongEpoch`), never a wrap to 0 or a panic, and
/// the group is unchanged; an external join from its GroupInfo fails too
/// (`CapacityExceeded`) and leaves the joiner's slot empty.
#[test]
fn epoch_number_cannot_wrap() {
    let (mut alice, mut bob, mut carol) = trio();
    let mut dave = Member::new("dave", 4);
    let mut eve = Member::new("eve", 5);
    let (dave_kp, dave_keys) = dave.key_package(SUITE);
    let (eve_kp, eve_keys) = eve.key_package(SUITE);
    let (commit, welcome) = alice.commit(&[add(&dave_kp), add(&eve_kp)], false, WireFormatPolicy::Public);
    bob.receive_commit(&commit);
    carol.receive_commit(&commit);
    let welcome = welcome.unwrap();
    let (joiner, group_info) = open_welcome(&welcome, &dave_kp, &dave_keys);
    let last = group_info_at_epoch(&group_info, u64::MAX, &joiner, &alice.signer);
    dave.join(&seal_welcome(&joiner, &last, &dave_kp), &dave_kp, &dave_keys);
    eve.join(&seal_welcome(&joiner, &last, &eve_kp), &eve_kp, &eve_keys);
    assert_eq!(dave.group.epoch(), u64::MAX);
    agree(&[&dave, &eve]);
    let m = dave.send(b"at the last epoch");
    assert_eq!(eve.receive_app(&m).1, b"at the last epoch");

    // Dave cannot commit: the next epoch does not exist.
    for force_path in [false, true] {
        let before = state(&mut dave);
        assert_eq!(
            try_commit(&mut dave, &[], force_path).err(),
            Some(CreateCommitError::Commit(CommitError::WrongEpoch))
        );
        assert!(!dave.group.has_staged_commit());
        assert!(state(&mut dave) == before);
    }
    // Nor can Eve stage a Commit from Dave (as verified content, handed to
    // the group layer directly: Dave could not create a valid one).
    let mut buf = vec![0u8; 1024];
    let content = FramedContent {
        group_id: b"audit group",
        epoch: u64::MAX,
        sender: Sender::Member(dave.group.own_leaf().0),
        authenticated_data: b"",
        content: Content::Commit(Commit { proposals: ListView::EMPTY, path: None }),
    };
    let bytes = content.encode_to(&mut buf).unwrap();
    let auth = FramedContentAuthData { signature: &[0; 64], confirmation_tag: Some(&[0; 32]) };
    let ac = AuthenticatedContent::from_parts(WIRE_FORMAT_PUBLIC_MESSAGE, bytes, auth).unwrap();
    let before = state(&mut eve);
    assert_eq!(eve.group.stage_commit_for_testing(&ac, &NoPsks, NOW).err(), Some(CommitError::WrongEpoch));
    assert!(!eve.group.has_staged_commit());
    assert!(state(&mut eve) == before);

    // Nor can an external joiner, from the GroupInfo Dave publishes.
    let (mut gi, mut scratch) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    let gi = dave.group.group_info(true, &mut gi, &mut scratch).unwrap().to_vec();
    let mut frank = Member::new("frank", 6);
    let template = frank.template();
    let mut out = vec![0u8; 128 * 1024];
    let signer = frank.signer.clone();
    let got = frank.group.join_external(
        &gi,
        None,
        &template,
        &signer,
        None,
        &[],
        &NoPsks,
        GroupConfig::default(),
        &mut frank.rng,
        &Sequential,
        &mut out,
    );
    assert_eq!(got.err(), Some(JoinError::CapacityExceeded(mls_nostd::Capacity::Epochs)));
    assert!(frank.group.is_inactive());
    // Control: the same joiner joins Alice's group (an ordinary epoch) so.
    let (mut gi, mut scratch) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    let gi = alice.group.group_info(true, &mut gi, &mut scratch).unwrap().to_vec();
    let signer = frank.signer.clone();
    frank
        .group
        .join_external(&gi, None, &template, &signer, None, &[], &NoPsks, GroupConfig::default(), &mut frank.rng, &Sequential, &mut out)
        .unwrap();

    // One epoch earlier, the last epoch is reachable and then final.
    let (joiner, group_info) = open_welcome(&welcome, &eve_kp, &eve_keys);
    let before_last = group_info_at_epoch(&group_info, u64::MAX - 1, &joiner, &alice.signer);
    let mut d2 = Member::new("dave", 4);
    let mut e2 = Member::new("eve", 5);
    d2.join(&seal_welcome(&joiner, &before_last, &dave_kp), &dave_kp, &dave_keys);
    e2.join(&seal_welcome(&joiner, &before_last, &eve_kp), &eve_kp, &eve_keys);
    let (commit, _) = d2.commit(&[], true, WireFormatPolicy::Public);
    e2.receive_commit(&commit);
    assert_eq!(e2.group.epoch(), u64::MAX);
    agree(&[&d2, &e2]);
    assert_eq!(try_commit(&mut e2, &[], true).err(), Some(CreateCommitError::Commit(CommitError::WrongEpoch)));
}

// ---------------------------------------------------------------------------
// 10. Oversized vectors and length prefixes
// ---------------------------------------------------------------------------

/// `bytes` with the varint length prefix at `at` replaced by `prefix`.
fn with_prefix(bytes: &[u8], at: usize, prefix: &[u8]) -> Vec<u8> {
    let old = match bytes[at] >> 6 {
        0 => 1,
        1 => 2,
        2 => 4,
        _ => panic!("no varint at {at}"),
    };
    let mut out = bytes[..at].to_vec();
    out.extend_from_slice(prefix);
    out.extend_from_slice(&bytes[at + old..]);
    out
}

/// Minimal varint encoding of `n` (below 2^30).
fn varint(n: usize) -> Vec<u8> {
    let mut b = [0u8; 4];
    let mut w = Writer::new(&mut b);
    w.write_varint(n).unwrap();
    w.written().to_vec()
}

/// Every top-level decoder, given a real object whose first vector's length
/// prefix claims 2^30 - 1 bytes (the largest a varint holds, far more than
/// the input; on a 32-bit target still far below `usize::MAX`), or one byte
/// more than remains, or uses the invalid `0b11` prefix, refuses with a
/// typed error: nothing is allocated (the decoders borrow from the input and
/// have no heap), nothing panics, and no length arithmetic overflows. The
/// group entry points (process a message, join) refuse the same bytes.
/// Runs with `cargo test --workspace` (x86_64); on i686 `scripts/host-targets.sh`
/// runs the core's own tests (the codec's length checks among them), not this file.
#[test]
fn oversized_length_prefixes_are_refused() {
    let (mut alice, mut bob, _carol) = trio();
    let mut dave = Member::new("dave", 4);
    let (dave_kp, dave_keys) = dave.key_package(SUITE);
    let (commit, welcome) = try_commit(&mut alice, &[add(&dave_kp)], true).unwrap();
    let welcome = welcome.unwrap();
    let app = bob.send(b"hi");
    let (_, group_info) = open_welcome(&welcome, &dave_kp, &dave_keys);
    let gi = GroupInfo::decode_exact(&group_info).unwrap();
    let tree = gi.tbs.extensions.find(mls_nostd::extensions::EXT_RATCHET_TREE).unwrap().to_vec();
    let MlsMessageBody::PublicMessage(pm) = MlsMessage::decode_exact(&commit).unwrap().body else { panic!() };
    let Content::Commit(Commit { path: Some(path), .. }) = pm.content.content else { panic!() };
    let mut path_buf = vec![0u8; 64 * 1024];
    let path = path.encode_to(&mut path_buf).unwrap().to_vec();

    type Decoder = fn(&[u8]) -> Result<(), CodecError>;
    let decoders: Vec<(&str, Vec<u8>, usize, Decoder)> = vec![
        // MLSMessage: version, wire_format, then the group_id<V> of a PublicMessage / PrivateMessage.
        ("MLSMessage(PublicMessage)", commit.clone(), 4, |b| MlsMessage::decode_exact(b).map(drop)),
        ("MLSMessage(PrivateMessage)", app.clone(), 4, |b| MlsMessage::decode_exact(b).map(drop)),
        // Welcome: cipher_suite, then secrets<V>.
        ("MLSMessage(Welcome)", welcome.clone(), 6, |b| MlsMessage::decode_exact(b).map(drop)),
        // GroupInfo: version, cipher_suite, then group_id<V>.
        ("GroupInfo", group_info.clone(), 4, |b| GroupInfo::decode_exact(b).map(drop)),
        // KeyPackage: version, cipher_suite, then init_key<V>.
        ("KeyPackage", dave_kp.clone(), 4, |b| KeyPackage::decode_exact(b).map(drop)),
        ("ratchet tree", tree.clone(), 0, |b| decode_tree(b).map(drop)),
        // UpdatePath: the leaf's encryption_key<V> first.
        ("UpdatePath", path.clone(), 0, |b| UpdatePath::decode_exact(b).map(drop)),
    ];
    for (what, valid, at, decode) in &decoders {
        decode(valid).unwrap_or_else(|e| panic!("{what}: the valid object does not decode: {e:?}"));
        Reader::new(&valid[*at..]).read_opaque().unwrap_or_else(|e| panic!("{what}: no vector at {at}: {e:?}"));
        let rest = valid.len() - *at;
        for (how, prefix, want) in [
            ("2^30 - 1", vec![0xbf, 0xff, 0xff, 0xff], Some(CodecError::Truncated)),
            ("2^14 - 1", vec![0x7f, 0xff], None),
            ("one more than remains", varint(rest), Some(CodecError::Truncated)),
            ("0b11 prefix", vec![0xc0, 0, 0, 0, 0, 0, 0, 0], Some(CodecError::InvalidVarintPrefix)),
            ("0xff", vec![0xff], Some(CodecError::InvalidVarintPrefix)),
        ] {
            let bad = with_prefix(valid, *at, &prefix);
            let got = decode(&bad);
            assert!(got.is_err(), "{what}: a length of {how} decoded");
            if let Some(want) = want {
                assert_eq!(got, Err(want), "{what}: {how}");
            }
            // And cut short anywhere: refused.
            for cut in [*at, *at + 1, *at + prefix.len(), bad.len() - 1] {
                assert!(decode(&bad[..cut.min(bad.len())]).is_err(), "{what}: {how}, cut at {cut}");
            }
        }
    }
    // A vector inside a vector claiming more than the outer one holds.
    let mut nested = varint(6);
    nested.extend_from_slice(&[0x40, 0xff, 1, 2, 3, 4]);
    nested.extend_from_slice(&[0u8; 300]);
    let mut r = Reader::new(&nested);
    let mut outer = r.read_vector().unwrap();
    assert_eq!(outer.read_opaque(), Err(CodecError::Truncated));
    // The writer cannot produce a length the reader would refuse.
    let mut b = [0u8; 8];
    assert!(Writer::new(&mut b).write_varint(1 << 30).is_err());
    assert_eq!(Writer::new(&mut b).write_varint((1 << 30) - 1).map(drop), Ok(()));

    // The group entry points.
    for msg in [&commit, &app] {
        let mut bad = with_prefix(msg, 4, &[0xbf, 0xff, 0xff, 0xff]);
        let before = state(&mut bob);
        assert!(matches!(bob.group.process_message_in_memory(&mut bad, &NoPsks, NOW), Err(ReceiveError::Protection(_))));
        assert!(state(&mut bob) == before);
    }
    let bad = with_prefix(&welcome, 6, &[0xbf, 0xff, 0xff, 0xff]);
    let params = JoinParams {
        executor: &mls_nostd::executor::Sequential,
        key_package: &dave_kp,
        keys: &dave_keys,
        signer: &dave.signer,
        ratchet_tree: None,
        psks: &NoPsks,
        config: GroupConfig::default(),
    };
    let mut buf = vec![0u8; welcome.len() + 8];
    assert_eq!(dave.group.join_in_memory(&bad, &params, &mut buf), Err(JoinError::Malformed(CodecError::Truncated)));
    assert!(dave.group.is_inactive());
    alice.group.discard_staged_commit();
    dave.join(&welcome, &dave_kp, &dave_keys);
}

// ---------------------------------------------------------------------------
// Secrets at rest in RAM (part 5)
// ---------------------------------------------------------------------------

/// Moves `value` into a heap cell, runs its destructor in place (the cell's
/// memory stays allocated) and returns the bytes at `range(&value)` (an
/// offset into the value and a length) before and after the drop.
fn bytes_around_drop<T>(value: T, range: impl Fn(&T) -> (*const u8, usize)) -> (Vec<u8>, Vec<u8>) {
    let mut cell: Box<MaybeUninit<T>> = Box::new(MaybeUninit::uninit());
    let p = cell.as_mut_ptr();
    // SAFETY: `p` points to memory for one `T`, owned by `cell`, which
    // outlives every access below; the value is written once, dropped once,
    // and never used after the drop except as raw bytes that were
    // initialized (the ranges given lie inside byte arrays of the value).
    unsafe {
        p.write(value);
        let (start, len) = range(&*p);
        let offset = start as usize - p as usize;
        assert!(offset + len <= std::mem::size_of::<T>());
        let base = p as *const u8;
        let read = || (0..len).map(|i| std::ptr::read_volatile(base.add(offset + i))).collect::<Vec<u8>>();
        let before = read();
        std::ptr::drop_in_place(p);
        let after = read();
        (before, after)
    }
}

fn whole<T>(v: &T) -> (*const u8, usize) {
    (v as *const T as *const u8, std::mem::size_of::<T>())
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A type without a destructor, as a control: its bytes stay after drop,
/// so the method below can see memory that was not wiped.
#[allow(dead_code)]
struct Unwiped([u8; 32]);

/// The main secret types leave no byte of their secret behind when dropped
/// (all of these types are arrays of bytes, without padding, so every byte
/// read was initialized). Public parts kept beside a private key (its public
/// key) are still there, which shows the bytes read are the value's own.
#[test]
fn secrets_are_zeroed_on_drop() {
    let pattern = [0xa5u8; 32];
    // Control.
    let (before, after) = bytes_around_drop(Unwiped(pattern), whole);
    assert_eq!(before, after);
    assert!(contains(&after, &pattern), "the control must keep its bytes");

    // Secret: every byte, length included, is zero.
    let (before, after) = bytes_around_drop(Secret::from_slice(&pattern).unwrap(), whole);
    assert!(contains(&before, &pattern));
    assert!(after.iter().all(|b| *b == 0), "Secret after drop: {after:02x?}");

    // HpkePrivateKey: the private key is gone, the public key kept.
    let hpke = HpkePrivateKey::from_slice(SUITE, &pattern).unwrap();
    let (sk, pk) = (hpke.as_bytes().to_vec(), hpke.public_key(SUITE).as_bytes().to_vec());
    let (before, after) = bytes_around_drop(hpke, whole);
    assert!(contains(&before, &sk) && contains(&before, &pk));
    assert!(!contains(&after, &sk) && contains(&after, &pk), "HpkePrivateKey after drop: {after:02x?}");
    assert!(after.iter().filter(|b| **b == 0).count() >= 32);

    // SignaturePrivateKey: the seed is gone, the public key kept.
    let sig = SignaturePrivateKey::from_slice(SUITE, &pattern).unwrap();
    let pk = sig.public_key().as_bytes().to_vec();
    let (before, after) = bytes_around_drop(sig, whole);
    assert!(contains(&before, &pattern) && contains(&before, &pk));
    assert!(!contains(&after, &pattern) && contains(&after, &pk), "SignaturePrivateKey after drop: {after:02x?}");

    // RatchetKey: its key and its nonce (fields read one at a time: the
    // struct has padding).
    let root = Secret::from_slice(&pattern).unwrap();
    let mut tree = SecretTree::<2, 1>::new(SUITE, 2, &root, SecretTreeConfig::default()).unwrap();
    let key = tree.next_sending_key(LeafIndex(1), RatchetKind::Application).unwrap();
    let (k, n) = (key.key.as_bytes().to_vec(), key.nonce);
    let (before, after) = bytes_around_drop(key.clone(), |r: &RatchetKey| whole(&r.key));
    assert!(contains(&before, &k));
    assert!(after.iter().all(|b| *b == 0), "RatchetKey.key after drop: {after:02x?}");
    let (before, after) = bytes_around_drop(key, |r: &RatchetKey| whole(&r.nonce));
    assert_eq!(before, n);
    assert!(after.iter().all(|b| *b == 0), "RatchetKey.nonce after drop: {after:02x?}");

    // EpochSecrets (nine Secrets) and KeyPackagePrivateKeys (two HPKE keys):
    // wiped through their fields.
    let secrets = EpochSecrets::from_epoch_secret(SUITE, &root).unwrap();
    let membership = secrets.membership_key.as_bytes().to_vec();
    let (before, after) = bytes_around_drop(secrets, whole);
    assert!(contains(&before, &membership));
    assert!(after.iter().all(|b| *b == 0), "EpochSecrets after drop");
    let mut dave = Member::new("dave", 4);
    let (_, keys) = dave.key_package(SUITE);
    let (init, enc) = (keys.init_key.as_bytes().to_vec(), keys.encryption_key.as_bytes().to_vec());
    let (before, after) = bytes_around_drop(keys, whole);
    assert!(contains(&before, &init) && contains(&before, &enc));
    assert!(!contains(&after, &init) && !contains(&after, &enc), "KeyPackagePrivateKeys after drop");
}

/// §9.2: an epoch's `encryption_secret` is consumed with the epoch's first
/// message, and a consumed secret is deleted at once; so no member keeps a
/// copy in its state once the secret tree is rooted at it. After a join
/// (Carol), a processed Commit (Bob) and an own Commit (Alice), in two
/// epochs: the state's copy is empty and the tree's root holds the secret;
/// once a message is read, the root is gone and the state's secrets (nine
/// byte arrays with their lengths, no padding) hold no copy of it.
#[test]
fn encryption_secret_is_deleted_once_the_tree_is_rooted() {
    let (mut alice, mut bob, mut carol) = trio();
    for round in 0..2 {
        let root = alice.group.encryption_secret_for_testing().expect("alice: the root").as_bytes().to_vec();
        assert_eq!(root.len(), SUITE.hash_len());
        for m in [&alice, &bob, &carol] {
            assert!(m.group.state_for_testing().secrets.encryption_secret.as_bytes().is_empty(), "{} ({round})", m.name);
            let kept = m.group.encryption_secret_for_testing().map(|s| s.as_bytes().to_vec());
            assert_eq!(kept, Some(root.clone()), "{} ({round}): the tree's root", m.name);
        }
        let msg = alice.send(b"consumes the root");
        for m in [&mut bob, &mut carol] {
            assert_eq!(m.receive_app(&msg).1, b"consumes the root");
        }
        for m in [&alice, &bob, &carol] {
            assert!(m.group.encryption_secret_for_testing().is_none(), "{} ({round}): the root is consumed", m.name);
            let (start, len) = whole(&m.group.state_for_testing().secrets);
            // SAFETY: EpochSecrets is nine `Secret`s (a byte array and a
            // length byte each): every byte is initialized.
            let bytes = unsafe { std::slice::from_raw_parts(start, len) };
            assert!(!contains(bytes, &root), "{} ({round}): a copy of the consumed encryption_secret", m.name);
        }
        let (commit, _) = alice.commit(&[], true, WireFormatPolicy::Public);
        bob.receive_commit(&commit);
        carol.receive_commit(&commit);
    }
}

/// A member's persisted state passes through the caller's record buffer
/// and lives in `RamStorage`: the buffer is zero after every save and load
/// (regression: it kept the last plaintext record, e.g. epoch secrets), and
/// a `RamStorage` is wiped when dropped (regression: it had no destructor).
#[test]
fn store_buffers_are_wiped() {
    let (mut alice, _bob, _carol) = trio();
    let membership = alice.group.state_for_testing().secrets.membership_key.as_bytes().to_vec();
    let mut storage = Box::new(RamStorage::<64, { 128 * 1024 }>::EMPTY);
    let mut buf = record_buffer();
    alice.group.save(storage.as_mut(), 0, Parts::ALL, &mut buf).unwrap();
    assert!(contains(storage.raw(), &membership), "the store holds the epoch's secrets");
    assert!(buf.iter().all(|b| *b == 0), "the record buffer keeps plaintext after a save");
    let mut copy = Box::new(G::EMPTY);
    buf.fill(0xee);
    copy.load(storage.as_mut(), 0, &mls_nostd::identity::SAME_CREDENTIAL, &mut buf).unwrap();
    assert!(buf.iter().all(|b| *b == 0), "the record buffer keeps plaintext after a load");
    assert_eq!(copy.epoch_authenticator(), alice.group.epoch_authenticator());
    buf.fill(0xee);
    assert!(copy.load(storage.as_mut(), 9, &mls_nostd::identity::SAME_CREDENTIAL, &mut buf).is_err());
    assert!(buf.iter().all(|b| *b == 0), "the record buffer after a failed load");

    let arena = |s: &RamStorage<64, { 128 * 1024 }>| (s.raw().as_ptr(), s.raw().len());
    let (before, after) = bytes_around_drop(*storage, arena);
    assert!(contains(&before, &membership));
    assert!(after.iter().all(|b| *b == 0), "RamStorage after drop");
}
