//! The two-library scenarios the per-anchor tests run (`tests/openmls.rs`,
//! `tests/mls_rs.rs`): each takes a factory of anchor members and a cipher
//! suite, mixes anchor members with ours in one group, delivers every
//! message to every other member and checks after every step that all
//! members agree on the epoch, its authenticator and an exporter output.

use crate::{Event, Ours, Party, agree, is_private_message};
use mls_nostd::crypto::CipherSuite;

/// Makes an anchor member with the given name (and the test's suite).
pub type Factory<'a> = &'a dyn Fn(&str) -> Box<dyn Party>;

/// The members of one group, each kept in its own library, and who is still in.
pub struct Net {
    /// Every member that ever joined, in joining order.
    pub members: Vec<Box<dyn Party>>,
    active: Vec<bool>,
    /// Check every handshake message's wire format: `Some(true)` for
    /// PrivateMessage, `Some(false)` for PublicMessage.
    pub expect_private: Option<bool>,
}

impl Net {
    /// A group of one: `creator` creates it.
    pub fn new(mut creator: Box<dyn Party>) -> Self {
        creator.create(b"interop-group");
        Self { members: vec![creator], active: vec![true], expect_private: None }
    }

    /// The index of the member named `name`.
    pub fn idx(&self, name: &str) -> usize {
        self.members.iter().position(|m| m.name() == name).unwrap_or_else(|| panic!("no member {name}"))
    }

    /// True while `i` is in the group.
    pub fn is_active(&self, i: usize) -> bool {
        self.active[i]
    }

    /// The indices of the members still in the group.
    pub fn active(&self) -> Vec<usize> {
        (0..self.members.len()).filter(|i| self.active[*i]).collect()
    }

    /// The leaf of member `target`, as member `from` sees it.
    pub fn leaf_of(&mut self, from: usize, target: usize) -> u32 {
        let name = self.members[target].name().as_bytes().to_vec();
        self.members[from].leaf_of(&name).unwrap_or_else(|| panic!("{} does not see {}", self.members[from].name(), self.members[target].name()))
    }

    fn check_wire_format(&self, msg: &[u8]) {
        if let Some(private) = self.expect_private {
            assert_eq!(is_private_message(msg), private, "handshake wire format");
        }
    }

    /// Every other active member processes `msg` from `from`; returns what
    /// they got. Members removed by a Commit become inactive.
    pub fn deliver(&mut self, from: usize, msg: &[u8]) -> Vec<(usize, Event)> {
        let mut out = Vec::new();
        for i in self.active() {
            if i == from {
                continue;
            }
            let e = self.members[i].process(msg);
            if e == (Event::Commit { removed_us: true }) {
                self.active[i] = false;
            }
            out.push((i, e));
        }
        out
    }

    /// Delivers a Commit from `from` and checks that all processed it.
    pub fn deliver_commit(&mut self, from: usize, commit: &[u8]) {
        self.check_wire_format(commit);
        for (i, e) in self.deliver(from, commit) {
            assert!(matches!(e, Event::Commit { .. }), "{}: expected a Commit, got {e:?}", self.members[i].name());
        }
    }

    /// Like [`Net::deliver_commit`], and checks (where a receiver can tell)
    /// that the Commit had an UpdatePath exactly if `path`.
    pub fn deliver_commit_with_path(&mut self, from: usize, commit: &[u8], path: bool) {
        self.deliver_commit(from, commit);
        for i in self.active() {
            if i != from
                && let Some(had) = self.members[i].last_commit_had_path()
            {
                assert_eq!(had, path, "{}: path in the Commit of {}", self.members[i].name(), self.members[from].name());
            }
        }
    }

    /// Delivers a proposal from `from` and checks that all kept it.
    pub fn deliver_proposal(&mut self, from: usize, proposal: &[u8]) {
        self.check_wire_format(proposal);
        for (i, e) in self.deliver(from, proposal) {
            assert_eq!(e, Event::Proposal, "{}: expected a proposal", self.members[i].name());
        }
    }

    /// `joiner` joins from `welcome` (with the tree from `adder` out of
    /// band if its Welcomes do not carry it) and becomes an active member.
    pub fn join(&mut self, mut joiner: Box<dyn Party>, adder: usize, welcome: &[u8]) -> usize {
        let tree = (!self.members[adder].tree_in_welcome()).then(|| self.members[adder].ratchet_tree());
        joiner.join(welcome, tree.as_deref());
        self.members.push(joiner);
        self.active.push(true);
        self.members.len() - 1
    }

