//! A full ratchet tree of any size, made directly, for scenario b at the
//! sizes of d (issue #16): a chain of `n` joins and Commits (how `full_tree`
//! builds one) is quadratic, about 15 minutes for ours at 10,000 members and
//! hours for the anchors.
//!
//! The tree is the one such a chain leaves: every parent node with members
//! on both sides set (one with members on one side only is on no member's
//! filtered direct path, §4.1.2, so no Commit sets it), no unmerged leaf,
//! every made-up leaf a `commit` leaf. The real members (the library under
//! test) bring KeyPackages; every other leaf is made up here with its own keys and
//! the capabilities and extensions of the first real member's leaf, so
//! leaves cost each library what its own do. Each parent node is
//! parent-hash valid (§7.9.2) through one child, its right one unless no
//! made-up leaf can end that chain (real members' leaves come from
//! KeyPackages and carry no parent hash); the other leaves' parent hashes
//! are stale, as after later Commits.
//!
//! A made-up member beside the last real one signs the GroupInfo; the keys
//! on its filtered direct path come from one chain of path secrets (§7.4), so
//! each real member gets the path secret of its lowest common ancestor with
//! it in the Welcome (§12.4.3.1) and holds the private keys of its own path
//! from there up. Below that it holds none: member 0 (its ancestor is the
//! root) can commit but not read a Commit from the far side; the far member
//! reads member 0's. Each library validates the whole tree when it joins.
//!
//! Checked against a chain-built tree at 1,024 members (`MLS_BENCH_SIZES=1024
//! MLS_BENCH_SCENARIOS=b` beside `MLS_BENCH_SCENARIOS=d MLS_BENCH_BIG=1024`):
//! ours and OpenMLS create and process the Commit within 5% in both; mls-rs
//! is 25-35% faster in the made-up tree, and as slow as in the chain's once
//! its two members have gone through 1,000 epochs first: its cost grows with
//! the epochs a member has been through, not with the tree.

use super::ours::SUITE;
use mls_bench::SeededRng;
use mls_nostd::codec::{Decode, Encode, Writer};
use mls_nostd::crypto::Secret;
use mls_nostd::crypto::hpke::derive_key_pair;
use mls_nostd::crypto::labeled::derive_secret;
use mls_nostd::crypto::signature::SignaturePrivateKey;
use mls_nostd::credential::Credential;
use mls_nostd::executor::Sequential;
use mls_nostd::extensions::Extensions;
use mls_nostd::key_package::KeyPackage;
use mls_nostd::key_schedule::{EpochSecrets, welcome_secret};
use mls_nostd::leaf_node::{Capabilities, LeafNode, LeafNodeContext, LeafNodeFields, LeafNodeSource};
use mls_nostd::messages::group_info::{GroupInfo, GroupInfoTbs, WireGroupContext};
use mls_nostd::messages::mls_message::{MlsMessage, MlsMessageBody};
use mls_nostd::messages::welcome_secrets::{NewMember, WelcomeParams};
use mls_nostd::tree_math::{LeafIndex, NodeIndex, common_ancestor, left, level, parent, right, root};
use rand_core::Rng;

/// The made-up group a library's members join.
pub struct Forged {
    /// The `MLSMessage(Welcome)` for every real member, ratchet tree included.
    pub welcome: Vec<u8>,
    /// Blank nodes of the tree: leaves past the members, and parents
    /// without members on both sides.
    pub blanks: usize,
}

/// Where a node's `parent_hash` comes from.
#[derive(Clone, Copy)]
enum Above {
    /// The root: empty (§7.9).
    Root,
    /// The parent hash of the node's parent: this node continues its chain.
    Chain([u8; 32]),
    /// The parent is covered through the sibling: a stale value, as a node
    /// keeps once a later Commit rewrites its parent.
    Stale,
}

/// Appends `bytes` as `opaque<V>` (§2.1.2), with the core's encoder.
fn opaque(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut sink = |b: &[u8]| out.extend_from_slice(b);
    Writer::sink(&mut sink).write_opaque(bytes).expect("a vector below 1 GiB");
}

/// The encoding of `value`, with the core's encoder.
fn encoded(value: &impl Encode) -> Vec<u8> {
    let mut out = Vec::new();
    let mut sink = |b: &[u8]| out.extend_from_slice(b);
    value.encode(&mut Writer::sink(&mut sink)).expect("an encoding");
    out
}

