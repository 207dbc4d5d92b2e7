//! Persistence (mls_nostd::store): a member saved and loaded continues its
//! group; sending and receiving persist before they return; a replay after
//! a reload is refused; an own commit survives a reload and merges; a join
//! consumes its KeyPackage at the commit point; corrupted records are typed
//! errors that leave the group empty; a removed member reloads as an
//! inactive group.
use mls_nostd::codec::Decode;
use mls_nostd::crypto::CipherSuite;
use mls_nostd::crypto::signature::SignaturePrivateKey;
use mls_nostd::executor::Sequential;
use mls_nostd::group::{CommitBuffers, CommitOptions, GroupConfig, JoinParams, Received, WireFormatPolicy};
use mls_nostd::key_package::KeyPackage;
use mls_nostd::messages::proposal::{Add, Proposal, Remove};
use mls_nostd::psk::NoPsks;
use mls_nostd::ratchet_tree::node::{Node, RatchetTreeView};
use mls_nostd::store::durable::{load_key_package, store_key_package, DurableError, RecordBuffer};
use mls_nostd::store::{recover, Parts, RamStorage, RecordKey, Storage, StoreError, MAX_RECORD_LEN};
use mls_tests::member::{agree, buffers, Member, MemberOf, G, NOW};
use mls_tests::MapStorage;

const SLOT: u8 = 7;

fn buf() -> Box<RecordBuffer> {
    Box::new([0u8; MAX_RECORD_LEN])
}

fn group_of(suite: CipherSuite) -> (Member, Member, Member) {
    let mut alice = Member::new("alice", 11);
    let mut bob = Member::new("bob", 12);
    let mut carol = Member::new("carol", 13);
    alice.create(suite, b"store-group", Default::default());
    alice.add(&mut bob, suite);
    let (commit, _) = alice.commit(&[], true, WireFormatPolicy::Private);
    bob.receive_commit(&commit);
    let (kp, keys) = carol.key_package(suite);
    let add = Proposal::Add(Add { key_package: KeyPackage::decode_exact(&kp).unwrap() });
    let (commit, welcome) = alice.commit(&[add], true, WireFormatPolicy::Public);
    bob.receive_commit(&commit);
    carol.join(&welcome.unwrap(), &kp, &keys);
    agree(&[&alice, &bob, &carol]);
    (alice, bob, carol)
}

fn reload<S: Storage>(m: &mut Member, storage: &mut S) {
    let mut fresh = Box::new(G::EMPTY);
    let mut b = buf();
    recover(storage, SLOT, &mut b[..]).unwrap();
    fresh.load(storage, SLOT, &mls_nostd::identity::SAME_CREDENTIAL, &mut b).unwrap();
    m.group = fresh;
}

fn send_durable<S: Storage>(m: &mut Member, storage: &mut S, data: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; data.len() + 512];
    let mut b = buf();
    let n = m.group.stored(storage, SLOT, &mut b).protect_application(data, b"ad", 8, &mut m.rng, &mut out).unwrap().len();
    out.truncate(n);
    out
}

fn receive_durable<S: Storage>(m: &mut Member, storage: &mut S, msg: &[u8]) -> Result<Vec<u8>, DurableError<mls_nostd::group::ReceiveError>> {
    let mut msg = msg.to_vec();
    let mut b = buf();
    match m.group.stored(storage, SLOT, &mut b).process_message_with_psks(&mut msg, &NoPsks, NOW)? {
        Received::Application { data, .. } => Ok(data.to_vec()),
        Received::Commit(_) => {
            m.group.stored(storage, SLOT, &mut b).merge_staged_commit().unwrap();
            Ok(Vec::new())
        }
        Received::Proposal { .. } => Ok(Vec::new()),
    }
}

fn save_load_continue(suite: CipherSuite) {
    let (mut alice, mut bob, mut carol) = group_of(suite);
    let mut storage = RamStorage::<64, { 256 * 1024 }>::EMPTY;
    alice.group.save(&mut storage, SLOT, Parts::ALL, &mut buf()).unwrap();

    // Messages both ways, persisted before they return.
    let m = bob.send(b"from bob");
    assert_eq!(receive_durable(&mut alice, &mut storage, &m).unwrap(), b"from bob");
    let m = send_durable(&mut alice, &mut storage, b"from alice");
    assert_eq!(bob.receive_app(&m).1, b"from alice");

    // Reboot: fresh RAM, state from the store.
    let authenticator = alice.group.epoch_authenticator().to_vec();
    reload(&mut alice, &mut storage);
    assert_eq!(alice.group.epoch_authenticator(), authenticator);

    // The next message uses a new generation (no key/nonce reuse): Bob reads it.
    let m = send_durable(&mut alice, &mut storage, b"after reboot");
    assert_eq!(bob.receive_app(&m).1, b"after reboot");
    assert_eq!(carol.receive_app(&m).1, b"after reboot");

    // A commit with path from Bob, processed and merged durably.
    let (commit, _) = bob.commit(&[], true, WireFormatPolicy::Private);
    receive_durable(&mut alice, &mut storage, &commit).unwrap();
    carol.receive_commit(&commit);
    agree(&[&alice, &bob, &carol]);
    reload(&mut alice, &mut storage);
    agree(&[&alice, &bob, &carol]);

    // Alice commits after the reload; everyone follows.
    let (commit, _) = alice.commit(&[], true, WireFormatPolicy::Public);
    bob.receive_commit(&commit);
    carol.receive_commit(&commit);
    agree(&[&alice, &bob, &carol]);
    let m = carol.send(b"late");
    assert_eq!(alice.receive_app(&m).1, b"late");
}

#[test]
fn save_load_continue_suite_3() {
    save_load_continue(CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519);
}

#[test]
fn save_load_continue_suite_1() {
    save_load_continue(CipherSuite::X25519Aes128GcmSha256Ed25519);
}

#[test]
fn replay_after_reload_is_refused() {
    let (mut alice, mut bob, _) = group_of(CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519);
    let mut storage = MapStorage::default();
    alice.group.save(&mut storage, SLOT, Parts::ALL, &mut buf()).unwrap();
    let m = bob.send(b"once");
    assert_eq!(receive_durable(&mut alice, &mut storage, &m).unwrap(), b"once");
    reload(&mut alice, &mut storage);
    assert!(matches!(receive_durable(&mut alice, &mut storage, &m), Err(DurableError::Op(_))), "replay accepted after reboot");
}

#[test]
fn own_commit_survives_reload_and_merges() {
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let (mut alice, mut bob, mut carol) = group_of(suite);
    let mut storage = MapStorage::default();
    alice.group.save(&mut storage, SLOT, Parts::ALL, &mut buf()).unwrap();
    let (mut mb, mut wb, mut gb) = buffers();
    let opts = CommitOptions {
        proposals: &[],
        include_pending: true,
        force_path: true,
        ratchet_tree_in_welcome: true,
        wire_format: WireFormatPolicy::Private,
        padding: 0,
        authenticated_data: b"",
        leaf: Some(alice.template()),
    };
    let bufs = CommitBuffers { message: &mut mb, welcome: &mut wb, group_info: &mut gb };
    let mut b = buf();
    let out = alice.group.stored(&mut storage, SLOT, &mut b).commit(&opts, &NoPsks, NOW, &mut alice.rng, &Sequential, bufs).unwrap();
    let commit = out.commit.to_vec();
    // Power cut after the commit left: the staged epoch is in the store.
    reload(&mut alice, &mut storage);
    alice.group.stored(&mut storage, SLOT, &mut b).merge_staged_commit().unwrap();
    bob.receive_commit(&commit);
    carol.receive_commit(&commit);
    agree(&[&alice, &bob, &carol]);
    reload(&mut alice, &mut storage);
    agree(&[&alice, &bob, &carol]);
}

/// A ReInit Commit of ours (`commit_reinit_durable`) is in the store before
/// it is returned: after a reboot it merges, the group ends with the
/// ReInit's parameters, and the stored old group still gives the reinit
/// PSK for the new group (§11.2).
#[test]
fn own_reinit_commit_survives_reload() {
    use mls_nostd::messages::proposal::ReInit;
    use mls_nostd::psk::PskStore;
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let (mut alice, mut bob, mut carol) = group_of(suite);
    let mut storage = MapStorage::default();
    alice.group.save(&mut storage, SLOT, Parts::ALL, &mut buf()).unwrap();
    let reinit = Proposal::ReInit(ReInit {
        group_id: b"store-group-2",
        version: 1,
        cipher_suite: CipherSuite::X25519Aes128GcmSha256Ed25519.to_u16(),
        extensions: Default::default(),
    });
    let mut out = vec![0u8; 4096];
    let proposal = bob.group.propose(&reinit, WireFormatPolicy::Public, &mut bob.rng, &mut out).unwrap().to_vec();
    carol.group.process_message_in_memory(&mut proposal.clone(), &NoPsks, NOW).unwrap();
    let mut b = buf();
    let mut msg = proposal.clone();
    let reference = match alice.group.stored(&mut storage, SLOT, &mut b).process_message_with_psks(&mut msg, &NoPsks, NOW) {
        Ok(Received::Proposal { reference, .. }) => reference,
        other => panic!("{other:?}"),
    };
    // The pending ReInit is stored with the group: committed after a reboot.
    reload(&mut alice, &mut storage);
    let (mut mb, mut wb, mut gb) = buffers();
    let opts = CommitOptions {
        proposals: &[],
        include_pending: false,
        force_path: false,
        ratchet_tree_in_welcome: false,
        wire_format: WireFormatPolicy::Private,
        padding: 0,
        authenticated_data: b"",
        leaf: Some(alice.template()),
    };
    let bufs = CommitBuffers { message: &mut mb, welcome: &mut wb, group_info: &mut gb };
    let out = alice
        .group
        .stored(&mut storage, SLOT, &mut b).commit_reinit(&reference, &opts, &NoPsks, NOW, &mut alice.rng, &Sequential, bufs)
        .unwrap();
    assert!(out.summary.reinit);
    let commit = out.commit.to_vec();
    reload(&mut alice, &mut storage);
    // Staged, not committed: the group is still active (one slot holds a
    // staged and a committed ReInit, told apart by the committed epoch).
    assert!(alice.group.has_staged_commit());
    assert!(!alice.group.is_inactive());
    assert!(alice.group.reinit().is_none());
    alice.group.stored(&mut storage, SLOT, &mut b).merge_staged_commit().unwrap();
    bob.receive_commit(&commit);
    carol.receive_commit(&commit);
    agree(&[&alice, &bob, &carol]);
    reload(&mut alice, &mut storage);
    assert!(alice.group.is_inactive());
    assert_eq!(alice.group.reinit().unwrap().group_id.as_slice(), b"store-group-2");
    let epoch = alice.group.epoch();
    assert_eq!(
        PskStore::resumption_psk(&*alice.group, b"store-group", epoch),
        PskStore::resumption_psk(&*bob.group, b"store-group", epoch)
    );
    assert!(PskStore::resumption_psk(&*alice.group, b"store-group", epoch).is_some());
}

#[test]
fn join_consumes_key_package_at_the_commit_point() {
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let (mut alice, mut bob, _) = group_of(suite);
    let mut dave = Member::new("dave", 14);
    let mut storage = MapStorage::default();
    let (kp, keys) = dave.key_package(suite);
    let reference = KeyPackage::decode_exact(&kp).unwrap().reference(suite).unwrap();
    let mut b = buf();
    store_key_package(&mut storage, suite, &reference, &keys, &dave.signer, &mut b).unwrap();
    let before_join = storage.clone();

    let add = Proposal::Add(Add { key_package: KeyPackage::decode_exact(&kp).unwrap() });
    let (commit, welcome) = alice.commit(&[add], false, WireFormatPolicy::Public);
    bob.receive_commit(&commit);
    let params = JoinParams {
        executor: &mls_nostd::executor::Sequential,
        key_package: &kp,
        keys: &keys,
        signer: &dave.signer,
        ratchet_tree: None,
        psks: &NoPsks,
        config: GroupConfig::default(),
    };
    let welcome = welcome.unwrap();
    let mut gi = vec![0u8; welcome.len()];
    dave.group.stored(&mut storage, SLOT, &mut b).join_with(&welcome, &params, &mut gi).unwrap();
    assert!(load_key_package::<_, SignaturePrivateKey>(&mut storage, &reference, &mut b).unwrap().is_none(), "KeyPackage keys kept after join");
    agree(&[&alice, &bob, &dave]);

    // A cut between the head and the key removal: recovery finishes it.
    let mut cut = storage.clone();
    for (k, v) in before_join.0.iter().filter(|(k, _)| k.to_be_bytes()[0] == 3) {
        cut.0.insert(*k, v.clone());
    }
    assert!(load_key_package::<_, SignaturePrivateKey>(&mut cut, &reference, &mut b).unwrap().is_some());
    reload(&mut dave, &mut cut);
    assert!(load_key_package::<_, SignaturePrivateKey>(&mut cut, &reference, &mut b).unwrap().is_none(), "recovery left the consumed key");
    agree(&[&alice, &bob, &dave]);
    let m = dave.send(b"hi");
    assert_eq!(alice.receive_app(&m).1, b"hi");
}

