//! Our own members accept what our own members send (RFC 9420 §12.4:
//! a Commit covers "all valid proposals received", and each member then
//! validates it, §12.2, §12.4.2). A seeded randomized run: each round some
//! members send proposals by reference, valid ones and hostile but
//! well-formed ones (keys clashing with members' or other pending ones',
//! unsupported GroupContextExtensions, unknown PSKs, credentials the
//! identity policy refuses, KeyPackages of another suite or expired...);
//! every other member receives them; then a random member commits with the
//! pending proposals. Its Commit must be created, every other member must
//! accept it, and all must agree afterwards; new members join by the
//! Welcome, removed ones stop.
//!
//! A second run does the same in a group of 64 leaves that mass Adds grow
//! to about 40 members and mass Removes shrink to a few, again and again
//! (deeper trees: blank parents over large subtrees, truncation, unmerged
//! leaves several levels up, large resolutions).
//!
//! Seeds: `SELF_ACCEPTANCE_SEED=<u64>` replays one seed (printed by each
//! run); `SELF_ACCEPTANCE_ROUNDS` changes the number of rounds (the large
//! run: `SELF_ACCEPTANCE_LARGE_SEED`, `SELF_ACCEPTANCE_LARGE_ROUNDS`).
use mls_nostd::codec::Decode;
use mls_nostd::credential::Credential;
use mls_nostd::crypto::CipherSuite;
use mls_nostd::executor::Sequential;
use mls_nostd::extensions::Extensions;
use mls_nostd::group::{
    CommitBuffers, CommitError, CommitOptions, CreateCommitError, CreateParams, JoinParams, Received, WireFormatPolicy,
};
use mls_nostd::key_package::{KeyPackage, KeyPackagePrivateKeys};
use mls_nostd::leaf_node::Lifetime;
use mls_nostd::messages::proposal::{
    Add, ExternalInit, GroupContextExtensions, PreSharedKey, Proposal, ReInit, Remove,
};
use mls_nostd::psk::{PreSharedKeyId, Psk, ResumptionPskUsage};
use mls_nostd::tree_math::LeafIndex;
use mls_tests::member::{buffers, MemberOf, LIFETIME, NOW};
use mls_tests::TestRng;
use rand_core::Rng;
use std::time::Instant;

#[path = "common/random_group.rs"]
#[allow(dead_code)]
mod random_group;
use random_group::{
    capabilities, check_agreement, config, create_code, key_package_of, leak, lists_ext, receive_code, template, tree_export, tree_shape,
    JoinPsks, Kind, Psks, Stats, TreeShape, GCE_DUPLICATE, GCE_EXT, GCE_REQUIRES_EXT, GCE_REQUIRES_PROPOSAL, GCE_REQUIRES_X509, GCE_UNSUPPORTED, KINDS,
};

const SUITE: CipherSuite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
const OTHER_SUITE: CipherSuite = CipherSuite::X25519Aes128GcmSha256Ed25519;
const GROUP_ID: &[u8] = b"self-acceptance";
/// Most members (joiners included) the run lets the group grow to: the
/// members' capacity is 16 leaves.
const MAX_MEMBERS: usize = 13;

/// A member of a group of `N` leaves (`A` bytes of leaf encodings, `P`
/// bytes of pending proposals).
type M<const N: usize, const A: usize, const P: usize> = MemberOf<N, A, 64, P>;

/// A client waiting to be added: its KeyPackages (any may be chosen).
struct Joiner<const N: usize, const A: usize, const P: usize> {
    m: M<N, A, P>,
    kps: Vec<(Vec<u8>, KeyPackagePrivateKeys)>,
}

struct World<const N: usize, const A: usize, const P: usize> {
    seed: u64,
    rng: TestRng,
    /// Most members (joiners included) the group may grow to.
    max_members: usize,
    members: Vec<M<N, A, P>>,
    joiners: Vec<Joiner<N, A, P>>,
    /// RNG states that made KeyPackages (replayed: the same init and
    /// encryption keys) and Updates (the same encryption key).
    kp_states: Vec<u64>,
    update_states: Vec<u64>,
    /// Where this epoch's states begin in those lists.
    kp_epoch_start: usize,
    update_epoch_start: usize,
    next_id: u64,
    stats: Stats,
    /// The kinds sent this round (for a finding's report).
    sent: Vec<(String, Kind)>,
    /// Large runs: mass Adds and Removes, growing the group towards
    /// `max_members`, then shrinking it towards a few members, and again.
    mass: bool,
    growing: bool,
    /// This round sends only Adds, committed without a path (the new
    /// leaves become unmerged leaves of the parents above them, §7.7).
    adds_only: bool,
    /// The tree after the last Commit.
    shape: TreeShape,
}

