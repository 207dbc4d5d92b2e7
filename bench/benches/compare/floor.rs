//! Scenario e: the crypto floor. Each primitive's single-thread cost is
//! measured here (RustCrypto, through the core's crypto layer: the same
//! crates all three libraries use), and the number of primitives each
//! scenario must run is written to `$CRITERION_HOME/mls-floor.json`;
//! `bench/table.py` multiplies them, dividing the independent ones (`*_par`)
//! over the cores.
//!
//! What a scenario must run (RFC 9420; `d` = depth of the tree, `n` members):
//! - add of `n − 1` (no path), Commit + Welcome: per new member its
//!   KeyPackage and leaf signatures checked (one by one while a core's
//!   share is at most `platform_std::ED25519_SINGLES`, else in batches: the
//!   batch's cost per signature) and one HPKE seal of its
//!   GroupSecrets (independent); two signatures (Commit, GroupInfo); hashing
//!   every KeyPackage (its reference), the tree (tree hash) and the encrypted
//!   GroupInfo (the HPKE `info` of all seals, once); the GroupInfo encrypted.
//! - the creator's merge: no public-key operation (shown as no floor).
//! - join: one HPKE open, the GroupInfo signature, every leaf's signature
//!   (independent; one by one or in batches, as for an add); hashing the tree and the encrypted GroupInfo; decrypting it.
//! - Commit with path: `d + 1` DeriveKeyPair (leaf and path nodes), one HPKE
//!   seal per node of the copath resolutions (`d` in a full tree, `n − 1`
//!   right after the big add; independent), two signatures (leaf, Commit);
//!   hashing the Commit with SHA-512 twice in its signature (RFC 8032
//!   §5.1.6: r and k), with SHA-256 in its membership tag (§6.2) and the
//!   confirmed transcript hash (§8.2).
//! - processing it at the far end of the tree: the Commit's and the leaf's
//!   signature, one HPKE open, one DeriveKeyPair (the root's key); hashing
//!   the Commit with SHA-512 once (verification hashes it once) and twice
//!   with SHA-256.
//! - application message: one signature or verification of the 1 KiB
//!   content (the primitives sign a message of [`SIGNED`] bytes: the rest
//!   hashed as SHA-512 bytes, twice to sign, once to verify), two AEAD calls
//!   (the content, §6.3.1, and the sender data, §6.3.2) of 1 KiB in all:
//!   each call's fixed cost (key setup, tag) from an AEAD of 1 KiB measured
//!   beside the 64 KiB one.

use super::ours::SUITE;
use criterion::Criterion;
use mls_nostd::crypto::hpke::{derive_key_pair, info_hash, open_base, seal_base};
use mls_nostd::crypto::signature::SignaturePrivateKey;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Sizes of our messages that the floor's hashing depends on.
#[derive(Default, Debug)]
pub struct Sizes {
    /// Welcome length by group size.
    pub welcome: BTreeMap<usize, usize>,
    /// Total KeyPackage bytes of the big add, by group size.
    pub key_packages: BTreeMap<usize, usize>,
    /// Length of the Commit with path of scenario b, by tree (`full_16`).
    pub commits: BTreeMap<String, usize>,
}

/// Bytes hashed and encrypted in the primitive benches.
const BULK: usize = 64 * 1024;

/// Length of the message the signature primitives sign.
const SIGNED: usize = 256;

/// Signatures per batch of the `verify_batch` primitive (platform-std's).
const BATCH: usize = platform_std::ED25519_BATCH;

/// Sizes of the smaller batches measured (below [`BATCH`]).
const SMALL_BATCHES: [usize; 3] = [4, 16, 64];

