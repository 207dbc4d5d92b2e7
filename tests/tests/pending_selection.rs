//! Which pending proposals our Commit includes (RFC 9420 §12.4: "all valid
//! proposals received"): a pending proposal that would make the Commit
//! invalid (§12.2) is left out, the Commit is created, and the members
//! follow it.
use mls_nostd::codec::Decode;
use mls_nostd::crypto::CipherSuite;
use mls_nostd::extensions::Extensions;
use mls_nostd::executor::Sequential;
use mls_nostd::group::{CommitBuffers, CommitError, CommitOptions, CreateCommitError, Received, WireFormatPolicy};
use mls_nostd::key_package::KeyPackage;
use mls_nostd::messages::proposal::{Add, GroupContextExtensions, PreSharedKey, Proposal};
use mls_nostd::psk::{NoPsks, PreSharedKeyId, Psk, ResumptionPskUsage};
use mls_tests::member::{agree, buffers, Member, NOW};
use mls_tests::TestRng;

const SUITE: CipherSuite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;

/// Alice's group with Bob and Carol, all in epoch 2.
fn group(id: &'static [u8]) -> (Member, Member, Member) {
    let mut alice = Member::new("alice", 71);
    let mut bob = Member::new("bob", 72);
    let mut carol = Member::new("carol", 73);
    alice.create(SUITE, id, Extensions::default());
    alice.add(&mut bob, SUITE);
    alice.add_seen_by(&mut carol, &mut [&mut bob], SUITE);
    (alice, bob, carol)
}

/// `from` sends `p`; each of `to` keeps it.
fn propose(from: &mut Member, p: &Proposal<'_>, to: &mut [&mut Member]) {
    let mut out = vec![0u8; 8192];
    let msg = from.group.propose(p, WireFormatPolicy::Public, &mut from.rng, &mut out).unwrap().to_vec();
    deliver(&msg, to);
}

fn deliver(msg: &[u8], to: &mut [&mut Member]) {
    for m in to.iter_mut() {
        let mut b = msg.to_vec();
        let got = m.group.process_message_in_memory(&mut b, &NoPsks, NOW);
        assert!(matches!(got, Ok(Received::Proposal { .. })), "{}: {got:?}", m.name);
    }
}

/// Bob's Update (his signature key kept) is pending with an Add of a
/// KeyPackage of Bob's signature key: Bob stays a member, so that Add is
/// of an existing member (§12.2) and is left out; the Update is committed.
#[test]
fn pending_add_of_an_updated_member_is_left_out() {
    let (mut alice, mut bob, mut carol) = group(b"sel-add-updated");
    let template = bob.template();
    let mut out = vec![0u8; 8192];
    let update = bob.group.propose_update(&template, WireFormatPolicy::Public, &mut bob.rng, &mut out).unwrap().to_vec();
    deliver(&update, &mut [&mut alice, &mut carol]);
    let (kp, _) = bob.key_package(SUITE);
    let add = Proposal::Add(Add { key_package: KeyPackage::decode_exact(&kp).unwrap() });
    propose(&mut carol, &add, &mut [&mut alice, &mut bob]);
    let (commit, welcome) = alice.commit(&[], false, WireFormatPolicy::Public);
    assert!(welcome.is_none());
    bob.receive_commit(&commit);
    carol.receive_commit(&commit);
    agree(&[&alice, &bob, &carol]);
}

/// Two pending Adds of different clients whose KeyPackages carry the same
/// encryption key: both make the Commit invalid (§7.3, encryption keys are
/// unique), so only the first is committed.
#[test]
fn pending_adds_of_one_encryption_key_are_committed_once() {
    let (mut alice, mut bob, mut carol) = group(b"sel-add-enc-key");
    let mut dave = Member::new("dave", 74);
    let mut eve = Member::new("eve", 75);
    // Same randomness: the same init and encryption keys, other signers.
    eve.rng = TestRng(dave.rng.0);
    let (kp_d, keys_d) = dave.key_package(SUITE);
    let (kp_e, _) = eve.key_package(SUITE);
    let add_d = Proposal::Add(Add { key_package: KeyPackage::decode_exact(&kp_d).unwrap() });
    let add_e = Proposal::Add(Add { key_package: KeyPackage::decode_exact(&kp_e).unwrap() });
    assert_eq!(
        add_leaf_key(&add_d),
        add_leaf_key(&add_e),
        "the test's KeyPackages share their encryption key"
    );
    propose(&mut bob, &add_d, &mut [&mut alice, &mut carol]);
    propose(&mut carol, &add_e, &mut [&mut alice, &mut bob]);
    let (commit, welcome) = alice.commit(&[], false, WireFormatPolicy::Public);
    bob.receive_commit(&commit);
    carol.receive_commit(&commit);
    dave.join(&welcome.unwrap(), &kp_d, &keys_d);
    agree(&[&alice, &bob, &carol, &dave]);
}

