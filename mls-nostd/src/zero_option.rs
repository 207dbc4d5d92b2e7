//! An optional value whose absence is all zero bytes.
//!
//! A `static` group slot costs no flash only if its initial value,
//! `Group::EMPTY`, is all zero bytes: it then lands in `.bss` instead of
//! being copied from an image as large as the group (issue #14).
//! `Option<T>` cannot promise that: when `T` has a niche (a `bool`, an enum's
//! unused discriminants) the compiler stores `None` as one of those values,
//! e.g. a 2 where a `bool` is. [`ZeroOption`] keeps a flag beside a value
//! that is always there; absent is the flag `false` and `T::EMPTY`, which
//! [`Zeroed`] promises is all zero bytes (the core's test `group_empty_is_zero`
//! and the firmware's footprint check hold it to that).

/// A type whose `EMPTY` value is all zero bytes.
pub(crate) trait Zeroed: Sized {
    /// The empty value (all zero bytes).
    const EMPTY: Self;
}

/// `Option<T>` with `None` stored as zero bytes.
#[derive(Clone, Debug)]
pub(crate) struct ZeroOption<T: Zeroed> {
    some: bool,
    value: T,
}

impl<T: Zeroed> ZeroOption<T> {
    /// No value.
    pub(crate) const NONE: Self = Self { some: false, value: T::EMPTY };

    pub(crate) fn is_some(&self) -> bool {
        self.some
    }

    pub(crate) fn is_none(&self) -> bool {
        !self.some
    }

    pub(crate) fn as_ref(&self) -> Option<&T> {
        if self.some { Some(&self.value) } else { None }
    }

    pub(crate) fn as_mut(&mut self) -> Option<&mut T> {
        if self.some { Some(&mut self.value) } else { None }
    }

    /// A present `T::EMPTY`, to be filled in place (a large `T` is never
    /// built on the caller's stack: this frame holds the temporary, if any).
    /// The value it replaces is dropped (zeroized, if it holds secrets).
    #[inline(never)]
    pub(crate) fn insert_empty(&mut self) -> &mut T {
        self.value = T::EMPTY;
        self.some = true;
        &mut self.value
    }

    /// The value, a present `T::EMPTY` if there was none.
    pub(crate) fn get_or_insert_empty(&mut self) -> &mut T {
        if !self.some {
            return self.insert_empty();
        }
        &mut self.value
    }

    /// `value`, present.
    pub(crate) fn set(&mut self, value: T) {
        self.value = value;
        self.some = true;
    }

    /// No value: the one held is replaced by `T::EMPTY` (dropped, so
    /// zeroized if it holds secrets), as `Option::take` would drop it.
    #[inline(never)]
    pub(crate) fn clear(&mut self) {
        self.value = T::EMPTY;
        self.some = false;
    }
}
