//! The hot paths of the core perform no heap allocation (issue #8, part 2):
//! processing a Commit (process_message + merge), creating one, protecting
//! and unprotecting application messages, in a group of 8 members.
//!
//! A counting `#[global_allocator]` counts the allocations of the calling
//! thread while a flag is set; the flag is set only around the measured calls,
//! after the groups (in `Box`es) and every buffer exist. This file is its own
//! test binary with one test, so no other test's allocations can interfere.
//!
//! Checked to fail: with `extern crate alloc;` appended to mls-nostd/src/lib.rs
//! and `let v: alloc::vec::Vec<u8> = alloc::vec::Vec::with_capacity(8);
//! core::hint::black_box(&v);` put at the start of `Group::protect_application`
//! (mls-nostd/src/group/receive.rs), this test failed with
//! "round 0: protect_application: 1 allocation(s)".
use mls_nostd::codec::Decode;
use mls_nostd::credential::Credential;
use mls_nostd::crypto::signature::SignaturePrivateKey;
use mls_nostd::crypto::CipherSuite;
use mls_nostd::executor::Sequential;
use mls_nostd::extensions::{Extensions, U16List};
use mls_nostd::group::{
    default_capabilities, CommitBuffers, CommitOptions, CreateParams, Group, GroupConfig, JoinParams, Received,
    WireFormatPolicy,
};
use mls_nostd::key_package::{KeyPackage, KeyPackageParams};
use mls_nostd::leaf_node::Lifetime;
use mls_nostd::messages::proposal::{Add, Proposal};
use mls_nostd::psk::NoPsks;
use mls_nostd::ratchet_tree::treekem::LeafTemplate;
use mls_tests::TestRng;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts allocations (alloc, alloc_zeroed, realloc) of threads whose
/// `COUNTING` flag is set.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn note() {
    if COUNTING.with(|c| c.get()) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded to `System` unchanged; counting does not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns its result with the number of allocations it made.
fn counted<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    COUNTING.with(|c| c.set(true));
    let out = f();
    COUNTING.with(|c| c.set(false));
    (out, ALLOCATIONS.load(Ordering::Relaxed) - before)
}

type G = Group<8, { 8 * 512 }, 64, 4096>;
const SUITE: CipherSuite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
const NOW: u64 = 1_800_000_000;
const LIFETIME: Lifetime = Lifetime { not_before: NOW - 10, not_after: NOW + 86_400 };
const MEMBERS: usize = 8;


fn signer(i: usize) -> SignaturePrivateKey {
    SignaturePrivateKey::from_slice(SUITE, &[i as u8 + 1; 32]).unwrap()
}

fn name(i: usize) -> Vec<u8> {
    format!("member-{i}").into_bytes()
}

fn commit_options<'a>(proposals: &'a [Proposal<'a>], leaf: Option<LeafTemplate<'a>>, force_path: bool) -> CommitOptions<'a> {
    CommitOptions {
        proposals,
        include_pending: false,
        force_path,
        ratchet_tree_in_welcome: true,
        wire_format: WireFormatPolicy::Public,
        padding: 0,
        authenticated_data: &[],
        leaf,
    }
}

