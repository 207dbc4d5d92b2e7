//! A hardware crypto engine plugged into the core at link time (issue #15,
//! feature `engine`): `cargo test -p mls-nostd --features engine --test engine`.
//!
//! The engine here stands for a microcontroller's accelerators and a secure
//! element: SHA-256 whose state lives in the core's `HashContext` words
//! between calls (as a CryptoCell user context does), AES-128-GCM, the
//! Diffie-Hellman and signature checks counted and left to software, and
//! KEM private keys kept in slots that no API reads out. Everything else
//! (SHA-384/512, ChaCha20Poly1305, AES-256-GCM) falls back to RustCrypto.
//!
//! What it shows: the official crypto-basics vectors come out right with
//! HMAC and HKDF built on the engine's hash; a group's life runs through the
//! engine, with the counts RFC 9420 implies (two AEAD operations per
//! application message, §6.3); what the engine seals is what goes on the
//! wire (a corrupted tag is refused); and a KeyPackage's init and leaf keys
//! that never leave the element open the Welcome and the UpdatePaths to
//! the member (one decapsulation in the element each, also after a
//! reboot), are stored as handles, and are never written anywhere.

use aes_gcm::aead::{AeadInOut, KeyInit, inout::InOutBuf};
use mls_nostd::crypto::dhkem::Kem;
use mls_nostd::crypto::engine::{CryptoEngine, HashContext, fallback};
use mls_nostd::crypto::hpke::{HpkePrivateKey, HpkePublicKey};
use mls_nostd::crypto::signature::{Scheme, SignaturePublicKey};
use mls_nostd::crypto::{AeadAlg, CryptoError, HashAlg, labeled};
use mls_nostd::prelude::*;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};

mod common;
use common::Recording;

const SUITE: CipherSuite = CipherSuite::X25519Aes128GcmSha256Ed25519;
const NOW: u64 = 1_793_491_200;

/// What the engine has done.
struct Counts {
    hashes: AtomicUsize,
    seals: AtomicUsize,
    opens: AtomicUsize,
    dhs: AtomicUsize,
    public_keys: AtomicUsize,
    held_dhs: AtomicUsize,
    verifies: AtomicUsize,
}

static COUNTS: Counts = Counts {
    hashes: AtomicUsize::new(0),
    seals: AtomicUsize::new(0),
    opens: AtomicUsize::new(0),
    dhs: AtomicUsize::new(0),
    public_keys: AtomicUsize::new(0),
    held_dhs: AtomicUsize::new(0),
    verifies: AtomicUsize::new(0),
};

/// The tests share the counters: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());
/// Makes the engine's AES-GCM seal write a wrong tag.
static CORRUPT_TAGS: AtomicBool = AtomicBool::new(false);
/// The element's KEM private keys, by slot.
static SLOTS: Mutex<Vec<HpkePrivateKey>> = Mutex::new(Vec::new());

fn snapshot() -> [usize; 7] {
    let c = &COUNTS;
    [&c.hashes, &c.seals, &c.opens, &c.dhs, &c.public_keys, &c.held_dhs, &c.verifies].map(|a| a.load(SeqCst))
}

/// The counts an operation added: hashes, seals, opens, DHs, public keys,
/// held DHs, verifications.
fn counts_of<T>(op: impl FnOnce() -> T) -> (T, [usize; 7]) {
    let before = snapshot();
    let t = op();
    let after = snapshot();
    (t, std::array::from_fn(|i| after[i] - before[i]))
}

// SHA-256 "in hardware": the state, the partial block, its fill and the
// length, all in the context's words, with the compression function of
// `sha2` standing for the peripheral.
const H0: [u32; 8] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
const BLOCK: usize = 8; // words 8..24: the partial block
const FILL: usize = 24; // bytes in it
const LEN_LO: usize = 25; // total bytes, low and high words
const LEN_HI: usize = 26;

