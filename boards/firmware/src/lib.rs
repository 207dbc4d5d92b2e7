//! What every test firmware of `boards/` shares: the pass/fail [`report`],
//! cost [`measure`]ment, the suite-3 test-vector [`checks`], the member
//! scenario runner ([`member`]) and a [`cell::Slot`] for large statics.
//! Output goes through semihosting; each board supplies its entry point,
//! instruction counter and stack bounds.
#![no_std]

pub mod cell;
pub mod checks;
#[cfg(feature = "cortex-m")]
pub mod cortex_m;
pub mod measure;
pub mod member;
#[cfg(feature = "persist")]
pub mod persist;
#[cfg(feature = "primitives")]
pub mod primitives;
pub mod report;
pub mod vectors;

pub use board_member;
pub use semihosting;

use measure::Meter;
use report::Report;
use semihosting::println;

/// Runs a named group of checks and prints its case count and cost.
pub fn group(r: &mut Report, meter: &Meter, name: &str, run: impl FnOnce(&mut Report)) {
    let before = r.total();
    let ((), cost) = meter.measure(|| run(r));
    println!(
        "{name}: {} cases, {} instructions, stack peak {} of {} bytes",
        r.total() - before,
        cost.instructions,
        cost.stack_bytes,
        meter.stack_size(),
    );
}
