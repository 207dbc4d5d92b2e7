//! Cost of a piece of work on the emulated CPU: guest instructions and the
//! stack's high-water mark.
//!
//! Instructions: each board supplies a counter. Under QEMU's `-icount
//! shift=0` one guest instruction takes 1 ns of virtual time, so a timer
//! driven by the virtual clock counts instructions: SysTick on Cortex-M
//! (40 instructions per tick at mps2-an386's 25 MHz), `minstret` on RISC-V
//! (QEMU returns the instruction count for it under `-icount`). Without
//! `-icount` the numbers follow the host's speed and mean little.
//!
//! Stack: before each measurement the unused stack below the current stack
//! pointer is painted with [`PAINT`]; afterwards the lowest word that no
//! longer holds it gives the deepest the stack went, counted from the top
//! of the stack (so it includes `main` and everything above the work).

use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering};

/// The paint pattern (cortex-m-rt's `STACK_PAINT_VALUE`, used on every board).
pub const PAINT: u32 = 0xcccc_cccc;
/// Bytes left unpainted below the stack pointer when repainting: room for
/// `repaint`'s own frame and an exception frame that may arrive meanwhile.
const REPAINT_MARGIN: usize = 256;

/// The deepest stack of every [`Meter::measure`] so far.
static DEEPEST: AtomicUsize = AtomicUsize::new(0);

/// What a board gives the measurements.
#[derive(Clone, Copy)]
pub struct Meter {
    /// Guest instructions since some fixed point.
    pub instructions: fn() -> u64,
    /// Lowest address of the stack region (its end: stacks grow down).
    pub stack_bottom: usize,
    /// Highest address of the stack region (initial stack pointer).
    pub stack_top: usize,
}

/// What [`Meter::measure`] saw.
#[derive(Clone, Copy, Debug)]
pub struct Cost {
    pub instructions: u64,
    pub stack_bytes: usize,
}

impl Meter {
    /// Size of the stack region in bytes.
    pub fn stack_size(&self) -> usize {
        self.stack_top - self.stack_bottom
    }

    /// Paints the unused stack (below the current stack pointer) again.
    #[inline(never)]
    fn repaint(&self) {
        let marker = 0u8;
        let sp = ptr::addr_of!(marker) as usize;
        let mut p = self.stack_bottom;
        while p + REPAINT_MARGIN < sp {
            // SAFETY: [stack_bottom, sp - margin) is stack memory below every
            // live frame; nothing else owns it. Volatile: the stores must stay.
            unsafe { ptr::write_volatile(p as *mut u32, PAINT) };
            p += 4;
        }
    }

    /// Deepest stack use since the last paint, in bytes from the stack's top.
    fn high_water(&self) -> usize {
        let mut p = self.stack_bottom;
        // SAFETY: reads of stack memory within the linker-given bounds.
        while p < self.stack_top && unsafe { ptr::read_volatile(p as *const u32) } == PAINT {
            p += 4;
        }
        self.stack_top - p
    }

    /// Runs `f`, returning its result and its cost.
    pub fn measure<T>(&self, f: impl FnOnce() -> T) -> (T, Cost) {
        self.repaint();
        let start = (self.instructions)();
        let value = f();
        let instructions = (self.instructions)().wrapping_sub(start);
        let stack_bytes = self.high_water();
        // Load and store: thumbv6m has no atomic read-modify-write, and
        // nothing else measures meanwhile.
        if stack_bytes > DEEPEST.load(Ordering::Relaxed) {
            DEEPEST.store(stack_bytes, Ordering::Relaxed);
        }
        (value, Cost { instructions, stack_bytes })
    }

    /// The deepest stack any measurement saw, in bytes from the stack's
    /// top; the whole [`stack_size`](Self::stack_size) if it reached the
    /// region's end (then it may have run over what lies below).
    pub fn deepest_stack(&self) -> usize {
        DEEPEST.load(Ordering::Relaxed)
    }
}
