//! A group's life through the public API, suites 1 and 3: create, add with
//! Welcome, join, application messages both ways, updates, removes,
//! proposals by reference, handshake as PublicMessage and PrivateMessage; all
//! members agree on every epoch authenticator and exporter output.
use mls_nostd::codec::Decode;
use mls_nostd::credential::Credential;
use mls_nostd::crypto::signature::SignaturePrivateKey;
use mls_nostd::crypto::CipherSuite;
use mls_nostd::executor::Sequential;
use mls_nostd::extensions::Extensions;
use mls_nostd::group::{
    default_capabilities, CommitBuffers, CommitOptions, CreateParams, GroupConfig, JoinParams, Received,
    WireFormatPolicy,
};
use mls_nostd::key_package::KeyPackage;
use mls_nostd::messages::proposal::{Add, Proposal, Remove};
use mls_nostd::messages::proposal::PreSharedKey;
use mls_nostd::psk::{NoPsks, PreSharedKeyId, Psk, PskStore, ResumptionPskUsage};
use mls_nostd::tree_math::LeafIndex;
use mls_tests::TestRng;

use mls_tests::member::{agree, buffers, Member, G, LIFETIME, NOW};

fn lifecycle(suite: CipherSuite) {
    let mut alice = Member::new("alice", 1);
    let mut bob = Member::new("bob", 2);
    let mut carol = Member::new("carol", 3);
    let mut dave = Member::new("dave", 4);

    let mut caps = [0u8; 8];
    let params = CreateParams {
        suite,
        group_id: b"lifecycle-group",
        credential: Credential::Basic { identity: b"alice" },
        lifetime: LIFETIME,
        capabilities: default_capabilities(suite, &mut caps),
        extensions: Extensions::default(),
        config: GroupConfig::default(),
    };
    alice.group.create(&params, &alice.signer.clone(), &mut alice.rng).unwrap();
    assert_eq!(alice.group.epoch(), 0);

    // Alice adds Bob (no path needed for an Add alone).
    let (bob_kp, bob_keys) = bob.key_package(suite);
    let kp = KeyPackage::decode_exact(&bob_kp).unwrap();
    let (_, welcome) = alice.commit(&[Proposal::Add(Add { key_package: kp })], false, WireFormatPolicy::Public);
    bob.join(&welcome.unwrap(), &bob_kp, &bob_keys);
    agree(&[&alice, &bob]);

    // Bob adds Carol and Dave in one commit with a path, as a PrivateMessage.
    let (carol_kp, carol_keys) = carol.key_package(suite);
    let (dave_kp, dave_keys) = dave.key_package(suite);
    let adds = [
        Proposal::Add(Add { key_package: KeyPackage::decode_exact(&carol_kp).unwrap() }),
        Proposal::Add(Add { key_package: KeyPackage::decode_exact(&dave_kp).unwrap() }),
    ];
    let (commit, welcome) = bob.commit(&adds, true, WireFormatPolicy::Private);
    alice.receive_commit(&commit);
    let welcome = welcome.unwrap();
    carol.join(&welcome, &carol_kp, &carol_keys);
    // Dave keeps his KeyPackage keys in a key store; joining consumes them.
    {
        use mls_nostd::key_store::{KeyPackageStore, MemoryKeyPackageStore};
        let mut store = MemoryKeyPackageStore::<4>::EMPTY;
        let reference = KeyPackage::decode_exact(&dave_kp).unwrap().reference(suite).unwrap();
        store.put(&reference, &dave_keys).unwrap();
        let params = JoinParams {
            executor: &mls_nostd::executor::Sequential,
            key_package: &dave_kp,
            keys: &dave_keys,
            signer: &dave.signer,
            ratchet_tree: None,
            psks: &NoPsks,
            config: GroupConfig::default(),
        };
        let mut buf = vec![0u8; welcome.len()];
        dave.group.join_with_store(&welcome, &params, &mut store, &mut buf).unwrap();
        assert!(store.is_empty(), "the consumed KeyPackage's keys are deleted");
        let mut again = Box::new(G::EMPTY);
        assert!(again.join_with_store(&welcome, &params, &mut store, &mut buf).is_err(), "a KeyPackage joins once");
    }
    agree(&[&alice, &bob, &carol, &dave]);

    // Application messages both ways, out of order.
    let m1 = alice.send(b"hello from alice");
    let m2 = alice.send(b"second");
    for r in [&mut bob, &mut carol, &mut dave] {
        assert_eq!(r.receive_app(&m2), (LeafIndex(0), b"second".to_vec()));
        assert_eq!(r.receive_app(&m1), (LeafIndex(0), b"hello from alice".to_vec()));
        // A replay is refused.
        let mut again = m1.clone();
        assert!(r.group.process_message_in_memory(&mut again, &NoPsks, NOW).is_err());
    }
    let m3 = dave.send(b"dave here");
    assert_eq!(alice.receive_app(&m3).1, b"dave here");

    // Carol updates (empty commit with a path). Alice sent a message just
    // before: it still decrypts after the receivers moved to the new epoch.
    let late = alice.send(b"sent before the commit");
    let held_back = alice.send(b"delivered two epochs late");
    let (commit, _) = carol.commit(&[], true, WireFormatPolicy::Public);
    for r in [&mut alice, &mut bob, &mut dave] {
        r.receive_commit(&commit);
    }
    agree(&[&alice, &bob, &carol, &dave]);
    for r in [&mut bob, &mut carol, &mut dave] {
        assert_eq!(r.receive_app(&late).1, b"sent before the commit");
    }

    // Dave proposes an Update of his leaf; Bob commits it; Dave's new key works.
    let template = dave.template();
    let mut out = vec![0u8; 8192];
    let msg = dave.group.propose_update(&template, WireFormatPolicy::Public, &mut dave.rng, &mut out).unwrap().to_vec();
    for r in [&mut alice, &mut bob, &mut carol] {
        let mut m = msg.clone();
        assert!(matches!(r.group.process_message_in_memory(&mut m, &NoPsks, NOW), Ok(Received::Proposal { .. })));
    }
    let (commit, _) = bob.commit(&[], false, WireFormatPolicy::Private);
    for r in [&mut alice, &mut carol, &mut dave] {
        r.receive_commit(&commit);
    }
    agree(&[&alice, &bob, &carol, &dave]);

    // Dave proposes removing Bob; Alice commits it by reference.
    let mut out = vec![0u8; 4096];
    let proposal = Proposal::Remove(Remove { removed: 1 });
    let msg = dave.group.propose(&proposal, WireFormatPolicy::Private, &mut dave.rng, &mut out).unwrap().to_vec();
    for r in [&mut alice, &mut bob, &mut carol] {
        let mut m = msg.clone();
        assert!(matches!(r.group.process_message_in_memory(&mut m, &NoPsks, NOW), Ok(Received::Proposal { .. })));
    }
    let (commit, _) = alice.commit(&[], false, WireFormatPolicy::Public);
    carol.receive_commit(&commit);
    dave.receive_commit(&commit);
    let mut m = commit.clone();
    match bob.group.process_message_in_memory(&mut m, &NoPsks, NOW) {
        Ok(Received::Commit(s)) => assert!(s.removes_us),
        other => panic!("bob: {other:?}"),
    }
    bob.group.merge_staged_commit_in_memory().unwrap();
    assert!(bob.group.is_inactive());
    agree(&[&alice, &carol, &dave]);

    // Two epochs later, a message of that epoch no longer decrypts: its keys are gone.
    let mut too_late = held_back.clone();
    assert!(matches!(
        dave.group.process_message_in_memory(&mut too_late, &NoPsks, NOW),
        Err(mls_nostd::group::ReceiveError::Protection(mls_nostd::messages::authenticated_content::ProtectionError::WrongEpoch))
    ));

    // Messages keep flowing among the remaining members.
    let m = carol.send(b"after bob left");
    assert_eq!(dave.receive_app(&m).1, b"after bob left");
    assert_eq!(alice.receive_app(&m).1, b"after bob left");
}

