//! Bad input for the message decoders (RFC 9420 §6, §7.6, §12): strict
//! prefixes, trailing bytes, bad enum values and `optional` flags, taken from
//! objects of the official messages.json vectors (one case per cipher suite);
//! structures the vectors do not exercise (proposals by value, non-member
//! senders), built and read back; and mutated or random input never panics.
use std::collections::BTreeMap;
use std::sync::OnceLock;

use mls_nostd::codec::{CodecError, Decode, Encode, Writer};
use mls_nostd::crypto::CipherSuite;
use mls_nostd::messages::{
    Add, Commit, Content, ContentType, ExternalInit, FramedContent, FramedContentAuthData, GroupContextExtensions,
    GroupSecrets, ListView, MlsMessage, MlsMessageBody, PreSharedKey, Proposal, ProposalOrRef, PublicMessage, ReInit,
    Remove, Sender, Update, WireGroupContext,
};
use mls_nostd::ratchet_tree::node::RatchetTreeView;
use proptest::prelude::*;

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

/// The cases used: the vectors hold suites 1, 3 and 2 in blocks of 100.
const CASES: [usize; 3] = [0, 100, 200];

type Case = BTreeMap<&'static str, Vec<u8>>;

fn cases() -> &'static [Case] {
    static CASES_LOADED: OnceLock<Vec<Case>> = OnceLock::new();
    CASES_LOADED.get_or_init(|| {
        // `$MLS_TEST_VECTORS`, else the repository's copy (tests/data/test-vectors).
        let dir = std::env::var_os("MLS_TEST_VECTORS").map_or_else(
            || std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/test-vectors")),
            std::path::PathBuf::from,
        );
        let path = dir.join("messages.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let all: serde_json::Value = serde_json::from_str(&text).unwrap();
        CASES
            .iter()
            .map(|&i| FIELDS.iter().map(|&f| (f, hex::decode(all[i][f].as_str().unwrap()).unwrap())).collect())
            .collect()
    })
}

fn encode<T: Encode>(v: &T) -> Result<Vec<u8>, CodecError> {
    let mut buf = vec![0u8; v.encoded_len()?];
    v.encode_to(&mut buf)?;
    Ok(buf)
}

fn reencode_as<'a, T: Decode<'a> + Encode>(bytes: &'a [u8]) -> Result<Vec<u8>, CodecError> {
    encode(&T::decode_exact(bytes)?)
}

/// Decodes `bytes` as the structure of `field` and re-encodes it.
fn reencode(field: &str, bytes: &[u8]) -> Result<Vec<u8>, CodecError> {
    match field {
        "ratchet_tree" => reencode_as::<RatchetTreeView>(bytes),
        "group_secrets" => reencode_as::<GroupSecrets>(bytes),
        "add_proposal" => reencode_as::<Add>(bytes),
        "update_proposal" => reencode_as::<Update>(bytes),
        "remove_proposal" => reencode_as::<Remove>(bytes),
        "pre_shared_key_proposal" => reencode_as::<PreSharedKey>(bytes),
        "re_init_proposal" => reencode_as::<ReInit>(bytes),
        "external_init_proposal" => reencode_as::<ExternalInit>(bytes),
        "group_context_extensions_proposal" => reencode_as::<GroupContextExtensions>(bytes),
        "commit" => reencode_as::<Commit>(bytes),
        _ => reencode_as::<MlsMessage>(bytes),
    }
}

/// Length of the minimal varint prefix of a vector of `n` bytes.
fn vl(n: usize) -> usize {
    match n {
        0..64 => 1,
        64..16384 => 2,
        _ => 4,
    }
}

fn with_byte(bytes: &[u8], at: usize, v: u8) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[at] = v;
    b
}

fn with_u16(bytes: &[u8], at: usize, v: u16) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
    b
}

fn public_message(bytes: &[u8]) -> PublicMessage<'_> {
    match MlsMessage::decode_exact(bytes).unwrap().body {
        MlsMessageBody::PublicMessage(pm) => pm,
        other => panic!("not a public message: {other:?}"),
    }
}

/// Offset of the sender type in an MLSMessage holding a PublicMessage.
fn sender_offset(pm: &PublicMessage) -> usize {
    4 + vl(pm.content.group_id.len()) + pm.content.group_id.len() + 8
}

/// Offset of the content type in an MLSMessage holding a PublicMessage.
fn content_type_offset(pm: &PublicMessage) -> usize {
    let sender_len = match pm.content.sender {
        Sender::Member(_) | Sender::External(_) => 5,
        Sender::NewMemberProposal | Sender::NewMemberCommit => 1,
    };
    let ad = pm.content.authenticated_data.len();
    sender_offset(pm) + sender_len + vl(ad) + ad
}