fn sha_block(w: &[u32; 64]) -> [u8; 64] {
    let mut b = [0u8; 64];
    for i in 0..16 {
        b[4 * i..4 * i + 4].copy_from_slice(&w[BLOCK + i].to_le_bytes());
    }
    b
}

fn sha_update(w: &mut [u32; 64], data: &[u8]) {
    let mut state: [u32; 8] = w[..8].try_into().unwrap();
    let mut block = sha_block(w);
    let mut fill = w[FILL] as usize;
    for &byte in data {
        block[fill] = byte;
        fill += 1;
        if fill == 64 {
            sha2::block_api::compress256(&mut state, &[block]);
            fill = 0;
        }
    }
    let total = (u64::from(w[LEN_HI]) << 32 | u64::from(w[LEN_LO])) + data.len() as u64;
    w[..8].copy_from_slice(&state);
    for i in 0..16 {
        w[BLOCK + i] = u32::from_le_bytes(block[4 * i..4 * i + 4].try_into().unwrap());
    }
    w[FILL] = fill as u32;
    (w[LEN_LO], w[LEN_HI]) = (total as u32, (total >> 32) as u32);
}

fn sha_finish(w: &mut [u32; 64], out: &mut [u8]) {
    let bits = (u64::from(w[LEN_HI]) << 32 | u64::from(w[LEN_LO])) * 8;
    let fill = w[FILL] as usize;
    let pad_len = if fill < 56 { 56 - fill } else { 120 - fill };
    let mut pad = vec![0u8; pad_len];
    pad[0] = 0x80;
    sha_update(w, &pad);
    sha_update(w, &bits.to_be_bytes());
    assert_eq!(w[FILL], 0);
    for (o, s) in out.chunks_mut(4).zip(&w[..8]) {
        o.copy_from_slice(&s.to_be_bytes());
    }
}

struct Engine;

impl CryptoEngine for Engine {
    fn hash_start(alg: HashAlg, ctx: &mut HashContext) -> bool {
        if alg != HashAlg::Sha256 {
            return false;
        }
        COUNTS.hashes.fetch_add(1, SeqCst);
        ctx.0 = [0; 64];
        ctx.0[..8].copy_from_slice(&H0);
        true
    }

    fn hash_update(_alg: HashAlg, ctx: &mut HashContext, data: &[u8]) {
        sha_update(&mut ctx.0, data);
    }

    fn hash_finish(_alg: HashAlg, ctx: &mut HashContext, out: &mut [u8]) {
        assert_eq!(out.len(), 32);
        sha_finish(&mut ctx.0, out);
    }

    fn aead_seal(alg: AeadAlg, key: &[u8], nonce: &[u8], aad: &[u8], buf: &mut [u8]) -> Result<[u8; 16], CryptoError> {
        if alg != AeadAlg::Aes128Gcm {
            return fallback::aead_seal(alg, key, nonce, aad, buf);
        }
        COUNTS.seals.fetch_add(1, SeqCst);
        let cipher = aes_gcm::Aes128Gcm::new_from_slice(key).map_err(|_| CryptoError::InvalidKey)?;
        let nonce = nonce.try_into().map_err(|_| CryptoError::InvalidKey)?;
        let tag = cipher.encrypt_inout_detached(nonce, aad, InOutBuf::from(buf)).map_err(|_| CryptoError::MessageTooLong)?;
        let mut tag: [u8; 16] = tag.as_slice().try_into().unwrap();
        if CORRUPT_TAGS.load(SeqCst) {
            tag[0] ^= 1;
        }
        Ok(tag)
    }