    /// `joiner` joins by external commit from a GroupInfo of `publisher`
    /// (with the ratchet tree extension if `tree_in_group_info`, else the
    /// tree out of band); every member processes the Commit and all agree.
    pub fn join_external(&mut self, mut joiner: Box<dyn Party>, publisher: usize, tree_in_group_info: bool) -> usize {
        let gi = self.members[publisher].group_info(tree_in_group_info);
        let tree = (!tree_in_group_info).then(|| self.members[publisher].ratchet_tree());
        let commit = joiner.join_external(&gi, tree.as_deref());
        // An external commit is always a PublicMessage (§12.4.3.2) with a path.
        assert!(!is_private_message(&commit), "an external commit must be a PublicMessage");
        self.members.push(joiner);
        self.active.push(true);
        let j = self.members.len() - 1;
        self.deliver_commit_with_path(j, &commit, true);
        self.agree();
        j
    }

    /// `adder` adds `joiner` in a Commit (with a path if `path`), everyone
    /// processes it, the joiner joins.
    pub fn add(&mut self, adder: usize, mut joiner: Box<dyn Party>, path: bool) -> usize {
        let kp = joiner.key_package();
        let (commit, welcome) = self.members[adder].add(&[kp], path);
        self.deliver_commit_with_path(adder, &commit, path);
        let j = self.join(joiner, adder, &welcome);
        self.agree();
        j
    }

    /// `adder` adds all `joiners` in one Commit; everyone processes it, the
    /// joiners join from the one Welcome.
    pub fn add_many(&mut self, adder: usize, mut joiners: Vec<Box<dyn Party>>, path: bool) -> Vec<usize> {
        let kps: Vec<Vec<u8>> = joiners.iter_mut().map(|j| j.key_package()).collect();
        let (commit, welcome) = self.members[adder].add(&kps, path);
        self.deliver_commit_with_path(adder, &commit, path);
        let idx = joiners.into_iter().map(|j| self.join(j, adder, &welcome)).collect();
        self.agree();
        idx
    }

    /// `remover` removes all `targets` in one Commit; everyone processes it.
    pub fn remove_many(&mut self, remover: usize, targets: &[usize]) {
        let leaves: Vec<u32> = targets.iter().map(|t| self.leaf_of(remover, *t)).collect();
        let commit = self.members[remover].remove(&leaves);
        self.deliver_commit_with_path(remover, &commit, true);
        for t in targets {
            assert!(!self.active[*t], "{} was not removed", self.members[*t].name());
        }
        self.agree();
    }

    /// `remover` removes `target`; everyone processes it.
    pub fn remove(&mut self, remover: usize, target: usize) {
        let leaf = self.leaf_of(remover, target);
        let commit = self.members[remover].remove(&[leaf]);
        self.deliver_commit_with_path(remover, &commit, true);
        assert!(!self.active[target], "{} was not removed", self.members[target].name());
        self.agree();
    }

    /// `who` sends a full update (empty Commit with a path).
    pub fn update(&mut self, who: usize) {
        let commit = self.members[who].update();
        self.deliver_commit_with_path(who, &commit, true);
        self.agree();
    }

    /// `sender` sends application data; everyone else reads it.
    pub fn message(&mut self, sender: usize, data: &[u8]) {
        let aad = format!("from {}", self.members[sender].name()).into_bytes();
        let msg = self.members[sender].send(data, &aad);
        assert!(is_private_message(&msg), "application data must be a PrivateMessage");
        for (i, e) in self.deliver(sender, &msg) {
            assert_eq!(
                e,
                Event::Application(data.to_vec(), aad.clone()),
                "{} reading {}",
                self.members[i].name(),
                self.members[sender].name()
            );
        }
    }

    /// Sets every member's handshake wire format.
    pub fn set_private_handshake(&mut self, on: bool) {
        for m in &mut self.members {
            m.set_private_handshake(on);
        }
        self.expect_private = Some(on);
    }

    /// All active members agree on the epoch, its authenticator and an exporter.
    pub fn agree(&self) {
        let members: Vec<&dyn Party> = self.active().into_iter().map(|i| &*self.members[i]).collect();
        agree(&members);
    }
}