#[test]
fn lifecycle_suite_3() {
    lifecycle(CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519);
}

#[test]
fn lifecycle_suite_1() {
    lifecycle(CipherSuite::X25519Aes128GcmSha256Ed25519);
}

fn external_join(suite: CipherSuite) {
    let mut alice = Member::with_suite("alice", 11, suite);
    let mut bob = Member::with_suite("bob", 12, suite);
    let mut eve = Member::with_suite("eve", 13, suite);
    let mut caps = [0u8; 8];
    let params = CreateParams {
        suite,
        group_id: b"external-join-group",
        credential: Credential::Basic { identity: b"alice" },
        lifetime: LIFETIME,
        capabilities: default_capabilities(suite, &mut caps),
        extensions: Extensions::default(),
        config: GroupConfig::default(),
    };
    alice.group.create(&params, &alice.signer.clone(), &mut alice.rng).unwrap();
    let (bob_kp, bob_keys) = bob.key_package(suite);
    let kp = KeyPackage::decode_exact(&bob_kp).unwrap();
    let (_, welcome) = alice.commit(&[Proposal::Add(Add { key_package: kp })], false, WireFormatPolicy::Public);
    bob.join(&welcome.unwrap(), &bob_kp, &bob_keys);

    // Alice publishes a GroupInfo; Eve joins by external commit.
    let (mut gi, mut scratch) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    let gi = alice.group.group_info(true, &mut gi, &mut scratch).unwrap().to_vec();
    let template = eve.template();
    let mut out = vec![0u8; 128 * 1024];
    let commit = eve
        .group
        .join_external(&gi, None, &template, &eve.signer.clone(), None, &[], &NoPsks, GroupConfig::default(), &mut eve.rng, &Sequential, &mut out)
        .unwrap_or_else(|e| panic!("eve: {e:?}"))
        .to_vec();
    for r in [&mut alice, &mut bob] {
        let mut m = commit.clone();
        match r.group.process_message_in_memory(&mut m, &NoPsks, NOW) {
            Ok(Received::Commit(s)) => assert_eq!(s.committer, LeafIndex(2)),
            other => panic!("{}: {other:?}", r.name),
        }
        r.group.merge_staged_commit_in_memory().unwrap();
    }
    agree(&[&alice, &bob, &eve]);
    let m = eve.send(b"hi, I let myself in");
    assert_eq!(alice.receive_app(&m).1, b"hi, I let myself in");

    // Bob resyncs: a new appearance replaces his old leaf in one external commit.
    let gi = {
        let (mut gi, mut scratch) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
        alice.group.group_info(true, &mut gi, &mut scratch).unwrap().to_vec()
    };
    let mut bob2 = Member::with_suite("bob", 12, suite);
    let template = bob2.template();
    let mut out = vec![0u8; 128 * 1024];
    let commit = bob2
        .group
        .join_external(&gi, None, &template, &bob2.signer.clone(), Some(LeafIndex(1)), &[], &NoPsks, GroupConfig::default(), &mut bob2.rng, &Sequential, &mut out)
        .unwrap()
        .to_vec();
    for r in [&mut alice, &mut eve] {
        r.receive_commit(&commit);
    }
    let mut m = commit.clone();
    match bob.group.process_message_in_memory(&mut m, &NoPsks, NOW) {
        Ok(Received::Commit(s)) => assert!(s.removes_us),
        other => panic!("old bob: {other:?}"),
    }
    agree(&[&alice, &eve, &bob2]);
    assert_eq!(bob2.group.own_leaf(), LeafIndex(1));
}

#[test]
fn external_join_suite_3() {
    external_join(CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519);
}

#[test]
fn external_join_suite_1() {
    external_join(CipherSuite::X25519Aes128GcmSha256Ed25519);
}

/// P-256: the `external_pub` key (65 bytes) takes a 2-byte length prefix
/// inside its extension, which the GroupInfo once miscounted.
#[test]
fn external_join_suite_2() {
    external_join(CipherSuite::P256Aes128GcmSha256P256);
}

