//! The fixed capacities of the core (docs/architecture.md, decision 1): every
//! `CapacityExceeded` error says which one was exceeded, so that a firmware
//! author knows which constant or const generic to raise.
//!
//! This module is at the bottom of the layers (the codec uses it): it names
//! capacities, it does not depend on the modules that define them.

/// A capacity from an environment variable read at compile time (`value`,
/// from `option_env!`), else `default`. Evaluated in `const` items only: a
/// value that is not a decimal number fails the build, naming the rule.
pub(crate) const fn from_build_env(value: Option<&str>, default: usize) -> usize {
    let Some(s) = value else { return default };
    let mut rest = s.as_bytes();
    assert!(!rest.is_empty(), "an MLS_NOSTD_* capacity is empty: give a decimal number of bytes");
    let mut n: usize = 0;
    while let [d, tail @ ..] = rest {
        assert!(d.is_ascii_digit(), "an MLS_NOSTD_* capacity is not a decimal number of bytes");
        n = n * 10 + (*d - b'0') as usize;
        rest = tail;
    }
    n
}

/// Which fixed capacity an operation needed more of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Capacity {
    /// A fixed-capacity container of a decoded structure, holding at most
    /// this many elements (or bytes, for a byte string).
    Container(usize),
    /// Bytes of our own LeafNode's encoding, signed into a buffer of the
    /// core (4,096 bytes when creating a group or joining by external
    /// Commit, 2,048 in a KeyPackage): a credential or extensions too large.
    LeafLen,
    /// Leaves of the ratchet tree and secret tree (a group's `N`).
    Leaves,
    /// Bytes of leaf encodings in the ratchet tree's arena (a group's `ARENA`).
    TreeArena,
    /// Bytes of a group ID ([`MAX_GROUP_ID_LEN`](crate::group::MAX_GROUP_ID_LEN)).
    GroupIdLen,
    /// Bytes of the GroupContext extensions
    /// ([`MAX_GROUP_EXTENSIONS_LEN`](crate::group::MAX_GROUP_EXTENSIONS_LEN)).
    GroupExtensionsLen,
    /// Bytes of proposals received and kept for a Commit (a group's `P`).
    PendingProposalBytes,
    /// Proposals (or proposal references) in one Commit
    /// ([`MAX_PENDING_REFS`](crate::group::MAX_PENDING_REFS)), or members
    /// that one Commit adds, removes or updates beyond the tree's leaves.
    ProposalsPerCommit,
    /// PreSharedKey proposals in one Commit
    /// ([`MAX_PSKS_PER_COMMIT`](crate::group::MAX_PSKS_PER_COMMIT)).
    PsksPerCommit,
    /// Bytes of PreSharedKeyIDs a staged Commit keeps
    /// ([`STAGED_PSK_BYTES`](crate::group::STAGED_PSK_BYTES)).
    StagedPskBytes,
    /// Out-of-order keys a secret tree keeps (a group's `K`).
    SkippedKeys,
    /// Secrets a secret tree holds at once: its senders' ratchets and their
    /// paths' siblings (a group's `E`, see
    /// [`SecretTree`](crate::secret_tree::SecretTree)).
    SecretTreeEntries,
    /// Certificates in an X.509 credential
    /// ([`MAX_CERTIFICATE_CHAIN`](crate::credential::MAX_CERTIFICATE_CHAIN)).
    CertificateChain,
    /// The epoch counter (2^64 - 1 epochs).
    Epochs,
    /// Bytes of one stored record
    /// ([`MAX_RECORD_LEN`](crate::store::MAX_RECORD_LEN)).
    RecordLen,
    /// Records of one part of a stored group (the record index is 8 bits).
    Records,
    /// Past epochs' resumption PSKs kept
    /// ([`RESUMPTION_PSK_HISTORY`](crate::group::RESUMPTION_PSK_HISTORY)).
    ResumptionPsks,
    /// External PSKs a store holds
    /// ([`MAX_EXTERNAL_PSKS`](crate::store::psks::MAX_EXTERNAL_PSKS)).
    ExternalPsks,
    /// Bytes of an external PSK ID or secret
    /// ([`MAX_PSK_ID_LEN`](crate::store::psks::MAX_PSK_ID_LEN),
    /// [`MAX_PSK_LEN`](crate::store::psks::MAX_PSK_LEN)).
    PskLen,
}

impl core::fmt::Display for Capacity {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Container(n) => write!(f, "container capacity ({n} elements or bytes)"),
            Self::LeafLen => f.write_str("own leaf encoding length (internal leaf buffer)"),
            Self::Leaves => f.write_str("leaf capacity (N)"),
            Self::TreeArena => f.write_str("tree arena bytes (ARENA)"),
            Self::GroupIdLen => f.write_str("group ID length (MAX_GROUP_ID_LEN)"),
            Self::GroupExtensionsLen => f.write_str("group extensions length (MAX_GROUP_EXTENSIONS_LEN)"),
            Self::PendingProposalBytes => f.write_str("pending proposal bytes (P)"),
            Self::ProposalsPerCommit => f.write_str("proposals per commit (MAX_PENDING_REFS)"),
            Self::PsksPerCommit => f.write_str("PSKs per commit (MAX_PSKS_PER_COMMIT)"),
            Self::StagedPskBytes => f.write_str("staged PSK ID bytes (STAGED_PSK_BYTES)"),
            Self::SkippedKeys => f.write_str("skipped keys (K)"),
            Self::SecretTreeEntries => f.write_str("secret tree entries (E): senders heard from in this epoch and their paths"),
            Self::CertificateChain => f.write_str("certificate chain length (MAX_CERTIFICATE_CHAIN)"),
            Self::Epochs => f.write_str("epoch counter"),
            Self::RecordLen => f.write_str("record length (MAX_RECORD_LEN)"),
            Self::Records => f.write_str("records per part"),
            Self::ResumptionPsks => f.write_str("resumption PSK history (RESUMPTION_PSK_HISTORY)"),
            Self::ExternalPsks => f.write_str("external PSKs (MAX_EXTERNAL_PSKS)"),
            Self::PskLen => f.write_str("PSK ID or secret length (MAX_PSK_ID_LEN, MAX_PSK_LEN)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::from_build_env;

    #[test]
    fn a_capacity_from_the_build_environment() {
        assert_eq!(from_build_env(None, 2048), 2048);
        assert_eq!(from_build_env(Some("256"), 2048), 256);
        assert_eq!(from_build_env(Some("0"), 7), 0);
        assert_eq!(from_build_env(Some("1048576"), 7), 1 << 20);
    }
}