fn hash(parts: &[&[u8]]) -> [u8; 32] {
    SUITE.hash(parts).as_bytes().try_into().expect("SHA-256")
}

struct Maker<'a> {
    n: u32,
    group_id: &'a [u8],
    /// Real members' LeafNode encodings, by leaf index.
    real: &'a [(u32, &'a [u8])],
    rng: SeededRng,
    /// The capabilities and leaf extensions of a real member's leaf: every
    /// made-up leaf has them, so leaves cost each library what its own do.
    capabilities: Capabilities<'a>,
    extensions: Extensions<'a>,
    /// Encoded node (`Node`, without the `optional` byte) per node index.
    nodes: Vec<Option<Vec<u8>>>,
    /// Parent nodes' public keys set in advance (the signer's direct path).
    path_keys: Vec<Option<Vec<u8>>>,
    /// The signer's key (the made-up member at `signer`).
    signer: u32,
    signer_key: Option<SignaturePrivateKey>,
}

impl Maker<'_> {
    fn real_leaf(&self, i: u32) -> Option<&[u8]> {
        self.real.iter().find(|(l, _)| *l == i).map(|(_, b)| *b)
    }

    /// True if a leaf below `x` is a member.
    fn has_member(&self, x: NodeIndex) -> bool {
        let lvl = level(x);
        (x.0 >> (lvl + 1)) << lvl < self.n
    }

    /// True if node `x` is set: a member's leaf, or a parent with members on
    /// both sides. A parent with none on one side is on no member's filtered
    /// direct path (§4.1.2, §7.5), so a Commit never sets it.
    fn occupied(&self, x: NodeIndex) -> bool {
        match x.leaf() {
            Some(l) => l.0 < self.n,
            None => right(x).is_some_and(|r| self.has_member(r)),
        }
    }

    /// True if a chain of parent hashes from `x` down can end at a made-up leaf.
    fn coverable(&self, x: NodeIndex) -> bool {
        match x.leaf() {
            Some(l) => l.0 < self.n && self.real_leaf(l.0).is_none(),
            None if self.occupied(x) => [right(x), left(x)].into_iter().flatten().any(|c| self.coverable(c)),
            // A blank parent: the chain passes it to the side with members.
            None => left(x).is_some_and(|c| self.has_member(c) && self.coverable(c)),
        }
    }

    fn random(&mut self) -> [u8; 32] {
        let mut b = [0u8; 32];
        self.rng.fill_bytes(&mut b);
        b
    }

    /// Sets node `x` and everything below it; returns its tree hash (§7.8).
    fn build(&mut self, x: NodeIndex, above: Above) -> [u8; 32] {
        if let Some(l) = x.leaf() {
            return self.build_leaf(l, above);
        }
        let (a, b) = (left(x).expect("a parent"), right(x).expect("a parent"));
        if !self.occupied(x) {
            // Blank: a chain from above goes on below it, on the left (the
            // side with members, if any).
            let (ha, hb) = (self.build(a, above), self.build(b, Above::Stale));
            let mut input = vec![2u8, 0];
            opaque(&mut input, &ha);
            opaque(&mut input, &hb);
            return hash(&[&input]);
        }
        let key = match self.path_keys[x.0 as usize].take() {
            Some(k) => k,
            None => derive_key_pair(SUITE, &self.random()).expect("X25519").1.as_bytes().to_vec(),
        };
        let parent_hash: Vec<u8> = match above {
            Above::Root => Vec::new(),
            Above::Chain(h) => h.to_vec(),
            Above::Stale => self.random().to_vec(),
        };
        // The chain goes on through the right child where it can.
        let right_first = self.coverable(b);
        assert!(right_first || self.coverable(a), "node {} can be covered by no made-up leaf", x.0);
        let (chain, other) = if right_first { (b, a) } else { (a, b) };
        let other_hash = self.build(other, Above::Stale);
        let mut input = Vec::with_capacity(112);
        opaque(&mut input, &key);
        opaque(&mut input, &parent_hash);
        opaque(&mut input, &other_hash);
        let chain_hash = self.build(chain, Above::Chain(hash(&[&input])));
        let (ha, hb) = if right_first { (other_hash, chain_hash) } else { (chain_hash, other_hash) };
        // ParentNode {encryption_key, parent_hash, unmerged_leaves: []}.
        let mut node = Vec::with_capacity(80);
        opaque(&mut node, &key);
        opaque(&mut node, &parent_hash);
        opaque(&mut node, &[]);
        let mut input = vec![2u8, 1];
        input.extend_from_slice(&node);
        opaque(&mut input, &ha);
        opaque(&mut input, &hb);
        let mut encoded = vec![2u8];
        encoded.extend_from_slice(&node);
        self.nodes[x.0 as usize] = Some(encoded);
        hash(&[&input])
    }

    fn build_leaf(&mut self, l: LeafIndex, above: Above) -> [u8; 32] {
        let mut input = vec![1u8];
        input.extend_from_slice(&l.0.to_be_bytes());
        let leaf = match self.real_leaf(l.0) {
            Some(bytes) => bytes.to_vec(),
            None if l.0 < self.n => self.made_up_leaf(l, above),
            None => {
                input.push(0);
                return hash(&[&input]);
            }
        };
        input.push(1);
        input.extend_from_slice(&leaf);
        let mut encoded = vec![1u8];
        encoded.extend_from_slice(&leaf);
        self.nodes[l.node().expect("a leaf").0 as usize] = Some(encoded);
        hash(&[&input])
    }

    /// A made-up member's LeafNode, a `commit` leaf: the parent hash of the
    /// chain that ends here, if one does, else a stale one.
    fn made_up_leaf(&mut self, l: LeafIndex, above: Above) -> Vec<u8> {
        let seed = self.random();
        let key = SignaturePrivateKey::from_slice(SUITE, &seed).expect("an Ed25519 seed");
        let signature_key = key.public_key().as_bytes().to_vec();
        let encryption_key = derive_key_pair(SUITE, &self.random()).expect("X25519").1.as_bytes().to_vec();
        let identity = format!("made-up-{}", l.0).into_bytes();
        // Every member of a full tree has committed once: a `commit` leaf,
        // whose parent hash is stale unless a chain ends here.
        let parent_hash = match above {
            Above::Chain(h) => h,
            _ => self.random(),
        };
        let source = LeafNodeSource::Commit { parent_hash: &parent_hash };
        let context = Some(LeafNodeContext { group_id: self.group_id, leaf_index: l.0 });
        let fields = LeafNodeFields {
            encryption_key: &encryption_key,
            signature_key: &signature_key,
            credential: Credential::Basic { identity: &identity },
            capabilities: self.capabilities,
            source,
            extensions: self.extensions,
        };
        let mut out = [0u8; 2048];
        let leaf = LeafNode::sign_into(SUITE, &fields, context, &key, &mut out).expect("a LeafNode").to_vec();
        if l.0 == self.signer {
            self.signer_key = Some(key);
        }
        leaf
    }
}

