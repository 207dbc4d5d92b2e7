//! Signature keys and signatures of the enabled suites (RFC 9420 §5.1.1,
//! §5.1.2), one module per scheme with the same functions (`public_key`,
//! `sign`, `verify`), dispatched by [`Scheme`].
//!
//! Encodings: EdDSA public keys as in RFC 8032, signatures `R || S`; ECDSA
//! public keys uncompressed points, signatures DER (`Ecdsa-Sig-Value`).
//!
//! What verification accepts (members must agree, or a group splits).
//! RFC 9420 §5.1.2 asks for the signature schemes of RFC 8446 with its
//! encodings: ECDSA signatures DER (RFC 8446 §4.2.3), EdDSA as RFC 8032
//! defines it; §5.1.1 asks for uncompressed ECDSA public keys. It asks for
//! nothing beyond them (no low-S rule, no refusal of small-order keys).
//! - **Ed25519** ([`ed25519`]): RFC 8032 §5.1.7 with the cofactorless
//!   equation it allows, `R = [S]B - [k]A` compared on the encoding of `R`
//!   (`ed25519-dalek`'s ordinary check), so `R` must be canonical; `S` must
//!   be canonical (`< L`); `A` must be a canonical encoding (y below p, no
//!   sign bit on x = 0: checked here, `ed25519-dalek` lets 19 non-canonical
//!   y and -0 through). Small-order public keys are not refused (RFC 8032
//!   does not; mls-rs verifies the same way, OpenMLS uses `verify_strict`,
//!   which refuses them).
//!   A joiner's executor may check the tree's leaf signatures in batches
//!   ([`Executor::verify_ed25519_batch`](crate::executor::Executor::verify_ed25519_batch):
//!   `platform-std`'s rayon executor with `ed25519-dalek`'s `verify_batch`;
//!   the core hands it only what passes the encoding checks above). A batch
//!   accepts every set the single check accepts; with weights drawn from
//!   the batch's own contents it can also accept a signature whose error is
//!   a small-order point, which only the key's holder can make. That is
//!   used for a joiner's tree alone: its hash is the one the GroupInfo's
//!   signer vouches for, and the members checked each of its leaves one by
//!   one when it entered (KeyPackage, Update, UpdatePath), so a tree of a
//!   real group holds no such leaf; a failed batch falls back to single
//!   checks to name the leaf.
//! - **Ed448** ([`ed448`]): `[S]B = R + [k]A` with `S` canonical (`< L`,
//!   57th byte zero: checked here, since `ed448-goldilocks`'s
//!   `from_canonical_bytes` lets a non-zero one through), `A` and
//!   `R` canonical encodings of torsion-free points (as `ed448-goldilocks`
//!   checks; torsion-free makes the cofactorless and cofactored equations
//!   agree), `A` not the identity.
//! - **ECDSA** ([`ecdsa`]): strict DER only (the signature must re-encode to
//!   the same bytes: no BER lengths, no superfluous zero bytes, nothing
//!   after the sequence), `r` and `s` in `[1, n - 1]`; the public key only
//!   uncompressed (`0x04 || x || y`), on the curve, not the identity, with
//!   `x` and `y` below p; both `s` and `n - s` are accepted (RFC 9420 asks for no low-S rule; the suite-7 signature of
//!   the official crypto-basics vectors is high-S; OpenMLS and mls-rs apply
//!   none). Signing is deterministic (RFC 6979).

#[cfg(feature = "_ecdsa")]
pub mod ecdsa;
#[cfg(feature = "_ed25519")]
pub mod ed25519;
#[cfg(feature = "_ed448")]
pub mod ed448;

use super::{CipherSuite, CryptoError, max, when};
use rand_core::CryptoRng;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A signature scheme of RFC 9420 §17.1. Only those of enabled suites exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scheme {
    /// Ed25519 (RFC 8032), suites 1 and 3.
    #[cfg(feature = "_ed25519")]
    Ed25519,
    /// ECDSA over P-256 with SHA-256, suite 2.
    #[cfg(feature = "_p256")]
    EcdsaP256,
    /// ECDSA over P-384 with SHA-384, suite 7.
    #[cfg(feature = "_p384")]
    EcdsaP384,
    /// ECDSA over P-521 with SHA-512, suite 5.
    #[cfg(feature = "_p521")]
    EcdsaP521,
    /// Ed448 (RFC 8032, empty context), suites 4 and 6.
    #[cfg(feature = "_ed448")]
    Ed448,
}

