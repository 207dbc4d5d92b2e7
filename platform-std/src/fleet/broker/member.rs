//! One member of the fleet as its own process: the gateway (the only
//! committer) or a device. Each keeps its state in its own directory (a
//! [`StateDir`] with the member's SQLite namespace) and talks only through
//! the broker. The delivery rules are `mls_nostd::delivery`'s.

use super::log::{err_line, out};
use super::transport::{Topics, Transport};
use super::{MemberArgs, MemberResult};
use crate::fleet::persist::{GROUP_SLOT, MemberStore, StateDir};
use crate::fleet::{FleetError, FleetGroup, POLICY};
use crate::{RayonExecutor, SqliteStorage};
use mls_nostd::codec::Decode;
use mls_nostd::credential::Credential;
use mls_nostd::crypto::signature::SignaturePrivateKey;
use mls_nostd::delivery::{self, DeliveryError, Inbox, Outgoing, Verdict};
use mls_nostd::extensions::Extensions;
use mls_nostd::group::{
    CommitBuffers, CommitOptions, CreateParams, JoinParams, ReceiveError, Received, WireFormatPolicy, default_capabilities,
};
use mls_nostd::key_package::{KeyPackage, KeyPackageParams, KeyPackagePrivateKeys};
use mls_nostd::leaf_node::Lifetime;
use mls_nostd::messages::proposal::{Add, Proposal, Remove};
use mls_nostd::psk::NoPsks;
use mls_nostd::ratchet_tree::treekem::LeafTemplate;
use mls_nostd::store::durable::{DurableError, RecordBuffer};
use mls_nostd::store::{MAX_RECORD_LEN, Parts, RecordKey, Storage, StorageError};
use mls_nostd::tree_math::LeafIndex;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Write;
use std::time::{Duration, Instant};

/// Messages of future epochs a member buffers: enough for a device whose
/// Welcome comes after every other device of a 1,000-device fleet spoke in
/// the epoch it joins (the gateway sends the Welcomes one by one, each with
/// the tree), and four epochs of a 256-device fleet for a member behind.
pub const INBOX_SLOTS: usize = 1024;
/// Bytes they may take together (an application message is about 200
/// bytes, a Commit with a path for 1,024 leaves under 32 KiB).
pub const INBOX_BYTES: usize = 512 * 1024;
/// The buffer a member takes messages out of its inbox with (grown for a
/// larger one: a Commit that adds hundreds of devices).
const RELEASE_BUFFER: usize = 32 * 1024;
/// Digests of recent messages kept to recognise duplicates.
pub const INBOX_SEEN: usize = 4096;
type FleetInbox = Inbox<INBOX_SLOTS, INBOX_BYTES, INBOX_SEEN>;
/// Fault injection for tests: a device whose state directory holds this
/// file removes it and exits with [`FAULT_EXIT_CODE`] right after its next
/// join is stored, before its `joined` file is written.
pub const FAULT_EXIT_AFTER_JOIN: &str = "fault-exit-after-join";
/// The exit code of that fault.
pub const FAULT_EXIT_CODE: i32 = 75;
/// Fault injection for tests: a device whose state directory holds this
/// file removes it and exits with [`FAULT_EXIT_CODE`] when it is about to
/// rejoin (removed, or behind for good), its group saved, before its
/// `joined` file is removed.
pub const FAULT_EXIT_BEFORE_REJOIN: &str = "fault-exit-before-rejoin";
/// How long a member with nothing to do waits before it gives up, so that a
/// broken run stops by itself. A round delivers about devices² messages
/// (every device's application message to every member), and a member that
/// has opened its own waits for the slowest: on 2 cores the 1,000-thread run
/// delivered 400 to 1,000 messages per second, so an epoch there lasts tens
/// of minutes, and a fixed 120 s stopped three healthy devices. The limit is
/// 120 s (257 processes on 2 cores starve one another) plus 2 ms per
/// device² (500 deliveries per second): 2.2 min at 16 devices, 4.2 min at
/// 256, 35 min at 1,000.
fn idle_limit(devices: usize) -> Duration {
    let d = devices as u64;
    Duration::from_secs(120) + Duration::from_millis(2 * d * d)
}

fn err(who: &str, what: &str, e: impl std::fmt::Debug) -> FleetError {
    FleetError(format!("{who}: {what} failed: {e:?}"))
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn lifetime() -> Lifetime {
    let t = now();
    Lifetime { not_before: t.saturating_sub(3600), not_after: t + 30 * 86_400 }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// CPU time of this thread, in milliseconds: with many members on few
/// cores, a member's wall time is mostly waiting for a core. (Work the core
/// hands to rayon's pool, a Commit's or a join's parallel part, is not in it.)
fn cpu_ms() -> f64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `t` is a valid timespec for the call to write.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) } != 0 {
        return 0.0;
    }
    t.tv_sec as f64 * 1000.0 + t.tv_nsec as f64 / 1e6
}

