//! Memory of the ratchet tree per capacity, and a 16,384-leaf tree built on
//! the heap by a thread with a 256 KiB stack (the slices never pass through
//! the stack).
use mls_nostd::codec::Writer;
use mls_nostd::crypto::CipherSuite;
use mls_nostd::ratchet_tree::key_index::WAYS;
use mls_nostd::ratchet_tree::tree::{HASH_CACHE_LEVEL, HASH_CACHE_PER_LEAF, LeafSlot, ParentSlot, RatchetTree, TreeMeta, TreeSlices, LEAF_RECORD_HEADER};
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
        // Slots are linear in the capacity: one leaf and one parent slot, the
        // key index's entries and the hash cache's bytes per leaf.
        let slots = n * (std::mem::size_of::<LeafSlot>() + std::mem::size_of::<ParentSlot>() + 4 * WAYS + HASH_CACHE_PER_LEAF);
        assert!(total >= slots + arena && total <= slots + arena + 64);
    }
    println!(
        "per leaf: LeafSlot {} + ParentSlot {} + key index {} + hash cache {} + arena",
        std::mem::size_of::<LeafSlot>(),
        std::mem::size_of::<ParentSlot>(),
        4 * WAYS,
        HASH_CACHE_PER_LEAF
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
    // The root (node 7, level 3) caches its hash here (at the default
    // MLS_NOSTD_HASH_CACHE_LEVEL, 1, its two children and four
    // grandchildren too).
    let mut hashes = vec![0u8; N * HASH_CACHE_PER_LEAF];
    let (before_bytes, before_hash, before_leaves) = {
        let mut t = TreeSlices::new(&mut meta, &mut slots, &mut parents, &mut arena).with_hash_cache(&mut hashes);
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
    // Six records so far, one of them dead (leaf 1's first): a stage begins
    // by compacting it away (whether a stage fits depends on the tree
    // alone), the one lasting effect of a stage begun and discarded.
    {
        let mut t = TreeSlices::new(&mut meta, &mut slots, &mut parents, &mut arena).with_hash_cache(&mut hashes);
        t.begin_stage().unwrap();
        t.discard_stage().unwrap();
        assert_eq!(export(&t), before_bytes);
        assert_eq!(t.root_tree_hash().unwrap(), before_hash);
    }
    let used: usize = [0, 1, 2, 3, 4].iter().map(|&i| leaves[i].len() + LEAF_RECORD_HEADER).sum();
    let (meta0, slots0, parents0, arena0) = (meta, slots.clone(), parents.clone(), arena[..used].to_vec());
    let hashes0 = hashes.clone();
    assert!(HASH_CACHE_LEVEL > 3 || hashes0 != vec![0u8; N * HASH_CACHE_PER_LEAF], "the root's hash is cached");
    {
        let mut t = TreeSlices::new(&mut meta, &mut slots, &mut parents, &mut arena).with_hash_cache(&mut hashes);
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
    assert_eq!(hashes, hashes0, "hash cache after discard");

    // The same changes without staging, on a copy, and merged: one tree.
    let (mut meta2, mut slots2, mut parents2, mut arena2) = (meta, slots.clone(), parents.clone(), arena.clone());
    let mut hashes2 = hashes.clone();
    let unstaged = {
        let mut t = TreeSlices::new(&mut meta2, &mut slots2, &mut parents2, &mut arena2).with_hash_cache(&mut hashes2);
        stage_changes(&mut t, &leaves);
        (export(&t), t.root_tree_hash().unwrap())
    };
    let mut t = TreeSlices::new(&mut meta, &mut slots, &mut parents, &mut arena).with_hash_cache(&mut hashes);
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

/// The hash cache (parents of `HASH_CACHE_LEVEL` and above: every one by
/// default, 3 and above as the boards build) gives the tree hashes of a
/// tree without one, after every change: 32 leaves through adds, updates,
/// removals, fresh parents with
/// unmerged leaves under them, stages discarded and merged, and a full
/// recomputation's parent hashes (`parent_hash`, which reads cached
/// sibling hashes).
#[test]
fn hash_cache_gives_the_uncached_tree_hashes() {
    const N: usize = 32;
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let leaves: Vec<Vec<u8>> = (0..40u64).map(|i| test_leaf(suite, format!("m{i}").as_bytes(), i + 1, None).0).collect();
    struct Parts {
        meta: TreeMeta,
        slots: Vec<LeafSlot>,
        parents: Vec<ParentSlot>,
        arena: Vec<u8>,
        hashes: Vec<u8>,
    }
    let new = |cache: usize| Parts {
        meta: TreeMeta::new(suite),
        slots: vec![LeafSlot::BLANK; N],
        parents: vec![ParentSlot::BLANK; N],
        arena: vec![0u8; 64 * 1024],
        hashes: vec![0u8; cache],
    };
    let (mut cached, mut plain) = (new(N * HASH_CACHE_PER_LEAF), new(0));
    let mut checks = 0;
    let mut step = |i: usize, op: &dyn Fn(&mut TreeSlices<'_>)| {
        let mut roots = Vec::new();
        for p in [&mut cached, &mut plain] {
            let mut t = TreeSlices::new(&mut p.meta, &mut p.slots, &mut p.parents, &mut p.arena).with_hash_cache(&mut p.hashes);
            op(&mut t);
            let nodes: Vec<_> = (0..2 * t.n_leaves() - 1).filter(|x| x % 2 == 1).map(|x| t.tree_hash(NodeIndex(x)).unwrap()).collect();
            let ph = if t.n_leaves() >= 16 && !t.is_blank(NodeIndex(15)) { Some(t.parent_hash(NodeIndex(15), NodeIndex(23)).unwrap()) } else { None };
            roots.push((t.root_tree_hash().unwrap(), nodes, ph));
        }
        assert_eq!(roots[0], roots[1], "step {i}: cached and uncached tree hashes differ");
        checks += 1;
    };
    for l in &leaves[..20] {
        step(0, &|t| {
            t.add_leaf(l).unwrap();
        });
    }
    step(1, &|t| t.update_leaf(LeafIndex(3), &leaves[20]).unwrap());
    step(2, &|t| t.set_parent(NodeIndex(15), &[1u8; 32], &[]).unwrap());
    step(3, &|t| t.set_parent(NodeIndex(7), &[2u8; 32], &[]).unwrap());
    step(4, &|t| t.remove_leaf(LeafIndex(5)).unwrap());
    step(5, &|t| assert_eq!(t.add_leaf(&leaves[21]).unwrap(), LeafIndex(5)));
    step(6, &|t| {
        t.begin_stage().unwrap();
        t.update_leaf(LeafIndex(1), &leaves[22]).unwrap();
        t.set_parent(NodeIndex(31), &[3u8; 32], &[]).unwrap();
        t.root_tree_hash().unwrap();
        t.discard_stage().unwrap();
    });
    step(7, &|t| {
        t.begin_stage().unwrap();
        t.update_leaf(LeafIndex(9), &leaves[23]).unwrap();
        t.set_parent(NodeIndex(23), &[4u8; 32], &[]).unwrap();
        t.root_tree_hash().unwrap();
        t.merge_stage().unwrap();
    });
    for l in &leaves[24..36] {
        step(8, &|t| {
            t.add_leaf(l).unwrap();
        });
    }
    step(9, &|t| t.remove_leaf(LeafIndex(31)).unwrap());
    step(10, &|t| t.blank_direct_path(LeafIndex(0)).unwrap());
    assert_eq!(checks, 20 + 7 + 12 + 2, "every step compared");
    assert_ne!(cached.hashes, vec![0u8; N * HASH_CACHE_PER_LEAF], "the cache was used");
}

/// A staged Add that extends the tree and runs out of arena for the undo
/// log after its leaf is written fails; discarding the stage then leaves
/// every slot as before the stage (the leaf was left in its slot past the
/// tree, its undo entries dropped, so the discard did not blank it: a
/// member of no tree, whose record the arena no longer counted).
#[test]
fn failed_staged_extending_add_is_discarded_exactly() {
    const N: usize = 8;
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let a = test_leaf(suite, b"a", 1, None).0;
    let b = test_leaf(suite, b"b", 2, None).0;
    // The first leaf's record, then for the Add: its size entry (9 bytes),
    // its leaf's record, the leaf's undo entry (25 bytes) and 2 bytes: not
    // the 5 of the new root's entry.
    let arena_len = a.len() + LEAF_RECORD_HEADER + 9 + b.len() + LEAF_RECORD_HEADER + 25 + 2;
    let mut meta = TreeMeta::new(suite);
    let (mut slots, mut parents) = (vec![LeafSlot::BLANK; N], vec![ParentSlot::BLANK; N]);
    let mut arena = vec![0u8; arena_len];
    {
        let mut t = TreeSlices::new(&mut meta, &mut slots, &mut parents, &mut arena);
        t.add_leaf(&a).unwrap();
    }
    let (meta0, slots0, parents0) = (meta, slots.clone(), parents.clone());
    {
        let mut t = TreeSlices::new(&mut meta, &mut slots, &mut parents, &mut arena);
        t.begin_stage().unwrap();
        assert_eq!(t.add_leaf(&b), Err(mls_nostd::ratchet_tree::tree::TreeError::CapacityExceeded(mls_nostd::Capacity::TreeArena)));
        t.discard_stage().unwrap();
    }
    println!("leaf slot 1 after the discard: {:?}", slots[1]);
    assert_eq!(slots, slots0, "leaf slots after the discard");
    assert_eq!(parents, parents0, "parent slots after the discard");
    assert_eq!(meta, meta0, "tree meta after the discard");
}

/// Whether a Commit's changes fit the arena depends on the tree alone, not
/// on the member's history (RFC 9420 §12.4.2: every member applies the same
/// Commit to the same tree). Two trees of the same leaves, one whose arena
/// also holds dead records of replaced leaves (leaf 3 updated and updated
/// back), stage the same changes at every arena size: both succeed or both
/// fail. (Found by `self_acceptance`: a member whose arena's dead records
/// were fewer than its free bytes did not compact at `begin_stage` and
/// refused, `CapacityExceeded(TreeArena)`, a Commit its committer, with a
/// compacted arena, had created.)
#[test]
fn stage_room_does_not_depend_on_dead_records() {
    const N: usize = 4;
    let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
    let leaves: Vec<Vec<u8>> = (0..6u64).map(|i| test_leaf(suite, format!("m{i}").as_bytes(), i + 1, None).0).collect();
    let record = |l: &Vec<u8>| l.len() + LEAF_RECORD_HEADER;
    let live: usize = leaves[..4].iter().map(record).sum();
    // Whether the changes stage in an arena of `arena_len` bytes.
    let stage = |arena_len: usize, churn: bool| -> bool {
        let mut meta = TreeMeta::new(suite);
        let (mut slots, mut parents) = (vec![LeafSlot::BLANK; N], vec![ParentSlot::BLANK; N]);
        let mut arena = vec![0u8; arena_len];
        let mut t = TreeSlices::new(&mut meta, &mut slots, &mut parents, &mut arena);
        for l in &leaves[..4] {
            t.add_leaf(l).unwrap();
        }
        if churn {
            t.update_leaf(LeafIndex(3), &leaves[4]).unwrap();
            t.update_leaf(LeafIndex(3), &leaves[3]).unwrap();
        }
        let before = export(&t);
        t.begin_stage().unwrap();
        let staged = t.update_leaf(LeafIndex(0), &leaves[5]).is_ok()
            && t.set_parent(NodeIndex(1), &[7u8; 32], &[]).is_ok()
            && t.set_parent(NodeIndex(3), &[8u8; 32], &[]).is_ok()
            && t.update_leaf(LeafIndex(2), &leaves[4]).is_ok();
        t.discard_stage().unwrap();
        assert_eq!(export(&t), before);
        staged
    };
    let (mut fits, mut too_small) = (0, 0);
    let largest = leaves.iter().map(record).max().unwrap();
    for arena_len in (live + largest..live + 3000).step_by(4) {
        let compact = stage(arena_len, false);
        let churned = stage(arena_len, true);
        assert_eq!(churned, compact, "arena of {arena_len} bytes: with dead records {churned}, without {compact}");
        if compact { fits += 1 } else { too_small += 1 }
    }
    assert!(fits > 0 && too_small > 0, "the sizes cross the boundary: {fits} fit, {too_small} too small");
}
