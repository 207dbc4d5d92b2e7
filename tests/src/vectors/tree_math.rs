//! tree-math.json (RFC 9420 Appendix C): width, root, and every node's
//! left, right, parent and sibling.
use super::{CaseOutcome, CaseResult, Stats, array_field, ensure_eq, u32_field};
use mls_nostd::tree_math::{self, NodeIndex};
use serde_json::Value;

/// An optional node index of the vectors (`null` for none).
fn opt(v: &Value, what: &str) -> Result<Option<NodeIndex>, String> {
    match v {
        Value::Null => Ok(None),
        v => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(|n| Some(NodeIndex(n)))
            .ok_or_else(|| format!("{what}: not a node index")),
    }
}

/// Checks one case.
pub fn check_case(case: &Value) -> CaseResult {
    let n = u32_field(case, "n_leaves")?;
    let width = u32_field(case, "n_nodes")?;
    ensure_eq!(tree_math::node_width(n), Some(width), "node width of {n} leaves");
    ensure_eq!(tree_math::root(n), Some(NodeIndex(u32_field(case, "root")?)), "root of {n} leaves");
    for k in ["left", "right", "parent", "sibling"] {
        ensure_eq!(array_field(case, k)?.len(), width as usize, "length of {k}");
    }
    for i in 0..width {
        let x = NodeIndex(i);
        let at = |k: &str| opt(&case[k][i as usize], &format!("{k}[{i}]"));
        ensure_eq!(tree_math::left(x), at("left")?, "left({i}) n={n}");
        ensure_eq!(tree_math::right(x), at("right")?, "right({i}) n={n}");
        ensure_eq!(tree_math::parent(x, n), at("parent")?, "parent({i}) n={n}");
        ensure_eq!(tree_math::sibling(x, n), at("sibling")?, "sibling({i}) n={n}");
    }
    Ok(CaseOutcome::Ran(Stats::default()))
}
