//! Errors like a well-kept crate (issue #13, point 3): every public error
//! type of the core implements `Display` and `core::error::Error`, says what
//! was needed, chains its source; `BufferTooSmall` carries the size the
//! output needs (checked against the real size, measured by a call that
//! succeeded) and `CapacityExceeded` the capacity.
//!
//! All of these fail on 7208f14's behaviour: there `BufferTooSmall` and
//! `CapacityExceeded` carried nothing (so the `needed` values and capacity
//! names asserted here did not exist), most enums had no `Display` and none
//! implemented `core::error::Error`.
use std::error::Error;

use mls_nostd::Capacity;
use mls_nostd::codec::{CodecError, Decode, Encode};
use mls_nostd::credential::Credential;
use mls_nostd::crypto::CipherSuite;
use mls_nostd::crypto::CryptoError;
use mls_nostd::delivery::DeliveryError;
use mls_nostd::executor::Sequential;
use mls_nostd::extensions::Extensions;
use mls_nostd::crypto::HashValue;
use mls_nostd::group::proposal_store::{ProposalStore, StoreFull};
use mls_nostd::messages::Sender;
use mls_nostd::group::{
    CommitBuffers, CommitError, CommitOptions, CreateCommitError, CreateParams, GroupConfig, GroupError, JoinError,
    ReceiveError, WireFormatPolicy, default_capabilities,
};
use mls_nostd::group_context::GroupContext;
use mls_nostd::key_package::{KeyPackage, KeyPackageBuildError, KeyPackageError};
use mls_nostd::key_store::KeyStoreFull;
use mls_nostd::leaf_node::LeafNodeError;
use mls_nostd::messages::proposal::{Add, Proposal};
use mls_nostd::messages::{GroupInfoError, ProtectionError, WelcomeError};
use mls_nostd::psk::NoPsks;
use mls_nostd::ratchet_tree::tree::TreeError;
use mls_nostd::ratchet_tree::treekem::TreeKemError;
use mls_nostd::ratchet_tree::validate::TreeValidationError;
use mls_nostd::secret_tree::SecretTreeError;
use mls_nostd::store::durable::DurableError;
use mls_nostd::store::flash::FlashConfigError;
use mls_nostd::store::{StorageError, StoreError};
use mls_tests::member::{LIFETIME, Member, NOW};

const SUITE: CipherSuite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;

/// The Display texts of `e` and of its sources, outermost first.
fn chain(e: &dyn Error) -> Vec<String> {
    let mut out = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push(s.to_string());
        cur = s.source();
    }
    out
}

/// `e` displays a non-empty text containing every one of `words`, and has
/// `depth` errors in its source chain (itself included).
fn check(e: &dyn Error, depth: usize, words: &[&str]) {
    let texts = chain(e);
    assert!(texts.iter().all(|t| !t.is_empty()), "empty text in {texts:?}");
    let text = &texts[0];
    for w in words {
        assert!(text.contains(w), "{text:?} does not say {w:?}");
    }
    assert_eq!(texts.len(), depth, "source chain of {e:?}: {texts:?}");
}