fn ours(name: &str, suite: CipherSuite) -> Box<dyn Party> {
    let seed = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    Box::new(Ours::new(name, suite, seed ^ u64::from(suite.to_u16())))
}

/// The anchor creates the group and adds a member of ours from our
/// KeyPackage; we join from its Welcome (with the tree out of band when
/// `tree_in_welcome` is false); messages flow both ways.
pub fn anchor_creates_ours_joins(anchor: Factory<'_>, suite: CipherSuite, tree_in_welcome: bool) {
    let mut a = anchor("anchor-1");
    a.set_tree_in_welcome(tree_in_welcome);
    let mut net = Net::new(a);
    let o = net.add(0, ours("ours-1", suite), false);
    net.message(0, b"hello from the anchor");
    net.message(o, b"hello from ours");
    net.agree();
}

/// We create the group and add the anchor's member from its KeyPackage; it
/// joins from our Welcome (tree in the Welcome or out of band).
pub fn ours_creates_anchor_joins(anchor: Factory<'_>, suite: CipherSuite, tree_in_welcome: bool) {
    let mut o = ours("ours-1", suite);
    o.set_tree_in_welcome(tree_in_welcome);
    let mut net = Net::new(o);
    let a = net.add(0, anchor("anchor-1"), false);
    net.message(0, b"hello from ours");
    net.message(a, b"hello from the anchor");
}

/// Four members, two of each library, each added by a different member:
/// the anchor creates and adds ours-1 (no path), ours-1 adds anchor-2 with a
/// path, anchor-2 adds ours-2 with a path.
pub fn mixed_four(anchor: Factory<'_>, suite: CipherSuite) -> Net {
    let mut net = Net::new(anchor("anchor-1"));
    let o1 = net.add(0, ours("ours-1", suite), false);
    let a2 = net.add(o1, anchor("anchor-2"), true);
    net.add(a2, ours("ours-2", suite), true);
    net
}

/// Commits with a path that add a third (and fourth) member, by each side,
/// processed by the other; both with the tree in the Welcome and out of band.
pub fn add_commit_with_path_each_way(anchor: Factory<'_>, suite: CipherSuite) {
    let mut net = Net::new(anchor("anchor-1"));
    let o1 = net.add(0, ours("ours-1", suite), true);
    // The anchor adds a third member (ours) with a path; we process it.
    net.add(0, ours("ours-2", suite), true);
    // We add a fourth (the anchor's) with a path; the anchor processes it.
    net.add(o1, anchor("anchor-2"), true);
    // And without a path, both ways.
    net.add(o1, anchor("anchor-3"), false);
    net.add(0, ours("ours-3", suite), false);
    assert_eq!(net.members[0].member_count(), 6);
}

/// Empty Commits with a path (full updates) by every member in turn.
pub fn update_commit_each_way(anchor: Factory<'_>, suite: CipherSuite) {
    let mut net = mixed_four(anchor, suite);
    for who in 0..net.members.len() {
        net.update(who);
    }
    net.update(1);
    net.update(0);
}

/// Removes by each side of the other side's members (and of its own).
pub fn remove_commit_each_way(anchor: Factory<'_>, suite: CipherSuite) {
    let mut net = mixed_four(anchor, suite);
    let (a1, o1, a2, o2) = (net.idx("anchor-1"), net.idx("ours-1"), net.idx("anchor-2"), net.idx("ours-2"));
    net.remove(a1, o2); // anchor removes ours
    net.remove(o1, a2); // ours removes the anchor's
    net.message(a1, b"after the removes");
    net.message(o1, b"after the removes, too");
    // Re-add to a blank leaf, then remove the other way round.
    let o3 = net.add(a1, ours("ours-3", suite), true);
    let a3 = net.add(o1, anchor("anchor-3"), true);
    net.remove(o3, a3);
    net.remove(a1, o3);
}

