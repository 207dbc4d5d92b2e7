//! Differential checks (issue #9): valid messages from each library,
//! mutated at random, must be accepted or rejected alike by every library
//! that can receive them.
//!
//! One group of three: an OpenMLS member, an mls-rs member and one of ours.
//! Each member in turn produces an application message (PrivateMessage), an
//! empty Commit with a path as PublicMessage and as PrivateMessage, an
//! external-PSK proposal as PublicMessage and as PrivateMessage, and a Commit
//! of those proposals by reference; a fresh client of each library
//! produces a KeyPackage; and each member publishes a GroupInfo (with
//! `external_pub` and the tree), judged by a fresh client of every library
//! joining by external Commit (§12.4.3.2); and each member adds three fresh
//! joiners (one per library) in a Commit whose Welcome (tree inside) each
//! joiner judges by joining with its KeyPackage kept (ours: a throwaway
//! group; OpenMLS: storage restored; mls-rs: KeyPackage store restored);
//! in-place changes inside one joiner's `EncryptedGroupSecrets` are counted
//! but not compared. The joiners stay silent members. Suites 0x0001,
//! 0x0003 and 0x0002 (P-256) run.
//! Every message gets `MLS_DIFF_TRIALS` (default 200)
//! seeded mutations (bit flips, byte changes, insertions, deletions,
//! truncation, appended bytes, and edits of what may be a varint length
//! prefix: value ±1, or re-encoded in a longer, non-minimal form), and each
//! mutant goes to every other member: ours (`process_message` on a group
//! loaded from a saved copy, so nothing stays), OpenMLS (`process_message`
//! with its storage restored and the group reloaded after each trial) and
//! mls-rs (`process_incoming_message` on a clone of its group). KeyPackages
//! go to all three (ours `KeyPackage::validate`, OpenMLS
//! `KeyPackageIn::validate`, mls-rs building a Commit that adds it).
//! A Commit that passes is only staged (ours, OpenMLS) or applied to a
//! clone (mls-rs); the unmutated message is then delivered for real and all
//! three check that they agree on the new epoch.
//!
//! The unmutated message must pass every judge before and after its
//! trials (so the throwaway state really was thrown away).
//!
//! Verdicts are compared as accept or reject. A disagreement whose cause is
//! known and settled by the RFC is listed in [`explained`] with the section
//! that decides it; any other one fails the test, printed with its
//! seed, message, mutation and both verdicts. `MLS_DIFF_SEED` replays a run
//! (our keys and every mutation replay; the anchors draw their own keys).

use crate::mls_rs_party;
use crate::openmls_party;

use mls_interop::{Ours, OurGroup, Party, SUITES, SeededRng, agree, now};
use mls_nostd::codec::Decode;
use mls_nostd::credential::Credential;
use mls_nostd::crypto::signature::SignaturePrivateKey;
use mls_nostd::executor::Sequential;
use mls_nostd::extensions::Extensions;
use mls_nostd::group::{GroupConfig, default_capabilities};
use mls_nostd::ratchet_tree::treekem::LeafTemplate;
use mls_nostd::messages::mls_message::{MlsMessage, MlsMessageBody};
use mls_nostd::psk::{NoPsks, PskStore};
use mls_nostd::store::{MAX_RECORD_LEN, Parts, RamStorage};
use mls_rs_party::MlsRsParty;
use openmls_party::OpenMlsParty;
use std::collections::BTreeMap;

/// The external PSK every member holds.
const PSK_ID: &[u8] = b"differential-psk";
const PSK: &[u8] = b"the differential test's external PSK";

fn trials() -> usize {
    std::env::var("MLS_DIFF_TRIALS").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(200)
}

