//! The cryptography of a Welcome (RFC 9420 §12.4.3.1): sealing the GroupInfo
//! under the welcome key and each new member's GroupSecrets to its
//! `init_key`, and, on the joiner's side, opening both and checking what they
//! claim: the PSKs (§8.4), the GroupInfo signature (§12.4.3) and the
//! confirmation tag (§6.1, §8.1).
//!
//! **Creating** ([`WelcomeParams::create`]). The GroupInfo is encrypted first,
//! because it is the context of every `EncryptWithLabel(init_key, "Welcome",
//! encrypted_group_info, GroupSecrets)`. That HPKE `info`
//! (`EncryptContext{"MLS 1.0 Welcome", encrypted_group_info}`) is the same for
//! every recipient, so its `info_hash` is computed once: for 1,000 members and
//! a 340 KB GroupInfo that is one pass over 340 KB instead of 1,000. Every
//! ephemeral key's randomness is drawn from the caller's RNG before the seals,
//! which then run through an [`Executor`] (docs/architecture.md, decision 5): the same seed
//! gives the same bytes with any executor. Each seal works in a fixed-size
//! chunk of the output buffer at the place its `EncryptedGroupSecrets` ends up
//! (chunks are moved together afterwards if members' entries differ in size),
//! so the whole Welcome is built in the caller's buffer with no scratch space
//! when all entries have the same size.
//!
//! **Joining** ([`process_welcome`], then [`DecryptedWelcome::verify`]).
//! Processing finds our entry, decrypts the GroupSecrets, resolves the PSKs
//! through a [`PskStore`], and decrypts and decodes the GroupInfo. Its signer's
//! key lives in the ratchet tree, which the group layer owns (it may come in a
//! GroupInfo extension), so the epoch's secrets are only released by
//! [`DecryptedWelcome::verify`], which takes the signer's key, checks the
//! signature, derives the epoch secrets and checks the confirmation tag.
//! The group-level checks of §12.4.3.1 (unique group ID, tree integrity, our
//! leaf in the tree, ReInit/branch membership rules) are the caller's.

use core::sync::atomic::{AtomicBool, Ordering};

use rand_core::CryptoRng;
use zeroize::Zeroize;

use super::framing::WIRE_FORMAT_WELCOME;
use super::group_info::{GroupInfo, GroupInfoError};
use super::welcome::{PathSecret, Welcome};
use super::welcome_reader::ReadWelcome;
use crate::codec::{CodecError, Decode, ListView, Reader, Writer};
use crate::crypto::hpke::{self, HpkePrivateKey, HpkePublicKey, KemOutput};
use crate::crypto::labeled::{LABEL_PREFIX, VarintPrefix, decrypt_with_label};
use crate::crypto::signature::SignaturePublicKey;
use crate::crypto::{AEAD_TAG_LEN, CipherSuite, CryptoError, HashValue, Secret};
use crate::executor::Executor;
use crate::group_context::{GroupContext, PROTOCOL_VERSION_MLS10};
use crate::key_package::KeyPackage;
use crate::key_schedule::{EpochSecrets, welcome_key_nonce, welcome_secret};
use crate::psk::{PreSharedKeyId, Psk, PskStore, ResumptionPskUsage, psk_secret};
use crate::transcript::{interim_transcript_hash, verify_confirmation_tag};

/// Label of the GroupSecrets encryption (§12.4.3.1).
pub const WELCOME_LABEL: &[u8] = b"Welcome";

/// Most PSKs a GroupSecrets may list for this build to join with it (the
/// same bound as PreSharedKey proposals per Commit in the group layer).
pub const MAX_WELCOME_PSKS: usize = 16;


/// `MLSMessage` header of a Welcome: version, wire format, cipher suite.
const HEADER_LEN: usize = 6;

/// Why a Welcome could not be created or joined from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum WelcomeError {
    /// The Welcome's cipher suite is not the one of our KeyPackage, or its
    /// GroupInfo names another suite or protocol version.
    WrongCipherSuite,
    /// No `EncryptedGroupSecrets` is addressed to our KeyPackageRef.
    NotForUs,
    /// Our GroupSecrets did not decrypt with our `init_key` (§12.4.3.1).
    GroupSecretsDecryptionFailed,
    /// The GroupInfo did not decrypt with the welcome key and nonce.
    GroupInfoDecryptionFailed,
    /// A PSK the GroupSecrets lists is not in the [`PskStore`] (§12.4.3.1).
    UnknownPsk,
    /// The PSK list is invalid: a `psk_nonce` not of length `Nh`, the same
    /// PreSharedKeyID (PSK and nonce) twice, more than one `reinit`/`branch`
    /// resumption PSK, or one of them in a GroupInfo of an epoch other than 1
    /// (§8.4, §12.2, §12.4.3.1).
    InvalidPsk,
    /// More PSKs than [`MAX_WELCOME_PSKS`].
    TooManyPsks,
    /// The GroupSecrets or GroupInfo is malformed: a decoding error, or a
    /// joiner or path secret not of length `Nh`.
    Malformed(CodecError),
    /// The GroupInfo signature does not verify under the signer's key.
    InvalidGroupInfoSignature,
    /// The GroupInfo's `confirmation_tag` is not `MAC(confirmation_key,
    /// confirmed_transcript_hash)` of the epoch the Welcome leads to.
    InvalidConfirmationTag,
    /// A new member's `init_key` gives an all-zero Diffie-Hellman output
    /// (a low-order point): it cannot be encrypted to.
    InvalidInitKey,
    /// The caller's buffer is too small: at least `needed` bytes are
    /// needed (exactly the size when creating, where the layout is computed
    /// up front).
    BufferTooSmall {
        /// Bytes the buffer needs at least.
        needed: usize,
    },
    /// A length does not fit an MLS variable-length vector (2^30 bytes).
    TooLarge,
    /// A joiner, welcome or path secret given to [`WelcomeParams::create`]
    /// is not `Nh` bytes long (§8, §7.4: all are `DeriveSecret` or
    /// `ExpandWithLabel(.., Nh)` outputs); a joiner would refuse it.
    SecretLength {
        /// `Nh` of the suite: the length each secret needs.
        needed: usize,
    },
    /// A cryptographic operation failed otherwise (e.g. a malformed
    /// signature key).
    Crypto(CryptoError),
}

