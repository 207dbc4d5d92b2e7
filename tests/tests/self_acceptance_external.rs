//! Our own members accept what our own members send, beyond members'
//! proposals (see `self_acceptance.rs`): external joins (§12.4.3.2, with
//! and without a resync), proposals of external senders (§12.1.8.1), a
//! new member's Add of itself (§12.1.8.2, committed only if our identity
//! policy authorizes it) and ReInit Commits (§11.2), in suites 1, 2 and 3,
//! mixed with ordinary Commits. A seeded randomized run: each round some
//! proposals are sent (by members, PublicMessage or PrivateMessage; by an
//! external sender or a new member, PublicMessage), valid ones and hostile
//! but well-formed ones; outsiders try hostile external joins (a GroupInfo
//! of an older epoch, a resync of another member's leaf, a member's
//! signature key, a leaf lacking what the group requires, a banned
//! credential, a tampered GroupInfo, a replayed external Commit, PSKs the
//! members do not hold, one PSK twice, PSK IDs longer than the members
//! keep): each is refused by the joiner's own `join_external` with a typed
//! error and its slot left empty, or, built, refused by every member,
//! which stays unchanged. Then the epoch ends by a member's Commit of the pending
//! proposals, a valid external Commit (zero to three PSKs, the external one
//! or this group's resumption PSK), or a ReInit Commit: every other
//! member must accept it and all agree; after a ReInit the group is
//! inactive (typed refusals) and the run goes on in a new group.
//!
//! Seeds: `SELF_ACCEPTANCE_EXTERNAL_SEED=<u64>` replays one seed (printed by
//! each run); `SELF_ACCEPTANCE_EXTERNAL_ROUNDS` changes the number of rounds.
use mls_nostd::codec::{Decode, Writer};
use mls_nostd::credential::Credential;
use mls_nostd::crypto::signature::SignaturePrivateKey;
use mls_nostd::crypto::{CipherSuite, HashValue};
use mls_nostd::Capacity;
use mls_nostd::executor::Sequential;
use mls_nostd::extensions::Extensions;
use mls_nostd::group::{
    CommitBuffers, CommitError, CommitOptions, CreateCommitError, CreateParams, GroupConfig, GroupError, JoinError, JoinParams,
    ReceiveError, Received, WireFormatPolicy,
};
use mls_nostd::identity::{CredentialUse, IdentityProvider, MemberIdentity};
use mls_nostd::key_package::{KeyPackage, KeyPackagePrivateKeys};
use mls_nostd::leaf_node::{Capabilities, LeafNode};
use mls_nostd::messages::authenticated_content::EncodedGroupContext;
use mls_nostd::messages::framing::{Content, FramedContent, Sender};
use mls_nostd::messages::proposal::{
    Add, ExternalInit, GroupContextExtensions, PreSharedKey, Proposal, ReInit, Remove, Update,
};
use mls_nostd::messages::public_message;
use mls_nostd::psk::{PreSharedKeyId, Psk, PskStore, ResumptionPskUsage};
use mls_nostd::ratchet_tree::treekem::LeafTemplate;
use mls_nostd::tree_math::LeafIndex;
use mls_tests::member::{buffers, Member, LIFETIME, NOW};
use mls_tests::TestRng;
use rand_core::Rng;
use std::collections::BTreeMap;
use std::time::Instant;

#[path = "common/random_group.rs"]
#[allow(dead_code)]
mod random_group;
use random_group::{
    banned, capabilities_with, check_agreement, key_package_of, leak, template_with, tree_export, Psks, Stats, EXT, GCE_EXT,
    GCE_REQUIRES_EXT, GCE_UNSUPPORTED,
};

/// Most members (joiners included) the run lets the group grow to: the
/// members' capacity is 16 leaves, and an external joiner may come on top.
const MAX_MEMBERS: usize = 11;

/// The application's identity policy: credentials whose identity starts
/// with `banned` are refused (§5.3.1); a successor keeps its credential; a
/// new member's Add of itself is committed only by members that admit
/// invitations, and only if its identity starts with `invited` (§12.1.8.2).
struct Policy {
    invites: bool,
}

impl IdentityProvider for Policy {
    fn validate(&self, _: &[u8], _: CredentialUse, member: &MemberIdentity<'_>) -> bool {
        !banned(member)
    }

    fn valid_successor(&self, predecessor: &MemberIdentity<'_>, successor: &MemberIdentity<'_>) -> bool {
        predecessor.credential == successor.credential
    }

    fn authorize_new_member_add(&self, _: &[u8], joiner: &MemberIdentity<'_>) -> bool {
        self.invites && matches!(joiner.credential, Credential::Basic { identity } if identity.starts_with(b"invited"))
    }
}

static INVITING: Policy = Policy { invites: true };
static CLOSED: Policy = Policy { invites: false };

/// A hostile joiner's own policy: it builds a resync of any leaf.
struct Lenient;

impl IdentityProvider for Lenient {
    fn validate(&self, _: &[u8], _: CredentialUse, member: &MemberIdentity<'_>) -> bool {
        !banned(member)
    }
    fn valid_successor(&self, _: &MemberIdentity<'_>, _: &MemberIdentity<'_>) -> bool {
        true
    }
    fn valid_resync(&self, _: &MemberIdentity<'_>, _: &MemberIdentity<'_>) -> bool {
        true
    }
}

static LENIENT: Lenient = Lenient;

fn config(invites: bool) -> GroupConfig {
    GroupConfig { identity: if invites { &INVITING } else { &CLOSED }, ..GroupConfig::DEFAULT }
}

const SUITES: [u8; 6] = [0, 1, 0, 2, 0, 3];
const CREDS: [u8; 2] = [0, 1];

/// Our capabilities, listing [`EXT`] or not.
fn capabilities(ext: bool) -> Capabilities<'static> {
    capabilities_with(&SUITES, &CREDS, ext)
}

/// A leaf template of `signer`'s key, with `identity` and capabilities
/// listing [`EXT`] or not.
fn template(signer: &SignaturePrivateKey, identity: &'static [u8], ext: bool) -> LeafTemplate<'static> {
    template_with(signer, identity, capabilities(ext))
}

fn leak_bytes(v: Vec<u8>) -> &'static [u8] {
    Box::leak(v.into_boxed_slice())
}

/// The `external_senders` extension (type 5) naming `keys` (basic
/// credentials `ds0`, `ds1`...).
fn external_senders_extension(keys: &[Vec<u8>]) -> Vec<u8> {
    let mut data = vec![0u8; 2048];
    let n = {
        let mut w = Writer::new(&mut data);
        w.write_vector(|w| {
            for (i, k) in keys.iter().enumerate() {
                w.write_opaque(k)?;
                w.write_u16(1)?;
                w.write_opaque(format!("ds{i}").as_bytes())?;
            }
            Ok(())
        })
        .unwrap();
        w.len()
    };
    data.truncate(n);
    let mut out = vec![0u8; 4096];
    let n = {
        let mut w = Writer::new(&mut out);
        w.write_u16(5).unwrap();
        w.write_opaque(&data).unwrap();
        w.len()
    };
    out.truncate(n);
    out
}

/// A client waiting to be added: its KeyPackages, and whether it sent an
/// Add of itself (`Some(invited)`).
struct Joiner {
    m: Member,
    kps: Vec<(Vec<u8>, KeyPackagePrivateKeys)>,
    invites: bool,
    new_member: Option<bool>,
}

