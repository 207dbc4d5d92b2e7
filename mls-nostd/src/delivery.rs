//! Delivery over a publish/subscribe broker (RFC 9420 §3, RFC 9750 §5): what a
//! member does with the group messages a broker such as MQTT hands it, before
//! they reach [`Group`](crate::group::Group). No heap: firmware keeps an
//! [`Inbox`] in a `static`.
//!
//! An MQTT broker orders the messages of one publisher (QoS 1), not those of
//! different publishers, and delivers them at least once. The policy that
//! makes this enough:
//!
//! - **One committer.** Only the gateway's leaf ([`Policy::committer`])
//!   commits, as PublicMessages; devices send Update proposals, Removes of
//!   themselves and application messages ([`Policy::check_outgoing`]). The
//!   committer re-publishes every proposal it commits, just before the
//!   Commit, on the one handshake topic it alone publishes to: every member
//!   then sees proposals and Commits in one order, the committer's. Two
//!   devices never race for the next epoch, so no fork needs resolving.
//! - **Future epochs wait.** An application message of the next epoch can
//!   arrive before the Commit that starts it (another publisher, another
//!   path through a bridged or clustered broker): [`Inbox::accept`] keeps it
//!   in a buffer of up to `SLOTS` messages packed into `BYTES` bytes (a
//!   Commit with a path is kilobytes, an application message a few hundred
//!   bytes, so fixed slots would waste most of the memory) until the epoch
//!   is reached ([`Inbox::release`]). A full buffer is a typed error
//!   ([`DeliveryError::BufferFull`]): the member fell too far behind and
//!   rejoins (the transport's choice; the fleet asks the gateway to re-add it).
//!   A message more than [`MAX_EPOCHS_AHEAD`] epochs ahead is refused
//!   ([`DeliveryError::TooFarAhead`]): a bug or a hostile publisher, not a
//!   slot to hold until the buffer overflows.
//! - **A member waiting for its Welcome keeps the newest epochs.** Until the
//!   Welcome comes it cannot tell which epoch it joins, and the other
//!   members may speak in that epoch before the Welcome arrives (the
//!   committer sends one Welcome per new device, each with the tree, after
//!   the Commit). [`Inbox::await_welcome`] makes the buffer keep everything
//!   and, when full, drop the lowest epoch first; what it drops is counted
//!   ([`DeliveryStats::overflowed`]), never silent.
//! - **Duplicates and stale messages are dropped silently**, and counted
//!   ([`DeliveryStats`]): QoS 1 redelivers after a reconnect, and a message of
//!   a past epoch can no longer be opened. A duplicate is recognised by a
//!   digest of its bytes among the last `SEEN` accepted or sent ones (our own
//!   proposals come back from the committer's relay the same way).
//!
//! Which epochs are "current": a handshake message must be of the member's
//! epoch; an application message of the member's epoch or the one before
//! (the core keeps the previous epoch's secret tree for late messages).

use crate::codec::{CodecError, Decode};
use core::cmp::Ordering;
use crate::messages::framing::{ContentType, Sender};
use crate::messages::mls_message::{MlsMessage, MlsMessageBody};
use crate::messages::proposal::Proposal;

/// The first 16 bytes of a message's SHA-256: enough to tell two messages
/// apart (a collision would drop one message, not break the group).
pub type Digest = [u8; 16];

/// How many epochs ahead of a member a message may be and still be
/// buffered; one further ahead is refused at [`Inbox::accept`]
/// ([`DeliveryError::TooFarAhead`], counted in
/// [`DeliveryStats::too_far_ahead`]). A message gets ahead of a member
/// only by the Commits the member has not processed yet, and one committer
/// orders those: a member many epochs behind holds their messages in its
/// buffer anyway, and overflows it (`BufferFull`: rejoin) long before 16
/// epochs at any fleet size worth buffering for. Epoch + 1,000 is a bug or a
/// hostile publisher. While a member waits for its Welcome its epoch is
/// unknown and nothing is refused; once joined, [`Inbox::release`] drops
/// (counted the same way) what is too far ahead of the join epoch.
pub const MAX_EPOCHS_AHEAD: u64 = 16;

/// The digest by which [`Inbox`] recognises a message.
pub fn digest(message: &[u8]) -> Digest {
    let h = crate::crypto::sha256(&[message]);
    let mut d = [0u8; 16];
    for (o, i) in d.iter_mut().zip(h.as_bytes()) {
        *o = *i;
    }
    d
}

/// What the clear header of a group message says (§6.2, §6.3): read without
/// any key, so a member can sort messages before it opens them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The epoch the message belongs to.
    pub epoch: u64,
    /// Application, proposal or commit.
    pub content_type: ContentType,
    /// The sender of a PublicMessage (a PrivateMessage hides it).
    pub sender: Option<Sender>,
}

impl Envelope {
    /// Reads the header of an `MLSMessage` holding a PublicMessage or a
    /// PrivateMessage.
    pub fn parse(message: &[u8]) -> Result<Self, DeliveryError> {
        let m = MlsMessage::decode_exact(message).map_err(DeliveryError::Malformed)?;
        match m.body {
            MlsMessageBody::PublicMessage(p) => Ok(Self {
                epoch: p.content.epoch,
                content_type: p.content.content.content_type(),
                sender: Some(p.content.sender),
            }),
            MlsMessageBody::PrivateMessage(p) => Ok(Self { epoch: p.epoch, content_type: p.content_type, sender: None }),
            _ => Err(DeliveryError::NotAGroupMessage),
        }
    }

    /// True for proposals and commits (the handshake ratchet, §6.3.1).
    pub fn is_handshake(&self) -> bool {
        self.content_type != ContentType::Application
    }
}

/// What a member sends, for [`Policy::check_outgoing`].
#[derive(Clone, Copy, Debug)]
pub enum Outgoing<'a> {
    /// Application data.
    Application,
    /// A proposal.
    Proposal(&'a Proposal<'a>),
    /// A Commit.
    Commit,
}