impl core::fmt::Display for WelcomeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::WrongCipherSuite => f.write_str("Welcome of another cipher suite"),
            Self::NotForUs => f.write_str("Welcome has no GroupSecrets for our KeyPackage"),
            Self::GroupSecretsDecryptionFailed => f.write_str("GroupSecrets do not decrypt"),
            Self::GroupInfoDecryptionFailed => f.write_str("GroupInfo does not decrypt"),
            Self::UnknownPsk => f.write_str("unknown PSK"),
            Self::InvalidPsk => f.write_str("invalid PSK list"),
            Self::TooManyPsks => write!(f, "more than {MAX_WELCOME_PSKS} PSKs (MAX_WELCOME_PSKS)"),
            Self::Malformed(e) => write!(f, "malformed GroupSecrets or GroupInfo: {e}"),
            Self::InvalidGroupInfoSignature => f.write_str("GroupInfo signature does not verify"),
            Self::InvalidConfirmationTag => f.write_str("confirmation tag does not match"),
            Self::InvalidInitKey => f.write_str("invalid init key"),
            Self::BufferTooSmall { needed } => write!(f, "buffer too small: at least {needed} bytes needed"),
            Self::TooLarge => f.write_str("length too large for a vector (2^30 - 1 bytes at most)"),
            Self::SecretLength { needed } => {
                write!(f, "joiner, welcome or path secret of the wrong length: {needed} bytes (Nh) needed")
            }
            Self::Crypto(e) => write!(f, "crypto: {e}"),
        }
    }
}

impl core::error::Error for WelcomeError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Malformed(e) => Some(e),
            Self::Crypto(e) => Some(e),
            _ => None,
        }
    }
}

impl From<CryptoError> for WelcomeError {
    fn from(e: CryptoError) -> Self {
        Self::Crypto(e)
    }
}

/// An encoding error while writing: the buffer, or a length too large.
fn writing(e: CodecError) -> WelcomeError {
    match e {
        CodecError::BufferTooSmall { needed } => WelcomeError::BufferTooSmall { needed },
        CodecError::VarintTooLarge => WelcomeError::TooLarge,
        other => WelcomeError::Malformed(other),
    }
}

// ---------------------------------------------------------------------------
// Sizes
// ---------------------------------------------------------------------------

/// Bytes of the MLS varint prefix of a vector of `n` bytes (§2.1.2).
fn varint_len(n: usize) -> Result<usize, WelcomeError> {
    crate::codec::varint_size(n).ok_or(WelcomeError::TooLarge)
}

/// Bytes of an `opaque<V>` (or any vector) with an `n`-byte body.
fn vector_len(n: usize) -> Result<usize, WelcomeError> {
    varint_len(n)?.checked_add(n).ok_or(WelcomeError::TooLarge)
}

fn sum(parts: &[usize]) -> Result<usize, WelcomeError> {
    parts.iter().try_fold(0usize, |acc, p| acc.checked_add(*p)).ok_or(WelcomeError::TooLarge)
}

/// What all GroupSecrets of a Welcome share, for sizing them.
#[derive(Clone, Copy)]
struct Shape {
    /// `Nh`: the joiner secret's length, and the bytes of randomness per
    /// ephemeral HPKE key (`DeriveKeyPair` input).
    joiner_len: usize,
    /// `Nenc` of the suite's KEM.
    kem_output_len: usize,
    /// The encoded `PreSharedKeyID psks<V>`, prefix included.
    psks_len: usize,
}

impl Shape {
    /// Bytes of a GroupSecrets with a path secret of `path_len` bytes.
    fn group_secrets_len(&self, path_len: Option<usize>) -> Result<usize, WelcomeError> {
        let path = match path_len {
            None => 1,
            Some(n) => vector_len(n)?.checked_add(1).ok_or(WelcomeError::TooLarge)?,
        };
        sum(&[vector_len(self.joiner_len)?, path, self.psks_len])
    }

    /// Bytes of the `EncryptedGroupSecrets` of `member`, and of its plaintext.
    fn entry_len(&self, member: &NewMember<'_>) -> Result<(usize, usize), WelcomeError> {
        let gs = self.group_secrets_len(member.path_secret.map(Secret::len))?;
        let ct = gs.checked_add(AEAD_TAG_LEN).ok_or(WelcomeError::TooLarge)?;
        let entry = sum(&[vector_len(member.key_package_ref.as_bytes().len())?, vector_len(self.kem_output_len)?, vector_len(ct)?])?;
        Ok((entry, gs))
    }
}

/// Sizes of a Welcome under construction ([`WelcomeParams::sizes`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WelcomeSizes {
    /// Bytes of the encoded `MLSMessage(Welcome)`.
    pub message_len: usize,
    /// Bytes the output buffer of [`WelcomeParams::create`] needs:
    /// `message_len` when every member's entry has the same size, else a
    /// little more (each entry is sealed in a slot of the largest size).
    pub buffer_len: usize,
}

/// Where everything goes in the output buffer while the Welcome is built.
struct Layout {
    shape: Shape,
    /// Bytes of each seal job's slot: the largest `EncryptedGroupSecrets`.
    stride: usize,
    /// Bytes of the `secrets<V>` body in the final message.
    secrets_body: usize,
    /// True when entries differ in size: slots are closed up after the seals.
    compact: bool,
    /// Offset of the first `EncryptedGroupSecrets`.
    secrets_start: usize,
    /// Bytes of `encrypted_group_info` (GroupInfo and tag).
    egi_len: usize,
    /// Offset of the `encrypted_group_info<V>` vector while the seals run.
    egi_start: usize,
    sizes: WelcomeSizes,
}

