//! key-schedule.json, psk_secret.json and transcript-hashes.json: every case
//! of suites 1 and 3 (RFC 9420 §8). The checks are in
//! `mls_tests::vectors::{key_schedule, psk_secret, transcript_hashes}`.
use mls_tests::vectors::{Kind, run_file};
use mls_tests::{load, supported_cases};

#[test]
fn key_schedule_vectors() {
    let cases = load("key-schedule.json");
    let report = run_file(Kind::KeySchedule, &cases);
    println!("key-schedule.json: {} epochs checked", report.stats.get("epochs"));
    report.finish("key-schedule.json", supported_cases(&cases));
    assert_eq!(supported_cases(&cases), 2);
}

#[test]
fn psk_secret_vectors() {
    let cases = load("psk_secret.json");
    let report = run_file(Kind::PskSecret, &cases);
    report.finish("psk_secret.json", supported_cases(&cases));
    assert_eq!(supported_cases(&cases), 22);
}

#[test]
fn transcript_hash_vectors() {
    let cases = load("transcript-hashes.json");
    let report = run_file(Kind::TranscriptHashes, &cases);
    report.finish("transcript-hashes.json", supported_cases(&cases));
    assert_eq!(supported_cases(&cases), 2);
}
