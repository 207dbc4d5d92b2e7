//! The parallel executors (rayon's, and the caller with spinning helper
//! threads) produce byte-identical UpdatePaths to the sequential one for
//! the same seed (docs/architecture.md, decision 5), batch signatures and
//! name a bad one as it does.
#![cfg(feature = "parallel")]
use mls_nostd::codec::Decode;
use mls_nostd::credential::Credential;
use mls_nostd::crypto::hpke::derive_key_pair;
use mls_nostd::crypto::signature::SignaturePrivateKey;
use mls_nostd::crypto::CipherSuite;
use mls_nostd::executor::{Executor, Sequential};
use mls_nostd::extensions::Extensions;
use mls_nostd::group_context::GroupContext;
use mls_nostd::leaf_node::LeafNode;
use mls_nostd::ratchet_tree::tree::{HASH_CACHE_PER_LEAF, LeafSlot, ParentSlot, TreeMeta, TreeSlices};
use mls_nostd::ratchet_tree::treekem::{LeafTemplate, TreeKemPrivate};
use mls_nostd::tree_math::LeafIndex;
use mls_tests::{TestRng, test_leaf};
use platform_std::{RayonExecutor, ThreadExecutor};

/// The executors of platform-std, by name.
const PARALLEL: [(&str, &dyn Executor); 2] =
    [("rayon", &RayonExecutor), ("threads", &ThreadExecutor)];

const SUITE: CipherSuite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
const N: usize = 256;

/// Creates an UpdatePath from leaf 0 in a tree of `N` members.
fn update_path(executor: &dyn Executor) -> Vec<u8> {
    let mut meta = TreeMeta::new(SUITE);
    let mut leaves = vec![LeafSlot::BLANK; N];
    let mut parents = vec![ParentSlot::BLANK; N];
    let mut arena = vec![0u8; N * 256];
    let mut hashes = vec![0u8; N * HASH_CACHE_PER_LEAF];
    let mut t = TreeSlices::new(&mut meta, &mut leaves, &mut parents, &mut arena).with_hash_cache(&mut hashes);
    for i in 0..N as u64 {
        let (leaf, _) = test_leaf(SUITE, format!("m{i}").as_bytes(), i, None);
        t.add_leaf(&leaf).unwrap();
    }
    let mut seed = [0x5au8; 32];
    seed[..8].copy_from_slice(&0u64.to_be_bytes());
    let (leaf_sk, _) = derive_key_pair(SUITE, &seed).unwrap();
    let signer = SignaturePrivateKey::from_slice(SUITE, &seed).unwrap();
    let me = TreeKemPrivate::new(LeafIndex(0), leaf_sk);
    let leaf = t.leaf_bytes(LeafIndex(0)).unwrap().to_vec();
    let leaf = LeafNode::decode_exact(&leaf).unwrap();
    let template = LeafTemplate {
        signature_key: leaf.fields.signature_key,
        credential: Credential::Basic { identity: b"m0" },
        capabilities: leaf.fields.capabilities,
        extensions: Extensions::default(),
    };
    let context = GroupContext {
        cipher_suite: SUITE,
        group_id: b"fleet",
        epoch: 1,
        tree_hash: &[],
        confirmed_transcript_hash: &[0; 32],
        extensions: &[],
    };
    let mut out = vec![0u8; 64 * 1024];
    let mut gc = [0u8; 256];
    let r = t
        .create_update_path(
            &me,
            Some(&template),
            &signer,
            &context,
            &mut gc,
            &|_| false,
            &mut TestRng(42),
            &Counting {
                inner: executor,
                batches: Default::default(),
            },
            &mut out,
        )
        .unwrap();
    out.truncate(r.update_path_len);
    out
}

#[test]
fn same_seed_same_bytes_sequential_or_parallel() {
    let a = update_path(&Sequential);
    // No parent is set yet, so every other member's leaf gets its own seal.
    assert!(
        a.len() > 255 * 80,
        "the path holds one ciphertext per other member"
    );
    for (name, executor) in PARALLEL {
        assert!(update_path(executor) == a, "{name}");
    }
}

/// Counts the batches an executor was asked for and what it answered.
struct Counting<'a> {
    inner: &'a dyn Executor,
    batches: std::sync::Mutex<Vec<Option<bool>>>,
}

impl Executor for Counting<'_> {
    fn for_each_chunk(&self, buf: &mut [u8], chunk: usize, job: &(dyn Fn(usize, &mut [u8]) + Sync)) {
        self.inner.for_each_chunk(buf, chunk, job)
    }

    fn verify_ed25519_batch(
        &self,
        count: usize,
        signatures: &mls_nostd::executor::Ed25519Batch<'_>,
    ) -> Option<bool> {
        let r = self.inner.verify_ed25519_batch(count, signatures);
        self.batches.lock().unwrap().push(r);
        r
    }
}