#[test]
fn hot_paths_do_not_allocate() {
    let mut rng = TestRng(7);
    let signers: Vec<_> = (0..MEMBERS).map(signer).collect();
    let names: Vec<_> = (0..MEMBERS).map(name).collect();
    let mut groups: Vec<Box<G>> = (0..MEMBERS).map(|_| Box::new(G::EMPTY)).collect();
    let mut caps = [0u8; 8];
    let caps = default_capabilities(SUITE, &mut caps);

    // Member 0 creates the group and adds the others in one Commit.
    let create = CreateParams {
        suite: SUITE,
        group_id: b"zero-alloc",
        credential: Credential::Basic { identity: &names[0] },
        lifetime: LIFETIME,
        capabilities: caps,
        extensions: Extensions::default(),
        config: GroupConfig::default(),
    };
    groups[0].create(&create, &signers[0], &mut rng).unwrap();
    let mut kps = Vec::new();
    for i in 1..MEMBERS {
        let params = KeyPackageParams {
            suite: SUITE,
            credential: Credential::Basic { identity: &names[i] },
            lifetime: LIFETIME,
            leaf_extensions: Extensions::default(),
            extensions: Extensions::default(),
            supported_extensions: U16List::default(),
            supported_proposals: U16List::default(),
        };
        let mut out = vec![0u8; 2048];
        let (bytes, keys) = KeyPackage::generate(&params, &signers[i], &mut rng, &mut out).unwrap();
        kps.push((bytes.to_vec(), keys));
    }
    let adds: Vec<_> =
        kps.iter().map(|(kp, _)| Proposal::Add(Add { key_package: KeyPackage::decode_exact(kp).unwrap() })).collect();
    let (mut msg, mut welcome, mut gi) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    let out = groups[0]
        .commit_in_memory(
            &commit_options(&adds, None, false),
            &NoPsks,
            NOW,
            &mut rng,
            &Sequential,
            CommitBuffers { message: &mut msg, welcome: &mut welcome, group_info: &mut gi },
        )
        .unwrap();
    let welcome = out.welcome.unwrap().to_vec();
    groups[0].merge_staged_commit_in_memory().unwrap();
    let mut join_buf = vec![0u8; welcome.len()];
    for i in 1..MEMBERS {
        let (kp, keys) = &kps[i - 1];
        let params = JoinParams {
            executor: &mls_nostd::executor::Sequential,
            key_package: kp,
            keys,
            signer: &signers[i],
            ratchet_tree: None,
            psks: &NoPsks,
            config: GroupConfig::default(),
        };
        groups[i].join_in_memory(&welcome, &params, &mut join_buf).unwrap();
    }

    // Everything the measured calls use exists before counting starts.
    let sig_pub: Vec<u8> = signers[0].public_key().as_bytes().to_vec();
    let (mut m, mut w, mut g) = (vec![0u8; 64 * 1024], vec![0u8; 1024], vec![0u8; 1024]);
    let mut incoming = vec![0u8; 64 * 1024];
    let mut app = vec![0u8; 4096];
    let data = vec![0x42u8; 1024];
    let (first, rest) = groups.split_at_mut(1);
    let (near, far) = rest.split_at_mut(MEMBERS - 2);
    let (alice, bob, last) = (&mut first[0], &mut near[0], &mut far[0]);

    for round in 0..3 {
        // Creating a Commit with path (an update of member 0's leaf).
        let template = LeafTemplate {
            signature_key: &sig_pub,
            credential: Credential::Basic { identity: &names[0] },
            capabilities: caps,
            extensions: Extensions::default(),
        };
        let opts = commit_options(&[], Some(template), true);
        let (len, n) = counted(|| {
            let out = alice
                .commit_in_memory(&opts, &NoPsks, NOW, &mut rng, &Sequential, CommitBuffers {
                    message: &mut m,
                    welcome: &mut w,
                    group_info: &mut g,
                })
                .unwrap();
            let len = out.commit.len();
            incoming[..len].copy_from_slice(out.commit);
            alice.merge_staged_commit_in_memory().unwrap();
            len
        });
        assert_eq!(n, 0, "round {round}: commit + merge: {n} allocation(s)");

        // Processing it on two members (the farthest one and a sibling's).
        for member in [&mut **bob, &mut **last] {
            let mut copy = incoming.clone();
            let (r, n) = counted(|| {
                let r = matches!(member.process_message_in_memory(&mut copy[..len], &NoPsks, NOW), Ok(Received::Commit(_)));
                member.merge_staged_commit_in_memory().unwrap();
                r
            });
            assert!(r, "round {round}: the commit is processed");
            assert_eq!(n, 0, "round {round}: process_message + merge_staged_commit: {n} allocation(s)");
            assert_eq!(member.epoch_authenticator(), alice.epoch_authenticator());
        }

        // A 1 KiB application message, protected and unprotected.
        let (len, n) = counted(|| alice.protect_application_in_memory(&data, b"", 0, &mut rng, &mut app).unwrap().len());
        assert_eq!(n, 0, "round {round}: protect_application: {n} allocation(s)");
        let mut copy = app[..len].to_vec();
        let (ok, n) = counted(|| match bob.process_message_in_memory(&mut copy, &NoPsks, NOW) {
            Ok(Received::Application { data: d, .. }) => d == &data[..],
            _ => false,
        });
        assert!(ok, "round {round}: the application message decrypts");
        assert_eq!(n, 0, "round {round}: process_message (application): {n} allocation(s)");
    }
    // The counter works: an allocation under `counted` is seen.
    let (_, n) = counted(|| std::hint::black_box(Vec::<u8>::with_capacity(8)));
    assert_eq!(n, 1);
}