/// Every record damaged in turn (a bit flip, truncation, foreign bytes, a
/// future version): loading fails with a typed error and the group is left
/// empty; the intact store still loads.
#[test]
fn corrupted_records_are_typed_errors() {
    let (mut alice, _, _) = group_of(CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519);
    let mut storage = MapStorage::default();
    alice.group.save(&mut storage, SLOT, Parts::ALL, &mut buf()).unwrap();
    let mut b = buf();
    let mut cases = 0;
    let mut tree_records_missing_ok = 0;
    let keys: Vec<RecordKey> = storage.0.keys().copied().collect();
    for key in &keys {
        let original = storage.0[key].clone();
        let mut damaged = Vec::new();
        for pos in [0, original.len() / 2, original.len() - 1] {
            let mut v = original.clone();
            v[pos] ^= 0x10;
            damaged.push(v);
        }
        damaged.push(original[..original.len() - 1].to_vec());
        damaged.push(original[..original.len() / 3].to_vec());
        damaged.push(vec![0xA5; original.len()]);
        for v in damaged {
            let mut s = storage.clone();
            s.0.insert(*key, v);
            let mut g = Box::new(G::EMPTY);
            let err = g.load(&mut s, SLOT, &mls_nostd::identity::SAME_CREDENTIAL, &mut b).unwrap_err();
            assert!(matches!(err, StoreError::Corrupt | StoreError::WrongVersion(_) | StoreError::Invalid(_)), "{err:?}");
            assert!(g.is_inactive(), "a failed load left an active group");
            cases += 1;
        }
        // A missing record. A secret-tree record (kinds 5 to 8) is a secret
        // deleted, which a cut can leave (store/ratchets.rs): the group
        // loads without it (a previous epoch's tree without its index has
        // no secrets), or refuses if its epoch's tree holds nothing at all.
        let mut s = storage.clone();
        s.0.remove(key);
        let mut g = Box::new(G::EMPTY);
        let tree_record = (5..=8).contains(&key.to_be_bytes()[0]);
        match g.load(&mut s, SLOT, &mls_nostd::identity::SAME_CREDENTIAL, &mut b) {
            Err(_) => {}
            Ok(()) if tree_record => {
                assert_eq!(g.epoch_authenticator(), alice.group.epoch_authenticator());
                tree_records_missing_ok += 1;
            }
            Ok(()) => panic!("record {key:08x} missing, not noticed"),
        }
        cases += 1;
    }
    // The store with its head rewritten to format `version`, correctly hashed.
    let head_key = mls_nostd::store::head_key(SLOT);
    let with_version = |version: u8| {
        let mut head = storage.0[&head_key].clone();
        head[4] = version;
        let body_len = head.len() - 32;
        let digest = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519.hash(&[&head[..body_len]]);
        head[body_len..].copy_from_slice(digest.as_bytes());
        let mut s = storage.clone();
        s.0.insert(head_key, head);
        s
    };
    let mut g = Box::new(G::EMPTY);
    // A future version; version 4 (a head that names no store), version 3
    // (a parent's unmerged leaves as a list), version 2 (the ratchet tree
    // in the epoch part, before its nodes were records of their own, issue
    // #14) and version 1 (the secret trees in one blob): refused, not
    // misread.
    for version in [9, 3, 2, 1] {
        let err = g.load(&mut with_version(version), SLOT, &mls_nostd::identity::SAME_CREDENTIAL, &mut b).unwrap_err();
        assert_eq!(err, StoreError::WrongVersion(version));
    }
    let err = g.load(&mut with_version(4), SLOT, &mls_nostd::identity::SAME_CREDENTIAL, &mut b).unwrap_err();
    assert_eq!(err, StoreError::WrongVersion(4));
    assert_eq!(err.to_string(), "stored state has format version 4; this build reads version 5");
    // Nothing stored at all.
    assert_eq!(g.load(&mut MapStorage::default(), SLOT, &mls_nostd::identity::SAME_CREDENTIAL, &mut b).unwrap_err(), StoreError::NotFound);
    println!("{} records, {cases} damaged variants refused ({tree_records_missing_ok} missing tree records loaded)", keys.len());
    assert!(keys.len() >= 3 && cases == 7 * keys.len());
    g.load(&mut storage, SLOT, &mls_nostd::identity::SAME_CREDENTIAL, &mut b).unwrap();
    assert_eq!(g.epoch_authenticator(), alice.group.epoch_authenticator());
}

#[test]
fn external_psks_are_kept_replaced_and_removed() {
    use mls_nostd::psk::PskStore;
    use mls_nostd::store::psks::{remove_external_psk, store_external_psk, ExternalPsks};
    let mut storage = RamStorage::<32, 8192>::EMPTY;
    store_external_psk(&mut storage, b"fleet-psk", &[7; 32]).unwrap();
    store_external_psk(&mut storage, b"other", &[8; 32]).unwrap();
    store_external_psk(&mut storage, b"fleet-psk", &[9; 32]).unwrap();
    let psks = ExternalPsks::<4>::load(&mut storage).unwrap();
    assert_eq!(psks.external_psk(b"fleet-psk"), Some(&[9u8; 32][..]));
    assert_eq!(psks.external_psk(b"other"), Some(&[8u8; 32][..]));
    assert_eq!(psks.external_psk(b"none"), None);
    remove_external_psk(&mut storage, b"fleet-psk").unwrap();
    let psks = ExternalPsks::<4>::load(&mut storage).unwrap();
    assert_eq!(psks.external_psk(b"fleet-psk"), None);
    assert!(!storage.raw().windows(32).any(|w| w == [9u8; 32] || w == [7u8; 32]), "removed PSK bytes remain");
    assert!(store_external_psk(&mut storage, &[0; 65], &[1; 32]).is_err());
}

/// A stored group's discard drops the staged Commit from the store too: after
/// a reboot no Commit is staged (before `StoredGroup`, a discard was only in
/// memory and the reboot brought the dropped Commit back), and the group
/// follows the next Commit of another member.
#[test]
fn stored_discard_drops_the_staged_commit_from_the_store() {
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let (mut alice, mut bob, mut carol) = group_of(suite);
    let mut storage = MapStorage::default();
    let mut b = buf();
    alice.group.stored(&mut storage, SLOT, &mut b).save(Parts::ALL).unwrap();
    let (mut mb, mut wb, mut gb) = buffers();
    let opts = CommitOptions { force_path: true, leaf: Some(alice.template()), ..CommitOptions::DEFAULT };
    let bufs = CommitBuffers { message: &mut mb, welcome: &mut wb, group_info: &mut gb };
    alice.group.stored(&mut storage, SLOT, &mut b).commit(&opts, &NoPsks, NOW, &mut alice.rng, &Sequential, bufs).unwrap();
    let mut copy = storage.clone();
    reload(&mut alice, &mut copy);
    assert!(alice.group.has_staged_commit(), "the own Commit was stored before it was returned");
    alice.group.stored(&mut storage, SLOT, &mut b).discard_staged_commit().unwrap();
    assert!(!alice.group.has_staged_commit());
    reload(&mut alice, &mut storage);
    assert!(!alice.group.has_staged_commit(), "the discarded Commit came back after a reboot");
    let (commit, _) = bob.commit(&[], true, WireFormatPolicy::Private);
    receive_durable(&mut alice, &mut storage, &commit).unwrap();
    carol.receive_commit(&commit);
    agree(&[&alice, &bob, &carol]);
}

/// `StoredGroup::process_message` takes the external PSKs of a Commit from
/// the group's own store (issue #13: a stored group needs no PSK argument):
/// Bob refuses Alice's PSK Commit while his store lacks the key, and
/// follows her once it is stored.
#[test]
fn stored_process_message_reads_external_psks_from_the_store() {
    use mls_nostd::messages::proposal::PreSharedKey;
    use mls_nostd::psk::{Psk, PreSharedKeyId};
    use mls_nostd::store::psks::{store_external_psk, ExternalPsks};
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let (mut alice, mut bob) = (Member::new("alice", 61), Member::new("bob", 62));
    alice.create(suite, b"stored-psks", Default::default());
    alice.add(&mut bob, suite);
    let (id, secret) = (b"door-key".as_slice(), [9u8; 32]);
    let mut alice_store = Box::new(RamStorage::<64, { 64 * 1024 }>::EMPTY);
    store_external_psk(&mut *alice_store, id, &secret).unwrap();
    let psk = Proposal::PreSharedKey(PreSharedKey {
        psk: PreSharedKeyId { psk: Psk::External { psk_id: id }, psk_nonce: &[5; 32] },
    });
    let (mut m, mut w, mut gi) = buffers();
    let psks = ExternalPsks::<4>::load(&mut *alice_store).unwrap();
    let mut b = buf();
    let opts = CommitOptions { proposals: &[psk], ..CommitOptions::DEFAULT };
    let bufs = CommitBuffers { message: &mut m, welcome: &mut w, group_info: &mut gi };
    let out = alice.group.stored(&mut *alice_store, SLOT, &mut b).commit(&opts, &psks, NOW, &mut alice.rng, &Sequential, bufs).unwrap();
    assert_eq!(out.summary.psks, 1);
    let commit = out.commit.to_vec();
    alice.group.stored(&mut *alice_store, SLOT, &mut b).merge_staged_commit().unwrap();

    let mut bob_store = Box::new(RamStorage::<64, { 64 * 1024 }>::EMPTY);
    let epoch = bob.group.epoch();
    let mut msg = commit.clone();
    let refused = bob.group.stored(&mut *bob_store, SLOT, &mut b).process_message(&mut msg, NOW);
    assert!(matches!(refused, Err(DurableError::Op(_))), "{refused:?}");
    assert!(!bob.group.has_staged_commit() && bob.group.epoch() == epoch);
    store_external_psk(&mut *bob_store, id, &secret).unwrap();
    let mut msg = commit.clone();
    match bob.group.stored(&mut *bob_store, SLOT, &mut b).process_message(&mut msg, NOW) {
        Ok(Received::Commit(summary)) => assert_eq!(summary.psks, 1),
        other => panic!("{other:?}"),
    }
    bob.group.stored(&mut *bob_store, SLOT, &mut b).merge_staged_commit().unwrap();
    agree(&[&alice, &bob]);
}

/// A member removed by a Commit saves its end without rewriting the tree:
/// its secret trees are gone (so they no longer name the slot), but the tree
/// records it keeps are this slot's (issue #14: nodes the Commit did not
/// change keep their records). It then loads as an inactive group.
#[test]
fn a_removed_member_keeps_its_unchanged_tree_records() {
    use mls_nostd::messages::proposal::Remove;
    let (mut alice, mut bob, mut carol) = group_of(CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519);
    let mut storage = MapStorage::default();
    bob.group.save(&mut storage, SLOT, Parts::ALL, &mut buf()).unwrap();
    // Carol's leaf record (ratchet-tree node records are kinds 9 and 10).
    let carol_leaf = carol.group.own_leaf().0 * 2;
    let record_of = |s: &MapStorage, x: u32| -> Vec<(RecordKey, Vec<u8>)> {
        s.0.iter().filter(|(k, _)| matches!(k.to_be_bytes(), [9 | 10, SLOT, ..]) && *k & 0xFFFF == x).map(|(k, v)| (*k, v.clone())).collect()
    };
    let before = record_of(&storage, carol_leaf);
    assert_eq!(before.len(), 1, "carol's leaf is one record");
    let remove = Proposal::Remove(Remove { removed: bob.group.own_leaf().0 });
    let (commit, _) = alice.commit(&[remove], true, WireFormatPolicy::Public);
    receive_durable(&mut bob, &mut storage, &commit).unwrap();
    carol.receive_commit(&commit);
    assert!(bob.group.is_inactive());
    assert_eq!(record_of(&storage, carol_leaf), before, "an unchanged node was rewritten");
    reload(&mut bob, &mut storage);
    assert!(bob.group.is_inactive());
    agree(&[&alice, &carol]);
}

/// A member whose secret tree holds 6 secrets (`E`) in a group of 16
/// leaves (a sender's path from the root needs 5): issue #14's secret tree
/// whose RAM follows the senders heard from.
type PoolMember = mls_tests::member::MemberOf<16, { 16 * 512 }, 64, 8192, 6>;

/// Issue #14: the pool member hears 12 senders twice through its store,
/// which evicts secrets it holds unchanged and reads each sender's path
/// back when it speaks (a direct tree would hold 16 slots); after a reload
/// (no secret read at load) it hears them again, sends, and follows a
/// Commit sent as a PrivateMessage. A replayed message stays refused.
/// Alice, 11 members she added, and the pool member (13 members, 16 leaves).
fn pool_group() -> (Member, Vec<Member>, PoolMember) {
    let suite = CipherSuite::X25519Aes128GcmSha256Ed25519;
    let mut alice = Member::new("alice", 21);
    alice.create(suite, b"pool-group", Default::default());
    let mut others: Vec<Member> = Vec::new();
    let names = ["b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"];
    for (i, name) in names.iter().enumerate() {
        let mut m = Member::new(name, 30 + i as u64);
        let (kp, keys) = m.key_package(suite);
        let add = Proposal::Add(Add { key_package: KeyPackage::decode_exact(&kp).unwrap() });
        let (commit, welcome) = alice.commit(&[add], false, WireFormatPolicy::Public);
        for o in others.iter_mut() {
            o.receive_commit(&commit);
        }
        m.join(&welcome.unwrap(), &kp, &keys);
        others.push(m);
    }
    let mut dev = PoolMember::new("device", 99);
    let (kp, keys) = dev.key_package(suite);
    let add = Proposal::Add(Add { key_package: KeyPackage::decode_exact(&kp).unwrap() });
    let (commit, welcome) = alice.commit(&[add], true, WireFormatPolicy::Private);
    for o in others.iter_mut() {
        o.receive_commit(&commit);
    }
    dev.join(&welcome.unwrap(), &kp, &keys);
    (alice, others, dev)
}

/// In memory (no store to evict to), a pool refuses a sender it has no
/// room for, with the typed error, and the group is as it was.
#[test]
fn a_pool_in_memory_refuses_a_sender_it_has_no_room_for() {
    let (mut alice, mut others, mut dev) = pool_group();
    let m = alice.send(b"first");
    assert_eq!(dev.receive_app(&m).1, b"first");
    let authenticator = dev.group.epoch_authenticator().to_vec();
    // Leaf 9 (alice is leaf 0): its path's secret 3 levels up needs 3
    // entries; 5 of the 6 hold alice's ratchets and her path's siblings.
    // Leaf 9, then leaf 10 below the same secret: a refusal that had split
    // it before finding no room would have lost leaf 10's path (refused
    // then as a consumed key, not for room).
    for sender in [8, 9, 8] {
        let mut m = others[sender].send(b"no room");
        let refused = dev.group.process_message_in_memory(&mut m, &NoPsks, NOW).map(|_| ()).unwrap_err();
        assert!(
            matches!(
                refused,
                mls_nostd::group::ReceiveError::Protection(
                    mls_nostd::messages::authenticated_content::ProtectionError::SecretTree(
                        mls_nostd::secret_tree::SecretTreeError::CapacityExceeded(mls_nostd::Capacity::SecretTreeEntries)
                    )
                )
            ),
            "{refused:?}"
        );
    }
    assert_eq!(dev.group.epoch_authenticator(), authenticator);
    let m = alice.send(b"second");
    assert_eq!(dev.receive_app(&m).1, b"second");
}

