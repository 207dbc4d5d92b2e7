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
use mls_nostd::ratchet_tree::tree::HASH_CACHE_LEVEL;
use mls_nostd::store::durable::{DurableError, RecordBuffer};
use mls_nostd::store::{MAX_RECORD_LEN, Parts, RamStorage, recover};
use mls_tests::member::{G, Member, NOW, agree};

const SUITE: CipherSuite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
const SLOT: u8 = 3;

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The core under test has the layout the command asked for: `test.sh`
/// runs this file once more as `MLS_NOSTD_PAST_EPOCHS_KEPT=0
/// MLS_NOSTD_HASH_CACHE_LEVEL=3 cargo test ...` in the workspace's target
/// directory, and relies on cargo rebuilding the core when those variables
/// change (its `option_env!` reads are in its dep-info). A core left as
/// built for the default layout would make that step test the default
/// layout twice. The variables are read here when the test runs (cargo
/// passes them on), not from this crate's build, which a missed rebuild
/// would leave stale as well.
#[test]
fn the_core_has_the_layout_of_this_build() {
    let asked = |name: &str, default: usize| {
        std::env::var(name).map_or(default, |v| v.parse().unwrap_or_else(|_| panic!("{name} is not a decimal number: {v}")))
    };
    assert_eq!(PAST_EPOCHS_KEPT, asked("MLS_NOSTD_PAST_EPOCHS_KEPT", 1), "MLS_NOSTD_PAST_EPOCHS_KEPT");
    assert_eq!(HASH_CACHE_LEVEL as usize, asked("MLS_NOSTD_HASH_CACHE_LEVEL", 1), "MLS_NOSTD_HASH_CACHE_LEVEL");
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

/// What a member of an epoch knows of it, taken before any message of the
/// epoch was read (its secret tree's root unused): enough to seal a
/// PrivateMessage of that epoch as any sender, once it has ended.
struct EpochKeys {
    root: mls_nostd::crypto::Secret,
    sender_data_secret: mls_nostd::crypto::Secret,
    group_id: Vec<u8>,
    epoch: u64,
    tree_hash: Vec<u8>,
    confirmed_transcript_hash: Vec<u8>,
    extensions: Vec<u8>,
    n_leaves: u32,
}

impl EpochKeys {
    fn of(m: &Member) -> Self {
        let st = m.group.state_for_testing();
        Self {
            root: m.group.encryption_secret_for_testing().expect("the epoch's root, unused").clone(),
            sender_data_secret: st.secrets.sender_data_secret.clone(),
            group_id: st.group_id.as_slice().to_vec(),
            epoch: st.epoch,
            tree_hash: st.tree_hash.as_bytes().to_vec(),
            confirmed_transcript_hash: st.confirmed_transcript_hash.as_bytes().to_vec(),
            extensions: st.extensions.as_slice().to_vec(),
            n_leaves: m.group.tree().n_leaves(),
        }
    }

    /// A PrivateMessage of this epoch from `leaf`, signed by `by`.
    fn seal(&self, by: &mut Member, leaf: u32, content: mls_nostd::messages::framing::Content<'_>) -> Vec<u8> {
        use mls_nostd::group_context::GroupContext;
        use mls_nostd::messages::authenticated_content::EncodedGroupContext;
        use mls_nostd::messages::framing::{FramedContent, Sender};
        use mls_nostd::messages::private_message::{self, PrivateMessageKeys};
        use mls_nostd::secret_tree::{SecretTree, SecretTreeConfig};
        let gc = GroupContext {
            cipher_suite: SUITE,
            group_id: &self.group_id,
            epoch: self.epoch,
            tree_hash: &self.tree_hash,
            confirmed_transcript_hash: &self.confirmed_transcript_hash,
            extensions: &self.extensions,
        };
        let egc = EncodedGroupContext::new(gc).unwrap();
        let mut tree: SecretTree<16, 64> = SecretTree::new(SUITE, self.n_leaves, &self.root, SecretTreeConfig::default()).unwrap();
        let content = FramedContent {
            group_id: &self.group_id,
            epoch: self.epoch,
            sender: Sender::Member(leaf),
            authenticated_data: b"ad",
            content,
        };
        let mut keys = PrivateMessageKeys { secret_tree: &mut tree, sender_data_secret: &self.sender_data_secret };
        let mut out = vec![0u8; 1024];
        private_message::protect(&egc, &mut keys, &by.signer, &content, 0, &mut by.rng, &mut out).unwrap().to_vec()
    }
}

/// `g` saved and loaded again, as after a reboot.
fn reloaded(g: &mut G) -> Box<G> {
    let mut storage = Box::new(RamStorage::<64, { 128 * 1024 }>::EMPTY);
    let mut buf: Box<RecordBuffer> = Box::new([0u8; MAX_RECORD_LEN]);
    g.save(storage.as_mut(), SLOT, Parts::ALL, &mut buf).unwrap();
    let mut fresh = Box::new(G::EMPTY);
    fresh.load(storage.as_mut(), SLOT, &mls_nostd::identity::SAME_CREDENTIAL, &mut buf).unwrap();
    fresh
}

/// A late message of the previous epoch "from" a leaf that was blank in
/// that epoch, signed with the key of the member the Commit that ended it
/// added there, is refused (§6.3.2: the sender is a non-blank leaf, here of
/// the message's epoch): the group keeps that the leaf was blank, also
/// across a save and a load. It was taken for the new member's (review
/// finding: the sender was looked up in the current tree). A member's
/// genuine late message still opens. With no past epoch kept, both are
/// refused.
#[test]
fn late_message_from_a_leaf_blank_in_its_epoch_is_refused() {
    use mls_nostd::codec::Decode;
    use mls_nostd::key_package::KeyPackage;
    use mls_nostd::messages::framing::Content;
    use mls_nostd::messages::proposal::{Add, Proposal};
    use mls_nostd::messages::ProtectionError;
    use mls_nostd::tree_math::LeafIndex;
    let mut alice = Member::new("alice", 41);
    let mut bob = Member::new("bob", 42);
    let mut carol = Member::new("carol", 43);
    alice.create(SUITE, b"blank-leaf", Default::default());
    alice.add(&mut bob, SUITE);
    alice.add_seen_by(&mut carol, &mut [&mut bob], SUITE);
    // Leaves 0, 1, 2 are members; leaf 3 is blank in this epoch.
    let ended = EpochKeys::of(&alice);
    assert_eq!(ended.n_leaves, 4);
    let from_carol = carol.send(b"carol's, before erin came");

    // Alice adds erin, who takes leaf 3.
    let mut erin = Member::new("erin", 44);
    let (kp, keys) = erin.key_package(SUITE);
    let add = Proposal::Add(Add { key_package: KeyPackage::decode_exact(&kp).unwrap() });
    let (commit, welcome) = alice.commit(&[add], true, WireFormatPolicy::Public);
    bob.receive_commit(&commit);
    erin.join(&welcome.unwrap(), &kp, &keys);
    agree(&[&alice, &bob, &erin]);
    assert_eq!(erin.group.own_leaf(), LeafIndex(3));

    // "From leaf 3" in the ended epoch, signed with erin's key.
    let forged = ended.seal(&mut erin, 3, Content::Application(b"said before erin was a member"));
    let loaded = reloaded(&mut bob.group);
    for (g, how) in [(&mut bob.group, "in memory"), (&mut { loaded }, "loaded")] {
        let mut m = forged.clone();
        match (PAST_EPOCHS_KEPT, g.process_message_in_memory(&mut m, &NoPsks, NOW)) {
            (1, Err(ReceiveError::Protection(ProtectionError::UnknownSender))) => {}
            (0, Err(ReceiveError::Protection(ProtectionError::WrongEpoch))) => {}
            (k, other) => panic!("{how}, {k} past epochs kept: a late message from a leaf blank then: {other:?}"),
        }
        let mut m = from_carol.clone();
        match (PAST_EPOCHS_KEPT, g.process_message_in_memory(&mut m, &NoPsks, NOW)) {
            (1, Ok(Received::Application { sender, data, .. })) => {
                assert_eq!((sender, data), (LeafIndex(2), &b"carol's, before erin came"[..]));
            }
            (0, Err(ReceiveError::Protection(_))) => {}
            (k, other) => panic!("{how}, {k} past epochs kept: carol's late message: {other:?}"),
        }
    }
}

/// A Commit that changes more leaves than the group keeps keys of
/// (`DEPARTED_KEYS`): alice removes five members and adds henry, who takes
/// bob's leaf (1). A late message of the ended epoch "from leaf 1" signed
/// with henry's key is refused as `DepartedSender`, like bob's own, whose
/// key was not kept (review finding: henry's key, from the current tree,
/// authenticated it). Alice's, whose leaf did not change, opens. After a
/// save and a load, which leaves may have changed is not known (only the
/// kept keys are saved): every late message but those of the kept keys
/// is refused then, alice's too.
#[test]
fn late_message_from_a_reused_leaf_past_the_kept_keys_is_refused() {
    use mls_nostd::codec::Decode;
    use mls_nostd::credential::Credential;
    use mls_nostd::group::DEPARTED_KEYS;
    use mls_nostd::key_package::KeyPackage;
    use mls_nostd::messages::framing::Content;
    use mls_nostd::messages::proposal::{Add, Proposal, Remove};
    use mls_nostd::tree_math::LeafIndex;
    const NAMES: [&str; 6] = ["bob", "carol", "dave", "eve", "frank", "grace"];
    let mut alice = Member::new("alice", 51);
    alice.create(SUITE, b"overflow", Default::default());
    let mut others: Vec<Member> = NAMES.iter().zip(52..).map(|(n, seed)| Member::new(n, seed)).collect();
    for i in 0..others.len() {
        let (seen, rest) = others.split_at_mut(i);
        let mut seen: Vec<&mut Member> = seen.iter_mut().collect();
        alice.add_seen_by(&mut rest[0], &mut seen, SUITE);
    }
    // Leaves: alice 0, bob 1, ..., grace 6.
    let ended = EpochKeys::of(&alice);
    let from_alice = alice.send(b"alice's last");
    let from_bob = others[0].send(b"bob's last");

    let mut henry = Member::new("henry", 60);
    let (kp, _) = henry.key_package(SUITE);
    let mut proposals: Vec<Proposal<'_>> = (1..=5).map(|removed| Proposal::Remove(Remove { removed })).collect();
    assert!(proposals.len() > DEPARTED_KEYS);
    proposals.push(Proposal::Add(Add { key_package: KeyPackage::decode_exact(&kp).unwrap() }));
    let (commit, _) = alice.commit(&proposals, true, WireFormatPolicy::Public);
    let grace = &mut others[5];
    grace.receive_commit(&commit);
    agree(&[&alice, &*grace]);
    let leaf_1 = grace.group.tree().leaf_node(LeafIndex(1)).expect("henry's leaf");
    assert!(matches!(leaf_1.fields.credential, Credential::Basic { identity: b"henry" }));

    let forged = ended.seal(&mut henry, 1, Content::Application(b"said before henry was a member"));
    let loaded = reloaded(&mut grace.group);
    for (g, how) in [(&mut grace.group, "in memory"), (&mut { loaded }, "loaded")] {
        for (msg, what) in [(&forged, "henry's as leaf 1"), (&from_bob, "bob's")] {
            let mut m = msg.clone();
            match (PAST_EPOCHS_KEPT, g.process_message_in_memory(&mut m, &NoPsks, NOW)) {
                (1, Err(ReceiveError::DepartedSender)) => {}
                (0, Err(ReceiveError::Protection(_))) => {}
                (k, other) => panic!("{how}, {k} past epochs kept: {what} late message: {other:?}"),
            }
        }
        let mut m = from_alice.clone();
        match (PAST_EPOCHS_KEPT, how, g.process_message_in_memory(&mut m, &NoPsks, NOW)) {
            (1, "in memory", Ok(Received::Application { sender, .. })) => assert_eq!(sender, LeafIndex(0)),
            (1, "loaded", Err(ReceiveError::DepartedSender)) => {}
            (0, _, Err(ReceiveError::Protection(_))) => {}
            (k, how, other) => panic!("{how}, {k} past epochs kept: alice's late message: {other:?}"),
        }
    }
}

/// A Proposal of the previous epoch, in a PrivateMessage, is refused
/// (`WrongEpoch`: only application data is read with the ended epoch's
/// keys) before it is decrypted: the message is left as it came and its
/// key unused, so the same message is refused the same way again. It was
/// decrypted first (review finding), its key used up and its content left
/// in the buffer.
#[test]
fn late_proposal_is_refused_before_it_is_decrypted() {
    use mls_nostd::messages::framing::Content;
    use mls_nostd::messages::proposal::{Proposal, Remove};
    use mls_nostd::messages::ProtectionError;
    let mut alice = Member::new("alice", 71);
    let mut bob = Member::new("bob", 72);
    let mut carol = Member::new("carol", 73);
    alice.create(SUITE, b"late-proposal", Default::default());
    alice.add(&mut bob, SUITE);
    alice.add_seen_by(&mut carol, &mut [&mut bob], SUITE);
    let ended = EpochKeys::of(&alice);
    let (commit, _) = alice.commit(&[], true, WireFormatPolicy::Public);
    bob.receive_commit(&commit);
    agree(&[&alice, &bob]);

    // Alice's own Proposal of the ended epoch, genuine.
    let late = ended.seal(&mut alice, 0, Content::Proposal(Proposal::Remove(Remove { removed: 2 })));
    for attempt in 0..2 {
        let mut m = late.clone();
        let got = bob.group.process_message_in_memory(&mut m, &NoPsks, NOW);
        assert!(matches!(got, Err(ReceiveError::Protection(ProtectionError::WrongEpoch))), "attempt {attempt}: {got:?}");
        assert!(m == late, "attempt {attempt}: the refused message was changed");
    }
}
