//! Cipher suites and the primitives MLS builds on (RFC 9420 §5.1, RFC 9180).
//!
//! A [`CipherSuite`] is a plain value; every primitive dispatches on it with a
//! `match`, so adding a suite (e.g. P-256, suite 0x0002) adds arms here and
//! changes no caller. Suites 0x0001 and 0x0003 share X25519, SHA-256 and
//! Ed25519 and differ only in their AEAD.

pub mod hpke;
pub mod labeled;
pub mod signature;

use aes_gcm::Aes128Gcm;
use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{AeadInOut, KeyInit, inout::InOutBuf};
use hkdf::{Hkdf, HkdfExtract};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Largest hash output (`Nh`) of any supported suite, in bytes.
pub const MAX_HASH_LEN: usize = 32;
/// Largest AEAD key (`Nk`) of any supported suite, in bytes.
pub const MAX_AEAD_KEY_LEN: usize = 32;
/// AEAD nonce length (`Nn`) of every supported suite, in bytes.
pub const AEAD_NONCE_LEN: usize = 12;
/// AEAD tag length of every supported suite, in bytes.
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
        })
    }
}

impl core::error::Error for CryptoError {}

/// An MLS cipher suite (RFC 9420 §17.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum CipherSuite {
    /// 0x0001 `MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519`, the mandatory suite.
    X25519Aes128GcmSha256Ed25519,
    /// 0x0003 `MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519`.
    X25519ChaCha20Poly1305Sha256Ed25519,
}

impl CipherSuite {
    /// Every suite this build implements.
    pub const ALL: [CipherSuite; 2] =
        [Self::X25519Aes128GcmSha256Ed25519, Self::X25519ChaCha20Poly1305Sha256Ed25519];

    /// The suite with the registered value `v`, if implemented.
    pub const fn from_u16(v: u16) -> Option<Self> {
        match v {
            0x0001 => Some(Self::X25519Aes128GcmSha256Ed25519),
            0x0003 => Some(Self::X25519ChaCha20Poly1305Sha256Ed25519),
            _ => None,
        }
    }

    /// The registered value of this suite.
    pub const fn to_u16(self) -> u16 {
        match self {
            Self::X25519Aes128GcmSha256Ed25519 => 0x0001,
            Self::X25519ChaCha20Poly1305Sha256Ed25519 => 0x0003,
        }
    }

    /// `Nh`: the hash (and KDF) output length.
    pub const fn hash_len(self) -> usize {
        32
    }

    /// `Nk`: the AEAD key length.
    pub const fn aead_key_len(self) -> usize {
        match self {
            Self::X25519Aes128GcmSha256Ed25519 => 16,
            Self::X25519ChaCha20Poly1305Sha256Ed25519 => 32,
        }
    }

    /// `Nn`: the AEAD nonce length.
    pub const fn aead_nonce_len(self) -> usize {
        AEAD_NONCE_LEN
    }

    /// HPKE identifiers (RFC 9180 §7): KEM, KDF, AEAD.
    pub const fn hpke_ids(self) -> (u16, u16, u16) {
        match self {
            Self::X25519Aes128GcmSha256Ed25519 => (0x0020, 0x0001, 0x0001),
            Self::X25519ChaCha20Poly1305Sha256Ed25519 => (0x0020, 0x0001, 0x0003),
        }
    }

