//! Proposals received in the current epoch, kept until a Commit refers to them
//! by reference (RFC 9420 §12.4: `ProposalRef`), in a caller-sized byte arena.

use crate::crypto::{HashValue, MAX_HASH_LEN};
use crate::messages::framing::Sender;
use crate::messages::proposal::Proposal;
use crate::capacity::Capacity;
use crate::codec::{Encode, Writer};
use super::CommitError;

/// Longest encoded proposal a group keeps for a Commit by reference (the
/// proposals it receives and sends).
pub const MAX_PROPOSAL_LEN: usize = 4096;

/// Bytes of bookkeeping per stored proposal (reference, sender, length).
pub const PROPOSAL_RECORD_HEADER: usize = 1 + MAX_HASH_LEN + 1 + 4 + 4;

/// The store has no room for another proposal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreFull;

impl core::fmt::Display for StoreFull {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("proposal store full: pending proposal bytes (P) exceeded")
    }
}

impl core::error::Error for StoreFull {}

/// A stored proposal: who sent it and its encoded `Proposal`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredProposal<'a> {
    /// `MakeProposalRef` of the AuthenticatedContent that carried it.
    pub reference: HashValue,
    /// Its sender.
    pub sender: Sender,
    /// The encoded `Proposal`.
    pub proposal: &'a [u8],
}

/// Pending proposals of one epoch, in arrival order, in `P` bytes.
#[derive(Clone)]
pub struct ProposalStore<const P: usize> {
    bytes: [u8; P],
    used: usize,
}

impl<const P: usize> Default for ProposalStore<P> {
    fn default() -> Self {
        Self::EMPTY
    }
}

fn sender_parts(s: Sender) -> (u8, u32) {
    match s {
        Sender::Member(i) => (1, i),
        Sender::External(i) => (2, i),
        Sender::NewMemberProposal => (3, 0),
        Sender::NewMemberCommit => (4, 0),
    }
}

fn sender_from(t: u8, i: u32) -> Option<Sender> {
    match t {
        1 => Some(Sender::Member(i)),
        2 => Some(Sender::External(i)),
        3 => Some(Sender::NewMemberProposal),
        4 => Some(Sender::NewMemberCommit),
        _ => None,
    }
}

impl<const P: usize> ProposalStore<P> {
    /// No proposals.
    pub const EMPTY: Self = Self { bytes: [0; P], used: 0 };

    /// The store's bytes, for persistence.
    pub(crate) fn raw(&self) -> &[u8] {
        self.bytes.get(..self.used).unwrap_or(&[])
    }

    /// Appends bytes saved from [`Self::raw`].
    pub(crate) fn append_raw(&mut self, bytes: &[u8]) -> Result<(), StoreFull> {
        let end = self.used.checked_add(bytes.len()).ok_or(StoreFull)?;
        self.bytes.get_mut(self.used..end).ok_or(StoreFull)?.copy_from_slice(bytes);
        self.used = end;
        Ok(())
    }

    /// Forgets every proposal (a new epoch began), wiping the bytes.
    pub fn clear(&mut self) {
        if let Some(b) = self.bytes.get_mut(..self.used) {
            b.fill(0);
        }
        self.used = 0;
    }

    /// Keeps a proposal; fails (keeping the store as it was) when full.
    pub fn insert(&mut self, reference: &HashValue, sender: Sender, proposal: &[u8]) -> Result<(), StoreFull> {
        self.insert_with(reference, sender, proposal.len(), |body| {
            body.copy_from_slice(proposal);
            Ok(())
        })
    }

    /// [`Self::insert`] of `proposal`, encoded straight into the store; fails
    /// with [`Capacity::Container`] if it encodes to more than
    /// [`MAX_PROPOSAL_LEN`] bytes, with [`Capacity::PendingProposalBytes`]
    /// when the store is full.
    pub(crate) fn insert_encoded(&mut self, reference: &HashValue, sender: Sender, proposal: &Proposal<'_>) -> Result<(), CommitError> {
        let too_long = CommitError::CapacityExceeded(Capacity::Container(MAX_PROPOSAL_LEN));
        let mut counter = Writer::counter();
        proposal.encode(&mut counter).map_err(|_| too_long)?;
        let len = counter.len();
        if len > MAX_PROPOSAL_LEN {
            return Err(too_long);
        }
        self.insert_with(reference, sender, len, |body| proposal.encode_to(body).map(|_| ()).map_err(|_| StoreFull))
            .map_err(|_| CommitError::CapacityExceeded(Capacity::PendingProposalBytes))
    }

    /// [`Self::insert`] of a proposal of `len` bytes that `fill` writes
    /// straight into the store (`body` is `len` bytes), so that the caller
    /// needs no buffer for its encoding. Nothing is stored if `fill` fails.
    pub(crate) fn insert_with(
        &mut self,
        reference: &HashValue,
        sender: Sender,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> Result<(), StoreFull>,
    ) -> Result<(), StoreFull> {
        if self.get(reference).is_some() {
            return Ok(());
        }
        let total = PROPOSAL_RECORD_HEADER.checked_add(len).ok_or(StoreFull)?;
        let end = self.used.checked_add(total).ok_or(StoreFull)?;
        let rec = self.bytes.get_mut(self.used..end).ok_or(StoreFull)?;
        let (header, body) = rec.split_at_mut(PROPOSAL_RECORD_HEADER);
        let r = reference.as_bytes();
        let (len_b, rest) = header.split_at_mut(1);
        len_b.fill(r.len() as u8);
        let (ref_b, rest) = rest.split_at_mut(MAX_HASH_LEN);
        ref_b.get_mut(..r.len()).ok_or(StoreFull)?.copy_from_slice(r);
        let (t, i) = sender_parts(sender);
        let (t_b, rest) = rest.split_at_mut(1);
        t_b.fill(t);
        let (i_b, l_b) = rest.split_at_mut(4);
        i_b.copy_from_slice(&i.to_be_bytes());
        l_b.copy_from_slice(&u32::try_from(len).map_err(|_| StoreFull)?.to_be_bytes());
        fill(body)?;
        self.used = end;
        Ok(())
    }

    /// The stored proposals in arrival order.
    pub fn iter(&self) -> impl Iterator<Item = StoredProposal<'_>> + '_ {
        let mut at = 0usize;
        core::iter::from_fn(move || {
            let header = self.bytes.get(at..at.checked_add(PROPOSAL_RECORD_HEADER)?)?;
            if at >= self.used {
                return None;
            }
            let (len_b, rest) = header.split_first()?;
            let (ref_b, rest) = rest.split_at(MAX_HASH_LEN);
            let (t_b, rest) = rest.split_first()?;
            let (i_b, l_b) = rest.split_at(4);
            let reference = HashValue::from_slice(ref_b.get(..usize::from(*len_b))?).ok()?;
            let sender = sender_from(*t_b, u32::from_be_bytes(i_b.try_into().ok()?))?;
            let len = usize::try_from(u32::from_be_bytes(l_b.try_into().ok()?)).ok()?;
            let start = at.checked_add(PROPOSAL_RECORD_HEADER)?;
            let proposal = self.bytes.get(start..start.checked_add(len)?)?;
            at = start.checked_add(len)?;
            Some(StoredProposal { reference, sender, proposal })
        })
    }

    /// The proposal with `reference`, if stored.
    pub fn get(&self, reference: &HashValue) -> Option<StoredProposal<'_>> {
        self.iter().find(|p| p.reference == *reference)
    }

    /// Number of stored proposals.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// True when none is stored.
    pub fn is_empty(&self) -> bool {
        self.used == 0
    }
}
