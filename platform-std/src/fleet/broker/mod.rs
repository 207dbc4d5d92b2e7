//! `mls-fleet --broker mqtt://HOST:PORT`: the fleet over a real MQTT broker,
//! the broker as the group's delivery service (RFC 9420 §3, RFC 9750). The
//! gateway and every device are separate OS processes (this program again,
//! with `--member NAME`), each with its own MQTT connection and its own state
//! directory (`<state-dir>/<name>/`). The broker sees only MLS ciphertext,
//! KeyPackages, Welcomes and one plain control line (`end <epoch>`).
//!
//! Topics of a group `G` (QoS 1, persistent sessions):
//! - `mls/G/handshake`: the gateway's proposals relayed and its Commits;
//! - `mls/G/proposals`: devices' Update proposals, for the gateway;
//! - `mls/G/application`: application messages of every member;
//! - `mls/G/keypackages/<device>`: a device's KeyPackage (join or rejoin);
//! - `mls/G/welcome/<device>`: the Welcome for one device;
//! - `mls/G/control`: `end <epoch>`, the last epoch of the run.
//!
//! The ordering rules are `mls_nostd::delivery`'s (one committer, a bounded
//! future-epoch buffer, duplicates and stale messages dropped); see the
//! README for the design.

pub mod log;
mod member;
pub mod transport;

pub use member::{device_name, FAULT_EXIT_AFTER_JOIN, FAULT_EXIT_BEFORE_REJOIN, FAULT_EXIT_CODE, INBOX_BYTES, INBOX_SEEN, INBOX_SLOTS};

use super::{ARENA_PER_LEAF, FleetError, MAX_DEVICES};
use mls_nostd::crypto::CipherSuite;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// `mqtt://HOST:PORT` (the port defaults to 1883).
pub fn parse_url(url: &str) -> Result<(String, u16), String> {
    let rest = url.strip_prefix("mqtt://").ok_or_else(|| format!("--broker: expected mqtt://HOST:PORT, got {url:?}"))?;
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| format!("--broker: bad port in {url:?}"))?),
        None => (rest, 1883),
    };
    if host.is_empty() || host.contains('/') {
        return Err(format!("--broker: bad host in {url:?}"));
    }
    Ok((host.to_string(), port))
}

/// One member process's arguments (`mls-fleet --member NAME ...`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberArgs {
    /// `gateway` or `device-NNN`.
    pub name: String,
    /// The broker.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// The group's name in the topics.
    pub group: String,
    /// The member's own state directory.
    pub dir: PathBuf,
    /// Devices in the fleet.
    pub devices: usize,
    /// Rounds (the gateway's Commits after the join).
    pub rounds: u64,
    /// The cipher suite.
    pub suite: CipherSuite,
    /// Fault: publish every message twice.
    pub duplicate: bool,
    /// The gateway waits this long before each round's Commit (a sensor
    /// period; lets tests kill and restart things mid-run).
    pub pause_ms: u64,
}

impl MemberArgs {
    /// The command line that runs this member.
    pub fn to_args(&self) -> Vec<String> {
        let mut a = vec![
            "--member".into(),
            self.name.clone(),
            "--broker".into(),
            format!("mqtt://{}:{}", self.host, self.port),
            "--group".into(),
            self.group.clone(),
            "--state-dir".into(),
            self.dir.display().to_string(),
            "--members".into(),
            self.devices.to_string(),
            "--rounds".into(),
            self.rounds.to_string(),
            "--suite".into(),
            format!("{}", self.suite.to_u16()),
        ];
        if self.duplicate {
            a.push("--fault-duplicate".into());
        }
        if self.pause_ms > 0 {
            a.push("--pause-ms".into());
            a.push(self.pause_ms.to_string());
        }
        a
    }
}