fn seed() -> u64 {
    match std::env::var("MLS_DIFF_SEED") {
        Ok(s) => s.trim().parse().expect("MLS_DIFF_SEED is a u64"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x5eed),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Lib {
    OpenMls,
    MlsRs,
    Ours,
}

const LIBS: [Lib; 3] = [Lib::OpenMls, Lib::MlsRs, Lib::Ours];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Application,
    CommitPublic,
    CommitPrivate,
    ProposalPublic,
    ProposalPrivate,
    CommitByReference,
    KeyPackage,
    /// A GroupInfo with `external_pub` and the ratchet tree; judged by an
    /// external join (§12.4.3.2) of a fresh client.
    GroupInfo,
    /// A Welcome (tree inside) for three fresh joiners, one per library.
    Welcome,
}

const GROUP_KINDS: [Kind; 6] = [
    Kind::Application,
    Kind::CommitPublic,
    Kind::CommitPrivate,
    Kind::ProposalPublic,
    Kind::ProposalPrivate,
    Kind::CommitByReference,
];

/// One mutation of a message's bytes.
#[derive(Clone, Debug)]
enum Mutation {
    BitFlip { pos: usize, bit: u8 },
    SetByte { pos: usize, to: u8 },
    Insert { pos: usize, byte: u8 },
    Delete { pos: usize },
    Truncate { len: usize },
    Append { bytes: Vec<u8> },
    /// The varint at `pos` re-encoded one size wider (non-minimal).
    VarintWiden { pos: usize },
    /// The varint at `pos` (same width) plus `delta`.
    VarintDelta { pos: usize, delta: i8 },
}

impl Mutation {
    fn name(&self) -> &'static str {
        match self {
            Self::BitFlip { .. } => "bit flip",
            Self::SetByte { .. } => "byte change",
            Self::Insert { .. } => "insertion",
            Self::Delete { .. } => "deletion",
            Self::Truncate { .. } => "truncation",
            Self::Append { .. } => "appended bytes",
            Self::VarintWiden { .. } => "non-minimal varint",
            Self::VarintDelta { .. } => "varint length ±1",
        }
    }
}

/// A QUIC-style varint (RFC 9420 §2.1.2) at `pos`: (value, width).
fn varint_at(m: &[u8], pos: usize) -> Option<(u32, usize)> {
    let b0 = *m.get(pos)?;
    let width = match b0 >> 6 {
        0 => 1,
        1 => 2,
        2 => 4,
        _ => return None,
    };
    let bytes = m.get(pos..pos + width)?;
    let mut v = u32::from(b0 & 0x3f);
    for b in &bytes[1..] {
        v = (v << 8) | u32::from(*b);
    }
    Some((v, width))
}

fn encode_varint(v: u32, width: usize) -> Option<Vec<u8>> {
    match width {
        1 if v < 0x40 => Some(vec![v as u8]),
        2 if v < 0x4000 => Some(vec![0x40 | (v >> 8) as u8, v as u8]),
        4 if v < 0x4000_0000 => Some(vec![0x80 | (v >> 24) as u8, (v >> 16) as u8, (v >> 8) as u8, v as u8]),
        _ => None,
    }
}

/// Offsets where a varint could be a length prefix (its field fits in the message).
fn length_prefix_candidates(m: &[u8]) -> Vec<usize> {
    (0..m.len()).filter(|&i| varint_at(m, i).is_some_and(|(v, w)| i + w + v as usize <= m.len())).collect()
}

fn random_mutation(rng: &mut SeededRng, m: &[u8]) -> Mutation {
    let pos = rng.below(m.len());
    let byte = rng.below(256) as u8;
    match rng.below(8) {
        0 => Mutation::BitFlip { pos, bit: rng.below(8) as u8 },
        1 => Mutation::SetByte { pos, to: if byte == m[pos] { byte ^ 0x80 } else { byte } },
        2 => Mutation::Insert { pos, byte },
        3 => Mutation::Delete { pos },
        4 => Mutation::Truncate { len: rng.below(m.len()) },
        5 => Mutation::Append { bytes: (0..1 + rng.below(4)).map(|_| rng.below(256) as u8).collect() },
        k => {
            let c = length_prefix_candidates(m);
            if c.is_empty() {
                return Mutation::BitFlip { pos, bit: 0 };
            }
            let pos = c[rng.below(c.len())];
            if k == 6 { Mutation::VarintWiden { pos } } else { Mutation::VarintDelta { pos, delta: if rng.below(2) == 0 { 1 } else { -1 } } }
        }
    }
}

