//! The command line of `mls-fleet`: a small hand-written parser (six
//! options do not need a framework). Every error is one line.

use super::{Config, MAX_DEVICES};
use mls_nostd::crypto::CipherSuite;
use std::path::PathBuf;

/// The usage text printed by `--help`.
pub const USAGE: &str = "\
usage: mls-fleet [--members N] [--rounds R] [--suite 1|2|3] [--seed S] [--state-dir DIR] [--fsync]
       mls-fleet --broker mqtt://HOST:PORT [--threads] [--members N] [--rounds R] [--suite 1|2|3] [--state-dir DIR]

Simulates an IoT fleet in one MLS group (RFC 9420): a gateway creates the group
and adds N devices in one Commit; every device joins from the one Welcome; then
R rounds of key updates, removals and re-adds, and application messages. Every
member processes every handshake message and all epoch authenticators must agree.
Every member persists its state in its own directory of the state directory; a
run given the state directory of a stopped run resumes it at the next round.

  --members N      devices in the fleet, 1 to 1023 (default 64); the gateway is one more member
  --rounds R       rounds after the join (default 3)
  --suite 1|2|3    cipher suite 0x0001 (X25519, AES-128-GCM), 0x0002 (P-256, AES-128-GCM)
                   or 0x0003 (X25519, ChaCha20-Poly1305, default)
  --seed S         replay a run: every random draw comes from S (default: a seed from the OS RNG)
  --state-dir DIR  where members are saved, one directory each, and the run's progress;
                   if DIR holds a previous run, it is resumed (up to --rounds)
                   (default: a fresh temporary directory, printed; in /dev/shm up to 127 devices)
  --fsync          flush every record write to the disk (survives a power cut; slow)
  --broker URL     run the gateway and every device as separate processes that talk
                   only through the MQTT broker at URL (mqtt://HOST:PORT, QoS 1,
                   persistent sessions); each member's state in DIR/<name>/
  --threads        with --broker: every member a thread of this one process instead
                   (each still with its own MQTT connection and state directory)
  -h, --help       this text";

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Print [`USAGE`].
    Help,
    /// Run the simulation.
    Run(Config),
    /// Run the fleet over an MQTT broker (`--broker`).
    Broker {
        /// Devices, rounds, suite, state directory (seed and fsync unused).
        config: Config,
        /// The broker's host.
        host: String,
        /// Its port.
        port: u16,
        /// Members as threads of this process (`--threads`), not processes.
        threads: bool,
    },
    /// Run one member of a fleet over a broker (`--member NAME`, started by
    /// `--broker`; not in the usage text).
    Member(super::broker::MemberArgs),
}

fn number<T: std::str::FromStr>(option: &str, value: &str, what: &str) -> Result<T, String> {
    value.parse().map_err(|_| format!("{option}: expected {what}, got {value:?}"))
}

