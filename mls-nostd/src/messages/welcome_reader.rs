//! A Welcome read in pieces (RFC 9420 §12.4.3.1), as a device receives it
//! from a radio or reads it from storage it cannot map into memory. Of the
//! `EncryptedGroupSecrets` of every new member it keeps only ours, then the
//! encrypted GroupInfo: a join needs room for these, not for the whole
//! Welcome (issue #14: a Welcome adding 47 members to a 64-leaf group is
//! 5.8 KB; our entry's ciphertext about 70 bytes, the GroupInfo with the
//! tree out of band some hundreds). Opening what it kept:
//! [`super::welcome_secrets::process_read_welcome`].

use crate::codec::{CodecError, Decode, Reader, move_within};
use crate::crypto::hpke::KemOutput;
use crate::crypto::{CipherSuite, HashValue};
use crate::group_context::PROTOCOL_VERSION_MLS10;
use crate::key_package::KeyPackage;

use super::framing::WIRE_FORMAT_WELCOME;
use super::welcome::EncryptedGroupSecrets;
use super::welcome_secrets::WelcomeError;

/// What a reader returns once a feed failed: the Welcome it was given
/// cannot be read any further.
pub const FAILED: WelcomeError = WelcomeError::Malformed(CodecError::InvalidValue);

/// Where the reader is in the `MLSMessage(Welcome)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// The version, wire format, cipher suite and the length of `secrets`.
    Head,
    /// In `secrets`, with `left` bytes of it to come.
    Secrets { left: usize },
    /// The length of `encrypted_group_info`.
    GroupInfoLength,
    /// In `encrypted_group_info`, with `left` bytes of it to come.
    GroupInfo { left: usize },
    /// The whole message read.
    Done,
    /// A feed failed: every later call fails.
    Failed,
}

/// Reads an encoded `MLSMessage(Welcome)` handed over in pieces of any
/// length ([`Self::feed`]) into `buf`, keeping our GroupSecrets' ciphertext
/// and the encrypted GroupInfo. `buf` needs their lengths plus the longest
/// `EncryptedGroupSecrets` entry and the longest piece fed (a piece is
/// taken in as far as the room allows, then what is whole is read).
#[derive(Debug)]
pub struct WelcomeReader<'b> {
    suite: CipherSuite,
    /// Our KeyPackageRef: the entry kept is the one addressed to it.
    reference: HashValue,
    buf: &'b mut [u8],
    /// `buf[..kept]`: our GroupSecrets' ciphertext, then the encrypted
    /// GroupInfo as far as it came.
    kept: usize,
    /// `buf[kept..kept + pending]`: the start of a field not yet whole.
    pending: usize,
    stage: Stage,
    /// Our entry's KEM output and the length of its ciphertext.
    ours: Option<(KemOutput, usize)>,
    /// Where the encrypted GroupInfo starts in `buf`.
    group_info_at: usize,
}

impl<'b> WelcomeReader<'b> {
    /// A reader of the Welcome for `key_package` (ours, encoded as
    /// published), keeping what it needs in `buf`.
    pub fn new(key_package: &[u8], buf: &'b mut [u8]) -> Result<Self, WelcomeError> {
        let kp = KeyPackage::decode_exact(key_package).map_err(WelcomeError::Malformed)?;
        let suite = CipherSuite::from_u16(kp.tbs.cipher_suite).ok_or(WelcomeError::WrongCipherSuite)?;
        let reference = kp.reference(suite).map_err(|_| WelcomeError::WrongCipherSuite)?;
        Ok(Self { suite, reference, buf, kept: 0, pending: 0, stage: Stage::Head, ours: None, group_info_at: 0 })
    }

    /// Reads the next `piece` of the Welcome. An error is final: every
    /// later call fails with [`FAILED`] (a Welcome is read again from its
    /// start, by a new reader).
    pub fn feed(&mut self, piece: &[u8]) -> Result<(), WelcomeError> {
        if self.stage == Stage::Failed {
            return Err(FAILED);
        }
        let fed = self.take(piece);
        if fed.is_err() {
            self.stage = Stage::Failed;
        }
        fed
    }

    /// Takes `piece` in as far as the room allows and reads what is whole,
    /// until all of it is read.
    fn take(&mut self, piece: &[u8]) -> Result<(), WelcomeError> {
        let mut rest = piece;
        while !rest.is_empty() {
            let start = self.kept.saturating_add(self.pending);
            let room = self.buf.len().saturating_sub(start);
            if room == 0 {
                // A field longer than the room left (or the GroupInfo).
                return Err(WelcomeError::BufferTooSmall { needed: start.saturating_add(rest.len()) });
            }
            let Some((now, later)) = rest.split_at_checked(room.min(rest.len())) else { break };
            let dst = self.buf.get_mut(start..start + now.len()).ok_or(WelcomeError::Malformed(CodecError::Truncated))?;
            dst.copy_from_slice(now);
            self.pending += now.len();
            rest = later;
            self.read_pending()?;
        }
        Ok(())
    }