// ---------------------------------------------------------------------------
// Creating a Welcome
// ---------------------------------------------------------------------------

/// A new member to welcome: the KeyPackage it was added with and, if the
/// Commit had a path, the path secret of the lowest common ancestor of the
/// committer's leaf and its own (§12.4.3.1).
#[derive(Clone, Copy, Debug)]
pub struct NewMember<'a> {
    /// `MakeKeyPackageRef` of its KeyPackage (§5.2): `new_member`.
    pub key_package_ref: HashValue,
    /// The KeyPackage's `init_key`.
    pub init_key: HpkePublicKey,
    /// The path secret for this member, if any.
    pub path_secret: Option<&'a Secret>,
}

impl<'a> NewMember<'a> {
    /// The new member of `key_package` (already validated, §10.1).
    pub fn from_key_package(
        suite: CipherSuite,
        key_package: &KeyPackage<'_>,
        path_secret: Option<&'a Secret>,
    ) -> Result<Self, CryptoError> {
        Ok(Self {
            key_package_ref: key_package.reference(suite)?,
            init_key: HpkePublicKey::for_suite(suite, key_package.tbs.init_key)?,
            path_secret,
        })
    }
}

/// What a committer puts in every Welcome of an epoch (§12.4.3.1).
#[derive(Clone, Copy, Debug)]
pub struct WelcomeParams<'a> {
    /// The group's cipher suite.
    pub suite: CipherSuite,
    /// `joiner_secret` of the new epoch (§8).
    pub joiner_secret: &'a Secret,
    /// The PSKs of the Commit, in its order (§8.4): `GroupSecrets.psks`.
    pub psks: &'a [PreSharedKeyId<'a>],
    /// `welcome_secret` of the new epoch (from the joiner and PSK secrets).
    pub welcome_secret: &'a Secret,
    /// The encoded GroupInfo of the new epoch, signed (§12.4.3).
    pub group_info: &'a [u8],
}

