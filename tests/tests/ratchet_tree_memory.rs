//! Memory of the ratchet tree per capacity, and a 16,384-leaf tree built on
//! the heap by a thread with a 256 KiB stack (the slices never pass through
//! the stack).
use mls_nostd::codec::Writer;
use mls_nostd::crypto::CipherSuite;
use mls_nostd::ratchet_tree::key_index::WAYS;
use mls_nostd::ratchet_tree::tree::{LeafSlot, ParentSlot, RatchetTree, TreeMeta, TreeSlices, LEAF_RECORD_HEADER};
use mls_nostd::tree_math::{LeafIndex, NodeIndex};
use mls_tests::test_leaf;

/// Arena bytes per leaf in these figures: a basic credential and Ed25519
/// keys take ~190 bytes per encoded LeafNode.
const ARENA_PER_LEAF: usize = 256;

#[test]
fn tree_state_size_per_capacity() {
    println!("ratchet tree state (size_of, bytes), arena of {ARENA_PER_LEAF} bytes per leaf:");
    println!("| leaves | slots | arena | total |");
    let rows = [
        (8, std::mem::size_of::<RatchetTree<8, { 8 * ARENA_PER_LEAF }>>()),
        (64, std::mem::size_of::<RatchetTree<64, { 64 * ARENA_PER_LEAF }>>()),
        (256, std::mem::size_of::<RatchetTree<256, { 256 * ARENA_PER_LEAF }>>()),
        (1024, std::mem::size_of::<RatchetTree<1024, { 1024 * ARENA_PER_LEAF }>>()),
    ];
    for (n, total) in rows {
        let arena = n * ARENA_PER_LEAF;
        println!("| {n} | {} | {arena} | {total} |", total - arena);
        // Slots are linear in the capacity: one leaf and one parent slot and
        // the key index's entries per leaf.
        let slots = n * (std::mem::size_of::<LeafSlot>() + std::mem::size_of::<ParentSlot>() + 4 * WAYS);
        assert!(total >= slots + arena && total <= slots + arena + 64);
    }
    println!(
        "per leaf: LeafSlot {} + ParentSlot {} + key index {} + arena",
        std::mem::size_of::<LeafSlot>(),
        std::mem::size_of::<ParentSlot>(),
        4 * WAYS
    );
}

#[test]
fn sixteen_thousand_leaves_on_a_small_stack() {
    const N: usize = 16_384;
    let handle = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
            let (leaf, _) = test_leaf(suite, b"member", 1, None);
            let mut meta = TreeMeta::new(suite);
            let mut leaves = vec![LeafSlot::BLANK; N].into_boxed_slice();
            let mut parents = vec![ParentSlot::BLANK; N].into_boxed_slice();
            let mut arena = vec![0u8; N * (leaf.len() + LEAF_RECORD_HEADER)].into_boxed_slice();
            let mut t = TreeSlices::new(&mut meta, &mut leaves, &mut parents, &mut arena);
            for i in 0..N as u32 {
                assert_eq!(t.add_leaf(&leaf).unwrap(), LeafIndex(i));
            }
            assert_eq!(t.n_leaves(), N as u32);
            // One leaf more than the capacity is refused, the tree unchanged.
            assert!(t.add_leaf(&leaf).is_err());
            assert_eq!(t.n_leaves(), N as u32);
            let root = t.root_tree_hash().unwrap();
            // Removing the last leaf and re-adding it restores the tree hash.
            t.remove_leaf(LeafIndex(N as u32 - 1)).unwrap();
            assert_ne!(t.root_tree_hash().unwrap(), root);
            t.add_leaf(&leaf).unwrap();
            assert_eq!(t.root_tree_hash().unwrap(), root);
            let mut out = vec![0u8; N * (leaf.len() + 8) + 16];
            let mut w = Writer::new(&mut out);
            t.export(&mut w).unwrap();
            w.len()
        })
        .unwrap();
    let exported = handle.join().expect("no stack overflow");
    println!("16,384-leaf tree exported: {exported} bytes");
}