impl<const N: usize, const A: usize, const P: usize> World<N, A, P> {
    fn pick(&mut self, n: usize) -> usize {
        (self.rng.next_u64() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.rng.next_u64() % 100 < percent
    }

    fn fresh_member(&mut self, prefix: &str) -> M<N, A, P> {
        self.next_id += 1;
        let id = self.next_id;
        let seed = self.seed.wrapping_mul(1_000_003).wrapping_add(id);
        M::new(leak(format!("{prefix}{id}")), seed)
    }

    /// A KeyPackage of `m`; the RNG state that made it is kept for
    /// replays, and `m` gets a fresh RNG (a replayed client's later draws
    /// are not its original's).
    fn key_package(&mut self, m: &mut M<N, A, P>, suite: CipherSuite, ext: bool, lifetime: Lifetime) -> (Vec<u8>, KeyPackagePrivateKeys) {
        self.kp_states.push(m.rng.0);
        let (kp, keys) = key_package_of(m, suite, ext, lifetime);
        m.rng = TestRng(self.rng.next_u64());
        (kp, keys)
    }

    fn add_count(&mut self, key: &str, n: u64) {
        *self.stats.0.entry(key.into()).or_default() += n;
    }

    /// A joiner (new, or a copy of a member's signer) with a KeyPackage.
    fn new_joiner(&mut self, mut m: M<N, A, P>, suite: CipherSuite, ext: bool, lifetime: Lifetime) -> Vec<u8> {
        let (kp, keys) = self.key_package(&mut m, suite, ext, lifetime);
        self.joiners.push(Joiner { m, kps: vec![(kp.clone(), keys)] });
        kp
    }

    /// A recorded RNG state of a KeyPackage (or of an Update): mostly one
    /// of this epoch's (a clash within the Commit), else any earlier one (a
    /// clash with a member's key, or none left).
    fn replayed(&mut self, kp: bool) -> u64 {
        let (all, this_epoch) = if kp { (&self.kp_states, self.kp_epoch_start) } else { (&self.update_states, self.update_epoch_start) };
        let (len, recent) = (all.len(), all.len() - this_epoch);
        let k = if recent > 0 && self.rng.next_u64() % 100 < 70 {
            this_epoch + (self.rng.next_u64() % recent as u64) as usize
        } else {
            (self.rng.next_u64() % len as u64) as usize
        };
        if k >= this_epoch {
            self.stats.inc(if kp { "replayed:kp-of-this-epoch" } else { "replayed:update-of-this-epoch" });
        }
        if kp { self.kp_states[k] } else { self.update_states[k] }
    }

    fn pending_adds(&self) -> usize {
        self.joiners.len()
    }

    fn room_for_add(&self) -> bool {
        self.members.len() + self.pending_adds() < self.max_members
    }

    /// Member `i` sends one proposal of a random kind (or one close to it
    /// when the kind cannot be built now, counted as such).
    fn propose(&mut self, i: usize) {
        let mut kind = KINDS[self.pick(KINDS.len())];
        // Clashes within one Commit: often a replay of this epoch's keys.
        if self.kp_states.len() > self.kp_epoch_start && self.chance(20) {
            kind = Kind::AddReplayedKeys;
        } else if self.update_states.len() > self.update_epoch_start && self.chance(20) {
            kind = Kind::UpdateReplayedKey;
        }
        let add = matches!(
            kind,
            Kind::AddFresh | Kind::AddBannedCredential | Kind::AddPendingSignatureKey | Kind::AddReplayedKeys | Kind::AddMemberSignatureKey
        );
        if add && !self.room_for_add() {
            self.stats.inc(format!("substituted:{kind:?}->RemoveOther"));
            kind = Kind::RemoveOther;
        }
        if kind == Kind::AddPendingSignatureKey && self.joiners.is_empty() {
            self.stats.inc("substituted:AddPendingSignatureKey->AddFresh");
            kind = Kind::AddFresh;
        }
        self.send(i, kind, None);
    }

    /// Member `i` sends a proposal of `kind` (a Remove of `target`, if
    /// given); every other member receives it.
    fn send(&mut self, i: usize, kind: Kind, target: Option<u32>) {
        let wf = if self.chance(50) { WireFormatPolicy::Public } else { WireFormatPolicy::Private };
        let name = self.members[i].name.to_string();
        self.sent.push((name, kind));
        self.stats.inc(format!("sent:{kind:?}"));
        let mut out = vec![0u8; 8192];
        let epoch = self.members[i].group.epoch();
        let n_leaves = self.members[i].group.tree().n_leaves();
        let own = self.members[i].group.own_leaf().0;
        let mut nonce = [0u8; 32];
        self.rng.fill_bytes(&mut nonce);
        // Proposals other than Updates.
        let proposal_bytes: Option<Vec<u8>> = match kind {
            Kind::AddFresh => {
                let ext = self.chance(60);
                let m = self.fresh_member("joiner");
                Some(self.new_joiner(m, SUITE, ext, LIFETIME))
            }
            Kind::AddBannedCredential => {
                let m = self.fresh_member("banned");
                Some(self.new_joiner(m, SUITE, true, LIFETIME))
            }
            Kind::AddMemberSignatureKey => {
                let j = self.pick(self.members.len());
                let mut m = self.fresh_member("copy");
                m.signer = self.members[j].signer.clone();
                Some(self.new_joiner(m, SUITE, true, LIFETIME))
            }
            Kind::AddPendingSignatureKey => {
                let j = self.pick(self.joiners.len());
                let ext = self.chance(60);
                let mut joiner = self.joiners.swap_remove(j);
                let (kp, keys) = self.key_package(&mut joiner.m, SUITE, ext, LIFETIME);
                joiner.kps.push((kp.clone(), keys));
                self.joiners.push(joiner);
                Some(kp)
            }
            Kind::AddReplayedKeys => {
                let state = self.replayed(true);
                let mut m = self.fresh_member("replay");
                m.rng = TestRng(state);
                Some(self.new_joiner(m, SUITE, true, LIFETIME))
            }
            Kind::AddOtherSuite => {
                let m = self.fresh_member("othersuite");
                Some(self.new_joiner(m, OTHER_SUITE, true, LIFETIME))
            }
            Kind::AddExpired => {
                let m = self.fresh_member("expired");
                Some(self.new_joiner(m, SUITE, true, Lifetime { not_before: NOW - 1000, not_after: NOW - 100 }))
            }
            Kind::AddLifetimeTooLong => {
                let m = self.fresh_member("longlived");
                Some(self.new_joiner(m, SUITE, true, Lifetime { not_before: NOW - 10, not_after: NOW + 200 * 86_400 }))
            }
            _ => None,
        };
        let message = if let Some(kp) = proposal_bytes {
            let p = Proposal::Add(Add { key_package: KeyPackage::decode_exact(&kp).unwrap() });
            let m = &mut self.members[i];
            m.group.propose(&p, wf, &mut m.rng, &mut out).map(<[u8]>::to_vec)
        } else {
            match kind {
                Kind::UpdateValid | Kind::UpdateReplayedKey | Kind::UpdateToggleExt | Kind::UpdateOtherCredential => {
                    let m = &self.members[i];
                    let ext = lists_ext(m) ^ (kind == Kind::UpdateToggleExt);
                    let identity: &'static [u8] =
                        if kind == Kind::UpdateOtherCredential { b"mallory" } else { m.name.as_bytes() };
                    let t = template(m, identity, ext);
                    let state = if kind == Kind::UpdateReplayedKey && !self.update_states.is_empty() {
                        self.replayed(false)
                    } else {
                        if kind == Kind::UpdateReplayedKey {
                            self.stats.inc("substituted:UpdateReplayedKey->fresh key (no Update yet)");
                        }
                        self.rng.next_u64()
                    };
                    self.update_states.push(state);
                    let mut rng = TestRng(state);
                    self.members[i].group.propose_update(&t, wf, &mut rng, &mut out).map(<[u8]>::to_vec)
                }
                _ => {
                    let remove = |removed: u32| Proposal::Remove(Remove { removed });
                    let gce = |body: &'static [u8]| {
                        Proposal::GroupContextExtensions(GroupContextExtensions { extensions: Extensions::from_body(body).unwrap() })
                    };
                    let psk = |psk: Psk<'static>, nonce: &'static [u8]| {
                        Proposal::PreSharedKey(PreSharedKey { psk: PreSharedKeyId { psk, psk_nonce: nonce } })
                    };
                    let nonce: &'static [u8] = Box::leak(Box::new(nonce));
                    let blank = (0..n_leaves).filter(|l| self.members[i].group.tree().leaf_node(LeafIndex(*l)).is_none()).collect::<Vec<_>>();
                    let p = match kind {
                        Kind::RemoveOther if target.is_some() => remove(target.unwrap()),
                        Kind::RemoveOther => {
                            let others: Vec<u32> =
                                self.members.iter().map(|m| m.group.own_leaf().0).filter(|l| *l != own).collect();
                            if others.is_empty() {
                                self.stats.inc("substituted:RemoveOther->RemoveSelf (alone)");
                                remove(own)
                            } else {
                                remove(others[self.pick(others.len())])
                            }
                        }
                        Kind::RemoveSelf => remove(own),
                        Kind::RemoveBlank if !blank.is_empty() => remove(blank[self.pick(blank.len())]),
                        Kind::RemoveBlank => {
                            self.stats.inc("substituted:RemoveBlank->RemoveOutOfTree (no blank leaf)");
                            remove(n_leaves + 3)
                        }
                        Kind::RemoveOutOfTree => remove(n_leaves + 3),
                        Kind::GceEmpty => gce(&[]),
                        Kind::GceExt => gce(GCE_EXT),
                        Kind::GceUnsupportedExt => gce(GCE_UNSUPPORTED),
                        Kind::GceDuplicateExt => gce(GCE_DUPLICATE),
                        Kind::GceRequiresExt => gce(GCE_REQUIRES_EXT),
                        Kind::GceRequiresUnknownProposal => gce(GCE_REQUIRES_PROPOSAL),
                        Kind::GceRequiresX509 => gce(GCE_REQUIRES_X509),
                        Kind::PskKnown => psk(Psk::External { psk_id: b"shared" }, nonce),
                        Kind::PskKnownFixedNonce => psk(Psk::External { psk_id: b"shared" }, &[9; 32]),
                        Kind::PskUnknown => psk(Psk::External { psk_id: b"unknown" }, nonce),
                        Kind::PskShortNonce => psk(Psk::External { psk_id: b"shared" }, &nonce[..16]),
                        Kind::PskResumptionCurrent | Kind::PskResumptionUnknownEpoch => {
                            let psk_epoch = if kind == Kind::PskResumptionCurrent { epoch } else { epoch + 1000 };
                            let id = Psk::Resumption { usage: ResumptionPskUsage::Application, psk_group_id: GROUP_ID, psk_epoch };
                            psk(id, nonce)
                        }
                        Kind::ReInit => Proposal::ReInit(ReInit {
                            group_id: b"self-acceptance-2",
                            version: 1,
                            cipher_suite: SUITE.to_u16(),
                            extensions: Extensions::default(),
                        }),
                        Kind::ExternalInit => Proposal::ExternalInit(ExternalInit { kem_output: &[7; 32] }),
                        k => unreachable!("{k:?} is built above"),
                    };
                    let m = &mut self.members[i];
                    m.group.propose(&p, wf, &mut m.rng, &mut out).map(<[u8]>::to_vec)
                }
            }
        };
        let message = match message {
            Ok(msg) => msg,
            Err(e) => {
                // Refused by its sender (an Update our receivers would ignore).
                self.stats.inc(format!("send-refused:{kind:?}:{}", create_code(&e)));
                return;
            }
        };
        for j in 0..self.members.len() {
            if j == i {
                continue;
            }
            let mut b = message.clone();
            let r = &mut self.members[j];
            match r.group.process_message_in_memory(&mut b, &Psks, NOW) {
                Ok(Received::Proposal { .. }) => self.stats.inc("received"),
                Ok(other) => panic!("{}: seed {}: a proposal received as {other:?}", r.name, self.seed),
                Err(e) => self.stats.inc(format!("recv-refused:{kind:?}:{}", receive_code(&e))),
            }
        }
    }

