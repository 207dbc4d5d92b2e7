//! Ratchet tree costs (RFC 9420 §7.8, §7.9, §12.4.3.1): validating an
//! imported tree of 1,024 and 8,192 leaves (as a joiner does), and rehashing
//! after one path change.
//!
//! `cargo bench -p mls-bench --bench ratchet_tree`
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use mls_nostd::codec::Writer;
use mls_nostd::crypto::CipherSuite;
use mls_nostd::extensions::Extensions;
use mls_nostd::ratchet_tree::tree::{decode_tree, HASH_CACHE_PER_LEAF, LeafSlot, ParentSlot, TreeMeta, TreeSlices};
use mls_nostd::ratchet_tree::validate::TreeCheck;
use mls_nostd::tree_math::LeafIndex;
use mls_tests::test_leaf;
use std::hint::black_box;

const SUITE: CipherSuite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;

/// Heap storage for a tree of `n` leaves.
struct Storage {
    meta: TreeMeta,
    leaves: Box<[LeafSlot]>,
    parents: Box<[ParentSlot]>,
    arena: Box<[u8]>,
    hashes: Box<[u8]>,
}

impl Storage {
    fn new(n: usize) -> Self {
        Self {
            meta: TreeMeta::new(SUITE),
            leaves: vec![LeafSlot::BLANK; n].into_boxed_slice(),
            parents: vec![ParentSlot::BLANK; n].into_boxed_slice(),
            arena: vec![0u8; n * 256].into_boxed_slice(),
            hashes: vec![0u8; n * HASH_CACHE_PER_LEAF].into_boxed_slice(),
        }
    }

    fn slices(&mut self) -> TreeSlices<'_> {
        TreeSlices::new(&mut self.meta, &mut self.leaves, &mut self.parents, &mut self.arena).with_hash_cache(&mut self.hashes)
    }
}

/// The encoding of a tree of `n` distinct, signed members.
fn full_tree(n: usize) -> Vec<u8> {
    let mut s = Storage::new(n);
    let mut t = s.slices();
    for i in 0..n {
        let (leaf, _) = test_leaf(SUITE, format!("member {i}").as_bytes(), i as u64, None);
        t.add_leaf(&leaf).unwrap();
    }
    let mut out = vec![0u8; n * 300];
    let mut w = Writer::new(&mut out);
    t.export(&mut w).unwrap();
    let len = w.len();
    out.truncate(len);
    out
}

fn bench_validation(c: &mut Criterion) {
    let mut g = c.benchmark_group("tree_import_and_validate");
    g.sample_size(10);
    for n in [1024usize, 8192] {
        let bytes = full_tree(n);
        let mut storage = Storage::new(n);
        let (mut a, mut b) = (vec![0u32; n], vec![0u32; n]);
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |bench, _| {
            bench.iter(|| {
                let mut t = storage.slices();
                t.import(SUITE, &decode_tree(&bytes).unwrap()).unwrap();
                let check = TreeCheck {
                    group_id: b"bench",
                    tree_hash: None,
                    group_extensions: Extensions::default(),
                    identity: &mls_nostd::identity::SameCredential,
                };
                t.validate(&check, &mls_nostd::executor::Sequential, &mut a, &mut b).unwrap();
            })
        });
    }
    g.finish();
}

fn bench_rehash(c: &mut Criterion) {
    let mut g = c.benchmark_group("rehash_after_leaf_change");
    for n in [1024usize, 8192] {
        let bytes = full_tree(n);
        let mut storage = Storage::new(n);
        let mut t = storage.slices();
        t.import(SUITE, &decode_tree(&bytes).unwrap()).unwrap();
        t.root_tree_hash().unwrap();
        let leaf = t.leaf_bytes(LeafIndex(5)).unwrap().to_vec();
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |bench, _| {
            bench.iter(|| {
                // Re-setting a leaf invalidates its path: log2(n) + 1 hashes.
                t.set_leaf(LeafIndex(5), &leaf).unwrap();
                black_box(t.root_tree_hash().unwrap());
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_validation, bench_rehash);
criterion_main!(benches);
