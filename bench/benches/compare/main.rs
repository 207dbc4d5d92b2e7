//! mls-nostd side by side with OpenMLS and mls-rs (issue #8, part 4): the
//! same scenarios, cipher suite 3 (X25519, ChaCha20Poly1305, SHA-256,
//! Ed25519), ratchet tree in the Welcome, in one binary and one run.
//!
//! - a. add N−1 members in one Commit (no path): Commit + Welcome creation,
//!   the creator's merge, one new member's join from the Welcome;
//! - b. a Commit with path (an empty Commit): created by member 0, processed
//!   and merged by the last member, in a full tree (no blank node, no
//!   unmerged leaf) and in the sparse tree left right after the big add;
//! - c. protect and unprotect 1 KiB application messages;
//! - d. join from a Welcome at 10,000 members, then b in its sparse tree;
//! - e. the single-thread cost of each primitive, for the crypto floor;
//! - f. b in a full tree at the sizes of d, made directly (`forge.rs`).
//!
//! `bench/run.sh` runs it and prints one table. Environment: `MLS_BENCH_SIZES`
//! (default `2,16,128,1024`), `MLS_BENCH_LIBS` (default `ours,openmls,mls-rs`),
//! `MLS_BENCH_SCENARIOS` (default `a,b,c,d,e,f`), `MLS_BENCH_BIG` (members of
//! d and f, a list, default 10000; up to 65,536), `MLS_BENCH_BIG_ANCHORS`
//! (`0` leaves the anchors out of d and f).
//! The counts of primitives per scenario go to `$CRITERION_HOME/mls-floor.json`.

mod floor;
mod forge;
mod mlsrs;
mod openmls;
mod ours;
mod peak;

use criterion::{Criterion, SamplingMode};
use std::time::{Duration, Instant};

/// One member of a group in one library, behind the operations measured.
/// Messages cross as their `MLSMessage` encodings (ours: the KeyPackage as is).
pub trait Member {
    /// A fresh KeyPackage; its private keys stay with the member.
    fn key_package(&mut self) -> Vec<u8>;
    /// Creates a one-member group.
    fn create(&mut self);
    /// Commits Adds of `kps` (with a path if `path`), staged: (Commit, Welcome).
    fn commit_add(&mut self, kps: &[Vec<u8>], path: bool) -> (Vec<u8>, Vec<u8>);
    /// An empty Commit with path, staged.
    fn commit_update(&mut self) -> Vec<u8>;
    /// Merges our staged Commit.
    fn merge(&mut self);
    /// Discards our staged Commit.
    fn discard(&mut self);
    /// Joins from a Welcome holding the ratchet tree.
    fn join(&mut self, welcome: &[u8]);
    /// Forgets the group, so that `create` or `join` can run again.
    fn leave(&mut self);
    /// Processes a Commit of another member and merges it. The message is
    /// in a buffer the receiver owns, as one read from the network is: ours
    /// works in it in place, the anchors read it.
    fn process(&mut self, commit: &mut [u8]);
    /// Protects application data (PrivateMessage).
    fn protect(&mut self, data: &[u8]) -> Vec<u8>;
    /// Unprotects an application message (in a buffer the receiver owns,
    /// as for `process`); returns the data's length.
    fn unprotect(&mut self, message: &mut [u8]) -> usize;
    /// The epoch authenticator, to check that members agree.
    fn epoch_authenticator(&self) -> Vec<u8>;
    /// Blank nodes and unmerged leaves of the tree, where the library shows
    /// them (ours), to check the tree shapes of scenario b.
    fn blanks_and_unmerged(&mut self) -> Option<(usize, usize)> {
        None
    }
}

/// A library under test.
pub trait Lib {
    /// Its name in bench IDs and the table.
    const NAME: &'static str;
    /// Its member type.
    type M: Member;
    /// A member with its own identity and keys.
    fn member(i: usize) -> Self::M;
}

/// The group ID of every benchmark group.
pub const GROUP_ID: &[u8] = b"mls-bench";

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name).unwrap_or_else(|_| default.to_string()).split(',').map(|s| s.trim().to_string()).collect()
}

fn slow<'c>(c: &'c mut Criterion, name: &str) -> criterion::BenchmarkGroup<'c, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10).sampling_mode(SamplingMode::Flat);
    g
}