/// The leaf of [`validate_tree`]'s trees that is an update leaf.
const UPDATE_LEAF: u64 = 300;

/// Validates a tree of `n` KeyPackage leaves (leaf [`UPDATE_LEAF`] an
/// update leaf), leaf `bad` (if any) with a flipped signature byte; returns
/// the result and the batch answers.
fn validate_tree(
    n: usize,
    bad: Option<u32>,
    executor: &dyn Executor,
) -> (Result<(), mls_nostd::ratchet_tree::validate::TreeValidationError>, Vec<Option<bool>>) {
    use mls_nostd::ratchet_tree::validate::TreeCheck;
    let cap = n.next_power_of_two();
    let mut meta = TreeMeta::new(SUITE);
    let mut leaves = vec![LeafSlot::BLANK; cap];
    let mut parents = vec![ParentSlot::BLANK; cap];
    let mut arena = vec![0u8; cap * 256];
    let mut hashes = vec![0u8; cap * HASH_CACHE_PER_LEAF];
    let mut t = TreeSlices::new(&mut meta, &mut leaves, &mut parents, &mut arena).with_hash_cache(&mut hashes);
    for i in 0..n as u64 {
        let (mut leaf, sk) = test_leaf(SUITE, format!("m{i}").as_bytes(), i, None);
        if i == UPDATE_LEAF {
            // An update leaf, signed with the group and its index (§7.2).
            let view = LeafNode::decode_exact(&leaf).unwrap();
            let fields = mls_nostd::leaf_node::LeafNodeFields {
                source: mls_nostd::leaf_node::LeafNodeSource::Update,
                ..view.fields
            };
            let context = mls_nostd::leaf_node::LeafNodeContext { group_id: b"fleet", leaf_index: i as u32 };
            let mut buf = vec![0u8; 1024];
            leaf = LeafNode::sign_into(SUITE, &fields, Some(context), &sk, &mut buf).unwrap().to_vec();
        }
        if bad == Some(i as u32) {
            // The last byte of the encoding is the signature's.
            *leaf.last_mut().unwrap() ^= 1;
        }
        t.add_leaf(&leaf).unwrap();
    }
    let check = TreeCheck {
        group_id: b"fleet",
        tree_hash: None,
        group_extensions: Extensions::default(),
        identity: &mls_nostd::identity::SameCredential,
    };
    let counting = Counting { inner: executor, batches: Default::default() };
    let (mut a, mut b) = (vec![0u32; cap], vec![0u32; cap]);
    let r = t.validate(&check, &counting, &mut a, &mut b);
    (r, counting.batches.into_inner().unwrap())
}

/// A join's leaf signatures are checked in one batch request when the
/// executor batches (RayonExecutor, Ed25519 suites), one by one otherwise,
/// and a bad one is named either way: in the first, a middle and the last
/// of RayonExecutor's batches of 256, and the update leaf (its signature
/// covers the group ID and its index).
#[test]
fn leaf_signatures_checked_in_batches_and_a_bad_one_named() {
    use mls_nostd::ratchet_tree::validate::TreeValidationError::InvalidLeafSignature;
    let n = 3 * platform_std::ED25519_BATCH - 17;
    assert_eq!(validate_tree(n, None, &Sequential), (Ok(()), vec![None]));
    let mut checked = 0;
    for (name, executor) in PARALLEL {
        assert_eq!(
            validate_tree(n, None, executor),
            (Ok(()), vec![Some(true)]),
            "{name}"
        );
        for bad in [
            0,
            platform_std::ED25519_BATCH as u32 + 5,
            UPDATE_LEAF as u32,
            n as u32 - 1,
        ] {
            let want = Err(InvalidLeafSignature(LeafIndex(bad)));
            assert_eq!(
                validate_tree(n, Some(bad), executor),
                (want, vec![Some(false)]),
                "{name}"
            );
            assert_eq!(validate_tree(n, Some(bad), &Sequential), (want, vec![None]));
            checked += 1;
        }
    }
    assert_eq!(checked, 8);
}