    /// Large runs: many proposals at once, sent by reference by random
    /// members. While the group grows, 4 to 12 Adds of fresh clients; while
    /// it shrinks, 3 to 10 Removes, half the time of the rightmost members
    /// (the tree is truncated, §7.7), else of random ones (blank leaves and
    /// parents left inside); a quarter of the time a few of the other kind
    /// in the same Commit (Adds fill the blanks the Removes leave, §12.3).
    ///
    /// In an Adds-only round (`adds_only`), 4 to 12 Adds and nothing else.
    fn mass_changes(&mut self) {
        let n = self.members.len();
        if self.growing && n + self.pending_adds() + 4 >= self.max_members {
            self.growing = false;
            self.stats.inc("mass:turned-to-shrinking");
        } else if !self.growing && n <= 6 {
            self.growing = true;
            self.stats.inc("mass:turned-to-growing");
        }
        if self.adds_only {
            self.stats.inc("mass:adds-only-rounds");
        } else if !self.chance(60) {
            return;
        }
        let mixed = !self.adds_only && self.chance(25);
        let (adds, removes) = match (self.growing || self.adds_only, mixed) {
            (true, false) => (4 + self.pick(9), 0),
            (true, true) => (4 + self.pick(9), 1 + self.pick(4)),
            (false, false) => (0, 3 + self.pick(8)),
            (false, true) => (1 + self.pick(4), 3 + self.pick(8)),
        };
        // At least three members stay.
        let removes = removes.min(n.saturating_sub(3));
        let mut leaves: Vec<u32> = self.members.iter().map(|m| m.group.own_leaf().0).collect();
        leaves.sort_unstable();
        let targets: Vec<u32> = if self.chance(50) {
            self.stats.inc("mass:removes-of-the-rightmost");
            leaves[n - removes..].to_vec()
        } else {
            (0..removes).map(|_| leaves.swap_remove(self.pick(leaves.len()))).collect()
        };
        for t in targets {
            let i = self.pick(n);
            self.send(i, Kind::RemoveOther, Some(t));
            self.stats.inc("mass:removes-sent");
        }
        for _ in 0..adds {
            if !self.room_for_add() {
                self.stats.inc("mass:adds-not-sent (no room)");
                break;
            }
            let i = self.pick(n);
            self.send(i, Kind::AddFresh, None);
            self.stats.inc("mass:adds-sent");
        }
        self.stats.inc(format!("mass:rounds:mixed={mixed}"));
    }