/// The fleet's rule: one committer (the gateway), devices propose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Policy {
    /// The leaf of the only member that commits.
    pub committer: u32,
}

impl Policy {
    /// May the member at `own_leaf` send `what`? The committer may send
    /// anything; another member application data, Updates of its own leaf and
    /// Removes of itself.
    pub fn check_outgoing(&self, own_leaf: u32, what: Outgoing<'_>) -> Result<(), DeliveryError> {
        match what {
            _ if own_leaf == self.committer => Ok(()),
            Outgoing::Application => Ok(()),
            Outgoing::Proposal(p) if self.authorizes(Sender::Member(own_leaf), p) => Ok(()),
            Outgoing::Proposal(_) => Err(DeliveryError::ProposalNotAllowed),
            Outgoing::Commit => Err(DeliveryError::NotCommitter),
        }
    }

    /// May `sender` make `proposal`? The committer anything; another member
    /// an Update (of its own leaf, as every Update) or its own Remove; no
    /// one else anything. A group's
    /// [`IdentityProvider::authorize_proposal`](crate::identity::IdentityProvider::authorize_proposal)
    /// asks this, so that the committer leaves out, and every member
    /// refuses, what a faulty or hostile member proposed against the rule:
    /// a Remove of another member, an Add, a GroupContextExtensions.
    pub fn authorizes(&self, sender: Sender, proposal: &Proposal<'_>) -> bool {
        match (sender, proposal) {
            (Sender::Member(leaf), _) if leaf == self.committer => true,
            (Sender::Member(_), Proposal::Update(_)) => true,
            (Sender::Member(leaf), Proposal::Remove(r)) => r.removed == leaf,
            _ => false,
        }
    }

    /// Is `envelope` acceptable? A Commit must be a PublicMessage of the
    /// committer (so that the broker's operator can check membership changes).
    pub fn check_incoming(&self, envelope: &Envelope) -> Result<(), DeliveryError> {
        match (envelope.content_type, envelope.sender) {
            (ContentType::Commit, Some(Sender::Member(leaf))) if leaf == self.committer => Ok(()),
            (ContentType::Commit, _) => Err(DeliveryError::NotCommitter),
            _ => Ok(()),
        }
    }
}

/// Why a message was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum DeliveryError {
    /// Not an `MLSMessage`.
    Malformed(CodecError),
    /// A Welcome, GroupInfo or KeyPackage where a group message was expected.
    NotAGroupMessage,
    /// A message of a future epoch, and the buffer has no room left (all
    /// its slots or bytes are taken): the member fell too far behind and
    /// must rejoin.
    BufferFull {
        /// The most messages the buffer holds.
        slots: usize,
        /// The bytes the buffer holds.
        bytes: usize,
    },
    /// A message more than [`MAX_EPOCHS_AHEAD`] epochs ahead of the member:
    /// refused, never buffered.
    TooFarAhead {
        /// The message's epoch.
        epoch: u64,
        /// The member's epoch.
        current: u64,
        /// The latest epoch buffered now (`current + MAX_EPOCHS_AHEAD`).
        latest: u64,
    },
    /// A message of a future epoch larger than the whole buffer.
    TooLarge {
        /// The message's length.
        len: usize,
        /// The buffer's bytes.
        bytes: usize,
    },
    /// The output buffer of [`Inbox::release`] is smaller than the message.
    OutputTooSmall {
        /// The message's length.
        needed: usize,
    },
    /// A Commit from another member than the committer, or hidden in a
    /// PrivateMessage; or a Commit that the policy forbids us to send.
    NotCommitter,
    /// A proposal a device may not send (only Updates and Removes of itself).
    ProposalNotAllowed,
}

impl core::fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Malformed(e) => write!(f, "not an MLSMessage: {e}"),
            Self::NotAGroupMessage => f.write_str("not a PublicMessage or PrivateMessage"),
            Self::BufferFull { slots, bytes } => write!(
                f,
                "the buffer for messages of future epochs ({slots} messages, {bytes} bytes) is full: too far behind, rejoin"
            ),
            Self::TooFarAhead { epoch, current, latest } => write!(
                f,
                "a message of epoch {epoch} is too far ahead of the member's epoch {current}: only epochs up to {latest} are buffered"
            ),
            Self::TooLarge { len, bytes } => {
                write!(f, "a future-epoch message of {len} bytes is larger than the whole buffer of {bytes}")
            }
            Self::OutputTooSmall { needed } => write!(f, "output buffer too small: {needed} bytes needed"),
            Self::NotCommitter => f.write_str("only the committer commits, in a PublicMessage"),
            Self::ProposalNotAllowed => f.write_str("a device proposes only Updates and Removes of itself"),
        }
    }
}

impl core::error::Error for DeliveryError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Malformed(e) => Some(e),
            _ => None,
        }
    }
}

/// What [`Inbox::accept`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// Of the current epoch: process it now.
    Process(Envelope),
    /// Of a future epoch: kept until [`Inbox::release`] gives it back.
    Buffered,
    /// Seen before (accepted, buffered or sent by us): dropped.
    Duplicate,
    /// Of a past epoch: dropped.
    Stale,
    /// Waiting for a Welcome with a full buffer of messages of this epoch or
    /// later ones: dropped, and counted in [`DeliveryStats::overflowed`].
    Overflowed,
}

/// Counts of what the inbox did with messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DeliveryStats {
    /// Messages given to the member to process (at once or released).
    pub processed: u64,
    /// Messages of a future epoch put in the buffer.
    pub buffered: u64,
    /// Buffered messages given back once their epoch came.
    pub released: u64,
    /// Duplicates dropped.
    pub duplicates: u64,
    /// Messages of past epochs dropped (buffered ones that became stale too).
    pub stale: u64,
    /// Messages dropped while waiting for a Welcome because the buffer was
    /// full (the lowest epochs go first): a member that joins in one of
    /// their epochs misses them.
    pub overflowed: u64,
    /// Messages more than [`MAX_EPOCHS_AHEAD`] epochs ahead: refused at
    /// [`Inbox::accept`] ([`DeliveryError::TooFarAhead`]), or dropped from
    /// the buffer once the member joined.
    pub too_far_ahead: u64,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    epoch: u64,
    /// Arrival order, to release an epoch's messages in the order the broker delivered.
    arrival: u64,
    /// Where the message's bytes start in the buffer, and how many.
    offset: usize,
    len: usize,
    handshake: bool,
    digest: Digest,
    used: bool,
}

