//! The member's flash store on the board, and what the firmware keeps across
//! a reboot.
//!
//! [`RegionFlash`] is NOR-flash behaviour (writes clear bits, erases set a
//! 4 KiB page to `0xFF`) over a memory region that a system reset does not
//! clear: on QEMU's mps2-an386 the upper part of the 4 MiB code SSRAM, which
//! the linker script keeps out of the image. The core's `FlashSplit` runs on
//! it unchanged, as it would on the nRF52840's NVMC.
//!
//! The firmware's own record ([`Resume`]) holds the test report so far, the
//! step to continue with and the device's RNG state and signature key (a
//! product reseeds from its TRNG; the scenario's expected bytes need the same
//! stream).

use board_member::Device;
use embedded_storage::nor_flash::{
    ErrorType, MultiwriteNorFlash, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};
use mls_nostd::crypto::signature::SignaturePrivateKey;
use mls_nostd::store::flash::FlashSplit;
use mls_nostd::store::{RecordKey, Storage, StorageError};

const PAGE: usize = 4096;
/// The firmware's record (outside the core's key space: kind 0x40).
const RESUME_KEY: RecordKey = 0x4000_0000;

/// An access outside the region or misaligned.
#[derive(Debug)]
pub struct OutOfRange;

impl NorFlashError for OutOfRange {
    fn kind(&self) -> NorFlashErrorKind {
        NorFlashErrorKind::OutOfBounds
    }
}

/// NOR-flash semantics over a memory region that survives a reset.
pub struct RegionFlash {
    base: usize,
    len: usize,
}

impl RegionFlash {
    /// # Safety
    ///
    /// `base..base + len` must be memory that nothing else uses (kept out of
    /// the linker's regions), page-aligned, for the whole run.
    pub const unsafe fn new(base: usize, len: usize) -> Self {
        Self { base, len }
    }

    fn check(&self, offset: u32, len: usize) -> Result<usize, OutOfRange> {
        let start = offset as usize;
        match start.checked_add(len) {
            Some(end) if end <= self.len => Ok(self.base + start),
            _ => Err(OutOfRange),
        }
    }
}

impl ErrorType for RegionFlash {
    type Error = OutOfRange;
}

impl ReadNorFlash for RegionFlash {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), OutOfRange> {
        let at = self.check(offset, bytes.len())?;
        for (i, b) in bytes.iter_mut().enumerate() {
            // SAFETY: inside the region (checked), which `new`'s caller owns.
            *b = unsafe { core::ptr::read_volatile((at + i) as *const u8) };
        }
        Ok(())
    }
    fn capacity(&self) -> usize {
        self.len
    }
}

impl NorFlash for RegionFlash {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = PAGE;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), OutOfRange> {
        if from as usize % PAGE != 0 || to as usize % PAGE != 0 || to < from {
            return Err(OutOfRange);
        }
        let at = self.check(from, (to - from) as usize)?;
        for i in 0..(to - from) as usize {
            // SAFETY: as in `read`.
            unsafe { core::ptr::write_volatile((at + i) as *mut u8, 0xFF) };
        }
        Ok(())
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), OutOfRange> {
        if offset as usize % 4 != 0 || bytes.len() % 4 != 0 {
            return Err(OutOfRange);
        }
        let at = self.check(offset, bytes.len())?;
        for (i, b) in bytes.iter().enumerate() {
            let p = (at + i) as *mut u8;
            // SAFETY: as in `read`. NOR flash only clears bits.
            unsafe { core::ptr::write_volatile(p, core::ptr::read_volatile(p) & b) };
        }
        Ok(())
    }
}

impl MultiwriteNorFlash for RegionFlash {}

/// Keys a pass of the store's load and scrub gathers (8 bytes each on the
/// stack): a map of more records takes more passes, each reading it once.
#[cfg(not(feature = "store-keys-256"))]
const STORE_KEYS: usize = 64;
#[cfg(feature = "store-keys-256")]
const STORE_KEYS: usize = 256;