impl WelcomeParams<'_> {
    fn layout(&self, members: &[NewMember<'_>]) -> Result<Layout, WelcomeError> {
        let mut psks = Writer::counter();
        psks.write_vec(self.psks).map_err(writing)?;
        let shape = Shape {
            joiner_len: self.joiner_secret.len(),
            kem_output_len: self.suite.kem().public_len(),
            psks_len: psks.len(),
        };
        let mut secrets_body = 0usize;
        let mut stride = shape.joiner_len;
        for m in members {
            let (entry, _) = shape.entry_len(m)?;
            secrets_body = secrets_body.checked_add(entry).ok_or(WelcomeError::TooLarge)?;
            stride = stride.max(entry);
        }
        let jobs_len = stride.checked_mul(members.len()).ok_or(WelcomeError::TooLarge)?;
        let secrets_start = sum(&[HEADER_LEN, varint_len(secrets_body)?])?;
        let egi_len = self.group_info.len().checked_add(AEAD_TAG_LEN).ok_or(WelcomeError::TooLarge)?;
        let egi_vector = vector_len(egi_len)?;
        let egi_start = sum(&[secrets_start, jobs_len])?;
        Ok(Layout {
            shape,
            stride,
            secrets_body,
            compact: jobs_len != secrets_body,
            secrets_start,
            egi_len,
            egi_start,
            sizes: WelcomeSizes {
                message_len: sum(&[secrets_start, secrets_body, egi_vector])?,
                buffer_len: sum(&[egi_start, egi_vector])?,
            },
        })
    }

    /// The sizes of the Welcome to `members` and of the buffer
    /// [`WelcomeParams::create`] needs for it.
    pub fn sizes(&self, members: &[NewMember<'_>]) -> Result<WelcomeSizes, WelcomeError> {
        Ok(self.layout(members)?.sizes)
    }

    /// Writes the `MLSMessage(Welcome)` for `members` into `out` and returns
    /// it (§12.4.3.1):
    ///
    /// ```text
    /// encrypted_group_info    = AEAD.Seal(welcome_key, welcome_nonce, "", GroupInfo)
    /// encrypted_group_secrets = EncryptWithLabel(init_key, "Welcome", encrypted_group_info,
    ///                             GroupSecrets{joiner_secret, path_secret, psks})
    /// ```
    ///
    /// One ephemeral key per member is drawn from `rng` (in member order)
    /// before the seals run on `executor`. `out` needs
    /// [`WelcomeSizes::buffer_len`] bytes. The joiner, welcome and path
    /// secrets must be `Nh` bytes ([`WelcomeError::SecretLength`], `out`
    /// untouched). On other errors, the used part of `out` is zeroed.
    pub fn create<'o>(
        &self,
        members: &[NewMember<'_>],
        rng: &mut impl CryptoRng,
        executor: &impl Executor,
        out: &'o mut [u8],
    ) -> Result<&'o [u8], WelcomeError> {
        let suite = self.suite;
        let nh = suite.hash_len();
        let paths = members.iter().filter_map(|m| m.path_secret);
        if [self.joiner_secret, self.welcome_secret].into_iter().chain(paths).any(|s| s.len() != nh) {
            return Err(WelcomeError::SecretLength { needed: nh });
        }
        let layout = self.layout(members)?;
        let short = WelcomeError::BufferTooSmall { needed: layout.sizes.buffer_len };
        let used = out.get_mut(..layout.sizes.buffer_len).ok_or(short)?;
        if let Err(e) = self.create_in(&layout, members, rng, executor, used) {
            used.zeroize();
            return Err(e);
        }
        out.get(..layout.sizes.message_len).ok_or(short)
    }

    /// [`WelcomeParams::create`] into `out`, exactly `buffer_len` bytes.
    fn create_in(
        &self,
        layout: &Layout,
        members: &[NewMember<'_>],
        rng: &mut impl CryptoRng,
        executor: &impl Executor,
        out: &mut [u8],
    ) -> Result<(), WelcomeError> {
        let suite = self.suite;
        // `out` was cut to the layout's size: these cannot fail.
        let short = WelcomeError::BufferTooSmall { needed: layout.sizes.buffer_len };
        // MLSMessage { version, wire_format, Welcome { cipher_suite, secrets<V> ...
        let header = out.get_mut(..layout.secrets_start).ok_or(short)?;
        let mut w = Writer::new(header);
        w.write_u16(PROTOCOL_VERSION_MLS10).map_err(writing)?;
        w.write_u16(WIRE_FORMAT_WELCOME).map_err(writing)?;
        w.write_u16(suite.to_u16()).map_err(writing)?;
        w.write_varint(layout.secrets_body).map_err(writing)?;

        let (front, back) = out.split_at_mut_checked(layout.egi_start).ok_or(short)?;
        let jobs = front.get_mut(layout.secrets_start..).ok_or(short)?;

        // ... encrypted_group_info<V> }, first: it is every seal's context.
        let egi = {
            let prefix = varint_len(layout.egi_len)?;
            let mut w = Writer::new(back);
            w.write_varint(layout.egi_len).map_err(writing)?;
            let egi = back.get_mut(prefix..).ok_or(short)?;
            let (body, tag) = egi.split_at_mut_checked(self.group_info.len()).ok_or(short)?;
            body.copy_from_slice(self.group_info);
            let (key, nonce) = welcome_key_nonce(suite, self.welcome_secret)?;
            let sealed = suite.aead_seal(key.as_bytes(), nonce.as_bytes(), &[], body)?;
            tag.get_mut(..AEAD_TAG_LEN).ok_or(short)?.copy_from_slice(&sealed);
            &*egi
        };
        let info_hash = welcome_info_hash(suite, egi)?;

        // Randomness before the batch, in member order. (A stride is at
        // least the joiner secret's length; checked so that no panic path of
        // `chunks_exact_mut` is left in the binary.)
        if layout.stride == 0 {
            return Err(WelcomeError::TooLarge);
        }
        for chunk in jobs.chunks_exact_mut(layout.stride) {
            rng.fill_bytes(chunk.get_mut(..layout.shape.joiner_len).ok_or(short)?);
        }
        // Jobs report failures through flags (plain stores: no atomic
        // read-modify-write, which thumbv6m lacks).
        let bad_key = AtomicBool::new(false);
        let failed = AtomicBool::new(false);
        let shape = layout.shape;
        executor.for_each_chunk(jobs, layout.stride, &|i, chunk| {
            let sealed = members
                .get(i)
                .ok_or(short)
                .and_then(|m| seal_job(suite, &info_hash, self.joiner_secret, self.psks, shape, m, chunk));
            if let Err(e) = sealed {
                chunk.zeroize();
                let flag = if e == WelcomeError::InvalidInitKey { &bad_key } else { &failed };
                flag.store(true, Ordering::Relaxed);
            }
        });
        if bad_key.load(Ordering::Relaxed) {
            return Err(WelcomeError::InvalidInitKey);
        }
        if failed.load(Ordering::Relaxed) {
            // Unreachable with consistent sizes: every slot fits its entry.
            return Err(WelcomeError::Crypto(CryptoError::InvalidLength));
        }

        // Entries of different sizes: close the gaps, then bring the GroupInfo
        // behind the last entry.
        if layout.compact {
            let mut dst = layout.secrets_start;
            for (i, m) in members.iter().enumerate() {
                let (len, _) = shape.entry_len(m)?;
                let src = i
                    .checked_mul(layout.stride)
                    .and_then(|o| o.checked_add(layout.secrets_start))
                    .ok_or(WelcomeError::TooLarge)?;
                move_within(out, src, len, dst)?;
                dst = dst.checked_add(len).ok_or(WelcomeError::TooLarge)?;
            }
            let egi_vector = vector_len(layout.egi_len)?;
            move_within(out, layout.egi_start, egi_vector, dst)?;
            out.get_mut(layout.sizes.message_len..).ok_or(short)?.zeroize();
        }
        Ok(())
    }
}

/// `buf.copy_within(src..src + len, dst)`, refusing ranges out of bounds,
/// with no panic path ([`crate::codec::move_within`]: the bytes the move
/// uncovers are unspecified, and all are overwritten or zeroed after).
fn move_within(buf: &mut [u8], src: usize, len: usize, dst: usize) -> Result<(), WelcomeError> {
    let overflow = WelcomeError::BufferTooSmall { needed: usize::MAX };
    let src_end = src.checked_add(len).ok_or(overflow)?;
    let dst_end = dst.checked_add(len).ok_or(overflow)?;
    if src_end > buf.len() || dst_end > buf.len() || !crate::codec::move_within(buf, src..src_end, dst) {
        return Err(WelcomeError::BufferTooSmall { needed: src_end.max(dst_end) });
    }
    Ok(())
}

/// The HPKE `info_hash` of `EncryptContext{"MLS 1.0 Welcome",
/// encrypted_group_info}` (§5.1.3), the same for every recipient.
fn welcome_info_hash(suite: CipherSuite, encrypted_group_info: &[u8]) -> Result<Secret, CryptoError> {
    let label_len = VarintPrefix::new(LABEL_PREFIX.len() + WELCOME_LABEL.len())?;
    let context_len = VarintPrefix::new(encrypted_group_info.len())?;
    hpke::info_hash(
        suite,
        &[label_len.as_bytes(), LABEL_PREFIX, WELCOME_LABEL, context_len.as_bytes(), encrypted_group_info],
    )
}

/// `GroupSecrets { joiner_secret<V>; optional<PathSecret>; psks<V> }`.
fn write_group_secrets(
    w: &mut Writer<'_>,
    joiner_secret: &Secret,
    path_secret: Option<&Secret>,
    psks: &[PreSharedKeyId<'_>],
) -> Result<(), CodecError> {
    w.write_opaque(joiner_secret.as_bytes())?;
    match path_secret {
        None => w.write_u8(0)?,
        Some(p) => {
            w.write_u8(1)?;
            w.write_opaque(p.as_bytes())?;
        }
    }
    w.write_vec(psks)
}

/// One seal job. `chunk` holds the ephemeral ikm in its first bytes; it is
/// wiped and replaced by the member's encoded `EncryptedGroupSecrets`
/// (`new_member<V> || kem_output<V> || ciphertext<V>`), zero-padded. The
/// GroupSecrets are written where their ciphertext goes and encrypted in
/// place, so no plaintext outlives the job.
fn seal_job(
    suite: CipherSuite,
    info_hash: &Secret,
    joiner_secret: &Secret,
    psks: &[PreSharedKeyId<'_>],
    shape: Shape,
    member: &NewMember<'_>,
    chunk: &mut [u8],
) -> Result<(), WelcomeError> {
    let ikm = Secret::from_slice(chunk.get(..shape.joiner_len).ok_or(WelcomeError::BufferTooSmall { needed: shape.joiner_len })?)?;
    chunk.zeroize();
    let (_, gs_len) = shape.entry_len(member)?;
    let reference = member.key_package_ref.as_bytes();
    let ct_len = gs_len.checked_add(AEAD_TAG_LEN).ok_or(WelcomeError::TooLarge)?;
    let head_len = sum(&[vector_len(reference.len())?, vector_len(shape.kem_output_len)?, varint_len(ct_len)?])?;
    // The chunk is sized by the layout: these cannot fail.
    let short = WelcomeError::BufferTooSmall { needed: sum(&[head_len, ct_len])? };
    let (head, rest) = chunk.split_at_mut_checked(head_len).ok_or(short)?;
    let (plaintext, rest) = rest.split_at_mut_checked(gs_len).ok_or(short)?;
    let tag = rest.get_mut(..AEAD_TAG_LEN).ok_or(short)?;

    let mut w = Writer::new(plaintext);
    write_group_secrets(&mut w, joiner_secret, member.path_secret, psks).map_err(writing)?;
    if w.len() != gs_len {
        return Err(short);
    }
    let sealed = hpke::seal_base(suite, &member.init_key, info_hash, &[], plaintext, ikm.as_bytes())
        .map_err(|e| match e {
            CryptoError::InvalidSharedSecret => WelcomeError::InvalidInitKey,
            e => WelcomeError::Crypto(e),
        })?;
    tag.copy_from_slice(&sealed.tag);

    let mut w = Writer::new(head);
    w.write_opaque(reference).map_err(writing)?;
    w.write_opaque(sealed.kem_output.as_bytes()).map_err(writing)?;
    w.write_varint(ct_len).map_err(writing)?;
    if w.len() != head_len {
        return Err(short);
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Joining from a Welcome
// ---------------------------------------------------------------------------

/// A Welcome whose GroupSecrets and GroupInfo were decrypted with our keys,
/// not yet verified: [`DecryptedWelcome::verify`] checks the GroupInfo
/// signature and the confirmation tag and only then yields the epoch secrets.
///
/// It borrows the caller's buffer, where the GroupInfo lies decrypted (and
/// the PSK IDs; the secrets of the GroupSecrets were copied out and wiped).
#[derive(Debug)]
pub struct DecryptedWelcome<'o> {
    suite: CipherSuite,
    group_info: GroupInfo<'o>,
    psks: ListView<'o, PreSharedKeyId<'o>>,
    joiner_secret: Secret,
    psk_secret: Secret,
    path_secret: Option<Secret>,
}

/// A Welcome whose GroupInfo signature and confirmation tag verified: what
/// the group layer builds the joined group from (§12.4.3.1).
#[derive(Debug)]
pub struct VerifiedWelcome<'o> {
    /// The decrypted GroupInfo (its `ratchet_tree` extension, if any, among
    /// its extensions).
    pub group_info: GroupInfo<'o>,
    /// Its GroupContext, checked (version mls10, our cipher suite): the
    /// GroupContext of the joined epoch.
    pub group_context: GroupContext<'o>,
    /// The secrets of the joined epoch.
    pub epoch_secrets: EpochSecrets,
    /// `GroupSecrets.path_secret`: the secret of the lowest common ancestor
    /// of our leaf and the signer's, if the Commit had a path.
    pub path_secret: Option<Secret>,
    /// `GroupSecrets.psks`: the PSKs of the Commit (for the ReInit and
    /// branch checks of §12.4.3.1 that depend on other groups).
    pub psks: ListView<'o, PreSharedKeyId<'o>>,
    /// `interim_transcript_hash` of the epoch (§8.2), from the GroupInfo's
    /// confirmed transcript hash and confirmation tag.
    pub interim_transcript_hash: HashValue,
}

/// Processes a Welcome for the KeyPackage whose reference is
/// `key_package_ref`, of cipher suite `suite`, with the private key of its
/// `init_key` (§12.4.3.1, up to the GroupInfo signature):
///
/// 1. finds the `EncryptedGroupSecrets` addressed to `key_package_ref`;
/// 2. `DecryptWithLabel(init_key_priv, "Welcome", encrypted_group_info, ...)`;
/// 3. checks the PSK list and looks every PSK up in `psk_store`;
/// 4. derives `welcome_secret`, then `welcome_key`/`welcome_nonce`, decrypts
///    the GroupInfo and decodes it.
///
/// `buf` receives the decrypted GroupSecrets (secrets wiped after use) and
/// GroupInfo: the lengths of our `encrypted_group_secrets` ciphertext and of
/// `encrypted_group_info` (less two AEAD tags) suffice; the encoded Welcome's
/// length always does.
pub fn process_welcome<'o>(
    suite: CipherSuite,
    key_package_ref: &[u8],
    init_key: &HpkePrivateKey,
    welcome: &Welcome<'_>,
    psk_store: &dyn PskStore,
    buf: &'o mut [u8],
) -> Result<DecryptedWelcome<'o>, WelcomeError> {
    let ours = OurSecrets::find(suite, key_package_ref, welcome)?;
    let egi = welcome.encrypted_group_info;
    let gi_len = egi.len().checked_sub(AEAD_TAG_LEN).ok_or(WelcomeError::GroupInfoDecryptionFailed)?;
    let (gi_ct, gi_tag) = egi.split_at_checked(gi_len).ok_or(WelcomeError::GroupInfoDecryptionFailed)?;
    let gs_len = ours.ciphertext.len().checked_sub(AEAD_TAG_LEN).ok_or(WelcomeError::GroupSecretsDecryptionFailed)?;
    let (gs_ct, gs_tag) = ours.ciphertext.split_at_checked(gs_len).ok_or(WelcomeError::GroupSecretsDecryptionFailed)?;
    let short = WelcomeError::BufferTooSmall { needed: gs_len.saturating_add(gi_len) };
    let (gs_buf, rest) = buf.split_at_mut_checked(gs_len).ok_or(short)?;
    let gi_buf = rest.get_mut(..gi_len).ok_or(short)?;
    gs_buf.copy_from_slice(gs_ct);
    let opened = open_group_secrets(suite, init_key, &ours.kem_output, egi, gs_buf, gs_tag, psk_store)?;
    gi_buf.copy_from_slice(gi_ct);
    open_group_info(suite, opened, gi_buf, gi_tag)
}

/// [`process_welcome`] with the Welcome decrypted where it lies: `message`
/// is an encoded `MLSMessage(Welcome)`, and our GroupSecrets and the
/// GroupInfo are opened in place (no second buffer; the GroupSecrets' secrets
/// are wiped after use). `message` is left holding plaintext: discard it
/// after the join, whether it succeeds or not.
pub fn process_welcome_in_place<'o>(
    suite: CipherSuite,
    key_package_ref: &[u8],
    init_key: &HpkePrivateKey,
    message: &'o mut [u8],
    psk_store: &dyn PskStore,
) -> Result<DecryptedWelcome<'o>, WelcomeError> {
    // Where our GroupSecrets and the GroupInfo lie in `message`.
    let base = message.as_ptr() as usize;
    let at = |s: &[u8]| (s.as_ptr() as usize).wrapping_sub(base);
    let (kem_output, gs_at, gs_len, gi_at, gi_len) = {
        let decoded = super::mls_message::MlsMessage::decode_exact(message).map_err(WelcomeError::Malformed)?;
        let super::mls_message::MlsMessageBody::Welcome(welcome) = decoded.body else {
            return Err(WelcomeError::Malformed(CodecError::InvalidValue));
        };
        let ours = OurSecrets::find(suite, key_package_ref, &welcome)?;
        let egi = welcome.encrypted_group_info;
        (ours.kem_output, at(ours.ciphertext), ours.ciphertext.len(), at(egi), egi.len())
    };
    // The secrets come before the GroupInfo in a Welcome.
    let gs_end = gs_at.checked_add(gs_len).filter(|e| *e <= gi_at).ok_or(WelcomeError::Malformed(CodecError::InvalidValue))?;
    let (low, high) = message.split_at_mut_checked(gi_at).ok_or(WelcomeError::Malformed(CodecError::Truncated))?;
    let gs = low.get_mut(gs_at..gs_end).ok_or(WelcomeError::Malformed(CodecError::Truncated))?;
    let egi = high.get_mut(..gi_len).ok_or(WelcomeError::Malformed(CodecError::Truncated))?;
    open_in_place(suite, init_key, &kem_output, gs, egi, psk_store)
}