impl Slot {
    const EMPTY: Self = Self { epoch: 0, arrival: 0, offset: 0, len: 0, handshake: false, digest: [0; 16], used: false };
}

/// A member's inbox: a buffer of up to `SLOTS` messages of future epochs
/// packed into `BYTES` bytes, and the digests of the last `SEEN` messages
/// accepted or sent.
pub struct Inbox<const SLOTS: usize, const BYTES: usize, const SEEN: usize> {
    policy: Policy,
    /// The buffered messages, packed from the start: `bytes[..used_bytes]`.
    bytes: [u8; BYTES],
    used_bytes: usize,
    slots: [Slot; SLOTS],
    seen: [Digest; SEEN],
    /// Entries of `seen` in use (up to `SEEN`), and the next to overwrite.
    seen_len: usize,
    seen_next: usize,
    arrivals: u64,
    /// The epoch the member joined at: it has no keys for earlier ones.
    joined_at: u64,
    /// Waiting for a Welcome: keep every epoch, drop the lowest when full.
    waiting: bool,
    /// While waiting: the lowest epoch the member can join at, if it knows
    /// one ([`Inbox::await_welcome_from`]); epochs below are stale, more
    /// than [`MAX_EPOCHS_AHEAD`] above are refused.
    waiting_from: Option<u64>,
    stats: DeliveryStats,
}

impl<const SLOTS: usize, const BYTES: usize, const SEEN: usize> core::fmt::Debug for Inbox<SLOTS, BYTES, SEEN> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Inbox").field("policy", &self.policy).field("buffered", &self.buffered()).field("stats", &self.stats).finish()
    }
}

impl<const SLOTS: usize, const BYTES: usize, const SEEN: usize> Inbox<SLOTS, BYTES, SEEN> {
    /// An empty inbox under `policy` (a `const fn`, for a `static`).
    pub const fn new(policy: Policy) -> Self {
        Self {
            policy,
            bytes: [0; BYTES],
            used_bytes: 0,
            slots: [Slot::EMPTY; SLOTS],
            seen: [[0; 16]; SEEN],
            seen_len: 0,
            seen_next: 0,
            arrivals: 0,
            joined_at: 0,
            waiting: false,
            waiting_from: None,
            stats: DeliveryStats { processed: 0, buffered: 0, released: 0, duplicates: 0, stale: 0, overflowed: 0, too_far_ahead: 0 },
        }
    }

    /// The policy.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// What the inbox did so far.
    pub fn stats(&self) -> DeliveryStats {
        self.stats
    }

    /// Messages waiting for their epoch.
    pub fn buffered(&self) -> usize {
        self.slots.iter().filter(|s| s.used).count()
    }

    /// Tells the inbox that the member waits for a Welcome (it published a
    /// KeyPackage): from now until [`joined_at`](Self::joined_at), every
    /// group message is buffered whatever its epoch, and a full buffer drops
    /// its lowest epoch first (counted in [`DeliveryStats::overflowed`]).
    /// What was buffered before is of a group the member left: dropped as
    /// stale.
    ///
    /// The epoch the member will join at is unknown, so nothing bounds the
    /// epochs kept: a flood of far-future messages (a bug or a hostile
    /// publisher) fills the buffer and, highest epochs staying, makes it
    /// drop the messages of the epoch the member joins. A member that knows
    /// the lowest epoch it can join at (it was in the group: the Commit that
    /// adds it back comes after its epoch) calls
    /// [`await_welcome_from`](Self::await_welcome_from) instead.
    pub fn await_welcome(&mut self) {
        self.stats.stale += self.buffered() as u64;
        self.slots = [Slot::EMPTY; SLOTS];
        self.used_bytes = 0;
        self.waiting = true;
        self.waiting_from = None;
    }

    /// [`await_welcome`](Self::await_welcome) for a member that will join
    /// at epoch `lowest` or later: while it waits, a message of an earlier
    /// epoch is stale ([`Verdict::Stale`]), and one more than
    /// [`MAX_EPOCHS_AHEAD`] epochs after `lowest` is refused
    /// ([`DeliveryError::TooFarAhead`], counted in
    /// [`DeliveryStats::too_far_ahead`]) as it would be for a member in
    /// epoch `lowest`; only the rest competes for the buffer (counted in
    /// [`DeliveryStats::overflowed`] when it is full, as before).
    pub fn await_welcome_from(&mut self, lowest: u64) {
        self.await_welcome();
        self.waiting_from = Some(lowest);
    }

    /// Tells the inbox that the member joined (from a Welcome) at `epoch`:
    /// application messages of the epoch before are then stale too, since
    /// the member never had its keys. Ends [`await_welcome`](Self::await_welcome);
    /// [`release`](Self::release) then gives back what is of `epoch`.
    pub fn joined_at(&mut self, epoch: u64) {
        self.joined_at = epoch;
        self.waiting = false;
        self.waiting_from = None;
    }

    /// Records `digest` as seen: a message we sent (so that its echo is a
    /// duplicate), or one processed before a restart.
    pub fn remember(&mut self, digest: Digest) {
        if SEEN == 0 {
            return;
        }
        if let Some(d) = self.seen.get_mut(self.seen_next) {
            *d = digest;
        }
        self.seen_next = (self.seen_next + 1) % SEEN;
        self.seen_len = (self.seen_len + 1).min(SEEN);
    }

    fn was_seen(&self, digest: &Digest) -> bool {
        self.seen.iter().take(self.seen_len).any(|d| d == digest)
            || self.slots.iter().any(|s| s.used && s.digest == *digest)
    }

