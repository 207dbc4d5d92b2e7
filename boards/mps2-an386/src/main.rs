//! Test firmware for QEMU `mps2-an386` (Cortex-M4F):
//!
//! 1. the suite-3 checks of the official MLS test vectors (feature
//!    `vector-checks`);
//! 2. the member scenario: the board generates its KeyPackage with its
//!    seeded RNG, joins a group from a Welcome made on the host at build
//!    time, processes the host members' Commits and proposals, commits with
//!    a path, protects and unprotects application messages, and compares
//!    every output and epoch authenticator with the host's (see
//!    `board_scenario::member`).
//!
//! Prints one `FAIL` line per failing case, a cost line per group or step,
//! and last `N passed, M failed`; exits (semihosting) with 0 if M == 0,
//! else 1. No global allocator: the group and its buffers are `static`s.
//! With feature `defmt` the same lines go out as defmt frames
//! (defmt-semihosting), to decode with `defmt-print -e <ELF>`.
#![no_std]
#![no_main]

use board_firmware::cell::Slot;
use board_firmware::report::Report;
use board_member::{arena_bytes, proposal_bytes, skipped_keys};
use cortex_m_rt::{ExceptionFrame, entry, exception};
use mls_nostd::group::Group;
use semihosting::process;

/// The device group's capacity in leaves (feature `cap-*`).
#[cfg(feature = "cap-8")]
const CAPACITY: usize = 8;
#[cfg(feature = "cap-64")]
const CAPACITY: usize = 64;
#[cfg(feature = "cap-256")]
const CAPACITY: usize = 256;
#[cfg(feature = "cap-1024")]
const CAPACITY: usize = 1024;

/// The measured member (no store): a secret tree of one slot per leaf.
#[cfg(not(feature = "reboot"))]
type DeviceGroup = Group<CAPACITY, { arena_bytes(CAPACITY) }, { skipped_keys(CAPACITY) }, { proposal_bytes(CAPACITY) }>;
/// The stored member: its secret tree holds `secret_entries` secrets, the
/// flash store the rest (issue #14).
#[cfg(feature = "reboot")]
type DeviceGroup = Group<
    CAPACITY,
    { arena_bytes(CAPACITY) },
    { skipped_keys(CAPACITY) },
    { proposal_bytes(CAPACITY) },
    mls_nostd::crypto::signature::SignaturePrivateKey,
    { board_member::secret_entries(CAPACITY) },
>;

mod scenario {
    include!(concat!(env!("OUT_DIR"), "/scenario.rs"));
}

/// The device's group state, in `.bss`.
static GROUP: Slot<DeviceGroup> = Slot::new();
/// The secret tree of the secret-tree vector checks.
#[cfg(feature = "vector-checks")]
static SECRET_TREE: Slot<board_firmware::checks::VectorSecretTree> = Slot::new();
/// Messages in and out, and the Commit's work area.
static SCRATCH: Slot<[u8; scenario::SCRATCH_LEN]> = Slot::new();

/// The member's flash store: above the 3 MiB the linker may use, the
/// rest's map, the secret trees' (the ratchets), then the ratchet tree's.
#[cfg(feature = "reboot")]
const STORE_BASE: usize = 0x0030_0000;
/// The rest's map and the ratchets': 32 KiB each (two halves of 16 KiB), 64
/// KiB each at 1,024 leaves (the store's 64 and 128 KiB of rest before
/// the ratchets were split off).
#[cfg(all(feature = "reboot", not(feature = "cap-1024")))]
const REST_LEN: usize = 32 * 1024;
#[cfg(all(feature = "reboot", feature = "cap-1024"))]
const REST_LEN: usize = 64 * 1024;
#[cfg(feature = "reboot")]
const RATCHETS_LEN: usize = REST_LEN;
/// The tree's map: each of its two halves holds the tree's records (a
/// LeafNode is about 200 bytes) with room for stale versions: 64 KiB up to
/// 64 leaves (the store's 128 KiB in all, as before the split), 128 KiB at
/// 256, 768 KiB at 1,024.
#[cfg(all(feature = "reboot", not(any(feature = "cap-256", feature = "cap-1024"))))]
const TREE_LEN: usize = 64 * 1024;
#[cfg(all(feature = "reboot", feature = "cap-256"))]
const TREE_LEN: usize = 128 * 1024;
#[cfg(all(feature = "reboot", feature = "cap-1024"))]
const TREE_LEN: usize = 768 * 1024;
/// The board resets after this member step (the device's first protect):
/// the steps after it need the sending ratchet and RNG exactly restored.
#[cfg(feature = "reboot")]
const REBOOT_AFTER_STEP: usize = 10;
#[cfg(feature = "reboot")]
static STORE: Slot<board_firmware::persist::BoardStore> = Slot::new();
#[cfg(feature = "reboot")]
static RECORD: Slot<[u8; mls_nostd::store::MAX_RECORD_LEN]> = Slot::new();