/// Benchmarks `f` as `lib` in group `name` (few samples, flat sampling)
/// and files its operations' peak heap.
fn bench_slow(c: &mut Criterion, name: &str, lib: &str, f: impl FnMut(&mut criterion::Bencher<'_>)) {
    slow(c, name).bench_function(lib, f);
    peak::record(name, lib);
}

/// Times `op` on `state` after an untimed `setup` and before an untimed
/// `teardown`, `iters` times.
fn timed<St: ?Sized, S, T>(
    iters: u64,
    state: &mut St,
    mut setup: impl FnMut(&mut St) -> S,
    mut op: impl FnMut(&mut St, S) -> T,
    mut teardown: impl FnMut(&mut St, T),
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let s = setup(state);
        let start = Instant::now();
        let t = peak::measure(|| op(state, s));
        total += start.elapsed();
        teardown(state, t);
    }
    total
}

/// Members `1..n` and their KeyPackages; the last member keeps its keys
/// (it is the one that joins).
fn members<L: Lib>(n: usize) -> (Vec<L::M>, Vec<Vec<u8>>) {
    let mut ms: Vec<L::M> = (1..n).map(L::member).collect();
    let kps = ms.iter_mut().map(|m| m.key_package()).collect();
    (ms, kps)
}

/// Scenario a for `n` members, then b in the sparse tree it leaves.
fn add_and_sparse<L: Lib>(c: &mut Criterion, n: usize, sparse: bool, sizes: &mut floor::Sizes) {
    let mut creator = L::member(0);
    let (mut ms, kps) = members::<L>(n);
    let mut joiner = ms.pop().expect("n >= 2");
    drop(ms);

    creator.create();
    bench_slow(c, &format!("a_commit_{n}"), L::NAME, |b| {
        b.iter_custom(|iters| timed(iters, &mut creator, |_| (), |m, _| m.commit_add(&kps, false), |m, _| m.discard()))
    });
    bench_slow(c, &format!("a_merge_{n}"), L::NAME, |b| {
        b.iter_custom(|iters| {
            timed(
                iters,
                &mut creator,
                |m| {
                    m.leave();
                    m.create();
                    m.commit_add(&kps, false);
                },
                |m, _| m.merge(),
                |_, _| (),
            )
        })
    });
    // The Welcome the new member joins from, matching the creator's state.
    creator.leave();
    creator.create();
    let (_, welcome) = creator.commit_add(&kps, false);
    creator.merge();
    if L::NAME == "ours" {
        sizes.welcome.insert(n, welcome.len());
        sizes.key_packages.insert(n, kps.iter().map(Vec::len).sum());
    }
    bench_slow(c, &format!("a_join_{n}"), L::NAME, |b| {
        b.iter_custom(|iters| timed(iters, &mut joiner, |m| m.leave(), |m, _| m.join(&welcome), |_, _| ()))
    });
    // Joined (again, untimed: the bench may be filtered out).
    joiner.leave();
    joiner.join(&welcome);
    assert_eq!(joiner.epoch_authenticator(), creator.epoch_authenticator(), "{}: joined", L::NAME);
    if sparse {
        if let Some((blanks, _)) = creator.blanks_and_unmerged() {
            assert_eq!(blanks, n - 1, "{}: every parent node is blank after the add", L::NAME);
        }
        commit_and_process::<L>(c, "sparse", n, &mut creator, &mut joiner, sizes);
    }
}

/// Scenario b in the current tree: `committer` creates an empty Commit with
/// path; `receiver` processes and merges one.
fn commit_and_process<L: Lib>(
    c: &mut Criterion,
    tree: &str,
    n: usize,
    committer: &mut L::M,
    receiver: &mut L::M,
    sizes: &mut floor::Sizes,
) {
    if L::NAME == "ours" {
        let commit = committer.commit_update();
        committer.discard();
        sizes.commits.insert(format!("{tree}_{n}"), commit.len());
    }
    bench_slow(c, &format!("b_{tree}_commit_{n}"), L::NAME, |b| {
        b.iter_custom(|iters| timed(iters, &mut *committer, |_| (), |m, _| m.commit_update(), |m, _| m.discard()))
    });
    bench_slow(c, &format!("b_{tree}_process_{n}"), L::NAME, |b| {
        b.iter_custom(|iters| {
            timed(
                iters,
                &mut (&mut *committer, &mut *receiver),
                |(c, _)| {
                    let commit = c.commit_update();
                    c.merge();
                    commit
                },
                // The buffer is dropped after the clock stops.
                |(_, r), mut commit| {
                    r.process(&mut commit);
                    commit
                },
                |_, _| (),
            )
        })
    });
    assert_eq!(receiver.epoch_authenticator(), committer.epoch_authenticator(), "{}: in sync", L::NAME);
}

