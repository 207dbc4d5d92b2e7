//! [`Storage`] on NOR flash (`embedded-storage`), built on `sequential-storage`'s
//! map (CRC per item, append-only: a single-item write is atomic).
//!
//! Two equal regions, A and B; one is active and holds the map. Because
//! `sequential-storage` leaves removed items readable until their page is
//! erased, a *scrub* moves every live record into the other region (erased
//! first), writes a marker with the next generation there (the scrub's commit
//! point), then erases the old region. At start-up the region whose marker has
//! the higher generation wins and the other is erased, so a cut anywhere in a
//! scrub loses nothing and leaves no old record behind. A page of the winner
//! that `sequential-storage` reads as open but that is not erased (a cut
//! erase) is erased too: the crate would read the items left there.
//!
//! **Forward-secure erase bound**: a removed or replaced record is physically
//! gone after at most `scrub_every` further commit points
//! ([`Storage::committed`], one per save). (A start-up erases only what an
//! unfinished scrub left in the other region, and open pages that are not
//! erased, which hold no record.)
//!
//! [`FlashSplit`] keeps three such maps on one flash: the ratchet tree's
//! records, the secret trees' records (the *ratchets*) and the rest, so
//! that the lookups, removals and read-backs of a message (each a scan of
//! its map) pass only the secret trees' records. The bound holds for the
//! rest and the ratchets, which hold every secret; the tree's records are
//! public, and their map is compacted only when full. A removal there
//! writes a *tombstone* (an empty item, which reads as no record and which
//! a scrub drops): `sequential-storage`'s own removal reads every item of
//! the map to mark each copy, and the tree's map is the large one. (For the
//! secret trees' records, tombstones cost more than they save: the copies
//! that `remove_item` marks are skipped by every later lookup, where a
//! tombstone and the versions it hides are read until the next scrub.
//! Measured December 7 on the stored 1,024-leaf member, with those records
//! still in the rest: a Commit's save cost 0.6% less and the first message
//! after it 6% more.)
//!
//! Mitigations for `sequential-storage` issue #136 (docs/architecture.md,
//! "Flash persistence"): the flash is
//! presented to it with a write size of at least 4 bytes, and every store is
//! read back (uncached) and compared. [`FlashSplit`]'s ratchets read the
//! stores of a secret tree's nodes and skipped keys (records no other
//! record lists: `store::ratchets::is_unlisted`) back in batches: those
//! between two other operations of the ratchets or the rest (a read, a
//! removal, any other store, the commit point, a scrub) are checked
//! together before that operation runs, with one pass over the map for all
//! of them instead of a lookup each (each lookup scans the map's newest
//! page, and a message's first ratchets write a dozen records). So no commit point, no removal and no
//! record that lists others follows a store that did not read back: the
//! operation fails with [`StorageError::ReadBack`] instead (even when it
//! is the next save's, after a save that failed for another reason).

use zeroize::Zeroize;
use super::{EachRecord, KIND_RTREE_NODE, KIND_TREE_AUX, KIND_TREE_NODE, MAX_RECORD_LEN, RecordKey, Storage, StorageError, StoreError};
use core::cell::RefCell;
use core::future::Future;
use core::ops::Range;
use core::pin::pin;
use core::task::{Context, Poll, Waker};
use embedded_storage::nor_flash::{MultiwriteNorFlash, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash};
use sequential_storage::cache::{Cache, Uncached};
use sequential_storage::map::{MapConfig, MapStorage};

/// `sequential-storage`'s cache of nothing (each lookup scans the map).
type NoCache = Cache<Uncached, Uncached, Uncached, u32>;

/// The key of a region's generation marker (no record of the core uses it).
const MARKER: RecordKey = u32::MAX;
/// Bytes of work buffer: key, value, word padding.
const WORK_LEN: usize = MAX_RECORD_LEN + 16;
/// Stores a batch reads back at most: a message's first ratchets are about
/// a dozen records at 1,024 leaves (its sender's leaf, its path's siblings).
const BATCH: usize = 16;
const _: () = assert!(BATCH <= 32, "a batch's read-back marks its keys in a u32");

/// What a batched store is read back against: a 32-bit FNV-1a digest of
/// the value and its length. It tells the value written from an older
/// version of the record (the failure the read-back guards against, itself
/// rare: issue #136 was not seen with 4-byte words) but for a chance of
/// 2^-32; the flash is the device's own, not an adversary's.
fn digest(value: &[u8]) -> u32 {
    let start = 0x811c_9dc5u32 ^ value.len() as u32;
    value.iter().fold(start, |h, &b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

/// Runs a future that never waits (our flash adapter is synchronous).
fn block_on<F: Future>(f: F) -> Option<F::Output> {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    // Synchronous flash completes on the first poll; allow a few for safety.
    for _ in 0..1024 {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return Some(v);
        }
    }
    None
}

/// A blocking `NorFlash` seen as `sequential-storage`'s async one, with a
/// write size of at least 4 bytes (issue #136 mitigation). It reaches the
/// flash through a `RefCell`, so that a scrub's two maps (the region read,
/// the region written) can share it, one operation at a time.
struct Async<'c, 'f, F>(&'c RefCell<&'f mut F>);

impl<F: NorFlash> Async<'_, '_, F> {
    const WRITE: usize = if F::WRITE_SIZE < 4 { 4 } else { F::WRITE_SIZE };

    /// Runs `op` on the flash: [`AccessError::Busy`] if another map's
    /// operation holds it (none does: a synchronous flash completes each
    /// operation before the next begins).
    fn with<R>(&self, op: impl FnOnce(&mut F) -> Result<R, F::Error>) -> Result<R, AccessError<F::Error>> {
        let mut flash = self.0.try_borrow_mut().map_err(|_| AccessError::Busy)?;
        op(&mut flash).map_err(AccessError::Flash)
    }
}

/// A flash error, or the flash in use ([`Async::with`]).
#[derive(Debug)]
enum AccessError<E> {
    Flash(E),
    Busy,
}

impl<E: NorFlashError> NorFlashError for AccessError<E> {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            Self::Flash(e) => e.kind(),
            Self::Busy => NorFlashErrorKind::Other,
        }
    }
}

impl<F: NorFlash> embedded_storage_async::nor_flash::ErrorType for Async<'_, '_, F> {
    type Error = AccessError<F::Error>;
}

/// A future that is ready at once. Unlike `async fn` bodies and
/// `core::future::Ready`, polling it again after completion yields `Pending`
/// instead of panicking: no panic path (boards/panic-paths.sh).
struct Now<T>(Option<T>);

// The value is moved out, never pinned in place.
impl<T> Unpin for Now<T> {}

impl<T> Future for Now<T> {
    type Output = T;
    fn poll(self: core::pin::Pin<&mut Self>, _: &mut Context<'_>) -> Poll<T> {
        match self.get_mut().0.take() {
            Some(v) => Poll::Ready(v),
            None => Poll::Pending,
        }
    }
}

