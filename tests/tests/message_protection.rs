//! message-protection.json: every case of suites 1 and 3 (RFC 9420 §6.1–§6.3),
//! with every verification step of FORMAT.md "Message Protection": the given
//! PublicMessages and PrivateMessages unprotect to the raw proposal, commit
//! and application data; what we protect ourselves unprotects again; an
//! application message cannot be a PublicMessage.
use mls_nostd::codec::{Decode, Encode};
use mls_nostd::crypto::signature::{SignaturePrivateKey, SignaturePublicKey};
use mls_nostd::crypto::{CipherSuite, Secret};
use mls_nostd::group_context::GroupContext;
use mls_nostd::messages::{
    AuthenticatedContent, Commit, Content, ContentType, EncodedGroupContext, FramedContent, MlsMessage, MlsMessageBody,
    PrivateMessageKeys, Proposal, ProtectionError, Sender, private_message, public_message,
};
use mls_nostd::secret_tree::{SecretTree, SecretTreeConfig};
use mls_nostd::tree_math::LeafIndex;
use mls_tests::{Tally, TestRng, hex, load, supported_cases, uint};
use serde_json::Value;

/// The sender of every message in the vectors.
const SENDER: u32 = 1;

/// Secret tree of the 2-member group of the vectors.
type Tree = SecretTree<2, 8>;

#[derive(Default)]
struct Counts {
    public_given: usize,
    public_protected: usize,
    public_identical: usize,
    application_public_refused: usize,
    private_given: usize,
    private_protected: usize,
}

/// The fixed inputs of one case.
struct Case {
    suite: CipherSuite,
    context: Vec<u8>,
    sk: SignaturePrivateKey,
    pk: SignaturePublicKey,
    encryption_secret: Secret,
    sender_data_secret: Secret,
    membership_key: Secret,
}

impl Case {
    fn new(suite: CipherSuite, case: &Value) -> Self {
        let group_id = hex(&case["group_id"]);
        let tree_hash = hex(&case["tree_hash"]);
        let cth = hex(&case["confirmed_transcript_hash"]);
        let gc = GroupContext {
            cipher_suite: suite,
            group_id: &group_id,
            epoch: uint(&case["epoch"]),
            tree_hash: &tree_hash,
            confirmed_transcript_hash: &cth,
            extensions: &[],
        };
        let mut context = vec![0u8; gc.encoded_len().unwrap()];
        gc.encode_to(&mut context).unwrap();
        let sk = SignaturePrivateKey::from_slice(&hex(&case["signature_priv"])).unwrap();
        let pk = SignaturePublicKey::from_slice(&hex(&case["signature_pub"])).unwrap();
        assert_eq!(sk.public_key(), pk, "signature key pair");
        let secret = |name: &str| Secret::from_slice(&hex(&case[name])).unwrap();
        Self {
            suite,
            context,
            sk,
            pk,
            encryption_secret: secret("encryption_secret"),
            sender_data_secret: secret("sender_data_secret"),
            membership_key: secret("membership_key"),
        }
    }

    fn context(&self) -> EncodedGroupContext<'_> {
        EncodedGroupContext::decode(&self.context).unwrap()
    }

    /// A fresh secret tree for the 2 members (one per role and message).
    fn tree(&self) -> Tree {
        Tree::new(self.suite, 2, &self.encryption_secret, SecretTreeConfig::default()).unwrap()
    }

    /// The signature key of `leaf`: only the sender is known.
    fn sender_key(&self, leaf: LeafIndex) -> Option<SignaturePublicKey> {
        (leaf == LeafIndex(SENDER)).then_some(self.pk)
    }
}

/// The encoding of the `select` part of `content` (the raw value of the vectors).
fn body(content: &Content<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; 1 << 16];
    let mut w = mls_nostd::codec::Writer::new(&mut buf);
    match content {
        Content::Application(data) => return data.to_vec(),
        Content::Proposal(p) => p.encode(&mut w).unwrap(),
        Content::Commit(c) => c.encode(&mut w).unwrap(),
    }
    w.written().to_vec()
}

