//! Bad ratchet trees, one typed error each (RFC 9420 §7.1, §7.9.2, §12.4.3.1),
//! and the tree's memory per capacity.
use mls_nostd::codec::Writer;
use mls_nostd::crypto::CipherSuite;
use mls_nostd::extensions::Extensions;
use mls_nostd::ratchet_tree::tree::{decode_tree, RatchetTree, TreeError};
use mls_nostd::ratchet_tree::validate::{TreeCheck, TreeValidationError};
use mls_nostd::tree_math::{LeafIndex, NodeIndex};
use mls_tests::{hex, load, test_leaf};

const SUITE: CipherSuite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
type Tree = RatchetTree<64, 65536>;

fn validate(bytes: &[u8], group_id: &[u8]) -> Result<(), TreeValidationError> {
    let mut tree = Box::new(Tree::EMPTY);
    let mut t = tree.slices();
    t.import(SUITE, &decode_tree(bytes).map_err(|e| TreeValidationError::Tree(TreeError::Codec(e)))?)?;
    let check = TreeCheck {
        group_id,
        tree_hash: None,
        group_extensions: Extensions::default(),
        identity: &mls_nostd::identity::SameCredential,
    };
    let (mut a, mut b) = ([0u32; 64], [0u32; 64]);
    t.validate(&check, &mls_nostd::executor::Sequential, &mut a, &mut b)
}

/// A suite-3 vector tree with parents set by commits (full tree of 8 leaves).
fn vector_tree() -> (Vec<u8>, Vec<u8>) {
    let cases = load("tree-validation.json");
    let case = cases
        .iter()
        .filter(|c| c["cipher_suite"] == 3)
        .find(|c| c["resolutions"].as_array().unwrap().len() == 15)
        .unwrap();
    (hex(&case["tree"]), hex(&case["group_id"]))
}

/// Encodes a tree from optional nodes given as already-encoded `Node`s.
fn encode_tree(nodes: &[Option<Vec<u8>>]) -> Vec<u8> {
    let mut buf = vec![0u8; 8 + nodes.iter().map(|n| 1 + n.as_ref().map_or(0, Vec::len)).sum::<usize>()];
    let mut w = Writer::new(&mut buf);
    w.write_vector(|w| {
        for n in nodes {
            match n {
                None => w.write_u8(0)?,
                Some(bytes) => {
                    w.write_u8(1)?;
                    w.write_bytes(bytes)?;
                }
            }
        }
        Ok(())
    })
    .unwrap();
    let n = w.len();
    buf.truncate(n);
    buf
}

fn leaf_node(seed: u8, enc: Option<[u8; 32]>) -> Vec<u8> {
    let (leaf, _) = test_leaf(SUITE, &[b'm', seed], seed.into(), enc.as_ref().map(|k| &k[..]));
    let mut v = vec![1u8];
    v.extend_from_slice(&leaf);
    v
}

fn parent_node(key_seed: u8, unmerged: &[u32]) -> Vec<u8> {
    let mut v = vec![2u8, 32];
    v.extend_from_slice(&[key_seed; 32]);
    v.push(0); // parent_hash
    v.push((unmerged.len() * 4) as u8);
    for u in unmerged {
        v.extend_from_slice(&u.to_be_bytes());
    }
    v
}

#[test]
fn valid_vector_tree_is_accepted() {
    let (tree, gid) = vector_tree();
    validate(&tree, &gid).unwrap();
}

#[test]
fn wrong_parent_hash() {
    let (tree, gid) = vector_tree();
    let view = decode_tree(&tree).unwrap();
    // Re-encode with one parent's parent_hash changed.
    let mut nodes = Vec::new();
    for (i, n) in view.iter().enumerate() {
        nodes.push(n.map(|node| {
            let mut buf = vec![0u8; 4096];
            let len = mls_nostd::codec::Encode::encode_to(&node, &mut buf).unwrap().len();
            buf.truncate(len);
            if i == 3 {
                // ParentNode: type 2, key<V> (33 bytes), parent_hash<V>: flip its last byte.
                let ph_len = buf[34] as usize;
                assert!(ph_len > 0, "node 3 of the full tree has a parent hash");
                buf[34 + ph_len] ^= 1;
            }
            buf
        }));
    }
    let bad = encode_tree(&nodes);
    assert!(matches!(validate(&bad, &gid), Err(TreeValidationError::ParentHashInvalid(_))));
}

