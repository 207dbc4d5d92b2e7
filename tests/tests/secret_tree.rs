//! secret-tree.json: every case of suites 1 and 3 (RFC 9420 §9, §6.3.2).
use mls_nostd::crypto::Secret;
use mls_nostd::secret_tree::{sender_data_key_nonce, RatchetKind, SecretTree, SecretTreeConfig, SecretTreeError};
use mls_nostd::tree_math::LeafIndex;
use mls_tests::{hex, load, supported_cases, uint, Tally};

#[test]
fn secret_tree_vectors() {
    let cases = load("secret-tree.json");
    let mut tally = Tally::default();
    let mut keys_checked = 0;
    for case in &cases {
        let Some(suite) = tally.suite(case) else { continue };
        let sd = &case["sender_data"];
        let sd_secret = Secret::from_slice(&hex(&sd["sender_data_secret"])).unwrap();
        let (key, nonce) = sender_data_key_nonce(suite, &sd_secret, &hex(&sd["ciphertext"])).unwrap();
        assert_eq!(key.as_bytes(), hex(&sd["key"]));
        assert_eq!(nonce.to_vec(), hex(&sd["nonce"]));

        let leaves = case["leaves"].as_array().unwrap();
        let root = Secret::from_slice(&hex(&case["encryption_secret"])).unwrap();
        let mut tree = Box::new(
            SecretTree::<32, 64>::new(suite, leaves.len() as u32, &root, SecretTreeConfig::default()).unwrap(),
        );
        for (i, gens) in leaves.iter().enumerate() {
            let leaf = LeafIndex(i as u32);
            for g in gens.as_array().unwrap() {
                let generation = uint(&g["generation"]) as u32;
                for (kind, k, n) in [
                    (RatchetKind::Handshake, "handshake_key", "handshake_nonce"),
                    (RatchetKind::Application, "application_key", "application_nonce"),
                ] {
                    let rk = tree.receiving_key(leaf, kind, generation).unwrap();
                    assert_eq!(rk.key.as_bytes(), hex(&g[k]), "{k} leaf {i} gen {generation}");
                    assert_eq!(rk.nonce.to_vec(), hex(&g[n]), "{n} leaf {i} gen {generation}");
                    tree.consume(leaf, kind, generation).unwrap();
                    // Consumed keys are gone: a replay is refused.
                    assert_eq!(tree.receiving_key(leaf, kind, generation), Err(SecretTreeError::KeyConsumed));
                    keys_checked += 1;
                }
            }
        }
        tally.ran();
    }
    println!("secret-tree.json: {keys_checked} keys checked");
    tally.finish("secret-tree.json", supported_cases(&cases));
    assert_eq!(supported_cases(&cases), 6);
}
