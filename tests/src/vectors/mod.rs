//! The per-case checks of every official vector file (FORMAT.md), shared by
//! the conformance tests (`tests/tests/*.rs`) and the `mls-vectors` runner.
//!
//! Each module checks one kind of file: `check_case` takes one case (one
//! element of the file's JSON array) and returns [`CaseOutcome::Ran`] with
//! what it counted, [`CaseOutcome::Skipped`] for a cipher suite this build
//! does not implement, or `Err` with the first mismatch. A check never
//! panics on purpose; [`run_case`] still catches a panic, so one bad case
//! cannot stop a file.

pub mod crypto_basics;
pub mod deserialization;
pub mod key_schedule;
pub mod message_protection;
pub mod messages;
pub mod passive_client;
pub mod psk_secret;
pub mod secret_tree;
pub mod transcript_hashes;
pub mod tree_math;
pub mod tree_operations;
pub mod tree_validation;
pub mod treekem;
pub mod welcome;

use mls_nostd::crypto::CipherSuite;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::{Debug, Display};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// What one case gave.
pub type CaseResult = Result<CaseOutcome, String>;

/// A case that did not fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaseOutcome {
    /// Every check passed; what the case counted on the way.
    Ran(Stats),
    /// Not run.
    Skipped(Skip),
}

/// Why a case was not run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// Its cipher suite is not implemented by this build.
    Suite(u64),
    /// It is not a JSON object, or has no integer `cipher_suite` where the
    /// kind needs one.
    Shape,
}

/// Named counters of what a case checked (keys, epochs, paths, ...).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats(BTreeMap<String, usize>);

impl Stats {
    /// Adds `n` to the counter `name`.
    pub fn add(&mut self, name: &str, n: usize) {
        *self.0.entry(name.to_string()).or_default() += n;
    }

    /// The counter `name` (0 if never added to).
    pub fn get(&self, name: &str) -> usize {
        self.0.get(name).copied().unwrap_or(0)
    }

    /// Adds every counter of `other`.
    pub fn merge(&mut self, other: &Stats) {
        for (k, v) in &other.0 {
            *self.0.entry(k.clone()).or_default() += v;
        }
    }

    /// Every counter, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, usize)> {
        self.0.iter().map(|(k, v)| (k.as_str(), *v))
    }
}

