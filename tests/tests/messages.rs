//! messages.json: every message structure of RFC 9420 (§6, §7.6, §10,
//! §12.1, §12.4) decodes and re-encodes byte for byte. The vectors mix
//! suites 1, 2 and 3 (no suite field): decoding is suite-independent.
use std::collections::BTreeMap;

use mls_nostd::codec::{Decode, Encode};
use mls_nostd::messages::{
    Add, Commit, Content, ContentType, ExternalInit, GroupContextExtensions, GroupSecrets, MlsMessage, MlsMessageBody,
    PreSharedKey, ProposalOrRef, ReInit, Remove, Update, WIRE_FORMAT_GROUP_INFO, WIRE_FORMAT_KEY_PACKAGE,
    WIRE_FORMAT_PRIVATE_MESSAGE, WIRE_FORMAT_PUBLIC_MESSAGE, WIRE_FORMAT_WELCOME,
};
use mls_nostd::ratchet_tree::node::RatchetTreeView;
use mls_tests::{hex, load};

/// Every field of a messages.json case.
const FIELDS: [&str; 17] = [
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

/// Decodes all of `bytes` as a `T`, re-encodes it from its fields and checks
/// that the same bytes come out.
fn roundtrip<'a, T: Decode<'a> + Encode>(bytes: &'a [u8], what: &str) -> T {
    let v = T::decode_exact(bytes).unwrap_or_else(|e| panic!("{what}: decode failed: {e}"));
    let n = v.encoded_len().unwrap_or_else(|e| panic!("{what}: encoded_len failed: {e}"));
    assert_eq!(n, bytes.len(), "{what}: encoded length");
    let mut buf = vec![0u8; n];
    let out = v.encode_to(&mut buf).unwrap_or_else(|e| panic!("{what}: encode failed: {e}"));
    assert_eq!(out, bytes, "{what}: re-encoding differs");
    v
}

/// An MLSMessage of the expected wire format.
fn mls_message<'a>(bytes: &'a [u8], wire_format: u16, what: &str) -> MlsMessage<'a> {
    let m: MlsMessage = roundtrip(bytes, what);
    assert_eq!(m.wire_format(), wire_format, "{what}: wire format");
    m
}

/// A PublicMessage whose content is of `content_type`; its kept FramedContent
/// bytes are the FramedContent re-encoded.
fn public_message(bytes: &[u8], content_type: ContentType, what: &str, detail: &mut Detail) {
    let m = mls_message(bytes, WIRE_FORMAT_PUBLIC_MESSAGE, what);
    let MlsMessageBody::PublicMessage(pm) = m.body else { unreachable!() };
    assert_eq!(pm.content.content.content_type(), content_type, "{what}: content type");
    detail.note(format!("public message sender type {}", pm.content.sender.sender_type()));
    if let Content::Proposal(p) = pm.content.content {
        detail.note(format!("public message proposal type {}", p.proposal_type()));
    }
    let mut buf = vec![0u8; bytes.len()];
    assert_eq!(pm.content.encode_to(&mut buf).unwrap(), pm.content_bytes(), "{what}: FramedContent bytes");
    assert_eq!(pm.auth.confirmation_tag.is_some(), content_type == ContentType::Commit, "{what}: confirmation tag");
    if let Content::Commit(c) = pm.content.content {
        detail.commit(&c);
    }
}

/// What the vectors exercise, beyond the per-field counts.
#[derive(Default)]
struct Detail(BTreeMap<String, usize>);

impl Detail {
    fn note(&mut self, what: String) {
        *self.0.entry(what).or_default() += 1;
    }

    fn commit(&mut self, c: &Commit) {
        assert_eq!(c.proposals.iter().count(), c.proposals.len());
        for p in c.proposals.iter() {
            self.note(match p {
                ProposalOrRef::Proposal(p) => format!("commit proposal by value, type {}", p.proposal_type()),
                ProposalOrRef::Reference(_) => "commit proposal by reference".to_string(),
            });
        }
        match c.path {
            Some(path) => {
                self.note("commit with path".to_string());
                for node in path.nodes.iter() {
                    assert_eq!(node.encrypted_path_secret.iter().count(), node.encrypted_path_secret.len());
                }
            }
            None => self.note("commit without path".to_string()),
        }
    }
}

