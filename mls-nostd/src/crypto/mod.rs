//! Cipher suites and the primitives MLS builds on (RFC 9420 §5.1, RFC 9180).
//!
//! A [`CipherSuite`] is a plain value; every primitive dispatches on it with a
//! `match` whose arms exist only for the suites this build enables (cargo
//! features `suite-1` … `suite-7`), so a suite left out costs no flash. The
//! primitives are grouped by family, each family a module with the same
//! functions ([`dhkem`] for the KEMs' Diffie-Hellman groups, [`signature`]
//! for the signature schemes); hash, KDF, MAC and AEAD are methods of
//! [`CipherSuite`] here, computed by RustCrypto (`software`) or, with the
//! feature `engine`, by a hardware engine the program names at link time
//! ([`engine`]). Every size constant is the maximum over the enabled suites.
//!
//! | suite | KEM | AEAD | hash | signature |
//! |---|---|---|---|---|
//! | 0x0001 | DHKEM(X25519) | AES-128-GCM | SHA-256 | Ed25519 |
//! | 0x0002 | DHKEM(P-256) | AES-128-GCM | SHA-256 | ECDSA P-256 |
//! | 0x0003 | DHKEM(X25519) | ChaCha20Poly1305 | SHA-256 | Ed25519 |
//! | 0x0004 | DHKEM(X448) | AES-256-GCM | SHA-512 | Ed448 |
//! | 0x0005 | DHKEM(P-521) | AES-256-GCM | SHA-512 | ECDSA P-521 |
//! | 0x0006 | DHKEM(X448) | ChaCha20Poly1305 | SHA-512 | Ed448 |
//! | 0x0007 | DHKEM(P-384) | AES-256-GCM | SHA-384 | ECDSA P-384 |

pub mod dhkem;
pub mod hpke;
pub mod labeled;
pub mod signature;
pub mod signer;
#[cfg(any(feature = "_p256", feature = "_p384", feature = "_p521"))]
mod nist;
mod software;
#[cfg(feature = "engine")]
pub mod engine;

// Where the hash, KDF, MAC and AEAD are computed: RustCrypto, or a crypto
// engine plugged in at link time (feature `engine`).
#[cfg(feature = "engine")]
use engine::backend;
#[cfg(not(feature = "engine"))]
use software as backend;

#[cfg(not(any(
    feature = "suite-1",
    feature = "suite-2",
    feature = "suite-3",
    feature = "suite-4",
    feature = "suite-5",
    feature = "suite-6",
    feature = "suite-7"
)))]
compile_error!("mls-nostd needs at least one cipher suite feature (suite-1 … suite-7)");

use hmac::Mac;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// The larger of two sizes (for the maxima over the enabled suites).
pub(crate) const fn max(a: usize, b: usize) -> usize {
    if a > b { a } else { b }
}

/// `n` if `on`, else 0.
pub(crate) const fn when(on: bool, n: usize) -> usize {
    if on { n } else { 0 }
}

/// Largest hash output (`Nh`) of the enabled suites, in bytes.
pub const MAX_HASH_LEN: usize = max(
    max(when(cfg!(feature = "_sha256"), 32), when(cfg!(feature = "_sha384"), 48)),
    when(cfg!(feature = "_sha512"), 64),
);
/// Largest AEAD key (`Nk`) of the enabled suites, in bytes.
pub const MAX_AEAD_KEY_LEN: usize = max(
    when(cfg!(any(feature = "suite-1", feature = "suite-2")), 16),
    when(
        cfg!(any(
            feature = "suite-3",
            feature = "suite-4",
            feature = "suite-5",
            feature = "suite-6",
            feature = "suite-7"
        )),
        32,
    ),
);
/// AEAD nonce length (`Nn`) of every suite, in bytes.
pub const AEAD_NONCE_LEN: usize = 12;
/// AEAD tag length of every suite, in bytes.
pub const AEAD_TAG_LEN: usize = 16;