impl<F: NorFlash> embedded_storage_async::nor_flash::ReadNorFlash for Async<'_, '_, F> {
    const READ_SIZE: usize = F::READ_SIZE;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> impl Future<Output = Result<(), Self::Error>> {
        Now(Some(self.with(|f| f.read(offset, bytes))))
    }
    fn capacity(&self) -> usize {
        self.0.try_borrow().map_or(0, |f| f.capacity())
    }
}

impl<F: NorFlash> embedded_storage_async::nor_flash::NorFlash for Async<'_, '_, F> {
    const WRITE_SIZE: usize = Self::WRITE;
    const ERASE_SIZE: usize = F::ERASE_SIZE;
    fn erase(&mut self, from: u32, to: u32) -> impl Future<Output = Result<(), Self::Error>> {
        Now(Some(self.with(|f| f.erase(from, to))))
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> impl Future<Output = Result<(), Self::Error>> {
        Now(Some(self.with(|f| f.write(offset, bytes))))
    }
}

impl<F: MultiwriteNorFlash> embedded_storage_async::nor_flash::MultiwriteNorFlash for Async<'_, '_, F> {}

/// The map of `region` on `flash`, uncached.
fn map<'c, 'f, F: MultiwriteNorFlash>(
    flash: &'c RefCell<&'f mut F>,
    region: Range<u32>,
) -> Result<MapStorage<u32, Async<'c, 'f, F>, NoCache>, StorageError> {
    let config = MapConfig::try_new(region).map_err(|_| StorageError::Corrupted)?;
    Ok(MapStorage::new(Async(flash), config, Cache::new_uncached()))
}

/// Stores `key` in `map`, not read back.
fn append<F: MultiwriteNorFlash>(
    map: &mut MapStorage<u32, Async<'_, '_, F>, NoCache>,
    work: &mut [u8],
    key: RecordKey,
    value: &[u8],
) -> Result<(), StorageError> {
    block_on(map.store_item(work, &key, &value)).ok_or(StorageError::Io)?.map_err(map_error)
}

/// Stores `key` in `map` and reads it back (uncached): a store that
/// reported success must be visible.
fn store_checked<F: MultiwriteNorFlash>(
    map: &mut MapStorage<u32, Async<'_, '_, F>, NoCache>,
    work: &mut [u8],
    key: RecordKey,
    value: &[u8],
) -> Result<(), StorageError> {
    append(map, work, key, value)?;
    let back = block_on(map.fetch_item::<&[u8]>(work, &key)).ok_or(StorageError::Io)?.map_err(map_error)?;
    if back != Some(value) {
        return Err(StorageError::ReadBack);
    }
    Ok(())
}

/// What [`each_item`] calls with each item: its key, its bytes.
type EachItem<'a, E> = dyn FnMut(RecordKey, &[u8]) -> Result<(), E> + 'a;

/// Calls `f` with every item of `region`, oldest first: each version of a
/// key, its live item last (`sequential-storage`'s `fetch_all_items`).
fn each_item<F: MultiwriteNorFlash, E: From<StorageError>>(
    flash: &RefCell<&mut F>,
    region: Range<u32>,
    work: &mut [u8],
    f: &mut EachItem<'_, E>,
) -> Result<(), E> {
    let mut from = map(flash, region)?;
    let mut iter = block_on(from.fetch_all_items(work)).ok_or(StorageError::Io)?.map_err(map_error)?;
    while let Some((key, value)) = block_on(iter.next::<&[u8]>(work)).ok_or(StorageError::Io)?.map_err(map_error)? {
        f(key, value)?;
    }
    Ok(())
}

/// Calls `f` with the live item of each of `keys` (from [`Gather`]: a
/// key and the position of its live item), in one pass over `region`'s
/// items: no lookup by key. A live item that is a tombstone (`tombstones`:
/// an empty item is a removed record) is skipped. The same pass feeds
/// every item to `gather`, if given.
fn visit_live<F: MultiwriteNorFlash, E: From<StorageError>, const KEYS: usize>(
    flash: &RefCell<&mut F>,
    region: Range<u32>,
    work: &mut [u8],
    keys: &[(RecordKey, u32)],
    tombstones: bool,
    mut gather: Option<&mut Gather<'_, KEYS>>,
    mut f: impl FnMut(RecordKey, &[u8]) -> Result<(), E>,
) -> Result<(), E> {
    let mut position = 0u32;
    each_item(flash, region, work, &mut |key, value| {
        let at_item = position;
        position = position.wrapping_add(1);
        if let Some(g) = gather.as_deref_mut() {
            g.see(key, at_item);
        }
        let live = keys.binary_search_by(|(k, _)| key.cmp(k)).ok().and_then(|at| keys.get(at)).is_some_and(|e| e.1 == at_item);
        if live && !(tombstones && value.is_empty()) { f(key, value) } else { Ok(()) }
    })
}

/// The (at most `KEYS`) largest keys below `below` that `wanted` accepts,
/// largest first, the marker's aside, each with the position of its live
/// item among the region's items, gathered item by item over one pass. An
/// item may appear in several versions; the live one is the last
/// (`sequential-storage`'s `fetch_all_items`). Once the list is full its
/// smallest key only grows, so a key it holds was followed from its first
/// version on.
struct Gather<'w, const KEYS: usize> {
    keys: heapless::Vec<(RecordKey, u32), KEYS>,
    below: Option<RecordKey>,
    wanted: &'w dyn Fn(RecordKey) -> bool,
}

impl<'w, const KEYS: usize> Gather<'w, KEYS> {
    fn new(below: Option<RecordKey>, wanted: &'w dyn Fn(RecordKey) -> bool) -> Self {
        Self { keys: heapless::Vec::new(), below, wanted }
    }

    fn see(&mut self, key: RecordKey, at_item: u32) {
        if key == MARKER || self.below.is_some_and(|b| key >= b) || !(self.wanted)(key) {
            return;
        }
        let keys = &mut self.keys;
        let at = match keys.binary_search_by(|(k, _)| key.cmp(k)) {
            Ok(at) => {
                if let Some(entry) = keys.get_mut(at) {
                    entry.1 = at_item;
                }
                return;
            }
            Err(at) => at,
        };
        if keys.is_full() {
            if at == keys.len() {
                return;
            }
            keys.pop();
        }
        // Room was made (or there was room): this cannot fail.
        let _ = keys.insert(at, (key, at_item));
    }
}