/// [`process_welcome`] of a Welcome read in pieces ([`WelcomeReader`]):
/// our GroupSecrets and the GroupInfo are opened where the reader kept them.
///
/// [`WelcomeReader`]: super::welcome_reader::WelcomeReader
///
/// Taken by reference: on a device it is no copy of its KEM output and
/// KeyPackageRef in each frame of the join.
pub fn process_read_welcome<'o>(
    suite: CipherSuite,
    key_package_ref: &[u8],
    init_key: &HpkePrivateKey,
    welcome: &'o mut ReadWelcome<'_>,
    psk_store: &dyn PskStore,
) -> Result<DecryptedWelcome<'o>, WelcomeError> {
    if welcome.suite != suite {
        return Err(WelcomeError::WrongCipherSuite);
    }
    // Read for another KeyPackage: its entry is not ours.
    if welcome.reference.as_bytes() != key_package_ref {
        return Err(WelcomeError::NotForUs);
    }
    let (gs, egi) = welcome
        .kept
        .split_at_mut_checked(welcome.group_info_at)
        .ok_or(WelcomeError::Malformed(CodecError::Truncated))?;
    let gs = gs.get_mut(..welcome.secrets_len).ok_or(WelcomeError::Malformed(CodecError::Truncated))?;
    open_in_place(suite, init_key, &welcome.kem_output, gs, egi, psk_store)
}

