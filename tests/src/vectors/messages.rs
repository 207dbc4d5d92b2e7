//! messages.json (RFC 9420 §6, §7.6, §10, §12.1, §12.4): every message
//! structure decodes and re-encodes byte for byte. The vectors mix suites 1,
//! 2 and 3 (no suite field): decoding is suite-independent, so every case runs.
//!
//! Counters: `field:NAME` (objects of each field decoded and re-encoded),
//! `detail:WHAT` (what the vectors exercise: sender and proposal types,
//! commits with and without path, ...), `bytes` (bytes of all objects).
use super::{CaseOutcome, CaseResult, Context, Stats, ensure_bytes, ensure_eq, hex_field};
use mls_nostd::codec::{Decode, Encode};
use mls_nostd::messages::{
    Add, Commit, Content, ContentType, ExternalInit, GroupContextExtensions, GroupSecrets, MlsMessage, MlsMessageBody,
    PreSharedKey, ProposalOrRef, ReInit, Remove, Update, WIRE_FORMAT_GROUP_INFO, WIRE_FORMAT_KEY_PACKAGE,
    WIRE_FORMAT_PRIVATE_MESSAGE, WIRE_FORMAT_PUBLIC_MESSAGE, WIRE_FORMAT_WELCOME,
};
use mls_nostd::ratchet_tree::node::RatchetTreeView;
use serde_json::Value;

/// Every field of a messages.json case.
pub const FIELDS: [&str; 17] = [
    "mls_welcome",
    "mls_group_info",
    "mls_key_package",
    "ratchet_tree",
    "group_secrets",
    "add_proposal",
    "update_proposal",
    "remove_proposal",
    "pre_shared_key_proposal",
    "re_init_proposal",
    "external_init_proposal",
    "group_context_extensions_proposal",
    "commit",
    "public_message_application",
    "public_message_proposal",
    "public_message_commit",
    "private_message",
];

/// The name of the counter of objects of `field` checked.
pub fn field_counter(field: &str) -> String {
    format!("field:{field}")
}

/// Decodes all of `bytes` as a `T`, re-encodes it from its fields and checks
/// that the same bytes come out.
fn roundtrip<'a, T: Decode<'a> + Encode>(bytes: &'a [u8], what: &str) -> Result<T, String> {
    let v = T::decode_exact(bytes).with_ctx(|| format!("{what}: decode failed"))?;
    let n = v.encoded_len().with_ctx(|| format!("{what}: encoded_len failed"))?;
    ensure_eq!(n, bytes.len(), "{what}: encoded length");
    let mut buf = vec![0u8; n];
    let out = v.encode_to(&mut buf).with_ctx(|| format!("{what}: encode failed"))?;
    ensure_bytes!(out, bytes, "{what}: re-encoding differs");
    Ok(v)
}

/// An MLSMessage of the expected wire format.
fn mls_message<'a>(bytes: &'a [u8], wire_format: u16, what: &str) -> Result<MlsMessage<'a>, String> {
    let m: MlsMessage = roundtrip(bytes, what)?;
    ensure_eq!(m.wire_format(), wire_format, "{what}: wire format");
    Ok(m)
}

/// Notes what a case exercises.
fn note(stats: &mut Stats, what: &str) {
    stats.add(&format!("detail:{what}"), 1);
}

/// A PublicMessage whose content is of `content_type`; its kept FramedContent
/// bytes are the FramedContent re-encoded.
fn public_message(bytes: &[u8], content_type: ContentType, what: &str, stats: &mut Stats) -> Result<(), String> {
    let m = mls_message(bytes, WIRE_FORMAT_PUBLIC_MESSAGE, what)?;
    let MlsMessageBody::PublicMessage(pm) = m.body else {
        return Err(format!("{what}: not a PublicMessage"));
    };
    ensure_eq!(pm.content.content.content_type(), content_type, "{what}: content type");
    note(stats, &format!("public message sender type {}", pm.content.sender.sender_type()));
    if let Content::Proposal(p) = pm.content.content {
        note(stats, &format!("public message proposal type {}", p.proposal_type()));
    }
    let mut buf = vec![0u8; bytes.len()];
    ensure_bytes!(
        pm.content.encode_to(&mut buf).with_ctx(|| format!("{what}: encode FramedContent"))?,
        pm.content_bytes(),
        "{what}: FramedContent bytes"
    );
    ensure_eq!(pm.auth.confirmation_tag.is_some(), content_type == ContentType::Commit, "{what}: confirmation tag");
    if let Content::Commit(c) = pm.content.content {
        commit(&c, what, stats)?;
    }
    Ok(())
}