/// Why a cryptographic operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum CryptoError {
    /// The cipher suite value is not one this build implements.
    UnsupportedCipherSuite,
    /// A key has the wrong length or is not a valid point.
    InvalidKey,
    /// A signature does not verify.
    InvalidSignature,
    /// An AEAD (or HPKE) ciphertext does not authenticate.
    DecryptionFailed,
    /// A Diffie-Hellman output was all zero (RFC 9180 §7.1.4).
    InvalidSharedSecret,
    /// A requested output length is not allowed (zero, too long for the KDF, or
    /// larger than the container).
    InvalidLength,
    /// The message is too long for the AEAD.
    MessageTooLong,
    /// `DeriveKeyPair` found no valid scalar in 256 candidates (RFC 9180
    /// §7.1.3; practically impossible).
    DeriveKeyPairError,
}

impl core::fmt::Display for CryptoError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::UnsupportedCipherSuite => "unsupported cipher suite",
            Self::InvalidKey => "invalid key",
            Self::InvalidSignature => "invalid signature",
            Self::DecryptionFailed => "decryption failed",
            Self::InvalidSharedSecret => "invalid Diffie-Hellman shared secret",
            Self::InvalidLength => "invalid output length",
            Self::MessageTooLong => "message too long",
            Self::DeriveKeyPairError => "DeriveKeyPair found no valid private key",
        })
    }
}

impl core::error::Error for CryptoError {}

/// An MLS cipher suite (RFC 9420 §17.1). Only the suites of the enabled
/// features exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum CipherSuite {
    /// 0x0001 `MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519`, the mandatory suite.
    #[cfg(feature = "suite-1")]
    X25519Aes128GcmSha256Ed25519,
    /// 0x0002 `MLS_128_DHKEMP256_AES128GCM_SHA256_P256`.
    #[cfg(feature = "suite-2")]
    P256Aes128GcmSha256P256,
    /// 0x0003 `MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519`.
    #[cfg(feature = "suite-3")]
    X25519ChaCha20Poly1305Sha256Ed25519,
    /// 0x0004 `MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448`.
    #[cfg(feature = "suite-4")]
    X448Aes256GcmSha512Ed448,
    /// 0x0005 `MLS_256_DHKEMP521_AES256GCM_SHA512_P521`.
    #[cfg(feature = "suite-5")]
    P521Aes256GcmSha512P521,
    /// 0x0006 `MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448`.
    #[cfg(feature = "suite-6")]
    X448ChaCha20Poly1305Sha512Ed448,
    /// 0x0007 `MLS_256_DHKEMP384_AES256GCM_SHA384_P384`.
    #[cfg(feature = "suite-7")]
    P384Aes256GcmSha384P384,
}

/// The hash function of a suite (also its KDF's and MAC's). Only those of
/// the enabled suites exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum HashAlg {
    /// SHA-256 (suites 1, 2, 3).
    #[cfg(feature = "_sha256")]
    Sha256,
    /// SHA-384 (suite 7).
    #[cfg(feature = "_sha384")]
    Sha384,
    /// SHA-512 (suites 4, 5, 6).
    #[cfg(feature = "_sha512")]
    Sha512,
}

impl HashAlg {
    /// `Nh`: bytes of a hash.
    pub const fn output_len(self) -> usize {
        match self {
            #[cfg(feature = "_sha256")]
            HashAlg::Sha256 => 32,
            #[cfg(feature = "_sha384")]
            HashAlg::Sha384 => 48,
            #[cfg(feature = "_sha512")]
            HashAlg::Sha512 => 64,
        }
    }
}

/// The AEAD of a suite. Only those of the enabled suites exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum AeadAlg {
    /// AES-128-GCM (suites 1, 2).
    #[cfg(any(feature = "suite-1", feature = "suite-2"))]
    Aes128Gcm,
    /// AES-256-GCM (suites 4, 5, 7).
    #[cfg(any(feature = "suite-4", feature = "suite-5", feature = "suite-7"))]
    Aes256Gcm,
    /// ChaCha20Poly1305 (suites 3, 6).
    #[cfg(feature = "_chacha")]
    ChaCha20Poly1305,
}

/// Runs `$body` with `$d` bound to the digest type of `$alg` (a [`HashAlg`]).
macro_rules! with_hash {
    ($alg:expr, $d:ident => $body:expr) => {
        match $alg {
            #[cfg(feature = "_sha256")]
            HashAlg::Sha256 => {
                type $d = backend::Sha256;
                $body
            }
            #[cfg(feature = "_sha384")]
            HashAlg::Sha384 => {
                type $d = backend::Sha384;
                $body
            }
            #[cfg(feature = "_sha512")]
            HashAlg::Sha512 => {
                type $d = backend::Sha512;
                $body
            }
        }
    };
}

