//! tree-math.json: every case (RFC 9420 Appendix C). The checks are in
//! `mls_tests::vectors::tree_math`.
use mls_tests::load;
use mls_tests::vectors::{Kind, run_file};

#[test]
fn tree_math_vectors() {
    let cases = load("tree-math.json");
    let report = run_file(Kind::TreeMath, &cases);
    report.assert_no_failure("tree-math.json");
    let ran = report.passed;
    println!("tree-math.json: {ran} cases ran");
    assert_eq!(ran, 10);
    assert_eq!(ran, cases.len());
}