/// Scenario b in a full tree of `n` members: built by a chain in which each
/// new member joins and at once commits the next Add with a path, so that
/// every parent node is set and no leaf stays unmerged. Member 0 processes
/// every Commit; the last member commits once with a path.
fn full_tree<L: Lib>(c: &mut Criterion, n: usize, sizes: &mut floor::Sizes) {
    let started = Instant::now();
    let mut first = L::member(0);
    first.create();
    let mut current = L::member(1);
    let kp = current.key_package();
    let (_, welcome) = first.commit_add(&[kp], true);
    first.merge();
    current.join(&welcome);
    for i in 2..n {
        let mut next = L::member(i);
        let kp = next.key_package();
        let (mut commit, welcome) = current.commit_add(&[kp], true);
        current.merge();
        first.process(&mut commit);
        next.join(&welcome);
        current = next;
    }
    let mut commit = current.commit_update();
    current.merge();
    first.process(&mut commit);
    eprintln!("{}: full tree of {n} built in {:.1} s", L::NAME, started.elapsed().as_secs_f64());
    if let Some(shape) = first.blanks_and_unmerged() {
        assert_eq!(shape, (0, 0), "{}: the tree is full", L::NAME);
    }
    commit_and_process::<L>(c, "full", n, &mut first, &mut current, sizes);
}

/// Scenario c: 1 KiB application messages, member 0 to member 1.
fn application<L: Lib>(c: &mut Criterion) {
    let mut a = L::member(0);
    let mut b = L::member(1);
    a.create();
    let kp = b.key_package();
    let (_, welcome) = a.commit_add(&[kp], false);
    a.merge();
    b.join(&welcome);
    let data = vec![0x5a; 1024];
    let mut g = c.benchmark_group("c_protect");
    g.bench_function(L::NAME, |bn| bn.iter_custom(|iters| timed(iters, &mut (&mut a, &mut b), |_| (), |(a, _), _| a.protect(&data), |(_, b), mut m| assert_eq!(b.unprotect(&mut m), 1024))));
    g.finish();
    peak::record("c_protect", L::NAME);
    let mut g = c.benchmark_group("c_unprotect");
    g.bench_function(L::NAME, |bn| bn.iter_custom(|iters| timed(iters, &mut (&mut a, &mut b), |(a, _)| a.protect(&data), |(_, b), mut m| (b.unprotect(&mut m), m), |_, (l, _)| assert_eq!(l, 1024))));
    g.finish();
    peak::record("c_unprotect", L::NAME);
}

/// Scenario d: join from the Welcome of an add of `n − 1` members.
fn big_join<L: Lib>(c: &mut Criterion, n: usize, sizes: &mut floor::Sizes) {
    let started = Instant::now();
    let mut creator = L::member(0);
    let (mut ms, kps) = members::<L>(n);
    let mut joiner = ms.pop().expect("n >= 2");
    drop(ms);
    creator.create();
    let (_, welcome) = creator.commit_add(&kps, false);
    creator.merge();
    eprintln!("{}: Welcome for {n} members built in {:.1} s", L::NAME, started.elapsed().as_secs_f64());
    if L::NAME == "ours" {
        sizes.welcome.insert(n, welcome.len());
    }
    bench_slow(c, &format!("d_join_{n}"), L::NAME, |b| {
        b.iter_custom(|iters| timed(iters, &mut joiner, |m| m.leave(), |m, _| m.join(&welcome), |_, _| ()))
    });
    joiner.leave();
    joiner.join(&welcome);
    assert_eq!(joiner.epoch_authenticator(), creator.epoch_authenticator(), "{}: joined", L::NAME);
    // Scenario b at this size, in the sparse tree.
    commit_and_process::<L>(c, "sparse", n, &mut creator, &mut joiner, sizes);
}

/// Scenario f: b in a full tree of `n` members made directly (`forge.rs`; a
/// chain of `n` joins as in `full_tree` is quadratic): member 0 and a member
/// at the far end of the tree join it from one Welcome; member 0 commits,
/// the other processes.
fn big_full_tree<L: Lib>(c: &mut Criterion, n: usize, sizes: &mut floor::Sizes) {
    let started = Instant::now();
    // The far member's sibling is made up (it signs the GroupInfo).
    let far = if n.is_multiple_of(2) { n - 1 } else { n - 2 };
    let mut first = L::member(0);
    let mut last = L::member(far);
    let kps = [first.key_package(), last.key_package()];
    let real = [(0, &kps[0][..]), (far as u32, &kps[1][..])];
    let forged = forge::full_group(n as u32, GROUP_ID, &real);
    let made = started.elapsed().as_secs_f64();
    first.join(&forged.welcome);
    last.join(&forged.welcome);
    assert_eq!(first.epoch_authenticator(), last.epoch_authenticator(), "{}: both joined the full tree", L::NAME);
    eprintln!("{}: full tree of {n} made in {made:.1} s, joined twice in {:.1} s", L::NAME, started.elapsed().as_secs_f64() - made);
    if let Some(shape) = first.blanks_and_unmerged() {
        assert_eq!(shape, (forged.blanks, 0), "{}: the tree is full", L::NAME);
    }
    commit_and_process::<L>(c, "full", n, &mut first, &mut last, sizes);
}