/// An external sender listed in `external_senders` proposes an Add and a
/// Remove; a member commits them by reference (§12.1.8.1). Other proposal
/// types from it are refused.
#[test]
fn external_sender_proposals() {
    use mls_nostd::codec::Writer;
    use mls_nostd::extensions::EXT_EXTERNAL_SENDERS;
    use mls_nostd::messages::authenticated_content::EncodedGroupContext;
    use mls_nostd::messages::framing::{Content, FramedContent, Sender};
    use mls_nostd::messages::public_message;
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let ds_key = SignaturePrivateKey::from_slice(suite, &[0xd5; 32]).unwrap();
    // external_senders = [ { signature_key, credential: basic "delivery-service" } ]
    let mut ext = vec![0u8; 256];
    let n = {
        let mut w = Writer::new(&mut ext);
        w.write_u16(EXT_EXTERNAL_SENDERS).unwrap();
        let ds_pub = ds_key.public_key();
        let entry_len = 1 + 32 + 2 + 1 + 16;
        w.write_varint(1 + entry_len).unwrap();
        w.write_varint(entry_len).unwrap();
        w.write_opaque(ds_pub.as_bytes()).unwrap();
        w.write_u16(1).unwrap();
        w.write_opaque(b"delivery-service").unwrap();
        w.len()
    };
    ext.truncate(n);
    let mut alice = Member::new("alice", 21);
    let mut bob = Member::new("bob", 22);
    let mut carol = Member::new("carol", 23);
    alice.create(suite, b"external-senders", Extensions::from_body(&ext).unwrap());
    alice.add(&mut bob, suite);

    // The delivery service proposes adding Carol.
    let (carol_kp, carol_keys) = carol.key_package(suite);
    let mut gc = vec![0u8; 4096];
    let gc = alice.group.group_context(&mut gc).unwrap().to_vec();
    let gc = EncodedGroupContext::decode(&gc).unwrap();
    let external = |proposal: Proposal<'_>| {
        let content = FramedContent {
            group_id: b"external-senders",
            epoch: 1,
            sender: Sender::External(0),
            authenticated_data: &[],
            content: Content::Proposal(proposal),
        };
        let mut out = vec![0u8; 4096];
        let n = public_message::sign(&gc, &ds_key, &content, &mut out).unwrap().finish(None, None).unwrap().len();
        out.truncate(n);
        out
    };
    let add = external(Proposal::Add(Add { key_package: KeyPackage::decode_exact(&carol_kp).unwrap() }));
    for r in [&mut alice, &mut bob] {
        let mut m = add.clone();
        assert!(matches!(r.group.process_message_in_memory(&mut m, &NoPsks, NOW), Ok(Received::Proposal { .. })));
    }
    // An ExternalInit may not come from an external sender (§12.1.8.1).
    let bad = external(Proposal::ExternalInit(mls_nostd::messages::proposal::ExternalInit { kem_output: &[1; 32] }));
    let mut m = bad.clone();
    assert!(matches!(
        r_kind(&mut bob, &mut m),
        Err(mls_nostd::group::ReceiveError::Commit(mls_nostd::group::CommitError::ProposalNotAllowedForSender))
    ));
    // A Remove of a leaf that does not exist is kept, but our commit skips it.
    let stale = external(Proposal::Remove(Remove { removed: 7 }));
    let mut m = stale.clone();
    assert!(matches!(r_kind(&mut bob, &mut m), Ok(Received::Proposal { .. })));
    let (commit, welcome) = bob.commit(&[], false, WireFormatPolicy::Public);
    alice.receive_commit(&commit);
    carol.join(&welcome.unwrap(), &carol_kp, &carol_keys);
    agree(&[&alice, &bob, &carol]);
}

fn r_kind<'m>(m: &mut Member, msg: &'m mut [u8]) -> Result<Received<'m>, mls_nostd::group::ReceiveError> {
    m.group.process_message_in_memory(msg, &NoPsks, NOW)
}

