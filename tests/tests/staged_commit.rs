//! Inspecting a staged Commit before merging it (issue #13 point 3): who is
//! added, removed and updated with their credentials, which PSKs, which
//! extensions. At 7208f14 a staged commit showed counts only
//! (`StagedCommitSummary`), so none of these could be asserted.
use mls_nostd::codec::Decode;
use mls_nostd::credential::Credential;
use mls_nostd::crypto::CipherSuite;
use mls_nostd::executor::Sequential;
use mls_nostd::extensions::Extensions;
use mls_nostd::group::{CommitBuffers, CommitOptions, GroupConfig, MemberInfo, Received, WireFormatPolicy};
use mls_nostd::key_package::KeyPackage;
use mls_nostd::leaf_node::{LeafNode, LeafNodeSource};
use mls_nostd::messages::proposal::{Add, GroupContextExtensions, PreSharedKey, Proposal, Remove};
use mls_nostd::psk::{NoPsks, PreSharedKeyId, Psk, PskStore};
use mls_nostd::store::RamStorage;
use mls_nostd::tree_math::LeafIndex;
use mls_tests::member::{Member, NOW, agree, buffers};

const SUITE: CipherSuite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;

struct OnePsk;
impl PskStore for OnePsk {
    fn external_psk(&self, id: &[u8]) -> Option<&[u8]> {
        (id == b"psk-1").then_some(b"the psk secret")
    }
    fn resumption_psk(&self, _: &[u8], _: u64) -> Option<&[u8]> {
        None
    }
}

fn name(m: &MemberInfo<'_>) -> Vec<u8> {
    match m.credential {
        Credential::Basic { identity } => identity.to_vec(),
        other => panic!("unexpected credential {other:?}"),
    }
}

/// Alice (leaf 0), Bob (1), Carol (2), Dave (3).
fn group() -> (Member, Member, Member, Member) {
    let mut alice = Member::new("alice", 1);
    let mut bob = Member::new("bob", 2);
    let mut carol = Member::new("carol", 3);
    let mut dave = Member::new("dave", 4);
    alice.create(SUITE, b"staged", Extensions::default());
    alice.add(&mut bob, SUITE);
    alice.add_seen_by(&mut carol, &mut [&mut bob], SUITE);
    alice.add_seen_by(&mut dave, &mut [&mut bob, &mut carol], SUITE);
    agree(&[&alice, &bob, &carol, &dave]);
    (alice, bob, carol, dave)
}

