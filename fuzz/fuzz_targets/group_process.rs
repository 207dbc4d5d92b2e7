//! A live group (Alice, Bob, Carol; Bob receives) fed any message through
//! `process_message`, then `merge_staged_commit` when a Commit is staged.
//! Every run starts from the same state (a byte snapshot of Bob's slot).
//!
//! Input: `[mode] rest`. Bit 1 of mode picks the group: suite 1 (clear) or
//! suite 2, P-256 (set); bit 0 what `rest` is:
//! - bit 0 clear: `rest` is the `MLSMessage` as received (raw bytes; seeds are
//!   valid messages of this epoch, so mutations explore near-valid input).
//! - bit 0 set: `rest` is a `FramedContent` followed by a confirmation tag;
//!   the target signs it as the member it names (Alice for others) and adds
//!   the membership tag, so the content passes authentication and reaches
//!   the proposal and commit checks of §12.
//!
//! After a rejected message the group must be exactly as before: same epoch,
//! epoch authenticator, GroupContext (tree hash, transcript hash) and
//! exporter output; and, for one input in eight (chosen by a hash of the
//! input, so runs replay exactly; the check costs ten times the rest),
//! Carol's first application message still decrypts, and Carol's Commit
//! still stages, merges and gives the epoch authenticator Carol got.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mls_fuzz::*;
use mls_nostd::group::Received;
use mls_nostd::messages::mls_message::MlsMessageBody;
use mls_nostd::psk::NoPsks;

fuzz_target!(
    init: {
        maybe_write_seeds("group_process", || {
            let mut seeds = Vec::new();
            for f in vector_fields(MESSAGE_KEYS) {
                let mut s = vec![(world_of_suite(f.suite.unwrap_or(1)) as u8) << 1];
                s.extend_from_slice(&f.bytes);
                seeds.push(s);
            }
            for world in 0..SUITES.len() {
                let bit = (world as u8) << 1;
                with_world_in(world, |w| {
                    w.check_own_seeds();
                    for m in w.group_messages() {
                        let mut s = vec![bit];
                        s.extend_from_slice(&m);
                        seeds.push(s);
                        if let Some(MlsMessageBody::PublicMessage(pm)) = decode_message(&m) {
                            let mut s = vec![bit | 1];
                            s.extend_from_slice(pm.content_bytes());
                            s.extend_from_slice(pm.auth.confirmation_tag.unwrap_or(&[]));
                            seeds.push(s);
                        }
                    }
                });
            }
            seeds
        });
    },
    |data: &[u8]| {
        let Some((&mode, rest)) = data.split_first() else { return };
        with_world_in(usize::from(mode >> 1 & 1), |w| {
            w.bob_snapshot.restore(&mut w.bob.group);
            let mut msg = if mode & 1 == 0 {
                rest.to_vec()
            } else {
                match w.resigned(rest) {
                    Some(m) => m,
                    None => return,
                }
            };
            let bob = &mut w.bob.group;
            match bob.process_message_in_memory(&mut msg, &NoPsks, NOW) {
                Ok(Received::Commit(summary)) => {
                    bob.merge_staged_commit_in_memory().expect("a staged commit merges");
                    if summary.removes_us {
                        // A member the Commit removes does not enter the new
                        // epoch (§12.4.2): its group ends.
                        assert!(bob.is_inactive(), "removed but still active");
                        assert_eq!(bob.epoch(), w.epoch);
                    } else {
                        assert_eq!(bob.epoch(), w.epoch + 1);
                    }
                }
                Ok(_) => {}
                Err(_) => {
                    assert_eq!(bob.epoch(), w.epoch, "a rejected message changed the epoch");
                    assert_eq!(bob.epoch_authenticator(), w.authenticator.as_slice(), "a rejected message changed the epoch");
                    let mut gc = vec![0u8; 4096];
                    let gc = bob.group_context(&mut gc).expect("GroupContext").to_vec();
                    assert_eq!(gc, w.group_context, "a rejected message changed the GroupContext");
                    let mut exported = [0u8; 32];
                    bob.export_secret(b"fuzz", b"", &mut exported).expect("exporter");
                    assert_eq!(exported, w.exported, "a rejected message changed the exporter");
                    if fnv(data) % 8 != 0 {
                        return;
                    }
                    let mut app = w.msgs.app_carol.clone();
                    match bob.process_message_in_memory(&mut app, &NoPsks, NOW) {
                        Ok(Received::Application { data, .. }) => assert_eq!(data, w.msgs.app_carol_text),
                        other => panic!("after a rejected message, Carol's message gives {other:?}"),
                    }
                    let mut c = w.msgs.commit_carol.clone();
                    match bob.process_message_in_memory(&mut c, &NoPsks, NOW) {
                        Ok(Received::Commit(_)) => {}
                        other => panic!("after a rejected message, Carol's commit gives {other:?}"),
                    }
                    bob.merge_staged_commit_in_memory().expect("Carol's commit merges");
                    assert_eq!(bob.epoch_authenticator(), w.msgs.after_carol.as_slice());
                }
            }
        });
    }
);