/// What a member's state looks like from outside, to check that a refusal
/// changed nothing.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    epoch: u64,
    authenticator: Vec<u8>,
    pending: usize,
    staged: bool,
    inactive: bool,
}

fn snapshot(m: &Member) -> Snapshot {
    Snapshot {
        epoch: m.group.epoch(),
        authenticator: m.group.epoch_authenticator().to_vec(),
        pending: m.group.pending_proposals().count(),
        staged: m.group.has_staged_commit(),
        inactive: m.group.is_inactive(),
    }
}

fn receive_code(e: &ReceiveError) -> String {
    match e {
        ReceiveError::Commit(c) => c.code().to_string(),
        e => format!("{e:?}"),
    }
}

/// Proposals sent each round: by a member, by an external sender (`ds:`),
/// by a new member (`nm:`). Those ending in `!` must be refused on receipt.
const PROPOSALS: [&str; 25] = [
    "member:Add",
    "member:Remove",
    "member:Update",
    "member:Psk",
    "member:Gce",
    "member:ReInit",
    "member:ReInitVersion0",
    "ds:Add",
    "ds:AddBanned",
    "ds:Remove",
    "ds:RemoveBlank",
    "ds:Psk",
    "ds:PskUnknown",
    "ds:Gce",
    "ds:GceUnsupported",
    "ds:ReInit",
    "ds:Update!",
    "ds:ExternalInit!",
    "ds:UnknownIndex!",
    "ds:SignedByMember!",
    "nm:Invited",
    "nm:Uninvited",
    "nm:Banned",
    "nm:Remove!",
    "nm:WrongSigner!",
];

/// Hostile external joins.
const HOSTILE_JOINS: [&str; 12] = [
    "StaleGroupInfo",
    "ResyncOfAnother",
    "ResyncOfAnotherLenient",
    "MemberSignatureKey",
    "LackingCapabilities",
    "BannedCredential",
    "TamperedGroupInfo",
    "TemplateKeyNotSigner",
    "ReplayedExternalCommit",
    "PskUnknownToMembers",
    "PskDuplicate",
    "PskIdsBeyondStagedBytes",
];

/// An external joiner's PSKs: the members' external PSK, one only it
/// holds (`joiner-only`), long-ID ones (`long-...`), and the group's
/// resumption PSK of one epoch, handed over by a member (§8.6).
struct JoinerPsks {
    group_id: &'static [u8],
    epoch: u64,
    resumption: Vec<u8>,
}

impl PskStore for JoinerPsks {
    fn external_psk(&self, psk_id: &[u8]) -> Option<&[u8]> {
        if psk_id == b"joiner-only" {
            Some(b"joiner-only-secret")
        } else if psk_id.starts_with(b"long-") {
            Some(b"long-secret")
        } else {
            Psks.external_psk(psk_id)
        }
    }

    fn resumption_psk(&self, group_id: &[u8], epoch: u64) -> Option<&[u8]> {
        (group_id == self.group_id && epoch == self.epoch).then_some(self.resumption.as_slice())
    }
}

struct World {
    seed: u64,
    suite: CipherSuite,
    rng: TestRng,
    generation: u32,
    group_id: &'static [u8],
    members: Vec<Member>,
    /// Each member's policy: whether it commits invited new members' Adds.
    invites: BTreeMap<&'static str, bool>,
    joiners: Vec<Joiner>,
    /// The external senders' keys and their extension.
    ds: Vec<SignaturePrivateKey>,
    ds_ext: Vec<u8>,
    /// GroupInfos of earlier epochs of this group.
    old_group_infos: Vec<(u64, Vec<u8>)>,
    /// The last external Commit accepted, for a replay.
    last_external: Option<Vec<u8>>,
    next_id: u64,
    stats: Stats,
    sent: Vec<String>,
}

impl World {
    fn pick(&mut self, n: usize) -> usize {
        (self.rng.next_u64() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.rng.next_u64() % 100 < percent
    }

    fn wire_format(&mut self) -> WireFormatPolicy {
        if self.chance(50) { WireFormatPolicy::Public } else { WireFormatPolicy::Private }
    }

    fn fresh_member(&mut self, prefix: &str) -> Member {
        self.next_id += 1;
        let id = self.next_id;
        let seed = self.seed.wrapping_mul(1_000_003).wrapping_add(id).wrapping_add(u64::from(self.suite.to_u16()) << 40);
        Member::with_suite(leak(format!("{prefix}{id}")), seed, self.suite)
    }

    fn key_package(&mut self, m: &mut Member, ext: bool) -> (Vec<u8>, KeyPackagePrivateKeys) {
        key_package_of(m, self.suite, ext, LIFETIME)
    }

    /// A new joiner with a KeyPackage; returns the KeyPackage.
    fn new_joiner(&mut self, prefix: &str, ext: bool, new_member: Option<bool>) -> Vec<u8> {
        let mut m = self.fresh_member(prefix);
        let (kp, keys) = self.key_package(&mut m, ext);
        let invites = self.chance(50);
        self.joiners.push(Joiner { m, kps: vec![(kp.clone(), keys)], invites, new_member });
        kp
    }

    fn room_for_add(&self) -> bool {
        self.members.len() + self.joiners.len() < MAX_MEMBERS
    }

    fn has_senders(&self) -> bool {
        self.members[0].group.extensions().find(5).is_some()
    }

    /// Whether a joiner must list [`EXT`]: the group uses it or requires it.
    fn needs_ext(&self) -> bool {
        let e = self.members[0].group.extensions();
        e.find(EXT).is_some() || e.find(3).is_some()
    }

    /// A valid GroupContextExtensions body: `external_senders` (mostly),
    /// with [`EXT`], its requirement, both or neither.
    fn gce_body(&mut self, unsupported: bool, keep_senders: bool) -> &'static [u8] {
        let mut body = if keep_senders || self.chance(93) { self.ds_ext.clone() } else { Vec::new() };
        let shape = self.pick(4);
        if shape & 1 == 1 {
            body.extend_from_slice(GCE_EXT);
        }
        if shape & 2 == 2 {
            body.extend_from_slice(GCE_REQUIRES_EXT);
        }
        if unsupported {
            body.extend_from_slice(GCE_UNSUPPORTED);
        }
        leak_bytes(body)
    }

