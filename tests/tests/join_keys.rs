//! The lifecycle of a KeyPackage's private keys through a stored join
//! (RFC 9420 §10: used once, deleted once consumed), with the join's save
//! failing at each of its writes and removals (December 8, from a review
//! that found the first three tests failing).
use mls_nostd::codec::Decode;
use mls_nostd::crypto::signature::SignaturePrivateKey;
use mls_nostd::crypto::{CipherSuite, HashValue};
use mls_nostd::group::WireFormatPolicy;
use mls_nostd::key_package::KeyPackage;
use mls_nostd::messages::proposal::{Add, Proposal};
use mls_nostd::messages::welcome_reader::WelcomeReader;
use mls_nostd::store::durable::{load_key_package, store_key_package, RecordBuffer};
use mls_nostd::store::{recover, Parts, RecordKey, Storage, StorageError, MAX_RECORD_LEN};
use mls_tests::member::{Member, G};
use mls_tests::MapStorage;

const SLOT: u8 = 7;
const SUITE: CipherSuite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;

fn buf() -> Box<RecordBuffer> {
    Box::new([0u8; MAX_RECORD_LEN])
}

/// A map store whose writes and removals fail from the `ops_left`-th on.
struct Failing {
    map: MapStorage,
    ops_left: Option<usize>,
    failed: bool,
}

