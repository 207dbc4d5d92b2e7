//! secret-tree.json: every case of all seven suites (RFC 9420 §9, §6.3.2),
//! and every consumed key refused afterwards. The checks are in
//! `mls_tests::vectors::secret_tree`.
use mls_tests::vectors::{Kind, run_file};
use mls_tests::{load, supported_cases};

#[test]
fn secret_tree_vectors() {
    let cases = load("secret-tree.json");
    let report = run_file(Kind::SecretTree, &cases);
    println!("secret-tree.json: {} keys checked", report.stats.get("keys"));
    report.finish("secret-tree.json", supported_cases(&cases));
    report.assert_passed_by_suite("secret-tree.json", &[(1, 3), (2, 3), (3, 3), (4, 3), (5, 3), (6, 3), (7, 3)]);
}