/// A proposal sent by one side, committed by reference by the other.
pub fn proposals_by_reference_each_way(anchor: Factory<'_>, suite: CipherSuite) {
    let mut net = mixed_four(anchor, suite);
    let (a1, o1, a2, o2) = (net.idx("anchor-1"), net.idx("ours-1"), net.idx("anchor-2"), net.idx("ours-2"));

    // The anchor proposes adding a member of ours; we commit it.
    let mut joiner = ours("ours-3", suite);
    let kp = joiner.key_package();
    let p = net.members[a1].propose_add(&kp);
    net.deliver_proposal(a1, &p);
    let (commit, welcome) = net.members[o1].commit_pending();
    net.deliver_commit(o1, &commit);
    net.join(joiner, o1, &welcome.expect("a Welcome"));
    net.agree();

    // We propose adding an anchor member; the anchor commits it.
    let mut joiner = anchor("anchor-3");
    let kp = joiner.key_package();
    let p = net.members[o2].propose_add(&kp);
    net.deliver_proposal(o2, &p);
    let (commit, welcome) = net.members[a2].commit_pending();
    net.deliver_commit(a2, &commit);
    net.join(joiner, a2, &welcome.expect("a Welcome"));
    net.agree();

    // We propose removing an anchor member; another anchor member commits.
    let a3 = net.idx("anchor-3");
    let leaf = net.leaf_of(o1, a3);
    let p = net.members[o1].propose_remove(leaf);
    net.deliver_proposal(o1, &p);
    let (commit, _) = net.members[a1].commit_pending();
    net.deliver_commit(a1, &commit);
    assert!(!net.is_active(a3));
    net.agree();

    // The anchor proposes removing a member of ours; we commit.
    let o3 = net.idx("ours-3");
    let leaf = net.leaf_of(a2, o3);
    let p = net.members[a2].propose_remove(leaf);
    net.deliver_proposal(a2, &p);
    let (commit, _) = net.members[o2].commit_pending();
    net.deliver_commit(o2, &commit);
    assert!(!net.is_active(o3));
    net.agree();

    // The anchor proposes an update of its leaf; we commit it.
    let p = net.members[a1].propose_update().expect("the anchor sends Update proposals");
    net.deliver_proposal(a1, &p);
    let (commit, _) = net.members[o1].commit_pending();
    net.deliver_commit(o1, &commit);
    net.agree();

    // Two proposals from both sides in one epoch, committed together by the anchor.
    let leaf = net.leaf_of(o1, o2);
    let p1 = net.members[o1].propose_remove(leaf);
    net.deliver_proposal(o1, &p1);
    let p2 = net.members[a1].propose_update().expect("the anchor sends Update proposals");
    net.deliver_proposal(a1, &p2);
    let (commit, _) = net.members[a2].commit_pending();
    net.deliver_commit(a2, &commit);
    assert!(!net.is_active(o2));
    net.agree();

    // We propose an update of our leaf; the anchor commits it; our next
    // path and messages use the new key.
    let p = net.members[o1].propose_update().expect("ours sends Update proposals");
    net.deliver_proposal(o1, &p);
    let (commit, _) = net.members[a1].commit_pending();
    net.deliver_commit(a1, &commit);
    net.agree();
    net.update(o1);
    net.message(o1, b"after our Update proposal");
    // Updates from both sides in one Commit by the other anchor member.
    let p1 = net.members[o1].propose_update().expect("ours sends Update proposals");
    net.deliver_proposal(o1, &p1);
    let p2 = net.members[a1].propose_update().expect("the anchor sends Update proposals");
    net.deliver_proposal(a1, &p2);
    let (commit, _) = net.members[a2].commit_pending();
    net.deliver_commit(a2, &commit);
    net.agree();
    net.message(a2, b"after two Update proposals");
}

/// A larger tree: Commits adding several members at once (no path, so
/// parent nodes collect unmerged leaves), updates whose paths encrypt to
/// resolutions holding unmerged leaves and blanks, removes of several
/// members at once, and removes of the rightmost leaves (the tree shrinks).
pub fn larger_tree_each_way(anchor: Factory<'_>, suite: CipherSuite) {
    let mut net = Net::new(anchor("anchor-1"));
    let batch: Vec<Box<dyn Party>> = vec![
        anchor("anchor-2"),
        ours("ours-1", suite),
        anchor("anchor-3"),
        ours("ours-2", suite),
        anchor("anchor-4"),
        ours("ours-3", suite),
    ];
    let first = net.add_many(0, batch, false);
    let (o1, o2) = (first[1], first[3]);
    net.update(o1);
    let batch: Vec<Box<dyn Party>> =
        vec![anchor("anchor-5"), ours("ours-4", suite), anchor("anchor-6"), ours("ours-5", suite)];
    let second = net.add_many(o2, batch, false);
    let (a5, o4, a6, o5) = (second[0], second[1], second[2], second[3]);
    // Paths over parents with unmerged leaves, by each side.
    net.update(a5);
    net.update(o4);
    net.update(first[4]);
    // Ours adds several of each in one Commit, with a path.
    let batch: Vec<Box<dyn Party>> = vec![anchor("anchor-7"), ours("ours-6", suite)];
    let third = net.add_many(o1, batch, true);
    for s in net.active() {
        let data = format!("hello from {}", net.members[s].name());
        net.message(s, data.as_bytes());
    }
    // Several removes per Commit, each way; then the rightmost leaves go.
    net.remove_many(0, &[o5, first[2]]);
    net.remove_many(o1, &[a6, first[5]]);
    net.remove_many(o2, &[third[0], third[1]]);
    net.remove(a5, o4);
    net.update(0);
    net.update(o1);
    let n = net.active().len();
    assert_eq!(net.members[0].member_count(), n);
}