/// A stored pool member refuses messages whose content does not decrypt
/// (their sender data does: a member's forgery, or a frame damaged past its
/// sender data), from senders all over the tree; then every member's real
/// message is read. Each refused message derived its sender's path into
/// the pool (what a real one from that sender does, and nothing is
/// consumed), and derived secrets stay in the pool until a save: before
/// December 8 the next sender found no clean entry to evict and was
/// refused with `CapacityExceeded(SecretTreeEntries)` until the device's
/// next save of its own (found in review).
#[test]
fn a_stored_pool_member_reads_every_sender_after_refused_forgeries() {
    let (mut alice, mut others, mut dev) = pool_group();
    let mut storage = MapStorage::default();
    let mut b = buf();
    dev.group.save(&mut storage, SLOT, Parts::ALL, &mut b).unwrap();
    let receive = |dev: &mut PoolMember, storage: &mut MapStorage, msg: &[u8]| {
        let mut msg = msg.to_vec();
        let mut b = buf();
        match dev.group.stored(storage, SLOT, &mut b).process_message_with_psks(&mut msg, &NoPsks, NOW) {
            Ok(Received::Application { data, .. }) => Ok(data.to_vec()),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e),
        }
    };
    let mut refused = 0;
    for sender in [8, 1, 5, 10, 3] {
        let mut bad = others[sender].send(b"a message that will not decrypt, longer than a sample");
        let n = bad.len();
        // The last byte is the content's AEAD tag, outside the sample that
        // keys the sender data.
        bad[n - 1] ^= 1;
        let e = receive(&mut dev, &mut storage, &bad).unwrap_err();
        assert!(matches!(e, DurableError::Op(mls_nostd::group::ReceiveError::Protection(mls_nostd::messages::authenticated_content::ProtectionError::ContentDecryptionFailed))), "{e:?}");
        refused += 1;
    }
    assert_eq!(refused, 5);
    let mut heard = 0;
    for (i, o) in std::iter::once(&mut alice).chain(others.iter_mut()).enumerate() {
        let text = format!("from {i}");
        let m = o.send(text.as_bytes());
        let read = receive(&mut dev, &mut storage, &m);
        assert_eq!(read.as_deref().ok(), Some(text.as_bytes()), "sender {i}: {read:?}");
        heard += 1;
    }
    assert_eq!(heard, 12);
}

#[test]
fn a_pool_member_hears_every_sender_through_its_store() {
    let (mut alice, mut others, mut dev) = pool_group();
    let mut storage = RamStorage::<256, { 256 * 1024 }>::EMPTY;
    let mut b = buf();
    dev.group.save(&mut storage, SLOT, Parts::ALL, &mut b).unwrap();

    let receive = |dev: &mut PoolMember,
                   storage: &mut RamStorage<256, { 256 * 1024 }>,
                   msg: &[u8]|
     -> Result<Vec<u8>, DurableError<mls_nostd::group::ReceiveError>> {
        let mut msg = msg.to_vec();
        let mut b = buf();
        let mut g = dev.group.stored(storage, SLOT, &mut b);
        match g.process_message_with_psks(&mut msg, &NoPsks, NOW)? {
            Received::Application { data, .. } => Ok(data.to_vec()),
            Received::Commit(_) => {
                g.merge_staged_commit().unwrap();
                Ok(Vec::new())
            }
            Received::Proposal { .. } => Ok(Vec::new()),
        }
    };
    let mut heard = 0;
    let mut first = None;
    for round in 0..2 {
        for (i, o) in std::iter::once(&mut alice).chain(others.iter_mut()).enumerate() {
            let text = format!("{round} from {i}");
            let m = o.send(text.as_bytes());
            first.get_or_insert_with(|| m.clone());
            assert_eq!(receive(&mut dev, &mut storage, &m).unwrap(), text.as_bytes());
            heard += 1;
        }
    }
    assert_eq!(heard, 24);
    let replay = first.unwrap();
    assert!(receive(&mut dev, &mut storage, &replay).is_err(), "a replay is refused");

    // Reboot: the tree's secrets are read back as their senders speak.
    let mut fresh = Box::new(mls_nostd::group::Group::<16, { 16 * 512 }, 64, 8192, SignaturePrivateKey, 6>::EMPTY);
    recover(&mut storage, SLOT, &mut b[..]).unwrap();
    fresh.load(&mut storage, SLOT, &mls_nostd::identity::SAME_CREDENTIAL, &mut b).unwrap();
    dev.group = fresh;
    assert!(receive(&mut dev, &mut storage, &replay).is_err(), "a replay is refused after the reload");
    for (i, o) in others.iter_mut().enumerate().rev() {
        let text = format!("after reload from {i}");
        let m = o.send(text.as_bytes());
        assert_eq!(receive(&mut dev, &mut storage, &m).unwrap(), text.as_bytes());
    }
    let mut out = vec![0u8; 1024];
    let n = dev.group.stored(&mut storage, SLOT, &mut b).protect_application(b"from the device", b"ad", 0, &mut dev.rng, &mut out).unwrap().len();
    assert_eq!(alice.receive_app(&out[..n]).1, b"from the device");

    // A Commit sent as a PrivateMessage (its sender's handshake ratchet).
    let (commit, _) = others[4].commit(&[], true, WireFormatPolicy::Private);
    receive(&mut dev, &mut storage, &commit).unwrap();
    alice.receive_commit(&commit);
    assert_eq!(dev.group.epoch_authenticator(), alice.group.epoch_authenticator());
    // A late message of the ended epoch: read with the previous epoch's
    // tree (a pool too) where one is kept, else refused.
    let late = others[7].send(b"late");
    let read = receive(&mut dev, &mut storage, &late);
    if mls_nostd::group::PAST_EPOCHS_KEPT > 0 {
        assert_eq!(read.unwrap(), b"late");
    } else {
        assert!(read.is_err(), "no past epoch kept: a late message is refused");
    }
    for (i, o) in others.iter_mut().enumerate() {
        if i != 4 {
            o.receive_commit(&commit);
        }
    }
    let m = others[7].send(b"next epoch");
    assert_eq!(receive(&mut dev, &mut storage, &m).unwrap(), b"next epoch");
}

/// A parent with more unmerged leaves than one record held as a list of 4
/// bytes a leaf (format 3: about 750 with records of 3 KiB, and the save
/// was refused with `CapacityExceeded(RecordLen)`; on the boards' 1 KiB
/// records about 230). The root of a 1,024-leaf tree is set by a path
/// while only two leaves are members, then 800 members are added by
/// Commits without a path, unmerged at the root, and a Commit adding 100
/// more is staged; the group is saved, loads as the same group, and both
/// merge the stage into the same epoch and tree, every list included.
#[test]
fn a_root_with_800_unmerged_leaves_is_saved_and_loaded() {
    type Big = MemberOf<1024, { 1024 * 256 }, 16, 8192>;
    let suite = CipherSuite::X25519Aes128GcmSha256Ed25519;
    let mut alice = Big::new("alice", 21);
    alice.create(suite, b"many-unmerged", Default::default());
    let (mut m, mut w, mut gi) = (vec![0u8; 256 * 1024], vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    let mut stage = |alice: &mut Big, proposals: &[Proposal<'_>]| {
        let opts = CommitOptions { proposals, ratchet_tree_in_welcome: false, ..CommitOptions::DEFAULT };
        let bufs = CommitBuffers { message: &mut m, welcome: &mut w, group_info: &mut gi };
        alice.group.commit_in_memory(&opts, &NoPsks, NOW, &mut alice.rng, &Sequential, bufs).unwrap();
    };
    let mut seed = 1000;
    // Commits adding `n` members, 100 at a time; the last one staged only.
    let mut add = |alice: &mut Big, stage: &mut dyn FnMut(&mut Big, &[Proposal<'_>]), n: usize, merge_last: bool| {
        for batch in 0..n / 100 {
            let kps: Vec<Vec<u8>> = (0..100)
                .map(|_| {
                    seed += 1;
                    Member::new("m", seed).key_package(suite).0
                })
                .collect();
            let adds: Vec<Proposal<'_>> =
                kps.iter().map(|kp| Proposal::Add(Add { key_package: KeyPackage::decode_exact(kp).unwrap() })).collect();
            stage(alice, &adds);
            if merge_last || batch + 1 < n / 100 {
                alice.group.merge_staged_commit_in_memory().unwrap();
            }
        }
    };
    // Leaves 0..=600: a tree of 1,024 leaves. Leaves 1..=599 removed (a
    // Remove's Commit has a path: the last one sets the root, unmerged
    // nowhere); leaf 600 keeps the tree's width.
    add(&mut alice, &mut stage, 600, true);
    for first in (1..600u32).step_by(100) {
        let removes: Vec<Proposal<'_>> =
            (first..(first + 100).min(600)).map(|removed| Proposal::Remove(Remove { removed })).collect();
        stage(&mut alice, &removes);
        alice.group.merge_staged_commit_in_memory().unwrap();
    }
    add(&mut alice, &mut stage, 800, true);
    let root_unmerged = |tree: &[u8]| match RatchetTreeView::decode_exact(tree).unwrap().iter().nth(1023) {
        Some(Some(Node::Parent(root))) => root.unmerged_leaves.len(),
        other => panic!("root: {other:?}"),
    };
    assert_eq!(root_unmerged(&export_tree(&mut alice)), 800);
    add(&mut alice, &mut stage, 100, false);

    let mut storage = MapStorage::default();
    alice.group.save(&mut storage, SLOT, Parts::ALL, &mut buf()).unwrap();
    let mut loaded = Big::new("alice", 21);
    loaded.group.load(&mut storage, SLOT, &mls_nostd::identity::SAME_CREDENTIAL, &mut buf()).unwrap();
    agree(&[&alice, &loaded]);
    alice.group.merge_staged_commit_in_memory().unwrap();
    loaded.group.merge_staged_commit_in_memory().unwrap();
    agree(&[&alice, &loaded]);
    // The same tree, every node and list (the load checked its hash, too).
    let exported = export_tree(&mut alice);
    assert_eq!(root_unmerged(&exported), 900);
    assert!(export_tree(&mut loaded) == exported);
}

/// A member's ratchet tree as the `ratchet_tree` extension encodes it.
fn export_tree<const N: usize, const A: usize, const K: usize, const P: usize>(m: &mut MemberOf<N, A, K, P>) -> Vec<u8> {
    let mut out = vec![0u8; 512 * 1024];
    let mut w = mls_nostd::codec::Writer::new(&mut out);
    m.group.export_tree(&mut w).unwrap();
    let n = w.len();
    out.truncate(n);
    out
}

/// A store whose writes and removals fail once `ops_left` reaches 0 (a
/// full or failing medium), until it is set again.
struct Failing {
    map: MapStorage,
    ops_left: Option<usize>,
}

/// One write or removal of a store that fails once `ops_left` reaches 0.
fn fail_step(ops_left: &mut Option<usize>) -> Result<(), mls_nostd::store::StorageError> {
    match ops_left {
        Some(0) => Err(mls_nostd::store::StorageError::Io),
        Some(n) => {
            *n -= 1;
            Ok(())
        }
        None => Ok(()),
    }
}

impl Failing {
    fn step(&mut self) -> Result<(), mls_nostd::store::StorageError> {
        fail_step(&mut self.ops_left)
    }
}

impl Storage for Failing {
    fn read<'b>(&mut self, key: RecordKey, buf: &'b mut [u8]) -> Result<Option<&'b [u8]>, mls_nostd::store::StorageError> {
        self.map.read(key, buf)
    }

    fn write(&mut self, key: RecordKey, value: &[u8]) -> Result<(), mls_nostd::store::StorageError> {
        self.step()?;
        self.map.write(key, value)
    }

    fn remove(&mut self, key: RecordKey) -> Result<(), mls_nostd::store::StorageError> {
        self.step()?;
        self.map.remove(key)
    }
}

