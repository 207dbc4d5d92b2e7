//! passive-client-welcome.json, passive-client-handling-commit.json (every
//! case of suites 1 and 3) and passive-client-random.json (suite 1): join from
//! the Welcome, then follow every epoch's proposals and commit; the epoch
//! authenticators must match (RFC 9420 §12.4.2, §12.4.3.1).
use mls_nostd::codec::{Decode, Encode};
use mls_nostd::crypto::hpke::HpkePrivateKey;
use mls_nostd::crypto::signature::SignaturePrivateKey;
use mls_nostd::group::{Group, GroupConfig, JoinParams, Received};
use mls_nostd::key_package::KeyPackagePrivateKeys;
use mls_nostd::messages::mls_message::{MlsMessage, MlsMessageBody};
use mls_nostd::psk::PskStore;
use mls_nostd::ratchet_tree::validate::AcceptAllCredentials;
use mls_tests::{hex, load, supported_cases, Tally};
use serde_json::Value;

type TestGroup = Group<256, { 256 * 512 }, 256, { 64 * 1024 }>;

struct Psks(Vec<(Vec<u8>, Vec<u8>)>);

impl PskStore for Psks {
    fn external_psk(&self, psk_id: &[u8]) -> Option<&[u8]> {
        self.0.iter().find(|(id, _)| id == psk_id).map(|(_, k)| k.as_slice())
    }
    fn resumption_psk(&self, _: &[u8], _: u64) -> Option<&[u8]> {
        None
    }
}

/// Runs one passive-client case; returns the number of epochs followed.
fn run_case(case: &Value, name: &str) -> usize {
    let kp_msg = hex(&case["key_package"]);
    let MlsMessageBody::KeyPackage(kp) = MlsMessage::decode_exact(&kp_msg).unwrap().body else {
        panic!("{name}: key_package is not an MLSMessage(KeyPackage)")
    };
    let mut kp_bytes = vec![0u8; kp_msg.len()];
    let n = kp.encode_to(&mut kp_bytes).unwrap().len();
    kp_bytes.truncate(n);
    let keys = KeyPackagePrivateKeys {
        init_key: HpkePrivateKey::from_slice(&hex(&case["init_priv"])).unwrap(),
        encryption_key: HpkePrivateKey::from_slice(&hex(&case["encryption_priv"])).unwrap(),
    };
    let signer = SignaturePrivateKey::from_slice(&hex(&case["signature_priv"])).unwrap();
    let psks = Psks(
        case["external_psks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (hex(&p["psk_id"]), hex(&p["psk"])))
            .collect(),
    );
    let tree = case["ratchet_tree"].as_str().map(|_| hex(&case["ratchet_tree"]));
    let welcome = hex(&case["welcome"]);

    let mut group = Box::new(TestGroup::EMPTY);
    let params = JoinParams {
        key_package: &kp_bytes,
        keys: &keys,
        signer: &signer,
        ratchet_tree: tree.as_deref(),
        psks: &psks,
        credentials: &AcceptAllCredentials,
        // The vectors' KeyPackages have lifetimes of many years.
        config: GroupConfig { max_lifetime: u64::MAX, ..GroupConfig::default() },
    };
    let mut buf = vec![0u8; welcome.len()];
    group.join(&welcome, &params, &mut buf).unwrap_or_else(|e| panic!("{name}: join: {e:?}"));
    assert_eq!(group.epoch_authenticator(), hex(&case["initial_epoch_authenticator"]), "{name}: after join");

    let now = 1_700_000_000;
    let epochs = case["epochs"].as_array().unwrap();
    for (i, epoch) in epochs.iter().enumerate() {
        for p in epoch["proposals"].as_array().unwrap() {
            let mut msg = hex(p);
            match group.process_message(&mut msg, &psks, now) {
                Ok(Received::Proposal { .. }) => {}
                other => panic!("{name}: epoch {i}: proposal: {other:?}"),
            }
        }
        let mut msg = hex(&epoch["commit"]);
        match group.process_message(&mut msg, &psks, now) {
            Ok(Received::Commit(_)) => {}
            other => panic!("{name}: epoch {i}: commit: {other:?}"),
        }
        group.merge_staged_commit().unwrap();
        assert_eq!(group.epoch_authenticator(), hex(&epoch["epoch_authenticator"]), "{name}: epoch {i}");
    }
    epochs.len()
}

fn run_file(file: &str, expected: usize) {
    let cases = load(file);
    let mut tally = Tally::default();
    let mut epochs = 0;
    for (i, case) in cases.iter().enumerate() {
        if tally.suite(case).is_none() {
            continue;
        }
        epochs += run_case(case, &format!("{file}[{i}]"));
        tally.ran();
    }
    println!("{file}: {epochs} epochs followed");
    tally.finish(file, supported_cases(&cases));
    assert_eq!(supported_cases(&cases), expected);
}

#[test]
fn passive_client_welcome() {
    run_file("passive-client-welcome.json", 16);
}

#[test]
fn passive_client_handling_commit() {
    run_file("passive-client-handling-commit.json", 26);
}

#[test]
fn passive_client_random() {
    run_file("passive-client-random.json", 1);
}