#[test]
fn bad_leaf_signature() {
    let (mut tree, gid) = vector_tree();
    // The first leaf's signature is the last 64 bytes of its encoding; find
    // it through the decoded view and flip a byte.
    let view = decode_tree(&tree).unwrap();
    let first = match view.iter().next().unwrap().unwrap() {
        mls_nostd::ratchet_tree::node::Node::Leaf(l) => l.signature.as_ptr() as usize - tree.as_ptr() as usize,
        _ => unreachable!(),
    };
    tree[first] ^= 1;
    assert_eq!(validate(&tree, &gid), Err(TreeValidationError::InvalidLeafSignature(LeafIndex(0))));
    // Signed for another group.
    let (tree, _) = vector_tree();
    assert!(matches!(validate(&tree, b"another group"), Err(TreeValidationError::InvalidLeafSignature(_))));
}

#[test]
fn duplicate_keys() {
    let enc = leaf_node(1, None);
    let same_enc = leaf_node(2, Some(hex::decode(hex::encode(&enc[2..34])).unwrap().try_into().unwrap()));
    let tree = encode_tree(&[Some(enc.clone()), None, Some(same_enc)]);
    assert_eq!(validate(&tree, b"g"), Err(TreeValidationError::DuplicateEncryptionKey));
    // Same signature key (same seed), different encryption keys.
    let (a, _) = test_leaf(SUITE, b"a", 7, Some(&[1; 32]));
    let (b, _) = test_leaf(SUITE, b"b", 7, Some(&[2; 32]));
    let tree = encode_tree(&[Some([vec![1], a].concat()), None, Some([vec![1], b].concat())]);
    assert_eq!(validate(&tree, b"g"), Err(TreeValidationError::DuplicateSignatureKey));
    // A parent whose key is a leaf's.
    let leaf = leaf_node(3, Some([9; 32]));
    let tree = encode_tree(&[Some(leaf), Some(parent_node(9, &[])), Some(leaf_node(4, None))]);
    assert_eq!(validate(&tree, b"g"), Err(TreeValidationError::DuplicateEncryptionKey));
}

#[test]
fn unmerged_leaves_that_do_not_fit() {
    let l = |s| Some(leaf_node(s, None));
    // Leaf 2 is not under node 1.
    let t = encode_tree(&[l(1), Some(parent_node(50, &[2])), l(2), None, l(3)]);
    assert_eq!(validate(&t, b"g"), Err(TreeValidationError::Tree(TreeError::UnmergedNotDescendant)));
    // Not sorted.
    let t = encode_tree(&[l(1), None, l(2), Some(parent_node(50, &[1, 0])), None, None, None]);
    assert_eq!(validate(&t, b"g"), Err(TreeValidationError::Tree(TreeError::UnmergedNotSorted)));
    // A blank leaf listed as unmerged.
    let t = encode_tree(&[l(1), Some(parent_node(50, &[1])), None, None, l(3)]);
    assert_eq!(validate(&t, b"g"), Err(TreeValidationError::Tree(TreeError::UnmergedNotDescendant)));
    // Unmerged at the root but not at the non-blank node between.
    let t = encode_tree(&[l(1), Some(parent_node(50, &[])), l(2), Some(parent_node(51, &[1])), l(3)]);
    assert_eq!(validate(&t, b"g"), Err(TreeValidationError::Tree(TreeError::UnmergedInconsistent)));
}

