//! Cost of a group of checks on the emulated CPU: SysTick ticks and the
//! stack's high-water mark.
//!
//! Ticks: SysTick runs from the core clock (25 MHz on mps2-an386). Under
//! `qemu-system-arm -icount shift=0` one instruction takes 1 ns of virtual
//! time, so one tick is 40 guest instructions; without `-icount` ticks follow
//! the host's speed and mean little.
//!
//! Stack: cortex-m-rt's `paint-stack` fills the stack with `STACK_PAINT_VALUE`
//! at reset; before each group the unused part below the current stack
//! pointer is painted again, and afterwards the lowest scrubbed word gives the
//! deepest the stack went (counted from its top, so it includes `main`).

use core::ptr;
use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::{STACK_PAINT_VALUE, exception};

/// SysTick reload value: the counter's full 24 bits.
const RELOAD: u32 = 0x00ff_ffff;
/// Guest instructions per SysTick tick under `-icount shift=0`.
pub const INSTRUCTIONS_PER_TICK: u64 = 40;
/// Bytes left unpainted below the stack pointer when repainting: room for
/// `repaint`'s own frame and an exception frame that may arrive meanwhile.
const REPAINT_MARGIN: usize = 256;

/// SysTick wraps so far (one every 2^24 ticks).
static WRAPS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    WRAPS.fetch_add(1, Ordering::Relaxed);
}

unsafe extern "C" {
    /// Lowest address of the stack (end of .bss/.uninit), from cortex-m-rt's link.x.
    static _stack_end: u32;
    /// Highest address of the stack (end of RAM).
    static _stack_start: u32;
}

fn stack_bounds() -> (usize, usize) {
    (
        ptr::addr_of!(_stack_end) as usize,
        ptr::addr_of!(_stack_start) as usize,
    )
}

/// Starts SysTick as a free-running 24-bit counter with a wrap interrupt.
pub fn start_clock(mut syst: SYST) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(RELOAD);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

/// Ticks since [`start_clock`].
pub fn ticks() -> u64 {
    loop {
        let before = WRAPS.load(Ordering::Relaxed);
        let current = SYST::get_current();
        // A wrap between the two reads would pair a new count with old wraps.
        if WRAPS.load(Ordering::Relaxed) == before {
            return (u64::from(before) << 24) | u64::from(RELOAD - current);
        }
    }
}

/// Paints the unused stack (below the current stack pointer) again.
#[inline(never)]
fn repaint() {
    let marker = 0u8;
    let sp = ptr::addr_of!(marker) as usize;
    let (bottom, _) = stack_bounds();
    let mut p = bottom;
    while p + REPAINT_MARGIN < sp {
        // SAFETY: [_stack_end, sp - margin) is stack memory below every live
        // frame; nothing else owns it. Volatile so the stores are not elided.
        unsafe { ptr::write_volatile(p as *mut u32, STACK_PAINT_VALUE) };
        p += 4;
    }
}

/// Deepest stack use since the last paint, in bytes from the stack's top.
fn high_water() -> usize {
    let (bottom, top) = stack_bounds();
    let mut p = bottom;
    // SAFETY: reads of stack memory within the linker-given bounds.
    while p < top && unsafe { ptr::read_volatile(p as *const u32) } == STACK_PAINT_VALUE {
        p += 4;
    }
    top - p
}

/// Size of the stack region in bytes.
pub fn stack_size() -> usize {
    let (bottom, top) = stack_bounds();
    top - bottom
}

/// What [`measure`] saw.
pub struct Cost {
    pub ticks: u64,
    pub stack_bytes: usize,
}

/// Runs `f` and reports its ticks and the stack's high-water mark.
pub fn measure(f: impl FnOnce()) -> Cost {
    repaint();
    let start = ticks();
    f();
    let ticks = ticks() - start;
    Cost {
        ticks,
        stack_bytes: high_water(),
    }
}