/// Opens the flash store and reads where the run was. Its own frame (the
/// store is built here, then moved into its slot) is gone before the member
/// steps measure their stack.
#[cfg(feature = "reboot")]
#[inline(never)]
fn open_store() -> (&'static mut board_firmware::persist::BoardStore, Option<board_firmware::persist::Resume>) {
    use board_firmware::persist::{self, RegionFlash, Resume};
    // SAFETY: the region above 3 MiB of SSRAM1 is outside every linker region
    // (memory-mps2-an386*.x) and used by nothing else.
    let flash = unsafe { RegionFlash::new(STORE_BASE, REST_LEN + RATCHETS_LEN + TREE_LEN) };
    let store = STORE.take(persist::open(flash, REST_LEN, RATCHETS_LEN).expect("flash store")).unwrap();
    let resume = Resume::read(store).expect("resume record");
    (store, resume)
}

/// The core clock QEMU gives SysTick: 25 MHz (40 instructions per tick
/// under `-icount shift=0`).
const CORE_CLOCK_HZ: u32 = 25_000_000;

#[entry]
fn main() -> ! {
    let peripherals = cortex_m::Peripherals::take().unwrap();
    let meter = board_firmware::cortex_m::start(peripherals.SYST, CORE_CLOCK_HZ);
    let mut report = Report::default();

    // After a reset the store holds where the run was: vector checks are done.
    #[cfg(feature = "reboot")]
    let (store, resume) = open_store();
    #[cfg(feature = "reboot")]
    let first_boot = resume.is_none();
    #[cfg(not(feature = "reboot"))]
    let first_boot = true;

    #[cfg(feature = "vector-checks")]
    if first_boot {
        use board_firmware::checks;
        board_firmware::group(&mut report, &meter, "crypto-basics", checks::crypto_basics);
        board_firmware::group(&mut report, &meter, "key-schedule", checks::key_schedule);
        // SAFETY: `write` leaves a valid tree.
        let tree = unsafe { SECRET_TREE.take_with(|p| p.write(checks::VectorSecretTree::EMPTY)) }.unwrap();
        board_firmware::group(&mut report, &meter, "secret-tree", |r| checks::secret_tree(r, tree));
    }

    #[cfg(feature = "primitives")]
    if first_boot {
        board_firmware::primitives::measure(&meter);
    }
    // (Read only by the optional parts above.)
    let _ = first_boot;

    // SAFETY: `write` leaves a valid group.
    let group = unsafe { GROUP.take_with(|p| p.write(DeviceGroup::EMPTY)) }.unwrap();
    let scratch = SCRATCH.take_bytes().unwrap();
    #[cfg(not(feature = "reboot"))]
    board_firmware::member::run(&mut report, &meter, &scenario::SCENARIO, group, scratch);
    #[cfg(feature = "reboot")]
    {
        let buf = RECORD.take_bytes().unwrap();
        board_firmware::member::run_with_reboot(
            &mut report,
            &meter,
            &scenario::SCENARIO,
            group,
            scratch,
            store,
            resume,
            REBOOT_AFTER_STEP,
            buf,
            cortex_m::peripheral::SCB::sys_reset,
        );
    }

    process::exit(report.finish())
}

#[exception]
fn SysTick() {
    board_firmware::cortex_m::on_wrap();
}

/// A fault (e.g. the stack running off the start of RAM) ends the run with a
/// failure instead of leaving QEMU spinning until the timeout.
#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    #[cfg(not(feature = "defmt"))]
    semihosting::println!("HardFault at pc {:#010x}", frame.pc());
    #[cfg(feature = "defmt")]
    defmt::println!("HardFault at pc {=u32:#010x}", frame.pc());
    process::exit(1)
}

/// Any other unexpected exception or interrupt: fail likewise.
#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    #[cfg(not(feature = "defmt"))]
    semihosting::println!("unexpected exception or interrupt {irqn}");
    #[cfg(feature = "defmt")]
    defmt::println!("unexpected exception or interrupt {}", irqn);
    process::exit(1)
}
