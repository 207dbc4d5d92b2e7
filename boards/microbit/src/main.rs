//! Test firmware for QEMU `microbit` (nRF51822: Cortex-M0, 16 KiB of RAM).
//!
//! By default, a group member: the member scenario of the other boards in
//! a group of 4 leaves (Alice, Bob and the device; see
//! `board_scenario::member`). The device generates its KeyPackage, joins
//! from a Welcome read in pieces (the tree out of band), processes Commits
//! (an Add, an update with path as a PrivateMessage, a removal by
//! reference) and proposals, reads application messages, commits a
//! proposal by reference with a path, protects messages and is removed;
//! every output and epoch authenticator is compared byte for byte with the
//! host members'. The group, its scratch buffer and the stack share the
//! 16 KiB (the firmware prints the three).
//!
//! With feature `vector-checks` instead: the suite-3 test-vector checks
//! (crypto-basics, key-schedule, secret-tree). The vectors' secret tree and
//! a group do not fit the RAM together, so they are two firmware builds.
//!
//! Prints `N passed, M failed` last; exits with 0 if M == 0, else 1.
#![no_std]
#![no_main]

use board_firmware::cell::Slot;
use board_firmware::report::Report;
use cortex_m_rt::{ExceptionFrame, entry, exception};
use semihosting::{println, process};

/// The core clock QEMU gives SysTick: 16 MHz (62.5 instructions per tick).
const CORE_CLOCK_HZ: u32 = 16_000_000;

#[cfg(not(feature = "vector-checks"))]
mod member {
    use super::*;
    use board_firmware::check;
    use board_member::{arena_bytes, proposal_bytes, skipped_keys};
    use mls_nostd::group::Group;

    /// The device group's capacity in leaves.
    const CAPACITY: usize = 4;
    /// The core's private path keys are sized by its tree levels: the 10 of
    /// the boards' default take 1.2 KB more RAM than 4 leaves need, and the
    /// member would not fit.
    const _: () = assert!(
        mls_nostd::ratchet_tree::tree::MAX_DEPTH == 2,
        "build the micro:bit member with MLS_NOSTD_MAX_TREE_DEPTH=2 (boards/run-tests.sh does)"
    );
    /// Where the RAM begins (nRF51822; `memory-microbit.x`).
    const RAM_START: usize = 0x2000_0000;
    /// RAM of the nRF51822 QFAA (and of QEMU's `microbit`).
    const RAM_BYTES: usize = 16 * 1024;
    type DeviceGroup = Group<CAPACITY, { arena_bytes(CAPACITY) }, { skipped_keys(CAPACITY) }, { proposal_bytes(CAPACITY) }>;

    mod scenario {
        include!(concat!(env!("OUT_DIR"), "/scenario.rs"));
    }

    /// The device's group state, in `.bss`.
    static GROUP: Slot<DeviceGroup> = Slot::new();
    /// Messages in and out, and the Commit's work area.
    static SCRATCH: Slot<[u8; scenario::SCRATCH_LEN]> = Slot::new();

    pub fn run(report: &mut Report, meter: &board_firmware::measure::Meter) {
        // SAFETY: `write` leaves a valid group.
        let group = unsafe { GROUP.take_with(|p| p.write(DeviceGroup::EMPTY)) }.unwrap();
        let scratch = SCRATCH.take_bytes().unwrap();
        board_firmware::member::run(report, meter, &scenario::SCENARIO, group, scratch);
        // cortex-m-rt puts .data and .bss at the start of the RAM and the
        // stack in all that they leave.
        let statics = meter.stack_bottom - RAM_START;
        let deepest = meter.deepest_stack();
        println!(
            "member: RAM {RAM_BYTES} bytes: .data + .bss {statics}, deepest stack {deepest} of {}, {} to spare",
            meter.stack_size(),
            meter.stack_size().saturating_sub(deepest)
        );
        // A stack that reached the end of its region may have written over
        // the group: the run's verdicts would not count.
        check!(report, Ok::<bool, ()>(deepest < meter.stack_size()), "member: the stack stays above .bss");
    }
}

#[cfg(feature = "vector-checks")]
mod vectors {
    use super::*;
    use board_firmware::checks;

    /// 4 skipped keys instead of 32 save 2.8 KB.
    type Tree = checks::VectorSecretTree<4>;
    static TREE: Slot<Tree> = Slot::new();

    pub fn run(report: &mut Report, meter: &board_firmware::measure::Meter) {
        board_firmware::group(report, meter, "crypto-basics", checks::crypto_basics);
        board_firmware::group(report, meter, "key-schedule", checks::key_schedule);
        // SAFETY: `write` leaves a valid tree.
        let tree = unsafe { TREE.take_with(|p| p.write(Tree::EMPTY)) }.unwrap();
        board_firmware::group(report, meter, "secret-tree", |r| checks::secret_tree(r, tree));
    }
}

#[entry]
fn main() -> ! {
    let peripherals = cortex_m::Peripherals::take().unwrap();
    let meter = board_firmware::cortex_m::start(peripherals.SYST, CORE_CLOCK_HZ);
    let mut report = Report::default();
    #[cfg(not(feature = "vector-checks"))]
    member::run(&mut report, &meter);
    #[cfg(feature = "vector-checks")]
    vectors::run(&mut report, &meter);
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