/// Why opening a flash store failed.
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlashConfigError {
    /// A region is not page-aligned, has fewer than 2 pages, or the regions overlap.
    BadRegions,
    /// The flash's write size does not divide 4 bytes (or exceeds what
    /// `sequential-storage` supports).
    UnsupportedWriteSize,
    /// The flash failed while opening.
    Storage(StorageError),
    /// Neither region holds a store and at least one could not be read:
    /// nothing is erased or formatted; [`FlashStorage::format`] starts over
    /// if intended. (As anything that reads the map, the mount lets
    /// `sequential-storage` repair a page it finds torn, its recovery from a
    /// cut: on flash of another use that may rewrite a page.)
    Unreadable,
    /// A [`FlashSplit`]'s rest and ratchets mounted, but neither region of
    /// its tree's map holds a store and one could not be read: the tree's
    /// regions are not erased (but for a repair, as with `Unreadable`);
    /// [`FlashSplit::format_tree`] starts the tree's map over.
    TreeUnreadable,
    /// A map of a [`FlashSplit`] holds records of another of its maps: the
    /// flash holds a store of another layout (a [`FlashStorage`]'s, or a
    /// split of two maps, before December 7, 2026), whose groups a
    /// `FlashSplit` cannot load. Nothing is erased or formatted (but for a
    /// repair, as with `Unreadable`, and a page a found map reads as open
    /// but that is not erased: it holds no record in any layout, the pages
    /// being the flash's erase pages); [`FlashSplit::format`] starts over.
    /// (The check sees what each map shows at the mount: records behind a
    /// torn item are seen only once a repair brings them back.)
    OtherLayout,
}

impl core::fmt::Display for FlashConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BadRegions => f.write_str("flash regions not page-aligned, under 2 pages, or overlapping"),
            Self::UnsupportedWriteSize => f.write_str("flash write size unsupported (must divide 4 bytes)"),
            Self::Storage(e) => write!(f, "flash failed while opening: {e}"),
            Self::Unreadable => f.write_str("no store found and a region is unreadable (nothing erased)"),
            Self::TreeUnreadable => {
                f.write_str("the ratchet tree's map holds no store and a region of it is unreadable (nothing erased)")
            }
            Self::OtherLayout => {
                f.write_str("the flash holds a store of another layout (one map, or a split of two), not a split of three: format it to start over (no record erased)")
            }
        }
    }
}

impl core::error::Error for FlashConfigError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Storage(e) => Some(e),
            _ => None,
        }
    }
}

/// The generation marker of a region: `Ok(None)` if the region holds no
/// marker (erased, or a scrub that never finished), an error if unreadable.
fn read_marker<F: MultiwriteNorFlash>(flash: &mut F, region: Range<u32>, work: &mut [u8]) -> Result<Option<u32>, StorageError> {
    let flash = RefCell::new(flash);
    let mut map = map(&flash, region)?;
    let found = block_on(map.fetch_item::<&[u8]>(work, &MARKER)).ok_or(StorageError::Io)?.map_err(map_error)?;
    match found {
        None => Ok(None),
        Some(v) => Ok(Some(u32::from_be_bytes(v.try_into().map_err(|_| StorageError::Corrupted)?))),
    }
}