/// The mutated message, or `None` if the mutation does not apply.
fn apply(m: &[u8], mutation: &Mutation) -> Option<Vec<u8>> {
    let mut out = m.to_vec();
    match mutation {
        Mutation::BitFlip { pos, bit } => out[*pos] ^= 1 << bit,
        Mutation::SetByte { pos, to } => out[*pos] = *to,
        Mutation::Insert { pos, byte } => out.insert(*pos, *byte),
        Mutation::Delete { pos } => {
            out.remove(*pos);
        }
        Mutation::Truncate { len } => out.truncate(*len),
        Mutation::Append { bytes } => out.extend_from_slice(bytes),
        Mutation::VarintWiden { pos } => {
            let (v, w) = varint_at(m, *pos)?;
            let wider = encode_varint(v, w * 2)?;
            out.splice(*pos..*pos + w, wider);
        }
        Mutation::VarintDelta { pos, delta } => {
            let (v, w) = varint_at(m, *pos)?;
            let v = v.checked_add_signed(i32::from(*delta))?;
            let enc = encode_varint(v, w)?;
            out.splice(*pos..*pos + w, enc);
        }
    }
    (out != m).then_some(out)
}

/// The byte ranges of the `EncryptedGroupSecrets` entries of the
/// `MLSMessage(Welcome)` `m` (RFC 9420 §12.4.3.1): after the 4-byte header
/// and the cipher suite, `secrets<V>` of (`new_member<V>`, `kem_output<V>`,
/// `ciphertext<V>`).
fn welcome_entries(m: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let Some((len, w)) = varint_at(m, 6) else { return out };
    let mut p = 6 + w;
    let end = p + len as usize;
    while p < end {
        let start = p;
        for _ in 0..3 {
            let Some((l, w)) = varint_at(m, p) else { return out };
            p += w + l as usize;
        }
        out.push(start..p);
    }
    out
}

/// The PSK store of our judge.
struct Psks;

impl PskStore for Psks {
    fn external_psk(&self, psk_id: &[u8]) -> Option<&[u8]> {
        (psk_id == PSK_ID).then_some(PSK)
    }
    fn resumption_psk(&self, _: &[u8], _: u64) -> Option<&[u8]> {
        None
    }
}

type Store = RamStorage<256, { 512 * 1024 }>;

/// Our member as a judge: its group saved to RAM once per message, and
/// loaded into a scratch group for every trial.
struct OurJudge {
    storage: Box<Store>,
    scratch: Box<OurGroup>,
    joiner: Box<OurGroup>,
    buf: Box<[u8; MAX_RECORD_LEN]>,
}

impl OurJudge {
    fn new() -> Self {
        Self { storage: Box::new(Store::EMPTY), scratch: Box::new(OurGroup::EMPTY), joiner: Box::new(OurGroup::EMPTY), buf: Box::new([0; MAX_RECORD_LEN]) }
    }

    fn save(&mut self, us: &mut Ours) {
        us.group.save(&mut *self.storage, 0, Parts::ALL, &mut self.buf).expect("save our group");
    }

    /// An external join from the GroupInfo `msg` into an empty slot.
    fn trial_group_info(&mut self, msg: &[u8], suite: mls_nostd::crypto::CipherSuite) -> Result<(), String> {
        *self.joiner = OurGroup::EMPTY;
        let signer = SignaturePrivateKey::from_slice(suite, &[0x4a; 32]).expect("a signature key of the suite");
        let sig_pub = signer.public_key().as_bytes().to_vec();
        let mut caps = [0u8; 8];
        let template = LeafTemplate {
            signature_key: &sig_pub,
            credential: Credential::Basic { identity: b"our external joiner" },
            capabilities: default_capabilities(suite, &mut caps),
            extensions: Extensions::default(),
        };
        let mut out = vec![0u8; 256 * 1024];
        let mut rng = SeededRng(msg.len() as u64);
        self.joiner
            .join_external(
                msg,
                None,
                &template,
                &signer,
                None,
                &[],
                &NoPsks,
                GroupConfig::default(),
                &mut rng,
                &Sequential,
                &mut out,
            )
            .map(|_| ())
            .map_err(|e| format!("{e:?}"))
    }

    fn trial(&mut self, msg: &[u8]) -> Result<(), String> {
        self.scratch.load(&mut *self.storage, 0, &mls_nostd::identity::SAME_CREDENTIAL, &mut self.buf).expect("load our group");
        let mut m = msg.to_vec();
        self.scratch.process_message_in_memory(&mut m, &Psks, now()).map(|_| ()).map_err(|e| format!("{e:?}"))
    }
}