/// What a member did, written to `<its dir>/result.txt` as `key=value` lines.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MemberResult {
    /// The member.
    pub name: String,
    /// Its final epoch and epoch authenticator (hex).
    pub epoch: u64,
    /// The authenticator.
    pub authenticator: String,
    /// Started from a saved group.
    pub restarted: bool,
    /// Joins from a Welcome.
    pub joins: u64,
    /// The epoch of its last join from a Welcome (0: none in this process).
    pub joined_epoch: u64,
    /// Rejoins asked for (removed, or too far behind).
    pub rejoins: u64,
    /// Commits made (gateway) or merged (device).
    pub commits: u64,
    /// Application messages sent and opened.
    pub app_sent: u64,
    /// Opened.
    pub app_received: u64,
    /// Update proposals sent.
    pub proposals_sent: u64,
    /// Inbox counts.
    pub duplicates: u64,
    /// Stale.
    pub stale: u64,
    /// Buffered for a future epoch.
    pub buffered: u64,
    /// Released from the buffer.
    pub released: u64,
    /// Dropped while waiting for a Welcome with a full buffer.
    pub overflowed: u64,
    /// Refused or dropped as too many epochs ahead (`delivery::MAX_EPOCHS_AHEAD`).
    pub too_far_ahead: u64,
    /// Of `stale`, messages the core found too late (their sender left).
    pub departed: u64,
    /// Group messages handed to the inbox.
    pub accepted: u64,
    /// Of them, handed to the core (at once or released from the buffer).
    pub processed: u64,
    /// Still in the buffer at the end.
    pub left_buffered: u64,
    /// Messages the core refused after the inbox let them through.
    pub core_refused: u64,
    /// Messages refused by the one-committer policy.
    pub refused_by_policy: u64,
    /// Future-epoch buffer overflows.
    pub buffer_full: u64,
    /// Application messages whose (sender, epoch, counter) claim was seen
    /// before in another message.
    pub claim_repeats: u64,
    /// Payload bytes published.
    pub bytes_out: u64,
    /// MQTT connections (1 + reconnections).
    pub connects: u64,
    /// Messages the broker delivered to it (every topic, duplicates included).
    pub received: u64,
    /// CPU milliseconds of the member's thread in MLS and state saving
    /// (processing, sending, committing; not rayon's pool).
    pub busy_ms: f64,
    /// The part of `busy_ms` spent in the store (SQLite: writes and commits).
    pub save_ms: f64,
    /// Milliseconds per Commit (gateway).
    pub commit_ms: Vec<f64>,
    /// Milliseconds between the gateway's Commits (a round).
    pub round_ms: Vec<f64>,
}

impl MemberResult {
    fn fields(&self) -> Vec<(&'static str, String)> {
        let list = |v: &[f64]| v.iter().map(|m| format!("{m:.2}")).collect::<Vec<_>>().join(",");
        vec![
            ("name", self.name.clone()),
            ("epoch", self.epoch.to_string()),
            ("authenticator", self.authenticator.clone()),
            ("restarted", self.restarted.to_string()),
            ("joins", self.joins.to_string()),
            ("joined_epoch", self.joined_epoch.to_string()),
            ("rejoins", self.rejoins.to_string()),
            ("commits", self.commits.to_string()),
            ("app_sent", self.app_sent.to_string()),
            ("app_received", self.app_received.to_string()),
            ("proposals_sent", self.proposals_sent.to_string()),
            ("duplicates", self.duplicates.to_string()),
            ("stale", self.stale.to_string()),
            ("buffered", self.buffered.to_string()),
            ("released", self.released.to_string()),
            ("overflowed", self.overflowed.to_string()),
            ("too_far_ahead", self.too_far_ahead.to_string()),
            ("departed", self.departed.to_string()),
            ("accepted", self.accepted.to_string()),
            ("processed", self.processed.to_string()),
            ("left_buffered", self.left_buffered.to_string()),
            ("core_refused", self.core_refused.to_string()),
            ("refused_by_policy", self.refused_by_policy.to_string()),
            ("buffer_full", self.buffer_full.to_string()),
            ("claim_repeats", self.claim_repeats.to_string()),
            ("bytes_out", self.bytes_out.to_string()),
            ("connects", self.connects.to_string()),
            ("received", self.received.to_string()),
            ("busy_ms", format!("{:.2}", self.busy_ms)),
            ("save_ms", format!("{:.2}", self.save_ms)),
            ("commit_ms", list(&self.commit_ms)),
            ("round_ms", list(&self.round_ms)),
        ]
    }

    /// Writes `dir/result.txt`.
    pub fn write(&self, dir: &Path) -> Result<(), FleetError> {
        let text: String = self.fields().into_iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        std::fs::write(dir.join("result.txt"), text).map_err(|e| FleetError(format!("{}: {e}", dir.display())))
    }