/// Measures each primitive once per call (single thread).
pub fn primitives(c: &mut Criterion) {
    let mut g = c.benchmark_group("e_primitives");
    let signer = SignaturePrivateKey::from_slice(SUITE, &[7; 32]).expect("a seed");
    let public = signer.public_key();
    let message = [0x11u8; SIGNED];
    let signature = signer.sign(SUITE, &[&message]).expect("sign");
    g.bench_function("sign", |b| b.iter(|| signer.sign(SUITE, &[std::hint::black_box(&message)]).expect("sign")));
    g.bench_function("verify", |b| {
        b.iter(|| public.verify(SUITE, &[std::hint::black_box(&message)], &signature).expect("verify"))
    });
    // What RayonExecutor checks at once: BATCH signatures by as many keys.
    let signers: Vec<_> = (0..BATCH).map(|i| ed25519_dalek::SigningKey::from_bytes(&[i as u8 ^ 0x5a; 32])).collect();
    let keys: Vec<[u8; 32]> = signers.iter().map(|k| k.verifying_key().to_bytes()).collect();
    let signatures: Vec<_> = signers.iter().map(|k| ed25519_dalek::Signer::sign(k, &message)).collect();
    let messages: Vec<&[u8]> = vec![&message; BATCH];
    // From the keys' encodings, as a member receives them (decompressing
    // each key is a tenth of a batch).
    let batch = |k: usize| {
        let keys: Vec<_> = keys[..k].iter().map(|b| ed25519_dalek::VerifyingKey::from_bytes(b).expect("a key")).collect();
        ed25519_dalek::verify_batch(std::hint::black_box(&messages[..k]), &signatures[..k], &keys).expect("verify")
    };
    g.bench_function("verify_batch", |b| b.iter(|| batch(BATCH)));
    // Smaller batches cost more per signature: the floor of a batch of k
    // interpolates between these sizes (and a single verification).
    for k in SMALL_BATCHES {
        g.bench_function(format!("verify_batch_{k}"), |b| b.iter(|| batch(k)));
    }
    g.bench_function("derive_key_pair", |b| b.iter(|| derive_key_pair(SUITE, std::hint::black_box(&[3; 32])).expect("derive")));
    let (sk, pk) = derive_key_pair(SUITE, &[9; 32]).expect("derive");
    let info = info_hash(SUITE, &[b"bench", &[0; 64]]).expect("info hash");
    // A GroupSecrets-sized plaintext.
    let plain = [0x22u8; 80];
    g.bench_function("hpke_seal", |b| {
        b.iter(|| {
            let mut buf = plain;
            seal_base(SUITE, &pk, &info, &[], &mut buf, std::hint::black_box(&[5; 32])).expect("seal")
        })
    });
    let mut sealed_buf = plain;
    let sealed = seal_base(SUITE, &pk, &info, &[], &mut sealed_buf, &[5; 32]).expect("seal");
    g.bench_function("hpke_open", |b| {
        b.iter(|| {
            let mut buf = sealed_buf;
            open_base(SUITE, &sk, &sealed.kem_output, &info, &[], &mut buf, &sealed.tag).expect("open");
            buf
        })
    });
    let bulk = vec![0x33u8; BULK];
    g.bench_function("sha256_64kib", |b| b.iter(|| SUITE.hash(&[std::hint::black_box(&bulk)])));
    g.bench_function("sha512_64kib", |b| b.iter(|| <sha2::Sha512 as sha2::Digest>::digest(std::hint::black_box(&bulk))));
    let mut small = vec![0x44u8; 1024];
    g.bench_function("aead_1kib", |b| {
        b.iter(|| {
            SUITE
                .aead_seal(&[1; 32], &[2; 12], &[], std::hint::black_box(&mut small))
                .expect("seal")
        })
    });
    let mut buf = bulk.clone();
    g.bench_function("aead_64kib", |b| {
        b.iter(|| SUITE.aead_seal(&[1; 32], &[2; 12], &[], std::hint::black_box(&mut buf)).expect("seal"))
    });
    g.finish();
}

/// Counts of one scenario; `*_par` ones are independent (divided over cores).
#[derive(Default)]
struct Counts {
    sign: usize,
    verify: usize,
    verify_par: usize,
    /// Independent signature checks a batch verifier runs.
    verify_batch_par: usize,
    seal_par: usize,
    open: usize,
    derive: usize,
    hash_bytes: usize,
    /// Bytes an Ed25519 signature hashes with SHA-512 (long messages only).
    hash512_bytes: usize,
    aead_bytes: usize,
    /// AEAD calls, each at its fixed cost (beside `aead_bytes`).
    aead_calls: usize,
}

impl Counts {
    fn json(&self) -> String {
        format!(
            "{{\"sign\": {}, \"verify\": {}, \"verify_par\": {}, \"verify_batch_par\": {}, \"hpke_seal_par\": {}, \"hpke_open\": {}, \"derive_key_pair\": {}, \"hash_bytes\": {}, \"hash512_bytes\": {}, \"aead_bytes\": {}, \"aead_calls\": {}}}",
            self.sign,
            self.verify,
            self.verify_par,
            self.verify_batch_par,
            self.seal_par,
            self.open,
            self.derive,
            self.hash_bytes,
            self.hash512_bytes,
            self.aead_bytes,
            self.aead_calls
        )
    }
}

fn depth(n: usize) -> usize {
    n.next_power_of_two().trailing_zeros() as usize
}

/// Creating a Commit with path of `len` bytes in a tree of depth `d` with
/// `seals` copath resolution members.
fn commit_with_path(d: usize, seals: usize, len: usize) -> Counts {
    Counts { derive: d + 1, seal_par: seals, sign: 2, hash_bytes: 2 * len, hash512_bytes: 2 * len, ..Counts::default() }
}

