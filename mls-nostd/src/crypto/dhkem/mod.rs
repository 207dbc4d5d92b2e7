//! The Diffie-Hellman groups of DHKEM (RFC 9180 §4.1, §7.1): one module per
//! family, each with the same functions (`public_key`, `dh`, and for the
//! NIST curves `is_valid_private`), dispatched by [`Kem`].
//!
//! Serializations (RFC 9180 §7.1.1, §7.1.2): X25519 and X448 keys are their
//! RFC 7748 byte strings, private keys clamped; P-256, P-384 and P-521 public
//! keys are uncompressed SEC1 points (`0x04 || x || y`, nothing else is
//! accepted), private keys big-endian scalars in `[1, order - 1]`.

#[cfg(any(feature = "_p256", feature = "_p384", feature = "_p521"))]
use super::nist;
#[cfg(feature = "_x25519")]
mod x25519;
#[cfg(feature = "_x448")]
mod x448;

use super::{CryptoError, max, when};

/// A DHKEM of RFC 9180 §7.1. Only the KEMs of the enabled suites exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kem {
    /// DHKEM(X25519, HKDF-SHA256), 0x0020.
    #[cfg(feature = "_x25519")]
    X25519,
    /// DHKEM(P-256, HKDF-SHA256), 0x0010.
    #[cfg(feature = "_p256")]
    P256,
    /// DHKEM(P-384, HKDF-SHA384), 0x0011.
    #[cfg(feature = "_p384")]
    P384,
    /// DHKEM(P-521, HKDF-SHA512), 0x0012.
    #[cfg(feature = "_p521")]
    P521,
    /// DHKEM(X448, HKDF-SHA512), 0x0021.
    #[cfg(feature = "_x448")]
    X448,
}

/// Largest public key and encapsulation (`Npk` = `Nenc`) of the enabled KEMs.
pub const MAX_PUBLIC_LEN: usize = max(
    max(max(when(cfg!(feature = "_x25519"), 32), when(cfg!(feature = "_p256"), 65)), when(cfg!(feature = "_p384"), 97)),
    max(when(cfg!(feature = "_p521"), 133), when(cfg!(feature = "_x448"), 56)),
);
/// Largest private key (`Nsk`) of the enabled KEMs.
pub const MAX_PRIVATE_LEN: usize = max(
    max(max(when(cfg!(feature = "_x25519"), 32), when(cfg!(feature = "_p256"), 32)), when(cfg!(feature = "_p384"), 48)),
    max(when(cfg!(feature = "_p521"), 66), when(cfg!(feature = "_x448"), 56)),
);
/// Largest Diffie-Hellman output (`Ndh`) of the enabled KEMs.
pub const MAX_DH_LEN: usize = MAX_PRIVATE_LEN;

impl Kem {
    /// The KEM identifier (RFC 9180 §7.1).
    pub const fn id(self) -> u16 {
        match self {
            #[cfg(feature = "_x25519")]
            Self::X25519 => 0x0020,
            #[cfg(feature = "_p256")]
            Self::P256 => 0x0010,
            #[cfg(feature = "_p384")]
            Self::P384 => 0x0011,
            #[cfg(feature = "_p521")]
            Self::P521 => 0x0012,
            #[cfg(feature = "_x448")]
            Self::X448 => 0x0021,
        }
    }

    /// `Npk` (= `Nenc`): bytes of a serialized public key.
    pub const fn public_len(self) -> usize {
        match self {
            #[cfg(feature = "_x25519")]
            Self::X25519 => 32,
            #[cfg(feature = "_p256")]
            Self::P256 => 65,
            #[cfg(feature = "_p384")]
            Self::P384 => 97,
            #[cfg(feature = "_p521")]
            Self::P521 => 133,
            #[cfg(feature = "_x448")]
            Self::X448 => 56,
        }
    }