    /// The group messages handed to the inbox, and the sum of what became
    /// of them: handed to the core, dropped (duplicate, stale, by a full
    /// buffer while waiting for a Welcome, too far ahead), refused (a full
    /// buffer, the policy) or still buffered. Equal when every message is counted once.
    /// A device's: the gateway counts redelivered KeyPackages as duplicates
    /// too.
    pub fn inbox_totals(&self) -> (u64, u64) {
        let dropped = self.duplicates + (self.stale - self.departed) + self.overflowed + self.too_far_ahead;
        (self.accepted, self.processed + dropped + self.buffer_full + self.refused_by_policy + self.left_buffered)
    }

    /// Reads `dir/result.txt`.
    pub fn read(dir: &Path) -> Result<Self, FleetError> {
        let path = dir.join("result.txt");
        let text = std::fs::read_to_string(&path).map_err(|e| FleetError(format!("{}: {e}", path.display())))?;
        let mut r = Self::default();
        let bad = |k: &str| FleetError(format!("{}: bad {k}", path.display()));
        for line in text.lines() {
            let Some((k, v)) = line.split_once('=') else { return Err(bad(line)) };
            let n = || v.parse::<u64>().map_err(|_| bad(k));
            match k {
                "name" => r.name = v.to_string(),
                "epoch" => r.epoch = n()?,
                "authenticator" => r.authenticator = v.to_string(),
                "restarted" => r.restarted = v == "true",
                "joins" => r.joins = n()?,
                "joined_epoch" => r.joined_epoch = n()?,
                "rejoins" => r.rejoins = n()?,
                "commits" => r.commits = n()?,
                "app_sent" => r.app_sent = n()?,
                "app_received" => r.app_received = n()?,
                "proposals_sent" => r.proposals_sent = n()?,
                "duplicates" => r.duplicates = n()?,
                "stale" => r.stale = n()?,
                "buffered" => r.buffered = n()?,
                "released" => r.released = n()?,
                "overflowed" => r.overflowed = n()?,
                "too_far_ahead" => r.too_far_ahead = n()?,
                "departed" => r.departed = n()?,
                "accepted" => r.accepted = n()?,
                "processed" => r.processed = n()?,
                "left_buffered" => r.left_buffered = n()?,
                "core_refused" => r.core_refused = n()?,
                "refused_by_policy" => r.refused_by_policy = n()?,
                "buffer_full" => r.buffer_full = n()?,
                "claim_repeats" => r.claim_repeats = n()?,
                "bytes_out" => r.bytes_out = n()?,
                "connects" => r.connects = n()?,
                "received" => r.received = n()?,
                "busy_ms" => r.busy_ms = v.parse().map_err(|_| bad(k))?,
                "save_ms" => r.save_ms = v.parse().map_err(|_| bad(k))?,
                "commit_ms" | "round_ms" => {
                    let list = v.split(',').filter(|s| !s.is_empty()).map(|s| s.parse().map_err(|_| bad(k))).collect::<Result<_, _>>()?;
                    if k == "commit_ms" { r.commit_ms = list } else { r.round_ms = list }
                }
                _ => return Err(bad(k)),
            }
        }
        Ok(r)
    }
}

/// Runs one member in this process (the `--member` command).
pub fn run_member(args: &MemberArgs) -> Result<MemberResult, FleetError> {
    std::fs::create_dir_all(&args.dir).map_err(|e| FleetError(format!("{}: {e}", args.dir.display())))?;
    let big = args.devices >= 128;
    match (args.name == "gateway", big) {
        (true, false) => member::gateway::<128, { 128 * ARENA_PER_LEAF }>(args),
        (true, true) => member::gateway::<1024, { 1024 * ARENA_PER_LEAF }>(args),
        (false, false) => member::device::<128, { 128 * ARENA_PER_LEAF }>(args),
        (false, true) => member::device::<1024, { 1024 * ARENA_PER_LEAF }>(args),
    }
}

/// What a fleet run over the broker did.
#[derive(Clone, Debug)]
pub struct BrokerReport {
    /// Every member's result (the gateway first).
    pub members: Vec<MemberResult>,
    /// The state directory.
    pub state_dir: PathBuf,
    /// Wall-clock time of the whole run.
    pub wall: Duration,
    /// Time from the first device's start to the gateway's end.
    pub run: Duration,
}