/// Largest signature public key of the enabled suites.
pub const SIGNATURE_PUBLIC_LEN: usize = max(
    max(max(when(cfg!(feature = "_ed25519"), 32), when(cfg!(feature = "_p256"), 65)), when(cfg!(feature = "_p384"), 97)),
    max(when(cfg!(feature = "_p521"), 133), when(cfg!(feature = "_ed448"), 57)),
);
/// Largest signature private key of the enabled suites.
pub const SIGNATURE_PRIVATE_LEN: usize = max(
    max(max(when(cfg!(feature = "_ed25519"), 32), when(cfg!(feature = "_p256"), 32)), when(cfg!(feature = "_p384"), 48)),
    max(when(cfg!(feature = "_p521"), 66), when(cfg!(feature = "_ed448"), 57)),
);
/// Largest signature of the enabled suites (DER: 72, 104, 139 bytes for
/// P-256, P-384, P-521).
pub const SIGNATURE_LEN: usize = max(
    max(max(when(cfg!(feature = "_ed25519"), 64), when(cfg!(feature = "_p256"), 72)), when(cfg!(feature = "_p384"), 104)),
    max(when(cfg!(feature = "_p521"), 139), when(cfg!(feature = "_ed448"), 114)),
);

impl Scheme {
    /// Bytes of a public key.
    pub const fn public_len(self) -> usize {
        match self {
            #[cfg(feature = "_ed25519")]
            Self::Ed25519 => 32,
            #[cfg(feature = "_p256")]
            Self::EcdsaP256 => 65,
            #[cfg(feature = "_p384")]
            Self::EcdsaP384 => 97,
            #[cfg(feature = "_p521")]
            Self::EcdsaP521 => 133,
            #[cfg(feature = "_ed448")]
            Self::Ed448 => 57,
        }
    }

    /// True for the ECDSA schemes (private keys are scalars below the
    /// order; signatures are DER of varying length).
    pub const fn is_ecdsa(self) -> bool {
        match self {
            #[cfg(feature = "_ed25519")]
            Self::Ed25519 => false,
            #[cfg(feature = "_ed448")]
            Self::Ed448 => false,
            #[allow(unreachable_patterns)]
            _ => true,
        }
    }

    /// Bytes of a private key (an EdDSA seed or an ECDSA scalar).
    pub const fn private_len(self) -> usize {
        match self {
            #[cfg(feature = "_ed25519")]
            Self::Ed25519 => 32,
            #[cfg(feature = "_p256")]
            Self::EcdsaP256 => 32,
            #[cfg(feature = "_p384")]
            Self::EcdsaP384 => 48,
            #[cfg(feature = "_p521")]
            Self::EcdsaP521 => 66,
            #[cfg(feature = "_ed448")]
            Self::Ed448 => 57,
        }
    }

    /// Largest signature (exact for EdDSA; DER lengths vary for ECDSA).
    pub const fn max_signature_len(self) -> usize {
        match self {
            #[cfg(feature = "_ed25519")]
            Self::Ed25519 => 64,
            #[cfg(feature = "_p256")]
            Self::EcdsaP256 => 72,
            #[cfg(feature = "_p384")]
            Self::EcdsaP384 => 104,
            #[cfg(feature = "_p521")]
            Self::EcdsaP521 => 139,
            #[cfg(feature = "_ed448")]
            Self::Ed448 => 114,
        }
    }

    /// Whether `sk` is a usable private key (ECDSA: a scalar in `[1, n - 1]`).
    fn is_valid_private(self, sk: &[u8]) -> bool {
        if sk.len() != self.private_len() {
            return false;
        }
        match self {
            #[cfg(feature = "_p256")]
            Self::EcdsaP256 => super::nist::is_valid_private::<p256::NistP256>(sk),
            #[cfg(feature = "_p384")]
            Self::EcdsaP384 => super::nist::is_valid_private::<p384::NistP384>(sk),
            #[cfg(feature = "_p521")]
            Self::EcdsaP521 => super::nist::is_valid_private::<p521::NistP521>(sk),
            #[allow(unreachable_patterns)]
            _ => true,
        }
    }

    fn public_key(self, sk: &[u8], out: &mut [u8]) -> Result<(), CryptoError> {
        if sk.len() != self.private_len() || out.len() != self.public_len() {
            return Err(CryptoError::InvalidKey);
        }
        match self {
            #[cfg(feature = "_ed25519")]
            Self::Ed25519 => ed25519::public_key(sk, out),
            #[cfg(feature = "_p256")]
            Self::EcdsaP256 => super::nist::public_key::<p256::NistP256>(sk, out),
            #[cfg(feature = "_p384")]
            Self::EcdsaP384 => super::nist::public_key::<p384::NistP384>(sk, out),
            #[cfg(feature = "_p521")]
            Self::EcdsaP521 => super::nist::public_key::<p521::NistP521>(sk, out),
            #[cfg(feature = "_ed448")]
            Self::Ed448 => ed448::public_key(sk, out),
        }
    }

