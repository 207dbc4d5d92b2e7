//! HPKE base mode, single shot (RFC 9180 §4–§6), with the DHKEMs of the
//! enabled suites ([`super::dhkem`]: X25519, P-256, P-384, P-521, X448).
//!
//! Written here rather than taken from the `hpke` crate (which is our test
//! oracle) for two reasons that matter to MLS: the `info` of an MLS seal is an
//! `EncryptContext` that may hold a whole encrypted GroupInfo, so it is hashed
//! piece by piece without a buffer; and that `info_hash` is the same for every
//! recipient of a Welcome, so callers compute it once ([`info_hash`]) and seal
//! to many recipients with it. The ephemeral key's randomness is an argument,
//! so a batch of seals can draw all randomness before it runs.

use super::dhkem::{Kem, MAX_DH_LEN, MAX_PRIVATE_LEN, MAX_PUBLIC_LEN};
use super::{AEAD_NONCE_LEN, AEAD_TAG_LEN, CipherSuite, CryptoError, MAX_AEAD_KEY_LEN, Secret};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Largest KEM public key (`Npk`) and encapsulation (`Nenc`) of the enabled suites.
pub const KEM_PUBLIC_LEN: usize = MAX_PUBLIC_LEN;
/// Largest KEM private key (`Nsk`) of the enabled suites.
pub const KEM_PRIVATE_LEN: usize = MAX_PRIVATE_LEN;

const HPKE_V1: &[u8] = b"HPKE-v1";
const MODE_BASE: u8 = 0x00;
/// Most pieces an `info` (or other extract input) may be given in.
pub const MAX_INFO_PARTS: usize = 8;

/// An HPKE public key (`HPKEPublicKey`, RFC 9420 §5.1.1), its serialization
/// (RFC 9180 §7.1.1) of at most [`KEM_PUBLIC_LEN`] bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct HpkePublicKey {
    bytes: [u8; KEM_PUBLIC_LEN],
    len: u8,
}

/// The KEM output (`enc`) of a seal: an ephemeral public key for DHKEM.
pub type KemOutput = HpkePublicKey;

impl HpkePublicKey {
    /// No key (zero bytes): a placeholder.
    pub const EMPTY: Self = Self { bytes: [0; KEM_PUBLIC_LEN], len: 0 };

    /// A public key from its serialization, of any enabled KEM's length
    /// (whether it is a usable point of the suite's curve is checked when
    /// used, or by [`Self::for_suite`]); fails on an empty or too long input.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.is_empty() {
            return Err(CryptoError::InvalidKey);
        }
        let mut out = Self::EMPTY;
        out.bytes.get_mut(..bytes.len()).ok_or(CryptoError::InvalidKey)?.copy_from_slice(bytes);
        out.len = bytes.len() as u8;
        Ok(out)
    }

    /// A public key of `suite`: [`Self::from_slice`] that also requires the
    /// length of the suite's KEM (`Npk`) and a key a DH can use: not a
    /// point of small order (X25519, X448), a point on the curve (P-256,
    /// P-384, P-521). Every key of the wire comes in through here (a
    /// KeyPackage's, a leaf's, a tree's, an UpdatePath's): a seal to a key
    /// of small order always fails (RFC 9180 §7.1.4), so one let in would
    /// make every Welcome or UpdatePath to it fail (RFC 9420 §12.4).
    pub fn for_suite(suite: CipherSuite, bytes: &[u8]) -> Result<Self, CryptoError> {
        if !suite.kem().is_valid_public(bytes) {
            return Err(CryptoError::InvalidKey);
        }
        Self::from_slice(bytes)
    }

    /// The serialized key.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }
}

impl core::fmt::Debug for HpkePublicKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("HpkePublicKey(")?;
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

/// An HPKE private key, with its public key computed once; zeroized on drop.
/// With the feature `engine`, also a key a crypto engine holds
/// ([`Self::held`]), of which the core knows only a handle.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct HpkePrivateKey {
    sk: [u8; KEM_PRIVATE_LEN],
    sk_len: u8,
    #[zeroize(skip)]
    pk: HpkePublicKey,
    /// `sk` is the engine's handle of the key, not the key.
    #[cfg(feature = "engine")]
    #[zeroize(skip)]
    held: bool,
}

