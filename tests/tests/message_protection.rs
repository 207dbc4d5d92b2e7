//! message-protection.json: every case of all seven suites (RFC 9420 §6.1–§6.3),
//! with every verification step of FORMAT.md "Message Protection": the given
//! PublicMessages and PrivateMessages unprotect to the raw proposal, commit
//! and application data; what we protect ourselves unprotects again; an
//! application message cannot be a PublicMessage. The checks are in
//! `mls_tests::vectors::message_protection`.
use mls_tests::vectors::{Kind, run_file};
use mls_tests::{load, supported_cases};

#[test]
fn message_protection_vectors() {
    let cases = load("message-protection.json");
    let report = run_file(Kind::MessageProtection, &cases);
    let c = |name: &str| report.stats.get(name);
    println!(
        "message-protection.json: given PublicMessages verified {}, ours protected and verified {} \
         (byte-identical to the given {}), application as PublicMessage refused {}; given PrivateMessages \
         unprotected {}, ours protected and unprotected {}",
        c("public_given"),
        c("public_protected"),
        c("public_identical"),
        c("application_public_refused"),
        c("private_given"),
        c("private_protected")
    );
    let n = supported_cases(&cases);
    report.finish("message-protection.json", n);
    report.assert_passed_by_suite("message-protection.json", &[(1, 1), (2, 1), (3, 1), (4, 1), (5, 1), (6, 1), (7, 1)]);
    assert_eq!(c("public_given"), 2 * n);
    assert_eq!(c("public_protected"), 2 * n);
    // Byte-identical for the deterministic signatures (EdDSA: suites 1, 3,
    // 4, 6), 2 PublicMessages each; ECDSA ones are verified instead.
    assert_eq!(c("public_identical"), 2 * 4);
    assert_eq!(c("application_public_refused"), n);
    assert_eq!(c("private_given"), 3 * n);
    assert_eq!(c("private_protected"), 3 * 4 * n);
}
