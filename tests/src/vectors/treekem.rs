//! treekem.json (RFC 9420 §7.4–§7.6, §7.9): the private states match the
//! tree; every given UpdatePath is processed by every member with private
//! state (path secret, commit secret, tree hash after); a new UpdatePath
//! created for the same sender is processed by every other member (same
//! commit secret, same tree).
//!
//! Counters: `processed` (given paths processed), `created` (created paths
//! processed).
use super::{
    CaseOutcome, CaseResult, Context, Stats, array_field, ensure, ensure_bytes, ensure_eq, hex_field, hex_value,
    suite_or_return, u32_field, u64_field,
};
use crate::TestRng;
use mls_nostd::codec::Decode;
use mls_nostd::crypto::hpke::HpkePrivateKey;
use mls_nostd::crypto::signature::SignaturePrivateKey;
use mls_nostd::group_context::GroupContext;
use mls_nostd::leaf_node::LeafNode;
use mls_nostd::messages::commit::UpdatePath;
use mls_nostd::ratchet_tree::tree::{RatchetTree, decode_tree};
use mls_nostd::ratchet_tree::treekem::{LeafTemplate, Sequential, TreeKemPrivate};
use mls_nostd::tree_math::{LeafIndex, NodeIndex};
use serde_json::Value;

type Tree = RatchetTree<64, 65536>;

