//! Helpers shared by the conformance tests: locating and reading the official
//! MLS test vectors and interop configs (in-repo copies under `tests/data/`,
//! see `tests/data/README.md`), and counting cases.
#![deny(missing_docs)]

pub mod cli;
pub mod member;
pub mod map_storage;

pub use map_storage::MapStorage;
pub mod vectors;

use mls_nostd::crypto::CipherSuite;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where the official vectors are: `$MLS_TEST_VECTORS`, else the repository's
/// copy in `tests/data/test-vectors`.
pub fn vectors_dir() -> PathBuf {
    match std::env::var_os("MLS_TEST_VECTORS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/test-vectors"),
    }
}

/// Where the official interop configs are: `$MLS_INTEROP_CONFIGS`, else the
/// repository's copy in `tests/data/interop-configs`.
pub fn interop_configs_dir() -> PathBuf {
    match std::env::var_os("MLS_INTEROP_CONFIGS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/interop-configs"),
    }
}

/// Private-key bytes of `suite`'s signature scheme (or, with `hpke`, of its
/// KEM) made from `bytes`: repeated or cut to the scheme's length; for the
/// NIST curves the first byte is cleared, so that the scalar is below the
/// order. Ed25519 and X25519 keys are `bytes` as given (32 bytes).
pub fn key_bytes(suite: CipherSuite, bytes: &[u8], hpke: bool) -> Vec<u8> {
    let len = if hpke { suite.kem().private_len() } else { suite.signature_scheme().private_len() };
    let mut v: Vec<u8> = bytes.iter().copied().cycle().take(len).collect();
    let nist = if hpke { suite.kem().candidate_bitmask().is_some() } else { suite.signature_scheme().is_ecdsa() };
    if nist {
        v[0] = 0;
    }
    v
}

/// A signature key of `suite` from `bytes` ([`key_bytes`]).
pub fn signer(suite: CipherSuite, bytes: &[u8]) -> mls_nostd::crypto::signature::SignaturePrivateKey {
    mls_nostd::crypto::signature::SignaturePrivateKey::from_slice(suite, &key_bytes(suite, bytes, false))
        .expect("a valid signature key")
}

/// An HPKE private key of `suite` from `bytes` ([`key_bytes`]).
pub fn hpke_key(suite: CipherSuite, bytes: &[u8]) -> mls_nostd::crypto::hpke::HpkePrivateKey {
    mls_nostd::crypto::hpke::HpkePrivateKey::from_slice(suite, &key_bytes(suite, bytes, true))
        .expect("a valid HPKE key")
}

/// Reads and parses one vector file.
pub fn load(name: &str) -> Vec<Value> {
    let path = vectors_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e} (set MLS_TEST_VECTORS)", path.display()));
    match serde_json::from_str(&text).expect("vector file is JSON") {
        Value::Array(cases) => cases,
        _ => panic!("{name}: expected a JSON array"),
    }
}

/// Hex-decodes a string field.
pub fn hex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("valid hex")
}

/// An unsigned integer field.
pub fn uint(v: &Value) -> u64 {
    v.as_u64().expect("unsigned integer")
}

/// A string field.
pub fn string(v: &Value) -> &str {
    v.as_str().expect("string")
}

/// Counts the cases of a vector file that ran and those skipped (by suite).
#[derive(Default)]
pub struct Tally {
    ran: usize,
    skipped: BTreeMap<u64, usize>,
}

impl Tally {
    /// The suite of `case` if this build implements it; otherwise counts it as
    /// skipped and returns `None`.
    pub fn suite(&mut self, case: &Value) -> Option<CipherSuite> {
        let id = uint(&case["cipher_suite"]);
        let suite = u16::try_from(id).ok().and_then(CipherSuite::from_u16);
        if suite.is_none() {
            *self.skipped.entry(id).or_default() += 1;
        }
        suite
    }

    /// Records one case that ran (all its assertions passed).
    pub fn ran(&mut self) {
        self.ran += 1;
    }

    /// Prints the counts and asserts that `expected` cases ran.
    pub fn finish(&self, file: &str, expected: usize) {
        println!("{}", vectors::tally_line(file, self.ran, &self.skipped));
        assert_eq!(self.ran, expected, "{file}: cases ran");
    }
}

/// Number of cases of the suites this build implements (all seven in this
/// crate's build) in a file: what a vector test must run.
pub fn supported_cases(cases: &[Value]) -> usize {
    cases
        .iter()
        .filter(|c| u16::try_from(uint(&c["cipher_suite"])).ok().and_then(CipherSuite::from_u16).is_some())
        .count()
}

/// A deterministic RNG for tests (SplitMix64). Not for production use.
pub struct TestRng(pub u64);

impl rand_core::TryRng for TestRng {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.try_next_u64()? as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Ok(z ^ (z >> 31))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dst.chunks_mut(8) {
            let v = self.try_next_u64()?.to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for TestRng {}

/// A signed LeafNode with `leaf_node_source = key_package`, basic credential
/// `identity`, keys derived from `seed` (or the given encryption key).
pub fn test_leaf(
    suite: CipherSuite,
    identity: &[u8],
    seed: u64,
    encryption_key: Option<&[u8]>,
) -> (Vec<u8>, mls_nostd::crypto::signature::SignaturePrivateKey) {
    use mls_nostd::credential::Credential;
    use mls_nostd::crypto::signature::SignaturePrivateKey;
    use mls_nostd::extensions::{Extensions, U16List};
    use mls_nostd::leaf_node::{Capabilities, LeafNode, LeafNodeFields, LeafNodeSource, Lifetime};
    let mut seed_bytes = [0x5au8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_be_bytes());
    let sk: SignaturePrivateKey = signer(suite, &seed_bytes);
    let pk = sk.public_key();
    let enc: Vec<u8> = match encryption_key {
        Some(k) => k.to_vec(),
        None => mls_nostd::crypto::hpke::derive_key_pair(suite, &seed_bytes).unwrap().1.as_bytes().to_vec(),
    };
    let versions = [0u8, 1];
    let suites = suite.to_u16().to_be_bytes();
    let creds = [0u8, 1];
    let fields = LeafNodeFields {
        encryption_key: &enc,
        signature_key: pk.as_bytes(),
        credential: Credential::Basic { identity },
        capabilities: Capabilities {
            versions: U16List::from_body(&versions).unwrap(),
            cipher_suites: U16List::from_body(&suites).unwrap(),
            extensions: U16List::default(),
            proposals: U16List::default(),
            credentials: U16List::from_body(&creds).unwrap(),
        },
        source: LeafNodeSource::KeyPackage(Lifetime { not_before: 0, not_after: u64::MAX }),
        extensions: Extensions::default(),
    };
    let mut buf = vec![0u8; 1024];
    let n = LeafNode::sign_into(suite, &fields, None, &sk, &mut buf).unwrap().len();
    buf.truncate(n);
    (buf, sk)
}