/// Processing a Commit with path of `len` bytes at the far end of the tree.
fn process_path(len: usize) -> Counts {
    Counts { verify: 2, open: 1, derive: 1, hash_bytes: 2 * len, hash512_bytes: len, ..Counts::default() }
}

/// `count` independent signature checks as platform-std's executors run
/// them: one by one where a core's share is at most `ED25519_SINGLES`
/// (no batch tables on the heap), else in batches.
fn checks(count: usize) -> Counts {
    let cores = std::thread::available_parallelism().map(usize::from).unwrap_or(1);
    match count.div_ceil(cores) <= platform_std::ED25519_SINGLES {
        true => Counts { verify_par: count, ..Counts::default() },
        false => Counts { verify_batch_par: count, ..Counts::default() },
    }
}

fn join(n: usize, welcome: usize) -> Counts {
    let leaves = checks(n);
    Counts { open: 1, verify: 1, hash_bytes: 2 * welcome, aead_bytes: welcome, ..leaves }
}

/// Writes the counts of every scenario run to `$CRITERION_HOME/mls-floor.json`.
pub fn write_counts(sizes: &[usize], bigs: &[usize], measured: &Sizes) {
    let Ok(dir) = std::env::var("CRITERION_HOME") else {
        eprintln!("CRITERION_HOME unset: floor counts not written");
        return;
    };
    let mut rows: Vec<(String, Counts)> = Vec::new();
    for &n in sizes.iter().filter(|&&n| n <= 1024) {
        let m = n - 1;
        let d = depth(n);
        if let Some(&w) = measured.welcome.get(&n) {
            let kp = measured.key_packages.get(&n).copied().unwrap_or(0);
            rows.push((
                format!("a_commit_{n}"),
                Counts {
                    seal_par: m,
                    sign: 2,
                    hash_bytes: kp + 2 * w,
                    aead_bytes: w,
                    ..checks(2 * m)
                },
            ));
            rows.push((format!("a_join_{n}"), join(n, w)));
        }
        // The Commit's bytes (0 if scenario b did not run).
        let len = |tree: &str| measured.commits.get(&format!("{tree}_{n}")).copied().unwrap_or(0);
        let commit = |seals, tree| commit_with_path(d, seals, len(tree));
        let process = |tree| process_path(len(tree));
        rows.push((format!("b_full_commit_{n}"), commit(d, "full")));
        rows.push((format!("b_full_process_{n}"), process("full")));
        rows.push((format!("b_sparse_commit_{n}"), commit(m, "sparse")));
        rows.push((format!("b_sparse_process_{n}"), process("sparse")));
    }
    let beyond = 1024 - SIGNED;
    let c = |sign, verify| Counts { sign, verify, aead_bytes: 1024, aead_calls: 2, ..Counts::default() };
    rows.push(("c_protect".into(), Counts { hash512_bytes: 2 * beyond, ..c(1, 0) }));
    rows.push(("c_unprotect".into(), Counts { hash512_bytes: beyond, ..c(0, 1) }));
    for &big in bigs {
        if let Some(&w) = measured.welcome.get(&big) {
            rows.push((format!("d_join_{big}"), join(big, w)));
        }
        // Scenario b in the sparse tree of d and in a full tree.
        let len = |tree: &str| measured.commits.get(&format!("{tree}_{big}")).copied().unwrap_or(0);
        rows.push((format!("b_sparse_commit_{big}"), commit_with_path(depth(big), big - 1, len("sparse"))));
        rows.push((format!("b_sparse_process_{big}"), process_path(len("sparse"))));
        rows.push((format!("b_full_commit_{big}"), commit_with_path(depth(big), depth(big), len("full"))));
        rows.push((format!("b_full_process_{big}"), process_path(len("full"))));
    }
    let cores = std::thread::available_parallelism().map(usize::from).unwrap_or(1);
    let small = SMALL_BATCHES.map(|k| k.to_string()).join(", ");
    let mut out = format!("{{\"cores\": {cores}, \"bulk_bytes\": {BULK}, \"batch\": {BATCH}, \"small_batches\": [{small}], \"scenarios\": {{\n");
    for (i, (name, counts)) in rows.iter().enumerate() {
        let sep = if i + 1 < rows.len() { "," } else { "" };
        let _ = writeln!(out, "  \"{name}\": {}{sep}", counts.json());
    }
    out.push_str("}}\n");
    let path = std::path::Path::new(&dir).join("mls-floor.json");
    if let Err(e) = std::fs::create_dir_all(&dir).and_then(|_| std::fs::write(&path, out)) {
        eprintln!("{}: {e}", path.display());
    }
}
