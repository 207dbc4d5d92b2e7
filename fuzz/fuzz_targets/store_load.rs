//! Loading a group from stored records (`mls_nostd::store`): any records
//! load or fail with a typed error, never panic, and a failed load leaves the
//! slot empty and inactive; a group that loads saves and loads again to the
//! same epoch and epoch authenticator.
//!
//! Input: `[mode] rest`.
//! - mode 0 (even): `rest` is records as `key (u32) | len (u16) | bytes`, the
//!   store as found after a crash (head included, or not).
//! - mode 1 (odd): `rest` is records as `part (u8) | len (u16) | bytes`, in
//!   order; the target writes them to bank 0 of their part and a head whose
//!   hashes match, so the fuzzer reaches the decoders behind the hash check.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mls_fuzz::*;
use mls_nostd::crypto::CipherSuite;
use mls_nostd::store::{blob_key, recover, Head, Part, PartInfo, Parts, RecordKey, Storage, StorageError, MAX_RECORD_LEN};
use std::collections::BTreeMap;

#[derive(Default)]
struct Map(BTreeMap<RecordKey, Vec<u8>>);

impl Storage for Map {
    fn read<'b>(&mut self, key: RecordKey, buf: &'b mut [u8]) -> Result<Option<&'b [u8]>, StorageError> {
        match self.0.get(&key) {
            None => Ok(None),
            Some(v) => {
                let out = buf.get_mut(..v.len()).ok_or(StorageError::TooLarge)?;
                out.copy_from_slice(v);
                Ok(Some(out))
            }
        }
    }
    fn write(&mut self, key: RecordKey, value: &[u8]) -> Result<(), StorageError> {
        self.0.insert(key, value.to_vec());
        Ok(())
    }
    fn remove(&mut self, key: RecordKey) -> Result<(), StorageError> {
        self.0.remove(&key);
        Ok(())
    }
}

const SLOT: u8 = 0;
const PARTS: [Part; 4] = [Part::Epoch, Part::Proposals, Part::Staged, Part::Ratchets];

fn parse(mut data: &[u8], key_len: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    while data.len() >= key_len + 2 {
        let (k, rest) = data.split_at(key_len);
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        out.push((k.to_vec(), rest[2..2 + len].to_vec()));
        data = &rest[2 + len..];
    }
    out
}

fn build(data: &[u8]) -> Map {
    let mut s = Map::default();
    match data.split_first() {
        Some((m, rest)) if m % 2 == 0 => {
            for (k, v) in parse(rest, 4) {
                s.0.insert(u32::from_be_bytes([k[0], k[1], k[2], k[3]]), v);
            }
        }
        Some((_, rest)) => {
            let mut head = Head::NEW;
            let mut counts = [0u8; 4];
            let mut hashers: Vec<_> = PARTS.iter().map(|_| CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519.hasher()).collect();
            let mut bytes = [0u32; 4];
            for (k, v) in parse(rest, 1) {
                let p = usize::from(k[0] % 4);
                if counts[p] == u8::MAX {
                    continue;
                }
                s.0.insert(blob_key(SLOT, PARTS[p], 0, counts[p]), v.clone());
                hashers[p].update(&v);
                bytes[p] += v.len() as u32;
                counts[p] += 1;
            }
            for (p, h) in hashers.into_iter().enumerate() {
                let mut hash = [0u8; 32];
                hash.copy_from_slice(h.finish().as_bytes());
                head.parts[p] = PartInfo { bank: 0, records: counts[p], bytes: bytes[p], hash };
            }
            head.write(&mut s, SLOT).unwrap();
        }
        None => {}
    }
    s
}

/// Bob's saved group in each world (suites 1 and 2), as both modes.
fn seeds() -> Vec<Vec<u8>> {
    (0..SUITES.len()).flat_map(|world| world_seeds(world)).collect()
}

fn world_seeds(world: usize) -> Vec<Vec<u8>> {
    with_world_in(world, |w| {
        let mut store = Map::default();
        let mut buf = Box::new([0u8; MAX_RECORD_LEN]);
        w.bob.group.save(&mut store, SLOT, Parts::ALL, &mut buf).unwrap();
        let mut raw = vec![0u8];
        for (k, v) in &store.0 {
            raw.extend_from_slice(&k.to_be_bytes());
            raw.extend_from_slice(&(v.len() as u16).to_be_bytes());
            raw.extend_from_slice(v);
        }
        let mut parts = vec![1u8];
        let head = Head::read(&mut store, SLOT, &mut buf[..]).unwrap();
        for (p, part) in PARTS.iter().enumerate() {
            let info = head.part(*part);
            for i in 0..info.records {
                let v = &store.0[&blob_key(SLOT, *part, info.bank, i)];
                parts.push(p as u8);
                parts.extend_from_slice(&(v.len() as u16).to_be_bytes());
                parts.extend_from_slice(v);
            }
        }
        vec![raw, parts]
    })
}

fuzz_target!(
    init: {
        maybe_write_seeds("store_load", seeds);
    },
    |data: &[u8]| {
        let mut s = build(data);
        let mut buf = Box::new([0u8; MAX_RECORD_LEN]);
        let _ = recover(&mut s, SLOT, &mut buf[..]);
        let mut g = Box::new(G::EMPTY);
        if g.load(&mut s, SLOT, &mls_nostd::identity::SAME_CREDENTIAL, &mut buf).is_err() {
            assert!(g.is_inactive(), "a failed load left an active group");
            return;
        }
        let mut again = Map::default();
        g.save(&mut again, SLOT, Parts::ALL, &mut buf).unwrap();
        let mut g2 = Box::new(G::EMPTY);
        g2.load(&mut again, SLOT, &mls_nostd::identity::SAME_CREDENTIAL, &mut buf).unwrap();
        assert_eq!(g2.epoch(), g.epoch());
        assert_eq!(g2.epoch_authenticator(), g.epoch_authenticator());
    }
);