impl BrokerReport {
    /// The gateway's result.
    pub fn gateway(&self) -> &MemberResult {
        &self.members[0]
    }
}

impl std::fmt::Display for BrokerReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = self.gateway();
        let devices = &self.members[1..];
        let sum = |k: fn(&MemberResult) -> u64| devices.iter().map(k).sum::<u64>();
        let published: u64 = sum(|m| m.app_sent) + sum(|m| m.proposals_sent) + g.commits;
        writeln!(f, "gateway: {} commits, mean {:.1} ms each (commit + merge + store)", g.commits, mean(&g.commit_ms))?;
        writeln!(
            f,
            "devices: {} application messages sent, {} opened; {} Update proposals; {} rejoins; {} restarted from their state",
            sum(|m| m.app_sent),
            sum(|m| m.app_received),
            sum(|m| m.proposals_sent),
            sum(|m| m.rejoins),
            devices.iter().filter(|m| m.restarted).count(),
        )?;
        writeln!(
            f,
            "inboxes: {} duplicates and {} stale messages dropped, {} buffered for a future epoch ({} released), {} dropped by a full buffer while waiting for a Welcome, {} by a full buffer after it, {} too far ahead",
            sum(|m| m.duplicates) + g.duplicates,
            sum(|m| m.stale) + g.stale,
            sum(|m| m.buffered) + g.buffered,
            sum(|m| m.released) + g.released,
            sum(|m| m.overflowed) + g.overflowed,
            sum(|m| m.buffer_full) + g.buffer_full,
            sum(|m| m.too_far_ahead) + g.too_far_ahead,
        )?;
        let received: u64 = self.members.iter().map(|m| m.received).sum();
        let secs = self.run.as_secs_f64().max(1e-9);
        writeln!(
            f,
            "broker: {published} MLS messages published, {received} deliveries to members in {:.2} s ({:.0} deliveries/s)",
            self.run.as_secs_f64(),
            received as f64 / secs
        )?;
        // Rounds after the first (the join's Welcome processing is in the first).
        let rounds = g.round_ms.get(1..).unwrap_or(&[]);
        let per_device = |k: fn(&MemberResult) -> f64| devices.iter().map(k).sum::<f64>() / devices.len().max(1) as f64;
        writeln!(
            f,
            "rounds: {:.0} ms each (mean of {}, from one Commit to the next); CPU in MLS + state saving: gateway {:.0} ms ({:.0} saving), devices {:.0} ms ({:.0} saving, mean per device)",
            mean(rounds),
            rounds.len(),
            g.busy_ms,
            g.save_ms,
            per_device(|m| m.busy_ms),
            per_device(|m| m.save_ms),
        )?;
        writeln!(f, "state directory: {}", self.state_dir.display())?;
        writeln!(f, "epoch authenticators: all {} members agree at epoch {}: {}", self.members.len(), g.epoch, short(&g.authenticator))?;
        write!(f, "total time: {:.2} s", self.wall.as_secs_f64())
    }
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() { 0.0 } else { v.iter().sum::<f64>() / v.len() as f64 }
}

fn short(hex: &str) -> String {
    if hex.len() <= 16 { hex.to_string() } else { format!("{}…{}", &hex[..8], &hex[hex.len() - 8..]) }
}

/// How [`run`] starts the members.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Every member a process of this program (`--member NAME`).
    Processes,
    /// Every member a thread of this process (`--threads`): same code, own
    /// MQTT connection and state directory each; the log lines go to the
    /// member's files ([`log::to_files`]).
    Threads,
}

/// A started member, a process or a thread.
pub trait Started {
    /// `None` while it runs, `Some(Ok(()))` once it ended well, `Some(Err(why))` if not.
    fn ended(&mut self) -> Option<Result<(), String>>;
    /// Stops it if it still runs (a failed run leaves no process; a thread
    /// cannot be stopped: it ends with the process, or by itself when idle).
    fn stop(&mut self) {}
}

impl Started for Child {
    fn ended(&mut self) -> Option<Result<(), String>> {
        match self.try_wait() {
            Ok(None) => None,
            Ok(Some(s)) if s.success() => Some(Ok(())),
            Ok(Some(s)) => Some(Err(s.to_string())),
            Err(e) => Some(Err(e.to_string())),
        }
    }
    fn stop(&mut self) {
        if self.ended().is_none() {
            let _ = self.kill();
            let _ = self.wait();
        }
    }
}