    /// Counts what the tree after a Commit looks like (its members must be
    /// ours).
    fn count_shape(&mut self, round: usize) {
        let shape = tree_shape(&tree_export(&mut self.members[0]));
        assert_eq!(shape.members as usize, self.members.len(), "seed {} round {round}: the tree's members", self.seed);
        let before = std::mem::replace(&mut self.shape, shape);
        self.stats.inc(format!("tree:leaves={:02}", shape.leaves));
        if shape.leaves < before.leaves {
            self.stats.inc(format!("tree:truncated:{}->{}", before.leaves, shape.leaves));
        }
        if shape.blank_parents_high > 0 {
            self.stats.inc("tree:blank-parents-of-level>=3");
        }
        if shape.unmerged_level > 0 {
            self.stats.inc(format!("tree:unmerged-leaves-up-to-level:{}", shape.unmerged_level));
        }
        if shape.max_unmerged >= 4 {
            self.stats.inc("tree:a-parent-with-4+-unmerged-leaves");
        }
        self.stats.inc(format!("tree:root-resolution:{:02}", shape.root_resolution.min(20)));
        self.stats.inc(format!("tree:largest-resolution-of-a-blank-parent:{:02}", shape.max_blank_resolution.min(20)));
        let max = self.stats.get("max-members").max(self.members.len() as u64);
        self.stats.0.insert("max-members".into(), max);
    }

