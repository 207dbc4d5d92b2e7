//! The simulation itself, for one group capacity.

use super::persist::{GROUP_SLOT, MemberStore, Progress, StateDir};
use super::stats::{Msg, Op, Stats};
use super::{CLOCK_START, Config, FleetError, FleetGroup, Report};
use mls_nostd::store::MAX_RECORD_LEN;
use mls_nostd::store::durable::RecordBuffer;
use crate::RayonExecutor;
use rayon::prelude::*;
use chacha20::ChaCha20Rng;
use indicatif::{ProgressBar, ProgressStyle};
use mls_nostd::codec::Decode;
use mls_nostd::credential::Credential;
use mls_nostd::crypto::signature::SignaturePrivateKey;
use mls_nostd::crypto::CipherSuite;
use mls_nostd::extensions::{Extensions, U16List};
use mls_nostd::group::{
    CommitBuffers, CommitOptions, CreateParams, JoinParams, Received, WireFormatPolicy, default_capabilities,
};
use mls_nostd::key_package::{KeyPackage, KeyPackageParams, KeyPackagePrivateKeys};
use mls_nostd::leaf_node::Lifetime;
use mls_nostd::messages::proposal::{Add, Proposal, Remove};
use mls_nostd::psk::NoPsks;
use mls_nostd::ratchet_tree::treekem::LeafTemplate;
use rand_core::{Rng, SeedableRng};
use std::time::{Duration, Instant};

/// Seconds the simulated clock advances per round.
const ROUND_SECONDS: u64 = 600;
/// Validity of a KeyPackage (and of the leaf made from it).
const LIFETIME_SECONDS: u64 = 30 * 86_400;

fn err(who: &str, what: &str, e: impl std::fmt::Debug) -> FleetError {
    FleetError(format!("{who}: {what} failed: {e:?}"))
}

fn short_hex(b: &[u8]) -> String {
    b.iter().take(8).map(|x| format!("{x:02x}")).collect()
}

struct Member<const N: usize, const A: usize> {
    name: String,
    signer: SignaturePrivateKey,
    group: Box<FleetGroup<N, A>>,
    /// A published KeyPackage waiting for its Welcome, with its private keys.
    pending: Option<(Vec<u8>, KeyPackagePrivateKeys)>,
    /// Its directory in the state directory.
    store: MemberStore,
}

impl<const N: usize, const A: usize> Member<N, A> {
    fn active(&self) -> bool {
        !self.group.is_inactive()
    }
}

/// Output buffers, allocated once for the run.
struct Buffers {
    message: Vec<u8>,
    welcome: Vec<u8>,
    group_info: Vec<u8>,
}

struct Fleet<'s, const N: usize, const A: usize> {
    suite: CipherSuite,
    now: u64,
    rng: ChaCha20Rng,
    members: Vec<Member<N, A>>,
    stats: Stats,
    bufs: Buffers,
    epochs_checked: u64,
    store: &'s mut StateDir,
    /// One record, for every save and load.
    record: Box<RecordBuffer>,
    /// Bytes on disk of every member at the last save.
    on_disk: Vec<u64>,
    seed: u64,
    rounds: u64,
}

fn persist(e: super::persist::PersistError) -> FleetError {
    FleetError(e.to_string())
}