fn our_key_package_verdict(msg: &[u8], suite: mls_nostd::crypto::CipherSuite) -> Result<(), String> {
    let m = MlsMessage::decode_exact(msg).map_err(|e| format!("decode: {e:?}"))?;
    let MlsMessageBody::KeyPackage(kp) = m.body else { return Err("not a KeyPackage".into()) };
    kp.validate(suite, now(), GroupConfig::default().max_lifetime).map_err(|e| format!("{e:?}"))
}

/// A disagreement the RFC settles (or leaves open), with the reason.
fn explained(kind: Kind, mutation: &Mutation, verdicts: &[(Lib, &Result<(), String>)]) -> Option<&'static str> {
    let accepted: Vec<Lib> = verdicts.iter().filter(|(_, v)| v.is_ok()).map(|(l, _)| *l).collect();
    // The first two bytes are `MLSMessage.version`, outside the KeyPackage's
    // signature. RFC 9420 §6 declares it `ProtocolVersion version = mls10`,
    // and in the TLS presentation language a field with "=" must always
    // have that value (RFC 8446 §3.7). OpenMLS and ours reject any other
    // value; mls-rs takes the KeyPackage out of the MLSMessage without
    // checking it (it does check it on group messages).
    let version_only = match mutation {
        // (A varint at byte 0 or 1 of mls10 = 0x0001 is one byte wide.)
        Mutation::BitFlip { pos, .. } | Mutation::SetByte { pos, .. } | Mutation::VarintDelta { pos, .. } => *pos < 2,
        _ => false,
    };
    if kind == Kind::KeyPackage && version_only && accepted == [Lib::MlsRs] {
        return Some("mls-rs accepts a KeyPackage whose MLSMessage.version is not mls10 (RFC 9420 §6, RFC 8446 §3.7: it must be)");
    }
    None
}

struct World {
    seed: u64,
    suite_code: u16,
    suite: mls_nostd::crypto::CipherSuite,
    rng: SeededRng,
    om: OpenMlsParty,
    rs: MlsRsParty,
    us: Ours,
    judge: OurJudge,
    trials: usize,
    /// (kind, source, mutation) -> disagreements
    findings: BTreeMap<String, usize>,
    unexplained: usize,
    explained: BTreeMap<&'static str, usize>,
    total: usize,
    /// Welcome mutants changed in place inside one joiner's
    /// `EncryptedGroupSecrets` only: that joiner alone may reject them, so
    /// verdicts are not compared.
    entry_local: usize,
    /// The fresh joiners of the current Welcome.
    joiners: Option<(OpenMlsParty, MlsRsParty, Ours)>,
    /// Mutants every judge accepted.
    all_accept: usize,
    fresh: u32,
}

impl World {
    fn new(seed: u64, suite_index: usize) -> Self {
        let (suite_code, suite) = SUITES[suite_index];
        let mut om = OpenMlsParty::new("openmls", suite_code);
        let mut rs = MlsRsParty::with_extension("mls-rs", suite_code, 0xff3a);
        let mut us = Ours::new("ours", suite, seed);
        om.register_external_psk(PSK_ID, PSK);
        rs.register_external_psk(PSK_ID, PSK);
        us.register_external_psk(PSK_ID, PSK);
        om.set_tree_in_welcome(true);
        om.create(b"differential-group");
        let kp = rs.key_package();
        let (commit, welcome) = om.add(&[kp], false);
        let _ = commit; // nobody else is in the group yet
        rs.join(&welcome, None);
        let kp = us.key_package_message();
        let (commit, welcome) = om.add(&[kp], false);
        rs.process(&commit);
        us.join(&welcome, None);
        agree(&[&om, &rs, &us]);
        Self {
            seed,
            suite_code,
            suite,
            rng: SeededRng(seed),
            om,
            rs,
            us,
            judge: OurJudge::new(),
            trials: trials(),
            findings: BTreeMap::new(),
            unexplained: 0,
            explained: BTreeMap::new(),
            total: 0,
            entry_local: 0,
            joiners: None,
            all_accept: 0,
            fresh: 0,
        }
    }

    fn party(&mut self, lib: Lib) -> &mut dyn Party {
        match lib {
            Lib::OpenMls => &mut self.om,
            Lib::MlsRs => &mut self.rs,
            Lib::Ours => &mut self.us,
        }
    }