#[test]
fn structure_errors() {
    let l = |s| Some(leaf_node(s, None));
    // A parent where a leaf belongs.
    let t = encode_tree(&[Some(parent_node(50, &[])), None, l(1)]);
    assert_eq!(validate(&t, b"g"), Err(TreeValidationError::Tree(TreeError::WrongNodeType)));
    // Trailing blank node.
    let t = encode_tree(&[l(1), None, l(2), None]);
    assert_eq!(validate(&t, b"g"), Err(TreeValidationError::Tree(TreeError::InvalidTreeSize)));
    // Empty tree.
    assert_eq!(validate(&encode_tree(&[]), b"g"), Err(TreeValidationError::Tree(TreeError::InvalidTreeSize)));
    // More leaves than the capacity.
    let (tree, _) = vector_tree();
    let mut small = Box::new(RatchetTree::<4, 8192>::EMPTY);
    let want = Err(TreeError::CapacityExceeded(mls_nostd::Capacity::Leaves));
    assert_eq!(small.slices().import(SUITE, &decode_tree(&tree).unwrap()), want);
    // Leaf encodings larger than the arena.
    let mut tiny = Box::new(RatchetTree::<8, 256>::EMPTY);
    let want = Err(TreeError::CapacityExceeded(mls_nostd::Capacity::TreeArena));
    assert_eq!(tiny.slices().import(SUITE, &decode_tree(&tree).unwrap()), want);
    // Every truncation of a valid encoding is refused by the decoder.
    for n in 0..tree.len() {
        assert!(decode_tree(&tree[..n]).is_err(), "prefix of {n} bytes");
    }
}

#[test]
fn tree_hash_mismatch() {
    let (tree, gid) = vector_tree();
    let mut boxed = Box::new(Tree::EMPTY);
    let mut t = boxed.slices();
    t.import(SUITE, &decode_tree(&tree).unwrap()).unwrap();
    let check = TreeCheck {
        group_id: &gid,
        tree_hash: Some(&[0u8; 32]),
        group_extensions: Extensions::default(),
        identity: &mls_nostd::identity::SameCredential,
    };
    let (mut a, mut b) = ([0u32; 64], [0u32; 64]);
    assert_eq!(t.validate(&check, &mls_nostd::executor::Sequential, &mut a, &mut b), Err(TreeValidationError::TreeHashMismatch));
    // Failed validation leaves the imported tree usable.
    assert!(t.tree_hash(NodeIndex(7)).is_ok());
}

#[test]
fn rejected_credential() {
    struct RejectBob;
    impl mls_nostd::identity::IdentityProvider for RejectBob {
        fn validate(&self, _: &[u8], _: mls_nostd::identity::CredentialUse, m: &mls_nostd::identity::MemberIdentity<'_>) -> bool {
            !matches!(m.credential, mls_nostd::credential::Credential::Basic { identity } if identity == b"bob")
        }
        fn valid_successor(&self, _: &mls_nostd::identity::MemberIdentity<'_>, _: &mls_nostd::identity::MemberIdentity<'_>) -> bool {
            true
        }
    }
    let (a, _) = test_leaf(SUITE, b"alice", 1, None);
    let (b, _) = test_leaf(SUITE, b"bob", 2, None);
    let tree = encode_tree(&[Some([vec![1], a].concat()), None, Some([vec![1], b].concat())]);
    let mut boxed = Box::new(Tree::EMPTY);
    let mut t = boxed.slices();
    t.import(SUITE, &decode_tree(&tree).unwrap()).unwrap();
    let check = TreeCheck { group_id: b"g", tree_hash: None, group_extensions: Extensions::default(), identity: &RejectBob };
    let (mut x, mut y) = ([0u32; 64], [0u32; 64]);
    assert_eq!(t.validate(&check, &mls_nostd::executor::Sequential, &mut x, &mut y), Err(TreeValidationError::CredentialRejected(LeafIndex(1))));
}