/// ReInit (§11.2): Alice commits a ReInit to suite 1 with a new group ID; both
/// groups end; Alice creates the new group whose first Commit carries the
/// reinit resumption PSK; Bob joins it, checking it against the old group.
/// Then a branch (§11.3) of the new group with Bob only.
#[test]
fn reinit_then_branch() {
    use mls_nostd::messages::proposal::{PreSharedKey, ReInit};
    use mls_nostd::psk::{PreSharedKeyId, Psk, PskStore, ResumptionPskUsage};
    let old_suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let new_suite = CipherSuite::X25519Aes128GcmSha256Ed25519;
    let mut alice = Member::new("alice", 31);
    let mut bob = Member::new("bob", 32);
    let mut caps = [0u8; 8];
    let params = |suite, group_id: &'static [u8], caps: &'static mut [u8; 8]| CreateParams {
        suite,
        group_id,
        credential: Credential::Basic { identity: b"alice" },
        lifetime: LIFETIME,
        capabilities: default_capabilities(suite, caps),
        extensions: Extensions::default(),
        config: GroupConfig::default(),
    };
    let _ = &mut caps;
    alice.group.create(&params(old_suite, b"old-group", Box::leak(Box::new([0u8; 8]))), &alice.signer.clone(), &mut alice.rng).unwrap();
    let (bob_kp, bob_keys) = bob.key_package(old_suite);
    let (_, welcome) =
        alice.commit(&[Proposal::Add(Add { key_package: KeyPackage::decode_exact(&bob_kp).unwrap() })], false, WireFormatPolicy::Public);
    bob.join(&welcome.unwrap(), &bob_kp, &bob_keys);

    // Commit the ReInit.
    let reinit = Proposal::ReInit(ReInit {
        group_id: b"new-group",
        version: 1,
        cipher_suite: new_suite.to_u16(),
        extensions: Extensions::default(),
    });
    let (commit, _) = alice.commit(&[reinit], false, WireFormatPolicy::Public);
    bob.receive_commit(&commit);
    for m in [&alice, &bob] {
        assert!(m.group.is_inactive(), "{}: the old group ends", m.name);
        assert_eq!(m.group.reinit().unwrap().group_id.as_slice(), b"new-group");
    }
    let reinit_epoch = alice.group.epoch();
    // The old group can no longer send.
    let mut out = vec![0u8; 1024];
    assert!(alice.group.protect_application_in_memory(b"x", b"", 0, &mut alice.rng, &mut out).is_err());

    // Alice creates the new group; its first Commit adds Bob and injects the reinit PSK.
    let mut new_alice = Member::new("alice", 31);
    new_alice.rng = TestRng(310);
    new_alice.group.create(&params(new_suite, b"new-group", Box::leak(Box::new([0u8; 8]))), &alice.signer.clone(), &mut new_alice.rng).unwrap();
    let mut new_bob = Member::new("bob", 32);
    new_bob.rng = TestRng(320);
    let (bob_kp2, bob_keys2) = new_bob.key_package(new_suite);
    let nonce = [0x42u8; 32];
    let link = Proposal::PreSharedKey(PreSharedKey {
        psk: PreSharedKeyId {
            psk: Psk::Resumption { usage: ResumptionPskUsage::Reinit, psk_group_id: b"old-group", psk_epoch: reinit_epoch },
            psk_nonce: &nonce,
        },
    });
    let add = Proposal::Add(Add { key_package: KeyPackage::decode_exact(&bob_kp2).unwrap() });
    let welcome = {
        let (mut m, mut w, mut gi) = buffers();
        let template = new_alice.template();
        let opts = CommitOptions {
            proposals: &[add, link],
            include_pending: false,
            force_path: false,
            ratchet_tree_in_welcome: true,
            wire_format: WireFormatPolicy::Public,
            padding: 0,
            authenticated_data: b"",
            leaf: Some(template),
        };
        let bufs = CommitBuffers { message: &mut m, welcome: &mut w, group_info: &mut gi };
        // The old group is the PSK store: it holds the resumption PSK.
        let out = new_alice.group.commit_in_memory(&opts, &*alice.group, NOW, &mut new_alice.rng, &Sequential, bufs).unwrap();
        let w = out.welcome.unwrap().to_vec();
        new_alice.group.merge_staged_commit_in_memory().unwrap();
        w
    };
    let join = |member: &mut Member, store: &dyn PskStore| {
        let params = JoinParams {
            executor: &mls_nostd::executor::Sequential,
            key_package: &bob_kp2,
            keys: &bob_keys2,
            signer: &member.signer,
            ratchet_tree: None,
            psks: store,
            config: GroupConfig::default(),
        };
        let mut buf = vec![0u8; welcome.len()];
        member.group.join_in_memory(&welcome, &params, &mut buf)
    };
    // Without the old group, the reinit PSK is unknown.
    assert!(join(&mut new_bob, &NoPsks).is_err());
    // With it, and the Welcome decrypted where it lies (as a device with
    // one buffer joins).
    {
        let params = JoinParams {
            executor: &mls_nostd::executor::Sequential,
            key_package: &bob_kp2,
            keys: &bob_keys2,
            signer: &new_bob.signer,
            ratchet_tree: None,
            psks: &*bob.group,
            config: GroupConfig::default(),
        };
        let mut message = welcome.clone();
        new_bob.group.join_in_place_in_memory(&mut message, &params).unwrap();
        assert_ne!(message, welcome, "decrypted in place");
    }
    agree(&[&new_alice, &new_bob]);
    assert_eq!(new_bob.group.suite(), new_suite);

    // A PreSharedKey proposal with usage reinit is invalid outside a new group's first Commit.
    let bad = Proposal::PreSharedKey(PreSharedKey {
        psk: PreSharedKeyId {
            psk: Psk::Resumption { usage: ResumptionPskUsage::Reinit, psk_group_id: b"old-group", psk_epoch: reinit_epoch },
            psk_nonce: &nonce,
        },
    });
    {
        let (mut m, mut w, mut gi) = buffers();
        let opts = CommitOptions {
            proposals: &[bad],
            include_pending: false,
            force_path: false,
            ratchet_tree_in_welcome: false,
            wire_format: WireFormatPolicy::Public,
            padding: 0,
            authenticated_data: b"",
            leaf: None,
        };
        let bufs = CommitBuffers { message: &mut m, welcome: &mut w, group_info: &mut gi };
        assert!(new_alice.group.commit_in_memory(&opts, &*alice.group, NOW, &mut new_alice.rng, &Sequential, bufs).is_err());
    }

    // Branch: Bob starts a subgroup of the new group with Alice, linked by a branch PSK.
    let branch_epoch = new_bob.group.epoch();
    let mut sub_bob = Member::new("bob", 32);
    sub_bob.rng = TestRng(321);
    sub_bob.group.create(
        &CreateParams { credential: Credential::Basic { identity: b"bob" }, ..params(new_suite, b"subgroup", Box::leak(Box::new([0u8; 8]))) },
        &bob.signer.clone(),
        &mut sub_bob.rng,
    ).unwrap();
    let mut sub_alice = Member::new("alice", 31);
    sub_alice.rng = TestRng(311);
    let (alice_kp, alice_keys) = sub_alice.key_package(new_suite);
    let link = Proposal::PreSharedKey(PreSharedKey {
        psk: PreSharedKeyId {
            psk: Psk::Resumption { usage: ResumptionPskUsage::Branch, psk_group_id: b"new-group", psk_epoch: branch_epoch },
            psk_nonce: &[0x24; 32],
        },
    });
    let add = Proposal::Add(Add { key_package: KeyPackage::decode_exact(&alice_kp).unwrap() });
    let welcome = {
        let (mut m, mut w, mut gi) = buffers();
        let template = sub_bob.template();
        let opts = CommitOptions {
            proposals: &[add, link],
            include_pending: false,
            force_path: false,
            ratchet_tree_in_welcome: true,
            wire_format: WireFormatPolicy::Public,
            padding: 0,
            authenticated_data: b"",
            leaf: Some(template),
        };
        let bufs = CommitBuffers { message: &mut m, welcome: &mut w, group_info: &mut gi };
        let out = sub_bob.group.commit_in_memory(&opts, &*new_bob.group, NOW, &mut sub_bob.rng, &Sequential, bufs).unwrap();
        let w = out.welcome.unwrap().to_vec();
        sub_bob.group.merge_staged_commit_in_memory().unwrap();
        w
    };
    let params = JoinParams {
        executor: &mls_nostd::executor::Sequential,
        key_package: &alice_kp,
        keys: &alice_keys,
        signer: &sub_alice.signer,
        ratchet_tree: None,
        psks: &*new_alice.group,
        config: GroupConfig::default(),
    };
    let mut buf = vec![0u8; welcome.len()];
    sub_alice.group.join_in_memory(&welcome, &params, &mut buf).unwrap();
    agree(&[&sub_alice, &sub_bob]);
}

