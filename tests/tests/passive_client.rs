//! passive-client-welcome.json, passive-client-handling-commit.json (every
//! case of suites 1 and 3) and passive-client-random.json (suite 1): join from
//! the Welcome, then follow every epoch's proposals and commit; the epoch
//! authenticators must match (RFC 9420 §12.4.2, §12.4.3.1). The checks are
//! in `mls_tests::vectors::passive_client`.
use mls_tests::vectors::{Kind, run_file};
use mls_tests::{load, supported_cases};

fn run(file: &str, expected: usize) {
    let cases = load(file);
    let report = run_file(Kind::PassiveClient, &cases);
    println!("{file}: {} epochs followed", report.stats.get("epochs"));
    report.finish(file, supported_cases(&cases));
    assert_eq!(supported_cases(&cases), expected);
}

#[test]
fn passive_client_welcome() {
    run("passive-client-welcome.json", 16);
}

#[test]
fn passive_client_handling_commit() {
    run("passive-client-handling-commit.json", 26);
}

#[test]
fn passive_client_random() {
    run("passive-client-random.json", 1);
}