/// Notes the proposals and path of a Commit.
fn commit(c: &Commit, what: &str, stats: &mut Stats) -> Result<(), String> {
    ensure_eq!(c.proposals.iter().count(), c.proposals.len(), "{what}: proposals");
    for p in c.proposals.iter() {
        match p {
            ProposalOrRef::Proposal(p) => note(stats, &format!("commit proposal by value, type {}", p.proposal_type())),
            ProposalOrRef::Reference(_) => note(stats, "commit proposal by reference"),
        }
    }
    match c.path {
        Some(path) => {
            note(stats, "commit with path");
            for node in path.nodes.iter() {
                ensure_eq!(
                    node.encrypted_path_secret.iter().count(),
                    node.encrypted_path_secret.len(),
                    "{what}: encrypted path secrets"
                );
            }
        }
        None => note(stats, "commit without path"),
    }
    Ok(())
}

fn check_field(field: &str, bytes: &[u8], what: &str, stats: &mut Stats) -> Result<(), String> {
    match field {
        "mls_welcome" => {
            let m = mls_message(bytes, WIRE_FORMAT_WELCOME, what)?;
            let MlsMessageBody::Welcome(w) = m.body else { return Err(format!("{what}: not a Welcome")) };
            ensure_eq!(w.secrets.iter().count(), w.secrets.len(), "{what}: secrets");
        }
        "mls_group_info" => {
            let m = mls_message(bytes, WIRE_FORMAT_GROUP_INFO, what)?;
            let MlsMessageBody::GroupInfo(gi) = m.body else { return Err(format!("{what}: not a GroupInfo")) };
            note(stats, &format!("group info of suite {}", gi.tbs.group_context.cipher_suite));
            let mut buf = vec![0u8; bytes.len()];
            ensure_bytes!(
                gi.tbs.encode_to(&mut buf).with_ctx(|| format!("{what}: encode GroupInfoTBS"))?,
                gi.tbs_bytes(),
                "{what}: GroupInfoTBS bytes"
            );
            // Suites 1 and 3 also give the checked GroupContext, which encodes alike.
            if let Some(gc) = gi.tbs.group_context.to_group_context() {
                let mut a = vec![0u8; bytes.len()];
                let mut b = vec![0u8; bytes.len()];
                ensure_bytes!(
                    gc.encode_to(&mut a).with_ctx(|| format!("{what}: encode GroupContext"))?,
                    gi.tbs.group_context.encode_to(&mut b).with_ctx(|| format!("{what}: encode wire GroupContext"))?,
                    "{what}: GroupContext"
                );
            }
        }
        "mls_key_package" => {
            mls_message(bytes, WIRE_FORMAT_KEY_PACKAGE, what)?;
        }
        "ratchet_tree" => {
            let t: RatchetTreeView = roundtrip(bytes, what)?;
            ensure_eq!(t.iter().count() as u32, t.len(), "{what}: nodes");
        }
        "group_secrets" => {
            let g: GroupSecrets = roundtrip(bytes, what)?;
            ensure_eq!(g.psks.iter().count(), g.psks.len(), "{what}: psks");
        }
        "add_proposal" => {
            roundtrip::<Add>(bytes, what)?;
        }
        "update_proposal" => {
            roundtrip::<Update>(bytes, what)?;
        }
        "remove_proposal" => {
            roundtrip::<Remove>(bytes, what)?;
        }
        "pre_shared_key_proposal" => {
            roundtrip::<PreSharedKey>(bytes, what)?;
        }
        "re_init_proposal" => {
            roundtrip::<ReInit>(bytes, what)?;
        }
        "external_init_proposal" => {
            roundtrip::<ExternalInit>(bytes, what)?;
        }
        "group_context_extensions_proposal" => {
            roundtrip::<GroupContextExtensions>(bytes, what)?;
        }
        "commit" => {
            let c: Commit = roundtrip(bytes, what)?;
            commit(&c, what, stats)?;
        }
        "public_message_application" => public_message(bytes, ContentType::Application, what, stats)?,
        "public_message_proposal" => public_message(bytes, ContentType::Proposal, what, stats)?,
        "public_message_commit" => public_message(bytes, ContentType::Commit, what, stats)?,
        "private_message" => {
            let m = mls_message(bytes, WIRE_FORMAT_PRIVATE_MESSAGE, what)?;
            if !matches!(m.body, MlsMessageBody::PrivateMessage(_)) {
                return Err(format!("{what}: not a PrivateMessage"));
            }
        }
        other => return Err(format!("unexpected field {other}")),
    }
    Ok(())
}

/// Checks one case: it has exactly the fields of [`FIELDS`], and each
/// decodes and re-encodes identically.
pub fn check_case(case: &Value) -> CaseResult {
    let obj = case.as_object().ctx("case is an object")?;
    // Every field of the case is known, and every known field is present.
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut expected = FIELDS.to_vec();
    expected.sort_unstable();
    ensure_eq!(keys, expected, "fields");
    let mut stats = Stats::default();
    for field in FIELDS {
        let bytes = hex_field(case, field)?;
        check_field(field, &bytes, field, &mut stats)?;
        stats.add(&field_counter(field), 1);
        stats.add("bytes", bytes.len());
    }
    Ok(CaseOutcome::Ran(stats))
}
