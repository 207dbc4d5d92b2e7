//! The machinery the seeded randomized runs share (`self_acceptance.rs`,
//! `store_roundtrip.rs`, `self_acceptance_external.rs`): the identity
//! policy, PSK stores, capabilities and leaf templates, KeyPackages, the
//! counts, error codes and the agreement check. Each includes it with
//! `#[path = "common/random_group.rs"] mod random_group;` (and
//! `#[allow(dead_code)]`: not every run uses everything).
use mls_nostd::codec::Decode;
use mls_nostd::credential::Credential;
use mls_nostd::crypto::signature::SignaturePrivateKey;
use mls_nostd::crypto::CipherSuite;
use mls_nostd::extensions::{Extensions, U16List};
use mls_nostd::group::{CommitError, CreateCommitError, GroupConfig, ReceiveError};
use mls_nostd::identity::{CredentialUse, IdentityProvider, MemberIdentity};
use mls_nostd::key_package::{KeyPackage, KeyPackageParams, KeyPackagePrivateKeys};
use mls_nostd::leaf_node::{Capabilities, Lifetime};
use mls_nostd::psk::PskStore;
use mls_nostd::ratchet_tree::node::{Node, RatchetTreeView};
use mls_nostd::ratchet_tree::treekem::LeafTemplate;
use mls_tests::member::{agree, MemberOf};
use std::collections::BTreeMap;

/// The non-default extension type some members support.
pub const EXT: u16 = 0xff00;

/// Whether `member`'s credential is one the identity policies refuse: its
/// identity starts with `banned` (§5.3.1).
pub fn banned(member: &MemberIdentity<'_>) -> bool {
    matches!(member.credential, Credential::Basic { identity } if identity.starts_with(b"banned"))
}

/// The application's identity policy: credentials whose identity starts
/// with `banned` are refused (§5.3.1); a successor keeps its credential.
pub struct Policy;

impl IdentityProvider for Policy {
    fn validate(&self, _: &[u8], _: CredentialUse, member: &MemberIdentity<'_>) -> bool {
        !banned(member)
    }

    fn valid_successor(&self, predecessor: &MemberIdentity<'_>, successor: &MemberIdentity<'_>) -> bool {
        predecessor.credential == successor.credential
    }
}

pub static POLICY: Policy = Policy;

pub fn config() -> GroupConfig {
    GroupConfig { identity: &POLICY, ..GroupConfig::DEFAULT }
}

/// What a new member is given: the external PSKs, and the resumption PSK
/// of group `.0` at the epoch its Commit was sent in (`.1`, `.2`: the new
/// member cannot derive it: the application hands it over, taken from the
/// committer, so that a Commit injecting it can add members).
pub struct JoinPsks(pub &'static [u8], pub u64, pub Vec<u8>);

impl PskStore for JoinPsks {
    fn external_psk(&self, psk_id: &[u8]) -> Option<&[u8]> {
        Psks.external_psk(psk_id)
    }

    fn resumption_psk(&self, group_id: &[u8], epoch: u64) -> Option<&[u8]> {
        (group_id == self.0 && epoch == self.1).then_some(self.2.as_slice())
    }
}

/// External PSKs every member (and joiner) holds (the group's own
/// resumption PSKs are looked up by the group itself).
pub struct Psks;

impl PskStore for Psks {
    fn external_psk(&self, psk_id: &[u8]) -> Option<&[u8]> {
        (psk_id == b"shared").then_some(b"shared-secret".as_slice())
    }

    fn resumption_psk(&self, _: &[u8], _: u64) -> Option<&[u8]> {
        None
    }
}

pub const VERSIONS: [u8; 2] = [0, 1];
pub const EXT_LIST: [u8; 2] = [0xff, 0x00];

/// Our capabilities: `versions` [`VERSIONS`], `cipher_suites` `suites`,
/// `credentials` `creds` (bodies of `uint16` lists), listing [`EXT`] or not.
pub fn capabilities_with(suites: &'static [u8], creds: &'static [u8], ext: bool) -> Capabilities<'static> {
    Capabilities {
        versions: U16List::from_body(&VERSIONS).unwrap(),
        cipher_suites: U16List::from_body(suites).unwrap(),
        extensions: if ext { U16List::from_body(&EXT_LIST).unwrap() } else { U16List::default() },
        proposals: U16List::default(),
        credentials: U16List::from_body(creds).unwrap(),
    }
}