/// The changes a Commit might make, staged in the one tree: truncation
/// (removing the last leaf), a leaf updated twice, a removal, a fresh
/// parent, a leaf added unmerged under it, extension (adding past the width).
fn stage_changes(t: &mut TreeSlices<'_>, leaves: &[Vec<u8>]) {
    t.remove_leaf(LeafIndex(4)).unwrap();
    assert_eq!(t.n_leaves(), 4, "truncated");
    t.update_leaf(LeafIndex(1), &leaves[5]).unwrap();
    t.update_leaf(LeafIndex(1), &leaves[6]).unwrap();
    t.remove_leaf(LeafIndex(2)).unwrap();
    t.set_parent(NodeIndex(3), &[7u8; 32], &[]).unwrap();
    assert_eq!(t.add_leaf(&leaves[7]).unwrap(), LeafIndex(2));
    assert!(t.is_unmerged_at(LeafIndex(2), NodeIndex(3)));
    assert_eq!(t.add_leaf(&leaves[4]).unwrap(), LeafIndex(4));
    assert_eq!(t.n_leaves(), 8, "extended");
    t.root_tree_hash().unwrap();
}

fn export(t: &TreeSlices<'_>) -> Vec<u8> {
    let mut out = vec![0u8; 16 * 1024];
    let mut w = Writer::new(&mut out);
    t.export(&mut w).unwrap();
    let n = w.len();
    out.truncate(n);
    out
}

/// A staged Commit's changes, discarded, leave the tree exactly as before:
/// every slot (cached hashes included), the size, the arena's records and
/// its bookkeeping; while staged, `old()` reads the tree before. Merged,
/// they give the tree the same changes give without staging.
#[test]
fn staged_changes_discard_exactly_and_merge_as_unstaged() {
    const N: usize = 8;
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let leaves: Vec<Vec<u8>> = (0..8u64).map(|i| test_leaf(suite, format!("m{i}").as_bytes(), i + 1, None).0).collect();
    let mut meta = TreeMeta::new(suite);
    let mut slots = vec![LeafSlot::BLANK; N];
    let mut parents = vec![ParentSlot::BLANK; N];
    let mut arena = vec![0u8; 16 * 1024];
    let (before_bytes, before_hash, before_leaves) = {
        let mut t = TreeSlices::new(&mut meta, &mut slots, &mut parents, &mut arena);
        for l in &leaves[..5] {
            t.add_leaf(l).unwrap();
        }
        // Leaf 1 again, unmerged under two fresh parents.
        t.remove_leaf(LeafIndex(1)).unwrap();
        t.set_parent(NodeIndex(3), &[9u8; 32], &[]).unwrap();
        t.set_parent(NodeIndex(7), &[8u8; 32], &[]).unwrap();
        assert_eq!(t.add_leaf(&leaves[1]).unwrap(), LeafIndex(1));
        assert_eq!(t.unmerged_leaves(NodeIndex(7)).collect::<Vec<_>>(), [LeafIndex(1)]);
        assert_eq!(t.n_leaves(), 8);
        let hash = t.root_tree_hash().unwrap();
        let old: Vec<Option<Vec<u8>>> = (0..8).map(|i| t.leaf_bytes(LeafIndex(i)).map(<[u8]>::to_vec)).collect();
        (export(&t), hash, old)
    };
    // Six records so far (one of them dead: leaf 1's first).
    let used: usize = [0, 1, 2, 3, 4, 1].iter().map(|&i| leaves[i].len() + LEAF_RECORD_HEADER).sum();
    let (meta0, slots0, parents0, arena0) = (meta, slots.clone(), parents.clone(), arena[..used].to_vec());
    {
        let mut t = TreeSlices::new(&mut meta, &mut slots, &mut parents, &mut arena);
        t.begin_stage().unwrap();
        stage_changes(&mut t, &leaves);
        assert_ne!(export(&t), before_bytes, "the stage changed nothing");
        let old = t.old();
        assert_eq!(old.n_leaves(), 8);
        for (i, want) in before_leaves.iter().enumerate() {
            assert_eq!(old.leaf_bytes(LeafIndex(i as u32)), want.as_deref(), "old() leaf {i}");
        }
        t.discard_stage().unwrap();
        assert_eq!(export(&t), before_bytes);
        assert_eq!(t.root_tree_hash().unwrap(), before_hash);
    }
    assert_eq!(meta, meta0, "tree meta after discard");
    assert_eq!(slots, slots0, "leaf slots after discard");
    assert_eq!(parents, parents0, "parent slots after discard");
    assert_eq!(arena[..used], arena0[..], "arena records after discard");

    // The same changes without staging, on a copy, and merged: one tree.
    let (mut meta2, mut slots2, mut parents2, mut arena2) = (meta, slots.clone(), parents.clone(), arena.clone());
    let unstaged = {
        let mut t = TreeSlices::new(&mut meta2, &mut slots2, &mut parents2, &mut arena2);
        stage_changes(&mut t, &leaves);
        (export(&t), t.root_tree_hash().unwrap())
    };
    let mut t = TreeSlices::new(&mut meta, &mut slots, &mut parents, &mut arena);
    t.begin_stage().unwrap();
    stage_changes(&mut t, &leaves);
    t.merge_stage().unwrap();
    assert_eq!((export(&t), t.root_tree_hash().unwrap()), unstaged);
    assert_eq!(t.old().leaf_bytes(LeafIndex(1)), Some(&leaves[6][..]), "old() after merge is the tree");
    assert!(!t.is_staging());
}