fn short_digest(m: &[u8]) -> String {
    hex(&delivery::digest(m)[..4])
}

fn boxed_inbox() -> Box<FleetInbox> {
    // Built on the heap directly (half a megabyte).
    let mut slot = Box::<FleetInbox>::new_uninit();
    slot.write(FleetInbox::new(POLICY));
    // SAFETY: written just above.
    unsafe { slot.assume_init() }
}

/// A member's store with a stopwatch: the CPU time its durable operations
/// spend in SQLite, to tell state saving from MLS in `busy_ms`.
struct Timed {
    inner: MemberStore,
    ms: f64,
}

impl Timed {
    fn time<T>(&mut self, f: impl FnOnce(&mut SqliteStorage) -> T) -> T {
        let t = cpu_ms();
        let r = f(self.inner.storage());
        self.ms += cpu_ms() - t;
        r
    }
}

impl Storage for Timed {
    fn read<'b>(&mut self, key: RecordKey, buf: &'b mut [u8]) -> Result<Option<&'b [u8]>, StorageError> {
        self.time(|s| s.read(key, buf))
    }
    fn write(&mut self, key: RecordKey, value: &[u8]) -> Result<(), StorageError> {
        self.time(|s| s.write(key, value))
    }
    fn remove(&mut self, key: RecordKey) -> Result<(), StorageError> {
        self.time(|s| s.remove(key))
    }
    fn committed(&mut self) -> Result<(), StorageError> {
        self.time(|s| s.committed())
    }
}

/// What every member has: its group, store, inbox and connection.
struct Member<const N: usize, const A: usize> {
    name: String,
    signer: SignaturePrivateKey,
    group: Box<FleetGroup<N, A>>,
    store: Timed,
    /// Keeps the database open.
    _dir: StateDir,
    record: Box<RecordBuffer>,
    inbox: Box<FleetInbox>,
    /// Digests of processed messages, so a restart still knows them.
    seen_log: std::fs::File,
    net: Transport,
    topics: Topics,
    args: MemberArgs,
    result: MemberResult,
    /// (sender, epoch, counter) claims of the application messages opened.
    claims: HashSet<String>,
    /// Since when `next` found nothing (none after a message).
    idle_since: Option<Instant>,
}

