//! Receiving group messages (RFC 9420 §6, §12.4.2): unprotect with the
//! epoch's keys, then hand the content to the state machine (application
//! data out, proposals kept, commits staged); and protecting application
//! data to send, as PrivateMessage (§6.3; never as PublicMessage, §6.2).
//! The wire formats themselves are [`crate::messages`].

use super::{CommitError, Group, PastSender, StagedCommitSummary};
use crate::crypto::signer::Signer;
use crate::codec::{CodecError, Decode, Reader};
use crate::crypto::HashValue;
use crate::crypto::signature::SignaturePublicKey;
use crate::messages::authenticated_content::{AuthenticatedContent, EncodedGroupContext, ProtectionError};
use crate::messages::framing::{
    Content, ContentType, FramedContent, Sender, WIRE_FORMAT_PRIVATE_MESSAGE, WIRE_FORMAT_PUBLIC_MESSAGE,
};
use crate::messages::private_message::{self, PrivateMessageKeys};
use crate::messages::proposal::Proposal;
use crate::messages::public_message;
use crate::psk::PskStore;
use crate::ratchet_tree::tree::TreeView;
use crate::tree_math::LeafIndex;
use rand_core::CryptoRng;

/// Why an incoming message was refused. The group is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ReceiveError {
    /// Not a PublicMessage or PrivateMessage (a Welcome, GroupInfo or KeyPackage
    /// is not a group message).
    NotAGroupMessage,
    /// Framing, decryption or authentication failed (§6).
    Protection(ProtectionError),
    /// The Commit or Proposal is invalid (§12).
    Commit(CommitError),
    /// The group cannot be used: it was left, removed or reinitialized.
    Inactive,
    /// A late application message of the previous epoch from a leaf that
    /// the Commit that ended it may have changed (removed, re-keyed or
    /// filled), when it changed more leaves than the
    /// [`super::DEPARTED_KEYS`] that are kept: the sender's key in that
    /// epoch is not known, and the current one is not taken for it. Stale,
    /// like a message two epochs late.
    DepartedSender,
}

impl core::fmt::Display for ReceiveError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NotAGroupMessage => f.write_str("not a PublicMessage or PrivateMessage"),
            Self::Protection(e) => write!(f, "message protection: {e}"),
            Self::Commit(e) => write!(f, "{e}"),
            Self::Inactive => f.write_str("the group was left, removed or reinitialized"),
            Self::DepartedSender => f.write_str("a late message of the previous epoch: its sender's key then is no longer kept"),
        }
    }
}

impl core::error::Error for ReceiveError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Protection(e) => Some(e),
            Self::Commit(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ProtectionError> for ReceiveError {
    fn from(e: ProtectionError) -> Self {
        Self::Protection(e)
    }
}

impl From<CommitError> for ReceiveError {
    fn from(e: CommitError) -> Self {
        Self::Commit(e)
    }
}

impl From<CodecError> for ReceiveError {
    fn from(e: CodecError) -> Self {
        Self::Protection(ProtectionError::Malformed(e))
    }
}

/// What an incoming message was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received<'m> {
    /// Application data from a member.
    Application {
        /// Who sent it.
        sender: LeafIndex,
        /// The data (decrypted in place in the message buffer).
        data: &'m [u8],
        /// The sender's `authenticated_data`.
        authenticated_data: &'m [u8],
    },
    /// A proposal, kept for a Commit that refers to it.
    Proposal {
        /// Who proposed.
        sender: Sender,
        /// Its reference (§5.2).
        reference: HashValue,
    },
    /// A Commit, staged: inspect, then merge or discard.
    Commit(StagedCommitSummary),
}

/// The signature key of `sender` in `tree` (members only here).
fn member_key(tree: &TreeView<'_>, leaf: LeafIndex) -> Option<SignaturePublicKey> {
    tree.signature_key(leaf).and_then(|k| SignaturePublicKey::from_slice(k).ok())
}

/// The PrivateMessage `message` of this epoch names, in its sender data, a
/// sender other than us. Its own frame: its locals are not on the stack
/// while the message's signature is verified.
#[inline(never)]
fn another_sender(state: &super::EpochState, message: &[u8]) -> bool {
    private_message::sender_of(state.suite, &state.secrets.sender_data_secret, message)
        .is_some_and(|l| l != state.private.leaf)
}