/// The cipher suites (1, 3) and credential types (basic, x509) members
/// list in `self_acceptance.rs` and `store_roundtrip.rs`.
pub const SUITES: [u8; 2] = [0, 3];
pub const CREDS: [u8; 4] = [0, 1, 0, 2];

/// Our capabilities, listing [`EXT`] or not.
pub fn capabilities(ext: bool) -> Capabilities<'static> {
    capabilities_with(&SUITES, &CREDS, ext)
}

/// Whether `m`'s leaf lists [`EXT`].
pub fn lists_ext<const N: usize, const A: usize, const K: usize, const P: usize, const E: usize>(m: &MemberOf<N, A, K, P, E>) -> bool {
    let leaf = m.group.tree().leaf_node(m.group.own_leaf()).expect("our leaf");
    leaf.fields.capabilities.extensions.contains(EXT)
}

/// A leaf template of `signer`'s key, with `identity` and `capabilities`.
pub fn template_with(signer: &SignaturePrivateKey, identity: &'static [u8], capabilities: Capabilities<'static>) -> LeafTemplate<'static> {
    let sk: &'static [u8] = Box::leak(signer.public_key().as_bytes().to_vec().into_boxed_slice());
    LeafTemplate {
        signature_key: sk,
        credential: Credential::Basic { identity },
        capabilities,
        extensions: Extensions::default(),
    }
}

/// A leaf template of `m`'s signature key, with `identity` and capabilities
/// listing [`EXT`] or not.
pub fn template<const N: usize, const A: usize, const K: usize, const P: usize, const E: usize>(
    m: &MemberOf<N, A, K, P, E>,
    identity: &'static [u8],
    ext: bool,
) -> LeafTemplate<'static> {
    template_with(&m.signer, identity, capabilities(ext))
}

pub fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// A KeyPackage of `m` in `suite` (its basic credential, supported
/// extensions listing [`EXT`] or not), drawn from `m`'s RNG.
pub fn key_package_of<const N: usize, const A: usize, const K: usize, const P: usize, const E: usize>(
    m: &mut MemberOf<N, A, K, P, E>,
    suite: CipherSuite,
    ext: bool,
    lifetime: Lifetime,
) -> (Vec<u8>, KeyPackagePrivateKeys) {
    let params = KeyPackageParams {
        suite,
        credential: Credential::Basic { identity: m.name.as_bytes() },
        lifetime,
        leaf_extensions: Extensions::default(),
        extensions: Extensions::default(),
        supported_extensions: if ext { U16List::from_body(&EXT_LIST).unwrap() } else { U16List::default() },
        supported_proposals: U16List::default(),
    };
    let mut out = vec![0u8; 4096];
    let (bytes, keys) = KeyPackage::generate(&params, &m.signer, &mut m.rng, &mut out).unwrap();
    (bytes.to_vec(), keys)
}

#[derive(Default)]
pub struct Stats(pub BTreeMap<String, u64>);

impl Stats {
    pub fn inc(&mut self, key: impl Into<String>) {
        *self.0.entry(key.into()).or_default() += 1;
    }
    pub fn add(&mut self, key: &str, n: u64) {
        *self.0.entry(key.into()).or_default() += n;
    }
    pub fn get(&self, key: &str) -> u64 {
        self.0.get(key).copied().unwrap_or(0)
    }
    /// The sum of the counts whose key starts with `prefix`.
    pub fn sum(&self, prefix: &str) -> u64 {
        self.0.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(_, v)| v).sum()
    }
    /// Prints every count, keys padded to `width`.
    pub fn print(&self, width: usize) {
        for (k, v) in &self.0 {
            println!("  {k:<width$} {v}");
        }
    }
}