/// Bytes a store keeps of an [`HpkePrivateKey`] at most: the key, or with
/// the feature `engine` a held key's `0xFF || handle length || handle ||
/// public key` (longer than a private key of its suite, which is how a
/// reader tells the two apart).
pub const KEM_PRIVATE_STORED_LEN: usize =
    if cfg!(feature = "engine") { super::max(KEM_PRIVATE_LEN, 2 + KEM_PRIVATE_LEN + KEM_PUBLIC_LEN) } else { KEM_PRIVATE_LEN };

/// The first byte of a held key's stored form.
#[cfg(feature = "engine")]
const HELD_MARK: u8 = 0xFF;

impl HpkePrivateKey {
    /// An all-zero placeholder key (no group member holds it).
    pub const ZERO: Self = Self {
        sk: [0; KEM_PRIVATE_LEN],
        sk_len: 0,
        pk: HpkePublicKey::EMPTY,
        #[cfg(feature = "engine")]
        held: false,
    };

    /// A private key of `suite`'s KEM that the crypto engine holds (a
    /// secure element made the pair and keeps the private half): `handle`
    /// names it to [`super::engine::CryptoEngine::held_dh`] (a slot, a key
    /// ID: 1 to [`KEM_PRIVATE_LEN`] bytes), `public_key` is its public key.
    /// Decapsulation with it asks the engine; the core never has the key,
    /// and a store keeps the handle. A KeyPackage's init and leaf keys may
    /// be held ([`crate::key_package::KeyPackage::generate_with_held_keys`]).
    #[cfg(feature = "engine")]
    pub fn held(suite: CipherSuite, handle: &[u8], public_key: &HpkePublicKey) -> Result<Self, CryptoError> {
        if handle.is_empty() || public_key.as_bytes().len() != suite.kem().public_len() {
            return Err(CryptoError::InvalidKey);
        }
        let mut key = Self::ZERO;
        key.sk.get_mut(..handle.len()).ok_or(CryptoError::InvalidKey)?.copy_from_slice(handle);
        key.sk_len = handle.len() as u8;
        key.pk = *public_key;
        key.held = true;
        Ok(key)
    }

    /// True for a key the crypto engine holds ([`Self::held`]).
    pub fn is_held(&self) -> bool {
        #[cfg(feature = "engine")]
        return self.held;
        #[cfg(not(feature = "engine"))]
        false
    }

    /// Writes what a store keeps of this key (at most
    /// [`KEM_PRIVATE_STORED_LEN`] bytes) into `out`; returns its length.
    pub(crate) fn stored_form(&self, out: &mut [u8; KEM_PRIVATE_STORED_LEN]) -> usize {
        #[cfg(feature = "engine")]
        if self.held {
            let (handle, pk) = (self.as_bytes(), self.pk.as_bytes());
            let parts: [&[u8]; 3] = [&[HELD_MARK, self.sk_len], handle, pk];
            let mut at = 0;
            for p in parts {
                let end = at + p.len();
                if let Some(dst) = out.get_mut(at..end) {
                    dst.copy_from_slice(p);
                }
                at = end;
            }
            return at;
        }
        let sk = self.as_bytes();
        if let Some(dst) = out.get_mut(..sk.len()) {
            dst.copy_from_slice(sk);
        }
        sk.len()
    }

    /// The key whose [`Self::stored_form`] is `stored`, for `suite`.
    pub(crate) fn from_stored_form(suite: CipherSuite, stored: &[u8]) -> Result<Self, CryptoError> {
        #[cfg(feature = "engine")]
        if stored.len() > suite.kem().private_len() {
            let Some((&[HELD_MARK, len], rest)) = stored.split_first_chunk::<2>() else {
                return Err(CryptoError::InvalidKey);
            };
            let (handle, pk) = rest.split_at_checked(usize::from(len)).ok_or(CryptoError::InvalidKey)?;
            return Self::held(suite, handle, &HpkePublicKey::for_suite(suite, pk)?);
        }
        Self::from_slice(suite, stored)
    }

