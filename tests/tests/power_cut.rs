//! Power cuts at every write and erase of a device member on NOR flash
//! (issue #6): a fault-injecting `NorFlash` cuts power after the N-th word
//! written or page erased (the word or page being written becomes undefined),
//! then the device "reboots" with fresh RAM: the flash store opens, recovers
//! and loads. After each reboot the member is at exactly the old or the new
//! state of the step it was in, finishes the scenario with the others, and
//! all epoch authenticators agree. Every application message the device
//! emits is read by the others, whose secret trees refuse a reused
//! generation, so a key/nonce reuse fails the run. After a final scrub the
//! raw flash holds none of the secrets deleted on the way.
//!
//! CI samples 4,000 cut points evenly (about every third: CI's time budget),
//! and 1,000 with the device's secret tree a pool of 3 secrets whose store
//! holds the rest (issue #14); `MLS_POWER_CUT_EXHAUSTIVE=1` runs every one.
//! The counts are printed.
use embedded_storage::nor_flash::{ErrorType, MultiwriteNorFlash, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash};
use mls_nostd::codec::Decode;
use mls_nostd::crypto::CipherSuite;
use mls_nostd::crypto::signature::SignaturePrivateKey;
use mls_nostd::executor::Sequential;
use mls_nostd::group::{CommitBuffers, CommitOptions, GroupConfig, JoinParams, Received, WireFormatPolicy};
use mls_nostd::key_package::KeyPackage;
use mls_nostd::messages::proposal::{Add, Proposal};
use mls_nostd::psk::NoPsks;
use mls_nostd::store::durable::{load_key_package, store_key_package, RecordBuffer};
use mls_nostd::store::flash::{FlashSplit, FlashStorage, SplitRegions};
use mls_nostd::store::{recover, Parts, Storage, StoreError, MAX_RECORD_LEN};
use mls_tests::member::{buffers, Member, MemberOf, NOW};

const PAGE: usize = 4096;
const REGION_PAGES: usize = 12;
const FLASH_LEN: usize = 2 * REGION_PAGES * PAGE;
const SLOT: u8 = 0;
const SUITE: CipherSuite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;

#[derive(Debug)]
struct PowerLost;

impl NorFlashError for PowerLost {
    fn kind(&self) -> NorFlashErrorKind {
        NorFlashErrorKind::Other
    }
}

/// NOR flash in RAM: writes can only clear bits; power can be cut after a
/// given number of word writes and page erases.
struct FaultFlash {
    mem: Vec<u8>,
    /// Operations (word writes, page erases) left before the cut.
    budget: Option<u64>,
    dead: bool,
    /// Power was cut in this run (stays set across the reboot).
    died: bool,
    ops: u64,
    bytes_written: u64,
    noise: u64,
    /// Writes report success and change nothing (a store that never lands:
    /// `sequential-storage` issue #136's failure, which the read-back guards).
    lose: bool,
}

impl FaultFlash {
    fn new() -> Self {
        Self::with_len(FLASH_LEN)
    }

    fn with_len(len: usize) -> Self {
        Self { mem: vec![0xFF; len], budget: None, dead: false, died: false, ops: 0, bytes_written: 0, noise: 0x9E37_79B9_7F4A_7C15, lose: false }
    }

    fn noise(&mut self) -> u8 {
        self.noise ^= self.noise << 13;
        self.noise ^= self.noise >> 7;
        self.noise ^= self.noise << 17;
        self.noise as u8
    }

    /// Counts one operation; false if power is cut before it completes.
    fn step(&mut self) -> bool {
        self.ops += 1;
        match &mut self.budget {
            Some(0) => {
                self.dead = true;
                self.died = true;
                false
            }
            Some(n) => {
                *n -= 1;
                true
            }
            None => true,
        }
    }

    /// Power back on (RAM of the device is gone; flash stays).
    fn reboot(&mut self) {
        self.dead = false;
        self.budget = None;
    }
}

impl ErrorType for FaultFlash {
    type Error = PowerLost;
}

impl ReadNorFlash for FaultFlash {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), PowerLost> {
        if self.dead {
            return Err(PowerLost);
        }
        let o = offset as usize;
        bytes.copy_from_slice(&self.mem[o..o + bytes.len()]);
        Ok(())
    }
    fn capacity(&self) -> usize {
        self.mem.len()
    }
}

impl NorFlash for FaultFlash {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = PAGE;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), PowerLost> {
        if self.dead {
            return Err(PowerLost);
        }
        for page in (from as usize..to as usize).step_by(PAGE) {
            if !self.step() {
                // An interrupted erase leaves the page undefined.
                for i in page..page + PAGE {
                    self.mem[i] = self.noise();
                }
                return Err(PowerLost);
            }
            self.mem[page..page + PAGE].fill(0xFF);
        }
        Ok(())
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), PowerLost> {
        if self.dead {
            return Err(PowerLost);
        }
        assert_eq!(offset as usize % 4, 0);
        assert_eq!(bytes.len() % 4, 0);
        if self.lose {
            return Ok(());
        }
        for (k, word) in bytes.chunks(4).enumerate() {
            let at = offset as usize + 4 * k;
            if !self.step() {
                // The word being written becomes undefined.
                for i in at..at + 4 {
                    let n = self.noise();
                    self.mem[i] &= n | word[i - at];
                }
                return Err(PowerLost);
            }
            for (i, b) in word.iter().enumerate() {
                self.mem[at + i] &= *b;
            }
            self.bytes_written += 4;
        }
        Ok(())
    }
}

impl MultiwriteNorFlash for FaultFlash {}

/// The device's flash store over a [`FaultFlash`].
trait Backend: Storage + Sized + Send {
    fn open(flash: FaultFlash) -> Self;
    fn flash(&self) -> &FaultFlash;
    fn flash_mut(&mut self) -> &mut FaultFlash;
    fn into_flash(self) -> FaultFlash;
    fn scrub(&mut self) -> Result<(), mls_nostd::store::StorageError>;
}

/// One map in two regions of `REGION_PAGES`, scrubbed every 8 saves.
impl Backend for FlashStorage<FaultFlash> {
    fn open(flash: FaultFlash) -> Self {
        let half = (REGION_PAGES * PAGE) as u32;
        match FlashStorage::open(flash, 0..half, half..2 * half, 8) {
            Ok(s) => s,
            Err(e) => panic!("open: {e:?}"),
        }
    }
    fn flash(&self) -> &FaultFlash {
        FlashStorage::flash(self)
    }
    fn flash_mut(&mut self) -> &mut FaultFlash {
        FlashStorage::flash_mut(self)
    }
    fn into_flash(self) -> FaultFlash {
        FlashStorage::into_flash(self)
    }
    fn scrub(&mut self) -> Result<(), mls_nostd::store::StorageError> {
        FlashStorage::scrub(self)
    }
}

