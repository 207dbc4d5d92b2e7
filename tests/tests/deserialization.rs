//! deserialization.json: every variable-length vector header (RFC 9420
//! §2.1.2). The checks are in `mls_tests::vectors::deserialization`.
use mls_tests::load;
use mls_tests::vectors::{Kind, run_file};

#[test]
fn vlbytes_headers() {
    let cases = load("deserialization.json");
    let report = run_file(Kind::Deserialization, &cases);
    report.assert_no_failure("deserialization.json");
    let ran = report.passed;
    println!("deserialization.json: {ran} cases ran");
    assert_eq!(ran, 14);
    assert_eq!(ran, cases.len());
}