    /// A private key of `suite`'s KEM from its serialization
    /// (`DeserializePrivateKey`, RFC 9180 §7.1.2: X25519 and X448 keys are
    /// clamped; NIST scalars must be in `[1, order - 1]`); fails on a wrong
    /// length or an invalid scalar. A NIST scalar shorter than `Nsk` is
    /// taken as big-endian with its leading zero bytes left out (some
    /// implementations serialize so: the official vectors of suite 5 hold
    /// 65-byte P-521 keys); it is kept at `Nsk` bytes.
    pub fn from_slice(suite: CipherSuite, bytes: &[u8]) -> Result<Self, CryptoError> {
        let kem = suite.kem();
        let mut padded = [0u8; KEM_PRIVATE_LEN];
        let r = match kem.candidate_bitmask() {
            Some(_) if !bytes.is_empty() && bytes.len() < kem.private_len() => {
                let start = kem.private_len() - bytes.len();
                let full = padded.get_mut(..kem.private_len()).ok_or(CryptoError::InvalidKey)?;
                full.get_mut(start..).ok_or(CryptoError::InvalidKey)?.copy_from_slice(bytes);
                Self::from_scalar(kem, full)
            }
            _ => Self::from_scalar(kem, bytes),
        };
        padded.zeroize();
        r
    }

    /// Clamps (X25519, X448) and checks the key, then computes its public key.
    fn from_scalar(kem: Kem, bytes: &[u8]) -> Result<Self, CryptoError> {
        let mut key = Self::ZERO;
        let sk = key.sk.get_mut(..bytes.len()).filter(|_| bytes.len() == kem.private_len());
        let sk = sk.ok_or(CryptoError::InvalidKey)?;
        sk.copy_from_slice(bytes);
        kem.clamp(sk);
        if !kem.is_valid_private(sk) {
            return Err(CryptoError::InvalidKey);
        }
        key.sk_len = bytes.len() as u8;
        let mut pk = [0u8; KEM_PUBLIC_LEN];
        let pk = pk.get_mut(..kem.public_len()).ok_or(CryptoError::InvalidKey)?;
        kem.public_key(key.as_bytes(), pk)?;
        key.pk = HpkePublicKey::from_slice(pk)?;
        Ok(key)
    }

    /// The serialized key.
    pub fn as_bytes(&self) -> &[u8] {
        self.sk.get(..usize::from(self.sk_len)).unwrap_or(&[])
    }

    /// The matching public key (kept, not recomputed).
    pub fn public_key(&self, _suite: CipherSuite) -> HpkePublicKey {
        self.pk
    }
}

impl PartialEq for HpkePrivateKey {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes().ct_eq(other.as_bytes()).into()
    }
}

impl core::fmt::Debug for HpkePrivateKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("HpkePrivateKey(..)")
    }
}

/// The result of a seal: the KEM output and the detached AEAD tag (the
/// ciphertext replaced the plaintext in place).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HpkeSealed {
    /// `enc`, sent as `kem_output`.
    pub kem_output: KemOutput,
    /// The AEAD tag, sent after the ciphertext.
    pub tag: [u8; AEAD_TAG_LEN],
}

fn kem_suite_id(suite: CipherSuite) -> [u8; 5] {
    let [a, b] = suite.hpke_ids().0.to_be_bytes();
    [b'K', b'E', b'M', a, b]
}

fn hpke_suite_id(suite: CipherSuite) -> [u8; 10] {
    let (kem, kdf, aead) = suite.hpke_ids();
    let (k, d, a) = (kem.to_be_bytes(), kdf.to_be_bytes(), aead.to_be_bytes());
    [b'H', b'P', b'K', b'E', k[0], k[1], d[0], d[1], a[0], a[1]]
}

/// `LabeledExtract(salt, label, ikm)` (RFC 9180 §4).
/// `ikm` is the concatenation of at most [`MAX_INFO_PARTS`] pieces.
fn labeled_extract(
    suite: CipherSuite,
    suite_id: &[u8],
    salt: &[u8],
    label: &[u8],
    ikm: &[&[u8]],
) -> Result<Secret, CryptoError> {
    if ikm.len() > MAX_INFO_PARTS {
        return Err(CryptoError::InvalidLength);
    }
    let mut parts: [&[u8]; 3 + MAX_INFO_PARTS] = [&[]; 3 + MAX_INFO_PARTS];
    let head: [&[u8]; 3] = [HPKE_V1, suite_id, label];
    for (slot, p) in parts.iter_mut().zip(head.iter().chain(ikm)) {
        *slot = p;
    }
    Ok(suite.kdf_extract(salt, &parts))
}