    /// `Nsk`: bytes of a serialized private key; also `Ndh`, the bytes of a
    /// Diffie-Hellman output (the x-coordinate for the NIST curves).
    pub const fn private_len(self) -> usize {
        match self {
            #[cfg(feature = "_x25519")]
            Self::X25519 => 32,
            #[cfg(feature = "_p256")]
            Self::P256 => 32,
            #[cfg(feature = "_p384")]
            Self::P384 => 48,
            #[cfg(feature = "_p521")]
            Self::P521 => 66,
            #[cfg(feature = "_x448")]
            Self::X448 => 56,
        }
    }

    /// `DeriveKeyPair`'s mask of the first candidate byte for the NIST
    /// curves (RFC 9180 §7.1.3); `None` for X25519 and X448, whose private
    /// key is the expanded bytes.
    pub const fn candidate_bitmask(self) -> Option<u8> {
        match self {
            #[cfg(feature = "_x25519")]
            Self::X25519 => None,
            #[cfg(feature = "_p256")]
            Self::P256 => Some(0xFF),
            #[cfg(feature = "_p384")]
            Self::P384 => Some(0xFF),
            #[cfg(feature = "_p521")]
            Self::P521 => Some(0x01),
            #[cfg(feature = "_x448")]
            Self::X448 => None,
        }
    }

    /// `DeserializePrivateKey`'s normalisation in place: clamping for
    /// X25519 and X448 (RFC 9180 §7.1.2); NIST scalars are kept as they are.
    pub(crate) fn clamp(self, sk: &mut [u8]) {
        // Unused in a build with NIST curves only (e.g. suite 2 alone).
        let _ = &sk;
        match self {
            #[cfg(feature = "_x25519")]
            Self::X25519 => x25519::clamp(sk),
            #[cfg(feature = "_x448")]
            Self::X448 => x448::clamp(sk),
            #[allow(unreachable_patterns)]
            _ => {}
        }
    }

    /// True if `sk` (exactly `Nsk` bytes) is a usable private key: for the
    /// NIST curves a scalar in `[1, order - 1]`; clamped X25519 and X448
    /// keys always are.
    pub(crate) fn is_valid_private(self, sk: &[u8]) -> bool {
        if sk.len() != self.private_len() {
            return false;
        }
        match self {
            #[cfg(feature = "_p256")]
            Self::P256 => nist::is_valid_private::<p256::NistP256>(sk),
            #[cfg(feature = "_p384")]
            Self::P384 => nist::is_valid_private::<p384::NistP384>(sk),
            #[cfg(feature = "_p521")]
            Self::P521 => nist::is_valid_private::<p521::NistP521>(sk),
            #[allow(unreachable_patterns)]
            _ => true,
        }
    }

    /// True if `pk` is a public key of this KEM that a DH can use: `Npk`
    /// bytes; for X25519 and X448 not a point of small order, whose DH
    /// output is all zero for every private key (RFC 9180 §7.1.4, RFC 7748
    /// §6: refused at each seal, so a key of the wire is refused when it
    /// comes in); for the NIST curves an uncompressed point on the curve
    /// (RFC 9180 §7.1.1; the identity has no such encoding). A blocklist
    /// compare or a curve equation: no scalar multiplication (a join checks
    /// every key of the tree).
    pub(crate) fn is_valid_public(self, pk: &[u8]) -> bool {
        if pk.len() != self.public_len() {
            return false;
        }
        match self {
            #[cfg(feature = "_x25519")]
            Self::X25519 => x25519::is_valid_public(pk),
            #[cfg(feature = "_p256")]
            Self::P256 => nist::parse_public::<p256::NistP256>(pk).is_ok(),
            #[cfg(feature = "_p384")]
            Self::P384 => nist::parse_public::<p384::NistP384>(pk).is_ok(),
            #[cfg(feature = "_p521")]
            Self::P521 => nist::parse_public::<p521::NistP521>(pk).is_ok(),
            #[cfg(feature = "_x448")]
            Self::X448 => x448::is_valid_public(pk),
        }
    }