/// Opens our GroupSecrets `gs` (ciphertext and tag) with `init_key` and the
/// encrypted GroupInfo `egi` with the welcome key, both in place.
fn open_in_place<'o>(
    suite: CipherSuite,
    init_key: &HpkePrivateKey,
    kem_output: &KemOutput,
    gs: &'o mut [u8],
    egi: &'o mut [u8],
    psk_store: &dyn PskStore,
) -> Result<DecryptedWelcome<'o>, WelcomeError> {
    let gi_len = egi.len();
    let gs_ct_len = gs.len().checked_sub(AEAD_TAG_LEN).ok_or(WelcomeError::GroupSecretsDecryptionFailed)?;
    let (gs_ct, gs_tag) = gs.split_at_mut_checked(gs_ct_len).ok_or(WelcomeError::GroupSecretsDecryptionFailed)?;
    let opened = open_group_secrets(suite, init_key, kem_output, egi, gs_ct, gs_tag, psk_store)?;
    let ct_len = gi_len.checked_sub(AEAD_TAG_LEN).ok_or(WelcomeError::GroupInfoDecryptionFailed)?;
    let (gi, gi_tag) = egi.split_at_mut_checked(ct_len).ok_or(WelcomeError::GroupInfoDecryptionFailed)?;
    open_group_info(suite, opened, gi, gi_tag)
}

