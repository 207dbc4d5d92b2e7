//! Cortex-M: SysTick as an instruction counter, and cortex-m-rt's stack.
//!
//! SysTick runs from the core clock. Under `qemu-system-arm -icount shift=0`
//! one instruction takes 1 ns of virtual time, so at a core clock of `f` MHz
//! one tick is `1000 / f` instructions (40 at mps2-an386's 25 MHz, 62.5 at
//! the micro:bit's 16 MHz). The board's `SysTick` exception handler must
//! call [`on_wrap`].

use core::ptr;
use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;

use crate::measure::Meter;

/// SysTick reload value: the counter's full 24 bits.
const RELOAD: u32 = 0x00ff_ffff;

/// SysTick wraps so far (one every 2^24 ticks).
static WRAPS: AtomicU32 = AtomicU32::new(0);
/// The core clock in Hz.
static CORE_HZ: AtomicU32 = AtomicU32::new(1_000_000_000);

/// Counts one SysTick wrap; call from the `SysTick` exception handler.
pub fn on_wrap() {
    // Load and store, not fetch_add: thumbv6m has no atomic read-modify-write,
    // and this handler is the only writer.
    WRAPS.store(WRAPS.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
}

fn ticks() -> u64 {
    loop {
        let before = WRAPS.load(Ordering::Relaxed);
        let current = SYST::get_current();
        // A wrap between the two reads would pair a new count with old wraps.
        if WRAPS.load(Ordering::Relaxed) == before {
            return (u64::from(before) << 24) | u64::from(RELOAD - current);
        }
    }
}

fn instructions() -> u64 {
    ticks() * 1_000_000_000 / u64::from(CORE_HZ.load(Ordering::Relaxed))
}

unsafe extern "C" {
    /// Lowest address of the stack (end of .bss/.uninit), from cortex-m-rt's link.x.
    static _stack_end: u32;
    /// Highest address of the stack (end of RAM).
    static _stack_start: u32;
}

/// Starts SysTick as a free-running 24-bit counter with a wrap interrupt
/// and returns the board's meter; `core_clock_hz` is the clock QEMU gives
/// SysTick.
pub fn start(mut syst: SYST, core_clock_hz: u32) -> Meter {
    CORE_HZ.store(core_clock_hz, Ordering::Relaxed);
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(RELOAD);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
    Meter {
        instructions,
        stack_bottom: ptr::addr_of!(_stack_end) as usize,
        stack_top: ptr::addr_of!(_stack_start) as usize,
    }
}