impl CipherSuite {
    /// Every suite this build implements, in registry order.
    pub const ALL: &'static [CipherSuite] = &[
        #[cfg(feature = "suite-1")]
        Self::X25519Aes128GcmSha256Ed25519,
        #[cfg(feature = "suite-2")]
        Self::P256Aes128GcmSha256P256,
        #[cfg(feature = "suite-3")]
        Self::X25519ChaCha20Poly1305Sha256Ed25519,
        #[cfg(feature = "suite-4")]
        Self::X448Aes256GcmSha512Ed448,
        #[cfg(feature = "suite-5")]
        Self::P521Aes256GcmSha512P521,
        #[cfg(feature = "suite-6")]
        Self::X448ChaCha20Poly1305Sha512Ed448,
        #[cfg(feature = "suite-7")]
        Self::P384Aes256GcmSha384P384,
    ];

    /// A suite of this build that stands in where no group exists yet
    /// (empty slots): the first enabled one. Nothing is computed with it.
    pub const PLACEHOLDER: CipherSuite = match Self::ALL.first() {
        Some(s) => *s,
        None => panic!("no cipher suite enabled"),
    };

    /// The suite with the registered value `v`, if this build implements it.
    pub const fn from_u16(v: u16) -> Option<Self> {
        match v {
            #[cfg(feature = "suite-1")]
            0x0001 => Some(Self::X25519Aes128GcmSha256Ed25519),
            #[cfg(feature = "suite-2")]
            0x0002 => Some(Self::P256Aes128GcmSha256P256),
            #[cfg(feature = "suite-3")]
            0x0003 => Some(Self::X25519ChaCha20Poly1305Sha256Ed25519),
            #[cfg(feature = "suite-4")]
            0x0004 => Some(Self::X448Aes256GcmSha512Ed448),
            #[cfg(feature = "suite-5")]
            0x0005 => Some(Self::P521Aes256GcmSha512P521),
            #[cfg(feature = "suite-6")]
            0x0006 => Some(Self::X448ChaCha20Poly1305Sha512Ed448),
            #[cfg(feature = "suite-7")]
            0x0007 => Some(Self::P384Aes256GcmSha384P384),
            _ => None,
        }
    }

    /// The registered value of this suite.
    pub const fn to_u16(self) -> u16 {
        match self {
            #[cfg(feature = "suite-1")]
            Self::X25519Aes128GcmSha256Ed25519 => 0x0001,
            #[cfg(feature = "suite-2")]
            Self::P256Aes128GcmSha256P256 => 0x0002,
            #[cfg(feature = "suite-3")]
            Self::X25519ChaCha20Poly1305Sha256Ed25519 => 0x0003,
            #[cfg(feature = "suite-4")]
            Self::X448Aes256GcmSha512Ed448 => 0x0004,
            #[cfg(feature = "suite-5")]
            Self::P521Aes256GcmSha512P521 => 0x0005,
            #[cfg(feature = "suite-6")]
            Self::X448ChaCha20Poly1305Sha512Ed448 => 0x0006,
            #[cfg(feature = "suite-7")]
            Self::P384Aes256GcmSha384P384 => 0x0007,
        }
    }

    /// The suite's hash (also its KDF's and MAC's).
    pub const fn hash_alg(self) -> HashAlg {
        match self {
            #[cfg(feature = "suite-1")]
            Self::X25519Aes128GcmSha256Ed25519 => HashAlg::Sha256,
            #[cfg(feature = "suite-2")]
            Self::P256Aes128GcmSha256P256 => HashAlg::Sha256,
            #[cfg(feature = "suite-3")]
            Self::X25519ChaCha20Poly1305Sha256Ed25519 => HashAlg::Sha256,
            #[cfg(feature = "suite-4")]
            Self::X448Aes256GcmSha512Ed448 => HashAlg::Sha512,
            #[cfg(feature = "suite-5")]
            Self::P521Aes256GcmSha512P521 => HashAlg::Sha512,
            #[cfg(feature = "suite-6")]
            Self::X448ChaCha20Poly1305Sha512Ed448 => HashAlg::Sha512,
            #[cfg(feature = "suite-7")]
            Self::P384Aes256GcmSha384P384 => HashAlg::Sha384,
        }
    }

    /// The suite's AEAD.
    pub const fn aead_alg(self) -> AeadAlg {
        match self {
            #[cfg(feature = "suite-1")]
            Self::X25519Aes128GcmSha256Ed25519 => AeadAlg::Aes128Gcm,
            #[cfg(feature = "suite-2")]
            Self::P256Aes128GcmSha256P256 => AeadAlg::Aes128Gcm,
            #[cfg(feature = "suite-3")]
            Self::X25519ChaCha20Poly1305Sha256Ed25519 => AeadAlg::ChaCha20Poly1305,
            #[cfg(feature = "suite-4")]
            Self::X448Aes256GcmSha512Ed448 => AeadAlg::Aes256Gcm,
            #[cfg(feature = "suite-5")]
            Self::P521Aes256GcmSha512P521 => AeadAlg::Aes256Gcm,
            #[cfg(feature = "suite-6")]
            Self::X448ChaCha20Poly1305Sha512Ed448 => AeadAlg::ChaCha20Poly1305,
            #[cfg(feature = "suite-7")]
            Self::P384Aes256GcmSha384P384 => AeadAlg::Aes256Gcm,
        }
    }

    /// The suite's KEM (RFC 9180 §7.1).
    pub const fn kem(self) -> dhkem::Kem {
        match self {
            #[cfg(feature = "suite-1")]
            Self::X25519Aes128GcmSha256Ed25519 => dhkem::Kem::X25519,
            #[cfg(feature = "suite-2")]
            Self::P256Aes128GcmSha256P256 => dhkem::Kem::P256,
            #[cfg(feature = "suite-3")]
            Self::X25519ChaCha20Poly1305Sha256Ed25519 => dhkem::Kem::X25519,
            #[cfg(feature = "suite-4")]
            Self::X448Aes256GcmSha512Ed448 => dhkem::Kem::X448,
            #[cfg(feature = "suite-5")]
            Self::P521Aes256GcmSha512P521 => dhkem::Kem::P521,
            #[cfg(feature = "suite-6")]
            Self::X448ChaCha20Poly1305Sha512Ed448 => dhkem::Kem::X448,
            #[cfg(feature = "suite-7")]
            Self::P384Aes256GcmSha384P384 => dhkem::Kem::P384,
        }
    }

    /// The suite's signature scheme (RFC 9420 §5.1.2).
    pub const fn signature_scheme(self) -> signature::Scheme {
        match self {
            #[cfg(feature = "suite-1")]
            Self::X25519Aes128GcmSha256Ed25519 => signature::Scheme::Ed25519,
            #[cfg(feature = "suite-2")]
            Self::P256Aes128GcmSha256P256 => signature::Scheme::EcdsaP256,
            #[cfg(feature = "suite-3")]
            Self::X25519ChaCha20Poly1305Sha256Ed25519 => signature::Scheme::Ed25519,
            #[cfg(feature = "suite-4")]
            Self::X448Aes256GcmSha512Ed448 => signature::Scheme::Ed448,
            #[cfg(feature = "suite-5")]
            Self::P521Aes256GcmSha512P521 => signature::Scheme::EcdsaP521,
            #[cfg(feature = "suite-6")]
            Self::X448ChaCha20Poly1305Sha512Ed448 => signature::Scheme::Ed448,
            #[cfg(feature = "suite-7")]
            Self::P384Aes256GcmSha384P384 => signature::Scheme::EcdsaP384,
        }
    }

    /// `Nh`: the hash (and KDF) output length.
    pub const fn hash_len(self) -> usize {
        self.hash_alg().output_len()
    }

    /// `Nk`: the AEAD key length.
    pub const fn aead_key_len(self) -> usize {
        match self.aead_alg() {
            #[cfg(any(feature = "suite-1", feature = "suite-2"))]
            AeadAlg::Aes128Gcm => 16,
            #[cfg(any(feature = "suite-4", feature = "suite-5", feature = "suite-7"))]
            AeadAlg::Aes256Gcm => 32,
            #[cfg(feature = "_chacha")]
            AeadAlg::ChaCha20Poly1305 => 32,
        }
    }

    /// `Nn`: the AEAD nonce length.
    pub const fn aead_nonce_len(self) -> usize {
        AEAD_NONCE_LEN
    }

    /// HPKE identifiers (RFC 9180 §7): KEM, KDF, AEAD.
    pub const fn hpke_ids(self) -> (u16, u16, u16) {
        let kdf = match self.hash_alg() {
            #[cfg(feature = "_sha256")]
            HashAlg::Sha256 => 0x0001,
            #[cfg(feature = "_sha384")]
            HashAlg::Sha384 => 0x0002,
            #[cfg(feature = "_sha512")]
            HashAlg::Sha512 => 0x0003,
        };
        let aead = match self.aead_alg() {
            #[cfg(any(feature = "suite-1", feature = "suite-2"))]
            AeadAlg::Aes128Gcm => 0x0001,
            #[cfg(any(feature = "suite-4", feature = "suite-5", feature = "suite-7"))]
            AeadAlg::Aes256Gcm => 0x0002,
            #[cfg(feature = "_chacha")]
            AeadAlg::ChaCha20Poly1305 => 0x0003,
        };
        (self.kem().id(), kdf, aead)
    }

    /// `Hash(parts[0] || parts[1] || ...)`.
    pub fn hash(self, parts: &[&[u8]]) -> HashValue {
        let mut h = self.hasher();
        for p in parts {
            h.update(p);
        }
        h.finish()
    }

    /// A running hash, for inputs too large or too scattered to concatenate.
    pub fn hasher(self) -> Hasher {
        Hasher(backend::hash_start(self.hash_alg()))
    }

    /// `KDF.Extract(salt, ikm)` where `ikm` is the concatenation of `ikm_parts`.
    pub fn kdf_extract(self, salt: &[u8], ikm_parts: &[&[u8]]) -> Secret {
        with_hash!(self.hash_alg(), D => {
            let mut ex = backend::HkdfExtract::<D>::new(Some(salt));
            for p in ikm_parts {
                ex.input_ikm(p);
            }
            let (mut prk, _) = ex.finalize();
            let s = Secret::from_slice(&prk);
            prk.zeroize();
            s.unwrap_or_default()
        })
    }

    /// `KDF.Expand(prk, info, out.len())` where `info` is the concatenation of
    /// `info_parts`.
    pub fn kdf_expand(self, prk: &[u8], info_parts: &[&[u8]], out: &mut [u8]) -> Result<(), CryptoError> {
        self.kdf_expand_each(prk, &mut [(info_parts, out)])
    }

    /// [`Self::kdf_expand`] for each `(info_parts, out)` of `jobs`, from one
    /// `prk`: its HMAC is keyed once, not once per output (a node's two
    /// children, a ratchet's key and nonce).
    pub fn kdf_expand_each(self, prk: &[u8], jobs: &mut [(&[&[u8]], &mut [u8])]) -> Result<(), CryptoError> {
        with_hash!(self.hash_alg(), D => {
            let hk = backend::Hkdf::<D>::from_prk(prk).map_err(|_| CryptoError::InvalidKey)?;
            for (info_parts, out) in jobs.iter_mut() {
                hk.expand_multi_info(info_parts, out).map_err(|_| CryptoError::InvalidLength)?;
            }
            Ok(())
        })
    }

    /// `MAC(key, data)`: HMAC with the suite's hash (RFC 9420 §5.1).
    pub fn mac(self, key: &[u8], data_parts: &[&[u8]]) -> HashValue {
        with_hash!(self.hash_alg(), D => {
            // HMAC accepts keys of any length, so construction cannot fail.
            let mut m = match <backend::Hmac<D> as hmac::KeyInit>::new_from_slice(key) {
                Ok(m) => m,
                Err(_) => return HashValue::default(),
            };
            for p in data_parts {
                m.update(p);
            }
            HashValue::from_slice(&m.finalize().into_bytes()).unwrap_or_default()
        })
    }

    /// Checks `tag == MAC(key, data)` in constant time.
    pub fn verify_mac(self, key: &[u8], data_parts: &[&[u8]], tag: &[u8]) -> bool {
        self.mac(key, data_parts).ct_eq_bytes(tag)
    }

    /// `AEAD.Seal` in place: encrypts `buf`, returns the detached tag.
    pub fn aead_seal(
        self,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; AEAD_TAG_LEN], CryptoError> {
        backend::aead_seal(self.aead_alg(), key, nonce, aad, buf)
    }

    /// `AEAD.Open` in place: checks `tag` and decrypts `buf`. On failure `buf`
    /// is zeroed so no unauthenticated plaintext is left behind.
    pub fn aead_open(
        self,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8],
    ) -> Result<(), CryptoError> {
        let r = backend::aead_open(self.aead_alg(), key, nonce, aad, buf, tag);
        if r.is_err() {
            buf.zeroize();
        }
        r
    }
}