    fn aead_open(alg: AeadAlg, key: &[u8], nonce: &[u8], aad: &[u8], buf: &mut [u8], tag: &[u8]) -> Result<(), CryptoError> {
        if alg != AeadAlg::Aes128Gcm {
            return fallback::aead_open(alg, key, nonce, aad, buf, tag);
        }
        COUNTS.opens.fetch_add(1, SeqCst);
        let cipher = aes_gcm::Aes128Gcm::new_from_slice(key).map_err(|_| CryptoError::InvalidKey)?;
        let nonce = nonce.try_into().map_err(|_| CryptoError::InvalidKey)?;
        let tag = tag.try_into().map_err(|_| CryptoError::DecryptionFailed)?;
        cipher.decrypt_inout_detached(nonce, aad, InOutBuf::from(buf), tag).map_err(|_| CryptoError::DecryptionFailed)
    }

    fn dh(kem: Kem, sk: &[u8], pk: &[u8], out: &mut [u8]) -> Result<(), CryptoError> {
        COUNTS.dhs.fetch_add(1, SeqCst);
        fallback::dh(kem, sk, pk, out)
    }

    fn public_key(kem: Kem, sk: &[u8], out: &mut [u8]) -> Result<(), CryptoError> {
        COUNTS.public_keys.fetch_add(1, SeqCst);
        fallback::public_key(kem, sk, out)
    }

    fn held_dh(kem: Kem, handle: &[u8], pk: &[u8], out: &mut [u8]) -> Result<(), CryptoError> {
        let [slot] = handle else { return Err(CryptoError::InvalidKey) };
        let slots = SLOTS.lock().unwrap();
        let key = slots.get(usize::from(*slot)).ok_or(CryptoError::InvalidKey)?;
        COUNTS.held_dhs.fetch_add(1, SeqCst);
        fallback::dh(kem, key.as_bytes(), pk, out)
    }

    fn verify(scheme: Scheme, public_key: &[u8], message_parts: &[&[u8]], signature: &[u8]) -> Result<(), CryptoError> {
        COUNTS.verifies.fetch_add(1, SeqCst);
        fallback::verify(scheme, public_key, message_parts, signature)
    }
}

mls_nostd::crypto_engine!(Engine);

/// Makes a KEM key pair in a new slot of the element: the handle the
/// core holds instead of the key.
fn element_kem_key(rng: &mut impl rand_core::CryptoRng) -> HpkePrivateKey {
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    let (key, public) = mls_nostd::crypto::hpke::derive_key_pair(SUITE, &seed).unwrap();
    let mut slots = SLOTS.lock().unwrap();
    slots.push(key);
    HpkePrivateKey::held(SUITE, &[u8::try_from(slots.len() - 1).unwrap()], &public).unwrap()
}