/// A merge whose save fails (at any of its writes and removals) leaves the
/// group empty, not in an epoch the store may not hold (a message sent from
/// it saved its ratchets into the stored epoch, where the Commit's key then
/// read as consumed: the member could not process the Commit again). An
/// empty group refuses to be saved, so a retry cannot replace the stored
/// group. Loaded again, the member is in the epoch before the Commit and
/// merges it again (a received Commit processed again; its own, staged in
/// the store), or, when an operation after the head failed, in the one
/// after it. Returns the cases before and after the head.
fn merge_fails_at_every_step(own: bool) -> (usize, usize) {
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let (mut before, mut after) = (0, 0);
    for fail_at in 0.. {
        let (mut alice, mut bob, _) = group_of(suite);
        let mut storage = Failing { map: MapStorage::default(), ops_left: None };
        bob.group.save(&mut storage, SLOT, Parts::ALL, &mut buf()).unwrap();
        let epoch = bob.group.epoch();
        let mut b = buf();
        let commit = if own {
            let (mut mb, mut wb, mut gb) = buffers();
            let opts = CommitOptions { force_path: true, leaf: Some(bob.template()), ..CommitOptions::DEFAULT };
            let bufs = CommitBuffers { message: &mut mb, welcome: &mut wb, group_info: &mut gb };
            let mut stored = bob.group.stored(&mut storage, SLOT, &mut b);
            stored.commit(&opts, &NoPsks, NOW, &mut bob.rng, &Sequential, bufs).unwrap().commit.to_vec()
        } else {
            let (commit, _) = alice.commit(&[], true, WireFormatPolicy::Private);
            let mut msg = commit.clone();
            let received = bob.group.stored(&mut storage, SLOT, &mut b).process_message_with_psks(&mut msg, &NoPsks, NOW).unwrap();
            assert!(matches!(received, Received::Commit(_)));
            commit
        };
        storage.ops_left = Some(fail_at);
        let merged = bob.group.stored(&mut storage, SLOT, &mut b).merge_staged_commit();
        storage.ops_left = None;
        if merged.is_ok() {
            // The save takes `fail_at` operations: every earlier one was cut.
            assert!(fail_at > 3, "a merge's save writes its tree, its secrets and a head");
            break;
        }
        assert!(matches!(merged, Err(DurableError::Store(StoreError::Storage(mls_nostd::store::StorageError::Io)))), "{merged:?}");
        // Nothing can be sent from the failed epoch, and nothing saved.
        let mut out = vec![0u8; 512];
        let sent = bob.group.stored(&mut storage, SLOT, &mut b).protect_application(b"x", b"", 0, &mut bob.rng, &mut out);
        assert!(sent.is_err(), "operation {fail_at} failed: a message was sent from an unsaved epoch");
        let kept = storage.map.0.clone();
        assert_eq!(bob.group.stored(&mut storage, SLOT, &mut b).save(Parts::ALL), Err(StoreError::NoGroup));
        assert!(storage.map.0 == kept, "an emptied group's save changed the store");
        reload(&mut bob, &mut storage);
        if bob.group.epoch() == epoch {
            if !own {
                let mut msg = commit.clone();
                bob.group.stored(&mut storage, SLOT, &mut b).process_message_with_psks(&mut msg, &NoPsks, NOW).unwrap();
            }
            bob.group.stored(&mut storage, SLOT, &mut b).merge_staged_commit().unwrap();
            before += 1;
        } else {
            assert_eq!(bob.group.epoch(), epoch + 1);
            after += 1;
        }
        if own {
            alice.receive_commit(&commit);
        }
        agree(&[&alice, &bob]);
        let m = send_durable(&mut bob, &mut storage, b"after");
        assert_eq!(alice.receive_app(&m).1, b"after");
    }
    (before, after)
}

#[test]
fn a_merge_whose_save_fails_leaves_the_group_empty() {
    let (before, after) = merge_fails_at_every_step(false);
    println!("a received Commit's merge, cut at each of its save's operations: {before} before its head, {after} after");
    assert!(before > 3 && after > 0);
}

#[test]
fn a_merge_of_our_commit_whose_save_fails_merges_after_a_reload() {
    let (before, after) = merge_fails_at_every_step(true);
    println!("our Commit's merge, cut at each of its save's operations: {before} before its head, {after} after");
    assert!(before > 3 && after > 0);
}


/// Our Commit whose save fails (at any of its operations) before its
/// commit point is not given out: the call fails, the Commit and Welcome
/// buffers are wiped (its framing used a ratchet the store may not hold),
/// nothing is staged, in memory or in the store; the member commits again.
/// A save that fails after its commit point stored the stage: the Commit
/// is given out (never a stage in the store that nobody received), and
/// after a reload the member merges it. The group follows either way.
#[test]
fn our_commit_whose_save_fails_is_wiped_and_not_staged() {
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let (mut before_point, mut after_point) = (0, 0);
    for fail_at in 0.. {
        let (mut alice, mut bob, _) = group_of(suite);
        let mut storage = Failing { map: MapStorage::default(), ops_left: None };
        bob.group.save(&mut storage, SLOT, Parts::ALL, &mut buf()).unwrap();
        let mut b = buf();
        let (mut mb, mut wb, mut gb) = buffers();
        // A PrivateMessage: framed with bob's handshake ratchet.
        let opts = CommitOptions {
            force_path: true,
            wire_format: WireFormatPolicy::Private,
            leaf: Some(bob.template()),
            ..CommitOptions::DEFAULT
        };
        storage.ops_left = Some(fail_at);
        let bufs = CommitBuffers { message: &mut mb, welcome: &mut wb, group_info: &mut gb };
        let committed = bob
            .group
            .stored(&mut storage, SLOT, &mut b)
            .commit(&opts, &NoPsks, NOW, &mut bob.rng, &Sequential, bufs)
            .map(|out| out.commit.to_vec());
        // Operations to spare: the save took fewer than `fail_at`.
        let failed = storage.ops_left == Some(0);
        storage.ops_left = None;
        if !failed {
            assert!(committed.is_ok(), "{committed:?}");
            assert!(fail_at > 2, "a Commit's save writes its ratchet, its stage and a head (succeeded after {fail_at})");
            break;
        }
        let commit = match committed {
            Ok(commit) => {
                after_point += 1;
                reload(&mut bob, &mut storage);
                assert!(bob.group.staged_commit().is_some(), "operation {fail_at}: the Commit given out is not staged in the store");
                commit
            }
            Err(e) => {
                before_point += 1;
                assert!(matches!(e, DurableError::Store(StoreError::Storage(_))), "{e:?}");
                assert!(mb.iter().chain(&wb).chain(&gb).all(|&x| x == 0), "operation {fail_at} failed: the Commit's buffers were not wiped");
                assert!(bob.group.staged_commit().is_none());
                reload(&mut bob, &mut storage);
                assert!(bob.group.staged_commit().is_none(), "operation {fail_at}: a Commit not given out is staged in the store");
                let (mut mb, mut wb, mut gb) = buffers();
                let bufs = CommitBuffers { message: &mut mb, welcome: &mut wb, group_info: &mut gb };
                bob.group.stored(&mut storage, SLOT, &mut b).commit(&opts, &NoPsks, NOW, &mut bob.rng, &Sequential, bufs).unwrap().commit.to_vec()
            }
        };
        bob.group.stored(&mut storage, SLOT, &mut b).merge_staged_commit().unwrap();
        alice.receive_commit(&commit);
        agree(&[&alice, &bob]);
    }
    println!("our Commit's save cut at each of its operations: {before_point} before its commit point (wiped, not staged), {after_point} after it (given out, staged)");
    assert!(before_point > 2 && after_point > 0);
}

/// A store that counts removals of keys never written to it.
#[derive(Default)]
struct CountingRemovals {
    map: MapStorage,
    written: std::collections::BTreeSet<RecordKey>,
    removed: usize,
    never_written: usize,
}

impl Storage for CountingRemovals {
    fn read<'b>(&mut self, key: RecordKey, buf: &'b mut [u8]) -> Result<Option<&'b [u8]>, mls_nostd::store::StorageError> {
        self.map.read(key, buf)
    }

    fn write(&mut self, key: RecordKey, value: &[u8]) -> Result<(), mls_nostd::store::StorageError> {
        self.written.insert(key);
        self.map.write(key, value)
    }

    fn remove(&mut self, key: RecordKey) -> Result<(), mls_nostd::store::StorageError> {
        self.removed += 1;
        if !self.written.contains(&key) {
            self.never_written += 1;
        }
        self.map.remove(key)
    }
}

/// A stored member removes only records it wrote: each removal costs a
/// flash store a scan of its map. It removed every slot of the
/// skipped-key pool (64 here, 16 on the boards) with each ended epoch and
/// a parent's secret derived and used up between two saves; now the index
/// bounds the pool's slots and names the nodes written. (A record removed
/// when used may be removed again with its epoch's bank: the index still
/// names it.) Messages in and out of order (a skipped key stored, then
/// used), Commits received and our own.
#[test]
fn a_stored_member_removes_only_records_it_wrote() {
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let (mut alice, mut bob, _) = group_of(suite);
    let mut storage = CountingRemovals::default();
    bob.group.save(&mut storage, SLOT, Parts::ALL, &mut buf()).unwrap();
    for round in 0..3 {
        let (first, second) = (alice.send(b"one"), alice.send(b"two"));
        assert_eq!(receive_durable(&mut bob, &mut storage, &second).unwrap(), b"two");
        assert_eq!(receive_durable(&mut bob, &mut storage, &first).unwrap(), b"one");
        let m = send_durable(&mut bob, &mut storage, b"back");
        assert_eq!(alice.receive_app(&m).1, b"back");
        let (commit, _) = alice.commit(&[], true, WireFormatPolicy::Private);
        receive_durable(&mut bob, &mut storage, &commit).unwrap();
        let (mut mb, mut wb, mut gb) = buffers();
        let opts = CommitOptions { force_path: true, leaf: Some(bob.template()), ..CommitOptions::DEFAULT };
        let bufs = CommitBuffers { message: &mut mb, welcome: &mut wb, group_info: &mut gb };
        let mut b = buf();
        let out = bob.group.stored(&mut storage, SLOT, &mut b).commit(&opts, &NoPsks, NOW, &mut bob.rng, &Sequential, bufs).unwrap();
        let commit = out.commit.to_vec();
        bob.group.stored(&mut storage, SLOT, &mut b).merge_staged_commit().unwrap();
        alice.receive_commit(&commit);
        agree(&[&alice, &bob]);
        let never = storage.never_written;
        assert_eq!(never, 0, "round {round}: {never} of {} removals named a record never written", storage.removed);
    }
    println!("{} removals, each of a record written before", storage.removed);
    assert!(storage.removed > 0);
}

/// The skipped-key records of `slot` in `map` (kinds 7 and 8: pool entries
/// of either bank; their index chunks have the high byte 0x80 and up).
fn pool_records(map: &MapStorage) -> Vec<RecordKey> {
    map.0
        .keys()
        .copied()
        .filter(|k| {
            let [kind, slot, hi, _] = k.to_be_bytes();
            (kind == 7 || kind == 8) && slot == SLOT && hi < 0x80
        })
        .collect()
}

/// Bob receives m0, then m3 (skipping m1 and m2: two pool slots) while
/// the store fails after `ok` operations (`ops_left` set), then m4 with the
/// store well: m1's and m2's keys must be stored, be read after a reload,
/// and leave the store with their epoch.
fn skipped_keys_after_a_failed_save<S: Storage>(mut storage: S, ok: usize, ops_left: fn(&mut S) -> &mut Option<usize>, map: fn(&S) -> &MapStorage) {
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let (mut alice, mut bob, _) = group_of(suite);
    bob.group.save(&mut storage, SLOT, Parts::ALL, &mut buf()).unwrap();
    let m: Vec<Vec<u8>> = (0..5).map(|i| alice.send(format!("m{i}").as_bytes())).collect();
    assert_eq!(receive_durable(&mut bob, &mut storage, &m[0]).unwrap(), b"m0");
    *ops_left(&mut storage) = Some(ok);
    assert!(receive_durable(&mut bob, &mut storage, &m[3]).is_err());
    *ops_left(&mut storage) = None;
    assert_eq!(receive_durable(&mut bob, &mut storage, &m[4]).unwrap(), b"m4");
    assert_eq!(pool_records(map(&storage)).len(), 2, "m1's and m2's keys stored");
    reload(&mut bob, &mut storage);
    assert_eq!(receive_durable(&mut bob, &mut storage, &m[1]).unwrap(), b"m1", "a skipped key lost by the reload");
    for _ in 0..2 {
        let (commit, _) = alice.commit(&[], true, WireFormatPolicy::Private);
        receive_durable(&mut bob, &mut storage, &commit).unwrap();
    }
    agree(&[&alice, &bob]);
    let left = pool_records(map(&storage));
    assert!(left.is_empty(), "skipped keys of an ended epoch left in the store: {left:08x?}");
}

/// A save whose first write (the secret tree's index, raising the pool's
/// mark) fails leaves the index behind the group in memory: the next save
/// writes it again (found in review). Before, the next save trusted the
/// mark in memory and wrote the skipped keys above the stored mark, so the
/// reload did not see them (a skipped message refused) and the ended
/// epoch's removal did not reach them (its keys stayed in the store).
#[test]
fn a_failed_index_write_is_written_again_by_the_next_save() {
    let storage = Failing { map: MapStorage::default(), ops_left: None };
    skipped_keys_after_a_failed_save(storage, 0, |s| &mut s.ops_left, |s| &s.map);
}

/// A transactional store, as `platform_std::SqliteStorage`: writes and
/// removals wait for [`Storage::committed`], and one that fails rolls back
/// every one since (once `ops_left` reaches 0).
#[derive(Default)]
struct RollingBack {
    map: MapStorage,
    pending: Vec<(RecordKey, Option<Vec<u8>>)>,
    ops_left: Option<usize>,
}

