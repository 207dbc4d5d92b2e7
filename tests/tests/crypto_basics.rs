//! crypto-basics.json: every case of all seven suites (RFC 9420 §5, §8, §9).
//! The checks are in `mls_tests::vectors::crypto_basics`.
use mls_tests::vectors::{Kind, run_file};
use mls_tests::{load, supported_cases};

#[test]
fn crypto_basics_vectors() {
    let cases = load("crypto-basics.json");
    let report = run_file(Kind::CryptoBasics, &cases);
    report.finish("crypto-basics.json", supported_cases(&cases));
    report.assert_passed_by_suite("crypto-basics.json", &[(1, 1), (2, 1), (3, 1), (4, 1), (5, 1), (6, 1), (7, 1)]);
}