impl Failing {
    fn step(&mut self) -> Result<(), StorageError> {
        match &mut self.ops_left {
            Some(0) => {
                self.failed = true;
                Err(StorageError::Io)
            }
            Some(n) => {
                *n -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

impl Storage for Failing {
    fn read<'b>(&mut self, key: RecordKey, buf: &'b mut [u8]) -> Result<Option<&'b [u8]>, StorageError> {
        self.map.read(key, buf)
    }
    fn write(&mut self, key: RecordKey, value: &[u8]) -> Result<(), StorageError> {
        self.step()?;
        self.map.write(key, value)
    }
    fn remove(&mut self, key: RecordKey) -> Result<(), StorageError> {
        self.step()?;
        self.map.remove(key)
    }
}

fn reference(kp: &[u8]) -> HashValue {
    KeyPackage::decode_exact(kp).unwrap().reference(SUITE).unwrap()
}

fn has_keys(map: &mut MapStorage, r: &HashValue) -> bool {
    load_key_package::<_, SignaturePrivateKey>(map, r, &mut buf()).unwrap().is_some()
}

/// The group in `slot` of `map` (without recovery), if it loads.
fn stored_group_id(map: &MapStorage, slot: u8) -> Option<Vec<u8>> {
    let mut g = Box::new(G::EMPTY);
    let mut m = map.clone();
    g.load(&mut m, slot, &mls_nostd::identity::SAME_CREDENTIAL, &mut buf()).ok()?;
    Some(g.group_id().to_vec())
}

/// A Welcome adding `kp` to a new group `id` created by `creator`.
fn welcome_from(creator: &mut Member, id: &'static [u8], kp: &[u8]) -> Vec<u8> {
    creator.create(SUITE, id, Default::default());
    let add = Proposal::Add(Add { key_package: KeyPackage::decode_exact(kp).unwrap() });
    let (_, welcome) = creator.commit(&[add], false, WireFormatPolicy::Public);
    welcome.unwrap()
}

fn join(map: &mut MapStorage, slot: u8, welcome: &[u8], kp: &[u8]) -> bool {
    let mut g = Box::new(G::EMPTY);
    let mut gi = vec![0u8; welcome.len()];
    let mut b = buf();
    g.stored(map, slot, &mut b).join(welcome, kp, &mut gi).is_ok()
}

struct Setup {
    base: MapStorage,
    kp_a: Vec<u8>,
    kp_b: Vec<u8>,
    welcome_a: Vec<u8>,
    /// Another group's Welcome for the same KeyPackage A.
    welcome_a2: Vec<u8>,
    welcome_b: Vec<u8>,
}

/// Dave's store holds the keys of KeyPackages A and B; `older` puts a group
/// in the slot first (one the device no longer uses), whose banks the join's
/// save removes after its head.
fn setup(older: bool) -> Setup {
    let mut dave = Member::new("dave", 14);
    let (kp_a, keys_a) = dave.key_package(SUITE);
    let (kp_b, keys_b) = dave.key_package(SUITE);
    let mut base = MapStorage::default();
    let mut b = buf();
    store_key_package(&mut base, SUITE, &reference(&kp_a), &keys_a, &dave.signer, &mut b).unwrap();
    store_key_package(&mut base, SUITE, &reference(&kp_b), &keys_b, &dave.signer, &mut b).unwrap();
    if older {
        let mut old = Member::new("old", 20);
        old.create(SUITE, b"old-group", Default::default());
        old.group.save(&mut base, SLOT, Parts::ALL, &mut b).unwrap();
    }
    let welcome_a = welcome_from(&mut Member::new("alice", 11), b"group-a", &kp_a);
    let welcome_a2 = welcome_from(&mut Member::new("carol", 13), b"group-a2", &kp_a);
    let welcome_b = welcome_from(&mut Member::new("erin", 15), b"group-b", &kp_b);
    Setup { base, kp_a, kp_b, welcome_a, welcome_a2, welcome_b }
}

/// The join of Welcome A into `SLOT`, its store failing at operation
/// `fail_at`, for every `fail_at`; then, on what it left: recovery, a later
/// join of Welcome B into the same slot (the device believes the slot free
/// when the join failed), and another group's Welcome for KeyPackage A.
fn sweep(older: bool) -> Vec<String> {
    let s = setup(older);
    let ref_a = reference(&s.kp_a);
    let mut problems = Vec::new();
    let mut cut = 0;
    for fail_at in 0.. {
        let mut st = Failing { map: s.base.clone(), ops_left: Some(fail_at), failed: false };
        let mut g = Box::new(G::EMPTY);
        let mut gi = vec![0u8; s.welcome_a.len()];
        let mut b = buf();
        let result = g.stored(&mut st, SLOT, &mut b).join(&s.welcome_a, &s.kp_a, &mut gi);
        if !st.failed {
            assert!(result.is_ok());
            break;
        }
        let mut map = st.map;
        let joined_a = stored_group_id(&map, SLOT).as_deref() == Some(&b"group-a"[..]);
        let keys_a = has_keys(&mut map, &ref_a);
        let case = format!("op {fail_at} failed: join {}, group A stored {joined_a}, keys A kept {keys_a}", if result.is_ok() { "Ok" } else { "Err" });
        println!("{case}");
        cut += 1;
        // Never keys gone with no group.
        if !keys_a && !joined_a {
            problems.push(format!("{case}: keys deleted, no group"));
        }
        // Recovery at start-up finishes the removal.
        let mut recovered = map.clone();
        recover(&mut recovered, SLOT, &mut b[..]).unwrap();
        if joined_a && has_keys(&mut recovered, &ref_a) {
            problems.push(format!("{case}: recover kept the keys of the stored join"));
        }
        if joined_a && keys_a {
            // The join is durable: it says so.
            if result.is_err() {
                problems.push(format!("{case}: the join was refused, but the store holds it"));
            }
            // Once `recover` ran (at start-up), KeyPackage A joins no second
            // group. (Before it, while the removal that failed is pending, it
            // would: `StoredGroup::join_with` says so.)
            let mut other = recovered.clone();
            if join(&mut other, SLOT + 1, &s.welcome_a2, &s.kp_a) {
                problems.push(format!("{case}: after recover, KeyPackage A joined a second group (slot {})", SLOT + 1));
            }
            // The next join into the same slot (no reboot in between).
            let mut second = map.clone();
            assert!(join(&mut second, SLOT, &s.welcome_b, &s.kp_b), "{case}: join B");
            recover(&mut second, SLOT, &mut b[..]).unwrap();
            if has_keys(&mut second, &ref_a) {
                problems.push(format!("{case}: after a second join into the slot (and recover), keys A are kept for good"));
            }
        }
    }
    // Every operation of the join's save, before and after its head (7 in
    // a fresh slot, 11 over an older group when written).
    println!("{cut} cut points");
    assert!(cut >= 7, "only {cut} cut points: the sweep no longer reaches the save's head");
    problems
}

#[test]
fn a_join_into_a_fresh_slot_failing_at_every_operation_keeps_or_removes_the_keys() {
    let problems = sweep(false);
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn a_join_over_an_older_group_failing_at_every_operation_keeps_or_removes_the_keys() {
    let problems = sweep(true);
    assert!(problems.is_empty(), "{problems:#?}");
}

/// A refused Welcome (a wrong KeyPackage, a damaged GroupInfo) leaves the
/// store as it was: the keys kept, the slot untouched.
#[test]
fn a_refused_welcome_leaves_keys_and_slot() {
    for older in [false, true] {
        let s = setup(older);
        let mut bad = s.welcome_a.clone();
        let n = bad.len();
        bad[n - 5] ^= 1; // in the encrypted GroupInfo's tag
        for (welcome, kp) in [(&s.welcome_b, &s.kp_a), (&bad, &s.kp_a), (&s.welcome_a, &s.kp_b)] {
            let mut map = s.base.clone();
            assert!(!join(&mut map, SLOT, welcome, kp));
            assert_eq!(map.0, s.base.0, "a refused join changed the store");
        }
        // And the good one is then used once only.
        let mut map = s.base.clone();
        assert!(join(&mut map, SLOT, &s.welcome_a, &s.kp_a));
        assert!(!has_keys(&mut map, &reference(&s.kp_a)));
        assert!(!join(&mut map, SLOT + 1, &s.welcome_a, &s.kp_a), "Welcome replayed");
        assert!(!join(&mut map, SLOT + 1, &s.welcome_a2, &s.kp_a), "KeyPackage used twice");
    }
}

/// Hostile Welcome bytes fed in pieces of every length: no panic.
#[test]
fn the_welcome_reader_takes_hostile_bytes() {
    let s = setup(false);
    let mut rng = mls_tests::TestRng(99);
    let mut next = move || rand_core::Rng::next_u64(&mut rng);
    for i in 0..20_000u64 {
        let mut w = s.welcome_a.clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() as usize) % w.len();
            match next() % 3 {
                0 => w[at] = next() as u8,
                1 => w.truncate(at),
                _ => w.insert(at, next() as u8),
            }
            if w.is_empty() {
                w.push(0);
            }
        }
        let room = [w.len(), w.len() / 2, 64, 600][(i % 4) as usize];
        let piece = 1 + (next() as usize) % 97;
        let mut buf = vec![0u8; room];
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut reader = WelcomeReader::new(&s.kp_a, &mut buf).unwrap();
            for p in w.chunks(piece) {
                if reader.feed(p).is_err() {
                    return;
                }
            }
            let _ = reader.finish();
        }));
        assert!(r.is_ok(), "panic on mutation {i}: {w:?} piece {piece} room {room}");
    }
}

/// One KeyPackage record this build cannot read (a suite it was built
/// without, say, after a firmware update) does not block the removal of a
/// consumed KeyPackage, which every later save of the joined group that
/// writes a head does first (until December 8 it failed them with
/// `Corrupt`, and `recover` too).
#[test]
fn an_unreadable_key_package_record_blocks_no_save() {
    let s = setup(false);
    let mut map = s.base.clone();
    let key = mls_nostd::store::key_package_key(1);
    let record = map.0.get_mut(&key).expect("KeyPackage B in record 1");
    record[..2].copy_from_slice(&0xffffu16.to_be_bytes());
    let mut g = Box::new(G::EMPTY);
    let mut gi = vec![0u8; s.welcome_a.len()];
    let mut b = buf();
    g.stored(&mut map, SLOT, &mut b).join(&s.welcome_a, &s.kp_a, &mut gi).unwrap();
    let saved = g.stored(&mut map, SLOT, &mut b).save(Parts::ALL);
    let recovered = recover(&mut map, SLOT, &mut b[..]);
    assert!(saved.is_ok() && recovered.is_ok(), "save after the join: {saved:?}, recover: {recovered:?}");
}