/// Two members propose adding the same client; a Commit that includes the
/// pending proposals adds it once (§12.2: one Add per client).
#[test]
fn duplicate_pending_adds_are_committed_once() {
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let mut alice = Member::new("alice", 41);
    let mut bob = Member::new("bob", 42);
    let mut carol = Member::new("carol", 43);
    alice.create(suite, b"dup-adds", Extensions::default());
    alice.add(&mut bob, suite);

    let (carol_kp, carol_keys) = carol.key_package(suite);
    let add = Proposal::Add(Add { key_package: KeyPackage::decode_exact(&carol_kp).unwrap() });
    let mut out = vec![0u8; 4096];
    let from_bob = bob.group.propose(&add, WireFormatPolicy::Public, &mut bob.rng, &mut out).unwrap().to_vec();
    let mut m = from_bob.clone();
    assert!(matches!(alice.group.process_message_in_memory(&mut m, &NoPsks, NOW), Ok(Received::Proposal { .. })));
    let mut out = vec![0u8; 4096];
    let from_alice = alice.group.propose(&add, WireFormatPolicy::Public, &mut alice.rng, &mut out).unwrap().to_vec();
    let mut m = from_alice.clone();
    assert!(matches!(bob.group.process_message_in_memory(&mut m, &NoPsks, NOW), Ok(Received::Proposal { .. })));

    let (commit, welcome) = alice.commit(&[], false, WireFormatPolicy::Public);
    let mut m = commit.clone();
    match bob.group.process_message_in_memory(&mut m, &NoPsks, NOW) {
        Ok(Received::Commit(s)) => assert_eq!(s.adds, 1),
        other => panic!("bob: {other:?}"),
    }
    bob.group.merge_staged_commit_in_memory().unwrap();
    carol.join(&welcome.unwrap(), &carol_kp, &carol_keys);
    agree(&[&alice, &bob, &carol]);
}

/// Bob proposes `psk`; Alice commits what is pending with `psks`: the PSK
/// is left out of her Commit rather than making it fail (§12.4: valid
/// proposals only), and Bob follows.
fn pending_psk_is_skipped(group_id: &'static [u8], psk: PreSharedKeyId<'_>, psks: &dyn PskStore) {
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let mut alice = Member::new("alice", 51);
    let mut bob = Member::new("bob", 52);
    alice.create(suite, group_id, Extensions::default());
    alice.add(&mut bob, suite);
    let psk = Proposal::PreSharedKey(PreSharedKey { psk });
    let mut out = vec![0u8; 4096];
    let msg = bob.group.propose(&psk, WireFormatPolicy::Public, &mut bob.rng, &mut out).unwrap().to_vec();
    let mut m = msg.clone();
    assert!(matches!(alice.group.process_message_in_memory(&mut m, &NoPsks, NOW), Ok(Received::Proposal { .. })));
    let (commit, _, summary) = commit_with(&mut alice, None, &[], true, psks).unwrap_or_else(|e| panic!("alice: {e:?}"));
    assert_eq!(summary.psks, 0);
    let mut m = commit.clone();
    match bob.group.process_message_in_memory(&mut m, &NoPsks, NOW) {
        Ok(Received::Commit(s)) => assert_eq!(s.psks, 0),
        other => panic!("bob: {other:?}"),
    }
    bob.group.merge_staged_commit_in_memory().unwrap();
    agree(&[&alice, &bob]);
}

/// A pending PSK proposal whose key the committer lacks.
#[test]
fn pending_psk_without_key_is_skipped() {
    let psk = PreSharedKeyId { psk: Psk::External { psk_id: b"only-bob-knows" }, psk_nonce: &[7; 32] };
    pending_psk_is_skipped(b"psk-skip", psk, &NoPsks);
}

/// A ReInit Commit that is staged and then discarded, by its committer and
/// by a receiver, leaves the group active: the next ordinary Commit merges
/// into an active group with no ReInit (§11.2: only a merged ReInit ends
/// the group). The staged and the committed ReInit share one slot.
#[test]
fn discarded_reinit_commit_leaves_the_group_active() {
    use mls_nostd::messages::proposal::ReInit;
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let mut alice = Member::new("alice", 41);
    let mut bob = Member::new("bob", 42);
    alice.create(suite, b"reinit-discard", Extensions::default());
    alice.add(&mut bob, suite);
    let reinit = Proposal::ReInit(ReInit {
        group_id: b"reinit-discard-2",
        version: 1,
        cipher_suite: suite.to_u16(),
        extensions: Extensions::default(),
    });
    let (mut mb, mut wb, mut gb) = buffers();
    // Staged, not merged (`Member::commit` merges).
    let opts = CommitOptions { proposals: &[reinit], include_pending: false, ..CommitOptions::DEFAULT };
    let bufs = CommitBuffers { message: &mut mb, welcome: &mut wb, group_info: &mut gb };
    let out = alice.group.commit_in_memory(&opts, &NoPsks, NOW, &mut alice.rng, &Sequential, bufs).unwrap();
    assert!(out.summary.reinit);
    let mut commit = out.commit.to_vec();
    match bob.group.process_message_in_memory(&mut commit, &NoPsks, NOW) {
        Ok(Received::Commit(summary)) => assert!(summary.reinit),
        other => panic!("bob: expected the ReInit Commit: {other:?}"),
    }
    for m in [&mut alice, &mut bob] {
        assert!(m.group.has_staged_commit(), "{}", m.name);
        assert!(!m.group.is_inactive() && m.group.reinit().is_none(), "{}: a staged ReInit ends nothing", m.name);
        m.group.discard_staged_commit();
        assert!(!m.group.is_inactive() && m.group.reinit().is_none(), "{}: discarded", m.name);
    }
    let epoch = alice.group.epoch();
    let (commit, _) = alice.commit(&[], true, WireFormatPolicy::Public);
    bob.receive_commit(&commit);
    for m in [&alice, &bob] {
        assert_eq!(m.group.epoch(), epoch + 1, "{}", m.name);
        assert!(!m.group.is_inactive(), "{}: the ordinary Commit leaves the group active", m.name);
        assert!(m.group.reinit().is_none(), "{}", m.name);
    }
    let msg = alice.send(b"still here");
    assert_eq!(bob.receive_app(&msg).1, b"still here");
}