    /// Signs the concatenation of `parts` into `out`; returns the length.
    fn sign(self, sk: &[u8], pk: &[u8], parts: &[&[u8]], out: &mut [u8]) -> Result<usize, CryptoError> {
        // EdDSA signs with the public key too; ECDSA (a build of NIST suites
        // only) does not.
        let _ = pk;
        match self {
            #[cfg(feature = "_ed25519")]
            Self::Ed25519 => ed25519::sign(sk, pk, parts, out),
            #[cfg(feature = "_p256")]
            Self::EcdsaP256 => ecdsa::sign::<p256::NistP256>(sk, parts, out),
            #[cfg(feature = "_p384")]
            Self::EcdsaP384 => ecdsa::sign::<p384::NistP384>(sk, parts, out),
            #[cfg(feature = "_p521")]
            Self::EcdsaP521 => ecdsa::sign::<p521::NistP521>(sk, parts, out),
            #[cfg(feature = "_ed448")]
            Self::Ed448 => ed448::sign(sk, pk, parts, out),
        }
    }

    fn verify(self, pk: &[u8], parts: &[&[u8]], signature: &[u8]) -> Result<(), CryptoError> {
        if pk.len() != self.public_len() {
            return Err(CryptoError::InvalidKey);
        }
        #[cfg(feature = "engine")]
        return super::engine::verify(self, pk, parts, signature);
        #[cfg(not(feature = "engine"))]
        self.software_verify(pk, parts, signature)
    }

    /// [`Self::verify`] with RustCrypto and this module's strictness.
    pub(crate) fn software_verify(self, pk: &[u8], parts: &[&[u8]], signature: &[u8]) -> Result<(), CryptoError> {
        if pk.len() != self.public_len() {
            return Err(CryptoError::InvalidKey);
        }
        match self {
            #[cfg(feature = "_ed25519")]
            Self::Ed25519 => ed25519::verify(pk, parts, signature),
            #[cfg(feature = "_p256")]
            Self::EcdsaP256 => ecdsa::verify::<p256::NistP256>(pk, parts, signature),
            #[cfg(feature = "_p384")]
            Self::EcdsaP384 => ecdsa::verify::<p384::NistP384>(pk, parts, signature),
            #[cfg(feature = "_p521")]
            Self::EcdsaP521 => ecdsa::verify::<p521::NistP521>(pk, parts, signature),
            #[cfg(feature = "_ed448")]
            Self::Ed448 => ed448::verify(pk, parts, signature),
        }
    }
}

/// A signature of at most [`SIGNATURE_LEN`] bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature {
    bytes: [u8; SIGNATURE_LEN],
    len: u8,
}

impl Signature {
    /// A signature from its encoding; fails if longer than [`SIGNATURE_LEN`].
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        let mut s = Self { bytes: [0; SIGNATURE_LEN], len: 0 };
        s.bytes.get_mut(..bytes.len()).ok_or(CryptoError::InvalidSignature)?.copy_from_slice(bytes);
        s.len = bytes.len() as u8;
        Ok(s)
    }

    /// The encoded signature.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }
}

impl core::ops::Deref for Signature {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<[u8]> for Signature {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl core::fmt::Debug for Signature {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Signature(")?;
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

/// A signature public key (`SignaturePublicKey`), its encoding of at most
/// [`SIGNATURE_PUBLIC_LEN`] bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignaturePublicKey {
    bytes: [u8; SIGNATURE_PUBLIC_LEN],
    len: u8,
}

impl SignaturePublicKey {
    /// No key: a placeholder.
    pub const EMPTY: Self = Self { bytes: [0; SIGNATURE_PUBLIC_LEN], len: 0 };

    /// A public key from its encoding, of any enabled scheme's length (the
    /// suite's length and the point are checked by [`Self::verify`]); fails
    /// on an empty or too long input.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.is_empty() {
            return Err(CryptoError::InvalidKey);
        }
        let mut k = Self::EMPTY;
        k.bytes.get_mut(..bytes.len()).ok_or(CryptoError::InvalidKey)?.copy_from_slice(bytes);
        k.len = bytes.len() as u8;
        Ok(k)
    }

    /// A public key of `suite`: [`Self::from_slice`] that also requires the
    /// length of the suite's scheme.
    pub fn for_suite(suite: CipherSuite, bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != suite.signature_scheme().public_len() {
            return Err(CryptoError::InvalidKey);
        }
        Self::from_slice(bytes)
    }

