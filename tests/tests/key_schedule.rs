//! key-schedule.json, psk_secret.json and transcript-hashes.json: every case
//! of suites 1 and 3 (RFC 9420 §8).
use mls_nostd::codec::Encode;
use mls_nostd::crypto::Secret;
use mls_nostd::group_context::GroupContext;
use mls_nostd::key_schedule::{joiner_secret, welcome_secret, EpochSecrets};
use mls_nostd::psk::{psk_secret, PreSharedKeyId, Psk};
use mls_nostd::transcript;
use mls_tests::{hex, load, string, supported_cases, uint, Tally};

fn secret(v: &serde_json::Value) -> Secret {
    Secret::from_slice(&hex(v)).unwrap()
}

#[test]
fn key_schedule_vectors() {
    let cases = load("key-schedule.json");
    let mut tally = Tally::default();
    let mut epochs_checked = 0;
    for case in &cases {
        let Some(suite) = tally.suite(case) else { continue };
        let group_id = hex(&case["group_id"]);
        let mut init = secret(&case["initial_init_secret"]);
        for (n, e) in case["epochs"].as_array().unwrap().iter().enumerate() {
            let tree_hash = hex(&e["tree_hash"]);
            let cth = hex(&e["confirmed_transcript_hash"]);
            let gc = GroupContext {
                cipher_suite: suite,
                group_id: &group_id,
                epoch: n as u64,
                tree_hash: &tree_hash,
                confirmed_transcript_hash: &cth,
                extensions: &[],
            };
            let mut buf = [0u8; 512];
            let gc = gc.encode_to(&mut buf).unwrap();
            assert_eq!(gc, hex(&e["group_context"]), "group_context");

            let joiner = joiner_secret(suite, &init, &secret(&e["commit_secret"]), gc).unwrap();
            assert_eq!(joiner.as_bytes(), hex(&e["joiner_secret"]), "joiner_secret");
            let psk = secret(&e["psk_secret"]);
            assert_eq!(welcome_secret(suite, &joiner, &psk).unwrap().as_bytes(), hex(&e["welcome_secret"]));

            let s = EpochSecrets::derive(suite, &joiner, &psk, gc).unwrap();
            for (got, key) in [
                (&s.init_secret, "init_secret"),
                (&s.sender_data_secret, "sender_data_secret"),
                (&s.encryption_secret, "encryption_secret"),
                (&s.exporter_secret, "exporter_secret"),
                (&s.epoch_authenticator, "epoch_authenticator"),
                (&s.external_secret, "external_secret"),
                (&s.confirmation_key, "confirmation_key"),
                (&s.membership_key, "membership_key"),
                (&s.resumption_psk, "resumption_psk"),
            ] {
                assert_eq!(got.as_bytes(), hex(&e[key]), "{key} epoch {n}");
            }
            let (_, external_pub) = s.external_key_pair(suite).unwrap();
            assert_eq!(external_pub.as_bytes(), hex(&e["external_pub"]), "external_pub");

            // The exporter label looks like hex but is used as its ASCII bytes.
            let x = &e["exporter"];
            let mut out = vec![0u8; uint(&x["length"]) as usize];
            s.export(suite, string(&x["label"]).as_bytes(), &hex(&x["context"]), &mut out).unwrap();
            assert_eq!(out, hex(&x["secret"]), "exporter");

            init = s.init_secret.clone();
            epochs_checked += 1;
        }
        tally.ran();
    }
    println!("key-schedule.json: {epochs_checked} epochs checked");
    tally.finish("key-schedule.json", supported_cases(&cases));
    assert_eq!(supported_cases(&cases), 2);
}

#[test]
fn psk_secret_vectors() {
    let cases = load("psk_secret.json");
    let mut tally = Tally::default();
    for case in &cases {
        let Some(suite) = tally.suite(case) else { continue };
        let raw: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> = case["psks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (hex(&p["psk_id"]), hex(&p["psk_nonce"]), hex(&p["psk"])))
            .collect();
        let psks: Vec<(PreSharedKeyId, &[u8])> = raw
            .iter()
            .map(|(id, nonce, psk)| {
                (PreSharedKeyId { psk: Psk::External { psk_id: id }, psk_nonce: nonce }, psk.as_slice())
            })
            .collect();
        let out = psk_secret(suite, &psks).unwrap();
        assert_eq!(out.as_bytes(), hex(&case["psk_secret"]), "psk_secret with {} PSKs", psks.len());
        tally.ran();
    }
    tally.finish("psk_secret.json", supported_cases(&cases));
    assert_eq!(supported_cases(&cases), 22);
}

#[test]
fn transcript_hash_vectors() {
    let cases = load("transcript-hashes.json");
    let mut tally = Tally::default();
    for case in &cases {
        let Some(suite) = tally.suite(case) else { continue };
        let ac = hex(&case["authenticated_content"]);
        // AuthenticatedContent = wire_format || FramedContent || signature<V> ||
        // confirmation_tag<V>; the tag is Nh bytes, so its field is the last
        // 1 + Nh bytes. ConfirmedTranscriptHashInput is everything before it.
        let nh = suite.hash_len();
        let (input, tag_field) = ac.split_at(ac.len() - 1 - nh);
        assert_eq!(tag_field[0] as usize, nh, "confirmation_tag length prefix");
        let tag = &tag_field[1..];

        let confirmed =
            transcript::confirmed_transcript_hash(suite, &hex(&case["interim_transcript_hash_before"]), &[input]);
        assert_eq!(confirmed.as_bytes(), hex(&case["confirmed_transcript_hash_after"]));
        let key = secret(&case["confirmation_key"]);
        assert!(transcript::verify_confirmation_tag(suite, &key, confirmed.as_bytes(), tag));
        let mut bad = tag.to_vec();
        bad[0] ^= 1;
        assert!(!transcript::verify_confirmation_tag(suite, &key, confirmed.as_bytes(), &bad));
        let interim = transcript::interim_transcript_hash(suite, confirmed.as_bytes(), tag).unwrap();
        assert_eq!(interim.as_bytes(), hex(&case["interim_transcript_hash_after"]));
        tally.ran();
    }
    tally.finish("transcript-hashes.json", supported_cases(&cases));
    assert_eq!(supported_cases(&cases), 2);
}