fn add_leaf_key(p: &Proposal<'_>) -> Vec<u8> {
    match p {
        Proposal::Add(a) => a.key_package.tbs.leaf_node.fields.encryption_key.to_vec(),
        _ => unreachable!(),
    }
}

/// A pending Add whose KeyPackage carries the encryption key of a member's
/// leaf (§7.3: encryption keys are unique in the tree) is left out.
#[test]
fn pending_add_of_a_members_encryption_key_is_left_out() {
    let mut alice = Member::new("alice", 71);
    let mut bob = Member::new("bob", 72);
    let mut dave = Member::new("dave", 74);
    // Dave's KeyPackage is made with the randomness of Bob's: the same keys.
    dave.rng = TestRng(bob.rng.0);
    alice.create(SUITE, b"sel-add-tree-key", Extensions::default());
    alice.add(&mut bob, SUITE);
    let (kp, _) = dave.key_package(SUITE);
    let add = Proposal::Add(Add { key_package: KeyPackage::decode_exact(&kp).unwrap() });
    propose(&mut bob, &add, &mut [&mut alice]);
    let (commit, welcome) = alice.commit(&[], false, WireFormatPolicy::Public);
    assert!(welcome.is_none());
    bob.receive_commit(&commit);
    agree(&[&alice, &bob]);
}

/// Pending Updates of two members whose new leaves carry the same
/// encryption key (§7.3): only the first is committed.
#[test]
fn pending_updates_of_one_encryption_key_are_committed_once() {
    let (mut alice, mut bob, mut carol) = group(b"sel-upd-enc-key");
    // Carol's Update is made with the randomness of Bob's: the same key.
    carol.rng = TestRng(bob.rng.0);
    let mut out = vec![0u8; 8192];
    let template = bob.template();
    let from_bob = bob.group.propose_update(&template, WireFormatPolicy::Public, &mut bob.rng, &mut out).unwrap().to_vec();
    let template = carol.template();
    let mut out = vec![0u8; 8192];
    let from_carol =
        carol.group.propose_update(&template, WireFormatPolicy::Public, &mut carol.rng, &mut out).unwrap().to_vec();
    deliver(&from_bob, &mut [&mut alice, &mut carol]);
    deliver(&from_carol, &mut [&mut alice, &mut bob]);
    let (commit, _) = alice.commit(&[], false, WireFormatPolicy::Public);
    bob.receive_commit(&commit);
    carol.receive_commit(&commit);
    agree(&[&alice, &bob, &carol]);
}
/// A pending GroupContextExtensions proposal with an extension no member
/// supports (§12.1.7: such a proposal is invalid) is left out.
#[test]
fn pending_unsupported_group_context_extensions_left_out() {
    let (mut alice, mut bob, mut carol) = group(b"sel-gce");
    // One extension of type 0xff00 with an empty body.
    let body = [0xff, 0x00, 0x00];
    let gce = Proposal::GroupContextExtensions(GroupContextExtensions { extensions: Extensions::from_body(&body).unwrap() });
    propose(&mut bob, &gce, &mut [&mut alice, &mut carol]);
    let (commit, _) = alice.commit(&[], false, WireFormatPolicy::Public);
    bob.receive_commit(&commit);
    carol.receive_commit(&commit);
    agree(&[&alice, &bob, &carol]);
}