fn check_field(field: &str, bytes: &[u8], what: &str, detail: &mut Detail) {
    match field {
        "mls_welcome" => {
            let m = mls_message(bytes, WIRE_FORMAT_WELCOME, what);
            let MlsMessageBody::Welcome(w) = m.body else { unreachable!() };
            assert_eq!(w.secrets.iter().count(), w.secrets.len());
        }
        "mls_group_info" => {
            let m = mls_message(bytes, WIRE_FORMAT_GROUP_INFO, what);
            let MlsMessageBody::GroupInfo(gi) = m.body else { unreachable!() };
            detail.note(format!("group info of suite {}", gi.tbs.group_context.cipher_suite));
            let mut buf = vec![0u8; bytes.len()];
            assert_eq!(gi.tbs.encode_to(&mut buf).unwrap(), gi.tbs_bytes(), "{what}: GroupInfoTBS bytes");
            // Suites 1 and 3 also give the checked GroupContext, which encodes alike.
            if let Some(gc) = gi.tbs.group_context.to_group_context() {
                let mut a = vec![0u8; bytes.len()];
                let mut b = vec![0u8; bytes.len()];
                assert_eq!(gc.encode_to(&mut a).unwrap(), gi.tbs.group_context.encode_to(&mut b).unwrap());
            }
        }
        "mls_key_package" => {
            mls_message(bytes, WIRE_FORMAT_KEY_PACKAGE, what);
        }
        "ratchet_tree" => {
            let t: RatchetTreeView = roundtrip(bytes, what);
            assert_eq!(t.iter().count() as u32, t.len());
        }
        "group_secrets" => {
            let g: GroupSecrets = roundtrip(bytes, what);
            assert_eq!(g.psks.iter().count(), g.psks.len());
        }
        "add_proposal" => {
            roundtrip::<Add>(bytes, what);
        }
        "update_proposal" => {
            roundtrip::<Update>(bytes, what);
        }
        "remove_proposal" => {
            roundtrip::<Remove>(bytes, what);
        }
        "pre_shared_key_proposal" => {
            roundtrip::<PreSharedKey>(bytes, what);
        }
        "re_init_proposal" => {
            roundtrip::<ReInit>(bytes, what);
        }
        "external_init_proposal" => {
            roundtrip::<ExternalInit>(bytes, what);
        }
        "group_context_extensions_proposal" => {
            roundtrip::<GroupContextExtensions>(bytes, what);
        }
        "commit" => {
            let c: Commit = roundtrip(bytes, what);
            detail.commit(&c);
        }
        "public_message_application" => public_message(bytes, ContentType::Application, what, detail),
        "public_message_proposal" => public_message(bytes, ContentType::Proposal, what, detail),
        "public_message_commit" => public_message(bytes, ContentType::Commit, what, detail),
        "private_message" => {
            let m = mls_message(bytes, WIRE_FORMAT_PRIVATE_MESSAGE, what);
            assert!(matches!(m.body, MlsMessageBody::PrivateMessage(_)));
        }
        other => panic!("unexpected field {other}"),
    }
}

#[test]
fn messages_roundtrip() {
    let cases = load("messages.json");
    assert_eq!(cases.len(), 300, "messages.json: number of cases");
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut bytes_total = 0usize;
    let mut detail = Detail::default();
    for (i, case) in cases.iter().enumerate() {
        let obj = case.as_object().expect("case is an object");
        // Every field of the case is known, and every known field is present.
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut expected = FIELDS.to_vec();
        expected.sort_unstable();
        assert_eq!(keys, expected, "case {i}: fields");
        for field in FIELDS {
            let bytes = hex(&case[field]);
            check_field(field, &bytes, &format!("case {i} {field}"), &mut detail);
            *counts.entry(field).or_default() += 1;
            bytes_total += bytes.len();
        }
    }
    for field in FIELDS {
        println!("messages.json: {field}: {} decoded and re-encoded", counts[field]);
    }
    for (what, n) in &detail.0 {
        println!("messages.json:   {what}: {n}");
    }
    let total: usize = counts.values().sum();
    println!("messages.json: {} cases, {total} objects, {bytes_total} bytes", cases.len());
    assert_eq!(counts.len(), FIELDS.len());
    assert!(counts.values().all(|&n| n == cases.len()), "every (case, field) pair checked");
    assert_eq!(total, 300 * FIELDS.len());
}
