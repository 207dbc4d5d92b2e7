//! `Group::EMPTY` is all zero bytes (issue #14), so a `static` group slot
//! lands in `.bss` and costs no flash: no image as large as the group is
//! copied into RAM at start-up. Each static below must lie in this
//! executable's `.bss`, between the linker's `__bss_start` and `_end`; one
//! byte that is not zero (e.g. an `Option` whose `None` the compiler stores
//! as a `bool`'s unused value 2) moves the whole static to `.data`. The
//! firmware checks the same on the Cortex-M4: `boards/measure.sh` reports
//! the `Group::EMPTY` image, and CI's footprint budget allows 0 bytes.
#![cfg(target_os = "linux")]

use std::cell::UnsafeCell;

use mls_nostd::group::Group;
use mls_nostd::ratchet_tree::tree::RatchetTree;
use mls_nostd::secret_tree::SecretTree;

unsafe extern "C" {
    // Defined by the GNU and LLVM linkers.
    static __bss_start: u8;
    static _end: u8;
}

/// Where `x` lies: in `.bss`, or not.
fn in_bss<T>(x: &'static T) -> bool {
    let start = &raw const __bss_start as usize;
    let end = &raw const _end as usize;
    let at = std::hint::black_box(x as *const T as usize);
    start <= at && at + size_of::<T>() <= end
}

/// A writable static (as a device's group slot is): an immutable one would
/// go to `.rodata`, zero or not.
struct Slot<T>(UnsafeCell<T>);
// SAFETY: never read or written, only its address is taken.
unsafe impl<T> Sync for Slot<T> {}

static SMALL: Slot<Group<8, { 8 * 224 + 1024 }, 4, 4096>> = Slot(UnsafeCell::new(Group::EMPTY));
static MEDIUM: Slot<Group<64, { 64 * 224 + 1024 }, 32, 4096>> = Slot(UnsafeCell::new(Group::EMPTY));
static SECRET_TREE: Slot<SecretTree<64, 32>> = Slot(UnsafeCell::new(SecretTree::EMPTY));
static TREE: Slot<RatchetTree<64, { 64 * 224 }>> = Slot(UnsafeCell::new(RatchetTree::EMPTY));
/// Controls: the check tells a zero static from one that is not.
static ZERO: Slot<[u8; 4096]> = Slot(UnsafeCell::new([0; 4096]));
static ONES: Slot<[u8; 4096]> = Slot(UnsafeCell::new([1; 4096]));

#[test]
fn the_empty_group_is_all_zero_bytes() {
    assert!(in_bss(&ZERO), "control: a zero static is in .bss");
    assert!(!in_bss(&ONES), "control: a static of ones is not in .bss");
    assert!(in_bss(&SECRET_TREE), "SecretTree::EMPTY is not all zero bytes");
    assert!(in_bss(&TREE), "RatchetTree::EMPTY is not all zero bytes");
    assert!(in_bss(&SMALL), "Group::<8, ..>::EMPTY is not all zero bytes");
    assert!(in_bss(&MEDIUM), "Group::<64, ..>::EMPTY is not all zero bytes");
}