    fn produce(&mut self, source: Lib, kind: Kind) -> Vec<u8> {
        let p = self.party(source);
        match kind {
            Kind::Application => p.send(b"differential application data", b"differential aad"),
            Kind::CommitPublic | Kind::CommitPrivate => {
                p.set_private_handshake(kind == Kind::CommitPrivate);
                p.update()
            }
            Kind::ProposalPublic | Kind::ProposalPrivate => {
                p.set_private_handshake(kind == Kind::ProposalPrivate);
                p.propose_external_psk(PSK_ID)
            }
            Kind::CommitByReference => {
                p.set_private_handshake(false);
                p.commit_pending().0
            }
            Kind::GroupInfo => p.group_info(true),
            Kind::Welcome => {
                self.fresh += 1;
                let n = self.fresh;
                let mut om = OpenMlsParty::new(&format!("openmls-joiner-{n}"), self.suite_code);
                let mut rs = MlsRsParty::with_extension(&format!("mls-rs-joiner-{n}"), self.suite_code, 0xff3a);
                let mut us = Ours::new(&format!("ours-joiner-{n}"), self.suite, self.seed ^ u64::from(n) << 8);
                let kps = vec![om.key_package(), rs.key_package(), us.key_package_message()];
                let p = self.party(source);
                p.set_tree_in_welcome(true);
                p.set_private_handshake(false);
                let (commit, welcome) = p.add(&kps, false);
                // The joiners stay silent members; the others follow the Commit.
                self.deliver(source, &commit);
                self.joiners = Some((om, rs, us));
                welcome
            }
            Kind::KeyPackage => {
                self.fresh += 1;
                let name = format!("fresh-{}", self.fresh);
                match source {
                    Lib::OpenMls => OpenMlsParty::new(&name, self.suite_code).key_package(),
                    Lib::MlsRs => MlsRsParty::with_extension(&name, self.suite_code, 0xff3a).key_package(),
                    Lib::Ours => Ours::new(&name, self.suite, self.seed ^ u64::from(self.fresh)).key_package_message(),
                }
            }
        }
    }

    fn verdict(&mut self, judge: Lib, kind: Kind, msg: &[u8]) -> Result<(), String> {
        match (judge, kind) {
            (Lib::Ours, Kind::KeyPackage) => our_key_package_verdict(msg, self.suite),
            (Lib::OpenMls, Kind::KeyPackage) => self.om.check_key_package(msg),
            (Lib::MlsRs, Kind::KeyPackage) => self.rs.trial_key_package(msg),
            (Lib::Ours, Kind::GroupInfo) => self.judge.trial_group_info(msg, self.suite),
            (Lib::OpenMls, Kind::GroupInfo) => {
                self.fresh += 1;
                OpenMlsParty::new(&format!("joiner-{}", self.fresh), self.suite_code).trial_group_info(msg)
            }
            (Lib::MlsRs, Kind::GroupInfo) => {
                self.fresh += 1;
                MlsRsParty::with_extension(&format!("joiner-{}", self.fresh), self.suite_code, 0xff3a).trial_group_info(msg)
            }
            (Lib::OpenMls, Kind::Welcome) => self.joiners.as_mut().expect("joiners").0.trial_join(msg),
            (Lib::MlsRs, Kind::Welcome) => self.joiners.as_ref().expect("joiners").1.trial_join(msg),
            (Lib::Ours, Kind::Welcome) => self.joiners.as_ref().expect("joiners").2.trial_join(msg, None),
            (Lib::Ours, _) => self.judge.trial(msg),
            (Lib::OpenMls, _) => self.om.trial(msg),
            (Lib::MlsRs, _) => self.rs.trial(msg),
        }
    }