/// A [`FlashSplit`]'s regions on the test flash, in this order: two of
/// `rest` pages, two of `ratchets`, two of `tree`.
fn split_regions(rest: usize, ratchets: usize, tree: usize) -> SplitRegions {
    let mut at = 0u32;
    let mut two = |pages: usize| {
        let len = (pages * PAGE) as u32;
        let r = [at..at + len, at + len..at + 2 * len];
        at += 2 * len;
        r
    };
    SplitRegions { rest: two(rest), ratchets: two(ratchets), tree: two(tree) }
}

/// The same flash as three maps (the ratchet tree's records in their own,
/// the secret trees' in theirs): the rest and the ratchets in two regions
/// of 5 pages each, scrubbed every 8 saves; the tree in two of 2 pages,
/// which its stale versions fill within the scenario, so that its map is
/// compacted (scrubbed when full) under the cuts too.
const TREE_PAGES: usize = 2;
const RATCHET_PAGES: usize = 5;

impl Backend for FlashSplit<FaultFlash> {
    fn open(flash: FaultFlash) -> Self {
        match FlashSplit::open(flash, split_regions(REGION_PAGES - TREE_PAGES - RATCHET_PAGES, RATCHET_PAGES, TREE_PAGES), 8) {
            Ok(s) => s,
            Err(e) => panic!("open: {e:?}"),
        }
    }
    fn flash(&self) -> &FaultFlash {
        FlashSplit::flash(self)
    }
    fn flash_mut(&mut self) -> &mut FaultFlash {
        FlashSplit::flash_mut(self)
    }
    fn into_flash(self) -> FaultFlash {
        FlashSplit::into_flash(self)
    }
    fn scrub(&mut self) -> Result<(), mls_nostd::store::StorageError> {
        FlashSplit::scrub(self)
    }
}

/// The device: a member whose state lives on the fault-injecting flash,
/// its secret tree holding `E` secrets at once (16: one per leaf; fewer: a
/// pool whose store holds the rest, issue #14).
struct Device<const E: usize, B: Backend> {
    member: MemberOf<16, { 16 * 512 }, 64, 8192, E>,
    store: Option<B>,
    buf: Box<RecordBuffer>,
    /// Secrets the device deleted (must be gone from flash after a scrub).
    deleted: Vec<Vec<u8>>,
    reboots: u32,
}

type Op<T> = Result<T, String>;

impl<const E: usize, B: Backend> Device<E, B> {
    fn store(&mut self) -> &mut B {
        self.store.as_mut().unwrap()
    }

    fn cut(&self) -> bool {
        self.store.as_ref().unwrap().flash().dead
    }

    /// Power comes back: fresh RAM, the store opens, recovers and loads.
    fn reboot(&mut self) {
        let mut flash = self.store.take().unwrap().into_flash();
        flash.reboot();
        let mut store = B::open(flash);
        recover(&mut store, SLOT, &mut self.buf[..]).unwrap();
        let mut group = Box::new(mls_nostd::group::Group::EMPTY);
        match group.load(&mut store, SLOT, &mls_nostd::identity::SAME_CREDENTIAL, &mut self.buf) {
            Ok(()) | Err(StoreError::NotFound) => {}
            Err(e) => panic!("load after a cut: {e:?}"),
        }
        self.member.group = group;
        self.store = Some(store);
        self.reboots += 1;
    }

    /// Runs `op`; on a power cut, reboots and returns None.
    fn run<T>(&mut self, op: impl FnOnce(&mut Self) -> Op<T>) -> Option<T> {
        match op(self) {
            Ok(v) => Some(v),
            Err(e) => {
                assert!(self.cut(), "an operation failed without a power cut: {e}");
                self.reboot();
                None
            }
        }
    }

    fn written(&self) -> u64 {
        self.store.as_ref().unwrap().flash().bytes_written
    }

    fn note_epoch_secrets(&mut self) {
        let s = &self.member.group.state_for_testing().secrets;
        for secret in [&s.init_secret, &s.exporter_secret, &s.membership_key, &s.confirmation_key] {
            self.deleted.push(secret.as_bytes().to_vec());
        }
    }
}

fn authenticators_agree<const E: usize, B: Backend>(a: &Member, b: &Member, device: &Device<E, B>) {
    assert_eq!(device.member.group.epoch(), a.group.epoch());
    assert_eq!(device.member.group.epoch_authenticator(), a.group.epoch_authenticator());
    assert_eq!(b.group.epoch_authenticator(), a.group.epoch_authenticator());
}

struct Outcome {
    ops: u64,
    bytes_written: u64,
    reboots: u32,
}