impl<const N: usize, const A: usize> Member<N, A> {
    fn open(args: &MemberArgs, subscribe: &dyn Fn(&Topics) -> Vec<String>) -> Result<(Self, bool), FleetError> {
        let dir = StateDir::open(&args.dir, crate::Flush::ProcessCrash).map_err(|e| FleetError(e.to_string()))?;
        let mut store = dir.member(&args.name).map_err(|e| FleetError(e.to_string()))?;
        let mut record: Box<RecordBuffer> = Box::new([0u8; MAX_RECORD_LEN]);
        let mut group = crate::boxed_group();
        let joined = args.dir.join("joined").exists();
        let signer = if joined {
            store.load(&mut group, &mut record).map_err(|e| FleetError(e.to_string()))?.signer
        } else {
            let (signer, _) = SignaturePrivateKey::generate(args.suite, &mut crate::os_rng());
            store.save_signer(&signer).map_err(|e| FleetError(e.to_string()))?;
            signer
        };
        let mut inbox = boxed_inbox();
        // The epoch a device joined at, in its `joined` file: it has no keys
        // for earlier epochs (the gateway's is empty: it created the group).
        if let Some(epoch) = std::fs::read_to_string(args.dir.join("joined")).ok().and_then(|s| s.trim().parse().ok()) {
            inbox.joined_at(epoch);
        }
        let seen_path = args.dir.join("seen.log");
        if let Ok(text) = std::fs::read_to_string(&seen_path) {
            for line in text.lines().rev().take(INBOX_SEEN).collect::<Vec<_>>().into_iter().rev() {
                let mut d = [0u8; 16];
                if line.len() == 32 {
                    for (i, b) in d.iter_mut().enumerate() {
                        *b = u8::from_str_radix(&line[2 * i..2 * i + 2], 16).unwrap_or(0);
                    }
                    inbox.remember(d);
                }
            }
        }
        let seen_log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&seen_path)
            .map_err(|e| FleetError(format!("{}: {e}", seen_path.display())))?;
        let topics = Topics::new(&args.group);
        let client_id = format!("{}-{}", args.group, args.name);
        let net = Transport::connect(&args.host, args.port, &client_id, &subscribe(&topics), args.duplicate)?;
        let result = MemberResult { name: args.name.clone(), restarted: joined, ..Default::default() };
        let m = Self {
            name: args.name.clone(),
            signer,
            group,
            store: Timed { inner: store, ms: 0.0 },
            _dir: dir,
            record,
            inbox,
            seen_log,
            net,
            topics,
            args: args.clone(),
            result,
            claims: HashSet::new(),
            idle_since: None,
        };
        Ok((m, joined))
    }

    fn joined(&self) -> bool {
        self.group.epoch() > 0 && !self.group.is_inactive()
    }

    fn next(&mut self) -> Result<Option<rumqttc::Publish>, FleetError> {
        match self.net.next(Duration::from_millis(500)) {
            Some(p) => {
                self.idle_since = None;
                self.result.received += 1;
                Ok(Some(p))
            }
            // Idle from the first wait that found nothing: a member that was
            // busy (or starved of a core: 1,000 threads joining on 2 cores)
            // for long after its last message was not idle.
            None => {
                let limit = idle_limit(self.args.devices);
                match *self.idle_since.get_or_insert_with(Instant::now) {
                    since if since.elapsed() > limit => Err(FleetError(format!(
                        "{}: nothing happened for {} s (epoch {}; the limit for {} devices)",
                        self.name,
                        limit.as_secs(),
                        self.group.epoch(),
                        self.args.devices
                    ))),
                    _ => Ok(None),
                }
            }
        }
    }

    fn note_processed(&mut self, message: &[u8]) -> Result<(), FleetError> {
        writeln!(self.seen_log, "{}", hex(&delivery::digest(message))).map_err(|e| FleetError(format!("seen.log: {e}")))
    }

    /// Processes one group message the inbox let through. Returns what it was.
    fn process(&mut self, message: &[u8]) -> Result<Outcome, FleetError> {
        let t = cpu_ms();
        let r = self.process_inner(message);
        self.result.busy_ms += cpu_ms() - t;
        r
    }

    fn process_inner(&mut self, message: &[u8]) -> Result<Outcome, FleetError> {
        let original = message.to_vec();
        let mut buf = message.to_vec();
        let received = self.group.stored(&mut self.store, GROUP_SLOT, &mut self.record).process_message(&mut buf, now());
        let outcome = match received {
            Ok(Received::Application { authenticated_data, data, .. }) => {
                self.result.app_received += 1;
                let claim = String::from_utf8_lossy(authenticated_data).into_owned();
                if !self.claims.insert(claim) {
                    self.result.claim_repeats += 1;
                }
                Outcome::Application(String::from_utf8_lossy(data).into_owned())
            }
            Ok(Received::Proposal { .. }) => Outcome::Proposal(original.clone()),
            Ok(Received::Commit(summary)) => {
                self.group
                    .stored(&mut self.store, GROUP_SLOT, &mut self.record)
                    .merge_staged_commit()
                    .map_err(|e| err(&self.name, "merge", e))?;
                self.result.commits += 1;
                Outcome::Commit { removes_us: summary.removes_us }
            }
            // Of the previous epoch, from a member that left, whose key the
            // core no longer keeps (more left at once than it keeps): stale.
            Err(DurableError::Op(ReceiveError::DepartedSender)) => {
                self.result.stale += 1;
                self.result.departed += 1;
                Outcome::Stale
            }
            Err(e) => {
                self.result.core_refused += 1;
                err_line!("{}: refused a message of epoch {:?}: {e:?}", self.name, delivery::Envelope::parse(&original).map(|e| e.epoch));
                // Only a Commit the core authenticated and could not apply
                // says we are behind (a proposal it names was lost): rejoin
                // then. One that fails protection (another group's, a
                // forgery naming ours, a replay) is dropped, or one message
                // from any publisher on our topic would make every device
                // ask to be re-added. The cost: a device whose epoch forked
                // (the gateway committed that epoch again after losing its
                // save) fails the membership tag too, so it rejoins only
                // when a later Commit finds its buffer full, as after a
                // Commit lost upstream.
                // (The inbox reads envelopes only: a flood that fills the
                // buffer still forces a rejoin; authenticated publishers,
                // a broker ACL, close that.)
                let unauthenticated = matches!(e, DurableError::Op(ReceiveError::Protection(_) | ReceiveError::NotAGroupMessage));
                let commit = !unauthenticated
                    && delivery::Envelope::parse(&original)
                        .is_ok_and(|e| e.content_type == mls_nostd::messages::framing::ContentType::Commit);
                Outcome::Refused { commit }
            }
        };
        self.note_processed(&original)?;
        out!("processed {} -> epoch {}", short_digest(&original), self.group.epoch());
        Ok(outcome)
    }

    /// Sorts `message` through the inbox and processes what is due now,
    /// then what the buffer releases. Returns the outcomes in order.
    fn deliver(&mut self, message: &[u8]) -> Result<Vec<Outcome>, FleetError> {
        let mut out = Vec::new();
        self.result.accepted += 1;
        let verdict = self.inbox.accept(message, self.group.epoch());
        // One line per message (stdout.log of the member): what came, and what the inbox said.
        out!(
            "recv {} epoch {:?} at epoch {}: {verdict:?}",
            short_digest(message),
            delivery::Envelope::parse(message).map(|e| (e.epoch, e.content_type)),
            self.group.epoch()
        );
        match verdict {
            Ok(Verdict::Process(_)) => out.push(self.process(message)?),
            Ok(_) => return Ok(out),
            // A burst of future messages (a slow Commit, a flood): this one
            // is dropped, counted. Not a reason to rejoin: the current
            // epoch's messages are processed without the buffer, and once
            // the Commit comes the buffer empties. A lost application
            // message is only lost; a lost proposal makes the Commit that
            // names it fail (`Refused { commit: true }`: rejoin then). A
            // lost Commit is: the member could not leave its epoch, and a
            // Commit of a future epoch also says the group went on without
            // us (the committer's Commits come in order on one topic), as
            // when the broker dropped one from a full session queue.
            Err(DeliveryError::BufferFull { .. }) => {
                self.result.buffer_full += 1;
                let envelope = delivery::Envelope::parse(message);
                err_line!("{}: buffer full, dropped a message of epoch {:?}", self.name, envelope.map(|e| e.epoch));
                let commit = envelope.is_ok_and(|e| e.content_type == mls_nostd::messages::framing::ContentType::Commit);
                return Ok(if commit { vec![Outcome::TooFarBehind] } else { out });
            }
            // A bug or a hostile publisher; counted by the inbox (`too_far_ahead`).
            Err(e @ DeliveryError::TooFarAhead { .. }) => {
                err_line!("{}: {e}", self.name);
                return Ok(out);
            }
            Err(e) => {
                self.result.refused_by_policy += 1;
                err_line!("{}: {e}", self.name);
                return Ok(out);
            }
        }
        out.extend(self.release()?);
        Ok(out)
    }

    /// Processes buffered messages that became due.
    fn release(&mut self) -> Result<Vec<Outcome>, FleetError> {
        let mut out = Vec::new();
        // Most deliveries find nothing buffered: no 32 KiB buffer for them.
        if self.inbox.buffered() == 0 {
            return Ok(out);
        }
        let mut buf = vec![0u8; RELEASE_BUFFER];
        loop {
            let len = match self.inbox.release(self.group.epoch(), &mut buf) {
                Ok(Some(len)) => len,
                Ok(None) => break,
                // A larger message (a Commit adding hundreds): room for it, and again.
                Err(DeliveryError::OutputTooSmall { needed }) => {
                    buf.resize(needed, 0);
                    continue;
                }
                Err(e) => return Err(err(&self.name, "release", e)),
            };
            let message = buf[..len].to_vec();
            out.push(self.process(&message)?);
        }
        Ok(out)
    }

    fn add_inbox_stats(&mut self) {
        let s = self.inbox.stats();
        self.result.duplicates += s.duplicates;
        self.result.stale += s.stale;
        self.result.buffered += s.buffered;
        self.result.released += s.released;
        self.result.processed += s.processed;
        self.result.overflowed += s.overflowed;
        self.result.too_far_ahead += s.too_far_ahead;
    }

    fn finish(mut self) -> Result<MemberResult, FleetError> {
        self.add_inbox_stats();
        self.result.left_buffered = self.inbox.buffered() as u64;
        self.result.epoch = self.group.epoch();
        self.result.authenticator = hex(self.group.epoch_authenticator());
        self.result.bytes_out = self.net.bytes_out;
        self.result.connects = self.net.connects;
        self.result.save_ms = self.store.ms;
        self.result.write(&self.args.dir)?;
        self.net.flush_and_close(Duration::from_secs(10))?;
        Ok(self.result)
    }
}