/// SHA-256 of the concatenation of `parts`, whatever the enabled suites: the
/// integrity hash of stored records (not a suite's hash).
pub fn sha256(parts: &[&[u8]]) -> HashValue {
    let mut h = Hasher::sha256();
    for p in parts {
        h.update(p);
    }
    h.finish()
}

/// An incremental hash with the suite's hash function.
#[derive(Clone)]
pub struct Hasher(backend::HashState);

impl Hasher {
    /// A SHA-256 hasher whatever the enabled suites (see [`sha256`]).
    pub fn sha256() -> Self {
        Self(backend::sha256_start())
    }

    /// Feeds more input.
    pub fn update(&mut self, data: &[u8]) {
        backend::hash_update(&mut self.0, data)
    }

    /// The hash of everything fed.
    pub fn finish(self) -> HashValue {
        let mut out = [0u8; HASH_VALUE_CAP];
        let len = backend::hash_finish(self.0, &mut out);
        HashValue::from_slice(out.get(..len).unwrap_or(&[])).unwrap_or_default()
    }
}

/// A public hash output of at most [`MAX_HASH_LEN`] bytes (a reference, a
/// transcript hash, a tree hash). SHA-256 values fit whatever the suites.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HashValue {
    bytes: [u8; HASH_VALUE_CAP],
    len: u8,
}

