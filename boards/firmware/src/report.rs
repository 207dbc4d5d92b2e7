//! Pass/fail counting: each check is one case; a failing case prints its
//! name (and the core's error, if it returned one). The firmware's last line
//! is `N passed, M failed`.

use core::fmt::{Arguments, Debug};
use semihosting::println;

/// Counts of passed and failed cases.
#[derive(Default)]
pub struct Report {
    pub passed: u32,
    pub failed: u32,
}

impl Report {
    /// Records one case: `Ok(true)` passes; `Ok(false)` (wrong value) and
    /// `Err` (the core refused) fail and print `name`.
    pub fn check<E: Debug>(&mut self, name: Arguments<'_>, outcome: Result<bool, E>) {
        match outcome {
            Ok(true) => self.passed += 1,
            Ok(false) => {
                self.failed += 1;
                println!("FAIL {name}: wrong value");
            }
            Err(e) => {
                self.failed += 1;
                println!("FAIL {name}: error {e:?}");
            }
        }
    }

    /// Cases so far.
    pub fn total(&self) -> u32 {
        self.passed + self.failed
    }

    /// Prints the closing line and returns the exit status (0: all passed).
    pub fn finish(&self) -> i32 {
        println!("{} passed, {} failed", self.passed, self.failed);
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
