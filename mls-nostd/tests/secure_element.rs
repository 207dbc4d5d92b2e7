//! A member whose signature key never leaves a secure element (issue #15):
//! the group lives its whole life through a `Signer` handle (create, add,
//! a Commit with path, messages both ways, a reboot from the store, an
//! external join), the element counts every signature it makes, and nothing
//! the store ever wrote contains the key.
//!
//! The element here is software with the interface of an ATECC608 or SE050:
//! it makes a key in a slot, returns the public key, signs, and has no
//! operation that reads a key out.

use mls_nostd::crypto::CryptoError;
use mls_nostd::crypto::signature::{Signature, SignaturePublicKey};
use mls_nostd::crypto::signer::Signer;
use mls_nostd::prelude::*;
use std::sync::Mutex;

mod common;
use common::Recording;

const SUITE: CipherSuite = CipherSuite::X25519Aes128GcmSha256Ed25519;
const NOW: u64 = 1_793_491_200;

/// The element: keys by slot, and a count of signatures made.
struct SecureElement {
    slots: Mutex<Vec<SignaturePrivateKey>>,
    signatures: Mutex<usize>,
}

static ELEMENT: SecureElement = SecureElement { slots: Mutex::new(Vec::new()), signatures: Mutex::new(0) };

impl SecureElement {
    /// Makes a key in a new slot; returns the slot and the public key.
    fn generate(&self, rng: &mut impl rand_core::CryptoRng) -> (u8, SignaturePublicKey) {
        let (key, public) = SignaturePrivateKey::generate(SUITE, rng);
        let mut slots = self.slots.lock().unwrap();
        slots.push(key);
        (u8::try_from(slots.len() - 1).unwrap(), public)
    }

    fn public_key(&self, slot: u8) -> Option<SignaturePublicKey> {
        self.slots.lock().unwrap().get(usize::from(slot)).map(SignaturePrivateKey::public_key)
    }

    fn sign(&self, slot: u8, suite: CipherSuite, parts: &[&[u8]]) -> Result<Signature, CryptoError> {
        let slots = self.slots.lock().unwrap();
        let key = slots.get(usize::from(slot)).ok_or(CryptoError::InvalidKey)?;
        *self.signatures.lock().unwrap() += 1;
        key.sign(suite, parts)
    }

    fn signatures(&self) -> usize {
        *self.signatures.lock().unwrap()
    }

    /// The test's view into the element (a real one has no such door): the
    /// key of `slot`, to check that the store never holds it.
    fn key_bytes_for_the_test(&self, slot: u8) -> Vec<u8> {
        self.slots.lock().unwrap()[usize::from(slot)].as_bytes().to_vec()
    }
}

/// A handle to a key in the element: what the group holds and stores.
#[derive(Clone, Debug)]
struct ElementKey {
    slot: [u8; 1],
    public: SignaturePublicKey,
}

impl Signer for ElementKey {
    const NONE: Self = ElementKey { slot: [u8::MAX], public: SignaturePublicKey::EMPTY };

    fn public_key(&self) -> SignaturePublicKey {
        self.public
    }

    fn sign(&self, suite: CipherSuite, message_parts: &[&[u8]]) -> Result<Signature, CryptoError> {
        ELEMENT.sign(self.slot[0], suite, message_parts)
    }

    fn stored_form(&self) -> &[u8] {
        &self.slot
    }

    fn from_stored_form(_suite: CipherSuite, stored: &[u8]) -> Result<Self, CryptoError> {
        let [slot] = stored else { return Err(CryptoError::InvalidKey) };
        let public = ELEMENT.public_key(*slot).ok_or(CryptoError::InvalidKey)?;
        Ok(ElementKey { slot: [*slot], public })
    }
}


type Store = Recording<RamStorage<64, { 64 * 1024 }>>;
type ElementGroup = Group<8, 4096, 32, 4096, ElementKey>;
type MemoryGroup = Group<8, 4096, 32, 4096>;

fn store() -> Box<Store> {
    Box::new(Recording { inner: RamStorage::EMPTY, written: Vec::new() })
}