/// One representative (or two) of every public error type of the core.
#[test]
fn every_error_displays_what_was_needed_and_chains_its_source() {
    let codec_small = CodecError::BufferTooSmall { needed: 1234 };
    let mut checked = 0;
    let mut ok = |e: &dyn Error, depth: usize, words: &[&str]| {
        check(e, depth, words);
        checked += 1;
    };
    ok(&codec_small, 1, &["needed", "1234"]);
    ok(&CodecError::CapacityExceeded(Capacity::GroupIdLen), 1, &["capacity", "MAX_GROUP_ID_LEN"]);
    ok(&CodecError::CapacityExceeded(Capacity::Container(7)), 1, &["7"]);
    ok(&SecretTreeError::CapacityExceeded(Capacity::Leaves), 1, &["leaf capacity (N)"]);
    ok(&SecretTreeError::Crypto(CryptoError::InvalidKey), 2, &["invalid key"]);
    ok(&TreeValidationError::ScratchTooSmall { needed: 64 }, 1, &["needed", "64"]);
    ok(&TreeValidationError::Tree(TreeError::CapacityExceeded(Capacity::TreeArena)), 2, &["ARENA"]);
    ok(&TreeError::Codec(codec_small), 2, &["needed", "1234"]);
    ok(&TreeKemError::Tree(TreeError::Codec(CodecError::Truncated)), 3, &["truncated"]);
    ok(&JoinError::CapacityExceeded(Capacity::GroupExtensionsLen), 1, &["MAX_GROUP_EXTENSIONS_LEN"]);
    ok(&JoinError::Welcome(WelcomeError::Malformed(CodecError::Truncated)), 3, &["truncated"]);
    ok(&JoinError::UnsupportedGroupExtensions, 1, &["capabilities", "GroupContext"]);
    ok(&JoinError::SignatureKeyNotOurs, 1, &["signature key", "signer"]);
    ok(&ReceiveError::Protection(ProtectionError::BufferTooSmall { needed: 77 }), 2, &["needed", "77"]);
    ok(&CommitError::CapacityExceeded(Capacity::PsksPerCommit), 1, &["CAP", "MAX_PSKS_PER_COMMIT"]);
    ok(&CommitError::InvalidPath(TreeKemError::WrongCiphertextCount), 2, &["COM-PATH", "ciphertext count"]);
    ok(&CreateCommitError::Welcome(WelcomeError::BufferTooSmall { needed: 999 }), 2, &["needed", "999"]);
    ok(&CreateCommitError::GroupInfo(GroupInfoError::Codec(codec_small)), 3, &["needed", "1234"]);
    ok(&CreateCommitError::SignatureKeyNotOurs, 1, &["signature key", "signer"]);
    ok(&CreateCommitError::UpdatePending, 1, &["Update", "pending"]);
    ok(&GroupError::CapacityExceeded(Capacity::GroupIdLen), 1, &["MAX_GROUP_ID_LEN"]);
    ok(&GroupError::Tree(TreeError::CapacityExceeded(Capacity::Leaves)), 2, &["leaf capacity (N)"]);
    ok(&CryptoError::InvalidSignature, 1, &["signature"]);
    ok(&LeafNodeError::Codec(CodecError::CapacityExceeded(Capacity::LeafLen)), 2, &["leaf"]);
    ok(&FlashConfigError::Storage(StorageError::Io), 2, &["flash"]);
    ok(&FlashConfigError::TreeUnreadable, 1, &["tree", "nothing erased"]);
    ok(&FlashConfigError::OtherLayout, 1, &["format", "no record erased"]);
    ok(&DurableError::<ReceiveError>::Store(StoreError::BufferTooSmall { needed: 3072 }), 2, &["not saved", "3072"]);
    ok(&DurableError::Op(ReceiveError::Inactive), 2, &["removed"]);
    ok(&StorageError::Full, 1, &["room"]);
    ok(&StoreError::CapacityExceeded(Capacity::RecordLen), 1, &["MAX_RECORD_LEN"]);
    ok(&StoreError::Invalid(CodecError::InvalidValue), 2, &["invalid"]);
    ok(&ProtectionError::SecretTree(SecretTreeError::KeyConsumed), 2, &["secret tree"]);
    ok(&GroupInfoError::Codec(CodecError::BufferTooSmall { needed: 500 }), 2, &["500"]);
    ok(&WelcomeError::TooManyPsks, 1, &["MAX_WELCOME_PSKS"]);
    ok(&WelcomeError::SecretLength { needed: 64 }, 1, &["needed", "64"]);
    ok(&KeyPackageError::Crypto(CryptoError::InvalidKey), 2, &["KeyPackage"]);
    ok(&KeyPackageBuildError::Codec(codec_small), 2, &["needed", "1234"]);
    let mut store = ProposalStore::<8>::EMPTY;
    let full: StoreFull = store.insert(&HashValue::from_slice(&[1; 32]).unwrap(), Sender::Member(0), &[0; 64]).unwrap_err();
    ok(&full, 1, &["proposal store", "(P)"]);
    ok(&KeyStoreFull, 1, &["full"]);
    ok(&DeliveryError::Malformed(CodecError::Truncated), 2, &["MLSMessage", "truncated"]);
    ok(&DeliveryError::BufferFull { slots: 8, bytes: 512 }, 1, &["8", "512", "rejoin"]);
    ok(&DeliveryError::TooFarAhead { epoch: 1005, current: 5, latest: 21 }, 1, &["1005", "5", "21", "ahead"]);
    assert_eq!(checked, 43);
}

/// Creates a one-member group of Alice's, with `group_id`.
fn create(alice: &mut Member, group_id: &'static [u8]) -> Result<(), GroupError> {
    let mut caps = [0u8; 8];
    let params = CreateParams {
        suite: SUITE,
        group_id,
        credential: Credential::Basic { identity: b"alice" },
        lifetime: LIFETIME,
        capabilities: default_capabilities(SUITE, &mut caps),
        extensions: Extensions::default(),
        config: GroupConfig::default(),
    };
    let signer = alice.signer.clone();
    alice.group.create(&params, &signer, &mut alice.rng)
}