#[test]
fn vectors_decode_in_every_suite() {
    let suites: Vec<u16> = cases()
        .iter()
        .map(|c| match MlsMessage::decode_exact(&c["mls_group_info"]).unwrap().body {
            MlsMessageBody::GroupInfo(gi) => gi.tbs.group_context.cipher_suite,
            _ => panic!("not a GroupInfo"),
        })
        .collect();
    assert_eq!(suites, [1, 3, 2]);
    for case in cases() {
        for field in FIELDS {
            assert_eq!(reencode(field, &case[field]).as_deref(), Ok(&case[field][..]), "{field}");
        }
    }
}

#[test]
fn strict_prefixes_truncated_and_extra_byte_trailing() {
    let mut checked = 0;
    for case in cases() {
        for field in FIELDS {
            let valid = &case[field];
            for n in 0..valid.len() {
                assert_eq!(reencode(field, &valid[..n]), Err(CodecError::Truncated), "{field}: prefix of {n} bytes");
                checked += 1;
            }
            for extra in [0u8, 1, 0xff] {
                let mut long = valid.clone();
                long.push(extra);
                assert_eq!(reencode(field, &long), Err(CodecError::TrailingBytes), "{field}: one byte more");
            }
        }
    }
    println!("{checked} strict prefixes rejected");
}

#[test]
fn bad_version_and_wire_format() {
    for case in cases() {
        for field in ["mls_welcome", "mls_group_info", "mls_key_package", "public_message_commit", "private_message"] {
            let m = &case[field];
            for version in [0u16, 2, 0xffff] {
                assert_eq!(MlsMessage::decode_exact(&with_u16(m, 0, version)), Err(CodecError::InvalidValue));
            }
            for wire_format in [0u16, 6, 0x00ff, 0xf000, 0xffff] {
                assert_eq!(
                    MlsMessage::decode_exact(&with_u16(m, 2, wire_format)),
                    Err(CodecError::InvalidValue),
                    "{field}: wire format {wire_format}"
                );
            }
        }
    }
}

#[test]
fn bad_sender_content_and_proposal_types() {
    for case in cases() {
        for field in ["public_message_application", "public_message_proposal", "public_message_commit"] {
            let m = &case[field];
            let pm = public_message(m);
            for sender_type in [0u8, 5, 0xff] {
                assert_eq!(
                    MlsMessage::decode_exact(&with_byte(m, sender_offset(&pm), sender_type)),
                    Err(CodecError::InvalidValue),
                    "{field}: sender type {sender_type}"
                );
            }
            for content_type in [0u8, 4, 0xff] {
                assert_eq!(
                    MlsMessage::decode_exact(&with_byte(m, content_type_offset(&pm), content_type)),
                    Err(CodecError::InvalidValue),
                    "{field}: content type {content_type}"
                );
            }
        }
        let m = &case["public_message_proposal"];
        let at = content_type_offset(&public_message(m)) + 1;
        for proposal_type in [0u16, 8, 0x0a0a, 0xffff] {
            assert_eq!(
                MlsMessage::decode_exact(&with_u16(m, at, proposal_type)),
                Err(CodecError::InvalidValue),
                "proposal type {proposal_type}"
            );
        }

        // PrivateMessage: content type after group_id and epoch.
        let m = &case["private_message"];
        let MlsMessageBody::PrivateMessage(prm) = MlsMessage::decode_exact(m).unwrap().body else { panic!() };
        let at = 4 + vl(prm.group_id.len()) + prm.group_id.len() + 8;
        assert_eq!(m[at], prm.content_type.to_u8());
        for content_type in [0u8, 4, 0xff] {
            assert_eq!(MlsMessage::decode_exact(&with_byte(m, at, content_type)), Err(CodecError::InvalidValue));
        }
    }
}

