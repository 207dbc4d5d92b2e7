//! Seeded random interoperability: one group of up to 3 OpenMLS, 3 mls-rs
//! and 2 of our members; 200 operations (add, remove, update commit,
//! external PSK commit, proposals by reference then a commit by someone
//! else, application message), each by a random member, with random choices of path on Adds,
//! ratchet tree in the Welcome or out of band, and PublicMessage or
//! PrivateMessage handshakes. Every other member processes every message,
//! and after every epoch change all members agree on the epoch, its
//! authenticator and an exporter output.
//!
//! The seed is printed (and the number of operations can be raised with
//! `MLS_INTEROP_OPS`); set `MLS_INTEROP_SEED` to replay a failing run (the
//! sequence of operations and our keys replay; the anchors draw their own
//! keys from the OS).
//! Removed members are re-added later (as fresh clients), so the group
//! stays between 2 and 8 members.

use crate::mls_rs_party;
use crate::openmls_party;

use mls_interop::scenarios::Net;
use mls_interop::{Ours, Party, SUITES, SeededRng};
use mls_rs_party::MlsRsParty;
use openmls_party::OpenMlsParty;

/// Operations per run; `MLS_INTEROP_OPS` overrides (for longer soaks).
fn operations() -> usize {
    std::env::var("MLS_INTEROP_OPS").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(200)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lib {
    OpenMls,
    MlsRs,
    Ours,
}

/// One of the 8 seats of the group; `member` is its index in the `Net`
/// while seated.
struct Seat {
    lib: Lib,
    base: &'static str,
    generation: u32,
    member: Option<usize>,
}

struct Run {
    rng: SeededRng,
    suite_code: u16,
    suite: mls_nostd::crypto::CipherSuite,
    seats: Vec<Seat>,
    net: Net,
    epochs_checked: usize,
}

fn seed() -> u64 {
    match std::env::var("MLS_INTEROP_SEED") {
        Ok(s) => s.trim().parse().expect("MLS_INTEROP_SEED is a u64"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x1234_5678),
    }
}

/// The external PSK every client holds.
const PSK_ID: &[u8] = b"random-psk";

fn new_party(seat: &Seat, suite_code: u16, suite: mls_nostd::crypto::CipherSuite, seed: u64) -> Box<dyn Party> {
    let name = format!("{}#{}", seat.base, seat.generation);
    let mut p: Box<dyn Party> = match seat.lib {
        Lib::OpenMls => Box::new(OpenMlsParty::new(&name, suite_code)),
        // Not a GREASE type: OpenMLS 0.9.2 rejects GREASE extensions (see mls_rs_party.rs).
        Lib::MlsRs => Box::new(MlsRsParty::with_extension(&name, suite_code, 0xff3a)),
        Lib::Ours => Box::new(Ours::new(&name, suite, seed ^ u64::from(seat.generation) << 32 ^ name.len() as u64)),
    };
    p.register_external_psk(PSK_ID, b"the random test's external PSK");
    p
}

impl Run {
    fn new(seed: u64, suite_index: usize) -> Self {
        let (suite_code, suite) = SUITES[suite_index];
        let mut rng = SeededRng(seed);
        let layout = [
            (Lib::OpenMls, "openmls-1"),
            (Lib::OpenMls, "openmls-2"),
            (Lib::OpenMls, "openmls-3"),
            (Lib::MlsRs, "mls-rs-1"),
            (Lib::MlsRs, "mls-rs-2"),
            (Lib::MlsRs, "mls-rs-3"),
            (Lib::Ours, "ours-1"),
            (Lib::Ours, "ours-2"),
        ];
        let mut seats: Vec<Seat> =
            layout.iter().map(|(lib, base)| Seat { lib: *lib, base, generation: 0, member: None }).collect();
        let creator = rng.below(seats.len());
        let party = new_party(&seats[creator], suite_code, suite, rng.0);
        println!("seat {} ({:?}) creates the group", seats[creator].base, seats[creator].lib);
        let net = Net::new(party);
        seats[creator].member = Some(0);
        Self { rng, suite_code, suite, seats, net, epochs_checked: 0 }
    }

    fn seated(&self) -> Vec<usize> {
        (0..self.seats.len()).filter(|s| self.seats[*s].member.is_some()).collect()
    }

    fn empty(&self) -> Vec<usize> {
        (0..self.seats.len()).filter(|s| self.seats[*s].member.is_none()).collect()
    }

    fn pick(&mut self, from: &[usize]) -> usize {
        from[self.rng.below(from.len())]
    }

    fn member(&self, seat: usize) -> usize {
        self.seats[seat].member.expect("seated")
    }

    fn name(&self, seat: usize) -> String {
        self.net.members[self.member(seat)].name().to_string()
    }

    /// A fresh client for an empty seat.
    fn newcomer(&mut self, seat: usize) -> Box<dyn Party> {
        self.seats[seat].generation += 1;
        let seed = self.rng.0;
        new_party(&self.seats[seat], self.suite_code, self.suite, seed)
    }

    /// Random handshake settings for the member that acts next.
    fn randomize(&mut self, seat: usize) -> (bool, bool) {
        let private = self.rng.below(2) == 0;
        let tree = self.rng.below(2) == 0;
        let m = self.member(seat);
        self.net.members[m].set_private_handshake(private);
        self.net.members[m].set_tree_in_welcome(tree);
        self.net.expect_private = Some(private);
        (private, tree)
    }

    fn agree(&mut self) {
        self.net.agree();
        self.epochs_checked += 1;
        // Every seated member sees every other seated member, at one leaf.
        let seated = self.seated();
        let first = self.member(seated[0]);
        let n = self.net.members[first].member_count();
        assert_eq!(n, seated.len(), "members in the group");
        for s in seated {
            let m = self.member(s);
            assert_eq!(self.net.members[m].member_count(), n, "{}: member count", self.name(s));
        }
    }

    fn step(&mut self, step: usize) {
        let seated = self.seated();
        let empty = self.empty();
        let actor = self.pick(&seated);
        let a = self.member(actor);
        // Weights: adds while the group is small, removes while it is large.
        let mut ops: Vec<&str> = vec!["update", "message", "message", "proposals", "psk"];
        if !empty.is_empty() {
            ops.extend(["add"; 2]);
            if seated.len() < 4 {
                ops.extend(["add"; 3]);
            }
        }
        if seated.len() > 2 {
            ops.push("remove");
            if seated.len() > 6 {
                ops.push("remove");
            }
        }
        let op = ops[self.rng.below(ops.len())];
        match op {
            "add" => {
                let (private, tree) = self.randomize(actor);
                let path = self.rng.below(2) == 0;
                let seat = self.pick(&empty);
                let joiner = self.newcomer(seat);
                println!(
                    "{step}: {} adds {} (path {path}, tree in Welcome {tree}, private {private})",
                    self.name(actor),
                    joiner.name()
                );
                let j = self.net.add(a, joiner, path);
                self.seats[seat].member = Some(j);
                self.agree();
            }
            "remove" => {
                self.randomize(actor);
                let others: Vec<usize> = seated.iter().copied().filter(|s| *s != actor).collect();
                let target = self.pick(&others);
                println!("{step}: {} removes {}", self.name(actor), self.name(target));
                self.net.remove(a, self.member(target));
                self.seats[target].member = None;
                self.agree();
            }
            "update" => {
                let (private, _) = self.randomize(actor);
                println!("{step}: {} updates (private {private})", self.name(actor));
                self.net.update(a);
                self.agree();
            }
            "psk" => {
                let (private, _) = self.randomize(actor);
                println!("{step}: {} commits an external PSK by value (private {private})", self.name(actor));
                let (commit, _) = self.net.members[a].commit_external_psk(PSK_ID);
                self.net.deliver_commit(a, &commit);
                self.agree();
            }
            "message" => {
                let data = format!("message {step} from {}", self.name(actor));
                println!("{step}: {} sends application data", self.name(actor));
                self.net.message(a, data.as_bytes());
            }
            "proposals" => self.proposals(step, &seated, &empty),
            _ => unreachable!(),
        }
    }

    /// One to three proposals by reference from random members, then a
    /// Commit of them by another member.
    fn proposals(&mut self, step: usize, seated: &[usize], empty: &[usize]) {
        let committer = self.pick(seated);
        let mut touched = vec![committer]; // no remove or update of the committer
        let mut joiners: Vec<(usize, Box<dyn Party>)> = Vec::new();
        let mut free: Vec<usize> = empty.to_vec();
        let count = 1 + self.rng.below(3);
        let mut sent = 0;
        let mut removals = 0;
        for _ in 0..count {
            let proposer = self.pick(seated);
            let p = self.member(proposer);
            let private_p = self.rng.below(2) == 0;
            self.net.members[p].set_private_handshake(private_p);
            self.net.expect_private = Some(private_p);
            let kind = self.rng.below(4);
            let msg = match kind {
                0 if !free.is_empty() => {
                    let seat = self.pick(&free.clone());
                    free.retain(|s| *s != seat);
                    let mut joiner = self.newcomer(seat);
                    let kp = joiner.key_package();
                    println!("{step}: {} proposes adding {}", self.name(proposer), joiner.name());
                    joiners.push((seat, joiner));
                    self.net.members[p].propose_add(&kp)
                }
                1 => {
                    let candidates: Vec<usize> = seated.iter().copied().filter(|s| !touched.contains(s)).collect();
                    // Keep at least two members.
                    if candidates.is_empty() || seated.len() - removals <= 2 {
                        continue;
                    }
                    let target = self.pick(&candidates);
                    touched.push(target);
                    removals += 1;
                    let leaf = self.net.leaf_of(p, self.member(target));
                    println!("{step}: {} proposes removing {}", self.name(proposer), self.name(target));
                    self.net.members[p].propose_remove(leaf)
                }
                3 => {
                    println!("{step}: {} proposes an external PSK", self.name(proposer));
                    self.net.members[p].propose_external_psk(PSK_ID)
                }
                _ => {
                    if touched.contains(&proposer) {
                        continue;
                    }
                    let Some(m) = self.net.members[p].propose_update() else {
                        println!("{step}: {} cannot propose an update", self.name(proposer));
                        continue;
                    };
                    touched.push(proposer);
                    println!("{step}: {} proposes an update", self.name(proposer));
                    m
                }
            };
            self.net.deliver_proposal(p, &msg);
            sent += 1;
        }
        let (private, tree) = self.randomize(committer);
        println!(
            "{step}: {} commits {sent} proposal(s) by reference (tree in Welcome {tree}, private {private})",
            self.name(committer)
        );
        let c = self.member(committer);
        let (commit, welcome) = self.net.members[c].commit_pending();
        self.net.deliver_commit(c, &commit);
        for s in touched.iter().skip(1) {
            if !self.net.is_active(self.member(*s)) {
                self.seats[*s].member = None;
            }
        }
        if !joiners.is_empty() {
            let welcome = welcome.expect("a Welcome for the proposed adds");
            for (seat, joiner) in joiners {
                let j = self.net.join(joiner, c, &welcome);
                self.seats[seat].member = Some(j);
            }
        }
        self.agree();
    }
}

fn random_run(suite_index: usize) {
    let seed = seed();
    println!("MLS_INTEROP_SEED={seed} (cipher suite 0x{:04x})", SUITES[suite_index].0);
    eprintln!("random interop, cipher suite 0x{:04x}: MLS_INTEROP_SEED={seed}", SUITES[suite_index].0);
    let start = std::time::Instant::now();
    let mut run = Run::new(seed, suite_index);
    let operations = operations();
    for step in 0..operations {
        run.step(step);
    }
    let libs: Vec<Lib> = run.seated().into_iter().map(|s| run.seats[s].lib).collect();
    println!(
        "{operations} operations, {} epochs checked, {} clients, final members {libs:?}, {:?}",
        run.epochs_checked,
        run.net.members.len(),
        start.elapsed()
    );
    assert!(run.epochs_checked > operations / 3);
}

#[test]
fn random_operations_suite_1() {
    random_run(0);
}

#[test]
fn random_operations_suite_3() {
    random_run(1);
}

#[test]
fn random_operations_suite_2() {
    random_run(2);
}
