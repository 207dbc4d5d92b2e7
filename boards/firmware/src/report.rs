//! Pass/fail counting: each check is one case; a failing case prints its
//! name (and the core's error, if it returned one). The firmware's last line
//! is `N passed, M failed`.

use core::fmt::{Arguments, Debug};

/// What a failing case's error must offer: `Debug` for the text output, and
/// with feature `defmt` also `defmt::Format` (the core's error enums derive
/// it under its own `defmt` feature).
#[cfg(not(feature = "defmt"))]
pub trait CaseError: Debug {}
#[cfg(not(feature = "defmt"))]
impl<T: Debug> CaseError for T {}
/// What a failing case's error must offer: `Debug` for the text output, and
/// with feature `defmt` also `defmt::Format` (the core's error enums derive
/// it under its own `defmt` feature).
#[cfg(feature = "defmt")]
pub trait CaseError: Debug + defmt::Format {}
#[cfg(feature = "defmt")]
impl<T: Debug + defmt::Format> CaseError for T {}

/// Counts of passed and failed cases.
#[derive(Default)]
pub struct Report {
    pub passed: u32,
    pub failed: u32,
}

impl Report {
    /// Records one case: `Ok(true)` passes; `Ok(false)` (wrong value) and
    /// `Err` (the core refused) fail and print `name`.
    pub fn check<E: CaseError>(&mut self, name: Arguments<'_>, outcome: Result<bool, E>) {
        match outcome {
            Ok(true) => self.passed += 1,
            Ok(false) => {
                self.failed += 1;
                #[cfg(not(feature = "defmt"))]
                semihosting::println!("FAIL {name}: wrong value");
                #[cfg(feature = "defmt")]
                defmt::println!("FAIL {}: wrong value", defmt::Display2Format(&name));
            }
            Err(e) => {
                self.failed += 1;
                #[cfg(not(feature = "defmt"))]
                semihosting::println!("FAIL {name}: error {e:?}");
                #[cfg(feature = "defmt")]
                defmt::println!("FAIL {}: error {}", defmt::Display2Format(&name), e);
            }
        }
    }

    /// Cases so far.
    pub fn total(&self) -> u32 {
        self.passed + self.failed
    }

    /// Prints the closing line and returns the exit status (0: all passed).
    pub fn finish(&self) -> i32 {
        out!("{} passed, {} failed", self.passed, self.failed);
        if self.failed == 0 { 0 } else { 1 }
    }
}

/// `check!(report, outcome, "name {}", args)`: one case named with format args.
#[macro_export]
macro_rules! check {
    ($r:expr, $outcome:expr, $($name:tt)+) => {
        $r.check(format_args!($($name)+), $outcome)
    };
}