/// Adds and Removes by value in one Commit, by each side.
pub fn add_and_remove_in_one_commit_each_way(anchor: Factory<'_>, suite: CipherSuite) {
    let mut net = mixed_four(anchor, suite);
    let (a1, o1, a2, o2) = (net.idx("anchor-1"), net.idx("ours-1"), net.idx("anchor-2"), net.idx("ours-2"));
    for (committer, target, joiners) in [
        (o1, a2, vec![anchor("anchor-3"), ours("ours-3", suite)]),
        (a1, o2, vec![ours("ours-4", suite), anchor("anchor-4")]),
    ] {
        let mut joiners = joiners;
        let kps: Vec<Vec<u8>> = joiners.iter_mut().map(|j| j.key_package()).collect();
        let leaf = net.leaf_of(committer, target);
        let (commit, welcome) = net.members[committer].add_and_remove(&kps, &[leaf]);
        net.deliver_commit(committer, &commit);
        assert!(!net.is_active(target));
        let welcome = welcome.expect("a Welcome");
        for j in joiners {
            net.join(j, committer, &welcome);
        }
        net.agree();
    }
}

/// External PSKs (RFC 9420 §8.4): proposed by one side and committed by the
/// other, and committed by value, each way; two PSKs in one epoch; one PSK
/// twice with fresh nonces, in a Commit and a Welcome (the interop bug this
/// found in ours: we took those for duplicates).
pub fn external_psk_each_way(anchor: Factory<'_>, suite: CipherSuite) {
    let mut net = mixed_four(anchor, suite);
    let (a1, o1, a2, o2) = (net.idx("anchor-1"), net.idx("ours-1"), net.idx("anchor-2"), net.idx("ours-2"));
    for m in &mut net.members {
        m.register_external_psk(b"psk-one", &[0x11; 32]);
        m.register_external_psk(b"psk-two", b"a second, longer external pre-shared key");
    }
    // By reference: the anchor proposes, we commit; we propose, the anchor commits.
    let p = net.members[a1].propose_external_psk(b"psk-one");
    net.deliver_proposal(a1, &p);
    let (commit, _) = net.members[o1].commit_pending();
    net.deliver_commit(o1, &commit);
    net.agree();
    let p = net.members[o2].propose_external_psk(b"psk-two");
    net.deliver_proposal(o2, &p);
    let (commit, _) = net.members[a2].commit_pending();
    net.deliver_commit(a2, &commit);
    net.agree();
    // By value, each way.
    let (commit, _) = net.members[o1].commit_external_psk(b"psk-two");
    net.deliver_commit(o1, &commit);
    net.agree();
    let (commit, _) = net.members[a1].commit_external_psk(b"psk-one");
    net.deliver_commit(a1, &commit);
    net.agree();
    // Two PSKs in one Commit: one proposed by the anchor, one by value by us.
    let p = net.members[a2].propose_external_psk(b"psk-one");
    net.deliver_proposal(a2, &p);
    let (commit, _) = net.members[o2].commit_external_psk(b"psk-two");
    net.deliver_commit(o2, &commit);
    net.agree();

    // One PSK twice in a Commit (fresh nonces: two PreSharedKeyIDs, §12.2),
    // with an Add, so the Welcome lists it twice too; each way.
    let mut joiner = ours("ours-3", suite);
    joiner.register_external_psk(b"psk-one", &[0x11; 32]);
    joiner.register_external_psk(b"psk-two", b"a second, longer external pre-shared key");
    let kp = joiner.key_package();
    // (By reference only: OpenMLS 0.9.2 as a committer gets the PSK secret
    // wrong when a PSK by value repeats one by reference; see
    // `tests/openmls.rs`.)
    let p = net.members[a1].propose_external_psk(b"psk-one");
    net.deliver_proposal(a1, &p);
    let p = net.members[o1].propose_external_psk(b"psk-one");
    net.deliver_proposal(o1, &p);
    let p = net.members[o1].propose_add(&kp);
    net.deliver_proposal(o1, &p);
    let (commit, welcome) = net.members[a2].commit_pending();
    net.deliver_commit(a2, &commit);
    net.join(joiner, a2, &welcome.expect("a Welcome"));
    net.agree();
    let mut joiner = anchor("anchor-3");
    joiner.register_external_psk(b"psk-one", &[0x11; 32]);
    joiner.register_external_psk(b"psk-two", b"a second, longer external pre-shared key");
    let kp = joiner.key_package();
    let p = net.members[o1].propose_external_psk(b"psk-two");
    net.deliver_proposal(o1, &p);
    let p = net.members[a1].propose_external_psk(b"psk-two");
    net.deliver_proposal(a1, &p);
    let p = net.members[a1].propose_add(&kp);
    net.deliver_proposal(a1, &p);
    let (commit, welcome) = net.members[o2].commit_external_psk(b"psk-two");
    net.deliver_commit(o2, &commit);
    net.join(joiner, o2, &welcome.expect("a Welcome"));
    net.agree();
}