    /// A random member commits the pending proposals; the others follow.
    fn commit(&mut self, round: usize) {
        let c = self.pick(self.members.len());
        let force_path = !self.adds_only && self.chance(50);
        let wire_format = if self.chance(50) { WireFormatPolicy::Public } else { WireFormatPolicy::Private };
        let ext = lists_ext(&self.members[c]);
        let with_template = self.chance(50);
        let leaf = with_template.then(|| template(&self.members[c], self.members[c].name.as_bytes(), ext));
        // Sometimes our own proposals by value too: a fresh client's Add
        // (listing EXT, so fitting any extensions the group may adopt) or a
        // Remove of another member.
        let mut by_value_kps: Vec<Vec<u8>> = Vec::new();
        let mut by_value_removes: Vec<u32> = Vec::new();
        if self.room_for_add() && self.chance(20) {
            let m = self.fresh_member("byvalue");
            by_value_kps.push(self.new_joiner(m, SUITE, true, LIFETIME));
            self.stats.inc("by-value:Add");
        }
        if !self.adds_only && self.members.len() > 3 && self.chance(15) {
            let me = self.members[c].group.own_leaf().0;
            let others: Vec<u32> = self.members.iter().map(|m| m.group.own_leaf().0).filter(|l| *l != me).collect();
            by_value_removes.push(others[self.pick(others.len())]);
            self.stats.inc("by-value:Remove");
        }
        let mut by_value: Vec<Proposal<'_>> = by_value_kps
            .iter()
            .map(|kp| Proposal::Add(Add { key_package: KeyPackage::decode_exact(kp).unwrap() }))
            .collect();
        by_value.extend(by_value_removes.iter().map(|r| Proposal::Remove(Remove { removed: *r })));

        // A path leaf our identity policy refuses as our successor: refused
        // when created (§5.3.1), the group unchanged.
        if self.chance(10) {
            let m = &mut self.members[c];
            let epoch = m.group.epoch();
            let bad = template(m, b"mallory", ext);
            let opts = CommitOptions { proposals: &by_value, force_path: true, leaf: Some(bad), ..CommitOptions::DEFAULT };
            let (mut mb, mut wb, mut gb) = buffers();
            let bufs = CommitBuffers { message: &mut mb, welcome: &mut wb, group_info: &mut gb };
            match m.group.commit_in_memory(&opts, &Psks, NOW, &mut m.rng, &Sequential, bufs) {
                Err(CreateCommitError::Commit(CommitError::InvalidSuccessor)) => self.stats.inc("bad-template-refused"),
                other => panic!("seed {} round {round}: {}: a path leaf of another credential: {other:?}", self.seed, m.name),
            }
            assert_eq!(m.group.epoch(), epoch);
            assert!(!m.group.has_staged_commit());
        }

        let pending = self.members[c].group.pending_proposals().count();
        let old_epoch = self.members[c].group.epoch();
        let opts = CommitOptions {
            proposals: &by_value,
            include_pending: true,
            force_path,
            ratchet_tree_in_welcome: true,
            wire_format,
            padding: 16,
            authenticated_data: b"",
            leaf,
        };
        let (mut mb, mut wb, mut gb) = buffers();
        let bufs = CommitBuffers { message: &mut mb, welcome: &mut wb, group_info: &mut gb };
        let committer = self.members[c].name;
        let m = &mut self.members[c];
        let out = match m.group.commit_in_memory(&opts, &Psks, NOW, &mut m.rng, &Sequential, bufs) {
            Ok(out) => out,
            Err(e) => panic!(
                "FINDING seed {} round {round}: {committer} could not commit {pending} pending proposals ({:?}, by value {}): {e:?}",
                self.seed,
                self.sent,
                by_value.len()
            ),
        };
        let summary = out.summary;
        let commit = out.commit.to_vec();
        let welcome = out.welcome.map(<[u8]>::to_vec);
        self.stats.inc("commits-created");
        if summary.adds >= 5 || summary.removes >= 5 {
            self.stats.inc(format!("commits-of-5+:adds={}:removes={}", summary.adds >= 5, summary.removes >= 5));
        }
        if summary.adds >= 2 && summary.removes >= 2 {
            self.stats.inc("commits-of-2+-adds-and-2+-removes");
        }
        if summary.adds >= 4 && !summary.has_path {
            self.stats.inc("commits-of-4+-adds-without-path");
        }
        self.stats.inc(format!("commit-shape:path={}:{wire_format:?}", summary.has_path));
        self.add_count("committed:adds", summary.adds.into());
        self.add_count("committed:removes", summary.removes.into());
        self.add_count("committed:updates", summary.updates.into());
        self.add_count("committed:psks", summary.psks.into());
        if summary.extensions_changed {
            self.stats.inc("committed:gce");
        }
        let m = &mut self.members[c];
        m.group.merge_staged_commit_in_memory().unwrap();
        let join_psks = JoinPsks(GROUP_ID, old_epoch, m.group.resumption_psk(old_epoch).expect("kept").to_vec());

        // Every other member accepts it.
        let mut removed = Vec::with_capacity(self.members.len());
        for j in 0..self.members.len() {
            if j == c {
                // The committer merged above (and cannot remove itself).
                removed.push(false);
                continue;
            }
            let mut b = commit.clone();
            let r = &mut self.members[j];
            match r.group.process_message_in_memory(&mut b, &Psks, NOW) {
                Ok(Received::Commit(s)) => {
                    assert_eq!((s.adds, s.removes, s.updates, s.psks), (summary.adds, summary.removes, summary.updates, summary.psks));
                    removed.push(s.removes_us);
                    r.group.merge_staged_commit_in_memory().unwrap();
                    self.stats.inc("commits-accepted");
                }
                other => panic!(
                    "FINDING seed {} round {round}: {} refused the Commit of {committer} ({summary:?}; sent this round: {:?}): {other:?}",
                    self.seed,
                    r.name,
                    self.sent
                ),
            }
        }
        let n_removed = removed.iter().filter(|r| **r).count();
        assert_eq!(n_removed as u32, summary.removes, "seed {} round {round}", self.seed);
        let mut k = 0;
        self.members.retain(|m| {
            let gone = removed[k];
            k += 1;
            if gone {
                assert!(m.group.is_inactive(), "{}: removed but active", m.name);
            }
            !gone
        });
        self.add_count("members-removed", n_removed as u64);

        // The new members join by the Welcome: those whose KeyPackage's leaf
        // is in the tree.
        let joiners = std::mem::take(&mut self.joiners);
        (self.kp_epoch_start, self.update_epoch_start) = (self.kp_states.len(), self.update_states.len());
        let mut joined = 0;
        let leaves: Vec<(Vec<u8>, Vec<u8>)> = {
            let tree = self.members[0].group.tree();
            (0..tree.n_leaves())
                .filter_map(|l| tree.leaf_node(LeafIndex(l)))
                .map(|l| (l.fields.signature_key.to_vec(), l.fields.encryption_key.to_vec()))
                .collect()
        };
        {
            for mut j in joiners {
                let chosen = j.kps.iter().find(|(kp, _)| {
                    let kp = KeyPackage::decode_exact(kp).unwrap();
                    let f = &kp.tbs.leaf_node.fields;
                    leaves.iter().any(|(s, e)| s == f.signature_key && e == f.encryption_key)
                });
                let Some((kp, keys)) = chosen else {
                    self.stats.inc("joiners-not-added");
                    continue;
                };
                let welcome = welcome.as_ref().unwrap_or_else(|| panic!("seed {}: {} added without a Welcome", self.seed, j.m.name));
                let params = JoinParams {
                    executor: &Sequential,
                    key_package: kp,
                    keys,
                    signer: &j.m.signer,
                    ratchet_tree: None,
                    psks: &join_psks,
                    config: config(),
                };
                let mut buf = vec![0u8; welcome.len()];
                if let Err(e) = j.m.group.join_in_memory(welcome, &params, &mut buf) {
                    panic!("FINDING seed {} round {round}: {} could not join: {e:?}", self.seed, j.m.name);
                }
                joined += 1;
                self.members.push(j.m);
            }
        }
        assert_eq!(joined, summary.adds, "seed {} round {round}: joined", self.seed);
        self.add_count("members-joined", joined.into());
        check_agreement(&mut self.members, self.seed, round);
        self.count_shape(round);
    }
}