enum Outcome {
    Application(String),
    Proposal(Vec<u8>),
    Commit { removes_us: bool },
    /// Refused by the core (a Commit or not).
    Refused { commit: bool },
    /// Too late to read (counted with the inbox's stale messages).
    Stale,
    TooFarBehind,
}

/// The gateway: creates the group, adds every device, then commits
/// `rounds` times (device Updates by reference, a removal, re-adds), and
/// once more whenever a device asks to (re)join; ends when every device is
/// in the group and has sent an application message in the last epoch.
pub fn gateway<const N: usize, const A: usize>(args: &MemberArgs) -> Result<MemberResult, FleetError> {
    if args.dir.join("joined").exists() {
        return Err(FleetError("gateway: restarting the gateway is not supported (its state directory holds a group)".into()));
    }
    let subscribe = |t: &Topics| vec![t.key_packages("+"), t.proposals(), t.application()];
    let (mut m, _) = Member::<N, A>::open(args, &subscribe)?;
    std::fs::write(args.dir.join("ready"), b"subscribed\n").map_err(|e| FleetError(format!("ready file: {e}")))?;
    let devices: BTreeSet<String> = (0..args.devices).map(device_name).collect();
    let kp_prefix = m.topics.key_packages("");
    let mut key_packages: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut bufs = (vec![0u8; 1 << 20], vec![0u8; 1 << 20], vec![0u8; 1 << 20]);

    // Every device's first KeyPackage.
    // A KeyPackage is used once (RFC 9420 §10): a redelivered one is not a
    // request to rejoin.
    let mut used_key_packages: HashSet<delivery::Digest> = HashSet::new();
    while key_packages.len() < devices.len() {
        if let Some(p) = m.next()? {
            if let Some(name) = p.topic.strip_prefix(&kp_prefix).filter(|n| devices.contains(*n))
                && used_key_packages.insert(delivery::digest(&p.payload))
            {
                key_packages.insert(name.to_string(), p.payload.to_vec());
            }
            m.net.ack(&p)?;
        }
    }
    let mut caps = [0u8; 8];
    let mut group_id = [0u8; 16];
    rand_core::Rng::fill_bytes(&mut crate::os_rng(), &mut group_id);
    let params = CreateParams {
        suite: args.suite,
        group_id: &group_id,
        credential: Credential::Basic { identity: m.name.as_bytes() },
        lifetime: lifetime(),
        capabilities: default_capabilities(args.suite, &mut caps),
        extensions: Extensions::default(),
        config: crate::fleet::group_config(),
    };
    m.group.create(&params, &m.signer, &mut crate::os_rng()).map_err(|e| err("gateway", "create", e))?;
    m.group.stored(&mut m.store, GROUP_SLOT, &mut m.record).save(Parts::ALL).map_err(|e| err("gateway", "save", e))?;
    std::fs::write(args.dir.join("joined"), b"").map_err(|e| FleetError(format!("joined file: {e}")))?;

    let mut members: BTreeSet<String> = BTreeSet::new();
    let mut heard: BTreeSet<String> = BTreeSet::new();
    let mut relay: Vec<Vec<u8>> = Vec::new();
    let mut round = 0u64;
    let started = Instant::now();
    let time_limit = super::time_limit(args.devices, args.rounds);
    let mut last_commit: Option<Instant> = None;
    loop {
        // Members asking to rejoin (a KeyPackage) wait for their Welcome: they do not speak.
        let spoke = |d: &String| heard.contains(d) || key_packages.contains_key(d);
        let all_heard = members.len() == devices.len() && members.iter().all(spoke);
        if all_heard && round >= args.rounds && key_packages.is_empty() {
            break;
        }
        // Commit when every member spoke in this epoch (or to add the first
        // or returning devices).
        if (all_heard || members.is_empty() || (members.iter().all(spoke) && !key_packages.is_empty()))
            && (!key_packages.is_empty() || round < args.rounds)
        {
            let is_round = !members.is_empty() && round < args.rounds;
            if is_round && args.pause_ms > 0 {
                std::thread::sleep(Duration::from_millis(args.pause_ms));
            }
            // A scheduled removal in every round but the last: the device
            // comes back with a fresh KeyPackage and is re-added.
            let victim = if is_round && round + 1 < args.rounds && args.devices > 1 {
                let v = device_name((round as usize) % args.devices);
                let proposers: BTreeSet<u32> = m
                    .group
                    .pending_proposals()
                    .filter_map(|p| match p.sender {
                        mls_nostd::messages::framing::Sender::Member(l) => Some(l),
                        _ => None,
                    })
                    .collect();
                leaf_of(&m.group, &v).filter(|l| !proposers.contains(l) && !key_packages.contains_key(&v)).map(|l| (v, l))
            } else {
                None
            };
            let mut removes = Vec::new();
            for name in key_packages.keys() {
                if let Some(l) = leaf_of(&m.group, name) {
                    removes.push(l);
                }
            }
            if let Some((_, l)) = &victim {
                removes.push(*l);
            }
            let kps: Vec<(String, Vec<u8>)> = std::mem::take(&mut key_packages).into_iter().collect();
            let mut proposals = Vec::new();
            for l in &removes {
                proposals.push(Proposal::Remove(Remove { removed: *l }));
            }
            for (name, kp) in &kps {
                match KeyPackage::decode_exact(kp) {
                    Ok(key_package) => proposals.push(Proposal::Add(Add { key_package })),
                    Err(e) => err_line!("gateway: a KeyPackage of {name} does not decode: {e:?}"),
                }
            }
            for p in &proposals {
                m.inbox.policy().check_outgoing(0, Outgoing::Proposal(p)).map_err(|e| err("gateway", "policy", e))?;
            }
            // The proposals it commits by reference first, in its own order.
            for r in relay.drain(..) {
                m.net.publish(&m.topics.handshake(), &r)?;
            }
            let opts = CommitOptions {
                proposals: &proposals,
                include_pending: true,
                force_path: true,
                ratchet_tree_in_welcome: true,
                wire_format: WireFormatPolicy::Public,
                padding: 0,
                authenticated_data: &[],
                leaf: None,
            };
            let (t, cpu) = (Instant::now(), cpu_ms());
            let out = m
                .group
                .stored(&mut m.store, GROUP_SLOT, &mut m.record)
                .commit(&opts, &NoPsks, now(), &mut crate::os_rng(), &RayonExecutor, CommitBuffers {
                    message: &mut bufs.0,
                    welcome: &mut bufs.1,
                    group_info: &mut bufs.2,
                })
                .map_err(|e| err("gateway", "commit", e))?;
            let (commit, welcome) = (out.commit.to_vec(), out.welcome.map(<[u8]>::to_vec));
            m.group.stored(&mut m.store, GROUP_SLOT, &mut m.record).merge_staged_commit().map_err(|e| err("gateway", "merge", e))?;
            let took = t.elapsed().as_secs_f64() * 1000.0;
            m.result.commit_ms.push(took);
            m.result.busy_ms += cpu_ms() - cpu;
            if let Some(prev) = last_commit.replace(Instant::now()) {
                m.result.round_ms.push(prev.elapsed().as_secs_f64() * 1000.0);
            }
            m.inbox.remember(delivery::digest(&commit));
            m.net.publish(&m.topics.handshake(), &commit)?;
            if let Some(w) = &welcome {
                for (name, _) in &kps {
                    m.net.publish(&m.topics.welcome(name), w)?;
                }
            }
            m.result.commits += 1;
            if let Some((v, _)) = &victim {
                members.remove(v);
            }
            for (name, _) in &kps {
                members.insert(name.clone());
            }
            heard.clear();
            if is_round {
                round += 1;
            }
            // Messages of the new epoch that came early.
            for o in m.release()? {
                gateway_outcome(&mut m, o, &mut heard, &mut relay);
            }
            continue;
        }
        if started.elapsed() > time_limit {
            return Err(FleetError(format!("gateway: the run took over {} s", time_limit.as_secs())));
        }
        let Some(p) = m.next()? else { continue };
        if let Some(name) = p.topic.strip_prefix(&kp_prefix) {
            if !devices.contains(name) {
                err_line!("gateway: a KeyPackage of an unknown device {name:?}");
            } else if used_key_packages.insert(delivery::digest(&p.payload)) {
                key_packages.insert(name.to_string(), p.payload.to_vec());
            } else {
                m.result.duplicates += 1;
            }
        } else if m.joined() {
            for o in m.deliver(&p.payload)? {
                gateway_outcome(&mut m, o, &mut heard, &mut relay);
            }
        }
        m.net.ack(&p)?;
    }
    m.net.publish(&m.topics.control(), format!("end {}", m.group.epoch()).as_bytes())?;
    m.finish()
}