impl<const N: usize, const A: usize> Fleet<'_, N, A> {
    fn lifetime(&self) -> Lifetime {
        Lifetime { not_before: self.now - 3600, not_after: self.now + LIFETIME_SECONDS }
    }

    /// Member `i` publishes a fresh KeyPackage and keeps its private keys.
    fn publish_key_package(&mut self, i: usize) -> Result<(), FleetError> {
        let lifetime = self.lifetime();
        let m = &mut self.members[i];
        let params = KeyPackageParams {
            suite: self.suite,
            credential: Credential::Basic { identity: m.name.as_bytes() },
            lifetime,
            leaf_extensions: Extensions::default(),
            extensions: Extensions::default(),
            supported_extensions: U16List::default(),
            supported_proposals: U16List::default(),
        };
        let mut out = [0u8; 2048];
        let (bytes, keys) =
            KeyPackage::generate(&params, &m.signer, &mut self.rng, &mut out).map_err(|e| err(&m.name, "KeyPackage", e))?;
        self.stats.size(Msg::KeyPackage, bytes.len());
        // Its keys are stored before the KeyPackage leaves the device.
        m.store.save_pending(bytes, &keys, &m.signer, &mut self.record).map_err(persist)?;
        m.pending = Some((bytes.to_vec(), keys));
        Ok(())
    }

    /// Member `i` commits `proposals` (with a path if `path`) and merges;
    /// returns the Commit, the Welcome and the time both took.
    fn commit(&mut self, i: usize, proposals: &[Proposal<'_>], path: bool) -> Result<Committed, FleetError> {
        let m = &mut self.members[i];
        let public = m.signer.public_key();
        let mut caps = [0u8; 8];
        let template = LeafTemplate {
            signature_key: public.as_bytes(),
            credential: Credential::Basic { identity: m.name.as_bytes() },
            capabilities: default_capabilities(self.suite, &mut caps),
            extensions: Extensions::default(),
        };
        let opts = CommitOptions {
            proposals,
            include_pending: false,
            force_path: path,
            ratchet_tree_in_welcome: true,
            // Key updates travel encrypted; the gateway's membership changes in
            // the clear, so that a delivery service could check them.
            wire_format: if path { WireFormatPolicy::Private } else { WireFormatPolicy::Public },
            padding: 0,
            authenticated_data: &[],
            leaf: Some(template),
        };
        let bufs = CommitBuffers {
            message: &mut self.bufs.message,
            welcome: &mut self.bufs.welcome,
            group_info: &mut self.bufs.group_info,
        };
        let start = Instant::now();
        // The staged epoch is stored before the Commit leaves (a reboot can
        // still merge what the group accepted), the merged one before the next step.
        let out = m
            .group
            .stored(m.store.storage(), GROUP_SLOT, &mut self.record).commit(&opts, &NoPsks, self.now, &mut self.rng, &RayonExecutor, bufs)
            .map_err(|e| err(&m.name, "commit", e))?;
        m.group
            .stored(m.store.storage(), GROUP_SLOT, &mut self.record).merge_staged_commit()
            .map_err(|e| err(&m.name, "merge", e))?;
        let time = start.elapsed();
        let (commit, welcome) = (out.commit.to_vec(), out.welcome.map(<[u8]>::to_vec));
        Ok(Committed { commit, welcome, time })
    }

    /// Every active member but `committer` processes `commit` and merges it
    /// (members in parallel: see [`each_member`]).
    fn distribute(&mut self, committer: usize, commit: &[u8]) -> Result<(), FleetError> {
        let now = self.now;
        let times = each_member(
            &mut self.members,
            |i, m| i != committer && m.active(),
            |m, record, incoming| {
                incoming.clear();
                incoming.extend_from_slice(commit);
                let start = Instant::now();
                let storage = m.store.storage();
                match m.group.stored(storage, GROUP_SLOT, record).process_message_with_psks(incoming, &NoPsks, now) {
                    Ok(Received::Commit(_)) => m
                        .group
                        .stored(m.store.storage(), GROUP_SLOT, record)
                        .merge_staged_commit()
                        .map_err(|e| err(&m.name, "merge", e))?,
                    Ok(other) => return Err(FleetError(format!("{}: expected a Commit, got {other:?}", m.name))),
                    Err(e) => return Err(err(&m.name, "processing a Commit", e)),
                }
                Ok(start.elapsed())
            },
        )?;
        for t in times {
            self.stats.time(Op::ProcessCommit, t);
        }
        Ok(())
    }

    /// Every active member is in `reference`'s epoch with its epoch authenticator.
    fn check_agreement(&mut self, reference: usize) -> Result<(), FleetError> {
        let r = &self.members[reference];
        let (epoch, auth) = (r.group.epoch(), r.group.epoch_authenticator());
        for m in self.members.iter().filter(|m| m.active()) {
            if m.group.epoch() != epoch || m.group.epoch_authenticator() != auth {
                return Err(FleetError(format!(
                    "epoch authenticators disagree: {} is at epoch {} with {}, {} at epoch {epoch} with {}",
                    m.name,
                    m.group.epoch(),
                    short_hex(m.group.epoch_authenticator()),
                    r.name,
                    short_hex(auth),
                )));
            }
        }
        self.epochs_checked += 1;
        Ok(())
    }

    /// After loading: every member is active, in the epoch the progress
    /// names, with its authenticator (members ahead of it mean the run was
    /// stopped during a round).
    fn check_loaded(&self, p: &Progress) -> Result<(), FleetError> {
        for m in &self.members {
            if !m.active() || m.group.epoch() != p.epoch || m.group.epoch_authenticator() != p.epoch_authenticator.as_slice() {
                return Err(FleetError(format!(
                    "state directory {}: {} is {} epoch {} with {}, but {} says epoch {} with {} after round {} \
                     (a run stopped during a round cannot be resumed)",
                    self.store.path().display(),
                    m.name,
                    if m.active() { "at" } else { "removed, at" },
                    m.group.epoch(),
                    short_hex(m.group.epoch_authenticator()),
                    super::persist::PROGRESS_FILE,
                    p.epoch,
                    short_hex(&p.epoch_authenticator),
                    p.rounds_done,
                )));
            }
        }
        Ok(())
    }

    /// Member `i` joins from `welcome` with its pending KeyPackage.
    fn join(&mut self, i: usize, welcome: &[u8]) -> Result<(), FleetError> {
        let time = join_member(&mut self.members[i], welcome, &mut self.record)?;
        self.stats.time(Op::Join, time);
        Ok(())
    }

    /// `k` distinct devices (members 1..), at random.
    fn pick_devices(&mut self, k: usize) -> Vec<usize> {
        let mut all: Vec<usize> = (1..self.members.len()).collect();
        let k = k.min(all.len());
        for j in 0..k {
            let left = (all.len() - j) as u64;
            let r = j + (self.rng.next_u64() % left) as usize;
            all.swap(j, r);
        }
        all.truncate(k);
        all
    }

    /// The gateway creates the group and adds every device; all join.
    fn start(&mut self, bar: &ProgressBar) -> Result<(), FleetError> {
        for i in 1..self.members.len() {
            self.publish_key_package(i)?;
        }
        let lifetime = self.lifetime();
        let mut caps = [0u8; 8];
        let mut group_id = [0u8; 16];
        self.rng.fill_bytes(&mut group_id);
        let gateway = &mut self.members[0];
        let params = CreateParams {
            suite: self.suite,
            group_id: &group_id,
            credential: Credential::Basic { identity: gateway.name.as_bytes() },
            lifetime,
            capabilities: default_capabilities(self.suite, &mut caps),
            extensions: Extensions::default(),
            config: crate::fleet::group_config(),
        };
        let start = Instant::now();
        gateway.group.create(&params, &gateway.signer, &mut self.rng).map_err(|e| err(&gateway.name, "create", e))?;
        let created = start.elapsed();

        let kps: Vec<Vec<u8>> = self.members[1..]
            .iter()
            .map(|m| m.pending.as_ref().map(|(kp, _)| kp.clone()).unwrap_or_default())
            .collect();
        let adds = kps
            .iter()
            .map(|kp| KeyPackage::decode_exact(kp).map(|key_package| Proposal::Add(Add { key_package })))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| err("gateway", "decoding a KeyPackage", e))?;
        let c = self.commit(0, &adds, false)?;
        self.stats.time(Op::CreateAndAdd, created + c.time);
        self.stats.size(Msg::CommitAddAll, c.commit.len());
        let welcome = c.welcome.ok_or_else(|| FleetError("gateway: the Commit of the Adds has no Welcome".into()))?;
        self.stats.size(Msg::WelcomeAll, welcome.len());
        bar.inc(1);
        // The devices join in parallel (see `each_member`).
        let times = each_member(&mut self.members, |i, _| i > 0, |m, record, _| {
            let time = join_member(m, &welcome, record);
            bar.inc(1);
            time
        })?;
        if times.len() != self.members.len() - 1 {
            return Err(FleetError(format!("{} of {} devices joined", times.len(), self.members.len() - 1)));
        }
        for t in times {
            self.stats.time(Op::Join, t);
        }
        self.check_agreement(0)
    }

    /// One round: key updates, removals and re-adds, application messages.
    fn round(&mut self, round: u64, bar: &ProgressBar) -> Result<(), FleetError> {
        self.now += ROUND_SECONDS;
        let devices = self.members.len() - 1;

        // Key updates: empty Commits with a path.
        for d in self.pick_devices(updates_per_round(devices)) {
            let c = self.commit(d, &[], true)?;
            self.stats.time(Op::CommitWithPath, c.time);
            self.stats.size(Msg::CommitWithPath, c.commit.len());
            self.distribute(d, &c.commit)?;
            self.check_agreement(d)?;
            bar.inc(1);
        }

        // Removals and re-adds, by the gateway.
        for d in self.pick_devices(removals_per_round(devices)) {
            let leaf = self.members[d].group.own_leaf().0;
            let c = self.commit(0, &[Proposal::Remove(Remove { removed: leaf })], false)?;
            self.stats.time(Op::CommitWithoutPath, c.time);
            self.stats.size(Msg::CommitWithoutPath, c.commit.len());
            self.distribute(0, &c.commit)?;
            if self.members[d].active() {
                return Err(FleetError(format!("{}: still active after its removal", self.members[d].name)));
            }
            self.check_agreement(0)?;
            bar.inc(1);

            self.publish_key_package(d)?;
            let kp = self.members[d].pending.as_ref().map(|(kp, _)| kp.clone()).unwrap_or_default();
            let key_package = KeyPackage::decode_exact(&kp).map_err(|e| err("gateway", "decoding a KeyPackage", e))?;
            let c = self.commit(0, &[Proposal::Add(Add { key_package })], false)?;
            self.stats.time(Op::CommitWithoutPath, c.time);
            self.stats.size(Msg::CommitWithoutPath, c.commit.len());
            self.distribute(0, &c.commit)?;
            let welcome = c.welcome.ok_or_else(|| FleetError("gateway: the Commit of an Add has no Welcome".into()))?;
            self.stats.size(Msg::WelcomeOne, welcome.len());
            self.join(d, &welcome)?;
            self.check_agreement(0)?;
            bar.inc(1);
        }

        // Application messages: every member sends one, all others decrypt it.
        let mut out = vec![0u8; 1024];
        for s in 0..self.members.len() {
            let reading = self.rng.next_u32() % 1000;
            let payload = format!("{} round {round}: {}.{} °C", self.members[s].name, reading / 10, reading % 10);
            let sender = &mut self.members[s];
            let sender_leaf = sender.group.own_leaf();
            let start = Instant::now();
            // Returned only once the sending ratchet's position is stored.
            let sent = sender
                .group
                .stored(sender.store.storage(), GROUP_SLOT, &mut self.record).protect_application(payload.as_bytes(), &[], 0, &mut self.rng, &mut out)
                .map_err(|e| err(&sender.name, "protect", e))?;
            self.stats.time(Op::Protect, start.elapsed());
            self.stats.size(Msg::Application, sent.len());
            let sent = sent.to_vec();
            let now = self.now;
            let payload = payload.as_bytes();
            let times = each_member(
                &mut self.members,
                |r, _| r != s,
                |m, record, incoming| {
                    incoming.clear();
                    incoming.extend_from_slice(&sent);
                    let start = Instant::now();
                    // Returned only once the receiving ratchet is stored (a
                    // replay after a restart stays rejected).
                    let storage = m.store.storage();
                    let received = m.group.stored(storage, GROUP_SLOT, record).process_message_with_psks(incoming, &NoPsks, now);
                    let elapsed = start.elapsed();
                    match received {
                        Ok(Received::Application { sender, data, .. }) if sender == sender_leaf && data == payload => Ok(elapsed),
                        Ok(other) => Err(FleetError(format!("{}: wrong application message: {other:?}", m.name))),
                        Err(e) => Err(err(&m.name, "unprotect", e)),
                    }
                },
            )?;
            if times.len() != self.members.len() - 1 {
                return Err(FleetError(format!("{} of {} members read a message", times.len(), self.members.len() - 1)));
            }
            for t in times {
                self.stats.time(Op::Unprotect, t);
            }
            bar.inc(1);
        }
        Ok(())
    }

    /// Saves every member in full, then the progress (the round's commit point).
    fn save(&mut self, rounds_done: u64) -> Result<(), FleetError> {
        let saved = each_member(&mut self.members, |_, _| true, |m, record, _| {
            let start = Instant::now();
            let bytes = m.store.save_group(&mut m.group, record).map_err(persist)?;
            Ok((bytes, start.elapsed()))
        })?;
        for (i, (bytes, time)) in saved.into_iter().enumerate() {
            self.on_disk[i] = bytes;
            self.stats.time(Op::Checkpoint, time);
        }
        let gateway = &self.members[0].group;
        let progress = Progress {
            seed: self.seed,
            rng_word_pos: self.rng.get_word_pos(),
            rounds_done,
            rounds: self.rounds,
            suite: self.suite.to_u16(),
            devices: self.members.len() - 1,
            epoch: gateway.epoch(),
            epoch_authenticator: gateway.epoch_authenticator().to_vec(),
            epochs_checked: self.epochs_checked,
        };
        self.store.save_progress(&progress).map_err(persist)
    }
}

