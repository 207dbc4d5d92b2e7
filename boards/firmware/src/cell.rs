//! A `static` slot for large state (a group, message buffers) that is handed
//! out once as `&'static mut`, without `static mut`.
//!
//! The slot starts as zeroed bytes, so it lands in `.bss` and costs no
//! flash. [`Slot::take`] writes the initial value in place, so the state is
//! never built on the stack either; `Group::EMPTY` is all zero bytes (issue
//! #14), so writing it is a `memset`, with no image of the group in flash
//! (`boards/measure.sh` shows the image; CI's budget allows 0 bytes).

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;

/// Storage for one `T`, initialised and borrowed once.
pub struct Slot<T> {
    taken: UnsafeCell<bool>,
    value: UnsafeCell<MaybeUninit<T>>,
}

// SAFETY: the value is reachable only through the one `&'static mut` that
// `take` hands out, under a critical section that makes `taken` race-free.
unsafe impl<T: Send> Sync for Slot<T> {}

impl<T> Slot<T> {
    /// An empty slot (all zero bytes: placed in `.bss`).
    pub const fn new() -> Self {
        Self { taken: UnsafeCell::new(false), value: UnsafeCell::new(MaybeUninit::zeroed()) }
    }

    /// The first call initialises the value with `init` (which writes it in
    /// place) and returns it; later calls return `None`.
    ///
    /// # Safety
    ///
    /// `init` must leave a valid `T` at the pointer it is given.
    // `&self` to `&mut T` is the point of the slot: handed out once only.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn take_with(&'static self, init: impl FnOnce(*mut T)) -> Option<&'static mut T> {
        let first = critical_section::with(|_| {
            // SAFETY: only read and written here, inside the critical section.
            let taken = unsafe { &mut *self.taken.get() };
            !core::mem::replace(taken, true)
        });
        if !first {
            return None;
        }
        // SAFETY: `first` is true once only, so this is the only reference.
        let slot = unsafe { &mut *self.value.get() };
        init(slot.as_mut_ptr());
        // SAFETY: `init` initialised it (the caller's promise).
        Some(unsafe { slot.assume_init_mut() })
    }

    /// Like [`Slot::take_with`], from a value (e.g. a `const`), written in
    /// place.
    #[allow(clippy::mut_from_ref)]
    pub fn take(&'static self, value: T) -> Option<&'static mut T> {
        // SAFETY: `write` leaves a valid `T`.
        unsafe { self.take_with(|p| p.write(value)) }
    }
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const L: usize> Slot<[u8; L]> {
    /// The first call returns the buffer (all zero); later calls `None`.
    #[allow(clippy::mut_from_ref)]
    pub fn take_bytes(&'static self) -> Option<&'static mut [u8; L]> {
        // SAFETY: the slot starts zeroed and zero bytes are a valid `[u8; L]`.
        unsafe { self.take_with(|_| {}) }
    }
}