/// A member thread (`None` once joined).
pub struct MemberThread(Option<std::thread::JoinHandle<Result<MemberResult, FleetError>>>);

impl Started for MemberThread {
    fn ended(&mut self) -> Option<Result<(), String>> {
        match self.0.take_if(|h| h.is_finished()).map(|h| h.join()) {
            None if self.0.is_some() => None,
            None | Some(Ok(Ok(_))) => Some(Ok(())),
            Some(Ok(Err(e))) => Some(Err(e.0)),
            Some(Err(_)) => Some(Err("panicked".into())),
        }
    }
}

/// Stack of a member thread: the core keeps its state on the heap here
/// (boxed groups, inboxes, buffers); 1 MiB leaves room over what the
/// deepest operation (a 1,024-leaf Commit) uses (see the README).
pub const THREAD_STACK: usize = 1 << 20;

/// Starts member `args` as a thread of this process, its log lines in its directory.
pub fn spawn_thread(args: &MemberArgs) -> Result<MemberThread, FleetError> {
    let a = args.clone();
    std::thread::Builder::new()
        .name(args.name.clone())
        .stack_size(THREAD_STACK)
        .spawn(move || {
            log::to_files(&a.dir).map_err(|e| FleetError(format!("{}: its logs: {e}", a.dir.display())))?;
            let r = run_member(&a);
            if let Err(e) = &r {
                log::line(true, format_args!("error: {e}"));
            }
            r
        })
        .map(|h| MemberThread(Some(h)))
        .map_err(|e| FleetError(format!("starting the thread of {}: {e}", args.name)))
}

/// Kills the child processes left when dropped (a failed run leaves no process).
struct Children(Vec<(String, Box<dyn Started>)>);

impl Drop for Children {
    fn drop(&mut self) {
        for (_, c) in &mut self.0 {
            c.stop();
        }
    }
}

/// Starts member `args` as a process of `program`, its output in its directory.
pub fn spawn_member(program: &Path, args: &MemberArgs) -> Result<Child, FleetError> {
    std::fs::create_dir_all(&args.dir).map_err(|e| FleetError(format!("{}: {e}", args.dir.display())))?;
    let log = |n: &str| std::fs::OpenOptions::new().create(true).append(true).open(args.dir.join(n));
    let (out, err) = (log("stdout.log"), log("stderr.log"));
    let (Ok(out), Ok(err)) = (out, err) else { return Err(FleetError(format!("{}: cannot open its logs", args.dir.display()))) };
    Command::new(program)
        .args(args.to_args())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| FleetError(format!("starting {}: {e}", args.name)))
}

fn start(mode: Mode, program: &Path, args: &MemberArgs) -> Result<Box<dyn Started>, FleetError> {
    Ok(match mode {
        Mode::Processes => Box::new(spawn_member(program, args)?),
        Mode::Threads => Box::new(spawn_thread(args)?),
    })
}

