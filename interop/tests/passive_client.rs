//! Passive-client scenarios (FORMAT.md "Passive Client Scenarios") made by
//! the anchors, for what the official files lack: external joins and resync,
//! ReInit and subgroup branching. The passive client is ours in name only:
//! its KeyPackage is generated with mls-nostd (so that its private keys are
//! known in the format's encodings: X25519 private keys and the Ed25519 seed,
//! or P-256 scalars, 32 bytes each), and the anchors add it; every message of the scenario is
//! made by mls-rs 0.57.0 and OpenMLS 0.9.2 members, which agree on every
//! epoch before it is written down. The cases go to files in a temporary
//! directory and the conformance runner (`mls_tests::cli::run`, what the
//! `mls-vectors` binary runs) checks them, with the expected count per kind
//! and cipher suite.
//!
//! ReInit and branching carry the client into a new group, joined with a
//! resumption PSK of the old one: the official format has no place for that,
//! so the cases use its extension `follow_on_groups` (and `time`, the
//! processing time that the anchors' fresh KeyPackage lifetimes need),
//! described in `tests/src/vectors/passive_client.rs` and the README.
//!
//! OpenMLS 0.9.2 has no API for ReInit or branching; it takes part in the
//! external-join cases only.

use crate::mls_rs_party;
use crate::openmls_party;

use mls_interop::{Event, Party, SUITES, SeededRng, agree, now, reinit_suite};
use mls_nostd::credential::Credential;
use mls_nostd::crypto::CipherSuite;
use mls_nostd::crypto::signature::SignaturePrivateKey;
use mls_nostd::extensions::{Extensions, U16List};
use mls_nostd::key_package::{KeyPackage, KeyPackageParams};
use mls_nostd::leaf_node::Lifetime;
use mls_rs_party::MlsRsParty;
use openmls_party::OpenMlsParty;
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};

/// A private-use extension type for mls-rs members of groups with OpenMLS
/// members (OpenMLS rejects GREASE types in extensions; see mls_rs_party.rs).
const PRIVATE_EXTENSION: u16 = 0xff3a;

/// The passive client's KeyPackage (`MLSMessage`) and its private keys, as
/// the format's fields.
struct PassiveKeys {
    key_package: Vec<u8>,
    fields: Map<String, Value>,
}

/// A KeyPackage of the passive client for `suite`: its signature key is the
/// same in every group (Ed25519 seed or P-256 scalar `[0x5a; 32]`), its HPKE keys come from `seed`.
fn passive_keys(suite: CipherSuite, seed: u64) -> PassiveKeys {
    let signer = SignaturePrivateKey::from_slice(suite, &[0x5a; 32]).expect("an Ed25519 seed or P-256 scalar");
    let t = now();
    let params = KeyPackageParams {
        suite,
        credential: Credential::Basic { identity: b"passive" },
        lifetime: Lifetime { not_before: t - 3600, not_after: t + 30 * 86_400 },
        leaf_extensions: Extensions::default(),
        extensions: Extensions::default(),
        supported_extensions: U16List::default(),
        supported_proposals: U16List::default(),
    };
    let mut out = vec![0u8; 4096];
    let mut rng = SeededRng(seed);
    let (kp, keys) = KeyPackage::generate(&params, &signer, &mut rng, &mut out).expect("KeyPackage");
    // MLSMessage header: version mls10, wire format mls_key_package.
    let mut key_package = vec![0, 1, 0, 5];
    key_package.extend_from_slice(kp);
    let mut fields = Map::new();
    fields.insert("key_package".into(), hex::encode(&key_package).into());
    fields.insert("signature_priv".into(), hex::encode(signer.as_bytes()).into());
    fields.insert("encryption_priv".into(), hex::encode(keys.encryption_key.as_bytes()).into());
    fields.insert("init_priv".into(), hex::encode(keys.init_key.as_bytes()).into());
    PassiveKeys { key_package, fields }
}

/// One group the passive client follows: its Welcome, then epochs. Every
/// message goes to every other member listed, who must accept it; after
/// each Commit the members agree and the committer's epoch authenticator is
/// written down.
struct Followed {
    fields: Map<String, Value>,
    epochs: Vec<Value>,
    proposals: Vec<Value>,
}