fn gateway_outcome<const N: usize, const A: usize>(
    m: &mut Member<N, A>,
    o: Outcome,
    heard: &mut BTreeSet<String>,
    relay: &mut Vec<Vec<u8>>,
) {
    match o {
        Outcome::Application(text) => {
            // "<device> epoch <e> ...": heard in the current epoch.
            let mut words = text.split_whitespace();
            if let (Some(name), Some("epoch"), Some(e)) = (words.next(), words.next(), words.next())
                && e.parse() == Ok(m.group.epoch())
            {
                heard.insert(name.to_string());
            }
        }
        Outcome::Proposal(bytes) => relay.push(bytes),
        _ => {}
    }
}

/// The leaf of the member named `name`, from the tree's credentials.
fn leaf_of<const N: usize, const A: usize>(group: &FleetGroup<N, A>, name: &str) -> Option<u32> {
    let tree = group.tree();
    (0..tree.n_leaves()).find(|&i| {
        tree.leaf_node(LeafIndex(i))
            .is_some_and(|l| matches!(l.fields.credential, Credential::Basic { identity } if identity == name.as_bytes()))
    })
}

/// The name of device `i`.
pub fn device_name(i: usize) -> String {
    format!("device-{i:03}")
}

/// A device: publishes a KeyPackage, joins from its Welcome, and in every
/// epoch sends one application message (and every fourth epoch an Update
/// proposal); rejoins with a fresh KeyPackage when removed or too far
/// behind; ends at the gateway's `end <epoch>` once it is in that epoch.
pub fn device<const N: usize, const A: usize>(args: &MemberArgs) -> Result<MemberResult, FleetError> {
    let name = args.name.clone();
    let subscribe = |t: &Topics| vec![t.handshake(), t.application(), t.welcome(&name), t.control()];
    let (mut m, joined) = Member::<N, A>::open(args, &subscribe)?;
    let mut pending: Option<(Vec<u8>, KeyPackagePrivateKeys)> = None;
    if joined && m.group.is_inactive() {
        // Killed after it merged (and saved) its removal, before it removed
        // its `joined` file: it rejoins, as the removal's outcome would have
        // (it tried to speak in the group it left, and failed at every
        // restart: found in review, December 8).
        let _ = std::fs::remove_file(args.dir.join("joined"));
        let floor = m.group.epoch().saturating_add(1);
        pending = Some(publish_key_package(&mut m, floor)?);
    } else if joined {
        // A restart: speak in this epoch again (a message published before
        // the kill may never have left); the counter moves on, never back.
        speak(&mut m, false)?;
        for o in m.release()? {
            device_outcome(&mut m, o, &mut pending)?;
        }
    } else {
        // A fresh group starts at epoch 0: we join at 1 or later (or, after
        // a restart while waiting to rejoin, after the epoch we left).
        pending = Some(publish_key_package(&mut m, 1)?);
    }
    let welcome_topic = m.topics.welcome(&m.name);
    let control_topic = m.topics.control();
    let mut end: Option<u64> = None;
    loop {
        if end.is_some_and(|e| m.joined() && m.group.epoch() == e) {
            break;
        }
        let Some(p) = m.next()? else { continue };
        if p.topic == welcome_topic {
            if let Some((kp, keys)) = &pending {
                let params = JoinParams {
                    executor: &RayonExecutor,
                    key_package: kp,
                    keys,
                    signer: &m.signer,
                    ratchet_tree: None,
                    psks: &NoPsks,
                    config: crate::fleet::group_config(),
                };
                let mut buf = vec![0u8; p.payload.len()];
                match m.group.stored(&mut m.store, GROUP_SLOT, &mut m.record).join_with(&p.payload, &params, &mut buf) {
                    Ok(()) => {
                        // Fault injection for tests: die with the join
                        // stored and no `joined` file (a restart must cope).
                        if std::fs::remove_file(args.dir.join(FAULT_EXIT_AFTER_JOIN)).is_ok() {
                            std::process::exit(FAULT_EXIT_CODE);
                        }
                        m.store.inner.clear_pending().map_err(|e| FleetError(e.to_string()))?;
                        let epoch = m.group.epoch();
                        // With the epoch we joined at, for a restart (`Inbox::joined_at`).
                        std::fs::write(args.dir.join("joined"), format!("{epoch}\n"))
                            .map_err(|e| FleetError(format!("joined file: {e}")))?;
                        pending = None;
                        m.result.joins += 1;
                        m.inbox.joined_at(epoch);
                        m.result.joined_epoch = epoch;
                        speak(&mut m, true)?;
                        for o in m.release()? {
                            device_outcome(&mut m, o, &mut pending)?;
                        }
                    }
                    // A Welcome for an older KeyPackage of ours.
                    Err(e) => err_line!("{}: a Welcome that is not for our KeyPackage: {e:?}", m.name),
                }
            }
        } else if p.topic == control_topic {
            end = std::str::from_utf8(&p.payload).ok().and_then(|s| s.strip_prefix("end ")).and_then(|e| e.parse().ok());
        } else if pending.is_none() {
            for o in m.deliver(&p.payload)? {
                device_outcome(&mut m, o, &mut pending)?;
            }
        } else {
            // Waiting for a Welcome: the inbox keeps the newest epochs, the
            // one we join among them, and counts what it drops.
            m.result.accepted += 1;
            match m.inbox.accept(&p.payload, m.group.epoch()) {
                Ok(_) => {}
                // Counted by the inbox (`too_far_ahead`).
                Err(e @ DeliveryError::TooFarAhead { .. }) => err_line!("{}: {e}", m.name),
                Err(e) => {
                    m.result.refused_by_policy += 1;
                    err_line!("{}: {e}", m.name);
                }
            }
        }
        m.net.ack(&p)?;
    }
    m.finish()
}