/// The whole scenario with power cut after `cut` flash operations (None:
/// never), the device's secret tree holding `E` secrets.
fn scenario<const E: usize, B: Backend>(cut: Option<u64>, check_flash: bool) -> Outcome {
    let mut alice = Member::new("alice", 101);
    let mut bob = Member::new("bob", 102);
    // Formatting at first start holds no state; cuts count from there.
    let mut store = B::open(FaultFlash::new());
    store.flash_mut().budget = cut;
    store.flash_mut().ops = 0;
    let mut dev = Device::<E, B> { member: MemberOf::new("device", 103), store: Some(store), buf: Box::new([0u8; MAX_RECORD_LEN]), deleted: Vec::new(), reboots: 0 };

    // 1. The device's KeyPackage: its private keys go to flash.
    let (kp, keys) = dev.member.key_package(SUITE);
    let reference = KeyPackage::decode_exact(&kp).unwrap().reference(SUITE).unwrap();
    dev.deleted.push(keys.init_key.as_bytes().to_vec());
    loop {
        let signer = dev.member.signer.clone();
        let done = dev.run(|d| {
            let buf = &mut d.buf;
            store_key_package(d.store.as_mut().unwrap(), SUITE, &reference, &keys, &signer, buf).map_err(|e| format!("{e:?}"))
        });
        if done.is_some() || load_key_package::<_, SignaturePrivateKey>(dev.store(), &reference, &mut Box::new([0u8; MAX_RECORD_LEN])).unwrap().is_some() {
            break;
        }
    }

    // 2. Alice creates the group, adds Bob and the device; both join.
    alice.create(SUITE, b"power-cut", Default::default());
    let (bob_kp, bob_keys) = bob.key_package(SUITE);
    let adds = [
        Proposal::Add(Add { key_package: KeyPackage::decode_exact(&bob_kp).unwrap() }),
        Proposal::Add(Add { key_package: KeyPackage::decode_exact(&kp).unwrap() }),
    ];
    let (_, welcome) = alice.commit(&adds, true, WireFormatPolicy::Public);
    let welcome = welcome.unwrap();
    bob.join(&welcome, &bob_kp, &bob_keys);
    loop {
        if dev.member.group.epoch() == alice.group.epoch() && !dev.member.group.is_inactive() {
            break; // the join was stored before the cut
        }
        let params = JoinParams {
            executor: &mls_nostd::executor::Sequential,
            key_package: &kp,
            keys: &keys,
            signer: &dev.member.signer.clone(),
            ratchet_tree: None,
            psks: &NoPsks,
            config: GroupConfig::default(),
        };
        let mut gi = vec![0u8; welcome.len()];
        let r = dev.run(|d| {
            let Device { member, store, buf, .. } = d;
            member.group.stored(store.as_mut().unwrap(), SLOT, buf).join_with(&welcome, &params, &mut gi).map_err(|e| format!("{e:?}"))
        });
        if r.is_some() {
            break;
        }
    }
    authenticators_agree(&alice, &bob, &dev);

    // Flash bytes written per kind of operation (uncut run; scrubs included).
    let mut per_op = [("application message received", 0u64, 0u32), ("application message sent", 0, 0), ("commit received", 0, 0), ("commit sent", 0, 0)];
    let mut tally = |kind: usize, before: u64, after: u64| {
        per_op[kind].1 += after - before;
        per_op[kind].2 += 1;
    };
    for round in 0..4u8 {
        // Application messages both ways: from Bob, then Alice (leaves 1
        // and 0: a secret a cut left above both must not derive the other's
        // again), and from the device.
        for i in 0..2u8 {
            let m = if i == 0 { bob.send(&[round, i, 1]) } else { alice.send(&[round, i, 1]) };
            let reboots = dev.reboots;
            let w0 = dev.written();
            loop {
                let mut msg = m.clone();
                let r = dev.run(|d| {
                    let Device { member, store, buf, .. } = d;
                    match member.group.stored(store.as_mut().unwrap(), SLOT, buf).process_message_with_psks(&mut msg, &NoPsks, NOW) {
                        Ok(Received::Application { data, .. }) => Ok(Some(data.to_vec())),
                        // Already consumed before the cut: a replay is refused.
                        Err(mls_nostd::store::durable::DurableError::Op(_)) => Ok(None),
                        other => Err(format!("{other:?}")),
                    }
                });
                match r {
                    Some(Some(data)) => {
                        assert_eq!(data, [round, i, 1]);
                        tally(0, w0, dev.written());
                        break;
                    }
                    Some(None) => {
                        assert!(dev.reboots > reboots, "message refused without a reboot");
                        break;
                    }
                    None => continue,
                }
            }
            let w0 = dev.written();
            loop {
                let data = [round, i, 2];
                let r = dev.run(|d| {
                    let Device { member, store, buf, .. } = d;
                    let mut out = vec![0u8; 512];
                    let n = member
                        .group
                        .stored(store.as_mut().unwrap(), SLOT, buf).protect_application(&data, b"ad", 8, &mut member.rng, &mut out)
                        .map_err(|e| format!("{e:?}"))?
                        .len();
                    out.truncate(n);
                    Ok(out)
                });
                if let Some(ct) = r {
                    // Emitted: both read it (a reused generation would be refused).
                    assert_eq!(alice.receive_app(&ct).1, data);
                    assert_eq!(bob.receive_app(&ct).1, data);
                    tally(1, w0, dev.written());
                    break;
                }
            }
        }

        // A commit with path from Bob, received by the device.
        let before = alice.group.epoch();
        let (commit, _) = bob.commit(&[], true, if round % 2 == 0 { WireFormatPolicy::Private } else { WireFormatPolicy::Public });
        alice.receive_commit(&commit);
        dev.note_epoch_secrets();
        let w0 = dev.written();
        loop {
            let e = dev.member.group.epoch();
            if e == before + 1 {
                break;
            }
            assert_eq!(e, before, "device neither at the old nor the new epoch");
            let _ = w0;
            let mut msg = commit.clone();
            let r = dev.run(|d| {
                let Device { member, store, buf, .. } = d;
                let s = store.as_mut().unwrap();
                member.group.stored(s, SLOT, buf).process_message_with_psks(&mut msg, &NoPsks, NOW).map_err(|e| format!("{e:?}"))?;
                member.group.stored(s, SLOT, buf).merge_staged_commit().map_err(|e| format!("{e:?}"))
            });
            if r.is_some() {
                break;
            }
        }
        authenticators_agree(&alice, &bob, &dev);
        tally(2, w0, dev.written());

        // The device commits with path; the others take it only once it is emitted.
        let before = alice.group.epoch();
        dev.note_epoch_secrets();
        let w0 = dev.written();
        let commit = loop {
            if dev.member.group.has_staged_commit() {
                // Staged but never emitted (cut inside the save): drop it.
                dev.member.group.discard_staged_commit();
                if dev.run(|d| {
                    let Device { member, store, buf, .. } = d;
                    member.group.save(store.as_mut().unwrap(), SLOT, Parts::ALL, buf).map_err(|e| format!("{e:?}"))
                })
                .is_none()
                {
                    continue;
                }
            }
            let template = dev.member.template();
            let r = dev.run(|d| {
                let Device { member, store, buf, .. } = d;
                let (mut mb, mut wb, mut gb) = buffers();
                let opts = CommitOptions {
                    proposals: &[],
                    include_pending: true,
                    force_path: true,
                    ratchet_tree_in_welcome: true,
                    wire_format: WireFormatPolicy::Private,
                    padding: 0,
                    authenticated_data: b"",
                    leaf: Some(template),
                };
                let bufs = CommitBuffers { message: &mut mb, welcome: &mut wb, group_info: &mut gb };
                let out = member
                    .group
                    .stored(store.as_mut().unwrap(), SLOT, buf).commit(&opts, &NoPsks, NOW, &mut member.rng, &Sequential, bufs)
                    .map_err(|e| format!("{e:?}"))?;
                Ok(out.commit.to_vec())
            });
            if let Some(c) = r {
                break c;
            }
        };
        alice.receive_commit(&commit);
        bob.receive_commit(&commit);
        loop {
            let e = dev.member.group.epoch();
            if e == before + 1 {
                break;
            }
            assert_eq!(e, before);
            assert!(dev.member.group.has_staged_commit(), "the emitted commit was lost by a cut");
            if dev
                .run(|d| {
                    let Device { member, store, buf, .. } = d;
                    member.group.stored(store.as_mut().unwrap(), SLOT, buf).merge_staged_commit().map_err(|e| format!("{e:?}"))
                })
                .is_some()
            {
                break;
            }
        }
        authenticators_agree(&alice, &bob, &dev);
        tally(3, w0, dev.written());
    }
    if cut.is_none() {
        for (kind, bytes, n) in per_op {
            println!("flash bytes written per {kind}: {} (mean of {n}, 3-member group, scrub every 8 commit points included)", bytes / u64::from(n.max(1)));
        }
    }

    // The device reboots once more and still agrees (not a cut point: the
    // reboot clears the fault budget).
    let ops = dev.store.as_ref().unwrap().flash().ops;
    let died = dev.store.as_ref().unwrap().flash().died;
    assert_eq!(died, cut.is_some_and(|c| c < ops), "cut {cut:?} of {ops} operations");
    dev.reboot();
    authenticators_agree(&alice, &bob, &dev);

    if check_flash {
        dev.store().scrub().unwrap();
        let image = &dev.store.as_ref().unwrap().flash().mem;
        for secret in &dev.deleted {
            assert!(!image.windows(secret.len()).any(|w| w == secret.as_slice()), "a deleted secret is still in flash");
        }
    }
    let f = dev.store.as_ref().unwrap().flash();
    Outcome { ops, bytes_written: f.bytes_written, reboots: dev.reboots }
}