/// Our `EncryptedGroupSecrets` in a Welcome of `suite`.
struct OurSecrets<'w> {
    kem_output: KemOutput,
    /// The AEAD ciphertext and its tag.
    ciphertext: &'w [u8],
}

impl<'w> OurSecrets<'w> {
    fn find(suite: CipherSuite, key_package_ref: &[u8], welcome: &Welcome<'w>) -> Result<Self, WelcomeError> {
        if welcome.cipher_suite != suite.to_u16() {
            return Err(WelcomeError::WrongCipherSuite);
        }
        let entry = welcome.secrets_for(key_package_ref).ok_or(WelcomeError::NotForUs)?;
        let sealed = entry.encrypted_group_secrets;
        let kem_output = KemOutput::from_slice(sealed.kem_output).map_err(|_| WelcomeError::GroupSecretsDecryptionFailed)?;
        Ok(Self { kem_output, ciphertext: sealed.ciphertext })
    }
}

/// Our GroupSecrets, opened, and the PSKs they name, resolved.
struct OpenedSecrets<'o> {
    psks: ListView<'o, PreSharedKeyId<'o>>,
    joiner_secret: Secret,
    psk_secret: Secret,
    path_secret: Option<Secret>,
}

/// `DecryptWithLabel(init_key_priv, "Welcome", encrypted_group_info, ...)`
/// of our GroupSecrets in place in `gs_buf` (its tag `gs_tag`); the secrets
/// are copied out and wiped from `gs_buf`, the PSK IDs stay there.
fn open_group_secrets<'o>(
    suite: CipherSuite,
    init_key: &HpkePrivateKey,
    kem_output: &KemOutput,
    encrypted_group_info: &[u8],
    gs_buf: &'o mut [u8],
    gs_tag: &[u8],
    psk_store: &dyn PskStore,
) -> Result<OpenedSecrets<'o>, WelcomeError> {
    decrypt_with_label(suite, init_key, WELCOME_LABEL, encrypted_group_info, kem_output, gs_buf, gs_tag)
        .map_err(|_| WelcomeError::GroupSecretsDecryptionFailed)?;
    let (joiner_secret, path_secret, psks_start) = match read_group_secrets(suite, gs_buf) {
        Ok(v) => v,
        Err(e) => {
            gs_buf.zeroize();
            return Err(e);
        }
    };
    // Wipe the secrets from the buffer; the PSK IDs stay for the caller.
    let (secret_part, psk_part) = gs_buf.split_at_mut_checked(psks_start).ok_or(WelcomeError::GroupSecretsDecryptionFailed)?;
    secret_part.zeroize();
    let psk_part: &'o [u8] = psk_part;
    let psks = ListView::<PreSharedKeyId<'o>>::decode_exact(psk_part).map_err(WelcomeError::Malformed)?;
    let psk_secret = resolve_psks(suite, &psks, psk_store)?;
    Ok(OpenedSecrets { psks, joiner_secret, psk_secret, path_secret })
}

/// Derives `welcome_secret`, then `welcome_key`/`welcome_nonce`, decrypts
/// the GroupInfo in place in `gi` and decodes it.
fn open_group_info<'o>(
    suite: CipherSuite,
    opened: OpenedSecrets<'o>,
    gi: &'o mut [u8],
    gi_tag: &[u8],
) -> Result<DecryptedWelcome<'o>, WelcomeError> {
    let OpenedSecrets { psks, joiner_secret, psk_secret, path_secret } = opened;
    let welcome_secret = welcome_secret(suite, &joiner_secret, &psk_secret)?;
    let (key, nonce) = welcome_key_nonce(suite, &welcome_secret)?;
    suite
        .aead_open(key.as_bytes(), nonce.as_bytes(), &[], gi, gi_tag)
        .map_err(|_| WelcomeError::GroupInfoDecryptionFailed)?;
    let gi: &'o [u8] = gi;
    let group_info = GroupInfo::decode_exact(gi).map_err(WelcomeError::Malformed)?;
    let gc = &group_info.tbs.group_context;
    if gc.version != PROTOCOL_VERSION_MLS10 || gc.cipher_suite != suite.to_u16() {
        return Err(WelcomeError::WrongCipherSuite);
    }
    Ok(DecryptedWelcome { suite, group_info, psks, joiner_secret, psk_secret, path_secret })
}

/// Decodes GroupSecrets; returns the joiner and path secrets, copied, and
/// the offset of the `psks` vector.
fn read_group_secrets(suite: CipherSuite, plaintext: &[u8]) -> Result<(Secret, Option<Secret>, usize), WelcomeError> {
    let nh = suite.hash_len();
    let mut r = Reader::new(plaintext);
    let joiner = r.read_opaque().map_err(WelcomeError::Malformed)?;
    let path = Option::<PathSecret<'_>>::decode(&mut r).map_err(WelcomeError::Malformed)?;
    let psks_start = plaintext.len().saturating_sub(r.remaining().len());
    ListView::<PreSharedKeyId<'_>>::decode(&mut r).map_err(WelcomeError::Malformed)?;
    r.finish().map_err(WelcomeError::Malformed)?;
    let exact = |s: &[u8]| {
        if s.len() == nh { Secret::from_slice(s).map_err(WelcomeError::Crypto) } else { Err(WelcomeError::Malformed(CodecError::InvalidValue)) }
    };
    let joiner = exact(joiner)?;
    let path = path.map(|p| exact(p.path_secret)).transpose()?;
    Ok((joiner, path, psks_start))
}

