//! passive-client-*.json (RFC 9420 §12.4.2, §12.4.3.1, FORMAT.md "Passive
//! Client Scenarios"): the private keys match the KeyPackage; join from the
//! Welcome (with the given ratchet tree, if any, and external PSKs), then
//! follow every epoch's proposals and commit; the epoch authenticators must
//! match after the join and after every epoch.
//!
//! Two optional fields extend the official format (official files have
//! neither and run unchanged):
//!
//! - `"time"`: seconds since the Unix epoch at which the client processes
//!   the scenario (the lifetimes of added members' KeyPackages are checked
//!   against it); default 1700000000, inside the official files' lifetimes.
//! - `"follow_on_groups"`: groups the client moves into after the case's
//!   last epoch, in order, for ReInit (§11.2) and subgroup branching
//!   (§11.3). Each is an object with the fields of a case that describe a
//!   member and its group — `key_package`, `signature_priv`,
//!   `encryption_priv`, `init_priv` (the client's new KeyPackage, in the new
//!   group's cipher suite), `welcome`, `ratchet_tree`,
//!   `initial_epoch_authenticator`, `epochs` — and is followed like the case
//!   itself, except that its Welcome is joined with the group followed just
//!   before (as it is after its last epoch) as the store of resumption PSKs,
//!   beside the case's `external_psks`. The Welcome's `reinit` or `branch`
//!   PSK must name that group, and the new group must match the ReInit the
//!   old group's last Commit covered (or, for a branch, its cipher suite).
//!
//! Counters: `epochs` (epochs followed, in every group), `follow_on_groups`
//! (follow-on groups joined), `linked_groups` (`reinit` or `branch` PSKs of
//! follow-on Welcomes that named the group followed before).
use super::{
    CaseOutcome, CaseResult, Context, Stats, array_field, ensure_bytes, hex_field, hex_value, suite_or_return,
};
use mls_nostd::codec::{Decode, Encode};
use mls_nostd::crypto::CipherSuite;
use mls_nostd::crypto::hpke::HpkePrivateKey;
use mls_nostd::crypto::signature::SignaturePrivateKey;
use mls_nostd::group::{Group, GroupConfig, JoinParams, Received};
use mls_nostd::key_package::KeyPackagePrivateKeys;
use mls_nostd::messages::mls_message::{MlsMessage, MlsMessageBody};
use mls_nostd::psk::{LinkedGroup, PskStore};
use serde_json::Value;

/// Room for 256 members, 512 bytes of LeafNode each, 256 out-of-order keys
/// and 64 KiB of pending proposals.
type TestGroup = Group<256, { 256 * 512 }, 256, { 64 * 1024 }>;

/// The time messages are processed at unless the case gives `time` (the
/// official vectors' KeyPackages and LeafNodes have lifetimes of many years
/// around it).
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

/// The PSKs a follow-on group is joined with: the case's external PSKs and
/// the resumption PSKs (and ReInit) of the group followed before it.
struct Resuming<'a> {
    external: &'a Psks,
    previous: &'a TestGroup,
    /// How often the join looked up the previous group as the group a
    /// `reinit` or `branch` PSK names, and found it.
    linked: std::cell::Cell<usize>,
}

impl PskStore for Resuming<'_> {
    fn external_psk(&self, psk_id: &[u8]) -> Option<&[u8]> {
        self.external.external_psk(psk_id)
    }
    fn resumption_psk(&self, group_id: &[u8], epoch: u64) -> Option<&[u8]> {
        PskStore::resumption_psk(self.previous, group_id, epoch)
    }
    fn linked_group(&self, group_id: &[u8], epoch: u64) -> Option<LinkedGroup<'_>> {
        let linked = self.previous.linked_group(group_id, epoch);
        self.linked.set(self.linked.get() + usize::from(linked.is_some()));
        linked
    }
}

/// The client's KeyPackage (its encoding, without the `MLSMessage` header)
/// and private keys, checked to belong together (FORMAT.md's first step).
struct Member {
    suite: CipherSuite,
    key_package: Vec<u8>,
    keys: KeyPackagePrivateKeys,
    signer: SignaturePrivateKey,
}

