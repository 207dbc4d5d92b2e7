//! tree-validation.json (RFC 9420 §4, §7.7–§7.9, §12.4.3.1): the resolution
//! and tree hash of every node, the whole tree valid (signatures, parent
//! hashes, unique keys), and its export identical to the given encoding.
//!
//! Counters: `resolutions`, `tree_hashes`.
use super::{
    CaseOutcome, CaseResult, Context, Stats, array_field, ensure_bytes, ensure_eq, hex_field, hex_value,
    suite_or_return,
};
use mls_nostd::codec::Writer;
use mls_nostd::extensions::Extensions;
use mls_nostd::ratchet_tree::tree::{RatchetTree, decode_tree};
use mls_nostd::ratchet_tree::validate::TreeCheck;
use mls_nostd::tree_math::NodeIndex;
use serde_json::Value;

type Tree = RatchetTree<64, 65536>;

/// Checks one case.
pub fn check_case(case: &Value) -> CaseResult {
    let suite = suite_or_return!(case);
    let bytes = hex_field(case, "tree")?;
    let view = decode_tree(&bytes).ctx("decode tree")?;
    let mut tree = Box::new(Tree::EMPTY);
    let mut t = tree.slices();
    t.import(suite, &view).ctx("import tree")?;
    let mut stats = Stats::default();

    for (i, expected) in array_field(case, "resolutions")?.iter().enumerate() {
        let expected = expected
            .as_array()
            .and_then(|a| {
                a.iter()
                    .map(|v| v.as_u64().and_then(|n| u32::try_from(n).ok()).map(NodeIndex))
                    .collect::<Option<Vec<_>>>()
            })
            .ok_or_else(|| format!("resolutions[{i}]: not an array of node indices"))?;
        let mut out = [NodeIndex(0); 128];
        let n = t.resolution(NodeIndex(i as u32), &mut out).with_ctx(|| format!("resolution of node {i}"))?;
        ensure_eq!(out[..n], expected[..], "resolution of node {i}");
        stats.add("resolutions", 1);
    }
    for (i, expected) in array_field(case, "tree_hashes")?.iter().enumerate() {
        let h = t.tree_hash(NodeIndex(i as u32)).with_ctx(|| format!("tree hash of node {i}"))?;
        ensure_bytes!(h.as_bytes(), hex_value(expected, "tree_hashes")?, "tree hash of node {i}");
        stats.add("tree_hashes", 1);
    }
    let group_id = hex_field(case, "group_id")?;
    let root = t.root_tree_hash().ctx("root tree hash")?;
    let check = TreeCheck {
        group_id: &group_id,
        tree_hash: Some(root.as_bytes()),
        group_extensions: Extensions::default(),
        identity: &mls_nostd::identity::SameCredential,
    };
    let (mut a, mut b) = ([0u32; 64], [0u32; 64]);
    t.validate(&check, &mls_nostd::executor::Sequential, &mut a, &mut b).ctx("validate")?;

    // The tree re-exports to the identical encoding.
    let mut out = vec![0u8; bytes.len() + 16];
    let mut w = Writer::new(&mut out);
    t.export(&mut w).ctx("export")?;
    ensure_bytes!(w.written(), bytes, "export");
    Ok(CaseOutcome::Ran(stats))
}
