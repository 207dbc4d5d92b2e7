//! Our own members accept what our own members send, and keep it across
//! reboots: the randomized run of `self_acceptance.rs` (members send valid
//! and hostile proposals by reference, a random member commits the pending
//! ones, every member accepts, all agree) where most members keep their
//! group in a store (`MapStorage`) through the `StoredGroup` API, and
//! "reboot" at random points: after receiving a proposal, after sending
//! one, after staging their own Commit (before the merge), after
//! processing another's Commit (before the merge; saved while staged, or
//! not saved at all as `process_message` leaves it, then processed again),
//! after a discarded Commit, after a merge, after joining, after being
//! removed. A reboot loads a fresh `Group` from the store (`recover`,
//! `load`) and the run goes on with it; the loaded group must equal the
//! one before in everything observable (epoch, epoch authenticator,
//! exporter, exported ratchet tree, own leaf, pending proposals, the staged
//! Commit's summary, resumption PSKs kept, inactive or not), and a staged
//! Commit merged after a reboot must lead to the others' epoch. After some
//! rounds a member that rebooted sends an application message that every
//! other member reads (a reused generation would be refused, §9.2).
//!
//! Joiners keep their KeyPackages' keys in their store and join through it
//! (`join_with`); the keys must then be gone. Removed members reload as an
//! inactive group.
//!
//! Seeds: `STORE_ROUNDTRIP_SEED=<u64>` replays one seed (printed by each
//! run); `STORE_ROUNDTRIP_ROUNDS` changes the number of rounds. Also run
//! in the boards' layout (test.sh: `MLS_NOSTD_PAST_EPOCHS_KEPT=0
//! MLS_NOSTD_HASH_CACHE_LEVEL=3`).
use mls_nostd::codec::Decode;
use mls_nostd::credential::Credential;
use mls_nostd::crypto::signature::SignaturePrivateKey;
use mls_nostd::crypto::CipherSuite;
use mls_nostd::executor::Sequential;
use mls_nostd::extensions::Extensions;
use mls_nostd::group::{
    CommitBuffers, CommitError, CommitOptions, CreateCommitError, CreateParams, JoinParams, Received, StagedCommitSummary,
    WireFormatPolicy,
};
use mls_nostd::key_package::{KeyPackage, KeyPackagePrivateKeys};
use mls_nostd::leaf_node::Lifetime;
use mls_nostd::messages::proposal::{
    Add, ExternalInit, GroupContextExtensions, PreSharedKey, Proposal, ReInit, Remove,
};
use mls_nostd::psk::{PreSharedKeyId, Psk, ResumptionPskUsage};
use mls_nostd::store::durable::{load_key_package, store_key_package, DurableError, RecordBuffer};
use mls_nostd::store::{recover, Part, Parts, MAX_RECORD_LEN};
use mls_nostd::tree_math::LeafIndex;
use mls_tests::member::{agree, buffers, Member, G, LIFETIME, NOW};
use mls_tests::{MapStorage, TestRng};
use rand_core::Rng;
use std::time::Instant;

#[path = "common/random_group.rs"]
#[allow(dead_code)]
mod random_group;
use random_group::{
    capabilities, config, create_code, key_package_of, leak, lists_ext, receive_code, template, JoinPsks, Kind, Psks, Stats, POLICY,
    GCE_DUPLICATE, GCE_EXT, GCE_REQUIRES_EXT, GCE_REQUIRES_PROPOSAL, GCE_REQUIRES_X509, GCE_UNSUPPORTED, KINDS,
};

const SUITE: CipherSuite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
const OTHER_SUITE: CipherSuite = CipherSuite::X25519Aes128GcmSha256Ed25519;
const GROUP_ID: &[u8] = b"store-roundtrip";
/// Most members (joiners included) the run lets the group grow to: fewer
/// than self_acceptance's 13, so that the group's size moves across 8
/// leaves and removals of the rightmost members truncate the tree (§7.7).
const MAX_MEMBERS: usize = 10;

/// The slot every member's group is kept in (one store per member).
const SLOT: u8 = 3;

fn rb() -> Box<RecordBuffer> {
    Box::new([0u8; MAX_RECORD_LEN])
}

