//! passive-client-welcome.json, passive-client-handling-commit.json (every
//! case of all seven suites) and passive-client-random.json (suite 1): join from
//! the Welcome, then follow every epoch's proposals and commit; the epoch
//! authenticators must match (RFC 9420 §12.4.2, §12.4.3.1). The checks are
//! in `mls_tests::vectors::passive_client`.
use mls_tests::vectors::{Kind, run_file};
use mls_tests::{load, supported_cases};

fn run(file: &str, per_suite: usize, suites: &[u64]) {
    let cases = load(file);
    let report = run_file(Kind::PassiveClient, &cases);
    println!("{file}: {} epochs followed", report.stats.get("epochs"));
    report.finish(file, supported_cases(&cases));
    let expected: Vec<(u64, usize)> = suites.iter().map(|s| (*s, per_suite)).collect();
    report.assert_passed_by_suite(file, &expected);
}

const ALL: &[u64] = &[1, 2, 3, 4, 5, 6, 7];

#[test]
fn passive_client_welcome() {
    run("passive-client-welcome.json", 8, ALL);
}

#[test]
fn passive_client_handling_commit() {
    run("passive-client-handling-commit.json", 13, ALL);
}

#[test]
fn passive_client_random() {
    run("passive-client-random.json", 1, &[1]);
}
