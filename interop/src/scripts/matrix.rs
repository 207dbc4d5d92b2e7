//! The run matrix (FORMAT.md §1.3): every script x cipher suite x handshake
//! mode x assignment of libraries to actors with ours among them (the real
//! Cartesian product, not the Go runner's aliased one), or a seeded sample
//! of it; `deep_random` (841 actors) always as the runner's `-random`: one
//! uniformly random library per actor, seeded. Verdicts are counted per
//! script and pairing (the set of libraries in the assignment).

use super::config::Script;
use super::run::{RunSpec, Verdict, run};
use super::{Factory, Library, OUR_SUITES};
use crate::SeededRng;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Scripts with more actors than this run only as random assignments.
pub const MAX_ENUMERATED_ACTORS: usize = 12;

/// How many runs of each script to make.
#[derive(Clone, Copy, Debug)]
pub enum Coverage {
    /// Every assignment with ours in it; `random_runs` random assignments
    /// per suite and mode for scripts with too many actors.
    Full {
        /// Random assignments per suite and mode of large scripts.
        random_runs: usize,
    },
    /// Per script, suite and mode: all ours, then `per_pairing` random
    /// assignments of each mixed pairing (ours with OpenMLS, with mls-rs,
    /// with both); large scripts get all ours and `per_pairing` random
    /// assignments, in the first suite and mode only.
    Sample {
        /// Random assignments per pairing.
        per_pairing: usize,
    },
}

/// One run to make.
#[derive(Clone, Debug)]
pub struct Planned {
    /// Index into the script list.
    pub script: usize,
    /// Library per actor.
    pub assignment: Vec<Library>,
    /// Starting suite.
    pub suite: u16,
    /// Handshakes as PrivateMessage.
    pub encrypt: bool,
    /// The run's seed.
    pub seed: u64,
}

/// The libraries taking part in an assignment, as a column label.
pub fn pairing(assignment: &[Library]) -> &'static str {
    let has = |l| assignment.contains(&l);
    match (has(Library::OpenMls), has(Library::MlsRs)) {
        (false, false) => "ours",
        (true, false) => "ours+OpenMLS",
        (false, true) => "ours+mls-rs",
        (true, true) => "all three",
    }
}

/// The pairings, in column order.
pub const PAIRINGS: [&str; 4] = ["ours", "ours+OpenMLS", "ours+mls-rs", "all three"];

fn libraries_of(p: &str) -> &'static [Library] {
    match p {
        "ours+OpenMLS" => &[Library::Ours, Library::OpenMls],
        "ours+mls-rs" => &[Library::Ours, Library::MlsRs],
        "all three" => &Library::ALL,
        _ => &[Library::Ours],
    }
}

/// Every assignment of `k` actors with ours among them (3^k - 2^k).
pub fn all_assignments(k: usize) -> Vec<Vec<Library>> {
    let total = 3usize.pow(u32::try_from(k).unwrap_or(u32::MAX));
    (0..total)
        .map(|mut n| {
            (0..k)
                .map(|_| {
                    let l = Library::ALL[n % 3];
                    n /= 3;
                    l
                })
                .collect::<Vec<_>>()
        })
        .filter(|a| a.contains(&Library::Ours))
        .collect()
}

/// A random assignment of `k` actors drawing from `libraries` that uses
/// each of them at least once (when `k` allows).
fn random_assignment(k: usize, libraries: &[Library], rng: &mut SeededRng) -> Vec<Library> {
    loop {
        let a: Vec<Library> = (0..k).map(|_| libraries[rng.below(libraries.len())]).collect();
        if k < libraries.len() || libraries.iter().all(|l| a.contains(l)) {
            return a;
        }
    }
}

/// The runs of `coverage` over `scripts`, seeded by `seed`.
pub fn plan(scripts: &[Script], coverage: Coverage, seed: u64) -> Vec<Planned> {
    let mut rng = SeededRng(seed);
    let mut out = Vec::new();
    for (si, s) in scripts.iter().enumerate() {
        let k = s.actors.len();
        let large = k > MAX_ENUMERATED_ACTORS;
        for (mi, &suite) in OUR_SUITES.iter().enumerate() {
            for encrypt in [true, false] {
                let first = mi == 0 && encrypt;
                let assignments: Vec<Vec<Library>> = match (coverage, large) {
                    (Coverage::Full { .. }, false) => all_assignments(k),
                    (Coverage::Full { random_runs }, true) => std::iter::once(vec![Library::Ours; k])
                        .chain((0..random_runs).map(|_| random_assignment(k, &Library::ALL, &mut rng)))
                        .collect(),
                    (Coverage::Sample { per_pairing }, false) => std::iter::once(vec![Library::Ours; k])
                        .chain(PAIRINGS[1..].iter().flat_map(|p| {
                            let libs = libraries_of(p);
                            (0..per_pairing).map(|_| random_assignment(k, libs, &mut rng)).collect::<Vec<_>>()
                        }))
                        .filter(|a| a.contains(&Library::Ours))
                        .collect(),
                    (Coverage::Sample { per_pairing }, true) if first => std::iter::once(vec![Library::Ours; k])
                        .chain((0..per_pairing).map(|_| random_assignment(k, &Library::ALL, &mut rng)))
                        .collect(),
                    (Coverage::Sample { .. }, true) => Vec::new(),
                };
                for assignment in assignments {
                    let seed = rand_core::TryRng::try_next_u64(&mut rng).unwrap_or_default();
                    out.push(Planned { script: si, assignment, suite, encrypt, seed });
                }
            }
        }
    }
    out
}

