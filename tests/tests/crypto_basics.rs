//! crypto-basics.json: every case of suites 1 and 3 (RFC 9420 §5, §8, §9).
//! The checks are in `mls_tests::vectors::crypto_basics`.
use mls_tests::vectors::{Kind, run_file};
use mls_tests::{load, supported_cases};

#[test]
fn crypto_basics_vectors() {
    let cases = load("crypto-basics.json");
    let report = run_file(Kind::CryptoBasics, &cases);
    report.finish("crypto-basics.json", supported_cases(&cases));
    assert_eq!(supported_cases(&cases), 2);
}