/// A client waiting to be added: its KeyPackages (any may be chosen), and
/// its store if it persists (which holds those KeyPackages' keys).
struct Joiner {
    m: Member,
    store: Option<MapStorage>,
    kps: Vec<(Vec<u8>, KeyPackagePrivateKeys)>,
}

/// A Commit created: the Commit, its Welcome, its summary.
type Created = (Vec<u8>, Option<Vec<u8>>, StagedCommitSummary);

/// What a message received was.
#[derive(Debug)]
enum Got {
    Proposal,
    Commit(StagedCommitSummary),
    Application(Vec<u8>),
}

/// Everything a member shows of its group, compared before and after a reboot.
#[derive(Debug, PartialEq)]
struct Observed {
    epoch: u64,
    inactive: bool,
    authenticator: Vec<u8>,
    exporter: Option<[u8; 32]>,
    tree: Option<Vec<u8>>,
    own_leaf: u32,
    extensions: Vec<u8>,
    /// (reference, sender, proposal) of each pending proposal, in order.
    pending: Vec<(Vec<u8>, String, Vec<u8>)>,
    staged: Option<StagedCommitSummary>,
    /// The resumption PSKs of the last epochs that the group still gives.
    resumption: Vec<(u64, Vec<u8>)>,
}

fn observe(m: &mut Member) -> Observed {
    let g = &mut m.group;
    let mut exporter = [0u8; 32];
    let exporter = g.export_secret(b"roundtrip", b"ctx", &mut exporter).ok().map(|()| exporter);
    let tree = {
        let mut buf = vec![0u8; 64 * 1024];
        let mut w = mls_nostd::codec::Writer::new(&mut buf);
        match g.export_tree(&mut w) {
            Ok(()) => {
                let n = w.len();
                buf.truncate(n);
                Some(buf)
            }
            Err(_) => None,
        }
    };
    let epoch = g.epoch();
    Observed {
        epoch,
        inactive: g.is_inactive(),
        authenticator: g.epoch_authenticator().to_vec(),
        exporter,
        tree,
        own_leaf: g.own_leaf().0,
        extensions: format!("{:?}", g.extensions()).into_bytes(),
        pending: g
            .pending_proposals()
            .map(|p| (p.reference.as_bytes().to_vec(), format!("{:?}", p.sender), p.proposal.to_vec()))
            .collect(),
        staged: g.staged_commit().map(|s| *s.summary()),
        resumption: (epoch.saturating_sub(4)..=epoch).filter_map(|e| g.resumption_psk(e).map(|s| (e, s.to_vec()))).collect(),
    }
}

struct World {
    seed: u64,
    rng: TestRng,
    members: Vec<Member>,
    /// Each member's store, if it persists (parallel to `members`).
    stores: Vec<Option<MapStorage>>,
    joiners: Vec<Joiner>,
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
    round: usize,
}

