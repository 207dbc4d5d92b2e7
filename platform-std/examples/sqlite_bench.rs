//! Measures `SqliteStorage` against `FileStorage` on the same disk, in one
//! run: a durable application message received (`process_message_durable`:
//! decrypt, then save the ratchets) without and with power-cut durability,
//! and a gateway database of 1,000 groups of 16 members (open, load a group,
//! save it).
//!
//! ```sh
//! cargo run --release -p platform-std --example sqlite_bench -- [DIR]
//! ```
//!
//! DIR (default: the system's temporary directory) must be on the disk to
//! measure; the run makes and removes `DIR/mls-sqlite-bench-<pid>`.
use mls_nostd::codec::Decode;
use mls_nostd::crypto::CipherSuite;
use mls_nostd::key_package::KeyPackage;
use mls_nostd::messages::proposal::{Add, Proposal};
use mls_nostd::group::{WireFormatPolicy};
use mls_nostd::psk::NoPsks;
use mls_nostd::store::durable::RecordBuffer;
use mls_nostd::store::{MAX_RECORD_LEN, Parts, Storage, recover};
use mls_tests::member::{G, Member, NOW};
use platform_std::{Durability, FileStorage, Flush, SqliteDatabase, SqliteOptions};
use std::path::Path;
use std::time::{Duration, Instant};

const SLOT: u8 = 0;
const SUITE: CipherSuite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;

fn buf() -> Box<RecordBuffer> {
    Box::new([0u8; MAX_RECORD_LEN])
}

fn per_op(d: Duration, n: usize) -> f64 {
    d.as_secs_f64() * 1e6 / n as f64
}