    /// `Hash(parts[0] || parts[1] || ...)`.
    pub fn hash(self, parts: &[&[u8]]) -> HashValue {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p);
        }
        HashValue::from_array(h.finalize().into())
    }

    /// A running hash, for inputs too large or too scattered to concatenate.
    pub fn hasher(self) -> Hasher {
        Hasher(Sha256::new())
    }

    /// `KDF.Extract(salt, ikm)` where `ikm` is the concatenation of `ikm_parts`.
    pub fn kdf_extract(self, salt: &[u8], ikm_parts: &[&[u8]]) -> Secret {
        let mut ex = HkdfExtract::<Sha256>::new(Some(salt));
        for p in ikm_parts {
            ex.input_ikm(p);
        }
        let (prk, _) = ex.finalize();
        let mut bytes: [u8; 32] = prk.into();
        let s = Secret::from_slice(&bytes);
        bytes.zeroize();
        s.unwrap_or_default()
    }

    /// `KDF.Expand(prk, info, out.len())` where `info` is the concatenation of
    /// `info_parts`.
    pub fn kdf_expand(self, prk: &[u8], info_parts: &[&[u8]], out: &mut [u8]) -> Result<(), CryptoError> {
        let hk = Hkdf::<Sha256>::from_prk(prk).map_err(|_| CryptoError::InvalidKey)?;
        hk.expand_multi_info(info_parts, out).map_err(|_| CryptoError::InvalidLength)
    }

    /// `MAC(key, data)`: HMAC with the suite's hash (RFC 9420 §5.1).
    pub fn mac(self, key: &[u8], data_parts: &[&[u8]]) -> HashValue {
        // HMAC accepts keys of any length, so construction cannot fail.
        let mut m = match <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(key) {
            Ok(m) => m,
            Err(_) => return HashValue::default(),
        };
        for p in data_parts {
            m.update(p);
        }
        HashValue::from_array(m.finalize().into_bytes().into())
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
        match self {
            Self::X25519Aes128GcmSha256Ed25519 => seal_with::<Aes128Gcm>(key, nonce, aad, buf),
            Self::X25519ChaCha20Poly1305Sha256Ed25519 => seal_with::<ChaCha20Poly1305>(key, nonce, aad, buf),
        }
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
        let r = match self {
            Self::X25519Aes128GcmSha256Ed25519 => open_with::<Aes128Gcm>(key, nonce, aad, buf, tag),
            Self::X25519ChaCha20Poly1305Sha256Ed25519 => open_with::<ChaCha20Poly1305>(key, nonce, aad, buf, tag),
        };
        if r.is_err() {
            buf.zeroize();
        }
        r
    }
}

fn seal_with<A: AeadInOut + KeyInit>(
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    buf: &mut [u8],
) -> Result<[u8; AEAD_TAG_LEN], CryptoError> {
    let cipher = A::new_from_slice(key).map_err(|_| CryptoError::InvalidKey)?;
    let nonce = nonce.try_into().map_err(|_| CryptoError::InvalidKey)?;
    let tag = cipher
        .encrypt_inout_detached(nonce, aad, InOutBuf::from(buf))
        .map_err(|_| CryptoError::MessageTooLong)?;
    let mut out = [0u8; AEAD_TAG_LEN];
    if tag.len() != AEAD_TAG_LEN {
        return Err(CryptoError::InvalidLength);
    }
    out.copy_from_slice(&tag);
    Ok(out)
}

fn open_with<A: AeadInOut + KeyInit>(
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    buf: &mut [u8],
    tag: &[u8],
) -> Result<(), CryptoError> {
    let cipher = A::new_from_slice(key).map_err(|_| CryptoError::InvalidKey)?;
    let nonce = nonce.try_into().map_err(|_| CryptoError::InvalidKey)?;
    let tag = tag.try_into().map_err(|_| CryptoError::DecryptionFailed)?;
    cipher
        .decrypt_inout_detached(nonce, aad, InOutBuf::from(buf), tag)
        .map_err(|_| CryptoError::DecryptionFailed)
}

/// An incremental hash with the suite's hash function.
#[derive(Clone)]
pub struct Hasher(Sha256);

impl Hasher {
    /// Feeds more input.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The hash of everything fed.
    pub fn finish(self) -> HashValue {
        HashValue::from_array(self.0.finalize().into())
    }
}

/// A public hash output of at most [`MAX_HASH_LEN`] bytes (a reference, a
/// transcript hash, a tree hash).
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct HashValue {
    bytes: [u8; MAX_HASH_LEN],
    len: u8,
}

impl HashValue {
    /// The empty hash value (e.g. the confirmed transcript hash of epoch 0).
    pub const EMPTY: Self = Self { bytes: [0; MAX_HASH_LEN], len: 0 };

    fn from_array(bytes: [u8; 32]) -> Self {
        Self { bytes, len: 32 }
    }

    /// Copies a hash value; fails if longer than [`MAX_HASH_LEN`].
    pub fn from_slice(v: &[u8]) -> Result<Self, CryptoError> {
        let mut bytes = [0u8; MAX_HASH_LEN];
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
#[derive(Clone, Default, Zeroize, ZeroizeOnDrop)]
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