/// Alice's group, with three members added.
fn start<const N: usize, const A: usize, const P: usize>(seed: u64, max_members: usize, mass: bool) -> World<N, A, P> {
    let mut w = World {
        seed,
        rng: TestRng(seed),
        max_members,
        members: Vec::new(),
        joiners: Vec::new(),
        kp_states: Vec::new(),
        update_states: Vec::new(),
        kp_epoch_start: 0,
        update_epoch_start: 0,
        next_id: 0,
        stats: Stats::default(),
        sent: Vec::new(),
        mass,
        growing: true,
        adds_only: false,
        shape: TreeShape::default(),
    };
    let mut alice = w.fresh_member("alice");
    let params = CreateParams {
        suite: SUITE,
        group_id: GROUP_ID,
        credential: Credential::Basic { identity: alice.name.as_bytes() },
        lifetime: LIFETIME,
        capabilities: capabilities(true),
        extensions: Extensions::default(),
        config: config(),
    };
    let signer = alice.signer.clone();
    alice.group.create(&params, &signer, &mut alice.rng).unwrap();
    w.members.push(alice);
    for _ in 0..3 {
        let m = w.fresh_member("member");
        let ext = w.chance(70);
        let kp = w.new_joiner(m, SUITE, ext, LIFETIME);
        let p = Proposal::Add(Add { key_package: KeyPackage::decode_exact(&kp).unwrap() });
        let a = &mut w.members[0];
        let mut out = vec![0u8; 8192];
        let msg = a.group.propose(&p, WireFormatPolicy::Public, &mut a.rng, &mut out).unwrap().to_vec();
        for r in w.members.iter_mut().skip(1) {
            let mut b = msg.clone();
            assert!(matches!(r.group.process_message_in_memory(&mut b, &Psks, NOW), Ok(Received::Proposal { .. })));
        }
        w.commit(0);
    }
    assert!(w.members.len() >= 3);
    w
}