/// `LabeledExpand(prk, label, info, L)` (RFC 9180 §4).
fn labeled_expand(
    suite: CipherSuite,
    suite_id: &[u8],
    prk: &[u8],
    label: &[u8],
    info: &[u8],
    out: &mut [u8],
) -> Result<(), CryptoError> {
    let len = u16::try_from(out.len()).map_err(|_| CryptoError::InvalidLength)?.to_be_bytes();
    suite.kdf_expand(prk, &[&len, HPKE_V1, suite_id, label, info], out)
}

/// `DeriveKeyPair(ikm)` of the suite's DHKEM (RFC 9180 §7.1.3): the
/// expanded bytes for X25519 and X448; for P-256, P-384 and P-521 the first
/// of up to 256 masked candidates that is a scalar in `[1, order - 1]`.
pub fn derive_key_pair(suite: CipherSuite, ikm: &[u8]) -> Result<(HpkePrivateKey, HpkePublicKey), CryptoError> {
    let kem = suite.kem();
    let sid = kem_suite_id(suite);
    let dkp_prk = labeled_extract(suite, &sid, &[], b"dkp_prk", &[ikm])?;
    let mut bytes = [0u8; KEM_PRIVATE_LEN];
    let candidate = bytes.get_mut(..kem.private_len()).ok_or(CryptoError::InvalidLength)?;
    let result = match kem.candidate_bitmask() {
        None => {
            labeled_expand(suite, &sid, dkp_prk.as_bytes(), b"sk", &[], candidate)?;
            HpkePrivateKey::from_scalar(kem, candidate)
        }
        Some(mask) => {
            let mut found = Err(CryptoError::DeriveKeyPairError);
            for counter in 0..=255u8 {
                labeled_expand(suite, &sid, dkp_prk.as_bytes(), b"candidate", &[counter], candidate)?;
                if let Some(first) = candidate.first_mut() {
                    *first &= mask;
                }
                if kem.is_valid_private(candidate) {
                    found = HpkePrivateKey::from_scalar(kem, candidate);
                    break;
                }
            }
            found
        }
    };
    bytes.zeroize();
    let sk = result?;
    let pk = sk.public_key(suite);
    Ok((sk, pk))
}

/// A Diffie-Hellman output, zeroized on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
struct DhOutput {
    bytes: [u8; MAX_DH_LEN],
    len: usize,
}

impl DhOutput {
    fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }
}

/// `DH(sk, pk)`, refusing invalid public keys and the all-zero output
/// (RFC 9180 §7.1.4).
fn dh(suite: CipherSuite, sk: &HpkePrivateKey, pk: &HpkePublicKey) -> Result<DhOutput, CryptoError> {
    let kem = suite.kem();
    let mut out = DhOutput { bytes: [0; MAX_DH_LEN], len: kem.private_len() };
    let buf = out.bytes.get_mut(..kem.private_len()).ok_or(CryptoError::InvalidLength)?;
    #[cfg(feature = "engine")]
    if sk.held {
        kem.held_dh(sk.as_bytes(), pk.as_bytes(), buf)?;
        return Ok(out);
    }
    kem.dh(sk.as_bytes(), pk.as_bytes(), buf)?;
    Ok(out)
}