    /// Mutation trials of `msg` (from `source`, of `kind`) with `judges`.
    fn trials(&mut self, source: Lib, kind: Kind, msg: &[u8], judges: &[Lib]) {
        self.judge.save(&mut self.us);
        for j in judges {
            if let Err(e) = self.verdict(*j, kind, msg) {
                panic!("seed {}: {j:?} rejects the unmutated {kind:?} from {source:?}: {e}", self.seed);
            }
        }
        let entries = if kind == Kind::Welcome { welcome_entries(msg) } else { Vec::new() };
        let mut done = 0;
        while done < self.trials {
            let mutation = random_mutation(&mut self.rng, msg);
            let Some(mutant) = apply(msg, &mutation) else { continue };
            done += 1;
            self.total += 1;
            if let Mutation::BitFlip { pos, .. } | Mutation::SetByte { pos, .. } | Mutation::VarintDelta { pos, .. } = mutation
                && entries.iter().any(|r| r.contains(&pos))
            {
                self.entry_local += 1;
                continue;
            }
            let verdicts: Vec<(Lib, Result<(), String>)> =
                judges.iter().map(|j| (*j, self.verdict(*j, kind, &mutant))).collect();
            let accepted = verdicts.iter().filter(|(_, v)| v.is_ok()).count();
            if accepted == verdicts.len() {
                self.all_accept += 1;
            }
            if accepted == 0 || accepted == verdicts.len() {
                continue;
            }
            let refs: Vec<(Lib, &Result<(), String>)> = verdicts.iter().map(|(l, v)| (*l, v)).collect();
            if let Some(reason) = explained(kind, &mutation, &refs) {
                *self.explained.entry(reason).or_default() += 1;
                continue;
            }
            self.unexplained += 1;
            let key = format!("{kind:?} from {source:?}, {}", mutation.name());
            let n = self.findings.entry(key).or_default();
            *n += 1;
            if *n <= 3 {
                println!(
                    "DISAGREEMENT seed {} (MLS_DIFF_SEED), {kind:?} from {source:?} ({} bytes), mutation {mutation:?}:",
                    self.seed,
                    msg.len()
                );
                for (l, v) in &verdicts {
                    println!("    {l:?}: {}", match v {
                        Ok(()) => "accepts".to_string(),
                        Err(e) => format!("rejects: {e}"),
                    });
                }
            }
        }
        // The trials left every judge as it was: the message still passes.
        for j in judges {
            if let Err(e) = self.verdict(*j, kind, msg) {
                panic!("seed {}: after the trials {j:?} rejects the unmutated {kind:?} from {source:?}: {e}", self.seed);
            }
        }
    }

    /// Delivers the unmutated group message from `source` to the others.
    fn deliver(&mut self, source: Lib, msg: &[u8]) {
        for l in LIBS {
            if l != source {
                self.party(l).process(msg);
            }
        }
        agree(&[&self.om, &self.rs, &self.us]);
    }
}

fn differential_run(suite_index: usize) {
    let seed = seed();
    let start = std::time::Instant::now();
    let mut w = World::new(seed, suite_index);
    println!("MLS_DIFF_SEED={seed} (cipher suite 0x{:04x}), {} trials per message", w.suite_code, w.trials);
    eprintln!("differential, cipher suite 0x{:04x}: MLS_DIFF_SEED={seed}", w.suite_code);
    for source in LIBS {
        let judges: Vec<Lib> = LIBS.into_iter().filter(|l| *l != source).collect();
        for kind in GROUP_KINDS {
            let msg = w.produce(source, kind);
            w.trials(source, kind, &msg, &judges);
            w.deliver(source, &msg);
        }
        let kp = w.produce(source, Kind::KeyPackage);
        w.trials(source, Kind::KeyPackage, &kp, &LIBS);
        let gi = w.produce(source, Kind::GroupInfo);
        w.trials(source, Kind::GroupInfo, &gi, &LIBS);
        let welcome = w.produce(source, Kind::Welcome);
        w.trials(source, Kind::Welcome, &welcome, &LIBS);
    }
    println!(
        "{} mutated messages judged in {:?} ({} accepted by every judge)",
        w.total,
        start.elapsed(),
        w.all_accept
    );
    println!("{} Welcome mutants inside one joiner's EncryptedGroupSecrets, not compared", w.entry_local);
    for (reason, n) in &w.explained {
        println!("explained disagreements ({n}): {reason}");
    }
    for (key, n) in &w.findings {
        println!("UNEXPLAINED ({n}): {key}");
    }
    assert_eq!(w.unexplained, 0, "seed {seed}: {} unexplained disagreements (see above)", w.unexplained);
}

#[test]
fn mutated_messages_get_the_same_verdict_everywhere_suite_1() {
    differential_run(0);
}

#[test]
fn mutated_messages_get_the_same_verdict_everywhere_suite_3() {
    differential_run(1);
}

#[test]
fn mutated_messages_get_the_same_verdict_everywhere_suite_2() {
    differential_run(2);
}