    /// The serialized key.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// Verifies `signature` over the concatenation of `message_parts` with
    /// the suite's scheme (module documentation: what is accepted).
    pub fn verify(&self, suite: CipherSuite, message_parts: &[&[u8]], signature: &[u8]) -> Result<(), CryptoError> {
        suite.signature_scheme().verify(self.as_bytes(), message_parts, signature)
    }
}

impl core::fmt::Debug for SignaturePublicKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SignaturePublicKey(")?;
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

/// A signature private key; zeroized on drop. Its public key is computed once
/// and kept: signing then costs one scalar multiplication, not two.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SignaturePrivateKey {
    seed: [u8; SIGNATURE_PRIVATE_LEN],
    len: u8,
    #[zeroize(skip)]
    public: SignaturePublicKey,
}

impl SignaturePrivateKey {
    /// An empty placeholder key (signing with it fails).
    pub const ZERO: Self = Self { seed: [0; SIGNATURE_PRIVATE_LEN], len: 0, public: SignaturePublicKey::EMPTY };

    /// A private key of `suite`'s scheme from its serialization (an EdDSA
    /// seed, or an ECDSA scalar in `[1, n - 1]`, big-endian); fails on a
    /// wrong length or an invalid scalar. An ECDSA scalar shorter than its
    /// field is taken with its leading zero bytes left out (as some
    /// implementations write them: the official vectors of suite 5 hold
    /// 65-byte P-521 keys) and kept at full length.
    pub fn from_slice(suite: CipherSuite, bytes: &[u8]) -> Result<Self, CryptoError> {
        let scheme = suite.signature_scheme();
        if scheme.is_ecdsa() && !bytes.is_empty() && bytes.len() < scheme.private_len() {
            let mut padded = [0u8; SIGNATURE_PRIVATE_LEN];
            let full = padded.get_mut(..scheme.private_len()).ok_or(CryptoError::InvalidKey)?;
            let start = full.len() - bytes.len();
            full.get_mut(start..).ok_or(CryptoError::InvalidKey)?.copy_from_slice(bytes);
            let r = Self::from_slice(suite, full);
            padded.zeroize();
            return r;
        }
        if !scheme.is_valid_private(bytes) {
            return Err(CryptoError::InvalidKey);
        }
        let mut sk = Self::ZERO;
        sk.seed.get_mut(..bytes.len()).ok_or(CryptoError::InvalidKey)?.copy_from_slice(bytes);
        sk.len = bytes.len() as u8;
        let mut public = [0u8; SIGNATURE_PUBLIC_LEN];
        let public = public.get_mut(..scheme.public_len()).ok_or(CryptoError::InvalidKey)?;
        scheme.public_key(sk.as_bytes(), public)?;
        sk.public = SignaturePublicKey::from_slice(public)?;
        Ok(sk)
    }

    /// A fresh key pair of `suite`'s scheme drawn from `rng` (ECDSA:
    /// candidates until one is a valid scalar, the top byte of P-521
    /// candidates masked to its 9 bits).
    pub fn generate(suite: CipherSuite, rng: &mut impl CryptoRng) -> (Self, SignaturePublicKey) {
        let scheme = suite.signature_scheme();
        let mut seed = [0u8; SIGNATURE_PRIVATE_LEN];
        let candidate = seed.get_mut(..scheme.private_len()).unwrap_or(&mut []);
        let mut key = Self::ZERO;
        // A candidate is invalid with probability < 2^-32: the loop ends.
        for _ in 0..64 {
            rng.fill_bytes(candidate);
            #[cfg(feature = "_p521")]
            if scheme == Scheme::EcdsaP521
                && let Some(first) = candidate.first_mut()
            {
                *first &= 0x01;
            }
            if let Ok(k) = Self::from_slice(suite, candidate) {
                key = k;
                break;
            }
        }
        seed.zeroize();
        let public = key.public;
        (key, public)
    }

    /// The serialized key.
    pub fn as_bytes(&self) -> &[u8] {
        self.seed.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// The matching public key.
    pub fn public_key(&self) -> SignaturePublicKey {
        self.public
    }

    /// Signs the concatenation of `message_parts` with the suite's scheme
    /// (the message is never copied into one buffer).
    pub fn sign(&self, suite: CipherSuite, message_parts: &[&[u8]]) -> Result<Signature, CryptoError> {
        let scheme = suite.signature_scheme();
        if self.len() != scheme.private_len() {
            return Err(CryptoError::InvalidKey);
        }
        let mut sig = Signature { bytes: [0; SIGNATURE_LEN], len: 0 };
        let n = scheme.sign(self.as_bytes(), self.public.as_bytes(), message_parts, &mut sig.bytes)?;
        sig.len = u8::try_from(n).map_err(|_| CryptoError::InvalidLength)?;
        Ok(sig)
    }

    fn len(&self) -> usize {
        usize::from(self.len)
    }
}

impl PartialEq for SignaturePrivateKey {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes().ct_eq(other.as_bytes()).into()
    }
}

impl core::fmt::Debug for SignaturePrivateKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SignaturePrivateKey(..)")
    }
}
