//! A few helper threads that spin briefly for work before they park, and a
//! caller that works beside them: the core's parallel steps are short
//! (a join of 16 members checks its 16 leaf signatures in about 180 us on
//! 2 threads), shorter than it takes to wake a parked thread on a virtual
//! machine (about 100 us here, measured in rayon's pool and in this one).
//!
//! [`run`] hands items `0..n` out one at a time to the calling thread and
//! to whichever helper is free: a helper still spinning from the last task
//! takes items at once; a parked one is woken and takes what is left when
//! it arrives (none, if the caller got through them first: never slower
//! than running them all on the caller plus a wake-up call). One task at a
//! time: a second caller meanwhile (another thread's group) runs its items
//! itself.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, TryLockError};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// How long a helper spins for the next task before it parks. Longer
/// keeps back-to-back operations (a server's stream of Commits) off the
/// wake-up path; shorter burns less of a core after the last one. The
/// bench's joins of 2 and 16 members: 175 and 323 us with 0.5 ms, 169 and
/// 312 us with 2 ms (OpenMP runtimes spin 200 ms by default).
const SPIN: Duration = Duration::from_micros(2000);

/// The items of one task; lives on the caller's stack for the task's length.
struct Task<'a> {
    job: &'a (dyn Fn(usize) + Sync),
    n: usize,
    next: AtomicUsize,
    /// A helper's item panicked.
    panicked: AtomicBool,
}

impl Task<'_> {
    /// Takes and runs items until none is left.
    fn work(&self) {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.n {
                return;
            }
            (self.job)(i);
        }
    }
}

/// A pointer to the current [`Task`], its lifetime erased: only read while
/// registered in `Pool::busy` (see [`run`]).
#[derive(Clone, Copy)]
struct TaskPtr(*const Task<'static>);

// SAFETY: a `Task` is `Sync` (its job is `Sync`, the rest atomics); the
// pointer is only dereferenced while the caller keeps the task alive.
unsafe impl Send for TaskPtr {}

struct Pool {
    /// The current task, if any; also the one-task-at-a-time lock.
    task: Mutex<Option<TaskPtr>>,
    /// Helpers that took the current task and have not finished with it.
    busy: AtomicUsize,
    /// Bumped for each task: what spinning helpers watch.
    generation: AtomicU64,
    /// Bumped by [`wake`]: a helper that sees it spins for [`SPIN`] more.
    wakes: AtomicU64,
    /// Times a helper came back from parking (what the tests watch).
    unparked: AtomicU64,
    helpers: Vec<(Thread, AtomicBool)>,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<&'static Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        // The caller works too: one helper fewer than cores.
        let n = std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(1)
            .saturating_sub(1);
        let started: Vec<_> = (0..n)
            .filter_map(|i| {
                let (tx, rx) = std::sync::mpsc::channel::<&'static Pool>();
                let handle = std::thread::Builder::new()
                    .name(format!("mls-helper-{i}"))
                    .spawn(move || {
                        if let Ok(pool) = rx.recv() {
                            helper(pool, i);
                        }
                    })
                    .ok()?;
                Some((handle.thread().clone(), tx))
            })
            .collect();
        let pool: &'static Pool = Box::leak(Box::new(Pool {
            task: Mutex::new(None),
            busy: AtomicUsize::new(0),
            generation: AtomicU64::new(0),
            wakes: AtomicU64::new(0),
            unparked: AtomicU64::new(0),
            helpers: started
                .iter()
                .map(|(t, _)| (t.clone(), AtomicBool::new(false)))
                .collect(),
        }));
        for (_, tx) in started {
            let _ = tx.send(pool);
        }
        pool
    })
}