/// `sequential-storage`'s page state, read as it reads it (8.0,
/// `get_page_state`): a marker is the first and the last `READ_SIZE` bytes
/// of the page, written when at least 4 of their bits are 0. `true` if
/// neither is (an open page).
fn is_open_page<F: MultiwriteNorFlash>(flash: &mut F, page: Range<u32>, work: &mut [u8]) -> Result<bool, StorageError> {
    let n = u32::try_from(F::READ_SIZE).map_err(|_| StorageError::Io)?;
    let buf = work.get_mut(..F::READ_SIZE).ok_or(StorageError::Io)?;
    for at in [page.start, page.end.checked_sub(n).ok_or(StorageError::Io)?] {
        flash.read(at, buf).map_err(|_| StorageError::Io)?;
        if buf.iter().map(|b| b.count_zeros()).sum::<u32>() >= 4 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether every byte of `range` reads 0xFF (read through `work`).
fn is_erased<F: MultiwriteNorFlash>(flash: &mut F, range: Range<u32>, work: &mut [u8]) -> Result<bool, StorageError> {
    // Whole reads of READ_SIZE: ERASE_SIZE is a multiple of it.
    let chunk = work.len() - work.len() % F::READ_SIZE.max(1);
    let mut at = range.start;
    while at < range.end {
        let len = chunk.min(usize::try_from(range.end - at).map_err(|_| StorageError::Io)?);
        let buf = work.get_mut(..len).ok_or(StorageError::Io)?;
        if len == 0 {
            return Err(StorageError::Io);
        }
        flash.read(at, buf).map_err(|_| StorageError::Io)?;
        if buf.iter().any(|&b| b != 0xFF) {
            return Ok(false);
        }
        at = at.checked_add(u32::try_from(len).map_err(|_| StorageError::Io)?).ok_or(StorageError::Io)?;
    }
    Ok(true)
}

fn map_error<E>(e: sequential_storage::Error<E>) -> StorageError {
    match e {
        sequential_storage::Error::FullStorage => StorageError::Full,
        sequential_storage::Error::Corrupted { .. } => StorageError::Corrupted,
        // ItemTooBig: a record longer than a page holds (MLS_NOSTD_MAX_RECORD_LEN
        // set past what the flash's pages take).
        sequential_storage::Error::BufferTooSmall(_)
        | sequential_storage::Error::BufferTooBig
        | sequential_storage::Error::ItemTooBig => StorageError::TooLarge,
        _ => StorageError::Io,
    }
}

/// One map of records in two regions of a flash (see the module docs): the
/// regions, the active one's generation, the scrub's count. Its owner
/// ([`FlashStorage`]: one map; [`FlashSplit`]: three) lends it the flash and
/// the work buffer for each operation. Each store is read back at once
/// (for reading back in batches: [`Batched`]).
#[derive(Debug)]
struct Regions<const KEYS: usize> {
    regions: [Range<u32>; 2],
    active: usize,
    generation: u32,
    scrub_every: u32,
    since_scrub: u32,
    /// A removal writes an empty item (a tombstone) instead of
    /// `sequential-storage`'s `remove_item`, which reads every item of
    /// the map (at 1,024 leaves a tree's map holds about 800: 8.6 M
    /// instructions a removal on the Cortex-M4). Only for a map no record
    /// of which is empty: [`FlashSplit`]'s tree map. A scrub drops them.
    tombstones: bool,
}

impl<const KEYS: usize> Regions<KEYS> {
    /// A scrub's pass gathers at least one key.
    const SOME_KEYS: () = assert!(KEYS >= 1, "FlashStorage needs KEYS >= 1");

    /// Checks `region_a` and `region_b` for `F` (not yet mounted).
    fn new<F: MultiwriteNorFlash>(region_a: Range<u32>, region_b: Range<u32>, scrub_every: u32) -> Result<Self, FlashConfigError> {
        let () = Self::SOME_KEYS;
        if !(4 % F::WRITE_SIZE == 0 || F::WRITE_SIZE % 4 == 0) {
            return Err(FlashConfigError::UnsupportedWriteSize);
        }
        for r in [&region_a, &region_b] {
            if MapConfig::<Async<'_, '_, F>>::try_new(r.clone()).is_err() {
                return Err(FlashConfigError::BadRegions);
            }
        }
        if overlap(&region_a, &region_b) {
            return Err(FlashConfigError::BadRegions);
        }
        Ok(Self {
            regions: [region_a, region_b],
            active: 0,
            generation: 0,
            scrub_every: scrub_every.max(1),
            since_scrub: 0,
            tombstones: false,
        })
    }

    /// [`FlashConfigError::OtherLayout`] if the map holds a record of
    /// another of a [`FlashSplit`]'s maps than `map`.
    fn refuse_strays<F: MultiwriteNorFlash>(&self, flash: &mut F, work: &mut [u8], map: Map) -> Result<(), FlashConfigError> {
        let stray = self.next_keys::<F>(flash, work, None, &|k| !map.holds(k)).map_err(FlashConfigError::Storage)?;
        if stray.is_empty() { Ok(()) } else { Err(FlashConfigError::OtherLayout) }
    }

    fn overlaps(&self, other: &Self) -> bool {
        self.regions.iter().any(|a| other.regions.iter().any(|b| overlap(a, b)))
    }

    /// Finds the map on the flash (see [`FlashStorage::open`]).
    fn mount<F: MultiwriteNorFlash>(&mut self, flash: &mut F, work: &mut [u8]) -> Result<(), FlashConfigError> {
        let found = self.find(flash, work)?;
        self.settle(flash, work, found)
    }

    /// Finds the active region by its generation marker, changing nothing
    /// but a repair (of `sequential-storage`'s, and
    /// [`Self::sweep_open_pages`]): `true` if a map is there, `false` if
    /// neither region holds a marker (erased flash, for [`Self::settle`] to
    /// format).
    fn find<F: MultiwriteNorFlash>(&mut self, flash: &mut F, work: &mut [u8]) -> Result<bool, FlashConfigError> {
        let mut markers = [Ok(None), Ok(None)];
        for (i, m) in markers.iter_mut().enumerate() {
            *m = read_marker(flash, self.region(i), work);
        }
        match markers {
            [Ok(Some(a)), Ok(Some(b))] => {
                // Both complete: the newer wins (a cut during the old one's erase).
                self.active = usize::from(b > a);
                self.generation = a.max(b);
            }
            [Ok(Some(a)), _] => {
                self.active = 0;
                self.generation = a;
            }
            [_, Ok(Some(b))] => {
                self.active = 1;
                self.generation = b;
            }
            [Ok(None), Ok(None)] => return Ok(false),
            _ => return Err(FlashConfigError::Unreadable),
        }
        self.sweep_open_pages(flash, work).map_err(FlashConfigError::Storage)?;
        Ok(true)
    }

    /// Erases each page of the active region that `sequential-storage`
    /// reads as open (neither marker written, so by its rules a page that
    /// holds nothing) but that is not erased: what a cut erase can leave.
    /// `sequential-storage` 8 trusts an open page to be erased: it writes
    /// into one without erasing it, and its `fetch_all_items` starts at one
    /// without checking its state, so items left there would come back
    /// (a removed record among them, found by the `flash_mount` fuzz
    /// target). Erasing a page that holds nothing changes no record.
    fn sweep_open_pages<F: MultiwriteNorFlash>(&self, flash: &mut F, work: &mut [u8]) -> Result<(), StorageError> {
        let region = self.region(self.active);
        // `Regions::new` checked the region: whole pages of ERASE_SIZE.
        let page = u32::try_from(F::ERASE_SIZE).map_err(|_| StorageError::Io)?;
        let mut at = region.start;
        while at < region.end {
            let end = at.checked_add(page).ok_or(StorageError::Io)?;
            if is_open_page(flash, at..end, work)? && !is_erased(flash, at..end, work)? {
                flash.erase(at, end).map_err(|_| StorageError::Io)?;
            }
            at = end;
        }
        Ok(())
    }

    /// After [`Self::find`]: formats a map not `found`, and erases the
    /// other region of one found.
    fn settle<F: MultiwriteNorFlash>(&mut self, flash: &mut F, work: &mut [u8], found: bool) -> Result<(), FlashConfigError> {
        if !found {
            return self.format(flash, work);
        }
        // Whatever the other region holds (an unfinished scrub, or old
        // records whose erase was cut) is garbage: erase it now.
        self.erase_region(flash, self.active ^ 1).map_err(FlashConfigError::Storage)
    }

    /// Erases both regions and starts an empty map.
    fn format<F: MultiwriteNorFlash>(&mut self, flash: &mut F, work: &mut [u8]) -> Result<(), FlashConfigError> {
        self.erase_region(flash, 1).map_err(FlashConfigError::Storage)?;
        self.erase_region(flash, 0).map_err(FlashConfigError::Storage)?;
        self.active = 0;
        self.generation = 1;
        self.put(flash, work, 0, MARKER, &1u32.to_be_bytes()).map_err(FlashConfigError::Storage)
    }

    fn region(&self, i: usize) -> Range<u32> {
        self.regions.get(i).cloned().unwrap_or(0..0)
    }

    fn erase_region<F: MultiwriteNorFlash>(&self, flash: &mut F, i: usize) -> Result<(), StorageError> {
        let r = self.region(i);
        flash.erase(r.start, r.end).map_err(|_| StorageError::Io)
    }

    /// Stores into region `i` and reads it back.
    fn put<F: MultiwriteNorFlash>(&self, flash: &mut F, work: &mut [u8], i: usize, key: RecordKey, value: &[u8]) -> Result<(), StorageError> {
        let flash = RefCell::new(flash);
        store_checked(&mut map(&flash, self.region(i))?, work, key, value)
    }

    /// [`FlashStorage::scrub`].
    fn scrub<F: MultiwriteNorFlash>(&mut self, flash: &mut F, work: &mut [u8]) -> Result<(), StorageError> {
        let target = self.active ^ 1;
        self.erase_region(flash, target)?;
        // The target map's work buffer (the active one's is `work`).
        let mut spare = [0u8; WORK_LEN];
        let mut below = None;
        let copied = loop {
            let pass = match self.next_keys(flash, work, below, &|_| true) {
                Ok(pass) => pass,
                Err(e) => break Err(e),
            };
            match (self.copy_live(flash, work, target, &pass, &mut spare), pass.last()) {
                (Err(e), _) => break Err(e),
                // A pass that found fewer keys than it holds found the last.
                (Ok(()), Some(&(last, _))) if pass.is_full() => below = Some(last),
                (Ok(()), _) => break Ok(()),
            }
        };
        // Plaintext records: wiped whether or not the copy finished.
        spare.zeroize();
        work.zeroize();
        copied?;
        let next = self.generation.wrapping_add(1);
        self.put(flash, work, target, MARKER, &next.to_be_bytes())?;
        // Committed: the new region wins from here on.
        let old = self.active;
        self.active = target;
        self.generation = next;
        self.since_scrub = 0;
        self.erase_region(flash, old)
    }

    /// The [`Gather`] of the active region's keys below `below` that
    /// `wanted` accepts: one pass.
    fn next_keys<F: MultiwriteNorFlash>(
        &self,
        flash: &mut F,
        work: &mut [u8],
        below: Option<RecordKey>,
        wanted: &dyn Fn(RecordKey) -> bool,
    ) -> Result<heapless::Vec<(RecordKey, u32), KEYS>, StorageError> {
        let mut gather = Gather::<KEYS>::new(below, wanted);
        let mut position = 0u32;
        each_item::<F, StorageError>(&RefCell::new(flash), self.region(self.active), work, &mut |key, _| {
            gather.see(key, position);
            position = position.wrapping_add(1);
            Ok(())
        })?;
        Ok(gather.keys)
    }

    /// Copies the live items of `keys` (from [`Self::next_keys`]) from the
    /// active region into region `target`.
    fn copy_live<F: MultiwriteNorFlash>(
        &self,
        flash: &mut F,
        work: &mut [u8],
        target: usize,
        keys: &[(RecordKey, u32)],
        spare: &mut [u8],
    ) -> Result<(), StorageError> {
        let (from, to) = (self.region(self.active), self.region(target));
        let flash = RefCell::new(flash);
        let mut to = map(&flash, to)?;
        visit_live::<F, StorageError, KEYS>(&flash, from, work, keys, self.tombstones, None, |key, value| {
            store_checked(&mut to, spare, key, value)
        })
    }

    /// [`Storage::read_each`] in passes of up to `KEYS` keys, the active
    /// region read once a pass and once more (no lookup by key); with two
    /// lists of keys on the stack.
    fn read_each_live<F: MultiwriteNorFlash>(
        &mut self,
        flash: &mut F,
        work: &mut [u8],
        wanted: &dyn Fn(RecordKey) -> bool,
        f: &mut EachRecord<'_>,
    ) -> Result<(), StoreError> {
        // Each pass over the region visits the keys the one before gathered
        // and gathers the next ones: one pass more than the passes of keys
        // (there were two a pass of keys).
        let mut pass = self.next_keys(flash, work, None, wanted)?;
        loop {
            if pass.is_empty() {
                return Ok(());
            }
            let below = pass.last().filter(|_| pass.is_full()).map(|&(k, _)| k);
            let mut gather = below.map(|b| Gather::<KEYS>::new(Some(b), wanted));
            let cell = RefCell::new(&mut *flash);
            visit_live(&cell, self.region(self.active), work, &pass, self.tombstones, gather.as_mut(), &mut *f)?;
            match gather {
                Some(g) => pass = g.keys,
                None => return Ok(()),
            }
        }
    }

    /// Copies record `key` into `out`; returns its length.
    fn fetch<F: MultiwriteNorFlash>(&mut self, flash: &mut F, work: &mut [u8], key: RecordKey, out: &mut [u8]) -> Result<Option<usize>, StorageError> {
        let flash = RefCell::new(flash);
        let mut map = map(&flash, self.region(self.active))?;
        let found = block_on(map.fetch_item::<&[u8]>(work, &key)).ok_or(StorageError::Io)?.map_err(map_error)?;
        let Some(v) = found.filter(|v| !(self.tombstones && v.is_empty())) else { return Ok(None) };
        out.get_mut(..v.len()).ok_or(StorageError::TooLarge)?.copy_from_slice(v);
        Ok(Some(v.len()))
    }

    /// [`Storage::write`]: a full region is scrubbed (removed items fill it)
    /// and the write tried again.
    fn write<F: MultiwriteNorFlash>(&mut self, flash: &mut F, work: &mut [u8], key: RecordKey, value: &[u8]) -> Result<(), StorageError> {
        match self.put(flash, work, self.active, key, value) {
            Err(StorageError::Full) => {
                self.scrub(flash, work)?;
                self.put(flash, work, self.active, key, value)
            }
            other => other,
        }
    }

    /// Stores into the active region, not read back: a full region is
    /// scrubbed and the store tried again ([`Batched`] reads its batch back
    /// before the scrub, in `before_scrub`).
    fn append<F: MultiwriteNorFlash>(
        &mut self,
        flash: &mut F,
        work: &mut [u8],
        key: RecordKey,
        value: &[u8],
        before_scrub: impl FnOnce(&Self, &mut F, &mut [u8]) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let once = |regions: &Self, flash: &mut F, work: &mut [u8]| append(&mut map(&RefCell::new(flash), regions.region(regions.active))?, work, key, value);
        match once(self, flash, work) {
            Err(StorageError::Full) => {
                before_scrub(self, flash, work)?;
                self.scrub(flash, work)?;
                once(self, flash, work)
            }
            other => other,
        }
    }

    fn remove<F: MultiwriteNorFlash>(&mut self, flash: &mut F, work: &mut [u8], key: RecordKey) -> Result<(), StorageError> {
        if self.tombstones {
            return self.write(flash, work, key, &[]);
        }
        let flash = RefCell::new(flash);
        let mut map = map(&flash, self.region(self.active))?;
        block_on(map.remove_item(work, &key)).ok_or(StorageError::Io)?.map_err(map_error)
    }

    /// [`Storage::committed`]: a scrub every `scrub_every` commit points.
    fn committed<F: MultiwriteNorFlash>(&mut self, flash: &mut F, work: &mut [u8]) -> Result<(), StorageError> {
        self.since_scrub = self.since_scrub.saturating_add(1);
        if self.since_scrub >= self.scrub_every { self.scrub(flash, work) } else { Ok(()) }
    }
}

/// A map whose records no other record lists (a secret tree's node and
/// skipped-key records: [`super::ratchets::is_unlisted`]) are read back in
/// batches ([`FlashSplit`]'s ratchets; see the module docs): the batch is
/// read back before any other operation of the map, and once full. Only
/// for a map whose records a scrub keeps few, since a batch's pass reads
/// every item of the region.
#[derive(Debug)]
struct Batched<const KEYS: usize> {
    map: Regions<KEYS>,
    /// The batch: stores not yet read back, each key once with the digest
    /// of its last value.
    unread: heapless::Vec<(RecordKey, u32), BATCH>,
}

impl<const KEYS: usize> Batched<KEYS> {
    fn format<F: MultiwriteNorFlash>(&mut self, flash: &mut F, work: &mut [u8]) -> Result<(), FlashConfigError> {
        self.unread.clear();
        self.map.format(flash, work)
    }

    /// A store the copy would miss is found before the old region goes.
    fn scrub<F: MultiwriteNorFlash>(&mut self, flash: &mut F, work: &mut [u8]) -> Result<(), StorageError> {
        self.read_back(flash, work)?;
        self.map.scrub(flash, work)
    }

    fn read_each_live<F: MultiwriteNorFlash>(
        &mut self,
        flash: &mut F,
        work: &mut [u8],
        wanted: &dyn Fn(RecordKey) -> bool,
        f: &mut EachRecord<'_>,
    ) -> Result<(), StoreError> {
        self.read_back(flash, work)?;
        self.map.read_each_live(flash, work, wanted, f)
    }

    fn fetch<F: MultiwriteNorFlash>(&mut self, flash: &mut F, work: &mut [u8], key: RecordKey, out: &mut [u8]) -> Result<Option<usize>, StorageError> {
        self.read_back(flash, work)?;
        self.map.fetch(flash, work, key, out)
    }

    /// [`Storage::write`]: a record no other lists joins the batch; any
    /// other (an index) is written after the batch read back, and read
    /// back itself at once.
    fn write<F: MultiwriteNorFlash>(&mut self, flash: &mut F, work: &mut [u8], key: RecordKey, value: &[u8]) -> Result<(), StorageError> {
        if !super::ratchets::is_unlisted(key) {
            self.read_back(flash, work)?;
            return self.map.write(flash, work, key, value);
        }
        let unread = &mut self.unread;
        self.map.append(flash, work, key, value, |regions, flash, work| Self::check(unread, regions, flash, work))?;
        let d = digest(value);
        match self.unread.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = d,
            // Never full here: a full batch is read back below.
            None => self.unread.push((key, d)).map_err(|_| StorageError::ReadBack)?,
        }
        if self.unread.is_full() { self.read_back(flash, work) } else { Ok(()) }
    }

    fn remove<F: MultiwriteNorFlash>(&mut self, flash: &mut F, work: &mut [u8], key: RecordKey) -> Result<(), StorageError> {
        self.read_back(flash, work)?;
        self.map.remove(flash, work, key)
    }

    /// The commit point counts toward the next scrub even when the batch
    /// does not read back (the head is written by then): the erase bound
    /// holds.
    fn committed<F: MultiwriteNorFlash>(&mut self, flash: &mut F, work: &mut [u8]) -> Result<(), StorageError> {
        let back = self.read_back(flash, work);
        let counted = self.map.committed(flash, work);
        back.and(counted)
    }

    /// Reads the batch back (and empties it).
    fn read_back<F: MultiwriteNorFlash>(&mut self, flash: &mut F, work: &mut [u8]) -> Result<(), StorageError> {
        Self::check(&mut self.unread, &self.map, flash, work)
    }

    /// Reads `unread` back from `regions` and empties it: a lookup for one
    /// store, one pass over the region for more. Each key's live item must
    /// be the value stored, else [`StorageError::ReadBack`].
    fn check<F: MultiwriteNorFlash>(
        unread: &mut heapless::Vec<(RecordKey, u32), BATCH>,
        regions: &Regions<KEYS>,
        flash: &mut F,
        work: &mut [u8],
    ) -> Result<(), StorageError> {
        // Before every operation of the map: the common case costs a test.
        if unread.is_empty() {
            return Ok(());
        }
        let unread = core::mem::take(unread);
        let flash = RefCell::new(flash);
        let region = regions.region(regions.active);
        // Bit `i`: the last item of the `i`-th key seen is its value.
        let mut back = 0u32;
        match unread.as_slice() {
            [] => return Ok(()),
            [(key, d)] => {
                let mut map = map(&flash, region)?;
                let found = block_on(map.fetch_item::<&[u8]>(work, key)).ok_or(StorageError::Io)?.map_err(map_error)?;
                back = u32::from(found.map(digest) == Some(*d));
            }
            many => each_item::<F, StorageError>(&flash, region, work, &mut |key, value| {
                if let Some(i) = many.iter().position(|(k, _)| *k == key) {
                    let bit = 1u32 << i;
                    back = if many.get(i).is_some_and(|e| e.1 == digest(value)) { back | bit } else { back & !bit };
                }
                Ok(())
            })?,
        }
        if back == u32::MAX >> (32 - unread.len()) { Ok(()) } else { Err(StorageError::ReadBack) }
    }
}

fn overlap(a: &Range<u32>, b: &Range<u32>) -> bool {
    a.start < b.end && b.start < a.end
}

/// Records in two regions of a NOR flash; see the module docs. A scrub
/// moves the live records in passes of up to `KEYS` keys (8 bytes each on
/// its stack: the key and where its live item is): a store holding more
/// takes more passes, each reading the region twice. `read_each` (a
/// group's load) goes in such passes too, with two lists of keys: each
/// reading of the region visits one pass's records and gathers the next
/// pass's keys.
pub struct FlashStorage<F: MultiwriteNorFlash, const KEYS: usize = 128> {
    flash: F,
    map: Regions<KEYS>,
    work: [u8; WORK_LEN],
}

impl<F: MultiwriteNorFlash, const KEYS: usize> FlashStorage<F, KEYS> {
    /// Opens the store in `region_a` and `region_b` (page-aligned, equal use),
    /// finishing or undoing an interrupted scrub; scrubs after every
    /// `scrub_every` commit points (at least 1). Erased flash (a new device)
    /// is formatted; flash that holds no store but cannot be read is refused
    /// ([`FlashConfigError::Unreadable`]) rather than erased.
    pub fn open(flash: F, region_a: Range<u32>, region_b: Range<u32>, scrub_every: u32) -> Result<Self, FlashConfigError> {
        let mut store = Self::new(flash, region_a, region_b, scrub_every)?;
        store.mount()?;
        Ok(store)
    }

    /// Finds the store on the flash (see [`Self::open`]).
    pub fn mount(&mut self) -> Result<(), FlashConfigError> {
        let result = self.map.mount(&mut self.flash, &mut self.work);
        self.work.zeroize();
        result
    }

    /// A store over the two regions, not yet mounted: call [`Self::mount`]
    /// or [`Self::format`] (or use [`Self::open`]).
    pub fn new(flash: F, region_a: Range<u32>, region_b: Range<u32>, scrub_every: u32) -> Result<Self, FlashConfigError> {
        Ok(Self { flash, map: Regions::new::<F>(region_a, region_b, scrub_every)?, work: [0u8; WORK_LEN] })
    }

    /// Erases both regions and starts an empty store (every record is lost).
    pub fn format(&mut self) -> Result<(), FlashConfigError> {
        self.map.format(&mut self.flash, &mut self.work)
    }

    /// The flash, e.g. to inspect its raw image in tests.
    pub fn flash(&self) -> &F {
        &self.flash
    }

    /// The flash, e.g. for a test to inject faults.
    pub fn flash_mut(&mut self) -> &mut F {
        &mut self.flash
    }

    /// Gives the flash back.
    pub fn into_flash(self) -> F {
        self.flash
    }

    /// Moves every live record into the other region and erases this one.
    /// The records go in passes of up to `KEYS` keys, so a store may hold
    /// any number of them, largest key first: a lookup scans the map from
    /// its newest page back, and the head (the core's smallest key) is read
    /// by every save, the other records of a group less often.
    pub fn scrub(&mut self) -> Result<(), StorageError> {
        let result = self.map.scrub(&mut self.flash, &mut self.work);
        self.work.zeroize();
        result
    }
}

// The work buffer holds the plaintext of the last record handled (the
// group's secrets): wiped after every operation.
impl<F: MultiwriteNorFlash, const KEYS: usize> Storage for FlashStorage<F, KEYS> {
    fn read<'b>(&mut self, key: RecordKey, buf: &'b mut [u8]) -> Result<Option<&'b [u8]>, StorageError> {
        let found = self.map.fetch(&mut self.flash, &mut self.work, key, buf);
        self.work.zeroize();
        match found? {
            Some(len) => Ok(buf.get(..len)),
            None => Ok(None),
        }
    }

    fn write(&mut self, key: RecordKey, value: &[u8]) -> Result<(), StorageError> {
        let result = self.map.write(&mut self.flash, &mut self.work, key, value);
        self.work.zeroize();
        result
    }

    fn remove(&mut self, key: RecordKey) -> Result<(), StorageError> {
        let result = self.map.remove(&mut self.flash, &mut self.work, key);
        self.work.zeroize();
        result
    }

    fn read_each(
        &mut self,
        _keys: &mut dyn Iterator<Item = RecordKey>,
        wanted: &dyn Fn(RecordKey) -> bool,
        _buf: &mut [u8],
        f: &mut EachRecord<'_>,
    ) -> Result<(), StoreError> {
        let result = self.map.read_each_live(&mut self.flash, &mut self.work, wanted, f);
        self.work.zeroize();
        result
    }

    fn committed(&mut self) -> Result<(), StorageError> {
        let result = self.map.committed(&mut self.flash, &mut self.work);
        self.work.zeroize();
        result
    }
}