fn hex(v: &serde_json::Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

#[test]
fn the_official_crypto_basics_vectors_pass_through_the_engine() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/test-vectors/crypto-basics.json");
    let cases: Vec<serde_json::Value> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let before = snapshot();
    let mut checked = Vec::new();
    for case in &cases {
        let Some(suite) = CipherSuite::from_u16(case["cipher_suite"].as_u64().unwrap() as u16) else { continue };
        let c = &case["ref_hash"];
        let h = labeled::ref_hash(suite, c["label"].as_str().unwrap().as_bytes(), &hex(&c["value"])).unwrap();
        assert_eq!(h.as_bytes(), hex(&c["out"]), "ref_hash, suite {suite:?}");

        let c = &case["expand_with_label"];
        let mut out = vec![0u8; c["length"].as_u64().unwrap() as usize];
        labeled::expand_with_label(suite, &hex(&c["secret"]), c["label"].as_str().unwrap().as_bytes(), &hex(&c["context"]), &mut out)
            .unwrap();
        assert_eq!(out, hex(&c["out"]), "expand_with_label, suite {suite:?}");

        let c = &case["derive_secret"];
        let s = labeled::derive_secret(suite, &hex(&c["secret"]), c["label"].as_str().unwrap().as_bytes()).unwrap();
        assert_eq!(s.as_bytes(), hex(&c["out"]), "derive_secret, suite {suite:?}");

        let c = &case["derive_tree_secret"];
        let s = labeled::derive_tree_secret(
            suite,
            &hex(&c["secret"]),
            c["label"].as_str().unwrap().as_bytes(),
            c["generation"].as_u64().unwrap() as u32,
            c["length"].as_u64().unwrap() as usize,
        )
        .unwrap();
        assert_eq!(s.as_bytes(), hex(&c["out"]), "derive_tree_secret, suite {suite:?}");

        let c = &case["sign_with_label"];
        let pk = SignaturePublicKey::for_suite(suite, &hex(&c["pub"])).unwrap();
        let (label, content) = (c["label"].as_str().unwrap().as_bytes(), hex(&c["content"]));
        labeled::verify_with_label(suite, &pk, label, &content, &hex(&c["signature"])).unwrap();

        let c = &case["encrypt_with_label"];
        let sk = HpkePrivateKey::from_slice(suite, &hex(&c["priv"])).unwrap();
        let kem_output = HpkePublicKey::from_slice(&hex(&c["kem_output"])).unwrap();
        let ct = hex(&c["ciphertext"]);
        let (mut body, tag) = (ct[..ct.len() - 16].to_vec(), &ct[ct.len() - 16..]);
        let label = c["label"].as_str().unwrap().as_bytes();
        labeled::decrypt_with_label(suite, &sk, label, &hex(&c["context"]), &kem_output, &mut body, tag).unwrap();
        assert_eq!(body, hex(&c["plaintext"]), "encrypt_with_label, suite {suite:?}");
        checked.push(suite);
    }
    println!("crypto-basics through the engine: {} suites ({checked:?})", checked.len());
    assert_eq!(checked.len(), CipherSuite::ALL.len(), "every suite of this build has a vector case");
    let after = snapshot();
    let added: [usize; 7] = std::array::from_fn(|i| after[i] - before[i]);
    // SHA-256 suites hashed in the engine; suites 1 and 2 opened with its
    // AES-128-GCM (once each); every suite's HPKE asked it for a DH and
    // every signature check went through it.
    let sha256_suites = checked.iter().filter(|s| s.hash_alg() == HashAlg::Sha256).count();
    let aes128_suites = checked.iter().filter(|s| s.aead_alg() == AeadAlg::Aes128Gcm).count();
    assert!(sha256_suites >= 2 && added[0] > 10 * sha256_suites, "hashes: {added:?}");
    assert_eq!(added[2], aes128_suites, "AES-128-GCM opens: {added:?}");
    assert_eq!(added[3], checked.len(), "one DH per HPKE open: {added:?}");
    assert_eq!(added[6], checked.len(), "one verification per suite: {added:?}");
}

type Store = Recording<RamStorage<64, { 64 * 1024 }>>;
type G = Group<8, 4096, 32, 4096>;

fn store() -> Box<Store> {
    Box::new(Recording { inner: RamStorage::EMPTY, written: Vec::new() })
}

fn lifetime() -> Lifetime {
    Lifetime { not_before: NOW - 60, not_after: NOW + 86_400 }
}