#[test]
fn bad_proposal_or_ref_type_and_optional_flags() {
    for case in cases() {
        let c = &case["commit"];
        let commit = Commit::decode_exact(c).unwrap();
        assert!(!commit.proposals.is_empty() && commit.path.is_some());
        let body = commit.proposals.body().len();
        let first = vl(body);
        for t in [0u8, 3, 0xff] {
            assert_eq!(Commit::decode_exact(&with_byte(c, first, t)), Err(CodecError::InvalidValue));
        }
        let flag = vl(body) + body;
        assert_eq!(c[flag], 1);
        assert_eq!(Commit::decode_exact(&with_byte(c, flag, 2)), Err(CodecError::InvalidValue));
        // `path` absent: the UpdatePath's bytes become trailing.
        assert_eq!(Commit::decode_exact(&with_byte(c, flag, 0)), Err(CodecError::TrailingBytes));
        // The same proposals without the path: a valid Commit.
        let mut no_path = c[..=flag].to_vec();
        no_path[flag] = 0;
        let without = Commit::decode_exact(&no_path).unwrap();
        assert_eq!((without.proposals, without.path), (commit.proposals, None));
        assert_eq!(encode(&without).unwrap(), no_path);

        let g = &case["group_secrets"];
        let secrets = GroupSecrets::decode_exact(g).unwrap();
        let flag = vl(secrets.joiner_secret.len()) + secrets.joiner_secret.len();
        assert_eq!(g[flag], u8::from(secrets.path_secret.is_some()));
        for f in [2u8, 0xff] {
            assert_eq!(GroupSecrets::decode_exact(&with_byte(g, flag, f)), Err(CodecError::InvalidValue));
        }
    }
}

#[test]
fn group_context_of_any_suite() {
    for case in cases() {
        let MlsMessageBody::GroupInfo(gi) = MlsMessage::decode_exact(&case["mls_group_info"]).unwrap().body else {
            panic!()
        };
        let wire = gi.tbs.group_context;
        match CipherSuite::from_u16(wire.cipher_suite) {
            Some(suite) => {
                let gc = wire.to_group_context().unwrap();
                assert_eq!(gc.cipher_suite, suite);
                assert_eq!(WireGroupContext::from_group_context(&gc), Ok(wire));
            }
            None => assert_eq!(wire.to_group_context(), None),
        }
        let mut other_version = wire;
        other_version.version = 2;
        assert_eq!(other_version.to_group_context(), None);
    }
}

/// Proposals by value of every type, and by reference, in one Commit without
/// a path (the vectors only send commits with a path and references).
#[test]
fn commit_with_every_proposal_by_value() {
    let case = &cases()[0];
    let proposals = [
        Proposal::Add(Add::decode_exact(&case["add_proposal"]).unwrap()),
        Proposal::Update(Update::decode_exact(&case["update_proposal"]).unwrap()),
        Proposal::Remove(Remove::decode_exact(&case["remove_proposal"]).unwrap()),
        Proposal::PreSharedKey(PreSharedKey::decode_exact(&case["pre_shared_key_proposal"]).unwrap()),
        Proposal::ReInit(ReInit::decode_exact(&case["re_init_proposal"]).unwrap()),
        Proposal::ExternalInit(ExternalInit::decode_exact(&case["external_init_proposal"]).unwrap()),
        Proposal::GroupContextExtensions(
            GroupContextExtensions::decode_exact(&case["group_context_extensions_proposal"]).unwrap(),
        ),
    ];
    for (p, t) in proposals.iter().zip(1u16..) {
        assert_eq!(p.proposal_type(), t);
        let bytes = encode(p).unwrap();
        assert_eq!(&bytes[..2], &t.to_be_bytes());
        assert_eq!(Proposal::decode_exact(&bytes), Ok(*p));
    }
    let reference = [0x5a; 32];
    let mut list: Vec<ProposalOrRef> = proposals.iter().copied().map(ProposalOrRef::Proposal).collect();
    list.push(ProposalOrRef::Reference(&reference));
    let body: Vec<u8> = list.iter().flat_map(|p| encode(p).unwrap()).collect();
    let commit = Commit { proposals: ListView::from_body(&body).unwrap(), path: None };
    assert_eq!(commit.proposals.len(), 8);
    assert!(commit.proposals.iter().eq(list.iter().copied()));

    let bytes = encode(&commit).unwrap();
    let back = Commit::decode_exact(&bytes).unwrap();
    assert_eq!(back, commit);
    assert!(back.proposals.iter().eq(list.iter().copied()));
    assert_eq!(encode(&back).unwrap(), bytes);
    for n in 0..bytes.len() {
        assert_eq!(Commit::decode_exact(&bytes[..n]), Err(CodecError::Truncated));
    }
    // A list whose last element is cut does not make a view.
    assert_eq!(ListView::<ProposalOrRef>::from_body(&body[..body.len() - 1]), Err(CodecError::Truncated));
}

