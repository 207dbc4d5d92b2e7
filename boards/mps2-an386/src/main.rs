//! Test firmware for QEMU `mps2-an386` (Cortex-M4F): runs the suite-3 checks
//! of the official MLS test vectors against `mls-nostd` on the emulated CPU,
//! prints one `FAIL` line per failing case, a cost line per group, and last
//! the line `N passed, M failed`; exits (semihosting) with 0 if M == 0, else 1.
//!
//! No global allocator: everything lives on the stack or in flash.
#![no_std]
#![no_main]

mod checks;
mod measure;
mod rng;
mod vectors;

use cortex_m_rt::{ExceptionFrame, entry, exception};
use semihosting::{println, process};

use checks::Report;
use measure::INSTRUCTIONS_PER_TICK;

/// A named group of checks.
type Group = (&'static str, fn(&mut Report));

#[entry]
fn main() -> ! {
    let peripherals = cortex_m::Peripherals::take().unwrap();
    measure::start_clock(peripherals.SYST);

    let groups: [Group; 3] = [
        ("crypto-basics", checks::crypto_basics),
        ("key-schedule", checks::key_schedule),
        ("secret-tree", checks::secret_tree),
    ];
    let mut report = Report::default();
    for (name, run) in groups {
        let before = report.passed + report.failed;
        let cost = measure::measure(|| run(&mut report));
        println!(
            "{name}: {} cases, {} instructions ({} SysTick ticks; exact under -icount shift=0), \
             stack peak {} of {} bytes",
            report.passed + report.failed - before,
            cost.ticks * INSTRUCTIONS_PER_TICK,
            cost.ticks,
            cost.stack_bytes,
            measure::stack_size(),
        );
    }

    println!("{} passed, {} failed", report.passed, report.failed);
    process::exit(if report.failed == 0 { 0 } else { 1 })
}

/// A fault (e.g. the stack running off the start of RAM) ends the run with a
/// failure instead of leaving QEMU spinning until the timeout.
#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    println!("HardFault at pc {:#010x}", frame.pc());
    process::exit(1)
}

/// Any other unexpected exception or interrupt: fail likewise.
#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    println!("unexpected exception or interrupt {irqn}");
    process::exit(1)
}
