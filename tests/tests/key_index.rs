//! The ratchet tree's key index (`ratchet_tree::key_index`) answers the
//! uniqueness checks of RFC 9420 §7.3 and §12.4.2 after every kind of change:
//! adds, updates, removes, parent keys set and blanked, a stage discarded or
//! merged, and changes made through slices without the index (which a later
//! `with_key_index` rebuilds). The expected answers are the keys this test
//! put into the tree; debug builds also compare every indexed answer with a
//! pass over the tree (`TreeSlices::has_any_encryption_key`).
use mls_nostd::crypto::CipherSuite;
use mls_nostd::crypto::hpke::derive_key_pair;
use mls_nostd::ratchet_tree::key_index::WAYS;
use mls_nostd::ratchet_tree::tree::{LEAF_RECORD_HEADER, LeafSlot, ParentSlot, TreeMeta, TreeSlices};
use mls_nostd::tree_math::{LeafIndex, NodeIndex};
use mls_tests::test_leaf;

const SUITE: CipherSuite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
const N: usize = 64;

/// A member's leaf encoding and its two public keys.
struct Member {
    leaf: Vec<u8>,
    encryption: Vec<u8>,
    signature: Vec<u8>,
}

fn member(seed: u64) -> Member {
    let mut ikm = [0u8; 32];
    ikm[..8].copy_from_slice(&seed.to_be_bytes());
    let encryption = derive_key_pair(SUITE, &ikm).unwrap().1.as_bytes().to_vec();
    let (leaf, sk) = test_leaf(SUITE, format!("member {seed}").as_bytes(), seed, Some(&encryption));
    Member { leaf, encryption, signature: sk.public_key().as_bytes().to_vec() }
}

fn parent_key(seed: u64) -> Vec<u8> {
    derive_key_pair(SUITE, &[seed as u8 ^ 0xa5; 32]).unwrap().1.as_bytes().to_vec()
}

/// What the tree should hold: each leaf's member, each parent's key.
#[derive(Clone)]
struct Expected {
    leaves: Vec<Option<u64>>,
    parents: Vec<(NodeIndex, Option<u64>)>,
}

/// Asserts every expected key is found where it is and nowhere else, and
/// that keys not in the tree are not found; returns the number of checks.
fn check(t: &TreeSlices<'_>, want: &Expected, absent: &[u64]) -> usize {
    assert!(t.is_key_indexed(), "the checks must use the index");
    let mut checks = 0;
    for (i, seed) in want.leaves.iter().enumerate() {
        let l = LeafIndex(i as u32);
        if let Some(seed) = seed {
            let m = member(*seed);
            assert!(t.has_signature_key(&m.signature, None), "leaf {i}: signature key");
            assert!(!t.has_signature_key(&m.signature, Some(l)), "leaf {i}: signature key elsewhere");
            assert_eq!(t.find_signature_key(&m.signature), Some(l));
            assert!(t.has_encryption_key(&m.encryption, None), "leaf {i}: encryption key");
            assert!(!t.has_encryption_key(&m.encryption, l.node()), "leaf {i}: encryption key elsewhere");
            checks += 5;
        }
    }
    for (p, seed) in &want.parents {
        if let Some(seed) = seed {
            let k = parent_key(*seed);
            assert!(t.has_encryption_key(&k, None), "parent {}: key", p.0);
            assert!(!t.has_encryption_key(&k, Some(*p)), "parent {}: key elsewhere", p.0);
            checks += 2;
        }
    }
    for seed in absent {
        let m = member(*seed);
        assert!(!t.has_signature_key(&m.signature, None), "member {seed} is not in the tree");
        assert!(t.find_signature_key(&m.signature).is_none());
        assert!(!t.has_encryption_key(&m.encryption, None), "member {seed} is not in the tree");
        assert!(!t.has_encryption_key(&parent_key(*seed), None), "parent key {seed} is not in the tree");
        checks += 4;
    }
    checks
}