impl Followed {
    /// The group the passive client joins with `keys` from `welcome` (the
    /// tree out of band if given); `by` made the Welcome.
    fn new(keys: &PassiveKeys, welcome: &[u8], ratchet_tree: Option<&[u8]>, by: &dyn Party) -> Self {
        let mut fields = keys.fields.clone();
        fields.insert("welcome".into(), hex::encode(welcome).into());
        fields.insert("ratchet_tree".into(), ratchet_tree.map_or(Value::Null, |t| hex::encode(t).into()));
        fields.insert("initial_epoch_authenticator".into(), hex::encode(by.epoch_authenticator()).into());
        Self { fields, epochs: Vec::new(), proposals: Vec::new() }
    }

    /// A proposal that `others` receive and keep for a Commit by reference.
    fn proposal(&mut self, msg: Vec<u8>, others: &mut [&mut dyn Party]) {
        for o in others.iter_mut() {
            assert_eq!(o.process(&msg), Event::Proposal, "{} ({})", o.name(), o.library());
        }
        self.proposals.push(hex::encode(&msg).into());
    }

    /// A Commit by `sender` (already merged there), received by `others`.
    fn commit(&mut self, msg: Vec<u8>, sender: &dyn Party, others: &mut [&mut dyn Party]) {
        for o in others.iter_mut() {
            assert_eq!(o.process(&msg), Event::Commit { removed_us: false }, "{} ({})", o.name(), o.library());
        }
        let mut all: Vec<&dyn Party> = vec![sender];
        all.extend(others.iter().map(|o| &**o));
        agree(&all);
        self.epochs.push(json!({
            "proposals": std::mem::take(&mut self.proposals),
            "commit": hex::encode(&msg),
            "epoch_authenticator": hex::encode(sender.epoch_authenticator()),
        }));
    }

    fn into_json(mut self) -> Map<String, Value> {
        assert!(self.proposals.is_empty(), "proposals never committed");
        self.fields.insert("epochs".into(), self.epochs.into());
        self.fields
    }
}

/// A whole case: the first group, then its follow-on groups.
fn case(suite: u16, first: Followed, follow_ons: Vec<Followed>) -> Value {
    let mut c = Map::new();
    c.insert("cipher_suite".into(), suite.into());
    c.insert("external_psks".into(), json!([]));
    c.extend(first.into_json());
    if !follow_ons.is_empty() {
        c.insert("follow_on_groups".into(), follow_ons.into_iter().map(|f| Value::Object(f.into_json())).collect());
    }
    // The anchors' KeyPackages begin their lifetimes when made.
    c.insert("time".into(), now().into());
    Value::Object(c)
}

