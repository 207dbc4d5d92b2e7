//! `delivery::Inbox` driven by any sequence of operations (accept, release,
//! a new epoch, `await_welcome`, `await_welcome_from`, `joined_at`,
//! `remember`) on group messages
//! built from the input and on raw bytes: never a panic, at most `SLOTS`
//! buffered, and every message `release` gives back is byte for byte one
//! that `accept` buffered, given back once (the packed buffer moves messages
//! when one leaves); `Overflowed` only while waiting for a Welcome; while
//! waiting from a known epoch, nothing earlier is buffered and nothing more
//! than `MAX_EPOCHS_AHEAD` after it either; a too small output buffer is
//! refused with the message's length.
//!
//! Input: operations of 4 bytes, `op | a | b | c`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mls_fuzz::*;
use mls_nostd::delivery::{digest, DeliveryError, Digest, Inbox, Policy, Verdict, MAX_EPOCHS_AHEAD};
use std::collections::HashMap;

const SLOTS: usize = 8;
const BYTES: usize = 600;
type Small = Inbox<SLOTS, BYTES, 16>;

/// An `MLSMessage` with a PrivateMessage of `epoch` and `content_type`
/// (§6.3's layout), `len` ciphertext bytes of `tag`: built by hand, not by
/// the code under test.
fn private(epoch: u64, content_type: u8, tag: u8, len: usize) -> Vec<u8> {
    let mut m = vec![0, 1, 0, 2, 2, 0xaa, 0xbb];
    m.extend_from_slice(&epoch.to_be_bytes());
    m.extend_from_slice(&[content_type, 0, 1, tag]);
    // ciphertext<V>: a 1- or 2-byte variable-length integer (§2.1.2).
    if len < 64 {
        m.push(len as u8);
    } else {
        m.extend_from_slice(&(0x4000 | len as u16).to_be_bytes());
    }
    m.extend(std::iter::repeat_n(tag, len));
    m
}

fuzz_target!(
    init: {
        maybe_write_seeds("delivery_inbox", || {
            vec![
                // Buffer two of the next epoch, advance, release both.
                vec![0, 1, 1, 20, 0, 1, 2, 90, 3, 0, 0, 0, 2, 0, 0, 255, 2, 0, 0, 255],
                // Wait for a Welcome from epoch 2: application messages of
                // epoch 0 (stale), 19 (too far ahead) and 2 (buffered).
                vec![4, 1, 2, 0, 0, 0, 0, 10, 0, 21, 0, 10, 0, 4, 0, 10],
                // Wait for a Welcome, overflow by bytes, join, release.
                vec![4, 0, 0, 0, 0, 3, 1, 200, 0, 4, 2, 200, 0, 5, 3, 250, 0, 6, 4, 250, 5, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 255],
            ]
        });
    },
    |data: &[u8]| {
        let mut inbox = Box::new(Small::new(Policy { committer: 0 }));
        let mut current: u64 = 0;
        let mut waiting = false;
        // The lowest epoch a member waiting with `await_welcome_from` joins at.
        let mut waiting_from: Option<u64> = None;
        // What was buffered and not yet given back, by digest.
        let mut buffered: HashMap<Digest, Vec<u8>> = HashMap::new();
        let mut out = vec![0u8; 1024];
        for op in data.chunks_exact(4) {
            let (a, b, c) = (op[1], op[2], op[3]);
            match op[0] % 7 {
                0 | 1 => {
                    let (message, epoch) = if op[0] % 7 == 0 {
                        // Epochs around the current one (and beyond the
                        // epochs a waiting member keeps); application,
                        // proposal or commit.
                        let epoch = (current + u64::from(a % 32)).saturating_sub(2);
                        (private(epoch, 1 + b % 3, b, usize::from(c) * 2), Some(epoch))
                    } else {
                        (data.iter().copied().take(usize::from(a)).collect(), None)
                    };
                    let verdict = inbox.accept(&message, current);
                    if let (Some(lowest), Some(epoch)) = (waiting_from, epoch) {
                        if epoch < lowest {
                            // A Commit in a PrivateMessage is refused before its epoch is read.
                            assert!(
                                matches!(verdict, Ok(Verdict::Stale | Verdict::Duplicate) | Err(DeliveryError::NotCommitter)),
                                "epoch {epoch} < {lowest}: {verdict:?}"
                            );
                        } else if epoch > lowest + MAX_EPOCHS_AHEAD {
                            assert!(
                                matches!(
                                    verdict,
                                    Ok(Verdict::Duplicate) | Err(DeliveryError::TooFarAhead { .. } | DeliveryError::NotCommitter)
                                ),
                                "epoch {epoch} > {lowest} + {MAX_EPOCHS_AHEAD}: {verdict:?}"
                            );
                        }
                    }
                    match verdict {
                        Ok(Verdict::Buffered) => {
                            buffered.insert(digest(&message), message);
                        }
                        Ok(Verdict::Overflowed) => assert!(waiting, "Overflowed while not waiting"),
                        Ok(_) => {}
                        Err(DeliveryError::TooLarge { len, bytes }) => assert!(len > bytes && bytes == BYTES),
                        Err(_) => {}
                    }
                }
                2 => {
                    let size = usize::from(a) * 4;
                    match inbox.release(current, &mut out[..size]) {
                        Ok(Some(n)) => {
                            assert!(!waiting, "released while waiting for a Welcome");
                            let back = &out[..n];
                            let was = buffered.remove(&digest(back)).expect("released a message never buffered (or twice)");
                            assert_eq!(back, &was[..], "released bytes differ from what was buffered");
                        }
                        Ok(None) => {}
                        Err(DeliveryError::OutputTooSmall { needed }) => assert!(needed > size && needed <= BYTES),
                        Err(e) => panic!("release: {e:?}"),
                    }
                }
                3 => current = current.saturating_add(1 + u64::from(a % 2)),
                4 => {
                    // `a` odd: the member knows the lowest epoch it joins at.
                    if a % 2 == 1 {
                        let lowest = current + u64::from(b % 4);
                        inbox.await_welcome_from(lowest);
                        waiting_from = Some(lowest);
                    } else {
                        inbox.await_welcome();
                        waiting_from = None;
                    }
                    waiting = true;
                }
                5 => {
                    inbox.joined_at(current);
                    waiting = false;
                    waiting_from = None;
                }
                _ => inbox.remember([a; 16]),
            }
            assert!(inbox.buffered() <= SLOTS);
        }
    }
);