#[test]
fn key_index_follows_every_change() {
    const { assert!(WAYS >= 3, "the host build keeps an index (MLS_NOSTD_KEY_INDEX unset)") };
    let leaf_len = member(0).leaf.len() + LEAF_RECORD_HEADER;
    let mut meta = TreeMeta::new(SUITE);
    let mut leaves = vec![LeafSlot::BLANK; N].into_boxed_slice();
    let mut parents = vec![ParentSlot::BLANK; N].into_boxed_slice();
    let mut arena = vec![0u8; 3 * N * leaf_len].into_boxed_slice();
    let mut index = vec![0u32; WAYS * N].into_boxed_slice();
    let mut checks = 0;

    // 40 members, then keys on the parents above leaves 0..8 (nodes 1, 3, 5,
    // ..., 15 of level 1 to 3).
    let mut want = Expected { leaves: vec![None; 64], parents: Vec::new() };
    {
        let mut t = TreeSlices::new(&mut meta, &mut leaves, &mut parents, &mut arena).with_key_index(&mut index);
        t.clear(SUITE);
        for i in 0..40u64 {
            assert_eq!(t.add_leaf(&member(i).leaf).unwrap(), LeafIndex(i as u32));
            want.leaves[i as usize] = Some(i);
        }
        for (k, p) in [1u32, 3, 5, 7, 9, 11, 13].into_iter().enumerate() {
            t.set_parent(NodeIndex(p), &parent_key(100 + k as u64), &[]).unwrap();
            want.parents.push((NodeIndex(p), Some(100 + k as u64)));
        }
        checks += check(&t, &want, &[500, 501]);

        // A stage that updates, removes and rekeys, then is discarded: the
        // tree and the index are as before.
        fn staged(t: &mut TreeSlices<'_>, want: &mut Expected) {
            t.begin_stage().unwrap();
            t.update_leaf(LeafIndex(2), &member(200).leaf).unwrap(); // blanks nodes 5, 3, 7, ...
            want.leaves[2] = Some(200);
            t.remove_leaf(LeafIndex(9)).unwrap();
            want.leaves[9] = None;
            t.set_parent(NodeIndex(5), &parent_key(300), &[]).unwrap();
            for (p, seed) in want.parents.iter_mut() {
                *seed = match p.0 {
                    5 => Some(300),
                    3 | 7 => None,
                    _ => *seed,
                };
            }
            assert!(t.add_leaf(&member(201).leaf).is_ok());
            want.leaves[9] = Some(201);
            t.remove_leaf(LeafIndex(39)).unwrap();
            want.leaves[39] = None;
        }
        let before = want.clone();
        staged(&mut t, &mut want);
        checks += check(&t, &want, &[2, 9, 39, 500]);
        t.discard_stage().unwrap();
        want = before;
        checks += check(&t, &want, &[200, 201, 300, 500]);

        // The same stage merged.
        staged(&mut t, &mut want);
        t.merge_stage().unwrap();
        checks += check(&t, &want, &[2, 9, 39, 500]);
    }

    // Changed through slices without the index: it is out of step, and the
    // next slices with it rebuild it.
    {
        let mut t = TreeSlices::new(&mut meta, &mut leaves, &mut parents, &mut arena);
        assert!(!t.is_key_indexed());
        t.remove_leaf(LeafIndex(20)).unwrap();
        want.leaves[20] = None;
        assert_eq!(t.add_leaf(&member(400).leaf).unwrap(), LeafIndex(20));
        want.leaves[20] = Some(400);
    }
    {
        let t = TreeSlices::new(&mut meta, &mut leaves, &mut parents, &mut arena).with_key_index(&mut index);
        checks += check(&t, &want, &[20, 500]);
    }
    println!("key index: {checks} checks");
    // Per check: 5 a member, 2 a parent key, 4 an absent seed. Built: 40
    // members, 7 parents, 2 absent; staged: 39 (2 replaced, 9 replaced, 39
    // removed), 5 parents (3 and 7 blanked), 4 absent; discarded: as built
    // with 4 absent; merged: as staged; rebuilt: 39 members, 5 parents, 2
    // absent.
    let staged = 5 * 39 + 2 * 5 + 4 * 4;
    assert_eq!(checks, (5 * 40 + 2 * 7 + 4 * 2) + staged + (5 * 40 + 2 * 7 + 4 * 4) + staged + (5 * 39 + 2 * 5 + 4 * 2));
}