/// Waits until `dir/ready` exists (the gateway subscribed).
pub fn wait_ready(dir: &Path, gateway: &mut dyn Started, timeout: Duration) -> Result<(), FleetError> {
    let start = Instant::now();
    while !dir.join("ready").exists() {
        if let Some(how) = gateway.ended() {
            return Err(FleetError(format!("the gateway ended ({how:?}) before subscribing; see {}/stderr.log", dir.display())));
        }
        if start.elapsed() > timeout {
            return Err(FleetError(format!("the gateway did not subscribe within {timeout:?}")));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// How long a run may take before it counts as stuck (the gateway and [`run`]).
pub fn time_limit(devices: usize, rounds: u64) -> Duration {
    Duration::from_secs(600 + 2 * devices as u64 * (rounds + 1))
}

/// Open files a member thread holds: its socket, its client's runtime
/// (epoll, eventfd), its SQLite database, WAL and shared memory, `seen.log`,
/// its two logs; and a margin.
const FILES_PER_THREAD: u64 = 10;

/// The soft limit on open files of this process (`ulimit -n`), from `/proc`.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Runs the fleet over the broker at `host:port`: the gateway and `devices`
/// devices, as processes or threads (`mode`), to the end; then every
/// member's epoch authenticator must be the gateway's.
pub fn run(
    host: &str,
    port: u16,
    devices: usize,
    rounds: u64,
    suite: CipherSuite,
    state_dir: Option<&Path>,
    mode: Mode,
) -> Result<BrokerReport, FleetError> {
    if devices == 0 || devices > MAX_DEVICES {
        return Err(FleetError(format!("--members: expected 1 to {MAX_DEVICES}, got {devices}")));
    }
    let files = FILES_PER_THREAD * (devices as u64 + 1) + 64;
    if mode == Mode::Threads && open_files_limit().is_some_and(|l| l < files) {
        return Err(FleetError(format!(
            "--threads with {devices} devices needs about {files} open files; raise `ulimit -n` (the broker needs one per client too)"
        )));
    }
    let started = Instant::now();
    let tag = {
        use rand_core::Rng;
        crate::os_rng().next_u32()
    };
    let root = match state_dir {
        Some(d) => d.to_path_buf(),
        None => std::env::temp_dir().join(format!("mls-fleet-mqtt-{}-{tag:08x}", std::process::id())),
    };
    std::fs::create_dir_all(&root).map_err(|e| FleetError(format!("{}: {e}", root.display())))?;
    let group = format!("fleet-{tag:08x}");
    let program = std::env::current_exe().map_err(|e| FleetError(format!("own executable: {e}")))?;
    let member = |name: String| MemberArgs {
        dir: root.join(&name),
        name,
        host: host.to_string(),
        port,
        group: group.clone(),
        devices,
        rounds,
        suite,
        duplicate: false,
        pause_ms: 0,
    };
    let gateway = member("gateway".into());
    if gateway.dir.join("joined").exists() {
        return Err(FleetError(format!("state directory {}: holds a run already (resuming over a broker is not supported)", root.display())));
    }
    let mut children = Children(Vec::new());
    let mut g = start(mode, &program, &gateway)?;
    wait_ready(&gateway.dir, g.as_mut(), Duration::from_secs(20))?;
    children.0.push(("gateway".into(), g));
    let run_start = Instant::now();
    let mut dirs = vec![gateway.dir.clone()];
    for i in 0..devices {
        let d = member(device_name(i));
        children.0.push((d.name.clone(), start(mode, &program, &d)?));
        dirs.push(d.dir);
    }
    let deadline = Instant::now() + time_limit(devices, rounds);
    let mut run = None;
    for (name, c) in &mut children.0 {
        loop {
            match c.ended() {
                Some(Ok(())) => break,
                Some(Err(how)) => return Err(FleetError(format!("{name} failed ({how}); see {}/{name}/stderr.log", root.display()))),
                None if Instant::now() > deadline => return Err(FleetError(format!("{name} did not finish in time"))),
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        if name == "gateway" {
            run = Some(run_start.elapsed());
        }
    }
    let members = dirs.iter().map(|d| MemberResult::read(d)).collect::<Result<Vec<_>, _>>()?;
    let g = &members[0];
    for m in &members[1..] {
        if (m.epoch, &m.authenticator) != (g.epoch, &g.authenticator) {
            return Err(FleetError(format!(
                "epoch authenticators disagree: {} is at epoch {} with {}, the gateway at epoch {} with {}",
                m.name,
                m.epoch,
                short(&m.authenticator),
                g.epoch,
                short(&g.authenticator)
            )));
        }
    }
    Ok(BrokerReport { members, state_dir: root, wall: started.elapsed(), run: run.unwrap_or_default() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(parse_url("mqtt://127.0.0.1:1884"), Ok(("127.0.0.1".into(), 1884)));
        assert_eq!(parse_url("mqtt://broker"), Ok(("broker".into(), 1883)));
        for bad in ["tcp://x:1", "mqtt://", "mqtt://x:99999", "mqtt://x/y:1", "mqtt://:1"] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn results_round_trip() {
        let dir = std::env::temp_dir().join(format!("mls-fleet-result-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let r = MemberResult { name: "device-001".into(), epoch: 7, authenticator: "00ff".into(), app_sent: 3, commit_ms: vec![1.5, 2.25], ..Default::default() };
        r.write(&dir).expect("write");
        assert_eq!(MemberResult::read(&dir).expect("read"), r);
        std::fs::write(dir.join("result.txt"), "epoch=x\n").expect("write");
        assert!(MemberResult::read(&dir).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