/// Where a [`FlashSplit`]'s three maps live: two regions each (page-aligned,
/// none overlapping another), as a [`FlashStorage`]'s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitRegions {
    /// Every record but the secret trees' and the ratchet tree's: the
    /// groups' heads and banks, KeyPackages, PSKs.
    pub rest: [Range<u32>; 2],
    /// The secret trees' records (`store::ratchets`): what a message
    /// reads, writes and removes.
    pub ratchets: [Range<u32>; 2],
    /// The ratchet tree's node records (`store::tree_records`).
    pub tree: [Range<u32>; 2],
}

/// Three maps on one NOR flash, each in two regions of its own as a
/// [`FlashStorage`]'s, with one work buffer (issue #14): the ratchet
/// tree's node records in the *tree* map, the secret trees' records in the
/// *ratchets* map, every other record in the *rest*.
///
/// A lookup, a removal and a batch's read-back each scan their map, so
/// each map holds what its operations need to pass:
/// - The tree is most of the records of a large group (768 members'
///   LeafNodes are about 160 KB), and a message never reads it: split off,
///   a stored 1 KiB message received on the Cortex-M4 cost 35% fewer
///   instructions at 64 leaves, 60% at 1,024, a Commit received 30-94%.
/// - A message reads its sender's ratchets, writes a few records and
///   removes a consumed parent: in a map of their own these pass only the
///   secret trees' records, not the banks of the group's epoch (about 900
///   bytes at 1,024 leaves, each version since the last scrub) and the
///   other records of the rest (December 7, nineteenth session, in
///   `boards/README.md`).
///
/// Each record lives in one map, and every operation reaches the maps in
/// the order made, each write durable when it returns, so a save's writes
/// land in the order they would in one map: the head (the commit point, in
/// the rest) after the tree's nodes and the new epoch's secret-tree
/// records, the other senders' ratchets after it. Every store is read back
/// at once, but the ratchets' node and skipped-key records, read back in a
/// batch (see the module docs): the batch is checked before any operation
/// of the ratchets or the rest but another batched store (a tree record
/// lists no secret-tree record and is not a commit point).
///
/// The rest and the ratchets hold secrets: each is scrubbed every
/// `scrub_every` commit points (its removed secrets are then gone). The
/// tree's records are public, and its map is compacted only when full (a
/// scrub copies every live record). A tree record is removed with a
/// tombstone, one short write, where `sequential-storage`'s removal reads
/// the whole map (about 800 items at 1,024 leaves: receiving a Commit
/// stored cost 23-84% more instructions).
///
/// The layout is not a [`FlashStorage`]'s, nor that of the two-map split
/// before it (a device that moves from one to another formats its store and
/// joins its groups again): a map that holds another map's records is
/// refused at mount ([`FlashConfigError::OtherLayout`]).
pub struct FlashSplit<F: MultiwriteNorFlash, const KEYS: usize = 128> {
    flash: F,
    rest: Regions<KEYS>,
    ratchets: Batched<KEYS>,
    tree: Regions<KEYS>,
    work: [u8; WORK_LEN],
}