/// A pending PreSharedKey proposal of usage reinit (invalid outside a new
/// group's first Commit, §11.2), although the committer's PSK store has a
/// key for it.
#[test]
fn pending_reinit_psk_is_skipped() {
    // A store that has every resumption PSK.
    struct Any;
    impl PskStore for Any {
        fn external_psk(&self, _: &[u8]) -> Option<&[u8]> {
            None
        }
        fn resumption_psk(&self, _: &[u8], _: u64) -> Option<&[u8]> {
            Some(&[9; 32])
        }
    }
    let psk = PreSharedKeyId {
        psk: Psk::Resumption { usage: ResumptionPskUsage::Reinit, psk_group_id: b"reinit-psk-skip", psk_epoch: 1 },
        psk_nonce: &[7; 32],
    };
    pending_psk_is_skipped(b"reinit-psk-skip", psk, &Any);
}

/// More Adds by value than `MAX_PENDING_REFS` in one Commit that also takes
/// pending proposals: the bounded lists hold only the pending ones.
#[test]
fn adds_by_value_beyond_the_pending_bound() {
    use mls_nostd::group::MAX_PENDING_REFS;
    use mls_tests::member::MemberOf;
    type M = MemberOf<128, { 128 * 512 }, 16, 4096>;
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let mut creator = M::new("creator", 900);
    creator.create(suite, b"many-adds", Extensions::default());
    let n = MAX_PENDING_REFS + 6;
    let kps: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let name: &'static str = Box::leak(format!("m{i}").into_boxed_str());
            M::new(name, 1000 + i as u64).key_package(suite).0
        })
        .collect();
    let adds: Vec<Proposal<'_>> = kps.iter().map(|k| Proposal::Add(Add { key_package: KeyPackage::decode_exact(k).unwrap() })).collect();
    let (_, welcome) = creator.commit(&adds, false, WireFormatPolicy::Public);
    assert!(welcome.is_some());
    assert_eq!(creator.group.epoch(), 1);
    let mut t = creator.group.tree_slices_for_testing();
    let members = (0..t.n_leaves()).filter(|i| t.leaf_node(LeafIndex(*i)).is_some()).count();
    assert_eq!(members, n + 1);
    let _ = t.root_tree_hash().unwrap();
}

/// A merged Commit of ours: the message, the Welcome, what it did.
type Committed = (Vec<u8>, Option<Vec<u8>>, mls_nostd::group::StagedCommitSummary);