/// Counts of one cell of the table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Count {
    /// Runs that passed.
    pub passed: usize,
    /// Runs that failed.
    pub failed: usize,
    /// Runs not supported by an anchor.
    pub not_supported: usize,
}

impl Count {
    fn add(&mut self, o: Count) {
        self.passed += o.passed;
        self.failed += o.failed;
        self.not_supported += o.not_supported;
    }
}

/// What a set of runs gave.
#[derive(Debug, Default)]
pub struct Report {
    /// Per script label and pairing.
    pub cells: BTreeMap<(String, &'static str), Count>,
    /// Per starting cipher suite.
    pub suites: BTreeMap<u16, Count>,
    /// Failures: one line each (script, suite, mode, assignment, step, error).
    pub failures: Vec<String>,
    /// Why runs were not supported, with how many: `(library, reason)`.
    pub unsupported: BTreeMap<(Library, String), usize>,
    /// Comparisons made in passed runs.
    pub checks: usize,
}

impl Report {
    /// The totals.
    pub fn total(&self) -> Count {
        let mut t = Count::default();
        self.cells.values().for_each(|c| t.add(*c));
        t
    }

    /// The table: one row per script, one column per pairing, cells
    /// `passed / not supported` (and failed, if any).
    pub fn table(&self) -> String {
        let mut rows: BTreeMap<&str, [Count; 4]> = BTreeMap::new();
        for ((script, p), c) in &self.cells {
            let col = PAIRINGS.iter().position(|x| x == p).unwrap_or(0);
            rows.entry(script.as_str()).or_default()[col].add(*c);
        }
        let mut out = String::from("| script | ours | ours+OpenMLS | ours+mls-rs | all three |\n|---|---|---|---|---|\n");
        for (script, cols) in rows {
            let _ = write!(out, "| {script} |");
            for c in cols {
                let _ = match (c.failed, c.not_supported) {
                    _ if c == Count::default() => write!(out, " — |"),
                    (0, 0) => write!(out, " {} |", c.passed),
                    (0, n) => write!(out, " {} / {n} n.s. |", c.passed),
                    (f, n) => write!(out, " {} / {n} n.s. / **{f} failed** |", c.passed),
                };
            }
            out.push('\n');
        }
        out
    }

    /// One line per starting cipher suite: `suite 0x0002: N passed, ...`.
    pub fn per_suite(&self) -> String {
        let mut out = String::new();
        for (suite, c) in &self.suites {
            let _ =
                writeln!(out, "suite 0x{suite:04x}: {} passed, {} failed, {} not supported", c.passed, c.failed, c.not_supported);
        }
        out
    }

    /// The summary line the test prints last.
    pub fn summary(&self) -> String {
        let t = self.total();
        format!("interop scripts: {} passed, {} failed, {} not supported", t.passed, t.failed, t.not_supported)
    }
}

/// Runs `planned` on `threads` threads and reports; `progress` prints a
/// line every so many runs (0: never).
pub fn execute(scripts: &[Script], planned: &[Planned], factory: &(dyn Factory + Sync), threads: usize, progress: usize) -> Report {
    let next = AtomicUsize::new(0);
    let report = Mutex::new(Report::default());
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            // Our group slots are built in place, but some code paths keep
            // large buffers on the stack in unoptimized builds.
            let worker = std::thread::Builder::new().stack_size(64 << 20);
            let spawned = worker.spawn_scoped(scope, || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(p) = planned.get(i) else { break };
                    let script = &scripts[p.script];
                    let spec = RunSpec {
                        script,
                        assignment: &p.assignment,
                        suite: p.suite,
                        encrypt: p.encrypt,
                        seed: p.seed,
                    };
                    let verdict = run(&spec, factory);
                    let mut r = report.lock().unwrap_or_else(|e| e.into_inner());
                    let count = match &verdict {
                        Verdict::Passed { .. } => Count { passed: 1, ..Count::default() },
                        Verdict::Failed { .. } => Count { failed: 1, ..Count::default() },
                        Verdict::NotSupported { .. } => Count { not_supported: 1, ..Count::default() },
                    };
                    r.cells.entry((script.label(), pairing(&p.assignment))).or_default().add(count);
                    r.suites.entry(p.suite).or_default().add(count);
                    match verdict {
                        Verdict::Passed { checks } => r.checks += checks,
                        Verdict::Failed { step, error } => {
                            let line = format!(
                                "FAILED {} suite {} {} [{}] seed {} step {step} ({}): {error}",
                                script.label(),
                                p.suite,
                                if p.encrypt { "private" } else { "public" },
                                spec.assignment_label(),
                                p.seed,
                                script.raw.get(step).map(|v| v.to_string()).unwrap_or_default(),
                            );
                            r.failures.push(line);
                        }
                        Verdict::NotSupported { library, reason, .. } => {
                            *r.unsupported.entry((library, reason)).or_default() += 1;
                        }
                    }
                    if progress > 0 && (i + 1).is_multiple_of(progress) {
                        eprintln!("{} of {} runs", i + 1, planned.len());
                    }
                }
            });
            spawned.expect("spawn a worker thread");
        }
    });
    report.into_inner().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_assignment_with_ours_once() {
        let a = all_assignments(3);
        assert_eq!(a.len(), 27 - 8);
        let mut sorted = a.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), a.len());
        assert!(a.iter().all(|x| x.contains(&Library::Ours)));
    }
}
