//! message-protection.json (RFC 9420 §6.1–§6.3), with every verification
//! step of FORMAT.md "Message Protection": the given PublicMessages and
//! PrivateMessages unprotect to the raw proposal, commit and application
//! data; what we protect ourselves unprotects again (and our PublicMessages
//! are byte-identical to the given ones); an application message cannot be
//! a PublicMessage; a given PrivateMessage processed twice is a replay.
//!
//! Counters: `public_given`, `public_protected`, `public_identical`,
//! `application_public_refused`, `private_given`, `private_protected`.
use super::{
    CaseOutcome, CaseResult, Context, Stats, ensure, ensure_bytes, ensure_eq, hex_field, secret_field, suite_or_return,
    u64_field,
};
use crate::TestRng;
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
use serde_json::Value;

/// The sender of every message in the vectors.
const SENDER: u32 = 1;

/// Secret tree of the 2-member group of the vectors.
type Tree = SecretTree<2, 8>;

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
    fn new(suite: CipherSuite, case: &Value) -> Result<Self, String> {
        let group_id = hex_field(case, "group_id")?;
        let tree_hash = hex_field(case, "tree_hash")?;
        let cth = hex_field(case, "confirmed_transcript_hash")?;
        let gc = GroupContext {
            cipher_suite: suite,
            group_id: &group_id,
            epoch: u64_field(case, "epoch")?,
            tree_hash: &tree_hash,
            confirmed_transcript_hash: &cth,
            extensions: &[],
        };
        let mut context = vec![0u8; gc.encoded_len().ctx("GroupContext length")?];
        gc.encode_to(&mut context).ctx("encode GroupContext")?;
        EncodedGroupContext::decode(&context).ctx("GroupContext")?;
        let sk = SignaturePrivateKey::from_slice(suite, &hex_field(case, "signature_priv")?).ctx("signature_priv")?;
        let pk = SignaturePublicKey::from_slice(&hex_field(case, "signature_pub")?).ctx("signature_pub")?;
        ensure_eq!(sk.public_key(), pk, "signature key pair");
        Ok(Self {
            suite,
            context,
            sk,
            pk,
            encryption_secret: secret_field(case, "encryption_secret")?,
            sender_data_secret: secret_field(case, "sender_data_secret")?,
            membership_key: secret_field(case, "membership_key")?,
        })
    }

    fn context(&self) -> EncodedGroupContext<'_> {
        // Decoded once in `new`: cannot fail.
        EncodedGroupContext::decode(&self.context).expect("checked in Case::new")
    }

    /// A fresh secret tree for the 2 members (one per role and message).
    fn tree(&self) -> Result<Tree, String> {
        Tree::new(self.suite, 2, &self.encryption_secret, SecretTreeConfig::default()).ctx("secret tree")
    }

    /// The signature key of `leaf`: only the sender is known.
    fn sender_key(&self, leaf: LeafIndex) -> Option<SignaturePublicKey> {
        (leaf == LeafIndex(SENDER)).then_some(self.pk)
    }
}

/// The encoding of the `select` part of `content` (the raw value of the vectors).
fn body(content: &Content<'_>) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; 1 << 16];
    let mut w = mls_nostd::codec::Writer::new(&mut buf);
    match content {
        Content::Application(data) => return Ok(data.to_vec()),
        Content::Proposal(p) => p.encode(&mut w).ctx("encode proposal")?,
        Content::Commit(c) => c.encode(&mut w).ctx("encode commit")?,
    }
    Ok(w.written().to_vec())
}

