//! Peak heap per operation (issue #16): a counting global allocator, and the
//! high-water mark of the heap above its level when each measured
//! operation starts, the largest over the iterations of one benchmark.
//! Written per scenario and library to `$CRITERION_HOME/mls-peak.json`.
//!
//! It measures what an operation allocates beyond the state a member
//! already holds (ours holds its group in a fixed slot allocated once,
//! so an operation of ours that allocates nothing shows 0).

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// Largest peak above the start of an operation since the last `record`.
static OP_PEAK: AtomicUsize = AtomicUsize::new(0);
/// Whether an operation ran since the last `record` (a filtered-out
/// benchmark runs none).
static RAN: AtomicBool = AtomicBool::new(false);
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
    OP_PEAK.fetch_max(PEAK.load(Ordering::Relaxed).saturating_sub(base), Ordering::Relaxed);
    RAN.store(true, Ordering::Relaxed);
    out
}

/// Files the peak of the operations run since the last call under
/// benchmark `group` and library `lib` (if any ran).
pub fn record(group: &str, lib: &str) {
    let peak = OP_PEAK.swap(0, Ordering::Relaxed);
    if RAN.swap(false, Ordering::Relaxed) {
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
