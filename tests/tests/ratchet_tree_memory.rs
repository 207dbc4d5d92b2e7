//! Memory of the ratchet tree per capacity, and a 16,384-leaf tree built on
//! the heap by a thread with a 256 KiB stack (the slices never pass through
//! the stack).
use mls_nostd::codec::Writer;
use mls_nostd::crypto::CipherSuite;
use mls_nostd::ratchet_tree::tree::{LeafSlot, ParentSlot, RatchetTree, TreeMeta, TreeSlices, LEAF_RECORD_HEADER};
use mls_nostd::tree_math::LeafIndex;
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
        // Slots are linear in the capacity: one leaf and one parent slot per leaf.
        let slots = n * (std::mem::size_of::<LeafSlot>() + std::mem::size_of::<ParentSlot>());
        assert!(total >= slots + arena && total <= slots + arena + 64);
    }
    println!("per leaf: LeafSlot {} + ParentSlot {} + arena", std::mem::size_of::<LeafSlot>(), std::mem::size_of::<ParentSlot>());
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