#[test]
fn received_commit_shows_who_and_what() {
    let (mut alice, mut bob, mut carol, mut dave) = group();
    // Bob proposes an Update; Alice commits it with an Add of Erin, a
    // Remove of Carol, an external PSK and new GroupContext extensions.
    let mut out = vec![0u8; 8192];
    let template = bob.template();
    let proposal = bob.group.propose_update(&template, WireFormatPolicy::Public, &mut bob.rng, &mut out).unwrap().to_vec();
    for m in [&mut alice, &mut carol, &mut dave] {
        let mut msg = proposal.clone();
        assert!(matches!(m.group.process_message_in_memory(&mut msg, &NoPsks, NOW), Ok(Received::Proposal { .. })));
    }
    let mut erin = Member::new("erin", 5);
    let (erin_kp, _) = erin.key_package(SUITE);
    let nonce = [7u8; 32];
    // A GroupContextExtensions proposal with one unknown-to-nobody extension
    // (empty list: every member supports it).
    let proposals = [
        Proposal::Add(Add { key_package: KeyPackage::decode_exact(&erin_kp).unwrap() }),
        Proposal::Remove(Remove { removed: 2 }),
        Proposal::PreSharedKey(PreSharedKey {
            psk: PreSharedKeyId { psk: Psk::External { psk_id: b"psk-1" }, psk_nonce: &nonce },
        }),
        Proposal::GroupContextExtensions(GroupContextExtensions { extensions: Extensions::default() }),
    ];
    let (mut m, mut w, mut gi) = buffers();
    let opts = CommitOptions {
        proposals: &proposals,
        include_pending: true,
        force_path: true,
        ratchet_tree_in_welcome: true,
        wire_format: WireFormatPolicy::Public,
        padding: 0,
        authenticated_data: b"",
        leaf: Some(alice.template()),
    };
    let bufs = CommitBuffers { message: &mut m, welcome: &mut w, group_info: &mut gi };
    let commit = alice.group.commit_in_memory(&opts, &OnePsk, NOW, &mut alice.rng, &Sequential, bufs).unwrap().commit.to_vec();

    // Dave's view before merging.
    let mut msg = commit.clone();
    assert!(matches!(dave.group.process_message_in_memory(&mut msg, &OnePsk, NOW), Ok(Received::Commit(_))));
    let staged = dave.group.staged_commit().expect("a staged commit");
    let added: Vec<_> = staged.added().map(|m| (m.leaf, name(&m))).collect();
    assert_eq!(added, vec![(LeafIndex(2), b"erin".to_vec())], "Erin takes Carol's blanked leaf");
    let removed: Vec<_> = staged.removed().map(|m| (m.leaf, name(&m))).collect();
    assert_eq!(removed, vec![(LeafIndex(2), b"carol".to_vec())]);
    let updated: Vec<_> = staged.updated().map(|(a, b)| (a.leaf, name(&a), name(&b))).collect();
    assert_eq!(
        updated,
        vec![(LeafIndex(0), b"alice".to_vec(), b"alice".to_vec()), (LeafIndex(1), b"bob".to_vec(), b"bob".to_vec())],
        "Alice's path leaf and Bob's Update"
    );
    let bob_new_key = staged.updated().find(|(a, _)| a.leaf == LeafIndex(1)).map(|(_, b)| b.signature_key.to_vec());
    assert_eq!(bob_new_key.as_deref(), Some(bob.signer.public_key().as_bytes()));
    let psks: Vec<_> = staged.psks().collect();
    assert_eq!(psks, vec![PreSharedKeyId { psk: Psk::External { psk_id: b"psk-1" }, psk_nonce: &nonce }]);
    assert!(staged.new_extensions().is_some(), "a GroupContextExtensions proposal was committed");
    assert_eq!(staged.summary().adds, 1);
    // The view survives a save and load of our own staged commit (Alice).
    let mut storage = Box::new(RamStorage::<64, { 128 * 1024 }>::EMPTY);
    let mut buf = [0u8; mls_nostd::store::MAX_RECORD_LEN];
    alice.group.save(storage.as_mut(), 0, mls_nostd::store::Parts::ALL, &mut buf).unwrap();
    let mut copy = Member::new("alice", 1);
    copy.group.load(storage.as_mut(), 0, &mls_nostd::identity::SAME_CREDENTIAL, &mut buf).unwrap();
    let reloaded = copy.group.staged_commit().expect("still staged after load");
    assert_eq!(reloaded.added().map(|m| m.leaf).collect::<Vec<_>>(), vec![LeafIndex(2)]);
    assert_eq!(reloaded.psks().count(), 1);
    assert_eq!(reloaded.summary(), alice.group.staged_commit().unwrap().summary());
    // Merging and discarding end the view.
    dave.group.merge_staged_commit_in_memory().unwrap();
    assert!(dave.group.staged_commit().is_none());
    alice.group.discard_staged_commit();
    assert!(alice.group.staged_commit().is_none());
}

#[test]
fn external_resync_is_a_removal_and_an_addition() {
    let (mut alice, mut bob, _carol, _dave) = group();
    let gi = {
        let (mut gi, mut scratch) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
        alice.group.group_info(true, &mut gi, &mut scratch).unwrap().to_vec()
    };
    // Bob's new client, with his signature key (the default identity policy
    // refuses a basic credential's successor with another key).
    let mut bob2 = Member::new("bob", 12);
    bob2.signer = bob.signer.clone();
    let template = bob2.template();
    let signer = bob2.signer.clone();
    let mut out = vec![0u8; 128 * 1024];
    let resync = bob2
        .group
        .join_external(&gi, None, &template, &signer, Some(LeafIndex(1)), &[], &NoPsks, GroupConfig::default(), &mut bob2.rng, &Sequential, &mut out)
        .unwrap()
        .to_vec();
    let mut msg = resync.clone();
    assert!(matches!(alice.group.process_message_in_memory(&mut msg, &NoPsks, NOW), Ok(Received::Commit(_))));
    let staged = alice.group.staged_commit().unwrap();
    let removed: Vec<_> = staged.removed().map(|m| (m.leaf, m.signature_key.to_vec())).collect();
    assert_eq!(removed, vec![(LeafIndex(1), bob.signer.public_key().as_bytes().to_vec())]);
    let added: Vec<_> = staged.added().map(|m| (m.leaf, m.signature_key.to_vec())).collect();
    assert_eq!(added, vec![(LeafIndex(1), bob2.signer.public_key().as_bytes().to_vec())]);
    assert_eq!(staged.updated().count(), 0);
    // Old Bob sees himself removed.
    let mut msg = resync.clone();
    match bob.group.process_message_in_memory(&mut msg, &NoPsks, NOW) {
        Ok(Received::Commit(s)) => assert!(s.removes_us),
        other => panic!("{other:?}"),
    }
    assert_eq!(bob.group.staged_commit().unwrap().removed().map(|m| m.leaf).collect::<Vec<_>>(), vec![LeafIndex(1)]);
}