fn device_outcome<const N: usize, const A: usize>(
    m: &mut Member<N, A>,
    o: Outcome,
    pending: &mut Option<(Vec<u8>, KeyPackagePrivateKeys)>,
) -> Result<(), FleetError> {
    let rejoin = match o {
        Outcome::Commit { removes_us: true } => true,
        Outcome::Commit { removes_us: false } => {
            speak(m, true)?;
            false
        }
        // A Commit we cannot process, or a buffer overflow: we are behind for good.
        Outcome::Refused { commit: true } | Outcome::TooFarBehind => {
            m.result.rejoins += 1;
            true
        }
        _ => false,
    };
    if rejoin && pending.is_none() {
        // Fault injection for tests: die after the Commit was merged and
        // saved, before the `joined` file is removed (a kill in that window).
        if std::fs::remove_file(m.args.dir.join(FAULT_EXIT_BEFORE_REJOIN)).is_ok() {
            std::process::exit(FAULT_EXIT_CODE);
        }
        // The Commit that adds us back comes after our epoch.
        let floor = m.group.epoch().saturating_add(1);
        let _ = std::fs::remove_file(m.args.dir.join("joined"));
        // Behind for good, the group still active: a Welcome joins only an
        // inactive slot (`JoinError::SlotInUse`), so wait with an empty one.
        if !m.group.is_inactive() {
            m.group = crate::boxed_group();
        }
        // The same inbox waits for the group to come: `await_welcome` (in
        // `publish_key_package`) drops what it still holds as stale, and
        // counts it (all of it is older than the epoch we will join at: the
        // Commit that adds us comes after our KeyPackage).
        *pending = Some(publish_key_package(m, floor)?);
    }
    Ok(())
}

