//! tree-validation.json (every case of suites 1 and 3) and tree-operations.json
//! (all 5 cases, suite 1): RFC 9420 §4, §7.7–§7.9, §12.4.3.1.
use mls_nostd::codec::{Decode, Reader, Writer};
use mls_nostd::crypto::CipherSuite;
use mls_nostd::extensions::Extensions;
use mls_nostd::key_package::KeyPackage;
use mls_nostd::leaf_node::LeafNode;
use mls_nostd::ratchet_tree::tree::{decode_tree, RatchetTree};
use mls_nostd::ratchet_tree::validate::{AcceptAllCredentials, TreeCheck};
use mls_nostd::tree_math::{LeafIndex, NodeIndex};
use mls_tests::{hex, load, supported_cases, uint, Tally};

type Tree = RatchetTree<64, 65536>;

fn boxed_tree() -> Box<Tree> {
    Box::new(Tree::EMPTY)
}

#[test]
fn tree_validation_vectors() {
    let cases = load("tree-validation.json");
    let mut tally = Tally::default();
    let (mut resolutions, mut hashes) = (0, 0);
    for (ci, case) in cases.iter().enumerate() {
        let Some(suite) = tally.suite(case) else { continue };
        let bytes = hex(&case["tree"]);
        let view = decode_tree(&bytes).unwrap();
        let mut tree = boxed_tree();
        let mut t = tree.slices();
        t.import(suite, &view).unwrap();

        for (i, expected) in case["resolutions"].as_array().unwrap().iter().enumerate() {
            let expected: Vec<NodeIndex> =
                expected.as_array().unwrap().iter().map(|v| NodeIndex(uint(v) as u32)).collect();
            let mut out = [NodeIndex(0); 128];
            let n = t.resolution(NodeIndex(i as u32), &mut out).unwrap();
            assert_eq!(&out[..n], &expected[..], "case {ci}: resolution of node {i}");
            resolutions += 1;
        }
        for (i, expected) in case["tree_hashes"].as_array().unwrap().iter().enumerate() {
            let h = t.tree_hash(NodeIndex(i as u32)).unwrap();
            assert_eq!(h.as_bytes(), hex(expected), "case {ci}: tree hash of node {i}");
            hashes += 1;
        }
        let group_id = hex(&case["group_id"]);
        let root = t.root_tree_hash().unwrap();
        let check = TreeCheck {
            group_id: &group_id,
            tree_hash: Some(root.as_bytes()),
            group_extensions: Extensions::default(),
            credentials: &AcceptAllCredentials,
        };
        let (mut a, mut b) = ([0u32; 64], [0u32; 64]);
        t.validate(&check, &mut a, &mut b).unwrap_or_else(|e| panic!("case {ci}: {e:?}"));

        // The tree re-exports to the identical encoding.
        let mut out = vec![0u8; bytes.len() + 16];
        let mut w = Writer::new(&mut out);
        t.export(&mut w).unwrap();
        assert_eq!(w.written(), &bytes[..], "case {ci}: export");
        tally.ran();
    }
    println!("tree-validation.json: {resolutions} resolutions and {hashes} tree hashes checked");
    tally.finish("tree-validation.json", supported_cases(&cases));
    assert_eq!(supported_cases(&cases), 28);
}

#[test]
fn tree_operations_vectors() {
    let cases = load("tree-operations.json");
    let mut tally = Tally::default();
    for (ci, case) in cases.iter().enumerate() {
        let Some(suite) = tally.suite(case) else { continue };
        let before = hex(&case["tree_before"]);
        let mut tree = boxed_tree();
        let mut t = tree.slices();
        t.import(suite, &decode_tree(&before).unwrap()).unwrap();
        assert_eq!(t.root_tree_hash().unwrap().as_bytes(), hex(&case["tree_hash_before"]), "case {ci}: hash before");

        // Proposal { ProposalType msg_type; select { add: KeyPackage; update: LeafNode; remove: uint32 } }
        let proposal = hex(&case["proposal"]);
        let sender = LeafIndex(uint(&case["proposal_sender"]) as u32);
        let mut r = Reader::new(&proposal);
        match r.read_u16().unwrap() {
            1 => {
                let kp = KeyPackage::decode(&mut r).unwrap();
                t.add_leaf(kp.tbs.leaf_node.as_bytes()).unwrap();
            }
            2 => {
                let leaf = LeafNode::decode(&mut r).unwrap();
                t.update_leaf(sender, leaf.as_bytes()).unwrap();
            }
            3 => {
                let removed = r.read_u32().unwrap();
                t.remove_leaf(LeafIndex(removed)).unwrap();
            }
            other => panic!("case {ci}: unexpected proposal type {other}"),
        }
        r.finish().unwrap();

        let after = hex(&case["tree_after"]);
        let mut out = vec![0u8; after.len() + before.len() + 64];
        let mut w = Writer::new(&mut out);
        t.export(&mut w).unwrap();
        assert_eq!(hex::encode(w.written()), hex::encode(&after), "case {ci}: tree after");
        assert_eq!(t.root_tree_hash().unwrap().as_bytes(), hex(&case["tree_hash_after"]), "case {ci}: hash after");
        tally.ran();
    }
    tally.finish("tree-operations.json", supported_cases(&cases));
    assert_eq!(supported_cases(&cases), 5);
    let _ = CipherSuite::ALL;
}