/// `Extension extensions<V>` holding one `required_capabilities` extension
/// (RFC 9420 §11.1) that requires basic credentials.
const REQUIRE_BASIC: [u8; 9] = [8, 0x00, 0x03, 5, 0, 0, 2, 0x00, 0x01];
/// An empty `Extension extensions<V>`.
const NO_EXTENSIONS: [u8; 1] = [0];

/// GroupContextExtensions committed by value, each way; members added
/// afterwards join a group with extensions in its GroupContext.
pub fn group_context_extensions_each_way(anchor: Factory<'_>, suite: CipherSuite) {
    let mut net = mixed_four(anchor, suite);
    let (a1, o1) = (net.idx("anchor-1"), net.idx("ours-1"));
    let commit = net.members[a1].commit_group_context_extensions(&REQUIRE_BASIC);
    net.deliver_commit_with_path(a1, &commit, true);
    net.agree();
    net.add(o1, anchor("anchor-3"), false);
    net.add(a1, ours("ours-3", suite), false);
    let commit = net.members[o1].commit_group_context_extensions(&NO_EXTENSIONS);
    net.deliver_commit_with_path(o1, &commit, true);
    net.agree();
    let commit = net.members[o1].commit_group_context_extensions(&REQUIRE_BASIC);
    net.deliver_commit_with_path(o1, &commit, true);
    net.agree();
    net.add(a1, ours("ours-4", suite), true);
    net.add(o1, anchor("anchor-4"), true);
    net.update(net.idx("anchor-4"));
}

/// A KeyPackage of ours carrying GREASE extensions (in the leaf and the
/// KeyPackage, listed in the leaf's capabilities, RFC 9420 §13.5) is added
/// by the anchor; we join and messages flow.
pub fn grease_key_package_of_ours(anchor: Factory<'_>, suite: CipherSuite) {
    let mut net = Net::new(anchor("anchor-1"));
    let mut o = Ours::new("ours-1", suite, 99);
    o.grease_extensions = true;
    let o = net.add(0, Box::new(o), true);
    net.update(o);
    net.message(0, b"grease");
    net.message(o, b"grease, too");
}

/// Application messages sent just before a Commit, read after it (in the
/// previous epoch's keys), each way.
pub fn late_application_message_each_way(anchor: Factory<'_>, suite: CipherSuite) {
    let mut net = mixed_four(anchor, suite);
    let (a1, o1, a2, o2) = (net.idx("anchor-1"), net.idx("ours-1"), net.idx("anchor-2"), net.idx("ours-2"));
    for (sender, committer) in [(a1, o1), (o2, a2), (o1, a1), (a2, o2)] {
        let msg = net.members[sender].send(b"sent before the commit", b"late");
        net.update(committer);
        for r in net.active() {
            if r != sender {
                assert_eq!(
                    net.members[r].process(&msg),
                    Event::Application(b"sent before the commit".to_vec(), b"late".to_vec()),
                    "{} reading a late message of {}",
                    net.members[r].name(),
                    net.members[sender].name()
                );
            }
        }
    }
}