/// Small trees: one leaf is checked alone (the executor declines a batch
/// of one); fewer than `ED25519_SPLIT` leaves are checked on the calling
/// thread, more are shared over the threads (one by one up to
/// `ED25519_SINGLES` a thread, 17 in batches); a bad leaf is named in
/// every case.
#[test]
fn small_trees_batched_inline_or_split_and_a_bad_one_named() {
    use mls_nostd::ratchet_tree::validate::TreeValidationError::InvalidLeafSignature;
    let mut checked = 0;
    for (name, executor) in PARALLEL {
        assert_eq!(
            validate_tree(1, None, executor),
            (Ok(()), vec![None]),
            "{name}"
        );
        for n in [
            2,
            platform_std::ED25519_SPLIT - 1,
            platform_std::ED25519_SPLIT,
            17,
        ] {
            assert_eq!(
                validate_tree(n, None, executor),
                (Ok(()), vec![Some(true)]),
                "{name}: {n} leaves"
            );
            for bad in [0, n as u32 - 1] {
                let want = Err(InvalidLeafSignature(LeafIndex(bad)));
                assert_eq!(
                    validate_tree(n, Some(bad), executor),
                    (want, vec![Some(false)]),
                    "{name}: {n} leaves, bad {bad}"
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 16);
}

/// Commits Adds of 20 KeyPackages (the one at `bad`, if any, with a
/// flipped signature byte; the first `pending` proposed first, so that
/// the Commit takes them by reference, the others by value) through
/// `executor`; returns the result, the batch answers and the Adds committed.
fn commit_adds(
    bad: Option<usize>,
    pending: usize,
    executor: &dyn Executor,
) -> (Result<u32, mls_nostd::group::CreateCommitError>, Vec<Option<bool>>) {
    use mls_nostd::group::{CommitBuffers, CommitOptions, CreateParams};
    use mls_nostd::key_package::{KeyPackage, KeyPackageParams};
    use mls_nostd::leaf_node::Lifetime;
    use mls_nostd::messages::proposal::{Add, Proposal};
    const NOW: u64 = 1_800_000_000;
    let lifetime = Lifetime { not_before: NOW - 60, not_after: NOW + 86_400 };
    let key_package = |i: u64| {
        let name = format!("m{i}");
        let params = KeyPackageParams::new(SUITE, Credential::Basic { identity: name.as_bytes() }, lifetime);
        let signer = SignaturePrivateKey::from_slice(SUITE, &[i as u8 + 1; 32]).unwrap();
        let mut out = vec![0u8; 2048];
        let mut kp = KeyPackage::generate(&params, &signer, &mut TestRng(i), &mut out).unwrap().0.to_vec();
        if bad == Some(i as usize) {
            // The last byte of the encoding is the KeyPackage signature's.
            *kp.last_mut().unwrap() ^= 1;
        }
        kp
    };
    let kps: Vec<Vec<u8>> = (1..=20).map(key_package).collect();
    let adds: Vec<Proposal<'_>> =
        kps.iter().map(|k| Proposal::Add(Add { key_package: KeyPackage::decode_exact(k).unwrap() })).collect();
    let mut group = platform_std::boxed_group::<32, { 32 * 512 }, 16, 4096>();
    let creator = SignaturePrivateKey::from_slice(SUITE, &[0xc0; 32]).unwrap();
    group.create(&CreateParams::new(SUITE, b"fleet", Credential::Basic { identity: b"c" }, lifetime), &creator, &mut TestRng(0)).unwrap();
    let (mut message, mut welcome, mut group_info) = (vec![0u8; 64 << 10], vec![0u8; 64 << 10], vec![0u8; 64 << 10]);
    for add in &adds[..pending] {
        let policy = mls_nostd::group::WireFormatPolicy::Public;
        group.propose(add, policy, &mut TestRng(2), &mut message).unwrap();
    }
    let opts = CommitOptions { proposals: &adds[pending..], ..CommitOptions::default() };
    let counting = Counting { inner: executor, batches: Default::default() };
    let bufs = CommitBuffers { message: &mut message, welcome: &mut welcome, group_info: &mut group_info };
    let r = group.commit_in_memory(&opts, &mls_nostd::psk::NoPsks, NOW, &mut TestRng(1), &counting, bufs).map(|o| o.summary.adds);
    (r, counting.batches.into_inner().unwrap())
}

/// A Commit's KeyPackage signatures (two per Add) are checked in one batch
/// request when the executor batches, one by one otherwise; a bad one
/// fails the Commit with the same error either way.
#[test]
fn key_package_signatures_checked_in_a_batch() {
    use mls_nostd::group::{CommitError, CreateCommitError};
    use mls_nostd::key_package::KeyPackageError;
    assert_eq!(commit_adds(None, 0, &Sequential), (Ok(20), vec![None]));
    let want = Err(CreateCommitError::Commit(CommitError::InvalidKeyPackage(
        KeyPackageError::InvalidSignature,
    )));
    assert_eq!(commit_adds(Some(13), 0, &Sequential), (want, vec![None]));
    for (name, executor) in PARALLEL {
        assert_eq!(
            commit_adds(None, 0, executor),
            (Ok(20), vec![Some(true)]),
            "{name}"
        );
        assert_eq!(
            commit_adds(Some(13), 0, executor),
            (want, vec![Some(false)]),
            "{name}"
        );
    }
}

/// An own Commit of pending Adds (by reference) and Adds by value: a bad
/// signature among the last by value fails it whatever the executor (a
/// batch covers every Add, the pending ones too, which were checked when
/// chosen); a bad pending one is left out.
#[test]
fn own_commit_of_pending_and_new_adds_checks_every_signature() {
    use mls_nostd::group::{CommitError, CreateCommitError};
    use mls_nostd::key_package::KeyPackageError;
    let want = Err(CreateCommitError::Commit(CommitError::InvalidKeyPackage(
        KeyPackageError::InvalidSignature,
    )));
    let mut checked = 0;
    for (name, executor) in [("sequential", &Sequential as &dyn Executor)].into_iter().chain(PARALLEL) {
        assert_eq!(commit_adds(None, 4, executor).0, Ok(20), "{name}");
        assert_eq!(commit_adds(Some(19), 4, executor).0, want, "{name}: a bad Add by value, the second last");
        assert_eq!(commit_adds(Some(2), 4, executor).0, Ok(19), "{name}: a bad pending Add is left out");
        checked += 1;
    }
    assert_eq!(checked, 3);
}

/// Every chunk is handed to exactly one item, with its own index, also
/// with eight threads calling at once (one task runs on the helpers, the
/// others on their callers), for counts around the number of threads.
#[test]
fn thread_executor_runs_every_chunk_once_under_concurrent_callers() {
    let rounds = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for t in 0..8usize {
            let rounds = &rounds;
            s.spawn(move || {
                for round in 0..200usize {
                    let n = 1 + (t * 7 + round) % 13;
                    let mut buf = vec![0u8; n * 4];
                    ThreadExecutor.for_each_chunk(&mut buf, 4, &|i, c| {
                        for b in c.iter_mut() {
                            *b += 1 + i as u8;
                        }
                    });
                    let want: Vec<u8> = (0..n).flat_map(|i| [1 + i as u8; 4]).collect();
                    assert_eq!(buf, want, "thread {t}, round {round}");
                    rounds.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
    });
    assert_eq!(rounds.into_inner(), 8 * 200);
}

/// A panicking item reaches the caller (wherever it ran) and the executor
/// runs the next task normally.
#[test]
fn thread_executor_raises_an_item_panic_and_goes_on() {
    for bad in [0usize, 1, 5] {
        let r = std::panic::catch_unwind(|| {
            let mut buf = [0u8; 6];
            ThreadExecutor.for_each_chunk(&mut buf, 1, &|i, _| {
                if i == bad {
                    panic!("item {i}");
                }
            });
        });
        assert!(r.is_err(), "item {bad} panicked");
        let mut buf = [0u8; 6];
        ThreadExecutor.for_each_chunk(&mut buf, 1, &|i, c| c[0] = i as u8 + 1);
        assert_eq!(buf, [1, 2, 3, 4, 5, 6], "after item {bad}");
    }
}

/// Two signatures while a helper spins (right after a step): one checked
/// on each thread, alone; a bad one makes the answer false, so the core
/// checks them one by one and names it.
#[test]
fn thread_executor_checks_two_signatures_apart_and_refuses_a_bad_one() {
    use mls_nostd::executor::Ed25519Check;
    let message = *b"two signatures, one each";
    let keys: Vec<SignaturePrivateKey> = (1..=2u8)
        .map(|i| SignaturePrivateKey::from_slice(SUITE, &[i; 32]).unwrap())
        .collect();
    let public: Vec<[u8; 32]> = keys
        .iter()
        .map(|k| k.public_key().as_bytes().try_into().unwrap())
        .collect();
    let signed: Vec<[u8; 64]> = keys
        .iter()
        .map(|k| {
            k.sign(SUITE, &[&message])
                .unwrap()
                .as_bytes()
                .try_into()
                .unwrap()
        })
        .collect();
    let parts: [&[u8]; 1] = [&message];
    let mut checked = 0;
    for round in 0..20 {
        for bad in [None, Some(0), Some(1)] {
            let mut sigs = signed.clone();
            if let Some(b) = bad {
                sigs[b][5] ^= 1;
            }
            let batch = |range: std::ops::Range<usize>, sink: &mut dyn FnMut(Ed25519Check<'_>)| {
                for i in range {
                    sink(Ed25519Check {
                        public_key: &public[i],
                        message: &parts,
                        signature: &sigs[i],
                    });
                }
            };
            // A step first, so that the helper spins.
            ThreadExecutor.for_each_chunk(&mut [0u8; 2], 1, &|_, c| c[0] = 1);
            let got = ThreadExecutor.verify_ed25519_batch(2, &batch);
            assert_eq!(got, Some(bad.is_none()), "round {round}, bad {bad:?}");
            checked += 1;
        }
    }
    assert_eq!(checked, 60);
}