impl Member {
    fn read(v: &Value) -> Result<Self, String> {
        let kp_msg = hex_field(v, "key_package")?;
        let MlsMessageBody::KeyPackage(kp) = MlsMessage::decode_exact(&kp_msg).ctx("key_package")?.body else {
            return Err("key_package is not an MLSMessage(KeyPackage)".to_string());
        };
        let suite = CipherSuite::from_u16(kp.tbs.cipher_suite)
            .ok_or_else(|| format!("key_package: unsupported cipher suite {}", kp.tbs.cipher_suite))?;
        let mut kp_bytes = vec![0u8; kp_msg.len()];
        let n = kp.encode_to(&mut kp_bytes).ctx("encode KeyPackage")?.len();
        kp_bytes.truncate(n);
        let keys = KeyPackagePrivateKeys {
            init_key: HpkePrivateKey::from_slice(suite, &hex_field(v, "init_priv")?).ctx("init_priv")?,
            encryption_key: HpkePrivateKey::from_slice(suite, &hex_field(v, "encryption_priv")?).ctx("encryption_priv")?,
        };
        let signer = SignaturePrivateKey::from_slice(suite, &hex_field(v, "signature_priv")?).ctx("signature_priv")?;
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
        Ok(Self { suite, key_package: kp_bytes, keys, signer })
    }

    /// Joins `group` from the Welcome of `v` (with its `ratchet_tree`, if
    /// any) and checks `initial_epoch_authenticator`.
    fn join(&self, group: &mut TestGroup, v: &Value, psks: &dyn PskStore) -> Result<(), String> {
        let tree = match v.get("ratchet_tree") {
            None | Some(Value::Null) => None,
            Some(t) => Some(hex_value(t, "ratchet_tree")?),
        };
        let welcome = hex_field(v, "welcome")?;
        let params = JoinParams {
            executor: &mls_nostd::executor::Sequential,
            key_package: &self.key_package,
            keys: &self.keys,
            signer: &self.signer,
            ratchet_tree: tree.as_deref(),
            psks,
            // The vectors' KeyPackages have lifetimes of many years.
            config: GroupConfig { max_lifetime: u64::MAX, ..GroupConfig::default() },
        };
        let mut buf = vec![0u8; welcome.len()];
        group.join_in_memory(&welcome, &params, &mut buf).ctx("join")?;
        ensure_bytes!(group.epoch_authenticator(), hex_field(v, "initial_epoch_authenticator")?, "after join");
        Ok(())
    }
}

/// Follows every entry of `epochs` of `v`: its proposals, then its commit;
/// the epoch authenticator must match after each.
fn follow_epochs(group: &mut TestGroup, v: &Value, psks: &Psks, now: u64, stats: &mut Stats) -> Result<(), String> {
    for (i, epoch) in array_field(v, "epochs")?.iter().enumerate() {
        for (j, p) in array_field(epoch, "proposals")?.iter().enumerate() {
            let mut msg = hex_value(p, "proposals")?;
            match group.process_message_in_memory(&mut msg, psks, now) {
                Ok(Received::Proposal { .. }) => {}
                other => return Err(format!("epoch {i}: proposal {j}: {other:?}")),
            }
        }
        let mut msg = hex_field(epoch, "commit")?;
        match group.process_message_in_memory(&mut msg, psks, now) {
            Ok(Received::Commit(_)) => {}
            other => return Err(format!("epoch {i}: commit: {other:?}")),
        }
        group.merge_staged_commit_in_memory().with_ctx(|| format!("epoch {i}: merge"))?;
        ensure_bytes!(group.epoch_authenticator(), hex_field(epoch, "epoch_authenticator")?, "epoch {i}");
        stats.add("epochs", 1);
    }
    Ok(())
}

/// Checks one case.
pub fn check_case(case: &Value) -> CaseResult {
    let suite = suite_or_return!(case);
    let member = Member::read(case)?;
    if member.suite != suite {
        return Err(format!("key_package is of cipher suite {:?}, the case of {suite:?}", member.suite));
    }
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
    let now = match case.get("time") {
        None | Some(Value::Null) => NOW,
        Some(t) => t.as_u64().ok_or("time is not an unsigned integer")?,
    };

    let mut group = Box::new(TestGroup::EMPTY);
    member.join(&mut group, case, &psks)?;
    let mut stats = Stats::default();
    follow_epochs(&mut group, case, &psks, now, &mut stats)?;

    let follow_ons = match case.get("follow_on_groups") {
        None | Some(Value::Null) => &[][..],
        Some(_) => array_field(case, "follow_on_groups")?,
    };
    for (k, next) in follow_ons.iter().enumerate() {
        let at = |e: String| format!("follow-on group {k}: {e}");
        let member = Member::read(next).map_err(at)?;
        let mut new_group = Box::new(TestGroup::EMPTY);
        let store = Resuming { external: &psks, previous: &group, linked: Default::default() };
        member.join(&mut new_group, next, &store).map_err(at)?;
        stats.add("linked_groups", store.linked.get());
        follow_epochs(&mut new_group, next, &psks, now, &mut stats).map_err(at)?;
        group = new_group;
        stats.add("follow_on_groups", 1);
    }
    Ok(CaseOutcome::Ran(stats))
}
