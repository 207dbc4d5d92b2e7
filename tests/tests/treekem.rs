//! treekem.json: every case of all seven suites (RFC 9420 §7.4–§7.6, §7.9):
//! processing every given UpdatePath by every member with private state, and
//! creating new UpdatePaths that every other member processes. The checks
//! are in `mls_tests::vectors::treekem`.
use mls_tests::vectors::{Kind, run_file};
use mls_tests::{load, supported_cases};

#[test]
fn treekem_vectors() {
    let cases = load("treekem.json");
    let report = run_file(Kind::TreeKem, &cases);
    println!(
        "treekem.json: {} given paths processed, {} created paths processed",
        report.stats.get("processed"),
        report.stats.get("created")
    );
    report.finish("treekem.json", supported_cases(&cases));
    report.assert_passed_by_suite("treekem.json", &[(1, 11), (2, 11), (3, 11), (4, 11), (5, 11), (6, 11), (7, 11)]);
}