/// A run of `rounds` rounds in a group of `N` leaves that grows to at most
/// `max_members` members (with mass Adds and Removes if `mass`).
fn run<const N: usize, const A: usize, const P: usize>(seed: u64, rounds: usize, max_members: usize, mass: bool, env: &str) -> Stats {
    let t0 = Instant::now();
    println!("self_acceptance: seed {seed}, {N} leaves ({rounds} rounds; replay with {env}={seed})");
    let mut w = start::<N, A, P>(seed, max_members, mass);
    for round in 1..=rounds {
        w.sent.clear();
        w.adds_only = w.mass && w.growing && w.chance(35);
        let n = if w.adds_only { 0 } else { 1 + w.pick(6) };
        for _ in 0..n {
            let i = w.pick(w.members.len());
            w.propose(i);
        }
        if w.mass {
            w.mass_changes();
        }
        w.commit(round);
        w.stats.inc("rounds");
        w.stats.inc(format!("group-size:{}", w.members.len()));
    }
    println!("seed {seed}: {:.2?}", t0.elapsed());
    w.stats.print(60);
    w.stats
}

/// The counts show the run did what it is for: every kind sent, hostile
/// kinds refused on receipt or left out, Commits created and accepted,
/// members joined and removed.
fn check(s: &Stats, rounds: u64) {
    assert_eq!(s.get("rounds"), rounds);
    for k in KINDS {
        assert!(s.get(&format!("sent:{k:?}")) >= rounds / 80, "{k:?} sent {} times", s.get(&format!("sent:{k:?}")));
    }
    assert_eq!(s.get("commits-created"), rounds + 3);
    assert!(s.get("commits-accepted") >= 3 * rounds, "commits accepted");
    assert!(s.get("members-joined") >= rounds / 4, "members joined");
    assert!(s.get("members-removed") >= rounds / 8, "members removed");
    assert!(s.get("committed:updates") >= rounds / 10, "updates committed");
    assert!(s.get("committed:psks") >= rounds / 10, "psks committed");
    assert!(s.get("committed:gce") >= rounds / 40, "GCEs committed");
    assert!(s.get("joiners-not-added") >= rounds / 4, "hostile Adds left out");
    assert!(s.get("bad-template-refused") >= rounds / 40, "bad path leaves refused");
    assert!(s.sum("send-refused:") >= rounds / 20, "Updates refused by their sender");
    assert!(s.get("replayed:kp-of-this-epoch") >= rounds / 20, "Adds clashing within a Commit");
    assert!(s.get("replayed:update-of-this-epoch") >= rounds / 40, "Updates clashing within a Commit");
    // (A Commit without a path takes only Adds and PSKs: rarer.)
    for (shape, min) in [("path=true:Public", 20), ("path=true:Private", 20), ("path=false:Public", 40), ("path=false:Private", 40)] {
        assert!(s.get(&format!("commit-shape:{shape}")) >= rounds / min, "{shape}");
    }
    // Receivers keep every well-formed proposal of a member (§12.1: its
    // validity is judged by the Commit that takes it); none is refused.
    assert_eq!(s.sum("recv-refused:"), 0, "proposals refused on receipt");
}