/// The board's store: the ratchet tree's records and the secret trees'
/// each in a map of their own (`FlashSplit`), so that a message's lookups
/// scan only the secret trees' records.
pub type BoardStore = FlashSplit<RegionFlash, STORE_KEYS>;

/// Opens the store over `flash`: its first `rest_len` bytes for the rest
/// (the groups' heads and banks, KeyPackages), the next `ratchets_len` for
/// the secret trees' records, the remainder for the ratchet tree's, each
/// map in two equal halves; the rest and the ratchets (they hold the
/// secrets) are scrubbed every 8 saves. Memory that holds no store and is
/// not erased flash (QEMU's zeroed RAM at the first start) is formatted.
pub fn open(flash: RegionFlash, rest_len: usize, ratchets_len: usize) -> Option<BoardStore> {
    use mls_nostd::store::flash::{FlashConfigError, SplitRegions};
    let halves = |from: usize, len: usize| {
        let half = len / 2 / PAGE * PAGE;
        [from as u32..(from + half) as u32, (from + half) as u32..(from + 2 * half) as u32]
    };
    let tree_len = flash.len.checked_sub(rest_len)?.checked_sub(ratchets_len)?;
    let regions = SplitRegions {
        rest: halves(0, rest_len),
        ratchets: halves(rest_len, ratchets_len),
        tree: halves(rest_len + ratchets_len, tree_len),
    };
    let mut store = FlashSplit::new(flash, regions, 8).ok()?;
    match store.mount() {
        Ok(()) => {}
        // No store, or one of another layout (a firmware before the secret
        // trees' records had a map of their own), whose groups cannot be
        // loaded: the device starts over and joins again, rather than
        // failing at every start.
        Err(FlashConfigError::Unreadable | FlashConfigError::OtherLayout) => {
            out!("flash store: no store of this layout found, formatting");
            store.format().ok()?;
        }
        Err(FlashConfigError::TreeUnreadable) => {
            out!("flash store: no tree map found, formatting it");
            store.format_tree().ok()?;
        }
        Err(_) => return None,
    }
    Some(store)
}

/// What the firmware carries over a reboot.
#[derive(Clone, Debug)]
pub struct Resume {
    /// Cases passed and failed before the reboot.
    pub passed: u32,
    pub failed: u32,
    /// The member step to continue with.
    pub next_step: u32,
    /// The device's RNG state.
    pub rng: u64,
    /// The device's signature key.
    pub signer: Option<SignaturePrivateKey>,
}

const RESUME_LEN: usize = 4 + 4 + 4 + 8 + 1 + 32;

impl Resume {
    /// Reads the record, if any.
    pub fn read(store: &mut BoardStore) -> Result<Option<Self>, StorageError> {
        let mut buf = [0u8; RESUME_LEN];
        let Some(b) = store.read(RESUME_KEY, &mut buf)? else { return Ok(None) };
        if b.len() != RESUME_LEN {
            return Err(StorageError::Corrupted);
        }
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let mut rng = [0u8; 8];
        rng.copy_from_slice(&b[12..20]);
        let signer = match b[20] {
            0 => None,
            _ => Some(SignaturePrivateKey::from_slice(board_member::SUITE, &b[21..53]).map_err(|_| StorageError::Corrupted)?),
        };
        Ok(Some(Self { passed: u32_at(0), failed: u32_at(4), next_step: u32_at(8), rng: u64::from_le_bytes(rng), signer }))
    }

    /// Writes the record.
    pub fn write(&self, store: &mut BoardStore) -> Result<(), StorageError> {
        let mut b = [0u8; RESUME_LEN];
        b[0..4].copy_from_slice(&self.passed.to_le_bytes());
        b[4..8].copy_from_slice(&self.failed.to_le_bytes());
        b[8..12].copy_from_slice(&self.next_step.to_le_bytes());
        b[12..20].copy_from_slice(&self.rng.to_le_bytes());
        if let Some(s) = &self.signer {
            b[20] = 1;
            b[21..53].copy_from_slice(s.as_bytes());
        }
        store.write(RESUME_KEY, &b)
    }

    /// The device as it was.
    pub fn device(&self) -> Device {
        Device::resume(self.rng, self.signer.clone())
    }
}