/// Checks one case.
pub fn check_case(case: &Value) -> CaseResult {
    let suite = suite_or_return!(case);
    let tree_bytes = hex_field(case, "ratchet_tree")?;
    let mut base = Box::new(Tree::EMPTY);
    base.slices().import(suite, &decode_tree(&tree_bytes).ctx("decode tree")?).ctx("import tree")?;
    let group_id = hex_field(case, "group_id")?;
    let cth = hex_field(case, "confirmed_transcript_hash")?;
    let context = GroupContext {
        cipher_suite: suite,
        group_id: &group_id,
        epoch: u64_field(case, "epoch")?,
        tree_hash: &[],
        confirmed_transcript_hash: &cth,
        extensions: &[],
    };
    let mut stats = Stats::default();

    // Private states, checked against the tree.
    let mut privates = Vec::new();
    let mut signers = Vec::new();
    for lp in array_field(case, "leaves_private")? {
        let leaf = LeafIndex(u32_field(lp, "index")?);
        let sk = HpkePrivateKey::from_slice(suite, &hex_field(lp, "encryption_priv")?).ctx("encryption_priv")?;
        let t = base.slices();
        let node = leaf.node().with_ctx(|| format!("node of {leaf:?}"))?;
        ensure_bytes!(
            t.encryption_key(node).with_ctx(|| format!("encryption key of {leaf:?}"))?,
            sk.public_key(suite).as_bytes(),
            "private key of {leaf:?}"
        );
        let mut p = TreeKemPrivate::new(leaf, sk);
        for ps in array_field(lp, "path_secrets")? {
            let node = NodeIndex(u32_field(ps, "node")?);
            let pk = p
                .set_path_secret(suite, node, &hex_field(ps, "path_secret")?)
                .with_ctx(|| format!("path secret of {node:?}"))?;
            ensure_bytes!(
                t.encryption_key(node).with_ctx(|| format!("encryption key of {node:?}"))?,
                pk.as_bytes(),
                "private state of node {node:?}"
            );
        }
        privates.push(p);
        signers.push(SignaturePrivateKey::from_slice(suite, &hex_field(lp, "signature_priv")?).ctx("signature_priv")?);
    }

    for (ui, u) in array_field(case, "update_paths")?.iter().enumerate() {
        let sender = LeafIndex(u32_field(u, "sender")?);
        let path_bytes = hex_field(u, "update_path")?;
        let path = UpdatePath::decode_exact(&path_bytes).with_ctx(|| format!("update_paths[{ui}]: UpdatePath"))?;
        let path_secrets = array_field(u, "path_secrets")?;
        let commit_secret = hex_field(u, "commit_secret")?;
        let tree_hash_after = hex_field(u, "tree_hash_after")?;
        for p in privates.iter().filter(|p| p.leaf != sender) {
            let mut tree = base.clone();
            let mut t = tree.slices();
            let mut gc = [0u8; 512];
            let out = t
                .apply_update_path(sender, &path, p, &context, &mut gc, &|_| false)
                .with_ctx(|| format!("leaf {:?} processing path of {sender:?}", p.leaf))?;
            let expected = path_secrets
                .get(p.leaf.0 as usize)
                .ok_or_else(|| format!("update_paths[{ui}]: no path secret for leaf {:?}", p.leaf))?;
            ensure_bytes!(
                out.decrypted_path_secret.with_ctx(|| format!("path secret at leaf {:?}", p.leaf))?.as_bytes(),
                hex_value(expected, "path_secrets")?,
                "path secret at leaf {:?}",
                p.leaf
            );
            ensure_bytes!(out.commit_secret.as_bytes(), commit_secret, "commit secret at leaf {:?}", p.leaf);
            ensure_bytes!(
                t.root_tree_hash().ctx("tree hash after")?.as_bytes(),
                tree_hash_after,
                "tree hash after, at leaf {:?}",
                p.leaf
            );
            stats.add("processed", 1);
        }

        // A new UpdatePath from the same sender, processed by all others.
        let Some(si) = privates.iter().position(|p| p.leaf == sender) else { continue };
        // The committer keeps its credential, capabilities and extensions.
        let mut original = base.clone();
        let orig_leaf = original.slices().leaf_bytes(sender).ctx("sender's leaf")?.to_vec();
        let orig_leaf = LeafNode::decode_exact(&orig_leaf).ctx("sender's LeafNode")?;
        let template = LeafTemplate {
            signature_key: orig_leaf.fields.signature_key,
            credential: orig_leaf.fields.credential,
            capabilities: orig_leaf.fields.capabilities,
            extensions: orig_leaf.fields.extensions,
        };
        let mut tree = base.clone();
        let mut out = vec![0u8; 16384];
        let mut gc = [0u8; 512];
        let mut t = tree.slices();
        let created_path = t
            .create_update_path(
                &privates[si],
                Some(&template),
                &signers[si],
                &context,
                &mut gc,
                &|_| false,
                &mut TestRng(ui as u64),
                &Sequential,
                &mut out,
            )
            .with_ctx(|| format!("create path for {sender:?}"))?;
        let new_hash = t.root_tree_hash().ctx("tree hash of our path")?;
        // The ciphertexts were sealed in jobs (ephemeral IKM, path secret)
        // that the path is then written over: none may outlive the call.
        let left = out.get(created_path.update_path_len..).ctx("created UpdatePath length")?;
        ensure!(left.iter().all(|b| *b == 0), "create path for {sender:?}: seal jobs left in the buffer after the path");
        let new_path = out
            .get(..created_path.update_path_len)
            .ctx("created UpdatePath length")
            .and_then(|b| UpdatePath::decode_exact(b).ctx("decode our UpdatePath"))?;
        for p in privates.iter().filter(|p| p.leaf != sender) {
            let mut tree = base.clone();
            let mut t = tree.slices();
            let mut gc = [0u8; 512];
            let r = t
                .apply_update_path(sender, &new_path, p, &context, &mut gc, &|_| false)
                .with_ctx(|| format!("leaf {:?} processing our path", p.leaf))?;
            ensure_eq!(r.commit_secret, created_path.commit_secret, "new commit secret at leaf {:?}", p.leaf);
            ensure_eq!(t.root_tree_hash().ctx("tree hash")?, new_hash, "trees agree at leaf {:?}", p.leaf);
            stats.add("created", 1);
        }
    }
    Ok(CaseOutcome::Ran(stats))
}
