//! Mounting a flash image as a `FlashSplit` (`mls_nostd::store::flash`):
//! any bytes mount or fail with a typed error, never panic. A store that
//! mounts reads its records, passes them to `read_each`, and takes writes
//! (each that returns `Ok` then read back as written), a removal, a commit
//! point and a scrub, each with a typed error at worst; when all of them
//! return `Ok`, the image mounts again (or, if a torn item hid records of
//! another map that a repair brought back, is refused as another layout)
//! and holds the last values written. (A refused image is not asserted
//! unchanged: `sequential-storage` repairs a page it finds torn as it
//! reads, its recovery after a cut.)
//!
//! Input: the flash image (6 regions of 2 pages of 512 bytes: the rest, the
//! ratchets, the tree), cut or padded with erased bytes to its length.
#![no_main]
use embedded_storage::nor_flash::{ErrorType, MultiwriteNorFlash, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash};
use libfuzzer_sys::fuzz_target;
use mls_fuzz::maybe_write_seeds;
use mls_nostd::store::flash::{FlashConfigError, FlashSplit, SplitRegions};
use mls_nostd::store::{MAX_RECORD_LEN, RecordKey, Storage};

const PAGE: usize = 512;
const REGION: u32 = (2 * PAGE) as u32;
const LEN: usize = 6 * 2 * PAGE;

/// NOR flash in RAM: a write clears bits only; out of range is an error.
struct Flash(Vec<u8>);

#[derive(Debug)]
struct OutOfRange;

impl NorFlashError for OutOfRange {
    fn kind(&self) -> NorFlashErrorKind {
        NorFlashErrorKind::OutOfBounds
    }
}

impl ErrorType for Flash {
    type Error = OutOfRange;
}

impl Flash {
    fn at(&mut self, offset: u32, len: usize) -> Result<&mut [u8], OutOfRange> {
        let start = offset as usize;
        self.0.get_mut(start..start.checked_add(len).ok_or(OutOfRange)?).ok_or(OutOfRange)
    }
}

impl ReadNorFlash for Flash {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), OutOfRange> {
        bytes.copy_from_slice(self.at(offset, bytes.len())?);
        Ok(())
    }
    fn capacity(&self) -> usize {
        self.0.len()
    }
}

impl NorFlash for Flash {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = PAGE;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), OutOfRange> {
        self.at(from, to.checked_sub(from).ok_or(OutOfRange)? as usize)?.fill(0xFF);
        Ok(())
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), OutOfRange> {
        for (m, b) in self.at(offset, bytes.len())?.iter_mut().zip(bytes) {
            *m &= b;
        }
        Ok(())
    }
}

impl MultiwriteNorFlash for Flash {}

/// Passes of 4 keys: a store of a few records takes several.
type Store = FlashSplit<Flash, 4>;

fn regions() -> SplitRegions {
    let two = |i: u32| [2 * i * REGION..(2 * i + 1) * REGION, (2 * i + 1) * REGION..(2 * i + 2) * REGION];
    SplitRegions { rest: two(0), ratchets: two(1), tree: two(2) }
}

/// A head, a secret tree's node and index chunk, a bank's record, a
/// KeyPackage's, ratchet-tree nodes of both versions.
const KEYS: [RecordKey; 7] = [0x0100_0000, 0x0500_0001, 0x0800_8000, 0x0200_0100, 0x0300_0001, 0x0900_0001, 0x0A00_0002];

/// Images of stores our code writes: fresh, with records of every map,
/// with removals (a tombstone in the tree's), after a scrub, and full; and
/// one with items in a page read as open.
fn seeds() -> Vec<Vec<u8>> {
    let mut out = vec![vec![0xFF; LEN]];
    let Ok(mut s) = Store::open(Flash(vec![0xFF; LEN]), regions(), 2) else { return out };
    out.push(s.flash().0.clone());
    for (i, &key) in KEYS.iter().enumerate() {
        let _ = s.write(key, &vec![i as u8; 24 + 8 * i]);
    }
    let _ = s.committed();
    out.push(s.flash().0.clone());
    let _ = s.remove(KEYS[1]);
    let _ = s.remove(KEYS[5]);
    let _ = s.write(KEYS[0], b"head, second version");
    out.push(s.flash().0.clone());
    let _ = s.scrub();
    out.push(s.flash().0.clone());
    for n in 0..40u8 {
        let _ = s.write(0x0500_0100 | u32::from(n), &[n; 100]);
    }
    out.push(s.flash().0.clone());
    // The ratchets' first page copied into the next, whose markers (its
    // first and last byte) stay erased: a page read as open that holds
    // items, as a cut erase can leave it (the crash of December 7, 2026).
    if let Some(image) = out.get(2) {
        let mut planted = image.clone();
        let first = 2 * REGION as usize;
        let items = planted[first + 1..first + PAGE - 1].to_vec();
        planted[first + PAGE + 1..first + 2 * PAGE - 1].copy_from_slice(&items);
        out.push(planted);
    }
    out
}

fuzz_target!(
    init: {
        maybe_write_seeds("flash_mount", seeds);
    },
    |data: &[u8]| {
        let mut image = data.get(..LEN).unwrap_or(data).to_vec();
        image.resize(LEN, 0xFF);
        let Ok(mut s) = Store::new(Flash(image), regions(), 2) else { panic!("the regions are valid") };
        if s.mount().is_err() {
            return;
        }
        let mut buf = vec![0u8; MAX_RECORD_LEN];
        for key in KEYS {
            let _ = s.read(key, &mut buf);
        }
        let mut keys = KEYS.iter().copied();
        let _ = s.read_each(&mut keys, &|_| true, &mut buf, &mut |_, _| Ok(()));
        let value = b"written by the fuzzer";
        let written = [KEYS[0], KEYS[2], KEYS[5]];
        let mut all_ok = true;
        for key in written {
            if s.write(key, value).is_ok() {
                if let Ok(found) = s.read(key, &mut buf) {
                    assert_eq!(found, Some(&value[..]), "a write that returned Ok read back otherwise: {key:08x}");
                }
            } else {
                all_ok = false;
            }
        }
        all_ok &= s.remove(KEYS[1]).is_ok() && s.committed().is_ok() && s.scrub().is_ok();
        if !all_ok {
            return;
        }
        let Ok(mut again) = Store::new(s.into_flash(), regions(), 2) else { panic!("the regions are valid") };
        match again.mount() {
            Ok(()) => {}
            // Records of another map hidden behind a torn item, which a
            // repair during the operations brought back (`sequential-storage`
            // repairs as it reads): the mount's check sees what the map
            // showed it then.
            Err(FlashConfigError::OtherLayout) => return,
            Err(e) => panic!("a store that took every operation does not mount again: {e:?}"),
        }
        for key in written {
            assert_eq!(again.read(key, &mut buf).ok(), Some(Some(&value[..])), "{key:08x} after a remount");
        }
        assert_eq!(again.read(KEYS[1], &mut buf).ok(), Some(None), "a removed record after a remount");
    }
);