/// Member `m` joins from `welcome` with its pending KeyPackage; returns the
/// time the join took.
fn join_member<const N: usize, const A: usize>(
    m: &mut Member<N, A>,
    welcome: &[u8],
    record: &mut RecordBuffer,
) -> Result<Duration, FleetError> {
    let (kp, keys) = m.pending.take().ok_or_else(|| FleetError(format!("{}: no KeyPackage to join with", m.name)))?;
    let params = JoinParams {
        executor: &RayonExecutor,
        key_package: &kp,
        keys: &keys,
        signer: &m.signer,
        ratchet_tree: None,
        psks: &NoPsks,
        config: crate::fleet::group_config(),
    };
    let mut buf = vec![0u8; welcome.len()];
    let start = Instant::now();
    // The keys come from the member's store, which loses them at the
    // commit point that stores the joined group.
    m.group
        .stored(m.store.storage(), GROUP_SLOT, record)
        .join_with(welcome, &params, &mut buf)
        .map_err(|e| err(&m.name, "join", e))?;
    let time = start.elapsed();
    m.store.clear_pending().map_err(persist)?;
    Ok(time)
}

/// Runs `step` for every member `pick` chooses, the members in parallel on
/// rayon's threads (each thread with its own record buffer and message
/// buffer), and returns what the steps returned in member order, or the
/// error of the first member (in member order) whose step failed.
///
/// Members are separate devices: a step reads and writes one member's group
/// and store only, and no step takes the fleet's RNG, so the order in which
/// they run changes the wall time and nothing else (the same seed gives the
/// same epoch authenticators; the shared SQLite database orders the writes).
fn each_member<const N: usize, const A: usize, T: Send>(
    members: &mut [Member<N, A>],
    pick: impl Fn(usize, &Member<N, A>) -> bool + Sync,
    step: impl Fn(&mut Member<N, A>, &mut RecordBuffer, &mut Vec<u8>) -> Result<T, FleetError> + Sync,
) -> Result<Vec<T>, FleetError> {
    let results: Vec<Result<T, FleetError>> = members
        .par_iter_mut()
        .enumerate()
        .filter(|(i, m)| pick(*i, m))
        .map_init(
            || (Box::new([0u8; MAX_RECORD_LEN]), Vec::new()),
            |(record, incoming), (_, m)| step(m, record, incoming),
        )
        .collect();
    results.into_iter().collect()
}