impl RollingBack {
    fn step(&mut self) -> Result<(), mls_nostd::store::StorageError> {
        match &mut self.ops_left {
            Some(0) => {
                self.pending.clear();
                Err(mls_nostd::store::StorageError::Io)
            }
            Some(n) => {
                *n -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

impl Storage for RollingBack {
    fn read<'b>(&mut self, key: RecordKey, buf: &'b mut [u8]) -> Result<Option<&'b [u8]>, mls_nostd::store::StorageError> {
        match self.pending.iter().rev().find(|(k, _)| *k == key) {
            Some((_, None)) => Ok(None),
            Some((_, Some(v))) => {
                let out = buf.get_mut(..v.len()).ok_or(mls_nostd::store::StorageError::TooLarge)?;
                out.copy_from_slice(v);
                Ok(Some(out))
            }
            None => self.map.read(key, buf),
        }
    }

    fn write(&mut self, key: RecordKey, value: &[u8]) -> Result<(), mls_nostd::store::StorageError> {
        self.step()?;
        self.pending.push((key, Some(value.to_vec())));
        Ok(())
    }

    fn remove(&mut self, key: RecordKey) -> Result<(), mls_nostd::store::StorageError> {
        self.step()?;
        self.pending.push((key, None));
        Ok(())
    }

    fn committed(&mut self) -> Result<(), mls_nostd::store::StorageError> {
        for (key, value) in self.pending.drain(..) {
            match value {
                Some(v) => self.map.write(key, &v)?,
                None => self.map.remove(key)?,
            }
        }
        Ok(())
    }
}

/// As above with a store that rolls a failed save back: m3's index is
/// written, then a write after it fails and takes it back. The next save
/// writes the index again.
#[test]
fn an_index_rolled_back_with_its_save_is_written_again() {
    skipped_keys_after_a_failed_save(RollingBack::default(), 1, |s| &mut s.ops_left, |s| &s.map);
}

/// A save to a store that does not hold the group (here, its first) that
/// fails after writing skipped keys leaves them in the bank; the keys are
/// then used in memory, and the next save (the store still does not hold
/// the group) removes them before writing the tree again (found in
/// review: it kept records of the same tree, so the used keys stayed).
#[test]
fn a_failed_first_save_leaves_no_used_key_behind() {
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let (mut alice, mut bob, _) = group_of(suite);
    let m: Vec<Vec<u8>> = (0..4).map(|i| alice.send(format!("m{i}").as_bytes())).collect();
    // In memory: m3 skips m0, m1 and m2 (three pool slots).
    assert_eq!(bob.receive_app(&m[3]).1, b"m3");
    // The first save fails once the three skipped keys are written.
    let mut storage = Failing { map: MapStorage::default(), ops_left: None };
    let mut stopped = None;
    for ops in 1..200 {
        storage = Failing { map: MapStorage::default(), ops_left: Some(ops) };
        if bob.group.save(&mut storage, SLOT, Parts::ALL, &mut buf()).is_err() && pool_records(&storage.map).len() == 3 {
            stopped = Some(ops);
            break;
        }
    }
    assert!(stopped.is_some(), "no failing save left the three skipped keys");
    for (i, msg) in m.iter().take(3).enumerate() {
        assert_eq!(bob.receive_app(msg).1, format!("m{i}").as_bytes());
    }
    storage.ops_left = None;
    bob.group.save(&mut storage, SLOT, Parts::ALL, &mut buf()).unwrap();
    let left = pool_records(&storage.map);
    assert!(left.is_empty(), "used skipped keys left in the store: {left:08x?}");
    reload(&mut bob, &mut storage);
    assert_eq!(receive_durable(&mut bob, &mut storage, &alice.send(b"after")).unwrap(), b"after");
}

/// A save to another store whose head names none of the group's trees
/// fails before it cleans a bank there; the group's next save to its own
/// store must not clear its committed trees before the head (found in
/// review: the flag of the failed save followed the group, and a cut in
/// that window left its own store with a head whose tree was gone). The
/// save to its own store is cut after every one of its operations in turn,
/// and each time the store loads and the member reads on.
#[test]
fn a_failed_save_elsewhere_leaves_the_own_store_whole() {
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let (mut alice, mut bob, mut carol) = group_of(suite);
    let mut own = Failing { map: MapStorage::default(), ops_left: None };
    bob.group.save(&mut own, SLOT, Parts::ALL, &mut buf()).unwrap();
    // Another store holds the group two epochs back (carol's save).
    let mut other = Failing { map: MapStorage::default(), ops_left: None };
    carol.group.save(&mut other, SLOT, Parts::ALL, &mut buf()).unwrap();
    for _ in 0..2 {
        let (commit, _) = alice.commit(&[], true, WireFormatPolicy::Private);
        receive_durable(&mut bob, &mut own, &commit).unwrap();
        carol.receive_commit(&commit);
    }
    let skipped = alice.send(b"skipped");
    let later = alice.send(b"later");
    assert_eq!(receive_durable(&mut bob, &mut own, &later).unwrap(), b"later");
    let mut cuts = 0;
    for ops in 0..400 {
        // Bob as stored, with the failed save elsewhere behind him.
        let mut store = Failing { map: MapStorage(own.map.0.clone()), ops_left: None };
        let mut copy = Member::new("bob", 12);
        reload(&mut copy, &mut store);
        let mut elsewhere = Failing { map: MapStorage(other.map.0.clone()), ops_left: Some(0) };
        assert!(copy.group.save(&mut elsewhere, SLOT, Parts::ALL, &mut buf()).is_err());
        store.ops_left = Some(ops);
        if copy.group.save(&mut store, SLOT, Parts::ALL, &mut buf()).is_ok() {
            break;
        }
        cuts += 1;
        store.ops_left = None;
        reload(&mut copy, &mut store);
        assert_eq!(receive_durable(&mut copy, &mut store, &skipped).unwrap(), b"skipped", "cut after {ops} operations");
    }
    println!("{cuts} cuts of the save to the own store, each loaded");
    assert!(cuts > 0);
}

/// A transactional store rolls a failed save back whole, so the records
/// it wrote stay changed in memory until a save commits (found in review:
/// their `*_DIRTY` flags were cleared as each write returned, and the next
/// save skipped them). Bob receives m1 (skipping m0) while the save fails
/// after `ops` operations and is rolled back; m0 is then received (from
/// the skipped pool, which does not mark alice's leaf changed) and saved.
/// After a reload the store must load, m0 must stay refused, and a new
/// message of alice must be read.
#[test]
fn a_rolled_back_save_writes_its_ratchets_again() {
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let mut problems = Vec::new();
    // The operations the save needs: every smaller count was cut.
    let mut needed = None;
    for ops in 0..40 {
        let (mut alice, mut bob, _) = group_of(suite);
        let mut storage = RollingBack::default();
        bob.group.save(&mut storage, SLOT, Parts::ALL, &mut buf()).unwrap();
        let m: Vec<Vec<u8>> = (0..3).map(|i| alice.send(format!("m{i}").as_bytes())).collect();
        storage.ops_left = Some(ops);
        if receive_durable(&mut bob, &mut storage, &m[1]).is_ok() {
            println!("the save needs {ops} operations");
            needed = Some(ops);
            break;
        }
        storage.ops_left = None;
        assert_eq!(receive_durable(&mut bob, &mut storage, &m[0]).unwrap(), b"m0");
        let mut fresh = Box::new(G::EMPTY);
        let mut b = buf();
        recover(&mut storage, SLOT, &mut b[..]).unwrap();
        if let Err(e) = fresh.load(&mut storage, SLOT, &mls_nostd::identity::SAME_CREDENTIAL, &mut b) {
            problems.push(format!("fail after {ops} ops: the store no longer loads ({e:?})"));
            continue;
        }
        bob.group = fresh;
        if let Ok(d) = receive_durable(&mut bob, &mut storage, &m[0]) {
            problems.push(format!("fail after {ops} ops: m0 replayed after the reload ({:?})", String::from_utf8_lossy(&d)));
        }
        if let Err(e) = receive_durable(&mut bob, &mut storage, &m[2]) {
            problems.push(format!("fail after {ops} ops: m2 refused after the reload ({e:?})"));
        }
    }
    let needed = needed.expect("the save did not complete within 40 operations: no cut point reached its end");
    assert!(needed > 0, "the save needed no operation: nothing was cut");
    assert!(problems.is_empty(), "{problems:#?}");
}

/// As above once alice's ratchets are stored (her m0 read): m2 (skipping
/// m1) is received while the save fails after `ops` operations and is
/// rolled back; m1 is then read from the skipped pool and saved. The store
/// must not keep alice's ratchet from before m1: after a reload m1 is
/// refused (it was accepted a second time, a replay, RFC 9420 §9.2).
#[test]
fn a_rolled_back_save_lets_no_replay_in() {
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let mut problems = Vec::new();
    // The operations the save needs: every smaller count was cut.
    let mut needed = None;
    for ops in 0..40 {
        let (mut alice, mut bob, _) = group_of(suite);
        let mut storage = RollingBack::default();
        bob.group.save(&mut storage, SLOT, Parts::ALL, &mut buf()).unwrap();
        let m: Vec<Vec<u8>> = (0..4).map(|i| alice.send(format!("m{i}").as_bytes())).collect();
        assert_eq!(receive_durable(&mut bob, &mut storage, &m[0]).unwrap(), b"m0");
        storage.ops_left = Some(ops);
        if receive_durable(&mut bob, &mut storage, &m[2]).is_ok() {
            println!("the save needs {ops} operations");
            needed = Some(ops);
            break;
        }
        storage.ops_left = None;
        assert_eq!(receive_durable(&mut bob, &mut storage, &m[1]).unwrap(), b"m1");
        reload(&mut bob, &mut storage);
        if let Ok(d) = receive_durable(&mut bob, &mut storage, &m[1]) {
            problems.push(format!("fail after {ops} ops: m1 accepted again after the reload ({:?})", String::from_utf8_lossy(&d)));
        }
    }
    let needed = needed.expect("the save did not complete within 40 operations: no cut point reached its end");
    assert!(needed > 0, "the save needed no operation: nothing was cut");
    assert!(problems.is_empty(), "{problems:#?}");
}

/// A second store that holds this member's group from an earlier save (a
/// copy, a backup slot) is not the group's own store, though its head
/// names the group's current or previous secret tree: a save to it writes
/// the whole group (found in review: it wrote only what changed since the
/// last save to the *first* store). The head names its store.
#[test]
fn a_save_to_a_stale_copy_writes_the_whole_group() {
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let mut problems = Vec::new();
    // Same epoch: the copy's ratchets stay behind.
    {
        let (mut alice, mut bob, _) = group_of(suite);
        let mut own = MapStorage::default();
        let mut copy = MapStorage::default();
        bob.group.save(&mut own, SLOT, Parts::ALL, &mut buf()).unwrap();
        bob.group.save(&mut copy, SLOT, Parts::ALL, &mut buf()).unwrap();
        let m0 = alice.send(b"m0");
        assert_eq!(receive_durable(&mut bob, &mut own, &m0).unwrap(), b"m0");
        bob.group.save(&mut copy, SLOT, Parts::ALL, &mut buf()).unwrap();
        reload(&mut bob, &mut copy);
        if receive_durable(&mut bob, &mut copy, &m0).is_ok() {
            problems.push("same epoch: m0 accepted again from the copy".to_string());
        }
    }
    // Same epoch, the copy holding a skipped key used since: it must go.
    {
        let (mut alice, mut bob, _) = group_of(suite);
        let mut own = MapStorage::default();
        let mut copy = MapStorage::default();
        bob.group.save(&mut own, SLOT, Parts::ALL, &mut buf()).unwrap();
        let m: Vec<Vec<u8>> = (0..4).map(|i| alice.send(format!("m{i}").as_bytes())).collect();
        // m1 skips m0, m3 skips m2: two pool slots, in both stores.
        assert_eq!(receive_durable(&mut bob, &mut own, &m[1]).unwrap(), b"m1");
        assert_eq!(receive_durable(&mut bob, &mut own, &m[3]).unwrap(), b"m3");
        bob.group.save(&mut copy, SLOT, Parts::ALL, &mut buf()).unwrap();
        assert_eq!(receive_durable(&mut bob, &mut own, &m[0]).unwrap(), b"m0");
        bob.group.save(&mut copy, SLOT, Parts::ALL, &mut buf()).unwrap();
        reload(&mut bob, &mut copy);
        if receive_durable(&mut bob, &mut copy, &m[0]).is_ok() {
            problems.push("same epoch: a used skipped key (m0) read again from the copy".to_string());
        }
        assert_eq!(receive_durable(&mut bob, &mut copy, &m[2]).unwrap(), b"m2");
    }
    // One epoch behind: the copy no longer loads.
    {
        let (mut alice, mut bob, _) = group_of(suite);
        let mut own = MapStorage::default();
        let mut copy = MapStorage::default();
        bob.group.save(&mut own, SLOT, Parts::ALL, &mut buf()).unwrap();
        bob.group.save(&mut copy, SLOT, Parts::ALL, &mut buf()).unwrap();
        let (commit, _) = alice.commit(&[], true, WireFormatPolicy::Private);
        receive_durable(&mut bob, &mut own, &commit).unwrap();
        bob.group.save(&mut copy, SLOT, Parts::ALL, &mut buf()).unwrap();
        let mut fresh = Box::new(G::EMPTY);
        let mut b = buf();
        recover(&mut copy, SLOT, &mut b[..]).unwrap();
        if let Err(e) = fresh.load(&mut copy, SLOT, &mls_nostd::identity::SAME_CREDENTIAL, &mut b) {
            problems.push(format!("one epoch behind: the copy no longer loads ({e:?})"));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// A transactional store rolls a failed save back whole, its head too:
/// Bob merges a Commit in memory and its save fails after `ops`
/// operations; he saves again with the store well, as the caller may
/// (`Group::save`). The ratchet tree's marks must not take the rolled-back
/// table for committed (they did once the head was written: the nodes the
/// Commit changed were not written again, and the store no longer loaded).
#[test]
fn a_rolled_back_commit_save_leaves_the_ratchet_tree_loadable() {
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let mut problems = Vec::new();
    let mut cuts = 0;
    for ops in 0..400 {
        let (mut alice, mut bob, _) = group_of(suite);
        let mut storage = RollingBack::default();
        bob.group.save(&mut storage, SLOT, Parts::ALL, &mut buf()).unwrap();
        let (commit, _) = alice.commit(&[], true, WireFormatPolicy::Private);
        bob.receive_commit(&commit);
        storage.ops_left = Some(ops);
        if bob.group.save(&mut storage, SLOT, Parts::ALL, &mut buf()).is_ok() {
            println!("the save needs {ops} operations");
            break;
        }
        cuts += 1;
        storage.ops_left = None;
        bob.group.save(&mut storage, SLOT, Parts::ALL, &mut buf()).unwrap();
        let mut fresh = Box::new(G::EMPTY);
        let mut b = buf();
        recover(&mut storage, SLOT, &mut b[..]).unwrap();
        if let Err(e) = fresh.load(&mut storage, SLOT, &mls_nostd::identity::SAME_CREDENTIAL, &mut b) {
            problems.push(format!("fail after {ops} ops: the store no longer loads ({e:?})"));
            continue;
        }
        bob.group = fresh;
        agree(&[&alice, &bob]);
        if let Err(e) = receive_durable(&mut bob, &mut storage, &alice.send(b"after")) {
            problems.push(format!("fail after {ops} ops: a message refused after the reload ({e:?})"));
        }
    }
    assert!(cuts > 0);
    assert!(problems.is_empty(), "{problems:#?}");
}

/// The exported ratchet tree (§12.4.3.3) of `m`.
fn tree_of(m: &mut Member) -> Vec<u8> {
    let mut out = vec![0u8; 64 * 1024];
    let mut w = mls_nostd::codec::Writer::new(&mut out);
    m.group.export_tree(&mut w).unwrap();
    let n = w.len();
    out.truncate(n);
    out
}

/// Reloads `m` and checks the loaded tree and epoch are the in-memory ones.
fn reload_same<S: Storage>(m: &mut Member, storage: &mut S) {
    let (tree, auth) = (tree_of(m), m.group.epoch_authenticator().to_vec());
    reload(m, storage);
    assert_eq!(tree_of(m), tree, "reloaded tree differs");
    assert_eq!(m.group.epoch_authenticator(), auth);
}

/// Our own Commit that removes the last member (the tree truncates,
/// §7.7), stored staged, reloaded, merged, reloaded.
#[test]
fn own_truncating_commit_survives_reload() {
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let (mut alice, mut bob, _carol) = group_of(suite);
    let mut storage = MapStorage::default();
    alice.group.save(&mut storage, SLOT, Parts::ALL, &mut buf()).unwrap();
    let mut b = buf();
    let mut cbuf = vec![0u8; G::commit_buffers_len(7)];
    let out = alice.group.stored(&mut storage, SLOT, &mut b).remove_member(2, NOW, &mut alice.rng, &mut cbuf).unwrap();
    let commit = out.commit.to_vec();
    reload(&mut alice, &mut storage);
    alice.group.stored(&mut storage, SLOT, &mut b).merge_staged_commit().unwrap();
    bob.receive_commit(&commit);
    agree(&[&alice, &bob]);
    reload_same(&mut alice, &mut storage);
    agree(&[&alice, &bob]);
}

/// A stored member follows Commits that extend, truncate, blank and
/// update the tree (unmerged leaves included), reloaded after each: the
/// loaded tree is the in-memory one.
#[test]
fn a_scripted_tree_reloads_exactly() {
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let (mut alice, mut bob, mut carol) = group_of(suite);
    let mut storage = MapStorage::default();
    alice.group.save(&mut storage, SLOT, Parts::ALL, &mut buf()).unwrap();
    let names = ["d", "e", "f", "g", "h"];
    let mut others: Vec<Member> = Vec::new();
    // Bob adds members without path (unmerged leaves), extending to 8.
    for (i, name) in names.iter().enumerate() {
        let mut m = Member::new(name, 40 + i as u64);
        let (kp, keys) = m.key_package(suite);
        let add = Proposal::Add(Add { key_package: KeyPackage::decode_exact(&kp).unwrap() });
        let (commit, welcome) = bob.commit(&[add], false, WireFormatPolicy::Public);
        receive_durable(&mut alice, &mut storage, &commit).unwrap();
        carol.receive_commit(&commit);
        for o in others.iter_mut() {
            o.receive_commit(&commit);
        }
        m.join(&welcome.unwrap(), &kp, &keys);
        others.push(m);
        reload_same(&mut alice, &mut storage);
    }
    // Bob removes the last members (truncation to 4), then re-adds (extension).
    for removed in [7u32, 6, 5, 4] {
        let (commit, _) = bob.commit(&[Proposal::Remove(Remove { removed })], removed % 2 == 0, WireFormatPolicy::Public);
        receive_durable(&mut alice, &mut storage, &commit).unwrap();
        carol.receive_commit(&commit);
        let idx = (removed - 3) as usize;
        for (i, o) in others.iter_mut().enumerate() {
            if i < idx {
                o.receive_commit(&commit);
            }
        }
        others.truncate(idx);
        reload_same(&mut alice, &mut storage);
    }
    for (i, name) in ["x", "y", "z"].iter().enumerate() {
        let mut m = Member::new(name, 60 + i as u64);
        let (kp, keys) = m.key_package(suite);
        let add = Proposal::Add(Add { key_package: KeyPackage::decode_exact(&kp).unwrap() });
        let (commit, welcome) = carol.commit(&[add], i == 1, WireFormatPolicy::Public);
        receive_durable(&mut alice, &mut storage, &commit).unwrap();
        bob.receive_commit(&commit);
        for o in others.iter_mut() {
            o.receive_commit(&commit);
        }
        m.join(&welcome.unwrap(), &kp, &keys);
        others.push(m);
        reload_same(&mut alice, &mut storage);
    }
    // An update with path from the last one, then Alice's own.
    let (commit, _) = others.last_mut().unwrap().commit(&[], true, WireFormatPolicy::Public);
    receive_durable(&mut alice, &mut storage, &commit).unwrap();
    bob.receive_commit(&commit);
    reload_same(&mut alice, &mut storage);
    let mut cbuf = vec![0u8; G::commit_buffers_len(0)];
    let mut b = buf();
    let out = alice.group.stored(&mut storage, SLOT, &mut b).update(NOW, &mut alice.rng, &mut cbuf).unwrap();
    let commit = out.commit.to_vec();
    reload(&mut alice, &mut storage);
    alice.group.stored(&mut storage, SLOT, &mut b).merge_staged_commit().unwrap();
    bob.receive_commit(&commit);
    agree(&[&alice, &bob]);
    reload_same(&mut alice, &mut storage);
}

/// An external PSK at both limits (a 64-byte ID, a 64-byte key) is stored
/// and read back: each length takes a 2-byte varint prefix (RFC 9420 §2.1.2).
#[test]
fn external_psk_at_the_length_limits_is_kept() {
    use mls_nostd::psk::PskStore;
    use mls_nostd::store::psks::{store_external_psk, ExternalPsks, MAX_PSK_ID_LEN};
    let mut storage = RamStorage::<32, 8192>::EMPTY;
    let id = [5u8; MAX_PSK_ID_LEN];
    store_external_psk(&mut storage, &id, &[6; 64]).unwrap();
    let psks = ExternalPsks::<4>::load(&mut storage).unwrap();
    assert_eq!(psks.external_psk(&id), Some(&[6u8; 64][..]));
}

/// A parent's stored record lists the unmerged leaves of its own subtree
/// only (§7.1, §4.1): here leaf 5 is unmerged at node 11 (level 2), and
/// Bob's Commit rewrites node 3 (level 2, leaves 0-3). Its record had leaf
/// 5's bit (the bitmap was filled to whole bytes with leaves past the
/// subtree), and a load refused it (`UnmergedNotDescendant`): Bob's staged
/// Commit, then his merged epoch, could not be loaded. Found by the
/// store_roundtrip run (seed 95699924418562, round 96).
#[test]
fn a_parent_record_lists_only_its_own_unmerged_leaves() {
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let (alice, bob, carol) = group_of(suite);
    let mut g = vec![alice, bob, carol];
    for (i, name) in ["d", "e", "f", "g", "h"].into_iter().enumerate() {
        let mut m = Member::new(name, 80 + i as u64);
        let (first, rest) = g.split_first_mut().unwrap();
        let mut seen: Vec<&mut Member> = rest.iter_mut().collect();
        first.add_seen_by(&mut m, &mut seen, suite);
        g.push(m);
    }
    // `c` commits (with path: its direct path's parents are set), the others follow.
    fn round(g: &mut [Member], c: usize, proposals: &[Proposal<'_>], path: bool) -> Vec<u8> {
        let (commit, _) = g[c].commit(proposals, path, WireFormatPolicy::Public);
        for (i, m) in g.iter_mut().enumerate() {
            if i != c && !m.group.is_inactive() {
                let mut msg = commit.clone();
                match m.group.process_message_in_memory(&mut msg, &NoPsks, NOW) {
                    Ok(Received::Commit(_)) => m.group.merge_staged_commit_in_memory().unwrap(),
                    other => panic!("{}: {other:?}", m.name),
                }
            }
        }
        commit
    }
    assert_eq!(g[0].group.tree().n_leaves(), 8);
    // Alice removes f (leaf 5; her path sets nodes 1, 3, 7), h's path sets 13, 11, 7.
    round(&mut g, 0, &[Proposal::Remove(Remove { removed: 5 })], true);
    assert!(g[5].group.is_inactive());
    round(&mut g, 7, &[], true);
    // Alice adds x without path: leaf 5, unmerged at node 11 and the root.
    let mut x = Member::new("x", 99);
    let (kp, keys) = x.key_package(suite);
    let add = Proposal::Add(Add { key_package: KeyPackage::decode_exact(&kp).unwrap() });
    let (commit, welcome) = g[0].commit(&[add], false, WireFormatPolicy::Public);
    for m in g.iter_mut().skip(1).filter(|m| !m.group.is_inactive()) {
        m.receive_commit(&commit);
    }
    x.join(&welcome.unwrap(), &kp, &keys);
    assert_eq!(x.group.own_leaf().0, 5);
    g[5] = x;

    // Alice removes Carol (leaf 2; her path sets nodes 1, 3, 7 again; node 11 keeps leaf 5).
    round(&mut g, 0, &[Proposal::Remove(Remove { removed: 2 })], true);
    assert!(g[2].group.is_inactive());

    // Bob, stored, adds y without path: leaf 2, unmerged at node 3 and the
    // root; node 3's record is rewritten. Reloaded staged, merged, reloaded.
    let mut storage = MapStorage::default();
    g[1].group.save(&mut storage, SLOT, Parts::ALL, &mut buf()).unwrap();
    reload_same(&mut g[1], &mut storage);
    let mut y = Member::new("y", 98);
    let (kp, keys) = y.key_package(suite);
    let add = [Proposal::Add(Add { key_package: KeyPackage::decode_exact(&kp).unwrap() })];
    let bob = &mut g[1];
    let (mut mb, mut wb, mut gb) = buffers();
    let opts = CommitOptions { proposals: &add, ratchet_tree_in_welcome: true, ..CommitOptions::DEFAULT };
    let bufs = CommitBuffers { message: &mut mb, welcome: &mut wb, group_info: &mut gb };
    let mut b = buf();
    let out = bob.group.stored(&mut storage, SLOT, &mut b).commit(&opts, &NoPsks, NOW, &mut bob.rng, &Sequential, bufs).unwrap();
    assert!(!out.summary.has_path);
    let (commit, welcome) = (out.commit.to_vec(), out.welcome.unwrap().to_vec());
    reload(bob, &mut storage);
    bob.group.stored(&mut storage, SLOT, &mut b).merge_staged_commit().unwrap();
    reload_same(bob, &mut storage);
    for (i, m) in g.iter_mut().enumerate() {
        if i != 1 && !m.group.is_inactive() {
            m.receive_commit(&commit);
        }
    }
    y.join(&welcome, &kp, &keys);
    assert_eq!(y.group.own_leaf().0, 2);
    g[2] = y;
    let all: Vec<&Member> = g.iter().collect();
    agree(&all);
}

/// Our Update proposal sent through the store (`StoredGroup::propose_update`)
/// keeps its private key there: after a reboot, the member follows the
/// Commit that applies it (the path to its new leaf is sealed to that key).
/// A plain proposal (`StoredGroup::propose`, a PrivateMessage) keeps the
/// handshake ratchet's position: after a reboot the next handshake message
/// uses the next key, which the others accept.
#[test]
fn stored_proposals_survive_a_reboot() {
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let (mut alice, mut bob, mut carol) = group_of(suite);
    let mut storage = MapStorage::default();
    let mut b = buf();
    bob.group.save(&mut storage, SLOT, Parts::ALL, &mut b).unwrap();
    let mut out = vec![0u8; 8192];
    let template = bob.template();
    let update = bob.group.stored(&mut storage, SLOT, &mut b).propose_update(&template, WireFormatPolicy::Private, &mut bob.rng, &mut out).unwrap().to_vec();
    reload(&mut bob, &mut storage);
    for m in [&mut alice, &mut carol] {
        let mut msg = update.clone();
        assert!(matches!(m.group.process_message_in_memory(&mut msg, &NoPsks, NOW), Ok(Received::Proposal { .. })), "{}", m.name);
    }
    let (commit, _) = alice.commit(&[], true, WireFormatPolicy::Public);
    carol.receive_commit(&commit);
    assert_eq!(receive_durable(&mut bob, &mut storage, &commit).unwrap(), b"", "bob follows the Commit of his Update");
    agree(&[&alice, &bob, &carol]);
    // A Remove of carol proposed as a PrivateMessage, then a reboot, then
    // a Commit of bob's in that epoch: framed with the next handshake key.
    let mut out = vec![0u8; 8192];
    let remove = Proposal::Remove(Remove { removed: 2 });
    let proposal = bob.group.stored(&mut storage, SLOT, &mut b).propose(&remove, WireFormatPolicy::Private, &mut bob.rng, &mut out).unwrap().to_vec();
    reload(&mut bob, &mut storage);
    let mut msg = proposal.clone();
    assert!(matches!(alice.group.process_message_in_memory(&mut msg, &NoPsks, NOW), Ok(Received::Proposal { .. })));
    let (mut mb, mut wb, mut gb) = buffers();
    let opts = CommitOptions { force_path: true, wire_format: WireFormatPolicy::Private, leaf: Some(bob.template()), ..CommitOptions::DEFAULT };
    let bufs = CommitBuffers { message: &mut mb, welcome: &mut wb, group_info: &mut gb };
    let commit = bob.group.stored(&mut storage, SLOT, &mut b).commit(&opts, &NoPsks, NOW, &mut bob.rng, &Sequential, bufs).unwrap();
    let commit = commit.commit.to_vec();
    bob.group.stored(&mut storage, SLOT, &mut b).merge_staged_commit().unwrap();
    alice.receive_commit(&commit);
    agree(&[&alice, &bob]);
    assert_eq!(alice.group.tree().leaf_node(mls_nostd::tree_math::LeafIndex(2)), None, "carol's Remove was committed");
}

/// A stored proposal whose save fails (at any of its operations) before
/// its commit point is not given out: the call fails, `out` is wiped, and
/// the group is emptied (the one in memory would keep a proposal nobody
/// received); reloaded, the member proposes again. A save that fails after
/// its commit point stored the proposal: it is given out, and after a
/// reload the store holds it. Either way the others follow the Commit.
#[test]
fn a_stored_proposal_whose_save_fails_is_wiped() {
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let (mut before_point, mut after_point) = (0, 0);
    for fail_at in 0.. {
        let (mut alice, mut bob, _) = group_of(suite);
        let mut storage = Failing { map: MapStorage::default(), ops_left: None };
        let mut b = buf();
        bob.group.save(&mut storage, SLOT, Parts::ALL, &mut b).unwrap();
        let template = bob.template();
        let mut out = vec![0u8; 8192];
        storage.ops_left = Some(fail_at);
        let sent = bob.group.stored(&mut storage, SLOT, &mut b).propose_update(&template, WireFormatPolicy::Private, &mut bob.rng, &mut out).map(<[u8]>::to_vec);
        // Operations to spare: the save took fewer than `fail_at`.
        let failed = storage.ops_left == Some(0);
        storage.ops_left = None;
        if !failed {
            assert!(sent.is_ok(), "{sent:?}");
            break;
        }
        let update = match sent {
            Ok(update) => {
                after_point += 1;
                reload(&mut bob, &mut storage);
                assert_eq!(bob.group.pending_proposals().count(), 1, "operation {fail_at}: the proposal given out is not in the store");
                update
            }
            Err(e) => {
                before_point += 1;
                assert!(matches!(e, DurableError::Store(StoreError::Storage(_))), "{e:?}");
                assert!(out.iter().all(|&x| x == 0), "operation {fail_at} failed: the proposal was not wiped");
                assert_eq!(bob.group.stored(&mut storage, SLOT, &mut b).save(Parts::ALL), Err(StoreError::NoGroup), "the group was not emptied");
                reload(&mut bob, &mut storage);
                assert_eq!(bob.group.pending_proposals().count(), 0, "operation {fail_at}: a proposal not given out is in the store");
                bob.group.stored(&mut storage, SLOT, &mut b).propose_update(&template, WireFormatPolicy::Private, &mut bob.rng, &mut out).unwrap().to_vec()
            }
        };
        let mut msg = update.clone();
        assert!(matches!(alice.group.process_message_in_memory(&mut msg, &NoPsks, NOW), Ok(Received::Proposal { .. })));
        let (commit, _) = alice.commit(&[], true, WireFormatPolicy::Public);
        assert_eq!(receive_durable(&mut bob, &mut storage, &commit).unwrap(), b"");
        agree(&[&alice, &bob]);
    }
    println!("{before_point} failures before the save's commit point, {after_point} after it");
    assert!(before_point >= 2 && after_point >= 1, "a proposal's save writes its ratchets, its proposals and a head, then cleans up");
}

/// A transactional store (as `platform_std::SqliteStorage`): writes and
/// removals since the last `committed()` are seen by its reads but kept
/// apart, and a crash (`crash`) drops them. Writes and removals fail once
/// `ops_left` reaches 0.
struct Transactional {
    map: MapStorage,
    pending: Vec<(RecordKey, Option<Vec<u8>>)>,
    ops_left: Option<usize>,
}

impl Transactional {
    fn crash(&mut self) {
        self.pending.clear();
    }

    fn step(&mut self) -> Result<(), mls_nostd::store::StorageError> {
        fail_step(&mut self.ops_left)
    }
}

impl Storage for Transactional {
    fn read<'b>(&mut self, key: RecordKey, buf: &'b mut [u8]) -> Result<Option<&'b [u8]>, mls_nostd::store::StorageError> {
        match self.pending.iter().rev().find(|(k, _)| *k == key) {
            Some((_, None)) => Ok(None),
            Some((_, Some(v))) => {
                let out = buf.get_mut(..v.len()).ok_or(mls_nostd::store::StorageError::TooLarge)?;
                out.copy_from_slice(v);
                Ok(Some(out))
            }
            None => self.map.read(key, buf),
        }
    }

    fn write(&mut self, key: RecordKey, value: &[u8]) -> Result<(), mls_nostd::store::StorageError> {
        self.step()?;
        self.pending.push((key, Some(value.to_vec())));
        Ok(())
    }

    fn remove(&mut self, key: RecordKey) -> Result<(), mls_nostd::store::StorageError> {
        self.step()?;
        self.pending.push((key, None));
        Ok(())
    }

    fn committed(&mut self) -> Result<(), mls_nostd::store::StorageError> {
        for (key, value) in self.pending.drain(..) {
            match value {
                Some(v) => self.map.write(key, &v)?,
                None => self.map.remove(key)?,
            }
        }
        Ok(())
    }
}

/// On a transactional store, a stored proposal or Commit given out after a
/// save that failed is in the store even if the process then dies (its
/// transaction was committed), and one not given out is not (in the store
/// as left by the crash, after `recover`). The head's write is no commit
/// point there: what a failed save wrote stays in an open transaction.
#[test]
fn a_transactional_store_holds_what_a_failed_save_gave_out() {
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let (mut given, mut refused) = (0, 0);
    for commit in [false, true] {
        for fail_at in 0.. {
            let (_, mut bob, _) = group_of(suite);
            let mut storage = Transactional { map: MapStorage::default(), pending: Vec::new(), ops_left: None };
            let mut b = buf();
            bob.group.save(&mut storage, SLOT, Parts::ALL, &mut b).unwrap();
            storage.ops_left = Some(fail_at);
            let out = if commit {
                let (mut mb, mut wb, mut gb) = buffers();
                let opts = CommitOptions { force_path: true, leaf: Some(bob.template()), ..CommitOptions::DEFAULT };
                let bufs = CommitBuffers { message: &mut mb, welcome: &mut wb, group_info: &mut gb };
                bob.group.stored(&mut storage, SLOT, &mut b).commit(&opts, &NoPsks, NOW, &mut bob.rng, &Sequential, bufs).map(|_| ()).map_err(|e| format!("{e:?}"))
            } else {
                let template = bob.template();
                let mut out = vec![0u8; 8192];
                let mut stored = bob.group.stored(&mut storage, SLOT, &mut b);
                stored.propose_update(&template, WireFormatPolicy::Private, &mut bob.rng, &mut out).map(|_| ()).map_err(|e| format!("{e:?}"))
            };
            let failed = storage.ops_left == Some(0);
            storage.ops_left = None;
            storage.crash();
            reload(&mut bob, &mut storage);
            let held = if commit { bob.group.staged_commit().is_some() } else { bob.group.pending_proposals().count() == 1 };
            assert_eq!(held, out.is_ok(), "commit {commit}, operation {fail_at}: given out {out:?}, in the store after a crash {held}");
            if !failed {
                break;
            }
            if out.is_ok() { given += 1 } else { refused += 1 }
        }
    }
    println!("failed saves: {given} given out and held after a crash, {refused} refused and not held");
    assert!(given >= 2 && refused >= 4);
}

/// Bob proposes 12 Adds (kept for his next Commit): two proposal records.
fn propose_twelve_adds(bob: &mut Member, suite: CipherSuite) {
    let mut newcomer = Member::new("newcomer", 99);
    let mut out = vec![0u8; 8192];
    for _ in 0..12 {
        let (kp, _) = newcomer.key_package(suite);
        let add = Proposal::Add(Add { key_package: KeyPackage::decode_exact(&kp).unwrap() });
        bob.group.propose(&add, WireFormatPolicy::Public, &mut bob.rng, &mut out).unwrap();
    }
}

/// Each blob record of `slot` is counted by its head: in the committed
/// bank of its part, below the head's count. So a part's spare bank is
/// empty, and a bank holds nothing a failed save left behind.
fn banks_hold_what_the_head_counts(map: &MapStorage) -> usize {
    banks_of_slot_hold_what_the_head_counts(map, SLOT)
}

fn banks_of_slot_hold_what_the_head_counts(map: &MapStorage, of: u8) -> usize {
    let head = mls_nostd::store::Head::read(&mut map.clone(), of, &mut [0u8; MAX_RECORD_LEN]).unwrap();
    let mut blobs = 0;
    for &key in map.0.keys() {
        let [kind, slot, part_bank, index] = key.to_be_bytes();
        if kind != 2 || slot != of {
            continue;
        }
        let info = head.part(mls_nostd::store::Part::ALL[usize::from(part_bank >> 1)]);
        assert!(part_bank & 1 == info.bank && index < info.records, "record {key:08x} is not counted by the head ({info:?})");
        blobs += 1;
    }
    blobs
}

/// A save that fails after writing part of a bank leaves records there that
/// no head counts; the next save of the same group clears that bank before
/// writing it again, although its save before the failed one had left the
/// bank clean (a save looks a spare bank over only when unsure: each lookup
/// of a flash store scans its map). Here bob's pending proposals take two
/// records, his save fails at each operation in turn, he commits them (in
/// memory: none pending now) and saves: no proposal record stays behind.
#[test]
fn a_failed_save_leaves_no_record_for_the_next_to_keep() {
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let (mut cut_in_proposals, mut saved) = (0, false);
    for fail_at in 0.. {
        let (_, mut bob, _) = group_of(suite);
        let mut storage = Failing { map: MapStorage::default(), ops_left: None };
        let mut b = buf();
        for _ in 0..2 {
            bob.group.save(&mut storage, SLOT, Parts::ALL, &mut b).unwrap();
            banks_hold_what_the_head_counts(&storage.map);
        }
        propose_twelve_adds(&mut bob, suite);
        storage.ops_left = Some(fail_at);
        let failed = bob.group.save(&mut storage, SLOT, Parts::ALL, &mut b);
        storage.ops_left = None;
        let proposal_records = storage.map.0.keys().filter(|k| matches!(k.to_be_bytes(), [2, SLOT, pb, _] if pb >> 1 == 1)).count();
        if failed.is_ok() {
            let head = mls_nostd::store::Head::read(&mut storage.map.clone(), SLOT, &mut [0u8; MAX_RECORD_LEN]).unwrap();
            assert_eq!(head.part(mls_nostd::store::Part::Proposals).records, 2, "the proposals take two records");
            saved = true;
            break;
        }
        cut_in_proposals += usize::from(proposal_records > 0);
        bob.commit(&[], false, WireFormatPolicy::Public);
        bob.group.save(&mut storage, SLOT, Parts::ALL, &mut b).unwrap();
        let head = mls_nostd::store::Head::read(&mut storage.map.clone(), SLOT, &mut [0u8; MAX_RECORD_LEN]).unwrap();
        assert_eq!(head.part(mls_nostd::store::Part::Proposals).records, 0, "none pending after the Commit");
        assert!(banks_hold_what_the_head_counts(&storage.map) > 0);
    }
    println!("bob's save failed with proposal records written {cut_in_proposals} times");
    assert!(saved && cut_in_proposals >= 2, "{cut_in_proposals}");
}

/// A store whose commit point fails (a transactional store that cannot
/// commit), its writes and removals kept.
struct CommitFails<'a>(&'a mut MapStorage);

impl Storage for CommitFails<'_> {
    fn read<'b>(&mut self, key: RecordKey, buf: &'b mut [u8]) -> Result<Option<&'b [u8]>, mls_nostd::store::StorageError> {
        self.0.read(key, buf)
    }
    fn write(&mut self, key: RecordKey, value: &[u8]) -> Result<(), mls_nostd::store::StorageError> {
        self.0.write(key, value)
    }
    fn remove(&mut self, key: RecordKey) -> Result<(), mls_nostd::store::StorageError> {
        self.0.remove(key)
    }
    fn committed(&mut self) -> Result<(), mls_nostd::store::StorageError> {
        Err(mls_nostd::store::StorageError::Io)
    }
}

