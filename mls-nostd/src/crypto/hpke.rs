//! HPKE base mode, single shot (RFC 9180 §4–§6) with DHKEM(X25519, HKDF-SHA256).
//!
//! Written here rather than taken from the `hpke` crate (which is our test
//! oracle) for two reasons that matter to MLS: the `info` of an MLS seal is an
//! `EncryptContext` that may hold a whole encrypted GroupInfo, so it is hashed
//! piece by piece without a buffer; and that `info_hash` is the same for every
//! recipient of a Welcome, so callers compute it once ([`info_hash`]) and seal
//! to many recipients with it. The ephemeral key's randomness is an argument,
//! so a batch of seals can draw all randomness before it runs.

use super::{AEAD_NONCE_LEN, AEAD_TAG_LEN, CipherSuite, CryptoError, MAX_AEAD_KEY_LEN, Secret};
use subtle::ConstantTimeEq;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Length of a KEM public key (`Npk`) and encapsulation (`Nenc`) of the supported KEMs.
pub const KEM_PUBLIC_LEN: usize = 32;
/// Length of a KEM private key (`Nsk`) of the supported KEMs.
pub const KEM_PRIVATE_LEN: usize = 32;

const HPKE_V1: &[u8] = b"HPKE-v1";
const MODE_BASE: u8 = 0x00;
/// Most pieces an `info` (or other extract input) may be given in.
pub const MAX_INFO_PARTS: usize = 8;

/// An HPKE public key (`HPKEPublicKey`, RFC 9420 §5.1.1), raw bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct HpkePublicKey([u8; KEM_PUBLIC_LEN]);

/// The KEM output (`enc`) of a seal: an ephemeral public key for DHKEM.
pub type KemOutput = HpkePublicKey;

impl HpkePublicKey {
    /// A public key from its serialization; fails on a wrong length.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        Ok(Self(bytes.try_into().map_err(|_| CryptoError::InvalidKey)?))
    }

    /// The serialized key.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl core::fmt::Debug for HpkePublicKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("HpkePublicKey(")?;
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

/// An HPKE private key, with its public key computed once; zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct HpkePrivateKey {
    sk: [u8; KEM_PRIVATE_LEN],
    #[zeroize(skip)]
    pk: [u8; KEM_PUBLIC_LEN],
}

impl HpkePrivateKey {
    /// An all-zero placeholder key (no group member holds it).
    pub const ZERO: Self = Self { sk: [0; KEM_PRIVATE_LEN], pk: [0; KEM_PUBLIC_LEN] };

    /// A private key from its serialization (`DeserializePrivateKey`, which
    /// clamps its input for X25519: RFC 9180 §7.1.2).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        Ok(Self::from_scalar(bytes.try_into().map_err(|_| CryptoError::InvalidKey)?))
    }

    /// Clamps `sk` (RFC 7748 §5; serialized keys are always clamped) and
    /// computes its public key.
    fn from_scalar(mut sk: [u8; KEM_PRIVATE_LEN]) -> Self {
        if let Some(first) = sk.first_mut() {
            *first &= 248;
        }
        if let Some(last) = sk.last_mut() {
            *last = (*last & 127) | 64;
        }
        let pk = PublicKey::from(&StaticSecret::from(sk)).to_bytes();
        let key = Self { sk, pk };
        sk.zeroize();
        key
    }

    /// The serialized key.
    pub fn as_bytes(&self) -> &[u8] {
        &self.sk
    }

    /// The matching public key (kept, not recomputed).
    pub fn public_key(&self, _suite: CipherSuite) -> HpkePublicKey {
        HpkePublicKey(self.pk)
    }
}

impl PartialEq for HpkePrivateKey {
    fn eq(&self, other: &Self) -> bool {
        self.sk.ct_eq(&other.sk).into()
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

/// `DeriveKeyPair(ikm)` for DHKEM(X25519) (RFC 9180 §7.1.3).
pub fn derive_key_pair(suite: CipherSuite, ikm: &[u8]) -> Result<(HpkePrivateKey, HpkePublicKey), CryptoError> {
    let sid = kem_suite_id(suite);
    let dkp_prk = labeled_extract(suite, &sid, &[], b"dkp_prk", &[ikm])?;
    let mut scalar = [0u8; KEM_PRIVATE_LEN];
    labeled_expand(suite, &sid, dkp_prk.as_bytes(), b"sk", &[], &mut scalar)?;
    let sk = HpkePrivateKey::from_scalar(scalar);
    scalar.zeroize();
    let pk = sk.public_key(suite);
    Ok((sk, pk))
}

/// `DH(sk, pk)`, rejecting the all-zero output (RFC 9180 §7.1.4).
fn dh(sk: &[u8; KEM_PRIVATE_LEN], pk: &HpkePublicKey) -> Result<Secret, CryptoError> {
    let shared = StaticSecret::from(*sk).diffie_hellman(&PublicKey::from(pk.0));
    if !shared.was_contributory() {
        return Err(CryptoError::InvalidSharedSecret);
    }
    Secret::from_slice(shared.as_bytes())
}

/// `ExtractAndExpand(dh, kem_context)` of DHKEM (RFC 9180 §4.1).
fn extract_and_expand(
    suite: CipherSuite,
    dh: &Secret,
    enc: &HpkePublicKey,
    pk_r: &HpkePublicKey,
) -> Result<Secret, CryptoError> {
    let sid = kem_suite_id(suite);
    let eae_prk = labeled_extract(suite, &sid, &[], b"eae_prk", &[dh.as_bytes()])?;
    let mut kem_context = [0u8; 2 * KEM_PUBLIC_LEN];
    let (a, b) = kem_context.split_at_mut(KEM_PUBLIC_LEN);
    a.copy_from_slice(&enc.0);
    b.copy_from_slice(&pk_r.0);
    let mut shared = Secret::zero(32)?;
    labeled_expand(suite, &sid, eae_prk.as_bytes(), b"shared_secret", &kem_context, shared.as_mut_bytes())?;
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
    let shared = extract_and_expand(suite, &dh(&sk_e.sk, pk_r)?, &enc, pk_r)?;
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
    let shared = extract_and_expand(suite, &dh(&sk_r.sk, enc)?, enc, &pk_r)?;
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
    let shared = extract_and_expand(suite, &dh(&sk_e.sk, pk_r)?, &enc, pk_r)?;
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
    let shared = extract_and_expand(suite, &dh(&sk_r.sk, enc)?, enc, &pk_r)?;
    let keys = key_schedule_base(suite, &shared, info_hash)?;
    suite.aead_open(keys.key(suite), &keys.nonce, aad, buf, tag)
}
