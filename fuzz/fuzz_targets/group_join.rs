//! Joining from a Welcome (§12.4.3.1) with every check, on an empty slot.
//! Dave has a KeyPackage; Alice's add-Dave Welcome is the seed.
//!
//! Input: `[mode] rest`. `mode / 3` picks the group: even, suite 1; odd,
//! suite 2 (P-256). `mode % 3` says what `rest` is:
//! - mode 0 (mod 3): `rest` is the `MLSMessage(Welcome)` as received. A join
//!   that succeeds must give the group Alice made (same epoch
//!   authenticator): only she could encrypt to Dave's init key.
//! - mode 1: `rest` is a `GroupInfo`; the target recomputes its
//!   confirmation tag from a fixed joiner secret, signs it as the member it
//!   names (Alice for others) and seals it into a Welcome for Dave, so the
//!   fuzzed GroupInfo and tree get past decryption and the signature check.
//! - mode 2: as mode 1 but the GroupInfo is sealed as given (tag and
//!   signature unchanged).
//!
//! A join that fails leaves the slot empty. The Welcome is also read in
//! pieces (`WelcomeReader`): a join from what it kept must be the whole
//! Welcome's.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mls_fuzz::*;
use mls_nostd::messages::{ReadWelcome, WelcomeError, WelcomeReader};

fuzz_target!(
    init: {
        maybe_write_seeds("group_join", || {
            let mut seeds = Vec::new();
            for f in vector_fields(&["mls_welcome", "welcome"]) {
                let mut s = vec![3 * world_of_suite(f.suite.unwrap_or(1)) as u8];
                s.extend_from_slice(&f.bytes);
                seeds.push(s);
            }
            for f in vector_fields(&["mls_group_info"]) {
                if let Some(gi) = strip_header(&f.bytes, 4) {
                    let mut s = vec![3 * world_of_suite(f.suite.unwrap_or(1)) as u8 + 1];
                    s.extend_from_slice(gi);
                    seeds.push(s);
                }
            }
            for world in 0..SUITES.len() {
                let base = 3 * world as u8;
                with_world_in(world, |w| {
                    w.check_own_seeds();
                    let mut s = vec![base];
                    s.extend_from_slice(&w.msgs.welcome_dave);
                    seeds.push(s);
                    for mode in [1u8, 2] {
                        let mut s = vec![base + mode];
                        s.extend_from_slice(strip_header(&w.msgs.group_info_with_dave, 4).unwrap());
                        seeds.push(s);
                    }
                });
            }
            seeds
        });
    },
    |data: &[u8]| {
        let Some((&mode, rest)) = data.split_first() else { return };
        with_world_in(usize::from(mode / 3 & 1), |w| {
            let welcome = match mode % 3 {
                0 => rest.to_vec(),
                m => match w.sealed(rest, m == 1) {
                    Some(welcome) => welcome,
                    None => return,
                },
            };
            let dave = &mut w.dave;
            w.empty_snapshot.restore(&mut dave.group);
            let mut buf = vec![0u8; welcome.len()];
            let signer = dave.signer.clone();
            let r = dave.group.join_in_memory(&welcome, &join_params(&w.dave_kp, &w.dave_keys, &signer), &mut buf);
            match r {
                Ok(()) => {
                    assert!(!dave.group.is_inactive());
                    if mode % 3 == 0 {
                        assert_eq!(
                            dave.group.epoch_authenticator(),
                            w.msgs.after_add_dave.as_slice(),
                            "an accepted Welcome gave another group than Alice's"
                        );
                    }
                }
                Err(_) => assert!(dave.group.is_inactive(), "a failed join left a group in the slot"),
            }
            // The same Welcome read in pieces (of 1 to 64 bytes, from its
            // length): a join it allows must be the whole Welcome's.
            let whole = r.is_ok().then(|| dave.group.epoch_authenticator().to_vec());
            w.empty_snapshot.restore(&mut dave.group);
            let piece = 1 + welcome.len() % 64;
            let mut kept = vec![0u8; welcome.len() + 64];
            if let Ok(mut read) = read_in_pieces(&w.dave_kp, &welcome, piece, &mut kept) {
                let params = join_params(&w.dave_kp, &w.dave_keys, &signer);
                match dave.group.join_read_in_memory(&mut read, &params) {
                    Ok(()) => assert_eq!(
                        whole.as_deref(),
                        Some(dave.group.epoch_authenticator()),
                        "the Welcome read in pieces joined where the whole one did not, or another group"
                    ),
                    Err(_) => assert!(dave.group.is_inactive(), "a failed join left a group in the slot"),
                }
            }
        });
    }
);

/// `welcome` fed to a [`WelcomeReader`] for `key_package` in pieces of
/// `piece` bytes.
fn read_in_pieces<'b>(
    key_package: &[u8],
    welcome: &[u8],
    piece: usize,
    buf: &'b mut [u8],
) -> Result<ReadWelcome<'b>, WelcomeError> {
    let mut reader = WelcomeReader::new(key_package, buf)?;
    for p in welcome.chunks(piece) {
        reader.feed(p)?;
    }
    reader.finish()
}
