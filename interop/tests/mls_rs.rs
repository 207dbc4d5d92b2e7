//! Live interoperability with mls-rs (mls-rs 0.57.0 with mls-rs-crypto-rustcrypto 0.23.0 and its in-memory storage), cipher suites 0x0001, 0x0003 and 0x0002 (P-256).
//!
//! Every scenario mixes mls-rs members with ours in one group, passes every
//! message as its `MLSMessage` encoding to every other member, and checks
//! after every step that all members agree on the epoch, the epoch
//! authenticator and an exporter output (`mls_interop::scenarios`).

use crate::mls_rs_party;

use mls_interop::scenarios::{self, Factory};
use mls_interop::{Party, SUITES};
use mls_rs_party::MlsRsParty;

fn anchor(suite: u16) -> impl Fn(&str) -> Box<dyn Party> {
    move |name| Box::new(MlsRsParty::new(name, suite))
}

/// Runs `scenario` with mls-rs members of the suite `SUITES[i]`.
fn run(i: usize, scenario: impl FnOnce(Factory<'_>, mls_nostd::crypto::CipherSuite)) {
    let (code, suite) = SUITES[i];
    println!("mls-rs, cipher suite 0x{code:04x}");
    scenario(&anchor(code), suite);
}

/// One test per scenario and suite of `SUITES` (1, 3, 2).
macro_rules! in_every_suite {
    ($($s1:ident, $s3:ident, $s2:ident => $scenario:expr;)*) => {$(
        #[test]
        fn $s1() {
            run(0, $scenario);
        }
        #[test]
        fn $s3() {
            run(1, $scenario);
        }
        #[test]
        fn $s2() {
            run(2, $scenario);
        }
    )*};
}

in_every_suite! {
    anchor_creates_tree_in_welcome_suite_1, anchor_creates_tree_in_welcome_suite_3, anchor_creates_tree_in_welcome_suite_2 =>
        |f, s| scenarios::anchor_creates_ours_joins(f, s, true);
    anchor_creates_tree_out_of_band_suite_1, anchor_creates_tree_out_of_band_suite_3, anchor_creates_tree_out_of_band_suite_2 =>
        |f, s| scenarios::anchor_creates_ours_joins(f, s, false);
    ours_creates_tree_in_welcome_suite_1, ours_creates_tree_in_welcome_suite_3, ours_creates_tree_in_welcome_suite_2 =>
        |f, s| scenarios::ours_creates_anchor_joins(f, s, true);
    ours_creates_tree_out_of_band_suite_1, ours_creates_tree_out_of_band_suite_3, ours_creates_tree_out_of_band_suite_2 =>
        |f, s| scenarios::ours_creates_anchor_joins(f, s, false);
    add_commit_with_path_each_way_suite_1, add_commit_with_path_each_way_suite_3, add_commit_with_path_each_way_suite_2 =>
        scenarios::add_commit_with_path_each_way;
    update_commit_each_way_suite_1, update_commit_each_way_suite_3, update_commit_each_way_suite_2 => scenarios::update_commit_each_way;
    remove_commit_each_way_suite_1, remove_commit_each_way_suite_3, remove_commit_each_way_suite_2 => scenarios::remove_commit_each_way;
    proposals_by_reference_each_way_suite_1, proposals_by_reference_each_way_suite_3, proposals_by_reference_each_way_suite_2 =>
        scenarios::proposals_by_reference_each_way;
    application_messages_each_way_suite_1, application_messages_each_way_suite_3, application_messages_each_way_suite_2 =>
        scenarios::application_messages_each_way;
    private_handshake_each_way_suite_1, private_handshake_each_way_suite_3, private_handshake_each_way_suite_2 =>
        scenarios::private_handshake_each_way;
    larger_tree_each_way_suite_1, larger_tree_each_way_suite_3, larger_tree_each_way_suite_2 => scenarios::larger_tree_each_way;
    add_and_remove_in_one_commit_each_way_suite_1, add_and_remove_in_one_commit_each_way_suite_3, add_and_remove_in_one_commit_each_way_suite_2 =>
        scenarios::add_and_remove_in_one_commit_each_way;
    external_psk_each_way_suite_1, external_psk_each_way_suite_3, external_psk_each_way_suite_2 => scenarios::external_psk_each_way;
    group_context_extensions_each_way_suite_1, group_context_extensions_each_way_suite_3, group_context_extensions_each_way_suite_2 =>
        scenarios::group_context_extensions_each_way;
    late_application_message_each_way_suite_1, late_application_message_each_way_suite_3, late_application_message_each_way_suite_2 =>
        scenarios::late_application_message_each_way;
    external_commit_tree_in_group_info_suite_1, external_commit_tree_in_group_info_suite_3, external_commit_tree_in_group_info_suite_2 =>
        |f, s| scenarios::external_commit_each_way(f, s, true);
    external_commit_tree_out_of_band_suite_1, external_commit_tree_out_of_band_suite_3, external_commit_tree_out_of_band_suite_2 =>
        |f, s| scenarios::external_commit_each_way(f, s, false);
    grease_key_package_of_ours_suite_1, grease_key_package_of_ours_suite_3, grease_key_package_of_ours_suite_2 => scenarios::grease_key_package_of_ours;
}

/// External-sender proposals (Add, Remove) each way: ours proposes, the
/// anchor commits; the anchor's external sender proposes, we commit.
fn external_sender_proposals_each_way(i: usize) {
    let (code, suite) = SUITES[i];
    let mut theirs = mls_rs_party::MlsRsExternal::new("external-anchor", code);
    scenarios::external_sender_proposals_each_way(&anchor(code), suite, &mut theirs);
}

#[test]
fn external_sender_proposals_each_way_suite_1() {
    external_sender_proposals_each_way(0);
}

#[test]
fn external_sender_proposals_each_way_suite_3() {
    external_sender_proposals_each_way(1);
}

#[test]
fn external_sender_proposals_each_way_suite_2() {
    external_sender_proposals_each_way(2);
}

/// ReInit (RFC 9420 §11.2) each way, into the suite `reinit_suite(i)` (the
/// other Ed25519 suite; suite 2 into itself): one side
/// commits the ReInit, the other processes it (its old group ends), the
/// committer creates the new group whose first Commit carries the reinit
/// resumption PSK of the old group, and the other joins it from the Welcome
/// (checking that PSK against its old group). Messages flow both ways in
/// the new group.
fn reinit_each_way(i: usize) {
    use mls_interop::{Event, Ours, agree};
    use mls_nostd::codec::Decode;
    use mls_nostd::extensions::Extensions;
    use mls_nostd::key_package::KeyPackage;
    use mls_nostd::messages::proposal::{Add, PreSharedKey, Proposal, ReInit};
    use mls_nostd::psk::{PreSharedKeyId, Psk, ResumptionPskUsage};
    let (code, suite) = SUITES[i];
    let (new_code, new_suite) = SUITES[mls_interop::reinit_suite(i)];
    let hello = |from: &mut dyn Party, to: &mut dyn Party| {
        let m = from.send(b"after the ReInit", b"");
        assert_eq!(to.process(&m), Event::Application(b"after the ReInit".to_vec(), Vec::new()));
    };

    // mls-rs commits the ReInit and creates the new group; ours joins it.
    let mut a = MlsRsParty::new("anchor-1", code);
    let mut o = Ours::new("ours-1", suite, 1);
    a.create(b"reinit-old-1");
    let kp = Party::key_package(&mut o);
    let (_, w) = a.add(&[kp], false);
    Party::join(&mut o, &w, None);
    agree(&[&a, &o]);
    let c = a.commit_reinit(b"reinit-new-1", new_code);
    assert_eq!(Party::process(&mut o, &c), Event::Commit { removed_us: false });
    assert!(o.is_inactive(), "our old group ends with the ReInit");
    assert_eq!(o.group.reinit().expect("a pending ReInit").group_id.as_slice(), b"reinit-new-1");
    a.start_reinit();
    let mut o2 = Ours::new("ours-1", new_suite, 1);
    let kp = o2.key_package_message();
    let w = a.reinit_create(&[kp]);
    o2.join_with(&w, None, &*o.group);
    agree(&[&a, &o2]);
    assert_eq!(o2.group.suite(), new_suite);
    hello(&mut a, &mut o2);
    hello(&mut o2, &mut a);

    // Ours commits the ReInit and creates the new group; mls-rs joins it.
    let mut o = Ours::new("ours-1", suite, 2);
    let mut a = MlsRsParty::new("anchor-1", code);
    o.create(b"reinit-old-2");
    let kp = a.key_package();
    let (_, w) = Party::add(&mut o, &[kp], false);
    a.join(&w, None);
    agree(&[&a, &o]);
    let reinit = Proposal::ReInit(ReInit {
        group_id: b"reinit-new-2",
        version: 1,
        cipher_suite: new_code,
        extensions: Extensions::default(),
    });
    let (c, _) = o.commit_proposals(&[reinit], false);
    assert_eq!(a.process(&c), Event::Commit { removed_us: false });
    assert!(o.is_inactive());
    let old_epoch = o.epoch();
    a.start_reinit();
    let kp = a.reinit_key_package();
    let mut o2 = Ours::new("ours-1", new_suite, 2);
    o2.create(b"reinit-new-2");
    let nonce = vec![0x42u8; new_suite.hash_len()];
    let link = Proposal::PreSharedKey(PreSharedKey {
        psk: PreSharedKeyId {
            psk: Psk::Resumption { usage: ResumptionPskUsage::Reinit, psk_group_id: b"reinit-old-2", psk_epoch: old_epoch },
            psk_nonce: &nonce,
        },
    });
    let add = Proposal::Add(Add { key_package: KeyPackage::decode_exact(&kp[4..]).expect("KeyPackage") });
    let (_, w) = o2.commit_proposals_with(&[link, add], &*o.group, false);
    a.reinit_join(&w.expect("a Welcome"));
    agree(&[&a, &o2]);
    hello(&mut a, &mut o2);
    hello(&mut o2, &mut a);
}

#[test]
fn reinit_each_way_suite_1() {
    reinit_each_way(0);
}

#[test]
fn reinit_each_way_suite_3() {
    reinit_each_way(1);
}

#[test]
fn reinit_each_way_suite_2() {
    reinit_each_way(2);
}

/// Branching (RFC 9420 §11.3) each way: one side branches a subgroup of a
/// two-member group with the other, whose first Commit carries a branch
/// resumption PSK of the original group; the other joins it, checking that
/// PSK against its own copy of the original group. Messages flow both ways.
fn branch_each_way(i: usize) {
    use mls_interop::{Event, Ours, agree};
    use mls_nostd::codec::Decode;
    use mls_nostd::key_package::KeyPackage;
    use mls_nostd::messages::proposal::{Add, PreSharedKey, Proposal};
    use mls_nostd::psk::{PreSharedKeyId, Psk, ResumptionPskUsage};
    let (code, suite) = SUITES[i];
    let hello = |from: &mut dyn Party, to: &mut dyn Party| {
        let m = from.send(b"in the branch", b"");
        assert_eq!(to.process(&m), Event::Application(b"in the branch".to_vec(), Vec::new()));
    };

    // mls-rs branches; ours joins.
    let mut a = MlsRsParty::new("anchor-1", code);
    let mut o = Ours::new("ours-1", suite, 3);
    a.create(b"branch-main-1");
    let kp = Party::key_package(&mut o);
    let (_, w) = a.add(&[kp], false);
    Party::join(&mut o, &w, None);
    let c = a.update();
    Party::process(&mut o, &c);
    agree(&[&a, &o]);
    let mut o2 = Ours::new("ours-1", suite, 3);
    let kp = o2.key_package_message();
    let w = a.branch(b"branch-sub-1", &[kp]);
    o2.join_with(&w, None, &*o.group);
    agree(&[&a, &o2]);
    hello(&mut a, &mut o2);
    hello(&mut o2, &mut a);

    // Ours branches; mls-rs joins.
    let mut o = Ours::new("ours-1", suite, 4);
    let mut a = MlsRsParty::new("anchor-1", code);
    o.create(b"branch-main-2");
    let kp = a.key_package();
    let (_, w) = Party::add(&mut o, &[kp], false);
    a.join(&w, None);
    let c = Party::update(&mut o);
    a.process(&c);
    agree(&[&a, &o]);
    let epoch = o.epoch();
    let kp = a.key_package();
    let mut o2 = Ours::new("ours-1", suite, 4);
    o2.create(b"branch-sub-2");
    let nonce = vec![0x24u8; suite.hash_len()];
    let link = Proposal::PreSharedKey(PreSharedKey {
        psk: PreSharedKeyId {
            psk: Psk::Resumption { usage: ResumptionPskUsage::Branch, psk_group_id: b"branch-main-2", psk_epoch: epoch },
            psk_nonce: &nonce,
        },
    });
    let add = Proposal::Add(Add { key_package: KeyPackage::decode_exact(&kp[4..]).expect("KeyPackage") });
    let (_, w) = o2.commit_proposals_with(&[link, add], &*o.group, false);
    a.join_branch(&w.expect("a Welcome"));
    agree(&[&a, &o2]);
    hello(&mut a, &mut o2);
    hello(&mut o2, &mut a);
}

#[test]
fn branch_each_way_suite_1() {
    branch_each_way(0);
}

#[test]
fn branch_each_way_suite_3() {
    branch_each_way(1);
}

#[test]
fn branch_each_way_suite_2() {
    branch_each_way(2);
}