/// Parses the arguments (without the program name). The error is one line,
/// without the `error:` prefix.
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Command, String> {
    let mut config = Config::default();
    let (mut broker, mut member, mut group, mut duplicate, mut pause_ms, mut threads) = (None, None, None, false, 0, false);
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(Command::Help);
        }
        if arg == "--fsync" {
            config.fsync = true;
            continue;
        }
        if arg == "--fault-duplicate" {
            duplicate = true;
            continue;
        }
        if arg == "--threads" {
            threads = true;
            continue;
        }
        // `--option value` or `--option=value`.
        let (option, inline) = match arg.split_once('=') {
            Some((o, v)) if o.starts_with("--") => (o.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let known = ["--members", "--rounds", "--suite", "--seed", "--state-dir", "--broker", "--member", "--group", "--pause-ms"];
        if !known.contains(&option.as_str()) {
            return Err(format!("unknown argument {arg:?} (try --help)"));
        }
        let value = match inline.or_else(|| args.next()) {
            Some(v) => v,
            None => return Err(format!("{option}: missing value")),
        };
        match option.as_str() {
            "--members" => {
                let what = format!("a number of devices from 1 to {MAX_DEVICES}");
                let n: usize = number(&option, &value, &what)?;
                if n == 0 || n > MAX_DEVICES {
                    return Err(format!("{option}: expected {what}, got {n}"));
                }
                config.devices = n;
            }
            "--rounds" => config.rounds = number(&option, &value, "a number of rounds")?,
            "--suite" => {
                config.suite = match value.as_str() {
                    "1" => CipherSuite::X25519Aes128GcmSha256Ed25519,
                    "2" => CipherSuite::P256Aes128GcmSha256P256,
                    "3" => CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519,
                    _ => return Err(format!("{option}: expected 1, 2 or 3, got {value:?}")),
                }
            }
            "--seed" => config.seed = Some(number(&option, &value, "an unsigned 64-bit number")?),
            "--broker" => broker = Some(super::broker::parse_url(&value)?),
            "--member" => member = Some(value),
            "--group" => group = Some(value),
            "--pause-ms" => pause_ms = number(&option, &value, "milliseconds")?,
            _ => {
                if value.is_empty() {
                    return Err(format!("{option}: empty path"));
                }
                config.state_dir = Some(PathBuf::from(value));
            }
        }
    }
    match (broker, member) {
        (None, _) if threads => Err("--threads: needs --broker".into()),
        (None, None) => Ok(Command::Run(config)),
        (None, Some(_)) => Err("--member: needs --broker".into()),
        (Some((host, port)), None) => Ok(Command::Broker { config, host, port, threads }),
        (Some(_), Some(_)) if threads => Err("--threads: not with --member".into()),
        (Some((host, port)), Some(name)) => {
            let group = group.ok_or("--member: needs --group")?;
            let dir = config.state_dir.clone().ok_or("--member: needs --state-dir")?;
            Ok(Command::Member(super::broker::MemberArgs {
                name,
                host,
                port,
                group,
                dir,
                devices: config.devices,
                rounds: config.rounds,
                suite: config.suite,
                duplicate,
                pause_ms,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn defaults_and_options() {
        assert_eq!(parse(args(&[])), Ok(Command::Run(Config::default())));
        let Ok(Command::Run(c)) = parse(args(&["--members", "8", "--rounds=2", "--suite", "1", "--seed", "7"])) else {
            panic!("parse failed")
        };
        assert_eq!((c.devices, c.rounds, c.seed, c.fsync), (8, 2, Some(7), false));
        assert_eq!(c.suite, CipherSuite::X25519Aes128GcmSha256Ed25519);
        let Ok(Command::Run(c)) = parse(args(&["--suite", "2"])) else { panic!("--suite 2") };
        assert_eq!(c.suite, CipherSuite::P256Aes128GcmSha256P256);
        let Ok(Command::Run(c)) = parse(args(&["--fsync", "--state-dir", "d"])) else { panic!("parse failed") };
        assert!(c.fsync);
        assert_eq!(c.state_dir.as_deref(), Some(std::path::Path::new("d")));
        assert_eq!(parse(args(&["--help"])), Ok(Command::Help));
        let Ok(Command::Broker { config, host, port, threads }) = parse(args(&["--broker", "mqtt://localhost:1999", "--members", "3"])) else {
            panic!("--broker")
        };
        assert_eq!((config.devices, host.as_str(), port, threads), (3, "localhost", 1999, false));
        let Ok(Command::Broker { threads, .. }) = parse(args(&["--threads", "--broker", "mqtt://h:1"])) else { panic!("--threads") };
        assert!(threads);
        let Ok(Command::Member(m)) =
            parse(args(&["--member", "device-002", "--broker=mqtt://h:1", "--group", "g", "--state-dir", "d", "--fault-duplicate"]))
        else {
            panic!("--member")
        };
        assert_eq!((m.name.as_str(), m.group.as_str(), m.duplicate), ("device-002", "g", true));
        // The member's own command line parses back to it.
        assert_eq!(parse(m.to_args().into_iter().chain(["--fault-duplicate".to_string()])), Ok(Command::Member(m)));
    }

    #[test]
    fn bad_arguments_are_one_line() {
        for bad in [
            &["--members", "0"][..],
            &["--members", "1024"],
            &["--members", "x"],
            &["--suite", "4"],
            &["--rounds"],
            &["--seed", "-1"],
            &["--frobnicate"],
            &["--state-dir="],
            &["--fsync=1"],
            &["--broker", "tcp://x:1"],
            &["--member", "gateway"],
            &["--member", "gateway", "--broker", "mqtt://h:1", "--state-dir", "d"],
            &["--threads"],
            &["--threads", "--member", "gateway", "--broker", "mqtt://h:1", "--group", "g", "--state-dir", "d"],
        ] {
            let e = parse(args(bad)).expect_err("must fail");
            assert!(!e.contains('\n') && !e.is_empty(), "{bad:?}: {e}");
        }
    }
}