/// `key` is a ratchet-tree node's record (either version).
fn is_tree(key: RecordKey) -> bool {
    let [kind, ..] = key.to_be_bytes();
    kind == KIND_RTREE_NODE || kind == KIND_RTREE_NODE + 1
}

/// `key` is a secret tree's record: a node, a skipped key or an index
/// chunk, of either bank.
fn is_ratchet(key: RecordKey) -> bool {
    let [kind, ..] = key.to_be_bytes();
    (KIND_TREE_NODE..KIND_TREE_AUX + 2).contains(&kind)
}

/// A [`FlashSplit`]'s maps.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Map {
    Rest,
    Ratchets,
    Tree,
}

impl Map {
    fn of(key: RecordKey) -> Self {
        if is_tree(key) {
            Self::Tree
        } else if is_ratchet(key) {
            Self::Ratchets
        } else {
            Self::Rest
        }
    }

    /// `key` belongs in this map.
    fn holds(self, key: RecordKey) -> bool {
        Self::of(key) == self
    }
}

impl<F: MultiwriteNorFlash, const KEYS: usize> FlashSplit<F, KEYS> {
    /// Opens the store in `regions`, as [`FlashStorage::open`] for each map.
    pub fn open(flash: F, regions: SplitRegions, scrub_every: u32) -> Result<Self, FlashConfigError> {
        let mut store = Self::new(flash, regions, scrub_every)?;
        store.mount()?;
        Ok(store)
    }

