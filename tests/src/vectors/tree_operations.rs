//! tree-operations.json (RFC 9420 §7.7, §7.8, §12.1): the tree hash before,
//! one Add, Update or Remove proposal applied, the tree and its hash after.
use super::{CaseOutcome, CaseResult, Context, Stats, ensure_bytes, hex_field, suite_or_return, u32_field};
use mls_nostd::codec::{Decode, Reader, Writer};
use mls_nostd::key_package::KeyPackage;
use mls_nostd::leaf_node::LeafNode;
use mls_nostd::ratchet_tree::tree::{RatchetTree, decode_tree};
use mls_nostd::tree_math::LeafIndex;
use serde_json::Value;

type Tree = RatchetTree<64, 65536>;

/// Checks one case.
pub fn check_case(case: &Value) -> CaseResult {
    let suite = suite_or_return!(case);
    let before = hex_field(case, "tree_before")?;
    let mut tree = Box::new(Tree::EMPTY);
    let mut t = tree.slices();
    t.import(suite, &decode_tree(&before).ctx("decode tree_before")?).ctx("import tree_before")?;
    ensure_bytes!(
        t.root_tree_hash().ctx("tree hash before")?.as_bytes(),
        hex_field(case, "tree_hash_before")?,
        "hash before"
    );

    // Proposal { ProposalType msg_type; select { add: KeyPackage; update: LeafNode; remove: uint32 } }
    let proposal = hex_field(case, "proposal")?;
    let sender = LeafIndex(u32_field(case, "proposal_sender")?);
    let mut r = Reader::new(&proposal);
    match r.read_u16().ctx("proposal type")? {
        1 => {
            let kp = KeyPackage::decode(&mut r).ctx("Add: KeyPackage")?;
            t.add_leaf(kp.tbs.leaf_node.as_bytes()).ctx("add_leaf")?;
        }
        2 => {
            let leaf = LeafNode::decode(&mut r).ctx("Update: LeafNode")?;
            t.update_leaf(sender, leaf.as_bytes()).ctx("update_leaf")?;
        }
        3 => {
            let removed = r.read_u32().ctx("Remove: leaf index")?;
            t.remove_leaf(LeafIndex(removed)).ctx("remove_leaf")?;
        }
        other => return Err(format!("unexpected proposal type {other}")),
    }
    r.finish().ctx("proposal has trailing bytes")?;

    let after = hex_field(case, "tree_after")?;
    let mut out = vec![0u8; after.len() + before.len() + 64];
    let mut w = Writer::new(&mut out);
    t.export(&mut w).ctx("export")?;
    ensure_bytes!(w.written(), after, "tree after");
    ensure_bytes!(
        t.root_tree_hash().ctx("tree hash after")?.as_bytes(),
        hex_field(case, "tree_hash_after")?,
        "hash after"
    );
    Ok(CaseOutcome::Ran(Stats::default()))
}