fn write_public_message(content: &FramedContent, auth: &FramedContentAuthData, tag: Option<&[u8]>) -> Vec<u8> {
    let mut buf = vec![0u8; 8192];
    let n = {
        let mut w = Writer::new(&mut buf);
        content.encode(&mut w).unwrap();
        auth.encode(&mut w).unwrap();
        if let Some(tag) = tag {
            w.write_opaque(tag).unwrap();
        }
        w.len()
    };
    buf.truncate(n);
    buf
}

/// Non-member senders carry no membership tag (the vectors only have members).
#[test]
fn public_message_senders() {
    let case = &cases()[0];
    for field in ["public_message_application", "public_message_proposal", "public_message_commit"] {
        let pm = public_message(&case[field]);
        let tag = pm.membership_tag.unwrap();
        for sender in [Sender::Member(7), Sender::External(2), Sender::NewMemberProposal, Sender::NewMemberCommit] {
            let content = FramedContent { sender, ..pm.content };
            let is_member = matches!(sender, Sender::Member(_));
            let bytes = write_public_message(&content, &pm.auth, is_member.then_some(tag));
            let back = PublicMessage::decode_exact(&bytes).unwrap();
            assert_eq!(back.content, content);
            assert_eq!(back.auth, pm.auth);
            assert_eq!(back.membership_tag, is_member.then_some(tag));
            assert_eq!(back.content_bytes(), &encode(&content).unwrap()[..]);
            assert_eq!(encode(&back).unwrap(), bytes);
            // A member's message without its tag is truncated; a non-member's
            // with a tag has trailing bytes.
            let flipped = write_public_message(&content, &pm.auth, (!is_member).then_some(tag));
            let expected = if is_member { CodecError::Truncated } else { CodecError::TrailingBytes };
            assert_eq!(PublicMessage::decode_exact(&flipped), Err(expected));
        }

        // Encoding refuses a message that would not read back.
        let mut bad = pm;
        bad.membership_tag = None;
        assert_eq!(encode(&bad), Err(CodecError::InvalidValue));
        let mut bad = pm;
        bad.auth.confirmation_tag = match pm.auth.confirmation_tag {
            Some(_) => None,
            None => Some(&[1, 2, 3]),
        };
        assert_eq!(encode(&bad), Err(CodecError::InvalidValue));
    }
}

/// The content of a PrivateMessageContent (§6.3.1) has no type byte.
#[test]
fn content_body_without_type() {
    let case = &cases()[0];
    for (field, t) in [
        ("public_message_application", ContentType::Application),
        ("public_message_proposal", ContentType::Proposal),
        ("public_message_commit", ContentType::Commit),
    ] {
        let content = public_message(&case[field]).content.content;
        let with_type = encode(&content).unwrap();
        assert_eq!(with_type[0], t.to_u8());
        let mut buf = vec![0u8; with_type.len()];
        let n = {
            let mut w = Writer::new(&mut buf);
            content.encode_body(&mut w).unwrap();
            w.len()
        };
        assert_eq!(&buf[..n], &with_type[1..]);
        let mut r = mls_nostd::codec::Reader::new(&with_type[1..]);
        assert_eq!(Content::decode_body(&mut r, t), Ok(content));
        assert!(r.is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    /// One byte of a vector object changed and the object perhaps cut: a value
    /// or an error, never a panic; and what decodes re-encodes to its input.
    #[test]
    fn mutated_vectors(case in 0usize..3, field in 0usize..17, pos in any::<usize>(), val in any::<u8>(), cut in 0usize..4) {
        let mut b = cases()[case][FIELDS[field]].clone();
        let p = pos % b.len();
        b[p] = val;
        let keep = b.len().saturating_sub(cut * (pos % 7));
        b.truncate(keep);
        if let Ok(out) = reencode(FIELDS[field], &b) {
            prop_assert_eq!(out, b.clone());
        }
        if let Ok(out) = reencode_as::<MlsMessage>(&b) {
            prop_assert_eq!(out, b);
        }
    }

    /// Random bytes, bare or behind a valid MLSMessage header.
    #[test]
    fn random_bytes_never_panic(wire_format in 0u16..7, bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(out) = reencode_as::<MlsMessage>(&bytes) {
            prop_assert_eq!(out, bytes.clone());
        }
        let mut framed = vec![0, 1];
        framed.extend_from_slice(&wire_format.to_be_bytes());
        framed.extend_from_slice(&bytes);
        if let Ok(out) = reencode_as::<MlsMessage>(&framed) {
            prop_assert_eq!(out, framed);
        }
        for field in FIELDS {
            if let Ok(out) = reencode(field, &bytes) {
                prop_assert_eq!(out, bytes.clone());
            }
        }
    }
}