/// Commits `opts` with `psks` through `commit_reinit(reference)` or, without
/// a reference, `commit`; merges on success; returns the commit, the Welcome
/// and the summary.
fn commit_with(
    m: &mut Member,
    reinit: Option<&mls_nostd::crypto::HashValue>,
    proposals: &[Proposal<'_>],
    include_pending: bool,
    psks: &dyn mls_nostd::psk::PskStore,
) -> Result<Committed, mls_nostd::group::CreateCommitError> {
    let (mut buf, mut w, mut gi) = buffers();
    let template = m.template();
    let opts = CommitOptions {
        proposals,
        include_pending,
        force_path: false,
        ratchet_tree_in_welcome: true,
        wire_format: WireFormatPolicy::Private,
        padding: 0,
        authenticated_data: b"",
        leaf: Some(template),
    };
    let bufs = CommitBuffers { message: &mut buf, welcome: &mut w, group_info: &mut gi };
    let out = match reinit {
        Some(r) => m.group.commit_reinit_in_memory(r, &opts, psks, NOW, &mut m.rng, &Sequential, bufs)?,
        None => m.group.commit_in_memory(&opts, psks, NOW, &mut m.rng, &Sequential, bufs)?,
    };
    let result = (out.commit.to_vec(), out.welcome.map(<[u8]>::to_vec), out.summary);
    m.group.merge_staged_commit_in_memory().unwrap();
    Ok(result)
}

/// A ReInit received by reference (§11.2, §12.1.5) is committed with
/// `commit_reinit`, alone (§12.2), never by `include_pending`; the new group
/// keeps the old group's ID, so its first Commit must find the reinit PSK
/// of the old group (same ID, an epoch the new group never had) rather than
/// look it up in itself.
#[test]
fn reinit_by_reference_keeping_the_group_id() {
    use mls_nostd::crypto::HashValue;
    use mls_nostd::group::CreateCommitError;
    use mls_nostd::messages::proposal::{PreSharedKey, ReInit};
    use mls_nostd::psk::{PreSharedKeyId, Psk, ResumptionPskUsage};
    let old_suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let new_suite = CipherSuite::X25519Aes128GcmSha256Ed25519;
    let id: &'static [u8] = b"kept-group-id";
    let mut alice = Member::new("alice", 61);
    let mut bob = Member::new("bob", 62);
    let mut carol = Member::new("carol", 63);
    alice.create(old_suite, id, Extensions::default());
    alice.add(&mut bob, old_suite);
    let (carol_kp, carol_keys) = carol.key_package(old_suite);
    let add = Proposal::Add(Add { key_package: KeyPackage::decode_exact(&carol_kp).unwrap() });
    let (commit, welcome) = alice.commit(&[add], false, WireFormatPolicy::Public);
    carol.join(&welcome.unwrap(), &carol_kp, &carol_keys);
    bob.receive_commit(&commit);
    agree(&[&alice, &bob, &carol]);

    // Bob proposes a ReInit to suite 1, keeping the group ID.
    let reinit = Proposal::ReInit(ReInit { group_id: id, version: 1, cipher_suite: new_suite.to_u16(), extensions: Extensions::default() });
    let propose = |bob: &mut Member| {
        let mut out = vec![0u8; 4096];
        bob.group.propose(&reinit, WireFormatPolicy::Private, &mut bob.rng, &mut out).unwrap().to_vec()
    };
    let receive = |m: &mut Member, msg: &[u8]| {
        let mut msg = msg.to_vec();
        match m.group.process_message_in_memory(&mut msg, &NoPsks, NOW) {
            Ok(Received::Proposal { reference, .. }) => reference,
            other => panic!("{}: {other:?}", m.name),
        }
    };
    let msg = propose(&mut bob);
    receive(&mut alice, &msg);
    receive(&mut carol, &msg);
    // Committing what is pending leaves the ReInit out: the group goes on.
    let (commit, _, summary) = commit_with(&mut carol, None, &[], true, &NoPsks).unwrap();
    assert!(!summary.reinit, "include_pending committed a ReInit");
    for m in [&mut alice, &mut bob] {
        m.receive_commit(&commit);
    }
    agree(&[&alice, &bob, &carol]);

    // Proposed again in the new epoch; Alice commits it by reference.
    let msg = propose(&mut bob);
    let reference = receive(&mut alice, &msg);
    assert_eq!(receive(&mut carol, &msg), reference);
    let pending: Vec<_> = alice.group.pending_proposals().map(|p| (p.reference, p.proposal.to_vec())).collect();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].0, reference);
    assert!(matches!(Proposal::decode_exact(&pending[0].1), Ok(Proposal::ReInit(r)) if r.cipher_suite == new_suite.to_u16()));
    let epoch = alice.group.epoch();
    // Not with other proposals (§12.2), not a reference to no ReInit; the
    // group is unchanged after each refusal.
    let remove = Proposal::Remove(Remove { removed: 2 });
    let with_other = commit_with(&mut alice, Some(&reference), &[remove], false, &NoPsks).err();
    assert_eq!(with_other, Some(CreateCommitError::Commit(mls_nostd::group::CommitError::ReInitWithOtherProposals)));
    let with_pending = commit_with(&mut alice, Some(&reference), &[], true, &NoPsks).err();
    assert_eq!(with_pending, Some(CreateCommitError::Commit(mls_nostd::group::CommitError::ReInitWithOtherProposals)));
    let unknown = HashValue::from_slice(&[0x5a; 32]).unwrap();
    assert_eq!(commit_with(&mut alice, Some(&unknown), &[], false, &NoPsks).err(), Some(CreateCommitError::NoPendingReInit));
    assert!(!alice.group.has_staged_commit());
    assert_eq!((alice.group.epoch(), alice.group.is_inactive()), (epoch, false));

    let (commit, _, summary) = commit_with(&mut alice, Some(&reference), &[], false, &NoPsks).unwrap();
    assert!(summary.reinit && !summary.has_path && summary.new_epoch == epoch + 1);
    for m in [&mut bob, &mut carol] {
        m.receive_commit(&commit);
    }
    agree(&[&alice, &bob, &carol]);
    let reinit_epoch = alice.group.epoch();
    for m in [&alice, &bob, &carol] {
        assert!(m.group.is_inactive(), "{}: the old group ends", m.name);
        let p = m.group.reinit().unwrap();
        assert_eq!((p.group_id.as_slice(), p.cipher_suite), (id, new_suite.to_u16()));
    }

    // Alice creates the new group with the same ID; its first Commit adds Bob
    // and Carol and injects the reinit PSK of the old group's last epoch.
    let mut new_alice = Member::new("alice", 61);
    new_alice.rng = TestRng(610);
    new_alice.create(new_suite, id, Extensions::default());
    let mut joiners: Vec<(Member, Vec<u8>, mls_nostd::key_package::KeyPackagePrivateKeys)> = Vec::new();
    for (name, seed) in [("bob", 62), ("carol", 63)] {
        let mut m = Member::new(name, seed);
        m.rng = TestRng(seed * 10);
        let (kp, keys) = m.key_package(new_suite);
        joiners.push((m, kp, keys));
    }
    let nonce = [0x17u8; 32];
    let link = Proposal::PreSharedKey(PreSharedKey {
        psk: PreSharedKeyId {
            psk: Psk::Resumption { usage: ResumptionPskUsage::Reinit, psk_group_id: id, psk_epoch: reinit_epoch },
            psk_nonce: &nonce,
        },
    });
    let mut proposals = vec![link];
    for (_, kp, _) in &joiners {
        proposals.push(Proposal::Add(Add { key_package: KeyPackage::decode_exact(kp).unwrap() }));
    }
    let (_, welcome, summary) = commit_with(&mut new_alice, None, &proposals, false, &*alice.group)
        .unwrap_or_else(|e| panic!("the new group's first Commit: {e:?}"));
    assert_eq!((summary.psks, summary.adds), (1, 2));
    let welcome = welcome.unwrap();
    for ((m, kp, keys), old) in joiners.iter_mut().zip([&bob, &carol]) {
        let params = JoinParams {
            executor: &mls_nostd::executor::Sequential,
            key_package: kp,
            keys,
            signer: &m.signer,
            ratchet_tree: None,
            psks: &*old.group,
            config: GroupConfig::default(),
        };
        let mut buf = vec![0u8; welcome.len()];
        m.group.join_in_memory(&welcome, &params, &mut buf).unwrap_or_else(|e| panic!("{}: join: {e:?}", m.name));
    }
    let [(new_bob, ..), (new_carol, ..)] = &mut joiners[..] else { unreachable!() };
    agree(&[&new_alice, new_bob, new_carol]);
    assert_eq!((new_bob.group.suite(), new_bob.group.group_id()), (new_suite, id));
    let m = new_carol.send(b"in the new group");
    assert_eq!(new_bob.receive_app(&m).1, b"in the new group");
}

