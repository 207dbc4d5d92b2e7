//! The test-vector checks of the core, suite 3 (X25519, ChaCha20Poly1305,
//! SHA-256, Ed25519). Each check is one case of the final count; a failing
//! case prints its name (and the core's error, if it returned one).

use mls_nostd::codec::Encode;
use mls_nostd::crypto::hpke::{HpkePrivateKey, HpkePublicKey};
use mls_nostd::crypto::labeled::{
    decrypt_with_label, derive_secret, derive_tree_secret, encrypt_with_label, expand_with_label,
    ref_hash, sign_with_label, verify_with_label,
};
use mls_nostd::crypto::signature::{SignaturePrivateKey, SignaturePublicKey};
use mls_nostd::crypto::{AEAD_TAG_LEN, CipherSuite, CryptoError, Secret};
use mls_nostd::group_context::GroupContext;
use mls_nostd::key_schedule::{EpochSecrets, joiner_secret, welcome_secret};
use mls_nostd::secret_tree::{
    RatchetKind, SecretTree, SecretTreeConfig, SecretTreeError, sender_data_key_nonce,
};
use mls_nostd::tree_math::LeafIndex;
use board_member::SeededRng;

use crate::check;
use crate::report::Report;
use crate::vectors::{
    CRYPTO_BASICS, CryptoBasics, EncryptWithLabel, Epoch, KEY_SCHEDULE, KeySchedule, SECRET_TREE,
    SecretTreeCase,
};

const SUITE: CipherSuite = CipherSuite::X25519ChaCha20Poly1305Sha256Ed25519;

/// Largest output or plaintext a vector may ask for (they use 32 bytes).
const MAX_BUF: usize = 256;
/// Leaves of the largest suite-3 secret tree.
pub const MAX_LEAVES: usize = 32;
/// Skipped-generation keys kept by the secret tree under test.
pub const MAX_SKIPPED: usize = 32;
/// The secret tree the secret-tree checks use: the board keeps it in a
/// `static` (about 6 KB; too much for a small board's stack). A board short
/// of RAM may keep fewer skipped keys (any `K` works with these vectors).
pub type VectorSecretTree<const K: usize = MAX_SKIPPED> = SecretTree<MAX_LEAVES, K>;

/// A comparison that cannot fail with an error.
fn same(got: &[u8], want: &[u8]) -> Result<bool, CryptoError> {
    Ok(got == want)
}

// ---------------------------------------------------------------- crypto-basics

#[inline(never)]
pub fn crypto_basics(r: &mut Report) {
    for (i, c) in CRYPTO_BASICS.iter().enumerate() {
        crypto_basics_case(r, i, c);
    }
}

fn crypto_basics_case(r: &mut Report, i: usize, c: &CryptoBasics) {
    // RefHash uses its label as given (no "MLS 1.0 " prefix added).
    let v = &c.ref_hash;
    check!(
        r,
        ref_hash(SUITE, v.label, v.value).map(|h| h.as_bytes() == v.out),
        "crypto-basics[{i}] ref_hash"
    );

    let v = &c.expand_with_label;
    let mut out = [0u8; MAX_BUF];
    let outcome = out
        .get_mut(..usize::from(v.length))
        .ok_or(CryptoError::InvalidLength)
        .and_then(|o| {
            expand_with_label(SUITE, v.secret, v.label, v.context, o).map(|()| *o == *v.out)
        });
    check!(r, outcome, "crypto-basics[{i}] expand_with_label");

    let v = &c.derive_secret;
    check!(
        r,
        derive_secret(SUITE, v.secret, v.label).map(|s| s.as_bytes() == v.out),
        "crypto-basics[{i}] derive_secret"
    );

    let v = &c.derive_tree_secret;
    let outcome = derive_tree_secret(
        SUITE,
        v.secret,
        v.label,
        v.generation,
        usize::from(v.length),
    );
    check!(
        r,
        outcome.map(|s| s.as_bytes() == v.out),
        "crypto-basics[{i}] derive_tree_secret"
    );

    let v = &c.sign_with_label;
    let outcome = SignaturePublicKey::from_slice(v.public)
        .and_then(|pk| verify_with_label(SUITE, &pk, v.label, v.content, v.signature))
        .map(|()| true);
    check!(
        r,
        outcome,
        "crypto-basics[{i}] sign_with_label: verify given"
    );
    check!(
        r,
        sign_then_verify(c),
        "crypto-basics[{i}] sign_with_label: sign then verify"
    );

    check!(
        r,
        decrypt_given(&c.encrypt_with_label),
        "crypto-basics[{i}] encrypt_with_label: decrypt given"
    );
    let mut rng = SeededRng::new(0x4d4c_5320_312e_3020 ^ i as u64);
    check!(
        r,
        encrypt_decrypt(&c.encrypt_with_label, &mut rng),
        "crypto-basics[{i}] encrypt_with_label: round trip"
    );
}