/// Scenarios d and f at `n` members, as asked.
fn big_scenarios<L: Lib>(c: &mut Criterion, n: usize, d: bool, f: bool, sizes: &mut floor::Sizes) {
    if d {
        big_join::<L>(c, n, sizes);
    }
    if f {
        big_full_tree::<L>(c, n, sizes);
    }
}

fn run() {
    let mut c = Criterion::default().configure_from_args();
    let sizes: Vec<usize> = env_list("MLS_BENCH_SIZES", "2,16,128,1024").iter().filter_map(|s| s.parse().ok()).collect();
    let libs = env_list("MLS_BENCH_LIBS", "ours,openmls,mls-rs");
    let scenarios = env_list("MLS_BENCH_SCENARIOS", "a,b,c,d,e,f");
    let bigs: Vec<usize> = env_list("MLS_BENCH_BIG", "10000").iter().filter_map(|s| s.parse().ok()).collect();
    let big_anchors = std::env::var("MLS_BENCH_BIG_ANCHORS").map(|v| v != "0").unwrap_or(true);
    let on = |s: &str| scenarios.iter().any(|x| x == s);
    let lib = |s: &str| libs.iter().any(|x| x == s);
    let mut sz = floor::Sizes::default();

    macro_rules! each_lib {
        ($f:ident ($($arg:expr),*)) => {{
            if lib("ours") {
                $f::<ours::Ours<1024, { 1024 * 256 }>>($($arg),*);
            }
            if lib("openmls") {
                $f::<openmls::OpenMls>($($arg),*);
            }
            if lib("mls-rs") {
                $f::<mlsrs::MlsRs>($($arg),*);
            }
        }};
    }

    for &n in &sizes {
        if n > 1024 {
            eprintln!("sizes above 1024 run only as scenario d");
            continue;
        }
        if on("a") || on("b") {
            each_lib!(add_and_sparse(&mut c, n, on("b") && n >= 16, &mut sz));
        }
        if on("b") && n >= 16 {
            each_lib!(full_tree(&mut c, n, &mut sz));
        }
    }
    if on("c") {
        each_lib!(application(&mut c));
    }
    for &big in &bigs {
        if lib("ours") {
            // The smallest of our capacities that holds the group.
            if big <= 1024 {
                big_scenarios::<ours::Ours<1024, { 1024 * 256 }>>(&mut c, big, on("d"), on("f"), &mut sz);
            } else if big <= 16384 {
                eprintln!("ours: a 16,384-leaf group slot takes {} bytes", ours::slot_bytes::<16384, { 16384 * 256 }>());
                big_scenarios::<ours::Ours<16384, { 16384 * 256 }>>(&mut c, big, on("d"), on("f"), &mut sz);
            } else {
                eprintln!("ours: a 65,536-leaf group slot takes {} bytes", ours::slot_bytes::<65536, { 65536 * 256 }>());
                big_scenarios::<ours::Ours<65536, { 65536 * 256 }>>(&mut c, big, on("d"), on("f"), &mut sz);
            }
        }
        if big_anchors && lib("openmls") {
            big_scenarios::<openmls::OpenMls>(&mut c, big, on("d"), on("f"), &mut sz);
        }
        if big_anchors && lib("mls-rs") {
            big_scenarios::<mlsrs::MlsRs>(&mut c, big, on("d"), on("f"), &mut sz);
        }
    }
    if on("e") {
        floor::primitives(&mut c);
        floor::write_counts(&sizes, &bigs, &sz);
    }
    peak::write();
    c.final_summary();
}

fn main() {
    // Large groups keep fixed-capacity scratch (per-member lists of up to
    // 16,384 entries) on the stack: run on a thread with room for it.
    let t = std::thread::Builder::new().stack_size(512 << 20).spawn(run).expect("spawn the bench thread");
    if t.join().is_err() {
        std::process::exit(1);
    }
}