/// A Commit that adds many members stages its changes into blank parents,
/// whose undo entries take 5 bytes each: an arena of the leaf records plus
/// a small slack holds the stage (a whole 206-byte entry per parent
/// overflowed the boards' arena: `CapacityExceeded(TreeArena)`), and the
/// merged tree is the one the same adds give unstaged.
#[test]
fn big_add_stages_in_an_arena_sized_for_its_leaves() {
    const N: usize = 64;
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let leaves: Vec<Vec<u8>> =
        (0..48u64).map(|i| test_leaf(suite, format!("m{i}").as_bytes(), i + 1, None).0).collect();
    let records: usize = leaves.iter().map(|l| l.len() + LEAF_RECORD_HEADER).sum();
    // Room for a small undo entry per leaf and 5 bytes per parent; not for
    // whole parent slots (47 of them would need ~9.7 KB).
    let slack = 48 * 64 + N * 5;
    let unstaged = {
        let mut meta = TreeMeta::new(suite);
        let (mut slots, mut parents) = (vec![LeafSlot::BLANK; N], vec![ParentSlot::BLANK; N]);
        let mut arena = vec![0u8; records + slack];
        let mut t = TreeSlices::new(&mut meta, &mut slots, &mut parents, &mut arena);
        for l in &leaves {
            t.add_leaf(l).unwrap();
        }
        t.root_tree_hash().unwrap()
    };
    let mut meta = TreeMeta::new(suite);
    let (mut slots, mut parents) = (vec![LeafSlot::BLANK; N], vec![ParentSlot::BLANK; N]);
    let mut arena = vec![0u8; records + slack];
    let mut t = TreeSlices::new(&mut meta, &mut slots, &mut parents, &mut arena);
    t.add_leaf(&leaves[0]).unwrap();
    t.root_tree_hash().unwrap();
    t.begin_stage().unwrap();
    for (i, l) in leaves.iter().enumerate().skip(1) {
        assert_eq!(t.add_leaf(l).unwrap(), LeafIndex(i as u32), "staged add {i}");
    }
    let staged = t.root_tree_hash().unwrap();
    t.merge_stage().unwrap();
    assert_eq!(staged, unstaged);
    assert_eq!(t.root_tree_hash().unwrap(), unstaged);
}