/// `ExtractAndExpand(dh, kem_context)` of DHKEM (RFC 9180 §4.1), with
/// `kem_context = enc || pkRm`; the shared secret has `Nsecret` bytes, the
/// hash length of the KEM's KDF, which is the suite's.
fn extract_and_expand(
    suite: CipherSuite,
    dh: &DhOutput,
    enc: &HpkePublicKey,
    pk_r: &HpkePublicKey,
) -> Result<Secret, CryptoError> {
    let sid = kem_suite_id(suite);
    let eae_prk = labeled_extract(suite, &sid, &[], b"eae_prk", &[dh.as_bytes()])?;
    let (enc, pk_r) = (enc.as_bytes(), pk_r.as_bytes());
    let mut kem_context = [0u8; 2 * KEM_PUBLIC_LEN];
    let ctx_len = enc.len() + pk_r.len();
    let ctx = kem_context.get_mut(..ctx_len).ok_or(CryptoError::InvalidKey)?;
    let (a, b) = ctx.split_at_mut(enc.len());
    a.copy_from_slice(enc);
    b.copy_from_slice(pk_r);
    let mut shared = Secret::zero(suite.hash_len())?;
    labeled_expand(suite, &sid, eae_prk.as_bytes(), b"shared_secret", ctx, shared.as_mut_bytes())?;
    Ok(shared)
}

/// `LabeledExtract("", "info_hash", info)` of the key schedule (RFC 9180 §5.1),
/// with `info` the concatenation of `info_parts` (at most [`MAX_INFO_PARTS`]).
/// Compute it once to seal many messages with the same `info`.
pub fn info_hash(suite: CipherSuite, info_parts: &[&[u8]]) -> Result<Secret, CryptoError> {
    labeled_extract(suite, &hpke_suite_id(suite), &[], b"info_hash", info_parts)
}

/// The AEAD key and base nonce of a base-mode context (RFC 9180 §5.1).
#[derive(Zeroize, ZeroizeOnDrop)]
struct AeadKeys {
    key: [u8; MAX_AEAD_KEY_LEN],
    nonce: [u8; AEAD_NONCE_LEN],
}

/// `key_schedule_context = mode || psk_id_hash || info_hash` of base mode
/// (RFC 9180 §5.1), written into `buf`; returns its length.
fn schedule_context(suite: CipherSuite, info_hash: &Secret, buf: &mut [u8; 1 + 2 * super::MAX_HASH_LEN]) -> Result<usize, CryptoError> {
    let sid = hpke_suite_id(suite);
    let psk_id_hash = labeled_extract(suite, &sid, &[], b"psk_id_hash", &[])?;
    let ctx_len = 1 + psk_id_hash.len() + info_hash.len();
    let ctx = buf.get_mut(..ctx_len).ok_or(CryptoError::InvalidLength)?;
    let (mode, rest) = ctx.split_at_mut(1);
    mode.fill(MODE_BASE);
    // Lengths match by construction; zip copies have no panic path.
    let (p, i) = rest.split_at_mut(psk_id_hash.len());
    p.iter_mut().zip(psk_id_hash.as_bytes()).for_each(|(d, s)| *d = *s);
    i.iter_mut().zip(info_hash.as_bytes()).for_each(|(d, s)| *d = *s);
    Ok(ctx_len)
}

fn key_schedule_base(suite: CipherSuite, shared: &Secret, info_hash: &Secret) -> Result<AeadKeys, CryptoError> {
    let sid = hpke_suite_id(suite);
    let mut buf = [0u8; 1 + 2 * super::MAX_HASH_LEN];
    let ctx_len = schedule_context(suite, info_hash, &mut buf)?;
    let ctx = buf.get(..ctx_len).ok_or(CryptoError::InvalidLength)?;
    let secret = labeled_extract(suite, &sid, shared.as_bytes(), b"secret", &[])?;
    let mut keys = AeadKeys { key: [0; MAX_AEAD_KEY_LEN], nonce: [0; AEAD_NONCE_LEN] };
    let key = keys.key.get_mut(..suite.aead_key_len()).ok_or(CryptoError::InvalidLength)?;
    labeled_expand(suite, &sid, secret.as_bytes(), b"key", ctx, key)?;
    labeled_expand(suite, &sid, secret.as_bytes(), b"base_nonce", ctx, &mut keys.nonce)?;
    Ok(keys)
}

