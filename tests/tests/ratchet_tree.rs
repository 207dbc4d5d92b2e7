//! tree-validation.json (every case of all seven suites) and tree-operations.json
//! (all 5 cases, suite 1): RFC 9420 §4, §7.7–§7.9, §12.4.3.1. The checks
//! (including the re-export of every validated tree) are in
//! `mls_tests::vectors::{tree_validation, tree_operations}`.
use mls_tests::vectors::{Kind, run_file};
use mls_tests::{load, supported_cases};

#[test]
fn tree_validation_vectors() {
    let cases = load("tree-validation.json");
    let report = run_file(Kind::TreeValidation, &cases);
    println!(
        "tree-validation.json: {} resolutions and {} tree hashes checked",
        report.stats.get("resolutions"),
        report.stats.get("tree_hashes")
    );
    report.finish("tree-validation.json", supported_cases(&cases));
    report.assert_passed_by_suite("tree-validation.json", &[(1, 14), (2, 14), (3, 14), (4, 14), (5, 14), (6, 14), (7, 14)]);
}

#[test]
fn tree_operations_vectors() {
    let cases = load("tree-operations.json");
    let report = run_file(Kind::TreeOperations, &cases);
    report.finish("tree-operations.json", supported_cases(&cases));
    report.assert_passed_by_suite("tree-operations.json", &[(1, 5)]);
}
