//! secret-tree.json (RFC 9420 §9, §6.3.2): sender-data key and nonce, and
//! every leaf's handshake and application keys and nonces at the given
//! generations; a consumed key is refused afterwards (replay).
//!
//! Counter: `keys` (keys checked).
use super::{
    CaseOutcome, CaseResult, Context, Stats, array_field, ensure_bytes, ensure_eq, field, hex_field, secret_field,
    suite_or_return, u32_field,
};
use mls_nostd::secret_tree::{RatchetKind, SecretTree, SecretTreeConfig, SecretTreeError, sender_data_key_nonce};
use mls_nostd::tree_math::LeafIndex;
use serde_json::Value;

/// Checks one case.
pub fn check_case(case: &Value) -> CaseResult {
    let suite = suite_or_return!(case);
    let sd = field(case, "sender_data")?;
    let sd_secret = secret_field(sd, "sender_data_secret")?;
    let (key, nonce) = sender_data_key_nonce(suite, &sd_secret, &hex_field(sd, "ciphertext")?).ctx("sender data")?;
    ensure_bytes!(key.as_bytes(), hex_field(sd, "key")?, "sender data key");
    ensure_bytes!(nonce.to_vec(), hex_field(sd, "nonce")?, "sender data nonce");

    let leaves = array_field(case, "leaves")?;
    let root = secret_field(case, "encryption_secret")?;
    let n = u32::try_from(leaves.len()).ctx("number of leaves")?;
    let mut tree =
        Box::new(SecretTree::<32, 64>::new(suite, n, &root, SecretTreeConfig::default()).ctx("secret tree")?);
    let mut stats = Stats::default();
    for (i, gens) in leaves.iter().enumerate() {
        let leaf = LeafIndex(i as u32);
        for g in gens.as_array().ok_or_else(|| format!("leaves[{i}]: not an array"))? {
            let generation = u32_field(g, "generation")?;
            for (kind, k, n) in [
                (RatchetKind::Handshake, "handshake_key", "handshake_nonce"),
                (RatchetKind::Application, "application_key", "application_nonce"),
            ] {
                let rk =
                    tree.receiving_key(leaf, kind, generation).with_ctx(|| format!("{k} leaf {i} gen {generation}"))?;
                ensure_bytes!(rk.key.as_bytes(), hex_field(g, k)?, "{k} leaf {i} gen {generation}");
                ensure_bytes!(rk.nonce.to_vec(), hex_field(g, n)?, "{n} leaf {i} gen {generation}");
                tree.consume(leaf, kind, generation).with_ctx(|| format!("consume {k} leaf {i} gen {generation}"))?;
                // Consumed keys are gone: a replay is refused.
                ensure_eq!(
                    tree.receiving_key(leaf, kind, generation).err(),
                    Some(SecretTreeError::KeyConsumed),
                    "{k} leaf {i} gen {generation}: replay refused"
                );
                stats.add("keys", 1);
            }
        }
    }
    Ok(CaseOutcome::Ran(stats))
}
