//! Test firmware for QEMU RISC-V `virt` (riscv32imac, machine mode): the
//! suite-3 test-vector checks and the member scenario for a group of 64
//! leaves, as on mps2-an386 (see `board_firmware::member`).
//!
//! Instructions are read from `minstret`, which QEMU derives from its
//! instruction counter under `-icount shift=0`. Prints `N passed, M failed`
//! last; exits with 0 if M == 0, else 1.
#![no_std]
#![no_main]

use core::ptr;

use board_firmware::cell::Slot;
use board_firmware::checks;
use board_firmware::measure::Meter;
use board_firmware::report::Report;
use board_member::{arena_bytes, proposal_bytes, skipped_keys};
use mls_nostd::group::Group;
use semihosting::{println, process};

/// The device group's capacity in leaves (as in build.rs).
const CAPACITY: usize = 64;

type DeviceGroup = Group<CAPACITY, { arena_bytes(CAPACITY) }, { skipped_keys(CAPACITY) }, { proposal_bytes(CAPACITY) }>;

mod scenario {
    include!(concat!(env!("OUT_DIR"), "/scenario.rs"));
}

static GROUP: Slot<DeviceGroup> = Slot::new();
static SCRATCH: Slot<[u8; scenario::SCRATCH_LEN]> = Slot::new();
static VECTOR_TREE: Slot<checks::VectorSecretTree> = Slot::new();

unsafe extern "C" {
    /// Lowest address of the stack region, from riscv-rt's link.x.
    static __estack: u32;
    /// Highest address of the stack region (initial stack pointer).
    static __sstack: u32;
}

fn instructions() -> u64 {
    riscv::register::minstret::read64()
}

#[riscv_rt::entry]
fn main() -> ! {
    let meter = Meter {
        instructions,
        stack_bottom: ptr::addr_of!(__estack) as usize,
        stack_top: ptr::addr_of!(__sstack) as usize,
    };
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

/// An exception (e.g. a fault from the stack running out) ends the run with a
/// failure instead of leaving QEMU spinning until the timeout.
#[unsafe(export_name = "ExceptionHandler")]
fn exception_handler(_frame: &riscv_rt::TrapFrame) -> ! {
    println!(
        "exception: mcause {:#x} at mepc {:#010x}",
        riscv::register::mcause::read().bits(),
        riscv::register::mepc::read()
    );
    process::exit(1)
}
