//! The IoT fleet behind `mls-fleet`: one gateway and N devices in one MLS
//! group (RFC 9420), driven through the core's public API.
//!
//! The gateway creates the group and adds every device in one Commit; each
//! device joins from the one Welcome (the ratchet tree inside it). Then come
//! rounds of key updates (a few devices commit with an UpdatePath, as
//! PrivateMessages), removals and re-adds (the gateway removes a device, the
//! device publishes a fresh KeyPackage and the gateway adds it back), and
//! application messages (every member sends one, all others decrypt it).
//! Every member processes every handshake message, and after every epoch
//! change all members' epoch authenticators must agree: a disagreement ends
//! the run with an error.
//!
//! Randomness: one ChaCha20 stream seeded by a 64-bit seed, drawn from the
//! OS RNG unless given, so that every run can be replayed. Time: a simulated
//! clock (KeyPackage lifetimes are signed into the tree, so a replay needs
//! the same clock).
//!
//! Persistence ([`persist`]): every member keeps its state in its own
//! namespace of one SQLite database in the state directory (`--state-dir`,
//! by default a fresh temporary one), a [`crate::SqliteStorage`] (each save
//! one transaction), and uses the core's durable
//! operations: a device's application message, Commit, and its processing of
//! others' messages return only once the state behind them is stored. After
//! each round the members are checkpointed and the fleet's progress (seed,
//! RNG position) is written; a later run with the same state directory loads
//! every member and continues at the next round, to the same final epoch
//! authenticator as a run that was never stopped. Record writes are not
//! flushed to the disk unless `--fsync` is given (see [`Config::fsync`]).

pub mod args;
pub mod broker;
pub mod persist;
mod sim;
pub mod stats;

use mls_nostd::crypto::CipherSuite;
use mls_nostd::group::Group;
use std::path::PathBuf;
use std::time::Duration;

/// Most devices: the largest group capacity is 1,024 leaves, one of them the gateway's.
pub const MAX_DEVICES: usize = 1023;
/// Bytes of leaf encodings per leaf of capacity (a device's leaf takes about 190).
pub const ARENA_PER_LEAF: usize = 256;
/// Out-of-order application keys kept per group (the fleet delivers in order).
pub const SKIPPED_KEYS: usize = 16;
/// Bytes of proposals received by reference (the fleet commits by value).
pub const PROPOSAL_BYTES: usize = 4096;
/// The simulated clock's start: 2026-11-01T00:00:00Z.
pub const CLOCK_START: u64 = 1_793_491_200;

/// A member's group with `N` leaves and `ARENA` bytes of leaf encodings.
pub type FleetGroup<const N: usize, const ARENA: usize> = Group<N, ARENA, SKIPPED_KEYS, PROPOSAL_BYTES>;

/// The fleet's delivery rule: the gateway, which creates the group (leaf
/// 0), is the only committer; devices propose.
pub const POLICY: mls_nostd::delivery::Policy = mls_nostd::delivery::Policy { committer: 0 };

/// The fleet members' identity policy: the default's rules on credentials
/// ([`SameCredential`](mls_nostd::identity::SameCredential)), and
/// [`POLICY`]'s on proposals. So the gateway never commits, and no member
/// accepts, a device's proposal beyond an Update or its own removal (a
/// faulty device's Remove of another device, say).
pub struct FleetIdentity;

impl mls_nostd::identity::IdentityProvider for FleetIdentity {
    fn validate(&self, group_id: &[u8], usage: mls_nostd::identity::CredentialUse, member: &mls_nostd::identity::MemberIdentity<'_>) -> bool {
        mls_nostd::identity::SAME_CREDENTIAL.validate(group_id, usage, member)
    }

    fn valid_successor(&self, predecessor: &mls_nostd::identity::MemberIdentity<'_>, successor: &mls_nostd::identity::MemberIdentity<'_>) -> bool {
        mls_nostd::identity::SAME_CREDENTIAL.valid_successor(predecessor, successor)
    }

    fn authorize_proposal(
        &self,
        _: &[u8],
        sender: mls_nostd::messages::framing::Sender,
        proposal: &mls_nostd::messages::proposal::Proposal<'_>,
    ) -> bool {
        POLICY.authorizes(sender, proposal)
    }
}

/// The one [`FleetIdentity`] the members' groups refer to.
pub static FLEET_IDENTITY: FleetIdentity = FleetIdentity;

/// The members' group configuration: the defaults with [`FLEET_IDENTITY`].
pub fn group_config() -> mls_nostd::group::GroupConfig {
    mls_nostd::group::GroupConfig { identity: &FLEET_IDENTITY, ..mls_nostd::group::GroupConfig::DEFAULT }
}

