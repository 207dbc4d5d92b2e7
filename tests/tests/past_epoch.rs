//! The previous epoch kept for late application messages, or not
//! (`group::PAST_EPOCHS_KEPT`, set at build time by
//! `MLS_NOSTD_PAST_EPOCHS_KEPT`). The default build keeps it: a message
//! sent just before a Commit and read after it decrypts, and the ended
//! epoch's secret tree stays in the store. A build that keeps none (the
//! boards') refuses that message, and the ended epoch's secrets leave the
//! store with the save that merges the Commit. `./test.sh` runs this file
//! both ways.
use mls_nostd::crypto::CipherSuite;
use mls_nostd::crypto::labeled::expand_with_label;
use mls_nostd::group::{PAST_EPOCHS_KEPT, ReceiveError, Received, WireFormatPolicy};
use mls_nostd::psk::NoPsks;
use mls_nostd::store::durable::{DurableError, RecordBuffer};
use mls_nostd::store::{MAX_RECORD_LEN, Parts, RamStorage, recover};
use mls_tests::member::{G, Member, NOW, agree};

const SUITE: CipherSuite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
const SLOT: u8 = 3;

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_late_message_and_the_ended_epochs_secrets() {
    let mut alice = Member::new("alice", 21);
    let mut bob = Member::new("bob", 22);
    alice.create(SUITE, b"past-epoch", Default::default());
    alice.add(&mut bob, SUITE);
    let mut storage = Box::new(RamStorage::<64, { 128 * 1024 }>::EMPTY);
    let mut buf: Box<RecordBuffer> = Box::new([0u8; MAX_RECORD_LEN]);
    alice.group.save(storage.as_mut(), SLOT, Parts::ALL, &mut buf).unwrap();

    // The epoch's secret tree has two leaves: alice's (0) and bob's (1). Its
    // root is the epoch's encryption secret; reading bob's handshake message
    // splits it (§9) into alice's half, the root's left child, and bob's.
    // Either is a record of the epoch's tree in the store.
    let root = alice.group.encryption_secret_for_testing().expect("the epoch's root, no message read yet").as_bytes().to_vec();
    let mut left = vec![0u8; SUITE.hash_len()];
    expand_with_label(SUITE, &root, b"tree", b"left", &mut left).unwrap();
    let late = bob.send(b"sent before the commit");
    let (commit, _) = bob.commit(&[], true, WireFormatPolicy::Private);
    let mut msg = commit.clone();
    let got = alice.group.stored(storage.as_mut(), SLOT, &mut buf).process_message_with_psks(&mut msg, &NoPsks, NOW);
    assert!(matches!(got, Ok(Received::Commit(_))), "{got:?}");
    let epoch_tree = |s: &RamStorage<64, { 128 * 1024 }>| contains(s.raw(), &root) || contains(s.raw(), &left);
    assert!(epoch_tree(&storage), "the epoch's secret tree is in the store");

    alice.group.stored(storage.as_mut(), SLOT, &mut buf).merge_staged_commit().unwrap();
    agree(&[&alice, &bob]);
    let kept = epoch_tree(&storage);
    let mut msg = late.clone();
    let read = alice.group.stored(storage.as_mut(), SLOT, &mut buf).process_message_with_psks(&mut msg, &NoPsks, NOW);
    match PAST_EPOCHS_KEPT {
        1 => {
            assert!(kept, "the ended epoch's tree is kept in the store for late messages");
            match read {
                Ok(Received::Application { data, .. }) => assert_eq!(data, b"sent before the commit"),
                other => panic!("a late message of the previous epoch: {other:?}"),
            }
        }
        0 => {
            assert!(!kept, "the ended epoch's secrets are still in the store");
            assert!(
                matches!(read, Err(DurableError::Op(ReceiveError::Protection(_)))),
                "a late message with no past epoch kept: {read:?}"
            );
        }
        n => panic!("PAST_EPOCHS_KEPT is {n}"),
    }

    // Reloaded from the store, alice goes on in the new epoch.
    let mut fresh = Box::new(G::EMPTY);
    recover(storage.as_mut(), SLOT, &mut buf[..]).unwrap();
    fresh.load(storage.as_mut(), SLOT, &mls_nostd::identity::SAME_CREDENTIAL, &mut buf).unwrap();
    alice.group = fresh;
    agree(&[&alice, &bob]);
    let m = bob.send(b"after the commit");
    let mut msg = m.clone();
    match alice.group.stored(storage.as_mut(), SLOT, &mut buf).process_message_with_psks(&mut msg, &NoPsks, NOW) {
        Ok(Received::Application { data, .. }) => assert_eq!(data, b"after the commit"),
        other => panic!("{other:?}"),
    }
    let (commit, _) = alice.commit(&[], true, WireFormatPolicy::Public);
    bob.receive_commit(&commit);
    agree(&[&alice, &bob]);
}

/// A member's last message, read after the Commit that removed it: its
/// sender is authenticated with the key the group kept for it (the leaf is
/// blank in the new tree; §6.1, §6.3.2). The same for a member whose leaf
/// the Commit gave to a new member. With no past epoch kept, refused.
#[test]
fn a_late_message_of_a_member_that_left() {
    use mls_nostd::codec::Decode;
    use mls_nostd::key_package::KeyPackage;
    use mls_nostd::messages::proposal::{Add, Proposal, Remove};
    let mut alice = Member::new("alice", 31);
    let mut bob = Member::new("bob", 32);
    let mut carol = Member::new("carol", 33);
    let mut dave = Member::new("dave", 34);
    alice.create(SUITE, b"departed", Default::default());
    alice.add(&mut bob, SUITE);
    alice.add_seen_by(&mut carol, &mut [&mut bob], SUITE);
    alice.add_seen_by(&mut dave, &mut [&mut bob, &mut carol], SUITE);
    // Bob (leaf 1) and Dave (leaf 3) speak; then Alice removes both and
    // adds Erin, who takes Bob's leaf.
    let from_bob = bob.send(b"bob's last");
    let from_dave = dave.send(b"dave's last");
    let mut erin = Member::new("erin", 35);
    let (kp, _) = erin.key_package(SUITE);
    let proposals = [
        Proposal::Remove(Remove { removed: 1 }),
        Proposal::Remove(Remove { removed: 3 }),
        Proposal::Add(Add { key_package: KeyPackage::decode_exact(&kp).unwrap() }),
    ];
    let (commit, _) = alice.commit(&proposals, true, WireFormatPolicy::Public);
    carol.receive_commit(&commit);
    agree(&[&alice, &carol]);
    let mut read = 0;
    for (msg, data) in [(from_bob, &b"bob's last"[..]), (from_dave, &b"dave's last"[..])] {
        let mut m = msg.clone();
        let got = carol.group.process_message_in_memory(&mut m, &NoPsks, NOW);
        match (PAST_EPOCHS_KEPT, got) {
            (1, Ok(Received::Application { data: d, .. })) => assert_eq!(d, data),
            (0, Err(ReceiveError::Protection(_))) => {}
            (k, other) => panic!("a late message of a member that left, {k} past epochs kept: {other:?}"),
        }
        read += 1;
    }
    assert_eq!(read, 2);
}