/// Application messages both ways, in order and out of order.
pub fn application_messages_each_way(anchor: Factory<'_>, suite: CipherSuite) {
    let mut net = mixed_four(anchor, suite);
    for round in 0..3 {
        for s in 0..net.members.len() {
            let data = format!("round {round} from {}", net.members[s].name());
            net.message(s, data.as_bytes());
        }
    }
    // Out of order: two messages from each sender, read newest first.
    for s in 0..net.members.len() {
        let m1 = net.members[s].send(b"first", b"");
        let m2 = net.members[s].send(b"second", b"2");
        for r in 0..net.members.len() {
            if r != s {
                assert_eq!(net.members[r].process(&m2), Event::Application(b"second".to_vec(), b"2".to_vec()));
                assert_eq!(net.members[r].process(&m1), Event::Application(b"first".to_vec(), Vec::new()));
            }
        }
    }
    // Long messages.
    let big = vec![0x5a; 10_000];
    net.message(0, &big);
    net.message(1, &big);
    net.agree();
}

/// Every handshake as PrivateMessage: adds, updates, removes and proposals
/// by reference, each way.
pub fn private_handshake_each_way(anchor: Factory<'_>, suite: CipherSuite) {
    let mut first = anchor("anchor-1");
    first.set_private_handshake(true);
    let mut net = Net::new(first);
    net.expect_private = Some(true);
    let mut o1 = ours("ours-1", suite);
    o1.set_private_handshake(true);
    let o1 = net.add(0, o1, true);
    let mut a2 = anchor("anchor-2");
    a2.set_private_handshake(true);
    let a2 = net.add(o1, a2, true);
    let mut o2 = ours("ours-2", suite);
    o2.set_private_handshake(true);
    let o2 = net.add(a2, o2, true);
    net.set_private_handshake(true);
    for who in [0, o1, a2, o2] {
        net.update(who);
    }
    // Proposals by reference, each way.
    let leaf = net.leaf_of(o1, o2);
    let p = net.members[0].propose_remove(leaf);
    net.deliver_proposal(0, &p);
    let (commit, _) = net.members[o1].commit_pending();
    net.deliver_commit(o1, &commit);
    net.agree();
    let leaf = net.leaf_of(o1, a2);
    let p = net.members[o1].propose_remove(leaf);
    net.deliver_proposal(o1, &p);
    let (commit, _) = net.members[0].commit_pending();
    net.deliver_commit(0, &commit);
    net.agree();
    let p = net.members[0].propose_update().expect("anchor Update proposal");
    net.deliver_proposal(0, &p);
    let (commit, _) = net.members[o1].commit_pending();
    net.deliver_commit(o1, &commit);
    net.agree();
    net.message(0, b"still private");
    net.message(o1, b"still private, too");
}

/// External commits (RFC 9420 §12.4.3.2), each way: an anchor member joins
/// our group from our GroupInfo, and a member of ours joins the anchor's
/// group from its GroupInfo (each with the tree in the GroupInfo, or out of
/// band when `tree_in_group_info` is false). Everyone processes each
/// external Commit; application messages flow both ways after each.
pub fn external_commit_each_way(anchor: Factory<'_>, suite: CipherSuite, tree_in_group_info: bool) {
    // Our group: ours-1 creates, adds anchor-1; anchor-2 joins externally
    // from our GroupInfo.
    let mut net = Net::new(ours("ours-1", suite));
    let a1 = net.add(0, anchor("anchor-1"), false);
    let a2 = net.join_external(anchor("anchor-2"), 0, tree_in_group_info);
    net.message(a2, b"an anchor let itself in");
    net.message(0, b"welcome, says ours");
    net.message(a1, b"welcome, says the other anchor");
    // A member of ours then joins from the anchor's GroupInfo.
    let o2 = net.join_external(ours("ours-2", suite), a1, tree_in_group_info);
    net.message(o2, b"ours let itself in");
    net.message(a2, b"welcome, says the anchor");
    // The group goes on: a commit by the new members each way.
    net.update(o2);
    net.update(a2);
    assert_eq!(net.members[0].member_count(), 4);

    // The anchor's group: anchor creates, ours joins by external commit.
    let mut net = Net::new(anchor("anchor-1"));
    let o1 = net.join_external(ours("ours-1", suite), 0, tree_in_group_info);
    net.message(o1, b"hello from ours");
    net.message(0, b"hello from the anchor");
    // And another anchor member joins from our GroupInfo in that group.
    let a2 = net.join_external(anchor("anchor-2"), o1, tree_in_group_info);
    net.message(a2, b"hello from anchor-2");
    net.update(o1);
    net.agree();
}

