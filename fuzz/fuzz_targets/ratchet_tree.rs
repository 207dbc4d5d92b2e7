//! Ratchet tree import with validation (§12.4.3.1, §12.4.3.3). Input:
//! `[suite selector][u8 group-id length][group id][ratchet_tree<V>]`; the
//! selector mod 3 picks suite 1, 3 or 2 (P-256).
//! What imports exports back to the same bytes; the tree hash, resolutions,
//! filtered direct paths and the full join validation never panic.
#![no_main]
use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use mls_fuzz::*;
use mls_nostd::codec::Writer;
use mls_nostd::crypto::CipherSuite;
use mls_nostd::extensions::Extensions;
use mls_nostd::ratchet_tree::tree::{RatchetTree, decode_tree};
use mls_nostd::ratchet_tree::validate::TreeCheck;
use mls_nostd::tree_math::{LeafIndex, NodeIndex};

const N: usize = 32;
type Tree = RatchetTree<N, { N * 512 }>;

thread_local! {
    static TREE: RefCell<Box<Tree>> = RefCell::new(Box::new(Tree::EMPTY));
}

fn seed(suite: u64, group_id: &[u8], tree: &[u8]) -> Vec<u8> {
    let sel = match suite {
        3 => 1,
        2 => 2,
        _ => 0,
    };
    let mut s = vec![sel, group_id.len() as u8];
    s.extend_from_slice(group_id);
    s.extend_from_slice(tree);
    s
}

fuzz_target!(
    init: {
        maybe_write_seeds("ratchet_tree", || {
            let mut seeds: Vec<Vec<u8>> = vector_fields(TREE_KEYS)
                .into_iter()
                .filter(|f| f.group_id.as_ref().is_none_or(|g| g.len() < 256))
                .map(|f| seed(f.suite.unwrap_or(1), f.group_id.as_deref().unwrap_or(&[]), &f.bytes))
                .collect();
            seeds.push(with_world_in(0, |w| seed(1, GROUP_ID, &w.msgs.tree)));
            seeds.push(with_world_in(1, |w| seed(2, GROUP_ID, &w.msgs.tree)));
            seeds
        });
    },
    |data: &[u8]| {
        let Some((&sel, rest)) = data.split_first() else { return };
        let suite = match sel % 3 {
            0 => CipherSuite::X25519Aes128GcmSha256Ed25519,
            1 => CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519,
            _ => CipherSuite::P256Aes128GcmSha256P256,
        };
        let Some((group_id, tree_bytes)) = split_prefixed(rest) else { return };
        let Ok(view) = decode_tree(tree_bytes) else { return };
        TREE.with(|t| {
            let mut t = t.borrow_mut();
            let mut tree = t.slices();
            if tree.import(suite, &view).is_err() {
                return;
            }
            let mut out = vec![0u8; tree_bytes.len() + 64];
            let mut w = Writer::new(&mut out);
            tree.export(&mut w).expect("an imported tree exports");
            assert_eq!(w.written(), tree_bytes, "export of an imported tree differs from its input");
            let _ = tree.root_tree_hash();
            let width = 2 * tree.n_leaves() - 1;
            let mut res = [NodeIndex(0); N];
            for x in 0..width {
                let _ = tree.resolution(NodeIndex(x), &mut res);
            }
            let mut fdp = [(NodeIndex(0), NodeIndex(0)); 8];
            for l in 0..tree.n_leaves() {
                let _ = tree.filtered_direct_path(LeafIndex(l), &mut fdp);
            }
            let check = TreeCheck {
                group_id,
                tree_hash: None,
                group_extensions: Extensions::default(),
                identity: &mls_nostd::identity::SameCredential,
            };
            let (mut a, mut b) = ([0u32; N], [0u32; N]);
            let _ = tree.validate(&check, &mls_nostd::executor::Sequential, &mut a, &mut b);
        });
    }
);