    /// The store, not yet mounted (as [`FlashStorage::new`]).
    pub fn new(flash: F, regions: SplitRegions, scrub_every: u32) -> Result<Self, FlashConfigError> {
        let SplitRegions { rest: [rest_a, rest_b], ratchets: [ratchets_a, ratchets_b], tree: [tree_a, tree_b] } = regions;
        let rest = Regions::new::<F>(rest_a, rest_b, scrub_every)?;
        let ratchets = Batched { map: Regions::new::<F>(ratchets_a, ratchets_b, scrub_every)?, unread: heapless::Vec::new() };
        let tree = Regions { tombstones: true, ..Regions::new::<F>(tree_a, tree_b, u32::MAX)? };
        if rest.overlaps(&ratchets.map) || rest.overlaps(&tree) || ratchets.map.overlaps(&tree) {
            return Err(FlashConfigError::BadRegions);
        }
        Ok(Self { flash, rest, ratchets, tree, work: [0u8; WORK_LEN] })
    }

    /// Finds the maps on the flash (a map with no store on erased flash is
    /// formatted, as [`FlashStorage::open`] does). A tree map that holds no
    /// store and cannot be read beside a rest and ratchets that mounted is
    /// [`FlashConfigError::TreeUnreadable`]: the tree's regions are not erased.
    pub fn mount(&mut self) -> Result<(), FlashConfigError> {
        let result = self.mount_maps();
        self.work.zeroize();
        result
    }