fn helper(pool: &'static Pool, me: usize) {
    let Some((_, parked)) = pool.helpers.get(me) else {
        return;
    };
    let mut seen = pool.generation.load(Ordering::Acquire);
    let mut seen_wake = pool.wakes.load(Ordering::Acquire);
    loop {
        let mut deadline = Instant::now() + SPIN;
        loop {
            let now = pool.generation.load(Ordering::Acquire);
            if now != seen {
                seen = now;
                break;
            }
            let wake = pool.wakes.load(Ordering::Acquire);
            if wake != seen_wake {
                seen_wake = wake;
                deadline = Instant::now() + SPIN;
            }
            if Instant::now() < deadline {
                std::hint::spin_loop();
                continue;
            }
            // Announce the park, then look once more: a caller bumps the
            // generation (or `wakes`) before it reads `parked` (all SeqCst),
            // so one of the two sees the other. An unpark before the park
            // is kept.
            parked.store(true, Ordering::SeqCst);
            if pool.generation.load(Ordering::SeqCst) == seen
                && pool.wakes.load(Ordering::SeqCst) == seen_wake
            {
                std::thread::park();
                pool.unparked.fetch_add(1, Ordering::Relaxed);
            }
            parked.store(false, Ordering::SeqCst);
        }
        // Registered under the lock: the caller clears the task under it
        // and then waits for `busy` to drain, so the task outlives our use.
        let task = {
            let slot = pool.task.lock().unwrap_or_else(|e| e.into_inner());
            let task = *slot;
            if task.is_some() {
                pool.busy.fetch_add(1, Ordering::AcqRel);
            }
            task
        };
        if let Some(TaskPtr(task)) = task {
            // SAFETY: registered in `busy` while the task was current.
            let task = unsafe { &*task };
            if catch_unwind(AssertUnwindSafe(|| task.work())).is_err() {
                task.panicked.store(true, Ordering::Relaxed);
            }
            pool.busy.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Clears the task and waits for the helpers to leave it, also when an
/// item of the caller's panics: no helper may touch the task after `run`.
/// The lock is held while they drain, so no other task starts meanwhile
/// (`busy` counts this task's helpers only).
struct Finish<'p>(&'p Pool);

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        let mut slot = self.0.task.lock().unwrap_or_else(|e| e.into_inner());
        *slot = None;
        while self.0.busy.load(Ordering::Acquire) != 0 {
            std::hint::spin_loop();
        }
    }
}

/// Threads that run a task's items: the caller and the helpers.
pub(crate) fn threads() -> usize {
    pool().helpers.len() + 1
}

/// Whether a helper is spinning (not parked): a task now starts at once.
pub(crate) fn warm() -> bool {
    pool()
        .helpers
        .iter()
        .any(|(_, parked)| !parked.load(Ordering::Relaxed))
}

/// Wakes the parked helpers (they then spin for [`SPIN`]): a task is
/// coming. Counted as warm from now on, so that the task's split assumes
/// them (the wake takes about 100 us; a helper that comes late finds the
/// items taken and costs nothing).
pub(crate) fn wake() {
    let pool = pool();
    pool.wakes.fetch_add(1, Ordering::SeqCst);
    for (thread, parked) in &pool.helpers {
        if parked.swap(false, Ordering::SeqCst) {
            thread.unpark();
        }
    }
}

/// Runs `job(i)` for every `i` in `0..n`, on the calling thread and the
/// helpers; returns when all have run. A panic in a helper's item is
/// raised here.
pub(crate) fn run(n: usize, job: &(dyn Fn(usize) + Sync)) {
    let pool = pool();
    let task = Task {
        job,
        n,
        next: AtomicUsize::new(0),
        panicked: AtomicBool::new(false),
    };
    if n <= 1 || pool.helpers.is_empty() {
        task.work();
        return;
    }
    let mut slot = match pool.task.try_lock() {
        Ok(slot) => slot,
        // Another caller's task (or a poisoned lock): ours alone.
        Err(TryLockError::WouldBlock | TryLockError::Poisoned(_)) => {
            task.work();
            return;
        }
    };
    if slot.is_some() {
        drop(slot);
        task.work();
        return;
    }
    let ptr: *const Task<'_> = &task;
    // SAFETY: only the lifetime is erased; `Finish` below keeps `task`
    // alive until no helper holds it.
    *slot = Some(TaskPtr(unsafe {
        core::mem::transmute::<*const Task<'_>, *const Task<'static>>(ptr)
    }));
    drop(slot);
    let finish = Finish(pool);
    pool.generation.fetch_add(1, Ordering::SeqCst);
    for (thread, parked) in &pool.helpers {
        if parked.load(Ordering::SeqCst) {
            thread.unpark();
        }
    }
    task.work();
    drop(finish);
    if task.panicked.load(Ordering::Relaxed) {
        panic!("a work item panicked on a helper thread");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Once the helpers have parked, [`wake`] brings them back (they come
    /// back from `park`) and counts them warm at once; no task is needed.
    #[test]
    fn wake_brings_parked_helpers_back() {
        let pool = pool();
        assert!(!pool.helpers.is_empty(), "this test needs 2 cores or more");
        // Long enough past any task's spin for every helper to park.
        std::thread::sleep(SPIN * 10);
        assert!(!warm(), "the helpers parked after {SPIN:?}");
        let before = pool.unparked.load(Ordering::Relaxed);
        wake();
        assert!(warm(), "warm once woken");
        let started = Instant::now();
        while pool.unparked.load(Ordering::Relaxed) == before {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "no helper came back from park"
            );
            std::thread::sleep(Duration::from_micros(100));
        }
    }
}