/// Checks an unprotected content: from the sender, of the group and epoch,
/// carrying `raw`.
fn check_content(ac: &AuthenticatedContent<'_>, case: &Case, raw: &[u8], content_type: ContentType, what: &str) {
    let gc = case.context();
    assert_eq!(ac.content.sender, Sender::Member(SENDER), "{what}: sender");
    assert_eq!(ac.content.group_id, gc.context().group_id, "{what}: group id");
    assert_eq!(ac.content.epoch, gc.context().epoch, "{what}: epoch");
    assert_eq!(ac.content.content.content_type(), content_type, "{what}: content type");
    assert_eq!(body(&ac.content.content), raw, "{what}: raw content");
    assert_eq!(ac.auth.confirmation_tag.is_some(), content_type == ContentType::Commit, "{what}: confirmation tag");
    // The kept FramedContent bytes are its encoding.
    let mut buf = vec![0u8; ac.content_bytes().len()];
    assert_eq!(ac.content.encode_to(&mut buf).unwrap(), ac.content_bytes(), "{what}: content bytes");
    // AuthenticatedContent round trip.
    let mut buf = vec![0u8; ac.encoded_len().unwrap()];
    let enc = ac.encode_to(&mut buf).unwrap();
    assert_eq!(AuthenticatedContent::decode_exact(enc).unwrap(), *ac, "{what}: AuthenticatedContent");
}

fn unprotect_public<'a>(case: &Case, message: &'a [u8]) -> Result<AuthenticatedContent<'a>, ProtectionError> {
    public_message::unprotect(&case.context(), &case.membership_key, message, &mut |_| Some(case.pk))
}

fn unprotect_private<'a>(
    case: &Case,
    tree: &mut Tree,
    message: &'a mut [u8],
) -> Result<AuthenticatedContent<'a>, ProtectionError> {
    let mut keys = PrivateMessageKeys { secret_tree: tree, sender_data_secret: &case.sender_data_secret };
    private_message::unprotect(&case.context(), &mut keys, message, &mut |leaf| case.sender_key(leaf))
}

/// The authenticated data and confirmation tag of a given message, to
/// protect the same content again.
fn given_fields(message: &[u8], case: &Case) -> (Vec<u8>, Option<Vec<u8>>) {
    match MlsMessage::decode_exact(message).unwrap().body {
        MlsMessageBody::PublicMessage(pm) => {
            (pm.content.authenticated_data.to_vec(), pm.auth.confirmation_tag.map(<[u8]>::to_vec))
        }
        MlsMessageBody::PrivateMessage(pm) => {
            let tag = (pm.content_type == ContentType::Commit).then(|| vec![0xc7; case.suite.hash_len()]);
            (pm.authenticated_data.to_vec(), tag)
        }
        _ => panic!("not a framed message"),
    }
}