/// What a proposal of a round is, for the counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    AddFresh,
    AddBannedCredential,
    AddMemberSignatureKey,
    AddPendingSignatureKey,
    AddReplayedKeys,
    AddOtherSuite,
    AddExpired,
    AddLifetimeTooLong,
    UpdateValid,
    UpdateReplayedKey,
    UpdateToggleExt,
    UpdateOtherCredential,
    RemoveOther,
    RemoveSelf,
    RemoveBlank,
    RemoveOutOfTree,
    GceEmpty,
    GceExt,
    GceUnsupportedExt,
    GceDuplicateExt,
    GceRequiresExt,
    GceRequiresUnknownProposal,
    GceRequiresX509,
    PskKnown,
    PskKnownFixedNonce,
    PskUnknown,
    PskShortNonce,
    PskResumptionCurrent,
    PskResumptionUnknownEpoch,
    ReInit,
    ExternalInit,
}

pub const KINDS: [Kind; 31] = [
    Kind::AddFresh,
    Kind::AddBannedCredential,
    Kind::AddMemberSignatureKey,
    Kind::AddPendingSignatureKey,
    Kind::AddReplayedKeys,
    Kind::AddOtherSuite,
    Kind::AddExpired,
    Kind::AddLifetimeTooLong,
    Kind::UpdateValid,
    Kind::UpdateReplayedKey,
    Kind::UpdateToggleExt,
    Kind::UpdateOtherCredential,
    Kind::RemoveOther,
    Kind::RemoveSelf,
    Kind::RemoveBlank,
    Kind::RemoveOutOfTree,
    Kind::GceEmpty,
    Kind::GceExt,
    Kind::GceUnsupportedExt,
    Kind::GceDuplicateExt,
    Kind::GceRequiresExt,
    Kind::GceRequiresUnknownProposal,
    Kind::GceRequiresX509,
    Kind::PskKnown,
    Kind::PskKnownFixedNonce,
    Kind::PskUnknown,
    Kind::PskShortNonce,
    Kind::PskResumptionCurrent,
    Kind::PskResumptionUnknownEpoch,
    Kind::ReInit,
    Kind::ExternalInit,
];

/// GroupContextExtensions bodies (`Extension extensions<V>` without the
/// length): type, varint length, data. [`EXT`]:
pub const GCE_EXT: &[u8] = &[0xff, 0x00, 0x00];
/// One no member supports.
pub const GCE_UNSUPPORTED: &[u8] = &[0xff, 0x01, 0x00];
pub const GCE_DUPLICATE: &[u8] = &[0xff, 0x00, 0x00, 0xff, 0x00, 0x00];
/// required_capabilities (3): extensions [EXT], no proposals, no credentials.
pub const GCE_REQUIRES_EXT: &[u8] = &[0x00, 0x03, 0x05, 0x02, 0xff, 0x00, 0x00, 0x00];
/// required_capabilities: proposal type 0xff0a, which no member supports.
pub const GCE_REQUIRES_PROPOSAL: &[u8] = &[0x00, 0x03, 0x05, 0x00, 0x02, 0xff, 0x0a, 0x00];
/// required_capabilities: credential type x509, which every member lists.
pub const GCE_REQUIRES_X509: &[u8] = &[0x00, 0x03, 0x05, 0x00, 0x00, 0x02, 0x00, 0x02];

pub fn tree_export<const N: usize, const A: usize, const K: usize, const P: usize, const E: usize>(m: &mut MemberOf<N, A, K, P, E>) -> Vec<u8> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut w = mls_nostd::codec::Writer::new(&mut buf);
    m.group.export_tree(&mut w).unwrap();
    let n = w.len();
    buf.truncate(n);
    buf
}