/// A full tree of `n` members whose members at the given leaves are the
/// KeyPackages given (at least one; the last leaf's sibling must be a
/// made-up member: it signs the GroupInfo), and the Welcome to all of them.
pub fn full_group(n: u32, group_id: &[u8], key_packages: &[(u32, &[u8])]) -> Forged {
    // The anchors publish an MLSMessage (§6), ours the bare KeyPackage.
    fn key_package(b: &[u8]) -> KeyPackage<'_> {
        match MlsMessage::decode_exact(b) {
            Ok(MlsMessage { body: MlsMessageBody::KeyPackage(kp), .. }) => kp,
            _ => KeyPackage::decode_exact(b).expect("a KeyPackage"),
        }
    }
    let kps: Vec<(u32, KeyPackage<'_>)> = key_packages.iter().map(|(l, b)| (*l, key_package(b))).collect();
    let real: Vec<(u32, &[u8])> = kps.iter().map(|(l, kp)| (*l, kp.tbs.leaf_node.as_bytes())).collect();
    let last = kps.iter().map(|(l, _)| *l).max().expect("a real member");
    let signer = last ^ 1;
    assert!(signer < n && real.iter().all(|(l, _)| *l != signer), "leaf {signer} signs: a made-up member");
    let n_leaves = n.next_power_of_two();
    let width = 2 * n_leaves - 1;
    let mut maker = Maker {
        n,
        group_id,
        real: &real,
        rng: SeededRng(0x666f_7267_6564 ^ u64::from(n)),
        capabilities: kps[0].1.tbs.leaf_node.fields.capabilities,
        extensions: kps[0].1.tbs.leaf_node.fields.extensions,
        nodes: vec![None; width as usize],
        path_keys: vec![None; width as usize],
        signer,
        signer_key: None,
    };

    // The path secrets of the signer's filtered direct path (§4.1.2, §7.4),
    // lowest first.
    let mut path_secrets: Vec<(NodeIndex, Secret)> = Vec::new();
    let mut x = LeafIndex(signer).node().expect("a leaf");
    let mut secret = Secret::from_slice(&maker.random()).expect("32 bytes");
    while let Some(p) = parent(x, n_leaves) {
        x = p;
        if !maker.occupied(p) {
            continue;
        }
        let node_secret = derive_secret(SUITE, secret.as_bytes(), b"node").expect("DeriveSecret");
        let (_, public) = derive_key_pair(SUITE, node_secret.as_bytes()).expect("X25519");
        maker.path_keys[p.0 as usize] = Some(public.as_bytes().to_vec());
        let next = derive_secret(SUITE, secret.as_bytes(), b"path").expect("DeriveSecret");
        path_secrets.push((p, secret));
        secret = next;
    }

    let top = root(n_leaves).expect("a tree");
    let tree_hash = maker.build(top, Above::Root);
    let blanks = maker.nodes.iter().filter(|x| x.is_none()).count();

    // The ratchet_tree extension: optional<Node> ratchet_tree<V>, trailing
    // blanks left out (§12.4.3.3).
    let used = maker.nodes.iter().rposition(Option::is_some).expect("a member") + 1;
    let mut tree = Vec::new();
    for node in &maker.nodes[..used] {
        match node {
            Some(bytes) => {
                tree.push(1);
                tree.extend_from_slice(bytes);
            }
            None => tree.push(0),
        }
    }
    let mut tree_vector = Vec::with_capacity(tree.len() + 4);
    opaque(&mut tree_vector, &tree);
    let mut gi_extensions = 2u16.to_be_bytes().to_vec();
    opaque(&mut gi_extensions, &tree_vector);

    // The epoch (§8): any joiner secret, no PSK.
    let confirmed_transcript_hash = maker.random();
    let context = WireGroupContext {
        version: 1,
        cipher_suite: SUITE.to_u16(),
        group_id,
        epoch: 1,
        tree_hash: &tree_hash,
        confirmed_transcript_hash: &confirmed_transcript_hash,
        extensions: Extensions::default(),
    };
    let context_bytes = encoded(&context);
    let joiner = Secret::from_slice(&maker.random()).expect("32 bytes");
    let psk_secret = Secret::zero(SUITE.hash_len()).expect("Nh");
    let epoch = EpochSecrets::derive(SUITE, &joiner, &psk_secret, &context_bytes).expect("the key schedule");
    let confirmation_tag = SUITE.mac(epoch.confirmation_key.as_bytes(), &[&confirmed_transcript_hash]);
    let tbs = GroupInfoTbs {
        group_context: context,
        extensions: Extensions::from_body(&gi_extensions).expect("the ratchet_tree extension"),
        confirmation_tag: confirmation_tag.as_bytes(),
        signer,
    };
    let signer_key = maker.signer_key.take().expect("the signer's leaf was made");
    let mut gi = vec![0u8; gi_extensions.len() + 1024];
    let group_info = GroupInfo::sign_into(SUITE, &tbs, &signer_key, &mut gi).expect("a GroupInfo");

    let welcome_secret = welcome_secret(SUITE, &joiner, &psk_secret).expect("the welcome secret");
    let members: Vec<NewMember<'_>> = kps
        .iter()
        .map(|(l, kp)| {
            let lca = common_ancestor(LeafIndex(*l).node().expect("a leaf"), LeafIndex(signer).node().expect("a leaf"));
            let secret = path_secrets.iter().find(|(x, _)| *x == lca).map(|(_, s)| s).expect("on the signer's path");
            NewMember::from_key_package(SUITE, kp, Some(secret)).expect("the KeyPackage's init key")
        })
        .collect();
    let params = WelcomeParams { suite: SUITE, joiner_secret: &joiner, psks: &[], welcome_secret: &welcome_secret, group_info };
    let mut out = vec![0u8; params.sizes(&members).expect("Welcome sizes").buffer_len];
    let welcome = params.create(&members, &mut maker.rng, &Sequential, &mut out).expect("a Welcome").to_vec();
    Forged { welcome, blanks }
}