struct Committed {
    commit: Vec<u8>,
    welcome: Option<Vec<u8>>,
    time: Duration,
}

/// Devices that update their keys each round.
pub(super) fn updates_per_round(devices: usize) -> usize {
    (devices / 16).max(1)
}

/// Devices removed and re-added each round.
pub(super) fn removals_per_round(devices: usize) -> usize {
    (devices / 32).max(1)
}

fn bar(len: u64, message: String) -> ProgressBar {
    let bar = ProgressBar::new(len).with_message(message);
    if let Ok(style) = ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} {elapsed}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Runs the fleet: from the start, or after round `saved.rounds_done` of
/// the run saved in `store`.
pub(super) fn run<const N: usize, const A: usize>(
    config: &Config,
    seed: u64,
    store: &mut StateDir,
    saved: Option<&Progress>,
) -> Result<Report, FleetError> {
    let started = Instant::now();
    let mut record: Box<RecordBuffer> = Box::new([0u8; MAX_RECORD_LEN]);
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut members = Vec::with_capacity(config.devices + 1);
    let in_dir = |e: super::persist::PersistError| FleetError(format!("state directory {}: {e}", store.path().display()));
    for i in 0..=config.devices {
        let name = if i == 0 { "gateway".to_string() } else { format!("device-{:03}", i - 1) };
        let mut member_store = store.member(&name).map_err(in_dir)?;
        let mut group = crate::boxed_group();
        let (signer, pending) = match saved {
            None => {
                let mut key = [0u8; 32];
                rng.fill_bytes(&mut key);
                let signer =
                    SignaturePrivateKey::from_slice(config.suite, &key).map_err(|e| err(&name, "signature key", e))?;
                zeroize::Zeroize::zeroize(&mut key);
                member_store.save_signer(&signer).map_err(in_dir)?;
                (signer, None)
            }
            Some(_) => {
                let loaded = member_store.load(&mut group, &mut record).map_err(in_dir)?;
                (loaded.signer, loaded.pending)
            }
        };
        members.push(Member { name, signer, group, pending, store: member_store });
    }
    let (now, first_round, epochs_checked) = match saved {
        None => (CLOCK_START, 1, 0),
        Some(p) => {
            rng.set_word_pos(p.rng_word_pos);
            (CLOCK_START + p.rounds_done * ROUND_SECONDS, p.rounds_done + 1, p.epochs_checked)
        }
    };
    let big = 1usize << 20;
    let room = N * 1024;
    let n_members = members.len();
    let mut fleet = Fleet::<N, A> {
        suite: config.suite,
        now,
        rng,
        members,
        stats: Stats::default(),
        bufs: Buffers {
            message: vec![0u8; big + 2 * room],
            welcome: vec![0u8; big + room],
            group_info: vec![0u8; big + room],
        },
        epochs_checked,
        store,
        record,
        on_disk: vec![0; n_members],
        seed,
        rounds: config.rounds,
    };

    match saved {
        None => {
            let b = bar(config.devices as u64 + 1, "join".into());
            fleet.start(&b)?;
            b.finish_and_clear();
            fleet.save(0)?;
        }
        Some(p) => {
            fleet.check_loaded(p)?;
            for (i, m) in fleet.members.iter().enumerate() {
                fleet.on_disk[i] = m.store.bytes_used().map_err(persist)?;
            }
        }
    }
    let devices = config.devices;
    let steps = updates_per_round(devices) + 2 * removals_per_round(devices).min(devices) + devices + 1;
    for r in first_round..=config.rounds {
        let b = bar(steps as u64, format!("round {r}/{}", config.rounds));
        fleet.round(r, &b)?;
        b.finish_and_clear();
        fleet.save(r)?;
    }

    let gateway = &fleet.members[0];
    Ok(Report {
        seed,
        devices,
        rounds: config.rounds,
        resumed_after: saved.map(|p| p.rounds_done),
        epochs_checked: fleet.epochs_checked,
        final_epoch: gateway.group.epoch(),
        final_authenticator: gateway.group.epoch_authenticator().to_vec(),
        members: fleet.members.iter().filter(|m| m.active()).count(),
        capacity: N,
        group_bytes: size_of::<FleetGroup<N, A>>(),
        on_disk: fleet.on_disk.iter().sum::<u64>() / n_members as u64,
        on_disk_max: fleet.on_disk.iter().copied().max().unwrap_or(0),
        state_dir: fleet.store.path().to_path_buf(),
        flush: config.flush(),
        stats: fleet.stats,
        wall: started.elapsed(),
    })
}