/// External joins (RFC 9420 §12.4.3.2) while the passive client is a
/// member: an mls-rs and an OpenMLS member join by external Commit (the tree
/// in the GroupInfo, then out of band), an mls-rs member resyncs (its
/// external Commit removes its old leaf), and the joiners commit (update,
/// remove, a proposal by reference, a PrivateMessage Commit).
/// `tree_in_welcome` decides where the passive client's tree comes from.
fn external_join(code: u16, suite: CipherSuite, tree_in_welcome: bool, seed: u64) -> Value {
    let mut a = MlsRsParty::with_extension("alice", code, PRIVATE_EXTENSION);
    let mut b = MlsRsParty::with_extension("bob", code, PRIVATE_EXTENSION);
    let mut c = MlsRsParty::with_extension("carol", code, PRIVATE_EXTENSION);
    let mut d = OpenMlsParty::new("dave", code);
    let p = passive_keys(suite, seed);
    a.create(b"passive-external-join");
    a.set_tree_in_welcome(tree_in_welcome);
    let kb = b.key_package();
    let (_, w) = a.add(&[kb, p.key_package.clone()], true);
    let tree = (!tree_in_welcome).then(|| a.ratchet_tree());
    b.join(&w, tree.as_deref());
    let mut f = Followed::new(&p, &w, tree.as_deref(), &a);

    // mls-rs joins from a GroupInfo with the tree.
    let gi = a.group_info(true);
    let m = c.join_external(&gi, None);
    f.commit(m, &c, &mut [&mut a, &mut b]);
    // OpenMLS joins from a GroupInfo without it, the tree out of band.
    let (gi, tree) = (b.group_info(false), b.ratchet_tree());
    let m = d.join_external(&gi, Some(&tree));
    f.commit(m, &d, &mut [&mut a, &mut b, &mut c]);
    // The OpenMLS joiner commits an update.
    let m = d.update();
    f.commit(m, &d, &mut [&mut a, &mut b, &mut c]);
    // An Update proposal of mls-rs, committed by reference by the mls-rs joiner.
    let pm = b.propose_update().expect("mls-rs proposes updates");
    f.proposal(pm, &mut [&mut a, &mut c, &mut d]);
    let (m, _) = c.commit_pending();
    f.commit(m, &c, &mut [&mut a, &mut b, &mut d]);
    // Bob resyncs from OpenMLS's GroupInfo (with the tree).
    let gi = d.group_info(true);
    let old_leaf = b.own_leaf();
    let m = b.resync(&gi);
    f.commit(m, &b, &mut [&mut a, &mut c, &mut d]);
    assert_ne!(a.leaf_of(b"bob"), None, "bob is back");
    assert_eq!(a.member_count(), 5, "bob's old leaf {old_leaf} is gone");
    // The OpenMLS joiner removes the mls-rs joiner.
    let leaf = d.leaf_of(b"carol").expect("carol");
    let m = d.remove(&[leaf]);
    for_removed(&mut c, &m);
    f.commit(m, &d, &mut [&mut a, &mut b]);
    // A PrivateMessage Commit with a path.
    a.set_private_handshake(true);
    let m = a.update();
    f.commit(m, &a, &mut [&mut b, &mut d]);
    case(code, f, Vec::new())
}

/// The removed member sees its removal.
fn for_removed(removed: &mut dyn Party, commit: &[u8]) {
    assert_eq!(removed.process(commit), Event::Commit { removed_us: true });
}

/// ReInit (RFC 9420 §11.2) twice: an mls-rs member proposes a ReInit into
/// the suite `reinit_suite(i)` (the other Ed25519 suite; suite 2 stays) and another commits it by reference; a member
/// creates the new group (its Welcome carries the `reinit` resumption PSK)
/// with new KeyPackages of the others and of the passive client; epochs go
/// on there (an update, an Add, a PrivateMessage Commit of the new member);
/// then a ReInit by value takes the group back into the first suite.
fn reinit(i: usize, seed: u64) -> Value {
    let (code, suite) = SUITES[i];
    let (new_code, new_suite) = SUITES[reinit_suite(i)];
    let mut a = MlsRsParty::new("alice", code);
    let mut b = MlsRsParty::new("bob", code);
    let p = passive_keys(suite, seed);
    a.create(b"passive-reinit-1");
    let kb = b.key_package();
    let (_, w) = a.add(&[kb, p.key_package.clone()], false);
    b.join(&w, None);
    let mut first = Followed::new(&p, &w, None, &a);
    let m = b.update();
    first.commit(m, &b, &mut [&mut a]);
    let pm = a.propose_reinit(b"passive-reinit-2", new_code);
    first.proposal(pm, &mut [&mut b]);
    let (m, _) = b.commit_pending();
    first.commit(m, &b, &mut [&mut a]);

    // The new group, in the suite of the ReInit.
    a.start_reinit();
    b.start_reinit();
    let p2 = passive_keys(new_suite, seed + 1);
    let kb = b.reinit_key_package();
    let w = a.reinit_create(&[kb, p2.key_package.clone()]);
    b.reinit_join(&w);
    agree(&[&a, &b]);
    let mut second = Followed::new(&p2, &w, None, &a);
    let m = b.update();
    second.commit(m, &b, &mut [&mut a]);
    let mut e = MlsRsParty::new("erin", new_code);
    let ke = e.key_package();
    let (m, w) = a.add(&[ke], true);
    second.commit(m, &a, &mut [&mut b]);
    e.join(&w, None);
    e.set_private_handshake(true);
    let m = e.update();
    second.commit(m, &e, &mut [&mut a, &mut b]);
    // Back into the first suite, by value.
    let m = e.commit_reinit(b"passive-reinit-3", code);
    second.commit(m, &e, &mut [&mut a, &mut b]);

    for x in [&mut a, &mut b, &mut e] {
        x.start_reinit();
    }
    let p3 = passive_keys(suite, seed + 2);
    let (ka, kb) = (a.reinit_key_package(), b.reinit_key_package());
    let w = e.reinit_create(&[ka, kb, p3.key_package.clone()]);
    a.reinit_join(&w);
    b.reinit_join(&w);
    agree(&[&a, &b, &e]);
    let mut third = Followed::new(&p3, &w, None, &e);
    let m = a.update();
    third.commit(m, &a, &mut [&mut b, &mut e]);
    case(code, first, vec![second, third])
}