/// What an exported ratchet tree (`optional<Node> ratchet_tree<V>`) looks
/// like, for the counts of what a run exercised. Read from the exported
/// bytes with the array layout of §4.1 and Appendix C (a parent at level
/// `k` spans `2^k` leaves), not from the group's own tree code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TreeShape {
    /// Leaves of the complete tree the nodes span (a power of two).
    pub leaves: u32,
    /// Members: non-blank leaves.
    pub members: u32,
    /// Blank parents of level 3 or more (over 8 leaves or more).
    pub blank_parents_high: u32,
    /// The highest level of a parent holding unmerged leaves (0: none).
    pub unmerged_level: u32,
    /// The most unmerged leaves one parent holds.
    pub max_unmerged: usize,
    /// The number of nodes in the root's resolution (§4.1.1).
    pub root_resolution: usize,
    /// The most nodes in the resolution of a blank parent.
    pub max_blank_resolution: usize,
}

pub fn tree_shape(exported: &[u8]) -> TreeShape {
    let view = RatchetTreeView::decode_exact(exported).expect("an exported tree");
    let nodes: Vec<Option<Node<'_>>> = view.iter().collect();
    assert_eq!(nodes.len() as u32, view.len(), "every node decodes");
    let leaves = nodes.len().div_ceil(2).next_power_of_two() as u32;
    let level = |x: u32| x.trailing_ones();
    fn resolution(nodes: &[Option<Node<'_>>], x: u32) -> usize {
        let k = x.trailing_ones();
        match nodes.get(x as usize).copied().flatten() {
            Some(Node::Leaf(_)) => 1,
            Some(Node::Parent(p)) => 1 + p.unmerged_leaves.len(),
            None if k == 0 => 0,
            None => resolution(nodes, x - (1 << (k - 1))) + resolution(nodes, x + (1 << (k - 1))),
        }
    }
    let mut shape = TreeShape { leaves, root_resolution: resolution(&nodes, leaves - 1), ..TreeShape::default() };
    for (x, node) in nodes.iter().enumerate() {
        let x = x as u32;
        match node {
            Some(Node::Leaf(_)) => shape.members += 1,
            Some(Node::Parent(p)) if !p.unmerged_leaves.is_empty() => {
                shape.unmerged_level = shape.unmerged_level.max(level(x));
                shape.max_unmerged = shape.max_unmerged.max(p.unmerged_leaves.len());
            }
            None if level(x) > 0 => {
                shape.max_blank_resolution = shape.max_blank_resolution.max(resolution(&nodes, x));
                if level(x) >= 3 {
                    shape.blank_parents_high += 1;
                }
            }
            _ => {}
        }
    }
    shape
}

/// After an epoch: every member agrees (epoch, authenticator, exporter),
/// the trees are equal, and each member holds no pending proposals in the
/// new epoch.
pub fn check_agreement<const N: usize, const A: usize, const K: usize, const P: usize, const E: usize>(
    members: &mut [MemberOf<N, A, K, P, E>],
    seed: u64,
    round: usize,
) {
    let all: Vec<&MemberOf<N, A, K, P, E>> = members.iter().collect();
    agree(&all);
    let trees: Vec<Vec<u8>> = members.iter_mut().map(tree_export).collect();
    assert!(trees.windows(2).all(|w| w[0] == w[1]), "seed {seed} round {round}: trees differ");
    assert!(members.iter().all(|m| m.group.pending_proposals().count() == 0));
}

pub fn commit_code(e: &CommitError) -> String {
    match e {
        CommitError::InvalidKeyPackage(k) => format!("PRP-ADD-KP({k:?})"),
        e => e.code().to_string(),
    }
}

pub fn create_code(e: &CreateCommitError) -> String {
    match e {
        CreateCommitError::Commit(c) => commit_code(c),
        e => format!("{e:?}"),
    }
}

pub fn receive_code(e: &ReceiveError) -> String {
    match e {
        ReceiveError::Commit(c) => commit_code(c),
        e => format!("{e:?}"),
    }
}
