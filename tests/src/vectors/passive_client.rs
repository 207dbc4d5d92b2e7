//! passive-client-*.json (RFC 9420 §12.4.2, §12.4.3.1, FORMAT.md "Passive
//! Client Scenarios"): the private keys match the KeyPackage; join from the
//! Welcome (with the given ratchet tree, if any, and external PSKs), then
//! follow every epoch's proposals and commit; the epoch authenticators must
//! match after the join and after every epoch.
//!
//! Counter: `epochs` (epochs followed).
use super::{
    CaseOutcome, CaseResult, Context, Stats, array_field, ensure_bytes, hex_field, hex_value, suite_or_return,
};
use mls_nostd::codec::{Decode, Encode};
use mls_nostd::crypto::hpke::HpkePrivateKey;
use mls_nostd::crypto::signature::SignaturePrivateKey;
use mls_nostd::group::{Group, GroupConfig, JoinParams, Received};
use mls_nostd::key_package::KeyPackagePrivateKeys;
use mls_nostd::messages::mls_message::{MlsMessage, MlsMessageBody};
use mls_nostd::psk::PskStore;
use mls_nostd::ratchet_tree::validate::AcceptAllCredentials;
use serde_json::Value;

/// Room for 256 members, 512 bytes of LeafNode each, 256 out-of-order keys
/// and 64 KiB of pending proposals.
type TestGroup = Group<256, { 256 * 512 }, 256, { 64 * 1024 }>;

/// The time messages are processed at (the vectors' KeyPackages and
/// LeafNodes have lifetimes of many years around it).
const NOW: u64 = 1_700_000_000;

/// The external PSKs of a case.
struct Psks(Vec<(Vec<u8>, Vec<u8>)>);

impl PskStore for Psks {
    fn external_psk(&self, psk_id: &[u8]) -> Option<&[u8]> {
        self.0.iter().find(|(id, _)| id == psk_id).map(|(_, k)| k.as_slice())
    }
    fn resumption_psk(&self, _: &[u8], _: u64) -> Option<&[u8]> {
        None
    }
}

/// Checks one case.
pub fn check_case(case: &Value) -> CaseResult {
    let suite = suite_or_return!(case);
    let kp_msg = hex_field(case, "key_package")?;
    let MlsMessageBody::KeyPackage(kp) = MlsMessage::decode_exact(&kp_msg).ctx("key_package")?.body else {
        return Err("key_package is not an MLSMessage(KeyPackage)".to_string());
    };
    let mut kp_bytes = vec![0u8; kp_msg.len()];
    let n = kp.encode_to(&mut kp_bytes).ctx("encode KeyPackage")?.len();
    kp_bytes.truncate(n);
    let keys = KeyPackagePrivateKeys {
        init_key: HpkePrivateKey::from_slice(&hex_field(case, "init_priv")?).ctx("init_priv")?,
        encryption_key: HpkePrivateKey::from_slice(&hex_field(case, "encryption_priv")?).ctx("encryption_priv")?,
    };
    let signer = SignaturePrivateKey::from_slice(&hex_field(case, "signature_priv")?).ctx("signature_priv")?;
    // The private keys belong to the KeyPackage (FORMAT.md's first step).
    ensure_bytes!(keys.init_key.public_key(suite).as_bytes(), kp.tbs.init_key, "init_priv matches init_key");
    ensure_bytes!(
        keys.encryption_key.public_key(suite).as_bytes(),
        kp.tbs.leaf_node.fields.encryption_key,
        "encryption_priv matches the leaf's encryption_key"
    );
    ensure_bytes!(
        signer.public_key().as_bytes(),
        kp.tbs.leaf_node.fields.signature_key,
        "signature_priv matches the leaf's signature_key"
    );
    // Lenient with files that leave out the optional parts.
    let psks = match case.get("external_psks") {
        None | Some(Value::Null) => Psks(Vec::new()),
        Some(_) => Psks(
            array_field(case, "external_psks")?
                .iter()
                .map(|p| Ok((hex_field(p, "psk_id")?, hex_field(p, "psk")?)))
                .collect::<Result<_, String>>()?,
        ),
    };
    let tree = match case.get("ratchet_tree") {
        None | Some(Value::Null) => None,
        Some(v) => Some(hex_value(v, "ratchet_tree")?),
    };
    let welcome = hex_field(case, "welcome")?;

    let mut group = Box::new(TestGroup::EMPTY);
    let params = JoinParams {
        key_package: &kp_bytes,
        keys: &keys,
        signer: &signer,
        ratchet_tree: tree.as_deref(),
        psks: &psks,
        credentials: &AcceptAllCredentials,
        // The vectors' KeyPackages have lifetimes of many years.
        config: GroupConfig { max_lifetime: u64::MAX, ..GroupConfig::default() },
    };
    let mut buf = vec![0u8; welcome.len()];
    group.join(&welcome, &params, &mut buf).ctx("join")?;
    ensure_bytes!(group.epoch_authenticator(), hex_field(case, "initial_epoch_authenticator")?, "after join");

    let mut stats = Stats::default();
    for (i, epoch) in array_field(case, "epochs")?.iter().enumerate() {
        for (j, p) in array_field(epoch, "proposals")?.iter().enumerate() {
            let mut msg = hex_value(p, "proposals")?;
            match group.process_message(&mut msg, &psks, NOW) {
                Ok(Received::Proposal { .. }) => {}
                other => return Err(format!("epoch {i}: proposal {j}: {other:?}")),
            }
        }
        let mut msg = hex_field(epoch, "commit")?;
        match group.process_message(&mut msg, &psks, NOW) {
            Ok(Received::Commit(_)) => {}
            other => return Err(format!("epoch {i}: commit: {other:?}")),
        }
        group.merge_staged_commit().with_ctx(|| format!("epoch {i}: merge"))?;
        ensure_bytes!(group.epoch_authenticator(), hex_field(epoch, "epoch_authenticator")?, "epoch {i}");
        stats.add("epochs", 1);
    }
    Ok(CaseOutcome::Ran(stats))
}
