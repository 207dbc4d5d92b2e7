//! The file store keeps a group across a "restart" (a new store over the same
//! directory), leaves no temporary or replaced file behind, and wipes
//! removed records.
use mls_nostd::crypto::CipherSuite;
use mls_nostd::group::{WireFormatPolicy};
use mls_nostd::store::{recover, Parts, Storage, MAX_RECORD_LEN};
use mls_tests::member::{agree, Member};
use platform_std::FileStorage;

#[test]
fn group_survives_restart_in_files() {
    let dir = std::env::temp_dir().join(format!("mls-file-store-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let mut alice = Member::new("alice", 1);
    let mut bob = Member::new("bob", 2);
    alice.create(suite, b"files", Default::default());
    alice.add(&mut bob, suite);
    let mut buf = Box::new([0u8; MAX_RECORD_LEN]);
    {
        let mut store = FileStorage::open(&dir).unwrap();
        bob.group.save(&mut store, 3, Parts::ALL, &mut buf).unwrap();
        let (commit, _) = alice.commit(&[], true, WireFormatPolicy::Public);
        bob.receive_commit(&commit);
        bob.group.save(&mut store, 3, Parts::ALL, &mut buf).unwrap();
    }
    // A crash mid-write left a temporary file: open wipes it.
    std::fs::write(dir.join("00000000.tmp"), b"partial").unwrap();
    let mut store = FileStorage::open(&dir).unwrap();
    recover(&mut store, 3, &mut buf[..]).unwrap();
    let names: Vec<String> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert!(names.iter().all(|n| n.ends_with(".rec") || n == "lock"), "{names:?}");
    let mut restarted = Member::new("bob", 2);
    restarted.group.load(&mut store, 3, &mls_nostd::identity::SAME_CREDENTIAL, &mut buf).unwrap();
    agree(&[&alice, &restarted]);
    let m = alice.send(b"after restart");
    assert_eq!(restarted.receive_app(&m).1, b"after restart");

    // Removing a record leaves no file.
    store.write(0x0900_0000, b"secret").unwrap();
    store.remove(0x0900_0000).unwrap();
    let mut b = [0u8; 16];
    assert_eq!(store.read(0x0900_0000, &mut b).unwrap(), None);
    std::fs::remove_dir_all(&dir).unwrap();
}