/// Cut points CI runs, spread evenly over the run's operations.
const CI_SAMPLES: u64 = 4_000;

/// Cuts power at `samples` points spread evenly over the scenario's flash
/// operations (every point with `MLS_POWER_CUT_EXHAUSTIVE`, `n` with
/// `MLS_POWER_CUT_SAMPLES=n`), the device's secret tree holding `E` secrets.
fn cut_everywhere<const E: usize, B: Backend>(label: &str, samples: u64) {
    let full = scenario::<E, B>(None, true);
    let points = full.ops;
    let exhaustive = std::env::var_os("MLS_POWER_CUT_EXHAUSTIVE").is_some();
    // MLS_POWER_CUT_SAMPLES=n overrides the sample count (for quick local runs).
    let chosen = std::env::var("MLS_POWER_CUT_SAMPLES").ok().and_then(|v| v.parse().ok());
    let target = if exhaustive { points } else { chosen.unwrap_or(samples).min(points) };

    // Cut points split over two threads (CI has 2 cores).
    // Evenly spread over every operation of the run.
    let cuts: Vec<u64> = (0..target).map(|i| i * points / target).collect();
    let (ran, reboots) = std::thread::scope(|scope| {
        let workers: Vec<_> = cuts
            .chunks(cuts.len().div_ceil(2).max(1))
            .map(|chunk| {
                scope.spawn(move || {
                    let mut reboots = 0u64;
                    for (i, cut) in chunk.iter().enumerate() {
                        reboots += u64::from(scenario::<E, B>(Some(*cut), i % 500 == 0).reboots);
                    }
                    (chunk.len() as u64, reboots)
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    });
    println!(
        "{label}: power cut at {ran} of {points} flash operations (word writes and page erases; exhaustive: {exhaustive}); \
         {reboots} reboots; uncut run wrote {} bytes",
        full.bytes_written
    );
    assert_eq!(ran, target);
    assert!(chosen.is_some() || ran >= samples || ran == points, "too few cut points: {ran}");
}

#[test]
fn power_cut_at_every_write_and_erase() {
    cut_everywhere::<16, FlashStorage<FaultFlash>>("secret tree of one slot per leaf", CI_SAMPLES);
}

/// Cut points CI runs with a pool of secrets (the same scenario).
const CI_POOL_SAMPLES: u64 = 1_000;

/// The device's secret tree a pool of 3 secrets in a tree of 4 leaves (the
/// least that works: a path from the root and the leaf): every epoch's
/// messages evict secrets its store holds and read them back, and a load
/// after a cut reads only the index and settles in the store what a cut
/// left of a split. A replayed or reused key fails the run as above.
#[test]
fn power_cut_with_a_pool_of_secrets() {
    cut_everywhere::<3, FlashStorage<FaultFlash>>("secret tree of a pool of 3", CI_POOL_SAMPLES);
}

/// Cut points CI runs with the ratchet tree's records and the secret
/// trees' each in a map of their own (the same scenario).
const CI_SPLIT_SAMPLES: u64 = 1_000;

/// The device's store a [`FlashSplit`] (the boards' store): the tree's
/// records in one map, the secret trees' in another, the rest in a third,
/// on the same flash. A save writes the tree's nodes and the new epoch's
/// secret-tree records into their maps before the head in the rest, so a
/// cut between them leaves the old state whole, as in one map.
#[test]
fn power_cut_with_the_tree_in_a_map_of_its_own() {
    cut_everywhere::<16, FlashSplit<FaultFlash>>("the tree's records in a map of their own", CI_SPLIT_SAMPLES);
}

type M64 = MemberOf<64, { 64 * 512 }, 64, 8192>;

/// Flash bytes a device writes per operation in a full 64-member group
/// (issue #6's measurement, printed), with issue #14's bounds asserted: a
/// Commit received writes at most 4 KiB, and once every member has spoken
/// an application message received writes at most 512 bytes.
#[test]
fn flash_bytes_per_operation_64_members() {
    let region = (48 * PAGE) as u32;
    // No automatic scrub here: each operation's own bytes; one scrub is
    // measured apart at the end.
    let mut store = FlashStorage::<FaultFlash>::open(FaultFlash::with_len(2 * 48 * PAGE), 0..region, region..2 * region, u32::MAX).unwrap();
    let mut buf = Box::new([0u8; MAX_RECORD_LEN]);
    let mut gateway = M64::new("gateway", 200);
    let mut device = M64::new("device", 201);
    gateway.create(SUITE, b"fleet-64", Default::default());
    let (kp, keys) = device.key_package(SUITE);
    let reference = KeyPackage::decode_exact(&kp).unwrap().reference(SUITE).unwrap();
    store_key_package(&mut store, SUITE, &reference, &keys, &device.signer, &mut buf).unwrap();
    let mut kps = vec![kp.clone()];
    let mut nodes = Vec::new();
    for i in 0..62u64 {
        let name: &'static str = Box::leak(format!("node-{i}").into_boxed_str());
        let mut node = M64::new(name, 300 + i);
        let (node_kp, node_keys) = node.key_package(SUITE);
        kps.push(node_kp.clone());
        nodes.push((node, node_kp, node_keys));
    }
    let adds: Vec<Proposal<'_>> = kps.iter().map(|k| Proposal::Add(Add { key_package: KeyPackage::decode_exact(k).unwrap() })).collect();
    let (_, welcome) = gateway.commit(&adds, true, WireFormatPolicy::Public);
    let welcome = welcome.unwrap();
    let params = JoinParams {
        executor: &mls_nostd::executor::Sequential,
        key_package: &kp,
        keys: &keys,
        signer: &device.signer.clone(),
        ratchet_tree: None,
        psks: &NoPsks,
        config: GroupConfig::default(),
    };
    let mut gi = vec![0u8; welcome.len()];
    let w0 = store.flash().bytes_written;
    device.group.stored(&mut store, SLOT, &mut buf).join_with(&welcome, &params, &mut gi).unwrap();
    let join = store.flash().bytes_written - w0;
    assert_eq!(device.group.epoch_authenticator(), gateway.group.epoch_authenticator());

    // Every other member speaks twice; the device reads every message. A
    // sender's first message splits the secret tree's nodes above its leaf
    // (its records are written); once every member has spoken a message
    // rewrites its sender's ratchet only (issue #14: O(1), at most 512 bytes).
    for (node, node_kp, node_keys) in &mut nodes {
        node.join(&welcome, node_kp, node_keys);
    }
    let mut senders: Vec<&mut M64> = nodes.iter_mut().map(|(n, _, _)| n).collect();
    senders.push(&mut gateway);
    let mut per_message = Vec::new();
    for pass in 0..2u8 {
        for sender in senders.iter_mut() {
            let mut m = sender.send(&[pass; 32]);
            let w0 = store.flash().bytes_written;
            match device.group.stored(&mut store, SLOT, &mut buf).process_message_with_psks(&mut m, &NoPsks, NOW).unwrap() {
                Received::Application { data, .. } => assert_eq!(data, [pass; 32]),
                other => panic!("{other:?}"),
            }
            if pass == 1 {
                per_message.push(store.flash().bytes_written - w0);
            }
        }
    }
    drop(senders);
    assert_eq!(per_message.len(), 63, "every other member spoke");
    let spoken_max = per_message.iter().copied().max().unwrap();
    let spoken_mean = per_message.iter().sum::<u64>() / per_message.len() as u64;

    let mut sums = [0u64; 4];
    let rounds = 4;
    for r in 0..rounds {
        let w0 = store.flash().bytes_written;
        let mut m = gateway.send(&[r; 32]);
        match device.group.stored(&mut store, SLOT, &mut buf).process_message_with_psks(&mut m, &NoPsks, NOW).unwrap() {
            Received::Application { data, .. } => assert_eq!(data, [r; 32]),
            other => panic!("{other:?}"),
        }
        let w1 = store.flash().bytes_written;
        let mut out = vec![0u8; 512];
        let n = device.group.stored(&mut store, SLOT, &mut buf).protect_application(&[r; 32], b"ad", 8, &mut device.rng, &mut out).unwrap().len();
        assert_eq!(gateway.receive_app(&out[..n]).1, [r; 32]);
        let w2 = store.flash().bytes_written;
        let (mut commit, _) = gateway.commit(&[], true, WireFormatPolicy::Public);
        device.group.stored(&mut store, SLOT, &mut buf).process_message_with_psks(&mut commit, &NoPsks, NOW).unwrap();
        device.group.stored(&mut store, SLOT, &mut buf).merge_staged_commit().unwrap();
        let w3 = store.flash().bytes_written;
        let (mut mb, mut wb, mut gb) = buffers();
        let opts = CommitOptions {
            proposals: &[],
            include_pending: true,
            force_path: true,
            ratchet_tree_in_welcome: true,
            wire_format: WireFormatPolicy::Public,
            padding: 0,
            authenticated_data: b"",
            leaf: Some(device.template()),
        };
        let bufs = CommitBuffers { message: &mut mb, welcome: &mut wb, group_info: &mut gb };
        let commit = device
            .group
            .stored(&mut store, SLOT, &mut buf).commit(&opts, &NoPsks, NOW, &mut device.rng, &Sequential, bufs)
            .unwrap()
            .commit
            .to_vec();
        device.group.stored(&mut store, SLOT, &mut buf).merge_staged_commit().unwrap();
        gateway.receive_commit(&commit);
        let w4 = store.flash().bytes_written;
        for (s, d) in sums.iter_mut().zip([w1 - w0, w2 - w1, w3 - w2, w4 - w3]) {
            *s += d;
        }
        assert_eq!(device.group.epoch_authenticator(), gateway.group.epoch_authenticator());
    }
    let w0 = store.flash().bytes_written;
    store.scrub().unwrap();
    let scrub = store.flash().bytes_written - w0;
    println!("64-member group (full tree), flash bytes written per operation, mean of {rounds}, scrubs apart:");
    println!("  join from Welcome: {join}");
    for (kind, total) in ["application message received", "application message sent", "commit received (process + merge)", "commit sent (create + merge)"].iter().zip(sums) {
        println!("  {kind}: {}", total / u64::from(rounds));
    }
    println!("  one scrub (copies the live records; FlashStorage runs one every scrub_every commit points): {scrub}");
    println!("  application message received after all 63 others had spoken: mean {spoken_mean}, largest {spoken_max} (63 messages)");
    assert!(spoken_max <= 512, "once every member had spoken a message received wrote {spoken_max} bytes, more than 512");
    // Issue #14: a Commit received rewrites only the tree nodes it changed
    // (14,033 bytes when the whole tree was rewritten).
    let commit_received = sums[2] / u64::from(rounds);
    assert!(commit_received <= 4096, "a Commit received wrote {commit_received} bytes, more than 4 KiB");
}

/// Record `key`'s value in its `version`: distinct bytes for each.
fn value(key: u32, version: u8) -> Vec<u8> {
    format!("record {key:08x} version {version}").into_bytes()
}

/// A store of keys 0 to 39 (written out of key order) whose keys divisible
/// by 3 were replaced (version 1) and by 5 removed: 32 live records.
fn forty_records<const KEYS: usize>() -> FlashStorage<FaultFlash, KEYS> {
    use mls_nostd::store::Storage;
    let half = (REGION_PAGES * PAGE) as u32;
    let mut store = FlashStorage::<FaultFlash, KEYS>::open(FaultFlash::new(), 0..half, half..2 * half, u32::MAX).unwrap();
    let keys: Vec<u32> = (0..40).map(|i| (i * 17) % 40).collect();
    for &k in &keys {
        store.write(k, &value(k, 0)).unwrap();
    }
    for &k in keys.iter().filter(|k| *k % 3 == 0) {
        store.write(k, &value(k, 1)).unwrap();
    }
    for &k in keys.iter().filter(|k| *k % 5 == 0) {
        store.remove(k).unwrap();
    }
    store
}

/// A scrub moves any number of records: 40 written, 14 replaced and 8
/// removed, through passes of 4 keys; each live record keeps its newest
/// value, the removed ones stay removed, and neither a replaced value nor a
/// removed one is left in flash. (It refused with `Full` any store of more
/// live records than `KEYS`: a 256-leaf group on the boards.)
#[test]
fn a_scrub_moves_more_records_than_a_pass_holds() {
    use mls_nostd::store::Storage;
    let mut store = forty_records::<4>();
    store.scrub().unwrap();
    let image = store.flash().mem.clone();
    let in_flash = |v: &[u8]| image.windows(v.len()).any(|w| w == v);
    let mut buf = [0u8; MAX_RECORD_LEN];
    let (mut live, mut removed) = (0, 0);
    for k in 0..40u32 {
        let got = store.read(k, &mut buf).unwrap().map(<[u8]>::to_vec);
        let newest = u8::from(k % 3 == 0);
        if k % 5 == 0 {
            assert_eq!(got, None, "record {k} was removed");
            assert!(!in_flash(&value(k, 0)) && !in_flash(&value(k, 1)), "removed record {k} is still in flash");
            removed += 1;
        } else {
            assert_eq!(got, Some(value(k, newest)), "record {k}");
            assert!(!in_flash(&value(k, 1 - newest)), "record {k}'s other version is still in flash");
            live += 1;
        }
    }
    assert_eq!((live, removed), (32, 8));
}

/// `read_each` of the flash store (passes over its records, not a lookup
/// per key) gives each wanted key's newest value once, and no removed or
/// unwanted record: the even keys of `forty_records`, through passes of 4.
#[test]
fn a_flash_store_reads_each_wanted_record_once_in_passes() {
    use mls_nostd::store::Storage;
    let mut store = forty_records::<4>();
    let mut got = std::collections::BTreeMap::new();
    let mut calls = 0;
    let mut keys = (0..40u32).filter(|k| k % 2 == 0);
    let mut buf = [0u8; MAX_RECORD_LEN];
    store
        .read_each(&mut keys, &|k| k % 2 == 0 && k < 40, &mut buf, &mut |k, v| {
            calls += 1;
            got.insert(k, v.to_vec());
            Ok(())
        })
        .unwrap();
    let expected: std::collections::BTreeMap<u32, Vec<u8>> =
        (0..40u32).filter(|k| k % 2 == 0 && k % 5 != 0).map(|k| (k, value(k, u8::from(k % 3 == 0)))).collect();
    assert_eq!(expected.len(), 16);
    assert_eq!(got, expected);
    assert_eq!(calls, 16, "a record given twice");
}

/// A store that reports success but never lands is caught by the
/// read-back: at once by a map that reads each store back
/// (`FlashStorage`, the split's tree and rest, the ratchets' records that
/// list others), and by the split's ratchets, which read a secret tree's
/// records back in batches, before the next operation of another kind on
/// the ratchets or the rest (a read, a removal, another store, the commit
/// point, a scrub) or once 16 stores wait. The head is then not written,
/// so no commit point follows a lost record.
#[test]
fn a_store_that_does_not_land_is_caught_before_the_next_commit_point() {
    use mls_nostd::store::{Storage, StorageError, head_key};
    // Records of the ratchets (a secret tree's node, which they read back
    // in batches), of the rest (a group's blob, read back at once) and of
    // the tree.
    fn ratchet(n: u8) -> u32 {
        u32::from_be_bytes([5, 0, 0, n])
    }
    fn blob(n: u8) -> u32 {
        u32::from_be_bytes([2, 0, 0, n])
    }
    fn tree(n: u8) -> u32 {
        u32::from_be_bytes([9, 0, 0, n])
    }
    let mut buf = [0u8; MAX_RECORD_LEN];

    // One map: the lost store fails itself.
    let mut one = <FlashStorage<FaultFlash> as Backend>::open(FaultFlash::new());
    one.write(ratchet(1), b"old").unwrap();
    one.flash_mut().lose = true;
    assert_eq!(one.write(ratchet(1), b"new"), Err(StorageError::ReadBack));
    one.flash_mut().lose = false;
    assert_eq!(one.read(ratchet(1), &mut buf).unwrap(), Some(&b"old"[..]));

    let split = || {
        let mut s = <FlashSplit<FaultFlash> as Backend>::open(FaultFlash::new());
        for n in 1..=3 {
            s.write(ratchet(n), b"old").unwrap();
        }
        s.write(head_key(0), b"head 1").unwrap();
        s.committed().unwrap();
        s
    };
    // The split's tree and rest: at once.
    for key in [tree(1), blob(1)] {
        let mut s = split();
        s.write(key, b"node").unwrap();
        s.flash_mut().lose = true;
        assert_eq!(s.write(key, b"new node"), Err(StorageError::ReadBack), "{key:08x}");
        s.flash_mut().lose = false;
    }

    // The split's ratchets: a lost store between two that land is found
    // when the head is written, and the head stays as it was.
    let mut s = split();
    s.write(ratchet(1), b"new").unwrap();
    s.flash_mut().lose = true;
    assert_eq!(s.write(ratchet(2), b"new"), Ok(()), "the ratchets read back in batches");
    s.flash_mut().lose = false;
    s.write(ratchet(3), b"new").unwrap();
    assert_eq!(s.write(head_key(0), b"head 2"), Err(StorageError::ReadBack));
    assert_eq!(s.read(head_key(0), &mut buf).unwrap(), Some(&b"head 1"[..]));
    assert_eq!(s.read(ratchet(2), &mut buf).unwrap(), Some(&b"old"[..]));
    assert_eq!(s.read(ratchet(3), &mut buf).unwrap(), Some(&b"new"[..]));

    // ... and by every other operation that follows it.
    type Then = fn(&mut FlashSplit<FaultFlash>) -> Result<(), StorageError>;
    let then: [(&str, Then); 9] = [
        ("a read", |s| s.read(ratchet(1), &mut [0u8; MAX_RECORD_LEN]).map(drop)),
        ("a read of the rest", |s| s.read(head_key(0), &mut [0u8; MAX_RECORD_LEN]).map(drop)),
        ("a store read back at once", |s| s.write(blob(1), b"blob")),
        ("an index", |s| s.write(u32::from_be_bytes([7, 0, 0x80, 0]), b"index")),
        ("a removal of the rest", |s| s.remove(blob(1))),
        ("a removal", |s| s.remove(ratchet(3))),
        ("a commit point", |s| s.committed()),
        ("a scrub", |s| FlashSplit::scrub(s)),
        ("a pass", |s| {
            let mut keys = core::iter::empty();
            match s.read_each(&mut keys, &|_| true, &mut [0u8; MAX_RECORD_LEN], &mut |_, _| Ok(())) {
                Err(StoreError::Storage(e)) => Err(e),
                other => panic!("{other:?}"),
            }
        }),
    ];
    for (what, op) in then {
        let mut s = split();
        s.flash_mut().lose = true;
        s.write(ratchet(1), b"new").unwrap();
        s.flash_mut().lose = false;
        s.write(ratchet(2), b"new").unwrap();
        assert_eq!(op(&mut s), Err(StorageError::ReadBack), "{what}");
    }

    // A batch of one (a lookup, not a pass) finds its store lost too.
    let mut s = split();
    s.flash_mut().lose = true;
    s.write(ratchet(1), b"new").unwrap();
    s.flash_mut().lose = false;
    assert_eq!(s.committed(), Err(StorageError::ReadBack));

    // The live version counts, not an older one of the same value.
    let mut s = split();
    s.write(ratchet(1), b"first").unwrap();
    s.write(ratchet(1), b"second").unwrap();
    s.flash_mut().lose = true;
    s.write(ratchet(1), b"first").unwrap();
    s.flash_mut().lose = false;
    s.write(ratchet(2), b"new").unwrap();
    assert_eq!(s.committed(), Err(StorageError::ReadBack));
    assert_eq!(s.read(ratchet(1), &mut buf).unwrap(), Some(&b"second"[..]));

    // A full batch reads back: the 16th store after the lost one fails.
    let mut s = split();
    s.flash_mut().lose = true;
    s.write(ratchet(1), b"new").unwrap();
    s.flash_mut().lose = false;
    for n in 10..24 {
        s.write(ratchet(n), b"more").unwrap();
    }
    assert_eq!(s.write(ratchet(24), b"more"), Err(StorageError::ReadBack));

    // Stores that land read back in a batch, the last version of a key
    // counting: the head then goes through.
    let mut s = split();
    for n in [1, 2, 1, 3, 1] {
        s.write(ratchet(n), &[n; 5]).unwrap();
    }
    s.write(head_key(0), b"head 2").unwrap();
    s.committed().unwrap();
    assert_eq!(s.read(ratchet(1), &mut buf).unwrap(), Some(&[1u8; 5][..]));

    // A ratchets map that fills up reads its batch back before its scrub
    // copies the region: the store that finds it full fails (before the
    // 16th, which would read the batch back as it fills).
    let mut s = FlashSplit::<FaultFlash>::open(FaultFlash::new(), split_regions(4, 2, 4), 8).unwrap();
    s.flash_mut().lose = true;
    s.write(ratchet(1), b"new").unwrap();
    s.flash_mut().lose = false;
    let failed = (2..16).find_map(|n| s.write(ratchet(n), &[n; 1500]).err());
    assert_eq!(failed, Some(StorageError::ReadBack), "a full ratchets map scrubbed over a lost store");
}

/// A page that `sequential-storage` reads as open (neither marker
/// written) but that still holds items, as a cut erase can leave it, is
/// erased at mount: `sequential-storage` 8 trusts an open page to be empty
/// (it writes into one without erasing it, and iterates the one after its
/// open page without checking its state), so a scrub brought back a record
/// that had been removed. Found by the `flash_mount` fuzz target (CI,
/// December 2026).
#[test]
fn items_left_in_an_open_page_do_not_come_back() {
    use mls_nostd::store::Storage;
    let half = (REGION_PAGES * PAGE) as u32;
    let open = |flash| FlashStorage::<FaultFlash>::open(flash, 0..half, half..2 * half, u32::MAX).unwrap();
    let mut store = open(FaultFlash::new());
    let secret = value(7, 0);
    store.write(7, &secret).unwrap();
    // The region's first page holds the map; copy its items into the
    // second (open, erased), leaving that page's markers (its first and
    // last byte: READ_SIZE is 1) erased.
    let mut flash = store.into_flash();
    assert_eq!((flash.mem[0], flash.mem[PAGE], flash.mem[2 * PAGE - 1]), (0, 0xFF, 0xFF), "page 0 open for writing, page 1 open");
    let items = flash.mem[1..PAGE - 1].to_vec();
    assert!(items.windows(secret.len()).any(|w| w == secret));
    flash.mem[PAGE + 1..2 * PAGE - 1].copy_from_slice(&items);
    let mut store = open(flash);
    assert!(store.flash().mem[PAGE..2 * PAGE].iter().all(|&b| b == 0xFF), "the open page was not erased at mount");
    let mut buf = [0u8; MAX_RECORD_LEN];
    assert_eq!(store.read(7, &mut buf).unwrap(), Some(&secret[..]));
    store.remove(7).unwrap();
    store.committed().unwrap();
    store.scrub().unwrap();
    assert_eq!(store.read(7, &mut buf).unwrap(), None, "a removed record came back after a scrub");
    let mut store = open(store.into_flash());
    assert_eq!(store.read(7, &mut buf).unwrap(), None, "a removed record came back after a remount");
    assert!(!store.flash().mem.windows(secret.len()).any(|w| w == secret), "the removed record is still in flash");
}

/// The same in a [`FlashSplit`]'s ratchets map (the secret trees' records),
/// where the fuzz target found it.
#[test]
fn items_left_in_an_open_page_of_the_ratchets_map_do_not_come_back() {
    use mls_nostd::store::Storage;
    let regions = split_regions(4, 4, 4);
    let first = regions.ratchets[0].start as usize;
    let open = |flash| FlashSplit::<FaultFlash>::open(flash, split_regions(4, 4, 4), u32::MAX).unwrap();
    let mut split = open(FaultFlash::new());
    let key = 0x0500_0001u32;
    let secret = value(key, 0);
    split.write(key, &secret).unwrap();
    split.committed().unwrap();
    let mut flash = split.into_flash();
    let (page, next) = (first..first + PAGE, first + PAGE..first + 2 * PAGE);
    assert_eq!((flash.mem[page.start], flash.mem[next.start], flash.mem[next.end - 1]), (0, 0xFF, 0xFF));
    let items = flash.mem[page.start + 1..page.end - 1].to_vec();
    assert!(items.windows(secret.len()).any(|w| w == secret), "the record is not in the ratchets' first page");
    flash.mem[next.start + 1..next.end - 1].copy_from_slice(&items);
    let mut split = open(flash);
    let mut buf = [0u8; MAX_RECORD_LEN];
    assert_eq!(split.read(key, &mut buf).unwrap(), Some(&secret[..]));
    split.remove(key).unwrap();
    split.committed().unwrap();
    split.scrub().unwrap();
    assert_eq!(split.read(key, &mut buf).unwrap(), None, "a removed record came back after a scrub");
    let mut split = open(split.into_flash());
    assert_eq!(split.read(key, &mut buf).unwrap(), None, "a removed record came back after a remount");
    assert!(!split.flash().mem.windows(secret.len()).any(|w| w == secret), "the removed record is still in flash");
}

/// Flash that holds no store but is not erased is refused, not erased; an
/// explicit format starts over.
#[test]
fn unreadable_flash_is_not_erased_silently() {
    use mls_nostd::store::flash::FlashConfigError;
    let mut flash = FaultFlash::new();
    for (i, b) in flash.mem.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(37) ^ 0x5A;
    }
    let half = (REGION_PAGES * PAGE) as u32;
    let mut store = FlashStorage::<FaultFlash>::new(flash, 0..half, half..2 * half, 8).unwrap();
    let before = store.flash().mem.clone();
    match store.mount() {
        Err(FlashConfigError::Unreadable) => assert_eq!(store.flash().mem, before, "garbage was modified"),
        other => panic!("garbage flash mounted: {other:?}"),
    }
    store.format().unwrap();
    store.mount().unwrap();
}

/// A [`FlashSplit`] whose tree regions hold no store and cannot be read
/// (garbage), beside a rest that holds a record, is refused with
/// `TreeUnreadable` and nothing is erased; `format_tree` starts the tree's
/// map over and keeps the rest's record.
#[test]
fn an_unreadable_tree_map_keeps_the_rest() {
    use mls_nostd::store::flash::FlashConfigError;
    let regions = split_regions(4, 4, 4);
    let tree = regions.tree[0].start as usize;
    let mut split = FlashSplit::<FaultFlash>::open(FaultFlash::new(), regions.clone(), 8).unwrap();
    let key = 0x0300_0001u32;
    split.write(key, &value(key, 1)).unwrap();
    let mut flash = split.into_flash();
    for (i, b) in flash.mem[tree..].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(37) ^ 0x5A;
    }
    let mut split = FlashSplit::<FaultFlash>::new(flash, regions, 8).unwrap();
    let garbage = split.flash().mem[tree..].to_vec();
    match split.mount() {
        Err(FlashConfigError::TreeUnreadable) => assert_eq!(split.flash().mem[tree..], garbage[..], "the tree's garbage was modified"),
        other => panic!("a garbage tree map mounted: {other:?}"),
    }
    split.format_tree().unwrap();
    split.mount().unwrap();
    let mut buf = [0u8; MAX_RECORD_LEN];
    assert_eq!(split.read(key, &mut buf).unwrap(), Some(&value(key, 1)[..]), "the rest's record was lost");
}

/// A store of another layout is not mounted as a [`FlashSplit`], whose
/// groups would not load from it and whose removals would never reach the
/// records in the wrong map: refused, nothing erased. A [`FlashStorage`]'s
/// (the tree's records beside the rest), the rest of a split of two maps
/// (before December 7, 2026: the secret trees' records beside the heads),
/// and a ratchets or tree map that holds a head: nothing is erased or
/// formatted before every map is checked.
#[test]
fn a_flash_split_refuses_another_layout() {
    use mls_nostd::store::flash::FlashConfigError;
    let regions = split_regions(4, 4, 4);
    let (head, tree, ratchet) = (0x0100_0000u32, 0x0A07_0002u32, 0x0500_0003u32);
    let images = [
        ("one map", regions.rest.clone(), [head, tree]),
        ("a split of two", regions.rest.clone(), [head, ratchet]),
        ("a head in the ratchets", regions.ratchets.clone(), [head, ratchet]),
        ("a head in the tree", regions.tree.clone(), [head, tree]),
    ];
    for (what, [a, b], keys) in images {
        let mut one = FlashStorage::<FaultFlash>::open(FaultFlash::new(), a, b, 8).unwrap();
        for key in keys {
            one.write(key, &value(key, 0)).unwrap();
        }
        let flash = one.into_flash();
        let before = flash.mem.clone();
        let mut split = FlashSplit::<FaultFlash>::new(flash, regions.clone(), 8).unwrap();
        match split.mount() {
            Err(FlashConfigError::OtherLayout) => assert!(split.flash().mem == before, "{what}: the flash was modified"),
            other => panic!("{what}: mounted as a FlashSplit: {other:?}"),
        }
    }
}

/// A removed record of a [`FlashSplit`]'s tree map (a tombstone there: an
/// empty item, where `sequential-storage`'s removal reads the whole map)
/// reads as absent, is not passed to `read_each`, and is gone from the
/// flash after a scrub, which copies neither the record nor its tombstone.
#[test]
fn a_removed_tree_record_is_absent_and_scrubbed_away() {
    let regions = split_regions(4, 4, 4);
    let tree = regions.tree[0].start as usize;
    let mut split = FlashSplit::<FaultFlash>::open(FaultFlash::new(), regions, 8).unwrap();
    // A tree key whose bytes (little-endian on the flash) no value holds.
    let (gone, kept, other) = (0x0A5C_3E77u32, 0x0900_0001u32, 0x0100_0000u32);
    let all = [gone, kept, other];
    for k in all {
        split.write(k, &value(k, 0)).unwrap();
    }
    split.remove(gone).unwrap();
    let mut buf = [0u8; MAX_RECORD_LEN];
    assert_eq!(split.read(gone, &mut buf).unwrap(), None, "a removed tree record was read");
    assert_eq!(split.read(kept, &mut buf).unwrap(), Some(&value(kept, 0)[..]));
    let mut got = Vec::new();
    split
        .read_each(&mut all.iter().copied(), &|k| all.contains(&k), &mut buf, &mut |k, v| {
            assert_eq!(v, value(k, 0), "key {k:08x}");
            got.push(k);
            Ok(())
        })
        .unwrap();
    got.sort();
    assert_eq!(got, [other, kept], "read_each passed a removed record");
    let holds_key = |s: &FlashSplit<FaultFlash>| s.flash().mem[tree..].windows(4).any(|w| w == gone.to_le_bytes());
    assert!(holds_key(&split), "the record and its tombstone are not in the tree's map");
    split.scrub().unwrap();
    assert!(!holds_key(&split), "the scrub copied the removed record or its tombstone");
    assert_eq!(split.read(kept, &mut buf).unwrap(), Some(&value(kept, 0)[..]));
    assert_eq!(split.read(gone, &mut buf).unwrap(), None);
}

/// A [`FlashSplit`] keeps the ratchet tree's records (kinds 9 and 10) in
/// the tree's map, the secret trees' (kinds 5 to 8) in the ratchets' and
/// every other record in the rest's: each map, opened alone as a
/// [`FlashStorage`], holds exactly its own. Reads and `read_each` reach
/// all three.
#[test]
fn a_flash_split_keeps_each_record_in_its_map() {
    let regions = split_regions(4, 4, 4);
    let mut split = FlashSplit::<FaultFlash>::open(FaultFlash::new(), regions.clone(), 8).unwrap();
    let tree_keys = vec![0x0900_0001u32, 0x0A07_0002, 0x0900_07FE];
    let ratchet_keys = vec![0x0500_0001u32, 0x0600_03FF, 0x0707_0003, 0x0800_8000];
    let rest_keys = vec![0x0100_0000u32, 0x0207_0001, 0x0400_0001, 0x0B00_0000, 0x4000_0000];
    let all: Vec<u32> = tree_keys.iter().chain(&ratchet_keys).chain(&rest_keys).copied().collect();
    for &k in &all {
        split.write(k, &value(k, 0)).unwrap();
    }
    let mut buf = [0u8; MAX_RECORD_LEN];
    for &k in &all {
        assert_eq!(split.read(k, &mut buf).unwrap(), Some(&value(k, 0)[..]), "key {k:08x}");
    }
    let mut got = Vec::new();
    let mut keys = all.iter().copied();
    split.read_each(&mut keys, &|k| all.contains(&k), &mut buf, &mut |k, v| {
        assert_eq!(v, value(k, 0));
        got.push(k);
        Ok(())
    })
    .unwrap();
    got.sort();
    let mut expected = all.clone();
    expected.sort();
    assert_eq!(got, expected);

    let mut flash = split.into_flash();
    for (name, [a, b], own) in [("rest", regions.rest, rest_keys), ("ratchets", regions.ratchets, ratchet_keys), ("tree", regions.tree, tree_keys)] {
        let mut alone = FlashStorage::<FaultFlash>::open(flash, a, b, u32::MAX).unwrap();
        for &k in &all {
            let held = alone.read(k, &mut buf).unwrap().is_some();
            assert_eq!(held, own.contains(&k), "the {name}'s map and key {k:08x}");
        }
        flash = alone.into_flash();
    }
}
