//! The `const` buffer sizes of a group (issue #13): a group filled to its
//! capacity through `StoredGroup`'s one-buffer operations, each given
//! exactly `commit_buffers_len` bytes, with every Commit, Welcome and
//! GroupInfo checked against `commit_len`, `WELCOME_LEN` and
//! `GROUP_INFO_LEN`; one byte less is refused with the size needed.
//!
//! At 7208f14 there were no such sizes: callers guessed (the guide took
//! 32 KiB per Commit) and learned the need from `BufferTooSmall`.

use mls_nostd::messages::authenticated_content::ProtectionError;
use mls_nostd::prelude::*;
use mls_nostd::store::durable::DurableError;
use mls_nostd::group::CreateCommitError;

const CAP: usize = 8;
type G = Group<CAP, 4096, 32, 4096>;
type Flash = RamStorage<64, { 64 * 1024 }>;
const NOW: u64 = 1_700_000_000;
const KP_MAX: usize = 1024;

struct Device {
    group: Box<G>,
    flash: Box<Flash>,
}

fn rng() -> impl rand_core::CryptoRng {
    rand_core::UnwrapErr(getrandom::SysRng)
}

#[test]
fn a_full_group_fits_the_const_sizes() {
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let lifetime = Lifetime { not_before: NOW - 60, not_after: NOW + 86_400 };
    let mut rng = rng();
    let mut record = [0u8; MAX_RECORD_LEN];
    let mut buf = vec![0u8; G::commit_buffers_len(KP_MAX + 3)];
    let names: [&[u8]; CAP] = [b"m0", b"m1", b"m2", b"m3", b"m4", b"m5", b"m6", b"m7"];
    let keys: Vec<SignaturePrivateKey> = (0..CAP).map(|_| SignaturePrivateKey::generate(suite, &mut rng).0).collect();
    let id = |i: usize| SigningIdentity::new(suite, Credential::Basic { identity: names[i] }, &keys[i], lifetime);
    let mut devices: Vec<Device> = Vec::new();
    let mut creator = Device { group: Box::new(G::EMPTY), flash: Box::new(Flash::EMPTY) };
    creator.group.stored(&mut *creator.flash, 0, &mut record).create(&id(0).create_params(b"sizes"), &keys[0], &mut rng).unwrap();
    devices.push(creator);
    let (mut commits, mut welcomes) = (0, 0);

    // Fill the group, one Add at a time, each with exactly the documented buffer.
    for i in 1..CAP {
        let mut joiner = Device { group: Box::new(G::EMPTY), flash: Box::new(Flash::EMPTY) };
        let mut kp_buf = [0u8; KP_MAX];
        let kp = generate_key_package(&mut *joiner.flash, &id(i), &mut rng, &mut kp_buf, &mut record).unwrap();
        let len = G::commit_buffers_len(kp.len() + 3);
        let d = &mut devices[0];
        // One byte short: refused, with the size needed, and nothing staged.
        let short = d.group.stored(&mut *d.flash, 0, &mut record).add_member(kp, NOW, &mut rng, &mut buf[..len - 1]);
        assert!(
            matches!(short, Err(DurableError::Op(CreateCommitError::Protection(ProtectionError::BufferTooSmall { needed }))) if needed == len),
            "{:?}",
            short.as_ref().map(|o| o.summary)
        );
        assert!(!d.group.has_staged_commit());
        let out = d.group.stored(&mut *d.flash, 0, &mut record).add_member(kp, NOW, &mut rng, &mut buf[..len]).unwrap();
        assert!(out.commit.len() <= G::commit_len(kp.len() + 3), "commit {} > {}", out.commit.len(), G::commit_len(kp.len() + 3));
        let welcome = out.welcome.unwrap().to_vec();
        assert!(welcome.len() <= G::WELCOME_LEN, "welcome {} > {}", welcome.len(), G::WELCOME_LEN);
        let commit = out.commit.to_vec();
        commits += 1;
        welcomes += 1;
        d.group.stored(&mut *d.flash, 0, &mut record).merge_staged_commit().unwrap();
        for d in devices.iter_mut().skip(1) {
            let mut m = commit.clone();
            d.group.stored(&mut *d.flash, 0, &mut record).process_message(&mut m, NOW).unwrap();
            d.group.stored(&mut *d.flash, 0, &mut record).merge_staged_commit().unwrap();
        }
        let mut join_buf = vec![0u8; welcome.len()];
        joiner.group.stored(&mut *joiner.flash, 0, &mut record).join(&welcome, kp, &mut join_buf).unwrap();
        devices.push(joiner);
    }
    assert_eq!(devices.len(), CAP);

    // Every member commits an update of its keys (a path through the full tree).
    for committer in (0..CAP).rev() {
        let d = &mut devices[committer];
        let out = d.group.stored(&mut *d.flash, 0, &mut record).update(NOW, &mut rng, &mut buf[..G::commit_buffers_len(0)]).unwrap();
        assert!(out.commit.len() <= G::commit_len(0), "commit {} > {}", out.commit.len(), G::commit_len(0));
        let commit = out.commit.to_vec();
        commits += 1;
        d.group.stored(&mut *d.flash, 0, &mut record).merge_staged_commit().unwrap();
        for (j, d) in devices.iter_mut().enumerate().filter(|(j, _)| *j != committer) {
            let mut m = commit.clone();
            d.group.stored(&mut *d.flash, 0, &mut record).process_message(&mut m, NOW).unwrap_or_else(|e| panic!("{j}: {e:?}"));
            d.group.stored(&mut *d.flash, 0, &mut record).merge_staged_commit().unwrap();
        }
    }
    let authenticator = devices[0].group.epoch_authenticator().to_vec();
    assert!(devices.iter().all(|d| d.group.epoch_authenticator() == authenticator.as_slice()));

    // The GroupInfo of the full tree, with the tree.
    let mut gi = vec![0u8; G::GROUP_INFO_LEN];
    let mut scratch = vec![0u8; G::GROUP_INFO_LEN];
    let group_info = devices[3].group.group_info(true, &mut gi, &mut scratch).unwrap();
    assert!(group_info.len() > 8 * 100, "the tree is in it: {}", group_info.len());

    // A Remove, with its documented buffer.
    let d = &mut devices[0];
    let out = d.group.stored(&mut *d.flash, 0, &mut record).remove_member(5, NOW, &mut rng, &mut buf[..G::commit_buffers_len(7)]).unwrap();
    assert!(out.commit.len() <= G::commit_len(7));
    commits += 1;
    assert_eq!((commits, welcomes), (CAP - 1 + CAP + 1, CAP - 1));
    println!("{commits} commits and {welcomes} welcomes within the const sizes (commit_buffers_len(0) = {})", G::commit_buffers_len(0));
}