/// A group of 16 made by alice in one Commit; returns alice and the others.
fn group_of_16() -> (Member, Vec<Member>) {
    let names = ["bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "niaj", "olivia", "peggy", "rupert", "sybil"];
    let mut alice = Member::new("alice", 1);
    alice.create(SUITE, b"gateway", Default::default());
    let mut others: Vec<Member> = names.iter().enumerate().map(|(i, n)| Member::new(n, 2 + i as u64)).collect();
    let kps: Vec<_> = others.iter_mut().map(|m| m.key_package(SUITE)).collect();
    let adds: Vec<Proposal<'_>> =
        kps.iter().map(|(kp, _)| Proposal::Add(Add { key_package: KeyPackage::decode_exact(kp).unwrap() })).collect();
    let (_, welcome) = alice.commit(&adds, false, WireFormatPolicy::Public);
    let welcome = welcome.unwrap();
    for (m, (kp, keys)) in others.iter_mut().zip(&kps) {
        m.join(&welcome, kp, keys);
    }
    (alice, others)
}

/// Bob (saved in `storage`) receives `n` application messages from alice,
/// each durably; returns the time per message.
fn receive_durable<S: Storage>(storage: &mut S, n: usize) -> f64 {
    let mut alice = Member::new("alice", 1);
    let mut bob = Member::new("bob", 2);
    alice.create(SUITE, b"bench", Default::default());
    alice.add(&mut bob, SUITE);
    let mut b = buf();
    bob.group.save(storage, SLOT, Parts::ALL, &mut b).unwrap();
    let warm = 20;
    let messages: Vec<Vec<u8>> = (0..n + warm).map(|i| alice.send(format!("reading {i}").as_bytes())).collect();
    let mut start = Instant::now();
    for (i, mut m) in messages.into_iter().enumerate() {
        if i == warm {
            start = Instant::now();
        }
        bob.group.stored(storage, SLOT, &mut b).process_message_with_psks(&mut m, &NoPsks, NOW).unwrap();
    }
    per_op(start.elapsed(), n)
}

fn main() {
    let base = std::env::args().nth(1).map(std::path::PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let root = base.join(format!("mls-sqlite-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    println!("directory {}", root.display());

    // In memory, for the cost of the message itself.
    let ram = receive_durable(&mut mls_tests::MapStorage::default(), 2000);
    println!("\ndurable application message received (decrypt + save), mean per message:");
    println!("{:<58} {:>10}", "in memory (MapStorage)", format!("{ram:.1} µs"));
    let mut rows = Vec::new();
    for (flush, durability, n) in [(Flush::ProcessCrash, Durability::ProcessCrash, 2000), (Flush::PowerCut, Durability::PowerCut, 200)] {
        let files = {
            let mut s = FileStorage::open_with(root.join(format!("files-{flush:?}")), flush).unwrap();
            receive_durable(&mut s, n)
        };
        let sqlite = |checkpoint_every: u32| {
            let options = SqliteOptions { checkpoint_every, ..SqliteOptions::new(durability) };
            let db = SqliteDatabase::open_with(root.join(format!("db-{durability:?}-{checkpoint_every}.sqlite")), options).unwrap();
            let mut s = db.storage("bob").unwrap();
            receive_durable(&mut s, n)
        };
        let default = SqliteOptions::new(durability).checkpoint_every;
        let (sqlite_default, sqlite_every) = (sqlite(default), sqlite(1));
        println!("{:<58} {:>10}", format!("FileStorage, Flush::{flush:?} ({n} messages)"), format!("{files:.1} µs"));
        println!(
            "{:<58} {:>10}",
            format!("SqliteStorage, Durability::{durability:?}, checkpoint every {default}"),
            format!("{sqlite_default:.1} µs")
        );
        println!("{:<58} {:>10}", format!("SqliteStorage, Durability::{durability:?}, checkpoint every 1"), format!("{sqlite_every:.1} µs"));
        rows.push((format!("{durability:?}, checkpoint every {default}"), files / sqlite_default));
        rows.push((format!("{durability:?}, checkpoint every 1"), files / sqlite_every));
    }
    for (what, ratio) in &rows {
        println!("SqliteStorage is {ratio:.1}x faster than FileStorage ({what})");
    }

    gateway(&root);
    std::fs::remove_dir_all(&root).unwrap();
}

/// A gateway's database: its state in 1,000 groups of 16 members (one
/// namespace per group; the groups are copies of one real 16-member group as
/// the gateway sees it, so each record has its real size).
fn gateway(root: &Path) {
    const GROUPS: usize = 1000;
    let path = root.join("gateway.sqlite");
    let (mut alice, mut others) = group_of_16();
    let made = Instant::now();
    {
        let db = SqliteDatabase::open(&path, Durability::PowerCut).unwrap();
        let mut b = buf();
        for g in 0..GROUPS {
            let mut s = db.storage(&format!("group-{g:04}")).unwrap();
            alice.group.save(&mut s, SLOT, Parts::ALL, &mut b).unwrap();
        }
    }
    let made = made.elapsed();
    let size: u64 = std::fs::metadata(&path).unwrap().len();
    println!("\ngateway: {GROUPS} groups of 16 members (the gateway's state in each)");
    println!("made in {:.2} s (one save per group, Durability::PowerCut); database file {:.1} MB", made.as_secs_f64(), size as f64 / 1e6);

    // A message from another member, which every copy of the group can read.
    let message = others[0].send(b"to the gateway");
    for (pass, verify_on_open) in [true, false].into_iter().enumerate() {
        let options = SqliteOptions { verify_on_open, ..SqliteOptions::new(Durability::PowerCut) };
        let t = Instant::now();
        let db = SqliteDatabase::open_with(&path, options).unwrap();
        let open = t.elapsed();
        let picks = 200;
        let (mut load, mut receive, mut full) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
        let mut b = buf();
        for i in 0..picks {
            // Spread over the database, each group once over both passes.
            let g = ((pass * picks + i) * 397) % GROUPS;
            let t = Instant::now();
            let mut s = db.storage(&format!("group-{g:04}")).unwrap();
            let mut group = Box::new(G::EMPTY);
            recover(&mut s, SLOT, &mut b[..]).unwrap();
            group.load(&mut s, SLOT, &mls_nostd::identity::SAME_CREDENTIAL, &mut b).unwrap();
            load += t.elapsed();
            let t = Instant::now();
            let mut m = message.clone();
            group.stored(&mut s, SLOT, &mut b).process_message_with_psks(&mut m, &NoPsks, NOW).unwrap();
            receive += t.elapsed();
            let t = Instant::now();
            group.save(&mut s, SLOT, Parts::ALL, &mut b).unwrap();
            full += t.elapsed();
        }
        println!(
            "open (quick_check {}): {:.1} ms; per group ({picks} spread over the file): open namespace + recover + load {:.0} µs, \
             receive a message (ratchet save) {:.0} µs, save in full {:.0} µs",
            if verify_on_open { "on" } else { "off" },
            open.as_secs_f64() * 1e3,
            per_op(load, picks),
            per_op(receive, picks),
            per_op(full, picks),
        );
    }
}