impl<const N: usize, const ARENA: usize, const K: usize, const P: usize, Sig: Signer, const E: usize> Group<N, ARENA, K, P, Sig, E> {
    /// Processes an `MLSMessage` holding a PublicMessage or PrivateMessage of
    /// this group. A PrivateMessage is decrypted in place, so `message` is
    /// overwritten. `now` (seconds since the Unix epoch) checks KeyPackage
    /// lifetimes of added members.
    ///
    /// A PrivateMessage Proposal or Commit refused after it decrypted and
    /// its signature verified (a proposal it names not received yet, a PSK
    /// not held, a KeyPackage's lifetime against a wrong clock) is refused
    /// if given again ([`SecretTreeError::KeyConsumed`]): its key is
    /// consumed and deleted once the message decrypted and its signature
    /// verified (RFC 9420 §9.2, the deletion schedule), whatever became of
    /// the message. (One whose signature fails keeps its key, so that a
    /// member cannot burn another's keys with forgeries: a deviation from
    /// §9.2, which deletes a key once it decrypted a message.) A member that
    /// cannot process a Commit so has to join again (a new KeyPackage, or an
    /// external Commit); groups whose delivery may reorder handshake
    /// messages send them as PublicMessages, which a refusal leaves
    /// readable again. The buffer then holds the decrypted content.
    ///
    /// [`SecretTreeError::KeyConsumed`]: crate::secret_tree::SecretTreeError::KeyConsumed
    #[inline(never)]
    pub fn process_message_in_memory<'m>(
        &mut self,
        message: &'m mut [u8],
        psks: &dyn PskStore,
        now: u64,
    ) -> Result<Received<'m>, ReceiveError> {
        if self.is_inactive() {
            return Err(ReceiveError::Inactive);
        }
        // Read where `unprotect` wrote it: moved out of the `Result`, the
        // content (248 bytes) was copied into a second slot of this frame,
        // which lies under every signature verification.
        let unprotected = self.unprotect(message);
        let content = match unprotected {
            Err(e) => return Err(e),
            Ok(ref content) => content,
        };
        match content.content.content {
            Content::Application(data) => {
                let Sender::Member(i) = content.content.sender else {
                    return Err(ProtectionError::InvalidSender.into());
                };
                Ok(Received::Application {
                    sender: LeafIndex(i),
                    data,
                    authenticated_data: content.content.authenticated_data,
                })
            }
            Content::Proposal(_) => {
                let reference = self.store_proposal(content)?;
                Ok(Received::Proposal { sender: content.content.sender, reference })
            }
            Content::Commit(_) => Ok(Received::Commit(self.stage_commit(content, psks, now)?)),
        }
    }

    /// Verifies and decrypts `message` with this epoch's keys (or the
    /// previous epoch's, for a late application message).
    #[inline(never)]
    fn unprotect<'m>(&mut self, message: &'m mut [u8]) -> Result<AuthenticatedContent<'m>, ReceiveError> {
        let mut r = Reader::new(message);
        let _version = r.read_u16()?;
        let wire_format = r.read_u16()?;
        match wire_format {
            WIRE_FORMAT_PUBLIC_MESSAGE => self.unprotect_public(message),
            WIRE_FORMAT_PRIVATE_MESSAGE => self.unprotect_private(message),
            _ => Err(ReceiveError::NotAGroupMessage),
        }
    }

    /// [`Self::unprotect`] of a PublicMessage. Each wire format in a frame
    /// of its own: the other's locals are not on the stack while the
    /// signature is verified.
    #[inline(never)]
    fn unprotect_public<'m>(&mut self, message: &'m [u8]) -> Result<AuthenticatedContent<'m>, ReceiveError> {
        let Self { tree, state, .. } = self;
        let gc = state.encoded_context()?;
        // The current epoch's members, also while a Commit is staged.
        let tree = tree.old();
        let mut lookup = |c: &FramedContent<'_>| match (c.sender, &c.content) {
            (Sender::Member(i), _) => member_key(&tree, LeafIndex(i)),
            // A pre-provisioned external sender (§12.1.8.1).
            (Sender::External(i), _) => crate::extensions::Extensions::from_body(state.extensions.as_slice())
                .ok()
                .and_then(|e| e.find(crate::extensions::EXT_EXTERNAL_SENDERS))
                .and_then(|data| crate::extensions::external_sender(data, i))
                .and_then(|s| SignaturePublicKey::from_slice(s.signature_key).ok()),
            // A client proposing its own Add (§12.1.8.2).
            (Sender::NewMemberProposal, Content::Proposal(Proposal::Add(a))) => {
                SignaturePublicKey::from_slice(a.key_package.tbs.leaf_node.fields.signature_key).ok()
            }
            // An external joiner signs with the key of its new leaf (§12.4.3.2).
            (Sender::NewMemberCommit, Content::Commit(commit)) => commit
                .path
                .and_then(|p| SignaturePublicKey::from_slice(p.leaf_node.fields.signature_key).ok()),
            _ => None,
        };
        public_message::unprotect_as(&gc, &state.secrets.membership_key, message, &mut lookup)
    }

    /// [`Self::unprotect`] of a PrivateMessage, decrypted in place.
    #[inline(never)]
    fn unprotect_private<'m>(&mut self, message: &'m mut [u8]) -> Result<AuthenticatedContent<'m>, ReceiveError> {
        let Self {
            tree,
            state,
            secret_trees,
            past,
            staged,
            ..
        } = self;
        let (secret_tree, prev_secret_tree) = secret_trees.both_mut();
        let tree = tree.old();
        // A late message of the previous epoch is read with its keys
        // (application data only).
        let (group_id, epoch, content_type) = {
            let mut h = Reader::new(message.get(4..).unwrap_or(&[]));
            (h.read_opaque()?, h.read_u64()?, ContentType::decode(&mut h).ok())
        };
        // A Commit of this epoch while one is staged is refused before it is
        // opened, as `stage_commit` would refuse it once opened: its key stays
        // unused (§9.2 deletes a key once its message is processed), so the
        // same Commit is processed once the staged one is discarded (§14: the
        // other member's Commit won the epoch). Not ours, come back: it is
        // refused as before (its key was ours, used when it was sent).
        if staged.is_some()
            && content_type == Some(ContentType::Commit)
            && epoch == state.epoch
            && group_id == state.group_id.as_slice()
            && another_sender(state, message)
        {
            return Err(CommitError::CommitPending.into());
        }
        let late = past
            .first_mut()
            .zip(prev_secret_tree)
            .and_then(|(past, prev_tree)| {
                let p = past
                    .record
                    .as_ref()
                    .filter(|p| p.epoch == epoch && epoch != state.epoch)?;
                Some((p, prev_tree))
            });
        match late {
            Some((p, prev_secret_tree)) => {
                // Refused before it is opened: its key stays unused and the
                // buffer as it came (§6.3.2 refuses handshake content of
                // another epoch; the content type is checked again once opened).
                if content_type.is_some_and(|t| t != ContentType::Application) {
                    return Err(ProtectionError::WrongEpoch.into());
                }
                let old_gc = EncodedGroupContext::decode(p.group_context.as_slice())?;
                let old_leaves = prev_secret_tree.meta.n_leaves;
                let mut keys = PrivateMessageKeys {
                    secret_tree: prev_secret_tree,
                    sender_data_secret: &p.sender_data_secret,
                };
                // The sender's key in the previous epoch: kept if the last
                // Commit changed it (none if the leaf was blank), else the
                // same in the current tree; unknown if the Commit changed
                // more leaves than are kept, perhaps this one.
                let mut unknown = false;
                let mut lookup = |l: LeafIndex| match p.departed.sender(l, || member_key(&tree, l)) {
                    PastSender::Member(k) if l.0 < old_leaves => Some(k),
                    PastSender::Member(_) | PastSender::NotAMember => None,
                    PastSender::Unknown => {
                        unknown = true;
                        None
                    }
                };
                let content = private_message::unprotect(&old_gc, &mut keys, message, &mut lookup);
                let content = content.map_err(|e| match unknown {
                    true => ReceiveError::DepartedSender,
                    false => e.into(),
                })?;
                if !matches!(content.content.content, Content::Application(_)) {
                    return Err(ProtectionError::WrongEpoch.into());
                }
                Ok(content)
            }
            None => {
                let gc = state.encoded_context()?;
                let mut keys =
                    PrivateMessageKeys { secret_tree, sender_data_secret: &state.secrets.sender_data_secret };
                let mut lookup = |l: LeafIndex| member_key(&tree, l);
                private_message::unprotect_as(&gc, &mut keys, message, &mut lookup)
            }
        }
    }

    /// Protects application data as a PrivateMessage (§6.3) with `padding`
    /// zero bytes; the sending ratchet moves past the key before the message
    /// is returned. `rng` draws the reuse guard.
    pub fn protect_application_in_memory<'o>(
        &mut self,
        data: &[u8],
        authenticated_data: &[u8],
        padding: usize,
        rng: &mut impl CryptoRng,
        out: &'o mut [u8],
    ) -> Result<&'o [u8], ReceiveError> {
        if self.is_inactive() {
            return Err(ReceiveError::Inactive);
        }
        let gc = self.state.encoded_context()?;
        let content = FramedContent {
            group_id: self.state.group_id.as_slice(),
            epoch: self.state.epoch,
            sender: Sender::Member(self.state.private.leaf.0),
            authenticated_data,
            content: Content::Application(data),
        };
        let mut keys = PrivateMessageKeys {
            secret_tree: self.secret_trees.current_mut(),
            sender_data_secret: &self.state.secrets.sender_data_secret,
        };
        Ok(private_message::protect(&gc, &mut keys, &self.signer, &content, padding, rng, out)?)
    }
}