/// An application message protected into a buffer too small is refused
/// with the message's exact size, and protecting into a buffer of that size
/// then works. The real size comes from a protection into a large buffer,
/// which does not go through the error path.
#[test]
fn buffer_too_small_says_the_real_size_of_a_message() {
    let mut alice = Member::new("alice", 1);
    let mut bob = Member::new("bob", 2);
    create(&mut alice, b"errors-group").unwrap();
    alice.add(&mut bob, SUITE);
    let data = b"a message of some length";
    let mut large = vec![0u8; 4096];
    let real = alice.group.protect_application_in_memory(data, b"ad", 8, &mut alice.rng, &mut large).unwrap().to_vec();
    assert_eq!(bob.receive_app(&real).1, data);
    for n in [0, 1, real.len() / 2, real.len() - 1] {
        let mut small = vec![0u8; n];
        let got = alice.group.protect_application_in_memory(data, b"ad", 8, &mut alice.rng, &mut small).err();
        assert_eq!(got, Some(ReceiveError::Protection(ProtectionError::BufferTooSmall { needed: real.len() })), "{n}");
    }
    // A refusal consumed no key: the next message is the next generation.
    let mut exact = vec![0u8; real.len()];
    let again = alice.group.protect_application_in_memory(data, b"ad", 8, &mut alice.rng, &mut exact).unwrap().to_vec();
    assert_eq!(again.len(), real.len());
    assert_eq!(bob.receive_app(&again).1, data);
}

/// An encoding into any buffer shorter than it reports at least one byte
/// more than the buffer and at most the encoding's size ("at least"), and
/// exactly the size when one byte is missing; the GroupContext through
/// `Group::group_context` likewise.
#[test]
fn buffer_too_small_needed_is_at_least_the_buffer_and_at_most_the_size() {
    let mut alice = Member::new("alice", 1);
    create(&mut alice, b"errors-group").unwrap();
    let mut large = vec![0u8; 8192];
    let encoded = alice.group.group_context(&mut large).unwrap().to_vec();
    let gc = GroupContext::decode_exact(&encoded).unwrap();
    assert_eq!(gc.encoded_len().unwrap(), encoded.len());
    for n in 0..encoded.len() {
        let mut small = vec![0u8; n];
        match gc.encode_to(&mut small) {
            Err(CodecError::BufferTooSmall { needed }) => {
                assert!(needed > n && needed <= encoded.len(), "buffer {n}: needed {needed} of {}", encoded.len())
            }
            other => panic!("buffer {n}: {other:?}"),
        }
    }
    let mut short = vec![0u8; encoded.len() - 1];
    assert_eq!(gc.encode_to(&mut short), Err(CodecError::BufferTooSmall { needed: encoded.len() }));
    let got = alice.group.group_context(&mut short);
    assert_eq!(got, Err(GroupError::Codec(CodecError::BufferTooSmall { needed: encoded.len() })));
}

/// A Welcome buffer too small is refused with the size the Welcome needs,
/// and the same Commit then succeeds with a buffer of exactly that size.
#[test]
fn buffer_too_small_says_the_size_a_welcome_needs() {
    let mut alice = Member::new("alice", 1);
    let mut bob = Member::new("bob", 2);
    create(&mut alice, b"errors-group").unwrap();
    let (kp, keys) = bob.key_package(SUITE);
    let add = [Proposal::Add(Add { key_package: KeyPackage::decode_exact(&kp).unwrap() })];
    let opts = CommitOptions {
        proposals: &add,
        include_pending: false,
        force_path: false,
        ratchet_tree_in_welcome: true,
        wire_format: WireFormatPolicy::Public,
        padding: 0,
        authenticated_data: b"",
        leaf: None,
    };
    let (mut message, mut group_info) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    let mut commit = |alice: &mut Member, welcome_len: usize| {
        let mut welcome = vec![0u8; welcome_len];
        let bufs = CommitBuffers { message: &mut message, welcome: &mut welcome, group_info: &mut group_info };
        let out = alice.group.commit_in_memory(&opts, &NoPsks, NOW, &mut alice.rng, &Sequential, bufs);
        out.map(|o| o.welcome.map(<[u8]>::to_vec))
    };
    let needed = match commit(&mut alice, 10) {
        Err(CreateCommitError::Welcome(WelcomeError::BufferTooSmall { needed })) => needed,
        other => panic!("{other:?}"),
    };
    assert!(needed > 10);
    assert!(!alice.group.has_staged_commit(), "a refused commit stages nothing");
    let got = commit(&mut alice, needed - 1).err();
    assert_eq!(got, Some(CreateCommitError::Welcome(WelcomeError::BufferTooSmall { needed })));
    let welcome = commit(&mut alice, needed).unwrap().expect("a Welcome");
    assert!(welcome.len() <= needed);
    alice.group.merge_staged_commit_in_memory().unwrap();
    bob.join(&welcome, &kp, &keys);
    assert_eq!(bob.group.epoch_authenticator(), alice.group.epoch_authenticator());
}