impl World {
    fn pick(&mut self, n: usize) -> usize {
        (self.rng.next_u64() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.rng.next_u64() % 100 < percent
    }

    fn fresh_member(&mut self, prefix: &str) -> Member {
        self.next_id += 1;
        let id = self.next_id;
        let seed = self.seed.wrapping_mul(1_000_003).wrapping_add(id);
        Member::new(leak(format!("{prefix}{id}")), seed)
    }

    /// A KeyPackage of `m` (its keys kept in `store` if it persists); the
    /// RNG state that made it is kept for replays, and `m` gets a fresh
    /// RNG (a replayed client's later draws are not its original's).
    fn key_package(
        &mut self,
        m: &mut Member,
        store: Option<&mut MapStorage>,
        suite: CipherSuite,
        ext: bool,
        lifetime: Lifetime,
    ) -> (Vec<u8>, KeyPackagePrivateKeys) {
        self.kp_states.push(m.rng.0);
        let (kp, keys) = key_package_of(m, suite, ext, lifetime);
        if let Some(s) = store {
            let reference = KeyPackage::decode_exact(&kp).unwrap().reference(suite).unwrap();
            store_key_package(s, suite, &reference, &keys, &m.signer, &mut rb()).unwrap();
        }
        m.rng = TestRng(self.rng.next_u64());
        (kp, keys)
    }

    fn add_count(&mut self, key: &str, n: u64) {
        *self.stats.0.entry(key.into()).or_default() += n;
    }

    /// Most new members persist (a store of their own from their
    /// KeyPackage on); the others live in memory.
    fn persists(&mut self) -> Option<MapStorage> {
        self.chance(80).then(MapStorage::default)
    }

    /// A joiner (new, or a copy of a member's signer) with a KeyPackage.
    fn new_joiner(&mut self, mut m: Member, suite: CipherSuite, ext: bool, lifetime: Lifetime) -> Vec<u8> {
        let mut store = self.persists();
        let (kp, keys) = self.key_package(&mut m, store.as_mut(), suite, ext, lifetime);
        self.joiners.push(Joiner { m, store, kps: vec![(kp.clone(), keys)] });
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
        self.members.len() + self.pending_adds() < MAX_MEMBERS
    }

    /// Member `j` processes `message`: through its store if it persists.
    fn receive(&mut self, j: usize, message: &[u8]) -> Result<Got, String> {
        let mut b = message.to_vec();
        let m = &mut self.members[j];
        let got = match self.stores[j].as_mut() {
            Some(s) => {
                let mut buf = rb();
                match m.group.stored(s, SLOT, &mut buf).process_message_with_psks(&mut b, &Psks, NOW) {
                    Ok(r) => Ok(got(r)),
                    Err(DurableError::Op(e)) => Err(receive_code(&e)),
                    Err(e) => panic!("seed {}: {}: the store failed: {e:?}", self.seed, m.name),
                }
            }
            None => m.group.process_message_in_memory(&mut b, &Psks, NOW).map(got).map_err(|e| receive_code(&e)),
        };
        if let Ok(Got::Application(_)) = got {
            self.stats.inc(if self.stores[j].is_some() { "app-read:stored" } else { "app-read:memory" });
        }
        got
    }

    /// Member `j` merges its staged Commit: through its store if it persists.
    fn merge(&mut self, j: usize) {
        let m = &mut self.members[j];
        match self.stores[j].as_mut() {
            Some(s) => m.group.stored(s, SLOT, &mut rb()).merge_staged_commit().unwrap(),
            None => m.group.merge_staged_commit_in_memory().unwrap(),
        }
    }

    /// Member `i`, if it persists, reboots with `percent` chance at `point`.
    fn maybe_reboot(&mut self, i: usize, point: &str, percent: u64) -> bool {
        if self.stores[i].is_none() || !self.chance(percent) {
            return false;
        }
        let before = observe(&mut self.members[i]);
        self.reboot(i, point);
        let after = observe(&mut self.members[i]);
        self.same(i, point, &before, &after);
        true
    }

    /// Member `i` loads a fresh group from its store (after `recover`, as
    /// at start-up) and goes on with it.
    fn reboot(&mut self, i: usize, point: &str) {
        let s = self.stores[i].as_mut().expect("a persisting member");
        let m = &mut self.members[i];
        let mut b = rb();
        recover(s, SLOT, &mut b[..]).unwrap_or_else(|e| panic!("seed {}: {}: recover at {point}: {e:?}", self.seed, m.name));
        let mut fresh = Box::new(G::EMPTY);
        if let Err(e) = fresh.load(s, SLOT, &POLICY, &mut b) {
            let staged = m.group.staged_commit().map(|s| *s.summary());
            let (leaves, own, epoch) = (m.group.tree().n_leaves(), m.group.own_leaf().0, m.group.epoch());
            panic!(
                "FINDING seed {} round {}: {} could not load its group at {point}: {e:?} (epoch {epoch}, own leaf {own} of {leaves}, staged {staged:?}; sent this round: {:?})",
                self.seed, self.round, m.name, self.sent
            );
        }
        m.group = fresh;
        self.stats.inc(format!("reboot:{point}"));
    }

    fn same(&self, i: usize, point: &str, before: &Observed, after: &Observed) {
        if before != after {
            let mut diff = String::new();
            macro_rules! field {
                ($f:ident) => {
                    if before.$f != after.$f {
                        diff += &format!("\n  {}: before {:?}\n  {}  after  {:?}", stringify!($f), before.$f, "", after.$f);
                    }
                };
            }
            field!(epoch);
            field!(inactive);
            field!(authenticator);
            field!(exporter);
            field!(own_leaf);
            field!(extensions);
            field!(pending);
            field!(staged);
            field!(resumption);
            if before.tree != after.tree {
                diff += "\n  tree: differs";
            }
            panic!(
                "FINDING seed {} round {}: {} reloaded at {point} differs from before the reboot:{diff}",
                self.seed, self.round, self.members[i].name
            );
        }
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
                let (kp, keys) = self.key_package(&mut joiner.m, joiner.store.as_mut(), SUITE, ext, LIFETIME);
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
                        Kind::RemoveOther => {
                            let others: Vec<u32> =
                                self.members.iter().map(|m| m.group.own_leaf().0).filter(|l| *l != own).collect();
                            if others.is_empty() {
                                self.stats.inc("substituted:RemoveOther->RemoveSelf (alone)");
                                remove(own)
                            } else if self.chance(60) {
                                // The rightmost member: its removal truncates the tree (§7.7).
                                remove(*others.iter().max().unwrap())
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
                            group_id: b"store-roundtrip-2",
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
        // Persist before emit: the pending list (with our Update's leaf key)
        // and the ratchet that framed the proposal, the parts
        // `StoredGroup::propose` saves (whose own tests are in store.rs;
        // here one code path serves members with and without a store).
        if let Some(s) = self.stores[i].as_mut() {
            let mut b = rb();
            self.members[i].group.stored(s, SLOT, &mut b).save(Parts::RATCHETS.with(Part::Proposals)).unwrap();
            self.stats.inc("saved:own-proposal");
            self.maybe_reboot(i, "own-proposal", 25);
        }
        for j in 0..self.members.len() {
            if j == i {
                continue;
            }
            match self.receive(j, &message) {
                Ok(Got::Proposal) => {
                    self.stats.inc("received");
                    self.maybe_reboot(j, "proposal-received", 8);
                }
                Ok(other) => panic!("{}: seed {}: a proposal received as {other:?}", self.members[j].name, self.seed),
                Err(e) => self.stats.inc(format!("recv-refused:{kind:?}:{e}")),
            }
        }
    }

    /// Member `c` creates a Commit of `opts` (staged, and stored if `c`
    /// persists): the Commit, its Welcome, its summary.
    fn create_commit(&mut self, c: usize, opts: &CommitOptions<'_>) -> Result<Created, CreateCommitError> {
        let (mut mb, mut wb, mut gb) = buffers();
        let bufs = CommitBuffers { message: &mut mb, welcome: &mut wb, group_info: &mut gb };
        let m = &mut self.members[c];
        let out = match self.stores[c].as_mut() {
            Some(s) => match m.group.stored(s, SLOT, &mut rb()).commit(opts, &Psks, NOW, &mut m.rng, &Sequential, bufs) {
                Ok(out) => out,
                Err(DurableError::Op(e)) => return Err(e),
                Err(e) => panic!("seed {}: {}: the store failed: {e:?}", self.seed, m.name),
            },
            None => m.group.commit_in_memory(opts, &Psks, NOW, &mut m.rng, &Sequential, bufs)?,
        };
        Ok((out.commit.to_vec(), out.welcome.map(<[u8]>::to_vec), out.summary))
    }

    /// Member `c` drops its staged Commit: through its store if it persists.
    fn discard(&mut self, c: usize) {
        let m = &mut self.members[c];
        match self.stores[c].as_mut() {
            Some(s) => m.group.stored(s, SLOT, &mut rb()).discard_staged_commit().unwrap(),
            None => m.group.discard_staged_commit(),
        }
    }

    /// A random member commits the pending proposals; the others follow.
    fn commit(&mut self, round: usize) {
        self.round = round;
        let c = self.pick(self.members.len());
        let force_path = self.chance(50);
        let wire_format = if self.chance(50) { WireFormatPolicy::Public } else { WireFormatPolicy::Private };
        let ext = lists_ext(&self.members[c]);
        let with_template = self.chance(50);
        let leaf = with_template.then(|| template(&self.members[c], self.members[c].name.as_bytes(), ext));
        // Sometimes our own proposals by value too: a fresh client's Add
        // (listing EXT, so fitting any extensions the group may adopt) or a
        // Remove of another member (often the rightmost: the tree truncates).
        let mut by_value_kps: Vec<Vec<u8>> = Vec::new();
        let mut by_value_removes: Vec<u32> = Vec::new();
        if self.room_for_add() && self.chance(20) {
            let m = self.fresh_member("byvalue");
            by_value_kps.push(self.new_joiner(m, SUITE, true, LIFETIME));
            self.stats.inc("by-value:Add");
        }
        if self.members.len() > 3 && self.chance(20) {
            let me = self.members[c].group.own_leaf().0;
            let others: Vec<u32> = self.members.iter().map(|m| m.group.own_leaf().0).filter(|l| *l != me).collect();
            let removed = if self.chance(70) { *others.iter().max().unwrap() } else { others[self.pick(others.len())] };
            by_value_removes.push(removed);
            self.stats.inc("by-value:Remove");
        }
        let mut by_value: Vec<Proposal<'_>> = by_value_kps
            .iter()
            .map(|kp| Proposal::Add(Add { key_package: KeyPackage::decode_exact(kp).unwrap() }))
            .collect();
        by_value.extend(by_value_removes.iter().map(|r| Proposal::Remove(Remove { removed: *r })));

        // A path leaf our identity policy refuses as our successor: refused
        // when created (§5.3.1), the group unchanged (in the store too).
        if self.chance(10) {
            let epoch = self.members[c].group.epoch();
            let bad = template(&self.members[c], b"mallory", ext);
            let opts = CommitOptions { proposals: &by_value, force_path: true, leaf: Some(bad), ..CommitOptions::DEFAULT };
            match self.create_commit(c, &opts) {
                Err(CreateCommitError::Commit(CommitError::InvalidSuccessor)) => self.stats.inc("bad-template-refused"),
                other => panic!("seed {} round {round}: {}: a path leaf of another credential: {other:?}", self.seed, self.members[c].name),
            }
            assert_eq!(self.members[c].group.epoch(), epoch);
            assert!(!self.members[c].group.has_staged_commit());
            self.maybe_reboot(c, "refused-commit", 50);
        }

        // Sometimes a Commit of the pending proposals is staged, then
        // dropped (the delivery service refused it): discarded in the store.
        if self.chance(10) {
            let opts = CommitOptions { include_pending: true, force_path: self.chance(50), wire_format, ..CommitOptions::DEFAULT };
            if let Err(e) = self.create_commit(c, &opts) {
                panic!("FINDING seed {} round {round}: {}: a Commit to discard: {e:?}", self.seed, self.members[c].name);
            }
            self.maybe_reboot(c, "own-staged-to-discard", 50);
            assert!(self.members[c].group.has_staged_commit());
            self.discard(c);
            self.stats.inc("discarded");
            self.maybe_reboot(c, "discarded", 50);
            assert!(!self.members[c].group.has_staged_commit());
        }

        let pending = self.members[c].group.pending_proposals().count();
        let old_epoch = self.members[c].group.epoch();
        let old_leaves = self.members[c].group.tree().n_leaves();
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
        let committer = self.members[c].name;
        let (commit, welcome, summary) = match self.create_commit(c, &opts) {
            Ok(out) => out,
            Err(e) => panic!(
                "FINDING seed {} round {round}: {committer} could not commit {pending} pending proposals ({:?}, by value {}): {e:?}",
                self.seed,
                self.sent,
                by_value.len()
            ),
        };
        self.stats.inc("commits-created");
        self.stats.inc(format!("commit-shape:path={}:{wire_format:?}", summary.has_path));
        self.add_count("committed:adds", summary.adds.into());
        self.add_count("committed:removes", summary.removes.into());
        self.add_count("committed:updates", summary.updates.into());
        self.add_count("committed:psks", summary.psks.into());
        if summary.extensions_changed {
            self.stats.inc("committed:gce");
        }
        // Rebooted with its Commit staged: the stage is loaded, then merged.
        self.maybe_reboot(c, "own-staged", 30);
        assert!(self.members[c].group.has_staged_commit());
        self.merge(c);
        self.maybe_reboot(c, "merged", 12);
        let join_psks = JoinPsks(GROUP_ID, old_epoch, self.members[c].group.resumption_psk(old_epoch).expect("kept").to_vec());

        // Every other member accepts it.
        let mut removed = Vec::with_capacity(self.members.len());
        for j in 0..self.members.len() {
            if j == c {
                // The committer merged above (and cannot remove itself).
                removed.push(false);
                continue;
            }
            let stored = self.stores[j].is_some();
            // Rebooted with the Commit processed but not saved (as
            // `process_message` leaves it): the store holds the epoch
            // before it, and the Commit is processed again.
            let unsaved = stored && self.chance(12);
            let before = unsaved.then(|| observe(&mut self.members[j]));
            let mut got = self.receive(j, &commit);
            if let (Some(before), Ok(Got::Commit(_))) = (&before, &got) {
                self.reboot(j, "other-staged-unsaved");
                let after = observe(&mut self.members[j]);
                self.same(j, "other-staged-unsaved", before, &after);
                got = self.receive(j, &commit);
            } else if stored && matches!(got, Ok(Got::Commit(_))) && self.chance(15) {
                // Saved while staged: the stage is stored and loaded.
                let m = &mut self.members[j];
                m.group.stored(self.stores[j].as_mut().unwrap(), SLOT, &mut rb()).save(Parts::ALL).unwrap();
                self.maybe_reboot(j, "other-staged-saved", 100);
            }
            match got {
                Ok(Got::Commit(s)) => {
                    assert_eq!((s.adds, s.removes, s.updates, s.psks), (summary.adds, summary.removes, summary.updates, summary.psks));
                    removed.push(s.removes_us);
                    self.merge(j);
                    self.stats.inc("commits-accepted");
                    if !s.removes_us {
                        self.maybe_reboot(j, "merged", 12);
                    }
                }
                other => panic!(
                    "FINDING seed {} round {round}: {} refused the Commit of {committer} ({summary:?}; sent this round: {:?}): {other:?}",
                    self.seed,
                    self.members[j].name,
                    self.sent
                ),
            }
        }
        let n_removed = removed.iter().filter(|r| **r).count();
        assert_eq!(n_removed as u32, summary.removes, "seed {} round {round}", self.seed);
        // Removed members end inactive, and load as such.
        for (j, gone) in removed.iter().enumerate() {
            if *gone {
                assert!(self.members[j].group.is_inactive(), "{}: removed but active", self.members[j].name);
                if self.maybe_reboot(j, "removed", 100) {
                    assert!(self.members[j].group.is_inactive(), "{}: removed, loaded active", self.members[j].name);
                }
            }
        }
        let members = std::mem::take(&mut self.members);
        let stores = std::mem::take(&mut self.stores);
        for ((m, s), gone) in members.into_iter().zip(stores).zip(&removed) {
            if !gone {
                self.members.push(m);
                self.stores.push(s);
            }
        }
        self.add_count("members-removed", n_removed as u64);
        let new_leaves = self.members[0].group.tree().n_leaves();
        if new_leaves < old_leaves {
            self.stats.inc("truncations");
        }

        // The new members join by the Welcome: those whose KeyPackage's leaf
        // is in the tree; a persisting one through its store, whose
        // KeyPackage keys are then gone.
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
            let result = match j.store.as_mut() {
                Some(s) => {
                    let r = j.m.group.stored(s, SLOT, &mut rb()).join_with(welcome, &params, &mut buf).map_err(|e| format!("{e:?}"));
                    if r.is_ok() {
                        let reference = KeyPackage::decode_exact(kp).unwrap().reference(SUITE).unwrap();
                        let left = load_key_package::<_, SignaturePrivateKey>(s, &reference, &mut rb()).unwrap();
                        assert!(left.is_none(), "seed {}: {}: the KeyPackage's keys stayed after the join", self.seed, j.m.name);
                        self.stats.inc("joined:stored");
                    }
                    r
                }
                None => j.m.group.join_in_memory(welcome, &params, &mut buf).map_err(|e| format!("{e:?}")),
            };
            if let Err(e) = result {
                panic!("FINDING seed {} round {round}: {} could not join: {e}", self.seed, j.m.name);
            }
            joined += 1;
            self.members.push(j.m);
            self.stores.push(j.store);
            let last = self.members.len() - 1;
            self.maybe_reboot(last, "joined", 40);
        }
        assert_eq!(joined, summary.adds, "seed {} round {round}: joined", self.seed);
        self.add_count("members-joined", joined.into());
        self.check_agreement();
        // Each member holds no pending proposals in the new epoch.
        assert!(self.members.iter().all(|m| m.group.pending_proposals().count() == 0));

        // An application message from a random member, read by all: a
        // sender or receiver that reloaded a stale ratchet would reuse a
        // generation (refused by the others, §9.2) or refuse a new one.
        if self.chance(40) {
            self.application(round);
        }
    }

    /// Every member is in the same epoch with the same tree.
    fn check_agreement(&mut self) {
        let all: Vec<&Member> = self.members.iter().collect();
        agree(&all);
        let trees: Vec<Vec<u8>> = self.members.iter_mut().map(|m| observe(m).tree.expect("a tree")).collect();
        assert!(trees.windows(2).all(|w| w[0] == w[1]), "seed {} round {}: trees differ", self.seed, self.round);
    }

    fn application(&mut self, round: usize) {
        let i = self.pick(self.members.len());
        let data = format!("round {round} from {}", self.members[i].name).into_bytes();
        let mut out = vec![0u8; data.len() + 512];
        let m = &mut self.members[i];
        let msg = match self.stores[i].as_mut() {
            Some(s) => m.group.stored(s, SLOT, &mut rb()).protect_application(&data, b"", 8, &mut m.rng, &mut out).unwrap().to_vec(),
            None => m.group.protect_application_in_memory(&data, b"", 8, &mut m.rng, &mut out).unwrap().to_vec(),
        };
        self.stats.inc("app-sent");
        self.maybe_reboot(i, "app-sent", 20);
        for j in 0..self.members.len() {
            if j == i {
                continue;
            }
            match self.receive(j, &msg) {
                Ok(Got::Application(d)) if d == data => {}
                other => panic!("FINDING seed {} round {round}: {} could not read {}'s message: {other:?}", self.seed, self.members[j].name, self.members[i].name),
            }
            self.maybe_reboot(j, "app-read", 10);
        }
    }
}

fn got(r: Received<'_>) -> Got {
    match r {
        Received::Proposal { .. } => Got::Proposal,
        Received::Commit(s) => Got::Commit(s),
        Received::Application { data, .. } => Got::Application(data.to_vec()),
    }
}

/// Alice's group (kept in her store), with three members added.
fn start(seed: u64) -> World {
    let mut w = World {
        seed,
        rng: TestRng(seed),
        members: Vec::new(),
        stores: Vec::new(),
        joiners: Vec::new(),
        kp_states: Vec::new(),
        update_states: Vec::new(),
        kp_epoch_start: 0,
        update_epoch_start: 0,
        next_id: 0,
        stats: Stats::default(),
        sent: Vec::new(),
        round: 0,
    };
    let mut alice = w.fresh_member("alice");
    let mut store = MapStorage::default();
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
    alice.group.stored(&mut store, SLOT, &mut rb()).create(&params, &signer, &mut alice.rng).unwrap();
    w.members.push(alice);
    w.stores.push(Some(store));
    w.maybe_reboot(0, "created", 100);
    for _ in 0..3 {
        let m = w.fresh_member("member");
        let ext = w.chance(70);
        let kp = w.new_joiner(m, SUITE, ext, LIFETIME);
        let p = Proposal::Add(Add { key_package: KeyPackage::decode_exact(&kp).unwrap() });
        let a = &mut w.members[0];
        let mut out = vec![0u8; 8192];
        let msg = a.group.propose(&p, WireFormatPolicy::Public, &mut a.rng, &mut out).unwrap().to_vec();
        a.group.stored(w.stores[0].as_mut().unwrap(), SLOT, &mut rb()).save(Parts::RATCHETS.with(Part::Proposals)).unwrap();
        for r in 1..w.members.len() {
            assert!(matches!(w.receive(r, &msg), Ok(Got::Proposal)));
        }
        w.commit(0);
    }
    assert!(w.members.len() >= 3);
    w
}

fn run(seed: u64, rounds: usize) -> Stats {
    let t0 = Instant::now();
    println!("store_roundtrip: seed {seed} ({rounds} rounds; replay with STORE_ROUNDTRIP_SEED={seed})");
    let mut w = start(seed);
    for round in 1..=rounds {
        w.sent.clear();
        w.round = round;
        let n = 1 + w.pick(6);
        for _ in 0..n {
            let i = w.pick(w.members.len());
            w.propose(i);
        }
        w.commit(round);
        w.stats.inc("rounds");
        w.stats.inc(format!("group-size:{}", w.members.len()));
        let persisting = w.stores.iter().filter(|s| s.is_some()).count();
        w.add_count("member-rounds:persisting", persisting as u64);
        w.add_count("member-rounds:in-memory", (w.stores.len() - persisting) as u64);
    }
    println!("seed {seed}: {:.2?}", t0.elapsed());
    w.stats.print(60);
    w.stats
}

/// The counts show the run did what it is for: reboots at every kind of
/// point, Commits created and accepted, members joined (through their
/// store) and removed, trees truncated, messages read after reboots.
fn check(s: &Stats, rounds: u64) {
    assert_eq!(s.get("rounds"), rounds);
    // (With room for fewer members, a second KeyPackage of a pending joiner is rarer.)
    for k in KINDS {
        let min = if k == Kind::AddPendingSignatureKey { 1 } else { rounds / 80 };
        assert!(s.get(&format!("sent:{k:?}")) >= min, "{k:?} sent {} times", s.get(&format!("sent:{k:?}")));
    }
    assert_eq!(s.get("commits-created"), rounds + 3);
    assert!(s.get("commits-accepted") >= 3 * rounds, "commits accepted");
    assert!(s.get("members-joined") >= rounds / 4, "members joined");
    assert!(s.get("joined:stored") >= rounds / 6, "members joined through their store");
    assert!(s.get("members-removed") >= rounds / 8, "members removed");
    assert!(s.get("truncations") >= rounds / 30, "trees truncated");
    assert!(s.get("committed:updates") >= rounds / 10, "updates committed");
    assert!(s.get("committed:psks") >= rounds / 10, "psks committed");
    assert!(s.get("committed:gce") >= rounds / 40, "GCEs committed");
    assert!(s.get("discarded") >= rounds / 20, "staged Commits discarded");
    for (shape, min) in [("path=true:Public", 20), ("path=true:Private", 20), ("path=false:Public", 40), ("path=false:Private", 40)] {
        assert!(s.get(&format!("commit-shape:{shape}")) >= rounds / min, "{shape}");
    }
    for (point, min) in [
        ("proposal-received", 4),
        ("own-proposal", 4),
        ("own-staged", 8),
        ("own-staged-to-discard", 80),
        ("discarded", 80),
        ("other-staged-saved", 8),
        ("other-staged-unsaved", 8),
        ("merged", 2),
        ("joined", 20),
        ("removed", 20),
        ("refused-commit", 80),
        ("app-sent", 80),
        ("app-read", 20),
    ] {
        assert!(s.get(&format!("reboot:{point}")) >= rounds / min, "reboots at {point}: {}", s.get(&format!("reboot:{point}")));
    }
    assert!(s.get("app-read:stored") >= rounds / 4, "messages read through a store");
    assert_eq!(s.sum("recv-refused:"), 0, "proposals refused on receipt");
}

#[test]
fn stored_members_reboot_anywhere_and_agree() {
    let rounds: usize = std::env::var("STORE_ROUNDTRIP_ROUNDS").ok().map_or(300, |r| r.parse().expect("rounds"));
    let seeds: Vec<u64> = match std::env::var("STORE_ROUNDTRIP_SEED") {
        Ok(s) => vec![s.parse().expect("a u64 seed")],
        Err(_) => vec![0x5709_e000_0001, 0x5709_e000_0002],
    };
    for seed in seeds {
        let stats = run(seed, rounds);
        if std::env::var("STORE_ROUNDTRIP_ROUNDS").is_err() {
            check(&stats, rounds as u64);
        }
    }
}