#[test]
fn own_commits_of_pending_proposals_are_accepted() {
    let rounds: usize = std::env::var("SELF_ACCEPTANCE_ROUNDS").ok().map_or(300, |r| r.parse().expect("rounds"));
    let seeds: Vec<u64> = match std::env::var("SELF_ACCEPTANCE_SEED") {
        Ok(s) => vec![s.parse().expect("a u64 seed")],
        Err(_) => vec![0x5e1f_acce_0001, 0x5e1f_acce_0002],
    };
    for seed in seeds {
        let stats = run::<16, { 16 * 512 }, 8192>(seed, rounds, MAX_MEMBERS, false, "SELF_ACCEPTANCE_SEED");
        check(&stats, rounds as u64);
    }
}

/// Large runs: a group of 64 leaves that grows to at most 44 members (so
/// that no Add needs a 65th leaf).
const LARGE_MAX_MEMBERS: usize = 44;

/// The counts of a large run: the deeper trees were reached and the
/// ordinary rounds' checks hold in them.
fn check_large(s: &Stats, rounds: u64) {
    assert_eq!(s.get("rounds"), rounds);
    assert_eq!(s.get("commits-created"), rounds + 3);
    assert!(s.get("commits-accepted") >= 10 * rounds, "commits accepted");
    assert!(s.get("max-members") >= 36, "the group grew to {} members", s.get("max-members"));
    // Grown and shrunk at least twice.
    let phases = 2.max(rounds / 40);
    assert!(s.get("mass:turned-to-shrinking") >= phases && s.get("mass:turned-to-growing") >= phases, "mass phases");
    assert!(s.get("commits-of-5+:adds=true:removes=false") >= rounds / 10, "Commits of 5 or more Adds");
    assert!(s.get("commits-of-5+:adds=false:removes=true") >= rounds / 10, "Commits of 5 or more Removes");
    assert!(s.get("commits-of-2+-adds-and-2+-removes") >= rounds / 20, "Commits of Adds and Removes");
    assert!(s.get("tree:leaves=64") >= rounds / 5, "rounds at 64 leaves");
    assert!(s.sum("tree:truncated:64->") >= 2.max(rounds / 40), "truncations from 64 leaves");
    assert!(s.get("tree:blank-parents-of-level>=3") >= rounds / 2, "blank parents over 8 leaves or more");
    let high_unmerged: u64 = (4..=6).map(|k| s.get(&format!("tree:unmerged-leaves-up-to-level:{k}"))).sum();
    assert!(high_unmerged >= rounds / 10, "unmerged leaves at level 4 or more");
    assert!(s.get("tree:a-parent-with-4+-unmerged-leaves") >= rounds / 25, "parents of many unmerged leaves");
    let large: u64 = (12..=20).map(|k| s.get(&format!("tree:largest-resolution-of-a-blank-parent:{k:02}"))).sum();
    assert!(large >= rounds / 10, "blank parents of 12 or more nodes in their resolution");
    let large: u64 = (7..=20).map(|k| s.get(&format!("tree:root-resolution:{k:02}"))).sum();
    assert!(large >= rounds / 20, "roots of 7 or more nodes in their resolution (unmerged leaves)");
    assert!(s.get("commits-of-4+-adds-without-path") >= rounds / 20, "Commits of 4 or more Adds without a path");
    for k in KINDS {
        assert!(s.get(&format!("sent:{k:?}")) >= rounds / 60, "{k:?} sent {} times", s.get(&format!("sent:{k:?}")));
    }
    assert!(s.get("joiners-not-added") >= rounds / 4, "hostile Adds left out");
    assert!(s.get("committed:updates") >= rounds / 10, "updates committed");
    assert!(s.get("committed:psks") >= rounds / 10, "psks committed");
    for shape in ["path=true:Public", "path=true:Private", "path=false:Public", "path=false:Private"] {
        assert!(s.get(&format!("commit-shape:{shape}")) >= rounds / 40, "{shape}");
    }
    assert_eq!(s.sum("recv-refused:"), 0, "proposals refused on receipt");
}

/// Deeper trees (§4, §7): the run above in a group of 64 leaves, grown
/// to about 40 members by mass Adds and shrunk to a few by mass Removes,
/// again and again: blank parents over large subtrees, the tree truncated
/// from 64 leaves, unmerged leaves several levels up, resolutions of many
/// nodes. `SELF_ACCEPTANCE_LARGE_SEED` replays one seed,
/// `SELF_ACCEPTANCE_LARGE_ROUNDS` changes the number of rounds.
#[test]
fn own_commits_in_large_trees_are_accepted() {
    let rounds: usize = std::env::var("SELF_ACCEPTANCE_LARGE_ROUNDS").ok().map_or(300, |r| r.parse().expect("rounds"));
    let seeds: Vec<u64> = match std::env::var("SELF_ACCEPTANCE_LARGE_SEED") {
        Ok(s) => vec![s.parse().expect("a u64 seed")],
        Err(_) => vec![0x5e1f_acce_1001],
    };
    for seed in seeds {
        let stats = run::<64, { 64 * 512 }, 32768>(seed, rounds, LARGE_MAX_MEMBERS, true, "SELF_ACCEPTANCE_LARGE_SEED");
        check_large(&stats, rounds as u64);
    }
}