    /// `pk(sk)`: writes the serialized public key of `sk` (`Nsk` bytes,
    /// clamped for X25519/X448) into `out` (`Npk` bytes).
    pub(crate) fn public_key(self, sk: &[u8], out: &mut [u8]) -> Result<(), CryptoError> {
        if sk.len() != self.private_len() || out.len() != self.public_len() {
            return Err(CryptoError::InvalidKey);
        }
        #[cfg(feature = "engine")]
        return super::engine::public_key(self, sk, out);
        #[cfg(not(feature = "engine"))]
        self.software_public_key(sk, out)
    }

    /// [`Self::public_key`] with RustCrypto (lengths checked by the caller).
    pub(crate) fn software_public_key(self, sk: &[u8], out: &mut [u8]) -> Result<(), CryptoError> {
        match self {
            #[cfg(feature = "_x25519")]
            Self::X25519 => x25519::public_key(sk, out),
            #[cfg(feature = "_p256")]
            Self::P256 => nist::public_key::<p256::NistP256>(sk, out),
            #[cfg(feature = "_p384")]
            Self::P384 => nist::public_key::<p384::NistP384>(sk, out),
            #[cfg(feature = "_p521")]
            Self::P521 => nist::public_key::<p521::NistP521>(sk, out),
            #[cfg(feature = "_x448")]
            Self::X448 => x448::public_key(sk, out),
        }
    }

    /// `DH(sk, pk)` into `out` (`Ndh` bytes). Refuses a public key that is
    /// not a valid serialization (wrong length, not on the curve, the
    /// identity, compressed), and an all-zero output (RFC 9180 §7.1.4).
    pub(crate) fn dh(self, sk: &[u8], pk: &[u8], out: &mut [u8]) -> Result<(), CryptoError> {
        if sk.len() != self.private_len() || pk.len() != self.public_len() || out.len() != self.private_len() {
            return Err(CryptoError::InvalidKey);
        }
        #[cfg(feature = "engine")]
        super::engine::dh(self, sk, pk, out)?;
        #[cfg(not(feature = "engine"))]
        self.software_dh(sk, pk, out)?;
        Self::refuse_zero(out)
    }

    /// [`Self::dh`] with a private key a crypto engine holds (feature
    /// `engine`: [`super::engine::CryptoEngine::held_dh`]).
    #[cfg(feature = "engine")]
    pub(crate) fn held_dh(self, handle: &[u8], pk: &[u8], out: &mut [u8]) -> Result<(), CryptoError> {
        if pk.len() != self.public_len() || out.len() != self.private_len() {
            return Err(CryptoError::InvalidKey);
        }
        super::engine::held_dh(self, handle, pk, out)?;
        Self::refuse_zero(out)
    }

    /// [`Self::dh`] with RustCrypto (lengths checked by the caller).
    pub(crate) fn software_dh(self, sk: &[u8], pk: &[u8], out: &mut [u8]) -> Result<(), CryptoError> {
        match self {
            #[cfg(feature = "_x25519")]
            Self::X25519 => x25519::dh(sk, pk, out),
            #[cfg(feature = "_p256")]
            Self::P256 => nist::dh::<p256::NistP256>(sk, pk, out),
            #[cfg(feature = "_p384")]
            Self::P384 => nist::dh::<p384::NistP384>(sk, pk, out),
            #[cfg(feature = "_p521")]
            Self::P521 => nist::dh::<p521::NistP521>(sk, pk, out),
            #[cfg(feature = "_x448")]
            Self::X448 => x448::dh(sk, pk, out),
        }
    }

    /// Refuses (and wipes) an all-zero Diffie-Hellman output (RFC 9180 §7.1.4).
    fn refuse_zero(out: &mut [u8]) -> Result<(), CryptoError> {
        // Constant time over the output: it is secret.
        let zero = out.iter().fold(0u8, |acc, b| acc | b);
        if subtle::ConstantTimeEq::ct_eq(&zero, &0).into() {
            zeroize::Zeroize::zeroize(out);
            return Err(CryptoError::InvalidSharedSecret);
        }
        Ok(())
    }
}
