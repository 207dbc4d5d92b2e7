//! key-schedule.json, psk_secret.json and transcript-hashes.json: every case
//! of all seven suites (RFC 9420 §8). The checks are in
//! `mls_tests::vectors::{key_schedule, psk_secret, transcript_hashes}`.
use mls_tests::vectors::{Kind, run_file};
use mls_tests::{load, supported_cases};

#[test]
fn key_schedule_vectors() {
    let cases = load("key-schedule.json");
    let report = run_file(Kind::KeySchedule, &cases);
    println!("key-schedule.json: {} epochs checked", report.stats.get("epochs"));
    report.finish("key-schedule.json", supported_cases(&cases));
    report.assert_passed_by_suite("key-schedule.json", &[(1, 1), (2, 1), (3, 1), (4, 1), (5, 1), (6, 1), (7, 1)]);
}

#[test]
fn psk_secret_vectors() {
    let cases = load("psk_secret.json");
    let report = run_file(Kind::PskSecret, &cases);
    report.finish("psk_secret.json", supported_cases(&cases));
    report.assert_passed_by_suite("psk_secret.json", &[(1, 11), (2, 11), (3, 11), (4, 11), (5, 11), (6, 11), (7, 11)]);
}

#[test]
fn transcript_hash_vectors() {
    let cases = load("transcript-hashes.json");
    let report = run_file(Kind::TranscriptHashes, &cases);
    report.finish("transcript-hashes.json", supported_cases(&cases));
    report.assert_passed_by_suite("transcript-hashes.json", &[(1, 1), (2, 1), (3, 1), (4, 1), (5, 1), (6, 1), (7, 1)]);
}