fn lifetime() -> Lifetime {
    Lifetime { not_before: NOW - 60, not_after: NOW + 86_400 }
}

/// Runs `op` and returns how many signatures the element made for it.
fn signatures_of<T>(op: impl FnOnce() -> T) -> (T, usize) {
    let before = ELEMENT.signatures();
    let t = op();
    (t, ELEMENT.signatures() - before)
}

fn receive_app(g: &mut MemoryGroup, s: &mut Store, msg: &[u8], record: &mut RecordBuffer) -> Vec<u8> {
    let mut m = msg.to_vec();
    match g.stored(s, 0, record).process_message(&mut m, NOW).expect("application message") {
        Received::Application { data, .. } => data.to_vec(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_group_lives_with_its_signature_key_only_in_the_secure_element() {
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let mut record = [0u8; MAX_RECORD_LEN];
    let mut commit_buf = vec![0u8; ElementGroup::commit_buffers_len(1024 + 3)];

    // Alice's key is made in the element; she holds a handle.
    let (slot, public) = ELEMENT.generate(&mut rng);
    let alice_key = ElementKey { slot: [slot], public };
    let alice_id = SigningIdentity::new(SUITE, Credential::Basic { identity: b"alice" }, &alice_key, lifetime());
    let mut alice_flash = store();
    let mut alice = Box::new(ElementGroup::EMPTY);
    let ((), n) = signatures_of(|| {
        alice.stored(&mut *alice_flash, 0, &mut record).create(&alice_id.create_params(b"se-group"), &alice_key, &mut rng).unwrap()
    });
    assert_eq!(n, 1, "create signs Alice's LeafNode (§7.2)");

    // Bob keeps his key in memory.
    let (bob_key, _) = SignaturePrivateKey::generate(SUITE, &mut rng);
    let bob_id = SigningIdentity::new(SUITE, Credential::Basic { identity: b"bob" }, &bob_key, lifetime());
    let mut bob_flash = store();
    let mut kp_buf = [0u8; 1024];
    let bob_kp = generate_key_package(&mut *bob_flash, &bob_id, &mut rng, &mut kp_buf, &mut record).unwrap().to_vec();

    // Alice adds Bob: the Commit (FramedContent) and the GroupInfo of the
    // Welcome are signed in the element.
    let (welcome, n) = signatures_of(|| {
        let out = alice.stored(&mut *alice_flash, 0, &mut record).add_member(&bob_kp, NOW, &mut rng, &mut commit_buf).unwrap();
        out.welcome.unwrap().to_vec()
    });
    assert!(n >= 2, "an Add signs the Commit and the GroupInfo: {n}");
    alice.stored(&mut *alice_flash, 0, &mut record).merge_staged_commit().unwrap();
    let mut bob = Box::new(MemoryGroup::EMPTY);
    let mut join_buf = vec![0u8; welcome.len()];
    bob.stored(&mut *bob_flash, 0, &mut record).join(&welcome, &bob_kp, &mut join_buf).unwrap();
    assert_eq!(alice.epoch_authenticator(), bob.epoch_authenticator());

    // Alice's application message: one signature (FramedContent, §6.1).
    let mut ct = [0u8; 512];
    let (msg, n) = signatures_of(|| {
        alice.stored(&mut *alice_flash, 0, &mut record).protect_application(b"from the element", b"", 0, &mut rng, &mut ct).unwrap().to_vec()
    });
    assert_eq!(n, 1);
    assert_eq!(receive_app(&mut bob, &mut bob_flash, &msg, &mut record), b"from the element");

    // Alice commits with a path: her new LeafNode (§7.3) and the
    // FramedContent are signed in the element; Bob verifies both.
    let (mut commit, n) = signatures_of(|| {
        alice.stored(&mut *alice_flash, 0, &mut record).update(NOW, &mut rng, &mut commit_buf).unwrap().commit.to_vec()
    });
    assert_eq!(n, 2, "a Commit with path signs its LeafNode and its FramedContent");
    alice.stored(&mut *alice_flash, 0, &mut record).merge_staged_commit().unwrap();
    match bob.stored(&mut *bob_flash, 0, &mut record).process_message(&mut commit, NOW).unwrap() {
        Received::Commit(s) => assert!(s.has_path),
        other => panic!("{other:?}"),
    }
    bob.stored(&mut *bob_flash, 0, &mut record).merge_staged_commit().unwrap();
    assert_eq!(alice.epoch_authenticator(), bob.epoch_authenticator());

    // Alice reboots: her group comes back from the store with the handle
    // (the slot), and signs again through the element.
    let mut alice = Box::new(ElementGroup::EMPTY);
    alice.stored(&mut *alice_flash, 0, &mut record).load(&mls_nostd::identity::SAME_CREDENTIAL).unwrap();
    assert_eq!(alice.epoch_authenticator(), bob.epoch_authenticator());
    let (msg, n) = signatures_of(|| {
        alice.stored(&mut *alice_flash, 0, &mut record).protect_application(b"after a reboot", b"", 0, &mut rng, &mut ct).unwrap().to_vec()
    });
    assert_eq!(n, 1);
    assert_eq!(receive_app(&mut bob, &mut bob_flash, &msg, &mut record), b"after a reboot");

    // Carol, whose key is in the element too, joins by external commit.
    let (slot, public) = ELEMENT.generate(&mut rng);
    let carol_key = ElementKey { slot: [slot], public };
    let (mut gi, mut scratch) = (vec![0u8; 16 * 1024], vec![0u8; 16 * 1024]);
    let gi = alice.group_info(true, &mut gi, &mut scratch).unwrap().to_vec();
    let mut caps = [0u8; 8];
    let template = LeafTemplate {
        signature_key: public.as_bytes(),
        credential: Credential::Basic { identity: b"carol" },
        capabilities: mls_nostd::group::default_capabilities(SUITE, &mut caps),
        extensions: Extensions::default(),
    };
    let mut carol = Box::new(ElementGroup::EMPTY);
    let mut out = vec![0u8; 64 * 1024];
    let (commit, n) = signatures_of(|| {
        carol
            .join_external(&gi, None, &template, &carol_key, None, &[], &NoPsks, GroupConfig::default(), &mut rng, &Sequential, &mut out)
            .unwrap()
            .to_vec()
    });
    assert_eq!(n, 2, "an external Commit signs its LeafNode and its FramedContent");
    let mut carol_flash = store();
    carol.stored(&mut *carol_flash, 0, &mut record).save(Parts::ALL).unwrap();
    let mut m = commit.clone();
    assert!(matches!(alice.stored(&mut *alice_flash, 0, &mut record).process_message(&mut m, NOW), Ok(Received::Commit(_))));
    alice.stored(&mut *alice_flash, 0, &mut record).merge_staged_commit().unwrap();
    let mut m = commit;
    assert!(matches!(bob.stored(&mut *bob_flash, 0, &mut record).process_message(&mut m, NOW), Ok(Received::Commit(_))));
    bob.stored(&mut *bob_flash, 0, &mut record).merge_staged_commit().unwrap();
    assert_eq!(carol.epoch_authenticator(), bob.epoch_authenticator());
    assert_eq!(alice.epoch_authenticator(), bob.epoch_authenticator());
    let (msg, n) = signatures_of(|| {
        carol.stored(&mut *carol_flash, 0, &mut record).protect_application(b"carol here", b"", 0, &mut rng, &mut ct).unwrap().to_vec()
    });
    assert_eq!(n, 1);
    assert_eq!(receive_app(&mut bob, &mut bob_flash, &msg, &mut record), b"carol here");

    // No store ever held a key of the element, only its slot. Bob's store,
    // whose key is in memory, does hold his: the scan finds what is there.
    for (flash, slot) in [(&alice_flash, alice_key.slot[0]), (&carol_flash, carol_key.slot[0])] {
        assert!(!flash.written.is_empty());
        assert!(!flash.ever_held(&ELEMENT.key_bytes_for_the_test(slot)), "a store wrote an element key");
    }
    assert!(bob_flash.ever_held(bob_key.as_bytes()), "the scan finds an in-memory key");
}