    /// Is a message of `epoch` processable in `current` (see the module doc)?
    fn fits(epoch: u64, handshake: bool, current: u64) -> Ordering {
        if epoch > current {
            Ordering::Greater
        } else if epoch == current || (!handshake && epoch.checked_add(1) == Some(current)) {
            Ordering::Equal
        } else {
            Ordering::Less
        }
    }

    /// Sorts an incoming `message` for a member in epoch `current`: process
    /// now, buffered, or dropped (duplicate, stale). A message to process is
    /// recorded as seen, so its redelivery is a duplicate. Errors: not a
    /// group message, a Commit against the policy, a full buffer.
    pub fn accept(&mut self, message: &[u8], current: u64) -> Result<Verdict, DeliveryError> {
        let envelope = Envelope::parse(message)?;
        let d = digest(message);
        if self.was_seen(&d) {
            self.stats.duplicates += 1;
            return Ok(Verdict::Duplicate);
        }
        self.policy.check_incoming(&envelope)?;
        // Waiting from a known epoch: judged as a member in that epoch
        // judges a future message (every message waits for the Welcome).
        let current = match self.waiting_from {
            Some(lowest) if self.waiting => {
                if envelope.epoch < lowest {
                    self.stats.stale += 1;
                    return Ok(Verdict::Stale);
                }
                lowest
            }
            _ => current,
        };
        let fit = if self.waiting {
            Ordering::Greater
        } else if envelope.epoch < self.joined_at {
            Ordering::Less
        } else {
            Self::fits(envelope.epoch, envelope.is_handshake(), current)
        };
        match fit {
            Ordering::Equal => {
                self.remember(d);
                self.stats.processed += 1;
                Ok(Verdict::Process(envelope))
            }
            Ordering::Greater
                if (!self.waiting || self.waiting_from.is_some()) && envelope.epoch.saturating_sub(current) > MAX_EPOCHS_AHEAD =>
            {
                self.stats.too_far_ahead += 1;
                Err(DeliveryError::TooFarAhead { epoch: envelope.epoch, current, latest: current.saturating_add(MAX_EPOCHS_AHEAD) })
            }
            Ordering::Greater => {
                if message.len() > BYTES {
                    return Err(DeliveryError::TooLarge { len: message.len(), bytes: BYTES });
                }
                let full = DeliveryError::BufferFull { slots: SLOTS, bytes: BYTES };
                let mut free = self.slots.iter().position(|s| !s.used);
                if self.waiting && (free.is_none() || self.used_bytes + message.len() > BYTES) {
                    // Evict only if pushing out every lower epoch makes room:
                    // else the message is dropped and nothing else with it.
                    let lower = self.slots.iter().filter(|s| s.used && s.epoch < envelope.epoch);
                    let (n, b) = lower.fold((0usize, 0usize), |(n, b), s| (n + 1, b + s.len));
                    if (free.is_none() && n == 0) || self.used_bytes.saturating_sub(b) + message.len() > BYTES {
                        self.stats.overflowed += 1;
                        return Ok(Verdict::Overflowed);
                    }
                }
                while free.is_none() || self.used_bytes + message.len() > BYTES {
                    if !self.waiting {
                        return Err(full);
                    }
                    // Waiting for a Welcome: the lowest epoch goes first (of
                    // those, the earliest to arrive), never for an epoch as
                    // high as the message's.
                    let lowest = (self.slots.iter().enumerate())
                        .filter(|(_, s)| s.used)
                        .map(|(i, s)| (s.epoch, s.arrival, i))
                        .min()
                        .filter(|&(epoch, _, _)| epoch < envelope.epoch);
                    self.stats.overflowed += 1;
                    let Some((_, _, i)) = lowest else { return Ok(Verdict::Overflowed) };
                    self.take(i);
                    free = Some(i);
                }
                let (Some(i), start) = (free, self.used_bytes) else { return Err(full) };
                let (Some(slot), Some(dst)) = (self.slots.get_mut(i), self.bytes.get_mut(start..start + message.len())) else {
                    return Err(full);
                };
                dst.copy_from_slice(message);
                self.used_bytes += message.len();
                self.arrivals += 1;
                *slot = Slot {
                    epoch: envelope.epoch,
                    arrival: self.arrivals,
                    offset: start,
                    len: message.len(),
                    handshake: envelope.is_handshake(),
                    digest: d,
                    used: true,
                };
                self.stats.buffered += 1;
                Ok(Verdict::Buffered)
            }
            _ => {
                self.stats.stale += 1;
                Ok(Verdict::Stale)
            }
        }
    }

    /// The earliest-arrived buffered message of the lowest epoch that a
    /// member in epoch `current` can process now (late application data of
    /// the previous epoch before what may end this one), copied into `out` (its length returned)
    /// and taken out of the buffer; `Ok(None)` if none. Buffered messages
    /// that became stale are dropped and counted. Call after every epoch
    /// change until it returns `None`.
    pub fn release(&mut self, current: u64, out: &mut [u8]) -> Result<Option<usize>, DeliveryError> {
        if self.waiting {
            return Ok(None);
        }
        let mut best: Option<usize> = None;
        let mut best_key = (u64::MAX, u64::MAX);
        for i in 0..SLOTS {
            let Some(s) = self.slots.get(i).copied().filter(|s| s.used) else { continue };
            let fit = if s.epoch < self.joined_at { Ordering::Less } else { Self::fits(s.epoch, s.handshake, current) };
            match fit {
                Ordering::Less => {
                    self.take(i);
                    self.stats.stale += 1;
                }
                // Buffered while waiting for a Welcome, when the epoch was unknown.
                Ordering::Greater if s.epoch - current > MAX_EPOCHS_AHEAD => {
                    self.take(i);
                    self.stats.too_far_ahead += 1;
                }
                Ordering::Equal if (s.epoch, s.arrival) < best_key => {
                    best = Some(i);
                    best_key = (s.epoch, s.arrival);
                }
                _ => {}
            }
        }
        let Some(s) = best.and_then(|i| self.slots.get(i).copied()) else { return Ok(None) };
        let src = self.bytes.get(s.offset..s.offset + s.len).ok_or(DeliveryError::OutputTooSmall { needed: s.len })?;
        let dst = out.get_mut(..s.len).ok_or(DeliveryError::OutputTooSmall { needed: s.len })?;
        dst.copy_from_slice(src);
        if let Some(i) = best {
            self.take(i);
        }
        self.remember(s.digest);
        self.stats.released += 1;
        self.stats.processed += 1;
        Ok(Some(s.len))
    }

