//! Peak heap per operation (issue #16): a counting global allocator, and the
//! high-water mark of the heap above its level when each measured
//! operation starts, the largest over the iterations of one benchmark but
//! its first (a first call may grow buffers the member keeps for the next:
//! the bench's output buffers of ours; the same rule for every library).
//! Written per scenario and library to `$CRITERION_HOME/mls-peak.json`.
//!
//! It measures what an operation allocates beyond the state a member
//! already holds (ours holds its group in a fixed slot allocated once,
//! so an operation of ours that allocates nothing shows 0).

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// Largest peak above the start of an operation since the last `record`,
/// the first operation's apart.
static OP_PEAK: AtomicUsize = AtomicUsize::new(0);
static FIRST_PEAK: AtomicUsize = AtomicUsize::new(0);
/// Operations run since the last `record` (a filtered-out benchmark runs
/// none).
static RAN: AtomicUsize = AtomicUsize::new(0);
static PEAKS: Mutex<BTreeMap<String, BTreeMap<String, usize>>> = Mutex::new(BTreeMap::new());

fn grew(size: usize) {
    let now = CURRENT.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counters are only read for the report.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is System's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `op`, keeping the heap it used above its starting level.
pub fn measure<T>(op: impl FnOnce() -> T) -> T {
    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = op();
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    match RAN.fetch_add(1, Ordering::Relaxed) {
        0 => FIRST_PEAK.store(peak, Ordering::Relaxed),
        _ => _ = OP_PEAK.fetch_max(peak, Ordering::Relaxed),
    }
    out
}

/// Files the peak of the operations run since the last call under
/// benchmark `group` and library `lib` (if any ran).
pub fn record(group: &str, lib: &str) {
    let (first, rest) = (FIRST_PEAK.swap(0, Ordering::Relaxed), OP_PEAK.swap(0, Ordering::Relaxed));
    let ran = RAN.swap(0, Ordering::Relaxed);
    let peak = if ran == 1 { first } else { rest };
    if ran > 0 {
        let mut peaks = PEAKS.lock().unwrap_or_else(|e| e.into_inner());
        peaks.entry(group.to_string()).or_default().insert(lib.to_string(), peak);
    }
}

/// Writes `{group: {lib: bytes}}` to `$CRITERION_HOME/mls-peak.json`.
pub fn write() {
    let Ok(dir) = std::env::var("CRITERION_HOME") else {
        eprintln!("CRITERION_HOME unset: peak heap not written");
        return;
    };
    let peaks = PEAKS.lock().unwrap_or_else(|e| e.into_inner());
    let body: Vec<String> = peaks
        .iter()
        .map(|(group, libs)| {
            let libs: Vec<String> = libs.iter().map(|(lib, bytes)| format!("\"{lib}\": {bytes}")).collect();
            format!("\"{group}\": {{{}}}", libs.join(", "))
        })
        .collect();
    let path = std::path::Path::new(&dir).join("mls-peak.json");
    if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, format!("{{{}}}\n", body.join(",\n")))) {
        eprintln!("{}: {e}", path.display());
    }
}