/// The kinds of vector file (FORMAT.md sections).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `tree-math.json`
    TreeMath,
    /// `deserialization.json`
    Deserialization,
    /// `crypto-basics.json`
    CryptoBasics,
    /// `secret-tree.json`
    SecretTree,
    /// `key-schedule.json`
    KeySchedule,
    /// `psk_secret.json`
    PskSecret,
    /// `transcript-hashes.json`
    TranscriptHashes,
    /// `message-protection.json`
    MessageProtection,
    /// `welcome.json`
    Welcome,
    /// `tree-validation.json`
    TreeValidation,
    /// `tree-operations.json`
    TreeOperations,
    /// `treekem.json`
    TreeKem,
    /// `messages.json`
    Messages,
    /// `passive-client-*.json`
    PassiveClient,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 14] = [
        Kind::TreeMath,
        Kind::Deserialization,
        Kind::CryptoBasics,
        Kind::SecretTree,
        Kind::KeySchedule,
        Kind::PskSecret,
        Kind::TranscriptHashes,
        Kind::MessageProtection,
        Kind::Welcome,
        Kind::TreeValidation,
        Kind::TreeOperations,
        Kind::TreeKem,
        Kind::Messages,
        Kind::PassiveClient,
    ];

    /// The kind's name (the official file name without `.json`, with `-`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::TreeMath => "tree-math",
            Kind::Deserialization => "deserialization",
            Kind::CryptoBasics => "crypto-basics",
            Kind::SecretTree => "secret-tree",
            Kind::KeySchedule => "key-schedule",
            Kind::PskSecret => "psk-secret",
            Kind::TranscriptHashes => "transcript-hashes",
            Kind::MessageProtection => "message-protection",
            Kind::Welcome => "welcome",
            Kind::TreeValidation => "tree-validation",
            Kind::TreeOperations => "tree-operations",
            Kind::TreeKem => "treekem",
            Kind::Messages => "messages",
            Kind::PassiveClient => "passive-client",
        }
    }

    /// The kind called `name` (`_` and `-` alike: `psk_secret` is `psk-secret`).
    pub fn parse(name: &str) -> Option<Kind> {
        let name = name.replace('_', "-");
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The kind of a file, from its name: `tree-math.json` is
    /// [`Kind::TreeMath`], any name that starts with `passive-client` is
    /// [`Kind::PassiveClient`].
    pub fn from_file_name(path: &Path) -> Option<Kind> {
        let name = path.file_name()?.to_str()?;
        let stem = name.strip_suffix(".json").unwrap_or(name).replace('_', "-");
        if stem.starts_with("passive-client") {
            return Some(Kind::PassiveClient);
        }
        Kind::parse(&stem)
    }

    /// Whether the cases of this kind name their cipher suite.
    pub fn has_suite(self) -> bool {
        !matches!(self, Kind::TreeMath | Kind::Deserialization | Kind::Messages)
    }

    /// Checks one case (no panic catching; see [`run_case`]).
    pub fn check_case(self, case: &Value) -> CaseResult {
        match self {
            Kind::TreeMath => tree_math::check_case(case),
            Kind::Deserialization => deserialization::check_case(case),
            Kind::CryptoBasics => crypto_basics::check_case(case),
            Kind::SecretTree => secret_tree::check_case(case),
            Kind::KeySchedule => key_schedule::check_case(case),
            Kind::PskSecret => psk_secret::check_case(case),
            Kind::TranscriptHashes => transcript_hashes::check_case(case),
            Kind::MessageProtection => message_protection::check_case(case),
            Kind::Welcome => welcome::check_case(case),
            Kind::TreeValidation => tree_validation::check_case(case),
            Kind::TreeOperations => tree_operations::check_case(case),
            Kind::TreeKem => treekem::check_case(case),
            Kind::Messages => messages::check_case(case),
            Kind::PassiveClient => passive_client::check_case(case),
        }
    }
}

impl Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Checks one case: skips what is not an object or (for kinds with a suite)
/// has no integer `cipher_suite`, and turns a panic into a failure.
pub fn run_case(kind: Kind, case: &Value) -> CaseResult {
    if !case.is_object() || (kind.has_suite() && !case["cipher_suite"].is_u64()) {
        return Ok(CaseOutcome::Skipped(Skip::Shape));
    }
    match catch_unwind(AssertUnwindSafe(|| kind.check_case(case))) {
        Ok(result) => result,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(format!("panicked: {message}"))
        }
    }
}

/// One failed case.
#[derive(Clone, Debug)]
pub struct Failure {
    /// Its index in the file.
    pub index: usize,
    /// The first check that failed.
    pub reason: String,
}

/// What a whole file gave.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Cases that ran and passed every check.
    pub passed: usize,
    /// Cases with a failed check.
    pub failed: usize,
    /// Cases not run (unsupported suite or unknown shape).
    pub skipped: usize,
    /// The skipped cases of unsupported suites, by suite.
    pub skipped_suites: BTreeMap<u64, usize>,
    /// The passed cases, by suite (cases of kinds without a suite not counted).
    pub passed_suites: BTreeMap<u64, usize>,
    /// The counters of the passed cases, summed.
    pub stats: Stats,
    /// Every failure, in file order.
    pub failures: Vec<Failure>,
}

impl Report {
    /// The runner's line: `FILE: N passed, M failed, K skipped`.
    pub fn summary(&self, file: &str) -> String {
        format!("{file}: {} passed, {} failed, {} skipped", self.passed, self.failed, self.skipped)
    }

    /// The conformance tests' line: `FILE: N cases ran, skipped [suite S: n, ...]`.
    pub fn tally_line(&self, file: &str) -> String {
        tally_line(file, self.passed, &self.skipped_suites)
    }

    /// Prints [`Report::tally_line`] and asserts that no case failed and
    /// `expected` cases ran.
    pub fn finish(&self, file: &str, expected: usize) {
        println!("{}", self.tally_line(file));
        self.assert_no_failure(file);
        assert_eq!(self.passed, expected, "{file}: cases ran");
    }

