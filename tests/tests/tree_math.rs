//! tree-math.json: every case (RFC 9420 Appendix C).
use mls_nostd::tree_math::{self, NodeIndex};
use mls_tests::{load, uint};
use serde_json::Value;

fn opt(v: &Value) -> Option<NodeIndex> {
    v.as_u64().map(|n| NodeIndex(n as u32))
}

#[test]
fn tree_math_vectors() {
    let cases = load("tree-math.json");
    let mut ran = 0;
    for case in &cases {
        let n = uint(&case["n_leaves"]) as u32;
        let width = uint(&case["n_nodes"]) as u32;
        assert_eq!(tree_math::node_width(n), Some(width));
        assert_eq!(tree_math::root(n), Some(NodeIndex(uint(&case["root"]) as u32)));
        for i in 0..width {
            let x = NodeIndex(i);
            let at = |k: &str| opt(&case[k][i as usize]);
            assert_eq!(tree_math::left(x), at("left"), "left({i}) n={n}");
            assert_eq!(tree_math::right(x), at("right"), "right({i}) n={n}");
            assert_eq!(tree_math::parent(x, n), at("parent"), "parent({i}) n={n}");
            assert_eq!(tree_math::sibling(x, n), at("sibling"), "sibling({i}) n={n}");
        }
        ran += 1;
    }
    println!("tree-math.json: {ran} cases ran");
    assert_eq!(ran, 10);
    assert_eq!(ran, cases.len());
}