/// The `Extension extensions<V>` list holding one `external_senders`
/// extension (type 5) of `senders` (`ExternalSender` encodings).
fn external_senders_extension(senders: &[Vec<u8>]) -> Vec<u8> {
    fn varint(n: usize, out: &mut Vec<u8>) {
        match n {
            0..=63 => out.push(n as u8),
            64..=16383 => out.extend_from_slice(&(0x4000 | n as u16).to_be_bytes()),
            _ => out.extend_from_slice(&(0x8000_0000 | n as u32).to_be_bytes()),
        }
    }
    let body: Vec<u8> = senders.concat();
    let mut list = Vec::new();
    varint(body.len(), &mut list);
    list.extend_from_slice(&body);
    let mut ext = vec![0x00, 0x05];
    varint(list.len(), &mut ext);
    ext.extend_from_slice(&list);
    let mut out = Vec::new();
    varint(ext.len(), &mut out);
    out.extend_from_slice(&ext);
    out
}

/// External-sender proposals (RFC 9420 §12.1.8.1), each way: the group
/// (two members of each library) lists an external sender of ours (index
/// 0) and one of the anchor's (index 1) in `external_senders`. Ours
/// proposes adding an anchor member and removing another, which the anchor
/// commits by reference; the anchor's proposes adding a member of ours and
/// removing another, which we commit. Every member processes every
/// proposal and Commit; joiners join from the Welcome.
pub fn external_sender_proposals_each_way(anchor: Factory<'_>, suite: CipherSuite, theirs: &mut dyn crate::ExternalParty) {
    let mut ours_ext = crate::OursExternal::new("external-ours", suite, 0xe1);
    let mut net = mixed_four(anchor, suite);
    let (a1, o1, a2, o2) = (net.idx("anchor-1"), net.idx("ours-1"), net.idx("anchor-2"), net.idx("ours-2"));
    let ext = external_senders_extension(&[crate::ExternalParty::external_sender(&ours_ext), theirs.external_sender()]);
    let commit = net.members[o1].commit_group_context_extensions(&ext);
    net.deliver_commit_with_path(o1, &commit, true);
    net.agree();

    // Ours proposes an Add and a Remove; the anchor commits them.
    let mut a3 = anchor("anchor-3");
    let kp = a3.key_package();
    let gi = net.members[o1].group_info(true);
    let p = crate::ExternalParty::propose_add(&mut ours_ext, &gi, 0, &kp);
    assert!(!is_private_message(&p), "an external proposal is a PublicMessage");
    net.deliver_proposal(usize::MAX, &p);
    let leaf = net.leaf_of(o1, a2);
    let p = crate::ExternalParty::propose_remove(&mut ours_ext, &gi, 0, leaf);
    net.deliver_proposal(usize::MAX, &p);
    let (commit, welcome) = net.members[a1].commit_pending();
    net.deliver_commit(a1, &commit);
    assert!(!net.is_active(a2), "anchor-2 was not removed");
    let a3 = net.join(a3, a1, &welcome.expect("a Welcome for anchor-3"));
    net.agree();
    net.message(a3, b"added by an external sender of ours");

    // The anchor's external sender proposes an Add and a Remove; we commit.
    let mut o3 = ours("ours-3", suite);
    let kp = o3.key_package();
    let gi = net.members[a1].group_info(true);
    let p = theirs.propose_add(&gi, 1, &kp);
    assert!(!is_private_message(&p), "an external proposal is a PublicMessage");
    net.deliver_proposal(usize::MAX, &p);
    let leaf = net.leaf_of(a1, o2);
    let p = theirs.propose_remove(&gi, 1, leaf);
    net.deliver_proposal(usize::MAX, &p);
    let (commit, welcome) = net.members[o1].commit_pending();
    net.deliver_commit(o1, &commit);
    assert!(!net.is_active(o2), "ours-2 was not removed");
    let o3 = net.join(o3, o1, &welcome.expect("a Welcome for ours-3"));
    net.agree();
    net.message(o3, b"added by the anchor's external sender");
    net.message(a3, b"hello to all");
    assert_eq!(net.members[a1].member_count(), 4);
}