    /// Asserts that every suite of `expected` (suite, cases) passed exactly
    /// that many cases, and no other suite passed any.
    pub fn assert_passed_by_suite(&self, file: &str, expected: &[(u64, usize)]) {
        let expected: BTreeMap<u64, usize> = expected.iter().copied().collect();
        assert_eq!(self.passed_suites, expected, "{file}: cases passed by suite");
    }

    /// Asserts that no case failed, listing the failures.
    pub fn assert_no_failure(&self, file: &str) {
        let reasons: Vec<String> = self.failures.iter().map(|f| format!("case {}: {}", f.index, f.reason)).collect();
        assert_eq!(self.failed, 0, "{file}: failed cases:\n{}", reasons.join("\n"));
    }
}

/// `FILE: N cases ran, skipped [suite S: n, ...]`.
pub(crate) fn tally_line(file: &str, ran: usize, skipped: &BTreeMap<u64, usize>) -> String {
    let skipped: Vec<String> = skipped.iter().map(|(s, n)| format!("suite {s}: {n}")).collect();
    format!("{file}: {ran} cases ran, skipped [{}]", skipped.join(", "))
}

/// Runs every case of a file of `kind`.
pub fn run_file(kind: Kind, cases: &[Value]) -> Report {
    let mut report = Report::default();
    for (index, (case, outcome)) in cases.iter().zip(run_cases(kind, cases)).enumerate() {
        match outcome {
            Ok(CaseOutcome::Ran(stats)) => {
                report.passed += 1;
                if let Some(s) = case["cipher_suite"].as_u64() {
                    *report.passed_suites.entry(s).or_default() += 1;
                }
                report.stats.merge(&stats);
            }
            Ok(CaseOutcome::Skipped(skip)) => {
                report.skipped += 1;
                if let Skip::Suite(s) = skip {
                    *report.skipped_suites.entry(s).or_default() += 1;
                }
            }
            Err(reason) => {
                report.failed += 1;
                report.failures.push(Failure { index, reason });
            }
        }
    }
    report
}

/// Every case's outcome, in file order. The cases are independent, so they
/// run on every CPU (treekem.json's P-384 and P-521 cases alone take 23 s
/// on one); each worker takes the next case not yet taken.
fn run_cases(kind: Kind, cases: &[Value]) -> Vec<CaseResult> {
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(cases.len().max(1));
    let mut outcomes: Vec<(usize, CaseResult)> = std::thread::scope(|scope| {
        let work = || {
            let mut done = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(case) = cases.get(index) else { return done };
                done.push((index, run_case(kind, case)));
            }
        };
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                // A main thread's stack: the runner ran every case on its
                // main thread before.
                std::thread::Builder::new().stack_size(8 << 20).spawn_scoped(scope, work).expect("spawn a vector worker")
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("a vector worker panicked outside a case")).collect()
    });
    outcomes.sort_by_key(|(index, _)| *index);
    assert_eq!(outcomes.len(), cases.len(), "every case ran once");
    outcomes.into_iter().map(|(_, outcome)| outcome).collect()
}

/// Reads a vector file: a JSON array of cases.
pub fn read_file(path: &Path) -> Result<Vec<Value>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    match serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))? {
        Value::Array(cases) => Ok(cases),
        _ => Err("not a JSON array of test cases".to_string()),
    }
}

// ---------------------------------------------------------------------------
// Helpers of the checks
// ---------------------------------------------------------------------------

/// The case's cipher suite, or the outcome to return for a suite this build
/// does not implement (or a case without one).
pub(crate) fn suite_or_skip(case: &Value) -> Result<CipherSuite, CaseOutcome> {
    let Some(id) = case["cipher_suite"].as_u64() else {
        return Err(CaseOutcome::Skipped(Skip::Shape));
    };
    u16::try_from(id).ok().and_then(CipherSuite::from_u16).ok_or(CaseOutcome::Skipped(Skip::Suite(id)))
}

/// The case's supported suite, or returns its skip outcome from the caller.
macro_rules! suite_or_return {
    ($case:expr) => {
        match $crate::vectors::suite_or_skip($case) {
            Ok(suite) => suite,
            Err(outcome) => return Ok(outcome),
        }
    };
}
pub(crate) use suite_or_return;

/// Returns `Err(message)` from the caller unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err(format!($($arg)+));
        }
    };
}
pub(crate) use ensure;

