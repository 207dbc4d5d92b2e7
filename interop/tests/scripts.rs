//! The MLS working group's interop scripts (`tests/data/interop-configs/`,
//! `FORMAT.md` there), run in process by `mls_interop::scripts` with one
//! client per actor: ours, OpenMLS 0.9 or mls-rs 0.57.
//!
//! By default a seeded sample (CI): per script, cipher suite (1, 2, 3) and
//! handshake mode (PrivateMessage, PublicMessage), the all-ours assignment
//! and one random assignment of each mixed pairing; `deep_random` all ours
//! and one random mix, in one suite and mode. `MLS_INTEROP_SCRIPTS=full`
//! runs every assignment with ours in it (`interop/run-scripts.sh`).
//! The sample's seed is 1 unless `MLS_INTEROP_SCRIPTS_SEED` sets another (a
//! number, or `random`); `MLS_INTEROP_SCRIPTS_ONLY=config/name`
//! keeps one script, `MLS_INTEROP_SCRIPTS_RANDOM=N` sets the random
//! assignments of `deep_random` per suite and mode in the full run;
//! `MLS_INTEROP_SCRIPTS_ASSIGNMENT=oRO...` runs one assignment (a letter
//! per actor: `o` ours, `O` OpenMLS, `R` mls-rs) in every suite and mode.
//!
//! The last line printed is `interop scripts: N passed, M failed, K not
//! supported`; the test fails if M > 0, or if N is below the floor.

use crate::mls_rs_party;
use crate::openmls_party;

use mls_interop::OursClient;
use mls_interop::scripts::matrix::{self, Coverage};
use mls_interop::scripts::{Client, Factory, Library, OUR_SUITES, config};
use std::time::Instant;

struct Clients;

impl Factory for Clients {
    fn client(&self, library: Library, name: &str, seed: u64) -> Box<dyn Client> {
        match library {
            Library::Ours => Box::new(OursClient::new(name, seed)),
            Library::OpenMls => Box::new(openmls_party::OpenMlsClient::new(name)),
            Library::MlsRs => Box::new(mls_rs_party::MlsRsClient::new(name)),
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|s| !s.is_empty())
}

/// Passed runs a sample must reach. About 890 runs are planned (4 per
/// script, suite and mode, fewer for 2-actor scripts; suites 1, 2 and 3);
/// those an anchor cannot do (README: ReInit and branching with OpenMLS,
/// ...) do not pass. The default seed (1) passes 702; seeds 2 to 6 passed
/// 701 to 708.
const SAMPLE_FLOOR: usize = 660;
/// Passed runs the full product must reach (measured in suites 1 and 3
/// only: seed 1 passed 32,660 of 43,428; with suite 2 not yet measured).
const FULL_FLOOR: usize = 30_000;
/// Passed runs each suite of [`OUR_SUITES`] must reach in the sample (seeds
/// 1 to 6: 229 to 243 per suite).
const SAMPLE_SUITE_FLOOR: usize = 215;
/// Passed runs each suite must reach in the full product (suites 1 and 3
/// passed about 16,330 each; suite 2 not yet measured).
const FULL_SUITE_FLOOR: usize = 10_000;

#[test]
fn interop_scripts() {
    let dir = mls_tests::interop_configs_dir();
    let mut scripts = config::load_dir(&dir).unwrap_or_else(|e| panic!("configs: {e}"));
    assert_eq!(scripts.len(), 40, "the 40 scripts of the 8 configs in {}", dir.display());
    if let Some(only) = env("MLS_INTEROP_SCRIPTS_ONLY") {
        scripts.retain(|s| s.label() == only || s.config == only);
        assert!(!scripts.is_empty(), "no script {only}");
    }
    let full = env("MLS_INTEROP_SCRIPTS").is_some_and(|v| v == "full");
    // CI runs one fixed sample; `MLS_INTEROP_SCRIPTS_SEED=random` draws another.
    let seed = match env("MLS_INTEROP_SCRIPTS_SEED").as_deref() {
        None => 1,
        Some("random") => {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
        }
        Some(s) => s.parse().unwrap_or_else(|_| panic!("MLS_INTEROP_SCRIPTS_SEED: {s:?} is neither a number nor \"random\"")),
    };
    let random_runs = env("MLS_INTEROP_SCRIPTS_RANDOM").and_then(|s| s.parse().ok()).unwrap_or(3);
    let coverage = if full { Coverage::Full { random_runs } } else { Coverage::Sample { per_pairing: 1 } };
    let mut planned = matrix::plan(&scripts, coverage, seed);
    if let Some(letters) = env("MLS_INTEROP_SCRIPTS_ASSIGNMENT") {
        // One assignment (letters o, O, R per actor) in every suite and mode.
        let assignment: Vec<Library> = letters
            .chars()
            .map(|c| *Library::ALL.iter().find(|l| l.letter() == c).unwrap_or_else(|| panic!("library letter {c}")))
            .collect();
        planned.retain(|p| scripts[p.script].actors.len() == assignment.len());
        planned.iter_mut().for_each(|p| p.assignment = assignment.clone());
        planned.dedup_by(|a, b| a.script == b.script && a.suite == b.suite && a.encrypt == b.encrypt);
    }
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!(
        "{} runs of {} scripts ({}), seed {seed} (replay with MLS_INTEROP_SCRIPTS_SEED={seed}), {threads} threads",
        planned.len(),
        scripts.len(),
        if full { "every assignment with ours" } else { "seeded sample" },
    );
    let start = Instant::now();
    let report = matrix::execute(&scripts, &planned, &Clients, threads, if full { 1000 } else { 0 });
    let elapsed = start.elapsed();
    for f in &report.failures {
        println!("{f}");
    }
    println!("\n{}", report.table());
    for ((library, reason), n) in &report.unsupported {
        println!("not supported by {library} ({n} runs): {reason}");
    }
    let t = report.total();
    println!("{} comparisons (epoch authenticators, authenticated data, plaintexts) held", report.checks);
    println!("time: {:.1} s", elapsed.as_secs_f64());
    print!("{}", report.per_suite());
    println!("{}", report.summary());
    assert_eq!(t.passed + t.failed + t.not_supported, planned.len(), "every planned run has a verdict");
    assert_eq!(t.failed, 0, "failed runs (listed above)");
    let floor = if full { FULL_FLOOR } else { SAMPLE_FLOOR };
    if env("MLS_INTEROP_SCRIPTS_ONLY").is_none() {
        // No suite may fall out unseen (a suite the core lost counts as
        // not supported by ours, never as passed).
        let suite_floor = if full { FULL_SUITE_FLOOR } else { SAMPLE_SUITE_FLOOR };
        for suite in OUR_SUITES {
            let passed = report.suites.get(suite).map_or(0, |c| c.passed);
            assert!(passed >= suite_floor, "suite 0x{suite:04x}: {passed} runs passed, fewer than the floor of {suite_floor}");
        }
        assert!(t.passed >= floor, "{} runs passed, fewer than the floor of {floor}", t.passed);
    }
}