/// The same across slots: bob's group, last saved to slot A, fails a save
/// to A with proposal records written (A's spare bank now holds them), then
/// a save to slot B that fails at each operation in turn, some after B's
/// head (while B's old banks go), and last one that fails at its commit
/// point. Saved to A again, bob must look A's spare over: what he learnt
/// of B's spares is not A's (it was taken for A's when the failed save to
/// B had cleared B's old banks).
#[test]
fn a_failed_save_to_another_slot_leaves_the_own_slot_unsure() {
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    const B: u8 = SLOT + 1;
    let (mut after_head, mut saved) = (0, false);
    for fail_at in 0.. {
        let (_, mut bob, _) = group_of(suite);
        let mut storage = Failing { map: MapStorage::default(), ops_left: None };
        let mut b = buf();
        for slot in [B, B, SLOT, SLOT] {
            bob.group.save(&mut storage, slot, Parts::ALL, &mut b).unwrap();
        }
        propose_twelve_adds(&mut bob, suite);
        // A's save fails once the Epoch part and the proposals are written.
        for cut in 0.. {
            storage.ops_left = Some(cut);
            let r = bob.group.save(&mut storage, SLOT, Parts::ALL, &mut b);
            storage.ops_left = None;
            assert!(r.is_err(), "the save to A was to fail");
            if storage.map.0.keys().any(|k| matches!(k.to_be_bytes(), [2, SLOT, pb, _] if pb >> 1 == 1)) {
                break;
            }
        }
        let b_head = mls_nostd::store::Head::read(&mut storage.map.clone(), B, &mut [0u8; MAX_RECORD_LEN]).unwrap();
        // After every operation of B's save was cut once, a last round in
        // which it fails at its commit point only.
        let to_b = if saved {
            bob.group.save(&mut CommitFails(&mut storage.map), B, Parts::ALL, &mut b)
        } else {
            storage.ops_left = Some(fail_at);
            let r = bob.group.save(&mut storage, B, Parts::ALL, &mut b);
            storage.ops_left = None;
            r
        };
        if to_b.is_ok() {
            saved = true;
            continue;
        }
        let new_b_head = mls_nostd::store::Head::read(&mut storage.map.clone(), B, &mut [0u8; MAX_RECORD_LEN]).unwrap();
        after_head += usize::from(new_b_head.seq != b_head.seq);
        bob.commit(&[], false, WireFormatPolicy::Public);
        bob.group.save(&mut storage, SLOT, Parts::ALL, &mut b).unwrap();
        banks_of_slot_hold_what_the_head_counts(&storage.map, SLOT);
        if saved {
            break;
        }
    }
    println!("the save to B failed after its head {after_head} times");
    assert!(saved && after_head >= 3, "{after_head}");
}