#[test]
fn a_group_lives_through_the_engine_with_kem_keys_that_never_leave_the_element() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let mut record = [0u8; MAX_RECORD_LEN];
    let mut commit_buf = vec![0u8; G::commit_buffers_len(1024 + 3)];

    let (alice_key, _) = SignaturePrivateKey::generate(SUITE, &mut rng);
    let alice_id = SigningIdentity::new(SUITE, Credential::Basic { identity: b"alice" }, &alice_key, lifetime());
    let mut alice_flash = store();
    let mut alice = Box::new(G::EMPTY);
    alice.stored(&mut *alice_flash, 0, &mut record).create(&alice_id.create_params(b"engine-group"), &alice_key, &mut rng).unwrap();

    // Bob's KeyPackage: its init key and its leaf key are made in the
    // element, the core gets handles; the store keeps the handles.
    let (bob_key, _) = SignaturePrivateKey::generate(SUITE, &mut rng);
    let (init_key, leaf_key) = (element_kem_key(&mut rng), element_kem_key(&mut rng));
    let element_keys: Vec<Vec<u8>> = SLOTS.lock().unwrap().iter().map(|k| k.as_bytes().to_vec()).collect();
    let params = KeyPackageParams::new(SUITE, Credential::Basic { identity: b"bob" }, lifetime());
    let mut kp_buf = [0u8; 1024];
    let (bob_kp, keys) =
        KeyPackage::generate_with_held_keys(&params, Some(init_key.clone()), Some(leaf_key.clone()), &bob_key, &mut rng, &mut kp_buf)
            .unwrap();
    let bob_kp = bob_kp.to_vec();
    assert!(keys.init_key.is_held() && keys.encryption_key.is_held());
    let kp_ref = labeled::make_key_package_ref(SUITE, &bob_kp).unwrap();
    let mut bob_flash = store();
    mls_nostd::store::durable::store_key_package(&mut *bob_flash, SUITE, &kp_ref, &keys, &bob_key, &mut record).unwrap();
    drop(keys);
    // A key in memory is not taken for a held one.
    let (plain, _) = mls_nostd::crypto::hpke::derive_key_pair(SUITE, &[7; 32]).unwrap();
    assert!(KeyPackage::generate_with_held_keys(&params, None, Some(plain), &bob_key, &mut rng, &mut [0u8; 1024]).is_err());

    // Alice adds Bob; Bob joins from his store, which gives back the held
    // keys: the Welcome's GroupSecrets are decapsulated in the element, once.
    let welcome = alice
        .stored(&mut *alice_flash, 0, &mut record)
        .add_member(&bob_kp, NOW, &mut rng, &mut commit_buf)
        .unwrap()
        .welcome
        .unwrap()
        .to_vec();
    alice.stored(&mut *alice_flash, 0, &mut record).merge_staged_commit().unwrap();
    let mut bob = Box::new(G::EMPTY);
    let mut join_buf = vec![0u8; welcome.len()];
    let ((), n) = counts_of(|| bob.stored(&mut *bob_flash, 0, &mut record).join(&welcome, &bob_kp, &mut join_buf).unwrap());
    assert_eq!((n[5], n[3]), (1, 0), "the Welcome is opened by the element's key, not by one in memory: {n:?}");
    assert!(n[0] > 0 && n[2] >= 2, "the join hashed and opened (GroupSecrets, GroupInfo) in the engine: {n:?}");
    assert_eq!(alice.epoch_authenticator(), bob.epoch_authenticator());

    // An application message: two AES-GCM seals (content and sender data,
    // §6.3.1, §6.3.2), then two opens and one signature check.
    let mut ct = [0u8; 512];
    let (msg, n) = counts_of(|| {
        alice.stored(&mut *alice_flash, 0, &mut record).protect_application(b"via the engine", b"", 0, &mut rng, &mut ct).unwrap().to_vec()
    });
    assert_eq!((n[1], n[2]), (2, 0), "seals and opens of a protect: {n:?}");
    let mut m = msg;
    let (data, n) = counts_of(|| receive_app(&mut bob, &mut bob_flash, &mut m, &mut record));
    assert_eq!(data, b"via the engine");
    assert_eq!((n[1], n[2], n[6]), (0, 2, 1), "seals, opens, verifications of a receive: {n:?}");

    // What the engine seals is what is sent: with its tags corrupted, Bob
    // refuses the message.
    CORRUPT_TAGS.store(true, SeqCst);
    let bad = alice.stored(&mut *alice_flash, 0, &mut record).protect_application(b"bad tag", b"", 0, &mut rng, &mut ct).unwrap().to_vec();
    CORRUPT_TAGS.store(false, SeqCst);
    let mut m = bad;
    assert!(bob.stored(&mut *bob_flash, 0, &mut record).process_message(&mut m, NOW).is_err(), "a corrupted engine tag");

    // Alice commits with a path: its secret is sealed to Bob's leaf (a DH
    // in the engine) and opened by the element's leaf key. Then again after
    // Bob reboots: the store gave the handle back.
    for reboot in [false, true] {
        if reboot {
            *bob = G::EMPTY;
            bob.stored(&mut *bob_flash, 0, &mut record).load(&mls_nostd::identity::SAME_CREDENTIAL).unwrap();
        }
        let (commit, n) = counts_of(|| commit_with_path(&mut alice, &mut alice_flash, &mut record, &mut rng, &mut commit_buf));
        assert!(n[3] >= 1 && n[1] >= 1, "a path is sealed with the engine: {n:?}");
        let (path_opened, n) = counts_of(|| process_commit(&mut bob, &mut bob_flash, commit, &mut record));
        assert!(path_opened);
        assert_eq!((n[5], n[3]), (1, 0), "the path to Bob is opened in the element (reboot: {reboot}): {n:?}");
        assert_eq!(alice.epoch_authenticator(), bob.epoch_authenticator());
    }

    // Bob commits with a path: his new leaf key is derived from a path
    // secret, in memory; the next path to him is opened there.
    let commit = commit_with_path(&mut bob, &mut bob_flash, &mut record, &mut rng, &mut commit_buf);
    assert!(process_commit(&mut alice, &mut alice_flash, commit, &mut record));
    let commit = commit_with_path(&mut alice, &mut alice_flash, &mut record, &mut rng, &mut commit_buf);
    let (_, n) = counts_of(|| process_commit(&mut bob, &mut bob_flash, commit, &mut record));
    assert_eq!((n[5], n[3]), (0, 1), "Bob's own path key is in memory now: {n:?}");
    let mut m = bob.stored(&mut *bob_flash, 0, &mut record).protect_application(b"still here", b"", 0, &mut rng, &mut ct).unwrap().to_vec();
    assert_eq!(receive_app(&mut alice, &mut alice_flash, &mut m, &mut record), b"still here");

    // The element's keys were never written; their handles were (the
    // KeyPackage record, Bob's state: mark, length, slot, public key).
    let ever = |needle: &[u8]| bob_flash.ever_held(needle);
    for key in &element_keys {
        assert!(!ever(key), "a store wrote an element key");
    }
    for key in [&init_key, &leaf_key] {
        let mut handle_form = vec![0xFF, 1];
        handle_form.extend_from_slice(key.as_bytes());
        handle_form.extend_from_slice(key.public_key(SUITE).as_bytes());
        assert!(ever(&handle_form), "the store keeps the handle");
    }
}

fn commit_with_path(
    g: &mut G,
    flash: &mut Store,
    record: &mut RecordBuffer,
    rng: &mut impl rand_core::CryptoRng,
    buf: &mut [u8],
) -> Vec<u8> {
    let commit = g.stored(flash, 0, record).update(NOW, rng, buf).unwrap().commit.to_vec();
    g.stored(flash, 0, record).merge_staged_commit().unwrap();
    commit
}

/// Processes and merges a Commit; returns whether it had a path.
fn process_commit(g: &mut G, flash: &mut Store, mut commit: Vec<u8>, record: &mut RecordBuffer) -> bool {
    let has_path = match g.stored(flash, 0, record).process_message(&mut commit, NOW).unwrap() {
        Received::Commit(s) => s.has_path,
        other => panic!("{other:?}"),
    };
    g.stored(flash, 0, record).merge_staged_commit().unwrap();
    has_path
}

fn receive_app(g: &mut G, flash: &mut Store, msg: &mut [u8], record: &mut RecordBuffer) -> Vec<u8> {
    match g.stored(flash, 0, record).process_message(msg, NOW).unwrap() {
        Received::Application { data, .. } => data.to_vec(),
        other => panic!("{other:?}"),
    }
}