/// The leaf signatures are checked a batch at a time through the executor,
/// whose chunks may run in any order: a tree of 600 leaves (1,024 leaf
/// slots: four batches of 256) validates with an executor that runs each
/// batch backwards, every leaf slot is handed to it once, and a bad
/// signature in the third batch is reported at its own leaf.
#[test]
fn leaf_signatures_through_an_executor_in_batches() {
    use mls_nostd::executor::Executor;
    use std::sync::atomic::{AtomicUsize, Ordering};
    struct Backwards(AtomicUsize);
    impl Executor for Backwards {
        fn for_each_chunk(&self, buf: &mut [u8], chunk: usize, job: &(dyn Fn(usize, &mut [u8]) + Sync)) {
            for (i, c) in buf.chunks_exact_mut(chunk).enumerate().rev() {
                self.0.fetch_add(1, Ordering::Relaxed);
                job(i, c);
            }
        }
    }
    const LEAVES: usize = 600;
    let leaves: Vec<Vec<u8>> = (0..LEAVES)
        .map(|i| {
            let (leaf, _) = test_leaf(SUITE, format!("member {i}").as_bytes(), 1000 + i as u64, None);
            [vec![1u8], leaf].concat()
        })
        .collect();
    let tree_of = |leaves: &[Vec<u8>]| {
        let nodes: Vec<Option<Vec<u8>>> =
            leaves.iter().enumerate().flat_map(|(i, l)| [Some(l.clone())].into_iter().chain((i + 1 < LEAVES).then_some(None))).collect();
        encode_tree(&nodes)
    };
    let run = |bytes: &[u8]| {
        let mut tree = Box::new(RatchetTree::<1024, { 1024 * 256 }>::EMPTY);
        let mut t = tree.slices();
        t.import(SUITE, &decode_tree(bytes).unwrap()).unwrap();
        let check = TreeCheck {
            group_id: b"batches",
            tree_hash: None,
            group_extensions: Extensions::default(),
            identity: &mls_nostd::identity::SameCredential,
        };
        let executor = Backwards(AtomicUsize::new(0));
        let (mut a, mut b) = (vec![0u32; 1024], vec![0u32; 1024]);
        let result = t.validate(&check, &executor, &mut a, &mut b);
        (result, executor.0.load(Ordering::Relaxed))
    };
    assert_eq!(run(&tree_of(&leaves)), (Ok(()), 1024));
    let mut bad = leaves.clone();
    let last = bad[555].len() - 1;
    bad[555][last] ^= 1;
    let (result, _) = run(&tree_of(&bad));
    assert_eq!(result, Err(TreeValidationError::InvalidLeafSignature(LeafIndex(555))));
}

/// A `commit` LeafNode for leaf `index` of group `group_id`, carrying
/// `parent_hash`, keys from `seed`.
fn commit_leaf(seed: u64, group_id: &[u8], index: u32, parent_hash: &[u8]) -> Vec<u8> {
    use mls_nostd::credential::Credential;
    use mls_nostd::extensions::U16List;
    use mls_nostd::leaf_node::{Capabilities, LeafNode, LeafNodeContext, LeafNodeFields, LeafNodeSource};
    let mut seed_bytes = [0x5au8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_be_bytes());
    let sk = mls_tests::signer(SUITE, &seed_bytes);
    let pk = sk.public_key();
    let enc = mls_nostd::crypto::hpke::derive_key_pair(SUITE, &seed_bytes).unwrap().1;
    let (versions, suites, creds) = ([0u8, 1], SUITE.to_u16().to_be_bytes(), [0u8, 1]);
    let fields = LeafNodeFields {
        encryption_key: enc.as_bytes(),
        signature_key: pk.as_bytes(),
        credential: Credential::Basic { identity: b"committer" },
        capabilities: Capabilities {
            versions: U16List::from_body(&versions).unwrap(),
            cipher_suites: U16List::from_body(&suites).unwrap(),
            extensions: U16List::default(),
            proposals: U16List::default(),
            credentials: U16List::from_body(&creds).unwrap(),
        },
        source: LeafNodeSource::Commit { parent_hash },
        extensions: Extensions::default(),
    };
    let mut buf = vec![0u8; 1024];
    let ctx = LeafNodeContext { group_id, leaf_index: index };
    let n = LeafNode::sign_into(SUITE, &fields, Some(ctx), &sk, &mut buf).unwrap().len();
    let mut v = vec![1u8];
    v.extend_from_slice(&buf[..n]);
    v
}

