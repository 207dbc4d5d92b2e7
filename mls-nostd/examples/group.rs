//! A group's life, from creation to removal: the story of the user guide
//! (`mls_nostd::guide`, which shows this file), as a program.
//!
//! ```text
//! cargo run -p mls-nostd --example group
//! ```
//!
//! Alice and Bob are devices: each group is used through its storage (a RAM
//! store stands in for flash), so every step is saved before it returns. It
//! names 8 types: `Group`, `CipherSuite`, `SignaturePrivateKey`,
//! `Credential`, `Lifetime`, `SigningIdentity`, `RamStorage` and `Received`.

use mls_nostd::prelude::*;

// Up to 8 members, 4 KiB of leaf encodings, 32 skipped keys, 4 KiB of proposals.
type MyGroup = Group<8, 4096, 32, 4096>;
// One buffer for a Commit, its Welcome and their work space; `0` bytes of
// our own proposals is enough for an update, 7 for a Remove, a KeyPackage's
// length plus 3 for an Add (`MyGroup::commit_buffers_len`).
const COMMIT_BUF: usize = MyGroup::commit_buffers_len(1024 + 3);

fn main() {
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let lifetime = Lifetime { not_before: now - 60, not_after: now + 30 * 86_400 };
    // The OS's randomness; on a device, the board's TRNG.
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let mut commit_buf = vec![0u8; COMMIT_BUF];
    // The work buffer of one stored record, shared by both stores here.
    let mut record = [0u8; MAX_RECORD_LEN];

    // 1. Alice creates the group in her flash (here a RAM store), slot 0.
    let (alice_key, _) = SignaturePrivateKey::generate(suite, &mut rng);
    let alice_id = SigningIdentity::new(suite, Credential::Basic { identity: b"alice" }, &alice_key, lifetime);
    let mut alice_flash = RamStorage::<64, { 64 * 1024 }>::EMPTY;
    let mut alice = Box::new(MyGroup::EMPTY);
    alice.stored(&mut alice_flash, 0, &mut record).create(&alice_id.create_params(b"sensors-floor-3"), &alice_key, &mut rng).unwrap();
    println!("1. alice created the group, epoch {}", alice.epoch());

    // 2. Bob publishes a KeyPackage; its private keys are in his flash first.
    let (bob_key, _) = SignaturePrivateKey::generate(suite, &mut rng);
    let bob_id = SigningIdentity::new(suite, Credential::Basic { identity: b"bob" }, &bob_key, lifetime);
    let mut bob_flash = RamStorage::<64, { 64 * 1024 }>::EMPTY;
    let mut kp_buf = [0u8; 1024];
    let bob_kp = generate_key_package(&mut bob_flash, &bob_id, &mut rng, &mut kp_buf, &mut record).unwrap();

    // 3. Alice adds Bob: a Commit for the group and a Welcome for Bob. Send
    //    the Commit to the group (nobody else yet), then merge it.
    let out = alice.stored(&mut alice_flash, 0, &mut record).add_member(bob_kp, now, &mut rng, &mut commit_buf).unwrap();
    let welcome = out.welcome.unwrap().to_vec();
    alice.stored(&mut alice_flash, 0, &mut record).merge_staged_commit().unwrap();

    // 4. Bob joins from the Welcome (the tree travels inside it); the
    //    KeyPackage's keys leave his flash at the same commit point.
    let mut bob = Box::new(MyGroup::EMPTY);
    let mut join_buf = vec![0u8; welcome.len()];
    bob.stored(&mut bob_flash, 0, &mut record).join(&welcome, bob_kp, &mut join_buf).unwrap();
    assert_eq!(alice.epoch_authenticator(), bob.epoch_authenticator());
    println!("3-4. alice added bob, who joined from the Welcome: epoch {}", bob.epoch());

    // 5. Send and receive application data (PrivateMessage): the ciphertext
    //    leaves only once the sending ratchet is stored.
    let mut ct = [0u8; 512];
    let mut incoming = alice.stored(&mut alice_flash, 0, &mut record).protect_application(b"temp=21.5", b"", 0, &mut rng, &mut ct).unwrap().to_vec();
    match bob.stored(&mut bob_flash, 0, &mut record).process_message(&mut incoming, now).unwrap() {
        Received::Application { data, .. } => {
            assert_eq!(data, b"temp=21.5");
            println!("5. bob read {:?}", core::str::from_utf8(data).unwrap());
        }
        other => panic!("{other:?}"),
    }

    // 6. Bob updates his keys: a Commit with a path (post-compromise security).
    let mut commit = bob.stored(&mut bob_flash, 0, &mut record).update(now, &mut rng, &mut commit_buf).unwrap().commit.to_vec();
    bob.stored(&mut bob_flash, 0, &mut record).merge_staged_commit().unwrap();
    let mut alice_stored = alice.stored(&mut alice_flash, 0, &mut record);
    match alice_stored.process_message(&mut commit, now).unwrap() {
        // Inspect what the commit does before accepting it.
        Received::Commit(summary) => assert_eq!(summary.updates + summary.adds + summary.removes, 0),
        other => panic!("{other:?}"),
    }
    alice_stored.merge_staged_commit().unwrap();
    assert_eq!(alice.epoch_authenticator(), bob.epoch_authenticator());
    println!("6. bob updated his keys: epoch {}", alice.epoch());

    // 7. Alice removes Bob (leaf 1).
    let mut commit = alice.stored(&mut alice_flash, 0, &mut record).remove_member(1, now, &mut rng, &mut commit_buf).unwrap().commit.to_vec();
    alice.stored(&mut alice_flash, 0, &mut record).merge_staged_commit().unwrap();
    let mut bob_stored = bob.stored(&mut bob_flash, 0, &mut record);
    match bob_stored.process_message(&mut commit, now).unwrap() {
        Received::Commit(summary) => assert!(summary.removes_us),
        other => panic!("{other:?}"),
    }
    bob_stored.merge_staged_commit().unwrap();
    assert!(bob.is_inactive());
    println!("7. alice removed bob: epoch {}, bob inactive", alice.epoch());
}
