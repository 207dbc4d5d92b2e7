//! Test firmware for the nRF52840 (Cortex-M4F at 64 MHz, 1 MiB flash,
//! 256 KiB RAM): the same checks as mps2-an386 (test vectors and the member
//! scenario for 64 leaves). QEMU has no nRF52 machine, so `run-tests.sh`
//! only builds it: the link proves that code, data and the group's statics
//! fit the chip's memory map. On a real board it runs under a debugger with
//! semihosting (e.g. probe-rs); the RNG stays the seeded one, as the
//! expected bytes require (a product uses the chip's RNG peripheral).
#![no_std]
#![no_main]

use board_firmware::cell::Slot;
use board_firmware::checks;
use board_firmware::report::Report;
use board_member::{arena_bytes, proposal_bytes, skipped_keys};
use cortex_m_rt::{ExceptionFrame, entry, exception};
use mls_nostd::group::Group;
use semihosting::{println, process};

/// The device group's capacity in leaves (as in build.rs).
const CAPACITY: usize = 64;
/// The core clock (HFCLK): 64 MHz.
const CORE_CLOCK_HZ: u32 = 64_000_000;

type DeviceGroup = Group<CAPACITY, { arena_bytes(CAPACITY) }, { skipped_keys(CAPACITY) }, { proposal_bytes(CAPACITY) }>;

mod scenario {
    include!(concat!(env!("OUT_DIR"), "/scenario.rs"));
}

static GROUP: Slot<DeviceGroup> = Slot::new();
static SCRATCH: Slot<[u8; scenario::SCRATCH_LEN]> = Slot::new();
static VECTOR_TREE: Slot<checks::VectorSecretTree> = Slot::new();

#[entry]
fn main() -> ! {
    let peripherals = cortex_m::Peripherals::take().unwrap();
    let meter = board_firmware::cortex_m::start(peripherals.SYST, CORE_CLOCK_HZ);
    let mut report = Report::default();

    board_firmware::group(&mut report, &meter, "crypto-basics", checks::crypto_basics);
    board_firmware::group(&mut report, &meter, "key-schedule", checks::key_schedule);
    // SAFETY: `write` leaves a valid tree.
    let tree = unsafe { VECTOR_TREE.take_with(|p| p.write(checks::VectorSecretTree::EMPTY)) }.unwrap();
    board_firmware::group(&mut report, &meter, "secret-tree", |r| checks::secret_tree(r, tree));

    // SAFETY: `write` leaves a valid group.
    let group = unsafe { GROUP.take_with(|p| p.write(DeviceGroup::EMPTY)) }.unwrap();
    let scratch = SCRATCH.take_bytes().unwrap();
    board_firmware::member::run(&mut report, &meter, &scenario::SCENARIO, group, scratch);

    process::exit(report.finish())
}

#[exception]
fn SysTick() {
    board_firmware::cortex_m::on_wrap();
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    println!("HardFault at pc {:#010x}", frame.pc());
    process::exit(1)
}

#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    println!("unexpected exception or interrupt {irqn}");
    process::exit(1)
}