/// External PSKs by ID, for the tests below.
struct ExternalPsks(Vec<(&'static [u8], &'static [u8])>);

impl mls_nostd::psk::PskStore for ExternalPsks {
    fn external_psk(&self, psk_id: &[u8]) -> Option<&[u8]> {
        self.0.iter().find(|(id, _)| *id == psk_id).map(|(_, v)| *v)
    }

    fn resumption_psk(&self, _: &[u8], _: u64) -> Option<&[u8]> {
        None
    }
}

/// An external Commit with PreSharedKey proposals (§12.4.3.2): an external
/// PSK when joining, the old appearance's resumption PSK when resyncing.
/// Members without the PSK refuse it; the joiner refuses PSKs the members
/// would refuse, and its slot stays empty.
#[test]
fn external_join_with_psks() {
    use mls_nostd::group::{CommitError, JoinError};
    use mls_nostd::psk::{PreSharedKeyId, Psk, ResumptionPskUsage};
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let mut alice = Member::new("alice", 71);
    let mut bob = Member::new("bob", 72);
    let mut eve = Member::new("eve", 75);
    alice.create(suite, b"external-psk-group", Extensions::default());
    alice.add(&mut bob, suite);
    let store = ExternalPsks(vec![(b"shared", b"shared-secret")]);
    let group_info = |alice: &mut Member| {
        let (mut gi, mut scratch) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
        alice.group.group_info(true, &mut gi, &mut scratch).unwrap().to_vec()
    };
    let gi = group_info(&mut alice);
    let join = |joiner: &mut Member, resync: Option<LeafIndex>, psks: &[PreSharedKeyId<'_>], store: &dyn mls_nostd::psk::PskStore| {
        let template = joiner.template();
        let signer = joiner.signer.clone();
        let mut out = vec![0u8; 128 * 1024];
        joiner
            .group
            .join_external(&gi, None, &template, &signer, resync, psks, store, GroupConfig::default(), &mut joiner.rng, &Sequential, &mut out)
            .map(<[u8]>::to_vec)
    };
    let shared = |nonce| PreSharedKeyId { psk: Psk::External { psk_id: b"shared" }, psk_nonce: nonce };
    // Refused by the joiner as the members would: unknown key, short nonce,
    // the same PreSharedKeyID twice, a reinit PSK outside a new group.
    let unknown = PreSharedKeyId { psk: Psk::External { psk_id: b"unknown" }, psk_nonce: &[1; 32] };
    let reinit = PreSharedKeyId {
        psk: Psk::Resumption { usage: ResumptionPskUsage::Reinit, psk_group_id: b"old", psk_epoch: 3 },
        psk_nonce: &[1; 32],
    };
    for (psks, want) in [
        (vec![unknown], CommitError::InvalidPsk),
        (vec![shared(&[1; 16])], CommitError::InvalidPsk),
        (vec![shared(&[1; 32]), shared(&[1; 32])], CommitError::DuplicatePsk),
        (vec![reinit], CommitError::InvalidPsk),
    ] {
        assert_eq!(join(&mut eve, None, &psks, &store).err(), Some(JoinError::Commit(want)));
        assert!(eve.group.is_inactive());
    }

    // Eve joins with the external PSK, twice with fresh nonces (two PSKs, §8.4).
    let commit = join(&mut eve, None, &[shared(&[2; 32]), shared(&[3; 32])], &store).unwrap();
    // Without the key, the Commit is refused.
    let mut m = commit.clone();
    assert!(matches!(
        bob.group.process_message_in_memory(&mut m, &NoPsks, NOW),
        Err(mls_nostd::group::ReceiveError::Commit(CommitError::InvalidPsk))
    ));
    for r in [&mut alice, &mut bob] {
        let mut m = commit.clone();
        match r.group.process_message_in_memory(&mut m, &store, NOW) {
            Ok(Received::Commit(s)) => assert_eq!((s.psks, s.committer), (2, LeafIndex(2))),
            other => panic!("{}: {other:?}", r.name),
        }
        r.group.merge_staged_commit_in_memory().unwrap();
    }
    agree(&[&alice, &bob, &eve]);

    // Bob resyncs, proving his presence with his old appearance's resumption
    // PSK of the current epoch (usage application): the members hold it too.
    // His new client has his signature key (the default identity policy
    // refuses a basic credential's successor with another key).
    let gi2 = group_info(&mut alice);
    let epoch = bob.group.epoch();
    let mut bob2 = Member::new("bob", 82);
    bob2.signer = bob.signer.clone();
    let resumption = PreSharedKeyId {
        psk: Psk::Resumption { usage: ResumptionPskUsage::Application, psk_group_id: b"external-psk-group", psk_epoch: epoch },
        psk_nonce: &[4; 32],
    };
    let template = bob2.template();
    let signer = bob2.signer.clone();
    let mut out = vec![0u8; 128 * 1024];
    let commit = bob2
        .group
        .join_external(&gi2, None, &template, &signer, Some(LeafIndex(1)), &[resumption], &*bob.group, GroupConfig::default(), &mut bob2.rng, &Sequential, &mut out)
        .unwrap()
        .to_vec();
    for r in [&mut alice, &mut eve] {
        let mut m = commit.clone();
        match r.group.process_message_in_memory(&mut m, &NoPsks, NOW) {
            Ok(Received::Commit(s)) => assert_eq!(s.psks, 1),
            other => panic!("{}: {other:?}", r.name),
        }
        r.group.merge_staged_commit_in_memory().unwrap();
    }
    agree(&[&alice, &eve, &bob2]);
}
