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

pub mod args;
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
    /// Where members are saved (see [`persist`]).
    pub state_dir: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self { devices: 64, rounds: 3, suite: CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519, seed: None, state_dir: None }
    }
}

impl Config {
    /// The seed of the run: the given one, or one drawn from
    /// [`crate::os_rng`].
    pub fn resolve_seed(&self) -> u64 {
        use rand_core::Rng;
        self.seed.unwrap_or_else(|| crate::os_rng().next_u64())
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
    /// Rounds run.
    pub rounds: u64,
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
    /// Bytes a member takes on disk (mean), if persistence is available.
    pub on_disk: Option<u64>,
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
        let disk = match self.on_disk {
            Some(b) => format!("{} bytes", thousands(u128::from(b))),
            None => "n/a (persistence not yet available, issue #6)".to_string(),
        };
        writeln!(
            f,
            "state per member: {} bytes in memory (capacity {} leaves); on disk: {disk}",
            thousands(self.group_bytes as u128),
            self.capacity,
        )?;
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

/// Runs the simulation of `config` with `seed` (see [`Config::resolve_seed`]).
pub fn run(config: &Config, seed: u64) -> Result<Report, FleetError> {
    let mut store = persist::StateDir::open(config.state_dir.as_deref()).map_err(|e| FleetError(e.to_string()))?;
    if let Some(p) = store.saved_progress().map_err(|e| FleetError(e.to_string()))? {
        // Unreachable until the store exists (saved_progress says so).
        return Err(FleetError(format!("resuming at round {} is not yet supported", p.rounds_done + 1)));
    }
    if config.devices == 0 || config.devices > MAX_DEVICES {
        return Err(FleetError(format!("--members: expected 1 to {MAX_DEVICES}, got {}", config.devices)));
    }
    // Two capacities: small fleets do not pay for 1,024 leaves per member.
    if config.devices < 128 {
        sim::run::<128, { 128 * ARENA_PER_LEAF }>(config, seed, &mut store)
    } else {
        sim::run::<1024, { 1024 * ARENA_PER_LEAF }>(config, seed, &mut store)
    }
}