    fn reinit(&mut self, version: u16) -> Proposal<'static> {
        let id = leak_bytes(format!("{}-next{}", String::from_utf8_lossy(self.group_id), self.pick(1000)).into_bytes());
        Proposal::ReInit(ReInit { group_id: id, version, cipher_suite: self.suite.to_u16(), extensions: Extensions::default() })
    }

    /// A PublicMessage of `sender` (not a member) signed by `signer`, in
    /// the group's current epoch.
    fn outsider_message(&mut self, sender: Sender, signer: &SignaturePrivateKey, p: &Proposal<'_>) -> Vec<u8> {
        let m = &mut self.members[0];
        let mut buf = vec![0u8; 8192];
        let gc_bytes = m.group.group_context(&mut buf).unwrap().to_vec();
        let gc = EncodedGroupContext::decode(&gc_bytes).unwrap();
        let content = FramedContent {
            group_id: self.group_id,
            epoch: m.group.epoch(),
            sender,
            authenticated_data: b"",
            content: Content::Proposal(*p),
        };
        let mut out = vec![0u8; 16384];
        public_message::sign(&gc, signer, &content, &mut out).unwrap().finish(None, None).unwrap().to_vec()
    }

    /// Every member but `skip` receives `msg`: kept if `keep`, else refused
    /// (each refusal leaving the member unchanged).
    fn deliver_proposal(&mut self, kind: &str, msg: &[u8], skip: Option<usize>, keep: bool, round: usize) {
        for j in 0..self.members.len() {
            if Some(j) == skip {
                continue;
            }
            let before = snapshot(&self.members[j]);
            let mut b = msg.to_vec();
            let r = &mut self.members[j];
            match r.group.process_message_in_memory(&mut b, &Psks, NOW) {
                Ok(Received::Proposal { .. }) if keep => self.stats.inc(format!("kept:{kind}")),
                Err(e) if !keep => {
                    self.stats.inc(format!("recv-refused:{kind}:{}", receive_code(&e)));
                    assert_eq!(snapshot(&self.members[j]), before, "seed {} round {round}: a refused {kind} changed {}", self.seed, self.members[j].name);
                }
                other => panic!(
                    "FINDING seed {} suite {:?} round {round}: {}: {kind} (to be {}): {other:?}",
                    self.seed,
                    self.suite,
                    r.name,
                    if keep { "kept" } else { "refused" }
                ),
            }
        }
    }

    /// One proposal of a random kind.
    fn propose(&mut self, round: usize) {
        let mut kind = PROPOSALS[self.pick(PROPOSALS.len())];
        // Updates are lost to Removes of their sender and external Commits:
        // sent more often.
        if self.chance(12) {
            kind = "member:Update";
        }
        let adds = ["member:Add", "ds:Add", "ds:AddBanned", "nm:Invited", "nm:Uninvited", "nm:Banned"];
        if adds.contains(&kind) && !self.room_for_add() {
            self.stats.inc(format!("substituted:{kind}->member:Remove"));
            kind = "member:Remove";
        }
        self.sent.push(kind.to_string());
        self.stats.inc(format!("sent:{kind}"));
        let i = self.pick(self.members.len());
        let own = self.members[i].group.own_leaf().0;
        let n_leaves = self.members[i].group.tree().n_leaves();
        let others: Vec<u32> = self.members.iter().map(|m| m.group.own_leaf().0).filter(|l| *l != own).collect();
        let any_member: Vec<u32> = self.members.iter().map(|m| m.group.own_leaf().0).collect();
        let mut nonce = [0u8; 32];
        self.rng.fill_bytes(&mut nonce);
        let nonce: &'static [u8] = leak_bytes(nonce.to_vec());
        let psk = |psk_id: &'static [u8]| Proposal::PreSharedKey(PreSharedKey { psk: PreSharedKeyId { psk: Psk::External { psk_id }, psk_nonce: nonce } });
        let gce = |body: &'static [u8]| Proposal::GroupContextExtensions(GroupContextExtensions { extensions: Extensions::from_body(body).unwrap() });
        let add = |kp: &'static [u8]| Proposal::Add(Add { key_package: KeyPackage::decode_exact(kp).unwrap() });
        let (side, _) = kind.split_once(':').unwrap();
        match side {
            "member" => {
                let wf = self.wire_format();
                let mut out = vec![0u8; 16384];
                let msg = if kind == "member:Update" {
                    let m = &mut self.members[i];
                    let t = template(&m.signer, m.name.as_bytes(), true);
                    let mut rng = TestRng(m.rng.next_u64());
                    match m.group.propose_update(&t, wf, &mut rng, &mut out) {
                        Ok(msg) => msg.to_vec(),
                        Err(CreateCommitError::UpdatePending) => {
                            self.stats.inc("send-refused:member:Update:UpdatePending");
                            return;
                        }
                        Err(e) => panic!("seed {} round {round}: an Update: {e:?}", self.seed),
                    }
                } else {
                    let p = match kind {
                        "member:Add" => {
                            let ext = self.needs_ext() || self.chance(70);
                            add(leak_bytes(self.new_joiner("joiner", ext, None)))
                        }
                        "member:Remove" => Proposal::Remove(Remove { removed: if others.is_empty() { own } else { others[self.pick(others.len())] } }),
                        "member:Psk" => psk(b"shared"),
                        "member:Gce" => gce(self.gce_body(false, false)),
                        "member:ReInit" => self.reinit(1),
                        "member:ReInitVersion0" => self.reinit(0),
                        k => unreachable!("{k}"),
                    };
                    let m = &mut self.members[i];
                    match m.group.propose(&p, wf, &mut m.rng, &mut out) {
                        Ok(msg) => msg.to_vec(),
                        Err(e) => panic!("seed {} round {round}: {kind}: {e:?}", self.seed),
                    }
                };
                self.stats.inc(format!("sent-as:{wf:?}"));
                self.deliver_proposal(kind, &msg, Some(i), true, round);
            }
            "ds" => {
                let d = self.pick(self.ds.len());
                let signer = self.ds[d].clone();
                let mut sender = Sender::External(d as u32);
                let mut key = signer.clone();
                let p = match kind {
                    "ds:Add" => {
                        let ext = self.needs_ext() || self.chance(70);
                        add(leak_bytes(self.new_joiner("dsjoiner", ext, None)))
                    }
                    "ds:AddBanned" => add(leak_bytes(self.new_joiner("banned", true, None))),
                    "ds:Remove" => Proposal::Remove(Remove { removed: any_member[self.pick(any_member.len())] }),
                    "ds:RemoveBlank" => {
                        let blank: Vec<u32> = (0..n_leaves).filter(|l| self.members[0].group.tree().leaf_node(LeafIndex(*l)).is_none()).collect();
                        Proposal::Remove(Remove { removed: if blank.is_empty() { n_leaves + 2 } else { blank[self.pick(blank.len())] } })
                    }
                    "ds:Psk" => psk(b"shared"),
                    "ds:PskUnknown" => psk(b"unknown"),
                    "ds:Gce" => gce(self.gce_body(false, true)),
                    "ds:GceUnsupported" => gce(self.gce_body(true, true)),
                    "ds:ReInit" => self.reinit(1),
                    "ds:Update!" => {
                        let j = self.pick(self.members.len());
                        let m = &self.members[j];
                        let leaf = leak_bytes(m.group.tree().leaf_node(m.group.own_leaf()).unwrap().as_bytes().to_vec());
                        Proposal::Update(Update { leaf_node: LeafNode::decode_exact(leaf).unwrap() })
                    }
                    "ds:ExternalInit!" => Proposal::ExternalInit(ExternalInit { kem_output: leak_bytes(vec![7; 32]) }),
                    "ds:UnknownIndex!" => {
                        sender = Sender::External(self.ds.len() as u32 + 3);
                        psk(b"shared")
                    }
                    "ds:SignedByMember!" => {
                        key = self.members[i].signer.clone();
                        psk(b"shared")
                    }
                    k => unreachable!("{k}"),
                };
                // Without external_senders in the group, none is kept.
                let keep = !kind.ends_with('!') && self.has_senders();
                if !self.has_senders() {
                    self.stats.inc("ds:sent-without-external-senders");
                }
                let msg = self.outsider_message(sender, &key, &p);
                self.deliver_proposal(kind, &msg, None, keep, round);
            }
            _ => {
                let (prefix, ext) = match kind {
                    "nm:Invited" => ("invited", true),
                    "nm:Banned" => ("banned", true),
                    _ => ("uninvited", self.needs_ext() || self.chance(70)),
                };
                let invited = kind == "nm:Invited";
                let kp = leak_bytes(self.new_joiner(prefix, ext, Some(invited)));
                let joiner_signer = self.joiners.last().unwrap().m.signer.clone();
                let (p, key) = match kind {
                    "nm:Remove!" => {
                        self.joiners.pop();
                        (Proposal::Remove(Remove { removed: any_member[self.pick(any_member.len())] }), joiner_signer)
                    }
                    "nm:WrongSigner!" => {
                        self.joiners.pop();
                        (add(kp), self.members[i].signer.clone())
                    }
                    _ => (add(kp), joiner_signer),
                };
                let msg = self.outsider_message(Sender::NewMemberProposal, &key, &p);
                self.deliver_proposal(kind, &msg, None, !kind.ends_with('!'), round);
            }
        }
    }

    /// A GroupInfo of member `i` (with the tree, or the tree beside it).
    fn group_info(&mut self, i: usize) -> (Vec<u8>, Option<Vec<u8>>) {
        let with_tree = self.chance(60);
        let m = &mut self.members[i];
        let (mut gi, mut scratch) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
        let gi = m.group.group_info(with_tree, &mut gi, &mut scratch).unwrap().to_vec();
        let tree = (!with_tree).then(|| tree_export(m));
        self.stats.inc(format!("group-info:with-tree={with_tree}"));
        (gi, tree)
    }

    #[allow(clippy::too_many_arguments)]
    fn join_external(
        &mut self,
        joiner: &mut Member,
        gi: &[u8],
        tree: Option<&[u8]>,
        leaf: &LeafTemplate<'_>,
        resync: Option<LeafIndex>,
        psks: &[PreSharedKeyId<'_>],
        config: GroupConfig,
    ) -> Result<Vec<u8>, JoinError> {
        let store = self.joiner_psks();
        let signer = joiner.signer.clone();
        let mut out = vec![0u8; 256 * 1024];
        joiner
            .group
            .join_external(gi, tree, leaf, &signer, resync, psks, &store, config, &mut joiner.rng, &Sequential, &mut out)
            .map(<[u8]>::to_vec)
    }

    /// What an external joiner holds of PSKs: see [`JoinerPsks`] (this
    /// epoch's resumption PSK).
    fn joiner_psks(&self) -> JoinerPsks {
        let m = &self.members[0];
        let epoch = m.group.epoch();
        JoinerPsks { group_id: self.group_id, epoch, resumption: m.group.resumption_psk(epoch).expect("this epoch's").to_vec() }
    }

    /// A PreSharedKeyID of `psk` with a fresh nonce.
    fn psk_id(&mut self, psk: Psk<'static>) -> PreSharedKeyId<'static> {
        let mut nonce = [0u8; 32];
        self.rng.fill_bytes(&mut nonce);
        PreSharedKeyId { psk, psk_nonce: leak_bytes(nonce.to_vec()) }
    }

    /// This epoch's resumption PSK of the group (usage application).
    fn resumption(&self) -> Psk<'static> {
        Psk::Resumption { usage: ResumptionPskUsage::Application, psk_group_id: self.group_id, psk_epoch: self.members[0].group.epoch() }
    }

    /// The PSKs of a valid external Commit (§12.4.3.2: zero or more): half
    /// the time none, else one to three, each the members' external PSK or
    /// this epoch's resumption PSK (the joiner is handed it, as a resyncing
    /// member's new client may be), each of its own nonce (distinct PSKs,
    /// §12.2).
    fn external_psks(&mut self) -> Vec<PreSharedKeyId<'static>> {
        let mut ids = Vec::new();
        if self.chance(50) {
            return ids;
        }
        for _ in 0..1 + self.pick(3) {
            let psk = if self.chance(50) { Psk::External { psk_id: b"shared" } } else { self.resumption() };
            ids.push(self.psk_id(psk));
        }
        ids
    }

    /// Every member refuses `commit` and stays unchanged; the refusals'
    /// codes must contain `want`.
    fn all_refuse_commit(&mut self, kind: &str, commit: &[u8], want: &str, round: usize) {
        for j in 0..self.members.len() {
            let before = snapshot(&self.members[j]);
            let mut b = commit.to_vec();
            let r = &mut self.members[j];
            match r.group.process_message_in_memory(&mut b, &Psks, NOW) {
                Err(e) => {
                    let code = receive_code(&e);
                    assert!(
                        code.contains(want),
                        "FINDING seed {} suite {:?} round {round}: {}: {kind} refused for {code}, not {want}",
                        self.seed,
                        self.suite,
                        r.name
                    );
                    self.stats.inc(format!("join-refused-by-members:{kind}:{code}"));
                }
                other => panic!("FINDING seed {} suite {:?} round {round}: {} accepted a hostile external Commit ({kind}): {other:?}", self.seed, self.suite, r.name),
            }
            assert_eq!(snapshot(&self.members[j]), before, "seed {} round {round}: {kind} changed {}", self.seed, self.members[j].name);
        }
    }

    /// A hostile external join: refused by the joiner (typed, its slot
    /// left empty) or by every member.
    fn hostile_join(&mut self, round: usize) {
        let mut kind = HOSTILE_JOINS[self.pick(HOSTILE_JOINS.len())];
        let epoch = self.members[0].group.epoch();
        let stale: Vec<Vec<u8>> = self.old_group_infos.iter().filter(|(e, _)| *e < epoch).map(|(_, gi)| gi.clone()).collect();
        if kind == "StaleGroupInfo" && stale.is_empty() {
            kind = "TamperedGroupInfo";
        }
        if kind == "ReplayedExternalCommit" && self.last_external.is_none() {
            kind = "MemberSignatureKey";
        }
        if kind == "LackingCapabilities" && !self.needs_ext() {
            self.stats.inc("substituted:LackingCapabilities->BannedCredential (nothing required)");
            kind = "BannedCredential";
        }
        if kind.starts_with("Resync") && self.members.len() < 2 {
            kind = "TamperedGroupInfo";
        }
        self.stats.inc(format!("hostile-join:{kind}"));
        if kind == "ReplayedExternalCommit" {
            let c = self.last_external.clone().unwrap();
            self.all_refuse_commit(kind, &c, "WrongEpoch", round);
            return;
        }
        let g = self.pick(self.members.len());
        let (mut gi, tree) = self.group_info(g);
        let mut joiner = self.fresh_member("outsider");
        let mut leaf = template(&joiner.signer, joiner.name.as_bytes(), true);
        let mut resync = None;
        let mut cfg = config(true);
        let mut psks: Option<Vec<PreSharedKeyId<'static>>> = None;
        // What the joiner must answer, or (None) what every member must.
        let (want_joiner, want_members): (Option<JoinError>, &str) = match kind {
            "StaleGroupInfo" => {
                gi = stale[self.pick(stale.len())].clone();
                // The stale GroupInfo carries its tree.
                (None, "WrongEpoch")
            }
            "ResyncOfAnother" | "ResyncOfAnotherLenient" => {
                let j = self.pick(self.members.len());
                let target = &self.members[j];
                // The target's credential, a key of the joiner's own.
                leaf = template(&joiner.signer, target.name.as_bytes(), true);
                resync = Some(target.group.own_leaf());
                if kind == "ResyncOfAnotherLenient" {
                    cfg = GroupConfig { identity: &LENIENT, ..GroupConfig::DEFAULT };
                    (None, "LEAF-SUCCESSOR")
                } else {
                    (Some(JoinError::Commit(CommitError::InvalidSuccessor)), "")
                }
            }
            "MemberSignatureKey" => {
                let j = self.pick(self.members.len());
                joiner.signer = self.members[j].signer.clone();
                leaf = template(&joiner.signer, joiner.name.as_bytes(), true);
                (Some(JoinError::Commit(CommitError::DuplicateKey)), "")
            }
            "LackingCapabilities" => {
                leaf = template(&joiner.signer, joiner.name.as_bytes(), false);
                let uses = self.members[0].group.extensions().find(EXT).is_some();
                let want = if uses { JoinError::UnsupportedGroupExtensions } else { JoinError::Commit(CommitError::UnsupportedCapabilities) };
                (Some(want), "")
            }
            "BannedCredential" => {
                leaf = template(&joiner.signer, b"banned-outsider", true);
                (None, "LEAF-CRED")
            }
            "TamperedGroupInfo" => {
                let n = gi.len();
                gi[n - 1] ^= 1;
                (Some(JoinError::InvalidGroupInfo), "")
            }
            "TemplateKeyNotSigner" => {
                let other = self.fresh_member("other");
                leaf = template(&other.signer, joiner.name.as_bytes(), true);
                (Some(JoinError::SignatureKeyNotOurs), "")
            }
            // PSKs (§12.4.3.2): one the members do not hold; one
            // PreSharedKeyID twice (§12.2); IDs longer than the members keep
            // of a staged Commit's.
            "PskUnknownToMembers" => {
                let mut ids = self.external_psks();
                let unknown = self.psk_id(Psk::External { psk_id: b"joiner-only" });
                ids.insert(self.pick(ids.len() + 1), unknown);
                psks = Some(ids);
                (None, "PRP-PSK")
            }
            "PskDuplicate" => {
                let psk = if self.chance(50) { Psk::External { psk_id: b"shared" } } else { self.resumption() };
                let id = self.psk_id(psk);
                psks = Some(vec![id, id]);
                (Some(JoinError::Commit(CommitError::DuplicatePsk)), "")
            }
            "PskIdsBeyondStagedBytes" => {
                let n = 9 + self.pick(4);
                let ids = (0..n).map(|i| self.psk_id(Psk::External { psk_id: leak_bytes(format!("long-{i:095}").into_bytes()) })).collect();
                psks = Some(ids);
                (Some(JoinError::Commit(CommitError::CapacityExceeded(Capacity::StagedPskBytes))), "")
            }
            k => unreachable!("{k}"),
        };
        let psks = match psks {
            Some(ids) => ids,
            None if self.chance(20) => vec![self.psk_id(Psk::External { psk_id: b"shared" })],
            None => Vec::new(),
        };
        let result = self.join_external(&mut joiner, &gi, tree.as_deref(), &leaf, resync, &psks, cfg);
        match (result, want_joiner) {
            (Err(e), Some(want)) if e == want => {
                assert!(joiner.group.is_inactive(), "seed {} round {round}: {kind}: the joiner's slot was left in use", self.seed);
                self.stats.inc(format!("join-refused-by-joiner:{kind}:{e:?}"));
            }
            (Ok(commit), None) => self.all_refuse_commit(kind, &commit, want_members, round),
            (other, want) => panic!(
                "FINDING seed {} suite {:?} round {round}: hostile external join {kind}: {:?}, wanted the joiner's {want:?} or the members' {want_members}",
                self.seed,
                self.suite,
                other.map(|c| c.len())
            ),
        }
    }

    /// Keeps a GroupInfo of this epoch for a later stale join.
    fn keep_group_info(&mut self) {
        let g = self.pick(self.members.len());
        let (mut gi, mut scratch) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
        let gi = self.members[g].group.group_info(true, &mut gi, &mut scratch).unwrap().to_vec();
        let epoch = self.members[g].group.epoch();
        self.old_group_infos.push((epoch, gi));
        if self.old_group_infos.len() > 4 {
            self.old_group_infos.remove(0);
        }
    }

    /// After an epoch: everyone agrees, trees equal, nothing pending.
    fn check_agreement(&mut self, round: usize) {
        check_agreement(&mut self.members, self.seed, round);
        self.stats.inc("epochs-agreed");
    }

    /// Every member but `skip` processes our `commit` (expecting `summary`'s
    /// counts) and merges; those it removes are then dropped.
    #[allow(clippy::needless_range_loop)]
    fn all_accept(&mut self, commit: &[u8], skip: Option<usize>, summary: &mls_nostd::group::StagedCommitSummary, what: &str, round: usize) {
        let mut removed = vec![false; self.members.len()];
        for j in 0..self.members.len() {
            if Some(j) == skip {
                continue;
            }
            let mut b = commit.to_vec();
            let r = &mut self.members[j];
            match r.group.process_message_in_memory(&mut b, &Psks, NOW) {
                Ok(Received::Commit(s)) => {
                    assert_eq!(
                        (s.adds, s.removes, s.updates, s.psks, s.reinit, s.extensions_changed),
                        (summary.adds, summary.removes, summary.updates, summary.psks, summary.reinit, summary.extensions_changed)
                    );
                    removed[j] = s.removes_us;
                    r.group.merge_staged_commit_in_memory().unwrap();
                    self.stats.inc("commits-accepted");
                }
                other => panic!(
                    "FINDING seed {} suite {:?} round {round}: {} refused {what} ({summary:?}; sent this round: {:?}): {other:?}",
                    self.seed,
                    self.suite,
                    r.name,
                    self.sent
                ),
            }
        }
        for (m, _) in self.members.iter_mut().zip(&removed).filter(|(_, r)| **r) {
            assert!(m.group.is_inactive(), "{}: removed but active", m.name);
            let (mut gi, mut scratch) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
            assert_eq!(m.group.group_info(true, &mut gi, &mut scratch).err(), Some(GroupError::Inactive), "{}: removed", m.name);
        }
        let mut k = 0;
        self.members.retain(|_| {
            k += 1;
            !removed[k - 1]
        });
        self.stats.add("members-removed", removed.iter().filter(|r| **r).count() as u64);
    }

    /// A random member commits the pending proposals; the others follow;
    /// new members join by the Welcome.
    fn commit(&mut self, round: usize) {
        let c = self.pick(self.members.len());
        let force_path = self.chance(40);
        let wire_format = self.wire_format();
        let committer = self.members[c].name;
        let invites = self.invites[committer];
        let pending = self.members[c].group.pending_proposals().count();
        let opts = CommitOptions {
            proposals: &[],
            include_pending: true,
            force_path,
            ratchet_tree_in_welcome: self.chance(70),
            wire_format,
            padding: 16,
            authenticated_data: b"",
            leaf: None,
        };
        let ratchet_tree_in_welcome = opts.ratchet_tree_in_welcome;
        let (mut mb, mut wb, mut gb) = buffers();
        let bufs = CommitBuffers { message: &mut mb, welcome: &mut wb, group_info: &mut gb };
        let m = &mut self.members[c];
        let out = match m.group.commit_in_memory(&opts, &Psks, NOW, &mut m.rng, &Sequential, bufs) {
            Ok(out) => out,
            Err(e) => panic!(
                "FINDING seed {} suite {:?} round {round}: {committer} could not commit {pending} pending proposals ({:?}): {e:?}",
                self.seed, self.suite, self.sent
            ),
        };
        let summary = out.summary;
        let commit = out.commit.to_vec();
        let welcome = out.welcome.map(<[u8]>::to_vec);
        self.stats.inc("commits-created");
        self.stats.inc(format!("commit-shape:path={}:{wire_format:?}", summary.has_path));
        self.stats.add("committed:adds", summary.adds.into());
        self.stats.add("committed:removes", summary.removes.into());
        self.stats.add("committed:updates", summary.updates.into());
        self.stats.add("committed:psks", summary.psks.into());
        if summary.extensions_changed {
            self.stats.inc("committed:gce");
        }
        self.members[c].group.merge_staged_commit_in_memory().unwrap();
        self.all_accept(&commit, Some(c), &summary, "a member's Commit", round);

        // The new members join by the Welcome: those whose KeyPackage's leaf
        // is in the tree.
        let joiners = std::mem::take(&mut self.joiners);
        let leaves: Vec<(Vec<u8>, Vec<u8>)> = {
            let tree = self.members[0].group.tree();
            (0..tree.n_leaves())
                .filter_map(|l| tree.leaf_node(LeafIndex(l)))
                .map(|l| (l.fields.signature_key.to_vec(), l.fields.encryption_key.to_vec()))
                .collect()
        };
        let tree = (!ratchet_tree_in_welcome).then(|| tree_export(&mut self.members[0]));
        let mut joined = 0u32;
        for mut j in joiners {
            let chosen = j.kps.iter().find(|(kp, _)| {
                let kp = KeyPackage::decode_exact(kp).unwrap();
                let f = &kp.tbs.leaf_node.fields;
                leaves.iter().any(|(s, e)| s == f.signature_key && e == f.encryption_key)
            });
            let name = j.m.name;
            // A new member's Add of itself: committed only if the committer's
            // policy authorizes it (§12.1.8.2).
            if let Some(invited) = j.new_member {
                let authorized = invited && invites;
                match (chosen.is_some(), authorized) {
                    (true, true) => self.stats.inc("new-member-add:committed"),
                    (false, false) => self.stats.inc(format!("new-member-add:left-out:invited={invited}:committer-invites={invites}")),
                    (true, false) => panic!("FINDING seed {} round {round}: {committer} committed {name}'s unauthorized Add of itself", self.seed),
                    // (Its GroupContextExtensions may have made it not fit.)
                    (false, true) => {
                        assert!(summary.extensions_changed, "FINDING seed {} round {round}: {committer} left out {name}'s authorized Add of itself", self.seed);
                        self.stats.inc("new-member-add:left-out:authorized-but-gce")
                    }
                }
            }
            let Some((kp, keys)) = chosen else {
                self.stats.inc("joiners-not-added");
                continue;
            };
            let welcome = welcome.as_ref().unwrap_or_else(|| panic!("seed {}: {name} added without a Welcome", self.seed));
            let params = JoinParams {
                executor: &Sequential,
                key_package: kp,
                keys,
                signer: &j.m.signer,
                ratchet_tree: tree.as_deref(),
                psks: &Psks,
                config: config(j.invites),
            };
            let mut buf = vec![0u8; welcome.len()];
            if let Err(e) = j.m.group.join_in_memory(welcome, &params, &mut buf) {
                panic!("FINDING seed {} suite {:?} round {round}: {name} could not join: {e:?}", self.seed, self.suite);
            }
            joined += 1;
            self.stats.inc(format!("joined-by-welcome:{}", name.trim_end_matches(|c: char| c.is_ascii_digit())));
            self.invites.insert(name, j.invites);
            self.members.push(j.m);
        }
        assert_eq!(joined, summary.adds, "seed {} round {round}: joined", self.seed);
        self.stats.add("members-joined-by-welcome", joined.into());
        self.check_agreement(round);
    }

    /// A valid external join (a new client, or a member's new client
    /// resyncing its leaf): every member accepts it.
    fn external_join(&mut self, round: usize) {
        let resync = self.members.len() > 2 && self.chance(40);
        let g = self.pick(self.members.len());
        let (gi, tree) = self.group_info(g);
        let psks = self.external_psks();
        let invites = self.chance(50);
        let (mut joiner, leaf, old) = if resync {
            let j = self.pick(self.members.len());
            let mut m = self.fresh_member("resync");
            let target = &self.members[j];
            // The member's new client: its credential and signature key.
            m.name = target.name;
            m.signer = target.signer.clone();
            let leaf = template(&m.signer, m.name.as_bytes(), true);
            (m, leaf, Some(target.group.own_leaf()))
        } else {
            let m = self.fresh_member("external");
            let ext = self.needs_ext() || self.chance(70);
            let leaf = template(&m.signer, m.name.as_bytes(), ext);
            (m, leaf, None)
        };
        let what = if resync { "external:Resync" } else { "external:New" };
        let commit = match self.join_external(&mut joiner, &gi, tree.as_deref(), &leaf, old, &psks, config(invites)) {
            Ok(c) => c,
            Err(e) => panic!("FINDING seed {} suite {:?} round {round}: {what} could not be built ({} PSKs): {e:?}", self.seed, self.suite, psks.len()),
        };
        self.stats.inc(format!("{what}:psk={}", !psks.is_empty()));
        self.stats.inc(format!("external-psks:{}", psks.len()));
        if psks.iter().any(|p| matches!(p.psk, Psk::Resumption { .. })) {
            self.stats.inc("external-psks:with-resumption");
        }
        let summary = mls_nostd::group::StagedCommitSummary {
            committer: joiner.group.own_leaf(),
            new_epoch: joiner.group.epoch(),
            adds: 0,
            removes: u32::from(resync),
            updates: 0,
            psks: psks.len() as u32,
            extensions_changed: false,
            reinit: false,
            has_path: true,
            removes_us: false,
        };
        let before = self.members.len();
        self.all_accept(&commit, None, &summary, what, round);
        assert_eq!(self.members.len() + usize::from(resync), before);
        self.invites.insert(joiner.name, invites);
        self.members.push(joiner);
        self.last_external = Some(commit);
        let dropped = self.joiners.len();
        self.joiners.clear();
        self.stats.add("joiners-dropped-by-external-commit", dropped as u64);
        self.stats.inc("external-commits-accepted");
        self.check_agreement(round);
    }

    /// A ReInit Commit of a pending ReInit, if there is one: hostile
    /// variants first (refused, nothing changed), then the Commit every
    /// member accepts; the group is then inactive. Returns whether the
    /// group ended.
    fn reinit_commit(&mut self, round: usize) -> bool {
        let c = self.pick(self.members.len());
        let reinits: Vec<(HashValue, u16)> = self.members[c]
            .group
            .pending_proposals()
            .filter_map(|p| match Proposal::decode_exact(p.proposal) {
                Ok(Proposal::ReInit(r)) => Some((p.reference, r.version)),
                _ => None,
            })
            .collect();
        let others: Vec<HashValue> = self.members[c]
            .group
            .pending_proposals()
            .filter(|p| !matches!(Proposal::decode_exact(p.proposal), Ok(Proposal::ReInit(_))))
            .map(|p| p.reference)
            .collect();
        if reinits.is_empty() {
            return false;
        }
        let (reference, version) = reinits[self.pick(reinits.len())];
        let wire_format = self.wire_format();
        let force_path = self.chance(30);
        let other_leaf = self.members.iter().map(|m| m.group.own_leaf().0).find(|l| *l != self.members[c].group.own_leaf().0);
        let remove = other_leaf.map(|removed| Proposal::Remove(Remove { removed }));
        let attempt = |m: &mut Member, reference: &HashValue, by_value: &[Proposal<'_>], include_pending: bool| {
            let opts = CommitOptions {
                proposals: by_value,
                include_pending,
                force_path,
                ratchet_tree_in_welcome: true,
                wire_format,
                padding: 0,
                authenticated_data: b"",
                leaf: None,
            };
            let (mut mb, mut wb, mut gb) = buffers();
            let bufs = CommitBuffers { message: &mut mb, welcome: &mut wb, group_info: &mut gb };
            m.group
                .commit_reinit_in_memory(reference, &opts, &Psks, NOW, &mut m.rng, &Sequential, bufs)
                .map(|o| (o.commit.to_vec(), o.summary))
        };
        // Hostile: with other proposals, or of a reference that is no ReInit.
        let before = snapshot(&self.members[c]);
        let mut hostile: Vec<(&str, Option<HashValue>, bool, CreateCommitError)> = vec![
            ("WithPending", Some(reference), true, CommitError::ReInitWithOtherProposals.into()),
            ("NotAReInit", others.first().copied().or(HashValue::from_slice(&[7; 32]).ok()), false, CreateCommitError::NoPendingReInit),
        ];
        if remove.is_some() {
            hostile.push(("WithByValue", Some(reference), false, CommitError::ReInitWithOtherProposals.into()));
        }
        let k = self.pick(hostile.len());
        let (name, r, include_pending, want) = hostile.swap_remove(k);
        let by_value: Vec<Proposal<'_>> = if name == "WithByValue" { remove.into_iter().collect() } else { Vec::new() };
        let got = attempt(&mut self.members[c], &r.unwrap(), &by_value, include_pending);
        assert_eq!(got.err(), Some(want), "seed {} round {round}: hostile ReInit Commit {name}", self.seed);
        assert_eq!(snapshot(&self.members[c]), before, "seed {} round {round}: hostile ReInit Commit {name} changed the group", self.seed);
        self.stats.inc(format!("reinit-commit-refused-by-committer:{name}"));

        let got = attempt(&mut self.members[c], &reference, &[], false);
        if version == 0 {
            // §12.1.5: not to a version below the group's.
            assert_eq!(got.err(), Some(CommitError::InvalidReInit.into()), "seed {} round {round}: a ReInit to version 0", self.seed);
            assert_eq!(snapshot(&self.members[c]), before);
            self.stats.inc("reinit-commit-refused-by-committer:Version0");
            return false;
        }
        let (commit, summary) = got.unwrap_or_else(|e| panic!("FINDING seed {} round {round}: a ReInit Commit: {e:?}", self.seed));
        assert!(summary.reinit);
        self.stats.inc(format!("reinit-commit:{wire_format:?}"));
        self.stats.inc("commits-created");
        self.members[c].group.merge_staged_commit_in_memory().unwrap();
        self.all_accept(&commit, Some(c), &summary, "a ReInit Commit", round);
        let params = self.members[c].group.reinit().cloned().expect("the committer's ReInit");
        for j in 0..self.members.len() {
            let m = &mut self.members[j];
            assert!(m.group.is_inactive(), "seed {} round {round}: {} active after a ReInit", self.seed, m.name);
            assert_eq!(m.group.reinit(), Some(&params));
            // §11.2: the group must not be used: typed refusals.
            let mut out = vec![0u8; 16384];
            let p = Proposal::PreSharedKey(PreSharedKey { psk: PreSharedKeyId { psk: Psk::External { psk_id: b"shared" }, psk_nonce: &[1; 32] } });
            assert_eq!(m.group.propose(&p, WireFormatPolicy::Public, &mut m.rng, &mut out).err(), Some(CreateCommitError::Inactive));
            let t = template(&m.signer, m.name.as_bytes(), true);
            let upd = m.group.propose_update(&t, WireFormatPolicy::Public, &mut TestRng(1), &mut out).err();
            assert_eq!(upd, Some(CreateCommitError::Inactive));
            assert_eq!(m.group.protect_application_in_memory(b"x", b"", 0, &mut TestRng(2), &mut out).err(), Some(ReceiveError::Inactive));
            let mut again = commit.clone();
            assert_eq!(m.group.process_message_in_memory(&mut again, &Psks, NOW).err(), Some(ReceiveError::Inactive));
            let (mut mb, mut wb, mut gb) = buffers();
            let bufs = CommitBuffers { message: &mut mb, welcome: &mut wb, group_info: &mut gb };
            let opts = CommitOptions { include_pending: true, ..CommitOptions::DEFAULT };
            assert_eq!(
                m.group.commit_in_memory(&opts, &Psks, NOW, &mut m.rng, &Sequential, bufs).err(),
                Some(CreateCommitError::Inactive)
            );
            let (mut gi, mut scratch) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
            // (It signed a GroupInfo for the ended epoch: fixed, see
            // group_rejections::group_info_of_an_ended_group_refused.)
            assert_eq!(m.group.group_info(true, &mut gi, &mut scratch).err(), Some(GroupError::Inactive));
            self.stats.inc("after-reinit:refused-typed");
        }
        self.stats.inc("reinit-ended-groups");
        self.stats.inc("epochs-agreed");
        true
    }

    /// A new group (generation `self.generation`), Alice's, with the
    /// external senders and three members added.
    fn start_group(&mut self) {
        self.generation += 1;
        self.group_id = leak_bytes(format!("sa-ext-{}-{}", self.seed, self.generation).into_bytes());
        self.members.clear();
        self.joiners.clear();
        self.old_group_infos.clear();
        self.last_external = None;
        self.ds = (0..2).map(|_| self.fresh_member("ds").signer).collect();
        let keys: Vec<Vec<u8>> = self.ds.iter().map(|k| k.public_key().as_bytes().to_vec()).collect();
        self.ds_ext = external_senders_extension(&keys);
        let mut ext = self.ds_ext.clone();
        if self.chance(50) {
            ext.extend_from_slice(GCE_EXT);
        }
        let ext = leak_bytes(ext);
        let mut alice = self.fresh_member("alice");
        let invites = self.chance(50);
        let params = CreateParams {
            suite: self.suite,
            group_id: self.group_id,
            credential: Credential::Basic { identity: alice.name.as_bytes() },
            lifetime: LIFETIME,
            capabilities: capabilities(true),
            extensions: Extensions::from_body(ext).unwrap(),
            config: config(invites),
        };
        let signer = alice.signer.clone();
        alice.group.create(&params, &signer, &mut alice.rng).unwrap();
        self.invites.insert(alice.name, invites);
        self.members.push(alice);
        for _ in 0..3 {
            let kp = self.new_joiner("member", true, None);
            let p = Proposal::Add(Add { key_package: KeyPackage::decode_exact(&kp).unwrap() });
            let a = &mut self.members[0];
            let mut out = vec![0u8; 16384];
            let msg = a.group.propose(&p, WireFormatPolicy::Public, &mut a.rng, &mut out).unwrap().to_vec();
            self.deliver_proposal("start:Add", &msg, Some(0), true, 0);
            self.commit(0);
        }
        self.stats.inc("groups-started");
    }
}