    /// What was kept, once the whole Welcome was read: the reader's `buf`
    /// with our GroupSecrets' ciphertext and the encrypted GroupInfo.
    pub fn finish(self) -> Result<ReadWelcome<'b>, WelcomeError> {
        match self.stage {
            Stage::Done => {}
            Stage::Failed => return Err(FAILED),
            _ => return Err(WelcomeError::Malformed(CodecError::Truncated)),
        }
        let (kem_output, secrets_len) = self.ours.ok_or(WelcomeError::NotForUs)?;
        let kept = self.buf.get_mut(..self.kept).ok_or(WelcomeError::Malformed(CodecError::Truncated))?;
        Ok(ReadWelcome {
            suite: self.suite,
            reference: self.reference,
            kem_output,
            secrets_len,
            group_info_at: self.group_info_at,
            kept,
        })
    }

    /// Reads the fields that are whole in the pending bytes.
    fn read_pending(&mut self) -> Result<(), WelcomeError> {
        let malformed = WelcomeError::Malformed;
        loop {
            let pending = self.buf.get(self.kept..self.kept + self.pending).ok_or(malformed(CodecError::Truncated))?;
            let mut r = Reader::new(pending);
            match self.stage {
                Stage::Head => {
                    let head = (|| Ok::<_, CodecError>((r.read_u16()?, r.read_u16()?, r.read_u16()?, r.read_varint()?)))();
                    let Some((version, wire_format, suite, secrets_len)) = whole(head)? else {
                        return Ok(());
                    };
                    if version != PROTOCOL_VERSION_MLS10 || wire_format != WIRE_FORMAT_WELCOME {
                        return Err(malformed(CodecError::InvalidValue));
                    }
                    if suite != self.suite.to_u16() {
                        return Err(WelcomeError::WrongCipherSuite);
                    }
                    let used = pending.len().saturating_sub(r.remaining().len());
                    self.stage = Stage::Secrets { left: secrets_len as usize };
                    self.drop_pending(used)?;
                }
                Stage::Secrets { left: 0 } => self.stage = Stage::GroupInfoLength,
                Stage::Secrets { left } => {
                    let Some(entry) = whole(EncryptedGroupSecrets::decode(&mut r))? else {
                        return Ok(());
                    };
                    let used = pending.len().saturating_sub(r.remaining().len());
                    let left = left.checked_sub(used).ok_or(malformed(CodecError::InvalidValue))?;
                    let sealed = entry.encrypted_group_secrets;
                    let ours = self.ours.is_none() && entry.new_member == self.reference.as_bytes();
                    if ours {
                        let kem_output =
                            KemOutput::from_slice(sealed.kem_output).map_err(|_| WelcomeError::GroupSecretsDecryptionFailed)?;
                        let len = sealed.ciphertext.len();
                        // Where the ciphertext lies among the pending bytes.
                        let at = (sealed.ciphertext.as_ptr() as usize).wrapping_sub(pending.as_ptr() as usize);
                        let from = self.kept + at;
                        if !move_within(self.buf, from..from + len, self.kept) {
                            return Err(malformed(CodecError::Truncated));
                        }
                        self.kept += len;
                        self.pending -= len;
                        self.ours = Some((kem_output, len));
                        self.drop_pending(used - len)?;
                    } else {
                        self.drop_pending(used)?;
                    }
                    self.stage = Stage::Secrets { left };
                }
                Stage::GroupInfoLength => {
                    let Some(len) = whole(r.read_varint())? else {
                        return Ok(());
                    };
                    let used = pending.len().saturating_sub(r.remaining().len());
                    self.drop_pending(used)?;
                    self.group_info_at = self.kept;
                    self.stage = Stage::GroupInfo { left: len as usize };
                }
                Stage::GroupInfo { left } => {
                    // Kept where it came: the pending bytes start at `kept`.
                    let take = left.min(self.pending);
                    self.kept += take;
                    self.pending -= take;
                    self.stage = match left - take {
                        0 => Stage::Done,
                        left => Stage::GroupInfo { left },
                    };
                    if self.pending == 0 {
                        return Ok(());
                    }
                }
                Stage::Failed => return Err(FAILED),
                Stage::Done => {
                    return match self.pending {
                        0 => Ok(()),
                        _ => Err(malformed(CodecError::TrailingBytes)),
                    };
                }
            }
        }
    }

    /// Forgets the first `n` pending bytes (a field read, or an entry
    /// addressed to another member).
    fn drop_pending(&mut self, n: usize) -> Result<(), WelcomeError> {
        let end = self.kept + self.pending;
        if n > self.pending || !move_within(self.buf, self.kept + n..end, self.kept) {
            return Err(WelcomeError::Malformed(CodecError::Truncated));
        }
        self.pending -= n;
        Ok(())
    }
}

/// A field read, or none yet if its bytes are not all there.
fn whole<T>(read: Result<T, CodecError>) -> Result<Option<T>, WelcomeError> {
    match read {
        Ok(v) => Ok(Some(v)),
        Err(CodecError::Truncated) => Ok(None),
        Err(e) => Err(WelcomeError::Malformed(e)),
    }
}

/// What a joiner keeps of a Welcome read in pieces ([`WelcomeReader`]):
/// our GroupSecrets' ciphertext and the encrypted GroupInfo, in the
/// reader's buffer, where they are decrypted.
#[derive(Debug)]
pub struct ReadWelcome<'b> {
    pub(crate) suite: CipherSuite,
    pub(crate) reference: HashValue,
    pub(crate) kem_output: KemOutput,
    /// `kept[..secrets_len]`: our GroupSecrets' ciphertext and tag.
    pub(crate) secrets_len: usize,
    /// `kept[group_info_at..]`: the encrypted GroupInfo.
    pub(crate) group_info_at: usize,
    pub(crate) kept: &'b mut [u8],
}

impl ReadWelcome<'_> {
    /// The bytes kept: our GroupSecrets' ciphertext and the encrypted
    /// GroupInfo.
    pub fn kept_len(&self) -> usize {
        self.kept.len()
    }
}
