//! treekem.json: every case of suites 1 and 3 (RFC 9420 §7.4–§7.6, §7.9):
//! processing every given UpdatePath by every member with private state, and
//! creating new UpdatePaths that every other member processes.
use mls_nostd::codec::Decode;
use mls_nostd::crypto::hpke::HpkePrivateKey;
use mls_nostd::crypto::signature::SignaturePrivateKey;
use mls_nostd::group_context::GroupContext;
use mls_nostd::messages::commit::UpdatePath;
use mls_nostd::ratchet_tree::tree::{decode_tree, RatchetTree};
use mls_nostd::ratchet_tree::treekem::{LeafTemplate, Sequential, TreeKemPrivate};
use mls_nostd::tree_math::{LeafIndex, NodeIndex};
use mls_tests::{hex, load, supported_cases, uint, Tally, TestRng};

type Tree = RatchetTree<64, 65536>;

#[test]
fn treekem_vectors() {
    let cases = load("treekem.json");
    let mut tally = Tally::default();
    let (mut processed, mut created) = (0, 0);
    for (ci, case) in cases.iter().enumerate() {
        let Some(suite) = tally.suite(case) else { continue };
        let tree_bytes = hex(&case["ratchet_tree"]);
        let mut base = Box::new(Tree::EMPTY);
        base.slices().import(suite, &decode_tree(&tree_bytes).unwrap()).unwrap();
        let group_id = hex(&case["group_id"]);
        let cth = hex(&case["confirmed_transcript_hash"]);
        let context = GroupContext {
            cipher_suite: suite,
            group_id: &group_id,
            epoch: uint(&case["epoch"]),
            tree_hash: &[],
            confirmed_transcript_hash: &cth,
            extensions: &[],
        };

        // Private states, checked against the tree.
        let mut privates = Vec::new();
        let mut signers = Vec::new();
        for lp in case["leaves_private"].as_array().unwrap() {
            let leaf = LeafIndex(uint(&lp["index"]) as u32);
            let sk = HpkePrivateKey::from_slice(&hex(&lp["encryption_priv"])).unwrap();
            let t = base.slices();
            assert_eq!(t.encryption_key(leaf.node().unwrap()).unwrap(), sk.public_key(suite).as_bytes());
            let mut p = TreeKemPrivate::new(leaf, sk);
            for ps in lp["path_secrets"].as_array().unwrap() {
                let node = NodeIndex(uint(&ps["node"]) as u32);
                let pk = p.set_path_secret(suite, node, &hex(&ps["path_secret"])).unwrap();
                assert_eq!(t.encryption_key(node).unwrap(), pk.as_bytes(), "case {ci}: private state of node {node:?}");
            }
            privates.push(p);
            signers.push(SignaturePrivateKey::from_slice(&hex(&lp["signature_priv"])).unwrap());
        }

        for u in case["update_paths"].as_array().unwrap() {
            let sender = LeafIndex(uint(&u["sender"]) as u32);
            let path_bytes = hex(&u["update_path"]);
            let path = UpdatePath::decode_exact(&path_bytes).unwrap();
            let path_secrets = u["path_secrets"].as_array().unwrap();
            let commit_secret = hex(&u["commit_secret"]);
            for p in privates.iter().filter(|p| p.leaf != sender) {
                let mut tree = base.clone();
                let mut t = tree.slices();
                let mut gc = [0u8; 512];
                let out = t.apply_update_path(sender, &path, p, &context, &mut gc, &|_| false).unwrap_or_else(|e| {
                    panic!("case {ci}: leaf {:?} processing path of {sender:?}: {e:?}", p.leaf)
                });
                assert_eq!(
                    out.decrypted_path_secret.unwrap().as_bytes(),
                    hex(&path_secrets[p.leaf.0 as usize]),
                    "case {ci}: path secret at leaf {:?}",
                    p.leaf
                );
                assert_eq!(out.commit_secret.as_bytes(), commit_secret, "case {ci}: commit secret");
                assert_eq!(t.root_tree_hash().unwrap().as_bytes(), hex(&u["tree_hash_after"]), "case {ci}: tree hash after");
                processed += 1;
            }

            // A new UpdatePath from the same sender, processed by all others.
            let Some(si) = privates.iter().position(|p| p.leaf == sender) else { continue };
            // The committer keeps its credential, capabilities and extensions.
            let mut original = base.clone();
            let orig_leaf = original.slices().leaf_bytes(sender).unwrap().to_vec();
            let orig_leaf = mls_nostd::leaf_node::LeafNode::decode_exact(&orig_leaf).unwrap();
            let template = LeafTemplate {
                signature_key: orig_leaf.fields.signature_key,
                credential: orig_leaf.fields.credential,
                capabilities: orig_leaf.fields.capabilities,
                extensions: orig_leaf.fields.extensions,
            };
            let mut tree = base.clone();
            let mut out = vec![0u8; 16384];
            let mut gc = [0u8; 512];
            let mut t = tree.slices();
            let created_path = t
                .create_update_path(
                    &privates[si],
                    &template,
                    &signers[si],
                    &context,
                    &mut gc,
                    &|_| false,
                    &mut TestRng(ci as u64),
                    &Sequential,
                    &mut out,
                )
                .unwrap_or_else(|e| panic!("case {ci}: create path for {sender:?}: {e:?}"));
            let new_hash = t.root_tree_hash().unwrap();
            let new_path = UpdatePath::decode_exact(&out[..created_path.update_path_len]).unwrap();
            for p in privates.iter().filter(|p| p.leaf != sender) {
                let mut tree = base.clone();
                let mut t = tree.slices();
                let mut gc = [0u8; 512];
                let r = t
                    .apply_update_path(sender, &new_path, p, &context, &mut gc, &|_| false)
                    .unwrap_or_else(|e| panic!("case {ci}: leaf {:?} processing our path: {e:?}", p.leaf));
                assert_eq!(r.commit_secret, created_path.commit_secret, "case {ci}: new commit secret");
                assert_eq!(t.root_tree_hash().unwrap(), new_hash, "case {ci}: trees agree");
                created += 1;
            }
        }
        tally.ran();
    }
    println!("treekem.json: {processed} given paths processed, {created} created paths processed");
    tally.finish("treekem.json", supported_cases(&cases));
    assert_eq!(supported_cases(&cases), 22);
}