/// `Context.Export(exporter_context, out.len())` of a base-mode context
/// (RFC 9180 §5.3): `exporter_secret = LabeledExpand(secret, "exp", ctx, Nh)`,
/// then `LabeledExpand(exporter_secret, "sec", exporter_context, L)`.
fn export_base(
    suite: CipherSuite,
    shared: &Secret,
    info_hash: &Secret,
    exporter_context: &[u8],
    out: &mut [u8],
) -> Result<(), CryptoError> {
    let sid = hpke_suite_id(suite);
    let mut buf = [0u8; 1 + 2 * super::MAX_HASH_LEN];
    let ctx_len = schedule_context(suite, info_hash, &mut buf)?;
    let ctx = buf.get(..ctx_len).ok_or(CryptoError::InvalidLength)?;
    let secret = labeled_extract(suite, &sid, shared.as_bytes(), b"secret", &[])?;
    let mut exporter_secret = Secret::zero(suite.hash_len())?;
    labeled_expand(suite, &sid, secret.as_bytes(), b"exp", ctx, exporter_secret.as_mut_bytes())?;
    labeled_expand(suite, &sid, exporter_secret.as_bytes(), b"sec", exporter_context, out)
}

/// `SetupBaseS(pkR, info)` and `Export(exporter_context, out.len())` (RFC
/// 9180 §5.1, §5.3) with the ephemeral key `DeriveKeyPair(eph_ikm)`; returns
/// the KEM output.
pub fn export_base_sender(
    suite: CipherSuite,
    pk_r: &HpkePublicKey,
    info_hash: &Secret,
    exporter_context: &[u8],
    out: &mut [u8],
    eph_ikm: &[u8],
) -> Result<KemOutput, CryptoError> {
    let (sk_e, enc) = derive_key_pair(suite, eph_ikm)?;
    let shared = extract_and_expand(suite, &dh(suite, &sk_e, pk_r)?, &enc, pk_r)?;
    export_base(suite, &shared, info_hash, exporter_context, out)?;
    Ok(enc)
}

/// `SetupBaseR(enc, skR, info)` and `Export(exporter_context, out.len())`.
pub fn export_base_receiver(
    suite: CipherSuite,
    sk_r: &HpkePrivateKey,
    enc: &KemOutput,
    info_hash: &Secret,
    exporter_context: &[u8],
    out: &mut [u8],
) -> Result<(), CryptoError> {
    let pk_r = sk_r.public_key(suite);
    let shared = extract_and_expand(suite, &dh(suite, sk_r, enc)?, enc, &pk_r)?;
    export_base(suite, &shared, info_hash, exporter_context, out)
}

impl AeadKeys {
    fn key(&self, suite: CipherSuite) -> &[u8] {
        self.key.get(..suite.aead_key_len()).unwrap_or(&[])
    }
}

/// `SealBase(pkR, info, aad, pt)` (RFC 9180 §6.1): encrypts `buf` in place
/// with the ephemeral key `DeriveKeyPair(eph_ikm)`.
pub fn seal_base(
    suite: CipherSuite,
    pk_r: &HpkePublicKey,
    info_hash: &Secret,
    aad: &[u8],
    buf: &mut [u8],
    eph_ikm: &[u8],
) -> Result<HpkeSealed, CryptoError> {
    let (sk_e, enc) = derive_key_pair(suite, eph_ikm)?;
    let shared = extract_and_expand(suite, &dh(suite, &sk_e, pk_r)?, &enc, pk_r)?;
    let keys = key_schedule_base(suite, &shared, info_hash)?;
    // Sequence number 0: the nonce is the base nonce.
    let tag = suite.aead_seal(keys.key(suite), &keys.nonce, aad, buf)?;
    Ok(HpkeSealed { kem_output: enc, tag })
}

/// `OpenBase(enc, skR, info, aad, ct)` (RFC 9180 §6.1): checks `tag` and
/// decrypts `buf` in place.
pub fn open_base(
    suite: CipherSuite,
    sk_r: &HpkePrivateKey,
    enc: &KemOutput,
    info_hash: &Secret,
    aad: &[u8],
    buf: &mut [u8],
    tag: &[u8],
) -> Result<(), CryptoError> {
    let pk_r = sk_r.public_key(suite);
    let shared = extract_and_expand(suite, &dh(suite, sk_r, enc)?, enc, &pk_r)?;
    let keys = key_schedule_base(suite, &shared, info_hash)?;
    suite.aead_open(keys.key(suite), &keys.nonce, aad, buf, tag)
}