/// A pool member (E < N) loaded from its store (some of its secrets in the
/// store only) is removed by a Commit, and saves its removal: to its own
/// slot, whose records of the ended epoch go, and then to another store,
/// where it loads as removed. (Until December 8 the merge's save took the
/// own slot for foreign, the cleared trees' tags being zero, and refused
/// with `CapacityExceeded(SecretTreeEntries)` for the secrets the pool had
/// left in the store: the merge failed every time, and the old epoch's
/// secrets stayed in the store.)
#[test]
fn a_removed_pool_member_saves_its_removal() {
    let (mut alice, mut others, mut dev) = pool_group();
    let mut storage = MapStorage::default();
    let mut b = buf();
    dev.group.save(&mut storage, SLOT, Parts::ALL, &mut b).unwrap();
    let mut fresh = Box::new(mls_nostd::group::Group::<16, { 16 * 512 }, 64, 8192, SignaturePrivateKey, 6>::EMPTY);
    recover(&mut storage, SLOT, &mut b[..]).unwrap();
    fresh.load(&mut storage, SLOT, &mls_nostd::identity::SAME_CREDENTIAL, &mut b).unwrap();
    dev.group = fresh;
    let remove = Proposal::Remove(Remove { removed: dev.group.own_leaf().0 });
    let (commit, _) = alice.commit(&[remove], true, WireFormatPolicy::Public);
    for o in others.iter_mut() {
        o.receive_commit(&commit);
    }
    let mut msg = commit.clone();
    let mut g = dev.group.stored(&mut storage, SLOT, &mut b);
    match g.process_message_with_psks(&mut msg, &NoPsks, NOW).unwrap() {
        Received::Commit(s) => assert!(s.removes_us),
        other => panic!("{other:?}"),
    }
    let merged = g.merge_staged_commit();
    assert!(merged.is_ok(), "the removed pool member cannot save its removal: {merged:?}");
    assert!(dev.group.is_inactive());
    let left = ratchet_records(&storage);
    assert!(left.is_empty(), "secret-tree records of the ended epoch left: {left:08x?}");
    // Saved to another store (a backup): it loads, removed.
    let mut other = MapStorage::default();
    let saved = dev.group.save(&mut other, SLOT, Parts::ALL, &mut b);
    assert!(saved.is_ok(), "the removed pool member cannot save to another store: {saved:?}");
    let mut copy = Box::new(mls_nostd::group::Group::<16, { 16 * 512 }, 64, 8192, SignaturePrivateKey, 6>::EMPTY);
    copy.load(&mut other, SLOT, &mls_nostd::identity::SAME_CREDENTIAL, &mut b).unwrap();
    assert!(copy.is_inactive());
}

