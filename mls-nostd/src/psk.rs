//! Pre-shared keys (RFC 9420 §8.4): PreSharedKeyID and the `psk_secret` that
//! chains every PSK of a commit into the key schedule.

use crate::codec::{CodecError, Decode, Encode, Reader, Writer};
use crate::crypto::labeled::{VarintPrefix, expand_with_label_parts};
use crate::crypto::{CipherSuite, CryptoError, Secret};

/// `ResumptionPSKUsage` (§8.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResumptionPskUsage {
    /// `application(1)`: a PSK injected by the application.
    Application,
    /// `reinit(2)`: the PSK of a ReInit.
    Reinit,
    /// `branch(3)`: the PSK of a subgroup branch.
    Branch,
}

impl ResumptionPskUsage {
    const fn to_u8(self) -> u8 {
        match self {
            Self::Application => 1,
            Self::Reinit => 2,
            Self::Branch => 3,
        }
    }

    const fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::Application),
            2 => Some(Self::Reinit),
            3 => Some(Self::Branch),
            _ => None,
        }
    }
}

/// The `select (PreSharedKeyID.psktype)` part of a PreSharedKeyID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Psk<'a> {
    /// `external(1)`: `opaque psk_id<V>`.
    External {
        /// The application's identifier of the key.
        psk_id: &'a [u8],
    },
    /// `resumption(2)`: a resumption PSK of another epoch or group.
    Resumption {
        /// What the resumption PSK is used for.
        usage: ResumptionPskUsage,
        /// `opaque psk_group_id<V>`.
        psk_group_id: &'a [u8],
        /// The epoch whose resumption PSK it is.
        psk_epoch: u64,
    },
}

/// `PreSharedKeyID` (§8.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PreSharedKeyId<'a> {
    /// Which key.
    pub psk: Psk<'a>,
    /// `opaque psk_nonce<V>`, fresh per use, `Nh` bytes.
    pub psk_nonce: &'a [u8],
}

impl Encode for PreSharedKeyId<'_> {
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), CodecError> {
        match self.psk {
            Psk::External { psk_id } => {
                w.write_u8(1)?;
                w.write_opaque(psk_id)?;
            }
            Psk::Resumption { usage, psk_group_id, psk_epoch } => {
                w.write_u8(2)?;
                w.write_u8(usage.to_u8())?;
                w.write_opaque(psk_group_id)?;
                w.write_u64(psk_epoch)?;
            }
        }
        w.write_opaque(self.psk_nonce)
    }
}

impl<'a> Decode<'a> for PreSharedKeyId<'a> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, CodecError> {
        let psk = match r.read_u8()? {
            1 => Psk::External { psk_id: r.read_opaque()? },
            2 => {
                let usage = ResumptionPskUsage::from_u8(r.read_u8()?).ok_or(CodecError::InvalidValue)?;
                let psk_group_id = r.read_opaque()?;
                let psk_epoch = r.read_u64()?;
                Psk::Resumption { usage, psk_group_id, psk_epoch }
            }
            _ => return Err(CodecError::InvalidValue),
        };
        Ok(Self { psk, psk_nonce: r.read_opaque()? })
    }
}

