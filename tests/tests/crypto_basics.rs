//! crypto-basics.json: every case of suites 1 and 3 (RFC 9420 §5, §8, §9).
use mls_nostd::crypto::hpke::{HpkePrivateKey, HpkePublicKey, KemOutput};
use mls_nostd::crypto::labeled::*;
use mls_nostd::crypto::signature::{SignaturePrivateKey, SignaturePublicKey};
use mls_nostd::crypto::AEAD_TAG_LEN;
use mls_tests::{hex, load, string, supported_cases, uint, Tally, TestRng};

#[test]
fn crypto_basics_vectors() {
    let cases = load("crypto-basics.json");
    let mut tally = Tally::default();
    for case in &cases {
        let Some(suite) = tally.suite(case) else { continue };

        let v = &case["ref_hash"];
        let out = ref_hash(suite, string(&v["label"]).as_bytes(), &hex(&v["value"])).unwrap();
        assert_eq!(out.as_bytes(), hex(&v["out"]), "ref_hash");

        let v = &case["expand_with_label"];
        let mut out = vec![0u8; uint(&v["length"]) as usize];
        expand_with_label(suite, &hex(&v["secret"]), string(&v["label"]).as_bytes(), &hex(&v["context"]), &mut out)
            .unwrap();
        assert_eq!(out, hex(&v["out"]), "expand_with_label");

        let v = &case["derive_secret"];
        let out = derive_secret(suite, &hex(&v["secret"]), string(&v["label"]).as_bytes()).unwrap();
        assert_eq!(out.as_bytes(), hex(&v["out"]), "derive_secret");

        let v = &case["derive_tree_secret"];
        let out = derive_tree_secret(
            suite,
            &hex(&v["secret"]),
            string(&v["label"]).as_bytes(),
            uint(&v["generation"]) as u32,
            uint(&v["length"]) as usize,
        )
        .unwrap();
        assert_eq!(out.as_bytes(), hex(&v["out"]), "derive_tree_secret");

        let v = &case["sign_with_label"];
        let sk = SignaturePrivateKey::from_slice(&hex(&v["priv"])).unwrap();
        let pk = SignaturePublicKey::from_slice(&hex(&v["pub"])).unwrap();
        assert_eq!(sk.public_key(), pk);
        let label = string(&v["label"]).as_bytes();
        let content = hex(&v["content"]);
        verify_with_label(suite, &pk, label, &content, &hex(&v["signature"])).expect("given signature");
        let sig = sign_with_label(suite, &sk, label, &content).unwrap();
        verify_with_label(suite, &pk, label, &content, &sig).expect("own signature");
        assert!(verify_with_label(suite, &pk, b"other", &content, &sig).is_err(), "label is bound");

        let v = &case["encrypt_with_label"];
        let sk = HpkePrivateKey::from_slice(&hex(&v["priv"])).unwrap();
        let pk = HpkePublicKey::from_slice(&hex(&v["pub"])).unwrap();
        assert_eq!(sk.public_key(suite), pk);
        let label = string(&v["label"]).as_bytes();
        let context = hex(&v["context"]);
        let plaintext = hex(&v["plaintext"]);
        let kem_output = KemOutput::from_slice(&hex(&v["kem_output"])).unwrap();
        let mut ct = hex(&v["ciphertext"]);
        let (body, tag) = ct.split_at_mut(plaintext.len());
        assert_eq!(tag.len(), AEAD_TAG_LEN);
        decrypt_with_label(suite, &sk, label, &context, &kem_output, body, tag).expect("given ciphertext");
        assert_eq!(body, &plaintext[..]);

        let mut buf = plaintext.clone();
        let sealed = encrypt_with_label(suite, &pk, label, &context, &mut buf, &mut TestRng(7)).unwrap();
        assert_ne!(buf, plaintext);
        decrypt_with_label(suite, &sk, label, &context, &sealed.kem_output, &mut buf, &sealed.tag).unwrap();
        assert_eq!(buf, plaintext);
        tally.ran();
    }
    tally.finish("crypto-basics.json", supported_cases(&cases));
    assert_eq!(supported_cases(&cases), 2);
}