/// `Group::tree` is the epoch's tree, read-only: a staged Commit's Add does
/// not show until it is merged, and the tree cannot be exported while the
/// Commit is staged (issue #13: `tree()` was the tree's mutable storage,
/// staged changes included). After the merge the export is byte for byte
/// Bob's, who processed the same Commit.
#[test]
fn tree_view_is_the_epoch_until_merge() {
    let (mut alice, mut bob, _, _) = group();
    let members = |m: &Member| (0..m.group.tree().n_leaves()).filter(|i| m.group.tree().leaf_node(LeafIndex(*i)).is_some()).count();
    assert_eq!((members(&alice), members(&bob)), (4, 4));
    let mut erin = Member::new("erin", 5);
    let (kp, _) = erin.key_package(SUITE);
    let add = Proposal::Add(Add { key_package: KeyPackage::decode_exact(&kp).unwrap() });
    let (mut mb, mut wb, mut gb) = buffers();
    let opts = CommitOptions { proposals: &[add], leaf: Some(alice.template()), ..CommitOptions::DEFAULT };
    let bufs = CommitBuffers { message: &mut mb, welcome: &mut wb, group_info: &mut gb };
    let commit = alice.group.commit_in_memory(&opts, &NoPsks, NOW, &mut alice.rng, &Sequential, bufs).unwrap().commit.to_vec();
    assert!(alice.group.has_staged_commit());
    assert_eq!(members(&alice), 4, "the staged Add shows in the epoch's tree");
    let mut out = vec![0u8; 64 * 1024];
    let mut w = mls_nostd::codec::Writer::new(&mut out);
    assert_eq!(alice.group.export_tree(&mut w), Err(mls_nostd::group::GroupError::CommitPending));
    alice.group.merge_staged_commit_in_memory().unwrap();
    bob.receive_commit(&commit);
    assert_eq!((members(&alice), members(&bob)), (5, 5));
    let export = |m: &mut Member| {
        let mut out = vec![0u8; 64 * 1024];
        let mut w = mls_nostd::codec::Writer::new(&mut out);
        m.group.export_tree(&mut w).unwrap();
        let n = w.len();
        out.truncate(n);
        out
    };
    let (a, b) = (export(&mut alice), export(&mut bob));
    assert!(a.len() > 5 * 64, "a 5-member tree is {} bytes", a.len());
    assert_eq!(a, b);
}

/// A Remove requires a path (§12.4); with no leaf template the path's leaf
/// keeps our signature key, credential, capabilities and extensions, and
/// only its encryption key and source change (issue #13 point 4: at 660bea2
/// this was `CreateCommitError::MissingLeafTemplate`). Bob, who processes
/// the Commit, sees exactly that leaf.
#[test]
fn path_without_leaf_template_keeps_the_leaf() {
    let (mut alice, mut bob, _, _) = group();
    let leaf0 = |m: &Member| m.group.tree().leaf_bytes(LeafIndex(0)).unwrap().to_vec();
    let before = leaf0(&bob);
    let (mut mb, mut wb, mut gb) = buffers();
    let opts = CommitOptions { proposals: &[Proposal::Remove(Remove { removed: 2 })], ..CommitOptions::DEFAULT };
    assert!(opts.leaf.is_none());
    let bufs = CommitBuffers { message: &mut mb, welcome: &mut wb, group_info: &mut gb };
    let out = alice.group.commit_in_memory(&opts, &NoPsks, NOW, &mut alice.rng, &Sequential, bufs).unwrap();
    assert!(out.summary.has_path);
    let commit = out.commit.to_vec();
    alice.group.merge_staged_commit_in_memory().unwrap();
    bob.receive_commit(&commit);
    let after = leaf0(&bob);
    let (old, new) = (LeafNode::decode_exact(&before).unwrap().fields, LeafNode::decode_exact(&after).unwrap().fields);
    assert_eq!(
        (new.signature_key, new.credential, new.capabilities, new.extensions),
        (old.signature_key, old.credential, old.capabilities, old.extensions)
    );
    assert_eq!(new.credential, Credential::Basic { identity: b"alice" });
    assert_ne!(new.encryption_key, old.encryption_key);
    assert!(matches!(new.source, LeafNodeSource::Commit { .. }));
    agree(&[&alice, &bob]);
}