/// Alice's group whose GroupContext has an extension of the non-default
/// type 0xff00, with Bob; both list it in their capabilities (§13.4).
fn ext_group(id: &'static [u8]) -> (Member, Member) {
    use mls_nostd::credential::Credential;
    use mls_nostd::extensions::U16List;
    use mls_nostd::group::{CreateParams, GroupConfig};
    use mls_nostd::key_package::KeyPackageParams;
    use mls_nostd::leaf_node::Capabilities;
    use mls_tests::member::LIFETIME;
    let s = SUITE.to_u16().to_be_bytes();
    let (versions, suites, ext_types, creds) = ([0u8, 1], s, [0xffu8, 0x00], [0u8, 1, 0, 2]);
    let group_ext = [0xffu8, 0x00, 0x00];
    let mut alice = Member::new("alice", 71);
    let mut bob = Member::new("bob", 72);
    let params = CreateParams {
        suite: SUITE,
        group_id: id,
        credential: Credential::Basic { identity: b"alice" },
        lifetime: LIFETIME,
        capabilities: Capabilities {
            versions: U16List::from_body(&versions).unwrap(),
            cipher_suites: U16List::from_body(&suites).unwrap(),
            extensions: U16List::from_body(&ext_types).unwrap(),
            proposals: U16List::default(),
            credentials: U16List::from_body(&creds).unwrap(),
        },
        extensions: Extensions::from_body(&group_ext).unwrap(),
        config: GroupConfig::default(),
    };
    let signer = alice.signer.clone();
    alice.group.create(&params, &signer, &mut alice.rng).unwrap();
    let kp_params = KeyPackageParams {
        suite: SUITE,
        credential: Credential::Basic { identity: b"bob" },
        lifetime: LIFETIME,
        leaf_extensions: Extensions::default(),
        extensions: Extensions::default(),
        supported_extensions: U16List::from_body(&ext_types).unwrap(),
        supported_proposals: U16List::default(),
    };
    let mut kp_buf = vec![0u8; 2048];
    let (kp, keys) = KeyPackage::generate(&kp_params, &bob.signer, &mut bob.rng, &mut kp_buf).unwrap();
    let kp = kp.to_vec();
    let add_bob = Proposal::Add(Add { key_package: KeyPackage::decode_exact(&kp).unwrap() });
    let opts = CommitOptions { proposals: &[add_bob], ..CommitOptions::DEFAULT };
    let (_, welcome) = commit_opts(&mut alice, &opts).unwrap();
    bob.join(&welcome.unwrap(), &kp, &keys);
    (alice, bob)
}

/// Commits with `opts`, merges; the Commit and the Welcome.
fn commit_opts(
    m: &mut Member,
    opts: &CommitOptions<'_>,
) -> Result<(Vec<u8>, Option<Vec<u8>>), mls_nostd::group::CreateCommitError> {
    let (mut mb, mut wb, mut gb) = buffers();
    let bufs = CommitBuffers { message: &mut mb, welcome: &mut wb, group_info: &mut gb };
    let out = m.group.commit_in_memory(opts, &NoPsks, NOW, &mut m.rng, &Sequential, bufs)?;
    let r = (out.commit.to_vec(), out.welcome.map(<[u8]>::to_vec));
    m.group.merge_staged_commit_in_memory().unwrap();
    Ok(r)
}

/// In a group whose GroupContext has an extension of a non-default type,
/// a pending Add of a KeyPackage that does not list it (§12.2: the new
/// leaf must support the group's extensions) is left out.
#[test]
fn pending_add_not_supporting_the_group_extensions_left_out() {
    let (mut alice, mut bob) = ext_group(b"sel-add-fit");
    let mut carol = Member::new("carol", 73);
    // Carol's KeyPackage does not list the group's extension.
    let (kp_c, _) = carol.key_package(SUITE);
    let add_carol = Proposal::Add(Add { key_package: KeyPackage::decode_exact(&kp_c).unwrap() });
    propose(&mut bob, &add_carol, &mut [&mut alice]);
    // Our leaf as it is (its capabilities list the extension).
    let (msg, welcome) = commit_opts(&mut alice, &CommitOptions::DEFAULT).unwrap();
    assert!(welcome.is_none());
    bob.receive_commit(&msg);
    agree(&[&alice, &bob]);
}