/// A fresh KeyPackage, stored with its keys before it leaves; the inbox
/// then waits for a Welcome to an epoch from `floor` on (at least the one
/// in the `awaiting` file: a restart while waiting forgot the epoch it left).
fn publish_key_package<const N: usize, const A: usize>(
    m: &mut Member<N, A>,
    floor: u64,
) -> Result<(Vec<u8>, KeyPackagePrivateKeys), FleetError> {
    let awaiting = m.args.dir.join("awaiting");
    let known: u64 = std::fs::read_to_string(&awaiting).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
    let floor = floor.max(known);
    std::fs::write(&awaiting, format!("{floor}\n")).map_err(|e| FleetError(format!("awaiting file: {e}")))?;
    let params = KeyPackageParams::new(m.args.suite, Credential::Basic { identity: m.name.as_bytes() }, lifetime());
    let mut out = [0u8; 2048];
    let (bytes, keys) =
        KeyPackage::generate(&params, &m.signer, &mut crate::os_rng(), &mut out).map_err(|e| err(&m.name, "KeyPackage", e))?;
    m.store.inner.save_pending(bytes, &keys, &m.signer, &mut m.record).map_err(|e| FleetError(e.to_string()))?;
    // Bounded like a member in epoch `floor`: far-future junk is refused,
    // counted, and cannot push out the messages of the epoch we join.
    m.inbox.await_welcome_from(floor);
    let topic = m.topics.key_packages(&m.name);
    m.net.publish(&topic, bytes)?;
    Ok((bytes.to_vec(), keys))
}