/// Branching (RFC 9420 §11.3): in a group of three mls-rs members and the
/// passive client, a member branches a subgroup with one other member and
/// the passive client (its Welcome carries the `branch` resumption PSK);
/// epochs go on in the subgroup.
fn branch(code: u16, suite: CipherSuite, seed: u64) -> Value {
    let mut a = MlsRsParty::new("alice", code);
    let mut b = MlsRsParty::new("bob", code);
    let mut c = MlsRsParty::new("carol", code);
    let p = passive_keys(suite, seed);
    a.create(b"passive-branch-main");
    let (kb, kc) = (b.key_package(), c.key_package());
    let (_, w) = a.add(&[kb, kc, p.key_package.clone()], false);
    b.join(&w, None);
    c.join(&w, None);
    let mut main = Followed::new(&p, &w, None, &a);
    let m = c.update();
    main.commit(m, &c, &mut [&mut a, &mut b]);
    let m = b.update();
    main.commit(m, &b, &mut [&mut a, &mut c]);

    let p2 = passive_keys(suite, seed + 1);
    let kb = b.key_package();
    let w = a.branch(b"passive-branch-sub", &[kb, p2.key_package.clone()]);
    b.join_branch(&w);
    agree(&[&a, &b]);
    let mut sub = Followed::new(&p2, &w, None, &a);
    let m = b.update();
    sub.commit(m, &b, &mut [&mut a]);
    a.set_private_handshake(true);
    let m = a.update();
    sub.commit(m, &a, &mut [&mut b]);
    case(code, main, vec![sub])
}

/// The generated files, with how many cases each holds: external join and
/// resync (the passive client's tree in its Welcome, and out of band),
/// ReInit (into `reinit_suite` and back) and branching, per suite.
fn generate(dir: &Path) -> Vec<(PathBuf, usize)> {
    std::fs::create_dir_all(dir).expect("create the directory");
    let mut files = Vec::new();
    for (i, (code, suite)) in SUITES.into_iter().enumerate() {
        let seed = 1000 * u64::from(code);
        let kinds: [(&str, Vec<Value>); 3] = [
            ("external-join", vec![external_join(code, suite, true, seed), external_join(code, suite, false, seed + 10)]),
            ("reinit", vec![reinit(i, seed + 20)]),
            ("branch", vec![branch(code, suite, seed + 30)]),
        ];
        for (kind, cases) in kinds {
            let path = dir.join(format!("passive-client-{kind}-suite-{code}.json"));
            std::fs::write(&path, serde_json::to_string_pretty(&cases).expect("JSON")).expect("write the file");
            files.push((path, cases.len()));
        }
    }
    files
}

/// The `follow_on_groups` of a case (none if absent).
fn groups(case: &Value) -> &[Value] {
    case.get("follow_on_groups").and_then(Value::as_array).map_or(&[][..], Vec::as_slice)
}

/// Runs the conformance runner on `args`: (exit status, stdout, stderr).
fn runner(args: &[&Path]) -> (u8, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = mls_tests::cli::run(args.iter().map(|p| p.as_os_str().to_owned()), &mut out, &mut err);
    (code, String::from_utf8(out).expect("UTF-8"), String::from_utf8(err).expect("UTF-8"))
}