/// §7.7, §7.1: truncation discards the old root "whether or not [it] is
/// blank", and with it the unmerged leaves it lists. A joined tree (it
/// passes every check of §12.4.3.1) of 8 leaves: leaves 0, 1 and 4, and
/// node 3 set (parent-hash valid from leaf 0) over the blank leaves 2 and 3,
/// with leaf 1 unmerged there. Removing leaf 4 truncates the tree to 2
/// leaves, dropping node 3 (not on leaf 4's direct path). The tree grows
/// again, leaf 0 commits (node 3 new, no unmerged leaves) and a member is
/// added at leaf 3: node 3's `unmerged_leaves` must be `[3]`, not the
/// dropped node's leaf 1 too.
#[test]
fn truncation_drops_the_unmerged_leaves_of_a_discarded_parent() {
    let gid = b"truncation";
    let l = |s: u8| Some(leaf_node(s, None));
    // Node 3's parent hash with copath child 5 (a blank subtree): the
    // parent hash leaf 0 carries.
    let nodes = |leaf0: Vec<u8>| {
        encode_tree(&[Some(leaf0), None, l(1), Some(parent_node(50, &[1])), None, None, None, None, l(4)])
    };
    let ph = {
        let mut tree = Box::new(Tree::EMPTY);
        let mut t = tree.slices();
        t.import(SUITE, &decode_tree(&nodes(leaf_node(10, None))).unwrap()).unwrap();
        t.parent_hash(NodeIndex(3), NodeIndex(5)).unwrap()
    };
    let bytes = nodes(commit_leaf(10, gid, 0, ph.as_bytes()));
    validate(&bytes, gid).expect("a tree a joiner accepts");

    let mut tree = Box::new(Tree::EMPTY);
    let mut t = tree.slices();
    t.import(SUITE, &decode_tree(&bytes).unwrap()).unwrap();
    t.remove_leaf(LeafIndex(4)).unwrap();
    assert_eq!(t.n_leaves(), 2, "truncated to leaves 0 and 1");
    // A new member at leaf 2; leaf 0 commits over nodes 1 and 3; another
    // new member at leaf 3, unmerged at node 3.
    let (new2, new3) = (leaf_node(20, None), leaf_node(21, None));
    assert_eq!(t.add_leaf(&new2[1..]).unwrap(), LeafIndex(2));
    t.blank_direct_path(LeafIndex(0)).unwrap();
    t.set_parent(NodeIndex(1), &[60; 32], &[]).unwrap();
    t.set_parent(NodeIndex(3), &[61; 32], &[]).unwrap();
    assert_eq!(t.add_leaf(&new3[1..]).unwrap(), LeafIndex(3));
    let unmerged: Vec<_> = t.unmerged_leaves(NodeIndex(3)).collect();
    println!("node 3 unmerged_leaves: {unmerged:?}");
    assert_eq!(unmerged, [LeafIndex(3)], "node 3 lists only the leaf added under it");
    // The tree as the RFC has it, encoded: the same tree hash.
    let leaf0 = commit_leaf(10, gid, 0, ph.as_bytes());
    let mut p1 = parent_node(60, &[]);
    let mut p3 = parent_node(61, &[3]);
    p1[2..34].copy_from_slice(&[60; 32]);
    p3[2..34].copy_from_slice(&[61; 32]);
    let expected = encode_tree(&[Some(leaf0), Some(p1), l(1), Some(p3), Some(new2), None, Some(new3)]);
    let mut want = Box::new(Tree::EMPTY);
    let mut w = want.slices();
    w.import(SUITE, &decode_tree(&expected).unwrap()).unwrap();
    assert_eq!(t.root_tree_hash().unwrap(), w.root_tree_hash().unwrap(), "tree hash of the regrown tree");
}