    /// Frees slot `i` and closes the gap its bytes leave, so the free bytes
    /// stay in one piece at the end.
    fn take(&mut self, i: usize) {
        let Some(gone) = self.slots.get_mut(i).map(|s| core::mem::replace(s, Slot::EMPTY)) else { return };
        if !gone.used {
            return;
        }
        let end = gone.offset + gone.len;
        if end <= self.used_bytes {
            self.bytes.copy_within(end..self.used_bytes, gone.offset);
            self.used_bytes -= gone.len;
        }
        for s in self.slots.iter_mut().filter(|s| s.used && s.offset > gone.offset) {
            s.offset -= gone.len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::proposal::Remove;

    /// An `MLSMessage` with a PrivateMessage of `epoch` (1 application, 2
    /// proposal, 3 commit); `tag` makes distinct messages. Built by hand from
    /// §6.3's layout, not by the code under test.
    fn private(epoch: u64, content_type: u8, tag: u8) -> [u8; 22] {
        let e = epoch.to_be_bytes();
        [
            0, 1, 0, 2, // mls10, mls_private_message
            2, 0xaa, 0xbb, // group_id<V>
            e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7],
            content_type,
            0, // authenticated_data<V>
            1, tag, // encrypted_sender_data<V>
            2, tag, 0x55, // ciphertext<V>
        ]
    }

    /// A PublicMessage Commit of `epoch` by member `leaf` (§6.2): empty
    /// proposal list, no path, a 1-byte signature, a 2-byte confirmation tag
    /// and membership tag (lengths are checked when processing, not here).
    fn public_commit(epoch: u64, leaf: u32) -> [u8; 30] {
        let (e, l) = (epoch.to_be_bytes(), leaf.to_be_bytes());
        [
            0, 1, 0, 1, // mls10, mls_public_message
            2, 0xaa, 0xbb, // group_id<V>
            e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7],
            1, l[0], l[1], l[2], l[3], // sender: member(leaf)
            0, // authenticated_data<V>
            3, // commit
            0, 0, // proposals<V>, optional<UpdatePath> absent
            1, 9, // signature<V>
            1, 7, // confirmation_tag<V>
            1, 8, // membership_tag<V>
        ]
    }

    const GATEWAY: Policy = Policy { committer: 0 };
    type Small = Inbox<2, 64, 8>;

    #[test]
    fn envelopes_read_without_keys() {
        let e = Envelope::parse(&private(7, 1, 0)).expect("private");
        assert_eq!(e, Envelope { epoch: 7, content_type: ContentType::Application, sender: None });
        assert!(!e.is_handshake());
        let c = public_commit(9, 3);
        let e = Envelope::parse(&c).expect("public");
        assert_eq!(e, Envelope { epoch: 9, content_type: ContentType::Commit, sender: Some(Sender::Member(3)) });
        // Trailing bytes and truncations are malformed, not a panic.
        let mut trailing = [0u8; 31];
        trailing[..30].copy_from_slice(&c);
        assert!(matches!(Envelope::parse(&trailing), Err(DeliveryError::Malformed(_))));
        for n in 0..22 {
            assert!(matches!(Envelope::parse(&private(7, 1, 0)[..n]), Err(DeliveryError::Malformed(_))), "{n}");
        }
        // A KeyPackage-typed envelope is not a group message.
        let mut kp = private(1, 1, 0);
        kp[3] = 5;
        assert!(Envelope::parse(&kp).is_err());
    }

    #[test]
    fn current_epoch_is_processed_once_and_duplicates_dropped() {
        let mut inbox = Small::new(GATEWAY);
        let m = private(5, 1, 1);
        assert!(matches!(inbox.accept(&m, 5), Ok(Verdict::Process(Envelope { epoch: 5, .. }))));
        // QoS 1 redelivery: the same bytes again, twice.
        assert_eq!(inbox.accept(&m, 5), Ok(Verdict::Duplicate));
        assert_eq!(inbox.accept(&m, 6), Ok(Verdict::Duplicate));
        // Our own message echoed back by the relay.
        let ours = private(5, 2, 2);
        inbox.remember(digest(&ours));
        assert_eq!(inbox.accept(&ours, 5), Ok(Verdict::Duplicate));
        assert_eq!(inbox.stats(), DeliveryStats { processed: 1, duplicates: 3, ..Default::default() });
    }

    #[test]
    fn stale_epochs_are_dropped() {
        let mut inbox = Small::new(GATEWAY);
        // A handshake message of the previous epoch is stale; application
        // data of the previous epoch is still opened (the core keeps its
        // secret tree); two epochs back it is stale.
        assert_eq!(inbox.accept(&private(9, 2, 1), 10), Ok(Verdict::Stale));
        assert_eq!(inbox.accept(&public_commit(9, 0), 10), Ok(Verdict::Stale));
        assert!(matches!(inbox.accept(&private(9, 1, 2), 10), Ok(Verdict::Process(_))));
        assert_eq!(inbox.accept(&private(8, 1, 3), 10), Ok(Verdict::Stale));
        assert_eq!(inbox.accept(&private(0, 1, 4), u64::MAX), Ok(Verdict::Stale));
        assert_eq!(inbox.stats().stale, 4);
        assert_eq!(inbox.stats().processed, 1);
        // A member that joined at epoch 10 never had epoch 9's keys.
        inbox.joined_at(10);
        assert_eq!(inbox.accept(&private(9, 1, 5), 10), Ok(Verdict::Stale));
        assert!(matches!(inbox.accept(&private(10, 1, 5), 10), Ok(Verdict::Process(_))));
        assert_eq!(inbox.stats().stale, 5);
    }