/// A Commit whose path leaf, from our leaf template, does not list the
/// group's extension: every member refuses it (§7.3, §13.4), so it is
/// refused before it is staged, and the group is unchanged.
#[test]
fn commit_leaf_template_not_supporting_the_group_extensions_refused() {
    let (mut alice, mut bob) = ext_group(b"path-leaf-fit");
    // Default capabilities: no extension types listed.
    let opts = CommitOptions { force_path: true, leaf: Some(alice.template()), ..CommitOptions::DEFAULT };
    let epoch = alice.group.epoch();
    match commit_opts(&mut alice, &opts) {
        Err(e) => assert_eq!(e, CreateCommitError::Commit(CommitError::UnsupportedCapabilities)),
        Ok((msg, _)) => {
            let mut m = msg.clone();
            let got = bob.group.process_message_in_memory(&mut m, &NoPsks, NOW);
            panic!("our Commit was created; Bob: {got:?}");
        }
    }
    assert_eq!(alice.group.epoch(), epoch);
    assert!(!alice.group.has_staged_commit());
    // Our leaf as it is: the Commit goes through.
    let opts = CommitOptions { force_path: true, ..CommitOptions::DEFAULT };
    let (msg, _) = commit_opts(&mut alice, &opts).unwrap();
    bob.receive_commit(&msg);
    agree(&[&alice, &bob]);
}

/// Bob proposes an Update and then a second one in the same epoch; Alice
/// commits the first (§12.2: one Update per leaf). Bob kept only the
/// private key of his last Update, so his leaf's key in the new epoch was
/// not his, and the path secret sealed to it did not decrypt
/// (`InvalidPath(DecryptionFailed)`; found by `self_acceptance`). Either
/// the second Update is refused when sent, or Bob follows the Commit.
#[test]
fn second_update_of_an_epoch_then_commit_of_the_first() {
    let (mut alice, mut bob, mut carol) = group(b"sel-upd-twice");
    let template = bob.template();
    let mut out = vec![0u8; 8192];
    let first = bob.group.propose_update(&template, WireFormatPolicy::Public, &mut bob.rng, &mut out).unwrap().to_vec();
    deliver(&first, &mut [&mut alice, &mut carol]);
    let mut out = vec![0u8; 8192];
    match bob.group.propose_update(&template, WireFormatPolicy::Public, &mut bob.rng, &mut out) {
        // (`CreateCommitError::UpdatePending`, by name: the test predates it.)
        Err(e) => assert_eq!(format!("{e:?}"), "UpdatePending"),
        Ok(second) => {
            let second = second.to_vec();
            deliver(&second, &mut [&mut alice, &mut carol]);
        }
    }
    let (commit, _) = alice.commit(&[], false, WireFormatPolicy::Public);
    bob.receive_commit(&commit);
    carol.receive_commit(&commit);
    agree(&[&alice, &bob, &carol]);
    // Bob's leaf key is the one he holds: his next Update is committed
    // with a path Carol seals to his leaf, and he follows.
    let template = bob.template();
    let mut out = vec![0u8; 8192];
    let next = bob.group.propose_update(&template, WireFormatPolicy::Public, &mut bob.rng, &mut out).unwrap().to_vec();
    deliver(&next, &mut [&mut alice, &mut carol]);
    let (commit, _) = carol.commit(&[], true, WireFormatPolicy::Public);
    alice.receive_commit(&commit);
    bob.receive_commit(&commit);
    agree(&[&alice, &bob, &carol]);
}