    fn mount_maps(&mut self) -> Result<(), FlashConfigError> {
        let (flash, work) = (&mut self.flash, &mut self.work);
        // Nothing is erased or formatted before every map is known to hold
        // only its own records (but for an open page that is not erased,
        // which `find` erases: it holds no record in any layout, whose
        // pages are the same erase pages): a map that holds another map's
        // is another layout's image (a `FlashStorage`'s, or an older
        // split's, whose regions may lie across these), and those records
        // would never be read or removed here (secrets never erased).
        let rest = self.rest.find(flash, work)?;
        let ratchets = self.ratchets.map.find(flash, work)?;
        let tree = match self.tree.find(flash, work) {
            Ok(found) => Some(found),
            Err(FlashConfigError::Unreadable) => None,
            Err(e) => return Err(e),
        };
        for (regions, map, found) in [(&self.rest, Map::Rest, rest), (&self.ratchets.map, Map::Ratchets, ratchets), (&self.tree, Map::Tree, tree == Some(true))] {
            if found {
                regions.refuse_strays(flash, work, map)?;
            }
        }
        self.ratchets.unread.clear();
        self.rest.settle(flash, work, rest)?;
        self.ratchets.map.settle(flash, work, ratchets)?;
        match tree {
            Some(found) => self.tree.settle(flash, work, found),
            None => Err(FlashConfigError::TreeUnreadable),
        }
    }

    /// Erases all six regions and starts an empty store. The tree's
    /// regions are erased first, then the ratchets', so a cut leaves no old
    /// tree or secret-tree records beside a new rest.
    pub fn format(&mut self) -> Result<(), FlashConfigError> {
        for i in 0..2 {
            self.tree.erase_region(&mut self.flash, i).map_err(FlashConfigError::Storage)?;
        }
        self.ratchets.format(&mut self.flash, &mut self.work)?;
        self.rest.format(&mut self.flash, &mut self.work)?;
        self.tree.format(&mut self.flash, &mut self.work)
    }

    /// Erases the tree's two regions and starts its map empty, keeping the
    /// rest and the ratchets (after [`FlashConfigError::TreeUnreadable`]):
    /// the groups of the store no longer load (their trees are gone), while
    /// the KeyPackages' and external PSKs' records stay.
    pub fn format_tree(&mut self) -> Result<(), FlashConfigError> {
        self.tree.format(&mut self.flash, &mut self.work)
    }

    /// The flash, e.g. to inspect its raw image in tests.
    pub fn flash(&self) -> &F {
        &self.flash
    }

    /// The flash, e.g. for a test to inject faults.
    pub fn flash_mut(&mut self) -> &mut F {
        &mut self.flash
    }

    /// Gives the flash back.
    pub fn into_flash(self) -> F {
        self.flash
    }

    /// Scrubs the three maps ([`FlashStorage::scrub`]), the ratchets first
    /// (its batch is read back before anything else).
    pub fn scrub(&mut self) -> Result<(), StorageError> {
        let (flash, work) = (&mut self.flash, &mut self.work);
        let result = self.ratchets.scrub(flash, work).and_then(|()| self.rest.scrub(flash, work)).and_then(|()| self.tree.scrub(flash, work));
        self.work.zeroize();
        result
    }

    /// Reads the ratchets' batch back before an operation of the rest
    /// (see the type's docs); the ratchets' own operations read it back
    /// as they need.
    fn before(&mut self, map: Map) -> Result<(), StorageError> {
        if map == Map::Rest { self.ratchets.read_back(&mut self.flash, &mut self.work) } else { Ok(()) }
    }
}

impl<F: MultiwriteNorFlash, const KEYS: usize> Storage for FlashSplit<F, KEYS> {
    fn read<'b>(&mut self, key: RecordKey, buf: &'b mut [u8]) -> Result<Option<&'b [u8]>, StorageError> {
        let map = Map::of(key);
        let found = self.before(map).and_then(|()| {
            let (flash, work) = (&mut self.flash, &mut self.work);
            match map {
                Map::Rest => self.rest.fetch(flash, work, key, buf),
                Map::Ratchets => self.ratchets.fetch(flash, work, key, buf),
                Map::Tree => self.tree.fetch(flash, work, key, buf),
            }
        });
        self.work.zeroize();
        match found? {
            Some(len) => Ok(buf.get(..len)),
            None => Ok(None),
        }
    }

    fn write(&mut self, key: RecordKey, value: &[u8]) -> Result<(), StorageError> {
        let map = Map::of(key);
        let result = self.before(map).and_then(|()| {
            let (flash, work) = (&mut self.flash, &mut self.work);
            match map {
                Map::Rest => self.rest.write(flash, work, key, value),
                Map::Ratchets => self.ratchets.write(flash, work, key, value),
                Map::Tree => self.tree.write(flash, work, key, value),
            }
        });
        self.work.zeroize();
        result
    }

    fn remove(&mut self, key: RecordKey) -> Result<(), StorageError> {
        let map = Map::of(key);
        let result = self.before(map).and_then(|()| {
            let (flash, work) = (&mut self.flash, &mut self.work);
            match map {
                Map::Rest => self.rest.remove(flash, work, key),
                Map::Ratchets => self.ratchets.remove(flash, work, key),
                Map::Tree => self.tree.remove(flash, work, key),
            }
        });
        self.work.zeroize();
        result
    }

    fn read_each(
        &mut self,
        _keys: &mut dyn Iterator<Item = RecordKey>,
        wanted: &dyn Fn(RecordKey) -> bool,
        _buf: &mut [u8],
        f: &mut EachRecord<'_>,
    ) -> Result<(), StoreError> {
        let (flash, work) = (&mut self.flash, &mut self.work);
        let result = self
            .tree
            .read_each_live(flash, work, &|k| is_tree(k) && wanted(k), f)
            .and_then(|()| self.ratchets.read_each_live(flash, work, &|k| is_ratchet(k) && wanted(k), f))
            .and_then(|()| self.rest.read_each_live(flash, work, &|k| Map::Rest.holds(k) && wanted(k), f));
        self.work.zeroize();
        result
    }

    /// The maps' commit points, the ratchets' first (its batch is read
    /// back before the rest's), each even when one before it failed (the
    /// first error is returned).
    fn committed(&mut self) -> Result<(), StorageError> {
        let ratchets = self.ratchets.committed(&mut self.flash, &mut self.work);
        let rest = self.rest.committed(&mut self.flash, &mut self.work);
        let tree = self.tree.committed(&mut self.flash, &mut self.work);
        self.work.zeroize();
        ratchets.and(rest).and(tree)
    }
}