    #[test]
    fn future_epochs_wait_and_are_released_in_arrival_order() {
        let mut inbox = Small::new(GATEWAY);
        let (a, b) = (private(4, 1, 1), private(4, 2, 2));
        assert_eq!(inbox.accept(&a, 3), Ok(Verdict::Buffered));
        assert_eq!(inbox.accept(&b, 3), Ok(Verdict::Buffered));
        // A redelivery of a buffered message does not take a slot.
        assert_eq!(inbox.accept(&a, 3), Ok(Verdict::Duplicate));
        let mut out = [0u8; 64];
        // Not yet: still epoch 3.
        assert_eq!(inbox.release(3, &mut out), Ok(None));
        assert_eq!(inbox.buffered(), 2);
        // The Commit to epoch 4 arrives and is merged: both come out, first come first.
        assert_eq!(inbox.release(4, &mut out), Ok(Some(a.len())));
        assert_eq!(out[..a.len()], a);
        assert_eq!(inbox.release(4, &mut out), Ok(Some(b.len())));
        assert_eq!(out[..b.len()], b);
        assert_eq!(inbox.release(4, &mut out), Ok(None));
        // Released messages are seen: a late redelivery is a duplicate.
        assert_eq!(inbox.accept(&b, 4), Ok(Verdict::Duplicate));
        let s = inbox.stats();
        assert_eq!((s.buffered, s.released, s.processed, s.duplicates), (2, 2, 2, 2));
    }

    #[test]
    fn buffered_messages_that_became_stale_are_dropped() {
        let mut inbox = Small::new(GATEWAY);
        assert_eq!(inbox.accept(&private(6, 2, 1), 5), Ok(Verdict::Buffered));
        assert_eq!(inbox.accept(&private(6, 1, 2), 5), Ok(Verdict::Buffered));
        let mut out = [0u8; 64];
        // The member jumped to epoch 8 (rejoined): both are too old.
        assert_eq!(inbox.release(8, &mut out), Ok(None));
        assert_eq!((inbox.buffered(), inbox.stats().stale), (0, 2));
    }

    #[test]
    fn overflow_is_a_typed_error() {
        let mut inbox = Small::new(GATEWAY);
        assert_eq!(inbox.accept(&private(2, 1, 1), 1), Ok(Verdict::Buffered));
        assert_eq!(inbox.accept(&private(3, 1, 2), 1), Ok(Verdict::Buffered));
        // Out of slots (44 of 64 bytes used).
        assert_eq!(inbox.accept(&private(2, 1, 3), 1), Err(DeliveryError::BufferFull { slots: 2, bytes: 64 }));
        // Out of bytes: two messages of 22 fill 50 bytes, with slots to spare.
        let mut narrow = Inbox::<8, 50, 8>::new(GATEWAY);
        assert_eq!(narrow.accept(&private(2, 1, 1), 1), Ok(Verdict::Buffered));
        assert_eq!(narrow.accept(&private(2, 1, 2), 1), Ok(Verdict::Buffered));
        assert_eq!(narrow.accept(&private(2, 1, 3), 1), Err(DeliveryError::BufferFull { slots: 8, bytes: 50 }));
        // Larger than the whole buffer.
        let mut tiny = Inbox::<2, 8, 8>::new(GATEWAY);
        assert_eq!(tiny.accept(&private(2, 1, 1), 1), Err(DeliveryError::TooLarge { len: 22, bytes: 8 }));
        // Too small an output buffer leaves the message in place.
        let mut out = [0u8; 4];
        assert_eq!(inbox.release(2, &mut out), Err(DeliveryError::OutputTooSmall { needed: 22 }));
        assert_eq!(inbox.buffered(), 2);
        // No slots at all: every future message is too far ahead.
        let mut none = Inbox::<0, 64, 0>::new(GATEWAY);
        assert_eq!(none.accept(&private(2, 1, 1), 1), Err(DeliveryError::BufferFull { slots: 0, bytes: 64 }));
        extern crate std;
        use std::string::ToString;
        assert!(DeliveryError::BufferFull { slots: 2, bytes: 64 }.to_string().contains("rejoin"));
    }

    #[test]
    fn far_future_epochs_are_refused_and_counted() {
        let mut inbox = Small::new(GATEWAY);
        // A bug or a hostile publisher: epoch + 1,000 must not take a slot
        // until the buffer overflows.
        let far = inbox.accept(&private(1005, 1, 1), 5);
        assert!(far.is_err(), "epoch 1005 at epoch 5: {far:?}, {} buffered", inbox.buffered());
        let latest = 5 + MAX_EPOCHS_AHEAD;
        assert_eq!(far, Err(DeliveryError::TooFarAhead { epoch: 1005, current: 5, latest }));
        // Up to MAX_EPOCHS_AHEAD ahead is buffered; one more, a Commit of
        // the last epoch there is, are refused.
        assert_eq!(inbox.accept(&private(latest, 1, 2), 5), Ok(Verdict::Buffered));
        assert_eq!(inbox.accept(&private(latest + 1, 2, 3), 5), Err(DeliveryError::TooFarAhead { epoch: latest + 1, current: 5, latest }));
        let max = DeliveryError::TooFarAhead { epoch: u64::MAX, current: 5, latest };
        assert_eq!(inbox.accept(&public_commit(u64::MAX, 0), 5), Err(max));
        // Nothing of them took a slot: the next epoch still finds one.
        assert_eq!(inbox.accept(&private(6, 1, 4), 5), Ok(Verdict::Buffered));
        let s = inbox.stats();
        assert_eq!((inbox.buffered(), s.buffered, s.too_far_ahead), (2, 2, 3));
        extern crate std;
        use std::string::ToString;
        let text = max.to_string();
        assert!(text.contains("too far ahead") && text.contains(&latest.to_string()), "{text}");
        // Waiting for a Welcome the epoch is unknown: kept; once joined at
        // epoch 3, epoch 1,000 is dropped, counted.
        let mut waiting = Small::new(GATEWAY);
        waiting.await_welcome();
        let e3 = private(3, 1, 5);
        assert_eq!(waiting.accept(&private(1000, 1, 6), 0), Ok(Verdict::Buffered));
        assert_eq!(waiting.accept(&e3, 0), Ok(Verdict::Buffered));
        waiting.joined_at(3);
        let mut out = [0u8; 64];
        assert_eq!(waiting.release(3, &mut out), Ok(Some(e3.len())));
        assert_eq!(waiting.release(3, &mut out), Ok(None));
        assert_eq!((waiting.buffered(), waiting.stats().too_far_ahead), (0, 1));
    }