/// `VerifyWithLabel(pub, label, content, SignWithLabel(priv, label, content))`;
/// Ed25519 is deterministic, so the signature must also equal the given one.
fn sign_then_verify(c: &CryptoBasics) -> Result<bool, CryptoError> {
    let v = &c.sign_with_label;
    let sk = SignaturePrivateKey::from_slice(SUITE, v.private)?;
    let pk = SignaturePublicKey::from_slice(v.public)?;
    let sig = sign_with_label(SUITE, &sk, v.label, v.content)?;
    verify_with_label(SUITE, &pk, v.label, v.content, &sig)?;
    Ok(sk.public_key() == pk && sig[..] == *v.signature)
}

/// `DecryptWithLabel(priv, label, context, kem_output, ciphertext) == plaintext`.
fn decrypt_given(v: &EncryptWithLabel) -> Result<bool, CryptoError> {
    let sk = HpkePrivateKey::from_slice(SUITE, v.private)?;
    let kem_output = HpkePublicKey::from_slice(v.kem_output)?;
    // The vector's ciphertext carries the AEAD tag at its end.
    let body = v
        .ciphertext
        .len()
        .checked_sub(AEAD_TAG_LEN)
        .ok_or(CryptoError::DecryptionFailed)?;
    let (ct, tag) = v.ciphertext.split_at(body);
    let mut buf = [0u8; MAX_BUF];
    let buf = buf.get_mut(..ct.len()).ok_or(CryptoError::MessageTooLong)?;
    buf.copy_from_slice(ct);
    decrypt_with_label(SUITE, &sk, v.label, v.context, &kem_output, buf, tag)?;
    Ok(*buf == *v.plaintext)
}

/// `EncryptWithLabel(pub, ...)` with a test RNG, then `DecryptWithLabel(priv, ...)`.
fn encrypt_decrypt(v: &EncryptWithLabel, rng: &mut SeededRng) -> Result<bool, CryptoError> {
    let sk = HpkePrivateKey::from_slice(SUITE, v.private)?;
    let pk = HpkePublicKey::from_slice(v.public)?;
    let mut buf = [0u8; MAX_BUF];
    let buf = buf
        .get_mut(..v.plaintext.len())
        .ok_or(CryptoError::MessageTooLong)?;
    buf.copy_from_slice(v.plaintext);
    let sealed = encrypt_with_label(SUITE, &pk, v.label, v.context, buf, rng)?;
    let encrypted = v.plaintext.is_empty() || *buf != *v.plaintext;
    decrypt_with_label(
        SUITE,
        &sk,
        v.label,
        v.context,
        &sealed.kem_output,
        buf,
        &sealed.tag,
    )?;
    Ok(sk.public_key(SUITE) == pk && encrypted && *buf == *v.plaintext)
}

// ----------------------------------------------------------------- key-schedule

#[inline(never)]
pub fn key_schedule(r: &mut Report) {
    for (i, ks) in KEY_SCHEDULE.iter().enumerate() {
        let mut init = match Secret::from_slice(ks.initial_init_secret) {
            Ok(s) => s,
            Err(e) => {
                check!(
                    r,
                    Err::<bool, _>(e),
                    "key-schedule[{i}] initial_init_secret"
                );
                continue;
            }
        };
        for (n, e) in ks.epochs.iter().enumerate() {
            // Each epoch starts from the init_secret this firmware derived in
            // the one before: the chain is checked end to end.
            match epoch(r, i, n, ks, e, &init) {
                Ok(next) => init = next,
                Err(err) => {
                    check!(
                        r,
                        Err::<bool, _>(err),
                        "key-schedule[{i}] epoch {n}: derivation"
                    );
                    break;
                }
            }
        }
    }
}