/// Checks an unprotected content: from the sender, of the group and epoch,
/// carrying `raw`.
fn check_content(
    ac: &AuthenticatedContent<'_>,
    case: &Case,
    raw: &[u8],
    content_type: ContentType,
    what: &str,
) -> Result<(), String> {
    let gc = case.context();
    ensure_eq!(ac.content.sender, Sender::Member(SENDER), "{what}: sender");
    ensure_bytes!(ac.content.group_id, gc.context().group_id, "{what}: group id");
    ensure_eq!(ac.content.epoch, gc.context().epoch, "{what}: epoch");
    ensure_eq!(ac.content.content.content_type(), content_type, "{what}: content type");
    ensure_bytes!(body(&ac.content.content)?, raw, "{what}: raw content");
    ensure_eq!(ac.auth.confirmation_tag.is_some(), content_type == ContentType::Commit, "{what}: confirmation tag");
    // The kept FramedContent bytes are its encoding.
    let mut buf = vec![0u8; ac.content_bytes().len()];
    ensure_bytes!(
        ac.content.encode_to(&mut buf).with_ctx(|| format!("{what}: encode content"))?,
        ac.content_bytes(),
        "{what}: content bytes"
    );
    // AuthenticatedContent round trip.
    let mut buf = vec![0u8; ac.encoded_len().with_ctx(|| format!("{what}: AuthenticatedContent length"))?];
    let enc = ac.encode_to(&mut buf).with_ctx(|| format!("{what}: encode AuthenticatedContent"))?;
    ensure_eq!(
        AuthenticatedContent::decode_exact(enc).with_ctx(|| format!("{what}: decode AuthenticatedContent"))?,
        *ac,
        "{what}: AuthenticatedContent"
    );
    Ok(())
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
type GivenFields = (Vec<u8>, Option<Vec<u8>>);

fn given_fields(message: &[u8], case: &Case, what: &str) -> Result<GivenFields, String> {
    match MlsMessage::decode_exact(message).with_ctx(|| format!("{what}: MLSMessage"))?.body {
        MlsMessageBody::PublicMessage(pm) => {
            Ok((pm.content.authenticated_data.to_vec(), pm.auth.confirmation_tag.map(<[u8]>::to_vec)))
        }
        MlsMessageBody::PrivateMessage(pm) => {
            let tag = (pm.content_type == ContentType::Commit).then(|| vec![0xc7; case.suite.hash_len()]);
            Ok((pm.authenticated_data.to_vec(), tag))
        }
        _ => Err(format!("{what}: not a framed message")),
    }
}

fn run_kind(
    case: &Case,
    v: &Value,
    kind: &str,
    content_type: ContentType,
    counts: &mut Stats,
    rng: &mut TestRng,
) -> Result<(), String> {
    let raw = hex_field(v, kind)?;
    let content = match content_type {
        ContentType::Application => Content::Application(&raw),
        ContentType::Proposal => Content::Proposal(Proposal::decode_exact(&raw).ctx(kind)?),
        ContentType::Commit => Content::Commit(Commit::decode_exact(&raw).ctx(kind)?),
    };
    let gc = case.context();
    let priv_name = format!("{kind}_priv");
    let pub_name = format!("{kind}_pub");
    let priv_given = hex_field(v, &priv_name)?;

    // PublicMessage: the given one verifies; ours verifies; application refused.
    let (ad, tag) = if content_type == ContentType::Application {
        given_fields(&priv_given, case, &priv_name)?
    } else {
        let given = hex_field(v, &pub_name)?;
        let ac = unprotect_public(case, &given).ctx(&pub_name)?;
        check_content(&ac, case, &raw, content_type, &pub_name)?;
        counts.add("public_given", 1);
        given_fields(&given, case, &pub_name)?
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
            ensure_eq!(r.err(), Some(ProtectionError::WrongContentType), "application as PublicMessage");
            counts.add("application_public_refused", 1);
            None
        }
        ContentType::Proposal => Some(
            public_message::protect(&gc, &case.sk, &framed, Some(&case.membership_key), &mut out)
                .with_ctx(|| format!("{kind}: protect PublicMessage"))?,
        ),
        ContentType::Commit => {
            let signed = public_message::sign(&gc, &case.sk, &framed, &mut out).with_ctx(|| format!("{kind}: sign"))?;
            ensure_eq!(
                signed.content_bytes().len(),
                framed.encoded_len().ctx("FramedContent length")?,
                "{kind}: signed content length"
            );
            Some(
                signed
                    .finish(tag.as_deref(), Some(&case.membership_key))
                    .with_ctx(|| format!("{kind}: finish PublicMessage"))?,
            )
        }
    };
    if let Some(ours) = ours {
        let ac = unprotect_public(case, ours).with_ctx(|| format!("{kind}: our PublicMessage"))?;
        check_content(&ac, case, &raw, content_type, &format!("{kind}: our PublicMessage"))?;
        counts.add("public_protected", 1);
        // EdDSA and HMAC are deterministic: the same content gives the same
        // bytes. ECDSA is not (the vectors' signer drew its nonces; ours
        // follow RFC 6979): there, ours verified above is the check.
        if !case.suite.signature_scheme().is_ecdsa() {
            let given = hex_field(v, &pub_name)?;
            ensure_bytes!(ours, given, "{kind}: our PublicMessage equals the given one");
            counts.add("public_identical", 1);
        }
    }

    // PrivateMessage: the given one unprotects with a fresh receiver tree.
    let mut rx = case.tree()?;
    let mut buf = priv_given.clone();
    let ac = unprotect_private(case, &mut rx, &mut buf).ctx(&priv_name)?;
    check_content(&ac, case, &raw, content_type, &priv_name)?;
    counts.add("private_given", 1);
    // Its key is consumed: the same message again is a replay.
    let mut again = priv_given.clone();
    ensure!(
        matches!(unprotect_private(case, &mut rx, &mut again), Err(ProtectionError::SecretTree(_))),
        "{priv_name}: replay not refused"
    );

    // Ours: a sender tree and a separate receiver tree, several generations
    // and paddings.
    let mut tx = case.tree()?;
    let mut rx = case.tree()?;
    for (i, padding) in [0usize, 1, 31, 200].into_iter().enumerate() {
        let what = format!("{kind}: our PrivateMessage {i} (padding {padding})");
        let mut out = vec![0u8; raw.len() + ad.len() + padding + 512];
        let mut keys = PrivateMessageKeys { secret_tree: &mut tx, sender_data_secret: &case.sender_data_secret };
        let ours = match content_type {
            ContentType::Commit => {
                let signed = private_message::sign(&gc, &case.sk, &framed, padding, &mut out)
                    .with_ctx(|| format!("{what}: sign"))?;
                ensure_eq!(
                    signed.content_bytes().len(),
                    framed.encoded_len().ctx("FramedContent length")?,
                    "{what}: signed content length"
                );
                signed.finish(tag.as_deref(), &mut keys, rng).with_ctx(|| format!("{what}: finish"))?
            }
            _ => private_message::protect(&gc, &mut keys, &case.sk, &framed, padding, rng, &mut out)
                .with_ctx(|| format!("{what}: protect"))?,
        };
        let mut received = ours.to_vec();
        let MlsMessageBody::PrivateMessage(pm) =
            MlsMessage::decode_exact(ours).with_ctx(|| format!("{what}: decode"))?.body
        else {
            return Err(format!("{what}: not a PrivateMessage"));
        };
        ensure_eq!(pm.content_type, content_type, "{what}: content type");
        let ac = unprotect_private(case, &mut rx, &mut received).ctx(&what)?;
        check_content(&ac, case, &raw, content_type, &what)?;
        counts.add("private_protected", 1);
    }
    Ok(())
}

/// Checks one case.
pub fn check_case(v: &Value) -> CaseResult {
    let suite = suite_or_return!(v);
    let case = Case::new(suite, v)?;
    let mut counts = Stats::default();
    let mut rng = TestRng(7);
    for (kind, content_type) in [
        ("proposal", ContentType::Proposal),
        ("commit", ContentType::Commit),
        ("application", ContentType::Application),
    ] {
        run_kind(&case, v, kind, content_type, &mut counts, &mut rng)?;
    }
    Ok(CaseOutcome::Ran(counts))
}