    #[test]
    fn freed_bytes_are_reused_and_the_rest_stays_intact() {
        // Room for two 22-byte messages: a third fits only once one is out.
        let mut inbox = Inbox::<8, 50, 8>::new(GATEWAY);
        let (a, b, c) = (private(3, 1, 1), private(4, 1, 2), private(4, 1, 3));
        assert_eq!(inbox.accept(&a, 2), Ok(Verdict::Buffered));
        assert_eq!(inbox.accept(&b, 2), Ok(Verdict::Buffered));
        let mut out = [0u8; 64];
        // `a` (the first 22 bytes) leaves; `b` moves down; `c` takes the end.
        assert_eq!(inbox.release(3, &mut out), Ok(Some(22)));
        assert_eq!(out[..22], a);
        assert_eq!(inbox.accept(&c, 3), Ok(Verdict::Buffered));
        assert_eq!(inbox.release(4, &mut out), Ok(Some(22)));
        assert_eq!(out[..22], b);
        assert_eq!(inbox.release(4, &mut out), Ok(Some(22)));
        assert_eq!(out[..22], c);
        assert_eq!(inbox.buffered(), 0);
    }

    #[test]
    fn a_member_waiting_for_its_welcome_keeps_the_newest_epochs() {
        let mut inbox = Small::new(GATEWAY);
        // Left over from a group the member left: dropped when it waits anew.
        assert_eq!(inbox.accept(&private(9, 1, 9), 8), Ok(Verdict::Buffered));
        inbox.await_welcome();
        assert_eq!((inbox.buffered(), inbox.stats().stale), (0, 1));
        // Without a group its epoch reads 0: everything waits.
        assert_eq!(inbox.accept(&private(3, 1, 1), 0), Ok(Verdict::Buffered));
        assert_eq!(inbox.accept(&private(4, 1, 2), 0), Ok(Verdict::Buffered));
        // Full (2 slots): epoch 5 pushes out epoch 3.
        let e5 = private(5, 1, 3);
        assert_eq!(inbox.accept(&e5, 0), Ok(Verdict::Buffered));
        // Another of epoch 4 finds nothing older to push out: it is the one dropped.
        assert_eq!(inbox.accept(&private(4, 1, 4), 0), Ok(Verdict::Overflowed));
        // The Commit to epoch 6 pushes out the last of epoch 4.
        let commit = public_commit(5, 0);
        assert_eq!(inbox.accept(&commit, 0), Ok(Verdict::Buffered));
        assert_eq!(inbox.stats().overflowed, 3);
        let mut out = [0u8; 64];
        assert_eq!(inbox.release(0, &mut out), Ok(None), "nothing comes out before the Welcome");
        // The Welcome puts the member in epoch 5: the data first, then the Commit.
        inbox.joined_at(5);
        assert_eq!(inbox.release(5, &mut out), Ok(Some(e5.len())));
        assert_eq!(out[..e5.len()], e5);
        assert_eq!(inbox.release(5, &mut out), Ok(Some(commit.len())));
        assert_eq!(out[..commit.len()], commit);
        // Joined: a full buffer is an error again, not an eviction.
        assert_eq!(inbox.accept(&private(7, 1, 5), 6), Ok(Verdict::Buffered));
        assert_eq!(inbox.accept(&private(8, 1, 6), 6), Ok(Verdict::Buffered));
        assert_eq!(inbox.accept(&private(9, 1, 7), 6), Err(DeliveryError::BufferFull { slots: 2, bytes: 64 }));
        let s = inbox.stats();
        assert_eq!((s.buffered, s.released, s.overflowed, s.stale), (7, 2, 3, 1));
    }

    /// A PrivateMessage of `N` bytes (20 to 83): `private`'s layout with a
    /// longer ciphertext.
    fn private_n<const N: usize>(epoch: u64, tag: u8) -> [u8; N] {
        let mut m = [tag; N];
        m[..19].copy_from_slice(&private(epoch, 1, tag)[..19]);
        m[19] = (N - 20) as u8;
        m
    }