fn scratch(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("passive_client_cases").join(name)
}

#[test]
fn anchor_cases_pass_the_runner() {
    let dir = scratch("generated");
    let files = generate(&dir);
    println!("cases in {}", dir.display());
    let paths: Vec<&Path> = files.iter().map(|(p, _)| p.as_path()).collect();
    let (code, out, err) = runner(&paths);
    print!("{out}{err}");
    assert_eq!(code, 0, "exit status");
    // external-join, reinit, branch × suites 1, 3 and 2.
    assert_eq!(files.len(), 9);
    let lines: Vec<&str> = out.lines().collect();
    let expected: Vec<String> =
        files.iter().map(|(p, n)| format!("{}: {n} passed, 0 failed, 0 skipped", p.display())).collect();
    assert_eq!(lines, expected);

    // What the runner followed, from its per-case counters: every epoch
    // written, every follow-on group, each joined through a `reinit` or
    // `branch` PSK naming the group before it.
    for (path, _) in &files {
        let cases = mls_tests::vectors::read_file(path).expect("read back");
        let report = mls_tests::vectors::run_file(mls_tests::vectors::Kind::PassiveClient, &cases);
        let epochs: usize = cases
            .iter()
            .map(|c| c["epochs"].as_array().unwrap().len() + groups(c).iter().map(|g| g["epochs"].as_array().unwrap().len()).sum::<usize>())
            .sum();
        let follow_ons: usize = cases.iter().map(|c| groups(c).len()).sum();
        let name = path.file_name().unwrap().to_str().unwrap();
        let expected_follow_ons = if name.contains("reinit") { 2 } else if name.contains("branch") { 1 } else { 0 };
        println!("{name}: {:?}", report.stats);
        assert_eq!(follow_ons, expected_follow_ons, "{name}");
        assert_eq!(report.stats.get("epochs"), epochs, "{name}");
        assert_eq!(report.stats.get("follow_on_groups"), follow_ons, "{name}");
        assert_eq!(report.stats.get("linked_groups"), follow_ons, "{name}");
    }
}

#[test]
fn follow_on_groups_need_their_old_group() {
    let (code, suite) = SUITES[0];
    let dir = scratch("negative");
    std::fs::create_dir_all(&dir).unwrap();
    let reinit = reinit(0, 77);
    let branch = branch(code, suite, 88);

    // The new group of the ReInit alone, as a case of its own: without the
    // old group, its Welcome's reinit PSK is unknown.
    let mut alone = reinit["follow_on_groups"][0].clone();
    alone["cipher_suite"] = SUITES[reinit_suite(0)].0.into();
    alone["time"] = reinit["time"].clone();
    // The branch's subgroup joined after the ReInit's old group: the wrong
    // group for its branch PSK.
    let mut wrong_parent = reinit.clone();
    wrong_parent["follow_on_groups"] = json!([branch["follow_on_groups"][0].clone()]);
    // The last epoch authenticator of the second follow-on group changed.
    let mut corrupted = reinit.clone();
    let last = corrupted["follow_on_groups"][1]["epochs"].as_array().unwrap().len() - 1;
    corrupted["follow_on_groups"][1]["epochs"][last]["epoch_authenticator"] = "00".repeat(32).into();
    let file = dir.join("passive-client-negative.json");
    let cases = json!([reinit, alone, wrong_parent, corrupted, branch]);
    std::fs::write(&file, serde_json::to_string(&cases).unwrap()).unwrap();

    let (status, out, err) = runner(&[&file]);
    print!("{out}{err}");
    assert_eq!(status, 1);
    assert_eq!(out, format!("{}: 2 passed, 3 failed, 0 skipped\n", file.display()));
    // Without the old group (or with another), the Welcome's resumption PSK is unknown.
    assert!(err.contains("case 1 failed: join: Welcome(UnknownPsk)"), "{err}");
    assert!(err.contains("case 2 failed: follow-on group 0: join: Welcome(UnknownPsk)"), "{err}");
    assert!(err.contains(&format!("case 3 failed: follow-on group 1: epoch {last}: got ")), "{err}");
}
