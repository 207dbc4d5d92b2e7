//! What the fleet measures: the time of each core operation and the size of
//! each message, by kind.

use std::time::Duration;

/// The timed operations (one call into the core each, wall clock; the durable
/// ones, so each includes saving what it changed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// The gateway creates the group and commits the Adds of every device
    /// (with the Welcome), then merges.
    CreateAndAdd,
    /// A device joins from a Welcome (tree import and validation included).
    Join,
    /// A member creates a Commit with an UpdatePath (a key update) and merges it.
    CommitWithPath,
    /// The gateway creates a Commit without path (a Remove or an Add) and merges it.
    CommitWithoutPath,
    /// A member processes another's Commit and merges it.
    ProcessCommit,
    /// A member protects an application message.
    Protect,
    /// A member unprotects (decrypts and verifies) an application message.
    Unprotect,
    /// A member's group is saved in full after a round (a checkpoint).
    Checkpoint,
}

impl Op {
    /// Every operation, in table order.
    pub const ALL: [Op; 8] = [
        Op::CreateAndAdd,
        Op::Join,
        Op::CommitWithPath,
        Op::CommitWithoutPath,
        Op::ProcessCommit,
        Op::Protect,
        Op::Unprotect,
        Op::Checkpoint,
    ];

    fn label(self) -> &'static str {
        match self {
            Op::CreateAndAdd => "create group + add all devices (1 Commit + Welcome)",
            Op::Join => "join from a Welcome (tree in the Welcome)",
            Op::CommitWithPath => "commit with path (key update)",
            Op::CommitWithoutPath => "commit without path (remove or re-add)",
            Op::ProcessCommit => "process + merge a commit",
            Op::Protect => "protect an application message",
            Op::Unprotect => "unprotect an application message",
            Op::Checkpoint => "save a member in full (after each round)",
        }
    }
}

/// The measured messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Msg {
    /// The Welcome of the first Commit (every device, the ratchet tree inside).
    WelcomeAll,
    /// The Welcome of a re-add (one device, the ratchet tree inside).
    WelcomeOne,
    /// The first Commit: the Adds of every device (PublicMessage).
    CommitAddAll,
    /// A Commit with an UpdatePath (PrivateMessage).
    CommitWithPath,
    /// A Commit of one Remove or one Add, without path (PublicMessage).
    CommitWithoutPath,
    /// A device's KeyPackage, as encoded (without an `MLSMessage` wrapper).
    KeyPackage,
    /// An application message (PrivateMessage).
    Application,
}

impl Msg {
    /// Every message kind, in table order.
    pub const ALL: [Msg; 7] = [
        Msg::WelcomeAll,
        Msg::WelcomeOne,
        Msg::CommitAddAll,
        Msg::CommitWithPath,
        Msg::CommitWithoutPath,
        Msg::KeyPackage,
        Msg::Application,
    ];

    fn label(self) -> &'static str {
        match self {
            Msg::WelcomeAll => "Welcome of the first Commit (all devices)",
            Msg::WelcomeOne => "Welcome of a re-add (one device)",
            Msg::CommitAddAll => "Commit adding all devices (PublicMessage)",
            Msg::CommitWithPath => "Commit with path (PrivateMessage)",
            Msg::CommitWithoutPath => "Commit of one Remove or Add (PublicMessage)",
            Msg::KeyPackage => "KeyPackage",
            Msg::Application => "application message (PrivateMessage)",
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Series {
    count: u64,
    total: u128,
    max: u128,
}

impl Series {
    fn add(&mut self, v: u128) {
        self.count += 1;
        self.total += v;
        self.max = self.max.max(v);
    }

    fn mean(&self) -> u128 {
        if self.count == 0 { 0 } else { self.total / u128::from(self.count) }
    }
}

/// Times (in nanoseconds) and sizes (in bytes), by kind.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    ops: [Series; Op::ALL.len()],
    msgs: [Series; Msg::ALL.len()],
}

impl Stats {
    /// Records one operation's duration.
    pub fn time(&mut self, op: Op, d: Duration) {
        self.ops[op as usize].add(d.as_nanos());
    }

    /// Records one message's size.
    pub fn size(&mut self, msg: Msg, bytes: usize) {
        self.msgs[msg as usize].add(bytes as u128);
    }

    /// How many operations of a kind were timed.
    pub fn count(&self, op: Op) -> u64 {
        self.ops[op as usize].count
    }

    /// The mean duration of a kind of operation.
    pub fn mean(&self, op: Op) -> Duration {
        Duration::from_nanos(u64::try_from(self.ops[op as usize].mean()).unwrap_or(u64::MAX))
    }

    /// Writes the two tables (operations, messages).
    pub fn write_tables(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{:<54} {:>7} {:>11} {:>11}", "operation (each saves what it changed)", "count", "mean", "total")?;
        for op in Op::ALL {
            let s = &self.ops[op as usize];
            writeln!(f, "{:<54} {:>7} {:>11} {:>11}", op.label(), s.count, duration(s.mean()), duration(s.total))?;
        }
        writeln!(f)?;
        writeln!(f, "{:<54} {:>7} {:>11} {:>11}", "message", "count", "mean bytes", "max bytes")?;
        for msg in Msg::ALL {
            let s = &self.msgs[msg as usize];
            writeln!(f, "{:<54} {:>7} {:>11} {:>11}", msg.label(), s.count, thousands(s.mean()), thousands(s.max))?;
        }
        Ok(())
    }
}

/// `1234567` as `1,234,567`.
pub fn thousands(v: u128) -> String {
    let digits = v.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Nanoseconds in the unit that fits (µs, ms, s).
pub fn duration(ns: u128) -> String {
    let ns = ns as f64;
    if ns < 1e6 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(duration(1500), "1.5 µs");
        assert_eq!(duration(2_500_000), "2.50 ms");
        assert_eq!(duration(3_000_000_000), "3.00 s");
    }

    #[test]
    fn means() {
        let mut s = Stats::default();
        s.time(Op::Join, Duration::from_micros(10));
        s.time(Op::Join, Duration::from_micros(30));
        assert_eq!(s.count(Op::Join), 2);
        assert_eq!(s.mean(Op::Join), Duration::from_micros(20));
        assert_eq!(s.mean(Op::Protect), Duration::ZERO);
    }
}