fn run_kind(case: &Case, v: &Value, kind: &str, content_type: ContentType, counts: &mut Counts, rng: &mut TestRng) {
    let raw = hex(&v[kind]);
    let content = match content_type {
        ContentType::Application => Content::Application(&raw),
        ContentType::Proposal => Content::Proposal(Proposal::decode_exact(&raw).unwrap()),
        ContentType::Commit => Content::Commit(Commit::decode_exact(&raw).unwrap()),
    };
    let gc = case.context();
    let priv_given = hex(&v[format!("{kind}_priv").as_str()]);

    // PublicMessage: the given one verifies; ours verifies; application refused.
    let (ad, tag) = if content_type == ContentType::Application {
        given_fields(&priv_given, case)
    } else {
        let given = hex(&v[format!("{kind}_pub").as_str()]);
        let ac = unprotect_public(case, &given).unwrap_or_else(|e| panic!("{kind}_pub: {e}"));
        check_content(&ac, case, &raw, content_type, &format!("{kind}_pub"));
        counts.public_given += 1;
        given_fields(&given, case)
    };
    let framed = FramedContent {
        group_id: gc.context().group_id,
        epoch: gc.context().epoch,
        sender: Sender::Member(SENDER),
        authenticated_data: &ad,
        content,
    };
    let mut out = vec![0u8; raw.len() + 512];
    let ours = match content_type {
        ContentType::Application => {
            let r = public_message::protect(&gc, &case.sk, &framed, Some(&case.membership_key), &mut out);
            assert_eq!(r.unwrap_err(), ProtectionError::WrongContentType, "application as PublicMessage");
            counts.application_public_refused += 1;
            None
        }
        ContentType::Proposal => {
            Some(public_message::protect(&gc, &case.sk, &framed, Some(&case.membership_key), &mut out).unwrap())
        }
        ContentType::Commit => {
            let signed = public_message::sign(&gc, &case.sk, &framed, &mut out).unwrap();
            assert_eq!(signed.content_bytes().len(), framed.encoded_len().unwrap());
            Some(signed.finish(tag.as_deref(), Some(&case.membership_key)).unwrap())
        }
    };
    if let Some(ours) = ours {
        let ac = unprotect_public(case, ours).unwrap_or_else(|e| panic!("{kind}: our PublicMessage: {e}"));
        check_content(&ac, case, &raw, content_type, &format!("{kind}: our PublicMessage"));
        counts.public_protected += 1;
        // Ed25519 and HMAC are deterministic: the same content gives the same bytes.
        let given = hex(&v[format!("{kind}_pub").as_str()]);
        assert_eq!(ours, &given[..], "{kind}: our PublicMessage equals the given one");
        counts.public_identical += 1;
    }

    // PrivateMessage: the given one unprotects with a fresh receiver tree.
    let mut rx = case.tree();
    let mut buf = priv_given.clone();
    let ac = unprotect_private(case, &mut rx, &mut buf).unwrap_or_else(|e| panic!("{kind}_priv: {e}"));
    check_content(&ac, case, &raw, content_type, &format!("{kind}_priv"));
    counts.private_given += 1;
    // Its key is consumed: the same message again is a replay.
    let mut again = priv_given.clone();
    assert!(
        matches!(unprotect_private(case, &mut rx, &mut again), Err(ProtectionError::SecretTree(_))),
        "{kind}_priv: replay refused"
    );

    // Ours: a sender tree and a separate receiver tree, several generations
    // and paddings.
    let mut tx = case.tree();
    let mut rx = case.tree();
    for (i, padding) in [0usize, 1, 31, 200].into_iter().enumerate() {
        let mut out = vec![0u8; raw.len() + ad.len() + padding + 512];
        let mut keys = PrivateMessageKeys { secret_tree: &mut tx, sender_data_secret: &case.sender_data_secret };
        let ours = match content_type {
            ContentType::Commit => {
                let signed = private_message::sign(&gc, &case.sk, &framed, padding, &mut out).unwrap();
                assert_eq!(signed.content_bytes().len(), framed.encoded_len().unwrap());
                signed.finish(tag.as_deref(), &mut keys, rng).unwrap()
            }
            _ => private_message::protect(&gc, &mut keys, &case.sk, &framed, padding, rng, &mut out).unwrap(),
        };
        let mut received = ours.to_vec();
        let what = format!("{kind}: our PrivateMessage {i} (padding {padding})");
        let MlsMessageBody::PrivateMessage(pm) = MlsMessage::decode_exact(ours).unwrap().body else {
            panic!("{what}: not a PrivateMessage")
        };
        assert_eq!(pm.content_type, content_type, "{what}: content type");
        let ac = unprotect_private(case, &mut rx, &mut received).unwrap_or_else(|e| panic!("{what}: {e}"));
        check_content(&ac, case, &raw, content_type, &what);
        counts.private_protected += 1;
    }
}

#[test]
fn message_protection_vectors() {
    let cases = load("message-protection.json");
    let mut tally = Tally::default();
    let mut counts = Counts::default();
    let mut rng = TestRng(7);
    for v in &cases {
        let Some(suite) = tally.suite(v) else { continue };
        let case = Case::new(suite, v);
        for (kind, content_type) in [
            ("proposal", ContentType::Proposal),
            ("commit", ContentType::Commit),
            ("application", ContentType::Application),
        ] {
            run_kind(&case, v, kind, content_type, &mut counts, &mut rng);
        }
        tally.ran();
    }
    let c = &counts;
    println!(
        "message-protection.json: given PublicMessages verified {}, ours protected and verified {} \
         (byte-identical to the given {}), application as PublicMessage refused {}; given PrivateMessages \
         unprotected {}, ours protected and unprotected {}",
        c.public_given,
        c.public_protected,
        c.public_identical,
        c.application_public_refused,
        c.private_given,
        c.private_protected
    );
    let n = supported_cases(&cases);
    tally.finish("message-protection.json", n);
    assert_eq!(n, 2);
    assert_eq!(c.public_given, 2 * n);
    assert_eq!(c.public_protected, 2 * n);
    assert_eq!(c.application_public_refused, n);
    assert_eq!(c.private_given, 3 * n);
    assert_eq!(c.private_protected, 3 * 4 * n);
}