/// Checks one epoch; returns its `init_secret` for the next one.
fn epoch(
    r: &mut Report,
    i: usize,
    n: usize,
    ks: &KeySchedule,
    e: &Epoch,
    init: &Secret,
) -> Result<Secret, CryptoError> {
    let gc = GroupContext {
        cipher_suite: SUITE,
        group_id: ks.group_id,
        epoch: n as u64,
        tree_hash: e.tree_hash,
        confirmed_transcript_hash: e.confirmed_transcript_hash,
        extensions: &[],
    };
    let mut buf = [0u8; MAX_BUF];
    check!(
        r,
        gc.encode_to(&mut buf).map(|enc| enc == e.group_context),
        "key-schedule[{i}] epoch {n}: group_context"
    );
    // The derivations take the vector's encoding, so a codec fault shows once.
    let context = e.group_context;

    let commit = Secret::from_slice(e.commit_secret)?;
    let psk = Secret::from_slice(e.psk_secret)?;
    let joiner = joiner_secret(SUITE, init, &commit, context)?;
    check!(
        r,
        same(joiner.as_bytes(), e.joiner_secret),
        "key-schedule[{i}] epoch {n}: joiner_secret"
    );
    let welcome = welcome_secret(SUITE, &joiner, &psk)?;
    check!(
        r,
        same(welcome.as_bytes(), e.welcome_secret),
        "key-schedule[{i}] epoch {n}: welcome_secret"
    );

    let s = EpochSecrets::derive(SUITE, &joiner, &psk, context)?;
    let fields: [(&str, &Secret, &[u8]); 9] = [
        (
            "sender_data_secret",
            &s.sender_data_secret,
            e.sender_data_secret,
        ),
        (
            "encryption_secret",
            &s.encryption_secret,
            e.encryption_secret,
        ),
        ("exporter_secret", &s.exporter_secret, e.exporter_secret),
        (
            "epoch_authenticator",
            &s.epoch_authenticator,
            e.epoch_authenticator,
        ),
        ("external_secret", &s.external_secret, e.external_secret),
        ("confirmation_key", &s.confirmation_key, e.confirmation_key),
        ("membership_key", &s.membership_key, e.membership_key),
        ("resumption_psk", &s.resumption_psk, e.resumption_psk),
        ("init_secret", &s.init_secret, e.init_secret),
    ];
    for (field, got, want) in fields {
        check!(
            r,
            same(got.as_bytes(), want),
            "key-schedule[{i}] epoch {n}: {field}"
        );
    }

    let outcome = s
        .external_key_pair(SUITE)
        .map(|(sk, pk)| pk.as_bytes() == e.external_pub && sk.public_key(SUITE) == pk);
    check!(r, outcome, "key-schedule[{i}] epoch {n}: external_pub");

    // The exporter label is used as its ASCII bytes (see vectors.rs).
    let x = &e.exporter;
    let mut out = [0u8; MAX_BUF];
    let outcome = usize::try_from(x.length)
        .ok()
        .and_then(|len| out.get_mut(..len))
        .ok_or(CryptoError::InvalidLength)
        .and_then(|o| {
            s.export(SUITE, x.label, x.context, o)
                .map(|()| *o == *x.secret)
        });
    check!(r, outcome, "key-schedule[{i}] epoch {n}: exporter");

    Ok(s.init_secret.clone())
}

// ------------------------------------------------------------------ secret-tree

#[inline(never)]
pub fn secret_tree<const K: usize>(r: &mut Report, tree: &mut VectorSecretTree<K>) {
    for (i, c) in SECRET_TREE.iter().enumerate() {
        secret_tree_case(r, i, c, tree);
    }
}

fn secret_tree_case<const K: usize>(r: &mut Report, i: usize, c: &SecretTreeCase, tree: &mut VectorSecretTree<K>) {
    let d = &c.sender_data;
    let kn = Secret::from_slice(d.sender_data_secret)
        .and_then(|s| sender_data_key_nonce(SUITE, &s, d.ciphertext));
    check!(
        r,
        kn.as_ref().map(|(k, _)| k.as_bytes() == d.key),
        "secret-tree[{i}] sender_data key"
    );
    check!(
        r,
        kn.as_ref().map(|(_, nonce)| nonce[..] == *d.nonce),
        "secret-tree[{i}] sender_data nonce"
    );

    let n_leaves = c.leaves.len() as u32;
    let reset = Secret::from_slice(c.encryption_secret)
        .map_err(SecretTreeError::from)
        .and_then(|root| tree.reset(SUITE, n_leaves, &root, SecretTreeConfig::default()));
    if let Err(e) = reset {
        check!(r, Err::<bool, _>(e), "secret-tree[{i}] tree of {n_leaves} leaves");
        return;
    }
    for (leaf, generations) in c.leaves.iter().enumerate() {
        let index = LeafIndex(leaf as u32);
        for g in generations.iter() {
            let ratchets = [
                (
                    RatchetKind::Handshake,
                    "handshake",
                    g.handshake_key,
                    g.handshake_nonce,
                ),
                (
                    RatchetKind::Application,
                    "application",
                    g.application_key,
                    g.application_nonce,
                ),
            ];
            for (kind, kind_name, want_key, want_nonce) in ratchets {
                // As a receiver: fetch the generation's key, then consume it
                // (ratcheting past it, keeping skipped generations' keys).
                let got = tree
                    .receiving_key(index, kind, g.generation)
                    .and_then(|k| tree.consume(index, kind, g.generation).map(|()| k));
                let gen_ = g.generation;
                check!(
                    r,
                    got.as_ref().map(|k| k.key.as_bytes() == want_key),
                    "secret-tree[{i}] leaf {leaf} generation {gen_}: {kind_name}_key"
                );
                check!(
                    r,
                    got.as_ref().map(|k| k.nonce[..] == *want_nonce),
                    "secret-tree[{i}] leaf {leaf} generation {gen_}: {kind_name}_nonce"
                );
            }
        }
    }
}
