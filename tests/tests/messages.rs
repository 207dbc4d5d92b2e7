//! messages.json: every message structure of RFC 9420 (§6, §7.6, §10,
//! §12.1, §12.4) decodes and re-encodes byte for byte. The vectors mix
//! suites 1, 2 and 3 (no suite field): decoding is suite-independent. The
//! checks are in `mls_tests::vectors::messages`.
use mls_tests::load;
use mls_tests::vectors::messages::{FIELDS, field_counter};
use mls_tests::vectors::{Kind, run_file};

#[test]
fn messages_roundtrip() {
    let cases = load("messages.json");
    assert_eq!(cases.len(), 300, "messages.json: number of cases");
    let report = run_file(Kind::Messages, &cases);
    report.assert_no_failure("messages.json");
    // Every case is an object with exactly the known fields (else it failed
    // or was skipped as of unknown shape).
    assert_eq!(report.skipped, 0, "messages.json: cases of unknown shape");
    assert_eq!(report.passed, cases.len());
    let counts: Vec<(&str, usize)> = FIELDS.iter().map(|f| (*f, report.stats.get(&field_counter(f)))).collect();
    for (field, n) in &counts {
        println!("messages.json: {field}: {n} decoded and re-encoded");
    }
    for (what, n) in report.stats.iter() {
        if let Some(what) = what.strip_prefix("detail:") {
            println!("messages.json:   {what}: {n}");
        }
    }
    let total: usize = counts.iter().map(|(_, n)| n).sum();
    println!("messages.json: {} cases, {total} objects, {} bytes", cases.len(), report.stats.get("bytes"));
    assert_eq!(counts.len(), FIELDS.len());
    assert!(counts.iter().all(|&(_, n)| n == cases.len()), "every (case, field) pair checked");
    assert_eq!(total, 300 * FIELDS.len());
}
