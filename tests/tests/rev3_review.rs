//! Review finding (rev3): a late application message of the previous epoch
//! is accepted from a leaf that was blank in that epoch, authenticated with
//! the key of the member the ending Commit added there (RFC 9420 §6.3.2:
//! the sender must be a non-blank leaf; here: of the epoch the message is
//! of). Fails while the finding stands.
use mls_nostd::codec::Decode;
use mls_nostd::crypto::CipherSuite;
use mls_nostd::group::{PAST_EPOCHS_KEPT, Received, WireFormatPolicy};
use mls_nostd::group_context::GroupContext;
use mls_nostd::key_package::KeyPackage;
use mls_nostd::messages::authenticated_content::EncodedGroupContext;
use mls_nostd::messages::framing::{Content, FramedContent, Sender};
use mls_nostd::messages::private_message::{self, PrivateMessageKeys};
use mls_nostd::messages::proposal::{Add, Proposal};
use mls_nostd::psk::NoPsks;
use mls_nostd::secret_tree::{SecretTree, SecretTreeConfig};
use mls_nostd::tree_math::LeafIndex;
use mls_tests::member::{Member, NOW, agree};

#[test]
fn late_message_from_a_leaf_blank_in_its_epoch_is_refused() {
    assert_eq!(PAST_EPOCHS_KEPT, 1, "default build keeps the previous epoch");
    let suite = CipherSuite::X25519Aes128GcmSha256Ed25519;
    let mut alice = Member::new("alice", 41);
    let mut bob = Member::new("bob", 42);
    let mut carol = Member::new("carol", 43);
    alice.create(suite, b"blank-leaf", Default::default());
    alice.add(&mut bob, suite);
    alice.add_seen_by(&mut carol, &mut [&mut bob], suite);
    // Leaves 0, 1, 2 are members; leaf 3 is blank in this epoch.
    let st = alice.group.state_for_testing();
    let root = alice.group.encryption_secret_for_testing().expect("root unused").clone();
    let sds = st.secrets.sender_data_secret.clone();
    let gid = st.group_id.as_slice().to_vec();
    let epoch = st.epoch;
    let th = st.tree_hash.as_bytes().to_vec();
    let cth = st.confirmed_transcript_hash.as_bytes().to_vec();
    let ext = st.extensions.as_slice().to_vec();

    // Alice (a member of that epoch) adds her new device "erin" at leaf 3.
    let mut erin = Member::new("erin", 44);
    let (kp, keys) = erin.key_package(suite);
    let add = Proposal::Add(Add { key_package: KeyPackage::decode_exact(&kp).unwrap() });
    let (commit, welcome) = alice.commit(&[add], true, WireFormatPolicy::Public);
    bob.receive_commit(&commit);
    erin.join(&welcome.unwrap(), &kp, &keys);
    agree(&[&alice, &bob, &erin]);
    assert_eq!(erin.group.own_leaf(), LeafIndex(3));

    // With the ended epoch's secrets (alice's) and erin's signature key, a
    // PrivateMessage of that epoch "from leaf 3".
    let gc = GroupContext {
        cipher_suite: suite,
        group_id: &gid,
        epoch,
        tree_hash: &th,
        confirmed_transcript_hash: &cth,
        extensions: &ext,
    };
    let egc = EncodedGroupContext::new(gc).unwrap();
    let mut tree: SecretTree<16, 64> = SecretTree::new(suite, 4, &root, SecretTreeConfig::default()).unwrap();
    let content = FramedContent {
        group_id: &gid,
        epoch,
        sender: Sender::Member(3),
        authenticated_data: b"ad",
        content: Content::Application(b"said before erin was a member"),
    };
    let mut keys = PrivateMessageKeys { secret_tree: &mut tree, sender_data_secret: &sds };
    let mut out = vec![0u8; 1024];
    let msg = private_message::protect(&egc, &mut keys, &erin.signer, &content, 0, &mut erin.rng, &mut out)
        .unwrap()
        .to_vec();

    let mut m = msg.clone();
    let got = bob.group.process_message_in_memory(&mut m, &NoPsks, NOW);
    if let Ok(Received::Application { sender, data, .. }) = &got {
        panic!("accepted from leaf {} (blank in epoch {epoch}): {:?}", sender.0, core::str::from_utf8(data));
    }
    assert!(got.is_err(), "{got:?}");
}