/// Returns an error from the caller unless the two values are equal (as
/// `assert_eq!` compares them).
macro_rules! ensure_eq {
    ($got:expr, $expected:expr, $($arg:tt)+) => {
        match (&$got, &$expected) {
            (got, expected) => {
                if *got != *expected {
                    return Err(format!("{}: got {:?}, expected {:?}", format_args!($($arg)+), got, expected));
                }
            }
        }
    };
}
pub(crate) use ensure_eq;

/// Returns an error from the caller unless two byte strings are equal;
/// shows both in hex.
macro_rules! ensure_bytes {
    ($got:expr, $expected:expr, $($arg:tt)+) => {
        match (&$got, &$expected) {
            (got, expected) => {
                let (got, expected): (&[u8], &[u8]) = (got.as_ref(), expected.as_ref());
                if got != expected {
                    return Err(format!(
                        "{}: got {}, expected {}",
                        format_args!($($arg)+),
                        hex::encode(got),
                        hex::encode(expected)
                    ));
                }
            }
        }
    };
}
pub(crate) use ensure_bytes;

/// Turns an error (or a `None`) into the message of a failed check.
pub(crate) trait Context<T> {
    /// Fails with `what: error`.
    fn ctx(self, what: impl Display) -> Result<T, String>;
    /// Like [`Context::ctx`], formatting `what` only on failure.
    fn with_ctx(self, what: impl FnOnce() -> String) -> Result<T, String>;
}

impl<T, E: Debug> Context<T> for Result<T, E> {
    fn ctx(self, what: impl Display) -> Result<T, String> {
        self.map_err(|e| format!("{what}: {e:?}"))
    }
    fn with_ctx(self, what: impl FnOnce() -> String) -> Result<T, String> {
        self.map_err(|e| format!("{}: {e:?}", what()))
    }
}

impl<T> Context<T> for Option<T> {
    fn ctx(self, what: impl Display) -> Result<T, String> {
        self.ok_or_else(|| format!("{what}: none"))
    }
    fn with_ctx(self, what: impl FnOnce() -> String) -> Result<T, String> {
        self.ok_or_else(|| format!("{}: none", what()))
    }
}

/// The field `name` of `v`.
pub(crate) fn field<'a>(v: &'a Value, name: &str) -> Result<&'a Value, String> {
    v.get(name).ok_or_else(|| format!("missing field {name}"))
}

/// A hex string, decoded (`what` names it in the error).
pub(crate) fn hex_value(v: &Value, what: &str) -> Result<Vec<u8>, String> {
    let s = v.as_str().ok_or_else(|| format!("{what}: not a hex string"))?;
    hex::decode(s).map_err(|e| format!("{what}: invalid hex: {e}"))
}

/// The hex field `name` of `v`, decoded.
pub(crate) fn hex_field(v: &Value, name: &str) -> Result<Vec<u8>, String> {
    hex_value(field(v, name)?, name)
}

/// The unsigned integer field `name` of `v`.
pub(crate) fn u64_field(v: &Value, name: &str) -> Result<u64, String> {
    field(v, name)?.as_u64().ok_or_else(|| format!("{name}: not an unsigned integer"))
}

/// The unsigned integer field `name` of `v`, as a `u32`.
pub(crate) fn u32_field(v: &Value, name: &str) -> Result<u32, String> {
    u32::try_from(u64_field(v, name)?).map_err(|_| format!("{name}: does not fit 32 bits"))
}

/// The string field `name` of `v`.
pub(crate) fn str_field<'a>(v: &'a Value, name: &str) -> Result<&'a str, String> {
    field(v, name)?.as_str().ok_or_else(|| format!("{name}: not a string"))
}

/// The array field `name` of `v`.
pub(crate) fn array_field<'a>(v: &'a Value, name: &str) -> Result<&'a [Value], String> {
    field(v, name)?.as_array().map(Vec::as_slice).ok_or_else(|| format!("{name}: not an array"))
}

/// A secret from the hex field `name` of `v`.
pub(crate) fn secret_field(v: &Value, name: &str) -> Result<mls_nostd::crypto::Secret, String> {
    mls_nostd::crypto::Secret::from_slice(&hex_field(v, name)?).ctx(name)
}