/// What to simulate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Number of devices (the gateway comes on top).
    pub devices: usize,
    /// Rounds after the join.
    pub rounds: u64,
    /// The group's cipher suite.
    pub suite: CipherSuite,
    /// The seed; `None` draws one from the OS RNG.
    pub seed: Option<u64>,
    /// Where members are saved (see [`persist`]); `None`: a fresh
    /// temporary directory.
    pub state_dir: Option<PathBuf>,
    /// Flush every save of the members to the disk (`fsync` of SQLite's
    /// WAL at each commit, [`crate::Durability::PowerCut`]), so that their
    /// state survives a power cut of the machine. Without it a save survives
    /// a crash of the process ([`crate::Durability::ProcessCrash`]).
    pub fsync: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self { devices: 64, rounds: 3, suite: CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519, seed: None, state_dir: None, fsync: false }
    }
}

impl Config {
    /// The seed of the run: the given one, or one drawn from
    /// [`crate::os_rng`].
    pub fn resolve_seed(&self) -> u64 {
        use rand_core::Rng;
        self.seed.unwrap_or_else(|| crate::os_rng().next_u64())
    }

    /// What the members' record writes survive.
    pub fn flush(&self) -> crate::Flush {
        if self.fsync { crate::Flush::PowerCut } else { crate::Flush::ProcessCrash }
    }
}

/// Why a run failed (one line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetError(pub String);

impl std::fmt::Display for FleetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FleetError {}

/// What a run measured.
#[derive(Clone, Debug)]
pub struct Report {
    /// The seed the run used.
    pub seed: u64,
    /// Number of devices.
    pub devices: usize,
    /// Rounds of the run (those of the run it resumed included).
    pub rounds: u64,
    /// The round after which this run resumed a saved one (its tables
    /// cover the rounds after it only).
    pub resumed_after: Option<u64>,
    /// Times and sizes.
    pub stats: stats::Stats,
    /// Epoch changes after which all members' authenticators were compared.
    pub epochs_checked: u64,
    /// The final epoch.
    pub final_epoch: u64,
    /// The final epoch authenticator, on which all members agree.
    pub final_authenticator: Vec<u8>,
    /// Members in the group at the end (gateway included).
    pub members: usize,
    /// Leaf capacity of the group type used.
    pub capacity: usize,
    /// `size_of` a member's group state.
    pub group_bytes: usize,
    /// Bytes a member takes on disk (mean over the members).
    pub on_disk: u64,
    /// Bytes on disk of the largest member.
    pub on_disk_max: u64,
    /// The state directory.
    pub state_dir: PathBuf,
    /// What the members' writes survived.
    pub flush: crate::Flush,
    /// Wall-clock time of the whole run.
    pub wall: Duration,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Report {
    /// The final epoch authenticator, abbreviated (first and last 4 bytes).
    pub fn authenticator_short(&self) -> String {
        let a = &self.final_authenticator;
        if a.len() <= 8 { hex(a) } else { format!("{}…{}", hex(&a[..4]), hex(&a[a.len() - 4..])) }
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use stats::thousands;
        self.stats.write_tables(f)?;
        writeln!(f)?;
        if let Some(k) = self.resumed_after {
            writeln!(f, "resumed after round {k}: the tables above cover rounds {} to {} only", k + 1, self.rounds)?;
        }
        writeln!(
            f,
            "state per member: {} bytes in memory (capacity {} leaves); on disk: {} bytes (mean; largest {})",
            thousands(self.group_bytes as u128),
            self.capacity,
            thousands(u128::from(self.on_disk)),
            thousands(u128::from(self.on_disk_max)),
        )?;
        let flush = match self.flush {
            crate::Flush::PowerCut => "every write flushed to the disk (--fsync)",
            crate::Flush::ProcessCrash => "writes survive a crash of the process; --fsync for power cuts",
        };
        writeln!(f, "state directory: {}; {flush}", self.state_dir.display())?;
        writeln!(
            f,
            "epoch authenticators: all {} members agreed after each of {} epoch change{}; final epoch {}: {}",
            self.members,
            self.epochs_checked,
            if self.epochs_checked == 1 { "" } else { "s" },
            self.final_epoch,
            self.authenticator_short(),
        )?;
        write!(f, "total time: {:.2} s", self.wall.as_secs_f64())
    }
}

/// A run ready to start: its state directory is open and, if it holds a
/// previous run, that run's progress was read and matches the configuration.
#[derive(Debug)]
pub struct Prepared {
    config: Config,
    seed: u64,
    store: persist::StateDir,
    saved: Option<persist::Progress>,
}

/// Opens the state directory of `config` and checks what it holds: a saved
/// run must have the same cipher suite, number of devices and (if given)
/// seed, and no more rounds done than `config.rounds`. The seed of a resumed
/// run is the saved one; otherwise `seed`.
pub fn prepare(config: &Config, seed: u64) -> Result<Prepared, FleetError> {
    if config.devices == 0 || config.devices > MAX_DEVICES {
        return Err(FleetError(format!("--members: expected 1 to {MAX_DEVICES}, got {}", config.devices)));
    }
    let store = match &config.state_dir {
        Some(dir) => persist::StateDir::open(dir, config.flush()),
        // In memory for the small capacity: at most ~6 MB for 127 devices.
        None => persist::StateDir::temporary(config.devices < 128, config.flush()),
    }
    .map_err(|e| FleetError(e.to_string()))?;
    let saved = store.saved_progress().map_err(|e| FleetError(e.to_string()))?;
    let mut seed = seed;
    if let Some(p) = &saved {
        let here = |what: String| FleetError(format!("state directory {}: {what}", store.path().display()));
        let suite = CipherSuite::from_u16(p.suite).ok_or_else(|| here(format!("unknown cipher suite 0x{:04x}", p.suite)))?;
        if suite != config.suite || p.devices != config.devices {
            return Err(here(format!(
                "holds a fleet of {} devices with cipher suite 0x{:04x}, not {} with 0x{:04x} (resume it with --members {} --suite {})",
                p.devices,
                p.suite,
                config.devices,
                config.suite.to_u16(),
                p.devices,
                p.suite,
            )));
        }
        if let Some(s) = config.seed.filter(|s| *s != p.seed) {
            return Err(here(format!("holds the run of seed {}, not {s}", p.seed)));
        }
        if p.rounds_done > config.rounds {
            return Err(here(format!("holds a run after round {}, past --rounds {}", p.rounds_done, config.rounds)));
        }
        seed = p.seed;
    }
    Ok(Prepared { config: config.clone(), seed, store, saved })
}

impl Prepared {
    /// The seed the run uses.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The saved run this one continues, if any.
    pub fn resuming(&self) -> Option<&persist::Progress> {
        self.saved.as_ref()
    }