fn run(seed: u64, suite: CipherSuite, rounds: usize) -> Stats {
    let t0 = Instant::now();
    println!(
        "self_acceptance_external: seed {seed}, suite {suite:?} ({rounds} rounds; replay with SELF_ACCEPTANCE_EXTERNAL_SEED={seed})"
    );
    let mut w = World {
        seed,
        suite,
        rng: TestRng(seed ^ u64::from(suite.to_u16()).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        generation: 0,
        group_id: b"",
        members: Vec::new(),
        invites: BTreeMap::new(),
        joiners: Vec::new(),
        ds: Vec::new(),
        ds_ext: Vec::new(),
        old_group_infos: Vec::new(),
        last_external: None,
        next_id: 0,
        stats: Stats::default(),
        sent: Vec::new(),
    };
    w.start_group();
    for round in 1..=rounds {
        w.sent.clear();
        w.keep_group_info();
        for _ in 0..1 + w.pick(5) {
            w.propose(round);
        }
        for _ in 0..w.pick(3) {
            w.hostile_join(round);
        }
        let ended = if w.chance(20) { w.reinit_commit(round) } else { false };
        if ended {
            w.start_group();
        } else if w.members.len() < MAX_MEMBERS && w.chance(25) {
            w.external_join(round);
        } else {
            w.commit(round);
        }
        w.stats.inc("rounds");
    }
    println!("seed {seed} suite {suite:?}: {:.2?}", t0.elapsed());
    w.stats.print(90);
    w.stats
}

/// The counts show the run did what it is for (one suite's run).
fn check(s: &Stats, rounds: u64) {
    assert_eq!(s.get("rounds"), rounds);
    for k in PROPOSALS {
        assert!(s.get(&format!("sent:{k}")) >= rounds / 40, "{k} sent {} times", s.get(&format!("sent:{k}")));
    }
    for k in HOSTILE_JOINS {
        assert!(s.get(&format!("hostile-join:{k}")) >= rounds / 50, "{k} tried {} times", s.get(&format!("hostile-join:{k}")));
    }
    // Hostile proposals refused on receipt (by every receiver).
    for k in PROPOSALS.iter().filter(|k| k.ends_with('!')) {
        assert!(s.sum(&format!("recv-refused:{k}:")) >= rounds / 8, "{k} refused");
    }
    // Valid ones kept.
    for k in ["ds:Add", "ds:Remove", "ds:Psk", "ds:Gce", "ds:ReInit", "nm:Invited", "nm:Uninvited", "member:ReInit", "member:Update"] {
        assert!(s.get(&format!("kept:{k}")) >= rounds / 8, "{k} kept");
    }
    assert!(s.get("commits-accepted") >= 4 * rounds, "commits accepted");
    assert!(s.get("epochs-agreed") >= rounds, "epochs agreed");
    assert!(s.get("external-commits-accepted") >= rounds / 8, "external commits");
    assert!(s.sum("external:Resync") >= rounds / 20, "resyncs");
    assert!(s.sum("external:New") >= rounds / 15, "new external joiners");
    // External Commits of several PSKs (§12.4.3.2), this group's
    // resumption PSK among them.
    assert!(s.get("external-psks:2") + s.get("external-psks:3") >= rounds / 50, "external joins with 2 or 3 PSKs");
    assert!(s.get("external-psks:with-resumption") >= rounds / 50, "external joins with a resumption PSK");
    assert!(s.get("group-info:with-tree=false") >= rounds / 5, "GroupInfos without the tree");
    assert!(s.sum("join-refused-by-joiner:") >= rounds / 3, "hostile joins refused by the joiner");
    assert!(s.sum("join-refused-by-members:") >= rounds, "hostile joins refused by the members");
    assert!(s.sum("new-member-add:left-out:") >= rounds / 15, "new members' Adds left out");
    assert!(s.get("reinit-ended-groups") >= 1, "ReInit Commits");
    assert!(s.get("after-reinit:refused-typed") >= 3, "ended groups refuse");
    assert!(s.get("members-joined-by-welcome") >= rounds / 8, "members joined");
    assert!(s.get("joined-by-welcome:dsjoiner") >= rounds / 50, "external senders' Adds committed");
    assert!(s.get("members-removed") >= rounds / 8, "members removed");
    assert!(s.get("committed:updates") >= rounds / 8, "updates committed");
    assert!(s.get("committed:psks") >= rounds / 15, "psks committed");
    assert!(s.get("committed:gce") >= rounds / 30, "GCEs committed");
    assert!(s.get("joiners-not-added") >= rounds / 8, "hostile Adds left out");
    for shape in ["path=true:Public", "path=true:Private", "path=false:Public", "path=false:Private"] {
        assert!(s.get(&format!("commit-shape:{shape}")) >= rounds / 50, "{shape}");
    }
}

/// The rarer events, over one seed's runs (every suite).
fn check_seed(s: &Stats) {
    assert!(s.get("new-member-add:committed") >= 3, "new members' Adds committed");
    assert!(s.get("joined-by-welcome:invited") >= 3, "invited new members joined");
    assert!(s.get("new-member-add:left-out:invited=true:committer-invites=false") >= 2, "invited Adds left out by a closed policy");
    assert!(s.get("new-member-add:left-out:invited=false:committer-invites=true") >= 2, "uninvited Adds left out by an inviting policy");
    assert!(s.get("external:New:psk=true") + s.get("external:Resync:psk=true") >= 5, "external joins with a PSK");
    assert!(s.get("reinit-ended-groups") >= 5, "ReInit Commits");
    assert!(s.get("reinit-commit:Public") >= 1 && s.get("reinit-commit:Private") >= 1, "ReInit Commits of both wire formats");
    for k in ["NotAReInit", "Version0", "WithByValue", "WithPending"] {
        assert!(s.get(&format!("reinit-commit-refused-by-committer:{k}")) >= 1, "hostile ReInit Commit {k}");
    }
    assert!(s.get("join-refused-by-joiner:LackingCapabilities:Commit(UnsupportedCapabilities)") >= 1, "a leaf lacking required capabilities");
    assert!(s.get("join-refused-by-joiner:LackingCapabilities:UnsupportedGroupExtensions") >= 1, "a leaf lacking a GroupContext extension");
    assert!(s.get("join-refused-by-joiner:PskDuplicate:Commit(DuplicatePsk)") >= 3, "a PreSharedKeyID twice");
    assert!(
        s.get("join-refused-by-joiner:PskIdsBeyondStagedBytes:Commit(CapacityExceeded(StagedPskBytes))") >= 3,
        "PSK IDs beyond what the members keep"
    );
    assert!(s.get("join-refused-by-members:PskUnknownToMembers:PRP-PSK") >= 3, "a PSK the members do not hold");
}

#[test]
fn own_external_commits_and_external_proposals_are_accepted() {
    let rounds: usize = std::env::var("SELF_ACCEPTANCE_EXTERNAL_ROUNDS").ok().map_or(200, |r| r.parse().expect("rounds"));
    let seeds: Vec<u64> = match std::env::var("SELF_ACCEPTANCE_EXTERNAL_SEED") {
        Ok(s) => vec![s.parse().expect("a u64 seed")],
        Err(_) => vec![0x5e1f_e87e_0001, 0x5e1f_e87e_0002],
    };
    let t0 = Instant::now();
    // One thread per seed (CI has two CPUs; the seeds are independent).
    std::thread::scope(|scope| {
        for seed in seeds {
            scope.spawn(move || {
                let mut total = Stats::default();
                for suite in [
                    CipherSuite::X25519Aes128GcmSha256Ed25519,
                    CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519,
                    CipherSuite::P256Aes128GcmSha256P256,
                ] {
                    let stats = run(seed, suite, rounds);
                    check(&stats, rounds as u64);
                    for (k, v) in stats.0 {
                        total.add(&k, v);
                    }
                }
                check_seed(&total);
            });
        }
    });
    println!("total: {:.2?}", t0.elapsed());
}