/// Capacity of a [`HashValue`]: the suites' `Nh`, and 32 for SHA-256.
const HASH_VALUE_CAP: usize = max(MAX_HASH_LEN, 32);

impl HashValue {
    /// The empty hash value (e.g. the confirmed transcript hash of epoch 0).
    pub const EMPTY: Self = Self { bytes: [0; HASH_VALUE_CAP], len: 0 };

    /// Copies a hash value; fails if longer than [`MAX_HASH_LEN`] (or 32).
    pub fn from_slice(v: &[u8]) -> Result<Self, CryptoError> {
        let mut bytes = [0u8; HASH_VALUE_CAP];
        bytes.get_mut(..v.len()).ok_or(CryptoError::InvalidLength)?.copy_from_slice(v);
        Ok(Self { bytes, len: v.len() as u8 })
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// Constant-time comparison with `other`.
    pub fn ct_eq_bytes(&self, other: &[u8]) -> bool {
        self.as_bytes().ct_eq(other).into()
    }
}

impl Default for HashValue {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl core::fmt::Debug for HashValue {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl AsRef<[u8]> for HashValue {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

/// A secret of at most [`MAX_HASH_LEN`] bytes: zeroized on drop, compared in
/// constant time, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Secret {
    bytes: [u8; MAX_HASH_LEN],
    len: u8,
}

impl Secret {
    /// The empty secret.
    pub const EMPTY: Self = Self { bytes: [0; MAX_HASH_LEN], len: 0 };

    /// `len` zero bytes (RFC 9420 uses `0` vectors of length `Nh`).
    pub fn zero(len: usize) -> Result<Self, CryptoError> {
        if len > MAX_HASH_LEN {
            return Err(CryptoError::InvalidLength);
        }
        Ok(Self { bytes: [0; MAX_HASH_LEN], len: len as u8 })
    }

    /// Copies a secret; fails if longer than [`MAX_HASH_LEN`].
    pub fn from_slice(v: &[u8]) -> Result<Self, CryptoError> {
        let mut s = Self::zero(v.len())?;
        s.as_mut_bytes().copy_from_slice(v);
        Ok(s)
    }

    /// The secret bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// The secret bytes, writable.
    pub fn as_mut_bytes(&mut self) -> &mut [u8] {
        self.bytes.get_mut(..usize::from(self.len)).unwrap_or(&mut [])
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// True for a zero-length secret.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Default for Secret {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl ConstantTimeEq for Secret {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        self.as_bytes().ct_eq(other.as_bytes())
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for Secret {}

impl core::fmt::Debug for Secret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Secret({} bytes)", self.len)
    }
}