/// A Commit's UpdatePath work area is sized from the path in the tree, not
/// from the group's capacity (issue #14): in a group of 3 (capacity 16) a
/// Commit with a path fits in a message buffer far smaller than the 8 KiB
/// plus 186 bytes per leaf of capacity reserved before. A buffer too small
/// is refused with a larger size each time, without staging anything, the
/// size the last refusal named is at most a third more than the Commit
/// (built where it is sent), and that Commit is processed by the others.
#[test]
fn a_commit_with_path_needs_room_for_its_path_not_for_the_capacity() {
    let mut alice = Member::new("alice", 1);
    let mut bob = Member::new("bob", 2);
    let mut carol = Member::new("carol", 3);
    alice.create(SUITE, b"path-room", Extensions::default());
    alice.add(&mut bob, SUITE);
    alice.add_seen_by(&mut carol, &mut [&mut bob], SUITE);
    let template = alice.template();
    let opts = CommitOptions {
        proposals: &[],
        include_pending: false,
        force_path: true,
        ratchet_tree_in_welcome: false,
        wire_format: WireFormatPolicy::Private,
        padding: 0,
        authenticated_data: b"",
        leaf: Some(template),
    };
    let (mut welcome, mut group_info) = (vec![0u8; 16], vec![0u8; 16]);
    let mut len = 64;
    let mut refusals = 0;
    let commit = loop {
        let mut message = vec![0u8; len];
        let bufs = CommitBuffers { message: &mut message, welcome: &mut welcome, group_info: &mut group_info };
        match alice.group.commit_in_memory(&opts, &NoPsks, NOW, &mut alice.rng, &Sequential, bufs) {
            Ok(out) => break out.commit.to_vec(),
            Err(CreateCommitError::Protection(ProtectionError::BufferTooSmall { needed })) => {
                assert!(needed > len, "a refusal of {len} bytes named {needed}");
                assert!(!alice.group.has_staged_commit(), "a refused commit stages nothing");
                len = needed;
                refusals += 1;
                assert!(refusals <= 3, "still refused with {len} bytes");
            }
            Err(e) => panic!("{e:?}"),
        }
    };
    assert!(refusals >= 1, "64 bytes cannot hold a Commit with a path");
    // The path of a 3-leaf tree: 2 parents, 2 HPKE ciphertexts.
    assert!(len < 4096, "a Commit with path in a group of 3 needed a buffer of {len} bytes");
    // Built in place: the buffer holds the Commit and what its sealing jobs
    // take beyond it (a job is at most a third longer than its ciphertext),
    // not a work area beside it.
    assert!(commit.len() <= len && len <= commit.len() + commit.len() / 3, "a Commit of {} bytes needed {len}", commit.len());
    alice.group.merge_staged_commit_in_memory().unwrap();
    bob.receive_commit(&commit);
    carol.receive_commit(&commit);
    assert_eq!(bob.group.epoch_authenticator(), alice.group.epoch_authenticator());
    assert_eq!(carol.group.epoch_authenticator(), alice.group.epoch_authenticator());
}

/// A group ID longer than the capacity names the capacity.
#[test]
fn capacity_exceeded_names_the_capacity() {
    let mut alice = Member::new("alice", 1);
    let long: &'static [u8] = Box::leak(vec![7u8; mls_nostd::group::MAX_GROUP_ID_LEN + 1].into_boxed_slice());
    let got = create(&mut alice, long);
    assert_eq!(got, Err(GroupError::CapacityExceeded(Capacity::GroupIdLen)));
    assert!(got.unwrap_err().to_string().contains("MAX_GROUP_ID_LEN"));
    assert!(alice.group.is_inactive());
}
