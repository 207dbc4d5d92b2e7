//! A group's life, from creation to removal: the story of the user guide
//! (`mls_nostd::guide`, which shows this file), as a program.
//!
//! ```text
//! cargo run -p mls-nostd --example group
//! ```
//!
//! Alice is a device: her group is used through its storage (a RAM store
//! stands in for flash), so every step is saved before it returns. Bob is a
//! host that saves by other means and uses the `*_in_memory` operations.

use mls_nostd::prelude::*;

fn main() {
    // Up to 8 members, 4 KiB of leaf encodings, 32 skipped keys, 4 KiB of proposals.
    type MyGroup = Group<8, 4096, 32, 4096>;
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let lifetime = Lifetime { not_before: now - 60, not_after: now + 30 * 86_400 };
    // The OS's randomness; on a device, the board's TRNG.
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);

    // 1. Alice creates the group.
    let (alice_key, _) = SignaturePrivateKey::generate(suite, &mut rng);
    let mut alice = Box::new(MyGroup::EMPTY);
    let credential = Credential::Basic { identity: b"alice" };
    alice.create(&CreateParams::new(suite, b"sensors-floor-3", credential, lifetime), &alice_key, &mut rng).unwrap();
    // Her flash (here a RAM store), group slot 0, and a record buffer.
    let mut flash = RamStorage::<64, { 64 * 1024 }>::EMPTY;
    let mut record: RecordBuffer = [0; mls_nostd::store::MAX_RECORD_LEN];
    alice.stored(&mut flash, 0, &mut record).save(Parts::ALL).unwrap();
    println!("1. alice created the group, epoch {}", alice.epoch());

    // 2. Bob publishes a KeyPackage; he keeps its private keys (in a
    //    `key_store::KeyPackageStore` in real code).
    let (bob_key, _) = SignaturePrivateKey::generate(suite, &mut rng);
    let mut kp_buf = [0u8; 1024];
    let params = KeyPackageParams::new(suite, Credential::Basic { identity: b"bob" }, lifetime);
    let (bob_kp, bob_kp_keys) = KeyPackage::generate(&params, &bob_key, &mut rng, &mut kp_buf).unwrap();

    // 3. Alice adds Bob: a Commit for the group and a Welcome for Bob.
    let (mut msg, mut welcome, mut group_info) = (vec![0u8; 32 * 1024], vec![0u8; 16 * 1024], vec![0u8; 16 * 1024]);
    let add = Proposal::Add(Add { key_package: KeyPackage::decode_exact(bob_kp).unwrap() });
    let out = alice.stored(&mut flash, 0, &mut record).commit(
        &CommitOptions { proposals: &[add], ..CommitOptions::DEFAULT },
        &NoPsks, now, &mut rng, &Sequential,
        CommitBuffers { message: &mut msg, welcome: &mut welcome, group_info: &mut group_info },
    ).unwrap();
    let welcome = out.welcome.unwrap().to_vec();
    // Send out.commit to the group (nobody else yet) and the Welcome to Bob, then:
    alice.stored(&mut flash, 0, &mut record).merge_staged_commit().unwrap();

    // 4. Bob joins from the Welcome (the tree travels inside it).
    let mut bob = Box::new(MyGroup::EMPTY);
    let mut join_buf = vec![0u8; welcome.len()];
    bob.join_in_memory(&welcome, &JoinParams::new(bob_kp, &bob_kp_keys, &bob_key), &mut join_buf).unwrap();
    assert_eq!(alice.epoch_authenticator(), bob.epoch_authenticator());
    println!("3-4. alice added bob, who joined from the Welcome: epoch {}", bob.epoch());

    // 5. Send and receive application data (PrivateMessage).
    let mut ct = [0u8; 512];
    let sent = alice.stored(&mut flash, 0, &mut record).protect_application(b"temp=21.5", b"", 0, &mut rng, &mut ct).unwrap().to_vec();
    let mut incoming = sent.clone();
    match bob.process_message_in_memory(&mut incoming, &NoPsks, now).unwrap() {
        Received::Application { data, .. } => {
            assert_eq!(data, b"temp=21.5");
            println!("5. bob read {:?}", core::str::from_utf8(data).unwrap());
        }
        other => panic!("{other:?}"),
    }

    // 6. Bob updates his keys: a Commit with a path (post-compromise security);
    //    his leaf keeps its credential (`leaf: Some(..)` would change it).
    let (mut msg, mut w, mut gi) = (vec![0u8; 32 * 1024], vec![0u8; 1024], vec![0u8; 1024]);
    let out = bob.commit_in_memory(
        &CommitOptions {
            force_path: true, wire_format: WireFormatPolicy::Private, ..CommitOptions::DEFAULT
        },
        &NoPsks, now, &mut rng, &Sequential,
        CommitBuffers { message: &mut msg, welcome: &mut w, group_info: &mut gi },
    ).unwrap();
    let mut commit = out.commit.to_vec();
    bob.merge_staged_commit_in_memory().unwrap();
    let mut alice_stored = alice.stored(&mut flash, 0, &mut record);
    match alice_stored.process_message(&mut commit, &NoPsks, now).unwrap() {
        // Inspect what the commit does before accepting it.
        Received::Commit(summary) => assert_eq!(summary.updates + summary.adds + summary.removes, 0),
        other => panic!("{other:?}"),
    }
    alice_stored.merge_staged_commit().unwrap();
    assert_eq!(alice.epoch_authenticator(), bob.epoch_authenticator());
    println!("6. bob updated his keys: epoch {}", alice.epoch());

    // 7. Alice removes Bob.
    let (mut msg, mut w, mut gi) = (vec![0u8; 32 * 1024], vec![0u8; 1024], vec![0u8; 1024]);
    let remove = Proposal::Remove(Remove { removed: 1 });
    let out = alice.stored(&mut flash, 0, &mut record).commit(
        &CommitOptions { proposals: &[remove], ..CommitOptions::DEFAULT },
        &NoPsks, now, &mut rng, &Sequential,
        CommitBuffers { message: &mut msg, welcome: &mut w, group_info: &mut gi },
    ).unwrap();
    let mut commit = out.commit.to_vec();
    alice.stored(&mut flash, 0, &mut record).merge_staged_commit().unwrap();
    match bob.process_message_in_memory(&mut commit, &NoPsks, now).unwrap() {
        Received::Commit(summary) => assert!(summary.removes_us),
        other => panic!("{other:?}"),
    }
    bob.merge_staged_commit_in_memory().unwrap();
    assert!(bob.is_inactive());
    println!("7. alice removed bob: epoch {}, bob inactive", alice.epoch());
}