/// A member removed by a Commit merges it; the save fails (as a cut would
/// leave it) at each of its operations in turn. The store must then load:
/// the epoch before the Commit (and the Commit processes again) or the
/// member removed. (Until December 8 the save removed the epoch's
/// secret-tree records before its head, the removal leaving the epoch and
/// so the bank as they were: after a cut the old epoch's keys were gone,
/// or the store did not load.)
#[test]
fn a_removed_members_failed_save_leaves_the_store_loadable() {
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let mut problems = Vec::new();
    let mut done = false;
    for ops in 0..200 {
        let (mut alice, mut bob, _carol) = group_of(suite);
        let mut storage = Failing { map: MapStorage::default(), ops_left: None };
        bob.group.save(&mut storage, SLOT, Parts::ALL, &mut buf()).unwrap();
        // Bob has heard alice: her path is split in his tree.
        assert_eq!(receive_durable(&mut bob, &mut storage, &alice.send(b"hi")).unwrap(), b"hi");
        let remove = Proposal::Remove(Remove { removed: bob.group.own_leaf().0 });
        let (commit, _) = alice.commit(&[remove], true, WireFormatPolicy::Private);
        let mut msg = commit.clone();
        let mut b = buf();
        match bob.group.stored(&mut storage, SLOT, &mut b).process_message_with_psks(&mut msg, &NoPsks, NOW).unwrap() {
            Received::Commit(s) => assert!(s.removes_us),
            other => panic!("{other:?}"),
        }
        storage.ops_left = Some(ops);
        if bob.group.stored(&mut storage, SLOT, &mut b).merge_staged_commit().is_ok() {
            println!("the removal's save needs {ops} operations");
            // Cut points before and after its head (13 when written).
            assert!(ops >= 10, "the removal's save needs only {ops} operations: the sweep no longer cuts it where it did");
            done = true;
            break;
        }
        storage.ops_left = None;
        let mut fresh = Box::new(G::EMPTY);
        recover(&mut storage, SLOT, &mut b[..]).unwrap();
        if let Err(e) = fresh.load(&mut storage, SLOT, &mls_nostd::identity::SAME_CREDENTIAL, &mut b) {
            problems.push(format!("fail after {ops} ops: the store no longer loads ({e:?})"));
            continue;
        }
        bob.group = fresh;
        if !bob.group.is_inactive() {
            let mut msg = commit.clone();
            if let Err(e) = bob.group.stored(&mut storage, SLOT, &mut b).process_message_with_psks(&mut msg, &NoPsks, NOW) {
                problems.push(format!("fail after {ops} ops: loaded in the old epoch, the Commit is refused ({e:?})"));
            }
        }
    }
    assert!(done);
    assert!(problems.is_empty(), "{problems:#?}");
}

/// The secret-tree records (kinds 5 to 8) of `SLOT` in `map`.
fn ratchet_records(map: &MapStorage) -> Vec<RecordKey> {
    map.0
        .keys()
        .copied()
        .filter(|k| {
            let [kind, slot, ..] = k.to_be_bytes();
            (5..=8).contains(&kind) && slot == SLOT
        })
        .collect()
}

/// A save to another store fails; bob goes on with his own store: a
/// skipped key is used and carol's first message splits the parents above
/// her. The own store must not keep the used key or the consumed parents:
/// compared with the same run without the failed save, the own store holds
/// the same secret-tree records, and none of the ended epoch's once two
/// Commits have passed. (Until December 8 the failed save had cleared what
/// the group knew of its own store's index, and the used key's record
/// stayed there for good, against RFC 9420 §9.2.)
#[test]
fn a_failed_save_elsewhere_leaves_no_used_secret_in_the_own_store() {
    let run = |fail_elsewhere: bool| -> (Vec<RecordKey>, Vec<RecordKey>, Vec<RecordKey>) {
        let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
        let (mut alice, mut bob, mut carol) = group_of(suite);
        let mut own = Failing { map: MapStorage::default(), ops_left: None };
        bob.group.save(&mut own, SLOT, Parts::ALL, &mut buf()).unwrap();
        let m: Vec<Vec<u8>> = (0..4).map(|i| alice.send(format!("m{i}").as_bytes())).collect();
        // m3 skips m0, m1 and m2: three skipped keys stored.
        assert_eq!(receive_durable(&mut bob, &mut own, &m[3]).unwrap(), b"m3");
        if fail_elsewhere {
            // Another store holds carol's group (same epoch, same secret
            // tree): the save there fails at its first removal.
            let mut elsewhere = Failing { map: MapStorage::default(), ops_left: None };
            carol.group.save(&mut elsewhere, SLOT, Parts::ALL, &mut buf()).unwrap();
            elsewhere.ops_left = Some(0);
            assert!(bob.group.save(&mut elsewhere, SLOT, Parts::ALL, &mut buf()).is_err());
        }
        assert_eq!(receive_durable(&mut bob, &mut own, &m[2]).unwrap(), b"m2");
        assert_eq!(receive_durable(&mut bob, &mut own, &carol.send(b"c0")).unwrap(), b"c0");
        let after_messages = ratchet_records(&own.map);
        let pool_after = pool_records(&own.map);
        reload(&mut bob, &mut own);
        assert!(receive_durable(&mut bob, &mut own, &m[2]).is_err(), "m2 replayed");
        for _ in 0..2 {
            let (commit, _) = alice.commit(&[], true, WireFormatPolicy::Private);
            receive_durable(&mut bob, &mut own, &commit).unwrap();
            carol.receive_commit(&commit);
        }
        (after_messages, pool_after, pool_records(&own.map))
    };
    let (control, control_pool, control_left) = run(false);
    let (failed, failed_pool, failed_left) = run(true);
    println!("control: {} secret-tree records, pool {control_pool:08x?}; after a failed save elsewhere: {}, pool {failed_pool:08x?}", control.len(), failed.len());
    assert!(control_left.is_empty());
    let extra: Vec<_> = failed.iter().filter(|k| !control.contains(k)).collect();
    assert!(
        extra.is_empty() && failed_left.is_empty(),
        "records the control run removed, kept after a failed save elsewhere: {extra:08x?}; \
         skipped keys of the ended epoch still in the store after two Commits: {failed_left:08x?}"
    );
}

/// A removed member saved to a second store that holds an older copy of
/// its group (a backup slot): the slot is not its own, so it writes every
/// node of the tree, and the copy loads. (Until December 8 a removed
/// member wrote only the nodes changed since its last save to its own
/// store, and the copy's save returned Ok but did not load.)
#[test]
fn a_removed_member_saved_to_an_older_copy_loads() {
    let (mut alice, mut bob, mut carol) = group_of(CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519);
    let mut own = MapStorage::default();
    let mut copy = MapStorage::default();
    bob.group.save(&mut own, SLOT, Parts::ALL, &mut buf()).unwrap();
    bob.group.save(&mut copy, SLOT, Parts::ALL, &mut buf()).unwrap();
    // Back to the own store, then a Commit that changes the tree.
    bob.group.save(&mut own, SLOT, Parts::ALL, &mut buf()).unwrap();
    let (commit, _) = carol.commit(&[], true, WireFormatPolicy::Public);
    receive_durable(&mut bob, &mut own, &commit).unwrap();
    alice.receive_commit(&commit);
    let remove = Proposal::Remove(Remove { removed: bob.group.own_leaf().0 });
    let (commit, _) = alice.commit(&[remove], true, WireFormatPolicy::Public);
    receive_durable(&mut bob, &mut own, &commit).unwrap();
    assert!(bob.group.is_inactive());
    bob.group.save(&mut copy, SLOT, Parts::ALL, &mut buf()).unwrap();
    let mut fresh = Box::new(G::EMPTY);
    let mut b = buf();
    let loaded = fresh.load(&mut copy, SLOT, &mls_nostd::identity::SAME_CREDENTIAL, &mut b);
    assert!(loaded.is_ok(), "the copy saved by the removed member does not load: {loaded:?}");
}

/// A save to a slot that holds an older copy of the group (a backup made
/// earlier in the same epoch) fails at each of its operations in turn, as
/// a cut would leave it: the copy should then load, as it was or as the
/// new state. Known to fail (December 8, found in review): a save to a
/// slot that is not the group's own removes the records of the epoch's
/// secret-tree bank before its head, and that bank is the copy's too, so a
/// cut in the first 3 of its 23 operations leaves a copy that does not
/// load (`Corrupt`). The group's own slot, where its last save went, is
/// never touched, so no state is lost but the copy's. Writing the bank
/// over (the old index's records removed after the head) would mend it
/// for a copy of the same tree; a slot holding another group whose bank
/// is the same would still lose it once our index replaces its index, as
/// a bank's keys are fixed by the epoch's parity (a change of the record
/// format). Run with `--ignored`.
#[test]
#[ignore = "known: a cut while saving over a slot's copy of the same epoch loses that copy (the own slot is intact)"]
fn a_failed_save_over_an_older_copy_leaves_a_copy_that_loads() {
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let mut problems = Vec::new();
    let mut done = false;
    for ops in 0..400 {
        let (mut alice, mut bob, _carol) = group_of(suite);
        let mut own = MapStorage::default();
        let mut copy = Failing { map: MapStorage::default(), ops_left: None };
        bob.group.save(&mut own, SLOT, Parts::ALL, &mut buf()).unwrap();
        bob.group.save(&mut copy, SLOT, Parts::ALL, &mut buf()).unwrap();
        // Back to the own store; alice speaks (bob's tree splits her path).
        bob.group.save(&mut own, SLOT, Parts::ALL, &mut buf()).unwrap();
        for i in 0..3 {
            assert_eq!(receive_durable(&mut bob, &mut own, &alice.send(&[i])).unwrap(), [i]);
        }
        copy.ops_left = Some(ops);
        if bob.group.save(&mut copy, SLOT, Parts::ALL, &mut buf()).is_ok() {
            println!("the save over the copy needs {ops} operations");
            done = true;
            break;
        }
        copy.ops_left = None;
        let mut fresh = Box::new(G::EMPTY);
        let mut b = buf();
        recover(&mut copy, SLOT, &mut b[..]).unwrap();
        if let Err(e) = fresh.load(&mut copy, SLOT, &mls_nostd::identity::SAME_CREDENTIAL, &mut b) {
            problems.push(format!("fail after {ops} ops: the copy no longer loads ({e:?})"));
        }
    }
    assert!(done);
    assert!(problems.is_empty(), "{problems:#?}");
}