/// This epoch's messages of a device: an Update proposal every fourth
/// epoch (if `propose`), and one application message.
fn speak<const N: usize, const A: usize>(m: &mut Member<N, A>, propose: bool) -> Result<(), FleetError> {
    let t = cpu_ms();
    let r = speak_inner(m, propose);
    m.result.busy_ms += cpu_ms() - t;
    r
}

fn speak_inner<const N: usize, const A: usize>(m: &mut Member<N, A>, propose: bool) -> Result<(), FleetError> {
    let epoch = m.group.epoch();
    let index: u64 = m.name.trim_start_matches("device-").parse().unwrap_or(0);
    let own = m.group.own_leaf().0;
    POLICY.check_outgoing(own, Outgoing::Application).map_err(|e| err(&m.name, "policy", e))?;
    let mut out = vec![0u8; 64 * 1024];
    // About 8 Updates per epoch at most (the gateway's proposal store holds 4 KiB).
    let period = (m.args.devices as u64 / 8).max(4);
    if propose && (index + epoch).is_multiple_of(period) {
        let public = m.signer.public_key();
        let mut caps = [0u8; 8];
        let template = LeafTemplate {
            signature_key: public.as_bytes(),
            credential: Credential::Basic { identity: m.name.as_bytes() },
            capabilities: default_capabilities(m.args.suite, &mut caps),
            extensions: Extensions::default(),
        };
        let mut rng = crate::os_rng();
        // Saved (its new private key, the handshake ratchet) before it leaves.
        let message = m
            .group
            .stored(&mut m.store, GROUP_SLOT, &mut m.record)
            .propose_update(&template, WireFormatPolicy::Private, &mut rng, &mut out)
            .map_err(|e| err(&m.name, "propose", e))?
            .to_vec();
        m.inbox.remember(delivery::digest(&message));
        // Logged too: its echo from the relay after a restart is a duplicate.
        m.note_processed(&message)?;
        m.result.proposals_sent += 1;
        m.net.publish(&m.topics.proposals(), &message)?;
    }
    // The counter moves before the message is made: a kill in between
    // skips a number, never repeats one.
    let counter_path = m.args.dir.join("counter");
    let n: u64 = std::fs::read_to_string(&counter_path).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0) + 1;
    std::fs::write(&counter_path, format!("{n}\n")).map_err(|e| FleetError(format!("counter: {e}")))?;
    let reading = n * 37 % 400;
    let text = format!("{} epoch {epoch} n {n}: reading {}.{} C", m.name, reading / 10, reading % 10);
    let claim = format!("{}/{epoch}/{n}", m.name);
    let sent = m
        .group
        .stored(&mut m.store, GROUP_SLOT, &mut m.record)
        .protect_application(text.as_bytes(), claim.as_bytes(), 0, &mut crate::os_rng(), &mut out)
        .map_err(|e| err(&m.name, "protect", e))?
        .to_vec();
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(m.args.dir.join("sent.log"))
        .map_err(|e| FleetError(format!("sent.log: {e}")))?;
    writeln!(log, "{text}").map_err(|e| FleetError(format!("sent.log: {e}")))?;
    m.inbox.remember(delivery::digest(&sent));
    m.note_processed(&sent)?;
    m.result.app_sent += 1;
    let topic = m.topics.application();
    m.net.publish(&topic, &sent)
}