/// True for a resumption PSK of usage `reinit` or `branch`.
fn is_reinit_or_branch(id: &PreSharedKeyId<'_>) -> bool {
    matches!(id.psk, Psk::Resumption { usage: ResumptionPskUsage::Reinit | ResumptionPskUsage::Branch, .. })
}

/// Checks the PSK list of a GroupSecrets and computes `psk_secret` (§8.4)
/// from the keys in `store`.
fn resolve_psks(
    suite: CipherSuite,
    psks: &ListView<'_, PreSharedKeyId<'_>>,
    store: &dyn PskStore,
) -> Result<Secret, WelcomeError> {
    let mut list: heapless::Vec<(PreSharedKeyId<'_>, &[u8]), MAX_WELCOME_PSKS> = heapless::Vec::new();
    let mut reinit_or_branch = 0usize;
    for id in psks.iter() {
        // The same PreSharedKeyID twice, nonce included (§12.2): one PSK
        // with fresh nonces is two PSKs, as in a Commit.
        if id.psk_nonce.len() != suite.hash_len() || list.iter().any(|(other, _)| *other == id) {
            return Err(WelcomeError::InvalidPsk);
        }
        if is_reinit_or_branch(&id) {
            reinit_or_branch += 1;
            if reinit_or_branch > 1 {
                return Err(WelcomeError::InvalidPsk);
            }
        }
        let key = store.psk(&id.psk).ok_or(WelcomeError::UnknownPsk)?;
        list.push((id, key)).map_err(|_| WelcomeError::TooManyPsks)?;
    }
    Ok(psk_secret(suite, &list)?)
}

impl<'o> DecryptedWelcome<'o> {
    /// The decrypted GroupInfo, not yet verified: its `signer` and
    /// extensions (e.g. `ratchet_tree`) tell the caller where to find the
    /// signer's key.
    pub fn group_info(&self) -> &GroupInfo<'o> {
        &self.group_info
    }

    /// `GroupInfo.signer`: the leaf index whose signature key verifies it.
    pub fn signer(&self) -> u32 {
        self.group_info.tbs.signer
    }

    /// The PSK IDs of the GroupSecrets.
    pub fn psks(&self) -> ListView<'o, PreSharedKeyId<'o>> {
        self.psks
    }

    /// Verifies the GroupInfo with the signature key of leaf
    /// [`DecryptedWelcome::signer`] of the group's ratchet tree (§12.4.3),
    /// derives the epoch secrets from the joiner secret, the PSK secret and
    /// the GroupInfo's GroupContext (§8), and checks `confirmation_tag =
    /// MAC(confirmation_key, confirmed_transcript_hash)` in constant time.
    /// A `reinit` or `branch` PSK requires epoch 1 (§12.4.3.1).
    pub fn verify(self, signer_key: &SignaturePublicKey) -> Result<VerifiedWelcome<'o>, WelcomeError> {
        self.check_signature(signer_key)?.verify()
    }

    /// The first of [`Self::verify`]'s checks: the GroupInfo's signature by
    /// `signer_key`. Its own step (and frame): a device verifies it before
    /// the epoch's secrets and the verified Welcome are on its stack. The
    /// Welcome is borrowed, not moved: passed on by value, each step's
    /// copy (208 bytes) was on the stack under the verification.
    #[inline(never)]
    pub fn check_signature(&self, signer_key: &SignaturePublicKey) -> Result<SignedWelcome<'_, 'o>, WelcomeError> {
        self.group_info.verify_signature(self.suite, signer_key).map_err(|e| match e {
            GroupInfoError::InvalidSignature => WelcomeError::InvalidGroupInfoSignature,
            GroupInfoError::WrongCipherSuite => WelcomeError::WrongCipherSuite,
            GroupInfoError::Crypto(e) => WelcomeError::Crypto(e),
            GroupInfoError::Codec(e) => WelcomeError::Malformed(e),
        })?;
        Ok(SignedWelcome(self))
    }
}

/// A Welcome whose GroupInfo's signature verified
/// ([`DecryptedWelcome::check_signature`]); [`Self::verify`] checks the
/// rest.
#[derive(Debug)]
pub struct SignedWelcome<'d, 'o>(&'d DecryptedWelcome<'o>);

impl<'o> SignedWelcome<'_, 'o> {
    /// Derives the epoch's secrets and checks the confirmation tag and the
    /// resumption PSKs' epoch (§12.4.3.1).
    pub fn verify(self) -> Result<VerifiedWelcome<'o>, WelcomeError> {
        let DecryptedWelcome { suite, group_info: gi, psks, joiner_secret, psk_secret, path_secret } = self.0;
        let (suite, gi, psks) = (*suite, *gi, *psks);
        let group_context = gi.tbs.group_context.to_group_context().ok_or(WelcomeError::WrongCipherSuite)?;
        let epoch_secrets = EpochSecrets::derive(suite, joiner_secret, psk_secret, gi.group_context_bytes())?;
        let confirmed = group_context.confirmed_transcript_hash;
        if !verify_confirmation_tag(suite, &epoch_secrets.confirmation_key, confirmed, gi.tbs.confirmation_tag) {
            return Err(WelcomeError::InvalidConfirmationTag);
        }
        if psks.iter().any(|id| is_reinit_or_branch(&id)) && group_context.epoch != 1 {
            return Err(WelcomeError::InvalidPsk);
        }
        let interim_transcript_hash = interim_transcript_hash(suite, confirmed, gi.tbs.confirmation_tag)?;
        Ok(VerifiedWelcome {
            group_info: gi,
            group_context,
            epoch_secrets,
            path_secret: path_secret.clone(),
            psks,
            interim_transcript_hash,
        })
    }
}