    /// The state directory.
    pub fn state_dir(&self) -> &std::path::Path {
        self.store.path()
    }

    /// True if the state directory is a fresh temporary one.
    pub fn is_temporary(&self) -> bool {
        self.store.is_temporary()
    }

    /// Runs (or resumes) the simulation.
    pub fn run(mut self) -> Result<Report, FleetError> {
        let (config, seed, saved) = (&self.config, self.seed, self.saved.as_ref());
        // Two capacities: small fleets do not pay for 1,024 leaves per member.
        if config.devices < 128 {
            sim::run::<128, { 128 * ARENA_PER_LEAF }>(config, seed, &mut self.store, saved)
        } else {
            sim::run::<1024, { 1024 * ARENA_PER_LEAF }>(config, seed, &mut self.store, saved)
        }
    }
}

/// Runs the simulation of `config` with `seed` (see [`Config::resolve_seed`]
/// and [`prepare`]).
pub fn run(config: &Config, seed: u64) -> Result<Report, FleetError> {
    prepare(config, seed)?.run()
}

#[cfg(test)]
mod tests {
    use super::FLEET_IDENTITY;
    use mls_nostd::codec::Decode;
    use mls_nostd::credential::Credential;
    use mls_nostd::crypto::CipherSuite;
    use mls_nostd::crypto::signature::SignaturePrivateKey;
    use mls_nostd::extensions::Extensions;
    use mls_nostd::identity::IdentityProvider;
    use mls_nostd::key_package::{KeyPackage, KeyPackageParams};
    use mls_nostd::leaf_node::Lifetime;
    use mls_nostd::messages::framing::Sender;
    use mls_nostd::messages::proposal::{Add, GroupContextExtensions, Proposal, Remove, Update};

    /// The rule every member's group holds (`group_config`): a device (leaf
    /// 3 here) proposes its Update or its own Remove, nothing else; the
    /// gateway (leaf 0) anything; no one outside the group anything. So a
    /// faulty device's Remove of another device or Add is refused when
    /// received, and never committed.
    #[test]
    fn a_device_proposes_only_its_own_update_or_removal() {
        let suite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;
        let (signer, _) = SignaturePrivateKey::generate(suite, &mut crate::os_rng());
        let params = KeyPackageParams::new(suite, Credential::Basic { identity: b"device-009" }, Lifetime { not_before: 0, not_after: u64::MAX });
        let mut out = [0u8; 2048];
        let (bytes, _) = KeyPackage::generate(&params, &signer, &mut crate::os_rng(), &mut out).expect("KeyPackage");
        let key_package = KeyPackage::decode_exact(bytes).expect("decodes");
        let update = Proposal::Update(Update { leaf_node: key_package.tbs.leaf_node });
        let add = Proposal::Add(Add { key_package });
        let extensions = Proposal::GroupContextExtensions(GroupContextExtensions { extensions: Extensions::default() });
        let (own_remove, other_remove) = (Proposal::Remove(Remove { removed: 3 }), Proposal::Remove(Remove { removed: 4 }));
        let gateway_remove = Proposal::Remove(Remove { removed: 0 });
        let may = |sender: Sender, p: &Proposal<'_>| FLEET_IDENTITY.authorize_proposal(b"group", sender, p);
        let device = Sender::Member(3);
        assert!(may(device, &update) && may(device, &own_remove));
        for p in [&other_remove, &gateway_remove, &add, &extensions] {
            assert!(!may(device, p), "device 3 may not propose {p:?}");
        }
        for p in [&update, &own_remove, &other_remove, &add, &extensions] {
            assert!(may(Sender::Member(0), p), "the gateway may propose {p:?}");
            assert!(!may(Sender::External(0), p) && !may(Sender::NewMemberProposal, p), "{p:?} from outside");
        }
    }
}