    #[test]
    fn waiting_from_a_known_epoch_bounds_the_epochs_it_buffers() {
        // Without a known epoch, far-future junk fills the buffer and the
        // messages of the epoch the member joins are the ones dropped.
        let mut unbounded = Small::new(GATEWAY);
        unbounded.await_welcome();
        assert_eq!(unbounded.accept(&private(1000, 2, 1), 0), Ok(Verdict::Buffered));
        assert_eq!(unbounded.accept(&private(1001, 2, 2), 0), Ok(Verdict::Buffered));
        assert_eq!(unbounded.accept(&private(3, 1, 3), 0), Ok(Verdict::Overflowed));
        unbounded.joined_at(3);
        let mut out = [0u8; 64];
        assert_eq!(unbounded.release(3, &mut out), Ok(None), "the epoch-3 message was lost to the junk");
        // Waiting to join at epoch 2 or later: what a member in epoch 2
        // would buffer, the rest refused (too far ahead) or stale, counted.
        let mut inbox = Small::new(GATEWAY);
        inbox.await_welcome_from(2);
        let (latest, e3, e18) = (2 + MAX_EPOCHS_AHEAD, private(3, 1, 3), private(2 + MAX_EPOCHS_AHEAD, 2, 4));
        assert_eq!(inbox.accept(&private(1000, 2, 1), 0), Err(DeliveryError::TooFarAhead { epoch: 1000, current: 2, latest }));
        assert_eq!(inbox.accept(&private(latest + 1, 2, 2), 0), Err(DeliveryError::TooFarAhead { epoch: latest + 1, current: 2, latest }));
        assert_eq!(inbox.accept(&private(u64::MAX, 1, 5), 0), Err(DeliveryError::TooFarAhead { epoch: u64::MAX, current: 2, latest }));
        assert_eq!(inbox.accept(&private(1, 1, 6), 0), Ok(Verdict::Stale));
        assert_eq!(inbox.accept(&e3, 0), Ok(Verdict::Buffered));
        assert_eq!(inbox.accept(&e18, 0), Ok(Verdict::Buffered));
        let s = inbox.stats();
        assert_eq!((inbox.buffered(), s.buffered, s.too_far_ahead, s.stale, s.overflowed), (2, 2, 3, 1, 0));
        // Joined at 3: the bound ends with the wait.
        inbox.joined_at(3);
        assert_eq!(inbox.release(3, &mut out), Ok(Some(e3.len())));
        assert_eq!(out[..e3.len()], e3);
        assert_eq!(inbox.release(3, &mut out), Ok(None));
        // Judged from the member's epoch now: 3 + 16 is buffered.
        assert_eq!(inbox.accept(&private(3 + MAX_EPOCHS_AHEAD, 1, 7), 3), Ok(Verdict::Buffered));
        // A plain wait afterwards is unbounded again.
        inbox.await_welcome();
        assert_eq!(inbox.accept(&private(1000, 1, 8), 0), Ok(Verdict::Buffered));
    }

    #[test]
    fn waiting_for_a_welcome_evicts_nothing_for_a_message_it_then_drops() {
        let mut inbox = Inbox::<4, 64, 8>::new(GATEWAY);
        inbox.await_welcome();
        let e3 = private(3, 1, 1);
        assert_eq!(inbox.accept(&e3, 0), Ok(Verdict::Buffered));
        assert_eq!(inbox.accept(&private(9, 1, 2), 0), Ok(Verdict::Buffered));
        // 44 bytes of epoch 5 fit only if epoch 9 went too, which it may not:
        // the message is dropped, and epoch 3 must stay (it was lost for nothing).
        assert_eq!(inbox.accept(&private_n::<44>(5, 3), 0), Ok(Verdict::Overflowed));
        assert_eq!((inbox.buffered(), inbox.stats().overflowed), (2, 1));
        inbox.joined_at(3);
        let mut out = [0u8; 64];
        assert_eq!(inbox.release(3, &mut out), Ok(Some(e3.len())));
        assert_eq!(out[..e3.len()], e3);
    }

    #[test]
    fn late_data_of_the_previous_epoch_comes_out_before_the_next_commit() {
        let mut inbox = Inbox::<4, 128, 8>::new(GATEWAY);
        // At epoch 5: the Commits of epochs 6 and 7 come early, then data of
        // epoch 6 (another publisher).
        let (c6, c7, d6) = (public_commit(6, 0), public_commit(7, 0), private(6, 1, 1));
        assert_eq!(inbox.accept(&c6, 5), Ok(Verdict::Buffered));
        assert_eq!(inbox.accept(&c7, 5), Ok(Verdict::Buffered));
        assert_eq!(inbox.accept(&d6, 5), Ok(Verdict::Buffered));
        let mut out = [0u8; 64];
        assert_eq!(inbox.release(6, &mut out), Ok(Some(c6.len())));
        assert_eq!(out[..c6.len()], c6);
        // In epoch 7 both are due; after the Commit of 7 the data would be
        // two epochs back, stale: it comes out first.
        assert_eq!(inbox.release(7, &mut out), Ok(Some(d6.len())));
        assert_eq!(out[..d6.len()], d6);
        assert_eq!(inbox.release(7, &mut out), Ok(Some(c7.len())));
        assert_eq!(inbox.release(8, &mut out), Ok(None));
        assert_eq!((inbox.stats().released, inbox.stats().stale), (3, 0));
    }

    #[test]
    fn only_the_committer_commits() {
        let mut inbox = Small::new(GATEWAY);
        assert!(matches!(inbox.accept(&public_commit(1, 0), 1), Ok(Verdict::Process(_))));
        assert_eq!(inbox.accept(&public_commit(1, 4), 1), Err(DeliveryError::NotCommitter));
        // A Commit in a PrivateMessage hides its sender: refused.
        assert_eq!(inbox.accept(&private(1, 3, 1), 1), Err(DeliveryError::NotCommitter));
        // Outgoing: a device sends data, its Updates and its own Remove only.
        let own_remove = Proposal::Remove(Remove { removed: 3 });
        let other_remove = Proposal::Remove(Remove { removed: 4 });
        let device = 3;
        assert_eq!(GATEWAY.check_outgoing(device, Outgoing::Application), Ok(()));
        assert_eq!(GATEWAY.check_outgoing(device, Outgoing::Proposal(&own_remove)), Ok(()));
        assert_eq!(GATEWAY.check_outgoing(device, Outgoing::Proposal(&other_remove)), Err(DeliveryError::ProposalNotAllowed));
        assert_eq!(GATEWAY.check_outgoing(device, Outgoing::Commit), Err(DeliveryError::NotCommitter));
        assert_eq!(GATEWAY.check_outgoing(0, Outgoing::Commit), Ok(()));
        assert_eq!(GATEWAY.check_outgoing(0, Outgoing::Proposal(&other_remove)), Ok(()));
        // Incoming, as a group's identity policy asks: the same rule, and
        // nothing from outside the group (an external sender, a new member).
        assert!(GATEWAY.authorizes(Sender::Member(device), &own_remove));
        assert!(!GATEWAY.authorizes(Sender::Member(device), &other_remove));
        assert!(GATEWAY.authorizes(Sender::Member(0), &other_remove));
        assert!(!GATEWAY.authorizes(Sender::External(0), &other_remove));
        assert!(!GATEWAY.authorizes(Sender::NewMemberCommit, &own_remove));
    }
}