/// Sixteen pending PreSharedKey proposals (`MAX_PSKS_PER_COMMIT`), each of
/// this epoch's resumption PSK (§8.6) with its own nonce (distinct PSKs,
/// §12.2), in a group of a 40-byte ID: 84 bytes each encoded, more than a
/// staged Commit keeps of PSK IDs (`STAGED_PSK_BYTES`, 1024). Alice's
/// Commit takes those that fit (12) and leaves the others out; it failed
/// with `CapacityExceeded(StagedPskBytes)`: any member or external sender
/// could stop every Commit of pending proposals with them (found in review
/// of the external joins' PSKs).
/// Sixteen pending PSK proposals (`MAX_PSKS_PER_COMMIT`) and one PSK by
/// value: the Commit takes the one by value and fifteen pending ones. It
/// chose all sixteen, counting only the pending ones against the limit,
/// and failed with `CapacityExceeded(PsksPerCommit)`: whoever could send
/// sixteen PSK proposals stopped every Commit carrying a PSK by value.
#[test]
fn pending_psks_beyond_the_count_with_one_by_value_left_out() {
    const ID: &[u8] = b"sel-psks-count-1";
    let (mut alice, mut bob, mut carol) = group(ID);
    let epoch = alice.group.epoch();
    let resumption = |nonce: &'static [u8]| {
        let psk = Psk::Resumption { usage: ResumptionPskUsage::Application, psk_group_id: ID, psk_epoch: epoch };
        Proposal::PreSharedKey(PreSharedKey { psk: PreSharedKeyId { psk, psk_nonce: nonce } })
    };
    let nonces: Vec<&'static [u8]> = (0..=16u8).map(|i| &*Box::leak(Box::new([i; 32])) as &[u8]).collect();
    let limit = mls_nostd::group::MAX_PSKS_PER_COMMIT;
    assert_eq!(limit, 16);
    for nonce in &nonces[..limit] {
        propose(&mut bob, &resumption(nonce), &mut [&mut alice, &mut carol]);
    }
    // All seventeen IDs fit the staged bytes: only the count limits them.
    let encoded = 1 + 1 + (1 + ID.len()) + 8 + (1 + 32);
    assert!((limit + 1) * encoded <= mls_nostd::group::STAGED_PSK_BYTES);
    let by_value = [resumption(nonces[limit])];
    let opts = CommitOptions { proposals: &by_value, include_pending: true, ..CommitOptions::DEFAULT };
    let (mut mb, mut wb, mut gb) = buffers();
    let bufs = CommitBuffers { message: &mut mb, welcome: &mut wb, group_info: &mut gb };
    let out = alice.group.commit_in_memory(&opts, &NoPsks, NOW, &mut alice.rng, &Sequential, bufs).expect("a Commit of the sixteen that fit");
    assert_eq!(out.summary.psks, limit as u32);
    let commit = out.commit.to_vec();
    alice.group.merge_staged_commit_in_memory().unwrap();
    for m in [&mut bob, &mut carol] {
        let mut b = commit.clone();
        match m.group.process_message_in_memory(&mut b, &NoPsks, NOW) {
            Ok(Received::Commit(s)) => assert_eq!(s.psks, limit as u32, "{}", m.name),
            other => panic!("{}: {other:?}", m.name),
        }
        m.group.merge_staged_commit_in_memory().unwrap();
    }
    agree(&[&alice, &bob, &carol]);
}

#[test]
fn pending_psks_beyond_the_staged_bytes_left_out() {
    const ID: &[u8] = b"sel-psks-beyond-the-staged-bytes-0123456";
    assert_eq!(ID.len(), 40);
    let (mut alice, mut bob, mut carol) = group(ID);
    let epoch = alice.group.epoch();
    let nonces: Vec<[u8; 32]> = (0..16u8).map(|i| [i; 32]).collect();
    for nonce in &nonces {
        let psk = Psk::Resumption { usage: ResumptionPskUsage::Application, psk_group_id: ID, psk_epoch: epoch };
        let p = Proposal::PreSharedKey(PreSharedKey { psk: PreSharedKeyId { psk, psk_nonce: nonce } });
        propose(&mut bob, &p, &mut [&mut alice, &mut carol]);
    }
    // psktype, usage, group ID<V>, epoch, nonce<V>.
    let encoded = 1 + 1 + (1 + ID.len()) + 8 + (1 + 32);
    assert_eq!(encoded, 84);
    let fit = (mls_nostd::group::STAGED_PSK_BYTES / encoded) as u32;
    assert!(fit < 16);
    let opts = CommitOptions { include_pending: true, ..CommitOptions::DEFAULT };
    let (mut mb, mut wb, mut gb) = buffers();
    let bufs = CommitBuffers { message: &mut mb, welcome: &mut wb, group_info: &mut gb };
    let out = alice.group.commit_in_memory(&opts, &NoPsks, NOW, &mut alice.rng, &Sequential, bufs).expect("a Commit of those that fit");
    assert_eq!(out.summary.psks, fit);
    let commit = out.commit.to_vec();
    alice.group.merge_staged_commit_in_memory().unwrap();
    for m in [&mut bob, &mut carol] {
        let mut b = commit.clone();
        match m.group.process_message_in_memory(&mut b, &NoPsks, NOW) {
            Ok(Received::Commit(s)) => assert_eq!(s.psks, fit, "{}", m.name),
            other => panic!("{}: {other:?}", m.name),
        }
        m.group.merge_staged_commit_in_memory().unwrap();
    }
    agree(&[&alice, &bob, &carol]);
}
