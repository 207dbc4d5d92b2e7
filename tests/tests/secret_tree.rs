//! secret-tree.json: every case of suites 1 and 3 (RFC 9420 §9, §6.3.2),
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
    assert_eq!(supported_cases(&cases), 6);
}