/// Computes `psk_secret` (§8.4) over `psks`, each an ID with its key, in the
/// order the commit lists them. With no PSKs it is the zero vector of `Nh`.
///
/// ```text
/// psk_extracted_[i] = KDF.Extract(0, psk_[i])
/// psk_input_[i]     = ExpandWithLabel(psk_extracted_[i], "derived psk", PSKLabel, Nh)
/// psk_secret_[i+1]  = KDF.Extract(psk_input_[i], psk_secret_[i]),  psk_secret_[0] = 0
/// ```
pub fn psk_secret(suite: CipherSuite, psks: &[(PreSharedKeyId<'_>, &[u8])]) -> Result<Secret, CryptoError> {
    let nh = suite.hash_len();
    let zero = Secret::zero(nh)?;
    let count = u16::try_from(psks.len()).map_err(|_| CryptoError::InvalidLength)?;
    let mut acc = Secret::zero(nh)?;
    for (index, (id, psk)) in (0u16..).zip(psks) {
        let extracted = suite.kdf_extract(zero.as_bytes(), &[psk]);
        let mut input = Secret::zero(nh)?;
        // PSKLabel { PreSharedKeyID id; uint16 index; uint16 count; }, in pieces.
        let index = index.to_be_bytes();
        let count = count.to_be_bytes();
        let nonce_len = VarintPrefix::new(id.psk_nonce.len())?;
        match id.psk {
            Psk::External { psk_id } => {
                let id_len = VarintPrefix::new(psk_id.len())?;
                let parts: [&[u8]; 7] =
                    [&[1], id_len.as_bytes(), psk_id, nonce_len.as_bytes(), id.psk_nonce, &index, &count];
                expand_with_label_parts(suite, extracted.as_bytes(), b"derived psk", &parts, input.as_mut_bytes())?;
            }
            Psk::Resumption { usage, psk_group_id, psk_epoch } => {
                let gid_len = VarintPrefix::new(psk_group_id.len())?;
                let epoch = psk_epoch.to_be_bytes();
                let parts: [&[u8]; 9] = [
                    &[2],
                    &[usage.to_u8()],
                    gid_len.as_bytes(),
                    psk_group_id,
                    &epoch,
                    nonce_len.as_bytes(),
                    id.psk_nonce,
                    &index,
                    &count,
                ];
                expand_with_label_parts(suite, extracted.as_bytes(), b"derived psk", &parts, input.as_mut_bytes())?;
            }
        }
        acc = suite.kdf_extract(input.as_bytes(), &[acc.as_bytes()]);
    }
    Ok(acc)
}

/// Where the keys behind PreSharedKeyIDs come from (§8.4): the application's
/// external PSKs and the resumption PSKs (`resumption_psk` of past epochs,
/// §8.6) it kept. Keys are lent, never copied into the core.
pub trait PskStore {
    /// The external PSK registered under `psk_id`, if any.
    fn external_psk(&self, psk_id: &[u8]) -> Option<&[u8]>;

    /// The `resumption_psk` of group `group_id` at `epoch`, if kept. The
    /// key does not depend on the usage (application, reinit, branch); the
    /// caller checks the usage against the operation.
    fn resumption_psk(&self, group_id: &[u8], epoch: u64) -> Option<&[u8]>;

    /// What group `group_id` knows of its own end (§11.2, §11.3): its cipher
    /// suite, and the ReInit committed at `epoch` (the epoch the Commit
    /// covering it began), if any. Joining a reinitialized or branched group
    /// checks the new group against it. Stores without groups return `None`.
    fn linked_group(&self, _group_id: &[u8], _epoch: u64) -> Option<LinkedGroup<'_>> {
        None
    }

    /// The key behind `psk`, whatever its type.
    fn psk(&self, psk: &Psk<'_>) -> Option<&[u8]> {
        match *psk {
            Psk::External { psk_id } => self.external_psk(psk_id),
            Psk::Resumption { psk_group_id, psk_epoch, .. } => self.resumption_psk(psk_group_id, psk_epoch),
        }
    }
}

/// A group that a new group resumes (§11.2 ReInit, §11.3 branching).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkedGroup<'a> {
    /// The old group's cipher suite.
    pub cipher_suite: u16,
    /// The ReInit its last Commit covered: new group ID, version, cipher
    /// suite and GroupContext extensions (body).
    pub reinit: Option<(&'a [u8], u16, u16, &'a [u8])>,
}

/// A [`PskStore`] that holds no keys: for groups that use no PSKs.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoPsks;

impl PskStore for NoPsks {
    fn external_psk(&self, _: &[u8]) -> Option<&[u8]> {
        None
    }

    fn resumption_psk(&self, _: &[u8], _: u64) -> Option<&[u8]> {
        None
    }
}
