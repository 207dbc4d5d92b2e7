//! What every test firmware of `boards/` shares: the pass/fail [`report`],
//! cost [`measure`]ment, the suite-3 test-vector [`checks`], the member
//! scenario runner ([`member`]) and a [`cell::Slot`] for large statics.
//! Output goes through semihosting, as text or (feature `defmt`) as defmt
//! frames; each board supplies its entry point, instruction counter and stack
//! bounds.
#![no_std]

/// Prints one line of output: text through semihosting, or with feature
/// `defmt` a defmt frame (through defmt-semihosting, on the same semihosting
/// stdout; text and frames must not mix). Arguments are `{}` placeholders
/// of values that are both `Display` and `defmt::Format` (integers, `&str`).
macro_rules! out {
    ($($t:tt)*) => {{
        #[cfg(feature = "defmt")]
        defmt::println!($($t)*);
        #[cfg(not(feature = "defmt"))]
        semihosting::println!($($t)*);
    }};
}

/// The defmt global logger (semihosting stdout).
#[cfg(feature = "defmt")]
use defmt_semihosting as _;

pub mod cell;
#[cfg(feature = "suite-3")]
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

/// Runs a named group of checks and prints its case count and cost.
pub fn group(r: &mut Report, meter: &Meter, name: &str, run: impl FnOnce(&mut Report)) {
    let before = r.total();
    let ((), cost) = meter.measure(|| run(r));
    out!(
        "{}: {} cases, {} instructions, stack peak {} of {} bytes",
        name,
        r.total() - before,
        cost.instructions,
        cost.stack_bytes,
        meter.stack_size(),
    );
}
