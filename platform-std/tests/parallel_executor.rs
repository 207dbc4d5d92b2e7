//! The rayon executor produces byte-identical UpdatePaths to the sequential
//! one for the same seed (docs/architecture.md, decision 5).
#![cfg(feature = "parallel")]
use mls_nostd::codec::Decode;
use mls_nostd::credential::Credential;
use mls_nostd::crypto::hpke::derive_key_pair;
use mls_nostd::crypto::signature::SignaturePrivateKey;
use mls_nostd::crypto::CipherSuite;
use mls_nostd::executor::{Executor, Sequential};
use mls_nostd::extensions::Extensions;
use mls_nostd::group_context::GroupContext;
use mls_nostd::leaf_node::LeafNode;
use mls_nostd::ratchet_tree::tree::{LeafSlot, ParentSlot, TreeMeta, TreeSlices};
use mls_nostd::ratchet_tree::treekem::{LeafTemplate, TreeKemPrivate};
use mls_nostd::tree_math::LeafIndex;
use mls_tests::{test_leaf, TestRng};
use platform_std::RayonExecutor;

const SUITE: CipherSuite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
const N: usize = 256;

/// Creates an UpdatePath from leaf 0 in a tree of `N` members.
fn update_path(executor: &impl Executor) -> Vec<u8> {
    let mut meta = TreeMeta::new(SUITE);
    let mut leaves = vec![LeafSlot::BLANK; N];
    let mut parents = vec![ParentSlot::BLANK; N];
    let mut arena = vec![0u8; N * 256];
    let mut t = TreeSlices::new(&mut meta, &mut leaves, &mut parents, &mut arena);
    for i in 0..N as u64 {
        let (leaf, _) = test_leaf(SUITE, format!("m{i}").as_bytes(), i, None);
        t.add_leaf(&leaf).unwrap();
    }
    let mut seed = [0x5au8; 32];
    seed[..8].copy_from_slice(&0u64.to_be_bytes());
    let (leaf_sk, _) = derive_key_pair(SUITE, &seed).unwrap();
    let signer = SignaturePrivateKey::from_slice(SUITE, &seed).unwrap();
    let me = TreeKemPrivate::new(LeafIndex(0), leaf_sk);
    let leaf = t.leaf_bytes(LeafIndex(0)).unwrap().to_vec();
    let leaf = LeafNode::decode_exact(&leaf).unwrap();
    let template = LeafTemplate {
        signature_key: leaf.fields.signature_key,
        credential: Credential::Basic { identity: b"m0" },
        capabilities: leaf.fields.capabilities,
        extensions: Extensions::default(),
    };
    let context = GroupContext {
        cipher_suite: SUITE,
        group_id: b"fleet",
        epoch: 1,
        tree_hash: &[],
        confirmed_transcript_hash: &[0; 32],
        extensions: &[],
    };
    let mut out = vec![0u8; 64 * 1024];
    let mut gc = [0u8; 256];
    let r = t
        .create_update_path(&me, Some(&template), &signer, &context, &mut gc, &|_| false, &mut TestRng(42), executor, &mut out)
        .unwrap();
    out.truncate(r.update_path_len);
    out
}

#[test]
fn same_seed_same_bytes_sequential_or_parallel() {
    let a = update_path(&Sequential);
    let b = update_path(&RayonExecutor);
    // No parent is set yet, so every other member's leaf gets its own seal.
    assert!(a.len() > 255 * 80, "the path holds one ciphertext per other member");
    assert_eq!(a, b);
}
